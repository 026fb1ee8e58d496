//! Filing latency under a burst: 100 captures fired at once into the filing stage (evidence
//! package with watermarked JPEGs of a real 640x480 vtest frame, fsynced; the persistent
//! queue; SQLite with auto filing, so a case and its outbox row; the webhook forwarder) and
//! a real HTTP receiver on loopback. For each capture:
//!
//! - fired → committed: from the capture to its row committed in the store;
//! - fired → delivered: from the capture to the receiver taking its case.
//!
//! Clips are left out: a live package waits `post_s` (10 s by default) of stream for its
//! clip by design, which adds that wait to both figures and says nothing of the machinery.
//!
//! Run with `make bench` (or `cargo bench --bench filing`).

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use citywatch::analysis::CaptureFrames;
use citywatch::config::{PipelineConfig, RuleKind};
use citywatch::core::{Shutdown, SystemClock};
use citywatch::evidence::image::Picture;
use citywatch::filing::{CameraEvidence, FilingStage};
use citywatch::ingest::spawn_camera;
use citywatch::notify::Forwarder;
use citywatch::ratelimit::Capture;
use citywatch::rules::engine::Candidate;
use citywatch::store::{Store, capture_key};

const BURST: u64 = 100;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

async fn frame() -> Picture {
    let cfg = PipelineConfig::parse(
        "[[cameras]]\nid = \"bench\"\nurl = \"file://sample-videos/vtest.mp4\"\nanalysis_fps = 1\nanalysis_width = 640\n",
        &repo(),
    )
    .unwrap();
    let mut cam = spawn_camera(
        &cfg.cameras[0],
        &cfg.ingest,
        cfg.backoff(),
        Arc::new(SystemClock),
        Shutdown::new(),
    );
    let f = cam.next_frame().await.expect("a frame of vtest");
    Picture::from_frame(&f)
}

fn capture(i: u64) -> Capture {
    let t = 1_767_574_800.0 + i as f64;
    let x = 0.05 + (i % 10) as f32 * 0.09;
    Capture {
        id: i,
        candidate: Candidate {
            rule: RuleKind::AbandonedVehicle,
            camera: "bench".into(),
            preset: None,
            zone: "road".into(),
            place: [x, 0.3, x + 0.08, 0.4],
            episode: Some(i),
            label: "car".into(),
            start: t - 600.0,
            confirm: t,
            bbox: [x, 0.3, x + 0.08, 0.4],
            score: 0.8,
            dwell_s: 600.0,
            embedding: None,
            parts: Vec::new(),
            plate: None,
        },
        aggregation: 1,
        last_evidence: t,
        closed_at: None,
        left: false,
        resembles: None,
    }
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let dir = tempfile::tempdir().unwrap();
        // The receiver: when each idempotency key first arrived.
        let arrived: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
        let a = arrived.clone();
        let app = axum::Router::new().route(
            "/cases",
            axum::routing::post(move |headers: axum::http::HeaderMap| {
                let a = a.clone();
                async move {
                    let key = headers
                        .get("idempotency-key")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string();
                    a.lock().unwrap().entry(key).or_insert_with(Instant::now);
                    axum::http::StatusCode::OK
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

        let cfg = PipelineConfig::parse(
            &format!(
                r#"
[cases]
database = "sqlite://{db}"
categories = "pipelines/categories/default.toml"
spool = "{spool}"
filing = {{ abandoned_vehicle = "auto" }}
[cases.webhook]
url = "http://127.0.0.1:{port}/cases"
secret = "bench"

[evidence]
root = "{root}"

[[cameras]]
id = "bench"
url = "file://sample-videos/vtest.mp4"
zones = [{{ id = "road", kind = "no_parking", polygon = [[0, 0], [1, 0], [1, 1], [0, 1]] }}]
rules = [{{ rule = "abandoned_vehicle", zones = ["road"], dwell_s = 600 }}]
"#,
                db = dir.path().join("cases.db").display(),
                spool = dir.path().join("spool").display(),
                root = dir.path().join("evidence").display(),
            ),
            &repo(),
        )
        .unwrap();
        let cases = cfg.cases.clone().unwrap();
        let store = Arc::new(Store::connect(&cases.database).await.unwrap());
        let shutdown = Shutdown::new();
        let clock: Arc<SystemClock> = Arc::new(SystemClock);
        let stage = FilingStage::open(
            store.clone(),
            Arc::new(cases.clone()),
            cfg.evidence.as_ref(),
            None,
            clock.clone(),
            shutdown.clone(),
        )
        .unwrap();
        let mut commits = stage.observe_commits();
        tokio::spawn(stage.clone().run_drainer());
        tokio::spawn(citywatch::notify::forward(
            store.clone(),
            Forwarder::new(cases.webhook.clone().unwrap()),
            clock,
            shutdown.clone(),
            stage.stored.clone(),
        ));
        let cam = CameraEvidence::new(&cfg.cameras[0], None);
        let picture = frame().await;

        let mut fired = HashMap::new();
        let start = Instant::now();
        for i in 0..BURST {
            let c = capture(i);
            fired.insert(capture_key(&c), Instant::now());
            stage.capture(
                &cam,
                c,
                Some(CaptureFrames {
                    confirm: picture.clone(),
                    confirm_stream_s: None,
                    first_seen: None,
                    plate: None,
                }),
            );
        }
        let mut committed = HashMap::new();
        while committed.len() < BURST as usize {
            let key = tokio::time::timeout(Duration::from_secs(120), commits.recv())
                .await
                .expect("every capture is committed")
                .unwrap();
            committed.insert(key, Instant::now());
        }
        let all_committed = start.elapsed();
        loop {
            if arrived.lock().unwrap().len() >= BURST as usize {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(120), "deliveries stalled");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let all_delivered = start.elapsed();
        let arrived = arrived.lock().unwrap().clone();
        let mut to_commit = Vec::new();
        let mut to_deliver = Vec::new();
        for (key, t0) in &fired {
            to_commit.push((committed[key] - *t0).as_secs_f64() * 1e3);
            to_deliver.push((arrived[&format!("case-{key}")] - *t0).as_secs_f64() * 1e3);
        }
        let evidence_bytes: u64 = citywatch::evidence::packages(&dir.path().join("evidence"))
            .iter()
            .flat_map(|p| std::fs::read_dir(p).unwrap().flatten())
            .map(|f| f.metadata().unwrap().len())
            .sum();
        println!("filing burst: {BURST} captures, 640x480 evidence images, SQLite (WAL), webhook on loopback");
        println!(
            "  fired -> committed: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (all committed after {:.0} ms)",
            pct(&mut to_commit, 0.5),
            pct(&mut to_commit, 0.99),
            pct(&mut to_commit, 1.0),
            all_committed.as_secs_f64() * 1e3
        );
        println!(
            "  fired -> delivered: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms (all delivered after {:.0} ms)",
            pct(&mut to_deliver, 0.5),
            pct(&mut to_deliver, 0.99),
            pct(&mut to_deliver, 1.0),
            all_delivered.as_secs_f64() * 1e3
        );
        println!(
            "  evidence: {} packages, {:.1} KiB each on average",
            BURST,
            evidence_bytes as f64 / BURST as f64 / 1024.0
        );
        shutdown.trigger();
    });
}
