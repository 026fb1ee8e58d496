//! The JSON API behind every page (`/api/...`, described at `/api/openapi.json`), the CSV
//! export and the evidence file route.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Auth;
use super::error::WebError;
use super::review::{
    RejectBody, camera_views, do_confirm, do_correct_plate, do_reject, manifest_of, sees_plates,
};
use super::state::WebState;
use crate::store::query::{CaptureFilter, CaptureRow, CaseFilter, check_offset};

/// One capture and its evidence package's manifest, checked against the files.
#[derive(Serialize, ToSchema)]
pub struct CaptureDetail {
    capture: CaptureRow,
    /// The package's `manifest.json` (see docs/evidence.md); null when it is missing or
    /// fails its hash check.
    #[schema(value_type = Option<Object>)]
    manifest: Option<crate::model::package::PackageManifest>,
}

/// A confirmed capture's case.
#[derive(Serialize, ToSchema)]
pub struct Confirmed {
    case_number: String,
}

/// A rejected capture.
#[derive(Serialize, ToSchema)]
pub struct Rejected {
    rejected: String,
}

/// A learned suppression put back in the review queue.
#[derive(Serialize, ToSchema)]
pub struct Requeued {
    pending_review: String,
}

/// A remembered verdict forgotten.
#[derive(Serialize, ToSchema)]
pub struct Forgotten {
    forgotten: String,
}

/// The review queue, filtered and ordered.
#[utoipa::path(
    get,
    path = "/api/captures",
    tag = "review",
    summary = "The review queue (viewer)",
    params(CaptureFilter),
    responses(
        (status = 200, description = "captures", body = [CaptureRow]),
        (status = 401, description = "not authenticated"),
        (status = 422, description = "an unknown query parameter, or an offset past 10000"),
    )
)]
pub async fn captures(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Query(f): Query<CaptureFilter>,
) -> Result<Response, WebError> {
    check_offset(f.offset).map_err(WebError::unprocessable)?;
    let rows = st.store.list_captures(&f).await?;
    let rows: Vec<CaptureRow> = if sees_plates(&auth) {
        rows
    } else {
        rows.into_iter().map(CaptureRow::masked).collect()
    };
    Ok(Json(rows).into_response())
}

#[utoipa::path(
    get,
    path = "/api/captures/{id}",
    tag = "review",
    summary = "One capture with its verified evidence manifest (viewer)",
    params(("id" = String, Path, description = "the capture's id")),
    responses(
        (status = 200, description = "capture and manifest", body = CaptureDetail),
        (status = 401, description = "not authenticated"),
        (status = 404, description = "no such capture"),
    )
)]
pub async fn capture(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let c = st
        .store
        .capture(&id)
        .await?
        .ok_or_else(|| WebError::not_found("no such capture"))?;
    let mut manifest = manifest_of(&st, &c.evidence);
    let c = if sees_plates(&auth) {
        c
    } else {
        if let Some(m) = manifest.as_mut() {
            m.plate = None;
        }
        c.masked()
    };
    Ok(Json(CaptureDetail {
        capture: c,
        manifest,
    })
    .into_response())
}

#[utoipa::path(
    post,
    path = "/api/captures/{id}/confirm",
    tag = "review",
    summary = "Confirm: files the case and its outbox row (operator)",
    params(("id" = String, Path, description = "the capture's id")),
    responses(
        (status = 200, description = "the case filed", body = Confirmed),
        (status = 401, description = "not authenticated"),
        (status = 403, description = "role too low, or CSRF token missing"),
        (status = 404, description = "no such capture"),
        (status = 409, description = "already rejected"),
    )
)]
pub async fn confirm(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let case_number = do_confirm(&st, &auth, &id).await?;
    Ok(Json(Confirmed { case_number }).into_response())
}

/// An operator's reading of a capture's plate.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlateBody {
    /// The plate as the operator reads it (separators and case do not matter); null or
    /// empty clears it.
    pub plate: Option<String>,
}

/// A capture's plate after a correction.
#[derive(Serialize, ToSchema)]
pub struct PlateSet {
    capture: String,
    plate: Option<String>,
}

#[utoipa::path(
    put,
    path = "/api/captures/{id}/plate",
    tag = "review",
    summary = "Correct a capture's plate (车牌号): validated, stored, audited as plate.correct (operator)",
    params(("id" = String, Path, description = "the capture's id")),
    request_body = PlateBody,
    responses(
        (status = 200, description = "the plate as stored", body = PlateSet),
        (status = 401, description = "not authenticated"),
        (status = 403, description = "role too low, or CSRF token missing"),
        (status = 404, description = "no such capture"),
        (status = 422, description = "not a valid plate; the message says which formats are"),
    )
)]
pub async fn put_plate(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<String>,
    Json(body): Json<PlateBody>,
) -> Result<Response, WebError> {
    let plate = do_correct_plate(&st, &auth, &id, body.plate.as_deref()).await?;
    Ok(Json(PlateSet { capture: id, plate }).into_response())
}

