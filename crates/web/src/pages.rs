//! Server-rendered pages: review queue, capture detail (confirm / reject), cases, cameras
//! and the status summary. Chinese by default; `?lang=en` (remembered in a cookie) switches
//! to English. Every value from the store or the config is HTML-escaped.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Extension, Form, Path, Query, RawQuery, State};
use axum::http::header;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;

use super::auth::Auth;
use super::error::WebError;
use super::html::{LANG_COOKIE, Lang, esc, local, t};
use super::review::{
    FixtureForm, REJECT_REASONS, RejectBody, camera_views, do_confirm, do_fixture, do_mark_clean,
    do_reject,
};
use super::state::WebState;
use super::templates::{Body, Card, Choice, Frame, Workbench};
use crate::config::RuleKind;
use crate::store::query::{CaptureFilter, CaseFilter};

pub(crate) fn page(st: &WebState, lang: Lang, auth: &Auth, title: &str, body: &str) -> Response {
    render(
        lang,
        &Body {
            frame: Frame::new(st, lang, auth, title),
            body,
        },
    )
}

/// A page from its template, with the language remembered in a cookie.
pub(crate) fn render(lang: Lang, page: &impl Template) -> Response {
    match page.render() {
        Ok(html) => {
            let remembered = Cookie::build((LANG_COOKIE, lang.code_short()))
                .same_site(SameSite::Strict)
                .path("/")
                .max_age(time::Duration::days(365));
            (CookieJar::new().add(remembered), Html(html)).into_response()
        }
        Err(e) => WebError::internal(format!("rendering a page: {e}")).into_response(),
    }
}

pub async fn stylesheet() -> Response {
    (
        [(header::CONTENT_TYPE, "text/css")],
        include_str!("../static/app.css"),
    )
        .into_response()
}

pub async fn home() -> Redirect {
    Redirect::to("/review")
}

pub(crate) fn thumb(evidence: &Option<serde_json::Value>, file: &str) -> Option<String> {
    let pkg = evidence.as_ref()?.get("package")?.as_str()?;
    Some(format!("/evidence/{pkg}/{file}"))
}

/// The review workbench's filters, remembered per browser: a queue opened without filters
/// gets the ones used last (`?reset=1` forgets them).
const QUEUE_COOKIE: &str = "cw_queue";

/// Captures per workbench page.
const GRID_PAGE: i64 = 24;

/// The review workbench: the queue as a grid of large thumbnails with filters, a total and
/// paging, decided from the keyboard without a page load (`static/workbench.js` calls the
/// JSON API). What another operator holds is marked.
pub async fn review(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    lang: Lang,
    jar: CookieJar,
    RawQuery(query): RawQuery,
) -> Result<Response, WebError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(query.as_deref().unwrap_or(""))
            .map_err(|e| WebError::unprocessable(format!("query: {e}")))?;
    let reset = pairs.iter().any(|(k, _)| k == "reset");
    let param = |name: &str| {
        pairs
            .iter()
            .find(|(k, v)| k == name && !v.is_empty())
            .map(|(_, v)| v.clone())
    };
    // Keyset paging: `after` (or `before`) a capture's cursor; `at` is only the position
    // of the page's first capture, carried along for the "25–48" shown.
    let (after, before) = (param("after"), param("before"));
    let at = param("at")
        .and_then(|v| v.parse::<i64>().ok())
        .unwrap_or(1)
        .max(1);
    let paging = ["reset", "lang", "offset", "limit", "after", "before", "at"];
    let given: Vec<(String, String)> = pairs
        .into_iter()
        .filter(|(k, v)| !paging.contains(&k.as_str()) && !v.is_empty())
        .collect();
    let (filters, remember) = if reset {
        (String::new(), Some(String::new()))
    } else if !given.is_empty() {
        let s = serde_urlencoded::to_string(&given).unwrap_or_default();
        (s.clone(), Some(s))
    } else {
        let saved = jar.get(QUEUE_COOKIE).map(|c| c.value().to_string());
        (saved.unwrap_or_default(), None)
    };
    let mut f: CaptureFilter = serde_urlencoded::from_str(&filters).unwrap_or_default();
    f.limit = Some(GRID_PAGE);
    f.after = after.clone();
    f.before = if after.is_none() { before } else { None };
    let (rows, total) = tokio::try_join!(st.store.list_captures(&f), st.store.count_captures(&f))?;
    // Back at the start (a `before` page that reached the first capture): the first page.
    let at = if f.before.is_some() && rows.len() < GRID_PAGE as usize {
        1
    } else {
        at
    };
    let now = st.now();
    let order = if f.order.as_deref() == Some("oldest") {
        "oldest"
    } else {
        "newest"
    };
    let cards = rows
        .iter()
        .map(|c| Card {
            id: c.id.clone(),
            href: format!("/captures/{}?order={order}", urlencoding_path(&c.id)),
            crop: thumb(&c.evidence, "crop.jpg"),
            context: thumb(&c.evidence, "confirm.jpg"),
            rule: t(lang, &c.rule),
            camera: c.camera.clone(),
            zone: c.zone.clone(),
            time: local(c.confirm_at, st.cases.utc_offset_s),
            score: format!("{:.2}", c.score),
            aggregation: c.aggregation,
            held: c
                .held_by(now)
                .filter(|h| *h != auth.user.name)
                .map(str::to_string),
        })
        .collect::<Vec<_>>();
    let page_at = |cursor: Option<(&str, String)>, at: i64| {
        let mut q = given.clone();
        if let Some((key, c)) = cursor {
            q.push((key.into(), c));
            q.push(("at".into(), at.to_string()));
        }
        format!(
            "/review?{}",
            serde_urlencoded::to_string(&q).unwrap_or_default()
        )
    };
    let shown = cards.len() as i64;
    let prev = (at > 1).then(|| {
        let back = (at - GRID_PAGE).max(1);
        match rows.first() {
            Some(first) if back > 1 => page_at(Some(("before", first.cursor())), back),
            _ => page_at(None, 1),
        }
    });
    let more = at - 1 + shown < total.n || (total.capped && shown == GRID_PAGE);
    let next = (shown == GRID_PAGE && more)
        .then(|| {
            rows.last()
                .map(|l| page_at(Some(("after", l.cursor())), at + shown))
        })
        .flatten();
    let chosen = |v: &Option<String>, x: &str| v.as_deref() == Some(x);
    let mut cameras: Vec<&String> = st.cameras.keys().collect();
    cameras.sort();
    let reasons: Vec<(String, &'static str)> = REJECT_REASONS
        .iter()
        .map(|r| (r.to_string(), t(lang, r)))
        .collect();
    let view = Workbench {
        frame: Frame::new(&st, lang, &auth, t(lang, "review")),
        lang,
        rules: [
            RuleKind::AbandonedVehicle,
            RuleKind::IllegalVendor,
            RuleKind::OverflowingBin,
        ]
        .iter()
        .map(|r| Choice {
            value: r.as_str().into(),
            label: t(lang, r.as_str()).into(),
            chosen: chosen(&f.rule, r.as_str()),
        })
        .collect(),
        cameras: cameras
            .into_iter()
            .map(|c| Choice {
                value: c.clone(),
                label: c.clone(),
                chosen: chosen(&f.camera, c),
            })
            .collect(),
        zone: f.zone.clone().unwrap_or_default(),
        min_score: f.min_score.map(|s| s.to_string()).unwrap_or_default(),
        oldest: order == "oldest",
        total: total.n,
        capped: total.capped,
        first: at,
        last: at - 1 + shown,
        prev,
        next,
        cards,
        reasons_json: serde_json::to_string(&REJECT_REASONS).unwrap_or_default(),
        reasons,
    };
    let page = render(lang, &view);
    Ok(match remember {
        Some(v) => {
            let c = Cookie::build((QUEUE_COOKIE, v))
                .same_site(SameSite::Strict)
                .http_only(true)
                .path("/")
                .max_age(time::Duration::days(365));
            (CookieJar::new().add(c), page).into_response()
        }
        None => page,
    })
}

