//! The case life cycle to verified closure, end to end on real parts: the real binary
//! replays real footage through the real detector into a SQLite case database; an operator
//! confirms through the web API of a `citywatch run` process; the run process's forwarder
//! sends the cases to `citywatch platform-sim` on loopback, which dispatches them and
//! reports them handled by signed callback; the next footage of each camera is replayed as
//! the closure check's look: where the van was towed away the case ends verified closed with
//! an "after" photo in a package that still verifies, where it stays the case is reopened as
//! not rectified with new evidence; and each status reaches the platform exactly once.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

const WEBHOOK_SECRET: &str = "webhook-secret-0123456789";
const PLATFORM_SECRET: &str = "platform-secret-0123456789";

/// A child process killed when dropped.
pub(crate) struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts a process and waits for the stdout line starting with `prefix`; returns the rest.
pub(crate) fn start_and_wait(cmd: &mut Command, prefix: &str) -> (Proc, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let wanted = prefix.to_string();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(rest) = line.strip_prefix(&wanted) {
                let _ = tx.send(rest.to_string());
            }
        }
    });
    let got = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("no {prefix:?} line"));
    (Proc(child), got)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Two cameras on the works-car road of the scenario view: `towed` and `stays`.
fn config(dir: &Path, clips: [&str; 2], start: &str, extra: &str) -> std::path::PathBuf {
    let repo = repo();
    let mut text = format!(
        r#"
[detect]
model = "ssd_mobilenet_v2_coco"
models_dir = "{repo}/models"

[replay]
start = "{start}"

[cases]
database = "sqlite://{dir}/cases.db"
categories = "{repo}/pipelines/categories/default.toml"
spool = "{dir}/spool"

[cases.closure]
window_s = 50
clear_s = 10

[evidence]
root = "{dir}/evidence"
pre_s = 2
post_s = 2
{extra}
"#,
        repo = repo.display(),
        dir = dir.display(),
    );
    for (id, clip) in ["towed", "stays"].iter().zip(clips) {
        text.push_str(&format!(
            r#"
[[cameras]]
id = "{id}"
url = "rtsp://127.0.0.1:1/none"
footage = "file://{repo}/tests/scenarios/{clip}.mp4"
analysis_fps = 2.0
timezone = "+08:00"

[[cameras.zones]]
id = "road"
kind = "no_parking"
polygon = [[0.50, 0.42], [1.0, 0.42], [1.0, 0.86], [0.50, 0.86]]

[[cameras.rules]]
rule = "abandoned_vehicle"
zones = ["road"]
dwell_s = 20
"#,
            repo = repo.display(),
        ));
    }
    let p = dir.join(format!("{}-{}.toml", clips[0], clips[1]));
    std::fs::write(&p, text).unwrap();
    p
}

