//! The scheduler's plan: desired formations vs observed jobs → actions. Nothing here
//! does I/O or reads the controller's state; the loop in `runner` feeds it.
//!
//! [`plan`] is a pure function (plain data in, actions out) and holds every decision:
//! * for each (app, process type) of an app's current release, start jobs until `count`
//!   jobs of that release exist (starting or up) on nodes that are not draining; each start
//!   goes to an up, non-draining node with room for its memory, spreading the process type
//!   first, then preferring nodes that cache the image's layers, then the least loaded;
//! * jobs named for replacement (`paas ps:restart`, a resize) are replaced the same way;
//! * jobs on draining nodes are replaced elsewhere and stopped once the replacements are
//!   ready (like jobs of an old release);
//! * stop jobs of other releases only once `count` jobs of the current release are up AND
//!   healthy (zero downtime);
//! * stop surplus jobs of the current release (unhealthy ones first), jobs of process types
//!   no formation wants, and clean up finished (down or crashed) jobs;
//! * ignore down nodes: nothing is placed there and their jobs are not counted (the loop
//!   replaces them elsewhere; surplus is stopped when the node comes back);
//! * a process type with a volume mounted (`Formation::pinned`) runs at most one job, only
//!   on the volume's node (draining or not), and is replaced stop-first: the old job is
//!   stopped and gone before the new one starts, so two jobs never write the volume at
//!   once. While that node is down nothing starts anywhere: the jobs wait for their data.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

/// Memory a process gets when its formation does not say (512 MiB).
pub const DEFAULT_MEMORY_BYTES: u64 = 512 * 1024 * 1024;

/// How many jobs of one process type an app should run, with which release (the app's
/// current one), how much memory each gets and which image layers the release needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formation {
    pub app: String,
    pub process_type: String,
    pub count: u32,
    pub release: u32,
    /// Memory limit of each process (also what it takes from a node's capacity).
    pub memory_bytes: u64,
    /// Layer digests of the release's image: nodes that cache them are preferred.
    pub layers: Vec<String>,
    /// The node holding the volume(s) mounted into this process type: its one job runs
    /// there and nowhere else (see [`plan`]).
    pub pinned: Option<String>,
}

/// A node: whether it can take jobs now, how much memory it offers, what it caches.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeInfo {
    pub name: String,
    /// Heartbeating (its last heartbeat is at most 10 s old).
    pub up: bool,
    /// Up, but its agent did not answer this pass: its jobs count as last recorded and
    /// nothing new is placed there.
    pub silent: bool,
    /// Being drained: gets no new jobs and its jobs are replaced elsewhere, then stopped.
    pub draining: bool,
    /// Memory the node offers to jobs; 0 means unknown (no limit is applied).
    pub memory_bytes: u64,
    /// Layer digests the node has cached.
    pub layers: BTreeSet<String>,
}

/// Where a job is in its life, as far as planning cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Asked for and not running yet (pulling, unpacking, starting).
    Starting,
    /// The process runs.
    Up,
    /// A stop is under way.
    Stopping,
    /// Down or crashed: nothing more will happen; only cleanup is left.
    Finished,
}

/// One job as observed (store row merged with what its agent reports).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObservedJob {
    pub id: String,
    pub app: String,
    pub release: u32,
    pub process_type: String,
    pub node: String,
    pub phase: Phase,
    /// Up and passing its health check (a TCP connect for web jobs).
    pub healthy: bool,
}

impl ObservedJob {
    pub(super) fn active(&self) -> bool {
        matches!(self.phase, Phase::Starting | Phase::Up)
    }

    pub(super) fn ready(&self) -> bool {
        self.phase == Phase::Up && self.healthy
    }
}

/// What the loop should do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Start {
        app: String,
        release: u32,
        process_type: String,
        node: String,
    },
    /// Stop (if running) and delete the job from its node.
    Stop { job_id: String },
}

/// A job and the index of its node.
type Placed<'a> = (&'a ObservedJob, usize);

