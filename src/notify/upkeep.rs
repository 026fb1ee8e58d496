//! The case life cycle's background work in a running process: closure checks reloaded
//! from the database, overdue reminders queued for the platform, old callback nonces
//! forgotten, and, for platforms that cannot call back, each open case's status polled.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::closure::SharedChecks;
use crate::config::{CasesSettings, PlatformSettings};
use crate::core::{Clock, Shutdown};
use crate::store::Store;
use crate::store::progress::{Applied, PlatformEvent, Report};

/// How often the waiting checks reload from the database.
const CHECKS_RELOAD_S: f64 = 10.0;

/// A status answer from the platform's status URL.
#[derive(Debug, Deserialize)]
struct Polled {
    status: String,
    #[serde(default)]
    event_id: Option<String>,
    #[serde(default)]
    at: Option<f64>,
    #[serde(default)]
    note: Option<String>,
}

/// Runs until shutdown.
pub async fn upkeep(
    store: Arc<Store>,
    cases: CasesSettings,
    checks: SharedChecks,
    clock: Arc<dyn Clock>,
    shutdown: Shutdown,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs_f64(
            cases
                .platform
                .as_ref()
                .map_or(10.0, |p| p.poll_timeout_s.max(0.1)),
        ))
        .build()
        .expect("http client");
    let (mut next_reload, mut next_remind, mut next_poll) = (0.0, 0.0, 0.0);
    loop {
        let now = crate::core::unix_secs(clock.as_ref());
        if now >= next_reload {
            next_reload = now + CHECKS_RELOAD_S;
            match store.waiting_checks().await {
                Ok(list) => checks.replace(list),
                Err(e) => {
                    tracing::warn!(error = %e, "cannot reload the closure checks; keeping the last")
                }
            }
        }
        if now >= next_remind {
            next_remind = now + cases.deadlines.check_interval_s;
            if cases.deadlines.remind {
                match store.remind_overdue(now).await {
                    Ok(list) if !list.is_empty() => {
                        tracing::warn!(cases = ?list, "cases past their deadline: the platform is reminded")
                    }
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "overdue check failed; will retry"),
                }
            }
            if let Some(p) = &cases.platform
                && let Err(e) = store.prune_nonces(now - 2.0 * p.max_skew_s).await
            {
                tracing::warn!(error = %e, "cannot prune callback nonces");
            }
        }
        if let Some(p) = &cases.platform
            && p.poll_url.is_some()
            && now >= next_poll
        {
            next_poll = now + p.poll_interval_s;
            poll(&store, &client, p, &cases, now).await;
        }
        tokio::select! {
            _ = shutdown.triggered() => return,
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

/// One polling round: GET each open case's status and apply what changed.
pub async fn poll(
    store: &Store,
    client: &reqwest::Client,
    p: &PlatformSettings,
    cases: &CasesSettings,
    now: f64,
) {
    let Some(template) = &p.poll_url else {
        return;
    };
    let open = match store.cases_to_poll().await {
        Ok(l) => l,
        Err(e) => {
            tracing::warn!(error = %e, "cannot list cases to poll; will retry");
            return;
        }
    };
    for case in open {
        let url = template.replace("{case_number}", &case);
        let answer = match client.get(&url).send().await {
            Ok(r) if r.status().is_success() => r.json::<Polled>().await.map_err(|e| e.to_string()),
            Ok(r) => Err(format!("HTTP {}", r.status().as_u16())),
            Err(e) => Err(crate::core::redact_url(&e.to_string())),
        };
        let polled = match answer {
            Ok(a) => a,
            Err(e) => {
                tracing::warn!(case = %case, error = %e, "polling the platform failed; next round");
                continue;
            }
        };
        let Ok(status) = serde_json::from_value::<Report>(polled.status.clone().into()) else {
            // Still as filed (or a word this side has no move for).
            continue;
        };
        let ev = PlatformEvent {
            event_id: polled
                .event_id
                .unwrap_or_else(|| format!("poll-{case}-{}", polled.status)),
            case_number: case.clone(),
            status,
            at: polled.at,
            note: polled.note,
        };
        match store
            .apply_platform(&ev, "platform-poll", None, &cases.closure, now)
            .await
        {
            Ok(Applied::Applied(s)) => {
                tracing::info!(case = %case, status = s.as_str(), "case status polled from the platform")
            }
            Ok(other) => {
                tracing::debug!(case = %case, result = ?other, "polled status changes nothing")
            }
            Err(e) => {
                tracing::warn!(case = %case, error = %e, "polled status not applied; next round")
            }
        }
    }
}
