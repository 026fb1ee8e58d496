//! `citywatch eval --review`: the truth plays the operator. A first pass files captures; a
//! capture that hits a truth event is confirmed, a false one rejected (reason
//! `false_detection`), and each verdict is remembered with the capture's embedding, as the
//! review UI does. A second pass plays the same clips with that memory; with several clips
//! of one camera, a held-out pass scores each clip with only what the *other* clips of its
//! camera taught. Duplicates teach nothing (they were real problems, filed twice).
//!
//! Everything here is a pure function of the passes' captures, so the figures repeat.

use std::collections::BTreeMap;

use serde::Serialize;

use super::metrics::{self, CaptureRec, EventRec, EventScores, MatchParams, Verdict};
use crate::config::LearnSettings;
use crate::learn::{MemoryEntry, Said, SharedMemory, VerdictMemory};

/// A capture of one pass, with what the memory needs and what it decided.
#[derive(Debug, Clone)]
pub struct PassCapture {
    pub rec: CaptureRec,
    pub embedding: Option<Vec<f32>>,
    /// A learned suppression (it resembled a rejected capture): not filed.
    pub learned: bool,
}

/// Learned suppressions, scored: a right one was a false capture, a wrong one a real event.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SuppressionScores {
    pub right: usize,
    pub wrong: usize,
}

/// One scored pass.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PassScores {
    /// "all" and each rule: event-level scores of what was filed.
    pub rules: BTreeMap<String, EventScores>,
    pub suppressions: SuppressionScores,
}

/// The review block of a variant's report.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ReviewOut {
    pub similarity: f32,
    /// Verdicts the first pass taught (a capture without an embedding teaches nothing).
    pub confirmed: usize,
    pub rejected: usize,
    pub first_pass: PassScores,
    pub second_pass: PassScores,
    /// Each clip with what the other clips of its camera taught; absent when no camera has
    /// two clips.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_out: Option<PassScores>,
    /// False captures removed by the second pass, as a share of the first pass's.
    pub false_removed_share: Option<f64>,
}

/// Scores one pass: filed captures against the events, per rule; learned suppressions as
/// right or wrong.
pub fn score_pass(caps: &[PassCapture], events: &[EventRec], p: &MatchParams) -> PassScores {
    let filed: Vec<CaptureRec> = caps
        .iter()
        .filter(|c| !c.learned)
        .map(|c| c.rec.clone())
        .collect();
    let learned: Vec<CaptureRec> = caps
        .iter()
        .filter(|c| c.learned)
        .map(|c| c.rec.clone())
        .collect();
    let verdicts = metrics::match_events(&filed, events, p);
    let mut rules: Vec<_> = events.iter().map(|e| e.rule).collect();
    rules.extend(caps.iter().map(|c| c.rec.rule));
    rules.sort();
    rules.dedup();
    let mut out = BTreeMap::new();
    out.insert(
        "all".to_string(),
        metrics::score_events(&filed, events, &verdicts, |_| true, |_| true),
    );
    for r in rules {
        out.insert(
            r.as_str().to_string(),
            metrics::score_events(&filed, events, &verdicts, |c| c.rule == r, |e| e.rule == r),
        );
    }
    let mut suppressions = SuppressionScores::default();
    for v in metrics::match_events(&learned, events, p) {
        match v {
            Verdict::False => suppressions.right += 1,
            Verdict::Hit(_) | Verdict::Duplicate(_) => suppressions.wrong += 1,
        }
    }
    PassScores {
        rules: out,
        suppressions,
    }
}

/// The operator's verdicts on a first pass: (clip, entry without its camera key).
pub fn verdicts(
    caps: &[PassCapture],
    events: &[EventRec],
    p: &MatchParams,
) -> Vec<(String, MemoryEntry)> {
    let recs: Vec<CaptureRec> = caps.iter().map(|c| c.rec.clone()).collect();
    let mut out = Vec::new();
    for (i, (c, v)) in caps
        .iter()
        .zip(metrics::match_events(&recs, events, p))
        .enumerate()
    {
        let Some(e) = &c.embedding else { continue };
        let (said, reason) = match v {
            Verdict::Hit(_) => (Said::Confirmed, None),
            Verdict::False => (Said::Rejected, Some("false_detection".to_string())),
            Verdict::Duplicate(_) => continue,
        };
        out.push((
            c.rec.clip.clone(),
            MemoryEntry {
                capture: format!("{}#{i}", c.rec.clip),
                camera: String::new(),
                zone: c.rec.zone.clone(),
                rule: c.rec.rule,
                said,
                reason,
                embedding: e.clone(),
                // The order of the verdicts, so ageing out is deterministic.
                at: i as f64,
                plate: None,
            },
        ));
    }
    out
}

