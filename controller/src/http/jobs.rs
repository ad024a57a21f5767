//! Restarting and stopping jobs: `POST /v1/apps/{app}/jobs/{id}/restart` and `…/stop`,
//! and `POST /v1/apps/{app}/restart[?type=web]` for all of an app's (or one type's) jobs.
//!
//! A restart goes through the scheduler's deploy path: replacements start, the router
//! switches to them once they are healthy, the old ones drain and stop (zero downtime). A
//! stop stops the job now; its formation starts a replacement.

use std::sync::Arc;

use axum::extract::{Path, Query, State};
use axum::routing::post;
use axum::{Json, Router};
use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::apps::AppsError;
use crate::auth::AppAccess;
use crate::state::Controller;

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new()
        .route("/v1/apps/{app}/jobs/{id}/restart", post(restart_job))
        .route("/v1/apps/{app}/jobs/{id}/stop", post(stop_job))
        .route("/v1/apps/{app}/restart", post(restart_app))
}

/// What a restart or stop answers (202: the scheduler carries it out).
#[derive(Debug, Serialize, Deserialize)]
pub struct JobsAction {
    /// `restart` or `stop`.
    pub action: String,
    /// The jobs it applies to.
    pub jobs: Vec<String>,
}

/// `?type=web`
#[derive(Debug, Deserialize)]
pub struct RestartQuery {
    #[serde(rename = "type")]
    pub process_type: Option<String>,
}

/// The ids of `app`'s starting or running jobs (of one type when given).
pub(super) fn active_ids(c: &Controller, app: &str, process_type: Option<&str>) -> Vec<String> {
    c.scheduler
        .snapshot()
        .jobs
        .iter()
        .filter(|j| j.app == app && process_type.is_none_or(|t| j.process_type == t))
        .filter(|j| {
            matches!(
                j.phase,
                crate::scheduler::Phase::Starting | crate::scheduler::Phase::Up
            )
        })
        .map(|j| j.id.clone())
        .collect()
}

async fn app_exists(c: &Controller, app: &str) -> Result<(), ApiError> {
    match c.store.get_app(app).await? {
        Some(_) => Ok(()),
        None => Err(AppsError::NotFound(app.to_string()).into()),
    }
}

/// The job, when it is one of the app's active jobs.
async fn job_of(c: &Controller, app: &str, id: &str) -> Result<String, ApiError> {
    app_exists(c, app).await?;
    if active_ids(c, app, None).iter().any(|j| j == id) {
        Ok(id.to_string())
    } else {
        Err(ApiError::NotFound(format!(
            "{app} has no running job {id}: `paas ps -a {app}` lists its jobs"
        )))
    }
}

/// Restarts one of `app`'s running jobs (the REST API and the dashboard both call it).
pub(crate) async fn restart_one(c: &Controller, app: &str, id: &str) -> Result<String, ApiError> {
    let id = job_of(c, app, id).await?;
    c.scheduler.replace([id.clone()]);
    tracing::info!(%app, job = %id, "job restart asked");
    Ok(id)
}

/// Stops one of `app`'s running jobs now (its formation starts a replacement).
pub(crate) async fn stop_one(c: &Controller, app: &str, id: &str) -> Result<String, ApiError> {
    let id = job_of(c, app, id).await?;
    c.scheduler.stop(id.clone());
    tracing::info!(%app, job = %id, "job stop asked");
    Ok(id)
}

/// Restarts every running job of `app` (of one type when given); a conflict when none
/// runs.
pub(crate) async fn restart_all(
    c: &Controller,
    app: &str,
    process_type: Option<&str>,
) -> Result<Vec<String>, ApiError> {
    app_exists(c, app).await?;
    let ids = active_ids(c, app, process_type);
    if ids.is_empty() {
        let what = process_type.map_or_else(String::new, |t| format!(" of type {t}"));
        return Err(ApiError::Conflict(format!(
            "{app} has no running jobs{what} to restart: scale it up with `paas ps:scale web=1 -a {app}`"
        )));
    }
    c.scheduler.replace(ids.clone());
    tracing::info!(%app, jobs = ids.len(), "restart asked");
    Ok(ids)
}

async fn restart_job(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<JobsAction>), ApiError> {
    Ok(accepted("restart", vec![restart_one(&c, &app, &id).await?]))
}

async fn stop_job(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, id)): Path<(String, String)>,
) -> Result<(StatusCode, Json<JobsAction>), ApiError> {
    Ok(accepted("stop", vec![stop_one(&c, &app, &id).await?]))
}

async fn restart_app(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    Query(q): Query<RestartQuery>,
) -> Result<(StatusCode, Json<JobsAction>), ApiError> {
    let ids = restart_all(&c, &app, q.process_type.as_deref()).await?;
    Ok(accepted("restart", ids))
}

fn accepted(action: &str, jobs: Vec<String>) -> (StatusCode, Json<JobsAction>) {
    (
        StatusCode::ACCEPTED,
        Json(JobsAction {
            action: action.into(),
            jobs,
        }),
    )
}
