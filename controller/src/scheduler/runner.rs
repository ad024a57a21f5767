//! The scheduler loop: every second (or at once when notified) it reads the store, asks each
//! live agent for its jobs, merges the two, health-checks up web jobs (TCP connect to their
//! `addr`, or the release's app.json HTTP check, see [`super::health`]), pushes the route table to the router, runs [`super::plan`] and applies the
//! actions. A job row is written BEFORE the agent is asked to start it, and job ids are
//! persisted, so a restarted controller matches what the agents report instead of starting
//! duplicates.
//!
//! Starts and stops run as tasks (a start may pull an image); ids in flight are remembered
//! so that a job being started counts as `Starting` and one being stopped as `Stopping`.
//! A process type whose jobs keep crashing is restarted with a growing delay (1 s, 2 s, 4 s
//! … 5 min, see [`super::restart`]); each new job records how many crashes came before it
//! and the last one's exit reason (`jobs.restarts`, `jobs.last_exit`).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use paas_api::{JobState, JobStatus};
use tokio::sync::{watch, Notify};

use super::jobs::{start_job, stop_job, APP_MEMORY_BYTES};
use super::{
    health, inputs, plan_with_replacements, restart, Action, Formation, ObservedJob, Phase,
};
use crate::router::{Backend, Route};
use crate::state::{Controller, NODE_TIMEOUT_MS};
use crate::store::{job_state, JobRow, ReleaseRow, Restarts, StoreError};
use crate::util::{now_rfc3339, unix_ms};

/// Time between two passes when nothing notifies the loop.
const INTERVAL: Duration = Duration::from_secs(1);
/// The port every process is told to listen on (`PORT`).
pub const APP_PORT: u16 = 5000;

/// Job labels the controller sets and reads back.
pub mod labels {
    pub const KIND: &str = "paas.kind";
    pub const KIND_PROCESS: &str = "process";
    pub const KIND_BUILD: &str = "build";
    pub const APP: &str = "paas.app";
    pub const RELEASE: &str = "paas.release";
    pub const TYPE: &str = "paas.type";
    pub const DYNO: &str = "paas.dyno";
    pub const BUILD: &str = "paas.build";
    /// The app's permanent number: a job is adopted into the app of its name only when
    /// the numbers match (a destroyed app's job never joins a new app of that name).
    pub const APP_ID: &str = "paas.app-id";
}

type ProcessKey = (String, String, u32);

#[derive(Default)]
pub(super) struct Inflight {
    pub(super) starting: HashSet<String>,
    pub(super) stopping: HashSet<String>,
    pub(super) failed_starts: Vec<(ProcessKey, String)>,
    /// Jobs to replace with zero downtime (restart, resize): see [`Handle::replace`].
    pub(super) replace: HashSet<String>,
    /// Jobs to stop now (the formation starts a replacement): see [`Handle::stop`].
    pub(super) stop: HashSet<String>,
}

/// What the last pass saw, for the build (waiting for a deploy) and the app status.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub pass: u64,
    pub jobs: Vec<ObservedJob>,
    /// App → the ids of the jobs the router sends it to.
    pub routed: HashMap<String, Vec<String>>,
    /// (app, release) → how many times its jobs crashed in a row (reset once one of them
    /// is healthy); those are restarted with a growing delay.
    pub crashing: HashMap<(String, u32), u32>,
    /// (app, release) → why, when a web job of the release failed all the startup tries
    /// of the release's app.json health check.
    pub failed_checks: HashMap<(String, u32), String>,
}

/// The scheduler's side of [`Controller`]: wake-ups, jobs in flight, the last snapshot.
pub struct Handle {
    notify: Notify,
    inflight: Mutex<Inflight>,
    snapshot: watch::Sender<Arc<Snapshot>>,
}

impl Default for Handle {
    fn default() -> Self {
        Handle::new()
    }
}

impl Handle {
    pub fn new() -> Handle {
        Handle {
            notify: Notify::new(),
            inflight: Mutex::new(Inflight::default()),
            snapshot: watch::channel(Arc::new(Snapshot::default())).0,
        }
    }

    /// Runs a pass soon (a release changed, a node appeared, a job finished).
    pub fn notify(&self) {
        self.notify.notify_one();
    }

    /// The snapshot of every pass from now on.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshot.subscribe()
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.borrow())
    }

    /// Replaces these jobs with zero downtime: new ones start, the named ones stop once the
    /// new ones are up and healthy. Kept in memory: a controller restart forgets it.
    pub fn replace(&self, ids: impl IntoIterator<Item = String>) {
        self.with(|i| i.replace.extend(ids));
        self.notify();
    }

    /// Stops this job now; its formation starts a replacement.
    pub fn stop(&self, id: String) {
        self.with(|i| i.stop.insert(id));
        self.notify();
    }

    pub(super) fn with<T>(&self, f: impl FnOnce(&mut Inflight) -> T) -> T {
        f(&mut self.inflight.lock().unwrap_or_else(|e| e.into_inner()))
    }
}

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

