//! The verdict memory's rows and the learned suppressions: what the review UI's learning
//! page reads and changes. Every change is audited.

use sqlx::{Any, Row, Transaction};

use super::{Store, StoreError};
use crate::model::RuleKind;
use crate::model::verdict::{MemoryEntry, Said};

/// A remembered verdict as the learning page lists it (without its vector).
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct MemoryRow {
    pub capture_id: String,
    pub camera: String,
    pub zone: String,
    pub rule: String,
    pub said: String,
    pub reason: Option<String>,
    pub at: f64,
    /// Learned suppressions that link to it.
    pub suppressions: i64,
}

impl Store {
    /// Inside a review's transaction: remembers the verdict on a capture that has an
    /// embedding, when the verdict teaches (see [`Said::teaches`]).
    pub(super) async fn remember_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        capture_id: &str,
        said: Said,
        reason: Option<&str>,
        now: f64,
    ) -> Result<(), StoreError> {
        if !said.teaches(reason) {
            return Ok(());
        }
        sqlx::query("INSERT INTO verdict_memory (capture_id, camera, zone, rule, said, reason, embedding, at) \
             SELECT id, camera, zone, rule, $2, $3, embedding, $4 FROM captures \
             WHERE id = $1 AND embedding IS NOT NULL \
             ON CONFLICT (capture_id) DO UPDATE SET \
             said = excluded.said, reason = excluded.reason, at = excluded.at")
        .bind(capture_id)
        .bind(said.as_str())
        .bind(reason)
        .bind(now)
        .execute(&mut **tx)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The remembered verdict on one capture, with its vector.
    pub async fn memory_entry(&self, capture_id: &str) -> Result<Option<MemoryEntry>, StoreError> {
        let rows = self
            .memory_rows("WHERE capture_id = $1", Some(capture_id))
            .await?;
        Ok(rows.into_iter().next())
    }

    async fn memory_rows(
        &self,
        filter: &str,
        arg: Option<&str>,
    ) -> Result<Vec<MemoryEntry>, StoreError> {
        let sql = format!(
            "SELECT capture_id, camera, zone, rule, said, reason, embedding, at, \
             (SELECT c.plate FROM captures c WHERE c.id = verdict_memory.capture_id) AS plate \
             FROM verdict_memory {filter} ORDER BY at, capture_id"
        );
        type Stored = (
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            String,
            f64,
            Option<String>,
        );
        let mut q = sqlx::query_as::<_, Stored>(&sql);
        if let Some(a) = arg {
            q = q.bind(a.to_string());
        }
        let rows = q.fetch_all(self.pool()).await.map_err(|e| self.err(e))?;
        let mut out = Vec::new();
        for (capture, camera, zone, rule, said, reason, embedding, at, plate) in rows {
            let (Some(rule), Some(said), Ok(embedding)) = (
                RuleKind::parse(&rule),
                Said::parse(&said),
                serde_json::from_str::<Vec<f32>>(&embedding),
            ) else {
                continue;
            };
            out.push(MemoryEntry {
                capture,
                camera,
                zone,
                rule,
                said,
                reason,
                embedding,
                at,
                plate,
            });
        }
        Ok(out)
    }

    /// The remembered verdicts of one camera, zone and rule, newest first: what a new
    /// capture there is compared with (the capture view's similar past verdicts).
    pub async fn memory_of(
        &self,
        camera: &str,
        zone: &str,
        rule: &str,
    ) -> Result<Vec<MemoryEntry>, StoreError> {
        let rows: Vec<(String, String, Option<String>, String, f64)> = sqlx::query_as(
            "SELECT capture_id, said, reason, embedding, at FROM verdict_memory \
             WHERE camera = $1 AND zone = $2 AND rule = $3 ORDER BY at DESC, capture_id",
        )
        .bind(camera)
        .bind(zone)
        .bind(rule)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        let Some(kind) = RuleKind::parse(rule) else {
            return Ok(Vec::new());
        };
        Ok(rows
            .into_iter()
            .filter_map(|(capture, said, reason, embedding, at)| {
                Some(MemoryEntry {
                    capture,
                    camera: camera.into(),
                    zone: zone.into(),
                    rule: kind,
                    said: Said::parse(&said)?,
                    reason,
                    embedding: serde_json::from_str(&embedding).ok()?,
                    at,
                    plate: None,
                })
            })
            .collect())
    }

    /// A capture's appearance vector, when its detector gave one.
    pub async fn capture_embedding(&self, id: &str) -> Result<Option<Vec<f32>>, StoreError> {
        let e: Option<(Option<String>,)> =
            sqlx::query_as("SELECT embedding FROM captures WHERE id = $1")
                .bind(id)
                .fetch_optional(self.pool())
                .await
                .map_err(|e| self.err(e))?;
        Ok(e.and_then(|(e,)| e)
            .and_then(|e| serde_json::from_str(&e).ok()))
    }

    /// A capture's reviews, oldest first: (reviewer, decision, reason, at).
    pub async fn reviews_of(
        &self,
        capture_id: &str,
    ) -> Result<Vec<(String, String, Option<String>, f64)>, StoreError> {
        sqlx::query_as(
            "SELECT reviewer, decision, reason, at FROM reviews WHERE capture_id = $1 \
             ORDER BY at, id",
        )
        .bind(capture_id)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))
    }

    /// Every remembered verdict, oldest first: what the verdict memory is built from
    /// (`VerdictMemory::from_entries`, which keeps the newest `max_per_zone` of each camera,
    /// zone and rule).
    pub async fn memory_entries(&self) -> Result<Vec<MemoryEntry>, StoreError> {
        self.memory_rows("", None).await
    }

    /// Deletes the rows that aged out of the memory (beyond the newest `keep` per camera,
    /// zone and rule); returns how many.
    pub async fn prune_memory(&self, keep: usize) -> Result<u64, StoreError> {
        let rows: Vec<(String, String, String, String)> = sqlx::query_as(
            "SELECT capture_id, camera, zone, rule FROM verdict_memory \
             ORDER BY at DESC, capture_id DESC",
        )
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        let mut count: std::collections::HashMap<(String, String, String), usize> =
            Default::default();
        let mut n = 0;
        // Newest first: everything after the first `keep` of a key goes.
        for (id, camera, zone, rule) in rows {
            let c = count.entry((camera, zone, rule)).or_default();
            *c += 1;
            if *c > keep {
                n += sqlx::query("DELETE FROM verdict_memory WHERE capture_id = $1")
                    .bind(id)
                    .execute(self.pool())
                    .await
                    .map_err(|e| self.err(e))?
                    .rows_affected();
            }
        }
        Ok(n)
    }

    /// The remembered verdicts, newest first, with how many suppressions link to each.
    pub async fn memory_list(&self, limit: i64) -> Result<Vec<MemoryRow>, StoreError> {
        let g = |e| self.err(e);
        let sql = format!(
            "SELECT m.capture_id, m.camera, m.zone, m.rule, m.said, m.reason, m.at, \
             CAST(0 AS BIGINT) AS suppressions FROM verdict_memory m ORDER BY m.at DESC, m.capture_id LIMIT {}",
            limit.clamp(1, 1000)
        );
        let mut rows: Vec<MemoryRow> = sqlx::query_as(&sql)
            .fetch_all(self.pool())
            .await
            .map_err(g)?;
        if rows.is_empty() {
            return Ok(rows);
        }
        // The suppressions, counted for the listed verdicts only, by the captures'
        // `resembles` index (a correlated count lets SQLite 3.46 scan that index per row).
        let ids: Vec<String> = (1..=rows.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT resembles, COUNT(*) FROM captures WHERE resembles IN ({}) \
             GROUP BY resembles",
            ids.join(", ")
        );
        let mut q = sqlx::query_as::<_, (String, i64)>(&sql);
        for r in &rows {
            q = q.bind(r.capture_id.clone());
        }
        let counts: std::collections::HashMap<String, i64> = q
            .fetch_all(self.pool())
            .await
            .map_err(g)?
            .into_iter()
            .collect();
        for r in &mut rows {
            r.suppressions = counts.get(&r.capture_id).copied().unwrap_or(0);
        }
        Ok(rows)
    }

    /// Forgets a remembered verdict; says whether there was one.
    pub async fn forget_memory(
        &self,
        capture_id: &str,
        actor: &str,
        now: f64,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin().await.map_err(|e| self.err(e))?;
        let n = sqlx::query("DELETE FROM verdict_memory WHERE capture_id = $1")
            .bind(capture_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?
            .rows_affected();
        if n > 0 {
            self.audit_in(&mut tx, None, now, actor, "learn.forget", capture_id, None)
                .await?;
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(n > 0)
    }

    /// Undoes a learned suppression: the capture goes into the review queue.
    pub async fn undo_learned(
        &self,
        capture_id: &str,
        actor: &str,
        now: f64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await.map_err(|e| self.err(e))?;
        let learned: Option<(String,)> =
            sqlx::query_as("SELECT status FROM captures WHERE id = $1 AND status = 'learned'")
                .bind(capture_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        if learned.is_none() {
            let status = sqlx::query("SELECT status FROM captures WHERE id = $1")
                .bind(capture_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.err(e))?
                .ok_or_else(|| StoreError::NoCapture(capture_id.into()))?
                .try_get::<String, _>(0)
                .map_err(|e| self.err(e))?;
            return Err(StoreError::NotPending {
                id: capture_id.into(),
                status,
            });
        }
        self.capture_status_in(&mut tx, capture_id, "pending_review")
            .await?;
        self.audit_in(&mut tx, None, now, actor, "learn.undo", capture_id, None)
            .await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(())
    }
}

/// An applied calibration override.
#[derive(Debug, Clone, PartialEq, serde::Serialize, sqlx::FromRow)]
pub struct Override {
    pub camera: String,
    pub rule: String,
    pub setting: String,
    pub value: f64,
    pub applied_by: String,
    pub applied_at: f64,
}

impl Store {
    /// Every reviewed capture's camera, rule, score and verdict: the calibration history.
    pub async fn reviewed_history(
        &self,
    ) -> Result<Vec<crate::model::verdict::Reviewed>, StoreError> {
        let rows: Vec<(String, String, f64, String)> = sqlx::query_as(
            "SELECT c.camera, c.rule, c.score, r.decision FROM captures c \
             JOIN reviews r ON r.capture_id = c.id ORDER BY c.id",
        )
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .filter_map(|(camera, rule, score, decision)| {
                Some(crate::model::verdict::Reviewed {
                    camera,
                    rule: RuleKind::parse(&rule)?,
                    score,
                    confirmed: decision == "confirm",
                })
            })
            .collect())
    }

    /// Stores an override (replacing an earlier one of the same camera, rule and setting),
    /// audited.
    pub async fn apply_override(&self, o: &Override) -> Result<(), StoreError> {
        let mut tx = self.begin().await.map_err(|e| self.err(e))?;
        sqlx::query("INSERT INTO calibration (camera, rule, setting, value, applied_by, applied_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (camera, rule, setting) DO UPDATE SET \
             value = excluded.value, applied_by = excluded.applied_by, applied_at = excluded.applied_at")
        .bind(&o.camera)
        .bind(&o.rule)
        .bind(&o.setting)
        .bind(o.value)
        .bind(&o.applied_by)
        .bind(o.applied_at)
        .execute(&mut *tx)
        .await
        .map_err(|e| self.err(e))?;
        let subject = format!("{}/{}/{}={}", o.camera, o.rule, o.setting, o.value);
        self.audit_in(
            &mut tx,
            None,
            o.applied_at,
            &o.applied_by,
            "calibration.apply",
            &subject,
            None,
        )
        .await?;
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(())
    }

    /// The applied overrides.
    pub async fn overrides(&self) -> Result<Vec<Override>, StoreError> {
        sqlx::query_as(
            "SELECT camera, rule, setting, value, applied_by, applied_at FROM calibration \
             ORDER BY camera, rule, setting",
        )
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))
    }
}
