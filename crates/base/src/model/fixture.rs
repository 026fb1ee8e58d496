//! Fixtures: stationary things that belong to the street (a bench, a shop's chairs, a
//! kiosk), which a camera learns or an operator marks, and the test of a box lying on one.

use serde::{Deserialize, Serialize};

use super::BBox;
use super::geometry::iou;

/// How a fixture (or a proposed one) came to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FixtureSource {
    /// Standing when the camera first learned its scene (proposed, then accepted).
    Learned,
    /// Stood for days (proposed, then accepted).
    Stayed,
    /// Added by an operator (the camera page, or a 固定设施 rejection).
    Operator,
}

/// A stationary thing that belongs to the street: a bench, a shop's chairs, a kiosk. Stall
/// evidence on a fixture is not a stall, and a person sitting on one is not a vendor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fixture {
    pub label: String,
    pub bbox: BBox,
    pub since: f64,
    pub source: FixtureSource,
}

/// Whether box `a` lies on fixture box `f`: mostly inside it with a margin of a quarter of
/// its size (the parts of one display are detected now whole, now piece by piece, and the
/// pieces stick out of the whole's box).
pub fn on_fixture(a: &BBox, f: &BBox) -> bool {
    let (mx, my) = ((f[2] - f[0]) * 0.25, (f[3] - f[1]) * 0.25);
    let grown = [f[0] - mx, f[1] - my, f[2] + mx, f[3] + my];
    iou(a, f) >= 0.3 || crate::model::geometry::overlap_share(a, &grown) >= 0.5
}
