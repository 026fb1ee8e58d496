//! The review UI in real headless Chromium (Debian's `chromium`), driven over the DevTools
//! protocol: log in, open the queue, open a capture and play its clip, confirm one capture
//! and reject another with a reason, find the case in the cases list, and check that a
//! webhook receiver on loopback got it. Screenshots of each page go to
//! `target/browser-test/`, with the time each page took to load.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use citywatch::core::{Shutdown, SystemClock};
use citywatch::store::users::Role;

use crate::common::*;

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// A headless Chromium and one page of it.
pub(crate) struct Browser {
    child: Child,
    ws: Ws,
    next_id: u64,
    /// Events that arrived while waiting for a reply.
    events: Vec<Value>,
    _profile: tempfile::TempDir,
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Browser {
    pub(crate) async fn start() -> Self {
        let profile = tempfile::tempdir().unwrap();
        let mut child = Command::new("chromium")
            .args([
                "--headless=new",
                "--no-sandbox",
                "--disable-gpu",
                "--no-first-run",
                "--mute-audio",
                "--autoplay-policy=no-user-gesture-required",
                "--remote-debugging-address=127.0.0.1",
                "--remote-debugging-port=0",
                "--window-size=1280,900",
            ])
            .arg(format!("--user-data-dir={}", profile.path().display()))
            .arg("about:blank")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium (Debian's chromium package; make test installs it)");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                if let Some(url) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(url.to_string());
                }
            }
        });
        let browser_ws = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("chromium printed its DevTools address");
        let port = browser_ws
            .split(':')
            .nth(2)
            .unwrap()
            .split('/')
            .next()
            .unwrap();
        let targets: Vec<Value> = reqwest::get(format!("http://127.0.0.1:{port}/json/list"))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let page = targets
            .iter()
            .find(|t| t["type"] == "page")
            .expect("a page target");
        let (ws, _) =
            tokio_tungstenite::connect_async(page["webSocketDebuggerUrl"].as_str().unwrap())
                .await
                .unwrap();
        let mut b = Browser {
            child,
            ws,
            next_id: 0,
            events: Vec::new(),
            _profile: profile,
        };
        b.call("Page.enable", json!({})).await;
        b.call("Runtime.enable", json!({})).await;
        b
    }

    async fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        self.ws
            .send(Message::text(
                json!({ "id": id, "method": method, "params": params }).to_string(),
            ))
            .await
            .unwrap();
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(60), self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("{method}: no answer"))
                .unwrap()
                .unwrap();
            let Message::Text(text) = msg else { continue };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["id"] == id {
                assert!(v.get("error").is_none(), "{method}: {v}");
                return v["result"].clone();
            }
            self.events.push(v);
        }
    }

    /// Waits for an event (one that already arrived counts).
    async fn event(&mut self, method: &str) -> Value {
        if let Some(i) = self.events.iter().position(|e| e["method"] == method) {
            return self.events.remove(i);
        }
        loop {
            let msg = tokio::time::timeout(Duration::from_secs(60), self.ws.next())
                .await
                .unwrap_or_else(|_| panic!("no {method} event"))
                .unwrap()
                .unwrap();
            let Message::Text(text) = msg else { continue };
            let v: Value = serde_json::from_str(&text).unwrap();
            if v["method"] == method {
                return v;
            }
        }
    }

    /// Evaluates JavaScript (awaiting a promise) and returns its value.
    pub(crate) async fn eval(&mut self, js: &str) -> Value {
        let r = self
            .call(
                "Runtime.evaluate",
                json!({ "expression": js, "awaitPromise": true, "returnByValue": true }),
            )
            .await;
        assert!(r.get("exceptionDetails").is_none(), "{js}: {r}");
        r["result"]["value"].clone()
    }

    /// Runs `action` (which navigates) and waits for the new page's load event. Returns the
    /// time it took.
    async fn navigating(&mut self, action: &str) -> Duration {
        self.events.retain(|e| e["method"] != "Page.loadEventFired");
        let t = Instant::now();
        self.eval(action).await;
        self.event("Page.loadEventFired").await;
        t.elapsed()
    }

    pub(crate) async fn goto(&mut self, url: &str) -> Duration {
        self.events.retain(|e| e["method"] != "Page.loadEventFired");
        let t = Instant::now();
        self.call("Page.navigate", json!({ "url": url })).await;
        self.event("Page.loadEventFired").await;
        t.elapsed()
    }

    /// Sets the page's viewport, as a screen of that size would show it.
    pub(crate) async fn viewport(&mut self, width: u32, height: u32) {
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({ "width": width, "height": height, "deviceScaleFactor": 1, "mobile": false }),
        )
        .await;
    }

    /// Clicks the mouse's left button at a point of the page (CSS pixels).
    pub(crate) async fn click(&mut self, x: f64, y: f64) {
        for kind in ["mousePressed", "mouseReleased"] {
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": kind, "x": x, "y": y, "button": "left", "clickCount": 1 }),
            )
            .await;
        }
    }

    /// Drags with the mouse's left button from one point of the page to another.
    pub(crate) async fn drag(&mut self, from: (f64, f64), to: (f64, f64)) {
        let steps = 5;
        self.call(
            "Input.dispatchMouseEvent",
            json!({ "type": "mousePressed", "x": from.0, "y": from.1, "button": "left", "buttons": 1, "clickCount": 1 }),
        )
        .await;
        for i in 1..=steps {
            let f = i as f64 / steps as f64;
            let (x, y) = (from.0 + f * (to.0 - from.0), from.1 + f * (to.1 - from.1));
            self.call(
                "Input.dispatchMouseEvent",
                json!({ "type": "mouseMoved", "x": x, "y": y, "button": "left", "buttons": 1 }),
            )
            .await;
        }
        self.call(
            "Input.dispatchMouseEvent",
            json!({ "type": "mouseReleased", "x": to.0, "y": to.1, "button": "left", "buttons": 0, "clickCount": 1 }),
        )
        .await;
    }

    /// Presses the zone editor's "Save" and waits until the page says the server saved
    /// it (a mutation observer: no polling, no sleeping).
    pub(crate) async fn save_zone(&mut self) {
        let said = self
            .eval("new Promise(r=>{const s=document.querySelector('.zone-status');\
                   new MutationObserver((m,o)=>{if(s.textContent.startsWith('Zone saved')){o.disconnect();r(s.textContent)}})\
                   .observe(s,{childList:true,characterData:true,subtree:true});\
                   document.querySelector('.zone-save').click()})")
            .await;
        assert!(said.as_str().unwrap().starts_with("Zone saved"), "{said}");
    }

    /// Presses and releases one key (a letter or a digit) as the keyboard would.
    pub(crate) async fn key(&mut self, key: &str) {
        for kind in ["keyDown", "keyUp"] {
            self.call(
                "Input.dispatchKeyEvent",
                json!({ "type": kind, "key": key, "text": if kind == "keyDown" { key } else { "" } }),
            )
            .await;
        }
    }

    /// Waits until the workbench's grid holds at most `n` cards (a mutation observer: no
    /// polling, no sleeping).
    pub(crate) async fn cards_at_most(&mut self, n: usize) {
        self.eval(&format!(
            "new Promise(r=>{{const f=()=>document.querySelectorAll('li.card').length<={n};             if(f())return r(true);new MutationObserver((m,o)=>{{if(f()){{o.disconnect();r(true)}}}})             .observe(document.getElementById('grid'),{{childList:true}})}})"
        ))
        .await;
    }

    pub(crate) async fn screenshot(&mut self, name: &str) -> PathBuf {
        let r = self
            .call("Page.captureScreenshot", json!({ "format": "png" }))
            .await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(r["data"].as_str().unwrap())
            .unwrap();
        let dir = repo().join("target/browser-test");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, png).unwrap();
        path
    }
}

