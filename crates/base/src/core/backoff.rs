//! Retry delays, one implementation for every retry loop: exponential and capped, with random
//! jitter where many peers retry at once (cameras behind one platform must not reconnect in
//! lockstep) and without it for a single writer's retries.

use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BackoffPolicy {
    pub initial: Duration,
    pub max: Duration,
    pub multiplier: f64,
    /// Fraction of spread around each delay (0.2 = ±20%), never past `max`.
    pub jitter: f64,
}

impl BackoffPolicy {
    /// Delays from `initial`, doubling up to `max`, without jitter: a single writer's
    /// retries.
    pub fn doubling(initial: Duration, max: Duration) -> Self {
        Self {
            initial,
            max,
            multiplier: 2.0,
            jitter: 0.0,
        }
    }

    /// The delay before retry number `attempt` (1 = the first retry), without jitter: for
    /// retries whose count is kept elsewhere (an outbox row's attempts).
    pub fn nth_delay(&self, attempt: u32) -> Duration {
        Duration::from_secs_f64(self.base_s(attempt.saturating_sub(1)))
    }

    /// Seconds of delay after `grown` doublings (multiplications), capped, before jitter.
    fn base_s(&self, grown: u32) -> f64 {
        let base = self.initial.as_secs_f64() * self.multiplier.powi(grown.min(64) as i32);
        base.min(self.max.as_secs_f64())
    }
}

impl Default for BackoffPolicy {
    fn default() -> Self {
        Self {
            initial: Duration::from_millis(500),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.2,
        }
    }
}

/// The delay state of one camera.
#[derive(Debug)]
pub struct Backoff {
    policy: BackoffPolicy,
    attempt: u32,
    rng: fastrand::Rng,
}

impl Backoff {
    pub fn new(policy: BackoffPolicy, seed: u64) -> Self {
        Self {
            policy,
            attempt: 0,
            rng: fastrand::Rng::with_seed(seed),
        }
    }

    /// Delays from `initial`, doubling up to `max`, without jitter.
    pub fn doubling(initial: Duration, max: Duration) -> Self {
        Self::new(BackoffPolicy::doubling(initial, max), 0)
    }

    /// The delay the next call to [`Backoff::next_delay`] returns, without taking it
    /// (for logs that announce it).
    pub fn peek(&self) -> Duration {
        Duration::from_secs_f64(self.policy.base_s(self.attempt))
    }

    /// The delay before the next attempt; each call grows the next one.
    pub fn next_delay(&mut self) -> Duration {
        let p = &self.policy;
        let base = p.base_s(self.attempt);
        self.attempt = self.attempt.saturating_add(1);
        let spread = 1.0 + p.jitter * (2.0 * self.rng.f64() - 1.0);
        Duration::from_secs_f64((base * spread).clamp(0.0, p.max.as_secs_f64()))
    }

    /// The longest delay: used while a camera is failed for a reason retrying will not fix soon.
    pub fn max_delay(&self) -> Duration {
        self.policy.max
    }

    /// Called once a stream delivers again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nth_delay_matches_the_stateful_backoff_without_jitter() {
        let policy = BackoffPolicy::doubling(Duration::from_millis(100), Duration::from_secs(1));
        let mut b = Backoff::new(policy, 1);
        for n in 1..8 {
            assert_eq!(policy.nth_delay(n), b.next_delay(), "attempt {n}");
        }
    }

    #[test]
    fn grows_caps_and_resets() {
        let policy = BackoffPolicy::doubling(Duration::from_millis(100), Duration::from_secs(1));
        let mut b = Backoff::new(policy, 1);
        let got: Vec<u128> = (0..6).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(got, vec![100, 200, 400, 800, 1000, 1000]);
        b.reset();
        assert_eq!(b.next_delay().as_millis(), 100);
    }

    #[test]
    fn jitter_stays_in_its_band_and_under_the_cap() {
        let policy = BackoffPolicy {
            initial: Duration::from_secs(1),
            max: Duration::from_secs(4),
            multiplier: 2.0,
            jitter: 0.5,
        };
        let mut seen_low = false;
        for seed in 0..200 {
            let mut b = Backoff::new(policy, seed);
            let first = b.next_delay().as_secs_f64();
            assert!((0.5..=1.5).contains(&first), "{first}");
            seen_low |= first < 0.9;
            for _ in 0..10 {
                assert!(b.next_delay() <= policy.max);
            }
        }
        assert!(seen_low, "jitter never moved the delay");
    }
}