fn replay(config: &Path, db: &str) -> Vec<Value> {
    let out = run_ok(
        Command::new(bin())
            .arg("replay")
            .arg(config)
            .args(["--db", db])
            .current_dir(repo())
            .env("CITYWATCH_LOG", "warn"),
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn rfc3339(unix: f64) -> String {
    time::OffsetDateTime::from_unix_timestamp(unix as i64)
        .unwrap()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap()
}

/// Polls `f` until it gives a value, for up to `secs` (the other processes work on their
/// own time); panics with `what` otherwise.
pub(crate) async fn until<T>(secs: u64, what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[test]
fn a_towed_van_closes_verified_with_an_after_photo_and_a_van_that_stays_reopens() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cases.db").display());
    let sim_port = free_port();

    // The web process: API, callback, forwarder. Its cameras are the same two, switched off
    // (their footage is replayed here instead).
    let web_cfg = {
        let p = config(
            dir.path(),
            ["vehicle", "vehicle"],
            "2026-01-05T09:00:00+08:00",
            &format!(
                r#"
[cases.webhook]
url = "http://127.0.0.1:{sim_port}/intake"
secret = "{WEBHOOK_SECRET}"
backoff_initial_s = 0.2
backoff_max_s = 1

[cases.platform]
secret = "{PLATFORM_SECRET}"

[web]
listen = "127.0.0.1:0"
"#
            ),
        );
        let text = std::fs::read_to_string(&p)
            .unwrap()
            .replace("analysis_fps = 2.0", "analysis_fps = 2.0\nenabled = false");
        let p2 = dir.path().join("web.toml");
        std::fs::write(&p2, text).unwrap();
        p2
    };
    let (_web, url) = start_and_wait(
        Command::new(bin())
            .arg("run")
            .arg(&web_cfg)
            .env("CITYWATCH_LOG", "warn"),
        "web: listening on ",
    );
    let (_sim, _) = start_and_wait(
        Command::new(bin()).args([
            "platform-sim",
            "--listen",
            &format!("127.0.0.1:{sim_port}"),
            "--webhook-secret",
            WEBHOOK_SECRET,
            "--platform-secret",
            PLATFORM_SECRET,
            "--callback",
            &format!("{url}/platform/callback"),
            "--dispatch-after-s",
            "0.2",
            "--handle-after-s",
            "0.2",
        ]),
        "listening on ",
    );

    // The van parks on both roads; each camera captures it for review.
    let first = replay(
        &config(
            dir.path(),
            ["vehicle", "vehicle"],
            "2026-01-05T09:00:00+08:00",
            "",
        ),
        &db,
    );
    let caps: Vec<&Value> = first.iter().filter(|l| l["type"] == "capture").collect();
    assert_eq!(caps.len(), 2, "{first:?}");

    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(citywatch::store::Store::connect(&db)).unwrap();
    let token = rt.block_on(async {
        store
            .upsert_user(
                "op",
                citywatch::store::users::Role::Operator,
                "op-password-1",
                0.0,
            )
            .await
            .unwrap();
        store.create_token("op", "test", 0.0).await.unwrap()
    });
    let http = reqwest::Client::new();
    let pending = rt
        .block_on(store.list_captures(&Default::default()))
        .unwrap();
    assert_eq!(pending.len(), 2);
    let mut cases = std::collections::BTreeMap::new();
    for c in &pending {
        let v: Value = rt.block_on(async {
            http.post(format!("{url}/api/captures/{}/confirm", c.id))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap()
        });
        cases.insert(
            c.camera.clone(),
            v["case_number"].as_str().unwrap().to_string(),
        );
    }
    let (towed, stays) = (cases["towed"].clone(), cases["stays"].clone());
    let original = |case: &str| -> String {
        let v = rt.block_on(store.case_evidence(case)).unwrap().unwrap();
        v["manifest_sha256"].as_str().unwrap().to_string()
    };
    let before = (original(&towed), original(&stays));

    // The platform gets both cases, dispatches them and reports them handled.
    for case in [&towed, &stays] {
        rt.block_on(until(60, "the handled report", async || {
            let v: Value = http
                .get(format!("{url}/api/cases/{case}"))
                .bearer_auth(&token)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (v["case"]["status"] == "handled").then_some(())
        }));
    }

    // The cameras' next look: the first van is towed away at 30 s, the second stays.
    let now = citywatch::core::to_unix(std::time::SystemTime::now());
    let second = replay(
        &config(
            dir.path(),
            ["closure_removed", "closure_stays"],
            &rfc3339(now + 60.0),
            "",
        ),
        &db,
    );
    let checks: Vec<&Value> = second.iter().filter(|l| l["type"] == "check").collect();
    assert_eq!(checks.len(), 2, "{second:?}");
    let outcome = |cam: &str| {
        checks
            .iter()
            .find(|l| l["camera"] == cam)
            .unwrap_or_else(|| panic!("no check on {cam}: {second:?}"))
    };
    assert_eq!(outcome("towed")["outcome"], "clear", "{second:?}");
    assert_eq!(outcome("towed")["case_number"], towed.as_str());
    // Seen clear only after the van has gone (30 s) and for clear_s.
    assert!(
        outcome("towed")["t_s"].as_f64().unwrap() >= 40.0,
        "{second:?}"
    );
    assert_eq!(outcome("stays")["outcome"], "still_there", "{second:?}");
    // Not before the whole window has looked.
    assert!(
        outcome("stays")["t_s"].as_f64().unwrap() >= 50.0,
        "{second:?}"
    );
    eprintln!("closure looks: {checks:?}");

    let status = |case: &str| rt.block_on(store.case(case)).unwrap().unwrap().status;
    assert_eq!(status(&towed), "verified_closed");
    assert_eq!(status(&stays), "not_rectified");
    let history = |case: &str| -> Vec<String> {
        rt.block_on(store.case_events(case))
            .unwrap()
            .into_iter()
            .map(|e| e.status)
            .collect()
    };
    assert_eq!(
        history(&towed),
        ["filed", "dispatched", "handled", "verified_closed"]
    );
    assert_eq!(
        history(&stays),
        ["filed", "dispatched", "handled", "not_rectified"]
    );

    // The after photo and clip are in the package, which still verifies, and the revision
    // keeps the hash of the manifest it replaced.
    for (case, was, outcome) in [
        (&towed, &before.0, "clear"),
        (&stays, &before.1, "still_there"),
    ] {
        let ev = rt.block_on(store.case_evidence(case)).unwrap().unwrap();
        assert_ne!(ev["manifest_sha256"].as_str().unwrap(), was.as_str());
        let pkg = dir
            .path()
            .join("evidence")
            .join(ev["package"].as_str().unwrap());
        let m = citywatch::evidence::verify(&pkg).unwrap();
        assert_eq!(m.revisions.len(), 1, "{m:?}");
        let r = &m.revisions[0];
        assert_eq!(r.outcome, outcome);
        assert_eq!(&r.previous_manifest_sha256, was);
        assert!(r.files.contains(&"after-1.jpg".to_string()), "{r:?}");
        assert!(r.files.contains(&"after-1.mp4".to_string()), "{r:?}");
        assert!(m.files.iter().any(|f| f.name == "confirm.jpg"));
        // The case page sets the capture's looks beside the closure check's, with the
        // package's verification state.
        let page = rt.block_on(async {
            http.get(format!("{url}/cases/{case}?lang=en"))
                .bearer_auth(&token)
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        });
        let before = &page[page.find("id=\"before\"").expect("a before column")..];
        let after = &before[before.find("id=\"after\"").expect("an after column")..];
        assert!(
            before[..before.len() - after.len()].contains("/confirm.jpg"),
            "{page}"
        );
        assert!(
            after.contains("/after-1.jpg") && after.contains("/after-1.mp4"),
            "{page}"
        );
        assert!(page.contains("id=\"package-state\" class=\"ok\""), "{page}");
    }
    // In the browser: the towed van's case page shows its before and after, every photo
    // loaded, and the after clip.
    rt.block_on(async {
        let mut b = crate::browser::Browser::start().await;
        let page = format!("{url}/cases/{towed}?lang=en");
        crate::browser::log_in(&mut b, &page, "op", "op-password-1").await;
        let loaded = b
            .eval(
                "Promise.all([...document.querySelectorAll('#before img, #after img')]\
                   .map(i=>i.decode().then(()=>[i.className,i.naturalWidth])))",
            )
            .await;
        let loaded: Vec<(String, u64)> = serde_json::from_value(loaded).unwrap();
        assert!(
            loaded
                .iter()
                .filter(|(c, w)| c == "before" && *w > 0)
                .count()
                >= 2,
            "{loaded:?}"
        );
        assert!(
            loaded.iter().any(|(c, w)| c == "after" && *w > 0),
            "{loaded:?}"
        );
        assert_eq!(
            b.eval("document.querySelectorAll('#after video').length")
                .await,
            1
        );
        b.screenshot("18-case-before-after").await;
    });

    // Each status reaches the platform exactly once.
    let received = rt.block_on(until(60, "the verdicts at the platform", async || {
        let v: Value = http
            .get(format!("http://127.0.0.1:{sim_port}/received"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let statuses = v["received"]
            .as_array()?
            .iter()
            .filter(|m| m["event"] == "case_status")
            .count();
        (statuses >= 2).then_some(v)
    }));
    let mut seen: Vec<(String, String)> = received["received"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["case_number"].as_str().unwrap().to_string(),
                m["status"]
                    .as_str()
                    .unwrap_or(m["event"].as_str().unwrap())
                    .to_string(),
            )
        })
        .collect();
    seen.sort();
    let mut want = vec![
        (towed.clone(), "case_filed".to_string()),
        (towed.clone(), "verified_closed".to_string()),
        (stays.clone(), "case_filed".to_string()),
        (stays.clone(), "not_rectified".to_string()),
    ];
    want.sort();
    assert_eq!(seen, want, "{received}");

    // The audit log's chain holds; deleting a row breaks it, and the command says where.
    let out = run_ok(Command::new(bin()).args(["audit", "verify"]).arg(&web_cfg));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok"),
        "{out:?}"
    );
    rt.block_on(async {
        sqlx::query("DELETE FROM audit_log WHERE seq = 2")
            .execute(store.pool())
            .await
            .unwrap()
    });
    let out = Command::new(bin())
        .args(["audit", "verify"])
        .arg(&web_cfg)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        said.contains("BROKEN at row 3") && said.contains("missing"),
        "{said}"
    );
}

