//! The pipeline config (`pipelines/*.toml`): strict parsing and up-front validation.
//!
//! Every problem names its field path (`cameras[2].url: ...`), and all problems are
//! reported at once. Unknown fields are errors. `docs/config.md` lists every field with
//! its default; keep it in step with this file.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::core::redact_url;
use crate::model::BBox;
use crate::model::categories::CategoryTable;
use crate::model::zones::{ActiveHours, Polygon, ZoneKind, parse_utc_offset};
pub use crate::model::{FilingMode, Location, RuleKind};

/// The whole pipeline config.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    pub settings: Settings,
    pub ingest: IngestDefaults,
    /// Detection; absent means ingest only.
    pub detect: Option<DetectSettings>,
    pub gate: GateSettings,
    pub episodes: EpisodeSettings,
    pub view: ViewSettings,
    pub limits: LimitSettings,
    pub learning: LearnSettings,
    pub replay: ReplaySettings,
    /// Case filing; absent means captures are printed and logged only.
    pub cases: Option<CasesSettings>,
    /// Evidence packages; absent means captures carry no evidence files.
    pub evidence: Option<EvidenceSettings>,
    /// The review UI and API; absent means no HTTP server.
    pub web: Option<WebSettings>,
    /// Patrol under a stream cap; absent means every camera streams continuously.
    pub patrol: Option<PatrolSettings>,
    /// Camera leases for `citywatch run --worker`; defaults apply when absent.
    pub workers: WorkerSettings,
    pub cameras: Vec<CameraConfig>,
}

/// `[workers]`: camera leases when several `citywatch run --worker` processes share one
/// database.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WorkerSettings {
    /// A lease (and a worker's heartbeat) lasts this long unless renewed. A dead worker's
    /// cameras move after at most `lease_ttl_s + heartbeat_s`. Default 15 s.
    pub lease_ttl_s: f64,
    /// How often a worker renews its leases and rebalances. Default 5 s; at most a third of
    /// `lease_ttl_s`, so one late heartbeat does not lose the leases.
    pub heartbeat_s: f64,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            lease_ttl_s: 15.0,
            heartbeat_s: 5.0,
        }
    }
}

/// `[patrol]`: visiting cameras in turn under each video platform's cap on concurrent pulls.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatrolSettings {
    /// Most concurrent stream pulls per platform; every camera's `platform` must be listed.
    pub caps: std::collections::BTreeMap<String, usize>,
    /// Default visit length. Default 20 s.
    #[serde(default = "default_visit_s")]
    pub visit_s: f64,
    /// Default revisit period (from one visit's start to the next). Default 300 s.
    #[serde(default = "default_revisit_s")]
    pub revisit_s: f64,
    /// Cameras with open episodes are due after `revisit_s / hot_factor`. Default 3.
    #[serde(default = "default_hot_factor")]
    pub hot_factor: f64,
}

fn default_visit_s() -> f64 {
    20.0
}

fn default_revisit_s() -> f64 {
    300.0
}

fn default_hot_factor() -> f64 {
    3.0
}

/// `[evidence]`: evidence packages, their clips and their retention.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvidenceSettings {
    /// The storage root, relative to the config file.
    pub root: PathBuf,
    /// Clip seconds before and after the confirmation.
    #[serde(default = "default_clip_s")]
    pub pre_s: f64,
    #[serde(default = "default_clip_s")]
    pub post_s: f64,
    /// Most memory one camera's encoded-stream ring may hold, in MiB.
    #[serde(default = "default_ring_mb")]
    pub ring_mb: u64,
    /// Finished packages (rejected, or case closed) older than this are deleted.
    #[serde(default = "default_max_age_days")]
    pub max_age_days: f64,
    /// A closed case's evidence is kept this many days after its closure before it is
    /// finished (and the age limit and the quota may take it). Open and reopened cases'
    /// evidence is never finished. Default 30.
    #[serde(default = "default_closed_keep_days")]
    pub closed_keep_days: f64,
    /// Disk quota of the root, in GiB.
    #[serde(default = "default_quota_gb")]
    pub quota_gb: f64,
    /// Share of the quota at which the quota alert is raised.
    #[serde(default = "default_alert_ratio")]
    pub alert_ratio: f64,
    /// How often retention runs, in seconds.
    #[serde(default = "default_sweep_s")]
    pub sweep_interval_s: f64,
    /// A CJK font file for the watermark; default: Debian's WenQuanYi Micro Hei.
    #[serde(default)]
    pub font: Option<PathBuf>,
    /// Base URL under which the storage root is served; evidence references in cases and
    /// webhooks become URLs under it. Default: references are root-relative paths.
    #[serde(default)]
    pub url_base: Option<String>,
    /// Put the JPEG images into webhook payloads as base64 too.
    #[serde(default)]
    pub embed_images: bool,
}

/// `[web]`: the operators' review UI, the JSON API and `/metrics`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSettings {
    /// Address to listen on. Default 127.0.0.1:8080.
    #[serde(default = "default_listen")]
    pub listen: String,
    /// Session lifetime, in hours.
    #[serde(default = "default_session_h")]
    pub session_hours: f64,
    /// Failed logins allowed per user name and client address in 15 minutes.
    #[serde(default = "default_login_attempts")]
    pub login_attempts: u32,
    /// A session unused this long ends, in minutes. Default 30.
    #[serde(default = "default_idle_min")]
    pub session_idle_minutes: f64,
    /// TLS: a PEM certificate chain and its PEM private key, relative to the config file.
    /// Both or neither. Default: plain HTTP.
    #[serde(default)]
    pub tls_cert: Option<PathBuf>,
    #[serde(default)]
    pub tls_key: Option<PathBuf>,
    /// The UI is reached through an HTTPS reverse proxy: cookies are `Secure` and HSTS is
    /// sent, as with `tls_cert`. Default false.
    #[serde(default)]
    pub behind_https_proxy: bool,
}

impl WebSettings {
    /// Whether browsers reach the UI over HTTPS.
    pub fn https(&self) -> bool {
        self.tls_cert.is_some() || self.behind_https_proxy
    }
}

fn default_idle_min() -> f64 {
    30.0
}

fn default_listen() -> String {
    "127.0.0.1:8080".into()
}
fn default_session_h() -> f64 {
    12.0
}
fn default_login_attempts() -> u32 {
    5
}

fn default_clip_s() -> f64 {
    10.0
}
fn default_ring_mb() -> u64 {
    64
}
fn default_max_age_days() -> f64 {
    90.0
}
fn default_closed_keep_days() -> f64 {
    30.0
}
fn default_quota_gb() -> f64 {
    50.0
}
fn default_alert_ratio() -> f64 {
    0.9
}
fn default_sweep_s() -> f64 {
    600.0
}

fn default_spool() -> PathBuf {
    PathBuf::from("spool")
}

fn default_spool_max() -> usize {
    10_000
}

/// `[cases]`: where captures and cases go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasesSettings {
    /// `sqlite://PATH` (relative to the config file) or `postgres://...`.
    pub database: String,
    /// The per-city category table, relative to the config file.
    #[serde(default = "default_categories")]
    pub categories: PathBuf,
    /// Filing mode per rule: "review" (default) or "auto".
    #[serde(default)]
    pub filing: std::collections::BTreeMap<RuleKind, FilingMode>,
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    /// The persistent queue of captures waiting for the database, relative to the config.
    #[serde(default = "default_spool")]
    pub spool: PathBuf,
    /// Most captures the queue holds; beyond it new captures are dropped and counted.
    #[serde(default = "default_spool_max")]
    pub spool_max: usize,
    /// The reporting time zone, as a UTC offset: case numbers' days, the date filters and
    /// every time the review UI shows. Default "+08:00".
    #[serde(default = "default_report_timezone")]
    pub timezone: String,
    /// `timezone` in seconds east of UTC; set at validation.
    #[serde(skip)]
    pub utc_offset_s: i32,
    /// Loaded at validation: a config that passed validation always has it.
    #[serde(skip)]
    pub table: std::sync::Arc<CategoryTable>,
    /// Deadlines: the working calendar and reminders.
    #[serde(default)]
    pub deadlines: DeadlineSettings,
    /// Progress reports from the city platform (callbacks, polling); absent: none.
    #[serde(default)]
    pub platform: Option<PlatformSettings>,
    /// The closure check (核实) of cases reported handled.
    #[serde(default)]
    pub closure: ClosureSettings,
    /// Built at validation from `deadlines`.
    #[serde(skip)]
    pub calendar: std::sync::Arc<crate::cases::WorkCalendar>,
}

/// `[cases.deadlines]`: 处置时限 as deadlines on the city's working calendar.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeadlineSettings {
    /// A calendar file of holidays and make-up workdays, relative to the config file.
    /// Default: none (Monday to Friday are working days).
    pub calendar: Option<PathBuf>,
    /// The working day, local time (the reporting time zone). Default "09:00" to "17:00".
    pub work_start: String,
    pub work_end: String,
    /// Tell the platform once when a case passes its deadline. Default true.
    pub remind: bool,
    /// How often overdue cases are looked for, in seconds. Default 60.
    pub check_interval_s: f64,
}

impl Default for DeadlineSettings {
    fn default() -> Self {
        Self {
            calendar: None,
            work_start: "09:00".into(),
            work_end: "17:00".into(),
            remind: true,
            check_interval_s: 60.0,
        }
    }
}

/// `[cases.platform]`: how the city platform reports case progress back.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformSettings {
    /// Shared secret of the callbacks' HMAC signature. Never logged.
    pub secret: String,
    /// Largest difference between a callback's timestamp and now, in seconds. Default 300.
    #[serde(default = "default_max_skew")]
    pub max_skew_s: f64,
    /// For platforms that cannot call back: a URL to GET each open case's status from, with
    /// `{case_number}` in it. Default: none.
    #[serde(default)]
    pub poll_url: Option<String>,
    /// Seconds between polling rounds. Default 300.
    #[serde(default = "default_poll_interval")]
    pub poll_interval_s: f64,
    /// Seconds one poll may take. Default 10.
    #[serde(default = "timeout")]
    pub poll_timeout_s: f64,
}

impl std::fmt::Debug for PlatformSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformSettings")
            .field("secret", &"***")
            .field("max_skew_s", &self.max_skew_s)
            .field("poll_url", &self.poll_url.as_deref().map(redact_url))
            .finish_non_exhaustive()
    }
}

fn default_max_skew() -> f64 {
    300.0
}
fn default_poll_interval() -> f64 {
    300.0
}

