//! Evidence and filing end to end: packages from real footage (their images decoded and their
//! clips demuxed and decoded by GStreamer, and compared with the source's own bitstream), an
//! unwritable and a full evidence disk, and `kill -9` in the middle of filing.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use citywatch::analysis::CaptureFrames;
use citywatch::config::{PipelineConfig, RuleKind};
use citywatch::core::{Shutdown, SystemClock};
use citywatch::evidence::image::Picture;
use citywatch::filing::{CameraEvidence, FilingStage, FilingStatus};
use citywatch::model::live::BlockReason;
use citywatch::ratelimit::Capture;
use citywatch::rules::engine::Candidate;
use citywatch::store::Store;
use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;

use crate::common::*;

/// A copy of `pipelines/demo.toml` (so its relative paths hold) with its own evidence root,
/// queue and `[cases]` additions; removed on drop.
pub(crate) struct DemoConfig {
    pub(crate) path: PathBuf,
}

impl DemoConfig {
    pub(crate) fn new(evidence: &Path, spool: &Path, cases_extra: &str) -> Self {
        let text = std::fs::read_to_string(repo().join("pipelines/demo.toml")).unwrap();
        // The demo's platform is the simulator `make demo` starts: the tests bring their own.
        let demo_hook = "[cases.webhook]\nurl = \"http://127.0.0.1:8091/intake\"\nsecret = \"demo-webhook-secret-0123\"\n";
        assert!(text.contains(demo_hook));
        let text = text
            .replace(demo_hook, "")
            .replace(
                "root = \"../.local/demo-evidence\"",
                &format!("root = {:?}", evidence.display().to_string()),
            )
            .replace(
                "spool = \"../.local/demo-spool\"",
                &format!("spool = {:?}\n{cases_extra}", spool.display().to_string()),
            );
        assert!(text.contains(&evidence.display().to_string()));
        let path = repo().join(format!(
            "pipelines/.test-{}-{}.toml",
            std::process::id(),
            fastrand::u32(..)
        ));
        std::fs::write(&path, text).unwrap();
        Self { path }
    }
}

impl Drop for DemoConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

pub(crate) fn replay_cmd(cfg: &DemoConfig, db: &str) -> Command {
    let mut c = Command::new(bin());
    c.arg("replay")
        .arg(&cfg.path)
        .args(["--db", db])
        .current_dir(repo())
        .env("CITYWATCH_LOG", "warn");
    c
}

/// `filesrc location=PATH ! CHAIN ! appsink`, playing.
fn play(path: &Path, chain: &str) -> (gst::Pipeline, gst_app::AppSink) {
    gst::init().unwrap();
    let p = gst::parse::launch(&format!(
        "filesrc location={:?} ! {chain} ! appsink name=s sync=false",
        path.display().to_string()
    ))
    .unwrap()
    .downcast::<gst::Pipeline>()
    .unwrap();
    let sink = p
        .by_name("s")
        .unwrap()
        .downcast::<gst_app::AppSink>()
        .unwrap();
    p.set_state(gst::State::Playing).unwrap();
    (p, sink)
}

/// (pts in ns, bytes) of every H.264 sample in an MP4, in file order.
fn samples(path: &Path) -> Vec<(u64, Vec<u8>)> {
    let (p, sink) = play(path, "qtdemux ! video/x-h264");
    let mut out = Vec::new();
    while let Ok(s) = sink.pull_sample() {
        let b = s.buffer().unwrap();
        out.push((
            b.pts().map_or(0, |t| t.nseconds()),
            b.map_readable().unwrap().to_vec(),
        ));
    }
    p.set_state(gst::State::Null).unwrap();
    out
}

/// Decodes a file with GStreamer: (frames, width, height). Panics on a decoding error.
/// Runs `citywatch COMMAND PIPELINE OUT --db DB` (an export) and reads OUT/annotations.json.
fn export(command: &str, pipeline: &Path, out: &Path, db: &str) -> serde_json::Value {
    let o = Command::new(bin())
        .arg(command)
        .arg(pipeline)
        .arg(out)
        .args(["--db", db])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&std::fs::read(out.join("annotations.json")).unwrap()).unwrap()
}

