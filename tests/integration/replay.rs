//! `citywatch replay` end to end: real footage, real decoding, the real default detector,
//! episodes, rules and limits, with stream time as the clock.

use std::process::Command;

use citywatch::detect::decode::iou;

use crate::common::*;

fn replay(db: &str) -> String {
    let out = run_ok(
        Command::new(bin())
            .args(["replay", "pipelines/demo.toml", "--loop", "3", "--db", db])
            .current_dir(repo())
            .env("CITYWATCH_LOG", "warn"),
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn replaying_vtest_three_times_files_the_van_and_the_car_once_each_and_repeats_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}", dir.path().join("cases.db").display());
    let first = replay(&db);
    let lines: Vec<serde_json::Value> = first
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let parked: Vec<&serde_json::Value> = lines
        .iter()
        .filter(|l| l["rule"] == "abandoned_vehicle")
        .collect();
    let b = |v: &serde_json::Value| -> [f32; 4] {
        std::array::from_fn(|i| v["box"][i].as_f64().unwrap() as f32)
    };
    // Boxes of the van and the car as seen by eye (768x576 pixels), normalised.
    let van = [652.0 / 768.0, 44.0 / 576.0, 724.0 / 768.0, 100.0 / 576.0];
    let car = [734.0 / 768.0, 50.0 / 576.0, 768.0 / 768.0, 92.0 / 576.0];
    for (name, truth) in [("van", van), ("car", car)] {
        let n = parked.iter().filter(|l| iou(&b(l), &truth) >= 0.5).count();
        assert_eq!(n, 1, "{name}: {first}");
    }
    assert_eq!(parked.len(), 2, "{first}");
    for p in &parked {
        assert_eq!(p["camera"], "vtest");
        assert_eq!(p["zone"], "car_park");
        // Parked from the first frame; confirmed once the 60 s demo dwell had passed.
        assert_eq!(p["start_s"], 0.0);
        assert_eq!(p["confirm_s"], 60.0);
        assert_eq!(p["confirm"], "2026-01-05T09:01:00+08:00");
    }

    let second = replay(&db);
    assert_eq!(first, second, "replays differ");

    // Both replays stored into one database: the two captures are there once, waiting for
    // an operator (the demo files every rule for review).
    let rt = tokio::runtime::Runtime::new().unwrap();
    let counts = rt.block_on(async {
        citywatch::store::Store::connect(&db)
            .await
            .unwrap()
            .counts()
            .await
            .unwrap()
    });
    assert_eq!(
        (counts.captures, counts.pending_review, counts.cases),
        (2, 2, 0)
    );
}
