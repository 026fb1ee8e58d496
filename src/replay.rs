//! `citywatch replay PIPELINE.toml`: runs the pipeline over recorded footage (each camera's
//! `footage`, or its own file:// URL) to the end, with stream time driving every clock, and
//! prints the captures as JSON lines. The same footage gives byte-identical output.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use crate::analysis::Event;
use crate::config::{CameraConfig, PipelineConfig, SourceKind};
use crate::core::{Shutdown, SystemClock};
use crate::detect::BBox;
use crate::filing::FilingStage;
use crate::notify::Forwarder;
use crate::pipeline::setup::{budget, open_store, start_detection};
use crate::pipeline::{Episodes, Launcher, Timebase, Watcher};
use crate::ratelimit::{Capture, Suppression};
use crate::rules::engine::Candidate;

pub struct ReplayOptions {
    /// Plays each file this many times back to back.
    pub loops: u32,
    /// Also print suppressed candidates.
    pub suppressed: bool,
    /// Store captures (and, for rules filed automatically, cases) in this database, with the
    /// config's `[cases]` category table and filing modes. Idempotent: replaying the same
    /// footage again adds nothing.
    pub database: Option<String>,
}

/// One output line.
#[derive(Debug, Serialize)]
struct Line<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    rule: &'static str,
    camera: &'a str,
    preset: Option<u32>,
    zone: &'a str,
    label: &'a str,
    /// What was seen in a stall (`orange×3`, `unlabelled goods`).
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    parts: &'a [String],
    /// A vehicle's plate (车牌号), when its reads agreed.
    #[serde(skip_serializing_if = "Option::is_none")]
    plate: Option<&'a str>,
    /// Local time (the camera's offset) and seconds of stream time.
    start: String,
    confirm: String,
    start_s: f64,
    confirm_s: f64,
    #[serde(rename = "box")]
    bbox: [f64; 4],
    score: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    aggregation: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_evidence_s: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<crate::ratelimit::SuppressionReason>,
    /// A learned suppression: the rejected capture it resembles, and how closely.
    #[serde(skip_serializing_if = "Option::is_none")]
    resembles: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    similarity: Option<f64>,
}

impl<'a> Line<'a> {
    /// The fields every line has, from a candidate; times relative to `start_unix`.
    fn new(kind: &'static str, k: &'a Candidate, offset: i32, start_unix: f64) -> Self {
        Line {
            kind,
            rule: k.rule.as_str(),
            camera: &k.camera,
            preset: k.preset,
            zone: &k.zone,
            label: &k.label,
            parts: &k.parts,
            plate: k.plate.as_ref().map(|p| p.text.as_str()),
            start: local_time(k.start, offset),
            confirm: local_time(k.confirm, offset),
            start_s: round(k.start - start_unix, 3),
            confirm_s: round(k.confirm - start_unix, 3),
            bbox: bbox(&k.bbox),
            score: round(k.score as f64, 4),
            aggregation: None,
            last_evidence_s: None,
            reason: None,
            resembles: None,
            similarity: None,
        }
    }
}

fn round(v: f64, places: i32) -> f64 {
    let k = 10f64.powi(places);
    (v * k).round() / k
}

fn local_time(unix: f64, offset_s: i32) -> String {
    let offset = time::UtcOffset::from_whole_seconds(offset_s).unwrap_or(time::UtcOffset::UTC);
    time::OffsetDateTime::from_unix_timestamp_nanos((round(unix, 3) * 1e9) as i128)
        .map(|t| t.to_offset(offset).format(&Rfc3339).unwrap_or_default())
        .unwrap_or_default()
}

fn bbox(b: &BBox) -> [f64; 4] {
    b.map(|v| round(v as f64, 4))
}

