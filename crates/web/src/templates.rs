//! The pages' templates (askama, compiled with the crate and escaping by default): the
//! layout every page shares, and the pages built from templates. Pages still assembled in
//! code hand their escaped body to [`Body`], which sets it in the same layout.

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

/// A page whose body was assembled (and escaped) in code, in the shared layout.
#[derive(Template)]
#[template(path = "body.html")]
pub struct Body<'a> {
    pub frame: Frame,
    pub body: &'a str,
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

impl Workbench {
    fn t(&self, key: &str) -> &'static str {
        t(self.lang, key)
    }
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
    /// The decision controls, the outcome, or the tampered banner (built and escaped in code).
    pub actions: String,
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

impl CaptureView {
    fn t(&self, key: &str) -> &'static str {
        t(self.lang, key)
    }
}

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
