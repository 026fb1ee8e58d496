//! The closure check (核实) on a camera: when the platform reports a case handled, the
//! camera that captured it looks at the place again and judges it the way the case's rule
//! judges (see `RuleEngine::place_sight`).
//!
//! - [`SharedChecks`]: the checks waiting, by camera. The running process loads them from
//!   the database and reloads them; the platform callback adds to them at once.
//! - [`Checker`]: one camera's looks. A look starts at the first frame at or after the
//!   check's due time. The place seen clear without a break for `clear_s` closes the case;
//!   a look that reaches `window_s` having seen the problem (and judged at least as many
//!   frames as it could not) reopens it as not rectified; otherwise it could not judge
//!   (dark, occluded, off view) and the check is tried again later, then handed to a person.

use std::collections::HashMap;

use serde::Serialize;

use crate::config::ClosureSettings;
pub use crate::model::closure::{CheckOutcome, CheckRequest, SharedChecks, Sight};

/// What a finished look found, at the frame that decided it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckResult {
    pub request: CheckRequest,
    pub outcome: CheckOutcome,
    /// The deciding frame's time.
    pub t: f64,
}

/// One look in progress.
#[derive(Debug, Clone)]
struct Look {
    due_at: f64,
    started: f64,
    clear_since: Option<f64>,
    judged: u32,
    present: u32,
    unjudged: u32,
    reason: &'static str,
}

impl Look {
    fn new(due_at: f64, started: f64) -> Self {
        Self {
            due_at,
            started,
            clear_since: None,
            judged: 0,
            present: 0,
            unjudged: 0,
            reason: "nothing judged",
        }
    }
}

/// One camera's looks.
pub struct Checker {
    settings: ClosureSettings,
    looks: HashMap<String, Look>,
    /// Checks this camera decided, by case, with the due time they were decided for: not
    /// looked at again until the shared list moves them on.
    decided: HashMap<String, f64>,
}

impl Checker {
    pub fn new(settings: ClosureSettings) -> Self {
        Self {
            settings,
            looks: HashMap::new(),
            decided: HashMap::new(),
        }
    }

