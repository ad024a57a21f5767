//! The controller's HTTP surface: [`app`] mounts the REST API (`/v1/`), git smart HTTP
//! (`/git/`), the registry (`/v2/`), the build inputs and hook endpoint for agents and git
//! hooks (`/internal/`) and the dashboard (`/`).
//!
//! Every `/v1/` and `/internal/` error is an [`ApiError`], rendered as `api::ErrorBody` with
//! a stable code; 5xx details are logged, never sent. Submodules: `v1` (apps and nodes) and
//! `internal` (build inputs for agents).

mod config;
mod domains;
mod formation;
mod internal;
mod logs;
pub(crate) mod nodes;
mod run;
#[cfg(test)]
mod sched_tests;
mod v1;

#[cfg(test)]
mod tests;

pub(crate) use domains::validate_hostname;
pub(crate) use logs::dashboard_stream;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::response::{IntoResponse, Response};
use axum::Json;
use http::request::Parts;
use http::{header, HeaderValue, StatusCode};
use paas_api::{codes, ErrorBody};

use crate::apps::AppsError;
use crate::dashboard::ControllerDashboard;
use crate::state::Controller;
use crate::store::StoreError;

/// The whole controller: REST API, git, registry, internal endpoints and dashboard.
pub fn app(c: Arc<Controller>) -> axum::Router {
    let registry = crate::registry::routes(c.registry.clone(), c.tokens.registry_check());
    let dashboard = paas_web_ui::router(Arc::new(ControllerDashboard::new(Arc::clone(&c))));
    axum::Router::new()
        .merge(v1::routes())
        .merge(config::routes())
        .merge(formation::routes())
        .merge(nodes::routes())
        .merge(logs::routes())
        .merge(run::routes())
        .merge(domains::routes())
        .merge(internal::routes())
        .merge(crate::git::routes())
        .with_state(c)
        .merge(registry)
        .merge(dashboard)
}

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
    #[error("{0}")]
    Unauthorized(&'static str),
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    Unavailable(String),
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
            ApiError::Unauthorized(_) => (StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, codes::FORBIDDEN),
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, codes::UNAVAILABLE),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.parts();
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
        resp
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AppExists(_) | StoreError::ReleaseExists { .. } => {
                ApiError::Conflict(e.to_string())
            }
            StoreError::NoApp(_) => ApiError::NotFound(e.to_string()),
            e => ApiError::internal(e),
        }
    }
}

impl From<AppsError> for ApiError {
    fn from(e: AppsError) -> Self {
        match e {
            AppsError::InvalidName(m) => ApiError::Validation(m),
            AppsError::NotFound(_) => ApiError::NotFound(e.to_string()),
            AppsError::NoRelease(_) => ApiError::NotFound(e.to_string()),
            AppsError::NothingToRollBack(_) => ApiError::Conflict(e.to_string()),
            AppsError::Building(_) => ApiError::Conflict(e.to_string()),
            AppsError::Exists(_) => ApiError::Conflict(e.to_string()),
            AppsError::Store(e) => ApiError::internal(e),
        }
    }
}

/// Extractor: the request carries the admin token.
pub struct Admin;

impl FromRequestParts<Arc<Controller>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        c: &Arc<Controller>,
    ) -> Result<Self, Self::Rejection> {
        match c.tokens.role(&parts.headers) {
            Some(crate::auth::Role::Admin) => Ok(Admin),
            Some(crate::auth::Role::Node) => Err(ApiError::Forbidden(
                "the node token cannot use this endpoint: use the admin token".into(),
            )),
            None => Err(ApiError::Unauthorized(
                "a valid token is required: send `Authorization: Bearer <admin token>` \
                 (the token is in DATA_DIR/admin-token)",
            )),
        }
    }
}

/// Extractor: the request carries the node token (or the admin token).
pub struct NodeAuth;

impl FromRequestParts<Arc<Controller>> for NodeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        c: &Arc<Controller>,
    ) -> Result<Self, Self::Rejection> {
        if c.tokens.is_node_or_admin(&parts.headers) {
            Ok(NodeAuth)
        } else {
            Err(ApiError::Unauthorized(
                "a valid node token is required: send `Authorization: Bearer <node token>`",
            ))
        }
    }
}
