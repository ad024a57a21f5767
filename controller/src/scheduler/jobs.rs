//! Starting and stopping one job on its node, for the scheduler loop (`runner`):
//! the JobSpec of a process, the job row written before the agent is asked (so a restarted
//! controller adopts instead of duplicating), and the stop with its router drain.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use paas_api::{ImageRef, JobSpec};

use super::labels;
use super::observe::state_name;
use crate::config::Settings;
use crate::state::Controller;
use crate::store::{job_state, JobRow, ReleaseRow, Restarts, StoreError};
use crate::util::{now_rfc3339, random_hex};

/// The port every process is told to listen on (`PORT`).
pub const APP_PORT: u16 = 5000;

pub(super) const APP_MEMORY_BYTES: u64 = super::plan::DEFAULT_MEMORY_BYTES;
const APP_PIDS: u64 = 1024;
/// Seconds between SIGTERM and SIGKILL when stopping a job.
const STOP_GRACE_SECONDS: u64 = 10;
/// Lines of a removed job's output kept in the store.
const KEPT_LOG_LINES: usize = 50;
/// How long a stopped web job's in-flight requests may take to finish in the router
/// before the job is stopped anyway.
const DRAIN_GRACE: Duration = Duration::from_secs(30);

/// Sources the app's `.profile.d/*.sh` at every start (as Heroku does for each dyno, so
/// scripts see `$PORT` and `$DYNO`), then runs the command (`$0`) in a fresh `sh -c`, which
/// `exec`s a simple command so signals reach the app directly.
pub const PROFILE_PRELUDE: &str = "for f in /app/.profile.d/*.sh; do [ -r \"$f\" ] && . \"$f\"; \
     done; unset f; exec /bin/sh -c \"$0\"";

/// The JobSpec of one process of a release.
pub fn process_job_spec(
    settings: &Settings,
    release: &ReleaseRow,
    process_type: &str,
    dyno: u32,
    id: &str,
) -> JobSpec {
    let (repository, reference) = release
        .image
        .split_once('@')
        .unwrap_or((release.image.as_str(), "latest"));
    let command = release
        .process_types
        .get(process_type)
        .cloned()
        .unwrap_or_default();
    let mut env: BTreeMap<String, String> = release.config.clone();
    // A `PORT` config var (a Dockerfile app's EXPOSEd port, see docs/builds.md) is the
    // port the web process listens on; else paas's.
    let port = release
        .config
        .get("PORT")
        .and_then(|p| p.trim().parse::<u16>().ok())
        .filter(|p| *p > 0)
        .unwrap_or(APP_PORT);
    env.insert("PORT".into(), port.to_string());
    env.insert("DYNO".into(), format!("{process_type}.{dyno}"));
    let labels = BTreeMap::from([
        (labels::KIND.into(), labels::KIND_PROCESS.into()),
        (labels::APP.into(), release.app.clone()),
        (labels::RELEASE.into(), release.version.to_string()),
        (labels::TYPE.into(), process_type.into()),
        (labels::DYNO.into(), format!("{process_type}.{dyno}")),
    ]);
    JobSpec {
        id: id.into(),
        labels,
        image: ImageRef {
            registry: settings.internal_url.clone(),
            repository: repository.into(),
            reference: reference.into(),
        },
        command: super::command::process_argv(&command),
        env,
        working_dir: None,
        port: (process_type == "web").then_some(port),
        memory_bytes: Some(APP_MEMORY_BYTES),
        pids_limit: Some(APP_PIDS),
        cpu_millicores: Some(paas_api::sizes::cpu(APP_MEMORY_BYTES).millicores),
        cpu_shares: Some(paas_api::sizes::cpu(APP_MEMORY_BYTES).shares),
        inputs: Vec::new(),
        volumes: Vec::new(),
        output: None,
        hostname: None,
        user_namespace: true,
        tenant: None,
        api_access: false,
        guests: Vec::new(),
    }
}

