//! citywatch-base: the bottom layer, which every other crate of the workspace may use and
//! which uses none of them.
//!
//! - [`core`]: clock and time helpers, the shutdown signal, backoff, redaction, HTML
//!   escaping, safe path components, the watermark font.
//! - [`model`]: the shared vocabulary: boxes, zones, rule kinds, category tables,
//!   locations, filing modes.
//! - [`cases`]: case policy: numbers, descriptions, the reporting time zone.
//! - [`config`]: the strict pipeline config and its validation.
//!
//! Inside the crate the modules are layered too (core, model, cases, config, bottom to top);
//! `tests/integration/layering.rs` checks it.

pub mod cases;
pub mod config;
pub mod core;
pub mod model;
