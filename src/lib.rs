//! citywatch: watches city cameras and files evidence-backed cases.
//!
//! The pipeline runs in one direction, one module per stage, in layers: a module imports
//! only modules below it (`tests/integration/layering.rs` checks this; `ARCHITECTURE.md`
//! draws it).
//!
//! - [`core`]: clock and time helpers, the shutdown signal, backoff, redaction, HTML
//!   escaping, safe path components, the watermark font.
//! - [`model`]: the shared vocabulary: boxes, zones, rule kinds, category tables,
//!   locations, filing modes.
//! - [`cases`]: case policy: numbers, descriptions, the reporting time zone.
//! - [`config`]: the strict pipeline config and its validation.
//! - Stages, in the order the data flows: [`ingest`] (cameras through GStreamer, sampled in
//!   the pipeline; the packet ring), [`detect`] (ONNX detectors, batching, the scene gate),
//!   [`scene`] (light-proof zone structure and the view-drift guard), [`plate`] (the plate
//!   reader of standing vehicles: OCR models, rendered test plates),
//!   [`episodes`] (stationary objects by place), [`rules`] (the three rules), [`learn`] (the
//!   verdict memory: lookalikes of rejected captures), [`closure`] (the closure check of a
//!   case reported handled), [`ratelimit`] (dedup, token bucket,
//!   inference budget), [`evidence`] (packages, clips, retention),
//!   [`store`] (captures, cases, outbox, users, leases).
//! - Wiring: [`analysis`] (one camera's gate → detect → episodes → rules → limits),
//!   [`filing`] (capture → package → queue → store), [`pipeline`] (the camera runner: the
//!   one way a camera starts, is analysed and stops).
//! - Running many cameras: [`patrol`] (visits under a platform's stream cap), [`workers`]
//!   (cameras by lease across processes).
//! - Outputs: [`notify`] (the outbox delivered to the city platform; the polling adapter),
//!   [`status`] (status lines), [`web`] (review UI, JSON API, metrics, platform callbacks).
//! - Commands: [`replay`] (recorded footage to the end), [`eval`] (scores against truth;
//!   scenario clips; training data), [`run`] (the live pipeline), [`probe`] (checks a camera
//!   URL), [`samples`] (the loopback RTSP server of the sample footage), [`platform_sim`] (a
//!   loopback city platform for tests and the demo).

// The layers are crates of their own (crates/base, crates/media, crates/stages, crates/db,
// crates/web); their modules keep their names here.
pub use citywatch_base::{cases, config, core, model};
pub use citywatch_db::store;
pub use citywatch_media::{detect, ingest, plate, scene};
pub use citywatch_stages::{closure, episodes, evidence, learn, ratelimit, rules};
pub use citywatch_web as web;

pub mod analysis;
pub mod eval;
pub mod filing;
pub mod notify;
pub mod patrol;
pub mod pipeline;
pub mod platform_sim;
pub mod probe;
pub mod replay;
pub mod run;
pub mod samples;
pub mod status;
pub mod workers;
