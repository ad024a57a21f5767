//! The paas dashboard: askama templates and axum handlers, mounted by the controller at `/`.
//!
//! CONTRACT: the controller implements [`Dashboard`] with its own services (never SQL from
//! here) and mounts [`router`]. The web-ui helper implements the pages and may extend the
//! trait (adding methods) as pages grow.
//!
//! Pages (see `docs/dashboard.md`): `/login`, `/` (apps, paged), `/apps/{name}` (releases,
//! formation, jobs, config, volumes, add-ons and their backups, domains and automatic
//! certificates, builds, live logs, charts, rename and destroy),
//! `/apps/{name}/builds/{id}`, `/nodes`. Every page but `/login` needs a session (a signed
//! cookie, see [`session`]) whose user the controller still knows; every POST form carries
//! the session's CSRF token. Access: `/apps/{name}/…` asks [`Dashboard::authorize`] for
//! [`Need::App`] before the handler runs (a refusal is the 404 page, as in the REST API),
//! `/nodes…` for [`Need::Admin`] (403). Static assets under `/static/` stay public so the
//! login page can use them. Error pages (404, 403, 400, 500, and unknown paths through
//! [`not_found`]) keep the layout: nav bar, user and logout with a session, a "Log in"
//! link without one (`layout.rs`).

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Arc;

use axum::routing::{get, post};
use paas_api::{App, Build, Release};

mod actions;
mod addons;
mod assets;
mod auth;
mod layout;
mod login;
mod nodes;
mod pages;
mod render;
pub mod session;

pub use auth::Viewer;

/// The user a session belongs to, as the controller knows them now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    pub name: String,
    /// Role admin: every app, the nodes page. Members see only their apps.
    pub admin: bool,
}

/// What a login attempt came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LoginOutcome {
    /// The password matched.
    User(SessionUser),
    /// Unknown user or wrong password (the controller counted and logged the failure).
    Wrong,
    /// Too many failed logins from this source: retry after this many seconds.
    Limited(u64),
}

/// What a page or form needs from the viewer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need<'a> {
    /// Use this app (admins, or members collaborating on it).
    App(&'a str),
    /// Admins only (the nodes page and its drain buttons).
    Admin,
}

/// Why the controller refused a [`Need`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The app does not exist for this viewer (404, the same answer as a missing app).
    NotFound(String),
    /// Not allowed (403); the message says why.
    Forbidden(String),
    /// The check itself failed: logged, a 500 page.
    Internal(String),
}

/// Why a change the user asked for did not happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ActionError {
    /// Bad input or a refused change: the message is shown to the user next to the form.
    User(String),
    /// Something broke: logged, never shown.
    Internal(String),
}

/// One process type of an app's formation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProcessType {
    pub name: String,
    pub command: String,
    pub quantity: u32,
}

/// One job of an app as the dashboard shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct JobInfo {
    pub id: String,
    pub process_type: String,
    pub release: u32,
    pub node: String,
    /// starting, up, unhealthy, stopping, down
    pub state: String,
    /// Crashes in a row of this release's jobs.
    pub restarts: u32,
    /// RFC 3339, when the job was created.
    pub started_at: Option<String>,
    /// Why the job's last run ended, when it did.
    pub exit_reason: Option<String>,
}

/// One node with its capacity and use.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeInfo {
    pub name: String,
    pub url: String,
    /// up, down, draining
    pub state: String,
    pub memory_bytes: u64,
    /// Memory the scheduler reserved for the node's jobs.
    pub reserved_bytes: u64,
    /// Memory the node's jobs use now (from the last heartbeat's stats).
    pub used_bytes: u64,
    pub last_seen: String,
    /// `app/type` of each job on the node.
    pub jobs: Vec<String>,
}

/// One persistent volume of an app (docs/volumes.md).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Volume {
    pub name: String,
    pub size_bytes: u64,
    /// What its files use; `None` while its node cannot be asked (down).
    pub used_bytes: Option<u64>,
    /// Writes fail with ENOSPC.
    pub full: bool,
    pub node: String,
    /// up, draining, down
    pub node_state: String,
    /// (process type, path) when mounted.
    pub mount: Option<(String, String)>,
}

