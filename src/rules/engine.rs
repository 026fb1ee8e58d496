//! The rules of one camera: which open episodes (or bin zones) meet a rule, in which zone,
//! after how long, during active hours.

use std::collections::BTreeMap;

use serde::Serialize;

use super::zones::anchor_point;
use crate::config::{CameraConfig, RuleConfig, RuleKind, Zone};
use crate::detect::decode::iou;
use crate::detect::gate::changed_share;
use crate::detect::{BBox, Detection, ObjectKind};
use crate::episodes::{Episode, EpisodeTracker};
use crate::ingest::Frame;
use crate::rules::zones::ZoneKind;

/// A rule met: what the limiter decides about.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
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
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Met during active hours.
    Met(Candidate),
    /// Met outside the rule's or the zone's active hours.
    OutsideHours(Candidate),
    /// A bin zone's condition cleared (its capture, if any, closes).
    Cleared { rule: RuleKind, zone: String },
}

/// The reference-image state of one bin zone.
#[derive(Debug, Default, Clone)]
struct BinState {
    reference: Option<Vec<f32>>,
    previous: Option<Vec<f32>>,
    stable: u32,
    over_since: Option<f64>,
    resolved: bool,
}

const BIN_THUMB: usize = 16;
/// Consecutive unoccluded, unchanging frames before a clean reference is taken.
const REFERENCE_STABLE_FRAMES: u32 = 3;
/// How recently a person must have been next to a stall.
const PERSON_NEAR_WITHIN_S: f64 = 60.0;

pub struct RuleEngine {
    cam: CameraConfig,
    /// Whether the model reports bin_overflow/garbage itself.
    model_sees_overflow: bool,
    bins: BTreeMap<String, BinState>,
}

fn ground(kind: ObjectKind) -> bool {
    matches!(kind, ObjectKind::Vehicle | ObjectKind::Person)
}

impl RuleEngine {
    pub fn new(cam: CameraConfig, model_sees_overflow: bool) -> Self {
        Self {
            cam,
            model_sees_overflow,
            bins: BTreeMap::new(),
        }
    }

    fn zones_of<'a>(&'a self, rule: &'a RuleConfig) -> impl Iterator<Item = &'a Zone> + 'a {
        self.cam.zones.iter().filter(move |z| {
            rule.zones.contains(&z.id) && (z.preset.is_none() || z.preset == self.cam.preset)
        })
    }

    fn in_kind(&self, kind: ZoneKind, x: f32, y: f32) -> bool {
        self.cam.zones.iter().any(|z| {
            z.kind == kind
                && (z.preset.is_none() || z.preset == self.cam.preset)
                && z.polygon.contains(x, y)
        })
    }

    fn active(&self, rule: &RuleConfig, zone: &Zone, t: f64) -> bool {
        rule.active.contains(t, self.cam.utc_offset_s)
            && zone.active.contains(t, self.cam.utc_offset_s)
    }

    /// Evaluates every rule at time `t`, after the tracker saw this frame's detections.
    pub fn evaluate(
        &mut self,
        t: f64,
        tracker: &mut EpisodeTracker,
        dets: &[Detection],
        frame: Option<&Frame>,
    ) -> Vec<Outcome> {
        let mut out = Vec::new();
        // Stall evidence: note people standing next to stall episodes.
        let people: Vec<&Detection> = dets
            .iter()
            .filter(|d| d.kind == ObjectKind::Person)
            .collect();
        for e in tracker
            .state
            .open
            .iter_mut()
            .filter(|e| e.kind == ObjectKind::StallPart)
        {
            if people.iter().any(|p| near(&p.bbox, &e.last_box)) {
                e.person_near = Some(t);
            }
        }
        let rules = self.cam.rules.clone();
        for rule in &rules {
            match rule.kind {
                RuleKind::AbandonedVehicle | RuleKind::IllegalVendor => {
                    self.episode_rule(rule, t, tracker, &mut out)
                }
                RuleKind::OverflowingBin if self.model_sees_overflow => {
                    self.episode_rule(rule, t, tracker, &mut out)
                }
                RuleKind::OverflowingBin => self.bin_reference_rule(rule, t, dets, frame, &mut out),
            }
        }
        out
    }

    /// Whether an open episode could meet one of this camera's rules: a kind the rule
    /// watches, its anchor in one of the rule's zones. (Patrol visits such cameras sooner.)
    pub fn watches(&self, e: &Episode) -> bool {
        self.cam.rules.iter().any(|rule| {
            if !rule_kinds(rule.kind).contains(&e.kind) {
                return false;
            }
            let (x, y) = anchor_point(&e.anchor, ground(e.kind));
            self.zones_of(rule).any(|z| z.polygon.contains(x, y))
        })
    }

    fn episode_rule(
        &self,
        rule: &RuleConfig,
        t: f64,
        tracker: &mut EpisodeTracker,
        out: &mut Vec<Outcome>,
    ) {
        let kinds = rule_kinds(rule.kind);
        for e in tracker.state.open.iter_mut() {
            if !kinds.contains(&e.kind) || e.resolved.contains(&rule.kind) {
                continue;
            }
            // Only what is present now confirms (not an episode inside its grace gap).
            if e.last_seen < t || e.best_score < rule.min_score {
                continue;
            }
            if e.dwell() < rule.dwell.as_secs_f64() {
                continue;
            }
            let (x, y) = anchor_point(&e.anchor, ground(e.kind));
            if self.in_kind(ZoneKind::Mask, x, y) {
                continue;
            }
            if rule.kind == RuleKind::IllegalVendor
                && (self.in_kind(ZoneKind::VendingAllowed, x, y)
                    || e.person_near.is_none_or(|p| t - p > PERSON_NEAR_WITHIN_S))
            {
                continue;
            }
            let Some(zone) = self.zones_of(rule).find(|z| z.polygon.contains(x, y)) else {
                continue;
            };
            let c = candidate(&self.cam, rule, zone, e, t);
            e.resolved.push(rule.kind);
            out.push(if self.active(rule, zone, t) {
                Outcome::Met(c)
            } else {
                Outcome::OutsideHours(c)
            });
        }
    }

    fn bin_reference_rule(
        &mut self,
        rule: &RuleConfig,
        t: f64,
        dets: &[Detection],
        frame: Option<&Frame>,
        out: &mut Vec<Outcome>,
    ) {
        let Some(frame) = frame else {
            return;
        };
        let zones: Vec<Zone> = self.zones_of(rule).cloned().collect();
        for zone in zones {
            let bounds = zone.polygon.bounds();
            // Frames where a person or vehicle covers the zone do not count.
            let covered = dets.iter().any(|d| {
                matches!(d.kind, ObjectKind::Person | ObjectKind::Vehicle)
                    && iou(&d.bbox, &bounds) > 0.0
                    && overlap_share(&d.bbox, &bounds) > 0.05
            });
            if covered {
                continue;
            }
            let thumb = zone_thumbnail(frame, &bounds);
            let st = self.bins.entry(zone.id.clone()).or_default();
            let Some(reference) = &st.reference else {
                // Take a clean reference once the zone has been still for a few frames.
                let still = st
                    .previous
                    .as_ref()
                    .is_some_and(|p| changed_share(p, &thumb, 0.04) < 0.02);
                st.stable = if still { st.stable + 1 } else { 0 };
                if st.stable >= REFERENCE_STABLE_FRAMES {
                    st.reference = Some(thumb.clone());
                }
                st.previous = Some(thumb);
                continue;
            };
            let share = changed_share(reference, &thumb, 0.08);
            if share >= rule.change_share {
                let since = *st.over_since.get_or_insert(t);
                if !st.resolved && t - since >= rule.dwell.as_secs_f64() {
                    st.resolved = true;
                    let c = Candidate {
                        rule: rule.kind,
                        camera: self.cam.id.clone(),
                        preset: self.cam.preset,
                        zone: zone.id.clone(),
                        place: bounds,
                        episode: None,
                        label: "bin_change".into(),
                        start: since,
                        confirm: t,
                        bbox: bounds,
                        score: share.min(1.0),
                        dwell_s: rule.dwell.as_secs_f64(),
                    };
                    let active = rule.active.contains(t, self.cam.utc_offset_s)
                        && zone.active.contains(t, self.cam.utc_offset_s);
                    out.push(if active {
                        Outcome::Met(c)
                    } else {
                        Outcome::OutsideHours(c)
                    });
                }
            } else if st.over_since.take().is_some() {
                if st.resolved {
                    out.push(Outcome::Cleared {
                        rule: rule.kind,
                        zone: zone.id.clone(),
                    });
                }
                st.resolved = false;
            }
        }
    }
}

