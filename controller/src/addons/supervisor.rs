//! The add-on loop (the leader runs it, next to the scheduler): every 2 s, or at once when
//! [`wake`] is called, for each add-on in the store:
//!
//! * its owner app is gone (destroyed) → its job, volume and row are removed;
//! * attachments of apps that are gone are dropped;
//! * no node yet → the up, non-draining node with the fewest jobs is picked and kept
//!   (the data lives there from then on: the add-on is pinned to it);
//! * its job runs and accepts TCP connections on its port → `available`; when its address
//!   changed, every attached app gets the new URL in a release ([`crate::apps::set_config`]);
//!   when the attached apps changed, the job is replaced (its guests are fixed per job);
//! * its job crashed or ended → removed, and started again after [`super::restart_delay`];
//! * its node is down → `unavailable` (the data is there; nothing moves);
//! * its daily backup is due ([`super::backups::scheduled_pass`]) → captured, and the
//!   scheduled backups past the retention count deleted.

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use paas_api::JobState;
use tokio::sync::Notify;

use super::{guests_of, job_spec, url, volume};
use crate::state::{Controller, NODE_TIMEOUT_MS};
use crate::store::{AddonRow, AttachmentRow, NodeRow, StoreError};
use crate::util::{random_hex, unix_ms};

const INTERVAL: Duration = Duration::from_secs(2);
const STOP_GRACE_SECONDS: u64 = 10;

/// States an add-on is shown in.
pub mod state {
    pub const CREATING: &str = "creating";
    pub const STARTING: &str = "starting";
    pub const AVAILABLE: &str = "available";
    pub const CRASHED: &str = "crashed";
    pub const UNAVAILABLE: &str = "unavailable";
}

fn wakeup() -> &'static Notify {
    static WAKE: OnceLock<Notify> = OnceLock::new();
    WAKE.get_or_init(Notify::new)
}

/// Runs a pass of the loop soon (an add-on was made, attached or detached).
pub fn wake() {
    wakeup().notify_one();
}

/// The loop; runs until aborted.
pub async fn run(c: Arc<Controller>) {
    loop {
        if let Err(e) = pass(&c).await {
            tracing::warn!("add-on pass: {e}");
        }
        let _ = tokio::time::timeout(INTERVAL, wakeup().notified()).await;
    }
}

/// The up, non-draining nodes.
async fn up_nodes(c: &Controller) -> Result<Vec<NodeRow>, StoreError> {
    let now = unix_ms();
    let draining = c.store.draining_nodes().await?;
    Ok(c.store
        .list_nodes()
        .await?
        .into_iter()
        .filter(|n| now - n.last_seen_ms <= NODE_TIMEOUT_MS && !draining.contains(&n.name))
        .collect())
}

/// One pass over every add-on.
pub async fn pass(c: &Arc<Controller>) -> Result<(), StoreError> {
    let addons = c.store.addons().await?;
    sweep(c, &addons).await?;
    if addons.is_empty() {
        return Ok(());
    }
    let attachments = c.store.addon_attachments(None).await?;
    let nodes = c.store.list_nodes().await?;
    let up = up_nodes(c).await?;
    for a in addons.iter().cloned() {
        let mine: Vec<AttachmentRow> = attachments
            .iter()
            .filter(|t| t.addon == a.name)
            .cloned()
            .collect();
        if let Err(e) = one(c, a, mine, &nodes, &up).await {
            tracing::warn!("add-on pass: {e}");
        }
    }
    super::backups::scheduled_pass(c, &addons).await
}

