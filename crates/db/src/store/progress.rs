//! The case life cycle after filing: what the city platform reports (派遣, 处置完毕,
//! returned, closed), the closure check (核实) of a handled case and its verdict, each
//! case's status history, deadlines and overdue reminders, dead letters, and which
//! evidence retention may take.
//!
//! Every change is one transaction: the case's status, its history row, the audit row and,
//! when the platform must hear of it, the outbox row. Platform reports are idempotent on
//! their event id; a replayed nonce, an unknown case or a report the case's status does not
//! allow changes nothing.

use serde::Serialize;
use sqlx::{Any, Row, Transaction};

use super::{Store, StoreError};
use crate::cases::CasePolicy;
use crate::config::ClosureSettings;

pub use crate::cases::status::{CaseStatus, PlatformEvent, Report};

/// The statuses whose deadline runs, as SQL.
fn deadline_runs_sql() -> String {
    CaseStatus::sql_list(CaseStatus::deadline_runs)
}

/// The final statuses, as SQL.
fn final_sql() -> String {
    CaseStatus::sql_list(CaseStatus::is_final)
}

/// What became of a report.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    Applied(CaseStatus),
    /// The same event id was applied before.
    Duplicate(CaseStatus),
    UnknownCase,
    /// The case's status does not allow the report.
    Conflict {
        from: CaseStatus,
        report: Report,
    },
    /// The nonce was used before.
    Replayed,
}

/// One row of a case's history.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct CaseEvent {
    pub seq: i64,
    pub at: f64,
    pub status: String,
    pub actor: String,
    pub detail: Option<String>,
}

pub use crate::model::closure::{CheckOutcome, CheckRequest};

/// An outbox row that could not be delivered.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct DeadLetter {
    pub id: String,
    pub case_number: String,
    pub idempotency_key: String,
    /// What the message says: case_filed, case_status or case_overdue.
    pub event: String,
    pub attempts: i64,
    pub last_error: Option<String>,
}

type Tx<'a> = Transaction<'a, Any>;

