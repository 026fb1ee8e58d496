//! `citywatch eval`: runs the pipeline over the recorded footage that truth files name, with
//! stream time driving every clock, and scores what it captured (event level) and what the
//! detector saw (frame level, where per-frame boxes are given). `--compare` scores a second
//! pipeline or model on the same footage in the same report.
//!
//! - [`truth`]: the truth format and its checks.
//! - [`metrics`]: matching and scores, pure functions.
//! - [`report`]: `report.json` (deterministic apart from its `run` block), plots, `report.html`.
//! - [`scenario`]: `citywatch scenario`, clips with exact truth made by compositing.

pub mod metrics;
pub mod negatives;
pub mod report;
pub mod review;
pub mod scenario;
pub mod truth;

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::{Context, bail};

use crate::config::{CameraConfig, PipelineConfig};
use metrics::{CaptureRec, EventRec, FrameDet, FrameGt, MatchParams};
use truth::{FrameTruth, Truth};

pub struct EvalOptions {
    pub pipeline: PathBuf,
    pub truth: Vec<PathBuf>,
    pub out: PathBuf,
    /// A second pipeline to score side by side.
    pub compare: Option<PathBuf>,
    /// Replaces the first pipeline's detector.
    pub model: Option<String>,
    /// Replaces the second variant's detector (with no `compare`: the first pipeline again).
    pub compare_model: Option<String>,
    pub matching: MatchParams,
    /// Show a progress bar (only on a terminal).
    pub progress: bool,
    /// Clips played at once (0: one per CPU core).
    pub jobs: usize,
    /// Simulated review: the truth confirms and rejects the first pass's captures, and a
    /// second pass (and a held-out one) plays with what that taught.
    pub review: bool,
}

/// The footage of one truth file, as played.
#[derive(Debug, Clone)]
pub struct Clip {
    pub truth: Truth,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub duration_s: f64,
    pub sha256: String,
    pub frames: Option<FrameTruth>,
}

/// One scored pipeline.
pub struct Variant {
    pub name: String,
    pub pipeline: PathBuf,
    pub model: crate::evidence::ModelInfo,
    pub captures: Vec<CaptureRec>,
    pub events: Vec<EventRec>,
    pub verdicts: Vec<metrics::Verdict>,
    /// Per class: the frame-level scores.
    pub classes: BTreeMap<String, metrics::ClassScores>,
    pub frames_evaluated: usize,
    pub frames_analysed: u64,
    pub inferences: u64,
    pub wall_s: f64,
    pub cpu_s: f64,
    /// With `--review`: the passes with learning.
    pub review: Option<review::ReviewOut>,
    /// Plate read rate and exact-match accuracy, when the truth gives plates.
    pub plates: Option<metrics::PlateScores>,
}

/// CPU seconds (user + system) this process has used so far, every thread included.
pub fn cpu_seconds() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut u: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut u) } != 0 {
        return 0.0;
    }
    let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    tv(u.ru_utime) + tv(u.ru_stime)
}

fn sha256_file(path: &Path) -> anyhow::Result<String> {
    use sha2::Digest;
    let mut f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut h = sha2::Sha256::new();
    std::io::copy(&mut f, &mut h)?;
    Ok(hex::encode(h.finalize()))
}

/// Loads and checks every truth file and its footage.
pub fn load_clips(paths: &[PathBuf]) -> anyhow::Result<Vec<Clip>> {
    let mut clips: Vec<Clip> = Vec::new();
    for p in paths {
        let t = Truth::load(p)?;
        if let Some(other) = clips.iter().find(|c| c.truth.clip == t.clip) {
            bail!(
                "{}: clip name {:?} (the file's stem) is also {}'s; rename one",
                p.display(),
                t.clip,
                other.truth.path.display()
            );
        }
        let info = scenario::footage_info(&t.footage)
            .map_err(|e| anyhow::anyhow!("{}: footage: {e}", p.display()))?;
        let frames = match &t.frames {
            None => None,
            Some(f) => Some(FrameTruth::load(f, (info.width, info.height))?),
        };
        clips.push(Clip {
            sha256: sha256_file(&t.footage)?,
            width: info.width,
            height: info.height,
            fps: info.fps,
            duration_s: info.duration_s,
            frames,
            truth: t,
        });
    }
    if clips.is_empty() {
        bail!("no truth files given (--truth FILE)");
    }
    Ok(clips)
}

