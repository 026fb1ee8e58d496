//! `citywatch scenario SPEC.toml`: composites real object crops (a vehicle cut from one clip,
//! a fruit stall from a photo, litter) into real background footage over known time spans,
//! and writes the clip with its exact event truth (the format of `docs/eval.md`).
//!
//! Decoding and encoding are GStreamer's (`decodebin`, `x264enc`, `mp4mux`); the compositing is
//! a feathered paste of the crop, scaled to its place, into every frame of its span.

use std::path::{Path, PathBuf};

use fast_image_resize as fir;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use serde::{Deserialize, Serialize};

use super::truth::{TruthEvent, TruthFile};
use crate::config::RuleKind;

/// A scenario spec. Paths are relative to the spec's folder.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScenarioSpec {
    /// The real footage the objects are pasted into.
    pub background: PathBuf,
    /// Output bit rate of the H.264 clip.
    #[serde(default = "default_bitrate")]
    pub bitrate_kbps: u32,
    /// Keyframe interval of the output, in frames.
    #[serde(default = "default_keyint")]
    pub keyframe_interval: u32,
    /// The pipeline camera whose zones and rules the clip is scored with (written into the
    /// truth file).
    pub camera: Option<String>,
    /// Truth events already in the background (copied into the truth file as they are).
    #[serde(default)]
    pub events: Vec<TruthEvent>,
    #[serde(default)]
    pub objects: Vec<ObjectSpec>,
    /// Light ramps over the whole view (dusk, street lights), applied after the objects, in
    /// time order.
    #[serde(default)]
    pub light: Vec<LightSpec>,
    /// Spans where the camera is turned away from its view (a PTZ dome left on another
    /// preset), applied last.
    #[serde(default)]
    pub shift: Vec<ShiftSpec>,
}

/// A light ramp: the view's gain goes from `from` to `to` over [start_s, end_s] and holds
/// `to` after it (until the next ramp). Before the first ramp the gain is 1.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LightSpec {
    pub start_s: f64,
    pub end_s: f64,
    pub from: f64,
    pub to: f64,
    /// Per-channel colour of the light at `to` (street lamps are warm), reached along the
    /// ramp. Default [1, 1, 1].
    #[serde(default = "white")]
    pub tint: [f64; 3],
    /// Sensor noise at `to`, in grey levels (deterministic), reached along the ramp.
    /// Default 0.
    #[serde(default)]
    pub noise: f64,
}

fn white() -> [f64; 3] {
    [1.0, 1.0, 1.0]
}

/// The view shifted by (dx, dy), shares of the frame, over [start_s, end_s).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ShiftSpec {
    pub start_s: f64,
    pub end_s: f64,
    pub dx: f64,
    pub dy: f64,
}

fn default_bitrate() -> u32 {
    500
}

fn default_keyint() -> u32 {
    10
}

/// One object: where it is cut from, where it goes, and when.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ObjectSpec {
    /// A video or a still image (anything `decodebin` reads).
    pub source: PathBuf,
    /// The frame of a video source to cut from (seconds from its start).
    #[serde(default)]
    pub source_at_s: f64,
    /// The crop in the source, normalised [x1, y1, x2, y2].
    pub crop: [f64; 4],
    /// Where it goes in the background, normalised [x1, y1, x2, y2] (the crop is scaled to it).
    pub place: [f64; 4],
    pub start_s: f64,
    pub end_s: f64,
    /// The rule this object should trigger: it becomes a truth event with `place` as its box.
    pub rule: Option<RuleKind>,
    /// Width of the soft edge, in output pixels.
    #[serde(default = "default_feather")]
    pub feather_px: u32,
    /// A plate drawn onto the vehicle (written into its truth event).
    pub plate: Option<PlateSpec>,
}

/// A rendered plate pasted onto an object (`plate::render`: the CJK font, the kind's colours).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlateSpec {
    /// A valid plate, as the store writes it (京A12345).
    pub text: String,
    /// Character height in output pixels. Default 24.
    #[serde(default = "default_char_px")]
    pub char_px: u32,
    /// Where its centre goes, as shares of the object's placed box. Default [0.5, 0.8].
    #[serde(default = "default_plate_at")]
    pub at: [f64; 2],
}

