//! `/v1/apps/{app}/config` (Heroku's shape: an object of vars; `PATCH` with `null` to
//! unset; values within `paas_api::config_vars`' limits, else 422), one release (`/releases/{version}`) and rollbacks (`POST /releases` with
//! `{"rollback": N}`, or `POST /rollback`) and destroying an app (`DELETE` with
//! `?confirm=APP`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::{HeaderMap, StatusCode};
use paas_api::{ErrorBody, Release};
use serde::Deserialize;

use super::ApiError;
use crate::apps;
use crate::auth::AppAccess;
use crate::state::Controller;

/// The error code of a config key that `validate_config_key` refuses.
pub const INVALID_CONFIG_KEY: &str = "invalid_config_key";
/// The error code of a destroy without `?confirm=APP`.
pub const CONFIRMATION_REQUIRED: &str = "confirmation_required";

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new()
        .route("/v1/apps/{app}/config", get(get_config).patch(patch_config))
        .route("/v1/apps/{app}/releases/{version}", get(get_release))
        .route("/v1/apps/{app}/rollback", post(rollback))
}

async fn get_config(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
) -> Result<Response, ApiError> {
    Ok(super::etag::json(apps::config(&c, &app).await?))
}

async fn patch_config(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, ApiError> {
    let _guard = super::etag::lock_if_conditional(&headers).await;
    let changes: BTreeMap<String, Option<String>> = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body is not a config object (expected {{\"KEY\": \"value\", \"OTHER\": null}}): {e}"
        ))
    })?;
    if changes.is_empty() {
        return Err(ApiError::Validation(
            "no config vars given: send {\"KEY\": \"value\"} to set, {\"KEY\": null} to unset"
                .into(),
        ));
    }
    for key in changes.keys() {
        if let Err(message) = paas_api::names::validate_config_key(key) {
            let body = ErrorBody::new(INVALID_CONFIG_KEY, message);
            return Ok((StatusCode::BAD_REQUEST, Json(body)).into_response());
        }
    }
    if headers.contains_key(http::header::IF_MATCH) {
        super::etag::check(&headers, &apps::config(&c, &app).await?, "config")?;
    }
    let (config, version) = match apps::set_config(&c, &app, &changes).await {
        Err(apps::AppsError::Config(refused)) => {
            // 422 naming the key and the limit (paas_api::config_vars); nothing changed.
            let body = ErrorBody::new(refused.code(), refused.to_string());
            return Ok((StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response());
        }
        other => other?,
    };
    if let Some(v) = version {
        tracing::info!(%app, release = v, "config changed");
    }
    Ok(super::etag::json(config))
}

async fn get_release(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, version)): Path<(String, String)>,
) -> Result<Json<Release>, ApiError> {
    let v = parse_version(&version)?;
    Ok(Json(apps::release(&c, &app, v).await?))
}

/// `v3` or `3`.
fn parse_version(s: &str) -> Result<u32, ApiError> {
    s.trim_start_matches('v').parse().map_err(|_| {
        ApiError::Validation(format!(
            "{s:?} is not a release version: use a number such as 3 or v3"
        ))
    })
}

/// `{"rollback": N}`; without it (or without a body) the release before the current one.
#[derive(Debug, Default, Deserialize)]
struct RollbackBody {
    rollback: Option<serde_json::Value>,
}

/// `POST /v1/apps/{app}/releases` with `{"rollback": N}`.
pub(super) async fn create_release(
    admin: AppAccess,
    state: State<Arc<Controller>>,
    path: Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    if let Ok(serde_json::Value::Object(obj)) = serde_json::from_slice(&body) {
        if let Some(image) = obj.get("image") {
            let image = image.as_str().unwrap_or_default().to_string();
            return super::deploys::deploy_image(state.0, admin.0, path.0, image).await;
        }
    }
    rollback(admin, state, path, body).await
}

async fn rollback(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: RollbackBody = if body.iter().all(u8::is_ascii_whitespace) {
        RollbackBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the body is not a rollback (expected {{\"rollback\": 3}}): {e}"
            ))
        })?
    };
    let to = match req.rollback {
        None | Some(serde_json::Value::Null) => None,
        Some(serde_json::Value::Number(n)) => Some(
            n.as_u64()
                .and_then(|n| u32::try_from(n).ok())
                .ok_or_else(|| ApiError::Validation(format!("{n} is not a release version")))?,
        ),
        Some(serde_json::Value::String(s)) => Some(parse_version(&s)?),
        Some(other) => {
            return Err(ApiError::Validation(format!(
                "{other} is not a release version: use a number such as 3"
            )))
        }
    };
    let release = apps::rollback(&c, &app, to).await?;
    tracing::info!(%app, release = release.version, "rolled back");
    Ok((StatusCode::CREATED, Json(release)).into_response())
}

/// `?confirm=APP`, required to destroy APP.
#[derive(Debug, Deserialize)]
pub(super) struct Confirm {
    confirm: Option<String>,
}

/// The rule for destroying an app (the REST API and the dashboard share it): the app's
/// name typed again.
pub(crate) fn check_destroy_confirmation(app: &str, confirm: Option<&str>) -> Result<(), String> {
    if confirm == Some(app) {
        Ok(())
    } else {
        Err(format!(
            "destroying {app} deletes its releases, config and repository"
        ))
    }
}

/// `DELETE /v1/apps/{app}?confirm={app}`.
pub(super) async fn destroy_app(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    axum::extract::Query(q): axum::extract::Query<Confirm>,
) -> Result<Response, ApiError> {
    if let Err(message) = check_destroy_confirmation(&app, q.confirm.as_deref()) {
        let body = ErrorBody::new(
            CONFIRMATION_REQUIRED,
            format!(
                "{message}: confirm with ?confirm={app} (paas apps:destroy {app} --confirm {app})"
            ),
        );
        return Ok((StatusCode::BAD_REQUEST, Json(body)).into_response());
    }
    apps::destroy(&c, &app).await?;
    tracing::info!(%app, "app destroyed");
    Ok(StatusCode::NO_CONTENT.into_response())
}
