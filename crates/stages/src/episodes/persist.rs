//! Where open episodes are kept across restarts. The trait is the edge; the JSON-file store
//! writes atomically (temporary file, fsync, rename), so a crash leaves the old state or the
//! new one, never half of either.

use std::io::Write;
use std::path::PathBuf;

use super::TrackerState;

pub use crate::core::state::{Quarantine, StateStore};

/// Where a camera's open episodes are kept: any [`StateStore`] of a [`TrackerState`] (the
/// case database's is one).
pub trait EpisodeStore: StateStore<TrackerState> {}

impl<T: StateStore<TrackerState>> EpisodeStore for T {}

/// Keeps nothing: replays and tests that start fresh.
pub struct NoStore;

impl StateStore<TrackerState> for NoStore {
    fn load(&self, _camera: &str) -> std::io::Result<TrackerState> {
        Ok(TrackerState::default())
    }
    fn save(&self, _camera: &str, _state: &TrackerState) -> std::io::Result<()> {
        Ok(())
    }
}

/// One JSON file per camera in a folder.
pub struct JsonFileStore {
    dir: PathBuf,
    quarantined: Quarantine,
}

impl JsonFileStore {
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Self {
            dir,
            quarantined: Default::default(),
        })
    }

    fn path(&self, camera: &str) -> PathBuf {
        // Camera ids are validated to [A-Za-z0-9_-]: safe as file names.
        self.dir.join(format!("{camera}.episodes.json"))
    }
}

impl StateStore<TrackerState> for JsonFileStore {
    fn load(&self, camera: &str) -> std::io::Result<TrackerState> {
        let path = self.path(camera);
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(TrackerState::default());
            }
            Err(e) => return Err(e),
        };
        match serde_json::from_slice(&bytes) {
            Ok(state) => Ok(state),
            Err(e) => {
                // Set aside with the time, so nothing is lost and the next save does not
                // overwrite it; the camera starts fresh.
                let stamp = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| d.as_secs());
                let aside = path.with_extension(format!("json.corrupt-{stamp}"));
                std::fs::rename(&path, &aside)?;
                tracing::error!(
                    camera,
                    error = %e,
                    moved_to = %aside.display(),
                    "the camera's saved state is unreadable: set aside, the camera starts fresh"
                );
                self.quarantined.note(camera, aside.display().to_string());
                Ok(TrackerState::default())
            }
        }
    }

    fn quarantined(&self, camera: &str) -> Option<String> {
        self.quarantined.get(camera)
    }

    fn save(&self, camera: &str, state: &TrackerState) -> std::io::Result<()> {
        let path = self.path(camera);
        let tmp = path.with_extension("json.tmp");
        let bytes = serde_json::to_vec(state).map_err(std::io::Error::other)?;
        // Written and fsynced from the analysis step, which runs on an async task: the
        // runtime's worker hands its other cameras' tasks on while the disk works.
        crate::core::blocking::blocking(|| {
            {
                let mut f = std::fs::File::create(&tmp)?;
                f.write_all(&bytes)?;
                f.sync_all()?;
            }
            std::fs::rename(&tmp, &path)?;
            if let Ok(d) = std::fs::File::open(&self.dir) {
                let _ = d.sync_all();
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_corrupt_state_is_set_aside_and_the_camera_starts_fresh() {
        let dir = tempfile::tempdir().unwrap();
        let store = JsonFileStore::new(dir.path()).unwrap();
        let state = TrackerState {
            next_id: 7,
            ..Default::default()
        };
        store.save("good", &state).unwrap();
        std::fs::write(dir.path().join("bad.episodes.json"), b"{\"next_id\": tru").unwrap();
        assert_eq!(store.load("good").unwrap().next_id, 7);
        assert!(store.quarantined("good").is_none());
        let fresh = store.load("bad").unwrap();
        assert_eq!(fresh, TrackerState::default());
        let aside = store.quarantined("bad").expect("set aside");
        assert!(aside.contains("bad.episodes.json.corrupt-"), "{aside}");
        assert_eq!(std::fs::read(&aside).unwrap(), b"{\"next_id\": tru");
        assert!(!dir.path().join("bad.episodes.json").exists());
        // The next save writes a good state where the bad one was; the bad one stays aside.
        store.save("bad", &fresh).unwrap();
        assert_eq!(store.load("bad").unwrap(), fresh);
        assert!(std::path::Path::new(&aside).exists());
    }
}
