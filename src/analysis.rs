//! One camera's decisions after detection: episodes → rules → limits, with episodes kept in
//! the store. Shared by `citywatch run` and `citywatch replay`.

use serde::Serialize;

use crate::config::{CameraConfig, PipelineConfig};
use crate::detect::Detection;
use crate::episodes::store::EpisodeStore;
use crate::episodes::{EpisodeTracker, Params};
use crate::ingest::Frame;
use crate::ratelimit::{Capture, CaseLimiter, Suppression, Verdict};
use crate::rules::engine::{Outcome, RuleEngine};

/// What one analysed frame produced.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    Capture(Capture),
    Suppressed(Suppression),
}

pub struct CameraAnalysis {
    camera: String,
    tracker: EpisodeTracker,
    engine: RuleEngine,
    limiter: CaseLimiter,
    store: Box<dyn EpisodeStore>,
    last_saved: f64,
}

/// How often unchanged episodes are saved anyway (their last-seen times move).
const SAVE_EVERY_S: f64 = 10.0;

impl CameraAnalysis {
    /// `model_sees_overflow`: the detector reports bin_overflow/garbage itself.
    pub fn new(
        cam: &CameraConfig,
        config: &PipelineConfig,
        store: Box<dyn EpisodeStore>,
        model_sees_overflow: bool,
    ) -> std::io::Result<Self> {
        let state = store.load(&cam.id)?;
        Ok(Self {
            camera: cam.id.clone(),
            tracker: EpisodeTracker::new(Params::from(&config.episodes), state),
            engine: RuleEngine::new(cam.clone(), model_sees_overflow),
            limiter: CaseLimiter::new(&config.limits),
            store,
            last_saved: f64::MIN,
        })
    }

    pub fn has_open_episodes(&self) -> bool {
        !self.tracker.open().is_empty()
    }

    pub fn tracker(&self) -> &EpisodeTracker {
        &self.tracker
    }

    pub fn limiter(&self) -> &CaseLimiter {
        &self.limiter
    }

    /// Feeds one analysed frame (its detections, fresh or reused) at time `t`.
    pub fn step(&mut self, t: f64, dets: &[Detection], frame: Option<&Frame>) -> Vec<Event> {
        let up = self.tracker.update(t, dets, frame);
        for (e, _) in &up.closed {
            self.limiter.episode_closed(e.id, t);
        }
        let outcomes = self.engine.evaluate(t, &mut self.tracker, dets, frame);
        let mut events = Vec::new();
        for o in &outcomes {
            match o.clone() {
                Outcome::Met(c) => events.push(match self.limiter.offer(c) {
                    Verdict::Captured(k) => Event::Capture(k),
                    Verdict::Suppressed(s) => Event::Suppressed(s),
                }),
                Outcome::OutsideHours(c) => {
                    events.push(Event::Suppressed(self.limiter.outside_hours(c)))
                }
                Outcome::Cleared { rule, zone } => self.limiter.zone_cleared(rule, &zone, t),
            }
        }
        let changed = !up.opened.is_empty() || !up.closed.is_empty() || !outcomes.is_empty();
        if changed || t - self.last_saved >= SAVE_EVERY_S {
            if let Err(e) = self.store.save(&self.camera, &self.tracker.state) {
                tracing::warn!(camera = %self.camera, error = %e, "cannot save episodes; will retry");
            } else {
                self.last_saved = t;
            }
        }
        events
    }
}
