//! A year's volume: fills a case store with a million captures (their cases, reviews,
//! outbox rows and case events), then times every page and API call the operators and the
//! command centre use, in process through the real router, store and database.
//!
//! ```text
//! cargo bench -p citywatch-web --bench volume                     # SQLite, 1 000 000 captures
//! CITYWATCH_BENCH_CAPTURES=100000 cargo bench -p citywatch-web --bench volume
//! CITYWATCH_BENCH_POSTGRES=postgres://… cargo bench -p citywatch-web --bench volume
//! ```
//!
//! The filling is SQL (a recursive counter, the same text on SQLite and PostgreSQL), so it
//! takes seconds rather than the hours a million filings would; the statuses, cameras and
//! times are spread as a city's year would spread them. Prints one line per call: the
//! median and the slowest of its runs, in milliseconds, and a verdict against the goals
//! (200 ms per page or call, 50 ms per `/metrics` scrape).

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use citywatch_base::config::PipelineConfig;
use citywatch_base::core::{Clock, ManualClock};
use citywatch_db::store::Store;
use citywatch_db::store::users::Role;
use citywatch_web::WebState;
use tower::ServiceExt;

/// Seconds apart of consecutive captures: a million of them span a year.
const SPACING_S: f64 = 31.5;
/// The newest capture's confirmation time (2026-12-01).
const NEWEST: f64 = 1_796_083_200.0;
/// Cameras the captures are spread over.
const CAMERAS: i64 = 200;
/// The newest captures still wait for review.
const PENDING: i64 = 2_000;
/// Runs per call.
const RUNS: usize = 7;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n: i64 = std::env::var("CITYWATCH_BENCH_CAPTURES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    // CITYWATCH_BENCH_DIR keeps the filled database there, to look at afterwards.
    let dir = match std::env::var_os("CITYWATCH_BENCH_DIR") {
        Some(d) => tempfile::Builder::new()
            .tempdir_in(d)
            .expect("bench dir")
            .keep(),
        None => dir.keep(),
    };
    let _cleanup = Cleanup(
        std::env::var_os("CITYWATCH_BENCH_DIR")
            .is_none()
            .then(|| dir.clone()),
    );
    let mut urls = vec![(
        "sqlite",
        format!("sqlite://{}", dir.join("cases.db").display()),
    )];
    if let Ok(pg) = std::env::var("CITYWATCH_BENCH_POSTGRES") {
        urls.push(("postgres", pg));
    }
    for (kind, url) in urls {
        println!("## {kind}, {n} captures");
        let store = Arc::new(Store::connect(&url).await.expect("store"));
        let started = Instant::now();
        fill(&store, n).await;
        println!("filled in {:.1} s", started.elapsed().as_secs_f64());
        run(store, &dir).await;
    }
}

