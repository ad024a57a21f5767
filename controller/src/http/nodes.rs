//! `POST /v1/nodes/{name}/drain` and `DELETE /v1/nodes/{name}/drain`: a draining node gets
//! no new jobs and its jobs are started elsewhere, then stopped (see the scheduler).
//! `GET /v1/nodes/{name}/jobs`: the jobs the store places on a node, with their restart
//! counts (crash loops show here). `PUT /v1/apps/{app}/formation/{type}` `{"count": N}`:
//! the scheduler's scale hook (the API's `ps:scale` endpoint supersedes it).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::Serialize;

use super::{Admin, ApiError, NodeAuth};
use crate::state::Controller;

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new()
        .route("/v1/nodes/{name}/drain", post(drain).delete(undrain))
        .route("/v1/nodes/{name}/jobs", get(node_jobs))
        .route("/v1/nodes/{name}/subnet", post(subnet))
        .route("/v1/apps/{app}/formation/{process_type}", put(scale))
}

/// The /24 blocks of a cluster CIDR such as `10.89.0.0/16` (a /17 to /24), in order.
pub fn subnet_blocks(cidr: &str) -> Result<Vec<String>, String> {
    let (addr, len) = cidr
        .split_once('/')
        .ok_or_else(|| format!("{cidr:?} is not a CIDR such as 10.89.0.0/16"))?;
    let addr: std::net::Ipv4Addr = addr
        .parse()
        .map_err(|e| format!("{cidr:?}: bad address ({e})"))?;
    let len: u32 = len
        .parse()
        .ok()
        .filter(|l| (8..=24).contains(l))
        .ok_or_else(|| format!("{cidr:?}: the prefix length must be 8 to 24"))?;
    let base = u32::from(addr) & (u32::MAX << (32 - len));
    let count = 1u32 << (24 - len);
    Ok((0..count.min(65_536))
        .map(|i| format!("{}/24", std::net::Ipv4Addr::from(base + (i << 8))))
        .collect())
}

/// `POST /v1/nodes/{name}/subnet` (node token): the node's container subnet, allocated
/// from the cluster CIDR at its first call and the same ever after.
async fn subnet(
    _: NodeAuth,
    State(c): State<Arc<Controller>>,
    Path(name): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
    if !ok {
        return Err(ApiError::Validation(format!(
            "{name:?} is not a node name (letters, digits, - _ .)"
        )));
    }
    let blocks = subnet_blocks(&c.settings.cluster_cidr).map_err(ApiError::internal)?;
    match c.store.allocate_subnet(&name, &blocks).await? {
        Some(subnet) => {
            tracing::info!(node = %name, %subnet, "node subnet");
            Ok(Json(serde_json::json!({ "name": name, "subnet": subnet })))
        }
        None => Err(ApiError::Conflict(format!(
            "every /24 of the cluster CIDR {} is taken: start the controller with a larger \
             --cluster-cidr",
            c.settings.cluster_cidr
        ))),
    }
}

/// Keeps the agent credential a heartbeat carries: in the store (every controller of a
/// shared database calls the agent with it) and in the agent client. True when the
/// controller holds it; the heartbeat's answer then tells the agent, which from then on
/// refuses the shared node token on its API.
pub(super) async fn store_agent_token(
    c: &Controller,
    hb: &paas_api::NodeHeartbeat,
) -> Result<bool, ApiError> {
    let Some(token) = hb.agent_token.as_deref().filter(|t| !t.is_empty()) else {
        return Ok(false);
    };
    if !crate::agent_client::valid_agent_token(token) {
        return Err(ApiError::Validation(
            "the heartbeat's agent_token is not an agent credential (paasagent_<64 hex>): \
             delete <state-dir>/api-token on the node and restart its agent"
                .into(),
        ));
    }
    if !c.agents.knows(&hb.url, token) {
        c.store.set_node_agent_token(&hb.name, token).await?;
        c.agents.remember(&hb.url, token);
        tracing::info!(node = %hb.name, "stored the agent's own API credential");
    }
    Ok(true)
}

/// A job as `GET /v1/nodes/{name}/jobs` lists it.
#[derive(Debug, Serialize)]
struct NodeJob {
    id: String,
    app: String,
    release: u32,
    #[serde(rename = "type")]
    process_type: String,
    node: String,
    state: String,
    addr: Option<String>,
    restarts: u32,
    last_exit: Option<String>,
    exit_reason: Option<String>,
}

async fn node_jobs(
    _: Admin,
    State(c): State<Arc<Controller>>,
    Path(name): Path<String>,
) -> Result<Json<Vec<NodeJob>>, ApiError> {
    let rows: Vec<_> = c
        .store
        .active_jobs()
        .await?
        .into_iter()
        .filter(|j| j.node == name)
        .collect();
    let mut restarts = std::collections::HashMap::new();
    for app in rows
        .iter()
        .map(|j| j.app.clone())
        .collect::<std::collections::BTreeSet<_>>()
    {
        restarts.extend(c.store.job_restarts(&app).await?);
    }
    Ok(Json(
        rows.into_iter()
            .map(|j| {
                let r = restarts.remove(&j.id).unwrap_or_default();
                NodeJob {
                    restarts: r.restarts,
                    last_exit: r.last_exit,
                    id: j.id,
                    app: j.app,
                    release: j.release,
                    process_type: j.process_type,
                    node: j.node,
                    state: j.state,
                    addr: j.addr,
                    exit_reason: j.exit_reason,
                }
            })
            .collect(),
    ))
}

#[derive(Debug, serde::Deserialize)]
struct Scale {
    count: u32,
}

async fn scale(
    _: crate::auth::AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, process_type)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<serde_json::Value>, ApiError> {
    let req: Scale = serde_json::from_slice(&body)
        .map_err(|e| ApiError::BadRequest(format!("the body must be {{\"count\": N}}: {e}")))?;
    if req.count > 100 {
        return Err(ApiError::Validation(format!(
            "count {} is more than 100 processes of one type",
            req.count
        )));
    }
    let ok = !process_type.is_empty()
        && process_type.len() <= 30
        && process_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(ApiError::Validation(format!(
            "{process_type:?} is not a process type name (letters, digits, - and _)"
        )));
    }
    if c.store.get_app(&app).await?.is_none() {
        return Err(ApiError::NotFound(format!("no app named {app}")));
    }
    c.store
        .set_formation(&app, &process_type, req.count)
        .await?;
    tracing::info!(%app, %process_type, count = req.count, "formation scaled");
    c.scheduler.notify();
    Ok(Json(serde_json::json!({
        "app": app, "type": process_type, "count": req.count
    })))
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