/// One add-on attached to an app (docs/addons.md).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddonInfo {
    /// Unique across the platform, e.g. `postgresql-shop-1a2b`.
    pub name: String,
    /// `postgresql` or `redis`.
    pub service: String,
    pub plan: String,
    /// The app that made it (only it destroys the add-on).
    pub owner: String,
    /// creating, starting, available, crashed, unavailable
    pub state: String,
    /// Why it is not available, when it is not.
    pub state_reason: Option<String>,
    /// The node its data lives on.
    pub node: Option<String>,
    /// The config var that holds its URL on this app (`DATABASE_URL`).
    pub attached_as: Option<String>,
    /// What its data takes on its node's disk; `None` while unknown (not measured yet, or
    /// its node is down).
    pub data_bytes: Option<u64>,
    /// RFC 3339.
    pub created_at: String,
}

/// A service add-ons can be made of, with its plans (`mini` …) and their limits.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddonService {
    pub name: String,
    /// (plan, "256 MiB, 0.5 CPU") in the order to offer them.
    pub plans: Vec<(String, String)>,
    pub default_plan: String,
}

/// One backup of an add-on (a `pg_dump` or a Redis RDB snapshot).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddonBackup {
    pub id: String,
    pub addon: String,
    pub size_bytes: u64,
    /// running, completed, failed
    pub state: String,
    /// Why it failed.
    pub error: Option<String>,
    /// RFC 3339.
    pub created_at: String,
}

/// An app's automatic certificates (ACME, `paas certs:auto`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AcmeInfo {
    /// The app asked for them.
    pub enabled: bool,
    /// The controller has an ACME CA configured (without one they cannot be turned on).
    pub available: bool,
    /// Each custom domain's certificate while they are on.
    pub domains: Vec<AcmeDomain>,
}

/// The automatic certificate of one custom domain.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AcmeDomain {
    pub hostname: String,
    /// pending, issued, failed
    pub state: String,
    /// Why the last order failed (empty otherwise).
    pub reason: String,
    /// RFC 3339 expiry of the issued certificate (empty when none).
    pub not_after: String,
}

/// CPU and memory samples of one job, oldest first.
#[derive(Debug, Clone, PartialEq, Default, serde::Serialize)]
pub struct JobSeries {
    pub job_id: String,
    pub process_type: String,
    /// Unix milliseconds.
    pub at_ms: Vec<i64>,
    /// CPU use between two samples, percent of one core.
    pub cpu_percent: Vec<f64>,
    pub memory_bytes: Vec<u64>,
}

