//! Evidence packages: one folder per capture under the storage root, laid out as
//! `ROOT/YYYY-MM-DD/CAMERA/CAPTURE_KEY/` (the date in the camera's time zone), holding
//!
//! - `confirm.jpg`: the confirming frame, box and zone drawn, watermarked;
//! - `crop.jpg`: the object, padded;
//! - `first_seen.jpg`: the frame when the object (or the bin condition) was first seen;
//! - `clip.mp4`: the encoded stream around the confirmation, remuxed without re-encoding;
//! - `manifest.json`: sha256 of every file, camera, preset, location, times (stream and UTC),
//!   model, scores, and the rule with its thresholds.
//!
//! A package is built in `ROOT/.incoming/`, every file fsynced, the manifest last, and then
//! renamed into place in one step: a package folder that exists is complete. Leftovers of a
//! crash stay in `.incoming` and are removed at the next start.

pub mod clip;
pub mod image;
pub mod retention;
pub use crate::ingest::ring;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::detect::BBox;
use crate::model::Location;
use crate::ratelimit::Capture;
use image::{Overlay, Picture, Watermarker};
use ring::Packet;

/// The manifest's format tag.
pub const FORMAT: &str = "citywatch-evidence/1";
const INCOMING: &str = ".incoming";

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

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> EvidenceError + '_ {
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
    pub score: f32,
    #[serde(rename = "box")]
    pub bbox: BBox,
    pub first_seen: Stamp,
    pub confirmed: Stamp,
    pub model: Option<ModelInfo>,
    pub files: Vec<FileEntry>,
    pub clip: Option<clip::ClipSpan>,
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
    pub clip: Option<clip::ClipSpan>,
    pub notes: Vec<String>,
}

/// A closure check's look, to add to the case's package.
#[derive(Debug, Clone)]
pub struct Addendum {
    pub case_number: String,
    /// clear or still_there.
    pub outcome: String,
    pub picture: Picture,
    pub t: f64,
    pub stream_s: Option<f64>,
    /// The place looked at.
    pub bbox: BBox,
    pub clip: Vec<Packet>,
    pub clip_note: Option<String>,
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

/// The frame an object was first seen in.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub picture: Picture,
    pub t: f64,
    pub stream_s: Option<f64>,
    pub bbox: Option<BBox>,
}

/// Everything one package is made from.
#[derive(Debug, Clone)]
pub struct PackageRequest {
    pub key: String,
    pub capture: Capture,
    pub camera: CameraInfo,
    pub location: Location,
    pub rule: RuleInfo,
    pub model: Option<ModelInfo>,
    pub confirm: Picture,
    pub confirm_stream_s: Option<f64>,
    pub first_seen: Option<Snapshot>,
    pub zone_polygon: Option<Vec<[f32; 2]>>,
    pub clip: Vec<Packet>,
    /// Why there is no clip, when `clip` is empty.
    pub clip_note: Option<String>,
}

/// Where a package went: what the capture record and the case refer to.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageRef {
    /// Relative to the storage root.
    pub path: String,
    pub manifest_sha256: String,
    pub files: Vec<String>,
}

/// Writes packages under one root.
#[derive(Debug, Clone)]
pub struct EvidenceWriter {
    root: PathBuf,
    font: Watermarker,
}

