//! The app services the REST API and the dashboard share: listing, creating and describing
//! apps, their releases and builds, in the wire types of `paas-api`.

use std::collections::BTreeMap;
use std::sync::Arc;

use paas_api::{App, Build, Release};

use crate::api_error::ApiError;
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
    #[error("no release v{0}: see `paas releases` for the versions")]
    NoRelease(u32),
    #[error("{0} has no earlier release to roll back to: deploy it with `git push` first")]
    NothingToRollBack(String),
    #[error("{0} is building: wait for the build to finish, then destroy it")]
    Building(String),
    /// A config value (or the whole config) the limits refuse: nothing was changed.
    #[error("{0}")]
    Config(#[from] paas_api::config_vars::ConfigVarError),
    #[error(transparent)]
    Store(StoreError),
    /// Moving or deleting what is keyed by the app's name failed (see `names`).
    #[error(transparent)]
    Names(crate::names::NamesError),
}

impl From<crate::names::NamesError> for AppsError {
    fn from(e: crate::names::NamesError) -> Self {
        match e {
            crate::names::NamesError::Store(e) => AppsError::from(e),
            e => AppsError::Names(e),
        }
    }
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

/// How the API answers each: 404 for what is not there, 409 for a conflict, 422 for a bad
/// name or config.
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

/// The app status shown by the API and the dashboard: `building` while a build runs,
/// `idle` before the first release or while no job of the app runs at all (a formation
/// that starts nothing), `up` when the router sends traffic to a job of the
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
    } else if !snap.jobs.iter().any(|j| j.app == app.name) {
        // Nothing runs: a release whose formation starts nothing (worker=0, no types).
        "idle"
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

/// One page of the apps list, by name: at most `limit` apps after the app `after` when
/// given. `member`: only that user's apps (see `Caller::apps_filter`); the store filters
/// before it cuts, so every page but the last is full.
pub async fn page(
    c: &Arc<Controller>,
    member: Option<&str>,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<App>, AppsError> {
    let snap = c.scheduler.snapshot();
    let rows = c.store.apps_page(member, after, limit).await?;
    Ok(rows.into_iter().map(|a| view(c, a, &snap)).collect())
}

/// One app; `None` when there is none of that name.
pub async fn get(c: &Arc<Controller>, name: &str) -> Result<Option<App>, AppsError> {
    let snap = c.scheduler.snapshot();
    Ok(c.store.get_app(name).await?.map(|a| view(c, a, &snap)))
}

/// Creates an app after checking its name; it starts empty (see `names::fresh_start`).
pub async fn create(c: &Arc<Controller>, name: &str) -> Result<App, AppsError> {
    paas_api::names::validate_app_name(name).map_err(AppsError::InvalidName)?;
    let row = c.store.create_app(name).await?;
    crate::names::fresh_start(c, name).await?;
    c.scheduler.notify();
    Ok(view(c, row, &c.scheduler.snapshot()))
}

/// One page of an app's releases, newest first: at most `limit`, older than release
/// `after` when given (a key that names no release of the app gives an empty page). The
/// database cuts the page.
pub async fn releases(
    c: &Arc<Controller>,
    name: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<Release>, AppsError> {
    if c.store.get_app(name).await?.is_none() {
        return Err(AppsError::NotFound(name.to_string()));
    }
    let after = match after.map(str::parse::<u32>) {
        None => None,
        Some(Ok(v)) => Some(v),
        Some(Err(_)) => return Ok(Vec::new()),
    };
    let rows = c.store.releases_page(name, after, limit).await?;
    let statuses = c.store.release_statuses(name).await?;
    Ok(rows
        .iter()
        .map(|r| with_status(r.to_api(), statuses.get(&r.version)))
        .collect())
}

/// A release with its deploy status (`unknown` when it has no record).
fn with_status(mut release: Release, status: Option<&crate::store::ReleaseStatus>) -> Release {
    use crate::store::release_status::UNKNOWN;
    release.status = Some(status.map_or(UNKNOWN, |s| s.status.as_str()).to_string());
    release.status_reason = status.and_then(|s| s.reason.clone());
    release
}

/// One page of an app's builds, newest first: at most `limit`, after the build `after`.
pub async fn builds(
    c: &Arc<Controller>,
    name: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<Build>, AppsError> {
    if c.store.get_app(name).await?.is_none() {
        return Err(AppsError::NotFound(name.to_string()));
    }
    let rows = c.store.builds_page(name, after, limit).await?;
    Ok(rows.iter().map(|b| b.to_api()).collect())
}

/// The app's config vars (the stored ones, which the next release and build get).
pub async fn config(
    c: &Arc<Controller>,
    name: &str,
) -> Result<BTreeMap<String, String>, AppsError> {
    if c.store.get_app(name).await?.is_none() {
        return Err(AppsError::NotFound(name.to_string()));
    }
    Ok(c.store.config_vars(name).await?)
}

/// Sets (`Some`) and unsets (`None`) config vars, Heroku-style. Keys must already be
/// valid; values are checked here against the limits of `paas_api::config_vars` (no NUL,
/// 32 KB each, 64 KB in all), in the store's transaction, so nothing that would break a
/// later release is stored ([`AppsError::Config`], nothing changed). When the app has a
/// release, a new release copies it with the new config
/// ("Set A, B" / "Unset C") and the scheduler rolls it out; before the first release
/// the vars are only stored (the first build and release get them). Returns the new
/// config and the new release's version, if one was made.
pub async fn set_config(
    c: &Arc<Controller>,
    name: &str,
    changes: &BTreeMap<String, Option<String>>,
) -> Result<(BTreeMap<String, String>, Option<u32>), AppsError> {
    let set: Vec<&str> = changes
        .iter()
        .filter(|(_, v)| v.is_some())
        .map(|(k, _)| k.as_str())
        .collect();
    let unset: Vec<&str> = changes
        .iter()
        .filter(|(_, v)| v.is_none())
        .map(|(k, _)| k.as_str())
        .collect();
    let mut parts = Vec::new();
    if !set.is_empty() {
        parts.push(format!("Set {}", set.join(", ")));
    }
    if !unset.is_empty() {
        parts.push(format!("Unset {}", unset.join(", ")));
    }
    // The vars and the release that carries them in one transaction: a concurrent change
    // waits for this one (or gets a 409), never a release number twice.
    let changed = c
        .store
        .change_config_and_release(
            name,
            changes,
            paas_api::config_vars::check_change,
            parts.join("; "),
        )
        .await??;
    let version = changed.release.map(|r| r.version);
    if version.is_some() {
        // Pending until the scheduler sees it serve (or fail to start): never `succeeded`
        // on faith. It keeps the health check of the release it copies.
        c.scheduler.notify();
    }
    Ok((changed.config, version))
}

/// One release of an app.
pub async fn release(c: &Arc<Controller>, name: &str, version: u32) -> Result<Release, AppsError> {
    if c.store.get_app(name).await?.is_none() {
        return Err(AppsError::NotFound(name.to_string()));
    }
    let status = c.store.release_status(name, version).await?;
    c.store
        .get_release(name, version)
        .await?
        .map(|r| with_status(r.to_api(), status.as_ref()))
        .ok_or(AppsError::NoRelease(version))
}

/// Rolls back to release `to` (default: the one before the current): a new release with
/// its image, process types and config, "Rollback to vN". The app's stored config vars
/// become that release's, so the next build keeps them.
pub async fn rollback(
    c: &Arc<Controller>,
    name: &str,
    to: Option<u32>,
) -> Result<Release, AppsError> {
    let Some(app) = c.store.get_app(name).await? else {
        return Err(AppsError::NotFound(name.to_string()));
    };
    if app.current_release.is_none() {
        return Err(AppsError::NothingToRollBack(name.to_string()));
    }
    // The target, the config vars and the new release in one transaction.
    let Some(made) = c.store.rollback_release(name, to).await? else {
        return Err(match to {
            Some(v) => AppsError::NoRelease(v),
            None => AppsError::NothingToRollBack(name.to_string()),
        });
    };
    c.scheduler.notify();
    release(c, name, made.version).await
}

/// Destroys an app: refused while it builds; everything keyed by its name goes with it
/// (store rows, registry and git repositories, router history, one-off jobs, the build
/// cache on the nodes: see `names::destroy`), and the scheduler stops its jobs.
pub async fn destroy(c: &Arc<Controller>, name: &str) -> Result<(), AppsError> {
    if c.store.get_app(name).await?.is_none() {
        return Err(AppsError::NotFound(name.to_string()));
    }
    if c.is_building(name) {
        return Err(AppsError::Building(name.to_string()));
    }
    crate::names::destroy(c, name).await?;
    Ok(())
}
