//! Camera leases for several workers sharing one database (`citywatch run --worker`).
//!
//! A worker writes a heartbeat row, renews the leases it holds, and takes free or expired
//! ones. On PostgreSQL a take picks its rows with `SELECT … FOR UPDATE SKIP LOCKED` inside a
//! transaction, so workers taking at the same moment never wait on each other and never get
//! the same camera; on SQLite (one machine) each take is a conditional `UPDATE`, which the
//! database serialises. Times are Unix seconds from the workers' clocks, which must agree
//! to well within a lease's TTL (NTP does this).

use sqlx::Row;

use super::{Store, StoreError};

/// A live worker, as its last heartbeat describes it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LiveWorker {
    pub id: String,
    /// The most cameras it takes; `None`: no limit.
    pub capacity: Option<u64>,
    pub held: u64,
    pub heartbeat_at: f64,
}

/// One lease row.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct LeaseRow {
    pub name: String,
    pub worker: Option<String>,
    pub expires_at: f64,
    pub generation: i64,
    pub taken_at: f64,
}

fn placeholders(from: usize, n: usize) -> String {
    (from..from + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl Store {
    /// Reads every row with `f`; a column error names the database.
    fn map_rows<T>(
        &self,
        rows: &[sqlx::any::AnyRow],
        f: impl Fn(&sqlx::any::AnyRow) -> Result<T, sqlx::Error>,
    ) -> Result<Vec<T>, StoreError> {
        rows.iter()
            .map(f)
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))
    }

    /// Waits for a working connection (a round trip).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1")
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Makes sure every name has a lease row (free when new).
    pub async fn ensure_leases(&self, names: &[String]) -> Result<(), StoreError> {
        for name in names {
            sqlx::query(
                "INSERT INTO leases (name, worker, expires_at, generation, taken_at) \
                 VALUES ($1, NULL, 0, 0, 0) ON CONFLICT (name) DO NOTHING",
            )
            .bind(name)
            .execute(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        }
        Ok(())
    }

    /// Records a worker's heartbeat: alive until `now + ttl`.
    pub async fn worker_heartbeat(
        &self,
        id: &str,
        started_at: f64,
        now: f64,
        ttl: f64,
        capacity: Option<u64>,
        held: u64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO workers (id, started_at, heartbeat_at, expires_at, capacity, held) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (id) DO UPDATE SET \
             heartbeat_at = excluded.heartbeat_at, expires_at = excluded.expires_at, \
             capacity = excluded.capacity, held = excluded.held",
        )
        .bind(id)
        .bind(started_at)
        .bind(now)
        .bind(now + ttl)
        .bind(capacity.map(|c| c as i64))
        .bind(held as i64)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Workers whose heartbeat has not expired, by id.
    pub async fn live_workers(&self, now: f64) -> Result<Vec<LiveWorker>, StoreError> {
        let rows = sqlx::query("SELECT id, capacity, held, heartbeat_at FROM workers WHERE expires_at > $1 ORDER BY id")
        .bind(now)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        self.map_rows(&rows, |r| {
            Ok(LiveWorker {
                id: r.try_get(0)?,
                capacity: r.try_get::<Option<i64>, _>(1)?.map(|c| c.max(0) as u64),
                held: r.try_get::<i64, _>(2)?.max(0) as u64,
                heartbeat_at: r.try_get(3)?,
            })
        })
    }

    /// Every worker row: id and heartbeat expiry (expired ones included).
    pub async fn worker_expiries(&self) -> Result<Vec<(String, f64)>, StoreError> {
        let rows = sqlx::query("SELECT id, expires_at FROM workers")
            .fetch_all(&self.pool)
            .await
            .map_err(|e| self.err(e))?;
        self.map_rows(&rows, |r| Ok((r.try_get(0)?, r.try_get(1)?)))
    }

    /// Extends every lease `worker` still holds to `now + ttl`; returns them with their
    /// generations. A lease that expired but that nobody took is still the worker's.
    pub async fn renew_leases(
        &self,
        worker: &str,
        now: f64,
        ttl: f64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query(
            "UPDATE leases SET expires_at = $1 WHERE worker = $2 RETURNING name, generation",
        )
        .bind(now + ttl)
        .bind(worker)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let mut out: Vec<(String, i64)> =
            self.map_rows(&rows, |r| Ok((r.try_get(0)?, r.try_get(1)?)))?;
        out.sort();
        Ok(out)
    }

    /// Takes up to `n` of `candidates` that are free or expired more than `grace` seconds
    /// ago, in name order; returns the names taken with their new generations.
    pub async fn take_leases(
        &self,
        worker: &str,
        candidates: &[String],
        n: usize,
        now: f64,
        ttl: f64,
        grace: f64,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        let expired = now - grace;
        if n == 0 || candidates.is_empty() {
            return Ok(Vec::new());
        }
        // SQLite walks every free name until it has taken `n`; PostgreSQL locks `n`.
        let limit = if self.sqlite { candidates.len() } else { n };
        let free = format!(
            "SELECT name FROM leases WHERE name IN ({}) AND (worker IS NULL OR expires_at < $1) \
             ORDER BY name LIMIT {limit}",
            placeholders(2, candidates.len())
        );
        let take = "UPDATE leases SET worker = $1, expires_at = $2, generation = generation + 1, \
                    taken_at = $3 WHERE name = $4 AND (worker IS NULL OR expires_at < $5) \
                    RETURNING generation";
        let mut taken = Vec::new();
        if self.sqlite {
            // SQLite: no row locks. Each conditional update is atomic; a name another
            // worker took between the select and the update is simply not taken.
            let sql = free.to_string();
            let mut q = sqlx::query(&sql).bind(expired);
            for c in candidates {
                q = q.bind(c);
            }
            let names: Vec<String> = q
                .fetch_all(&self.pool)
                .await
                .map_err(|e| self.err(e))?
                .iter()
                .map(|r| r.try_get(0))
                .collect::<Result<_, _>>()
                .map_err(|e| self.err(e))?;
            let take_sql = take.to_string();
            for name in names {
                if taken.len() == n {
                    break;
                }
                let row = sqlx::query(&take_sql)
                    .bind(worker)
                    .bind(now + ttl)
                    .bind(now)
                    .bind(&name)
                    .bind(expired)
                    .fetch_optional(&self.pool)
                    .await
                    .map_err(|e| self.err(e))?;
                if let Some(r) = row {
                    taken.push((name, r.try_get(0).map_err(|e| self.err(e))?));
                }
            }
            return Ok(taken);
        }
        // PostgreSQL: lock the free rows this worker will take, skipping rows another
        // worker's transaction has locked, then take them in the same transaction.
        let mut tx = self.begin().await.map_err(|e| self.err(e))?;
        let sql = format!("{free} FOR UPDATE SKIP LOCKED");
        let mut q = sqlx::query(&sql).bind(expired);
        for c in candidates {
            q = q.bind(c);
        }
        let names: Vec<String> = q
            .fetch_all(&mut *tx)
            .await
            .map_err(|e| self.err(e))?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()
            .map_err(|e| self.err(e))?;
        for name in names {
            let row = sqlx::query(take)
                .bind(worker)
                .bind(now + ttl)
                .bind(now)
                .bind(&name)
                .bind(expired)
                .fetch_optional(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
            if let Some(r) = row {
                taken.push((name, r.try_get(0).map_err(|e| self.err(e))?));
            }
        }
        tx.commit().await.map_err(|e| self.err(e))?;
        Ok(taken)
    }

    /// Gives a lease back (only if `worker` still holds it); true if it did.
    pub async fn release_lease(&self, worker: &str, name: &str) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE leases SET worker = NULL, expires_at = 0 WHERE name = $1 AND worker = $2",
        )
        .bind(name)
        .bind(worker)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(r.rows_affected() > 0)
    }

    /// A worker leaving cleanly: its leases are freed and its heartbeat removed, so the
    /// others take its cameras at their next heartbeat instead of after the TTL.
    pub async fn retire_worker(&self, worker: &str) -> Result<(), StoreError> {
        let mut tx = self.begin().await.map_err(|e| self.err(e))?;
        sqlx::query("UPDATE leases SET worker = NULL, expires_at = 0 WHERE worker = $1")
            .bind(worker)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        sqlx::query("DELETE FROM workers WHERE id = $1")
            .bind(worker)
            .execute(&mut *tx)
            .await
            .map_err(|e| self.err(e))?;
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Every lease, by name.
    pub async fn leases(&self) -> Result<Vec<LeaseRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT name, worker, expires_at, generation, taken_at FROM leases ORDER BY name",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        self.map_rows(&rows, |r| {
            Ok(LeaseRow {
                name: r.try_get(0)?,
                worker: r.try_get(1)?,
                expires_at: r.try_get(2)?,
                generation: r.try_get(3)?,
                taken_at: r.try_get(4)?,
            })
        })
    }

    /// Saves a camera's episode state only while `worker` holds the camera's lease: a
    /// worker that lost the camera (paused past its TTL, say) cannot overwrite the state
    /// of the worker that took it over. Returns whether it was saved.
    pub async fn save_episodes_fenced(
        &self,
        camera: &str,
        state: &str,
        now: f64,
        worker: &str,
    ) -> Result<bool, StoreError> {
        let r = sqlx::query("INSERT INTO episodes (camera, state, updated_at) \
             SELECT $1, $2, $3 WHERE EXISTS \
             (SELECT 1 FROM leases WHERE name = $4 AND worker = $5) \
             ON CONFLICT (camera) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at")
        .bind(camera)
        .bind(state)
        .bind(now)
        .bind(camera)
        .bind(worker)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(r.rows_affected() > 0)
    }
}
