//! `citywatch run`: starts every enabled camera, hands their frames to analysis, prints
//! camera health periodically, and shuts down cleanly on SIGINT/SIGTERM.
//!
//! With a `[detect]` section each camera's frames go through its scene-change gate, the
//! inference budget and the shared detection service, then episodes, rules and limits.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tracing::{info, warn};

use crate::analysis::{CameraAnalysis, Event, FrameAnalyser};
use crate::config::PipelineConfig;
use crate::core::{Clock, Shutdown, unix_secs};
use crate::detect::{DetectionService, Detector, Manifest, ModelError, OrtDetector, ServiceConfig};
use crate::episodes::store::{EpisodeStore, JsonFileStore, NoStore};
use crate::filing::{CameraEvidence, FilingStage};
use crate::ingest::{CameraStatus, FrameReceiver, HealthBoard, spawn_camera_with_ring};
use crate::ratelimit::InferenceBudget;
use crate::store::Store;
use crate::store::outbox::Forwarder;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFormat {
    Table,
    Json,
}

pub struct RunOptions {
    /// Stop by itself after this long (demos, smoke tests).
    pub duration: Option<Duration>,
    pub status_format: StatusFormat,
    /// Run as one of several workers sharing the case database: cameras by lease.
    pub worker: Option<WorkerOptions>,
    /// Serve the web UI when `[web]` is configured (`--no-web` turns it off).
    pub web: bool,
}

/// `citywatch run --worker`.
pub struct WorkerOptions {
    /// Unique among the workers; also names this worker's capture queue.
    pub id: String,
    /// The most cameras this worker takes (`Some(0)`: web UI and jobs only).
    pub max_cameras: Option<u64>,
}

/// What `--worker` needs from the config, as errors that name the field.
fn check_worker_config(config: &PipelineConfig) -> anyhow::Result<()> {
    let Some(cases) = &config.cases else {
        anyhow::bail!(
            "cases: --worker needs a [cases] database that every worker shares (PostgreSQL)"
        );
    };
    if config.detect.is_some() && !config.episodes.in_database {
        anyhow::bail!(
            "episodes.in_database: must be true with --worker, so a camera's episodes move \
             with it to the worker that takes it over"
        );
    }
    if config.patrol.is_some() {
        anyhow::bail!("patrol: patrol scheduling does not combine with --worker yet");
    }
    if cases.database.starts_with("sqlite:") {
        warn!("cases.database is SQLite: workers can share it only on one machine; use PostgreSQL");
    }
    Ok(())
}

pub use crate::analysis::AnalysisStatus;

/// Every camera's analysis counters, by camera id.
pub type AnalysisBoard = Arc<Mutex<BTreeMap<String, AnalysisStatus>>>;

/// Each camera's latest frame as JPEG, with its time (Unix seconds): the cameras page.
pub type LatestFrames = Arc<Mutex<BTreeMap<String, (Arc<Vec<u8>>, f64)>>>;

/// How often a camera's latest frame is re-encoded for the cameras page, in seconds.
const LATEST_EVERY_S: f64 = 10.0;

/// A status line: camera health plus analysis.
#[derive(Debug, Serialize)]
pub struct StatusLine {
    #[serde(flatten)]
    pub camera: CameraStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisStatus>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub patrol: Option<crate::patrol::CameraPatrol>,
}

/// The loaded detector: its service, and whether it sees overflowing bins itself.
pub struct Detection {
    pub service: DetectionService,
    pub model_sees_overflow: bool,
    /// Name, version and sha256, for evidence manifests.
    pub model: crate::evidence::ModelInfo,
}

