//! One camera: a dedicated thread that opens the stream, pulls frames, watches for silence
//! and reconnects with backoff. A camera's failure stays inside its thread.
//!
//! The loop meets the outside world at two edges, so its decisions (reconnect, backoff,
//! watchdog, health) are unit-tested on fakes, in milliseconds of test time:
//! - an [`Opener`] makes one connection attempt and returns a [`Session`] that yields frames
//!   ([`GstOpener`] builds the GStreamer pipeline);
//! - time comes from the injected clock (the watchdog measures silence on it), and a
//!   [`Waiter`] waits between attempts (live: the shutdown signal's sleep, which wakes early
//!   when shutdown starts).

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_video as gst_video;
use tokio::sync::watch;
use tracing::{debug, info, info_span, warn};

use super::error::{IngestError, IngestErrorKind};
use super::frame::{CameraId, Frame, FrameData};
use super::health::{CameraHealth, HealthState};
use super::pipeline::{self, NO_VIDEO_MESSAGE};
use super::queue::{FrameReceiver, FrameSender, FullPolicy, PushError, frame_queue};
use crate::config::{CameraConfig, IngestDefaults, SourceKind, Transport};
use crate::core::{Backoff, BackoffPolicy, Clock, Shutdown};

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

/// What one poll of a [`Session`] gave.
pub enum Pulled {
    /// A decoded frame. Its `seq` is set by the camera loop.
    Frame(Frame),
    /// Nothing within the poll interval.
    Idle,
    /// A recorded file reached its end; `duration` of stream time was played.
    FileEnd { duration: Duration },
    /// The stream ended or broke.
    Failed(IngestError),
}

/// One connection to a camera, from open until dropped (dropping tears it down).
pub trait Session {
    /// Waits up to one poll interval for the next frame or the end of the stream.
    fn pull(&mut self) -> Pulled;
    /// Whether the session decodes only keyframes (decided per stream).
    fn keyframe_only(&self) -> bool;
    /// The RTP transport this session asked for and got (`tcp` or `udp`); none for files.
    fn transport(&self) -> Option<&'static str> {
        None
    }
    /// Due frames shed so far under overload, and whether the camera is shedding now;
    /// none for a camera that never sheds (files).
    fn shedding(&self) -> Option<(u64, bool)> {
        None
    }
}

/// Makes one connection attempt to a camera.
pub trait Opener: Send + 'static {
    /// Opens the stream; its timestamps are shifted by `pts_offset` (looped files).
    fn open(&mut self, pts_offset: Duration) -> Result<Box<dyn Session + '_>, IngestError>;
    /// Called once when the camera stops for good.
    fn close(&mut self) {}
}

/// Waits between connection attempts. Returns true when shutdown came first.
pub trait Waiter: Send + 'static {
    fn wait(&mut self, delay: Duration) -> bool;
}

/// Live waiting: the shutdown signal's sleep.
impl Waiter for Shutdown {
    fn wait(&mut self, delay: Duration) -> bool {
        self.sleep(delay)
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
    redacted: String,
}

/// Starts a camera on its own thread.
pub fn spawn_camera(
    cam: &CameraConfig,
    ingest: &IngestDefaults,
    backoff: BackoffPolicy,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
) -> CameraHandle {
    spawn_camera_with_ring(cam, ingest, backoff, clock, shutdown, None, None)
}

/// Starts a camera that also keeps its encoded stream in `ring` (evidence clips), and, when
/// `shed` is given and the camera is live, sheds due frames fairly while analysis is behind.
/// The ring is ended when the camera thread stops.
pub fn spawn_camera_with_ring(
    cam: &CameraConfig,
    ingest: &IngestDefaults,
    backoff: BackoffPolicy,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
    ring: Option<crate::ingest::ring::PacketRing>,
    shed: Option<Arc<crate::ingest::shed::CameraShed>>,
) -> CameraHandle {
    let mut opener = GstOpener::new(cam, ingest, clock.clone(), ring);
    let shed = shed.filter(|_| matches!(cam.source, SourceKind::Rtsp { .. }));
    opener.shed = shed.clone();
    let handle = spawn_camera_with(
        cam,
        ingest,
        backoff,
        clock,
        shutdown.clone(),
        opener,
        shutdown,
    );
    if let Some(s) = shed {
        // A camera has room for a frame while its queue holds few enough.
        s.watch(handle.frames.waiting_probe(), handle.frames.capacity());
    }
    handle
}

/// Starts a camera whose streams come from `opener`, waiting between attempts with `waiter`.
pub fn spawn_camera_with(
    cam: &CameraConfig,
    ingest: &IngestDefaults,
    backoff: BackoffPolicy,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
    opener: impl Opener,
    waiter: impl Waiter,
) -> CameraHandle {
    let (ctx, id, health_rx, rx) = context(cam, ingest, clock, shutdown);
    let seed = seed(&cam.id);
    let thread = std::thread::Builder::new()
        .name(format!("cam-{}", cam.id))
        .spawn(move || {
            let span = info_span!("camera", id = %ctx.cam.id);
            let _enter = span.enter();
            let (mut opener, mut waiter) = (opener, waiter);
            camera_loop(&ctx, Backoff::new(backoff, seed), &mut opener, &mut waiter);
            opener.close();
        })
        .expect("spawn camera thread");
    CameraHandle {
        id,
        health: health_rx,
        frames: rx,
        thread: Some(thread),
    }
}

/// A camera's jitter seed: the same camera backs off the same way on every run.
fn seed(id: &str) -> u64 {
    id.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    })
}

