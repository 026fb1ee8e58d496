//! Per-camera calibration proposals from the verdict history: for each camera and rule, the
//! threshold on the capture's score (the detector's score; for bins the changed share of the
//! zone) that would have kept every confirmed capture and dropped the rejected ones below it.
//! Proposals are only shown; an admin applies one, and it is stored as an override.

use std::collections::BTreeMap;

use serde::Serialize;

use super::RuleKind;

pub use super::verdict::Reviewed;

/// A proposed threshold, with the history behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Proposal {
    pub camera: String,
    pub rule: RuleKind,
    /// `min_score` for vehicles and vendors, `change_share` for bins.
    pub setting: &'static str,
    pub value: f64,
    pub confirmed: usize,
    pub rejected: usize,
    /// Rejected captures the value would have dropped (every confirmed one is kept).
    pub rejected_dropped: usize,
}

/// The setting a rule's proposal is for.
pub fn setting_of(rule: RuleKind) -> &'static str {
    match rule {
        RuleKind::OverflowingBin => "change_share",
        _ => "min_score",
    }
}

/// One camera and rule's verdicts: how many confirmed and rejected, and the lowest
/// confirmed score.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdicts {
    pub camera: String,
    pub rule: RuleKind,
    pub confirmed: usize,
    pub rejected: usize,
    pub lowest_confirmed: Option<f64>,
}

/// The threshold proposed for a lowest confirmed score: just under it, rounded down to
/// 0.01, so the lowest confirmation stays.
pub fn threshold(lowest_confirmed: f64) -> f64 {
    // Scores are stored from f32: 0.7 reads back as 0.69999999, which is not under 0.70.
    (lowest_confirmed * 100.0 + 1e-4).floor() / 100.0
}

/// The proposal for one camera and rule, given how many of its rejected captures score
/// under [`threshold`]: none without both confirmations and rejections, or when fewer
/// than `min_dropped` (at least 1) would be dropped.
pub fn proposal(v: &Verdicts, dropped: usize, min_dropped: usize) -> Option<Proposal> {
    let lowest = v.lowest_confirmed.filter(|_| v.confirmed > 0)?;
    if v.rejected == 0 || dropped < min_dropped.max(1) {
        return None;
    }
    Some(Proposal {
        camera: v.camera.clone(),
        rule: v.rule,
        setting: setting_of(v.rule),
        value: threshold(lowest),
        confirmed: v.confirmed,
        rejected: v.rejected,
        rejected_dropped: dropped,
    })
}

/// Proposals for every camera and rule whose history has confirmations and rejections, and
/// where a threshold just under the lowest confirmed score drops at least `min_dropped`
/// rejected captures. (The web reads the same from the store's verdict statistics,
/// through [`proposal`].)
pub fn propose(history: &[Reviewed], min_dropped: usize) -> Vec<Proposal> {
    let mut by: BTreeMap<(String, RuleKind), Vec<&Reviewed>> = BTreeMap::new();
    for r in history {
        by.entry((r.camera.clone(), r.rule)).or_default().push(r);
    }
    let mut out = Vec::new();
    for ((camera, rule), rs) in by {
        let confirmed: Vec<f64> = rs.iter().filter(|r| r.confirmed).map(|r| r.score).collect();
        let rejected: Vec<f64> = rs
            .iter()
            .filter(|r| !r.confirmed)
            .map(|r| r.score)
            .collect();
        let v = Verdicts {
            camera,
            rule,
            confirmed: confirmed.len(),
            rejected: rejected.len(),
            lowest_confirmed: confirmed.iter().copied().reduce(f64::min),
        };
        let Some(lowest) = v.lowest_confirmed else {
            continue;
        };
        let value = threshold(lowest);
        let dropped = rejected.iter().filter(|s| **s < value).count();
        out.extend(proposal(&v, dropped, min_dropped));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(camera: &str, rule: RuleKind, score: f64, confirmed: bool) -> Reviewed {
        Reviewed {
            camera: camera.into(),
            rule,
            score,
            confirmed,
        }
    }

    #[test]
    fn a_threshold_keeps_every_confirmation_and_drops_the_rejections_below_it() {
        let v = RuleKind::AbandonedVehicle;
        let history = [
            r("a", v, 0.62, true),
            r("a", v, 0.80, true),
            r("a", v, 0.35, false),
            r("a", v, 0.41, false),
            r("a", v, 0.70, false),
            // Camera b has only rejections: nothing to keep, no proposal.
            r("b", v, 0.3, false),
            // Bins propose on the changed share.
            r("a", RuleKind::OverflowingBin, 0.5, true),
            r("a", RuleKind::OverflowingBin, 0.2, false),
        ];
        let p = propose(&history, 1);
        assert_eq!(p.len(), 2);
        assert_eq!(
            (p[0].setting, p[0].value, p[0].rejected_dropped),
            ("min_score", 0.62, 2)
        );
        assert_eq!((p[1].setting, p[1].value), ("change_share", 0.5));
        assert!(propose(&history, 3).is_empty());
    }
}
