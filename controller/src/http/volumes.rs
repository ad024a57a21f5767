//! An app's persistent volumes over REST (the rules live in [`crate::volumes`]):
//!
//! * `GET /v1/apps/{app}/volumes`: name, size, use, node and its state, mounts;
//! * `POST /v1/apps/{app}/volumes` `{"name": "uploads", "size": "1G", "node": "n1"?}`;
//! * `GET /v1/apps/{app}/volumes/{name}`;
//! * `DELETE /v1/apps/{app}/volumes/{name}?confirm={app}` (refused while mounted);
//! * `PUT /v1/apps/{app}/volumes/{name}/mount` `{"type": "web", "path": "/app/uploads"}`;
//! * `DELETE /v1/apps/{app}/volumes/{name}/mount`.
//!
//! Every route checks the caller's access to `{app}` first (a member asking about an app
//! that is not theirs gets the same 404 as for a missing app); a volume is looked up only
//! among the app's own.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use paas_api::ErrorBody;
use serde::Deserialize;

use super::config::CONFIRMATION_REQUIRED;
use super::ApiError;
use crate::auth::AppAccess;
use crate::state::Controller;
use crate::volumes::{self, VolumeInfo, VolumesError};

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new()
        .route("/v1/apps/{app}/volumes", get(list).post(create))
        .route("/v1/apps/{app}/volumes/{name}", get(one).delete(destroy))
        .route(
            "/v1/apps/{app}/volumes/{name}/mount",
            put(mount).delete(unmount),
        )
}

impl From<VolumesError> for ApiError {
    fn from(e: VolumesError) -> Self {
        match e {
            VolumesError::NoApp(_) | VolumesError::NotFound { .. } | VolumesError::NoNode(_) => {
                ApiError::NotFound(e.to_string())
            }
            VolumesError::InvalidName(_)
            | VolumesError::BadSize(_)
            | VolumesError::BadPath(_)
            | VolumesError::BadType(_) => ApiError::Validation(e.to_string()),
            VolumesError::Exists { .. }
            | VolumesError::TooMany { .. }
            | VolumesError::Conflict(_) => ApiError::Conflict(e.to_string()),
            VolumesError::Unavailable(m) => ApiError::Unavailable(m),
            VolumesError::Confirm { .. } => ApiError::BadRequest(e.to_string()),
            VolumesError::Agent { .. } => ApiError::Unavailable(e.to_string()),
            VolumesError::Store(e) => ApiError::from(e),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateVolume {
    name: String,
    /// `1G`, `512M`, … (16M to 1T).
    size: String,
    node: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct MountVolume {
    #[serde(rename = "type")]
    process_type: String,
    path: String,
}

#[derive(Debug, Deserialize)]
struct Confirm {
    confirm: Option<String>,
}

fn body<T: serde::de::DeserializeOwned>(body: &[u8], example: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body must be {example}: {e}")))
}

async fn list(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
) -> Result<Json<Vec<VolumeInfo>>, ApiError> {
    Ok(Json(volumes::list(&c, &app).await?))
}

async fn create(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    raw: Bytes,
) -> Result<(StatusCode, Json<VolumeInfo>), ApiError> {
    let req: CreateVolume = body(&raw, r#"{"name": "uploads", "size": "1G"}"#)?;
    let made = volumes::create(&c, &app, &req.name, &req.size, req.node.as_deref()).await?;
    Ok((StatusCode::CREATED, Json(made)))
}

async fn one(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, name)): Path<(String, String)>,
) -> Result<Json<VolumeInfo>, ApiError> {
    Ok(Json(volumes::get(&c, &app, &name).await?))
}

async fn destroy(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, name)): Path<(String, String)>,
    Query(q): Query<Confirm>,
) -> Result<Response, ApiError> {
    match volumes::destroy(&c, &app, &name, q.confirm.as_deref()).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e @ VolumesError::Confirm { .. }) => Ok((
            StatusCode::BAD_REQUEST,
            Json(ErrorBody::new(CONFIRMATION_REQUIRED, e.to_string())),
        )
            .into_response()),
        Err(e) => Err(e.into()),
    }
}

async fn mount(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, name)): Path<(String, String)>,
    raw: Bytes,
) -> Result<Json<VolumeInfo>, ApiError> {
    let req: MountVolume = body(&raw, r#"{"type": "web", "path": "/app/uploads"}"#)?;
    Ok(Json(
        volumes::mount(&c, &app, &name, &req.process_type, &req.path).await?,
    ))
}

async fn unmount(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, name)): Path<(String, String)>,
) -> Result<Json<VolumeInfo>, ApiError> {
    Ok(Json(volumes::unmount(&c, &app, &name).await?))
}
