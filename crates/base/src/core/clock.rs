//! The injected clock. Stages never call `SystemTime::now()` themselves: live runs pass a
//! [`SystemClock`], replays and tests pass a clock driven by stream time or by hand.

use parking_lot::Mutex;
use std::time::{Duration, SystemTime};

/// Where a stage gets the wall-clock time from.
pub trait Clock: Send + Sync + 'static {
    /// The current wall-clock time (UTC).
    fn now(&self) -> SystemTime;
}

/// A clock's time as Unix seconds.
pub fn unix_secs(clock: &dyn Clock) -> f64 {
    to_unix(clock.now())
}

/// A time as Unix seconds (0 for times before 1970).
pub fn to_unix(t: SystemTime) -> f64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

/// The real wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }
}

/// A clock that only moves when told to; for tests and replays.
#[derive(Debug)]
pub struct ManualClock {
    now: Mutex<SystemTime>,
}

impl ManualClock {
    pub fn new(start: SystemTime) -> Self {
        Self {
            now: Mutex::new(start),
        }
    }

    pub fn advance(&self, by: Duration) {
        let mut now = self.now.lock();
        *now += by;
    }

    pub fn set(&self, to: SystemTime) {
        *self.now.lock() = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.now.lock()
    }
}

/// A time-lapse of the wall clock, for soak tests that live a day or a week in a minute:
/// simulated time is `start` at the real instant `anchor`, and runs `rate` times as fast as
/// real time from there. Two processes given the same spec share one timeline, so a process
/// killed and started again goes on where the first left off, the time it was down included.
///
/// Only the injected clock is sped up. What is measured on it (dwell, grace, cooldowns, rate
/// limits, active hours, the camera watchdog) is in simulated seconds; network timeouts, retry
/// sleeps and analysis frame rates stay real. A soak's config scales the watchdog with it.
#[derive(Debug, Clone, Copy)]
pub struct TimeLapse {
    start: f64,
    anchor: f64,
    rate: f64,
}

/// The environment variable that replaces the system clock with a [`TimeLapse`].
pub const TIME_LAPSE_VAR: &str = "CITYWATCH_CLOCK";

impl TimeLapse {
    /// Parses `start=<RFC 3339>,anchor=<Unix seconds>,rate=<factor>`; `anchor` defaults to
    /// `now` (the process's start), `rate` to 1. Errors name the variable and the key.
    pub fn parse(spec: &str, now: SystemTime) -> Result<Self, String> {
        let mut start = None;
        let mut anchor = to_unix(now);
        let mut rate = 1.0;
        for part in spec.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let Some((key, value)) = part.split_once('=') else {
                return Err(format!("{TIME_LAPSE_VAR}: `{part}` is not key=value"));
            };
            let bad = |what: &str| format!("{TIME_LAPSE_VAR}: {key}: {value:?} is not {what}");
            match key.trim() {
                "start" => {
                    let t = time::OffsetDateTime::parse(
                        value.trim(),
                        &time::format_description::well_known::Rfc3339,
                    )
                    .map_err(|_| bad("an RFC 3339 time"))?;
                    start = Some(t.unix_timestamp_nanos() as f64 / 1e9);
                }
                "anchor" => {
                    anchor = value
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|a| a.is_finite() && *a >= 0.0)
                        .ok_or_else(|| bad("Unix seconds"))?;
                }
                "rate" => {
                    rate = value
                        .trim()
                        .parse::<f64>()
                        .ok()
                        .filter(|r| r.is_finite() && (1.0..=1e6).contains(r))
                        .ok_or_else(|| bad("a factor from 1 to 1000000"))?;
                }
                other => {
                    return Err(format!(
                        "{TIME_LAPSE_VAR}: unknown key `{other}` (known: start, anchor, rate)"
                    ));
                }
            }
        }
        let start = start.ok_or_else(|| format!("{TIME_LAPSE_VAR}: `start` is missing"))?;
        Ok(Self {
            start,
            anchor,
            rate,
        })
    }

    /// The simulated time at the real time `real`.
    pub fn at(&self, real: SystemTime) -> SystemTime {
        let secs = self.start + (to_unix(real) - self.anchor) * self.rate;
        SystemTime::UNIX_EPOCH + Duration::from_secs_f64(secs.max(0.0))
    }

    /// Sim seconds per real second.
    pub fn rate(&self) -> f64 {
        self.rate
    }
}

impl Clock for TimeLapse {
    fn now(&self) -> SystemTime {
        self.at(SystemTime::now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_time_lapse_runs_from_its_start_at_its_rate_and_two_processes_share_it() {
        let real = |s: f64| SystemTime::UNIX_EPOCH + Duration::from_secs_f64(s);
        // 2026-12-07T00:00:00Z is 1796601600; +08:00 is eight hours before it.
        let start = 1_796_601_600.0 - 8.0 * 3600.0;
        let spec = "start=2026-12-07T00:00:00+08:00, anchor=1000, rate=3600";
        let a = TimeLapse::parse(spec, real(5_000.0)).unwrap();
        assert_eq!(to_unix(a.at(real(1_000.0))), start);
        // One real minute is 60 simulated hours.
        assert_eq!(to_unix(a.at(real(1_060.0))), start + 60.0 * 3600.0);
        // A second process, started later with the same spec, is on the same timeline.
        let b = TimeLapse::parse(spec, real(1_030.0)).unwrap();
        assert_eq!(b.at(real(1_045.0)), a.at(real(1_045.0)));
        // Without an anchor the timeline starts with the process; the rate defaults to 1.
        let c = TimeLapse::parse("start=2026-12-07T00:00:00+08:00", real(77.0)).unwrap();
        assert_eq!(to_unix(c.at(real(78.0))), start + 1.0);
        assert_eq!(c.rate(), 1.0);
        for (spec, says) in [
            ("anchor=1", "`start` is missing"),
            (
                "start=yesterday",
                "start: \"yesterday\" is not an RFC 3339 time",
            ),
            (
                "start=2026-12-07T00:00:00Z,rate=0",
                "rate: \"0\" is not a factor",
            ),
            ("start=2026-12-07T00:00:00Z,speed=2", "unknown key `speed`"),
            ("start", "`start` is not key=value"),
        ] {
            let err = TimeLapse::parse(spec, real(0.0)).unwrap_err();
            assert!(
                err.contains(says) && err.contains(TIME_LAPSE_VAR),
                "{spec}: {err}"
            );
        }
    }

    #[test]
    fn manual_clock_moves_only_when_told() {
        let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
        let clock = ManualClock::new(start);
        assert_eq!(clock.now(), start);
        clock.advance(Duration::from_millis(1500));
        assert_eq!(clock.now(), start + Duration::from_millis(1500));
        clock.set(start);
        assert_eq!(clock.now(), start);
    }
}
