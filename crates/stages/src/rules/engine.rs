//! The rules of one camera: which open episodes (or bin zones) meet a rule, in which zone,
//! after how long, during active hours.

use std::collections::BTreeMap;

use super::zones::anchor_point;
use crate::config::{CameraConfig, RuleConfig, RuleKind, Zone};
use crate::detect::{BBox, Detection, ObjectKind};
use crate::episodes::{Episode, EpisodeTracker, TrackerState};
use crate::ingest::Frame;
use crate::model::geometry::overlap_share;
use crate::rules::zones::ZoneKind;
use crate::scene::Light;
use crate::scene::ground::{self, GroundView};
use crate::scene::structure::Patch;

pub use crate::model::Candidate;
use crate::model::closure::Sight;

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Met during active hours.
    Met(Candidate),
    /// Met outside the rule's or the zone's active hours.
    OutsideHours(Candidate),
    /// A bin zone's condition cleared (its capture, if any, closes).
    Cleared { rule: RuleKind, zone: String },
}

/// What one bin zone's comparison remembers from frame to frame (its references and its
/// condition live in the camera's [`TrackerState`], so they are saved).
#[derive(Debug, Default, Clone)]
struct BinState {
    previous: Option<Vec<f32>>,
    stable: u32,
}

/// Consecutive unoccluded, unchanging frames before a reference is taken.
const REFERENCE_STABLE_FRAMES: u32 = 3;
/// A zone is judged clean (its reference may adapt) below this share of the rule's
/// `change_share`.
const CLEAN_BELOW: f32 = 1.0 / 3.0;
/// How fast a clean zone's reference follows it.
const REFERENCE_ADAPT: f32 = 0.02;
/// Labels that are seats: a person on one is sitting, not attending a stall.
pub const SEAT_LABELS: &[&str] = &["bench", "chair", "couch", "sofa", "stool"];
/// How recently a person must have been next to a stall.
pub const PERSON_NEAR_WITHIN_S: f64 = 60.0;
/// How long a run of sightings of a person next to a stall must last to count as tending
/// it (sightings less than [`PERSON_NEAR_WITHIN_S`] apart are one run): a passer-by is next
/// to a stall for a few seconds, a vendor for minutes.
pub const TENDED_FOR_S: f64 = 10.0;
/// Public seats: a person whose lower half lies on one (a fixture, or one the detector sees)
/// is sitting there and tends nothing. A vendor's own chair or stool is not one.
pub const PUBLIC_SEATS: &[&str] = &["bench"];
/// Unlabelled goods (`scene::ground`) must spread at least this share of their attendant's
/// height (about half a metre): a bag or a coat put down is smaller.
pub const MIN_SPREAD: f32 = 0.3;
/// Unlabelled goods that nobody tends stop being watched this long after the dwell: they
/// are part of the scene (a new planter, a parked bicycle), and join the zone's reference.
pub const ABSORB_AFTER_S: f64 = 600.0;
/// Unlabelled goods must have lain still in at least this share of the frames they were
/// seen in.
pub const STILL_MOST: f32 = 0.6;
/// What a capture of unlabelled goods lists as seen in the stall: the reason it was filed.
pub const UNLABELLED_GOODS: &str = "unlabelled goods";
/// The frame's aspect when no frame comes with the detections.
const DEFAULT_ASPECT: f32 = 16.0 / 9.0;

pub struct RuleEngine {
    cam: CameraConfig,
    /// Bin zones whose reference was (re)taken since the last [`Self::take_new_references`].
    new_references: Vec<String>,
    /// Whether the model reports bin_overflow/garbage itself.
    model_sees_overflow: bool,
    bins: BTreeMap<String, BinState>,
    grounds: BTreeMap<String, GroundView>,
}

fn ground(kind: ObjectKind) -> bool {
    matches!(kind, ObjectKind::Vehicle | ObjectKind::Person)
}

