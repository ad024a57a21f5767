//! The app services the REST API and the dashboard share: listing, creating and describing
//! apps, their releases and builds, in the wire types of `paas-api`.

use std::sync::Arc;

use paas_api::{App, Build, Release};

use crate::scheduler::Snapshot;
use crate::state::Controller;
use crate::store::{AppRow, StoreError};

/// Why an app request failed.
#[derive(Debug, thiserror::Error)]
pub enum AppsError {
    /// The message of `paas_api::names::validate_app_name`.
    #[error("{0}")]
    InvalidName(String),
    #[error("no app named {0}: create it with `paas apps:create {0}` or push to it")]
    NotFound(String),
    #[error("an app named {0} already exists: pick another name")]
    Exists(String),
    #[error(transparent)]
    Store(StoreError),
}

impl From<StoreError> for AppsError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::AppExists(name) => AppsError::Exists(name),
            StoreError::NoApp(name) => AppsError::NotFound(name),
            e => AppsError::Store(e),
        }
    }
}

/// The app status shown by the API and the dashboard: `building` while a build runs,
/// `idle` before the first release, `up` when the router sends traffic to a job of the
/// current release (or a job of it runs, for apps without web), `crashed` when its jobs
/// keep crashing, else `deploying`.
fn status(c: &Controller, app: &AppRow, snap: &Snapshot) -> &'static str {
    if c.is_building(&app.name) {
        return "building";
    }
    let Some(current) = app.current_release else {
        return "idle";
    };
    let of_current = |id: &String| {
        snap.jobs
            .iter()
            .any(|j| &j.id == id && j.app == app.name && j.release == current)
    };
    let routed = snap
        .routed
        .get(&app.name)
        .is_some_and(|ids| ids.iter().any(of_current));
    let running_non_web = snap
        .jobs
        .iter()
        .any(|j| j.app == app.name && j.release == current && j.process_type != "web" && j.healthy);
    if routed || running_non_web {
        "up"
    } else if snap.crashing.contains_key(&(app.name.clone(), current)) {
        "crashed"
    } else {
        "deploying"
    }
}

fn view(c: &Controller, app: AppRow, snap: &Snapshot) -> App {
    App {
        status: status(c, &app, snap).to_string(),
        web_url: c.settings.web_url(&app.name),
        git_url: c.settings.git_url(&app.name),
        current_release: app.current_release,
        created_at: app.created_at,
        name: app.name,
    }
}

/// Every app, by name.
pub async fn list(c: &Arc<Controller>) -> Result<Vec<App>, AppsError> {
    let snap = c.scheduler.snapshot();
    let rows = c.store.list_apps().await?;
    Ok(rows.into_iter().map(|a| view(c, a, &snap)).collect())
}

/// One app; `None` when there is none of that name.
pub async fn get(c: &Arc<Controller>, name: &str) -> Result<Option<App>, AppsError> {
    let snap = c.scheduler.snapshot();
    Ok(c.store.get_app(name).await?.map(|a| view(c, a, &snap)))
}

/// Creates an app after checking its name.
pub async fn create(c: &Arc<Controller>, name: &str) -> Result<App, AppsError> {
    paas_api::names::validate_app_name(name).map_err(AppsError::InvalidName)?;
    let row = c.store.create_app(name).await?;
    c.scheduler.notify();
    Ok(view(c, row, &c.scheduler.snapshot()))
}

/// The releases of an app, newest first.
pub async fn releases(c: &Arc<Controller>, name: &str) -> Result<Vec<Release>, AppsError> {
    if c.store.get_app(name).await?.is_none() {
        return Err(AppsError::NotFound(name.to_string()));
    }
    let rows = c.store.list_releases(name).await?;
    Ok(rows.iter().map(|r| r.to_api()).collect())
}

/// The builds of an app, newest first.
pub async fn builds(c: &Arc<Controller>, name: &str) -> Result<Vec<Build>, AppsError> {
    if c.store.get_app(name).await?.is_none() {
        return Err(AppsError::NotFound(name.to_string()));
    }
    let rows = c.store.list_builds(name).await?;
    Ok(rows.iter().map(|b| b.to_api()).collect())
}
