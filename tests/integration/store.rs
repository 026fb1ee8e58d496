//! The case store: one suite, run on SQLite and on a real PostgreSQL on loopback
//! (`scripts/test.sh` starts it and sets CITYWATCH_TEST_POSTGRES); and the webhook forwarder
//! against a real HTTP receiver on loopback that fails, hangs and goes away.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use citywatch::cases::CasePolicy;
use citywatch::config::RuleKind;
use citywatch::config::WebhookConfig;
use citywatch::notify::{Forwarder, sign};
use citywatch::ratelimit::Capture;
use citywatch::rules::engine::Candidate;
use citywatch::store::categories::CategoryTable;
use citywatch::store::{FilingMode, Location, Store, StoreError};
use sqlx::Connection;

use crate::common::repo;

const T0: f64 = 1_767_574_800.0; // 2026-01-05 09:00 +08:00

/// China Standard Time, the default reporting time zone.
const CST: i32 = 8 * 3600;

pub(crate) fn table() -> CasePolicy {
    let t = CategoryTable::load(
        &repo().join("pipelines/categories/default.toml"),
        &[
            RuleKind::AbandonedVehicle,
            RuleKind::IllegalVendor,
            RuleKind::OverflowingBin,
        ],
    )
    .unwrap();
    CasePolicy::new(std::sync::Arc::new(t), CST)
}

fn location() -> Location {
    Location {
        address: "朝阳区 某街 12号".into(),
        lat: Some(39.92),
        lon: Some(116.44),
        grid_code: "110105001002003".into(),
        community: "某社区".into(),
        street: "某街道".into(),
    }
}

pub(crate) fn capture(rule: RuleKind, episode: u64, confirm: f64) -> Capture {
    Capture {
        id: episode,
        candidate: Candidate {
            rule,
            camera: "vtest".into(),
            preset: None,
            zone: "car_park".into(),
            place: [0.8, 0.1, 0.9, 0.2],
            episode: Some(episode),
            label: "car".into(),
            start: confirm - 600.0,
            confirm,
            bbox: [0.8, 0.1, 0.9, 0.2],
            score: 0.7,
            dwell_s: 600.0,
            embedding: None,
            parts: Vec::new(),
            plate: None,
        },
        aggregation: 1,
        last_evidence: confirm,
        closed_at: None,
        left: false,
        resembles: None,
    }
}

/// A fresh database on the test PostgreSQL.
pub(crate) async fn postgres_url() -> String {
    let admin = std::env::var("CITYWATCH_TEST_POSTGRES").expect(
        "CITYWATCH_TEST_POSTGRES is not set: run the tests with `make test` (scripts/test.sh starts PostgreSQL)",
    );
    let name = format!(
        "cw_test_{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
            % 1_000_000_000
    );
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(&format!("CREATE DATABASE {name}"))
        .execute(&mut conn)
        .await
        .unwrap();
    admin.rsplit_once('/').unwrap().0.to_string() + "/" + &name
}

/// The counts kept as rows changed (store::tally) are what counting the rows again gives.
async fn tallies_match_the_rows(store: &Store) {
    let kept = store.tally_snapshot().await.unwrap();
    assert!(!kept.0.is_empty(), "tallies were kept");
    store.rebuild_tallies().await.unwrap();
    let counted = store.tally_snapshot().await.unwrap();
    assert_eq!(kept.0, counted.0, "tallies");
    assert_eq!(kept.1, counted.1, "verdict statistics");
}

