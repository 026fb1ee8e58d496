//! Timeline tests for each rule, driven by synthetic detections on the pipeline clock, and
//! property tests of the whole episodes → rules → limits chain.

use citywatch::analysis::{CaptureFinder, Event};
use citywatch::config::PipelineConfig;
use citywatch::detect::{BBox, Detection, ObjectKind};
use citywatch::episodes::persist::{JsonFileStore, NoStore};
use citywatch::ingest::Frame;
use citywatch::ratelimit::SuppressionReason;
use proptest::prelude::*;

/// 2026-01-05 09:00:00 +08:00 (a Monday morning), as Unix seconds.
const T0: f64 = 1_767_574_800.0;

const CAMERA: &str = r#"
[episodes]
grace_s = 30
vehicle_grace_s = 60
[limits]
captures_per_hour = 100
burst = 10
[[cameras]]
id = "cam"
url = "rtsp://127.0.0.1/cam"
timezone = "+08:00"
[[cameras.zones]]
id = "kerb"
kind = "no_parking"
polygon = [[0.0, 0.5], [0.5, 0.5], [0.5, 1.0], [0.0, 1.0]]
[[cameras.zones]]
id = "square"
kind = "no_vending"
polygon = [[0.5, 0.0], [1.0, 0.0], [1.0, 0.5], [0.5, 0.5]]
[[cameras.zones]]
id = "market"
kind = "vending_allowed"
polygon = [[0.85, 0.0], [1.0, 0.0], [1.0, 0.2], [0.85, 0.2]]
[[cameras.zones]]
id = "bins"
kind = "bin"
polygon = [[0.5, 0.6], [0.9, 0.6], [0.9, 0.95], [0.5, 0.95]]
[[cameras.rules]]
rule = "abandoned_vehicle"
zones = ["kerb"]
dwell_s = 600
[[cameras.rules]]
rule = "illegal_vendor"
zones = ["square"]
dwell_s = 300
active_hours = "07:00-21:00"
[[cameras.rules]]
rule = "overflowing_bin"
zones = ["bins"]
dwell_s = 120
"#;

fn config() -> PipelineConfig {
    PipelineConfig::parse(CAMERA, std::path::Path::new("/")).unwrap()
}

/// A camera whose scene was learned empty a day before T0 (so what the timelines put in
/// front of it is not taken for a fixture).
fn analysis(model_sees_overflow: bool) -> CaptureFinder {
    let mut a = fresh_analysis(model_sees_overflow);
    a.step(T0 - 86_400.0, &[], None);
    a
}

/// A camera on its first run: what stands in its first seconds is learned as fixtures.
fn fresh_analysis(model_sees_overflow: bool) -> CaptureFinder {
    let cfg = config();
    CaptureFinder::new(
        &cfg.cameras[0],
        &cfg,
        Box::new(NoStore),
        model_sees_overflow,
    )
    .unwrap()
}

fn det(kind: ObjectKind, bbox: BBox) -> Detection {
    Detection {
        label: format!("{kind:?}").to_lowercase().into(),
        kind,
        score: 0.8,
        bbox,
        embedding: None,
    }
}

const CAR: BBox = [0.1, 0.6, 0.3, 0.8];
const STALL: BBox = [0.6, 0.1, 0.7, 0.3];
const STALL_IN_MARKET: BBox = [0.88, 0.05, 0.95, 0.15];
const SELLER: BBox = [0.7, 0.05, 0.75, 0.3];

/// A 64x48 frame: grey background, a block of colour `car` where CAR is, and the bin zone
/// filled with `bin`.
fn frame(car: Option<[u8; 3]>, bin: u8) -> Frame {
    let (w, h) = (64usize, 48usize);
    let mut v = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let on_car = (CAR[0]..CAR[2]).contains(&fx) && (CAR[1]..CAR[3]).contains(&fy);
            let px = if let (Some(c), true) = (car, on_car) {
                c
            } else if (0.5..0.9).contains(&fx) && (0.6..0.95).contains(&fy) {
                // A checker pattern whose contrast is the bin's "fullness".
                let c = if (x + y) % 2 == 0 {
                    120 + bin / 2
                } else {
                    120 - bin / 2
                };
                [c, c, c]
            } else {
                [120, 120, 120]
            };
            v.extend_from_slice(&px);
        }
    }
    Frame::from_rgb("cam".into(), w as u32, h as u32, v)
}

