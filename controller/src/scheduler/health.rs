//! Health checks of up web jobs, run by the scheduler loop each pass.
//!
//! Without a check in the release (no `app.json` healthchecks), a web job is healthy once
//! its port accepts a TCP connection. With one (see [`crate::builder::healthcheck`]), it is
//! healthy once an HTTP `GET` of the check's path answers 2xx with the expected content;
//! tries are `wait` seconds apart (the first `initialDelay` after the job is up). A job
//! that fails `attempts` tries before ever passing is reported in
//! [`HealthState::failed`], and the build waiting for that release gives up (the deploy
//! fails and rolls back). A job that passed once leaves the routes after
//! [`HEALTH_FAILURES`] failed checks in a row.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::future::join_all;

use super::Phase;
use crate::builder::healthcheck::{probe, HealthCheck};
use crate::state::Controller;

/// Consecutive failed health checks before a once-healthy job leaves the routes.
pub const HEALTH_FAILURES: u32 = 3;

/// What the loop knows about one web job's checks.
#[derive(Default)]
struct Health {
    ever: bool,
    failures: u32,
    /// Failed HTTP tries before the job ever passed.
    tries: u32,
    up_since: Option<Instant>,
    last_try: Option<Instant>,
    last_error: Option<String>,
}

/// The health part of the loop's state.
#[derive(Default)]
pub struct HealthState {
    jobs: HashMap<String, Health>,
    /// (app, release) → its HTTP check; releases are immutable, so this is cached.
    checks: HashMap<(String, u32), Option<Arc<HealthCheck>>>,
    client: Option<reqwest::Client>,
}

/// One up web job to check.
pub struct Target<'a> {
    pub id: &'a str,
    pub app: &'a str,
    pub release: u32,
    pub addr: Option<&'a str>,
}

impl HealthState {
    async fn check_of(
        &mut self,
        c: &Controller,
        app: &str,
        release: u32,
    ) -> Option<Arc<HealthCheck>> {
        let key = (app.to_string(), release);
        if let Some(check) = self.checks.get(&key) {
            return check.clone();
        }
        let check = match c.store.release_healthcheck(app, release).await {
            Ok(json) => json
                .and_then(|j| serde_json::from_str::<HealthCheck>(&j).ok())
                .map(Arc::new),
            Err(e) => {
                tracing::warn!(%app, release, "reading the release's health check: {e}");
                return None;
            }
        };
        self.checks.insert(key, check.clone());
        check
    }

    /// Checks the given up web jobs; returns job id → healthy.
    pub async fn check(&mut self, c: &Controller, targets: &[Target<'_>]) -> HashMap<String, bool> {
        let client = self
            .client
            .get_or_insert_with(|| {
                reqwest::Client::builder()
                    .no_proxy()
                    .redirect(reqwest::redirect::Policy::none())
                    .build()
                    .unwrap_or_default()
            })
            .clone();
        let now = Instant::now();
        let mut probes = Vec::new();
        for t in targets {
            let check = self.check_of(c, t.app, t.release).await;
            let h = self.jobs.entry(t.id.to_string()).or_default();
            let up_since = *h.up_since.get_or_insert(now);
            let Some(addr) = t.addr.map(str::to_string) else {
                continue;
            };
            let id = t.id.to_string();
            match check {
                None => probes.push(tokio::spawn(async move {
                    let ok = matches!(
                        tokio::time::timeout(
                            Duration::from_secs(1),
                            tokio::net::TcpStream::connect(addr.as_str())
                        )
                        .await,
                        Ok(Ok(_))
                    );
                    (
                        id,
                        ok.then_some(()).ok_or_else(|| "no TCP connect".to_string()),
                    )
                })),
                Some(check) => {
                    let due = now.duration_since(up_since)
                        >= Duration::from_secs(check.initial_delay)
                        && h.last_try.is_none_or(|last| {
                            now.duration_since(last) >= Duration::from_secs(check.wait)
                        });
                    if !due {
                        continue;
                    }
                    h.last_try = Some(now);
                    let client = client.clone();
                    probes.push(tokio::spawn(async move {
                        let result = probe(&client, &addr, &check).await;
                        (id, result)
                    }));
                }
            }
        }
        let results: HashMap<String, Result<(), String>> = join_all(probes)
            .await
            .into_iter()
            .filter_map(Result::ok)
            .collect();
        let mut out = HashMap::new();
        for t in targets {
            let Some(h) = self.jobs.get_mut(t.id) else {
                continue;
            };
            match results.get(t.id) {
                Some(Ok(())) => {
                    if !h.ever {
                        tracing::info!(job = %t.id, addr = ?t.addr, "web job passes its health check");
                    }
                    h.ever = true;
                    h.failures = 0;
                }
                Some(Err(why)) => {
                    if h.ever {
                        h.failures += 1;
                    } else {
                        h.tries += 1;
                    }
                    h.last_error = Some(why.clone());
                }
                // Not due this pass (HTTP checks) or no address yet: unchanged.
                None if t.addr.is_none() => h.failures += 1,
                None => {}
            }
            out.insert(t.id.to_string(), h.ever && h.failures < HEALTH_FAILURES);
        }
        out
    }

    /// (app, release) → why, for releases with a web job that failed all its startup
    /// tries without ever passing.
    pub async fn failed(
        &mut self,
        c: &Controller,
        targets: &[Target<'_>],
    ) -> HashMap<(String, u32), String> {
        let mut out = HashMap::new();
        for t in targets {
            let Some(check) = self.check_of(c, t.app, t.release).await else {
                continue;
            };
            let Some(h) = self.jobs.get(t.id) else {
                continue;
            };
            if !h.ever && h.tries >= check.attempts {
                let why = h.last_error.clone().unwrap_or_default();
                out.insert(
                    (t.app.to_string(), t.release),
                    format!(
                        "its web process failed the health check {:?} {} times: {why}",
                        check.name, h.tries
                    ),
                );
            }
        }
        out
    }

    /// Forgets jobs that are gone.
    pub fn retain(&mut self, ids: &HashSet<&str>) {
        self.jobs.retain(|id, _| ids.contains(id.as_str()));
    }
}

/// Whether an observed job is an up web job (the ones checked).
pub fn is_checked(process_type: &str, phase: Phase) -> bool {
    phase == Phase::Up && process_type == "web"
}
