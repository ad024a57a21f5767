//! The error every `/v1/` and `/internal/` handler answers with: [`ApiError`], rendered as
//! `api::ErrorBody` with a stable code (5xx details are logged, never sent), and how store
//! errors map onto it (`apps` maps its own errors here). Its own module so `auth` and `http` both use it without
//! importing each other; `http` re-exports it.

use axum::response::{IntoResponse, Response};
use axum::Json;
use http::{header, HeaderValue, StatusCode};
use paas_api::{codes, ErrorBody};

use crate::store::StoreError;

/// An API failure: the status and code say what kind, the message what is wrong and what
/// to do.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    /// The release's image has no `/bin/sh` (409 `no_shell`).
    #[error("{0}")]
    NoShell(String),
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unavailable(String),
    /// Too many failed logins or bad tokens from one source: retry after this many seconds.
    #[error("too many failed logins or bad tokens from your address: retry after {0} s")]
    RateLimited(u64),
    /// `If-Match` no longer matches (412).
    #[error("{0}")]
    PreconditionFailed(String),
    /// Logged with its detail; the client sees a generic message.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ApiError {
    /// Wraps any error as an internal one.
    pub fn internal(e: impl std::fmt::Display) -> ApiError {
        ApiError::Internal(e.to_string())
    }

    fn parts(&self) -> (StatusCode, &'static str) {
        match self {
            ApiError::Validation(_) => (StatusCode::BAD_REQUEST, codes::VALIDATION),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, codes::BAD_REQUEST),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, codes::NOT_FOUND),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, codes::CONFLICT),
            ApiError::NoShell(_) => (StatusCode::CONFLICT, codes::NO_SHELL),
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, codes::FORBIDDEN),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, codes::UNAVAILABLE),
            ApiError::RateLimited(_) => (StatusCode::TOO_MANY_REQUESTS, codes::RATE_LIMITED),
            ApiError::PreconditionFailed(_) => {
                (StatusCode::PRECONDITION_FAILED, codes::PRECONDITION_FAILED)
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
        let retry_after = match self {
            ApiError::RateLimited(secs) => Some(secs),
            _ => None,
        };
        let message = if status.is_server_error() {
            tracing::error!("{self}");
            match self {
                ApiError::Unavailable(m) => m,
                _ => "internal error: the controller's log has the details".to_string(),
            }
        } else {
            self.to_string()
        };
        let mut resp = (status, Json(ErrorBody::new(code, message))).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"paas\""),
            );
        }
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AppExists(_)
            | StoreError::ReleaseExists { .. }
            | StoreError::Busy { .. } => ApiError::Conflict(e.to_string()),
            StoreError::NoApp(_) => ApiError::NotFound(e.to_string()),
            StoreError::UserExists(_) => ApiError::Conflict(e.to_string()),
            e => ApiError::internal(e),
        }
    }
}
