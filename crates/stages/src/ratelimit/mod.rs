//! Stage 5, limits: what becomes a capture. Per camera:
//! - deduplication: the same (camera, preset, rule, place) merges into one capture while that
//!   capture is open or within a cooldown after it closed, raising its aggregation count;
//! - a token bucket caps captures per hour; a candidate it refuses waits in a bounded
//!   deferral queue (saved with the camera's state) and is filed when a token returns, if
//!   its object is still there; a candidate at a place that already waits (same rule, same
//!   place) merges into it; when the queue is full of other places the oldest waiting one
//!   expires, with its reason, to make room (places are never merged); one that waits too
//!   long, or whose object left, expires;
//! - every candidate that does not become a capture, every deferral, merge and expiry is
//!   recorded with its reason.
//!
//! Also the global inference budget, shared fairly between cameras.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::{LimitSettings, RuleKind};
use crate::detect::decode::iou;
pub use crate::model::Capture;
use crate::model::candidate::{Deferred, Resemblance};
use crate::rules::engine::Candidate;

/// A token bucket on the pipeline clock.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    per_s: f64,
    tokens: f64,
    last: Option<f64>,
}

impl TokenBucket {
    pub fn new(capacity: f64, per_s: f64) -> Self {
        Self {
            capacity,
            per_s,
            tokens: capacity,
            last: None,
        }
    }