fn decode(path: &Path, chain: &str) -> (usize, i32, i32) {
    let (p, sink) = play(
        path,
        &format!("{chain} ! videoconvert ! video/x-raw,format=RGB"),
    );
    let (mut n, mut w, mut h) = (0, 0, 0);
    while let Ok(s) = sink.pull_sample() {
        let st = s.caps().unwrap().structure(0).unwrap().to_owned();
        w = st.get::<i32>("width").unwrap();
        h = st.get::<i32>("height").unwrap();
        n += 1;
    }
    let bus = p.bus().unwrap();
    if let Some(m) = bus.pop_filtered(&[gst::MessageType::Error]) {
        panic!("decoding {}: {m:?}", path.display());
    }
    p.set_state(gst::State::Null).unwrap();
    (n, w, h)
}

#[test]
fn replayed_captures_get_verified_packages_with_clips_cut_from_the_source_bitstream() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("evidence");
    let cfg = DemoConfig::new(&root, &dir.path().join("spool"), "");
    let db = format!("sqlite://{}", dir.path().join("cases.db").display());
    let out = replay_cmd(&cfg, &db).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let packages = citywatch::evidence::packages(&root);
    assert_eq!(packages.len(), 2, "{packages:?}");
    let source = samples(&repo().join("sample-videos/vtest.mp4"));
    for dir in &packages {
        let m = citywatch::evidence::verify(dir).unwrap();
        let names: Vec<&str> = m.files.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(
            names,
            ["confirm.jpg", "crop.jpg", "first_seen.jpg", "clip.mp4"],
            "{:?}",
            m.notes
        );
        assert_eq!(m.camera.id, "vtest");
        assert_eq!(m.rule.kind, "abandoned_vehicle");
        assert_eq!(m.rule.dwell_s, 60.0);
        assert_eq!(m.model.as_ref().unwrap().name, "ssd_mobilenet_v2_coco");
        assert_eq!(m.confirmed.local, "2026-01-05T09:01:00+08:00");
        assert_eq!(m.confirmed.utc, "2026-01-05T01:01:00Z");
        assert_eq!(m.confirmed.stream_s, Some(60.0));
        assert!(m.location.grid_code.len() > 5);
        assert!(dir.to_string_lossy().contains("2026-01-05/vtest/cap-"));

        // Images decode. The confirmation photo is the camera's own keyframe at its full
        // size (768x576), not the 640-wide analysis frame; the manifest says which keyframe.
        assert_eq!(
            decode(&dir.join("confirm.jpg"), "jpegdec"),
            (1, 768, 576),
            "{:?}",
            m.notes
        );
        assert!(
            m.notes.iter().any(|n| n.contains("full size 768x576")),
            "{:?}",
            m.notes
        );
        // The first-seen frame is long gone from the stream buffer: analysis size.
        assert_eq!(
            decode(&dir.join("first_seen.jpg"), "jpegdec"),
            (1, 640, 480)
        );
        assert_eq!(decode(&dir.join("crop.jpg"), "jpegdec").0, 1);

        // The clip: 10 s either side of the confirmation, from a keyframe, decodable.
        let span = m.clip.unwrap();
        assert!(
            span.start_s <= 50.0 + 1e-6 && span.start_s > 48.9,
            "{span:?}"
        );
        assert!(span.end_s >= 70.0, "{span:?}");
        let clip = dir.join("clip.mp4");
        let (frames, w, h) = decode(&clip, "qtdemux ! h264parse ! avdec_h264");
        assert_eq!((w, h), (768, 576));
        assert_eq!(frames, span.packets);
        assert!(frames >= 200, "{frames} frames for 20 s at 10 fps");

        // Not re-encoded: its samples are the source's samples, in order, from the one at
        // the clip's start.
        let cut = samples(&clip);
        assert_eq!(cut.len(), span.packets);
        let start_ns = (span.start_s * 1e9).round() as u64;
        let i = source
            .iter()
            .position(|(pts, _)| pts.abs_diff(start_ns) < 1_000_000)
            .expect("the clip's first sample is in the source");
        for (k, (_, bytes)) in cut.iter().enumerate() {
            assert!(
                source[i + k].1 == *bytes,
                "sample {k} of the clip differs from the source's sample {}",
                i + k
            );
        }
    }

    // The captures in the store refer to their packages.
    let rt = tokio::runtime::Runtime::new().unwrap();
    let refs: Vec<String> = rt.block_on(async {
        let store = Store::connect(&db).await.unwrap();
        sqlx::query_scalar::<_, String>("SELECT evidence FROM captures ORDER BY id")
            .fetch_all(store.pool())
            .await
            .unwrap()
    });
    assert_eq!(refs.len(), 2);
    for r in refs {
        let v: serde_json::Value = serde_json::from_str(&r).unwrap();
        let pkg = v["package"].as_str().unwrap();
        assert!(root.join(pkg).join("manifest.json").is_file(), "{v}");
        assert_eq!(v["files"].as_array().unwrap().len(), 4);
    }

    // An operator rejects one; the negatives export has it as a clean full-resolution frame
    // with the box and the reason.
    let rejected = rt.block_on(async {
        let store = Store::connect(&db).await.unwrap();
        let c = store
            .list_captures(&Default::default())
            .await
            .unwrap()
            .remove(0);
        store
            .reject(&c.id, "op", "false_detection", Some("parked legally"), T0)
            .await
            .unwrap();
        c
    });
    let out_dir = dir.path().join("negatives");
    let coco = export("export-negatives", &cfg.path, &out_dir, &db);
    assert_eq!(coco["images"].as_array().unwrap().len(), 1, "{coco}");
    let img = &coco["images"][0];
    assert_eq!(
        (img["width"].as_u64(), img["height"].as_u64()),
        (Some(768), Some(576))
    );
    let (n, w, h) = decode(&out_dir.join(img["file_name"].as_str().unwrap()), "jpegdec");
    assert_eq!((n, w, h), (1, 768, 576));
    let a = &coco["annotations"][0];
    assert_eq!(a["attributes"]["rejection_reason"], "false_detection");
    assert_eq!(a["attributes"]["note"], "parked legally");
    assert_eq!(a["attributes"]["capture_key"], rejected.id.as_str());
    let bbox: Vec<f64> = serde_json::from_value(a["bbox"].clone()).unwrap();
    assert!(
        bbox[0] >= 0.0 && bbox[0] + bbox[2] <= 768.01 && bbox[2] > 10.0,
        "{bbox:?}"
    );
    assert_eq!(coco["categories"][0]["name"], rejected.label.as_str());

    // The operator confirms the other; the training dataset has both, with their verdicts,
    // and a split by camera.
    rt.block_on(async {
        let store = Store::connect(&db).await.unwrap();
        let c = store
            .list_captures(&Default::default())
            .await
            .unwrap()
            .remove(0);
        let policy = crate::store::table();
        store
            .confirm(&c.id, "op", &policy, &Default::default(), T0)
            .await
            .unwrap();
    });
    let ds_dir = dir.path().join("dataset");
    let coco = export("export-dataset", &cfg.path, &ds_dir, &db);
    let mut verdicts: Vec<String> = coco["annotations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["attributes"]["verdict"].as_str().unwrap().to_string())
        .collect();
    verdicts.sort();
    assert_eq!(verdicts, ["confirmed", "rejected"], "{coco}");
    let split = citywatch::eval::negatives::split_of("vtest");
    assert!(
        coco["images"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["split"] == split)
    );
    let part: serde_json::Value =
        serde_json::from_slice(&std::fs::read(ds_dir.join(format!("{split}.json"))).unwrap())
            .unwrap();
    assert_eq!(part["annotations"].as_array().unwrap().len(), 2);
}

