//! Stage 1, ingest: cameras (RTSP, recorded files) through GStreamer to sampled RGB frames.
//!
//! - [`pipeline`]: the GStreamer pipeline of one camera;
//! - [`sampler`]: per-camera analysis rate and keyframe-only decoding, applied inside it;
//! - [`camera`]: the camera thread: reconnects, backoff, watchdog, health;
//! - [`shed`]: fair shedding of due frames, before decoding, while analysis is behind;
//! - [`queue`]: the bounded hand-off to analysis and its policy when full;
//! - [`health`]: per-camera state and counters.

pub mod camera;
pub mod error;
pub mod frame;
pub use crate::model::health;
pub mod pipeline;
pub mod queue;
pub mod ring;
pub mod rtpstamp;
pub mod sampler;
pub mod shed;
pub mod still;

pub use crate::core::{Backoff, BackoffPolicy};
pub use camera::{
    CameraHandle, CameraThread, GstOpener, Opener, Pulled, Session, Waiter, spawn_camera,
    spawn_camera_with, spawn_camera_with_ring,
};
pub use error::{IngestError, IngestErrorKind};
pub use frame::{CameraId, Frame, FrameData};
pub use health::{CameraHealth, CameraStatus, HealthBoard, HealthState};
pub use queue::{FrameReceiver, FullPolicy};

use std::future::Future;

/// Where analysis gets frames from: a real camera, or a fake in tests of later stages.
pub trait FrameSource: Send {
    fn camera(&self) -> &str;
    /// The next frame, or `None` when the source has ended for good.
    fn next_frame(&mut self) -> impl Future<Output = Option<Frame>> + Send;
}
