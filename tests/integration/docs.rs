//! docs/rules.md states each default once, taken from the code: every number it quotes for a
//! rule, an episode or a limit is checked here against the value the code uses, so the page
//! cannot drift from what citywatch does.

use std::path::Path;

use citywatch::config::{PipelineConfig, RuleKind};

fn rules_md() -> String {
    std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/rules.md"))
        .expect("docs/rules.md")
}

/// A camera with one zone per rule and nothing else set: what a user who writes the least
/// config gets.
fn defaults() -> PipelineConfig {
    let text = r#"
[[cameras]]
id = "a"
url = "rtsp://127.0.0.1:8554/a"
[[cameras.zones]]
id = "road"
kind = "no_parking"
polygon = [[0.5, 0.4], [1.0, 0.4], [1.0, 0.9], [0.5, 0.9]]
[[cameras.zones]]
id = "lawn"
kind = "no_vending"
polygon = [[0.0, 0.4], [0.4, 0.4], [0.4, 0.9], [0.0, 0.9]]
[[cameras.zones]]
id = "bin"
kind = "bin"
polygon = [[0.7, 0.8], [0.9, 0.8], [0.9, 0.95], [0.7, 0.95]]
[[cameras.rules]]
rule = "abandoned_vehicle"
zones = ["road"]
[[cameras.rules]]
rule = "illegal_vendor"
zones = ["lawn"]
[[cameras.rules]]
rule = "overflowing_bin"
zones = ["bin"]
"#;
    PipelineConfig::parse(text, Path::new(".")).expect("the least config parses")
}

