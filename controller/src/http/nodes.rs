//! `POST /v1/nodes/{name}/drain` and `DELETE /v1/nodes/{name}/drain`: a draining node gets
//! no new jobs and its jobs are started elsewhere, then stopped (see the scheduler).

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;

use super::{Admin, ApiError};
use crate::state::Controller;

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new().route("/v1/nodes/{name}/drain", post(drain).delete(undrain))
}

/// The answer of a drain change.
#[derive(Debug, Serialize)]
struct Drained {
    name: String,
    draining: bool,
}

async fn set(c: &Controller, name: String, draining: bool) -> Result<Json<Drained>, ApiError> {
    if !c.store.set_node_draining(&name, draining).await? {
        return Err(ApiError::NotFound(format!(
            "no node named {name} (GET /v1/nodes lists them)"
        )));
    }
    tracing::info!(node = %name, draining, "node drain changed");
    c.scheduler.notify();
    Ok(Json(Drained { name, draining }))
}

async fn drain(
    _: Admin,
    State(c): State<Arc<Controller>>,
    Path(name): Path<String>,
) -> Result<Json<Drained>, ApiError> {
    set(&c, name, true).await
}

async fn undrain(
    _: Admin,
    State(c): State<Arc<Controller>>,
    Path(name): Path<String>,
) -> Result<Json<Drained>, ApiError> {
    set(&c, name, false).await
}