/// Compares the desired formations with the observed jobs and says what to start and stop.
/// Deterministic: the same input always gives the same actions in the same order.
///
/// A start goes to the node, among those up, not draining and with enough free memory,
/// with (in order) the fewest jobs of the same app and process type (spread), the fewest of
/// the release's layers missing, the fewest jobs overall, the first name. A formation that
/// fits nowhere gets fewer starts than asked (the next plan tries again).
pub fn plan(desired: &[Formation], nodes: &[NodeInfo], jobs: &[ObservedJob]) -> Vec<Action> {
    plan_with_replacements(desired, nodes, jobs, &HashSet::new())
}

/// [`plan`], where the jobs named in `replace` (a restart or a resize) are replaced like
/// jobs of an old release: new ones start, and the named ones stop only once `count` new
/// ones are up and healthy (zero downtime).
pub fn plan_with_replacements(
    desired: &[Formation],
    nodes: &[NodeInfo],
    jobs: &[ObservedJob],
    replace: &HashSet<String>,
) -> Vec<Action> {
    // Nodes by name; every index below is into this order.
    let mut order: Vec<&NodeInfo> = nodes.iter().collect();
    order.sort_by(|a, b| a.name.cmp(&b.name));
    order.dedup_by(|a, b| a.name == b.name);
    let index: HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, n)| (n.name.as_str(), i))
        .collect();
    let node_of = |job: &ObservedJob| index.get(job.node.as_str()).copied();
    // Jobs on down (or unknown) nodes are not counted: the loop replaces them elsewhere.
    let jobs: Vec<(&ObservedJob, usize)> = jobs
        .iter()
        .filter_map(|j| node_of(j).map(|i| (j, i)))
        .filter(|(_, i)| order[*i].up)
        .collect();
    let mut actions = Vec::new();

    for (job, _) in jobs.iter().filter(|(j, _)| j.phase == Phase::Finished) {
        actions.push(stop(job));
    }

    let wanted: BTreeMap<(&str, &str), &Formation> = desired
        .iter()
        .map(|f| ((f.app.as_str(), f.process_type.as_str()), f))
        .collect();
    let memory_of = |job: &ObservedJob| {
        wanted
            .get(&(job.app.as_str(), job.process_type.as_str()))
            .map_or(DEFAULT_MEMORY_BYTES, |f| f.memory_bytes)
    };

    // What occupies each node (starting, up or stopping jobs).
    let mut load = vec![0u32; order.len()];
    let mut used = vec![0u64; order.len()];
    for (job, i) in jobs.iter().filter(|(j, _)| j.phase != Phase::Finished) {
        load[*i] += 1;
        used[*i] += memory_of(job);
    }
    // Which nodes hold each layer (for the layer preference).
    let mut holders: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, n) in order.iter().enumerate() {
        for layer in &n.layers {
            holders.entry(layer.as_str()).or_default().push(i);
        }
    }

    let mut groups: BTreeMap<(&str, &str), Vec<(&ObservedJob, usize)>> = BTreeMap::new();
    for (job, i) in jobs.iter().filter(|(j, _)| j.active()) {
        groups
            .entry((job.app.as_str(), job.process_type.as_str()))
            .or_default()
            .push((job, *i));
    }
    let keys: BTreeSet<(&str, &str)> = wanted.keys().chain(groups.keys()).copied().collect();

    // Per-group scratch, reset after each group.
    let mut spread = vec![0u32; order.len()];
    let mut missing = vec![0u32; order.len()];
    let mut touched: Vec<usize> = Vec::new();

    for key in keys {
        let active = groups.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        let Some(formation) = wanted.get(&key) else {
            // Nothing wants this process type any more.
            for (job, _) in active {
                actions.push(stop(job));
            }
            continue;
        };
        if let Some(pin) = &formation.pinned {
            let stopping = jobs.iter().any(|(j, _)| {
                j.phase == Phase::Stopping && (j.app.as_str(), j.process_type.as_str()) == key
            });
            let pin = index.get(pin.as_str()).copied();
            let start = plan_pinned(formation, active, pin, stopping, replace, &mut actions);
            if let Some(i) = start {
                let n = order[i];
                let fits =
                    n.memory_bytes == 0 || used[i] + formation.memory_bytes <= n.memory_bytes;
                if n.up && !n.silent && fits {
                    load[i] += 1;
                    used[i] += formation.memory_bytes;
                    actions.push(Action::Start {
                        app: formation.app.clone(),
                        release: formation.release,
                        process_type: formation.process_type.clone(),
                        node: n.name.clone(),
                    });
                }
            }
            continue;
        }
        let count = formation.count as usize;
        // Jobs on draining nodes are replaced like jobs of an old release.
        let (mut current, old): (Vec<Placed>, Vec<Placed>) =
            active.iter().copied().partition(|(j, i)| {
                j.release == formation.release && !order[*i].draining && !replace.contains(&j.id)
            });

        if current.len() < count {
            for (_, i) in &current {
                spread[*i] += 1;
                touched.push(*i);
            }
            let layers = formation.layers.len() as u32;
            if layers > 0 {
                missing.fill(layers);
                for layer in &formation.layers {
                    for &i in holders
                        .get(layer.as_str())
                        .map(Vec::as_slice)
                        .unwrap_or(&[])
                    {
                        missing[i] -= 1;
                    }
                }
            }
            for _ in current.len()..count {
                // (spread, missing layers, load, index) packed in one integer: the smallest wins.
                let mut best = u128::MAX;
                for (i, n) in order.iter().enumerate() {
                    if !n.up || n.draining || n.silent {
                        continue;
                    }
                    if n.memory_bytes > 0 && used[i] + formation.memory_bytes > n.memory_bytes {
                        continue;
                    }
                    let m = if layers > 0 { missing[i] } else { 0 };
                    let score = (u128::from(spread[i]) << 96)
                        | (u128::from(m) << 64)
                        | (u128::from(load[i]) << 32)
                        | i as u128;
                    best = best.min(score);
                }
                if best == u128::MAX {
                    break; // no node has room
                }
                let i = (best & u128::from(u32::MAX)) as usize;
                spread[i] += 1;
                touched.push(i);
                load[i] += 1;
                used[i] += formation.memory_bytes;
                if layers > 0 {
                    missing[i] = 0; // it will pull them
                }
                actions.push(Action::Start {
                    app: formation.app.clone(),
                    release: formation.release,
                    process_type: formation.process_type.clone(),
                    node: order[i].name.clone(),
                });
            }
            for i in touched.drain(..) {
                spread[i] = 0;
            }
        } else if current.len() > count {
            // Keep the ready ones; among equals, keep the older ids.
            current.sort_by(|(a, _), (b, _)| b.ready().cmp(&a.ready()).then(a.id.cmp(&b.id)));
            for (job, _) in current.split_off(count) {
                actions.push(stop(job));
            }
        }

        let ready = current.iter().filter(|(j, _)| j.ready()).count();
        if ready >= count {
            for (job, _) in old {
                actions.push(stop(job));
            }
        }
    }
    actions
}