impl Store {
    /// The case's status now.
    async fn case_status_in(
        &self,
        tx: &mut Tx<'_>,
        case: &str,
    ) -> Result<Option<CaseStatus>, StoreError> {
        let status: Option<String> =
            sqlx::query_scalar("SELECT status FROM cases WHERE case_number = $1")
                .bind(case)
                .fetch_optional(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
        status
            .map(|s| {
                CaseStatus::parse(&s)
                    .ok_or_else(|| StoreError::Corrupt(format!("case status {s:?}")))
            })
            .transpose()
    }

    /// Appends a history row; returns its sequence number.
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn event_in(
        &self,
        tx: &mut Tx<'_>,
        case: &str,
        id: &str,
        status: &str,
        actor: &str,
        detail: Option<&str>,
        at: f64,
    ) -> Result<i64, StoreError> {
        let g = |e| self.err(e);
        let seq: i64 = sqlx::query_scalar(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM case_events WHERE case_number = $1",
        )
        .bind(case)
        .fetch_one(&mut **tx)
        .await
        .map_err(g)?;
        sqlx::query(
            "INSERT INTO case_events (id, case_number, seq, at, status, actor, detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(case)
        .bind(seq)
        .bind(at)
        .bind(status)
        .bind(actor)
        .bind(detail)
        .execute(&mut **tx)
        .await
        .map_err(g)?;
        Ok(seq)
    }

    /// Queues a message to the platform about a case (`event`: case_status, case_overdue).
    /// It is due at once, but never before the case's earlier messages still waiting (the
    /// platform hears of a case before it hears of its progress). `at` may be a replay's
    /// clock, so it does not set the due time.
    async fn tell_platform_in(
        &self,
        tx: &mut Tx<'_>,
        case: &str,
        seq: i64,
        mut payload: serde_json::Value,
    ) -> Result<(), StoreError> {
        let g = |e| self.err(e);
        let due: f64 = sqlx::query_scalar("SELECT COALESCE(MAX(next_attempt_at), 0.0) FROM outbox WHERE case_number = $1 AND state = 'pending'")
        .bind(case)
        .fetch_one(&mut **tx)
        .await
        .map_err(g)?;
        let key = format!("{case}-{seq}");
        payload["case_number"] = case.into();
        payload["idempotency_key"] = key.clone().into();
        sqlx::query("INSERT INTO outbox (id, case_number, idempotency_key, payload, state, attempts, next_attempt_at) \
             VALUES ($1, $2, $3, $4, 'pending', 0, $5)")
        .bind(format!("out-{key}"))
        .bind(case)
        .bind(&key)
        .bind(payload.to_string())
        .bind(due)
        .execute(&mut **tx)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Moves a case to `to`: status, time, closure time when final.
    async fn set_status_in(
        &self,
        tx: &mut Tx<'_>,
        case: &str,
        to: CaseStatus,
        at: f64,
    ) -> Result<(), StoreError> {
        let was: Option<(String, String, String)> =
            sqlx::query_as("SELECT rule, camera, status FROM cases WHERE case_number = $1")
                .bind(case)
                .fetch_optional(&mut **tx)
                .await
                .map_err(|e| self.err(e))?;
        if let Some((rule, camera, from)) = was.filter(|w| w.2 != to.as_str()) {
            use super::tally::Subject;
            self.tally_in(tx, Subject::Cases, &rule, &camera, &from, -1)
                .await?;
            self.tally_in(tx, Subject::Cases, &rule, &camera, to.as_str(), 1)
                .await?;
        }
        sqlx::query(
            "UPDATE cases SET status = $2, status_at = $3, \
             closed_at = CASE WHEN $4 = 1 THEN $3 ELSE NULL END WHERE case_number = $1",
        )
        .bind(case)
        .bind(to.as_str())
        .bind(at)
        .bind(i64::from(to.is_final()))
        .execute(&mut **tx)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Applies a platform report. `nonce`: a signed callback's nonce (None for polling).
    pub async fn apply_platform(
        &self,
        ev: &PlatformEvent,
        actor: &str,
        nonce: Option<&str>,
        closure: &ClosureSettings,
        now: f64,
    ) -> Result<Applied, StoreError> {
        let g = |e| self.err(e);
        let mut tx = self.begin().await.map_err(g)?;
        if let Some(n) = nonce {
            let fresh = sqlx::query("INSERT INTO platform_nonces (nonce, at) VALUES ($1, $2) ON CONFLICT (nonce) DO NOTHING")
            .bind(n)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(g)?
            .rows_affected()
                == 1;
            if !fresh {
                return Ok(Applied::Replayed);
            }
        }
        let Some(from) = self.case_status_in(&mut tx, &ev.case_number).await? else {
            return Ok(Applied::UnknownCase);
        };
        let id = format!("pf-{}", ev.event_id);
        let seen = sqlx::query("SELECT 1 FROM case_events WHERE id = $1")
            .bind(&id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(g)?;
        if seen.is_some() {
            tx.commit().await.map_err(g)?;
            return Ok(Applied::Duplicate(from));
        }
        let Some(to) = ev.status.moves(from) else {
            return Ok(Applied::Conflict {
                from,
                report: ev.status,
            });
        };
        let at = ev.at.unwrap_or(now);
        self.set_status_in(&mut tx, &ev.case_number, to, at).await?;
        self.event_in(
            &mut tx,
            &ev.case_number,
            &id,
            to.as_str(),
            actor,
            ev.note.as_deref(),
            at,
        )
        .await?;
        match to {
            CaseStatus::Handled => {
                self.request_check_in(&mut tx, &ev.case_number, closure, now)
                    .await?
            }
            // Sent back before the check: the check waits for the next handled report.
            _ => {
                sqlx::query("UPDATE closure_checks SET state = 'cancelled' WHERE case_number = $1 AND state = 'waiting'")
                .bind(&ev.case_number)
                .execute(&mut *tx)
                .await
                .map_err(g)?;
            }
        }
        self.audit_in(
            &mut tx,
            Some(format!("audit-{id}")),
            now,
            actor,
            &format!("case.{}", to.as_str()),
            &ev.case_number,
            ev.note.as_deref(),
        )
        .await?;
        tx.commit().await.map_err(g)?;
        Ok(Applied::Applied(to))
    }

    /// A handled case's closure check: where to look (the capture's place) and from when.
    /// With the check off, a person checks.
    async fn request_check_in(
        &self,
        tx: &mut Tx<'_>,
        case: &str,
        closure: &ClosureSettings,
        now: f64,
    ) -> Result<(), StoreError> {
        let g = |e| self.err(e);
        let row = sqlx::query(
            "SELECT c.camera, c.rule, c.zone, c.label, c.bbox, k.evidence FROM cases k \
             JOIN captures c ON c.id = k.capture_id WHERE k.case_number = $1",
        )
        .bind(case)
        .fetch_one(&mut **tx)
        .await
        .map_err(g)?;
        let evidence: Option<String> = row.try_get(5).map_err(g)?;
        let package = evidence
            .as_deref()
            .and_then(|e| serde_json::from_str::<serde_json::Value>(e).ok())
            .and_then(|v| v.get("package")?.as_str().map(str::to_string));
        let state = if closure.enabled { "waiting" } else { "manual" };
        sqlx::query(
            "INSERT INTO closure_checks (case_number, camera, rule, zone, label, bbox, package, \
             requested_at, due_at, attempts, state, last_reason) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, $10, NULL) \
             ON CONFLICT (case_number) DO UPDATE SET requested_at = excluded.requested_at, \
             due_at = excluded.due_at, attempts = 0, state = excluded.state, last_reason = NULL, \
             package = excluded.package",
        )
        .bind(case)
        .bind(row.try_get::<String, _>(0).map_err(g)?)
        .bind(row.try_get::<String, _>(1).map_err(g)?)
        .bind(row.try_get::<String, _>(2).map_err(g)?)
        .bind(row.try_get::<String, _>(3).map_err(g)?)
        .bind(row.try_get::<String, _>(4).map_err(g)?)
        .bind(package)
        .bind(now)
        .bind(now + closure.delay_s)
        .bind(state)
        .execute(&mut **tx)
        .await
        .map_err(g)?;
        if !closure.enabled {
            self.set_status_in(tx, case, CaseStatus::CheckManual, now)
                .await?;
            self.event_in(
                tx,
                case,
                &format!("manual-{case}-{now:.3}"),
                CaseStatus::CheckManual.as_str(),
                "citywatch",
                Some("the closure check is off: a person checks"),
                now,
            )
            .await?;
        }
        Ok(())
    }

    /// Closure checks waiting for their cameras.
    pub async fn waiting_checks(&self) -> Result<Vec<CheckRequest>, StoreError> {
        type Stored = (
            String,
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            f64,
            i64,
        );
        let rows: Vec<Stored> = sqlx::query_as(
            "SELECT case_number, camera, rule, zone, label, bbox, package, due_at, attempts \
             FROM closure_checks WHERE state = 'waiting' ORDER BY due_at, case_number",
        )
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        rows.into_iter()
            .map(
                |(case_number, camera, rule, zone, label, bbox, package, due_at, attempts)| {
                    Ok(CheckRequest {
                        case_number,
                        camera,
                        rule,
                        zone,
                        label,
                        bbox: serde_json::from_str(&bbox)
                            .map_err(|e| StoreError::Corrupt(format!("check box: {e}")))?,
                        package,
                        due_at,
                        attempts,
                    })
                },
            )
            .collect()
    }

    /// Records what a look at the place found (by a camera, `actor` "citywatch", or by a
    /// person). `evidence`: the package reference after the look's photo and clip joined
    /// it. Returns the case's new status; None when no check was waiting (recorded before).
    #[allow(clippy::too_many_arguments)]
    pub async fn record_check(
        &self,
        case: &str,
        outcome: &CheckOutcome,
        evidence: Option<&serde_json::Value>,
        actor: &str,
        policy: &CasePolicy,
        closure: &ClosureSettings,
        at: f64,
    ) -> Result<Option<CaseStatus>, StoreError> {
        let g = |e| self.err(e);
        let mut tx = self.begin().await.map_err(g)?;
        let attempts: Option<i64> = sqlx::query_scalar("SELECT attempts FROM closure_checks WHERE case_number = $1 AND state IN ('waiting', 'manual')")
        .bind(case)
        .fetch_optional(&mut *tx)
        .await
        .map_err(g)?;
        let Some(attempts) = attempts else {
            return Ok(None);
        };
        let attempts = attempts + 1;
        let to = CaseStatus::after_check(
            outcome,
            u32::try_from(attempts).unwrap_or(u32::MAX),
            closure.max_attempts,
        );
        if let CheckOutcome::Unjudged { reason } = outcome {
            sqlx::query("UPDATE closure_checks SET attempts = $2, due_at = $3, last_reason = $4, state = $5 \
                 WHERE case_number = $1")
            .bind(case)
            .bind(attempts)
            .bind(at + closure.retry_s)
            .bind(reason)
            .bind(if to == CaseStatus::CheckManual {
                "manual"
            } else {
                "waiting"
            })
            .execute(&mut *tx)
            .await
            .map_err(g)?;
            if to == CaseStatus::Handled {
                tx.commit().await.map_err(g)?;
                return Ok(Some(CaseStatus::Handled));
            }
            self.set_status_in(&mut tx, case, CaseStatus::CheckManual, at)
                .await?;
            let detail = format!("{attempts} looks could not judge the place: {reason}");
            self.event_in(
                &mut tx,
                case,
                &format!("check-{case}-{at:.3}"),
                CaseStatus::CheckManual.as_str(),
                actor,
                Some(&detail),
                at,
            )
            .await?;
            self.audit_in(
                &mut tx,
                None,
                at,
                actor,
                "case.check_manual",
                case,
                Some(&detail),
            )
            .await?;
            tx.commit().await.map_err(g)?;
            return Ok(Some(CaseStatus::CheckManual));
        }
        sqlx::query(
            "UPDATE closure_checks SET state = 'done', last_reason = NULL WHERE case_number = $1",
        )
        .bind(case)
        .execute(&mut *tx)
        .await
        .map_err(g)?;
        self.set_status_in(&mut tx, case, to, at).await?;
        if let Some(ev) = evidence {
            sqlx::query("UPDATE cases SET evidence = $2 WHERE case_number = $1")
                .bind(case)
                .bind(ev.to_string())
                .execute(&mut *tx)
                .await
                .map_err(g)?;
        }
        if to.restarts_deadline() {
            // Reopened: a new deadline from now, and a new reminder when it passes.
            let limit: String =
                sqlx::query_scalar("SELECT time_limit FROM cases WHERE case_number = $1")
                    .bind(case)
                    .fetch_one(&mut *tx)
                    .await
                    .map_err(g)?;
            sqlx::query(
                "UPDATE cases SET deadline_at = $2, reminded_at = NULL WHERE case_number = $1",
            )
            .bind(case)
            .bind(policy.deadline(&limit, at))
            .execute(&mut *tx)
            .await
            .map_err(g)?;
        }
        let seq = self
            .event_in(
                &mut tx,
                case,
                &format!("check-{case}-{at:.3}"),
                to.as_str(),
                actor,
                None,
                at,
            )
            .await?;
        self.tell_platform_in(
            &mut tx,
            case,
            seq,
            serde_json::json!({
                "event": "case_status",
                "status": to.as_str(),
                "at": at,
                "checked_by": actor,
                "evidence": evidence,
            }),
        )
        .await?;
        self.audit_in(
            &mut tx,
            None,
            at,
            actor,
            &format!("case.{}", to.as_str()),
            case,
            None,
        )
        .await?;
        tx.commit().await.map_err(g)?;
        Ok(Some(to))
    }

    /// A case's own evidence reference (it follows the looks added to the package).
    pub async fn case_evidence(&self, case: &str) -> Result<Option<serde_json::Value>, StoreError> {
        let row = sqlx::query("SELECT evidence FROM cases WHERE case_number = $1")
            .bind(case)
            .fetch_optional(self.pool())
            .await
            .map_err(|e| self.err(e))?;
        Ok(row
            .and_then(|r| r.try_get::<Option<String>, _>(0).ok().flatten())
            .and_then(|e| serde_json::from_str(&e).ok()))
    }

    /// A case's history, oldest first.
    pub async fn case_events(&self, case: &str) -> Result<Vec<CaseEvent>, StoreError> {
        sqlx::query_as("SELECT seq, at, status, actor, detail FROM case_events WHERE case_number = $1 ORDER BY seq")
        .bind(case)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))
    }

    /// The platform closes a case itself (as a report with a made-up event id would).
    pub async fn close_case(
        &self,
        case: &str,
        actor: &str,
        now: f64,
    ) -> Result<Applied, StoreError> {
        self.apply_platform(
            &PlatformEvent {
                event_id: format!("close-{case}"),
                case_number: case.into(),
                status: Report::Closed,
                at: Some(now),
                note: None,
            },
            actor,
            None,
            &ClosureSettings::default(),
            now,
        )
        .await
    }

    /// Cases past their deadline that the platform has not been reminded of: each gets an
    /// `overdue` history row and one reminder in the outbox. Returns their numbers.
    pub async fn remind_overdue(&self, now: f64) -> Result<Vec<String>, StoreError> {
        let g = |e| self.err(e);
        let rows: Vec<(String, f64)> = sqlx::query_as(&format!(
            "SELECT case_number, deadline_at FROM cases WHERE deadline_at < $1 AND reminded_at IS NULL \
             AND status IN {} ORDER BY deadline_at LIMIT 200",
            deadline_runs_sql()
        ))
        .bind(now)
        .fetch_all(self.pool())
        .await
        .map_err(g)?;
        let mut reminded = Vec::new();
        for (case, deadline) in rows {
            let mut tx = self.begin().await.map_err(g)?;
            // Another process may have reminded it meanwhile.
            let mine = sqlx::query(
                "UPDATE cases SET reminded_at = $2 WHERE case_number = $1 AND reminded_at IS NULL",
            )
            .bind(&case)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(g)?
            .rows_affected()
                == 1;
            if !mine {
                continue;
            }
            let seq = self
                .event_in(
                    &mut tx,
                    &case,
                    &format!("overdue-{case}-{deadline:.0}"),
                    "overdue",
                    "citywatch",
                    None,
                    now,
                )
                .await?;
            self.tell_platform_in(
                &mut tx,
                &case,
                seq,
                serde_json::json!({ "event": "case_overdue", "deadline_at": deadline, "at": now }),
            )
            .await?;
            tx.commit().await.map_err(g)?;
            reminded.push(case);
        }
        Ok(reminded)
    }

    /// Open cases past their deadline now.
    pub async fn overdue_count(&self, now: f64) -> Result<i64, StoreError> {
        let g = |e| self.err(e);
        sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM cases WHERE deadline_at < $1 AND status IN {}",
            deadline_runs_sql()
        ))
        .bind(now)
        .fetch_one(self.pool())
        .await
        .map_err(g)
    }

    /// Cases by status.
    pub async fn case_status_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        let mut by: std::collections::BTreeMap<String, i64> = Default::default();
        for t in self.tallies(super::tally::Subject::Cases, 0).await? {
            *by.entry(t.status).or_default() += t.n;
        }
        Ok(by.into_iter().collect())
    }

