//! `GET` and `PATCH /v1/apps/{app}/api-access` `{"enabled": bool}`: whether the app's
//! containers may reach the controller's and the agents' API ports. The agents' nftables
//! tables drop that traffic for every other job (see node-agent/src/network). Anyone who
//! may use the app can read the switch; only admins turn it (it opens a wall). It takes
//! effect for jobs started afterwards (`paas restart -a APP`).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use paas_api::{ApiAccess, SetApiAccess};

use super::{Admin, ApiError};
use crate::auth::AppAccess;
use crate::state::Controller;

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new().route("/v1/apps/{app}/api-access", get(show).patch(set))
}

async fn show(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
) -> Result<Json<ApiAccess>, ApiError> {
    if c.store.get_app(&app).await?.is_none() {
        return Err(ApiError::NotFound(format!("no app named {app}")));
    }
    let enabled = c.store.app_api_access(&app).await?;
    Ok(Json(ApiAccess { app, enabled }))
}

async fn set(
    _: Admin,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    body: Bytes,
) -> Result<Json<ApiAccess>, ApiError> {
    let req: SetApiAccess = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be {{\"enabled\": true}} or {{\"enabled\": false}}: {e}"
        ))
    })?;
    if !c.store.set_app_api_access(&app, req.enabled).await? {
        return Err(ApiError::NotFound(format!("no app named {app}")));
    }
    tracing::warn!(%app, enabled = req.enabled, "app API access changed");
    Ok(Json(ApiAccess {
        app,
        enabled: req.enabled,
    }))
}
