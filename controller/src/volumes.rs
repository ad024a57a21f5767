//! An app's persistent volumes (`paas volumes:*`, `/v1/apps/{app}/volumes`): the rules and
//! the steps, shared by the REST API and the dashboard.
//!
//! A volume is made on one node, as the agent's sized volume `app-<app id>-<name>` (an ext4
//! filesystem of the asked size: writes past it fail with ENOSPC; keyed by the app's
//! permanent number, so a later app of the same name never gets it). It is mounted into
//! the jobs of one process type at one path; the scheduler then runs that type on the
//! volume's node only, one job at most (single writer, as Dokku and CapRover do), and
//! replaces it stop-first. Mounting and unmounting restart the type (no new release: the
//! mount belongs to the app, not to a release, like Dokku's storage:mount). While the node
//! is down the volume is unavailable and the type waits (`paas ps` says why).
//!
//! One-off jobs (`paas run`) do not mount volumes: the type's one job is the single writer.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::Serialize;

use crate::state::{Controller, NODE_TIMEOUT_MS};
use crate::store::{StoreError, VolumeRow};

/// Most volumes one app may have.
pub const MAX_VOLUMES_PER_APP: usize = 10;
/// Smallest and largest size of a volume (the agent's limits).
pub const MIN_SIZE_BYTES: u64 = 16 << 20;
pub const MAX_SIZE_BYTES: u64 = 1 << 40;

/// Why a volume operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum VolumesError {
    #[error("no app named {0}")]
    NoApp(String),
    #[error("{app} has no volume named {name}: see `paas volumes -a {app}`")]
    NotFound { app: String, name: String },
    #[error(
        "{0:?} is not a volume name: 1 to 30 lowercase letters, digits and `-`, starting with \
         a letter"
    )]
    InvalidName(String),
    #[error("{0}")]
    BadSize(String),
    #[error("{0}")]
    BadPath(String),
    #[error("{0}")]
    BadType(String),
    #[error("{app} already has a volume named {name}")]
    Exists { app: String, name: String },
    #[error(
        "{app} has {MAX_VOLUMES_PER_APP} volumes, the most an app may have: destroy one first"
    )]
    TooMany { app: String },
    #[error("no node named {0}: see `paas nodes`")]
    NoNode(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("{0}")]
    Conflict(String),
    #[error(
        "confirm with --confirm {app} (?confirm={app}): destroying volume {name} deletes its files"
    )]
    Confirm { app: String, name: String },
    #[error("node {node}: {message}")]
    Agent { node: String, message: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Where a volume is mounted.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Mount {
    #[serde(rename = "type")]
    pub process_type: String,
    pub path: String,
}

/// A volume as the API and the CLI show it.
#[derive(Debug, Clone, Serialize)]
pub struct VolumeInfo {
    pub name: String,
    pub size_bytes: u64,
    /// What its files use; `None` when its node cannot be asked (down).
    pub used_bytes: Option<u64>,
    pub available_bytes: Option<u64>,
    /// Less than 1% (at least 1 MiB) left: the app's writes fail with ENOSPC.
    pub full: Option<bool>,
    pub node: String,
    /// `up`, `draining` or `down` (the volume is unavailable while its node is down).
    pub node_state: &'static str,
    pub mounts: Vec<Mount>,
    pub created_at: String,
}

/// The volume name rule: `[a-z][a-z0-9-]{0,29}`.
pub fn valid_name(name: &str) -> bool {
    let mut b = name.bytes();
    b.next().is_some_and(|c| c.is_ascii_lowercase())
        && b.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-')
        && name.len() <= 30
}

/// `1G`, `512M`, `1.5G`, `2T` or a number of bytes → bytes, within the limits.
pub fn parse_size(size: &str) -> Result<u64, VolumesError> {
    let bad = || {
        VolumesError::BadSize(format!(
            "size {size:?} is not a volume size: use an amount like 512M, 1G or 1.5G (from 16M \
             to 1T)"
        ))
    };
    let s = size.trim().to_ascii_uppercase();
    let s = s
        .strip_suffix("IB")
        .or_else(|| s.strip_suffix('B'))
        .unwrap_or(&s);
    let (num, unit) = match s.char_indices().last() {
        Some((i, 'K')) => (&s[..i], 1u64 << 10),
        Some((i, 'M')) => (&s[..i], 1 << 20),
        Some((i, 'G')) => (&s[..i], 1 << 30),
        Some((i, 'T')) => (&s[..i], 1 << 40),
        _ => (s, 1),
    };
    let value: f64 = num.trim().parse().map_err(|_| bad())?;
    if !value.is_finite() || value <= 0.0 {
        return Err(bad());
    }
    let bytes = (value * unit as f64) as u64;
    // Whole MiB (ext4 blocks), rounded up.
    let bytes = bytes.div_ceil(1 << 20) << 20;
    if !(MIN_SIZE_BYTES..=MAX_SIZE_BYTES).contains(&bytes) {
        return Err(bad());
    }
    Ok(bytes)
}

/// `n` bytes as people write it: `1G`, `512M`, `1.5G`.
pub fn display_size(n: u64) -> String {
    let g = n as f64 / (1u64 << 30) as f64;
    if n >= 1 << 30 {
        let s = format!("{g:.1}");
        format!("{}G", s.trim_end_matches(".0"))
    } else {
        format!("{}M", n.div_ceil(1 << 20))
    }
}

/// Checks a mount path: absolute, plain (no `.`/`..`/empty parts), not `/`, `/app` itself
/// or a system directory.
pub fn check_path(path: &str) -> Result<(), VolumesError> {
    let bad = |why: &str| VolumesError::BadPath(format!("mount path {path:?} {why}"));
    if !path.starts_with('/') || path.len() > 200 {
        return Err(bad("must be an absolute path such as /app/uploads"));
    }
    let parts: Vec<&str> = path[1..].split('/').collect();
    if parts
        .iter()
        .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(bad(
            "must be plain: no empty, `.` or `..` parts, no trailing /",
        ));
    }
    if !path
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"/_.-".contains(&b))
    {
        return Err(bad("may hold only letters, digits, `/`, `_`, `.` and `-`"));
    }
    const SYSTEM: &[&str] = &[
        "app", "proc", "sys", "dev", "etc", "bin", "sbin", "usr", "lib",
    ];
    if parts.len() == 1 && SYSTEM.contains(&parts[0]) || ["proc", "sys", "dev"].contains(&parts[0])
    {
        return Err(bad(
            "would hide or touch the system or the app's code: mount below it, e.g. /app/uploads or /data",
        ));
    }
    Ok(())
}