/// What one camera's replay produced.
#[derive(Default)]
pub(crate) struct CameraResult {
    pub captures: BTreeMap<u64, Capture>,
    pub suppressed: Vec<Suppression>,
    /// Frames analysed, and of those the ones the detector ran on.
    pub frames: u64,
    pub inferences: u64,
    /// With [`PlayOptions::keep_detections`]: (stream seconds, detections) of every frame the
    /// detector ran on.
    pub detections: Vec<(f64, Vec<crate::detect::Detection>)>,
    /// Closure checks the camera decided.
    pub checks: Vec<crate::closure::CheckResult>,
}

/// How [`play`] runs its cameras.
#[derive(Clone, Default)]
pub(crate) struct PlayOptions {
    pub keep_detections: bool,
    /// Adds the milliseconds of stream time played, as they are played.
    pub progress: Option<Arc<std::sync::atomic::AtomicU64>>,
    /// Most cameras played at once (0: all).
    pub jobs: usize,
    /// The verdict memory candidates are judged against (None: an empty one).
    pub memory: Option<crate::learn::SharedMemory>,
    /// Closure checks of handled cases the cameras look at (None: none).
    pub checks: Option<crate::closure::SharedChecks>,
}

/// Records what a replayed camera produced, frame by frame.
struct Recorder {
    out: CameraResult,
    progress: Option<Arc<std::sync::atomic::AtomicU64>>,
    played_ms: u64,
    /// Stream time of the frame being analysed.
    stream_s: f64,
}

impl Watcher for Recorder {
    fn frame(&mut self, frame: &crate::ingest::Frame, _t: f64) {
        self.out.frames += 1;
        self.stream_s = frame.pts.unwrap_or_default().as_secs_f64();
        if let (Some(p), Some(pts)) = (&self.progress, frame.pts) {
            let ms = pts.as_millis() as u64;
            p.fetch_add(
                ms.saturating_sub(self.played_ms),
                std::sync::atomic::Ordering::Relaxed,
            );
            self.played_ms = self.played_ms.max(ms);
        }
    }

    fn analysed(&mut self, events: &[Event], analyser: &crate::analysis::FrameAnalyser) {
        let out = &mut self.out;
        if let Some(d) = analyser.fresh() {
            out.detections.push((self.stream_s, d.to_vec()));
        }
        for e in events {
            match e {
                Event::Capture(c) => {
                    out.captures.insert(c.id, c.clone());
                }
                Event::Suppressed(s) => {
                    if let Some(id) = s.merged_into
                        && let Some(c) = out.captures.get_mut(&id)
                    {
                        c.aggregation += 1;
                        c.last_evidence = c.last_evidence.max(s.candidate.confirm);
                    }
                    out.suppressed.push(s.clone());
                }
                Event::Checked(r) => out.checks.push(r.clone()),
            }
        }
    }
}

/// Plays `cams` (file sources) through the whole pipeline with stream time as the clock, and
/// returns each camera's result, in the order given.
pub(crate) async fn play(
    config: Arc<PipelineConfig>,
    cams: Vec<CameraConfig>,
    detection: &crate::pipeline::Detection,
    start_unix: f64,
    stage: Option<Arc<FilingStage>>,
    opts: PlayOptions,
) -> anyhow::Result<Vec<(CameraConfig, CameraResult)>> {
    let launcher = Launcher {
        config: config.clone(),
        detection: Some((detection.service.clone(), detection.model_sees_overflow)),
        budget: budget(&config),
        episodes: Episodes::Forget,
        stage,
        clock: Arc::new(SystemClock),
        backoff: config.backoff(),
        analysis: Default::default(),
        latest: Default::default(),
        desk: Default::default(),
        memory: opts.memory.clone().unwrap_or_default(),
        checks: opts.checks.clone().unwrap_or_default(),
        keep_detections: opts.keep_detections,
        plates: detection.plates.clone(),
        shed: false,
    };
    let permits = Arc::new(tokio::sync::Semaphore::new(if opts.jobs == 0 {
        tokio::sync::Semaphore::MAX_PERMITS
    } else {
        opts.jobs
    }));
    let mut tasks = Vec::new();
    for cam in cams {
        let rig = launcher.rig(&cam).context("starting episodes")?;
        let permits = permits.clone();
        let progress = opts.progress.clone();
        tasks.push((
            cam,
            tokio::spawn(async move {
                let _permit = permits.acquire_owned().await;
                let mut rec = Recorder {
                    out: CameraResult::default(),
                    progress,
                    played_ms: 0,
                    stream_s: 0.0,
                };
                let connected = rig.connect(Shutdown::new());
                let health = connected.health();
                let rig = connected
                    .consume(Timebase::Stream { start_unix }, &mut rec)
                    .await;
                rec.out.inferences = rig.analyser().map_or(0, |a| a.status.inferences);
                let h = health.borrow().clone();
                if let Some(err) = h.last_error
                    && h.state == crate::ingest::HealthState::Failed
                {
                    tracing::error!(camera = %rig.cam.id, error = %err, "footage could not be played");
                }
                rec.out
            }),
        ));
    }
    let mut out = Vec::new();
    for (cam, task) in tasks {
        out.push((cam, task.await.context("replay task")?));
    }
    Ok(out)
}

