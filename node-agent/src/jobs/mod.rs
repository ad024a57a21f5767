//! The job manager: start, watch, stop, delete and re-adopt jobs.
//!
//! Each job lives in `state_dir/jobs/<id>/`: `spec.json` (written before anything is
//! done), `status.json` (rewritten at every change), the container's `stdout.log` and
//! `stderr.log` with the timestamped `records.log` the agent captures from them (see
//! [`capture`]), `inputs/<n>/`. A job is
//! `starting` while its image, inputs and network are prepared, `up` once the runtime
//! started its process, and final (`down` or `crashed`) only after its output layer step
//! is done, so "final" always means "nothing more will happen". One async lock per job
//! serializes start, stop and delete; a waiter task per running job records the exit.

pub mod capture;
pub mod diff;
pub mod logs;
pub mod output;
pub mod prepare;
pub mod userns;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use paas_api::{ExitInfo, JobSpec, JobState, JobStatus, LayerInfo};
use paas_runtime::{BindMount, ExitStatus, Status};
use tokio::sync::watch;

use crate::agent::Agent;
use crate::images::ImageError;
use crate::network::NetError;
use crate::util::{now_rfc3339, read_json, write_json_atomic};

/// How long to wait for a process after SIGKILL before giving up on a stop.
const KILL_WAIT: Duration = Duration::from_secs(30);
/// Grace between SIGTERM and SIGKILL when DELETE stops a running job.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(10);