#[test]
fn an_operator_reviews_real_captures_in_headless_chromium() {
    // Real captures with real evidence: the demo footage replayed into a fresh database.
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("evidence");
    let cfg = crate::evidence::DemoConfig::new(&root, &dir.path().join("spool"), "");
    let db = format!("sqlite://{}", dir.path().join("cases.db").display());
    let out = crate::evidence::replay_cmd(&cfg, &db).output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut config = citywatch::config::PipelineConfig::load(&cfg.path).unwrap();
    config.web.as_mut().unwrap().listen = "127.0.0.1:0".into();

    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async move {
        let (receiver, _task, port) = crate::store::start_receiver(0, Vec::new()).await;
        let store = Arc::new(citywatch::store::Store::connect(&db).await.unwrap());
        store
            .upsert_user("op", Role::Operator, "operator-password", 0.0)
            .await
            .unwrap();
        let shutdown = Shutdown::new();
        let clock: Arc<SystemClock> = Arc::new(SystemClock);
        tokio::spawn(citywatch::notify::forward(
            store.clone(),
            citywatch::notify::Forwarder::new(citywatch::config::WebhookConfig {
                url: format!("http://127.0.0.1:{port}/cases"),
                secret: crate::store::SECRET.into(),
                max_attempts: 10,
                backoff_initial_s: 0.2,
                backoff_max_s: 1.0,
                timeout_s: 5.0,
            }),
            clock.clone(),
            shutdown.clone(),
            Arc::new(tokio::sync::Notify::new()),
        ));
        let state = citywatch::web::WebState::new(
            &config,
            store.clone(),
            Default::default(),
            Default::default(),
            None,
            clock,
        )
        .unwrap();
        let addr = citywatch::web::serve(Arc::new(state), shutdown.clone())
            .await
            .unwrap();
        let base = format!("http://{addr}");

        let mut b = Browser::start().await;
        let mut timings: Vec<(&str, Duration)> = Vec::new();

        // 1. Log in.
        timings.push(("login page", b.goto(&format!("{base}/review")).await));
        assert!(b.eval("location.pathname").await == "/login", "unauthenticated: sent to login");
        b.screenshot("01-login").await;
        let t = b
            .navigating(
                "document.getElementById('user').value='op';\
                 document.getElementById('password').value='operator-password';\
                 document.getElementById('login').submit()",
            )
            .await;
        timings.push(("review queue", t));
        assert_eq!(b.eval("location.pathname").await, "/review");
        // 2. The queue: the van and the car, with thumbnails.
        assert_eq!(b.eval("document.querySelectorAll('a.capture').length").await, 2);
        assert_eq!(
            b.eval("Promise.all([...document.images].map(i=>i.decode().then(()=>i.naturalWidth))).then(w=>w.every(x=>x>0))")
                .await,
            true
        );
        b.screenshot("02-review-queue").await;
        // 3. Open a capture and play its clip.
        timings.push((
            "capture detail",
            b.navigating("document.querySelector('a.capture').click()").await,
        ));
        let first = b.eval("location.pathname").await;
        let played = b
            .eval(
                "(async()=>{const v=document.getElementById('clip');await v.play();\
                 await new Promise(r=>setTimeout(r,1500));return v.currentTime;})()",
            )
            .await;
        assert!(played.as_f64().unwrap() > 0.5, "the clip plays: {played}");
        assert_eq!(
            b.eval("document.getElementById('manifest').textContent.includes('sha256')").await,
            true
        );
        b.screenshot("03-capture-detail").await;
        // On a 1366×768 screen the photo, the crop, the "before", the clip and the decision
        // are all in view without scrolling; the similar verdicts and the timeline follow.
        b.viewport(1366, 768).await;
        b.goto(&format!("{base}{}?lang=en", first.as_str().unwrap())).await;
        let below = b
            .eval("['img-confirm','img-crop','img-first_seen','clip','confirm','reject'].filter(id=>{\
                   const e=document.getElementById(id);if(!e)return true;const r=e.getBoundingClientRect();\
                   return r.top<0||r.bottom>window.innerHeight||r.height<20})")
            .await;
        assert_eq!(below, json!([]), "out of view at 1366×768");
        assert_eq!(b.eval("document.querySelectorAll('#timeline li').length>=2").await, true);
        assert_eq!(b.eval("!!document.getElementById('similar')").await, true);
        // The photo zooms where clicked.
        let r = b
            .eval("(()=>{const r=document.getElementById('img-confirm').getBoundingClientRect();return [r.left+r.width*0.7,r.top+r.height*0.4]})()")
            .await;
        b.click(r[0].as_f64().unwrap(), r[1].as_f64().unwrap()).await;
        assert_eq!(b.eval("document.getElementById('photo').classList.contains('zoomed')").await, true);
        b.screenshot("03b-capture-1366x768-zoomed").await;
        b.click(r[0].as_f64().unwrap(), r[1].as_f64().unwrap()).await;
        b.viewport(1280, 900).await;
        b.goto(&format!("{base}{}", first.as_str().unwrap())).await;
        // 4. Confirm it: the next capture opens.
        timings.push((
            "after confirm",
            b.navigating("document.getElementById('confirm').click()").await,
        ));
        let second = b.eval("location.pathname").await;
        assert_ne!(first, second);
        // 5. Reject the other with a reason and a note.
        b.screenshot("04-second-capture").await;
        timings.push((
            "after reject",
            b.navigating(
                "document.getElementById('reason').value='false_detection';\
                 document.getElementById('note').value='a shadow';\
                 document.getElementById('reject').click()",
            )
            .await,
        ));
        assert_eq!(
            b.eval("location.pathname").await,
            "/review",
            "{}",
            b.eval("document.body.innerText").await
        );
        assert!(b.eval("document.getElementById('empty')!==null").await == true);
        b.screenshot("05-queue-empty").await;
        // 6. The confirmed case is in the cases list.
        timings.push(("cases list", b.goto(&format!("{base}/cases")).await));
        let numbers = b
            .eval("[...document.querySelectorAll('td.case-number')].map(t=>t.textContent)")
            .await;
        let numbers: Vec<String> = serde_json::from_value(numbers).unwrap();
        assert_eq!(numbers.len(), 1, "{numbers:?}");
        b.screenshot("06-cases").await;
        timings.push(("cameras", b.goto(&format!("{base}/cameras")).await));
        b.screenshot("07-cameras").await;
        timings.push(("summary", b.goto(&format!("{base}/summary?lang=en")).await));
        assert_eq!(
            b.eval("document.querySelectorAll('#chart-filing rect').length").await,
            1,
            "capture-to-filing latency of the confirmed case, drawn"
        );
        assert_eq!(
            b.eval("document.querySelectorAll('#chart-per-day rect').length > 0").await,
            true,
            "captures per day, drawn"
        );
        assert!(
            b.eval("document.getElementById('rates').textContent.includes('50%')").await == true,
            "one confirmed, one rejected"
        );
        b.screenshot("08-summary-en").await;

        // 7. The city platform's receiver got that case, once.
        let case = store.case(&numbers[0]).await.unwrap().unwrap();
        let until = Instant::now() + Duration::from_secs(30);
        loop {
            if receiver.lock().unwrap().taken.contains_key(&case.idempotency_key) {
                break;
            }
            assert!(Instant::now() < until, "the webhook receiver never got {}", case.case_number);
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        assert_eq!(receiver.lock().unwrap().taken.len(), 1);
        let counts = store.counts().await.unwrap();
        assert_eq!((counts.cases, counts.pending_review), (1, 0));

        let report: HashMap<&str, f64> = timings
            .iter()
            .map(|(k, d)| (*k, (d.as_secs_f64() * 1e4).round() / 10.0))
            .collect();
        let path = repo().join("target/browser-test/timings.json");
        std::fs::write(&path, serde_json::to_string_pretty(&report).unwrap()).unwrap();
        eprintln!("browser test: {} steps; page load ms: {report:?}", timings.len());
        shutdown.trigger();
    });
}

