//! Zone polygons drawn on a camera's picture (migration `0010_zone_overrides.sql`): stored
//! on top of the config file's, audited, and read by the cameras at start, by the web when
//! it draws them, and by `citywatch check`.

use serde::Serialize;

use super::{Store, StoreError};

/// A zone's polygon as an admin drew it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ZoneOverride {
    pub camera: String,
    pub zone: String,
    /// [[x, y], ...], normalised to the frame.
    #[schema(value_type = Vec<Vec<f32>>)]
    pub polygon: Vec<[f32; 2]>,
    pub set_by: String,
    /// Unix seconds.
    pub set_at: f64,
}

type Stored = (String, String, String, String, f64);

fn parse(rows: Vec<Stored>) -> Vec<ZoneOverride> {
    rows.into_iter()
        .filter_map(|(camera, zone, polygon, set_by, set_at)| {
            Some(ZoneOverride {
                camera,
                zone,
                polygon: serde_json::from_str(&polygon).ok()?,
                set_by,
                set_at,
            })
        })
        .collect()
}

const SELECT: &str =
    "SELECT camera, zone, polygon, set_by, set_at FROM zone_overrides ORDER BY camera, zone";

impl Store {
    /// Stores a zone's polygon (already validated) in place of the config's, audited.
    pub async fn set_zone_override(
        &self,
        camera: &str,
        zone: &str,
        polygon: &[[f32; 2]],
        actor: &str,
        now: f64,
    ) -> Result<(), StoreError> {
        let g = |e| self.err(e);
        let json = serde_json::to_string(polygon).expect("polygon");
        let mut tx = self.begin().await.map_err(g)?;
        sqlx::query(
            "INSERT INTO zone_overrides (camera, zone, polygon, set_by, set_at) \
             VALUES ($1, $2, $3, $4, $5) ON CONFLICT (camera, zone) DO UPDATE SET \
             polygon = excluded.polygon, set_by = excluded.set_by, set_at = excluded.set_at",
        )
        .bind(camera)
        .bind(zone)
        .bind(&json)
        .bind(actor)
        .bind(now)
        .execute(&mut *tx)
        .await
        .map_err(g)?;
        self.audit_in(
            &mut tx,
            None,
            now,
            actor,
            "zone.set",
            &format!("{camera}/{zone}"),
            Some(&json),
        )
        .await?;
        tx.commit().await.map_err(g)
    }

    /// Drops a zone's drawn polygon: the config's applies again. Says whether there was one.
    pub async fn reset_zone_override(
        &self,
        camera: &str,
        zone: &str,
        actor: &str,
        now: f64,
    ) -> Result<bool, StoreError> {
        let g = |e| self.err(e);
        let mut tx = self.begin().await.map_err(g)?;
        let n = sqlx::query("DELETE FROM zone_overrides WHERE camera = $1 AND zone = $2")
            .bind(camera)
            .bind(zone)
            .execute(&mut *tx)
            .await
            .map_err(g)?
            .rows_affected();
        if n > 0 {
            self.audit_in(
                &mut tx,
                None,
                now,
                actor,
                "zone.reset",
                &format!("{camera}/{zone}"),
                None,
            )
            .await?;
        }
        tx.commit().await.map_err(g)?;
        Ok(n > 0)
    }

    /// Every drawn zone polygon.
    pub async fn zone_overrides(&self) -> Result<Vec<ZoneOverride>, StoreError> {
        let rows: Vec<Stored> = sqlx::query_as(SELECT)
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.err(e))?;
        Ok(parse(rows))
    }

    /// The drawn zone polygons of a case database, read without opening it as a store
    /// (no migration, no file created): `citywatch check`. None when the database or the
    /// table is not there yet.
    pub async fn peek_zone_overrides(url: &str) -> Option<Vec<ZoneOverride>> {
        sqlx::any::install_default_drivers();
        if let Some(path) = url.strip_prefix("sqlite://")
            && !std::path::Path::new(path.split('?').next().unwrap_or(path)).exists()
        {
            return None;
        }
        let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(url)
            .await
            .ok()?;
        let rows: Vec<Stored> = sqlx::query_as(SELECT).fetch_all(&mut conn).await.ok()?;
        Some(parse(rows))
    }
}
