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

/// Resolves `[web]`'s paths against the config's folder and checks it: TLS files in pairs
/// and present, ranges, the listen address, and a `[cases]` database for its users.
pub(super) fn resolve_web(
    w: &mut WebSettings,
    has_cases: bool,
    base: &Path,
    problems: &mut Vec<ConfigProblem>,
) {
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
    if !(w.claim_minutes.is_finite() && (0.5..=120.0).contains(&w.claim_minutes)) {
        problems.push(ConfigProblem {
            path: "web.claim_minutes".into(),
            message: format!("must be from 0.5 to 120, got {}", w.claim_minutes),
        });
    }
    if w.listen.parse::<std::net::SocketAddr>().is_err() {
        problems.push(ConfigProblem {
            path: "web.listen".into(),
            message: format!("expected IP:PORT, got {:?}", w.listen),
        });
    }
    if !has_cases {
        problems.push(ConfigProblem {
            path: "web".into(),
            message: "needs a [cases] section: users, captures and cases live in its database"
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
