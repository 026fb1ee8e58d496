//! `[cases]`: the case store, categories, reporting time zone, deadlines, the platform, the closure check and the webhook, and their validation.

use super::*;

/// `[cases]`: where captures and cases go.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasesSettings {
    /// `sqlite://PATH` (relative to the config file) or `postgres://...`.
    pub database: String,
    /// The per-city category table, relative to the config file.
    #[serde(default = "default_categories")]
    pub categories: PathBuf,
    /// Filing mode per rule: "review" (default) or "auto".
    #[serde(default)]
    pub filing: std::collections::BTreeMap<RuleKind, FilingMode>,
    #[serde(default)]
    pub webhook: Option<WebhookConfig>,
    /// The persistent queue of captures waiting for the database, relative to the config.
    #[serde(default = "default_spool")]
    pub spool: PathBuf,
    /// Most captures the queue holds; beyond it new captures are dropped and counted.
    #[serde(default = "default_spool_max")]
    pub spool_max: usize,
    /// The reporting time zone, as a UTC offset: case numbers' days, the date filters and
    /// every time the review UI shows. Default "+08:00".
    #[serde(default = "default_report_timezone")]
    pub timezone: String,
    /// `timezone` in seconds east of UTC; set at validation.
    #[serde(skip)]
    pub utc_offset_s: i32,
    /// Loaded at validation: a config that passed validation always has it.
    #[serde(skip)]
    pub table: std::sync::Arc<CategoryTable>,
    /// Deadlines: the working calendar and reminders.
    #[serde(default)]
    pub deadlines: DeadlineSettings,
    /// Progress reports from the city platform (callbacks, polling); absent: none.
    #[serde(default)]
    pub platform: Option<PlatformSettings>,
    /// The closure check (核实) of cases reported handled.
    #[serde(default)]
    pub closure: ClosureSettings,
    /// Built at validation from `deadlines`.
    #[serde(skip)]
    pub calendar: std::sync::Arc<crate::cases::WorkCalendar>,
}

/// `[cases.deadlines]`: 处置时限 as deadlines on the city's working calendar.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DeadlineSettings {
    /// A calendar file of holidays and make-up workdays, relative to the config file.
    /// Default: none (Monday to Friday are working days).
    pub calendar: Option<PathBuf>,
    /// The working day, local time (the reporting time zone). Default "09:00" to "17:00".
    pub work_start: String,
    pub work_end: String,
    /// Tell the platform once when a case passes its deadline. Default true.
    pub remind: bool,
    /// How often overdue cases are looked for, in seconds. Default 60.
    pub check_interval_s: f64,
}

impl Default for DeadlineSettings {
    fn default() -> Self {
        Self {
            calendar: None,
            work_start: "09:00".into(),
            work_end: "17:00".into(),
            remind: true,
            check_interval_s: 60.0,
        }
    }
}

/// `[cases.platform]`: how the city platform reports case progress back.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlatformSettings {
    /// Shared secret of the callbacks' HMAC signature. Never logged.
    pub secret: String,
    /// Largest difference between a callback's timestamp and now, in seconds. Default 300.
    #[serde(default = "default_max_skew")]
    pub max_skew_s: f64,
    /// For platforms that cannot call back: a URL to GET each open case's status from, with
    /// `{case_number}` in it. Default: none.
    #[serde(default)]
    pub poll_url: Option<String>,
    /// Seconds between polling rounds. Default 300.
    #[serde(default = "default_poll_interval")]
    pub poll_interval_s: f64,
    /// Seconds one poll may take. Default 10.
    #[serde(default = "timeout")]
    pub poll_timeout_s: f64,
}

impl std::fmt::Debug for PlatformSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformSettings")
            .field("secret", &"***")
            .field("max_skew_s", &self.max_skew_s)
            .field("poll_url", &self.poll_url.as_deref().map(redact_url))
            .finish_non_exhaustive()
    }
}

pub(crate) fn default_max_skew() -> f64 {
    300.0
}

