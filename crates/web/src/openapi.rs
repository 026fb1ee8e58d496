//! The JSON routes and their OpenAPI document at `/api/openapi.json`, generated: each JSON
//! route is registered from its handler's `#[utoipa::path]` (utoipa-axum's `routes!`), and
//! [`crate::router`] serves these same routes, so the document lists exactly what is served,
//! with the parameter, body and answer types the handlers use. This module adds what no
//! handler says: the title, the two ways to authenticate and the tags.

use std::sync::{Arc, LazyLock};

use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::SESSION_COOKIE;
use super::state::WebState;
use super::{admin, api, case_pages, fleet, metrics, platform, queue, zones};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "citywatch API",
        description = "Review queue, cases, cameras and metrics of a citywatch worker. \
            Authenticate with a session cookie (state-changing requests then need the \
            X-CSRF-Token header) or with an API token: Authorization: Bearer cwt_... (made \
            with `citywatch token`).",
    ),
    modifiers(&Authentication),
    security(("token" = []), ("session" = [])),
    tags(
        (name = "review", description = "The review queue: captures waiting for an operator's decision"),
        (name = "cases", description = "Filed cases, their history and closure checks"),
        (name = "cameras", description = "Cameras and the workers that run them"),
        (name = "learning", description = "What the verdict memory learned from reviews"),
        (name = "outbox", description = "Messages to the city platform that were given up on"),
        (name = "admin", description = "Users and the audit log"),
        (name = "metrics", description = "Prometheus metrics"),
        (name = "platform", description = "The city platform's callbacks"),
    )
)]
pub struct ApiDoc;

/// The two security schemes: an API token as a bearer token, and the session cookie.
struct Authentication;

impl Modify for Authentication {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "token",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
        components.add_security_scheme(
            "session",
            SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(SESSION_COOKIE))),
        );
    }
}

/// The JSON API and `/metrics`, behind authentication. Each is registered from its
/// handler's `#[utoipa::path]`, which names the path and method once for the router and the
/// OpenAPI document alike.
pub fn api_routes() -> OpenApiRouter<Arc<WebState>> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(api::captures))
        .routes(routes!(api::capture))
        .routes(routes!(api::confirm))
        .routes(routes!(api::reject))
        .routes(routes!(api::put_plate))
        .routes(routes!(queue::claim))
        .routes(routes!(queue::release))
        .routes(routes!(api::cases))
        .routes(routes!(case_pages::case_api))
        .routes(routes!(case_pages::verify_api))
        .routes(routes!(case_pages::dead_letters_api))
        .routes(routes!(case_pages::requeue_api))
        .routes(routes!(admin::users_api))
        .routes(routes!(admin::audit_api))
        .routes(routes!(api::cameras))
        .routes(routes!(zones::get_zone, zones::put_zone, zones::reset_zone))
        .routes(routes!(fleet::fleet))
        .routes(routes!(api::summary))
        .routes(routes!(api::learning))
        .routes(routes!(api::undo_learned))
        .routes(routes!(api::forget_memory))
        .routes(routes!(metrics::metrics))
}

/// The documented routes that authenticate on their own: the platform's HMAC-signed callback.
pub fn open_routes() -> OpenApiRouter<Arc<WebState>> {
    OpenApiRouter::new().routes(routes!(platform::callback))
}

/// The whole document: the routes above, with [`ApiDoc`] on top.
pub fn document() -> utoipa::openapi::OpenApi {
    let (_, doc) = api_routes().merge(open_routes()).split_for_parts();
    doc
}

/// The document as JSON, built once.
pub fn document_json() -> Arc<serde_json::Value> {
    static DOC: LazyLock<Arc<serde_json::Value>> = LazyLock::new(|| {
        Arc::new(serde_json::to_value(document()).expect("the OpenAPI document serialises"))
    });
    DOC.clone()
}

/// `GET /api/openapi.json`.
pub async fn serve() -> axum::Json<Arc<serde_json::Value>> {
    axum::Json(document_json())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_document_names_every_api_route_with_its_types_and_security() {
        let doc = document_json();
        assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"));
        for (path, method) in [
            ("/api/captures", "get"),
            ("/api/captures/{id}", "get"),
            ("/api/captures/{id}/confirm", "post"),
            ("/api/captures/{id}/reject", "post"),
            ("/api/captures/{id}/plate", "put"),
            ("/api/queue/claim", "post"),
            ("/api/queue/release", "post"),
            ("/api/cases", "get"),
            ("/api/cases/{n}", "get"),
            ("/api/cases/{n}/verify", "post"),
            ("/api/cameras", "get"),
            ("/api/cameras/{id}/zones/{zone}", "get"),
            ("/api/cameras/{id}/zones/{zone}", "put"),
            ("/api/cameras/{id}/zones/{zone}", "delete"),
            ("/api/fleet", "get"),
            ("/api/summary", "get"),
            ("/api/learning", "get"),
            ("/api/dead-letters", "get"),
            ("/api/dead-letters/requeue", "post"),
            ("/api/users", "get"),
            ("/api/audit", "get"),
            ("/metrics", "get"),
            ("/platform/callback", "post"),
        ] {
            assert!(doc["paths"][path][method].is_object(), "{method} {path}");
        }
        // The filters' fields are the query parameters, from the store's own types.
        let params: Vec<&str> = doc["paths"]["/api/captures"]["get"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap())
            .collect();
        for p in [
            "status", "rule", "camera", "order", "limit", "offset", "after", "before",
        ] {
            assert!(params.contains(&p), "{p} in {params:?}");
        }
        let schemas = &doc["components"]["schemas"];
        for s in [
            "CaptureRow",
            "CaseRecord",
            "CaseEvent",
            "PlatformEvent",
            "RejectBody",
        ] {
            assert!(schemas[s].is_object(), "{s}");
        }
        assert_eq!(
            schemas["CaptureRow"]["properties"]["box"]["type"], "array",
            "the renamed box field keeps its serde name"
        );
        let schemes = &doc["components"]["securitySchemes"];
        assert_eq!(schemes["token"]["scheme"], "bearer");
        assert_eq!(schemes["session"]["name"], SESSION_COOKIE);
        // Every route needs one of the two, but the platform's HMAC-signed callback.
        assert!(doc["security"].as_array().unwrap().len() == 2);
        assert_eq!(
            doc["paths"]["/platform/callback"]["post"]["security"],
            serde_json::json!([{}])
        );
    }
}
