//! One camera's decisions after detection: episodes → rules → limits, with episodes kept in
//! the store. Shared by `citywatch run` and `citywatch replay`.

use serde::Serialize;

use crate::config::{CameraConfig, PipelineConfig};
use crate::detect::Detection;
use crate::episodes::persist::EpisodeStore;
use crate::episodes::{EpisodeTracker, Hits, Params};
use crate::ingest::Frame;
use crate::ratelimit::{Capture, CaseLimiter, Suppression, Verdict};
use crate::rules::engine::{Outcome, RuleEngine};
use crate::scene::view::{ViewGuard, ViewParams, ViewState};

pub use crate::model::live::{AnalysisBoard, AnalysisStatus, SceneCommand, SceneDesk};

/// What one analysed frame produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Capture(Capture),
    Suppressed(Suppression),
    /// A closure check's look at a handled case's place decided.
    Checked(crate::closure::CheckResult),
}

/// Which captures are settled: written to the queue or stored (or given up, with an error
/// that says so), as the filing stage tells it. An analyser saves its camera's episodes with
/// a capture's rule resolved only once the capture is settled; until then its saved state is
/// the one from before the capture, so a process killed while the package is built, or
/// while the queue's disk and the database both refuse it, meets the rule again after a
/// restart and files the capture again, under the same key (stored once).
#[derive(Debug, Default)]
pub struct Settled {
    /// Captures an analyser waits on: whether each is settled yet.
    waiting: parking_lot::Mutex<std::collections::HashMap<String, bool>>,
}

impl Settled {
    /// An analyser will ask about this capture.
    pub fn expect(&self, key: &str) {
        self.waiting.lock().insert(key.to_string(), false);
    }

    /// The capture is in the queue or the database (or given up).
    pub fn mark(&self, key: &str) {
        if let Some(done) = self.waiting.lock().get_mut(key) {
            *done = true;
        }
    }

    /// Whether the capture is settled; once it is, it is forgotten here.
    pub fn take(&self, key: &str) -> bool {
        let mut waiting = self.waiting.lock();
        let done = waiting.get(key).copied().unwrap_or(false);
        if done {
            waiting.remove(key);
        }
        done
    }
}

pub struct CaptureFinder {
    camera: String,
    tracker: EpisodeTracker,
    engine: RuleEngine,
    limiter: CaseLimiter,
    /// The view-drift guard; None when `[view] guard = false`.
    view: Option<ViewGuard>,
    /// Operators' commands and the published fixtures.
    desk: Option<SceneDesk>,
    /// What operators said of earlier captures, by look.
    memory: Option<crate::learn::SharedMemory>,
    /// Closure checks of handled cases, and this camera's looks at their places.
    checks: Option<(crate::closure::SharedChecks, crate::closure::Checker)>,
    store: Box<dyn EpisodeStore>,
    last_saved: f64,
    /// With filing: captures not yet settled (queued or stored), by key. While any is, the
    /// episodes are not saved, so the saved state never has a rule resolved whose capture a
    /// kill could still lose.
    settled: Option<std::sync::Arc<Settled>>,
    unsettled: Vec<String>,
    /// Episodes the last step opened and closed.
    pub opened: Vec<u64>,
    pub closed: Vec<u64>,
    /// Open episodes evicted so far (too many open).
    evicted: u64,
    /// Where the camera's unreadable saved state was set aside at start, if it was.
    quarantined: Option<String>,
    /// Reads that must agree on a plate (`[detect.plates] min_agree`) when plates are read:
    /// a candidate carries its vehicle's plate into the verdict memory's judgement.
    plate_min_agree: Option<u32>,
}

/// How often unchanged episodes are saved anyway (their last-seen times move).
const SAVE_EVERY_S: f64 = 10.0;

/// How much a returning vehicle's box must overlap the gone one's to be at the same place.
const SAME_PLACE_IOU: f32 = 0.3;

impl CaptureFinder {
    /// `model_sees_overflow`: the detector reports bin_overflow/garbage itself.
    pub fn new(
        cam: &CameraConfig,
        config: &PipelineConfig,
        store: Box<dyn EpisodeStore>,
        model_sees_overflow: bool,
    ) -> std::io::Result<Self> {
        let state = store.load(&cam.id)?;
        let quarantined = store.quarantined(&cam.id);
        let mut params = Params::from(&config.episodes);
        // A patrolled camera sends nothing between visits: grace follows its revisit period,
        // so an object is never taken for gone between two visits.
        if let Some(gap) = config.patrol_gap(cam) {
            params.grace = params.grace.max(gap);
            params.vehicle_grace = params.vehicle_grace.max(gap);
        }
        let mut limiter = CaseLimiter::new(&config.limits);
        limiter.restore_deferred(state.deferred.clone());
        let v = &config.view;
        Ok(Self {
            camera: cam.id.clone(),
            tracker: EpisodeTracker::new(params, state),
            engine: RuleEngine::new(cam.clone(), model_sees_overflow),
            limiter,
            view: v.guard.then(|| {
                ViewGuard::new(ViewParams {
                    tolerance: v.tolerance,
                    min_match: v.min_match,
                    frames: v.frames,
                })
            }),
            desk: None,
            memory: None,
            checks: None,
            store,
            last_saved: f64::MIN,
            settled: None,
            unsettled: Vec::new(),
            opened: Vec::new(),
            closed: Vec::new(),
            evicted: 0,
            quarantined,
            plate_min_agree: None,
        })
    }

    pub fn has_open_episodes(&self) -> bool {
        !self.tracker.open().is_empty()
    }

    /// A frame at `t` that could not be judged (the detector failed): the open episodes are
    /// held, their dwell and grace intact, until frames are judged again.
    pub fn unjudged(&mut self, t: f64) {
        self.tracker.hold_all(t);
    }

    /// Open episodes that could meet one of the camera's rules.
    pub fn watched_episodes(&self) -> usize {
        self.tracker
            .open()
            .iter()
            .filter(|e| self.engine.watches(e))
            .count()
    }

    pub fn tracker(&self) -> &EpisodeTracker {
        &self.tracker
    }

    /// Standing vehicles due a plate read at `t`: found in this frame, watched by one of the
    /// camera's rules, stood `after_s`, last read `every_s` ago. (id, box) each.
    pub fn plates_due(
        &self,
        t: f64,
        after_s: f64,
        every_s: f64,
        settled_every_s: f64,
    ) -> Vec<(u64, crate::model::BBox)> {
        self.tracker
            .open()
            .iter()
            .filter(|e| e.kind == crate::detect::ObjectKind::Vehicle && e.last_seen >= t)
            .filter(|e| {
                e.plate.as_ref().is_none_or(|p| {
                    // Once the plate is settled, reads only watch for a swap: less often, as
                    // long as the last read found the settled plate (another plate, or none,
                    // is checked again soon).
                    let every = if p.confirmed() {
                        settled_every_s
                    } else {
                        every_s
                    };
                    p.due(t, e.dwell(), after_s, every)
                }) && e.dwell() >= after_s
            })
            .filter(|e| self.engine.watches(e))
            .map(|e| (e.id, e.last_box))
            .collect()
    }

    /// Adds a plate read to an open episode's vote, and acts on what it says of the vehicle's
    /// identity:
    /// - a plate settled that a vehicle gone from this place had: the same vehicle, whose
    ///   dwell (and the rules it was captured for) goes on from its first sighting;
    /// - the reads moved to another plate: a swap; the old vehicle's episode closes as
    ///   replaced and the new one starts now.
    pub fn add_plate_read(
        &mut self,
        id: u64,
        t: f64,
        read: &crate::model::plate::PlateRead,
        min_agree: u32,
    ) {
        use crate::model::plate::{PLATE_MEMORY_S, PlateNews, PlateTrack};
        let Some(e) = self.tracker.get_mut(id) else {
            return;
        };
        let news = e
            .plate
            .get_or_insert_with(Default::default)
            .add_and_judge(t, read, min_agree);
        match news {
            PlateNews::Nothing => {}
            PlateNews::Settled(plate) => {
                let anchor = e.anchor;
                let gone = &mut self.tracker.state.gone_plates;
                let Some(i) = gone.iter().position(|g| {
                    g.plate == plate
                        && t - g.closed_at <= PLATE_MEMORY_S
                        && crate::model::iou(&g.anchor, &anchor) >= SAME_PLACE_IOU
                }) else {
                    return;
                };
                let g = gone.remove(i);
                let e = self.tracker.get_mut(id).expect("still open");
                e.first_seen = e.first_seen.min(g.first_seen);
                for r in g.resolved {
                    if !e.resolved.contains(&r) {
                        e.resolved.push(r);
                    }
                }
                tracing::info!(camera = %self.camera, episode = id, plate = %plate, since = g.first_seen, "the same plate at the same place: the vehicle's dwell goes on");
            }
            PlateNews::Swapped { was, now } => {
                let Some(i) = self.tracker.state.open.iter().position(|e| e.id == id) else {
                    return;
                };
                let old = self.tracker.state.open.remove(i);
                self.limiter.episode_closed(old.id, t, true);
                self.closed.push(old.id);
                let reads = old
                    .plate
                    .as_ref()
                    .map(|p| {
                        p.recent[p.recent.len().saturating_sub(min_agree.max(1) as usize)..]
                            .to_vec()
                    })
                    .unwrap_or_default();
                let new_id = self.tracker.state.next_id;
                self.tracker.state.next_id += 1;
                let e = crate::episodes::Episode {
                    id: new_id,
                    first_seen: t,
                    resolved: Vec::new(),
                    deferred: Vec::new(),
                    person_near: None,
                    person_since: None,
                    plate: Some(PlateTrack::started_from(t, &reads, read.confidence)),
                    ..old.clone()
                };
                self.tracker.state.open.push(e);
                self.opened.push(new_id);
                tracing::info!(camera = %self.camera, episode = old.id, new_episode = new_id, was = %was, now = %now, "another plate at the same place: a swap, the new vehicle's dwell starts now");
            }
        }
    }

