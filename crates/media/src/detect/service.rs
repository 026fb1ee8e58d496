//! The detection service: one detector shared by every camera, on dedicated inference
//! threads (never the async runtime's workers), batching frames across cameras — up to the
//! model's batch size, or whatever arrived within `max_wait` of the first frame.
//!
//! Backpressure: at most `queue` requests wait; a camera that finds the queue full waits
//! (asynchronously) for room. Nothing is dropped here; live cameras drop frames upstream.

use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use super::error::ModelError;
use super::{Detection, Detector};
use crate::ingest::Frame;

struct Request {
    frame: Arc<Frame>,
    reply: oneshot::Sender<Result<Vec<Detection>, ModelError>>,
    _permit: OwnedSemaphorePermit,
}

/// A handle to the service; clone it into each camera task.
#[derive(Clone)]
pub struct DetectionService {
    tx: mpsc::Sender<Request>,
    room: Arc<Semaphore>,
    model: Arc<str>,
    input: Option<[u32; 2]>,
    workers: Arc<parking_lot::Mutex<Vec<std::thread::JoinHandle<()>>>>,
    latency: Arc<Latency>,
    deadline: Duration,
}

pub use crate::model::live::{LATENCY_BUCKETS, Latency};

#[derive(Debug, Clone, Copy)]
pub struct ServiceConfig {
    pub max_wait: Duration,
    pub queue: usize,
    pub threads: usize,
    /// How long a frame may wait for its detections, queue included: past it the frame
    /// is unjudged (a hung or overloaded runtime), never waited on forever.
    pub deadline: Duration,
}

impl Default for ServiceConfig {
    fn default() -> Self {
        Self {
            max_wait: Duration::from_millis(10),
            queue: 64,
            threads: 1,
            deadline: Duration::from_secs(30),
        }
    }
}

impl DetectionService {
    pub fn start(detector: Arc<dyn Detector>, cfg: ServiceConfig) -> Self {
        let (tx, rx) = mpsc::channel::<Request>();
        let rx = Arc::new(parking_lot::Mutex::new(rx));
        let model: Arc<str> = detector.name().into();
        let input = detector.input_size();
        let latency = Arc::new(Latency::default());
        let mut workers = Vec::new();
        for i in 0..cfg.threads.max(1) {
            let rx = rx.clone();
            let detector = detector.clone();
            let latency = latency.clone();
            workers.push(
                std::thread::Builder::new()
                    .name(format!("infer-{model}-{i}"))
                    .spawn(move || worker(detector, rx, cfg.max_wait, &latency))
                    .expect("spawn inference thread"),
            );
        }
        Self {
            tx,
            room: Arc::new(Semaphore::new(cfg.queue.max(1))),
            model,
            input,
            workers: Arc::new(parking_lot::Mutex::new(workers)),
            latency,
            deadline: cfg.deadline,
        }
    }

    /// The model's fixed input size `[width, height]`, if it has one.
    pub fn input_size(&self) -> Option<[u32; 2]> {
        self.input
    }

    /// The inference latency histogram.
    pub fn latency(&self) -> Arc<Latency> {
        self.latency.clone()
    }

    /// Stops taking work and waits (up to `timeout`) for the inference threads to finish
    /// what they hold, so the process never exits in the middle of `session.run`. Every
    /// other clone must be dropped first; returns false if the threads did not stop in time.
    pub fn join(self, timeout: std::time::Duration) -> bool {
        let workers = self.workers.clone();
        drop(self);
        let deadline = Instant::now() + timeout;
        let handles = std::mem::take(&mut *workers.lock());
        for h in handles {
            while !h.is_finished() {
                if Instant::now() >= deadline {
                    return false;
                }
                std::thread::sleep(std::time::Duration::from_millis(5));
            }
            let _ = h.join();
        }
        true
    }

    pub fn model(&self) -> &str {
        &self.model
    }

    /// Detections for one frame, or an error: the service stopped, the model failed, or no
    /// answer came within the deadline (a hung runtime: the camera judges nothing rather
    /// than waiting forever).
    pub async fn detect(&self, frame: Arc<Frame>) -> Result<Vec<Detection>, ModelError> {
        let stopped = || ModelError::new(&self.model, "runtime", "the detection service stopped");
        let ask = async {
            let permit = self
                .room
                .clone()
                .acquire_owned()
                .await
                .map_err(|_| stopped())?;
            let (reply, rx) = oneshot::channel();
            self.tx
                .send(Request {
                    frame,
                    reply,
                    _permit: permit,
                })
                .map_err(|_| stopped())?;
            rx.await.map_err(|_| stopped())?
        };
        tokio::time::timeout(self.deadline, ask)
            .await
            .unwrap_or_else(|_| {
                Err(ModelError::new(
                    &self.model,
                    "runtime",
                    format!(
                        "no answer within {:.1} s: the inference is hung or far behind",
                        self.deadline.as_secs_f64()
                    ),
                ))
            })
    }
}

