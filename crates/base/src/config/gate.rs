//! `[gate]`: scene-change gating before the detector, and its validation.

use super::*;

/// A camera's `gate_scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GateScope {
    Zones,
    Frame,
}

/// `[gate]`: scene-change gating before the detector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GateSettings {
    /// Default true.
    pub enabled: bool,
    /// Brightness change (0..1) of one 32x24 thumbnail cell that counts. Default 0.06.
    pub cell_delta: f32,
    /// Share of cells (0..1) that must change to run the detector. Default 0.01.
    pub changed_share: f32,
    /// Longest reuse of detections without a real inference, in seconds. Default 30.
    pub max_reuse_s: f64,
    /// How far around the rule zones (share of the frame's width and height) the zone-aware
    /// gate looks, and a zone crop reaches. Default 0.08.
    pub zone_margin: f32,
    /// `detect_region = "auto"` crops to the zones when the crop covers at most this share
    /// of the frame's area. Default 0.5.
    pub crop_max_share: f32,
}

impl Default for GateSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            cell_delta: 0.06,
            changed_share: 0.01,
            max_reuse_s: 30.0,
            zone_margin: 0.08,
            crop_max_share: 0.5,
        }
    }
}

pub(crate) fn validate_gate(g: &GateSettings, problems: &mut Vec<ConfigProblem>) {
    for (path, v) in [
        ("gate.cell_delta", g.cell_delta),
        ("gate.changed_share", g.changed_share),
        ("gate.zone_margin", g.zone_margin),
        ("gate.crop_max_share", g.crop_max_share),
    ] {
        if !(0.0..=1.0).contains(&v) {
            problems.push(ConfigProblem {
                path: path.into(),
                message: format!("must be between 0 and 1, got {v}"),
            });
        }
    }
    positive("gate.max_reuse_s", g.max_reuse_s, problems);
}