async fn one(
    c: &Arc<Controller>,
    mut a: AddonRow,
    attachments: Vec<AttachmentRow>,
    nodes: &[NodeRow],
    up: &[NodeRow],
) -> Result<(), StoreError> {
    if c.store.app_name_by_id(a.app_id).await?.is_none() {
        tracing::info!(addon = %a.name, "the add-on's app is gone: removing the add-on");
        for t in &attachments {
            if let Some(app) = t.app.as_deref() {
                super::ops::unset_var(c, app, &t.var).await;
            }
        }
        teardown(c, &a).await;
        return c.store.delete_addon(&a.name).await;
    }
    let mut live = Vec::new();
    for t in attachments {
        if t.app.is_none() {
            c.store.detach_addon(&t.addon, t.app_id).await?;
        } else {
            live.push(t);
        }
    }
    let mut guests: Vec<u32> = live.iter().map(|t| t.app_id).collect();
    guests.sort_unstable();
    guests.dedup();
    let before = a.clone();

    if a.node.is_none() {
        let live_jobs = c
            .heartbeats
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let pick = up
            .iter()
            .min_by_key(|n| (live_jobs.get(&n.name).map_or(0, |l| l.jobs), n.name.clone()));
        match pick {
            Some(n) => a.node = Some(n.name.clone()),
            None => {
                a.state = state::CREATING.into();
                a.last_exit = Some("waiting for a node to be up".into());
                return save(c, &before, &a).await;
            }
        }
    }
    let node = a.node.clone().unwrap_or_default();
    let Some(url_of_node) = nodes.iter().find(|n| n.name == node).map(|n| n.url.clone()) else {
        a.state = state::UNAVAILABLE.into();
        a.last_exit = Some(format!("its node {node} is no longer registered"));
        return save(c, &before, &a).await;
    };
    let node_up = nodes
        .iter()
        .any(|n| n.name == node && unix_ms() - n.last_seen_ms <= NODE_TIMEOUT_MS);
    if !node_up {
        a.state = state::UNAVAILABLE.into();
        a.last_exit = Some(format!(
            "its node {node} is down: its data is there; it comes back with the node"
        ));
        return save(c, &before, &a).await;
    }

    if let Some(id) = a.job_id.clone() {
        match c.agents.job(&url_of_node, &id).await {
            Ok(status) => match status.state {
                JobState::Up => {
                    if guests_of(&status.labels) != guests {
                        tracing::info!(addon = %a.name, "attachments changed: replacing its job");
                        remove_job(c, &url_of_node, &id).await;
                        a.job_id = None;
                        a.state = state::STARTING.into();
                    } else if answers(status.addr.as_deref()).await {
                        a.state = state::AVAILABLE.into();
                        a.restarts = 0;
                        a.last_exit = None;
                        if a.addr != status.addr {
                            a.addr = status.addr.clone();
                            save(c, &before, &a).await?;
                            publish(c, &a, &live).await;
                            return Ok(());
                        }
                    } else {
                        a.state = state::STARTING.into();
                    }
                }
                JobState::Starting => a.state = state::STARTING.into(),
                JobState::Stopping => {}
                JobState::Down | JobState::Crashed => {
                    let mut reason = status
                        .exit
                        .map(|e| e.reason)
                        .unwrap_or_else(|| "it ended".into());
                    // Its last words say why (a full volume, a broken data dir): kept in
                    // the add-on's state reason, since the job and its output go away.
                    let output = c.agents.logs(&url_of_node, &id).await.unwrap_or_default();
                    if let Some(last) = last_words(&output) {
                        reason = format!("{reason}: {last}");
                    }
                    tracing::warn!(addon = %a.name, job = %id, %reason, "add-on job ended");
                    remove_job(c, &url_of_node, &id).await;
                    a.job_id = None;
                    a.restarts = a.restarts.saturating_add(1);
                    a.last_exit = Some(reason);
                    a.state = state::CRASHED.into();
                    a.next_start_ms =
                        unix_ms() + super::restart_delay(a.restarts).as_millis() as i64;
                }
            },
            Err(e) if e.is_not_found() => {
                a.job_id = None;
                a.state = state::STARTING.into();
            }
            Err(e) => {
                a.state = state::UNAVAILABLE.into();
                a.last_exit = Some(format!("its node does not answer: {}", e.user_message()));
            }
        }
    }
    if a.job_id.is_none() && unix_ms() >= a.next_start_ms {
        let id = format!("addon-{}-{}", a.id, random_hex(3));
        a.job_id = Some(id.clone());
        if a.state != state::CRASHED {
            a.state = state::STARTING.into();
        }
        // The row names the job before the agent is asked (a restarted controller finds it);
        // an add-on destroyed meanwhile is not started again.
        if c.store.addon(&a.name).await?.is_none() {
            return Ok(());
        }
        save(c, &before, &a).await?;
        let spec = job_spec(&c.settings, &a, &id, &guests);
        tracing::info!(addon = %a.name, job = %id, %node, "starting the add-on's job");
        if let Err(e) = c.agents.start_job(&url_of_node, &spec).await {
            let before = a.clone();
            remove_job(c, &url_of_node, &id).await;
            a.job_id = None;
            a.restarts = a.restarts.saturating_add(1);
            a.last_exit = Some(format!("starting its job failed: {}", e.user_message()));
            a.state = state::CRASHED.into();
            a.next_start_ms = unix_ms() + super::restart_delay(a.restarts).as_millis() as i64;
            return save(c, &before, &a).await;
        }
        return Ok(());
    }
    save(c, &before, &a).await
}

