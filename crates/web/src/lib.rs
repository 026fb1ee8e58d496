//! The operators' web UI, its JSON API and `/metrics`, served by axum from `citywatch run`
//! (`[web]`, default 127.0.0.1:8080). Every route but the login page needs a session or an
//! API token; confirming and rejecting need the operator role.
//!
//! citywatch-web uses citywatch-base and citywatch-db and nothing else of the workspace: it
//! reads the running pipeline through the boards and traits of `model::live`,
//! `model::health` and `model::verdict`, so it builds and tests without GStreamer or ONNX
//! Runtime.

// The lower crates' modules under their usual names, so `crate::model::…` reads the same in
// every crate of the workspace.
use citywatch_base::{config, core, model};
use citywatch_db::store;

pub mod admin;
pub mod api;
pub mod auth;
pub mod case_pages;
pub mod charts;
pub mod error;
pub mod fleet;
pub mod html;
pub mod metrics;
pub mod openapi;
pub mod pages;
pub mod platform;
pub mod queue;
pub mod review;
pub mod state;
pub mod summary;
pub mod templates;
pub mod zones;

pub use state::{LoginLimiter, WebState};

use std::sync::Arc;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

use crate::core::Shutdown;

/// Largest request body any route takes.
pub const BODY_LIMIT: usize = 64 * 1024;

/// Every route. The login page, the stylesheet and the platform's signed callback are the
/// only ones without a session or token.
pub fn router(state: Arc<WebState>) -> Router {
    let (api, _) = openapi::api_routes().split_for_parts();
    let (open, _) = openapi::open_routes().split_for_parts();
    let protected = Router::new()
        .route("/", get(pages::home))
        .route("/review", get(pages::review))
        .route("/captures/{id}", get(pages::capture))
        .route("/captures/{id}/confirm", post(pages::confirm))
        .route("/captures/{id}/reject", post(pages::reject))
        .route("/captures/{id}/clean", post(pages::mark_clean))
        .route("/captures/{id}/plate", post(pages::correct_plate))
        .route("/cameras/{id}/fixtures", post(pages::fixtures))
        .route("/cameras/{id}/view", post(pages::take_view))
        .route("/cases", get(pages::cases))
        .route("/cases.csv", get(api::cases_csv))
        .route("/cases/{n}", get(case_pages::case_page))
        .route("/cases/{n}/verify", post(case_pages::verify_page))
        .route("/admin/outbox", get(case_pages::dead_letters_page))
        .route("/admin/outbox/requeue", post(case_pages::requeue_all))
        .route("/admin/outbox/{id}/requeue", post(case_pages::requeue_one))
        .route("/admin/users", get(admin::users_page).post(admin::add_user))
        .route("/admin/users/{name}/disable", post(admin::disable_user))
        .route("/admin/users/{name}/enable", post(admin::enable_user))
        .route("/admin/users/{name}/reset", post(admin::reset_password))
        .route("/admin/audit", get(admin::audit_page))
        .route("/cameras", get(pages::cameras))
        .route("/cameras/{id}/latest.jpg", get(api::latest_frame))
        .route("/summary", get(pages::summary))
        .route("/learning", get(pages::learning))
        .route("/learning/{id}/undo", post(pages::undo_learned))
        .route("/learning/{id}/forget", post(pages::forget_memory))
        .route("/learning/apply", post(pages::apply_calibration))
        .route("/logout", post(auth::logout))
        .route("/evidence/{*path}", get(api::evidence))
        .route("/api/openapi.json", get(openapi::serve))
        .merge(api)
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_auth,
        ));
    Router::new()
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/static/app.css", get(pages::stylesheet))
        .route("/static/workbench.js", get(pages::workbench_js))
        .route("/static/zones.js", get(pages::zones_js))
        .route("/static/capture.js", get(pages::capture_js))
        // Authenticated by the platform's HMAC signature, not a session.
        .merge(open)
        .merge(protected)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            security_headers,
        ))
        .with_state(state)
}

