//! Deadlines: a category's 处置时限 turned into a time, on the city's working calendar.
//!
//! Working time runs from `work_start` to `work_end` on working days. A working day is a
//! Monday to Friday that is not a holiday, or a make-up workday (调休上班日) the calendar
//! file lists. `N工作日` is N working days' worth of working time, `N工作时` N hours of
//! it; `N小时` and `N天` are plain calendar time.

use std::collections::BTreeSet;
use std::path::Path;

use serde::Deserialize;
use time::{Date, Duration, OffsetDateTime, UtcOffset, Weekday};

use crate::model::categories::TimeLimit;

/// The calendar file (`[cases.deadlines] calendar`): dates as "YYYY-MM-DD".
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CalendarFile {
    /// Days off that would be working days (public holidays).
    #[serde(default)]
    pub holidays: Vec<String>,
    /// Weekend days that are working days (make-up workdays).
    #[serde(default)]
    pub workdays: Vec<String>,
}

/// A city's working calendar, in its reporting time zone.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkCalendar {
    holidays: BTreeSet<Date>,
    workdays: BTreeSet<Date>,
    /// Working day, minutes after local midnight: [start, end).
    start_min: u32,
    end_min: u32,
    offset: UtcOffset,
}

/// Longest a deadline search runs, in days (a limit no calendar needs).
const MAX_DAYS: i64 = 3660;

fn parse_date(s: &str) -> Result<Date, String> {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    Date::parse(s.trim(), &f).map_err(|e| format!("{s:?} is not a YYYY-MM-DD date: {e}"))
}

/// "HH:MM" as minutes after midnight.
pub fn parse_clock(s: &str) -> Result<u32, String> {
    let (h, m) = s
        .split_once(':')
        .ok_or_else(|| format!("{s:?}: expected HH:MM"))?;
    let (h, m): (u32, u32) = (
        h.parse().map_err(|_| format!("{s:?}: expected HH:MM"))?,
        m.parse().map_err(|_| format!("{s:?}: expected HH:MM"))?,
    );
    if h > 24 || m > 59 || h * 60 + m > 24 * 60 {
        return Err(format!("{s:?}: not a time of day"));
    }
    Ok(h * 60 + m)
}

impl Default for WorkCalendar {
    fn default() -> Self {
        let (start, end) = super::DEFAULT_WORK_DAY;
        Self::weekdays(start, end, 8 * 3600)
    }
}

impl WorkCalendar {
    /// Monday to Friday, `start_min`..`end_min`, no holidays.
    pub fn weekdays(start_min: u32, end_min: u32, utc_offset_s: i32) -> Self {
        Self {
            holidays: BTreeSet::new(),
            workdays: BTreeSet::new(),
            start_min,
            end_min: end_min.max(start_min + 1),
            offset: UtcOffset::from_whole_seconds(utc_offset_s).unwrap_or(UtcOffset::UTC),
        }
    }

    /// Adds a calendar file's holidays and make-up workdays. Errors name the list and date.
    pub fn with_file(mut self, file: &CalendarFile) -> Result<Self, String> {
        for (i, d) in file.holidays.iter().enumerate() {
            self.holidays
                .insert(parse_date(d).map_err(|e| format!("holidays[{i}]: {e}"))?);
        }
        for (i, d) in file.workdays.iter().enumerate() {
            self.workdays
                .insert(parse_date(d).map_err(|e| format!("workdays[{i}]: {e}"))?);
        }
        if let Some(d) = self.holidays.intersection(&self.workdays).next() {
            return Err(format!("{d} is both a holiday and a make-up workday"));
        }
        Ok(self)
    }

