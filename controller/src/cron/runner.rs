//! The leader's cron loop, and the listing `GET /v1/apps/{app}/cron` answers
//! (`http::cron`).
//!
//! Every [`TICK`] the loop reads the app.json of each app's current release (kept with the
//! release, migration 0020) and, for each `cron` entry whose time has come, starts the
//! command as a one-off job of that release (as `paas run` does: the release's config,
//! `DYNO=cron.1`, the app's user namespace and tenant walls). When the job ends its output's
//! last lines are kept as a removed `cron` job, so `paas logs` shows them as `app[cron]`.
//! A run that is still going when its next time comes is not started twice. Next times are
//! computed from the loop's clock (UTC) and kept in memory: a controller that restarts or
//! a new leader starts counting afresh, so a run due during the switch is skipped, not
//! repeated.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use paas_api::JobState;
use serde::Serialize;

use super::schedule::{rfc3339, Schedule};
use crate::builder::app_json::{self, CronEntry};
use crate::state::Controller;
use crate::store::{job_state, JobRow};
use crate::util::now_rfc3339;

/// How often the loop looks at the clock.
const TICK: Duration = Duration::from_secs(10);
/// The longest a cron job may run before it is stopped.
const MAX_RUN: Duration = Duration::from_secs(60 * 60);
/// Lines of a finished cron job's output kept for `paas logs`.
const KEPT_LINES: usize = 50;

/// One entry as `GET /v1/apps/{app}/cron` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct CronListing {
    pub command: String,
    pub schedule: String,
    /// RFC 3339, UTC; null when the schedule never comes (February 30th).
    pub next_run: Option<String>,
}

pub(crate) fn now_secs() -> i64 {
    crate::util::unix_ms().div_euclid(1000)
}

fn entries(text: &str) -> Vec<CronEntry> {
    app_json::parse(text).map(|a| a.cron).unwrap_or_default()
}

/// Runs the loop forever (the elected leader runs it).
pub async fn run(c: Arc<Controller>) {
    let running: Arc<Mutex<HashSet<(String, usize)>>> = Arc::default();
    // (app, index, command, schedule) → next run (epoch seconds).
    let mut next: HashMap<(String, usize, String, String), i64> = HashMap::new();
    loop {
        let now = now_secs();
        let apps = match c.store.current_app_jsons().await {
            Ok(apps) => apps,
            Err(e) => {
                tracing::warn!("cron: reading the apps' app.json: {e}");
                Vec::new()
            }
        };
        let mut seen = HashSet::new();
        for (app, text) in apps {
            for (i, entry) in entries(&text).into_iter().enumerate() {
                let Ok(schedule) = Schedule::parse(&entry.schedule) else {
                    continue;
                };
                let key = (
                    app.clone(),
                    i,
                    entry.command.clone(),
                    entry.schedule.clone(),
                );
                seen.insert(key.clone());
                let at = *next
                    .entry(key.clone())
                    .or_insert_with(|| schedule.next_after(now).unwrap_or(i64::MAX));
                if at > now {
                    continue;
                }
                next.insert(key, schedule.next_after(now).unwrap_or(i64::MAX));
                let fresh = running
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((app.clone(), i));
                if !fresh {
                    tracing::info!(%app, command = %entry.command, "cron: the previous run still goes; skipped");
                    continue;
                }
                let (c, running, app) = (Arc::clone(&c), Arc::clone(&running), app.clone());
                tokio::spawn(async move {
                    run_once(&c, &app, &entry).await;
                    running
                        .lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .remove(&(app, i));
                });
            }
        }
        next.retain(|k, _| seen.contains(k));
        tokio::time::sleep(TICK).await;
    }
}

/// Runs one entry to its end and keeps its output.
async fn run_once(c: &Arc<Controller>, app: &str, entry: &CronEntry) {
    let command = crate::scheduler::command::process_argv(&entry.command);
    tracing::info!(%app, command = %entry.command, schedule = %entry.schedule, "cron: starting");
    let (id, node, url) =
        match crate::scheduler::one_off::start_one_off(c, app, command, "cron").await {
            Ok(started) => started,
            Err(e) => {
                tracing::warn!(%app, command = %entry.command, "cron: could not start: {e:?}");
                return;
            }
        };
    let created = now_rfc3339();
    let deadline = tokio::time::Instant::now() + MAX_RUN;
    let mut reason = None;
    while tokio::time::Instant::now() < deadline {
        match c.agents.job(&url, &id).await {
            Ok(s) if matches!(s.state, JobState::Down | JobState::Crashed) => {
                reason = s.exit.map(|e| e.reason);
                break;
            }
            Ok(_) => {}
            Err(e) => {
                tracing::warn!(job = %id, "cron: lost the job: {e}");
                break;
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    if let Ok(status) = c.agents.stop_job(&url, &id, 5).await {
        reason = reason.or(status.exit.map(|e| e.reason));
    }
    let log = c.agents.logs(&url, &id).await.unwrap_or_default();
    if let Err(e) = c.agents.delete_job(&url, &id).await {
        tracing::warn!(job = %id, "cron: deleting the job: {e}");
    }
    c.runs.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
    tracing::info!(%app, job = %id, reason = ?reason, "cron: finished");
    let release = c
        .store
        .get_app(app)
        .await
        .ok()
        .flatten()
        .and_then(|a| a.current_release)
        .unwrap_or(0);
    let row = JobRow {
        id: id.clone(),
        app: app.to_string(),
        release,
        process_type: "cron".into(),
        node,
        state: job_state::REMOVED.into(),
        addr: None,
        exit_reason: reason,
        created_at: created,
        updated_at: now_rfc3339(),
    };
    let kept = crate::store::last_lines(&log, KEPT_LINES);
    if let Err(e) = async {
        c.store.insert_job(&row).await?;
        c.store.set_job_log(&id, &kept).await
    }
    .await
    {
        tracing::warn!(job = %id, "cron: keeping the job's output: {e}");
    }
}

/// The listing of an app.json's cron entries at `now`.
pub fn listing(app_json: Option<&str>, now: i64) -> Vec<CronListing> {
    app_json
        .map(entries)
        .unwrap_or_default()
        .into_iter()
        .map(|e| CronListing {
            next_run: Schedule::parse(&e.schedule)
                .ok()
                .and_then(|s| s.next_after(now))
                .map(rfc3339),
            command: e.command,
            schedule: e.schedule,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listing_says_the_next_run() {
        let text = r#"{"cron": [{"command": "./report", "schedule": "0 * * * *"},
                                {"command": "./never", "schedule": "0 0 30 2 *"}]}"#;
        let l = listing(Some(text), 1_796_631_200);
        assert_eq!(l.len(), 2);
        assert_eq!(l[0].next_run.as_deref(), Some("2026-12-07T09:00:00Z"));
        assert_eq!(l[1].next_run, None);
        assert!(listing(None, 0).is_empty());
    }
}
