//! What a controller killed mid-push leaves behind, and the test hook that kills it there.
//!
//! [`kill_point`]: with `PAAS_TEST_KILL_AT=<point>` in its environment the controller
//! SIGKILLs itself when a push reaches that point (`receiving`, `building`,
//! `pushing-layer`, `release-phase`, `releasing`, `switching`, `draining`);
//! `agent:<point>` SIGKILLs its local agent there instead (and goes on), `both:<point>`
//! the agent and then itself. Without the variable nothing happens, so production never
//! reaches it. The e2e tests (`tests/e2e/tests/
//! crash_points.rs`) use it to check what each point leaves (docs/controller.md, "Crash
//! consistency").
//!
//! [`reap_orphan_jobs`]: a build job or release-command job whose build is no longer
//! running (a restart marked it failed) is stopped and deleted: the task that drove it
//! died with the controller.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use crate::scheduler::labels;
use crate::state::Controller;

/// The environment variable naming the point (and the victim) of the test kill.
pub const KILL_AT_ENV: &str = "PAAS_TEST_KILL_AT";

/// The local agent's pid file, for kills of the agent (set by the standalone start-up).
static AGENT_PID_FILE: OnceLock<PathBuf> = OnceLock::new();

/// Tells [`kill_point`] where the local agent writes its pid.
pub fn set_agent_pid_file(path: PathBuf) {
    let _ = AGENT_PID_FILE.set(path);
}

/// Who a kill point kills.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Victim {
    Controller,
    Agent,
    Both,
}

/// `PAAS_TEST_KILL_AT`'s value: `<point>` (the controller), `agent:<point>` or
/// `both:<point>`.
fn parse_kill_at(v: &str) -> (Victim, &str) {
    match v.split_once(':') {
        Some(("agent", point)) => (Victim::Agent, point),
        Some(("both", point)) => (Victim::Both, point),
        _ => (Victim::Controller, v),
    }
}

/// SIGKILLs the local agent (read from its pid file); false when there is none to kill.
fn kill_agent() -> bool {
    let Some(pid) = AGENT_PID_FILE
        .get()
        .and_then(|p| std::fs::read_to_string(p).ok())
        .and_then(|t| t.trim().parse::<i32>().ok())
        .filter(|p| *p > 1)
    else {
        tracing::warn!("{KILL_AT_ENV}: no local agent pid to kill");
        return false;
    };
    tracing::warn!(
        pid,
        "{KILL_AT_ENV}: killing the local agent here (a test hook)"
    );
    // SAFETY: kill(2) with SIGKILL of the pid our own agent wrote; a test hook only.
    unsafe { libc::kill(pid, libc::SIGKILL) == 0 }
}

/// SIGKILLs the controller, its local agent or both when `PAAS_TEST_KILL_AT` names
/// `point` (a test hook; a no-op without the variable). The agent is killed once per
/// controller process (its restart would reach the point again).
pub fn kill_point(point: &str) {
    static AT: OnceLock<Option<String>> = OnceLock::new();
    static AGENT_KILLED: AtomicBool = AtomicBool::new(false);
    let at = AT.get_or_init(|| std::env::var(KILL_AT_ENV).ok().filter(|v| !v.is_empty()));
    let Some((victim, at)) = at.as_deref().map(parse_kill_at) else {
        return;
    };
    if at != point {
        return;
    }
    if matches!(victim, Victim::Agent | Victim::Both) && !AGENT_KILLED.swap(true, Ordering::SeqCst)
    {
        kill_agent();
    }
    if matches!(victim, Victim::Controller | Victim::Both) {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kill_at_names_the_victim() {
        assert_eq!(parse_kill_at("building"), (Victim::Controller, "building"));
        assert_eq!(parse_kill_at("agent:draining"), (Victim::Agent, "draining"));
        assert_eq!(parse_kill_at("both:switching"), (Victim::Both, "switching"));
    }
}
