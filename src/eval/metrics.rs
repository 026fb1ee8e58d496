//! The scores: event level (captures against truth events) and frame level (detections
//! against per-frame boxes). Pure functions of their inputs, so the same inputs give the same
//! numbers; definitions are in `docs/eval.md`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::RuleKind;

/// Intersection over union of two [x1, y1, x2, y2] boxes.
pub fn iou(a: &[f64; 4], b: &[f64; 4]) -> f64 {
    let ix = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iy = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = ix * iy;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

/// A capture the pipeline made, in clip seconds.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CaptureRec {
    pub clip: String,
    pub rule: RuleKind,
    pub zone: String,
    pub label: String,
    pub start_s: f64,
    pub confirm_s: f64,
    #[serde(rename = "box")]
    pub bbox: [f64; 4],
    pub score: f64,
    /// The rule's dwell threshold.
    pub dwell_s: f64,
    /// The vehicle's plate, when its reads agreed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plate: Option<String>,
}

/// A truth event, with the dwell threshold its clip's camera applies to its rule.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct EventRec {
    pub clip: String,
    pub rule: RuleKind,
    pub start_s: f64,
    pub end_s: f64,
    #[serde(rename = "box", skip_serializing_if = "Option::is_none")]
    pub bbox: Option<[f64; 4]>,
    /// None when the camera has no such rule (the event cannot be caught).
    pub dwell_s: Option<f64>,
    /// The truth's plate, when it gives one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plate: Option<String>,
}

/// How the plates of caught vehicles were read, over the events whose truth gives a plate.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct PlateScores {
    /// Events with a plate in the truth.
    pub events: usize,
    /// Of those, events a capture caught.
    pub caught: usize,
    /// Of the caught, those whose capture carried a plate.
    pub read: usize,
    /// Of the read, those whose plate is the truth's, character for character.
    pub exact: usize,
    /// read / caught.
    pub read_rate: Option<f64>,
    /// exact / caught: a plate not read counts as not right.
    pub exact_rate: Option<f64>,
    /// exact / read: how far a plate that is carried can be trusted.
    pub precision: Option<f64>,
}

/// Plate read rate and exact-match accuracy: the capture that caught each event (its
/// first hit) against the event's plate. None when no event gives a plate.
pub fn plate_scores(
    caps: &[CaptureRec],
    events: &[EventRec],
    verdicts: &[Verdict],
) -> Option<PlateScores> {
    let mut s = PlateScores {
        events: events.iter().filter(|e| e.plate.is_some()).count(),
        ..Default::default()
    };
    if s.events == 0 {
        return None;
    }
    for (c, v) in caps.iter().zip(verdicts) {
        let Verdict::Hit(j) = v else { continue };
        let Some(want) = &events[*j].plate else {
            continue;
        };
        s.caught += 1;
        if let Some(got) = &c.plate {
            s.read += 1;
            s.exact += usize::from(got == want);
        }
    }
    let ratio = |a: usize, b: usize| (b > 0).then(|| a as f64 / b as f64);
    s.read_rate = ratio(s.read, s.caught);
    s.exact_rate = ratio(s.exact, s.caught);
    s.precision = ratio(s.exact, s.read);
    Some(s)
}

#[derive(Debug, Clone, Copy, Serialize)]
pub struct MatchParams {
    /// How far outside an event's span its capture may be confirmed.
    pub tolerance_s: f64,
    /// Least IoU between a capture's box and an event's box.
    pub min_iou: f64,
}

impl Default for MatchParams {
    fn default() -> Self {
        Self {
            tolerance_s: 2.0,
            min_iou: 0.3,
        }
    }
}

/// What a capture turned out to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "event", rename_all = "snake_case")]
pub enum Verdict {
    /// The first capture of a truth event (its index).
    Hit(usize),
    /// A later capture of an event already hit.
    Duplicate(usize),
    /// Matches no truth event.
    False,
}

