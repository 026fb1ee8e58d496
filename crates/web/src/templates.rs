//! The pages' templates (askama, compiled with the crate and escaping by default): the
//! layout every page shares, and every page in it (the login page stands alone). Only the
//! charts' SVG is built in code (`charts`), with its text escaped there.

use askama::Template;

use super::auth::Auth;
use super::html::{Lang, t};
use crate::store::users::Role;

/// What the layout shows around every page.
pub struct Frame {
    pub lang: &'static str,
    pub title: String,
    pub csrf: String,
    pub nav: Vec<NavLink>,
    pub user: String,
    pub role: &'static str,
    pub other_lang: &'static str,
    pub other_lang_href: &'static str,
    pub logout: &'static str,
    /// A notice every page shows while something stops filing (a full or read-only disk).
    pub notice: Option<String>,
}

pub struct NavLink {
    pub href: &'static str,
    pub id: &'static str,
    pub label: &'static str,
}

/// The top navigation's pages: (path, element id, word).
const NAV: &[(&str, &str, &str)] = &[
    ("/review", "nav-review", "review"),
    ("/cases", "nav-cases", "cases"),
    ("/cameras", "nav-cameras", "cameras"),
    ("/summary", "nav-summary", "summary"),
    ("/learning", "nav-learning", "learning"),
];

/// The admins' pages, after [`NAV`].
const ADMIN_NAV: &[(&str, &str, &str)] = &[
    ("/admin/users", "nav-users", "users"),
    ("/admin/audit", "nav-audit", "audit"),
    ("/admin/outbox", "nav-outbox", "dead_letters"),
];

impl Frame {
    pub fn new(st: &crate::state::WebState, lang: Lang, auth: &Auth, title: &str) -> Self {
        let admin = auth.user.role >= Role::Admin;
        let nav = NAV
            .iter()
            .chain(if admin { ADMIN_NAV } else { &[] })
            .map(|&(href, id, key)| NavLink {
                href,
                id,
                label: t(lang, key),
            })
            .collect();
        let (other_lang, other_lang_href) = match lang {
            Lang::Zh => ("English", "?lang=en"),
            Lang::En => ("中文", "?lang=zh"),
        };
        Self {
            lang: lang.code(),
            title: title.to_string(),
            csrf: auth.csrf.clone().unwrap_or_default(),
            nav,
            user: auth.user.name.clone(),
            role: auth.user.role.as_str(),
            other_lang,
            other_lang_href,
            logout: t(lang, "logout"),
            notice: filing_notice(st, lang),
        }
    }
}

/// What stops filing now, for the page's notice: which disk refuses captures, why, since
/// when, and how many wait.
pub fn filing_notice(st: &crate::state::WebState, lang: Lang) -> Option<String> {
    let s = st.filing.as_ref()?.published();
    let b = s.blocked.as_ref()?;
    let place = t(
        lang,
        if b.place == "queue" {
            "capture_queue"
        } else {
            "evidence_disk"
        },
    );
    let reason = t(lang, b.reason.as_str());
    let waiting = s.evidence_pending + s.held;
    Some(format!(
        "{place}: {reason} ({} {}) · {waiting} {}",
        t(lang, "since"),
        crate::html::local(b.since, st.cases.utc_offset_s),
        t(lang, "captures_waiting"),
    ))
}

/// A choice in a filter's drop-down.
pub struct Choice {
    pub value: String,
    pub label: String,
    pub chosen: bool,
}

/// One capture on the review workbench's grid.
pub struct Card {
    pub id: String,
    pub href: String,
    pub crop: Option<String>,
    pub context: Option<String>,
    pub rule: &'static str,
    pub camera: String,
    pub zone: String,
    pub time: String,
    pub score: String,
    pub aggregation: i64,
    /// Another operator who holds it.
    pub held: Option<String>,
}

