//! The camera runner: the one place a camera is started, fed through analysis and filing,
//! and stopped. `citywatch run`, patrol visits, workers, replay and eval all go through it.
//!
//! A camera's life, in order:
//! 1. [`Launcher::rig`] builds its parts once: the packet ring for clips, the analyser (gate,
//!    budget, detector, episodes, rules, limits; episodes loaded from the episode store) and
//!    its filing context;
//! 2. [`CameraRig::connect`] starts its ingest thread (one connection's life: a patrol visit,
//!    or until shutdown);
//! 3. [`Connected::consume`] analyses its frames until they end, hands captures to filing,
//!    joins the ingest thread and gives the rig back for the next visit.

pub mod setup;

use parking_lot::Mutex;
use std::sync::Arc;

use tokio::sync::watch;

use crate::analysis::{CaptureFinder, Event, FrameAnalyser};
use crate::config::{CameraConfig, PipelineConfig};
use crate::core::{Clock, Shutdown, to_unix};
use crate::detect::DetectionService;
use crate::episodes::persist::{EpisodeStore, NoStore};
use crate::filing::{CameraEvidence, FilingStage};
use crate::ingest::ring::PacketRing;
use crate::ingest::{
    BackoffPolicy, CameraHealth, CameraThread, Frame, FrameReceiver, spawn_camera_with_ring,
};
use crate::ratelimit::InferenceBudget;

pub use crate::model::live::{AnalysisBoard, AnalysisStatus, LatestFrames};
pub use setup::{Detection, budget, episode_store, open_store, start_detection};

/// The stream a camera keeps for full-size stills when it keeps no evidence ring: the newest
/// keyframe interval and 3 s more (the ring drops whole intervals, never the newest), so the
/// keyframe at or before a frame still in analysis is there; at most this many bytes.
const STILL_RING_KEEP: std::time::Duration = std::time::Duration::from_secs(3);
const STILL_RING_BYTES: usize = 8 << 20;

/// How often a camera's latest frame is re-encoded for the cameras page, in seconds.
const LATEST_EVERY_S: f64 = 10.0;

/// Where a camera's episodes are kept between frames, restarts and workers.
#[derive(Clone)]
pub enum Episodes {
    /// As `[episodes]` says: a JSON file per camera under `state_dir`, or nowhere.
    Config,
    /// In the case database (`[episodes] in_database`), saved by its writer task.
    Database(crate::store::camera_state::DbEpisodeStore<crate::episodes::TrackerState>),
    /// Nowhere: a replay starts every camera afresh.
    Forget,
}

/// What starting a camera needs, shared by every way of running cameras.
#[derive(Clone)]
pub struct Launcher {
    pub config: Arc<PipelineConfig>,
    /// The detection service, and whether the model sees overflowing bins itself.
    pub detection: Option<(DetectionService, bool)>,
    pub budget: Option<Arc<Mutex<InferenceBudget>>>,
    pub episodes: Episodes,
    pub stage: Option<Arc<FilingStage>>,
    pub clock: Arc<dyn Clock>,
    pub backoff: BackoffPolicy,
    /// The live boards the cameras' [`LiveBoards`] watchers write.
    pub analysis: AnalysisBoard,
    pub latest: LatestFrames,
    /// Operators' scene commands (fixtures, clean now) and the cameras' fixtures.
    pub desk: crate::analysis::SceneDesk,
    /// The verdict memory the cameras judge candidates against.
    pub memory: crate::learn::SharedMemory,
    /// Closure checks of handled cases the cameras look at.
    pub checks: crate::closure::SharedChecks,
    /// Keep the detector's own output of every frame it ran on (eval scores it).
    pub keep_detections: bool,
    /// The plate reader of standing vehicles, shared by every camera; None when off.
    pub plates: Option<Arc<dyn crate::plate::PlateReader>>,
    /// Fair shedding of live cameras' frames while analysis is behind (`[ingest] shed`);
    /// off for replays and evaluation, which analyse every frame.
    pub shed: bool,
}

impl Launcher {
    /// The database episode store, when episodes are kept there.
    pub fn db_episodes(
        &self,
    ) -> Option<&crate::store::camera_state::DbEpisodeStore<crate::episodes::TrackerState>> {
        match &self.episodes {
            Episodes::Database(db) => Some(db),
            _ => None,
        }
    }

    /// A camera's live boards watcher.
    pub fn boards(&self, id: &str) -> LiveBoards {
        LiveBoards::new(id, self.analysis.clone(), self.latest.clone())
    }

