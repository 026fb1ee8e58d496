//! The plate reader's manifest (`models/plate_ppocr_v4.toml`): its two ONNX files with their
//! sha256, provenance and licence, and the thresholds of text detection.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::detect::ModelError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Raw {
    name: String,
    version: String,
    licence: String,
    provenance: String,
    det: RawDet,
    rec: RawRec,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDet {
    file: PathBuf,
    sha256: String,
    #[serde(default = "pixel_threshold")]
    pixel_threshold: f32,
    #[serde(default = "box_threshold")]
    box_threshold: f32,
    #[serde(default = "unclip")]
    unclip: f32,
    #[serde(default = "max_side")]
    max_side: u32,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRec {
    file: PathBuf,
    sha256: String,
    #[serde(default = "rec_height")]
    height: u32,
}

fn pixel_threshold() -> f32 {
    0.3
}
fn box_threshold() -> f32 {
    0.5
}
fn unclip() -> f32 {
    1.6
}
fn max_side() -> u32 {
    960
}
fn rec_height() -> u32 {
    48
}

/// One of the reader's model files.
#[derive(Debug, Clone)]
pub struct ModelFile {
    pub path: PathBuf,
    pub sha256: String,
}

/// A validated plate reader manifest.
#[derive(Debug, Clone)]
pub struct PlateManifest {
    pub name: String,
    pub version: String,
    pub licence: String,
    pub provenance: String,
    pub det: ModelFile,
    pub rec: ModelFile,
    pub pixel_threshold: f32,
    pub box_threshold: f32,
    pub unclip: f32,
    /// The longest side a crop is scaled to for text detection.
    pub max_side: u32,
    pub rec_height: u32,
}

/// The manifest's file name in the models directory.
pub const DEFAULT_NAME: &str = "plate_ppocr_v4";

impl PlateManifest {
    /// Reads `dir/NAME.toml`.
    pub fn load_named(dir: &Path, name: &str) -> Result<Self, ModelError> {
        Self::load(&dir.join(format!("{name}.toml")))
    }

    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let err = |field: &str, m: String| ModelError::new(&stem, field, m);
        let text = std::fs::read_to_string(path)
            .map_err(|e| err("manifest", format!("cannot read {}: {e}", path.display())))?;
        let value = text
            .parse::<toml::Table>()
            .map(toml::Value::Table)
            .map_err(|e| {
                err(
                    "manifest",
                    format!("not valid TOML: {}", e.message().trim()),
                )
            })?;
        let raw: Raw = serde_path_to_error::deserialize(value).map_err(|e| {
            let msg = e.inner().to_string();
            err(
                &e.path().to_string(),
                msg.lines().next().unwrap_or("").trim().to_string(),
            )
        })?;
        let err = |field: &str, m: String| ModelError::new(&raw.name, field, m);
        for (field, v) in [
            ("det.pixel_threshold", raw.det.pixel_threshold),
            ("det.box_threshold", raw.det.box_threshold),
        ] {
            if !(0.0..1.0).contains(&v) {
                return Err(err(field, format!("must be from 0 to below 1, got {v}")));
            }
        }
        if !(0.5..=4.0).contains(&raw.det.unclip) {
            return Err(err(
                "det.unclip",
                format!("must be from 0.5 to 4, got {}", raw.det.unclip),
            ));
        }
        if !(64..=4096).contains(&raw.det.max_side) {
            return Err(err(
                "det.max_side",
                format!("must be from 64 to 4096, got {}", raw.det.max_side),
            ));
        }
        if !(16..=128).contains(&raw.rec.height) {
            return Err(err(
                "rec.height",
                format!("must be from 16 to 128, got {}", raw.rec.height),
            ));
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        let file = |field: &str, f: &Path, sha: &str| -> Result<ModelFile, ModelError> {
            if f.is_absolute()
                || f.components()
                    .any(|c| matches!(c, std::path::Component::ParentDir))
            {
                return Err(err(
                    field,
                    "must be a path inside the models directory".into(),
                ));
            }
            if sha.len() != 64 || !sha.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err(
                    field,
                    format!("sha256 must be 64 hex digits, got {sha:?}"),
                ));
            }
            Ok(ModelFile {
                path: dir.join(f),
                sha256: sha.to_ascii_lowercase(),
            })
        };
        Ok(Self {
            det: file("det.file", &raw.det.file, &raw.det.sha256)?,
            rec: file("rec.file", &raw.rec.file, &raw.rec.sha256)?,
            pixel_threshold: raw.det.pixel_threshold,
            box_threshold: raw.det.box_threshold,
            unclip: raw.det.unclip,
            max_side: raw.det.max_side,
            rec_height: raw.rec.height,
            name: raw.name,
            version: raw.version,
            licence: raw.licence,
            provenance: raw.provenance,
        })
    }

    /// Checks both files: there, and with the manifest's sha256 (`make deps` fetches them).
    pub fn verify_files(&self) -> Result<(), ModelError> {
        for (field, f) in [("det", &self.det), ("rec", &self.rec)] {
            let err = |m: String| ModelError::new(&self.name, &format!("{field}.file"), m);
            if !f.path.exists() {
                return Err(err(format!(
                    "model file {} does not exist (make deps unpacks it)",
                    f.path.display()
                )));
            }
            let actual = crate::detect::detector::sha256_file(&f.path)
                .map_err(|e| err(format!("cannot read {}: {e}", f.path.display())))?;
            if actual != f.sha256 {
                return Err(ModelError::new(
                    &self.name,
                    &format!("{field}.sha256"),
                    format!(
                        "mismatch: the manifest says {}, {} has {actual}",
                        f.sha256,
                        f.path.display()
                    ),
                ));
            }
        }
        Ok(())
    }
}
