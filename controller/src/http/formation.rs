//! `/v1/apps/{app}/formation` (how many processes of each type run, Heroku's shape) and
//! `/v1/apps/{app}/jobs` (the app's running jobs as the scheduler last saw them).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use axum::Router;
use serde::{Deserialize, Serialize};

use super::paging::{page_of, PageQuery};
use super::ApiError;
use crate::apps::AppsError;
use crate::auth::AppAccess;
use crate::scheduler::Phase;
use crate::state::Controller;

/// The most processes of one type an app may ask for.
pub(crate) const MAX_QUANTITY: u32 = 100;

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new()
        .route(
            "/v1/apps/{app}/formation",
            get(get_formation).patch(patch_formation),
        )
        .route("/v1/apps/{app}/jobs", get(list_jobs))
}

/// One process type of the formation.
#[derive(Debug, Serialize)]
pub(crate) struct FormationEntry {
    #[serde(rename = "type")]
    pub(crate) process_type: String,
    pub(crate) quantity: u32,
    /// The size's name (`standard-1x`) or its memory (`768M`): see `paas_api::sizes`.
    pub(crate) size: String,
    /// Each process's memory limit in bytes.
    pub(crate) memory_bytes: u64,
    pub(crate) command: String,
}

/// One entry of a `PATCH`: `{"web": {"quantity": 2}}`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct FormationChange {
    pub(crate) quantity: Option<u32>,
    pub(crate) size: Option<String>,
}

/// One job of the app.
#[derive(Debug, Serialize)]
struct JobEntry {
    id: String,
    #[serde(rename = "type")]
    process_type: String,
    release: u32,
    node: String,
    state: &'static str,
    /// Crashes in a row of this release's jobs (0 when healthy).
    restarts: u32,
    /// Why a `pending` entry (a process that cannot start now) waits.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// The current release's process types with their quantities (0 when not scaled); the
/// REST API and the dashboard both list the formation with it.
pub(crate) async fn formation(c: &Controller, app: &str) -> Result<Vec<FormationEntry>, ApiError> {
    let Some(row) = c.store.get_app(app).await? else {
        return Err(AppsError::NotFound(app.to_string()).into());
    };
    let Some(version) = row.current_release else {
        return Ok(Vec::new());
    };
    let release = c
        .store
        .get_release(app, version)
        .await?
        .ok_or(AppsError::NoRelease(version))?;
    let counts: BTreeMap<String, u32> = c
        .store
        .formations()
        .await?
        .into_iter()
        .filter(|f| f.app == app)
        .map(|f| (f.process_type, f.count))
        .collect();
    let sizes = c.store.formation_memory().await?;
    Ok(release
        .process_types
        .into_iter()
        .map(|(t, command)| {
            let memory_bytes = sizes
                .get(&(app.to_string(), t.clone()))
                .copied()
                .unwrap_or(paas_api::sizes::DEFAULT_BYTES);
            FormationEntry {
                quantity: counts.get(&t).copied().unwrap_or(0),
                process_type: t,
                size: paas_api::sizes::name(memory_bytes),
                memory_bytes,
                command,
            }
        })
        .collect())
}

async fn get_formation(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    Ok(super::etag::json(formation(&c, &app).await?))
}

async fn patch_formation(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    headers: http::HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let _guard = super::etag::lock_if_conditional(&headers).await;
    let changes: BTreeMap<String, FormationChange> =
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the body is not a formation (expected {{\"web\": {{\"quantity\": 2}}}}): {e}"
            ))
        })?;
    let after = change_formation(&c, &app, &changes, Some(&headers)).await?;
    Ok(super::etag::json(after))
}

/// Checks and applies formation changes (the REST API's `PATCH` and the dashboard's scale
/// form both call it, so the rules and messages live here only). With `headers`, their
/// `If-Match` must match the current formation. The formation after the change.
pub(crate) async fn change_formation(
    c: &Controller,
    app: &str,
    changes: &BTreeMap<String, FormationChange>,
    headers: Option<&http::HeaderMap>,
) -> Result<Vec<FormationEntry>, ApiError> {
    let current = formation(c, app).await?;
    if current.is_empty() {
        return Err(ApiError::Conflict(format!(
            "{app} has no release yet: deploy it with `git push` before scaling"
        )));
    }
    if let Some(headers) = headers {
        super::etag::check(headers, &current, "formation")?;
    }
    let types: Vec<&str> = current.iter().map(|f| f.process_type.as_str()).collect();
    for (t, change) in changes {
        if !types.contains(&t.as_str()) {
            return Err(ApiError::Validation(format!(
                "{app} has no process type {t:?}: its release has {}",
                types.join(", ")
            )));
        }
        if let Some(size) = &change.size {
            paas_api::sizes::parse(size).map_err(ApiError::Validation)?;
        }
        if change.quantity.is_some_and(|q| q > MAX_QUANTITY) {
            return Err(ApiError::Validation(format!(
                "at most {MAX_QUANTITY} processes of one type"
            )));
        }
        if let Some(q) = change.quantity {
            let volumes = c.store.volumes(Some(app)).await?;
            crate::volumes::check_scale(&volumes, app, t, q)?;
        }
    }
    for (t, change) in changes {
        if let Some(q) = change.quantity {
            c.store.set_formation(app, t, q).await?;
        }
        let Some(size) = &change.size else { continue };
        let bytes = paas_api::sizes::parse(size).map_err(ApiError::Validation)?;
        let before = current.iter().find(|f| &f.process_type == t);
        if before.is_some_and(|f| f.memory_bytes != bytes) {
            c.store.set_formation_memory(app, t, bytes).await?;
            // The running jobs have the old limit: replace them, zero downtime.
            c.scheduler
                .replace(super::jobs::active_ids(c, app, Some(t)));
        }
    }
    c.scheduler.notify();
    tracing::info!(%app, "formation changed");
    formation(c, app).await
}