/// Writes the job row, then asks the agent (in a task) to start the job. Returns its id.
#[allow(clippy::too_many_arguments)]
pub(super) async fn start_job(
    c: &Arc<Controller>,
    node: &str,
    url: &str,
    release: &ReleaseRow,
    process_type: &str,
    dyno: u32,
    restarts: &Restarts,
    memory_bytes: u64,
) -> Result<String, StoreError> {
    let id = format!("{}-v{}-{}", release.app, release.version, random_hex(4));
    let now = now_rfc3339();
    c.store
        .insert_job(&JobRow {
            id: id.clone(),
            app: release.app.clone(),
            release: release.version,
            process_type: process_type.into(),
            node: node.into(),
            state: job_state::PENDING.into(),
            addr: None,
            exit_reason: None,
            created_at: now.clone(),
            updated_at: now,
        })
        .await?;
    if restarts.restarts > 0 {
        c.store.set_job_restarts(&id, restarts).await?;
    }
    c.scheduler.with(|i| i.starting.insert(id.clone()));
    tracing::info!(job = %id, node, "starting {process_type}.{dyno} of {} v{}", release.app, release.version);
    let mut spec = process_job_spec(&c.settings, release, process_type, dyno, &id);
    spec.api_access = c.store.app_api_access(&release.app).await.unwrap_or(false);
    spec.tenant = c.store.app_id(&release.app).await?;
    if let Some(n) = spec.tenant {
        spec.labels.insert(labels::APP_ID.into(), n.to_string());
    }
    // The volumes mounted into this process type (the plan placed it on their node).
    spec.volumes =
        crate::volumes::job_mounts(&c.store.volumes(Some(&release.app)).await?, process_type);
    // A size is memory and CPU (paas_api::sizes): the quota and weight follow the memory.
    spec.memory_bytes = Some(memory_bytes);
    let cpu = paas_api::sizes::cpu(memory_bytes);
    spec.cpu_millicores = Some(cpu.millicores);
    spec.cpu_shares = Some(cpu.shares);
    let key = (
        release.app.clone(),
        process_type.to_string(),
        release.version,
    );
    let (c, url, job_id) = (Arc::clone(c), url.to_string(), id.clone());
    tokio::spawn(async move {
        let id = job_id;
        let result = c.agents.start_job(&url, &spec).await;
        let stored = match &result {
            Ok(status) => {
                let reason = status.exit.as_ref().map(|e| e.reason.as_str());
                c.store
                    .update_job(
                        &id,
                        state_name(status.state),
                        status.addr.as_deref(),
                        reason,
                    )
                    .await
            }
            Err(e) => {
                tracing::warn!(job = %id, "starting the job failed: {e}");
                let reason = format!("failed to start: {}", e.user_message());
                c.store
                    .set_job_state(&id, job_state::CRASHED, Some(&reason))
                    .await
            }
        };
        if let Err(e) = stored {
            tracing::warn!(job = %id, "recording the job's start: {e}");
        }
        c.scheduler.with(|i| {
            i.starting.remove(&id);
            if let Err(e) = &result {
                i.failed_starts
                    .push((key, format!("failed to start: {}", e.user_message())));
            }
        });
        c.scheduler.notify();
    });
    Ok(id)
}

/// Marks the job stopping, then (in a task) takes its `addr` out of the router, waits for
/// the requests it is serving to finish (at most [`DRAIN_GRACE`]) and stops and deletes it
/// on its node.
pub(super) async fn stop_job(
    c: &Arc<Controller>,
    url: &str,
    id: &str,
    addr: Option<String>,
) -> Result<(), StoreError> {
    let fresh = c.scheduler.with(|i| i.stopping.insert(id.to_string()));
    if !fresh {
        return Ok(());
    }
    c.store.set_job_state(id, job_state::STOPPING, None).await?;
    tracing::info!(job = %id, "stopping and removing job");
    let (c, url, id) = (Arc::clone(c), url.to_string(), id.to_string());
    tokio::spawn(async move {
        if let Some(addr) = addr {
            c.routes.remove_backend(&addr);
            crate::builder::leftovers::kill_point("draining");
            // This process's router and every router process (they learn of the removal
            // through the feed, then report when their requests to it are done).
            let (here, there) = tokio::join!(
                c.routes.wait_drained(&addr, DRAIN_GRACE),
                crate::router_peers::wait_drained(&c.router_peers, &addr, DRAIN_GRACE),
            );
            if !(here && there) {
                tracing::warn!(job = %id, %addr, "requests still running after the drain grace");
            }
        }
        let reason = match c.agents.stop_job(&url, &id, STOP_GRACE_SECONDS).await {
            Ok(status) => status.exit.map(|e| e.reason),
            Err(e) if e.is_not_found() => None,
            Err(e) => {
                tracing::warn!(job = %id, "stopping the job failed (will retry): {e}");
                c.scheduler.with(|i| i.stopping.remove(&id));
                return;
            }
        };
        // Keep the end of its output for `paas logs` (a crash's error stays visible).
        if let Ok(log) = c.agents.logs(&url, &id).await {
            let kept = crate::store::last_lines(&log, KEPT_LOG_LINES);
            if let Err(e) = c.store.set_job_log(&id, &kept).await {
                tracing::warn!(job = %id, "keeping the job's output: {e}");
            }
        }
        if let Err(e) = c.agents.delete_job(&url, &id).await {
            tracing::warn!(job = %id, "deleting the job failed (will retry): {e}");
            c.scheduler.with(|i| i.stopping.remove(&id));
            return;
        }
        if let Err(e) = c
            .store
            .set_job_state(&id, job_state::REMOVED, reason.as_deref())
            .await
        {
            tracing::warn!(job = %id, "recording the job's removal: {e}");
        }
        c.scheduler.with(|i| i.stopping.remove(&id));
        c.scheduler.notify();
    });
    Ok(())
}