    /// One analysed frame at `t`: each due check's sight of its place, through `sight`.
    pub fn step(
        &mut self,
        t: f64,
        requests: &[CheckRequest],
        mut sight: impl FnMut(&CheckRequest) -> Sight,
    ) -> Vec<CheckResult> {
        let s = &self.settings;
        self.looks
            .retain(|case, _| requests.iter().any(|r| &r.case_number == case));
        self.decided.retain(|case, due| {
            requests
                .iter()
                .any(|r| &r.case_number == case && r.due_at == *due)
        });
        let mut out = Vec::new();
        for r in requests {
            if t < r.due_at || self.decided.contains_key(&r.case_number) {
                continue;
            }
            let look = self
                .looks
                .entry(r.case_number.clone())
                .or_insert_with(|| Look::new(r.due_at, t));
            if look.due_at != r.due_at {
                // Moved on (a new report): start again.
                *look = Look::new(r.due_at, t);
            }
            match sight(r) {
                Sight::Present => {
                    look.present += 1;
                    look.judged += 1;
                    look.clear_since = None;
                }
                Sight::Clear => {
                    look.judged += 1;
                    look.clear_since.get_or_insert(t);
                }
                Sight::Unsure => look.clear_since = None,
                Sight::Unjudgeable(why) => {
                    look.unjudged += 1;
                    look.reason = why;
                    look.clear_since = None;
                }
            }
            let outcome = if look.clear_since.is_some_and(|c| t - c >= s.clear_s) {
                Some(CheckOutcome::Clear)
            } else if t - look.started >= s.window_s {
                Some(if look.present > 0 && look.judged >= look.unjudged {
                    CheckOutcome::StillThere
                } else {
                    CheckOutcome::Unjudged {
                        reason: look.reason.to_string(),
                    }
                })
            } else {
                None
            };
            if let Some(outcome) = outcome {
                tracing::info!(case = %r.case_number, camera = %r.camera, outcome = outcome.as_str(), judged = look.judged, present = look.present, unjudged = look.unjudged, "closure check decided");
                self.looks.remove(&r.case_number);
                self.decided.insert(r.case_number.clone(), r.due_at);
                out.push(CheckResult {
                    request: r.clone(),
                    outcome,
                    t,
                });
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(due: f64) -> CheckRequest {
        CheckRequest {
            case_number: "CW1".into(),
            camera: "cam".into(),
            rule: "abandoned_vehicle".into(),
            zone: "road".into(),
            label: "car".into(),
            bbox: [0.1, 0.1, 0.3, 0.3],
            package: None,
            due_at: due,
            attempts: 0,
        }
    }

    fn settings() -> ClosureSettings {
        ClosureSettings {
            window_s: 30.0,
            clear_s: 6.0,
            ..ClosureSettings::default()
        }
    }

    /// Runs frames every 0.5 s from `from`, with the sight at each time.
    fn run(
        c: &mut Checker,
        reqs: &[CheckRequest],
        from: f64,
        until: f64,
        sight: impl Fn(f64) -> Sight,
    ) -> Vec<CheckResult> {
        let mut out = Vec::new();
        let mut t = from;
        while t <= until {
            out.extend(c.step(t, reqs, |_| sight(t)));
            t += 0.5;
        }
        out
    }

    #[test]
    fn removed_then_clear_for_clear_s_closes_once() {
        let mut c = Checker::new(settings());
        let reqs = [req(100.0)];
        // Before its due time nothing is looked at.
        assert!(run(&mut c, &reqs, 90.0, 99.5, |_| Sight::Clear).is_empty());
        let out = run(&mut c, &reqs, 100.0, 140.0, |t| {
            if t < 110.0 {
                Sight::Present
            } else {
                Sight::Clear
            }
        });
        assert_eq!(out.len(), 1, "decided once: {out:?}");
        assert_eq!(out[0].outcome, CheckOutcome::Clear);
        assert_eq!(out[0].t, 116.0);
    }

    #[test]
    fn a_break_in_the_clear_run_starts_it_again() {
        let mut c = Checker::new(settings());
        let out = run(&mut c, &[req(0.0)], 0.0, 40.0, |t| {
            // Clear, but the object flickers back every 5 s: never 6 s clear.
            if (t as i64) % 5 == 0 {
                Sight::Present
            } else {
                Sight::Clear
            }
        });
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].outcome, CheckOutcome::StillThere);
        assert_eq!(out[0].t, 30.0);
    }

    #[test]
    fn still_there_for_the_window_reopens() {
        let mut c = Checker::new(settings());
        let out = run(&mut c, &[req(0.0)], 0.0, 60.0, |_| Sight::Present);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].outcome, CheckOutcome::StillThere);
    }

    #[test]
    fn a_dark_window_is_unjudged_and_the_next_due_time_looks_again() {
        let mut c = Checker::new(settings());
        let out = run(&mut c, &[req(0.0)], 0.0, 60.0, |_| {
            Sight::Unjudgeable("dark")
        });
        assert_eq!(
            out.iter().map(|r| r.outcome.clone()).collect::<Vec<_>>(),
            vec![CheckOutcome::Unjudged {
                reason: "dark".into()
            }]
        );
        // Mostly occluded with a glimpse of the object: still not enough to judge.
        let mut c = Checker::new(settings());
        let out = run(&mut c, &[req(0.0)], 0.0, 31.0, |t| {
            if t < 1.0 {
                Sight::Present
            } else {
                Sight::Unjudgeable("occluded")
            }
        });
        assert!(matches!(out[0].outcome, CheckOutcome::Unjudged { .. }));
        // The retry, due later, is a new look.
        let out = run(&mut c, &[req(100.0)], 100.0, 110.0, |_| Sight::Clear);
        assert_eq!(out[0].outcome, CheckOutcome::Clear);
    }

    #[test]
    fn shared_checks_settle_and_move_on() {
        let s = SharedChecks::new(vec![req(10.0)]);
        assert!(s.wants("cam") && !s.wants("other"));
        s.settle("cam", "CW1", Some(50.0));
        assert_eq!(s.for_camera("cam")[0].due_at, 50.0);
        assert_eq!(s.for_camera("cam")[0].attempts, 1);
        s.settle("cam", "CW1", None);
        assert!(s.is_empty());
    }
}