/// The review workbench: the filtered queue as a grid, decided from the keyboard
/// (`static/workbench.js`).
#[derive(Template)]
#[template(path = "workbench.html")]
pub struct Workbench {
    pub frame: Frame,
    pub lang: Lang,
    pub rules: Vec<Choice>,
    pub cameras: Vec<Choice>,
    pub zone: String,
    pub min_score: String,
    pub oldest: bool,
    pub total: i64,
    /// The total stopped counting: there are at least `total`.
    pub capped: bool,
    pub first: i64,
    pub last: i64,
    pub prev: Option<String>,
    pub next: Option<String>,
    pub cards: Vec<Card>,
    /// The rejection reasons in key order (`r` then 1, 2, …): (code, word).
    pub reasons: Vec<(String, &'static str)>,
    /// The codes alone, as JSON, for the script.
    pub reasons_json: String,
}

/// One case in the cases list.
pub struct CaseLine {
    pub href: String,
    pub number: String,
    pub rule: &'static str,
    /// The minor category's code and name.
    pub category: String,
    pub camera: String,
    pub reported: String,
    pub time_limit: String,
    pub deadline: String,
    pub overdue: bool,
    pub status: &'static str,
}

/// The cases list: filters, the total, a page of cases (overdue ones marked) and the next
/// page by keyset.
#[derive(Template)]
#[template(path = "cases.html")]
pub struct CasesList {
    pub frame: Frame,
    pub lang: Lang,
    pub rule: String,
    pub camera: String,
    pub status: String,
    pub from_date: String,
    pub to_date: String,
    pub total: i64,
    pub rows: Vec<CaseLine>,
    pub next: Option<String>,
}

/// A line of the summary's tables: a rule (or a rule and camera) and its verdicts.
pub struct SummaryRow {
    pub label: String,
    pub captures: i64,
    pub confirmed: i64,
    pub rejected: i64,
    pub pending: i64,
    /// The confirmation rate, "-" before any verdict.
    pub rate: String,
}

/// A chart of the summary under its heading; the SVG is built (and escaped) by `charts`.
pub struct Chart {
    pub heading: &'static str,
    pub svg: String,
}

/// The summary: verdicts by rule, the last 30 days by rule and camera, the charts, the
/// cameras' capacity and health over the last day, and the learning proposals.
#[derive(Template)]
#[template(path = "summary.html")]
pub struct SummaryPage {
    pub frame: Frame,
    pub lang: Lang,
    pub rules: Vec<SummaryRow>,
    pub recent: Vec<SummaryRow>,
    /// Captures from recorded footage among the last 30 days'.
    pub replayed: u64,
    pub charts: Vec<Chart>,
    /// The last day's charts; none when no health was sampled.
    pub day_charts: Vec<String>,
    pub proposals: Option<usize>,
}

/// A zone drawn over a camera's picture (normalised points, "x,y x,y …").
pub struct ZoneShape {
    pub points: String,
    pub zone: String,
    /// Drawn by an admin (stored over the config's, or a mask beyond them).
    pub drawn: bool,
    pub mask: bool,
}

/// A fixture's box over a camera's picture: `fixture` or `proposed`, with its index in its
/// own list (what the fixtures form's accept and dismiss name).
pub struct BoxShape {
    pub class: &'static str,
    pub index: usize,
    pub x: f32,
    pub y: f32,
    pub w: f32,
    pub h: f32,
    pub label: String,
}

/// A fixture in a camera's fixtures table.
pub struct FixtureLine {
    pub index: usize,
    pub label: String,
    pub source: String,
    pub bbox: String,
}

/// A camera on the cameras page: its health and analysis, and, when it has a latest
/// picture, the picture with its zones and fixtures drawn over it.
pub struct CameraLine {
    pub id: String,
    /// The id as a path segment.
    pub path: String,
    pub name: String,
    /// The redacted URL.
    pub url: String,
    pub state: String,
    pub frames: u64,
    pub analysed: String,
    pub reused: String,
    pub reconnects: u64,
    pub error: String,
    pub live: bool,
    pub zones: Vec<ZoneShape>,
    pub boxes: Vec<BoxShape>,
    pub zone_ids: Vec<String>,
    pub fixtures: Vec<FixtureLine>,
    pub proposed: Vec<FixtureLine>,
}

/// A camera of the fleet, as its worker last wrote it.
pub struct FleetLine {
    pub camera: String,
    pub worker: String,
    pub lease: String,
    pub state: String,
    pub frames: u64,
    pub inferences: u64,
    pub reused: u64,
    pub age: String,
}

/// The cameras page: each camera's health and picture (zones editable by admins, fixtures
/// drawn by operators, `static/zones.js`), the fleet, and each camera's fixtures.
#[derive(Template)]
#[template(path = "cameras.html")]
pub struct CamerasPage {
    pub frame: Frame,
    pub lang: Lang,
    pub admin: bool,
    pub operator: bool,
    pub csrf: String,
    pub cameras: Vec<CameraLine>,
    pub fleet: Vec<FleetLine>,
}

/// A photo or a clip of a case's evidence, with its caption.
pub struct Figure {
    pub url: String,
    pub caption: String,
    pub video: bool,
}

/// A case's verified evidence package: the capture's looks (the "before") beside each
/// closure check's (the "after").
pub struct CasePackage {
    pub files: usize,
    pub before: Vec<Figure>,
    pub after: Vec<Figure>,
}

/// A step of a case's history.
pub struct CaseStep {
    pub seq: i64,
    pub time: String,
    pub status: String,
    pub status_word: &'static str,
    pub actor: String,
    pub note: String,
}

/// A case's page: its status, category, deadline (a countdown while it runs), the plate of
/// a vehicle, the history as a timeline, a person's verification, and the evidence before
/// and after.
#[derive(Template)]
#[template(path = "case.html")]
pub struct CasePage {
    pub frame: Frame,
    pub lang: Lang,
    /// The case number as a path segment.
    pub path: String,
    pub status: String,
    pub status_word: &'static str,
    pub category: String,
    pub camera: String,
    pub time_limit: String,
    pub deadline: String,
    pub overdue: bool,
    pub countdown: Option<String>,
    pub capture: String,
    pub capture_path: String,
    pub plate: Option<String>,
    pub history: Vec<CaseStep>,
    /// Whether this user may verify it now (a handled case, or one the camera cannot check).
    pub verify: bool,
    pub csrf: String,
    pub package: Option<CasePackage>,
    /// The files of a package that fails its check.
    pub tampered: Option<Vec<String>>,
}

/// A capture the verdict memory suppressed (learned), with what it resembled.
pub struct LearnedLine {
    pub id: String,
    pub path: String,
    pub crop: Option<String>,
    pub rule: &'static str,
    pub camera: String,
    pub time: String,
    pub like: String,
    pub like_path: String,
    pub similarity: String,
}

/// A remembered verdict.
pub struct MemoryLine {
    pub id: String,
    pub path: String,
    pub camera: String,
    pub zone: String,
    pub rule: &'static str,
    pub said: &'static str,
    pub reason: &'static str,
    pub time: String,
    /// Captures it suppressed.
    pub linked: i64,
}

/// A calibration the verdict history proposes for a camera's rule.
pub struct ProposalLine {
    pub camera: String,
    pub rule: &'static str,
    pub rule_word: &'static str,
    pub setting: String,
    pub value: String,
    pub history: String,
}

/// A calibration applied.
pub struct OverrideLine {
    pub camera: String,
    pub rule: &'static str,
    pub setting: String,
    pub by: String,
    pub at: String,
}

/// What was learned from the operators' verdicts: learned suppressions (undo), the
/// remembered verdicts (forget), calibration proposals (an admin applies one) and the
/// overrides applied.
#[derive(Template)]
#[template(path = "learning.html")]
pub struct LearningPage {
    pub frame: Frame,
    pub lang: Lang,
    pub csrf: String,
    pub admin: bool,
    pub suppressions: Vec<LearnedLine>,
    pub memory: Vec<MemoryLine>,
    pub proposals: Vec<ProposalLine>,
    pub overrides: Vec<OverrideLine>,
}

/// A web user on the users page.
pub struct UserLine {
    pub name: String,
    /// The name as a path segment.
    pub path: String,
    pub role: String,
    pub disabled: bool,
    pub sessions: i64,
}

/// The users page (admins): add a user; disable, enable or reset each.
#[derive(Template)]
#[template(path = "users.html")]
pub struct UsersPage {
    pub frame: Frame,
    pub lang: Lang,
    pub csrf: String,
    pub roles: [&'static str; 3],
    pub min_password: usize,
    pub users: Vec<UserLine>,
}

/// A row of the audit log.
pub struct AuditLine {
    pub seq: String,
    pub time: String,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub note: String,
}

/// The audit log (admins): the hash chain's state, the filters and the rows.
#[derive(Template)]
#[template(path = "audit.html")]
pub struct AuditLog {
    pub frame: Frame,
    pub lang: Lang,
    /// Where the chain breaks, and why; none when it holds.
    pub broken: Option<(i64, String)>,
    pub rows_checked: i64,
    pub since_full_walk: Option<i64>,
    pub walked_at: Option<String>,
    pub actor: String,
    pub action: String,
    pub subject: String,
    pub from_date: String,
    pub to_date: String,
    pub rows: Vec<AuditLine>,
}

/// An outbox message given up on.
pub struct DeadLine {
    pub id: String,
    pub path: String,
    pub case_number: String,
    pub case_path: String,
    pub event: String,
    pub idempotency_key: String,
    pub attempts: i64,
    pub error: String,
}

/// The dead letters (admins): requeue one or all.
#[derive(Template)]
#[template(path = "outbox.html")]
pub struct OutboxPage {
    pub frame: Frame,
    pub lang: Lang,
    pub csrf: String,
    pub dead: Vec<DeadLine>,
}

/// A past verdict like this capture, from the verdict memory.
pub struct Similar {
    pub href: String,
    pub crop: Option<String>,
    /// confirmed or rejected (the class).
    pub said: &'static str,
    pub said_word: &'static str,
    pub reason: Option<&'static str>,
    /// "0.93 alike", or the time order when there is no vector to compare.
    pub similarity: String,
    pub time: String,
}

/// One step of a capture's story.
pub struct Step {
    pub time: String,
    pub what: String,
}

/// A capture's view, laid out for a 1366×768 screen: the photo (zoomable) beside the
/// decision, the crop, the "before" and the clip; below them similar past verdicts and the
/// episode's timeline (`static/capture.js` for zoom and keys).
#[derive(Template)]
#[template(path = "capture.html")]
pub struct CaptureView {
    pub frame: Frame,
    pub lang: Lang,
    pub id: String,
    pub rule: &'static str,
    pub camera: String,
    pub camera_name: String,
    pub zone: String,
    pub time: String,
    pub score: String,
    pub aggregation: i64,
    pub photo: Option<String>,
    pub crop: Option<String>,
    pub before: Option<String>,
    pub clip: Option<String>,
    /// The id as a path segment.
    pub path: String,
    /// The files of a package that fails its check: shown for what it is, never decided.
    pub tampered: Option<Vec<String>>,
    /// Waiting for a decision: the confirm and reject controls.
    pub pending: bool,
    /// The rejection reasons in key order: (code, word).
    pub reasons: Vec<(String, &'static str)>,
    /// Once decided: the outcome, and its case (its page, its number).
    pub outcome: &'static str,
    pub case: Option<(String, String)>,
    /// A bin capture: its zone may be marked clean now.
    pub clean: bool,
    pub parts: String,
    /// A vehicle capture's plate (masked for viewers; "" when unread), how it was read,
    /// and whether this user may correct it (operators and admins).
    pub plate: Option<String>,
    pub plate_note: String,
    pub plate_form: bool,
    pub csrf: String,
    pub location: String,
    pub category: String,
    pub time_limit: String,
    pub similar: Vec<Similar>,
    pub timeline: Vec<Step>,
    pub manifest: Option<String>,
    /// The rejection reasons' codes in key order, as JSON, for `r` then a digit.
    pub reasons_json: String,
}

/// The pages whose templates look their words up with `self.t("key")`, in the page's
/// language (`lang`).
macro_rules! words {
    ($($page:ty),* $(,)?) => {$(
        impl $page {
            fn t(&self, key: &str) -> &'static str {
                t(self.lang, key)
            }
        }
    )*};
}

words!(
    Workbench,
    CasesList,
    SummaryPage,
    CamerasPage,
    CasePage,
    LearningPage,
    UsersPage,
    AuditLog,
    OutboxPage,
    CaptureView,
);

/// The navigation's words.
#[cfg(test)]
pub(crate) fn nav_keys() -> impl Iterator<Item = &'static str> {
    NAV.iter().chain(ADMIN_NAV).map(|(_, _, k)| *k)
}

/// The templates' own words: every `self.t("…")` in `templates/`.
#[cfg(test)]
pub(crate) fn template_keys() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
    let mut keys = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let text = std::fs::read_to_string(e.unwrap().path()).unwrap();
        keys.extend(super::html::quoted_after(&text, "self.t(\""));
    }
    keys
}
