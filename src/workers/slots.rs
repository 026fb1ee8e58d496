//! Patrol across workers (`[patrol]` with `--worker`): each platform's stream cap is shared by
//! the live workers as one lease per slot (`patrol-slot/<platform>/<i>`). A visit holds a slot
//! lease and its camera's lease from before its stream opens until after it has closed, so
//! however many workers there are, no more than the cap's streams are open on a platform.
//! A dead worker's slots and cameras come back when their leases expire (the TTL); a worker
//! cut off from the database for nearly a TTL stops its visits itself, before its leases can
//! lapse and be taken.
//!
//! Every heartbeat a worker ends its visits that have run their length (episodes saved,
//! then the camera lease and the slot given back), then takes free slots up to its fair share
//! of the platform's (`ceil(slots / live workers)`) for the cameras most overdue across the
//! fleet. When a camera is due comes from the shared visit history (`patrol_visits`): its
//! last visit's start plus `revisit_s`, divided by `hot_factor` when that visit ended with
//! episodes or a closure check to watch.

use std::collections::BTreeMap;

use crate::config::{CameraConfig, PatrolSettings};

/// A slot lease's name.
pub fn slot_name(platform: &str, i: usize) -> String {
    format!("patrol-slot/{platform}/{i}")
}

/// The slot leases of each platform: its cap less the continuous cameras on it (those run
/// as fixed cameras and hold a stream for good).
pub fn slots(p: &PatrolSettings, cameras: &[CameraConfig]) -> BTreeMap<String, Vec<String>> {
    p.caps
        .iter()
        .map(|(platform, cap)| {
            let continuous = cameras
                .iter()
                .filter(|c| c.enabled && c.continuous && &c.platform == platform)
                .count();
            let n = cap.saturating_sub(continuous);
            (
                platform.clone(),
                (0..n).map(|i| slot_name(platform, i)).collect(),
            )
        })
        .collect()
}

/// When a camera is next due, from its last visit (None: never visited, due now).
pub fn due(last: Option<(f64, bool)>, revisit_s: f64, hot_factor: f64) -> f64 {
    match last {
        None => f64::NEG_INFINITY,
        Some((start, true)) => start + revisit_s / hot_factor.max(1.0),
        Some((start, false)) => start + revisit_s,
    }
}

/// The cameras of `platform` to visit now, most overdue first (config order breaks ties):
/// not held by anyone and due within one visit's length.
pub fn candidates<'a>(
    cams: &'a [CameraConfig],
    platform: &str,
    p: &PatrolSettings,
    last: &BTreeMap<String, (f64, bool)>,
    held: impl Fn(&str) -> bool,
    now: f64,
) -> Vec<&'a CameraConfig> {
    let mut out: Vec<(f64, usize, &CameraConfig)> = cams
        .iter()
        .enumerate()
        .filter(|(_, c)| c.platform == platform && !held(&c.id))
        .map(|(i, c)| {
            let revisit = c.revisit_s.unwrap_or(p.revisit_s);
            (due(last.get(&c.id).copied(), revisit, p.hot_factor), i, c)
        })
        .filter(|(d, _, c)| *d <= now + c.visit_s.unwrap_or(p.visit_s))
        .collect();
    out.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    out.into_iter().map(|(_, _, c)| c).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cam(id: &str, platform: &str, continuous: bool) -> CameraConfig {
        let mut c = CameraConfig::for_file(id, std::path::Path::new("x.mp4"), 1.0);
        c.platform = platform.into();
        c.continuous = continuous;
        c
    }

    fn settings() -> PatrolSettings {
        PatrolSettings {
            caps: BTreeMap::from([("a".to_string(), 2), ("b".to_string(), 1)]),
            visit_s: 20.0,
            revisit_s: 300.0,
            hot_factor: 3.0,
        }
    }

    #[test]
    fn continuous_cameras_take_their_streams_out_of_the_slots() {
        let cams = [
            cam("x", "a", true),
            cam("y", "a", false),
            cam("z", "b", false),
        ];
        let s = slots(&settings(), &cams);
        assert_eq!(s["a"], vec!["patrol-slot/a/0"]);
        assert_eq!(s["b"], vec!["patrol-slot/b/0"]);
    }

    #[test]
    fn the_most_overdue_free_camera_goes_first_and_hot_ones_come_back_sooner() {
        let cams = [
            cam("c1", "a", false),
            cam("c2", "a", false),
            cam("c3", "a", false),
            cam("c4", "b", false),
        ];
        let p = settings();
        // c1 visited at 0 (due 300), c2 never (due now), c3 at 100 but hot (due 200).
        let last = BTreeMap::from([
            ("c1".to_string(), (0.0, false)),
            ("c3".to_string(), (100.0, true)),
        ]);
        let ids = |v: Vec<&CameraConfig>| v.iter().map(|c| c.id.clone()).collect::<Vec<_>>();
        assert_eq!(
            ids(candidates(&cams, "a", &p, &last, |_| false, 150.0)),
            ["c2"]
        );
        // 20 s before c3 is due, it may start (a visit's length early).
        assert_eq!(
            ids(candidates(&cams, "a", &p, &last, |_| false, 180.0)),
            ["c2", "c3"]
        );
        assert_eq!(
            ids(candidates(&cams, "a", &p, &last, |_| false, 290.0)),
            ["c2", "c3", "c1"]
        );
        // A camera another worker holds is not a candidate.
        assert_eq!(
            ids(candidates(&cams, "a", &p, &last, |id| id == "c2", 290.0)),
            ["c3", "c1"]
        );
    }
}