    /// The plate an open episode's reads voted for, when `min_agree` of them agree.
    pub fn plate_of(&self, id: u64, min_agree: u32) -> Option<crate::model::plate::VotedPlate> {
        self.tracker
            .open()
            .iter()
            .find(|e| e.id == id)
            .and_then(|e| e.plate.as_ref())
            .and_then(|p| p.vote.winner(min_agree))
    }

    pub fn limiter(&self) -> &CaseLimiter {
        &self.limiter
    }

    /// Takes operators' commands from `desk` and publishes the camera's fixtures there.
    pub fn with_desk(mut self, desk: SceneDesk) -> Self {
        desk.publish(
            &self.camera,
            &self.tracker.state.fixtures,
            &self.tracker.state.proposed,
        );
        self.desk = Some(desk);
        self
    }

    /// Saves a capture's rule as resolved only once filing has settled the capture.
    pub fn with_settled(mut self, settled: Option<std::sync::Arc<Settled>>) -> Self {
        self.settled = settled;
        self
    }

    /// Judges candidates against the verdict memory: lookalikes of rejected captures become
    /// learned suppressions.
    pub fn with_memory(mut self, memory: crate::learn::SharedMemory) -> Self {
        self.memory = Some(memory);
        self
    }

    /// Looks at the places of this camera's cases reported handled (the closure check).
    pub fn with_checks(
        mut self,
        checks: crate::closure::SharedChecks,
        settings: crate::config::ClosureSettings,
    ) -> Self {
        self.checks = Some((checks, crate::closure::Checker::new(settings)));
        self
    }

    /// This frame's looks at the places of handled cases.
    fn look(&mut self, t: f64, dets: &[Detection], frame: Option<&Frame>) -> Vec<Event> {
        use crate::closure::Sight;
        let off = self.off_view();
        let (engine, tracker) = (&self.engine, &self.tracker);
        let Some((checks, checker)) = self.checks.as_mut() else {
            return Vec::new();
        };
        let requests = checks.for_camera(&self.camera);
        if requests.is_empty() {
            return Vec::new();
        }
        checker
            .step(t, &requests, |r| {
                if off {
                    return Sight::Unjudgeable("off_view");
                }
                let Some(f) = frame else {
                    return Sight::Unjudgeable("no_frame");
                };
                match crate::model::RuleKind::parse(&r.rule) {
                    Some(rule) => engine.place_sight(rule, &r.zone, &r.bbox, t, tracker, dets, f),
                    None => Sight::Unjudgeable("unknown_rule"),
                }
            })
            .into_iter()
            .map(Event::Checked)
            .collect()
    }

    /// Carries out operators' commands at time `t`; says whether anything changed.
    fn apply_commands(&mut self, t: f64, frame: Option<&Frame>) -> bool {
        let Some(desk) = &self.desk else {
            return false;
        };
        let cmds = desk.take(&self.camera);
        let changed = !cmds.is_empty();
        for cmd in cmds {
            let state = &mut self.tracker.state;
            match cmd {
                SceneCommand::AddFixture { label, bbox } => {
                    state.add_fixture(crate::episodes::Fixture {
                        label,
                        bbox,
                        since: t,
                        source: crate::episodes::FixtureSource::Operator,
                    });
                }
                SceneCommand::RemoveFixtures { bbox } => {
                    state.remove_fixtures_at(&bbox);
                }
                SceneCommand::AnswerProposed { bbox, accept } => {
                    state.answer_proposed(&bbox, accept, t);
                }
                SceneCommand::SetZone { zone, polygon } => {
                    if self.engine.set_zone_polygon(&zone, polygon, state) {
                        tracing::info!(camera = %self.camera, %zone, "zone redrawn: the rules use it from this frame");
                    } else {
                        tracing::warn!(camera = %self.camera, %zone, "a redrawn zone the camera does not have");
                    }
                }
                SceneCommand::RemoveZone { zone } => {
                    if self.engine.remove_drawn_mask(&zone) {
                        tracing::info!(camera = %self.camera, %zone, "drawn mask removed");
                    }
                }
                SceneCommand::TakeView => {
                    state.view = Default::default();
                    if let Some(g) = self.view.as_mut() {
                        g.reset();
                    }
                    tracing::info!(camera = %self.camera, "view reference dropped by an admin: the next steady view becomes it");
                }
                SceneCommand::MarkClean { zone } => {
                    self.engine.mark_clean(&zone, frame, state, t);
                    // Whatever was filed there is over: the next heap is a new capture.
                    self.limiter
                        .zone_cleared(crate::config::RuleKind::OverflowingBin, &zone, t);
                }
            }
            tracing::info!(camera = %self.camera, "operator's scene command carried out");
        }
        if changed {
            desk.publish(
                &self.camera,
                &self.tracker.state.fixtures,
                &self.tracker.state.proposed,
            );
        }
        changed
    }

    /// Whether the camera is off the view its zones were drawn for (rules paused).
    pub fn off_view(&self) -> bool {
        self.view
            .as_ref()
            .is_some_and(|g| g.state() == ViewState::OffView)
    }

    /// The bin zones whose clean reference was taken by the last steps.
    pub fn take_new_references(&mut self) -> Vec<String> {
        self.engine.take_new_references()
    }

    /// Candidates waiting for a token.
    pub fn deferred(&self) -> usize {
        self.limiter.deferred().len()
    }

    /// Feeds one analysed frame with fresh detections at time `t`.
    pub fn step(&mut self, t: f64, dets: &[Detection], frame: Option<&Frame>) -> Vec<Event> {
        self.step_with(t, dets, frame, Hits::Fresh)
    }

    /// Open episodes evicted so far because the camera had too many open.
    pub fn evicted_episodes(&self) -> u64 {
        self.evicted
    }

    /// Where the camera's unreadable saved state was set aside at start, if it was (the
    /// camera started fresh).
    pub fn quarantined(&self) -> Option<&str> {
        self.quarantined.as_deref()
    }

