//! Carrying out the scheduler's plan in `citywatch run`: one task per patrolled camera that
//! connects for each visit (a fresh GStreamer pipeline with its own stop signal), feeds the
//! camera's one analyser (its episodes and dwell timers live on between visits), and reports
//! when the stream has closed; and the patrol loop that asks the scheduler twice a second.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tracing::{info, warn};

use super::{PatrolCamera, Scheduler};
use crate::config::{CameraConfig, PatrolSettings, PipelineConfig};
use crate::core::{Clock, Shutdown};
use crate::ingest::{CameraHealth, HealthBoard, HealthState};
pub use crate::model::live::{PatrolBoard, PatrolStatus};
use crate::pipeline::{AnalysisBoard, CameraRig, Launcher, LiveBoards, Timebase};

/// How often the patrol loop asks the scheduler.
const TICK: Duration = Duration::from_millis(500);

/// The scheduler's view of the config's enabled cameras.
pub fn scheduler(config: &PipelineConfig, p: &PatrolSettings) -> Scheduler {
    let cams = config
        .cameras
        .iter()
        .filter(|c| c.enabled)
        .map(|c| PatrolCamera {
            id: c.id.clone(),
            platform: c.platform.clone(),
            visit_s: c.visit_s.unwrap_or(p.visit_s),
            revisit_s: c.revisit_s.unwrap_or(p.revisit_s),
            continuous: c.continuous,
        })
        .collect();
    Scheduler::new(cams, p.caps.clone(), p.hot_factor)
}

/// Logs each platform's load at start-up: a warning, with the figures, when the cap cannot
/// give every camera its revisit period.
pub fn report_loads(s: &Scheduler) {
    for l in s.loads() {
        if l.feasible {
            info!(platform = %l.platform, cap = l.cap, cameras = l.cameras, continuous = l.continuous,
                demand = format!("{:.2}", l.demand), round_s = format!("{:.0}", l.round_s),
                "patrol: every camera can be visited within its revisit period");
        } else {
            warn!(platform = %l.platform, cap = l.cap, cameras = l.cameras, continuous = l.continuous,
                demand = format!("{:.2}", l.demand), round_s = format!("{:.0}", l.round_s),
                "patrol: the cap is too low to visit every camera within its revisit period; \
                 visits will come late (a round of visits takes round_s)");
        }
    }
}

/// A camera's health across visits: the live visit's health with the counters of earlier
/// visits added, and `waiting` in between.
pub fn persistent_health(cam: &CameraConfig, clock: &dyn Clock) -> watch::Sender<CameraHealth> {
    let mut h = CameraHealth::new(&cam.id, &cam.name, cam.redacted_url(), clock.now());
    h.state = HealthState::Waiting;
    watch::channel(h).0
}

fn merged(base: &CameraHealth, visit: &CameraHealth) -> CameraHealth {
    CameraHealth {
        reconnects: base.reconnects + visit.reconnects,
        frames: base.frames + visit.frames,
        frames_dropped: base.frames_dropped + visit.frames_dropped,
        watchdog_restarts: base.watchdog_restarts + visit.watchdog_restarts,
        last_frame_at: visit.last_frame_at.or(base.last_frame_at),
        last_error: visit.last_error.clone().or(base.last_error.clone()),
        ..visit.clone()
    }
}

/// One patrolled camera: a visit per stop signal received, until the channel closes. Its
/// rig (and so its analyser, with its episodes and dwell timers) lives across visits.
pub async fn camera_task(
    mut rig: CameraRig,
    mut boards: LiveBoards,
    clock: Arc<dyn Clock>,
    health: Arc<watch::Sender<CameraHealth>>,
    mut visits: mpsc::Receiver<Shutdown>,
    ended: mpsc::Sender<String>,
) {
    let id = rig.cam.id.clone();
    while let Some(stop) = visits.recv().await {
        let connected = rig.connect(stop);
        let base = health.borrow().clone();
        let mut visit_health = connected.health();
        let last_health = connected.health();
        let relay = {
            let health = health.clone();
            let base = base.clone();
            tokio::spawn(async move {
                loop {
                    let h = visit_health.borrow_and_update().clone();
                    health.send_replace(merged(&base, &h));
                    if visit_health.changed().await.is_err() {
                        return;
                    }
                }
            })
        };
        rig = connected.consume(Timebase::Wall, &mut boards).await;
        relay.abort();
        let mut h = merged(&base, &last_health.borrow());
        h.state = HealthState::Waiting;
        h.since = clock.now();
        h.retry_in_s = None;
        health.send_replace(h);
        if ended.send(id.clone()).await.is_err() {
            return;
        }
    }
}

