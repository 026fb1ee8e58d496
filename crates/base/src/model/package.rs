//! The evidence package format: the manifest (`manifest.json`) with its stamps, files and
//! hashes, how a package is verified against it, and how a request's path is resolved
//! inside the storage root. The evidence stage writes packages in this format; the web UI
//! and the store's readers check them with it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{BBox, Location};

/// The manifest's format tag.
pub const FORMAT: &str = "citywatch-evidence/1";
#[derive(Debug, thiserror::Error)]
pub enum EvidenceError {
    #[error("evidence {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("evidence package {path}: {detail}")]
    Invalid { path: PathBuf, detail: String },
}

/// Maps an I/O error on `path` into an [`EvidenceError`].
pub fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EvidenceError + '_ {
    move |source| EvidenceError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A time, three ways.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stamp {
    pub utc: String,
    pub local: String,
    /// Seconds of stream time (the camera's timeline), where known.
    pub stream_s: Option<f64>,
}

impl Stamp {
    pub fn new(unix: f64, offset_s: i32, stream_s: Option<f64>) -> Self {
        Self {
            utc: format_time(unix, 0),
            local: format_time(unix, offset_s),
            stream_s: stream_s.map(|s| (s * 1000.0).round() / 1000.0),
        }
    }
}

/// RFC 3339 with milliseconds at the given UTC offset.
pub fn format_time(unix: f64, offset_s: i32) -> String {
    use time::format_description::well_known::Rfc3339;
    let offset = time::UtcOffset::from_whole_seconds(offset_s).unwrap_or(time::UtcOffset::UTC);
    time::OffsetDateTime::from_unix_timestamp_nanos(((unix * 1000.0).round() as i128) * 1_000_000)
        .map(|t| t.to_offset(offset).format(&Rfc3339).unwrap_or_default())
        .unwrap_or_default()
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub sha256: String,
    pub bytes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ModelInfo {
    pub name: String,
    pub version: String,
    pub sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RuleInfo {
    pub kind: String,
    pub zone: String,
    /// The dwell the rule requires, in seconds.
    pub dwell_s: f64,
    /// The rule's minimum detection score.
    pub min_score: f32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CameraInfo {
    pub id: String,
    pub name: String,
    pub preset: Option<u32>,
    pub utc_offset_s: i32,
}

/// `manifest.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageManifest {
    pub format: String,
    pub capture_key: String,
    pub camera: CameraInfo,
    pub location: Location,
    pub rule: RuleInfo,
    pub label: String,
    /// What was seen in a stall, each label with its count (`orange×3`, `dining table`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<String>,
    /// A vehicle's plate (车牌号) as its reads voted; its photo is `plate.jpg`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plate: Option<super::plate::VotedPlate>,
    pub score: f32,
    #[serde(rename = "box")]
    pub bbox: BBox,
    pub first_seen: Stamp,
    pub confirmed: Stamp,
    pub model: Option<ModelInfo>,
    pub files: Vec<FileEntry>,
    pub clip: Option<ClipSpan>,
    /// Why a part is missing (no clip, no first-seen frame), if one is.
    pub notes: Vec<String>,
    /// Looks added after filing (the closure check's "after" photo and clip), oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub revisions: Vec<Revision>,
}

/// A look added to a package after it was written: each keeps the hash of the manifest it
/// replaced, so the package's history can be followed back to the filed original.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    /// 1, 2, ...
    pub n: u32,
    /// What the look found: clear (核实结案) or still_there (未整改).
    pub outcome: String,
    pub case_number: String,
    pub at: Stamp,
    /// sha256 of the manifest.json this revision replaced.
    pub previous_manifest_sha256: String,
    /// The files this look added (also listed, with their hashes, in `files`).
    pub files: Vec<String>,
    pub clip: Option<ClipSpan>,
    pub notes: Vec<String>,
}

/// Which files of a package fail their hash check.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tampered {
    /// The package's files whose bytes do not match the manifest, or that are missing.
    pub files: Vec<String>,
    /// What is wrong, in words.
    pub detail: String,
}