impl RuleEngine {
    pub fn new(cam: CameraConfig, model_sees_overflow: bool) -> Self {
        Self {
            cam,
            new_references: Vec::new(),
            model_sees_overflow,
            bins: BTreeMap::new(),
            grounds: BTreeMap::new(),
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
        // Stall evidence: note people attending stall episodes. Someone sitting (on a
        // fixture, or on a public seat the detector sees) attends nothing.
        let people = tending_people(&tracker.state, dets, t);
        for e in tracker
            .state
            .open
            .iter_mut()
            .filter(|e| e.kind == ObjectKind::StallPart)
        {
            let seat = SEAT_LABELS.contains(&e.label.as_str());
            if let Some(p) = people
                .iter()
                .find(|p| near(p, &e.last_box) && !(seat && sits_on(p, &e.last_box)))
            {
                note_person(
                    (&mut e.person_since, &mut e.person_near, &mut e.attendant_h),
                    p,
                    t,
                );
            }
        }
        let aspect = frame.map_or(DEFAULT_ASPECT, |f| {
            f.width.max(1) as f32 / f.height.max(1) as f32
        });
        let rules = self.cam.rules.clone();
        for rule in &rules {
            match rule.kind {
                RuleKind::AbandonedVehicle => self.episode_rule(rule, t, tracker, &mut out),
                RuleKind::IllegalVendor => {
                    let seen = self.ground_observe(rule, t, dets, &people, frame, tracker);
                    self.stall_rule(rule, t, tracker, aspect, &mut out);
                    self.ground_judge(rule, t, frame, seen, tracker, &mut out);
                }
                RuleKind::OverflowingBin if self.model_sees_overflow => {
                    self.episode_rule(rule, t, tracker, &mut out)
                }
                RuleKind::OverflowingBin => {
                    self.bin_reference_rule(rule, t, dets, frame, &mut tracker.state, &mut out)
                }
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
            // Only what is plainly present now confirms (not an episode inside its grace gap).
            if !e.present_at(t) || e.best_score < rule.min_score {
                continue;
            }
            if e.dwell() < rule.dwell.as_secs_f64() {
                continue;
            }
            let (x, y) = anchor_point(&e.anchor, ground(e.kind));
            if self.in_kind(ZoneKind::Mask, x, y) {
                continue;
            }
            let Some(zone) = self.zones_of(rule).find(|z| z.polygon.contains(x, y)) else {
                continue;
            };
            let c = candidate(&self.cam, rule, zone, e, t);
            if self.active(rule, zone, t) {
                e.resolved.push(rule.kind);
                out.push(Outcome::Met(c));
            } else if !e.deferred.contains(&rule.kind) {
                // Deferred, not resolved: judged again when the hours open, and filed then if
                // the object is still there.
                e.deferred.push(rule.kind);
                out.push(Outcome::OutsideHours(c));
            }
        }
    }

    /// The vendor rule: the camera's stall parts grouped into stalls (`super::stall`), each
    /// judged as one thing. A stall needs a part that is not a seat, stands in a
    /// no-vending zone (not masked, not where vending is allowed, not on a fixture), has
    /// stood for the dwell, is present now, and is tended: a person next to it for a while,
    /// lately. One capture per stall: parts that join a stall already filed are filed with it.
    fn stall_rule(
        &self,
        rule: &RuleConfig,
        t: f64,
        tracker: &mut EpisodeTracker,
        aspect: f32,
        out: &mut Vec<Outcome>,
    ) {
        let TrackerState {
            open,
            fixtures,
            grounds,
            ..
        } = &mut tracker.state;
        let members: Vec<usize> = (0..open.len())
            .filter(|&i| {
                let e = &open[i];
                if e.kind != ObjectKind::StallPart {
                    return false;
                }
                let (x, y) = anchor_point(&e.anchor, false);
                !self.in_kind(ZoneKind::Mask, x, y)
                    && !self.in_kind(ZoneKind::VendingAllowed, x, y)
                    && !fixtures
                        .iter()
                        .any(|f| crate::episodes::on_fixture(&e.anchor, &f.bbox))
            })
            .collect();
        let co_occur = super::stall::CO_OCCUR_S.min(rule.dwell.as_secs_f64() / 2.0);
        // Unlabelled goods filed already (`ground_rule`): a stall on them is that case.
        let filed: Vec<BBox> = grounds
            .values()
            .flat_map(|g| g.blobs.iter().filter(|b| b.resolved).map(|b| b.place))
            .collect();
        for stall in super::stall::group(open, &members, aspect, co_occur) {
            let parts: Vec<&Episode> = stall.iter().map(|&i| &open[i]).collect();
            let on_filed = parts.iter().any(|e| {
                !SEAT_LABELS.contains(&e.label.as_str())
                    && filed.iter().any(|g| on_ground(&e.anchor, g))
            });
            if on_filed || parts.iter().any(|e| e.resolved.contains(&rule.kind)) {
                // Filed (or suppressed) already: what joins it now is part of that case.
                for &i in &stall {
                    if !open[i].resolved.contains(&rule.kind) {
                        open[i].resolved.push(rule.kind);
                    }
                }
                continue;
            }
            let Some(c) = self.stall_candidate(rule, t, &parts) else {
                continue;
            };
            let Some(zone) = self.stall_zone(rule, &parts, &c.place) else {
                continue;
            };
            let c = Candidate {
                zone: zone.id.clone(),
                ..c
            };
            if self.active(rule, zone, t) {
                for &i in &stall {
                    open[i].resolved.push(rule.kind);
                }
                out.push(Outcome::Met(c));
            } else if !parts.iter().any(|e| e.deferred.contains(&rule.kind)) {
                for &i in &stall {
                    open[i].deferred.push(rule.kind);
                }
                out.push(Outcome::OutsideHours(c));
            }
        }
    }

    /// A stall's candidate, when it meets the rule now (its zone still to be found).
    fn stall_candidate(&self, rule: &RuleConfig, t: f64, parts: &[&Episode]) -> Option<Candidate> {
        // Only confirmed parts (enough fresh detections) speak for the stall.
        let sure: Vec<&Episode> = parts
            .iter()
            .copied()
            .filter(|e| e.hits >= crate::episodes::MIN_HITS)
            .collect();
        if !sure.iter().any(|e| e.present_at(t)) {
            return None;
        }
        if sure.iter().all(|e| SEAT_LABELS.contains(&e.label.as_str())) {
            return None; // seats alone are street furniture, whoever stands by them
        }
        let score = sure.iter().map(|e| e.best_score).fold(0.0, f32::max);
        if score < rule.min_score {
            return None;
        }
        // The stall began with its first part that is not a seat (a bench that stood there
        // before the goods came is not the stall's start).
        let start = sure
            .iter()
            .filter(|e| !SEAT_LABELS.contains(&e.label.as_str()))
            .map(|e| e.first_seen)
            .fold(f64::INFINITY, f64::min);
        if t - start < rule.dwell.as_secs_f64() {
            return None;
        }
        let tended = parts
            .iter()
            .any(|e| tended_at(e.person_since, e.person_near, t));
        if !tended {
            return None;
        }
        // The stall's own episode: its most often found part (it outlives the others).
        let main = sure.iter().max_by(|a, b| {
            a.hits
                .cmp(&b.hits)
                .then(b.first_seen.total_cmp(&a.first_seen))
        })?;
        let embedding = stall_embedding(&sure);
        Some(Candidate {
            rule: rule.kind,
            camera: self.cam.id.clone(),
            preset: self.cam.preset,
            zone: String::new(),
            place: crate::model::geometry::enclosing(parts.iter().map(|e| e.anchor))?,
            episode: Some(main.id),
            label: STALL_LABEL.into(),
            start,
            confirm: t,
            bbox: crate::model::geometry::enclosing(parts.iter().map(|e| e.last_box))?,
            score,
            dwell_s: rule.dwell.as_secs_f64(),
            embedding,
            parts: super::stall::inventory(parts.iter().map(|e| e.label.as_str())),
            plate: None,
        })
    }

    /// The rule's zone a stall stands in: the one holding its centre, else the first holding
    /// one of its parts.
    fn stall_zone<'a>(
        &'a self,
        rule: &'a RuleConfig,
        parts: &[&Episode],
        place: &BBox,
    ) -> Option<&'a Zone> {
        let (x, y) = anchor_point(place, false);
        self.zones_of(rule)
            .find(|z| z.polygon.contains(x, y))
            .or_else(|| {
                self.zones_of(rule).find(|z| {
                    parts.iter().any(|e| {
                        let (x, y) = anchor_point(&e.anchor, false);
                        z.polygon.contains(x, y)
                    })
                })
            })
    }

