//! What the running pipeline shows of itself and takes from outside, as plain shared
//! boards: each camera's analysis counters and latest frame, the detector's latency, the
//! filing stage's counters, the patrol's and the worker's state, and the operators' scene
//! commands. The stages write them; the status output, the web UI and metrics read them,
//! so those need nothing of GStreamer or ONNX Runtime.

use parking_lot::Mutex;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::BBox;
use super::fixture::Fixture;

/// What an operator asks of a camera's scene memory, from the web UI.
#[derive(Debug, Clone, PartialEq)]
pub enum SceneCommand {
    /// This box is a fixture (the camera page, or a 固定设施 rejection).
    AddFixture { label: String, bbox: BBox },
    /// The fixtures this box lies on are not fixtures.
    RemoveFixtures { bbox: BBox },
    /// An operator's answer to the proposed fixtures this box lies on: accepted ones become
    /// fixtures, dismissed ones are not proposed again.
    AnswerProposed { bbox: BBox, accept: bool },
    /// The bin zone is clean now: its reference becomes the next frame's view of it.
    MarkClean { zone: String },
    /// An admin drew the zone anew on the camera's picture (or reset it to the config's):
    /// the rules use this polygon from the next frame.
    SetZone {
        zone: String,
        polygon: super::zones::Polygon,
    },
    /// An admin removed a mask drawn on the picture: the rules stop using it from the next
    /// frame.
    RemoveZone { zone: String },
    /// An admin says the camera's view now is its view (re-aimed on purpose, or a reference
    /// taken from a bad picture): the reference views are dropped, the camera is on view,
    /// and its next steady view becomes the reference.
    TakeView,
}

/// Between the web UI and the running cameras: commands waiting for each camera's next
/// analysed frame, and each camera's fixtures as last published. A camera that is not
/// running (patrolled and between visits) takes its commands at its next visit.
#[derive(Clone, Default)]
pub struct SceneDesk(
    std::sync::Arc<parking_lot::Mutex<std::collections::HashMap<String, DeskEntry>>>,
);

#[derive(Default)]
struct DeskEntry {
    pending: Vec<SceneCommand>,
    fixtures: Vec<Fixture>,
    proposed: Vec<Fixture>,
}

impl SceneDesk {
    pub fn send(&self, camera: &str, cmd: SceneCommand) {
        self.0
            .lock()
            .entry(camera.to_string())
            .or_default()
            .pending
            .push(cmd);
    }

    /// A camera's fixtures as its analysis last published them.
    pub fn fixtures(&self, camera: &str) -> Vec<Fixture> {
        self.0
            .lock()
            .get(camera)
            .map(|e| e.fixtures.clone())
            .unwrap_or_default()
    }

    /// The fixtures a camera proposes (found at its first look, or standing for days), as
    /// its analysis last published them.
    pub fn proposed(&self, camera: &str) -> Vec<Fixture> {
        self.0
            .lock()
            .get(camera)
            .map(|e| e.proposed.clone())
            .unwrap_or_default()
    }

    /// The commands waiting for a camera (the camera page shows them as pending).
    pub fn pending(&self, camera: &str) -> Vec<SceneCommand> {
        self.0
            .lock()
            .get(camera)
            .map(|e| e.pending.clone())
            .unwrap_or_default()
    }

    /// Takes the commands waiting for a camera (its analysis, at its next frame).
    pub fn take(&self, camera: &str) -> Vec<SceneCommand> {
        self.0
            .lock()
            .get_mut(camera)
            .map(|e| std::mem::take(&mut e.pending))
            .unwrap_or_default()
    }

    /// Publishes a camera's fixtures and the ones it proposes (its analysis, after each
    /// change).
    pub fn publish(&self, camera: &str, fixtures: &[Fixture], proposed: &[Fixture]) {
        let mut m = self.0.lock();
        let e = m.entry(camera.to_string()).or_default();
        if e.fixtures != fixtures {
            e.fixtures = fixtures.to_vec();
        }
        if e.proposed != proposed {
            e.proposed = proposed.to_vec();
        }
    }
}

