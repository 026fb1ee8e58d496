//! The JSON API behind every page (`/api/...`, described at `/api/openapi.json`), the CSV
//! export and the evidence file route.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::auth::Auth;
use super::error::WebError;
use super::review::{RejectBody, camera_views, do_confirm, do_reject, manifest_of};
use super::state::WebState;
use crate::store::query::{CaptureFilter, CaseFilter};

pub async fn captures(
    State(st): State<Arc<WebState>>,
    Query(f): Query<CaptureFilter>,
) -> Result<Response, WebError> {
    Ok(Json(st.store.list_captures(&f).await?).into_response())
}

pub async fn capture(
    State(st): State<Arc<WebState>>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let c = st
        .store
        .capture(&id)
        .await?
        .ok_or_else(|| WebError::not_found("no such capture"))?;
    let manifest = manifest_of(&st, &c.evidence);
    Ok(Json(serde_json::json!({ "capture": c, "manifest": manifest })).into_response())
}

pub async fn confirm(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let case = do_confirm(&st, &auth, &id).await?;
    Ok(Json(serde_json::json!({ "case_number": case })).into_response())
}

pub async fn reject(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<String>,
    Json(body): Json<RejectBody>,
) -> Result<Response, WebError> {
    do_reject(&st, &auth, &id, &body).await?;
    Ok(Json(serde_json::json!({ "rejected": id })).into_response())
}

#[derive(Serialize)]
struct CasesPage {
    cases: Vec<crate::store::CaseRecord>,
    total: i64,
}

pub async fn cases(
    State(st): State<Arc<WebState>>,
    Query(f): Query<CaseFilter>,
) -> Result<Response, WebError> {
    let (cases, total) = st.store.list_cases(&f, st.cases.utc_offset_s).await?;
    Ok(Json(CasesPage { cases, total }).into_response())
}

/// A CSV field, quoted, with formula-starting characters defused for spreadsheets.
fn csv_field(s: &str) -> String {
    let s = if s.starts_with(['=', '+', '-', '@']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    format!("\"{}\"", s.replace('"', "\"\""))
}

pub async fn cases_csv(
    State(st): State<Arc<WebState>>,
    Query(mut f): Query<CaseFilter>,
) -> Result<Response, WebError> {
    f.limit = Some(f.limit.unwrap_or(500));
    let (cases, _) = st.store.list_cases(&f, st.cases.utc_offset_s).await?;
    let mut out = String::from(
        "case_number,status,rule,major_code,major_name,minor_code,minor_name,time_limit,camera,address,grid_code,reported_at,aggregation,description\n",
    );
    for c in cases {
        let row = [
            c.case_number,
            c.status,
            c.rule,
            c.major_code,
            c.major_name,
            c.minor_code,
            c.minor_name,
            c.time_limit,
            c.camera,
            c.location.address,
            c.location.grid_code,
            crate::model::package::format_time(c.reported_at, st.cases.utc_offset_s),
            c.aggregation.to_string(),
            c.description,
        ];
        out.push_str(
            &row.iter()
                .map(|f| csv_field(f))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push('\n');
    }
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"cases.csv\"",
            ),
        ],
        out,
    )
        .into_response())
}

pub async fn cameras(State(st): State<Arc<WebState>>) -> Response {
    Json(camera_views(&st)).into_response()
}

pub async fn summary(State(st): State<Arc<WebState>>) -> Result<Response, WebError> {
    let rules = st.store.rule_summary().await?;
    let counts = st.store.counts().await?;
    let outcomes = st.store.recent_outcomes().await?;
    Ok(Json(serde_json::json!({
        "rules": rules,
        "last_30_days": super::summary::summarise(&outcomes, st.cases.utc_offset_s),
        "outbox": { "pending": counts.outbox_pending, "delivered": counts.outbox_delivered, "dead": counts.outbox_dead },
        "filing": st.filing.as_ref().map(|f| f.status()),
    }))
    .into_response())
}

/// Serves a file of an evidence package. The path must stay inside the storage root: no
/// `..`, no absolute path, no hidden component, and no symlink that leads out.
pub async fn evidence(State(st): State<Arc<WebState>>, Path(path): Path<String>) -> Response {
    let not_found = || (StatusCode::NOT_FOUND, "not found").into_response();
    let Some(root) = st.evidence_root.as_ref() else {
        return not_found();
    };
    if path.contains('\0') || path.contains('\\') {
        return not_found();
    }
    let Some(full) = crate::model::package::resolve(root, &path) else {
        return not_found();
    };
    let (Ok(real), Ok(real_root)) = (std::fs::canonicalize(&full), std::fs::canonicalize(root))
    else {
        return not_found();
    };
    if !real.starts_with(&real_root) || !real.is_file() {
        return not_found();
    }
    let kind = match real.extension().and_then(|e| e.to_str()) {
        Some("jpg") => "image/jpeg",
        Some("mp4") => "video/mp4",
        Some("json") => "application/json",
        _ => return not_found(),
    };
    match tokio::fs::read(&real).await {
        Ok(bytes) => (
            [
                (header::CONTENT_TYPE, kind),
                (header::CACHE_CONTROL, "private, max-age=3600"),
                (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            bytes,
        )
            .into_response(),
        Err(_) => not_found(),
    }
}

/// A camera's latest frame (re-encoded every 10 s of its stream).
pub async fn latest_frame(State(st): State<Arc<WebState>>, Path(id): Path<String>) -> Response {
    let got = st.latest.lock().expect("latest frames").get(&id).cloned();
    match got {
        Some((jpeg, _)) => (
            [
                (header::CONTENT_TYPE, "image/jpeg"),
                (header::CACHE_CONTROL, "no-store"),
            ],
            jpeg.as_ref().clone(),
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no frame yet").into_response(),
    }
}

pub async fn openapi() -> Response {
    let doc: serde_json::Value = serde_json::from_str(include_str!("openapi.json"))
        .expect("the shipped OpenAPI document parses");
    Json(doc).into_response()
}

/// Learned suppressions, remembered verdicts, calibration proposals and overrides.
pub async fn learning(State(st): State<Arc<WebState>>) -> Result<Response, WebError> {
    let v = super::review::learning_view(&st).await?;
    Ok(Json(v).into_response())
}

pub async fn undo_learned(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    super::review::do_undo(&st, &auth, &id).await?;
    Ok(Json(serde_json::json!({ "pending_review": id })).into_response())
}

pub async fn forget_memory(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    super::review::do_forget(&st, &auth, &id).await?;
    Ok(Json(serde_json::json!({ "forgotten": id })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_fields_are_quoted_and_formulas_defused() {
        assert_eq!(csv_field("a,\"b\""), "\"a,\"\"b\"\"\"");
        assert_eq!(csv_field("=cmd()"), "\"'=cmd()\"");
        assert_eq!(csv_field("视频抓拍"), "\"视频抓拍\"");
    }

    #[test]
    fn the_openapi_document_names_every_api_route() {
        let doc: serde_json::Value = serde_json::from_str(include_str!("openapi.json")).unwrap();
        for p in [
            "/api/captures",
            "/api/captures/{id}",
            "/api/captures/{id}/confirm",
            "/api/captures/{id}/reject",
            "/api/cases",
            "/api/cameras",
            "/api/fleet",
            "/api/summary",
            "/metrics",
        ] {
            assert!(doc["paths"].get(p).is_some(), "{p}");
        }
    }
}