/// The object kinds whose episodes a rule judges.
fn rule_kinds(rule: RuleKind) -> &'static [ObjectKind] {
    match rule {
        RuleKind::AbandonedVehicle => &[ObjectKind::Vehicle],
        RuleKind::IllegalVendor => &[ObjectKind::StallPart],
        RuleKind::OverflowingBin => &[ObjectKind::BinOverflow, ObjectKind::Garbage],
    }
}

fn candidate(cam: &CameraConfig, rule: &RuleConfig, zone: &Zone, e: &Episode, t: f64) -> Candidate {
    Candidate {
        rule: rule.kind,
        camera: cam.id.clone(),
        preset: cam.preset,
        zone: zone.id.clone(),
        place: e.anchor,
        episode: Some(e.id),
        label: e.label.clone(),
        start: e.first_seen,
        confirm: t,
        bbox: e.last_box,
        score: e.best_score,
        dwell_s: rule.dwell.as_secs_f64(),
    }
}

/// Share of `a` that lies inside `b`.
fn overlap_share(a: &BBox, b: &BBox) -> f32 {
    let ix = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iy = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let area = (a[2] - a[0]).max(1e-9) * (a[3] - a[1]).max(1e-9);
    ix * iy / area
}

/// A person is next to a stall when their boxes, each grown by half its size, touch.
fn near(person: &BBox, stall: &BBox) -> bool {
    let grow = |b: &BBox| {
        let (w, h) = ((b[2] - b[0]) / 2.0, (b[3] - b[1]) / 2.0);
        [b[0] - w, b[1] - h, b[2] + w, b[3] + h]
    };
    let (p, s) = (grow(person), grow(stall));
    p[0] < s[2] && s[0] < p[2] && p[1] < s[3] && s[1] < p[3]
}

/// A 16×16 grey thumbnail of the zone's bounding box.
fn zone_thumbnail(frame: &Frame, b: &BBox) -> Vec<f32> {
    let (w, h) = (frame.width as f32, frame.height as f32);
    let mut out = vec![0f32; BIN_THUMB * BIN_THUMB];
    for ty in 0..BIN_THUMB {
        for tx in 0..BIN_THUMB {
            let x = ((b[0] + (b[2] - b[0]) * (tx as f32 + 0.5) / BIN_THUMB as f32) * w)
                .clamp(0.0, w - 1.0) as usize;
            let y = ((b[1] + (b[3] - b[1]) * (ty as f32 + 0.5) / BIN_THUMB as f32) * h)
                .clamp(0.0, h - 1.0) as u32;
            let p = &frame.row(y)[x * 3..x * 3 + 3];
            out[ty * BIN_THUMB + tx] =
                (0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32) / 255.0;
        }
    }
    out
}
