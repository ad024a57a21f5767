//! The layer cache's size budget (`--layer-cache-bytes`): least recently used layers are
//! removed until the cache fits, never one a job uses.
//!
//! Per layer the cache keeps `layers/.meta/<hex>`: its content is the layer's disk usage
//! in bytes (measured once, after the unpack), its mtime the layer's last use (every pull
//! that resolves the layer touches it). "In use" is the union of
//! - the layers of every container the runtime has (running or not yet deleted), read
//!   through [`paas_runtime::Runtime::layers`], and
//! - the layers pinned by pulls: a pull pins each layer before it checks the cache, and
//!   the [`super::Image`] it returns keeps them pinned until it is dropped (after the job's
//!   container exists).
//!
//! A prune holds the pin table's lock while it reads the runtime's containers and moves
//! its victims away (renamed to `.tmp-prune-…`, deleted after the lock is released), so a
//! layer is always either pinned or in a container's spec when the prune looks. A pull
//! that finds its layer gone fetches it again. The prune runs after every pull that
//! unpacked a new layer and every [`PRUNE_EVERY`], from [`run`]; each one that removes
//! something logs every layer (digest, size, last use) and what it freed.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, SystemTime};

use tokio::sync::Notify;

use super::ImageError;
use crate::agent::Agent;

/// How often the cache is checked even when nothing was pulled.
pub const PRUNE_EVERY: Duration = Duration::from_secs(600);
/// The default `--layer-cache-bytes`: 20 GiB.
pub const DEFAULT_BUDGET_BYTES: u64 = 20 << 30;
/// The sidecar directory of the layers' sizes and last uses.
const META: &str = ".meta";

/// Pins, the budget and the "a layer was added" signal, shared by the store and its pins.
#[derive(Debug, Default)]
pub(super) struct Tracker {
    pins: Mutex<HashMap<String, usize>>,
    pub(super) grown: Notify,
    /// One prune at a time.
    pruning: Mutex<()>,
}

impl Tracker {
    fn pins(&self) -> std::sync::MutexGuard<'_, HashMap<String, usize>> {
        self.pins.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Layers kept from pruning while this (or a clone) lives: one pull's layers.
#[derive(Debug, Clone)]
pub struct Pins(Arc<PinSet>);

#[derive(Debug)]
struct PinSet {
    tracker: Arc<Tracker>,
    hexes: Mutex<Vec<String>>,
}

impl Pins {
    pub(super) fn new(tracker: &Arc<Tracker>) -> Pins {
        Pins(Arc::new(PinSet {
            tracker: Arc::clone(tracker),
            hexes: Mutex::new(Vec::new()),
        }))
    }

    /// Pins layer `hex` (before the caller checks whether it is cached).
    pub(super) fn add(&self, hex: &str) {
        *self.0.tracker.pins().entry(hex.to_string()).or_insert(0) += 1;
        self.0
            .hexes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(hex.to_string());
    }
}

impl Drop for PinSet {
    fn drop(&mut self) {
        let hexes = std::mem::take(self.hexes.get_mut().unwrap_or_else(|e| e.into_inner()));
        let mut pins = self.tracker.pins();
        for hex in hexes {
            if let Some(n) = pins.get_mut(&hex) {
                *n -= 1;
                if *n == 0 {
                    pins.remove(&hex);
                }
            }
        }
    }
}

/// One layer the prune removed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub digest: String,
    pub bytes: u64,
    /// Seconds since its last use.
    pub idle_secs: u64,
}

/// What a prune found and did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PruneReport {
    /// The cache's size before.
    pub before_bytes: u64,
    /// Its size after.
    pub after_bytes: u64,
    /// The bytes of the layers in use or pinned (never removed).
    pub in_use_bytes: u64,
    pub removed: Vec<Removed>,
}

impl PruneReport {
    pub fn freed_bytes(&self) -> u64 {
        self.removed.iter().map(|r| r.bytes).sum()
    }
}

/// A cached layer as the prune sees it.
struct Entry {
    hex: String,
    bytes: u64,
    last_used: SystemTime,
}

/// `layers/.meta/<hex>`
pub(super) fn meta_path(root: &Path, hex: &str) -> PathBuf {
    root.join(META).join(hex)
}

/// Records a freshly unpacked layer's size (and so its first use).
pub(super) fn record_size(root: &Path, hex: &str, bytes: u64) -> std::io::Result<()> {
    std::fs::create_dir_all(root.join(META))?;
    std::fs::write(meta_path(root, hex), bytes.to_string())
}

/// Marks a layer used now (its meta file's mtime).
pub(super) fn touch(root: &Path, hex: &str) {
    let path = meta_path(root, hex);
    if let Ok(file) = std::fs::OpenOptions::new().write(true).open(&path) {
        let _ = file.set_modified(SystemTime::now());
    }
}