/// The node a process type must run on: the node of the volumes mounted into it.
pub fn pinned_node<'a>(volumes: &'a [VolumeRow], app: &str, process_type: &str) -> Option<&'a str> {
    volumes
        .iter()
        .find(|v| v.app == app && v.mount.as_ref().is_some_and(|(t, _)| t == process_type))
        .map(|v| v.node.as_str())
}

fn mounted_into<'a>(
    volumes: &'a [VolumeRow],
    app: &'a str,
    process_type: &'a str,
) -> impl Iterator<Item = &'a VolumeRow> + 'a {
    volumes
        .iter()
        .filter(move |v| v.app == app && v.mount.as_ref().is_some_and(|(t, _)| t == process_type))
}

/// Why a volume-backed process type does not run while its node is down.
pub fn waiting_reason(volumes: &[VolumeRow], app: &str, process_type: &str) -> String {
    let names: Vec<&str> = mounted_into(volumes, app, process_type)
        .map(|v| v.name.as_str())
        .collect();
    let node = pinned_node(volumes, app, process_type).unwrap_or("?");
    format!(
        "waiting for node {node}, which holds volume {} and is down: the process starts \
         there when the node is back",
        names.join(", ")
    )
}

/// The job's volume mounts for `process_type` of the app whose volumes these are.
pub fn job_mounts(volumes: &[VolumeRow], process_type: &str) -> Vec<paas_api::VolumeMount> {
    volumes
        .iter()
        .filter_map(|v| {
            let (t, path) = v.mount.as_ref()?;
            (t == process_type).then(|| paas_api::VolumeMount {
                name: v.agent_name(),
                path: path.clone(),
                readonly: false,
            })
        })
        .collect()
}

