//! Stage 3, episodes: stationary objects keyed by place (IoU with an anchor box) and
//! appearance, never by tracker id, and what one camera remembers about its scene.
//!
//! An episode ends when its place is *seen empty*: plainly visible, nothing detected there,
//! and its structure no longer that of the object, for a few analysed frames in a row. The
//! grace period bridges only the time the place cannot be judged: hidden by a person or a
//! vehicle, a camera that sends nothing, a patrol that is elsewhere. While the place is too
//! dark to judge, or the object's structure is still there though the detector missed it, the
//! grace clock does not run: a parked car keeps its episode through a night.
//!
//! Times are seconds on the pipeline's clock (Unix seconds: wall time live, replay start +
//! stream time for recorded footage), so dwell survives restarts and replays repeat exactly.

pub mod persist;
pub mod signature;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::{EpisodeSettings, RuleKind};
use crate::detect::decode::iou;
use crate::detect::{BBox, Detection, ObjectKind};
use crate::ingest::Frame;
use crate::model::candidate::Deferred;
pub use crate::model::fixture::{Fixture, FixtureSource, on_fixture};
use crate::scene::Light;
use crate::scene::structure::{Patch, ZoneReferences};
use crate::scene::view::ViewMemory;
use signature::Signature;

/// Two detections of one kind overlapping this much are one object.
const SAME_OBJECT_IOU: f32 = 0.7;
/// Cells per side of an object's structure patch.
const OBJECT_SIDE: usize = 16;
/// The place still shows the object when at most this share of its structure changed...
const SAME_STRUCTURE_MAX: f32 = 0.3;
/// ...and shows something else (the empty place) when at least this share changed.
const CLEAR_STRUCTURE_MIN: f32 = 0.5;
/// ...or when its colour is this many times further from the object's than a same-object
/// match allows.
const CLEAR_LOOK_FACTOR: f32 = 1.5;
/// How fast an object's stored structure follows what is seen (light, shadows).
const PATCH_BLEND: f32 = 0.2;
/// A person or vehicle covering this share of a place hides it.
const HIDDEN_SHARE: f32 = 0.25;

/// Fresh detections an episode needs before it can be present (and so confirm a rule): one
/// stray detection is not an object.
pub const MIN_HITS: u32 = 3;
/// Fresh detections an episode needs before its structure (or the dark) alone can hold it:
/// the patch taken from one false detection is only the background, which stays "the same"
/// forever.
pub const HOLD_HITS: u32 = 2;
/// Open episodes one camera keeps at most; past it the weakest unconfirmed ones are evicted
/// (counted in [`Update::evicted`]).
pub const MAX_OPEN: usize = 256;

/// Kinds that become episodes: things that stay put.
pub fn is_stationary_kind(kind: ObjectKind) -> bool {
    matches!(
        kind,
        ObjectKind::Vehicle | ObjectKind::StallPart | ObjectKind::BinOverflow | ObjectKind::Garbage
    )
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Episode {
    pub id: u64,
    pub kind: ObjectKind,
    pub label: String,
    /// The place: a slowly smoothed box; what new detections are matched against.
    pub anchor: BBox,
    pub last_box: BBox,
    pub signature: Option<Signature>,
    pub first_seen: f64,
    /// Last time the detector found it.
    pub last_seen: f64,
    pub hits: u32,
    pub best_score: f32,
    pub last_score: f32,
    /// Rules already resolved for this episode (one capture or one suppression each).
    #[serde(default)]
    pub resolved: Vec<RuleKind>,
    /// Rules met outside their active hours, waiting for the hours to open.
    #[serde(default)]
    pub deferred: Vec<RuleKind>,
    /// Last time a person was seen attending it (stall evidence).
    #[serde(default)]
    pub person_near: Option<f64>,
    /// Start of the current run of sightings of a person attending it (sightings less than
    /// a minute apart are one run): a vendor tends a stall for a while, a passer-by passes.
    #[serde(default)]
    pub person_since: Option<f64>,
    /// Height (share of the frame's height) of the person last seen attending it: the
    /// stall's scale, about 1.7 m, for grouping parts into stalls.
    #[serde(default)]
    pub attendant_h: Option<f32>,
    /// Last time the place showed the object: found, or its structure still there, or too
    /// dark to tell. The grace period runs from here.
    #[serde(default)]
    pub held: f64,
    /// Last time the place plainly showed the object: found by the detector, or its
    /// structure and colour still there while the detector missed it.
    #[serde(default)]
    pub last_present: f64,
    /// Analysed frames in a row that saw the place empty.
    #[serde(default)]
    pub clear_frames: u32,
    /// The object's structure (grey cells of its place), for telling it from the empty place.
    #[serde(default)]
    pub patch: Option<Vec<f32>>,
    /// The object's appearance: the mean of its detections' embeddings (normalised); None
    /// with a detector that gives none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding: Option<Vec<f32>>,
    /// A vehicle's plate reads over its dwell (the plate reader's, in the analyser).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plate: Option<crate::model::plate::PlateTrack>,
}

impl Episode {
    /// How long it has stood: from first found to last plainly present.
    pub fn dwell(&self) -> f64 {
        self.last_present.max(self.last_seen) - self.first_seen
    }

    /// Whether the place plainly showed the object at `t`, with enough detections behind it
    /// (a detector that sees a parked car only now and then still has it; one stray
    /// detection is not an object).
    pub fn present_at(&self, t: f64) -> bool {
        self.last_present.max(self.last_seen) >= t && self.hits >= MIN_HITS
    }

    /// When the grace period started running.
    pub fn evidence_at(&self) -> f64 {
        self.last_seen.max(self.held)
    }
}

/// Folds one detection's embedding into the episode's running mean (hit-weighted, so the
/// first detections count as much as the last), kept normalised.
fn blend_embedding(e: &mut Episode, v: &[f32]) {
    match &mut e.embedding {
        Some(m) if m.len() == v.len() => {
            let w = 1.0 / e.hits.max(1) as f32;
            for (a, b) in m.iter_mut().zip(v) {
                *a = (1.0 - w) * *a + w * b;
            }
            crate::model::embedding::normalise(m);
        }
        _ => e.embedding = Some(v.to_vec()),
    }
}

/// Why an episode ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CloseReason {
    /// Not seen, and its place not judged, for longer than its grace period.
    Gone,
    /// Its place was seen empty.
    Cleared,
    /// A different-looking vehicle now stands in the same place.
    Replaced,
}

