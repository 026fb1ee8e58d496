//! Builds one camera's GStreamer pipeline:
//!
//! ```text
//! uridecodebin (rtspsrc | filesrc → demux → [probe: Sampler::on_encoded] → decoder)
//!   → [probe: Sampler::on_decoded] → videoconvertscale (scale + RGB in one pass)
//!   → capsfilter (RGB, analysis width) → appsink
//! ```
//!
//! Frames the sampler drops are never scaled, converted or copied; in keyframe-only mode
//! they are not even decoded.

use parking_lot::Mutex;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::sampler::Sampler;
use crate::config::{CameraConfig, IngestDefaults, KeyframeMode, SourceKind, Transport};

/// A pipeline ready to play, and the handles the camera loop needs.
pub struct Built {
    pub pipeline: gst::Pipeline,
    pub appsink: gst_app::AppSink,
    pub sampler: Arc<Mutex<Sampler>>,
    /// Keyframe timestamps seen before the decoder, to mark delivered frames.
    pub keyframes: Arc<Mutex<KeyframeLog>>,
}

/// The last few keyframe timestamps the parser reported.
#[derive(Default)]
pub struct KeyframeLog {
    pts: std::collections::VecDeque<u64>,
}

impl KeyframeLog {
    fn record(&mut self, pts: u64) {
        self.pts.push_back(pts);
        if self.pts.len() > 256 {
            self.pts.pop_front();
        }
    }

    pub fn contains(&self, pts: u64) -> bool {
        self.pts.contains(&pts)
    }
}

/// Names the error that no-more-pads raises when a source has no video track.
pub const NO_VIDEO_MESSAGE: &str = "the stream has no video track";

/// Splits credentials out of an RTSP URL: (URL without them, user, password).
pub fn split_credentials(raw: &str) -> (String, Option<String>, Option<String>) {
    match url::Url::parse(raw) {
        Ok(mut u) => {
            let user = (!u.username().is_empty()).then(|| decode(u.username()));
            let pass = u.password().map(decode);
            let _ = u.set_username("");
            let _ = u.set_password(None);
            (u.to_string(), user, pass)
        }
        Err(_) => (raw.to_string(), None, None),
    }
}

fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(s)
        .decode_utf8_lossy()
        .into_owned()
}

