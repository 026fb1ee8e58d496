//! Patrol (轮巡): visiting cameras in turn when the video platform caps how many streams may be
//! pulled at once. The [`Scheduler`] is pure: it is told the time, which cameras have open
//! episodes and which visits have ended, and answers which visits to stop and which to start.
//! `run` carries out its answers (`run::patrol`).
//!
//! - Each platform has a cap on concurrent pulls; a visit holds a slot from its start until its
//!   stream has actually disconnected, so the cap is never exceeded.
//! - A camera is due `revisit_s` after its last visit began; one with open episodes in its
//!   rule zones is due `revisit_s / hot_factor` after, so dwell timers keep running on
//!   evidence.
//! - Free slots go to cameras due within one visit's length, earliest due first (config order
//!   breaks ties): starting a little early keeps visits from bunching up and starting late.
//! - `continuous` cameras hold a slot for good.

pub mod visits;

use std::collections::BTreeMap;

pub use crate::model::live::{CameraPatrol, PlatformLoad};

/// One camera as the scheduler sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct PatrolCamera {
    pub id: String,
    pub platform: String,
    pub visit_s: f64,
    pub revisit_s: f64,
    pub continuous: bool,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    Idle,
    Visiting {
        since: f64,
    },
    /// Told to stop; its slot is held until the stream has closed.
    Stopping,
}

pub struct Scheduler {
    cams: Vec<PatrolCamera>,
    phase: Vec<Phase>,
    status: Vec<CameraPatrol>,
    caps: BTreeMap<String, usize>,
    hot_factor: f64,
}

/// What to do now.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    pub stop: Vec<String>,
    pub start: Vec<String>,
}

/// A visit may start this much later than its period and still count as on time (the
/// scheduler looks twice a second and streams take a moment to close).
const LATE_SLACK_S: f64 = 2.0;

impl Scheduler {
    pub fn new(cams: Vec<PatrolCamera>, caps: BTreeMap<String, usize>, hot_factor: f64) -> Self {
        let n = cams.len();
        Self {
            cams,
            phase: vec![Phase::Idle; n],
            status: vec![CameraPatrol::default(); n],
            caps,
            hot_factor: hot_factor.max(1.0),
        }
    }

    pub fn cameras(&self) -> &[PatrolCamera] {
        &self.cams
    }

    /// Per platform: demand against cap.
    pub fn loads(&self) -> Vec<PlatformLoad> {
        self.caps
            .iter()
            .map(|(platform, &cap)| {
                let on: Vec<&PatrolCamera> = self
                    .cams
                    .iter()
                    .filter(|c| &c.platform == platform)
                    .collect();
                let continuous = on.iter().filter(|c| c.continuous).count();
                let patrolled = on.iter().filter(|c| !c.continuous);
                let demand = continuous as f64
                    + patrolled
                        .clone()
                        .map(|c| c.visit_s / c.revisit_s)
                        .sum::<f64>();
                let visits: f64 = patrolled.map(|c| c.visit_s).sum();
                let free = cap.saturating_sub(continuous);
                PlatformLoad {
                    platform: platform.clone(),
                    cap,
                    cameras: on.len(),
                    continuous,
                    demand,
                    feasible: demand <= cap as f64 + 1e-9,
                    round_s: if free == 0 {
                        f64::INFINITY
                    } else {
                        visits / free as f64
                    },
                }
            })
            .collect()
    }

    pub fn status(&self) -> BTreeMap<String, CameraPatrol> {
        self.cams
            .iter()
            .zip(&self.status)
            .map(|(c, s)| (c.id.clone(), s.clone()))
            .collect()
    }

    /// Marks whether a camera has open episodes.
    pub fn set_hot(&mut self, id: &str, hot: bool) {
        if let Some(i) = self.index(id) {
            self.status[i].hot = hot;
        }
    }

    fn index(&self, id: &str) -> Option<usize> {
        self.cams.iter().position(|c| c.id == id)
    }

    /// A visit's stream has closed: its slot is free.
    pub fn ended(&mut self, id: &str) {
        if let Some(i) = self.index(id) {
            self.phase[i] = Phase::Idle;
            self.status[i].visiting = false;
        }
    }

    fn due(&self, i: usize) -> f64 {
        let c = &self.cams[i];
        match self.status[i].last_start {
            None => f64::NEG_INFINITY,
            Some(t) if self.status[i].hot => t + c.revisit_s / self.hot_factor,
            Some(t) => t + c.revisit_s,
        }
    }

