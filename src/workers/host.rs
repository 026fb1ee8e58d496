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
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tracing::{Instrument, error, info, info_span, warn};

use super::Leases;
use crate::config::CameraConfig;
use crate::core::{Clock, Shutdown};
use crate::ingest::HealthBoard;
use crate::pipeline::{Launcher, Timebase};

pub use crate::model::live::{WorkerBoard, WorkerStatus};
pub use crate::pipeline::setup::JobStarter;

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
    /// `[patrol]`: the patrolled cameras, visited in turn under the shared stream slots.
    pub patrol: Option<PatrolState>,
}

/// The patrol across workers, this worker's part (see [`super::patrol`]).
pub struct PatrolState {
    pub settings: crate::config::PatrolSettings,
    pub cameras: Vec<CameraConfig>,
    pub slots: BTreeMap<String, Vec<String>>,
    visits: BTreeMap<String, Visit>,
    /// When a heartbeat last reached the database.
    last_ok: f64,
}

struct Visit {
    slot: String,
    started_at: f64,
    visit_s: f64,
    running: Running,
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
    let patrolled = |c: &CameraConfig| config.patrol.is_some() && !c.continuous;
    let cameras: BTreeMap<String, CameraConfig> = config
        .cameras
        .iter()
        .filter(|c| c.enabled && !patrolled(c))
        .map(|c| (c.id.clone(), c.clone()))
        .collect();
    let patrol = match &config.patrol {
        None => None,
        Some(p) => {
            let cams: Vec<CameraConfig> = config
                .cameras
                .iter()
                .filter(|c| c.enabled && patrolled(c))
                .cloned()
                .collect();
            let slots = super::slots::slots(p, &config.cameras);
            let mut names: Vec<String> = cams.iter().map(|c| c.id.clone()).collect();
            names.extend(slots.values().flatten().cloned());
            store.ensure_leases(&names).await?;
            info!(worker = %opts.id, patrolled = cams.len(), slots = slots.values().map(Vec::len).sum::<usize>(), "patrol across workers: visits share the stream slots");
            Some(PatrolState {
                settings: p.clone(),
                cameras: cams,
                slots,
                visits: BTreeMap::new(),
                last_ok: crate::core::unix_secs(clock.as_ref()),
            })
        }
    };
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
        patrol,
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
        self.status.lock().id = self.leases.id.clone();
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
                    self.fence_visits().await;
                    let mut s = self.status.lock();
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
            let made = self.patrol_round(&round).await;
            self.write_fleet_status(&running).await;
            let mut s = self.status.lock();
            s.visits = self
                .patrol
                .as_ref()
                .map(|p| p.visits.keys().cloned().collect())
                .unwrap_or_default();
            s.visits_made += made;
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
        let ids: Vec<String> = self
            .patrol
            .as_ref()
            .map(|p| p.visits.keys().cloned().collect())
            .unwrap_or_default();
        for id in ids {
            self.end_visit(&id, true).await;
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

    /// One patrol heartbeat: lost visits stop, finished ones end, free slots start the most
    /// overdue cameras. Returns the visits started.
    async fn patrol_round(&mut self, round: &super::Round) -> u64 {
        let Some(p) = &mut self.patrol else { return 0 };
        let store = self.leases.store.clone();
        let me = self.leases.id.clone();
        let now = crate::core::unix_secs(self.clock.as_ref());
        p.last_ok = now;
        let rows = match store.leases().await {
            Ok(r) => r,
            Err(e) => {
                warn!(worker = %me, error = %e, "patrol: cannot read the leases; visits go on");
                return 0;
            }
        };
        let ttl = self.leases.ttl();
        let grace = self.heartbeat.as_secs_f64();
        let held_by = |name: &str| {
            rows.iter()
                .find(|r| r.name == name)
                .and_then(|r| r.worker.clone().filter(|_| r.expires_at >= now - grace))
        };
        // Visits whose camera or slot lease another worker holds now (this worker was cut
        // off past the TTL): stopped at once, nothing saved.
        let lost: Vec<String> = p
            .visits
            .iter()
            .filter(|(id, v)| {
                held_by(id).as_deref() != Some(me.as_str())
                    || held_by(&v.slot).as_deref() != Some(me.as_str())
            })
            .map(|(id, _)| id.clone())
            .collect();
        let due_end: Vec<String> = p
            .visits
            .iter()
            .filter(|(id, v)| !lost.contains(id) && now - v.started_at >= v.visit_s)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &lost {
            warn!(worker = %me, camera = %id, "patrol: visit lost to another worker; stopping it");
            self.end_visit(id, false).await;
        }
        for id in &due_end {
            self.end_visit(id, true).await;
        }
        if round.renewed_only {
            return 0;
        }
        let Some(p) = &self.patrol else { return 0 };
        let last: BTreeMap<String, (f64, bool)> = match store.last_visits().await {
            Ok(v) => v.into_iter().map(|(c, t, hot)| (c, (t, hot))).collect(),
            Err(e) => {
                warn!(worker = %me, error = %e, "patrol: cannot read the visit history");
                return 0;
            }
        };
        let live = round.live_workers.max(1);
        let peers = match store.live_workers(now).await {
            Ok(w) => w,
            Err(e) => {
                warn!(worker = %me, error = %e, "patrol: cannot read the live workers");
                return 0;
            }
        };
        // Visits each worker made over the last revisit period: the fewest go first.
        let recent: BTreeMap<String, i64> =
            match store.visit_counts_since(now - p.settings.revisit_s).await {
                Ok(v) => v.into_iter().collect(),
                Err(e) => {
                    warn!(worker = %me, error = %e, "patrol: cannot read the visit history");
                    return 0;
                }
            };
        let made = |w: &str| recent.get(w).copied().unwrap_or(0);
        let room = self
            .leases
            .capacity()
            .map_or(usize::MAX, |c| c as usize)
            .saturating_sub(self.leases.cameras_held().len() + p.visits.len());
        let mut starts: Vec<(CameraConfig, String)> = Vec::new();
        for (platform, slots) in &p.slots {
            let share = slots.len().div_ceil(live);
            // A free slot goes first to a peer below its share that made fewer visits lately
            // (it takes it at its next heartbeat), so the visits rotate among the workers.
            let peer_first = peers.iter().any(|w| {
                w.id != me
                    && made(&w.id) < made(&me)
                    && slots
                        .iter()
                        .filter(|s| held_by(s).as_deref() == Some(w.id.as_str()))
                        .count()
                        < share
                    && w.capacity.is_none_or(|c| w.held < c)
            });
            if peer_first {
                continue;
            }
            let mut mine = p
                .visits
                .values()
                .filter(|v| slots.contains(&v.slot))
                .count();
            let mut cands = super::slots::candidates(
                &p.cameras,
                platform,
                &p.settings,
                &last,
                |id| held_by(id).is_some(),
                now,
            )
            .into_iter();
            while mine < share && starts.len() < room {
                let free: Vec<String> = slots
                    .iter()
                    .filter(|s| held_by(s).is_none() && !starts.iter().any(|(_, t)| t == *s))
                    .cloned()
                    .collect();
                let slot = match store.take_leases(&me, &free, 1, now, ttl, grace).await {
                    Ok(mut t) if !t.is_empty() => t.remove(0).0,
                    Ok(_) => break,
                    Err(e) => {
                        warn!(worker = %me, error = %e, "patrol: cannot take a slot");
                        break;
                    }
                };
                let mut chosen = None;
                for c in cands.by_ref() {
                    if let Ok(t) = store
                        .take_leases(&me, std::slice::from_ref(&c.id), 1, now, ttl, grace)
                        .await
                        && !t.is_empty()
                    {
                        chosen = Some(c.clone());
                        break;
                    }
                }
                match chosen {
                    Some(c) => {
                        starts.push((c, slot));
                        mine += 1;
                    }
                    None => {
                        let _ = store.release_lease(&me, &slot).await;
                        break;
                    }
                }
            }
        }
        let mut made = 0;
        for (cam, slot) in starts {
            let started_at = crate::core::unix_secs(self.clock.as_ref());
            if let Err(e) = store.visit_started(&cam.id, started_at, &me, &slot).await {
                warn!(worker = %me, camera = %cam.id, error = %e, "patrol: cannot record the visit; giving it up");
                let _ = store.release_lease(&me, &cam.id).await;
                let _ = store.release_lease(&me, &slot).await;
                continue;
            }
            info!(worker = %me, camera = %cam.id, slot = %slot, "patrol: visit started");
            let visit_s = cam
                .visit_s
                .unwrap_or(self.patrol.as_ref().map_or(20.0, |p| p.settings.visit_s));
            let running = self.start(cam.clone());
            if let Some(p) = &mut self.patrol {
                p.visits.insert(
                    cam.id.clone(),
                    Visit {
                        slot,
                        started_at,
                        visit_s,
                        running,
                    },
                );
            }
            made += 1;
        }
        made
    }

    /// Ends a visit: the stream closes (episodes saved with `save`), then the camera's and
    /// the slot's leases are given back and the visit recorded.
    async fn end_visit(&mut self, id: &str, save: bool) {
        let Some(v) = self.patrol.as_mut().and_then(|p| p.visits.remove(id)) else {
            return;
        };
        let hot = self
            .launcher
            .analysis
            .lock()
            .get(id)
            .is_some_and(|a| a.watched_episodes > 0)
            || self.launcher.checks.wants(id);
        self.stop(id, v.running, save).await;
        let store = self.leases.store.clone();
        let me = self.leases.id.clone();
        let now = crate::core::unix_secs(self.clock.as_ref());
        if let Err(e) = store.visit_ended(id, v.started_at, now, hot).await {
            warn!(worker = %me, camera = %id, error = %e, "patrol: cannot record the visit's end");
        }
        if save {
            let _ = store.release_lease(&me, id).await;
            let _ = store.release_lease(&me, &v.slot).await;
        }
        info!(worker = %me, camera = %id, hot, "patrol: visit ended");
    }

    /// After a failed heartbeat: once the database has been out of reach for all but one
    /// heartbeat of the TTL, this worker's leases may lapse and be taken, so its visits stop
    /// now (the stream cap must hold fleet-wide).
    async fn fence_visits(&mut self) {
        let Some(p) = &self.patrol else { return };
        let now = crate::core::unix_secs(self.clock.as_ref());
        if p.visits.is_empty() || now - p.last_ok < self.leases.ttl() - self.heartbeat.as_secs_f64()
        {
            return;
        }
        let ids: Vec<String> = p.visits.keys().cloned().collect();
        warn!(worker = %self.leases.id, visits = ids.len(), "patrol: the database is out of reach for nearly a lease TTL; stopping the visits");
        for id in ids {
            if let Some(v) = self.patrol.as_mut().and_then(|p| p.visits.remove(&id)) {
                self.stop(&id, v.running, false).await;
            }
        }
    }

    /// Writes the health and analysis counters of the cameras this worker runs to the
    /// database, for the fleet view.
    async fn write_fleet_status(&self, running: &BTreeMap<String, Running>) {
        let now_t = self.clock.now();
        let mut ids: Vec<&String> = running.keys().collect();
        if let Some(p) = &self.patrol {
            ids.extend(p.visits.keys());
        }
        if ids.is_empty() {
            return;
        }
        let health = self.health.snapshot(now_t);
        let analysis = self.launcher.analysis.lock().clone();
        let rows: Vec<(String, serde_json::Value, Option<serde_json::Value>)> = ids
            .iter()
            .filter_map(|id| {
                let h = health.iter().find(|h| &h.health.id == *id)?;
                Some((
                    (*id).clone(),
                    serde_json::to_value(h).ok()?,
                    analysis.get(*id).and_then(|a| serde_json::to_value(a).ok()),
                ))
            })
            .collect();
        let now = crate::core::unix_secs(self.clock.as_ref());
        if let Err(e) = self
            .leases
            .store
            .write_camera_status(&self.leases.id, now, &rows)
            .await
        {
            warn!(worker = %self.leases.id, error = %e, "cannot write the cameras' status for the fleet view");
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
    l.analysis.lock().remove(&cam.id);
    l.latest.lock().remove(&cam.id);
}
