//! Heroku's release phase: when the Procfile declares a `release` process type, its command
//! runs once as a one-off job on the new release's image (with the release's config,
//! `PORT` and `DYNO=release.1`) BEFORE the release is stored and goes live. Its output goes
//! to the `git push`; a non-zero exit fails the deploy and the running release keeps
//! serving.
//!
//! app.json's scripts (`scripts.dokku.predeploy`, `scripts.dokku.postdeploy`,
//! `scripts.postdeploy`) run the same way through [`run_script`], as `predeploy.1` or
//! `postdeploy.1`.

use std::time::Duration;

use futures_util::StreamExt;
use paas_api::JobState;

use super::{BuildError, Output};
use crate::scheduler::{labels, process_job_spec};
use crate::state::Controller;
use crate::store::ReleaseRow;

/// The release phase's process type.
pub const RELEASE_TYPE: &str = "release";
/// How long the release command may run.
const RELEASE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// Runs `release`'s `release` command on the node at `node_url`; Ok when it exits 0.
pub async fn run(
    c: &Controller,
    node_url: &str,
    release: &ReleaseRow,
    build: &str,
    out: &mut Output,
) -> Result<(), BuildError> {
    let Some(command) = release.process_types.get(RELEASE_TYPE) else {
        return Ok(());
    };
    out.line(format!("-----> Running release command: {command}"))
        .await;
    match one_off(c, node_url, release, build, RELEASE_TYPE, None, out).await? {
        Ok(()) => {
            out.line("       Release command succeeded").await;
            Ok(())
        }
        Err(reason) => Err(BuildError::ReleasePhase(reason)),
    }
}

/// Runs an app.json script (`command`) as a one-off job of `release` named `kind.1`; the
/// outer error is paas's, the inner one the script's failure (its exit reason).
pub async fn run_script(
    c: &Controller,
    node_url: &str,
    release: &ReleaseRow,
    build: &str,
    kind: &str,
    command: &str,
    out: &mut Output,
) -> Result<(), String> {
    out.line(format!("-----> Running {kind} script: {command}"))
        .await;
    match one_off(c, node_url, release, build, kind, Some(command), out).await {
        Ok(Ok(())) => {
            out.line(format!("       The {kind} script succeeded"))
                .await;
            Ok(())
        }
        Ok(Err(reason)) => Err(reason),
        Err(e) => Err(e.to_string()),
    }
}

/// Runs one process of `release` (the process type `kind`'s command, or `command`) to its
/// end, its output to the push. The job is labelled with its `build`, never a release
/// number: before the release phase the number is not taken yet, and a job left by a
/// killed controller is removed once that build is over (`leftovers::reap_orphan_jobs`).
async fn one_off(
    c: &Controller,
    node_url: &str,
    release: &ReleaseRow,
    build: &str,
    kind: &str,
    command: Option<&str>,
    out: &mut Output,
) -> Result<Result<(), String>, BuildError> {
    let id = format!("{}-{kind}-{}", release.app, crate::util::random_hex(4));
    let mut spec = process_job_spec(&c.settings, release, kind, 1, &id);
    if let Some(command) = command {
        spec.command = crate::scheduler::command::process_argv(command);
    }
    spec.api_access = c.store.app_api_access(&release.app).await.unwrap_or(false);
    spec.tenant = c.store.app_id(&release.app).await?;
    spec.port = None;
    spec.labels
        .insert(labels::KIND.into(), labels::KIND_RUN.into());
    spec.labels.remove(labels::RELEASE);
    spec.labels.insert(labels::BUILD.into(), build.into());
    c.agents
        .start_job(node_url, &spec)
        .await
        .map_err(|e| BuildError::Start(format!("the {kind} command: {}", e.user_message())))?;
    if kind == RELEASE_TYPE {
        super::leftovers::kill_point("release-phase");
    }
    let result = tokio::time::timeout(RELEASE_TIMEOUT, follow(c, node_url, &id, out)).await;
    if let Err(e) = c.agents.stop_job(node_url, &id, 5).await {
        tracing::debug!(job = %id, "stopping the {kind} job: {e}");
    }
    let status = c.agents.job(node_url, &id).await;
    if let Err(e) = c.agents.delete_job(node_url, &id).await {
        tracing::warn!(job = %id, "deleting the {kind} job: {e}");
    }
    if result.is_err() {
        return Ok(Err(format!(
            "did not finish within {} minutes and was stopped",
            RELEASE_TIMEOUT.as_secs() / 60
        )));
    }
    result.unwrap_or(Ok(()))?;
    let status = status.map_err(|e| BuildError::Lost(e.user_message()))?;
    let exit = status.exit.unwrap_or_default();
    if status.state == JobState::Down && exit.code == Some(0) {
        return Ok(Ok(()));
    }
    Ok(Err(if exit.reason.is_empty() {
        "no exit status".to_string()
    } else {
        exit.reason
    }))
}

/// Streams the job's output to the push until the job ends.
async fn follow(
    c: &Controller,
    node_url: &str,
    id: &str,
    out: &mut Output,
) -> Result<(), BuildError> {
    if let Ok(resp) = c.agents.follow_logs(node_url, id).await {
        let mut stream = resp.bytes_stream();
        let mut pending: Vec<u8> = Vec::new();
        while let Some(Ok(bytes)) = stream.next().await {
            pending.extend_from_slice(&bytes);
            while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = pending.drain(..=pos).collect();
                let text = String::from_utf8_lossy(&line[..line.len() - 1]);
                out.line(format!("       {}", text.trim_end_matches('\r')))
                    .await;
            }
        }
        if !pending.is_empty() {
            out.line(format!(
                "       {}",
                String::from_utf8_lossy(&pending).trim_end()
            ))
            .await;
        }
    }
    loop {
        let status = c
            .agents
            .job(node_url, id)
            .await
            .map_err(|e| BuildError::Lost(e.user_message()))?;
        if matches!(status.state, JobState::Down | JobState::Crashed) {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}
