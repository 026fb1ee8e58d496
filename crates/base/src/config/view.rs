//! `[view]`: the view-drift guard, and its validation.

use super::*;

/// `[view]`: the view-drift guard. Each camera keeps a reference view; when the current view
/// no longer registers to it, rules pause and the camera's health shows `off_view`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ViewSettings {
    /// Whether the guard runs. Default true.
    pub guard: bool,
    /// Largest shift of the view, as a share of the frame's width, that is still the same
    /// view. Default 0.04.
    pub tolerance: f32,
    /// Least edge-map correlation (0..1) for the view to register. Default 0.45.
    pub min_match: f32,
    /// Analysed frames in a row before the camera goes off view or back, and that must
    /// agree on a first view before it becomes the reference. Default 3.
    pub frames: u32,
}

impl Default for ViewSettings {
    fn default() -> Self {
        Self {
            guard: true,
            tolerance: 0.04,
            min_match: 0.45,
            frames: 3,
        }
    }
}

pub(crate) fn validate_view(v: &ViewSettings, problems: &mut Vec<ConfigProblem>) {
    if !(v.tolerance > 0.0 && v.tolerance <= 0.25) {
        problems.push(ConfigProblem {
            path: "view.tolerance".into(),
            message: format!("must be above 0 and at most 0.25, got {}", v.tolerance),
        });
    }
    if !(v.min_match > 0.0 && v.min_match < 1.0) {
        problems.push(ConfigProblem {
            path: "view.min_match".into(),
            message: format!("must be above 0 and below 1, got {}", v.min_match),
        });
    }
    if v.frames == 0 {
        problems.push(ConfigProblem {
            path: "view.frames".into(),
            message: "must be at least 1".into(),
        });
    }
}
