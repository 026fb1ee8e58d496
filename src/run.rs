//! `citywatch run`: wires the stages together and runs until shutdown. Every camera goes
//! through the camera runner ([`crate::pipeline`]): a fixed list, the patrol's visits, or a
//! worker's leased cameras. Health is printed periodically; SIGINT/SIGTERM shut it down
//! cleanly.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use crate::config::PipelineConfig;
use crate::core::{Clock, Shutdown};
use crate::ingest::HealthBoard;
use crate::patrol::visits::{Patrol, patrolled};
use crate::pipeline::{Launcher, Timebase, setup};
use crate::status::Boards;

pub use crate::status::StatusFormat;
pub use crate::workers::host::WorkerOptions;

pub struct RunOptions {
    /// Stop by itself after this long (demos, smoke tests).
    pub duration: Option<Duration>,
    pub status_format: StatusFormat,
    /// Run as one of several workers sharing the case database: cameras by lease.
    pub worker: Option<WorkerOptions>,
    /// Serve the web UI when `[web]` is configured (`--no-web` turns it off).
    pub web: bool,
}

/// Runs until shutdown (a signal, `duration`, or every camera finished).
pub async fn run(
    config: PipelineConfig,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
    opts: RunOptions,
) -> anyhow::Result<()> {
    if opts.worker.is_some() {
        crate::workers::check_config(&config)?;
    }
    let config = Arc::new(config);
    let detection = setup::start_detection(&config, false)?;
    let worker_id = opts.worker.as_ref().map(|w| w.id.as_str());
    let store = match &config.cases {
        Some(c) => Some(setup::open_store(&c.database, &config).await?),
        None => None,
    };
    // Calibration overrides an admin applied (from the verdict history's proposals), and
    // zones an admin drew on a camera's picture.
    let config = match &store {
        Some(store) => {
            let overrides = store.overrides().await?;
            let zones = store.zone_overrides().await?;
            if overrides.is_empty() && zones.is_empty() {
                config
            } else {
                let mut c = (*config).clone();
                for o in &overrides {
                    apply_override(&mut c, o);
                }
                for z in &zones {
                    apply_zone_override(&mut c, z);
                }
                Arc::new(c)
            }
        }
        None => config,
    };
    let episodes = setup::episodes(
        &config,
        store.as_ref(),
        worker_id,
        clock.clone(),
        shutdown.clone(),
    )
    .await?;
    let (stage, jobs) = match &store {
        Some(store) => {
            // Each worker has its own capture queue; the others drain it if it dies.
            let spool = config.cases.as_ref().zip(worker_id);
            let (stage, jobs) = setup::open_filing(
                &config,
                store.clone(),
                spool.map(|(c, id)| c.spool.join("workers").join(id)),
                detection.as_ref().map(|d| d.model.clone()),
                clock.clone(),
                shutdown.clone(),
            )?;
            (Some(stage), jobs)
        }
        None => (None, Default::default()),
    };
    // What operators said of earlier captures: the cameras judge candidates against it, the
    // web UI adds to it.
    let memory = match &store {
        Some(store) => {
            let pruned = store.prune_memory(config.learning.max_per_zone).await?;
            let m = crate::learn::VerdictMemory::from_entries(
                config.learning.clone(),
                store.memory_entries().await?,
            );
            info!(entries = m.len(), pruned, "verdict memory loaded");
            crate::learn::SharedMemory::new(m)
        }
        None => crate::learn::SharedMemory::new(crate::learn::VerdictMemory::new(
            config.learning.clone(),
        )),
    };
    // Verdicts given through another process's web UI (workers share one database) reach
    // these cameras at the next reload.
    if let Some(store) = store.clone() {
        let (memory, shutdown, settings) =
            (memory.clone(), shutdown.clone(), config.learning.clone());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(MEMORY_RELOAD) => {}
                    _ = shutdown.triggered() => break,
                }
                match store.memory_entries().await {
                    Ok(entries) => memory.replace(crate::learn::VerdictMemory::from_entries(
                        settings.clone(),
                        entries,
                    )),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reload the verdict memory; keeping the last")
                    }
                }
            }
        });
    }
    // Closure checks of cases reported handled: the cameras look at their places; the
    // platform callback adds to them, and the life-cycle job loads them at once and reloads
    // them (another process may have received the report).
    let checks = match &stage {
        Some(s) => s.checks(),
        None => Default::default(),
    };
    if let (Some(store), Some(cases)) = (store.clone(), config.cases.clone()) {
        let (checks, shutdown, clock) = (checks.clone(), shutdown.clone(), clock.clone());
        tokio::spawn(
            async move { crate::notify::upkeep(store, cases, checks, clock, shutdown).await },
        );
    }
    let launcher = Launcher {
        config: config.clone(),
        detection: detection
            .as_ref()
            .map(|d| (d.service.clone(), d.model_sees_overflow)),
        budget: setup::budget(&config),
        episodes,
        stage: stage.clone(),
        clock: clock.clone(),
        backoff: config.backoff(),
        analysis: Default::default(),
        latest: Default::default(),
        desk: Default::default(),
        memory: memory.clone(),
        checks: checks.clone(),
        keep_detections: false,
        plates: detection.as_ref().and_then(|d| d.plates.clone()),
        shed: config.ingest.shed,
    };
    let health = HealthBoard::default();

    // A worker runs its cameras and singleton jobs by lease; otherwise this process runs
    // the jobs and every enabled camera, fixed or patrolled.
    let mut worker = None;
    let mut cameras = Vec::new();
    let mut patrol = None;
    match (&opts.worker, &store) {
        (Some(w), Some(store)) => {
            worker = Some(
                crate::workers::host::start(
                    &launcher,
                    w,
                    store.clone(),
                    jobs,
                    health.clone(),
                    shutdown.clone(),
                )
                .await?,
            );
        }
        _ => {
            for start in jobs.values() {
                start(shutdown.clone());
            }
            for cam in config.cameras.iter().filter(|c| c.enabled) {
                if patrolled(&config, cam) {
                    continue;
                }
                let connected = launcher.rig(cam)?.connect(shutdown.clone());
                health.add(connected.health());
                let mut boards = launcher.boards(&cam.id);
                let task = tokio::spawn(async move {
                    connected.consume(Timebase::Wall, &mut boards).await;
                });
                cameras.push((cam.id.clone(), task));
            }
            patrol = Patrol::start(&launcher, &health, shutdown.clone())?;
        }
    }
    info!(
        cameras = cameras.len() + patrol.as_ref().map_or(0, Patrol::cameras),
        patrolled = patrol.as_ref().map_or(0, Patrol::cameras),
        "pipeline started"
    );
    let mut serving = false;
    if let Some(store) = &store
        && opts.web
        && let Some(mut web) = crate::web::WebState::new(
            &config,
            store.clone(),
            health.clone(),
            launcher.analysis.clone(),
            stage
                .clone()
                .map(|s| s as Arc<dyn crate::model::live::FilingControl>),
            clock.clone(),
        )
    {
        web.inference = detection.as_ref().map(|d| d.service.latency());
        web.latest = launcher.latest.clone();
        web.desk = launcher.desk.clone();
        web.memory = Some(Arc::new(memory.clone()));
        web.checks = checks.clone();
        web.patrol = patrol.as_ref().map(|p| p.board.clone());
        web.worker = worker.as_ref().map(|(_, b)| b.clone());
        let addr = crate::web::serve(Arc::new(web), shutdown.clone()).await?;
        serving = true;
        // Scripts and tests wait for this line.
        println!("web: listening on http://{addr}");
    }
    let (analysis, detecting) = (launcher.analysis.clone(), detection.is_some());
    // The launcher holds a handle on the detection service, which must be gone before the
    // service's threads can be joined at shutdown.
    drop(launcher);
    let boards = Boards {
        health,
        analysis,
        detecting,
        patrol: patrol.as_ref().map(|p| p.board.clone()),
        worker: worker.as_ref().map(|(_, b)| b.clone()),
        filing: stage.clone(),
    };

    let mut ticker = tokio::time::interval(crate::config::secs(config.settings.status_interval_s));
    ticker.tick().await;
    let stop_after = async {
        match opts.duration {
            Some(d) => tokio::time::sleep(d).await,
            None => std::future::pending().await,
        }
    };
    tokio::pin!(stop_after);
    loop {
        tokio::select! {
            biased;
            _ = shutdown.triggered() => break,
            _ = &mut stop_after => break,
            _ = ticker.tick() => {
                boards.print(clock.as_ref(), opts.status_format);
                // A process serving the web UI (or with no camera of its own) stays up for it.
                if patrol.is_none() && worker.is_none() && !serving && cameras.iter().all(|(_, t)| t.is_finished()) {
                    info!("every camera has stopped");
                    break;
                }
            }
        }
    }
    shutdown.trigger();

    // Every camera gets the shutdown deadline to stop, then what is stuck is reported.
    let deadline = crate::config::secs(config.settings.shutdown_timeout_s);
    let until = tokio::time::Instant::now() + deadline;
    let mut stuck = Vec::new();
    for (id, c) in cameras {
        if tokio::time::timeout_at(until, c).await.is_err() {
            stuck.push(id);
        }
    }
    // A worker stops its cameras, saves their episodes and gives its leases back.
    if let Some((h, _)) = worker {
        let _ = h.await;
    }
    if let Some(p) = patrol {
        p.join(deadline).await;
    }
    // Once the cameras are gone, the inference threads finish the batch they hold.
    if let Some(d) = detection {
        let service = d.service;
        let done = tokio::task::spawn_blocking(move || service.join(deadline)).await?;
        if !done {
            warn!("inference threads did not stop within the shutdown deadline");
        }
    }
    boards.print_cameras(clock.as_ref(), opts.status_format);
    if let Some(s) = &stage {
        // What the cameras captured before the end: packages whose clips are complete are
        // written; the queue is drained once more. What remains waits for the next start.
        let _ = tokio::time::timeout(deadline, s.flush()).await;
        crate::status::print_filing(Some(s), opts.status_format);
    }
    if !stuck.is_empty() {
        warn!(cameras = ?stuck, "shutdown deadline passed; forcing exit");
    } else {
        info!("shut down cleanly");
    }
    Ok(())
}