    /// What to stop and start at `now`.
    pub fn tick(&mut self, now: f64) -> Plan {
        let mut plan = Plan::default();
        for (i, c) in self.cams.iter().enumerate() {
            if let Phase::Visiting { since } = self.phase[i]
                && !c.continuous
                && now - since >= c.visit_s
            {
                self.phase[i] = Phase::Stopping;
                plan.stop.push(c.id.clone());
            }
        }
        let mut used: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, c) in self.cams.iter().enumerate() {
            if self.phase[i] != Phase::Idle {
                *used.entry(c.platform.as_str()).or_default() += 1;
            }
        }
        // Continuous cameras first, then cameras due within one visit's length, earliest due
        // first: a free slot starts a visit a little early rather than letting visits bunch
        // up and start late.
        let mut want: Vec<(bool, f64, usize)> = (0..self.cams.len())
            .filter(|&i| self.phase[i] == Phase::Idle)
            .filter(|&i| self.cams[i].continuous || self.due(i) <= now + self.cams[i].visit_s)
            .map(|i| (!self.cams[i].continuous, self.due(i), i))
            .collect();
        want.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)).then(a.2.cmp(&b.2)));
        let mut started = Vec::new();
        for (_, _, i) in want {
            let c = &self.cams[i];
            let cap = self.caps.get(&c.platform).copied().unwrap_or(usize::MAX);
            let u = used.entry(c.platform.as_str()).or_default();
            if *u >= cap {
                continue;
            }
            *u += 1;
            started.push(i);
        }
        for i in started {
            let s = &mut self.status[i];
            if let Some(prev) = s.last_start {
                let gap = now - prev;
                s.max_gap_s = s.max_gap_s.max(gap);
                if gap > self.cams[i].revisit_s + LATE_SLACK_S {
                    s.late_visits += 1;
                }
            }
            s.last_start = Some(now);
            s.visits += 1;
            s.visiting = true;
            self.phase[i] = Phase::Visiting { since: now };
            plan.start.push(self.cams[i].id.clone());
        }
        plan
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cam(id: &str, visit: f64, period: f64) -> PatrolCamera {
        PatrolCamera {
            id: id.into(),
            platform: "p".into(),
            visit_s: visit,
            revisit_s: period,
            continuous: false,
        }
    }

    fn caps(n: usize) -> BTreeMap<String, usize> {
        BTreeMap::from([("p".to_string(), n)])
    }

    /// Runs the scheduler on a 0.5 s tick for `until` seconds; visits end at once when told.
    fn simulate(s: &mut Scheduler, until: f64, hot: &[&str]) -> Vec<(f64, String)> {
        let mut starts = Vec::new();
        let mut t = 0.0;
        while t <= until {
            for id in hot {
                s.set_hot(id, true);
            }
            let plan = s.tick(t);
            for id in &plan.stop {
                s.ended(id);
            }
            let concurrent = s.status().values().filter(|c| c.visiting).count();
            assert!(concurrent <= 2, "cap exceeded at {t}: {concurrent}");
            for id in plan.start {
                starts.push((t, id));
            }
            t += 0.5;
        }
        starts
    }

    #[test]
    fn six_cameras_on_two_slots_are_each_visited_every_period() {
        // Demand 6 × 5/20 = 1.5 ≤ 2.
        let cams: Vec<_> = (0..6).map(|i| cam(&format!("c{i}"), 5.0, 20.0)).collect();
        let mut s = Scheduler::new(cams, caps(2), 3.0);
        assert!(s.loads()[0].feasible);
        assert_eq!(s.loads()[0].demand, 1.5);
        let starts = simulate(&mut s, 120.0, &[]);
        // The first round: two at a time, in config order.
        let first: Vec<_> = starts
            .iter()
            .take(6)
            .map(|(t, id)| (*t, id.as_str()))
            .collect();
        assert_eq!(
            first,
            // A slot frees on the tick after its visit is told to stop.
            vec![
                (0.0, "c0"),
                (0.0, "c1"),
                (5.5, "c2"),
                (5.5, "c3"),
                (11.0, "c4"),
                (11.0, "c5")
            ]
        );
        for (id, st) in s.status() {
            assert_eq!(st.late_visits, 0, "{id}: {st:?}");
            assert!(st.max_gap_s <= 20.0 + LATE_SLACK_S, "{id}: {st:?}");
            assert!(st.visits >= 6, "{id}: {st:?}");
        }
    }

    #[test]
    fn a_camera_with_open_episodes_is_visited_more_often() {
        let cams: Vec<_> = (0..6).map(|i| cam(&format!("c{i}"), 5.0, 30.0)).collect();
        let mut s = Scheduler::new(cams, caps(2), 3.0);
        simulate(&mut s, 180.0, &["c3"]);
        let st = s.status();
        let hot = st["c3"].visits;
        let others = st.iter().filter(|(k, _)| *k != "c3").map(|(_, v)| v.visits);
        assert!(others.clone().all(|v| v * 2 <= hot), "hot {hot}: {st:?}");
        assert!(st.values().all(|v| v.late_visits == 0), "{st:?}");
    }

    #[test]
    fn an_impossible_cap_is_reported_with_its_figures() {
        // 6 × 10/20 = 3 pulls needed, 2 allowed: a round takes 60/2 = 30 s.
        let cams: Vec<_> = (0..6).map(|i| cam(&format!("c{i}"), 10.0, 20.0)).collect();
        let mut s = Scheduler::new(cams, caps(2), 3.0);
        let l = &s.loads()[0];
        assert!(!l.feasible);
        assert_eq!((l.demand, l.round_s), (3.0, 30.0));
        simulate(&mut s, 120.0, &[]);
        // Every camera is still visited, late, and round robin keeps it fair.
        let st = s.status();
        assert!(
            st.values().all(|v| v.late_visits > 0 && v.visits >= 3),
            "{st:?}"
        );
    }

    #[test]
    fn continuous_cameras_hold_a_slot_and_a_slow_close_holds_its_slot() {
        let mut cams: Vec<_> = (0..3).map(|i| cam(&format!("c{i}"), 5.0, 20.0)).collect();
        cams[2].continuous = true;
        let mut s = Scheduler::new(cams, caps(2), 3.0);
        let p = s.tick(0.0);
        assert_eq!(p.start, vec!["c2", "c0"]);
        // c0's visit ends, but its stream has not closed yet: c1 must wait.
        let p = s.tick(5.0);
        assert_eq!(p.stop, vec!["c0"]);
        assert!(p.start.is_empty());
        assert!(s.tick(6.0).start.is_empty());
        s.ended("c0");
        assert_eq!(s.tick(6.5).start, vec!["c1"]);
        // The continuous camera is never stopped.
        assert!(!s.tick(100.0).stop.contains(&"c2".to_string()));
        assert_eq!(s.loads()[0].continuous, 1);
    }
}