impl CloseReason {
    /// Whether the object was seen to leave (not just lost from view).
    pub fn seen_to_leave(self) -> bool {
        matches!(self, CloseReason::Cleared | CloseReason::Replaced)
    }
}

#[derive(Debug, Default)]
pub struct Update {
    pub opened: Vec<u64>,
    pub closed: Vec<(Episode, CloseReason)>,
    /// Fixtures proposed by this update (for an operator to accept or dismiss).
    pub proposed: Vec<Fixture>,
    /// Episodes dropped because the camera had [`MAX_OPEN`] open.
    pub evicted: u32,
}

/// Where an analysed frame's detections came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hits {
    /// The detector ran on this frame.
    Fresh,
    /// The scene gate or the inference budget reused an earlier frame's detections: they may
    /// keep an open episode alive, but never open, count towards or confirm one.
    Reused,
}

/// The matching parameters.
#[derive(Debug, Clone, Copy)]
pub struct Params {
    pub iou: f32,
    pub grace: f64,
    pub vehicle_grace: f64,
    pub signature_distance: f32,
    /// Analysed frames of an empty place that end an episode.
    pub clear_frames: u32,
    /// Stall parts standing in the first this-many seconds of a camera's first run (found
    /// then, and again later) are proposed as fixtures.
    pub fixture_learn: f64,
    /// Stall parts that stay this long are proposed as fixtures.
    pub fixture_after: f64,
}

impl From<&EpisodeSettings> for Params {
    fn from(s: &EpisodeSettings) -> Self {
        Self {
            iou: s.iou,
            grace: s.grace_s,
            vehicle_grace: s.vehicle_grace_s,
            signature_distance: s.signature_distance,
            clear_frames: s.clear_frames,
            fixture_learn: s.fixture_learn_s,
            fixture_after: s.fixture_after_s,
        }
    }
}

/// What one camera remembers across restarts: its open episodes, its fixtures and the ones
/// it proposes, the clean references of its zones, its reference view and the candidates
/// waiting for a token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TrackerState {
    pub next_id: u64,
    pub open: Vec<Episode>,
    #[serde(default)]
    pub fixtures: Vec<Fixture>,
    /// What the camera found standing at its first look, or for days: fixtures only once an
    /// operator accepts them (until then judged like anything else).
    #[serde(default)]
    pub proposed: Vec<Fixture>,
    /// Proposals an operator dismissed: the same place is not proposed again.
    #[serde(default)]
    pub dismissed: Vec<Fixture>,
    /// End of the fixture-learning time of the camera's first run.
    #[serde(default)]
    pub learn_until: Option<f64>,
    /// Bin and garbage zones' clean references, by zone id.
    #[serde(default)]
    pub zones: BTreeMap<String, ZoneReferences>,
    /// No-vending zones' ground: what stands there that the detector has no label for, by
    /// zone id.
    #[serde(default)]
    pub grounds: BTreeMap<String, crate::scene::ground::Ground>,
    #[serde(default)]
    pub view: ViewMemory,
    #[serde(default)]
    pub deferred: Vec<Deferred>,
    /// Vehicles with a settled plate that went out of sight (closed as gone): the same plate
    /// at the same place later is the same vehicle (`model::plate::GonePlate`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub gone_plates: Vec<crate::model::plate::GonePlate>,
}

