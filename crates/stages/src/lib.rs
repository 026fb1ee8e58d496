//! citywatch-stages: the stages that turn detections into captures with evidence. It uses
//! citywatch-base and citywatch-media and nothing above them.
//!
//! - [`episodes`]: stationary objects by place, their signatures and saved state.
//! - [`rules`]: the three rules (abandoned vehicle, illegal vendor, overflowing bin).
//! - [`learn`]: the verdict memory: lookalikes of captures operators rejected.
//! - [`closure`]: the closure check (核实) of a case reported handled.
//! - [`ratelimit`]: dedup, the per-camera token bucket, the inference budget.
//! - [`evidence`]: packages (photos, clip, hashes), retention.
//!
//! Inside the crate: episodes, rules, then learn, closure and ratelimit, then evidence
//! (`tests/integration/layering.rs`).

// The lower crates' modules under their usual names, so `crate::model::…` reads the same in
// every crate of the workspace.
use citywatch_base::{config, core, model};
use citywatch_media::{detect, ingest, scene};

pub mod closure;
pub mod episodes;
pub mod evidence;
pub mod learn;
pub mod ratelimit;
pub mod rules;