fn matches(c: &CaptureRec, e: &EventRec, p: &MatchParams) -> Option<f64> {
    if c.clip != e.clip || c.rule != e.rule {
        return None;
    }
    if c.confirm_s < e.start_s - p.tolerance_s || c.confirm_s > e.end_s + p.tolerance_s {
        return None;
    }
    match &e.bbox {
        None => Some(1.0),
        Some(b) => {
            let v = iou(&c.bbox, b);
            (v >= p.min_iou).then_some(v)
        }
    }
}

/// Matches captures to events. Captures are taken in confirmation order (ties: higher score,
/// then input order); each goes to the matching event not yet hit with the highest IoU (ties:
/// the earlier event), else is a duplicate of the best-matching hit event, else false.
pub fn match_events(caps: &[CaptureRec], events: &[EventRec], p: &MatchParams) -> Vec<Verdict> {
    let mut order: Vec<usize> = (0..caps.len()).collect();
    order.sort_by(|&a, &b| {
        caps[a]
            .confirm_s
            .total_cmp(&caps[b].confirm_s)
            .then(caps[b].score.total_cmp(&caps[a].score))
            .then(a.cmp(&b))
    });
    let mut hit = vec![false; events.len()];
    let mut out = vec![Verdict::False; caps.len()];
    for i in order {
        let mut best_new: Option<(f64, usize)> = None;
        let mut best_dup: Option<(f64, usize)> = None;
        for (j, e) in events.iter().enumerate() {
            let Some(v) = matches(&caps[i], e, p) else {
                continue;
            };
            let slot = if hit[j] { &mut best_dup } else { &mut best_new };
            if slot.is_none_or(|(bv, _)| v > bv) {
                *slot = Some((v, j));
            }
        }
        out[i] = match (best_new, best_dup) {
            (Some((_, j)), _) => {
                hit[j] = true;
                Verdict::Hit(j)
            }
            (None, Some((_, j))) => Verdict::Duplicate(j),
            (None, None) => Verdict::False,
        };
    }
    out
}

/// Event-level scores of a set of captures and events.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct EventScores {
    pub events: usize,
    pub captures: usize,
    pub hits: usize,
    pub duplicates: usize,
    pub false_captures: usize,
    pub missed: usize,
    /// hits / captures (duplicates and false captures count against it); null without captures.
    pub precision: Option<f64>,
    /// hits / events; null without events.
    pub recall: Option<f64>,
    /// 2·hits / (2·hits + false + duplicates + missed); null when there is nothing at all.
    pub f1: Option<f64>,
    /// Capture confirmation minus the earliest moment the dwell could be seen in the clip
    /// (max(start, 0) + dwell), over hits.
    pub time_to_capture_median_s: Option<f64>,
    pub time_to_capture_max_s: Option<f64>,
    /// duplicates / events.
    pub duplicates_per_event: Option<f64>,
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// The median of `v` (the mean of the middle two for an even count).
pub fn median(v: &mut [f64]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    v.sort_by(f64::total_cmp);
    let n = v.len();
    Some(if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    })
}

/// Scores the captures and events that `keep_c`/`keep_e` select, with verdicts from
/// [`match_events`] over all of them.
pub fn score_events(
    caps: &[CaptureRec],
    events: &[EventRec],
    verdicts: &[Verdict],
    keep_c: impl Fn(&CaptureRec) -> bool,
    keep_e: impl Fn(&EventRec) -> bool,
) -> EventScores {
    let mut s = EventScores {
        events: events.iter().filter(|e| keep_e(e)).count(),
        ..Default::default()
    };
    let mut ttc = Vec::new();
    let mut hit_events = vec![false; events.len()];
    for (c, v) in caps.iter().zip(verdicts) {
        if !keep_c(c) {
            continue;
        }
        s.captures += 1;
        match *v {
            Verdict::Hit(j) => {
                s.hits += 1;
                hit_events[j] = true;
                if let Some(d) = events[j].dwell_s {
                    ttc.push(c.confirm_s - (events[j].start_s.max(0.0) + d));
                }
            }
            Verdict::Duplicate(_) => s.duplicates += 1,
            Verdict::False => s.false_captures += 1,
        }
    }
    s.missed = events
        .iter()
        .zip(&hit_events)
        .filter(|(e, h)| keep_e(e) && !**h)
        .count();
    s.precision = ratio(s.hits, s.captures);
    s.recall = ratio(s.hits, s.events);
    s.f1 = ratio(
        2 * s.hits,
        2 * s.hits + s.false_captures + s.duplicates + s.missed,
    );
    s.time_to_capture_median_s = median(&mut ttc);
    s.time_to_capture_max_s = ttc.iter().copied().reduce(f64::max);
    s.duplicates_per_event = ratio(s.duplicates, s.events);
    s
}

