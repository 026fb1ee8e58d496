//! The case life cycle in the UI and the API: a case's page with its status history, its
//! deadline and the closure check's looks; a person's verification (核实) when the camera
//! could not judge; and the dead letters an admin requeues.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Form, Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::auth::Auth;
use super::error::WebError;
use super::html::{Lang, esc, local, t};
use super::pages::page;
use super::review::{PackageView, package_of};
use super::state::WebState;
use crate::model::closure::CheckOutcome;
use crate::store::progress::CaseStatus;
use crate::store::users::Role;

/// The case's evidence: the package's verification state, then the capture's looks (the
/// "before": full frame, first sighting, crop, clip) beside each closure check's look (the
/// "after": its photo and clip), oldest first.
fn before_after(
    lang: Lang,
    evidence: &Option<serde_json::Value>,
    m: &crate::model::package::PackageManifest,
) -> String {
    let thumb = |f: &str| super::pages::thumb(evidence, f);
    let figure = |file: &str, caption: &str, class: &str| -> String {
        match thumb(file) {
            Some(u) if file.ends_with(".mp4") => format!(
                "<figure><video controls muted preload=\"metadata\" src=\"{}\"></video><figcaption>{}</figcaption></figure>",
                esc(&u),
                esc(caption)
            ),
            Some(u) => format!(
                "<figure><img class=\"{class}\" src=\"{}\" alt=\"{}\"><figcaption>{}</figcaption></figure>",
                esc(&u),
                esc(caption),
                esc(caption)
            ),
            None => String::new(),
        }
    };
    let has = |name: &str| m.files.iter().any(|f| f.name == name);
    let mut out = format!(
        "<p id=\"package-state\" class=\"ok\">{} · {} {} · sha256</p><div class=\"before-after\" id=\"before-after\"><section class=\"before\" id=\"before\"><h3>{}</h3>",
        t(lang, "package_verified"),
        m.files.len(),
        t(lang, "files"),
        t(lang, "before"),
    );
    for (file, key) in [
        ("confirm.jpg", "full_frame"),
        ("first_seen.jpg", "first_seen"),
        ("crop.jpg", "crop"),
    ] {
        if has(file) {
            out.push_str(&figure(file, t(lang, key), "before"));
        }
    }
    if m.clip.is_some() && has("clip.mp4") {
        out.push_str(&figure("clip.mp4", t(lang, "clip"), "before"));
    }
    out.push_str(&format!(
        "</section><section class=\"after\" id=\"after\"><h3>{}</h3>",
        t(lang, "after")
    ));
    if m.revisions.is_empty() {
        out.push_str(&format!(
            "<p class=\"note\">{}</p>",
            t(lang, "no_after_yet")
        ));
    }
    for r in &m.revisions {
        let key = if r.outcome == "clear" {
            "after_clear"
        } else {
            "after_still"
        };
        for f in &r.files {
            if f.ends_with(".jpg") || f.ends_with(".mp4") {
                let caption = format!("{} · {}", t(lang, key), r.at.local);
                out.push_str(&figure(f, &caption, "after"));
            }
        }
    }
    out.push_str("</section></div>");
    out
}

