//! The cost of plate reading (issue 29): one keyframe decoded at 1080p from a packet (what
//! each read of a standing vehicle, and each capture's photo, pays beside analysis), and one
//! read of a vehicle's crop by the PP-OCRv4 reader, on rendered plates of every kind.
//!
//! Run with `make bench-plates` (or `cargo bench --bench plates`). The keyframe is vtest.mp4's
//! first frame, upscaled to 1920x1080 and encoded as one H.264 IDR frame.

use std::path::Path;
use std::time::{Duration, Instant};

use citywatch::ingest::ring::Packet;
use citywatch::plate::render::{random_plate, render_plate};
use citywatch::plate::{OcrPlateReader, PlateManifest, PlateReader, RgbImage};
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

fn keyframe_1080p() -> Packet {
    gst::init().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("sample-videos/vtest.mp4");
    let desc = format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! videoscale ! \
         video/x-raw,width=1920,height=1080,format=I420 ! x264enc key-int-max=1 bframes=0 \
         speed-preset=veryfast bitrate=4000 ! h264parse config-interval=-1 ! \
         video/x-h264,stream-format=byte-stream,alignment=au ! appsink name=sink sync=false",
        src.display()
    );
    let p = gst::parse::launch(&desc)
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
    let sink = p
        .by_name("sink")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    let sample = sink.pull_sample().unwrap();
    p.set_state(gst::State::Null).unwrap();
    let buffer = sample.buffer_owned().unwrap();
    Packet {
        pts: 0,
        dts: Some(0),
        key: true,
        buffer,
        caps: sample.caps().unwrap().to_owned(),
    }
}

fn summary(mut v: Vec<Duration>) -> String {
    v.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let mean = v.iter().map(|d| ms(*d)).sum::<f64>() / v.len() as f64;
    format!(
        "median {:.1} ms, mean {mean:.1} ms, p90 {:.1} ms (n = {})",
        ms(v[v.len() / 2]),
        ms(v[v.len() * 9 / 10]),
        v.len()
    )
}

fn main() {
    let key = keyframe_1080p();
    let mut times = Vec::new();
    for _ in 0..20 {
        let t = Instant::now();
        let s = citywatch::ingest::still::decode_keyframe(&key).unwrap();
        times.push(t.elapsed());
        assert_eq!((s.width, s.height), (1920, 1080));
    }
    println!(
        "still: one 1080p H.264 keyframe decoded to RGB: {}",
        summary(times)
    );

    let lib = citywatch::detect::runtime::library_path(None);
    let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("models");
    let font = citywatch::core::font::load(None).unwrap();
    for threads in [1, 2] {
        let m = PlateManifest::load_named(&models, "plate_ppocr_v4").unwrap();
        let reader = OcrPlateReader::load(m, &lib, threads).unwrap();
        let mut rng = fastrand::Rng::with_seed(29);
        let (mut times, mut exact) = (Vec::new(), 0);
        let n = 40;
        for i in 0..n {
            let text = random_plate(&mut rng, i);
            let plate = render_plate(&font, &text, 20 + (i as u32 % 13));
            // A vehicle crop as a 1080p camera sees a car at 10-20 m: about 2.5 plates wide.
            let (w, h) = (plate.width * 5 / 2, plate.height * 4);
            let mut img = RgbImage::filled(w, h, [120, 124, 130]);
            img.paste(&plate, (w - plate.width) / 2, h * 5 / 8 - plate.height / 2);
            let t = Instant::now();
            let r = reader.read(&img).unwrap();
            times.push(t.elapsed());
            exact += usize::from(r.read.text.as_deref() == Some(text.as_str()));
        }
        println!(
            "plate read, {threads} intra-op thread(s): {}; {exact}/{n} exact",
            summary(times)
        );
    }
}
