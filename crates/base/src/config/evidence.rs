//! `[evidence]`: where packages go, their clip, retention and the capture queue.

use super::*;

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

pub(crate) fn default_clip_s() -> f64 {
    10.0
}

pub(crate) fn default_ring_mb() -> u64 {
    64
}

pub(crate) fn default_max_age_days() -> f64 {
    90.0
}

pub(crate) fn default_closed_keep_days() -> f64 {
    30.0
}

pub(crate) fn default_quota_gb() -> f64 {
    50.0
}

pub(crate) fn default_alert_ratio() -> f64 {
    0.9
}

pub(crate) fn default_sweep_s() -> f64 {
    600.0
}

pub(crate) fn default_spool() -> PathBuf {
    PathBuf::from("spool")
}

pub(crate) fn default_spool_max() -> usize {
    10_000
}
