//! The outbox forwarder: delivers filed cases to the city platform by webhook, at least once,
//! with the idempotency key the platform deduplicates on, so each case lands exactly once.
//!
//! - Body: the case as JSON. Headers: `Idempotency-Key`, `X-Citywatch-Timestamp`, and
//!   `X-Citywatch-Signature: sha256=HEX`, an HMAC-SHA256 over `"{timestamp}.{body}"`.
//! - 2xx (and 409, "already have it") is delivered. Anything else, a timeout or a refused
//!   connection is retried with exponential backoff; after `max_attempts` the row is dead
//!   (visible in counts, status and metrics) and waits for an operator.

use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sqlx::Row;

use super::{Store, StoreError};

pub use crate::config::WebhookConfig;

/// The signature header value for a body sent at `timestamp`.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// Most rows one delivery round sends.
pub const ROUND: usize = 64;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Delivery {
    pub delivered: u32,
    pub retried: u32,
    pub dead: u32,
}

pub struct Forwarder {
    cfg: WebhookConfig,
    client: reqwest::Client,
}

impl Forwarder {
    pub fn new(cfg: WebhookConfig) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(cfg.timeout_s.max(0.1)))
            .build()
            .expect("http client");
        Self { cfg, client }
    }

    fn delay(&self, attempts: u32) -> f64 {
        (self.cfg.backoff_initial_s * 2f64.powi(attempts.min(30) as i32 - 1))
            .min(self.cfg.backoff_max_s)
    }

    /// Sends every due outbox row once. `now` is the pipeline clock (Unix seconds).
    pub async fn deliver_due(&self, store: &Store, now: f64) -> Result<Delivery, StoreError> {
        let rows = sqlx::query(&store.prepare(
            "SELECT id, idempotency_key, payload, attempts FROM outbox \
             WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2",
        ))
        .bind(now)
        .bind(ROUND as i64)
        .fetch_all(store.pool())
        .await
        .map_err(|e| store.db_err(e))?;
        let mut d = Delivery::default();
        for r in rows {
            let g = |e| store.db_err(e);
            let id: String = r.try_get(0).map_err(g)?;
            let key: String = r.try_get(1).map_err(g)?;
            let payload: String = r.try_get(2).map_err(g)?;
            let attempts: i64 = r.try_get(3).map_err(g)?;
            let ts = format!("{now:.3}");
            let result = self
                .client
                .post(&self.cfg.url)
                .header("content-type", "application/json")
                .header("idempotency-key", &key)
                .header("x-citywatch-timestamp", &ts)
                .header(
                    "x-citywatch-signature",
                    sign(&self.cfg.secret, &ts, payload.as_bytes()),
                )
                .body(payload)
                .send()
                .await;
            let failure = match result {
                Ok(resp) if resp.status().is_success() || resp.status().as_u16() == 409 => None,
                Ok(resp) => Some(format!("HTTP {}", resp.status().as_u16())),
                Err(e) if e.is_timeout() => Some("timed out".to_string()),
                Err(e) if e.is_connect() => Some("connection failed".to_string()),
                Err(e) => Some(format!(
                    "request failed: {}",
                    crate::core::redact_url(&e.to_string())
                )),
            };
            match failure {
                None => {
                    sqlx::query(&store.prepare(
                        "UPDATE outbox SET state = 'delivered', delivered_at = $2, attempts = attempts + 1, \
                         last_error = NULL WHERE id = $1",
                    ))
                    .bind(&id)
                    .bind(now)
                    .execute(store.pool())
                    .await
                    .map_err(|e| store.db_err(e))?;
                    d.delivered += 1;
                }
                Some(err) => {
                    let attempts = attempts as u32 + 1;
                    let dead = attempts >= self.cfg.max_attempts;
                    sqlx::query(&store.prepare(
                        "UPDATE outbox SET state = $2, attempts = $3, next_attempt_at = $4, last_error = $5 WHERE id = $1",
                    ))
                    .bind(&id)
                    .bind(if dead { "dead" } else { "pending" })
                    .bind(attempts as i64)
                    .bind(now + self.delay(attempts))
                    .bind(&err)
                    .execute(store.pool())
                    .await
                    .map_err(|e| store.db_err(e))?;
                    if dead {
                        tracing::error!(outbox = %id, attempts, error = %err, "webhook delivery dead-lettered");
                        d.dead += 1;
                    } else {
                        tracing::warn!(outbox = %id, attempts, error = %err, "webhook delivery failed; will retry");
                        d.retried += 1;
                    }
                }
            }
        }
        Ok(d)
    }
}

/// Delivers filed cases to the city platform until shutdown. Rounds run every second, and
/// at once when `stored` says new cases may be waiting.
pub async fn forward(
    store: std::sync::Arc<Store>,
    forwarder: Forwarder,
    clock: std::sync::Arc<dyn crate::core::Clock>,
    shutdown: crate::core::Shutdown,
    stored: std::sync::Arc<tokio::sync::Notify>,
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
    use super::*;

    #[test]
    fn signature_is_hmac_sha256_over_timestamp_and_body() {
        // Computed independently: Python's hmac.new(b"key", b"1.5.{}", hashlib.sha256).
        assert_eq!(
            sign("key", "1.5", b"{}"),
            "sha256=ec441c7de7669b6e38a377b99a6b94385584a8b3cf3bfccad19afbda4ea92194"
        );
    }
}
