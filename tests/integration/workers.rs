//! Several `citywatch run --worker` processes sharing a real PostgreSQL: leases rebalance
//! when workers join, a SIGKILLed worker's cameras move to the others with their episodes,
//! and a PostgreSQL restart loses no capture.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use sqlx::Row;

use crate::common::*;

/// Each worker's status lines, read as they come.
struct Worker {
    id: String,
    child: Child,
    lines: Arc<Mutex<Vec<(Instant, Value)>>>,
}

impl Worker {
    fn start(config: &Path, id: &str) -> Self {
        let mut child = Command::new(bin())
            .args(["run", "--status-json", "--worker", "--worker-id", id])
            .arg(config)
            .env("CITYWATCH_LOG", "info,citywatch::workers=debug")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let lines: Arc<Mutex<Vec<(Instant, Value)>>> = Arc::default();
        let out = child.stdout.take().unwrap();
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                if let Ok(v) = serde_json::from_str::<Value>(&line) {
                    l.lock().unwrap().push((Instant::now(), v));
                }
            }
        });
        let err = child.stderr.take().unwrap();
        let tag = id.to_string();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("[{tag}] {line}");
            }
        });
        Self {
            id: id.into(),
            child,
            lines,
        }
    }

    /// The first time, after `since`, this worker reported `camera` streaming.
    fn streaming_since(&self, camera: &str, since: Instant) -> Option<Instant> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .find(|(t, v)| {
                *t >= since
                    && v["id"] == camera
                    && v["state"] == "streaming"
                    && v["frames"].as_u64().unwrap_or(0) > 0
            })
            .map(|(t, _)| *t)
    }

    fn last_worker_line(&self) -> Option<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .rev()
            .find_map(|(_, v)| v.get("worker").cloned())
    }

    fn filing_lines(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, v)| v.get("filing").cloned())
            .collect()
    }

    /// SIGTERM, and the exit status.
    fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        self.child.wait().unwrap()
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A pipeline for workers: cam0 watches vtest's car park (the van and the teal car stand
/// there all through the footage) for abandoned vehicles, filed automatically; the other
/// cameras watch footage without a rule.
fn worker_config(dir: &Path, db: &str, server: &Server, cameras: usize, dwell_s: u32) -> PathBuf {
    let mut cfg = format!(
        r#"[settings]
status_interval_s = 1
shutdown_timeout_s = 5

[detect]
models_dir = "{models}"

[episodes]
in_database = true

[cases]
database = "{db}"
categories = "{categories}"
spool = "{spool}"
filing = {{ abandoned_vehicle = "auto" }}

[workers]
lease_ttl_s = 6
heartbeat_s = 2
"#,
        models = repo().join("models").display(),
        categories = repo().join("pipelines/categories/default.toml").display(),
        spool = dir.join("spool").display(),
    );
    for i in 0..cameras {
        let mount = if i % 2 == 0 { "vtest" } else { "bikes" };
        cfg.push_str(&format!(
            "\n[[cameras]]\nid = \"cam{i}\"\nurl = \"{}\"\nanalysis_fps = 1.0\n",
            server.url(mount)
        ));
        if i == 0 {
            cfg.push_str(&format!(
                "[[cameras.zones]]\nid = \"car_park\"\nkind = \"no_parking\"\n\
                 polygon = [[0.78, 0.04], [1.0, 0.04], [1.0, 0.26], [0.78, 0.26]]\n\
                 [[cameras.rules]]\nrule = \"abandoned_vehicle\"\nzones = [\"car_park\"]\ndwell_s = {dwell_s}\n",
            ));
        }
    }
    let path = dir.join("workers.toml");
    std::fs::write(&path, cfg).unwrap();
    path
}

async fn leases(db: &str) -> Vec<(String, Option<String>)> {
    let s = citywatch::store::Store::connect(db).await.unwrap();
    s.leases()
        .await
        .unwrap()
        .into_iter()
        .map(|l| (l.name, l.worker))
        .collect()
}

/// Camera → worker, cameras only.
async fn holders(db: &str) -> std::collections::BTreeMap<String, Option<String>> {
    leases(db)
        .await
        .into_iter()
        .filter(|(n, _)| !n.starts_with('@'))
        .collect()
}

