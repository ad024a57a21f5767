//! What the scheduler loop sees each pass: the store's job rows merged with the agents'
//! reports ([`observe`]: rows updated or dropped, labelled jobs adopted), health checks of
//! up web jobs ([`check_health`]), and the route table built from what is healthy
//! ([`push_routes`]). The loop that acts on it is [`super::runner`].

use std::collections::{HashMap, HashSet};

use paas_api::{JobState, JobStatus};

use super::labels;
use super::{health, ObservedJob, Phase};
use crate::router::{Backend, Route};
use crate::state::Controller;
use crate::store::{job_state, JobRow, StoreError};
use crate::util::now_rfc3339;

/// A job as this pass sees it.
pub(super) struct Seen {
    pub(super) job: ObservedJob,
    pub(super) addr: Option<String>,
    pub(super) crashed: bool,
    /// The exit reason of a finished job.
    pub(super) reason: Option<String>,
}

fn phase_of(state: JobState) -> Phase {
    match state {
        JobState::Starting => Phase::Starting,
        JobState::Up => Phase::Up,
        JobState::Stopping => Phase::Stopping,
        JobState::Down | JobState::Crashed => Phase::Finished,
    }
}

pub(super) fn state_name(state: JobState) -> &'static str {
    match state {
        JobState::Starting => job_state::STARTING,
        JobState::Up => job_state::UP,
        JobState::Stopping => job_state::STOPPING,
        JobState::Down => job_state::DOWN,
        JobState::Crashed => job_state::CRASHED,
    }
}

/// Merges the store's job rows with the agents' reports, updating rows that changed,
/// dropping rows their (answering) node no longer has, and adopting labelled jobs the store
/// does not know.
pub(super) async fn observe(
    c: &Controller,
    reports: &HashMap<String, Vec<JobStatus>>,
    silent: &HashSet<String>,
    starting: &HashSet<String>,
    stopping: &HashSet<String>,
    ids: &HashMap<String, u32>,
) -> Result<Vec<Seen>, StoreError> {
    let rows = c.store.active_jobs().await?;
    let known: HashSet<String> = rows.iter().map(|r| r.id.clone()).collect();
    let mut seen = Vec::new();
    for row in rows {
        let observed = |phase, healthy| ObservedJob {
            id: row.id.clone(),
            app: row.app.clone(),
            release: row.release,
            process_type: row.process_type.clone(),
            node: row.node.clone(),
            phase,
            healthy,
        };
        let Some(report) = reports.get(&row.node) else {
            // A silent node's jobs count as last recorded; a down node's are not known.
            if let Some(phase) = silent
                .contains(&row.node)
                .then(|| recorded_phase(&row.state))
                .flatten()
            {
                seen.push(Seen {
                    job: observed(phase, false),
                    addr: row.addr.clone(),
                    crashed: false,
                    reason: None,
                });
            }
            continue;
        };
        match report.iter().find(|s| s.id == row.id) {
            Some(status) => {
                let being_stopped = stopping.contains(&row.id);
                let state = if being_stopped {
                    job_state::STOPPING
                } else {
                    state_name(status.state)
                };
                if state != row.state || status.addr != row.addr {
                    let reason = status.exit.as_ref().map(|e| e.reason.as_str());
                    c.store
                        .update_job(&row.id, state, status.addr.as_deref(), reason)
                        .await?;
                }
                let phase = if being_stopped {
                    Phase::Stopping
                } else {
                    phase_of(status.state)
                };
                seen.push(Seen {
                    job: observed(phase, false),
                    addr: status.addr.clone(),
                    crashed: status.state == JobState::Crashed,
                    reason: status.exit.as_ref().map(|e| e.reason.clone()),
                });
            }
            None if starting.contains(&row.id) => seen.push(Seen {
                job: observed(Phase::Starting, false),
                addr: None,
                crashed: false,
                reason: None,
            }),
            None if stopping.contains(&row.id) => {}
            None => {
                tracing::info!(job = %row.id, node = %row.node, "the node no longer has this job");
                c.store
                    .set_job_state(
                        &row.id,
                        job_state::REMOVED,
                        Some("its node no longer has this job"),
                    )
                    .await?;
            }
        }
    }
    for (node, statuses) in reports {
        for status in statuses.iter().filter(|s| !known.contains(&s.id)) {
            let Some(mut job) = adoptable(node, status) else {
                continue;
            };
            // Only into the app that has the job's name AND number; anything else (a
            // destroyed app's job, or one of an app renamed since) is filed under a name
            // no app has, so the plan stops it.
            let number = status
                .labels
                .get(labels::APP_ID)
                .and_then(|n| n.parse::<u32>().ok());
            if number.is_none() || ids.get(&job.app) != number.as_ref() {
                tracing::warn!(job = %job.id, app = %job.app, ?number,
                    "a job of an app that is gone (or another app now): it is stopped");
                job.app = crate::store::destroyed_name(&job.app, number.unwrap_or(0));
            }
            tracing::info!(job = %job.id, %node, "adopting a job the store did not list");
            let now = now_rfc3339();
            c.store
                .upsert_job(&JobRow {
                    id: job.id.clone(),
                    app: job.app.clone(),
                    release: job.release,
                    process_type: job.process_type.clone(),
                    node: node.clone(),
                    state: state_name(status.state).to_string(),
                    addr: status.addr.clone(),
                    exit_reason: status.exit.as_ref().map(|e| e.reason.clone()),
                    created_at: now.clone(),
                    updated_at: now,
                })
                .await?;
            seen.push(Seen {
                job,
                addr: status.addr.clone(),
                crashed: status.state == JobState::Crashed,
                reason: status.exit.as_ref().map(|e| e.reason.clone()),
            });
        }
    }
    Ok(seen)
}