/// The pipeline camera a clip is played as: the one the truth names, else the one whose
/// footage has the clip's file name. Returns that camera's id (the verdict memory is per
/// camera) and the camera as played, which takes the clip's name as its id.
fn camera_for(
    config: &PipelineConfig,
    pipeline: &Path,
    clip: &Clip,
) -> anyhow::Result<(String, CameraConfig)> {
    let t = &clip.truth;
    let found = match &t.camera {
        Some(id) => config.cameras.iter().find(|c| &c.id == id).ok_or_else(|| {
            anyhow::anyhow!(
                "{}: camera: {pipeline} has no camera {id:?}",
                t.path.display(),
                pipeline = pipeline.display()
            )
        })?,
        None => {
            let name = t.footage.file_name();
            config
                .cameras
                .iter()
                .find(|c| c.footage_path().and_then(|p| p.file_name()) == name)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "{}: footage: no camera of {} has footage named {:?}; name one with \"camera\"",
                        t.path.display(),
                        pipeline.display(),
                        name.map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
                    )
                })?
        }
    };
    let mut cam = found.clone();
    cam.id = t.clip.clone();
    cam.enabled = true;
    cam.url = format!("file://{}", t.footage.display());
    cam.footage = Some(t.footage.clone());
    cam.source = crate::replay::file_source(t.footage.clone(), 1);
    Ok((found.id.clone(), cam))
}

/// The report's order of captures: by clip, then confirmation time, then higher score.
fn report_order(a: &CaptureRec, b: &CaptureRec) -> std::cmp::Ordering {
    a.clip
        .cmp(&b.clip)
        .then(a.confirm_s.total_cmp(&b.confirm_s))
        .then(b.score.total_cmp(&a.score))
}

/// Every capture of a played pass (learned suppressions marked), in the report's order.
fn pass_captures(
    results: &[(CameraConfig, crate::replay::CameraResult)],
    start_unix: f64,
) -> Vec<review::PassCapture> {
    let mut out: Vec<review::PassCapture> = results
        .iter()
        .flat_map(|(cam, r)| {
            r.captures.values().map(|c| review::PassCapture {
                rec: capture_rec(&cam.id, c, start_unix),
                embedding: c.candidate.embedding.clone(),
                learned: c.is_learned_suppression(),
            })
        })
        .collect();
    out.sort_by(|a, b| report_order(&a.rec, &b.rec));
    out
}

fn round(v: f64) -> f64 {
    (v * 1e4).round() / 1e4
}

