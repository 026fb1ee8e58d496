//! The ONNX detector: one `ort` session per model, checked against its manifest at load time.

use parking_lot::Mutex;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ort::session::Session;
use ort::value::{TensorElementType, TensorRef};
use sha2::{Digest, Sha256};

use super::decode::{self, Tensor};
use super::error::ModelError;
use super::manifest::{DType, Layout, Manifest, OutputLayout};
use super::preprocess::{Fit, Preprocessor, input_size};
use super::{Detection, Detector};
use crate::ingest::Frame;

/// Timings of one `detect` call, for benchmarks and metrics.
#[derive(Debug, Default, Clone, Copy)]
pub struct Timings {
    pub preprocess: Duration,
    pub run: Duration,
    pub decode: Duration,
}

struct Scratch {
    pre: Preprocessor,
    u8s: Vec<u8>,
    f32s: Vec<f32>,
    fits: Vec<Fit>,
}

pub struct OrtDetector {
    manifest: Manifest,
    labels: Vec<Arc<str>>,
    session: Mutex<Session>,
    scratch: Mutex<Scratch>,
    last: Mutex<Timings>,
    decoder: decode::Decoder,
}

/// Hex sha256 of a file, streamed.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut f = std::fs::File::open(path)?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(h.finalize().iter().map(|b| format!("{b:02x}")).collect())
}

impl OrtDetector {
    /// Loads and checks a model. `ort_lib` is the ONNX Runtime library to use. The intra-op
    /// threads sleep between inferences instead of spinning (`[detect] intra_spinning`).
    pub fn load(
        manifest: Manifest,
        ort_lib: &Path,
        intra_threads: usize,
    ) -> Result<Self, ModelError> {
        Self::load_with(manifest, ort_lib, intra_threads, false)
    }

    /// [`Self::load`], saying whether idle intra-op threads spin.
    pub fn load_with(
        manifest: Manifest,
        ort_lib: &Path,
        intra_threads: usize,
        spinning: bool,
    ) -> Result<Self, ModelError> {
        let name = manifest.name.clone();
        let err = |field: &str, m: String| ModelError::new(&name, field, m);
        manifest.verify_file()?;
        let env = super::runtime::environment(ort_lib).map_err(|mut e| {
            e.model = name.clone();
            e
        })?;
        let builder = || {
            Session::builder(&env)
                .and_then(|b| {
                    b.with_intra_threads(intra_threads.max(1))
                        .map_err(Into::into)
                })
                .and_then(|b| b.with_intra_op_spinning(spinning).map_err(Into::into))
        };
        let session = match &manifest.features {
            None => builder()
                .and_then(|mut b| b.commit_from_file(&manifest.path))
                .map_err(|e| err("file", format!("ONNX Runtime cannot load it: {e}")))?,
            Some(f) => {
                // The feature map joins the graph's outputs in memory; the file stays as shipped.
                let bytes = std::fs::read(&manifest.path).map_err(|e| {
                    err(
                        "file",
                        format!("cannot read {}: {e}", manifest.path.display()),
                    )
                })?;
                let edited = super::features::add_graph_output(&bytes, &f.output)
                    .map_err(|m| err("features.output", m))?;
                drop(bytes);
                builder()
                    .and_then(|mut b| b.commit_from_memory(&edited))
                    .map_err(|e| {
                        err(
                            "features.output",
                            format!("ONNX Runtime cannot load the model with it as an output: {e}"),
                        )
                    })?
            }
        };
        check_metadata(&manifest, &session)?;
        let labels = manifest
            .labels
            .iter()
            .map(|l| Arc::from(l.as_str()))
            .collect();
        Ok(Self {
            scratch: Mutex::new(Scratch {
                pre: Preprocessor::new(&manifest.input),
                u8s: Vec::new(),
                f32s: Vec::new(),
                fits: Vec::new(),
            }),
            labels,
            decoder: decode::Decoder::new(&manifest.output),
            manifest,
            session: Mutex::new(session),
            last: Mutex::new(Timings::default()),
        })
    }

    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// Timings of the most recent `detect` call.
    pub fn last_timings(&self) -> Timings {
        *self.last.lock()
    }

