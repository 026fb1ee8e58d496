//! `[limits]`: deduplication, the per-camera token bucket and the inference budget, and their validation.

use super::*;

/// `[limits]`: per-camera case limits and the global inference budget.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Captures per camera per hour (token bucket refill). Default 20.
    pub captures_per_hour: f64,
    /// Captures a camera may file at once before the hourly rate applies. Default 5.
    pub burst: f64,
    /// After a capture closes, the same (camera, preset, rule, place) merges into it for
    /// this long. Default 600.
    pub cooldown_s: f64,
    /// IoU of two places for them to count as the same place. Default 0.3.
    pub place_iou: f32,
    /// Inferences per second shared by all cameras; cameras with open episodes weigh
    /// double. Default: no budget.
    pub inference_fps: Option<f64>,
    /// Candidates the token bucket refused that wait for a token, per camera. When full, a
    /// new one merges into the oldest waiting one of its rule. Default 32.
    pub deferred_max: usize,
    /// A waiting candidate expires after this long (recorded, not filed). Default 3600.
    pub deferred_expiry_s: f64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            captures_per_hour: 20.0,
            burst: 5.0,
            cooldown_s: 600.0,
            place_iou: 0.3,
            inference_fps: None,
            deferred_max: 32,
            deferred_expiry_s: 3600.0,
        }
    }
}

pub(crate) fn validate_limits(l: &LimitSettings, problems: &mut Vec<ConfigProblem>) {
    positive("limits.deferred_expiry_s", l.deferred_expiry_s, problems);
    positive("limits.captures_per_hour", l.captures_per_hour, problems);
    if !(l.burst.is_finite() && l.burst >= 1.0) {
        problems.push(ConfigProblem {
            path: "limits.burst".into(),
            message: format!("must be at least 1, got {}", l.burst),
        });
    }
    positive("limits.cooldown_s", l.cooldown_s, problems);
    if !(l.place_iou > 0.0 && l.place_iou <= 1.0) {
        problems.push(ConfigProblem {
            path: "limits.place_iou".into(),
            message: format!("must be above 0 and at most 1, got {}", l.place_iou),
        });
    }
    if let Some(f) = l.inference_fps {
        positive("limits.inference_fps", f, problems);
    }
}