#[test]
fn learned_suppressions_and_calibration_proposals_in_headless_chromium() {
    // A learned suppression made for real: the works car rejected on day 1, suppressed on
    // day 2 (see learning.rs); then a little more history on the same camera, so a
    // calibration proposal appears.
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cases.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = Arc::new(rt.block_on(citywatch::store::Store::connect(&db)).unwrap());
    crate::learning::replay(&crate::learning::pipeline(dir.path(), "visit_1"), &db);
    let first = rt
        .block_on(store.list_captures(&Default::default()))
        .unwrap()[0]
        .id
        .clone();
    rt.block_on(store.reject(&first, "op", "not_a_problem", None, 1000.0))
        .unwrap();
    crate::learning::replay(&crate::learning::pipeline(dir.path(), "visit_2"), &db);
    // Two more reviewed captures of the camera: a confirmed one scoring 0.95 and a rejected
    // one scoring 0.3. A minimum score of 0.95 would have kept the confirmation and dropped
    // both rejections (the works car, seen closer, scored about 0.83).
    for (i, (score, confirm)) in [(0.95f32, true), (0.3, false)].into_iter().enumerate() {
        let mut c = crate::store::capture(
            citywatch::config::RuleKind::AbandonedVehicle,
            i as u64 + 100,
            1_767_574_800.0,
        );
        c.candidate.camera = "works_road".into();
        c.candidate.zone = "road".into();
        c.candidate.score = score;
        c.candidate.embedding = Some(vec![1.0, 0.0]);
        let loc = Default::default();
        let policy = crate::store::table();
        let (key, _) = rt
            .block_on(store.record_capture(&c, None, Default::default(), &policy, &loc, 10.0))
            .unwrap();
        if confirm {
            rt.block_on(store.confirm(&key, "op", &policy, &loc, 11.0))
                .unwrap();
        } else {
            rt.block_on(store.reject(&key, "op", "false_detection", None, 11.0))
                .unwrap();
        }
    }
    let config = citywatch::config::PipelineConfig::parse(
        &format!(
            "[web]\nlisten = \"127.0.0.1:0\"\n[cases]\ndatabase = \"{db}\"\ncategories = \"{}\"\n\
             [[cameras]]\nid = \"works_road\"\nurl = \"rtsp://127.0.0.1:1/x\"\n",
            repo().join("pipelines/categories/default.toml").display()
        ),
        std::path::Path::new("."),
    )
    .unwrap();
    rt.block_on(async move {
        store
            .upsert_user("admin", Role::Admin, "admin-password", 0.0)
            .await
            .unwrap();
        let shutdown = Shutdown::new();
        let state = citywatch::web::WebState::new(
            &config,
            store.clone(),
            Default::default(),
            Default::default(),
            None,
            Arc::new(SystemClock),
        )
        .unwrap();
        let addr = citywatch::web::serve(Arc::new(state), shutdown.clone())
            .await
            .unwrap();
        let base = format!("http://{addr}");
        let mut b = Browser::start().await;
        b.goto(&format!("{base}/learning?lang=en")).await;
        b.navigating(
            "document.getElementById('user').value='admin';\
             document.getElementById('password').value='admin-password';\
             document.getElementById('login').submit()",
        )
        .await;
        b.goto(&format!("{base}/learning?lang=en")).await;
        // The learned suppression, linking to the rejected capture it resembles.
        assert_eq!(b.eval("document.querySelectorAll('tr.learned').length").await, 1);
        assert_eq!(
            b.eval("document.querySelector('tr.learned a.resembles').textContent").await,
            first.as_str()
        );
        // The memory: the works car's rejection and the two reviews added above.
        assert_eq!(b.eval("document.querySelectorAll('tr.remembered').length").await, 3);
        // The proposal and the history behind it.
        assert_eq!(b.eval("document.querySelectorAll('tr.proposal').length").await, 1);
        let row = b.eval("document.querySelector('tr.proposal').textContent").await;
        let row = row.as_str().unwrap().to_string();
        assert!(row.contains("min_score") && row.contains("0.95"), "{row}");
        assert!(row.contains("drops 2 of 2 rejected"), "{row}");
        b.screenshot("09-learning").await;
        // An admin applies it: stored as an override, audited.
        b.navigating("document.querySelector('button.apply').click()").await;
        assert_eq!(b.eval("document.querySelectorAll('#overrides tr').length").await, 1);
        let o = store.overrides().await.unwrap();
        assert_eq!((o[0].setting.as_str(), o[0].value), ("min_score", 0.95));
        // Undo the suppression: it goes to the review queue.
        let learned = b.eval("document.querySelector('tr.learned').dataset.id").await;
        let learned = learned.as_str().unwrap().to_string();
        b.navigating("document.querySelector('button.undo').click()").await;
        assert_eq!(b.eval("document.querySelectorAll('tr.learned').length").await, 0);
        b.goto(&format!("{base}/review")).await;
        let queue = b
            .eval("[...document.querySelectorAll('a.capture')].map(a=>a.getAttribute('href'))")
            .await;
        assert!(queue.to_string().contains(&learned), "{queue}");
        // Forget the works car's rejection.
        b.goto(&format!("{base}/learning?lang=en")).await;
        b.navigating(&format!(
            "document.querySelector('tr.remembered[data-id=\"{first}\"] button.forget').click()"
        ))
        .await;
        assert_eq!(b.eval("document.querySelectorAll('tr.remembered').length").await, 2);
        let audit: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log WHERE action LIKE 'learn.%' OR action LIKE 'calibration.%' ORDER BY action")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(audit, ["calibration.apply", "learn.forget", "learn.undo"]);
        b.screenshot("10-learning-after").await;
        shutdown.trigger();
    });
}