    /// Runs frames of one size as one batch.
    fn run_batch(&self, frames: &[&Frame]) -> Result<Vec<Vec<Detection>>, ModelError> {
        let m = &self.manifest;
        let err = |field: &str, msg: String| ModelError::new(&m.name, field, msg);
        let t0 = Instant::now();
        let mut scratch = self.scratch.lock();
        let Scratch {
            pre,
            u8s,
            f32s,
            fits,
        } = &mut *scratch;
        let (fw, fh) = (frames[0].width, frames[0].height);
        let (iw, ih) = input_size(&m.input, fw, fh);
        let item = pre.item_len(fw, fh);
        let n = frames.len();
        fits.clear();
        let shape = match m.input.layout {
            Layout::Nhwc => [n, ih as usize, iw as usize, 3],
            Layout::Nchw => [n, 3, ih as usize, iw as usize],
        };
        match pre.dtype() {
            DType::U8 => {
                u8s.resize(item * n, 0);
                for (i, f) in frames.iter().enumerate() {
                    fits.push(pre.write_u8(f, &mut u8s[i * item..(i + 1) * item]));
                }
            }
            DType::F32 => {
                f32s.resize(item * n, 0.0);
                for (i, f) in frames.iter().enumerate() {
                    fits.push(pre.write_f32(f, &mut f32s[i * item..(i + 1) * item]));
                }
            }
        }
        let t1 = Instant::now();
        let mut session = self.session.lock();
        let input = match pre.dtype() {
            DType::U8 => TensorRef::from_array_view((shape, &u8s[..])).map(|t| t.into_dyn()),
            DType::F32 => TensorRef::from_array_view((shape, &f32s[..])).map(|t| t.into_dyn()),
        }
        .map_err(|e| err("input", format!("cannot make the input tensor: {e}")))?;
        let outputs = session
            .run(ort::inputs![m.input.name.as_str() => input])
            .map_err(|e| err("runtime", format!("inference failed: {e}")))?;
        let t2 = Instant::now();
        let names = m.output.output_names();
        let mut extracted = Vec::with_capacity(names.len());
        for name in &names {
            let v = outputs
                .get(*name)
                .ok_or_else(|| err("output", format!("no output named {name:?}")))?;
            let (shape, data) = v
                .try_extract_tensor::<f32>()
                .map_err(|e| err("output", format!("output {name:?} is not f32: {e}")))?;
            let shape: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
            extracted.push((shape, data));
        }
        let tensors: Vec<Tensor<'_>> = extracted
            .iter()
            .map(|(s, d)| Tensor { shape: s, data: d })
            .collect();
        let features = match &m.features {
            None => None,
            Some(f) => {
                let v = outputs.get(f.output.as_str()).ok_or_else(|| {
                    err("features.output", format!("no output named {:?}", f.output))
                })?;
                let (shape, data) = v.try_extract_tensor::<f32>().map_err(|e| {
                    err(
                        "features.output",
                        format!("output {:?} is not f32: {e}", f.output),
                    )
                })?;
                let shape: Vec<usize> = shape.iter().map(|&d| d.max(0) as usize).collect();
                Some((shape, data, f.layout))
            }
        };
        let mut out = Vec::with_capacity(n);
        for (b, fit) in fits.iter().enumerate() {
            let raw = self
                .decoder
                .decode(&tensors, b, fit.input_size(), m.labels.len(), m.min_score)
                .map_err(|e| err("output", e.to_string()))?;
            out.push(
                raw.into_iter()
                    // Unused class ids (gaps in COCO's numbering) have empty labels.
                    .filter(|d| !self.labels[d.class].is_empty())
                    .map(|d| Detection {
                        label: self.labels[d.class].clone(),
                        kind: m.label_kinds[d.class],
                        score: d.score,
                        bbox: fit.to_frame(d.bbox),
                        // The map covers the model input, where the decoded box lives.
                        embedding: features.as_ref().and_then(|(shape, data, layout)| {
                            let t = Tensor { shape, data };
                            super::features::pool(&t, b, *layout, &d.bbox).map(Into::into)
                        }),
                    })
                    .collect(),
            );
        }
        let t3 = Instant::now();
        *self.last.lock() = Timings {
            preprocess: t1 - t0,
            run: t2 - t1,
            decode: t3 - t2,
        };
        Ok(out)
    }

