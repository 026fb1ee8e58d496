//! Detection with real ONNX Runtime on the shipped models and real frames of the footage.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use citywatch::core::Shutdown;
use citywatch::detect::decode::iou;
use citywatch::detect::{Detection, Detector, Manifest, ModelError, ObjectKind, OrtDetector};
use citywatch::ingest::Frame;

use crate::common::*;

fn models() -> PathBuf {
    repo().join("models")
}

fn ort_lib() -> PathBuf {
    citywatch::detect::runtime::library_path(None)
}

fn load(name: &str) -> OrtDetector {
    let m = Manifest::load_named(&models(), name).unwrap();
    OrtDetector::load(m, &ort_lib(), 2).unwrap_or_else(|e| panic!("{e}"))
}

/// The frame of vtest.mp4 at `t` seconds, at its native 768x576.
async fn vtest_frame(t: u64) -> Frame {
    let f = frames_of("vtest.mp4", 768, 10, &[t]).await.remove(0);
    assert_eq!((f.width, f.height), (768, 576));
    f
}

/// Frames of a sample clip at the given whole seconds (ascending), `width` wide, sampled every
/// `every_s` seconds.
async fn frames_of(clip: &str, width: u32, every_s: u64, at: &[u64]) -> Vec<Frame> {
    let cfg = config(&format!(
        r#"
[[cameras]]
id = "clip"
url = "file://sample-videos/{clip}"
analysis_fps = {}
analysis_width = {width}
keyframe_only = "off"
"#,
        1.0 / every_s as f64
    ));
    let shutdown = Shutdown::new();
    let mut cam = start_cameras(&cfg, &shutdown).pop().unwrap();
    let mut out = Vec::new();
    while let Some(f) = cam.next_frame().await {
        if at.iter().any(|&t| f.pts == Some(Duration::from_secs(t))) {
            out.push(f);
            if out.len() == at.len() {
                shutdown.trigger();
                return out;
            }
        }
    }
    panic!("{clip}: found {} of the frames at {at:?} s", out.len());
}

/// Boxes written down by looking at vtest.mp4 at 10 s (frame 100), in pixels of 768x576.
const PEOPLE_AT_10S: [(&str, [f32; 4]); 4] = [
    ("distant walker, top left", [222.0, 60.0, 238.0, 95.0]),
    ("woman in a dark coat", [349.0, 198.0, 381.0, 274.0]),
    ("man beside her", [375.0, 180.0, 410.0, 256.0]),
    ("man walking right", [590.0, 155.0, 617.0, 234.0]),
];
const VAN: [f32; 4] = [652.0, 44.0, 724.0, 100.0];
const CAR: [f32; 4] = [734.0, 50.0, 768.0, 92.0];

fn norm(b: [f32; 4]) -> [f32; 4] {
    [b[0] / 768.0, b[1] / 576.0, b[2] / 768.0, b[3] / 576.0]
}

