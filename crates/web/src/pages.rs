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
use super::html::{LANG_COOKIE, Lang, local, t};
use super::review::{
    FixtureForm, REJECT_REASONS, RejectBody, camera_views, do_confirm, do_fixture, do_mark_clean,
    do_reject, do_take_view,
};
use super::state::WebState;
use super::templates::{Card, Choice, Frame, Workbench};
use crate::config::RuleKind;
use crate::store::query::{CaptureFilter, CaseFilter};

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
        path: urlencoding_path(&c.id),
        tampered: tampered.as_ref().map(|tp| tp.files.clone()),
        pending: c.status == "pending_review",
        reasons: REJECT_REASONS
            .iter()
            .map(|r| (r.to_string(), t(lang, r)))
            .collect(),
        outcome: t(lang, &c.status),
        case: c
            .case_number
            .as_ref()
            .map(|n| (format!("/cases/{}", urlencoding_path(n)), n.clone())),
        // A bin zone found clean on the spot: its reference is replaced by the next frame.
        clean: c.rule == "overflowing_bin",
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
    crate::store::query::check_offset(f.offset).map_err(WebError::unprocessable)?;
    let (cases, total) = st
        .store
        .list_cases(&f, st.cases.utc_offset_s)
        .await
        .map_err(WebError::internal)?;
    let now = st.now();
    let off = st.cases.utc_offset_s;
    let rows = cases
        .iter()
        .map(|k| crate::templates::CaseLine {
            href: format!("/cases/{}", urlencoding_path(&k.case_number)),
            number: k.case_number.clone(),
            rule: t(lang, &k.rule),
            category: format!("{} {}", k.minor_code, k.minor_name),
            camera: k.camera.clone(),
            reported: local(k.reported_at, off),
            time_limit: k.time_limit.clone(),
            deadline: k.deadline_at.map(|d| local(d, off)).unwrap_or_default(),
            overdue: k.overdue(now),
            status: t(lang, &k.status),
        })
        .collect();
    // The next page by keyset, with the same filters: as fast deep in a year of cases as
    // on the first page.
    let limit = f.limit.unwrap_or(50).clamp(1, 500);
    let some = |k: &str, v: &Option<String>| {
        v.as_ref()
            .filter(|v| !v.is_empty())
            .map(|v| (k.to_string(), v.clone()))
    };
    let next = cases
        .last()
        .filter(|_| cases.len() as i64 == limit)
        .map(|last| {
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
            format!(
                "/cases?{}",
                serde_urlencoded::to_string(&q).unwrap_or_default()
            )
        });
    let text = |o: &Option<String>| o.clone().unwrap_or_default();
    Ok(render(
        lang,
        &crate::templates::CasesList {
            frame: Frame::new(&st, lang, &auth, t(lang, "cases")),
            lang,
            rule: text(&f.rule),
            camera: text(&f.camera),
            status: text(&f.status),
            from_date: text(&f.from_date),
            to_date: text(&f.to_date),
            total,
            rows,
            next,
        },
    ))
}