/// Runs a timeline: at each (seconds from T0, detections, frame) step; returns the events
/// with their step time.
fn run(
    a: &mut CaptureFinder,
    steps: impl IntoIterator<Item = (f64, Vec<Detection>, Option<Frame>)>,
) -> Vec<(f64, Event)> {
    let mut out = Vec::new();
    for (t, dets, f) in steps {
        for e in a.step(T0 + t, &dets, f.as_ref()) {
            out.push((t, e));
        }
    }
    out
}

/// Every `every` seconds from `from` to `to` inclusive, except inside `gap`.
fn times(from: f64, to: f64, every: f64, gap: Option<(f64, f64)>) -> Vec<f64> {
    let mut v = Vec::new();
    let mut t = from;
    while t <= to + 1e-9 {
        if gap.is_none_or(|(a, b)| t < a || t > b) {
            v.push(t);
        }
        t += every;
    }
    v
}

fn captures(events: &[(f64, Event)]) -> Vec<(f64, String)> {
    events
        .iter()
        .filter_map(|(t, e)| match e {
            Event::Capture(c) => Some((*t, c.candidate.rule.as_str().to_string())),
            _ => None,
        })
        .collect()
}

#[test]
fn abandoned_vehicle_timelines() {
    // (name, gap in the detections, whether the car is in the gap's frames, expected
    // capture times)
    type Case = (&'static str, Option<(f64, f64)>, bool, Vec<f64>);
    let cases: [Case; 4] = [
        ("dwell reached", None, true, vec![600.0]),
        // Not detected from 200 to 240 but still there: its episode holds.
        (
            "missed within the grace",
            Some((200.0, 240.0)),
            true,
            vec![600.0],
        ),
        // Not detected from 200 to 290, longer than the grace, but plainly still there in
        // the frames: its structure holds the episode, the dwell goes on.
        (
            "missed by the detector longer than the grace",
            Some((200.0, 290.0)),
            true,
            vec![600.0],
        ),
        // Gone from 200 to 290: the empty kerb is seen, the episode ends; a car at 300 is
        // a new episode with its own dwell.
        ("gone and back", Some((200.0, 290.0)), false, vec![900.0]),
    ];
    for (name, gap, there, want) in cases {
        let mut a = analysis(false);
        let steps = times(0.0, 1000.0, 10.0, None).into_iter().map(|t| {
            let hidden = gap.is_some_and(|(a, b)| t >= a && t <= b);
            let dets = if hidden {
                vec![]
            } else {
                vec![det(ObjectKind::Vehicle, CAR)]
            };
            let car = (!hidden || there).then_some([40, 140, 150]);
            (t, dets, Some(frame(car, 0)))
        });
        let got = captures(&run(&mut a, steps));
        let want: Vec<(f64, String)> = want
            .into_iter()
            .map(|t| (t, "abandoned_vehicle".into()))
            .collect();
        assert_eq!(got, want, "{name}");
    }
}

#[test]
fn a_different_vehicle_in_the_same_spot_is_a_new_episode() {
    let mut a = analysis(false);
    // A teal car for 400 s, then a red one in exactly the same place.
    let steps = times(0.0, 1100.0, 10.0, None).into_iter().map(|t| {
        let colour = if t < 400.0 {
            [40, 140, 150]
        } else {
            [190, 30, 30]
        };
        (
            t,
            vec![det(ObjectKind::Vehicle, CAR)],
            Some(frame(Some(colour), 0)),
        )
    });
    let got = captures(&run(&mut a, steps));
    // Not at 600 (the teal car left at 400); the red car's own 600 s end at 1000.
    assert_eq!(got, vec![(1000.0, "abandoned_vehicle".to_string())]);
}

#[test]
fn illegal_vendor_timelines() {
    let person = || det(ObjectKind::Person, SELLER);
    let stall = |b| det(ObjectKind::StallPart, b);
    // Stall with a seller from 09:00: captured after 300 s.
    let mut a = analysis(false);
    let got = run(
        &mut a,
        times(0.0, 400.0, 10.0, None)
            .into_iter()
            .map(|t| (t, vec![stall(STALL), person()], None)),
    );
    assert_eq!(captures(&got), vec![(300.0, "illegal_vendor".to_string())]);

    // No one near the stall: goods left out, not vending.
    let mut a = analysis(false);
    let got = run(
        &mut a,
        times(0.0, 400.0, 10.0, None)
            .into_iter()
            .map(|t| (t, vec![stall(STALL)], None)),
    );
    assert!(got.is_empty(), "{got:?}");

    // Inside the whitelisted vending point: never.
    let mut a = analysis(false);
    let seller_there = det(ObjectKind::Person, [0.86, 0.02, 0.9, 0.18]);
    let got = run(
        &mut a,
        times(0.0, 400.0, 10.0, None)
            .into_iter()
            .map(|t| (t, vec![stall(STALL_IN_MARKET), seller_there.clone()], None)),
    );
    assert!(got.is_empty(), "{got:?}");

    // Outside 07:00-21:00 (starting 21:00 local): recorded as suppressed, not captured.
    let mut a = analysis(false);
    let late = 12.0 * 3600.0;
    let got = run(
        &mut a,
        times(late, late + 400.0, 10.0, None)
            .into_iter()
            .map(|t| (t, vec![stall(STALL), person()], None)),
    );
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(
        matches!(&got[0].1, Event::Suppressed(s) if s.reason == SuppressionReason::OutsideHours)
    );
}

#[test]
fn overflowing_bin_by_reference_image_and_by_model_class() {
    // Reference mode: 60 s clean, then the bin zone's texture changes (rubbish piles up).
    let mut a = analysis(false);
    let steps = times(0.0, 400.0, 10.0, None).into_iter().map(|t| {
        let fullness = if t < 60.0 { 0 } else { 120 };
        // A pedestrian crosses the bins from 100 to 140: those frames do not count.
        let dets = if (100.0..=140.0).contains(&t) {
            vec![det(ObjectKind::Person, [0.55, 0.55, 0.75, 0.95])]
        } else {
            vec![]
        };
        (t, dets, Some(frame(None, fullness)))
    });
    let got = captures(&run(&mut a, steps));
    assert_eq!(got, vec![(180.0, "overflowing_bin".to_string())]);

    // Model mode: the detector reports bin_overflow itself.
    let mut a = analysis(true);
    let steps = times(0.0, 300.0, 10.0, None).into_iter().map(|t| {
        (
            t,
            vec![det(ObjectKind::BinOverflow, [0.6, 0.7, 0.7, 0.8])],
            None,
        )
    });
    assert_eq!(
        captures(&run(&mut a, steps)),
        vec![(120.0, "overflowing_bin".to_string())]
    );
}

#[test]
fn a_restart_in_the_middle_of_the_dwell_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config();
    let cam = &cfg.cameras[0];
    let steps = |from, to| {
        times(from, to, 10.0, None)
            .into_iter()
            .map(|t| {
                (
                    t,
                    vec![det(ObjectKind::Vehicle, CAR)],
                    Some(frame(Some([40, 140, 150]), 0)),
                )
            })
            .collect::<Vec<_>>()
    };
    let mut first = CaptureFinder::new(
        cam,
        &cfg,
        Box::new(JsonFileStore::new(dir.path()).unwrap()),
        false,
    )
    .unwrap();
    assert!(run(&mut first, steps(0.0, 300.0)).is_empty());
    drop(first); // the process stops
    // 30 s later it is back: the episode resumes, and the capture comes at 600, not 930.
    let mut second = CaptureFinder::new(
        cam,
        &cfg,
        Box::new(JsonFileStore::new(dir.path()).unwrap()),
        false,
    )
    .unwrap();
    assert_eq!(second.tracker().open().len(), 1);
    let got = captures(&run(&mut second, steps(330.0, 1000.0)));
    assert_eq!(got, vec![(600.0, "abandoned_vehicle".to_string())]);
}

