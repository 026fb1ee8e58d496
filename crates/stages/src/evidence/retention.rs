//! Retention: packages go when they are older than `max_age`, or oldest first while the
//! root is over its quota, but only packages the store says are finished with (capture
//! rejected, or its case closed). Evidence of a case still open is never deleted; when only
//! such evidence is left and the quota is close, the sweep raises an alert instead.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

pub use crate::model::live::Sweep;

#[derive(Debug, Clone, Copy)]
pub struct Policy {
    pub max_age: Duration,
    pub quota_bytes: u64,
    /// The share of the quota in use at which the alert is raised.
    pub alert_ratio: f64,
}

struct Pkg {
    dir: PathBuf,
    key: String,
    modified: SystemTime,
    bytes: u64,
}

fn size_of(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.metadata().ok())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

/// One sweep of `root` at `now`. `finished` holds the capture keys whose evidence may go.
pub fn sweep(root: &Path, now: SystemTime, policy: &Policy, finished: &HashSet<String>) -> Sweep {
    let mut pkgs: Vec<Pkg> = super::packages(root)
        .into_iter()
        .map(|dir| {
            let modified = std::fs::metadata(dir.join("manifest.json"))
                .and_then(|m| m.modified())
                .unwrap_or(now);
            let key = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let bytes = size_of(&dir);
            Pkg {
                dir,
                key,
                modified,
                bytes,
            }
        })
        .collect();
    pkgs.sort_by_key(|p| p.modified);
    let mut out = Sweep {
        packages: pkgs.len(),
        used_bytes: pkgs.iter().map(|p| p.bytes).sum(),
        quota_bytes: policy.quota_bytes,
        ..Sweep::default()
    };
    for p in &pkgs {
        let expired = now.duration_since(p.modified).unwrap_or_default() >= policy.max_age;
        let over = out.used_bytes > policy.quota_bytes;
        if !(expired || over) {
            continue;
        }
        if !finished.contains(&p.key) {
            out.kept_open += 1;
            continue;
        }
        match std::fs::remove_dir_all(&p.dir) {
            Ok(()) => {
                out.deleted += 1;
                out.deleted_bytes += p.bytes;
                out.used_bytes -= p.bytes;
                // Empty camera and day folders go too.
                for up in p.dir.ancestors().skip(1).take(2) {
                    if std::fs::remove_dir(up).is_err() {
                        break;
                    }
                }
            }
            Err(e) => out.errors.push(format!("{}: {e}", p.dir.display())),
        }
    }
    out.quota_alert = out.used_bytes as f64 >= policy.alert_ratio * policy.quota_bytes as f64;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pkg(root: &Path, day: &str, key: &str, bytes: usize, age: Duration) {
        let dir = root.join(day).join("cam").join(key);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("clip.mp4"), vec![0u8; bytes]).unwrap();
        let m = dir.join("manifest.json");
        std::fs::write(&m, b"{}").unwrap();
        let f = std::fs::File::options().write(true).open(&m).unwrap();
        f.set_modified(SystemTime::now() - age).unwrap();
    }

    fn policy(quota: u64) -> Policy {
        Policy {
            max_age: Duration::from_secs(30 * 86400),
            quota_bytes: quota,
            alert_ratio: 0.9,
        }
    }

    #[test]
    fn old_finished_packages_go_open_ones_stay() {
        let t = tempfile::tempdir().unwrap();
        let day = Duration::from_secs(86400);
        pkg(t.path(), "2026-01-01", "cap-old-closed", 10, 60 * day);
        pkg(t.path(), "2026-01-02", "cap-old-open", 10, 60 * day);
        pkg(t.path(), "2026-11-27", "cap-new-closed", 10, day);
        let finished: HashSet<String> = ["cap-old-closed", "cap-new-closed"]
            .map(String::from)
            .into();
        let s = sweep(t.path(), SystemTime::now(), &policy(1 << 30), &finished);
        assert_eq!((s.packages, s.deleted, s.kept_open), (3, 1, 1));
        assert!(
            !t.path().join("2026-01-01").exists(),
            "empty folders go too"
        );
        assert!(t.path().join("2026-01-02/cam/cap-old-open").exists());
        assert!(t.path().join("2026-11-27/cam/cap-new-closed").exists());
        assert!(!s.quota_alert);
    }

    #[test]
    fn over_quota_deletes_oldest_finished_first_and_alerts_when_only_open_ones_remain() {
        let t = tempfile::tempdir().unwrap();
        let h = Duration::from_secs(3600);
        pkg(t.path(), "d", "a", 1000, 3 * h);
        pkg(t.path(), "d", "b", 1000, 2 * h);
        pkg(t.path(), "d", "c", 1000, h);
        let all: HashSet<String> = ["a", "b", "c"].map(String::from).into();
        let s = sweep(t.path(), SystemTime::now(), &policy(2100), &all);
        assert_eq!(s.deleted, 1);
        assert!(!t.path().join("d/cam/a").exists() && t.path().join("d/cam/b").exists());
        assert!(s.quota_alert, "2004 of 2100 bytes is over 90%");
        let none = HashSet::new();
        let s = sweep(t.path(), SystemTime::now(), &policy(1000), &none);
        assert_eq!((s.deleted, s.kept_open), (0, 2));
        assert!(s.quota_alert);
    }
}