fn context(
    cam: &CameraConfig,
    ingest: &IngestDefaults,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
) -> (Ctx, CameraId, watch::Receiver<CameraHealth>, FrameReceiver) {
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
    let ctx = Ctx {
        cam: cam.clone(),
        ingest: ingest.clone(),
        clock,
        shutdown,
        health: health_tx,
        frames: tx,
        redacted,
    };
    (ctx, id, health_rx, rx)
}

/// How one session ended.
enum Outcome {
    Shutdown,
    ReceiverGone,
    /// A recorded file reached its end; `duration` of stream time was played.
    FileEnd {
        duration: Duration,
    },
    Failed(IngestError),
}

fn camera_loop(ctx: &Ctx, mut backoff: Backoff, opener: &mut dyn Opener, waiter: &mut dyn Waiter) {
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
        let outcome = match opener.open(pts_offset) {
            Ok(mut session) => run_session(ctx, session.as_mut(), &mut seq, &mut backoff),
            Err(e) => Outcome::Failed(e),
        };
        match outcome {
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
                if waiter.wait(delay) {
                    break HealthState::Stopped;
                }
            }
        }
    };
    let now = ctx.clock.now();
    ctx.health.send_modify(|h| h.set_state(final_state, now));
    info!(state = final_state.as_str(), "camera stopped");
}

/// Pulls one session's frames until it ends, the watchdog trips, or shutdown.
fn run_session(
    ctx: &Ctx,
    session: &mut dyn Session,
    seq: &mut u64,
    backoff: &mut Backoff,
) -> Outcome {
    let started = ctx.clock.now();
    let mut last_frame: Option<SystemTime> = None;
    let connect_timeout = crate::config::secs(ctx.ingest.connect_timeout_s);
    loop {
        if ctx.shutdown.is_triggered() {
            return Outcome::Shutdown;
        }
        match session.pull() {
            Pulled::Frame(mut frame) => {
                frame.seq = *seq;
                *seq += 1;
                let first = last_frame.is_none();
                let keyframe_only = session.keyframe_only();
                let shedding = session.shedding();
                // A session keeps its transport: health learns it with the first frame.
                let transport = first.then(|| session.transport());
                let wall = frame.wall;
                let dropped = match ctx.frames.push(frame, &ctx.shutdown) {
                    Ok(d) => d,
                    Err(PushError::Shutdown) => return Outcome::Shutdown,
                    Err(PushError::Disconnected) => return Outcome::ReceiverGone,
                };
                last_frame = Some(ctx.clock.now());
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
                    if let Some((shed, degraded)) = shedding {
                        h.frames_shed = shed;
                        h.degraded = degraded;
                    }
                    if let Some(t) = transport {
                        h.transport = t.map(str::to_string);
                    }
                    h.retry_in_s = None;
                });
            }
            Pulled::Idle => {
                let (since, limit) = match last_frame {
                    Some(t) => (t, ctx.cam.watchdog),
                    None => (started, connect_timeout.max(ctx.cam.watchdog)),
                };
                let silent = ctx.clock.now().duration_since(since).unwrap_or_default();
                if silent > limit {
                    let what = if last_frame.is_some() {
                        "no frame"
                    } else {
                        "no first frame"
                    };
                    return Outcome::Failed(error(
                        &ctx.cam,
                        &ctx.redacted,
                        IngestErrorKind::Watchdog,
                        format!("{what} for {:.1} s", silent.as_secs_f64()),
                    ));
                }
            }
            Pulled::FileEnd { duration } => return Outcome::FileEnd { duration },
            Pulled::Failed(e) => return Outcome::Failed(e),
        }
    }
}