/// The layer's size and last use; a layer without a meta file (unpacked by an agent
/// without a budget) is measured now and counts as used now.
fn entry(root: &Path, hex: &str) -> std::io::Result<Entry> {
    let path = meta_path(root, hex);
    let known = std::fs::read_to_string(&path)
        .ok()
        .and_then(|s| s.trim().parse::<u64>().ok());
    let bytes = match known {
        Some(bytes) => bytes,
        None => {
            let bytes = crate::du::disk_usage(&root.join(hex))?;
            record_size(root, hex, bytes)?;
            bytes
        }
    };
    let last_used = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .unwrap_or_else(|_| SystemTime::now());
    Ok(Entry {
        hex: hex.to_string(),
        bytes,
        last_used,
    })
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> ImageError {
    move |source| ImageError::Io { what, source }
}

/// Removes least recently used layers under `root` until they add up to at most `budget`
/// bytes, keeping every pinned layer and every layer `in_use` names (by hex digest; it is
/// called with the pin table locked). `Ok(None)` when the cache already fits.
pub(super) fn prune(
    root: &Path,
    tracker: &Tracker,
    budget: u64,
    in_use: impl FnOnce() -> Result<HashSet<String>, String>,
) -> Result<Option<PruneReport>, ImageError> {
    let _one = tracker.pruning.lock().unwrap_or_else(|e| e.into_inner());
    let mut entries = Vec::new();
    for dirent in std::fs::read_dir(root).map_err(io(format!("listing {}", root.display())))? {
        let dirent = dirent.map_err(io(format!("listing {}", root.display())))?;
        let Ok(name) = dirent.file_name().into_string() else {
            continue;
        };
        if name.len() == 64 && name.bytes().all(|b| b.is_ascii_hexdigit()) {
            entries.push(entry(root, &name).map_err(io(format!("measuring layer {name}")))?);
        }
    }
    let before: u64 = entries.iter().map(|e| e.bytes).sum();
    if before <= budget {
        return Ok(None);
    }
    entries.sort_by(|a, b| a.last_used.cmp(&b.last_used).then(a.hex.cmp(&b.hex)));
    let mut report = PruneReport {
        before_bytes: before,
        after_bytes: before,
        ..PruneReport::default()
    };
    let mut doomed = Vec::new();
    {
        let pins = tracker.pins();
        let in_use = in_use()
            .map_err(|e| io("finding the layers jobs use".into())(std::io::Error::other(e)))?;
        let now = SystemTime::now();
        for e in &entries {
            if pins.contains_key(&e.hex) || in_use.contains(&e.hex) {
                report.in_use_bytes += e.bytes;
                continue;
            }
            if report.after_bytes <= budget {
                continue;
            }
            let away = root.join(format!(".tmp-prune-{}-{}", e.hex, crate::util::unique()));
            std::fs::rename(root.join(&e.hex), &away)
                .map_err(io(format!("moving layer {} away", e.hex)))?;
            let _ = std::fs::remove_file(meta_path(root, &e.hex));
            report.after_bytes -= e.bytes;
            report.removed.push(Removed {
                digest: format!("sha256:{}", e.hex),
                bytes: e.bytes,
                idle_secs: now
                    .duration_since(e.last_used)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
            });
            doomed.push(away);
        }
    }
    for dir in doomed {
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            tracing::warn!("removing the pruned layer {}: {e}", dir.display());
        }
    }
    Ok(Some(report))
}

/// Logs what a prune did: one line per removed layer, then the totals.
pub fn log_report(report: &PruneReport, budget: u64) {
    for r in &report.removed {
        tracing::info!(
            layer = %r.digest,
            bytes = r.bytes,
            idle_secs = r.idle_secs,
            "layer cache: pruned a layer no job uses"
        );
    }
    let mib = |b: u64| b / (1 << 20);
    if report.after_bytes > budget {
        tracing::warn!(
            before_mib = mib(report.before_bytes),
            after_mib = mib(report.after_bytes),
            in_use_mib = mib(report.in_use_bytes),
            budget_mib = mib(budget),
            freed_mib = mib(report.freed_bytes()),
            "layer cache is over its budget (--layer-cache-bytes) with only layers that jobs \
             use left: they stay until their jobs are deleted"
        );
    } else {
        tracing::info!(
            removed = report.removed.len(),
            freed_bytes = report.freed_bytes(),
            before_mib = mib(report.before_bytes),
            after_mib = mib(report.after_bytes),
            budget_mib = mib(budget),
            "layer cache pruned below its budget (--layer-cache-bytes)"
        );
    }
}

/// The hex digests of the layers of every container the agent's runtime has.
pub fn layers_in_use(runtime: &paas_runtime::Runtime) -> Result<HashSet<String>, String> {
    let mut hexes = HashSet::new();
    for state in runtime.list().map_err(|e| e.to_string())? {
        let layers = match runtime.layers(&state.id) {
            Ok(layers) => layers,
            Err(paas_runtime::Error::NotFound(_)) => continue,
            Err(e) => return Err(e.to_string()),
        };
        for layer in layers {
            if let Some(name) = layer.file_name().and_then(|n| n.to_str()) {
                hexes.insert(name.to_string());
            }
        }
    }
    Ok(hexes)
}

/// Prunes the agent's layer cache now (when it has a budget), logging what it did.
pub async fn prune_now(agent: &Arc<Agent>) -> Result<Option<PruneReport>, ImageError> {
    let Some(budget) = agent.images.budget() else {
        return Ok(None);
    };
    let agent2 = Arc::clone(agent);
    let report = tokio::task::spawn_blocking(move || {
        agent2
            .images
            .prune_blocking(|| layers_in_use(&agent2.runtime))
    })
    .await
    .map_err(|e| io("pruning the layer cache".into())(std::io::Error::other(e)))??;
    if let Some(report) = &report {
        log_report(report, budget);
    }
    Ok(report)
}

/// The pruning loop: once at start, after every pull that added a layer, and every
/// [`PRUNE_EVERY`]. Ends when the agent is gone.
pub async fn run(agent: Weak<Agent>) {
    let Some(tracker) = agent
        .upgrade()
        .filter(|a| a.images.budget().is_some())
        .map(|a| a.images.tracker())
    else {
        return;
    };
    loop {
        {
            let Some(agent) = agent.upgrade() else { return };
            if let Err(e) = prune_now(&agent).await {
                tracing::warn!("layer cache: {e}");
            }
        }
        tokio::select! {
            () = tracker.grown.notified() => {}
            () = tokio::time::sleep(PRUNE_EVERY) => {}
        }
    }
}