pub(crate) fn default_poll_interval() -> f64 {
    300.0
}

/// `[cases.closure]`: the closure check (核实) of a case the platform reports handled.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ClosureSettings {
    /// Whether citywatch checks the place itself. Default true; false hands every handled
    /// case to a person.
    pub enabled: bool,
    /// Seconds after the report before the check starts looking. Default 0.
    pub delay_s: f64,
    /// How long one look lasts at most, in seconds of frames. Default 300.
    pub window_s: f64,
    /// The place must be seen clear this long without a break to close the case. Default 60.
    pub clear_s: f64,
    /// After a look that could not judge the place (dark, occluded, off view), the next one
    /// starts this much later, in seconds. Default 900.
    pub retry_s: f64,
    /// Looks that could not judge before the case is handed to a person. Default 3.
    pub max_attempts: u32,
}

impl Default for ClosureSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            delay_s: 0.0,
            window_s: 300.0,
            clear_s: 60.0,
            retry_s: 900.0,
            max_attempts: 3,
        }
    }
}

/// `[cases.webhook]`: where filed cases are sent.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    pub url: String,
    /// Shared secret for the signature. Never logged.
    pub secret: String,
    #[serde(default = "attempts")]
    pub max_attempts: u32,
    #[serde(default = "initial")]
    pub backoff_initial_s: f64,
    #[serde(default = "max_backoff")]
    pub backoff_max_s: f64,
    #[serde(default = "timeout")]
    pub timeout_s: f64,
}

impl std::fmt::Debug for WebhookConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookConfig")
            .field("url", &crate::core::redact_url(&self.url))
            .field("secret", &"***")
            .field("max_attempts", &self.max_attempts)
            .finish_non_exhaustive()
    }
}

pub(crate) fn attempts() -> u32 {
    10
}

pub(crate) fn initial() -> f64 {
    1.0
}

pub(crate) fn max_backoff() -> f64 {
    300.0
}

pub(crate) fn timeout() -> f64 {
    10.0
}

pub(crate) fn default_report_timezone() -> String {
    crate::cases::DEFAULT_TIMEZONE.into()
}

pub(crate) fn default_categories() -> PathBuf {
    PathBuf::from("categories/default.toml")
}

impl CasesSettings {
    /// The case policy: the category table and the reporting time zone.
    pub fn policy(&self) -> crate::cases::CasePolicy {
        crate::cases::CasePolicy::new(self.table.clone(), self.utc_offset_s)
            .with_calendar(self.calendar.clone())
    }

    pub fn mode(&self, rule: RuleKind) -> FilingMode {
        self.filing.get(&rule).copied().unwrap_or_default()
    }
}