// ---------------------------------------------------------------------------------------
// Faults: the evidence disk refuses writes.

const T0: f64 = 1_767_574_800.0;

fn stage_config(root: &Path, spool: &Path) -> PipelineConfig {
    config(&format!(
        r#"
[cases]
database = "sqlite://unused.db"
categories = "pipelines/categories/default.toml"
spool = {spool:?}

[evidence]
root = {root:?}

[[cameras]]
id = "cam"
name = "Test street"
url = "file://sample-videos/vtest.mp4"
zones = [{{ id = "road", kind = "no_parking", polygon = [[0, 0], [1, 0], [1, 1], [0, 1]] }}]
rules = [{{ rule = "abandoned_vehicle", zones = ["road"], dwell_s = 60 }}]
"#,
        spool = spool.display().to_string(),
        root = root.display().to_string(),
    ))
}

fn capture(i: u64) -> Capture {
    Capture {
        id: i,
        candidate: Candidate {
            rule: RuleKind::AbandonedVehicle,
            camera: "cam".into(),
            preset: None,
            zone: "road".into(),
            place: [0.2, 0.2, 0.5, 0.6],
            episode: Some(i),
            label: "car".into(),
            start: T0,
            confirm: T0 + 60.0 + i as f64,
            bbox: [0.2, 0.2, 0.5, 0.6],
            score: 0.8,
            dwell_s: 60.0,
            embedding: None,
            parts: Vec::new(),
            plate: None,
        },
        aggregation: 1,
        last_evidence: T0 + 60.0,
        closed_at: None,
        left: false,
        resembles: None,
    }
}