async fn wait_for<T>(what: &str, timeout: Duration, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let until = Instant::now() + timeout;
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The car park zone of `worker_config`'s cam0: (x0, y0, x1, y1).
const CAR_PARK: [f64; 4] = [0.78, 0.04, 1.0, 0.26];

/// The open vehicle episodes of `camera` saved in the database whose place is in the car
/// park zone, earliest first: (id, first_seen); `None` until there is one. A vehicle
/// elsewhere in the view (one the closer look finds beside the zone) has an episode too,
/// but no rule will ever capture it.
async fn saved_episodes(store: &citywatch::store::Store, camera: &str) -> Option<Vec<(u64, f64)>> {
    let json = store.load_episodes(camera).await.ok()??;
    let v: Value = serde_json::from_str(&json).ok()?;
    let in_zone = |e: &Value| {
        let a: Vec<f64> = e["anchor"]
            .as_array()
            .map_or(vec![], |a| a.iter().filter_map(Value::as_f64).collect());
        a.len() == 4 && {
            let (cx, cy) = ((a[0] + a[2]) / 2.0, (a[1] + a[3]) / 2.0);
            (CAR_PARK[0]..=CAR_PARK[2]).contains(&cx) && (CAR_PARK[1]..=CAR_PARK[3]).contains(&cy)
        }
    };
    let vehicles: Vec<&Value> = v["open"]
        .as_array()?
        .iter()
        .filter(|e| e["kind"] == "vehicle")
        .collect();
    let seen: Vec<String> = vehicles
        .iter()
        .map(|e| {
            format!(
                "#{} at {} from {}, best score {}",
                e["id"], e["anchor"], e["first_seen"], e["best_score"]
            )
        })
        .collect();
    eprintln!("{camera}'s saved vehicle episodes: {seen:?}");
    let mut ours: Vec<(u64, f64)> = vehicles
        .into_iter()
        .filter(|e| in_zone(e))
        .filter_map(|e| Some((e["id"].as_u64()?, e["first_seen"].as_f64()?)))
        .collect();
    ours.sort_by(|a, b| a.1.total_cmp(&b.1));
    (!ours.is_empty()).then_some(ours)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_workers_cameras_move_with_their_episodes_and_no_case_is_duplicated() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let db = crate::store::postgres_url().await;
    // The dwell is far longer than anything the test waits for before the kill (the
    // rebalance, the first saved episode: 100 s of timeouts at most), so the episode cannot
    // be confirmed before the kill however slow the machine is; and a dwell that restarted
    // at the takeover would end a whole dwell after the kill, which the test tells apart
    // from one that went on.
    const DWELL: f64 = 120.0;
    let cfg = worker_config(dir.path(), &db, &server, 3, DWELL as u32);
    let store = citywatch::store::Store::connect(&db).await.unwrap();

    // One worker alone takes every camera.
    let w1 = Worker::start(&cfg, "w1");
    wait_for(
        "w1 to hold all three cameras",
        Duration::from_secs(30),
        async || {
            let h = holders(&db).await;
            (h.len() == 3 && h.values().all(|w| w.as_deref() == Some("w1"))).then_some(())
        },
    )
    .await;

    // Two more join: the leases rebalance to one camera each.
    let w2 = Worker::start(&cfg, "w2");
    let w3 = Worker::start(&cfg, "w3");
    let split = wait_for(
        "the leases to rebalance",
        Duration::from_secs(40),
        async || {
            let h = holders(&db).await;
            let mut owners: Vec<String> = h.values().flatten().cloned().collect();
            owners.sort();
            (owners == ["w1", "w2", "w3"]).then_some(h)
        },
    )
    .await;
    let victim_id = split["cam0"].clone().unwrap();

    // The vehicle episode is open, saved by the worker that holds cam0.
    wait_for(
        "a vehicle episode on cam0",
        Duration::from_secs(60),
        async || saved_episodes(&store, "cam0").await,
    )
    .await;
    // Let it age a little, then SIGKILL cam0's worker: no handler runs, nothing is flushed.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut workers = vec![w1, w2, w3];
    let victim = workers.iter().position(|w| w.id == victim_id).unwrap();
    let mut victim = workers.remove(victim);
    let killed_at = Instant::now();
    let killed_unix = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    victim.child.kill().unwrap();
    victim.child.wait().unwrap();
    // What the dead worker left: the car park's episodes (two cars stand there, first seen
    // in the same frame), each to be confirmed by the survivor as it was saved.
    let episodes = saved_episodes(&store, "cam0").await.unwrap();
    let first_seen = episodes[0].1;
    // No capture yet: the kill falls inside the dwell.
    let filed: i64 = sqlx::query("SELECT COUNT(*) FROM captures WHERE camera = 'cam0'")
        .fetch_one(store.pool())
        .await
        .unwrap()
        .get(0);
    assert_eq!(filed, 0, "the episode was confirmed before the kill");
    assert!(
        killed_unix - first_seen < DWELL,
        "the kill came after the dwell"
    );

    // Every camera streams on a surviving worker: the lease lapses after the TTL and is
    // taken a heartbeat later; the rest is connecting, which a loaded machine may slow.
    for cam in ["cam0", "cam1", "cam2"] {
        let at = wait_for(
            &format!("{cam} streaming on a survivor"),
            Duration::from_secs(40),
            async || {
                workers
                    .iter()
                    .find_map(|w| w.streaming_since(cam, killed_at))
            },
        )
        .await;
        let took = at - killed_at;
        eprintln!("{cam} streams again {took:?} after the kill");
        assert!(took <= Duration::from_secs(6 + 30), "{cam} took {took:?}");
    }
    let h = holders(&db).await;
    assert!(
        h.values().all(|w| w.as_deref() != Some(victim_id.as_str())),
        "{h:?}"
    );

    // The episode goes on where it was: the capture comes at first_seen + dwell, counted
    // from before the kill, under an episode the dead worker saved. (Each car is confirmed
    // at the first frame after its dwell in which the detector finds it; which car that
    // comes first for depends on the frames sampled, so either will do.)
    let (start, confirm, ep) = wait_for(
        "the abandoned-vehicle capture",
        Duration::from_secs(DWELL as u64 + 60),
        async || {
            let rows = sqlx::query(
                "SELECT start_at, confirm_at, episode FROM captures WHERE camera = 'cam0' \
                 AND rule = 'abandoned_vehicle'",
            )
            .fetch_all(store.pool())
            .await
            .unwrap();
            let rows: Vec<(f64, f64, u64)> = rows
                .iter()
                .map(|r| (r.get(0), r.get(1), r.get::<i64, _>(2) as u64))
                .collect();
            assert!(
                rows.iter().all(|r| episodes.iter().any(|e| e.0 == r.2)),
                "a capture of an episode the dead worker had not saved: {rows:?} vs {episodes:?}"
            );
            rows.first().copied()
        },
    )
    .await;
    let saved = episodes.iter().find(|e| e.0 == ep).unwrap().1;
    assert!(
        (start - saved).abs() < 0.01,
        "start {start} vs first seen {saved}"
    );
    assert!(
        confirm - start >= DWELL,
        "confirmed after {}",
        confirm - start
    );
    // Had the dwell restarted on the new worker, confirmation would come a whole dwell
    // after the takeover, which is itself after the kill.
    assert!(
        confirm < killed_unix + DWELL,
        "the dwell restarted: confirmed {} s after the kill",
        confirm - killed_unix
    );

    // Let it run on, then stop the survivors cleanly: each capture and case exists once.
    tokio::time::sleep(Duration::from_secs(8)).await;
    for w in workers {
        assert!(w.stop().success());
    }
    let dup: i64 = sqlx::query(
        "SELECT COUNT(*) FROM (SELECT episode FROM captures WHERE camera = 'cam0' \
         GROUP BY episode, rule HAVING COUNT(*) > 1) d",
    )
    .fetch_one(store.pool())
    .await
    .unwrap()
    .get(0);
    assert_eq!(dup, 0);
    let cases: i64 = sqlx::query(
        "SELECT COUNT(*) FROM cases c JOIN captures k ON k.id = c.capture_id \
         WHERE k.camera = 'cam0' AND k.episode = $1",
    )
    .bind(ep as i64)
    .fetch_one(store.pool())
    .await
    .unwrap()
    .get(0);
    assert_eq!(cases, 1);
    // Leaving cleanly gives every lease back.
    let h = holders(&db).await;
    assert!(h.values().all(|w| w.is_none()), "{h:?}");
}

/// A PostgreSQL server of the test's own, on loopback, that it can stop and start.
struct PrivatePostgres {
    dir: tempfile::TempDir,
    port: u16,
    running: bool,
}

fn pg_bin(name: &str) -> PathBuf {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed (scripts/postgres.sh)")
        .flatten()
        .map(|e| e.path())
        .collect();
    versions.sort();
    versions.last().unwrap().join("bin").join(name)
}

/// Runs a PostgreSQL program as the `postgres` user when this is root (it refuses root).
fn as_postgres(program: &Path) -> Command {
    if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    }
}