impl TrackerState {
    /// The fixture a box lies on, if any.
    pub fn fixture_at(&self, b: &BBox) -> Option<&Fixture> {
        self.fixtures.iter().find(|f| on_fixture(b, &f.bbox))
    }

    /// Adds a fixture unless one is already there; says whether it was added.
    pub fn add_fixture(&mut self, f: Fixture) -> bool {
        if self.fixture_at(&f.bbox).is_some() {
            return false;
        }
        self.fixtures.push(f);
        true
    }

    /// Proposes a fixture unless the place is a fixture, proposed or dismissed already; says
    /// whether it was proposed.
    pub fn propose_fixture(&mut self, f: Fixture) -> bool {
        let known = |list: &[Fixture]| list.iter().any(|k| on_fixture(&f.bbox, &k.bbox));
        if known(&self.fixtures) || known(&self.proposed) || known(&self.dismissed) {
            return false;
        }
        self.proposed.push(f);
        true
    }

    /// An operator's answer to the proposals a box lies on: accepted ones become fixtures,
    /// dismissed ones are remembered so the place is not proposed again. Says how many.
    pub fn answer_proposed(&mut self, b: &BBox, accept: bool, t: f64) -> usize {
        let (hit, rest): (Vec<Fixture>, Vec<Fixture>) = std::mem::take(&mut self.proposed)
            .into_iter()
            .partition(|f| on_fixture(b, &f.bbox) || on_fixture(&f.bbox, b));
        self.proposed = rest;
        let n = hit.len();
        for mut f in hit {
            if accept {
                f.since = t;
                self.add_fixture(f);
            } else {
                self.dismissed.push(f);
            }
        }
        n
    }

    /// Removes the fixtures a box lies on; says how many.
    pub fn remove_fixtures_at(&mut self, b: &BBox) -> usize {
        let before = self.fixtures.len();
        self.fixtures.retain(|f| !on_fixture(b, &f.bbox));
        before - self.fixtures.len()
    }
}

/// What an analysed frame shows of a place whose object the detector did not find.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlaceView {
    /// Hidden by a person or vehicle, or no frame: the grace clock runs.
    Hidden,
    /// Too dark to tell: the grace clock waits.
    Dark,
    /// The object's structure is still there (the detector missed it).
    Same,
    /// Neither clearly the object nor clearly empty.
    Unsure,
    /// Plainly visible and not the object.
    Clear,
}

/// Judges a place the detector found nothing at: by structure (light-proof relations of its
/// cells) and by colour (chromaticity, also light-proof). `distance` is the signature
/// distance within which a look is the same object's.
pub fn judge_place(
    e: &Episode,
    frame: Option<&Frame>,
    dets: &[Detection],
    distance: f32,
) -> PlaceView {
    let Some(frame) = frame else {
        return PlaceView::Hidden;
    };
    let hidden = dets.iter().any(|d| {
        matches!(d.kind, ObjectKind::Person | ObjectKind::Vehicle)
            && !(d.kind == e.kind && iou(&d.bbox, &e.anchor) >= 0.5)
            && crate::model::geometry::overlap_share(&e.anchor, &d.bbox) >= HIDDEN_SHARE
    });
    if hidden {
        return PlaceView::Hidden;
    }
    let now = Patch::of_box(frame, &e.anchor, OBJECT_SIDE);
    if now.light() == Light::Dark {
        return PlaceView::Dark;
    }
    let Some(object) = &e.patch else {
        return PlaceView::Unsure;
    };
    let changed = now.changed_share(object);
    let look = e
        .signature
        .as_ref()
        .map(|s| s.distance(&Signature::of(frame, &e.anchor)));
    if changed >= CLEAR_STRUCTURE_MIN || look.is_some_and(|d| d > distance * CLEAR_LOOK_FACTOR) {
        PlaceView::Clear
    } else if changed <= SAME_STRUCTURE_MAX && look.is_none_or(|d| d <= distance) {
        PlaceView::Same
    } else {
        PlaceView::Unsure
    }
}

/// One camera's episodes.
pub struct EpisodeTracker {
    params: Params,
    pub state: TrackerState,
}

impl EpisodeTracker {
    pub fn new(params: Params, state: TrackerState) -> Self {
        Self { params, state }
    }

    fn grace(&self, kind: ObjectKind) -> f64 {
        if kind == ObjectKind::Vehicle {
            self.params.vehicle_grace
        } else {
            self.params.grace
        }
    }

    pub fn open(&self) -> &[Episode] {
        &self.state.open
    }