/// The phase a stored state stands for while the job's agent is silent (finished jobs are
/// left for when it answers again).
pub(super) fn recorded_phase(state: &str) -> Option<Phase> {
    match state {
        job_state::PENDING | job_state::STARTING => Some(Phase::Starting),
        job_state::UP => Some(Phase::Up),
        job_state::STOPPING => Some(Phase::Stopping),
        _ => None,
    }
}

pub(super) fn node_last_seen(rows: &[crate::store::NodeRow], name: &str) -> i64 {
    rows.iter()
        .find(|n| n.name == name)
        .map_or(0, |n| n.last_seen_ms)
}

/// An app job (by its labels) that the store does not list.
fn adoptable(node: &str, status: &JobStatus) -> Option<ObservedJob> {
    let l = &status.labels;
    if l.get(labels::KIND).map(String::as_str) != Some(labels::KIND_PROCESS) {
        return None;
    }
    Some(ObservedJob {
        id: status.id.clone(),
        app: l.get(labels::APP)?.clone(),
        release: l.get(labels::RELEASE)?.parse().ok()?,
        process_type: l.get(labels::TYPE)?.clone(),
        node: node.to_string(),
        phase: phase_of(status.state),
        healthy: false,
    })
}

/// Health-checks every up web job (see [`super::health`]); other up jobs count as healthy
/// while they run. Returns (app, release) → why, for releases whose new web jobs failed all
/// their startup health checks.
pub(super) async fn check_health(
    c: &Controller,
    health: &mut health::HealthState,
    seen: &mut [Seen],
) -> HashMap<(String, u32), String> {
    let targets: Vec<health::Target> = seen
        .iter()
        .filter(|s| health::is_checked(&s.job.process_type, s.job.phase))
        .map(|s| health::Target {
            id: &s.job.id,
            app: &s.job.app,
            release: s.job.release,
            addr: s.addr.as_deref(),
        })
        .collect();
    let results = health.check(c, &targets).await;
    let failed = health.failed(c, &targets).await;
    for s in seen.iter_mut() {
        if s.job.phase != Phase::Up {
            continue;
        }
        s.job.healthy = if s.job.process_type == "web" {
            results.get(&s.job.id).copied().unwrap_or(false)
        } else {
            true
        };
    }
    failed
}

/// Replaces the router's table: every app (`<app>.<domain>` and its custom domains) → its
/// healthy web jobs of the current release, or, while there are none, the healthy web jobs
/// of older releases. Returns app → job ids.
pub(super) async fn push_routes(
    c: &Controller,
    seen: &[Seen],
    apps: Vec<crate::store::AppRow>,
) -> Result<HashMap<String, Vec<String>>, StoreError> {
    let mut custom: HashMap<String, Vec<String>> = HashMap::new();
    for d in c.store.domains(None).await? {
        custom.entry(d.app).or_default().push(d.hostname);
    }
    let mut routes = Vec::with_capacity(apps.len());
    let mut routed = HashMap::new();
    for app in apps {
        let mut ready: Vec<&Seen> = seen
            .iter()
            .filter(|s| s.job.app == app.name && s.job.process_type == "web")
            .filter(|s| s.job.ready() && s.addr.is_some())
            .collect();
        let current: Vec<&Seen> = ready
            .iter()
            .copied()
            .filter(|s| Some(s.job.release) == app.current_release)
            .collect();
        if !current.is_empty() {
            ready = current;
        }
        ready.sort_by(|a, b| {
            b.job
                .release
                .cmp(&a.job.release)
                .then(a.job.id.cmp(&b.job.id))
        });
        let backends: Vec<Backend> = ready
            .iter()
            .map(|s| Backend {
                addr: s.addr.clone().unwrap_or_default(),
                job_id: s.job.id.clone(),
            })
            .collect();
        routed.insert(
            app.name.clone(),
            backends.iter().map(|b| b.job_id.clone()).collect(),
        );
        let mut hosts = vec![c.settings.app_host(&app.name)];
        hosts.extend(custom.remove(&app.name).unwrap_or_default());
        routes.push(Route {
            hosts,
            app: app.name,
            backends,
        });
    }
    // Saved for a restarted or separate router, only when it changed (no write per pass).
    if c.routes.routes() != routes {
        crate::routing::save_routes(&c.store, &routes).await;
    }
    c.routes.replace(routes);
    Ok(routed)
}