fn default_char_px() -> u32 {
    24
}

fn default_plate_at() -> [f64; 2] {
    [0.5, 0.8]
}

fn default_feather() -> u32 {
    3
}

/// What a scenario run wrote.
#[derive(Debug, Serialize)]
pub struct ScenarioOutput {
    pub clip: PathBuf,
    pub truth: PathBuf,
    pub frames: u64,
    pub width: u32,
    pub height: u32,
    pub fps: f64,
}

/// A decoded RGB picture.
struct Rgb {
    w: u32,
    h: u32,
    data: Vec<u8>,
}

fn check_box(b: &[f64; 4], field: &str) -> anyhow::Result<()> {
    if b.iter().any(|v| !(0.0..=1.0).contains(v)) || b[0] >= b[2] || b[1] >= b[3] {
        anyhow::bail!("{field}: {b:?} is not a box x1 < x2, y1 < y2 inside 0..1");
    }
    Ok(())
}

impl ScenarioSpec {
    pub fn load(path: &Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("{}: cannot read: {e}", path.display()))?;
        let de = toml::Deserializer::parse(&text)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        let mut spec: ScenarioSpec = serde_path_to_error::deserialize(de)
            .map_err(|e| anyhow::anyhow!("{}: {}: {}", path.display(), e.path(), e.inner()))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        spec.background = dir.join(&spec.background);
        for (i, o) in spec.objects.iter_mut().enumerate() {
            o.source = dir.join(&o.source);
            check_box(&o.crop, &format!("objects[{i}].crop"))?;
            check_box(&o.place, &format!("objects[{i}].place"))?;
            if let Some(p) = &o.plate
                && (crate::model::plate::validate(&p.text).is_none()
                    || !(8..=200).contains(&p.char_px))
            {
                anyhow::bail!(
                    "{}: objects[{i}].plate: {:?} at {} px must be a valid plate (京A12345) of 8 to 200 px",
                    path.display(),
                    p.text,
                    p.char_px
                );
            }
            if o.end_s <= o.start_s || o.start_s < 0.0 {
                anyhow::bail!(
                    "{}: objects[{i}]: start_s {} .. end_s {} is not a span of the clip",
                    path.display(),
                    o.start_s,
                    o.end_s
                );
            }
        }
        for (i, l) in spec.light.iter().enumerate() {
            if l.end_s < l.start_s || l.start_s < 0.0 {
                anyhow::bail!(
                    "{}: light[{i}]: start_s {} .. end_s {} is not a span of the clip",
                    path.display(),
                    l.start_s,
                    l.end_s
                );
            }
            if !(l.from > 0.0 && l.to > 0.0 && l.tint.iter().all(|c| *c > 0.0) && l.noise >= 0.0) {
                anyhow::bail!(
                    "{}: light[{i}]: gains and tint must be above 0, noise 0 or more",
                    path.display()
                );
            }
        }
        for (i, sh) in spec.shift.iter().enumerate() {
            if sh.end_s <= sh.start_s || sh.dx.abs() >= 1.0 || sh.dy.abs() >= 1.0 {
                anyhow::bail!(
                    "{}: shift[{i}]: needs start_s < end_s and |dx|, |dy| below 1",
                    path.display()
                );
            }
        }
        for (i, e) in spec.events.iter().enumerate() {
            e.validate()
                .map_err(|(f, m)| anyhow::anyhow!("{}: events[{i}].{f}: {m}", path.display()))?;
        }
        Ok(spec)
    }
}

/// What a clip is: size, frame rate and length.
#[derive(Debug, Clone, Copy)]
pub struct FootageInfo {
    pub width: u32,
    pub height: u32,
    pub fps: f64,
    pub duration_s: f64,
}