pub async fn cameras(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    lang: Lang,
) -> Response {
    use crate::templates::{BoxShape, CameraLine, CamerasPage, FixtureLine, FleetLine, ZoneShape};
    // Zones an admin drew on a camera's picture, drawn in place of the config's.
    let drawn = st.store.zone_overrides().await.unwrap_or_default();
    let admin = auth.user.role >= crate::store::users::Role::Admin;
    let operator = auth.user.role >= crate::store::users::Role::Operator;
    let fixture_lines = |list: &[crate::model::fixture::Fixture]| -> Vec<FixtureLine> {
        list.iter()
            .enumerate()
            .map(|(index, f)| FixtureLine {
                index,
                label: f.label.clone(),
                source: t(
                    lang,
                    match f.source {
                        crate::model::fixture::FixtureSource::Learned => "fixture_learned",
                        crate::model::fixture::FixtureSource::Stayed => "fixture_stayed",
                        crate::model::fixture::FixtureSource::Operator => "fixture_operator",
                    },
                )
                .to_string(),
                bbox: format!(
                    "{:.2}, {:.2}, {:.2}, {:.2}",
                    f.bbox[0], f.bbox[1], f.bbox[2], f.bbox[3]
                ),
            })
            .collect()
    };
    let mut cameras = Vec::new();
    for c in camera_views(&st) {
        let (state, frames, reconnects, error) = c
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
        let zones = c
            .zones
            .iter()
            .map(|z| {
                let zid = z["id"].as_str().unwrap_or("");
                let over = drawn.iter().find(|d| d.camera == c.id && d.zone == zid);
                let points = match over {
                    Some(d) => svg_points(&d.polygon),
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
                ZoneShape {
                    points,
                    zone: zid.to_string(),
                    drawn: over.is_some(),
                    mask: z["kind"] == "mask",
                }
            })
            .collect::<Vec<_>>();
        // Masks an admin drew beyond the config's zones.
        let drawn_masks: Vec<ZoneShape> = drawn
            .iter()
            .filter(|d| d.camera == c.id && crate::model::zones::is_drawn_mask(&d.zone))
            .filter(|d| !zones.iter().any(|z| z.zone == d.zone))
            .map(|d| ZoneShape {
                points: svg_points(&d.polygon),
                zone: d.zone.clone(),
                drawn: true,
                mask: true,
            })
            .collect();
        let mut zone_ids: Vec<String> = c
            .zones
            .iter()
            .filter_map(|z| z["id"].as_str().map(String::from))
            .collect();
        zone_ids.extend(drawn_masks.iter().map(|z| z.zone.clone()));
        let mut zones = zones;
        zones.extend(drawn_masks);
        // The camera's fixtures, and those it proposes, as boxes on its picture.
        let shape = |class: &'static str| {
            move |(index, f): (usize, &crate::model::fixture::Fixture)| BoxShape {
                class,
                index,
                x: f.bbox[0],
                y: f.bbox[1],
                w: (f.bbox[2] - f.bbox[0]).max(0.0),
                h: (f.bbox[3] - f.bbox[1]).max(0.0),
                label: f.label.clone(),
            }
        };
        let boxes = c
            .fixtures
            .iter()
            .enumerate()
            .map(shape("fixture"))
            .chain(
                c.proposed_fixtures
                    .iter()
                    .enumerate()
                    .map(shape("proposed")),
            )
            .collect();
        cameras.push(CameraLine {
            path: urlencoding_path(&c.id),
            live: st.latest.lock().contains_key(&c.id),
            zone_ids,
            fixtures: fixture_lines(&c.fixtures),
            proposed: fixture_lines(&c.proposed_fixtures),
            id: c.id,
            name: c.name,
            url: c.url,
            state: state.to_string(),
            frames,
            analysed,
            reused,
            reconnects,
            error,
            zones,
            boxes,
        });
    }
    // The fleet: every camera of every worker, as the workers last wrote them.
    let fleet = super::fleet::fleet_rows(&st)
        .await
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            let s = |v: &serde_json::Value| v.as_str().unwrap_or("-").to_string();
            let n = |v: &serde_json::Value| v.as_u64().unwrap_or(0);
            FleetLine {
                camera: s(&r["camera"]),
                worker: s(&r["worker"]),
                lease: match r["lease"]["worker"].as_str() {
                    Some(w) => format!(
                        "{w} ({:.0} s)",
                        r["lease"]["expires_in_s"].as_f64().unwrap_or(0.0)
                    ),
                    None => "-".into(),
                },
                state: s(&r["health"]["state"]),
                frames: n(&r["health"]["frames"]),
                inferences: n(&r["analysis"]["inferences"]),
                reused: n(&r["analysis"]["reused"]),
                age: format!("{:.0}", r["report_age_s"].as_f64().unwrap_or(0.0)),
            }
        })
        .collect();
    render(
        lang,
        &CamerasPage {
            frame: Frame::new(&st, lang, &auth, t(lang, "cameras")),
            lang,
            admin,
            operator,
            csrf: auth.csrf.clone().unwrap_or_default(),
            cameras,
            fleet,
        },
    )
}

/// One fixture's row on the cameras page: its label and source, its box, and one small form
/// per action, whose field (`remove`, `accept`, `dismiss`) names the fixture's index `i`.
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

