//! The case store, on sqlx: SQLite (WAL) by default, PostgreSQL chosen by URL. Both run the
//! same migrations (`crates/db/migrations/`), the same code (sqlx's `Any` driver) and the same tests.
//!
//! Captures are keyed by an idempotency key derived from the capture itself, so a replay or
//! a restart that produces the same capture again changes nothing. Filing a case writes the
//! case and its outbox row in one transaction.

pub use crate::model::categories;
pub mod audit;
pub mod camera_state;
pub mod claims;
pub mod fleet;
pub mod learning;
pub mod leases;
pub mod outbox;
pub mod plates;
pub mod progress;
pub mod query;
pub mod samples;
pub mod spool;
pub mod tally;
pub mod users;
pub mod zones;

use serde::Serialize;
use sha2::{Digest, Sha256};
use sqlx::AnyPool;
use sqlx::any::AnyPoolOptions;
use sqlx::{Any, Row, Transaction};

use crate::cases::CasePolicy;
use crate::config::RuleKind;
use crate::model::Capture;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database {url}: {source}")]
    Db {
        url: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrating the schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("no capture {0}")]
    NoCapture(String),
    #[error("capture {id} is {status}, not pending review")]
    NotPending { id: String, status: String },
    #[error("capture {id} is claimed by {holder}")]
    Claimed { id: String, holder: String },
    #[error("capture {id} was already decided by {by}")]
    Decided { id: String, by: String },
    #[error("stored data is invalid: {0}")]
    Corrupt(String),
}

pub use crate::model::{FilingMode, Location};

/// A boxed store future: what [`CaseStore`]'s methods return.
pub type StoreFuture<'a, T> =
    std::pin::Pin<Box<dyn std::future::Future<Output = Result<T, StoreError>> + Send + 'a>>;

/// The case store as the filing stage sees it: the database live ([`Store`]), a fake in the
/// stage's unit tests.
pub trait CaseStore: Send + Sync {
    /// The database's URL (it names the stage's queue folder, redacted).
    fn url(&self) -> &str;
    /// Records a capture, idempotent on its key; files its case in `Auto` mode.
    fn record_capture<'a>(
        &'a self,
        c: &'a Capture,
        evidence: Option<&'a serde_json::Value>,
        mode: FilingMode,
        policy: &'a CasePolicy,
        location: &'a Location,
        now: f64,
    ) -> StoreFuture<'a, (String, Option<String>)>;
    /// Records what a closure check's look found (see [`Store::record_check`]).
    #[allow(clippy::too_many_arguments)]
    fn record_check<'a>(
        &'a self,
        case: &'a str,
        outcome: &'a crate::model::closure::CheckOutcome,
        evidence: Option<&'a serde_json::Value>,
        actor: &'a str,
        policy: &'a CasePolicy,
        closure: &'a crate::config::ClosureSettings,
        at: f64,
    ) -> StoreFuture<'a, Option<progress::CaseStatus>>;
    /// Keys of captures whose evidence retention may delete at `now`: rejected, or their
    /// case final for at least `keep_s`.
    fn finished_capture_keys(
        &self,
        now: f64,
        keep_s: f64,
    ) -> StoreFuture<'_, std::collections::HashSet<String>>;
}

impl CaseStore for Store {
    fn url(&self) -> &str {
        Store::url(self)
    }

