//! The fleet's shared view in the database: patrol visits made by any worker, and every
//! camera's latest health and analysis counters (`camera_status`), so one web process shows
//! all cameras of all workers.

use super::{Store, StoreError};

/// One patrol visit.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct VisitRow {
    pub camera: String,
    pub started_at: f64,
    pub worker: String,
    pub slot: String,
    pub ended_at: Option<f64>,
    pub hot: bool,
}

/// A camera's latest status, as its worker wrote it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct CameraStatusRow {
    pub camera: String,
    pub worker: String,
    pub at: f64,
    pub health: serde_json::Value,
    pub analysis: Option<serde_json::Value>,
}

impl Store {
    pub async fn visit_started(
        &self,
        camera: &str,
        started_at: f64,
        worker: &str,
        slot: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO patrol_visits (camera, started_at, worker, slot) VALUES ($1, $2, $3, $4)",
        )
        .bind(camera)
        .bind(started_at)
        .bind(worker)
        .bind(slot)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    pub async fn visit_ended(
        &self,
        camera: &str,
        started_at: f64,
        ended_at: f64,
        hot: bool,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE patrol_visits SET ended_at = $1, hot = $2 WHERE camera = $3 AND started_at = $4")
        .bind(ended_at)
        .bind(hot as i64)
        .bind(camera)
        .bind(started_at)
        .execute(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    /// Every visit, oldest first.
    pub async fn visits(&self) -> Result<Vec<VisitRow>, StoreError> {
        let rows: Vec<(String, f64, String, String, Option<f64>, i64)> = sqlx::query_as(
            "SELECT camera, started_at, worker, slot, ended_at, hot FROM patrol_visits \
             ORDER BY started_at, camera",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(
                |(camera, started_at, worker, slot, ended_at, hot)| VisitRow {
                    camera,
                    started_at,
                    worker,
                    slot,
                    ended_at,
                    hot: hot != 0,
                },
            )
            .collect())
    }

    /// Visits started since `since`, per worker.
    pub async fn visit_counts_since(&self, since: f64) -> Result<Vec<(String, i64)>, StoreError> {
        sqlx::query_as(
            "SELECT worker, COUNT(*) FROM patrol_visits WHERE started_at >= $1 GROUP BY worker",
        )
        .bind(since)
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))
    }

    /// Each camera's latest visit: (camera, started_at, hot).
    pub async fn last_visits(&self) -> Result<Vec<(String, f64, bool)>, StoreError> {
        let rows: Vec<(String, f64, i64)> = sqlx::query_as(
            "SELECT p.camera, p.started_at, p.hot FROM patrol_visits p WHERE p.started_at = \
             (SELECT MAX(q.started_at) FROM patrol_visits q WHERE q.camera = p.camera)",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|(camera, at, hot)| (camera, at, hot != 0))
            .collect())
    }

    /// Writes the given cameras' status rows (one transaction).
    pub async fn write_camera_status(
        &self,
        worker: &str,
        at: f64,
        rows: &[(String, serde_json::Value, Option<serde_json::Value>)],
    ) -> Result<(), StoreError> {
        let mut tx = self.begin().await.map_err(|e| self.err(e))?;
        let sql = "INSERT INTO camera_status (camera, worker, at, health, analysis) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (camera) DO UPDATE SET worker = excluded.worker, at = excluded.at, \
             health = excluded.health, analysis = excluded.analysis".to_string();
        for (camera, health, analysis) in rows {
            sqlx::query(&sql)
                .bind(camera)
                .bind(worker)
                .bind(at)
                .bind(health.to_string())
                .bind(analysis.as_ref().map(|a| a.to_string()))
                .execute(&mut *tx)
                .await
                .map_err(|e| self.err(e))?;
        }
        tx.commit().await.map_err(|e| self.err(e))
    }

    /// Every camera's latest status, by camera.
    pub async fn camera_statuses(&self) -> Result<Vec<CameraStatusRow>, StoreError> {
        let rows: Vec<(String, String, f64, String, Option<String>)> = sqlx::query_as(
            "SELECT camera, worker, at, health, analysis FROM camera_status ORDER BY camera",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(|e| self.err(e))?;
        let parse = |s: String| serde_json::from_str(&s).unwrap_or(serde_json::Value::Null);
        Ok(rows
            .into_iter()
            .map(|(camera, worker, at, health, analysis)| CameraStatusRow {
                camera,
                worker,
                at,
                health: parse(health),
                analysis: analysis.map(parse),
            })
            .collect())
    }
}