async fn suite(url: &str) {
    let store = Store::connect(url).await.unwrap();
    // Migrating again is a no-op.
    drop(Store::connect(url).await.unwrap());
    let t = table();
    store
        .upsert_camera("vtest", "Campus", &location())
        .await
        .unwrap();

    // Review mode: a capture, no case yet. Recording it again (a replay, a restart) changes
    // nothing but its aggregation count.
    let c1 = capture(RuleKind::AbandonedVehicle, 1, T0);
    let (key, case) = store
        .record_capture(&c1, None, FilingMode::Review, &t, &location(), T0)
        .await
        .unwrap();
    assert!(case.is_none());
    let mut again = c1.clone();
    again.aggregation = 3;
    let (key2, _) = store
        .record_capture(&again, None, FilingMode::Review, &t, &location(), T0 + 5.0)
        .await
        .unwrap();
    assert_eq!(key, key2);
    let n = store.counts().await.unwrap();
    assert_eq!(
        (n.captures, n.pending_review, n.cases, n.outbox_pending),
        (1, 1, 0, 0)
    );

    // Confirming files the case and its outbox row together; confirming twice is harmless.
    let case = store
        .confirm(&key, "op1", &t, &location(), T0 + 60.0)
        .await
        .unwrap();
    assert_eq!(case, "CW20260105000001");
    assert_eq!(
        store
            .confirm(&key, "op1", &t, &location(), T0 + 61.0)
            .await
            .unwrap(),
        case
    );
    let n = store.counts().await.unwrap();
    assert_eq!((n.pending_review, n.cases, n.outbox_pending), (0, 1, 1));
    let rec = store.case(&case).await.unwrap().unwrap();
    assert_eq!(rec.source, "视频抓拍");
    assert_eq!(
        (rec.major_code.as_str(), rec.minor_code.as_str()),
        ("01", "0107")
    );
    assert_eq!(rec.minor_name, "废弃车辆");
    assert_eq!(rec.time_limit, "5工作日");
    assert_eq!(rec.location, location());
    assert_eq!(rec.aggregation, 3);
    assert_eq!(rec.status, "filed");
    assert!(
        rec.description.contains("废弃车辆") && rec.description.contains("10 分钟"),
        "{}",
        rec.description
    );

    // Auto mode: filed at once, with its outbox row.
    let (_, auto_case) = store
        .record_capture(
            &capture(RuleKind::OverflowingBin, 2, T0 + 100.0),
            None,
            FilingMode::Auto,
            &t,
            &location(),
            T0 + 100.0,
        )
        .await
        .unwrap();
    assert_eq!(auto_case.as_deref(), Some("CW20260105000002"));

    // Rejecting takes a reason; a rejected capture cannot be confirmed.
    let (k3, _) = store
        .record_capture(
            &capture(RuleKind::IllegalVendor, 3, T0 + 200.0),
            None,
            FilingMode::Review,
            &t,
            &location(),
            T0 + 200.0,
        )
        .await
        .unwrap();
    store
        .reject(&k3, "op2", "compliant_vendor", Some("疏导点内"), T0 + 210.0)
        .await
        .unwrap();
    assert!(matches!(
        store.confirm(&k3, "op2", &t, &location(), T0 + 220.0).await,
        Err(StoreError::NotPending { .. })
    ));
    // SQL metacharacters are data.
    let weird = "x'); DROP TABLE cases; --";
    assert!(matches!(
        store.confirm(weird, "op", &t, &location(), T0).await,
        Err(StoreError::NoCapture(_))
    ));
    let n = store.counts().await.unwrap();
    assert_eq!((n.captures, n.cases, n.outbox_pending), (3, 2, 2));
    // The read queries behind the UI run on both backends, filters bound as data.
    let recent = store.recent(30).await.unwrap();
    assert_eq!(recent.hours.iter().map(|t| t.n).sum::<i64>(), 3);
    assert_eq!(recent.days.iter().map(|t| t.n).sum::<i64>(), 3);
    assert_eq!(store.rejected_captures().await.unwrap().len(), 1);
    let (cases, total) = store
        .list_cases(
            &citywatch::store::query::CaseFilter {
                rule: Some("abandoned_vehicle".into()),
                from: Some(0.0),
                ..Default::default()
            },
            CST,
        )
        .await
        .unwrap();
    assert_eq!((cases.len(), total), (1, 1));
    let (both, all) = store.list_cases(&Default::default(), CST).await.unwrap();
    assert_eq!(all, 2);
    // Keyset paging: one at a time, newest first, the second after the first's cursor,
    // then nothing; the total is the filter's.
    let one = |after: Option<String>| citywatch::store::query::CaseFilter {
        limit: Some(1),
        after,
        ..Default::default()
    };
    let (first, total) = store.list_cases(&one(None), CST).await.unwrap();
    assert_eq!((first.len(), total), (1, 2));
    assert_eq!(first[0].case_number, both[0].case_number);
    let (second, _) = store
        .list_cases(&one(Some(first[0].cursor())), CST)
        .await
        .unwrap();
    assert_eq!(second.len(), 1);
    assert_eq!(second[0].case_number, both[1].case_number);
    let (none, _) = store
        .list_cases(&one(Some(second[0].cursor())), CST)
        .await
        .unwrap();
    assert!(none.is_empty());
    let day = |from: &str, to: &str| citywatch::store::query::CaseFilter {
        from_date: Some(from.into()),
        to_date: Some(to.into()),
        ..Default::default()
    };
    // The cases were reported on 2026-01-05 (Beijing time).
    assert_eq!(
        store
            .list_cases(&day("2026-01-05", "2026-01-05"), CST)
            .await
            .unwrap()
            .1,
        2
    );
    assert_eq!(
        store
            .list_cases(&day("2026-01-06", "2026-01-09"), CST)
            .await
            .unwrap()
            .1,
        0
    );
    let weird = citywatch::store::query::CaptureFilter {
        camera: Some("x' OR '1'='1".into()),
        status: Some("all".into()),
        ..Default::default()
    };
    assert!(store.list_captures(&weird).await.unwrap().is_empty());

    // Retention may delete only what is finished: the rejected capture, and a capture once
    // its case is closed.
    const KEEP: f64 = 30.0 * 86400.0;
    let finished = store.finished_capture_keys(T0, KEEP).await.unwrap();
    assert_eq!(finished.len(), 1, "only the rejected capture: {finished:?}");
    let rejected = finished.iter().next().unwrap();
    assert_eq!(store.case_of_capture(rejected).await.unwrap(), None);
    let (filed_key, _) = store
        .record_capture(
            &capture(RuleKind::AbandonedVehicle, 9, T0 + 900.0),
            None,
            FilingMode::Auto,
            &t,
            &location(),
            T0,
        )
        .await
        .unwrap();
    assert!(
        !store
            .finished_capture_keys(T0 + 400.0 * 86400.0, KEEP)
            .await
            .unwrap()
            .contains(&filed_key),
        "an open case's evidence is never finished"
    );
    let case = store.case_of_capture(&filed_key).await.unwrap().unwrap();
    store
        .close_case(&case, "platform", T0 + 1000.0)
        .await
        .unwrap();
    // Closing again changes nothing (and writes no second audit row).
    assert!(matches!(
        store
            .close_case(&case, "platform", T0 + 1001.0)
            .await
            .unwrap(),
        citywatch::store::progress::Applied::Duplicate(_)
    ));
    // Kept for closed_keep_days after the closure, then finished.
    let finished_at = |t: f64| {
        let store = &store;
        let key = filed_key.clone();
        async move {
            store
                .finished_capture_keys(t, KEEP)
                .await
                .unwrap()
                .contains(&key)
        }
    };
    assert!(!finished_at(T0 + 1000.0 + KEEP - 60.0).await);
    assert!(finished_at(T0 + 1000.0 + KEEP + 60.0).await);

    // Episodes live in the episodes table: saved by one store, loaded by the next.
    use citywatch::core::StateStore;
    use citywatch::episodes::TrackerState;
    use citywatch::store::camera_state::DbEpisodeStore;
    let store = Arc::new(store);
    let shutdown = citywatch::core::Shutdown::new();
    let clock = Arc::new(citywatch::core::SystemClock);
    let cams = vec!["vtest".to_string()];
    let db =
        DbEpisodeStore::<TrackerState>::open(store.clone(), &cams, clock.clone(), shutdown.clone())
            .await
            .unwrap();
    assert_eq!(db.load("vtest").unwrap(), Default::default());
    let state: citywatch::episodes::TrackerState = serde_json::from_value(serde_json::json!({
        "next_id": 8,
        "open": [{
            "id": 7, "kind": "vehicle", "label": "car", "anchor": [0.1, 0.1, 0.2, 0.2],
            "last_box": [0.1, 0.1, 0.2, 0.2], "signature": null, "first_seen": T0,
            "last_seen": T0 + 30.0, "hits": 4, "best_score": 0.9, "last_score": 0.8
        }]
    }))
    .unwrap();
    let mut written = db.written();
    db.save("vtest", &state).unwrap();
    tokio::time::timeout(Duration::from_secs(30), written.wait_for(|n| *n >= 1))
        .await
        .unwrap()
        .unwrap();
    let again = DbEpisodeStore::<TrackerState>::open(store.clone(), &cams, clock, shutdown.clone())
        .await
        .unwrap();
    assert_eq!(again.load("vtest").unwrap(), state);
    // One camera's row unreadable: that camera starts fresh, its state kept in the audit
    // log; the other resumes.
    store
        .save_episodes("broken", "{\"next_id\": tru", T0)
        .await
        .unwrap();
    let cams = vec!["vtest".to_string(), "broken".to_string()];
    let third =
        DbEpisodeStore::<TrackerState>::open(store.clone(), &cams, clock_again(), shutdown.clone())
            .await
            .expect("one bad state stops nothing");
    assert_eq!(third.load("vtest").unwrap(), state);
    assert_eq!(third.load("broken").unwrap(), Default::default());
    assert!(third.quarantined("broken").is_some());
    assert!(third.quarantined("vtest").is_none());
    let rows = store
        .audit_rows(&citywatch::store::audit::AuditFilter {
            action: Some("state.quarantine".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].subject, "broken");
    assert!(
        rows[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("next_id\\\": tru"),
        "{:?}",
        rows[0].detail
    );
    shutdown.trigger();
    tallies_match_the_rows(&store).await;
}

fn clock_again() -> Arc<citywatch::core::SystemClock> {
    Arc::new(citywatch::core::SystemClock)
}

/// The verdict memory's rows, learned suppressions, undo, forget, pruning and calibration
/// overrides: the same on both backends.
async fn learning_suite(url: &str) {
    let store = Store::connect(url).await.unwrap();
    let t = table();
    let with = |episode: u64, v: [f32; 2], score: f32| {
        let mut c = capture(RuleKind::AbandonedVehicle, episode, T0 + episode as f64);
        c.candidate.embedding = Some(v.to_vec());
        c.candidate.score = score;
        c
    };
    let (rejected, _) = store
        .record_capture(
            &with(1, [1.0, 0.0], 0.4),
            None,
            FilingMode::Review,
            &t,
            &location(),
            T0,
        )
        .await
        .unwrap();
    let (confirmed, _) = store
        .record_capture(
            &with(2, [0.0, 1.0], 0.8),
            None,
            FilingMode::Review,
            &t,
            &location(),
            T0,
        )
        .await
        .unwrap();
    store
        .reject(&rejected, "op", "not_a_problem", None, T0 + 10.0)
        .await
        .unwrap();
    store
        .confirm(&confirmed, "op", &t, &location(), T0 + 11.0)
        .await
        .unwrap();
    let m = citywatch::learn::VerdictMemory::from_entries(
        Default::default(),
        store.memory_entries().await.unwrap(),
    );
    assert_eq!(m.len(), 2);
    // A learned suppression is kept, never filed (even in auto mode), and links back.
    let mut learned = with(4, [1.0, 0.01], 0.45);
    learned.resembles = Some(citywatch::model::candidate::Resemblance {
        capture: rejected.clone(),
        similarity: 0.99,
        reason: Some("not_a_problem".into()),
    });
    let (lkey, case) = store
        .record_capture(&learned, None, FilingMode::Auto, &t, &location(), T0 + 20.0)
        .await
        .unwrap();
    assert!(case.is_none());
    let row = store.capture(&lkey).await.unwrap().unwrap();
    assert_eq!(
        (row.status.as_str(), row.resembles.as_deref()),
        ("learned", Some(rejected.as_str()))
    );
    let listed = store.memory_list(10).await.unwrap();
    let r = listed.iter().find(|r| r.capture_id == rejected).unwrap();
    assert_eq!((r.said.as_str(), r.suppressions), ("rejected", 1));
    store.undo_learned(&lkey, "op", T0 + 30.0).await.unwrap();
    assert_eq!(
        store.capture(&lkey).await.unwrap().unwrap().status,
        "pending_review"
    );
    // Calibration: history, an applied override (replaced when applied again).
    let h = store.reviewed_history().await.unwrap();
    assert_eq!(h.iter().filter(|r| r.confirmed).count(), 1);
    for v in [0.5, 0.6] {
        store
            .apply_override(&citywatch::store::learning::Override {
                camera: "vtest".into(),
                rule: "abandoned_vehicle".into(),
                setting: "min_score".into(),
                value: v,
                applied_by: "admin".into(),
                applied_at: T0 + 40.0 + v,
            })
            .await
            .unwrap();
    }
    let o = store.overrides().await.unwrap();
    assert_eq!((o.len(), o[0].value), (1, 0.6));
    // Pruning keeps the newest per key; forgetting removes one.
    assert_eq!(store.prune_memory(1).await.unwrap(), 1);
    assert_eq!(
        citywatch::learn::VerdictMemory::from_entries(
            Default::default(),
            store.memory_entries().await.unwrap()
        )
        .len(),
        1
    );
    assert!(
        store
            .forget_memory(&confirmed, "op", T0 + 50.0)
            .await
            .unwrap()
    );
    assert!(
        !store
            .forget_memory(&confirmed, "op", T0 + 51.0)
            .await
            .unwrap()
    );
    assert!(store.memory_entries().await.unwrap().is_empty());
    let audit: Vec<String> = sqlx::query_scalar(
        "SELECT action FROM audit_log WHERE action LIKE 'learn.%' OR action LIKE 'calibration.%' ORDER BY action",
    )
    .fetch_all(store.pool())
    .await
    .unwrap();
    assert_eq!(
        audit,
        [
            "calibration.apply",
            "calibration.apply",
            "learn.forget",
            "learn.undo"
        ]
    );
    tallies_match_the_rows(&store).await;
}

/// The case life cycle on one backend: deadlines on a calendar with a holiday and a make-up
/// workday, one overdue reminder, platform reports, unjudged looks handed to a person, idle
/// sessions, dead letters requeued with their key, and the audit chain catching an edit.
async fn lifecycle_suite(url: &str) {
    use citywatch::cases::deadline::{CalendarFile, WorkCalendar};
    use citywatch::config::ClosureSettings;
    use citywatch::store::progress::{Applied, CheckOutcome, PlatformEvent, Report};
    let store = Store::connect(url).await.unwrap();
    // Friday 2026-01-09 15:00 in Beijing; the next Monday is a holiday, the Saturday before
    // it a make-up workday.
    let fri = T0 + 4.0 * 86400.0 + 6.0 * 3600.0;
    let cal = WorkCalendar::weekdays(9 * 60, 17 * 60, CST)
        .with_file(&CalendarFile {
            holidays: vec!["2026-01-12".into()],
            workdays: vec!["2026-01-10".into()],
        })
        .unwrap();
    let policy = table().with_calendar(std::sync::Arc::new(cal));
    let mut cases = Vec::new();
    for (i, rule) in [
        RuleKind::AbandonedVehicle,
        RuleKind::IllegalVendor,
        RuleKind::OverflowingBin,
    ]
    .into_iter()
    .enumerate()
    {
        let (_, case) = store
            .record_capture(
                &capture(rule, 50 + i as u64, fri - 10.0),
                None,
                FilingMode::Auto,
                &policy,
                &location(),
                fri,
            )
            .await
            .unwrap();
        cases.push(case.unwrap());
    }
    let deadline = |case: &str| {
        let store = &store;
        let case = case.to_string();
        async move {
            store
                .case(&case)
                .await
                .unwrap()
                .unwrap()
                .deadline_at
                .unwrap()
        }
    };
    // 5工作日 (40 working hours): Fri 2 h, the make-up Saturday 8 h, not Sunday, not the
    // Monday holiday, Tue, Wed, Thu 8 h each, then Friday 09:00 + 6 h.
    assert_eq!(deadline(&cases[0]).await, fri + 7.0 * 86400.0);
    // 2工作时: Friday 17:00. 4工作时: the make-up Saturday, 11:00.
    assert_eq!(deadline(&cases[1]).await, fri + 2.0 * 3600.0);
    assert_eq!(deadline(&cases[2]).await, fri + 20.0 * 3600.0);

    // Overdue: one reminder per deadline, in the history and the outbox.
    let late = fri + 3.0 * 3600.0;
    assert!(store.remind_overdue(fri + 3600.0).await.unwrap().is_empty());
    assert_eq!(
        store.remind_overdue(late).await.unwrap(),
        vec![cases[1].clone()]
    );
    assert!(store.remind_overdue(late + 60.0).await.unwrap().is_empty());
    assert_eq!(store.overdue_count(late).await.unwrap(), 1);
    let statuses = |case: &str| {
        let store = &store;
        let case = case.to_string();
        async move {
            store
                .case_events(&case)
                .await
                .unwrap()
                .into_iter()
                .map(|e| e.status)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(statuses(&cases[1]).await, ["filed", "overdue"]);
    let payloads: Vec<String> =
        sqlx::query_scalar("SELECT payload FROM outbox WHERE case_number = $1 ORDER BY id")
            .bind(&cases[1])
            .fetch_all(store.pool())
            .await
            .unwrap();
    assert_eq!(payloads.len(), 2);
    assert!(payloads[1].contains("case_overdue"), "{payloads:?}");

    // Reports, then three looks that cannot judge: a person must check.
    let closure = ClosureSettings {
        max_attempts: 3,
        ..ClosureSettings::default()
    };
    let ev = |id: &str, status: Report| PlatformEvent {
        event_id: id.into(),
        case_number: cases[1].clone(),
        status,
        at: None,
        note: None,
    };
    for (id, r) in [("e1", Report::Dispatched), ("e2", Report::Handled)] {
        assert!(matches!(
            store
                .apply_platform(&ev(id, r), "platform", Some(id), &closure, late)
                .await
                .unwrap(),
            Applied::Applied(_)
        ));
    }
    // Handled: no longer overdue (the department says it is done).
    assert_eq!(store.overdue_count(late).await.unwrap(), 0);
    let dark = CheckOutcome::Unjudged {
        reason: "dark".into(),
    };
    for n in 0..3 {
        let s = store
            .record_check(
                &cases[1],
                &dark,
                None,
                "citywatch",
                &policy,
                &closure,
                late + n as f64,
            )
            .await
            .unwrap()
            .unwrap();
        assert_eq!(s.as_str(), if n < 2 { "handled" } else { "check_manual" });
    }
    assert!(store.waiting_checks().await.unwrap().is_empty());
    let s = store
        .record_check(
            &cases[1],
            &CheckOutcome::StillThere,
            None,
            "op",
            &policy,
            &closure,
            late + 10.0,
        )
        .await
        .unwrap();
    assert_eq!(s.unwrap().as_str(), "not_rectified");
    // Reopened: a new deadline from now, and its own reminder when it passes.
    assert!(deadline(&cases[1]).await > late + 10.0);
    assert_eq!(
        statuses(&cases[1]).await,
        [
            "filed",
            "overdue",
            "dispatched",
            "handled",
            "check_manual",
            "not_rectified"
        ]
    );
    // Recording again changes nothing.
    assert!(
        store
            .record_check(
                &cases[1],
                &CheckOutcome::Clear,
                None,
                "op",
                &policy,
                &closure,
                late + 11.0
            )
            .await
            .unwrap()
            .is_none()
    );

    // Sessions end when idle, whatever their lifetime.
    store
        .upsert_user(
            "idle",
            citywatch::store::users::Role::Viewer,
            "idle-password",
            T0,
        )
        .await
        .unwrap();
    let (token, _) = store
        .create_session("idle", 12.0 * 3600.0, T0)
        .await
        .unwrap();
    assert!(
        store
            .session(&token, T0 + 1700.0, 1800.0)
            .await
            .unwrap()
            .is_some()
    );
    assert!(
        store
            .session(&token, T0 + 3400.0, 1800.0)
            .await
            .unwrap()
            .is_some(),
        "kept alive by use"
    );
    assert!(
        store
            .session(&token, T0 + 5300.0, 1800.0)
            .await
            .unwrap()
            .is_none()
    );

    // A dead letter goes back in the queue with its key, audited.
    let row: (String, String) = sqlx::query_as(
        "SELECT id, idempotency_key FROM outbox WHERE case_number = $1 ORDER BY id LIMIT 1",
    )
    .bind(&cases[0])
    .fetch_one(store.pool())
    .await
    .unwrap();
    store
        .outbox_failed(&row.0, 10, true, late, "HTTP 500")
        .await
        .unwrap();
    let dead = store.dead_letters().await.unwrap();
    assert_eq!(dead.len(), 1);
    assert_eq!(
        (dead[0].event.as_str(), dead[0].last_error.as_deref()),
        ("case_filed", Some("HTTP 500"))
    );
    assert_eq!(store.requeue(None, "admin", late).await.unwrap(), 1);
    assert!(store.dead_letters().await.unwrap().is_empty());
    let due = store.due_outbox(late, 100).await.unwrap();
    let again = due.iter().find(|r| r.id == row.0).unwrap();
    assert_eq!(
        (again.idempotency_key.as_str(), again.attempts),
        (row.1.as_str(), 0)
    );

    // The audit chain holds, then an edit breaks it where it was made.
    let check = store.verify_audit().await.unwrap();
    assert_eq!(check.broken, None, "{check:?}");
    assert!(check.rows >= 5);
    sqlx::query("UPDATE audit_log SET detail = 'x' WHERE action = $1")
        .bind("outbox.requeue")
        .execute(store.pool())
        .await
        .unwrap();
    let broken = store.verify_audit().await.unwrap().broken.unwrap();
    assert!(broken.1.contains("edited"), "{broken:?}");
    tallies_match_the_rows(&store).await;
}

#[tokio::test]
async fn lifecycle_suite_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    lifecycle_suite(&format!(
        "sqlite://{}",
        dir.path().join("cases.db").display()
    ))
    .await;
}

#[tokio::test]
async fn lifecycle_suite_on_postgres() {
    lifecycle_suite(&postgres_url().await).await;
}

#[tokio::test]
async fn learning_suite_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    learning_suite(&format!(
        "sqlite://{}",
        dir.path().join("cases.db").display()
    ))
    .await;
}

#[tokio::test]
async fn learning_suite_on_postgres() {
    learning_suite(&postgres_url().await).await;
}

#[tokio::test]
async fn store_suite_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("cases.db").display());
    suite(&url).await;
}

