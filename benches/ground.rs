//! The cost of a no-vending zone's ground (`scene::ground`, the vendor rule's unlabelled
//! goods) per analysed frame: 300 real frames of `sample-videos/vtest.mp4` at the default
//! analysis width (640), decoded once, then each zone's grid sampled and compared with its
//! reference, its blobs tracked, with the walkers as people over it. Three zone sizes: the
//! scenario's lawn (a fifth of the frame), a quarter of the frame, and the whole frame.
//!
//! Run with `cargo bench --bench ground`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use citywatch::config::PipelineConfig;
use citywatch::core::{Shutdown, SystemClock};
use citywatch::ingest::{Frame, spawn_camera};
use citywatch::model::Polygon;
use citywatch::scene::ground::{Ground, GroundView, side_for};
use citywatch::scene::structure::Patch;

const FRAMES: usize = 300;

async fn frames() -> Vec<Frame> {
    let repo = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let cfg = PipelineConfig::parse(
        "[[cameras]]\nid = \"bench\"\nurl = \"file://sample-videos/vtest.mp4\"\nanalysis_fps = 10\n",
        &repo,
    )
    .unwrap();
    let mut cam = spawn_camera(
        &cfg.cameras[0],
        &cfg.ingest,
        cfg.backoff(),
        Arc::new(SystemClock),
        Shutdown::new(),
    );
    let mut out = Vec::new();
    while out.len() < FRAMES {
        match cam.next_frame().await {
            Some(f) => out.push(f),
            None => break,
        }
    }
    out
}

fn rect(b: [f32; 4]) -> Polygon {
    Polygon(vec![[b[0], b[1]], [b[2], b[1]], [b[2], b[3]], [b[0], b[3]]])
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let frames = rt.block_on(frames());
    assert!(!frames.is_empty(), "no frames of vtest.mp4");
    let (w, h) = (frames[0].width, frames[0].height);
    println!("{} frames of {w}x{h}", frames.len());
    for (name, zone) in [
        ("lawn (0.45 x 0.47)", [0.0, 0.45, 0.45, 0.92]),
        ("quarter (0.5 x 0.5)", [0.5, 0.5, 1.0, 1.0]),
        ("whole frame", [0.0, 0.0, 1.0, 1.0]),
    ] {
        let poly = rect(zone);
        let side = side_for(w, h, &poly.bounds());
        let (mut g, mut view) = (Ground::default(), GroundView::default());
        // People walking over it: the middle road's walkers, as boxes (the detector's part).
        let covered = [[0.35f32, 0.30, 0.42, 0.50], [0.88, 0.50, 0.97, 0.72]];
        let aspect = (zone[3] - zone[1]) * h as f32 / ((zone[2] - zone[0]) * w as f32);
        let started = Instant::now();
        for (k, f) in frames.iter().enumerate() {
            let patch = Patch::of_side(f, &poly, side);
            g.observe(&mut view, &patch, &covered, &poly, aspect, k as f64);
        }
        let per = started.elapsed().as_secs_f64() / frames.len() as f64;
        println!(
            "{name}: {side}x{side} cells, {:.0} µs per frame ({:.2} CPU-s per camera-hour at 1 frame/s)",
            per * 1e6,
            per * 3600.0
        );
    }
}
