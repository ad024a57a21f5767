//! The heartbeat: every 2 s, `POST {controller}/v1/nodes/heartbeat` with the node's name,
//! API URL, memory, every job's status, the cached layers' digests and the running jobs'
//! cgroup stats (the newest complete sample of [`crate::stats::Sampler`], so a slow cgroup
//! read never delays a heartbeat), a new measurement of its services' volumes when there
//! is one ([`crate::volume_use::Meter`], sent until a heartbeat carrying it is answered),
//! and the agent's own API credential (the controller's answer says whether it stored it,
//! see [`crate::register`], and names the other nodes, whose host ports and agent ports
//! the agent then closes to jobs). Failures are logged and the loop goes on.

use std::sync::Arc;
use std::time::Duration;

use paas_api::{JobStats, NodeHeartbeat, VolumeUse};

use crate::agent::Agent;

/// Time between heartbeats.
pub const INTERVAL: Duration = Duration::from_secs(2);

/// Errors of one heartbeat.
#[derive(Debug, thiserror::Error)]
pub enum HeartbeatError {
    #[error("POST {url}: {source}")]
    Http {
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("POST {url}: the controller answered {status}: {message}")]
    Status {
        url: String,
        status: reqwest::StatusCode,
        /// The controller's error message (what to do, e.g. for a node name registered
        /// with another agent credential).
        message: String,
    },
}

/// The heartbeat the agent would send now, with `stats` as the jobs' resource use.
pub fn heartbeat(agent: &Agent, stats: Vec<JobStats>) -> NodeHeartbeat {
    NodeHeartbeat {
        name: agent.config.node_name.clone(),
        url: agent.url().unwrap_or_default().to_string(),
        memory_bytes: crate::util::mem_total_bytes(),
        jobs: agent.jobs.statuses(),
        layers: cached_layers(&agent.config.state_dir.join("layers")),
        stats,
        agent_token: Some(agent.credential.token().to_string()),
        volumes: Vec::new(),
    }
}

/// The digests of the unpacked layers in `dir` (`layers/<hex>/`; temp dirs skipped).
fn cached_layers(dir: &std::path::Path) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut layers: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.len() == 64 && n.bytes().all(|b| b.is_ascii_hexdigit()))
        .map(|n| format!("sha256:{n}"))
        .collect();
    layers.sort();
    layers
}

/// Sends one heartbeat to `controller`.
pub async fn send(
    agent: &Agent,
    controller: &str,
    stats: Vec<JobStats>,
) -> Result<(), HeartbeatError> {
    send_with_volumes(agent, controller, stats, Vec::new()).await
}

/// Sends one heartbeat to `controller` that also carries a measurement of the volumes.
pub async fn send_with_volumes(
    agent: &Agent,
    controller: &str,
    stats: Vec<JobStats>,
    volumes: Vec<VolumeUse>,
) -> Result<(), HeartbeatError> {
    let url = format!("{controller}/v1/nodes/heartbeat");
    let mut hb = heartbeat(agent, stats);
    hb.volumes = volumes;
    let resp = agent
        .client
        .post(&url)
        .bearer_auth(&agent.config.token)
        .timeout(Duration::from_secs(5))
        .json(&hb)
        .send()
        .await
        .map_err(|source| HeartbeatError::Http {
            url: url.clone(),
            source,
        })?;
    if !resp.status().is_success() {
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        let message = match serde_json::from_str::<paas_api::ErrorBody>(&body) {
            Ok(e) => e.error.message,
            Err(_) => body.trim().chars().take(300).collect(),
        };
        return Err(HeartbeatError::Status {
            url,
            status,
            message,
        });
    }
    if resp.headers().contains_key(paas_api::AGENT_TOKEN_STORED) {
        agent.credential.mark_registered();
    }
    if let Some(peers) = resp.headers().get(paas_api::PEER_NODES) {
        let peers = crate::network::tables::parse_peers(peers.to_str().unwrap_or_default());
        if let Err(e) = agent.network.set_peers(&peers).await {
            tracing::warn!("closing other nodes' ports to jobs: {e}");
        }
    }
    if let Some(ports) = resp.headers().get(paas_api::ADDON_PORTS) {
        let ports = crate::network::tables::parse_addon_ports(ports.to_str().unwrap_or_default());
        if let Err(e) = agent.network.set_addon_ports(&ports).await {
            tracing::warn!("opening add-ons on other nodes to their apps' jobs: {e}");
        }
    }
    Ok(())
}

/// Sends heartbeats forever (a no-op without a controller URL). Logs a failure once per
/// streak and a recovery when the controller answers again.
pub async fn run(agent: Arc<Agent>) {
    let Some(controller) = agent.config.controller.clone() else {
        return;
    };
    let mut failing = false;
    let mut sampler = crate::stats::Sampler::default();
    let _ = sampler.latest(&agent).await;
    sampler.settle(Duration::from_secs(1)).await;
    let mut meter = crate::volume_use::Meter::default();
    let mut ticker = tokio::time::interval(INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let stats = sampler.latest(&agent).await;
        let volumes = meter.fresh(&agent).await;
        let result = send_with_volumes(&agent, &controller, stats, volumes).await;
        if result.is_ok() {
            meter.delivered();
        }
        match result {
            Ok(()) if failing => {
                tracing::info!("heartbeat: the controller answers again");
                failing = false;
            }
            Ok(()) => {}
            Err(e) if !failing => {
                tracing::warn!("heartbeat failed (will keep trying): {e}");
                failing = true;
            }
            Err(e) => tracing::debug!("heartbeat failed: {e}"),
        }
    }
}