#[test]
fn a_corrupt_state_for_one_camera_is_set_aside_and_the_others_resume() {
    let dir = tempfile::tempdir().unwrap();
    // Two cameras of the same view: "cam" and "cam2".
    let text = CAMERA.to_string()
        + &CAMERA[CAMERA.find("[[cameras]]").unwrap()..].replace("id = \"cam\"", "id = \"cam2\"");
    let cfg = PipelineConfig::parse(&text, std::path::Path::new("/")).unwrap();
    let steps = |from, to| {
        times(from, to, 10.0, None)
            .into_iter()
            .map(|t| {
                (
                    t,
                    vec![det(ObjectKind::Vehicle, CAR)],
                    Some(frame(Some([40, 140, 150]), 0)),
                )
            })
            .collect::<Vec<_>>()
    };
    let open = |i: usize| {
        CaptureFinder::new(
            &cfg.cameras[i],
            &cfg,
            Box::new(JsonFileStore::new(dir.path()).unwrap()),
            false,
        )
        .unwrap()
    };
    for i in 0..2 {
        let mut a = open(i);
        assert!(run(&mut a, steps(0.0, 300.0)).is_empty());
    }
    // cam2's file is cut short (a disk that filled mid-write, a hand edit).
    let bad = dir.path().join("cam2.episodes.json");
    let text = std::fs::read(&bad).unwrap();
    std::fs::write(&bad, &text[..text.len() / 2]).unwrap();
    // Back 30 s later: cam resumes its dwell; cam2 starts fresh, its file set aside.
    let mut cam = open(0);
    let mut cam2 = open(1);
    assert!(cam.quarantined().is_none());
    let aside = cam2
        .quarantined()
        .expect("cam2's state set aside")
        .to_string();
    assert!(std::path::Path::new(&aside).exists(), "{aside}");
    assert_eq!(cam.tracker().open().len(), 1);
    assert!(cam2.tracker().open().is_empty());
    assert_eq!(
        captures(&run(&mut cam, steps(330.0, 1000.0))),
        vec![(600.0, "abandoned_vehicle".to_string())]
    );
    assert_eq!(
        captures(&run(&mut cam2, steps(330.0, 1000.0))),
        vec![(930.0, "abandoned_vehicle".to_string())],
        "cam2's dwell started again at 330 s"
    );
}