/// Reads a clip's size, frame rate and duration (GStreamer's own demuxer and decoder).
pub fn footage_info(path: &Path) -> anyhow::Result<FootageInfo> {
    let (pipeline, sink) = decoder(path)?;
    let sample = sink
        .pull_sample()
        .map_err(|_| anyhow::anyhow!("{}: no decodable video frame", path.display()));
    let duration = pipeline.query_duration::<gst::ClockTime>();
    let _ = pipeline.set_state(gst::State::Null);
    let sample = sample?;
    let info = sample
        .caps()
        .and_then(|c| gstreamer_video::VideoInfo::from_caps(c).ok())
        .ok_or_else(|| anyhow::anyhow!("{}: no video caps", path.display()))?;
    let fps = info.fps();
    let fps = if fps.numer() > 0 && fps.denom() > 0 {
        fps.numer() as f64 / fps.denom() as f64
    } else {
        anyhow::bail!("{}: no fixed frame rate", path.display());
    };
    Ok(FootageInfo {
        width: info.width(),
        height: info.height(),
        fps,
        duration_s: duration.map_or(0.0, |d| d.nseconds() as f64 / 1e9),
    })
}

/// Decodes the frame of `path` shown `at_s` after its first (a still image: its only frame).
fn decode_frame(path: &Path, at_s: f64) -> anyhow::Result<Rgb> {
    let (pipeline, sink) = decoder(path)?;
    let mut chosen = None;
    let mut first = None;
    while let Ok(sample) = sink.pull_sample() {
        let (pts, pic) = picture(&sample)?;
        let p0 = *first.get_or_insert(pts);
        chosen = Some(pic);
        if pts - p0 + 1e-3 >= at_s {
            break;
        }
    }
    let _ = pipeline.set_state(gst::State::Null);
    chosen.ok_or_else(|| anyhow::anyhow!("{}: no decodable frame", path.display()))
}

fn decoder(path: &Path) -> anyhow::Result<(gst::Pipeline, gst_app::AppSink)> {
    gst::init()?;
    if !path.is_file() {
        anyhow::bail!("{}: no such file", path.display());
    }
    let pipeline = gst::parse::launch(
        "filesrc name=src ! decodebin ! videoconvert ! video/x-raw,format=RGB \
         ! appsink name=sink sync=false",
    )?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    let src = pipeline.by_name("src").expect("src");
    src.set_property("location", path.to_string_lossy().as_ref());
    let sink = pipeline
        .by_name("sink")
        .and_then(|s| s.downcast::<gst_app::AppSink>().ok())
        .expect("sink");
    pipeline
        .set_state(gst::State::Playing)
        .map_err(|e| anyhow::anyhow!("{}: cannot play: {e}", path.display()))?;
    Ok((pipeline, sink))
}

/// (pts in seconds, packed RGB) of a decoded sample.
fn picture(sample: &gst::Sample) -> anyhow::Result<(f64, Rgb)> {
    let buffer = sample
        .buffer()
        .ok_or_else(|| anyhow::anyhow!("empty sample"))?;
    let info = sample
        .caps()
        .and_then(|c| gstreamer_video::VideoInfo::from_caps(c).ok())
        .ok_or_else(|| anyhow::anyhow!("a decoded frame without video caps"))?;
    let map = buffer.map_readable()?;
    let (w, h) = (info.width(), info.height());
    let stride = info.stride()[0] as usize;
    let mut data = Vec::with_capacity((w * h * 3) as usize);
    for row in 0..h as usize {
        data.extend_from_slice(&map[row * stride..row * stride + w as usize * 3]);
    }
    let pts = buffer.pts().map_or(0.0, |t| t.nseconds() as f64 / 1e9);
    Ok((pts, Rgb { w, h, data }))
}

/// A crop cut and scaled to its place, with its per-pixel opacity.
struct Sprite {
    x: u32,
    y: u32,
    w: u32,
    h: u32,
    rgb: Vec<u8>,
    alpha: Vec<f32>,
}

