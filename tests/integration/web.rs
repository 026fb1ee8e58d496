//! The review UI and API over real HTTP on loopback: authentication on every route, roles,
//! CSRF, path traversal on evidence, SQL metacharacters, oversized bodies, login rate
//! limiting, API tokens, metrics, and camera passwords never shown.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use citywatch::config::{PipelineConfig, RuleKind};
use citywatch::core::{Shutdown, SystemClock};
use citywatch::evidence::image::{Picture, Watermarker};
use citywatch::evidence::{CameraInfo, EvidenceWriter, PackageRequest, RuleInfo};
use citywatch::ratelimit::Capture;
use citywatch::rules::engine::Candidate;
use citywatch::store::users::Role;
use citywatch::store::{FilingMode, Store};
use reqwest::StatusCode;

use crate::common::*;

const CAMERA_PASSWORD: &str = "S3cretCamPass";
const PLATFORM_SECRET: &str = "platform-secret-0123456789";
const T0: f64 = 1_767_574_800.0;

pub(crate) struct Site {
    pub(crate) base: String,
    client: reqwest::Client,
    pub(crate) store: Arc<Store>,
    dir: tempfile::TempDir,
    pub(crate) captures: Vec<String>,
    /// What the web sends the cameras (fixtures, clean now).
    desk: citywatch::analysis::SceneDesk,
    /// The cameras' analysis counters, as the running cameras would publish them.
    analysis: citywatch::analysis::AnalysisBoard,
    _shutdown: ShutdownOnDrop,
}

struct ShutdownOnDrop(Shutdown);

impl Drop for ShutdownOnDrop {
    fn drop(&mut self) {
        self.0.trigger();
    }
}

fn site_config(dir: &Path) -> PipelineConfig {
    config(&format!(
        r#"
[cases]
database = "sqlite://{d}/cases.db"
categories = "pipelines/categories/default.toml"
spool = "{d}/spool"

[cases.platform]
secret = "{PLATFORM_SECRET}"

[evidence]
root = "{d}/evidence"

[web]
listen = "127.0.0.1:0"
login_attempts = 5

[[cameras]]
id = "cam"
name = "Test street"
url = "rtsp://admin:{CAMERA_PASSWORD}@127.0.0.1:9/stream"
zones = [{{ id = "road", kind = "no_parking", polygon = [[0, 0], [1, 0], [1, 1], [0, 1]] }}]
rules = [{{ rule = "abandoned_vehicle", zones = ["road"], dwell_s = 60 }}]
"#,
        d = dir.display()
    ))
}

fn capture(i: u64) -> Capture {
    Capture {
        id: i,
        candidate: Candidate {
            rule: RuleKind::AbandonedVehicle,
            camera: "cam".into(),
            preset: None,
            zone: "road".into(),
            place: [0.2, 0.2, 0.5, 0.6],
            episode: Some(i),
            label: "car".into(),
            start: T0,
            confirm: T0 + 60.0 + i as f64,
            bbox: [0.2, 0.2, 0.5, 0.6],
            score: 0.8,
            dwell_s: 60.0,
            embedding: None,
            parts: Vec::new(),
            plate: None,
        },
        aggregation: 1,
        last_evidence: T0 + 60.0,
        closed_at: None,
        left: false,
        resembles: None,
    }
}

async fn site() -> Site {
    site_with(2).await
}

/// The review site with `n` captures waiting, each with a real evidence package, their
/// confirmation a second apart (the first is the oldest).
pub(crate) async fn site_with(n: u64) -> Site {
    site_filing(n, None).await
}