#[utoipa::path(
    post,
    path = "/api/captures/{id}/reject",
    tag = "review",
    summary = "Reject with a reason (operator)",
    params(("id" = String, Path, description = "the capture's id")),
    request_body = RejectBody,
    responses(
        (status = 200, description = "rejected", body = Rejected),
        (status = 401, description = "not authenticated"),
        (status = 403, description = "role too low, or CSRF token missing"),
        (status = 404, description = "no such capture"),
        (status = 409, description = "not pending review"),
        (status = 422, description = "unknown reason"),
    )
)]
pub async fn reject(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<String>,
    Json(body): Json<RejectBody>,
) -> Result<Response, WebError> {
    do_reject(&st, &auth, &id, &body).await?;
    Ok(Json(Rejected { rejected: id }).into_response())
}

/// A page of cases and how many match the filters in all.
#[derive(Serialize, ToSchema)]
pub struct CasesPage {
    cases: Vec<crate::store::CaseRecord>,
    total: i64,
}

#[utoipa::path(
    get,
    path = "/api/cases",
    tag = "cases",
    summary = "Cases, newest first (viewer)",
    params(CaseFilter),
    responses(
        (status = 200, description = "a page of cases and the total", body = CasesPage),
        (status = 401, description = "not authenticated"),
    )
)]
pub async fn cases(
    State(st): State<Arc<WebState>>,
    Query(f): Query<CaseFilter>,
) -> Result<Response, WebError> {
    check_offset(f.offset).map_err(WebError::unprocessable)?;
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
    check_offset(f.offset).map_err(WebError::unprocessable)?;
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

#[utoipa::path(
    get,
    path = "/api/cameras",
    tag = "cameras",
    summary = "Cameras: health, analysis counters, zones; URLs without credentials (viewer)",
    responses(
        (status = 200, description = "one object per camera", body = [Object]),
        (status = 401, description = "not authenticated"),
    )
)]
pub async fn cameras(State(st): State<Arc<WebState>>) -> Response {
    Json(camera_views(&st)).into_response()
}

#[utoipa::path(
    get,
    path = "/api/summary",
    tag = "cases",
    summary = "Captures per rule with review outcomes, the last 30 days, outbox and filing status (viewer)",
    responses(
        (status = 200, description = "summary", body = Object),
        (status = 401, description = "not authenticated"),
    )
)]
pub async fn summary(State(st): State<Arc<WebState>>) -> Result<Response, WebError> {
    let rules = st.store.rule_summary().await?;
    let counts = st.store.counts().await?;
    let recent = st.store.recent(super::summary::WINDOW_DAYS).await?;
    Ok(Json(serde_json::json!({
        "rules": rules,
        "last_30_days": super::summary::summarise(&recent, st.cases.utc_offset_s),
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
    let got = st.latest.lock().get(&id).cloned();
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

/// Learned suppressions, remembered verdicts, calibration proposals and overrides.
#[utoipa::path(
    get,
    path = "/api/learning",
    tag = "learning",
    summary = "Learned suppressions, the verdict memory, calibration proposals and applied overrides (viewer)",
    responses(
        (status = 200, description = "learning view", body = Object),
        (status = 401, description = "not authenticated"),
    )
)]
pub async fn learning(State(st): State<Arc<WebState>>) -> Result<Response, WebError> {
    let v = super::review::learning_view(&st).await?;
    Ok(Json(v).into_response())
}

#[utoipa::path(
    post,
    path = "/api/learning/{id}/undo",
    tag = "learning",
    summary = "Undo a learned suppression: the capture joins the review queue; audited (operator)",
    params(("id" = String, Path, description = "the suppressed capture's id")),
    responses(
        (status = 200, description = "queued for review", body = Requeued),
        (status = 401, description = "not authenticated"),
        (status = 403, description = "role too low, or CSRF token missing"),
        (status = 409, description = "not a learned suppression"),
    )
)]
pub async fn undo_learned(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    super::review::do_undo(&st, &auth, &id).await?;
    Ok(Json(Requeued { pending_review: id }).into_response())
}

#[utoipa::path(
    post,
    path = "/api/learning/{id}/forget",
    tag = "learning",
    summary = "Forget the remembered verdict on a capture; audited (operator)",
    params(("id" = String, Path, description = "the capture whose verdict is remembered")),
    responses(
        (status = 200, description = "forgotten", body = Forgotten),
        (status = 401, description = "not authenticated"),
        (status = 403, description = "role too low, or CSRF token missing"),
        (status = 404, description = "no such entry"),
    )
)]
pub async fn forget_memory(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    super::review::do_forget(&st, &auth, &id).await?;
    Ok(Json(Forgotten { forgotten: id }).into_response())
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
}