/// `ring`: where to keep the encoded stream (evidence clips), with this run's offset on the
/// camera's timeline (a looped file's earlier passes).
pub fn build(
    cam: &CameraConfig,
    ingest: &IngestDefaults,
    mode_hint: KeyframeMode,
    ring: Option<(crate::ingest::ring::PacketRing, std::time::Duration)>,
) -> Result<Built, String> {
    gst::init().map_err(|e| format!("GStreamer init failed: {e}"))?;

    let (uri, user, pass, live, sync) = match &cam.source {
        SourceKind::Rtsp { .. } => {
            let (uri, user, pass) = split_credentials(&cam.url);
            (uri, user, pass, true, false)
        }
        SourceKind::File { path, realtime, .. } => {
            let abs = std::fs::canonicalize(path)
                .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            let uri = gst::glib::filename_to_uri(&abs, None)
                .map_err(|e| format!("bad file path {}: {e}", abs.display()))?;
            (uri.to_string(), None, None, false, *realtime)
        }
    };

    let pipeline = gst::Pipeline::with_name(&format!("cam-{}", cam.id));
    let src = make("uridecodebin", "src")?;
    src.set_property("uri", &uri);

    if let SourceKind::Rtsp { transport } = &cam.source {
        let transport = *transport;
        let latency = ingest.rtsp_latency_ms;
        let tcp_jitter_buffer = ingest.tcp_jitter_buffer;
        let connect_us = (ingest.connect_timeout_s * 1e6) as u64;
        src.connect("source-setup", false, move |args| {
            let Ok(source) = args[1].get::<gst::Element>() else {
                return None;
            };
            if source.find_property("protocols").is_some() {
                source.set_property_from_str(
                    "protocols",
                    match transport {
                        Transport::Tcp => "tcp",
                        Transport::Udp => "udp",
                    },
                );
                source.set_property("latency", latency);
                if transport == Transport::Tcp && !tcp_jitter_buffer {
                    // In order and lossless: stamp on the reading thread (rtpstamp.rs).
                    source.connect("new-manager", false, |args| {
                        // Connecting to a signal the manager lacks would panic.
                        if let Ok(manager) = args[1].get::<gst::Element>()
                            && gst::glib::subclass::signal::SignalId::lookup(
                                "request-jitterbuffer",
                                manager.type_(),
                            )
                            .is_some()
                        {
                            manager.connect("request-jitterbuffer", false, |_| {
                                Some(
                                    super::rtpstamp::RtpStamp::new()
                                        .upcast::<gst::Element>()
                                        .to_value(),
                                )
                            });
                        }
                        None
                    });
                }
                source.set_property("tcp-timeout", connect_us);
                source.set_property("teardown-timeout", 200_000_000u64);
                if let Some(u) = &user {
                    source.set_property("user-id", u);
                }
                if let Some(p) = &pass {
                    source.set_property("user-pw", p);
                }
            }
            None
        });
    }

    let sampler = Arc::new(Mutex::new(Sampler::new(cam.analysis_fps, mode_hint)));
    let keyframes = Arc::new(Mutex::new(KeyframeLog::default()));

    // The decoder appears inside uridecodebin once the stream type is known: put the
    // pre-decoder probe on its sink pad then.
    {
        let sampler = sampler.clone();
        let keyframes = keyframes.clone();
        let keyframe_capable = mode_hint != KeyframeMode::Off;
        pipeline.connect_deep_element_added(move |_bin, _sub, element| {
            let Some(factory) = element.factory() else {
                return;
            };
            let klass = factory.klass();
            if !(klass.contains("Decoder") && klass.contains("Video")) {
                return;
            }
            // Frame threading would hold back keyframes for several GOPs; slices do not.
            if keyframe_capable && element.find_property("thread-type").is_some() {
                element.set_property_from_str("thread-type", "slice");
            }
            let Some(sink) = element.static_pad("sink") else {
                return;
            };
            let sampler = sampler.clone();
            let keyframes = keyframes.clone();
            let ring = ring.clone();
            if let Some((r, _)) = &ring {
                // The decoder's input caps (codec data included) describe the ring's packets.
                let r = r.clone();
                sink.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_pad, info| {
                    if let Some(gst::EventView::Caps(c)) = info.event().map(|e| e.view()) {
                        r.set_caps(c.caps_owned());
                    }
                    gst::PadProbeReturn::Ok
                });
            }
            sink.add_probe(gst::PadProbeType::BUFFER, move |_pad, info| {
                let Some(buffer) = info.buffer() else {
                    return gst::PadProbeReturn::Ok;
                };
                if let Some((r, offset)) = &ring {
                    r.push(buffer, *offset);
                }
                let is_key = !buffer.flags().contains(gst::BufferFlags::DELTA_UNIT);
                let pts = buffer.pts().or(buffer.dts()).map(|t| t.nseconds());
                if is_key && let Some(p) = pts {
                    keyframes.lock().record(p);
                }
                let keep = sampler.lock().on_encoded(pts, is_key);
                pass_or_consume(info, keep)
            });
        });
    }

    let convert =
        make("videoconvertscale", "convert").or_else(|_| make("videoscale", "convert"))?;
    let filter = make("capsfilter", "rgb")?;
    // Width 0 keeps the source's own size (used by `citywatch detect`).
    let mut caps = gst::Caps::builder("video/x-raw")
        .field("format", "RGB")
        .field("pixel-aspect-ratio", gst::Fraction::new(1, 1));
    if cam.analysis_width > 0 {
        caps = caps.field("width", cam.analysis_width as i32);
    }
    let caps = caps.build();
    filter.set_property("caps", &caps);
    let appsink = gst_app::AppSink::builder()
        .name("frames")
        .max_buffers(2)
        .drop(live)
        .sync(sync)
        .enable_last_sample(false)
        .build();
    appsink.set_property("emit-signals", false);

    // A conversion chain that also works where videoconvertscale is missing.
    let mut chain: Vec<gst::Element> = vec![convert.clone()];
    if convert.factory().is_some_and(|f| f.name() == "videoscale") {
        chain.push(make("videoconvert", "colour")?);
    }
    chain.push(filter);
    chain.push(appsink.clone().upcast());

    pipeline
        .add(&src)
        .map_err(|e| format!("cannot add source: {e}"))?;
    pipeline
        .add_many(&chain)
        .map_err(|e| format!("cannot add elements: {e}"))?;
    gst::Element::link_many(&chain).map_err(|e| format!("cannot link elements: {e}"))?;

    {
        let sampler = sampler.clone();
        let sink = convert
            .static_pad("sink")
            .ok_or("converter has no sink pad")?;
        sink.add_probe(gst::PadProbeType::BUFFER, move |_pad, info| {
            let Some(buffer) = info.buffer() else {
                return gst::PadProbeReturn::Ok;
            };
            let pts = buffer.pts().map(|t| t.nseconds());
            let keep = sampler.lock().on_decoded(pts);
            pass_or_consume(info, keep)
        });
    }

    let video_linked = Arc::new(AtomicBool::new(false));
    {
        let video_linked = video_linked.clone();
        let convert = convert.clone();
        let pipeline_weak = pipeline.downgrade();
        src.connect_pad_added(move |_src, pad| {
            let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
            let is_video = caps
                .structure(0)
                .is_some_and(|s| s.name().starts_with("video/"));
            if is_video && !video_linked.load(Ordering::SeqCst) {
                if let Some(sink) = convert.static_pad("sink")
                    && pad.link(&sink).is_ok()
                {
                    video_linked.store(true, Ordering::SeqCst);
                }
                return;
            }
            // Audio and any further video streams go to a fakesink so they never stall the
            // source or raise not-linked errors.
            if let Some(pipeline) = pipeline_weak.upgrade()
                && let Ok(fake) = gst::ElementFactory::make("fakesink")
                    .property("sync", false)
                    .property("async", false)
                    .build()
                && pipeline.add(&fake).is_ok()
            {
                let _ = fake.sync_state_with_parent();
                if let Some(sink) = fake.static_pad("sink") {
                    let _ = pad.link(&sink);
                }
            }
        });
    }
    {
        let video_linked = video_linked.clone();
        src.connect_no_more_pads(move |src| {
            if !video_linked.load(Ordering::SeqCst) {
                gst::element_error!(src, gst::StreamError::WrongType, ["{}", NO_VIDEO_MESSAGE]);
            }
        });
    }

    Ok(Built {
        pipeline,
        appsink,
        sampler,
        keyframes,
    })
}