fn error(
    cam: &CameraConfig,
    redacted: &str,
    kind: IngestErrorKind,
    detail: impl Into<String>,
) -> IngestError {
    let mut detail = detail.into();
    // GStreamer's texts may quote the URL; make sure no password rides along.
    if let (_, _, Some(pass)) = pipeline::split_credentials(&cam.url)
        && !pass.is_empty()
    {
        detail = detail.replace(&pass, "***");
    }
    IngestError {
        camera: cam.id.clone(),
        url: redacted.to_string(),
        kind,
        detail: crate::core::redact_url(&detail),
    }
}

/// Opens a camera's GStreamer pipeline (RTSP or a recorded file).
pub struct GstOpener {
    cam: CameraConfig,
    ingest: IngestDefaults,
    redacted: String,
    id: CameraId,
    clock: Arc<dyn Clock>,
    /// The encoded-stream ring for evidence clips, if the camera keeps one.
    ring: Option<crate::ingest::ring::PacketRing>,
    /// The server refused the last session's RTP transport: the next open asks for the
    /// other (TCP first by default, then UDP, and back).
    refused: std::cell::Cell<bool>,
    /// Fair shedding under overload (live cameras only).
    shed: Option<Arc<crate::ingest::shed::CameraShed>>,
}

impl GstOpener {
    pub fn new(
        cam: &CameraConfig,
        ingest: &IngestDefaults,
        clock: Arc<dyn Clock>,
        ring: Option<crate::ingest::ring::PacketRing>,
    ) -> Self {
        Self {
            cam: cam.clone(),
            ingest: ingest.clone(),
            redacted: cam.redacted_url(),
            id: cam.id.as_str().into(),
            clock,
            ring,
            refused: std::cell::Cell::new(false),
            shed: None,
        }
    }

    fn error(&self, kind: IngestErrorKind, detail: impl Into<String>) -> IngestError {
        error(&self.cam, &self.redacted, kind, detail)
    }
}

impl Opener for GstOpener {
    fn open(&mut self, pts_offset: Duration) -> Result<Box<dyn Session + '_>, IngestError> {
        if self.refused.take()
            && let SourceKind::Rtsp { transport } = &mut self.cam.source
        {
            let other = match transport {
                Transport::Tcp => Transport::Udp,
                Transport::Udp => Transport::Tcp,
            };
            tracing::info!(camera = %self.id, refused = ?transport, trying = ?other, "the camera server refused the RTP transport: trying the other");
            *transport = other;
        }
        if let SourceKind::File { path, .. } = &self.cam.source
            && !path.exists()
        {
            return Err(self.error(
                IngestErrorKind::FileMissing,
                format!("{} does not exist", path.display()),
            ));
        }
        let built = match pipeline::build(
            &self.cam,
            &self.ingest,
            self.cam.keyframe_only,
            self.ring.clone().map(|r| (r, pts_offset)),
        ) {
            Ok(b) => b,
            Err(e) => {
                let kind = if e.starts_with("cannot open") {
                    IngestErrorKind::FileMissing
                } else {
                    IngestErrorKind::Pipeline
                };
                return Err(self.error(kind, e));
            }
        };
        built.sampler.lock().set_shed(self.shed.clone());
        let bus = built.pipeline.bus().expect("pipeline has a bus");
        let session = GstSession {
            opener: self,
            built,
            bus,
            pts_offset,
            last_pts: Duration::ZERO,
        };
        if session
            .built
            .pipeline
            .set_state(gst::State::Playing)
            .is_err()
        {
            // The bus usually says why.
            let why = session
                .bus
                .timed_pop_filtered(
                    gst::ClockTime::from_mseconds(500),
                    &[gst::MessageType::Error],
                )
                .map(|m| session.classify(&m))
                .unwrap_or_else(|| {
                    session
                        .opener
                        .error(IngestErrorKind::Pipeline, "the pipeline refused to start")
                });
            // (Dropping the session sets the pipeline to Null.)
            return Err(why);
        }
        Ok(Box::new(session))
    }

    fn close(&mut self) {
        if let Some(r) = &self.ring {
            r.end();
        }
    }
}

