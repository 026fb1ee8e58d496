//! Where open episodes are kept across restarts. The trait is the edge; the JSON-file store
//! writes atomically (temporary file, fsync, rename), so a crash leaves the old state or the
//! new one, never half of either.

use std::io::Write;
use std::path::PathBuf;

use super::TrackerState;

pub trait EpisodeStore: Send {
    fn load(&self, camera: &str) -> std::io::Result<TrackerState>;
    fn save(&self, camera: &str, state: &TrackerState) -> std::io::Result<()>;
}

/// Keeps nothing: replays and tests that start fresh.
pub struct NoStore;

impl EpisodeStore for NoStore {
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
}

impl JsonFileStore {
    pub fn new(dir: impl Into<PathBuf>) -> std::io::Result<Self> {
        let dir = dir.into();
        std::fs::create_dir_all(&dir)?;
        Ok(Self { dir })
    }

    fn path(&self, camera: &str) -> PathBuf {
        // Camera ids are validated to [A-Za-z0-9_-]: safe as file names.
        self.dir.join(format!("{camera}.episodes.json"))
    }
}

impl EpisodeStore for JsonFileStore {
    fn load(&self, camera: &str) -> std::io::Result<TrackerState> {
        match std::fs::read(self.path(camera)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(TrackerState::default()),
            Err(e) => Err(e),
        }
    }

    fn save(&self, camera: &str, state: &TrackerState) -> std::io::Result<()> {
        let path = self.path(camera);
        let tmp = path.with_extension("json.tmp");
        {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&serde_json::to_vec(state).map_err(std::io::Error::other)?)?;
            f.sync_all()?;
        }
        std::fs::rename(&tmp, &path)?;
        if let Ok(d) = std::fs::File::open(&self.dir) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}