    /// The vendor rule's evidence beyond labels, first step: each zone's ground sees the
    /// frame (`scene::ground`), and who stands next to what is on it. A labelled stall part
    /// on something tended is tended too (the vendor stands by the tarp the fruit lies on).
    /// Returns each zone's patch for [`Self::ground_judge`].
    fn ground_observe(
        &mut self,
        rule: &RuleConfig,
        t: f64,
        dets: &[Detection],
        people: &[BBox],
        frame: Option<&Frame>,
        tracker: &mut EpisodeTracker,
    ) -> Vec<(Zone, Patch)> {
        let Some(frame) = frame else {
            return Vec::new();
        };
        let covered: Vec<BBox> = dets
            .iter()
            .filter(|d| matches!(d.kind, ObjectKind::Person | ObjectKind::Vehicle))
            .map(|d| d.bbox)
            .collect();
        let zones: Vec<Zone> = self.zones_of(rule).cloned().collect();
        let mut seen_zones = Vec::new();
        for zone in zones {
            let bounds = zone.polygon.bounds();
            let side = ground::side_for(frame.width, frame.height, &bounds);
            let patch = Patch::of_side(frame, &zone.polygon, side);
            if patch.light() == Light::Dark {
                continue; // too dark to judge: nothing starts, nothing goes
            }
            let view = self.grounds.entry(zone.id.clone()).or_default();
            let state = &mut tracker.state;
            let g = state.grounds.entry(zone.id.clone()).or_default();
            let seen = g.observe(
                view,
                &patch,
                &covered,
                &zone.polygon,
                cell_aspect(frame, &bounds),
                t,
            );
            if seen.view_changed {
                tracing::debug!(zone = %zone.id, t, "ground zone's view changed: learning it again");
            }
            for b in g.blobs.iter_mut() {
                if let Some(p) = people.iter().find(|p| near(p, &b.place)) {
                    note_person(
                        (&mut b.person_since, &mut b.person_near, &mut b.attendant_h),
                        p,
                        t,
                    );
                }
                if b.person_near.is_none() {
                    continue;
                }
                for e in state.open.iter_mut().filter(|e| {
                    e.kind == ObjectKind::StallPart
                        && !SEAT_LABELS.contains(&e.label.as_str())
                        && on_ground(&e.anchor, &b.place)
                }) {
                    if e.person_near < b.person_near {
                        e.person_near = b.person_near;
                        e.person_since = b.person_since;
                        e.attendant_h = b.attendant_h;
                    }
                }
            }
            seen_zones.push((zone, patch));
        }
        seen_zones
    }