fn worker(
    detector: Arc<dyn Detector>,
    rx: Arc<parking_lot::Mutex<mpsc::Receiver<Request>>>,
    max_wait: Duration,
    latency: &Latency,
) {
    let max_batch = detector.max_batch().max(1);
    loop {
        let mut batch = Vec::with_capacity(max_batch);
        {
            let rx = rx.lock();
            let Ok(first) = rx.recv() else {
                return;
            };
            batch.push(first);
            let deadline = Instant::now() + max_wait;
            while batch.len() < max_batch {
                let left = deadline.saturating_duration_since(Instant::now());
                match rx.recv_timeout(left) {
                    Ok(r) => batch.push(r),
                    Err(_) => break,
                }
            }
        }
        let frames: Vec<&Frame> = batch.iter().map(|r| r.frame.as_ref()).collect();
        let t0 = Instant::now();
        let result = (|| {
            // Fault injection (`CITYWATCH_FAULTS`, core::faults): the batch fails as the
            // runtime would.
            fail::fail_point!("detect", |_| Err(ModelError::new(
                detector.name(),
                "runtime",
                "an injected fault (CITYWATCH_FAULTS)"
            )));
            detector.detect(&frames)
        })();
        latency.record(t0.elapsed());
        match result {
            Ok(results) => {
                for (r, dets) in batch.into_iter().zip(results) {
                    let _ = r.reply.send(Ok(dets));
                }
            }
            Err(e) => {
                for r in batch {
                    let _ = r.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_latency_histogram_is_cumulative() {
        let l = Latency::default();
        l.record(Duration::from_millis(3));
        l.record(Duration::from_millis(40));
        l.record(Duration::from_secs(9));
        let (b, n, sum) = l.snapshot();
        assert_eq!(n, 3);
        assert_eq!(b[0], 1, "<= 5 ms");
        assert_eq!(b[3], 2, "<= 50 ms");
        assert_eq!(*b.last().unwrap(), 2, "9 s is only in +Inf");
        assert!((sum - 9.043).abs() < 1e-6);
    }
    use parking_lot::Mutex;

    /// Records the batch sizes it was called with; one detection per frame, scored by width.
    struct Recorder {
        batches: Mutex<Vec<usize>>,
    }

    impl Detector for Recorder {
        fn name(&self) -> &str {
            "recorder"
        }
        fn max_batch(&self) -> usize {
            4
        }
        fn detect(&self, frames: &[&Frame]) -> Result<Vec<Vec<Detection>>, ModelError> {
            self.batches.lock().push(frames.len());
            Ok(frames
                .iter()
                .map(|f| {
                    vec![Detection {
                        label: "thing".into(),
                        kind: crate::detect::ObjectKind::Other,
                        score: f.width as f32,
                        bbox: [0.0, 0.0, 1.0, 1.0],
                        embedding: None,
                    }]
                })
                .collect())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn frames_from_many_cameras_share_batches_and_get_their_own_answers() {
        let rec = Arc::new(Recorder {
            batches: Mutex::new(Vec::new()),
        });
        let svc = DetectionService::start(
            rec.clone(),
            ServiceConfig {
                max_wait: Duration::from_millis(200),
                ..ServiceConfig::default()
            },
        );
        let mut tasks = Vec::new();
        for w in 1..=8u32 {
            let svc = svc.clone();
            tasks.push(tokio::spawn(async move {
                let f = Frame::from_rgb(format!("cam{w}").into(), w, 1, vec![0; w as usize * 3]);
                svc.detect(Arc::new(f)).await.unwrap()[0].score
            }));
        }
        for (w, t) in (1..=8).zip(tasks) {
            assert_eq!(t.await.unwrap(), w as f32);
        }
        let batches = rec.batches.lock().clone();
        assert_eq!(batches.iter().sum::<usize>(), 8);
        assert!(batches.iter().all(|&b| b <= 4), "{batches:?}");
        assert!(batches.iter().any(|&b| b > 1), "never batched: {batches:?}");
    }

    /// Hangs in every call until released: a runtime stuck in `session.run`.
    struct Hung {
        release: Mutex<std::sync::mpsc::Receiver<()>>,
    }

    impl Detector for Hung {
        fn name(&self) -> &str {
            "hung"
        }
        fn max_batch(&self) -> usize {
            1
        }
        fn detect(&self, frames: &[&Frame]) -> Result<Vec<Vec<Detection>>, ModelError> {
            let _ = self.release.lock().recv();
            Ok(frames.iter().map(|_| Vec::new()).collect())
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_hung_runtime_is_an_error_after_the_deadline_not_a_wait_forever() {
        let (release, rx) = std::sync::mpsc::channel();
        let svc = DetectionService::start(
            Arc::new(Hung {
                release: Mutex::new(rx),
            }),
            ServiceConfig {
                queue: 1,
                deadline: Duration::from_millis(100),
                ..ServiceConfig::default()
            },
        );
        let frame = || Arc::new(Frame::from_rgb("cam".into(), 1, 1, vec![0; 3]));
        // The first frame is stuck in the runtime; the second waits for the queue's one
        // place. Neither ever gets an answer, and both come back as errors naming the model.
        for _ in 0..2 {
            let e = svc.detect(frame()).await.unwrap_err().to_string();
            assert!(e.contains("hung"), "{e}");
            assert!(e.contains("no answer within 0.1 s"), "{e}");
        }
        // Released, the thread finishes its call and the service can stop.
        drop(release);
        assert!(svc.join(Duration::from_secs(30)));
    }
}
