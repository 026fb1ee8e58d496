//! Administration, for admins only: users (list, add, disable and enable, reset a
//! password) and the audit log with filters and the state of its hash chain.

use std::sync::Arc;

use axum::Json;
use axum::extract::{Extension, Form, Path, Query, State};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;

use super::auth::Auth;
use super::error::WebError;
use super::html::{Lang, local, t};
use super::state::WebState;
use crate::store::audit::AuditFilter;
use crate::store::users::{
    MIN_PASSWORD, NAME_RULE, PASSWORD_RULE, Role, valid_name, valid_password,
};

pub async fn users_page(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    lang: Lang,
) -> Result<Response, WebError> {
    auth.require(Role::Admin)?;
    let users = st
        .store
        .list_users(st.now())
        .await
        .map_err(WebError::internal)?;
    let users = users
        .iter()
        .map(|u| crate::templates::UserLine {
            name: u.name.clone(),
            path: super::pages::urlencoding_path(&u.name),
            role: u.role.clone(),
            disabled: u.disabled,
            sessions: u.sessions,
        })
        .collect();
    Ok(super::pages::render(
        lang,
        &crate::templates::UsersPage {
            frame: crate::templates::Frame::new(&st, lang, &auth, t(lang, "users")),
            lang,
            csrf: auth.csrf.clone().unwrap_or_default(),
            roles: ["viewer", "operator", "admin"],
            min_password: MIN_PASSWORD,
            users,
        },
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUser {
    pub name: String,
    pub role: String,
    pub password: String,
    #[serde(default)]
    pub csrf: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewPassword {
    pub password: String,
    #[serde(default)]
    pub csrf: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct CsrfOnly {
    #[allow(dead_code)]
    csrf: Option<String>,
}

fn unprocessable(why: &str) -> WebError {
    WebError::unprocessable(why)
}

async fn do_add(st: &WebState, auth: &Auth, u: &NewUser) -> Result<(), WebError> {
    auth.require(Role::Admin)?;
    if !valid_name(&u.name) {
        return Err(unprocessable(&format!("name: {NAME_RULE}")));
    }
    let role =
        Role::parse(&u.role).ok_or_else(|| unprocessable("role: viewer, operator or admin"))?;
    if !valid_password(&u.password) {
        return Err(unprocessable(&format!("password: {PASSWORD_RULE}")));
    }
    match st
        .store
        .add_user(&u.name, role, &u.password, &auth.user.name, st.now())
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(WebError::conflict("a user of that name exists")),
        Err(e) => Err(WebError::internal(e)),
    }
}

pub async fn add_user(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Form(u): Form<NewUser>,
) -> Result<Response, WebError> {
    do_add(&st, &auth, &u).await?;
    Ok(Redirect::to("/admin/users").into_response())
}

async fn do_set(st: &WebState, auth: &Auth, name: &str, disabled: bool) -> Result<(), WebError> {
    auth.require(Role::Admin)?;
    if disabled && name == auth.user.name {
        return Err(WebError::conflict("an admin cannot disable themself"));
    }
    match st
        .store
        .set_disabled(name, disabled, &auth.user.name, st.now())
        .await
    {
        Ok(true) => Ok(()),
        Ok(false) => Err(WebError::not_found("no such user")),
        Err(e) => Err(WebError::internal(e)),
    }
}

pub async fn disable_user(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(name): Path<String>,
    Form(_f): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    do_set(&st, &auth, &name, true).await?;
    Ok(Redirect::to("/admin/users").into_response())
}

pub async fn enable_user(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(name): Path<String>,
    Form(_f): Form<CsrfOnly>,
) -> Result<Response, WebError> {
    do_set(&st, &auth, &name, false).await?;
    Ok(Redirect::to("/admin/users").into_response())
}

pub async fn reset_password(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Path(name): Path<String>,
    Form(f): Form<NewPassword>,
) -> Result<Response, WebError> {
    auth.require(Role::Admin)?;
    if !valid_password(&f.password) {
        return Err(unprocessable(&format!("password: {PASSWORD_RULE}")));
    }
    let found = st
        .store
        .reset_password(&name, &f.password, &auth.user.name, st.now())
        .await
        .map_err(WebError::internal)?;
    if !found {
        return Err(WebError::not_found("no such user"));
    }
    Ok(Redirect::to("/admin/users").into_response())
}

#[utoipa::path(
    get,
    path = "/api/users",
    tag = "admin",
    summary = "Users with role, disabled flag and live sessions (admin)",
    responses(
        (status = 200, description = "users, by name", body = [crate::store::users::UserRow]),
        (status = 401, description = "not authenticated"),
        (status = 403, description = "not an admin"),
    )
)]
pub async fn users_api(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
) -> Result<Response, WebError> {
    auth.require(Role::Admin)?;
    let users = st
        .store
        .list_users(st.now())
        .await
        .map_err(WebError::internal)?;
    Ok(Json(users).into_response())
}

/// The audit viewer's query: the store's filters, with dates as the UI enters them.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    pub actor: Option<String>,
    /// An action, or a prefix ending in '.' (`review.` is every review).
    pub action: Option<String>,
    /// Part of the subject (a capture, a case number, a user).
    pub subject: Option<String>,
    /// YYYY-MM-DD, in the reporting time zone.
    #[param(format = Date)]
    pub from_date: Option<String>,
    /// YYYY-MM-DD, in the reporting time zone, inclusive.
    #[param(format = Date)]
    pub to_date: Option<String>,
    /// Most rows, newest first: default 200, at most 1000.
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<i64>,
    /// `full`: walk the whole chain now (seconds at a year's volume). Otherwise the chain
    /// is checked from where the last full walk (hourly, and at start) ended.
    pub walk: Option<String>,
    /// The page language (read by the `Lang` extractor).
    #[serde(default)]
    pub lang: Option<String>,
}

impl AuditQuery {
    /// The chain's check this view asks for.
    async fn chain(
        &self,
        st: &WebState,
    ) -> Result<crate::store::audit::AuditCheck, crate::store::StoreError> {
        if self.walk.as_deref() == Some("full") {
            st.store.verify_audit_walk(st.now()).await
        } else {
            st.store.verify_audit_recent().await
        }
    }
}

fn day_start(date: &str, offset_s: i32) -> Option<f64> {
    let f = time::macros::format_description!("[year]-[month]-[day]");
    let d = time::Date::parse(date, &f).ok()?;
    let off = time::UtcOffset::from_whole_seconds(offset_s).ok()?;
    Some(d.midnight().assume_offset(off).unix_timestamp() as f64)
}

impl AuditQuery {
    fn filter(&self, offset_s: i32) -> AuditFilter {
        AuditFilter {
            actor: self.actor.clone(),
            action: self.action.clone(),
            subject: self.subject.clone(),
            from: self
                .from_date
                .as_deref()
                .and_then(|d| day_start(d, offset_s)),
            until: self
                .to_date
                .as_deref()
                .and_then(|d| day_start(d, offset_s))
                .map(|t| t + 86_400.0 - 0.001),
            limit: self.limit,
        }
    }
}

pub async fn audit_page(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    lang: Lang,
    Query(q): Query<AuditQuery>,
) -> Result<Response, WebError> {
    auth.require(Role::Admin)?;
    let off = st.cases.utc_offset_s;
    let filter = q.filter(off);
    let (rows, chain) =
        tokio::try_join!(st.store.audit_rows(&filter), q.chain(&st)).map_err(WebError::internal)?;
    let text = |o: &Option<String>| o.clone().unwrap_or_default();
    let rows = rows
        .iter()
        .map(|r| crate::templates::AuditLine {
            seq: r.seq.map(|s| s.to_string()).unwrap_or_default(),
            time: local(r.at, off),
            actor: r.actor.clone(),
            action: r.action.clone(),
            subject: r.subject.clone(),
            note: r.detail.clone().unwrap_or_default(),
        })
        .collect();
    Ok(super::pages::render(
        lang,
        &crate::templates::AuditLog {
            frame: crate::templates::Frame::new(&st, lang, &auth, t(lang, "audit")),
            lang,
            broken: chain.broken.clone(),
            rows_checked: chain.rows,
            since_full_walk: chain.since_full_walk,
            walked_at: chain.walked_at.map(|w| local(w, off)),
            actor: text(&q.actor),
            action: text(&q.action),
            subject: text(&q.subject),
            from_date: text(&q.from_date),
            to_date: text(&q.to_date),
            rows,
        },
    ))
}

/// Audit rows and the state of the hash chain.
#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    rows: Vec<crate::store::audit::AuditRow>,
    chain: crate::store::audit::AuditCheck,
}

#[utoipa::path(
    get,
    path = "/api/audit",
    tag = "admin",
    summary = "Audit rows, newest first, filtered, with the state of the hash chain (admin)",
    params(AuditQuery),
    responses(
        (status = 200, description = "rows and chain", body = AuditPage),
        (status = 401, description = "not authenticated"),
        (status = 403, description = "not an admin"),
    )
)]
pub async fn audit_api(
    State(st): State<Arc<WebState>>,
    Extension(auth): Extension<Auth>,
    Query(q): Query<AuditQuery>,
) -> Result<Response, WebError> {
    auth.require(Role::Admin)?;
    let filter = q.filter(st.cases.utc_offset_s);
    let (rows, chain) =
        tokio::try_join!(st.store.audit_rows(&filter), q.chain(&st)).map_err(WebError::internal)?;
    Ok(Json(AuditPage { rows, chain }).into_response())
}