    fn record_capture<'a>(
        &'a self,
        c: &'a Capture,
        evidence: Option<&'a serde_json::Value>,
        mode: FilingMode,
        policy: &'a CasePolicy,
        location: &'a Location,
        now: f64,
    ) -> StoreFuture<'a, (String, Option<String>)> {
        Box::pin(Store::record_capture(
            self, c, evidence, mode, policy, location, now,
        ))
    }

    fn finished_capture_keys(
        &self,
        now: f64,
        keep_s: f64,
    ) -> StoreFuture<'_, std::collections::HashSet<String>> {
        Box::pin(Store::finished_capture_keys(self, now, keep_s))
    }

    fn record_check<'a>(
        &'a self,
        case: &'a str,
        outcome: &'a crate::model::closure::CheckOutcome,
        evidence: Option<&'a serde_json::Value>,
        actor: &'a str,
        policy: &'a CasePolicy,
        closure: &'a crate::config::ClosureSettings,
        at: f64,
    ) -> StoreFuture<'a, Option<progress::CaseStatus>> {
        Box::pin(Store::record_check(
            self, case, outcome, evidence, actor, policy, closure, at,
        ))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct CaseRecord {
    pub case_number: String,
    pub capture_id: String,
    pub idempotency_key: String,
    pub rule: String,
    pub major_code: String,
    pub major_name: String,
    pub minor_code: String,
    pub minor_name: String,
    pub time_limit: String,
    pub source: String,
    pub channel: String,
    pub camera: String,
    pub preset: Option<i64>,
    #[sqlx(try_from = "String")]
    pub location: Location,
    pub description: String,
    /// filed, dispatched, handled, verified_closed, not_rectified, check_manual, returned or
    /// closed.
    pub status: String,
    /// Captures merged into the case.
    pub aggregation: i64,
    /// When the problem was seen (Unix seconds).
    pub reported_at: f64,
    /// When the case was filed (Unix seconds).
    pub filed_at: f64,
    /// 处置时限 as a time (None for cases filed before deadlines existed).
    pub deadline_at: Option<f64>,
    /// When the case became final.
    pub closed_at: Option<f64>,
}

impl CaseRecord {
    /// Whether the case is past its deadline at `now` while its deadline runs (filed,
    /// dispatched, not rectified).
    pub fn overdue(&self, now: f64) -> bool {
        self.deadline_at.is_some_and(|d| d < now)
            && progress::CaseStatus::parse(&self.status)
                .is_some_and(progress::CaseStatus::deadline_runs)
    }
}

/// The idempotency key of a capture: the same capture always gets the same key. It names
/// the episode (camera, preset, rule, zone, episode id and start) and not the confirmation
/// time: an episode resolves each rule once, so this is unique, and a worker that takes a
/// camera over and confirms the same episode again, because the previous worker died after
/// filing but before its episode state was saved, produces the same key, not a second case.
pub fn capture_key(c: &Capture) -> String {
    let k = &c.candidate;
    let text = format!(
        "{}|{:?}|{}|{}|{:?}|{:.3}",
        k.camera,
        k.preset,
        k.rule.as_str(),
        k.zone,
        k.episode,
        k.start,
    );
    let h = Sha256::digest(text.as_bytes());
    format!("cap-{}", hex::encode(&h[..12]))
}

/// The columns of a case ([`CaseRecord`] reads them by name).
pub(crate) const CASE_COLUMNS: &str = "case_number, capture_id, idempotency_key, rule, major_code, \
    major_name, minor_code, minor_name, time_limit, source, channel, camera, preset, location, \
    description, status, aggregation, reported_at, filed_at, deadline_at, closed_at";

pub struct Store {
    pool: AnyPool,
    url: String,
    sqlite: bool,
    /// Where the last audit-chain walk that held ended (`audit::verify_audit_recent`).
    audit_mark: parking_lot::Mutex<Option<audit::AuditMark>>,
}

