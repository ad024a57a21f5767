//! The paas dashboard: askama templates and axum handlers, mounted by the controller at `/`.
//!
//! CONTRACT: the controller implements [`Dashboard`] with its own services (never SQL from
//! here) and mounts [`router`]. The web-ui helper implements the pages and may extend the
//! trait (adding methods) as pages grow.

use std::future::Future;
use std::sync::Arc;

/// What the dashboard needs from the controller.
pub trait Dashboard: Send + Sync + 'static {
    /// Every app, with its current release and URL.
    fn apps(&self) -> impl Future<Output = Result<Vec<paas_api::App>, String>> + Send;
}

/// The dashboard's routes (`/`, static assets under `/static/`).
pub fn router<D: Dashboard>(dashboard: Arc<D>) -> axum::Router {
    let _ = dashboard;
    todo!("web-ui helper")
}
