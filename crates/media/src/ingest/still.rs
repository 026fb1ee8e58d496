//! One keyframe from a camera's packet ring decoded at the camera's full resolution: the
//! picture a plate is read from and evidence photos are made from, while analysis keeps its
//! small frames (`analysis_width`). One short GStreamer pipeline per still
//! (`appsrc → parser → decoder → videoconvert → RGB appsink`); the cost of one 1080p still is
//! in docs/benchmarks.md.

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::ring::{Packet, PacketRing};

/// A decoded still: packed RGB at the stream's own size, and its stream time.
#[derive(Clone)]
pub struct Still {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
    /// Presentation time, nanoseconds on the ring's timeline.
    pub pts: u64,
}

impl std::fmt::Debug for Still {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Still({}x{} at {} ns)",
            self.width, self.height, self.pts
        )
    }
}

impl PacketRing {
    /// The last keyframe at or before `at` (ns, stream time); None when the ring has none.
    pub fn keyframe_at(&self, at: u64) -> Option<Packet> {
        self.cut(at, at).into_iter().next().filter(|p| p.key)
    }
}

/// Decodes one keyframe packet at its full size.
pub fn decode_keyframe(packet: &Packet) -> Result<Still, String> {
    if !packet.key {
        return Err("a still must be a keyframe".into());
    }
    let (parser, decoder) = match packet.caps.structure(0).map(|s| s.name().as_str()) {
        Some("video/x-h264") => ("h264parse", "avdec_h264"),
        Some("video/x-h265") => ("h265parse", "avdec_h265"),
        Some(other) => return Err(format!("cannot decode a still of a {other} stream")),
        None => return Err("the stream has no caps".into()),
    };
    gst::init().map_err(|e| e.to_string())?;
    let pipeline = gst::Pipeline::with_name("still");
    let src = gst_app::AppSrc::builder()
        .caps(&packet.caps)
        .format(gst::Format::Time)
        .is_live(false)
        .block(false)
        .build();
    let make = |f: &str| {
        gst::ElementFactory::make(f)
            .build()
            .map_err(|_| format!("GStreamer element {f:?} is missing (make deps)"))
    };
    let parse = make(parser)?;
    let dec = make(decoder)?;
    let convert = make("videoconvert")?;
    let sink = gst_app::AppSink::builder()
        .caps(
            &gst::Caps::builder("video/x-raw")
                .field("format", "RGB")
                .build(),
        )
        .sync(false)
        .build();
    let src_el: &gst::Element = src.upcast_ref();
    let sink_el: &gst::Element = sink.upcast_ref();
    pipeline
        .add_many([src_el, &parse, &dec, &convert, sink_el])
        .map_err(|e| e.to_string())?;
    gst::Element::link_many([src_el, &parse, &dec, &convert, sink_el])
        .map_err(|e| e.to_string())?;
    let result = (|| {
        pipeline
            .set_state(gst::State::Playing)
            .map_err(|e| format!("cannot start the still decoder: {e}"))?;
        let mut b = packet.buffer.copy();
        {
            let b = b.get_mut().expect("a fresh copy is writable");
            b.set_pts(gst::ClockTime::ZERO);
            b.set_dts(gst::ClockTime::ZERO);
        }
        src.push_buffer(b)
            .map_err(|e| format!("cannot feed the decoder: {e}"))?;
        let _ = src.end_of_stream();
        let sample = sink
            .try_pull_sample(gst::ClockTime::from_seconds(10))
            .ok_or("the keyframe did not decode within 10 s")?;
        let buffer = sample.buffer().ok_or("a sample without a buffer")?;
        let info = sample
            .caps()
            .and_then(|c| gstreamer_video::VideoInfo::from_caps(c).ok())
            .ok_or("a decoded frame without video caps")?;
        let map = buffer.map_readable().map_err(|e| e.to_string())?;
        let (w, h) = (info.width(), info.height());
        let stride = info.stride()[0] as usize;
        let mut rgb = Vec::with_capacity((w * h * 3) as usize);
        for row in 0..h as usize {
            rgb.extend_from_slice(&map[row * stride..row * stride + w as usize * 3]);
        }
        Ok(Still {
            width: w,
            height: h,
            rgb,
            pts: packet.pts,
        })
    })();
    let _ = pipeline.set_state(gst::State::Null);
    result
}