/// What the dashboard needs from the controller.
///
/// Each method is one question a page asks or one change a form makes. Errors of the
/// questions are plain strings: the dashboard logs them and shows a generic error page
/// (500), so they may carry internal detail. Changes answer [`ActionError`]: `User` is shown
/// next to the form. To grow a page, add a method here and implement it in the controller.
pub trait Dashboard: Send + Sync + 'static {
    /// The user a valid session cookie names, as of now: `Ok(None)` when the user is gone
    /// (the session ends). Asked on every request, so role changes apply at once.
    fn user(&self, name: &str) -> impl Future<Output = Result<Option<SessionUser>, String>> + Send;

    /// Checks that `viewer` may have `need`; the controller logs refusals.
    fn authorize(
        &self,
        viewer: &Viewer,
        need: Need<'_>,
    ) -> impl Future<Output = Result<(), Refusal>> + Send;

    /// One page of the apps `viewer` may see (admins: every app), by name, with current
    /// release and URL: at most `limit`, after the app `after` when given (an `after` that
    /// is not one of them gives an empty page). The controller filters before it cuts, so
    /// every page but the last is full.
    fn apps(
        &self,
        viewer: &Viewer,
        after: Option<&str>,
        limit: u32,
    ) -> impl Future<Output = Result<Vec<App>, String>> + Send;

    /// One app by name; `Ok(None)` when there is no app of that name.
    fn app(&self, name: &str) -> impl Future<Output = Result<Option<App>, String>> + Send;

    /// The releases of an existing app, in any order (the page sorts them newest first);
    /// empty when the app has not been deployed yet.
    fn releases(&self, name: &str) -> impl Future<Output = Result<Vec<Release>, String>> + Send;

    /// The key that signs session cookies (at least 32 bytes; keep it across restarts so
    /// sessions survive them).
    fn session_key(&self) -> Vec<u8>;

    /// Checks a user name and password sent from `source`, with the same failure limit
    /// (per source address) and refusal log as the API's logins.
    fn login(
        &self,
        user: &str,
        password: &str,
        source: Option<IpAddr>,
    ) -> impl Future<Output = Result<LoginOutcome, String>> + Send;

    /// Creates an app (the name is checked by the controller); a member becomes its
    /// collaborator.
    fn create_app(
        &self,
        viewer: &Viewer,
        name: &str,
    ) -> impl Future<Output = Result<App, ActionError>> + Send;

    /// Renames an app; the renamed app.
    fn rename_app(
        &self,
        app: &str,
        new_name: &str,
    ) -> impl Future<Output = Result<App, ActionError>> + Send;

    /// Destroys an app; `confirm` must be its name typed again.
    fn destroy_app(
        &self,
        app: &str,
        confirm: &str,
    ) -> impl Future<Output = Result<(), ActionError>> + Send;

    /// Restarts one job (zero downtime: a replacement starts first).
    fn restart_job(
        &self,
        app: &str,
        job: &str,
    ) -> impl Future<Output = Result<(), ActionError>> + Send;

    /// Stops one job now (its formation starts a replacement).
    fn stop_job(
        &self,
        app: &str,
        job: &str,
    ) -> impl Future<Output = Result<(), ActionError>> + Send;

    /// Restarts every running job of one process type.
    fn restart_type(
        &self,
        app: &str,
        process_type: &str,
    ) -> impl Future<Output = Result<(), ActionError>> + Send;

    /// The current release's process types with their quantities.
    fn formation(&self, app: &str)
        -> impl Future<Output = Result<Vec<ProcessType>, String>> + Send;

    /// Sets how many processes of one type run.
    fn scale(
        &self,
        app: &str,
        process_type: &str,
        quantity: u32,
    ) -> impl Future<Output = Result<(), ActionError>> + Send;

    /// The app's jobs.
    fn jobs(&self, app: &str) -> impl Future<Output = Result<Vec<JobInfo>, String>> + Send;

    /// The app's config vars.
    fn config(
        &self,
        app: &str,
    ) -> impl Future<Output = Result<BTreeMap<String, String>, String>> + Send;

    /// Sets (`Some`) or unsets (`None`) config vars; the new release's version, if one was
    /// made. A bad key is an [`ActionError::User`].
    fn set_config(
        &self,
        app: &str,
        changes: BTreeMap<String, Option<String>>,
    ) -> impl Future<Output = Result<Option<u32>, ActionError>> + Send;

    /// Rolls back to release `version` (a new release).
    fn rollback(
        &self,
        app: &str,
        version: u32,
    ) -> impl Future<Output = Result<Release, ActionError>> + Send;

    /// The app's custom domains.
    fn domains(&self, app: &str) -> impl Future<Output = Result<Vec<String>, String>> + Send;

    /// Adds a custom domain.
    fn add_domain(
        &self,
        app: &str,
        hostname: &str,
    ) -> impl Future<Output = Result<(), ActionError>> + Send;

    /// Removes a custom domain.
    fn remove_domain(
        &self,
        app: &str,
        hostname: &str,
    ) -> impl Future<Output = Result<(), ActionError>> + Send;

    /// The app's persistent volumes (none unless the controller has them).
    fn volumes(&self, app: &str) -> impl Future<Output = Result<Vec<Volume>, String>> + Send {
        let _ = app;
        async { Ok(Vec::new()) }
    }

    /// Creates a volume of `size` (`1G`) on a node the controller picks.
    fn create_volume(
        &self,
        app: &str,
        name: &str,
        size: &str,
    ) -> impl Future<Output = Result<(), ActionError>> + Send {
        let _ = (app, name, size);
        async { Err(ActionError::User("volumes are not available here".into())) }
    }

    /// Mounts a volume into the processes of one type at `path`.
    fn mount_volume(
        &self,
        app: &str,
        name: &str,
        process_type: &str,
        path: &str,
    ) -> impl Future<Output = Result<(), ActionError>> + Send {
        let _ = (app, name, process_type, path);
        async { Err(ActionError::User("volumes are not available here".into())) }
    }

    /// Unmounts a volume (its files stay).
    fn unmount_volume(
        &self,
        app: &str,
        name: &str,
    ) -> impl Future<Output = Result<(), ActionError>> + Send {
        let _ = (app, name);
        async { Err(ActionError::User("volumes are not available here".into())) }
    }

    /// Destroys an unmounted volume and its files; `confirm` must be the app's name.
    fn destroy_volume(
        &self,
        app: &str,
        name: &str,
        confirm: &str,
    ) -> impl Future<Output = Result<(), ActionError>> + Send {
        let _ = (app, name, confirm);
        async { Err(ActionError::User("volumes are not available here".into())) }
    }

    /// The add-ons attached to the app, as `viewer` may see them.
    fn addons(
        &self,
        viewer: &Viewer,
        app: &str,
    ) -> impl Future<Output = Result<Vec<AddonInfo>, String>> + Send {
        let _ = (viewer, app);
        async { Ok(Vec::new()) }
    }

    /// The services and plans the create form offers (none: no form).
    fn addon_services(&self) -> Vec<AddonService> {
        Vec::new()
    }

    /// The backups of the add-ons attached to the app, any order.
    fn addon_backups(
        &self,
        app: &str,
    ) -> impl Future<Output = Result<Vec<AddonBackup>, String>> + Send {
        let _ = app;
        async { Ok(Vec::new()) }
    }

    /// Creates an add-on of `service` and `plan` (empty: the default) for the app.
    fn create_addon(
        &self,
        viewer: &Viewer,
        app: &str,
        service: &str,
        plan: &str,
    ) -> impl Future<Output = Result<(), ActionError>> + Send {
        let _ = (viewer, app, service, plan);
        async { Err(ActionError::User("add-ons are not available here".into())) }
    }

    /// Starts a backup of the add-on `addon` attached to the app (it runs on; the list
    /// shows it `running` until it ends).
    fn capture_backup(
        &self,
        app: &str,
        addon: &str,
    ) -> impl Future<Output = Result<(), ActionError>> + Send {
        let _ = (app, addon);
        async { Err(ActionError::User("add-ons are not available here".into())) }
    }

    /// Restores backup `id` into its own add-on (attached to the app), replacing its data;
    /// `confirm` must be the app's name. Answers once the restore has ended.
    fn restore_backup(
        &self,
        viewer: &Viewer,
        app: &str,
        id: &str,
        confirm: &str,
    ) -> impl Future<Output = Result<(), ActionError>> + Send {
        let _ = (viewer, app, id, confirm);
        async { Err(ActionError::User("add-ons are not available here".into())) }
    }

    /// Attaches the add-on `addon` of another app to this app, its URL set as `<AS>_URL`
    /// (`as_name` empty: the service's default var); `viewer` must be allowed to use the
    /// add-on's own app too (else the add-on is answered like a missing one).
    fn attach_addon(
        &self,
        viewer: &Viewer,
        app: &str,
        addon: &str,
        as_name: &str,
    ) -> impl Future<Output = Result<(), ActionError>> + Send {
        let _ = (viewer, app, addon, as_name);
        async { Err(ActionError::User("add-ons are not available here".into())) }
    }

    /// Detaches the add-on `addon` (of another app) from this app; its URL var is unset.
    fn detach_addon(
        &self,
        app: &str,
        addon: &str,
    ) -> impl Future<Output = Result<(), ActionError>> + Send {
        let _ = (app, addon);
        async { Err(ActionError::User("add-ons are not available here".into())) }
    }

    /// The file of completed backup `id` of an add-on attached to the app, as a download
    /// (the bytes `GET /v1/apps/{app}/pg-backups/{id}/download` answers). A backup the app
    /// has no add-on of is an [`ActionError::User`] (shown as "not found").
    fn download_backup(
        &self,
        app: &str,
        id: &str,
    ) -> impl Future<Output = Result<axum::response::Response, ActionError>> + Send {
        let _ = (app, id);
        async { Err(ActionError::User("add-ons are not available here".into())) }
    }

    /// Destroys an add-on of the app with its data and backups; `confirm` must be the
    /// app's name.
    fn destroy_addon(
        &self,
        app: &str,
        addon: &str,
        confirm: &str,
    ) -> impl Future<Output = Result<(), ActionError>> + Send {
        let _ = (app, addon, confirm);
        async { Err(ActionError::User("add-ons are not available here".into())) }
    }

    /// The app's automatic certificates: on or off, and each custom domain's state.
    fn acme(&self, app: &str) -> impl Future<Output = Result<AcmeInfo, String>> + Send;

    /// Turns automatic certificates on or off (the REST `PUT …/acme` function); turning
    /// them on without an ACME CA is an [`ActionError::User`].
    fn set_acme(
        &self,
        app: &str,
        enabled: bool,
    ) -> impl Future<Output = Result<(), ActionError>> + Send;

    /// The app's builds, any order (the page sorts newest first).
    fn builds(&self, app: &str) -> impl Future<Output = Result<Vec<Build>, String>> + Send;

    /// One build's log; `Ok(None)` when the app has no such build.
    fn build_log(
        &self,
        app: &str,
        build_id: &str,
    ) -> impl Future<Output = Result<Option<(Build, String)>, String>> + Send;

    /// The app's live log as Server-Sent Events (recent lines, then new ones as they come).
    fn log_stream(
        &self,
        app: &str,
    ) -> impl Future<Output = Result<axum::response::Response, String>> + Send;

    /// Recent CPU and memory samples of the app's jobs.
    fn stats(&self, app: &str) -> impl Future<Output = Result<Vec<JobSeries>, String>> + Send;

    /// Every node with its capacity, use and jobs.
    fn nodes(&self) -> impl Future<Output = Result<Vec<NodeInfo>, String>> + Send;

    /// Drains (`true`) or undrains a node.
    fn set_draining(
        &self,
        node: &str,
        draining: bool,
    ) -> impl Future<Output = Result<(), ActionError>> + Send;
}