/// One detection on a labelled frame.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameDet {
    /// (clip index, frame index): detections and boxes match within one frame.
    pub frame: (usize, u64),
    pub class: String,
    pub bbox: [f64; 4],
    pub score: f64,
}

/// A labelled box of a frame.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameGt {
    pub frame: (usize, u64),
    pub class: String,
    pub bbox: [f64; 4],
    pub ignore: bool,
}

/// Frame-level scores of one class at IoU 0.5.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ClassScores {
    pub truth_boxes: usize,
    pub detections: usize,
    pub true_positives: usize,
    pub false_positives: usize,
    /// Over every detection the model returned (its own score threshold).
    pub precision: Option<f64>,
    pub recall: Option<f64>,
    /// Area under the precision envelope (all-point interpolation); null without truth boxes.
    pub ap50: Option<f64>,
    /// (recall, precision) after each detection, highest score first.
    #[serde(skip)]
    pub curve: Vec<(f64, f64)>,
}

/// Scores the detections of one class. Detections are taken highest score first (ties: in
/// frame order, then input order); each takes the unmatched truth box of its frame with the
/// highest IoU ≥ 0.5; one that only overlaps an ignored box counts neither way.
pub fn score_class(dets: &[FrameDet], gts: &[FrameGt]) -> ClassScores {
    let mut order: Vec<usize> = (0..dets.len()).collect();
    order.sort_by(|&a, &b| {
        dets[b]
            .score
            .total_cmp(&dets[a].score)
            .then(dets[a].frame.cmp(&dets[b].frame))
            .then(a.cmp(&b))
    });
    let mut by_frame: BTreeMap<(usize, u64), Vec<usize>> = BTreeMap::new();
    for (i, g) in gts.iter().enumerate() {
        by_frame.entry(g.frame).or_default().push(i);
    }
    let n_gt = gts.iter().filter(|g| !g.ignore).count();
    let mut used = vec![false; gts.len()];
    let mut s = ClassScores {
        truth_boxes: n_gt,
        ..Default::default()
    };
    for i in order {
        let d = &dets[i];
        let mut best: Option<(f64, usize)> = None;
        let mut on_ignored = false;
        for &g in by_frame.get(&d.frame).map(Vec::as_slice).unwrap_or(&[]) {
            let v = iou(&d.bbox, &gts[g].bbox);
            if v < 0.5 {
                continue;
            }
            if gts[g].ignore {
                on_ignored = true;
            } else if !used[g] && best.is_none_or(|(bv, _)| v > bv) {
                best = Some((v, g));
            }
        }
        match best {
            Some((_, g)) => {
                used[g] = true;
                s.true_positives += 1;
            }
            None if on_ignored => continue,
            None => s.false_positives += 1,
        }
        s.detections += 1;
        let tp = s.true_positives;
        s.curve.push((
            ratio(tp, n_gt).unwrap_or(0.0),
            tp as f64 / s.detections as f64,
        ));
    }
    s.precision = ratio(s.true_positives, s.detections);
    s.recall = ratio(s.true_positives, n_gt);
    s.ap50 = (n_gt > 0).then(|| average_precision(&s.curve));
    s
}

