//! The live notifier: a POST of the case to the platform's webhook.
//!
//! Body: the case as JSON. Headers: `Idempotency-Key`, `X-Citywatch-Timestamp`, and
//! `X-Citywatch-Signature: sha256=HEX`, an HMAC-SHA256 over `"{timestamp}.{body}"`. A 2xx,
//! or 409 ("already have it"), is delivered.

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::{Message, Notifier, Refusal};
use crate::config::WebhookConfig;

/// The signature header value for a body sent at `timestamp`.
pub fn sign(secret: &str, timestamp: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body);
    format!("sha256={}", hex::encode(mac.finalize().into_bytes()))
}

/// The platform's webhook.
pub struct Webhook {
    cfg: WebhookConfig,
    client: reqwest::Client,
}

impl Webhook {
    pub fn new(cfg: WebhookConfig) -> Self {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs_f64(cfg.timeout_s.max(0.1)))
            .build()
            .expect("http client");
        Self { cfg, client }
    }
}

impl Notifier for Webhook {
    fn send<'a>(
        &'a self,
        m: Message<'a>,
    ) -> Pin<Box<dyn Future<Output = Result<(), Refusal>> + Send + 'a>> {
        Box::pin(async move {
            let ts = format!("{:.3}", m.now);
            let result = self
                .client
                .post(&self.cfg.url)
                .header("content-type", "application/json")
                .header("idempotency-key", m.idempotency_key)
                .header("x-citywatch-timestamp", &ts)
                .header(
                    "x-citywatch-signature",
                    sign(&self.cfg.secret, &ts, m.payload.as_bytes()),
                )
                .body(m.payload.to_string())
                .send()
                .await;
            match result {
                Ok(resp) if resp.status().is_success() || resp.status().as_u16() == 409 => Ok(()),
                Ok(resp) => Err(format!("HTTP {}", resp.status().as_u16())),
                Err(e) if e.is_timeout() => Err("timed out".to_string()),
                Err(e) if e.is_connect() => Err("connection failed".to_string()),
                Err(e) => Err(format!(
                    "request failed: {}",
                    crate::core::redact_url(&e.to_string())
                )),
            }
        })
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
