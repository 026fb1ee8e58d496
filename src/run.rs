//! `citywatch run`: starts every enabled camera, hands their frames to analysis, prints
//! camera health periodically, and shuts down cleanly on SIGINT/SIGTERM.
//!
//! With a `[detect]` section each camera's frames go through its scene-change gate and, when
//! the scene changed, to the shared detection service. Episodes and rules plug in after.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;

use crate::config::PipelineConfig;
use crate::core::{Clock, Shutdown};
use crate::detect::{
    Decision, DetectionService, Detector, GateStats, Manifest, ModelError, OrtDetector, SceneGate,
    ServiceConfig,
};
use crate::ingest::{CameraStatus, FrameReceiver, HealthBoard, spawn_camera};

/// Analysis counters of one camera.
#[derive(Debug, Default, Clone, Copy, Serialize)]
pub struct AnalysisStatus {
    pub inferences: u64,
    pub reused: u64,
    pub detect_errors: u64,
    /// Detections in the latest analysed frame.
    pub objects: usize,
}

/// Every camera's analysis counters, by camera id.
pub type AnalysisBoard = Arc<Mutex<BTreeMap<String, AnalysisStatus>>>;

/// A status line: camera health plus analysis.
#[derive(Debug, Serialize)]
pub struct StatusLine {
    #[serde(flatten)]
    pub camera: CameraStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub analysis: Option<AnalysisStatus>,
}

/// Loads the configured detector and starts its service; `None` without `[detect]`.
pub fn start_detection(config: &PipelineConfig) -> Result<Option<DetectionService>, ModelError> {
    let Some(d) = &config.detect else {
        return Ok(None);
    };
    let manifest = Manifest::load_named(&d.models_dir, &d.model)?;
    let lib = crate::detect::runtime::library_path(d.ort_library.as_deref());
    let detector: Arc<dyn Detector> = Arc::new(OrtDetector::load(manifest, &lib, d.intra_threads)?);
    info!(model = %d.model, "detector loaded");
    Ok(Some(DetectionService::start(
        detector,
        ServiceConfig {
            max_wait: Duration::from_millis(d.batch_wait_ms),
            queue: d.queue,
            threads: d.inference_threads,
        },
    )))
}

/// Consumes one camera's frames: gate, then detect.
async fn analyse(
    id: String,
    mut frames: FrameReceiver,
    service: Option<DetectionService>,
    mut gate: SceneGate,
    board: AnalysisBoard,
) {
    while let Some(frame) = frames.recv().await {
        let Some(service) = &service else {
            continue;
        };
        let frame = Arc::new(frame);
        let mut status = AnalysisStatus::default();
        match gate.decide(&frame) {
            Decision::Run => match service.detect(frame.clone()).await {
                Ok(dets) => {
                    status.objects = dets.len();
                    tracing::debug!(camera = %id, objects = dets.len(), "detections");
                    gate.record(&dets);
                }
                Err(e) => {
                    status.detect_errors = 1;
                    warn!(camera = %id, error = %e, "detection failed");
                }
            },
            Decision::Reuse => status.objects = gate.reused().len(),
        }
        let GateStats { inferences, reused } = gate.stats;
        let mut b = board.lock().expect("analysis board");
        let entry = b.entry(id.clone()).or_default();
        entry.inferences = inferences;
        entry.reused = reused;
        entry.detect_errors += status.detect_errors;
        entry.objects = status.objects;
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFormat {
    Table,
    Json,
}

pub struct RunOptions {
    /// Stop by itself after this long (demos, smoke tests).
    pub duration: Option<Duration>,
    pub status_format: StatusFormat,
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
                    " inferences={} reused={} objects={}",
                    a.inferences, a.reused, a.objects
                ));
            }
            if let Some(e) = &h.last_error {
                out.push_str(&format!(" last_error=\"{e}\""));
            }
            out
        }
    }
}

/// Runs until shutdown (a signal, `duration`, or every camera finished).
pub async fn run(
    config: PipelineConfig,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
    opts: RunOptions,
) -> anyhow::Result<()> {
    let service = start_detection(&config)?;
    let analysis: AnalysisBoard = Arc::default();
    let backoff = config.backoff();
    let mut board = HealthBoard::default();
    let mut threads = Vec::new();
    let mut consumers = Vec::new();
    for cam in config.cameras.iter().filter(|c| c.enabled) {
        let handle = spawn_camera(
            cam,
            &config.ingest,
            backoff,
            clock.clone(),
            shutdown.clone(),
        );
        board.add(handle.health.clone());
        let (frames, thread) = handle.into_parts();
        threads.push(thread);
        consumers.push(tokio::spawn(analyse(
            cam.id.clone(),
            frames,
            service.clone(),
            SceneGate::new(config.gate.to_gate()),
            analysis.clone(),
        )));
    }
    info!(cameras = threads.len(), "pipeline started");

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
                print_status(&board, &analysis, service.is_some(), clock.as_ref(), opts.status_format);
                if threads.iter().all(|t| t.is_finished()) {
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
    for c in consumers {
        c.abort();
    }
    print_status(
        &board,
        &analysis,
        service.is_some(),
        clock.as_ref(),
        opts.status_format,
    );
    if !joined.is_empty() {
        warn!(cameras = ?joined, "shutdown deadline passed; forcing exit");
    } else {
        info!("shut down cleanly");
    }
    Ok(())
}

fn print_status(
    board: &HealthBoard,
    analysis: &AnalysisBoard,
    detecting: bool,
    clock: &dyn Clock,
    format: StatusFormat,
) {
    let now = clock.now();
    let analysis = analysis.lock().expect("analysis board").clone();
    for camera in board.snapshot(now) {
        let a = detecting.then(|| analysis.get(&camera.health.id).copied().unwrap_or_default());
        let line = StatusLine {
            camera,
            analysis: a,
        };
        println!("{}", format_status(&line, format));
    }
}