/// Errors of job operations; the HTTP layer maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error("invalid job spec: {0}")]
    Invalid(String),
    #[error("job {id:?} already exists on this node: DELETE it first or use a new id")]
    Conflict { id: String },
    #[error("no job {id:?} on this node")]
    NotFound { id: String },
    #[error("pull {image}: {source}")]
    Pull {
        image: String,
        #[source]
        source: ImageError,
    },
    #[error("input {path} from {url}: {source}")]
    Input {
        path: String,
        url: String,
        #[source]
        source: prepare::InputError,
    },
    #[error("network: {0}")]
    Network(#[from] NetError),
    #[error("{what}: {source}")]
    Runtime {
        what: String,
        #[source]
        source: paas_runtime::Error,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("container spec: {0}")]
    Spec(String),
    #[error("job {id:?} is {state:?}, not up: it has no running process")]
    NotRunning { id: String, state: JobState },
    #[error("job {id:?} did not exit {secs} s after SIGKILL")]
    StopTimeout { id: String, secs: u64 },
    #[error("user namespace: {0}")]
    Userns(#[from] userns::UsernsError),
}

type Result<T> = std::result::Result<T, JobError>;

/// Whether a state is final (nothing more will happen to the job).
pub fn is_final(state: JobState) -> bool {
    matches!(state, JobState::Down | JobState::Crashed)
}

/// One job: its spec, its live status (a watch channel, so waiters and log followers see
/// every change) and its lock.
#[derive(Debug)]
pub struct JobHandle {
    pub spec: JobSpec,
    dir: PathBuf,
    status: watch::Sender<JobStatus>,
    op: tokio::sync::Mutex<()>,
    stop_requested: AtomicBool,
    /// Bumped after every append of the capture, so log followers wake up.
    appended: watch::Sender<u64>,
    /// The running capture task, if any.
    capture: Mutex<Option<CaptureTask>>,
}

/// A job's capture task and the way to end it.
#[derive(Debug)]
struct CaptureTask {
    stop: tokio::sync::oneshot::Sender<()>,
    done: tokio::task::JoinHandle<()>,
}

impl JobHandle {
    pub fn status(&self) -> JobStatus {
        self.status.borrow().clone()
    }

    pub fn subscribe(&self) -> watch::Receiver<JobStatus> {
        self.status.subscribe()
    }

    /// The job's directory (its log files live there).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    /// Wakes on every append of the job's log capture.
    pub fn subscribe_appends(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// Where the container writes its stdout and stderr.
    fn output_paths(&self) -> (PathBuf, PathBuf) {
        (
            self.dir.join(capture::STDOUT),
            self.dir.join(capture::STDERR),
        )
    }

    /// Changes the status, notifies watchers and persists `status.json`.
    fn update(&self, f: impl FnOnce(&mut JobStatus)) {
        self.status.send_modify(f);
        let status = self.status();
        if let Err(e) = write_json_atomic(&self.dir.join("status.json"), &status) {
            tracing::error!(job = %status.id, "persisting status.json: {e}");
        }
    }

    fn finish(&self, state: JobState, exit: ExitInfo, layer: Option<LayerInfo>) {
        self.update(|s| {
            s.state = state;
            s.pid = None;
            s.exit = Some(exit);
            s.output_layer = layer;
            s.finished_at = Some(now_rfc3339());
        });
    }
}

/// Every job of the node, by id, backed by `state_dir/jobs/`.
#[derive(Debug)]
pub struct JobTable {
    root: PathBuf,
    jobs: Mutex<BTreeMap<String, Arc<JobHandle>>>,
}

impl JobTable {
    /// Loads every `jobs/<id>/` record (unreadable ones are logged and left out).
    pub fn open(root: PathBuf) -> Result<JobTable> {
        std::fs::create_dir_all(&root).map_err(|source| JobError::Io {
            what: format!("creating {}", root.display()),
            source,
        })?;
        let mut jobs = BTreeMap::new();
        for entry in std::fs::read_dir(&root).into_iter().flatten().flatten() {
            let dir = entry.path();
            let spec: JobSpec = match read_json(&dir.join("spec.json")) {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!(dir = %dir.display(), "ignoring job dir: spec.json: {e}");
                    continue;
                }
            };
            let status =
                read_json(&dir.join("status.json")).unwrap_or_else(|_| initial_status(&spec));
            let (tx, _) = watch::channel(status);
            jobs.insert(spec.id.clone(), Arc::new(new_handle(spec, dir, tx)));
        }
        Ok(JobTable {
            root,
            jobs: Mutex::new(jobs),
        })
    }

    fn map(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Arc<JobHandle>>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn get(&self, id: &str) -> Result<Arc<JobHandle>> {
        self.map()
            .get(id)
            .cloned()
            .ok_or_else(|| JobError::NotFound { id: id.into() })
    }

    pub fn all(&self) -> Vec<Arc<JobHandle>> {
        self.map().values().cloned().collect()
    }

    pub fn statuses(&self) -> Vec<JobStatus> {
        self.all().iter().map(|j| j.status()).collect()
    }

    /// Records a new job (spec.json then status.json) or fails with Conflict.
    fn insert_new(&self, spec: JobSpec) -> Result<Arc<JobHandle>> {
        let mut map = self.map();
        if map.contains_key(&spec.id) {
            return Err(JobError::Conflict { id: spec.id });
        }
        let dir = self.root.join(&spec.id);
        let io = |what: String| move |source| JobError::Io { what, source };
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("inputs"))
            .map_err(io(format!("creating {}", dir.display())))?;
        write_json_atomic(&dir.join("spec.json"), &spec)
            .map_err(io(format!("writing {}/spec.json", dir.display())))?;
        let status = initial_status(&spec);
        write_json_atomic(&dir.join("status.json"), &status)
            .map_err(io(format!("writing {}/status.json", dir.display())))?;
        for name in [capture::STDOUT, capture::STDERR] {
            std::fs::File::create(dir.join(name))
                .map_err(io(format!("creating {}/{name}", dir.display())))?;
        }
        let (tx, _) = watch::channel(status);
        let job = Arc::new(new_handle(spec, dir, tx));
        map.insert(job.spec.id.clone(), job.clone());
        Ok(job)
    }

    fn remove(&self, id: &str) {
        self.map().remove(id);
    }
}

fn new_handle(spec: JobSpec, dir: PathBuf, status: watch::Sender<JobStatus>) -> JobHandle {
    JobHandle {
        spec,
        dir,
        status,
        op: tokio::sync::Mutex::new(()),
        stop_requested: AtomicBool::new(false),
        appended: watch::channel(0).0,
        capture: Mutex::new(None),
    }
}

/// Starts tailing the job's output into timestamped records (see [`capture`]), from
/// where the last capture of this job stopped.
fn start_capture(agent: &Arc<Agent>, job: &Arc<JobHandle>) {
    let mut slot = job.capture.lock().unwrap_or_else(|e| e.into_inner());
    if slot.is_some() {
        return;
    }
    let (stop, mut stop_rx) = tokio::sync::oneshot::channel::<()>();
    let (job2, cap) = (job.clone(), agent.config.job_log_bytes);
    let done = tokio::spawn(async move {
        let dir = job2.dir.clone();
        let opened = tokio::task::spawn_blocking(move || capture::Capture::open(&dir, cap)).await;
        let capture = match opened {
            Ok(Ok(c)) => Arc::new(Mutex::new(c)),
            Ok(Err(e)) => return tracing::error!(job = %job2.spec.id, "{e}"),
            Err(e) => return tracing::error!(job = %job2.spec.id, "log capture: {e}"),
        };
        let mut failing = false;
        loop {
            let stopping = tokio::select! {
                () = tokio::time::sleep(capture::POLL) => false,
                _ = &mut stop_rx => true,
            };
            let c = capture.clone();
            let polled = tokio::task::spawn_blocking(move || {
                let mut c = c.lock().unwrap_or_else(|e| e.into_inner());
                let mut any = c.poll(stopping)?;
                // At the end, read everything left (a poll reads at most 1 MiB a source).
                while stopping && c.poll(true)? {
                    any = true;
                }
                Ok::<_, capture::CaptureError>(any)
            })
            .await;
            match polled {
                Ok(Ok(true)) => job2.appended.send_modify(|n| *n += 1),
                Ok(Ok(false)) => {}
                Ok(Err(e)) if !failing => {
                    failing = true;
                    tracing::error!(job = %job2.spec.id, "{e}");
                }
                Ok(Err(_)) => {}
                Err(e) => tracing::error!(job = %job2.spec.id, "log capture: {e}"),
            }
            if stopping {
                return;
            }
        }
    });
    *slot = Some(CaptureTask { stop, done });
}

/// Ends the job's capture after a last read of everything the process wrote (partial
/// lines included); without a running capture, captures what is left once.
async fn end_capture(agent: &Arc<Agent>, job: &Arc<JobHandle>) {
    let task = job.capture.lock().unwrap_or_else(|e| e.into_inner()).take();
    match task {
        Some(CaptureTask { stop, done }) => {
            let _ = stop.send(());
            let _ = done.await;
        }
        None => {
            let (dir, cap) = (job.dir.clone(), agent.config.job_log_bytes);
            match tokio::task::spawn_blocking(move || capture::drain(&dir, cap)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => tracing::warn!(job = %job.spec.id, "{e}"),
                Err(e) => tracing::warn!(job = %job.spec.id, "log capture: {e}"),
            }
        }
    }
    job.appended.send_modify(|n| *n += 1);
}

fn initial_status(spec: &JobSpec) -> JobStatus {
    JobStatus {
        id: spec.id.clone(),
        labels: spec.labels.clone(),
        state: JobState::Starting,
        pid: None,
        ip: None,
        host_port: None,
        addr: None,
        exit: None,
        output_layer: None,
        started_at: None,
        finished_at: None,
    }
}

fn exit_info(reason: impl Into<String>) -> ExitInfo {
    ExitInfo {
        reason: reason.into(),
        ..ExitInfo::default()
    }
}

/// `POST /v1/jobs`: records the job, prepares and starts it, and returns its status once
/// the process runs. On failure the job stays listed as `crashed` with the reason.
pub async fn create(agent: &Arc<Agent>, spec: JobSpec) -> Result<JobStatus> {
    prepare::validate(&spec).map_err(JobError::Invalid)?;
    let job = agent.jobs.insert_new(spec)?;
    let _op = job.op.lock().await;
    let mut made = Made::default();
    match start(agent, &job, &mut made).await {
        Ok(()) => Ok(job.status()),
        Err(e) => {
            tracing::warn!(job = %job.spec.id, "failed to start: {e}");
            release(agent, &job.spec.id, made).await;
            end_capture(agent, &job).await;
            job.update(|s| {
                s.ip = None;
                s.host_port = None;
                s.addr = None;
            });
            job.finish(
                JobState::Crashed,
                exit_info(format!("failed to start: {e}")),
                None,
            );
            Err(e)
        }
    }
}

/// What a start made so far, so a failed start undoes exactly that.
#[derive(Debug, Default, Clone, Copy)]
struct Made {
    network: bool,
    container: bool,
}

/// Runs a blocking step of the user namespace setup on the blocking pool.
async fn userns_step<T: Send + 'static>(
    f: impl FnOnce() -> std::result::Result<T, userns::UsernsError> + Send + 'static,
) -> Result<T> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| JobError::Io {
            what: "user namespace setup".into(),
            source: std::io::Error::other(e.to_string()),
        })?
        .map_err(JobError::from)
}

