//! Learning from the operators' verdicts, end to end: the real binary replays a real clip
//! through the real detector (its feature map gives the embeddings) into a SQLite case
//! database; an operator's rejection is remembered; the next day's clip of the same scene is
//! replayed and the lookalike is recorded as a learned suppression linking to the rejected
//! capture, while a different vehicle on the same spot is still filed; undo puts the capture
//! in the review queue; a reopened database still has the memory.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::common::*;

/// A pipeline of one camera (the works-car road of the scenario view) whose footage is `clip`.
pub(crate) fn pipeline(dir: &Path, clip: &str) -> std::path::PathBuf {
    let repo = repo();
    let text = format!(
        r#"
[detect]
model = "ssd_mobilenet_v2_coco"
models_dir = "{repo}/models"

[replay]
start = "2026-01-05T09:00:00+08:00"

[cases]
database = "sqlite://{dir}/unused.db"
categories = "{repo}/pipelines/categories/default.toml"
spool = "{dir}/spool"

[[cameras]]
id = "works_road"
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
        dir = dir.display(),
    );
    let p = dir.join(format!("{clip}.toml"));
    std::fs::write(&p, text).unwrap();
    p
}

pub(crate) fn replay(config: &Path, db: &str) -> Vec<Value> {
    let out = run_ok(
        Command::new(bin())
            .arg("replay")
            .arg(config)
            .args(["--suppressed", "--db", db])
            .current_dir(repo())
            .env("CITYWATCH_LOG", "warn"),
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn a_rejected_works_car_is_suppressed_the_next_day_with_a_link_undo_files_it_and_memory_survives() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cases.db").display());
    let rt = tokio::runtime::Runtime::new().unwrap();
    let store = || rt.block_on(citywatch::store::Store::connect(&db)).unwrap();

    // Day 1: the works car is captured and waits for review.
    let day1 = replay(&pipeline(dir.path(), "visit_1"), &db);
    let caps: Vec<&Value> = day1.iter().filter(|l| l["type"] == "capture").collect();
    assert_eq!(caps.len(), 1, "{day1:?}");
    let s = store();
    let pending = rt.block_on(s.list_captures(&Default::default())).unwrap();
    assert_eq!(pending.len(), 1);
    let first = pending[0].id.clone();
    // The operator rejects it: the district lets that car stop there.
    rt.block_on(s.reject(&first, "op", "not_a_problem", None, 1000.0))
        .unwrap();
    let memory = citywatch::learn::VerdictMemory::from_entries(
        Default::default(),
        rt.block_on(s.memory_entries()).unwrap(),
    );
    assert_eq!(memory.len(), 1);
    drop(s);

    // Day 2: the same car again (moved a little, duller light), then the van.
    let day2 = replay(&pipeline(dir.path(), "visit_2"), &db);
    let learned: Vec<&Value> = day2
        .iter()
        .filter(|l| l["reason"] == "resembles_rejected")
        .collect();
    assert_eq!(learned.len(), 1, "{day2:?}");
    assert_eq!(learned[0]["type"], "suppressed");
    assert_eq!(learned[0]["resembles"], first.as_str(), "{day2:?}");
    assert!(learned[0]["similarity"].as_f64().unwrap() >= 0.9);
    assert!(learned[0]["confirm_s"].as_f64().unwrap() < 40.0);
    // The van is another vehicle: filed for review as usual.
    let filed: Vec<&Value> = day2.iter().filter(|l| l["type"] == "capture").collect();
    assert_eq!(filed.len(), 1, "{day2:?}");
    assert!(filed[0]["start_s"].as_f64().unwrap() >= 44.0);

    let s = store();
    let all = rt
        .block_on(s.list_captures(&citywatch::store::query::CaptureFilter {
            status: Some("learned".into()),
            ..Default::default()
        }))
        .unwrap();
    assert_eq!(all.len(), 1);
    let sup = all[0].clone();
    assert_eq!(sup.resembles.as_deref(), Some(first.as_str()));
    // Not in the review queue...
    let queue = rt.block_on(s.list_captures(&Default::default())).unwrap();
    assert!(queue.iter().all(|c| c.id != sup.id));
    // ...until an operator undoes the suppression.
    rt.block_on(s.undo_learned(&sup.id, "op", 2000.0)).unwrap();
    let queue = rt.block_on(s.list_captures(&Default::default())).unwrap();
    assert!(queue.iter().any(|c| c.id == sup.id), "{queue:?}");
    // Undoing twice is refused; the audit log has the undo.
    assert!(rt.block_on(s.undo_learned(&sup.id, "op", 2001.0)).is_err());
    let audited: i64 = rt.block_on(async {
        sqlx::query_scalar::<_, i64>(
            "SELECT COUNT(*) FROM audit_log WHERE action = 'learn.undo' AND subject = ?",
        )
        .bind(&sup.id)
        .fetch_one(s.pool())
        .await
        .unwrap()
    });
    assert_eq!(audited, 1);
    drop(s);

    // A restart: the memory is in the database.
    let s = store();
    let memory = citywatch::learn::VerdictMemory::from_entries(
        Default::default(),
        rt.block_on(s.memory_entries()).unwrap(),
    );
    assert_eq!(memory.len(), 1);
    assert_eq!(memory.entries().next().unwrap().capture, first);
    // Replaying day 2 again gives the same output (the memory only read).
    let again = replay(&pipeline(dir.path(), "visit_2"), &db);
    assert_eq!(day2, again);
    // Forgetting the memory entry (audited) ends the learning.
    assert!(rt.block_on(s.forget_memory(&first, "sup", 3000.0)).unwrap());
    assert!(rt.block_on(s.memory_entries()).unwrap().is_empty());
}
