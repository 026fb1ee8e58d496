//! The `citywatch` binary: config errors, and credentials kept out of every output.

use std::process::Command;

use crate::common::*;

fn write_config(dir: &std::path::Path, text: &str) -> std::path::PathBuf {
    write_file(dir, "pipeline.toml", text.as_bytes())
}

#[test]
fn malformed_config_names_every_field_and_exits_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        r#"
[[cameras]]
id = "a"
url = "htp://admin:Secret99@10.0.0.1/live"
[[cameras]]
id = "b"
url = "rtsp://10.0.0.2/live"
analysis_fps = 0
colour = "blue"
"#,
    );
    for cmd in ["check", "run"] {
        let out = Command::new(bin()).arg(cmd).arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("2 problems in the config"), "{err}");
        assert!(
            err.contains(r#"cameras[0].url: unsupported scheme "htp" (expected "rtsp" or "file")"#),
            "{err}"
        );
        assert!(
            err.contains("cameras[1].colour: unknown field `colour`"),
            "{err}"
        );
        assert!(!err.contains("Secret99"), "{err}");
    }
    let ok = Command::new(bin())
        .args(["check", "pipelines/demo.toml"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(ok.status.success());
}

#[test]
fn check_refuses_what_run_would_refuse() {
    let dir = tempfile::tempdir().unwrap();
    let models = repo().join("models");
    let config = |model: &str, lat: f64| {
        format!(
            r#"
[detect]
model = "{model}"
models_dir = "{}"
[[cameras]]
id = "a"
url = "rtsp://127.0.0.1:8554/a"
[cameras.location]
lat = {lat}
lon = 116.4
"#,
            models.display()
        )
    };
    let check = |text: &str| {
        let path = write_config(dir.path(), text);
        let out = Command::new(bin())
            .arg("check")
            .arg(&path)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // A latitude out of range, and a model "name" that is a path.
    let (code, err) = check(&config("../../../etc/passwd", 139.9));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("2 problems in the config"), "{err}");
    assert!(
        err.contains("cameras[0].location.lat: must be a latitude from -90 to 90, got 139.9"),
        "{err}"
    );
    assert!(
        err.contains(r#"detect.model: must be a model's name"#) && err.contains("not a path"),
        "{err}"
    );
    // A model that does not exist.
    let (code, err) = check(&config("no_such_model", 39.9));
    assert_eq!(code, Some(2), "{err}");
    assert!(
        err.contains("model no_such_model: manifest: cannot read"),
        "{err}"
    );
    // A manifest whose file is not the one it names.
    let fake = tempfile::tempdir().unwrap();
    let manifest = std::fs::read_to_string(models.join("tiny_yolov8.toml")).unwrap();
    std::fs::write(fake.path().join("tiny_yolov8.toml"), manifest).unwrap();
    let file = manifest_file(&fake.path().join("tiny_yolov8.toml"));
    std::fs::write(fake.path().join(&file), b"not a model").unwrap();
    let text = config("tiny_yolov8", 39.9).replace(
        &format!("models_dir = \"{}\"", models.display()),
        &format!("models_dir = \"{}\"", fake.path().display()),
    );
    let (code, err) = check(&text);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("model tiny_yolov8: sha256: mismatch"), "{err}");
    // The real one.
    let path = write_config(dir.path(), &config("tiny_yolov8", 39.9));
    let out = Command::new(bin())
        .arg("check")
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("model tiny_yolov8"));
}

/// The `file = "..."` a model manifest names.
fn manifest_file(manifest: &std::path::Path) -> String {
    let text = std::fs::read_to_string(manifest).unwrap();
    let v: toml::Table = text.parse().unwrap();
    v["file"].as_str().unwrap().to_string()
}

