//! The controller's side of the dashboard: [`paas_web_ui::Dashboard`] answered from the
//! same app services, handler functions and store functions as the REST API (never SQL
//! from the web UI).
//!
//! Login: the users store (argon2); the standalone controller makes `admin` whose first
//! password is the admin token. Logins count against the API's per-source failure limiter
//! (`Controller::access`: 429 when used up) and every refusal is logged like the API's.
//! Sessions are signed with a key kept in `DATA_DIR/dashboard-key`, so they survive a
//! controller restart.
//!
//! Access: a session's user becomes a [`Caller`] (as if they sent one of their API
//! tokens) and the dashboard asks it the REST API's questions: `require_app` before any
//! app page or form, `require_admin` for the nodes page, `apps_filter` for the apps list
//! (a page the store cuts, as for `GET /v1/apps`), `record_creator` when an app is made.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use std::net::IpAddr;

use axum::response::IntoResponse;
use paas_api::{App, Build, Release};
use paas_web_ui::{
    AcmeDomain, AcmeInfo, ActionError, JobInfo, JobSeries, LoginOutcome, Need, NodeInfo,
    ProcessType, Refusal, SessionUser, Viewer,
};

use super::{ApiError, FormationChange};
use crate::apps::{self, AppsError};
use crate::auth::{Caller, Principal};
use crate::scheduler::{ObservedJob, Phase, DEFAULT_MEMORY_BYTES};
use crate::state::{Controller, NODE_TIMEOUT_MS};
use crate::store::DomainAdded;
use crate::util::{rfc3339_from_ms, unix_ms};

/// The memory the scheduler counts as taken on `node`: each starting, up or stopping job
/// holds its formation's memory (`Store::formation_memory`), the default when the
/// formation sets none — the same numbers as the scheduler's fit.
pub(crate) fn reserved_on(
    node: &str,
    jobs: &[ObservedJob],
    sizes: &HashMap<(String, String), u64>,
) -> u64 {
    jobs.iter()
        .filter(|j| j.node == node && j.phase != Phase::Finished)
        .map(|j| {
            sizes
                .get(&(j.app.clone(), j.process_type.clone()))
                .copied()
                .unwrap_or(DEFAULT_MEMORY_BYTES)
        })
        .sum()
}

/// What a dashboard session's [`Caller`] names as its token (sessions are not tokens).
const SESSION_TOKEN: &str = "dashboard-session";

/// At most this many job rows of one app are read for the jobs table (the formation
/// allows 100 per process type).
const JOB_ROWS: u32 = 1000;

/// The path the login limiter and the refusal log name for dashboard logins.
const LOGIN_PATH: &str = "/login";

/// The dashboard's view of the controller.
pub struct ControllerDashboard {
    controller: Arc<Controller>,
    session_key: Vec<u8>,
}

impl ControllerDashboard {
    /// Loads (or makes) the session key in the data directory; when that fails the key
    /// lives in memory only and sessions end with the process.
    pub fn new(controller: Arc<Controller>) -> ControllerDashboard {
        let path = controller.settings.data_dir.join("dashboard-key");
        let key = match crate::util::load_or_create_token(&path) {
            Ok(k) => k,
            Err(e) => {
                tracing::warn!("dashboard sessions will not survive a restart: {e}");
                crate::util::random_hex(32)
            }
        };
        ControllerDashboard {
            controller,
            session_key: key.into_bytes(),
        }
    }
}

fn internal(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl From<AppsError> for ActionError {
    fn from(e: AppsError) -> Self {
        match e {
            AppsError::Store(e) => ActionError::Internal(e.to_string()),
            AppsError::Names(e) => ActionError::Internal(e.to_string()),
            e => ActionError::User(e.to_string()),
        }
    }
}

/// A volume operation's error: the store's is logged, every other one (bad input, a
/// refusal, a node that is down or did not answer) is shown next to the form.
fn volume_err(e: crate::volumes::VolumesError) -> ActionError {
    match e {
        crate::volumes::VolumesError::Store(e) => ActionError::Internal(e.to_string()),
        e => ActionError::User(e.to_string()),
    }
}

fn store_err(e: crate::store::StoreError) -> ActionError {
    ActionError::Internal(e.to_string())
}

/// A REST handler function's error as the dashboard shows it: what the API answers with a
/// 4xx goes next to the form, the rest is logged.
fn action_err(e: ApiError) -> ActionError {
    match e {
        ApiError::Internal(_) | ApiError::Unavailable(_) => ActionError::Internal(e.to_string()),
        e => ActionError::User(e.to_string()),
    }
}

impl ControllerDashboard {
    async fn require_app(&self, name: &str) -> Result<(), ActionError> {
        match self.controller.store.get_app(name).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(ActionError::User(format!("there is no app named {name}"))),
            Err(e) => Err(store_err(e)),
        }
    }

    /// The viewer as a [`Caller`], so the dashboard asks the REST API's own access checks.
    async fn caller(&self, v: &Viewer) -> Result<Caller, String> {
        let user = self
            .controller
            .store
            .get_user(&v.name)
            .await
            .map_err(internal)?
            .ok_or_else(|| format!("the user {} no longer exists", v.name))?;
        Ok(Caller {
            principal: Principal::User {
                user,
                token: SESSION_TOKEN.to_string(),
            },
            source: v.source,
            path: v.path.clone(),
        })
    }
}