/// Serves until shutdown. Returns the bound address (port 0 picks one).
pub async fn serve(
    state: Arc<WebState>,
    shutdown: Shutdown,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = tokio::net::TcpListener::bind(&state.settings.listen).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(walk_audit_chain(state.clone(), shutdown.clone()));
    tokio::spawn(sample_health(state.clone(), shutdown.clone()));
    if let (Some(cert), Some(key)) = (
        state.settings.tls_cert.clone(),
        state.settings.tls_key.clone(),
    ) {
        serve_tls(listener, router(state), &cert, &key, shutdown).await?;
        tracing::info!(%addr, "web UI and API listening (TLS)");
        return Ok(addr);
    }
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

/// The cameras this process runs, as one sample: their health states and the last
/// minute's analysis.
pub fn sample_now(st: &WebState, now: f64) -> crate::store::samples::HealthSample {
    use crate::model::health::HealthState;
    let health = st
        .health
        .snapshot(std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(now.max(0.0)));
    let analysis = st.analysis.lock().clone();
    let mut s = crate::store::samples::HealthSample {
        at: now,
        source: st.settings.listen.clone(),
        cameras: health.len() as i64,
        ..Default::default()
    };
    for h in &health {
        match h.health.state {
            HealthState::Streaming => s.streaming += 1,
            HealthState::BackingOff | HealthState::Failed => s.unhealthy += 1,
            _ => {}
        }
    }
    for a in analysis.values() {
        if a.off_view {
            s.off_view += 1;
        }
        s.analysed_per_min += i64::from(a.analysed_per_min) + i64::from(a.reused_per_min);
        s.inferences_per_min += i64::from(a.analysed_per_min);
    }
    s
}

/// How often the cameras' capacity and health are sampled for the summary's last day.
const HEALTH_SAMPLE: std::time::Duration = std::time::Duration::from_secs(300);

/// Samples the cameras this process runs now and every [`HEALTH_SAMPLE`] until shutdown
/// (`store::samples`); nothing when it runs none.
async fn sample_health(state: Arc<WebState>, shutdown: Shutdown) {
    loop {
        let s = sample_now(&state, state.now());
        if s.cameras > 0
            && let Err(e) = state.store.record_health_sample(&s).await
        {
            tracing::warn!(error = %e, "recording a health sample");
        }
        tokio::select! {
            _ = shutdown.triggered() => return,
            _ = tokio::time::sleep(HEALTH_SAMPLE) => {}
        }
    }
}

/// How often the audit chain is walked in full; the audit page checks the rows written
/// since on every view.
const AUDIT_WALK: std::time::Duration = std::time::Duration::from_secs(3600);

/// Walks the audit chain in full now and every [`AUDIT_WALK`] until shutdown, so the audit
/// page answers from the last walk's end at a year's volume; a break is logged as an error.
async fn walk_audit_chain(state: Arc<WebState>, shutdown: Shutdown) {
    loop {
        match state.store.verify_audit_walk(state.now()).await {
            Ok(c) => match c.broken {
                None => tracing::debug!(rows = c.rows, "audit chain walked: it holds"),
                Some((seq, why)) => tracing::error!(seq, %why, "the audit chain is broken"),
            },
            Err(e) => tracing::warn!(error = %e, "walking the audit chain"),
        }
        tokio::select! {
            _ = shutdown.triggered() => return,
            _ = tokio::time::sleep(AUDIT_WALK) => {}
        }
    }
}

/// Serves over TLS (`[web] tls_cert`, `tls_key`) until shutdown: each connection's
/// handshake, then HTTP/1.1 with the client's address for the login limiter.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    cert: &std::path::Path,
    key: &std::path::Path,
    shutdown: Shutdown,
) -> std::io::Result<()> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    use tokio_rustls::rustls;
    use tower::ServiceExt;
    let bad = |what: &std::path::Path, e: &dyn std::fmt::Display| {
        std::io::Error::other(format!("{}: {e}", what.display()))
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .map_err(|e| bad(cert, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(cert, &e))?;
    let key_der = PrivateKeyDer::from_pem_file(key).map_err(|e| bad(key, &e))?;
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| bad(cert, &e))?
    .with_no_client_auth()
    .with_single_cert(certs, key_der)
    .map_err(|e| bad(cert, &e))?;
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    tokio::spawn(async move {
        loop {
            let (tcp, peer) = tokio::select! {
                _ = shutdown.triggered() => return,
                a = listener.accept() => match a {
                    Ok(a) => a,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        continue;
                    }
                },
            };
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                let tls = match acceptor.accept(tcp).await {
                    Ok(t) => t,
                    Err(e) => {
                        tracing::debug!(client = %peer, error = %e, "TLS handshake failed");
                        return;
                    }
                };
                let svc = hyper::service::service_fn(
                    move |req: axum::http::Request<hyper::body::Incoming>| {
                        let mut req = req.map(axum::body::Body::new);
                        req.extensions_mut()
                            .insert(axum::extract::ConnectInfo(peer));
                        app.clone().oneshot(req)
                    },
                );
                let io = hyper_util::rt::TokioIo::new(tls);
                if let Err(e) = hyper_util::server::conn::auto::Builder::new(
                    hyper_util::rt::TokioExecutor::new(),
                )
                .http1_only()
                .serve_connection(io, svc)
                .await
                {
                    tracing::debug!(client = %peer, error = %e, "connection ended with an error");
                }
            });
        }
    });
    Ok(())
}

/// HSTS over HTTPS (TLS here, or an HTTPS proxy in front).
async fn security_headers(
    axum::extract::State(st): axum::extract::State<Arc<WebState>>,
    req: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut resp = next.run(req).await;
    if st.settings.https() {
        resp.headers_mut().insert(
            axum::http::header::STRICT_TRANSPORT_SECURITY,
            axum::http::HeaderValue::from_static("max-age=31536000"),
        );
    }
    resp
}