async fn list_jobs(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    if c.store.get_app(&app).await?.is_none() {
        return Err(AppsError::NotFound(app).into());
    }
    // The store cuts the page (by type, then id); the scheduler's last look gives the
    // state of the jobs it has seen, the stored state the others'.
    let rows = c
        .store
        .jobs_page(&app, q.after.as_deref(), q.fetch()?)
        .await?;
    let snap = c.scheduler.snapshot();
    let jobs: Vec<JobEntry> = rows
        .into_iter()
        .map(|r| {
            let seen = snap.jobs.iter().find(|j| j.id == r.id);
            let state = match seen {
                Some(j) => match j.phase {
                    Phase::Starting => "starting",
                    Phase::Up if j.healthy => "up",
                    Phase::Up => "unhealthy",
                    Phase::Stopping => "stopping",
                    Phase::Finished => "down",
                },
                None => stored_state(&r.state),
            };
            JobEntry {
                restarts: snap
                    .crashing
                    .get(&(r.app.clone(), r.release))
                    .copied()
                    .unwrap_or(0),
                id: r.id,
                process_type: r.process_type,
                release: r.release,
                node: r.node,
                state,
                reason: None,
            }
        })
        .collect::<Vec<_>>();
    // One-off jobs in progress (`paas run`, app.json cron), as Heroku lists `run.N` beside
    // the formation's: after the last stored job, as many as the page has room for (the
    // store keeps only the formation's jobs, so they never cut a page).
    let mut jobs = jobs;
    let limit = q.fetch()? as usize - 1;
    if jobs.len() <= limit {
        let mut one_offs = one_off_jobs(&c, &app).await?;
        one_offs.extend(waiting_jobs(&c, &app, &snap).await?);
        one_offs.truncate(limit - jobs.len());
        jobs.extend(one_offs);
    }
    page_of(jobs, &q, &format!("/v1/apps/{app}/jobs"), |j| j.id.clone())
}

/// `app`'s one-off jobs in progress (`c.runs`), by id: type `run` or `cron` (from the id,
/// `<app>-<kind>-<hex>`), state `up`, the app's current release.
async fn one_off_jobs(c: &Controller, app: &str) -> Result<Vec<JobEntry>, ApiError> {
    let runs: Vec<(String, String)> = c
        .runs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .filter(|(_, (a, _))| a == app)
        .map(|(id, (_, url))| (id.clone(), url.clone()))
        .collect();
    if runs.is_empty() {
        return Ok(Vec::new());
    }
    let nodes = c.store.list_nodes().await?;
    let release = c
        .store
        .get_app(app)
        .await?
        .and_then(|a| a.current_release)
        .unwrap_or(0);
    let prefix = format!("{app}-");
    let mut jobs: Vec<JobEntry> = runs
        .into_iter()
        .map(|(id, url)| JobEntry {
            process_type: id
                .strip_prefix(&prefix)
                .and_then(|rest| rest.rsplit_once('-'))
                .map_or_else(|| "run".to_string(), |(kind, _)| kind.to_string()),
            release,
            node: nodes
                .iter()
                .find(|n| n.url == url)
                .map_or(url, |n| n.name.clone()),
            state: "up",
            restarts: 0,
            reason: None,
            id,
        })
        .collect();
    jobs.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(jobs)
}

/// A `pending` entry for each process type of `app` that waits for the node holding its
/// volume (see [`crate::volumes`]), id `<type>.pending`, on that node.
async fn waiting_jobs(
    c: &Controller,
    app: &str,
    snap: &crate::scheduler::Snapshot,
) -> Result<Vec<JobEntry>, ApiError> {
    let mut waiting: Vec<(&String, &String)> = snap
        .waiting
        .iter()
        .filter(|((a, _), _)| a == app)
        .map(|((_, t), why)| (t, why))
        .collect();
    if waiting.is_empty() {
        return Ok(Vec::new());
    }
    waiting.sort();
    let volumes = c.store.volumes(Some(app)).await?;
    let release = c
        .store
        .get_app(app)
        .await?
        .and_then(|a| a.current_release)
        .unwrap_or(0);
    Ok(waiting
        .into_iter()
        .map(|(t, why)| JobEntry {
            id: format!("{t}.pending"),
            process_type: t.clone(),
            release,
            node: crate::volumes::pinned_node(&volumes, app, t)
                .unwrap_or("")
                .to_string(),
            state: "pending",
            restarts: 0,
            reason: Some(why.clone()),
        })
        .collect())
}

/// A stored job state as the jobs list names it (for jobs the scheduler has not seen).
fn stored_state(state: &str) -> &'static str {
    use crate::store::job_state;
    match state {
        job_state::PENDING | job_state::STARTING => "starting",
        job_state::UP => "up",
        job_state::STOPPING => "stopping",
        _ => "down",
    }
}