#[tokio::test]
async fn the_polling_adapter_reads_progress_from_a_platform_that_cannot_call_back() {
    let dir = tempfile::tempdir().unwrap();
    let sim = citywatch::platform_sim::start(citywatch::platform_sim::SimOptions {
        listen: "127.0.0.1:0".into(),
        webhook_secret: WEBHOOK_SECRET.into(),
        platform_secret: PLATFORM_SECRET.into(),
        callback: None,
        dispatch_after: Duration::ZERO,
        handle_after: Duration::ZERO,
    })
    .await
    .unwrap();
    let cfg = citywatch::config::PipelineConfig::parse(
        &format!(
            r#"
[cases]
database = "sqlite://{d}/cases.db"
categories = "pipelines/categories/default.toml"
spool = "{d}/spool"
filing = {{ abandoned_vehicle = "auto" }}
[cases.webhook]
url = "http://{sim}/intake"
secret = "{WEBHOOK_SECRET}"
[cases.platform]
secret = "{PLATFORM_SECRET}"
poll_url = "http://{sim}/cases/{{case_number}}"
[[cameras]]
id = "vtest"
url = "rtsp://127.0.0.1:9/x"
zones = [{{ id = "car_park", kind = "no_parking", polygon = [[0, 0], [1, 0], [1, 1], [0, 1]] }}]
rules = [{{ rule = "abandoned_vehicle", zones = ["car_park"], dwell_s = 60 }}]
"#,
            d = dir.path().display(),
        ),
        &repo(),
    )
    .unwrap();
    let cases = cfg.cases.clone().unwrap();
    let store = citywatch::store::Store::connect(&cases.database)
        .await
        .unwrap();
    let t = 1_767_574_800.0;
    let (_, case) = store
        .record_capture(
            &crate::store::capture(citywatch::config::RuleKind::AbandonedVehicle, 1, t),
            None,
            citywatch::store::FilingMode::Auto,
            &cases.policy(),
            &Default::default(),
            t,
        )
        .await
        .unwrap();
    let case = case.unwrap();
    // The case reaches the platform, which works on it but tells no one.
    let f = citywatch::notify::Forwarder::new(cases.webhook.clone().unwrap());
    assert_eq!(f.deliver_due(&store, t).await.unwrap().delivered, 1);
    let http = reqwest::Client::new();
    until(30, "the platform to handle the case", async || {
        let v: Value = http
            .get(format!("http://{sim}/cases/{case}"))
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        (v["status"] == "handled").then_some(())
    })
    .await;
    // One polling round brings the case to handled, with its closure check.
    let p = cases.platform.as_ref().unwrap();
    citywatch::notify::upkeep::poll(&store, &http, p, &cases, t + 10.0).await;
    let c = store.case(&case).await.unwrap().unwrap();
    assert_eq!(c.status, "handled");
    let history = store.case_events(&case).await.unwrap();
    assert_eq!(history.last().unwrap().actor, "platform-poll");
    assert_eq!(store.waiting_checks().await.unwrap().len(), 1);
    // A handled case is no longer polled; polling again changes nothing.
    assert!(store.cases_to_poll().await.unwrap().is_empty());
    citywatch::notify::upkeep::poll(&store, &http, p, &cases, t + 20.0).await;
    assert_eq!(store.case_events(&case).await.unwrap().len(), history.len());
}
