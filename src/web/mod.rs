//! The operators' web UI, its JSON API and `/metrics`, served by axum from `citywatch run`
//! (`[web]`, default 127.0.0.1:8080). Every route but the login page needs a session or an
//! API token; confirming and rejecting need the operator role.

pub mod api;
pub mod auth;
pub mod metrics;
pub mod pages;
pub mod summary;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::config::{CameraConfig, CasesSettings, PipelineConfig, WebSettings};
use crate::core::{Clock, Shutdown};
use crate::filing::FilingStage;
use crate::ingest::HealthBoard;
use crate::pipeline::AnalysisBoard;
use crate::store::Store;

/// Largest request body any route takes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// What the handlers read.
pub struct WebState {
    pub store: Arc<Store>,
    pub cases: Arc<CasesSettings>,
    pub cameras: BTreeMap<String, CameraConfig>,
    pub evidence_root: Option<PathBuf>,
    pub health: HealthBoard,
    pub analysis: AnalysisBoard,
    pub filing: Option<Arc<FilingStage>>,
    pub settings: WebSettings,
    pub clock: Arc<dyn Clock>,
    pub logins: Mutex<auth::LoginLimiter>,
    /// The detector's latency histogram, when the pipeline detects.
    pub inference: Option<Arc<crate::detect::service::Latency>>,
    /// Each camera's latest frame (JPEG).
    pub latest: crate::pipeline::LatestFrames,
    /// The patrol's status, when cameras are patrolled.
    pub patrol: Option<crate::patrol::visits::PatrolBoard>,
    /// This worker's leases, with `--worker`.
    pub worker: Option<crate::workers::host::WorkerBoard>,
}

impl WebState {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        config: &PipelineConfig,
        store: Arc<Store>,
        health: HealthBoard,
        analysis: AnalysisBoard,
        filing: Option<Arc<FilingStage>>,
        clock: Arc<dyn Clock>,
    ) -> Option<Self> {
        let settings = config.web.clone()?;
        let cases = Arc::new(config.cases.clone()?);
        Some(Self {
            store,
            cases,
            cameras: config
                .cameras
                .iter()
                .map(|c| (c.id.clone(), c.clone()))
                .collect(),
            evidence_root: config.evidence.as_ref().map(|e| e.root.clone()),
            health,
            analysis,
            filing,
            settings,
            clock,
            logins: Mutex::default(),
            inference: None,
            latest: Default::default(),
            patrol: None,
            worker: None,
        })
    }

    pub fn now(&self) -> f64 {
        crate::core::to_unix(self.clock.now())
    }
}

/// Every route. The login page and the stylesheet are the only ones open to all.
pub fn router(state: Arc<WebState>) -> Router {
    let protected = Router::new()
        .route("/", get(pages::home))
        .route("/review", get(pages::review))
        .route("/captures/{id}", get(pages::capture))
        .route("/captures/{id}/confirm", post(pages::confirm))
        .route("/captures/{id}/reject", post(pages::reject))
        .route("/cases", get(pages::cases))
        .route("/cases.csv", get(api::cases_csv))
        .route("/cameras", get(pages::cameras))
        .route("/cameras/{id}/latest.jpg", get(api::latest_frame))
        .route("/summary", get(pages::summary))
        .route("/logout", post(auth::logout))
        .route("/evidence/{*path}", get(api::evidence))
        .route("/api/captures", get(api::captures))
        .route("/api/captures/{id}", get(api::capture))
        .route("/api/captures/{id}/confirm", post(api::confirm))
        .route("/api/captures/{id}/reject", post(api::reject))
        .route("/api/cases", get(api::cases))
        .route("/api/cameras", get(api::cameras))
        .route("/api/summary", get(api::summary))
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
