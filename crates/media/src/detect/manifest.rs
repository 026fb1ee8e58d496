//! Model manifests (`models/NAME.toml`): everything citywatch needs to know about a detector,
//! as data. A model team adds a model by writing one, never by changing code.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::ModelError;
use super::kinds::ObjectKind;

/// How the model's input tensor is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    Nchw,
    Nhwc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DType {
    U8,
    F32,
}

/// How a frame is fitted to a fixed input size.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ResizeMode {
    /// Scale each axis independently.
    #[default]
    Stretch,
    /// Keep the aspect ratio and pad the rest (YOLO exports expect this).
    Letterbox,
}

/// `[input]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub name: String,
    pub layout: Layout,
    pub dtype: DType,
    /// `[width, height]`; absent means dynamic: frames go in at their analysis size.
    #[serde(default)]
    pub size: Option<[u32; 2]>,
    #[serde(default)]
    pub resize: ResizeMode,
    /// f32 inputs: value = (pixel * scale - mean[c]) / std[c].
    #[serde(default = "one")]
    pub scale: f32,
    #[serde(default)]
    pub mean: [f32; 3],
    #[serde(default = "ones")]
    pub std: [f32; 3],
    /// Colour of letterbox padding.
    #[serde(default = "pad")]
    pub pad_value: u8,
    /// Frames per inference call; 1 if the model has a fixed batch of one.
    #[serde(default = "one_usize")]
    pub max_batch: usize,
}

fn one() -> f32 {
    1.0
}
fn ones() -> [f32; 3] {
    [1.0; 3]
}
fn pad() -> u8 {
    114
}
fn one_usize() -> usize {
    1
}

/// `[output]`: the output layout, as data.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(tag = "layout", rename_all = "snake_case", deny_unknown_fields)]
pub enum OutputLayout {
    /// TensorFlow Object Detection API: boxes [N,K,4] (ymin,xmin,ymax,xmax, normalised),
    /// scores [N,K], classes [N,K] (ids from `class_offset`), count [N].
    SsdTf {
        boxes: String,
        scores: String,
        classes: String,
        #[serde(default)]
        count: Option<String>,
        #[serde(default)]
        class_offset: i64,
    },
    /// A TensorFlow SSD graph cut before its post-processing: box encodings [N, A, 4]
    /// (ty, tx, th, tw against the anchors) and logits [N, A, C]. Anchors, decoding, scores
    /// and NMS are done in Rust (`super::ssd`).
    SsdRaw {
        boxes: String,
        scores: String,
        /// Logit columns before the first label (1: TensorFlow's background class).
        #[serde(default = "one_usize")]
        class_offset: usize,
        #[serde(default)]
        score: super::ssd::ScoreFn,
        /// Divisors of (ty, tx, th, tw); TensorFlow's Faster R-CNN coder uses 10, 10, 5, 5.
        #[serde(default = "box_scale")]
        box_scale: [f32; 4],
        #[serde(default = "ssd_iou")]
        nms_iou: f32,
        /// One NMS across all classes instead of one per class.
        #[serde(default)]
        class_agnostic: bool,
        #[serde(default = "hundred")]
        max_per_class: usize,
        #[serde(default = "hundred")]
        max_total: usize,
        anchors: super::ssd::AnchorSpec,
    },
    /// YOLOv5: [N, B, 5+C]: cx, cy, w, h (input pixels), objectness, class scores.
    Yolov5 {
        name: String,
        #[serde(default = "iou")]
        nms_iou: f32,
    },
    /// YOLOv8 / YOLO11: [N, 4+C, B]: cx, cy, w, h (input pixels), class scores.
    Yolov8 {
        name: String,
        #[serde(default = "iou")]
        nms_iou: f32,
    },
    /// CenterNet-style top-k: [N, K, 6]: x1, y1, x2, y2 (input pixels), score, class.
    CenternetTopk { name: String },
}

fn iou() -> f32 {
    0.45
}
fn ssd_iou() -> f32 {
    0.6
}
fn box_scale() -> [f32; 4] {
    [10.0, 10.0, 5.0, 5.0]
}
fn hundred() -> usize {
    100
}

impl OutputLayout {
    pub fn output_names(&self) -> Vec<&str> {
        match self {
            OutputLayout::SsdTf {
                boxes,
                scores,
                classes,
                count,
                ..
            } => {
                let mut v = vec![boxes.as_str(), scores.as_str(), classes.as_str()];
                if let Some(c) = count {
                    v.push(c);
                }
                v
            }
            OutputLayout::SsdRaw { boxes, scores, .. } => vec![boxes.as_str(), scores.as_str()],
            OutputLayout::Yolov5 { name, .. }
            | OutputLayout::Yolov8 { name, .. }
            | OutputLayout::CenternetTopk { name } => vec![name.as_str()],
        }
    }
}

/// A whole manifest file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    version: String,
    file: String,
    sha256: String,
    licence: String,
    provenance: String,
    input: InputSpec,
    output: OutputLayout,
    /// Label of each class id (after `class_offset`); gaps may be "".
    labels: Vec<String>,
    /// Object kind → the labels of that kind. Labels not listed are `other`.
    #[serde(default)]
    kinds: HashMap<ObjectKind, Vec<String>>,
    /// Detections below this score are discarded. Default 0.3.
    #[serde(default = "min_score")]
    min_score: f32,
    /// A feature map to pool appearance embeddings from; absent turns learning off.
    #[serde(default)]
    features: Option<super::features::FeatureSpec>,
}