/// Loads the configured detector and starts its service; `None` without `[detect]`.
/// `single` forces batches of one (replays: results independent of timing).
pub fn start_detection(
    config: &PipelineConfig,
    single: bool,
) -> Result<Option<Detection>, ModelError> {
    let Some(d) = &config.detect else {
        return Ok(None);
    };
    let manifest = Manifest::load_named(&d.models_dir, &d.model)?;
    let sees = crate::analysis::model_sees_overflow(&manifest);
    let model = crate::evidence::ModelInfo {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        sha256: manifest.sha256.clone(),
    };
    let lib = crate::detect::runtime::library_path(d.ort_library.as_deref());
    let detector: Arc<dyn Detector> = Arc::new(OrtDetector::load(manifest, &lib, d.intra_threads)?);
    info!(model = %d.model, "detector loaded");
    let detector = if single {
        Arc::new(crate::detect::OneAtATime(detector))
    } else {
        detector
    };
    Ok(Some(Detection {
        service: DetectionService::start(
            detector,
            ServiceConfig {
                max_wait: Duration::from_millis(d.batch_wait_ms),
                queue: d.queue,
                threads: d.inference_threads,
            },
        ),
        model_sees_overflow: sees,
        model,
    }))
}

/// Connects to the case database and records the config's cameras in it.
pub async fn open_store(
    url: &str,
    config: &PipelineConfig,
) -> Result<Arc<Store>, crate::store::StoreError> {
    let store = Arc::new(Store::connect(url).await?);
    for cam in &config.cameras {
        store
            .upsert_camera(&cam.id, &cam.name, &cam.location)
            .await?;
    }
    Ok(store)
}

/// The episode store the config asks for.
pub fn episode_store(config: &PipelineConfig) -> std::io::Result<Box<dyn EpisodeStore>> {
    Ok(match &config.episodes.state_dir {
        Some(dir) => Box::new(JsonFileStore::new(dir)?),
        None => Box::new(NoStore),
    })
}

/// The global inference budget, if configured.
pub fn budget(config: &PipelineConfig) -> Option<Arc<Mutex<InferenceBudget>>> {
    config
        .limits
        .inference_fps
        .map(|r| Arc::new(Mutex::new(InferenceBudget::new(r))))
}

/// Consumes one camera's frames until they end: analysis when a detector is configured, else
/// just drains; captures go to the filing stage. Returns the analyser (a patrolled camera's
/// next visit goes on with it).
pub(crate) async fn analyse(
    id: String,
    mut frames: FrameReceiver,
    mut analyser: Option<FrameAnalyser>,
    filing: Option<(Arc<FilingStage>, CameraEvidence)>,
    board: AnalysisBoard,
    latest: LatestFrames,
) -> Option<FrameAnalyser> {
    let mut latest_t = f64::MIN;
    while let Some(frame) = frames.recv().await {
        let t = frame
            .wall
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        if t - latest_t >= LATEST_EVERY_S {
            latest_t = t;
            let jpeg = crate::evidence::image::encode_jpeg(
                &frame.to_packed_rgb(),
                frame.width,
                frame.height,
            );
            latest
                .lock()
                .expect("latest frames")
                .insert(id.clone(), (Arc::new(jpeg), t));
        }
        let Some(a) = analyser.as_mut() else {
            continue;
        };
        let events = a.process(frame, t).await;
        if let Some((stage, cam)) = &filing {
            for e in events {
                match e {
                    Event::Capture(c) => {
                        let frames = a.capture_frames(&c);
                        stage.capture(cam, c, frames);
                    }
                    Event::Suppressed(s) => {
                        if let Some(m) = s.merged_into {
                            stage.merged(m, &id, 1, s.candidate.confirm);
                        }
                    }
                }
            }
        }
        board
            .lock()
            .expect("analysis board")
            .insert(id.clone(), a.status);
    }
    analyser
}