/// `$1, $2, …` placeholders for `rows` rows of `cols` values each, as `(…), (…)`: sqlx's
/// `QueryBuilder` writes `?` for the `Any` driver, which PostgreSQL does not take.
pub fn values_sql(rows: usize, cols: usize) -> String {
    (0..rows)
        .map(|r| {
            let row: Vec<String> = (1..=cols).map(|c| format!("${}", r * cols + c)).collect();
            format!("({})", row.join(", "))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn redact(url: &str) -> String {
    crate::core::redact_url(url)
}

impl Store {
    /// Connects (creating a SQLite file if needed) and migrates.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let sqlite = url.starts_with("sqlite:");
        let db = |source| StoreError::Db {
            url: redact(url),
            source,
        };
        let full = if sqlite && !url.contains("mode=") {
            format!("{url}{}mode=rwc", if url.contains('?') { "&" } else { "?" })
        } else {
            url.to_string()
        };
        let pool = AnyPoolOptions::new()
            .max_connections(if sqlite { 4 } else { 8 })
            .acquire_timeout(std::time::Duration::from_secs(10))
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if sqlite {
                        sqlx::query("PRAGMA busy_timeout = 10000")
                            .execute(&mut *conn)
                            .await?;
                        sqlx::query("PRAGMA foreign_keys = ON")
                            .execute(&mut *conn)
                            .await?;
                    }
                    Ok(())
                })
            })
            .connect(&full)
            .await
            .map_err(db)?;
        if sqlite {
            sqlx::query("PRAGMA journal_mode = WAL")
                .execute(&pool)
                .await
                .map_err(db)?;
        }
        sqlx::migrate!("./migrations").run(&pool).await?;
        let store = Self {
            pool,
            url: redact(url),
            sqlite,
            audit_mark: Default::default(),
        };
        store.tallies_if_missing().await?;
        Ok(store)
    }

    /// Begins a transaction that will write. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`): a deferred transaction that reads first cannot wait its turn to
    /// write once another connection has written (SQLITE_BUSY_SNAPSHOT, which the busy
    /// timeout does not cover), so an operator's decision would fail while the outbox was
    /// being marked delivered. PostgreSQL's row locks need nothing of the kind.
    pub(crate) async fn begin(&self) -> Result<Transaction<'static, Any>, sqlx::Error> {
        if self.sqlite {
            self.pool.begin_with("BEGIN IMMEDIATE").await
        } else {
            self.pool.begin().await
        }
    }

    pub(crate) fn err(&self, source: sqlx::Error) -> StoreError {
        StoreError::Db {
            url: self.url.clone(),
            source,
        }
    }

    pub async fn upsert_camera(
        &self,
        id: &str,
        name: &str,
        location: &Location,
    ) -> Result<(), StoreError> {
        let loc = serde_json::to_string(location).expect("location serialises");
        sqlx::query(
            "INSERT INTO cameras (id, name, location) VALUES ($1, $2, $3) \
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, location = excluded.location",
        )
        .bind(id)
        .bind(name)
        .bind(loc)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Records a capture (idempotent on its key). In `Auto` mode it also files the case and
    /// its outbox row, in the same transaction. Returns the case number when a case exists.
    pub async fn record_capture(
        &self,
        c: &Capture,
        evidence: Option<&serde_json::Value>,
        mode: FilingMode,
        policy: &CasePolicy,
        location: &Location,
        now: f64,
    ) -> Result<(String, Option<String>), StoreError> {
        let key = capture_key(c);
        let k = &c.candidate;
        // A learned suppression is kept with its evidence but never filed or queued.
        let learned = c.is_learned_suppression();
        let mut tx = self.begin().await.map_err(|e| self.err(e))?;
        // The learned columns only when there is a value: a NULL bound for a float would fix
        // the prepared statement's parameter type on PostgreSQL for later binds.
        let sql = if learned {
            "INSERT INTO captures (id, camera, preset, rule, zone, label, episode, start_at, confirm_at, \
             bbox, score, aggregation, last_evidence, status, evidence, created_at, embedding, plate, \
             plate_detail, resembles, similarity) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21) \
             ON CONFLICT (id) DO NOTHING"
        } else {
            "INSERT INTO captures (id, camera, preset, rule, zone, label, episode, start_at, confirm_at, \
             bbox, score, aggregation, last_evidence, status, evidence, created_at, embedding, plate, \
             plate_detail) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19) \
             ON CONFLICT (id) DO NOTHING"
        };
        let mut q = sqlx::query(sql)
            .bind(&key)
            .bind(&k.camera)
            .bind(k.preset.map(i64::from))
            .bind(k.rule.as_str())
            .bind(&k.zone)
            .bind(&k.label)
            .bind(k.episode.map(|e| e as i64))
            .bind(k.start)
            .bind(k.confirm)
            .bind(serde_json::to_string(&k.bbox).expect("box"))
            .bind(k.score as f64)
            .bind(c.aggregation as i64)
            .bind(c.last_evidence)
            .bind(if learned { "learned" } else { "pending_review" })
            .bind(evidence.map(|e| e.to_string()))
            .bind(now)
            .bind(
                k.embedding
                    .as_ref()
                    .map(|v| serde_json::to_string(v).expect("embedding")),
            )
            .bind(k.plate.as_ref().map(|p| p.text.clone()))
            .bind(
                k.plate
                    .as_ref()
                    .map(|p| serde_json::to_string(p).expect("plate")),
            );
        if let Some(r) = &c.resembles {
            q = q.bind(r.capture.clone()).bind(r.similarity as f64);
        }
        let inserted = q
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?
            .rows_affected()
            == 1;
        if inserted {
            self.capture_added_in(&mut tx, &key).await?;
        } else {
            // Seen before (a replay or a restart): keep the stored one, raise its count.
            sqlx::query("UPDATE captures SET aggregation = CASE WHEN aggregation < $2 THEN $2 ELSE aggregation END WHERE id = $1")
            .bind(&key)
            .bind(c.aggregation as i64)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        }
        let case = if mode == FilingMode::Auto && !learned {
            Some(self.file_in(&mut tx, &key, policy, location, now).await?)
        } else {
            None
        };
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok((key, case))
    }

    /// Raises a capture's aggregation count (a duplicate merged into it).
    pub async fn merge_duplicate(
        &self,
        capture: &Capture,
        aggregation: u32,
        last_evidence: f64,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE captures SET aggregation = $2, last_evidence = $3 WHERE id = $1 AND aggregation < $2")
        .bind(capture_key(capture))
        .bind(aggregation as i64)
        .bind(last_evidence)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// An operator confirms a capture: the case and its outbox row, in one transaction.
    /// Confirming twice returns the same case.
    pub async fn confirm(
        &self,
        capture_id: &str,
        reviewer: &str,
        policy: &CasePolicy,
        location: &Location,
        now: f64,
    ) -> Result<String, StoreError> {
        let mut tx = self.begin().await.map_err(|e| self.err(e))?;
        let status = self.status_in(&mut tx, capture_id).await?;
        if status == "rejected" {
            return Err(StoreError::NotPending {
                id: capture_id.into(),
                status,
            });
        }
        if status == "pending_review" {
            self.unclaimed_by_others_in(&mut tx, capture_id, reviewer, now)
                .await?;
        } else {
            // Confirming again is harmless for the operator who confirmed (a retried
            // request); another operator's confirmation would be a second decision.
            let by: Option<String> = sqlx::query_scalar(
                "SELECT reviewer FROM reviews WHERE capture_id = $1 AND decision = 'confirm'",
            )
            .bind(capture_id)
            .fetch_optional(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
            if let Some(by) = by.filter(|by| by != reviewer) {
                return Err(StoreError::Decided {
                    id: capture_id.into(),
                    by,
                });
            }
        }
        let case = self
            .file_in(&mut tx, capture_id, policy, location, now)
            .await?;
        if status == "pending_review" {
            self.review_in(&mut tx, capture_id, reviewer, "confirm", None, None, now)
                .await?;
            self.remember_in(
                &mut tx,
                capture_id,
                crate::model::verdict::Said::Confirmed,
                None,
                now,
            )
            .await?;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(case)
    }

    /// A camera's saved episode state (JSON), if any.
    pub async fn load_episodes(&self, camera: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .load_episodes_saved(camera)
            .await?
            .map(|(state, _)| state))
    }

    /// A camera's saved episode state (JSON) with when it was saved.
    pub async fn load_episodes_saved(
        &self,
        camera: &str,
    ) -> Result<Option<(String, f64)>, StoreError> {
        let row = sqlx::query("SELECT state, updated_at FROM episodes WHERE camera = $1")
            .bind(camera)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        row.map(|r| {
            Ok((
                r.try_get::<String, _>(0).map_err(|e| self.err(e))?,
                r.try_get::<f64, _>(1).map_err(|e| self.err(e))?,
            ))
        })
        .transpose()
    }

    /// Saves a camera's episode state (JSON), replacing the previous one.
    pub async fn save_episodes(
        &self,
        camera: &str,
        state: &str,
        now: f64,
    ) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO episodes (camera, state, updated_at) VALUES ($1, $2, $3) \
             ON CONFLICT (camera) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at")
        .bind(camera)
        .bind(state)
        .bind(now)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The case number filed for a capture, if any.
    pub async fn case_of_capture(&self, capture_id: &str) -> Result<Option<String>, StoreError> {
        let row = sqlx::query("SELECT case_number FROM cases WHERE capture_id = $1")
            .bind(capture_id)
            .fetch_optional(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        row.map(|r| r.try_get::<String, _>(0).map_err(|e| self.err(e)))
            .transpose()
    }

    /// An operator rejects a capture with a reason.
    pub async fn reject(
        &self,
        capture_id: &str,
        reviewer: &str,
        reason: &str,
        note: Option<&str>,
        now: f64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await.map_err(|e| self.err(e))?;
        let status = self.status_in(&mut tx, capture_id).await?;
        if status != "pending_review" {
            return Err(StoreError::NotPending {
                id: capture_id.into(),
                status,
            });
        }
        self.unclaimed_by_others_in(&mut tx, capture_id, reviewer, now)
            .await?;
        self.capture_status_in(&mut tx, capture_id, "rejected")
            .await?;
        self.review_in(
            &mut tx,
            capture_id,
            reviewer,
            "reject",
            Some(reason),
            note,
            now,
        )
        .await?;
        self.remember_in(
            &mut tx,
            capture_id,
            crate::model::verdict::Said::Rejected,
            Some(reason),
            now,
        )
        .await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Refuses a decision on a capture that another operator holds a live claim on.
    async fn unclaimed_by_others_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        capture_id: &str,
        reviewer: &str,
        now: f64,
    ) -> Result<(), StoreError> {
        match self.holder_in(tx, capture_id, now).await? {
            Some(holder) if holder != reviewer => Err(StoreError::Claimed {
                id: capture_id.into(),
                holder,
            }),
            _ => Ok(()),
        }
    }

    async fn status_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        capture_id: &str,
    ) -> Result<String, StoreError> {
        let row = sqlx::query("SELECT status FROM captures WHERE id = $1")
            .bind(capture_id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(|e| self.err(e))?
            .ok_or_else(|| StoreError::NoCapture(capture_id.into()))?;
        row.try_get::<String, _>(0).map_err(|e| self.err(e))
    }

    #[allow(clippy::too_many_arguments)]
    async fn review_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        capture_id: &str,
        reviewer: &str,
        decision: &str,
        reason: Option<&str>,
        note: Option<&str>,
        now: f64,
    ) -> Result<(), StoreError> {
        let id = format!("rev-{capture_id}-{decision}");
        self.end_claim_in(tx, capture_id).await?;
        let added = sqlx::query(
            "INSERT INTO reviews (id, capture_id, reviewer, decision, reason, note, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (id) DO NOTHING",
        )
        .bind(&id)
        .bind(capture_id)
        .bind(reviewer)
        .bind(decision)
        .bind(reason)
        .bind(note)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(|e| self.err(e))?
        .rows_affected();
        if added == 1 {
            self.verdict_in(tx, capture_id, decision, reason, now)
                .await?;
        }
        self.audit_in(
            tx,
            Some(format!("audit-{id}")),
            now,
            reviewer,
            &format!("review.{decision}"),
            capture_id,
            reason,
        )
        .await?;
        Ok(())
    }

    /// Files the case for a capture inside `tx` (or returns the existing one).
    async fn file_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        capture_id: &str,
        policy: &CasePolicy,
        location: &Location,
        now: f64,
    ) -> Result<String, StoreError> {
        if let Some(row) = sqlx::query("SELECT case_number FROM cases WHERE capture_id = $1")
            .bind(capture_id)
            .fetch_optional(&mut **tx)
            .await
            .map_err(|e| self.err(e))?
        {
            return row.try_get::<String, _>(0).map_err(|e| self.err(e));
        }
        let row = sqlx::query(
            "SELECT camera, preset, rule, zone, label, confirm_at, aggregation, evidence, start_at, plate \
             FROM captures WHERE id = $1",
        )
        .bind(capture_id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(|e| self.err(e))?
        .ok_or_else(|| StoreError::NoCapture(capture_id.into()))?;
        let g = |e| self.err(e);
        let camera: String = row.try_get(0).map_err(g)?;
        let preset: Option<i64> = row.try_get(1).map_err(g)?;
        let rule_s: String = row.try_get(2).map_err(g)?;
        let zone: String = row.try_get(3).map_err(g)?;
        let label: String = row.try_get(4).map_err(g)?;
        let confirm_at: f64 = row.try_get(5).map_err(g)?;
        let aggregation: i64 = row.try_get(6).map_err(g)?;
        let evidence: Option<String> = row.try_get(7).map_err(g)?;
        let start_at: f64 = row.try_get(8).map_err(g)?;
        let plate: Option<String> = row.try_get(9).map_err(g)?;
        let rule: RuleKind = serde_json::from_value(serde_json::Value::String(rule_s.clone()))
            .map_err(|e| StoreError::Corrupt(format!("rule {rule_s:?}: {e}")))?;
        let table = &policy.table;
        let cat = table
            .rules
            .get(&rule)
            .ok_or_else(|| StoreError::Corrupt(format!("no category for {rule_s}")))?;

        // Case numbers: CW + the reporting day + a counter shared by every worker on this
        // database.
        let day = policy.day(confirm_at);
        let counter = CasePolicy::counter(&day);
        sqlx::query(
            "INSERT INTO counters (name, value) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING",
        )
        .bind(&counter)
        .execute(&mut **tx)
        .await
        .map_err(g)?;
        let n: i64 = sqlx::query_scalar(
            "UPDATE counters SET value = value + 1 WHERE name = $1 RETURNING value",
        )
        .bind(&counter)
        .fetch_one(&mut **tx)
        .await
        .map_err(g)?;
        let case_number = CasePolicy::number(&day, n);
        let key = CasePolicy::idempotency_key(capture_id);
        let minutes = ((confirm_at - start_at) / 60.0).round() as i64;
        let description = CasePolicy::description(cat, &rule_s, &camera, &zone, &label, minutes);
        let loc_json = serde_json::to_string(location).expect("location");
        let deadline = policy.deadline(&cat.time_limit, now);
        sqlx::query("INSERT INTO cases (case_number, capture_id, idempotency_key, rule, major_code, major_name, \
             minor_code, minor_name, time_limit, source, channel, camera, preset, location, description, \
             status, aggregation, evidence, reported_at, filed_at, deadline_at, status_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, 'filed', $16, $17, $18, $19, $20, $19)")
        .bind(&case_number)
        .bind(capture_id)
        .bind(&key)
        .bind(&rule_s)
        .bind(&cat.major_code)
        .bind(&cat.major_name)
        .bind(&cat.minor_code)
        .bind(&cat.minor_name)
        .bind(&cat.time_limit)
        .bind(&table.source)
        .bind(&table.channel)
        .bind(&camera)
        .bind(preset)
        .bind(&loc_json)
        .bind(&description)
        .bind(aggregation)
        .bind(&evidence)
        .bind(confirm_at)
        .bind(now)
        .bind(deadline)
        .execute(&mut **tx)
        .await
        .map_err(g)?;
        self.event_in(
            tx,
            &case_number,
            &format!("filed-{case_number}"),
            "filed",
            "citywatch",
            None,
            now,
        )
        .await?;
        self.capture_status_in(tx, capture_id, "filed").await?;
        self.case_filed_in(tx, capture_id, now).await?;
        let payload = serde_json::json!({
            "event": "case_filed",
            "case_number": case_number,
            "idempotency_key": key,
            "source": table.source,
            "channel": table.channel,
            "category": {
                "major_code": cat.major_code, "major_name": cat.major_name,
                "minor_code": cat.minor_code, "minor_name": cat.minor_name,
                "scheme": table.scheme,
            },
            "time_limit": cat.time_limit,
            "rule": rule_s,
            "camera": camera,
            "preset": preset,
            "location": location,
            "description": description,
            "aggregation": aggregation,
            "reported_at": confirm_at,
            "deadline_at": deadline,
            "evidence": evidence.as_deref().and_then(|e| serde_json::from_str::<serde_json::Value>(e).ok()),
            "plate": plate,
        });
        sqlx::query("INSERT INTO outbox (id, case_number, idempotency_key, payload, state, attempts, next_attempt_at) \
             VALUES ($1, $2, $3, $4, 'pending', 0, $5)")
        .bind(format!("out-{case_number}"))
        .bind(&case_number)
        .bind(&key)
        .bind(payload.to_string())
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(g)?;
        Ok(case_number)
    }

    pub async fn case(&self, case_number: &str) -> Result<Option<CaseRecord>, StoreError> {
        sqlx::query_as(&format!(
            "SELECT {CASE_COLUMNS} FROM cases WHERE case_number = $1"
        ))
        .bind(case_number)
        .fetch_optional(&self.pool)
        .await
        .map_err(|e| self.err(e))
    }

    /// (captures by status, cases, outbox by state), from the tallies and the outbox's index:
    /// for status output, `/metrics` and tests.
    pub async fn counts(&self) -> Result<Counts, StoreError> {
        let one = |q: &'static str| {
            let q = q.to_string();
            async move {
                sqlx::query_scalar::<_, i64>(&q)
                    .fetch_one(&self.pool)
                    .await
                    .map_err(|e| self.err(e))
            }
        };
        use tally::Subject;
        Ok(Counts {
            captures: self.tally_sum(Subject::Captures, None, None, None).await?,
            pending_review: self
                .tally_sum(Subject::Captures, None, None, Some("pending_review"))
                .await?,
            cases: self.tally_sum(Subject::Cases, None, None, None).await?,
            // Pending and dead rows are few, and counted from the outbox's index.
            outbox_pending: one("SELECT COUNT(*) FROM outbox WHERE state = 'pending'").await?,
            outbox_delivered: self
                .tally_sum(Subject::Outbox, None, None, Some("delivered"))
                .await?,
            outbox_dead: one("SELECT COUNT(*) FROM outbox WHERE state = 'dead'").await?,
        })
    }

    /// The database URL, credentials redacted.
    pub fn url(&self) -> &str {
        &self.url
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub(crate) fn db_err(&self, e: sqlx::Error) -> StoreError {
        self.err(e)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Counts {
    pub captures: i64,
    pub pending_review: i64,
    pub cases: i64,
    pub outbox_pending: i64,
    pub outbox_delivered: i64,
    pub outbox_dead: i64,
}
