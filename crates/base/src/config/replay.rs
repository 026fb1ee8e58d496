//! `[replay]`: how recorded footage is replayed.

use super::*;

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