/// Delivers filed cases to the city platform until shutdown.
/// Rounds run every second, and at once when `stored` says new cases may be waiting.
pub async fn forward(
    store: Arc<Store>,
    forwarder: Forwarder,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
    stored: Arc<tokio::sync::Notify>,
) {
    loop {
        let now = clock
            .now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs_f64();
        match forwarder.deliver_due(&store, now).await {
            // A full round: more may be due at once.
            Ok(d) if d.delivered + d.retried + d.dead >= crate::store::outbox::ROUND as u32 => {
                continue;
            }
            Ok(_) => {}
            Err(e) => warn!(error = %e, "outbox delivery round failed; will retry"),
        }
        tokio::select! {
            biased;
            _ = shutdown.triggered() => return,
            _ = stored.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// One status line per camera.
pub fn format_status(line: &StatusLine, format: StatusFormat) -> String {
    let s = &line.camera;
    match format {
        StatusFormat::Json => serde_json::to_string(line).expect("status serialises"),
        StatusFormat::Table => {
            let h = &s.health;
            let age = s
                .last_frame_age_s
                .map(|a| format!("{a:.1}s"))
                .unwrap_or_else(|| "-".into());
            let mut out = format!(
                "{:<12} {:<11} frames={:<6} dropped={:<4} reconnects={:<3} last_frame_age={:<7} keyframe_only={} url={}",
                h.id,
                h.state.as_str(),
                h.frames,
                h.frames_dropped,
                h.reconnects,
                age,
                if h.keyframe_only { "yes" } else { "no" },
                h.url
            );
            if let Some(a) = &line.analysis {
                out.push_str(&format!(
                    " inferences={} reused={} objects={} episodes={} captures={} suppressed={}",
                    a.inferences, a.reused, a.objects, a.open_episodes, a.captures, a.suppressed
                ));
            }
            if let Some(p) = &line.patrol {
                out.push_str(&format!(
                    " visits={} late_visits={} max_gap_s={:.0}{}",
                    p.visits,
                    p.late_visits,
                    p.max_gap_s,
                    if p.hot { " hot" } else { "" }
                ));
            }
            if let Some(e) = &h.last_error {
                out.push_str(&format!(" last_error=\"{e}\""));
            }
            out
        }
    }
}

/// What starting one camera's analysis needs: shared by the fixed camera list, the patrol
/// and a worker's leased cameras.
#[derive(Clone)]
pub struct Launcher {
    pub config: Arc<PipelineConfig>,
    /// The detection service, and whether the model sees overflowing bins itself.
    pub detection: Option<(DetectionService, bool)>,
    pub budget: Option<Arc<Mutex<InferenceBudget>>>,
    pub db_episodes: Option<crate::store::episodes::DbEpisodeStore>,
    pub stage: Option<Arc<FilingStage>>,
    pub analysis: AnalysisBoard,
    pub latest: LatestFrames,
    pub clock: Arc<dyn Clock>,
    pub backoff: crate::ingest::BackoffPolicy,
}

impl Launcher {
    /// A packet ring for the camera's clips, when evidence is kept.
    pub fn ring(&self) -> Option<crate::evidence::ring::PacketRing> {
        match (&self.stage, &self.config.evidence) {
            (Some(s), Some(ev)) if s.keeps_evidence() => Some(crate::filing::ring_for(ev)),
            _ => None,
        }
    }

    /// The camera's analyser (its episodes loaded from the episode store), when a detector
    /// is configured.
    pub fn analyser(
        &self,
        cam: &crate::config::CameraConfig,
        evidence: bool,
    ) -> std::io::Result<Option<FrameAnalyser>> {
        let Some((service, sees)) = &self.detection else {
            return Ok(None);
        };
        let store: Box<dyn EpisodeStore> = match &self.db_episodes {
            Some(db) => Box::new(db.clone()),
            None => episode_store(&self.config)?,
        };
        let a = FrameAnalyser::new(
            &cam.id,
            self.config.gate.to_gate(),
            CameraAnalysis::new(cam, &self.config, store, *sees)?,
            self.budget.clone(),
            service.clone(),
        );
        Ok(Some(if evidence { a.with_evidence() } else { a }))
    }

    pub fn filing(
        &self,
        cam: &crate::config::CameraConfig,
        ring: &Option<crate::evidence::ring::PacketRing>,
    ) -> Option<(Arc<FilingStage>, CameraEvidence)> {
        self.stage
            .as_ref()
            .map(|s| (s.clone(), CameraEvidence::new(cam, ring.clone())))
    }
}

/// Runs until shutdown (a signal, `duration`, or every camera finished).
pub async fn run(
    config: PipelineConfig,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
    opts: RunOptions,
) -> anyhow::Result<()> {
    if opts.worker.is_some() {
        check_worker_config(&config)?;
    }
    let config = Arc::new(config);
    let detection = start_detection(&config, false)?;
    let budget = budget(&config);
    let mut db_episodes = None;
    let mut case_store = None;
    let mut jobs: BTreeMap<String, crate::workers::host::JobStarter> = BTreeMap::new();
    let stage = match &config.cases {
        Some(c) => {
            let store = open_store(&c.database, &config).await?;
            case_store = Some(store.clone());
            let mut c = c.clone();
            if let Some(w) = &opts.worker {
                // Each worker has its own capture queue; the others drain it if it dies.
                c.spool = c.spool.join("workers").join(&w.id);
                if config.episodes.in_database {
                    db_episodes = Some(crate::store::episodes::DbEpisodeStore::for_worker(
                        store.clone(),
                        &w.id,
                        clock.clone(),
                        shutdown.clone(),
                    ));
                }
            } else if config.episodes.in_database {
                let ids: Vec<String> = config.cameras.iter().map(|c| c.id.clone()).collect();
                db_episodes = Some(
                    crate::store::episodes::DbEpisodeStore::open(
                        store.clone(),
                        &ids,
                        clock.clone(),
                        shutdown.clone(),
                    )
                    .await?,
                );
            }
            let stage = FilingStage::open(
                store.clone(),
                Arc::new(c.clone()),
                config.evidence.as_ref(),
                detection.as_ref().map(|d| d.model.clone()),
                clock.clone(),
                shutdown.clone(),
            )?;
            if let Some(hook) = &c.webhook {
                let (clock, stored, hook) = (clock.clone(), stage.stored.clone(), hook.clone());
                let start = move |stop: Shutdown| {
                    tokio::spawn(forward(
                        store.clone(),
                        Forwarder::new(hook.clone()),
                        clock.clone(),
                        stop,
                        stored.clone(),
                    ))
                };
                if opts.worker.is_some() {
                    // One forwarder among the workers: whoever holds the job's lease.
                    jobs.insert(crate::workers::OUTBOX_JOB.into(), Box::new(start));
                } else {
                    start(shutdown.clone());
                }
            }
            tokio::spawn(stage.clone().run_drainer());
            if opts.worker.is_some() {
                let stage = stage.clone();
                jobs.insert(
                    crate::workers::RETENTION_JOB.into(),
                    Box::new(move |stop: Shutdown| {
                        let stage = stage.clone();
                        tokio::spawn(async move {
                            tokio::select! {
                                _ = stop.triggered() => {}
                                _ = stage.run_retention() => {}
                            }
                        })
                    }),
                );
            } else {
                tokio::spawn(stage.clone().run_retention());
            }
            Some(stage)
        }
        None => None,
    };
    let analysis: AnalysisBoard = Arc::default();
    let latest: LatestFrames = Arc::default();
    let backoff = config.backoff();
    let board = HealthBoard::default();
    let launcher = Launcher {
        config: config.clone(),
        detection: detection
            .as_ref()
            .map(|d| (d.service.clone(), d.model_sees_overflow)),
        budget: budget.clone(),
        db_episodes: db_episodes.clone(),
        stage: stage.clone(),
        analysis: analysis.clone(),
        latest: latest.clone(),
        clock: clock.clone(),
        backoff,
    };
    let mut threads = Vec::new();
    let mut consumers = Vec::new();
    let patrol = config
        .patrol
        .as_ref()
        .map(|p| crate::patrol::visits::scheduler(&config, p));
    if let Some(s) = &patrol {
        crate::patrol::visits::report_loads(s);
    }
    let patrol_board: crate::patrol::visits::PatrolBoard = Arc::default();
    let mut visit_senders = BTreeMap::new();
    let (ended_tx, ended_rx) = tokio::sync::mpsc::channel(config.cameras.len().max(1));
    let mut patrol_tasks = Vec::new();
    let worker_board: crate::workers::host::WorkerBoard = Arc::default();
    let mut host = None;
    if let (Some(w), Some(store)) = (&opts.worker, &case_store) {
        let enabled: BTreeMap<String, crate::config::CameraConfig> = config
            .cameras
            .iter()
            .filter(|c| c.enabled)
            .map(|c| (c.id.clone(), c.clone()))
            .collect();
        let leases = crate::workers::Leases::new(
            store.clone(),
            clock.clone(),
            w.id.clone(),
            unix_secs(clock.as_ref()),
            config.workers.lease_ttl_s,
            config.workers.heartbeat_s,
            w.max_cameras,
            enabled.keys().cloned().collect(),
            jobs.keys().cloned().collect(),
        )
        .await?;
        info!(worker = %w.id, cameras = enabled.len(), "worker started; taking camera leases");
        host = Some(tokio::spawn(
            crate::workers::host::WorkerHost {
                launcher: launcher.clone(),
                leases,
                heartbeat: crate::config::secs(config.workers.heartbeat_s),
                cameras: enabled,
                health: board.clone(),
                jobs: std::mem::take(&mut jobs),
                spool_root: config.cases.as_ref().map(|c| c.spool.join("workers")),
                status: worker_board.clone(),
                clock: clock.clone(),
                deadline: crate::config::secs(config.settings.shutdown_timeout_s),
            }
            .run(shutdown.clone()),
        ));
    }
    for cam in config
        .cameras
        .iter()
        .filter(|c| c.enabled && opts.worker.is_none())
    {
        let ring = launcher.ring();
        let analyser = launcher.analyser(cam, ring.is_some())?;
        let filing = launcher.filing(cam, &ring);
        if patrol.is_some() && !cam.continuous {
            // Visited in turn: connected only while the patrol says so.
            let health = Arc::new(crate::patrol::visits::persistent_health(
                cam,
                clock.as_ref(),
            ));
            board.add(health.subscribe());
            let (tx, rx) = tokio::sync::mpsc::channel(1);
            visit_senders.insert(cam.id.clone(), tx);
            let ctx = crate::patrol::visits::VisitContext {
                cam: cam.clone(),
                ingest: config.ingest.clone(),
                backoff,
                clock: clock.clone(),
                ring,
                analyser,
                filing,
                board: analysis.clone(),
                latest: latest.clone(),
            };
            patrol_tasks.push(tokio::spawn(crate::patrol::visits::camera_task(
                ctx,
                health,
                rx,
                ended_tx.clone(),
            )));
            continue;
        }
        let handle = spawn_camera_with_ring(
            cam,
            &config.ingest,
            backoff,
            clock.clone(),
            shutdown.clone(),
            ring,
        );
        board.add(handle.health.clone());
        let (frames, thread) = handle.into_parts();
        threads.push(thread);
        consumers.push(tokio::spawn(analyse(
            cam.id.clone(),
            frames,
            analyser,
            filing,
            analysis.clone(),
            latest.clone(),
        )));
    }
    drop(ended_tx);
    // The launcher holds a handle on the detection service, which must be gone before the
    // service's threads can be joined at shutdown.
    drop(launcher);
    let patrol_loop = patrol.map(|s| {
        tokio::spawn(crate::patrol::visits::patrol_loop(
            s,
            visit_senders,
            ended_rx,
            analysis.clone(),
            patrol_board.clone(),
            clock.clone(),
            shutdown.clone(),
        ))
    });
    info!(
        cameras = threads.len() + patrol_tasks.len(),
        patrolled = patrol_tasks.len(),
        "pipeline started"
    );
    if let Some(store) = &case_store
        && opts.web
        && let Some(web) = crate::web::WebState::new(
            &config,
            store.clone(),
            board.clone(),
            analysis.clone(),
            stage.clone(),
            clock.clone(),
        )
    {
        let mut web = web;
        web.inference = detection.as_ref().map(|d| d.service.latency());
        web.latest = latest.clone();
        web.patrol = patrol_loop.is_some().then(|| patrol_board.clone());
        web.worker = host.is_some().then(|| worker_board.clone());
        let addr = crate::web::serve(Arc::new(web), shutdown.clone()).await?;
        // Scripts and tests wait for this line.
        println!("web: listening on http://{addr}");
    }

    let interval = crate::config::secs(config.settings.status_interval_s);
    let mut ticker = tokio::time::interval(interval);
    ticker.tick().await;
    let stop_after = async {
        match opts.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop_after);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.triggered() => break,
            _ = &mut stop_after => { shutdown.trigger(); break; }
            _ = ticker.tick() => {
                print_status(&board, &analysis, &patrol_board, detection.is_some(), clock.as_ref(), opts.status_format);
                print_filing(stage.as_deref(), opts.status_format);
                print_patrol(patrol_loop.is_some().then_some(&patrol_board), opts.status_format);
                print_worker(host.is_some().then_some(&worker_board), opts.status_format);
                if patrol_loop.is_none() && host.is_none() && threads.iter().all(|t| t.is_finished()) {
                    info!("every camera has stopped");
                    break;
                }
            }
        }
    }
    shutdown.trigger();

    // Give the camera threads the shutdown deadline, then report what is stuck.
    let deadline = crate::config::secs(config.settings.shutdown_timeout_s);
    let joined = tokio::task::spawn_blocking(move || {
        let until = std::time::Instant::now() + deadline;
        let mut stuck = Vec::new();
        for t in threads {
            while !t.is_finished() && std::time::Instant::now() < until {
                std::thread::sleep(Duration::from_millis(10));
            }
            if t.is_finished() {
                t.join();
            } else {
                stuck.push(t.id.to_string());
            }
        }
        stuck
    })
    .await?;
    // A worker stops its cameras, saves their episodes and gives its leases back.
    if let Some(h) = host {
        let _ = h.await;
    }
    // Patrolled cameras end their current visit (the patrol loop has stopped them) and their
    // tasks return once the loop is gone.
    if let Some(l) = patrol_loop {
        let _ = l.await;
    }
    for t in patrol_tasks {
        if tokio::time::timeout(deadline, t).await.is_err() {
            warn!("a patrolled camera did not close its visit within the shutdown deadline");
        }
    }
    for c in &consumers {
        c.abort();
    }
    // The analysis tasks hold the detection service; once they are gone, let the inference
    // threads finish the batch they hold before the process exits.
    for c in consumers {
        let _ = c.await;
    }
    let detecting = detection.is_some();
    if let Some(d) = detection {
        let service = d.service;
        let done = tokio::task::spawn_blocking(move || service.join(deadline)).await?;
        if !done {
            warn!("inference threads did not stop within the shutdown deadline");
        }
    }
    print_status(
        &board,
        &analysis,
        &patrol_board,
        detecting,
        clock.as_ref(),
        opts.status_format,
    );
    if let Some(s) = &stage {
        // What the cameras captured before the end: packages whose clips are complete are
        // written; the queue is drained once more. What remains waits for the next start.
        let _ = tokio::time::timeout(deadline, s.flush()).await;
        print_filing(Some(s), opts.status_format);
    }
    if !joined.is_empty() {
        warn!(cameras = ?joined, "shutdown deadline passed; forcing exit");
    } else {
        info!("shut down cleanly");
    }
    Ok(())
}

/// One line for the filing stage: evidence, the persistent queue, the database.
fn print_filing(stage: Option<&FilingStage>, format: StatusFormat) {
    let Some(stage) = stage else { return };
    let s = stage.status();
    match format {
        StatusFormat::Json => println!("{}", serde_json::json!({ "filing": s })),
        StatusFormat::Table => {
            let mut out = format!(
                "{:<12} evidence_pending={} evidence_written={} evidence_errors={} queued={} queue_dropped={} stored={} db_errors={}",
                "[filing]",
                s.evidence_pending,
                s.evidence_written,
                s.evidence_errors,
                s.queued,
                s.queue_dropped,
                s.stored,
                s.db_errors
            );
            if let Some(r) = &s.retention {
                out.push_str(&format!(
                    " evidence_bytes={} quota_bytes={} quota_alert={}",
                    r.used_bytes,
                    r.quota_bytes,
                    if r.quota_alert { "YES" } else { "no" }
                ));
            }
            if let Some(e) = &s.last_evidence_error {
                out.push_str(&format!(" last_evidence_error=\"{e}\""));
            }
            if let Some(e) = &s.last_queue_error {
                out.push_str(&format!(" last_queue_error=\"{e}\""));
            }
            if let Some(e) = &s.last_db_error {
                out.push_str(&format!(" last_db_error=\"{e}\""));
            }
            println!("{out}");
        }
    }
}

/// One line for a worker: its share, its cameras and jobs, its lease changes.
fn print_worker(board: Option<&crate::workers::host::WorkerBoard>, format: StatusFormat) {
    let Some(board) = board else { return };
    let w = board.lock().expect("worker status").clone();
    match format {
        StatusFormat::Json => println!("{}", serde_json::json!({ "worker": w })),
        StatusFormat::Table => {
            let mut out = format!(
                "{:<12} id={} live_workers={} share={} cameras={} jobs={} taken={} given_back={} lost={} round_errors={}",
                "[worker]",
                w.id,
                w.live_workers,
                w.share,
                w.cameras.len(),
                w.jobs.join(","),
                w.taken,
                w.given_back,
                w.lost,
                w.round_errors
            );
            if let Some(e) = &w.last_error {
                out.push_str(&format!(" last_error=\"{e}\""));
            }
            println!("{out}");
        }
    }
}

/// One line per platform while patrolling: demand against cap.
fn print_patrol(board: Option<&crate::patrol::visits::PatrolBoard>, format: StatusFormat) {
    let Some(board) = board else { return };
    let platforms = board.lock().expect("patrol board").platforms.clone();
    for l in platforms {
        match format {
            StatusFormat::Json => println!("{}", serde_json::json!({ "patrol": l })),
            StatusFormat::Table => println!(
                "{:<12} platform={} cap={} cameras={} continuous={} demand={:.2} round_s={:.0} feasible={}",
                "[patrol]",
                l.platform,
                l.cap,
                l.cameras,
                l.continuous,
                l.demand,
                l.round_s,
                if l.feasible { "yes" } else { "NO" }
            ),
        }
    }
}

fn print_status(
    board: &HealthBoard,
    analysis: &AnalysisBoard,
    patrol: &crate::patrol::visits::PatrolBoard,
    detecting: bool,
    clock: &dyn Clock,
    format: StatusFormat,
) {
    let now = clock.now();
    let analysis = analysis.lock().expect("analysis board").clone();
    let patrol = patrol.lock().expect("patrol board").cameras.clone();
    for camera in board.snapshot(now) {
        let a = detecting.then(|| analysis.get(&camera.health.id).copied().unwrap_or_default());
        let line = StatusLine {
            patrol: patrol.get(&camera.health.id).cloned(),
            camera,
            analysis: a,
        };
        println!("{}", format_status(&line, format));
    }
}