async fn start(agent: &Arc<Agent>, job: &Arc<JobHandle>, made: &mut Made) -> Result<()> {
    let spec = &job.spec;
    // The tenant's uid range on this node (saved before anything is owned by it).
    let userns_base = match spec.user_namespace {
        true => {
            let (a, tenant, id) = (agent.clone(), spec.tenant, spec.id.clone());
            Some(userns_step(move || a.uid_ranges.for_job(tenant, &id)).await?)
        }
        false => None,
    };
    let image = agent
        .images
        .pull(&spec.image)
        .await
        .map_err(|source| JobError::Pull {
            image: format!("{}@{}", spec.image.repository, spec.image.reference),
            source,
        })?;
    let mut mounts = Vec::new();
    for (n, input) in spec.inputs.iter().enumerate() {
        let dir = job.dir.join("inputs").join(n.to_string());
        prepare::fetch_input(&agent.client, &agent.config.token, &input.url, &dir)
            .await
            .map_err(|source| JobError::Input {
                path: input.path.clone(),
                url: input.url.clone(),
                source,
            })?;
        if let Some(base) = userns_base {
            // Unpacked by host root: the job's root (and uid k) must own it.
            let d = dir.clone();
            userns_step(move || userns::give_tree(&d, 0, base)).await?;
        }
        mounts.push(BindMount {
            source: dir,
            destination: input.path.clone(),
            readonly: input.readonly,
        });
    }
    for volume in &spec.volumes {
        let dir = agent.config.state_dir.join("volumes").join(&volume.name);
        std::fs::create_dir_all(&dir).map_err(|source| JobError::Io {
            what: format!("creating volume {}", dir.display()),
            source,
        })?;
        // A sized volume is mounted again after a reboot or an agent cleanup.
        let (state_dir, name) = (agent.config.state_dir.clone(), volume.name.clone());
        tokio::task::spawn_blocking(move || crate::volumes::ensure_mounted(&state_dir, &name))
            .await
            .map_err(|e| JobError::Io {
                what: format!("mounting volume {}", volume.name),
                source: std::io::Error::other(e),
            })?
            .map_err(|e| JobError::Io {
                what: format!("mounting volume {}", volume.name),
                source: std::io::Error::other(e.to_string()),
            })?;
        if let Some(base) = userns_base {
            // Owned by the tenant's range (the same every time on this node); a volume
            // of another owner (made before user namespaces, or under another range)
            // is re-owned once.
            let d = dir.clone();
            let changed = userns_step(move || userns::give_volume(&d, base)).await?;
            if changed > 0 {
                tracing::info!(job = %spec.id, volume = %volume.name, changed, "volume given to the job's uid range");
            }
        }
        mounts.push(BindMount {
            source: dir,
            destination: volume.path.clone(),
            readonly: volume.readonly,
        });
    }
    made.network = true;
    let net = agent
        .network
        .setup_job(&spec.id, spec.port, spec.tenant, &spec.guests)
        .await?;
    if spec.api_access {
        agent.network.allow_api(&spec.id).await?;
    }
    job.update(|s| {
        s.ip = Some(net.ip.to_string());
        s.host_port = net.host_port;
        s.addr = net.addr.clone();
    });
    let cspec = prepare::container_spec(spec, &image, mounts, net.netns_path, job.output_paths())
        .map_err(JobError::Spec)?;
    let runtime = agent.runtime.clone();
    let options = prepare::container_options(spec, userns_base, prepare::node_cpus());
    made.container = true;
    let state = blocking(move || runtime.run_with(&cspec, &options))
        .await
        .map_err(|source| JobError::Runtime {
            what: "starting the container".into(),
            source,
        })?;
    job.update(|s| {
        s.state = JobState::Up;
        s.pid = Some(state.pid);
        s.started_at = Some(now_rfc3339());
    });
    tracing::info!(job = %spec.id, pid = state.pid, "job up");
    start_capture(agent, job);
    spawn_waiter(agent.clone(), job.clone());
    Ok(())
}