proptest! {
    /// Every episode that met a rule ends as exactly one capture or one recorded
    /// suppression (a duplicate, or a deferral that expired), or is still waiting for a token
    /// at the end; it is deferred at most once. None that did not meet it produces anything.
    #[test]
    fn every_episode_that_met_a_rule_is_resolved_exactly_once(
        // Three parking spots; per 10 s step, whether each car is seen.
        seen in proptest::collection::vec(proptest::collection::vec(proptest::bool::weighted(0.85), 3), 10..150),
        per_hour in 1.0f64..20.0,
    ) {
        let mut cfg = config();
        cfg.limits.captures_per_hour = per_hour;
        cfg.limits.burst = 1.0;
        let mut a = CaptureFinder::new(&cfg.cameras[0], &cfg, Box::new(NoStore), false).unwrap();
        let spots: [BBox; 3] = [[0.05, 0.6, 0.15, 0.7], [0.2, 0.6, 0.3, 0.7], [0.35, 0.8, 0.45, 0.9]];
        let mut events = Vec::new();
        let mut episodes = std::collections::BTreeMap::new();
        for (i, row) in seen.iter().enumerate() {
            let t = T0 + i as f64 * 10.0;
            let dets: Vec<Detection> = row.iter().zip(&spots).filter(|(s, _)| **s).map(|(_, b)| det(ObjectKind::Vehicle, *b)).collect();
            events.extend(a.step(t, &dets, None));
            for e in a.tracker().open() {
                episodes.insert(e.id, e.dwell());
            }
        }
        let mut ended = std::collections::BTreeMap::new();
        let mut deferred = std::collections::BTreeMap::new();
        for e in &events {
            let (c, deferral) = match e {
                Event::Capture(c) => (&c.candidate, false),
                Event::Suppressed(s) => (&s.candidate, s.reason == SuppressionReason::RateLimit),
                Event::Checked(_) => unreachable!("no closure checks here"),
            };
            let m = if deferral { &mut deferred } else { &mut ended };
            *m.entry(c.episode.unwrap()).or_insert(0) += 1;
        }
        let waiting: Vec<u64> = a.limiter().deferred().iter().map(|d| d.candidate.episode.unwrap()).collect();
        for (id, dwell) in episodes {
            let met = dwell >= 600.0;
            let want = if met && !waiting.contains(&id) { 1 } else { 0 };
            prop_assert_eq!(ended.get(&id).copied().unwrap_or(0), want, "episode {} dwell {}", id, dwell);
            prop_assert!(deferred.get(&id).copied().unwrap_or(0) <= met as u32, "episode {} deferred twice", id);
        }
    }
}