fn frames() -> CaptureFrames {
    let (w, h) = (320u32, 240u32);
    let rgb: Vec<u8> = (0..w * h)
        .flat_map(|i| {
            let (x, y) = (i % w, i / w);
            [(x % 256) as u8, (y % 256) as u8, ((x + y) % 256) as u8]
        })
        .collect();
    CaptureFrames {
        confirm: Picture {
            width: w,
            height: h,
            rgb: Arc::new(rgb),
        },
        confirm_stream_s: None,
        first_seen: None,
        plate: None,
    }
}

async fn open_stage(cfg: &PipelineConfig, db: &str) -> (Arc<FilingStage>, Arc<Store>, Shutdown) {
    let store = Arc::new(Store::connect(db).await.unwrap());
    let shutdown = Shutdown::new();
    let stage = FilingStage::open(
        store.clone(),
        Arc::new(cfg.cases.clone().unwrap()),
        cfg.evidence.as_ref(),
        None,
        Arc::new(SystemClock),
        shutdown.clone(),
    )
    .unwrap();
    tokio::spawn(stage.clone().run_drainer());
    (stage, store, shutdown)
}

async fn wait_status(
    stage: &FilingStage,
    what: &str,
    pred: impl FnMut(&FilingStatus) -> bool,
) -> FilingStatus {
    let mut rx = stage.subscribe();
    match tokio::time::timeout(Duration::from_secs(60), rx.wait_for(pred)).await {
        Ok(Ok(s)) => s.clone(),
        _ => panic!("timed out waiting for {what}: {:?}", stage.status()),
    }
}

/// Nothing of the package is visible: no package folder, nothing left in `.incoming`.
fn nothing_half_written(root: &Path) {
    assert!(citywatch::evidence::packages(root).is_empty());
    let incoming = root.join(".incoming");
    let left: Vec<_> = std::fs::read_dir(&incoming)
        .map(|d| d.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "left in .incoming: {left:?}");
}

#[tokio::test]
async fn an_unwritable_evidence_dir_keeps_the_capture_pending_and_it_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    // The root's parent is a file: nothing can be created under it.
    let blocker = dir.path().join("disk");
    std::fs::write(&blocker, b"not a directory").unwrap();
    let root = blocker.join("evidence");
    let cfg = stage_config(&root, &dir.path().join("spool"));
    let db = format!("sqlite://{}", dir.path().join("cases.db").display());
    let (stage, store, shutdown) = open_stage(&cfg, &db).await;
    let cam = CameraEvidence::new(&cfg.cameras[0], None);

    stage.capture(&cam, capture(1), Some(frames()));
    let s = wait_status(&stage, "an evidence error", |s| s.evidence_errors >= 1).await;
    let err = s.last_evidence_error.unwrap();
    assert!(err.contains("evidence") && err.contains("disk"), "{err}");
    assert_eq!(s.evidence_pending, 1, "the capture waits");
    assert_eq!(store.counts().await.unwrap().captures, 0);
    assert_eq!(stage.status().queued, 0);

    // The disk comes back: the same capture is written and stored, once.
    std::fs::remove_file(&blocker).unwrap();
    std::fs::create_dir_all(&root).unwrap();
    wait_status(&stage, "the capture stored", |s| s.stored >= 1).await;
    let pkgs = citywatch::evidence::packages(&root);
    assert_eq!(pkgs.len(), 1);
    let m = citywatch::evidence::verify(&pkgs[0]).unwrap();
    assert!(
        m.notes.iter().any(|n| n.contains("no clip")),
        "{:?}",
        m.notes
    );
    assert_eq!(store.counts().await.unwrap().captures, 1);
    assert!(stage.status().last_evidence_error.is_none());
    shutdown.trigger();
}