/// A number as the doc writes it: no trailing zeros.
fn n(v: f64) -> String {
    let s = format!("{v:.3}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

#[test]
fn rules_md_quotes_the_defaults_the_code_uses() {
    let doc = rules_md();
    let cfg = defaults();
    let cam = &cfg.cameras[0];
    let rule = |k: RuleKind| cam.rules.iter().find(|r| r.kind == k).expect("rule");
    let vendor = rule(RuleKind::IllegalVendor);
    let bin = rule(RuleKind::OverflowingBin);
    let vehicle = rule(RuleKind::AbandonedVehicle);
    let ep = &cfg.episodes;
    let lim = &cfg.limits;
    use citywatch::detect::closer;
    use citywatch::rules::{engine, stall};
    use citywatch::scene::{ground, structure};
    let quotes: Vec<(String, &str)> = vec![
        (
            format!("(`analysis_fps` {})", n(cam.analysis_fps)),
            "the analysis rate",
        ),
        (
            format!("`episodes.iou` {}", n(ep.iou as f64)),
            "the episode match",
        ),
        (
            format!(
                "at\n  least {} fresh detections",
                citywatch::episodes::MIN_HITS
            ),
            "fresh hits",
        ),
        (
            format!(
                "At most {} open episodes per camera",
                citywatch::episodes::MAX_OPEN
            ),
            "the bound",
        ),
        (
            format!(
                "`episodes.clear_frames` analysed frames in a row ({},",
                ep.clear_frames
            ),
            "clear frames",
        ),
        (
            format!(
                "`episodes.signature_distance` ({})",
                n(ep.signature_distance as f64)
            ),
            "signature",
        ),
        (format!("`episodes.grace_s` ({} s)", n(ep.grace_s)), "grace"),
        (
            format!("`episodes.vehicle_grace_s` ({} s)", n(ep.vehicle_grace_s)),
            "vehicle grace",
        ),
        (
            format!("`limits.captures_per_hour` ({})", n(lim.captures_per_hour)),
            "captures per hour",
        ),
        (format!("`limits.burst` ({})", n(lim.burst)), "burst"),
        (
            format!("`limits.deferred_max` ({})", lim.deferred_max),
            "queue",
        ),
        (
            format!(
                "`limits.deferred_expiry_s`\n  ({} s)",
                n(lim.deferred_expiry_s)
            ),
            "expiry",
        ),
        (
            format!("`limits.place_iou` {}", n(lim.place_iou as f64)),
            "place IoU",
        ),
        (
            format!("`limits.cooldown_s` ({} s)", n(lim.cooldown_s)),
            "cooldown",
        ),
        (
            format!("`dwell_s` (default {} h)", vehicle.dwell.as_secs() / 3600),
            "vehicle dwell",
        ),
        (
            format!("`min_score` ({})", n(vehicle.min_score as f64)),
            "vehicle score",
        ),
        (
            format!("`dwell_s` (default {} s, from", vendor.dwell.as_secs()),
            "vendor dwell",
        ),
        (
            format!("`min_score` ({}), and:", n(vendor.min_score as f64)),
            "vendor score",
        ),
        (
            format!("at most {} × the stall's scale", n(stall::LINK_GAP as f64)),
            "the link gap",
        ),
        (
            format!("for {} s, or half the rule's", n(stall::CO_OCCUR_S)),
            "co-occurrence",
        ),
        (
            format!("for at least {} s (sightings", n(engine::TENDED_FOR_S)),
            "tending",
        ),
        (
            format!(
                "less than {} s apart are one run",
                n(engine::PERSON_NEAR_WITHIN_S)
            ),
            "a run",
        ),
        (
            format!("within the last {} s", n(engine::PERSON_NEAR_WITHIN_S)),
            "lately",
        ),
        (
            format!(
                "cells of about {} px ({} to {} a side)",
                n(ground::CELL_PX as f64),
                ground::MIN_SIDE,
                ground::MAX_SIDE
            ),
            "the ground's grid",
        ),
        (
            format!("still for {} frames with nobody", ground::STILL_FRAMES),
            "the ground's reference",
        ),
        (
            format!("of at least {} cells", ground::MIN_BLOB_CELLS),
            "a blob",
        ),
        (
            format!("found for {} s,", n(ground::GONE_AFTER_S)),
            "a blob gone",
        ),
        (
            format!(
                "lay still (half its cells as in the frame before) in at least {} frames and in at least {} of",
                citywatch::episodes::MIN_HITS,
                n(engine::STILL_MOST as f64)
            ),
            "lying still",
        ),
        (
            format!(
                "spreads at least {} of its attendant's height",
                n(engine::MIN_SPREAD as f64)
            ),
            "the spread",
        ),
        (
            format!(
                "What nobody tends for {} s past the dwell",
                n(engine::ABSORB_AFTER_S)
            ),
            "absorbed",
        ),
        (
            format!(
                "`episodes.fixture_learn_s`\n    ({} s)",
                n(ep.fixture_learn_s)
            ),
            "learning",
        ),
        (
            format!(
                "`episodes.fixture_after_s` ({})",
                if ep.fixture_after_s == 172_800.0 {
                    "two days"
                } else {
                    "?"
                }
            ),
            "stayed",
        ),
        (
            format!(
                "least {} times larger (linearly)",
                n(closer::MIN_GAIN as f64)
            ),
            "closer gain",
        ),
        (
            format!(
                "{} model pixel per frame pixel for vehicles",
                n(closer::VEHICLE_DETAIL as f64)
            ),
            "vehicle detail",
        ),
        (
            format!("{} for a\n  stall's goods", n(closer::GOODS_DETAIL as f64)),
            "goods detail",
        ),
        (
            format!("up to {} times coarser", n(closer::TILE_OVER as f64)),
            "tile coarseness",
        ),
        (
            format!("at most {}×{})", closer::MAX_TILES, closer::MAX_TILES),
            "tiles",
        ),
        (
            format!("grown by {} % a side", n(closer::MARGIN as f64 * 100.0)),
            "closer margin",
        ),
        (
            format!(
                "on every {}rd detector run",
                citywatch::analysis::CROPS_EVERY
            ),
            "closer turn",
        ),
        (
            format!("(now under {} of it)", n(structure::REMOVED_BELOW as f64)),
            "removal",
        ),
        (
            format!(
                "at least {} times taller than wide",
                n(structure::PERSON_ASPECT as f64)
            ),
            "person",
        ),
        (
            format!(
                "`change_share` (0.25) for `dwell_s` (default\n{} s)",
                bin.dwell.as_secs()
            ),
            "bin dwell",
        ),
        (
            format!("`change_share` ({})", n(bin.change_share as f64)),
            "bin share",
        ),
        (
            format!("a {}×{} grid", structure::SIDE, structure::SIDE),
            "bin grid",
        ),
    ];
    let missing: Vec<String> = quotes
        .iter()
        .filter(|(q, _)| !doc.contains(q.as_str()))
        .map(|(q, what)| format!("{what}: {q:?}"))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/rules.md does not quote these as the code has them:\n{}",
        missing.join("\n")
    );
}
