//! The fake [`Dashboard`] of plain data the web-ui tests drive, and request helpers
//! (`tower::ServiceExt::oneshot`, no socket). Shared by `pages.rs` and `access.rs`.
#![allow(dead_code)] // each test crate uses a part

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::IntoResponse;
use paas_api::{App, Build, Release};
use paas_web_ui::session::Session;
use paas_web_ui::{
    not_found, router, AcmeDomain, AcmeInfo, ActionError, Dashboard, JobInfo, JobSeries,
    LoginOutcome, Need, NodeInfo, ProcessType, Refusal, SessionUser, Viewer,
};
use tower::ServiceExt;

pub const KEY: &[u8] = b"test session key, 32 bytes long!";

/// Pure data: the apps, their releases, or an error for every question; the changes asked
/// for are recorded in `calls`.
#[derive(Default)]
pub struct FakeDashboard {
    pub apps: Vec<App>,
    pub releases: BTreeMap<String, Vec<Release>>,
    pub fail_with: Option<String>,
    pub calls: Mutex<Vec<String>>,
    /// The pages of apps asked for: `after` and `limit`.
    pub apps_asked: Mutex<Vec<(Option<String>, u32)>>,
    /// Automatic certificates of `hello` (the other apps have them off).
    pub acme: AcmeInfo,
    /// Whether the controller has an ACME CA (turning them on fails without).
    pub acme_available: bool,
}

impl FakeDashboard {
    fn call(&self, c: String) {
        self.calls.lock().unwrap().push(c);
    }
}

/// The member `ann` collaborates on `hello` only.
pub fn member_may_use(app: &str) -> bool {
    app == "hello"
}

impl Dashboard for FakeDashboard {
    async fn user(&self, name: &str) -> Result<Option<SessionUser>, String> {
        Ok(match name {
            "admin" => Some(SessionUser {
                name: name.into(),
                admin: true,
            }),
            "ann" => Some(SessionUser {
                name: name.into(),
                admin: false,
            }),
            _ => None,
        })
    }

    async fn authorize(&self, viewer: &Viewer, need: Need<'_>) -> Result<(), Refusal> {
        match need {
            _ if viewer.admin => Ok(()),
            Need::App(app) if member_may_use(app) => Ok(()),
            Need::App(app) => Err(Refusal::NotFound(format!("no app named {app}"))),
            Need::Admin => Err(Refusal::Forbidden("only admins can do this".into())),
        }
    }

