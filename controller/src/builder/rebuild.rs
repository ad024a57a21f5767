//! Rebuilding an app's last pushed commit without a push (`paas builds:create`, as
//! Heroku's `builds:create` and Dokku's `ps:rebuild`): the source is `git archive` of
//! that commit from the app's repository on the controller, and the build runs as a
//! pushed one does (same lock, pipeline, release and failure rules) but detached from the
//! caller, who follows its output at `/v1/apps/{app}/builds/{id}/log?follow=true`.
//! `no_cache` skips the Dockerfile layer cache and the buildpack cache (`/cache` starts
//! empty; the kept cache is left as it was).

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{live, run, BuildInput, Output};
use crate::state::Controller;
use crate::store::{BuildRow, StoreError};
use crate::util::random_hex;

/// Why a rebuild did not start.
#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error(
        "{0} has nothing pushed yet: `git push` it first (a rebuild builds the last pushed commit)"
    )]
    NothingPushed(String),
    #[error("the last pushed commit {rev} of {app} is not in its repository any more ({why}): push it again")]
    Source {
        app: String,
        rev: String,
        why: String,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The commit the newest build with a source built (the last push).
async fn last_pushed(c: &Controller, app: &str) -> Result<Option<String>, StoreError> {
    Ok(c.store
        .list_builds(app)
        .await?
        .into_iter()
        .find_map(|b| b.source_version)
        .filter(|r| (r.len() == 40 || r.len() == 64) && r.bytes().all(|b| b.is_ascii_hexdigit())))
}

/// Starts a build of `app`'s last pushed commit; answers its row at once (the build runs
/// on, and its output is live under its id).
pub async fn start(
    c: &Arc<Controller>,
    app: &str,
    pusher: String,
    no_cache: bool,
) -> Result<BuildRow, RebuildError> {
    let Some(rev) = last_pushed(c, app).await? else {
        return Err(RebuildError::NothingPushed(app.to_string()));
    };
    let id = random_hex(8);
    let dir = c.settings.build_dir(&id);
    let source = async {
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| e.to_string())?;
        let out = tokio::process::Command::new("git")
            .arg("--git-dir")
            .arg(c.settings.repo_path(app))
            .args(["archive", "--format=tar", "-o"])
            .arg(dir.join("source.tar"))
            .arg(&rev)
            .stdin(std::process::Stdio::null())
            .output()
            .await
            .map_err(|e| format!("running git archive: {e}"))?;
        if out.status.success() {
            Ok(())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
        }
    };
    if let Err(why) = source.await {
        let _ = tokio::fs::remove_dir_all(&dir).await;
        return Err(RebuildError::Source {
            app: app.to_string(),
            rev,
            why,
        });
    }
    let row = match c.store.create_build(&id, app, Some(&rev)).await {
        Ok(row) => row,
        Err(e) => {
            let _ = tokio::fs::remove_dir_all(&dir).await;
            return Err(e.into());
        }
    };
    tracing::info!(%app, build = %id, %rev, no_cache, "rebuild started");
    // Live before the answer, so a follow right after it sees the output from the start.
    live::begin(&id);
    let (tx, mut rx) = mpsc::channel::<Bytes>(256);
    // Nobody holds the stream: drained here, so the build never sees its client go.
    tokio::spawn(async move { while rx.recv().await.is_some() {} });
    let input = BuildInput {
        id,
        app: app.to_string(),
        rev,
        stack: String::new(),
        pusher: Some(pusher),
        no_cache,
    };
    tokio::spawn(run(Arc::clone(c), input, Output::new(tx)));
    Ok(row)
}
