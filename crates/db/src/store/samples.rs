//! The fleet's capacity and health over time (migration `0011_health_samples.sql`): each web
//! process samples the cameras it sees every few minutes, and the summary draws the last day.

use serde::Serialize;

use super::{Store, StoreError};

/// One sample of the cameras' state.
#[derive(Debug, Clone, Default, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct HealthSample {
    pub at: f64,
    pub source: String,
    pub cameras: i64,
    pub streaming: i64,
    /// Backing off, failed or frozen.
    pub unhealthy: i64,
    pub off_view: i64,
    /// Frames analysed in the minute before, every camera together.
    pub analysed_per_min: i64,
    /// Of those, the frames the detector ran on.
    pub inferences_per_min: i64,
}

/// How long samples are kept (seconds).
pub const KEEP_S: f64 = 2.0 * 86_400.0;

impl Store {
    /// Records a sample, and drops those older than [`KEEP_S`].
    pub async fn record_health_sample(&self, s: &HealthSample) -> Result<(), StoreError> {
        let g = |e| self.err(e);
        sqlx::query(
            "INSERT INTO health_samples (at, source, cameras, streaming, unhealthy, off_view, \
             analysed_per_min, inferences_per_min) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) \
             ON CONFLICT (source, at) DO NOTHING",
        )
        .bind(s.at)
        .bind(&s.source)
        .bind(s.cameras)
        .bind(s.streaming)
        .bind(s.unhealthy)
        .bind(s.off_view)
        .bind(s.analysed_per_min)
        .bind(s.inferences_per_min)
        .execute(self.pool())
        .await
        .map_err(g)?;
        sqlx::query("DELETE FROM health_samples WHERE at < $1")
            .bind(s.at - KEEP_S)
            .execute(self.pool())
            .await
            .map_err(g)?;
        Ok(())
    }

    /// The samples from `since` on, oldest first.
    pub async fn health_samples(&self, since: f64) -> Result<Vec<HealthSample>, StoreError> {
        sqlx::query_as(
            "SELECT at, source, cameras, streaming, unhealthy, off_view, analysed_per_min, \
             inferences_per_min FROM health_samples WHERE at >= $1 ORDER BY at, source",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))
    }
}
