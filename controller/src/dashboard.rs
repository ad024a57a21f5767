//! The controller's side of the dashboard: [`paas_web_ui::Dashboard`] answered from the
//! same app services and store functions as the REST API (never SQL from the web UI).
//!
//! Login: until users exist, the one user is `admin` with the admin token as password
//! (compared in constant time). Sessions are signed with a key kept in
//! `DATA_DIR/dashboard-key`, so they survive a controller restart.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use axum::response::IntoResponse;
use paas_api::{App, Build, Release};
use paas_web_ui::{ActionError, JobInfo, JobSeries, NodeInfo, ProcessType, SessionUser};

use crate::apps::{self, AppsError};
use crate::http::MAX_QUANTITY;
use crate::scheduler::Phase;
use crate::state::{Controller, NODE_TIMEOUT_MS};
use crate::store::DomainAdded;
use crate::util::{rfc3339_from_ms, unix_ms};

/// Every process gets this much memory (as in the formation API).
const PROCESS_BYTES: u64 = 512 * 1024 * 1024;

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
            e => ActionError::User(e.to_string()),
        }
    }
}

fn store_err(e: crate::store::StoreError) -> ActionError {
    ActionError::Internal(e.to_string())
}

impl ControllerDashboard {
    async fn require_app(&self, name: &str) -> Result<(), ActionError> {
        match self.controller.store.get_app(name).await {
            Ok(Some(_)) => Ok(()),
            Ok(None) => Err(ActionError::User(format!("there is no app named {name}"))),
            Err(e) => Err(store_err(e)),
        }
    }
}

impl paas_web_ui::Dashboard for ControllerDashboard {
    async fn apps(&self) -> Result<Vec<App>, String> {
        apps::list(&self.controller).await.map_err(internal)
    }

    async fn app(&self, name: &str) -> Result<Option<App>, String> {
        apps::get(&self.controller, name).await.map_err(internal)
    }