/// One playing GStreamer pipeline.
struct GstSession<'a> {
    opener: &'a GstOpener,
    built: pipeline::Built,
    bus: gst::Bus,
    pts_offset: Duration,
    last_pts: Duration,
}

impl Drop for GstSession<'_> {
    fn drop(&mut self) {
        // On the way to NULL the sinks pass through PAUSED, where a sink that is handed a
        // buffer waits for PLAYING. The thread pushing it can be rtspsrc's own reading
        // thread (RTSP over TCP: no jitter-buffer thread between them), which holds a lock
        // rtspsrc's state change needs. Flushing the sinks first makes every push return.
        let mut sinks = self.built.pipeline.iterate_sinks();
        while let Ok(Some(sink)) = sinks.next() {
            for pad in sink.sink_pads() {
                pad.send_event(gst::event::FlushStart::new());
            }
        }
        if let Err(e) = self.built.pipeline.set_state(gst::State::Null) {
            warn!(error = %e, "pipeline did not stop cleanly");
        }
    }
}

impl Session for GstSession<'_> {
    fn pull(&mut self) -> Pulled {
        if let Some(msg) = self
            .bus
            .pop_filtered(&[gst::MessageType::Eos, gst::MessageType::Error])
        {
            return match msg.view() {
                gst::MessageView::Eos(_) => {
                    if matches!(self.opener.cam.source, SourceKind::File { .. }) {
                        let duration = self
                            .built
                            .pipeline
                            .query_duration::<gst::ClockTime>()
                            .map(|d| Duration::from_nanos(d.nseconds()))
                            .filter(|d| !d.is_zero())
                            .unwrap_or(self.last_pts + Duration::from_millis(1));
                        Pulled::FileEnd { duration }
                    } else {
                        Pulled::Failed(
                            self.opener
                                .error(IngestErrorKind::EndOfStream, "the server ended the stream"),
                        )
                    }
                }
                _ => Pulled::Failed(self.classify(&msg)),
            };
        }
        let Some(sample) = self
            .built
            .appsink
            .try_pull_sample(gst::ClockTime::from_mseconds(100))
        else {
            return Pulled::Idle;
        };
        match self.to_frame(&sample) {
            Some(frame) => {
                if let Some(p) = frame.pts {
                    self.last_pts = p.saturating_sub(self.pts_offset);
                }
                Pulled::Frame(frame)
            }
            // A sample without a usable buffer: as if nothing came.
            None => Pulled::Idle,
        }
    }

    fn keyframe_only(&self) -> bool {
        self.built.sampler.lock().keyframe_only()
    }

    fn shedding(&self) -> Option<(u64, bool)> {
        self.opener.shed.as_ref().map(|s| (s.shed(), s.degraded()))
    }

    fn transport(&self) -> Option<&'static str> {
        match &self.opener.cam.source {
            SourceKind::Rtsp {
                transport: Transport::Tcp,
            } => Some("tcp"),
            SourceKind::Rtsp {
                transport: Transport::Udp,
            } => Some("udp"),
            _ => None,
        }
    }
}

