//! [`Caller`]: who sent a request, resolved once from its credentials, and the checks every
//! handler calls: [`Caller::require_admin`], [`Caller::require_app`] and
//! [`Caller::apps_filter`]. Handlers take it as an extractor (`caller: Caller`), or take
//! [`AppAccess`] on `/v1/apps/{app}/…` routes to check the app before the handler runs.
//!
//! Credentials, in order: the admin token (`DATA_DIR/admin-token`, an admin), the shared
//! node token, a per-node token (`paasnode_…`), a user API token (`paas_…`). Every 401 and
//! 403 is logged with the source address, the path and the reason (never the token). A
//! valid credential is accepted before any limit is looked at; bad tokens count against
//! the source's failure budget (see `limit`).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, RawPathParams};
use http::request::Parts;
use http::HeaderMap;

use super::limit::Budget;
use super::tokens::{constant_time_eq, presented_token, BOOTSTRAP_ADMIN};
use crate::api_error::ApiError;
use crate::state::Controller;
use crate::store::UserRow;

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// The admin token from `DATA_DIR/admin-token`.
    AdminToken,
    /// A user through one of their API tokens (`token` is its id).
    User { user: UserRow, token: String },
    /// The shared node token (`None`) or a per-node token issued for that node.
    Node(Option<String>),
}

/// An authenticated request's caller, with where it came from (for the log).
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    pub source: Option<IpAddr>,
    pub path: String,
}

/// Why credentials were refused (before any permission check).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    Missing,
    Invalid,
    /// Too many failures from this source: retry after this many seconds.
    Limited(u64),
    /// The store could not be asked (not the caller's fault; nothing counted).
    Unavailable,
}

impl Caller {
    /// Resolves the credentials in `headers`. A valid credential is always accepted, before
    /// any limit is looked at (tokens are random and cheap to check); a bad one counts
    /// against its source's budget and, once that is used up, is answered 429 instead of
    /// 401 (see `limit`).
    pub async fn resolve(
        c: &Controller,
        headers: &HeaderMap,
        source: Option<IpAddr>,
        path: &str,
    ) -> Result<Caller, AuthFailure> {
        let Some(token) = presented_token(headers) else {
            return Err(AuthFailure::Missing);
        };
        match principal_of(c, &token).await {
            Ok(Some(principal)) => Ok(Caller {
                principal,
                source,
                path: path.to_string(),
            }),
            Ok(None) => {
                let budget = budget_of(&token, path);
                let limited = c.access.check(budget, source);
                c.access.fail(budget, source);
                match limited {
                    Ok(()) => Err(AuthFailure::Invalid),
                    Err(wait) => Err(AuthFailure::Limited(wait.as_secs().max(1))),
                }
            }
            Err(e) => {
                tracing::error!("checking credentials: {e}");
                Err(AuthFailure::Unavailable)
            }
        }
    }

    /// The user name to show (`whoami`) and to record as collaborator.
    pub fn name(&self) -> &str {
        match &self.principal {
            Principal::AdminToken => BOOTSTRAP_ADMIN,
            Principal::User { user, .. } => &user.name,
            Principal::Node(Some(n)) => n,
            Principal::Node(None) => "node",
        }
    }

    /// The signed-in user, when the caller is one (not the admin token, not a node).
    pub fn user(&self) -> Option<&UserRow> {
        match &self.principal {
            Principal::User { user, .. } => Some(user),
            _ => None,
        }
    }

    pub fn is_admin(&self) -> bool {
        match &self.principal {
            Principal::AdminToken => true,
            Principal::User { user, .. } => user.is_admin(),
            Principal::Node(_) => false,
        }
    }

    pub fn is_node(&self) -> bool {
        matches!(self.principal, Principal::Node(_))
    }

    /// Logs a refusal and returns it.
    pub fn forbid(&self, reason: &str) -> ApiError {
        log_refusal(403, self.source, &self.path, reason);
        ApiError::Forbidden(reason.to_string())
    }

    /// Admins only (the admin token or a user with role admin).
    pub fn require_admin(&self) -> Result<(), ApiError> {
        if self.is_admin() {
            Ok(())
        } else if self.is_node() {
            Err(self.forbid("a node token cannot use this endpoint: use an admin token"))
        } else {
            Err(self.forbid("only admins can do this: ask an admin"))
        }
    }

    /// A person (admin or member), not a node.
    pub fn require_person(&self) -> Result<(), ApiError> {
        if self.is_node() {
            Err(self.forbid("a node token cannot use this endpoint: use a user's API token"))
        } else {
            Ok(())
        }
    }

    /// Admins, or members collaborating on `app`. To a member who is not a collaborator
    /// the app does not exist (404, the same answer as for a missing app).
    pub async fn require_app(&self, c: &Controller, app: &str) -> Result<(), ApiError> {
        self.require_person()?;
        if self.is_admin() {
            return Ok(());
        }
        if c.store.is_collaborator(app, self.name()).await? {
            return Ok(());
        }
        log_refusal(
            404,
            self.source,
            &self.path,
            "not a collaborator of the app",
        );
        Err(ApiError::NotFound(format!("no app named {app}")))
    }

    /// True when the caller may use `app` (the same rule as [`Caller::require_app`]).
    pub async fn can_use_app(&self, c: &Controller, app: &str) -> Result<bool, ApiError> {
        if self.is_node() {
            return Ok(false);
        }
        Ok(self.is_admin() || c.store.is_collaborator(app, self.name()).await?)
    }

