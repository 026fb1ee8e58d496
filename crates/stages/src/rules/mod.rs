//! Stage 4, rules: zones, active hours, and the three rules that turn episodes into capture
//! candidates.

pub mod engine;
pub mod stall;
pub use crate::model::zones;