fn px_box(b: &[f64; 4], w: u32, h: u32) -> (u32, u32, u32, u32) {
    let x1 = (b[0] * w as f64).round() as u32;
    let y1 = (b[1] * h as f64).round() as u32;
    let x2 = ((b[2] * w as f64).round() as u32).clamp(x1 + 1, w);
    let y2 = ((b[3] * h as f64).round() as u32).clamp(y1 + 1, h);
    (x1, y1, x2 - x1, y2 - y1)
}

fn sprite(src: &Rgb, o: &ObjectSpec, out_w: u32, out_h: u32) -> anyhow::Result<Sprite> {
    let (cx, cy, cw, ch) = px_box(&o.crop, src.w, src.h);
    let mut cut = Vec::with_capacity((cw * ch * 3) as usize);
    for y in cy..cy + ch {
        let row = (y * src.w * 3) as usize;
        cut.extend_from_slice(&src.data[row + cx as usize * 3..row + (cx + cw) as usize * 3]);
    }
    let (x, y, w, h) = px_box(&o.place, out_w, out_h);
    let mut rgb = vec![0u8; (w * h * 3) as usize];
    let src_img = fir::images::ImageRef::new(cw, ch, &cut, fir::PixelType::U8x3)?;
    let mut dst_img = fir::images::Image::from_slice_u8(w, h, &mut rgb, fir::PixelType::U8x3)?;
    let opts = fir::ResizeOptions::new()
        .resize_alg(fir::ResizeAlg::Convolution(fir::FilterType::Bilinear));
    fir::Resizer::new().resize(&src_img, &mut dst_img, &opts)?;
    let f = o.feather_px.max(1) as f32;
    let mut alpha = Vec::with_capacity((w * h) as usize);
    for py in 0..h {
        for px in 0..w {
            let d = px.min(py).min(w - 1 - px).min(h - 1 - py) as f32 + 0.5;
            alpha.push((d / f).min(1.0));
        }
    }
    if let Some(p) = &o.plate {
        let font = crate::core::font::load(None)?;
        let img = crate::plate::render::render_plate(&font, &p.text, p.char_px);
        let cx = (p.at[0] * w as f64 - img.width as f64 / 2.0).max(0.0) as u32;
        let cy = (p.at[1] * h as f64 - img.height as f64 / 2.0).max(0.0) as u32;
        for py in 0..img.height.min(h.saturating_sub(cy)) {
            for px in 0..img.width.min(w.saturating_sub(cx)) {
                let d = (((cy + py) * w + cx + px) * 3) as usize;
                rgb[d..d + 3].copy_from_slice(&img.pixel(px, py));
            }
        }
    }
    Ok(Sprite {
        x,
        y,
        w,
        h,
        rgb,
        alpha,
    })
}

fn paste(frame: &mut [u8], frame_w: u32, s: &Sprite) {
    for py in 0..s.h {
        for px in 0..s.w {
            let a = s.alpha[(py * s.w + px) as usize];
            let d = (((s.y + py) * frame_w + s.x + px) * 3) as usize;
            let k = ((py * s.w + px) * 3) as usize;
            for c in 0..3 {
                let v = a * s.rgb[k + c] as f32 + (1.0 - a) * frame[d + c] as f32;
                frame[d + c] = v.round() as u8;
            }
        }
    }
}

