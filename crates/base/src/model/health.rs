//! Per-camera health: a state and counters that other parts can read at any time or await.
//!
//! Each camera publishes its [`CameraHealth`] through a `tokio::sync::watch` channel: the
//! status printer and the web UI read the latest value, tests await a state change.

use std::time::{Duration, SystemTime};

use serde::Serialize;
use tokio::sync::watch;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HealthState {
    /// Building the pipeline and waiting for the first frame.
    Connecting,
    /// Frames are arriving.
    Streaming,
    /// Disconnected; waiting before the next attempt.
    BackingOff,
    /// A fault that retrying soon will not fix (bad credentials, no such stream, no video,
    /// missing or corrupt file). RTSP cameras still retry at the longest backoff delay.
    Failed,
    /// A recorded file played to its end.
    Finished,
    /// Shut down.
    Stopped,
    /// Patrolled: disconnected until its next visit.
    Waiting,
}

impl HealthState {
    pub fn as_str(self) -> &'static str {
        match self {
            HealthState::Connecting => "connecting",
            HealthState::Streaming => "streaming",
            HealthState::BackingOff => "backing_off",
            HealthState::Failed => "failed",
            HealthState::Finished => "finished",
            HealthState::Stopped => "stopped",
            HealthState::Waiting => "waiting",
        }
    }
}

/// What a camera reports about itself. Contains no credentials: the URL is redacted.
#[derive(Debug, Clone, Serialize)]
pub struct CameraHealth {
    pub id: String,
    pub name: String,
    pub url: String,
    pub state: HealthState,
    /// When the current state began.
    #[serde(with = "unix_secs")]
    pub since: SystemTime,
    /// Pipelines rebuilt after a disconnect, error or watchdog.
    pub reconnects: u64,
    /// Frames handed to analysis.
    pub frames: u64,
    /// Frames dropped because analysis was not keeping up (live cameras only).
    pub frames_dropped: u64,
    /// Due frames shed, before decoding where the stream allows, while analysis was behind
    /// (fair shedding; live cameras only).
    pub frames_shed: u64,
    /// Shedding now: analysis cannot keep up with every camera, and this one's frames are
    /// thinned (the status shows the camera `degraded`).
    pub degraded: bool,
    /// Watchdog restarts: streams that went silent.
    pub watchdog_restarts: u64,
    pub last_error: Option<String>,
    #[serde(with = "unix_secs_opt")]
    pub last_frame_at: Option<SystemTime>,
    /// Whether the pipeline is currently decoding keyframes only.
    pub keyframe_only: bool,
    /// The RTP transport of the session streaming now or last (`tcp` or `udp`), as it was
    /// asked for and accepted: after a server refused one transport, the other. None for
    /// files and before the first frame.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub transport: Option<String>,
    /// Delay before the next attempt, while backing off or failed.
    pub retry_in_s: Option<f64>,
}

impl CameraHealth {
    pub fn new(id: &str, name: &str, url: String, now: SystemTime) -> Self {
        Self {
            id: id.to_string(),
            name: name.to_string(),
            url,
            state: HealthState::Connecting,
            since: now,
            reconnects: 0,
            frames: 0,
            frames_dropped: 0,
            frames_shed: 0,
            degraded: false,
            watchdog_restarts: 0,
            last_error: None,
            last_frame_at: None,
            keyframe_only: false,
            transport: None,
            retry_in_s: None,
        }
    }

    /// Age of the last frame at `now`.
    pub fn last_frame_age(&self, now: SystemTime) -> Option<Duration> {
        self.last_frame_at
            .map(|t| now.duration_since(t).unwrap_or_default())
    }

    /// The state as the status output and the cameras page show it: a streaming camera that
    /// is shedding frames is `degraded`.
    pub fn shown_state(&self) -> &'static str {
        if self.state == HealthState::Streaming && self.degraded {
            "degraded"
        } else {
            self.state.as_str()
        }
    }

    pub fn set_state(&mut self, state: HealthState, now: SystemTime) {
        if self.state != state {
            self.state = state;
            self.since = now;
        }
    }
}

/// A status snapshot line for `citywatch run`'s periodic report.
#[derive(Debug, Clone, Serialize)]
pub struct CameraStatus {
    #[serde(flatten)]
    pub health: CameraHealth,
    pub last_frame_age_s: Option<f64>,
}

/// Read access to every camera's health. Clones share one list: a worker adds the cameras
/// it takes and removes those it gives back, and the web UI sees the change.
#[derive(Clone, Default)]
pub struct HealthBoard {
    cameras: std::sync::Arc<parking_lot::Mutex<Vec<watch::Receiver<CameraHealth>>>>,
}

impl HealthBoard {
    pub fn add(&self, rx: watch::Receiver<CameraHealth>) {
        let mut cams = self.cameras.lock();
        let id = rx.borrow().id.clone();
        cams.retain(|c| c.borrow().id != id);
        cams.push(rx);
    }

    /// Forgets a camera (a worker gave it back).
    pub fn remove(&self, id: &str) {
        self.cameras.lock().retain(|c| c.borrow().id != id);
    }

    pub fn snapshot(&self, now: SystemTime) -> Vec<CameraStatus> {
        self.cameras
            .lock()
            .iter()
            .map(|rx| {
                let health = rx.borrow().clone();
                let last_frame_age_s = health.last_frame_age(now).map(|d| d.as_secs_f64());
                CameraStatus {
                    health,
                    last_frame_age_s,
                }
            })
            .collect()
    }
}

mod unix_secs {
    use serde::Serializer;
    use std::time::SystemTime;

    pub fn serialize<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
        let secs = crate::core::to_unix(*t);
        s.serialize_f64((secs * 1000.0).round() / 1000.0)
    }
}

mod unix_secs_opt {
    use serde::Serializer;
    use std::time::SystemTime;

    pub fn serialize<S: Serializer>(t: &Option<SystemTime>, s: S) -> Result<S::Ok, S::Error> {
        match t {
            Some(t) => super::unix_secs::serialize(t, s),
            None => s.serialize_none(),
        }
    }
}