/// How often a running process reloads the verdict memory from the database.
const MEMORY_RELOAD: Duration = Duration::from_secs(60);

/// Puts an applied calibration override into the config: the camera's rule takes its
/// min_score or change_share.
/// A zone drawn on a camera's picture, in place of the config's polygon. Returns whether
/// the camera has that zone (and the polygon is sound).
pub fn apply_zone_override(
    config: &mut PipelineConfig,
    z: &crate::store::zones::ZoneOverride,
) -> bool {
    let polygon = match crate::model::zones::Polygon::validate(&z.polygon) {
        Ok(p) => p,
        Err(e) => {
            warn!(camera = %z.camera, zone = %z.zone, error = %e, "a drawn zone is not used");
            return false;
        }
    };
    // A mask drawn beyond the config's zones is added to its camera.
    if crate::model::zones::is_drawn_mask(&z.zone)
        && let Some(cam) = config.cameras.iter_mut().find(|c| c.id == z.camera)
        && !cam.zones.iter().any(|zone| zone.id == z.zone)
    {
        cam.zones
            .push(crate::config::Zone::drawn_mask(&z.zone, polygon));
        return true;
    }
    let Some(zone) = config
        .cameras
        .iter_mut()
        .filter(|c| c.id == z.camera)
        .flat_map(|c| c.zones.iter_mut())
        .find(|zone| zone.id == z.zone)
    else {
        warn!(camera = %z.camera, zone = %z.zone, "a drawn zone of a camera or zone the config does not have");
        return false;
    };
    zone.polygon = polygon;
    info!(camera = %z.camera, zone = %z.zone, by = %z.set_by, "drawn zone applied");
    true
}