/// Plays every clip through one pipeline and scores it.
async fn run_variant(
    name: &str,
    pipeline: &Path,
    model: Option<&str>,
    clips: &[Clip],
    opts: &EvalOptions,
) -> anyhow::Result<Variant> {
    let mut config = PipelineConfig::load(pipeline).map_err(|e| anyhow::anyhow!("{e}"))?;
    if let Some(m) = model {
        config.detect.get_or_insert_with(Default::default).model = m.to_string();
    }
    let start_unix = config
        .replay
        .start_unix()
        .map_err(|e| anyhow::anyhow!("{}: replay.start: {e}", pipeline.display()))?;
    let Some(detection) = crate::pipeline::start_detection(&config, true)
        .map_err(|e| anyhow::anyhow!("{}: {e}", pipeline.display()))?
    else {
        bail!(
            "{}: eval needs a [detect] section: there is nothing to score without a detector",
            pipeline.display()
        );
    };
    let mut cams = Vec::new();
    // Clip → the pipeline camera it is played as.
    let mut camera_of: BTreeMap<String, String> = BTreeMap::new();
    for c in clips {
        let (source, cam) = camera_for(&config, pipeline, c)?;
        camera_of.insert(cam.id.clone(), source);
        cams.push(cam);
    }
    let events: Vec<EventRec> = clips
        .iter()
        .zip(&cams)
        .flat_map(|(c, cam)| {
            c.truth.events.iter().map(move |e| EventRec {
                clip: c.truth.clip.clone(),
                rule: e.rule,
                start_s: e.start_s,
                end_s: e.end_s,
                bbox: e.r#box,
                plate: e.plate.clone(),
                dwell_s: cam
                    .rules
                    .iter()
                    .find(|r| r.kind == e.rule)
                    .map(|r| r.dwell.as_secs_f64()),
            })
        })
        .collect();

    let total_ms: u64 = clips.iter().map(|c| (c.duration_s * 1000.0) as u64).sum();
    let played = Arc::new(AtomicU64::new(0));
    let bar = (opts.progress && std::io::stderr().is_terminal()).then(|| {
        let b = indicatif::ProgressBar::new(total_ms.max(1));
        b.set_style(
            indicatif::ProgressStyle::with_template(
                "{prefix} [{bar:40}] {percent:>3}% of the footage, {elapsed} elapsed, ~{eta} left",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        b.set_prefix(format!(
            "{name}: {}",
            config.detect.as_ref().map_or("", |d| &d.model)
        ));
        b
    });
    let ticker = bar.clone().map(|b| {
        let played = played.clone();
        tokio::spawn(async move {
            loop {
                b.set_position(played.load(Ordering::Relaxed));
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        })
    });
    let jobs = if opts.jobs == 0 {
        std::thread::available_parallelism().map_or(2, |n| n.get())
    } else {
        opts.jobs
    };
    let keep = clips.iter().any(|c| c.frames.is_some());
    let (wall0, cpu0) = (std::time::Instant::now(), cpu_seconds());
    let config = Arc::new(config);
    let results = crate::replay::play(
        config.clone(),
        cams.clone(),
        &detection,
        start_unix,
        None,
        crate::replay::PlayOptions {
            keep_detections: keep,
            progress: Some(played),
            jobs,
            memory: None,
            checks: None,
        },
    )
    .await?;
    let (wall_s, cpu_s) = (wall0.elapsed().as_secs_f64(), cpu_seconds() - cpu0);
    if let Some(t) = ticker {
        t.abort();
    }
    if let Some(b) = bar {
        b.finish_and_clear();
    }

    // The first pass plays without a memory: its captures are the variant's captures.
    let first_pass = pass_captures(&results, start_unix);
    let captures: Vec<CaptureRec> = first_pass.iter().map(|p| p.rec.clone()).collect();
    let (mut frames_analysed, mut inferences) = (0, 0);
    let mut dets: BTreeMap<String, Vec<FrameDet>> = BTreeMap::new();
    let mut gts: BTreeMap<String, Vec<FrameGt>> = BTreeMap::new();
    let mut frames_evaluated = 0;
    for (ci, ((_, r), clip)) in results.iter().zip(clips).enumerate() {
        frames_analysed += r.frames;
        inferences += r.inferences;
        let Some(ft) = &clip.frames else {
            continue;
        };
        for (pts, ds) in &r.detections {
            let idx = (pts * clip.fps).round() as u64;
            let Some(boxes) = ft.frames.get(&idx) else {
                continue;
            };
            frames_evaluated += 1;
            for g in boxes {
                gts.entry(g.class.clone()).or_default().push(FrameGt {
                    frame: (ci, idx),
                    class: g.class.clone(),
                    bbox: g.bbox,
                    ignore: g.ignore,
                });
            }
            for d in ds.iter().filter(|d| ft.classes.contains(&*d.label)) {
                dets.entry(d.label.to_string()).or_default().push(FrameDet {
                    frame: (ci, idx),
                    class: d.label.to_string(),
                    bbox: d.bbox.map(|v| v as f64),
                    score: d.score as f64,
                });
            }
        }
        for class in &ft.classes {
            gts.entry(class.clone()).or_default();
        }
    }
    let verdicts = metrics::match_events(&captures, &events, &opts.matching);
    let plates = metrics::plate_scores(&captures, &events, &verdicts);
    let classes = gts
        .iter()
        .map(|(class, g)| {
            let d = dets.get(class).map(Vec::as_slice).unwrap_or(&[]);
            (class.clone(), metrics::score_class(d, g))
        })
        .collect();
    let review = if opts.review {
        let taught = review::verdicts(&first_pass, &events, &opts.matching);
        let pass = |held_out: bool| {
            let memory = review::memory_for(&taught, &camera_of, &config.learning, held_out);
            learned_pass(&config, &cams, &detection, start_unix, jobs, memory)
        };
        let second = pass(false).await?;
        let held = if review::has_repeats(&camera_of) {
            Some(pass(true).await?)
        } else {
            None
        };
        let m = &opts.matching;
        let first = review::score_pass(&first_pass, &events, m);
        let second = review::score_pass(&second, &events, m);
        Some(review::ReviewOut {
            similarity: config.learning.similarity,
            confirmed: taught
                .iter()
                .filter(|(_, e)| e.said == crate::learn::Said::Confirmed)
                .count(),
            rejected: taught
                .iter()
                .filter(|(_, e)| e.said == crate::learn::Said::Rejected)
                .count(),
            false_removed_share: review::false_removed_share(&first, &second),
            first_pass: first,
            second_pass: second,
            held_out: held.map(|h| review::score_pass(&h, &events, m)),
        })
    } else {
        None
    };
    let model = detection.model.clone();
    detection.service.join(std::time::Duration::from_secs(5));
    Ok(Variant {
        name: name.to_string(),
        pipeline: pipeline.to_path_buf(),
        model,
        captures,
        events,
        verdicts,
        classes,
        frames_evaluated,
        frames_analysed,
        inferences,
        wall_s,
        cpu_s,
        review,
        plates,
    })
}

/// A capture as the scores see it: clip seconds, rounded.
fn capture_rec(clip: &str, c: &crate::ratelimit::Capture, start_unix: f64) -> CaptureRec {
    let k = &c.candidate;
    CaptureRec {
        clip: clip.to_string(),
        rule: k.rule,
        zone: k.zone.clone(),
        label: k.label.clone(),
        start_s: round(k.start - start_unix),
        confirm_s: round(k.confirm - start_unix),
        bbox: k.bbox.map(|v| round(v as f64)),
        score: round(k.score as f64),
        dwell_s: k.dwell_s,
        plate: k.plate.as_ref().map(|p| p.text.clone()),
    }
}

/// Plays the clips again with a verdict memory; every capture, learned suppressions marked.
async fn learned_pass(
    config: &Arc<PipelineConfig>,
    cams: &[CameraConfig],
    detection: &crate::pipeline::Detection,
    start_unix: f64,
    jobs: usize,
    memory: crate::learn::SharedMemory,
) -> anyhow::Result<Vec<review::PassCapture>> {
    let results = crate::replay::play(
        config.clone(),
        cams.to_vec(),
        detection,
        start_unix,
        None,
        crate::replay::PlayOptions {
            jobs,
            memory: Some(memory),
            ..Default::default()
        },
    )
    .await?;
    Ok(pass_captures(&results, start_unix))
}

/// Runs the evaluation and writes the report; returns the paths written.
pub async fn eval(opts: EvalOptions) -> anyhow::Result<report::Written> {
    let clips = load_clips(&opts.truth)?;
    let mut variants =
        vec![run_variant("A", &opts.pipeline, opts.model.as_deref(), &clips, &opts).await?];
    if opts.compare.is_some() || opts.compare_model.is_some() {
        let p = opts
            .compare
            .clone()
            .unwrap_or_else(|| opts.pipeline.clone());
        variants.push(run_variant("B", &p, opts.compare_model.as_deref(), &clips, &opts).await?);
    }
    report::write(&opts, &clips, &variants)
}