fn labelled(label: &str, kind: ObjectKind, bbox: BBox) -> Detection {
    Detection {
        label: label.into(),
        ..det(kind, bbox)
    }
}

#[test]
fn nobody_sitting_is_a_vendor_and_fixtures_are_never_stalls() {
    // A bench put in the square after the scene was learned, a person sitting on it for
    // 400 s: sitting is not attending.
    let bench = labelled("bench", ObjectKind::StallPart, [0.6, 0.2, 0.8, 0.3]);
    let sitter = det(ObjectKind::Person, [0.65, 0.05, 0.72, 0.28]);
    let mut a = analysis(false);
    let got = run(
        &mut a,
        times(60.0, 460.0, 10.0, None)
            .into_iter()
            .map(|t| (t, vec![bench.clone(), sitter.clone()], None)),
    );
    assert!(got.is_empty(), "{got:?}");
    assert!(a.tracker().state.fixtures.is_empty());

    // A bench there from the first look is only proposed as a fixture: someone standing by
    // it for 400 s is not a vendor (seats alone are no stall), and nothing becomes a fixture
    // until an operator accepts it.
    let desk = citywatch::analysis::SceneDesk::default();
    let mut a = fresh_analysis(false).with_desk(desk.clone());
    let stander = det(ObjectKind::Person, [0.81, 0.1, 0.85, 0.3]);
    let got = run(
        &mut a,
        times(0.0, 400.0, 10.0, None)
            .into_iter()
            .map(|t| (t, vec![bench.clone(), stander.clone()], None)),
    );
    assert!(got.is_empty(), "{got:?}");
    assert!(a.tracker().state.fixtures.is_empty());
    assert_eq!(a.tracker().state.proposed.len(), 1);
    assert_eq!(
        desk.proposed("cam").len(),
        1,
        "published for the cameras page"
    );
    // The operator accepts it: a fixture from the next frame on.
    desk.send(
        "cam",
        citywatch::analysis::SceneCommand::AnswerProposed {
            bbox: bench.bbox,
            accept: true,
        },
    );
    // A fruit crate set down beside it, with a person tending it, is a stall.
    let crate_ = labelled("orange", ObjectKind::StallPart, [0.55, 0.38, 0.62, 0.46]);
    let seller = det(ObjectKind::Person, [0.62, 0.3, 0.66, 0.48]);
    let got = run(
        &mut a,
        times(410.0, 800.0, 10.0, None)
            .into_iter()
            .map(|t| (t, vec![bench.clone(), crate_.clone(), seller.clone()], None)),
    );
    assert_eq!(a.tracker().state.fixtures.len(), 1);
    assert!(a.tracker().state.proposed.is_empty());
    assert_eq!(
        captures(&got),
        vec![(710.0, "illegal_vendor".to_string())],
        "{got:?}"
    );
    // One stall, and the bench (a fixture now) is not part of it.
    let stall = got
        .iter()
        .find_map(|(_, e)| match e {
            Event::Capture(c) => Some(c.candidate.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(stall.label, "stall");
    assert_eq!(stall.parts, vec!["orange".to_string()]);
}

#[test]
fn a_stall_met_before_its_hours_is_filed_when_they_open() {
    // The vendor rule is active 07:00-21:00 (+08:00); T0 is 09:00, so 06:50 is T0 - 7800.
    let mut a = analysis(false);
    let start = -7800.0;
    let got = run(
        &mut a,
        times(start, start + 1200.0, 10.0, None)
            .into_iter()
            .map(|t| {
                (
                    t,
                    vec![
                        labelled("orange", ObjectKind::StallPart, STALL),
                        det(ObjectKind::Person, SELLER),
                    ],
                    None,
                )
            }),
    );
    // Met at 06:55 (300 s dwell): deferred, recorded once; filed at 07:00 sharp.
    let kinds: Vec<(f64, bool)> = got
        .iter()
        .map(|(t, e)| (*t - start, matches!(e, Event::Capture(_))))
        .collect();
    assert_eq!(kinds, vec![(300.0, false), (600.0, true)], "{got:?}");
    assert!(
        matches!(&got[0].1, Event::Suppressed(s) if s.reason == SuppressionReason::OutsideHours)
    );
}

#[test]
fn operators_commands_reach_the_cameras_scene_memory() {
    use citywatch::analysis::{SceneCommand, SceneDesk};
    let desk = SceneDesk::default();
    let mut a = analysis(false).with_desk(desk.clone());
    a.step(T0, &[], Some(&frame(None, 0)));
    desk.send(
        "cam",
        SceneCommand::AddFixture {
            label: "bench".into(),
            bbox: STALL,
        },
    );
    a.step(T0 + 1.0, &[], Some(&frame(None, 0)));
    assert_eq!(a.tracker().state.fixtures.len(), 1);
    assert_eq!(desk.fixtures("cam").len(), 1);
    assert!(desk.pending("cam").is_empty());
    // A stall on it, attended for 400 s: not a vendor while it is a fixture.
    let got = run(
        &mut a,
        times(10.0, 410.0, 10.0, None).into_iter().map(|t| {
            (
                t,
                vec![
                    labelled("orange", ObjectKind::StallPart, STALL),
                    det(ObjectKind::Person, SELLER),
                ],
                None,
            )
        }),
    );
    assert!(got.is_empty(), "{got:?}");
    desk.send("cam", SceneCommand::RemoveFixtures { bbox: STALL });
    a.step(T0 + 420.0, &[], None);
    assert!(desk.fixtures("cam").is_empty());
    // Clean now: the bin zone's reference becomes this frame's view of it.
    desk.send(
        "cam",
        SceneCommand::MarkClean {
            zone: "bins".into(),
        },
    );
    a.step(T0 + 430.0, &[], Some(&frame(None, 120)));
    let refs = &a.tracker().state.zones["bins"];
    assert_eq!(refs.marked_clean, Some(T0 + 430.0));
    assert!(refs.day.is_some() || refs.night.is_some());
}

#[test]
fn an_admin_takes_a_re_aimed_cameras_view_and_its_rules_resume_on_it() {
    use citywatch::analysis::{SceneCommand, SceneDesk};
    let desk = SceneDesk::default();
    let mut a = analysis(false).with_desk(desk.clone());
    // Paving seen from the preset, then from 40 px to the side (the dome turned).
    let home = shifted_ground(0);
    let turned = shifted_ground(40);
    let mut t = T0;
    let mut feed = |a: &mut CaptureFinder, f: &Frame, n: usize| {
        for _ in 0..n {
            t += 1.0;
            a.step(t, &[], Some(f));
        }
    };
    feed(&mut a, &home, 3);
    assert!(a.tracker().state.view.day.is_some() || a.tracker().state.view.night.is_some());
    feed(&mut a, &turned, 3);
    assert!(a.off_view(), "a turned camera is off its view");
    // Still off: nothing but an admin's word makes the new view the camera's.
    feed(&mut a, &turned, 20);
    assert!(a.off_view());
    desk.send("cam", SceneCommand::TakeView);
    feed(&mut a, &turned, 1);
    assert!(!a.off_view(), "on view once the admin took it");
    assert!(desk.pending("cam").is_empty());
    feed(&mut a, &turned, 5);
    assert!(!a.off_view());
    // The new view is the reference now: the old preset is off it.
    feed(&mut a, &home, 3);
    assert!(
        a.off_view(),
        "the old preset registers to the new reference"
    );
}

/// Paving as [`ground_frame`] draws it, seen `dx` pixels further right.
fn shifted_ground(dx: usize) -> Frame {
    let (w, h) = (320usize, 240usize);
    let mut v = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let x = x + dx;
            let (bx, by) = (x / 16, y / 16);
            let joint = x % 16 < 2 || y % 16 < 2;
            let shade = if (bx * 7 + by * 13) % 5 < 2 { 140 } else { 175 };
            v.extend_from_slice(&if joint { [90; 3] } else { [shade; 3] });
        }
    }
    Frame::from_rgb("cam".into(), w as u32, h as u32, v)
}

/// A 320×240 frame of paving (16-px blocks of two shades, dark joints) with `paint` boxes
/// of a colour on it, each with a print of its own (a 3-px checker).
fn ground_frame(paint: &[(BBox, [u8; 3])]) -> Frame {
    let (w, h) = (320usize, 240usize);
    let mut v = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        for x in 0..w {
            let (fx, fy) = (x as f32 / w as f32, y as f32 / h as f32);
            let (bx, by) = (x / 16, y / 16);
            let joint = x % 16 < 2 || y % 16 < 2;
            let shade = if (bx * 7 + by * 13) % 5 < 2 { 140 } else { 175 };
            let mut px = if joint { [90; 3] } else { [shade; 3] };
            for (b, c) in paint {
                if fx >= b[0] && fx < b[2] && fy >= b[1] && fy < b[3] {
                    let k = if (x / 3 + y / 3) % 2 == 0 { 1.0 } else { 0.6 };
                    px = c.map(|v| (v as f32 * k) as u8);
                }
            }
            v.extend_from_slice(&px);
        }
    }
    Frame::from_rgb("cam".into(), w as u32, h as u32, v)
}

