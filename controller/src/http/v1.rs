//! `/v1/`: apps (list, create, show, releases, builds) and nodes (heartbeat, list).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use http::StatusCode;
use paas_api::{App, Build, CreateApp, Node, NodeHeartbeat, Release};

use super::{Admin, ApiError, NodeAuth};
use crate::apps;
use crate::state::{Controller, NodeLive, NODE_TIMEOUT_MS};
use crate::util::{rfc3339_from_ms, unix_ms};

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new()
        .route("/v1/apps", get(list_apps).post(create_app))
        .route(
            "/v1/apps/{app}",
            get(get_app).delete(super::config::destroy_app),
        )
        .route(
            "/v1/apps/{app}/releases",
            get(list_releases).post(super::config::create_release),
        )
        .route("/v1/apps/{app}/builds", get(list_builds))
        .route("/v1/nodes", get(list_nodes))
        .route("/v1/nodes/heartbeat", post(heartbeat))
        .route("/v1", any(unknown))
        .route("/v1/", any(unknown))
        .route("/v1/{*rest}", any(unknown))
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(body)
        .map_err(|e| ApiError::BadRequest(format!("the body is not a valid {what}: {e}")))
}

async fn unknown(_: Admin, req: axum::extract::Request) -> ApiError {
    ApiError::NotFound(format!(
        "no API endpoint {} {}",
        req.method(),
        req.uri().path()
    ))
}

async fn list_apps(_: Admin, State(c): State<Arc<Controller>>) -> Result<Json<Vec<App>>, ApiError> {
    Ok(Json(apps::list(&c).await?))
}

async fn create_app(
    _: Admin,
    State(c): State<Arc<Controller>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: CreateApp = parse_json(&body, "app (expected {\"name\": \"my-app\"})")?;
    let app = apps::create(&c, &req.name).await?;
    tracing::info!(app = %app.name, "app created");
    Ok((StatusCode::CREATED, Json(app)).into_response())
}

async fn get_app(
    _: Admin,
    State(c): State<Arc<Controller>>,
    Path(name): Path<String>,
) -> Result<Json<App>, ApiError> {
    match apps::get(&c, &name).await? {
        Some(app) => Ok(Json(app)),
        None => Err(apps::AppsError::NotFound(name).into()),
    }
}

async fn list_releases(
    _: Admin,
    State(c): State<Arc<Controller>>,
    Path(name): Path<String>,
) -> Result<Json<Vec<Release>>, ApiError> {
    Ok(Json(apps::releases(&c, &name).await?))
}

async fn list_builds(
    _: Admin,
    State(c): State<Arc<Controller>>,
    Path(name): Path<String>,
) -> Result<Json<Vec<Build>>, ApiError> {
    Ok(Json(apps::builds(&c, &name).await?))
}

async fn heartbeat(
    _: NodeAuth,
    State(c): State<Arc<Controller>>,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let hb: NodeHeartbeat = parse_json(&body, "heartbeat")?;
    if hb.name.is_empty() || hb.url.is_empty() {
        return Err(ApiError::Validation(
            "a heartbeat needs the node's name and API url".into(),
        ));
    }
    let first = {
        let mut live = c.heartbeats.lock().unwrap_or_else(|e| e.into_inner());
        live.insert(hb.name.clone(), NodeLive::from_heartbeat(&hb))
            .is_none()
    };
    c.job_stats.record(&hb.name, &hb.stats, unix_ms());
    c.store
        .upsert_node(&hb.name, &hb.url, hb.memory_bytes, unix_ms())
        .await?;
    if first {
        tracing::info!(node = %hb.name, url = %hb.url, "node joined");
    }
    c.scheduler.notify();
    Ok(StatusCode::NO_CONTENT)
}

async fn list_nodes(
    _: Admin,
    State(c): State<Arc<Controller>>,
) -> Result<Json<Vec<Node>>, ApiError> {
    let now = unix_ms();
    let rows = c.store.list_nodes().await?;
    let draining = c.store.draining_nodes().await?;
    let live = c
        .heartbeats
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    Ok(Json(
        rows.into_iter()
            .map(|n| Node {
                state: if now - n.last_seen_ms > NODE_TIMEOUT_MS {
                    "down"
                } else if draining.contains(&n.name) {
                    "draining"
                } else {
                    "up"
                }
                .into(),
                jobs: live.get(&n.name).map(|l| l.jobs).unwrap_or(0),
                last_seen: rfc3339_from_ms(n.last_seen_ms),
                memory_bytes: n.memory_bytes,
                url: n.url,
                name: n.name,
            })
            .collect(),
    ))
}
