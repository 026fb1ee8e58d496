//! citywatch: watches city cameras and files evidence-backed cases.
//!
//! The pipeline runs in one direction, one module per stage (see `ARCHITECTURE.md`):
//!
//! - [`core`]: clock, shutdown signal, credential redaction: shared by every stage.
//! - [`config`]: the strict pipeline config and its validation.
//! - [`ingest`]: cameras (RTSP and recorded files) through GStreamer, sampled in the pipeline.
//! - [`probe`]: checks a camera URL over RTSP (OPTIONS/DESCRIBE, auth, SDP).
//! - [`samples`]: the loopback RTSP server that loops the sample footage.
//! - [`eval`]: scores a pipeline on recorded footage against truth; makes scenario clips.
//! - [`run`]: wires the stages together for `citywatch run`.

pub mod analysis;
pub mod config;
pub mod core;
pub mod detect;
pub mod episodes;
pub mod eval;
pub mod evidence;
pub mod filing;
pub mod ingest;
pub mod patrol;
pub mod pipeline;
pub mod probe;
pub mod ratelimit;
pub mod replay;
pub mod rules;
pub mod run;
pub mod samples;
pub mod status;
pub mod store;
// Handlers return axum `Response`s as errors (built once per refused request), which is
// larger than clippy likes for an `Err`.
#[allow(clippy::result_large_err)]
pub mod web;
pub mod workers;
