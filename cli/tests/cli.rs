//! The built `paas` binary against a small fake controller (axum on 127.0.0.1:0, started
//! in the test). Each test gets its own HOME and working folder, so no real config file or
//! git repository is ever read.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use paas_api::{App, CreateApp, ErrorBody, Release};

const TOKEN: &str = "s3cret";

/// What the fake controller holds, and every path it was asked for.
#[derive(Default)]
struct Fake {
    apps: Mutex<Vec<App>>,
    requests: Mutex<Vec<String>>,
}

fn app(name: &str, current_release: Option<u32>, status: &str) -> App {
    App {
        name: name.to_string(),
        created_at: "2024-05-01T12:00:00Z".to_string(),
        current_release,
        web_url: format!("http://{name}.localhost:8000"),
        git_url: format!("http://127.0.0.1:8080/git/{name}.git"),
        status: status.to_string(),
    }
}

fn release(app: &str, version: u32) -> Release {
    Release {
        app: app.to_string(),
        version,
        image: format!("apps/{app}@sha256:{version:064}"),
        source_version: None,
        process_types: BTreeMap::new(),
        config_keys: vec![],
        description: format!("Deploy number {version}"),
        created_at: format!("2024-05-0{version}T10:00:00Z"),
        status: Some("succeeded".to_string()),
        status_reason: None,
    }
}

fn error(status: StatusCode, code: &str, message: String) -> Response {
    (status, Json(ErrorBody::new(code, message))).into_response()
}

/// Every route checks the bearer token first, as the real controller does; `Some` is the
/// 401 answer.
fn reject(fake: &Fake, headers: &HeaderMap, what: String) -> Option<Response> {
    fake.requests.lock().unwrap().push(what);
    let auth = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    if auth == Some(&format!("Bearer {TOKEN}")) {
        None
    } else {
        Some(error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "missing or wrong API token".to_string(),
        ))
    }
}

fn find(fake: &Fake, name: &str) -> Option<App> {
    let apps = fake.apps.lock().unwrap();
    apps.iter().find(|a| a.name == name).cloned()
}

fn not_found(name: &str) -> Response {
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        format!("no app named {name:?}; `paas apps` lists them"),
    )
}

async fn list_apps(State(fake): State<Arc<Fake>>, headers: HeaderMap) -> Response {
    if let Some(resp) = reject(&fake, &headers, "GET /v1/apps".into()) {
        return resp;
    }
    Json(fake.apps.lock().unwrap().clone()).into_response()
}

async fn create_app(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    Json(body): Json<CreateApp>,
) -> Response {
    if let Some(resp) = reject(&fake, &headers, "POST /v1/apps".into()) {
        return resp;
    }
    let created = app(&body.name, None, "idle");
    fake.apps.lock().unwrap().push(created.clone());
    (StatusCode::CREATED, Json(created)).into_response()
}

async fn show_app(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    UrlPath(name): UrlPath<String>,
) -> Response {
    if let Some(resp) = reject(&fake, &headers, format!("GET /v1/apps/{name}")) {
        return resp;
    }
    match find(&fake, &name) {
        Some(app) => Json(app).into_response(),
        None => not_found(&name),
    }
}

async fn list_releases(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    UrlPath(name): UrlPath<String>,
) -> Response {
    if let Some(resp) = reject(&fake, &headers, format!("GET /v1/apps/{name}/releases")) {
        return resp;
    }
    // `broken` (not in the apps list, so other tests do not see it) has two releases.
    let found =
        find(&fake, &name).or_else(|| (name == "broken").then(|| app(&name, Some(2), "crashed")));
    match found {
        None => not_found(&name),
        Some(app) => {
            let count = app.current_release.unwrap_or(0);
            let mut releases: Vec<Release> = (1..=count).map(|v| release(&name, v)).collect();
            if name == "broken" {
                // Its v2 could not start (what the controller's scheduler records).
                releases[1].status = Some("failed".into());
                releases[1].status_reason = Some(
                    "its web process crashed 3 times in a row (last: exited 127); see `paas \
                     logs`"
                        .into(),
                );
            }
            Json(releases).into_response()
        }
    }
}

