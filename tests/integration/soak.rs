//! The fault soak: three simulated days in about a minute and a half. The real `citywatch
//! run`, on a time-lapse clock (`CITYWATCH_CLOCK`: one real second is 72 simulated minutes,
//! every process on one timeline), watches live RTSP from the loopback server, files into a
//! PostgreSQL server of its own (Debian's, a fresh cluster on a loopback port), its evidence
//! on a small tmpfs, and is taken through a schedule of faults while vehicles stand in two
//! cameras' car park for the product's default 72-hour dwell:
//!
//! 1. the RTSP server is killed and comes back, then freezes until the watchdog restarts the
//!    silent streams (day 1);
//! 2. the process is killed with SIGKILL mid-dwell and started again, and its detector fails
//!    every inference for its first hours;
//! 3. PostgreSQL is shut down and the evidence disk fills up, both before the dwell is met,
//!    so the captures meet a full disk and a dead database (day 3);
//! 4. the disk frees, then PostgreSQL starts again;
//! 5. the process is killed with SIGKILL again and started again, and runs into day 4.
//!
//! The vehicles standing in the car park are the true events: each must be filed exactly
//! once per camera, 72 simulated hours after the episode the first process began (its dwell
//! survived both kills, the detector's outage and the time the process was down), with an
//! evidence package that verifies, and nothing left waiting in the queue.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::cli::open_vehicles;
use crate::common::*;
use crate::evidence::{Tmpfs, fill};
use crate::lifecycle::until;

/// A PostgreSQL server of the soak's own, so that it can be shut down and started again
/// without disturbing the other tests' server: Debian's binaries, a fresh cluster in the
/// test's folder, on a free loopback port, trusting loopback connections.
struct OwnPostgres {
    dir: std::path::PathBuf,
    bin: std::path::PathBuf,
    port: u16,
}

impl OwnPostgres {
    fn start(root: &std::path::Path) -> Self {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .expect("Debian's PostgreSQL (scripts/postgres.sh installs it)")
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max()
            .expect("initdb under /usr/lib/postgresql");
        let dir = root.join("pg");
        std::fs::create_dir_all(&dir).unwrap();
        if is_root() {
            // The server refuses to run as root: its folder belongs to `postgres`, and the
            // folders above it let that user through.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(root, std::fs::Permissions::from_mode(0o755)).unwrap();
            run_ok(Command::new("chown").arg("postgres:postgres").arg(&dir));
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let pg = OwnPostgres { dir, bin, port };
        run_ok(&mut pg.command(
            "initdb",
            &["-A", "trust", "-U", "postgres", "--no-sync", "-D"],
        ));
        pg.ctl("start");
        pg
    }

    fn command(&self, tool: &str, args: &[&str]) -> Command {
        let mut c = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(self.bin.join(tool));
            c
        } else {
            Command::new(self.bin.join(tool))
        };
        c.args(args).arg(&self.dir);
        c
    }