/// Goods on a tarp in the square, with no label the detector knows.
const TARP: BBox = [0.56, 0.12, 0.68, 0.3];
const TARP_PAINT: (BBox, [u8; 3]) = (TARP, [40, 90, 160]);

fn unlabelled(events: &[(f64, Event)]) -> Vec<(f64, citywatch::model::Candidate)> {
    events
        .iter()
        .filter_map(|(t, e)| match e {
            Event::Capture(c) => Some((*t, c.candidate.clone())),
            _ => None,
        })
        .collect()
}

#[test]
fn unlabelled_goods_tended_for_the_dwell_are_one_stall() {
    let mut a = analysis(false);
    let got = run(
        &mut a,
        times(0.0, 500.0, 5.0, None).into_iter().map(|t| {
            if t < 30.0 {
                (t, vec![], Some(ground_frame(&[])))
            } else {
                (
                    t,
                    vec![det(ObjectKind::Person, SELLER)],
                    Some(ground_frame(&[TARP_PAINT])),
                )
            }
        }),
    );
    let caps = unlabelled(&got);
    assert_eq!(caps.len(), 1, "{got:?}");
    let (t, c) = &caps[0];
    assert_eq!(*t, 330.0, "the dwell from when the goods were set down");
    assert_eq!(c.label, "stall");
    assert_eq!(c.parts, vec!["unlabelled goods".to_string()]);
    assert_eq!(c.episode, None);
    assert!(c.embedding.is_some(), "the verdict memory can judge it");
    assert!(
        citywatch::model::iou(&c.bbox, &TARP) > 0.6,
        "{:?} covers the goods",
        c.bbox
    );
}

