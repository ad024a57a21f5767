//! How a release's deploy went, as the scheduler sees it (issue 14: a release whose jobs
//! could not start was listed `succeeded`). Every pass the leader looks at each app's
//! current release and records in the store (`release_status`, migration 0009):
//!
//! * `succeeded` once it serves: a web job of it is routed (or, without a running web
//!   process type, a job of it runs healthy);
//! * `failed`, with the reason, when its web jobs failed all the startup tries of the
//!   app.json health check, or a process type of it crashed (or could not start)
//!   [`super::restart::CRASH_LOOP`] times in a row;
//! * nothing while neither is true (the record stays `pending`).
//!
//! A `failed` release that serves later (after a crash-loop delay, say) turns `succeeded`;
//! a `succeeded` one is never turned `failed` (a later crash is the app's, not its
//! deploy's: the app's status says `crashed`). [`decide`] is a pure function of the pass's
//! snapshot and crash counts; [`Recorder`] writes only what changed.

use std::collections::HashMap;

use super::restart::CRASH_LOOP;
use super::Snapshot;
use crate::state::Controller;
use crate::store::release_status::{FAILED, SUCCEEDED};
use crate::store::StoreError;

/// One process type's crash streak in this pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Crash<'a> {
    pub process_type: &'a str,
    pub count: u32,
    /// The last crash's exit reason (`exited 127`, `failed to start: …`).
    pub reason: Option<&'a str>,
}

/// What a pass concludes about a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed(String),
}

impl Outcome {
    fn status(&self) -> &'static str {
        match self {
            Outcome::Succeeded => SUCCEEDED,
            Outcome::Failed(_) => FAILED,
        }
    }

    fn reason(&self) -> Option<&str> {
        match self {
            Outcome::Succeeded => None,
            Outcome::Failed(why) => Some(why),
        }
    }
}

/// The outcome of release `version` of `app` so far, if there is one. `has_web`: the
/// release runs a web process (then serving means routed).
pub fn decide(
    app: &str,
    version: u32,
    has_web: bool,
    snap: &Snapshot,
    crashes: &[Crash<'_>],
) -> Option<Outcome> {
    let of_release = |id: &String| {
        snap.jobs
            .iter()
            .any(|j| &j.id == id && j.app == app && j.release == version)
    };
    let serving = if has_web {
        snap.routed
            .get(app)
            .is_some_and(|ids| ids.iter().any(of_release))
    } else {
        snap.jobs
            .iter()
            .any(|j| j.app == app && j.release == version && j.healthy)
    };
    if serving {
        return Some(Outcome::Succeeded);
    }
    if let Some(why) = snap.failed_checks.get(&(app.to_string(), version)) {
        return Some(Outcome::Failed(why.clone()));
    }
    let worst = crashes.iter().max_by_key(|c| c.count)?;
    if worst.count < CRASH_LOOP {
        return None;
    }
    Some(Outcome::Failed(format!(
        "its {} process crashed {} times in a row (last: {}); see `paas logs`",
        worst.process_type,
        worst.count,
        worst.reason.unwrap_or("no exit status")
    )))
}

/// Writes outcomes to the store, each change once.
#[derive(Debug, Default)]
pub struct Recorder {
    written: HashMap<(String, u32), Outcome>,
}

impl Recorder {
    /// Records `outcome` of `(app, version)` unless this recorder already did.
    pub async fn record(
        &mut self,
        c: &Controller,
        app: &str,
        version: u32,
        outcome: Outcome,
    ) -> Result<(), StoreError> {
        let key = (app.to_string(), version);
        if self.written.get(&key) == Some(&outcome) {
            return Ok(());
        }
        let changed = c
            .store
            .settle_release_status(app, version, outcome.status(), outcome.reason())
            .await?;
        if changed {
            match &outcome {
                Outcome::Succeeded => tracing::info!(%app, version, "release succeeded"),
                Outcome::Failed(why) => tracing::warn!(%app, version, "release failed: {why}"),
            }
        }
        self.written.insert(key, outcome);
        Ok(())
    }

    /// Forgets releases that are no longer current.
    pub fn retain(&mut self, current: &HashMap<String, u32>) {
        self.written
            .retain(|(app, version), _| current.get(app) == Some(version));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scheduler::{ObservedJob, Phase};

    fn job(id: &str, release: u32, process_type: &str, healthy: bool) -> ObservedJob {
        ObservedJob {
            id: id.into(),
            app: "a".into(),
            release,
            process_type: process_type.into(),
            node: "n".into(),
            phase: Phase::Up,
            healthy,
        }
    }

    fn crash(count: u32, reason: &str) -> Crash<'_> {
        Crash {
            process_type: "web",
            count,
            reason: Some(reason),
        }
    }

    #[test]
    fn a_routed_web_job_of_the_release_is_success() {
        let mut snap = Snapshot {
            jobs: vec![
                job("a-v1-x", 1, "web", true),
                job("a-v2-y", 2, "web", false),
            ],
            ..Default::default()
        };
        snap.routed.insert("a".into(), vec!["a-v1-x".into()]);
        assert_eq!(decide("a", 1, true, &snap, &[]), Some(Outcome::Succeeded));
        // v2 is not routed yet (v1 still serves): undecided, not succeeded.
        assert_eq!(decide("a", 2, true, &snap, &[]), None);
        assert_eq!(decide("a", 2, true, &snap, &[crash(2, "exited 1")]), None);
        // A healthy worker counts when the release runs no web process.
        snap.jobs.push(job("a-v3-z", 3, "worker", true));
        assert_eq!(decide("a", 3, false, &snap, &[]), Some(Outcome::Succeeded));
    }

    #[test]
    fn crash_loops_and_failed_checks_are_failure_with_the_reason() {
        let mut snap = Snapshot::default();
        let got = decide("a", 2, true, &snap, &[crash(3, "exited 127")]);
        assert_eq!(
            got,
            Some(Outcome::Failed(
                "its web process crashed 3 times in a row (last: exited 127); see `paas logs`"
                    .into()
            ))
        );
        snap.failed_checks
            .insert(("a".into(), 2), "GET /health answered 500".into());
        assert_eq!(
            decide("a", 2, true, &snap, &[]),
            Some(Outcome::Failed("GET /health answered 500".into()))
        );
    }
}
