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

#[cfg(test)]
mod tests {
    use super::*;

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
