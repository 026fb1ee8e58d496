//! `citywatch detect --model NAME FILE`: one image or video through the real ingest and
//! detection path, detections as JSON lines.

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use serde::Serialize;

use super::{Detector, ModelError};
use crate::config::{CameraConfig, IngestDefaults};
use crate::core::{Shutdown, SystemClock};
use crate::ingest::{HealthState, spawn_camera};

/// One output line.
#[derive(Debug, Serialize)]
pub struct DetectionLine<'a> {
    pub frame: u64,
    pub pts_s: Option<f64>,
    pub label: &'a str,
    pub kind: &'static str,
    pub score: f32,
    /// x1, y1, x2, y2 in pixels of the decoded frame.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
}

#[derive(Debug, thiserror::Error)]
pub enum DetectFileError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{0}")]
    Input(String),
    #[error("writing output: {0}")]
    Io(#[from] std::io::Error),
}

/// Decodes every frame of `path` at its own size (every `every`-th frame) and writes one
/// JSON line per detection with a score of at least `min_score`. Returns frames processed.
pub async fn detect_file(
    detector: Arc<dyn Detector>,
    path: &Path,
    min_score: f32,
    every: u64,
    out: &mut impl Write,
) -> Result<u64, DetectFileError> {
    // Every frame is due (full size); `every` thins them here.
    let cam = CameraConfig::for_file("detect", path, 1000.0);
    let ingest = IngestDefaults {
        queue_frames: 2,
        ..IngestDefaults::default()
    };
    let mut handle = spawn_camera(
        &cam,
        &ingest,
        Default::default(),
        Arc::new(SystemClock),
        Shutdown::new(),
    );
    let health = handle.health.clone();
    let mut n = 0u64;
    while let Some(frame) = handle.next_frame().await {
        let index = frame.seq;
        if index % every.max(1) != 0 {
            continue;
        }
        n += 1;
        let dets = {
            let detector = detector.clone();
            tokio::task::spawn_blocking(move || {
                detector.detect(&[&frame]).map(|mut v| (v.remove(0), frame))
            })
            .await
            .map_err(|e| DetectFileError::Input(format!("inference task failed: {e}")))??
        };
        let (dets, frame) = dets;
        let (w, h) = (frame.width as f32, frame.height as f32);
        for d in dets.iter().filter(|d| d.score >= min_score) {
            let line = DetectionLine {
                frame: index,
                pts_s: frame.pts.map(|p| (p.as_secs_f64() * 1e6).round() / 1e6),
                label: &d.label,
                kind: d.kind.as_str(),
                score: (d.score * 1e4).round() / 1e4,
                bbox: [
                    (d.bbox[0] * w * 10.0).round() / 10.0,
                    (d.bbox[1] * h * 10.0).round() / 10.0,
                    (d.bbox[2] * w * 10.0).round() / 10.0,
                    (d.bbox[3] * h * 10.0).round() / 10.0,
                ],
            };
            serde_json::to_writer(&mut *out, &line).map_err(std::io::Error::from)?;
            out.write_all(b"\n")?;
        }
    }
    let h = health.borrow().clone();
    if h.state == HealthState::Failed {
        return Err(DetectFileError::Input(
            h.last_error
                .unwrap_or_else(|| "the file could not be read".into()),
        ));
    }
    Ok(n)
}
