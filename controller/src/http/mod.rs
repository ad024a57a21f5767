//! The controller's HTTP surface: [`app`] mounts the REST API (`/v1/`), git smart HTTP
//! (`/git/`), the registry (`/v2/`), the build inputs and hook endpoint for agents and git
//! hooks (`/internal/`) and the dashboard (`/`).
//!
//! Every `/v1/` and `/internal/` error is an [`ApiError`] (`crate::api_error`, re-exported
//! here), rendered as `api::ErrorBody` with a stable code; 5xx details are logged, never
//! sent. Submodules: `v1` (apps and nodes) and `internal` (build inputs for agents).

mod access;
mod acme;
mod addons;
#[cfg(test)]
mod api3_tests;
mod api_access;
mod backup_files;
mod builds;
mod certs;
mod config;
mod cron;
pub mod dashboard;
mod dashboard_addons;
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
mod pg;
mod registry_logins;
#[cfg(test)]
mod registry_logins_tests;
mod rename;
mod router_feed;
mod run;
#[cfg(test)]
mod sched_tests;
#[cfg(test)]
mod test_support;
mod v1;
mod volumes;

#[cfg(test)]
mod tests;

pub use crate::api_error::ApiError;
pub(crate) use acme::{acme_status, set_acme};
pub(crate) use backup_files::download as download_backup;
pub(crate) use config::check_destroy_confirmation;
pub(crate) use domains::validate_hostname;
pub(crate) use formation::{change_formation, formation as current_formation, FormationChange};
pub(crate) use jobs::{restart_all, restart_one, stop_one};
pub(crate) use logs::dashboard_stream;
pub(crate) use pg::{attached_addon, attached_backup, backups_list, restore_backup, start_capture};
pub(crate) use rename::rename as rename_app;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use http::request::Parts;

use crate::state::Controller;
use dashboard::ControllerDashboard;

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
        .merge(addons::routes())
        .merge(pg::routes())
        .merge(builds::routes())
        .merge(rename::routes())
        .merge(openapi::routes())
        .merge(deploys::routes())
        .merge(volumes::routes())
        .merge(registry_logins::routes())
        .merge(internal::routes())
        .merge(router_feed::routes())
        .merge(crate::git::routes())
        .with_state(c)
        .merge(registry)
        .merge(dashboard)
        // Paths nothing answers: the dashboard's "not found" page for browsers, a bare 404
        // for everyone else.
        .fallback_service(not_found)
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