/// Runs a runtime call on the blocking pool; a panicked call becomes an I/O error.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> paas_runtime::Result<T> + Send + 'static,
) -> paas_runtime::Result<T> {
    tokio::task::spawn_blocking(f).await.unwrap_or_else(|e| {
        Err(paas_runtime::Error::Io {
            what: "runtime call panicked".into(),
            source: std::io::Error::other(e.to_string()),
        })
    })
}

/// Removes what a failed start made (container, network); errors are logged.
async fn release(agent: &Arc<Agent>, id: &str, made: Made) {
    if made.container {
        let runtime = agent.runtime.clone();
        let cid = id.to_string();
        match blocking(move || runtime.delete(&cid, true)).await {
            Ok(()) | Err(paas_runtime::Error::NotFound(_)) => {}
            Err(e) => tracing::warn!(job = id, "deleting container: {e}"),
        }
    }
    if made.network {
        if let Err(e) = agent.network.teardown_job(id).await {
            tracing::warn!(job = id, "network teardown: {e}");
        }
    }
}

/// Waits (on the blocking pool) for the job's process, then records how it ended, after
/// packing and pushing the output layer when there is one and the exit was 0.
fn spawn_waiter(agent: Arc<Agent>, job: Arc<JobHandle>) {
    tokio::spawn(async move {
        let runtime = agent.runtime.clone();
        let id = job.spec.id.clone();
        let exit = blocking(move || runtime.wait(&id)).await;
        // Everything the process wrote is in the records before the job turns final.
        end_capture(&agent, &job).await;
        let stopped = job.stop_requested.load(Ordering::SeqCst);
        let (mut state, mut info) = match exit {
            Ok(e) => classify(e, stopped),
            Err(e) => (
                JobState::Crashed,
                exit_info(format!("lost track of the container: {e}")),
            ),
        };
        let mut layer = None;
        if let (Some(out), JobState::Down, false) = (&job.spec.output, state, stopped) {
            match make_output(&agent, &job, out).await {
                Ok(l) => layer = Some(l),
                Err(e) => {
                    state = JobState::Crashed;
                    info.reason = format!("exited 0, but the output layer failed: {e}");
                }
            }
        }
        tracing::info!(job = %job.spec.id, reason = %info.reason, "job ended");
        job.finish(state, info, layer);
    });
}