/// Lets a buffer through, or consumes it. Consuming (take + `Handled`) rather than `Drop`:
/// with GStreamer 1.22 and gstreamer-rs 0.25, `Drop` on a buffer probe logs a
/// `gst_mini_object_unref` critical for every dropped buffer.
fn pass_or_consume(info: &mut gst::PadProbeInfo, keep: bool) -> gst::PadProbeReturn {
    if keep {
        gst::PadProbeReturn::Ok
    } else {
        drop(info.take_buffer());
        gst::PadProbeReturn::Handled
    }
}

fn make(factory: &str, name: &str) -> Result<gst::Element, String> {
    gst::ElementFactory::make(factory)
        .name(name)
        .build()
        .map_err(|_| format!("GStreamer element {factory:?} is missing; install the GStreamer plugins (make deps)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_split_out_and_decoded() {
        let (uri, user, pass) = split_credentials("rtsp://adm%40in:p%3Ass@10.1.2.3:554/ch1?x=1");
        assert_eq!(uri, "rtsp://10.1.2.3:554/ch1?x=1");
        assert_eq!(user.as_deref(), Some("adm@in"));
        assert_eq!(pass.as_deref(), Some("p:ss"));
        let (uri, user, pass) = split_credentials("rtsp://h/p");
        assert_eq!((uri.as_str(), user, pass), ("rtsp://h/p", None, None));
    }
}