impl EvidenceWriter {
    /// Creates the root if needed and clears a crash's leftovers from `.incoming`.
    pub fn open(root: &Path, font: Watermarker) -> Result<Self, EvidenceError> {
        let incoming = root.join(INCOMING);
        if incoming.exists() {
            std::fs::remove_dir_all(&incoming).map_err(io(&incoming))?;
        }
        Ok(Self {
            root: root.to_path_buf(),
            font,
        })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The package folder of a capture, relative to the root.
    pub fn relative_dir(req: &PackageRequest) -> PathBuf {
        let day = format_time(req.capture.candidate.confirm, req.camera.utc_offset_s);
        PathBuf::from(day.get(..10).unwrap_or("0000-00-00"))
            .join(safe_component(&req.camera.id))
            .join(safe_component(&req.key))
    }

    /// Builds and writes the package; an existing complete package is kept as it is.
    pub fn write(&self, req: &PackageRequest) -> Result<PackageRef, EvidenceError> {
        let rel = Self::relative_dir(req);
        let dir = self.root.join(&rel);
        if dir.join("manifest.json").is_file() {
            let manifest = verify(&dir)?;
            return Ok(package_ref(&rel, &dir, &manifest));
        }
        let incoming = self.root.join(INCOMING);
        std::fs::create_dir_all(&incoming).map_err(io(&incoming))?;
        let tmp = incoming.join(format!(
            "{}-{}-{}",
            safe_component(&req.key),
            std::process::id(),
            fastrand::u64(..)
        ));
        let result = self.build(req, &tmp).and_then(|manifest| {
            let parent = dir.parent().expect("package dir has a parent");
            std::fs::create_dir_all(parent).map_err(io(parent))?;
            sync_dir(&tmp)?;
            std::fs::rename(&tmp, &dir).map_err(io(&dir))?;
            sync_dir(parent)?;
            Ok(manifest)
        });
        match result {
            Ok(manifest) => Ok(package_ref(&rel, &dir, &manifest)),
            Err(e) => {
                let _ = std::fs::remove_dir_all(&tmp);
                Err(e)
            }
        }
    }

    fn build(&self, req: &PackageRequest, tmp: &Path) -> Result<PackageManifest, EvidenceError> {
        std::fs::create_dir(tmp).map_err(io(tmp))?;
        let k = &req.capture.candidate;
        let zones = req.zone_polygon.clone().into_iter().collect::<Vec<_>>();
        let watermark = |unix: f64| {
            vec![
                format!("AI 线索 · {} {}", req.camera.id, req.camera.name),
                format_time(unix, req.camera.utc_offset_s)
                    .replace('T', " ")
                    .chars()
                    .take(19)
                    .collect::<String>()
                    + &format!(" {}", utc_label(req.camera.utc_offset_s)),
            ]
        };
        let mut files = Vec::new();
        let mut notes = Vec::new();
        let confirm = image::render_jpeg(
            &req.confirm,
            &Overlay {
                bbox: Some(k.bbox),
                zones: zones.clone(),
                text: watermark(k.confirm),
            },
            &self.font,
        );
        files.push(write_file(tmp, "confirm.jpg", &confirm)?);
        let crop = req.confirm.crop(&k.bbox, 0.25, 48);
        let crop = image::render_jpeg(
            &crop,
            &Overlay {
                text: vec!["AI 线索".into()],
                ..Overlay::default()
            },
            &self.font,
        );
        files.push(write_file(tmp, "crop.jpg", &crop)?);
        let first_seen = match &req.first_seen {
            Some(s) => {
                let jpg = image::render_jpeg(
                    &s.picture,
                    &Overlay {
                        bbox: s.bbox,
                        zones,
                        text: watermark(s.t),
                    },
                    &self.font,
                );
                files.push(write_file(tmp, "first_seen.jpg", &jpg)?);
                Stamp::new(s.t, req.camera.utc_offset_s, s.stream_s)
            }
            None => {
                notes.push(
                    "no first-seen frame: it was not kept (a restart, or too many open objects)"
                        .into(),
                );
                let stream = req.confirm_stream_s.map(|c| c - (k.confirm - k.start));
                Stamp::new(k.start, req.camera.utc_offset_s, stream)
            }
        };
        let clip = if req.clip.is_empty() {
            notes.push(format!(
                "no clip: {}",
                req.clip_note
                    .as_deref()
                    .unwrap_or("the stream was not buffered")
            ));
            None
        } else {
            let path = tmp.join("clip.mp4");
            match clip::write_mp4(&req.clip, &path) {
                Ok(span) => {
                    sync_file(&path)?;
                    files.push(entry_of(&path, "clip.mp4")?);
                    Some(span)
                }
                Err(e) => {
                    // A muxer failure loses the clip, not the capture; a disk error is retried.
                    if let Err(source) = std::fs::remove_file(&path)
                        && source.kind() != std::io::ErrorKind::NotFound
                    {
                        return Err(io(&path)(source));
                    }
                    if is_disk_error(&e) {
                        return Err(EvidenceError::Io {
                            path,
                            source: std::io::Error::other(e),
                        });
                    }
                    notes.push(format!("no clip: {e}"));
                    None
                }
            }
        };
        let manifest = PackageManifest {
            format: FORMAT.into(),
            capture_key: req.key.clone(),
            camera: req.camera.clone(),
            location: req.location.clone(),
            rule: req.rule.clone(),
            label: k.label.clone(),
            parts: k.parts.clone(),
            score: k.score,
            bbox: k.bbox,
            first_seen,
            confirmed: Stamp::new(k.confirm, req.camera.utc_offset_s, req.confirm_stream_s),
            model: req.model.clone(),
            files,
            clip,
            notes,
            revisions: Vec::new(),
        };
        let json = serde_json::to_vec_pretty(&manifest).expect("manifest serialises");
        write_file(tmp, "manifest.json", &json)?;
        Ok(manifest)
    }
}

impl EvidenceWriter {
    /// Adds a closure check's look to a case's package: the "after" photo and clip join
    /// it, and the manifest is rewritten (atomically) with a [`Revision`] that keeps the
    /// replaced manifest's hash. The package must verify first. Adding the same look again
    /// (same case, outcome and time) changes nothing.
    pub fn append(&self, package: &str, add: &Addendum) -> Result<PackageRef, EvidenceError> {
        let dir = resolve(&self.root, package).ok_or_else(|| EvidenceError::Invalid {
            path: self.root.join(package),
            detail: "not a package path under the root".into(),
        })?;
        let mut m = verify(&dir)?;
        let at = Stamp::new(add.t, m.camera.utc_offset_s, add.stream_s);
        if m.revisions.iter().any(|r| {
            r.case_number == add.case_number && r.outcome == add.outcome && r.at.utc == at.utc
        }) {
            return Ok(package_ref(Path::new(package), &dir, &m));
        }
        let mpath = dir.join("manifest.json");
        let previous = hex::encode(Sha256::digest(std::fs::read(&mpath).map_err(io(&mpath))?));
        let n = m.revisions.len() as u32 + 1;
        let word = if add.outcome == "clear" {
            "核实: 已整改"
        } else {
            "核实: 未整改"
        };
        let jpg = image::render_jpeg(
            &add.picture,
            &Overlay {
                bbox: Some(add.bbox),
                zones: Vec::new(),
                text: vec![
                    format!("{word} · {} · {}", add.case_number, m.camera.id),
                    format_time(add.t, m.camera.utc_offset_s)
                        .replace('T', " ")
                        .chars()
                        .take(19)
                        .collect::<String>()
                        + &format!(" {}", utc_label(m.camera.utc_offset_s)),
                ],
            },
            &self.font,
        );
        let photo = format!("after-{n}.jpg");
        let mut added = vec![write_file(&dir, &photo, &jpg)?];
        let mut notes = Vec::new();
        let mut span = None;
        if add.clip.is_empty() {
            notes.push(format!(
                "no clip: {}",
                add.clip_note
                    .as_deref()
                    .unwrap_or("the stream was not buffered")
            ));
        } else {
            let name = format!("after-{n}.mp4");
            let path = dir.join(&name);
            match clip::write_mp4(&add.clip, &path) {
                Ok(s) => {
                    sync_file(&path)?;
                    added.push(entry_of(&path, &name)?);
                    span = Some(s);
                }
                Err(e) => {
                    let _ = std::fs::remove_file(&path);
                    notes.push(format!("no clip: {e}"));
                }
            }
        }
        m.revisions.push(Revision {
            n,
            outcome: add.outcome.clone(),
            case_number: add.case_number.clone(),
            at,
            previous_manifest_sha256: previous,
            files: added.iter().map(|f| f.name.clone()).collect(),
            clip: span,
            notes,
        });
        m.files.extend(added);
        let json = serde_json::to_vec_pretty(&m).expect("manifest serialises");
        let tmp = dir.join(".manifest.json.tmp");
        write_file(&dir, ".manifest.json.tmp", &json)?;
        std::fs::rename(&tmp, &mpath).map_err(io(&mpath))?;
        sync_dir(&dir)?;
        Ok(package_ref(Path::new(package), &dir, &m))
    }
}

fn is_disk_error(muxer_message: &str) -> bool {
    let m = muxer_message.to_ascii_lowercase();
    m.contains("no space")
        || m.contains("write")
        || m.contains("permission")
        || m.contains("open file")
}

fn utc_label(offset_s: i32) -> String {
    let (sign, a) = if offset_s < 0 {
        ('-', -offset_s)
    } else {
        ('+', offset_s)
    };
    format!("UTC{sign}{:02}:{:02}", a / 3600, a % 3600 / 60)
}

fn package_ref(rel: &Path, dir: &Path, m: &PackageManifest) -> PackageRef {
    let manifest_sha256 = std::fs::read(dir.join("manifest.json"))
        .map(|b| hex::encode(Sha256::digest(&b)))
        .unwrap_or_default();
    PackageRef {
        path: rel.to_string_lossy().into_owned(),
        manifest_sha256,
        files: m.files.iter().map(|f| f.name.clone()).collect(),
    }
}

pub use crate::core::path::safe_component;

/// Writes `bytes` to `dir/name` and fsyncs it.
fn write_file(dir: &Path, name: &str, bytes: &[u8]) -> Result<FileEntry, EvidenceError> {
    let path = dir.join(name);
    let mut f = std::fs::File::create(&path).map_err(io(&path))?;
    f.write_all(bytes).map_err(io(&path))?;
    f.sync_all().map_err(io(&path))?;
    Ok(FileEntry {
        name: name.into(),
        sha256: hex::encode(Sha256::digest(bytes)),
        bytes: bytes.len() as u64,
    })
}

fn sync_file(path: &Path) -> Result<(), EvidenceError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(path))
}

