//! Outputs to the city platform: filed cases leave the outbox through a [`Notifier`], at
//! least once, with the idempotency key the platform deduplicates on, so each case lands
//! exactly once.
//!
//! - [`Forwarder`]: one delivery round over the due outbox rows: a 2xx (or 409, "already
//!   have it") is delivered; anything else, a timeout or a refused connection is retried with
//!   exponential backoff, and after `max_attempts` the row is dead (visible in counts, status
//!   and metrics) and waits for an operator. [`forward`] runs rounds until shutdown.
//! - [`webhook::Webhook`]: the notifier of the live system, an HMAC-signed POST.
//!
//! The outbox rows themselves live in the case store, written in the same transaction as
//! their case.

pub mod upkeep;
pub mod webhook;

pub use upkeep::upkeep;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use crate::config::WebhookConfig;
use crate::core::{Clock, Shutdown};
use crate::store::{Store, StoreError};

pub use webhook::{Webhook, sign};

/// Most rows one delivery round sends.
pub const ROUND: usize = 64;

/// One case on its way out.
#[derive(Debug, Clone)]
pub struct Message<'a> {
    pub idempotency_key: &'a str,
    /// The case as JSON.
    pub payload: &'a str,
    /// When it is sent (pipeline clock, Unix seconds).
    pub now: f64,
}

/// Why a message was not delivered: shown as the outbox row's last error.
pub type Refusal = String;

/// Where filed cases go: the platform's webhook live, a fake in unit tests.
pub trait Notifier: Send + Sync {
    fn send<'a>(
        &'a self,
        m: Message<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<(), Refusal>> + Send + 'a>>;
}

/// What one round did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub delivered: u32,
    pub retried: u32,
    pub dead: u32,
}

/// Retries: the delay after the `n`th failed attempt, and when to give up.
#[derive(Debug, Clone, Copy)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub initial_s: f64,
    pub max_s: f64,
}

impl From<&WebhookConfig> for RetryPolicy {
    fn from(c: &WebhookConfig) -> Self {
        Self {
            max_attempts: c.max_attempts,
            initial_s: c.backoff_initial_s,
            max_s: c.backoff_max_s,
        }
    }
}

impl RetryPolicy {
    /// Seconds until the next attempt after `attempts` failed ones.
    fn delay(&self, attempts: u32) -> f64 {
        crate::core::BackoffPolicy::doubling(
            Duration::from_secs_f64(self.initial_s.max(0.0)),
            Duration::from_secs_f64(self.max_s.max(0.0)),
        )
        .nth_delay(attempts)
        .as_secs_f64()
    }
}

/// Delivers the due outbox rows through a notifier.
pub struct Forwarder {
    notifier: Arc<dyn Notifier>,
    retry: RetryPolicy,
}

impl Forwarder {
    /// The live forwarder: the configured webhook.
    pub fn new(cfg: WebhookConfig) -> Self {
        let retry = RetryPolicy::from(&cfg);
        Self::with(Arc::new(Webhook::new(cfg)), retry)
    }

    pub fn with(notifier: Arc<dyn Notifier>, retry: RetryPolicy) -> Self {
        Self { notifier, retry }
    }

    /// Sends every due outbox row once. `now` is the pipeline clock (Unix seconds).
    pub async fn deliver_due(&self, store: &Store, now: f64) -> Result<Delivery, StoreError> {
        let mut d = Delivery::default();
        for row in store.due_outbox(now, ROUND).await? {
            let sent = self
                .notifier
                .send(Message {
                    idempotency_key: &row.idempotency_key,
                    payload: &row.payload,
                    now,
                })
                .await;
            match sent {
                Ok(()) => {
                    store.outbox_delivered(&row.id, now).await?;
                    d.delivered += 1;
                }
                Err(err) => {
                    let attempts = row.attempts + 1;
                    let dead = attempts >= self.retry.max_attempts;
                    store
                        .outbox_failed(
                            &row.id,
                            attempts,
                            dead,
                            now + self.retry.delay(attempts),
                            &err,
                        )
                        .await?;
                    if dead {
                        tracing::error!(outbox = %row.id, attempts, error = %err, "webhook delivery dead-lettered");
                        d.dead += 1;
                    } else {
                        tracing::warn!(outbox = %row.id, attempts, error = %err, "webhook delivery failed; will retry");
                        d.retried += 1;
                    }
                }
            }
        }
        Ok(d)
    }
}

