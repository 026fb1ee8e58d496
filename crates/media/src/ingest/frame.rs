//! A decoded analysis frame: packed RGB at the camera's analysis size.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A camera's id, cheap to clone into every frame.
pub type CameraId = Arc<str>;

/// The pixels of a frame: GStreamer's own buffer (no copy) or an owned vector (fakes, tests).
pub enum FrameData {
    Gst(gstreamer::MappedBuffer<gstreamer::buffer::Readable>),
    Owned(Vec<u8>),
}

impl FrameData {
    fn bytes(&self) -> &[u8] {
        match self {
            FrameData::Gst(m) => m.as_slice(),
            FrameData::Owned(v) => v,
        }
    }
}

/// One frame handed from ingest to analysis.
pub struct Frame {
    pub camera: CameraId,
    /// Counts delivered frames per camera, from 0, across reconnects.
    pub seq: u64,
    /// Stream time (presentation timestamp). For looped files it keeps growing across loops.
    pub pts: Option<Duration>,
    /// Wall-clock time when the frame reached the application, from the injected clock.
    pub wall: SystemTime,
    /// Whether the decoder produced this frame from a keyframe.
    pub keyframe: bool,
    pub width: u32,
    pub height: u32,
    /// Bytes per row; at least `width * 3`.
    pub stride: usize,
    data: FrameData,
}

impl Frame {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        camera: CameraId,
        seq: u64,
        pts: Option<Duration>,
        wall: SystemTime,
        keyframe: bool,
        width: u32,
        height: u32,
        stride: usize,
        data: FrameData,
    ) -> Self {
        assert!(stride >= width as usize * 3, "stride shorter than a row");
        assert!(
            data.bytes().len() >= stride * (height as usize).saturating_sub(1) + width as usize * 3,
            "frame data shorter than its size"
        );
        Self {
            camera,
            seq,
            pts,
            wall,
            keyframe,
            width,
            height,
            stride,
            data,
        }
    }

    /// A packed RGB frame from owned bytes (for fakes and tests).
    pub fn from_rgb(camera: CameraId, width: u32, height: u32, rgb: Vec<u8>) -> Self {
        Self::new(
            camera,
            0,
            None,
            SystemTime::UNIX_EPOCH,
            true,
            width,
            height,
            width as usize * 3,
            FrameData::Owned(rgb),
        )
    }

    /// Row `y` as packed RGB, `width * 3` bytes.
    pub fn row(&self, y: u32) -> &[u8] {
        let start = y as usize * self.stride;
        &self.data.bytes()[start..start + self.width as usize * 3]
    }

    /// The whole frame, including any row padding (`stride` bytes per row).
    pub fn raw(&self) -> &[u8] {
        self.data.bytes()
    }

    /// The frame as tightly packed RGB (copies only when rows are padded).
    pub fn to_packed_rgb(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.width as usize * self.height as usize * 3);
        for y in 0..self.height {
            out.extend_from_slice(self.row(y));
        }
        out
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("camera", &self.camera)
            .field("seq", &self.seq)
            .field("pts", &self.pts)
            .field("keyframe", &self.keyframe)
            .field("width", &self.width)
            .field("height", &self.height)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_skip_padding() {
        // 2x2 RGB with a stride of 8 (2 bytes of padding per row).
        let data = vec![1, 2, 3, 4, 5, 6, 0, 0, 7, 8, 9, 10, 11, 12, 0, 0];
        let f = Frame::new(
            "c".into(),
            0,
            None,
            SystemTime::UNIX_EPOCH,
            true,
            2,
            2,
            8,
            FrameData::Owned(data),
        );
        assert_eq!(f.row(1), &[7, 8, 9, 10, 11, 12]);
        assert_eq!(f.to_packed_rgb(), (1..=12).collect::<Vec<u8>>());
    }
}
