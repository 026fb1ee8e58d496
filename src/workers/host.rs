//! The worker loop: every heartbeat, one [`Leases::round`], then the cameras and jobs it
//! decided on are started and stopped.
//!
//! - A camera taken: its episodes are loaded from the database (the previous holder's last
//!   save, so dwell timers go on), then it streams and is analysed like any other camera.
//! - A camera given back (a worker joined): it stops, its episodes are written, and only
//!   then is its lease released, so the next holder resumes the newest state.
//! - A camera lost (this worker was cut off past its TTL and another took it): it stops at
//!   once; its episode saves are refused by the lease fence.
//! - A round that fails (the database is down) changes nothing: cameras keep streaming and
//!   captures wait in this worker's queue; the next round renews.
//! - Captures left queued by a worker that is gone are stored by the live ones.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::Serialize;
use tokio::task::JoinHandle;
use tracing::{Instrument, error, info, info_span, warn};

use super::Leases;
use crate::config::CameraConfig;
use crate::core::{Clock, Shutdown};
use crate::ingest::HealthBoard;
use crate::pipeline::{Launcher, Timebase};

pub use crate::pipeline::setup::JobStarter;

/// What this worker is doing, for the status output, the web UI and metrics.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct WorkerStatus {
    pub id: String,
    pub live_workers: usize,
    /// This worker's fair share of the cameras.
    pub share: usize,
    pub cameras: Vec<String>,
    pub jobs: Vec<String>,
    /// Leases taken (including takeovers), given back on rebalance, and lost to another
    /// worker, since start.
    pub taken: u64,
    pub given_back: u64,
    pub lost: u64,
    /// Heartbeats that failed (database unreachable).
    pub round_errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

pub type WorkerBoard = Arc<Mutex<WorkerStatus>>;

/// Everything the worker loop runs with.
pub struct WorkerHost {
    pub launcher: Launcher,
    pub leases: Leases,
    pub heartbeat: Duration,
    pub cameras: BTreeMap<String, CameraConfig>,
    pub health: HealthBoard,
    pub jobs: BTreeMap<String, JobStarter>,
    /// `[cases] spool` root of every worker's queue (`<root>/<worker id>`).
    pub spool_root: Option<PathBuf>,
    pub status: WorkerBoard,
    pub clock: Arc<dyn Clock>,
    /// How long a stopping camera may take.
    pub deadline: Duration,
}

/// `citywatch run --worker`.
pub struct WorkerOptions {
    /// Unique among the workers; also names this worker's capture queue.
    pub id: String,
    /// The most cameras this worker takes (`Some(0)`: web UI and jobs only).
    pub max_cameras: Option<u64>,
}

/// Starts the worker loop over the config's enabled cameras; returns its task and board.
pub async fn start(
    launcher: &Launcher,
    opts: &WorkerOptions,
    store: Arc<crate::store::Store>,
    jobs: BTreeMap<String, JobStarter>,
    health: HealthBoard,
    shutdown: Shutdown,
) -> Result<(JoinHandle<()>, WorkerBoard), crate::store::StoreError> {
    let config = &launcher.config;
    let clock = launcher.clock.clone();
    let cameras: BTreeMap<String, CameraConfig> = config
        .cameras
        .iter()
        .filter(|c| c.enabled)
        .map(|c| (c.id.clone(), c.clone()))
        .collect();
    let leases = Leases::new(
        store,
        clock.clone(),
        opts.id.clone(),
        crate::core::unix_secs(clock.as_ref()),
        config.workers.lease_ttl_s,
        config.workers.heartbeat_s,
        opts.max_cameras,
        cameras.keys().cloned().collect(),
        jobs.keys().cloned().collect(),
    )
    .await?;
    info!(worker = %opts.id, cameras = cameras.len(), "worker started; taking camera leases");
    let status = WorkerBoard::default();
    let host = WorkerHost {
        launcher: launcher.clone(),
        leases,
        heartbeat: crate::config::secs(config.workers.heartbeat_s),
        cameras,
        health,
        jobs,
        spool_root: config.cases.as_ref().map(|c| c.spool.join("workers")),
        status: status.clone(),
        clock,
        deadline: crate::config::secs(config.settings.shutdown_timeout_s),
    };
    Ok((tokio::spawn(host.run(shutdown)), status))
}

struct Running {
    stop: Shutdown,
    task: JoinHandle<()>,
}

