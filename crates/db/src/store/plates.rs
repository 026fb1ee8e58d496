//! Plates (车牌号) on captures (migration `0012_plates.sql`): the voted read is stored with the
//! capture when it is inserted; an operator's correction replaces the text, keeps what was
//! read in the details, and is audited (`plate.correct`).

use super::{Store, StoreError};

impl Store {
    /// Sets a capture's plate as an operator read it (`None` clears it), audited. The text
    /// must already be a valid, normalised plate. Returns false when there is no such
    /// capture.
    pub async fn correct_plate(
        &self,
        capture_id: &str,
        plate: Option<&str>,
        actor: &str,
        now: f64,
    ) -> Result<bool, StoreError> {
        let g = |e| self.err(e);
        let mut tx = self.begin().await.map_err(g)?;
        let row: Option<(Option<String>, Option<String>)> =
            sqlx::query_as("SELECT plate, plate_detail FROM captures WHERE id = $1")
                .bind(capture_id)
                .fetch_optional(&mut *tx)
                .await
                .map_err(g)?;
        let Some((before, detail)) = row else {
            return Ok(false);
        };
        let mut detail: serde_json::Value = detail
            .and_then(|d| serde_json::from_str(&d).ok())
            .unwrap_or_else(|| serde_json::json!({}));
        if !detail.is_object() {
            detail = serde_json::json!({});
        }
        // What the reader said survives every correction.
        if detail.get("read").is_none() {
            detail["read"] = before.clone().into();
        }
        detail["corrected_by"] = actor.into();
        detail["corrected_at"] = now.into();
        sqlx::query("UPDATE captures SET plate = $1, plate_detail = $2 WHERE id = $3")
            .bind(plate)
            .bind(detail.to_string())
            .bind(capture_id)
            .execute(&mut *tx)
            .await
            .map_err(g)?;
        let change = serde_json::json!({ "from": before, "to": plate }).to_string();
        self.audit_in(
            &mut tx,
            None,
            now,
            actor,
            "plate.correct",
            capture_id,
            Some(&change),
        )
        .await?;
        tx.commit().await.map_err(g)?;
        Ok(true)
    }
}
