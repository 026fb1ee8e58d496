//! The fleet view: every camera of every worker, from the `camera_status` rows the workers
//! write each heartbeat, with the lease holder (`/api/fleet`, the cameras page's "Fleet").

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};

use super::error::WebError;
use super::state::WebState;

/// Every camera of every worker, as the workers last wrote them, with the lease holder.
#[utoipa::path(
    get,
    path = "/api/fleet",
    tag = "cameras",
    summary = "Every camera of every worker as the workers last wrote it (viewer)",
    description = "Worker, lease, health, analysis counters and report age.",
    responses(
        (status = 200, description = "one object per camera", body = [Object]),
        (status = 401, description = "not authenticated"),
    )
)]
pub async fn fleet(State(st): State<Arc<WebState>>) -> Result<Response, WebError> {
    let rows = fleet_rows(&st).await.map_err(WebError::internal)?;
    Ok(Json(rows).into_response())
}

/// The fleet view's rows: camera, worker, lease (holder and expiry), health, analysis and
/// how old the report is.
pub async fn fleet_rows(st: &WebState) -> Result<Vec<serde_json::Value>, crate::store::StoreError> {
    let rows = st.store.camera_statuses().await?;
    let leases = st.store.leases().await?;
    let now = crate::core::unix_secs(st.clock.as_ref());
    Ok(rows
        .into_iter()
        .map(|r| {
            let lease = leases.iter().find(|l| l.name == r.camera);
            serde_json::json!({
                "camera": r.camera,
                "worker": r.worker,
                "lease": lease.map(|l| serde_json::json!({
                    "worker": l.worker,
                    "expires_in_s": (l.expires_at - now).max(0.0),
                    "generation": l.generation,
                })),
                "report_age_s": (now - r.at).max(0.0),
                "health": r.health,
                "analysis": r.analysis,
            })
        })
        .collect())
}