/// `GET /v1/apps/{name}/releases/{version}`: that release of the list.
async fn one_release(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    UrlPath((name, version)): UrlPath<(String, u32)>,
) -> Response {
    let list = list_releases(State(fake), headers, UrlPath(name.clone())).await;
    let bytes = axum::body::to_bytes(list.into_body(), usize::MAX)
        .await
        .unwrap();
    let releases: Vec<Release> = serde_json::from_slice(&bytes).unwrap_or_default();
    match releases.into_iter().find(|r| r.version == version) {
        Some(r) => Json(r).into_response(),
        None => not_found(&name),
    }
}

/// `PATCH /v1/apps/{name}/config`: answers as the controller does when the app's config
/// would pass 64 KB (the CLI cannot know the total; it shows the controller's words).
async fn patch_config(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    UrlPath(name): UrlPath<String>,
) -> Response {
    if let Some(resp) = reject(&fake, &headers, format!("PATCH /v1/apps/{name}/config")) {
        return resp;
    }
    error(
        StatusCode::UNPROCESSABLE_ENTITY,
        paas_api::config_vars::TOO_LARGE,
        "setting C would make the app's config vars 92170 bytes (keys and values), over \
         the limit of 64 KB (65536 bytes): unset vars it no longer needs with `paas \
         config:unset`"
            .into(),
    )
}

/// `POST …/exec`: records the path and answers that there is no such job (the CLI's
/// choice of job is what the tests look at).
async fn exec_in_job(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    uri: axum::http::Uri,
) -> Response {
    if let Some(resp) = reject(&fake, &headers, format!("POST {}", uri.path())) {
        return resp;
    }
    error(
        StatusCode::NOT_FOUND,
        "not_found",
        "no running job with that id".to_string(),
    )
}

/// `DELETE /v1/nodes/{name}`: `busy` still has jobs (409), `old` is removed, others are
/// unknown.
async fn remove_node(
    State(fake): State<Arc<Fake>>,
    headers: HeaderMap,
    UrlPath(name): UrlPath<String>,
) -> Response {
    if let Some(resp) = reject(&fake, &headers, format!("DELETE /v1/nodes/{name}")) {
        return resp;
    }
    match name.as_str() {
        "busy" => error(
            StatusCode::CONFLICT,
            "conflict",
            "node busy still has 2 job(s): drain it first (`paas nodes:drain busy`)".into(),
        ),
        "old" => Json(serde_json::json!({"name": "old", "jobs_removed": 0})).into_response(),
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no node named {name}"),
        ),
    }
}

/// Starts the fake controller on its own thread and runtime; returns its URL.
fn start_fake() -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    fake.apps
        .lock()
        .unwrap()
        .extend([app("hello", Some(2), "up"), app("myapp", Some(2), "up")]);
    let router = Router::new()
        .route("/v1/apps", get(list_apps).post(create_app))
        .route("/v1/apps/{name}", get(show_app))
        .route("/v1/apps/{name}/releases", get(list_releases))
        .route("/v1/apps/{name}/releases/{version}", get(one_release))
        .route("/v1/apps/{name}/config", axum::routing::patch(patch_config))
        .route("/v1/nodes/{name}", axum::routing::delete(remove_node))
        .route("/v1/apps/{name}/exec", axum::routing::post(exec_in_job))
        .route(
            "/v1/apps/{name}/jobs/{job}/exec",
            axum::routing::post(exec_in_job),
        )
        .with_state(fake.clone());
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, router).await.unwrap();
        });
    });
    (url, fake)
}

/// A sandbox for one test: its own HOME (config file) and working folder.
struct Sandbox {
    home: tempfile::TempDir,
    work: tempfile::TempDir,
}

impl Sandbox {
    fn new() -> Self {
        Sandbox {
            home: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
        }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_paas"));
        cmd.args(args)
            .current_dir(self.work.path())
            .env("HOME", self.home.path())
            .env(
                "GIT_CEILING_DIRECTORIES",
                self.work.path().parent().unwrap(),
            )
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("PAAS_URL")
            .env_remove("PAAS_TOKEN");
        cmd
    }