    async fn apps(
        &self,
        viewer: &Viewer,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<App>, String> {
        if let Some(err) = &self.fail_with {
            return Err(err.clone());
        }
        self.apps_asked
            .lock()
            .unwrap()
            .push((after.map(str::to_string), limit));
        // As the controller does: filter, then order by name, then cut.
        let mut visible: Vec<App> = self
            .apps
            .iter()
            .filter(|a| viewer.admin || member_may_use(&a.name))
            .cloned()
            .collect();
        visible.sort_by(|a, b| a.name.cmp(&b.name));
        let start = match after {
            None => 0,
            Some(key) => match visible.iter().position(|a| a.name == key) {
                Some(p) => p + 1,
                None => return Ok(Vec::new()),
            },
        };
        Ok(visible
            .into_iter()
            .skip(start)
            .take(limit as usize)
            .collect())
    }

    async fn app(&self, name: &str) -> Result<Option<App>, String> {
        if let Some(err) = &self.fail_with {
            return Err(err.clone());
        }
        Ok(self.apps.iter().find(|a| a.name == name).cloned())
    }

    async fn releases(&self, name: &str) -> Result<Vec<Release>, String> {
        if let Some(err) = &self.fail_with {
            return Err(err.clone());
        }
        Ok(self.releases.get(name).cloned().unwrap_or_default())
    }

    fn session_key(&self) -> Vec<u8> {
        KEY.to_vec()
    }

    async fn login(
        &self,
        user: &str,
        password: &str,
        _: Option<std::net::IpAddr>,
    ) -> Result<LoginOutcome, String> {
        if user == "limited" {
            return Ok(LoginOutcome::Limited(42));
        }
        Ok(match self.user(user).await? {
            Some(u) if password == "s3cret" => LoginOutcome::User(u),
            _ => LoginOutcome::Wrong,
        })
    }

    async fn create_app(&self, _: &Viewer, name: &str) -> Result<App, ActionError> {
        if name.contains('_') {
            return Err(ActionError::User(format!(
                "{name:?} is not a valid app name"
            )));
        }
        self.call(format!("create {name}"));
        Ok(app(name, None, "idle"))
    }

    async fn formation(&self, app: &str) -> Result<Vec<ProcessType>, String> {
        Ok(if app == "hello" {
            vec![ProcessType {
                name: "web".into(),
                command: "./server".into(),
                quantity: 1,
            }]
        } else {
            vec![]
        })
    }

    async fn scale(&self, app: &str, t: &str, q: u32) -> Result<(), ActionError> {
        self.call(format!("scale {app} {t}={q}"));
        Ok(())
    }

    async fn jobs(&self, app: &str) -> Result<Vec<JobInfo>, String> {
        Ok(if app == "hello" {
            vec![JobInfo {
                id: "job-1".into(),
                process_type: "web".into(),
                release: 2,
                node: "node-a".into(),
                state: "up".into(),
                restarts: 3,
                started_at: Some("2024-05-01T12:00:00Z".into()),
                exit_reason: Some("exited with 1".into()),
            }]
        } else {
            vec![]
        })
    }

    async fn config(&self, _: &str) -> Result<BTreeMap<String, String>, String> {
        Ok(BTreeMap::from([(
            "SECRET".to_string(),
            "hunter2<b>".to_string(),
        )]))
    }

    async fn set_config(
        &self,
        app: &str,
        changes: BTreeMap<String, Option<String>>,
    ) -> Result<Option<u32>, ActionError> {
        for k in changes.keys() {
            if k.contains(' ') {
                return Err(ActionError::User(format!(
                    "{k:?} is not a valid config key"
                )));
            }
        }
        self.call(format!("config {app} {changes:?}"));
        Ok(Some(3))
    }

    async fn rollback(&self, app: &str, version: u32) -> Result<Release, ActionError> {
        self.call(format!("rollback {app} v{version}"));
        Ok(release(app, 3, "Rollback"))
    }

    async fn domains(&self, _: &str) -> Result<Vec<String>, String> {
        Ok(vec!["www.example.com".into()])
    }

    async fn add_domain(&self, app: &str, h: &str) -> Result<(), ActionError> {
        self.call(format!("domain+ {app} {h}"));
        Ok(())
    }

    async fn remove_domain(&self, app: &str, h: &str) -> Result<(), ActionError> {
        self.call(format!("domain- {app} {h}"));
        Ok(())
    }

    async fn acme(&self, app: &str) -> Result<AcmeInfo, String> {
        Ok(if app == "hello" {
            AcmeInfo {
                available: self.acme_available,
                ..self.acme.clone()
            }
        } else {
            AcmeInfo {
                available: self.acme_available,
                ..AcmeInfo::default()
            }
        })
    }

    async fn set_acme(&self, app: &str, enabled: bool) -> Result<(), ActionError> {
        if enabled && !self.acme_available {
            return Err(ActionError::User(
                "automatic certificates are off on this controller: start it with \
                 --acme-directory URL"
                    .into(),
            ));
        }
        self.call(format!("acme {app} {enabled}"));
        Ok(())
    }

    async fn builds(&self, app: &str) -> Result<Vec<Build>, String> {
        Ok(vec![Build {
            id: "b1".into(),
            app: app.into(),
            status: "succeeded".into(),
            source_version: Some("1a2b3c4d".into()),
            release: Some(1),
            created_at: "2024-05-01T10:00:00Z".into(),
            finished_at: None,
        }])
    }

    async fn build_log(&self, app: &str, id: &str) -> Result<Option<(Build, String)>, String> {
        let b = self.builds(app).await?.into_iter().find(|b| b.id == id);
        Ok(b.map(|b| (b, "-----> Building <tiny>\n".to_string())))
    }

    async fn log_stream(&self, app: &str) -> Result<axum::response::Response, String> {
        Ok(format!("data: log of {app}\n\n").into_response())
    }

    async fn stats(&self, _: &str) -> Result<Vec<JobSeries>, String> {
        Ok(vec![JobSeries {
            job_id: "job-1".into(),
            process_type: "web".into(),
            at_ms: vec![1000, 2000],
            cpu_percent: vec![1.5, 2.5],
            memory_bytes: vec![100, 200],
        }])
    }

    async fn nodes(&self) -> Result<Vec<NodeInfo>, String> {
        Ok(vec![NodeInfo {
            name: "node-a".into(),
            url: "http://10.0.0.1:7000".into(),
            state: "up".into(),
            memory_bytes: 4 << 30,
            reserved_bytes: 1 << 30,
            used_bytes: 300 << 20,
            last_seen: "2024-05-01T12:00:00Z".into(),
            jobs: vec!["hello/web".into()],
        }])
    }

    async fn set_draining(&self, node: &str, draining: bool) -> Result<(), ActionError> {
        self.call(format!("drain {node} {draining}"));
        Ok(())
    }

    async fn rename_app(&self, app: &str, new_name: &str) -> Result<App, ActionError> {
        if new_name.contains('_') {
            return Err(ActionError::User(format!(
                "{new_name:?} is not a valid app name"
            )));
        }
        self.call(format!("rename {app} {new_name}"));
        Ok(self::app(new_name, None, "idle"))
    }

    async fn destroy_app(&self, app: &str, confirm: &str) -> Result<(), ActionError> {
        if confirm != app {
            return Err(ActionError::User(format!("type {app} to confirm")));
        }
        self.call(format!("destroy {app}"));
        Ok(())
    }

    async fn restart_job(&self, app: &str, job: &str) -> Result<(), ActionError> {
        if job != "job-1" {
            return Err(ActionError::User(format!("{app} has no running job {job}")));
        }
        self.call(format!("restart {app} {job}"));
        Ok(())
    }

    async fn stop_job(&self, app: &str, job: &str) -> Result<(), ActionError> {
        self.call(format!("stop {app} {job}"));
        Ok(())
    }

    async fn restart_type(&self, app: &str, process_type: &str) -> Result<(), ActionError> {
        self.call(format!("restart {app} type {process_type}"));
        Ok(())
    }
}

pub fn app(name: &str, current_release: Option<u32>, status: &str) -> App {
    App {
        name: name.to_string(),
        created_at: "2024-05-01T12:34:56Z".to_string(),
        current_release,
        web_url: format!("http://{name}.localhost:8000"),
        git_url: format!("http://127.0.0.1:8080/git/{name}.git"),
        status: status.to_string(),
    }
}

pub fn release(app: &str, version: u32, description: &str) -> Release {
    Release {
        app: app.to_string(),
        version,
        image: format!("apps/{app}@sha256:{version:064}"),
        source_version: Some("1a2b3c4d5e6f".to_string()),
        process_types: BTreeMap::from([("web".to_string(), "./server".to_string())]),
        config_keys: vec![],
        description: description.to_string(),
        created_at: format!("2024-05-0{version}T10:00:00Z"),
        status: Some("succeeded".to_string()),
        status_reason: None,
    }
}

pub fn sample() -> FakeDashboard {
    FakeDashboard {
        apps: vec![app("hello", Some(2), "up"), app("fresh", None, "idle")],
        releases: BTreeMap::from([(
            "hello".to_string(),
            vec![
                release("hello", 1, "Deploy 1a2b3c4"),
                release("hello", 2, "Deploy 9f8e7d6"),
            ],
        )]),
        fail_with: None,
        calls: Mutex::new(Vec::new()),
        apps_asked: Mutex::new(Vec::new()),
        acme: AcmeInfo {
            enabled: true,
            available: true,
            domains: vec![AcmeDomain {
                hostname: "www.example.com".into(),
                state: "issued".into(),
                reason: String::new(),
                not_after: "2031-02-03T04:05:06Z".into(),
            }],
        },
        acme_available: true,
    }
}

pub struct Answer {
    pub status: StatusCode,
    pub content_type: String,
    pub headers: axum::http::HeaderMap,
    pub body: String,
}

pub fn session() -> Session {
    Session::new("admin")
}

/// A GET with a valid session.
pub async fn get(dashboard: FakeDashboard, uri: &str) -> Answer {
    send(Arc::new(dashboard), Request::get(uri), Some(&session()), "").await
}

/// Any request, with the session's cookie when given, and a form body.
pub async fn send(
    dashboard: Arc<FakeDashboard>,
    builder: axum::http::request::Builder,
    session: Option<&Session>,
    form: &str,
) -> Answer {
    let mut builder = builder.header(header::HOST, "ctl.example:8080");
    if let Some(s) = session {
        builder = builder.header(header::COOKIE, format!("paas_session={}", s.encode(KEY)));
    }
    if !form.is_empty() {
        builder = builder.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let request = builder.body(Body::from(form.to_string())).unwrap();
    // Mounted as the controller mounts it: the pages, and the not-found page as fallback.
    let app = router(Arc::clone(&dashboard)).fallback_service(not_found(dashboard));
    let response = app.oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Answer {
        status,
        content_type,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}
