//! Read queries behind the review UI and the API: captures and cases with filters and
//! paging, and the per-rule summary. Every filter value is a bound parameter, never text
//! spliced into SQL.

use serde::{Deserialize, Serialize};
use sqlx::any::AnyRow;

use super::{CASE_COLUMNS, CaseRecord, Store, StoreError};

/// A capture as the review queue shows it.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CaptureRow {
    /// The capture's idempotency key.
    pub id: String,
    pub camera: String,
    pub preset: Option<i64>,
    /// abandoned_vehicle, illegal_vendor or overflowing_bin.
    pub rule: String,
    pub zone: String,
    pub label: String,
    /// When the episode began (Unix seconds, stream time).
    pub start_at: f64,
    /// When the rule was met (Unix seconds, stream time).
    pub confirm_at: f64,
    /// x1, y1, x2, y2, normalised to the frame.
    #[serde(rename = "box")]
    #[schema(value_type = Vec<f64>)]
    pub bbox: serde_json::Value,
    pub score: f64,
    /// Candidates merged into the capture.
    pub aggregation: i64,
    /// pending_review, filed, rejected or learned (a learned suppression).
    pub status: String,
    /// The evidence package's manifest, as filed.
    #[schema(value_type = Option<Object>)]
    pub evidence: Option<serde_json::Value>,
    pub case_number: Option<String>,
    /// A learned suppression's rejected lookalike, and how alike (cosine similarity).
    pub resembles: Option<String>,
    pub similarity: Option<f64>,
    /// The operator whose claim on it was last taken (`POST /api/queue/claim`), and until
    /// when it holds (Unix seconds); a claim past its time holds nothing.
    pub claimed_by: Option<String>,
    pub claim_expires_at: Option<f64>,
    /// A vehicle's plate (车牌号): as read, or as an operator corrected it. Viewers get it
    /// masked (京A****5).
    pub plate: Option<String>,
    /// How the plate was read: confidence, agreeing reads, reads; and who corrected it.
    #[schema(value_type = Option<Object>)]
    pub plate_detail: Option<serde_json::Value>,
}

impl CaptureRow {
    /// The row as a viewer may see it: the plate masked, its reads' details dropped.
    pub fn masked(mut self) -> Self {
        if let Some(p) = &self.plate {
            self.plate = Some(citywatch_base::model::plate::mask(p));
        }
        self.plate_detail = None;
        self
    }

