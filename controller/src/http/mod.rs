//! The controller's HTTP surface: [`app`] mounts the REST API (`/v1/`), git smart HTTP
//! (`/git/`), the registry (`/v2/`), the build inputs and hook endpoint for agents and git
//! hooks (`/internal/`) and the dashboard (`/`).
//!
//! Every `/v1/` and `/internal/` error is an [`ApiError`], rendered as `api::ErrorBody` with
//! a stable code; 5xx details are logged, never sent. Submodules: `v1` (apps and nodes) and
//! `internal` (build inputs for agents).

mod access;
mod acme;
#[cfg(test)]
mod api3_tests;
mod api_access;
mod builds;
mod certs;
mod config;
mod cron;
mod deploys;
mod domains;
mod etag;
mod exec;
mod formation;
#[cfg(test)]
mod hostile_prop_tests;
mod internal;
mod jobs;
mod logs;
#[cfg(test)]
mod logs_tests;
pub(crate) mod nodes;
mod openapi;
#[cfg(test)]
mod openapi_tests;
mod paging;
#[cfg(test)]
mod paging_tests;
mod rename;
mod run;
#[cfg(test)]
mod sched_tests;
mod v1;

#[cfg(test)]
mod tests;

pub(crate) use acme::{acme_status, set_acme};
pub(crate) use config::check_destroy_confirmation;
pub(crate) use domains::validate_hostname;
pub(crate) use formation::{change_formation, formation as current_formation, FormationChange};
pub(crate) use jobs::{restart_all, restart_one, stop_one};
pub(crate) use logs::dashboard_stream;
pub(crate) use rename::rename as rename_app;
pub(crate) use run::start_one_off;

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
    let registry = crate::registry::routes_with_tokens(
        c.registry.clone(),
        c.tokens.registry_check(),
        crate::auth::registry_access(Arc::clone(&c)),
        crate::registry::token::TokenIssuer::new(c.tokens.node().as_bytes()),
    );
    let board = Arc::new(ControllerDashboard::new(Arc::clone(&c)));
    let dashboard = paas_web_ui::router(Arc::clone(&board));
    let not_found = paas_web_ui::not_found(board);
    axum::Router::new()
        .merge(v1::routes())
        .merge(config::routes())
        .merge(formation::routes())
        .merge(nodes::routes())
        .merge(logs::routes())
        .merge(run::routes())
        .merge(exec::routes())
        .merge(domains::routes())
        .merge(certs::routes())
        .merge(acme::routes())
        .merge(access::routes())
        .merge(api_access::routes())
        .merge(jobs::routes())
        .merge(cron::routes())
        .merge(builds::routes())
        .merge(rename::routes())
        .merge(openapi::routes())
        .merge(deploys::routes())
        .merge(internal::routes())
        .merge(crate::routing::feed_routes())
        .merge(crate::git::routes())
        .with_state(c)
        .merge(registry)
        .merge(dashboard)
        // Paths nothing answers: the dashboard's "not found" page for browsers, a bare 404
        // for everyone else.
        .fallback_service(not_found)
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

impl From<AppsError> for ApiError {
    fn from(e: AppsError) -> Self {
        match e {
            AppsError::InvalidName(m) => ApiError::Validation(m),
            AppsError::NotFound(_) => ApiError::NotFound(e.to_string()),
            AppsError::NoRelease(_) => ApiError::NotFound(e.to_string()),
            AppsError::NothingToRollBack(_) => ApiError::Conflict(e.to_string()),
            AppsError::Building(_) => ApiError::Conflict(e.to_string()),
            AppsError::Exists(_) => ApiError::Conflict(e.to_string()),
            // The config handler answers these itself (422 with the limit's code).
            AppsError::Config(_) => ApiError::Validation(e.to_string()),
            AppsError::Store(e) => ApiError::from(e),
            AppsError::Names(e) => ApiError::internal(e),
        }
    }
}

/// Extractor: the caller is an admin (the admin token or a user with role admin).
pub struct Admin;

impl FromRequestParts<Arc<Controller>> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        c: &Arc<Controller>,
    ) -> Result<Self, Self::Rejection> {
        let caller = crate::auth::Caller::from_request_parts(parts, c).await?;
        caller.require_admin()?;
        Ok(Admin)
    }
}

/// Extractor: the request carries a node token (shared or per-node) or an admin's.
pub struct NodeAuth;

impl FromRequestParts<Arc<Controller>> for NodeAuth {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        c: &Arc<Controller>,
    ) -> Result<Self, Self::Rejection> {
        let caller = crate::auth::Caller::from_request_parts(parts, c).await?;
        if caller.is_node() || caller.is_admin() {
            Ok(NodeAuth)
        } else {
            Err(caller.forbid("only nodes can use this endpoint: use a node token"))
        }
    }
}