async fn make_output(
    agent: &Arc<Agent>,
    job: &Arc<JobHandle>,
    out: &paas_api::JobOutput,
) -> std::result::Result<LayerInfo, String> {
    let blob = job.dir.join("output.tar.gz");
    // The ids the job ran with, to map its files back to container ids.
    let (runtime, id) = (agent.runtime.clone(), job.spec.id.clone());
    let base = blocking(move || runtime.options(&id))
        .await
        .map_err(|e| format!("reading the job's user namespace: {e}"))?
        .id_mappings
        .and_then(|m| m.host_id(0, false));
    let packed = if out.path == "/" {
        // The container's filesystem changes (a Dockerfile RUN step): its upper dir.
        let (runtime, id) = (agent.runtime.clone(), job.spec.id.clone());
        let upper = blocking(move || runtime.state(&id))
            .await
            .map_err(|e| format!("finding the job's upper dir: {e}"))?
            .upper_dir;
        let blob2 = blob.clone();
        tokio::task::spawn_blocking(move || diff::pack_changes(&upper, &blob2, base)).await
    } else {
        let n = job
            .spec
            .inputs
            .iter()
            .position(|i| i.path == out.path)
            .ok_or_else(|| format!("{} is not one of the job's inputs", out.path))?;
        let src = job.dir.join("inputs").join(n.to_string());
        let (blob2, path) = (blob.clone(), out.path.clone());
        tokio::task::spawn_blocking(move || output::pack(&src, &path, &blob2, base)).await
    };
    let layer = packed
        .map_err(|e| format!("packing {}: {e}", out.path))?
        .map_err(|e| format!("packing {}: {e}", out.path))?;
    let pushed = output::push(&agent.client, &agent.config.token, out, &blob, &layer).await;
    let _ = std::fs::remove_file(&blob);
    pushed.map_err(|e| e.to_string())?;
    Ok(layer)
}