/// Runs a scenario: writes `OUT/STEM.mp4` and `OUT/STEM.json`.
pub fn make(spec_path: &Path, out_dir: Option<&Path>) -> anyhow::Result<ScenarioOutput> {
    let spec = ScenarioSpec::load(spec_path)?;
    let stem = spec_path
        .file_stem()
        .and_then(|s| s.to_str())
        .ok_or_else(|| anyhow::anyhow!("{}: no file name", spec_path.display()))?;
    let dir = out_dir
        .map(Path::to_path_buf)
        .unwrap_or_else(|| spec_path.parent().unwrap_or(Path::new(".")).to_path_buf());
    std::fs::create_dir_all(&dir)?;
    let clip = dir.join(format!("{stem}.mp4"));
    let truth_path = dir.join(format!("{stem}.json"));

    let (dec, sink) = decoder(&spec.background)?;
    let first = sink
        .pull_sample()
        .map_err(|_| anyhow::anyhow!("{}: no decodable video frame", spec.background.display()))?;
    let info = first
        .caps()
        .and_then(|c| gstreamer_video::VideoInfo::from_caps(c).ok())
        .ok_or_else(|| anyhow::anyhow!("background without video caps"))?;
    let (w, h) = (info.width(), info.height());
    let fps = info.fps();
    if fps.numer() <= 0 || fps.denom() <= 0 {
        anyhow::bail!(
            "{}: no fixed frame rate to composite at",
            spec.background.display()
        );
    }
    let frame_s = fps.denom() as f64 / fps.numer() as f64;
    let mut sprites = Vec::new();
    for (i, o) in spec.objects.iter().enumerate() {
        let src = decode_frame(&o.source, o.source_at_s)
            .map_err(|e| anyhow::anyhow!("objects[{i}].source: {e}"))?;
        sprites.push(sprite(&src, o, w, h)?);
    }

    let enc = gst::parse::launch(&format!(
        "appsrc name=src format=time ! videoconvert ! video/x-raw,format=I420 \
         ! x264enc bframes=0 key-int-max={} speed-preset=medium bitrate={} threads=1 \
         ! video/x-h264,profile=main ! h264parse ! mp4mux faststart=true \
         ! filesink name=out",
        spec.keyframe_interval.max(1),
        spec.bitrate_kbps.max(50)
    ))?
    .downcast::<gst::Pipeline>()
    .map_err(|_| anyhow::anyhow!("not a pipeline"))?;
    enc.by_name("out")
        .expect("out")
        .set_property("location", clip.to_string_lossy().as_ref());
    let appsrc = enc
        .by_name("src")
        .and_then(|s| s.downcast::<gst_app::AppSrc>().ok())
        .expect("appsrc");
    let caps = gst::Caps::builder("video/x-raw")
        .field("format", "RGB")
        .field("width", w as i32)
        .field("height", h as i32)
        .field("framerate", gst::Fraction::new(fps.numer(), fps.denom()))
        .build();
    appsrc.set_caps(Some(&caps));
    appsrc.set_property("block", true);
    enc.set_state(gst::State::Playing)?;

    // Per object: the stream times of its first and last pasted frame.
    let mut spans: Vec<Option<(f64, f64)>> = vec![None; sprites.len()];
    let mut n = 0u64;
    let mut p0 = None;
    let mut sample = Some(first);
    while let Some(s) = sample.take() {
        let (pts, mut pic) = picture(&s)?;
        let t = pts - *p0.get_or_insert(pts);
        for (i, (o, sp)) in spec.objects.iter().zip(&sprites).enumerate() {
            // A frame shows the object when its time lies in [start, end).
            if t + 1e-6 >= o.start_s && t + 1e-6 < o.end_s {
                paste(&mut pic.data, w, sp);
                let e = spans[i].get_or_insert((t, t));
                e.1 = t;
            }
        }
        light(&mut pic, &spec.light, t, n);
        if let Some(sh) = spec
            .shift
            .iter()
            .find(|sh| t + 1e-6 >= sh.start_s && t + 1e-6 < sh.end_s)
        {
            shift(&mut pic, sh.dx, sh.dy);
        }
        let mut buf = gst::Buffer::from_mut_slice(pic.data);
        {
            let b = buf.get_mut().expect("fresh buffer");
            b.set_pts(gst::ClockTime::from_nseconds((t * 1e9).round() as u64));
            b.set_duration(gst::ClockTime::from_nseconds((frame_s * 1e9).round() as u64));
        }
        appsrc
            .push_buffer(buf)
            .map_err(|e| anyhow::anyhow!("encoder refused a frame: {e:?}"))?;
        n += 1;
        sample = sink.pull_sample().ok();
    }
    let _ = dec.set_state(gst::State::Null);
    appsrc.end_of_stream()?;
    let bus = enc.bus().expect("bus");
    let mut result = Ok(());
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(..) => break,
            gst::MessageView::Error(e) => {
                result = Err(anyhow::anyhow!(
                    "encoding {}: {}",
                    clip.display(),
                    e.error()
                ));
                break;
            }
            _ => {}
        }
    }
    let _ = enc.set_state(gst::State::Null);
    result?;

    let mut events = spec.events.clone();
    for (i, o) in spec.objects.iter().enumerate() {
        let (Some(rule), Some((a, b))) = (o.rule, spans[i]) else {
            continue;
        };
        events.push(TruthEvent {
            rule,
            start_s: round3(a),
            end_s: round3(b + frame_s),
            r#box: Some(o.place),
            plate: o.plate.as_ref().map(|p| p.text.clone()),
            note: Some(format!(
                "composited: {} at {} s",
                o.source
                    .file_name()
                    .map(|f| f.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                o.source_at_s
            )),
        });
    }
    events.sort_by(|a, b| a.start_s.total_cmp(&b.start_s));
    let truth = TruthFile {
        footage: format!("{stem}.mp4"),
        camera: spec.camera.clone(),
        events,
        frames: None,
    };
    std::fs::write(&truth_path, serde_json::to_string_pretty(&truth)? + "\n")?;
    Ok(ScenarioOutput {
        clip,
        truth: truth_path,
        frames: n,
        width: w,
        height: h,
        fps: fps.numer() as f64 / fps.denom() as f64,
    })
}