    /// The vendor rule's evidence beyond labels, second step (after the labelled stalls are
    /// judged): what stands on the ground of its zones that the zone's clean reference does
    /// not have, tended now and then, is a stall of unlabelled goods. It needs what a
    /// labelled stall needs (the dwell, present now, tended lately for a while, not masked,
    /// not where vending is allowed, not on a fixture), and more: no labelled stall part and
    /// no vehicle on it (those are judged as what they are), and a spread of at least
    /// [`MIN_SPREAD`] of its attendant's height. What nobody tends for [`ABSORB_AFTER_S`]
    /// past the dwell joins the reference.
    fn ground_judge(
        &self,
        rule: &RuleConfig,
        t: f64,
        frame: Option<&Frame>,
        seen: Vec<(Zone, Patch)>,
        tracker: &mut EpisodeTracker,
        out: &mut Vec<Outcome>,
    ) {
        let Some(frame) = frame else {
            return;
        };
        let dwell = rule.dwell.as_secs_f64();
        for (zone, patch) in seen {
            let state = &mut tracker.state;
            let Some(g) = state.grounds.get_mut(&zone.id) else {
                continue;
            };
            let mut absorb = Vec::new();
            for k in 0..g.blobs.len() {
                let b = &g.blobs[k];
                if b.resolved || b.deferred && !self.active(rule, &zone, t) {
                    continue;
                }
                // A labelled stall part on it: the stall is judged by its parts (and what
                // they decided holds for the ground under them).
                let parts: Vec<&Episode> = state
                    .open
                    .iter()
                    .filter(|e| {
                        e.kind == ObjectKind::StallPart
                            && !SEAT_LABELS.contains(&e.label.as_str())
                            && on_ground(&e.anchor, &b.place)
                    })
                    .collect();
                if !parts.is_empty() {
                    g.blobs[k].resolved = parts.iter().any(|e| e.resolved.contains(&rule.kind));
                    continue;
                }
                if state.open.iter().any(|e| {
                    e.kind == ObjectKind::Vehicle && overlap_share(&b.place, &e.anchor) >= 0.5
                }) {
                    continue; // a vehicle the detector lost for a moment
                }
                let tended_now = b.person_near.is_some_and(|l| t - l <= PERSON_NEAR_WITHIN_S);
                if !tended_now && t - b.since >= dwell + ABSORB_AFTER_S {
                    absorb.push(b.id);
                    continue;
                }
                // Seen now, in enough frames, and lying still in most of them: people walking
                // through, one after another, make a blob that never lies still.
                if b.last_seen < t
                    || b.still_hits < crate::episodes::MIN_HITS
                    || (b.still_hits as f32) < STILL_MOST * b.hits as f32
                    || t - b.since < dwell
                {
                    continue;
                }
                let tended = tended_at(b.person_since, b.person_near, t);
                let spread = (b.place[2] - b.place[0]) * frame.width as f32;
                let attendant = b.attendant_h.unwrap_or(0.0) * frame.height as f32;
                if !tended || spread < MIN_SPREAD * attendant {
                    continue;
                }
                let (x, y) = anchor_point(&b.place, false);
                if self.in_kind(ZoneKind::Mask, x, y)
                    || self.in_kind(ZoneKind::VendingAllowed, x, y)
                    || state
                        .fixtures
                        .iter()
                        .any(|f| crate::episodes::on_fixture(&b.place, &f.bbox))
                {
                    continue;
                }
                let c = Candidate {
                    rule: rule.kind,
                    camera: self.cam.id.clone(),
                    preset: self.cam.preset,
                    zone: zone.id.clone(),
                    place: b.place,
                    episode: None,
                    label: STALL_LABEL.into(),
                    start: b.since,
                    confirm: t,
                    bbox: b.place,
                    score: b.fill.clamp(0.0, 1.0),
                    dwell_s: dwell,
                    // What it looks like, for the verdict memory: what changed at its place.
                    embedding: g.embedding(b.id, &patch, &zone.polygon),
                    parts: vec![UNLABELLED_GOODS.into()],
                    plate: None,
                };
                let b = &mut g.blobs[k];
                if self.active(rule, &zone, t) {
                    b.resolved = true;
                    out.push(Outcome::Met(c));
                } else if !b.deferred {
                    b.deferred = true;
                    out.push(Outcome::OutsideHours(c));
                }
            }
            for id in absorb {
                tracing::debug!(zone = %zone.id, t, blob = id, "untended ground change joins the reference");
                g.absorb(id, &patch, &zone.polygon);
            }
        }
    }