    /// Builds a camera's parts: ring, analyser (its episodes loaded), filing context.
    pub fn rig(&self, cam: &CameraConfig) -> std::io::Result<CameraRig> {
        let ring = match (&self.stage, &self.config.evidence) {
            (Some(s), Some(ev)) if s.keeps_evidence() => Some(crate::filing::ring_for(ev)),
            _ => None,
        };
        let reads_plates = self.plates.is_some()
            && self.config.detect.is_some()
            && cam
                .rules
                .iter()
                .any(|r| r.kind == crate::model::RuleKind::AbandonedVehicle);
        // Plates are read from full-size keyframes: without an evidence ring, a short one
        // keeps the last keyframes for that alone.
        let stills = ring
            .clone()
            .or_else(|| reads_plates.then(|| PacketRing::new(STILL_RING_KEEP, STILL_RING_BYTES)));
        let analyser = match &self.detection {
            None => None,
            Some((service, sees)) => {
                let store: Box<dyn EpisodeStore> = match &self.episodes {
                    Episodes::Database(db) => Box::new(db.clone()),
                    Episodes::Config => episode_store(&self.config)?,
                    Episodes::Forget => Box::new(NoStore),
                };
                let mut analysis = CaptureFinder::new(cam, &self.config, store, *sees)?
                    .with_desk(self.desk.clone())
                    .with_memory(self.memory.clone())
                    .with_settled(self.stage.as_ref().map(|s| s.settled()));
                if let Some(cases) = &self.config.cases {
                    analysis = analysis.with_checks(self.checks.clone(), cases.closure.clone());
                }
                let mut a = FrameAnalyser::new(
                    &cam.id,
                    (&self.config.gate).into(),
                    analysis,
                    self.budget.clone(),
                    Arc::new(service.clone()),
                );
                if !cam.detect_crops.is_empty() {
                    a = a.with_crops(cam.detect_crops.clone());
                } else if cam.look_closer {
                    a = a.with_closer_looks(detected_zones(cam, *sees));
                }
                if self.config.gate.enabled || cam.detect_region.is_some() {
                    a = a.with_region(
                        cam.detect_region,
                        &cam.gate_regions,
                        self.config.gate.zone_margin,
                    );
                }
                if ring.is_some() {
                    a = a.with_evidence();
                }
                if let Some(r) = &stills
                    && reads_plates
                {
                    a = a.with_stills(r.clone());
                }
                if self.keep_detections {
                    a = a.keeping_detections();
                }
                if reads_plates && let (Some(reader), Some(d)) = (&self.plates, &self.config.detect)
                {
                    a = a.with_plates(reader.clone(), d.plates.clone());
                }
                Some(a)
            }
        };
        let filing = self
            .stage
            .as_ref()
            .map(|s| (s.clone(), CameraEvidence::new(cam, ring.clone())));
        let shed = (self.shed
            && analyser.is_some()
            && matches!(cam.source, crate::config::SourceKind::Rtsp { .. }))
        .then(crate::ingest::shed::CameraShed::new);
        Ok(CameraRig {
            cam: cam.clone(),
            ring: stills,
            shed,
            analyser,
            filing,
            clock: self.clock.clone(),
            backoff: self.backoff,
            ingest: self.config.ingest.clone(),
        })
    }
}

/// One camera's parts, built once and kept across its connections.
pub struct CameraRig {
    pub cam: CameraConfig,
    ring: Option<PacketRing>,
    /// The camera's part in fair shedding (live cameras with a detector).
    shed: Option<Arc<crate::ingest::shed::CameraShed>>,
    analyser: Option<FrameAnalyser>,
    filing: Option<(Arc<FilingStage>, CameraEvidence)>,
    clock: Arc<dyn Clock>,
    backoff: BackoffPolicy,
    ingest: crate::config::IngestDefaults,
}

impl CameraRig {
    /// The camera's analyser, when a detector is configured.
    pub fn analyser(&self) -> Option<&FrameAnalyser> {
        self.analyser.as_ref()
    }

    /// Starts the camera's ingest thread, which runs until `stop` (or a file's end).
    pub fn connect(self, stop: Shutdown) -> Connected {
        let handle = spawn_camera_with_ring(
            &self.cam,
            &self.ingest,
            self.backoff,
            self.clock.clone(),
            stop,
            self.ring.clone(),
            self.shed.clone(),
        );
        let (frames, thread) = handle.into_parts();
        Connected {
            rig: self,
            frames,
            thread,
        }
    }
}

/// A connected camera: its ingest thread, and its frames waiting to be consumed.
pub struct Connected {
    rig: CameraRig,
    frames: FrameReceiver,
    thread: CameraThread,
}

/// Which time a frame is judged at.
#[derive(Debug, Clone, Copy)]
pub enum Timebase {
    /// The frame's wall time (live cameras).
    Wall,
    /// `start_unix` plus the frame's stream time (replays: the same every run). Frames
    /// without a timestamp are skipped.
    Stream { start_unix: f64 },
}

