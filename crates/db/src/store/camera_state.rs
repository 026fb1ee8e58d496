//! Open episodes kept in the case database's `episodes` table (`[episodes] in_database`), so
//! a restart, or another worker taking the camera over, resumes their dwell.
//!
//! Its [`StateStore`] is synchronous and called from a camera's analysis step, which must not
//! wait for the database: states are loaded once before the cameras start, and saves go to
//! a writer task that keeps only the newest state per camera and retries while the database
//! is unreachable.
//!
//! A state the database refuses is also written to a local file (the spill folder, beside
//! the capture queue), fsynced, so that a process killed during a database outage loses no
//! episode progress: at load, the newer of the file and the database row wins, and the file
//! goes once the database has the state. A worker (lease-fenced) keeps no spill: another
//! worker may hold the camera by the time it restarts.

use parking_lot::Mutex;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Store, StoreError};
use crate::core::state::{Quarantine, StateStore};

/// The state kept per camera: anything saved as JSON (the episode tracker's state).
pub trait Saved: Serialize + DeserializeOwned + Default + Send + 'static {}

impl<S: Serialize + DeserializeOwned + Default + Send + 'static> Saved for S {}

pub struct DbEpisodeStore<S> {
    store: Arc<Store>,
    loaded: Arc<Mutex<HashMap<String, S>>>,
    pending: Arc<Mutex<HashMap<String, String>>>,
    wake: Arc<Notify>,
    /// How many states have been written so far.
    written: Arc<tokio::sync::watch::Sender<u64>>,
    /// Worker mode: saves only while this worker holds the camera's lease.
    fence: Option<String>,
    /// Held while states are being written, so a flush never races the writer task.
    writing: Arc<tokio::sync::Mutex<()>>,
    clock: Arc<dyn crate::core::Clock>,
    /// Cameras whose saved state was unreadable at load, and where it went.
    quarantined: Quarantine,
    /// Where states the database refused wait on local disk; None for a worker.
    spill: Option<std::path::PathBuf>,
}

impl<S> Clone for DbEpisodeStore<S> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            loaded: self.loaded.clone(),
            pending: self.pending.clone(),
            wake: self.wake.clone(),
            written: self.written.clone(),
            fence: self.fence.clone(),
            writing: self.writing.clone(),
            clock: self.clock.clone(),
            quarantined: self.quarantined.clone(),
            spill: self.spill.clone(),
        }
    }
}

impl<S: Saved> DbEpisodeStore<S> {
    /// Loads every camera's state and starts the writer (on the current runtime).
    pub async fn open(
        store: Arc<Store>,
        cameras: &[String],
        clock: Arc<dyn crate::core::Clock>,
        shutdown: crate::core::Shutdown,
    ) -> Result<Self, StoreError> {
        Self::open_with_spill(store, cameras, None, clock, shutdown).await
    }

    /// As [`Self::open`], with a spill folder: states the database refuses are kept there,
    /// fsynced, until it takes them, and a newer spilled state wins over the database's at
    /// load.
    pub async fn open_with_spill(
        store: Arc<Store>,
        cameras: &[String],
        spill: Option<std::path::PathBuf>,
        clock: Arc<dyn crate::core::Clock>,
        shutdown: crate::core::Shutdown,
    ) -> Result<Self, StoreError> {
        let this = Self::start(store, None, spill, clock, shutdown);
        for cam in cameras {
            this.reload(cam).await?;
        }
        Ok(this)
    }

    /// The spill file of a camera (its id hex-encoded: any id is a safe file name).
    fn spill_path(&self, camera: &str) -> Option<std::path::PathBuf> {
        Some(
            self.spill
                .as_ref()?
                .join(format!("{}.state", hex::encode(camera))),
        )
    }