/// `[cases.closure]`: the closure check (核实) of a case the platform reports handled.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClosureSettings {
    /// Whether citywatch checks the place itself. Default true; false hands every handled
    /// case to a person.
    pub enabled: bool,
    /// Seconds after the report before the check starts looking. Default 0.
    pub delay_s: f64,
    /// How long one look lasts at most, in seconds of frames. Default 300.
    pub window_s: f64,
    /// The place must be seen clear this long without a break to close the case. Default 60.
    pub clear_s: f64,
    /// After a look that could not judge the place (dark, occluded, off view), the next one
    /// starts this much later, in seconds. Default 900.
    pub retry_s: f64,
    /// Looks that could not judge before the case is handed to a person. Default 3.
    pub max_attempts: u32,
}

impl Default for ClosureSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            delay_s: 0.0,
            window_s: 300.0,
            clear_s: 60.0,
            retry_s: 900.0,
            max_attempts: 3,
        }
    }
}

/// `[cases.webhook]`: where filed cases are sent.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// Shared secret for the signature. Never logged.
    pub secret: String,
    #[serde(default = "attempts")]
    pub max_attempts: u32,
    #[serde(default = "initial")]
    pub backoff_initial_s: f64,
    #[serde(default = "max_backoff")]
    pub backoff_max_s: f64,
    #[serde(default = "timeout")]
    pub timeout_s: f64,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &crate::core::redact_url(&self.url))
            .field("secret", &"***")
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

fn attempts() -> u32 {
    10
}
fn initial() -> f64 {
    1.0
}
fn max_backoff() -> f64 {
    300.0
}
fn timeout() -> f64 {
    10.0
}

fn default_report_timezone() -> String {
    crate::cases::DEFAULT_TIMEZONE.into()
}

fn default_categories() -> PathBuf {
    PathBuf::from("categories/default.toml")
}

impl CasesSettings {
    /// The case policy: the category table and the reporting time zone.
    pub fn policy(&self) -> crate::cases::CasePolicy {
        crate::cases::CasePolicy::new(self.table.clone(), self.utc_offset_s)
            .with_calendar(self.calendar.clone())
    }

    pub fn mode(&self, rule: RuleKind) -> FilingMode {
        self.filing.get(&rule).copied().unwrap_or_default()
    }
}

/// Whether cameras' state survives a restart (`[episodes] keep`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Keep {
    /// In the case database with `[cases]`, else in `state_dir` (default `state` beside
    /// the config).
    #[default]
    Auto,
    /// Forgotten at every stop: a restart starts every dwell again.
    Off,
}

/// The folder a camera's state goes to by default when there is no case database, beside
/// the config file.
pub const DEFAULT_STATE_DIR: &str = "state";

/// `[episodes]`: how detections become stationary-object episodes.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EpisodeSettings {
    /// IoU with an episode's anchor box for a detection to join it. Default 0.4.
    pub iou: f32,
    /// Missed detections and occlusion up to this long keep an episode open. Default 60.
    pub grace_s: f64,
    /// The same for vehicles, which are often hidden by traffic for longer. Default 300.
    pub vehicle_grace_s: f64,
    /// Largest colour-histogram distance (0..1) for a vehicle to count as the same vehicle.
    /// Default 0.35.
    pub signature_distance: f32,
    /// Whether each camera's state (open episodes, fixtures, zone references, the reference
    /// view, deferred candidates) survives a restart. Default `auto`: in the case database
    /// with `[cases]`, else in `state_dir`. `off` forgets it at every stop.
    pub keep: Keep,
    /// Folder where each camera's state is kept across restarts, relative to the config
    /// file. Default: `state` beside the config, when there is no case database.
    pub state_dir: Option<PathBuf>,
    /// Keep each camera's state in the case database's `episodes` table (needs `[cases]`;
    /// not with `state_dir`). Default: true with `[cases]` (unless `state_dir` is set).
    pub in_database: bool,
    /// Analysed frames in a row that must see an episode's place empty (visible, nothing
    /// detected, the object's structure gone) to end it. Default 3.
    pub clear_frames: u32,
    /// Stall parts standing in the first this-many seconds of a camera's first run (no saved
    /// state) are proposed as fixtures, for an operator to accept or dismiss. Default 120.
    pub fixture_learn_s: f64,
    /// Stall parts that stand this long are proposed as fixtures (a kiosk, a shop's
    /// chairs). Default 172800 (two days).
    pub fixture_after_s: f64,
}

impl Default for EpisodeSettings {
    fn default() -> Self {
        Self {
            iou: 0.4,
            grace_s: 60.0,
            vehicle_grace_s: 300.0,
            signature_distance: 0.35,
            keep: Keep::Auto,
            state_dir: None,
            in_database: false,
            clear_frames: 3,
            fixture_learn_s: 120.0,
            fixture_after_s: 172_800.0,
        }
    }
}

/// `[limits]`: per-camera case limits and the global inference budget.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LimitSettings {
    /// Captures per camera per hour (token bucket refill). Default 20.
    pub captures_per_hour: f64,
    /// Captures a camera may file at once before the hourly rate applies. Default 5.
    pub burst: f64,
    /// After a capture closes, the same (camera, preset, rule, place) merges into it for
    /// this long. Default 600.
    pub cooldown_s: f64,
    /// IoU of two places for them to count as the same place. Default 0.3.
    pub place_iou: f32,
    /// Inferences per second shared by all cameras; cameras with open episodes weigh
    /// double. Default: no budget.
    pub inference_fps: Option<f64>,
    /// Candidates the token bucket refused that wait for a token, per camera. When full, a
    /// new one merges into the oldest waiting one of its rule. Default 32.
    pub deferred_max: usize,
    /// A waiting candidate expires after this long (recorded, not filed). Default 3600.
    pub deferred_expiry_s: f64,
}

impl Default for LimitSettings {
    fn default() -> Self {
        Self {
            captures_per_hour: 20.0,
            burst: 5.0,
            cooldown_s: 600.0,
            place_iou: 0.3,
            inference_fps: None,
            deferred_max: 32,
            deferred_expiry_s: 3600.0,
        }
    }
}

/// `[learning]`: the verdict memory (what operators confirmed and rejected, by look).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LearnSettings {
    /// Whether candidates that resemble rejected captures are suppressed. Default true (it
    /// does nothing with a model whose manifest has no `[features]`).
    pub enabled: bool,
    /// Cosine similarity to a rejected capture, at least, for a candidate to resemble it.
    /// Default 0.9.
    pub similarity: f32,
    /// Verdicts remembered per camera, zone and rule; the oldest age out. Default 200.
    pub max_per_zone: usize,
}

impl Default for LearnSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            similarity: 0.9,
            max_per_zone: 200,
        }
    }
}

/// `[cases.deadlines]`, `[cases.platform]` and `[cases.closure]`; builds the calendar.
fn validate_lifecycle(c: &mut CasesSettings, base: &Path, problems: &mut Vec<ConfigProblem>) {
    let mut problem = |path: &str, message: String| {
        problems.push(ConfigProblem {
            path: path.into(),
            message,
        })
    };
    let d = &mut c.deadlines;
    let start = crate::cases::deadline::parse_clock(&d.work_start)
        .map_err(|m| problem("cases.deadlines.work_start", m))
        .ok();
    let end = crate::cases::deadline::parse_clock(&d.work_end)
        .map_err(|m| problem("cases.deadlines.work_end", m))
        .ok();
    if !(d.check_interval_s.is_finite() && d.check_interval_s >= 1.0) {
        problem(
            "cases.deadlines.check_interval_s",
            format!("must be at least 1, got {}", d.check_interval_s),
        );
    }
    if let (Some(start), Some(end)) = (start, end) {
        if end <= start {
            problem(
                "cases.deadlines.work_end",
                format!("must be after work_start ({})", d.work_start),
            );
        } else {
            let cal = crate::cases::WorkCalendar::weekdays(start, end, c.utc_offset_s);
            let cal = match &mut d.calendar {
                Some(p) => {
                    if p.is_relative() {
                        *p = base.join(&*p);
                    }
                    cal.load(p)
                        .map_err(|m| problem("cases.deadlines.calendar", m))
                        .ok()
                }
                None => Some(cal),
            };
            if let Some(cal) = cal {
                c.calendar = std::sync::Arc::new(cal);
            }
        }
    }
    if let Some(p) = &c.platform {
        if p.secret.len() < 16 {
            problem(
                "cases.platform.secret",
                "must be at least 16 characters".into(),
            );
        }
        if !(p.max_skew_s.is_finite() && p.max_skew_s >= 1.0) {
            problem(
                "cases.platform.max_skew_s",
                format!("must be at least 1, got {}", p.max_skew_s),
            );
        }
        if let Some(u) = &p.poll_url
            && (!u.contains("{case_number}") || !u.starts_with("http"))
        {
            problem(
                "cases.platform.poll_url",
                format!(
                    "must be an http(s) URL with {{case_number}} in it, got {:?}",
                    redact_url(u)
                ),
            );
        }
        if !(p.poll_interval_s.is_finite() && p.poll_interval_s >= 1.0) {
            problem(
                "cases.platform.poll_interval_s",
                format!("must be at least 1, got {}", p.poll_interval_s),
            );
        }
    }
    let k = &c.closure;
    for (name, v) in [
        ("delay_s", k.delay_s),
        ("window_s", k.window_s),
        ("clear_s", k.clear_s),
        ("retry_s", k.retry_s),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            problem(
                &format!("cases.closure.{name}"),
                format!("must be 0 or more, got {v}"),
            );
        }
    }
    if k.clear_s > k.window_s {
        problem(
            "cases.closure.clear_s",
            format!("must not be longer than window_s ({})", k.window_s),
        );
    }
    if k.max_attempts == 0 {
        problem("cases.closure.max_attempts", "must be at least 1".into());
    }
}

fn validate_learning(l: &LearnSettings, problems: &mut Vec<ConfigProblem>) {
    if !(l.similarity > 0.0 && l.similarity < 1.0) {
        problems.push(ConfigProblem {
            path: "learning.similarity".into(),
            message: format!("must be above 0 and below 1, got {}", l.similarity),
        });
    }
    if l.max_per_zone == 0 {
        problems.push(ConfigProblem {
            path: "learning.max_per_zone".into(),
            message: "must be at least 1".into(),
        });
    }
}