    /// The bin rule without a model that sees overflow: each bin zone's structure compared
    /// with its clean reference for the current light (see `scene::structure`).
    fn bin_reference_rule(
        &mut self,
        rule: &RuleConfig,
        t: f64,
        dets: &[Detection],
        frame: Option<&Frame>,
        state: &mut TrackerState,
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
                    && overlap_share(&d.bbox, &bounds) > 0.05
            });
            if covered {
                continue;
            }
            let patch = Patch::of(frame, &zone.polygon);
            let light = patch.light();
            if light == Light::Dark {
                continue; // too dark to judge: nothing starts, nothing clears
            }
            let st = self.bins.entry(zone.id.clone()).or_default();
            let still = st
                .previous
                .as_ref()
                .is_some_and(|p| patch.changed_share(p) < 0.02);
            st.stable = if still { st.stable + 1 } else { 0 };
            st.previous = Some(patch.grey.clone());
            let refs = state.zones.entry(zone.id.clone()).or_default();
            let Some((reference, own)) = refs.for_light(light) else {
                // The first reference: the zone once it has been still for a few frames.
                if st.stable >= REFERENCE_STABLE_FRAMES {
                    refs.set(light, patch.grey);
                    self.new_references.push(zone.id.clone());
                }
                continue;
            };
            let cmp = patch.compare(reference, cell_aspect(frame, &bounds));
            // A person the detector missed, standing at the bin, hides it: nothing starts,
            // nothing clears, however long they stay.
            if cmp.person {
                tracing::trace!(zone = %zone.id, t, "bin zone hidden by a person-like change");
                continue;
            }
            // One-sided: only more stuff than the reference counts (an emptied bin is none).
            let share = cmp.added;
            tracing::trace!(zone = %zone.id, t, share, own, light = ?light, "bin zone compared");
            if share < rule.change_share * CLEAN_BELOW {
                if own && cmp.removal && cmp.changed >= rule.change_share {
                    // Cleaner than the reference (it was taken while full): once still, the
                    // zone as it is now becomes the reference.
                    if st.stable >= REFERENCE_STABLE_FRAMES {
                        refs.set(light, patch.grey.clone());
                        self.new_references.push(zone.id.clone());
                    }
                } else if own {
                    refs.adapt(light, &patch.grey, REFERENCE_ADAPT);
                } else if st.stable >= REFERENCE_STABLE_FRAMES {
                    // This light's first reference, from a view that matches the other's.
                    refs.set(light, patch.grey.clone());
                    self.new_references.push(zone.id.clone());
                }
            }
            if share >= rule.change_share {
                let since = *refs.over_since.get_or_insert(t);
                if !refs.resolved && t - since >= rule.dwell.as_secs_f64() {
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
                        // What changed, against the reference the share was taken from
                        // (the clean branch above cannot have touched it: share is over).
                        embedding: refs
                            .for_light(light)
                            .map(|(r, _)| patch.change_embedding(r)),
                        parts: Vec::new(),
                        plate: None,
                    };
                    let active = rule.active.contains(t, self.cam.utc_offset_s)
                        && zone.active.contains(t, self.cam.utc_offset_s);
                    if active {
                        refs.resolved = true;
                        out.push(Outcome::Met(c));
                    } else if !refs.deferred {
                        refs.deferred = true;
                        out.push(Outcome::OutsideHours(c));
                    }
                }
            } else if refs.over_since.take().is_some() {
                if refs.resolved {
                    out.push(Outcome::Cleared {
                        rule: rule.kind,
                        zone: zone.id.clone(),
                    });
                }
                refs.resolved = false;
                refs.deferred = false;
            }
        }
    }

    /// An operator marked a bin zone clean: the current view of it becomes the reference for
    /// its light (without a frame, the references go and the next still view is taken), and
    /// its condition starts again.
    pub fn mark_clean(
        &mut self,
        zone: &str,
        frame: Option<&Frame>,
        state: &mut TrackerState,
        t: f64,
    ) {
        let Some(z) = self.cam.zones.iter().find(|z| z.id == zone) else {
            return;
        };
        let refs = state.zones.entry(zone.to_string()).or_default();
        match frame.map(|f| Patch::of(f, &z.polygon)) {
            Some(p) if p.light() != Light::Dark => {
                let light = p.light();
                *refs = Default::default();
                refs.set(light, p.grey);
                self.new_references.push(zone.to_string());
            }
            _ => *refs = Default::default(),
        }
        refs.marked_clean = Some(t);
    }

    /// Gives a zone a new polygon (drawn on the camera's picture): the rules judge by it
    /// from the next frame. A bin zone's clean reference and ground view were of the old
    /// polygon, so they are taken again. False when the camera has no such zone.
    pub fn set_zone_polygon(
        &mut self,
        zone: &str,
        polygon: crate::model::zones::Polygon,
        state: &mut TrackerState,
    ) -> bool {
        let Some(z) = self.cam.zones.iter_mut().find(|z| z.id == zone) else {
            // A mask drawn on the picture beyond the config's zones: added.
            if crate::model::zones::is_drawn_mask(zone) {
                self.cam
                    .zones
                    .push(crate::config::Zone::drawn_mask(zone, polygon));
                return true;
            }
            return false;
        };
        z.polygon = polygon;
        state.zones.remove(zone);
        self.bins.remove(zone);
        self.grounds.remove(zone);
        true
    }

    /// Removes a mask drawn on the picture; false when the camera has no such drawn mask
    /// (the config's zones are never removed, only redrawn).
    pub fn remove_drawn_mask(&mut self, zone: &str) -> bool {
        if !crate::model::zones::is_drawn_mask(zone) {
            return false;
        }
        let before = self.cam.zones.len();
        self.cam.zones.retain(|z| z.id != zone);
        self.cam.zones.len() < before
    }

    /// The camera's zones as the rules use them now.
    pub fn zones(&self) -> &[Zone] {
        &self.cam.zones
    }

    /// The bin zones whose reference was taken since the last call (their "before" frame).
    pub fn take_new_references(&mut self) -> Vec<String> {
        std::mem::take(&mut self.new_references)
    }

    /// What this frame shows of a place a closure check looks at, judged as the rule judges:
    /// an episode of the rule's kinds plainly present on the place, or the bin zone over
    /// its clean reference. The tracker has seen the frame's detections already.
    #[allow(clippy::too_many_arguments)]
    pub fn place_sight(
        &self,
        rule: RuleKind,
        zone: &str,
        place: &BBox,
        t: f64,
        tracker: &EpisodeTracker,
        dets: &[Detection],
        frame: &Frame,
    ) -> Sight {
        let kinds = rule_kinds(rule);
        if rule == RuleKind::OverflowingBin && !self.model_sees_overflow {
            let Some(z) = self.cam.zones.iter().find(|z| z.id == zone) else {
                return Sight::Unjudgeable("zone_gone");
            };
            let bounds = z.polygon.bounds();
            if dets.iter().any(|d| {
                matches!(d.kind, ObjectKind::Person | ObjectKind::Vehicle)
                    && overlap_share(&d.bbox, &bounds) > 0.05
            }) {
                return Sight::Unjudgeable("occluded");
            }
            let patch = Patch::of(frame, &z.polygon);
            let light = patch.light();
            if light == Light::Dark {
                return Sight::Unjudgeable("dark");
            }
            let Some((reference, _)) = tracker
                .state
                .zones
                .get(zone)
                .and_then(|r| r.for_light(light))
            else {
                return Sight::Unjudgeable("no_reference");
            };
            let cmp = patch.compare(reference, cell_aspect(frame, &bounds));
            if cmp.person {
                return Sight::Unjudgeable("occluded");
            }
            let change_share = self
                .cam
                .rules
                .iter()
                .find(|r| r.kind == rule && r.zones.iter().any(|id| id == zone))
                .map_or(0.1, |r| r.change_share);
            let share = cmp.added;
            return if share >= change_share {
                Sight::Present
            } else if share < change_share * CLEAN_BELOW {
                Sight::Clear
            } else {
                Sight::Unsure
            };
        }
        if Patch::of_box(frame, place, 16).light() == Light::Dark {
            return Sight::Unjudgeable("dark");
        }
        // Something the rule does not judge stands over most of the place.
        if dets
            .iter()
            .any(|d| !kinds.contains(&d.kind) && overlap_share(place, &d.bbox) > 0.6)
        {
            return Sight::Unjudgeable("occluded");
        }
        let mut unsure = false;
        if rule == RuleKind::IllegalVendor
            && let Some(g) = tracker.state.grounds.get(zone)
        {
            // Unlabelled goods on the place: seen now, or hidden for now.
            for b in g.blobs.iter().filter(|b| on_ground(&b.place, place)) {
                if b.last_seen >= t {
                    return Sight::Present;
                }
                unsure = true;
            }
        }
        for e in tracker.open() {
            // A stall's place holds all its parts: a part on it is the stall.
            let on_place = if rule == RuleKind::IllegalVendor {
                overlap_share(&e.anchor, place) >= 0.5
            } else {
                crate::model::iou(&e.anchor, place) >= 0.3
                    || crate::model::iou(&e.last_box, place) >= 0.3
            };
            if !kinds.contains(&e.kind) || !on_place {
                continue;
            }
            if e.present_at(t) {
                return Sight::Present;
            }
            unsure = true;
        }
        if unsure { Sight::Unsure } else { Sight::Clear }
    }

    /// Whether a bin zone's condition holds now (a deferred bin candidate is still due).
    pub fn zone_over(state: &TrackerState, zone: &str) -> bool {
        state
            .zones
            .get(zone)
            .is_some_and(|z| z.over_since.is_some())
    }

    /// Whether what a candidate without an episode saw is still there: a bin zone's
    /// condition, or unlabelled goods on a zone's ground.
    pub fn still_there(state: &TrackerState, c: &Candidate) -> bool {
        match c.rule {
            RuleKind::IllegalVendor => state
                .grounds
                .get(&c.zone)
                .is_some_and(|g| g.present_at(&c.place, f64::NEG_INFINITY)),
            _ => Self::zone_over(state, &c.zone),
        }
    }
}