/// Everything: the login routes, the protected pages and the public assets.
pub fn router<D: Dashboard>(dashboard: Arc<D>) -> axum::Router {
    pages(dashboard).merge(assets())
}

/// The HTML pages and form actions (each handler checks the session itself; the login
/// routes are the only ones that do not need one).
pub fn pages<D: Dashboard>(dashboard: Arc<D>) -> axum::Router {
    axum::Router::new()
        .route("/login", get(login::form::<D>).post(login::submit::<D>))
        .route("/logout", post(login::logout::<D>))
        .route("/", get(pages::apps_list::<D>))
        .route("/apps", post(actions::create_app::<D>))
        .route("/apps/{name}", get(pages::app_detail::<D>))
        .route("/apps/{name}/rollback", post(actions::rollback::<D>))
        .route("/apps/{name}/scale", post(actions::scale::<D>))
        .route("/apps/{name}/config", post(actions::set_config::<D>))
        .route(
            "/apps/{name}/config/unset",
            post(actions::unset_config::<D>),
        )
        .route("/apps/{name}/domains", post(actions::add_domain::<D>))
        .route(
            "/apps/{name}/domains/remove",
            post(actions::remove_domain::<D>),
        )
        .route("/apps/{name}/acme", post(actions::set_acme::<D>))
        .route("/apps/{name}/volumes", post(actions::create_volume::<D>))
        .route(
            "/apps/{name}/volumes/mount",
            post(actions::mount_volume::<D>),
        )
        .route(
            "/apps/{name}/volumes/unmount",
            post(actions::unmount_volume::<D>),
        )
        .route(
            "/apps/{name}/volumes/destroy",
            post(actions::destroy_volume::<D>),
        )
        .route("/apps/{name}/addons", post(addons::create::<D>))
        .route("/apps/{name}/addons/capture", post(addons::capture::<D>))
        .route("/apps/{name}/addons/restore", post(addons::restore::<D>))
        .route("/apps/{name}/addons/destroy", post(addons::destroy::<D>))
        .route("/apps/{name}/addons/attach", post(addons::attach::<D>))
        .route("/apps/{name}/addons/detach", post(addons::detach::<D>))
        .route(
            "/apps/{name}/addons/backups/{id}/download",
            get(addons::download::<D>),
        )
        .route("/apps/{name}/rename", post(actions::rename::<D>))
        .route("/apps/{name}/destroy", post(actions::destroy::<D>))
        .route("/apps/{name}/restart", post(actions::restart_type::<D>))
        .route(
            "/apps/{name}/jobs/{id}/restart",
            post(actions::restart_job::<D>),
        )
        .route("/apps/{name}/jobs/{id}/stop", post(actions::stop_job::<D>))
        .route("/apps/{name}/builds/{id}", get(pages::build_detail::<D>))
        .route("/apps/{name}/logs/stream", get(pages::log_stream::<D>))
        .route("/apps/{name}/stats.json", get(pages::stats::<D>))
        .route("/nodes", get(nodes::list::<D>))
        .route("/nodes/{name}/drain", post(nodes::drain::<D>))
        .route("/nodes/{name}/undrain", post(nodes::undrain::<D>))
        .route_layer(axum::middleware::from_fn_with_state(
            Arc::clone(&dashboard),
            layout::errors_in_layout::<D>,
        ))
        .with_state(dashboard)
}

/// The "not found" page for every path nothing else answers, inside the dashboard's
/// layout (with the nav bar and logout when there is a session). Mount it as the
/// fallback of the whole server (`Router::fallback_service`); clients that do not ask for
/// HTML (API, git, registry) get a plain 404.
pub fn not_found<D: Dashboard>(dashboard: Arc<D>) -> axum::Router {
    axum::Router::new()
        .fallback(layout::not_found::<D>)
        .with_state(dashboard)
}

/// The static assets under `/static/`, public so the login page can use them too.
pub fn assets() -> axum::Router {
    axum::Router::new()
        .route("/static/app.css", get(assets::stylesheet))
        .route("/static/app.js", get(assets::script))
}