    /// Runs `session.run` alone on an input already prepared for `frame`: for benchmarks.
    pub fn bench_run_only(&self, frame: &Frame, batch: usize) -> Result<Duration, ModelError> {
        let frames: Vec<&Frame> = std::iter::repeat_n(frame, batch).collect();
        self.run_batch(&frames)?;
        Ok(self.last_timings().run)
    }
}

impl Detector for OrtDetector {
    fn name(&self) -> &str {
        &self.manifest.name
    }

    fn max_batch(&self) -> usize {
        self.manifest.input.max_batch
    }

    fn input_size(&self) -> Option<[u32; 2]> {
        self.manifest.input.size
    }

    fn detect(&self, frames: &[&Frame]) -> Result<Vec<Vec<Detection>>, ModelError> {
        let mut out = Vec::with_capacity(frames.len());
        // A batch holds frames of one size and at most max_batch of them.
        let mut start = 0;
        while start < frames.len() {
            let (w, h) = (frames[start].width, frames[start].height);
            let mut end = start + 1;
            while end < frames.len()
                && end - start < self.max_batch()
                && frames[end].width == w
                && frames[end].height == h
            {
                end += 1;
            }
            out.extend(self.run_batch(&frames[start..end])?);
            start = end;
        }
        Ok(out)
    }
}

fn fixed(d: i64) -> Option<usize> {
    (d > 0).then_some(d as usize)
}

