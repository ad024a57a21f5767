//! What a controller killed mid-push leaves behind, and the test hook that kills it there.
//!
//! [`kill_point`]: with `PAAS_TEST_KILL_AT=<point>` in its environment the controller
//! SIGKILLs itself when a push reaches that point (`receiving`, `building`,
//! `pushing-layer`, `release-phase`, `releasing`, `switching`); without the variable
//! nothing happens, so production never reaches it. The e2e tests (`tests/e2e/tests/
//! crash_points.rs`) use it to check what each point leaves (docs/controller.md, "Crash
//! consistency").
//!
//! [`reap_orphan_jobs`]: a build job or release-command job whose build is no longer
//! running (a restart marked it failed) is stopped and deleted: the task that drove it
//! died with the controller.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::scheduler::labels;
use crate::state::Controller;

/// The environment variable naming the point where the controller kills itself.
pub const KILL_AT_ENV: &str = "PAAS_TEST_KILL_AT";

/// SIGKILLs this process when `PAAS_TEST_KILL_AT` names `point` (a test hook; a no-op
/// without the variable).
pub fn kill_point(point: &str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    let at = AT.get_or_init(|| std::env::var(KILL_AT_ENV).ok().filter(|v| !v.is_empty()));
    if at.as_deref() == Some(point) {
        tracing::warn!("{KILL_AT_ENV}={point}: killing the controller here (a test hook)");
        // SAFETY: kill(2) of our own pid with SIGKILL; nothing runs after it.
        unsafe {
            libc::kill(libc::getpid(), libc::SIGKILL);
        }
    }
}

/// How often the nodes' jobs are checked for leftovers of interrupted builds.
const EVERY: Duration = Duration::from_secs(5);

/// Forever: stops and deletes build and release-command jobs whose build is over.
pub async fn reap_orphan_jobs(c: Arc<Controller>) {
    loop {
        if let Err(e) = reap_once(&c).await {
            tracing::debug!("looking for jobs of interrupted builds: {e}");
        }
        tokio::time::sleep(EVERY).await;
    }
}

async fn reap_once(c: &Controller) -> Result<(), crate::store::StoreError> {
    let now = crate::util::unix_ms();
    for node in c.store.list_nodes().await? {
        if now - node.last_seen_ms > 60_000 {
            continue;
        }
        let Ok(jobs) = c.agents.list_jobs(&node.url).await else {
            continue;
        };
        for job in jobs {
            let Some(build) = job.labels.get(labels::BUILD) else {
                continue;
            };
            let running = match c.store.get_build(build).await? {
                Some(b) => b.status == "building" || b.status == "pending",
                None => false,
            };
            if running {
                continue;
            }
            tracing::info!(job = %job.id, %build, node = %node.name,
                "removing a job of a build that is not running (a restart interrupted it)");
            if let Err(e) = c.agents.stop_job(&node.url, &job.id, 0).await {
                tracing::debug!(job = %job.id, "stopping a leftover job: {e}");
            }
            if let Err(e) = c.agents.delete_job(&node.url, &job.id).await {
                tracing::warn!(job = %job.id, "deleting a leftover job: {e}");
            }
        }
    }
    Ok(())
}