/// Counters of one camera's analysis.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct AnalysisStatus {
    pub inferences: u64,
    pub reused: u64,
    /// Of `reused`: frames the gate wanted to run that the global budget refused.
    pub over_budget: u64,
    pub detect_errors: u64,
    /// The detector's last try on this camera failed: frames are unjudged, episodes held.
    pub detector_down: bool,
    /// Detections in the latest analysed frame.
    pub objects: usize,
    pub open_episodes: usize,
    /// Of `open_episodes`: those in one of the camera's rule zones, of a kind a rule judges.
    pub watched_episodes: usize,
    pub captures: u64,
    pub suppressed: u64,
    /// Of `suppressed`, by reason.
    pub suppressed_duplicate: u64,
    pub suppressed_rate_limit: u64,
    pub suppressed_outside_hours: u64,
    pub suppressed_aggregated: u64,
    pub suppressed_expired: u64,
    /// Learned suppressions: candidates that resembled a rejected capture.
    pub suppressed_resembles_rejected: u64,
    /// Candidates waiting for a token now.
    pub deferred: usize,
    /// The camera is off the view its zones were drawn for: rules paused.
    pub off_view: bool,
    /// Fixtures the camera knows (benches, a shop's chairs).
    pub fixtures: usize,
    /// Fixtures the camera proposes, waiting for an operator's answer.
    pub proposed_fixtures: usize,
    /// Open episodes evicted because the camera had too many open.
    pub evicted_episodes: u64,
    /// Saved states set aside as unreadable at start (0 or 1): the camera started fresh.
    pub states_quarantined: u64,
    /// Frames the detector ran on, and frames that reused detections, in the last minute of
    /// stream time.
    pub analysed_per_min: u32,
    pub reused_per_min: u32,
    /// Plate reads of standing vehicles taken, those that found a valid plate, those that
    /// failed, and the milliseconds they took in all.
    pub plate_reads: u64,
    pub plates_read: u64,
    pub plate_errors: u64,
    pub plate_read_ms: u64,
}

/// Every camera's analysis counters, by camera id.
pub type AnalysisBoard = Arc<Mutex<BTreeMap<String, AnalysisStatus>>>;

/// Each camera's latest frame as JPEG, with its time (Unix seconds): the cameras page.
pub type LatestFrames = Arc<Mutex<BTreeMap<String, (Arc<Vec<u8>>, f64)>>>;

/// Upper bounds (seconds) of the inference latency histogram's buckets.
pub const LATENCY_BUCKETS: [f64; 10] = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];

/// How long each batch took in the detector (`session.run` with its pre- and
/// post-processing), as a cumulative histogram.
#[derive(Debug, Default)]
pub struct Latency {
    buckets: [std::sync::atomic::AtomicU64; LATENCY_BUCKETS.len()],
    count: std::sync::atomic::AtomicU64,
    sum_us: std::sync::atomic::AtomicU64,
}

impl Latency {
    pub fn record(&self, d: Duration) {
        use std::sync::atomic::Ordering::Relaxed;
        let s = d.as_secs_f64();
        for (b, le) in self.buckets.iter().zip(LATENCY_BUCKETS) {
            if s <= le {
                b.fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        self.sum_us.fetch_add(d.as_micros() as u64, Relaxed);
    }

    /// (cumulative count per bucket, count, sum in seconds).
    pub fn snapshot(&self) -> (Vec<u64>, u64, f64) {
        use std::sync::atomic::Ordering::Relaxed;
        (
            self.buckets.iter().map(|b| b.load(Relaxed)).collect(),
            self.count.load(Relaxed),
            self.sum_us.load(Relaxed) as f64 / 1e6,
        )
    }
}

/// Counters of the filing stage, for the status output and metrics.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct FilingStatus {
    /// Packages being built (waiting for the clip's end, or retrying a write).
    pub evidence_pending: usize,
    pub evidence_written: u64,
    pub evidence_errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_evidence_error: Option<String>,
    /// Captures in the persistent queue, waiting for the database.
    pub queued: usize,
    /// Captures refused because the queue was full.
    pub queue_dropped: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_queue_error: Option<String>,
    pub db_errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_db_error: Option<String>,
    /// Captures written to the database by this process.
    pub stored: u64,
    /// Captures held in memory because the queue's disk refused them; written to the queue
    /// as soon as it takes them again.
    pub held: usize,
    /// Why captures cannot be filed now (a full or read-only disk), while they wait.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub blocked: Option<FilingBlocked>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retention: Option<Sweep>,
}

/// Captures wait because a disk refuses them: which disk, why, and since when.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FilingBlocked {
    /// `evidence` (the evidence root) or `queue` (the capture queue's folder).
    pub place: &'static str,
    pub reason: BlockReason,
    /// Unix seconds.
    pub since: f64,
}