    /// Feeds one analysed frame at time `t`, its detections fresh or reused (reused ones
    /// never open or confirm an episode: see [`Hits`]).
    pub fn step_with(
        &mut self,
        t: f64,
        dets: &[Detection],
        frame: Option<&Frame>,
        hits: Hits,
    ) -> Vec<Event> {
        let mut events = Vec::new();
        let was_off = self.off_view();
        if let (Some(guard), Some(f)) = (self.view.as_mut(), frame) {
            guard.check(&mut self.tracker.state.view, f);
        }
        let off = self.off_view();
        if off != was_off {
            let r = self.view.as_ref().and_then(|g| g.last);
            if off {
                tracing::warn!(camera = %self.camera, registration = ?r, "camera off its view: rules paused");
            } else {
                tracing::info!(camera = %self.camera, "camera back on its view: rules resume");
            }
        }
        let mut changed = off != was_off;
        changed |= self.apply_commands(t, frame);
        if off {
            // The zones cover the wrong ground: nothing is matched, judged or ended.
            self.tracker.hold_all(t);
        } else {
            let up = self.tracker.update_with(t, dets, frame, hits);
            if up.evicted > 0 {
                self.evicted += u64::from(up.evicted);
                tracing::warn!(camera = %self.camera, evicted = up.evicted, "too many open episodes: the weakest evicted");
            }
            self.opened = up.opened.clone();
            self.closed = up.closed.iter().map(|(e, _)| e.id).collect();
            for (e, why) in &up.closed {
                tracing::debug!(camera = %self.camera, episode = e.id, label = %e.label, reason = ?why, dwell = e.dwell(), hits = e.hits, t, "episode closed");
                self.limiter.episode_closed(e.id, t, why.seen_to_leave());
                // Out of sight, not seen to leave: its plate is remembered at its place.
                if *why == crate::episodes::CloseReason::Gone
                    && let Some(plate) = e.plate.as_ref().and_then(|p| p.settled.clone())
                {
                    use crate::model::plate::{GonePlate, PLATE_MEMORY_MAX, PLATE_MEMORY_S};
                    let gone = &mut self.tracker.state.gone_plates;
                    gone.retain(|g| t - g.closed_at <= PLATE_MEMORY_S);
                    gone.push(GonePlate {
                        plate,
                        anchor: e.anchor,
                        first_seen: e.first_seen,
                        closed_at: t,
                        resolved: e.resolved.clone(),
                    });
                    if gone.len() > PLATE_MEMORY_MAX {
                        gone.remove(0);
                    }
                }
            }
            for id in &up.opened {
                if let Some(e) = self.tracker.open().iter().find(|e| e.id == *id) {
                    tracing::debug!(camera = %self.camera, episode = id, label = %e.label, bbox = ?e.anchor, t, "episode opened");
                }
            }
            for f in &up.proposed {
                tracing::info!(camera = %self.camera, label = %f.label, source = ?f.source, bbox = ?f.bbox, "fixture proposed: an operator accepts or dismisses it on the cameras page");
            }
            let outcomes = self.engine.evaluate(t, &mut self.tracker, dets, frame);
            for o in &outcomes {
                match o.clone() {
                    Outcome::Met(mut c) => {
                        if let (Some(id), Some(k)) = (c.episode, self.plate_min_agree)
                            && c.plate.is_none()
                        {
                            c.plate = self.plate_of(id, k);
                        }
                        let r = self.memory.as_ref().and_then(|m| m.judge(&self.camera, &c));
                        events.push(verdict(self.limiter.offer_judged(c, r)));
                        // A full deferral queue expired its oldest to make room.
                        events.extend(
                            self.limiter
                                .take_evicted()
                                .into_iter()
                                .map(Event::Suppressed),
                        );
                    }
                    Outcome::OutsideHours(c) => {
                        events.push(Event::Suppressed(self.limiter.outside_hours(c)))
                    }
                    Outcome::Cleared { rule, zone } => self.limiter.zone_cleared(rule, &zone, t),
                }
            }
            // Candidates waiting for a token: filed as tokens return, if still there.
            let state = &self.tracker.state;
            for v in self.limiter.release(t, |c| match c.episode {
                Some(id) => state.open.iter().any(|e| e.id == id),
                None => RuleEngine::still_there(state, c),
            }) {
                events.push(verdict(v));
            }
            if !up.proposed.is_empty()
                && let Some(desk) = &self.desk
            {
                desk.publish(
                    &self.camera,
                    &self.tracker.state.fixtures,
                    &self.tracker.state.proposed,
                );
            }
            changed |= !up.opened.is_empty()
                || !up.closed.is_empty()
                || !up.proposed.is_empty()
                || !events.is_empty();
        }
        events.extend(self.look(t, dets, frame));
        if let Some(settled) = &self.settled {
            let waited = !self.unsettled.is_empty();
            for e in &events {
                if let Event::Capture(c) = e {
                    let key = crate::store::capture_key(c);
                    settled.expect(&key);
                    self.unsettled.push(key);
                }
            }
            self.unsettled.retain(|k| !settled.take(k));
            // The last one settled: its resolution is saved now.
            changed |= waited && self.unsettled.is_empty();
        }
        // While a capture is unsettled the saved state stays the one from before it.
        if self.unsettled.is_empty() && (changed || t - self.last_saved >= SAVE_EVERY_S) {
            self.tracker.state.deferred = self.limiter.deferred().to_vec();
            if let Err(e) = self.store.save(&self.camera, &self.tracker.state) {
                tracing::warn!(camera = %self.camera, error = %e, "cannot save episodes; will retry");
            } else {
                self.last_saved = t;
            }
        }
        events
    }
}

fn verdict(v: Verdict) -> Event {
    match v {
        Verdict::Captured(k) => Event::Capture(k),
        Verdict::Suppressed(s) => Event::Suppressed(s),
    }
}

/// Everything one camera does with a frame after ingest: gate, budget, detect, episodes,
/// rules, limits.
pub struct FrameAnalyser {
    camera: String,
    gate: crate::detect::SceneGate,
    analysis: CaptureFinder,
    budget: Option<std::sync::Arc<parking_lot::Mutex<crate::ratelimit::InferenceBudget>>>,
    service: std::sync::Arc<dyn crate::detect::DetectionSource>,
    pub status: AnalysisStatus,
    /// Keep first-seen frames and the latest frame for evidence.
    evidence: bool,
    first_seen: std::collections::VecDeque<(u64, crate::evidence::Snapshot)>,
    /// Per bin zone, the frame its clean reference was taken from: a bin capture's "before".
    references: std::collections::HashMap<String, crate::evidence::Snapshot>,
    last_frame: Option<std::sync::Arc<Frame>>,
    /// (time, ran the detector) of the frames of the last minute.
    recent: std::collections::VecDeque<(f64, bool)>,
    /// Keep the detector's own output of the last frame (evaluation scores it).
    keep_fresh: bool,
    fresh: Option<Vec<Detection>>,
    /// Regions the detector also runs on (a camera's `detect_crops`).
    crops: Vec<crate::model::BBox>,
    /// The part of the frame the detector runs on instead of the whole (`detect_region`).
    region: Option<crate::model::BBox>,
    /// Detector runs since the crops last ran.
    since_crops: u32,
    /// The automatic closer looks at small rule zones (no `detect_crops` set).
    closer: Closer,
    /// The plate reader of standing vehicles; None when off or without vehicle rules.
    plates: Option<Plates>,
    /// The camera's packet ring: plates are read from its keyframes at full size.
    stills: Option<crate::ingest::ring::PacketRing>,
}

/// How much older than the analysed frame a keyframe may be to stand in for it.
const STILL_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(5);

/// A camera's plate reading: the shared reader, its settings, and per open vehicle the crop
/// of the plate from its best read so far (the evidence's plate photo).
struct Plates {
    reader: std::sync::Arc<dyn crate::plate::PlateReader>,
    settings: crate::config::PlateSettings,
    crops: std::collections::HashMap<u64, PlateCrop>,
}

/// The best read of a vehicle's plate: its confidence, the plate's picture, and where the
/// plate is in the frame (normalised).
struct PlateCrop {
    confidence: f32,
    image: crate::plate::RgbImage,
    bbox: [f32; 4],
}

/// A camera's automatic closer looks (`detect::closer`).
enum Closer {
    /// `detect_crops` is set (or nothing to look at).
    Off,
    /// The rule zones' bounds with the detail their rules need, until the first frame gives
    /// the frame's size.
    Zones(Vec<(crate::model::BBox, f32)>),
    /// The looks: on every [`CROPS_EVERY`]th detector run, the detector runs on these
    /// instead of its usual view, so looking closer costs no extra inference with one look.
    Looks(Vec<crate::model::BBox>),
}

/// The crops run on every this-many detector runs: what they find is stationary, and between
/// their runs the episodes' structure keeps it present.
pub const CROPS_EVERY: u32 = 3;

/// Most first-seen frames one camera keeps (oldest dropped first).
const FIRST_SEEN_KEPT: usize = 16;

/// What evidence a capture gets from its camera's analysis.
pub struct CaptureFrames {
    pub confirm: crate::evidence::image::Picture,
    pub confirm_stream_s: Option<f64>,
    pub first_seen: Option<crate::evidence::Snapshot>,
    /// The plate as its best read saw it, for a vehicle whose plate was read.
    pub plate: Option<crate::evidence::image::Picture>,
}

impl FrameAnalyser {
    /// The camera's episodes, rules and limits.
    pub fn analysis(&self) -> &CaptureFinder {
        &self.analysis
    }

    pub fn new(
        camera: &str,
        gate: crate::detect::GateConfig,
        analysis: CaptureFinder,
        budget: Option<std::sync::Arc<parking_lot::Mutex<crate::ratelimit::InferenceBudget>>>,
        service: std::sync::Arc<dyn crate::detect::DetectionSource>,
    ) -> Self {
        Self {
            camera: camera.to_string(),
            gate: crate::detect::SceneGate::new(gate),
            analysis,
            budget,
            service,
            status: AnalysisStatus::default(),
            evidence: false,
            first_seen: Default::default(),
            references: Default::default(),
            last_frame: None,
            recent: Default::default(),
            keep_fresh: false,
            fresh: None,
            crops: Vec::new(),
            region: None,
            since_crops: CROPS_EVERY,
            closer: Closer::Off,
            plates: None,
            stills: None,
        }
    }

    /// Reads plates from the ring's keyframes at the camera's full size (when a keyframe at
    /// most 5 s older than the analysed frame is there) instead of the analysis frame.
    pub fn with_stills(mut self, ring: crate::ingest::ring::PacketRing) -> Self {
        self.stills = Some(ring);
        self
    }

    /// Reads the plates of standing vehicles with `reader` (`[detect.plates]`).
    pub fn with_plates(
        mut self,
        reader: std::sync::Arc<dyn crate::plate::PlateReader>,
        settings: crate::config::PlateSettings,
    ) -> Self {
        self.analysis.plate_min_agree = Some(settings.min_agree);
        self.plates = Some(Plates {
            reader,
            settings,
            crops: Default::default(),
        });
        self
    }

