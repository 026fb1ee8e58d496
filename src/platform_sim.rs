//! `citywatch platform-sim`: a small city platform on loopback, for the tests and the demo.
//! It takes citywatch's signed webhooks (`POST /intake`; a repeated idempotency key is
//! answered 409, "already have it"), dispatches each filed case and reports it handled
//! after a delay, by signed callback to citywatch or, with `--no-callback`, only on its
//! status URL for citywatch's polling adapter (`GET /cases/{case_number}`). `GET /received`
//! lists what it accepted.

use parking_lot::Mutex;
use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Serialize;

/// How the simulated platform behaves.
#[derive(Debug, Clone)]
pub struct SimOptions {
    pub listen: String,
    /// citywatch's webhook secret (`[cases.webhook] secret`), to check what arrives.
    pub webhook_secret: String,
    /// The callback secret (`[cases.platform] secret`), to sign reports.
    pub platform_secret: String,
    /// citywatch's callback URL; None: reports wait on the status URL for polling.
    pub callback: Option<String>,
    pub dispatch_after: Duration,
    pub handle_after: Duration,
}

/// One message the platform accepted.
#[derive(Debug, Clone, Serialize)]
pub struct Received {
    pub idempotency_key: String,
    pub event: String,
    pub case_number: String,
    /// For case_status messages.
    pub status: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
struct CaseState {
    status: String,
    event_id: String,
}

#[derive(Default)]
struct Inner {
    keys: HashSet<String>,
    received: Vec<Received>,
    /// Messages refused as repeats.
    repeats: u64,
    cases: BTreeMap<String, CaseState>,
}

struct Sim {
    opts: SimOptions,
    inner: Mutex<Inner>,
    client: reqwest::Client,
}

/// Starts the platform; returns its bound address. It runs until the process ends.
pub async fn start(opts: SimOptions) -> std::io::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(&opts.listen).await?;
    let addr = listener.local_addr()?;
    let sim = Arc::new(Sim {
        opts,
        inner: Mutex::default(),
        client: reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("http client"),
    });
    let app = Router::new()
        .route("/intake", post(intake))
        .route("/cases/{n}", get(case_status))
        .route("/received", get(received))
        .with_state(sim);
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "platform simulator stopped");
        }
    });
    Ok(addr)
}

async fn intake(State(sim): State<Arc<Sim>>, headers: HeaderMap, body: Bytes) -> Response {
    let h = |n: &str| {
        headers
            .get(n)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
    };
    let (ts, sig, key) = (
        h("x-citywatch-timestamp"),
        h("x-citywatch-signature"),
        h("idempotency-key").to_string(),
    );
    if crate::notify::sign(&sim.opts.webhook_secret, ts, &body) != sig {
        return (StatusCode::UNAUTHORIZED, "bad signature").into_response();
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return (StatusCode::BAD_REQUEST, "not JSON").into_response();
    };
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).map(str::to_string);
    let msg = Received {
        idempotency_key: key.clone(),
        event: s("event").unwrap_or_else(|| "case_filed".into()),
        case_number: s("case_number").unwrap_or_default(),
        status: s("status"),
    };
    {
        let mut inner = sim.inner.lock();
        if !inner.keys.insert(key) {
            inner.repeats += 1;
            return (StatusCode::CONFLICT, "already have it").into_response();
        }
        inner.received.push(msg.clone());
        if msg.event == "case_filed" {
            inner.cases.insert(
                msg.case_number.clone(),
                CaseState {
                    status: "filed".into(),
                    event_id: String::new(),
                },
            );
        }
    }
    tracing::info!(case = %msg.case_number, event = %msg.event, status = ?msg.status, "platform received");
    if msg.event == "case_filed" {
        let sim = sim.clone();
        tokio::spawn(async move { work_on(sim, msg.case_number).await });
    }
    (StatusCode::OK, "accepted").into_response()
}

/// Dispatches a case, then reports it handled.
async fn work_on(sim: Arc<Sim>, case: String) {
    tokio::time::sleep(sim.opts.dispatch_after).await;
    report(&sim, &case, "dispatched", Some("城管执法中队")).await;
    tokio::time::sleep(sim.opts.handle_after).await;
    report(&sim, &case, "handled", Some("已清理")).await;
}

async fn report(sim: &Sim, case: &str, status: &str, note: Option<&str>) {
    let event_id = format!("sim-{case}-{status}");
    if let Some(c) = sim.inner.lock().cases.get_mut(case) {
        c.status = status.into();
        c.event_id = event_id.clone();
    }
    let Some(url) = &sim.opts.callback else {
        return;
    };
    let body = serde_json::json!({
        "event_id": event_id,
        "case_number": case,
        "status": status,
        "note": note,
    })
    .to_string();
    // A few tries: citywatch may be restarting.
    for attempt in 0..6u32 {
        let ts = format!("{:.3}", crate::core::to_unix(std::time::SystemTime::now()));
        let nonce = format!("{event_id}-{attempt}-{}", fastrand::u64(..));
        let sig =
            crate::web::platform::sign(&sim.opts.platform_secret, &ts, &nonce, body.as_bytes());
        let sent = sim
            .client
            .post(url)
            .header("content-type", "application/json")
            .header(crate::web::platform::TIMESTAMP, &ts)
            .header(crate::web::platform::NONCE, &nonce)
            .header(crate::web::platform::SIGNATURE, sig)
            .body(body.clone())
            .send()
            .await;
        match sent {
            Ok(r) if r.status().is_success() => {
                tracing::info!(case, status, "platform reported");
                return;
            }
            Ok(r) if r.status().is_client_error() => {
                tracing::warn!(
                    case,
                    status,
                    code = r.status().as_u16(),
                    "citywatch refused the report"
                );
                return;
            }
            Ok(r) => tracing::warn!(
                case,
                status,
                code = r.status().as_u16(),
                "report failed; retrying"
            ),
            Err(e) => tracing::warn!(case, status, error = %e, "report failed; retrying"),
        }
        tokio::time::sleep(Duration::from_millis(500 << attempt)).await;
    }
}

async fn case_status(State(sim): State<Arc<Sim>>, Path(n): Path<String>) -> Response {
    match sim.inner.lock().cases.get(&n) {
        Some(c) => Json(serde_json::json!({
            "case_number": n,
            "status": c.status,
            "event_id": if c.event_id.is_empty() { None } else { Some(&c.event_id) },
        }))
        .into_response(),
        None => (StatusCode::NOT_FOUND, "no such case").into_response(),
    }
}

async fn received(State(sim): State<Arc<Sim>>) -> Response {
    let inner = sim.inner.lock();
    Json(serde_json::json!({ "received": inner.received, "repeats": inner.repeats }))
        .into_response()
}
