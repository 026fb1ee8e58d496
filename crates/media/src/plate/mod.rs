//! Plate reading (车牌号) for stationary vehicles: PP-OCRv4 text detection and recognition
//! through the same ONNX Runtime as the detectors, described by a manifest.
//!
//! - [`manifest`]: `models/plate_ppocr_v4.toml`, the two model files and their thresholds;
//! - [`ocr`]: the reader: text lines found in a vehicle's crop, each line read, and the best
//!   valid plate kept (validation in `citywatch_base::model::plate`);
//! - [`image`]: the small RGB image the reader works on (crop, resize);
//! - [`render`]: plates drawn with a CJK font on their background colour, for tests and
//!   `citywatch scenario`.
//!
//! The reader sits behind [`PlateReader`], so later stages test their use of plates with a
//! fake and the real reader is proved on rendered plates.

pub mod image;
pub mod manifest;
pub mod ocr;
pub mod render;

pub use self::image::RgbImage;
pub use manifest::PlateManifest;
pub use ocr::OcrPlateReader;

use crate::detect::ModelError;
use crate::model::plate::PlateRead;

/// What one read of a vehicle's crop found.
#[derive(Debug, Clone, PartialEq)]
pub struct PlateReading {
    /// The plate (normalised and valid) with the reader's confidence, or no text.
    pub read: PlateRead,
    /// Where the plate is in the crop, `[x, y, width, height]` in pixels: the crop kept as
    /// evidence and the region masked in exports. None when no valid plate was read.
    pub region: Option<[u32; 4]>,
    /// Every text line's raw reading, for the log and for diagnosing misses.
    pub lines: Vec<String>,
}

/// Reads a plate from a vehicle's crop: the OCR models live, a fake in tests of the stages.
pub trait PlateReader: Send + Sync {
    fn read(&self, crop: &RgbImage) -> Result<PlateReading, ModelError>;
}
