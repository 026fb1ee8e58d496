//! `[web]`: the review UI's listener, sessions and login limits.

use super::*;

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
    /// How long a capture claimed from the review queue (`POST /api/queue/claim`) stays
    /// reserved for its operator without a decision, in minutes. Default 5.
    #[serde(default = "default_claim_minutes")]
    pub claim_minutes: f64,
}

impl WebSettings {
    /// Whether browsers reach the UI over HTTPS.
    pub fn https(&self) -> bool {
        self.tls_cert.is_some() || self.behind_https_proxy
    }
}

pub(crate) fn default_claim_minutes() -> f64 {
    5.0
}

pub(crate) fn default_idle_min() -> f64 {
    30.0
}

pub(crate) fn default_listen() -> String {
    "127.0.0.1:8080".into()
}

pub(crate) fn default_session_h() -> f64 {
    12.0
}

pub(crate) fn default_login_attempts() -> u32 {
    5
}