fn found(dets: &[Detection], kind: ObjectKind, truth: [f32; 4]) -> Option<f32> {
    dets.iter()
        .filter(|d| d.kind == kind)
        .map(|d| iou(&d.bbox, &norm(truth)))
        .filter(|&i| i >= 0.5)
        .reduce(f32::max)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_model_finds_the_pedestrians_the_van_and_the_car() {
    let frame = vtest_frame(10).await;
    let det = load("ssd_mobilenet_v2_coco");
    let dets = det.detect(&[&frame]).unwrap().remove(0);
    for (who, b) in PEOPLE_AT_10S {
        assert!(
            found(&dets, ObjectKind::Person, b).is_some(),
            "{who} not found: {dets:#?}"
        );
    }
    assert!(
        found(&dets, ObjectKind::Vehicle, VAN).is_some(),
        "van: {dets:#?}"
    );
    assert!(
        found(&dets, ObjectKind::Vehicle, CAR).is_some(),
        "car: {dets:#?}"
    );

    // Every detection carries its appearance, pooled from the network's block-13 map: the
    // van 30 s later looks like itself, and more like itself than like the woman.
    let look = |ds: &[Detection], kind: ObjectKind, truth: [f32; 4]| -> Vec<f32> {
        ds.iter()
            .filter(|d| d.kind == kind)
            .max_by(|a, b| iou(&a.bbox, &norm(truth)).total_cmp(&iou(&b.bbox, &norm(truth))))
            .and_then(|d| d.embedding.as_deref().map(<[f32]>::to_vec))
            .expect("an embedding")
    };
    assert!(
        dets.iter()
            .all(|d| d.embedding.as_ref().is_some_and(|e| e.len() == 576))
    );
    let van = look(&dets, ObjectKind::Vehicle, VAN);
    let later = det.detect(&[&vtest_frame(40).await]).unwrap().remove(0);
    let van_later = look(&later, ObjectKind::Vehicle, VAN);
    let woman = look(&dets, ObjectKind::Person, PEOPLE_AT_10S[1].1);
    let sim = citywatch::model::embedding::similarity;
    assert!(sim(&van, &van_later) > 0.9, "{}", sim(&van, &van_later));
    assert!(
        sim(&van, &woman) < sim(&van, &van_later),
        "{}",
        sim(&van, &woman)
    );

    // Deterministic: the same frame again, and the same frame in a batch of four, give the
    // same detections.
    let again = det.detect(&[&frame]).unwrap().remove(0);
    assert_eq!(dets, again);
    let batch = det.detect(&[&frame, &frame, &frame, &frame]).unwrap();
    assert_eq!(batch.len(), 4);
    for b in batch {
        assert_eq!(b.len(), dets.len());
        for (x, y) in b.iter().zip(&dets) {
            assert_eq!(x.label, y.label);
            assert!((x.score - y.score).abs() < 1e-4);
            assert!(iou(&x.bbox, &y.bbox) > 0.999);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pedestrian_model_finds_the_separate_walkers() {
    let frame = vtest_frame(10).await;
    let det = load("ssdlite_mobilenet_v2_pedestrian");
    let dets = det.detect(&[&frame]).unwrap().remove(0);
    assert!(dets.iter().all(|d| d.kind == ObjectKind::Person));
    // The small distant walker is beyond this model; the three near ones are not.
    for (who, b) in &PEOPLE_AT_10S[1..] {
        assert!(
            found(&dets, ObjectKind::Person, *b).is_some(),
            "{who} not found: {dets:#?}"
        );
    }
}

/// The network-only models with anchors, decoding and NMS in Rust find what TensorFlow's
/// whole graphs find, on real frames of both sample clips: the same objects, label for label,
/// within a small box and score tolerance. Detections within 0.05 of the score threshold may
/// fall either side of it in one of the two and are not required to match.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ssd_raw_matches_the_whole_graph() {
    let mut frames = frames_of("vtest.mp4", 768, 5, &[0, 15, 30, 45, 60, 75]).await;
    frames.extend(frames_of("bikes.mp4", 640, 2, &[2, 4, 6]).await);
    for (raw, whole) in [
        ("ssd_mobilenet_v2_coco", "ssd_mobilenet_v2_coco_tf"),
        (
            "ssdlite_mobilenet_v2_pedestrian",
            "ssdlite_mobilenet_v2_pedestrian_tf",
        ),
    ] {
        let (a, b) = (load(raw), load(whole));
        assert!(matches!(
            a.manifest().output,
            citywatch::detect::manifest::OutputLayout::SsdRaw { .. }
        ));
        let (mut matched, mut worst_iou, mut worst_score) = (0, 1.0f32, 0.0f32);
        for (i, f) in frames.iter().enumerate() {
            let da = a.detect(&[f]).unwrap().remove(0);
            let db = b.detect(&[f]).unwrap().remove(0);
            let min = a.manifest().min_score;
            for (from, to, side) in [(&da, &db, raw), (&db, &da, whole)] {
                for d in from.iter().filter(|d| d.score >= min + 0.05) {
                    let best = to
                        .iter()
                        .filter(|e| e.label == d.label)
                        .max_by(|x, y| iou(&x.bbox, &d.bbox).total_cmp(&iou(&y.bbox, &d.bbox)));
                    let Some(e) = best else {
                        panic!(
                            "{raw}, frame {i}: {side}'s {d:?} has no counterpart in {from:#?} / {to:#?}"
                        );
                    };
                    let (o, ds) = (iou(&e.bbox, &d.bbox), (e.score - d.score).abs());
                    assert!(
                        o >= 0.99 && ds <= 0.005,
                        "{raw}, frame {i}: {side}'s {d:?} against {e:?}: IoU {o}, score gap {ds}"
                    );
                    worst_iou = worst_iou.min(o);
                    worst_score = worst_score.max(ds);
                    matched += 1;
                }
            }
        }
        eprintln!(
            "{raw}: {matched} detections matched; worst IoU {worst_iou:.4}, worst score gap {worst_score:.4}"
        );
        assert!(matched >= 20, "{raw}: only {matched} detections to compare");
    }
}

fn plain(w: u32, h: u32, v: u8) -> Frame {
    Frame::from_rgb("t".into(), w, h, vec![v; (w * h * 3) as usize])
}

fn close(a: [f32; 4], b: [f32; 4]) -> bool {
    a.iter().zip(b).all(|(x, y)| (x - y).abs() < 1e-4)
}

#[test]
fn tiny_yolo_models_run_the_whole_path() {
    for name in ["tiny_yolov8", "tiny_yolov5"] {
        let det = load(name);
        // White square: full scores. Box 1 overlaps box 0 (IoU 0.82) and is suppressed.
        let d = det.detect(&[&plain(64, 64, 255)]).unwrap().remove(0);
        assert_eq!(d.len(), 2, "{name}: {d:?}");
        assert_eq!((&*d[0].label, d[0].kind), ("bin", ObjectKind::Bin));
        assert!((d[0].score - 0.9).abs() < 1e-4, "{name}: {d:?}");
        assert!(close(
            d[0].bbox,
            [10.0 / 64.0, 10.0 / 64.0, 30.0 / 64.0, 30.0 / 64.0]
        ));
        assert_eq!((&*d[1].label, d[1].kind), ("cart", ObjectKind::StallPart));
        assert!((d[1].score - 0.7).abs() < 1e-4);

        // Black: nothing scores.
        assert!(det.detect(&[&plain(64, 64, 0)]).unwrap()[0].is_empty());

        // A 128x64 white frame is letterboxed to 64x32 plus 16 rows of grey above and
        // below; boxes map back onto the frame.
        let d = det.detect(&[&plain(128, 64, 255)]).unwrap().remove(0);
        let mean = 0.5 + 0.5 * 114.0 / 255.0;
        assert!((d[0].score - 0.9 * mean).abs() < 1e-3, "{name}: {d:?}");
        assert!(
            close(d[0].bbox, [20.0 / 128.0, 0.0, 60.0 / 128.0, 28.0 / 64.0]),
            "{d:?}"
        );
        assert!(
            close(d[1].bbox, [86.0 / 128.0, 54.0 / 64.0, 106.0 / 128.0, 1.0]),
            "{d:?}"
        );
    }
}

/// Copies a tiny model and its manifest into `dir`, editing the manifest text.
fn tiny_variant(dir: &Path, edit: impl Fn(String) -> String) -> Result<OrtDetector, ModelError> {
    std::fs::copy(
        models().join("tiny_yolov8.onnx"),
        dir.join("tiny_yolov8.onnx"),
    )
    .unwrap();
    let text = std::fs::read_to_string(models().join("tiny_yolov8.toml")).unwrap();
    std::fs::write(dir.join("tiny_yolov8.toml"), edit(text)).unwrap();
    let m = Manifest::load_named(dir, "tiny_yolov8")?;
    OrtDetector::load(m, &ort_lib(), 1)
}

#[test]
fn wrong_models_fail_at_startup_naming_the_model_and_field() {
    // (what, manifest text to replace, replacement, field, message part)
    let cases = [
        (
            "missing file",
            "file = \"tiny_yolov8.onnx\"",
            "file = \"gone.onnx\"",
            "file",
            "gone.onnx does not exist",
        ),
        (
            "sha256 mismatch",
            "sha256 = \"a0",
            "sha256 = \"b0",
            "sha256",
            "mismatch: the manifest says b0312",
        ),
        (
            "input size disagrees",
            "size = [64, 64]",
            "size = [32, 32]",
            "input.size",
            "the manifest says [32, 32], the model takes 64x64",
        ),
        (
            "input name wrong",
            "name = \"images\"",
            "name = \"input\"",
            "input.name",
            "the model has no input \"input\" (it has [\"images\"])",
        ),
        (
            "label count",
            "labels = [\"cart\", \"bin\"]",
            "labels = [\"cart\", \"bin\", \"bag\"]",
            "labels",
            "3 labels, but the output has 2 classes",
        ),
        (
            "unknown layout",
            "layout = \"yolov8\"",
            "layout = \"yolov9\"",
            "output.layout",
            "unknown variant `yolov9`, expected one of `ssd_tf`, `ssd_raw`, `yolov5`, `yolov8`, `centernet_topk`",
        ),
    ];
    // A feature map the graph does not have.
    let dir = tempfile::tempdir().unwrap();
    let e = tiny_variant(dir.path(), |t| {
        format!("{t}\n[features]\noutput = \"no_such_map:0\"\nlayout = \"nchw\"\n")
    })
    .err()
    .expect("a missing feature map fails the load");
    assert_eq!(
        (e.model.as_str(), e.field.as_str()),
        ("tiny_yolov8", "features.output")
    );
    assert!(e.message.contains("no_such_map:0"), "{e}");
    for (what, from, to, field, text) in cases {
        let dir = tempfile::tempdir().unwrap();
        let e = tiny_variant(dir.path(), |t| t.replace(from, to))
            .err()
            .unwrap_or_else(|| panic!("{what}: loaded"));
        assert_eq!(e.model, "tiny_yolov8", "{what}: {e}");
        assert_eq!(e.field, field, "{what}: {e}");
        assert!(e.message.contains(text), "{what}: {e}");
        assert!(
            e.to_string()
                .starts_with(&format!("model tiny_yolov8: {field}: "))
        );
    }
}

#[test]
fn a_missing_onnx_runtime_library_is_an_error_not_a_panic() {
    let m = Manifest::load_named(&models(), "tiny_yolov8").unwrap();
    let e = OrtDetector::load(m, Path::new("/nonexistent/libonnxruntime.so.1.31.0"), 1)
        .err()
        .unwrap();
    assert_eq!(
        (e.model.as_str(), e.field.as_str()),
        ("tiny_yolov8", "ort_library")
    );
    assert!(
        e.message
            .contains("ONNX Runtime library not found at /nonexistent"),
        "{e}"
    );
}

#[test]
fn detect_command_prints_json_lines() {
    let out = std::process::Command::new(bin())
        .args(["detect", "--every", "100", "sample-videos/vtest.mp4"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lines: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let at_10s: Vec<_> = lines.iter().filter(|l| l["frame"] == 100).collect();
    assert!(at_10s.iter().filter(|l| l["kind"] == "person").count() >= 4);
    assert!(at_10s.iter().any(|l| l["label"] == "car"));
    assert!(lines.iter().all(|l| l["score"].as_f64().unwrap() >= 0.3));
    assert_eq!(at_10s[0]["pts_s"], 10.0);

    let bad = std::process::Command::new(bin())
        .args([
            "detect",
            "--model",
            "no_such_model",
            "sample-videos/vtest.mp4",
        ])
        .current_dir(repo())
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("model no_such_model: manifest: cannot read"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_batches_real_inference_across_cameras() {
    let det: Arc<dyn Detector> = Arc::new(load("ssdlite_mobilenet_v2_pedestrian"));
    let svc = citywatch::detect::DetectionService::start(
        det,
        citywatch::detect::ServiceConfig {
            max_wait: Duration::from_millis(50),
            ..Default::default()
        },
    );
    let frame = Arc::new(vtest_frame(10).await);
    let tasks: Vec<_> = (0..6)
        .map(|_| {
            let svc = svc.clone();
            let f = frame.clone();
            tokio::spawn(async move { svc.detect(f).await.unwrap() })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    for r in &results {
        assert_eq!(r.len(), results[0].len());
        assert!(!r.is_empty());
    }
}
