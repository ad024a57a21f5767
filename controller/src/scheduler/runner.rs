//! The scheduler loop: every second (or at once when notified) it reads the store, asks each
//! live agent for its jobs, merges the two and health-checks up web jobs (TCP connect to
//! their `addr`, or the release's app.json HTTP check; both in [`super::observe`]), pushes
//! the route table to the router, runs [`super::plan`] and applies the actions. A job row is
//! written BEFORE the agent is asked to start it, and job ids are persisted, so a restarted
//! controller matches what the agents report instead of starting duplicates.
//!
//! Starts and stops run as tasks (a start may pull an image); ids in flight are remembered
//! so that a job being started counts as `Starting` and one being stopped as `Stopping`.
//! A process type whose jobs keep crashing is restarted with a growing delay (1 s, 2 s, 4 s
//! … 5 min, see [`super::restart`]); each new job records how many crashes came before it
//! and the last one's exit reason (`jobs.restarts`, `jobs.last_exit`).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use paas_api::JobStatus;

use super::handle::{ProcessKey, Snapshot};
use super::jobs::{start_job, stop_job, APP_MEMORY_BYTES};
use super::observe::{check_health, node_last_seen, observe, push_routes};
use super::{
    health, inputs, plan_with_replacements, restart, Action, Formation, ObservedJob, Phase,
};
use crate::state::{Controller, NODE_TIMEOUT_MS};
use crate::store::{ReleaseRow, Restarts, StoreError};
use crate::util::unix_ms;

/// Time between two passes when nothing notifies the loop.
pub(super) const INTERVAL: Duration = Duration::from_secs(1);

struct Crashes {
    count: u32,
    last: Instant,
    reason: Option<String>,
    /// Jobs started after these crashes: one of them healthy ends the streak.
    replacements: HashSet<String>,
}

/// State the loop keeps between passes.
#[derive(Default)]
struct LoopState {
    pass: u64,
    health: health::HealthState,
    crashes: HashMap<ProcessKey, Crashes>,
    counted_crashes: HashSet<String>,
    unreachable: HashSet<String>,
    releases: HashMap<(String, u32), Arc<ReleaseRow>>,
    /// Image → its layer digests (images are immutable).
    layers: HashMap<String, Vec<String>>,
    /// The outcomes of current releases written to the store (see [`super::outcome`]).
    outcomes: super::outcome::Recorder,
    /// App name → its permanent number, as of the last pass.
    ids: HashMap<String, u32>,
}

impl LoopState {
    async fn release(
        &mut self,
        c: &Controller,
        app: &str,
        version: u32,
    ) -> Result<Option<Arc<ReleaseRow>>, StoreError> {
        let key = (app.to_string(), version);
        if let Some(r) = self.releases.get(&key) {
            return Ok(Some(Arc::clone(r)));
        }
        let Some(row) = c.store.get_release(app, version).await? else {
            return Ok(None);
        };
        let row = Arc::new(row);
        self.releases.insert(key, Arc::clone(&row));
        Ok(Some(row))
    }

    async fn layers(&mut self, c: &Controller, image: &str) -> Vec<String> {
        if let Some(l) = self.layers.get(image) {
            return l.clone();
        }
        let layers = inputs::image_layers(&c.registry, image).await;
        if !layers.is_empty() {
            self.layers.insert(image.to_string(), layers.clone());
        }
        layers
    }

    /// Forgets what is cached under a name whose app is gone or is another app now (a
    /// destroy, a rename, a new app under an old name): its releases and crash counts
    /// belong to the app that had the name.
    fn track_ids(&mut self, apps: &[crate::store::AppRow]) {
        let now: HashMap<String, u32> = apps.iter().map(|a| (a.name.clone(), a.id)).collect();
        let changed: HashSet<String> = self
            .ids
            .iter()
            .filter(|(name, id)| now.get(*name) != Some(id))
            .map(|(name, _)| name.clone())
            .collect();
        if !changed.is_empty() {
            self.releases.retain(|(app, _), _| !changed.contains(app));
            self.crashes.retain(|(app, _, _), _| !changed.contains(app));
        }
        self.ids = now;
    }

    fn crash(&mut self, key: ProcessKey, reason: Option<String>) {
        let entry = self.crashes.entry(key).or_insert(Crashes {
            count: 0,
            last: Instant::now(),
            reason: None,
            replacements: HashSet::new(),
        });
        entry.count += 1;
        entry.last = Instant::now();
        if reason.is_some() {
            entry.reason = reason;
        }
    }

    fn backing_off(&self, key: &ProcessKey) -> bool {
        self.crashes
            .get(key)
            .is_some_and(|c| restart::must_wait(c.count, c.last.elapsed()))
    }

