//! `[learning]`: the verdict memory, and its validation.

use super::*;

/// `[learning]`: the verdict memory (what operators confirmed and rejected, by look).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LearnSettings {
    /// Whether candidates that resemble rejected captures are suppressed. Default true (it
    /// does nothing with a model whose manifest has no `[features]`).
    pub enabled: bool,
    /// Cosine similarity to a rejected capture, at least, for a candidate to resemble it.
    /// Default 0.9.
    pub similarity: f32,
    /// Verdicts remembered per camera, zone and rule; the oldest age out. Default 200.
    pub max_per_zone: usize,
}

impl Default for LearnSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            similarity: 0.9,
            max_per_zone: 200,
        }
    }
}

pub(crate) fn validate_learning(l: &LearnSettings, problems: &mut Vec<ConfigProblem>) {
    if !(l.similarity > 0.0 && l.similarity < 1.0) {
        problems.push(ConfigProblem {
            path: "learning.similarity".into(),
            message: format!("must be above 0 and below 1, got {}", l.similarity),
        });
    }
    if l.max_per_zone == 0 {
        problems.push(ConfigProblem {
            path: "learning.max_per_zone".into(),
            message: "must be at least 1".into(),
        });
    }
}
