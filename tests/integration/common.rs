//! Helpers: start, kill, freeze and resume `citywatch serve-samples`; build camera configs;
//! await camera health changes with deadlines (never sleeps as synchronisation).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use citywatch::config::PipelineConfig;
use citywatch::core::{Shutdown, SystemClock};
use citywatch::ingest::{CameraHandle, CameraHealth, spawn_camera};
use futures_util::FutureExt;
use tokio::sync::watch;

pub fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a command to its end; fails the test with its stderr unless it succeeded.
pub fn run_ok(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap();
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_citywatch")
}

/// A `citywatch serve-samples` process.
pub struct Server {
    child: Child,
    pub port: u16,
    args: Vec<String>,
}

impl Server {
    pub fn start(extra: &[&str]) -> Self {
        Self::start_on(0, extra.iter().map(|s| s.to_string()).collect())
    }

    fn start_on(port: u16, args: Vec<String>) -> Self {
        let mut child = Command::new(bin())
            .arg("serve-samples")
            .arg("--dir")
            .arg(repo().join("sample-videos"))
            .arg("--port")
            .arg(port.to_string())
            .args(&args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("start serve-samples");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("listening on ") {
                    let port: u16 = addr.rsplit(':').next().unwrap().parse().unwrap();
                    let _ = tx.send(port);
                }
            }
        });
        let port = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("serve-samples did not start listening");
        Server { child, port, args }
    }

    pub fn url(&self, mount: &str) -> String {
        format!("rtsp://127.0.0.1:{}/{mount}", self.port)
    }

    pub fn url_with_auth(&self, user: &str, pass: &str, mount: &str) -> String {
        format!("rtsp://{user}:{pass}@127.0.0.1:{}/{mount}", self.port)
    }

    fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap()
            .success();
        assert!(ok, "kill -{sig} failed");
    }

    /// SIGKILL, and wait until the process is gone.
    pub fn kill(&mut self) {
        self.signal("KILL");
        self.child.wait().unwrap();
    }

    /// Starts again on the same port with the same options.
    pub fn restart(&mut self) {
        // The old process was killed and reaped; its Drop does nothing harmful.
        *self = Server::start_on(self.port, self.args.clone());
    }

    pub fn freeze(&self) {
        self.signal("STOP");
    }

    pub fn resume(&self) {
        self.signal("CONT");
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-CONT", &self.child.id().to_string()])
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A `citywatch run --no-web --status-json` process, its status lines on a channel.
pub struct StatusRun {
    child: Child,
    lines: mpsc::Receiver<serde_json::Value>,
}

impl StatusRun {
    /// Starts `run` on `config` with these extra environment variables (logging at warn,
    /// to the test's own stderr: the test runner shows it with a failure).
    pub fn start(config: &Path, env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(bin())
            .args(["run", "--no-web", "--status-json"])
            .arg(config)
            .env("CITYWATCH_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<serde_json::Value>(&line)
                    && tx.send(v).is_err()
                {
                    return;
                }
            }
        });
        StatusRun { child, lines }
    }

    /// Waits at most `secs` for a status line that satisfies `pred`; a timeout panics with
    /// the last filing line seen.
    pub fn wait(
        &self,
        secs: u64,
        what: &str,
        mut pred: impl FnMut(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        let mut filing = serde_json::Value::Null;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(v) if pred(&v) => return v,
                Ok(v) if v["filing"].is_object() => filing = v,
                Ok(_) => {}
                Err(_) => panic!("timed out waiting for {what}; the last filing line: {filing}"),
            }
        }
    }

    /// SIGKILL: no handler runs, nothing is flushed.
    pub fn kill9(mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for StatusRun {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every file under `dir`, in its subfolders too (none when it does not exist).
pub fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(files_under(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The filter that lists every capture, whatever its status.
pub fn every_capture() -> citywatch::store::query::CaptureFilter {
    citywatch::store::query::CaptureFilter {
        status: Some("all".into()),
        ..Default::default()
    }
}

/// Parses a config made of `[ingest]` overrides and cameras.
pub fn config(text: &str) -> PipelineConfig {
    PipelineConfig::parse(text, &repo()).unwrap_or_else(|e| panic!("test config: {e:?}"))
}

/// Starts every camera of a config.
pub fn start_cameras(cfg: &PipelineConfig, shutdown: &Shutdown) -> Vec<CameraHandle> {
    cfg.cameras
        .iter()
        .map(|c| {
            spawn_camera(
                c,
                &cfg.ingest,
                cfg.backoff(),
                Arc::new(SystemClock),
                shutdown.clone(),
            )
        })
        .collect()
}

/// Waits until the camera's health satisfies `pred`, or panics after `timeout`.
pub async fn wait_health(
    rx: &watch::Receiver<CameraHealth>,
    timeout: Duration,
    what: &str,
    pred: impl FnMut(&CameraHealth) -> bool,
) -> CameraHealth {
    let mut rx2 = rx.clone();
    let got = tokio::time::timeout(timeout, async move {
        rx2.wait_for(pred).await.map(|h| h.clone()).ok()
    })
    .await;
    match got {
        Ok(Some(h)) => h,
        _ => panic!(
            "timed out after {timeout:?} waiting for {what}; health: {:?}",
            rx.borrow()
        ),
    }
}

/// What a test keeps of each frame: (pts, keyframe, when it arrived).
pub type Seen = (Option<Duration>, bool, Instant);

/// A draining camera: its health, the task collecting its frames, and the task's stop signal.
pub type Drained = (
    watch::Receiver<CameraHealth>,
    tokio::task::JoinHandle<Vec<Seen>>,
    Shutdown,
);

/// Drains frames on a task so live cameras keep flowing.
pub fn drain(mut cam: CameraHandle) -> Drained {
    let health = cam.health.clone();
    let stop = Shutdown::new();
    let stop2 = stop.clone();
    let task = tokio::spawn(async move {
        let mut seen = Vec::new();
        loop {
            tokio::select! {
                biased;
                _ = stop2.triggered() => break,
                f = cam.next_frame() => match f {
                    Some(f) => seen.push((f.pts, f.keyframe, Instant::now())),
                    None => return seen,
                }
            }
        }
        // Health counts a frame once it is in the channel: take what is already there,
        // so a test that waited for n frames in health finds them here.
        while let Some(Some(f)) = cam.next_frame().now_or_never() {
            seen.push((f.pts, f.keyframe, Instant::now()));
        }
        seen
    });
    (health, task, stop)
}

pub fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, bytes).unwrap();
    p
}

/// Starts every camera of `cfg`, collects frames until camera `i` has delivered `min[i]`,
/// then stops. Returns each camera's health and the frames it collected.
pub async fn collect(
    cfg: &PipelineConfig,
    min: &[u64],
    timeout: Duration,
) -> Vec<(watch::Receiver<CameraHealth>, Vec<Seen>)> {
    let shutdown = Shutdown::new();
    let drained: Vec<Drained> = start_cameras(cfg, &shutdown)
        .into_iter()
        .map(drain)
        .collect();
    for ((health, ..), &n) in drained.iter().zip(min) {
        wait_health(health, timeout, &format!("{n} frames"), |h| h.frames >= n).await;
    }
    let mut out = Vec::new();
    for (health, task, stop) in drained {
        stop.trigger();
        out.push((health, task.await.unwrap()));
    }
    shutdown.trigger();
    out
}
