//! The dashboard pages against a fake [`Dashboard`] made of plain data, driven with
//! `tower::ServiceExt::oneshot` (no socket).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use axum::response::IntoResponse;
use paas_api::{App, Build, Release};
use paas_web_ui::session::Session;
use paas_web_ui::{
    router, ActionError, Dashboard, JobInfo, JobSeries, LoginOutcome, Need, NodeInfo, ProcessType,
    Refusal, SessionUser, Viewer,
};
use tower::ServiceExt;

const KEY: &[u8] = b"test session key, 32 bytes long!";

/// Pure data: the apps, their releases, or an error for every question; the changes asked
/// for are recorded in `calls`.
#[derive(Default)]
struct FakeDashboard {
    apps: Vec<App>,
    releases: BTreeMap<String, Vec<Release>>,
    fail_with: Option<String>,
    calls: Mutex<Vec<String>>,
}

impl FakeDashboard {
    fn call(&self, c: String) {
        self.calls.lock().unwrap().push(c);
    }
}

/// The member `ann` collaborates on `hello` only.
fn member_may_use(app: &str) -> bool {
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

    async fn apps(&self, viewer: &Viewer) -> Result<Vec<App>, String> {
        match &self.fail_with {
            Some(err) => Err(err.clone()),
            None => Ok(self
                .apps
                .iter()
                .filter(|a| viewer.admin || member_may_use(&a.name))
                .cloned()
                .collect()),
        }
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

fn app(name: &str, current_release: Option<u32>, status: &str) -> App {
    App {
        name: name.to_string(),
        created_at: "2024-05-01T12:34:56Z".to_string(),
        current_release,
        web_url: format!("http://{name}.localhost:8000"),
        git_url: format!("http://127.0.0.1:8080/git/{name}.git"),
        status: status.to_string(),
    }
}

fn release(app: &str, version: u32, description: &str) -> Release {
    Release {
        app: app.to_string(),
        version,
        image: format!("apps/{app}@sha256:{version:064}"),
        source_version: Some("1a2b3c4d5e6f".to_string()),
        process_types: BTreeMap::from([("web".to_string(), "./server".to_string())]),
        config_keys: vec![],
        description: description.to_string(),
        created_at: format!("2024-05-0{version}T10:00:00Z"),
    }
}

fn sample() -> FakeDashboard {
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
    }
}

struct Answer {
    status: StatusCode,
    content_type: String,
    headers: axum::http::HeaderMap,
    body: String,
}

fn session() -> Session {
    Session::new("admin")
}

/// A GET with a valid session.
async fn get(dashboard: FakeDashboard, uri: &str) -> Answer {
    send(Arc::new(dashboard), Request::get(uri), Some(&session()), "").await
}

/// Any request, with the session's cookie when given, and a form body.
async fn send(
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
    let response = router(dashboard).oneshot(request).await.unwrap();
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

#[tokio::test]
async fn apps_list_shows_names_releases_and_urls() {
    let page = get(sample(), "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    let body = &page.body;
    assert!(
        body.contains(r#"<a class="name" href="/apps/hello">hello</a>"#),
        "{body}"
    );
    assert!(body.contains(">v2<"), "{body}");
    assert!(
        body.contains(r#"<a href="http://hello.localhost:8000">http://hello.localhost:8000</a>"#),
        "{body}"
    );
    assert!(body.contains("no release yet"), "{body}");
    assert!(body.contains("status-up"), "{body}");
    assert!(body.contains("2024-05-01 12:34 UTC"), "{body}");
    assert!(body.contains(r#"href="/static/app.css""#), "{body}");
    assert!(!body.contains("No apps yet"), "{body}");
}

#[tokio::test]
async fn hostile_names_are_escaped() {
    let hostile = "<script>alert(\"x\")</script>";
    let mut dashboard = sample();
    let mut evil = app("x", Some(1), "<b>up</b>");
    evil.name = hostile.to_string();
    evil.web_url = "javascript:alert(1)".to_string();
    dashboard.apps.push(evil);

    let page = get(dashboard, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("<script>"), "{}", page.body);
    assert!(!page.body.contains("<b>up"), "{}", page.body);
    assert!(page.body.contains("&#60;script&#62;"), "{}", page.body);
    // The link target is percent-encoded and the script URL is not a link.
    assert!(page.body.contains("/apps/%3Cscript%3E"), "{}", page.body);
    assert!(!page.body.contains(r#"href="javascript:"#), "{}", page.body);
    assert!(page.body.contains("status-unknown"), "{}", page.body);

    // And in the path of the app page: an impossible name is a 404 that escapes it.
    let page = get(sample(), "/apps/%3Cscript%3Ealert(1)%3C%2Fscript%3E").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!page.body.contains("<script>"), "{}", page.body);
    assert!(
        page.body.contains("&#60;script&#62;alert(1)"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn empty_state_says_how_to_deploy() {
    let page = get(FakeDashboard::default(), "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("No apps yet"), "{}", page.body);
    assert!(
        page.body
            .contains("git remote add paas http://ctl.example:8080/git/my-app.git"),
        "{}",
        page.body
    );
    assert!(page.body.contains("git push paas main"), "{}", page.body);
    assert!(!page.body.contains("<table"), "{}", page.body);
}

#[tokio::test]
async fn app_page_shows_url_current_release_and_releases_newest_first() {
    let page = get(sample(), "/apps/hello").await;
    assert_eq!(page.status, StatusCode::OK);
    let body = &page.body;
    assert!(body.contains("http://hello.localhost:8000"), "{body}");
    assert!(
        body.contains("git remote add paas http://127.0.0.1:8080/git/hello.git"),
        "{body}"
    );
    let v2 = body.find("Deploy 9f8e7d6").expect("v2 listed");
    let v1 = body.find("Deploy 1a2b3c4").expect("v1 listed");
    assert!(v2 < v1, "newest release first: {body}");
    assert!(
        body.contains(r#"<tr class="current" data-version="2">"#),
        "{body}"
    );
    assert!(body.contains("<code>1a2b3c4</code>"), "{body}");
}

#[tokio::test]
async fn app_page_without_releases_says_how_to_deploy() {
    let page = get(sample(), "/apps/fresh").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("no release yet"), "{}", page.body);
    assert!(page.body.contains("No releases yet"), "{}", page.body);
    assert!(page.body.contains("git push paas main"), "{}", page.body);
}

#[tokio::test]
async fn unknown_app_is_a_friendly_404() {
    let page = get(sample(), "/apps/nope").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    assert!(page.body.contains("App not found"), "{}", page.body);
    assert!(page.body.contains("nope"), "{}", page.body);
    assert!(page.body.contains(r#"<a href="/">"#), "{}", page.body);
}

#[tokio::test]
async fn backend_errors_are_a_500_page_that_does_not_leak() {
    let dashboard = FakeDashboard {
        fail_with: Some("database is locked at /var/lib/paas/secret.db".to_string()),
        ..sample()
    };
    let page = get(dashboard, "/").await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    assert!(page.body.contains("Something went wrong"), "{}", page.body);
    assert!(!page.body.contains("secret.db"), "{}", page.body);
}

#[tokio::test]
async fn pages_carry_a_strict_content_security_policy() {
    let page = get(sample(), "/").await;
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("style-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
}

#[tokio::test]
async fn stylesheet_is_served_as_css() {
    let css = get(FakeDashboard::default(), "/static/app.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.content_type.starts_with("text/css"),
        "{}",
        css.content_type
    );
    assert!(css.body.contains("@media"), "narrow-screen rules present");
    assert!(!css.body.contains("@import"), "no external stylesheets");
    assert!(!css.body.contains("url("), "no external fonts or images");
}

#[tokio::test]
async fn pages_without_a_session_go_to_the_login_form_but_assets_stay_public() {
    let d = Arc::new(sample());
    for uri in ["/", "/apps/hello", "/nodes", "/apps/hello/stats.json"] {
        let page = send(Arc::clone(&d), Request::get(uri), None, "").await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{uri}");
        assert_eq!(page.headers[header::LOCATION], "/login", "{uri}");
    }
    let forged = Session {
        user: "admin".into(),
        csrf: "x".into(),
        expires: u64::MAX,
    };
    let mut req = Request::get("/");
    req = req.header(
        header::COOKIE,
        format!("paas_session={}", forged.encode(b"other key")),
    );
    let page = send(Arc::clone(&d), req, None, "").await;
    assert_eq!(
        page.status,
        StatusCode::SEE_OTHER,
        "a cookie signed with another key"
    );
    let js = send(d, Request::get("/static/app.js"), None, "").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.content_type.starts_with("text/javascript"));
    assert!(js.body.contains("EventSource"));
}

#[tokio::test]
async fn login_checks_the_form_token_and_the_password() {
    let d = Arc::new(sample());
    let form = send(Arc::clone(&d), Request::get("/login"), None, "").await;
    assert_eq!(form.status, StatusCode::OK);
    let cookie = form.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain http: no Secure flag: {cookie}"
    );
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("paas_login_csrf=")
        .to_string();
    assert!(
        form.body.contains(&format!("value=\"{token}\"")),
        "{}",
        form.body
    );
    let with_cookie =
        || Request::post("/login").header(header::COOKIE, format!("paas_login_csrf={token}"));

    let wrong = send(
        Arc::clone(&d),
        with_cookie(),
        None,
        &format!("user=admin&password=nope&csrf={token}"),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.body.contains("Wrong user name or password"),
        "{}",
        wrong.body
    );

    let no_token = send(
        Arc::clone(&d),
        with_cookie(),
        None,
        "user=admin&password=s3cret&csrf=other",
    )
    .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);

    let ok = send(
        Arc::clone(&d),
        with_cookie(),
        None,
        &format!("user=admin&password=s3cret&csrf={token}"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.headers[header::LOCATION], "/");
    let value = ok
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("paas_session="))
        .expect("session cookie");
    let value = value
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("paas_session=");
    let s = Session::decode(value, KEY).expect("a valid session");
    assert_eq!(s.user, "admin");

    // Over https (as a proxy says) the cookie is Secure.
    let https = send(
        d,
        Request::get("/login").header("x-forwarded-proto", "https"),
        None,
        "",
    )
    .await;
    assert!(https.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("; Secure"));
}

#[tokio::test]
async fn forms_need_the_sessions_csrf_token() {
    let d = Arc::new(sample());
    let s = session();
    for (uri, form) in [
        ("/apps/hello/config", "key=A&value=1".to_string()),
        ("/apps/hello/scale", "type=web&quantity=2".to_string()),
        ("/apps/hello/rollback", "version=1".to_string()),
        ("/nodes/node-a/drain", String::new()),
        ("/apps", "name=x".to_string()),
    ] {
        let body = format!("{form}&csrf=wrong");
        let page = send(Arc::clone(&d), Request::post(uri), Some(&s), &body).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{uri}");
    }
    assert!(d.calls.lock().unwrap().is_empty(), "nothing changed");
}

#[tokio::test]
async fn app_forms_change_things_and_show_errors_next_to_the_field() {
    let d = Arc::new(sample());
    let s = session();
    let csrf = &s.csrf;
    let post = |uri: &'static str, form: String| {
        let d = Arc::clone(&d);
        let s = s.clone();
        async move { send(d, Request::post(uri), Some(&s), &form).await }
    };
    let ok = post(
        "/apps/hello/config",
        format!("key=GREETING&value=hi&csrf={csrf}"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.headers[header::LOCATION], "/apps/hello#config");
    let bad = post(
        "/apps/hello/config",
        format!("key=BAD+KEY&value=hi&csrf={csrf}"),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let field = bad.body.find("id=\"config-key\"").expect("key field");
    let error = bad.body.find("id=\"config-error\"").expect("error shown");
    assert!(
        error > field && error - field < 400,
        "error right after the field"
    );
    assert!(
        bad.body.contains("value=\"BAD KEY\""),
        "what was typed is kept"
    );
    assert_eq!(
        post(
            "/apps/hello/scale",
            format!("type=web&quantity=2&csrf={csrf}")
        )
        .await
        .status,
        StatusCode::SEE_OTHER
    );
    let nan = post(
        "/apps/hello/scale",
        format!("type=web&quantity=lots&csrf={csrf}"),
    )
    .await;
    assert!(nan.body.contains("id=\"scale-error\""), "{}", nan.body);
    post("/apps/hello/rollback", format!("version=1&csrf={csrf}")).await;
    post(
        "/apps/hello/domains",
        format!("hostname=www.example.org&csrf={csrf}"),
    )
    .await;
    post(
        "/apps/hello/config/unset",
        format!("key=SECRET&csrf={csrf}"),
    )
    .await;
    post("/nodes/node-a/drain", format!("csrf={csrf}")).await;
    let created = post("/apps", format!("name=new-app&csrf={csrf}")).await;
    assert_eq!(created.headers[header::LOCATION], "/apps/new-app");
    let bad_name = post("/apps", format!("name=Bad_Name&csrf={csrf}")).await;
    assert!(
        bad_name.body.contains("id=\"create-error\""),
        "{}",
        bad_name.body
    );
    let calls = d.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![
            "config hello {\"GREETING\": Some(\"hi\")}",
            "scale hello web=2",
            "rollback hello v1",
            "domain+ hello www.example.org",
            "config hello {\"SECRET\": None}",
            "drain node-a true",
            "create new-app",
        ]
    );
}

#[tokio::test]
async fn app_page_shows_formation_jobs_masked_config_domains_builds_and_live_parts() {
    let page = get(sample(), "/apps/hello").await;
    let body = &page.body;
    for needle in [
        "id=\"scale-web\"",
        "<strong>web.1</strong>",
        "node-a",
        "exited with 1",
        "data-key=\"SECRET\"",
        "class=\"secret\" hidden>hunter2&#60;b&#62;<",
        "www.example.com",
        "/apps/hello/builds/b1",
        "data-src=\"/apps/hello/logs/stream\"",
        "data-src=\"/apps/hello/stats.json\"",
        "Roll back to v1",
        "src=\"/static/app.js\"",
    ] {
        assert!(body.contains(needle), "{needle} missing: {body}");
    }
    assert!(
        !body.contains("Roll back to v2"),
        "the current release has no button"
    );
    let build = get(sample(), "/apps/hello/builds/b1").await;
    assert!(
        build.body.contains("-----&#62; Building &#60;tiny&#62;"),
        "{}",
        build.body
    );
    assert_eq!(
        get(sample(), "/apps/hello/builds/zz").await.status,
        StatusCode::NOT_FOUND
    );
    let stats = get(sample(), "/apps/hello/stats.json").await;
    assert!(
        stats.body.contains("\"cpu_percent\":[1.5,2.5]"),
        "{}",
        stats.body
    );
    let nodes = get(sample(), "/nodes").await;
    assert!(
        nodes.body.contains("4 GiB") && nodes.body.contains("hello/web"),
        "{}",
        nodes.body
    );
    assert!(nodes.body.contains("/nodes/node-a/drain"), "{}", nodes.body);
}

#[tokio::test]
async fn members_see_only_their_apps_and_never_the_nodes() {
    let d = Arc::new(sample());
    let ann = Session::new("ann");
    let get = |uri: &'static str| {
        let (d, s) = (Arc::clone(&d), ann.clone());
        async move { send(d, Request::get(uri), Some(&s), "").await }
    };
    let list = get("/").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("data-app=\"hello\""), "{}", list.body);
    assert!(!list.body.contains("data-app=\"fresh\""), "{}", list.body);
    assert!(!list.body.contains("href=\"/nodes\""), "no Nodes link");
    assert_eq!(get("/apps/hello").await.status, StatusCode::OK);
    for uri in [
        "/apps/fresh",
        "/apps/fresh/stats.json",
        "/apps/fresh/logs/stream",
        "/apps/fresh/builds/b1",
    ] {
        let page = get(uri).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(page.body.contains("App not found"), "{uri}: {}", page.body);
    }
    let nodes = get("/nodes").await;
    assert_eq!(nodes.status, StatusCode::FORBIDDEN);
    assert!(nodes.body.contains("only admins"), "{}", nodes.body);
    let csrf = &ann.csrf;
    for (uri, form) in [
        ("/apps/fresh/scale", "type=web&quantity=2"),
        ("/apps/fresh/config", "key=A&value=1"),
        ("/apps/fresh/rename", "new_name=mine"),
        ("/apps/fresh/destroy", "confirm=fresh"),
        ("/apps/fresh/jobs/job-1/restart", ""),
        ("/apps/fresh/restart", "type=web"),
        ("/nodes/node-a/drain", ""),
    ] {
        let body = format!("{form}&csrf={csrf}");
        let page = send(Arc::clone(&d), Request::post(uri), Some(&ann), &body).await;
        assert!(
            page.status == StatusCode::NOT_FOUND || page.status == StatusCode::FORBIDDEN,
            "{uri}: {}",
            page.status
        );
    }
    assert!(d.calls.lock().unwrap().is_empty(), "nothing changed");
    // Admins see every app and the Nodes link.
    let admin = send(Arc::clone(&d), Request::get("/"), Some(&session()), "").await;
    assert!(admin.body.contains("data-app=\"fresh\""), "{}", admin.body);
    assert!(admin.body.contains("href=\"/nodes\""), "{}", admin.body);
}

#[tokio::test]
async fn a_session_of_a_removed_user_ends() {
    let gone = Session::new("bob");
    let page = send(Arc::new(sample()), Request::get("/"), Some(&gone), "").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.headers[header::LOCATION], "/login");
    // The cookie goes too, so `/login` shows the form instead of sending the browser home.
    let cookie = page.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.starts_with("paas_session=;") && cookie.contains("Max-Age=0"),
        "{cookie}"
    );
}

#[tokio::test]
async fn a_limited_source_gets_429_with_retry_after() {
    let d = Arc::new(sample());
    let req = Request::post("/login").header(header::COOKIE, "paas_login_csrf=t0k");
    let page = send(d, req, None, "user=limited&password=x&csrf=t0k").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(page.headers[header::RETRY_AFTER], "42");
    assert!(
        page.body.contains("Too many failed logins"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn rename_destroy_and_job_controls_call_the_controller() {
    let d = Arc::new(sample());
    let s = session();
    let csrf = s.csrf.clone();
    let post = |uri: &'static str, form: String| {
        let (d, s) = (Arc::clone(&d), s.clone());
        async move { send(d, Request::post(uri), Some(&s), &form).await }
    };
    let page = get(sample(), "/apps/hello").await;
    for needle in [
        "id=\"rename-form\"",
        "id=\"destroy-confirm\"",
        "/apps/hello/jobs/job-1/restart",
        "/apps/hello/jobs/job-1/stop",
        "formaction=\"/apps/hello/restart\"",
    ] {
        assert!(page.body.contains(needle), "{needle}: {}", page.body);
    }
    let bad = post(
        "/apps/hello/rename",
        format!("new_name=Bad_Name&csrf={csrf}"),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let field = bad.body.find("id=\"rename-name\"").expect("field");
    let error = bad.body.find("id=\"rename-error\"").expect("error");
    assert!(error > field && error - field < 400, "{}", bad.body);
    assert!(bad.body.contains("value=\"Bad_Name\""), "{}", bad.body);
    let ok = post("/apps/hello/rename", format!("new_name=hi&csrf={csrf}")).await;
    assert_eq!(ok.headers[header::LOCATION], "/apps/hi");
    let wrong = post("/apps/hello/destroy", format!("confirm=hell&csrf={csrf}")).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    let field = wrong.body.find("id=\"destroy-confirm\"").expect("field");
    let error = wrong.body.find("id=\"destroy-error\"").expect("error");
    assert!(error > field && error - field < 400, "{}", wrong.body);
    let gone = post("/apps/hello/destroy", format!("confirm=hello&csrf={csrf}")).await;
    assert_eq!(gone.headers[header::LOCATION], "/");
    let restarted = post("/apps/hello/jobs/job-1/restart", format!("csrf={csrf}")).await;
    assert_eq!(restarted.headers[header::LOCATION], "/apps/hello#jobs");
    let missing = post("/apps/hello/jobs/job-9/restart", format!("csrf={csrf}")).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(
        missing.body.contains("id=\"jobs-error\""),
        "{}",
        missing.body
    );
    post("/apps/hello/jobs/job-1/stop", format!("csrf={csrf}")).await;
    post("/apps/hello/restart", format!("type=web&csrf={csrf}")).await;
    assert_eq!(
        d.calls.lock().unwrap().clone(),
        vec![
            "rename hello hi",
            "destroy hello",
            "restart hello job-1",
            "stop hello job-1",
            "restart hello type web",
        ]
    );
}
