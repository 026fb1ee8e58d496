//! The review queue shared by several operators: `POST /api/queue/claim` reserves the next
//! pending capture for the caller (in the order and with the filters the caller asks for)
//! and `POST /api/queue/release` gives claims back. A claim ends with a decision, a release
//! or after `[web] claim_minutes`; no two operators hold the same capture, and a decision on a
//! capture another operator holds is refused with 409.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::auth::Auth;
use super::error::WebError;
use super::state::WebState;
use crate::store::query::{CaptureFilter, CaptureRow};
use crate::store::users::Role;

/// A claimed capture: the capture as the queue lists it, with `id`, and until when the
/// claim holds.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Claimed {
    #[serde(flatten)]
    capture: CaptureRow,
    /// Unix seconds; a decision before then is the caller's alone.
    expires_at: f64,
}

#[utoipa::path(
    post,
    path = "/api/queue/claim",
    tag = "review",
    summary = "Claim the next pending capture for the calling operator (operator)",
    description = "The next pending capture, in the order and with the filters given, that no one else holds; \
        a caller who already holds a pending capture gets that one again, its claim renewed. \
        The claim ends with a decision, a release, or after [web] claim_minutes.",
    params(CaptureFilter),
    responses(
        (status = 200, description = "the claimed capture", body = Claimed),
        (status = 204, description = "nothing left to claim"),
        (status = 401, description = "not authenticated"),
        (status = 403, description = "role too low, or CSRF token missing"),
    )
)]
pub async fn claim(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Query(f): Query<CaptureFilter>,
) -> Result<Response, WebError> {
    auth.require(Role::Operator)?;
    let ttl = st.settings.claim_minutes * 60.0;
    match st
        .store
        .claim_next(&auth.user.name, &f, st.now(), ttl)
        .await?
    {
        Some(c) => Ok(Json(Claimed {
            capture: c.capture,
            expires_at: c.expires_at,
        })
        .into_response()),
        None => Ok(StatusCode::NO_CONTENT.into_response()),
    }
}

/// Which claims to give back.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReleaseBody {
    /// The capture to give back; absent: every claim the caller holds.
    #[serde(default)]
    pub id: Option<String>,
}

/// How many claims were given back.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Released {
    released: u64,
}

#[utoipa::path(
    post,
    path = "/api/queue/release",
    tag = "review",
    summary = "Give back the caller's claim on a capture, or all of them (operator)",
    request_body = ReleaseBody,
    responses(
        (status = 200, description = "how many claims were given back", body = Released),
        (status = 401, description = "not authenticated"),
        (status = 403, description = "role too low, or CSRF token missing"),
    )
)]
pub async fn release(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Json(b): Json<ReleaseBody>,
) -> Result<Response, WebError> {
    auth.require(Role::Operator)?;
    let released = st
        .store
        .release_claims(&auth.user.name, b.id.as_deref())
        .await?;
    Ok(Json(Released { released }).into_response())
}
