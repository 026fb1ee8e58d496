//! What the camera runner is started with: the detector's service, the case store, the
//! episode store and the inference budget, each built from the config.

use parking_lot::Mutex;
use std::sync::Arc;
use std::time::Duration;

use tracing::info;

use crate::config::PipelineConfig;
use crate::detect::{DetectionService, Detector, Manifest, ModelError, OrtDetector, ServiceConfig};
use crate::episodes::persist::{EpisodeStore, JsonFileStore, NoStore};
use crate::ratelimit::InferenceBudget;
use crate::store::Store;

/// The loaded detector: its service, and whether it sees overflowing bins itself.
pub struct Detection {
    pub service: DetectionService,
    pub model_sees_overflow: bool,
    /// Name, version and sha256, for evidence manifests.
    pub model: crate::evidence::ModelInfo,
    /// The plate reader of standing vehicles (`[detect.plates]`): loaded when enabled and a
    /// camera has an `abandoned_vehicle` rule.
    pub plates: Option<Arc<dyn crate::plate::PlateReader>>,
}

/// Loads the plate reader when `[detect.plates]` is on and some camera judges vehicles.
pub fn load_plate_reader(
    config: &PipelineConfig,
) -> Result<Option<Arc<dyn crate::plate::PlateReader>>, ModelError> {
    let Some(d) = &config.detect else {
        return Ok(None);
    };
    let vehicles = config.cameras.iter().any(|c| {
        c.enabled
            && c.rules
                .iter()
                .any(|r| r.kind == crate::model::RuleKind::AbandonedVehicle)
    });
    if !d.plates.enabled || !vehicles {
        return Ok(None);
    }
    let manifest = crate::plate::PlateManifest::load_named(&d.models_dir, &d.plates.model)?;
    let lib = crate::detect::runtime::library_path(d.ort_library.as_deref());
    let reader = crate::plate::OcrPlateReader::load(manifest, &lib, d.plates.intra_threads)?;
    info!(model = %d.plates.model, "plate reader loaded");
    Ok(Some(Arc::new(reader)))
}

/// Loads the configured detector and starts its service; `None` without `[detect]`.
/// `single` forces batches of one (replays: results independent of timing).
pub fn start_detection(
    config: &PipelineConfig,
    single: bool,
) -> Result<Option<Detection>, ModelError> {
    let Some(d) = &config.detect else {
        return Ok(None);
    };
    let manifest = Manifest::load_named(&d.models_dir, &d.model)?;
    let sees = crate::analysis::model_sees_overflow(&manifest);
    let model = crate::evidence::ModelInfo {
        name: manifest.name.clone(),
        version: manifest.version.clone(),
        sha256: manifest.sha256.clone(),
    };
    let lib = crate::detect::runtime::library_path(d.ort_library.as_deref());
    let detector: Arc<dyn Detector> = Arc::new(OrtDetector::load_with(
        manifest,
        &lib,
        d.intra_threads,
        d.intra_spinning,
    )?);
    info!(model = %d.model, "detector loaded");
    let plates = load_plate_reader(config)?;
    let detector = if single {
        Arc::new(crate::detect::OneAtATime(detector))
    } else {
        detector
    };
    Ok(Some(Detection {
        service: DetectionService::start(
            detector,
            ServiceConfig {
                max_wait: Duration::from_millis(d.batch_wait_ms),
                queue: d.queue,
                threads: d.inference_threads,
                deadline: Duration::from_secs_f64(d.inference_timeout_s),
            },
        ),
        model_sees_overflow: sees,
        model,
        plates,
    }))
}

/// Connects to the case database and records the config's cameras in it.
pub async fn open_store(
    url: &str,
    config: &PipelineConfig,
) -> Result<Arc<Store>, crate::store::StoreError> {
    let store = Arc::new(Store::connect(url).await?);
    for cam in &config.cameras {
        store
            .upsert_camera(&cam.id, &cam.name, &cam.location)
            .await?;
    }
    Ok(store)
}