    async fn releases(&self, name: &str) -> Result<Vec<Release>, String> {
        match apps::releases(&self.controller, name).await {
            Ok(r) => Ok(r),
            Err(AppsError::NotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn session_key(&self) -> Vec<u8> {
        self.session_key.clone()
    }

    async fn login(&self, user: &str, password: &str) -> Result<Option<SessionUser>, String> {
        // The users store (argon2); the standalone controller made `admin` with the admin
        // token as its first password. The dashboard shows every app, so for now only
        // admins may log in to it; members use the CLI and API, which check app access.
        let found = self
            .controller
            .store
            .verify_password(user, password)
            .await
            .map_err(internal)?;
        match found {
            Some(u) if u.is_admin() => Ok(Some(SessionUser { name: u.name })),
            Some(u) => {
                tracing::warn!(user = %u.name, "dashboard login refused: not an admin");
                Ok(None)
            }
            None => {
                tracing::warn!(user, "dashboard login failed");
                Ok(None)
            }
        }
    }

    async fn create_app(&self, name: &str) -> Result<App, ActionError> {
        Ok(apps::create(&self.controller, name).await?)
    }

    async fn formation(&self, app: &str) -> Result<Vec<ProcessType>, String> {
        match crate::http::current_formation(&self.controller, app).await {
            Ok(entries) => Ok(entries
                .into_iter()
                .map(|f| ProcessType {
                    name: f.process_type,
                    command: f.command,
                    quantity: f.quantity,
                })
                .collect()),
            // No app, or no release yet: nothing to scale.
            Err(crate::http::ApiError::NotFound(_)) => Ok(Vec::new()),
            Err(e) => Err(e.to_string()),
        }
    }

    async fn scale(&self, app: &str, process_type: &str, quantity: u32) -> Result<(), ActionError> {
        self.require_app(app).await?;
        let types = self.formation(app).await.map_err(ActionError::Internal)?;
        if types.is_empty() {
            return Err(ActionError::User(format!(
                "{app} has no release yet: deploy it with `git push` before scaling"
            )));
        }
        if !types.iter().any(|t| t.name == process_type) {
            let names: Vec<&str> = types.iter().map(|t| t.name.as_str()).collect();
            return Err(ActionError::User(format!(
                "{app} has no process type {process_type:?}: its release has {}",
                names.join(", ")
            )));
        }
        if quantity > MAX_QUANTITY {
            return Err(ActionError::User(format!(
                "at most {MAX_QUANTITY} processes of one type"
            )));
        }
        let c = &self.controller;
        c.store
            .set_formation(app, process_type, quantity)
            .await
            .map_err(store_err)?;
        c.scheduler.notify();
        tracing::info!(%app, process_type, quantity, "scaled from the dashboard");
        Ok(())
    }

    async fn jobs(&self, app: &str) -> Result<Vec<JobInfo>, String> {
        let c = &self.controller;
        let rows: HashMap<String, crate::store::JobRow> = c
            .store
            .active_jobs()
            .await
            .map_err(internal)?
            .into_iter()
            .filter(|j| j.app == app)
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
        let hostname = crate::http::validate_hostname(hostname, &c.settings.domain)
            .map_err(ActionError::User)?;
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
            DomainAdded::TakenBy(other) => Err(ActionError::User(format!(
                "{hostname} is already a domain of {other}; remove it there first"
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

    async fn builds(&self, app: &str) -> Result<Vec<Build>, String> {
        match apps::builds(&self.controller, app).await {
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
        match crate::http::dashboard_stream(Arc::clone(&self.controller), app.to_string()).await {
            Ok(r) => Ok(r),
            Err(e @ crate::http::ApiError::NotFound(_)) => Ok(e.into_response()),
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
                    reserved_bytes: jobs.len() as u64 * PROCESS_BYTES,
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
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use axum::body::Body;
    use http::{header, Request, StatusCode};
    use paas_web_ui::{ActionError, Dashboard};
    use tower::ServiceExt;

    use super::ControllerDashboard;
    use crate::config::Settings;
    use crate::state::Controller;

    async fn controller(dir: &tempfile::TempDir) -> Arc<Controller> {
        let settings = Settings::new(
            dir.path().to_path_buf(),
            "127.0.0.1:8080".parse().unwrap(),
            8000,
            "localhost",
        )
        .unwrap();
        Controller::open(settings).await.unwrap()
    }

    #[tokio::test]
    async fn admin_logs_in_with_the_admin_token_and_the_key_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let c = controller(&dir).await;
        let d = ControllerDashboard::new(Arc::clone(&c));
        let token = c.tokens.admin().to_string();
        assert_eq!(
            d.login("admin", &token).await.unwrap().map(|u| u.name),
            Some("admin".to_string())
        );
        assert_eq!(d.login("admin", "wrong").await.unwrap(), None);
        assert_eq!(d.login("root", &token).await.unwrap(), None);
        assert!(d.session_key().len() >= 32);
        let again = ControllerDashboard::new(c);
        assert_eq!(again.session_key(), d.session_key(), "kept in the data dir");
    }

    #[tokio::test]
    async fn bad_input_is_a_user_error() {
        let dir = tempfile::tempdir().unwrap();
        let d = ControllerDashboard::new(controller(&dir).await);
        assert!(matches!(
            d.create_app("Bad_Name").await,
            Err(ActionError::User(_))
        ));
        d.create_app("hello").await.unwrap();
        assert!(matches!(
            d.create_app("hello").await,
            Err(ActionError::User(_))
        ));
        let bad = BTreeMap::from([("BAD KEY".to_string(), Some("x".to_string()))]);
        assert!(matches!(
            d.set_config("hello", bad).await,
            Err(ActionError::User(_))
        ));
        let good = BTreeMap::from([("GOOD".to_string(), Some("x".to_string()))]);
        assert_eq!(
            d.set_config("hello", good).await.unwrap(),
            None,
            "no release yet"
        );
        assert_eq!(d.config("hello").await.unwrap()["GOOD"], "x");
        assert!(matches!(
            d.scale("hello", "web", 2).await,
            Err(ActionError::User(_))
        ));
        assert!(matches!(
            d.add_domain("hello", "not a host").await,
            Err(ActionError::User(_))
        ));
        assert!(matches!(
            d.set_draining("nope", true).await,
            Err(ActionError::User(_))
        ));
    }

    #[tokio::test]
    async fn pages_are_mounted_behind_the_login_and_heartbeat_stats_are_kept() {
        let dir = tempfile::tempdir().unwrap();
        let c = controller(&dir).await;
        let resp = crate::http::app(Arc::clone(&c))
            .oneshot(Request::get("/").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::SEE_OTHER);
        assert_eq!(resp.headers()[header::LOCATION], "/login");
        for cpu in [1000, 2000] {
            let hb = format!(
                r#"{{"name":"n1","url":"http://127.0.0.1:1","memory_bytes":1024,
                    "stats":[{{"job_id":"j1","cpu_usage_usec":{cpu},"memory_bytes":5,
                    "at":"2026-01-01T00:00:00Z"}}]}}"#
            );
            let req = Request::post("/v1/nodes/heartbeat")
                .header(header::AUTHORIZATION, format!("Bearer {}", c.tokens.node()))
                .header(header::CONTENT_TYPE, "application/json")
                .body(Body::from(hb))
                .unwrap();
            let resp = crate::http::app(Arc::clone(&c)).oneshot(req).await.unwrap();
            assert_eq!(resp.status(), StatusCode::NO_CONTENT);
        }
        let samples = c.job_stats.samples("j1");
        assert_eq!(samples.len(), 2);
        assert_eq!(samples[1].cpu_usage_usec, 2000);
        assert_eq!(c.job_stats.latest_memory("j1"), Some(5));
    }
}
