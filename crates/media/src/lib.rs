//! citywatch-media: the layer that turns cameras into frames and frames into detections.
//! It uses citywatch-base and nothing above it; GStreamer and ONNX Runtime live here and in
//! no lower crate.
//!
//! - [`ingest`]: cameras through GStreamer, sampled in the pipeline; frames, health, the
//!   packet ring.
//! - [`detect`]: ONNX detectors through ONNX Runtime, batching, the scene gate.
//! - [`plate`]: the plate reader of standing vehicles (PP-OCRv4 through ONNX Runtime),
//!   plates rendered for tests and scenarios.
//! - [`scene`]: light-proof structure of zones and of the whole view (bins, the drift
//!   guard, the ground of no-vending zones).
//!
//! Inside the crate: ingest, then detect and scene (`tests/integration/layering.rs`).

// The base modules under their usual names, so `crate::config::…` reads the same in every
// crate of the workspace.
use citywatch_base::{config, core, model};

pub mod detect;
pub mod ingest;
pub mod plate;
pub mod scene;
