//! The web layer's one error type. Every refusal or failure a handler can answer with is a
//! [`WebError`], and `IntoResponse` turns it into the HTTP answer, so handlers use `?` and
//! no handler builds an error response by hand.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// Not allowed (403): the user's role cannot do this, or the CSRF token is wrong.
    #[error("{0}")]
    Forbidden(String),
    /// No such thing (404); the text names what is missing.
    #[error("{0}")]
    NotFound(String),
    /// The thing is not in a state that allows it (409).
    #[error("{0}")]
    Conflict(String),
    /// A field breaks its rule (422); the text names the field.
    #[error("{0}")]
    Unprocessable(String),
    /// A malformed request (400).
    #[error("{0}")]
    BadRequest(String),
    /// A body over its limit (413).
    #[error("{0}")]
    TooLarge(String),
    /// Something the answer depends on is down for now (503), e.g. the audit log.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else: logged in full, answered as `internal error` (500) so nothing of the
    /// server's insides reaches the client.
    #[error("{0}")]
    Internal(String),
}

impl WebError {
    pub fn forbidden(why: impl Into<String>) -> Self {
        Self::Forbidden(why.into())
    }

    /// What a user hears when their role is below what a route needs.
    pub fn role() -> Self {
        Self::forbidden("forbidden: your role cannot do this")
    }

    pub fn not_found(what: impl Into<String>) -> Self {
        Self::NotFound(what.into())
    }

    pub fn conflict(why: impl Into<String>) -> Self {
        Self::Conflict(why.into())
    }

    pub fn unprocessable(why: impl Into<String>) -> Self {
        Self::Unprocessable(why.into())
    }

    pub fn bad_request(why: impl Into<String>) -> Self {
        Self::BadRequest(why.into())
    }

    pub fn internal(e: impl std::fmt::Display) -> Self {
        Self::Internal(e.to_string())
    }
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NoCapture(_) => Self::not_found("no such capture"),
            StoreError::NotPending { status, .. } => {
                Self::conflict(format!("the capture is {status}, not pending review"))
            }
            StoreError::Claimed { holder, .. } => {
                Self::conflict(format!("the capture is claimed by {holder}"))
            }
            StoreError::Decided { by, .. } => {
                Self::conflict(format!("the capture was already decided by {by}"))
            }
            e => Self::internal(e),
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unprocessable(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(e) => {
                tracing::error!(error = %e, "web request failed");
                return (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
            }
        };
        (status, self.to_string()).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_error_answers_with_its_status_and_internal_ones_say_nothing() {
        let cases = [
            (WebError::role(), StatusCode::FORBIDDEN),
            (
                WebError::TooLarge("body".into()),
                StatusCode::PAYLOAD_TOO_LARGE,
            ),
            (WebError::not_found("no such case"), StatusCode::NOT_FOUND),
            (WebError::conflict("closed"), StatusCode::CONFLICT),
            (
                WebError::unprocessable("name: …"),
                StatusCode::UNPROCESSABLE_ENTITY,
            ),
            (WebError::bad_request("body"), StatusCode::BAD_REQUEST),
            (
                WebError::Unavailable("audit".into()),
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                WebError::internal("database postgres://secret@db: down"),
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
        ];
        for (e, status) in cases {
            assert_eq!(e.into_response().status(), status);
        }
        let e: WebError = StoreError::NoCapture("x".into()).into();
        assert_eq!(e.into_response().status(), StatusCode::NOT_FOUND);
        let e: WebError = StoreError::NotPending {
            id: "x".into(),
            status: "filed".into(),
        }
        .into();
        assert!(matches!(e, WebError::Conflict(ref m) if m.contains("filed")));
    }
}