/// The episode store the config asks for.
pub fn episode_store(config: &PipelineConfig) -> std::io::Result<Box<dyn EpisodeStore>> {
    Ok(match &config.episodes.state_dir {
        Some(dir) => Box::new(JsonFileStore::new(dir)?),
        None => Box::new(NoStore),
    })
}

/// The global inference budget, if configured.
pub fn budget(config: &PipelineConfig) -> Option<Arc<Mutex<InferenceBudget>>> {
    config
        .limits
        .inference_fps
        .map(|r| Arc::new(Mutex::new(InferenceBudget::new(r))))
}

/// Starts a singleton job (the outbox forwarder, the retention sweep) with its stop signal.
pub type JobStarter =
    Box<dyn Fn(crate::core::Shutdown) -> tokio::task::JoinHandle<()> + Send + Sync>;

/// The outbox forwarder's job name.
pub const OUTBOX_JOB: &str = "@outbox";
/// The evidence retention sweep's job name.
pub const RETENTION_JOB: &str = "@retention";

/// The filing stage over `store`, its queue drainer running, and its singleton jobs (not
/// started: a worker runs them only while it holds their lease). `spool` overrides the
/// config's queue folder (each worker has its own).
pub fn open_filing(
    config: &PipelineConfig,
    store: Arc<Store>,
    spool: Option<std::path::PathBuf>,
    model: Option<crate::evidence::ModelInfo>,
    clock: Arc<dyn crate::core::Clock>,
    shutdown: crate::core::Shutdown,
) -> anyhow::Result<(
    Arc<crate::filing::FilingStage>,
    std::collections::BTreeMap<String, JobStarter>,
)> {
    let mut cases = config
        .cases
        .clone()
        .ok_or_else(|| anyhow::anyhow!("cases: filing needs a [cases] section"))?;
    if let Some(s) = spool {
        cases.spool = s;
    }
    let webhook = cases.webhook.clone();
    let stage = crate::filing::FilingStage::open(
        store.clone(),
        Arc::new(cases),
        config.evidence.as_ref(),
        model,
        clock.clone(),
        shutdown,
    )?;
    let mut jobs: std::collections::BTreeMap<String, JobStarter> = Default::default();
    if let Some(hook) = webhook {
        let stored = stage.stored.clone();
        jobs.insert(
            OUTBOX_JOB.into(),
            Box::new(move |stop| {
                tokio::spawn(crate::notify::forward(
                    store.clone(),
                    crate::notify::Forwarder::new(hook.clone()),
                    clock.clone(),
                    stop,
                    stored.clone(),
                ))
            }),
        );
    }
    tokio::spawn(stage.clone().run_drainer());
    let s = stage.clone();
    jobs.insert(
        RETENTION_JOB.into(),
        Box::new(move |stop: crate::core::Shutdown| {
            let stage = s.clone();
            tokio::spawn(async move {
                tokio::select! {
                    _ = stop.triggered() => {}
                    _ = stage.run_retention() => {}
                }
            })
        }),
    );
    Ok((stage, jobs))
}

/// Where the cameras' episodes are kept: the case database with `[episodes] in_database`
/// (for a worker, fenced by its leases), else as `[episodes]` says.
pub async fn episodes(
    config: &PipelineConfig,
    store: Option<&Arc<Store>>,
    worker: Option<&str>,
    clock: Arc<dyn crate::core::Clock>,
    shutdown: crate::core::Shutdown,
) -> Result<super::Episodes, crate::store::StoreError> {
    use crate::store::camera_state::DbEpisodeStore;
    let Some(store) = store.filter(|_| config.episodes.in_database) else {
        return Ok(super::Episodes::Config);
    };
    Ok(super::Episodes::Database(match worker {
        Some(id) => DbEpisodeStore::for_worker(store.clone(), id, clock, shutdown),
        None => {
            let ids: Vec<String> = config.cameras.iter().map(|c| c.id.clone()).collect();
            // States the database refuses wait beside the capture queue.
            let spill = config.cases.as_ref().map(|c| c.spool.join("episodes"));
            DbEpisodeStore::open_with_spill(store.clone(), &ids, spill, clock, shutdown).await?
        }
    }))
}