impl paas_web_ui::Dashboard for ControllerDashboard {
    async fn user(&self, name: &str) -> Result<Option<SessionUser>, String> {
        let row = self
            .controller
            .store
            .get_user(name)
            .await
            .map_err(internal)?;
        Ok(row.map(|u| SessionUser {
            admin: u.is_admin(),
            name: u.name,
        }))
    }

    async fn authorize(&self, viewer: &Viewer, need: Need<'_>) -> Result<(), Refusal> {
        let caller = self.caller(viewer).await.map_err(Refusal::Internal)?;
        let checked = match need {
            Need::App(app) => caller.require_app(&self.controller, app).await,
            Need::Admin => caller.require_admin(),
        };
        checked.map_err(|e| match e {
            ApiError::NotFound(m) => Refusal::NotFound(m),
            ApiError::Forbidden(m) => Refusal::Forbidden(m),
            e => Refusal::Internal(e.to_string()),
        })
    }

    async fn apps(
        &self,
        viewer: &Viewer,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<App>, String> {
        // The same page as `GET /v1/apps?after=&limit=`: cut by the store after the
        // members' filter.
        let caller = self.caller(viewer).await?;
        let member = caller.apps_filter().map_err(internal)?;
        apps::page(&self.controller, member, after, limit)
            .await
            .map_err(internal)
    }

    async fn app(&self, name: &str) -> Result<Option<App>, String> {
        apps::get(&self.controller, name).await.map_err(internal)
    }

    async fn releases(&self, name: &str) -> Result<Vec<Release>, String> {
        // The newest 100: older ones are a `paas releases` away.
        match apps::releases(&self.controller, name, None, 100).await {
            Ok(r) => Ok(r),
            Err(AppsError::NotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn session_key(&self) -> Vec<u8> {
        self.session_key.clone()
    }

    async fn login(
        &self,
        user: &str,
        password: &str,
        source: Option<IpAddr>,
    ) -> Result<LoginOutcome, String> {
        // The same limits as `POST /v1/login` (auth::login).
        use crate::auth::login::{verify, LoginRefused};
        let c = &self.controller;
        match verify(c, source, LOGIN_PATH, user, password)
            .await
            .map_err(internal)?
        {
            Ok(u) => {
                tracing::info!(user = %u.name, "dashboard login");
                Ok(LoginOutcome::User(SessionUser {
                    admin: u.is_admin(),
                    name: u.name,
                }))
            }
            Err(LoginRefused::Limited(secs)) => Ok(LoginOutcome::Limited(secs)),
            Err(LoginRefused::Wrong) => Ok(LoginOutcome::Wrong),
        }
    }

    async fn create_app(&self, viewer: &Viewer, name: &str) -> Result<App, ActionError> {
        let caller = self.caller(viewer).await.map_err(ActionError::Internal)?;
        let app = apps::create(&self.controller, name).await?;
        caller
            .record_creator(&self.controller, &app.name)
            .await
            .map_err(action_err)?;
        tracing::info!(app = %app.name, by = %viewer.name, "app created from the dashboard");
        Ok(app)
    }

    async fn rename_app(&self, app: &str, new_name: &str) -> Result<App, ActionError> {
        super::rename_app(&self.controller, app, new_name)
            .await
            .map_err(action_err)
    }

    async fn destroy_app(&self, app: &str, confirm: &str) -> Result<(), ActionError> {
        super::check_destroy_confirmation(app, Some(confirm))
            .map_err(|m| ActionError::User(format!("{m}: type its name, {app}, to confirm")))?;
        apps::destroy(&self.controller, app).await?;
        tracing::info!(%app, "app destroyed from the dashboard");
        Ok(())
    }

    async fn restart_job(&self, app: &str, job: &str) -> Result<(), ActionError> {
        super::restart_one(&self.controller, app, job)
            .await
            .map(drop)
            .map_err(action_err)
    }

    async fn stop_job(&self, app: &str, job: &str) -> Result<(), ActionError> {
        super::stop_one(&self.controller, app, job)
            .await
            .map(drop)
            .map_err(action_err)
    }

    async fn restart_type(&self, app: &str, process_type: &str) -> Result<(), ActionError> {
        super::restart_all(&self.controller, app, Some(process_type))
            .await
            .map(drop)
            .map_err(action_err)
    }

    async fn formation(&self, app: &str) -> Result<Vec<ProcessType>, String> {
        match super::current_formation(&self.controller, app).await {
            Ok(entries) => Ok(entries
                .into_iter()
                .map(|f| ProcessType {
                    name: f.process_type,
                    command: f.command,
                    quantity: f.quantity,
                })
                .collect()),
            // No app, or no release yet: nothing to scale.
            Err(super::ApiError::NotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn scale(&self, app: &str, process_type: &str, quantity: u32) -> Result<(), ActionError> {
        // The PATCH handler's own function: one place for the rules and their messages.
        let changes = BTreeMap::from([(
            process_type.to_string(),
            FormationChange {
                quantity: Some(quantity),
                size: None,
            },
        )]);
        super::change_formation(&self.controller, app, &changes, None)
            .await
            .map_err(action_err)?;
        tracing::info!(%app, process_type, quantity, "scaled from the dashboard");
        Ok(())
    }

    async fn jobs(&self, app: &str) -> Result<Vec<JobInfo>, String> {
        let c = &self.controller;
        // This app's rows only (the store's page query), for start times and exit reasons.
        let rows: HashMap<String, crate::store::JobRow> = c
            .store
            .jobs_page(app, None, JOB_ROWS)
            .await
            .map_err(internal)?
            .into_iter()
            .map(|j| (j.id.clone(), j))
            .collect();
        let snap = c.scheduler.snapshot();
        Ok(snap
            .jobs
            .iter()
            .filter(|j| j.app == app)
            .map(|j| {
                let row = rows.get(&j.id);
                JobInfo {
                    id: j.id.clone(),
                    process_type: j.process_type.clone(),
                    release: j.release,
                    node: j.node.clone(),
                    state: match j.phase {
                        Phase::Starting => "starting",
                        Phase::Up if j.healthy => "up",
                        Phase::Up => "unhealthy",
                        Phase::Stopping => "stopping",
                        Phase::Finished => "down",
                    }
                    .to_string(),
                    restarts: snap
                        .crashing
                        .get(&(j.app.clone(), j.release))
                        .copied()
                        .unwrap_or(0),
                    started_at: row.map(|r| r.created_at.clone()),
                    exit_reason: row.and_then(|r| r.exit_reason.clone()),
                }
            })
            .collect())
    }

    async fn config(&self, app: &str) -> Result<BTreeMap<String, String>, String> {
        apps::config(&self.controller, app).await.map_err(internal)
    }

    async fn set_config(
        &self,
        app: &str,
        changes: BTreeMap<String, Option<String>>,
    ) -> Result<Option<u32>, ActionError> {
        for key in changes.keys() {
            paas_api::names::validate_config_key(key).map_err(ActionError::User)?;
        }
        let (_, version) = apps::set_config(&self.controller, app, &changes).await?;
        Ok(version)
    }

    async fn rollback(&self, app: &str, version: u32) -> Result<Release, ActionError> {
        Ok(apps::rollback(&self.controller, app, Some(version)).await?)
    }

    async fn domains(&self, app: &str) -> Result<Vec<String>, String> {
        let rows = self
            .controller
            .store
            .domains(Some(app))
            .await
            .map_err(internal)?;
        Ok(rows.into_iter().map(|d| d.hostname).collect())
    }

    async fn add_domain(&self, app: &str, hostname: &str) -> Result<(), ActionError> {
        let c = &self.controller;
        let hostname =
            super::validate_hostname(hostname, &c.settings.domain).map_err(ActionError::User)?;
        self.require_app(app).await?;
        match c
            .store
            .add_domain(app, &hostname)
            .await
            .map_err(store_err)?
        {
            DomainAdded::Added(_) | DomainAdded::Already(_) => {
                c.scheduler.notify();
                Ok(())
            }
            // Never names the owner: the form does not know whether the viewer may see it.
            DomainAdded::TakenBy(_) => Err(ActionError::User(format!(
                "{hostname} is already a domain of another app; remove it there first"
            ))),
        }
    }

    async fn remove_domain(&self, app: &str, hostname: &str) -> Result<(), ActionError> {
        let c = &self.controller;
        let hostname = hostname.trim().trim_end_matches('.').to_ascii_lowercase();
        if !c
            .store
            .remove_domain(app, &hostname)
            .await
            .map_err(store_err)?
        {
            return Err(ActionError::User(format!("{app} has no domain {hostname}")));
        }
        c.scheduler.notify();
        Ok(())
    }

    async fn volumes(&self, app: &str) -> Result<Vec<paas_web_ui::Volume>, String> {
        let list = match crate::volumes::list(&self.controller, app).await {
            Ok(l) => l,
            Err(crate::volumes::VolumesError::NoApp(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.to_string()),
        };
        Ok(list
            .into_iter()
            .map(|v| paas_web_ui::Volume {
                name: v.name,
                size_bytes: v.size_bytes,
                used_bytes: v.used_bytes,
                full: v.full == Some(true),
                node: v.node,
                node_state: v.node_state.to_string(),
                mount: v
                    .mounts
                    .into_iter()
                    .next()
                    .map(|m| (m.process_type, m.path)),
            })
            .collect())
    }

    async fn create_volume(&self, app: &str, name: &str, size: &str) -> Result<(), ActionError> {
        crate::volumes::create(&self.controller, app, name, size, None)
            .await
            .map(|_| ())
            .map_err(volume_err)
    }

    async fn mount_volume(
        &self,
        app: &str,
        name: &str,
        process_type: &str,
        path: &str,
    ) -> Result<(), ActionError> {
        crate::volumes::mount(&self.controller, app, name, process_type, path)
            .await
            .map(|_| ())
            .map_err(volume_err)
    }

    async fn unmount_volume(&self, app: &str, name: &str) -> Result<(), ActionError> {
        crate::volumes::unmount(&self.controller, app, name)
            .await
            .map(|_| ())
            .map_err(volume_err)
    }

    async fn destroy_volume(
        &self,
        app: &str,
        name: &str,
        confirm: &str,
    ) -> Result<(), ActionError> {
        crate::volumes::destroy(&self.controller, app, name, Some(confirm))
            .await
            .map_err(volume_err)
    }

    async fn addons(
        &self,
        viewer: &Viewer,
        app: &str,
    ) -> Result<Vec<paas_web_ui::AddonInfo>, String> {
        let caller = self.caller(viewer).await?;
        super::dashboard_addons::list(&self.controller, &caller, app).await
    }

    fn addon_services(&self) -> Vec<paas_web_ui::AddonService> {
        super::dashboard_addons::services()
    }

    async fn addon_backups(&self, app: &str) -> Result<Vec<paas_web_ui::AddonBackup>, String> {
        super::dashboard_addons::backups(&self.controller, app).await
    }

    async fn create_addon(
        &self,
        viewer: &Viewer,
        app: &str,
        service: &str,
        plan: &str,
    ) -> Result<(), ActionError> {
        let caller = self.caller(viewer).await.map_err(ActionError::Internal)?;
        super::dashboard_addons::create(&self.controller, &caller, app, service, plan).await
    }

    async fn capture_backup(&self, app: &str, addon: &str) -> Result<(), ActionError> {
        super::dashboard_addons::capture(&self.controller, app, addon).await
    }

    async fn restore_backup(
        &self,
        viewer: &Viewer,
        app: &str,
        id: &str,
        confirm: &str,
    ) -> Result<(), ActionError> {
        let caller = self.caller(viewer).await.map_err(ActionError::Internal)?;
        super::dashboard_addons::restore(&self.controller, &caller, app, id, confirm).await
    }

    async fn destroy_addon(
        &self,
        app: &str,
        addon: &str,
        confirm: &str,
    ) -> Result<(), ActionError> {
        super::dashboard_addons::destroy(&self.controller, app, addon, confirm).await
    }

    async fn attach_addon(
        &self,
        viewer: &Viewer,
        app: &str,
        addon: &str,
        as_name: &str,
    ) -> Result<(), ActionError> {
        let caller = self.caller(viewer).await.map_err(ActionError::Internal)?;
        super::dashboard_addons::attach(&self.controller, &caller, app, addon, as_name).await
    }

    async fn detach_addon(&self, app: &str, addon: &str) -> Result<(), ActionError> {
        super::dashboard_addons::detach(&self.controller, app, addon).await
    }

    async fn download_backup(
        &self,
        app: &str,
        id: &str,
    ) -> Result<axum::response::Response, ActionError> {
        super::dashboard_addons::download(&self.controller, app, id).await
    }

    async fn acme(&self, app: &str) -> Result<AcmeInfo, String> {
        let status = match super::acme_status(&self.controller, app).await {
            Ok(s) => s,
            Err(ApiError::NotFound(_)) => return Ok(AcmeInfo::default()),
            Err(e) => return Err(e.to_string()),
        };
        Ok(AcmeInfo {
            enabled: status.enabled,
            available: status.available,
            domains: status
                .domains
                .into_iter()
                .map(|d| AcmeDomain {
                    hostname: d.hostname,
                    state: d.state,
                    reason: d.reason,
                    not_after: d.not_after,
                })
                .collect(),
        })
    }

    async fn set_acme(&self, app: &str, enabled: bool) -> Result<(), ActionError> {
        // The PUT handler's own function: the same rules, messages and side effects.
        super::set_acme(&self.controller, app, enabled)
            .await
            .map(drop)
            .map_err(action_err)
    }

    async fn builds(&self, app: &str) -> Result<Vec<Build>, String> {
        // The page shows the newest 10.
        match apps::builds(&self.controller, app, None, 10).await {
            Ok(b) => Ok(b),
            Err(AppsError::NotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn build_log(
        &self,
        app: &str,
        build_id: &str,
    ) -> Result<Option<(Build, String)>, String> {
        let row = self
            .controller
            .store
            .get_build(build_id)
            .await
            .map_err(internal)?;
        Ok(row
            .filter(|b| b.app == app)
            .map(|b| (b.to_api(), b.log.clone())))
    }

    async fn log_stream(&self, app: &str) -> Result<axum::response::Response, String> {
        match super::dashboard_stream(Arc::clone(&self.controller), app.to_string()).await {
            Ok(r) => Ok(r),
            Err(e @ super::ApiError::NotFound(_)) => Ok(e.into_response()),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn stats(&self, app: &str) -> Result<Vec<JobSeries>, String> {
        let c = &self.controller;
        let snap = c.scheduler.snapshot();
        Ok(snap
            .jobs
            .iter()
            .filter(|j| j.app == app)
            .map(|j| {
                let points = crate::job_stats::cpu_percent(&c.job_stats.samples(&j.id));
                JobSeries {
                    job_id: j.id.clone(),
                    process_type: j.process_type.clone(),
                    at_ms: points.iter().map(|p| p.0).collect(),
                    cpu_percent: points.iter().map(|p| p.1).collect(),
                    memory_bytes: points.iter().map(|p| p.2).collect(),
                }
            })
            .filter(|s| !s.at_ms.is_empty())
            .collect())
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, String> {
        let c = &self.controller;
        let now = unix_ms();
        let rows = c.store.list_nodes().await.map_err(internal)?;
        let draining = c.store.draining_nodes().await.map_err(internal)?;
        let sizes = c.store.formation_memory().await.map_err(internal)?;
        let snap = c.scheduler.snapshot();
        Ok(rows
            .into_iter()
            .map(|n| {
                let jobs: Vec<_> = snap
                    .jobs
                    .iter()
                    .filter(|j| j.node == n.name && matches!(j.phase, Phase::Starting | Phase::Up))
                    .collect();
                NodeInfo {
                    state: if now - n.last_seen_ms > NODE_TIMEOUT_MS {
                        "down"
                    } else if draining.contains(&n.name) {
                        "draining"
                    } else {
                        "up"
                    }
                    .to_string(),
                    reserved_bytes: reserved_on(&n.name, &snap.jobs, &sizes),
                    used_bytes: jobs
                        .iter()
                        .filter_map(|j| c.job_stats.latest_memory(&j.id))
                        .sum(),
                    jobs: jobs
                        .iter()
                        .map(|j| format!("{}/{}", j.app, j.process_type))
                        .collect(),
                    last_seen: rfc3339_from_ms(n.last_seen_ms),
                    memory_bytes: n.memory_bytes,
                    url: n.url,
                    name: n.name,
                }
            })
            .collect())
    }

    async fn set_draining(&self, node: &str, draining: bool) -> Result<(), ActionError> {
        let c = &self.controller;
        if !c
            .store
            .set_node_draining(node, draining)
            .await
            .map_err(store_err)?
        {
            return Err(ActionError::User(format!("node {node}")));
        }
        tracing::info!(node, draining, "node drain changed from the dashboard");
        c.scheduler.notify();
        Ok(())
    }
}

#[cfg(test)]
#[path = "dashboard_tests.rs"]
mod tests;
