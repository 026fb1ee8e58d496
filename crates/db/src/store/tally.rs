//! Counts kept as the rows change (migration `0009_tallies.sql`), so what the summary,
//! `/metrics`, the learning page and the queue's total read costs a few hundred rows
//! whatever the store holds:
//! - captures and cases by rule, camera and status, and the outbox's delivered rows;
//! - the captures of each hour by rule and status, and of each day by rule, camera and
//!   status (the summary's last 30 days);
//! - recorded footage, rejection reasons, and the wall time from recording to filing and to
//!   an operator's first decision, as latency bins, per hour;
//! - per camera and rule, the operators' verdicts and the lowest confirmed score (the
//!   calibration proposals).
//!
//! Every insert and status change of a counted row moves its tallies in the same
//! transaction, so a count never drifts from the rows. A store that had rows before the
//! tallies existed has them counted once, from the rows, when it is opened.

use std::collections::HashMap;

use sqlx::{Any, Transaction};

use super::{Store, StoreError};

type Tx<'a> = Transaction<'a, Any>;

/// What a tally counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Subject {
    /// All time, by rule, camera and status.
    Captures,
    Cases,
    /// Only its delivered rows: the pending and dead ones are few and indexed.
    Outbox,
    /// By hour of confirmation: rule and status.
    HourCaptures,
    /// By UTC day of confirmation: rule, camera and status.
    DayCaptures,
    /// By hour: captures of recorded footage, per rule.
    HourReplayed,
    /// By hour: rejections, the reason in `status`.
    HourReasons,
    /// By hour: recording to filing, per rule, the latency bin in `status`.
    HourFiling,
    /// By hour: recording to the first decision, per rule, the latency bin in `status`.
    HourDecision,
}

impl Subject {
    pub fn as_str(self) -> &'static str {
        match self {
            Subject::Captures => "captures",
            Subject::Cases => "cases",
            Subject::Outbox => "outbox",
            Subject::HourCaptures => "hour_captures",
            Subject::DayCaptures => "day_captures",
            Subject::HourReplayed => "hour_replayed",
            Subject::HourReasons => "hour_reasons",
            Subject::HourFiling => "hour_filing",
            Subject::HourDecision => "hour_decision",
        }
    }
}

/// A capture whose stream time is this far from its recording time came from recorded
/// footage (replay, eval), not a live camera.
pub const REPLAYED_S: f64 = 86_400.0;

/// Upper bounds (seconds) of the latency bins; a latency beyond the last is in "inf".
pub const LATENCY_BINS: [u32; 14] = [
    10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14_400, 28_800, 86_400, 259_200,
];

/// The bin of a latency: the first upper bound it does not pass, as text.
pub fn latency_bin(s: f64) -> String {
    LATENCY_BINS
        .iter()
        .find(|b| s <= f64::from(**b))
        .map_or_else(|| "inf".to_string(), |b| b.to_string())
}

/// The hour bucket of a time (Unix seconds).
pub fn hour(t: f64) -> i64 {
    (t / 3600.0).floor() as i64
}

/// The UTC day bucket of a time (Unix seconds).
pub fn day(t: f64) -> i64 {
    (t / 86_400.0).floor() as i64
}

/// A tally column kept apart when tallies are summed ([`Store::recent`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Keep {
    Bucket,
    Rule,
    Camera,
    Status,
}

/// One tally row.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct Tally {
    pub bucket: i64,
    pub rule: String,
    pub camera: String,
    pub status: String,
    pub n: i64,
}

/// The summary's window, as tallies (see [`Store::recent`]).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Recent {
    /// Captures by hour, rule and status.
    pub hours: Vec<Tally>,
    /// Captures by UTC day, rule, camera and status.
    pub days: Vec<Tally>,
    /// Recorded footage's captures by hour and rule.
    pub replayed: Vec<Tally>,
    /// Rejections by hour and reason (in `status`).
    pub reasons: Vec<Tally>,
    /// Recording to filing by hour and rule, the latency bin in `status`.
    pub filing: Vec<Tally>,
    /// Recording to the first decision, likewise.
    pub decision: Vec<Tally>,
}

