//! `[detect]`: the model, its threads and batching, where a camera looks closer, and their validation.

use super::*;

/// `[detect]`: the detector every camera shares.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectSettings {
    /// Manifest name in `models_dir`. Default "ssd_mobilenet_v2_coco".
    pub model: String,
    /// Folder of model manifests, relative to the config file. Default "../models".
    pub models_dir: PathBuf,
    /// `libonnxruntime.so` to load. Default: `CITYWATCH_ORT_LIB`, then `.local/onnxruntime`.
    pub ort_library: Option<PathBuf>,
    /// ONNX Runtime intra-op threads per inference. Default 2.
    pub intra_threads: usize,
    /// Dedicated inference threads. Default 1.
    pub inference_threads: usize,
    /// Whether ONNX Runtime's idle intra-op threads spin waiting for work. Default false:
    /// with many cameras inferences come in bursts, and spinning burnt 4 % more CPU at 64
    /// cameras (docs/benchmarks.md).
    pub intra_spinning: bool,
    /// How long a batch waits for more frames after its first. Default 10 ms.
    pub batch_wait_ms: u64,
    /// Frames that may wait for inference before cameras wait. Default 64.
    pub queue: usize,
    /// Seconds a frame may wait for its detections, queue included; past it the frame is
    /// unjudged (a hung or far-behind runtime). Default 30.
    pub inference_timeout_s: f64,
    /// `[detect.plates]`: reading the plates of standing vehicles.
    pub plates: PlateSettings,
}

/// `[detect.plates]`: the plate reader. On by default wherever a camera has an
/// `abandoned_vehicle` rule.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlateSettings {
    /// Read the plates of standing vehicles. Default true.
    pub enabled: bool,
    /// The reader's manifest name in `models_dir`. Default "plate_ppocr_v4".
    pub model: String,
    /// How long a vehicle must have stood before its plate is read. Default 60 s.
    pub after_s: f64,
    /// How often a standing vehicle's plate is read again. Default 120 s.
    pub every_s: f64,
    /// How often once its plate is settled and the last read found it again (to notice a
    /// swap). Default 600 s.
    pub settled_every_s: f64,
    /// Reads that must agree before a plate is carried in a capture. Default 2.
    pub min_agree: u32,
    /// ONNX Runtime threads per read. Default 1.
    pub intra_threads: usize,
}

impl Default for PlateSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            model: "plate_ppocr_v4".into(),
            after_s: 60.0,
            every_s: 120.0,
            settled_every_s: 600.0,
            min_agree: 2,
            intra_threads: 1,
        }
    }
}

impl Default for DetectSettings {
    fn default() -> Self {
        Self {
            model: "ssd_mobilenet_v2_coco".into(),
            models_dir: PathBuf::from("../models"),
            ort_library: None,
            intra_threads: 2,
            inference_threads: 1,
            intra_spinning: false,
            batch_wait_ms: 10,
            queue: 64,
            inference_timeout_s: 30.0,
            plates: PlateSettings::default(),
        }
    }
}

/// A camera's `detect_region`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DetectRegion {
    Frame,
    Zones,
    Auto,
}

/// The bounds of `zones`, grown by `margin` and clipped to the frame.
pub fn zones_region(zones: &[Zone], margin: f32) -> Option<BBox> {
    let u = crate::model::geometry::enclosing(zones.iter().map(|z| z.polygon.bounds()))?;
    Some([
        (u[0] - margin).max(0.0),
        (u[1] - margin).max(0.0),
        (u[2] + margin).min(1.0),
        (u[3] + margin).min(1.0),
    ])
}

/// What is wrong with a model name, if anything: it names a manifest in `models_dir`
/// (`NAME.toml`), never a path.
pub fn model_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must name a model manifest".into());
    }
    let ok = name.len() <= 128
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    (!ok).then(|| {
        format!(
            "must be a model's name (letters, digits, '-', '_', '.'; a manifest NAME.toml in models_dir), not a path: got {name:?}"
        )
    })
}

pub(crate) fn validate_detect(d: &DetectSettings, problems: &mut Vec<ConfigProblem>) {
    let mut bad = |path: &str, message: String| {
        problems.push(ConfigProblem {
            path: path.into(),
            message,
        })
    };
    if let Some(message) = model_name_problem(&d.model) {
        bad("detect.model", message);
    }
    let p = &d.plates;
    if let Some(message) = model_name_problem(&p.model) {
        bad("detect.plates.model", message);
    }
    if !(p.after_s.is_finite() && (0.0..=86_400.0).contains(&p.after_s)) {
        bad(
            "detect.plates.after_s",
            format!("must be from 0 to 86400 seconds, got {}", p.after_s),
        );
    }
    if !(p.every_s.is_finite() && (1.0..=86_400.0).contains(&p.every_s)) {
        bad(
            "detect.plates.every_s",
            format!("must be from 1 to 86400 seconds, got {}", p.every_s),
        );
    }
    if !(p.settled_every_s.is_finite() && (1.0..=86_400.0).contains(&p.settled_every_s)) {
        bad(
            "detect.plates.settled_every_s",
            format!("must be from 1 to 86400 seconds, got {}", p.settled_every_s),
        );
    }
    if !(1..=100).contains(&p.min_agree) {
        bad(
            "detect.plates.min_agree",
            format!("must be from 1 to 100, got {}", p.min_agree),
        );
    }
    if !(1..=16).contains(&p.intra_threads) {
        bad(
            "detect.plates.intra_threads",
            format!("must be from 1 to 16, got {}", p.intra_threads),
        );
    }
    if !(d.inference_timeout_s.is_finite() && (0.1..=3600.0).contains(&d.inference_timeout_s)) {
        bad(
            "detect.inference_timeout_s",
            format!(
                "must be from 0.1 to 3600 seconds, got {}",
                d.inference_timeout_s
            ),
        );
    }
    if !(1..=64).contains(&d.intra_threads) {
        bad(
            "detect.intra_threads",
            format!("must be from 1 to 64, got {}", d.intra_threads),
        );
    }
    if !(1..=16).contains(&d.inference_threads) {
        bad(
            "detect.inference_threads",
            format!("must be from 1 to 16, got {}", d.inference_threads),
        );
    }
    if d.batch_wait_ms > 1000 {
        bad(
            "detect.batch_wait_ms",
            format!("must be at most 1000, got {}", d.batch_wait_ms),
        );
    }
    if !(1..=4096).contains(&d.queue) {
        bad(
            "detect.queue",
            format!("must be from 1 to 4096, got {}", d.queue),
        );
    }
}

pub(crate) fn validate_width(path: &str, w: u32, problems: &mut Vec<ConfigProblem>) {
    if let Some(message) = width_problem(w) {
        problems.push(ConfigProblem {
            path: path.into(),
            message,
        });
    }
}

pub(crate) fn width_problem(w: u32) -> Option<String> {
    (!(32..=7680).contains(&w) || !w.is_multiple_of(2))
        .then(|| format!("must be an even number of pixels from 32 to 7680, got {w}"))
}

/// The model folder and the ONNX Runtime library, relative to the config's folder.
pub(super) fn resolve_detect_paths(d: &mut DetectSettings, base: &Path) {
    if d.models_dir.is_relative() {
        d.models_dir = base.join(&d.models_dir);
    }
    if let Some(lib) = d.ort_library.as_mut()
        && lib.is_relative()
    {
        *lib = base.join(&*lib);
    }
}
