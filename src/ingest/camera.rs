//! One camera: a dedicated thread that builds the pipeline, pulls frames, watches for silence
//! and reconnects with backoff. A camera's failure stays inside its thread.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;
use tokio::sync::watch;
use tracing::{debug, info, info_span, warn};

use super::backoff::{Backoff, BackoffPolicy};
use super::error::{IngestError, IngestErrorKind};
use super::frame::{CameraId, Frame, FrameData};
use super::health::{CameraHealth, HealthState};
use super::pipeline::{self, NO_VIDEO_MESSAGE};
use super::queue::{FrameReceiver, FrameSender, FullPolicy, PushError, frame_queue};
use crate::config::{CameraConfig, IngestDefaults, SourceKind};
use crate::core::{Clock, Shutdown};

/// A running camera: its frames, its health, and its thread.
pub struct CameraHandle {
    pub id: CameraId,
    pub health: watch::Receiver<CameraHealth>,
    frames: FrameReceiver,
    thread: Option<JoinHandle<()>>,
}

impl CameraHandle {
    /// Splits the handle so frames can be consumed on one task while another holds the rest.
    pub fn into_parts(self) -> (FrameReceiver, CameraThread) {
        (
            self.frames,
            CameraThread {
                id: self.id,
                health: self.health,
                thread: self.thread,
            },
        )
    }

    pub async fn next_frame(&mut self) -> Option<Frame> {
        self.frames.recv().await
    }
}

/// The non-frame half of a [`CameraHandle`].
pub struct CameraThread {
    pub id: CameraId,
    pub health: watch::Receiver<CameraHealth>,
    thread: Option<JoinHandle<()>>,
}