    /// Writes a state the database refused to the camera's spill file, fsynced.
    async fn spill_state(&self, camera: &str, json: &str) {
        let Some(path) = self.spill_path(camera) else {
            return;
        };
        let saved_at = crate::core::unix_secs(self.clock.as_ref());
        let body = serde_json::json!({ "saved_at": saved_at, "state": json }).to_string();
        let at = path.clone();
        let written = tokio::task::spawn_blocking(move || {
            std::fs::create_dir_all(at.parent().expect("a spill file has a folder"))?;
            super::spool::write_synced(&at, body.as_bytes())
        })
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
        if let Err(e) = written {
            tracing::warn!(camera, path = %path.display(), error = %e, "cannot keep the episodes on local disk either; they wait in memory");
        }
    }

    /// Removes a camera's spill file once the database has its state.
    async fn unspill(&self, camera: &str) {
        let Some(path) = self.spill_path(camera) else {
            return;
        };
        let _ = tokio::task::spawn_blocking(move || match std::fs::remove_file(&path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                tracing::warn!(path = %path.display(), error = %e, "cannot remove a spilled state the database now has");
            }
            _ => {}
        })
        .await;
    }

    /// A camera's spilled state: (when it was saved, the state's JSON).
    async fn spilled(&self, camera: &str) -> Option<(f64, String)> {
        let path = self.spill_path(camera)?;
        let text = tokio::task::spawn_blocking(move || std::fs::read_to_string(path))
            .await
            .ok()?
            .ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        Some((v["saved_at"].as_f64()?, v["state"].as_str()?.to_string()))
    }

    /// Worker mode: loads nothing up front (a camera's state is loaded with [`Self::reload`]
    /// when its lease is taken), and saves a camera's state only while `worker` holds its
    /// lease.
    pub fn for_worker(
        store: Arc<Store>,
        worker: &str,
        clock: Arc<dyn crate::core::Clock>,
        shutdown: crate::core::Shutdown,
    ) -> Self {
        Self::start(store, Some(worker.to_string()), None, clock, shutdown)
    }

    /// The store with nothing loaded, and its writer task running (with the spill folder
    /// it will use: the task has its own copy).
    fn start(
        store: Arc<Store>,
        fence: Option<String>,
        spill: Option<std::path::PathBuf>,
        clock: Arc<dyn crate::core::Clock>,
        shutdown: crate::core::Shutdown,
    ) -> Self {
        let this = Self {
            store,
            loaded: Arc::default(),
            pending: Arc::default(),
            wake: Arc::new(Notify::new()),
            written: Arc::new(tokio::sync::watch::channel(0).0),
            fence,
            writing: Arc::default(),
            clock,
            quarantined: Default::default(),
            spill,
        };
        tokio::spawn(this.clone().write(shutdown));
        this
    }

    /// Loads a camera's latest state from the database (another worker's, after a
    /// takeover), for the next [`StateStore::load`]. A state of this process's own not yet
    /// written wins: it is newer.
    pub async fn reload(&self, camera: &str) -> Result<(), StoreError> {
        let _w = self.writing.lock().await;
        let own = self.pending.lock().get(camera).cloned();
        let json = match own {
            Some(j) => Some(j),
            None => {
                let saved = self.store.load_episodes_saved(camera).await?;
                match (self.spilled(camera).await, saved) {
                    // Saved locally while the database was down, after its last state: the
                    // newer one, and the database gets it next.
                    (Some((at, spilled)), saved) if saved.as_ref().is_none_or(|s| at > s.1) => {
                        tracing::info!(
                            camera,
                            "episodes resumed from the state kept on local disk while the database was down"
                        );
                        self.pending
                            .lock()
                            .insert(camera.to_string(), spilled.clone());
                        self.wake.notify_one();
                        Some(spilled)
                    }
                    (_, saved) => saved.map(|s| s.0),
                }
            }
        };
        let state = match json.map(|j| (serde_json::from_str::<S>(&j), j)) {
            Some((Ok(state), _)) => Some(state),
            Some((Err(e), j)) => {
                // Unreadable: kept in the audit log (with the time), and the camera starts
                // fresh; the next save replaces the row. The other cameras are not touched.
                let now = crate::core::clock::unix_secs(self.clock.as_ref());
                let detail = serde_json::json!({ "error": e.to_string(), "state": j }).to_string();
                tracing::error!(camera, error = %e, "the camera's saved state is unreadable: set aside in the audit log, the camera starts fresh");
                if let Err(a) = self
                    .store
                    .audit("system", "state.quarantine", camera, Some(&detail), now)
                    .await
                {
                    tracing::warn!(camera, error = %a, "cannot write the quarantined state to the audit log");
                }
                self.quarantined
                    .note(camera, format!("audit log, state.quarantine at {now}"));
                None
            }
            None => None,
        };
        let mut loaded = self.loaded.lock();
        match state {
            Some(state) => {
                loaded.insert(camera.to_string(), state);
            }
            None => {
                loaded.remove(camera);
            }
        }
        Ok(())
    }

    /// Writes a camera's pending state now (a worker giving the camera back saves it before
    /// the lease goes).
    pub async fn flush(&self, camera: &str) -> Result<(), StoreError> {
        let _w = self.writing.lock().await;
        let json = self.pending.lock().remove(camera);
        if let Some(json) = json
            && let Err(e) = self.save_one(camera, &json).await
        {
            self.pending
                .lock()
                .entry(camera.to_string())
                .or_insert(json);
            return Err(e);
        }
        Ok(())
    }

    /// Forgets a camera's unwritten state (its lease was lost: the new holder's state wins).
    pub fn discard(&self, camera: &str) {
        self.pending.lock().remove(camera);
    }

    async fn save_one(&self, cam: &str, json: &str) -> Result<(), StoreError> {
        let now = crate::core::unix_secs(self.clock.as_ref());
        match &self.fence {
            None => self.store.save_episodes(cam, json, now).await?,
            Some(worker) => {
                if !self
                    .store
                    .save_episodes_fenced(cam, json, now, worker)
                    .await?
                {
                    tracing::warn!(camera = %cam, "episodes not saved: another worker holds the camera now");
                }
            }
        }
        self.written.send_modify(|n| *n += 1);
        Ok(())
    }

    async fn write(self, shutdown: crate::core::Shutdown) {
        let mut backoff =
            crate::core::Backoff::doubling(Duration::from_millis(500), Duration::from_secs(30));
        let mut failed = false;
        loop {
            {
                let _w = self.writing.lock().await;
                let batch: Vec<(String, String)> = self.pending.lock().drain().collect();
                // While the database is down, every state goes to local disk first, as it is
                // now: a failed save can take the pool's whole timeout, and a state spilled
                // only after it would be that much older.
                let was_down = std::mem::take(&mut failed);
                if was_down {
                    for (cam, json) in &batch {
                        self.spill_state(cam, json).await;
                    }
                }
                for (cam, json) in batch {
                    // One failed save a round is enough to know the database is still down:
                    // the rest wait (spilled above) without each waiting out a timeout.
                    if !failed {
                        match self.save_one(&cam, &json).await {
                            Ok(()) => {
                                self.unspill(&cam).await;
                                continue;
                            }
                            Err(e) => {
                                tracing::warn!(camera = %cam, error = %e, "cannot save episodes; will retry");
                                failed = true;
                            }
                        }
                    }
                    if !was_down {
                        self.spill_state(&cam, &json).await;
                    }
                    // Keep it unless a newer state arrived meanwhile.
                    self.pending.lock().entry(cam).or_insert(json);
                }
            }
            let wait = if failed {
                backoff.next_delay()
            } else {
                backoff.reset();
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

impl<S: Saved> StateStore<S> for DbEpisodeStore<S> {
    fn load(&self, camera: &str) -> std::io::Result<S> {
        Ok(self.loaded.lock().remove(camera).unwrap_or_default())
    }

    fn quarantined(&self, camera: &str) -> Option<String> {
        self.quarantined.get(camera)
    }

    fn save(&self, camera: &str, state: &S) -> std::io::Result<()> {
        let json = serde_json::to_string(state).map_err(std::io::Error::other)?;
        self.pending.lock().insert(camera.to_string(), json);
        self.wake.notify_one();
        Ok(())
    }
}