#[test]
fn unlabelled_goods_nobody_tends_are_no_stall_and_join_the_scene() {
    let mut a = analysis(false);
    let got = run(
        &mut a,
        times(0.0, 1000.0, 5.0, None).into_iter().map(|t| {
            let paint: &[(BBox, [u8; 3])] = if t < 30.0 { &[] } else { &[TARP_PAINT] };
            (t, vec![], Some(ground_frame(paint)))
        }),
    );
    assert!(unlabelled(&got).is_empty(), "{got:?}");
    // Past the dwell and ten minutes more, untended: part of the scene now.
    assert!(a.tracker().state.grounds["square"].blobs.is_empty());
    // A passer-by stopping next to it later makes nothing of it.
    let got = run(
        &mut a,
        times(1005.0, 1100.0, 5.0, None).into_iter().map(|t| {
            (
                t,
                vec![det(ObjectKind::Person, SELLER)],
                Some(ground_frame(&[TARP_PAINT])),
            )
        }),
    );
    assert!(unlabelled(&got).is_empty(), "{got:?}");
}

#[test]
fn a_person_with_a_bag_on_a_bench_is_no_vendor() {
    // A bench (seen by the detector, there from the start) with someone sitting on it for
    // ten minutes, their bags beside them on the paving.
    let bench = labelled("bench", ObjectKind::StallPart, [0.55, 0.2, 0.8, 0.32]);
    let sitter = det(ObjectKind::Person, [0.62, 0.06, 0.68, 0.3]);
    let bags = ([0.69, 0.2, 0.8, 0.31], [120, 60, 30]);
    let mut a = analysis(false);
    let got = run(
        &mut a,
        times(0.0, 700.0, 5.0, None).into_iter().map(|t| {
            if t < 30.0 {
                (t, vec![bench.clone()], Some(ground_frame(&[])))
            } else {
                (
                    t,
                    vec![bench.clone(), sitter.clone()],
                    Some(ground_frame(&[bags])),
                )
            }
        }),
    );
    assert!(unlabelled(&got).is_empty(), "{got:?}");
    // The same bags with the same person standing over them: that is tending.
    let stander = det(ObjectKind::Person, [0.62, 0.0, 0.68, 0.3]);
    let mut a = analysis(false);
    let got = run(
        &mut a,
        times(0.0, 700.0, 5.0, None).into_iter().map(|t| {
            if t < 30.0 {
                (t, vec![], Some(ground_frame(&[])))
            } else {
                (t, vec![stander.clone()], Some(ground_frame(&[bags])))
            }
        }),
    );
    assert_eq!(unlabelled(&got).len(), 1, "{got:?}");
}

