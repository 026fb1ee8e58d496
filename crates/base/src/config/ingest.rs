//! `[ingest]`: defaults every camera inherits (fps, width, transport, keyframes, watchdog), and their validation.

use super::*;

/// `[ingest]`: defaults for every camera; some can be overridden per camera.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestDefaults {
    /// Width in pixels of the RGB frames handed to analysis. Default 640.
    pub analysis_width: u32,
    /// Restart a stream that delivers no frame for this many seconds. Default 10.
    pub watchdog_s: f64,
    /// How long a (re)connection may take before its first frame. Default 15.
    pub connect_timeout_s: f64,
    /// First reconnect delay. Default 0.5.
    pub backoff_initial_s: f64,
    /// Longest reconnect delay. Default 30.
    pub backoff_max_s: f64,
    /// Growth factor of the delay per failed attempt. Default 2.
    pub backoff_multiplier: f64,
    /// Random spread of each delay, as a fraction (0.2 = ±20%). Default 0.2.
    pub backoff_jitter: f64,
    /// Frames buffered between a camera and analysis. Default 4.
    pub queue_frames: usize,
    /// RTSP jitter-buffer latency in milliseconds. Default 200.
    pub rtsp_latency_ms: u32,
    /// Over TCP, keep rtpbin's jitter buffer (a thread per camera that every packet passes
    /// through) instead of stamping packets on the reading thread. Default false.
    pub tcp_jitter_buffer: bool,
    /// While analysis cannot keep up with every live camera, thin each camera's due frames
    /// by the same share, before decoding where the stream allows (fair shedding), instead
    /// of decoding frames that are then dropped. Default true.
    pub shed: bool,
}

impl Default for IngestDefaults {
    fn default() -> Self {
        Self {
            analysis_width: 640,
            watchdog_s: 10.0,
            connect_timeout_s: 15.0,
            backoff_initial_s: 0.5,
            backoff_max_s: 30.0,
            backoff_multiplier: 2.0,
            backoff_jitter: 0.2,
            queue_frames: 4,
            rtsp_latency_ms: 200,
            tcp_jitter_buffer: false,
            shed: true,
        }
    }
}

/// When to decode keyframes only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyframeMode {
    /// Keyframes only when the analysis rate is at or below the stream's keyframe rate.
    #[default]
    Auto,
    On,
    Off,
}

/// RTSP lower transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    #[default]
    Tcp,
    Udp,
}

pub(crate) fn validate_ingest(i: &IngestDefaults, problems: &mut Vec<ConfigProblem>) {
    validate_width("ingest.analysis_width", i.analysis_width, problems);
    positive("ingest.watchdog_s", i.watchdog_s, problems);
    positive("ingest.connect_timeout_s", i.connect_timeout_s, problems);
    positive("ingest.backoff_initial_s", i.backoff_initial_s, problems);
    positive("ingest.backoff_max_s", i.backoff_max_s, problems);
    if i.backoff_max_s < i.backoff_initial_s {
        problems.push(ConfigProblem {
            path: "ingest.backoff_max_s".into(),
            message: format!(
                "must be at least backoff_initial_s ({}), got {}",
                i.backoff_initial_s, i.backoff_max_s
            ),
        });
    }
    if !(i.backoff_multiplier >= 1.0 && i.backoff_multiplier <= 10.0) {
        problems.push(ConfigProblem {
            path: "ingest.backoff_multiplier".into(),
            message: format!("must be between 1 and 10, got {}", i.backoff_multiplier),
        });
    }
    if !(0.0..=1.0).contains(&i.backoff_jitter) {
        problems.push(ConfigProblem {
            path: "ingest.backoff_jitter".into(),
            message: format!("must be between 0 and 1, got {}", i.backoff_jitter),
        });
    }
    if !(1..=256).contains(&i.queue_frames) {
        problems.push(ConfigProblem {
            path: "ingest.queue_frames".into(),
            message: format!("must be between 1 and 256, got {}", i.queue_frames),
        });
    }
    if i.rtsp_latency_ms > 10_000 {
        problems.push(ConfigProblem {
            path: "ingest.rtsp_latency_ms".into(),
            message: format!("must be at most 10000, got {}", i.rtsp_latency_ms),
        });
    }
}

/// The slowest and fastest analysis rates: one frame a minute to ten a second.
pub const MIN_ANALYSIS_FPS: f64 = 1.0 / 60.0;

pub const MAX_ANALYSIS_FPS: f64 = 10.0;
