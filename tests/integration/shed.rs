//! Overload shedding, end to end: live RTSP cameras from the loopback server, GStreamer
//! decoding, the real detector behind a fault-injecting wrapper that makes each inference
//! slow enough that analysis cannot keep up with every camera on any machine.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use citywatch::core::{Shutdown, SystemClock};
use citywatch::detect::service::{DetectionService, ServiceConfig};
use citywatch::detect::{Detection, Detector, Manifest, ModelError, OrtDetector};
use citywatch::ingest::{CameraHealth, Frame};
use citywatch::pipeline::{Episodes, Launcher, Timebase};
use tokio::sync::watch;

use crate::common::*;

/// The real detector, plus a delay per frame that a test can change.
struct Slow {
    inner: OrtDetector,
    delay_ms: AtomicU64,
}

impl Detector for Slow {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn max_batch(&self) -> usize {
        1
    }
    fn detect(&self, frames: &[&Frame]) -> Result<Vec<Vec<Detection>>, ModelError> {
        let delay = self.delay_ms.load(Ordering::Relaxed);
        std::thread::sleep(Duration::from_millis(delay * frames.len() as u64));
        self.inner.detect(frames)
    }
    fn input_size(&self) -> Option<[u32; 2]> {
        self.inner.input_size()
    }
}

const CAMERAS: usize = 4;

fn cfg(server: &Server) -> citywatch::config::PipelineConfig {
    let mut text = format!(
        "[detect]\nmodels_dir = \"{}\"\nmodel = \"ssd_mobilenet_v2_coco\"\n[detect.plates]\nenabled = false\n",
        repo().join("models").display()
    );
    for i in 0..CAMERAS {
        text.push_str(&format!(
            r#"
[[cameras]]
id = "cam{i}"
url = "{url}"
analysis_fps = 1
[[cameras.zones]]
id = "road"
kind = "no_parking"
polygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
[[cameras.rules]]
rule = "abandoned_vehicle"
zones = ["road"]
dwell_s = 300
"#,
            url = server.url("vtest")
        ));
    }
    config(&text)
}

/// Each camera's frames that reached analysis so far.
fn analysed(l: &Launcher) -> Vec<u64> {
    let board = l.analysis.lock();
    (0..CAMERAS)
        .map(|i| {
            board
                .get(&format!("cam{i}"))
                .map(|a| a.inferences + a.reused)
                .unwrap_or(0)
        })
        .collect()
}

async fn until(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    crate::lifecycle::until(secs, what, async || f().then_some(())).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overload_shedding_thins_every_camera_fairly_before_its_queue_drops_and_recovers() {
    let server = Server::start(&[]);
    let cfg = Arc::new(cfg(&server));
    let d = cfg.detect.as_ref().unwrap();
    let manifest = Manifest::load_named(&d.models_dir, &d.model).unwrap();
    let lib = citywatch::detect::runtime::library_path(d.ort_library.as_deref());
    let slow = Arc::new(Slow {
        inner: OrtDetector::load(manifest, &lib, 1).unwrap(),
        // 4 cameras at 1 frame/s want 4 inferences a second; at 350 ms each, one
        // inference thread does fewer than 3.
        delay_ms: AtomicU64::new(350),
    });
    let service = DetectionService::start(
        slow.clone(),
        ServiceConfig {
            threads: 1,
            ..Default::default()
        },
    );
    let launcher = Launcher {
        config: cfg.clone(),
        detection: Some((service, false)),
        budget: None,
        episodes: Episodes::Forget,
        stage: None,
        clock: Arc::new(SystemClock),
        backoff: cfg.backoff(),
        analysis: Default::default(),
        latest: Default::default(),
        desk: Default::default(),
        memory: Default::default(),
        checks: Default::default(),
        keep_detections: false,
        plates: None,
        shed: true,
    };
    let shutdown = Shutdown::new();
    let mut health: Vec<watch::Receiver<CameraHealth>> = Vec::new();
    let mut tasks = Vec::new();
    for cam in &cfg.cameras {
        let connected = launcher.rig(cam).unwrap().connect(shutdown.clone());
        health.push(connected.health());
        let mut boards = launcher.boards(&cam.id);
        tasks.push(tokio::spawn(async move {
            connected.consume(Timebase::Wall, &mut boards).await;
        }));
    }
    let snapshot = |health: &[watch::Receiver<CameraHealth>]| -> Vec<CameraHealth> {
        health.iter().map(|h| h.borrow().clone()).collect()
    };

    // Analysis falls behind: every camera sheds.
    until(90, "every camera shedding", || {
        snapshot(&health)
            .iter()
            .all(|h| h.degraded && h.frames_shed > 0)
    })
    .await;
    // Let it settle: 20 more frames analysed.
    let settle = analysed(&launcher).iter().sum::<u64>() + 20;
    until(120, "20 more frames analysed", || {
        analysed(&launcher).iter().sum::<u64>() >= settle
    })
    .await;

    // From here, count what each camera gets.
    let (a0, h0) = (analysed(&launcher), snapshot(&health));
    until(120, "40 more frames analysed", || {
        analysed(&launcher).iter().sum::<u64>() >= a0.iter().sum::<u64>() + 40
    })
    .await;
    let (a1, h1) = (analysed(&launcher), snapshot(&health));
    let mut got: Vec<u64> = a1.iter().zip(&a0).map(|(a, b)| a - b).collect();
    let total: u64 = got.iter().sum();
    let dropped: u64 = h1
        .iter()
        .zip(&h0)
        .map(|(a, b)| a.frames_dropped - b.frames_dropped)
        .sum();
    let shed: u64 = h1
        .iter()
        .zip(&h0)
        .map(|(a, b)| a.frames_shed - b.frames_shed)
        .sum();
    got.sort();
    let median = got[CAMERAS / 2];
    assert!(
        got[0] as f64 >= 0.7 * median as f64,
        "the worst camera got {} frames, the median {median}: {got:?}",
        got[0]
    );
    assert!(
        4 * shed >= total,
        "frames are shed before analysis ({shed} shed, {total} analysed)"
    );
    assert_eq!(
        dropped, 0,
        "no decoded frame is dropped from a full queue while shedding ({total} analysed)"
    );

    // The load goes away: no camera is degraded any more.
    slow.delay_ms.store(0, Ordering::Relaxed);
    until(120, "shedding over", || {
        snapshot(&health).iter().all(|h| !h.degraded)
    })
    .await;

    shutdown.trigger();
    for t in tasks {
        t.await.unwrap();
    }
}