/// `[view]`: the view-drift guard. Each camera keeps a reference view; when the current view
/// no longer registers to it, rules pause and the camera's health shows `off_view`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ViewSettings {
    /// Whether the guard runs. Default true.
    pub guard: bool,
    /// Largest shift of the view, as a share of the frame's width, that is still the same
    /// view. Default 0.04.
    pub tolerance: f32,
    /// Least edge-map correlation (0..1) for the view to register. Default 0.45.
    pub min_match: f32,
    /// Analysed frames in a row before the camera goes off view or back. Default 3.
    pub frames: u32,
}

impl Default for ViewSettings {
    fn default() -> Self {
        Self {
            guard: true,
            tolerance: 0.04,
            min_match: 0.45,
            frames: 3,
        }
    }
}

/// `[replay]`: how recorded footage maps onto wall time.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ReplaySettings {
    /// Wall time of stream time zero (RFC 3339). Default "2026-01-05T09:00:00+08:00".
    pub start: String,
}

impl Default for ReplaySettings {
    fn default() -> Self {
        Self {
            start: "2026-01-05T09:00:00+08:00".into(),
        }
    }
}

impl ReplaySettings {
    /// Stream time zero as Unix seconds.
    pub fn start_unix(&self) -> Result<f64, String> {
        time::OffsetDateTime::parse(&self.start, &time::format_description::well_known::Rfc3339)
            .map(|t| t.unix_timestamp_nanos() as f64 / 1e9)
            .map_err(|e| format!("cannot parse {:?} as RFC 3339: {e}", self.start))
    }
}

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
        }
    }
}

/// A camera's `gate_scope`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GateScope {
    Zones,
    Frame,
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

/// `[gate]`: scene-change gating before the detector.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GateSettings {
    /// Default true.
    pub enabled: bool,
    /// Brightness change (0..1) of one 32x24 thumbnail cell that counts. Default 0.06.
    pub cell_delta: f32,
    /// Share of cells (0..1) that must change to run the detector. Default 0.01.
    pub changed_share: f32,
    /// Longest reuse of detections without a real inference, in seconds. Default 30.
    pub max_reuse_s: f64,
    /// How far around the rule zones (share of the frame's width and height) the zone-aware
    /// gate looks, and a zone crop reaches. Default 0.08.
    pub zone_margin: f32,
    /// `detect_region = "auto"` crops to the zones when the crop covers at most this share
    /// of the frame's area. Default 0.5.
    pub crop_max_share: f32,
}

impl Default for GateSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            cell_delta: 0.06,
            changed_share: 0.01,
            max_reuse_s: 30.0,
            zone_margin: 0.08,
            crop_max_share: 0.5,
        }
    }
}

/// `[settings]`: process-wide behaviour.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    /// Seconds between camera status reports printed by `citywatch run`. Default 10.
    pub status_interval_s: f64,
    /// Seconds allowed for a clean shutdown before it is forced. Default 5.
    pub shutdown_timeout_s: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            status_interval_s: 10.0,
            shutdown_timeout_s: 5.0,
        }
    }
}

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

/// `[[cameras]]`, as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCamera {
    id: String,
    #[serde(default)]
    name: Option<String>,
    url: String,
    #[serde(default = "default_true")]
    enabled: bool,
    #[serde(default = "default_fps")]
    analysis_fps: f64,
    #[serde(default)]
    analysis_width: Option<u32>,
    #[serde(default)]
    keyframe_only: KeyframeMode,
    #[serde(default)]
    transport: Option<Transport>,
    #[serde(default)]
    realtime: Option<bool>,
    #[serde(default, rename = "loop")]
    looped: Option<bool>,
    #[serde(default)]
    watchdog_s: Option<f64>,
    /// UTC offset of the camera's local time, for active hours. Default "+08:00".
    #[serde(default)]
    timezone: Option<String>,
    /// The PTZ preset the camera watches; zones with a preset apply only to it.
    #[serde(default)]
    preset: Option<u32>,
    /// Recorded footage of this camera (file://), which `citywatch replay` plays instead
    /// of connecting to the live URL.
    #[serde(default)]
    footage: Option<String>,
    /// Where the camera (or its preset) looks: for cases.
    #[serde(default)]
    location: Location,
    /// The video platform the stream is pulled from (its cap applies). Default "default".
    #[serde(default)]
    platform: Option<String>,
    /// With [patrol]: stay connected instead of being visited in turn.
    #[serde(default)]
    continuous: bool,
    /// With [patrol]: this camera's visit length and revisit period.
    #[serde(default)]
    visit_s: Option<f64>,
    #[serde(default)]
    revisit_s: Option<f64>,
    /// Zones whose bounds the detector also runs on, for objects too small in the whole
    /// frame (a stall 20 m away). Each costs one more inference per analysed frame. Absent:
    /// the camera decides itself where to look closer (`detect::closer`); `[]`: nowhere.
    #[serde(default)]
    detect_crops: Option<Vec<String>>,
    /// Each crop is cut into this many tiles per side (overlapping by a quarter), so small
    /// objects reach the detector larger. Default 1.
    #[serde(default)]
    detect_crop_grid: Option<u32>,
    /// What the scene gate compares: "zones" (the rule zones and a margin: motion elsewhere
    /// does not force an inference) or "frame". Default "zones"; a camera without zones
    /// compares the frame.
    #[serde(default)]
    gate_scope: Option<GateScope>,
    /// What the detector looks at: "frame", "zones" (a crop around the rule zones, mapped
    /// back to the frame: far objects reach the model larger, at no extra cost) or "auto"
    /// (the crop when it covers at most `[gate] crop_max_share` of the frame). Default
    /// "frame": on the scenario set the crop split one stall into two captures
    /// (docs/benchmarks.md).
    #[serde(default)]
    detect_region: Option<DetectRegion>,
    #[serde(default)]
    zones: Vec<RawZone>,
    #[serde(default)]
    rules: Vec<RawRule>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawZone {
    id: String,
    kind: ZoneKind,
    polygon: Vec<[f32; 2]>,
    #[serde(default)]
    active_hours: Option<String>,
    #[serde(default)]
    preset: Option<u32>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    rule: RuleKind,
    zones: Vec<String>,
    #[serde(default)]
    dwell_s: Option<f64>,
    #[serde(default)]
    active_hours: Option<String>,
    #[serde(default)]
    min_score: Option<f32>,
    #[serde(default)]
    change_share: Option<f32>,
}

/// The rules citywatch knows.
/// A validated zone.
#[derive(Debug, Clone)]
pub struct Zone {
    pub id: String,
    pub kind: ZoneKind,
    pub polygon: Polygon,
    pub active: ActiveHours,
    pub preset: Option<u32>,
}

/// A validated rule of one camera.
#[derive(Debug, Clone)]
pub struct RuleConfig {
    pub kind: RuleKind,
    pub zones: Vec<String>,
    pub dwell: Duration,
    pub active: ActiveHours,
    pub min_score: f32,
    /// overflowing_bin without a model class: share of the zone that must differ from the
    /// clean reference. Default 0.25.
    pub change_share: f32,
}

fn default_true() -> bool {
    true
}

fn default_fps() -> f64 {
    1.0
}

/// Where a camera's frames come from.
#[derive(Debug, Clone, PartialEq)]
pub enum SourceKind {
    /// A live RTSP camera. The URL keeps its credentials; display it only redacted.
    Rtsp { transport: Transport },
    /// Recorded footage.
    File {
        path: PathBuf,
        realtime: bool,
        looped: bool,
        /// With `looped`: stop after this many passes (None: loop forever).
        max_passes: Option<u32>,
    },
}

/// One validated camera.
#[derive(Debug, Clone)]
pub struct CameraConfig {
    pub id: String,
    pub name: String,
    /// The URL as configured, credentials included. Never print it: use [`Self::redacted_url`].
    pub url: String,
    pub source: SourceKind,
    pub enabled: bool,
    pub analysis_fps: f64,
    pub analysis_width: u32,
    pub keyframe_only: KeyframeMode,
    pub watchdog: Duration,
    /// UTC offset in seconds.
    pub utc_offset_s: i32,
    pub preset: Option<u32>,
    /// Recorded footage for replays.
    pub footage: Option<PathBuf>,
    pub location: Location,
    /// The video platform (for patrol caps).
    pub platform: String,
    pub continuous: bool,
    pub visit_s: Option<f64>,
    pub revisit_s: Option<f64>,
    /// The bounds of the zones the detector also runs on (`detect_crops`).
    pub detect_crops: Vec<BBox>,
    /// No `detect_crops` set: the camera looks closer at its small rule zones by itself.
    pub look_closer: bool,
    /// The regions the scene gate compares (empty: the whole frame).
    pub gate_regions: Vec<BBox>,
    /// The part of the frame the detector runs on (None: the whole frame).
    pub detect_region: Option<BBox>,
    pub zones: Vec<Zone>,
    pub rules: Vec<RuleConfig>,
}

impl CameraConfig {
    /// A camera that plays one file once, at full size, for tools (`citywatch detect`, the
    /// docs' figures): no zones, no rules.
    pub fn for_file(id: &str, path: &Path, analysis_fps: f64) -> Self {
        Self {
            id: id.into(),
            name: id.into(),
            url: format!("file://{}", path.display()),
            source: SourceKind::File {
                path: path.to_path_buf(),
                realtime: false,
                looped: false,
                max_passes: None,
            },
            enabled: true,
            analysis_fps,
            analysis_width: 0,
            keyframe_only: KeyframeMode::Off,
            watchdog: Duration::from_secs(30),
            utc_offset_s: 0,
            preset: None,
            footage: None,
            location: Default::default(),
            platform: "default".into(),
            continuous: false,
            visit_s: None,
            revisit_s: None,
            detect_crops: Vec::new(),
            look_closer: true,
            gate_regions: Vec::new(),
            detect_region: None,
            zones: Vec::new(),
            rules: Vec::new(),
        }
    }

    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    /// The recorded footage replays and evaluations play: `footage`, else a file:// URL.
    pub fn footage_path(&self) -> Option<&PathBuf> {
        match (&self.footage, &self.source) {
            (Some(p), _) => Some(p),
            (None, SourceKind::File { path, .. }) => Some(path),
            (None, SourceKind::Rtsp { .. }) => None,
        }
    }
}

