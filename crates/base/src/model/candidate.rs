//! A rule met: what the limiter decides about, what a deferral keeps and what a capture
//! carries.

use serde::{Deserialize, Serialize};

use super::{BBox, RuleKind};

/// A rule met: what the limiter decides about.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Candidate {
    pub rule: RuleKind,
    pub camera: String,
    pub preset: Option<u32>,
    pub zone: String,
    /// The place, for deduplication: the episode's anchor, or the bin zone's bounds.
    pub place: BBox,
    pub episode: Option<u64>,
    pub label: String,
    /// When the condition began and when it was confirmed (pipeline clock, Unix seconds).
    pub start: f64,
    pub confirm: f64,
    pub bbox: BBox,
    pub score: f32,
    /// The rule's dwell threshold, in seconds.
    pub dwell_s: f64,
    /// What it looks like, for the verdict memory: the episode's embedding from the
    /// detector, or for a bin zone what changed against its clean reference. None when there
    /// is nothing to compare.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
    /// What was seen in it, for a stall: each part's label with its count (`orange×3`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<String>,
    /// A vehicle's plate (车牌号), voted over its dwell; None when unread or unreadable.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plate: Option<super::plate::VotedPlate>,
}

/// A candidate the token bucket refused, waiting for a token: kept with the camera's state so
/// a restart does not lose it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Deferred {
    pub candidate: Candidate,
    /// Later candidates of the same rule merged into this one while the queue was full.
    pub merged: u32,
}

/// A candidate that looks like a capture operators rejected (the verdict memory's judgement).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resemblance {
    /// The rejected capture's id.
    pub capture: String,
    /// Cosine similarity of the two embeddings.
    pub similarity: f32,
    /// The reason it was rejected for.
    pub reason: Option<String>,
}

/// What the limiter let through: a candidate (or several merged at one place) to review and
/// file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Capture {
    pub id: u64,
    #[serde(flatten)]
    pub candidate: Candidate,
    /// Candidates merged into this capture, itself included.
    pub aggregation: u32,
    /// Time of the latest merged evidence.
    pub last_evidence: f64,
    #[serde(skip)]
    pub closed_at: Option<f64>,
    /// Its vehicle was seen to leave (its place seen empty, or another vehicle there): a new
    /// vehicle at the place is a new case, not a duplicate in cooldown.
    #[serde(skip)]
    pub left: bool,
    /// Set when the verdict memory judged it a lookalike of a rejected capture: it is
    /// recorded (with evidence) as a learned suppression, not put up for review or filed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resembles: Option<Resemblance>,
}

impl Capture {
    /// Whether it is a learned suppression rather than a capture to review or file.
    pub fn is_learned_suppression(&self) -> bool {
        self.resembles.is_some()
    }
}
