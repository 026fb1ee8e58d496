//! The persistent capture queue: captures (with their evidence references) waiting to be
//! written to the database. One JSON file per capture, named by its idempotency key, written
//! atomically (temp file, fsync, rename). Writing the same capture again (a higher
//! aggregation count) replaces its entry. The queue is bounded: when full, a new capture is
//! refused and counted, never silently lost. Entries leave only once the database has
//! committed them, so a crash or an unreachable database loses nothing.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

use super::{FilingMode, Location, StoreError};
use crate::cases::CasePolicy;
use crate::model::Capture;

/// One queued capture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpoolEntry {
    pub capture: Capture,
    pub evidence: Option<serde_json::Value>,
    pub mode: FilingMode,
    pub location: Location,
}

impl SpoolEntry {
    /// Stores the capture (keyed: storing it again updates it). Returns its key.
    pub async fn record(
        &self,
        store: &dyn super::CaseStore,
        policy: &CasePolicy,
        now: f64,
    ) -> Result<String, StoreError> {
        let (key, _) = store
            .record_capture(
                &self.capture,
                self.evidence.as_ref(),
                self.mode,
                policy,
                &self.location,
                now,
            )
            .await?;
        Ok(key)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("capture queue {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("capture queue {path} is full ({max} captures waiting); capture {key} dropped")]
    Full {
        path: PathBuf,
        max: usize,
        key: String,
    },
}

pub struct Spool {
    dir: PathBuf,
    max: usize,
    dropped: AtomicU64,
}

impl Spool {
    /// Opens (creating) the queue folder and removes temp files a crash left.
    pub fn open(dir: &Path, max: usize) -> Result<Self, SpoolError> {
        let e = |source| SpoolError::Io {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(e)?;
        for f in std::fs::read_dir(dir).map_err(e)?.flatten() {
            if f.file_name().to_string_lossy().ends_with(".tmp") {
                let _ = std::fs::remove_file(f.path());
            }
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            max,
            dropped: AtomicU64::new(0),
        })
    }

    /// Opens another process's queue to drain it, touching nothing else in it.
    pub fn adopt(dir: &Path) -> Result<Self, SpoolError> {
        if !dir.is_dir() {
            return Err(SpoolError::Io {
                path: dir.to_path_buf(),
                source: std::io::ErrorKind::NotFound.into(),
            });
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            max: usize::MAX,
            dropped: AtomicU64::new(0),
        })
    }

    fn path(&self, key: &str) -> PathBuf {
        self.dir
            .join(format!("{}.json", crate::core::path::safe_component(key)))
    }

    /// Captures refused because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    pub fn len(&self) -> usize {
        self.keys().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn keys(&self) -> Vec<PathBuf> {
        std::fs::read_dir(&self.dir)
            .into_iter()
            .flatten()
            .flatten()
            .map(|f| f.path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect()
    }

    /// Queues (or replaces) a capture, durably.
    pub fn put(&self, key: &str, entry: &SpoolEntry) -> Result<(), SpoolError> {
        let path = self.path(key);
        if !path.exists() && self.len() >= self.max {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return Err(SpoolError::Full {
                path: self.dir.clone(),
                max: self.max,
                key: key.into(),
            });
        }
        write_synced(&path, &serde_json::to_vec(entry).expect("entry serialises")).map_err(
            |source| SpoolError::Io {
                path: path.clone(),
                source,
            },
        )
    }

    /// Every queued capture, oldest confirmation first. Unreadable entries are reported and
    /// moved aside (`.bad`), never deleted.
    pub fn pending(&self) -> Vec<(PathBuf, SpoolEntry)> {
        let mut out = Vec::new();
        for p in self.keys() {
            match std::fs::read(&p)
                .map_err(|e| e.to_string())
                .and_then(|b| serde_json::from_slice::<SpoolEntry>(&b).map_err(|e| e.to_string()))
            {
                Ok(entry) => out.push((p, entry)),
                Err(e) => {
                    tracing::error!(entry = %p.display(), error = %e, "unreadable queued capture; moved aside");
                    let _ = std::fs::rename(&p, p.with_extension("bad"));
                }
            }
        }
        out.sort_by(|a, b| {
            a.1.capture
                .candidate
                .confirm
                .total_cmp(&b.1.capture.candidate.confirm)
                .then_with(|| a.0.cmp(&b.0))
        });
        out
    }

    /// Writes every queued capture to the store, removing each once committed, and tells
    /// `committed` its key. Stops at the first database error (the rest wait). Returns how
    /// many were written.
    pub async fn drain(
        &self,
        store: &dyn super::CaseStore,
        policy: &CasePolicy,
        now: f64,
        mut committed: impl FnMut(&str),
    ) -> Result<usize, StoreError> {
        let mut n = 0;
        for (path, e) in self.pending() {
            let key = e.record(store, policy, now).await?;
            committed(&key);
            // A newer version of the entry (a higher count) written meanwhile stays queued.
            if std::fs::read(&path)
                .ok()
                .and_then(|b| serde_json::from_slice::<SpoolEntry>(&b).ok())
                .is_some_and(|now| now == e)
            {
                let _ = std::fs::remove_file(&path);
            }
            n += 1;
        }
        Ok(n)
    }
}

/// Writes a file whole or not at all: a temp file beside it, fsynced, renamed over it, and
/// its folder fsynced (the folder must exist).
pub(crate) fn write_synced(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().expect("a file in a folder");
    let tmp = path.with_extension(format!("{}.tmp", fastrand::u32(..)));
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        std::fs::File::open(dir)?.sync_all()
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}