/// One problem in a config, with the path of the field it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub path: String,
    pub message: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            f.write_str(&self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Every problem found in a config file.
#[derive(Debug, Clone, thiserror::Error)]
pub struct ConfigError {
    pub file: String,
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {} problem{} in the config",
            self.file,
            self.problems.len(),
            if self.problems.len() == 1 { "" } else { "s" }
        )?;
        for p in &self.problems {
            write!(f, "\n  {p}")?;
        }
        Ok(())
    }
}

impl PipelineConfig {
    /// For a camera the patrol visits in turn: the longest time between two of its frames
    /// that a patrol plans (its revisit period plus one visit, for a late slot). Grace
    /// periods follow it: an object is never taken for gone between two visits.
    pub fn patrol_gap(&self, cam: &CameraConfig) -> Option<f64> {
        let pt = self.patrol.as_ref()?;
        if !cam.enabled || cam.continuous {
            return None;
        }
        let visit = cam.visit_s.unwrap_or(pt.visit_s);
        Some(cam.revisit_s.unwrap_or(pt.revisit_s) + visit)
    }

    /// Reads and validates a config file. Relative `file://` paths resolve against the
    /// config file's folder.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.display().to_string(),
            problems: vec![ConfigProblem {
                path: String::new(),
                message: format!("cannot read the file: {e}"),
            }],
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|problems| ConfigError {
            file: path.display().to_string(),
            problems,
        })
    }

    /// Parses and validates config text; `base` resolves relative file paths.
    pub fn parse(text: &str, base: &Path) -> Result<Self, Vec<ConfigProblem>> {
        let mut problems = Vec::new();
        let table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                let msg = e.message().to_string();
                let at = e
                    .span()
                    .map(|s| {
                        let line = text[..s.start].matches('\n').count() + 1;
                        format!(" (line {line})")
                    })
                    .unwrap_or_default();
                return Err(vec![ConfigProblem {
                    path: String::new(),
                    message: format!("not valid TOML{at}: {}", redact_url(&msg)),
                }]);
            }
        };

        for key in table.keys() {
            if !matches!(
                key.as_str(),
                "settings"
                    | "ingest"
                    | "detect"
                    | "gate"
                    | "episodes"
                    | "view"
                    | "limits"
                    | "learning"
                    | "replay"
                    | "cases"
                    | "evidence"
                    | "web"
                    | "patrol"
                    | "workers"
                    | "cameras"
            ) {
                problems.push(ConfigProblem {
                    path: key.clone(),
                    message: "unknown field (expected settings, ingest, detect, gate, episodes, view, limits, learning, replay, cases, evidence, web, patrol, workers or cameras)"
                        .into(),
                });
            }
        }
        let settings: Settings = section(&table, "settings", &mut problems).unwrap_or_default();
        let ingest: IngestDefaults = section(&table, "ingest", &mut problems).unwrap_or_default();
        let mut detect: Option<DetectSettings> = section(&table, "detect", &mut problems);
        if let Some(d) = detect.as_mut() {
            validate_detect(d, &mut problems);
            if d.models_dir.is_relative() {
                d.models_dir = base.join(&d.models_dir);
            }
            if let Some(lib) = d.ort_library.as_mut()
                && lib.is_relative()
            {
                *lib = base.join(&*lib);
            }
        }
        let gate: GateSettings = section(&table, "gate", &mut problems).unwrap_or_default();
        validate_gate(&gate, &mut problems);
        let mut episodes: EpisodeSettings =
            section(&table, "episodes", &mut problems).unwrap_or_default();
        validate_episodes(&episodes, &mut problems);
        let view: ViewSettings = section(&table, "view", &mut problems).unwrap_or_default();
        validate_view(&view, &mut problems);
        if let Some(dir) = episodes.state_dir.as_mut()
            && dir.is_relative()
        {
            *dir = base.join(&*dir);
        }
        let limits: LimitSettings = section(&table, "limits", &mut problems).unwrap_or_default();
        validate_limits(&limits, &mut problems);
        let learning: LearnSettings =
            section(&table, "learning", &mut problems).unwrap_or_default();
        validate_learning(&learning, &mut problems);
        let replay: ReplaySettings = section(&table, "replay", &mut problems).unwrap_or_default();
        if let Err(message) = replay.start_unix() {
            problems.push(ConfigProblem {
                path: "replay.start".into(),
                message,
            });
        }

        let mut raw_cameras = Vec::new();
        match table.get("cameras") {
            None => problems.push(ConfigProblem {
                path: "cameras".into(),
                message: "at least one camera is required".into(),
            }),
            Some(toml::Value::Array(items)) => {
                if items.is_empty() {
                    problems.push(ConfigProblem {
                        path: "cameras".into(),
                        message: "at least one camera is required".into(),
                    });
                }
                for (i, item) in items.iter().enumerate() {
                    let p = format!("cameras[{i}]");
                    if let Some(c) = typed::<RawCamera>(item.clone(), &p, &mut problems) {
                        raw_cameras.push((i, c));
                    }
                }
            }
            Some(_) => problems.push(ConfigProblem {
                path: "cameras".into(),
                message: "must be an array of tables ([[cameras]])".into(),
            }),
        }

        validate_settings(&settings, &mut problems);
        validate_ingest(&ingest, &mut problems);
        let mut cases: Option<CasesSettings> = section(&table, "cases", &mut problems);
        let mut seen = HashSet::new();
        let mut cameras = Vec::new();
        for (i, raw) in raw_cameras {
            if let Some(c) = validate_camera(i, raw, &ingest, &gate, base, &mut seen, &mut problems)
            {
                cameras.push(c);
            }
        }

        let mut evidence: Option<EvidenceSettings> = section(&table, "evidence", &mut problems);
        if let Some(e) = evidence.as_mut() {
            if e.root.is_relative() {
                e.root = std::path::absolute(base.join(&e.root)).unwrap_or(base.join(&e.root));
            }
            let mut bad = |f: &str, m: String| {
                problems.push(ConfigProblem {
                    path: format!("evidence.{f}"),
                    message: m,
                })
            };
            for (f, v, max) in [
                ("pre_s", e.pre_s, 600.0),
                ("post_s", e.post_s, 600.0),
                ("max_age_days", e.max_age_days, 36500.0),
                ("closed_keep_days", e.closed_keep_days, 36500.0),
                ("quota_gb", e.quota_gb, 1e6),
                ("sweep_interval_s", e.sweep_interval_s, 86400.0),
            ] {
                if !(v.is_finite() && v >= 0.0 && v <= max) {
                    bad(f, format!("must be between 0 and {max}, got {v}"));
                }
            }
            if !(e.alert_ratio > 0.0 && e.alert_ratio <= 1.0) {
                bad(
                    "alert_ratio",
                    format!("must be in (0, 1], got {}", e.alert_ratio),
                );
            }
            if e.ring_mb == 0 || e.ring_mb > 4096 {
                bad("ring_mb", format!("must be 1..=4096, got {}", e.ring_mb));
            }
            if let Some(f) = e.font.as_mut() {
                if f.is_relative() {
                    *f = base.join(&*f);
                }
                if let Err(err) = crate::core::font::load(Some(f)) {
                    bad("font", err.to_string());
                }
            }
        }
        let mut web: Option<WebSettings> = section(&table, "web", &mut problems);
        if let Some(w) = &mut web {
            for p in [&mut w.tls_cert, &mut w.tls_key].into_iter().flatten() {
                if p.is_relative() {
                    *p = base.join(&*p);
                }
            }
            match (&w.tls_cert, &w.tls_key) {
                (Some(_), None) | (None, Some(_)) => problems.push(ConfigProblem {
                    path: if w.tls_cert.is_some() {
                        "web.tls_key".into()
                    } else {
                        "web.tls_cert".into()
                    },
                    message: "tls_cert and tls_key go together: set both, or neither".into(),
                }),
                _ => {}
            }
            for (field, p) in [("web.tls_cert", &w.tls_cert), ("web.tls_key", &w.tls_key)] {
                if let Some(p) = p
                    && !p.is_file()
                {
                    problems.push(ConfigProblem {
                        path: field.into(),
                        message: format!("no such file: {}", p.display()),
                    });
                }
            }
            if !(w.session_idle_minutes.is_finite() && w.session_idle_minutes >= 1.0) {
                problems.push(ConfigProblem {
                    path: "web.session_idle_minutes".into(),
                    message: format!("must be at least 1, got {}", w.session_idle_minutes),
                });
            }
            if w.listen.parse::<std::net::SocketAddr>().is_err() {
                problems.push(ConfigProblem {
                    path: "web.listen".into(),
                    message: format!("expected IP:PORT, got {:?}", w.listen),
                });
            }
            if cases.is_none() {
                problems.push(ConfigProblem {
                    path: "web".into(),
                    message:
                        "needs a [cases] section: users, captures and cases live in its database"
                            .into(),
                });
            }
            if !(w.session_hours > 0.0 && w.session_hours <= 24.0 * 30.0) {
                problems.push(ConfigProblem {
                    path: "web.session_hours".into(),
                    message: format!("must be in (0, 720], got {}", w.session_hours),
                });
            }
        }
        if episodes.in_database {
            if cases.is_none() {
                problems.push(ConfigProblem {
                    path: "episodes.in_database".into(),
                    message: "needs a [cases] section: episodes are kept in its database".into(),
                });
            }
            if episodes.state_dir.is_some() {
                problems.push(ConfigProblem {
                    path: "episodes.in_database".into(),
                    message: "choose one place for episodes: state_dir or in_database".into(),
                });
            }
        }
        match episodes.keep {
            Keep::Off => {
                if episodes.in_database || episodes.state_dir.is_some() {
                    problems.push(ConfigProblem {
                        path: "episodes.keep".into(),
                        message: "is \"off\" but state_dir or in_database says where to keep the state: choose one".into(),
                    });
                }
            }
            Keep::Auto if !episodes.in_database && episodes.state_dir.is_none() => {
                if cases.is_some() {
                    episodes.in_database = true;
                } else {
                    episodes.state_dir = Some(base.join(DEFAULT_STATE_DIR));
                }
            }
            Keep::Auto => {}
        }
        if let Some(c) = cases.as_mut() {
            if c.categories.is_relative() {
                c.categories = base.join(&c.categories);
            }
            if c.spool.is_relative() {
                c.spool = std::path::absolute(base.join(&c.spool)).unwrap_or(base.join(&c.spool));
            }
            if c.spool_max == 0 {
                problems.push(ConfigProblem {
                    path: "cases.spool_max".into(),
                    message: "must be at least 1".into(),
                });
            }
            match parse_utc_offset(&c.timezone) {
                Ok(s) => c.utc_offset_s = s,
                Err(message) => problems.push(ConfigProblem {
                    path: "cases.timezone".into(),
                    message,
                }),
            }
            if let Some(rest) = c.database.strip_prefix("sqlite://")
                && !rest.starts_with('/')
                && !rest.starts_with(':')
            {
                let path = base.join(rest);
                let path = std::path::absolute(&path).unwrap_or(path);
                c.database = format!("sqlite://{}", path.display());
            }
            if !(c.database.starts_with("sqlite:") || c.database.starts_with("postgres")) {
                problems.push(ConfigProblem {
                    path: "cases.database".into(),
                    message: format!(
                        "expected sqlite://PATH or postgres://..., got {:?}",
                        redact_url(&c.database)
                    ),
                });
            }
            let mut used: Vec<RuleKind> = cameras
                .iter()
                .flat_map(|c: &CameraConfig| c.rules.iter().map(|r| r.kind))
                .collect();
            used.sort();
            used.dedup();
            match CategoryTable::load(&c.categories, &used) {
                Ok(t) => c.table = std::sync::Arc::new(t),
                Err(message) => problems.push(ConfigProblem {
                    path: "cases.categories".into(),
                    message,
                }),
            }
            validate_lifecycle(c, base, &mut problems);
        }
        let patrol: Option<PatrolSettings> = section(&table, "patrol", &mut problems);
        if let Some(pt) = &patrol {
            validate_patrol(pt, &cameras, &mut problems);
        }
        let workers: WorkerSettings = section(&table, "workers", &mut problems).unwrap_or_default();
        if !(workers.lease_ttl_s.is_finite() && workers.lease_ttl_s >= 1.0) {
            problems.push(ConfigProblem {
                path: "workers.lease_ttl_s".into(),
                message: format!("must be at least 1 s, got {}", workers.lease_ttl_s),
            });
        } else if !(workers.heartbeat_s.is_finite()
            && workers.heartbeat_s > 0.0
            && workers.heartbeat_s * 3.0 <= workers.lease_ttl_s)
        {
            problems.push(ConfigProblem {
                path: "workers.heartbeat_s".into(),
                message: format!(
                    "must be > 0 and at most a third of lease_ttl_s ({}), got {}",
                    workers.lease_ttl_s, workers.heartbeat_s
                ),
            });
        }
        if problems.is_empty() {
            Ok(Self {
                settings,
                ingest,
                detect,
                gate,
                episodes,
                view,
                limits,
                learning,
                replay,
                cases,
                evidence,
                web,
                patrol,
                workers,
                cameras,
            })
        } else {
            Err(problems)
        }
    }

    /// Backoff settings shared by every camera.
    pub fn backoff(&self) -> crate::core::BackoffPolicy {
        crate::core::BackoffPolicy {
            initial: secs(self.ingest.backoff_initial_s),
            max: secs(self.ingest.backoff_max_s),
            multiplier: self.ingest.backoff_multiplier,
            jitter: self.ingest.backoff_jitter,
        }
    }
}

