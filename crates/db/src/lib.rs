//! citywatch-db: the case store. It owns the schema (`migrations/`) and maps rows to the
//! types of the crates below it; it uses citywatch-base and citywatch-stages and nothing
//! above them.
//!
//! - [`store`]: captures, cases and their lifecycle, the outbox, users, leases, the verdict
//!   memory's rows, episode state, the audit log.

use citywatch_base::{cases, config, core, model};
use citywatch_stages::{episodes, learn, ratelimit};

pub mod store;