/// A script embedded in the binary, served fresh on every load.
fn script(body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/javascript; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// The capture view's script (`/static/capture.js`).
pub async fn capture_js() -> Response {
    script(include_str!("../static/capture.js"))
}

/// The zone editor's script (`/static/zones.js`).
pub async fn zones_js() -> Response {
    script(include_str!("../static/zones.js"))
}

/// The workbench's script (`/static/workbench.js`).
pub async fn workbench_js() -> Response {
    script(include_str!("../static/workbench.js"))
}

pub async fn capture(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    lang: Lang,
    Path(id): Path<String>,
) -> Result<Response, WebError> {
    let c = st
        .store
        .capture(&id)
        .await
        .map_err(WebError::internal)?
        .ok_or_else(|| WebError::not_found("no such capture"))?;
    let view = super::review::package_of(&st, &c.evidence);
    let (manifest, tampered) = match view {
        super::review::PackageView::Verified(m) => (Some(*m), None),
        super::review::PackageView::Tampered(tp) => (None, Some(tp)),
        super::review::PackageView::None => (None, None),
    };
    let cam = st.cameras.get(&c.camera);
    let table = &st.cases.table;
    let cat = serde_json::from_value::<crate::config::RuleKind>(serde_json::Value::String(
        c.rule.clone(),
    ))
    .ok()
    .and_then(|r| table.rules.get(&r));
    let clip = thumb(&c.evidence, "clip.mp4")
        .filter(|_| manifest.as_ref().is_some_and(|m| m.clip.is_some()));
    let csrf = esc(auth.csrf.as_deref().unwrap_or(""));
    // A bin zone found clean on the spot: its reference is replaced by the next frame.
    let clean = if c.rule == "overflowing_bin" {
        format!(
            "<form method=\"post\" action=\"/captures/{}/clean\" id=\"clean-form\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button id=\"clean\">{}</button></form>",
            esc(&c.id),
            t(lang, "mark_clean")
        )
    } else {
        String::new()
    };
    let actions = if let Some(tp) = &tampered {
        // Evidence that fails its check is shown for what it is, and cannot become a case.
        tampered_banner(lang, tp)
    } else if c.status == "pending_review" {
        let reasons: String = REJECT_REASONS
            .iter()
            .enumerate()
            .map(|(i, r)| format!("<option value=\"{r}\">{} {}</option>", i + 1, t(lang, r)))
            .collect();
        format!(
            r#"<div class="actions">
<form method="post" action="/captures/{id}/confirm" id="confirm-form"><input type="hidden" name="csrf" value="{csrf}"><button id="confirm">{confirm} (c)</button></form>
<form method="post" action="/captures/{id}/reject" id="reject-form"><input type="hidden" name="csrf" value="{csrf}">
<label>{reason} <select name="reason" id="reason">{reasons}</select></label> <label>{note} <input name="note" id="note" maxlength="2000"></label>
<button id="reject">{reject} (r)</button></form><p class="keys">{keys}</p></div>"#,
            id = esc(&c.id),
            confirm = t(lang, "confirm"),
            reject = t(lang, "reject"),
            reason = t(lang, "reason"),
            note = t(lang, "note"),
            keys = t(lang, "capture_keys"),
        )
    } else {
        format!(
            "<p class=\"done\" id=\"outcome\">{}{}</p>",
            t(lang, &c.status),
            c.case_number
                .as_ref()
                .map(|n| format!(
                    " · {} <a href=\"/cases/{}\"><b id=\"case-number\">{}</b></a>",
                    t(lang, "case_number"),
                    urlencoding_path(n),
                    esc(n)
                ))
                .unwrap_or_default()
        )
    } + &clean;
    let loc = cam.map(|c| &c.location);
    let off = st.cases.utc_offset_s;
    let similar = similar_verdicts(&st, &c, lang).await;
    let timeline = capture_timeline(&st, &c, lang).await;
    let view = super::templates::CaptureView {
        frame: Frame::new(
            &st,
            lang,
            &auth,
            &format!("{} · {}", t(lang, "review"), c.id),
        ),
        lang,
        id: c.id.clone(),
        rule: t(lang, &c.rule),
        camera: c.camera.clone(),
        camera_name: cam.map(|c| c.name.clone()).unwrap_or_default(),
        zone: c.zone.clone(),
        time: local(c.confirm_at, off),
        score: format!("{:.2}", c.score),
        aggregation: c.aggregation,
        photo: thumb(&c.evidence, "confirm.jpg"),
        crop: thumb(&c.evidence, "crop.jpg"),
        before: thumb(&c.evidence, "first_seen.jpg").filter(|_| {
            manifest
                .as_ref()
                .is_none_or(|m| m.files.iter().any(|f| f.name == "first_seen.jpg"))
        }),
        clip,
        actions,
        parts: manifest
            .as_ref()
            .map(|m| m.parts.join(", "))
            .unwrap_or_default(),
        plate: (c.rule == "abandoned_vehicle").then(|| {
            c.plate
                .as_deref()
                .map(|p| super::review::shown_plate(&auth, p))
                .unwrap_or_default()
        }),
        plate_note: plate_note(&c, lang),
        plate_form: c.rule == "abandoned_vehicle" && super::review::sees_plates(&auth),
        csrf: auth.csrf.clone().unwrap_or_default(),
        location: loc
            .map(|l| {
                format!(
                    "{} ({}) {} {}",
                    l.address, l.grid_code, l.street, l.community
                )
            })
            .unwrap_or_default(),
        category: cat
            .map(|k| {
                format!(
                    "{} {} / {} {}",
                    k.major_code, k.major_name, k.minor_code, k.minor_name
                )
            })
            .unwrap_or_default(),
        time_limit: cat.map(|k| k.time_limit.clone()).unwrap_or_default(),
        similar,
        timeline,
        manifest: manifest
            .as_ref()
            .map(|m| serde_json::to_string_pretty(m).unwrap_or_default()),
        reasons_json: serde_json::to_string(&REJECT_REASONS).unwrap_or_default(),
    };
    Ok(render(lang, &view))
}

/// How a capture's plate was read, or who corrected it.
fn plate_note(c: &crate::store::query::CaptureRow, lang: Lang) -> String {
    let Some(d) = &c.plate_detail else {
        return String::new();
    };
    if let Some(by) = d.get("corrected_by").and_then(|v| v.as_str()) {
        return format!("{} {by}", t(lang, "plate_corrected"));
    }
    match (
        d.get("confidence").and_then(|v| v.as_f64()),
        d.get("agree").and_then(|v| v.as_u64()),
        d.get("reads").and_then(|v| v.as_u64()),
    ) {
        (Some(conf), Some(a), Some(n)) => {
            format!("{conf:.2} · {a}/{n} {}", t(lang, "plate_reads"))
        }
        _ => String::new(),
    }
}

#[derive(Deserialize)]
pub struct PlateForm {
    #[allow(dead_code)]
    csrf: Option<String>,
    plate: String,
}

/// `POST /captures/{id}/plate`: an operator's correction of the plate, as on the API.
pub async fn correct_plate(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<String>,
    Form(f): Form<PlateForm>,
) -> Result<Response, WebError> {
    super::review::do_correct_plate(&st, &auth, &id, Some(&f.plate)).await?;
    Ok(Redirect::to(&format!("/captures/{}", urlencoding_path(&id))).into_response())
}

/// The verdicts the memory keeps for the capture's camera, zone and rule, most alike first
/// (cosine similarity of the appearance vectors; newest first without one): at most six.
async fn similar_verdicts(
    st: &WebState,
    c: &crate::store::query::CaptureRow,
    lang: Lang,
) -> Vec<super::templates::Similar> {
    let (Ok(memory), Ok(mine)) = (
        st.store.memory_of(&c.camera, &c.zone, &c.rule).await,
        st.store.capture_embedding(&c.id).await,
    ) else {
        return Vec::new();
    };
    let mut scored: Vec<(Option<f32>, crate::model::verdict::MemoryEntry)> = memory
        .into_iter()
        .filter(|m| m.capture != c.id)
        .map(|m| {
            let sim = mine
                .as_ref()
                .filter(|v| v.len() == m.embedding.len())
                .map(|v| crate::model::embedding::similarity(v, &m.embedding));
            (sim, m)
        })
        .collect();
    scored.sort_by(|a, b| b.0.unwrap_or(-2.0).total_cmp(&a.0.unwrap_or(-2.0)));
    let mut out = Vec::new();
    for (sim, m) in scored.into_iter().take(6) {
        let evidence = st
            .store
            .capture(&m.capture)
            .await
            .ok()
            .flatten()
            .and_then(|r| r.evidence);
        let said = m.said.as_str();
        out.push(super::templates::Similar {
            href: format!("/captures/{}", urlencoding_path(&m.capture)),
            crop: thumb(&evidence, "crop.jpg"),
            said: if said == "confirmed" {
                "confirmed"
            } else {
                "rejected"
            },
            said_word: t(lang, said),
            reason: m.reason.as_deref().map(|r| t(lang, r)),
            similarity: sim
                .map(|s| format!("{:.2} {}", s, t(lang, "alike")))
                .unwrap_or_default(),
            time: local(m.at, st.cases.utc_offset_s),
        });
    }
    out
}

/// A capture's story, in order: first seen, the rule met, recorded, each decision, and its
/// case's events.
async fn capture_timeline(
    st: &WebState,
    c: &crate::store::query::CaptureRow,
    lang: Lang,
) -> Vec<super::templates::Step> {
    let off = st.cases.utc_offset_s;
    let mut steps: Vec<(f64, String)> = vec![
        (c.start_at, t(lang, "first_seen").to_string()),
        (c.confirm_at, t(lang, "rule_met").to_string()),
    ];
    if let Ok(reviews) = st.store.reviews_of(&c.id).await {
        for (who, decision, reason, at) in reviews {
            let word = if decision == "confirm" {
                "confirmed"
            } else {
                "rejected"
            };
            let why = reason
                .map(|r| format!(" ({})", t(lang, &r)))
                .unwrap_or_default();
            steps.push((at, format!("{} {who}{why}", t(lang, word))));
        }
    }
    if let Some(n) = &c.case_number
        && let Ok(events) = st.store.case_events(n).await
    {
        for e in events {
            steps.push((
                e.at,
                format!(
                    "{} {n}: {} ({})",
                    t(lang, "case"),
                    t(lang, &e.status),
                    e.actor
                ),
            ));
        }
    }
    if let Some(h) = c.held_by(st.now()) {
        steps.push((st.now(), format!("{} {h}", t(lang, "held_by"))));
    }
    steps.sort_by(|a, b| a.0.total_cmp(&b.0));
    steps
        .into_iter()
        .map(|(at, what)| super::templates::Step {
            time: local(at, off),
            what,
        })
        .collect()
}

/// The banner of a package that fails its hash check, naming the failing files.
pub(crate) fn tampered_banner(lang: Lang, tp: &crate::model::package::Tampered) -> String {
    format!(
        "<div class=\"tampered\" id=\"tampered\"><b>{}</b>: {} <ul>{}</ul></div>",
        t(lang, "tampered"),
        t(lang, "tampered_files"),
        tp.files
            .iter()
            .map(|f| format!("<li class=\"tampered-file\">{}</li>", esc(f)))
            .collect::<String>()
    )
}

/// After a decision, the next capture of the queue (or the queue when it is empty).
async fn next_in_queue(st: &WebState) -> Redirect {
    match st.store.list_captures(&CaptureFilter::default()).await {
        Ok(rows) if !rows.is_empty() => Redirect::to(&format!("/captures/{}", rows[0].id)),
        _ => Redirect::to("/review"),
    }
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[allow(dead_code)]
    csrf: Option<String>,
}

pub async fn confirm(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<String>,
    Form(_f): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    do_confirm(&st, &auth, &id).await?;
    Ok(next_in_queue(&st).await.into_response())
}

pub async fn reject(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<String>,
    Form(body): Form<RejectBody>,
) -> Result<Response, WebError> {
    do_reject(&st, &auth, &id, &body).await?;
    Ok(next_in_queue(&st).await.into_response())
}

pub async fn cases(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    lang: Lang,
    Query(f): Query<CaseFilter>,
) -> Result<Response, WebError> {
    let (cases, total) = st
        .store
        .list_cases(&f, st.cases.utc_offset_s)
        .await
        .map_err(WebError::internal)?;
    let v = |o: &Option<String>| esc(o.as_deref().unwrap_or(""));
    let mut body = format!(
        r#"<form method="get" action="/cases" class="filters"><label>{rule} <input name="rule" value="{r}"></label>
<label>{camera} <input name="camera" value="{c}"></label><label>{status} <input name="status" value="{s}"></label>
<label>{from} <input type="date" name="from_date" value="{fd}"></label><label>{to} <input type="date" name="to_date" value="{td}"></label>
<button>{filter}</button> <a href="/cases.csv" id="export">{export}</a></form><p>{total}</p><table id="cases"><tr><th>{num}</th><th>{rule}</th><th>{category}</th><th>{camera}</th><th>{time}</th><th>{limit}</th><th>{deadline}</th><th>{status}</th></tr>"#,
        deadline = t(lang, "deadline"),
        rule = t(lang, "rule"),
        camera = t(lang, "camera"),
        status = t(lang, "status"),
        filter = t(lang, "filter"),
        export = t(lang, "export"),
        num = t(lang, "case_number"),
        category = t(lang, "category"),
        time = t(lang, "time"),
        limit = t(lang, "time_limit"),
        r = v(&f.rule),
        c = v(&f.camera),
        s = v(&f.status),
        fd = v(&f.from_date),
        td = v(&f.to_date),
        from = t(lang, "from"),
        to = t(lang, "to"),
    );
    let now = st.now();
    for k in &cases {
        let late = k.overdue(now);
        body.push_str(&format!(
            "<tr class=\"{}\"><td class=\"case-number\"><a href=\"/cases/{}\">{}</a></td><td>{}</td><td>{} {}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"deadline\">{}{}</td><td>{}</td></tr>",
            if late { "overdue" } else { "" },
            urlencoding_path(&k.case_number),
            esc(&k.case_number),
            t(lang, &k.rule),
            esc(&k.minor_code),
            esc(&k.minor_name),
            esc(&k.camera),
            local(k.reported_at, st.cases.utc_offset_s),
            esc(&k.time_limit),
            k.deadline_at
                .map(|d| local(d, st.cases.utc_offset_s))
                .unwrap_or_default(),
            if late {
                format!(" <b class=\"overdue-mark\">{}</b>", t(lang, "overdue"))
            } else {
                String::new()
            },
            t(lang, &k.status),
        ));
    }
    body.push_str("</table>");
    // The next page by keyset, with the same filters: as fast deep in a year of cases as
    // on the first page.
    let limit = f.limit.unwrap_or(50).clamp(1, 500);
    if cases.len() as i64 == limit
        && let Some(last) = cases.last()
    {
        let some = |k: &str, v: &Option<String>| {
            v.as_ref()
                .filter(|v| !v.is_empty())
                .map(|v| (k.to_string(), v.clone()))
        };
        let mut q: Vec<(String, String)> = [
            some("rule", &f.rule),
            some("camera", &f.camera),
            some("status", &f.status),
            some("from_date", &f.from_date),
            some("to_date", &f.to_date),
        ]
        .into_iter()
        .flatten()
        .collect();
        q.push(("limit".into(), limit.to_string()));
        q.push(("after".into(), last.cursor()));
        body.push_str(&format!(
            "<p><a href=\"/cases?{}\" id=\"next-page\">{} →</a></p>",
            esc(&serde_urlencoded::to_string(&q).unwrap_or_default()),
            t(lang, "next")
        ));
    }
    Ok(page(&st, lang, &auth, t(lang, "cases"), &body))
}

pub async fn cameras(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    lang: Lang,
) -> Response {
    let mut body = format!(
        "<table id=\"cameras\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        t(lang, "camera"),
        t(lang, "health"),
        t(lang, "frames"),
        t(lang, "analysed"),
        t(lang, "reused"),
        t(lang, "reconnects"),
        t(lang, "last_error"),
    );
    // Zones an admin drew on a camera's picture, drawn in place of the config's.
    let drawn = st.store.zone_overrides().await.unwrap_or_default();
    let admin = auth.user.role >= crate::store::users::Role::Admin;
    let operator = auth.user.role >= crate::store::users::Role::Operator;
    for c in camera_views(&st) {
        let (state, frames, reconnects, err) = c
            .status
            .as_ref()
            .map(|s| {
                (
                    s.health.shown_state(),
                    s.health.frames,
                    s.health.reconnects,
                    s.health.last_error.clone().unwrap_or_default(),
                )
            })
            .unwrap_or(("-", 0, 0, String::new()));
        // Off view outranks a streaming camera's health: its rules are paused.
        let state = if c.analysis.is_some_and(|a| a.off_view) {
            "off_view"
        } else {
            state
        };
        let (analysed, reused) = c
            .analysis
            .map(|a| {
                (
                    format!("{} ({}/min)", a.inferences, a.analysed_per_min),
                    format!("{} ({}/min)", a.reused, a.reused_per_min),
                )
            })
            .unwrap_or_default();
        let zones: String = c
            .zones
            .iter()
            .map(|z| {
                let zid = z["id"].as_str().unwrap_or("");
                let over = drawn.iter().find(|d| d.camera == c.id && d.zone == zid);
                let pts = match over {
                    Some(d) => d
                        .polygon
                        .iter()
                        .map(|p| format!("{},{}", p[0], p[1]))
                        .collect::<Vec<_>>()
                        .join(" "),
                    None => z["polygon"]
                        .as_array()
                        .map(|ps| {
                            ps.iter()
                                .filter_map(|p| {
                                    Some(format!("{},{}", p[0].as_f64()?, p[1].as_f64()?))
                                })
                                .collect::<Vec<_>>()
                                .join(" ")
                        })
                        .unwrap_or_default(),
                };
                format!(
                    "<polygon points=\"{}\" data-zone=\"{}\" class=\"{}\"><title>{}</title></polygon>",
                    esc(&pts),
                    esc(zid),
                    if over.is_some() { "drawn" } else { "config" },
                    esc(zid)
                )
            })
            .collect::<String>()
            // The camera's fixtures, and those it proposes, as boxes on its picture.
            + &c
                .fixtures
                .iter()
                .map(|f| (f, "fixture"))
                .chain(c.proposed_fixtures.iter().map(|f| (f, "proposed")))
                .scan((0usize, 0usize), |n, (f, class)| {
                    // Each box's index in its own list: what the form's accept/dismiss name.
                    let i = if class == "fixture" { &mut n.0 } else { &mut n.1 };
                    *i += 1;
                    Some((f, class, *i - 1))
                })
                .map(|(f, class, i)| {
                    format!(
                        "<rect class=\"{class}\" data-index=\"{i}\" x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\"><title>{}</title></rect>",
                        f.bbox[0],
                        f.bbox[1],
                        (f.bbox[2] - f.bbox[0]).max(0.0),
                        (f.bbox[3] - f.bbox[1]).max(0.0),
                        esc(&f.label)
                    )
                })
                .collect::<String>();
        let fixture_tools = if operator {
            format!(
                " <input class=\"fixture-label\" placeholder=\"{label}\" maxlength=\"40\" size=\"8\" aria-label=\"{label}\"> <button type=\"button\" class=\"fixture-draw\">{draw}</button>",
                label = t(lang, "label"),
                draw = t(lang, "draw_fixture"),
            )
        } else {
            String::new()
        };
        let editor = if admin && !c.zones.is_empty() {
            let options: String = c
                .zones
                .iter()
                .filter_map(|z| z["id"].as_str())
                .map(|z| format!("<option>{}</option>", esc(z)))
                .collect();
            format!(
                "<div class=\"zone-editor\" data-camera=\"{id}\" data-saved=\"{saved}\" data-reset=\"{done}\" data-drawing=\"{drawing}\" data-drawing-fixture=\"{drawing_fixture}\" data-accept=\"{accept}\" data-dismiss=\"{dismiss}\"><select class=\"zone-pick\" aria-label=\"{zone}\">{options}</select> <button type=\"button\" class=\"zone-draw\">{draw}</button> <button type=\"button\" class=\"zone-save\" disabled>{save}</button> <button type=\"button\" class=\"zone-reset\">{reset}</button>{fixture_tools} <span class=\"zone-status\" aria-live=\"polite\"></span></div>",
                id = esc(&c.id),
                zone = t(lang, "zone"),
                draw = t(lang, "draw_zone"),
                save = t(lang, "save"),
                reset = t(lang, "reset_zone"),
                saved = t(lang, "zone_saved"),
                done = t(lang, "zone_reset_done"),
                drawing = t(lang, "zone_drawing"),
                drawing_fixture = t(lang, "fixture_drawing"),
                accept = t(lang, "accept"),
                dismiss = t(lang, "dismiss"),
            )
        } else if operator {
            format!(
                "<div class=\"zone-editor\" data-camera=\"{id}\" data-drawing-fixture=\"{drawing}\" data-accept=\"{accept}\" data-dismiss=\"{dismiss}\">{fixture_tools} <span class=\"zone-status\" aria-live=\"polite\"></span></div>",
                id = esc(&c.id),
                drawing = t(lang, "fixture_drawing"),
                accept = t(lang, "accept"),
                dismiss = t(lang, "dismiss"),
            )
        } else {
            String::new()
        };
        let live = if st.latest.lock().contains_key(&c.id) {
            format!(
                "<div class=\"live\" data-camera=\"{id}\"><img src=\"/cameras/{id}/latest.jpg\" alt=\"\"><svg viewBox=\"0 0 1 1\" preserveAspectRatio=\"none\">{zones}</svg></div>{editor}",
                id = esc(&c.id)
            )
        } else {
            String::new()
        };
        body.push_str(&format!(
            "<tr><td>{live}{} <small>{}</small><br><small>{}</small></td><td class=\"state {state}\">{state}</td><td>{frames}</td><td>{analysed}</td><td>{reused}</td><td>{reconnects}</td><td>{}</td></tr>",
            esc(&c.id),
            esc(&c.name),
            esc(&c.url),
            esc(&err),
        ));
    }
    body.push_str("</table>");
    // The fleet: every camera of every worker, as the workers last wrote them.
    if let Ok(rows) = super::fleet::fleet_rows(&st).await
        && !rows.is_empty()
    {
        body.push_str(&format!(
            "<h2>{}</h2><table id=\"fleet\"><tr><th>{}</th><th>worker</th><th>lease</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>report</th></tr>",
            t(lang, "fleet"),
            t(lang, "camera"),
            t(lang, "health"),
            t(lang, "frames"),
            t(lang, "analysed"),
            t(lang, "reused"),
        ));
        for r in rows {
            let s = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
            let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
            let state = s(&r["health"]["state"]);
            let lease = match r["lease"]["worker"].as_str() {
                Some(w) => format!(
                    "{w} ({:.0} s)",
                    r["lease"]["expires_in_s"].as_f64().unwrap_or(0.0)
                ),
                None => "-".into(),
            };
            body.push_str(&format!(
                "<tr data-camera=\"{cam}\"><td>{cam}</td><td class=\"worker\">{worker}</td><td class=\"lease\">{lease}</td><td class=\"state {state}\">{state}</td><td>{frames}</td><td>{inf}</td><td>{reused}</td><td>{age:.0} s ago</td></tr>",
                cam = esc(&s(&r["camera"])),
                worker = esc(&s(&r["worker"])),
                lease = esc(&lease),
                state = esc(&state),
                frames = n(&r["health"]["frames"]),
                inf = n(&r["analysis"]["inferences"]),
                reused = n(&r["analysis"]["reused"]),
                age = r["report_age_s"].as_f64().unwrap_or(0.0),
            ));
        }
        body.push_str("</table>");
    }
    // Each camera's fixtures, with a form to remove one or add one by its box.
    let csrf = esc(auth.csrf.as_deref().unwrap_or(""));
    body.push_str(&format!("<h2>{}</h2>", t(lang, "fixtures")));
    for c in camera_views(&st) {
        let id = esc(&c.id);
        body.push_str(&format!(
            "<h3>{id}</h3><table class=\"fixtures\" id=\"fixtures-{id}\"><tr><th>{}</th><th>box</th><th></th></tr>",
            t(lang, "label")
        ));
        for (i, f) in c.fixtures.iter().enumerate() {
            body.push_str(&fixture_row(
                f,
                &id,
                &csrf,
                i,
                &[("remove", t(lang, "remove"))],
            ));
        }
        body.push_str("</table>");
        if !c.proposed_fixtures.is_empty() {
            body.push_str(&format!(
                "<h4>{}</h4><table class=\"proposed\" id=\"proposed-{id}\"><tr><th>{}</th><th>box</th><th></th></tr>",
                t(lang, "proposed_fixtures"),
                t(lang, "label")
            ));
            for (i, f) in c.proposed_fixtures.iter().enumerate() {
                let actions = [
                    ("accept", t(lang, "accept")),
                    ("dismiss", t(lang, "dismiss")),
                ];
                body.push_str(&fixture_row(f, &id, &csrf, i, &actions));
            }
            body.push_str("</table>");
        }
        body.push_str(&format!(
            "<form method=\"post\" action=\"/cameras/{id}/fixtures\" class=\"add-fixture\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input name=\"label\" placeholder=\"bench\" maxlength=\"40\"> x1 <input name=\"x1\" size=\"4\"> y1 <input name=\"y1\" size=\"4\"> x2 <input name=\"x2\" size=\"4\"> y2 <input name=\"y2\" size=\"4\"> <button>{}</button></form>",
            t(lang, "add_fixture")
        ));
    }
    if operator {
        body.push_str("<script src=\"/static/zones.js\" defer></script>");
    }
    page(&st, lang, &auth, t(lang, "cameras"), &body)
}

/// One fixture's row on the cameras page: its label and source, its box, and one small form
/// per action, whose field (`remove`, `accept`, `dismiss`) names the fixture's index `i`.
fn fixture_row(
    f: &crate::model::fixture::Fixture,
    id: &str,
    csrf: &str,
    i: usize,
    actions: &[(&str, &str)],
) -> String {
    let forms: Vec<String> = actions
        .iter()
        .map(|(field, label)| {
            format!(
                "<form method=\"post\" action=\"/cameras/{id}/fixtures\" class=\"inline\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"{field}\" value=\"{i}\"><button>{label}</button></form>"
            )
        })
        .collect();
    format!(
        "<tr><td>{} <small>{:?}</small></td><td>{:.2}, {:.2}, {:.2}, {:.2}</td><td>{}</td></tr>",
        esc(&f.label),
        f.source,
        f.bbox[0],
        f.bbox[1],
        f.bbox[2],
        f.bbox[3],
        forms.join(" ")
    )
}

/// Adds or removes one of a camera's fixtures; back to the cameras page.
pub async fn fixtures(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<String>,
    Form(f): Form<FixtureForm>,
) -> Result<Response, WebError> {
    do_fixture(&st, &auth, &id, &f).await?;
    Ok(Redirect::to("/cameras").into_response())
}

/// Marks a bin capture's zone clean now; back to the capture.
pub async fn mark_clean(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<String>,
    Form(_f): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    do_mark_clean(&st, &auth, &id).await?;
    Ok(Redirect::to(&format!("/captures/{}", urlencoding_path(&id))).into_response())
}

/// A capture id as a path segment (ids are hex; anything else is dropped).
pub(crate) fn urlencoding_path(id: &str) -> String {
    id.chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

pub async fn summary(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    lang: Lang,
) -> Result<Response, WebError> {
    let rules = st.store.rule_summary().await.map_err(WebError::internal)?;
    let mut body = format!(
        "<table id=\"summary\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        t(lang, "rule"),
        t(lang, "captures"),
        t(lang, "confirmed"),
        t(lang, "rejected"),
        t(lang, "pending"),
        t(lang, "rate"),
    );
    for r in rules {
        let decided = r.confirmed + r.rejected;
        let rate = if decided > 0 {
            format!("{:.0}%", 100.0 * r.confirmed as f64 / decided as f64)
        } else {
            "-".into()
        };
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{rate}</td></tr>",
            t(lang, &r.rule),
            r.captures,
            r.confirmed,
            r.rejected,
            r.pending
        ));
    }
    body.push_str("</table>");
    let recent = st
        .store
        .recent(super::summary::WINDOW_DAYS)
        .await
        .map_err(WebError::internal)?;
    let sum = super::summary::summarise(&recent, st.cases.utc_offset_s);
    body.push_str(&format!(
        "<h2>{}</h2><table id=\"rates\"><tr><th>{} / {}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        t(lang, "last_30_days"),
        t(lang, "rule"),
        t(lang, "camera"),
        t(lang, "captures"),
        t(lang, "confirmed"),
        t(lang, "rejected"),
        t(lang, "rate"),
    ));
    for (k, r) in &sum.per_rule_camera {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(k),
            r.captures,
            r.confirmed,
            r.rejected,
            r.confirmation_rate
                .map(|x| format!("{:.0}%", 100.0 * x))
                .unwrap_or_else(|| "-".into())
        ));
    }
    body.push_str("</table>");
    body.push_str(&summary_charts(lang, &sum));
    // The cameras' capacity and health over the last day, as sampled every few minutes.
    let samples = st
        .store
        .health_samples(st.now() - 86_400.0)
        .await
        .unwrap_or_default();
    let day = super::summary::last_day(&samples, st.cases.utc_offset_s);
    body.push_str(&format!("<h2>{}</h2>", t(lang, "capacity_last_day")));
    if day.hours.is_empty() {
        body.push_str(&format!(
            "<p class=\"note\" id=\"no-samples\">{}</p>",
            t(lang, "no_samples")
        ));
    } else {
        body.push_str(&super::charts::stacked_bars(
            "chart-health",
            t(lang, "cameras_by_state"),
            &day.hours,
            &[
                (t(lang, "streaming").to_string(), day.streaming.clone()),
                (t(lang, "unhealthy").to_string(), day.unhealthy.clone()),
                (t(lang, "off_view").to_string(), day.off_view.clone()),
            ],
        ));
        let reused: Vec<f64> = day
            .analysed_per_min
            .iter()
            .zip(&day.inferences_per_min)
            .map(|(a, i)| (a - i).max(0.0))
            .collect();
        body.push_str(&super::charts::stacked_bars(
            "chart-capacity",
            t(lang, "frames_per_min"),
            &day.hours,
            &[
                (
                    t(lang, "inferences").to_string(),
                    day.inferences_per_min.clone(),
                ),
                (t(lang, "reused").to_string(), reused),
            ],
        ));
    }
    // What the verdict history proposes per camera (applied on the learning page).
    if let Ok(proposals) = super::review::proposals(&st).await {
        body.push_str(&format!(
            "<h2>{}</h2><p id=\"summary-proposals\"><a href=\"/learning#proposals\">{} {}</a></p>",
            t(lang, "proposals"),
            proposals.len(),
            t(lang, "proposals"),
        ));
    }
    Ok(page(&st, lang, &auth, t(lang, "summary"), &body))
}