fn sync_dir(path: &Path) -> Result<(), EvidenceError> {
    std::fs::File::open(path)
        .and_then(|f| f.sync_all())
        .map_err(io(path))
}

fn entry_of(path: &Path, name: &str) -> Result<FileEntry, EvidenceError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_refuses_paths_that_leave_the_root() {
        let root = Path::new("/data/evidence");
        assert_eq!(
            resolve(root, "2026-11-27/cam/cap-1/confirm.jpg"),
            Some(root.join("2026-11-27/cam/cap-1/confirm.jpg"))
        );
        for bad in [
            "../etc/passwd",
            "/etc/passwd",
            "a/../../b",
            "",
            ".incoming/x",
            "a/.x",
        ] {
            assert_eq!(resolve(root, bad), None, "{bad}");
        }
    }

    #[test]
    fn components_are_made_safe() {
        assert_eq!(safe_component("cam 1/../x"), "cam_1_.._x");
        assert_eq!(safe_component(".."), "_..");
        assert_eq!(safe_component(""), "_");
    }

    #[test]
    fn stamps_carry_utc_local_and_stream_time() {
        let s = Stamp::new(1_767_225_600.25, 8 * 3600, Some(12.3456));
        assert_eq!(s.utc, "2026-01-01T00:00:00.25Z");
        assert_eq!(s.local, "2026-01-01T08:00:00.25+08:00");
        assert_eq!(s.stream_s, Some(12.346));
    }
}
