//! The operators' web UI, its JSON API and `/metrics`, served by axum from `citywatch run`
//! (`[web]`, default 127.0.0.1:8080). Every route but the login page needs a session or an
//! API token; confirming and rejecting need the operator role.

pub mod api;
pub mod auth;
pub mod html;
pub mod metrics;
pub mod pages;
pub mod review;
pub mod state;
pub mod summary;

pub use state::{LoginLimiter, WebState};

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::core::Shutdown;

/// Largest request body any route takes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Every route. The login page and the stylesheet are the only ones open to all.
pub fn router(state: Arc<WebState>) -> Router {
    let protected = Router::new()
        .route("/", get(pages::home))
        .route("/review", get(pages::review))
        .route("/captures/{id}", get(pages::capture))
        .route("/captures/{id}/confirm", post(pages::confirm))
        .route("/captures/{id}/reject", post(pages::reject))
        .route("/captures/{id}/clean", post(pages::mark_clean))
        .route("/cameras/{id}/fixtures", post(pages::fixtures))
        .route("/cases", get(pages::cases))
        .route("/cases.csv", get(api::cases_csv))
        .route("/cameras", get(pages::cameras))
        .route("/cameras/{id}/latest.jpg", get(api::latest_frame))
        .route("/summary", get(pages::summary))
        .route("/learning", get(pages::learning))
        .route("/learning/{id}/undo", post(pages::undo_learned))
        .route("/learning/{id}/forget", post(pages::forget_memory))
        .route("/learning/apply", post(pages::apply_calibration))
        .route("/logout", post(auth::logout))
        .route("/evidence/{*path}", get(api::evidence))
        .route("/api/captures", get(api::captures))
        .route("/api/captures/{id}", get(api::capture))
        .route("/api/captures/{id}/confirm", post(api::confirm))
        .route("/api/captures/{id}/reject", post(api::reject))
        .route("/api/cases", get(api::cases))
        .route("/api/cameras", get(api::cameras))
        .route("/api/summary", get(api::summary))
        .route("/api/learning", get(api::learning))
        .route("/api/learning/{id}/undo", post(api::undo_learned))
        .route("/api/learning/{id}/forget", post(api::forget_memory))
        .route("/api/openapi.json", get(api::openapi))
        .route("/metrics", get(metrics::metrics))
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_auth,
        ));
    Router::new()
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/static/app.css", get(pages::stylesheet))
        .merge(protected)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// Serves until shutdown. Returns the bound address (port 0 picks one).
pub async fn serve(
    state: Arc<WebState>,
    shutdown: Shutdown,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(&state.settings.listen).await?;
    let addr = listener.local_addr()?;
    let app = router(state).into_make_service_with_connect_info::<std::net::SocketAddr>();
    tokio::spawn(async move {
        let stop = shutdown.clone();
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.triggered().await })
            .await
        {
            tracing::error!(error = %e, "web server stopped");
        }
    });
    tracing::info!(%addr, "web UI and API listening");
    Ok(addr)
}