/// Sees what a camera's consumer does, frame by frame.
pub trait Watcher: Send {
    /// Each frame, before analysis, at its time `t` (Unix seconds).
    fn frame(&mut self, _frame: &Frame, _t: f64) {}
    /// After analysis: what the frame produced, and the analyser.
    fn analysed(&mut self, _events: &[Event], _analyser: &FrameAnalyser) {}
}

/// The live boards: each camera's analysis counters and latest frame.
pub struct LiveBoards {
    pub id: String,
    pub analysis: AnalysisBoard,
    pub latest: LatestFrames,
    latest_t: f64,
}

impl LiveBoards {
    pub fn new(id: &str, analysis: AnalysisBoard, latest: LatestFrames) -> Self {
        Self {
            id: id.to_string(),
            analysis,
            latest,
            latest_t: f64::MIN,
        }
    }
}

impl Watcher for LiveBoards {
    fn frame(&mut self, frame: &Frame, t: f64) {
        if t - self.latest_t >= LATEST_EVERY_S {
            self.latest_t = t;
            // Encoded off the consume task: the board takes it when it is ready.
            let (rgb, w, h) = (frame.to_packed_rgb(), frame.width, frame.height);
            let (latest, id) = (self.latest.clone(), self.id.clone());
            crate::core::blocking::detach(move || {
                let jpeg = crate::evidence::image::encode_jpeg(&rgb, w, h);
                latest.lock().insert(id, (Arc::new(jpeg), t));
            });
        }
    }

    fn analysed(&mut self, _events: &[Event], analyser: &FrameAnalyser) {
        self.analysis
            .lock()
            .insert(self.id.clone(), analyser.status);
    }
}

impl Connected {
    /// Consumes the camera's frames until they end (its stop signal, or a file's end):
    /// analysis when a detector is configured, else just draining; captures and merges go
    /// to the filing stage. Then joins the ingest thread and returns the rig.
    pub async fn consume(mut self, timebase: Timebase, watcher: &mut dyn Watcher) -> CameraRig {
        let rig = &mut self.rig;
        while let Some(frame) = self.frames.recv().await {
            let t = match timebase {
                Timebase::Wall => to_unix(frame.wall),
                Timebase::Stream { start_unix } => match frame.pts {
                    Some(pts) => start_unix + pts.as_secs_f64(),
                    None => continue,
                },
            };
            watcher.frame(&frame, t);
            let Some(a) = rig.analyser.as_mut() else {
                continue;
            };
            let events = a.process(frame, t).await;
            if let Some(shed) = &rig.shed {
                shed.set_favoured(a.status.watched_episodes > 0);
            }
            if let Some((stage, cam)) = &rig.filing {
                for e in &events {
                    match e {
                        Event::Capture(c) => {
                            stage.capture(cam, c.clone(), a.capture_frames(c));
                        }
                        Event::Suppressed(s) => {
                            if let Some(m) = s.merged_into {
                                stage.merged(m, &rig.cam.id, 1, s.candidate.confirm);
                            }
                        }
                        Event::Checked(r) => {
                            stage.checked(cam, r.clone(), a.check_frame());
                        }
                    }
                }
            }
            watcher.analysed(&events, a);
        }
        let thread = self.thread;
        let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        self.rig
    }

    /// The camera's health, as its ingest thread publishes it.
    pub fn health(&self) -> watch::Receiver<CameraHealth> {
        self.thread.health.clone()
    }
}

/// The bounds of the zones whose rules the detector decides (vehicles, stalls, and bins
/// with a model that sees overflow), each with the detail its objects need: where a camera
/// may look closer.
fn detected_zones(
    cam: &crate::config::CameraConfig,
    model_sees_overflow: bool,
) -> Vec<(crate::model::BBox, f32)> {
    use crate::config::RuleKind;
    use crate::detect::closer::{GOODS_DETAIL, VEHICLE_DETAIL};
    let mut out: Vec<(crate::model::BBox, f32)> = Vec::new();
    for rule in &cam.rules {
        let detail = match rule.kind {
            RuleKind::AbandonedVehicle => VEHICLE_DETAIL,
            RuleKind::IllegalVendor => GOODS_DETAIL,
            RuleKind::OverflowingBin if model_sees_overflow => GOODS_DETAIL,
            RuleKind::OverflowingBin => continue,
        };
        for z in cam.zones.iter().filter(|z| rule.zones.contains(&z.id)) {
            let b = z.polygon.bounds();
            match out.iter_mut().find(|(k, _)| *k == b) {
                Some((_, d)) => *d = d.max(detail),
                None => out.push((b, detail)),
            }
        }
    }
    out
}