impl GstSession<'_> {
    fn to_frame(&self, sample: &gst::Sample) -> Option<Frame> {
        let caps = sample.caps()?;
        let info = gst_video::VideoInfo::from_caps(caps).ok()?;
        let buffer = sample.buffer_owned()?;
        let raw_pts = buffer.pts().map(|t| t.nseconds());
        let keyframe = raw_pts.is_some_and(|p| self.built.keyframes.lock().contains(p));
        let pts = raw_pts.map(|p| Duration::from_nanos(p) + self.pts_offset);
        let mapped = buffer.into_mapped_buffer_readable().ok()?;
        Some(Frame::new(
            self.opener.id.clone(),
            0,
            pts,
            self.opener.clock.now(),
            keyframe,
            info.width(),
            info.height(),
            info.stride()[0] as usize,
            FrameData::Gst(mapped),
        ))
    }

    /// Maps a GStreamer error message to an ingest error kind.
    fn classify(&self, msg: &gst::Message) -> IngestError {
        let o = self.opener;
        let gst::MessageView::Error(err) = msg.view() else {
            return o.error(IngestErrorKind::Pipeline, "unexpected message");
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
        let is_file = matches!(o.cam.source, SourceKind::File { .. });
        // rtspsrc reports a server's "461 Unsupported transport" as a missing plug-in, from
        // where it sets the streams up.
        let refused = matches!(
            e.kind::<gst::CoreError>(),
            Some(gst::CoreError::MissingPlugin)
        ) && debug.contains("setup_streams");
        let detail = if refused {
            let asked = match &o.cam.source {
                SourceKind::Rtsp { transport } => format!("{transport:?}").to_uppercase(),
                _ => "the".into(),
            };
            o.refused.set(true);
            format!("the server refused RTP over {asked} (RTSP 461 Unsupported transport)")
        } else {
            detail
        };
        let kind = if refused {
            IngestErrorKind::TransportRefused
        } else if text.contains(NO_VIDEO_MESSAGE) || debug.contains(NO_VIDEO_MESSAGE) {
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
        o.error(kind, detail)
    }
}

#[cfg(test)]
mod tests {
    //! The camera loop on a fake opener and a manual clock: every delay and every watchdog
    //! trip is decided in test time, with no real sleep.
    use parking_lot::Mutex;
    use std::collections::VecDeque;

    use super::*;
    use crate::core::ManualClock;

    const POLL: Duration = Duration::from_millis(100);

    /// What a scripted session does: deliver `frames` frames, then go silent, end the file,
    /// or fail with `kind`.
    #[derive(Clone, Copy)]
    enum Then {
        Silent,
        FileEnd,
        Fail(IngestErrorKind),
    }

    /// One scripted connection attempt.
    #[derive(Clone, Copy)]
    enum Attempt {
        Refused(IngestErrorKind),
        Stream(u32, Then),
    }

    /// Opens the scripted attempts in order; past the script, triggers shutdown.
    struct FakeOpener {
        script: VecDeque<Attempt>,
        clock: Arc<ManualClock>,
        shutdown: Shutdown,
        opened: Arc<Mutex<Vec<(SystemTime, Duration)>>>,
    }

    struct FakeSession {
        left: u32,
        then: Then,
        clock: Arc<ManualClock>,
    }

    fn err(kind: IngestErrorKind) -> IngestError {
        IngestError {
            camera: "cam".into(),
            url: "rtsp://cam/".into(),
            kind,
            detail: "scripted".into(),
        }
    }

    impl Opener for FakeOpener {
        fn open(&mut self, pts_offset: Duration) -> Result<Box<dyn Session + '_>, IngestError> {
            self.opened.lock().push((self.clock.now(), pts_offset));
            match self.script.pop_front() {
                None => {
                    self.shutdown.trigger();
                    Err(err(IngestErrorKind::Unreachable))
                }
                Some(Attempt::Refused(kind)) => Err(err(kind)),
                Some(Attempt::Stream(frames, then)) => Ok(Box::new(FakeSession {
                    left: frames,
                    then,
                    clock: self.clock.clone(),
                })),
            }
        }
    }

    impl Session for FakeSession {
        fn pull(&mut self) -> Pulled {
            // Each poll takes one poll interval of the camera's (manual) time.
            self.clock.advance(POLL);
            if self.left > 0 {
                self.left -= 1;
                return Pulled::Frame(Frame::from_rgb("cam".into(), 2, 2, vec![0; 12]));
            }
            match self.then {
                Then::Silent => Pulled::Idle,
                Then::FileEnd => Pulled::FileEnd {
                    duration: Duration::from_secs(10),
                },
                Then::Fail(kind) => Pulled::Failed(err(kind)),
            }
        }

        fn keyframe_only(&self) -> bool {
            true
        }
    }

    /// Waits by moving the manual clock; records each delay with the state shown meanwhile.
    struct FakeWaiter {
        clock: Arc<ManualClock>,
        shutdown: Shutdown,
        health: watch::Receiver<CameraHealth>,
        waited: Arc<Mutex<Vec<(Duration, HealthState, String)>>>,
    }

    impl Waiter for FakeWaiter {
        fn wait(&mut self, delay: Duration) -> bool {
            let h = self.health.borrow().clone();
            let error = h.last_error.unwrap_or_default();
            self.waited.lock().push((delay, h.state, error));
            self.clock.advance(delay);
            self.shutdown.is_triggered()
        }
    }

    struct Run {
        health: CameraHealth,
        /// The state and the last error shown during each wait.
        states: Vec<HealthState>,
        errors: Vec<String>,
        waited: Vec<Duration>,
        opened: Vec<(SystemTime, Duration)>,
        frames: Vec<Frame>,
    }

    fn camera(url: &str, watchdog_s: f64) -> (CameraConfig, IngestDefaults) {
        let text = format!(
            "[ingest]\nconnect_timeout_s = 3\n[[cameras]]\nid = \"cam\"\nurl = \"{url}\"\nwatchdog_s = {watchdog_s}\n"
        );
        let cfg = crate::config::PipelineConfig::parse(&text, std::path::Path::new("/"))
            .expect("test config");
        (cfg.cameras[0].clone(), cfg.ingest.clone())
    }

    fn run(url: &str, watchdog_s: f64, script: &[Attempt]) -> Run {
        let (cam, ingest) = camera(url, watchdog_s);
        run_cam(cam, ingest, script)
    }

    /// Runs the camera loop on this thread over `script`, with backoff 100 ms doubling to
    /// 800 ms and no jitter.
    fn run_cam(cam: CameraConfig, mut ingest: IngestDefaults, script: &[Attempt]) -> Run {
        ingest.queue_frames = 1024;
        let clock = Arc::new(ManualClock::new(UNIX_START));
        let shutdown = Shutdown::new();
        let (ctx, _, health_rx, mut frames_rx) =
            context(&cam, &ingest, clock.clone(), shutdown.clone());
        let opened = Arc::new(Mutex::new(Vec::new()));
        let waited = Arc::new(Mutex::new(Vec::new()));
        let mut opener = FakeOpener {
            script: script.iter().copied().collect(),
            clock: clock.clone(),
            shutdown: shutdown.clone(),
            opened: opened.clone(),
        };
        let mut waiter = FakeWaiter {
            clock: clock.clone(),
            shutdown: shutdown.clone(),
            health: health_rx,
            waited: waited.clone(),
        };
        let policy =
            BackoffPolicy::doubling(Duration::from_millis(100), Duration::from_millis(800));
        camera_loop(&ctx, Backoff::new(policy, 1), &mut opener, &mut waiter);
        let health = ctx.health.borrow().clone();
        drop(ctx);
        // The sender went with the context: the queue drains, then ends.
        let frames = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(async {
                let mut frames = Vec::new();
                while let Some(f) = frames_rx.recv().await {
                    frames.push(f);
                }
                frames
            });
        let mut w = waited.lock().clone();
        let errors = w.iter_mut().map(|w| std::mem::take(&mut w.2)).collect();
        let (waited, states) = w.into_iter().map(|(d, s, _)| (d, s)).unzip();
        let opened = opened.lock().clone();
        Run {
            health,
            states,
            errors,
            waited,
            opened,
            frames,
        }
    }

    const UNIX_START: SystemTime = SystemTime::UNIX_EPOCH;
    const LIVE: &str = "rtsp://user:secret@10.0.0.9/stream";

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn refused_connections_back_off_exponentially_up_to_the_cap() {
        use IngestErrorKind::Unreachable;
        let r = run(LIVE, 10.0, &[Attempt::Refused(Unreachable); 6]);
        // Six refusals, then the script ends (shutdown during the seventh wait).
        assert_eq!(r.waited, ms(&[100, 200, 400, 800, 800, 800, 800]));
        assert_eq!(r.health.reconnects, 7);
        assert_eq!(r.health.state, HealthState::Stopped);
        assert!(r.states.iter().all(|s| *s == HealthState::BackingOff));
        // Each attempt starts when the previous delay is over, on the camera's clock.
        let gaps: Vec<Duration> = r
            .opened
            .windows(2)
            .map(|w| w[1].0.duration_since(w[0].0).unwrap())
            .collect();
        assert_eq!(gaps, ms(&[100, 200, 400, 800, 800, 800]));
    }

    #[test]
    fn a_stream_that_delivers_resets_the_backoff() {
        use IngestErrorKind::{EndOfStream, Unreachable};
        let r = run(
            LIVE,
            10.0,
            &[
                Attempt::Refused(Unreachable),
                Attempt::Refused(Unreachable),
                Attempt::Stream(5, Then::Fail(EndOfStream)),
                Attempt::Refused(Unreachable),
            ],
        );
        // 100, 200; then the stream delivered, so its end starts again at 100.
        assert_eq!(r.waited, ms(&[100, 200, 100, 200, 400]));
        assert_eq!(r.frames.len(), 5);
        assert_eq!(
            r.frames.iter().map(|f| f.seq).collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 4]
        );
        assert_eq!(r.health.frames, 5);
        assert!(r.health.keyframe_only);
        assert!(r.health.last_frame_at.is_some());
    }

    #[test]
    fn the_watchdog_trips_after_its_timeout_of_silence_and_reconnects() {
        // Three frames, then silence: the watchdog (2 s) trips on the camera's clock.
        let r = run(
            LIVE,
            2.0,
            &[
                Attempt::Stream(3, Then::Silent),
                Attempt::Stream(2, Then::Silent),
            ],
        );
        assert_eq!(r.health.watchdog_restarts, 2);
        assert_eq!(r.health.frames, 5);
        // Frame 3 came at 300 ms; silence is measured from it, a poll (100 ms) at a time.
        // The first poll past 2 s trips it: at 2.4 s, then reconnect after 100 ms.
        let second = r.opened[1].0.duration_since(UNIX_START).unwrap();
        assert_eq!(second, Duration::from_millis(2400 + 100));
        assert_eq!(r.waited, ms(&[100, 100, 200]));
        assert!(
            r.errors[0].contains("watchdog: no frame for 2.1 s"),
            "{:?}",
            r.errors
        );
    }

    #[test]
    fn a_stream_that_never_delivers_is_timed_out_by_the_connect_timeout() {
        // connect_timeout_s = 3 is longer than the watchdog (1 s): the first frame gets 3 s.
        let r = run(LIVE, 1.0, &[Attempt::Stream(0, Then::Silent)]);
        assert!(
            r.errors[0].contains("watchdog: no first frame for 3.1 s"),
            "{:?}",
            r.errors
        );
        assert_eq!(r.health.watchdog_restarts, 1);
    }

    #[test]
    fn permanent_failures_mark_a_live_camera_failed_and_retry_at_the_longest_delay() {
        use IngestErrorKind::Unauthorized;
        let r = run(LIVE, 10.0, &[Attempt::Refused(Unauthorized); 2]);
        // The script's end is a plain refusal: back to the short delay, backing off.
        assert_eq!(r.waited, ms(&[800, 800, 100]));
        assert_eq!(
            r.states,
            [
                HealthState::Failed,
                HealthState::Failed,
                HealthState::BackingOff
            ]
        );
        assert_eq!(r.health.reconnects, 3);
    }

    #[test]
    fn a_file_fails_for_good_on_a_permanent_error() {
        use IngestErrorKind::Corrupt;
        let r = run(
            "file:///nowhere/clip.mp4",
            10.0,
            &[Attempt::Refused(Corrupt)],
        );
        assert!(r.waited.is_empty());
        assert_eq!(r.opened.len(), 1);
        assert_eq!(r.health.state, HealthState::Failed);
    }

    #[test]
    fn a_file_ends_finished_and_a_looped_file_plays_on_with_growing_timestamps() {
        let r = run(
            "file:///nowhere/clip.mp4",
            10.0,
            &[Attempt::Stream(2, Then::FileEnd)],
        );
        assert_eq!(r.health.state, HealthState::Finished);
        assert_eq!(r.opened.len(), 1);

        let (mut cam, ingest) = camera("file:///nowhere/clip.mp4", 10.0);
        if let SourceKind::File {
            looped, max_passes, ..
        } = &mut cam.source
        {
            *looped = true;
            *max_passes = Some(3);
        }
        let r = run_cam(cam, ingest, &[Attempt::Stream(1, Then::FileEnd); 3]);
        assert_eq!(r.health.state, HealthState::Finished);
        // Each pass opens with the stream time already played.
        let offsets: Vec<u64> = r.opened.iter().map(|o| o.1.as_secs()).collect();
        assert_eq!(offsets, vec![0, 10, 20]);
    }
}
