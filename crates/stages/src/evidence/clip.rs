//! Evidence clips: packets cut from a camera's ring, remuxed into MP4 by GStreamer with no
//! re-encode (`appsrc → parser → mp4mux → filesink`). The parser only repackages; the
//! samples in the MP4 are the camera's own bytes.

use std::path::Path;
use std::time::Duration;

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use super::ring::Packet;

pub use crate::model::package::ClipSpan;

/// Writes `packets` (starting at a keyframe, one caps) to `path` as MP4.
pub fn write_mp4(packets: &[Packet], path: &Path) -> Result<ClipSpan, String> {
    let first = packets.first().ok_or("no packets to write")?;
    if !first.key {
        return Err("a clip must start at a keyframe".into());
    }
    let caps = first.caps.clone();
    let parser = match caps.structure(0).map(|s| s.name().as_str()) {
        Some("video/x-h264") => "h264parse",
        Some("video/x-h265") => "h265parse",
        Some(other) => {
            return Err(format!(
                "cannot clip a {other} stream into MP4 without re-encoding"
            ));
        }
        None => return Err("the stream has no caps".into()),
    };
    let pipeline = gst::Pipeline::with_name("clip");
    let src = gst_app::AppSrc::builder()
        .caps(&caps)
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
    let mux = make("mp4mux")?;
    let sink = make("filesink")?;
    sink.set_property("location", path.to_string_lossy().as_ref());
    let src_el: &gst::Element = src.upcast_ref();
    pipeline
        .add_many([src_el, &parse, &mux, &sink])
        .map_err(|e| e.to_string())?;
    gst::Element::link_many([src_el, &parse, &mux, &sink]).map_err(|e| e.to_string())?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("cannot start the clip muxer: {e}"))?;

    let base = first.dts.unwrap_or(first.pts).min(first.pts);
    let mut end = first.pts;
    for p in packets {
        let mut b = p.buffer.copy();
        {
            let b = b.get_mut().expect("a fresh copy is writable");
            b.set_pts(gst::ClockTime::from_nseconds(p.pts - base));
            b.set_dts(
                p.dts
                    .map(|d| gst::ClockTime::from_nseconds(d.saturating_sub(base))),
            );
            end = end.max(p.pts + b.duration().map_or(0, |d| d.nseconds()));
        }
        if src.push_buffer(b).is_err() {
            break;
        }
    }
    let _ = src.end_of_stream();
    let bus = pipeline.bus().expect("pipeline has a bus");
    let result = match bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(30),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    ) {
        Some(m) => match m.view() {
            gst::MessageView::Eos(_) => Ok(()),
            gst::MessageView::Error(e) => Err(format!("muxing the clip: {}", e.error())),
            _ => Ok(()),
        },
        None => Err("muxing the clip timed out".into()),
    };
    let _ = pipeline.set_state(gst::State::Null);
    result?;
    Ok(ClipSpan {
        start_s: Duration::from_nanos(first.pts).as_secs_f64(),
        end_s: Duration::from_nanos(end).as_secs_f64(),
        packets: packets.len(),
    })
}

/// Decodes the frame of an MP4 clip shown `offset_s` after its first frame, at the clip's own
/// size: (width, height, packed RGB). Clean: no box, zone or watermark.
pub fn frame_at(path: &Path, offset_s: f64) -> Result<(u32, u32, Vec<u8>), String> {
    gst::init().map_err(|e| e.to_string())?;
    let pipeline = gst::parse::launch(
        "filesrc name=src ! qtdemux ! h264parse ! avdec_h264 ! videoconvert \
         ! video/x-raw,format=RGB ! appsink name=sink sync=false",
    )
    .map_err(|e| format!("cannot build the clip decoder: {e}"))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;
    let src = pipeline.by_name("src").ok_or("no source")?;
    src.set_property("location", path.to_string_lossy().as_ref());
    let sink = pipeline
        .by_name("sink")
        .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
        .ok_or("no sink")?;
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| format!("cannot play {}: {e}", path.display()))?;
    let mut first = None;
    let mut chosen = None;
    while let Ok(sample) = sink.pull_sample() {
        let Some(buffer) = sample.buffer() else {
            continue;
        };
        let pts = buffer.pts().map_or(0, |t| t.nseconds());
        let p0 = *first.get_or_insert(pts);
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
        chosen = Some((w, h, rgb));
        if (pts - p0) as f64 / 1e9 + 1e-3 >= offset_s {
            break;
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    chosen.ok_or_else(|| format!("{} has no decodable frame", path.display()))
}