    /// Who holds it at `now`, if anyone.
    pub fn held_by(&self, now: f64) -> Option<&str> {
        match (&self.claimed_by, self.claim_expires_at) {
            (Some(h), Some(t)) if t > now => Some(h),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CaptureFilter {
    /// pending_review (default), filed, rejected, or all.
    pub status: Option<String>,
    pub rule: Option<String>,
    pub camera: Option<String>,
    /// "newest" (default) or "oldest".
    pub order: Option<String>,
    pub zone: Option<String>,
    /// Captures scoring at least this much.
    #[param(minimum = 0.0, maximum = 1.0)]
    pub min_score: Option<f64>,
    /// Confirmed at or after this time (Unix seconds).
    pub from: Option<f64>,
    /// Confirmed before this time (Unix seconds).
    pub to: Option<f64>,
    /// Most captures to return: default 50, at most 500.
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<i64>,
    /// Skips this many first, at most 10000 (deeper, page with `after`).
    #[param(minimum = 0, maximum = 10000)]
    pub offset: Option<i64>,
    /// Keyset paging: the captures after this one in the chosen order, given as its
    /// `confirm_at,id` (a page's last row). Answers as fast on the ten-thousandth page as on
    /// the first.
    pub after: Option<String>,
    /// The captures before this one (`confirm_at,id`, a page's first row): the page before.
    pub before: Option<String>,
    /// The page language (the UI's `?lang=`); no effect on the query.
    pub lang: Option<String>,
}

impl CaptureRow {
    /// Its keyset cursor (`confirm_at,id`), for [`CaptureFilter::after`] and `before`.
    pub fn cursor(&self) -> String {
        format!("{},{}", self.confirm_at, self.id)
    }
}

/// A cursor's (confirm_at, id); None when malformed.
fn parse_cursor(c: &Option<String>) -> Option<(f64, String)> {
    let (t, id) = c.as_deref()?.split_once(',')?;
    Some((
        t.parse().ok().filter(|t: &f64| t.is_finite())?,
        id.to_string(),
    ))
}

/// A count that stopped at its cap: the exact figure is at least `n`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Count {
    pub n: i64,
    /// True when counting stopped at [`COUNT_CAP`]: there are at least `n`.
    pub capped: bool,
}

/// The most rows a filtered count reads before it answers "at least".
pub const COUNT_CAP: i64 = 10_000;

#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[serde(default, deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CaseFilter {
    pub rule: Option<String>,
    pub camera: Option<String>,
    pub status: Option<String>,
    /// Unix seconds, on reported_at, inclusive.
    pub from: Option<f64>,
    /// Unix seconds, on reported_at, exclusive.
    pub to: Option<f64>,
    /// Days (YYYY-MM-DD, in the reporting time zone), inclusive: the cases page's date range.
    #[param(format = Date)]
    pub from_date: Option<String>,
    #[param(format = Date)]
    pub to_date: Option<String>,
    #[param(minimum = 1)]
    pub limit: Option<i64>,
    /// Skips this many first, at most 10000 (deeper, page with `after`).
    #[param(minimum = 0, maximum = 10000)]
    pub offset: Option<i64>,
    /// Keyset paging: the cases after this one, newest first, given as its
    /// `reported_at,case_number` (a page's last row).
    pub after: Option<String>,
    /// The page language (the UI's `?lang=`); no effect on the query.
    pub lang: Option<String>,
}

impl CaseRecord {
    /// Its keyset cursor (`reported_at,case_number`), for [`CaseFilter::after`].
    pub fn cursor(&self) -> String {
        format!("{},{}", self.reported_at, self.case_number)
    }
}

/// A capture's row as stored: its box and evidence are JSON text.
#[derive(sqlx::FromRow)]
struct StoredCapture {
    id: String,
    camera: String,
    preset: Option<i64>,
    rule: String,
    zone: String,
    label: String,
    start_at: f64,
    confirm_at: f64,
    bbox: String,
    score: f64,
    aggregation: i64,
    status: String,
    evidence: Option<String>,
    case_number: Option<String>,
    resembles: Option<String>,
    similarity: Option<f64>,
    claimed_by: Option<String>,
    claim_expires_at: Option<f64>,
    plate: Option<String>,
    plate_detail: Option<String>,
}

impl From<StoredCapture> for CaptureRow {
    fn from(c: StoredCapture) -> Self {
        Self {
            id: c.id,
            camera: c.camera,
            preset: c.preset,
            rule: c.rule,
            zone: c.zone,
            label: c.label,
            start_at: c.start_at,
            confirm_at: c.confirm_at,
            bbox: serde_json::from_str(&c.bbox).unwrap_or_default(),
            score: c.score,
            aggregation: c.aggregation,
            status: c.status,
            evidence: c.evidence.and_then(|e| serde_json::from_str(&e).ok()),
            case_number: c.case_number,
            resembles: c.resembles,
            similarity: c.similarity,
            claimed_by: c.claimed_by,
            claim_expires_at: c.claim_expires_at,
            plate: c.plate,
            plate_detail: c.plate_detail.and_then(|e| serde_json::from_str(&e).ok()),
        }
    }
}

/// A reviewed capture with the review's decision, reason and note.
#[derive(sqlx::FromRow)]
struct StoredReview {
    #[sqlx(flatten)]
    capture: StoredCapture,
    reason: Option<String>,
    note: Option<String>,
    decision: String,
}

/// Captures and confirmations per rule.
#[derive(Debug, Clone, PartialEq, Serialize, sqlx::FromRow, utoipa::ToSchema)]
pub struct RuleSummary {
    pub rule: String,
    pub captures: i64,
    pub confirmed: i64,
    pub rejected: i64,
    pub pending: i64,
}

const CAPTURE_COLUMNS: &str = "c.id, c.camera, c.preset, c.rule, c.zone, c.label, c.start_at, \
    c.confirm_at, c.bbox, c.score, c.aggregation, c.status, c.evidence, k.case_number, c.resembles, \
    c.similarity, q.holder AS claimed_by, q.expires_at AS claim_expires_at, c.plate, c.plate_detail";

/// The captures with their cases and claims, for [`CAPTURE_COLUMNS`].
const CAPTURE_FROM: &str = "captures c LEFT JOIN cases k ON k.capture_id = c.id \
    LEFT JOIN review_claims q ON q.capture_id = c.id";

/// WHERE clauses and their values, numbered as they are added.
#[derive(Default, Clone)]
struct Where {
    clauses: Vec<String>,
    texts: Vec<String>,
    numbers: Vec<f64>,
}

#[derive(Clone)]
enum Bind {
    Text(usize),
    Number(usize),
}

impl Where {
    fn text(&mut self, clause: &str, v: &Option<String>, order: &mut Vec<Bind>) {
        if let Some(v) = v.as_ref().filter(|v| !v.is_empty()) {
            order.push(Bind::Text(self.texts.len()));
            self.texts.push(v.clone());
            self.clauses
                .push(clause.replace('?', &format!("${}", order.len())));
        }
    }

