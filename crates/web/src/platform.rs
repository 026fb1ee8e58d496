//! `POST /platform/callback`: the city platform reports case progress (派遣, 处置完毕,
//! returned, closed). Authenticated by an HMAC-SHA256 signature with the shared secret of
//! `[cases.platform]`, over `"{timestamp}.{nonce}.{body}"`; a timestamp off by more than
//! `max_skew_s` or a nonce seen before is refused. Reports are idempotent on their event id.
//! Every refusal is a 4xx that changes nothing. See docs/platform.md.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::error::WebError;
use super::state::WebState;
use crate::store::progress::{Applied, CaseStatus, PlatformEvent};

pub const TIMESTAMP: &str = "x-platform-timestamp";
pub const NONCE: &str = "x-platform-nonce";
pub const SIGNATURE: &str = "x-platform-signature";

/// The HMAC over `"{timestamp}.{nonce}.{body}"`.
fn mac(secret: &str, timestamp: &str, nonce: &str, body: &[u8]) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    for part in [timestamp.as_bytes(), b".", nonce.as_bytes(), b".", body] {
        mac.update(part);
    }
    mac
}

/// The signature header's value for a callback (what the platform computes).
pub fn sign(secret: &str, timestamp: &str, nonce: &str, body: &[u8]) -> String {
    let m = mac(secret, timestamp, nonce, body);
    format!("sha256={}", hex::encode(m.finalize().into_bytes()))
}

/// Checks the signature in constant time.
fn signature_ok(secret: &str, timestamp: &str, nonce: &str, body: &[u8], given: &str) -> bool {
    let Some(hex_sig) = given.strip_prefix("sha256=") else {
        return false;
    };
    let Ok(sig) = hex::decode(hex_sig) else {
        return false;
    };
    mac(secret, timestamp, nonce, body)
        .verify_slice(&sig)
        .is_ok()
}

fn refuse(code: StatusCode, why: &str) -> Response {
    tracing::warn!(
        status = code.as_u16(),
        reason = why,
        "platform callback refused"
    );
    (code, axum::Json(serde_json::json!({ "error": why }))).into_response()
}

/// What a report did: `applied` is false for a report seen before.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct ReportAnswer {
    case_number: String,
    status: String,
    applied: bool,
}

#[utoipa::path(
    post,
    path = "/platform/callback",
    tag = "platform",
    summary = "The city platform reports case progress",
    description = "Not a session route: authenticated by X-Platform-Signature: sha256=HMAC-SHA256(secret, \"{timestamp}.{nonce}.{body}\") with [cases.platform] secret, X-Platform-Timestamp (Unix seconds, within max_skew_s) and X-Platform-Nonce (8-128 characters, never reused). See docs/platform.md.",
    security(()),
    params(
        ("X-Platform-Timestamp" = String, Header, description = "Unix seconds"),
        ("X-Platform-Nonce" = String, Header, description = "8 to 128 characters, never reused"),
        ("X-Platform-Signature" = String, Header, description = "sha256=<hex HMAC>"),
    ),
    request_body = PlatformEvent,
    responses(
        (status = 200, description = "the case's status after the report", body = ReportAnswer),
        (status = 400, description = "malformed body, timestamp or nonce"),
        (status = 401, description = "missing headers, bad signature or stale timestamp"),
        (status = 404, description = "no such case, or callbacks not configured"),
        (status = 409, description = "the case's status does not allow the report, or the nonce was used before"),
    )
)]
pub async fn callback(
    State(st): State<Arc<WebState>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let Some(p) = &st.cases.platform else {
        return refuse(
            StatusCode::NOT_FOUND,
            "platform callbacks are not configured ([cases.platform])",
        );
    };
    let h = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let (Some(ts), Some(nonce), Some(sig)) = (h(TIMESTAMP), h(NONCE), h(SIGNATURE)) else {
        return refuse(
            StatusCode::UNAUTHORIZED,
            "missing X-Platform-Timestamp, X-Platform-Nonce or X-Platform-Signature",
        );
    };
    if !signature_ok(&p.secret, ts, nonce, &body, sig) {
        return refuse(StatusCode::UNAUTHORIZED, "bad signature");
    }
    let now = st.now();
    match ts.parse::<f64>() {
        Ok(t) if t.is_finite() && (now - t).abs() <= p.max_skew_s => {}
        Ok(_) => {
            return refuse(
                StatusCode::UNAUTHORIZED,
                "stale timestamp: outside the allowed clock skew",
            );
        }
        Err(_) => return refuse(StatusCode::BAD_REQUEST, "timestamp is not Unix seconds"),
    }
    if !(8..=128).contains(&nonce.len()) {
        return refuse(StatusCode::BAD_REQUEST, "nonce must be 8 to 128 characters");
    }
    let ev: PlatformEvent = match serde_json::from_slice(&body) {
        Ok(e) => e,
        Err(e) => {
            return refuse(StatusCode::BAD_REQUEST, &format!("body: {e}"));
        }
    };
    if ev.event_id.is_empty() || ev.event_id.len() > 200 {
        return refuse(
            StatusCode::BAD_REQUEST,
            "event_id must be 1 to 200 characters",
        );
    }
    let applied = match st
        .store
        .apply_platform(&ev, "platform", Some(nonce), &st.cases.closure, now)
        .await
    {
        Ok(a) => a,
        Err(e) => return WebError::internal(e).into_response(),
    };
    let answer = |status: CaseStatus, applied: bool| {
        axum::Json(ReportAnswer {
            case_number: ev.case_number.clone(),
            status: status.as_str().to_string(),
            applied,
        })
        .into_response()
    };
    match applied {
        Applied::Applied(s) => {
            tracing::info!(case = %ev.case_number, status = s.as_str(), event = %ev.event_id, "platform reported case progress");
            if s == CaseStatus::Handled {
                // The cameras start looking now rather than at the next reload.
                match st.store.waiting_checks().await {
                    Ok(list) => st.checks.replace(list),
                    Err(e) => tracing::warn!(error = %e, "closure checks reload at the next round"),
                }
            }
            answer(s, true)
        }
        Applied::Duplicate(s) => answer(s, false),
        Applied::UnknownCase => refuse(StatusCode::NOT_FOUND, "no such case"),
        Applied::Conflict { from, report } => refuse(
            StatusCode::CONFLICT,
            &format!(
                "the case is {}: a {} report does not apply",
                from.as_str(),
                serde_json::to_value(report)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default()
            ),
        ),
        Applied::Replayed => refuse(StatusCode::CONFLICT, "nonce already used (replay)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_cover_timestamp_nonce_and_body() {
        let s = sign("secret-secret-16", "100", "nonce-1", b"{}");
        assert!(signature_ok(
            "secret-secret-16",
            "100",
            "nonce-1",
            b"{}",
            &s
        ));
        assert!(!signature_ok(
            "secret-secret-16",
            "101",
            "nonce-1",
            b"{}",
            &s
        ));
        assert!(!signature_ok(
            "secret-secret-16",
            "100",
            "nonce-2",
            b"{}",
            &s
        ));
        assert!(!signature_ok(
            "secret-secret-16",
            "100",
            "nonce-1",
            b"{ }",
            &s
        ));
        assert!(!signature_ok(
            "other-secret-016",
            "100",
            "nonce-1",
            b"{}",
            &s
        ));
        assert!(!signature_ok(
            "secret-secret-16",
            "100",
            "nonce-1",
            b"{}",
            "sha256=zz"
        ));
    }
}