    /// `pg_ctl start` or `stop` (fast: open connections are ended), waiting until done.
    fn ctl(&self, action: &str) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -k {}",
            self.port,
            self.dir.display()
        );
        let log = self.dir.join("server.log");
        let log = log.to_str().unwrap();
        let args: &[&str] = match action {
            "start" => &["start", "-w", "-t", "60", "-l", log, "-o", &opts, "-D"],
            _ => &[action, "-w", "-t", "60", "-m", "fast", "-D"],
        };
        run_ok(&mut self.command("pg_ctl", args));
    }

    fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let _ = self
            .command("pg_ctl", &["stop", "-m", "immediate", "-D"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

const CAMERAS: [&str; 2] = ["yard0", "yard1"];
/// Inferences that fail in the second process, from its start (a few simulated hours).
const DETECTOR_ERRORS: u32 = 20;
/// Simulated seconds per real second: a day in 20 s.
const RATE: f64 = 4320.0;
/// Simulated time zero: midnight in the cameras' time zone.
const START: &str = "2026-12-07T00:00:00+08:00";
const HOUR: f64 = 3600.0;
/// The abandoned-vehicle rule's default dwell (the config leaves it out).
const DWELL_S: f64 = 72.0 * HOUR;

/// The simulated timeline every process of the soak shares: `START` now, `RATE` times as
/// fast as real time.
struct Lapse {
    spec: String,
    clock: citywatch::core::TimeLapse,
    start: f64,
}

impl Lapse {
    fn now() -> Self {
        let real = std::time::SystemTime::now();
        let spec = format!(
            "start={START},anchor={},rate={RATE}",
            citywatch::core::to_unix(real)
        );
        let clock = citywatch::core::TimeLapse::parse(&spec, real).unwrap();
        let start = citywatch::core::to_unix(clock.at(real));
        Lapse { spec, clock, start }
    }

    /// Simulated hours since `START` at the simulated time `t`.
    fn hours(&self, t: f64) -> f64 {
        (t - self.start) / HOUR
    }

    /// Notes a step of the schedule at its simulated time (shown with `--nocapture`).
    fn mark(&self, step: &str) {
        use citywatch::core::Clock;
        let now = citywatch::core::to_unix(self.clock.now());
        eprintln!("soak: {step} at {:.1} simulated hours", self.hours(now));
    }
}

/// `citywatch run` on the soak's timeline, with `CITYWATCH_FAULTS` (README) when `faults` is
/// not empty: faults injected at named points.
fn start_run(config: &std::path::Path, lapse: &Lapse, faults: &str) -> StatusRun {
    StatusRun::start(
        config,
        &[
            ("CITYWATCH_FAULTS", faults),
            ("CITYWATCH_CLOCK", &lapse.spec),
        ],
    )
}

/// Waits until every camera has streamed `frames` frames in this process.
fn streaming(run: &StatusRun, frames: u64) {
    let mut seen = std::collections::HashSet::new();
    run.wait(90, "every camera streaming", |v| {
        if let Some(id) = v["id"].as_str()
            && v["frames"].as_u64().unwrap_or(0) >= frames
        {
            seen.insert(id.to_string());
        }
        seen.len() == CAMERAS.len()
    });
}

/// Waits until every camera is streaming again after a reconnect.
fn reconnected(run: &StatusRun) {
    let mut seen = std::collections::HashSet::new();
    run.wait(90, "every camera streaming again", |v| {
        if let Some(id) = v["id"].as_str()
            && v["state"] == "streaming"
            && v["reconnects"].as_u64().unwrap_or(0) > 0
        {
            seen.insert(id.to_string());
        }
        seen.len() == CAMERAS.len()
    });
}

fn config(dir: &std::path::Path, db: &str, evidence: &std::path::Path, url: &str) -> String {
    let repo = repo();
    // On the time-lapse, what is timed on the clock is in simulated seconds: the watchdog
    // (4 real s) and the vehicles' grace (30 real s: a restart's few real seconds, longer on
    // a loaded machine, are hours simulated) are scaled to it. Network timeouts and frame
    // rates stay real; four analyses a second are one every 18 simulated minutes.
    let mut text = format!(
        r#"
[settings]
status_interval_s = 1
[ingest]
watchdog_s = {watchdog}
connect_timeout_s = {connect}
[episodes]
vehicle_grace_s = {grace}
[detect]
models_dir = "{repo}/models"
[detect.plates]
enabled = false
[cases]
database = "{db}"
categories = "{repo}/pipelines/categories/default.toml"
spool = "{dir}/spool"
[evidence]
root = "{evidence}"
pre_s = 2
post_s = 2
"#,
        repo = repo.display(),
        dir = dir.display(),
        evidence = evidence.display(),
        watchdog = 4.0 * RATE,
        connect = 20.0 * RATE,
        grace = 30.0 * RATE,
    );
    for id in CAMERAS {
        text.push_str(&format!(
            r#"
[[cameras]]
id = "{id}"
url = "{url}"
analysis_fps = 4
[[cameras.zones]]
id = "car_park"
kind = "no_parking"
polygon = [[0.80, 0.03], [1.0, 0.03], [1.0, 0.25], [0.80, 0.25]]
[[cameras.rules]]
rule = "abandoned_vehicle"
zones = ["car_park"]
"#
        ));
    }
    text
}

/// Each camera's saved vehicles (first and last seen) that have stood `span` seconds, once
/// every camera has one.
async fn standing(store: &citywatch::store::Store, span: f64) -> Option<Vec<Vec<(f64, f64)>>> {
    let mut all = Vec::new();
    for cam in CAMERAS {
        let v: Vec<_> = open_vehicles(store, cam)
            .await
            .into_iter()
            .filter(|(first, last)| last - first >= span)
            .collect();
        if v.is_empty() {
            return None;
        }
        all.push(v);
    }
    Some(all)
}

/// Every capture filed, once the store answers (a connection the restart ended is replaced).
async fn captures(store: &citywatch::store::Store) -> Vec<citywatch::store::query::CaptureRow> {
    let filter = every_capture();
    until(30, "the store answers", async || {
        store.list_captures(&filter).await.ok()
    })
    .await
}

#[test]
fn fault_soak_over_three_simulated_days_files_every_true_event_exactly_once_through_drops_kills_detector_errors_a_postgres_restart_and_a_full_disk()
 {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut server = Server::start(&[]);
    let pg = OwnPostgres::start(dir.path());
    let direct = pg.url();
    let disk = Tmpfs::mount(&dir.path().join("disk"), "16m");
    let evidence = disk.0.join("evidence");
    let path = write_file(
        dir.path(),
        "soak.toml",
        config(dir.path(), &direct, &evidence, &server.url("vtest")).as_bytes(),
    );
    // The first process creates the schema.
    let store = rt.block_on(until(60, "the database", async || {
        citywatch::store::Store::connect(&direct).await.ok()
    }));

    // Midnight of day 1: the first process sees the van and saves its episodes.
    let lapse = Lapse::now();
    let run = start_run(&path, &lapse, "");
    streaming(&run, 3);
    // 1. The RTSP server dies and comes back; the cameras reconnect.
    lapse.mark("the RTSP server killed");
    server.kill();
    run.wait(60, "a camera disconnected", |v| {
        v["state"] == "backing_off" || v["state"] == "connecting"
    });
    server.restart();
    // A frozen server: the streams fall silent without a word; the watchdog restarts them.
    reconnected(&run);
    lapse.mark("the RTSP server frozen");
    server.freeze();
    run.wait(60, "the watchdog restarting a silent camera", |v| {
        v["watchdog_restarts"].as_u64().unwrap_or(0) > 0
    });
    server.resume();
    // Every vehicle standing in each camera's view, as the first process saved it.
    let saved = rt.block_on(until(90, "episodes saved", async || {
        standing(&store, HOUR).await
    }));

    // 2. SIGKILL mid-dwell, and a new process whose detector fails its first inferences.
    lapse.mark("SIGKILL mid-dwell; the detector fails");
    run.kill9();
    let run = start_run(&path, &lapse, &format!("detect={DETECTOR_ERRORS}*return"));
    run.wait(60, "the detector down", |v| {
        v["analysis"]["detector_down"] == true
    });

    // 3. PostgreSQL shuts down and the evidence disk fills, before the dwell is met (the
    //    detector comes back meanwhile: the dwell goes on from the first process's episode).
    lapse.mark("PostgreSQL stopped, the disk filled");
    pg.ctl("stop");
    let filler = fill(&disk.0);
    let blocked = run.wait(120, "filing blocked by the full disk", |v| {
        v["filing"]["blocked"]["reason"] == "disk_full"
    });
    assert_eq!(blocked["filing"]["stored"], 0, "{blocked}");

    // 4. Space returns: the packages are written and wait in the queue for the database.
    lapse.mark("filing blocked; the disk freed");
    std::fs::remove_file(&filler).unwrap();
    let queued = run.wait(120, "captures queued while the database is down", |v| {
        let f = &v["filing"];
        f["queued"].as_u64().unwrap_or(0) >= CAMERAS.len() as u64
            && f["db_errors"].as_u64().unwrap_or(0) > 0
            && f["evidence_pending"] == 0
    });
    assert_eq!(queued["filing"]["stored"], 0, "{queued}");
    lapse.mark("captures queued; PostgreSQL started");
    pg.ctl("start");
    run.wait(120, "the queue stored", |v| {
        let f = &v["filing"];
        f["stored"].as_u64().unwrap_or(0) >= CAMERAS.len() as u64 && f["queued"] == 0
    });

    // The episodes' state reaches the database too: while it was down, their saves waited
    // in the process and in the local spill files (the database's last state is from before
    // the outage, a day and a half of dwell ago). Step 5 resumes from the database: it waits
    // for the state to be there. (A kill before that is the spill's case, tested in
    // workers::episodes_saved_while_the_database_is_down_outlive_a_kill_on_local_disk.)
    rt.block_on(until(
        60,
        "the episodes saved since the database came back",
        async || standing(&store, DWELL_S).await,
    ));

    // 5. SIGKILL again; the next process resumes the same episodes and files nothing new.
    lapse.mark("the queue stored, the episodes saved; SIGKILL again");
    run.kill9();
    let run = start_run(&path, &lapse, "");
    streaming(&run, 10);
    run.wait(60, "day 4", |v| {
        v["last_frame_at"]
            .as_f64()
            .is_some_and(|t| lapse.hours(t) >= 96.0)
    });
    // Whatever it found is through filing: nothing building, queued or held.
    run.wait(60, "filing idle", |v| {
        let f = &v["filing"];
        f.is_object() && f["evidence_pending"] == 0 && f["queued"] == 0 && f["held"] == 0
    });
    // The vehicles standing now, as this process saves them. Its state is saved once its
    // captures are settled (a capture the last kill caught unsettled is met again, under
    // the same key), so this waits for the save rather than reading whatever came last.
    let mut polls = 0u32;
    let stood = rt.block_on(until(60, "the stood dwell saved", async || {
        let stood = standing(&store, DWELL_S).await;
        polls += 1;
        if stood.is_none() && polls.is_multiple_of(25) {
            for cam in CAMERAS {
                let open: Vec<String> = open_vehicles(&store, cam)
                    .await
                    .iter()
                    .map(|(f, l)| format!("{:.1}–{:.1} h", lapse.hours(*f), lapse.hours(*l)))
                    .collect();
                eprintln!("soak: {cam}'s saved vehicles, not yet stood: {open:?}");
            }
        }
        stood
    }));
    lapse.mark("day 4, filing idle; stopped");
    drop(run);

    let caps = rt.block_on(captures(&store));
    for ((cam, saved), stood) in CAMERAS.iter().zip(&saved).zip(&stood) {
        let mine: Vec<_> = caps.iter().filter(|c| c.camera == *cam).collect();
        assert!(!mine.is_empty(), "{cam}: nothing filed");
        // Every true event filed: each vehicle that has now stood the dwell has its capture.
        for (first, _) in stood {
            assert!(
                mine.iter().any(|c| (c.start_at - first).abs() < 1.0),
                "{cam}: a vehicle standing since {:.1} h was not filed: {mine:?}",
                lapse.hours(*first)
            );
        }
        for (i, c) in mine.iter().enumerate() {
            // An episode the first process began: its dwell survived both kills.
            assert!(
                saved
                    .iter()
                    .any(|(first, _)| (c.start_at - first).abs() < 1.0),
                "{cam}: {c:?} began after the first process ({saved:?})"
            );
            // Met on the default dwell, on the simulated clock: begun on day 1, filed 72
            // hours on (within a few real seconds; the time the process was down counted).
            let dwell = c.confirm_at - c.start_at;
            assert!(
                lapse.hours(c.start_at) < 24.0 && (DWELL_S..DWELL_S + 6.0 * HOUR).contains(&dwell),
                "{cam}: began {:.1} h into the soak, met after {:.1} h",
                lapse.hours(c.start_at),
                dwell / HOUR
            );
            // Filed once: no other capture of this camera over the same place.
            for d in &mine[i + 1..] {
                assert!(
                    iou(&c.bbox, &d.bbox) < 0.3,
                    "{cam}: filed twice: {c:?} and {d:?}"
                );
            }
            let pkg = c
                .evidence
                .as_ref()
                .and_then(|e| e["package"].as_str())
                .expect("an evidence package");
            citywatch::evidence::verify(&evidence.join(pkg)).unwrap();
        }
    }
    // Both cameras watch the same footage: the same events.
    let per_camera: Vec<usize> = CAMERAS
        .iter()
        .map(|cam| caps.iter().filter(|c| c.camera == *cam).count())
        .collect();
    assert_eq!(per_camera[0], per_camera[1], "{caps:?}");
    eprintln!("soak: {per_camera:?} captures filed per camera");
    let left: Vec<_> = files_under(&dir.path().join("spool"))
        .into_iter()
        .filter(|p| {
            p.extension()
                .is_some_and(|x| x == "json" || x == "bad" || x == "tmp")
        })
        .collect();
    assert!(left.is_empty(), "left in the queue: {left:?}");
}

fn iou(a: &Value, b: &Value) -> f64 {
    let v = |x: &Value| -> [f64; 4] {
        let n: Vec<f64> = x
            .as_array()
            .unwrap()
            .iter()
            .map(|n| n.as_f64().unwrap())
            .collect();
        [n[0], n[1], n[2], n[3]]
    };
    let (a, b) = (v(a), v(b));
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: [f64; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    inter / (area(a) + area(b) - inter).max(1e-9)
}