#[test]
fn passwords_never_reach_logs_or_status() {
    let server = Server::start(&["--auth", "viewer:Xq7-TopSecret"]);
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &format!(
            r#"
[settings]
status_interval_s = 1
[ingest]
backoff_initial_s = 0.2
backoff_max_s = 1
[[cameras]]
id = "right"
url = "{}"
[[cameras]]
id = "wrong"
url = "{}"
"#,
            server.url_with_auth("viewer", "Xq7-TopSecret", "vtest"),
            server.url_with_auth("viewer", "Wr0ng-Guess", "vtest"),
        ),
    );
    let mut outputs = String::new();
    for format in [None, Some("--status-json")] {
        let out = Command::new(bin())
            .args(["run", "--for", "5"])
            .args(format)
            .arg(&path)
            .env("CITYWATCH_LOG", "debug")
            .output()
            .unwrap();
        assert!(out.status.success());
        outputs.push_str(&String::from_utf8_lossy(&out.stdout));
        outputs.push_str(&String::from_utf8_lossy(&out.stderr));
    }
    // It really ran: one camera streamed, the other was refused; URLs were printed redacted.
    assert!(outputs.contains("\"state\":\"stopped\""), "{outputs}");
    assert!(outputs.contains("unauthorized"), "{outputs}");
    assert!(outputs.contains("rtsp://***@127.0.0.1"), "{outputs}");
    let right_frames = outputs
        .lines()
        .filter(|l| l.starts_with("{\"id\":\"right\""))
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["frames"].as_u64())
        .max()
        .unwrap_or(0);
    assert!(right_frames >= 2, "{outputs}");
    for secret in ["Xq7-TopSecret", "Wr0ng-Guess"] {
        assert!(!outputs.contains(secret), "{secret} leaked:\n{outputs}");
    }
}

#[test]
fn probe_command_prints_json_or_a_reason() {
    let server = Server::start(&[]);
    let out = Command::new(bin())
        .args(["probe", &server.url("bikes")])
        .output()
        .unwrap();
    assert!(out.status.success());
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["codec"], "H264");
    assert_eq!(v["width"], 640);
    // The stream sets up over TCP interleaved, as `run` asks first (and over UDP).
    assert_eq!(v["transports"]["tcp"], "ok", "{v}");
    assert_eq!(v["transports"]["udp"], "ok", "{v}");
    assert_eq!(v["transport"], "tcp");

    // A server that refuses TCP: probe says so, and that `run` will stream over UDP.
    let udp_only = Server::start(&["--udp-only"]);
    let out = Command::new(bin())
        .args(["probe", &udp_only.url("bikes")])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["transports"]["tcp"], "461 Unsupported transport", "{v}");
    assert_eq!(v["transports"]["udp"], "ok", "{v}");
    assert_eq!(v["transport"], "udp");

    let out = Command::new(bin())
        .args(["probe", &server.url_with_auth("u", "Leaky1", "missing")])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("404 Not Found"), "{err}");
    assert!(!err.contains("Leaky1"), "{err}");
}

#[test]
fn sigterm_shuts_down_cleanly_within_the_deadline() {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        &format!(
            r#"
[settings]
status_interval_s = 0.5
shutdown_timeout_s = 20
[[cameras]]
id = "looping"
url = "file://{}"
realtime = true
loop = true
"#,
            repo().join("sample-videos/bikes.mp4").display()
        ),
    );
    let mut child = Command::new(bin())
        .args(["run", "--status-json"])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    // Wait for a status line that shows frames flowing.
    loop {
        let line = lines.next().expect("status line").unwrap();
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        if v["state"] == "streaming" && v["frames"].as_u64().unwrap() > 0 {
            break;
        }
    }
    let asked = std::time::Instant::now();
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let status = child.wait().unwrap();
    let took = asked.elapsed();
    assert!(status.success(), "{status:?}");
    // A clean stop, not one that waited out the shutdown deadline.
    assert!(took.as_secs_f64() < 20.0, "shutdown took {took:?}");
    let last: Vec<String> = lines.map_while(Result::ok).collect();
    assert!(
        last.iter().any(|l| l.contains("\"state\":\"stopped\"")),
        "{last:?}"
    );
}

/// The camera's open vehicle episodes in the case database: (first seen, last seen).
pub(crate) async fn open_vehicles(
    store: &citywatch::store::Store,
    camera: &str,
) -> Vec<(f64, f64)> {
    let Ok(Some(json)) = store.load_episodes(camera).await else {
        return Vec::new();
    };
    let state: serde_json::Value = serde_json::from_str(&json).unwrap();
    state["open"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| e["kind"] == "vehicle")
        .map(|e| {
            (
                e["first_seen"].as_f64().unwrap(),
                e["last_seen"].as_f64().unwrap(),
            )
        })
        .collect()
}

