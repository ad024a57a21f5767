//! `POST /v1/nodes/{name}/drain` and `DELETE /v1/nodes/{name}/drain`: a draining node gets
//! no new jobs and its jobs are started elsewhere, then stopped (see the scheduler).
//! `GET /v1/nodes/{name}/jobs`: the jobs the store places on a node, with their restart
//! counts (crash loops show here). `DELETE /v1/nodes/{name}`: forget a node (its URL and
//! agent credential) so a rebuilt machine can register under its name again. The
//! heartbeat's credential check ([`record_heartbeat`]) binds a node name to the agent
//! credential it first registered with, and [`peer_nodes`] tells each agent the other
//! nodes, whose ports it closes to its jobs. `PUT /v1/apps/{app}/formation/{type}`
//! `{"count": N}`: the scheduler's scale hook (the API's `ps:scale` endpoint supersedes it).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::Serialize;

use super::{Admin, ApiError, NodeAuth};
use crate::auth::{constant_time_eq, Caller, Principal};
use crate::state::Controller;
use crate::util::unix_ms;

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new()
        .route("/v1/nodes/{name}", delete(remove))
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

/// Records a heartbeat in the store with the agent credential it carries (every controller
/// of a shared database calls the agent with it) and remembers that credential in the agent
/// client. True when the controller holds the heartbeat's credential; the heartbeat's answer
/// then tells the agent, which from then on refuses the shared node token on its API.
///
/// A node name is bound to the credential it first registered with: a heartbeat sent with
/// the shared node token (or an admin's) for a node that has one must carry the same
/// credential, else 403 and nothing changes (not the URL, not the credential). The check
/// reads the store, so a follower refuses what the leader stored. A per-node token speaks
/// only for its node (the caller checked the name) and may set a new credential.
pub(super) async fn record_heartbeat(
    c: &Controller,
    caller: &Caller,
    hb: &paas_api::NodeHeartbeat,
) -> Result<bool, ApiError> {
    let token = hb.agent_token.as_deref().filter(|t| !t.is_empty());
    if token.is_some_and(|t| !crate::agent_client::valid_agent_token(t)) {
        return Err(ApiError::Validation(
            "the heartbeat's agent_token is not an agent credential (paasagent_<64 hex>): \
             delete <state-dir>/api-token on the node and restart its agent"
                .into(),
        ));
    }
    let now = unix_ms();
    if let Principal::Node(Some(_)) = caller.principal {
        c.store
            .upsert_node(&hb.name, &hb.url, hb.memory_bytes, now)
            .await?;
        if let Some(t) = token.filter(|t| !c.agents.knows(&hb.url, t)) {
            c.store.set_node_agent_token(&hb.name, t).await?;
        }
    } else {
        let same = match c.store.node_agent_token(&hb.name).await? {
            Some(stored) => {
                token.is_some_and(|t| constant_time_eq(t.as_bytes(), stored.as_bytes()))
            }
            None => true,
        };
        // The store settles a race of two first heartbeats with different credentials.
        let recorded = same
            && c.store
                .record_bound_heartbeat(&hb.name, &hb.url, hb.memory_bytes, now, token)
                .await?;
        if !recorded {
            return Err(caller.forbid(&bound_elsewhere(&hb.name, token.is_some())));
        }
    }
    let Some(token) = token else {
        return Ok(false);
    };
    if !c.agents.knows(&hb.url, token) {
        c.agents.remember(&hb.url, token);
        tracing::info!(node = %hb.name, "stored the agent's own API credential");
    }
    Ok(true)
}

/// The heartbeat answer's [`paas_api::PEER_NODES`] for node `me`: the API address
/// (`IPV4:PORT`) of every other node in the store whose URL names an IPv4 address (an agent
/// reports its advertise address there). The agent closes those machines' host ports and
/// agent ports to its jobs, so a job reaches another node's jobs only through the router.
pub(super) async fn peer_nodes(c: &Controller, me: &str) -> Result<String, ApiError> {
    let peers: Vec<String> = c
        .store
        .list_nodes()
        .await?
        .iter()
        .filter(|n| n.name != me)
        .filter_map(|n| {
            let url = reqwest::Url::parse(&n.url).ok()?;
            let ip: std::net::Ipv4Addr = url.host_str()?.parse().ok()?;
            Some(format!("{ip}:{}", url.port_or_known_default()?))
        })
        .collect();
    Ok(peers.join(","))
}

/// Why a heartbeat may not speak for `node`, and what to do.
fn bound_elsewhere(node: &str, carries_one: bool) -> String {
    let what = if carries_one {
        "another agent credential"
    } else {
        "an agent credential and this heartbeat carries none"
    };
    format!(
        "node {node} is registered with {what}: a heartbeat with the shared node token may \
         not change its credential or URL. If this machine was rebuilt or its state dir \
         wiped, an admin removes the node first (`paas nodes:remove {node}`) and it \
         registers again at its next heartbeat; or the node gets its own token \
         (`POST /v1/node-tokens`)"
    )
}

/// The answer of `DELETE /v1/nodes/{name}`.
#[derive(Debug, Serialize)]
struct Removed {
    name: String,
    /// Jobs the store still placed on the node, now marked removed.
    jobs_removed: u64,
}

/// `DELETE /v1/nodes/{name}` (admins): forgets the node, its URL and agent credential (so
/// the next heartbeat under that name registers afresh, whatever credential it carries),
/// its subnet and drain mark; the jobs the store still places there are marked removed.
/// Refused (409) while the store places jobs on it and it is not draining: drain it first,
/// so its jobs start elsewhere (a down node's jobs are replaced already; draining it just
/// says so). A removed node whose agent still runs registers again at its next heartbeat.
async fn remove(
    caller: Caller,
    State(c): State<Arc<Controller>>,
    Path(name): Path<String>,
) -> Result<Json<Removed>, ApiError> {
    caller.require_admin()?;
    let not_found =
        || ApiError::NotFound(format!("no node named {name} (GET /v1/nodes lists them)"));
    let Some(node) = c
        .store
        .list_nodes()
        .await?
        .into_iter()
        .find(|n| n.name == name)
    else {
        return Err(not_found());
    };
    let jobs = c
        .store
        .active_jobs()
        .await?
        .iter()
        .filter(|j| j.node == name)
        .count();
    if jobs > 0 && !c.store.draining_nodes().await?.contains(&name) {
        return Err(ApiError::Conflict(format!(
            "node {name} still has {jobs} job(s) (GET /v1/nodes/{name}/jobs): drain it first \
             (`paas nodes:drain {name}`) so they start on other nodes, then remove it"
        )));
    }
    let Some(jobs_removed) = c.store.remove_node(&name).await? else {
        return Err(not_found());
    };
    c.heartbeats
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&name);
    c.agents.forget(&node.url);
    tracing::info!(node = %name, url = %node.url, jobs_removed, by = caller.name(), "node removed");
    c.scheduler.notify();
    Ok(Json(Removed { name, jobs_removed }))
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
    let volumes = c.store.volumes(Some(&app)).await?;
    crate::volumes::check_scale(&volumes, &app, &process_type, req.count)?;
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