/// A job as this pass sees it.
struct Seen {
    job: ObservedJob,
    addr: Option<String>,
    crashed: bool,
    /// The exit reason of a finished job.
    reason: Option<String>,
}

fn phase_of(state: JobState) -> Phase {
    match state {
        JobState::Starting => Phase::Starting,
        JobState::Up => Phase::Up,
        JobState::Stopping => Phase::Stopping,
        JobState::Down | JobState::Crashed => Phase::Finished,
    }
}

pub(super) fn state_name(state: JobState) -> &'static str {
    match state {
        JobState::Starting => job_state::STARTING,
        JobState::Up => job_state::UP,
        JobState::Stopping => job_state::STOPPING,
        JobState::Down => job_state::DOWN,
        JobState::Crashed => job_state::CRASHED,
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
    let failed_checks = check_health(c, st, &mut seen).await;

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
            desired.push(Formation {
                app: f.app,
                process_type: f.process_type,
                count: f.count,
                release: version,
                memory_bytes,
                layers: st.layers(c, &release.image).await,
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

/// Merges the store's job rows with the agents' reports, updating rows that changed,
/// dropping rows their (answering) node no longer has, and adopting labelled jobs the store
/// does not know.
async fn observe(
    c: &Controller,
    reports: &HashMap<String, Vec<JobStatus>>,
    silent: &HashSet<String>,
    starting: &HashSet<String>,
    stopping: &HashSet<String>,
    ids: &HashMap<String, u32>,
) -> Result<Vec<Seen>, StoreError> {
    let rows = c.store.active_jobs().await?;
    let known: HashSet<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut seen = Vec::new();
    for row in rows {
        let observed = |phase, healthy| ObservedJob {
            id: row.id.clone(),
            app: row.app.clone(),
            release: row.release,
            process_type: row.process_type.clone(),
            node: row.node.clone(),
            phase,
            healthy,
        };
        let Some(report) = reports.get(&row.node) else {
            // A silent node's jobs count as last recorded; a down node's are not known.
            if let Some(phase) = silent
                .contains(&row.node)
                .then(|| recorded_phase(&row.state))
                .flatten()
            {
                seen.push(Seen {
                    job: observed(phase, false),
                    addr: row.addr.clone(),
                    crashed: false,
                    reason: None,
                });
            }
            continue;
        };
        match report.iter().find(|s| s.id == row.id) {
            Some(status) => {
                let being_stopped = stopping.contains(&row.id);
                let state = if being_stopped {
                    job_state::STOPPING
                } else {
                    state_name(status.state)
                };
                if state != row.state || status.addr != row.addr {
                    let reason = status.exit.as_ref().map(|e| e.reason.as_str());
                    c.store
                        .update_job(&row.id, state, status.addr.as_deref(), reason)
                        .await?;
                }
                let phase = if being_stopped {
                    Phase::Stopping
                } else {
                    phase_of(status.state)
                };
                seen.push(Seen {
                    job: observed(phase, false),
                    addr: status.addr.clone(),
                    crashed: status.state == JobState::Crashed,
                    reason: status.exit.as_ref().map(|e| e.reason.clone()),
                });
            }
            None if starting.contains(&row.id) => seen.push(Seen {
                job: observed(Phase::Starting, false),
                addr: None,
                crashed: false,
                reason: None,
            }),
            None if stopping.contains(&row.id) => {}
            None => {
                tracing::info!(job = %row.id, node = %row.node, "the node no longer has this job");
                c.store
                    .set_job_state(
                        &row.id,
                        job_state::REMOVED,
                        Some("its node no longer has this job"),
                    )
                    .await?;
            }
        }
    }
    for (node, statuses) in reports {
        for status in statuses.iter().filter(|s| !known.contains(&s.id)) {
            let Some(mut job) = adoptable(node, status) else {
                continue;
            };
            // Only into the app that has the job's name AND number; anything else (a
            // destroyed app's job, or one of an app renamed since) is filed under a name
            // no app has, so the plan stops it.
            let number = status
                .labels
                .get(labels::APP_ID)
                .and_then(|n| n.parse::<u32>().ok());
            if number.is_none() || ids.get(&job.app) != number.as_ref() {
                tracing::warn!(job = %job.id, app = %job.app, ?number,
                    "a job of an app that is gone (or another app now): it is stopped");
                job.app = crate::store::destroyed_name(&job.app, number.unwrap_or(0));
            }
            tracing::info!(job = %job.id, %node, "adopting a job the store did not list");
            let now = now_rfc3339();
            c.store
                .upsert_job(&JobRow {
                    id: job.id.clone(),
                    app: job.app.clone(),
                    release: job.release,
                    process_type: job.process_type.clone(),
                    node: node.clone(),
                    state: state_name(status.state).to_string(),
                    addr: status.addr.clone(),
                    exit_reason: status.exit.as_ref().map(|e| e.reason.clone()),
                    created_at: now.clone(),
                    updated_at: now,
                })
                .await?;
            seen.push(Seen {
                job,
                addr: status.addr.clone(),
                crashed: status.state == JobState::Crashed,
                reason: status.exit.as_ref().map(|e| e.reason.clone()),
            });
        }
    }
    Ok(seen)
}

/// The phase a stored state stands for while the job's agent is silent (finished jobs are
/// left for when it answers again).
fn recorded_phase(state: &str) -> Option<Phase> {
    match state {
        job_state::PENDING | job_state::STARTING => Some(Phase::Starting),
        job_state::UP => Some(Phase::Up),
        job_state::STOPPING => Some(Phase::Stopping),
        _ => None,
    }
}

fn node_last_seen(rows: &[crate::store::NodeRow], name: &str) -> i64 {
    rows.iter()
        .find(|n| n.name == name)
        .map_or(0, |n| n.last_seen_ms)
}

/// An app job (by its labels) that the store does not list.
fn adoptable(node: &str, status: &JobStatus) -> Option<ObservedJob> {
    let l = &status.labels;
    if l.get(labels::KIND).map(String::as_str) != Some(labels::KIND_PROCESS) {
        return None;
    }
    Some(ObservedJob {
        id: status.id.clone(),
        app: l.get(labels::APP)?.clone(),
        release: l.get(labels::RELEASE)?.parse().ok()?,
        process_type: l.get(labels::TYPE)?.clone(),
        node: node.to_string(),
        phase: phase_of(status.state),
        healthy: false,
    })
}

/// Health-checks every up web job (see [`super::health`]); other up jobs count as healthy
/// while they run. Returns (app, release) → why, for releases whose new web jobs failed all
/// their startup health checks.
async fn check_health(
    c: &Controller,
    st: &mut LoopState,
    seen: &mut [Seen],
) -> HashMap<(String, u32), String> {
    let targets: Vec<health::Target> = seen
        .iter()
        .filter(|s| health::is_checked(&s.job.process_type, s.job.phase))
        .map(|s| health::Target {
            id: &s.job.id,
            app: &s.job.app,
            release: s.job.release,
            addr: s.addr.as_deref(),
        })
        .collect();
    let results = st.health.check(c, &targets).await;
    let failed = st.health.failed(c, &targets).await;
    for s in seen.iter_mut() {
        if s.job.phase != Phase::Up {
            continue;
        }
        s.job.healthy = if s.job.process_type == "web" {
            results.get(&s.job.id).copied().unwrap_or(false)
        } else {
            true
        };
    }
    failed
}

/// Replaces the router's table: every app (`<app>.<domain>` and its custom domains) → its
/// healthy web jobs of the current release, or, while there are none, the healthy web jobs
/// of older releases. Returns app → job ids.
async fn push_routes(
    c: &Controller,
    seen: &[Seen],
    apps: Vec<crate::store::AppRow>,
) -> Result<HashMap<String, Vec<String>>, StoreError> {
    let mut custom: HashMap<String, Vec<String>> = HashMap::new();
    for d in c.store.domains(None).await? {
        custom.entry(d.app).or_default().push(d.hostname);
    }
    let mut routes = Vec::with_capacity(apps.len());
    let mut routed = HashMap::new();
    for app in apps {
        let mut ready: Vec<&Seen> = seen
            .iter()
            .filter(|s| s.job.app == app.name && s.job.process_type == "web")
            .filter(|s| s.job.ready() && s.addr.is_some())
            .collect();
        let current: Vec<&Seen> = ready
            .iter()
            .copied()
            .filter(|s| Some(s.job.release) == app.current_release)
            .collect();
        if !current.is_empty() {
            ready = current;
        }
        ready.sort_by(|a, b| {
            b.job
                .release
                .cmp(&a.job.release)
                .then(a.job.id.cmp(&b.job.id))
        });
        let backends: Vec<Backend> = ready
            .iter()
            .map(|s| Backend {
                addr: s.addr.clone().unwrap_or_default(),
                job_id: s.job.id.clone(),
            })
            .collect();
        routed.insert(
            app.name.clone(),
            backends.iter().map(|b| b.job_id.clone()).collect(),
        );
        let mut hosts = vec![c.settings.app_host(&app.name)];
        hosts.extend(custom.remove(&app.name).unwrap_or_default());
        routes.push(Route {
            hosts,
            app: app.name,
            backends,
        });
    }
    // Saved for a restarted or separate router, only when it changed (no write per pass).
    if c.routes.routes() != routes {
        crate::routing::save_routes(&c.store, &routes).await;
    }
    c.routes.replace(routes);
    Ok(routed)
}

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
    }));
    Ok(())
}