impl PrivatePostgres {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        if unsafe { libc::geteuid() } == 0 {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
            assert!(
                Command::new("chown")
                    .args(["-R", "postgres:postgres"])
                    .arg(&data)
                    .status()
                    .unwrap()
                    .success()
            );
        }
        let ok = as_postgres(&pg_bin("initdb"))
            .args(["-A", "trust", "-U", "citywatch", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "initdb failed");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut pg = Self {
            dir,
            port,
            running: false,
        };
        pg.start();
        pg
    }

    fn url(&self) -> String {
        format!("postgres://citywatch@127.0.0.1:{}/postgres", self.port)
    }

    fn pg_ctl(&self, args: &[&str]) -> bool {
        as_postgres(&pg_bin("pg_ctl"))
            .args(["-w", "-D"])
            .arg(self.dir.path().join("data"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .unwrap()
            .success()
    }

    fn start(&mut self) {
        let opts = format!(
            "-p {} -c listen_addresses=127.0.0.1 -c unix_socket_directories={}",
            self.port,
            self.dir.path().join("data").display()
        );
        let log = self.dir.path().join("data").join("server.log");
        assert!(
            self.pg_ctl(&["-o", &opts, "-l", &log.display().to_string(), "start"]),
            "PostgreSQL did not start"
        );
        self.running = true;
    }

    /// A fast shutdown: clients disconnected, no crash recovery needed at the next start.
    fn stop(&mut self) {
        if self.running {
            assert!(
                self.pg_ctl(&["-m", "fast", "stop"]),
                "PostgreSQL did not stop"
            );
            self.running = false;
        }
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Captures waiting in the workers' queues, by their latest filing lines; `None` until every
/// worker has printed one (a worker that has not reported yet has queued nothing we know of).
fn queued(workers: &[&Worker]) -> Option<u64> {
    workers
        .iter()
        .map(|w| w.filing_lines().last().and_then(|f| f["queued"].as_u64()))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_ride_out_a_postgres_restart_and_lose_no_capture() {
    let server = Server::start(&[]);
    let mut pg = tokio::task::block_in_place(PrivatePostgres::new);
    let dir = tempfile::tempdir().unwrap();
    let db = pg.url();
    // Two cameras on the car park, one per worker. The dwell outlasts what the test waits
    // for before stopping the database (the split, the saved episodes), so the captures are
    // confirmed while the database is down, not before, however slow the machine is.
    const DWELL: u32 = 45;
    let cfg = worker_config(dir.path(), &db, &server, 1, DWELL);
    let text = std::fs::read_to_string(&cfg).unwrap();
    let cam1 = text[text.find("[[cameras]]").unwrap()..].replace("cam0", "cam1");
    std::fs::write(&cfg, format!("{text}\n{cam1}")).unwrap();

    let w1 = Worker::start(&cfg, "w1");
    let w2 = Worker::start(&cfg, "w2");
    wait_for(
        "one camera per worker",
        Duration::from_secs(40),
        async || {
            let h = holders(&db).await;
            let mut owners: Vec<String> = h.values().flatten().cloned().collect();
            owners.sort();
            (owners == ["w1", "w2"]).then_some(())
        },
    )
    .await;
    // Both cameras have their vehicle episodes open and saved; none is confirmed yet.
    let store = citywatch::store::Store::connect(&db).await.unwrap();
    for cam in ["cam0", "cam1"] {
        wait_for("a vehicle episode", Duration::from_secs(60), async || {
            saved_episodes(&store, cam).await
        })
        .await;
    }
    let before = store.counts().await.unwrap().captures;
    assert_eq!(before, 0, "a capture was confirmed before the outage");
    drop(store);

    // PostgreSQL goes down for longer than the dwell and the lease TTL, then comes back.
    tokio::task::block_in_place(|| pg.stop());
    eprintln!("PostgreSQL stopped");
    let down_at = Instant::now();
    wait_for(
        "captures queued while the database is down",
        Duration::from_secs(DWELL as u64 + 60),
        async || queued(&[&w1, &w2]).is_some_and(|q| q >= 2).then_some(()),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(8).saturating_sub(down_at.elapsed())).await;
    tokio::task::block_in_place(|| pg.start());
    eprintln!("PostgreSQL started again");

    // The queues drain into the restarted database; the workers keep their own cameras.
    let store = citywatch::store::Store::connect(&db).await.unwrap();
    wait_for(
        "the queued captures stored",
        Duration::from_secs(60),
        async || (queued(&[&w1, &w2]) == Some(0)).then_some(()),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    for w in [&w1, &w2] {
        let s = w.last_worker_line().unwrap();
        // (A heartbeat may have failed, or waited out the outage for a connection.)
        assert_eq!(s["lost"], 0, "{s}");
        assert_eq!(s["cameras"].as_array().unwrap().len(), 1, "{s}");
        assert_eq!(s["live_workers"], 2, "{s}");
    }
    // Every capture the workers made is in the database, once.
    let made: u64 = [&w1, &w2]
        .iter()
        .map(|w| {
            w.lines
                .lock()
                .unwrap()
                .iter()
                .rev()
                .find(|(_, v)| v["id"].is_string() && v.get("analysis").is_some())
                .map(|(_, v)| v["analysis"]["captures"].as_u64().unwrap())
                .unwrap_or(0)
        })
        .sum();
    let counts = store.counts().await.unwrap();
    assert!(made >= 2, "{made} captures made");
    assert_eq!(
        counts.captures as u64, made,
        "{counts:?} (before the outage: {before})"
    );
    assert_eq!(counts.cases, counts.captures);
    for w in [w1, w2] {
        assert!(w.stop().success());
    }
}

/// `[patrol]` with `--worker`: three worker processes share one platform's cap of 2 streams
/// over 6 cameras. Every visit is recorded from before its stream opens until after it has
/// closed; at no instant do more than 2 overlap, fleet-wide, and no worker's status report
/// shows more than 2. A SIGKILLed worker's slot comes back (its lease expires) and the others
/// go on visiting every camera.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn patrol_across_workers_keeps_the_stream_cap_fleet_wide() {
    let server = Server::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let db = crate::store::postgres_url().await;
    let mut cfg = format!(
        r#"[settings]
status_interval_s = 1
shutdown_timeout_s = 5

[cases]
database = "{db}"
categories = "{categories}"
spool = "{spool}"

[workers]
lease_ttl_s = 6
heartbeat_s = 1

[patrol]
caps = {{ city = 2 }}
visit_s = 3
revisit_s = 9
"#,
        categories = repo().join("pipelines/categories/default.toml").display(),
        spool = dir.path().join("spool").display(),
    );
    for i in 0..6 {
        let mount = if i % 2 == 0 { "vtest" } else { "bikes" };
        cfg.push_str(&format!(
            "\n[[cameras]]\nid = \"p{i}\"\nurl = \"{}\"\nanalysis_fps = 1.0\nplatform = \"city\"\n",
            server.url(mount)
        ));
    }
    let config = dir.path().join("patrol.toml");
    std::fs::write(&config, cfg).unwrap();
    let store = citywatch::store::Store::connect(&db).await.unwrap();
    let unix = || {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64()
    };

    let w1 = Worker::start(&config, "w1");
    let w2 = Worker::start(&config, "w2");
    let w3 = Worker::start(&config, "w3");
    // w1 visits a camera; it is killed in the middle of that visit.
    let (cam, slot) = wait_for("a visit by w1", Duration::from_secs(60), async || {
        store
            .visits()
            .await
            .unwrap()
            .into_iter()
            .find(|v| v.worker == "w1" && v.ended_at.is_none())
            .map(|v| (v.camera, v.slot))
    })
    .await;
    let mut w1 = w1;
    w1.child.kill().unwrap();
    w1.child.wait().unwrap();
    let killed_at = unix();
    // Its slot is taken again once the lease expires, and every camera is visited after it.
    wait_for(
        "the dead worker's slot in use again",
        Duration::from_secs(60),
        async || {
            store
                .visits()
                .await
                .unwrap()
                .iter()
                .any(|v| v.slot == slot && v.started_at > killed_at)
                .then_some(())
        },
    )
    .await;
    wait_for(
        "every camera visited after the kill",
        Duration::from_secs(90),
        async || {
            let v = store.visits().await.unwrap();
            (0..6)
                .all(|i| {
                    v.iter().any(|v| {
                        v.camera == format!("p{i}")
                            && v.started_at > killed_at
                            && v.ended_at.is_some()
                    })
                })
                .then_some(())
        },
    )
    .await;
    let reports: Vec<Vec<(Instant, Value)>> = [&w2, &w3]
        .iter()
        .map(|w| w.lines.lock().unwrap().clone())
        .collect();
    assert!(w2.stop().success());
    assert!(w3.stop().success());

    let visits = store.visits().await.unwrap();
    // Intervals: a visit of the killed worker that never ended lasted until the kill.
    let spans: Vec<(f64, f64, &str)> = visits
        .iter()
        .map(|v| {
            let end = v.ended_at.unwrap_or_else(|| {
                assert_eq!(
                    v.worker, "w1",
                    "only the killed worker leaves a visit open: {v:?}"
                );
                killed_at
            });
            (v.started_at, end, v.camera.as_str())
        })
        .collect();
    let mut most = 0;
    for (t, _, _) in &spans {
        let open: Vec<&str> = spans
            .iter()
            .filter(|(a, b, _)| a <= t && t < b)
            .map(|(_, _, c)| *c)
            .collect();
        assert!(
            open.len() <= 2,
            "at {t}: {open:?} streaming at once; visits: {visits:#?}"
        );
        most = most.max(open.len());
    }
    assert_eq!(most, 2, "the cap was used: {visits:#?}");
    assert!(visits.iter().any(|v| v.camera == cam));
    let by_worker = |w: &str| visits.iter().filter(|v| v.worker == w).count();
    assert!(
        by_worker("w2") > 0 && by_worker("w3") > 0,
        "both survivors visited: {visits:#?}"
    );
    // Each worker's status reports: its visits never exceeded its share of the cap.
    for lines in &reports {
        for (_, v) in lines {
            if let Some(w) = v.get("worker") {
                assert!(w["visits"].as_array().map_or(0, Vec::len) <= 2, "{w}");
            }
        }
    }
    eprintln!(
        "patrol across workers: {} visits, {} by w1, {} by w2, {} by w3",
        visits.len(),
        by_worker("w1"),
        by_worker("w2"),
        by_worker("w3")
    );
}

/// The `.state` files in a spill folder.
fn spilled(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "state"))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn episodes_saved_while_the_database_is_down_outlive_a_kill_on_local_disk() {
    use citywatch::core::StateStore;
    use citywatch::episodes::TrackerState;
    use citywatch::store::camera_state::DbEpisodeStore;
    let mut pg = PrivatePostgres::new();
    let dir = tempfile::tempdir().unwrap();
    let spill = dir.path().join("spool").join("episodes");
    let url = pg.url();
    let cams = vec!["cam0".to_string()];
    let state = |next_id: u64| -> TrackerState {
        serde_json::from_value(serde_json::json!({ "next_id": next_id, "open": [] })).unwrap()
    };
    let open = async |store: &Arc<citywatch::store::Store>, shutdown| {
        DbEpisodeStore::<TrackerState>::open_with_spill(
            store.clone(),
            &cams,
            Some(spill.clone()),
            Arc::new(citywatch::core::SystemClock),
            shutdown,
        )
        .await
        .unwrap()
    };

    // The first process saves a state; then the database goes down, and the next state
    // waits on local disk as well as in memory.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Arc::new(citywatch::store::Store::connect(&url).await.unwrap());
        let db = open(&store, citywatch::core::Shutdown::new()).await;
        let mut written = db.written();
        db.save("cam0", &state(1)).unwrap();
        tokio::time::timeout(Duration::from_secs(30), written.wait_for(|n| *n >= 1))
            .await
            .unwrap()
            .unwrap();
        assert!(spilled(&spill).is_empty(), "spilled with the database up");
        pg.stop();
        db.save("cam0", &state(2)).unwrap();
        wait_for(
            "the state kept on local disk",
            Duration::from_secs(60),
            async || (!spilled(&spill).is_empty()).then_some(()),
        )
        .await;
    });
    // Killed: the runtime goes with every task on it, the writer's retries too.
    drop(rt);
    pg.start();

    // The next process: the database has the old state, the local file the newer one,
    // which wins; the database is then given it, and the file goes.
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = Arc::new(citywatch::store::Store::connect(&url).await.unwrap());
        let in_db = async || -> TrackerState {
            serde_json::from_str(&store.load_episodes("cam0").await.unwrap().unwrap()).unwrap()
        };
        assert_eq!(in_db().await, state(1));
        let shutdown = citywatch::core::Shutdown::new();
        let db = open(&store, shutdown.clone()).await;
        assert_eq!(db.load("cam0").unwrap(), state(2));
        wait_for(
            "the database given the kept state",
            Duration::from_secs(30),
            async || (in_db().await == state(2) && spilled(&spill).is_empty()).then_some(()),
        )
        .await;
        shutdown.trigger();
    });
}