#[test]
fn kill_9_mid_dwell_and_a_restart_resume_the_dwell_with_no_setting() {
    // A camera over the footage's car park (a van parked the whole clip), a 30 s dwell, a
    // case database, and nothing said about keeping state: it is kept by default.
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cases.db").display());
    let config = format!(
        r#"
[detect]
models_dir = "{repo}/models"
[cases]
database = "{db}"
categories = "{repo}/pipelines/categories/default.toml"
[[cameras]]
id = "yard"
url = "file://{repo}/sample-videos/vtest.mp4"
realtime = true
loop = true
[[cameras.zones]]
id = "car_park"
kind = "no_parking"
polygon = [[0.80, 0.03], [1.0, 0.03], [1.0, 0.25], [0.80, 0.25]]
[[cameras.rules]]
rule = "abandoned_vehicle"
zones = ["car_park"]
dwell_s = 30
"#,
        repo = repo().display()
    );
    let path = write_config(dir.path(), &config);
    let start = || {
        Command::new(bin())
            .args(["run", "--no-web"])
            .arg(&path)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap()
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = rt.block_on(async {
        let mut child = start();
        // Wait until the state saved in the database holds a vehicle seen for 8 s or more.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        let store = loop {
            if let Ok(s) = citywatch::store::Store::connect(&db).await {
                break s;
            }
            assert!(std::time::Instant::now() < deadline, "no database");
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        };
        let before = loop {
            let open = open_vehicles(&store, "yard").await;
            if let Some(v) = open.iter().find(|(first, last)| last - first >= 8.0) {
                break *v;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "no episode saved: {open:?}"
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        };
        // SIGKILL mid-dwell: no handler, no flush.
        child.kill().unwrap();
        child.wait().unwrap();
        let mut child = start();
        let capture = loop {
            let caps = store
                .list_captures(&every_capture())
                .await
                .unwrap_or_default();
            if let Some(c) = caps
                .into_iter()
                .find(|c| (c.start_at - before.0).abs() < 1.0)
            {
                break c;
            }
            assert!(
                std::time::Instant::now() < deadline + std::time::Duration::from_secs(60),
                "no capture of the episode that began at {}",
                before.0
            );
            tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        };
        child.kill().unwrap();
        child.wait().unwrap();
        // The capture is the same episode: its dwell began before the kill, and it was met
        // 30 s after that, not 30 s after the restart.
        assert!(
            (capture.confirm_at - capture.start_at - 30.0).abs() < 3.0,
            "{capture:?}"
        );
        store
    });
    drop(store);
    assert!(
        !dir.path().join("state").exists(),
        "with a case database the state is kept there"
    );
}

#[test]
fn kill_9_after_a_capture_before_its_package_is_written_files_it_after_the_restart() {
    // The dwell is met and the package waits for post_s of stream for its clip: a SIGKILL
    // then must not lose the capture. The saved episodes still have the rule unmet, so the
    // restarted process meets it again and files the capture, once, under the same key.
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cases.db").display());
    let config = format!(
        r#"
[settings]
status_interval_s = 0.5
[detect]
models_dir = "{repo}/models"
[detect.plates]
enabled = false
[cases]
database = "{db}"
categories = "{repo}/pipelines/categories/default.toml"
spool = "{dir}/spool"
[evidence]
root = "{dir}/evidence"
pre_s = 2
post_s = 8
[[cameras]]
id = "yard"
url = "file://{repo}/sample-videos/vtest.mp4"
realtime = true
loop = true
[[cameras.zones]]
id = "car_park"
kind = "no_parking"
polygon = [[0.80, 0.03], [1.0, 0.03], [1.0, 0.25], [0.80, 0.25]]
[[cameras.rules]]
rule = "abandoned_vehicle"
zones = ["car_park"]
dwell_s = 10
"#,
        repo = repo().display(),
        dir = dir.path().display(),
    );
    let path = write_config(dir.path(), &config);
    let run = StatusRun::start(&path, &[]);
    let met = run.wait(120, "a capture", |v| {
        v["analysis"]["captures"].as_u64().unwrap_or(0) > 0
    });
    // SIGKILL while its package waits for the clip: nothing reached the queue yet.
    run.kill9();
    let killed_at = citywatch::core::to_unix(std::time::SystemTime::now());
    let queued = files_under(&dir.path().join("spool"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .count();
    assert_eq!(queued, 0, "killed too late to prove anything: {met}");
    let captured = met["analysis"]["captures"].as_u64().unwrap();

    let run = StatusRun::start(&path, &[]);
    // Met again at once (the episodes kept their dwell): stored well within a minute.
    run.wait(60, "the captures stored", |v| {
        v["filing"]["stored"].as_u64().unwrap_or(0) >= captured
    });
    run.kill9();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let caps = rt.block_on(async {
        let store = citywatch::store::Store::connect(&db).await.unwrap();
        store.list_captures(&every_capture()).await.unwrap()
    });
    assert_eq!(caps.len() as u64, captured, "{caps:?}");
    for c in &caps {
        // The episodes the first process met, not new ones the second began.
        assert!(c.start_at < killed_at - 10.0, "{c:?}");
        let pkg = c
            .evidence
            .as_ref()
            .and_then(|e| e["package"].as_str())
            .unwrap();
        citywatch::evidence::verify(&dir.path().join("evidence").join(pkg)).unwrap();
    }
}

#[test]
fn check_shows_each_cameras_effective_zones_drawn_or_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cases.db").display());
    let text = format!(
        r#"
[detect]
model = "tiny_yolov8"
models_dir = "{models}"
[cases]
database = "{db}"
categories = "{categories}"
spool = "{spool}"
[[cameras]]
id = "a"
url = "rtsp://127.0.0.1:8554/a"
[[cameras.zones]]
id = "kerb"
kind = "no_parking"
polygon = [[0.0, 0.0], [0.2, 0.0], [0.2, 1.0], [0.0, 1.0]]
[[cameras.zones]]
id = "square"
kind = "no_vending"
polygon = [[0.5, 0.5], [1.0, 0.5], [1.0, 1.0]]
[[cameras.rules]]
rule = "abandoned_vehicle"
zones = ["kerb"]
"#,
        models = repo().join("models").display(),
        categories = repo().join("pipelines/categories/default.toml").display(),
        spool = dir.path().join("spool").display(),
    );
    let path = write_config(dir.path(), &text);
    let check = || {
        let out = Command::new(bin())
            .arg("check")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    // No database yet: the config's zones, and check creates nothing.
    let out = check();
    assert!(out.contains("a zone kerb (NoParking): [[0.000, 0.000], [0.200, 0.000], [0.200, 1.000], [0.000, 1.000]] (config)"), "{out}");
    assert!(!dir.path().join("cases.db").exists());
    // An admin drew the kerb anew on the camera's picture.
    tokio::runtime::Runtime::new().unwrap().block_on(async {
        let store = citywatch::store::Store::connect(&db).await.unwrap();
        store
            .set_zone_override(
                "a",
                "kerb",
                &[[0.1, 0.5], [0.6, 0.5], [0.6, 0.9]],
                "boss",
                1_767_574_800.0,
            )
            .await
            .unwrap();
    });
    let out = check();
    assert!(
        out.contains("a zone kerb (NoParking): [[0.100, 0.500], [0.600, 0.500], [0.600, 0.900]] (drawn by boss at 2026-01-05"),
        "{out}"
    );
    assert!(
        out.contains("a zone square (NoVending): [[0.500, 0.500]"),
        "{out}"
    );
    assert!(
        out.lines().filter(|l| l.contains("(config)")).count() == 1,
        "{out}"
    );
}

#[test]
fn run_refuses_an_unknown_fault_point_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "[[cameras]]\nid = \"a\"\nurl = \"rtsp://127.0.0.1:9/live\"\n",
    );
    for (spec, says) in [
        (
            "decode=return",
            "unknown fault point `decode` (known: detect, evidence)",
        ),
        ("detect", "`detect` is not point=actions"),
    ] {
        let out = Command::new(bin())
            .args(["run", "--no-web", "--for", "1"])
            .arg(&path)
            .env("CITYWATCH_FAULTS", spec)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{spec}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{spec}: {err}");
    }
}

#[test]
fn run_refuses_a_malformed_time_lapse_clock_before_it_starts() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_config(
        dir.path(),
        "[[cameras]]\nid = \"a\"\nurl = \"rtsp://127.0.0.1:9/live\"\n",
    );
    for (spec, says) in [
        ("rate=60", "CITYWATCH_CLOCK: `start` is missing"),
        (
            "start=2026-12-07T00:00:00+08:00,rate=fast",
            "CITYWATCH_CLOCK: rate: \"fast\" is not a factor",
        ),
    ] {
        let out = Command::new(bin())
            .args(["run", "--no-web", "--for", "1"])
            .arg(&path)
            .env("CITYWATCH_CLOCK", spec)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{spec}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{spec}: {err}");
    }
}
