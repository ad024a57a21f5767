//! `PATCH /v1/apps/{app}` `{"name": "new-name"}`: renames an app. Everything keyed by its
//! name moves (`names::rename`): its records (store), its git repository to
//! `git/<new>.git`, its registry repository to `apps/<new>` (the releases' images are
//! rewritten to it, so rollbacks and restarts keep working), its router history; its
//! running jobs are replaced with zero downtime (the new ones carry the new name, and the
//! router then serves `<new>.<domain>`; custom domains stay attached). The old name is
//! left with nothing: an app made under it later starts empty.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::{Json, Router};
use paas_api::App;
use serde::Deserialize;

use super::ApiError;
use crate::apps::{self, AppsError};
use crate::auth::AppAccess;
use crate::state::Controller;

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new().route("/v1/apps/{app}", axum::routing::patch(rename_app))
}

/// The body of `PATCH /v1/apps/{app}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AppUpdate {
    pub name: String,
}

async fn rename_app(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    body: Bytes,
) -> Result<Json<App>, ApiError> {
    let req: AppUpdate = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not an app update (expected {{\"name\": \"new-name\"}}): {e}"
        ))
    })?;
    Ok(Json(rename(&c, &app, &req.name).await?))
}

/// Renames `app` to `to` (the REST API and the dashboard both call it): checks the name,
/// moves everything keyed by it (`names::rename`), replaces the running jobs.
pub(crate) async fn rename(c: &Arc<Controller>, app: &str, to: &str) -> Result<App, ApiError> {
    let (app, to) = (app.to_string(), to.to_string());
    paas_api::names::validate_app_name(&to).map_err(ApiError::Validation)?;
    if c.store.get_app(&app).await?.is_none() {
        return Err(AppsError::NotFound(app).into());
    }
    if to != app {
        if c.is_building(&app) {
            return Err(AppsError::Building(app).into());
        }
        let running = super::jobs::active_ids(c, &app, None);
        crate::names::rename(c, &app, &to)
            .await
            .map_err(AppsError::from)?;
        c.scheduler.replace(running);
        tracing::info!(from = %app, %to, "app renamed");
    }
    match apps::get(c, &to).await? {
        Some(a) => Ok(a),
        None => Err(AppsError::NotFound(to).into()),
    }
}