pub fn apply_override(config: &mut PipelineConfig, o: &crate::store::learning::Override) {
    let Some(rule) = crate::model::RuleKind::parse(&o.rule) else {
        return;
    };
    for cam in config.cameras.iter_mut().filter(|c| c.id == o.camera) {
        for r in cam.rules.iter_mut().filter(|r| r.kind == rule) {
            match o.setting.as_str() {
                "min_score" => r.min_score = o.value as f32,
                "change_share" => r.change_share = o.value as f32,
                _ => continue,
            }
            info!(camera = %o.camera, rule = %o.rule, setting = %o.setting, value = o.value, "calibration override applied");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drawn(zone: &str, polygon: Vec<[f32; 2]>) -> crate::store::zones::ZoneOverride {
        crate::store::zones::ZoneOverride {
            camera: "c".into(),
            zone: zone.into(),
            polygon,
            set_by: "boss".into(),
            set_at: 0.0,
        }
    }

    #[test]
    fn drawn_zones_replace_the_configs_and_drawn_masks_are_added_at_start() {
        let mut config = PipelineConfig::parse(
            r#"
[[cameras]]
id = "c"
url = "rtsp://127.0.0.1:9/x"
[[cameras.zones]]
id = "road"
kind = "no_parking"
polygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]
"#,
            std::path::Path::new("."),
        )
        .unwrap();
        let square = vec![[0.2, 0.2], [0.4, 0.2], [0.4, 0.4], [0.2, 0.4]];
        assert!(apply_zone_override(
            &mut config,
            &drawn("road", square.clone())
        ));
        assert!(apply_zone_override(
            &mut config,
            &drawn("drawn-mask-1", square.clone())
        ));
        assert!(!apply_zone_override(
            &mut config,
            &drawn("elsewhere", square.clone())
        ));
        assert!(!apply_zone_override(
            &mut config,
            &drawn(
                "drawn-mask-2",
                vec![[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]
            )
        ));
        let zones = &config.cameras[0].zones;
        assert_eq!(
            zones.iter().map(|z| z.id.as_str()).collect::<Vec<_>>(),
            ["road", "drawn-mask-1"]
        );
        assert_eq!(zones[0].polygon.0, square);
        assert_eq!(zones[1].kind, crate::model::zones::ZoneKind::Mask);
    }
}