impl CameraThread {
    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }

    pub fn join(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl super::FrameSource for CameraHandle {
    fn camera(&self) -> &str {
        &self.id
    }

    async fn next_frame(&mut self) -> Option<Frame> {
        self.frames.recv().await
    }
}

/// Everything a camera thread needs.
struct Ctx {
    cam: CameraConfig,
    ingest: IngestDefaults,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
    health: watch::Sender<CameraHealth>,
    frames: FrameSender,
    id: CameraId,
    redacted: String,
    /// The encoded-stream ring for evidence clips, if the camera keeps one.
    ring: Option<crate::evidence::ring::PacketRing>,
}

/// Starts a camera on its own thread.
pub fn spawn_camera(
    cam: &CameraConfig,
    ingest: &IngestDefaults,
    backoff: BackoffPolicy,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
) -> CameraHandle {
    spawn_camera_with_ring(cam, ingest, backoff, clock, shutdown, None)
}

/// Starts a camera that also keeps its encoded stream in `ring` (evidence clips). The ring
/// is ended when the camera thread stops.
pub fn spawn_camera_with_ring(
    cam: &CameraConfig,
    ingest: &IngestDefaults,
    backoff: BackoffPolicy,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
    ring: Option<crate::evidence::ring::PacketRing>,
) -> CameraHandle {
    let redacted = cam.redacted_url();
    let (health_tx, health_rx) = watch::channel(CameraHealth::new(
        &cam.id,
        &cam.name,
        redacted.clone(),
        clock.now(),
    ));
    let policy = match cam.source {
        SourceKind::Rtsp { .. } => FullPolicy::DropOldest,
        SourceKind::File { .. } => FullPolicy::Block,
    };
    let (tx, rx) = frame_queue(ingest.queue_frames, policy);
    let id: CameraId = cam.id.as_str().into();
    let seed = cam.id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    let ctx = Ctx {
        cam: cam.clone(),
        ingest: ingest.clone(),
        clock,
        shutdown,
        health: health_tx,
        frames: tx,
        id: id.clone(),
        redacted,
        ring,
    };
    let thread = std::thread::Builder::new()
        .name(format!("cam-{}", cam.id))
        .spawn(move || {
            let span = info_span!("camera", id = %ctx.id);
            let _enter = span.enter();
            let ring = ctx.ring.clone();
            camera_loop(ctx, Backoff::new(backoff, seed));
            if let Some(r) = ring {
                r.end();
            }
        })
        .expect("spawn camera thread");
    CameraHandle {
        id,
        health: health_rx,
        frames: rx,
        thread: Some(thread),
    }
}

/// How one pipeline run ended.
enum Outcome {
    Shutdown,
    ReceiverGone,
    /// A recorded file reached its end; `duration` of stream time was played.
    FileEnd {
        duration: Duration,
    },
    Failed(IngestError),
}

fn camera_loop(ctx: Ctx, mut backoff: Backoff) {
    let mut seq = 0u64;
    let mut pts_offset = Duration::ZERO;
    let (is_file, looped, max_passes) = match &ctx.cam.source {
        SourceKind::File {
            looped, max_passes, ..
        } => (true, *looped, *max_passes),
        SourceKind::Rtsp { .. } => (false, false, None),
    };
    let mut passes = 0u32;
    info!(url = %ctx.redacted, fps = ctx.cam.analysis_fps, "camera starting");
    let final_state = loop {
        if ctx.shutdown.is_triggered() {
            break HealthState::Stopped;
        }
        let now = ctx.clock.now();
        ctx.health.send_modify(|h| {
            h.set_state(HealthState::Connecting, now);
            h.retry_in_s = None;
        });
        match run_once(&ctx, &mut seq, pts_offset, &mut backoff) {
            Outcome::Shutdown | Outcome::ReceiverGone => break HealthState::Stopped,
            Outcome::FileEnd { duration }
                if looped && max_passes.is_none_or(|m| passes + 1 < m) =>
            {
                passes += 1;
                pts_offset += duration;
                debug!(offset_s = pts_offset.as_secs_f64(), "file looped");
            }
            Outcome::FileEnd { .. } => {
                info!("file played to its end");
                break HealthState::Finished;
            }
            Outcome::Failed(err) => {
                let permanent = err.kind.is_permanent();
                if is_file && permanent {
                    warn!(error = %err, "camera failed");
                    let now = ctx.clock.now();
                    ctx.health.send_modify(|h| {
                        h.last_error = Some(err.to_string());
                        h.set_state(HealthState::Failed, now);
                    });
                    return;
                }
                let (state, delay) = if permanent {
                    (HealthState::Failed, backoff.max_delay())
                } else {
                    (HealthState::BackingOff, backoff.next_delay())
                };
                warn!(error = %err, retry_in_s = delay.as_secs_f64(), "camera disconnected");
                let now = ctx.clock.now();
                ctx.health.send_modify(|h| {
                    h.last_error = Some(err.to_string());
                    h.reconnects += 1;
                    if err.kind == IngestErrorKind::Watchdog {
                        h.watchdog_restarts += 1;
                    }
                    h.retry_in_s = Some(delay.as_secs_f64());
                    h.set_state(state, now);
                });
                if ctx.shutdown.sleep(delay) {
                    break HealthState::Stopped;
                }
            }
        }
    };
    let now = ctx.clock.now();
    ctx.health.send_modify(|h| h.set_state(final_state, now));
    info!(state = final_state.as_str(), "camera stopped");
}

fn error(ctx: &Ctx, kind: IngestErrorKind, detail: impl Into<String>) -> IngestError {
    let mut detail = detail.into();
    // GStreamer's texts may quote the URL; make sure no password rides along.
    if let (_, _, Some(pass)) = pipeline::split_credentials(&ctx.cam.url)
        && !pass.is_empty()
    {
        detail = detail.replace(&pass, "***");
    }
    IngestError {
        camera: ctx.cam.id.clone(),
        url: ctx.redacted.clone(),
        kind,
        detail: crate::core::redact_url(&detail),
    }
}

fn run_once(ctx: &Ctx, seq: &mut u64, pts_offset: Duration, backoff: &mut Backoff) -> Outcome {
    if let SourceKind::File { path, .. } = &ctx.cam.source
        && !path.exists()
    {
        return Outcome::Failed(error(
            ctx,
            IngestErrorKind::FileMissing,
            format!("{} does not exist", path.display()),
        ));
    }
    let built = match pipeline::build(
        &ctx.cam,
        &ctx.ingest,
        ctx.cam.keyframe_only,
        ctx.ring.clone().map(|r| (r, pts_offset)),
    ) {
        Ok(b) => b,
        Err(e) => {
            let kind = if e.starts_with("cannot open") {
                IngestErrorKind::FileMissing
            } else {
                IngestErrorKind::Pipeline
            };
            return Outcome::Failed(error(ctx, kind, e));
        }
    };
    let pipeline = &built.pipeline;
    let bus = pipeline.bus().expect("pipeline has a bus");
    let teardown = |outcome: Outcome| {
        if let Err(e) = pipeline.set_state(gst::State::Null) {
            warn!(error = %e, "pipeline did not stop cleanly");
        }
        outcome
    };

    if pipeline.set_state(gst::State::Playing).is_err() {
        // The bus usually says why.
        let why = bus
            .timed_pop_filtered(
                gst::ClockTime::from_mseconds(500),
                &[gst::MessageType::Error],
            )
            .map(|m| classify(ctx, &m))
            .unwrap_or_else(|| {
                error(
                    ctx,
                    IngestErrorKind::Pipeline,
                    "the pipeline refused to start",
                )
            });
        return teardown(Outcome::Failed(why));
    }

    let started = Instant::now();
    let mut last_frame: Option<Instant> = None;
    let mut last_pts = Duration::ZERO;
    let connect_timeout = crate::config::secs(ctx.ingest.connect_timeout_s);
    loop {
        if ctx.shutdown.is_triggered() {
            return teardown(Outcome::Shutdown);
        }
        if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Eos, gst::MessageType::Error]) {
            match msg.view() {
                gst::MessageView::Eos(_) => {
                    if matches!(ctx.cam.source, SourceKind::File { .. }) {
                        let duration = pipeline
                            .query_duration::<gst::ClockTime>()
                            .map(|d| Duration::from_nanos(d.nseconds()))
                            .filter(|d| !d.is_zero())
                            .unwrap_or(last_pts + Duration::from_millis(1));
                        return teardown(Outcome::FileEnd { duration });
                    }
                    return teardown(Outcome::Failed(error(
                        ctx,
                        IngestErrorKind::EndOfStream,
                        "the server ended the stream",
                    )));
                }
                _ => return teardown(Outcome::Failed(classify(ctx, &msg))),
            }
        }

        match built
            .appsink
            .try_pull_sample(gst::ClockTime::from_mseconds(100))
        {
            Some(sample) => {
                let Some(frame) = to_frame(ctx, &built, &sample, *seq, pts_offset) else {
                    continue;
                };
                if let Some(p) = frame.pts {
                    last_pts = p.saturating_sub(pts_offset);
                }
                *seq += 1;
                let first = last_frame.is_none();
                let keyframe_only = built.sampler.lock().expect("sampler").keyframe_only();
                let wall = frame.wall;
                let dropped = match ctx.frames.push(frame, &ctx.shutdown) {
                    Ok(d) => d,
                    Err(PushError::Shutdown) => return teardown(Outcome::Shutdown),
                    Err(PushError::Disconnected) => return teardown(Outcome::ReceiverGone),
                };
                last_frame = Some(Instant::now());
                if first {
                    backoff.reset();
                    info!(keyframe_only, "streaming");
                }
                ctx.health.send_modify(|h| {
                    h.set_state(HealthState::Streaming, wall);
                    h.frames += 1;
                    h.frames_dropped += dropped;
                    h.last_frame_at = Some(wall);
                    h.keyframe_only = keyframe_only;
                    h.retry_in_s = None;
                });
            }
            None => {
                let (since, limit) = match last_frame {
                    Some(t) => (t, ctx.cam.watchdog),
                    None => (started, connect_timeout.max(ctx.cam.watchdog)),
                };
                let silent = since.elapsed();
                if silent > limit {
                    let what = if last_frame.is_some() {
                        "no frame"
                    } else {
                        "no first frame"
                    };
                    return teardown(Outcome::Failed(error(
                        ctx,
                        IngestErrorKind::Watchdog,
                        format!("{what} for {:.1} s", silent.as_secs_f64()),
                    )));
                }
            }
        }
    }
}