pub fn secs(s: f64) -> Duration {
    Duration::from_secs_f64(s.max(0.0))
}

fn section<T: DeserializeOwned>(
    table: &toml::Table,
    key: &str,
    problems: &mut Vec<ConfigProblem>,
) -> Option<T> {
    let value = table.get(key)?;
    typed(value.clone(), key, problems)
}

/// Deserialises one value, turning a serde error into a problem with the full field path.
fn typed<T: DeserializeOwned>(
    value: toml::Value,
    prefix: &str,
    problems: &mut Vec<ConfigProblem>,
) -> Option<T> {
    match serde_path_to_error::deserialize::<_, T>(value) {
        Ok(v) => Some(v),
        Err(e) => {
            let inner = e.path().to_string();
            let message = redact_url(e.inner().to_string().trim());
            // An unknown field's own name is in the message; the path names its parent.
            let path = if inner == "." || inner.is_empty() {
                prefix.to_string()
            } else if inner.starts_with('[') {
                format!("{prefix}{inner}")
            } else {
                format!("{prefix}.{inner}")
            };
            problems.push(ConfigProblem { path, message });
            None
        }
    }
}

fn positive(path: &str, v: f64, problems: &mut Vec<ConfigProblem>) {
    if !(v.is_finite() && v > 0.0) {
        problems.push(ConfigProblem {
            path: path.into(),
            message: format!("must be a positive number of seconds, got {v}"),
        });
    }
}

fn validate_settings(s: &Settings, problems: &mut Vec<ConfigProblem>) {
    positive("settings.status_interval_s", s.status_interval_s, problems);
    positive(
        "settings.shutdown_timeout_s",
        s.shutdown_timeout_s,
        problems,
    );
}