    fn paas(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().unwrap())
    }
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Run {
            code: out.status.code().expect("exited, not killed"),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

fn git(dir: &Path, args: &[&str]) {
    let status = Command::new("git")
        .args(args)
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(status.success(), "git {args:?}");
}

#[test]
fn apps_prints_a_table() {
    let (url, _fake) = start_fake();
    let run = Sandbox::new().paas(&["apps", "--url", &url, "--token", TOKEN]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{run:?}");
    let header: Vec<&str> = lines[0].split_whitespace().collect();
    assert_eq!(header, ["NAME", "RELEASE", "STATUS", "URL"], "{run:?}");
    let row: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        row,
        ["hello", "v2", "up", "http://hello.localhost:8000"],
        "{run:?}"
    );
    // Columns line up: the URL starts at the same offset in every line.
    assert_eq!(lines[0].find("URL"), lines[1].find("http://"), "{run:?}");
}

#[test]
fn json_output_parses() {
    let (url, _fake) = start_fake();
    let sandbox = Sandbox::new();
    let run = sandbox.paas(&["--json", "apps", "--url", &url, "--token", TOKEN]);
    assert_eq!(run.code, 0, "{run:?}");
    let apps: Vec<App> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(apps.len(), 2);
    assert_eq!(apps[0].name, "hello");

    let run = sandbox.paas(&[
        "apps:info",
        "-a",
        "hello",
        "--json",
        "--url",
        &url,
        "--token",
        TOKEN,
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let app: App = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(app.current_release, Some(2));

    let run = sandbox.paas(&[
        "releases", "-a", "hello", "--json", "--url", &url, "--token", TOKEN,
    ]);
    assert_eq!(run.code, 0, "{run:?}");
    let releases: Vec<Release> = serde_json::from_str(&run.stdout).unwrap();
    assert_eq!(releases.len(), 2);
}

#[test]
fn create_with_a_bad_name_fails_before_calling_the_controller() {
    let (url, fake) = start_fake();
    let run = Sandbox::new().paas(&["apps:create", "My_App", "--url", &url, "--token", TOKEN]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.starts_with("error: invalid app name \"My_App\""),
        "{run:?}"
    );
    assert!(run.stderr.contains("lowercase letters"), "{run:?}");
    assert!(fake.requests.lock().unwrap().is_empty());
}

#[test]
fn create_then_list() {
    let (url, _fake) = start_fake();
    let sandbox = Sandbox::new();
    let run = sandbox.paas(&["apps:create", "new-app", "--url", &url, "--token", TOKEN]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("Created app new-app"), "{run:?}");
    assert!(
        run.stdout
            .contains("git remote add paas http://127.0.0.1:8080/git/new-app.git"),
        "{run:?}"
    );
    let run = sandbox.paas(&["apps", "--url", &url, "--token", TOKEN]);
    assert!(
        run.stdout
            .lines()
            .any(|l| l.starts_with("new-app ") && l.contains(" - ")),
        "{run:?}"
    );
}

/// A 404 exits with 4 (not found) and prints the server's message.
#[test]
fn unknown_app_shows_the_server_message() {
    let (url, _fake) = start_fake();
    let run = Sandbox::new().paas(&["apps:info", "-a", "nope", "--url", &url, "--token", TOKEN]);
    assert_eq!(run.code, 4, "{run:?}");
    assert_eq!(
        run.stderr.trim_end(),
        "error: no app named \"nope\"; `paas apps` lists them",
        "{run:?}"
    );
    assert!(run.stdout.is_empty(), "{run:?}");
}

#[test]
fn missing_or_wrong_token_exits_3() {
    let (url, fake) = start_fake();
    let sandbox = Sandbox::new();
    let run = sandbox.paas(&["apps", "--url", &url]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("paas login"), "{run:?}");
    assert!(run.stderr.contains("PAAS_TOKEN"), "{run:?}");
    assert_eq!(
        fake.requests.lock().unwrap().len(),
        1,
        "the controller was asked"
    );

    let run = sandbox.paas(&["apps", "--url", &url, "--token", "wrong"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stderr.contains("refused the token"), "{run:?}");
    assert!(run.stderr.contains("missing or wrong API token"), "{run:?}");
}

#[test]
fn unreachable_controller_exits_2_and_names_the_url() {
    // A port that was free a moment ago: nothing listens there.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let run = Sandbox::new()
        .command(&["apps"])
        .env("PAAS_URL", &url)
        .env("PAAS_TOKEN", TOKEN)
        .output()
        .map(Run::from)
        .unwrap();
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains(&url), "{run:?}");
    assert!(run.stderr.contains("PAAS_URL"), "{run:?}");
    assert!(run.stderr.contains("--url"), "{run:?}");
}

#[test]
fn app_comes_from_the_paas_git_remote() {
    let (url, fake) = start_fake();
    let sandbox = Sandbox::new();
    git(sandbox.work.path(), &["init", "-q"]);
    git(
        sandbox.work.path(),
        &["remote", "add", "paas", "http://x/git/myapp.git"],
    );
    let run = sandbox
        .command(&["releases"])
        .env("PAAS_URL", &url)
        .env("PAAS_TOKEN", TOKEN)
        .output()
        .map(Run::from)
        .unwrap();
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        ["VERSION", "STATUS", "DESCRIPTION", "CREATED"]
    );
    assert!(
        lines[1].starts_with("v2 ") && lines[1].contains("Deploy number 2"),
        "{run:?}"
    );
    assert!(lines[2].starts_with("v1 "), "newest first: {run:?}");
    assert!(fake
        .requests
        .lock()
        .unwrap()
        .contains(&"GET /v1/apps/myapp/releases".to_string()));

    // -a wins over the remote.
    let run = sandbox.paas(&["apps:info", "-a", "hello", "--url", &url, "--token", TOKEN]);
    assert!(run.stdout.starts_with("=== hello\n"), "{run:?}");
}

#[test]
fn no_app_and_no_remote_is_a_usage_error() {
    let (url, fake) = start_fake();
    let run = Sandbox::new().paas(&["releases", "--url", &url, "--token", TOKEN]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(
        run.stderr.trim_end(),
        "error: no app given: use -a APP or run inside a folder whose `paas` git remote points \
         at the app",
        "{run:?}"
    );
    assert!(fake.requests.lock().unwrap().is_empty());
}

#[test]
fn login_checks_the_token_and_saves_a_private_config() {
    use std::os::unix::fs::PermissionsExt;

    let (url, _fake) = start_fake();
    let sandbox = Sandbox::new();
    let config = sandbox.home.path().join(".config/paas/config.json");

    let run = sandbox.paas(&["login", "--url", &url, "--token", "wrong"]);
    assert_eq!(run.code, 3, "{run:?}");
    assert!(!config.exists(), "a refused token is not saved");

    let run = sandbox.paas(&["login", "--url", &url, "--token", TOKEN]);
    assert_eq!(run.code, 0, "{run:?}");
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&config).unwrap()).unwrap();
    assert_eq!(saved, serde_json::json!({"url": url, "token": TOKEN}));
    let mode = std::fs::metadata(&config).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);

    // Later commands need neither flags nor environment.
    let run = sandbox.paas(&["apps"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("hello"), "{run:?}");
}

#[test]
fn usage_errors_exit_1_not_clap_s_2() {
    let run = Sandbox::new().paas(&["apps:info", "--no-such-flag"]);
    assert_eq!(run.code, 1, "{run:?}");
    let run = Sandbox::new().paas(&["--help"]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("apps:create"), "{run:?}");
}

#[test]
fn ps_exec_takes_the_job_as_an_argument_or_with_job() {
    let (url, fake) = start_fake();
    // The global flags go first: everything after -- is the command.
    let exec = |args: &[&str]| {
        let mut all: Vec<&str> = vec!["--url", &url, "--token", TOKEN, "ps:exec", "-a", "hello"];
        all.extend_from_slice(args);
        Sandbox::new().paas(&all)
    };
    let last = |fake: &Fake| fake.requests.lock().unwrap().last().cloned();

    let run = exec(&["web-1a2b", "--", "ls", "-l"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("no running job"), "{run:?}");
    assert_eq!(
        last(&fake).as_deref(),
        Some("POST /v1/apps/hello/jobs/web-1a2b/exec")
    );

    let run = exec(&["--job", "web-3c4d", "--", "true"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert_eq!(
        last(&fake).as_deref(),
        Some("POST /v1/apps/hello/jobs/web-3c4d/exec")
    );

    // No job: the app's first web job; a dashed command after -- is not taken for a job.
    let run = exec(&["--", "-x"]);
    assert_eq!(run.code, 4, "{run:?}");
    assert_eq!(last(&fake).as_deref(), Some("POST /v1/apps/hello/exec"));

    // Usage errors, before any request: both forms at once, or no command.
    let before = fake.requests.lock().unwrap().len();
    let run = exec(&["web-1", "--job", "web-2", "--", "true"]);
    assert_eq!(run.code, 1, "{run:?}");
    let run = exec(&["web-1"]);
    assert_eq!(run.code, 1, "{run:?}");
    assert!(run.stderr.contains("after --"), "{run:?}");
    assert_eq!(fake.requests.lock().unwrap().len(), before);
}

#[test]
fn nodes_remove_deletes_the_node_or_shows_why_not() {
    let (url, fake) = start_fake();
    let sandbox = Sandbox::new();
    let run = sandbox.paas(&["nodes:remove", "old", "--url", &url, "--token", TOKEN]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("Removed old"), "{run:?}");
    let run = sandbox.paas(&["nodes:remove", "busy", "--url", &url, "--token", TOKEN]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(run.stderr.contains("paas nodes:drain busy"), "{run:?}");
    assert_eq!(
        fake.requests.lock().unwrap()[..],
        ["DELETE /v1/nodes/old", "DELETE /v1/nodes/busy"]
    );
}

#[test]
fn config_set_refuses_values_over_32_kb_and_shows_the_controllers_limit() {
    let (url, fake) = start_fake();
    let sandbox = Sandbox::new();
    let big = format!("BIG={}", "x".repeat(40_000));
    let run = sandbox.paas(&[
        "config:set",
        &big,
        "-a",
        "hello",
        "--url",
        &url,
        "--token",
        TOKEN,
    ]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr
            .contains("BIG is 40000 bytes, over the limit of 32 KB (32768 bytes)"),
        "{run:?}"
    );
    assert!(
        !fake
            .requests
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.starts_with("PATCH")),
        "nothing was sent"
    );
    let run = sandbox.paas(&[
        "config:set",
        "C=small",
        "-a",
        "hello",
        "--url",
        &url,
        "--token",
        TOKEN,
    ]);
    assert_ne!(run.code, 0, "{run:?}");
    assert!(
        run.stderr.contains("over the limit of 64 KB") && run.stderr.contains("config:unset"),
        "{run:?}"
    );
}

#[test]
fn releases_show_which_failed_and_why() {
    let (url, _fake) = start_fake();
    let sandbox = Sandbox::new();
    let run = sandbox.paas(&["releases", "-a", "broken", "--url", &url, "--token", TOKEN]);
    assert_eq!(run.code, 0, "{run:?}");
    let lines: Vec<&str> = run.stdout.lines().collect();
    let v2: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(&v2[..2], ["v2", "failed"], "{run:?}");
    let v1: Vec<&str> = lines[2].split_whitespace().collect();
    assert_eq!(&v1[..2], ["v1", "succeeded"], "{run:?}");
    assert!(
        run.stdout
            .contains("v2 failed: its web process crashed 3 times in a row (last: exited 127)"),
        "{run:?}"
    );
    let run = sandbox.paas(&[
        "releases:info",
        "v2",
        "-a",
        "broken",
        "--url",
        &url,
        "--token",
        TOKEN,
    ]);
    assert!(
        run.stdout.contains("failed") && run.stdout.contains("crashed 3 times"),
        "{run:?}"
    );
}