/// What a refusing disk said.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockReason {
    DiskFull,
    ReadOnly,
    NoPermission,
    IoError,
}

impl BlockReason {
    pub fn of(e: &std::io::Error) -> Self {
        use std::io::ErrorKind as K;
        match e.kind() {
            K::StorageFull | K::QuotaExceeded => Self::DiskFull,
            K::ReadOnlyFilesystem => Self::ReadOnly,
            K::PermissionDenied => Self::NoPermission,
            _ => Self::IoError,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::DiskFull => "disk_full",
            Self::ReadOnly => "read_only",
            Self::NoPermission => "no_permission",
            Self::IoError => "io_error",
        }
    }
}

/// What one sweep found and did.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sweep {
    pub packages: usize,
    pub deleted: usize,
    pub deleted_bytes: u64,
    /// Packages past their age or over the quota that were kept: their case is not closed.
    pub kept_open: usize,
    pub used_bytes: u64,
    pub quota_bytes: u64,
    /// Usage is at or over `alert_ratio` of the quota after the sweep.
    pub quota_alert: bool,
    pub errors: Vec<String>,
}

/// Per-camera patrol figures.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct CameraPatrol {
    pub visiting: bool,
    pub visits: u64,
    /// Start of the latest visit (scheduler time).
    pub last_start: Option<f64>,
    /// Longest time between two visit starts so far.
    pub max_gap_s: f64,
    /// Visits that began later than their revisit period allowed.
    pub late_visits: u64,
    /// Whether the camera had open episodes at the last look.
    pub hot: bool,
}

/// Whether a platform's cap allows every camera its revisit period.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct PlatformLoad {
    pub platform: String,
    pub cap: usize,
    pub cameras: usize,
    pub continuous: usize,
    /// Concurrent pulls needed on average: continuous cameras plus Σ visit / revisit.
    pub demand: f64,
    pub feasible: bool,
    /// With every patrolled camera visited in turn on the slots left: how long a round takes.
    pub round_s: f64,
}

/// What the patrol is doing: per platform load, per camera visits.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PatrolStatus {
    pub platforms: Vec<PlatformLoad>,
    pub cameras: BTreeMap<String, CameraPatrol>,
}

pub type PatrolBoard = Arc<Mutex<PatrolStatus>>;

/// What this worker is doing, for the status output, the web UI and metrics.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct WorkerStatus {
    pub id: String,
    pub live_workers: usize,
    /// This worker's fair share of the cameras.
    pub share: usize,
    pub cameras: Vec<String>,
    pub jobs: Vec<String>,
    /// Leases taken (including takeovers), given back on rebalance, and lost to another
    /// worker, since start.
    pub taken: u64,
    pub given_back: u64,
    pub lost: u64,
    /// Patrolled cameras this worker is visiting now (`[patrol]`), and visits made.
    pub visits: Vec<String>,
    pub visits_made: u64,
    /// Heartbeats that failed (database unreachable).
    pub round_errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

pub type WorkerBoard = Arc<Mutex<WorkerStatus>>;

/// The filing stage as others drive it: its counters, and a nudge to look at the store's
/// queue again (after operators requeued dead letters).
pub trait FilingControl: Send + Sync {
    fn status(&self) -> FilingStatus;
    /// The status as last published, without counting the queue on disk (every page's
    /// notice reads it).
    fn published(&self) -> FilingStatus {
        self.status()
    }
    fn wake(&self);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The boards are parking_lot locks: a thread that panics while holding one leaves it
    /// usable for every other reader and writer (std's locks would be poisoned, and every
    /// later `.lock().expect(…)` would panic too).
    #[test]
    fn a_panic_while_a_board_is_held_leaves_it_usable() {
        let board: LatestFrames = Default::default();
        let held = board.clone();
        let r = std::thread::spawn(move || {
            let mut g = held.lock();
            g.insert("cam".into(), (Arc::new(vec![1]), 1.0));
            panic!("a stage fails while holding the board");
        })
        .join();
        assert!(r.is_err());
        board.lock().insert("cam2".into(), (Arc::new(vec![2]), 2.0));
        assert_eq!(board.lock().len(), 2);
    }
}