/// A zone grid cell's height over its width in pixels.
fn cell_aspect(frame: &Frame, bounds: &BBox) -> f32 {
    let w = (bounds[2] - bounds[0]).max(1e-6) * frame.width as f32;
    let h = (bounds[3] - bounds[1]).max(1e-6) * frame.height as f32;
    h / w
}

/// The label of a vendor capture: the stall, whatever its parts (listed in `parts`).
pub const STALL_LABEL: &str = "stall";

/// A stall's look for the verdict memory: the mean of its parts' embeddings, normalised.
fn stall_embedding(parts: &[&Episode]) -> Option<Vec<f32>> {
    let mut sum: Option<Vec<f32>> = None;
    for v in parts.iter().filter_map(|e| e.embedding.as_ref()) {
        match &mut sum {
            Some(s) if s.len() == v.len() => s.iter_mut().zip(v).for_each(|(a, b)| *a += b),
            Some(_) => {}
            None => sum = Some(v.clone()),
        }
    }
    let mut m = sum?;
    crate::model::embedding::normalise(&mut m);
    Some(m)
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
        embedding: e.embedding.clone(),
        parts: Vec::new(),
        plate: None,
    }
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

/// Notes a person (their box `p`) next to a stall part or unlabelled goods at `t`, in its
/// (since, last, attendant height): sightings less than [`PERSON_NEAR_WITHIN_S`] apart are
/// one run of tending.
fn note_person(
    (since, last, height): (&mut Option<f64>, &mut Option<f64>, &mut Option<f32>),
    p: &BBox,
    t: f64,
) {
    if last.is_none_or(|l| t - l > PERSON_NEAR_WITHIN_S) {
        *since = Some(t);
    }
    *last = Some(t);
    *height = Some(p[3] - p[1]);
}