/// The operators' verdicts on one camera and rule.
#[derive(Debug, Clone, PartialEq, sqlx::FromRow)]
pub struct VerdictStats {
    pub camera: String,
    pub rule: String,
    pub confirmed: i64,
    pub rejected: i64,
    /// The lowest confirmed score.
    pub lowest: Option<f64>,
}

/// The counted facts of one capture.
#[derive(Debug, Clone, sqlx::FromRow)]
pub(crate) struct Counted {
    pub rule: String,
    pub camera: String,
    pub status: String,
    pub score: f64,
    pub confirm_at: f64,
    pub created_at: f64,
}

/// Tally deltas gathered before they are written.
#[derive(Default)]
struct Deltas(HashMap<(Subject, i64, String, String, String), i64>);

impl Deltas {
    fn add(&mut self, s: Subject, bucket: i64, rule: &str, camera: &str, status: &str, n: i64) {
        *self
            .0
            .entry((s, bucket, rule.into(), camera.into(), status.into()))
            .or_default() += n;
    }

    /// A capture that joins the store: its status counts, and recorded footage's.
    fn added(&mut self, c: &Counted) {
        self.capture(c, &c.status, 1);
        if (c.created_at - c.confirm_at).abs() > REPLAYED_S {
            self.add(
                Subject::HourReplayed,
                hour(c.confirm_at),
                &c.rule,
                "",
                "",
                1,
            );
        }
    }

    /// A capture's status counts (all time, by hour, by day).
    fn capture(&mut self, c: &Counted, status: &str, n: i64) {
        self.add(Subject::Captures, 0, &c.rule, &c.camera, status, n);
        self.add(
            Subject::HourCaptures,
            hour(c.confirm_at),
            &c.rule,
            "",
            status,
            n,
        );
        self.add(
            Subject::DayCaptures,
            day(c.confirm_at),
            &c.rule,
            &c.camera,
            status,
            n,
        );
    }
}

impl Store {
    /// Adds `delta` to a tally, in the transaction that changed the rows it counts.
    pub(crate) async fn tally_in(
        &self,
        tx: &mut Tx<'_>,
        subject: Subject,
        rule: &str,
        camera: &str,
        status: &str,
        delta: i64,
    ) -> Result<(), StoreError> {
        self.bucket_tally_in(tx, subject, 0, rule, camera, status, delta)
            .await
    }

