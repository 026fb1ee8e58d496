//! What operators said about captures: the verdicts the learning memory keeps and the
//! review history the calibration reads. Plain data, saved by the store.

use serde::{Deserialize, Serialize};

use super::RuleKind;

/// Reject reasons that say "this is never a case" and so teach the memory. A duplicate was a
/// real problem filed twice; it teaches nothing about the look.
pub const TEACHING_REASONS: &[&str] = &[
    "false_detection",
    "compliant_vendor",
    "not_a_problem",
    "fixture",
    "other",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Said {
    Confirmed,
    Rejected,
}

impl Said {
    pub fn as_str(self) -> &'static str {
        match self {
            Said::Confirmed => "confirmed",
            Said::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "confirmed" => Some(Said::Confirmed),
            "rejected" => Some(Said::Rejected),
            _ => None,
        }
    }

    /// Whether this verdict, with this reason, teaches the memory: every confirmation, and
    /// rejections for one of [`TEACHING_REASONS`].
    pub fn teaches(self, reason: Option<&str>) -> bool {
        match self {
            Said::Confirmed => true,
            Said::Rejected => reason.is_some_and(|r| TEACHING_REASONS.contains(&r)),
        }
    }
}

/// One reviewed capture, remembered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MemoryEntry {
    /// The reviewed capture's id.
    pub capture: String,
    pub camera: String,
    pub zone: String,
    pub rule: RuleKind,
    pub said: Said,
    pub reason: Option<String>,
    pub embedding: Vec<f32>,
    /// When the verdict was given.
    pub at: f64,
    /// The vehicle's plate (车牌号) on the reviewed capture, when it had one: a vehicle an
    /// operator rejected is known by its plate on the camera from then on.
    pub plate: Option<String>,
}

impl MemoryEntry {
    /// Whether this verdict teaches the memory at all.
    pub fn teaches(&self) -> bool {
        self.said.teaches(self.reason.as_deref())
    }
}

/// One reviewed capture: its camera, rule, score, and whether it was confirmed.
#[derive(Debug, Clone, PartialEq)]
pub struct Reviewed {
    pub camera: String,
    pub rule: RuleKind,
    pub score: f64,
    pub confirmed: bool,
}

/// Where operators' verdicts reach the cameras' memory: a review adds one, the learning
/// page forgets one (the stages' shared verdict memory is one).
pub trait VerdictBook: Send + Sync {
    fn remember(&self, e: MemoryEntry);
    /// Whether the capture's verdict was remembered.
    fn forget(&self, capture: &str) -> bool;
}