/// Refuses more than one process of a type with a volume (`ps:scale`, app.json).
pub fn check_scale(
    volumes: &[VolumeRow],
    app: &str,
    process_type: &str,
    quantity: u32,
) -> Result<(), VolumesError> {
    let Some(v) = mounted_into(volumes, app, process_type).next() else {
        return Ok(());
    };
    if quantity <= 1 {
        return Ok(());
    }
    Err(VolumesError::Conflict(format!(
        "{process_type} has volume {} mounted, so it runs one process at most (a volume has a \
         single writer, on one node): scale {process_type} to 0 or 1, or unmount the volume \
         first (paas volumes:unmount {} -a {app})",
        v.name, v.name
    )))
}

/// A node's state as the volume list shows it.
struct Nodes {
    rows: Vec<crate::store::NodeRow>,
    draining: BTreeSet<String>,
    now: i64,
}

impl Nodes {
    async fn load(c: &Controller) -> Result<Nodes, VolumesError> {
        Ok(Nodes {
            rows: c.store.list_nodes().await?,
            draining: c.store.draining_nodes().await?,
            now: crate::util::unix_ms(),
        })
    }

    fn row(&self, name: &str) -> Option<&crate::store::NodeRow> {
        self.rows.iter().find(|n| n.name == name)
    }

    fn up(&self, name: &str) -> bool {
        self.row(name)
            .is_some_and(|n| self.now - n.last_seen_ms <= NODE_TIMEOUT_MS)
    }

    fn state(&self, name: &str) -> &'static str {
        match (self.up(name), self.draining.contains(name)) {
            (false, _) => "down",
            (true, true) => "draining",
            (true, false) => "up",
        }
    }
}

async fn app_id(c: &Controller, app: &str) -> Result<u32, VolumesError> {
    c.store
        .app_id(app)
        .await?
        .ok_or_else(|| VolumesError::NoApp(app.to_string()))
}

async fn row(c: &Controller, app: &str, name: &str) -> Result<VolumeRow, VolumesError> {
    app_id(c, app).await?;
    c.store
        .volume(app, name)
        .await?
        .ok_or_else(|| VolumesError::NotFound {
            app: app.to_string(),
            name: name.to_string(),
        })
}

fn agent_error(node: &str, e: &crate::agent_client::AgentError) -> VolumesError {
    VolumesError::Agent {
        node: node.to_string(),
        message: e.user_message(),
    }
}

/// Creates volume `name` of `size` on `node` (or the up, not draining node holding the
/// fewest volumes).
pub async fn create(
    c: &Controller,
    app: &str,
    name: &str,
    size: &str,
    node: Option<&str>,
) -> Result<VolumeInfo, VolumesError> {
    let id = app_id(c, app).await?;
    if !valid_name(name) {
        return Err(VolumesError::InvalidName(name.to_string()));
    }
    let size_bytes = parse_size(size)?;
    let existing = c.store.volumes(Some(app)).await?;
    if existing.iter().any(|v| v.name == name) {
        return Err(VolumesError::Exists {
            app: app.to_string(),
            name: name.to_string(),
        });
    }
    if existing.len() >= MAX_VOLUMES_PER_APP {
        return Err(VolumesError::TooMany {
            app: app.to_string(),
        });
    }
    let nodes = Nodes::load(c).await?;
    let node = match node {
        Some(n) => {
            if nodes.row(n).is_none() {
                return Err(VolumesError::NoNode(n.to_string()));
            }
            if !nodes.up(n) {
                return Err(VolumesError::Unavailable(format!(
                    "node {n} is down: pick another (paas nodes), or leave out --node"
                )));
            }
            n.to_string()
        }
        None => {
            let all = c.store.volumes(None).await?;
            nodes
                .rows
                .iter()
                .filter(|n| nodes.state(&n.name) == "up")
                .min_by_key(|n| (all.iter().filter(|v| v.node == n.name).count(), &n.name))
                .map(|n| n.name.clone())
                .ok_or_else(|| {
                    VolumesError::Unavailable(
                        "no node is up to hold the volume: start a node agent (paas nodes)".into(),
                    )
                })?
        }
    };
    let url = nodes.row(&node).map(|n| n.url.clone()).unwrap_or_default();
    if !c.store.add_volume(app, name, id, size_bytes, &node).await? {
        return Err(VolumesError::Exists {
            app: app.to_string(),
            name: name.to_string(),
        });
    }
    let agent_name = format!("app-{id}-{name}");
    let made = match c.agents.create_volume(&url, &agent_name, size_bytes).await {
        Ok(v) => v,
        Err(e) => {
            // Nothing half-made stays listed.
            let _ = c.store.remove_volume(app, name).await;
            return Err(agent_error(&node, &e));
        }
    };
    tracing::info!(%app, volume = %name, %node, size_bytes, "volume created");
    let row = row(c, app, name).await?;
    Ok(info(&row, &nodes, Some(&made)))
}

