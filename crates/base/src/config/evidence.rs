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

/// Resolves `[evidence]`'s paths against the config's folder and checks its ranges.
pub(super) fn resolve_evidence(
    e: &mut EvidenceSettings,
    base: &Path,
    problems: &mut Vec<ConfigProblem>,
) {
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
