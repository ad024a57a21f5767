//! One-off jobs (`paas run -a APP -- CMD`): a job from the app's current release with its
//! config, output streamed to the caller, removed at the end with its exit code.
//!
//! * `POST /v1/apps/{app}/run` `{"command": "…"}` → `201 {"id", "node"}` once the process
//!   runs (on the up, non-draining node with the fewest jobs);
//! * `GET /v1/apps/{app}/run/{id}/output` → `text/plain`, stdout+stderr as they come, until
//!   the process ends;
//! * `DELETE /v1/apps/{app}/run/{id}` → stops it if it still runs, removes it, and answers
//!   `{"id", "exit_code", "reason"}` (`exit_code` 128+signal when killed, 1 when unknown).
//!
//! * `POST /v1/apps/{app}/run/attach` (upgrade, see [`super::exec`]) → the interactive
//!   form: stdin and an optional TTY over the exec stream.
//!
//! One-off jobs are labelled `paas.kind=run`, so the scheduler neither counts nor adopts
//! them.

use std::sync::Arc;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures_util::TryStreamExt;
use http::StatusCode;
use paas_api::JobState;
use serde::Deserialize;
use serde_json::json;

use super::ApiError;
use crate::auth::AppAccess;
use crate::scheduler::{labels, process_job_spec};
use crate::state::{Controller, NODE_TIMEOUT_MS};
use crate::util::{random_hex, unix_ms};

/// The `paas.kind` label of one-off jobs.
pub const KIND_RUN: &str = "run";
const STOP_GRACE_SECONDS: u64 = 5;

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new()
        .route("/v1/apps/{app}/run", post(start))
        .route("/v1/apps/{app}/run/{id}/output", get(output))
        .route("/v1/apps/{app}/run/{id}", axum::routing::delete(finish))
}

#[derive(Debug, Deserialize)]
struct RunRequest {
    command: String,
}

/// The node URL of a one-off job of `app`, checking the id belongs to it.
fn node_of(c: &Controller, app: &str, id: &str) -> Result<String, ApiError> {
    let runs = c.runs.lock().unwrap_or_else(|e| e.into_inner());
    match runs.get(id) {
        Some((a, url)) if a == app => Ok(url.clone()),
        _ => Err(ApiError::NotFound(format!("no one-off job {id} of {app}"))),
    }
}

async fn start(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: RunRequest = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!("the body must be {{\"command\": \"…\"}}: {e}"))
    })?;
    if req.command.trim().is_empty() {
        return Err(ApiError::Validation(
            "no command: give one, e.g. paas run -a APP -- ls -la".into(),
        ));
    }
    // Plain words run as they are (an image without a shell runs them too).
    let spec_cmd = crate::scheduler::command::one_off_argv(&req.command);
    let (id, node, _) = start_one_off(&c, &app, spec_cmd, KIND_RUN).await?;
    Ok((StatusCode::CREATED, Json(json!({ "id": id, "node": node }))).into_response())
}

async fn output(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    let url = node_of(&c, &app, &id)?;
    let resp =
        c.agents.follow_logs(&url, &id).await.map_err(|e| {
            ApiError::Unavailable(format!("reading the output: {}", e.user_message()))
        })?;
    let stream = resp.bytes_stream().map_err(std::io::Error::other);
    Ok((
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        Body::from_stream(stream),
    )
        .into_response())
}

async fn finish(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, id)): Path<(String, String)>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let url = node_of(&c, &app, &id)?;
    let status = c
        .agents
        .stop_job(&url, &id, STOP_GRACE_SECONDS)
        .await
        .map_err(|e| ApiError::Unavailable(format!("stopping the job: {}", e.user_message())))?;
    c.agents
        .delete_job(&url, &id)
        .await
        .map_err(|e| ApiError::Unavailable(format!("removing the job: {}", e.user_message())))?;
    c.runs.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    let exit = status.exit.clone().unwrap_or_default();
    let code = match (exit.code, exit.signal) {
        (Some(code), _) => code,
        (None, Some(sig)) => 128 + sig,
        _ => 1,
    };
    let code = if status.state == JobState::Crashed && code == 0 {
        1
    } else {
        code
    };
    Ok(Json(
        json!({ "id": id, "exit_code": code, "reason": exit.reason }),
    ))
}

/// Starts a one-off job of `app`'s current release running `command`, on the up,
/// non-draining node with the fewest jobs; returns (job id, node name, node URL) once
/// the process runs. The job is remembered in `c.runs` until it is removed. `kind` names
/// it (`run`, or `cron` for the cron loop's): its id, `DYNO` and type label.
pub(crate) async fn start_one_off(
    c: &Arc<Controller>,
    app: &str,
    command: Vec<String>,
    kind: &str,
) -> Result<(String, String, String), ApiError> {
    let Some(row) = c.store.get_app(app).await? else {
        return Err(ApiError::NotFound(format!("no app named {app}")));
    };
    let Some(version) = row.current_release else {
        return Err(ApiError::Conflict(format!(
            "{app} has no release yet: git push it first"
        )));
    };
    let Some(release) = c.store.get_release(app, version).await? else {
        return Err(ApiError::internal(format!(
            "release v{version} of {app} is missing"
        )));
    };
    // The up, non-draining node with the fewest jobs.
    let now = unix_ms();
    let draining = c.store.draining_nodes().await?;
    let live = c
        .heartbeats
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let node = c
        .store
        .list_nodes()
        .await?
        .into_iter()
        .filter(|n| now - n.last_seen_ms <= NODE_TIMEOUT_MS && !draining.contains(&n.name))
        .min_by_key(|n| (live.get(&n.name).map_or(0, |l| l.jobs), n.name.clone()))
        .ok_or_else(|| ApiError::Unavailable("no node is up to run the job".into()))?;

    let id = format!("{app}-{kind}-{}", random_hex(4));
    let mut spec = process_job_spec(&c.settings, &release, kind, 1, &id);
    spec.api_access = c.store.app_api_access(&release.app).await.unwrap_or(false);
    spec.tenant = c.store.app_id(&release.app).await?;
    spec.command = command;
    spec.port = None;
    spec.labels.insert(labels::KIND.into(), KIND_RUN.into());
    spec.labels.insert(labels::TYPE.into(), kind.into());
    c.runs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.clone(), (app.to_string(), node.url.clone()));
    tracing::info!(job = %id, node = %node.name, %app, "one-off job");
    if let Err(e) = c.agents.start_job(&node.url, &spec).await {
        let _ = c.agents.delete_job(&node.url, &id).await;
        c.runs.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        return Err(ApiError::Unavailable(format!(
            "starting the one-off job failed: {}",
            e.user_message()
        )));
    }
    Ok((id, node.name, node.url))
}
