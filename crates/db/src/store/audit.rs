//! The audit log as a hash chain. Every row gets the next sequence number (a counter row
//! that serialises writers, on SQLite and PostgreSQL alike) and a hash over its own fields
//! and the previous row's hash, so editing or deleting a row, or cutting the log's tail,
//! is found by [`Store::verify_audit`] (`citywatch audit verify`).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::{Any, Transaction};

use super::{Store, StoreError};

/// The counter that numbers audit rows.
const SEQ: &str = "audit-seq";
/// The previous hash of the first chained row.
const GENESIS: &str = "citywatch-audit-genesis";

/// One audit row, as the viewer shows it.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct AuditRow {
    pub seq: Option<i64>,
    pub at: f64,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub detail: Option<String>,
}

/// The viewer's filters; every one optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditFilter {
    pub actor: Option<String>,
    /// An action, or its prefix ending in '.' (`review.` is every review).
    pub action: Option<String>,
    /// Part of the subject (a capture, a case number, a user).
    pub subject: Option<String>,
    /// Unix seconds, inclusive.
    pub from: Option<f64>,
    pub until: Option<f64>,
    /// Most rows, newest first. Default 200, at most 1000.
    pub limit: Option<i64>,
}

/// What a walk of the chain found.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditCheck {
    /// Chained rows checked.
    pub rows: i64,
    /// Rows from before the chain existed (not covered).
    pub unchained: i64,
    /// The first break: (sequence number, what is wrong). None: the chain holds.
    #[schema(value_type = Option<Vec<serde_json::Value>>)]
    pub broken: Option<(i64, String)>,
    /// Rows checked since the last full walk (from where it ended); None when this check
    /// was a full walk.
    pub since_full_walk: Option<i64>,
    /// When the last full walk was made (Unix seconds), when known.
    pub walked_at: Option<f64>,
}

/// The hash of one row: its fields and the previous row's hash (public for tools that
/// load a log in bulk, such as the volume bench).
pub fn row_hash(
    prev: &str,
    seq: i64,
    at: f64,
    actor: &str,
    action: &str,
    subject: &str,
    detail: Option<&str>,
) -> String {
    let mut h = Sha256::new();
    for part in [
        prev,
        &seq.to_string(),
        &format!("{at:.3}"),
        actor,
        action,
        subject,
        detail.unwrap_or("\u{0}"),
    ] {
        h.update((part.len() as u64).to_le_bytes());
        h.update(part.as_bytes());
    }
    hex::encode(h.finalize())
}