/// Checks every file of a package and names each that fails (where [`verify`] stops at the
/// first): the web UI shows them.
pub fn verify_all(dir: &Path) -> Result<PackageManifest, Tampered> {
    let bad = |files: Vec<String>, detail: String| Tampered { files, detail };
    let mpath = dir.join("manifest.json");
    let bytes = std::fs::read(&mpath)
        .map_err(|e| bad(vec!["manifest.json".into()], format!("manifest.json: {e}")))?;
    let m: PackageManifest = serde_json::from_slice(&bytes)
        .map_err(|e| bad(vec!["manifest.json".into()], format!("manifest.json: {e}")))?;
    let mut files = Vec::new();
    let mut details = Vec::new();
    for f in &m.files {
        if f.name.contains('/') || f.name.contains("..") {
            files.push(f.name.clone());
            details.push(format!("{} leaves the package", f.name));
            continue;
        }
        match entry_of(&dir.join(&f.name), &f.name) {
            Ok(got) if got.sha256 == f.sha256 => {}
            Ok(got) => {
                files.push(f.name.clone());
                details.push(format!(
                    "{}: sha256 {} is not the manifest's {}",
                    f.name, got.sha256, f.sha256
                ));
            }
            Err(e) => {
                files.push(f.name.clone());
                details.push(e.to_string());
            }
        }
    }
    if files.is_empty() {
        Ok(m)
    } else {
        Err(bad(files, details.join("; ")))
    }
}

/// A file's entry in a manifest: its name, sha256 and size.
pub fn entry_of(path: &Path, name: &str) -> Result<FileEntry, EvidenceError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    Ok(FileEntry {
        name: name.into(),
        sha256: hex::encode(Sha256::digest(&bytes)),
        bytes: bytes.len() as u64,
    })
}

/// Reads a package's manifest and checks every file against its hash.
pub fn verify(dir: &Path) -> Result<PackageManifest, EvidenceError> {
    let invalid = |detail: String| EvidenceError::Invalid {
        path: dir.to_path_buf(),
        detail,
    };
    let mpath = dir.join("manifest.json");
    let bytes = std::fs::read(&mpath).map_err(io(&mpath))?;
    let m: PackageManifest =
        serde_json::from_slice(&bytes).map_err(|e| invalid(format!("manifest.json: {e}")))?;
    if m.format != FORMAT {
        return Err(invalid(format!("unknown format {:?}", m.format)));
    }
    for f in &m.files {
        if f.name.contains('/') || f.name.contains("..") {
            return Err(invalid(format!(
                "file name {:?} leaves the package",
                f.name
            )));
        }
        let got = entry_of(&dir.join(&f.name), &f.name)?;
        if got.sha256 != f.sha256 {
            return Err(invalid(format!(
                "{}: sha256 {} does not match the manifest's {}",
                f.name, got.sha256, f.sha256
            )));
        }
    }
    Ok(m)
}

/// Resolves a package-relative path from a request (the API, the UI) inside `root`,
/// refusing anything that could leave it.
pub fn resolve(root: &Path, relative: &str) -> Option<PathBuf> {
    let rel = Path::new(relative);
    let ok = !relative.is_empty()
        && rel.components().all(|c| {
            matches!(c, std::path::Component::Normal(s) if !s.to_string_lossy().starts_with('.'))
        });
    ok.then(|| root.join(rel))
}

/// Every complete package under `root`: (relative dir, manifest).
pub fn packages(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(days) = std::fs::read_dir(root) else {
        return out;
    };
    for day in days.flatten() {
        if day.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        for cam in std::fs::read_dir(day.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            for pkg in std::fs::read_dir(cam.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                if pkg.path().join("manifest.json").is_file() {
                    out.push(pkg.path());
                }
            }
        }
    }
    out.sort();
    out
}

/// What a written clip covers, in stream seconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ClipSpan {
    pub start_s: f64,
    pub end_s: f64,
    pub packets: usize,
}