    fn number(&mut self, clause: &str, v: Option<f64>, order: &mut Vec<Bind>) {
        if let Some(v) = v {
            order.push(Bind::Number(self.numbers.len()));
            self.numbers.push(v);
            self.clauses
                .push(clause.replace('?', &format!("${}", order.len())));
        }
    }

    /// A clause with two values, a number `?1` and a text `?2`, each used as often as
    /// the clause needs.
    fn pair(&mut self, clause: &str, t: f64, id: &str, order: &mut Vec<Bind>) {
        order.push(Bind::Number(self.numbers.len()));
        self.numbers.push(t);
        let first = order.len();
        order.push(Bind::Text(self.texts.len()));
        self.texts.push(id.to_string());
        self.clauses.push(
            clause
                .replace("?1", &format!("${first}"))
                .replace("?2", &format!("${}", first + 1)),
        );
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}

/// 00:00 of a YYYY-MM-DD day in the reporting time zone (`utc_offset_s` east of UTC), in
/// Unix seconds; None when absent or malformed.
fn day_start(day: &Option<String>, utc_offset_s: i32) -> Option<f64> {
    let mut parts = day.as_deref()?.splitn(3, '-');
    let year: i32 = parts.next()?.parse().ok()?;
    let month: u8 = parts.next()?.parse().ok()?;
    let dom: u8 = parts.next()?.parse().ok()?;
    let d = time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, dom).ok()?;
    Some((d.midnight().assume_utc().unix_timestamp() - utc_offset_s as i64) as f64)
}

/// The capture filters: status (pending review unless given; `all` is every status), rule,
/// camera, zone, score and confirmation time.
fn captures_where(w: &mut Where, f: &CaptureFilter, order: &mut Vec<Bind>) {
    let status = match f.status.as_deref() {
        None | Some("") => Some("pending_review".to_string()),
        Some("all") => None,
        Some(s) => Some(s.to_string()),
    };
    w.text("c.status = ?", &status, order);
    w.text("c.rule = ?", &f.rule, order);
    w.text("c.camera = ?", &f.camera, order);
    w.text("c.zone = ?", &f.zone, order);
    w.number("c.score >= ?", f.min_score, order);
    w.number("c.confirm_at >= ?", f.from, order);
    w.number("c.confirm_at < ?", f.to, order);
}

/// The captures' order: newest first unless the filter says oldest.
fn direction(f: &CaptureFilter) -> &'static str {
    if f.order.as_deref() == Some("oldest") {
        "ASC"
    } else {
        "DESC"
    }
}

