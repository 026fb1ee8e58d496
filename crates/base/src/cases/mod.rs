//! Case policy, in one place: how a confirmed capture becomes a case of the city's platform.
//! Case numbers (CW + the reporting day + a counter per day), the case description, the
//! idempotency key, and the reporting time zone every date is counted in. The store files
//! cases with it; the web shows dates with it.

pub mod deadline;
pub mod status;

use std::sync::Arc;

pub use deadline::WorkCalendar;
pub use status::{CaseStatus, Report};

use crate::model::categories::TimeLimit;
use crate::model::{Category, CategoryTable};

/// The reporting time zone when the config names none: China Standard Time.
pub const DEFAULT_TIMEZONE: &str = "+08:00";

/// A city's case policy: its category table and its reporting time zone.
#[derive(Debug, Clone)]
pub struct CasePolicy {
    pub table: Arc<CategoryTable>,
    /// The reporting time zone, seconds east of UTC.
    pub utc_offset_s: i32,
    /// The working calendar deadlines are counted on.
    pub calendar: Arc<WorkCalendar>,
}

/// The working day when the config names none: 09:00 to 17:00.
pub const DEFAULT_WORK_DAY: (u32, u32) = (9 * 60, 17 * 60);

impl CasePolicy {
    /// Monday to Friday, 09:00 to 17:00, no holidays.
    pub fn new(table: Arc<CategoryTable>, utc_offset_s: i32) -> Self {
        let (start, end) = DEFAULT_WORK_DAY;
        Self {
            table,
            utc_offset_s,
            calendar: Arc::new(WorkCalendar::weekdays(start, end, utc_offset_s)),
        }
    }

    pub fn with_calendar(mut self, calendar: Arc<WorkCalendar>) -> Self {
        self.calendar = calendar;
        self
    }

    /// The deadline of a case under `time_limit` counted from `from`. A limit that does not
    /// parse (the category table is checked at start, so only an old row's) counts as
    /// 5工作日, the longest the shipped tables use.
    pub fn deadline(&self, time_limit: &str, from: f64) -> f64 {
        let limit = TimeLimit::parse(time_limit).unwrap_or_else(|e| {
            tracing::warn!(time_limit, error = %e, "time limit not understood; counting 5 working days");
            TimeLimit::WorkDays(5.0)
        });
        self.calendar.deadline(limit, from)
    }

    /// The reporting day of a time, as YYYYMMDD.
    pub fn day(&self, unix: f64) -> String {
        let offset =
            time::UtcOffset::from_whole_seconds(self.utc_offset_s).unwrap_or(time::UtcOffset::UTC);
        time::OffsetDateTime::from_unix_timestamp(unix as i64)
            .map(|t| t.to_offset(offset))
            .map(|t| format!("{:04}{:02}{:02}", t.year(), t.month() as u8, t.day()))
            .unwrap_or_else(|_| "00000000".into())
    }

    /// The name of the database counter that numbers a day's cases (shared by every worker
    /// on the database).
    pub fn counter(day: &str) -> String {
        format!("case-{day}")
    }

    /// The `n`th case of a reporting day.
    pub fn number(day: &str, n: i64) -> String {
        format!("CW{day}{n:06}")
    }

    /// The key the platform deduplicates a capture's case on.
    pub fn idempotency_key(capture_id: &str) -> String {
        format!("case-{capture_id}")
    }

    /// The case description the platform shows (Chinese, as the command centre reads it).
    pub fn description(
        cat: &Category,
        rule: &str,
        camera: &str,
        zone: &str,
        label: &str,
        minutes: i64,
    ) -> String {
        format!(
            "视频抓拍: {} ({rule}), 摄像头 {camera} 区域 {zone}: 检测到 {label} 持续约 {minutes} 分钟. \
             AI 线索, 需人工核实.",
            cat.minor_name
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reporting_day_follows_the_time_zone() {
        // 2026-01-04T17:30:00Z: already the 5th in Beijing, still the 4th in UTC.
        let t = 1_767_547_800.0;
        let cst = CasePolicy::new(Arc::default(), 8 * 3600);
        let utc = CasePolicy::new(Arc::default(), 0);
        assert_eq!(cst.day(t), "20260105");
        assert_eq!(utc.day(t), "20260104");
        assert_eq!(CasePolicy::number("20260105", 7), "CW20260105000007");
    }
}