    pub fn get_mut(&mut self, id: u64) -> Option<&mut Episode> {
        self.state.open.iter_mut().find(|e| e.id == id)
    }

    /// No place can be judged at `t` (the camera is off its view, or the detector failed):
    /// every open episode is held, nothing is matched or ended.
    pub fn hold_all(&mut self, t: f64) {
        for e in &mut self.state.open {
            e.held = e.held.max(t);
        }
    }

    /// Feeds one analysed frame's fresh detections at time `t`. `frame` gives appearance.
    pub fn update(&mut self, t: f64, dets: &[Detection], frame: Option<&Frame>) -> Update {
        self.update_with(t, dets, frame, Hits::Fresh)
    }

    /// [`Self::update`], saying whether the detections are fresh. Reused detections only
    /// hold the episodes they match (the grace clock waits); each place is then judged from
    /// the frame itself, as when the detector misses.
    pub fn update_with(
        &mut self,
        t: f64,
        dets: &[Detection],
        frame: Option<&Frame>,
        hits: Hits,
    ) -> Update {
        let mut up = Update::default();
        let learn_until = *self
            .state
            .learn_until
            .get_or_insert(t + self.params.fixture_learn);
        // First close what has been away longer than its grace period: evidence must be
        // continuous within the grace, also when no frames came at all (camera offline).
        let mut i = 0;
        while i < self.state.open.len() {
            let e = &self.state.open[i];
            if t - e.evidence_at() > self.grace(e.kind) {
                let e = self.state.open.remove(i);
                up.closed.push((e, CloseReason::Gone));
            } else {
                i += 1;
            }
        }
        // Strongest first, so the result does not depend on detector output order.
        let mut order: Vec<&Detection> =
            dets.iter().filter(|d| is_stationary_kind(d.kind)).collect();
        order.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then(a.bbox[0].total_cmp(&b.bbox[0]))
                .then(a.bbox[1].total_cmp(&b.bbox[1]))
        });
        // One object, several labels of one kind (a van as "car" and as "truck"): keep the
        // strongest, so one object is one episode.
        let mut kept: Vec<&Detection> = Vec::with_capacity(order.len());
        for d in order {
            if !kept
                .iter()
                .any(|k| k.kind == d.kind && iou(&k.bbox, &d.bbox) >= SAME_OBJECT_IOU)
            {
                kept.push(d);
            }
        }
        let mut order = kept;
        let mut matched = vec![false; self.state.open.len()];
        if hits == Hits::Reused {
            // Reused: they hold what they match, and go no further.
            for d in order.drain(..) {
                if let Some(e) = self
                    .state
                    .open
                    .iter_mut()
                    .filter(|e| e.kind == d.kind)
                    .find(|e| iou(&e.anchor, &d.bbox) >= self.params.iou)
                {
                    e.held = e.held.max(t);
                }
            }
        }
        for d in order {
            let sig = frame.map(|f| Signature::of(f, &d.bbox));
            let best = self
                .state
                .open
                .iter()
                .enumerate()
                .filter(|(i, e)| !matched[*i] && e.kind == d.kind)
                .map(|(i, e)| (i, iou(&e.anchor, &d.bbox)))
                .filter(|(_, v)| *v >= self.params.iou)
                .max_by(|a, b| a.1.total_cmp(&b.1));
            if let Some((i, _)) = best {
                // Only vehicles are told apart by look: stall goods and litter change as
                // they are handled.
                let same_look = d.kind != ObjectKind::Vehicle
                    || match (&self.state.open[i].signature, &sig) {
                        (Some(a), Some(b)) => a.distance(b) <= self.params.signature_distance,
                        _ => true,
                    };
                if same_look {
                    matched[i] = true;
                    let e = &mut self.state.open[i];
                    e.last_seen = t;
                    e.last_present = t;
                    e.held = t;
                    e.clear_frames = 0;
                    e.hits += 1;
                    e.last_box = d.bbox;
                    e.last_score = d.score;
                    e.best_score = e.best_score.max(d.score);
                    e.label = d.label.to_string();
                    for k in 0..4 {
                        e.anchor[k] = 0.9 * e.anchor[k] + 0.1 * d.bbox[k];
                    }
                    match (e.signature.as_mut(), &sig) {
                        (Some(a), Some(b)) => a.blend(b, 0.1),
                        (None, Some(b)) => e.signature = Some(b.clone()),
                        _ => {}
                    }
                    if let Some(f) = frame {
                        remember_structure(e, f);
                    }
                    if let Some(v) = &d.embedding {
                        blend_embedding(e, v);
                    }
                    continue;
                }
                // Same place, different vehicle: the old one has gone.
                let old = self.state.open.remove(i);
                matched.remove(i);
                up.closed.push((old, CloseReason::Replaced));
            }
            let id = self.state.next_id;
            self.state.next_id += 1;
            let mut e = Episode {
                id,
                kind: d.kind,
                label: d.label.to_string(),
                anchor: d.bbox,
                last_box: d.bbox,
                signature: sig,
                first_seen: t,
                last_seen: t,
                hits: 1,
                best_score: d.score,
                last_score: d.score,
                resolved: Vec::new(),
                deferred: Vec::new(),
                person_near: None,
                person_since: None,
                attendant_h: None,
                held: t,
                last_present: t,
                clear_frames: 0,
                patch: None,
                embedding: d.embedding.as_ref().map(|v| v.to_vec()),
                plate: None,
            };
            if let Some(f) = frame {
                remember_structure(&mut e, f);
            }
            self.state.open.push(e);
            matched.push(true);
            up.opened.push(id);
        }
        // The places whose object the detector did not find this frame.
        let mut i = 0;
        while i < self.state.open.len() {
            if matched[i] {
                i += 1;
                continue;
            }
            let e = &mut self.state.open[i];
            let view = match judge_place(e, frame, dets, self.params.signature_distance) {
                // An unconfirmed episode's patch may be only the background: its structure
                // and the dark do not hold it, the grace clock runs.
                PlaceView::Same | PlaceView::Dark if e.hits < HOLD_HITS => PlaceView::Unsure,
                v => v,
            };
            match view {
                PlaceView::Same => {
                    e.held = e.held.max(t);
                    e.last_present = t;
                    e.clear_frames = 0;
                }
                PlaceView::Dark => {
                    e.held = e.held.max(t);
                    e.clear_frames = 0;
                }
                PlaceView::Clear => e.clear_frames += 1,
                PlaceView::Hidden | PlaceView::Unsure => {}
            }
            if e.clear_frames >= self.params.clear_frames.max(1) {
                let e = self.state.open.remove(i);
                matched.remove(i);
                up.closed.push((e, CloseReason::Cleared));
            } else {
                i += 1;
            }
        }
        up.evicted = self.evict_over(MAX_OPEN);
        self.learn_fixtures(t, learn_until, &mut up);
        up
    }

    /// Drops the weakest episodes while more than `max` are open: unconfirmed before
    /// confirmed, then fewest hits, then longest unseen (the newest open ones are kept over
    /// old strays only on equal evidence). Returns how many went.
    fn evict_over(&mut self, max: usize) -> u32 {
        let mut n = 0;
        while self.state.open.len() > max {
            let weakest = self
                .state
                .open
                .iter()
                .enumerate()
                .min_by(|(_, a), (_, b)| {
                    (a.hits >= MIN_HITS)
                        .cmp(&(b.hits >= MIN_HITS))
                        .then(a.resolved.is_empty().cmp(&b.resolved.is_empty()).reverse())
                        .then(a.hits.cmp(&b.hits))
                        .then(a.last_seen.total_cmp(&b.last_seen))
                })
                .map(|(i, _)| i)
                .expect("more than max open");
            let e = self.state.open.remove(weakest);
            tracing::debug!(episode = e.id, label = %e.label, hits = e.hits, "open episode evicted: too many open");
            n += 1;
        }
        n
    }

    /// Stall parts standing while the scene is first learned, or for days, are proposed as
    /// fixtures (never made ones: an operator decides).
    fn learn_fixtures(&mut self, t: f64, learn_until: f64, up: &mut Update) {
        let mut found = Vec::new();
        for e in &self.state.open {
            if e.kind != ObjectKind::StallPart || !e.present_at(t) && e.last_seen < t {
                continue;
            }
            let source = if e.first_seen <= learn_until && e.hits >= 2 {
                FixtureSource::Learned
            } else if e.dwell() >= self.params.fixture_after {
                FixtureSource::Stayed
            } else {
                continue;
            };
            found.push(Fixture {
                label: e.label.clone(),
                bbox: e.anchor,
                since: t,
                source,
            });
        }
        for f in found {
            if self.state.propose_fixture(f.clone()) {
                up.proposed.push(f);
            }
        }
    }
}