/// The keyset clause of `after` (or, reversed, `before`): the rows past the cursor in the
/// order being read, with (confirm_at, id) as one key so ties page exactly. Returns whether
/// the rows are read in reverse (a `before` page) and must be turned round.
fn keyset(w: &mut Where, f: &CaptureFilter, order: &mut Vec<Bind>) -> bool {
    let ascending = direction(f) == "ASC";
    let (cursor, reverse) = match (parse_cursor(&f.after), parse_cursor(&f.before)) {
        (Some(c), _) => (c, false),
        (None, Some(c)) => (c, true),
        (None, None) => return false,
    };
    let forward = ascending != reverse;
    let op = if forward { ">" } else { "<" };
    w.pair(
        &format!("c.confirm_at {op}= ?1 AND (c.confirm_at {op} ?1 OR c.id {op} ?2)"),
        cursor.0,
        &cursor.1,
        order,
    );
    reverse
}

/// The most rows `offset` skips: a deeper page goes by `after` (keyset paging), which costs
/// the same on the ten-thousandth page as on the first.
pub const MAX_OFFSET: i64 = 10_000;

/// Why an `offset` is refused (past [`MAX_OFFSET`]).
pub fn check_offset(offset: Option<i64>) -> Result<(), String> {
    match offset {
        Some(o) if o > MAX_OFFSET => Err(format!(
            "offset: at most {MAX_OFFSET} rows are skipped; page deeper with `after` (the last row's cursor)"
        )),
        _ => Ok(()),
    }
}

fn page(limit: Option<i64>, offset: Option<i64>) -> (i64, i64) {
    (
        limit.unwrap_or(50).clamp(1, 500),
        offset.unwrap_or(0).max(0),
    )
}

impl Store {
    async fn fetch<T>(&self, sql: &str, w: &Where, order: &[Bind]) -> Result<Vec<T>, StoreError>
    where
        T: for<'r> sqlx::FromRow<'r, AnyRow> + Send + Unpin,
    {
        let mut q = sqlx::query_as::<_, T>(sql);
        for b in order {
            q = match b {
                Bind::Text(i) => q.bind(w.texts[*i].clone()),
                Bind::Number(i) => q.bind(w.numbers[*i]),
            };
        }
        q.fetch_all(self.pool()).await.map_err(|e| self.err(e))
    }

    pub async fn list_captures(&self, f: &CaptureFilter) -> Result<Vec<CaptureRow>, StoreError> {
        let mut w = Where::default();
        let mut order = Vec::new();
        captures_where(&mut w, f, &mut order);
        let reverse = keyset(&mut w, f, &mut order);
        let (limit, offset) = page(f.limit, f.offset);
        let dir = match (direction(f), reverse) {
            ("ASC", false) | ("DESC", true) => "ASC",
            _ => "DESC",
        };
        let sql = format!(
            "SELECT {CAPTURE_COLUMNS} FROM {CAPTURE_FROM}{} \
             ORDER BY c.confirm_at {dir}, c.id {dir} LIMIT {limit} OFFSET {offset}",
            w.sql(),
        );
        let mut rows: Vec<CaptureRow> = self
            .fetch::<StoredCapture>(&sql, &w, &order)
            .await?
            .into_iter()
            .map(CaptureRow::from)
            .collect();
        if reverse {
            rows.reverse();
        }
        Ok(rows)
    }