/// A run's patrol: its loop, its cameras' tasks and its board.
pub struct Patrol {
    pub board: PatrolBoard,
    main: tokio::task::JoinHandle<()>,
    cameras: Vec<tokio::task::JoinHandle<()>>,
}

/// Whether `cam` is visited in turn by the patrol rather than watched all the time.
pub fn patrolled(config: &PipelineConfig, cam: &CameraConfig) -> bool {
    config.patrol.is_some() && cam.enabled && !cam.continuous
}

impl Patrol {
    /// Starts the patrol over the config's patrolled cameras, their health on `board`;
    /// `None` without `[patrol]`.
    pub fn start(
        launcher: &Launcher,
        board: &HealthBoard,
        shutdown: Shutdown,
    ) -> std::io::Result<Option<Self>> {
        let config = &launcher.config;
        let Some(p) = &config.patrol else {
            return Ok(None);
        };
        let sched = scheduler(config, p);
        report_loads(&sched);
        let (ended_tx, ended_rx) = mpsc::channel(config.cameras.len().max(1));
        let mut senders = BTreeMap::new();
        let mut cameras = Vec::new();
        for cam in config.cameras.iter().filter(|c| patrolled(config, c)) {
            let rig = launcher.rig(cam)?;
            // Connected only while the patrol says so.
            let health = Arc::new(persistent_health(cam, launcher.clock.as_ref()));
            board.add(health.subscribe());
            let (tx, rx) = mpsc::channel(1);
            senders.insert(cam.id.clone(), tx);
            cameras.push(tokio::spawn(camera_task(
                rig,
                launcher.boards(&cam.id),
                launcher.clock.clone(),
                health,
                rx,
                ended_tx.clone(),
            )));
        }
        let status = PatrolBoard::default();
        let main = tokio::spawn(patrol_loop(
            sched,
            senders,
            ended_rx,
            launcher.analysis.clone(),
            launcher.checks.clone(),
            status.clone(),
            launcher.clock.clone(),
            shutdown,
        ));
        Ok(Some(Self {
            board: status,
            main,
            cameras,
        }))
    }

    pub fn cameras(&self) -> usize {
        self.cameras.len()
    }

    /// After shutdown: the loop has stopped every visit; each camera closes its current
    /// one within `deadline`.
    pub async fn join(self, deadline: Duration) {
        let _ = self.main.await;
        for t in self.cameras {
            if tokio::time::timeout(deadline, t).await.is_err() {
                warn!("a patrolled camera did not close its visit within the shutdown deadline");
            }
        }
    }
}

/// The patrol loop: asks the scheduler, starts and stops visits, publishes the status.
#[allow(clippy::too_many_arguments)]
pub async fn patrol_loop(
    mut sched: Scheduler,
    visits: BTreeMap<String, mpsc::Sender<Shutdown>>,
    mut ended: mpsc::Receiver<String>,
    analysis: AnalysisBoard,
    checks: crate::closure::SharedChecks,
    status: PatrolBoard,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
) {
    let start = clock.now();
    let mut active: BTreeMap<String, Shutdown> = BTreeMap::new();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    status.lock().platforms = sched.loads();
    loop {
        tokio::select! {
            biased;
            _ = shutdown.triggered() => break,
            Some(id) = ended.recv() => {
                active.remove(&id);
                sched.ended(&id);
            }
            _ = tick.tick() => {
                let now = clock
                    .now()
                    .duration_since(start)
                    .unwrap_or_default()
                    .as_secs_f64();
                {
                    let a = analysis.lock();
                    for id in visits.keys() {
                        // A case reported handled moves its camera's visits forward too:
                        // the closure check looks at its next visit.
                        sched.set_hot(
                            id,
                            a.get(id).is_some_and(|s| s.watched_episodes > 0) || checks.wants(id),
                        );
                    }
                }
                let plan = sched.tick(now);
                for id in &plan.stop {
                    if let Some(s) = active.get(id) {
                        s.trigger();
                    }
                }
                for id in plan.start {
                    // Continuous cameras run outside the patrol; they only hold their slot.
                    let Some(tx) = visits.get(&id) else { continue };
                    let stop = Shutdown::new();
                    if tx.send(stop.clone()).await.is_ok() {
                        active.insert(id, stop);
                    }
                }
                status.lock().cameras = sched.status();
            }
        }
    }
    for s in active.values() {
        s.trigger();
    }
}
