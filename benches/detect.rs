//! Detection cost per shipped model on real sample frames (vtest.mp4 at 0, 10, ... 70 s,
//! 640x480 analysis frames):
//!
//! - TensorFlow's whole graphs (`*_tf`, NMS as ONNX `Loop`s) against the same networks cut
//!   before the post-processing (`layout = "ssd_raw"`, anchors, decoding and NMS in Rust),
//!   and the int8 (QDQ) network when `models/convert/quantize.py` has made one;
//! - `session.run` alone, against the whole detect path (frame → preprocessing → run →
//!   decoding), and the share of the path spent outside `session.run`;
//! - batch-1 against batch-4 throughput;
//! - the same model and the same input tensor in Python onnxruntime 1.31 (`detect_peer.py`),
//!   when `.local/bench-venv` exists (`make bench` makes it).
//!
//! Run with `make bench` (or `cargo bench --bench detect`).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use citywatch::config::PipelineConfig;
use citywatch::core::{Shutdown, SystemClock};
use citywatch::detect::{Detector, Manifest, OrtDetector};
use citywatch::ingest::{Frame, spawn_camera};

const ROUNDS: usize = 30;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn frames() -> Vec<Frame> {
    let cfg = PipelineConfig::parse(
        "[[cameras]]\nid = \"bench\"\nurl = \"file://sample-videos/vtest.mp4\"\nanalysis_fps = 0.1\nanalysis_width = 640\nkeyframe_only = \"off\"\n",
        &repo(),
    )
    .unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut cam = spawn_camera(
            &cfg.cameras[0],
            &cfg.ingest,
            cfg.backoff(),
            Arc::new(SystemClock),
            Shutdown::new(),
        );
        let mut out = Vec::new();
        while let Some(f) = cam.next_frame().await {
            out.push(f);
        }
        out
    })
}

fn median(mut v: Vec<Duration>) -> f64 {
    v.sort();
    v[v.len() / 2].as_secs_f64() * 1000.0
}

/// Writes the model's input tensor for `frame` for the Python peer; returns its dtype and
/// shape as the peer's arguments.
fn dump_input(
    frame: &Frame,
    spec: &citywatch::detect::manifest::InputSpec,
    path: &Path,
) -> [String; 2] {
    use citywatch::detect::manifest::{DType, Layout};
    let mut pre = citywatch::detect::preprocess::Preprocessor::new(spec);
    let n = pre.item_len(frame.width, frame.height);
    let [w, h] = spec.size.unwrap();
    let shape = match spec.layout {
        Layout::Nhwc => format!("1,{h},{w},3"),
        Layout::Nchw => format!("1,3,{h},{w}"),
    };
    match spec.dtype {
        DType::U8 => {
            let mut buf = vec![0u8; n];
            pre.write_u8(frame, &mut buf);
            std::fs::write(path, buf).unwrap();
            ["uint8".into(), shape]
        }
        DType::F32 => {
            let mut buf = vec![0f32; n];
            pre.write_f32(frame, &mut buf);
            let bytes: Vec<u8> = buf.iter().flat_map(|v| v.to_le_bytes()).collect();
            std::fs::write(path, bytes).unwrap();
            ["float32".into(), shape]
        }
    }
}