pub async fn case_page(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    lang: Lang,
    Path(n): Path<String>,
) -> Result<Response, WebError> {
    let c = st
        .store
        .case(&n)
        .await
        .map_err(WebError::internal)?
        .ok_or_else(|| WebError::not_found("no such case"))?;
    let history = st.store.case_events(&n).await.map_err(WebError::internal)?;
    // The case's own evidence reference: the capture's at filing, then the looks added to
    // the package.
    let evidence = st
        .store
        .case_evidence(&n)
        .await
        .map_err(WebError::internal)?;
    let off = st.cases.utc_offset_s;
    let now = st.now();
    let late = c.overdue(now);
    let mut body = format!(
        "<dl><dt>{}</dt><dd id=\"case-status\" class=\"status-{status}\">{}</dd><dt>{}</dt><dd>{} {} / {} {}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd>{}</dd><dt>{}</dt><dd id=\"deadline\" class=\"{}\">{}{}</dd><dt>{}</dt><dd><a href=\"/captures/{cap}\">{cap}</a></dd></dl>",
        t(lang, "status"),
        t(lang, &c.status),
        t(lang, "category"),
        esc(&c.major_code),
        esc(&c.major_name),
        esc(&c.minor_code),
        esc(&c.minor_name),
        t(lang, "camera"),
        esc(&c.camera),
        t(lang, "time_limit"),
        esc(&c.time_limit),
        t(lang, "deadline"),
        if late { "overdue" } else { "" },
        c.deadline_at.map(|d| local(d, off)).unwrap_or_default(),
        // The countdown while the deadline runs; how late once it has passed.
        match c.deadline_at {
            Some(_) if late => format!(" · {}", t(lang, "overdue")),
            Some(d) if CaseStatus::parse(&c.status).is_some_and(CaseStatus::deadline_runs) => {
                format!(
                    " · <span id=\"countdown\">{} {}</span>",
                    super::pages::duration(d - now),
                    t(lang, "left")
                )
            }
            _ => String::new(),
        },
        t(lang, "capture"),
        status = esc(&c.status),
        cap = esc(&c.capture_id),
    );
    // The vehicle's plate (车牌号), from its capture: in full for operators, masked for viewers.
    if c.rule == "abandoned_vehicle"
        && let Ok(Some(cap)) = st.store.capture(&c.capture_id).await
    {
        let shown = cap
            .plate
            .as_deref()
            .map(|p| super::review::shown_plate(&auth, p))
            .unwrap_or_else(|| t(lang, "plate_unread").to_string());
        body.push_str(&format!(
            "<dl class=\"plate\"><dt>{}</dt><dd id=\"plate\">{}</dd></dl>",
            t(lang, "plate"),
            esc(&shown)
        ));
    }
    body.push_str(&format!(
        "<h2>{}</h2><table id=\"history\"><tr><th>#</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th></tr>",
        t(lang, "history_of_case"),
        t(lang, "time"),
        t(lang, "status"),
        t(lang, "by"),
        t(lang, "note"),
    ));
    for e in &history {
        body.push_str(&format!(
            "<tr class=\"event\" data-status=\"{s}\"><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            e.seq,
            local(e.at, off),
            t(lang, &e.status),
            esc(&e.actor),
            esc(e.detail.as_deref().unwrap_or("")),
            s = esc(&e.status),
        ));
    }
    body.push_str("</table>");
    // A person checks when the camera could not (or before it does).
    if matches!(
        CaseStatus::parse(&c.status),
        Some(CaseStatus::Handled | CaseStatus::CheckManual)
    ) && auth.user.role >= Role::Operator
    {
        let csrf = esc(auth.csrf.as_deref().unwrap_or(""));
        body.push_str(&format!(
            "<form method=\"post\" action=\"/cases/{n}/verify\" id=\"verify-form\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\">\
             <button name=\"outcome\" value=\"clear\" id=\"verify-clear\">{}</button> \
             <button name=\"outcome\" value=\"still_there\" id=\"verify-still\">{}</button></form>",
            t(lang, "verify_clear"),
            t(lang, "verify_still"),
            n = esc(&n),
        ));
    }
    body.push_str(&format!("<h2>{}</h2>", t(lang, "evidence")));
    match package_of(&st, &evidence) {
        PackageView::Verified(m) => body.push_str(&before_after(lang, &evidence, &m)),
        PackageView::Tampered(tp) => body.push_str(&super::pages::tampered_banner(lang, &tp)),
        PackageView::None => body.push_str(&format!(
            "<p id=\"package-state\" class=\"note\">{}</p>",
            t(lang, "no_package")
        )),
    }
    Ok(page(
        &st,
        lang,
        &auth,
        &format!("{} {}", t(lang, "case_number"), n),
        &body,
    ))
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct VerifyForm {
    /// clear or still_there.
    pub outcome: String,
    #[serde(default)]
    pub csrf: Option<String>,
}

/// A person's verification of a handled case.
pub async fn do_verify(
    st: &WebState,
    auth: &Auth,
    n: &str,
    f: &VerifyForm,
) -> Result<String, WebError> {
    auth.require(Role::Operator)?;
    let outcome = match f.outcome.as_str() {
        "clear" => CheckOutcome::Clear,
        "still_there" => CheckOutcome::StillThere,
        _ => {
            return Err(WebError::unprocessable(
                "outcome must be clear or still_there",
            ));
        }
    };
    let camera = st
        .store
        .case(n)
        .await
        .map_err(WebError::internal)?
        .ok_or_else(|| WebError::not_found("no such case"))?
        .camera;
    match st
        .store
        .record_check(
            n,
            &outcome,
            None,
            &auth.user.name,
            &st.cases.policy(),
            &st.cases.closure,
            st.now(),
        )
        .await
    {
        Ok(Some(s)) => {
            st.checks.settle(&camera, n, None);
            Ok(s.as_str().to_string())
        }
        Ok(None) => Err(WebError::conflict(
            "the case is not waiting for a closure check",
        )),
        Err(e) => Err(WebError::internal(e)),
    }
}

pub async fn verify_page(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(n): Path<String>,
    Form(f): Form<VerifyForm>,
) -> Result<Response, WebError> {
    do_verify(&st, &auth, &n, &f).await?;
    Ok(Redirect::to(&format!("/cases/{}", super::pages::urlencoding_path(&n))).into_response())
}

/// A case's new status after a closure check.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Verified {
    case_number: String,
    status: String,
}