    /// Reads the plates of the vehicles due a read in this frame, on a blocking thread (a
    /// read is tens of milliseconds of CPU), and folds each into its episode's vote. A
    /// reader error is logged and counted; the vehicle is read again next period.
    async fn read_plates(&mut self, frame: &std::sync::Arc<Frame>, t: f64) {
        let Some(p) = self.plates.as_mut() else {
            return;
        };
        let due = self.analysis.plates_due(
            t,
            p.settings.after_s,
            p.settings.every_s,
            p.settings.settled_every_s,
        );
        p.crops
            .retain(|id, _| self.analysis.tracker().open().iter().any(|e| e.id == *id));
        if due.is_empty() {
            return;
        }
        // The full-size keyframe, decoded once for every vehicle due in this frame.
        let key = self.stills.as_ref().zip(frame.pts).and_then(|(ring, pts)| {
            let at = pts.as_nanos() as u64;
            ring.keyframe_at(at)
                .filter(|k| at - k.pts.min(at) <= STILL_MAX_AGE.as_nanos() as u64)
        });
        let still = match key {
            Some(k) => {
                let started = std::time::Instant::now();
                let s =
                    tokio::task::spawn_blocking(move || crate::ingest::still::decode_keyframe(&k))
                        .await;
                self.status.plate_read_ms += started.elapsed().as_millis() as u64;
                match s {
                    Ok(Ok(s)) if s.width > frame.width => Some(s),
                    Ok(Ok(_)) => None,
                    Ok(Err(e)) => {
                        tracing::debug!(camera = %self.camera, error = %e, "no full-size still; plates read from the analysis frame");
                        None
                    }
                    Err(_) => None,
                }
            }
            None => None,
        };
        for (id, bbox) in due {
            let ((crop, origin), size) = match &still {
                Some(s) => (
                    crate::plate::RgbImage::region_at(
                        s.width,
                        s.height,
                        &s.rgb,
                        s.width as usize * 3,
                        bbox,
                        0.05,
                    ),
                    (s.width as f32, s.height as f32),
                ),
                None => (
                    crate::plate::RgbImage::region_at(
                        frame.width,
                        frame.height,
                        frame.raw(),
                        frame.stride,
                        bbox,
                        0.05,
                    ),
                    (frame.width as f32, frame.height as f32),
                ),
            };
            let reader = p.reader.clone();
            let started = std::time::Instant::now();
            let res = tokio::task::spawn_blocking(move || {
                let r = reader.read(&crop);
                (r, crop)
            })
            .await;
            self.status.plate_reads += 1;
            self.status.plate_read_ms += started.elapsed().as_millis() as u64;
            match res {
                Ok((Ok(r), crop)) => {
                    tracing::debug!(camera = %self.camera, episode = id, t, plate = ?r.read.text, lines = ?r.lines, "plate read");
                    if r.read.text.is_some() {
                        self.status.plates_read += 1;
                    }
                    if let (Some([x, y, w, h]), Some(_)) = (r.region, &r.read.text) {
                        let better = p
                            .crops
                            .get(&id)
                            .is_none_or(|k| r.read.confidence >= k.confidence);
                        if better {
                            let (ox, oy) = (origin.0 as f32, origin.1 as f32);
                            p.crops.insert(
                                id,
                                PlateCrop {
                                    confidence: r.read.confidence,
                                    image: crop.crop(x, y, w, h),
                                    bbox: [
                                        (ox + x as f32) / size.0,
                                        (oy + y as f32) / size.1,
                                        (ox + (x + w) as f32) / size.0,
                                        (oy + (y + h) as f32) / size.1,
                                    ],
                                },
                            );
                        }
                    }
                    self.analysis
                        .add_plate_read(id, t, &r.read, p.settings.min_agree);
                }
                Ok((Err(e), _)) => {
                    self.status.plate_errors += 1;
                    tracing::warn!(camera = %self.camera, episode = id, error = %e, "plate read failed");
                    // Counted as a read taken, so the vehicle waits its period.
                    self.analysis.add_plate_read(
                        id,
                        t,
                        &crate::model::plate::PlateRead {
                            text: None,
                            confidence: 0.0,
                        },
                        p.settings.min_agree,
                    );
                }
                Err(e) => {
                    self.status.plate_errors += 1;
                    tracing::warn!(camera = %self.camera, episode = id, error = %e, "plate read panicked");
                }
            }
        }
    }

    /// The plate crop kept for an open vehicle (its best read's), for the evidence.
    pub fn plate_crop(&self, episode: u64) -> Option<&crate::plate::RgbImage> {
        self.plates.as_ref()?.crops.get(&episode).map(|c| &c.image)
    }

    /// Looks closer, by default, at those of these rule zones' bounds that the detector sees
    /// small (decided at the first frame, from its size and the model's input size). Ignored
    /// with explicit crops ([`Self::with_crops`]).
    pub fn with_closer_looks(mut self, zones: Vec<(crate::model::BBox, f32)>) -> Self {
        if self.crops.is_empty() && !zones.is_empty() {
            self.closer = Closer::Zones(zones);
        }
        self
    }

    /// Runs the detector on this part of each frame instead of the whole (a crop around the
    /// rule zones), mapping its boxes back; and gates on the given regions only.
    pub fn with_region(
        mut self,
        region: Option<crate::model::BBox>,
        gate_regions: &[crate::model::BBox],
        margin: f32,
    ) -> Self {
        self.region = region;
        self.gate.watch(gate_regions, margin);
        self
    }

    /// Also runs the detector on these regions of each analysed frame, for objects too small
    /// in the whole frame.
    pub fn with_crops(mut self, crops: Vec<crate::model::BBox>) -> Self {
        self.crops = crops;
        self
    }

    /// Keeps each frame's fresh detections for [`Self::fresh`].
    pub fn keeping_detections(mut self) -> Self {
        self.keep_fresh = true;
        self
    }

    /// What the detector returned for the last processed frame; None when that frame reused
    /// earlier detections (or detections are not kept).
    pub fn fresh(&self) -> Option<&[Detection]> {
        self.fresh.as_deref()
    }

    /// Keeps what evidence packages need: first-seen frames and the latest frame.
    pub fn with_evidence(mut self) -> Self {
        self.evidence = true;
        self
    }

    /// The frames for a capture made by the last processed frame.
    pub fn capture_frames(&self, c: &crate::ratelimit::Capture) -> Option<CaptureFrames> {
        let frame = self.last_frame.as_ref()?;
        let first_seen = match c.candidate.episode {
            Some(id) => self
                .first_seen
                .iter()
                .find(|(e, _)| *e == id)
                .map(|(_, s)| s.clone()),
            // A bin capture: the zone as it was when judged clean.
            None => self.references.get(&c.candidate.zone).cloned(),
        };
        let plate = match (c.candidate.episode, &c.candidate.plate) {
            (Some(id), Some(_)) => self
                .plate_crop(id)
                .map(|i| crate::evidence::image::Picture {
                    width: i.width,
                    height: i.height,
                    rgb: std::sync::Arc::new(i.data.clone()),
                }),
            _ => None,
        };
        Some(CaptureFrames {
            confirm: crate::evidence::image::Picture::from_frame(frame),
            confirm_stream_s: frame.pts.map(|p| p.as_secs_f64()),
            first_seen,
            plate,
        })
    }

    /// The frame a closure check decided on: its picture and stream time.
    pub fn check_frame(&self) -> Option<(crate::evidence::image::Picture, Option<f64>)> {
        let frame = self.last_frame.as_ref()?;
        Some((
            crate::evidence::image::Picture::from_frame(frame),
            frame.pts.map(|p| p.as_secs_f64()),
        ))
    }

    fn keep_first_seen(&mut self, frame: &std::sync::Arc<Frame>, t: f64) {
        let closed = std::mem::take(&mut self.analysis.closed);
        self.first_seen.retain(|(id, _)| !closed.contains(id));
        let opened = std::mem::take(&mut self.analysis.opened);
        if opened.is_empty() {
            return;
        }
        let picture = crate::evidence::image::Picture::from_frame(frame);
        for id in opened {
            let bbox = self
                .analysis
                .tracker()
                .open()
                .iter()
                .find(|e| e.id == id)
                .map(|e| e.last_box);
            self.first_seen.push_back((
                id,
                crate::evidence::Snapshot {
                    picture: picture.clone(),
                    t,
                    stream_s: frame.pts.map(|p| p.as_secs_f64()),
                    bbox,
                },
            ));
            if self.first_seen.len() > FIRST_SEEN_KEPT {
                self.first_seen.pop_front();
            }
        }
    }