/// Delivers filed cases until shutdown. Rounds run every second, and at once when `stored`
/// says new cases may be waiting.
pub async fn forward(
    store: Arc<Store>,
    forwarder: Forwarder,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
    stored: Arc<tokio::sync::Notify>,
) {
    loop {
        let now = crate::core::unix_secs(clock.as_ref());
        match forwarder.deliver_due(&store, now).await {
            // A full round: more may be due at once.
            Ok(d) if d.delivered + d.retried + d.dead >= ROUND as u32 => continue,
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "outbox delivery round failed; will retry"),
        }
        tokio::select! {
            biased;
            _ = shutdown.triggered() => return,
            _ = stored.notified() => {}
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    //! The forwarder on a real SQLite store and a fake notifier: retries, backoff, dead
    //! letters and exactly-once delivery, in test time.
    use parking_lot::Mutex;
    use std::collections::VecDeque;

    use super::*;
    use crate::model::{CategoryTable, FilingMode, Location, RuleKind};

    /// Answers each send with the next scripted result (then success), and records the keys.
    #[derive(Default)]
    struct Fake {
        answers: Mutex<VecDeque<Result<(), Refusal>>>,
        sent: Mutex<Vec<String>>,
    }

    impl Notifier for Fake {
        fn send<'a>(
            &'a self,
            m: Message<'a>,
        ) -> Pin<Box<dyn Future<Output = Result<(), Refusal>> + Send + 'a>> {
            self.sent.lock().push(m.idempotency_key.to_string());
            let answer = self.answers.lock().pop_front().unwrap_or(Ok(()));
            Box::pin(async move { answer })
        }
    }

    async fn store_with_cases(n: u64) -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::connect(&format!("sqlite://{}", dir.path().join("c.db").display()))
            .await
            .unwrap();
        let table = CategoryTable::load(
            &std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("pipelines/categories/default.toml"),
            &[RuleKind::AbandonedVehicle],
        )
        .unwrap();
        let policy = crate::cases::CasePolicy::new(Arc::new(table), 8 * 3600);
        for i in 0..n {
            let t = 1_767_574_800.0 + i as f64;
            let c = crate::ratelimit::sample_capture(i, t);
            store
                .record_capture(&c, None, FilingMode::Auto, &policy, &Location::default(), t)
                .await
                .unwrap();
        }
        (dir, store)
    }

    const RETRY: RetryPolicy = RetryPolicy {
        max_attempts: 3,
        initial_s: 1.0,
        max_s: 300.0,
    };

    #[tokio::test]
    async fn a_refused_case_is_retried_with_backoff_then_delivered_once() {
        let (_dir, store) = store_with_cases(1).await;
        let fake = Arc::new(Fake::default());
        fake.answers
            .lock()
            .extend([Err("HTTP 503".to_string()), Err("timed out".to_string())]);
        let f = Forwarder::with(fake.clone(), RETRY);
        let t0 = 2_000_000_000.0;
        let r = f.deliver_due(&store, t0).await.unwrap();
        assert_eq!((r.delivered, r.retried), (0, 1));
        // Not due again before its 1 s delay; then 2 s after the second failure.
        assert_eq!(
            f.deliver_due(&store, t0 + 0.5).await.unwrap(),
            Delivery::default()
        );
        assert_eq!(f.deliver_due(&store, t0 + 1.0).await.unwrap().retried, 1);
        assert_eq!(
            f.deliver_due(&store, t0 + 2.9).await.unwrap(),
            Delivery::default()
        );
        assert_eq!(f.deliver_due(&store, t0 + 3.0).await.unwrap().delivered, 1);
        // Delivered rows are never sent again.
        assert_eq!(
            f.deliver_due(&store, t0 + 99.0).await.unwrap(),
            Delivery::default()
        );
        let sent = fake.sent.lock().clone();
        assert_eq!(sent.len(), 3);
        assert!(sent.iter().all(|k| *k == sent[0]));
        let n = store.counts().await.unwrap();
        assert_eq!((n.outbox_pending, n.outbox_dead), (0, 0));
    }

    #[tokio::test]
    async fn after_max_attempts_a_case_is_dead_and_the_others_go_on() {
        let (_dir, store) = store_with_cases(2).await;
        let fake = Arc::new(Fake::default());
        // The first case (sent first each round) always fails; the second gets through.
        fake.answers.lock().extend([
            Err("HTTP 500".to_string()),
            Ok(()),
            Err("HTTP 500".to_string()),
            Err("HTTP 500".to_string()),
        ]);
        let f = Forwarder::with(fake, RETRY);
        let mut now = 2_000_000_000.0;
        let mut total = Delivery::default();
        for _ in 0..5 {
            let r = f.deliver_due(&store, now).await.unwrap();
            total.delivered += r.delivered;
            total.retried += r.retried;
            total.dead += r.dead;
            now += 1000.0;
        }
        assert_eq!((total.delivered, total.retried, total.dead), (1, 2, 1));
        let n = store.counts().await.unwrap();
        assert_eq!((n.outbox_pending, n.outbox_dead), (0, 1));
    }
}