/// `[cases.deadlines]`, `[cases.platform]` and `[cases.closure]`; builds the calendar.
pub(crate) fn validate_lifecycle(
    c: &mut CasesSettings,
    base: &Path,
    problems: &mut Vec<ConfigProblem>,
) {
    let mut problem = |path: &str, message: String| {
        problems.push(ConfigProblem {
            path: path.into(),
            message,
        })
    };
    let d = &mut c.deadlines;
    let start = crate::cases::deadline::parse_clock(&d.work_start)
        .map_err(|m| problem("cases.deadlines.work_start", m))
        .ok();
    let end = crate::cases::deadline::parse_clock(&d.work_end)
        .map_err(|m| problem("cases.deadlines.work_end", m))
        .ok();
    if !(d.check_interval_s.is_finite() && d.check_interval_s >= 1.0) {
        problem(
            "cases.deadlines.check_interval_s",
            format!("must be at least 1, got {}", d.check_interval_s),
        );
    }
    if let (Some(start), Some(end)) = (start, end) {
        if end <= start {
            problem(
                "cases.deadlines.work_end",
                format!("must be after work_start ({})", d.work_start),
            );
        } else {
            let cal = crate::cases::WorkCalendar::weekdays(start, end, c.utc_offset_s);
            let cal = match &mut d.calendar {
                Some(p) => {
                    if p.is_relative() {
                        *p = base.join(&*p);
                    }
                    cal.load(p)
                        .map_err(|m| problem("cases.deadlines.calendar", m))
                        .ok()
                }
                None => Some(cal),
            };
            if let Some(cal) = cal {
                c.calendar = std::sync::Arc::new(cal);
            }
        }
    }
    if let Some(p) = &c.platform {
        if p.secret.len() < 16 {
            problem(
                "cases.platform.secret",
                "must be at least 16 characters".into(),
            );
        }
        if !(p.max_skew_s.is_finite() && p.max_skew_s >= 1.0) {
            problem(
                "cases.platform.max_skew_s",
                format!("must be at least 1, got {}", p.max_skew_s),
            );
        }
        if let Some(u) = &p.poll_url
            && (!u.contains("{case_number}") || !u.starts_with("http"))
        {
            problem(
                "cases.platform.poll_url",
                format!(
                    "must be an http(s) URL with {{case_number}} in it, got {:?}",
                    redact_url(u)
                ),
            );
        }
        if !(p.poll_interval_s.is_finite() && p.poll_interval_s >= 1.0) {
            problem(
                "cases.platform.poll_interval_s",
                format!("must be at least 1, got {}", p.poll_interval_s),
            );
        }
    }
    let k = &c.closure;
    for (name, v) in [
        ("delay_s", k.delay_s),
        ("window_s", k.window_s),
        ("clear_s", k.clear_s),
        ("retry_s", k.retry_s),
    ] {
        if !(v.is_finite() && v >= 0.0) {
            problem(
                &format!("cases.closure.{name}"),
                format!("must be 0 or more, got {v}"),
            );
        }
    }
    if k.clear_s > k.window_s {
        problem(
            "cases.closure.clear_s",
            format!("must not be longer than window_s ({})", k.window_s),
        );
    }
    if k.max_attempts == 0 {
        problem("cases.closure.max_attempts", "must be at least 1".into());
    }
}

/// Resolves `[cases]`'s paths against the config's folder and checks it: the spool, the
/// time zone, the database URL, and a category table with every rule the cameras use.
pub(super) fn resolve_cases(
    c: &mut CasesSettings,
    cameras: &[CameraConfig],
    base: &Path,
    problems: &mut Vec<ConfigProblem>,
) {
    if c.categories.is_relative() {
        c.categories = base.join(&c.categories);
    }
    if c.spool.is_relative() {
        c.spool = std::path::absolute(base.join(&c.spool)).unwrap_or(base.join(&c.spool));
    }
    if c.spool_max == 0 {
        problems.push(ConfigProblem {
            path: "cases.spool_max".into(),
            message: "must be at least 1".into(),
        });
    }
    match parse_utc_offset(&c.timezone) {
        Ok(s) => c.utc_offset_s = s,
        Err(message) => problems.push(ConfigProblem {
            path: "cases.timezone".into(),
            message,
        }),
    }
    if let Some(rest) = c.database.strip_prefix("sqlite://")
        && !rest.starts_with('/')
        && !rest.starts_with(':')
    {
        let path = base.join(rest);
        let path = std::path::absolute(&path).unwrap_or(path);
        c.database = format!("sqlite://{}", path.display());
    }
    if !(c.database.starts_with("sqlite:") || c.database.starts_with("postgres")) {
        problems.push(ConfigProblem {
            path: "cases.database".into(),
            message: format!(
                "expected sqlite://PATH or postgres://..., got {:?}",
                redact_url(&c.database)
            ),
        });
    }
    let mut used: Vec<RuleKind> = cameras
        .iter()
        .flat_map(|c: &CameraConfig| c.rules.iter().map(|r| r.kind))
        .collect();
    used.sort();
    used.dedup();
    match CategoryTable::load(&c.categories, &used) {
        Ok(t) => c.table = std::sync::Arc::new(t),
        Err(message) => problems.push(ConfigProblem {
            path: "cases.categories".into(),
            message,
        }),
    }
    validate_lifecycle(c, base, problems);
}