/// The light at `t`: (gain, tint, noise), tint and noise reached in proportion to how far the
/// gain has gone towards the ramp's end.
fn light_at(ramps: &[LightSpec], t: f64) -> (f64, [f64; 3], f64) {
    let mut now = (1.0, [1.0; 3], 0.0);
    for l in ramps {
        if t < l.start_s {
            break;
        }
        let k = if l.end_s > l.start_s {
            ((t - l.start_s) / (l.end_s - l.start_s)).clamp(0.0, 1.0)
        } else {
            1.0
        };
        let lerp = |a: f64, b: f64| a + (b - a) * k;
        now = (
            lerp(l.from, l.to),
            [
                lerp(now.1[0], l.tint[0]),
                lerp(now.1[1], l.tint[1]),
                lerp(now.1[2], l.tint[2]),
            ],
            lerp(now.2, l.noise),
        );
    }
    now
}

fn light(pic: &mut Rgb, ramps: &[LightSpec], t: f64, frame_no: u64) {
    let (gain, tint, noise) = light_at(ramps, t);
    if gain == 1.0 && tint == [1.0; 3] && noise == 0.0 {
        return;
    }
    for (i, px) in pic.data.chunks_exact_mut(3).enumerate() {
        // A deterministic hash per pixel and frame: the same clip every time.
        let mut hsh = (i as u64 ^ frame_no.wrapping_mul(0x9E37_79B9_7F4A_7C15))
            .wrapping_mul(0xBF58_476D_1CE4_E5B9);
        hsh ^= hsh >> 31;
        let n = ((hsh % 2001) as f64 / 1000.0 - 1.0) * noise;
        for c in 0..3 {
            px[c] = (px[c] as f64 * gain * tint[c] + n)
                .round()
                .clamp(0.0, 255.0) as u8;
        }
    }
}

/// Moves the view by (dx, dy) shares of the frame; what comes into view repeats the edge.
fn shift(pic: &mut Rgb, dx: f64, dy: f64) {
    let (w, h) = (pic.w as i64, pic.h as i64);
    let (ox, oy) = (
        (dx * w as f64).round() as i64,
        (dy * h as f64).round() as i64,
    );
    let src = pic.data.clone();
    for y in 0..h {
        let sy = (y - oy).clamp(0, h - 1);
        for x in 0..w {
            let sx = (x - ox).clamp(0, w - 1);
            let (d, s) = (((y * w + x) * 3) as usize, ((sy * w + sx) * 3) as usize);
            pic.data[d..d + 3].copy_from_slice(&src[s..s + 3]);
        }
    }
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