#[test]
fn case_history_an_overdue_case_dead_letters_and_the_admin_pages_in_headless_chromium() {
    use citywatch::config::{ClosureSettings, RuleKind};
    use citywatch::store::progress::{CheckOutcome, PlatformEvent, Report};
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cases.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = Arc::new(rt.block_on(citywatch::store::Store::connect(&db)).unwrap());
    let now = citywatch::core::to_unix(std::time::SystemTime::now());
    let policy = crate::store::table();
    let closure = ClosureSettings::default();
    // Two cases: one filed a month ago and never worked on (overdue, and its delivery dead),
    // one taken through the whole cycle to verified closure.
    let (late, done) = rt.block_on(async {
        let mut cases = Vec::new();
        for (i, filed) in [(1u64, now - 30.0 * 86400.0), (2, now - 3600.0)] {
            let (_, case) = store
                .record_capture(
                    &crate::store::capture(RuleKind::AbandonedVehicle, i, filed - 60.0),
                    None,
                    citywatch::store::FilingMode::Auto,
                    &policy,
                    &Default::default(),
                    filed,
                )
                .await
                .unwrap();
            cases.push(case.unwrap());
        }
        let (late, done) = (cases[0].clone(), cases[1].clone());
        for (id, status) in [("d", Report::Dispatched), ("h", Report::Handled)] {
            store
                .apply_platform(
                    &PlatformEvent {
                        event_id: format!("{id}-{done}"),
                        case_number: done.clone(),
                        status,
                        at: None,
                        note: Some("第一中队".into()),
                    },
                    "platform",
                    None,
                    &closure,
                    now - 600.0,
                )
                .await
                .unwrap();
        }
        store
            .record_check(
                &done,
                &CheckOutcome::Clear,
                None,
                "citywatch",
                &policy,
                &closure,
                now - 60.0,
            )
            .await
            .unwrap();
        let out: String =
            sqlx::query_scalar("SELECT id FROM outbox WHERE case_number = ? ORDER BY id LIMIT 1")
                .bind(&late)
                .fetch_one(store.pool())
                .await
                .unwrap();
        store
            .outbox_failed(&out, 10, true, now, "HTTP 503")
            .await
            .unwrap();
        store
            .upsert_user("admin", Role::Admin, "admin-password", 0.0)
            .await
            .unwrap();
        (late, done)
    });
    let config = citywatch::config::PipelineConfig::parse(
        &format!(
            "[web]\nlisten = \"127.0.0.1:0\"\n[cases]\ndatabase = \"{db}\"\ncategories = \"{}\"\n\
             [[cameras]]\nid = \"vtest\"\nurl = \"rtsp://127.0.0.1:1/x\"\n\
             [[cameras.zones]]\nid = \"kerb\"\nkind = \"no_parking\"\n\
             polygon = [[0.0, 0.0], [0.2, 0.0], [0.2, 1.0], [0.0, 1.0]]\n\
             [[cameras.rules]]\nrule = \"abandoned_vehicle\"\nzones = [\"kerb\"]\n",
            repo().join("pipelines/categories/default.toml").display()
        ),
        std::path::Path::new("."),
    )
    .unwrap();
    rt.block_on(async move {
        let shutdown = Shutdown::new();
        let mut state = citywatch::web::WebState::new(
            &config,
            store.clone(),
            Default::default(),
            Default::default(),
            None,
            Arc::new(SystemClock),
        )
        .unwrap();
        // The camera's latest analysed picture, and the desk its analysis takes commands
        // from.
        let desk = citywatch::analysis::SceneDesk::default();
        state.desk = desk.clone();
        // What the camera proposes as a fixture (it stood there from its first look).
        desk.publish(
            "vtest",
            &[],
            &[citywatch::model::fixture::Fixture {
                label: "planter".into(),
                bbox: [0.6, 0.1, 0.8, 0.3],
                since: now,
                source: citywatch::model::fixture::FixtureSource::Learned,
            }],
        );
        let frame = citywatch::evidence::image::encode_jpeg(&vec![120; 320 * 180 * 3], 320, 180);
        state
            .latest
            .lock()
            .insert("vtest".into(), (Arc::new(frame), now));
        let addr = citywatch::web::serve(Arc::new(state), shutdown.clone())
            .await
            .unwrap();
        let base = format!("http://{addr}");
        let mut b = Browser::start().await;
        b.goto(&format!("{base}/cases?lang=en")).await;
        b.navigating(
            "document.getElementById('user').value='admin';\
             document.getElementById('password').value='admin-password';\
             document.getElementById('login').submit()",
        )
        .await;
        // The cases list marks the overdue case.
        b.goto(&format!("{base}/cases?lang=en")).await;
        assert_eq!(b.eval("document.querySelectorAll('#cases tr.overdue').length").await, 1);
        assert_eq!(
            b.eval("document.querySelector('#cases tr.overdue .case-number').textContent").await,
            late.as_str()
        );
        b.screenshot("11-cases-overdue").await;
        // The closed case's page: its history, step by step.
        b.navigating(&format!(
            "[...document.querySelectorAll('#cases .case-number a')].find(a=>a.textContent==='{done}').click()"
        ))
        .await;
        let steps = b
            .eval("[...document.querySelectorAll('#history tr.event')].map(r=>r.dataset.status)")
            .await;
        assert_eq!(steps, json!(["filed", "dispatched", "handled", "verified_closed"]));
        assert_eq!(
            b.eval("document.getElementById('case-status').textContent").await,
            "Verified closed"
        );
        b.screenshot("12-case-history").await;
        // The overdue case's page says so.
        b.goto(&format!("{base}/cases/{late}?lang=en")).await;
        let deadline = b.eval("document.getElementById('deadline').className").await;
        assert_eq!(deadline, "overdue");
        // Dead letters: the undelivered case, requeued by the admin.
        b.goto(&format!("{base}/admin/outbox?lang=en")).await;
        assert_eq!(b.eval("document.querySelectorAll('tr.dead').length").await, 1);
        let err = b.eval("document.querySelector('tr.dead .error').textContent").await;
        assert_eq!(err, "HTTP 503");
        b.screenshot("13-dead-letters").await;
        b.navigating("document.querySelector('tr.dead button.requeue').click()").await;
        assert_eq!(b.eval("document.querySelectorAll('tr.dead').length").await, 0);
        assert_eq!(store.counts().await.unwrap().outbox_dead, 0);
        // Users: add one, then disable them.
        b.goto(&format!("{base}/admin/users?lang=en")).await;
        b.navigating(
            "document.getElementById('new-name').value='erin';\
             document.getElementById('new-role').value='viewer';\
             document.getElementById('new-password').value='erin-password-1';\
             document.getElementById('add-user-form').submit()",
        )
        .await;
        assert_eq!(
            b.eval("document.querySelectorAll('tr.user[data-name=\"erin\"]').length").await,
            1
        );
        b.navigating("document.querySelector('tr.user[data-name=\"erin\"] button.disable').click()")
            .await;
        assert_eq!(
            b.eval("document.querySelector('tr.user[data-name=\"erin\"] .state').textContent").await,
            "Disabled"
        );
        b.screenshot("14-users").await;
        // The audit log, filtered to user administration, with its chain intact.
        b.goto(&format!("{base}/admin/audit?lang=en")).await;
        let actions = b
            .eval("[...document.querySelectorAll('#audit td.action')].map(t=>t.textContent)")
            .await;
        assert!(actions.to_string().contains("outbox.requeue"), "{actions}");
        b.navigating(
            "document.getElementById('f-action').value='user.';\
             document.getElementById('audit-filters').submit()",
        )
        .await;
        let actions = b
            .eval("[...document.querySelectorAll('#audit td.action')].map(t=>t.textContent)")
            .await;
        assert_eq!(actions, json!(["user.disable", "user.add", "user.add"]));
        assert_eq!(b.eval("document.getElementById('chain').className").await, "ok");
        b.screenshot("15-audit").await;

        // A zone drawn with the mouse on the camera's picture: four clicks, then save.
        b.goto(&format!("{base}/cameras?lang=en")).await;
        b.eval("document.querySelector('.zone-editor .zone-draw').click()").await;
        let rect = b
            .eval("(()=>{const r=document.querySelector('.live[data-camera=\"vtest\"]').getBoundingClientRect();return [r.left,r.top,r.width,r.height]})()")
            .await;
        let r: Vec<f64> = rect.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        let corners = [[0.3, 0.4], [0.8, 0.4], [0.8, 0.9], [0.3, 0.9]];
        for [x, y] in corners {
            b.click(r[0] + x * r[2], r[1] + y * r[3]).await;
        }
        assert_eq!(b.eval("document.querySelector('.zone-save').disabled").await, false);
        b.screenshot("16-zone-drawn").await;
        // Saved: the page says so once the server has answered (a mutation observer).
        b.save_zone().await;
        assert_eq!(
            b.eval("document.querySelector('polygon[data-zone=\"kerb\"]').getAttribute('class')").await,
            "drawn"
        );
        b.screenshot("17-zone-saved").await;
        // Stored where the clicks were (to the pixel), audited, and handed to the camera,
        // whose rules take it on their next frame (analysis::tests::a_zone_redrawn_…).
        let drawn = store.zone_overrides().await.unwrap();
        assert_eq!(drawn.len(), 1);
        assert_eq!((drawn[0].camera.as_str(), drawn[0].zone.as_str(), drawn[0].set_by.as_str()), ("vtest", "kerb", "admin"));
        for (got, want) in drawn[0].polygon.iter().zip(corners) {
            assert!((got[0] as f64 - want[0]).abs() < 0.01 && (got[1] as f64 - want[1]).abs() < 0.01, "{:?}", drawn[0].polygon);
        }
        let audit: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log WHERE subject = 'vtest/kerb'")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(audit, ["zone.set"]);
        let sent = desk.take("vtest");
        assert!(
            matches!(&sent[..], [citywatch::analysis::SceneCommand::SetZone { zone, .. }] if zone == "kerb"),
            "{sent:?}"
        );
        // The drawn zone edited with the mouse: one corner dragged, one added beside the
        // bottom edge, then saved again.
        b.eval("document.querySelector('.zone-editor .zone-edit').click()").await;
        assert_eq!(b.eval("document.querySelectorAll('.live ellipse.handle').length").await, 4);
        let px = |x: f64, y: f64| (r[0] + x * r[2], r[1] + y * r[3]);
        b.drag(px(0.8, 0.4), px(0.7, 0.3)).await;
        b.click(px(0.55, 0.905).0, px(0.55, 0.905).1).await;
        assert_eq!(b.eval("document.querySelectorAll('.live ellipse.handle').length").await, 5);
        b.screenshot("17b-zone-edited").await;
        b.save_zone().await;
        let drawn = store.zone_overrides().await.unwrap();
        let edited = [[0.3, 0.4], [0.7, 0.3], [0.8, 0.9], [0.55, 0.905], [0.3, 0.9]];
        assert_eq!(drawn[0].polygon.len(), edited.len(), "{:?}", drawn[0].polygon);
        for (got, want) in drawn[0].polygon.iter().zip(edited) {
            assert!((got[0] as f64 - want[0]).abs() < 0.01 && (got[1] as f64 - want[1]).abs() < 0.01, "{:?}", drawn[0].polygon);
        }
        let audit: Vec<String> = sqlx::query_scalar("SELECT action FROM audit_log WHERE subject = 'vtest/kerb'")
            .fetch_all(store.pool())
            .await
            .unwrap();
        assert_eq!(audit, ["zone.set", "zone.set"]);
        assert!(matches!(&desk.take("vtest")[..], [citywatch::analysis::SceneCommand::SetZone { .. }]));
        // A new mask (a tree that sways) drawn with three clicks and saved: a zone the
        // config does not have, stored and sent to the camera.
        b.eval("document.querySelector('.zone-editor .mask-new').click()").await;
        assert_eq!(b.eval("document.querySelector('.zone-pick').value").await, "drawn-mask-1");
        for [x, y] in [[0.05, 0.05], [0.2, 0.05], [0.12, 0.3]] {
            b.click(px(x, y).0, px(x, y).1).await;
        }
        b.save_zone().await;
        assert_eq!(
            b.eval("document.querySelector('polygon[data-zone=\"drawn-mask-1\"]').getAttribute('class')").await,
            "drawn mask"
        );
        b.screenshot("17c-mask-drawn").await;
        let masks: Vec<_> = store
            .zone_overrides()
            .await
            .unwrap()
            .into_iter()
            .filter(|z| z.zone == "drawn-mask-1")
            .collect();
        assert_eq!(masks.len(), 1);
        assert!(matches!(
            &desk.take("vtest")[..],
            [citywatch::analysis::SceneCommand::SetZone { zone, .. }] if zone == "drawn-mask-1"
        ));
        // A fixture boxed with two mouse clicks on the picture: the page reloads with it,
        // and the camera is told.
        b.eval("document.querySelector('.fixture-label').value='bench';\
                document.querySelector('.fixture-draw').click()")
            .await;
        b.click(r[0] + 0.1 * r[2], r[1] + 0.6 * r[3]).await;
        b.events.retain(|e| e["method"] != "Page.loadEventFired");
        b.click(r[0] + 0.25 * r[2], r[1] + 0.8 * r[3]).await;
        b.event("Page.loadEventFired").await;
        let sent = desk.take("vtest");
        match &sent[..] {
            [citywatch::analysis::SceneCommand::AddFixture { label, bbox }] => {
                assert_eq!(label, "bench");
                for (got, want) in bbox.iter().zip([0.1, 0.6, 0.25, 0.8]) {
                    assert!((*got as f64 - want).abs() < 0.01, "{bbox:?}");
                }
            }
            other => panic!("{other:?}"),
        }
        b.screenshot("19-fixture-drawn").await;
        // The proposed fixture, drawn on the picture, accepted there with a click on it.
        assert_eq!(b.eval("document.querySelectorAll('.live rect.proposed').length").await, 1);
        // The page reloaded: where the picture is now.
        let rect = b
            .eval("(()=>{const r=document.querySelector('.live[data-camera=\"vtest\"]').getBoundingClientRect();return [r.left,r.top,r.width,r.height]})()")
            .await;
        let r: Vec<f64> = rect.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect();
        b.click(r[0] + 0.7 * r[2], r[1] + 0.2 * r[3]).await;
        b.navigating("document.querySelector('.proposed-accept').click()").await;
        let sent = desk.pending("vtest");
        assert!(
            matches!(&sent[..], [citywatch::analysis::SceneCommand::AnswerProposed { accept: true, bbox }] if bbox[0] == 0.6),
            "{sent:?}"
        );
        shutdown.trigger();
    });
}