fn info(row: &VolumeRow, nodes: &Nodes, live: Option<&paas_api::SizedVolume>) -> VolumeInfo {
    VolumeInfo {
        name: row.name.clone(),
        size_bytes: row.size_bytes,
        used_bytes: live.map(|l| l.used_bytes),
        available_bytes: live.map(|l| l.available_bytes),
        full: live.map(|l| l.full),
        node: row.node.clone(),
        node_state: nodes.state(&row.node),
        mounts: row
            .mount
            .iter()
            .map(|(t, p)| Mount {
                process_type: t.clone(),
                path: p.clone(),
            })
            .collect(),
        created_at: row.created_at.clone(),
    }
}

async fn live(c: &Controller, nodes: &Nodes, row: &VolumeRow) -> Option<paas_api::SizedVolume> {
    if !nodes.up(&row.node) {
        return None;
    }
    let url = &nodes.row(&row.node)?.url;
    match c.agents.volume(url, &row.agent_name()).await {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(app = %row.app, volume = %row.name, "asking its node: {}", e.user_message());
            None
        }
    }
}

/// The app's volumes with their use (asked of their nodes).
pub async fn list(c: &Controller, app: &str) -> Result<Vec<VolumeInfo>, VolumesError> {
    app_id(c, app).await?;
    let rows = c.store.volumes(Some(app)).await?;
    let nodes = Nodes::load(c).await?;
    let lives = futures_util::future::join_all(rows.iter().map(|r| live(c, &nodes, r))).await;
    Ok(rows
        .iter()
        .zip(lives)
        .map(|(r, l)| info(r, &nodes, l.as_ref()))
        .collect())
}

/// One volume with its use.
pub async fn get(c: &Controller, app: &str, name: &str) -> Result<VolumeInfo, VolumesError> {
    let row = row(c, app, name).await?;
    let nodes = Nodes::load(c).await?;
    let l = live(c, &nodes, &row).await;
    Ok(info(&row, &nodes, l.as_ref()))
}

/// The ids of the app's starting or running jobs of `process_type`.
fn active_jobs(c: &Controller, app: &str, process_type: &str) -> Vec<String> {
    c.scheduler
        .snapshot()
        .jobs
        .iter()
        .filter(|j| j.app == app && j.process_type == process_type)
        .filter(|j| {
            matches!(
                j.phase,
                crate::scheduler::Phase::Starting | crate::scheduler::Phase::Up
            )
        })
        .map(|j| j.id.clone())
        .collect()
}

/// Mounts volume `name` into the jobs of `process_type` at `path`, and restarts that type
/// (stop-first) on the volume's node.
pub async fn mount(
    c: &Controller,
    app: &str,
    name: &str,
    process_type: &str,
    path: &str,
) -> Result<VolumeInfo, VolumesError> {
    let row = row(c, app, name).await?;
    check_path(path)?;
    check_type(c, app, process_type).await?;
    if let Some((t, p)) = &row.mount {
        if t == process_type && p == path {
            return get(c, app, name).await;
        }
        return Err(VolumesError::Conflict(format!(
            "volume {name} is already mounted into {t} at {p}: unmount it first (paas \
             volumes:unmount {name} -a {app})"
        )));
    }
    let all = c.store.volumes(Some(app)).await?;
    for other in mounted_into(&all, app, process_type) {
        let (_, p) = other.mount.as_ref().expect("mounted");
        let nested = |a: &str, b: &str| a == b || b.starts_with(&format!("{a}/"));
        if nested(p, path) || nested(path, p) {
            return Err(VolumesError::Conflict(format!(
                "{process_type} already has volume {} at {p}: pick a path that is not inside \
                 or around it",
                other.name
            )));
        }
        if other.node != row.node {
            return Err(VolumesError::Conflict(format!(
                "{process_type} already has volume {} on node {}, and {name} is on node {}: a \
                 process type runs on one node, so its volumes must share it (create {name} \
                 with --node {})",
                other.name, other.node, row.node, other.node
            )));
        }
    }
    let count = c
        .store
        .formations()
        .await?
        .into_iter()
        .find(|f| f.app == app && f.process_type == process_type)
        .map_or(0, |f| f.count);
    let mine = VolumeRow {
        mount: Some((process_type.to_string(), path.to_string())),
        ..row.clone()
    };
    check_scale(&[mine], app, process_type, count)?;
    c.store
        .set_volume_mount(app, name, Some((process_type, path)))
        .await?;
    c.scheduler.replace(active_jobs(c, app, process_type));
    tracing::info!(%app, volume = %name, %process_type, %path, "volume mounted: restarting the type");
    get(c, app, name).await
}