    /// Reads a calendar file.
    pub fn load(self, path: &Path) -> Result<Self, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let file: CalendarFile =
            toml::from_str(&text).map_err(|e| format!("{}: {}", path.display(), e.message()))?;
        self.with_file(&file)
            .map_err(|e| format!("{}: {e}", path.display()))
    }

    pub fn is_workday(&self, d: Date) -> bool {
        if self.workdays.contains(&d) {
            return true;
        }
        if self.holidays.contains(&d) {
            return false;
        }
        !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday)
    }

    /// Seconds of working time in one working day.
    pub fn day_s(&self) -> f64 {
        f64::from(self.end_min - self.start_min) * 60.0
    }

    /// The time `secs` of working time after `from` (Unix seconds).
    pub fn add_working(&self, from: f64, secs: f64) -> f64 {
        let Ok(t) = OffsetDateTime::from_unix_timestamp(from.floor() as i64) else {
            return from + secs;
        };
        let local = t.to_offset(self.offset);
        let mut day = local.date();
        // Local midnight of `day`, as Unix seconds.
        let midnight = |d: Date| d.midnight().assume_offset(self.offset).unix_timestamp() as f64;
        let mut left = secs.max(0.0);
        let mut cur = from;
        for _ in 0..MAX_DAYS {
            if self.is_workday(day) {
                let m = midnight(day);
                let (open, close) = (
                    m + f64::from(self.start_min) * 60.0,
                    m + f64::from(self.end_min) * 60.0,
                );
                let begin = cur.max(open);
                if begin < close {
                    if left <= close - begin {
                        return begin + left;
                    }
                    left -= close - begin;
                }
            }
            day += Duration::days(1);
            cur = midnight(day);
        }
        from + secs
    }

    /// The deadline of a case filed at `from` under `limit`.
    pub fn deadline(&self, limit: TimeLimit, from: f64) -> f64 {
        match limit {
            TimeLimit::WorkDays(n) => self.add_working(from, n * self.day_s()),
            TimeLimit::WorkHours(n) => self.add_working(from, n * 3600.0),
            TimeLimit::Hours(n) => from + n * 3600.0,
            TimeLimit::Days(n) => from + n * 86_400.0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unix seconds of a Beijing local time.
    fn bj(s: &str) -> f64 {
        OffsetDateTime::parse(
            &format!("{s}:00+08:00"),
            &time::format_description::well_known::Rfc3339,
        )
        .unwrap()
        .unix_timestamp() as f64
    }

    fn cal() -> WorkCalendar {
        WorkCalendar::weekdays(9 * 60, 17 * 60, 8 * 3600)
    }

    #[test]
    fn working_hours_skip_the_night_and_the_weekend() {
        let c = cal();
        // Friday 2026-01-09 15:00 + 4 working hours: 2 on Friday, 2 on Monday.
        assert_eq!(
            c.deadline(TimeLimit::WorkHours(4.0), bj("2026-01-09T15:00")),
            bj("2026-01-12T11:00")
        );
        // Filed on a Saturday evening: counting starts Monday 09:00.
        assert_eq!(
            c.deadline(TimeLimit::WorkHours(2.0), bj("2026-01-10T20:00")),
            bj("2026-01-12T11:00")
        );
        // Filed before opening: from 09:00 the same day.
        assert_eq!(
            c.deadline(TimeLimit::WorkHours(8.0), bj("2026-01-13T07:30")),
            bj("2026-01-13T17:00")
        );
        // Plain hours and days ignore the calendar.
        assert_eq!(
            c.deadline(TimeLimit::Hours(24.0), bj("2026-01-09T15:00")),
            bj("2026-01-10T15:00")
        );
    }

    #[test]
    fn working_days_cross_a_weekend() {
        // Thursday 10:00 + 5 working days (5 × 8 h): Fri, Mon, Tue, Wed, then Thursday 10:00.
        assert_eq!(
            cal().deadline(TimeLimit::WorkDays(5.0), bj("2026-01-08T10:00")),
            bj("2026-01-15T10:00")
        );
    }

    #[test]
    fn a_holiday_and_a_make_up_workday_move_the_deadline() {
        // A week with Monday and Tuesday off and the Saturday before them worked.
        let c = cal()
            .with_file(&CalendarFile {
                holidays: vec!["2026-01-12".into(), "2026-01-13".into()],
                workdays: vec!["2026-01-10".into()],
            })
            .unwrap();
        assert!(c.is_workday(parse_date("2026-01-10").unwrap()));
        assert!(!c.is_workday(parse_date("2026-01-12").unwrap()));
        // Friday 15:00 + 4 working hours: 2 on Friday, 2 on the make-up Saturday.
        assert_eq!(
            c.deadline(TimeLimit::WorkHours(4.0), bj("2026-01-09T15:00")),
            bj("2026-01-10T11:00")
        );
        // Friday 15:00 + 2 working days (16 h): Fri 2 h, Sat 8 h, then Wednesday 6 h
        // (Sunday, and the Monday and Tuesday holidays, do not count).
        assert_eq!(
            c.deadline(TimeLimit::WorkDays(2.0), bj("2026-01-09T15:00")),
            bj("2026-01-14T15:00")
        );
    }

    #[test]
    fn bad_calendar_files_name_the_entry() {
        let e = cal()
            .with_file(&CalendarFile {
                holidays: vec!["2026-01-01".into(), "2026-13-01".into()],
                workdays: vec![],
            })
            .unwrap_err();
        assert!(e.starts_with("holidays[1]"), "{e}");
        let e = cal()
            .with_file(&CalendarFile {
                holidays: vec!["2026-01-03".into()],
                workdays: vec!["2026-01-03".into()],
            })
            .unwrap_err();
        assert!(e.contains("both"), "{e}");
        assert_eq!(parse_clock("09:30"), Ok(570));
        assert!(parse_clock("25:00").is_err());
    }
}
