//! Claims on the review queue: `claim_next` reserves the next pending capture for one
//! operator, so two operators working the same queue never get the same capture. A claim ends
//! with a decision on its capture, a release, or its expiry (`[web] claim_minutes`); an
//! expired claim can be taken by anyone. A decision on a capture that another operator holds
//! is refused (see [`Store::confirm`] and [`Store::reject`]).
//!
//! The one write that takes a claim is a conditional upsert (insert, or take over a claim
//! that has expired), so of two operators racing for a capture exactly one wins, on SQLite
//! and on PostgreSQL alike; the loser moves on to the next capture.

use sqlx::{Any, Transaction};

use super::query::{CaptureFilter, CaptureRow};
use super::{Store, StoreError};

/// Candidates read per round; a round that loses every one of them to other operators reads
/// again.
const ROUND: i64 = 16;

/// A capture claimed for an operator, and until when.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub capture: CaptureRow,
    pub expires_at: f64,
}

impl Store {
    /// The next pending capture in the filter's order that no one else holds, claimed for
    /// `holder` until `now + ttl_s`. An operator who already holds a pending capture gets it
    /// again, its claim renewed (a reloaded page does not take a second one). None: nothing
    /// is left to claim.
    pub async fn claim_next(
        &self,
        holder: &str,
        f: &CaptureFilter,
        now: f64,
        ttl_s: f64,
    ) -> Result<Option<Claim>, StoreError> {
        let g = |e| self.err(e);
        let held: Option<String> = sqlx::query_scalar(
            "SELECT r.capture_id FROM review_claims r JOIN captures c ON c.id = r.capture_id \
             WHERE r.holder = $1 AND r.expires_at > $2 AND c.status = 'pending_review' \
             ORDER BY r.claimed_at, r.capture_id LIMIT 1",
        )
        .bind(holder)
        .bind(now)
        .fetch_optional(self.pool())
        .await
        .map_err(g)?;
        if let Some(id) = held {
            sqlx::query(
                "UPDATE review_claims SET expires_at = $1 WHERE capture_id = $2 AND holder = $3",
            )
            .bind(now + ttl_s)
            .bind(&id)
            .bind(holder)
            .execute(self.pool())
            .await
            .map_err(g)?;
            if let Some(capture) = self.capture(&id).await? {
                return Ok(Some(Claim {
                    capture,
                    expires_at: now + ttl_s,
                }));
            }
        }
        loop {
            let candidates = self.unclaimed(f, now, ROUND).await?;
            if candidates.is_empty() {
                return Ok(None);
            }
            for id in candidates {
                if !self.take(&id, holder, now, ttl_s).await? {
                    continue;
                }
                // A decision may have landed between the read and the claim.
                match self.capture(&id).await? {
                    Some(capture) if capture.status == "pending_review" => {
                        return Ok(Some(Claim {
                            capture,
                            expires_at: now + ttl_s,
                        }));
                    }
                    _ => {
                        self.release_claims(holder, Some(&id)).await?;
                    }
                }
            }
        }
    }

    /// Takes the claim on one capture: inserts it, or takes over a claim that has expired.
    /// False: someone holds it.
    async fn take(&self, id: &str, holder: &str, now: f64, ttl_s: f64) -> Result<bool, StoreError> {
        let done = sqlx::query(
            "INSERT INTO review_claims (capture_id, holder, claimed_at, expires_at) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (capture_id) DO UPDATE SET \
             holder = excluded.holder, claimed_at = excluded.claimed_at, \
             expires_at = excluded.expires_at WHERE review_claims.expires_at <= $3",
        )
        .bind(id)
        .bind(holder)
        .bind(now)
        .bind(now + ttl_s)
        .execute(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(done.rows_affected() == 1)
    }

    /// Gives back `holder`'s claims: the one on `id`, or all of them. Returns how many.
    pub async fn release_claims(&self, holder: &str, id: Option<&str>) -> Result<u64, StoreError> {
        let done = match id {
            Some(id) => {
                sqlx::query("DELETE FROM review_claims WHERE holder = $1 AND capture_id = $2")
                    .bind(holder)
                    .bind(id)
                    .execute(self.pool())
                    .await
            }
            None => {
                sqlx::query("DELETE FROM review_claims WHERE holder = $1")
                    .bind(holder)
                    .execute(self.pool())
                    .await
            }
        }
        .map_err(|e| self.err(e))?;
        Ok(done.rows_affected())
    }

    /// Who holds a live claim on the capture, inside a decision's transaction.
    pub(crate) async fn holder_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        capture_id: &str,
        now: f64,
    ) -> Result<Option<String>, StoreError> {
        sqlx::query_scalar(
            "SELECT holder FROM review_claims WHERE capture_id = $1 AND expires_at > $2",
        )
        .bind(capture_id)
        .bind(now)
        .fetch_optional(&mut **tx)
        .await
        .map_err(|e| self.err(e))
    }

    /// A decided capture's claim ends with the decision.
    pub(crate) async fn end_claim_in(
        &self,
        tx: &mut Transaction<'_, Any>,
        capture_id: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM review_claims WHERE capture_id = $1")
            .bind(capture_id)
            .execute(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }
}
