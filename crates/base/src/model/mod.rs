//! The vocabulary every stage shares: boxes and IoU, zones and polygons with their active
//! hours, the rule kinds, the candidate a rule meets, the per-city category tables, locations and filing modes.
//!
//! It depends on nothing but `core`; config and every stage build on it, so stages need not
//! import each other for a shared word.

pub mod calibrate;
pub mod candidate;
pub mod categories;
pub mod closure;
pub mod embedding;
pub mod fixture;
pub mod geometry;
pub mod health;
pub mod live;
pub mod package;
pub mod place;
pub mod plate;
pub mod rule;
pub mod verdict;
pub mod zones;

pub use candidate::{Candidate, Capture};
pub use categories::{Category, CategoryTable};
pub use geometry::{BBox, iou};
pub use place::{FilingMode, Location};
pub use rule::RuleKind;
pub use zones::{ActiveHours, Polygon, ZoneKind};