impl WorkerHost {
    /// Runs until `shutdown`, then stops every camera, saves their episodes and gives every
    /// lease back.
    pub async fn run(mut self, shutdown: Shutdown) {
        let mut running: BTreeMap<String, Running> = BTreeMap::new();
        let mut jobs: BTreeMap<String, Running> = BTreeMap::new();
        let mut tick = tokio::time::interval(self.heartbeat);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        self.status.lock().expect("worker status").id = self.leases.id.clone();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.triggered() => break,
                _ = tick.tick() => {}
            }
            let round = match self.leases.round().await {
                Ok(r) => r,
                Err(e) => {
                    warn!(worker = %self.leases.id, error = %e, "heartbeat failed; cameras keep running, will retry");
                    let mut s = self.status.lock().expect("worker status");
                    s.round_errors += 1;
                    s.last_error = Some(e.to_string());
                    continue;
                }
            };
            for id in &round.lost {
                warn!(worker = %self.leases.id, camera = %id, "lease lost to another worker; stopping the camera");
                if let Some(r) = running.remove(id) {
                    self.stop(id, r, false).await;
                }
            }
            for id in &round.give_back {
                if let Some(r) = running.remove(id) {
                    self.stop(id, r, true).await;
                }
                match self.leases.release(id).await {
                    Ok(()) => {
                        info!(worker = %self.leases.id, camera = %id, "camera given back for rebalancing")
                    }
                    Err(e) => {
                        warn!(worker = %self.leases.id, camera = %id, error = %e, "cannot give the camera back; its lease will expire")
                    }
                }
            }
            for id in &round.take {
                let Some(cam) = self.cameras.get(id).cloned() else {
                    continue;
                };
                info!(worker = %self.leases.id, camera = %id, "lease taken; starting the camera");
                if let Some(old) = running.remove(id) {
                    self.stop(id, old, false).await;
                }
                running.insert(id.clone(), self.start(cam));
            }
            for job in &round.jobs_lost {
                if let Some(r) = jobs.remove(job) {
                    r.stop.trigger();
                    let _ = tokio::time::timeout(self.deadline, r.task).await;
                }
            }
            for job in &round.jobs_taken {
                if let Some(start) = self.jobs.get(job) {
                    info!(worker = %self.leases.id, job = %job, "job lease taken; starting it");
                    let stop = Shutdown::new();
                    let task = start(stop.clone());
                    jobs.insert(job.clone(), Running { stop, task });
                }
            }
            if !round.renewed_only {
                // (Back from an outage every heartbeat looks expired for a moment.)
                self.adopt_orphan_queues(crate::core::unix_secs(self.clock.as_ref()))
                    .await;
            }
            let mut s = self.status.lock().expect("worker status");
            s.live_workers = round.live_workers;
            s.share = round.share;
            s.cameras = running.keys().cloned().collect();
            s.jobs = jobs.keys().cloned().collect();
            s.taken += round.take.len() as u64;
            s.given_back += round.give_back.len() as u64;
            s.lost += round.lost.len() as u64;
            s.last_error = None;
        }
        for r in jobs.values() {
            r.stop.trigger();
        }
        for r in running.values() {
            r.stop.trigger();
        }
        for (id, r) in std::mem::take(&mut running) {
            self.stop(&id, r, true).await;
        }
        for (_, r) in jobs {
            let _ = tokio::time::timeout(self.deadline, r.task).await;
        }
        match self.leases.retire().await {
            Ok(()) => info!(worker = %self.leases.id, "leases given back"),
            Err(e) => {
                warn!(worker = %self.leases.id, error = %e, "cannot give the leases back; they expire after the TTL")
            }
        }
    }

    fn start(&self, cam: CameraConfig) -> Running {
        let stop = Shutdown::new();
        let span = info_span!("camera", camera = %cam.id);
        let task = tokio::spawn(
            watch_camera(
                self.launcher.clone(),
                cam,
                self.health.clone(),
                stop.clone(),
            )
            .instrument(span),
        );
        Running { stop, task }
    }

    /// Stops a camera and waits for it; with `save`, writes its episodes before returning.
    async fn stop(&self, id: &str, r: Running, save: bool) {
        r.stop.trigger();
        if tokio::time::timeout(self.deadline, r.task).await.is_err() {
            warn!(camera = %id, "the camera did not stop within the shutdown deadline");
        }
        if let Some(db) = self.launcher.db_episodes() {
            if save {
                if let Err(e) = db.flush(id).await {
                    warn!(camera = %id, error = %e, "cannot save the camera's episodes before giving it back");
                }
            } else {
                db.discard(id);
            }
        }
    }

    /// Stores the captures queued by departed workers: those without a heartbeat row (they
    /// left cleanly) or whose heartbeat expired more than a TTL ago (they died).
    async fn adopt_orphan_queues(&self, now: f64) {
        let (Some(root), Some(stage)) = (&self.spool_root, &self.launcher.stage) else {
            return;
        };
        let Ok(dirs) = std::fs::read_dir(root) else {
            return;
        };
        let Ok(rows) = self.leases.store.worker_expiries().await else {
            return;
        };
        let ttl = self.leases.ttl();
        for d in dirs.flatten() {
            let name = d.file_name().to_string_lossy().to_string();
            let departed = rows
                .iter()
                .find(|(id, _)| *id == name)
                .is_none_or(|(_, expires)| *expires < now - ttl);
            if name == self.leases.id || !departed || !d.path().is_dir() {
                continue;
            }
            if let Err(e) = stage.drain_orphan(&d.path()).await {
                warn!(queue = %d.path().display(), error = %e, "cannot store a departed worker's queued captures; will retry");
            }
        }
    }
}

/// One leased camera: resumes its episodes from the database, then streams and is analysed
/// until its stop signal.
async fn watch_camera(l: Launcher, cam: CameraConfig, health: HealthBoard, stop: Shutdown) {
    if let Some(db) = l.db_episodes() {
        let mut backoff =
            crate::core::Backoff::doubling(Duration::from_millis(500), Duration::from_secs(10));
        loop {
            match db.reload(&cam.id).await {
                Ok(()) => break,
                Err(e) => {
                    let delay = backoff.next_delay();
                    warn!(error = %e, retry_in_s = delay.as_secs_f64(), "cannot load the camera's episodes; will retry");
                    tokio::select! {
                        _ = stop.triggered() => return,
                        _ = tokio::time::sleep(delay) => {}
                    }
                }
            }
        }
    }
    let rig = match l.rig(&cam) {
        Ok(r) => r,
        Err(e) => {
            error!(error = %e, "cannot start the camera's analysis");
            return;
        }
    };
    if let Some(a) = rig.analyser() {
        info!(
            resumed_episodes = a.analysis().tracker().open().len(),
            "camera started"
        );
    }
    let connected = rig.connect(stop);
    health.add(connected.health());
    connected
        .consume(Timebase::Wall, &mut l.boards(&cam.id))
        .await;
    health.remove(&cam.id);
    l.analysis.lock().expect("analysis board").remove(&cam.id);
    l.latest.lock().expect("latest frames").remove(&cam.id);
}
