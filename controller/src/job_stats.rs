//! The last CPU and memory samples of every running job, kept in memory from the nodes'
//! heartbeats ([`paas_api::NodeHeartbeat::stats`]) for the dashboard's charts. Nothing is
//! stored: after a controller restart the charts fill up again within a minute or two.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use paas_api::JobStats;

/// Samples kept per job (at one heartbeat every few seconds, a few minutes' worth).
pub const SAMPLES: usize = 60;

/// One sample of a job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When the controller received it, unix ms.
    pub at_ms: i64,
    pub cpu_usage_usec: u64,
    pub memory_bytes: u64,
}

#[derive(Debug, Default)]
struct Inner {
    /// Job id → its samples, oldest first.
    jobs: HashMap<String, VecDeque<Sample>>,
    /// Node → the jobs its last heartbeat reported (to forget jobs that went away).
    nodes: HashMap<String, Vec<String>>,
}

/// Per-job sample rings, shared by the heartbeat handler and the dashboard.
#[derive(Debug, Default)]
pub struct JobStatsStore {
    inner: Mutex<Inner>,
}

impl JobStatsStore {
    /// Records one heartbeat's stats from `node`, received at `at_ms`; jobs of that node it
    /// no longer reports are forgotten.
    pub fn record(&self, node: &str, stats: &[JobStats], at_ms: i64) {
        let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        let ids: Vec<String> = stats.iter().map(|s| s.job_id.clone()).collect();
        if let Some(old) = inner.nodes.insert(node.to_string(), ids.clone()) {
            for gone in old.iter().filter(|id| !ids.contains(id)) {
                inner.jobs.remove(gone);
            }
        }
        for s in stats {
            let ring = inner.jobs.entry(s.job_id.clone()).or_default();
            if ring.len() == SAMPLES {
                ring.pop_front();
            }
            ring.push_back(Sample {
                at_ms,
                cpu_usage_usec: s.cpu_usage_usec,
                memory_bytes: s.memory_bytes,
            });
        }
    }

    /// The samples of one job, oldest first (empty when none).
    pub fn samples(&self, job_id: &str) -> Vec<Sample> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .jobs
            .get(job_id)
            .map(|r| r.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The memory a job uses now (its latest sample).
    pub fn latest_memory(&self, job_id: &str) -> Option<u64> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .jobs
            .get(job_id)
            .and_then(|r| r.back())
            .map(|s| s.memory_bytes)
    }
}

/// CPU use between consecutive samples, percent of one core; the first sample has none,
/// so the result is one shorter than `samples` (with the later sample's time and memory).
pub fn cpu_percent(samples: &[Sample]) -> Vec<(i64, f64, u64)> {
    samples
        .windows(2)
        .filter_map(|w| {
            let dt_ms = w[1].at_ms - w[0].at_ms;
            if dt_ms <= 0 {
                return None;
            }
            let used = w[1].cpu_usage_usec.saturating_sub(w[0].cpu_usage_usec) as f64;
            Some((
                w[1].at_ms,
                used / (dt_ms as f64 * 1000.0) * 100.0,
                w[1].memory_bytes,
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(id: &str, cpu: u64, mem: u64) -> JobStats {
        JobStats {
            job_id: id.into(),
            cpu_usage_usec: cpu,
            memory_bytes: mem,
            memory_limit_bytes: None,
            pids: 1,
            at: "2026-01-01T00:00:00Z".into(),
        }
    }

    #[test]
    fn keeps_the_last_samples_and_forgets_gone_jobs() {
        let s = JobStatsStore::default();
        for i in 0..(SAMPLES as u64 + 5) {
            s.record(
                "n1",
                &[stat("a", i * 1000, 10), stat("b", 0, 20)],
                i as i64 * 1000,
            );
        }
        assert_eq!(s.samples("a").len(), SAMPLES);
        assert_eq!(s.samples("a")[0].cpu_usage_usec, 5000);
        assert_eq!(s.latest_memory("b"), Some(20));
        s.record("n1", &[stat("a", 0, 10)], 99_000);
        assert!(s.samples("b").is_empty(), "b is no longer on n1");
        s.record("n2", &[stat("c", 0, 1)], 99_000);
        assert_eq!(
            s.samples("a").len(),
            SAMPLES,
            "another node leaves n1's jobs alone"
        );
    }

    #[test]
    fn cpu_percent_is_the_rate_between_samples() {
        let samples = [
            Sample {
                at_ms: 0,
                cpu_usage_usec: 0,
                memory_bytes: 1,
            },
            Sample {
                at_ms: 2000,
                cpu_usage_usec: 1_000_000,
                memory_bytes: 2,
            },
            Sample {
                at_ms: 2000,
                cpu_usage_usec: 1_000_000,
                memory_bytes: 2,
            },
        ];
        assert_eq!(cpu_percent(&samples), vec![(2000, 50.0, 2)]);
    }
}