/// Maps a runtime exit status to the job's final state and a human reason.
pub fn classify(e: ExitStatus, stopped: bool) -> (JobState, ExitInfo) {
    let reason = if e.oom_killed {
        "out of memory".to_string()
    } else if let Some(code) = e.code {
        format!("exited {code}")
    } else if let Some(sig) = e.signal {
        format!("killed by {}", signal_name(sig))
    } else {
        "exited (status unknown: the process was not the agent's child)".to_string()
    };
    let clean = e.code == Some(0) && !e.oom_killed;
    let (state, reason) = if stopped {
        (JobState::Down, format!("stopped: {reason}"))
    } else if clean {
        (JobState::Down, reason)
    } else {
        (JobState::Crashed, reason)
    };
    let info = ExitInfo {
        code: e.code,
        signal: e.signal,
        oom_killed: e.oom_killed,
        reason,
    };
    (state, info)
}

fn signal_name(sig: i32) -> String {
    nix::sys::signal::Signal::try_from(sig)
        .map(|s| s.as_str().to_string())
        .unwrap_or_else(|_| format!("signal {sig}"))
}

/// `POST /v1/jobs/{id}/stop`: SIGTERM, `grace`, SIGKILL; returns the final status.
pub async fn stop(agent: &Arc<Agent>, id: &str, grace: Duration) -> Result<JobStatus> {
    let job = agent.jobs.get(id)?;
    let _op = job.op.lock().await;
    stop_locked(agent, &job, grace).await
}

