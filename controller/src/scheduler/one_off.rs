//! One-off jobs (`paas run`, `paas exec`'s holder and the cron loop's runs): a job of the
//! app's current release with its own command, placed on the least busy up node, that the
//! scheduler neither counts nor adopts (label `paas.kind=run`).

use std::sync::Arc;

use super::{labels, process_job_spec};
use crate::api_error::ApiError;
use crate::state::{Controller, NODE_TIMEOUT_MS};
use crate::util::{random_hex, unix_ms};

/// Starts a one-off job of `app`'s current release running `command`, on the up,
/// non-draining node with the fewest jobs; returns (job id, node name, node URL) once
/// the process runs. The job is remembered in `c.runs` until it is removed. `kind` names
/// it (`run`, or `cron` for the cron loop's): its id, `DYNO` and type label.
pub async fn start_one_off(
    c: &Arc<Controller>,
    app: &str,
    command: Vec<String>,
    kind: &str,
) -> Result<(String, String, String), ApiError> {
    let Some(row) = c.store.get_app(app).await? else {
        return Err(ApiError::NotFound(format!("no app named {app}")));
    };
    let Some(version) = row.current_release else {
        return Err(ApiError::Conflict(format!(
            "{app} has no release yet: git push it first"
        )));
    };
    let Some(release) = c.store.get_release(app, version).await? else {
        return Err(ApiError::internal(format!(
            "release v{version} of {app} is missing"
        )));
    };
    // The up, non-draining node with the fewest jobs.
    let now = unix_ms();
    let draining = c.store.draining_nodes().await?;
    let live = c
        .heartbeats
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let node = c
        .store
        .list_nodes()
        .await?
        .into_iter()
        .filter(|n| now - n.last_seen_ms <= NODE_TIMEOUT_MS && !draining.contains(&n.name))
        .min_by_key(|n| (live.get(&n.name).map_or(0, |l| l.jobs), n.name.clone()))
        .ok_or_else(|| ApiError::Unavailable("no node is up to run the job".into()))?;

    let id = format!("{app}-{kind}-{}", random_hex(4));
    let mut spec = process_job_spec(&c.settings, &release, kind, 1, &id);
    spec.api_access = c.store.app_api_access(&release.app).await.unwrap_or(false);
    spec.tenant = c.store.app_id(&release.app).await?;
    spec.command = command;
    spec.port = None;
    spec.labels
        .insert(labels::KIND.into(), labels::KIND_RUN.into());
    spec.labels.insert(labels::TYPE.into(), kind.into());
    c.runs
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id.clone(), (app.to_string(), node.url.clone()));
    tracing::info!(job = %id, node = %node.name, %app, "one-off job");
    if let Err(e) = c.agents.start_job(&node.url, &spec).await {
        let _ = c.agents.delete_job(&node.url, &id).await;
        c.runs.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        return Err(ApiError::Unavailable(format!(
            "starting the one-off job failed: {}",
            e.user_message()
        )));
    }
    Ok((id, node.name, node.url))
}
