//! The three rules citywatch judges.

use std::time::Duration;

use serde::Deserialize;

use super::zones::ZoneKind;

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize, PartialOrd, Ord,
)]
#[serde(rename_all = "snake_case")]
pub enum RuleKind {
    AbandonedVehicle,
    IllegalVendor,
    OverflowingBin,
}

impl RuleKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RuleKind::AbandonedVehicle => "abandoned_vehicle",
            RuleKind::IllegalVendor => "illegal_vendor",
            RuleKind::OverflowingBin => "overflowing_bin",
        }
    }

    /// The rule named `s` (its `as_str` form).
    pub fn parse(s: &str) -> Option<Self> {
        [
            RuleKind::AbandonedVehicle,
            RuleKind::IllegalVendor,
            RuleKind::OverflowingBin,
        ]
        .into_iter()
        .find(|r| r.as_str() == s)
    }

    /// Default dwell: 72 h, 5 min, 10 min.
    pub fn default_dwell(self) -> Duration {
        Duration::from_secs(match self {
            RuleKind::AbandonedVehicle => 72 * 3600,
            RuleKind::IllegalVendor => 300,
            RuleKind::OverflowingBin => 600,
        })
    }

    /// The zone kind a rule watches.
    pub fn zone_kind(self) -> ZoneKind {
        match self {
            RuleKind::AbandonedVehicle => ZoneKind::NoParking,
            RuleKind::IllegalVendor => ZoneKind::NoVending,
            RuleKind::OverflowingBin => ZoneKind::Bin,
        }
    }
}