async fn stop_locked(
    agent: &Arc<Agent>,
    job: &Arc<JobHandle>,
    grace: Duration,
) -> Result<JobStatus> {
    if is_final(job.status().state) {
        return Ok(job.status());
    }
    job.stop_requested.store(true, Ordering::SeqCst);
    job.update(|s| s.state = JobState::Stopping);
    let mut rx = job.subscribe();
    kill(agent, &job.spec.id, libc::SIGTERM).await;
    let done = |s: &JobStatus| is_final(s.state);
    if tokio::time::timeout(grace, rx.wait_for(done))
        .await
        .is_err()
    {
        kill(agent, &job.spec.id, libc::SIGKILL).await;
        if tokio::time::timeout(KILL_WAIT, rx.wait_for(done))
            .await
            .is_err()
        {
            return Err(JobError::StopTimeout {
                id: job.spec.id.clone(),
                secs: KILL_WAIT.as_secs(),
            });
        }
    }
    Ok(job.status())
}

async fn kill(agent: &Arc<Agent>, id: &str, signal: i32) {
    let runtime = agent.runtime.clone();
    let cid = id.to_string();
    if let Err(e) = blocking(move || runtime.kill(&cid, signal)).await {
        tracing::debug!(job = id, signal, "kill: {e}");
    }
}

/// `DELETE /v1/jobs/{id}`: stops the job if needed, removes its container, network and
/// directory (named volumes stay).
pub async fn delete(agent: &Arc<Agent>, id: &str) -> Result<()> {
    let job = agent.jobs.get(id)?;
    let _op = job.op.lock().await;
    stop_locked(agent, &job, DEFAULT_GRACE).await?;
    let runtime = agent.runtime.clone();
    let cid = id.to_string();
    match blocking(move || runtime.delete(&cid, true)).await {
        Ok(()) | Err(paas_runtime::Error::NotFound(_)) => {}
        Err(source) => {
            return Err(JobError::Runtime {
                what: format!("deleting the container of job {id}"),
                source,
            })
        }
    }
    agent.network.teardown_job(id).await?;
    if let Err(source) = std::fs::remove_dir_all(&job.dir) {
        if source.kind() != std::io::ErrorKind::NotFound {
            return Err(JobError::Io {
                what: format!("removing {}", job.dir.display()),
                source,
            });
        }
    }
    agent.jobs.remove(id);
    let (a, job_id) = (agent.clone(), id.to_string());
    if let Err(e) = userns_step(move || a.uid_ranges.release_job(&job_id)).await {
        // Given back at the next start (`adopt`) instead.
        tracing::warn!(job = id, "giving back the job's uid range: {e}");
    }
    tracing::info!(job = id, "job deleted");
    Ok(())
}

/// At agent start: jobs whose container still runs stay `up` (same pid) and get a waiter;
/// jobs that were running but whose container is gone become `crashed`.
pub async fn adopt(agent: &Arc<Agent>) {
    let a = agent.clone();
    let kept = userns_step(move || a.uid_ranges.keep_jobs(|id| a.jobs.get(id).is_ok())).await;
    if let Err(e) = kept {
        tracing::warn!("giving back the uid ranges of deleted jobs: {e}");
    }
    for job in agent.jobs.all() {
        let was = job.status().state;
        if is_final(was) {
            continue;
        }
        let runtime = agent.runtime.clone();
        let id = job.spec.id.clone();
        match blocking(move || runtime.state(&id)).await {
            Ok(state) if state.status == Status::Running => {
                job.update(|s| {
                    s.state = JobState::Up;
                    s.pid = Some(state.pid);
                    if s.started_at.is_none() {
                        s.started_at = Some(now_rfc3339());
                    }
                });
                tracing::info!(job = %job.spec.id, pid = state.pid, "re-adopted running job");
                // The capture goes on from where the previous agent saved it.
                start_capture(agent, &job);
                spawn_waiter(agent.clone(), job.clone());
            }
            _ => {
                let reason = if was == JobState::Starting {
                    "the agent stopped while the job was starting"
                } else {
                    "exited while the agent was down"
                };
                tracing::info!(job = %job.spec.id, "{reason}");
                end_capture(agent, &job).await;
                job.finish(JobState::Crashed, exit_info(reason), None);
            }
        }
    }
}