#[tokio::test]
async fn a_panicking_evidence_writer_files_the_capture_without_its_package_and_settles_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("evidence");
    let cfg = stage_config(&root, &dir.path().join("spool"));
    let db = format!("sqlite://{}", dir.path().join("cases.db").display());
    let (stage, store, shutdown) = open_stage(&cfg, &db).await;
    let cam = CameraEvidence::new(&cfg.cameras[0], None);
    // The next package write panics, as a bug in building one would (this test's process
    // only: nextest runs each test in its own).
    citywatch::core::faults::arm("evidence=1*panic").unwrap();

    let c = capture(1);
    let key = citywatch::store::capture_key(&c);
    // The camera waits for it to settle before it saves its state again.
    stage.settled().expect(&key);
    stage.capture(&cam, c, Some(frames()));
    let s = wait_status(&stage, "the capture stored", |s| s.stored >= 1).await;
    let err = s.last_evidence_error.unwrap();
    assert!(
        err.contains("panicked") && err.contains("without its package"),
        "{err}"
    );
    assert_eq!((s.evidence_errors, s.evidence_pending), (1, 0));
    assert!(s.blocked.is_none(), "{:?}", s.blocked);
    assert!(stage.settled().take(&key), "the capture never settled");
    // Filed, once, with no package: nothing half written is left behind.
    assert_eq!(store.counts().await.unwrap().captures, 1);
    nothing_half_written(&root);

    // The writer is not broken for the next capture: it is packaged as usual.
    stage.capture(&cam, capture(2), Some(frames()));
    wait_status(&stage, "the second capture stored", |s| s.stored >= 2).await;
    assert_eq!(citywatch::evidence::packages(&root).len(), 1);
    shutdown.trigger();
}

#[tokio::test]
async fn a_capture_met_again_the_next_day_after_a_restart_keeps_its_one_package() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("evidence");
    let cfg = stage_config(&root, &dir.path().join("spool"));
    // The first process writes the package, and dies before the capture is queued (its
    // database never hears of it: a database of its own here).
    let first = format!("sqlite://{}", dir.path().join("first.db").display());
    let (stage, _, shutdown) = open_stage(&cfg, &first).await;
    let cam = CameraEvidence::new(&cfg.cameras[0], None);
    let c = capture(1);
    stage.capture(&cam, c.clone(), Some(frames()));
    wait_status(&stage, "the package written", |s| s.evidence_written >= 1).await;
    shutdown.trigger();
    let written = citywatch::evidence::packages(&root);
    assert_eq!(written.len(), 1);

    // After the restart the same episode meets its rule again, the next day: the same key,
    // a confirmation under another date.
    let mut again = c;
    again.candidate.confirm += 86_400.0;
    let db = format!("sqlite://{}", dir.path().join("cases.db").display());
    let (stage, store, shutdown) = open_stage(&cfg, &db).await;
    stage.capture(&cam, again, Some(frames()));
    wait_status(&stage, "the capture stored", |s| s.stored >= 1).await;
    assert_eq!(
        citywatch::evidence::packages(&root),
        written,
        "a second package for the same capture"
    );
    let rows = store.list_captures(&Default::default()).await.unwrap();
    let evidence = rows[0].evidence.as_ref().unwrap().to_string();
    let folder = written[0]
        .strip_prefix(&root)
        .unwrap()
        .display()
        .to_string();
    assert!(evidence.contains(&folder), "{evidence} vs {folder}");
    shutdown.trigger();
}

/// A small tmpfs, mounted for the test (the tests run as root, as CI does).
pub(crate) struct Tmpfs(pub(crate) PathBuf);

impl Tmpfs {
    pub(crate) fn mount(dir: &Path, size: &str) -> Self {
        std::fs::create_dir_all(dir).unwrap();
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .stderr(Stdio::inherit())
            .status()
            .unwrap()
            .success();
        assert!(
            ok,
            "cannot mount a tmpfs at {} (the tests need root)",
            dir.display()
        );
        Tmpfs(dir.to_path_buf())
    }
}

