//! `[settings]`: process-wide settings (shutdown grace), and their validation.

use super::*;

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

pub(crate) fn validate_settings(s: &Settings, problems: &mut Vec<ConfigProblem>) {
    positive("settings.status_interval_s", s.status_interval_s, problems);
    positive(
        "settings.shutdown_timeout_s",
        s.shutdown_timeout_s,
        problems,
    );
}