/// Checks the manifest against the session's real inputs and outputs.
fn check_metadata(m: &Manifest, session: &Session) -> Result<(), ModelError> {
    let err = |field: &str, msg: String| ModelError::new(&m.name, field, msg);
    let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
    let input = session
        .inputs()
        .iter()
        .find(|i| i.name() == m.input.name)
        .ok_or_else(|| {
            err(
                "input.name",
                format!(
                    "the model has no input {:?} (it has {inputs:?})",
                    m.input.name
                ),
            )
        })?;
    let ty = input.dtype().tensor_type();
    let want = match m.input.dtype {
        DType::U8 => TensorElementType::Uint8,
        DType::F32 => TensorElementType::Float32,
    };
    if ty != Some(want) {
        return Err(err(
            "input.dtype",
            format!(
                "the manifest says {:?}, the model takes {ty:?}",
                m.input.dtype
            ),
        ));
    }
    let shape: Vec<i64> = input
        .dtype()
        .tensor_shape()
        .map(|s| s.iter().copied().collect())
        .unwrap_or_default();
    if shape.len() != 4 {
        return Err(err(
            "input.layout",
            format!("expected a 4-dimensional image input, the model's is {shape:?}"),
        ));
    }
    let (c, h, w) = match m.input.layout {
        Layout::Nhwc => (shape[3], shape[1], shape[2]),
        Layout::Nchw => (shape[1], shape[2], shape[3]),
    };
    if fixed(c).is_some_and(|c| c != 3) {
        return Err(err(
            "input.layout",
            format!(
                "{:?} puts channels where the model has {c} (shape {shape:?})",
                m.input.layout
            ),
        ));
    }
    match (m.input.size, fixed(w), fixed(h)) {
        (Some([mw, mh]), Some(w), Some(h)) if (mw as usize, mh as usize) != (w, h) => {
            return Err(err(
                "input.size",
                format!(
                    "the manifest says [{mw}, {mh}], the model takes {w}x{h} (shape {shape:?})"
                ),
            ));
        }
        (None, Some(w), Some(h)) => {
            return Err(err(
                "input.size",
                format!("the model has a fixed input of {w}x{h}; set input.size = [{w}, {h}]"),
            ));
        }
        _ => {}
    }
    if fixed(shape[0]).is_some_and(|b| b < m.input.max_batch) {
        return Err(err(
            "input.max_batch",
            format!(
                "{} exceeds the model's fixed batch of {}",
                m.input.max_batch, shape[0]
            ),
        ));
    }

    let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
    let out_shape = |name: &str, field: &str| -> Result<Vec<i64>, ModelError> {
        let o = session
            .outputs()
            .iter()
            .find(|o| o.name() == name)
            .ok_or_else(|| {
                err(
                    field,
                    format!("the model has no output {name:?} (it has {outputs:?})"),
                )
            })?;
        Ok(o.dtype()
            .tensor_shape()
            .map(|s| s.iter().copied().collect())
            .unwrap_or_default())
    };
    let n = m.labels.len();
    let label_err = |got: usize, shape: &[i64]| {
        err(
            "labels",
            format!("{n} labels, but the output has {got} classes (shape {shape:?})"),
        )
    };
    match &m.output {
        OutputLayout::SsdTf {
            boxes,
            scores,
            classes,
            count,
            ..
        } => {
            let b = out_shape(boxes, "output.boxes")?;
            if b.len() != 3 || fixed(b[2]).is_some_and(|d| d != 4) {
                return Err(err(
                    "output.boxes",
                    format!("expected [N, K, 4], the model has {b:?}"),
                ));
            }
            out_shape(scores, "output.scores")?;
            out_shape(classes, "output.classes")?;
            if let Some(c) = count {
                out_shape(c, "output.count")?;
            }
        }
        OutputLayout::SsdRaw {
            boxes,
            scores,
            class_offset,
            anchors,
            ..
        } => {
            let want = anchors.generate().len();
            let b = out_shape(boxes, "output.boxes")?;
            if b.len() != 3 || fixed(b[2]).is_some_and(|d| d != 4) {
                return Err(err(
                    "output.boxes",
                    format!("expected [N, A, 4] box encodings, the model has {b:?}"),
                ));
            }
            let s = out_shape(scores, "output.scores")?;
            if s.len() != 3 {
                return Err(err(
                    "output.scores",
                    format!("expected [N, A, C] logits, the model has {s:?}"),
                ));
            }
            for got in [fixed(b[1]), fixed(s[1])].into_iter().flatten() {
                if got != want {
                    return Err(err(
                        "output.anchors",
                        format!("the parameters make {want} anchors, the model has {got}"),
                    ));
                }
            }
            if let Some(d) = fixed(s[2])
                && d != class_offset + n
            {
                return Err(label_err(d.saturating_sub(*class_offset), &s));
            }
        }
        OutputLayout::Yolov5 { name, .. } => {
            let s = out_shape(name, "output.name")?;
            if s.len() != 3 {
                return Err(err(
                    "output.layout",
                    format!("yolov5 needs [N, B, 5+C], the model has {s:?}"),
                ));
            }
            if let Some(d) = fixed(s[2])
                && d != 5 + n
            {
                return Err(label_err(d.saturating_sub(5), &s));
            }
        }
        OutputLayout::Yolov8 { name, .. } => {
            let s = out_shape(name, "output.name")?;
            if s.len() != 3 {
                return Err(err(
                    "output.layout",
                    format!("yolov8 needs [N, 4+C, B], the model has {s:?}"),
                ));
            }
            if let Some(d) = fixed(s[1])
                && d != 4 + n
            {
                return Err(label_err(d.saturating_sub(4), &s));
            }
        }
        OutputLayout::CenternetTopk { name } => {
            let s = out_shape(name, "output.name")?;
            if s.len() != 3 || fixed(s[2]).is_some_and(|d| d != 6) {
                return Err(err(
                    "output.layout",
                    format!("centernet_topk needs [N, K, 6], the model has {s:?}"),
                ));
            }
        }
    }
    Ok(())
}