impl Tmpfs {
    /// Remounts it read-only (`ro`) or writable (`rw`).
    pub(crate) fn remount(&self, mode: &str) {
        let ok = Command::new("mount")
            .args(["-o", &format!("remount,{mode}")])
            .arg(&self.0)
            .status()
            .unwrap()
            .success();
        assert!(ok, "cannot remount {} {mode}", self.0.display());
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

/// Fills a file system until it refuses another byte.
pub(crate) fn fill(dir: &Path) -> PathBuf {
    use std::io::Write;
    let path = dir.join("filler");
    let mut f = std::fs::File::create(&path).unwrap();
    let chunk = vec![0xA5u8; 4096];
    while f.write_all(&chunk).is_ok() {}
    while f.write_all(&chunk[..1]).is_ok() {}
    let _ = f.sync_all();
    path
}

#[tokio::test]
async fn a_full_disk_leaves_nothing_half_written_and_the_capture_is_written_once_space_returns() {
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&dir.path().join("disk"), "512k");
    let root = disk.0.join("evidence");
    let cfg = stage_config(&root, &dir.path().join("spool"));
    let db = format!("sqlite://{}", dir.path().join("cases.db").display());
    let (stage, store, shutdown) = open_stage(&cfg, &db).await;
    let cam = CameraEvidence::new(&cfg.cameras[0], None);
    let filler = fill(&disk.0);

    stage.capture(&cam, capture(2), Some(frames()));
    let s = wait_status(&stage, "an evidence error", |s| s.evidence_errors >= 2).await;
    let err = s.last_evidence_error.unwrap();
    assert!(err.contains("No space left"), "{err}");
    let b = s.blocked.unwrap();
    assert_eq!((b.place, b.reason), ("evidence", BlockReason::DiskFull));
    nothing_half_written(&root);
    assert_eq!(store.counts().await.unwrap().captures, 0);

    std::fs::remove_file(&filler).unwrap();
    wait_status(&stage, "the capture stored", |s| s.stored >= 1).await;
    let pkgs = citywatch::evidence::packages(&root);
    assert_eq!(pkgs.len(), 1);
    citywatch::evidence::verify(&pkgs[0]).unwrap();
    let c = store.counts().await.unwrap();
    assert_eq!((c.captures, c.pending_review), (1, 1));
    shutdown.trigger();
}

#[tokio::test]
async fn a_read_only_evidence_disk_blocks_filing_with_its_reason_and_filing_resumes_when_writable()
{
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&dir.path().join("disk"), "4m");
    let root = disk.0.join("evidence");
    let cfg = stage_config(&root, &dir.path().join("spool"));
    let db = format!("sqlite://{}", dir.path().join("cases.db").display());
    let (stage, store, shutdown) = open_stage(&cfg, &db).await;
    let cam = CameraEvidence::new(&cfg.cameras[0], None);
    disk.remount("ro");

    stage.capture(&cam, capture(3), Some(frames()));
    let s = wait_status(&stage, "filing blocked", |s| s.blocked.is_some()).await;
    let b = s.blocked.unwrap();
    assert_eq!((b.place, b.reason), ("evidence", BlockReason::ReadOnly));
    assert_eq!(s.evidence_pending, 1, "the capture waits");
    nothing_half_written(&root);
    assert_eq!(store.counts().await.unwrap().captures, 0);

    disk.remount("rw");
    let s = wait_status(&stage, "the capture stored", |s| s.stored >= 1).await;
    assert!(s.blocked.is_none(), "{s:?}");
    assert_eq!(citywatch::evidence::packages(&root).len(), 1);
    assert_eq!(store.counts().await.unwrap().captures, 1);
    shutdown.trigger();
}

#[tokio::test]
async fn a_full_queue_disk_holds_captures_in_memory_stores_them_straight_and_queues_again_once_space_returns()
 {
    let dir = tempfile::tempdir().unwrap();
    let disk = Tmpfs::mount(&dir.path().join("spooldisk"), "256k");
    let root = dir.path().join("evidence");
    let cfg = stage_config(&root, &disk.0.join("spool"));
    let db = format!("sqlite://{}", dir.path().join("cases.db").display());
    let (stage, store, shutdown) = open_stage(&cfg, &db).await;
    let cam = CameraEvidence::new(&cfg.cameras[0], None);
    let filler = fill(&disk.0);

    // The queue's disk refuses them: held in memory, and, the database answering, stored
    // straight from there, each once. The block stays named while the disk is full.
    for i in 1..=3 {
        stage.capture(&cam, capture(i), Some(frames()));
    }
    let s = wait_status(&stage, "three captures stored from memory", |s| {
        s.stored >= 3 && s.held == 0
    })
    .await;
    let b = s.blocked.clone().unwrap();
    assert_eq!((b.place, b.reason), ("queue", BlockReason::DiskFull));
    assert_eq!((s.queued, s.queue_dropped), (0, 0), "{s:?}");
    assert!(s.last_queue_error.unwrap().contains("No space left"));
    assert_eq!(store.counts().await.unwrap().captures, 3);
    // A duplicate merged while the disk is full raises the stored capture's count; nothing
    // is added.
    stage.merged(2, "cam", 1, T0 + 90.0);
    wait_status(&stage, "the merge stored from memory", |s| {
        s.stored >= 4 && s.held == 0
    })
    .await;
    let merged = store.list_captures(&every_capture()).await.unwrap();
    assert_eq!(merged.len(), 3);
    assert!(merged.iter().any(|c| c.aggregation == 2), "{merged:?}");

    // Space returns: the next capture goes through the queue again, and the block clears.
    std::fs::remove_file(&filler).unwrap();
    stage.capture(&cam, capture(4), Some(frames()));
    let s = wait_status(&stage, "the fourth capture queued and stored", |s| {
        s.stored >= 5 && s.blocked.is_none()
    })
    .await;
    assert_eq!((s.held, s.queued), (0, 0), "{s:?}");
    assert_eq!(store.counts().await.unwrap().captures, 4);
    shutdown.trigger();
}