/// Whether a run of tending (since, last) makes the thing tended at `t`: the run lasted
/// [`TENDED_FOR_S`], and ended within [`PERSON_NEAR_WITHIN_S`].
fn tended_at(since: Option<f64>, last: Option<f64>, t: f64) -> bool {
    matches!((since, last), (Some(from), Some(last))
        if t - last <= PERSON_NEAR_WITHIN_S && last - from >= TENDED_FOR_S)
}

/// Whether `a` lies on the ground place `g`: mostly inside it, or it mostly inside `a`.
fn on_ground(a: &BBox, g: &BBox) -> bool {
    overlap_share(a, g) >= 0.5 || overlap_share(g, a) >= 0.5
}

/// The people of a frame who may tend a stall: not sitting on a fixture, nor on a public
/// seat ([`PUBLIC_SEATS`]) the detector sees now.
fn tending_people(state: &TrackerState, dets: &[Detection], t: f64) -> Vec<BBox> {
    let seats: Vec<BBox> = state
        .open
        .iter()
        .filter(|e| PUBLIC_SEATS.contains(&e.label.as_str()) && e.present_at(t))
        .map(|e| e.last_box)
        .collect();
    dets.iter()
        .filter(|d| d.kind == ObjectKind::Person)
        .map(|d| d.bbox)
        .filter(|p| {
            !state.fixtures.iter().any(|f| sits_on(p, &f.bbox))
                && !seats.iter().any(|s| sits_on(p, s))
        })
        .collect()
}

/// A person sits on a seat when the lower half of their box lies mostly on it.
fn sits_on(person: &BBox, seat: &BBox) -> bool {
    let mid = (person[1] + person[3]) / 2.0;
    let lower = [person[0], mid, person[2], person[3]];
    overlap_share(&lower, seat) >= 0.4
}