    /// Analyses one frame at pipeline time `t` (Unix seconds).
    pub async fn process(&mut self, frame: Frame, t: f64) -> Vec<Event> {
        use crate::detect::Decision;
        let mut run = self.gate.decide(&frame) == Decision::Run;
        if run && let Some(b) = &self.budget {
            let open = self.analysis.has_open_episodes();
            if !b.lock().allow(&self.camera, t, open) {
                run = false;
                self.gate.undo_run();
                self.status.over_budget += 1;
            }
        }
        let frame = std::sync::Arc::new(frame);
        self.fresh = None;
        if let Closer::Zones(zones) = &self.closer {
            let view = self
                .region
                .map(|r| square_ish(r, frame.width as f32, frame.height as f32));
            let looks = match self.service.input_size() {
                Some([w, h]) => crate::detect::closer::closer_looks(
                    zones,
                    view,
                    (frame.width, frame.height),
                    (w, h),
                ),
                None => Vec::new(), // frames go in whole, at their own size
            };
            if !looks.is_empty() {
                tracing::info!(camera = %self.camera, looks = ?looks, "small rule zones: looking closer");
            }
            self.closer = Closer::Looks(looks);
        }
        let dets = if run {
            let turn = self.since_crops >= CROPS_EVERY;
            if turn {
                self.since_crops = 0;
            }
            self.since_crops += 1;
            let (whole, crops): (bool, &[crate::model::BBox]) = match &self.closer {
                Closer::Looks(l) if turn && !l.is_empty() => (false, l),
                _ if turn => (true, &self.crops),
                _ => (true, &[]),
            };
            match detect_all(&self.service, self.region, whole, crops, &frame).await {
                Ok(d) => {
                    if self.status.detector_down {
                        tracing::info!(camera = %self.camera, "detection works again");
                    }
                    self.status.detector_down = false;
                    self.gate.record(&d);
                    if self.keep_fresh {
                        self.fresh = Some(d.clone());
                    }
                    d
                }
                Err(e) => {
                    self.status.detect_errors += 1;
                    if !self.status.detector_down {
                        tracing::warn!(camera = %self.camera, error = %e, "detection failed: the detector is down, episodes held");
                    }
                    self.status.detector_down = true;
                    self.analysis.unjudged(t);
                    return Vec::new();
                }
            }
        } else {
            self.gate.reused().to_vec()
        };
        let hits = if run { Hits::Fresh } else { Hits::Reused };
        let mut events = self.analysis.step_with(t, &dets, Some(&frame), hits);
        if run {
            self.read_plates(&frame, t).await;
        }
        if let Some(p) = &self.plates {
            for e in events.iter_mut() {
                if let Event::Capture(c) = e
                    && let Some(id) = c.candidate.episode
                    && c.candidate.plate.is_none()
                {
                    c.candidate.plate =
                        self.analysis
                            .plate_of(id, p.settings.min_agree)
                            .map(|mut v| {
                                v.bbox = p.crops.get(&id).map(|k| k.bbox);
                                v
                            });
                }
            }
        }
        let new_refs = self.analysis.take_new_references();
        if self.evidence {
            for zone in new_refs {
                self.references.insert(
                    zone,
                    crate::evidence::Snapshot {
                        picture: crate::evidence::image::Picture::from_frame(&frame),
                        t,
                        stream_s: frame.pts.map(|p| p.as_secs_f64()),
                        bbox: None,
                    },
                );
            }
            self.keep_first_seen(&frame, t);
            self.last_frame = Some(frame.clone());
        }
        self.recent.push_back((t, run));
        while self.recent.front().is_some_and(|(t0, _)| t - t0 >= 60.0) {
            self.recent.pop_front();
        }
        let ran = self.recent.iter().filter(|(_, r)| *r).count() as u32;
        self.status.analysed_per_min = ran;
        self.status.reused_per_min = self.recent.len() as u32 - ran;
        let g = self.gate.stats;
        self.status.inferences = g.inferences;
        self.status.reused = g.reused;
        self.status.objects = dets.len();
        self.status.open_episodes = self.analysis.tracker().open().len();
        self.status.watched_episodes = self.analysis.watched_episodes();
        self.status.deferred = self.analysis.deferred();
        self.status.off_view = self.analysis.off_view();
        self.status.fixtures = self.analysis.tracker().state.fixtures.len();
        self.status.proposed_fixtures = self.analysis.tracker().state.proposed.len();
        self.status.evicted_episodes = self.analysis.evicted_episodes();
        self.status.states_quarantined = u64::from(self.analysis.quarantined().is_some());
        for e in &events {
            match e {
                Event::Capture(c) if c.is_learned_suppression() => {
                    self.status.suppressed += 1;
                    self.status.suppressed_resembles_rejected += 1;
                    let r = c.resembles.as_ref();
                    tracing::info!(camera = %self.camera, rule = c.candidate.rule.as_str(), zone = %c.candidate.zone, capture = c.id, resembles = r.map_or("", |r| r.capture.as_str()), similarity = r.map_or(0.0, |r| r.similarity), "capture resembles a rejected one: learned suppression");
                }
                Event::Capture(c) => {
                    self.status.captures += 1;
                    tracing::info!(camera = %self.camera, rule = c.candidate.rule.as_str(), zone = %c.candidate.zone, capture = c.id, "capture");
                }
                Event::Suppressed(s) => {
                    self.status.suppressed += 1;
                    use crate::ratelimit::SuppressionReason as R;
                    match s.reason {
                        R::Duplicate => self.status.suppressed_duplicate += 1,
                        R::RateLimit => self.status.suppressed_rate_limit += 1,
                        R::OutsideHours => self.status.suppressed_outside_hours += 1,
                        R::Aggregated => self.status.suppressed_aggregated += 1,
                        R::Expired => self.status.suppressed_expired += 1,
                        R::ResemblesRejected => self.status.suppressed_resembles_rejected += 1,
                    }
                    tracing::info!(camera = %self.camera, rule = s.candidate.rule.as_str(), reason = ?s.reason, "capture suppressed");
                }
                Event::Checked(_) => {}
            }
        }
        events
    }
}

/// The detections of the frame (or of its `region`; neither unless `whole`), plus those of
/// each crop, mapped back to the frame; a crop's detection that repeats one already found
/// (same label, IoU ≥ 0.5) is dropped.
async fn detect_all(
    service: &std::sync::Arc<dyn crate::detect::DetectionSource>,
    region: Option<crate::model::BBox>,
    whole: bool,
    crops: &[crate::model::BBox],
    frame: &std::sync::Arc<Frame>,
) -> Result<Vec<Detection>, crate::detect::ModelError> {
    let mut all = match region {
        _ if !whole => Vec::new(),
        None => service.detect(frame.clone()).await?,
        Some(r) => {
            let r = square_ish(r, frame.width as f32, frame.height as f32);
            let part = std::sync::Arc::new(crop(frame, &r));
            let mut d = service.detect(part).await?;
            for x in &mut d {
                x.bbox = to_frame(&r, &x.bbox);
            }
            d
        }
    };
    for b in crops {
        let part = std::sync::Arc::new(crop(frame, b));
        for mut d in service.detect(part).await? {
            d.bbox = to_frame(b, &d.bbox);
            if !all
                .iter()
                .any(|k| k.label == d.label && crate::model::iou(&k.bbox, &d.bbox) >= 0.5)
            {
                all.push(d);
            }
        }
    }
    Ok(all)
}

/// A box normalised to the crop `c` → normalised to the frame.
fn to_frame(c: &crate::model::BBox, b: &crate::model::BBox) -> crate::model::BBox {
    let (w, h) = (c[2] - c[0], c[3] - c[1]);
    [
        c[0] + b[0] * w,
        c[1] + b[1] * h,
        c[0] + b[2] * w,
        c[1] + b[3] * h,
    ]
}

/// `r` grown (within the frame) until its pixel shape is no flatter or taller than 2:1, so a
/// long strip of zones is not squeezed hard into the model's square input.
fn square_ish(r: crate::model::BBox, fw: f32, fh: f32) -> crate::model::BBox {
    let grow = |lo: f32, hi: f32, want: f32| {
        let want = want.min(1.0);
        let c = ((lo + hi) / 2.0).clamp(want / 2.0, 1.0 - want / 2.0);
        (c - want / 2.0, c + want / 2.0)
    };
    let (w, h) = ((r[2] - r[0]) * fw, (r[3] - r[1]) * fh);
    let mut out = r;
    if w > 2.0 * h {
        let (a, b) = grow(r[1], r[3], w / 2.0 / fh);
        (out[1], out[3]) = (a.min(r[1]), b.max(r[3]));
    } else if h > 2.0 * w {
        let (a, b) = grow(r[0], r[2], h / 2.0 / fw);
        (out[0], out[2]) = (a.min(r[0]), b.max(r[2]));
    }
    out
}

/// The pixels of a normalised box of a frame, as a frame of their own.
fn crop(frame: &Frame, b: &crate::model::BBox) -> Frame {
    let (fw, fh) = (frame.width as f32, frame.height as f32);
    let x0 = (b[0] * fw).floor().clamp(0.0, fw - 1.0) as u32;
    let y0 = (b[1] * fh).floor().clamp(0.0, fh - 1.0) as u32;
    let x1 = ((b[2] * fw).ceil() as u32).clamp(x0 + 1, frame.width);
    let y1 = ((b[3] * fh).ceil() as u32).clamp(y0 + 1, frame.height);
    let mut data = Vec::with_capacity(((x1 - x0) * (y1 - y0) * 3) as usize);
    for y in y0..y1 {
        data.extend_from_slice(&frame.row(y)[x0 as usize * 3..x1 as usize * 3]);
    }
    let mut f = Frame::from_rgb(frame.camera.clone(), x1 - x0, y1 - y0, data);
    f.pts = frame.pts;
    f.seq = frame.seq;
    f
}

/// Whether a detector's labels include the kinds the overflowing-bin rule can use directly.
pub fn model_sees_overflow(manifest: &crate::detect::Manifest) -> bool {
    use crate::detect::ObjectKind;
    manifest
        .label_kinds
        .iter()
        .any(|k| matches!(k, ObjectKind::BinOverflow | ObjectKind::Garbage))
}