/// Takes the camera's view now as its reference view; back to the cameras page.
pub async fn take_view(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<String>,
    Form(_f): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    do_take_view(&st, &auth, &id).await?;
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
/// A polygon as an SVG `points` attribute: "x,y x,y …".
fn svg_points(polygon: &[[f32; 2]]) -> String {
    polygon
        .iter()
        .map(|p| format!("{},{}", p[0], p[1]))
        .collect::<Vec<_>>()
        .join(" ")
}

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
    use crate::templates::{SummaryPage, SummaryRow};
    let percent = |rate: Option<f64>| {
        rate.map(|x| format!("{:.0}%", 100.0 * x))
            .unwrap_or_else(|| "-".into())
    };
    let rules = st
        .store
        .rule_summary()
        .await
        .map_err(WebError::internal)?
        .into_iter()
        .map(|r| {
            let decided = r.confirmed + r.rejected;
            SummaryRow {
                label: t(lang, &r.rule).to_string(),
                captures: r.captures,
                confirmed: r.confirmed,
                rejected: r.rejected,
                pending: r.pending,
                rate: percent((decided > 0).then(|| r.confirmed as f64 / decided as f64)),
            }
        })
        .collect();
    let recent = st
        .store
        .recent(super::summary::WINDOW_DAYS)
        .await
        .map_err(WebError::internal)?;
    let sum = super::summary::summarise(&recent, st.cases.utc_offset_s);
    let recent = sum
        .per_rule_camera
        .iter()
        .map(|(k, r)| SummaryRow {
            label: k.clone(),
            captures: r.captures as i64,
            confirmed: r.confirmed as i64,
            rejected: r.rejected as i64,
            pending: 0,
            rate: percent(r.confirmation_rate),
        })
        .collect();
    // The cameras' capacity and health over the last day, as sampled every few minutes.
    let samples = st
        .store
        .health_samples(st.now() - 86_400.0)
        .await
        .unwrap_or_default();
    let day = super::summary::last_day(&samples, st.cases.utc_offset_s);
    let mut day_charts = Vec::new();
    if !day.hours.is_empty() {
        day_charts.push(super::charts::stacked_bars(
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
        day_charts.push(super::charts::stacked_bars(
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
    let proposals = super::review::proposals(&st).await.ok().map(|p| p.len());
    Ok(render(
        lang,
        &SummaryPage {
            frame: Frame::new(&st, lang, &auth, t(lang, "summary")),
            lang,
            rules,
            recent,
            replayed: sum.replayed,
            charts: summary_charts(lang, &sum),
            day_charts,
            proposals,
        },
    ))
}

/// The summary's charts (inline SVG): captures per day by rule, the confirmation rate by
/// camera and rule, the time from capture to decision and to filing, and the rejection
/// reasons; with a note when recorded footage is among the captures.
fn summary_charts(lang: Lang, sum: &super::summary::Summary) -> Vec<crate::templates::Chart> {
    use super::charts::{bars, stacked_bars};
    use crate::templates::Chart;
    let mut charts = Vec::new();
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
    charts.push(Chart {
        heading: t(lang, "per_day"),
        svg: stacked_bars("chart-per-day", t(lang, "per_day"), &days, &series),
    });
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
    charts.push(Chart {
        heading: t(lang, "rate"),
        svg: bars("chart-rates", t(lang, "rate"), &rates, 1.0),
    });
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
        charts.push(Chart {
            heading: t(lang, key),
            svg: bars(id, t(lang, key), &rows, max),
        });
    }
    let reasons: Vec<(String, f64, String)> = sum
        .rejection_reasons
        .iter()
        .map(|(r, n)| (t(lang, r).to_string(), *n as f64, n.to_string()))
        .collect();
    let max = reasons.iter().map(|r| r.1).fold(0.0, f64::max);
    charts.push(Chart {
        heading: t(lang, "rejection_reasons"),
        svg: bars("chart-reasons", t(lang, "rejection_reasons"), &reasons, max),
    });
    charts
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
    use crate::templates::{LearnedLine, LearningPage, MemoryLine, OverrideLine, ProposalLine};
    let v = super::review::learning_view(&st).await?;
    let off = st.cases.utc_offset_s;
    let suppressions = v
        .suppressions
        .iter()
        .map(|c| {
            let like = c.resembles.clone().unwrap_or_default();
            LearnedLine {
                path: urlencoding_path(&c.id),
                id: c.id.clone(),
                crop: thumb(&c.evidence, "crop.jpg"),
                rule: t(lang, &c.rule),
                camera: c.camera.clone(),
                time: local(c.confirm_at, off),
                like_path: urlencoding_path(&like),
                like,
                similarity: format!("{:.3}", c.similarity.unwrap_or_default()),
            }
        })
        .collect();
    let memory = v
        .memory
        .iter()
        .map(|m| MemoryLine {
            path: urlencoding_path(&m.capture_id),
            id: m.capture_id.clone(),
            camera: m.camera.clone(),
            zone: m.zone.clone(),
            rule: t(lang, &m.rule),
            said: t(lang, &m.said),
            reason: m.reason.as_deref().map(|r| t(lang, r)).unwrap_or(""),
            time: local(m.at, off),
            linked: m.suppressions,
        })
        .collect();
    let proposals = v
        .proposals
        .iter()
        .map(|p| ProposalLine {
            camera: p.camera.clone(),
            rule: p.rule.as_str(),
            rule_word: t(lang, p.rule.as_str()),
            setting: p.setting.to_string(),
            value: format!("{:.2}", p.value),
            history: match lang {
                Lang::Zh => format!(
                    "保留全部 {} 条确认，排除 {} 条驳回中的 {} 条",
                    p.confirmed, p.rejected, p.rejected_dropped
                ),
                Lang::En => format!(
                    "keeps all {} confirmed, drops {} of {} rejected",
                    p.confirmed, p.rejected_dropped, p.rejected
                ),
            },
        })
        .collect();
    let overrides = v
        .overrides
        .iter()
        .map(|o| OverrideLine {
            camera: o.camera.clone(),
            rule: t(lang, &o.rule),
            setting: format!("{} = {:.2}", o.setting, o.value),
            by: o.applied_by.clone(),
            at: local(o.applied_at, off),
        })
        .collect();
    Ok(render(
        lang,
        &LearningPage {
            frame: Frame::new(&st, lang, &auth, t(lang, "learning")),
            lang,
            csrf: auth.csrf.clone().unwrap_or_default(),
            admin: auth.user.role == crate::store::users::Role::Admin,
            suppressions,
            memory,
            proposals,
            overrides,
        },
    ))
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
    #[test]
    fn html_is_escaped() {
        assert_eq!(
            super::super::html::esc("<script>alert('x')</script>&\""),
            "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;"
        );
    }
}
