//! The loop of a controller that does not lead: routes and the snapshot come from the
//! store, never from the agents (see [`follow`]).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use super::handle::Snapshot;
use super::observe::{node_last_seen, recorded_phase};
use super::runner::INTERVAL;
use super::{ObservedJob, Phase};
use crate::state::{Controller, NODE_TIMEOUT_MS};
use crate::util::unix_ms;

/// The loop of a controller that does not lead (PostgreSQL, another controller runs the
/// scheduler): it never asks agents or writes the store. Its router serves the route table
/// the leader saved in the store (re-read when its version moves), and its snapshot (for a
/// push waiting for its deploy, and app status) comes from the store's job rows and that
/// table, so every controller's router serves every app.
pub async fn follow(c: Arc<Controller>) {
    let mut pass = 0;
    let mut version = None;
    loop {
        pass += 1;
        if let Err(e) = follow_pass(&c, pass, &mut version).await {
            tracing::warn!("route refresh from the store failed (will retry): {e}");
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = c.scheduler.notify.notified() => {}
        }
    }
}

async fn follow_pass(
    c: &Arc<Controller>,
    pass: u64,
    version: &mut Option<i64>,
) -> Result<(), crate::routing::RoutingError> {
    let saved = c.store.routes_version().await?;
    if saved != *version {
        *version = crate::routing::load_routes(&c.store, &c.routes).await?;
    }
    let routed: HashMap<String, Vec<String>> = c
        .routes
        .routes()
        .iter()
        .map(|r| {
            let ids = r.backends.iter().map(|b| b.job_id.clone()).collect();
            (r.app.clone(), ids)
        })
        .collect();
    let in_routes: HashSet<&str> = routed.values().flatten().map(String::as_str).collect();
    let now = unix_ms();
    let nodes = c.store.list_nodes().await?;
    let jobs: Vec<ObservedJob> = c
        .store
        .active_jobs()
        .await?
        .into_iter()
        .filter(|row| now - node_last_seen(&nodes, &row.node) <= NODE_TIMEOUT_MS)
        .filter_map(|row| {
            let phase = recorded_phase(&row.state)?;
            let healthy = phase == Phase::Up
                && (row.process_type != "web" || in_routes.contains(row.id.as_str()));
            Some(ObservedJob {
                id: row.id,
                app: row.app,
                release: row.release,
                process_type: row.process_type,
                node: row.node,
                phase,
                healthy,
            })
        })
        .collect();
    c.scheduler.snapshot.send_replace(Arc::new(Snapshot {
        pass,
        jobs,
        routed,
        crashing: HashMap::new(),
        failed_checks: HashMap::new(),
        waiting: HashMap::new(),
    }));
    Ok(())
}
