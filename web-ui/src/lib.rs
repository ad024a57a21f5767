//! The paas dashboard: askama templates and axum handlers, mounted by the controller at `/`.
//!
//! CONTRACT: the controller implements [`Dashboard`] with its own services (never SQL from
//! here) and mounts [`router`]. The web-ui helper implements the pages and may extend the
//! trait (adding methods) as pages grow.
//!
//! Pages (see `docs/dashboard.md`):
//!
//! * `GET /` — every app: name, status, current release, URL, created time; when there are
//!   no apps, how to deploy the first one with `git push`.
//! * `GET /apps/{name}` — one app: URL, git remote, current release and the release list.
//! * `GET /static/app.css` — the stylesheet, embedded in the binary.
//!
//! The routes come in two routers so that the login of a later version can wrap the pages
//! without locking the stylesheet away from the login page:
//! `pages(d).layer(auth).merge(assets())`. [`router`] is that merge without auth.

use std::future::Future;
use std::sync::Arc;

use axum::routing::get;
use paas_api::{App, Release};

mod assets;
mod pages;
mod render;

/// What the dashboard needs from the controller.
///
/// Each method is one question a page asks. Errors are plain strings: the dashboard logs
/// them and shows a generic error page (500), so they may carry internal detail. To grow a
/// page, add a method here and implement it in the controller.
pub trait Dashboard: Send + Sync + 'static {
    /// Every app, with its current release and URL.
    fn apps(&self) -> impl Future<Output = Result<Vec<App>, String>> + Send;

    /// One app by name; `Ok(None)` when there is no app of that name.
    fn app(&self, name: &str) -> impl Future<Output = Result<Option<App>, String>> + Send;

    /// The releases of an existing app, in any order (the page sorts them newest first);
    /// empty when the app has not been deployed yet.
    fn releases(&self, name: &str) -> impl Future<Output = Result<Vec<Release>, String>> + Send;
}

/// The dashboard's routes (`/`, `/apps/{name}`, static assets under `/static/`).
pub fn router<D: Dashboard>(dashboard: Arc<D>) -> axum::Router {
    pages(dashboard).merge(assets())
}

/// The HTML pages only: the part a login layer will protect.
pub fn pages<D: Dashboard>(dashboard: Arc<D>) -> axum::Router {
    axum::Router::new()
        .route("/", get(pages::apps_list::<D>))
        .route("/apps/{name}", get(pages::app_detail::<D>))
        .with_state(dashboard)
}

/// The static assets under `/static/`, public so the login page can use them too.
pub fn assets() -> axum::Router {
    axum::Router::new().route("/static/app.css", get(assets::stylesheet))
}
