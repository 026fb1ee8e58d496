//! Stage 2, detection: ONNX detectors through ONNX Runtime (`ort`), described by manifests.
//!
//! - [`manifest`]: the model manifest format (input, output layout, labels, kinds);
//! - [`runtime`]: loading the ONNX Runtime library and its one environment;
//! - [`detector`]: one session per model, checked against the manifest at load;
//! - [`preprocess`]: frame → input tensor with reused buffers;
//! - [`decode`]: output layouts as data, decoded by pure functions, NMS;
//! - [`features`]: appearance embeddings pooled from a feature map of the network;
//! - [`service`]: batching across cameras on dedicated inference threads;
//! - [`gate`]: per-camera scene-change gating.

pub mod closer;
pub mod decode;
pub mod detector;
pub mod error;
pub mod features;
pub mod file;
pub mod gate;
pub mod kinds;
pub mod manifest;
pub mod preprocess;
pub mod runtime;
pub mod service;
pub mod ssd;

pub use decode::BBox;
pub use detector::OrtDetector;
pub use error::ModelError;
pub use features::Embedding;
pub use gate::{Decision, GateConfig, GateStats, SceneGate};
pub use kinds::ObjectKind;
pub use manifest::Manifest;
pub use service::{DetectionService, ServiceConfig};

use std::sync::Arc;

use crate::ingest::Frame;

/// One detected object. The box is normalised to the frame: (x1, y1, x2, y2) in 0..1.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Detection {
    pub label: Arc<str>,
    pub kind: ObjectKind,
    pub score: f32,
    pub bbox: BBox,
    /// The box's appearance, pooled from the detector's feature map (a model whose manifest
    /// has `[features]`); None otherwise.
    #[serde(skip)]
    pub embedding: Option<Embedding>,
}

/// A detector: the real ONNX one, or a fake in tests of later stages.
pub trait Detector: Send + Sync {
    fn name(&self) -> &str;
    /// Most frames one call should carry.
    fn max_batch(&self) -> usize;
    /// Detections for each frame, in order.
    fn detect(&self, frames: &[&Frame]) -> Result<Vec<Vec<Detection>>, ModelError>;
    /// The model's fixed input size `[width, height]`; None when frames go in at their own
    /// size. Cameras decide from it where to look closer.
    fn input_size(&self) -> Option<[u32; 2]> {
        None
    }
}

/// Detection as a camera's analyser sees it: one frame in, its detections out. Live, the
/// batching [`DetectionService`] shared by every camera; a fake in the analyser's tests.
pub trait DetectionSource: Send + Sync {
    fn detect(
        &self,
        frame: Arc<Frame>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Vec<Detection>, ModelError>> + Send + '_>,
    >;
    /// The model's fixed input size `[width, height]`, if it has one.
    fn input_size(&self) -> Option<[u32; 2]> {
        None
    }
}

impl DetectionSource for DetectionService {
    fn detect(
        &self,
        frame: Arc<Frame>,
    ) -> std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Vec<Detection>, ModelError>> + Send + '_>,
    > {
        Box::pin(DetectionService::detect(self, frame))
    }
    fn input_size(&self) -> Option<[u32; 2]> {
        self.input_size()
    }
}

/// A detector that takes frames one at a time, so results never depend on which frames
/// happened to share a batch (replays and evaluations must repeat exactly).
pub struct OneAtATime(pub Arc<dyn Detector>);

impl Detector for OneAtATime {
    fn name(&self) -> &str {
        self.0.name()
    }
    fn max_batch(&self) -> usize {
        1
    }
    fn detect(&self, frames: &[&Frame]) -> Result<Vec<Vec<Detection>>, ModelError> {
        let mut out = Vec::with_capacity(frames.len());
        for f in frames {
            out.extend(self.0.detect(&[f])?);
        }
        Ok(out)
    }
    fn input_size(&self) -> Option<[u32; 2]> {
        self.0.input_size()
    }
}
