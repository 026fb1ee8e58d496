//! The closure check's words (核实): what a camera is asked to look at again when the
//! platform reports a case handled, what one frame shows of the place, and what the look
//! found.

use parking_lot::RwLock;
use std::collections::BTreeMap;
use std::sync::Arc;

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

/// The checks waiting for cameras, shared by the cameras, the web handlers and the reload.
#[derive(Clone, Default)]
pub struct SharedChecks(Arc<RwLock<BTreeMap<String, Vec<CheckRequest>>>>);

impl SharedChecks {
    pub fn new(all: Vec<CheckRequest>) -> Self {
        let s = Self::default();
        s.replace(all);
        s
    }

    /// Replaces every check (a reload from the database).
    pub fn replace(&self, all: Vec<CheckRequest>) {
        let mut by_camera: BTreeMap<String, Vec<CheckRequest>> = BTreeMap::new();
        for c in all {
            by_camera.entry(c.camera.clone()).or_default().push(c);
        }
        *self.0.write() = by_camera;
    }

    /// Adds or replaces one check.
    pub fn put(&self, c: CheckRequest) {
        let mut m = self.0.write();
        let list = m.entry(c.camera.clone()).or_default();
        list.retain(|k| k.case_number != c.case_number);
        list.push(c);
    }

    /// After a look was recorded: the check goes (`next_due` None) or waits until then.
    pub fn settle(&self, camera: &str, case: &str, next_due: Option<f64>) {
        let mut m = self.0.write();
        if let Some(list) = m.get_mut(camera) {
            match next_due {
                None => list.retain(|k| k.case_number != case),
                Some(due) => {
                    for k in list.iter_mut().filter(|k| k.case_number == case) {
                        k.due_at = due;
                        k.attempts += 1;
                    }
                }
            }
        }
    }

    /// A camera's checks.
    pub fn for_camera(&self, camera: &str) -> Vec<CheckRequest> {
        self.0.read().get(camera).cloned().unwrap_or_default()
    }

    /// Whether a camera has a check (a patrol visits it sooner).
    pub fn wants(&self, camera: &str) -> bool {
        self.0.read().get(camera).is_some_and(|l| !l.is_empty())
    }

    pub fn len(&self) -> usize {
        self.0.read().values().map(Vec::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