// ---------------------------------------------------------------------------------------
// Crash safety.

#[test]
fn kill_9_while_filing_loses_and_duplicates_nothing() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (receiver, _task, port) = rt.block_on(crate::store::start_receiver(0, Vec::new()));
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("evidence");
    let cfg = DemoConfig::new(
        &root,
        &dir.path().join("spool"),
        &format!(
            "filing = {{ abandoned_vehicle = \"auto\" }}\n\n[cases.webhook]\nurl = \"http://127.0.0.1:{port}/cases\"\nsecret = {:?}\nbackoff_initial_s = 0.2\nbackoff_max_s = 1\n",
            crate::store::SECRET
        ),
    );
    let db = format!("sqlite://{}", dir.path().join("cases.db").display());

    // A clean reference run (its own database and evidence) says what must come out.
    let ref_dir = tempfile::tempdir().unwrap();
    let ref_cfg = DemoConfig::new(&ref_dir.path().join("e"), &ref_dir.path().join("s"), "");
    let began = std::time::Instant::now();
    let mut child = replay_cmd(
        &ref_cfg,
        &format!("sqlite://{}", ref_dir.path().join("c.db").display()),
    )
    .stdout(Stdio::piped())
    .spawn()
    .unwrap();
    // When the first capture line came, and the whole run's length, on this machine.
    let mut first_capture = None;
    let mut lines = Vec::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()))
        .map_while(Result::ok)
    {
        first_capture.get_or_insert(began.elapsed());
        lines.push(line);
    }
    let reference = child.wait_with_output().unwrap();
    let whole = began.elapsed();
    let first_capture = first_capture.expect("the reference run captures");
    assert!(reference.status.success());
    let expected = lines.len();
    assert_eq!(expected, 2);

    // Kill it at points spread from a little before the first capture to the end of the
    // run: during the captures, the packages, the store and the deliveries. The points are
    // measured on this machine, and follow its speed: a run that finishes before its point
    // becomes the new measure of a whole run (a later run on a quieter machine is faster than
    // the reference), so the points move with it and runs keep being killed mid-way. At
    // least ten runs, and more (up to twenty) until five were killed.
    let mut whole = whole;
    let mut killed = 0;
    let mut i = 0u64;
    while (i < 10 || killed < 5) && i < 20 {
        let from = first_capture.mul_f64(0.8).min(whole.mul_f64(0.5));
        let span = whole.saturating_sub(from);
        let started = std::time::Instant::now();
        let mut child = replay_cmd(&cfg, &db)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let at = from + span.mul_f64((0.09 * (i % 10) as f64 + fastrand::f64() * 0.04).min(0.95));
        let deadline = started + at;
        let mut finished = false;
        while std::time::Instant::now() < deadline {
            if child.try_wait().unwrap().is_some() {
                finished = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if finished {
            whole = started.elapsed();
        } else {
            // SIGKILL: no handler, no flush.
            child.kill().unwrap();
            killed += 1;
        }
        child.wait().unwrap();
        // Where it was stopped (shown with --nocapture): what had reached each stage.
        let queued = files_under(&dir.path().join("spool")).len();
        let counts = rt.block_on(async {
            match Store::connect(&db).await {
                Ok(s) => format!("{:?}", s.counts().await.ok()),
                Err(e) => e.to_string(),
            }
        });
        eprintln!(
            "run {i}: {} after {at:?}; packages {}, queued {queued}, store {counts}, receiver took {}",
            if finished { "finished" } else { "killed" },
            citywatch::evidence::packages(&root).len(),
            receiver.lock().unwrap().taken.len()
        );
        i += 1;
    }
    assert!(killed >= 5, "only {killed} runs were killed mid-way");

    // Restart once more and let it finish.
    let out = replay_cmd(&cfg, &db).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let counts = rt.block_on(async { Store::connect(&db).await.unwrap().counts().await.unwrap() });
    assert_eq!(counts.captures as usize, expected, "{counts:?}");
    assert_eq!(counts.cases as usize, expected, "{counts:?}");
    assert_eq!(counts.outbox_delivered as usize, expected, "{counts:?}");
    assert_eq!((counts.outbox_pending, counts.outbox_dead), (0, 0));

    // Every package verifies, one per capture; nothing is left half-built or queued.
    let pkgs = citywatch::evidence::packages(&root);
    assert_eq!(pkgs.len(), expected);
    for p in &pkgs {
        citywatch::evidence::verify(p).unwrap();
    }
    let incoming: Vec<_> = std::fs::read_dir(root.join(".incoming"))
        .map(|d| d.flatten().collect())
        .unwrap_or_default();
    assert!(incoming.is_empty());

    // The receiver took each case once, by its idempotency key, all signed.
    let r = receiver.lock().unwrap();
    assert_eq!(r.taken.len(), expected, "{:?}", r.taken);
    assert!(r.taken.values().all(|&n| n == 1));
    assert_eq!(r.bad_signatures, 0);
}

// ---------------------------------------------------------------------------------------
// The database goes away.

/// A TCP relay on loopback in front of the test PostgreSQL: "down" closes every relayed
/// connection and refuses new ones; "up" listens again on the same port.
pub(crate) struct Relay {
    pub(crate) port: u16,
    target: u16,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Relay {
    pub(crate) async fn start(target: u16) -> Self {
        let mut r = Relay {
            port: 0,
            target,
            task: None,
        };
        r.up().await;
        r
    }

    pub(crate) async fn up(&mut self) {
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", self.port))
            .await
            .unwrap();
        self.port = listener.local_addr().unwrap().port();
        let target = self.target;
        self.task = Some(tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else {
                    break;
                };
                conns.spawn(async move {
                    if let Ok(mut out) = tokio::net::TcpStream::connect(("127.0.0.1", target)).await
                    {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut out).await;
                    }
                });
            }
        }));
    }

    /// Dropping the task drops the listener and, with its JoinSet, every relayed connection.
    pub(crate) async fn down(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

#[tokio::test]
async fn while_the_database_is_down_captures_wait_in_the_bounded_queue_and_overflow_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let direct = crate::store::postgres_url().await;
    let pg = url::Url::parse(&direct).unwrap();
    let mut relay = Relay::start(pg.port().unwrap_or(5432)).await;
    let mut via = pg.clone();
    via.set_port(Some(relay.port)).unwrap();

    let mut cfg = stage_config(&dir.path().join("evidence"), &dir.path().join("spool"));
    cfg.cases.as_mut().unwrap().spool_max = 3;
    let (stage, _store, shutdown) = open_stage(&cfg, via.as_str()).await;
    let cam = CameraEvidence::new(&cfg.cameras[0], None);

    stage.capture(&cam, capture(1), Some(frames()));
    wait_status(&stage, "the first capture stored", |s| s.stored >= 1).await;

    relay.down().await;
    for i in 2..=4 {
        stage.capture(&cam, capture(i), Some(frames()));
    }
    wait_status(&stage, "a database error", |s| s.db_errors >= 1).await;
    wait_status(&stage, "three packages", |s| s.evidence_written >= 4).await;
    let s = stage.status();
    assert_eq!((s.queued, s.queue_dropped, s.stored), (3, 0, 1), "{s:?}");
    assert!(s.last_db_error.is_some());
    // The queue is on disk: three fsynced entries.
    assert_eq!(files_under(&dir.path().join("spool")).len(), 3);

    // Full: the next capture is refused, counted and reported.
    stage.capture(&cam, capture(5), Some(frames()));
    wait_status(&stage, "the fifth package", |s| s.evidence_written >= 5).await;
    let s = stage.status();
    assert_eq!((s.queued, s.queue_dropped), (3, 1), "{s:?}");
    let err = s.last_queue_error.unwrap();
    assert!(err.contains("full") && err.contains("dropped"), "{err}");

    relay.up().await;
    wait_status(&stage, "the queue drained", |s| s.stored >= 4).await;
    let direct_store = Store::connect(&direct).await.unwrap();
    assert_eq!(direct_store.counts().await.unwrap().captures, 4);
    assert_eq!(stage.status().queued, 0);
    shutdown.trigger();
}