/// The summary's charts (inline SVG): captures per day by rule, the confirmation rate by
/// camera and rule, the time from capture to decision and to filing, and the rejection
/// reasons; with a note when recorded footage is among the captures.
fn summary_charts(lang: Lang, sum: &super::summary::Summary) -> String {
    use super::charts::{bars, stacked_bars};
    let mut body = String::new();
    if sum.replayed > 0 {
        body.push_str(&format!(
            "<p class=\"note\" id=\"replayed\">{} {}</p>",
            sum.replayed,
            t(lang, "replayed_note")
        ));
    }
    let days: Vec<String> = sum.per_day.keys().cloned().collect();
    let rules: std::collections::BTreeSet<&String> =
        sum.per_day.values().flat_map(|m| m.keys()).collect();
    let series: Vec<(String, Vec<f64>)> = rules
        .into_iter()
        .map(|r| {
            (
                t(lang, r).to_string(),
                days.iter()
                    .map(|d| sum.per_day[d].get(r).copied().unwrap_or(0) as f64)
                    .collect(),
            )
        })
        .collect();
    body.push_str(&format!("<h2>{}</h2>", t(lang, "per_day")));
    body.push_str(&stacked_bars(
        "chart-per-day",
        t(lang, "per_day"),
        &days,
        &series,
    ));
    let rates: Vec<(String, f64, String)> = sum
        .per_rule_camera
        .iter()
        .filter_map(|(k, r)| {
            let rate = r.confirmation_rate?;
            let (rule, camera) = k.split_once(" / ").unwrap_or((k, ""));
            Some((
                format!("{} / {camera}", t(lang, rule)),
                rate,
                format!(
                    "{:.0}% ({}/{})",
                    100.0 * rate,
                    r.confirmed,
                    r.confirmed + r.rejected
                ),
            ))
        })
        .collect();
    body.push_str(&format!("<h2>{}</h2>", t(lang, "rate")));
    body.push_str(&bars("chart-rates", t(lang, "rate"), &rates, 1.0));
    for (id, key, lat) in [
        (
            "chart-decision",
            "decision_latency",
            &sum.decision_latency_s,
        ),
        ("chart-filing", "filing_latency", &sum.filing_latency_s),
    ] {
        let rows: Vec<(String, f64, String)> = lat
            .iter()
            .map(|(rule, (p50, p90))| {
                (
                    t(lang, rule).to_string(),
                    *p50,
                    format!("p50 {} · p90 {}", duration(*p50), duration(*p90)),
                )
            })
            .collect();
        let max = lat.values().map(|(p50, _)| *p50).fold(0.0, f64::max);
        body.push_str(&format!("<h2>{}</h2>", t(lang, key)));
        body.push_str(&bars(id, t(lang, key), &rows, max));
    }
    let reasons: Vec<(String, f64, String)> = sum
        .rejection_reasons
        .iter()
        .map(|(r, n)| (t(lang, r).to_string(), *n as f64, n.to_string()))
        .collect();
    let max = reasons.iter().map(|r| r.1).fold(0.0, f64::max);
    body.push_str(&format!("<h2>{}</h2>", t(lang, "rejection_reasons")));
    body.push_str(&bars(
        "chart-reasons",
        t(lang, "rejection_reasons"),
        &reasons,
        max,
    ));
    body
}

