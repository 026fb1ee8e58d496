//! The review actions, shared by the JSON API and the pages: confirm and reject a capture
//! (with the operator's role checked), a capture's verified manifest, the cameras as shown,
//! and how store errors become HTTP answers.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::auth::{Auth, server_error};
use super::state::WebState;
use crate::store::StoreError;
use crate::store::users::Role;

/// Reasons an operator can give for a rejection.
pub const REJECT_REASONS: &[&str] = &[
    "false_detection",
    "compliant_vendor",
    "duplicate",
    "not_a_problem",
    "other",
];

pub fn store_error(e: StoreError) -> Response {
    match e {
        StoreError::NoCapture(_) => (StatusCode::NOT_FOUND, "no such capture").into_response(),
        StoreError::NotPending { status, .. } => (
            StatusCode::CONFLICT,
            format!("the capture is {status}, not pending review"),
        )
            .into_response(),
        e => server_error(e),
    }
}

/// The package manifest of a capture's evidence, if it has one under the root.
pub fn manifest_of(
    st: &WebState,
    evidence: &Option<serde_json::Value>,
) -> Option<crate::evidence::PackageManifest> {
    let root = st.evidence_root.as_ref()?;
    let rel = evidence.as_ref()?.get("package")?.as_str()?;
    let dir = crate::evidence::resolve(root, rel)?;
    crate::evidence::verify(&dir).ok()
}

/// Confirms a capture: files its case and its outbox row.
pub async fn do_confirm(st: &WebState, auth: &Auth, id: &str) -> Result<String, Response> {
    auth.require(Role::Operator)?;
    let capture = st
        .store
        .capture(id)
        .await
        .map_err(store_error)?
        .ok_or_else(|| (StatusCode::NOT_FOUND, "no such capture").into_response())?;
    let location = st
        .cameras
        .get(&capture.camera)
        .map(|c| c.location.clone())
        .unwrap_or_default();
    let policy = st.cases.policy();
    st.store
        .confirm(id, &auth.user.name, &policy, &location, st.now())
        .await
        .map_err(store_error)
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    pub reason: String,
    #[serde(default)]
    pub note: Option<String>,
    /// The CSRF token, when the body is an HTML form.
    #[serde(default)]
    pub csrf: Option<String>,
}

pub async fn do_reject(
    st: &WebState,
    auth: &Auth,
    id: &str,
    body: &RejectBody,
) -> Result<(), Response> {
    auth.require(Role::Operator)?;
    if !REJECT_REASONS.contains(&body.reason.as_str()) {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            format!("reason must be one of {}", REJECT_REASONS.join(", ")),
        )
            .into_response());
    }
    let note = body.note.as_deref().filter(|n| !n.trim().is_empty());
    if note.is_some_and(|n| n.chars().count() > 2000) {
        return Err((
            StatusCode::UNPROCESSABLE_ENTITY,
            "note is longer than 2000 characters",
        )
            .into_response());
    }
    st.store
        .reject(id, &auth.user.name, &body.reason, note, st.now())
        .await
        .map_err(store_error)
}

/// One camera as the API shows it: never its credentials.
#[derive(Serialize)]
pub struct CameraView {
    pub id: String,
    pub name: String,
    pub url: String,
    pub status: Option<crate::ingest::CameraStatus>,
    pub analysis: Option<crate::analysis::AnalysisStatus>,
    pub zones: Vec<serde_json::Value>,
}

pub fn camera_views(st: &WebState) -> Vec<CameraView> {
    let health = st.health.snapshot(st.clock.now());
    let analysis = st.analysis.lock().expect("analysis board").clone();
    st.cameras
        .values()
        .map(|c| CameraView {
            id: c.id.clone(),
            name: c.name.clone(),
            url: c.redacted_url(),
            status: health.iter().find(|h| h.health.id == c.id).cloned(),
            analysis: analysis.get(&c.id).copied(),
            zones: c
                .zones
                .iter()
                .map(|z| serde_json::json!({ "id": z.id, "polygon": z.polygon.0 }))
                .collect(),
        })
        .collect()
}
