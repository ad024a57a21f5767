//! `/v1/`: apps (list, create, show, releases, builds) and nodes (heartbeat, list).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use http::StatusCode;
use paas_api::{App, CreateApp, Node, NodeHeartbeat};

use super::paging::{page_of, PageQuery};
use super::{Admin, ApiError};
use crate::apps;
use crate::auth::{AppAccess, Caller, Principal};
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
        .route(
            "/v1/apps/{app}/builds",
            get(super::builds::list_builds).post(super::builds::create_build),
        )
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

async fn unknown(_: Caller, req: axum::extract::Request) -> ApiError {
    ApiError::NotFound(format!(
        "no API endpoint {} {}",
        req.method(),
        req.uri().path()
    ))
}

async fn list_apps(
    caller: Caller,
    State(c): State<Arc<Controller>>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    // The store cuts the page after the members' filter.
    let member = caller.apps_filter()?;
    let apps = apps::page(&c, member, q.after.as_deref(), q.fetch()?).await?;
    page_of(apps, &q, "/v1/apps", |a: &App| a.name.clone())
}

async fn create_app(
    caller: Caller,
    State(c): State<Arc<Controller>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    caller.require_person()?;
    let req: CreateApp = parse_json(&body, "app (expected {\"name\": \"my-app\"})")?;
    let app = apps::create(&c, &req.name).await?;
    caller.record_creator(&c, &app.name).await?;
    tracing::info!(app = %app.name, "app created");
    Ok((StatusCode::CREATED, Json(app)).into_response())
}

async fn get_app(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(name): Path<String>,
) -> Result<Json<App>, ApiError> {
    match apps::get(&c, &name).await? {
        Some(app) => Ok(Json(app)),
        None => Err(apps::AppsError::NotFound(name).into()),
    }
}

async fn list_releases(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(name): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let releases: Vec<paas_api::Release> =
        apps::releases(&c, &name, q.after.as_deref(), q.fetch()?).await?;
    let releases = super::deploys::with_status(&c, &name, releases).await?;
    page_of(releases, &q, &format!("/v1/apps/{name}/releases"), |r| {
        r["version"].to_string()
    })
}

async fn heartbeat(
    caller: Caller,
    State(c): State<Arc<Controller>>,
    body: Bytes,
) -> Result<axum::response::Response, ApiError> {
    if !caller.is_node() && !caller.is_admin() {
        return Err(caller.forbid("only nodes send heartbeats: use a node token"));
    }
    let hb: NodeHeartbeat = parse_json(&body, "heartbeat")?;
    // A per-node token speaks only for its own node.
    if let Principal::Node(Some(node)) = &caller.principal {
        if *node != hb.name {
            return Err(caller.forbid(&format!(
                "this node token was issued for {node}, not for {}",
                hb.name
            )));
        }
    }
    if hb.name.is_empty() || hb.url.is_empty() {
        return Err(ApiError::Validation(
            "a heartbeat needs the node's name and API url".into(),
        ));
    }
    let stored = super::nodes::record_heartbeat(&c, &caller, &hb).await?;
    let first = {
        let mut live = c.heartbeats.lock().unwrap_or_else(|e| e.into_inner());
        live.insert(hb.name.clone(), NodeLive::from_heartbeat(&hb))
            .is_none()
    };
    c.job_stats.record(&hb.name, &hb.stats, unix_ms());
    crate::addons::record_volume_use(&c, &hb.name, &hb.volumes).await;
    if first {
        tracing::info!(node = %hb.name, url = %hb.url, "node joined");
    }
    c.scheduler.notify();
    let mut resp = StatusCode::NO_CONTENT.into_response();
    let peers = super::nodes::peer_nodes(&c, &hb.name).await?;
    if let Ok(value) = axum::http::HeaderValue::from_str(&peers) {
        resp.headers_mut().insert(paas_api::PEER_NODES, value);
    }
    let addon_ports = crate::addons::remote_ports(&c, &hb.name).await?;
    if let Ok(value) = axum::http::HeaderValue::from_str(&addon_ports) {
        resp.headers_mut().insert(paas_api::ADDON_PORTS, value);
    }
    if stored {
        resp.headers_mut().insert(
            paas_api::AGENT_TOKEN_STORED,
            axum::http::HeaderValue::from_static("1"),
        );
    }
    Ok(resp)
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
