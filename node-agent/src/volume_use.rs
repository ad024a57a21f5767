//! What the volumes of the node's services hold, for the heartbeat's `volumes` (the
//! controller shows it as an add-on's size in `paas addons`).
//!
//! Which volumes: those the agent's jobs mount, builds aside (a job with an `output`: its
//! volume is the app's build cache, measured after each build already), whatever the job's
//! state, since the files stay when a service crashes. So: add-ons' data (`addon-<id>`) and
//! apps' sized volumes.
//!
//! How: a sized volume (its own ext4 filesystem, mounted) by `statvfs` of that filesystem,
//! which costs nothing; a plain directory by a `du -s` walk ([`crate::du`]) that gives up
//! after [`MAX_ENTRIES`] entries (then the volume is left out: unknown, never a wrong
//! number). A measurement runs on the blocking pool and the heartbeat never waits for it
//! ([`Meter`]); it runs every [`EVERY`], and at once when a job mounts a volume the last
//! one did not measure, so a new add-on shows its size within a heartbeat or two.

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use paas_api::VolumeUse;
use tokio::task::JoinHandle;

use crate::agent::Agent;
use crate::util::now_rfc3339;

/// Time between two measurements of the same volumes.
pub const EVERY: Duration = Duration::from_secs(30);

/// The most directory entries one plain volume's walk reads (a database's data directory
/// has a few thousand; past a million the walk itself would be the load).
pub const MAX_ENTRIES: u64 = 1_000_000;

/// The volumes to measure: every one a job of the agent mounts, builds aside.
pub fn wanted(agent: &Agent) -> BTreeSet<String> {
    agent
        .jobs
        .all()
        .iter()
        .filter(|j| j.spec.output.is_none())
        .flat_map(|j| j.spec.volumes.iter().map(|v| v.name.clone()))
        .filter(|n| crate::volumes::valid_name(n))
        .collect()
}

/// What volume `name` under `state_dir/volumes` holds now (blocking); `None` when it
/// cannot be told (no such volume, a walk past [`MAX_ENTRIES`], an I/O error).
pub fn measure(state_dir: &Path, name: &str) -> Option<u64> {
    if let Some(used) = crate::volumes::mounted_use(state_dir, name) {
        return Some(used);
    }
    let dir = state_dir.join("volumes").join(name);
    if !dir.is_dir() {
        return None;
    }
    match crate::du::disk_usage_bounded(&dir, MAX_ENTRIES) {
        Ok(Some(bytes)) => Some(bytes),
        Ok(None) => {
            tracing::debug!(
                volume = name,
                "more than {MAX_ENTRIES} entries: not measured"
            );
            None
        }
        Err(e) => {
            tracing::debug!(volume = name, "measuring: {e}");
            None
        }
    }
}

/// Measures every volume of `names` (blocking).
pub fn measure_all(state_dir: &Path, names: &BTreeSet<String>) -> Vec<VolumeUse> {
    names
        .iter()
        .filter_map(|name| {
            Some(VolumeUse {
                name: name.clone(),
                used_bytes: measure(state_dir, name)?,
                measured_at: now_rfc3339(),
            })
        })
        .collect()
}

/// Measures in the background for the heartbeat: [`Meter::fresh`] never waits.
#[derive(Debug, Default)]
pub struct Meter {
    /// The newest measurement the controller has not taken yet.
    unsent: Option<Vec<VolumeUse>>,
    /// The volumes the newest measurement covered.
    measured: BTreeSet<String>,
    started: Option<Instant>,
    pending: Option<JoinHandle<(BTreeSet<String>, Vec<VolumeUse>)>>,
}

impl Meter {
    /// Collects a finished measurement, starts the next one when it is due (every
    /// [`EVERY`], or when a job mounts a volume not measured yet), and returns the newest
    /// measurement not yet delivered (empty when there is none).
    pub async fn fresh(&mut self, agent: &Arc<Agent>) -> Vec<VolumeUse> {
        if let Some(task) = self.pending.take_if(|t| t.is_finished()) {
            if let Ok((names, uses)) = task.await {
                self.measured = names;
                self.unsent = Some(uses);
            }
        }
        if self.pending.is_none() {
            let names = wanted(agent);
            let due = self.started.is_none_or(|t| t.elapsed() >= EVERY)
                || !names.is_subset(&self.measured);
            if due && !names.is_empty() {
                self.started = Some(Instant::now());
                let state_dir = agent.config.state_dir.clone();
                self.pending = Some(tokio::task::spawn_blocking(move || {
                    let uses = measure_all(&state_dir, &names);
                    (names, uses)
                }));
            }
        }
        self.unsent.clone().unwrap_or_default()
    }

    /// The controller took the measurement [`Meter::fresh`] returned last.
    pub fn delivered(&mut self) {
        self.unsent = None;
    }

    /// Waits for the running measurement (tests), at most `limit`.
    pub async fn settle(&mut self, limit: Duration) {
        if let Some(task) = self.pending.as_mut() {
            if let Ok(Ok((names, uses))) = tokio::time::timeout(limit, task).await {
                self.measured = names;
                self.unsent = Some(uses);
                self.pending = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_volume_is_measured_by_its_files_and_a_missing_one_is_unknown() {
        let state = tempfile::tempdir().unwrap();
        let dir = state.path().join("volumes/addon-7/pg");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("table"), vec![7u8; 300_000]).unwrap();
        let used = measure(state.path(), "addon-7").unwrap();
        assert!((300_000..400_000).contains(&used), "{used}");
        assert_eq!(measure(state.path(), "addon-8"), None, "not there: unknown");
        let uses = measure_all(
            state.path(),
            &BTreeSet::from(["addon-7".to_string(), "addon-8".to_string()]),
        );
        assert_eq!(uses.len(), 1, "the unknown one is left out: {uses:?}");
        assert_eq!(
            (uses[0].name.as_str(), uses[0].used_bytes),
            ("addon-7", used)
        );
    }
}
