//! Resource use of running jobs, read from their cgroups through the runtime
//! (`Runtime::stats`, cgroup v1 or v2): for `GET /v1/jobs/{id}/stats` and the heartbeat's
//! `stats`.
//!
//! Reading cgroup files is blocking I/O that can be slow on a loaded host, so it runs on the
//! blocking pool, and the heartbeat never waits for it: [`Sampler`] keeps the last complete
//! sample and starts a new one only when the previous one is done.

use std::sync::Arc;

use paas_api::{JobState, JobStats};
use tokio::task::JoinHandle;

use crate::agent::Agent;
use crate::jobs::{JobError, JobHandle};
use crate::util::now_rfc3339;

/// One job's figures now (blocking: reads cgroup files).
pub fn read(agent: &Agent, job: &JobHandle) -> Result<JobStats, JobError> {
    let s = agent
        .runtime
        .stats(&job.spec.id)
        .map_err(|source| JobError::Runtime {
            what: format!("reading the cgroup stats of job {}", job.spec.id),
            source,
        })?;
    Ok(JobStats {
        job_id: job.spec.id.clone(),
        cpu_usage_usec: s.cpu_usage_ns / 1000,
        memory_bytes: s.memory_bytes,
        memory_limit_bytes: job.spec.memory_bytes,
        pids: s.pids,
        at: now_rfc3339(),
    })
}

/// Every running (`up`) job's figures; a job whose read fails is left out (it may have
/// exited between the listing and the read).
pub fn read_all(agent: &Agent) -> Vec<JobStats> {
    agent
        .jobs
        .all()
        .iter()
        .filter(|j| j.status().state == JobState::Up)
        .filter_map(|j| match read(agent, j) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::debug!(job = %j.spec.id, "stats: {e}");
                None
            }
        })
        .collect()
}

/// `GET /v1/jobs/{id}/stats`: the job must be up.
pub async fn job(agent: &Arc<Agent>, id: &str) -> Result<JobStats, JobError> {
    let job = agent.jobs.get(id)?;
    let state = job.status().state;
    if state != JobState::Up {
        return Err(JobError::NotRunning {
            id: id.to_string(),
            state,
        });
    }
    let agent = agent.clone();
    tokio::task::spawn_blocking(move || read(&agent, &job))
        .await
        .map_err(|e| JobError::Io {
            what: "reading cgroup stats".into(),
            source: std::io::Error::other(e.to_string()),
        })?
}

/// Samples in the background for the heartbeat: [`Sampler::latest`] returns at once with
/// the newest complete sample (empty before the first one is done).
#[derive(Debug, Default)]
pub struct Sampler {
    last: Vec<JobStats>,
    pending: Option<JoinHandle<Vec<JobStats>>>,
}

impl Sampler {
    /// Collects a finished sample, starts the next one if none is running, and returns
    /// the newest complete sample. Never waits for cgroup reads.
    pub async fn latest(&mut self, agent: &Arc<Agent>) -> Vec<JobStats> {
        if let Some(task) = self.pending.take_if(|t| t.is_finished()) {
            if let Ok(sample) = task.await {
                self.last = sample;
            }
        }
        if self.pending.is_none() {
            let agent = agent.clone();
            self.pending = Some(tokio::task::spawn_blocking(move || read_all(&agent)));
        }
        self.last.clone()
    }

    /// Waits for the running sample (tests, and the first heartbeat), at most `limit`.
    pub async fn settle(&mut self, limit: std::time::Duration) {
        if let Some(task) = self.pending.as_mut() {
            if let Ok(Ok(sample)) = tokio::time::timeout(limit, task).await {
                self.last = sample;
                self.pending = None;
            }
        }
    }
}