#[cfg(test)]
mod tests {
    //! The analyser on a fake detector: the decisions after detection, without a model.
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU32, Ordering};

    use super::*;

    use crate::detect::{DetectionSource, ModelError, ObjectKind};
    use crate::episodes::persist::NoStore;

    /// Sees the same objects in every frame; counts its calls.
    struct Fixed {
        dets: Vec<Detection>,
        calls: AtomicU32,
    }

    impl DetectionSource for Fixed {
        fn detect(
            &self,
            _frame: Arc<Frame>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<Vec<Detection>, ModelError>> + Send + '_>,
        > {
            self.calls.fetch_add(1, Ordering::Relaxed);
            let d = self.dets.clone();
            Box::pin(async move { Ok(d) })
        }
    }

    /// A car in the middle of the frame, as the detector sees it.
    fn car() -> Detection {
        Detection {
            label: "car".into(),
            kind: ObjectKind::Vehicle,
            score: 0.9,
            bbox: [0.4, 0.4, 0.6, 0.6],
            embedding: None,
        }
    }

    /// An analyser of camera "c" with the given zones and rules, on a fake detector.
    fn analyser_with(zones_and_rules: &str, det: Arc<Fixed>) -> FrameAnalyser {
        analyser_on(zones_and_rules, det, None)
    }

    /// [`analyser_with`], taking operators' commands from `desk`.
    fn analyser_on_desk(zones_and_rules: &str, det: Arc<Fixed>, desk: SceneDesk) -> FrameAnalyser {
        analyser_on(zones_and_rules, det, Some(desk))
    }

    fn analyser_on(
        zones_and_rules: &str,
        det: Arc<Fixed>,
        desk: Option<SceneDesk>,
    ) -> FrameAnalyser {
        let text =
            format!("[[cameras]]\nid = \"c\"\nurl = \"rtsp://127.0.0.1/c\"\n{zones_and_rules}");
        let cfg = PipelineConfig::parse(&text, std::path::Path::new("/")).expect("test config");
        let mut finder =
            CaptureFinder::new(&cfg.cameras[0], &cfg, Box::new(NoStore), false).unwrap();
        if let Some(d) = desk {
            finder = finder.with_desk(d);
        }
        FrameAnalyser::new("c", (&cfg.gate).into(), finder, None, det)
    }

    fn analyser(det: Arc<Fixed>) -> FrameAnalyser {
        analyser_with(
            r#"
[[cameras.zones]]
id = "car_park"
kind = "no_parking"
polygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
[[cameras.rules]]
rule = "abandoned_vehicle"
zones = ["car_park"]
dwell_s = 60
"#,
            det,
        )
    }

    #[tokio::test]
    async fn a_vehicle_standing_past_its_dwell_is_captured_once_and_the_gate_spares_the_detector() {
        let det = Arc::new(Fixed {
            dets: vec![car()],
            calls: AtomicU32::new(0),
        });
        let mut a = analyser(det.clone());
        let mut captures = Vec::new();
        for i in 0..20 {
            let t = 1_000.0 + i as f64 * 10.0;
            let mut frame = Frame::from_rgb("c".into(), 16, 16, vec![90; 16 * 16 * 3]);
            // Stream time: the gate forces a fresh inference every max_reuse_s (30 s) of it,
            // and only fresh detections confirm.
            frame.pts = Some(std::time::Duration::from_secs_f64(i as f64 * 10.0));
            for e in a.process(frame, t).await {
                if let Event::Capture(c) = e {
                    captures.push(c);
                }
            }
        }
        assert_eq!(captures.len(), 1, "{captures:?}");
        let c = &captures[0].candidate;
        assert_eq!(c.rule, crate::model::RuleKind::AbandonedVehicle);
        assert!(c.confirm - c.start >= 60.0, "{c:?}");
        assert!(c.confirm <= 1_000.0 + 60.0 + 20.0, "{c:?}");
        // An unchanged scene reuses the last detections: the detector ran on few frames.
        let calls = det.calls.load(Ordering::Relaxed);
        assert!(calls < 20, "the detector ran on {calls} of 20 frames");
        assert_eq!(a.status.inferences, calls as u64);
    }

    /// Reads plates from a script, one answer per read; remembers the crops' sizes.
    struct ScriptedPlates {
        answers: parking_lot::Mutex<Vec<Option<&'static str>>>,
        crops: parking_lot::Mutex<Vec<(u32, u32)>>,
    }

    impl crate::plate::PlateReader for ScriptedPlates {
        fn read(
            &self,
            crop: &crate::plate::RgbImage,
        ) -> Result<crate::plate::PlateReading, ModelError> {
            self.crops.lock().push((crop.width, crop.height));
            let mut a = self.answers.lock();
            let text = if a.is_empty() { None } else { a.remove(0) };
            Ok(crate::plate::PlateReading {
                read: crate::model::plate::PlateRead {
                    text: text.map(str::to_string),
                    confidence: 0.9,
                },
                region: text.map(|_| [0, 0, 2, 1]),
                lines: Vec::new(),
            })
        }
    }

    async fn plate_of_capture(
        answers: Vec<Option<&'static str>>,
    ) -> (Vec<Capture>, Vec<(u32, u32)>) {
        let det = Arc::new(Fixed {
            dets: vec![car()],
            calls: AtomicU32::new(0),
        });
        let reader = Arc::new(ScriptedPlates {
            answers: parking_lot::Mutex::new(answers),
            crops: Default::default(),
        });
        let settings = crate::config::PlateSettings {
            after_s: 20.0,
            every_s: 25.0,
            ..Default::default()
        };
        let mut a = analyser(det)
            .with_evidence()
            .with_plates(reader.clone(), settings);
        let mut captures = Vec::new();
        for i in 0..20 {
            let t = 1_000.0 + i as f64 * 10.0;
            let mut frame = Frame::from_rgb("c".into(), 100, 100, vec![90; 100 * 100 * 3]);
            frame.pts = Some(std::time::Duration::from_secs_f64(i as f64 * 10.0));
            for e in a.process(frame, t).await {
                if let Event::Capture(c) = e {
                    let frames = a.capture_frames(&c).expect("frames");
                    assert_eq!(frames.plate.is_some(), c.candidate.plate.is_some());
                    captures.push(c);
                }
            }
        }
        let crops = reader.crops.lock().clone();
        assert!(a.status.plate_reads >= 2, "{:?}", a.status);
        (captures, crops)
    }

    #[tokio::test]
    async fn a_standing_vehicles_plate_is_read_after_a_while_and_voted_into_its_capture() {
        let (captures, crops) = plate_of_capture(vec![Some("京A12345"); 8]).await;
        assert_eq!(captures.len(), 1);
        let p = captures[0].candidate.plate.as_ref().expect("a plate");
        assert_eq!(p.text, "京A12345");
        assert!(p.agree >= 2 && p.confidence > 0.8, "{p:?}");
        // Where the plate is in the frame, for masking: inside the car's crop.
        let b = p.bbox.expect("the plate's place");
        assert!(
            b[0] >= 0.38 && b[1] >= 0.38 && b[2] <= 0.62 && b[3] <= 0.62,
            "{b:?}"
        );
        // Reads are of the vehicle's crop (a fifth of the frame, a little margin), not the
        // whole frame, and not on every frame.
        assert!(crops.iter().all(|&(w, h)| w <= 25 && h <= 25), "{crops:?}");
        assert!(crops.len() < 8, "{} reads over 200 s", crops.len());
    }

    /// An analyser reading plates from `answers`, with an abandoned_vehicle rule of `dwell_s`.
    fn plate_reading(
        dwell_s: u32,
        det: Arc<dyn DetectionSource>,
        answers: Vec<Option<&'static str>>,
    ) -> FrameAnalyser {
        let text = format!(
            "[[cameras]]\nid = \"c\"\nurl = \"rtsp://127.0.0.1/c\"\n\
             [[cameras.zones]]\nid = \"road\"\nkind = \"no_parking\"\n\
             polygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]\n\
             [[cameras.rules]]\nrule = \"abandoned_vehicle\"\nzones = [\"road\"]\ndwell_s = {dwell_s}\n"
        );
        let cfg = PipelineConfig::parse(&text, std::path::Path::new("/")).expect("test config");
        let finder = CaptureFinder::new(&cfg.cameras[0], &cfg, Box::new(NoStore), false).unwrap();
        let reader = Arc::new(ScriptedPlates {
            answers: parking_lot::Mutex::new(answers),
            crops: Default::default(),
        });
        let settings = crate::config::PlateSettings {
            after_s: 20.0,
            every_s: 25.0,
            settled_every_s: 125.0,
            ..Default::default()
        };
        FrameAnalyser::new("c", (&cfg.gate).into(), finder, None, det).with_plates(reader, settings)
    }

    async fn captures_at(a: &mut FrameAnalyser, times: impl Iterator<Item = f64>) -> Vec<Capture> {
        let mut out = Vec::new();
        for t in times {
            let mut frame = Frame::from_rgb("c".into(), 100, 100, vec![90; 100 * 100 * 3]);
            frame.pts = Some(std::time::Duration::from_secs_f64(t - 1_000.0));
            for e in a.process(frame, t).await {
                if let Event::Capture(c) = e {
                    out.push(c);
                }
            }
        }
        out
    }

    #[tokio::test]
    async fn another_plate_at_the_same_place_is_a_swap_and_the_new_vehicles_dwell_starts_then() {
        let det = Arc::new(Fixed {
            dets: vec![car()],
            calls: AtomicU32::new(0),
        });
        let mut answers = vec![Some("京A12345"); 2];
        answers.extend(vec![Some("粤B99999"); 10]);
        let mut a = plate_reading(60, det, answers);
        // Settled plates are read every 125 s: the swap shows at the second read of it.
        let captures = captures_at(&mut a, (0..60).map(|i| 1_000.0 + i as f64 * 10.0)).await;
        let plates: Vec<_> = captures
            .iter()
            .map(|c| c.candidate.plate.as_ref().map(|p| p.text.as_str()))
            .collect();
        assert_eq!(plates, [Some("京A12345"), Some("粤B99999")], "{captures:?}");
        // The second vehicle's dwell started when its plate took over, not at 1000.
        let second = &captures[1].candidate;
        assert!(second.start > 1_080.0, "{second:?}");
        assert!(second.confirm - second.start >= 60.0, "{second:?}");
    }

    #[tokio::test]
    async fn the_same_plate_back_at_its_place_after_an_outage_continues_its_dwell() {
        let det = Arc::new(Fixed {
            dets: vec![car()],
            calls: AtomicU32::new(0),
        });
        let mut a = plate_reading(120, det, vec![Some("京A12345"); 12]);
        // Seen 1000-1090, then no frames at all for 400 s (longer than the vehicle grace of
        // 300 s: its episode closes as gone), then seen again from 1500.
        let times = (0..10)
            .map(|i| 1_000.0 + i as f64 * 10.0)
            .chain((0..20).map(|i| 1_500.0 + i as f64 * 10.0));
        let captures = captures_at(&mut a, times).await;
        assert_eq!(captures.len(), 1, "{captures:?}");
        let c = &captures[0].candidate;
        assert_eq!(
            c.start, 1_000.0,
            "the dwell goes on from the first sighting: {c:?}"
        );
        assert!(c.confirm < 1_620.0, "not 120 s after its return: {c:?}");
        assert_eq!(c.plate.as_ref().map(|p| p.text.as_str()), Some("京A12345"));
    }

    #[tokio::test]
    async fn without_a_plate_a_vehicle_back_after_an_outage_starts_again() {
        let det = Arc::new(Fixed {
            dets: vec![car()],
            calls: AtomicU32::new(0),
        });
        let mut a = plate_reading(120, det, vec![None; 12]);
        let times = (0..10)
            .map(|i| 1_000.0 + i as f64 * 10.0)
            .chain((0..20).map(|i| 1_500.0 + i as f64 * 10.0));
        let captures = captures_at(&mut a, times).await;
        assert_eq!(captures.len(), 1, "{captures:?}");
        assert_eq!(captures[0].candidate.start, 1_500.0);
    }

    #[tokio::test]
    async fn a_plate_read_once_or_never_is_not_carried() {
        let (captures, _) = plate_of_capture(vec![Some("京A12345"), None, None, None]).await;
        assert_eq!(captures.len(), 1);
        assert_eq!(
            captures[0].candidate.plate, None,
            "one read is not two agreeing"
        );
        let (captures, _) = plate_of_capture(vec![None; 8]).await;
        assert_eq!(captures[0].candidate.plate, None);
    }

    #[tokio::test]
    async fn a_zone_redrawn_from_the_web_is_used_from_the_next_frame_without_a_restart() {
        // The car stands in the middle; the configured zone is the left fifth of the frame.
        let det = Arc::new(Fixed {
            dets: vec![car()],
            calls: AtomicU32::new(0),
        });
        let desk = SceneDesk::default();
        let mut a = analyser_on_desk(
            r#"
[[cameras.zones]]
id = "kerb"
kind = "no_parking"
polygon = [[0.0, 0.0], [0.2, 0.0], [0.2, 1.0], [0.0, 1.0]]
[[cameras.rules]]
rule = "abandoned_vehicle"
zones = ["kerb"]
dwell_s = 60
"#,
            det,
            desk.clone(),
        );
        assert_eq!(
            play(&mut a, 0..20).await.len(),
            0,
            "outside the configured zone"
        );
        // An admin draws the zone around the car on the camera's picture.
        desk.send(
            "c",
            SceneCommand::SetZone {
                zone: "kerb".into(),
                polygon: crate::model::zones::Polygon::validate(&[
                    [0.3, 0.3],
                    [0.7, 0.3],
                    [0.7, 0.7],
                    [0.3, 0.7],
                ])
                .unwrap(),
            },
        );
        let captures = play(&mut a, 20..40).await;
        assert_eq!(captures.len(), 1, "captured in the drawn zone");
        assert_eq!(captures[0].candidate.zone, "kerb");
    }

    /// Frames 10 s apart (grey, 16 × 16) through the analyser: the captures they made.
    async fn play(a: &mut FrameAnalyser, frames: std::ops::Range<usize>) -> Vec<Capture> {
        let mut captures = Vec::new();
        for i in frames {
            let mut frame = Frame::from_rgb("c".into(), 16, 16, vec![90; 16 * 16 * 3]);
            frame.pts = Some(std::time::Duration::from_secs_f64(i as f64 * 10.0));
            for e in a.process(frame, 1_000.0 + i as f64 * 10.0).await {
                if let Event::Capture(c) = e {
                    captures.push(c);
                }
            }
        }
        captures
    }

    #[tokio::test]
    async fn a_mask_drawn_from_the_web_hides_what_it_covers_until_it_is_removed() {
        // The car stands in the middle of a zone that covers the whole frame.
        let det = Arc::new(Fixed {
            dets: vec![car()],
            calls: AtomicU32::new(0),
        });
        let desk = SceneDesk::default();
        let mut a = analyser_on_desk(
            r#"
[[cameras.zones]]
id = "road"
kind = "no_parking"
polygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
[[cameras.rules]]
rule = "abandoned_vehicle"
zones = ["road"]
dwell_s = 60
"#,
            det,
            desk.clone(),
        );
        // An admin draws a new mask over the car: nothing is filed there.
        desk.send(
            "c",
            SceneCommand::SetZone {
                zone: "drawn-mask-1".into(),
                polygon: crate::model::zones::Polygon::validate(&[
                    [0.2, 0.2],
                    [0.8, 0.2],
                    [0.8, 0.8],
                    [0.2, 0.8],
                ])
                .unwrap(),
            },
        );
        assert_eq!(play(&mut a, 0..20).await.len(), 0, "masked");
        // A zone the config does not have, and that is not a drawn mask, is not added.
        desk.send(
            "c",
            SceneCommand::SetZone {
                zone: "elsewhere".into(),
                polygon: crate::model::zones::Polygon::validate(&[
                    [0.0, 0.0],
                    [0.1, 0.0],
                    [0.1, 0.1],
                ])
                .unwrap(),
            },
        );
        // The mask removed: the car is judged again, and filed after its dwell.
        desk.send(
            "c",
            SceneCommand::RemoveZone {
                zone: "drawn-mask-1".into(),
            },
        );
        assert_eq!(play(&mut a, 20..40).await.len(), 1, "filed once unmasked");
        assert!(
            a.analysis.engine.zones().iter().all(|z| z.id == "road"),
            "only the config's zone is left"
        );
    }

    /// Sees a car, except while told to fail (a session error, a model file gone).
    struct Flaky {
        failing: std::sync::atomic::AtomicBool,
    }

    impl DetectionSource for Flaky {
        fn detect(
            &self,
            _frame: Arc<Frame>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<Vec<Detection>, ModelError>> + Send + '_>,
        > {
            let fail = self.failing.load(Ordering::Relaxed);
            Box::pin(async move {
                if fail {
                    Err(ModelError::new(
                        "fake",
                        "runtime",
                        "session run failed".to_string(),
                    ))
                } else {
                    Ok(vec![car()])
                }
            })
        }
    }

    #[tokio::test]
    async fn a_detector_outage_holds_the_episodes_and_the_dwell_resumes_intact() {
        let det = Arc::new(Flaky {
            failing: false.into(),
        });
        // Every frame goes to the detector (no scene gate reusing the last detections).
        let text = "[gate]\nenabled = false\n[[cameras]]\nid = \"c\"\nurl = \"rtsp://127.0.0.1/c\"\n[[cameras.zones]]\nid = \"car_park\"\nkind = \"no_parking\"\npolygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]\n[[cameras.rules]]\nrule = \"abandoned_vehicle\"\nzones = [\"car_park\"]\ndwell_s = 600\n";
        let cfg = PipelineConfig::parse(text, std::path::Path::new("/")).unwrap();
        let mut a = FrameAnalyser::new(
            "c",
            (&cfg.gate).into(),
            CaptureFinder::new(&cfg.cameras[0], &cfg, Box::new(NoStore), false).unwrap(),
            None,
            det.clone(),
        );
        let mut captures = Vec::new();
        // The car from 1000 s; the detector fails from 1100 s to 1700 s, twice the vehicle
        // grace (300 s); then it works again.
        for i in 0..120 {
            let t = 1_000.0 + i as f64 * 10.0;
            det.failing
                .store((1_100.0..1_700.0).contains(&t), Ordering::Relaxed);
            let mut frame = Frame::from_rgb("c".into(), 16, 16, vec![90; 16 * 16 * 3]);
            frame.pts = Some(std::time::Duration::from_secs_f64(t - 1_000.0));
            captures.extend(
                a.process(frame, t)
                    .await
                    .into_iter()
                    .filter_map(|e| match e {
                        Event::Capture(c) => Some(c),
                        _ => None,
                    }),
            );
            if t == 1_500.0 {
                assert!(a.status.detector_down);
                assert_eq!(
                    a.analysis.tracker().open().len(),
                    1,
                    "held through the outage"
                );
            }
        }
        assert!(!a.status.detector_down);
        assert!(a.status.detect_errors > 0);
        // One capture, of the episode that began at 1000 s: met once frames were judged again.
        assert_eq!(captures.len(), 1, "{captures:?}");
        let c = &captures[0].candidate;
        assert_eq!(c.start, 1_000.0, "{c:?}");
        assert!((1_700.0..1_720.0).contains(&c.confirm), "{c:?}");
    }

    #[tokio::test]
    async fn a_bin_capture_carries_the_frame_its_clean_reference_was_taken_from() {
        let det = Arc::new(Fixed {
            dets: Vec::new(),
            calls: AtomicU32::new(0),
        });
        let mut a = analyser_with(
            r#"
[[cameras.zones]]
id = "bins"
kind = "bin"
polygon = [[0.5, 0.5], [0.9, 0.5], [0.9, 0.9], [0.5, 0.9]]
[[cameras.rules]]
rule = "overflowing_bin"
zones = ["bins"]
dwell_s = 30
"#,
            det,
        )
        .with_evidence();
        // Paving, then a bag of rubbish (a dark blob) in the bin zone from 100 s.
        let frame = |dirty: bool| {
            let bag = ([0.6, 0.6, 0.8, 0.8], [30, 30, 30]);
            let paint = if dirty { vec![bag] } else { Vec::new() };
            crate::scene::testing::scene(128, 96, 1.0, &paint, 0)
        };
        let mut capture = None;
        for i in 0..30 {
            let t = 1_000.0 + i as f64 * 10.0;
            for e in a.process(frame(t >= 1_100.0), t).await {
                if let Event::Capture(c) = e {
                    capture = Some(c);
                }
            }
            if capture.is_some() {
                break;
            }
        }
        let c = capture.expect("a bin capture");
        assert_eq!(c.candidate.episode, None);
        let frames = a.capture_frames(&c).expect("frames");
        let before = frames
            .first_seen
            .expect("the reference frame as its before");
        assert!(before.t < 1_100.0, "taken while clean: {}", before.t);
    }

    /// Camera "c" watching a road for abandoned vehicles, looking at one handled case's
    /// place ([0.4, 0.4, 0.6, 0.6]) from t = 1000: clear for 20 s closes, 200 s is a look.
    fn checking(det: Arc<dyn DetectionSource>) -> FrameAnalyser {
        let text = r#"
[[cameras]]
id = "c"
url = "rtsp://127.0.0.1/c"
[[cameras.zones]]
id = "road"
kind = "no_parking"
polygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
[[cameras.rules]]
rule = "abandoned_vehicle"
zones = ["road"]
dwell_s = 60
"#;
        let cfg = PipelineConfig::parse(text, std::path::Path::new("/")).expect("test config");
        let checks = crate::closure::SharedChecks::new(vec![crate::closure::CheckRequest {
            case_number: "CW1".into(),
            camera: "c".into(),
            rule: "abandoned_vehicle".into(),
            zone: "road".into(),
            label: "car".into(),
            bbox: [0.4, 0.4, 0.6, 0.6],
            package: None,
            due_at: 1_000.0,
            attempts: 0,
        }]);
        let settings = crate::config::ClosureSettings {
            window_s: 200.0,
            clear_s: 20.0,
            ..Default::default()
        };
        let analysis = CaptureFinder::new(&cfg.cameras[0], &cfg, Box::new(NoStore), false)
            .unwrap()
            .with_checks(checks, settings);
        FrameAnalyser::new("c", (&cfg.gate).into(), analysis, None, det)
    }

    /// Feeds frames every 5 s from t = 1000 with the car painted while `there(t)`; returns
    /// the closure checks decided.
    async fn look(
        a: &mut FrameAnalyser,
        gain: f32,
        there: impl Fn(f64) -> bool,
    ) -> Vec<crate::closure::CheckResult> {
        let mut out = Vec::new();
        for i in 0..60 {
            let t = 1_000.0 + i as f64 * 5.0;
            let car = ([0.4, 0.4, 0.6, 0.6], [200, 30, 30]);
            let paint = if there(t) { vec![car] } else { Vec::new() };
            let mut frame = crate::scene::testing::scene(128, 96, gain, &paint, 0);
            // Stream time: the gate forces a fresh inference every 30 s of it.
            frame.pts = Some(std::time::Duration::from_secs_f64(i as f64 * 5.0));
            for e in a.process(frame, t).await {
                if let Event::Checked(r) = e {
                    out.push(r);
                }
            }
        }
        out
    }

    /// A detector that sees the car only while a shared switch says it is there.
    struct Switch {
        on: std::sync::atomic::AtomicBool,
    }

    impl DetectionSource for Switch {
        fn detect(
            &self,
            _frame: Arc<Frame>,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<Vec<Detection>, ModelError>> + Send + '_>,
        > {
            let d = if self.on.load(Ordering::Relaxed) {
                vec![car()]
            } else {
                Vec::new()
            };
            Box::pin(async move { Ok(d) })
        }
    }

    #[tokio::test]
    async fn a_closure_check_closes_once_the_car_is_gone_and_seen_gone_long_enough() {
        let det = Arc::new(Switch {
            on: std::sync::atomic::AtomicBool::new(true),
        });
        let mut a = checking(det.clone());
        let mut decided = Vec::new();
        for i in 0..60 {
            let t = 1_000.0 + i as f64 * 5.0;
            // The car stands until 1050, then is towed away.
            let there = t < 1_050.0;
            det.on.store(there, Ordering::Relaxed);
            let car = ([0.4, 0.4, 0.6, 0.6], [200, 30, 30]);
            let paint = if there { vec![car] } else { Vec::new() };
            let mut frame = crate::scene::testing::scene(128, 96, 1.0, &paint, 0);
            frame.pts = Some(std::time::Duration::from_secs_f64(i as f64 * 5.0));
            for e in a.process(frame, t).await {
                if let Event::Checked(r) = e {
                    decided.push(r);
                }
            }
        }
        assert_eq!(decided.len(), 1, "{decided:?}");
        assert_eq!(decided[0].outcome, crate::closure::CheckOutcome::Clear);
        // Not while the car stood, and only after 20 s seen clear.
        assert!(decided[0].t >= 1_070.0, "{decided:?}");
        assert!(decided[0].t < 1_200.0, "{decided:?}");
    }

    #[tokio::test]
    async fn a_dark_place_cannot_be_judged_and_a_standing_car_is_not_rectified() {
        // Dark: nothing to judge by, whatever the detector says.
        let det = Arc::new(Fixed {
            dets: Vec::new(),
            calls: AtomicU32::new(0),
        });
        let mut a = checking(det);
        let out = look(&mut a, 0.02, |_| false).await;
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(
            out[0].outcome,
            crate::closure::CheckOutcome::Unjudged {
                reason: "dark".into()
            }
        );
        // In daylight, the car seen on its place all the time: still there.
        let det = Arc::new(Fixed {
            dets: vec![car()],
            calls: AtomicU32::new(0),
        });
        let mut a = checking(det);
        let out = look(&mut a, 1.0, |_| true).await;
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].outcome, crate::closure::CheckOutcome::StillThere);
        assert!(out[0].t >= 1_200.0);
    }

    #[test]
    fn a_capture_is_settled_once_for_the_analyser_that_waits_on_it() {
        let s = Settled::default();
        // Nobody waits on it (a replay's, a test's): nothing is kept.
        s.mark("cap-a");
        assert!(!s.take("cap-a"));
        s.expect("cap-b");
        assert!(
            !s.take("cap-b"),
            "not settled before it is queued or stored"
        );
        s.mark("cap-b");
        assert!(s.take("cap-b"));
        assert!(!s.take("cap-b"), "told once, then forgotten");
        assert!(s.waiting.lock().is_empty());
    }

    #[test]
    fn a_zone_crop_is_grown_to_at_most_two_to_one_and_maps_back() {
        // A curb strip 0.8 wide and 0.1 high of a 1920x1080 frame: 1536 x 108 px.
        let r = super::square_ish([0.1, 0.5, 0.9, 0.6], 1920.0, 1080.0);
        let (w, h) = ((r[2] - r[0]) * 1920.0, (r[3] - r[1]) * 1080.0);
        assert!((w / h - 2.0).abs() < 1e-3, "{r:?}");
        assert!(r[1] <= 0.5 && r[3] >= 0.6, "still holds the strip: {r:?}");
        // At the frame's edge the growth stays inside the frame.
        let r = super::square_ish([0.0, 0.95, 1.0, 1.0], 1920.0, 1080.0);
        assert!(
            r[1] >= 0.0 && r[3] <= 1.0 + 1e-6 && r[3] - r[1] > 0.8,
            "{r:?}"
        );
        // A box found in the crop's middle lands in the crop's middle of the frame.
        let b = super::to_frame(&[0.5, 0.5, 1.0, 1.0], &[0.25, 0.25, 0.75, 0.75]);
        assert_eq!(b, [0.625, 0.625, 0.875, 0.875]);
    }
}