#[test]
fn a_labelled_stall_on_unlabelled_goods_is_one_capture() {
    // The tarp is set down and tended; two minutes later fruit on it is found too.
    let mut a = analysis(false);
    let got = run(
        &mut a,
        times(0.0, 900.0, 5.0, None).into_iter().map(|t| {
            let mut dets = vec![];
            if t >= 30.0 {
                dets.push(det(ObjectKind::Person, SELLER));
            }
            if t >= 150.0 {
                dets.push(labelled(
                    "orange",
                    ObjectKind::StallPart,
                    [0.58, 0.15, 0.64, 0.25],
                ));
            }
            let paint: &[(BBox, [u8; 3])] = if t < 30.0 { &[] } else { &[TARP_PAINT] };
            (t, dets, Some(ground_frame(paint)))
        }),
    );
    let caps = unlabelled(&got);
    assert_eq!(caps.len(), 1, "{got:?}");
    // Fruit first, then the tarp around it is found: still one.
    let mut a = analysis(false);
    let got = run(
        &mut a,
        times(0.0, 900.0, 5.0, None).into_iter().map(|t| {
            let mut dets = vec![];
            if t >= 30.0 {
                dets.push(det(ObjectKind::Person, SELLER));
                dets.push(labelled(
                    "orange",
                    ObjectKind::StallPart,
                    [0.58, 0.15, 0.64, 0.25],
                ));
            }
            let paint: &[(BBox, [u8; 3])] = if t < 30.0 { &[] } else { &[TARP_PAINT] };
            (t, dets, Some(ground_frame(paint)))
        }),
    );
    let caps = unlabelled(&got);
    assert_eq!(caps.len(), 1, "{got:?}");
    assert_eq!(caps[0].1.parts, vec!["orange".to_string()]);
}