#[utoipa::path(
    post,
    path = "/api/cases/{n}/verify",
    tag = "cases",
    summary = "A person's closure check (核实) of a handled case (operator)",
    description = "clear closes it (verified_closed), still_there reopens it (not_rectified); the platform is told.",
    params(("n" = String, Path, description = "the case number")),
    request_body = VerifyForm,
    responses(
        (status = 200, description = "the case's new status", body = Verified),
        (status = 401, description = "not authenticated"),
        (status = 403, description = "role too low, or CSRF token missing"),
        (status = 404, description = "no such case"),
        (status = 409, description = "the case is not waiting for a closure check"),
        (status = 422, description = "bad outcome"),
    )
)]
pub async fn verify_api(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(n): Path<String>,
    Json(f): Json<VerifyForm>,
) -> Result<Response, WebError> {
    let status = do_verify(&st, &auth, &n, &f).await?;
    Ok(Json(Verified {
        case_number: n,
        status,
    })
    .into_response())
}

/// A case, whether it is past its deadline, and its history.
#[derive(Serialize, utoipa::ToSchema)]
pub struct CaseDetail {
    case: crate::store::CaseRecord,
    /// Past its 处置时限 while its deadline runs.
    overdue: bool,
    /// Every status change, oldest first.
    history: Vec<crate::store::progress::CaseEvent>,
}

#[utoipa::path(
    get,
    path = "/api/cases/{n}",
    tag = "cases",
    summary = "A case with its status history and whether it is overdue (viewer)",
    params(("n" = String, Path, description = "the case number")),
    responses(
        (status = 200, description = "the case", body = CaseDetail),
        (status = 401, description = "not authenticated"),
        (status = 404, description = "no such case"),
    )
)]
pub async fn case_api(
    State(st): State<Arc<WebState>>,
    Path(n): Path<String>,
) -> Result<Response, WebError> {
    let c = st
        .store
        .case(&n)
        .await
        .map_err(WebError::internal)?
        .ok_or_else(|| WebError::not_found("no such case"))?;
    let history = st.store.case_events(&n).await.map_err(WebError::internal)?;
    Ok(Json(CaseDetail {
        overdue: c.overdue(st.now()),
        case: c,
        history,
    })
    .into_response())
}

