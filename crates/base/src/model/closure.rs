//! The closure check's words (核实): what a camera is asked to look at again when the
//! platform reports a case handled, what one frame shows of the place, and what the look
//! found.

use serde::{Deserialize, Serialize};

use super::BBox;

/// A closure check waiting for its camera.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRequest {
    pub case_number: String,
    pub camera: String,
    pub rule: String,
    pub zone: String,
    pub label: String,
    /// The captured object's place, normalised.
    pub bbox: BBox,
    /// The case's evidence package, relative to the evidence root.
    pub package: Option<String>,
    /// Frames from this time on count (Unix seconds).
    pub due_at: f64,
    /// Earlier looks that could not judge the place.
    pub attempts: i64,
}

/// What a look at the place found.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CheckOutcome {
    /// Seen clear: the case is verified closed.
    Clear,
    /// Seen still there: the case is reopened as not rectified (未整改).
    StillThere,
    /// Could not judge (dark, occluded, off view): tried again later, then a person.
    Unjudged { reason: String },
}

impl CheckOutcome {
    /// The word evidence files and logs use.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Clear => "clear",
            Self::StillThere => "still_there",
            Self::Unjudged { .. } => "unjudged",
        }
    }
}

/// What one analysed frame shows of a checked place, judged the way the case's rule judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sight {
    /// The problem is plainly there.
    Present,
    /// The place is seen, and the problem is not there.
    Clear,
    /// Seen, but neither plainly there nor plainly gone (an object in its grace gap, a bin
    /// zone between the thresholds).
    Unsure,
    /// The place cannot be judged in this frame.
    Unjudgeable(&'static str),
}