    /// Open cases for the polling adapter: those the platform still works on.
    pub async fn cases_to_poll(&self) -> Result<Vec<String>, StoreError> {
        let g = |e| self.err(e);
        sqlx::query_scalar(&format!(
            "SELECT case_number FROM cases WHERE status IN {} ORDER BY filed_at LIMIT 1000",
            deadline_runs_sql()
        ))
        .fetch_all(self.pool())
        .await
        .map_err(g)
    }

    /// Outbox rows given up on, oldest first.
    pub async fn dead_letters(&self) -> Result<Vec<DeadLetter>, StoreError> {
        let g = |e| self.err(e);
        type Stored = (String, String, String, String, i64, Option<String>);
        let rows: Vec<Stored> = sqlx::query_as(
            "SELECT id, case_number, idempotency_key, payload, attempts, last_error FROM outbox \
             WHERE state = 'dead' ORDER BY next_attempt_at, id LIMIT 1000",
        )
        .fetch_all(self.pool())
        .await
        .map_err(g)?;
        Ok(rows
            .into_iter()
            .map(
                |(id, case_number, idempotency_key, payload, attempts, last_error)| {
                    let event = serde_json::from_str::<serde_json::Value>(&payload)
                        .ok()
                        .and_then(|v| v.get("event")?.as_str().map(str::to_string))
                        .unwrap_or_else(|| "case_filed".into());
                    DeadLetter {
                        id,
                        case_number,
                        idempotency_key,
                        event,
                        attempts,
                        last_error,
                    }
                },
            )
            .collect())
    }