fn main() {
    let frames = frames();
    assert_eq!(frames.len(), 8);
    println!(
        "detect bench: {} frames of vtest at {}x{}, median of {ROUNDS} rounds, 2 intra-op threads",
        frames.len(),
        frames[0].width,
        frames[0].height
    );
    let lib = citywatch::detect::runtime::library_path(None);
    let data = repo().join("target/bench-data");
    std::fs::create_dir_all(&data).unwrap();
    let models = repo().join("models");
    let mut summary = Vec::new();
    for name in [
        "ssd_mobilenet_v2_coco_tf",
        "ssd_mobilenet_v2_coco",
        "ssd_mobilenet_v2_coco_int8",
        "ssdlite_mobilenet_v2_pedestrian_tf",
        "ssdlite_mobilenet_v2_pedestrian",
    ] {
        let Ok(manifest) = Manifest::load_named(&models, name) else {
            println!("{name}: skipped (no manifest)");
            continue;
        };
        if !manifest.path.exists() {
            println!(
                "{name}: skipped (no {}; models/convert makes it)",
                manifest.path.display()
            );
            continue;
        }
        let spec = manifest.input.clone();
        let model_path = manifest.path.clone();
        // The feature output's cost, once, on the default model.
        let plain_manifest =
            (manifest.features.is_some() && name == "ssd_mobilenet_v2_coco").then(|| {
                let mut m = manifest.clone();
                m.features = None;
                m
            });
        let det = OrtDetector::load(manifest, &lib, 2).unwrap();
        // Warm up.
        for f in &frames {
            det.detect(&[f]).unwrap();
        }
        let (mut run, mut pre, mut dec, mut whole) = (vec![], vec![], vec![], vec![]);
        for r in 0..ROUNDS {
            let f = &frames[r % frames.len()];
            let t = Instant::now();
            det.detect(&[f]).unwrap();
            whole.push(t.elapsed());
            let tm = det.last_timings();
            run.push(tm.run);
            pre.push(tm.preprocess);
            dec.push(tm.decode);
        }
        let (run_ms, pre_ms, dec_ms, whole_ms) =
            (median(run), median(pre), median(dec), median(whole));
        println!("{name}:");
        println!(
            "  batch 1: session.run {run_ms:.2} ms | preprocess {pre_ms:.3} ms | decode {dec_ms:.3} ms | whole path {whole_ms:.2} ms | outside session.run {:.1}% of it",
            (whole_ms - run_ms) / whole_ms * 100.0
        );
        if let Some(m) = plain_manifest {
            // The same file without the feature map among the outputs; rounds alternate so
            // both see the same machine state.
            let plain = OrtDetector::load(m, &lib, 2).unwrap();
            for f in &frames {
                plain.detect(&[f]).unwrap();
            }
            let (mut with, mut without, mut pooled) = (vec![], vec![], vec![]);
            for r in 0..ROUNDS * 2 {
                let f = &frames[r % frames.len()];
                let t = Instant::now();
                plain.detect(&[f]).unwrap();
                without.push(t.elapsed());
                let t = Instant::now();
                let d = det.detect(&[f]).unwrap();
                with.push(t.elapsed());
                pooled.push(det.last_timings().decode);
                assert!(d[0].iter().all(|d| d.embedding.is_some()));
            }
            let (a, b) = (median(without), median(with));
            println!(
                "  features: plain {a:.2} ms | with the feature output and pooling {b:.2} ms ({:+.1}%) | decode with pooling {:.3} ms",
                (b - a) / a * 100.0,
                median(pooled)
            );
        }
        let mut batched = vec![];
        for r in 0..ROUNDS / 2 {
            let b: Vec<&Frame> = (0..4)
                .map(|i| &frames[(r * 4 + i) % frames.len()])
                .collect();
            let t = Instant::now();
            det.detect(&b).unwrap();
            batched.push(t.elapsed());
        }
        let b4 = median(batched);
        println!(
            "  throughput: batch 1 {:.1} frames/s, batch 4 {:.1} frames/s ({b4:.1} ms per batch)",
            1000.0 / whole_ms,
            4000.0 / b4
        );
        summary.push((
            name,
            whole_ms,
            1000.0 / whole_ms,
            4000.0 / b4,
            (whole_ms - run_ms) / whole_ms * 100.0,
        ));

        let peer = repo().join(".local/bench-venv/bin/python");
        if peer.exists() {
            let input = data.join(format!("{name}.input"));
            let [dtype, shape] = dump_input(&frames[1], &spec, &input);
            let out = Command::new(&peer)
                .arg(repo().join("benches/detect_peer.py"))
                .arg(&model_path)
                .arg(&input)
                .arg(dtype)
                .arg(shape)
                .arg(ROUNDS.to_string())
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let py_ms: f64 = text.trim().parse().unwrap_or(f64::NAN);
            // The same tensor through Rust's session.run alone, for a like-for-like figure.
            let mut rust_same = vec![];
            for _ in 0..ROUNDS {
                rust_same.push(det.bench_run_only(&frames[1], 1).unwrap());
            }
            println!(
                "  peer: Python onnxruntime session.run {py_ms:.2} ms against Rust {:.2} ms on the same frame{}",
                median(rust_same),
                if out.status.success() {
                    ""
                } else {
                    " (peer failed)"
                }
            );
        } else {
            println!("  peer: skipped (no .local/bench-venv; `make bench` makes it)");
        }
    }
    println!();
    println!(
        "| model | whole path, batch 1 | frames/s, batch 1 | frames/s, batch 4 | outside session.run |"
    );
    println!("|---|---|---|---|---|");
    for (name, ms, fps1, fps4, outside) in summary {
        println!("| {name} | {ms:.1} ms | {fps1:.1} | {fps4:.1} | {outside:.1} % |");
    }
}
