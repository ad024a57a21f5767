//! The scheduler: desired formations vs observed jobs → actions.
//!
//! [`plan`] is a pure function (plain data in, actions out) and holds every decision:
//! * for each (app, process type) of an app's current release, start jobs until `count`
//!   jobs of that release exist (starting or up), each on the up node with the fewest jobs;
//! * stop jobs of other releases only once `count` jobs of the current release are up AND
//!   healthy (zero downtime);
//! * stop surplus jobs of the current release (unhealthy ones first), jobs of process types
//!   no formation wants, and clean up finished (down or crashed) jobs;
//! * ignore down nodes: nothing is placed there and their jobs are not counted (the loop
//!   replaces them elsewhere; surplus is stopped when the node comes back).
//!
//! The `runner` submodule is the small loop around it: it reads the store, asks the agents
//! for their jobs, health-checks web jobs, applies the plan and pushes routes to the router.

mod runner;

pub use runner::{labels, process_job_spec, run, Handle, Snapshot, APP_PORT};

use std::collections::{BTreeMap, BTreeSet};

/// How many jobs of one process type an app should run, and with which release (the app's
/// current one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Formation {
    pub app: String,
    pub process_type: String,
    pub count: u32,
    pub release: u32,
}

/// A node and whether it can take and run jobs now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub name: String,
    pub up: bool,
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
    fn active(&self) -> bool {
        matches!(self.phase, Phase::Starting | Phase::Up)
    }

    fn ready(&self) -> bool {
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

/// Compares the desired formations with the observed jobs and says what to start and stop.
/// Deterministic: the same input always gives the same actions in the same order.
pub fn plan(desired: &[Formation], nodes: &[NodeInfo], jobs: &[ObservedJob]) -> Vec<Action> {
    let up_nodes: BTreeSet<&str> = nodes
        .iter()
        .filter(|n| n.up)
        .map(|n| n.name.as_str())
        .collect();
    let jobs: Vec<&ObservedJob> = jobs
        .iter()
        .filter(|j| up_nodes.contains(j.node.as_str()))
        .collect();
    let mut actions = Vec::new();

    for job in jobs.iter().filter(|j| j.phase == Phase::Finished) {
        actions.push(Action::Stop {
            job_id: job.id.clone(),
        });
    }

    // Load per node: the jobs that occupy it (starting, up or stopping).
    let mut load: BTreeMap<&str, usize> = up_nodes.iter().map(|n| (*n, 0)).collect();
    for job in jobs.iter().filter(|j| j.phase != Phase::Finished) {
        *load.entry(job.node.as_str()).or_default() += 1;
    }

    let wanted: BTreeMap<(&str, &str), &Formation> = desired
        .iter()
        .map(|f| ((f.app.as_str(), f.process_type.as_str()), f))
        .collect();
    let mut groups: BTreeMap<(&str, &str), Vec<&ObservedJob>> = BTreeMap::new();
    for job in jobs.iter().filter(|j| j.active()) {
        groups
            .entry((job.app.as_str(), job.process_type.as_str()))
            .or_default()
            .push(job);
    }
    let keys: BTreeSet<(&str, &str)> = wanted.keys().chain(groups.keys()).copied().collect();

    for key in keys {
        let active = groups.get(&key).map(Vec::as_slice).unwrap_or(&[]);
        let Some(formation) = wanted.get(&key) else {
            // Nothing wants this process type any more.
            for job in active {
                actions.push(stop(job));
            }
            continue;
        };
        let count = formation.count as usize;
        let (mut current, old): (Vec<&ObservedJob>, Vec<&ObservedJob>) = active
            .iter()
            .copied()
            .partition(|j| j.release == formation.release);

        if current.len() < count {
            for _ in current.len()..count {
                let Some(node) = least_loaded(&load) else {
                    break;
                };
                *load.entry(node).or_default() += 1;
                actions.push(Action::Start {
                    app: formation.app.clone(),
                    release: formation.release,
                    process_type: formation.process_type.clone(),
                    node: node.to_string(),
                });
            }
        } else if current.len() > count {
            // Keep the ready ones; among equals, keep the older ids.
            current.sort_by(|a, b| b.ready().cmp(&a.ready()).then(a.id.cmp(&b.id)));
            for job in current.split_off(count) {
                actions.push(stop(job));
            }
        }

        let ready = current.iter().filter(|j| j.ready()).count();
        if ready >= count {
            for job in old {
                actions.push(stop(job));
            }
        }
    }
    actions
}

fn stop(job: &ObservedJob) -> Action {
    Action::Stop {
        job_id: job.id.clone(),
    }
}

/// The up node with the fewest jobs (ties: the first by name).
fn least_loaded<'a>(load: &BTreeMap<&'a str, usize>) -> Option<&'a str> {
    load.iter()
        .min_by(|a, b| a.1.cmp(b.1).then(a.0.cmp(b.0)))
        .map(|(n, _)| *n)
}

#[cfg(test)]
mod tests;
