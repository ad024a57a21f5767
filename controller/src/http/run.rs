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
use crate::scheduler::labels::KIND_RUN;
use crate::scheduler::one_off::start_one_off;
use crate::state::Controller;

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