    /// How many captures the filter matches, all pages together (its cursors aside). By
    /// status, rule and camera alone it is read from the tallies and exact; with a zone,
    /// score or time it counts up to [`COUNT_CAP`] rows and then says "at least".
    pub async fn count_captures(&self, f: &CaptureFilter) -> Result<Count, StoreError> {
        let mut w = Where::default();
        let mut order = Vec::new();
        captures_where(&mut w, f, &mut order);
        let blank = |v: &Option<String>| v.as_deref().is_none_or(str::is_empty);
        if blank(&f.zone) && f.min_score.is_none() && f.from.is_none() && f.to.is_none() {
            let status = match f.status.as_deref() {
                None | Some("") => Some("pending_review"),
                Some("all") => None,
                Some(s) => Some(s),
            };
            let n = self
                .tally_sum(
                    super::tally::Subject::Captures,
                    f.rule.as_deref().filter(|s| !s.is_empty()),
                    f.camera.as_deref().filter(|s| !s.is_empty()),
                    status,
                )
                .await?;
            return Ok(Count { n, capped: false });
        }
        let sql = format!(
            "SELECT COUNT(*) FROM (SELECT 1 AS one FROM captures c{} LIMIT {COUNT_CAP}) t",
            w.sql()
        );
        let n = self
            .fetch::<(i64,)>(&sql, &w, &order)
            .await?
            .first()
            .map_or(0, |n| n.0);
        Ok(Count {
            n,
            capped: n >= COUNT_CAP,
        })
    }

    /// Up to `limit` pending captures by the filter, in its order, that no one holds a live
    /// claim on at `now`: the review queue's claim candidates.
    pub(crate) async fn unclaimed(
        &self,
        f: &CaptureFilter,
        now: f64,
        limit: i64,
    ) -> Result<Vec<String>, StoreError> {
        let mut w = Where::default();
        let mut order = Vec::new();
        let pending = CaptureFilter {
            status: None,
            ..f.clone()
        };
        captures_where(&mut w, &pending, &mut order);
        w.number(
            "NOT EXISTS (SELECT 1 FROM review_claims r WHERE r.capture_id = c.id \
             AND r.expires_at > ?)",
            Some(now),
            &mut order,
        );
        let sql = format!(
            "SELECT c.id FROM captures c{} ORDER BY c.confirm_at {dir}, c.id {dir} LIMIT {limit}",
            w.sql(),
            dir = direction(f)
        );
        Ok(self
            .fetch::<(String,)>(&sql, &w, &order)
            .await?
            .into_iter()
            .map(|(id,)| id)
            .collect())
    }

    pub async fn capture(&self, id: &str) -> Result<Option<CaptureRow>, StoreError> {
        let mut w = Where::default();
        let mut order = Vec::new();
        w.text("c.id = ?", &Some(id.to_string()), &mut order);
        let sql = format!("SELECT {CAPTURE_COLUMNS} FROM {CAPTURE_FROM}{}", w.sql());
        Ok(self
            .fetch::<StoredCapture>(&sql, &w, &order)
            .await?
            .into_iter()
            .next()
            .map(CaptureRow::from))
    }

