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
use super::html::{Lang, local, t};
use super::pages::render;
use super::review::{PackageView, package_of};
use super::state::WebState;
use super::templates::{CasePackage, CasePage, CaseStep, Figure, Frame};
use crate::model::closure::CheckOutcome;
use crate::store::progress::CaseStatus;
use crate::store::users::Role;

/// The case's evidence: the capture's looks (the "before": full frame, first sighting,
/// crop, clip) beside each closure check's look (the "after": its photo and clip), oldest
/// first.
fn before_after(
    lang: Lang,
    evidence: &Option<serde_json::Value>,
    m: &crate::model::package::PackageManifest,
) -> CasePackage {
    let figure = |file: &str, caption: String| -> Option<Figure> {
        super::pages::thumb(evidence, file).map(|url| Figure {
            url,
            caption,
            video: file.ends_with(".mp4"),
        })
    };
    let has = |name: &str| m.files.iter().any(|f| f.name == name);
    let mut before: Vec<Figure> = [
        ("confirm.jpg", "full_frame"),
        ("first_seen.jpg", "first_seen"),
        ("crop.jpg", "crop"),
    ]
    .into_iter()
    .filter(|(file, _)| has(file))
    .filter_map(|(file, key)| figure(file, t(lang, key).to_string()))
    .collect();
    if m.clip.is_some() && has("clip.mp4") {
        before.extend(figure("clip.mp4", t(lang, "clip").to_string()));
    }
    let after = m
        .revisions
        .iter()
        .flat_map(|r| {
            let key = if r.outcome == "clear" {
                "after_clear"
            } else {
                "after_still"
            };
            r.files
                .iter()
                .filter(|f| f.ends_with(".jpg") || f.ends_with(".mp4"))
                .filter_map(move |f| figure(f, format!("{} · {}", t(lang, key), r.at.local)))
        })
        .collect();
    CasePackage {
        files: m.files.len(),
        before,
        after,
    }
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
    let overdue = c.overdue(now);
    let status = CaseStatus::parse(&c.status);
    // The countdown while the deadline runs.
    let countdown = c
        .deadline_at
        .filter(|_| !overdue && status.is_some_and(CaseStatus::deadline_runs))
        .map(|d| super::pages::duration(d - now));
    // The vehicle's plate (车牌号), from its capture: in full for operators, masked for viewers.
    let plate = if c.rule == "abandoned_vehicle" {
        match st.store.capture(&c.capture_id).await {
            Ok(Some(cap)) => Some(
                cap.plate
                    .as_deref()
                    .map(|p| super::review::shown_plate(&auth, p))
                    .unwrap_or_else(|| t(lang, "plate_unread").to_string()),
            ),
            _ => None,
        }
    } else {
        None
    };
    // A person checks when the camera could not (or before it does).
    let verify = matches!(status, Some(CaseStatus::Handled | CaseStatus::CheckManual))
        && auth.user.role >= Role::Operator;
    let (package, tampered) = match package_of(&st, &evidence) {
        PackageView::Verified(m) => (Some(before_after(lang, &evidence, &m)), None),
        PackageView::Tampered(tp) => (None, Some(tp.files.clone())),
        PackageView::None => (None, None),
    };
    let history = history
        .iter()
        .map(|e| CaseStep {
            seq: e.seq,
            time: local(e.at, off),
            status: e.status.clone(),
            status_word: t(lang, &e.status),
            actor: e.actor.clone(),
            note: e.detail.clone().unwrap_or_default(),
        })
        .collect();
    Ok(render(
        lang,
        &CasePage {
            frame: Frame::new(
                &st,
                lang,
                &auth,
                &format!("{} {}", t(lang, "case_number"), n),
            ),
            lang,
            path: super::pages::urlencoding_path(&n),
            status_word: t(lang, &c.status),
            status: c.status.clone(),
            category: format!(
                "{} {} / {} {}",
                c.major_code, c.major_name, c.minor_code, c.minor_name
            ),
            camera: c.camera.clone(),
            time_limit: c.time_limit.clone(),
            deadline: c.deadline_at.map(|d| local(d, off)).unwrap_or_default(),
            overdue,
            countdown,
            capture_path: super::pages::urlencoding_path(&c.capture_id),
            capture: c.capture_id.clone(),
            plate,
            history,
            verify,
            csrf: auth.csrf.clone().unwrap_or_default(),
            package,
            tampered,
        },
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
    let dead = dead
        .iter()
        .map(|d| crate::templates::DeadLine {
            id: d.id.clone(),
            path: super::pages::urlencoding_path(&d.id),
            case_number: d.case_number.clone(),
            case_path: super::pages::urlencoding_path(&d.case_number),
            event: d.event.clone(),
            idempotency_key: d.idempotency_key.clone(),
            attempts: d.attempts,
            error: d.last_error.clone().unwrap_or_default(),
        })
        .collect();
    Ok(render(
        lang,
        &crate::templates::OutboxPage {
            frame: Frame::new(&st, lang, &auth, t(lang, "dead_letters")),
            lang,
            csrf: auth.csrf.clone().unwrap_or_default(),
            dead,
        },
    ))
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