/// The memory each clip is played with: the verdicts on every clip of its pipeline camera
/// (`camera_of` maps clip → pipeline camera), or with `held_out` those on the other clips
/// only. Entries are keyed by clip, the camera id a clip is played as.
pub fn memory_for(
    taught: &[(String, MemoryEntry)],
    camera_of: &BTreeMap<String, String>,
    settings: &LearnSettings,
    held_out: bool,
) -> SharedMemory {
    let mut m = VerdictMemory::new(settings.clone());
    for (clip, cam) in camera_of {
        for (from, e) in taught {
            if camera_of.get(from) != Some(cam) || (held_out && from == clip) {
                continue;
            }
            let mut e = e.clone();
            e.camera = clip.clone();
            m.remember(e);
        }
    }
    SharedMemory::new(m)
}

/// Whether some pipeline camera has two clips (a held-out pass means something).
pub fn has_repeats(camera_of: &BTreeMap<String, String>) -> bool {
    let mut seen = std::collections::BTreeSet::new();
    camera_of.values().any(|c| !seen.insert(c))
}

/// The share of the first pass's false captures that the second pass no longer files.
pub fn false_removed_share(first: &PassScores, second: &PassScores) -> Option<f64> {
    let f1 = first.rules.get("all")?.false_captures;
    let f2 = second.rules.get("all")?.false_captures;
    (f1 > 0).then(|| f1.saturating_sub(f2) as f64 / f1 as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::RuleKind;

    fn cap(clip: &str, confirm_s: f64, v: &[f32], learned: bool) -> PassCapture {
        let mut e = v.to_vec();
        crate::model::embedding::normalise(&mut e);
        PassCapture {
            rec: CaptureRec {
                clip: clip.into(),
                rule: RuleKind::AbandonedVehicle,
                zone: "road".into(),
                label: "car".into(),
                start_s: 0.0,
                confirm_s,
                bbox: [0.5, 0.5, 0.7, 0.7],
                score: 0.8,
                dwell_s: 20.0,
                plate: None,
            },
            embedding: Some(e),
            learned,
        }
    }

    fn event(clip: &str) -> EventRec {
        EventRec {
            clip: clip.into(),
            rule: RuleKind::AbandonedVehicle,
            start_s: 0.0,
            end_s: 60.0,
            bbox: Some([0.5, 0.5, 0.7, 0.7]),
            dwell_s: Some(20.0),
            plate: None,
        }
    }

    #[test]
    fn the_truth_confirms_hits_and_rejects_false_captures_and_held_out_skips_the_own_clip() {
        let p = MatchParams::default();
        // Clip a has an event (its capture is confirmed); clip b's capture is false.
        let caps = [
            cap("a", 20.0, &[1.0, 0.0], false),
            cap("b", 20.0, &[0.0, 1.0], false),
        ];
        let taught = verdicts(&caps, &[event("a")], &p);
        assert_eq!(taught.len(), 2);
        assert_eq!(taught[0].1.said, Said::Confirmed);
        assert_eq!(taught[1].1.said, Said::Rejected);
        let cams: BTreeMap<String, String> =
            [("a".into(), "cam".into()), ("b".into(), "cam".into())].into();
        assert!(has_repeats(&cams));
        let probe = |m: &SharedMemory, clip: &str| {
            let mut c = crate::ratelimit::sample_capture(1, 100.0).candidate;
            c.zone = "road".into();
            c.embedding = Some(vec![0.0, 1.0]);
            m.judge(clip, &c).is_some()
        };
        let all = memory_for(&taught, &cams, &LearnSettings::default(), false);
        assert!(probe(&all, "b") && probe(&all, "a"));
        let held = memory_for(&taught, &cams, &LearnSettings::default(), true);
        assert!(!probe(&held, "b"), "b's own rejection is not held out");
        assert!(probe(&held, "a"));
    }

    #[test]
    fn a_pass_scores_filed_captures_and_judges_its_suppressions() {
        let p = MatchParams::default();
        let first = score_pass(
            &[cap("a", 20.0, &[1.0], false), cap("b", 20.0, &[1.0], false)],
            &[event("a")],
            &p,
        );
        let second = score_pass(
            &[cap("a", 20.0, &[1.0], false), cap("b", 20.0, &[1.0], true)],
            &[event("a")],
            &p,
        );
        assert_eq!(first.rules["all"].false_captures, 1);
        assert_eq!(second.rules["all"].false_captures, 0);
        assert_eq!(second.rules["all"].recall, Some(1.0));
        assert_eq!(
            second.suppressions,
            SuppressionScores { right: 1, wrong: 0 }
        );
        assert_eq!(false_removed_share(&first, &second), Some(1.0));
    }
}