/// A process type name, and one the current release has (when there is a release).
async fn check_type(c: &Controller, app: &str, process_type: &str) -> Result<(), VolumesError> {
    let ok = !process_type.is_empty()
        && process_type.len() <= 30
        && process_type
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !ok {
        return Err(VolumesError::BadType(format!(
            "{process_type:?} is not a process type name (letters, digits, - and _)"
        )));
    }
    let current = c.store.get_app(app).await?.and_then(|a| a.current_release);
    let Some(version) = current else {
        return Ok(());
    };
    let Some(release) = c.store.get_release(app, version).await? else {
        return Ok(());
    };
    if !release.process_types.contains_key(process_type) {
        let types: Vec<&str> = release.process_types.keys().map(String::as_str).collect();
        return Err(VolumesError::BadType(format!(
            "{app} has no process type {process_type:?}: its release has {}",
            types.join(", ")
        )));
    }
    Ok(())
}

/// Unmounts volume `name` and restarts the type it was mounted into.
pub async fn unmount(c: &Controller, app: &str, name: &str) -> Result<VolumeInfo, VolumesError> {
    let row = row(c, app, name).await?;
    let Some((process_type, _)) = &row.mount else {
        return Err(VolumesError::Conflict(format!(
            "volume {name} is not mounted: nothing to unmount"
        )));
    };
    c.store.set_volume_mount(app, name, None).await?;
    c.scheduler.replace(active_jobs(c, app, process_type));
    tracing::info!(%app, volume = %name, %process_type, "volume unmounted: restarting the type");
    get(c, app, name).await
}

/// Destroys volume `name` and its files (`confirm` must be the app's name). Refused while
/// it is mounted. On a down node its files stay on that node's disk, where no app can
/// mount them.
pub async fn destroy(
    c: &Controller,
    app: &str,
    name: &str,
    confirm: Option<&str>,
) -> Result<(), VolumesError> {
    let row = row(c, app, name).await?;
    if let Some((t, p)) = &row.mount {
        return Err(VolumesError::Conflict(format!(
            "volume {name} is mounted into {t} at {p}: unmount it first (paas volumes:unmount \
             {name} -a {app}), then destroy it"
        )));
    }
    if confirm != Some(app) {
        return Err(VolumesError::Confirm {
            app: app.to_string(),
            name: name.to_string(),
        });
    }
    let nodes = Nodes::load(c).await?;
    if let Some(n) = nodes.row(&row.node).filter(|_| nodes.up(&row.node)) {
        match c.agents.delete_volume(&n.url, &row.agent_name()).await {
            Ok(_) => {}
            Err(e) if e.is_conflict() => {
                return Err(VolumesError::Conflict(format!(
                    "volume {name} is still in use by a job being stopped: try again in a few \
                     seconds ({})",
                    e.user_message()
                )))
            }
            Err(e) => return Err(agent_error(&row.node, &e)),
        }
    } else {
        tracing::warn!(%app, volume = %name, node = %row.node,
            "node is down: the volume's files stay on it (no app can mount them)");
    }
    c.store.remove_volume(app, name).await?;
    tracing::info!(%app, volume = %name, "volume destroyed");
    Ok(())
}