/// Removes add-on jobs the store does not name (an add-on destroyed while its job was
/// being started, a controller that stopped between two steps).
async fn sweep(c: &Controller, addons: &[AddonRow]) -> Result<(), StoreError> {
    for n in up_nodes(c).await? {
        let Ok(jobs) = c.agents.list_jobs(&n.url).await else {
            continue;
        };
        for j in jobs {
            if j.labels
                .get(crate::scheduler::labels::KIND)
                .map(String::as_str)
                != Some(super::KIND_ADDON)
            {
                continue;
            }
            let wanted = addons
                .iter()
                .any(|a| a.job_id.as_deref() == Some(j.id.as_str()));
            if !wanted {
                tracing::info!(job = %j.id, node = %n.name, "removing an add-on job no add-on names");
                remove_job(c, &n.url, &j.id).await;
            }
        }
    }
    Ok(())
}

/// The last non-empty line of a job's output (at most 300 characters).
fn last_words(output: &str) -> Option<String> {
    let line = output.lines().rev().find(|l| !l.trim().is_empty())?;
    Some(line.trim().chars().take(300).collect())
}

async fn save(c: &Controller, before: &AddonRow, a: &AddonRow) -> Result<(), StoreError> {
    if before != a {
        c.store.update_addon_run(a).await?;
    }
    Ok(())
}

/// A TCP connect to the add-on's address within 2 s.
async fn answers(addr: Option<&str>) -> bool {
    let Some(addr) = addr else { return false };
    matches!(
        tokio::time::timeout(Duration::from_secs(2), tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

/// Sets the add-on's URL on every attached app whose config does not hold it yet (a
/// release each, through the store's one release transaction).
pub async fn publish(c: &Arc<Controller>, a: &AddonRow, attachments: &[AttachmentRow]) {
    let Some(addr) = a.addr.as_deref() else {
        return;
    };
    let value = url(a, addr);
    for t in attachments {
        let Some(app) = t.app.as_deref() else {
            continue;
        };
        let current = c.store.config_vars(app).await.unwrap_or_default();
        if current.get(&t.var) == Some(&value) {
            continue;
        }
        let changes = BTreeMap::from([(t.var.clone(), Some(value.clone()))]);
        match crate::apps::set_config(c, app, &changes).await {
            Ok(_) => tracing::info!(addon = %a.name, %app, var = %t.var, "add-on URL set"),
            Err(e) => tracing::warn!(addon = %a.name, %app, "setting the add-on URL: {e}"),
        }
    }
}

/// Stops and deletes a job (errors logged: the next pass tries again).
pub async fn remove_job(c: &Controller, node_url: &str, id: &str) {
    if let Err(e) = c.agents.stop_job(node_url, id, STOP_GRACE_SECONDS).await {
        if !e.is_not_found() {
            tracing::warn!(job = %id, "stopping an add-on job: {}", e.user_message());
        }
    }
    if let Err(e) = c.agents.delete_job(node_url, id).await {
        if !e.is_not_found() {
            tracing::warn!(job = %id, "removing an add-on job: {}", e.user_message());
        }
    }
}

/// Stops the add-on's job and deletes its volume (its data) on its node. Its backups (dump files and rows) go too.
pub async fn teardown(c: &Controller, a: &AddonRow) {
    if let Err(e) = super::backups::delete_all(c, a).await {
        tracing::warn!(addon = %a.name, "deleting the add-on's backups: {e}");
    }
    let Some(node) = a.node.as_deref() else {
        return;
    };
    let Ok(nodes) = c.store.list_nodes().await else {
        return;
    };
    let Some(n) = nodes.iter().find(|n| n.name == node) else {
        return;
    };
    if let Some(id) = a.job_id.as_deref() {
        remove_job(c, &n.url, id).await;
    }
    if let Err(e) = c.agents.delete_volume(&n.url, &volume(a.id)).await {
        tracing::warn!(addon = %a.name, "deleting the add-on's volume: {}", e.user_message());
    }
}