#[tokio::test]
async fn store_suite_on_postgres() {
    suite(&postgres_url().await).await;
}

/// What the receiver does with a request.
#[derive(Clone, Copy, PartialEq)]
pub(crate) enum Mode {
    Ok,
    Fail,
    /// Answer after the client has given up (but still take the case).
    Slow,
}

#[derive(Default)]
pub(crate) struct Receiver {
    /// Requests answered with each mode, in order; then Ok forever.
    script: Vec<Mode>,
    pub(crate) requests: u32,
    /// Cases taken, by idempotency key: each must be taken once.
    pub(crate) taken: BTreeMap<String, u32>,
    pub(crate) bad_signatures: u32,
}

pub(crate) const SECRET: &str = "s3cret-for-tests";

pub(crate) async fn start_receiver(
    port: u16,
    script: Vec<Mode>,
) -> (Arc<Mutex<Receiver>>, tokio::task::JoinHandle<()>, u16) {
    use axum::http::{HeaderMap, StatusCode};
    let state = Arc::new(Mutex::new(Receiver {
        script,
        ..Default::default()
    }));
    let st = state.clone();
    let app = axum::Router::new().route(
        "/cases",
        axum::routing::post(move |headers: HeaderMap, body: axum::body::Bytes| {
            let st = st.clone();
            async move {
                let h = |k: &str| {
                    headers
                        .get(k)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_string()
                };
                let (mode, key) = {
                    let mut r = st.lock().unwrap();
                    let mode = r
                        .script
                        .get(r.requests as usize)
                        .copied()
                        .unwrap_or(Mode::Ok);
                    r.requests += 1;
                    if h("x-citywatch-signature")
                        != sign(SECRET, &h("x-citywatch-timestamp"), &body)
                    {
                        r.bad_signatures += 1;
                        return StatusCode::UNAUTHORIZED;
                    }
                    (mode, h("idempotency-key"))
                };
                match mode {
                    Mode::Fail => StatusCode::INTERNAL_SERVER_ERROR,
                    Mode::Slow => {
                        *st.lock().unwrap().taken.entry(key).or_default() += 1;
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        StatusCode::OK
                    }
                    Mode::Ok => {
                        // Idempotent: a key already taken is acknowledged, not taken again.
                        st.lock().unwrap().taken.entry(key).or_insert(1);
                        StatusCode::OK
                    }
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (state, task, port)
}

/// A SQLite store with `n` auto-filed cases waiting in the outbox.
async fn store_with_cases(n: u64) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::connect(&format!("sqlite://{}", dir.path().join("c.db").display()))
        .await
        .unwrap();
    for i in 0..n {
        store
            .record_capture(
                &capture(RuleKind::AbandonedVehicle, i, T0 + i as f64),
                None,
                FilingMode::Auto,
                &table(),
                &location(),
                T0,
            )
            .await
            .unwrap();
    }
    (dir, store)
}

fn forwarder(port: u16, max_attempts: u32) -> Forwarder {
    Forwarder::new(WebhookConfig {
        url: format!("http://127.0.0.1:{port}/cases"),
        secret: SECRET.into(),
        max_attempts,
        backoff_initial_s: 1.0,
        backoff_max_s: 60.0,
        timeout_s: 0.5,
    })
}

/// Runs delivery rounds on a clock that jumps past every backoff, until nothing is pending.
async fn deliver_all(f: &Forwarder, store: &Store, mut now: f64) -> f64 {
    for _ in 0..20 {
        f.deliver_due(store, now).await.unwrap();
        if store.counts().await.unwrap().outbox_pending == 0 {
            break;
        }
        now += 120.0;
    }
    now
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_and_slow_receivers_still_get_each_case_exactly_once() {
    let (_dir, store) = store_with_cases(5).await;
    // 500 three times, then one answer after the 0.5 s client timeout, then fine.
    let (rx, _task, port) =
        start_receiver(0, vec![Mode::Fail, Mode::Fail, Mode::Fail, Mode::Slow]).await;
    let f = forwarder(port, 10);
    deliver_all(&f, &store, T0).await;
    let n = store.counts().await.unwrap();
    assert_eq!(
        (n.outbox_delivered, n.outbox_pending, n.outbox_dead),
        (5, 0, 0)
    );
    let r = rx.lock().unwrap();
    assert_eq!(r.bad_signatures, 0);
    assert_eq!(r.taken.len(), 5, "{:?}", r.taken);
    assert!(r.taken.values().all(|&n| n == 1), "{:?}", r.taken);
    assert!(r.requests >= 9, "retries happened: {}", r.requests);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_was_down_gets_everything_when_it_returns() {
    let (_dir, store) = store_with_cases(3).await;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let f = forwarder(port, 10);
    // Down for several rounds: every attempt fails, nothing is lost.
    let mut now = T0;
    for _ in 0..4 {
        let d = f.deliver_due(&store, now).await.unwrap();
        assert_eq!(d.delivered, 0);
        now += 120.0;
    }
    assert_eq!(store.counts().await.unwrap().outbox_pending, 3);
    let (rx, _task, _) = start_receiver(port, vec![]).await;
    deliver_all(&f, &store, now).await;
    assert_eq!(store.counts().await.unwrap().outbox_delivered, 3);
    assert_eq!(rx.lock().unwrap().taken.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_that_always_fails_dead_letters_after_max_attempts() {
    let (_dir, store) = store_with_cases(1).await;
    let (_rx, _task, port) = start_receiver(0, vec![Mode::Fail; 100]).await;
    let f = forwarder(port, 3);
    deliver_all(&f, &store, T0).await;
    let n = store.counts().await.unwrap();
    assert_eq!(
        (n.outbox_delivered, n.outbox_pending, n.outbox_dead),
        (0, 0, 1)
    );
}

/// The review queue's claims: operators racing for the queue each get a different capture,
/// a claim holds for its time and then anyone may take it, a decision ends it, and another
/// operator's decision on a held capture is refused.
async fn claims_suite(url: &str) {
    use citywatch::store::query::CaptureFilter;
    let store = Arc::new(Store::connect(url).await.unwrap());
    let t = table();
    let mut keys = Vec::new();
    for i in 1..=12u64 {
        let c = capture(RuleKind::AbandonedVehicle, i, T0 + i as f64);
        let (key, _) = store
            .record_capture(&c, None, FilingMode::Review, &t, &location(), T0)
            .await
            .unwrap();
        keys.push(key);
    }
    let ttl = 300.0;
    let newest = CaptureFilter::default();

    // Ten operators claim at the same moment: ten different captures.
    let mut racing = Vec::new();
    for n in 0..10 {
        let store = store.clone();
        let f = newest.clone();
        racing.push(tokio::spawn(async move {
            store
                .claim_next(&format!("op{n}"), &f, T0, ttl)
                .await
                .unwrap()
                .unwrap()
        }));
    }
    let mut got = BTreeMap::new();
    for (n, r) in racing.into_iter().enumerate() {
        let c = r.await.unwrap();
        assert_eq!(c.expires_at, T0 + ttl);
        assert_eq!(c.capture.held_by(T0), Some(format!("op{n}").as_str()));
        got.insert(c.capture.id.clone(), n);
    }
    assert_eq!(got.len(), 10, "two operators got the same capture: {got:?}");

    // Claiming again returns what one holds, renewed; a new operator gets one of the two left,
    // the newest first.
    let again = store
        .claim_next("op0", &newest, T0 + 10.0, ttl)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(got[&again.capture.id], 0);
    assert_eq!(again.expires_at, T0 + 10.0 + ttl);
    let left: Vec<&String> = keys.iter().filter(|k| !got.contains_key(*k)).collect();
    assert_eq!(left.len(), 2);
    let late = store
        .claim_next("late", &newest, T0 + 10.0, ttl)
        .await
        .unwrap()
        .unwrap();
    let newest_left = left
        .iter()
        .max_by_key(|k| keys.iter().position(|x| x == **k))
        .unwrap();
    assert_eq!(&&late.capture.id, newest_left, "not the newest unclaimed");
    // Filters apply: nothing of another rule.
    let vendors = CaptureFilter {
        rule: Some("illegal_vendor".into()),
        ..Default::default()
    };
    assert!(
        store
            .claim_next("v", &vendors, T0, ttl)
            .await
            .unwrap()
            .is_none()
    );

    // Another operator's decision on a held capture is refused; the holder's goes through
    // and ends the claim.
    let op1s = got.iter().find(|(_, n)| **n == 1).unwrap().0.clone();
    let e = store
        .reject(&op1s, "op2", "duplicate", None, T0 + 20.0)
        .await
        .unwrap_err();
    assert!(
        matches!(e, StoreError::Claimed { ref holder, .. } if holder == "op1"),
        "{e}"
    );
    let e = store
        .confirm(&op1s, "op2", &t, &location(), T0 + 20.0)
        .await
        .unwrap_err();
    assert!(matches!(e, StoreError::Claimed { .. }), "{e}");
    store
        .reject(&op1s, "op1", "duplicate", None, T0 + 21.0)
        .await
        .unwrap();
    let row = store.capture(&op1s).await.unwrap().unwrap();
    assert_eq!(row.status, "rejected");
    assert_eq!(row.held_by(T0 + 21.0), None);

    // A release gives the capture back: the next claimant gets it.
    let op2s = got.iter().find(|(_, n)| **n == 2).unwrap().0.clone();
    assert_eq!(store.release_claims("op2", None).await.unwrap(), 1);
    let last = store
        .claim_next("op1", &newest, T0 + 30.0, ttl)
        .await
        .unwrap()
        .unwrap();
    let remaining: Vec<&String> = keys
        .iter()
        .filter(|k| **k == op2s || !got.contains_key(*k))
        .filter(|k| **k != late.capture.id)
        .collect();
    assert!(remaining.contains(&&last.capture.id), "{remaining:?}");

    // Past its time a claim holds nothing: the queue's whole remainder is claimable, and
    // deciding an expired claim's capture is anyone's to do.
    let op3s = got.iter().find(|(_, n)| **n == 3).unwrap().0.clone();
    let after = T0 + 30.0 + ttl + 1.0;
    store
        .confirm(&op3s, "op9", &t, &location(), after)
        .await
        .unwrap();
    let mut taken = std::collections::BTreeSet::new();
    while let Some(c) = store
        .claim_next(&format!("sweeper{}", taken.len()), &newest, after, ttl)
        .await
        .unwrap()
    {
        assert_eq!(c.capture.status, "pending_review");
        assert!(taken.insert(c.capture.id), "claimed twice");
    }
    // Twelve captures, two decided: ten pending, each claimed once.
    assert_eq!(taken.len(), 10, "{taken:?}");
}

#[tokio::test]
async fn claims_suite_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    claims_suite(&format!(
        "sqlite://{}",
        dir.path().join("cases.db").display()
    ))
    .await;
}

#[tokio::test]
async fn claims_suite_on_postgres() {
    claims_suite(&postgres_url().await).await;
}

/// A capture's plate (车牌号): stored with the capture, sent in the case's webhook payload,
/// corrected by an operator (audited, the reader's text kept), and cleared.
async fn plates_suite(url: &str) {
    let store = Store::connect(url).await.unwrap();
    let t = table();
    store
        .upsert_camera("vtest", "Campus", &location())
        .await
        .unwrap();
    let mut c = capture(RuleKind::AbandonedVehicle, 7, T0);
    c.candidate.plate = Some(citywatch::model::plate::VotedPlate {
        text: "京A12345".into(),
        confidence: 0.8,
        agree: 3,
        reads: 4,
        bbox: None,
    });
    let (key, case) = store
        .record_capture(&c, None, FilingMode::Auto, &t, &location(), T0)
        .await
        .unwrap();
    assert!(case.is_some());
    let row = store.capture(&key).await.unwrap().unwrap();
    assert_eq!(row.plate.as_deref(), Some("京A12345"));
    assert_eq!(row.plate_detail.as_ref().unwrap()["agree"], 3);
    assert_eq!(row.clone().masked().plate.as_deref(), Some("京A****5"));
    assert_eq!(row.clone().masked().plate_detail, None);
    let out = store.due_outbox(T0 + 1.0, 10).await.unwrap();
    let payload: serde_json::Value = serde_json::from_str(&out[0].payload).unwrap();
    assert_eq!(payload["plate"], "京A12345");

    // A capture without a plate has none, in the row and the payload.
    let (k2, _) = store
        .record_capture(
            &capture(RuleKind::AbandonedVehicle, 8, T0 + 10.0),
            None,
            FilingMode::Review,
            &t,
            &location(),
            T0 + 10.0,
        )
        .await
        .unwrap();
    assert_eq!(store.capture(&k2).await.unwrap().unwrap().plate, None);

    // An operator's correction: stored, the reader's text kept, audited.
    assert!(
        store
            .correct_plate(&key, Some("京A12346"), "op1", T0 + 100.0)
            .await
            .unwrap()
    );
    assert!(
        store
            .correct_plate(&key, Some("京A12347"), "op2", T0 + 200.0)
            .await
            .unwrap()
    );
    let row = store.capture(&key).await.unwrap().unwrap();
    assert_eq!(row.plate.as_deref(), Some("京A12347"));
    let d = row.plate_detail.unwrap();
    assert_eq!(
        (d["read"].as_str(), d["corrected_by"].as_str()),
        (Some("京A12345"), Some("op2"))
    );
    let rows = store
        .audit_rows(&citywatch::store::audit::AuditFilter {
            action: Some("plate.correct".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    assert!(rows.iter().all(|r| r.subject == key));
    assert_eq!(
        store.verify_audit().await.unwrap().broken,
        None,
        "the chain holds"
    );
    // Cleared; and no such capture.
    assert!(
        store
            .correct_plate(&key, None, "op1", T0 + 300.0)
            .await
            .unwrap()
    );
    assert_eq!(store.capture(&key).await.unwrap().unwrap().plate, None);
    assert!(!store.correct_plate("nope", None, "op1", T0).await.unwrap());
}

#[tokio::test]
async fn plates_suite_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    plates_suite(&format!(
        "sqlite://{}",
        dir.path().join("cases.db").display()
    ))
    .await;
}

#[tokio::test]
async fn plates_suite_on_postgres() {
    plates_suite(&postgres_url().await).await;
}