/// Keeps the structure of the place where `e` was just found.
fn remember_structure(e: &mut Episode, frame: &Frame) {
    let now = Patch::of_box(frame, &e.anchor, OBJECT_SIDE);
    if now.light() == Light::Dark {
        return;
    }
    match &mut e.patch {
        Some(p) if p.len() == now.grey.len() => {
            // Follow the light: rescale the stored cells to the current brightness first, so
            // blending mixes structure, not two gains.
            let old_mean = p.iter().sum::<f32>() / p.len() as f32;
            let gain = if old_mean > 1e-3 {
                now.mean() / old_mean
            } else {
                1.0
            };
            for (a, b) in p.iter_mut().zip(&now.grey) {
                *a = (1.0 - PATCH_BLEND) * *a * gain + PATCH_BLEND * b;
            }
        }
        _ => e.patch = Some(now.grey),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> Params {
        Params {
            iou: 0.4,
            grace: 30.0,
            vehicle_grace: 60.0,
            signature_distance: 0.35,
            clear_frames: 3,
            fixture_learn: 5.0,
            fixture_after: 1000.0,
        }
    }

    fn det(kind: ObjectKind, b: BBox) -> Detection {
        Detection {
            label: "x".into(),
            kind,
            score: 0.8,
            bbox: b,
            embedding: None,
        }
    }

    const STALL: BBox = [0.1, 0.1, 0.3, 0.3];

    #[test]
    fn jittery_boxes_stay_one_episode_and_gaps_within_grace_keep_it() {
        let mut t = EpisodeTracker::new(params(), TrackerState::default());
        let up = t.update(0.0, &[det(ObjectKind::StallPart, STALL)], None);
        assert_eq!(up.opened, vec![0]);
        // Small shifts, then a 25 s gap (under the 30 s grace).
        t.update(
            5.0,
            &[det(ObjectKind::StallPart, [0.11, 0.1, 0.31, 0.3])],
            None,
        );
        let up = t.update(
            30.0,
            &[det(ObjectKind::StallPart, [0.1, 0.12, 0.3, 0.31])],
            None,
        );
        assert!(up.opened.is_empty() && up.closed.is_empty());
        assert_eq!(t.open()[0].dwell(), 30.0);
        assert_eq!(t.open()[0].hits, 3);
        // People are not episodes.
        t.update(31.0, &[det(ObjectKind::Person, STALL)], None);
        assert_eq!(t.open().len(), 1);
        // 31 s without it: closed as gone.
        let up = t.update(61.5, &[], None);
        assert_eq!(up.closed.len(), 1);
        assert_eq!(up.closed[0].1, CloseReason::Gone);
        // Back at the same place: a new episode, dwell from zero.
        let up = t.update(62.0, &[det(ObjectKind::StallPart, STALL)], None);
        assert_eq!(up.opened, vec![1]);
    }

    #[test]
    fn one_object_with_two_labels_is_one_episode() {
        let mut t = EpisodeTracker::new(params(), TrackerState::default());
        let mut truck = det(ObjectKind::Vehicle, [0.5, 0.5, 0.7, 0.7]);
        truck.score = 0.4;
        let up = t.update(
            0.0,
            &[det(ObjectKind::Vehicle, [0.5, 0.5, 0.7, 0.7]), truck],
            None,
        );
        assert_eq!(up.opened.len(), 1);
    }

    #[test]
    fn another_place_or_kind_is_another_episode() {
        let mut t = EpisodeTracker::new(params(), TrackerState::default());
        t.update(
            0.0,
            &[
                det(ObjectKind::StallPart, STALL),
                det(ObjectKind::StallPart, [0.6, 0.6, 0.8, 0.8]),
                det(ObjectKind::Garbage, STALL),
            ],
            None,
        );
        assert_eq!(t.open().len(), 3);
    }

    // Frames of a street (textured paving) with a car painted on it.
    use crate::scene::testing::scene;

    const CAR: BBox = [0.4, 0.4, 0.6, 0.6];

    fn street(gain: f32, car: Option<[u8; 3]>) -> Frame {
        let paint: Vec<([f32; 4], [u8; 3])> = car.into_iter().map(|c| (CAR, c)).collect();
        scene(320, 240, gain, &paint, 0)
    }

    fn car() -> Detection {
        Detection {
            label: "car".into(),
            kind: ObjectKind::Vehicle,
            score: 0.8,
            bbox: CAR,
            embedding: None,
        }
    }

    const TEAL: [u8; 3] = [40, 140, 150];
    const RED: [u8; 3] = [180, 30, 30];

    #[test]
    fn an_episode_ends_when_its_place_is_seen_clear() {
        let mut t = EpisodeTracker::new(params(), TrackerState::default());
        t.update(0.0, &[car()], Some(&street(1.0, Some(TEAL))));
        t.update(1.0, &[car()], Some(&street(1.0, Some(TEAL))));
        // The detector misses the car for a while but it is still there: held, not ended.
        for i in 2..10 {
            let up = t.update(i as f64, &[], Some(&street(1.0, Some(TEAL))));
            assert!(up.closed.is_empty());
        }
        assert_eq!(t.open()[0].held, 9.0);
        // It leaves: the empty paving is seen three frames in a row and the episode ends,
        // long before the 60 s grace.
        t.update(10.0, &[], Some(&street(1.0, None)));
        t.update(11.0, &[], Some(&street(1.0, None)));
        let up = t.update(12.0, &[], Some(&street(1.0, None)));
        assert_eq!(up.closed.len(), 1);
        assert_eq!(up.closed[0].1, CloseReason::Cleared);
        // A second car stopping at the same spot is a new episode, its dwell from zero.
        let up = t.update(20.0, &[car()], Some(&street(1.0, Some(TEAL))));
        assert_eq!(up.opened, vec![1]);
        assert_eq!(t.open()[0].dwell(), 0.0);
    }

    #[test]
    fn a_hidden_place_is_bridged_by_grace_and_darkness_stops_the_clock() {
        let mut t = EpisodeTracker::new(params(), TrackerState::default());
        // Found twice (one detection alone is never held by the dark or its structure).
        t.update(0.0, &[car()], Some(&street(1.0, Some(TEAL))));
        t.update(1.0, &[car()], Some(&street(1.0, Some(TEAL))));
        // A bus stands in front of it (a vehicle covering the place): the paving is not
        // judged, and the grace clock runs.
        let bus = Detection {
            bbox: [0.3, 0.3, 0.7, 0.7],
            score: 0.9,
            ..car()
        };
        for i in 1..=5 {
            let up = t.update(
                i as f64 * 10.0,
                std::slice::from_ref(&bus),
                Some(&street(1.0, Some([200, 200, 0]))),
            );
            assert!(up.closed.iter().all(|(e, _)| e.id != 0), "at {i}: {up:?}");
        }
        // Night: too dark to judge for hours; the car's episode waits.
        for i in 0..1000 {
            let up = t.update(55.0 + i as f64 * 30.0, &[], Some(&street(0.02, Some(TEAL))));
            assert!(up.closed.iter().all(|(e, _)| e.id != 0));
        }
        // Morning: seen again, its dwell now spans the night.
        t.update(30_050.0, &[car()], Some(&street(1.0, Some(TEAL))));
        let e = t.open().iter().find(|e| e.id == 0).unwrap();
        assert_eq!(e.dwell(), 30_050.0);
        // No frames at all for longer than the grace (camera down): gone.
        let up = t.update(30_200.0, &[], None);
        assert!(
            up.closed
                .iter()
                .any(|(e, r)| e.id == 0 && *r == CloseReason::Gone)
        );
    }

    #[test]
    fn a_swapped_car_of_another_colour_is_a_new_episode_and_dusk_splits_nothing() {
        let mut t = EpisodeTracker::new(params(), TrackerState::default());
        // One teal car through a dusk ramp, seen every 10 s: one episode.
        for i in 0..30 {
            let gain = 1.0 - 0.025 * i as f32;
            let up = t.update(i as f64 * 10.0, &[car()], Some(&street(gain, Some(TEAL))));
            assert!(up.closed.is_empty(), "at gain {gain}: {up:?}");
        }
        assert_eq!(t.open().len(), 1);
        // A red car takes its place at once: the teal one is replaced.
        let up = t.update(300.0, &[car()], Some(&street(1.0, Some(RED))));
        assert_eq!(up.closed.len(), 1);
        assert_eq!(up.closed[0].1, CloseReason::Replaced);
        assert_eq!(up.opened, vec![1]);
    }

    #[test]
    fn what_stands_at_the_first_look_or_for_days_is_proposed_never_made_a_fixture() {
        let mut t = EpisodeTracker::new(params(), TrackerState::default());
        let bench = Detection {
            label: "bench".into(),
            ..det(ObjectKind::StallPart, STALL)
        };
        t.update(100.0, std::slice::from_ref(&bench), None);
        let up = t.update(101.0, std::slice::from_ref(&bench), None);
        assert_eq!(up.proposed.len(), 1);
        assert_eq!(up.proposed[0].source, FixtureSource::Learned);
        // Proposed, not a fixture: judged like anything else until accepted.
        assert!(t.state.fixture_at(&STALL).is_none());
        // Proposed once, not on every frame.
        let up = t.update(102.0, std::slice::from_ref(&bench), None);
        assert!(up.proposed.is_empty());
        // A table set up later is not, until it has stood for days (1000 s here).
        let table = det(ObjectKind::StallPart, [0.6, 0.6, 0.8, 0.8]);
        for i in 0..100 {
            t.update(
                200.0 + i as f64 * 10.0,
                &[bench.clone(), table.clone()],
                None,
            );
        }
        assert_eq!(t.state.proposed.len(), 1);
        let up = t.update(1200.0, &[bench.clone(), table.clone()], None);
        assert_eq!(up.proposed.len(), 1, "{:?}", up.proposed);
        assert_eq!(up.proposed[0].source, FixtureSource::Stayed);
        assert!(
            t.state.fixtures.is_empty(),
            "standing for days makes no fixture"
        );
        // The operator accepts the bench and dismisses the table.
        assert_eq!(t.state.answer_proposed(&STALL, true, 1300.0), 1);
        assert!(t.state.fixture_at(&STALL).is_some());
        assert_eq!(
            t.state
                .answer_proposed(&[0.6, 0.6, 0.8, 0.8], false, 1300.0),
            1
        );
        assert!(t.state.proposed.is_empty());
        // A dismissed place is not proposed again, however long it stands.
        for i in 0..120 {
            let up = t.update(
                1300.0 + i as f64 * 10.0,
                &[bench.clone(), table.clone()],
                None,
            );
            assert!(up.proposed.is_empty());
        }
        // An operator can remove a fixture.
        assert_eq!(t.state.remove_fixtures_at(&STALL), 1);
        assert!(t.state.fixture_at(&STALL).is_none());
    }

    #[test]
    fn reused_detections_keep_an_episode_but_never_open_or_confirm_one() {
        let mut t = EpisodeTracker::new(params(), TrackerState::default());
        let d = det(ObjectKind::StallPart, STALL);
        // Reused only: nothing opens.
        let up = t.update_with(0.0, std::slice::from_ref(&d), None, Hits::Reused);
        assert!(up.opened.is_empty() && t.open().is_empty());
        // One fresh detection opens it; reused ones count no hits and move no dwell...
        t.update(1.0, std::slice::from_ref(&d), None);
        for i in 2..20 {
            t.update_with(i as f64, std::slice::from_ref(&d), None, Hits::Reused);
        }
        let e = &t.open()[0];
        assert_eq!(e.hits, 1);
        assert_eq!(e.dwell(), 0.0);
        assert!(!e.present_at(19.0));
        // ...but they hold it: the grace clock (30 s) waits while the gate reuses.
        for i in 20..80 {
            let up = t.update_with(i as f64, std::slice::from_ref(&d), None, Hits::Reused);
            assert!(up.closed.is_empty(), "closed at {i}");
        }
        // Two more fresh detections confirm it.
        t.update(80.0, std::slice::from_ref(&d), None);
        t.update(81.0, std::slice::from_ref(&d), None);
        assert!(t.open()[0].present_at(81.0));
    }

    #[test]
    fn open_episodes_are_bounded_and_the_weakest_go_first() {
        let mut t = EpisodeTracker::new(params(), TrackerState::default());
        // A confirmed one first, then a flood of one-off detections.
        let d = det(ObjectKind::StallPart, [0.0, 0.0, 0.001, 0.001]);
        for i in 0..3 {
            t.update(i as f64, std::slice::from_ref(&d), None);
        }
        let mut evicted = 0;
        for k in 0..(MAX_OPEN + 40) {
            let x = 0.002 + k as f32 * 0.0035;
            let y = (k / 280) as f32 * 0.01;
            let flood = det(
                ObjectKind::StallPart,
                [x % 0.99, 0.5 + y, x % 0.99 + 0.002, 0.502 + y],
            );
            evicted += t.update(3.0 + k as f64 * 0.01, &[flood], None).evicted;
        }
        assert_eq!(t.open().len(), MAX_OPEN);
        assert!(evicted >= 40, "{evicted}");
        assert!(
            t.open().iter().any(|e| e.hits >= MIN_HITS),
            "the confirmed one stays"
        );
    }

    #[test]
    fn an_unconfirmed_episode_is_not_held_by_its_structure() {
        // One false detection: its patch is the background, which stays "the same" forever;
        // it must still end after its grace.
        let frame = crate::scene::testing::scene(320, 240, 1.0, &[], 0);
        let mut t = EpisodeTracker::new(params(), TrackerState::default());
        t.update(0.0, &[det(ObjectKind::StallPart, STALL)], Some(&frame));
        let mut closed = None;
        for i in 1..60 {
            let up = t.update(i as f64, &[], Some(&frame));
            if !up.closed.is_empty() {
                closed = Some(i);
                break;
            }
        }
        assert_eq!(closed, Some(31), "closed after the 30 s grace");
    }

    proptest::proptest! {
        /// Any light between full day and deep dusk keeps a car's look; another colour never
        /// matches it.
        #[test]
        fn light_does_not_split_one_car_and_colour_does(
            gain in 0.15f32..1.0,
            other in proptest::sample::select(vec![[180u8, 30, 30], [200, 200, 40], [60, 60, 200]]),
        ) {
            let day = Signature::of(&street(1.0, Some(TEAL)), &CAR);
            let dusk = Signature::of(&street(gain, Some(TEAL)), &CAR);
            let another = Signature::of(&street(gain, Some(other)), &CAR);
            proptest::prop_assert!(day.distance(&dusk) <= 0.35 / 2.0, "{}", day.distance(&dusk));
            proptest::prop_assert!(day.distance(&another) > 0.35, "{}", day.distance(&another));
        }
    }
}