/// A volume-backed process type (`pinned`, node index `pin` when that node is known and
/// up): at most one job, of the current release, on the pinned node. Every other job is
/// stopped at once; a new one may start (the returned node) only when none is left
/// running or stopping.
fn plan_pinned(
    formation: &Formation,
    active: &[Placed<'_>],
    pin: Option<usize>,
    stopping: bool,
    replace: &HashSet<String>,
    actions: &mut Vec<Action>,
) -> Option<usize> {
    let count = formation.count.min(1) as usize;
    let (mut current, old): (Vec<Placed>, Vec<Placed>) =
        active.iter().copied().partition(|(j, i)| {
            j.release == formation.release && Some(*i) == pin && !replace.contains(&j.id)
        });
    current.sort_by(|(a, _), (b, _)| b.ready().cmp(&a.ready()).then(a.id.cmp(&b.id)));
    let surplus = current.split_off(count.min(current.len()));
    for (job, _) in old.iter().chain(&surplus) {
        actions.push(stop(job));
    }
    let busy = stopping || !old.is_empty() || !surplus.is_empty();
    (current.len() < count && !busy).then_some(pin).flatten()
}

fn stop(job: &ObservedJob) -> Action {
    Action::Stop {
        job_id: job.id.clone(),
    }
}

#[cfg(test)]
#[path = "replace_tests.rs"]
mod replace_tests;
#[cfg(test)]
#[path = "tests.rs"]
mod tests;
#[cfg(test)]
#[path = "volume_tests.rs"]
mod volume_tests;