    fn restarts(&self, key: &ProcessKey) -> Restarts {
        self.crashes
            .get(key)
            .map(|c| Restarts {
                restarts: c.count,
                last_exit: c.reason.clone(),
            })
            .unwrap_or_default()
    }
}

/// Runs the loop forever.
pub async fn run(c: Arc<Controller>) {
    let mut st = LoopState::default();
    loop {
        if let Err(e) = pass(&c, &mut st).await {
            tracing::warn!("scheduler pass failed (will retry): {e}");
        }
        tokio::select! {
            _ = tokio::time::sleep(INTERVAL) => {}
            _ = c.scheduler.notify.notified() => {}
        }
    }
}

async fn pass(c: &Arc<Controller>, st: &mut LoopState) -> Result<(), StoreError> {
    st.pass += 1;
    // Snapshot what is in flight BEFORE asking the agents: a start that finishes after this
    // line is already in the agent's list when it answers.
    let (starting, stopping, failed, replace, stop_now) = c.scheduler.with(|i| {
        (
            i.starting.clone(),
            i.stopping.clone(),
            std::mem::take(&mut i.failed_starts),
            i.replace.clone(),
            i.stop.clone(),
        )
    });
    for (key, reason) in failed {
        st.crash(key, Some(reason));
    }

    let now = unix_ms();
    let node_rows = c.store.list_nodes().await?;
    let node_urls: HashMap<String, String> = node_rows
        .iter()
        .map(|n| (n.name.clone(), n.url.clone()))
        .collect();
    let asked = node_rows
        .iter()
        .filter(|n| now - n.last_seen_ms <= NODE_TIMEOUT_MS)
        .map(|n| async move { (n.name.clone(), c.agents.list_jobs(&n.url).await) });
    let mut reports: HashMap<String, Vec<JobStatus>> = HashMap::new();
    for (name, result) in join_all(asked).await {
        match result {
            Ok(jobs) => {
                if st.unreachable.remove(&name) {
                    tracing::info!(node = %name, "node agent answers again");
                }
                reports.insert(name, jobs);
            }
            Err(e) => {
                if st.unreachable.insert(name.clone()) {
                    tracing::warn!(node = %name, "node agent does not answer: {e}");
                }
            }
        }
    }
    let draining = c.store.draining_nodes().await?;
    let live = c
        .heartbeats
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let nodes = inputs::node_infos(
        &node_rows,
        &|name| now - node_last_seen(&node_rows, name) <= NODE_TIMEOUT_MS,
        &|name| !reports.contains_key(name),
        &draining,
        &live,
    );

    // Heartbeating nodes whose agent did not answer this pass (restarting, busy): their
    // jobs count as last recorded and nothing new goes there; only 10 s without a
    // heartbeat makes a node down and its jobs move.
    let silent: HashSet<String> = node_rows
        .iter()
        .filter(|n| now - n.last_seen_ms <= NODE_TIMEOUT_MS && !reports.contains_key(&n.name))
        .map(|n| n.name.clone())
        .collect();
    let apps = c.store.list_apps().await?;
    st.track_ids(&apps);
    let mut seen = observe(c, &reports, &silent, &starting, &stopping, &st.ids).await?;
    let failed_checks = check_health(c, &mut st.health, &mut seen).await;

    // Crash bookkeeping for the restart delay.
    for s in &seen {
        let key = (s.job.app.clone(), s.job.process_type.clone(), s.job.release);
        if s.crashed && st.counted_crashes.insert(s.job.id.clone()) {
            st.crash(key, s.reason.clone());
        } else if s.job.healthy
            && st
                .crashes
                .get(&key)
                .is_some_and(|c| c.replacements.contains(&s.job.id))
        {
            st.crashes.remove(&key);
        }
    }
    let ids: HashSet<&str> = seen.iter().map(|s| s.job.id.as_str()).collect();
    c.scheduler.with(|i| {
        i.replace.retain(|id| ids.contains(id.as_str()));
        i.stop.retain(|id| ids.contains(id.as_str()));
    });
    st.counted_crashes.retain(|id| ids.contains(id.as_str()));
    st.health.retain(&ids);

    // Desired state: formations of current releases, for process types the release has.
    let mut desired = Vec::new();
    let sizes = c.store.formation_memory().await?;
    let volumes = c.store.volumes(None).await?;
    let mut waiting = HashMap::new();
    for f in c.store.formations().await? {
        let Some(version) = f.release else { continue };
        let Some(release) = st.release(c, &f.app, version).await? else {
            continue;
        };
        if release.process_types.contains_key(&f.process_type) {
            let memory_bytes = sizes
                .get(&(f.app.clone(), f.process_type.clone()))
                .copied()
                .unwrap_or(APP_MEMORY_BYTES);
            let pinned = crate::volumes::pinned_node(&volumes, &f.app, &f.process_type);
            if let Some(node) = pinned.filter(|_| f.count > 0) {
                let up = nodes.iter().any(|n| n.name == node && n.up);
                if !up {
                    waiting.insert(
                        (f.app.clone(), f.process_type.clone()),
                        crate::volumes::waiting_reason(&volumes, &f.app, &f.process_type),
                    );
                }
            }
            desired.push(Formation {
                app: f.app,
                process_type: f.process_type,
                count: f.count,
                release: version,
                memory_bytes,
                layers: st.layers(c, &release.image).await,
                pinned: pinned.map(str::to_string),
            });
        }
    }

    let routed = push_routes(c, &seen, apps).await?;
    let mut crashing: HashMap<(String, u32), u32> = HashMap::new();
    for ((app, _, release), crashes) in &st.crashes {
        *crashing.entry((app.clone(), *release)).or_default() += crashes.count;
    }
    let mut observed: Vec<ObservedJob> = seen.iter().map(|s| s.job.clone()).collect();
    let snapshot_jobs = observed.clone();
    // A job asked to stop counts as finished: the plan stops it and starts a replacement.
    for job in observed.iter_mut().filter(|j| stop_now.contains(&j.id)) {
        job.phase = Phase::Finished;
    }
    let actions = plan_with_replacements(&desired, &nodes, &observed, &replace);
    let snapshot = Arc::new(Snapshot {
        pass: st.pass,
        jobs: snapshot_jobs,
        routed,
        crashing,
        failed_checks,
        waiting,
    });
    c.scheduler.snapshot.send_replace(Arc::clone(&snapshot));
    record_outcomes(c, st, &desired, &snapshot).await?;

    let mut dynos: HashMap<ProcessKey, u32> = HashMap::new();
    for job in observed.iter().filter(|j| j.active()) {
        *dynos
            .entry((job.app.clone(), job.process_type.clone(), job.release))
            .or_default() += 1;
    }
    for action in actions {
        match action {
            Action::Start {
                app,
                release,
                process_type,
                node,
            } => {
                let key = (app.clone(), process_type.clone(), release);
                if st.backing_off(&key) {
                    continue;
                }
                let (Some(url), Some(rel)) =
                    (node_urls.get(&node), st.release(c, &app, release).await?)
                else {
                    continue;
                };
                let restarts = st.restarts(&key);
                let n = dynos.entry(key.clone()).or_default();
                *n += 1;
                let memory = desired
                    .iter()
                    .find(|f| f.app == app && f.process_type == process_type)
                    .map_or(APP_MEMORY_BYTES, |f| f.memory_bytes);
                let id =
                    start_job(c, &node, url, &rel, &process_type, *n, &restarts, memory).await?;
                if let Some(crashes) = st.crashes.get_mut(&key) {
                    crashes.replacements.insert(id);
                }
            }
            Action::Stop { job_id } => {
                let Some(job) = observed.iter().find(|j| j.id == job_id) else {
                    continue;
                };
                if let Some(url) = node_urls.get(&job.node) {
                    let addr = seen
                        .iter()
                        .find(|s| s.job.id == job_id)
                        .and_then(|s| s.addr.clone());
                    stop_job(c, url, &job_id, addr).await?;
                }
            }
        }
    }
    Ok(())
}

/// Records how each app's current release is doing: `succeeded` once it serves, `failed`
/// with the reason when it cannot start (see [`super::outcome`]). Apps whose formation
/// runs nothing are left as they are.
async fn record_outcomes(
    c: &Controller,
    st: &mut LoopState,
    desired: &[Formation],
    snap: &Snapshot,
) -> Result<(), StoreError> {
    use super::outcome::{decide, Crash};
    let mut current: HashMap<String, u32> = HashMap::new();
    for f in desired.iter().filter(|f| f.count > 0) {
        current.insert(f.app.clone(), f.release);
    }
    st.outcomes.retain(&current);
    for (app, version) in &current {
        let has_web = desired
            .iter()
            .any(|f| &f.app == app && f.process_type == "web" && f.count > 0);
        let crashes: Vec<Crash<'_>> = st
            .crashes
            .iter()
            .filter(|((a, _, v), _)| a == app && v == version)
            .map(|((_, process_type, _), c)| Crash {
                process_type,
                count: c.count,
                reason: c.reason.as_deref(),
            })
            .collect();
        if let Some(outcome) = decide(app, *version, has_web, snap, &crashes) {
            st.outcomes.record(c, app, *version, outcome).await?;
        }
    }
    Ok(())
}