    /// Puts dead letters back in the queue with fresh attempts and the same idempotency key
    /// (`ids` None: all of them); each requeue is audited. Returns how many moved.
    pub async fn requeue(
        &self,
        ids: Option<&[String]>,
        actor: &str,
        now: f64,
    ) -> Result<usize, StoreError> {
        let g = |e| self.err(e);
        let targets: Vec<(String, String)> = self
            .dead_letters()
            .await?
            .into_iter()
            .filter(|d| ids.is_none_or(|ids| ids.contains(&d.id)))
            .map(|d| (d.id, d.idempotency_key))
            .collect();
        let mut moved = 0;
        for (id, key) in targets {
            let mut tx = self.begin().await.map_err(g)?;
            let n = sqlx::query(
                "UPDATE outbox SET state = 'pending', attempts = 0, next_attempt_at = $2 \
                 WHERE id = $1 AND state = 'dead'",
            )
            .bind(&id)
            .bind(now)
            .execute(&mut *tx)
            .await
            .map_err(g)?
            .rows_affected();
            if n == 1 {
                self.audit_in(&mut tx, None, now, actor, "outbox.requeue", &id, Some(&key))
                    .await?;
                moved += 1;
            }
            tx.commit().await.map_err(g)?;
        }
        Ok(moved)
    }

    /// Keys of the captures whose evidence retention may delete: rejected ones, and those
    /// whose case became final at least `keep_s` before `now`.
    pub async fn finished_capture_keys(
        &self,
        now: f64,
        keep_s: f64,
    ) -> Result<std::collections::HashSet<String>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT c.id FROM captures c LEFT JOIN cases k ON k.capture_id = c.id \
             WHERE (c.status = 'rejected' AND k.case_number IS NULL) \
             OR (k.status IN {} AND k.closed_at <= $1)",
            final_sql()
        ))
        .bind(now - keep_s)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        rows.iter()
            .map(|r| r.try_get::<String, _>(0).map_err(|e| self.err(e)))
            .collect()
    }

    /// Forgets callback nonces older than `before` (they fail the timestamp check anyway).
    pub async fn prune_nonces(&self, before: f64) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM platform_nonces WHERE at < $1")
            .bind(before)
            .execute(self.pool())
            .await
            .map_err(|e| self.err(e))?
            .rows_affected())
    }
}