    #[allow(clippy::too_many_arguments)]
    async fn bucket_tally_in(
        &self,
        tx: &mut Tx<'_>,
        subject: Subject,
        bucket: i64,
        rule: &str,
        camera: &str,
        status: &str,
        delta: i64,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tallies (subject, bucket, rule, camera, status, n) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (subject, bucket, rule, camera, status) \
             DO UPDATE SET n = tallies.n + excluded.n",
        )
        .bind(subject.as_str())
        .bind(bucket)
        .bind(rule)
        .bind(camera)
        .bind(status)
        .bind(delta)
        .execute(&mut **tx)
        .await
        .map_err(|e| self.err(e))?;
        Ok(())
    }

    async fn write_in(&self, tx: &mut Tx<'_>, d: Deltas) -> Result<(), StoreError> {
        let mut rows: Vec<_> = d.0.into_iter().filter(|(_, n)| *n != 0).collect();
        // One order for every writer: two transactions never wait on each other's rows.
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        for ((s, bucket, rule, camera, status), n) in rows {
            self.bucket_tally_in(tx, s, bucket, &rule, &camera, &status, n)
                .await?;
        }
        Ok(())
    }

    async fn counted_in(&self, tx: &mut Tx<'_>, id: &str) -> Result<Option<Counted>, StoreError> {
        sqlx::query_as(
            "SELECT rule, camera, status, score, confirm_at, created_at FROM captures \
             WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&mut **tx)
        .await
        .map_err(|e| self.err(e))
    }

    /// Counts a capture just inserted.
    pub(crate) async fn capture_added_in(
        &self,
        tx: &mut Tx<'_>,
        id: &str,
    ) -> Result<(), StoreError> {
        let Some(c) = self.counted_in(tx, id).await? else {
            return Ok(());
        };
        let mut d = Deltas::default();
        d.added(&c);
        self.write_in(tx, d).await
    }

    /// Moves a capture to `to`, and its tallies with it. False when there is no such
    /// capture or it already had that status.
    pub(crate) async fn capture_status_in(
        &self,
        tx: &mut Tx<'_>,
        id: &str,
        to: &str,
    ) -> Result<bool, StoreError> {
        let Some(c) = self.counted_in(tx, id).await?.filter(|c| c.status != to) else {
            return Ok(false);
        };
        sqlx::query("UPDATE captures SET status = $2 WHERE id = $1")
            .bind(id)
            .bind(to)
            .execute(&mut **tx)
            .await
            .map_err(|e| self.err(e))?;
        let mut d = Deltas::default();
        d.capture(&c, &c.status, -1);
        d.capture(&c, to, 1);
        self.write_in(tx, d).await?;
        Ok(true)
    }

    /// Counts a case just filed for a capture: the case, and the time from recording to
    /// filing.
    pub(crate) async fn case_filed_in(
        &self,
        tx: &mut Tx<'_>,
        capture_id: &str,
        now: f64,
    ) -> Result<(), StoreError> {
        let Some(c) = self.counted_in(tx, capture_id).await? else {
            return Ok(());
        };
        let mut d = Deltas::default();
        d.add(Subject::Cases, 0, &c.rule, &c.camera, "filed", 1);
        let bin = latency_bin((now - c.created_at).max(0.0));
        d.add(
            Subject::HourFiling,
            hour(c.confirm_at),
            &c.rule,
            "",
            &bin,
            1,
        );
        self.write_in(tx, d).await
    }

    /// Counts an operator's verdict just recorded: the first decision's latency, a
    /// rejection's reason, and the camera's verdict statistics.
    pub(crate) async fn verdict_in(
        &self,
        tx: &mut Tx<'_>,
        capture_id: &str,
        decision: &str,
        reason: Option<&str>,
        now: f64,
    ) -> Result<(), StoreError> {
        let g = |e| self.err(e);
        let Some(c) = self.counted_in(tx, capture_id).await? else {
            return Ok(());
        };
        let reviews: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM reviews WHERE capture_id = $1")
            .bind(capture_id)
            .fetch_one(&mut **tx)
            .await
            .map_err(g)?;
        let mut d = Deltas::default();
        if reviews == 1 {
            let bin = latency_bin((now - c.created_at).max(0.0));
            d.add(
                Subject::HourDecision,
                hour(c.confirm_at),
                &c.rule,
                "",
                &bin,
                1,
            );
        }
        if let (Some(r), "reject") = (reason, decision) {
            d.add(Subject::HourReasons, hour(c.confirm_at), "", "", r, 1);
        }
        self.write_in(tx, d).await?;
        // Never a NULL bound for a float: on PostgreSQL it would fix the prepared
        // statement's parameter type for later binds.
        match decision {
            "confirm" => {
                sqlx::query(
                    "INSERT INTO verdict_stats (camera, rule, confirmed, rejected, lowest, \
                     threshold) VALUES ($1, $2, 1, 0, $3, $4) ON CONFLICT (camera, rule) \
                     DO UPDATE SET confirmed = verdict_stats.confirmed + 1, \
                     lowest = CASE WHEN verdict_stats.lowest IS NULL \
                     OR excluded.lowest < verdict_stats.lowest THEN excluded.lowest \
                     ELSE verdict_stats.lowest END, \
                     threshold = CASE WHEN verdict_stats.lowest IS NULL \
                     OR excluded.lowest < verdict_stats.lowest THEN excluded.threshold \
                     ELSE verdict_stats.threshold END",
                )
                .bind(&c.camera)
                .bind(&c.rule)
                .bind(c.score)
                .bind(crate::model::calibrate::threshold(c.score))
                .execute(&mut **tx)
                .await
                .map_err(g)?;
            }
            "reject" => {
                sqlx::query(
                    "INSERT INTO verdict_stats (camera, rule, confirmed, rejected) \
                     VALUES ($1, $2, 0, 1) ON CONFLICT (camera, rule) \
                     DO UPDATE SET rejected = verdict_stats.rejected + 1",
                )
                .bind(&c.camera)
                .bind(&c.rule)
                .execute(&mut **tx)
                .await
                .map_err(g)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// The tallies of the last `days` days up to the newest capture (recorded footage keeps
    /// its own dates): hours for the per-day counts, reasons and latencies, UTC days for
    /// each camera's rates.
    pub async fn recent(&self, days: i64) -> Result<Recent, StoreError> {
        let Some(newest) = self.newest_bucket(Subject::HourCaptures).await? else {
            return Ok(Recent::default());
        };
        let since_hour = newest - days * 24 + 1;
        let since_day = day(newest as f64 * 3600.0) - days + 1;
        // Summed in SQL to what the summary shows, so a few thousand rows come back
        // whatever the window held.
        use Keep::*;
        Ok(Recent {
            hours: self
                .sums(Subject::HourCaptures, since_hour, [Bucket, Rule])
                .await?,
            days: self
                .sums(Subject::DayCaptures, since_day, [Rule, Camera, Status])
                .await?,
            replayed: self.sums(Subject::HourReplayed, since_hour, [Rule]).await?,
            reasons: self
                .sums(Subject::HourReasons, since_hour, [Status])
                .await?,
            filing: self
                .sums(Subject::HourFiling, since_hour, [Rule, Status])
                .await?,
            decision: self
                .sums(Subject::HourDecision, since_hour, [Rule, Status])
                .await?,
        })
    }

    /// A subject's tallies from bucket `since` on, summed over every column not kept (a
    /// column not kept reads as 0 or '').
    async fn sums<const N: usize>(
        &self,
        subject: Subject,
        since: i64,
        keep: [Keep; N],
    ) -> Result<Vec<Tally>, StoreError> {
        let col = |k: Keep, name: &str, blank: &str| {
            if keep.contains(&k) {
                name.to_string()
            } else {
                format!("{blank} AS {name}")
            }
        };
        let group: Vec<&str> = keep
            .iter()
            .map(|k| match k {
                Keep::Bucket => "bucket",
                Keep::Rule => "rule",
                Keep::Camera => "camera",
                Keep::Status => "status",
            })
            .collect();
        let sql = format!(
            "SELECT {}, {}, {}, {}, CAST(SUM(n) AS BIGINT) AS n FROM tallies \
             WHERE subject = $1 AND bucket >= $2 GROUP BY {} HAVING SUM(n) <> 0 ORDER BY {}",
            col(Keep::Bucket, "bucket", "CAST(0 AS BIGINT)"),
            col(Keep::Rule, "rule", "''"),
            col(Keep::Camera, "camera", "''"),
            col(Keep::Status, "status", "''"),
            group.join(", "),
            group.join(", "),
        );
        sqlx::query_as(&sql)
            .bind(subject.as_str())
            .bind(since)
            .fetch_all(self.pool())
            .await
            .map_err(|e| self.err(e))
    }

    /// Every tally of a subject with rows, from bucket `since` on.
    pub async fn tallies(&self, subject: Subject, since: i64) -> Result<Vec<Tally>, StoreError> {
        sqlx::query_as(
            "SELECT bucket, rule, camera, status, n FROM tallies \
             WHERE subject = $1 AND bucket >= $2 AND n <> 0 \
             ORDER BY bucket, rule, camera, status",
        )
        .bind(subject.as_str())
        .bind(since)
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))
    }

    /// The newest bucket of a subject with rows, if any.
    pub async fn newest_bucket(&self, subject: Subject) -> Result<Option<i64>, StoreError> {
        let r: (Option<i64>,) =
            sqlx::query_as("SELECT MAX(bucket) FROM tallies WHERE subject = $1 AND n <> 0")
                .bind(subject.as_str())
                .fetch_one(self.pool())
                .await
                .map_err(|e| self.err(e))?;
        Ok(r.0)
    }

    /// The sum of a subject's all-time tallies that match: None for "any".
    pub async fn tally_sum(
        &self,
        subject: Subject,
        rule: Option<&str>,
        camera: Option<&str>,
        status: Option<&str>,
    ) -> Result<i64, StoreError> {
        let r: (Option<i64>,) = sqlx::query_as(
            "SELECT CAST(SUM(n) AS BIGINT) FROM tallies WHERE subject = $1 AND bucket = 0 \
             AND ($2 = '' OR rule = $2) AND ($3 = '' OR camera = $3) AND ($4 = '' OR status = $4)",
        )
        .bind(subject.as_str())
        .bind(rule.unwrap_or(""))
        .bind(camera.unwrap_or(""))
        .bind(status.unwrap_or(""))
        .fetch_one(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(r.0.unwrap_or(0))
    }

    /// The verdicts per camera and rule, each with how many of its rejected captures score
    /// under its threshold (`model::calibrate::threshold` of the lowest confirmed score):
    /// what the calibration proposals are made of. One query over the statistics, each
    /// count a range of the captures' score index.
    pub async fn verdict_stats(&self) -> Result<Vec<(VerdictStats, i64)>, StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            stats: VerdictStats,
            dropped: i64,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT v.camera, v.rule, v.confirmed, v.rejected, v.lowest, \
             CASE WHEN v.threshold IS NULL OR v.rejected = 0 THEN 0 ELSE \
             (SELECT COUNT(*) FROM captures c WHERE c.camera = v.camera AND c.rule = v.rule \
              AND c.status = 'rejected' AND c.score < v.threshold) END AS dropped \
             FROM verdict_stats v ORDER BY v.camera, v.rule",
        )
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows.into_iter().map(|r| (r.stats, r.dropped)).collect())
    }

    /// Every tally row with a count, and the verdict statistics, in one order: for tests
    /// that check the counts kept against [`Store::rebuild_tallies`].
    pub async fn tally_snapshot(
        &self,
    ) -> Result<(Vec<(String, Tally)>, Vec<VerdictStats>), StoreError> {
        #[derive(sqlx::FromRow)]
        struct Row {
            subject: String,
            #[sqlx(flatten)]
            tally: Tally,
        }
        let rows: Vec<Row> = sqlx::query_as(
            "SELECT subject, bucket, rule, camera, status, n FROM tallies WHERE n <> 0 \
             ORDER BY subject, bucket, rule, camera, status",
        )
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        let stats = sqlx::query_as(
            "SELECT camera, rule, confirmed, rejected, lowest FROM verdict_stats \
             ORDER BY camera, rule",
        )
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok((
            rows.into_iter().map(|r| (r.subject, r.tally)).collect(),
            stats,
        ))
    }

    /// Counts every tally again from the rows: once when a store that had rows before the
    /// tallies existed is opened, and after a bulk load outside the store (the volume
    /// bench's).
    pub async fn rebuild_tallies(&self) -> Result<(), StoreError> {
        let g = |e| self.err(e);
        let mut d = Deltas::default();
        let captures: Vec<Counted> = sqlx::query_as(
            "SELECT rule, camera, status, score, confirm_at, created_at FROM captures",
        )
        .fetch_all(self.pool())
        .await
        .map_err(g)?;
        for c in &captures {
            d.added(c);
        }
        drop(captures);
        let cases: Vec<(String, String, String, f64, f64, f64)> = sqlx::query_as(
            "SELECT k.rule, k.camera, k.status, c.confirm_at, c.created_at, k.filed_at \
             FROM cases k JOIN captures c ON c.id = k.capture_id",
        )
        .fetch_all(self.pool())
        .await
        .map_err(g)?;
        for (rule, camera, status, confirm_at, created_at, filed_at) in cases {
            d.add(Subject::Cases, 0, &rule, &camera, &status, 1);
            let bin = latency_bin((filed_at - created_at).max(0.0));
            d.add(Subject::HourFiling, hour(confirm_at), &rule, "", &bin, 1);
        }
        let delivered: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE state = 'delivered'")
                .fetch_one(self.pool())
                .await
                .map_err(g)?;
        d.add(Subject::Outbox, 0, "", "", "delivered", delivered);
        // Reviews in the order they were made: the first of each capture is its decision.
        type Review = (
            String,
            String,
            String,
            f64,
            f64,
            f64,
            String,
            Option<String>,
            f64,
        );
        let reviews: Vec<Review> = sqlx::query_as(
            "SELECT c.id, c.rule, c.camera, c.score, c.confirm_at, c.created_at, r.decision, \
             r.reason, r.at FROM reviews r JOIN captures c ON c.id = r.capture_id \
             ORDER BY r.at, r.id",
        )
        .fetch_all(self.pool())
        .await
        .map_err(g)?;
        let mut seen = std::collections::HashSet::new();
        let mut stats: std::collections::BTreeMap<(String, String), VerdictStats> =
            Default::default();
        for (id, rule, camera, score, confirm_at, created_at, decision, reason, at) in reviews {
            if seen.insert(id) {
                let bin = latency_bin((at - created_at).max(0.0));
                d.add(Subject::HourDecision, hour(confirm_at), &rule, "", &bin, 1);
            }
            if let (Some(r), "reject") = (&reason, decision.as_str()) {
                d.add(Subject::HourReasons, hour(confirm_at), "", "", r, 1);
            }
            let v = stats
                .entry((camera.clone(), rule.clone()))
                .or_insert_with(|| VerdictStats {
                    camera,
                    rule,
                    confirmed: 0,
                    rejected: 0,
                    lowest: None,
                });
            match decision.as_str() {
                "confirm" => {
                    v.confirmed += 1;
                    v.lowest = Some(v.lowest.map_or(score, |l| l.min(score)));
                }
                "reject" => v.rejected += 1,
                _ => {}
            }
        }
        let mut tx = self.begin().await.map_err(g)?;
        for sql in ["DELETE FROM tallies", "DELETE FROM verdict_stats"] {
            sqlx::query(sql).execute(&mut *tx).await.map_err(g)?;
        }
        // The table is empty: plain inserts, many rows to a statement.
        let mut rows: Vec<_> = d.0.into_iter().filter(|(_, n)| *n != 0).collect();
        rows.sort_by(|a, b| a.0.cmp(&b.0));
        for chunk in rows.chunks(100) {
            let sql = format!(
                "INSERT INTO tallies (subject, bucket, rule, camera, status, n) VALUES {}",
                super::values_sql(chunk.len(), 6)
            );
            let mut q = sqlx::query(&sql);
            for ((s, bucket, rule, camera, status), n) in chunk {
                q = q
                    .bind(s.as_str())
                    .bind(*bucket)
                    .bind(rule.clone())
                    .bind(camera.clone())
                    .bind(status.clone())
                    .bind(*n);
            }
            q.execute(&mut *tx).await.map_err(g)?;
        }
        for v in stats.into_values() {
            let q = match v.lowest {
                Some(lowest) => sqlx::query(
                    "INSERT INTO verdict_stats (camera, rule, confirmed, rejected, lowest, \
                     threshold) VALUES ($1, $2, $3, $4, $5, $6)",
                )
                .bind(v.camera)
                .bind(v.rule)
                .bind(v.confirmed)
                .bind(v.rejected)
                .bind(lowest)
                .bind(crate::model::calibrate::threshold(lowest)),
                None => sqlx::query(
                    "INSERT INTO verdict_stats (camera, rule, confirmed, rejected) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(v.camera)
                .bind(v.rule)
                .bind(v.confirmed)
                .bind(v.rejected),
            };
            q.execute(&mut *tx).await.map_err(g)?;
        }
        tx.commit().await.map_err(g)
    }

    /// Counts the tallies from the rows when the store has captures and no tallies yet (a
    /// store from before the tallies): once.
    pub(crate) async fn tallies_if_missing(&self) -> Result<(), StoreError> {
        let g = |e| self.err(e);
        let any_tally: Option<(String,)> = sqlx::query_as("SELECT subject FROM tallies LIMIT 1")
            .fetch_optional(self.pool())
            .await
            .map_err(g)?;
        let any_capture: Option<(String,)> = sqlx::query_as("SELECT id FROM captures LIMIT 1")
            .fetch_optional(self.pool())
            .await
            .map_err(g)?;
        if any_tally.is_none() && any_capture.is_some() {
            tracing::info!("counting the store's tallies from its rows (once)");
            self.rebuild_tallies().await?;
        }
        Ok(())
    }
}