fn validate_ingest(i: &IngestDefaults, problems: &mut Vec<ConfigProblem>) {
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

fn validate_detect(d: &DetectSettings, problems: &mut Vec<ConfigProblem>) {
    let mut bad = |path: &str, message: String| {
        problems.push(ConfigProblem {
            path: path.into(),
            message,
        })
    };
    if let Some(message) = model_name_problem(&d.model) {
        bad("detect.model", message);
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

fn validate_episodes(e: &EpisodeSettings, problems: &mut Vec<ConfigProblem>) {
    for (path, v) in [
        ("episodes.iou", e.iou),
        ("episodes.signature_distance", e.signature_distance),
    ] {
        if !(v > 0.0 && v <= 1.0) {
            problems.push(ConfigProblem {
                path: path.into(),
                message: format!("must be above 0 and at most 1, got {v}"),
            });
        }
    }
    positive("episodes.grace_s", e.grace_s, problems);
    positive("episodes.vehicle_grace_s", e.vehicle_grace_s, problems);
    positive("episodes.fixture_after_s", e.fixture_after_s, problems);
    if !(e.fixture_learn_s.is_finite() && e.fixture_learn_s >= 0.0) {
        problems.push(ConfigProblem {
            path: "episodes.fixture_learn_s".into(),
            message: format!("must be 0 or more, got {}", e.fixture_learn_s),
        });
    }
    if e.clear_frames == 0 {
        problems.push(ConfigProblem {
            path: "episodes.clear_frames".into(),
            message: "must be at least 1".into(),
        });
    }
}

fn validate_view(v: &ViewSettings, problems: &mut Vec<ConfigProblem>) {
    if !(v.tolerance > 0.0 && v.tolerance <= 0.25) {
        problems.push(ConfigProblem {
            path: "view.tolerance".into(),
            message: format!("must be above 0 and at most 0.25, got {}", v.tolerance),
        });
    }
    if !(v.min_match > 0.0 && v.min_match < 1.0) {
        problems.push(ConfigProblem {
            path: "view.min_match".into(),
            message: format!("must be above 0 and below 1, got {}", v.min_match),
        });
    }
    if v.frames == 0 {
        problems.push(ConfigProblem {
            path: "view.frames".into(),
            message: "must be at least 1".into(),
        });
    }
}

fn validate_limits(l: &LimitSettings, problems: &mut Vec<ConfigProblem>) {
    positive("limits.deferred_expiry_s", l.deferred_expiry_s, problems);
    positive("limits.captures_per_hour", l.captures_per_hour, problems);
    if !(l.burst.is_finite() && l.burst >= 1.0) {
        problems.push(ConfigProblem {
            path: "limits.burst".into(),
            message: format!("must be at least 1, got {}", l.burst),
        });
    }
    positive("limits.cooldown_s", l.cooldown_s, problems);
    if !(l.place_iou > 0.0 && l.place_iou <= 1.0) {
        problems.push(ConfigProblem {
            path: "limits.place_iou".into(),
            message: format!("must be above 0 and at most 1, got {}", l.place_iou),
        });
    }
    if let Some(f) = l.inference_fps {
        positive("limits.inference_fps", f, problems);
    }
}

fn validate_gate(g: &GateSettings, problems: &mut Vec<ConfigProblem>) {
    for (path, v) in [
        ("gate.cell_delta", g.cell_delta),
        ("gate.changed_share", g.changed_share),
        ("gate.zone_margin", g.zone_margin),
        ("gate.crop_max_share", g.crop_max_share),
    ] {
        if !(0.0..=1.0).contains(&v) {
            problems.push(ConfigProblem {
                path: path.into(),
                message: format!("must be between 0 and 1, got {v}"),
            });
        }
    }
    positive("gate.max_reuse_s", g.max_reuse_s, problems);
}

fn validate_width(path: &str, w: u32, problems: &mut Vec<ConfigProblem>) {
    if let Some(message) = width_problem(w) {
        problems.push(ConfigProblem {
            path: path.into(),
            message,
        });
    }
}

fn width_problem(w: u32) -> Option<String> {
    (!(32..=7680).contains(&w) || !w.is_multiple_of(2))
        .then(|| format!("must be an even number of pixels from 32 to 7680, got {w}"))
}

/// The slowest and fastest analysis rates: one frame a minute to ten a second.
pub const MIN_ANALYSIS_FPS: f64 = 1.0 / 60.0;
pub const MAX_ANALYSIS_FPS: f64 = 10.0;

fn validate_camera(
    i: usize,
    raw: RawCamera,
    ingest: &IngestDefaults,
    gate: &GateSettings,
    base: &Path,
    seen: &mut HashSet<String>,
    problems: &mut Vec<ConfigProblem>,
) -> Option<CameraConfig> {
    let before = problems.len();
    let p = |f: &str| format!("cameras[{i}].{f}");
    // A macro rather than a closure, so `problems` stays readable in between.
    macro_rules! bad {
        ($field:expr, $message:expr $(,)?) => {
            problems.push(ConfigProblem {
                path: p($field),
                message: $message,
            })
        };
    }

    let id_ok = !raw.id.is_empty()
        && raw.id.len() <= 64
        && raw
            .id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if !id_ok {
        bad!(
            "id",
            format!(
                "must be 1-64 characters of letters, digits, '-' or '_', got {:?}",
                raw.id
            ),
        );
    } else if !seen.insert(raw.id.clone()) {
        bad!("id", format!("duplicate camera id {:?}", raw.id));
    }

    if !(raw.analysis_fps.is_finite()
        && raw.analysis_fps >= MIN_ANALYSIS_FPS - 1e-9
        && raw.analysis_fps <= MAX_ANALYSIS_FPS)
    {
        bad!(
            "analysis_fps",
            format!(
                "must be from 1/60 (one frame a minute) to 10, got {}",
                raw.analysis_fps
            ),
        );
    }
    if let Some(message) = raw.analysis_width.and_then(width_problem) {
        bad!("analysis_width", message);
    }
    if let Some(lat) = raw.location.lat
        && !(lat.is_finite() && (-90.0..=90.0).contains(&lat))
    {
        bad!(
            "location.lat",
            format!("must be a latitude from -90 to 90, got {lat}")
        );
    }
    if let Some(lon) = raw.location.lon
        && !(lon.is_finite() && (-180.0..=180.0).contains(&lon))
    {
        bad!(
            "location.lon",
            format!("must be a longitude from -180 to 180, got {lon}")
        );
    }
    if let Some(w) = raw.watchdog_s
        && !(w.is_finite() && w > 0.0)
    {
        bad!(
            "watchdog_s",
            format!("must be a positive number of seconds, got {w}"),
        );
    }

    let source = match parse_source_url(&raw.url, base) {
        Ok(UrlKind::Rtsp) => {
            if raw.realtime.is_some() {
                bad!(
                    "realtime",
                    "applies to file:// cameras only; RTSP is always live".into(),
                );
            }
            if raw.looped.is_some() {
                bad!("loop", "applies to file:// cameras only".into());
            }
            Some(SourceKind::Rtsp {
                transport: raw.transport.unwrap_or_default(),
            })
        }
        Ok(UrlKind::File(path)) => {
            if raw.transport.is_some() {
                bad!("transport", "applies to rtsp:// cameras only".into());
            }
            Some(SourceKind::File {
                path,
                realtime: raw.realtime.unwrap_or(false),
                looped: raw.looped.unwrap_or(false),
                max_passes: None,
            })
        }
        Err(msg) => {
            bad!("url", msg);
            None
        }
    };

    let footage = match raw.footage.as_deref().map(|f| parse_source_url(f, base)) {
        None => None,
        Some(Ok(UrlKind::File(p))) => Some(p),
        Some(Ok(UrlKind::Rtsp)) => {
            bad!("footage", "must be a file:// URL".into());
            None
        }
        Some(Err(m)) => {
            bad!("footage", m);
            None
        }
    };
    let utc_offset_s = match raw.timezone.as_deref().map(parse_utc_offset) {
        None => 8 * 3600,
        Some(Ok(o)) => o,
        Some(Err(m)) => {
            bad!("timezone", m);
            0
        }
    };
    let mut zones = Vec::new();
    let mut zone_ids = HashSet::new();
    for (z, rz) in raw.zones.iter().enumerate() {
        let zp = |f: &str| format!("zones[{z}].{f}");
        if rz.id.is_empty() || !zone_ids.insert(rz.id.clone()) {
            bad!(
                &zp("id"),
                format!("must be a unique, non-empty zone id, got {:?}", rz.id)
            );
        }
        let polygon = match Polygon::validate(&rz.polygon) {
            Ok(p) => Some(p),
            Err(m) => {
                bad!(&zp("polygon"), m);
                None
            }
        };
        let active = match rz.active_hours.as_deref().map(ActiveHours::parse) {
            None => Some(ActiveHours::always()),
            Some(Ok(a)) => Some(a),
            Some(Err(m)) => {
                bad!(&zp("active_hours"), m);
                None
            }
        };
        if let (Some(polygon), Some(active)) = (polygon, active) {
            zones.push(Zone {
                id: rz.id.clone(),
                kind: rz.kind,
                polygon,
                active,
                preset: rz.preset,
            });
        }
    }
    let mut detect_crops = Vec::new();
    let grid = raw.detect_crop_grid.unwrap_or(1);
    if !(1..=4).contains(&grid) {
        bad!("detect_crop_grid", format!("must be 1 to 4, got {grid}"));
    }
    for zid in raw.detect_crops.iter().flatten() {
        match zones.iter().find(|z: &&Zone| &z.id == zid) {
            Some(z) => detect_crops.extend(tiles(&z.polygon.bounds(), grid.clamp(1, 4))),
            None => bad!(
                "detect_crops",
                format!("zone {zid:?} does not exist on camera {:?}", raw.id),
            ),
        }
    }
    let mut rules = Vec::new();
    for (r, rr) in raw.rules.iter().enumerate() {
        let rp = |f: &str| format!("rules[{r}].{f}");
        let before_rule = problems.len();
        if rr.zones.is_empty() {
            bad!(&rp("zones"), "must name at least one zone".into());
        }
        for zid in &rr.zones {
            match raw.zones.iter().find(|z| &z.id == zid) {
                None => bad!(
                    &rp("zones"),
                    format!("zone {zid:?} does not exist on camera {:?}", raw.id),
                ),
                Some(z) if z.kind != rr.rule.zone_kind() => bad!(
                    &rp("zones"),
                    format!(
                        "zone {zid:?} is a {} zone; {} watches {} zones",
                        serde_name(&z.kind),
                        rr.rule.as_str(),
                        serde_name(&rr.rule.zone_kind())
                    ),
                ),
                Some(_) => {}
            }
        }
        if let Some(d) = rr.dwell_s
            && !(d.is_finite() && d > 0.0)
        {
            bad!(
                &rp("dwell_s"),
                format!("must be a positive number of seconds, got {d}")
            );
        }
        let active = match rr.active_hours.as_deref().map(ActiveHours::parse) {
            None => ActiveHours::always(),
            Some(Ok(a)) => a,
            Some(Err(m)) => {
                bad!(&rp("active_hours"), m);
                ActiveHours::always()
            }
        };
        for (f, v) in [
            ("min_score", rr.min_score),
            ("change_share", rr.change_share),
        ] {
            if let Some(v) = v
                && !(0.0..=1.0).contains(&v)
            {
                bad!(&rp(f), format!("must be between 0 and 1, got {v}"));
            }
        }
        if problems.len() == before_rule {
            rules.push(RuleConfig {
                kind: rr.rule,
                zones: rr.zones.clone(),
                dwell: rr.dwell_s.map(secs).unwrap_or(rr.rule.default_dwell()),
                active,
                min_score: rr.min_score.unwrap_or(0.3),
                change_share: rr.change_share.unwrap_or(0.25),
            });
        }
    }

    if problems.len() > before {
        return None;
    }
    Some(CameraConfig {
        name: raw.name.clone().unwrap_or_else(|| raw.id.clone()),
        id: raw.id,
        url: raw.url,
        source: source?,
        enabled: raw.enabled,
        analysis_fps: raw.analysis_fps,
        analysis_width: raw.analysis_width.unwrap_or(ingest.analysis_width),
        keyframe_only: raw.keyframe_only,
        watchdog: secs(raw.watchdog_s.unwrap_or(ingest.watchdog_s)),
        utc_offset_s,
        preset: raw.preset,
        footage,
        location: raw.location.clone(),
        platform: raw.platform.clone().unwrap_or_else(|| "default".into()),
        continuous: raw.continuous,
        visit_s: raw.visit_s,
        revisit_s: raw.revisit_s,
        detect_crops,
        look_closer: raw.detect_crops.is_none(),
        gate_regions: match raw.gate_scope.unwrap_or(GateScope::Zones) {
            GateScope::Zones => zones.iter().map(|z| z.polygon.bounds()).collect(),
            GateScope::Frame => Vec::new(),
        },
        detect_region: match raw.detect_region.unwrap_or(DetectRegion::Frame) {
            DetectRegion::Frame => None,
            DetectRegion::Zones => zones_region(&zones, gate.zone_margin),
            DetectRegion::Auto => zones_region(&zones, gate.zone_margin)
                .filter(|r| (r[2] - r[0]) * (r[3] - r[1]) <= gate.crop_max_share),
        },
        zones,
        rules,
    })
}

/// A box cut into `n`×`n` tiles that overlap by a quarter of a tile.
fn tiles(b: &BBox, n: u32) -> Vec<BBox> {
    let n = n as f32;
    // Tile size t with n tiles stepping 3/4 t: t (1 + 3/4 (n - 1)) = size.
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    let (tw, th) = (w / (1.0 + 0.75 * (n - 1.0)), h / (1.0 + 0.75 * (n - 1.0)));
    let mut out = Vec::new();
    for j in 0..n as u32 {
        for i in 0..n as u32 {
            let (x, y) = (b[0] + i as f32 * 0.75 * tw, b[1] + j as f32 * 0.75 * th);
            out.push([x, y, (x + tw).min(b[2]), (y + th).min(b[3])]);
        }
    }
    out
}

/// `[patrol]` against the cameras: caps, periods, and continuous cameras within their caps.
fn validate_patrol(
    pt: &PatrolSettings,
    cameras: &[CameraConfig],
    problems: &mut Vec<ConfigProblem>,
) {
    let mut bad = |path: String, message: String| problems.push(ConfigProblem { path, message });
    for (k, cap) in &pt.caps {
        if *cap == 0 {
            bad(format!("patrol.caps.{k}"), "must be at least 1".into());
        }
    }
    if !(pt.visit_s.is_finite() && pt.visit_s > 0.0) {
        bad(
            "patrol.visit_s".into(),
            format!("must be > 0, got {}", pt.visit_s),
        );
    }
    if !(pt.revisit_s.is_finite() && pt.revisit_s >= pt.visit_s) {
        bad(
            "patrol.revisit_s".into(),
            format!(
                "must be at least visit_s ({}), got {}",
                pt.visit_s, pt.revisit_s
            ),
        );
    }
    if !(pt.hot_factor.is_finite() && pt.hot_factor >= 1.0) {
        bad(
            "patrol.hot_factor".into(),
            format!("must be ≥ 1, got {}", pt.hot_factor),
        );
    }
    let mut continuous: BTreeMap<&str, usize> = BTreeMap::new();
    for (i, c) in cameras.iter().enumerate().filter(|(_, c)| c.enabled) {
        if !pt.caps.contains_key(&c.platform) {
            bad(
                format!("cameras[{i}].platform"),
                format!("{:?} has no cap in [patrol] caps", c.platform),
            );
        }
        let visit = c.visit_s.unwrap_or(pt.visit_s);
        let revisit = c.revisit_s.unwrap_or(pt.revisit_s);
        if !(visit.is_finite() && visit > 0.0) {
            bad(
                format!("cameras[{i}].visit_s"),
                format!("must be > 0, got {visit}"),
            );
        }
        if !(revisit.is_finite() && revisit >= visit) {
            bad(
                format!("cameras[{i}].revisit_s"),
                format!("must be at least the visit ({visit} s), got {revisit}"),
            );
        }
        if c.continuous {
            *continuous.entry(&c.platform).or_default() += 1;
        }
    }
    for (platform, n) in continuous {
        if let Some(cap) = pt.caps.get(platform)
            && n > *cap
        {
            bad(
                format!("patrol.caps.{platform}"),
                format!("{n} continuous cameras need more than the cap of {cap}"),
            );
        }
    }
}

/// The name serde gives an enum value (`no_parking`).
fn serde_name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

enum UrlKind {
    Rtsp,
    File(PathBuf),
}

/// Checks a camera URL. The error message never contains the URL's credentials.
fn parse_source_url(raw: &str, base: &Path) -> Result<UrlKind, String> {
    let Some((scheme, rest)) = raw.split_once("://") else {
        return Err(format!(
            "not a URL (expected rtsp://host/path or file://path), got {:?}",
            redact_url(raw)
        ));
    };
    match scheme.to_ascii_lowercase().as_str() {
        "rtsp" => {
            let parsed = url::Url::parse(raw)
                .map_err(|e| format!("malformed RTSP URL {:?}: {e}", redact_url(raw)))?;
            if parsed.host_str().is_none_or(str::is_empty) {
                return Err(format!("RTSP URL has no host: {:?}", redact_url(raw)));
            }
            Ok(UrlKind::Rtsp)
        }
        "file" => {
            if rest.is_empty() {
                return Err("file URL has no path".into());
            }
            let path = Path::new(rest);
            let path = if path.is_absolute() {
                path.to_path_buf()
            } else {
                base.join(path)
            };
            Ok(UrlKind::File(path))
        }
        other => Err(format!(
            "unsupported scheme {other:?} (expected \"rtsp\" or \"file\")"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<PipelineConfig, Vec<String>> {
        PipelineConfig::parse(text, Path::new("/base"))
            .map_err(|ps| ps.into_iter().map(|p| p.to_string()).collect())
    }

    #[test]
    fn state_is_kept_by_default_and_forgotten_only_when_asked() {
        let cam = "[[cameras]]\nid = \"a\"\nurl = \"rtsp://h/a\"\n";
        // No case database: a state folder beside the config.
        let c = parse(cam).unwrap();
        assert_eq!(c.episodes.state_dir, Some(PathBuf::from("/base/state")));
        assert!(!c.episodes.in_database);
        // An explicit folder wins.
        let c = parse(&format!("[episodes]\nstate_dir = \"s\"\n{cam}")).unwrap();
        assert_eq!(c.episodes.state_dir, Some(PathBuf::from("/base/s")));
        // Off: nothing kept.
        let c = parse(&format!("[episodes]\nkeep = \"off\"\n{cam}")).unwrap();
        assert_eq!(
            (c.episodes.state_dir, c.episodes.in_database),
            (None, false)
        );
        // Off and a place to keep it: which one was meant?
        let e = parse(&format!(
            "[episodes]\nkeep = \"off\"\nstate_dir = \"s\"\n{cam}"
        ))
        .unwrap_err();
        assert!(e[0].starts_with("episodes.keep: is \"off\" but"), "{e:?}");
    }

    #[test]
    fn minimal_config_gets_defaults() {
        let c = parse("[[cameras]]\nid = \"a\"\nurl = \"rtsp://127.0.0.1:8554/a\"\n").unwrap();
        let cam = &c.cameras[0];
        assert_eq!(cam.name, "a");
        assert_eq!(cam.analysis_fps, 1.0);
        assert_eq!(cam.analysis_width, 640);
        assert_eq!(cam.keyframe_only, KeyframeMode::Auto);
        assert_eq!(cam.watchdog, Duration::from_secs(10));
        assert_eq!(
            cam.source,
            SourceKind::Rtsp {
                transport: Transport::Tcp
            }
        );
        assert_eq!(c.settings.status_interval_s, 10.0);
    }

    #[test]
    fn patrol_settings_are_checked_against_the_cameras() {
        let errs = parse(
            r#"
[patrol]
caps = { police = 1, city = 0 }
visit_s = 30
revisit_s = 10
[[cameras]]
id = "a"
url = "rtsp://h/a"
platform = "police"
continuous = true
[[cameras]]
id = "b"
url = "rtsp://h/b"
platform = "police"
continuous = true
[[cameras]]
id = "c"
url = "rtsp://h/c"
platform = "traffic"
"#,
        )
        .unwrap_err();
        assert_eq!(
            errs,
            vec![
                "patrol.caps.city: must be at least 1",
                "patrol.revisit_s: must be at least visit_s (30), got 10",
                "cameras[0].revisit_s: must be at least the visit (30 s), got 10",
                "cameras[1].revisit_s: must be at least the visit (30 s), got 10",
                "cameras[2].platform: \"traffic\" has no cap in [patrol] caps",
                "cameras[2].revisit_s: must be at least the visit (30 s), got 10",
                "patrol.caps.police: 2 continuous cameras need more than the cap of 1",
            ]
        );
        let c = parse(
            "[patrol]\ncaps = { default = 2 }\n[[cameras]]\nid = \"a\"\nurl = \"rtsp://h/a\"\nvisit_s = 5\n",
        )
        .unwrap();
        let p = c.patrol.unwrap();
        assert_eq!((p.visit_s, p.revisit_s, p.hot_factor), (20.0, 300.0, 3.0));
        assert_eq!(c.cameras[0].platform, "default");
        assert_eq!(c.cameras[0].visit_s, Some(5.0));
    }

    #[test]
    fn worker_settings_have_defaults_and_are_checked() {
        let cam = "[[cameras]]\nid = \"a\"\nurl = \"rtsp://h/a\"\n";
        let c = parse(cam).unwrap();
        assert_eq!((c.workers.lease_ttl_s, c.workers.heartbeat_s), (15.0, 5.0));
        let errs = parse(&format!(
            "[workers]\nlease_ttl_s = 6\nheartbeat_s = 3\n{cam}"
        ))
        .unwrap_err();
        assert_eq!(
            errs,
            vec!["workers.heartbeat_s: must be > 0 and at most a third of lease_ttl_s (6), got 3"]
        );
        let errs = parse(&format!("[workers]\nlease_ttl_s = 0.5\n{cam}")).unwrap_err();
        assert_eq!(
            errs,
            vec!["workers.lease_ttl_s: must be at least 1 s, got 0.5"]
        );
        let errs = parse(&format!("[workers]\nttl = 5\n{cam}")).unwrap_err();
        assert!(
            errs[0].starts_with("workers.ttl: unknown field"),
            "{errs:?}"
        );
    }

    #[test]
    fn relative_file_paths_resolve_against_the_config_folder() {
        let c = parse("[[cameras]]\nid = \"f\"\nurl = \"file://../v.mp4\"\nloop = true\n").unwrap();
        assert_eq!(
            c.cameras[0].source,
            SourceKind::File {
                path: PathBuf::from("/base/../v.mp4"),
                realtime: false,
                looped: true,
                max_passes: None,
            }
        );
        let c = parse("[[cameras]]\nid = \"f\"\nurl = \"file:///abs/v.mp4\"\n").unwrap();
        assert!(
            matches!(&c.cameras[0].source, SourceKind::File { path, .. } if path == Path::new("/abs/v.mp4"))
        );
    }

    #[test]
    fn bad_scheme_names_the_field() {
        let errs = parse(
            r#"
[[cameras]]
id = "a"
url = "rtsp://h/a"
[[cameras]]
id = "b"
url = "rtsp://h/b"
[[cameras]]
id = "c"
url = "htp://user:pw@h/c"
"#,
        )
        .unwrap_err();
        assert_eq!(
            errs,
            vec![r#"cameras[2].url: unsupported scheme "htp" (expected "rtsp" or "file")"#]
        );
    }

    #[test]
    fn the_judgement_settings_parse_and_bad_ones_name_their_field() {
        let c = parse(
            r#"
[view]
tolerance = 0.05
[learning]
similarity = 0.85
[episodes]
clear_frames = 4
[limits]
deferred_max = 8
[patrol]
caps = { default = 1 }
revisit_s = 600
[[cameras]]
id = "a"
url = "rtsp://127.0.0.1:8554/a"
detect_crops = ["lawn"]
detect_crop_grid = 2
[[cameras.zones]]
id = "lawn"
kind = "no_vending"
polygon = [[0.0, 0.5], [0.5, 0.5], [0.5, 1.0], [0.0, 1.0]]
"#,
        )
        .unwrap();
        assert_eq!(c.view.tolerance, 0.05);
        assert!(c.view.guard);
        assert_eq!(c.learning.similarity, 0.85);
        assert_eq!(c.learning.max_per_zone, 200);
        assert_eq!(c.episodes.clear_frames, 4);
        assert_eq!(c.limits.deferred_max, 8);
        // Four overlapping tiles inside the lawn's bounds.
        let t = &c.cameras[0].detect_crops;
        assert_eq!(t.len(), 4);
        assert!(
            t.iter()
                .all(|b| b[0] >= 0.0 && b[2] <= 0.5 + 1e-6 && b[1] >= 0.5 - 1e-6)
        );
        assert!(t[1][0] < t[0][2], "tiles overlap");
        // The lawn is a quarter of the frame: the gate watches it; the detector sees the
        // whole frame unless told otherwise.
        assert_eq!(c.cameras[0].gate_regions, vec![[0.0, 0.5, 0.5, 1.0]]);
        assert_eq!(c.cameras[0].detect_region, None);
        let auto = PipelineConfig::parse(
            "[[cameras]]\nid = \"a\"\nurl = \"rtsp://127.0.0.1:8554/a\"\ndetect_region = \"auto\"\n\
             [[cameras.zones]]\nid = \"lawn\"\nkind = \"no_vending\"\n\
             polygon = [[0.0, 0.5], [0.5, 0.5], [0.5, 1.0], [0.0, 1.0]]\n",
            Path::new("."),
        )
        .unwrap();
        // "auto": the lawn and its margin (0.08) are a third of the frame, so it crops.
        let r = auto.cameras[0].detect_region.expect("a crop");
        for (x, y) in r.iter().zip([0.0, 0.42, 0.58, 1.0]) {
            assert!((x - y).abs() < 1e-6, "{r:?}");
        }
        // Grace follows the patrol: 600 s revisit + 20 s visit.
        assert_eq!(c.patrol_gap(&c.cameras[0]), Some(620.0));
        let errs = parse(
            r#"
[view]
tolerance = 0.5
frames = 0
[episodes]
clear_frames = 0
[learning]
similarity = 1.5
max_per_zone = 0
[[cameras]]
id = "a"
url = "rtsp://127.0.0.1:8554/a"
detect_crops = ["nowhere"]
"#,
        )
        .unwrap_err();
        for field in [
            "learning.similarity",
            "learning.max_per_zone",
            "view.tolerance",
            "view.frames",
            "episodes.clear_frames",
            "cameras[0].detect_crops",
        ] {
            assert!(
                errs.iter().any(|e| e.starts_with(field)),
                "{field}: {errs:?}"
            );
        }
    }

    #[test]
    fn all_problems_are_reported_at_once() {
        let errs = parse(
            r#"
colour = "red"
[settings]
status_interval_s = 0
[ingest]
backoff_jitter = 2.0
[[cameras]]
id = "a"
url = "rtsp://h/a"
fps = 3
[[cameras]]
id = "a2"
url = "rtsp://h/a2"
analysis_fps = 20
realtime = true
[[cameras]]
id = "bad id!"
url = "rtsp://u:topsecret@/x"
analysis_width = 33
"#,
        )
        .unwrap_err();
        let all = errs.join("\n");
        assert!(!all.contains("topsecret"), "{all}");
        assert_eq!(
            errs,
            vec![
                "colour: unknown field (expected settings, ingest, detect, gate, episodes, view, limits, learning, replay, cases, evidence, web, patrol, workers or cameras)".to_string(),
                "cameras[0].fps: unknown field `fps`, expected one of `id`, `name`, `url`, `enabled`, `analysis_fps`, `analysis_width`, `keyframe_only`, `transport`, `realtime`, `loop`, `watchdog_s`, `timezone`, `preset`, `footage`, `location`, `platform`, `continuous`, `visit_s`, `revisit_s`, `detect_crops`, `detect_crop_grid`, `gate_scope`, `detect_region`, `zones`, `rules`".into(),
                "settings.status_interval_s: must be a positive number of seconds, got 0".into(),
                "ingest.backoff_jitter: must be between 0 and 1, got 2".into(),
                "cameras[1].analysis_fps: must be from 1/60 (one frame a minute) to 10, got 20".into(),
                "cameras[1].realtime: applies to file:// cameras only; RTSP is always live".into(),
                "cameras[2].id: must be 1-64 characters of letters, digits, '-' or '_', got \"bad id!\"".into(),
                "cameras[2].analysis_width: must be an even number of pixels from 32 to 7680, got 33".into(),
                "cameras[2].url: malformed RTSP URL \"rtsp://***@/x\": empty host".into(),
            ]
        );
    }

    #[test]
    fn zones_and_rules_are_checked_with_their_paths() {
        let errs = parse(
            r#"
[[cameras]]
id = "a"
url = "rtsp://h/a"
timezone = "UTC+8"
[[cameras.zones]]
id = "road"
kind = "no_parking"
polygon = [[0.1, 0.1], [0.9, 0.1]]
[[cameras.zones]]
id = "stall"
kind = "no_vending"
polygon = [[0.1, 0.1], [1.5, 0.1], [0.5, 0.9]]
active_hours = "8am-5pm"
[[cameras.zones]]
id = "bow"
kind = "bin"
polygon = [[0.0, 0.0], [1.0, 1.0], [1.0, 0.0], [0.0, 1.0]]
[[cameras.zones]]
id = "kerb"
kind = "no_parking"
polygon = [[0.1, 0.5], [0.9, 0.5], [0.9, 0.9], [0.1, 0.9]]
[[cameras.rules]]
rule = "abandoned_vehicle"
zones = ["kerb", "nowhere"]
dwell_s = 0
[[cameras.rules]]
rule = "illegal_vendor"
zones = ["kerb"]
active_hours = "25:00-26:00"
"#,
        )
        .unwrap_err();
        assert_eq!(
            errs,
            vec![
                "cameras[0].timezone: cannot parse \"UTC+8\": expected a UTC offset like +08:00",
                "cameras[0].zones[0].polygon: needs at least 3 points, got 2",
                "cameras[0].zones[1].polygon: point 1 (1.5, 0.1) is outside 0..1 (coordinates are normalised to the frame)",
                "cameras[0].zones[1].active_hours: cannot parse \"8am-5pm\": expected HH:MM-HH:MM[, HH:MM-HH:MM ...]",
                "cameras[0].zones[2].polygon: is self-intersecting: edge 0-1 crosses edge 2-3",
                "cameras[0].rules[0].zones: zone \"nowhere\" does not exist on camera \"a\"",
                "cameras[0].rules[0].dwell_s: must be a positive number of seconds, got 0",
                "cameras[0].rules[1].zones: zone \"kerb\" is a no_parking zone; illegal_vendor watches no_vending zones",
                "cameras[0].rules[1].active_hours: cannot parse \"25:00-26:00\": expected HH:MM-HH:MM[, HH:MM-HH:MM ...]",
            ]
        );
        let bad_kind = parse("[[cameras]]\nid = \"a\"\nurl = \"rtsp://h/a\"\n[[cameras.rules]]\nrule = \"jaywalking\"\nzones = []\n").unwrap_err();
        assert!(
            bad_kind[0].starts_with("cameras[0].rules[0].rule: unknown variant `jaywalking`"),
            "{bad_kind:?}"
        );
    }

    #[test]
    fn a_category_table_missing_a_used_rule_is_a_config_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("cats.toml"),
            "scheme = \"x\"\nsource = \"视频抓拍\"\nchannel = \"c\"\n[rules.illegal_vendor]\nmajor_code = \"05\"\nmajor_name = \"街面秩序\"\nminor_code = \"0501\"\nminor_name = \"无照经营游商\"\ntime_limit = \"2工作时\"\n",
        )
        .unwrap();
        let text = r#"
[cases]
database = "sqlite://cases.db"
categories = "cats.toml"
[cases.webhook]
url = "http://127.0.0.1:9/cases"
secret = "do-not-print-me"
[[cameras]]
id = "a"
url = "rtsp://h/a"
[[cameras.zones]]
id = "p"
kind = "no_parking"
polygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0]]
[[cameras.rules]]
rule = "abandoned_vehicle"
zones = ["p"]
"#;
        let errs = PipelineConfig::parse(text, dir.path()).unwrap_err();
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert_eq!(errs[0].path, "cases.categories");
        assert!(
            errs[0].message.ends_with(
                "rules.abandoned_vehicle: no category for this rule, which the pipeline uses"
            ),
            "{errs:?}"
        );
        // With the shipped table it loads, and the secret stays out of debug output.
        let ok = text.replace(
            "cats.toml",
            &format!(
                "{}/pipelines/categories/default.toml",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../..")
            ),
        );
        let c = PipelineConfig::parse(&ok, dir.path()).unwrap();
        let cases = c.cases.as_ref().unwrap();
        assert_eq!(
            cases.database,
            format!("sqlite://{}", dir.path().join("cases.db").display())
        );
        assert!(!format!("{c:?}").contains("do-not-print-me"));
    }

    #[test]
    fn evidence_and_episode_storage_are_checked_with_their_paths() {
        let cam = "[[cameras]]\nid = \"a\"\nurl = \"rtsp://h/1\"\n";
        let errs = parse(&format!(
            "[episodes]\nin_database = true\n[evidence]\nroot = \"ev\"\npre_s = -1\nalert_ratio = 2\nring_mb = 0\nfont = \"/no/such/font.ttc\"\n{cam}"
        ))
        .unwrap_err();
        assert_eq!(errs.len(), 5, "{errs:?}");
        for (field, words) in [
            ("evidence.pre_s", "between 0 and 600"),
            ("evidence.alert_ratio", "(0, 1]"),
            ("evidence.ring_mb", "1..=4096"),
            ("evidence.font", "fonts-wqy-microhei"),
            ("episodes.in_database", "needs a [cases] section"),
        ] {
            assert!(
                errs.iter()
                    .any(|e| e.starts_with(field) && e.contains(words)),
                "{field}: {errs:?}"
            );
        }
        let ok = parse(&format!("[evidence]\nroot = \"ev\"\n{cam}")).unwrap();
        let ev = ok.evidence.unwrap();
        assert_eq!(ev.root, Path::new("/base/ev"));
        assert_eq!((ev.pre_s, ev.post_s, ev.quota_gb), (10.0, 10.0, 50.0));
        let errs = parse(&format!("[evidence]\nroot = \"ev\"\nclip = true\n{cam}")).unwrap_err();
        assert!(
            errs[0].starts_with("evidence.clip: unknown field"),
            "{errs:?}"
        );
    }

    #[test]
    fn duplicate_ids_are_rejected() {
        let errs = parse("[[cameras]]\nid = \"a\"\nurl = \"rtsp://h/1\"\n[[cameras]]\nid = \"a\"\nurl = \"rtsp://h/2\"\n").unwrap_err();
        assert_eq!(errs, vec!["cameras[1].id: duplicate camera id \"a\""]);
    }

    #[test]
    fn type_errors_name_the_nested_field() {
        let errs = parse("[ingest]\nwatchdog_s = \"ten\"\n[[cameras]]\nid = \"a\"\nurl = \"rtsp://h/a\"\nkeyframe_only = \"sometimes\"\n").unwrap_err();
        assert_eq!(errs.len(), 2, "{errs:?}");
        assert!(
            errs[0].starts_with("ingest.watchdog_s: invalid type: string \"ten\""),
            "{errs:?}"
        );
        assert!(
            errs[1].starts_with("cameras[0].keyframe_only: unknown variant `sometimes`"),
            "{errs:?}"
        );
    }

    #[test]
    fn syntax_errors_give_the_line() {
        let errs = parse("[[cameras]]\nid = \"a\"\nurl = \n").unwrap_err();
        assert_eq!(errs.len(), 1);
        assert!(errs[0].starts_with("not valid TOML (line 3)"), "{errs:?}");
    }

    #[test]
    fn missing_cameras_is_an_error() {
        assert_eq!(
            parse("[settings]\n").unwrap_err(),
            vec!["cameras: at least one camera is required"]
        );
    }

    #[test]
    fn shipped_pipelines_parse() {
        let dir = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).join("pipelines");
        let mut n = 0;
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "toml") {
                PipelineConfig::load(&path).unwrap_or_else(|e| panic!("{e}"));
                n += 1;
            }
        }
        assert!(n >= 1);
    }
}