/// Removes the bench's directory unless asked to keep it.
struct Cleanup(Option<std::path::PathBuf>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(d) = &self.0 {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// The captures, their reviews, cases, case events and outbox rows.
async fn fill(store: &Store, n: i64) {
    let pool = store.pool();
    let counter =
        format!("WITH RECURSIVE k(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM k WHERE i < {n})");
    // Statuses: the newest PENDING wait; of the rest one in five is rejected, one in fifty
    // was learned, the others filed.
    let status = format!(
        "CASE WHEN i > {n} - {PENDING} THEN 'pending_review' \
         WHEN i % 5 = 0 THEN 'rejected' WHEN i % 50 = 1 THEN 'learned' ELSE 'filed' END"
    );
    let t = format!("({NEWEST} - ({n} - i) * {SPACING_S})");
    let statements = [
        format!(
            "{counter} INSERT INTO captures (id, camera, preset, rule, zone, label, episode, \
             start_at, confirm_at, bbox, score, aggregation, last_evidence, status, evidence, \
             created_at) \
             SELECT 'cap-' || CAST(i AS TEXT), 'cam' || CAST(i % {CAMERAS} AS TEXT), NULL, \
             CASE i % 3 WHEN 0 THEN 'abandoned_vehicle' WHEN 1 THEN 'illegal_vendor' \
             ELSE 'overflowing_bin' END, 'zone' || CAST(i % 4 AS TEXT), 'person', i, \
             {t} - 300, {t}, '[0.2,0.2,0.5,0.6]', 0.5 + (i % 50) / 100.0, 1 + i % 3, {t}, \
             {status}, \
             '{{\"package\":\"2026-01-05/cam/cap-' || CAST(i AS TEXT) || '\"}}', {t} + 2 FROM k"
        ),
        "INSERT INTO reviews (id, capture_id, reviewer, decision, reason, note, at) \
         SELECT 'rv-' || id, id, 'op', \
         CASE status WHEN 'rejected' THEN 'reject' ELSE 'confirm' END, \
         CASE status WHEN 'rejected' THEN 'not_a_vendor' ELSE NULL END, NULL, created_at + 420 \
         FROM captures WHERE status IN ('rejected', 'filed')"
            .to_string(),
        // Cases: those of the last month still open, the rest closed.
        format!(
            "INSERT INTO cases (case_number, capture_id, idempotency_key, rule, major_code, \
             major_name, minor_code, minor_name, time_limit, source, channel, camera, preset, \
             location, description, status, aggregation, evidence, reported_at, filed_at, \
             deadline_at, closed_at, status_at) \
             SELECT 'CW' || SUBSTR(id, 5), id, 'key-' || id, rule, '05', '街面秩序', '0501', \
             '占道经营', '2h', '视频抓拍', 'citywatch', camera, NULL, '{{}}', 'bench', \
             CASE WHEN confirm_at > {NEWEST} - 2592000 THEN 'filed' ELSE 'closed' END, \
             aggregation, evidence, confirm_at, created_at + 420, created_at + 7620, \
             CASE WHEN confirm_at > {NEWEST} - 2592000 THEN NULL ELSE created_at + 5000 END, \
             created_at + 420 FROM captures WHERE status = 'filed'"
        ),
        "INSERT INTO case_events (id, case_number, seq, at, status, actor, detail) \
         SELECT 'filed-' || case_number, case_number, 1, filed_at, 'filed', 'citywatch', NULL \
         FROM cases"
            .to_string(),
        "INSERT INTO outbox (id, case_number, idempotency_key, payload, state, attempts, \
         next_attempt_at, last_error, delivered_at) \
         SELECT 'ob-' || case_number, case_number, 'ob-' || idempotency_key, '{}', \
         'delivered', 1, filed_at, NULL, filed_at + 1 FROM cases"
            .to_string(),
        // The verdict memory: the newest 10 000 verdicts (it keeps the newest per camera,
        // zone and rule).
        format!(
            "INSERT INTO verdict_memory (capture_id, camera, zone, rule, said, reason, \
             embedding, at) SELECT id, camera, zone, rule, \
             CASE status WHEN 'rejected' THEN 'rejected' ELSE 'confirmed' END, NULL, \
             '[0.1,0.2,0.3,0.4]', created_at + 420 FROM captures \
             WHERE status IN ('rejected', 'filed') AND confirm_at > {NEWEST} - 10000 * {SPACING_S}"
        ),
    ];
    for s in statements {
        sqlx::query(&s).execute(pool).await.expect("fill");
    }
    fill_audit(store).await;
    store.rebuild_tallies().await.expect("tallies");
    if url_is_sqlite(store) {
        sqlx::query("ANALYZE").execute(pool).await.expect("analyze");
    } else {
        sqlx::query("VACUUM ANALYZE")
            .execute(pool)
            .await
            .expect("analyze");
    }
}

/// The audit log: one chained row per review, as the review queue writes them.
async fn fill_audit(store: &Store) {
    use citywatch_db::store::audit::row_hash;
    let reviews: Vec<(String, String, Option<String>, f64)> =
        sqlx::query_as("SELECT capture_id, decision, reason, at FROM reviews ORDER BY at, id")
            .fetch_all(store.pool())
            .await
            .expect("reviews");
    let mut prev = "citywatch-audit-genesis".to_string();
    let mut rows = Vec::with_capacity(reviews.len());
    for (seq, (capture, decision, reason, at)) in (1i64..).zip(reviews) {
        let action = format!("review.{decision}");
        let hash = row_hash(&prev, seq, at, "op", &action, &capture, reason.as_deref());
        rows.push((seq, at, action, capture, reason, prev, hash.clone()));
        prev = hash;
    }
    let last = rows.len() as i64;
    for chunk in rows.chunks(100) {
        let sql = format!(
            "INSERT INTO audit_log (id, at, actor, action, subject, detail, seq, prev_hash, \
             hash) VALUES {}",
            citywatch_db::store::values_sql(chunk.len(), 9)
        );
        let mut q = sqlx::query(&sql);
        for (seq, at, action, capture, reason, prev, hash) in chunk {
            q = q
                .bind(format!("audit-rev-{capture}"))
                .bind(*at)
                .bind("op")
                .bind(action.clone())
                .bind(capture.clone())
                .bind(reason.clone())
                .bind(*seq)
                .bind(prev.clone())
                .bind(hash.clone());
        }
        q.execute(store.pool()).await.expect("audit rows");
    }
    sqlx::query("INSERT INTO counters (name, value) VALUES ('audit-seq', $1)")
        .bind(last)
        .execute(store.pool())
        .await
        .expect("audit counter");
}

fn url_is_sqlite(store: &Store) -> bool {
    store.url().starts_with("sqlite:")
}

async fn run(store: Arc<Store>, dir: &Path) {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let cameras: String = (0..CAMERAS)
        .map(|c| {
            format!(
                "[[cameras]]\nid = \"cam{c}\"\nname = \"Street {c}\"\n\
                 url = \"rtsp://127.0.0.1:9/{c}\"\n\
                 zones = [{{ id = \"zone0\", kind = \"no_parking\", \
                 polygon = [[0, 0], [1, 0], [1, 1], [0, 1]] }}]\n\
                 rules = [{{ rule = \"abandoned_vehicle\", zones = [\"zone0\"] }}]\n"
            )
        })
        .collect();
    let text = format!(
        "[cases]\ndatabase = \"{}\"\ncategories = \"pipelines/categories/default.toml\"\n\
         spool = \"{}/spool\"\n[evidence]\nroot = \"{}/evidence\"\n\
         [web]\nlisten = \"127.0.0.1:0\"\n{cameras}",
        store.url(),
        dir.display(),
        dir.display()
    );
    let cfg = PipelineConfig::parse(&text, &repo).expect("bench config");
    let clock = Arc::new(ManualClock::new(
        std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(NEWEST + 3600.0),
    ));
    let now = citywatch_base::core::to_unix(clock.now());
    store
        .upsert_user("boss", Role::Admin, "bench-password-1", now)
        .await
        .expect("user");
    let token = store
        .create_token("boss", "bench", now)
        .await
        .expect("token");
    let state = WebState::new(
        &cfg,
        store.clone(),
        Default::default(),
        Default::default(),
        None,
        clock,
    )
    .expect("web state");
    let app = citywatch_web::router(Arc::new(state));

    // A deep page: the cursor of a capture half a year back.
    let n = count(&store, "SELECT COUNT(*) FROM captures").await;
    let half = n / 2;
    let deep = format!("{}%2Ccap-{half}", NEWEST - (n - half) as f64 * SPACING_S);
    let calls: Vec<(&str, String)> = vec![
        ("GET", "/review".into()),
        ("GET", "/review?camera=cam7&order=oldest".into()),
        ("GET", format!("/review?status=all&after={deep}")),
        ("GET", "/api/captures?status=all&limit=50".into()),
        ("GET", format!("/api/captures?status=all&after={deep}")),
        // The deepest page an offset may reach (past it, `after` is the way).
        ("GET", "/api/captures?status=all&offset=10000".into()),
        ("GET", "/api/cases?offset=10000".into()),
        (
            "GET",
            "/api/captures?status=rejected&camera=cam3&rule=illegal_vendor".into(),
        ),
        (
            "GET",
            "/api/captures?status=all&zone=zone2&min_score=0.9".into(),
        ),
        ("GET", format!("/captures/cap-{}", half + 2)),
        ("GET", format!("/api/captures/cap-{}", half + 2)),
        ("GET", "/cases".into()),
        ("GET", "/cases?status=closed&camera=cam12".into()),
        (
            "GET",
            format!(
                "/cases?after={}%2CCW{half}",
                NEWEST - (n - half) as f64 * SPACING_S
            ),
        ),
        ("GET", "/api/cases?limit=50".into()),
        ("GET", format!("/cases/CW{}", half + 2)),
        ("GET", format!("/api/cases/CW{}", half + 2)),
        ("GET", "/summary".into()),
        ("GET", "/api/summary".into()),
        ("GET", "/learning".into()),
        ("GET", "/api/learning".into()),
        ("GET", "/cameras".into()),
        ("GET", "/api/cameras".into()),
        ("GET", "/admin/outbox".into()),
        ("GET", "/api/dead-letters".into()),
        ("GET", "/admin/audit".into()),
        ("GET", "/metrics".into()),
        ("POST", "/api/queue/claim".into()),
    ];
    let mut worst_page = 0.0f64;
    let mut worst_metrics = 0.0f64;
    println!("{:<70} {:>9} {:>9}", "call", "p50 ms", "max ms");
    for (method, path) in &calls {
        let mut times = Vec::with_capacity(RUNS);
        for _ in 0..RUNS {
            let req = Request::builder()
                .method(*method)
                .uri(path)
                .header("authorization", format!("Bearer {token}"))
                .header("content-type", "application/json")
                .body(if *method == "POST" {
                    Body::from("{}")
                } else {
                    Body::empty()
                })
                .expect("request");
            let started = Instant::now();
            let res = app.clone().oneshot(req).await.expect("response");
            let status = res.status();
            let _ = axum::body::to_bytes(res.into_body(), usize::MAX)
                .await
                .expect("body");
            times.push(started.elapsed().as_secs_f64() * 1000.0);
            assert!(
                status == StatusCode::OK || status == StatusCode::NO_CONTENT,
                "{method} {path}: {status}"
            );
        }
        times.sort_by(f64::total_cmp);
        let (p50, max) = (times[RUNS / 2], times[RUNS - 1]);
        if path == "/metrics" {
            worst_metrics = worst_metrics.max(p50);
        } else {
            worst_page = worst_page.max(p50);
        }
        println!("{:<70} {p50:>9.1} {max:>9.1}", format!("{method} {path}"));
    }
    println!(
        "slowest page or call (p50): {worst_page:.1} ms (goal 200: {}); /metrics: \
         {worst_metrics:.1} ms (goal 50: {})",
        if worst_page <= 200.0 { "met" } else { "MISSED" },
        if worst_metrics <= 50.0 {
            "met"
        } else {
            "MISSED"
        },
    );
}

async fn count(store: &Store, sql: &str) -> i64 {
    sqlx::query_scalar(sql)
        .fetch_one(store.pool())
        .await
        .expect("count")
}