/// Runs the replay; writes JSON lines to `out`. Returns (captures, suppressed, frames).
pub async fn replay(
    config: PipelineConfig,
    opts: ReplayOptions,
    out: &mut impl Write,
) -> anyhow::Result<(usize, usize, u64)> {
    let start_unix = config
        .replay
        .start_unix()
        .map_err(|e| anyhow::anyhow!("replay.start: {e}"))?;
    let Some(detection) = start_detection(&config, true)? else {
        bail!("replay needs a [detect] section: there is nothing to analyse without a detector");
    };
    let stage = match &opts.database {
        None => None,
        Some(url) => {
            let Some(cases) = &config.cases else {
                bail!("--db needs a [cases] section in the config (category table, filing modes)");
            };
            let store = open_store(url, &config).await?;
            let stage = FilingStage::open(
                store.clone(),
                Arc::new(cases.clone()),
                config.evidence.as_ref(),
                Some(detection.model.clone()),
                Arc::new(SystemClock),
                Shutdown::new(),
            )?;
            Some((stage, store, cases.webhook.clone()))
        }
    };
    // What operators said in this database, as it is now: the replay only reads it, so the
    // same database gives the same output.
    let memory = match &stage {
        Some((_, store, _)) => Some(crate::learn::SharedMemory::new(
            crate::learn::VerdictMemory::from_entries(
                config.learning.clone(),
                store.memory_entries().await?,
            ),
        )),
        None => None,
    };
    // Closure checks of handled cases waiting in this database: the replayed footage is the
    // camera's next look at their places.
    let checks = match &stage {
        Some((stage, store, _)) => {
            let c = stage.checks();
            c.replace(store.waiting_checks().await?);
            Some(c)
        }
        None => None,
    };
    let config = Arc::new(config);
    let mut cams = Vec::new();
    for cam in config.cameras.iter().filter(|c| c.enabled) {
        let Some(path) = cam.footage_path().cloned() else {
            tracing::warn!(camera = %cam.id, "no footage to replay (set footage = \"file://...\"); skipped");
            continue;
        };
        let mut cam = cam.clone();
        cam.source = file_source(path, opts.loops);
        cams.push(cam);
    }
    if cams.is_empty() {
        bail!("no camera has footage to replay");
    }
    let results = play(
        config.clone(),
        cams,
        &detection,
        start_unix,
        stage.as_ref().map(|(s, ..)| s.clone()),
        PlayOptions {
            memory,
            checks,
            ..Default::default()
        },
    )
    .await?;

    let mut lines: Vec<(f64, String, u8, u64, String)> = Vec::new();
    let (mut n_caps, mut n_sup, mut frames) = (0, 0, 0);
    for (cam, r) in results {
        let (id, offset) = (cam.id, cam.utc_offset_s);
        frames += r.frames;
        for c in r.captures.values() {
            let k = &c.candidate;
            let learned = c.resembles.as_ref();
            if learned.is_some() {
                n_sup += 1;
                if !opts.suppressed {
                    continue;
                }
            } else {
                n_caps += 1;
            }
            let mut line = Line::new(
                if learned.is_some() {
                    "suppressed"
                } else {
                    "capture"
                },
                k,
                offset,
                start_unix,
            );
            line.aggregation = Some(c.aggregation);
            line.last_evidence_s = Some(round(c.last_evidence - start_unix, 3));
            if let Some(r) = learned {
                line.reason = Some(crate::ratelimit::SuppressionReason::ResemblesRejected);
                line.resembles = Some(&r.capture);
                line.similarity = Some(round(r.similarity as f64, 4));
            }
            lines.push((
                k.confirm,
                id.clone(),
                0,
                c.id,
                serde_json::to_string(&line)?,
            ));
        }
        for (i, c) in r.checks.iter().enumerate() {
            let mut v = serde_json::json!({
                "type": "check",
                "camera": id,
                "case_number": c.request.case_number,
                "rule": c.request.rule,
                "zone": c.request.zone,
                "t_s": round(c.t - start_unix, 3),
                "at": local_time(c.t, offset),
            });
            v["outcome"] = serde_json::to_value(&c.outcome)?["outcome"].clone();
            if let crate::closure::CheckOutcome::Unjudged { reason } = &c.outcome {
                v["reason"] = reason.clone().into();
            }
            lines.push((c.t, id.clone(), 2, i as u64, v.to_string()));
        }
        if opts.suppressed {
            for (i, s) in r.suppressed.iter().enumerate() {
                n_sup += 1;
                let k = &s.candidate;
                let mut line = Line::new("suppressed", k, offset, start_unix);
                line.reason = Some(s.reason);
                lines.push((
                    k.confirm,
                    id.clone(),
                    1,
                    i as u64,
                    serde_json::to_string(&line)?,
                ));
            }
        } else {
            n_sup += r.suppressed.len();
        }
    }
    lines.sort_by(|a, b| {
        a.0.total_cmp(&b.0)
            .then_with(|| a.1.cmp(&b.1))
            .then(a.2.cmp(&b.2))
            .then(a.3.cmp(&b.3))
    });
    for (.., l) in lines {
        writeln!(out, "{l}")?;
    }
    if let Some((stage, store, webhook)) = stage {
        // Every package (clips cut once their footage has played), then the queue, in
        // confirmation order: case numbers come out the same on every run.
        let stored = stage.flush().await?;
        tracing::info!(stored, "captures stored");
        if let Some(hook) = webhook {
            deliver_outbox(&store, Forwarder::new(hook)).await?;
        }
    }
    Ok((n_caps, n_sup, frames))
}

/// A recorded file played as fast as analysis takes it, `loops` times.
pub(crate) fn file_source(path: std::path::PathBuf, loops: u32) -> SourceKind {
    SourceKind::File {
        path,
        realtime: false,
        looped: loops > 1,
        max_passes: Some(loops.max(1)),
    }
}

/// How long a replay keeps trying to deliver its cases before leaving the rest in the outbox
/// (the next run, or `citywatch run`, goes on with them).
const DELIVERY_PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// Delivers the outbox until nothing is pending or patience runs out.
async fn deliver_outbox(store: &crate::store::Store, forwarder: Forwarder) -> anyhow::Result<()> {
    let until = std::time::Instant::now() + DELIVERY_PATIENCE;
    loop {
        let now = crate::core::to_unix(std::time::SystemTime::now());
        forwarder.deliver_due(store, now).await?;
        let pending = store.counts().await?.outbox_pending;
        if pending == 0 {
            return Ok(());
        }
        if std::time::Instant::now() >= until {
            tracing::warn!(pending, "cases not yet delivered stay in the outbox");
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
}