/// Deletes a destroyed app's volumes on their nodes, in the background: the app's jobs are
/// being stopped, so each is tried again (every 2 s, for 2 minutes) while still in use.
pub fn delete_destroyed(c: &Arc<Controller>, volumes: Vec<VolumeRow>) {
    if volumes.is_empty() {
        return;
    }
    let c = Arc::clone(c);
    tokio::spawn(async move {
        for v in volumes {
            for _ in 0..60 {
                let nodes = match Nodes::load(&c).await {
                    Ok(n) => n,
                    Err(e) => {
                        tracing::warn!("listing nodes to delete a destroyed app's volume: {e}");
                        break;
                    }
                };
                let Some(n) = nodes.row(&v.node).filter(|_| nodes.up(&v.node)) else {
                    tracing::warn!(app = %v.app, volume = %v.name, node = %v.node,
                        "node is down: the destroyed app's volume stays on it (no app can mount it)");
                    break;
                };
                match c.agents.delete_volume(&n.url, &v.agent_name()).await {
                    Ok(_) => {
                        tracing::info!(app = %v.app, volume = %v.name, "destroyed app's volume deleted");
                        break;
                    }
                    Err(e) if e.is_conflict() => {
                        tokio::time::sleep(std::time::Duration::from_secs(2)).await;
                    }
                    Err(e) => {
                        tracing::warn!(app = %v.app, volume = %v.name,
                            "deleting a destroyed app's volume: {}", e.user_message());
                        break;
                    }
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["uploads", "a", "data-2", &"a".repeat(30)] {
            assert!(valid_name(ok), "{ok}");
        }
        for bad in ["", "2x", "Up", "a_b", "a.b", "../x", &"a".repeat(31)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("1gb").unwrap(), 1 << 30);
        assert_eq!(parse_size("512M").unwrap(), 512 << 20);
        assert_eq!(parse_size("1.5G").unwrap(), 3 << 29);
        assert_eq!(parse_size("16MiB").unwrap(), 16 << 20);
        assert_eq!(parse_size("1T").unwrap(), 1 << 40);
        assert_eq!(parse_size("20000000").unwrap(), 20 << 20);
        for bad in ["", "G", "-1G", "1X", "8M", "2T", "nan", "1e400G"] {
            assert!(parse_size(bad).is_err(), "{bad}");
        }
        assert_eq!(display_size(1 << 30), "1G");
        assert_eq!(display_size(3 << 29), "1.5G");
        assert_eq!(display_size(512 << 20), "512M");
    }

    #[test]
    fn paths() {
        for ok in ["/app/uploads", "/data", "/var/lib/app", "/app/public/media"] {
            check_path(ok).unwrap();
        }
        for bad in [
            "", "app/x", "/", "/app", "/app/", "/a//b", "/a/../b", "/a/./b", "/proc/x", "/dev",
            "/etc", "/a b", "/a;b",
        ] {
            assert!(check_path(bad).is_err(), "{bad}");
        }
    }

    fn vol(name: &str, node: &str, mount: Option<(&str, &str)>) -> VolumeRow {
        VolumeRow {
            app: "shop".into(),
            name: name.into(),
            app_id: 7,
            size_bytes: 1 << 30,
            node: node.into(),
            mount: mount.map(|(t, p)| (t.into(), p.into())),
            created_at: String::new(),
        }
    }

    #[test]
    fn a_mounted_type_is_pinned_scaled_to_one_and_gets_its_mounts() {
        let vols = [
            vol("uploads", "n2", Some(("web", "/app/uploads"))),
            vol("spare", "n1", None),
        ];
        assert_eq!(pinned_node(&vols, "shop", "web"), Some("n2"));
        assert_eq!(pinned_node(&vols, "shop", "worker"), None);
        assert_eq!(pinned_node(&vols, "other", "web"), None);
        check_scale(&vols, "shop", "web", 1).unwrap();
        check_scale(&vols, "shop", "worker", 5).unwrap();
        let refused = check_scale(&vols, "shop", "web", 2)
            .unwrap_err()
            .to_string();
        assert!(refused.contains("single writer"), "{refused}");
        let mounts = job_mounts(&vols, "web");
        assert_eq!(mounts.len(), 1);
        assert_eq!(mounts[0].name, "app-7-uploads");
        assert_eq!(mounts[0].path, "/app/uploads");
        assert!(job_mounts(&vols, "worker").is_empty());
        assert!(waiting_reason(&vols, "shop", "web").contains("node n2"));
    }
}
