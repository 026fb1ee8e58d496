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
pub use crate::model::package::*;
use crate::ratelimit::Capture;
use image::{Overlay, Picture, Watermarker};
use ring::Packet;

const INCOMING: &str = ".incoming";

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
    /// The vehicle's plate as read (`plate.jpg`), when the capture carries a plate.
    pub plate: Option<Picture>,
    pub zone_polygon: Option<Vec<[f32; 2]>>,
    pub clip: Vec<Packet>,
    /// Why there is no clip, when `clip` is empty.
    pub clip_note: Option<String>,
    /// Where the confirmation photo came from, when not the analysis frame (the camera's
    /// full-size keyframe).
    pub photo_note: Option<String>,
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

    /// Where this capture's complete package already is, if it is. Usually under the
    /// confirmation's date; but a capture met again after a restart (the process died after
    /// writing its package, before the capture was queued) has the same key and a later
    /// confirmation, which may fall on the next day: its package is then under another date
    /// folder, and is found there rather than written twice.
    fn written(&self, req: &PackageRequest) -> Option<PathBuf> {
        let own = Self::relative_dir(req);
        if self.root.join(&own).join("manifest.json").is_file() {
            return Some(own);
        }
        let tail = own
            .strip_prefix(own.components().next()?)
            .ok()?
            .to_path_buf();
        std::fs::read_dir(&self.root)
            .ok()?
            .flatten()
            .map(|e| PathBuf::from(e.file_name()).join(&tail))
            .find(|rel| {
                !rel.starts_with(INCOMING) && self.root.join(rel).join("manifest.json").is_file()
            })
    }

    /// Builds and writes the package; an existing complete package is kept as it is.
    pub fn write(&self, req: &PackageRequest) -> Result<PackageRef, EvidenceError> {
        // Fault injection (`CITYWATCH_FAULTS`, core::faults): `evidence=1*panic` makes the
        // next write panic, as a bug in building a package would.
        fail::fail_point!("evidence");
        if let Some(rel) = self.written(req) {
            let dir = self.root.join(&rel);
            let manifest = verify(&dir)?;
            return Ok(package_ref(&rel, &dir, &manifest));
        }
        let rel = Self::relative_dir(req);
        let dir = self.root.join(&rel);
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
        let mut notes: Vec<String> = req.photo_note.iter().cloned().collect();
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
        if let (Some(_), Some(p)) = (&k.plate, &req.plate) {
            files.push(write_file(
                tmp,
                "plate.jpg",
                &image::encode_jpeg(&p.rgb, p.width, p.height),
            )?);
        }
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
            plate: k.plate.clone(),
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