    /// Takes a token at time `t` if there is one.
    pub fn take(&mut self, t: f64) -> bool {
        if let Some(last) = self.last
            && t > last
        {
            self.tokens = (self.tokens + (t - last) * self.per_s).min(self.capacity);
        }
        self.last = Some(self.last.map_or(t, |l| l.max(t)));
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SuppressionReason {
    /// The token bucket was empty: deferred, waiting for a token.
    RateLimit,
    /// Merged into an open capture (or one in cooldown) of the same rule and place.
    Duplicate,
    /// Met outside active hours: deferred until they open.
    OutsideHours,
    /// Merged into a candidate of the same rule and place that waits for a token.
    Aggregated,
    /// Waited too long for a token, or its object left first, or the full deferral queue
    /// made room for a newer candidate at another place: not filed.
    Expired,
    /// Looks like a capture operators rejected (the verdict memory): recorded with its
    /// evidence as a learned suppression, out of the review queue, undoable.
    ResemblesRejected,
}

/// A vehicle capture of episode `id`, confirmed at `confirm` after a 600 s dwell: a fixture
/// for the unit tests of the stages after the limiter.
#[doc(hidden)]
pub fn sample_capture(id: u64, confirm: f64) -> Capture {
    Capture {
        id,
        candidate: Candidate {
            rule: crate::model::RuleKind::AbandonedVehicle,
            camera: "c".into(),
            preset: None,
            zone: "z".into(),
            place: [0.1, 0.1, 0.2, 0.2],
            episode: Some(id),
            label: "car".into(),
            start: confirm - 600.0,
            confirm,
            bbox: [0.1, 0.1, 0.2, 0.2],
            score: 0.7,
            dwell_s: 600.0,
            embedding: None,
            parts: Vec::new(),
            plate: None,
        },
        aggregation: 1,
        last_evidence: confirm,
        closed_at: None,
        left: false,
        resembles: None,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Suppression {
    pub reason: SuppressionReason,
    #[serde(flatten)]
    pub candidate: Candidate,
    /// For duplicates: the capture it merged into.
    pub merged_into: Option<u64>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Verdict {
    Captured(Capture),
    Suppressed(Suppression),
}

/// One camera's case limits.
pub struct CaseLimiter {
    cfg: LimitSettings,
    bucket: TokenBucket,
    captures: Vec<Capture>,
    next_id: u64,
    deferred: Vec<Deferred>,
    /// Waiting candidates the full queue expired to make room, not yet taken by the caller.
    evicted: Vec<Suppression>,
}

impl CaseLimiter {
    pub fn new(cfg: &LimitSettings) -> Self {
        Self {
            bucket: TokenBucket::new(cfg.burst, cfg.captures_per_hour / 3600.0),
            cfg: cfg.clone(),
            captures: Vec::new(),
            next_id: 0,
            deferred: Vec::new(),
            evicted: Vec::new(),
        }
    }

    /// Candidates waiting for a token, oldest first (saved with the camera's state).
    pub fn deferred(&self) -> &[Deferred] {
        &self.deferred
    }

    /// The waiting candidates that a full queue expired to make room since the last call,
    /// each with its reason (`Expired`), for the caller to record.
    pub fn take_evicted(&mut self) -> Vec<Suppression> {
        std::mem::take(&mut self.evicted)
    }

    /// Takes back the waiting candidates a restart saved.
    pub fn restore_deferred(&mut self, deferred: Vec<Deferred>) {
        self.deferred = deferred;
    }

    fn capture(
        &mut self,
        candidate: Candidate,
        aggregation: u32,
        resembles: Option<Resemblance>,
    ) -> Capture {
        let t = candidate.confirm;
        let cap = Capture {
            id: self.next_id,
            aggregation,
            last_evidence: t,
            closed_at: None,
            left: false,
            resembles,
            candidate,
        };
        self.next_id += 1;
        self.captures.push(cap.clone());
        cap
    }

    /// Files waiting candidates as tokens return, oldest first, at time `t`. One whose
    /// object is gone (`present` says no) or that waited past the expiry is dropped, and
    /// recorded as expired.
    pub fn release(&mut self, t: f64, present: impl Fn(&Candidate) -> bool) -> Vec<Verdict> {
        let mut out = Vec::new();
        while let Some(d) = self.deferred.first() {
            let expired =
                t - d.candidate.confirm > self.cfg.deferred_expiry_s || !present(&d.candidate);
            if !expired && !self.bucket.take(t) {
                break; // first in, first out: the oldest waits for the next token
            }
            let d = self.deferred.remove(0);
            let mut candidate = d.candidate;
            candidate.confirm = t;
            out.push(if expired {
                Verdict::Suppressed(Suppression {
                    reason: SuppressionReason::Expired,
                    candidate,
                    merged_into: None,
                })
            } else {
                Verdict::Captured(self.capture(candidate, 1 + d.merged, None))
            });
        }
        out
    }

    /// Decides about a candidate that met its rule during active hours.
    pub fn offer(&mut self, c: Candidate) -> Verdict {
        self.offer_judged(c, None)
    }

    /// [`Self::offer`], with the verdict memory's judgement: a candidate that resembles a
    /// rejected capture (and is no duplicate) becomes a learned suppression at once, taking
    /// no token; it stays open like a capture, so its object's later candidates merge into it.
    pub fn offer_judged(&mut self, c: Candidate, resembles: Option<Resemblance>) -> Verdict {
        let t = c.confirm;
        let cooldown = self.cfg.cooldown_s;
        if let Some(cap) = self.captures.iter_mut().find(|k| {
            k.candidate.rule == c.rule
                && k.candidate.preset == c.preset
                && iou(&k.candidate.place, &c.place) >= self.cfg.place_iou
                && k.closed_at
                    .is_none_or(|closed| !k.left && t - closed <= cooldown)
        }) {
            cap.aggregation += 1;
            cap.last_evidence = cap.last_evidence.max(t);
            return Verdict::Suppressed(Suppression {
                reason: SuppressionReason::Duplicate,
                candidate: c,
                merged_into: Some(cap.id),
            });
        }
        if resembles.is_some() {
            return Verdict::Captured(self.capture(c, 1, resembles));
        }
        // The same rule at a place that already waits: one deferred candidate, merged.
        let place_iou = self.cfg.place_iou;
        if let Some(d) = self.deferred.iter_mut().find(|d| {
            d.candidate.rule == c.rule
                && d.candidate.preset == c.preset
                && iou(&d.candidate.place, &c.place) >= place_iou
        }) {
            d.merged += 1;
            return Verdict::Suppressed(Suppression {
                reason: SuppressionReason::Aggregated,
                candidate: c,
                merged_into: None,
            });
        }
        // Waiting candidates go first: a new one does not jump the queue.
        if !self.deferred.is_empty() || !self.bucket.take(t) {
            if self.deferred.len() >= self.cfg.deferred_max.max(1) {
                // Full of other places: the oldest waiting one expires (recorded, see
                // `take_evicted`); places are never merged.
                let mut oldest = self.deferred.remove(0).candidate;
                oldest.confirm = t;
                self.evicted.push(Suppression {
                    reason: SuppressionReason::Expired,
                    candidate: oldest,
                    merged_into: None,
                });
            }
            self.deferred.push(Deferred {
                candidate: c.clone(),
                merged: 0,
            });
            return Verdict::Suppressed(Suppression {
                reason: SuppressionReason::RateLimit,
                candidate: c,
                merged_into: None,
            });
        }
        Verdict::Captured(self.capture(c, 1, None))
    }

    /// Records a candidate that met its rule outside active hours.
    pub fn outside_hours(&mut self, c: Candidate) -> Suppression {
        Suppression {
            reason: SuppressionReason::OutsideHours,
            candidate: c,
            merged_into: None,
        }
    }

    /// The episode behind a capture ended: the capture closes and its cooldown starts.
    /// `seen_to_leave`: its place was seen empty or another vehicle took it; a vehicle
    /// capture then has no cooldown (the next vehicle there is another vehicle).
    pub fn episode_closed(&mut self, episode: u64, t: f64, seen_to_leave: bool) {
        for k in &mut self.captures {
            if k.candidate.episode == Some(episode) && k.closed_at.is_none() {
                k.closed_at = Some(t);
                k.left = seen_to_leave && k.candidate.rule == RuleKind::AbandonedVehicle;
            }
        }
        self.forget(t);
    }

    /// A zone condition cleared (bins).
    pub fn zone_cleared(&mut self, rule: RuleKind, zone: &str, t: f64) {
        for k in &mut self.captures {
            if k.candidate.rule == rule && k.candidate.zone == zone && k.closed_at.is_none() {
                k.closed_at = Some(t);
            }
        }
        self.forget(t);
    }

    /// Captures past their cooldown no longer matter for deduplication.
    fn forget(&mut self, t: f64) {
        let cooldown = self.cfg.cooldown_s;
        self.captures
            .retain(|k| k.closed_at.is_none_or(|c| t - c <= cooldown));
    }

    /// Open captures and those still in cooldown, with their current aggregation counts.
    pub fn captures(&self) -> &[Capture] {
        &self.captures
    }

    /// Number of open captures for (rule, place) at IoU ≥ place_iou.
    pub fn open_at(&self, rule: RuleKind, place: &[f32; 4]) -> usize {
        self.captures
            .iter()
            .filter(|k| {
                k.closed_at.is_none()
                    && k.candidate.rule == rule
                    && iou(&k.candidate.place, place) >= self.cfg.place_iou
            })
            .count()
    }
}

/// The global inference budget, shared fairly: each camera gets `rate × weight / Σweight`
/// inferences per second, with weight 2 for cameras that have open episodes, so no camera
/// starves and the ones with something to confirm go first.
pub struct InferenceBudget {
    rate: f64,
    cameras: BTreeMap<String, (u32, TokenBucket)>,
}

impl InferenceBudget {
    pub fn new(rate: f64) -> Self {
        Self {
            rate,
            cameras: BTreeMap::new(),
        }
    }

    /// Whether `camera` may run an inference at `t`.
    pub fn allow(&mut self, camera: &str, t: f64, has_open_episodes: bool) -> bool {
        let w = if has_open_episodes { 2 } else { 1 };
        self.cameras
            .entry(camera.to_string())
            .or_insert_with(|| (w, TokenBucket::new(1.0, 0.0)))
            .0 = w;
        let total: u32 = self.cameras.values().map(|(w, _)| *w).sum();
        let rate = self.rate;
        let (w, bucket) = self.cameras.get_mut(camera).expect("just inserted");
        bucket.per_s = rate * *w as f64 / total as f64;
        bucket.take(t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cand(rule: RuleKind, x: f32, t: f64, episode: u64) -> Candidate {
        Candidate {
            rule,
            camera: "c".into(),
            preset: None,
            zone: "z".into(),
            place: [x, 0.5, x + 0.1, 0.6],
            episode: Some(episode),
            label: "car".into(),
            start: t - 60.0,
            confirm: t,
            bbox: [x, 0.5, x + 0.1, 0.6],
            score: 0.8,
            dwell_s: 60.0,
            embedding: None,
            parts: Vec::new(),
            plate: None,
        }
    }

    fn limits() -> LimitSettings {
        LimitSettings {
            captures_per_hour: 3.0,
            burst: 2.0,
            cooldown_s: 100.0,
            place_iou: 0.3,
            inference_fps: None,
            deferred_max: 2,
            deferred_expiry_s: 5000.0,
        }
    }

    #[test]
    fn duplicates_merge_while_open_and_in_cooldown() {
        let mut l = CaseLimiter::new(&limits());
        let Verdict::Captured(c) = l.offer(cand(RuleKind::AbandonedVehicle, 0.1, 0.0, 1)) else {
            panic!()
        };
        // Same place, another episode (the tracker lost and found it): merged.
        let v = l.offer(cand(RuleKind::AbandonedVehicle, 0.11, 10.0, 2));
        assert!(
            matches!(v, Verdict::Suppressed(Suppression { reason: SuppressionReason::Duplicate, merged_into: Some(id), .. }) if id == c.id)
        );
        assert_eq!(l.captures()[0].aggregation, 2);
        assert_eq!(l.captures()[0].last_evidence, 10.0);
        // Another rule at the same place is not a duplicate.
        assert!(matches!(
            l.offer(cand(RuleKind::IllegalVendor, 0.1, 11.0, 3)),
            Verdict::Captured(_)
        ));
        // Closed at 20; within the 100 s cooldown it still merges, after it a new capture
        // needs a token: the burst of 2 is spent, and 3/h refills one every 1200 s.
        l.episode_closed(1, 20.0, false);
        l.episode_closed(2, 20.0, false);
        assert!(matches!(
            l.offer(cand(RuleKind::AbandonedVehicle, 0.1, 110.0, 4)),
            Verdict::Suppressed(Suppression {
                reason: SuppressionReason::Duplicate,
                ..
            })
        ));
        l.episode_closed(4, 115.0, false);
        let v = l.offer(cand(RuleKind::AbandonedVehicle, 0.1, 300.0, 5));
        assert!(
            matches!(
                v,
                Verdict::Suppressed(Suppression {
                    reason: SuppressionReason::RateLimit,
                    ..
                })
            ),
            "{v:?}"
        );
        // It waits; when a token returns it is filed, at that time, before anything new.
        assert_eq!(l.deferred().len(), 1);
        assert!(l.release(1000.0, |_| true).is_empty());
        let out = l.release(1300.0, |_| true);
        assert!(
            matches!(&out[..], [Verdict::Captured(c)] if c.candidate.episode == Some(5) && c.candidate.confirm == 1300.0),
            "{out:?}"
        );
        assert!(l.deferred().is_empty());
    }

    #[test]
    fn refused_candidates_wait_merge_when_the_queue_is_full_and_expire() {
        let mut l = CaseLimiter::new(&LimitSettings {
            burst: 1.0,
            ..limits()
        });
        let reason = |v: Verdict| match v {
            Verdict::Suppressed(s) => Some(s.reason),
            Verdict::Captured(_) => None,
        };
        assert_eq!(
            reason(l.offer(cand(RuleKind::AbandonedVehicle, 0.0, 0.0, 1))),
            None
        );
        // Two more vehicles at other places wait (the queue holds 2); a later candidate at
        // the first waiting place merges into it.
        for (x, e) in [(0.2, 2), (0.4, 3)] {
            assert_eq!(
                reason(l.offer(cand(RuleKind::AbandonedVehicle, x, 10.0, e))),
                Some(SuppressionReason::RateLimit)
            );
        }
        assert_eq!(
            reason(l.offer(cand(RuleKind::AbandonedVehicle, 0.2, 11.0, 4))),
            Some(SuppressionReason::Aggregated)
        );
        assert_eq!(l.deferred()[0].merged, 1);
        assert!(l.take_evicted().is_empty());
        // A token at 1210 s (3/h): episode 2 has gone by then, so it expires and episode 3
        // takes the token.
        let out = l.release(1210.0, |c| c.episode != Some(2));
        assert_eq!(out.len(), 2, "{out:?}");
        assert!(
            matches!(&out[0], Verdict::Suppressed(s) if s.reason == SuppressionReason::Expired && s.candidate.episode == Some(2))
        );
        assert!(matches!(&out[1], Verdict::Captured(c) if c.candidate.episode == Some(3)));
        // Nothing waits past the expiry.
        l.offer(cand(RuleKind::IllegalVendor, 0.8, 1211.0, 5));
        let out = l.release(1211.0 + 5001.0, |_| false);
        assert!(
            matches!(&out[..], [Verdict::Suppressed(s)] if s.reason == SuppressionReason::Expired)
        );
    }

    #[test]
    fn a_vehicle_seen_to_leave_leaves_no_cooldown() {
        let mut l = CaseLimiter::new(&LimitSettings {
            burst: 5.0,
            ..limits()
        });
        assert!(matches!(
            l.offer(cand(RuleKind::AbandonedVehicle, 0.1, 0.0, 1)),
            Verdict::Captured(_)
        ));
        l.episode_closed(1, 10.0, true);
        // Another car at the same spot 20 s later is another case.
        assert!(matches!(
            l.offer(cand(RuleKind::AbandonedVehicle, 0.1, 30.0, 2)),
            Verdict::Captured(_)
        ));
        // Lost from view (not seen to leave): the cooldown merges.
        l.episode_closed(2, 40.0, false);
        assert!(matches!(
            l.offer(cand(RuleKind::AbandonedVehicle, 0.1, 50.0, 3)),
            Verdict::Suppressed(_)
        ));
    }

    #[test]
    fn the_budget_is_shared_and_open_episodes_weigh_more() {
        let mut b = InferenceBudget::new(3.0);
        let (mut busy, mut idle) = (0, 0);
        for i in 0..300 {
            let t = i as f64 * 0.1;
            busy += b.allow("busy", t, true) as u32;
            idle += b.allow("idle", t, false) as u32;
        }
        // 30 s at 3/s = 90 inferences: 2/3 and 1/3, give or take the first token each.
        assert!((58..=62).contains(&busy), "{busy}");
        assert!((28..=32).contains(&idle), "{idle}");
    }

    #[test]
    fn a_full_queue_expires_its_oldest_with_the_reason_and_never_merges_places() {
        let mut l = CaseLimiter::new(&LimitSettings {
            burst: 1.0,
            ..limits()
        });
        assert!(matches!(
            l.offer(cand(RuleKind::IllegalVendor, 0.0, 0.0, 1)),
            Verdict::Captured(_)
        ));
        // The queue (2) fills with two stalls at other places.
        for (x, e) in [(0.2, 2), (0.4, 3)] {
            l.offer(cand(RuleKind::IllegalVendor, x, 10.0, e));
        }
        // A third stall far from both: it waits, the oldest expires with its reason.
        let v = l.offer(cand(RuleKind::IllegalVendor, 0.8, 12.0, 4));
        assert!(matches!(
            v,
            Verdict::Suppressed(Suppression {
                reason: SuppressionReason::RateLimit,
                ..
            })
        ));
        let gone = l.take_evicted();
        assert_eq!(gone.len(), 1);
        assert_eq!(gone[0].reason, SuppressionReason::Expired);
        assert_eq!(gone[0].candidate.episode, Some(2));
        let waiting: Vec<_> = l.deferred().iter().map(|d| d.candidate.episode).collect();
        assert_eq!(waiting, vec![Some(3), Some(4)]);
        assert!(l.deferred().iter().all(|d| d.merged == 0));
    }

    proptest! {
        #[test]
        fn the_token_bucket_never_exceeds_its_budget_over_any_window(
            gaps in proptest::collection::vec(0.0f64..400.0, 1..200),
            per_hour in 1.0f64..100.0,
            burst in 1.0f64..10.0,
        ) {
            let mut b = TokenBucket::new(burst, per_hour / 3600.0);
            let mut t = 0.0;
            let mut taken = Vec::new();
            for g in gaps {
                t += g;
                if b.take(t) {
                    taken.push(t);
                }
            }
            for i in 0..taken.len() {
                for j in i..taken.len() {
                    let window = taken[j] - taken[i];
                    let n = (j - i + 1) as f64;
                    prop_assert!(n <= burst + window * per_hour / 3600.0 + 1e-9,
                        "{n} captures in {window} s");
                }
            }
        }

        #[test]
        fn a_deferred_candidate_only_ever_holds_its_own_place(
            offers in proptest::collection::vec((0usize..2, 0usize..5, 0.0f64..30.0), 1..80),
            max in 1usize..4,
        ) {
            let rules = [RuleKind::AbandonedVehicle, RuleKind::IllegalVendor];
            let places = [0.0f32, 0.02, 0.3, 0.6, 0.85];
            let mut l = CaseLimiter::new(&LimitSettings { burst: 1.0, deferred_max: max, ..limits() });
            let mut t = 0.0;
            // Each waiting candidate's place, and every place merged into it.
            for (k, (r, p, gap)) in offers.into_iter().enumerate() {
                t += gap;
                let c = cand(rules[r], places[p], t, k as u64);
                let before: Vec<Deferred> = l.deferred().to_vec();
                let v = l.offer(c.clone());
                if let Verdict::Suppressed(s) = &v && s.reason == SuppressionReason::Aggregated {
                    let into = before.iter().find(|d| d.candidate.rule == c.rule
                        && iou(&d.candidate.place, &c.place) >= limits().place_iou);
                    prop_assert!(into.is_some(), "merged across places");
                }
                prop_assert!(l.deferred().len() <= max);
                let evicted = l.take_evicted();
                prop_assert!(evicted.iter().all(|s| s.reason == SuppressionReason::Expired));
            }
        }

        #[test]
        fn never_two_open_captures_for_one_camera_rule_and_place(
            offers in proptest::collection::vec((0usize..3, 0usize..4, 0.0f64..50.0, proptest::bool::ANY), 1..120),
        ) {
            let rules = [RuleKind::AbandonedVehicle, RuleKind::IllegalVendor, RuleKind::OverflowingBin];
            let places = [0.0f32, 0.02, 0.4, 0.8];
            let mut l = CaseLimiter::new(&LimitSettings { captures_per_hour: 1000.0, burst: 1000.0, ..limits() });
            let mut t = 0.0;
            for (k, (r, p, gap, close)) in offers.into_iter().enumerate() {
                t += gap;
                let c = cand(rules[r], places[p], t, k as u64);
                let place = c.place;
                l.offer(c);
                prop_assert!(l.open_at(rules[r], &place) <= 1);
                if close {
                    l.episode_closed(k as u64, t, false);
                }
            }
        }
    }
}