impl Store {
    /// Appends one audit row inside `tx`. With an `id`, a row of that id already there makes
    /// this a no-op (idempotent actions log once).
    #[allow(clippy::too_many_arguments)]
    pub(crate) async fn audit_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        id: Option<String>,
        now: f64,
        actor: &str,
        action: &str,
        subject: &str,
        detail: Option<&str>,
    ) -> Result<(), StoreError> {
        let g = |e| self.err(e);
        let id = match id {
            Some(id) => {
                let seen = sqlx::query("SELECT 1 FROM audit_log WHERE id = $1")
                    .bind(&id)
                    .fetch_optional(&mut **tx)
                    .await
                    .map_err(g)?;
                if seen.is_some() {
                    return Ok(());
                }
                id
            }
            None => format!("audit-{}", super::users::random_secret()),
        };
        sqlx::query(
            "INSERT INTO counters (name, value) VALUES ($1, 0) ON CONFLICT (name) DO NOTHING",
        )
        .bind(SEQ)
        .execute(&mut **tx)
        .await
        .map_err(g)?;
        // Takes the counter row's lock until commit: writers append one at a time.
        let seq: i64 = sqlx::query_scalar(
            "UPDATE counters SET value = value + 1 WHERE name = $1 RETURNING value",
        )
        .bind(SEQ)
        .fetch_one(&mut **tx)
        .await
        .map_err(g)?;
        let prev = if seq == 1 {
            GENESIS.to_string()
        } else {
            sqlx::query_scalar::<_, String>("SELECT hash FROM audit_log WHERE seq = $1")
                .bind(seq - 1)
                .fetch_optional(&mut **tx)
                .await
                .map_err(g)?
                // The previous row is gone: chain onto the gap, which verify reports.
                .unwrap_or_else(|| GENESIS.to_string())
        };
        let hash = row_hash(&prev, seq, now, actor, action, subject, detail);
        sqlx::query(
            "INSERT INTO audit_log (id, at, actor, action, subject, detail, seq, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(&id)
        .bind(now)
        .bind(actor)
        .bind(action)
        .bind(subject)
        .bind(detail)
        .bind(seq)
        .bind(&prev)
        .bind(&hash)
        .execute(&mut **tx)
        .await
        .map_err(g)?;
        Ok(())
    }

    /// One audit-log row, in its own transaction.
    pub async fn audit(
        &self,
        actor: &str,
        action: &str,
        subject: &str,
        detail: Option<&str>,
        now: f64,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await.map_err(|e| self.err(e))?;
        self.audit_in(&mut tx, None, now, actor, action, subject, detail)
            .await?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Audit rows, newest first, filtered.
    pub async fn audit_rows(&self, f: &AuditFilter) -> Result<Vec<AuditRow>, StoreError> {
        let mut sql = String::from(
            "SELECT seq, at, actor, action, subject, detail FROM audit_log WHERE 1 = 1",
        );
        let mut args: Vec<String> = Vec::new();
        let mut nums: Vec<f64> = Vec::new();
        let mut n = 0;
        let mut next = || {
            n += 1;
            format!("${n}")
        };
        if let Some(a) = f.actor.as_deref().filter(|s| !s.is_empty()) {
            sql += &format!(" AND actor = {}", next());
            args.push(a.to_string());
        }
        if let Some(a) = f.action.as_deref().filter(|s| !s.is_empty()) {
            if a.ends_with('.') {
                sql += &format!(" AND action LIKE {}", next());
                args.push(format!("{}%", a.replace(['%', '_'], "")));
            } else {
                sql += &format!(" AND action = {}", next());
                args.push(a.to_string());
            }
        }
        if let Some(s) = f.subject.as_deref().filter(|s| !s.is_empty()) {
            sql += &format!(" AND subject LIKE {}", next());
            args.push(format!("%{}%", s.replace(['%', '_'], "")));
        }
        if let Some(t) = f.from {
            sql += &format!(" AND at >= {}", next());
            nums.push(t);
        }
        if let Some(t) = f.until {
            sql += &format!(" AND at <= {}", next());
            nums.push(t);
        }
        let limit = f.limit.unwrap_or(200).clamp(1, 1000);
        sql += &format!(" ORDER BY at DESC, seq DESC LIMIT {limit}");
        let mut q = sqlx::query_as(&sql);
        // Text filters first, then times: the order their placeholders were numbered in.
        for a in args {
            q = q.bind(a);
        }
        for v in nums {
            q = q.bind(v);
        }
        q.fetch_all(self.pool()).await.map_err(|e| self.err(e))
    }

    /// Walks the chain from its first row: each row's hash recomputed, each link to the
    /// previous row checked, no number missing, and the last number the counter's
    /// (`citywatch audit verify`, and the web's hourly walk). When it holds, the store
    /// remembers where it ended, for [`Store::verify_audit_recent`].
    pub async fn verify_audit(&self) -> Result<AuditCheck, StoreError> {
        self.full_walk(None).await
    }

    /// [`Store::verify_audit`] at `now`, which the check remembers as the full walk's time.
    pub async fn verify_audit_walk(&self, now: f64) -> Result<AuditCheck, StoreError> {
        self.full_walk(Some(now)).await
    }

    async fn full_walk(&self, now: Option<f64>) -> Result<AuditCheck, StoreError> {
        let walk = self.walk_audit(None).await?;
        let check = AuditCheck {
            rows: walk.rows,
            unchained: self.unchained().await?,
            broken: walk.broken.clone(),
            since_full_walk: None,
            walked_at: now,
        };
        *self.audit_mark.lock() = walk.broken.is_none().then_some(AuditMark {
            seq: walk.last.0,
            hash: walk.last.1,
            rows: walk.rows,
            walked: walk.rows,
            walked_at: now,
        });
        Ok(check)
    }

    /// The chain checked from where the last walk that held ended: that row still has its
    /// hash, and every row after it is checked as [`Store::verify_audit`] checks them. What
    /// the audit page shows on every view, at the cost of the rows written since; a full
    /// walk when there is no such point yet.
    pub async fn verify_audit_recent(&self) -> Result<AuditCheck, StoreError> {
        let Some(mark) = self.audit_mark.lock().clone() else {
            return self.verify_audit().await;
        };
        let walk = self.walk_audit(Some((mark.seq, mark.hash.clone()))).await?;
        if walk.broken.is_none() {
            *self.audit_mark.lock() = Some(AuditMark {
                seq: walk.last.0,
                hash: walk.last.1.clone(),
                rows: mark.rows + walk.rows,
                walked: mark.walked,
                walked_at: mark.walked_at,
            });
        }
        Ok(AuditCheck {
            rows: mark.rows + walk.rows,
            unchained: self.unchained().await?,
            broken: walk.broken,
            since_full_walk: Some(mark.rows + walk.rows - mark.walked),
            walked_at: mark.walked_at,
        })
    }

    async fn unchained(&self) -> Result<i64, StoreError> {
        sqlx::query_scalar("SELECT COUNT(*) FROM audit_log WHERE seq IS NULL")
            .fetch_one(self.pool())
            .await
            .map_err(|e| self.err(e))
    }

    /// Walks the chain after `from` (a row's number and hash, which must still be there),
    /// or from its start.
    async fn walk_audit(&self, from: Option<(i64, String)>) -> Result<Walk, StoreError> {
        let g = |e| self.err(e);
        type Chained = (
            i64,
            f64,
            String,
            String,
            String,
            Option<String>,
            String,
            String,
        );
        let (after, mut prev_hash) = match &from {
            Some((seq, hash)) => {
                let still: Option<String> =
                    sqlx::query_scalar("SELECT hash FROM audit_log WHERE seq = $1")
                        .bind(*seq)
                        .fetch_optional(self.pool())
                        .await
                        .map_err(g)?;
                if still.as_deref() != Some(hash.as_str()) {
                    return Ok(Walk {
                        rows: 0,
                        broken: Some((*seq, "it changed since the chain was last walked".into())),
                        last: (*seq, hash.clone()),
                    });
                }
                (*seq, hash.clone())
            }
            None => (0, GENESIS.to_string()),
        };
        let rows: Vec<Chained> = sqlx::query_as(
            "SELECT seq, at, actor, action, subject, detail, prev_hash, hash FROM audit_log \
             WHERE seq > $1 ORDER BY seq",
        )
        .bind(after)
        .fetch_all(self.pool())
        .await
        .map_err(g)?;
        let mut walk = Walk {
            rows: rows.len() as i64,
            broken: None,
            last: (after, prev_hash.clone()),
        };
        let mut expected = after + 1;
        for (seq, at, actor, action, subject, detail, prev, hash) in rows {
            let problem = if seq != expected {
                Some(if seq - 1 == expected {
                    format!("row {expected} is missing (deleted)")
                } else {
                    format!("rows {expected} to {} are missing (deleted)", seq - 1)
                })
            } else if prev != prev_hash {
                Some("its link to the previous row does not match".to_string())
            } else if row_hash(&prev, seq, at, &actor, &action, &subject, detail.as_deref()) != hash
            {
                Some("its content does not match its hash (edited)".to_string())
            } else {
                None
            };
            if let Some(p) = problem {
                walk.broken = Some((seq, p));
                return Ok(walk);
            }
            prev_hash = hash;
            walk.last = (seq, prev_hash.clone());
            expected = seq + 1;
        }
        let counter: Option<i64> = sqlx::query_scalar("SELECT value FROM counters WHERE name = $1")
            .bind(SEQ)
            .fetch_optional(self.pool())
            .await
            .map_err(g)?;
        if let Some(last) = counter
            && last >= expected
        {
            walk.broken = Some((
                expected,
                format!("rows {expected} to {last} are missing from the end"),
            ));
        }
        Ok(walk)
    }
}

/// Where the last walk of the chain that held ended.
#[derive(Debug, Clone)]
pub(crate) struct AuditMark {
    seq: i64,
    hash: String,
    /// Rows checked up to it.
    rows: i64,
    /// Of those, the rows the last full walk checked.
    walked: i64,
    /// When that walk was made, if it was told.
    walked_at: Option<f64>,
}

/// What one walk found.
struct Walk {
    rows: i64,
    broken: Option<(i64, String)>,
    /// The last row that held: its number and hash.
    last: (i64, String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_covers_every_field_and_the_link() {
        let base = row_hash("p", 1, 10.0, "a", "b", "c", None);
        assert_ne!(base, row_hash("q", 1, 10.0, "a", "b", "c", None));
        assert_ne!(base, row_hash("p", 2, 10.0, "a", "b", "c", None));
        assert_ne!(base, row_hash("p", 1, 10.001, "a", "b", "c", None));
        assert_ne!(base, row_hash("p", 1, 10.0, "a", "b", "c", Some("")));
        // Field boundaries count: "ab"+"c" is not "a"+"bc".
        assert_ne!(
            row_hash("p", 1, 10.0, "ab", "c", "d", None),
            row_hash("p", 1, 10.0, "a", "bc", "d", None)
        );
    }
}