    /// Whose apps the caller lists: `None` for every app (admins), else the member's own
    /// name, the filter [`crate::store::Store::apps_page`] applies before it cuts a page.
    pub fn apps_filter(&self) -> Result<Option<&str>, ApiError> {
        self.require_person()?;
        Ok((!self.is_admin()).then(|| self.name()))
    }

    /// Records the caller as a collaborator of an app they just created (users only: the
    /// admin token sees every app anyway).
    pub async fn record_creator(&self, c: &Controller, app: &str) -> Result<(), ApiError> {
        if let Some(user) = self.user() {
            c.store.add_collaborator(app, &user.name).await?;
        }
        Ok(())
    }
}

/// Which failure budget a bad credential spends: node and agent traffic has its own.
fn budget_of(token: &str, path: &str) -> Budget {
    let node_path = path == "/v1/nodes/heartbeat"
        || path.starts_with("/internal/")
        || (path.starts_with("/v1/nodes/") && path.ends_with("/subnet"));
    if node_path || token.starts_with(super::password::NODE_TOKEN_PREFIX) {
        Budget::Nodes
    } else {
        Budget::People
    }
}

/// True for `<prefix><64 hex>`, the only shape the store can hold a token of (anything
/// else is refused without a query).
fn secret_shaped(token: &str, prefix: &str) -> bool {
    token
        .strip_prefix(prefix)
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// The principal a token stands for; `Ok(None)` for an unknown, revoked or expired one.
async fn principal_of(
    c: &Controller,
    token: &str,
) -> Result<Option<Principal>, crate::store::StoreError> {
    // Compare both shared tokens so the time taken does not say which came close.
    let is_admin = constant_time_eq(token.as_bytes(), c.tokens.admin().as_bytes());
    let is_node = constant_time_eq(token.as_bytes(), c.tokens.node().as_bytes());
    if is_admin {
        return Ok(Some(Principal::AdminToken));
    }
    if is_node {
        return Ok(Some(Principal::Node(None)));
    }
    if secret_shaped(token, super::password::NODE_TOKEN_PREFIX) {
        return Ok(c
            .store
            .node_for_token(token)
            .await?
            .map(|n| Principal::Node(Some(n))));
    }
    if secret_shaped(token, super::password::TOKEN_PREFIX) {
        return Ok(c
            .store
            .token_user(token)
            .await?
            .map(|(t, user)| Principal::User { user, token: t.id }));
    }
    Ok(None)
}

/// Logs one refused request (never its credentials).
pub fn log_refusal(status: u16, source: Option<IpAddr>, path: &str, reason: &str) {
    let source = source.map_or_else(|| "unknown".to_string(), |s| s.to_string());
    tracing::warn!(status, %source, path, reason, "access refused");
}

/// The source address of a request, when the server was started with connect info.
pub fn source_of(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ci| ci.0.ip())
}

/// Turns an [`AuthFailure`] into the API's answer, logged.
pub fn failure_response(f: AuthFailure, source: Option<IpAddr>, path: &str) -> ApiError {
    match f {
        AuthFailure::Missing => {
            log_refusal(401, source, path, "no credentials");
            ApiError::Unauthorized(
                "a valid token is required: send `Authorization: Bearer <token>` (run \
                 `paas login`, or use DATA_DIR/admin-token)",
            )
        }
        AuthFailure::Invalid => {
            log_refusal(401, source, path, "unknown, revoked or expired token");
            ApiError::Unauthorized(
                "the token is unknown, revoked or expired: run `paas login` for a new one",
            )
        }
        AuthFailure::Limited(secs) => {
            log_refusal(429, source, path, "too many failed logins or bad tokens");
            ApiError::RateLimited(secs)
        }
        AuthFailure::Unavailable => ApiError::Unavailable(
            "the credentials could not be checked (the store did not answer): retry shortly".into(),
        ),
    }
}

impl FromRequestParts<Arc<Controller>> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        c: &Arc<Controller>,
    ) -> Result<Self, Self::Rejection> {
        let source = source_of(parts);
        let path = parts.uri.path().to_string();
        Caller::resolve(c, &parts.headers, source, &path)
            .await
            .map_err(|f| failure_response(f, source, &path))
    }
}

/// Extractor for `/v1/apps/{app}/…` routes: the caller, already checked with
/// [`Caller::require_app`] against the route's `{app}`.
pub struct AppAccess(pub Caller);

impl FromRequestParts<Arc<Controller>> for AppAccess {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        c: &Arc<Controller>,
    ) -> Result<Self, Self::Rejection> {
        let caller = Caller::from_request_parts(parts, c).await?;
        let params = RawPathParams::from_request_parts(parts, c)
            .await
            .map_err(|e| ApiError::internal(format!("reading the route's app: {e}")))?;
        let app = params
            .iter()
            .find(|(k, _)| *k == "app")
            .map(|(_, v)| v.to_string())
            .ok_or_else(|| ApiError::internal("AppAccess used on a route without {app}"))?;
        caller.require_app(c, &app).await?;
        Ok(AppAccess(caller))
    }
}

/// Extractor: the request's source address (when the server has connect info).
pub struct Source(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for Source {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(Source(source_of(parts)))
    }
}