/// The fleet view: a worker process streams two cameras, a second process on the same
/// database runs only the web UI (`--worker --max-cameras 0`); the cameras page in Chromium
/// lists both cameras under "Fleet" with their worker and lease, and `/metrics` has them.
#[test]
fn the_fleet_view_shows_every_workers_cameras_in_headless_chromium() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cases.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let store = citywatch::store::Store::connect(&db).await.unwrap();
        store
            .upsert_user("viewer", Role::Viewer, "viewer-password", 0.0)
            .await
            .unwrap();
    });
    let mut cfg = format!(
        "[settings]\nstatus_interval_s = 1\n[web]\nlisten = \"127.0.0.1:0\"\n\
         [cases]\ndatabase = \"{db}\"\ncategories = \"{}\"\nspool = \"{}\"\n\
         [workers]\nlease_ttl_s = 6\nheartbeat_s = 1\n",
        repo().join("pipelines/categories/default.toml").display(),
        dir.path().join("spool").display()
    );
    for (id, clip) in [("fleet-a", "vtest.mp4"), ("fleet-b", "bikes.mp4")] {
        cfg.push_str(&format!(
            "[[cameras]]\nid = \"{id}\"\nurl = \"file://{}\"\nanalysis_fps = 1.0\nrealtime = true\nloop = true\n",
            repo().join("sample-videos").join(clip).display()
        ));
    }
    let path = dir.path().join("fleet.toml");
    std::fs::write(&path, cfg).unwrap();
    let (_worker, _) = crate::lifecycle::start_and_wait(
        Command::new(bin())
            .args(["run", "--worker", "--worker-id", "w1", "--no-web"])
            .arg(&path)
            .env("CITYWATCH_LOG", "warn"),
        "[worker]",
    );
    let (_web, url) = crate::lifecycle::start_and_wait(
        Command::new(bin())
            .args([
                "run",
                "--worker",
                "--worker-id",
                "web",
                "--max-cameras",
                "0",
            ])
            .arg(&path)
            .env("CITYWATCH_LOG", "warn"),
        "web: listening on ",
    );
    rt.block_on(async move {
        let mut b = Browser::start().await;
        b.goto(&format!("{url}/cameras?lang=en")).await;
        b.navigating(
            "document.getElementById('user').value='viewer';\
             document.getElementById('password').value='viewer-password';\
             document.getElementById('login').submit()",
        )
        .await;
        // Both cameras, streaming on w1, which holds their leases.
        let until = Instant::now() + Duration::from_secs(60);
        let rows = loop {
            b.goto(&format!("{url}/cameras?lang=en")).await;
            let rows = b
                .eval(
                    "[...document.querySelectorAll('#fleet tr[data-camera]')].map(r=>[r.dataset.camera, r.querySelector('.worker').textContent, r.querySelector('.lease').textContent.split(' ')[0], r.querySelector('.state').textContent])",
                )
                .await;
            if rows
                .as_array()
                .is_some_and(|r| r.len() == 2 && r.iter().all(|x| x[3] == "streaming"))
            {
                break rows;
            }
            assert!(Instant::now() < until, "fleet rows: {rows}");
            tokio::time::sleep(Duration::from_millis(500)).await;
        };
        assert_eq!(
            rows,
            json!([
                ["fleet-a", "w1", "w1", "streaming"],
                ["fleet-b", "w1", "w1", "streaming"]
            ])
        );
        // The web process runs no camera of its own.
        assert_eq!(
            b.eval("document.querySelectorAll('#cameras tr .live').length").await,
            0
        );
        b.screenshot("16-fleet").await;
        b.goto(&format!("{url}/metrics")).await;
        let text = b.eval("document.body.innerText").await;
        let text = text.as_str().unwrap();
        assert!(
            text.contains("citywatch_fleet_camera_up{camera=\"fleet-a\",worker=\"w1\"} 1"),
            "{text}"
        );
        assert!(text.contains("citywatch_fleet_camera_frames_total{camera=\"fleet-b\",worker=\"w1\"}"));
    });
}

