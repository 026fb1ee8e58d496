//! The outbox rows: each filed case waits here, written in its case's transaction, until the
//! forwarder (`crate::notify`) has delivered it or given up on it.

use sqlx::Row;

use super::{Store, StoreError};

/// One outbox row due for delivery.
#[derive(Debug, Clone)]
pub struct OutboxRow {
    pub id: String,
    pub idempotency_key: String,
    pub payload: String,
    /// Attempts made so far.
    pub attempts: u32,
}

impl Store {
    /// Up to `limit` pending rows whose next attempt is due at `now`, oldest first.
    pub async fn due_outbox(&self, now: f64, limit: usize) -> Result<Vec<OutboxRow>, StoreError> {
        let rows = sqlx::query("SELECT id, idempotency_key, payload, attempts FROM outbox \
             WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2")
        .bind(now)
        .bind(limit as i64)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.db_err(e))?;
        rows.into_iter()
            .map(|r| {
                let g = |e| self.db_err(e);
                Ok(OutboxRow {
                    id: r.try_get(0).map_err(g)?,
                    idempotency_key: r.try_get(1).map_err(g)?,
                    payload: r.try_get(2).map_err(g)?,
                    attempts: r.try_get::<i64, _>(3).map_err(g)? as u32,
                })
            })
            .collect()
    }

    /// The platform has the case.
    pub async fn outbox_delivered(&self, id: &str, now: f64) -> Result<(), StoreError> {
        let g = |e| self.db_err(e);
        let mut tx = self.begin().await.map_err(g)?;
        let n = sqlx::query(
            "UPDATE outbox SET state = 'delivered', delivered_at = $2, attempts = attempts + 1, \
             last_error = NULL WHERE id = $1 AND state <> 'delivered'",
        )
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(g)?
        .rows_affected();
        if n == 1 {
            self.tally_in(
                &mut tx,
                super::tally::Subject::Outbox,
                "",
                "",
                "delivered",
                1,
            )
            .await?;
        }
        tx.commit().await.map_err(g)
    }

    /// An attempt failed: retry at `next_attempt_at`, or the row is dead.
    pub async fn outbox_failed(
        &self,
        id: &str,
        attempts: u32,
        dead: bool,
        next_attempt_at: f64,
        error: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE outbox SET state = $2, attempts = $3, next_attempt_at = $4, last_error = $5 WHERE id = $1")
        .bind(id)
        .bind(if dead { "dead" } else { "pending" })
        .bind(attempts as i64)
        .bind(next_attempt_at)
        .bind(error)
        .execute(self.pool())
        .await
        .map_err(|e| self.db_err(e))?;
        Ok(())
    }
}
