//! Zones drawn on a camera's picture: an admin draws a zone's polygon with the mouse on the
//! cameras page (`static/zones.js`), and it is stored in the case database on top of the
//! config file's (audited), sent to the running camera (its rules use it from the next
//! frame), and used again at every start. A reset goes back to the config's polygon.
//! An admin may also draw a new mask beyond the config's zones (`drawn-mask-<n>`, ignored
//! by every rule); resetting it removes it.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Path, State};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::auth::Auth;
use super::error::WebError;
use super::state::WebState;
use crate::model::live::SceneCommand;
use crate::model::zones::{DRAWN_MASK, Polygon, is_drawn_mask};
use crate::store::users::Role;

/// A zone as the camera uses it now.
#[derive(Debug, Serialize, ToSchema)]
pub struct EffectiveZone {
    pub camera: String,
    pub zone: String,
    /// [[x, y], ...], normalised to the frame.
    #[schema(value_type = Vec<Vec<f32>>)]
    pub polygon: Vec<[f32; 2]>,
    /// "config", "drawn" (by `set_by`, at `set_at`), or "removed" (a drawn mask, just
    /// removed).
    pub source: &'static str,
    pub set_by: Option<String>,
    pub set_at: Option<f64>,
}

/// A zone's new polygon.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ZoneBody {
    /// [[x, y], ...], normalised to the frame: at least 3 points, inside the frame, the
    /// outline not crossing itself.
    #[schema(value_type = Vec<Vec<f32>>)]
    pub polygon: Vec<[f32; 2]>,
}

/// The config's polygon of a camera's zone; none for a mask drawn on the picture
/// (`drawn-mask-<n>`, which the config does not have); else 404 naming what is missing.
fn configured(st: &WebState, camera: &str, zone: &str) -> Result<Option<Polygon>, WebError> {
    let cam = st
        .cameras
        .get(camera)
        .ok_or_else(|| WebError::not_found(format!("no camera {camera:?}")))?;
    match cam.zones.iter().find(|z| z.id == zone) {
        Some(z) => Ok(Some(z.polygon.clone())),
        None if is_drawn_mask(zone) => Ok(None),
        None => Err(WebError::not_found(format!(
            "camera {camera:?} has no zone {zone:?} (a new mask is named {DRAWN_MASK}<n>)"
        ))),
    }
}

/// A camera's zone as it is used now: the drawn polygon when there is one.
pub async fn effective(st: &WebState, camera: &str, zone: &str) -> Result<EffectiveZone, WebError> {
    let config = configured(st, camera, zone)?;
    let drawn = st
        .store
        .zone_overrides()
        .await?
        .into_iter()
        .find(|o| o.camera == camera && o.zone == zone);
    Ok(match drawn {
        Some(o) => EffectiveZone {
            camera: camera.into(),
            zone: zone.into(),
            polygon: o.polygon,
            source: "drawn",
            set_by: Some(o.set_by),
            set_at: Some(o.set_at),
        },
        None => EffectiveZone {
            camera: camera.into(),
            zone: zone.into(),
            polygon: config
                .ok_or_else(|| WebError::not_found(format!("no drawn mask {zone:?}")))?
                .0,
            source: "config",
            set_by: None,
            set_at: None,
        },
    })
}

#[utoipa::path(
    get,
    path = "/api/cameras/{id}/zones/{zone}",
    tag = "cameras",
    summary = "A camera's zone as its rules use it: drawn or from the config (viewer)",
    params(
        ("id" = String, Path, description = "the camera"),
        ("zone" = String, Path, description = "the zone's id"),
    ),
    responses(
        (status = 200, description = "the zone", body = EffectiveZone),
        (status = 401, description = "not authenticated"),
        (status = 404, description = "no such camera or zone"),
    )
)]
pub async fn get_zone(
    State(st): State<Arc<WebState>>,
    Path((camera, zone)): Path<(String, String)>,
) -> Result<Response, WebError> {
    Ok(Json(effective(&st, &camera, &zone).await?).into_response())
}

#[utoipa::path(
    put,
    path = "/api/cameras/{id}/zones/{zone}",
    tag = "cameras",
    summary = "Draw a camera's zone anew: stored over the config's, audited, used by the running camera from its next frame (admin)",
    params(
        ("id" = String, Path, description = "the camera"),
        ("zone" = String, Path, description = "the zone's id, as the config names it; or `drawn-mask-<n>` for a new mask drawn on the picture"),
    ),
    request_body = ZoneBody,
    responses(
        (status = 200, description = "the zone as used now", body = EffectiveZone),
        (status = 401, description = "not authenticated"),
        (status = 403, description = "not an admin, or CSRF token missing"),
        (status = 404, description = "no such camera or zone"),
        (status = 422, description = "the polygon is not sound; the message says why"),
    )
)]
pub async fn put_zone(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path((camera, zone)): Path<(String, String)>,
    Json(body): Json<ZoneBody>,
) -> Result<Response, WebError> {
    auth.require(Role::Admin)?;
    configured(&st, &camera, &zone)?;
    let polygon = Polygon::validate(&body.polygon)
        .map_err(|e| WebError::unprocessable(format!("zone {zone:?}: polygon {e}")))?;
    st.store
        .set_zone_override(&camera, &zone, &polygon.0, &auth.user.name, st.now())
        .await?;
    st.desk.send(
        &camera,
        SceneCommand::SetZone {
            zone: zone.clone(),
            polygon,
        },
    );
    tracing::info!(%camera, %zone, by = %auth.user.name, "zone drawn");
    Ok(Json(effective(&st, &camera, &zone).await?).into_response())
}

#[utoipa::path(
    delete,
    path = "/api/cameras/{id}/zones/{zone}",
    tag = "cameras",
    summary = "Go back to the config's polygon for a camera's zone, or remove a drawn mask; audited (admin)",
    params(
        ("id" = String, Path, description = "the camera"),
        ("zone" = String, Path, description = "the zone's id"),
    ),
    responses(
        (status = 200, description = "the zone as used now", body = EffectiveZone),
        (status = 401, description = "not authenticated"),
        (status = 403, description = "not an admin, or CSRF token missing"),
        (status = 404, description = "no such camera or zone"),
    )
)]
pub async fn reset_zone(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path((camera, zone)): Path<(String, String)>,
) -> Result<Response, WebError> {
    auth.require(Role::Admin)?;
    let config = configured(&st, &camera, &zone)?;
    let removed = st
        .store
        .reset_zone_override(&camera, &zone, &auth.user.name, st.now())
        .await?;
    match config {
        Some(polygon) => {
            if removed {
                st.desk.send(
                    &camera,
                    SceneCommand::SetZone {
                        zone: zone.clone(),
                        polygon,
                    },
                );
            }
            Ok(Json(effective(&st, &camera, &zone).await?).into_response())
        }
        // A drawn mask has no config to go back to: it is gone.
        None if removed => {
            st.desk
                .send(&camera, SceneCommand::RemoveZone { zone: zone.clone() });
            Ok(Json(EffectiveZone {
                camera,
                zone,
                polygon: Vec::new(),
                source: "removed",
                set_by: Some(auth.user.name.clone()),
                set_at: Some(st.now()),
            })
            .into_response())
        }
        None => Err(WebError::not_found(format!("no drawn mask {zone:?}"))),
    }
}
