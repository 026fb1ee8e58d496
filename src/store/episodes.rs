//! Open episodes kept in the case database's `episodes` table (`[episodes] in_database`), so
//! a restart, or another worker taking the camera over, resumes their dwell.
//!
//! [`EpisodeStore`] is synchronous and called from a camera's analysis step, which must not
//! wait for the database: states are loaded once before the cameras start, and saves go to
//! a writer task that keeps only the newest state per camera and retries while the database
//! is unreachable.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;

use super::{Store, StoreError};
use crate::episodes::TrackerState;
use crate::episodes::store::EpisodeStore;

#[derive(Clone)]
pub struct DbEpisodeStore {
    loaded: Arc<Mutex<HashMap<String, TrackerState>>>,
    pending: Arc<Mutex<HashMap<String, String>>>,
    wake: Arc<Notify>,
    /// How many states have been written so far.
    written: Arc<tokio::sync::watch::Sender<u64>>,
}

impl DbEpisodeStore {
    /// Loads every camera's state and starts the writer (on the current runtime).
    pub async fn open(
        store: Arc<Store>,
        cameras: &[String],
        clock: Arc<dyn crate::core::Clock>,
        shutdown: crate::core::Shutdown,
    ) -> Result<Self, StoreError> {
        let mut loaded = HashMap::new();
        for cam in cameras {
            if let Some(json) = store.load_episodes(cam).await? {
                let state = serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt(format!("episodes of camera {cam}: {e}")))?;
                loaded.insert(cam.clone(), state);
            }
        }
        let this = Self {
            loaded: Arc::new(Mutex::new(loaded)),
            pending: Arc::default(),
            wake: Arc::new(Notify::new()),
            written: Arc::new(tokio::sync::watch::channel(0).0),
        };
        tokio::spawn(this.clone().write(store, clock, shutdown));
        Ok(this)
    }

    async fn write(
        self,
        store: Arc<Store>,
        clock: Arc<dyn crate::core::Clock>,
        shutdown: crate::core::Shutdown,
    ) {
        let mut delay = Duration::from_millis(500);
        loop {
            let batch: Vec<(String, String)> = self
                .pending
                .lock()
                .expect("pending episodes")
                .drain()
                .collect();
            let now = clock
                .now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap_or_default()
                .as_secs_f64();
            let mut failed = false;
            for (cam, json) in batch {
                let r = store.save_episodes(&cam, &json, now).await;
                if r.is_ok() {
                    self.written.send_modify(|n| *n += 1);
                }
                if let Err(e) = r {
                    tracing::warn!(camera = %cam, error = %e, "cannot save episodes; will retry");
                    // Keep it unless a newer state arrived meanwhile.
                    self.pending
                        .lock()
                        .expect("pending episodes")
                        .entry(cam)
                        .or_insert(json);
                    failed = true;
                }
            }
            let wait = if failed {
                let d = delay;
                delay = (delay * 2).min(Duration::from_secs(30));
                d
            } else {
                delay = Duration::from_millis(500);
                Duration::from_secs(3600)
            };
            tokio::select! {
                biased;
                _ = shutdown.triggered() => return,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
    }

    /// Counts the states written so far, to await.
    pub fn written(&self) -> tokio::sync::watch::Receiver<u64> {
        self.written.subscribe()
    }
}

impl EpisodeStore for DbEpisodeStore {
    fn load(&self, camera: &str) -> std::io::Result<TrackerState> {
        Ok(self
            .loaded
            .lock()
            .expect("loaded episodes")
            .remove(camera)
            .unwrap_or_default())
    }

    fn save(&self, camera: &str, state: &TrackerState) -> std::io::Result<()> {
        let json = serde_json::to_string(state).map_err(std::io::Error::other)?;
        self.pending
            .lock()
            .expect("pending episodes")
            .insert(camera.to_string(), json);
        self.wake.notify_one();
        Ok(())
    }
}