/// The review site, its filing stage's status read from `filing`.
async fn site_filing(
    n: u64,
    filing: Option<Arc<dyn citywatch::model::live::FilingControl>>,
) -> Site {
    let dir = tempfile::tempdir().unwrap();
    let cfg = site_config(dir.path());
    let cases = cfg.cases.clone().unwrap();
    let store = citywatch::pipeline::open_store(&cases.database, &cfg)
        .await
        .unwrap();
    store
        .upsert_user("op", Role::Operator, "operator-password", T0)
        .await
        .unwrap();
    store
        .upsert_user("view", Role::Viewer, "viewer-password", T0)
        .await
        .unwrap();

    // Captures with real packages, waiting for review.
    let root = cfg.evidence.as_ref().unwrap().root.clone();
    let writer = EvidenceWriter::open(&root, Watermarker::load(None).unwrap()).unwrap();
    let mut captures = Vec::new();
    for i in 1..=n {
        let c = capture(i);
        let key = citywatch::store::capture_key(&c);
        let p = writer
            .write(&PackageRequest {
                key: key.clone(),
                capture: c.clone(),
                camera: CameraInfo {
                    id: "cam".into(),
                    name: "Test street".into(),
                    preset: None,
                    utc_offset_s: 8 * 3600,
                },
                location: cfg.cameras[0].location.clone(),
                rule: RuleInfo {
                    kind: "abandoned_vehicle".into(),
                    zone: "road".into(),
                    dwell_s: 60.0,
                    min_score: 0.3,
                },
                model: None,
                confirm: Picture {
                    width: 64,
                    height: 48,
                    rgb: Arc::new(vec![100; 64 * 48 * 3]),
                },
                confirm_stream_s: None,
                first_seen: None,
                plate: None,
                zone_polygon: None,
                clip: Vec::new(),
                clip_note: None,
                photo_note: None,
            })
            .unwrap();
        let ev = serde_json::json!({ "package": p.path, "files": p.files });
        store
            .record_capture(
                &c,
                Some(&ev),
                FilingMode::Review,
                &cases.policy(),
                &cfg.cameras[0].location,
                T0,
            )
            .await
            .unwrap();
        captures.push(key);
    }
    // Bait for traversal: a file beside the root, and a symlink inside it that leads out.
    std::fs::write(dir.path().join("secret.txt"), "outside the root").unwrap();
    let pkg_dir = root.join("2026-01-05/cam");
    std::os::unix::fs::symlink("/etc/passwd", pkg_dir.join("evil.jpg")).unwrap();
    std::os::unix::fs::symlink(dir.path().join("secret.txt"), pkg_dir.join("secret.json")).unwrap();

    let shutdown = Shutdown::new();
    let analysis = citywatch::analysis::AnalysisBoard::default();
    let mut state = citywatch::web::WebState::new(
        &cfg,
        store.clone(),
        Default::default(),
        analysis.clone(),
        filing,
        Arc::new(SystemClock),
    )
    .unwrap();
    let desk = citywatch::analysis::SceneDesk::default();
    state.desk = desk.clone();
    let frame = citywatch::evidence::image::encode_jpeg(&vec![90; 64 * 48 * 3], 64, 48);
    state
        .latest
        .lock()
        .insert("cam".into(), (Arc::new(frame), T0));
    let addr = citywatch::web::serve(Arc::new(state), shutdown.clone())
        .await
        .unwrap();
    Site {
        base: format!("http://{addr}"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        store,
        dir,
        captures,
        desk,
        analysis,
        _shutdown: ShutdownOnDrop(shutdown),
    }
}

/// A logged-in session: (cookie header, CSRF token).
/// Adds the admin `boss` and logs in as it: (cookie, CSRF token).
async fn login_admin(s: &Site) -> (String, String) {
    s.store
        .upsert_user("boss", Role::Admin, "admin-password", T0)
        .await
        .unwrap();
    login(s, "boss", "admin-password").await
}

async fn login(s: &Site, user: &str, password: &str) -> (String, String) {
    let r = s
        .client
        .post(format!("{}/login", s.base))
        .form(&[("user", user), ("password", password)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER, "login as {user}");
    let set = r.headers()[reqwest::header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        set.contains("HttpOnly") && set.contains("SameSite=Strict"),
        "{set}"
    );
    let cookie = set.split(';').next().unwrap().to_string();
    let page = s
        .client
        .get(format!("{}/review", s.base))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = page
        .split("<meta name=\"csrf\" content=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_string();
    (cookie, csrf)
}

const PROTECTED_GET: &[&str] = &[
    "/",
    "/review",
    "/captures/x",
    "/cases",
    "/cases.csv",
    "/cameras",
    "/cameras/cam/latest.jpg",
    "/summary",
    "/learning",
    "/evidence/2026-01-05/cam/x/confirm.jpg",
    "/api/captures",
    "/api/captures/x",
    "/api/cases",
    "/api/cameras",
    "/api/summary",
    "/api/learning",
    "/api/openapi.json",
    "/metrics",
    "/cases/CW1",
    "/api/cases/CW1",
    "/admin/users",
    "/admin/audit",
    "/admin/outbox",
    "/api/users",
    "/api/audit",
    "/api/dead-letters",
];

const PROTECTED_POST: &[&str] = &[
    "/captures/x/confirm",
    "/captures/x/reject",
    "/api/captures/x/confirm",
    "/api/captures/x/reject",
    "/captures/x/clean",
    "/captures/x/plate",
    "/cameras/cam/fixtures",
    "/cameras/cam/view",
    "/learning/x/undo",
    "/learning/x/forget",
    "/learning/apply",
    "/api/learning/x/undo",
    "/api/learning/x/forget",
    "/logout",
    "/cases/CW1/verify",
    "/api/cases/CW1/verify",
    "/admin/outbox/requeue",
    "/admin/outbox/x/requeue",
    "/api/dead-letters/requeue",
    "/admin/users",
    "/admin/users/op/disable",
    "/admin/users/op/enable",
    "/admin/users/op/reset",
];

#[tokio::test]
async fn every_route_needs_a_session_or_a_token() {
    let s = site().await;
    for p in PROTECTED_GET {
        for auth in [None, Some("Bearer cwt_wrong"), Some("cw_session=forged")] {
            let mut req = s.client.get(format!("{}{p}", s.base));
            match auth {
                Some(a) if a.starts_with("Bearer") => req = req.header("authorization", a),
                Some(c) => req = req.header("cookie", c),
                None => {}
            }
            let r = req.send().await.unwrap();
            let ok = r.status() == StatusCode::UNAUTHORIZED
                || (r.status() == StatusCode::SEE_OTHER && r.headers()["location"] == "/login");
            assert!(ok, "GET {p} with {auth:?}: {}", r.status());
        }
    }
    for p in PROTECTED_POST {
        let r = s
            .client
            .post(format!("{}{p}", s.base))
            .send()
            .await
            .unwrap();
        assert!(
            matches!(r.status(), StatusCode::UNAUTHORIZED | StatusCode::SEE_OTHER),
            "POST {p}: {}",
            r.status()
        );
    }
    // The login page and its stylesheet are open.
    for p in ["/login", "/static/app.css"] {
        let r = s.client.get(format!("{}{p}", s.base)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{p}");
    }
    // An API token works; the store holds only its hash.
    let token = s.store.create_token("view", "test", T0).await.unwrap();
    let r = s
        .client
        .get(format!("{}/api/captures", s.base))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let rows: Vec<serde_json::Value> = r.json().await.unwrap();
    assert_eq!(rows.len(), 2);
    let stored: Vec<String> = sqlx::query_scalar("SELECT id FROM api_tokens")
        .fetch_all(s.store.pool())
        .await
        .unwrap();
    assert!(!stored.contains(&token));
}

#[tokio::test]
async fn roles_and_csrf_guard_every_decision() {
    let s = site().await;
    let id = &s.captures[0];
    let (viewer, vcsrf) = login(&s, "view", "viewer-password").await;
    let r = s
        .client
        .post(format!("{}/api/captures/{id}/confirm", s.base))
        .header("cookie", &viewer)
        .header("x-csrf-token", &vcsrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "a viewer cannot confirm");
    let r = s
        .client
        .post(format!("{}/captures/{id}/reject", s.base))
        .header("cookie", &viewer)
        .form(&[("csrf", vcsrf.as_str()), ("reason", "duplicate")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "a viewer cannot reject");

    let (op, csrf) = login(&s, "op", "operator-password").await;
    for (what, req) in [
        (
            "no token",
            s.client
                .post(format!("{}/api/captures/{id}/confirm", s.base)),
        ),
        (
            "wrong token",
            s.client
                .post(format!("{}/api/captures/{id}/confirm", s.base))
                .header("x-csrf-token", "0000"),
        ),
        (
            "another session's token",
            s.client
                .post(format!("{}/api/captures/{id}/confirm", s.base))
                .header("x-csrf-token", &vcsrf),
        ),
        (
            "form without token",
            s.client
                .post(format!("{}/captures/{id}/confirm", s.base))
                .form(&[("x", "1")]),
        ),
    ] {
        let r = req.header("cookie", &op).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{what}");
    }
    assert_eq!(s.store.counts().await.unwrap().cases, 0);

    // With the token: confirmed (a case and its outbox row), then rejected elsewhere.
    let r = s
        .client
        .post(format!("{}/captures/{id}/confirm", s.base))
        .header("cookie", &op)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let c = s.store.counts().await.unwrap();
    assert_eq!((c.cases, c.outbox_pending), (1, 1));
    let other = &s.captures[1];
    let r = s
        .client
        .post(format!("{}/api/captures/{other}/reject", s.base))
        .header("cookie", &op)
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({ "reason": "because" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::UNPROCESSABLE_ENTITY,
        "unknown reason"
    );
    let r = s
        .client
        .post(format!("{}/api/captures/{other}/reject", s.base))
        .header("cookie", &op)
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({ "reason": "false_detection", "note": "a shadow" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let audit: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE action LIKE 'review.%'")
            .fetch_one(s.store.pool())
            .await
            .unwrap();
    assert_eq!(audit, 2, "every review is audited");
    // Logging out ends the session.
    let r = s
        .client
        .post(format!("{}/logout", s.base))
        .header("cookie", &op)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let r = s
        .client
        .get(format!("{}/api/captures", s.base))
        .header("cookie", &op)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn evidence_paths_cannot_leave_the_root() {
    let s = site().await;
    let (op, _) = login(&s, "op", "operator-password").await;
    let row: serde_json::Value = s
        .client
        .get(format!("{}/api/captures/{}", s.base, s.captures[0]))
        .header("cookie", &op)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let pkg = row["capture"]["evidence"]["package"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(row["manifest"]["capture_key"], s.captures[0].as_str());
    let good = s
        .client
        .get(format!("{}/evidence/{pkg}/confirm.jpg", s.base))
        .header("cookie", &op)
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), StatusCode::OK);
    assert_eq!(good.headers()["content-type"], "image/jpeg");

    let outside = s.dir.path().join("secret.txt");
    let variants = [
        "../secret.txt".to_string(),
        "..%2fsecret.txt".into(),
        "%2e%2e/secret.txt".into(),
        "%2e%2e%2fsecret.txt".into(),
        "%252e%252e%252fsecret.txt".into(),
        format!("{pkg}/../../../../secret.txt"),
        format!("{pkg}/..%2f..%2f..%2f..%2fsecret.txt"),
        "/etc/passwd".into(),
        "%2fetc%2fpasswd".into(),
        format!("{}", outside.display()),
        "2026-01-05/cam/evil.jpg".into(),
        "2026-01-05/cam/secret.json".into(),
        format!("{pkg}/confirm.jpg%00.png"),
        "%00".into(),
        format!("{pkg}\\..\\..\\secret.txt"),
        ".incoming/x.jpg".into(),
        "....//....//secret.txt".into(),
        format!("{pkg}/manifest.json/.."),
    ];
    for v in &variants {
        let r = s
            .client
            .get(format!("{}/evidence/{v}", s.base))
            .header("cookie", &op)
            .send()
            .await
            .unwrap();
        let status = r.status();
        let body = r.text().await.unwrap();
        assert!(
            status == StatusCode::NOT_FOUND || status == StatusCode::BAD_REQUEST,
            "{v}: {status}"
        );
        assert!(
            !body.contains("outside the root") && !body.contains("root:x:0"),
            "{v}"
        );
    }
}

#[tokio::test]
async fn filters_bodies_logins_and_secrets_are_handled() {
    let s = site().await;
    let (op, csrf) = login(&s, "op", "operator-password").await;
    let get = |p: String| {
        let c = s.client.get(format!("{}{p}", s.base)).header("cookie", &op);
        async move { c.send().await.unwrap() }
    };
    // SQL metacharacters in filters are data.
    for q in [
        "/api/cases?rule=%27%20OR%201%3D1%20--",
        "/api/captures?camera=x%27%3B%20DROP%20TABLE%20captures%3B--",
        "/api/captures?status=all&rule=%22%29%20OR%20%281%3D1",
        "/cases?camera=%27%3Cscript%3E",
    ] {
        let r = get(q.to_string()).await;
        assert_eq!(r.status(), StatusCode::OK, "{q}");
        let body = r.text().await.unwrap();
        assert!(!body.contains("<script>"), "{q}: escaped");
        if q.starts_with("/api/captures") {
            assert_eq!(body, "[]", "{q}");
        }
    }
    assert_eq!(s.store.counts().await.unwrap().captures, 2);

    // An offset is for shallow pages: past 10000 rows it is refused with the way deeper.
    for q in [
        "/api/captures?status=all",
        "/api/cases?limit=50",
        "/cases.csv?limit=50",
        "/cases?limit=50",
    ] {
        let r = get(format!("{q}&offset=2")).await;
        assert_eq!(r.status(), StatusCode::OK, "{q}");
        let r = get(format!("{q}&offset=10001")).await;
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY, "{q}");
        assert!(
            r.text().await.unwrap().contains("page deeper with `after`"),
            "{q}"
        );
    }
    let skipped: Vec<serde_json::Value> = get("/api/captures?status=all&offset=1".into())
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(skipped.len(), 1);

    // Oversized bodies are refused.
    let big = "x".repeat(200 * 1024);
    let r = s
        .client
        .post(format!("{}/api/captures/{}/reject", s.base, s.captures[0]))
        .header("cookie", &op)
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({ "reason": "other", "note": big }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // Camera passwords appear in no page and no API answer.
    let mut seen = String::new();
    for p in [
        "/review",
        "/cameras",
        "/cases",
        "/summary",
        "/api/cameras",
        "/api/summary",
        "/metrics",
        "/api/openapi.json",
    ] {
        let r = get(p.to_string()).await;
        assert_eq!(r.status(), StatusCode::OK, "{p}");
        seen.push_str(&r.text().await.unwrap());
    }
    seen.push_str(
        &get(format!("/captures/{}", s.captures[0]))
            .await
            .text()
            .await
            .unwrap(),
    );
    assert!(seen.contains("127.0.0.1:9"), "the camera is listed");
    assert!(
        seen.contains("<img src=\"/cameras/cam/latest.jpg\"")
            && seen.contains(
                "<polygon points=\"0,0 1,0 1,1 0,1\" data-zone=\"road\" class=\"config\">"
            ),
        "{seen}"
    );
    let r = get("/cameras/cam/latest.jpg".into()).await;
    assert_eq!(r.headers()["content-type"], "image/jpeg");
    assert_eq!(
        get("/cameras/nope/latest.jpg".into()).await.status(),
        StatusCode::NOT_FOUND
    );
    assert!(!seen.contains(CAMERA_PASSWORD));
    assert!(seen.contains("citywatch_outbox{state=\"pending\"}"));
    assert!(seen.contains("废弃车辆"), "Chinese by default");
    let en = get("/review?lang=en".into()).await.text().await.unwrap();
    assert!(en.contains("Review queue"));

    // Five failed logins, then even the right password is refused for a while.
    for _ in 0..5 {
        let r = s
            .client
            .post(format!("{}/login", s.base))
            .form(&[("user", "view"), ("password", "guess")])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }
    let r = s
        .client
        .post(format!("{}/login", s.base))
        .form(&[("user", "view"), ("password", "viewer-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS);
}

#[test]
fn citywatch_run_serves_the_ui_and_user_add_hashes_the_password() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_path: PathBuf = dir.path().join("p.toml");
    std::fs::write(
        &cfg_path,
        format!(
            "[cases]\ndatabase = \"sqlite://cases.db\"\ncategories = {:?}\n[web]\nlisten = \"127.0.0.1:0\"\n[[cameras]]\nid = \"cam\"\nurl = \"rtsp://u:{CAMERA_PASSWORD}@127.0.0.1:9/x\"\n",
            repo().join("pipelines/categories/default.toml").display().to_string()
        ),
    )
    .unwrap();
    use std::io::Write;
    let mut add = std::process::Command::new(bin())
        .args(["user", "add"])
        .arg(&cfg_path)
        .args(["alice", "--role", "admin"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    add.stdin
        .take()
        .unwrap()
        .write_all(b"a-long-password\n")
        .unwrap();
    let out = add.wait_with_output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "user alice (admin)"
    );
    let db = std::fs::read(dir.path().join("cases.db")).unwrap();
    assert!(!String::from_utf8_lossy(&db).contains("a-long-password"));

    let mut run = std::process::Command::new(bin())
        .arg("run")
        .arg(&cfg_path)
        .args(["--for", "30"])
        .env("CITYWATCH_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = run.stdout.take().unwrap();
    let line = std::io::BufRead::lines(std::io::BufReader::new(stdout))
        .map_while(Result::ok)
        .find(|l| l.starts_with("web: listening on "))
        .expect("the web server starts");
    let url = line.trim_start_matches("web: listening on ").to_string();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let status = rt.block_on(async {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap()
            .get(format!("{url}/review"))
            .send()
            .await
            .unwrap()
            .status()
    });
    let _ = run.kill();
    let _ = run.wait();
    assert_eq!(status, StatusCode::SEE_OTHER);
}

#[tokio::test]
async fn a_fixture_rejection_and_the_camera_page_teach_the_camera_its_fixtures() {
    use citywatch::analysis::SceneCommand;
    let s = site().await;
    let (op, csrf) = login(&s, "op", "operator-password").await;
    let (view, view_csrf) = login(&s, "view", "viewer-password").await;
    // 固定设施: the capture's box becomes a fixture of its camera.
    let id = &s.captures[0];
    let r = s
        .client
        .post(format!("{}/api/captures/{id}/reject", s.base))
        .header("cookie", &op)
        .header("x-csrf-token", &csrf)
        .json(&serde_json::json!({ "reason": "fixture" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let c = capture(1);
    assert_eq!(
        s.desk.pending("cam"),
        vec![SceneCommand::AddFixture {
            label: c.candidate.label.clone(),
            bbox: c.candidate.bbox,
        }]
    );
    // The cameras page adds one by its box; a bad box is refused; a viewer may not.
    let add = |cookie: &str, token: &str, x2: &str| {
        s.client
            .post(format!("{}/cameras/cam/fixtures", s.base))
            .header("cookie", cookie.to_string())
            .form(&[
                ("csrf", token),
                ("label", "bench"),
                ("x1", "0.1"),
                ("y1", "0.5"),
                ("x2", x2),
                ("y2", "0.7"),
            ])
            .send()
    };
    assert_eq!(
        add(&op, &csrf, "0.3").await.unwrap().status(),
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        add(&op, &csrf, "0.05").await.unwrap().status(),
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        add(&view, &view_csrf, "0.3").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(s.desk.pending("cam").len(), 2);
    assert!(
        matches!(&s.desk.pending("cam")[1], SceneCommand::AddFixture { label, .. } if label == "bench")
    );
    // Only a bin capture's zone can be marked clean.
    let r = s
        .client
        .post(format!("{}/captures/{}/clean", s.base, s.captures[1]))
        .header("cookie", &op)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    // The cameras page lists the fixtures section with its add form.
    let page = s
        .client
        .get(format!("{}/cameras", s.base))
        .header("cookie", &op)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("id=\"fixtures-cam\""), "{page}");
    assert!(page.contains("action=\"/cameras/cam/fixtures\""));
}

#[tokio::test]
async fn proposed_fixtures_are_listed_on_the_cameras_page_and_answered_with_an_audit_row() {
    use citywatch::analysis::{CaptureFinder, SceneCommand};
    use citywatch::detect::{Detection, ObjectKind};
    let s = site().await;
    let (op, csrf) = login(&s, "op", "operator-password").await;
    // The camera, running with the site's desk: a table standing at its first look is
    // proposed as a fixture, and published for the cameras page.
    let cfg = citywatch::config::PipelineConfig::parse(
        "[[cameras]]\nid = \"cam\"\nurl = \"rtsp://127.0.0.1:1/cam\"\n\
         [[cameras.zones]]\nid = \"lawn\"\nkind = \"no_vending\"\n\
         polygon = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]]\n\
         [[cameras.rules]]\nrule = \"illegal_vendor\"\nzones = [\"lawn\"]\n",
        std::path::Path::new("."),
    )
    .unwrap();
    let mut a = CaptureFinder::new(
        &cfg.cameras[0],
        &cfg,
        Box::new(citywatch::episodes::persist::NoStore),
        false,
    )
    .unwrap()
    .with_desk(s.desk.clone());
    let table = Detection {
        label: "dining table".into(),
        kind: ObjectKind::StallPart,
        score: 0.8,
        bbox: [0.2, 0.5, 0.4, 0.7],
        embedding: None,
    };
    for i in 0..3 {
        a.step(T0 + i as f64, std::slice::from_ref(&table), None);
    }
    assert_eq!(s.desk.proposed("cam").len(), 1);
    let place = s.desk.proposed("cam")[0].bbox;
    assert!(a.tracker().state.fixtures.is_empty(), "proposed, not made");
    let page = get_text(&s, &op, "/cameras?lang=en").await;
    assert!(page.contains("id=\"proposed-cam\""), "{page}");
    // Said in the page's language: where it stands, and why it is proposed.
    assert!(
        page.contains("<th>Place in the view (left, top, right, bottom)</th>"),
        "{page}"
    );
    assert!(
        page.contains("<small>there when the scene was first learned</small>"),
        "{page}"
    );
    assert!(page.contains("name=\"accept\" value=\"0\""), "{page}");
    assert!(page.contains("name=\"dismiss\" value=\"0\""), "{page}");
    // The operator accepts it: the command goes to the camera, and the audit log says who.
    let r = s
        .client
        .post(format!("{}/cameras/cam/fixtures", s.base))
        .header("cookie", &op)
        .form(&[("csrf", csrf.as_str()), ("accept", "0")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        s.desk.pending("cam"),
        vec![SceneCommand::AnswerProposed {
            bbox: place,
            accept: true,
        }]
    );
    let audit = s
        .store
        .audit_rows(&citywatch::store::audit::AuditFilter {
            action: Some("fixture.".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "{audit:?}");
    assert_eq!(
        (
            audit[0].actor.as_str(),
            audit[0].action.as_str(),
            audit[0].subject.as_str()
        ),
        ("op", "fixture.accept", "cam")
    );
    assert!(
        audit[0]
            .detail
            .as_deref()
            .unwrap_or("")
            .contains("dining table")
    );
    // The camera carries it out at its next frame: a fixture now, no longer proposed.
    a.step(T0 + 3.0, std::slice::from_ref(&table), None);
    assert_eq!(a.tracker().state.fixtures.len(), 1);
    assert!(s.desk.proposed("cam").is_empty());
    // An index that is not proposed is refused.
    let r = s
        .client
        .post(format!("{}/cameras/cam/fixtures", s.base))
        .header("cookie", &op)
        .form(&[("csrf", csrf.as_str()), ("dismiss", "0")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

/// A state-changing request with a session cookie and its CSRF token, with a JSON body if
/// one is given.
async fn post_as(
    s: &Site,
    cookie: &str,
    csrf: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> reqwest::Response {
    let mut r = s
        .client
        .post(format!("{}{path}", s.base))
        .header("cookie", cookie)
        .header("x-csrf-token", csrf);
    if let Some(b) = body {
        r = r.json(&b);
    }
    r.send().await.unwrap()
}

/// A page's text, fetched with a session cookie.
/// A filing stage whose evidence disk is full, for the pages' notice.
struct FullDisk;

impl citywatch::model::live::FilingControl for FullDisk {
    fn status(&self) -> citywatch::filing::FilingStatus {
        citywatch::filing::FilingStatus {
            evidence_pending: 3,
            held: 1,
            blocked: Some(citywatch::model::live::FilingBlocked {
                place: "evidence",
                reason: citywatch::model::live::BlockReason::DiskFull,
                since: T0,
            }),
            ..Default::default()
        }
    }
    fn wake(&self) {}
}

#[tokio::test]
async fn a_full_evidence_disk_is_named_on_every_page_and_in_the_metrics() {
    let s = site_filing(1, Some(Arc::new(FullDisk))).await;
    let (cookie, _) = login(&s, "op", "operator-password").await;
    for path in ["/review", "/cases", "/cameras", "/summary"] {
        let page = get_text(&s, &cookie, path).await;
        let notice = page
            .split("id=\"filing-blocked\"")
            .nth(1)
            .unwrap_or_else(|| panic!("no notice on {path}"));
        let notice = &notice[..notice.find("</p>").unwrap()];
        assert!(
            notice.contains("证据磁盘") && notice.contains("磁盘已满") && notice.contains("4 条"),
            "{path}: {notice}"
        );
    }
    let metrics = get_text(&s, &cookie, "/metrics").await;
    assert!(
        metrics.contains("citywatch_filing_blocked{place=\"evidence\",reason=\"disk_full\"} 1"),
        "{metrics}"
    );
    assert!(metrics.contains("citywatch_captures_held 1"), "{metrics}");
    // A site whose filing flows shows no notice.
    let calm = site().await;
    let (cookie, _) = login(&calm, "op", "operator-password").await;
    assert!(
        !get_text(&calm, &cookie, "/review")
            .await
            .contains("filing-blocked")
    );
}

async fn get_text(s: &Site, cookie: &str, path: &str) -> String {
    s.client
        .get(format!("{}{path}", s.base))
        .header("cookie", cookie)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// A signed platform callback: (status, JSON answer).
async fn callback(
    s: &Site,
    body: &serde_json::Value,
    ts: f64,
    nonce: &str,
    secret: &str,
) -> (StatusCode, serde_json::Value) {
    let body = body.to_string();
    let ts = format!("{ts:.3}");
    let sig = citywatch::web::platform::sign(secret, &ts, nonce, body.as_bytes());
    let r = s
        .client
        .post(format!("{}/platform/callback", s.base))
        .header("content-type", "application/json")
        .header("x-platform-timestamp", &ts)
        .header("x-platform-nonce", nonce)
        .header("x-platform-signature", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.json().await.unwrap_or_default())
}

fn now() -> f64 {
    citywatch::core::to_unix(std::time::SystemTime::now())
}

#[tokio::test]
async fn platform_callbacks_are_signed_fresh_unreplayed_and_idempotent() {
    let s = site().await;
    let cfg = site_config(s.dir.path());
    let policy = cfg.cases.as_ref().unwrap().policy();
    let case = s
        .store
        .confirm(&s.captures[0], "op", &policy, &Default::default(), T0)
        .await
        .unwrap();
    let report = |status: &str, event: &str, case: &str| serde_json::json!({ "event_id": event, "case_number": case, "status": status, "note": "第一中队" });
    let history = || async { s.store.case_events(&case).await.unwrap().len() };
    assert_eq!(history().await, 1, "filed");

    // Each refusal is a clear 4xx and changes nothing.
    let dispatched = report("dispatched", "ev-1", &case);
    let (st, v) = callback(&s, &dispatched, now(), "nonce-0001", "wrong-secret-0123456").await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert_eq!(v["error"], "bad signature");
    let (st, v) = callback(
        &s,
        &dispatched,
        now() - 3600.0,
        "nonce-0002",
        PLATFORM_SECRET,
    )
    .await;
    assert_eq!(st, StatusCode::UNAUTHORIZED);
    assert!(v["error"].as_str().unwrap().contains("stale"), "{v}");
    let (st, v) = callback(
        &s,
        &report("dispatched", "ev-x", "CW19990101000001"),
        now(),
        "nonce-0003",
        PLATFORM_SECRET,
    )
    .await;
    assert_eq!(st, StatusCode::NOT_FOUND);
    assert_eq!(v["error"], "no such case");
    // A body that does not match its signature (edited on the way).
    let r = s
        .client
        .post(format!("{}/platform/callback", s.base))
        .header("x-platform-timestamp", format!("{:.3}", now()))
        .header("x-platform-nonce", "nonce-0004")
        .header("x-platform-signature", "sha256=00")
        .body(dispatched.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(s.store.case(&case).await.unwrap().unwrap().status, "filed");
    assert_eq!(history().await, 1);

    // The good one applies; sent again as is (the same nonce), it is a replay.
    let t = now();
    let (st, v) = callback(&s, &dispatched, t, "nonce-0005", PLATFORM_SECRET).await;
    assert_eq!(st, StatusCode::OK, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["applied"].as_bool()),
        (Some("dispatched"), Some(true))
    );
    let (st, v) = callback(&s, &dispatched, t, "nonce-0005", PLATFORM_SECRET).await;
    assert_eq!(st, StatusCode::CONFLICT);
    assert!(v["error"].as_str().unwrap().contains("replay"), "{v}");
    // The platform retrying the same report with a new nonce: idempotent.
    let (st, v) = callback(&s, &dispatched, now(), "nonce-0006", PLATFORM_SECRET).await;
    assert_eq!(st, StatusCode::OK);
    assert_eq!(v["applied"], false);
    assert_eq!(history().await, 2);

    // Handled: the closure check waits for the camera.
    let (st, v) = callback(
        &s,
        &report("handled", "ev-2", &case),
        now(),
        "nonce-0007",
        PLATFORM_SECRET,
    )
    .await;
    assert_eq!(
        (st, v["status"].as_str()),
        (StatusCode::OK, Some("handled"))
    );
    let checks = s.store.waiting_checks().await.unwrap();
    assert_eq!(checks.len(), 1);
    assert_eq!(
        (checks[0].case_number.as_str(), checks[0].camera.as_str()),
        (case.as_str(), "cam")
    );
    // A second handled report (another event) does not apply to a handled case.
    let (st, _) = callback(
        &s,
        &report("handled", "ev-3", &case),
        now(),
        "nonce-0008",
        PLATFORM_SECRET,
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
    let statuses: Vec<String> = s
        .store
        .case_events(&case)
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.status)
        .collect();
    assert_eq!(statuses, ["filed", "dispatched", "handled"]);

    // A person verifies it (the camera has not looked yet): closed, and the platform told.
    let (op, csrf) = login(&s, "op", "operator-password").await;
    let r = s
        .client
        .post(format!("{}/cases/{case}/verify", s.base))
        .header("cookie", &op)
        .form(&[("csrf", csrf.as_str()), ("outcome", "clear")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        s.store.case(&case).await.unwrap().unwrap().status,
        "verified_closed"
    );
    assert!(s.store.waiting_checks().await.unwrap().is_empty());
    let page = get_text(&s, &op, &format!("/cases/{case}")).await;
    assert!(
        page.contains("id=\"history\"") && page.contains("核实结案"),
        "{page}"
    );
    // Closed is final: a late report is refused.
    let (st, _) = callback(
        &s,
        &report("dispatched", "ev-9", &case),
        now(),
        "nonce-0009",
        PLATFORM_SECRET,
    )
    .await;
    assert_eq!(st, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_tampered_package_is_named_and_cannot_be_confirmed() {
    let s = site().await;
    let id = &s.captures[0];
    let c = s.store.capture(id).await.unwrap().unwrap();
    let pkg = c.evidence.as_ref().unwrap()["package"]
        .as_str()
        .unwrap()
        .to_string();
    let jpg = s.dir.path().join("evidence").join(&pkg).join("crop.jpg");
    let mut bytes = std::fs::read(&jpg).unwrap();
    let mid = bytes.len() / 2;
    bytes[mid] ^= 0x01;
    std::fs::write(&jpg, bytes).unwrap();

    let (op, csrf) = login(&s, "op", "operator-password").await;
    let page = get_text(&s, &op, &format!("/captures/{id}?lang=en")).await;
    assert!(page.contains("id=\"tampered\""), "{page}");
    assert!(page.contains("Evidence tampered"), "{page}");
    assert!(
        page.contains("<li class=\"tampered-file\">crop.jpg</li>"),
        "{page}"
    );
    assert!(!page.contains("<li class=\"tampered-file\">confirm.jpg</li>"));
    assert!(
        !page.contains("id=\"confirm-form\""),
        "no confirm button for tampered evidence"
    );
    // Confirm is refused on the API and the page route alike; the capture stays pending.
    let r = s
        .client
        .post(format!("{}/api/captures/{id}/confirm", s.base))
        .header("cookie", &op)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("crop.jpg"));
    let r = s
        .client
        .post(format!("{}/captures/{id}/confirm", s.base))
        .header("cookie", &op)
        .form(&[("csrf", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert_eq!(
        s.store.capture(id).await.unwrap().unwrap().status,
        "pending_review"
    );
    // The other capture's package is whole and confirms.
    let r = s
        .client
        .post(format!("{}/api/captures/{}/confirm", s.base, s.captures[1]))
        .header("cookie", &op)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
}

#[tokio::test]
async fn admins_manage_users_and_read_the_audit_log_others_cannot() {
    let s = site().await;
    s.store
        .upsert_user("boss", Role::Admin, "admin-password", T0)
        .await
        .unwrap();
    let (op, ocsrf) = login(&s, "op", "operator-password").await;
    for p in [
        "/admin/users",
        "/admin/audit",
        "/admin/outbox",
        "/api/users",
        "/api/audit",
    ] {
        let r = s
            .client
            .get(format!("{}{p}", s.base))
            .header("cookie", &op)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::FORBIDDEN, "{p}");
    }
    let r = s
        .client
        .post(format!("{}/admin/users", s.base))
        .header("cookie", &op)
        .form(&[
            ("csrf", ocsrf.as_str()),
            ("name", "x"),
            ("role", "admin"),
            ("password", "0123456789ab"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);

    let (admin, csrf) = login(&s, "boss", "admin-password").await;
    let post = |path: String, form: Vec<(&'static str, String)>| {
        let (c, admin) = (s.client.clone(), admin.clone());
        async move {
            c.post(path)
                .header("cookie", admin)
                .form(&form)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    let add = |name: &str, pw: &str| {
        vec![
            ("csrf", csrf.clone()),
            ("name", name.to_string()),
            ("role", "operator".to_string()),
            ("password", pw.to_string()),
        ]
    };
    assert_eq!(
        post(
            format!("{}/admin/users", s.base),
            add("carol", "carol-password")
        )
        .await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        post(
            format!("{}/admin/users", s.base),
            add("carol", "carol-password")
        )
        .await,
        StatusCode::CONFLICT
    );
    assert_eq!(
        post(format!("{}/admin/users", s.base), add("dave", "short")).await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    assert_eq!(
        post(
            format!("{}/admin/users", s.base),
            add("bad name", "long-enough-pw")
        )
        .await,
        StatusCode::UNPROCESSABLE_ENTITY
    );
    let (carol, _) = login(&s, "carol", "carol-password").await;
    // Disabled: the session stops working and the login is refused.
    assert_eq!(
        post(
            format!("{}/admin/users/carol/disable", s.base),
            vec![("csrf", csrf.clone())]
        )
        .await,
        StatusCode::SEE_OTHER
    );
    let r = s
        .client
        .get(format!("{}/review", s.base))
        .header("cookie", &carol)
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        StatusCode::SEE_OTHER,
        "a disabled user's session ends"
    );
    let r = s
        .client
        .post(format!("{}/login", s.base))
        .form(&[("user", "carol"), ("password", "carol-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        post(
            format!("{}/admin/users/carol/enable", s.base),
            vec![("csrf", csrf.clone())]
        )
        .await,
        StatusCode::SEE_OTHER
    );
    assert_eq!(
        post(
            format!("{}/admin/users/carol/reset", s.base),
            vec![
                ("csrf", csrf.clone()),
                ("password", "carol-new-password".into())
            ]
        )
        .await,
        StatusCode::SEE_OTHER
    );
    login(&s, "carol", "carol-new-password").await;
    // An admin cannot lock themself out.
    assert_eq!(
        post(
            format!("{}/admin/users/boss/disable", s.base),
            vec![("csrf", csrf.clone())]
        )
        .await,
        StatusCode::CONFLICT
    );
    // The users page lists them; the audit log has what happened, filtered, with its chain.
    let page = get_text(&s, &admin, "/admin/users?lang=en").await;
    assert!(page.contains("data-name=\"carol\""), "{page}");
    let v: serde_json::Value = s
        .client
        .get(format!("{}/api/audit?actor=boss&action=user.", s.base))
        .header("cookie", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let actions: Vec<&str> = v["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "user.reset_password",
            "user.enable",
            "user.disable",
            "user.add"
        ],
        "{v}"
    );
    assert_eq!(v["chain"]["broken"], serde_json::Value::Null, "{v}");
    let page = get_text(&s, &admin, "/admin/audit?subject=carol&lang=en").await;
    assert!(page.contains("Hash chain intact"), "{page}");
    assert!(page.contains("user.disable"));
    assert!(!page.contains("login.failed\">"), "filtered to carol");

    // Editing an audit row breaks the chain, and the page says where.
    sqlx::query("UPDATE audit_log SET actor = 'someone-else' WHERE action = 'user.disable'")
        .execute(s.store.pool())
        .await
        .unwrap();
    // A view checks the rows since the last full walk; a full walk finds the edit.
    let page = get_text(&s, &admin, "/admin/audit?lang=en&walk=full").await;
    assert!(page.contains("Hash chain broken at"), "{page}");
}

#[tokio::test]
async fn with_tls_the_ui_is_https_only_with_secure_cookies_and_hsts() {
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    run_ok(
        std::process::Command::new("openssl")
            .args([
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
                "-addext",
                "basicConstraints=critical,CA:FALSE",
                "-addext",
                "extendedKeyUsage=serverAuth",
                "-keyout",
            ])
            .arg(&key)
            .arg("-out")
            .arg(&cert),
    );
    let cfg = config(&format!(
        r#"
[cases]
database = "sqlite://{d}/cases.db"
categories = "pipelines/categories/default.toml"
spool = "{d}/spool"
[web]
listen = "127.0.0.1:0"
tls_cert = "{c}"
tls_key = "{k}"
[[cameras]]
id = "cam"
url = "rtsp://127.0.0.1:9/stream"
"#,
        d = dir.path().display(),
        c = cert.display(),
        k = key.display()
    ));
    let store = citywatch::pipeline::open_store(&cfg.cases.as_ref().unwrap().database, &cfg)
        .await
        .unwrap();
    store
        .upsert_user("op", Role::Operator, "operator-password", T0)
        .await
        .unwrap();
    let shutdown = Shutdown::new();
    let _stop = ShutdownOnDrop(shutdown.clone());
    let state = citywatch::web::WebState::new(
        &cfg,
        store,
        Default::default(),
        Default::default(),
        None,
        Arc::new(SystemClock),
    )
    .unwrap();
    let addr = citywatch::web::serve(Arc::new(state), shutdown.clone())
        .await
        .unwrap();
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&cert).unwrap()).unwrap();
    let client = reqwest::Client::builder()
        .add_root_certificate(ca)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client
        .post(format!("https://localhost:{}/login", addr.port()))
        .form(&[("user", "op"), ("password", "operator-password")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    let cookie = r.headers()[reqwest::header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.contains("; Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    assert_eq!(r.headers()["strict-transport-security"], "max-age=31536000");
    // Plain HTTP gets no page.
    let plain = reqwest::Client::new()
        .get(format!("http://127.0.0.1:{}/login", addr.port()))
        .send()
        .await;
    assert!(plain.is_err() || !plain.unwrap().status().is_success());
    // A config with only one of the pair names the missing field.
    let e = PipelineConfig::parse(
        &format!(
            "[cases]\ndatabase = \"sqlite://x.db\"\ncategories = \"pipelines/categories/default.toml\"\n[web]\ntls_cert = \"{}\"\n",
            cert.display()
        ),
        &repo(),
    )
    .unwrap_err();
    assert!(e.iter().any(|p| p.path == "web.tls_key"), "{e:?}");
}

/// The OpenAPI document as a client fetches it passes a standard validator
/// (openapi-spec-validator, which scripts/test.sh installs into .local/openapi-validator):
/// the document utoipa generates from the handlers declares OpenAPI 3.1 and is 3.1
/// throughout, and it lists the routes the router serves.
#[tokio::test]
async fn the_served_openapi_document_passes_a_standard_validator() {
    let s = site().await;
    let (op, _) = login(&s, "op", "operator-password").await;
    let doc = s
        .client
        .get(format!("{}/api/openapi.json", s.base))
        .header("cookie", &op)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("openapi.json");
    std::fs::write(&path, &doc).unwrap();
    let validator = repo().join(".local/openapi-validator/bin/openapi-spec-validator");
    assert!(
        validator.exists(),
        "{} is missing: scripts/test.sh installs it",
        validator.display()
    );
    let out = std::process::Command::new(&validator)
        .arg(&path)
        .output()
        .unwrap();
    let said =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("OK"), "{said}");
    let doc: serde_json::Value = serde_json::from_str(&doc).unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "{}",
        doc["openapi"]
    );
    // What the document says exists is served: each GET it lists answers (not 404/405).
    for (path, item) in doc["paths"].as_object().unwrap() {
        if item.get("get").is_none() || path.contains('{') {
            continue;
        }
        let r = s
            .client
            .get(format!("{}{path}", s.base))
            .header("cookie", &op)
            .send()
            .await
            .unwrap();
        assert!(
            r.status() != 404 && r.status() != 405,
            "{path}: {}",
            r.status()
        );
    }
}

/// Two operators working the same queue through `POST /api/queue/claim` get two different
/// captures; the queue page shows each what the other holds; one cannot decide the other's;
/// a decision ends a claim and a release gives one back; an empty queue answers 204.
#[tokio::test]
async fn two_operators_claim_different_captures_and_never_decide_the_same_one() {
    let s = site().await;
    s.store
        .upsert_user("op2", Role::Operator, "operator2-password", T0)
        .await
        .unwrap();
    let (a, acsrf) = login(&s, "op", "operator-password").await;
    let (b, bcsrf) = login(&s, "op2", "operator2-password").await;
    let claim = async |cookie: &str, csrf: &str| {
        let r = post_as(&s, cookie, csrf, "/api/queue/claim?order=oldest", None).await;
        let status = r.status();
        let body = r.text().await.unwrap();
        (
            status,
            serde_json::from_str::<serde_json::Value>(&body).unwrap_or_default(),
        )
    };
    let (sa, ca) = claim(&a, &acsrf).await;
    let (sb, cb) = claim(&b, &bcsrf).await;
    assert_eq!((sa, sb), (StatusCode::OK, StatusCode::OK));
    let (ida, idb) = (
        ca["id"].as_str().unwrap().to_string(),
        cb["id"].as_str().unwrap().to_string(),
    );
    assert_ne!(ida, idb, "both operators got the same capture");
    assert_eq!(ca["claimed_by"], "op");
    assert!(ca["expires_at"].as_f64().unwrap() > 0.0);
    // The oldest first, as asked.
    assert_eq!(ida, s.captures[0]);
    // Claiming again (a reload) keeps the same capture.
    assert_eq!(claim(&a, &acsrf).await.1["id"], ida.as_str());
    // A viewer cannot claim.
    let (v, vcsrf) = login(&s, "view", "viewer-password").await;
    assert_eq!(claim(&v, &vcsrf).await.0, StatusCode::FORBIDDEN);

    // Each sees the other's capture as held on the queue page.
    let page = get_text(&s, &a, "/review?lang=en").await;
    assert!(page.contains("Held by op2"), "{page}");
    assert!(!page.contains("Held by op<"), "{page}");

    // op2 cannot decide op's capture; op can, and that ends the claim.
    let confirm = format!("/api/captures/{ida}/confirm");
    let r = post_as(&s, &b, &bcsrf, &confirm, None).await;
    assert_eq!(r.status(), StatusCode::CONFLICT);
    assert!(r.text().await.unwrap().contains("claimed by op"));
    let r = post_as(&s, &a, &acsrf, &confirm, None).await;
    assert_eq!(r.status(), StatusCode::OK);
    // Nothing is left for op but op2's, which op2 holds: 204.
    assert_eq!(claim(&a, &acsrf).await.0, StatusCode::NO_CONTENT);
    // op2 gives it back; then op gets it.
    let body = serde_json::json!({ "id": idb });
    let r = post_as(&s, &b, &bcsrf, "/api/queue/release", Some(body)).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["released"], 1);
    assert_eq!(claim(&a, &acsrf).await.1["id"], idb.as_str());
}

/// The summary draws its figures as inline SVG charts: captures per day by rule, the
/// confirmation rate, the time to a decision and to filing, and the rejection reasons.
#[tokio::test]
async fn the_summary_draws_its_charts_inline() {
    let s = site().await;
    let (op, csrf) = login(&s, "op", "operator-password").await;
    let (a, b) = (&s.captures[0], &s.captures[1]);
    let r = post_as(&s, &op, &csrf, &format!("/api/captures/{a}/confirm"), None).await;
    assert!(r.status().is_success());
    let reason = Some(serde_json::json!({ "reason": "duplicate" }));
    let r = post_as(&s, &op, &csrf, &format!("/api/captures/{b}/reject"), reason).await;
    assert!(r.status().is_success());
    let page = get_text(&s, &op, "/summary?lang=en").await;
    for id in [
        "chart-per-day",
        "chart-rates",
        "chart-decision",
        "chart-filing",
        "chart-reasons",
    ] {
        assert!(
            page.contains(&format!("<svg class=\"chart\" id=\"{id}\"")),
            "{id} in {page}"
        );
    }
    assert!(page.contains("50% (1/2)"), "{page}");
    assert!(page.contains("Duplicate: 1"), "{page}");
    // Live captures, not recorded footage: no replay note.
    assert!(!page.contains("id=\"replayed\""), "{page}");
    // The last day's capacity and health: none sampled yet, then two samples an hour apart.
    assert!(page.contains("id=\"no-samples\""), "{page}");
    let now = citywatch::core::to_unix(std::time::SystemTime::now());
    for (at, streaming, unhealthy) in [(now - 3600.0, 2, 1), (now, 3, 0)] {
        s.store
            .record_health_sample(&citywatch::store::samples::HealthSample {
                at,
                source: "w1".into(),
                cameras: 3,
                streaming,
                unhealthy,
                off_view: 0,
                analysed_per_min: 40,
                inferences_per_min: 10,
            })
            .await
            .unwrap();
    }
    let page = get_text(&s, &op, "/summary?lang=en").await;
    assert!(page.contains("Capacity and health, the last day"), "{page}");
    for id in ["chart-health", "chart-capacity"] {
        assert!(page.contains(&format!("id=\"{id}\"")), "{id}: {page}");
    }
    assert!(!page.contains("id=\"no-samples\""), "{page}");
}

#[tokio::test]
async fn an_admin_takes_an_off_view_cameras_view_as_its_own_audited_and_sent_to_the_camera() {
    use citywatch::analysis::SceneCommand;
    let s = site().await;
    let (admin, csrf) = login_admin(&s).await;
    let (op, ocsrf) = login(&s, "op", "operator-password").await;
    // On view: the cameras page offers nothing.
    let page = get_text(&s, &admin, "/cameras").await;
    assert!(!page.contains("action=\"/cameras/cam/view\""), "{page}");
    // The camera turned: its health says so, and an admin is offered to take the view.
    s.analysis.lock().insert(
        "cam".into(),
        citywatch::analysis::AnalysisStatus {
            off_view: true,
            ..Default::default()
        },
    );
    let page = get_text(&s, &admin, "/cameras").await;
    assert!(page.contains("class=\"state off_view\""), "{page}");
    assert!(page.contains("action=\"/cameras/cam/view\""), "{page}");
    let page = get_text(&s, &op, "/cameras").await;
    assert!(
        !page.contains("action=\"/cameras/cam/view\""),
        "an operator is not offered it"
    );
    let take = |cookie: &str, token: &str, camera: &str| {
        s.client
            .post(format!("{}/cameras/{camera}/view", s.base))
            .header("cookie", cookie.to_string())
            .form(&[("csrf", token)])
            .send()
    };
    // An operator may not, a wrong token is refused, and an unknown camera is not found.
    assert_eq!(
        take(&op, &ocsrf, "cam").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        take(&admin, "wrong", "cam").await.unwrap().status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        take(&admin, &csrf, "nowhere").await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    assert!(s.desk.pending("cam").is_empty());
    // The admin's word: audited, and sent to the camera.
    let r = take(&admin, &csrf, "cam").await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/cameras");
    assert_eq!(s.desk.pending("cam"), vec![SceneCommand::TakeView]);
    let audit = get_text(&s, &admin, "/api/audit?action=view.").await;
    assert!(
        audit.contains("\"view.take\"") && audit.contains("\"boss\""),
        "{audit}"
    );
}

#[tokio::test]
async fn an_admin_redraws_a_zone_it_is_checked_stored_audited_sent_to_the_camera_and_reset() {
    let s = site().await;
    let (admin, csrf) = login_admin(&s).await;
    let (op, ocsrf) = login(&s, "op", "operator-password").await;
    let url = |z: &str| format!("{}/api/cameras/cam/zones/{z}", s.base);
    let put = |cookie: &str, token: &str, z: &str, body: serde_json::Value| {
        s.client
            .put(url(z))
            .header("cookie", cookie)
            .header("x-csrf-token", token)
            .json(&body)
            .send()
    };
    let square = serde_json::json!({"polygon": [[0.3, 0.3], [0.7, 0.3], [0.7, 0.7], [0.3, 0.7]]});
    // Only an admin draws zones, and only on a camera's own zones.
    assert_eq!(
        put(&op, &ocsrf, "road", square.clone())
            .await
            .unwrap()
            .status(),
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        put(&admin, &csrf, "nowhere", square.clone())
            .await
            .unwrap()
            .status(),
        StatusCode::NOT_FOUND
    );
    // A polygon that crosses itself, or leaves the frame, is refused with the reason.
    for (bad, why) in [
        (
            serde_json::json!({"polygon": [[0.1, 0.1], [0.9, 0.9], [0.9, 0.1], [0.1, 0.9]]}),
            "self-intersecting",
        ),
        (
            serde_json::json!({"polygon": [[0.1, 0.1], [1.4, 0.1], [0.5, 0.9]]}),
            "outside 0..1",
        ),
    ] {
        let r = put(&admin, &csrf, "road", bad).await.unwrap();
        assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
        let text = r.text().await.unwrap();
        assert!(text.contains(why), "{text}");
    }
    assert!(
        s.desk.pending("cam").is_empty(),
        "nothing refused reaches the camera"
    );
    // Drawn: stored, audited, sent to the camera, shown on the cameras page.
    let r = put(&admin, &csrf, "road", square).await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let z: serde_json::Value = r.json().await.unwrap();
    assert_eq!(
        (z["source"].as_str(), z["set_by"].as_str()),
        (Some("drawn"), Some("boss"))
    );
    let sent = s.desk.pending("cam");
    assert!(
        matches!(&sent[..], [citywatch::analysis::SceneCommand::SetZone { zone, polygon }]
            if zone == "road" && polygon.0[0] == [0.3, 0.3]),
        "{sent:?}"
    );
    let stored = s.store.zone_overrides().await.unwrap();
    assert_eq!(stored.len(), 1);
    let audit = get_text(&s, &admin, "/api/audit?action=zone.").await;
    assert!(
        audit.contains("zone.set") && audit.contains("cam/road"),
        "{audit}"
    );
    let page = get_text(&s, &admin, "/cameras?lang=en").await;
    assert!(
        page.contains(
            "points=\"0.3,0.3 0.7,0.3 0.7,0.7 0.3,0.7\" data-zone=\"road\" class=\"drawn\""
        ),
        "{page}"
    );
    assert!(
        page.contains("class=\"zone-editor\""),
        "admins get the editor"
    );
    let viewer = login(&s, "view", "viewer-password").await.0;
    assert!(
        !get_text(&s, &viewer, "/cameras")
            .await
            .contains("zone-editor")
    );
    // Reset: the config's polygon again, audited, and sent to the camera.
    s.desk.take("cam");
    let r = s
        .client
        .delete(url("road"))
        .header("cookie", &admin)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let z: serde_json::Value = r.json().await.unwrap();
    assert_eq!(z["source"], "config");
    assert_eq!(
        z["polygon"],
        serde_json::json!([[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    );
    assert_eq!(s.desk.pending("cam").len(), 1);
    assert!(s.store.zone_overrides().await.unwrap().is_empty());
    assert!(
        get_text(&s, &admin, "/api/audit?action=zone.")
            .await
            .contains("zone.reset")
    );
}

#[tokio::test]
async fn an_admin_draws_a_new_mask_beyond_the_configs_zones_and_removes_it() {
    let s = site().await;
    let (admin, csrf) = login_admin(&s).await;
    let url = |z: &str| format!("{}/api/cameras/cam/zones/{z}", s.base);
    let remove = || {
        s.client
            .delete(url("drawn-mask-1"))
            .header("cookie", &admin)
            .header("x-csrf-token", &csrf)
            .send()
    };
    let tree = serde_json::json!({"polygon": [[0.1, 0.1], [0.3, 0.1], [0.2, 0.4]]});
    // Only the drawn-mask-<n> names are new zones; any other unknown name is not found.
    for (zone, status) in [
        ("drawn-mask-x", StatusCode::NOT_FOUND),
        ("mask-1", StatusCode::NOT_FOUND),
        ("drawn-mask-1", StatusCode::OK),
    ] {
        let r = s
            .client
            .put(url(zone))
            .header("cookie", &admin)
            .header("x-csrf-token", &csrf)
            .json(&tree)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), status, "{zone}");
    }
    // Sent to the camera as a zone to set (its engine adds it as a mask), stored, audited,
    // drawn on the cameras page as a mask and offered in the editor.
    let sent = s.desk.take("cam");
    assert!(
        matches!(&sent[..], [citywatch::analysis::SceneCommand::SetZone { zone, .. }] if zone == "drawn-mask-1"),
        "{sent:?}"
    );
    let got: serde_json::Value = s
        .client
        .get(url("drawn-mask-1"))
        .header("cookie", &admin)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(got["source"], "drawn");
    let page = get_text(&s, &admin, "/cameras?lang=en").await;
    assert!(
        page.contains("data-zone=\"drawn-mask-1\" class=\"drawn mask\""),
        "{page}"
    );
    assert!(page.contains("<option>drawn-mask-1</option>"), "{page}");
    assert!(
        get_text(&s, &admin, "/api/audit?action=zone.")
            .await
            .contains("cam/drawn-mask-1")
    );
    // Reset removes it: the camera is told, nothing is stored, the page no longer draws it.
    let r = remove().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let z: serde_json::Value = r.json().await.unwrap();
    assert_eq!(z["source"], "removed");
    let sent = s.desk.take("cam");
    assert!(
        matches!(&sent[..], [citywatch::analysis::SceneCommand::RemoveZone { zone }] if zone == "drawn-mask-1"),
        "{sent:?}"
    );
    assert!(s.store.zone_overrides().await.unwrap().is_empty());
    assert!(
        !get_text(&s, &admin, "/cameras")
            .await
            .contains("drawn-mask-1")
    );
    let r = remove().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND, "removed already");
}

#[tokio::test]
async fn operators_correct_a_plate_validated_and_audited_and_viewers_see_it_masked() {
    let s = site().await;
    let (op, csrf) = login(&s, "op", "operator-password").await;
    let (view, vcsrf) = login(&s, "view", "viewer-password").await;
    let id = s.captures[0].clone();
    let put = |cookie: &str, token: &str, body: serde_json::Value| {
        s.client
            .put(format!("{}/api/captures/{id}/plate", s.base))
            .header("cookie", cookie)
            .header("x-csrf-token", token)
            .json(&body)
            .send()
    };
    // Viewers cannot correct; a text that is not a plate is refused, saying what is.
    let r = put(&view, &vcsrf, serde_json::json!({"plate": "京A12345"}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    let r = put(&op, &csrf, serde_json::json!({"plate": "京A1234"}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(r.text().await.unwrap().contains("京A12345"));
    // Separators and case are the operator's business.
    let r = put(&op, &csrf, serde_json::json!({"plate": "京a·1234o"}))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let v: serde_json::Value = r.json().await.unwrap();
    assert_eq!(v["plate"], "京A12340");
    // Operators see it in full, viewers masked, in the API and on the page.
    let full = get_text(&s, &op, &format!("/api/captures/{id}")).await;
    assert!(full.contains("京A12340"), "{full}");
    let masked = get_text(&s, &view, &format!("/api/captures/{id}")).await;
    assert!(
        masked.contains("京A****0") && !masked.contains("京A12340"),
        "{masked}"
    );
    let list = get_text(&s, &view, "/api/captures").await;
    assert!(!list.contains("京A12340"), "{list}");
    let page = get_text(&s, &view, &format!("/captures/{id}?lang=en")).await;
    assert!(
        page.contains("京A****0") && !page.contains("plate-form"),
        "{page}"
    );
    let page = get_text(&s, &op, &format!("/captures/{id}?lang=en")).await;
    assert!(
        page.contains("<b class=\"plate-text\">京A12340</b>"),
        "{page}"
    );
    assert!(
        page.contains("id=\"plate-form\"") && page.contains("corrected by op"),
        "{page}"
    );
    // The page's form corrects it too.
    let r = s
        .client
        .post(format!("{}/captures/{id}/plate", s.base))
        .header("cookie", &op)
        .form(&[("csrf", csrf.as_str()), ("plate", "粤BD12345")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        s.store
            .capture(&id)
            .await
            .unwrap()
            .unwrap()
            .plate
            .as_deref(),
        Some("粤BD12345")
    );
    let audit = s
        .store
        .audit_rows(&citywatch::store::audit::AuditFilter {
            action: Some("plate.correct".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(audit.len(), 2);
    assert!(audit.iter().all(|a| a.actor == "op" && a.subject == id));
    // Confirmed, the case page shows the plate: in full to operators, masked to viewers.
    let r = post_as(&s, &op, &csrf, &format!("/api/captures/{id}/confirm"), None).await;
    assert_eq!(r.status(), StatusCode::OK);
    let case: serde_json::Value = r.json().await.unwrap();
    let n = case["case_number"].as_str().unwrap();
    let page = get_text(&s, &op, &format!("/cases/{n}?lang=en")).await;
    assert!(page.contains("<dd id=\"plate\">粤BD12345</dd>"), "{page}");
    let page = get_text(&s, &view, &format!("/cases/{n}?lang=en")).await;
    assert!(page.contains("<dd id=\"plate\">粤B*****5</dd>"), "{page}");
}