fn min_score() -> f32 {
    0.3
}

/// A validated manifest.
#[derive(Debug, Clone)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    pub path: PathBuf,
    pub sha256: String,
    pub licence: String,
    pub provenance: String,
    pub input: InputSpec,
    pub output: OutputLayout,
    pub labels: Vec<String>,
    /// Kind of each label, same index.
    pub label_kinds: Vec<ObjectKind>,
    pub min_score: f32,
    /// `[features]`: where appearance embeddings come from (None: no embeddings).
    pub features: Option<super::features::FeatureSpec>,
}

impl Manifest {
    /// Checks the model file: it is there, and has the manifest's sha256.
    pub fn verify_file(&self) -> Result<(), ModelError> {
        let err = |field: &str, message: String| ModelError::new(&self.name, field, message);
        if !self.path.exists() {
            return Err(err(
                "file",
                format!("model file {} does not exist", self.path.display()),
            ));
        }
        let actual = super::detector::sha256_file(&self.path)
            .map_err(|e| err("file", format!("cannot read {}: {e}", self.path.display())))?;
        if actual != self.sha256 {
            return Err(err(
                "sha256",
                format!(
                    "mismatch: the manifest says {}, {} has {actual}",
                    self.sha256,
                    self.path.display()
                ),
            ));
        }
        Ok(())
    }

    /// Reads `dir/NAME.toml`.
    pub fn load_named(dir: &Path, name: &str) -> Result<Self, ModelError> {
        Self::load(&dir.join(format!("{name}.toml")))
    }

    pub fn load(path: &Path) -> Result<Self, ModelError> {
        let model = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let err = |field: &str, message: String| ModelError::new(&model, field, message);
        let text = std::fs::read_to_string(path)
            .map_err(|e| err("manifest", format!("cannot read {}: {e}", path.display())))?;
        let value: toml::Value = text
            .parse::<toml::Table>()
            .map(toml::Value::Table)
            .map_err(|e| {
                err(
                    "manifest",
                    format!("not valid TOML: {}", e.message().trim()),
                )
            })?;
        let raw: RawManifest = serde_path_to_error::deserialize(value).map_err(|e| {
            let field = e.path().to_string();
            // toml appends "in `table`" on a second line; the path already says where.
            let msg = e.inner().to_string();
            err(&field, msg.lines().next().unwrap_or("").trim().to_string())
        })?;
        let model = raw.name.clone();
        let err = |field: &str, message: String| ModelError::new(&model, field, message);
        if raw.labels.is_empty() {
            return Err(err("labels", "at least one label is required".into()));
        }
        if raw.input.max_batch == 0 || raw.input.max_batch > 64 {
            return Err(err(
                "input.max_batch",
                format!("must be from 1 to 64, got {}", raw.input.max_batch),
            ));
        }
        if raw.input.size.is_some_and(|[w, h]| w == 0 || h == 0) {
            return Err(err(
                "input.size",
                "width and height must be positive".into(),
            ));
        }
        if raw.input.size.is_none() && raw.input.resize == ResizeMode::Letterbox {
            return Err(err(
                "input.resize",
                "letterbox needs a fixed input.size".into(),
            ));
        }
        if !(0.0..=1.0).contains(&raw.min_score) {
            return Err(err(
                "min_score",
                format!("must be between 0 and 1, got {}", raw.min_score),
            ));
        }
        if let OutputLayout::SsdRaw {
            anchors,
            nms_iou,
            max_per_class,
            max_total,
            box_scale,
            ..
        } = &raw.output
        {
            anchors.validate().map_err(|(f, m)| err(&f, m))?;
            if !(0.0..=1.0).contains(nms_iou) {
                return Err(err(
                    "output.nms_iou",
                    format!("must be between 0 and 1, got {nms_iou}"),
                ));
            }
            if *max_per_class == 0 || *max_total == 0 {
                return Err(err(
                    "output.max_total",
                    "max_per_class and max_total must be positive".into(),
                ));
            }
            if box_scale.iter().any(|v| *v <= 0.0) {
                return Err(err(
                    "output.box_scale",
                    format!("must be positive, got {box_scale:?}"),
                ));
            }
        }
        let mut label_kinds = vec![ObjectKind::Other; raw.labels.len()];
        for (kind, names) in &raw.kinds {
            for n in names {
                let Some(i) = raw.labels.iter().position(|l| l == n) else {
                    return Err(err(
                        &format!("kinds.{}", kind.as_str()),
                        format!("label {n:?} is not in labels"),
                    ));
                };
                label_kinds[i] = *kind;
            }
        }
        let dir = path.parent().unwrap_or(Path::new("."));
        Ok(Manifest {
            name: raw.name,
            version: raw.version,
            path: dir.join(&raw.file),
            sha256: raw.sha256.to_ascii_lowercase(),
            licence: raw.licence,
            provenance: raw.provenance,
            input: raw.input,
            output: raw.output,
            labels: raw.labels,
            label_kinds,
            min_score: raw.min_score,
            features: raw.features,
        })
    }
}