/// The id of the workbench card in focus.
async fn focused(b: &mut Browser) -> String {
    b.eval("document.querySelector('li.card.focus').dataset.id")
        .await
        .as_str()
        .unwrap()
        .to_string()
}

/// Logs in through the form, starting from `url` (which redirects to the login page).
pub(crate) async fn log_in(b: &mut Browser, url: &str, user: &str, password: &str) {
    b.goto(url).await;
    b.navigating(&format!(
        "document.getElementById('user').value='{user}';\
         document.getElementById('password').value='{password}';\
         document.getElementById('login').submit()"
    ))
    .await;
    b.goto(url).await;
}

/// An operator triages twenty captures on the workbench by keyboard alone: `c` confirms,
/// `r` and a digit rejects, `x` selects for a bulk decision. No page loads between
/// decisions, the focus moves to the next capture, and every capture is decided once, as
/// pressed. Keystrokes per decision and the time to the first decision are written to
/// `target/browser-test/triage.json`.
#[test]
fn an_operator_triages_twenty_captures_by_keyboard_in_headless_chromium() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = crate::web::site_with(20).await;
        let mut b = Browser::start().await;
        log_in(&mut b, &format!("{}/review?order=oldest&lang=en", s.base), "op", "operator-password").await;
        let loaded = Instant::now();
        assert_eq!(b.eval("location.pathname").await, "/review");
        assert_eq!(b.eval("document.querySelectorAll('li.card').length").await, 20);
        assert_eq!(b.eval("document.getElementById('total').textContent").await, "20");
        assert_eq!(
            b.eval("Promise.all([...document.images].map(i=>i.decode().then(()=>i.naturalWidth))).then(w=>w.length===40&&w.every(x=>x>0))")
                .await,
            true,
            "each card shows its crop and its context"
        );
        b.screenshot("10-workbench").await;
        // A page load would lose this.
        b.eval("window.sameDocument = true").await;
        let mut keys_per_decision: Vec<f64> = Vec::new();
        let mut expected: Vec<(String, &str)> = Vec::new();
        let mut left = 20;
        let mut first_decision = None;
        // Sixteen one at a time: confirm, then reject as a duplicate (reason 3), in turn.
        for i in 0..16 {
            let id = focused(&mut b).await;
            let keys: &[&str] = if i % 2 == 0 { &["c"] } else { &["r", "3"] };
            for k in keys {
                b.key(k).await;
            }
            left -= 1;
            b.cards_at_most(left).await;
            first_decision.get_or_insert_with(|| loaded.elapsed());
            keys_per_decision.push(keys.len() as f64);
            expected.push((id, if i % 2 == 0 { "filed" } else { "rejected" }));
            if i == 7 {
                b.screenshot("11-workbench-midway").await;
            }
        }
        // Two selected and confirmed together, then two selected and rejected together
        // (reason 1, false detection), moving with j.
        for (decide, status) in [(&["c"][..], "filed"), (&["r", "1"][..], "rejected")] {
            let a = focused(&mut b).await;
            b.key("x").await;
            b.key("j").await;
            let c = focused(&mut b).await;
            b.key("x").await;
            assert_eq!(b.eval("document.querySelectorAll('li.card.selected').length").await, 2);
            for k in decide {
                b.key(k).await;
            }
            left -= 2;
            b.cards_at_most(left).await;
            let n = 3.0 + decide.len() as f64;
            keys_per_decision.extend([n / 2.0, n / 2.0]);
            expected.push((a, status));
            expected.push((c, status));
        }
        assert_eq!(b.eval("window.sameDocument === true").await, true, "a decision loaded a page");
        assert_eq!(b.eval("document.getElementById('total').textContent").await, "0");
        b.screenshot("12-workbench-done").await;

        // Every capture decided once, as pressed.
        for (id, status) in &expected {
            let c = s.store.capture(id).await.unwrap().unwrap();
            assert_eq!(&c.status, status, "{id}");
        }
        let unique: std::collections::BTreeSet<&String> = expected.iter().map(|(id, _)| id).collect();
        assert_eq!(unique.len(), 20, "a capture was decided twice");
        let reviews: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reviews")
            .fetch_one(s.store.pool())
            .await
            .unwrap();
        assert_eq!(reviews, 20);
        keys_per_decision.sort_by(f64::total_cmp);
        let median = (keys_per_decision[9] + keys_per_decision[10]) / 2.0;
        assert!(median <= 2.0, "median keystrokes per decision {median}");
        let first_ms = first_decision.unwrap().as_secs_f64() * 1e3;
        let page_kb = b
            .eval("performance.getEntriesByType('resource').reduce((n,e)=>n+e.transferSize,0)+performance.getEntriesByType('navigation')[0].transferSize")
            .await
            .as_f64()
            .unwrap()
            / 1024.0;
        let report = json!({
            "decisions": 20,
            "keystrokes": keys_per_decision.iter().sum::<f64>(),
            "median_keystrokes_per_decision": median,
            "first_decision_ms": (first_ms * 10.0).round() / 10.0,
            "page_weight_kib": (page_kb * 10.0).round() / 10.0,
        });
        std::fs::write(
            repo().join("target/browser-test/triage.json"),
            serde_json::to_string_pretty(&report).unwrap(),
        )
        .unwrap();
        eprintln!("triage: {report}");
    });
}