/// Seconds as people read them: 45 s, 12 min, 3.5 h.
pub(crate) fn duration(s: f64) -> String {
    if !s.is_finite() {
        // Past the last latency bin (three days).
        "> 72 h".into()
    } else if s < 90.0 {
        format!("{s:.0} s")
    } else if s < 5400.0 {
        format!("{:.0} min", s / 60.0)
    } else {
        format!("{:.1} h", s / 3600.0)
    }
}

/// What was learned from the operators' verdicts: learned suppressions (undo sends one for
/// review), the remembered verdicts (forget one), calibration proposals (an admin applies
/// one) and the overrides applied.
pub async fn learning(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    lang: Lang,
) -> Result<Response, WebError> {
    let v = super::review::learning_view(&st).await?;
    let csrf = esc(auth.csrf.as_deref().unwrap_or_default());
    let off = st.cases.utc_offset_s;
    let mut body = format!(
        "<h2>{}</h2><table id=\"learned\"><tr><th></th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr>",
        t(lang, "learned_suppressions"),
        t(lang, "rule"),
        t(lang, "camera"),
        t(lang, "time"),
        t(lang, "resembles"),
        t(lang, "similarity"),
    );
    if v.suppressions.is_empty() {
        body.push_str(&format!(
            "<tr><td colspan=\"7\">{}</td></tr>",
            t(lang, "none")
        ));
    }
    for c in &v.suppressions {
        let img = thumb(&c.evidence, "crop.jpg")
            .map(|u| format!("<img src=\"{}\" alt=\"\">", esc(&u)))
            .unwrap_or_default();
        let like = c.resembles.as_deref().unwrap_or_default();
        body.push_str(&format!(
            "<tr class=\"learned\" data-id=\"{id}\"><td><a href=\"/captures/{id}\">{img}</a></td><td>{rule}</td><td>{cam}</td><td>{time}</td>\
             <td><a class=\"resembles\" href=\"/captures/{like}\">{like}</a></td><td>{sim:.3}</td>\
             <td><form method=\"post\" action=\"/learning/{id}/undo\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button class=\"undo\">{undo}</button></form></td></tr>",
            id = esc(&c.id),
            rule = t(lang, &c.rule),
            cam = esc(&c.camera),
            time = local(c.confirm_at, off),
            like = esc(like),
            sim = c.similarity.unwrap_or_default(),
            undo = t(lang, "undo"),
        ));
    }
    body.push_str(&format!(
        "</table><h2>{}</h2><table id=\"memory\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr>",
        t(lang, "memory"),
        t(lang, "camera"),
        t(lang, "zone"),
        t(lang, "rule"),
        t(lang, "verdict"),
        t(lang, "reason"),
        t(lang, "time"),
        t(lang, "linked"),
    ));
    for m in &v.memory {
        body.push_str(&format!(
            "<tr class=\"remembered\" data-id=\"{id}\"><td><a href=\"/captures/{id}\">{cam}</a></td><td>{zone}</td><td>{rule}</td><td>{said}</td><td>{reason}</td><td>{time}</td><td>{n}</td>\
             <td><form method=\"post\" action=\"/learning/{id}/forget\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button class=\"forget\">{forget}</button></form></td></tr>",
            id = esc(&m.capture_id),
            cam = esc(&m.camera),
            zone = esc(&m.zone),
            rule = t(lang, &m.rule),
            said = t(lang, &m.said),
            reason = m.reason.as_deref().map(|r| t(lang, r)).unwrap_or(""),
            time = local(m.at, off),
            n = m.suppressions,
            forget = t(lang, "forget"),
        ));
    }
    body.push_str(&format!(
        "</table><h2>{}</h2><table id=\"proposals\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr>",
        t(lang, "proposals"),
        t(lang, "camera"),
        t(lang, "rule"),
        t(lang, "setting"),
        t(lang, "value"),
        t(lang, "history"),
    ));
    if v.proposals.is_empty() {
        body.push_str(&format!(
            "<tr><td colspan=\"6\">{}</td></tr>",
            t(lang, "none")
        ));
    }
    for p in &v.proposals {
        let history = match lang {
            Lang::Zh => format!(
                "保留全部 {} 条确认，排除 {} 条驳回中的 {} 条",
                p.confirmed, p.rejected, p.rejected_dropped
            ),
            Lang::En => format!(
                "keeps all {} confirmed, drops {} of {} rejected",
                p.confirmed, p.rejected_dropped, p.rejected
            ),
        };
        let apply = if auth.user.role == crate::store::users::Role::Admin {
            format!(
                "<form method=\"post\" action=\"/learning/apply\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
                 <input type=\"hidden\" name=\"camera\" value=\"{cam}\"><input type=\"hidden\" name=\"rule\" value=\"{rule}\"><button class=\"apply\">{label}</button></form>",
                cam = esc(&p.camera),
                rule = p.rule.as_str(),
                label = t(lang, "apply"),
            )
        } else {
            String::new()
        };
        body.push_str(&format!(
            "<tr class=\"proposal\"><td>{}</td><td>{}</td><td>{}</td><td>{:.2}</td><td>{}</td><td>{apply}</td></tr>",
            esc(&p.camera),
            t(lang, p.rule.as_str()),
            p.setting,
            p.value,
            esc(&history),
        ));
    }
    body.push_str(&format!(
        "</table><h2>{}</h2><table id=\"overrides\">",
        t(lang, "overrides")
    ));
    for o in &v.overrides {
        body.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{} = {:.2}</td><td>{}</td><td>{}</td></tr>",
            esc(&o.camera),
            t(lang, &o.rule),
            esc(&o.setting),
            o.value,
            esc(&o.applied_by),
            local(o.applied_at, off),
        ));
    }
    body.push_str("</table>");
    Ok(page(&st, lang, &auth, t(lang, "learning"), &body))
}

pub async fn undo_learned(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<String>,
    Form(_f): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    super::review::do_undo(&st, &auth, &id).await?;
    Ok(Redirect::to("/learning").into_response())
}

pub async fn forget_memory(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<String>,
    Form(_f): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    super::review::do_forget(&st, &auth, &id).await?;
    Ok(Redirect::to("/learning").into_response())
}

pub async fn apply_calibration(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Form(f): Form<super::review::ApplyForm>,
) -> Result<Response, WebError> {
    super::review::do_apply(&st, &auth, &f).await?;
    Ok(Redirect::to("/learning").into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_is_escaped() {
        assert_eq!(
            esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }
}
