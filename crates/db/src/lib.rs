//! citywatch-db: the case store. It owns the schema (`migrations/`) and maps rows to the
//! types of citywatch-base; it uses that crate and nothing else of the workspace, so it
//! builds without GStreamer or ONNX Runtime.
//!
//! - [`store`]: captures, cases and their lifecycle, the outbox, users, leases, the verdict
//!   memory's rows, episode state, the audit log.

use citywatch_base::{cases, config, core, model};

pub mod store;