fn to_frame(
    ctx: &Ctx,
    built: &pipeline::Built,
    sample: &gst::Sample,
    seq: u64,
    pts_offset: Duration,
) -> Option<Frame> {
    let caps = sample.caps()?;
    let info = gst_video::VideoInfo::from_caps(caps).ok()?;
    let buffer = sample.buffer_owned()?;
    let raw_pts = buffer.pts().map(|t| t.nseconds());
    let keyframe =
        raw_pts.is_some_and(|p| built.keyframes.lock().expect("keyframe log").contains(p));
    let pts = raw_pts.map(|p| Duration::from_nanos(p) + pts_offset);
    let mapped = buffer.into_mapped_buffer_readable().ok()?;
    Some(Frame::new(
        ctx.id.clone(),
        seq,
        pts,
        ctx.clock.now(),
        keyframe,
        info.width(),
        info.height(),
        info.stride()[0] as usize,
        FrameData::Gst(mapped),
    ))
}

/// Maps a GStreamer error message to an ingest error kind.
fn classify(ctx: &Ctx, msg: &gst::Message) -> IngestError {
    let gst::MessageView::Error(err) = msg.view() else {
        return error(ctx, IngestErrorKind::Pipeline, "unexpected message");
    };
    let e = err.error();
    let debug = err.debug().map(|d| d.to_string()).unwrap_or_default();
    let text = e.message().to_string();
    let detail = if debug.contains(NO_VIDEO_MESSAGE) {
        NO_VIDEO_MESSAGE.to_string()
    } else if debug.is_empty() {
        text.clone()
    } else {
        // GStreamer's debug text starts with a source location; the last line says most.
        let tail = debug.lines().last().unwrap_or("").trim();
        format!("{text} ({tail})")
    };
    let is_file = matches!(ctx.cam.source, SourceKind::File { .. });
    let kind = if text.contains(NO_VIDEO_MESSAGE) || debug.contains(NO_VIDEO_MESSAGE) {
        IngestErrorKind::NoVideo
    } else if let Some(r) = e.kind::<gst::ResourceError>() {
        match r {
            gst::ResourceError::NotAuthorized => IngestErrorKind::Unauthorized,
            gst::ResourceError::NotFound if is_file => IngestErrorKind::FileMissing,
            gst::ResourceError::NotFound => IngestErrorKind::NotFound,
            _ if debug.contains("401") => IngestErrorKind::Unauthorized,
            _ if debug.contains("404") => IngestErrorKind::NotFound,
            _ => IngestErrorKind::Unreachable,
        }
    } else if e.kind::<gst::StreamError>().is_some() || e.kind::<gst::CoreError>().is_some() {
        if is_file {
            IngestErrorKind::Corrupt
        } else {
            IngestErrorKind::Unreachable
        }
    } else {
        IngestErrorKind::Pipeline
    };
    error(ctx, kind, detail)
}
