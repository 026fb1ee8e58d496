//! Authentication and authorisation for every route: a session cookie (HttpOnly,
//! SameSite=Strict) or an API token (`Authorization: Bearer`), roles, CSRF on every
//! state-changing request made with a session, and rate-limited logins.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Form, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use serde::Deserialize;

use super::error::WebError;
use super::html::{Lang, t};
use super::state::WebState;
use crate::store::users::{Role, User};

pub const SESSION_COOKIE: &str = "cw_session";
/// Largest form body the CSRF check reads.
const FORM_LIMIT: usize = 64 * 1024;

/// Who is asking, attached to every authenticated request.
#[derive(Debug, Clone)]
pub struct Auth {
    pub user: User,
    /// The session's CSRF token (none for API tokens, which need none).
    pub csrf: Option<String>,
}

impl Auth {
    /// 403 unless the user has at least `role`.
    pub fn require(&self, role: Role) -> Result<(), WebError> {
        if self.user.role >= role {
            Ok(())
        } else {
            Err(WebError::role())
        }
    }
}

fn wants_json(req: &Request) -> bool {
    let p = req.uri().path();
    p.starts_with("/api/") || p == "/metrics" || p.starts_with("/evidence/")
}

/// The middleware in front of every route but the login page: finds the user, refuses the
/// unauthenticated (401 for the API, a redirect to the login page for pages) and checks CSRF.
pub async fn require_auth(State(st): State<Arc<WebState>>, req: Request, next: Next) -> Response {
    let now = st.now();
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let auth = if let Some(token) = bearer {
        match st.store.token_user(&token).await {
            Ok(Some(user)) => Some(Auth { user, csrf: None }),
            Ok(None) => None,
            Err(e) => return WebError::internal(e).into_response(),
        }
    } else if let Some(sid) = CookieJar::from_headers(req.headers())
        .get(SESSION_COOKIE)
        .map(|c| c.value().to_string())
    {
        match st
            .store
            .session(&sid, now, st.settings.session_idle_minutes * 60.0)
            .await
        {
            Ok(Some(s)) => Some(Auth {
                user: s.user,
                csrf: Some(s.csrf),
            }),
            Ok(None) => None,
            Err(e) => return WebError::internal(e).into_response(),
        }
    } else {
        None
    };
    let Some(auth) = auth else {
        return if wants_json(&req) {
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "authentication required",
            )
                .into_response()
        } else {
            Redirect::to("/login").into_response()
        };
    };
    let mut req = req;
    if req.method() != Method::GET
        && req.method() != Method::HEAD
        && let Some(expected) = auth.csrf.clone()
    {
        match csrf_ok(req, &expected).await {
            Ok(r) => req = r,
            Err(e) => return e.into_response(),
        }
    }
    req.extensions_mut().insert(auth);
    next.run(req).await
}

/// Checks the CSRF token: the `X-CSRF-Token` header, or a `csrf` field in a form body (which
/// is read, checked and put back).
async fn csrf_ok(req: Request, expected: &str) -> Result<Request, WebError> {
    let forbidden = || WebError::forbidden("forbidden: missing or wrong CSRF token");
    if let Some(h) = req.headers().get("x-csrf-token") {
        return if h.as_bytes() == expected.as_bytes() {
            Ok(req)
        } else {
            Err(forbidden())
        };
    }
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if !is_form {
        return Err(forbidden());
    }
    let (parts, body) = req.into_parts();
    let bytes = axum::body::to_bytes(body, FORM_LIMIT)
        .await
        .map_err(|_| WebError::TooLarge("request body too large".into()))?;
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes).unwrap_or_default();
    if fields.iter().any(|(k, v)| k == "csrf" && v == expected) {
        Ok(Request::from_parts(parts, Body::from(bytes)))
    } else {
        Err(forbidden())
    }
}

#[derive(Debug, Deserialize)]
pub struct LoginForm {
    pub user: String,
    pub password: String,
}

pub async fn login_page(lang: Lang) -> Html<String> {
    Html(login_html(lang, None))
}

/// The login page: the one page outside the layout (no user yet). It stands below the
/// templates module (layering), so it looks its words up itself.
#[derive(askama::Template)]
#[template(path = "login.html")]
struct LoginPage<'a> {
    lang: Lang,
    error: Option<&'a str>,
}

impl LoginPage<'_> {
    fn t(&self, key: &str) -> &'static str {
        t(self.lang, key)
    }
}

fn login_html(lang: Lang, error: Option<&str>) -> String {
    use askama::Template;
    LoginPage { lang, error }
        .render()
        .unwrap_or_else(|e| format!("template: {e}"))
}

pub async fn login(
    State(st): State<Arc<WebState>>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    lang: Lang,
    Form(f): Form<LoginForm>,
) -> Result<Response, WebError> {
    let now = st.now();
    let key = (f.user.clone(), addr.ip().to_string());
    if st
        .logins
        .lock()
        .blocked(&key, now, st.settings.login_attempts)
    {
        tracing::warn!(user = %f.user, client = %addr.ip(), "login refused: too many failed attempts");
        return Ok((
            StatusCode::TOO_MANY_REQUESTS,
            Html(login_html(lang, Some(t(lang, "too_many")))),
        )
            .into_response());
    }
    let user = st
        .store
        .check_password(&f.user, &f.password)
        .await
        .map_err(WebError::internal)?;
    let Some(user) = user else {
        st.logins.lock().failed(key, now);
        let _ = st
            .store
            .audit(&f.user, "login.failed", &addr.ip().to_string(), None, now)
            .await;
        return Ok((
            StatusCode::UNAUTHORIZED,
            Html(login_html(lang, Some(t(lang, "bad_login")))),
        )
            .into_response());
    };
    st.logins.lock().succeeded(&key);
    let ttl = st.settings.session_hours * 3600.0;
    let (token, _csrf) = st
        .store
        .create_session(&user.name, ttl, now)
        .await
        .map_err(WebError::internal)?;
    let _ = st
        .store
        .audit(&user.name, "login", &addr.ip().to_string(), None, now)
        .await;
    let session = Cookie::build((SESSION_COOKIE, token))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path("/")
        .max_age(time::Duration::seconds(ttl as i64))
        .secure(st.settings.https());
    Ok((CookieJar::new().add(session), Redirect::to("/review")).into_response())
}

pub async fn logout(State(st): State<Arc<WebState>>, jar: CookieJar) -> Response {
    if let Some(sid) = jar.get(SESSION_COOKIE).map(|c| c.value().to_string()) {
        let _ = st.store.end_session(&sid).await;
    }
    // The removal cookie (empty, expired) for the session cookie's path.
    let jar = jar.remove(Cookie::build(SESSION_COOKIE).path("/"));
    (jar, Redirect::to("/login")).into_response()
}
