//! What the handlers read: the store, the config's cameras and cases, the live boards, and
//! the login limiter. Every other web module builds on it.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{CameraConfig, CasesSettings, PipelineConfig, WebSettings};
use crate::core::Clock;
use crate::model::health::HealthBoard;
use crate::model::live::AnalysisBoard;
use crate::model::live::FilingControl;
use crate::store::Store;

/// What the handlers read.
pub struct WebState {
    pub store: Arc<Store>,
    pub cases: Arc<CasesSettings>,
    pub cameras: BTreeMap<String, CameraConfig>,
    pub evidence_root: Option<PathBuf>,
    pub health: HealthBoard,
    pub analysis: AnalysisBoard,
    pub filing: Option<Arc<dyn FilingControl>>,
    pub settings: WebSettings,
    pub clock: Arc<dyn Clock>,
    pub logins: Mutex<LoginLimiter>,
    /// The detector's latency histogram, when the pipeline detects.
    pub inference: Option<Arc<crate::model::live::Latency>>,
    /// Each camera's latest frame (JPEG).
    pub latest: crate::model::live::LatestFrames,
    /// The patrol's status, when cameras are patrolled.
    pub patrol: Option<crate::model::live::PatrolBoard>,
    /// This worker's leases, with `--worker`.
    pub worker: Option<crate::model::live::WorkerBoard>,
    /// Operators' scene commands to the cameras, and their fixtures.
    pub desk: crate::model::live::SceneDesk,
    /// The verdict memory the cameras judge with, when cameras run in this process:
    /// reviews add to it, the learning page forgets from it.
    pub memory: Option<Arc<dyn crate::model::verdict::VerdictBook>>,
    /// Closure checks the cameras look at: a handled report adds one at once.
    pub checks: crate::model::closure::SharedChecks,
}

impl WebState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: &PipelineConfig,
        store: Arc<Store>,
        health: HealthBoard,
        analysis: AnalysisBoard,
        filing: Option<Arc<dyn FilingControl>>,
        clock: Arc<dyn Clock>,
    ) -> Option<Self> {
        let settings = config.web.clone()?;
        let cases = Arc::new(config.cases.clone()?);
        Some(Self {
            store,
            cases,
            cameras: config
                .cameras
                .iter()
                .map(|c| (c.id.clone(), c.clone()))
                .collect(),
            evidence_root: config.evidence.as_ref().map(|e| e.root.clone()),
            health,
            analysis,
            filing,
            settings,
            clock,
            logins: Mutex::default(),
            inference: None,
            latest: Default::default(),
            patrol: None,
            worker: None,
            desk: Default::default(),
            memory: None,
            checks: Default::default(),
        })
    }

    pub fn now(&self) -> f64 {
        crate::core::to_unix(self.clock.now())
    }
}

/// Failed logins per (user name, client address), with their times.
#[derive(Default)]
pub struct LoginLimiter {
    failures: HashMap<(String, String), Vec<f64>>,
}

const WINDOW_S: f64 = 15.0 * 60.0;

impl LoginLimiter {
    pub fn blocked(&mut self, key: &(String, String), now: f64, max: u32) -> bool {
        let v = self.failures.entry(key.clone()).or_default();
        v.retain(|t| now - t < WINDOW_S);
        v.len() as u32 >= max
    }

    pub fn failed(&mut self, key: (String, String), now: f64) {
        self.failures.entry(key).or_default().push(now);
    }

    pub fn succeeded(&mut self, key: &(String, String)) {
        self.failures.remove(key);
    }
}