/// Two operators, each in a browser of their own, work the same queue from the same end
/// at the same time: every capture is decided exactly once; a capture the other operator
/// decided first is refused (409) and leaves the grid, never decided a second time.
#[test]
fn two_operators_on_one_queue_never_decide_a_capture_twice_in_headless_chromium() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let s = crate::web::site_with(10).await;
        s.store
            .upsert_user("op2", Role::Operator, "operator2-password", 0.0)
            .await
            .unwrap();
        let mut a = Browser::start().await;
        let mut b = Browser::start().await;
        let url = format!("{}/review?order=oldest&lang=en", s.base);
        log_in(&mut a, &url, "op", "operator-password").await;
        log_in(&mut b, &url, "op2", "operator2-password").await;
        // In turn, each confirms the capture in focus; the second starts one further on, so
        // each keeps running into captures the other has just decided.
        b.key("j").await;
        let count = "document.querySelectorAll('li.card:not(.failed)').length";
        for _ in 0..40 {
            let (na, nb) = (a.eval(count).await, b.eval(count).await);
            if na == 0 && nb == 0 {
                break;
            }
            for br in [&mut a, &mut b] {
                if br.eval(count).await.as_u64().unwrap() == 0 {
                    continue;
                }
                let before = br.eval(count).await.as_u64().unwrap() as usize;
                br.key("c").await;
                // The card leaves: decided here, or found decided there.
                br.cards_at_most(before - 1).await;
            }
        }
        a.screenshot("13-two-operators-a").await;
        b.screenshot("14-two-operators-b").await;
        let decided: Vec<(String, i64)> =
            sqlx::query_as("SELECT capture_id, COUNT(*) FROM reviews GROUP BY capture_id")
                .fetch_all(s.store.pool())
                .await
                .unwrap();
        assert_eq!(decided.len(), 10, "{decided:?}");
        assert!(
            decided.iter().all(|(_, n)| *n == 1),
            "decided twice: {decided:?}"
        );
        let by: Vec<(String,)> = sqlx::query_as("SELECT DISTINCT reviewer FROM reviews")
            .fetch_all(s.store.pool())
            .await
            .unwrap();
        assert_eq!(by.len(), 2, "both operators decided some: {by:?}");
    });
}