    /// Cases matching the filter, newest first, and how many match in all.
    /// Cases by the filter; its dates are days of the reporting time zone.
    pub async fn list_cases(
        &self,
        f: &CaseFilter,
        utc_offset_s: i32,
    ) -> Result<(Vec<CaseRecord>, i64), StoreError> {
        let mut w = Where::default();
        let mut order = Vec::new();
        w.text("rule = ?", &f.rule, &mut order);
        w.text("camera = ?", &f.camera, &mut order);
        w.text("status = ?", &f.status, &mut order);
        w.number("reported_at >= ?", f.from, &mut order);
        w.number("reported_at < ?", f.to, &mut order);
        w.number(
            "reported_at >= ?",
            day_start(&f.from_date, utc_offset_s),
            &mut order,
        );
        w.number(
            "reported_at < ?",
            day_start(&f.to_date, utc_offset_s).map(|t| t + 86400.0),
            &mut order,
        );
        let (limit, offset) = page(f.limit, f.offset);
        // The page's rows after the cursor; the total is of the whole filter.
        let (mut paged, mut paged_order) = (w.clone(), order.clone());
        if let Some((t, n)) = parse_cursor(&f.after) {
            paged.pair(
                "reported_at <= ?1 AND (reported_at < ?1 OR case_number < ?2)",
                t,
                &n,
                &mut paged_order,
            );
        }
        let rows: Vec<CaseRecord> = self
            .fetch(
                &format!(
                    "SELECT {CASE_COLUMNS} FROM cases{} ORDER BY reported_at DESC, case_number DESC \
                     LIMIT {limit} OFFSET {offset}",
                    paged.sql()
                ),
                &paged,
                &paged_order,
            )
            .await?;
        let dated = [&f.from_date, &f.to_date].iter().any(|d| d.is_some())
            || f.from.is_some()
            || f.to.is_some();
        let total = if dated {
            // A date range: counted over the reporting-time index, bounded by the range.
            self.fetch::<(i64,)>(
                &format!("SELECT COUNT(*) FROM cases{}", w.sql()),
                &w,
                &order,
            )
            .await?
            .first()
            .map_or(0, |t| t.0)
        } else {
            let some = |v: &Option<String>| v.clone().filter(|s| !s.is_empty());
            let (rule, camera, status) = (some(&f.rule), some(&f.camera), some(&f.status));
            self.tally_sum(
                super::tally::Subject::Cases,
                rule.as_deref(),
                camera.as_deref(),
                status.as_deref(),
            )
            .await?
        };
        Ok((rows, total))
    }

    /// Rejected captures with the reviewer's reason and note, oldest first.
    pub async fn rejected_captures(
        &self,
    ) -> Result<Vec<(CaptureRow, String, Option<String>)>, StoreError> {
        Ok(self
            .reviewed_captures(false)
            .await?
            .into_iter()
            .map(|(c, _, reason, note)| (c, reason, note))
            .collect())
    }

    /// Reviewed captures (rejected ones, and with `confirmed` the confirmed ones too) with
    /// the decision (`confirm` or `reject`), the reason and the note, oldest first.
    pub async fn reviewed_captures(
        &self,
        confirmed: bool,
    ) -> Result<Vec<(CaptureRow, String, String, Option<String>)>, StoreError> {
        let which = if confirmed {
            "r.decision IN ('reject', 'confirm')"
        } else {
            "r.decision = 'reject' AND c.status = 'rejected'"
        };
        let rows: Vec<StoredReview> = sqlx::query_as(&format!(
            "SELECT {CAPTURE_COLUMNS}, r.reason, r.note, r.decision FROM {CAPTURE_FROM} \
             JOIN reviews r ON r.capture_id = c.id \
             WHERE {which} ORDER BY c.confirm_at, c.id"
        ))
        .fetch_all(self.pool())
        .await
        .map_err(|e| self.err(e))?;
        Ok(rows
            .into_iter()
            .map(|r| {
                (
                    r.capture.into(),
                    r.decision,
                    r.reason.unwrap_or_default(),
                    r.note,
                )
            })
            .collect())
    }

    /// Captures per rule with their review outcome.
    /// Captures per rule by status, from the tallies.
    pub async fn rule_summary(&self) -> Result<Vec<RuleSummary>, StoreError> {
        let mut by_rule: std::collections::BTreeMap<String, RuleSummary> = Default::default();
        for t in self.tallies(super::tally::Subject::Captures, 0).await? {
            let r = by_rule
                .entry(t.rule.clone())
                .or_insert_with(|| RuleSummary {
                    rule: t.rule.clone(),
                    captures: 0,
                    confirmed: 0,
                    rejected: 0,
                    pending: 0,
                });
            r.captures += t.n;
            match t.status.as_str() {
                "filed" => r.confirmed += t.n,
                "rejected" => r.rejected += t.n,
                "pending_review" => r.pending += t.n,
                _ => {}
            }
        }
        Ok(by_rule.into_values().collect())
    }
}