/// All-point interpolated average precision of a (recall, precision) curve.
pub fn average_precision(curve: &[(f64, f64)]) -> f64 {
    let mut ap = 0.0;
    let mut prev_recall = 0.0;
    for (i, &(r, _)) in curve.iter().enumerate() {
        if r > prev_recall {
            // The envelope: the best precision at this recall or beyond.
            let p = curve[i..].iter().map(|&(_, p)| p).fold(0.0, f64::max);
            ap += (r - prev_recall) * p;
            prev_recall = r;
        }
    }
    ap
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cap(clip: &str, rule: RuleKind, confirm: f64, b: [f64; 4], score: f64) -> CaptureRec {
        CaptureRec {
            clip: clip.into(),
            rule,
            zone: "z".into(),
            label: "car".into(),
            start_s: confirm - 30.0,
            confirm_s: confirm,
            bbox: b,
            score,
            dwell_s: 30.0,
            plate: None,
        }
    }

    fn ev(clip: &str, rule: RuleKind, a: f64, b: f64, bx: Option<[f64; 4]>) -> EventRec {
        EventRec {
            clip: clip.into(),
            rule,
            start_s: a,
            end_s: b,
            bbox: bx,
            dwell_s: Some(30.0),
            plate: None,
        }
    }

    #[test]
    fn plate_scores_count_reads_and_exact_matches_of_caught_vehicles() {
        let p = MatchParams::default();
        let b = [0.5, 0.5, 0.7, 0.7];
        let mut events = vec![
            ev("a", RuleKind::AbandonedVehicle, 0.0, 100.0, Some(b)),
            ev("b", RuleKind::AbandonedVehicle, 0.0, 100.0, Some(b)),
            ev("c", RuleKind::AbandonedVehicle, 0.0, 100.0, Some(b)),
            ev("d", RuleKind::AbandonedVehicle, 0.0, 100.0, Some(b)),
        ];
        for (e, t) in events
            .iter_mut()
            .zip(["京A12345", "京A12346", "京A12347", "京A12348"])
        {
            e.plate = Some(t.into());
        }
        let mut caps = vec![
            cap("a", RuleKind::AbandonedVehicle, 40.0, b, 0.9),
            cap("b", RuleKind::AbandonedVehicle, 40.0, b, 0.9),
            cap("c", RuleKind::AbandonedVehicle, 40.0, b, 0.9),
        ];
        caps[0].plate = Some("京A12345".into()); // right
        caps[1].plate = Some("京A99999".into()); // wrong
        // c: caught, not read; d: missed.
        let v = match_events(&caps, &events, &p);
        let s = plate_scores(&caps, &events, &v).unwrap();
        assert_eq!((s.events, s.caught, s.read, s.exact), (4, 3, 2, 1));
        assert_eq!(s.read_rate, Some(2.0 / 3.0));
        assert_eq!(s.exact_rate, Some(1.0 / 3.0));
        assert_eq!(s.precision, Some(0.5));
        for e in &mut events {
            e.plate = None;
        }
        assert_eq!(plate_scores(&caps, &events, &v), None);
    }

    const V: RuleKind = RuleKind::AbandonedVehicle;
    const S: RuleKind = RuleKind::IllegalVendor;
    const BOX: [f64; 4] = [0.1, 0.1, 0.3, 0.3];

    fn all(caps: &[CaptureRec], evs: &[EventRec]) -> (Vec<Verdict>, EventScores) {
        let v = match_events(caps, evs, &MatchParams::default());
        let s = score_events(caps, evs, &v, |_| true, |_| true);
        (v, s)
    }

    #[test]
    fn iou_by_hand() {
        assert_eq!(iou(&[0.0, 0.0, 2.0, 2.0], &[1.0, 1.0, 3.0, 3.0]), 1.0 / 7.0);
        assert_eq!(iou(&[0.0, 0.0, 1.0, 1.0], &[2.0, 2.0, 3.0, 3.0]), 0.0);
        assert_eq!(iou(&BOX, &BOX), 1.0);
    }

    #[test]
    fn hits_misses_false_and_duplicates_by_hand() {
        // Two events; three captures: one hit, one duplicate of it, one in the wrong place.
        let evs = [
            ev("a", V, 0.0, 80.0, Some(BOX)),
            ev("a", V, 10.0, 80.0, Some([0.6, 0.6, 0.9, 0.9])),
        ];
        let caps = [
            cap("a", V, 35.0, [0.11, 0.1, 0.3, 0.31], 0.9),
            cap("a", V, 60.0, BOX, 0.8),
            cap("a", V, 50.0, [0.3, 0.6, 0.5, 0.9], 0.7),
        ];
        let (v, s) = all(&caps, &evs);
        assert_eq!(
            v,
            vec![Verdict::Hit(0), Verdict::Duplicate(0), Verdict::False]
        );
        assert_eq!(
            (s.hits, s.duplicates, s.false_captures, s.missed),
            (1, 1, 1, 1)
        );
        assert_eq!(s.precision, Some(1.0 / 3.0));
        assert_eq!(s.recall, Some(0.5));
        // 2·1 / (2 + 1 + 1 + 1)
        assert_eq!(s.f1, Some(0.4));
        // Confirmed at 35 s; dwell from 0 s reached at 30 s.
        assert_eq!(s.time_to_capture_median_s, Some(5.0));
        assert_eq!(s.duplicates_per_event, Some(0.5));
    }

    #[test]
    fn no_captures_and_no_truth() {
        let evs = [ev("a", V, 0.0, 10.0, None)];
        let (_, s) = all(&[], &evs);
        assert_eq!(s.precision, None);
        assert_eq!(s.recall, Some(0.0));
        assert_eq!(s.f1, Some(0.0));
        assert_eq!(s.missed, 1);
        assert_eq!(s.time_to_capture_median_s, None);

        let caps = [cap("a", V, 5.0, BOX, 0.5)];
        let (v, s) = all(&caps, &[]);
        assert_eq!(v, vec![Verdict::False]);
        assert_eq!(s.precision, Some(0.0));
        assert_eq!(s.recall, None);
        assert_eq!(s.f1, Some(0.0));
        assert_eq!(s.duplicates_per_event, None);

        let (_, s) = all(&[], &[]);
        assert_eq!((s.precision, s.recall, s.f1), (None, None, None));
    }

    #[test]
    fn all_duplicates() {
        let evs = [ev("a", S, 0.0, 100.0, None)];
        let caps: Vec<_> = [40.0, 50.0, 60.0, 70.0]
            .iter()
            .map(|&t| cap("a", S, t, BOX, 0.5))
            .collect();
        let (v, s) = all(&caps, &evs);
        assert_eq!(v[0], Verdict::Hit(0));
        assert!(v[1..].iter().all(|x| *x == Verdict::Duplicate(0)));
        assert_eq!(s.precision, Some(0.25));
        assert_eq!(s.recall, Some(1.0));
        assert_eq!(s.duplicates_per_event, Some(3.0));
        // 2 / (2 + 3)
        assert_eq!(s.f1, Some(0.4));
    }

    #[test]
    fn an_event_that_starts_before_the_clip() {
        // Began 100 s before the clip: the dwell can only be seen from the clip's start.
        let evs = [ev("a", V, -100.0, 50.0, None)];
        let caps = [cap("a", V, 31.0, BOX, 0.5)];
        let (v, s) = all(&caps, &evs);
        assert_eq!(v, vec![Verdict::Hit(0)]);
        assert_eq!(s.time_to_capture_max_s, Some(1.0));
    }

    #[test]
    fn rule_clip_time_and_tolerance_must_agree() {
        let evs = [ev("a", V, 10.0, 40.0, None)];
        let p = MatchParams::default();
        let wrong_rule = cap("a", S, 20.0, BOX, 0.5);
        let wrong_clip = cap("b", V, 20.0, BOX, 0.5);
        let late = cap("a", V, 42.5, BOX, 0.5);
        let just = cap("a", V, 41.9, BOX, 0.5);
        let v = match_events(&[wrong_rule, wrong_clip, late, just], &evs, &p);
        assert_eq!(
            v,
            vec![
                Verdict::False,
                Verdict::False,
                Verdict::False,
                Verdict::Hit(0)
            ]
        );
    }

    #[test]
    fn a_capture_prefers_the_event_not_yet_hit() {
        let evs = [ev("a", V, 0.0, 80.0, None), ev("a", V, 0.0, 80.0, None)];
        let caps = [cap("a", V, 30.0, BOX, 0.5), cap("a", V, 30.0, BOX, 0.5)];
        let (v, s) = all(&caps, &evs);
        assert_eq!(v, vec![Verdict::Hit(0), Verdict::Hit(1)]);
        assert_eq!(s.recall, Some(1.0));
    }

    #[test]
    fn subsets_per_rule() {
        let evs = [ev("a", V, 0.0, 80.0, None), ev("a", S, 0.0, 80.0, None)];
        let caps = [cap("a", V, 30.0, BOX, 0.5)];
        let v = match_events(&caps, &evs, &MatchParams::default());
        let vs = score_events(&caps, &evs, &v, |c| c.rule == V, |e| e.rule == V);
        let ss = score_events(&caps, &evs, &v, |c| c.rule == S, |e| e.rule == S);
        assert_eq!((vs.recall, vs.precision), (Some(1.0), Some(1.0)));
        assert_eq!((ss.recall, ss.precision, ss.missed), (Some(0.0), None, 1));
    }

    fn det(frame: u64, b: [f64; 4], score: f64) -> FrameDet {
        FrameDet {
            frame: (0, frame),
            class: "car".into(),
            bbox: b,
            score,
        }
    }

    fn gt(frame: u64, b: [f64; 4]) -> FrameGt {
        FrameGt {
            frame: (0, frame),
            class: "car".into(),
            bbox: b,
            ignore: false,
        }
    }

    #[test]
    fn average_precision_by_hand() {
        // Three truth boxes over two frames; four detections:
        // 0.9 TP, 0.8 FP, 0.7 TP, 0.6 FP (a second box on a matched truth box).
        let a = [0.0, 0.0, 0.5, 0.5];
        let b = [0.5, 0.5, 1.0, 1.0];
        let gts = [gt(0, a), gt(0, b), gt(1, a)];
        let dets = [
            det(0, a, 0.9),
            det(1, b, 0.8),
            det(0, b, 0.7),
            det(0, a, 0.6),
        ];
        let s = score_class(&dets, &gts);
        assert_eq!((s.true_positives, s.false_positives), (2, 2));
        assert_eq!(
            s.curve,
            vec![
                (1.0 / 3.0, 1.0),
                (1.0 / 3.0, 0.5),
                (2.0 / 3.0, 2.0 / 3.0),
                (2.0 / 3.0, 0.5)
            ]
        );
        // 1/3 · 1 + 1/3 · 2/3
        let ap = s.ap50.unwrap();
        assert!((ap - (1.0 / 3.0 + 2.0 / 9.0)).abs() < 1e-12, "{ap}");
        assert_eq!(s.recall, Some(2.0 / 3.0));
        assert_eq!(s.precision, Some(0.5));
    }

    #[test]
    fn ties_in_score_are_taken_in_frame_order() {
        let a = [0.0, 0.0, 0.5, 0.5];
        let gts = [gt(1, a)];
        // Same score: the frame-0 (false) detection is taken first, whatever the input order.
        let d1 = [det(1, a, 0.5), det(0, a, 0.5)];
        let d2 = [det(0, a, 0.5), det(1, a, 0.5)];
        let s1 = score_class(&d1, &gts);
        let s2 = score_class(&d2, &gts);
        assert_eq!(s1.curve, s2.curve);
        assert_eq!(s1.curve, vec![(0.0, 0.0), (1.0, 0.5)]);
        assert_eq!(s1.ap50, Some(0.5));
    }

    #[test]
    fn no_detections_no_truth_and_ignored_regions() {
        let a = [0.0, 0.0, 0.5, 0.5];
        let s = score_class(&[], &[gt(0, a)]);
        assert_eq!(
            (s.ap50, s.recall, s.precision),
            (Some(0.0), Some(0.0), None)
        );
        let s = score_class(&[det(0, a, 0.9)], &[]);
        assert_eq!((s.ap50, s.recall, s.precision), (None, None, Some(0.0)));
        let ignored = FrameGt {
            ignore: true,
            ..gt(0, a)
        };
        let s = score_class(&[det(0, a, 0.9)], &[ignored]);
        assert_eq!((s.detections, s.truth_boxes, s.false_positives), (0, 0, 0));
    }

    #[test]
    fn median_by_hand() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }
}