pub async fn dead_letters_page(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    lang: Lang,
) -> Result<Response, WebError> {
    auth.require(Role::Admin)?;
    let dead = st.store.dead_letters().await.map_err(WebError::internal)?;
    let csrf = esc(auth.csrf.as_deref().unwrap_or(""));
    let mut body = format!(
        "<form method=\"post\" action=\"/admin/outbox/requeue\" id=\"requeue-all-form\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button id=\"requeue-all\">{}</button></form>\
         <table id=\"dead-letters\"><tr><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th>{}</th><th></th></tr>",
        t(lang, "requeue_all"),
        t(lang, "case_number"),
        t(lang, "message"),
        t(lang, "idempotency_key"),
        t(lang, "attempts"),
        t(lang, "last_error"),
    );
    if dead.is_empty() {
        body.push_str(&format!(
            "<tr><td colspan=\"6\">{}</td></tr>",
            t(lang, "none")
        ));
    }
    for d in &dead {
        body.push_str(&format!(
            "<tr class=\"dead\" data-id=\"{id}\"><td><a href=\"/cases/{case}\">{case}</a></td><td>{ev}</td><td>{key}</td><td>{n}</td><td class=\"error\">{err}</td>\
             <td><form method=\"post\" action=\"/admin/outbox/{id}/requeue\"><input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><button class=\"requeue\">{rq}</button></form></td></tr>",
            id = esc(&d.id),
            case = esc(&d.case_number),
            ev = esc(&d.event),
            key = esc(&d.idempotency_key),
            n = d.attempts,
            err = esc(d.last_error.as_deref().unwrap_or("")),
            rq = t(lang, "requeue"),
        ));
    }
    body.push_str("</table>");
    Ok(page(&st, lang, &auth, t(lang, "dead_letters"), &body))
}

#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RequeueBody {
    /// Outbox row ids; absent: every dead letter.
    #[serde(default)]
    pub ids: Option<Vec<String>>,
    #[serde(default)]
    pub csrf: Option<String>,
}

async fn do_requeue(st: &WebState, auth: &Auth, ids: Option<&[String]>) -> Result<usize, WebError> {
    auth.require(Role::Admin)?;
    let n = st
        .store
        .requeue(ids, &auth.user.name, st.now())
        .await
        .map_err(WebError::internal)?;
    if let Some(f) = &st.filing {
        f.wake();
    }
    Ok(n)
}

pub async fn requeue_one(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(id): Path<String>,
    Form(_f): Form<RequeueBody>,
) -> Result<Response, WebError> {
    do_requeue(&st, &auth, Some(&[id])).await?;
    Ok(Redirect::to("/admin/outbox").into_response())
}

pub async fn requeue_all(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Form(_f): Form<RequeueBody>,
) -> Result<Response, WebError> {
    do_requeue(&st, &auth, None).await?;
    Ok(Redirect::to("/admin/outbox").into_response())
}

#[utoipa::path(
    get,
    path = "/api/dead-letters",
    tag = "outbox",
    summary = "Outbox messages given up on, with their last error (admin)",
    responses(
        (status = 200, description = "dead letters", body = [crate::store::progress::DeadLetter]),
        (status = 401, description = "not authenticated"),
        (status = 403, description = "not an admin"),
    )
)]
pub async fn dead_letters_api(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
) -> Result<Response, WebError> {
    auth.require(Role::Admin)?;
    let dead = st.store.dead_letters().await.map_err(WebError::internal)?;
    Ok(Json(dead).into_response())
}

/// How many dead letters went back to the outbox.
#[derive(Serialize, utoipa::ToSchema)]
pub struct RequeuedLetters {
    requeued: usize,
}

#[utoipa::path(
    post,
    path = "/api/dead-letters/requeue",
    tag = "outbox",
    summary = "Requeue dead letters (admin)",
    description = "All of them, or the ids given, with fresh attempts and the same idempotency key; each requeue is audited.",
    request_body = RequeueBody,
    responses(
        (status = 200, description = "how many were requeued", body = RequeuedLetters),
        (status = 401, description = "not authenticated"),
        (status = 403, description = "not an admin, or CSRF token missing"),
    )
)]
pub async fn requeue_api(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Json(b): Json<RequeueBody>,
) -> Result<Response, WebError> {
    let requeued = do_requeue(&st, &auth, b.ids.as_deref()).await?;
    Ok(Json(RequeuedLetters { requeued }).into_response())
}
