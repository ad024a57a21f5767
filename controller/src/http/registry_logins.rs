//! Credentials for other registries, per user (`paas registry:login HOST -u USER`):
//!
//! * `GET /v1/registry-logins` → `[{"host", "username"}]`: the caller's own logins (never a
//!   password, never another user's).
//! * `PUT /v1/registry-logins/{host}` `{"username", "password"}`: checks them against the
//!   registry the way `docker login` does (`GET /v2/` answering its challenge), then stores
//!   them for the caller (`200 {"host", "username"}`); a refused password is `422
//!   registry_login_refused` and nothing is stored.
//! * `DELETE /v1/registry-logins/{host}` → `204`, or `404` when the caller has none for it.
//!
//! Any person (admin or member) manages their own; nodes cannot. The stored credentials
//! are used only for pulls made for that person (`paas deploy --image`, a Dockerfile
//! `FROM` in a push of theirs).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use axum::{Json, Router};
use http::StatusCode;
use serde::Deserialize;
use serde_json::{json, Value};

use super::ApiError;
use crate::auth::Caller;
use crate::registry_client::{normalize_host, Client, Credentials};
use crate::state::Controller;

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new()
        .route("/v1/registry-logins", get(list_logins))
        .route(
            "/v1/registry-logins/{host}",
            put(set_login).delete(remove_login),
        )
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

fn host_of(host: &str) -> Result<String, ApiError> {
    normalize_host(host).map_err(|e| ApiError::Validation(e.to_string()))
}

/// `GET /v1/registry-logins`.
async fn list_logins(
    caller: Caller,
    State(c): State<Arc<Controller>>,
) -> Result<Json<Value>, ApiError> {
    caller.require_person()?;
    let list = c
        .registry_logins
        .list(caller.name())
        .map_err(ApiError::internal)?;
    Ok(Json(json!(list
        .into_iter()
        .map(|(host, username)| json!({ "host": host, "username": username }))
        .collect::<Vec<_>>())))
}

/// `PUT /v1/registry-logins/{host}`.
async fn set_login(
    caller: Caller,
    State(c): State<Arc<Controller>>,
    Path(host): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require_person()?;
    let host = host_of(&host)?;
    let req: LoginBody = serde_json::from_slice(&body).map_err(|_| {
        ApiError::BadRequest(
            "the body must be {\"username\": \"USER\", \"password\": \"PASSWORD\"}".into(),
        )
    })?;
    if req.username.is_empty() || req.username.contains(':') || req.password.is_empty() {
        return Err(ApiError::Validation(
            "a registry login needs a user name (without ':') and a non-empty password".into(),
        ));
    }
    let creds = Credentials {
        username: req.username,
        password: req.password,
    };
    let checked = async {
        let mut client = Client::new(&host, &c.settings.insecure_registries, Some(creds.clone()))?;
        client.check_login().await
    }
    .await;
    if let Err(e) = checked {
        return Ok(super::deploys::pull_error(e));
    }
    c.registry_logins
        .set(caller.name(), &host, creds.clone())
        .map_err(ApiError::internal)?;
    tracing::info!(user = %caller.name(), %host, registry_user = %creds.username, "stored a registry login");
    Ok(Json(json!({ "host": host, "username": creds.username })).into_response())
}

/// `DELETE /v1/registry-logins/{host}`.
async fn remove_login(
    caller: Caller,
    State(c): State<Arc<Controller>>,
    Path(host): Path<String>,
) -> Result<Response, ApiError> {
    caller.require_person()?;
    let host = host_of(&host)?;
    if !c
        .registry_logins
        .remove(caller.name(), &host)
        .map_err(ApiError::internal)?
    {
        return Err(ApiError::NotFound(format!(
            "you have no login for {host} (paas registry:list shows yours)"
        )));
    }
    Ok(StatusCode::NO_CONTENT.into_response())
}
