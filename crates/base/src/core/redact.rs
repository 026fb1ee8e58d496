//! Camera credentials never leave the process: every URL that reaches a log line, an error,
//! the status output or an API goes through [`redact_url`] first.

use std::fmt;

/// Replaces any `user:password@` part of a URL with `***@`, and the value of every query
/// parameter whose name looks like a secret (`password=`, `token=`, `key=`, ...) with `***`.
///
/// Works on strings that do not parse as URLs too, so a malformed URL in a config error
/// does not leak its password either.
pub fn redact_url(raw: &str) -> String {
    redact_query(&redact_userinfo(raw))
}

/// Parameter names (lower case, `-` as `_`) that carry secrets, whole or as a suffix
/// (`access_token`, `x_api_key`, `authkey`). Over-redacting a harmless name is the safe side.
const SECRET_PARAMS: &[&str] = &[
    "password",
    "passwd",
    "pwd",
    "pass",
    "token",
    "key",
    "secret",
    "signature",
    "sig",
    "auth",
    "authorization",
    "credential",
    "credentials",
    "session",
    "sessionid",
    "apikey",
];

fn secret_name(name: &str) -> bool {
    let n = name.to_ascii_lowercase().replace('-', "_");
    SECRET_PARAMS.iter().any(|s| n.ends_with(s))
}

/// Blanks the values of secret-looking query parameters (before any `#`).
fn redact_query(url: &str) -> String {
    let Some(q) = url.find('?') else {
        return url.to_string();
    };
    let (head, rest) = url.split_at(q + 1);
    let (query, frag) = match rest.find('#') {
        Some(h) => rest.split_at(h),
        None => (rest, ""),
    };
    let parts: Vec<String> = query
        .split(['&', ';'])
        .map(|p| match p.split_once('=') {
            Some((k, _)) if secret_name(k) => format!("{k}=***"),
            _ => p.to_string(),
        })
        .collect();
    format!("{head}{}{frag}", parts.join("&"))
}

fn redact_userinfo(raw: &str) -> String {
    let Some(scheme_end) = raw.find("://") else {
        return raw.to_string();
    };
    let rest_start = scheme_end + 3;
    let rest = &raw[rest_start..];
    // The authority ends at the first '/', '?' or '#'.
    let auth_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..auth_end];
    match authority.rfind('@') {
        Some(at) => format!(
            "{}***@{}{}",
            &raw[..rest_start],
            &authority[at + 1..],
            &rest[auth_end..]
        ),
        None => raw.to_string(),
    }
}

/// A URL that displays with its credentials redacted. Holds the real URL for connecting.
#[derive(Clone, PartialEq, Eq)]
pub struct RedactedUrl(String);

impl RedactedUrl {
    pub fn new(raw: impl Into<String>) -> Self {
        Self(raw.into())
    }

    /// The real URL, credentials included: only for handing to the network layer.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl fmt::Debug for RedactedUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "RedactedUrl({})", redact_url(&self.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_user_and_password() {
        assert_eq!(
            redact_url("rtsp://admin:s3cr%40t@10.0.0.5:554/Streaming/101"),
            "rtsp://***@10.0.0.5:554/Streaming/101"
        );
        assert_eq!(redact_url("rtsp://admin@cam/x"), "rtsp://***@cam/x");
        // An '@' in the password itself (unencoded) still goes.
        assert_eq!(redact_url("rtsp://a:b@c@host/p"), "rtsp://***@host/p");
        assert_eq!(redact_url("rtsp://u:p@host"), "rtsp://***@host");
    }

    #[test]
    fn redacts_secret_query_parameters() {
        assert_eq!(
            redact_url("rtsp://10.0.0.5/live?channel=1&password=hunter2&subtype=0"),
            "rtsp://10.0.0.5/live?channel=1&password=***&subtype=0"
        );
        assert_eq!(
            redact_url("http://u:p@vms/api?access_token=abc&X-Api-Key=k1#frag"),
            "http://***@vms/api?access_token=***&X-Api-Key=***#frag"
        );
        assert_eq!(
            redact_url("rtsp://h/s?user=admin&pwd=1&Token=2&authkey=3&sessionid=4"),
            "rtsp://h/s?user=admin&pwd=***&Token=***&authkey=***&sessionid=***"
        );
        // Names that only contain a short secret word stay.
        assert_eq!(
            redact_url("rtsp://h/s?keyframe=1&passive=1"),
            "rtsp://h/s?keyframe=1&passive=1"
        );
    }

    #[test]
    fn leaves_plain_urls_alone() {
        assert_eq!(redact_url("rtsp://host:8554/a@b"), "rtsp://host:8554/a@b");
        assert_eq!(redact_url("file:///tmp/x.mp4"), "file:///tmp/x.mp4");
        assert_eq!(redact_url("not a url"), "not a url");
    }

    #[test]
    fn display_and_debug_redact() {
        let u = RedactedUrl::new("rtsp://u:hunter2@h/p");
        assert!(!format!("{u} {u:?}").contains("hunter2"));
        assert_eq!(u.expose(), "rtsp://u:hunter2@h/p");
    }
}
