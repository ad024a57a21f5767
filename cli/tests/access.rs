//! `paas login --user --password-stdin`, `whoami`, `tokens:create`, `access:add` and
//! `users:add` against a small fake controller: the password goes in on stdin, the token
//! that comes back is saved and used, and each command sends what the API expects.

use std::io::Write as _;
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};

const TOKEN: &str = "paas_0123456789abcdef";

#[derive(Default)]
struct Fake {
    bodies: Mutex<Vec<(String, Value)>>,
}

fn authed(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

fn token_json(user: &str) -> Value {
    json!({"token": TOKEN, "id": "abc123", "user": user, "name": "cli login",
           "created_at": "2026-01-01T00:00:00Z", "expires_at": null, "last_used_at": null})
}

async fn login(State(f): State<Arc<Fake>>, Json(body): Json<Value>) -> Response {
    f.bodies
        .lock()
        .unwrap()
        .push(("login".into(), body.clone()));
    if body["user"] == "ann" && body["password"] == "ann-password" {
        (StatusCode::CREATED, Json(token_json("ann"))).into_response()
    } else {
        let err =
            json!({"error": {"code": "unauthorized", "message": "wrong user name or password"}});
        (StatusCode::UNAUTHORIZED, Json(err)).into_response()
    }
}

async fn whoami(headers: HeaderMap) -> Response {
    if !authed(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    Json(json!({"name": "ann", "role": "member", "via": "api-token"})).into_response()
}

async fn create_token(
    State(f): State<Arc<Fake>>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Response {
    if !authed(&headers) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    f.bodies.lock().unwrap().push(("token".into(), body));
    (StatusCode::CREATED, Json(token_json("ann"))).into_response()
}

async fn add_collab(
    State(f): State<Arc<Fake>>,
    UrlPath(app): UrlPath<String>,
    Json(body): Json<Value>,
) -> Response {
    f.bodies
        .lock()
        .unwrap()
        .push((format!("collab {app}"), body));
    (StatusCode::CREATED, Json(json!(["ann", "bob"]))).into_response()
}

async fn add_user(State(f): State<Arc<Fake>>, Json(body): Json<Value>) -> Response {
    f.bodies.lock().unwrap().push(("user".into(), body.clone()));
    let user = json!({"name": body["name"], "role": body["role"], "created_at": "x"});
    (StatusCode::CREATED, Json(user)).into_response()
}

async fn show_api_access(UrlPath(app): UrlPath<String>) -> Response {
    Json(json!({"app": app, "enabled": false})).into_response()
}

async fn set_api_access(
    State(f): State<Arc<Fake>>,
    UrlPath(app): UrlPath<String>,
    Json(body): Json<Value>,
) -> Response {
    f.bodies
        .lock()
        .unwrap()
        .push((format!("api-access {app}"), body.clone()));
    Json(json!({"app": app, "enabled": body["enabled"]})).into_response()
}

fn start_fake() -> (String, Arc<Fake>) {
    let fake = Arc::new(Fake::default());
    let router = Router::new()
        .route("/v1/login", post(login))
        .route("/v1/whoami", get(whoami))
        .route("/v1/tokens", post(create_token))
        .route("/v1/users", post(add_user))
        .route("/v1/apps/{app}/collaborators", post(add_collab))
        .route(
            "/v1/apps/{app}/api-access",
            get(show_api_access).patch(set_api_access),
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

fn paas(home: &std::path::Path, args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_paas"))
        .args(args)
        .current_dir(home)
        .env("HOME", home)
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("PAAS_URL")
        .env_remove("PAAS_TOKEN")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

#[test]
fn password_login_saves_a_token_that_later_commands_use() {
    let (url, fake) = start_fake();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();

    let (code, out, err) = paas(
        h,
        &["login", "--url", &url, "--user", "ann", "--password-stdin"],
        "nope\n",
    );
    assert_eq!(code, 1, "{out}{err}");
    assert!(err.contains("wrong user name or password"), "{err}");

    let (code, out, err) = paas(
        h,
        &["login", "--url", &url, "--user", "ann", "--password-stdin"],
        "ann-password\n",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("as ann"), "{out}");
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(h.join(".config/paas/config.json")).unwrap())
            .unwrap();
    assert_eq!(saved["token"], TOKEN);

    let (code, out, err) = paas(h, &["whoami"], "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("ann (member, via api-token)"), "{out}");

    let (code, out, err) = paas(
        h,
        &["tokens:create", "--name", "ci", "--expires", "30d"],
        "",
    );
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.starts_with(TOKEN),
        "the token comes first, alone on its line: {out}"
    );

    let (code, out, err) = paas(h, &["access:add", "-a", "myapp", "bob"], "");
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = paas(
        h,
        &["users:add", "bob", "--role", "admin", "--password-stdin"],
        "bob-password\n",
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, _, err) = paas(h, &["tokens:create", "--expires", "3w"], "");
    assert_eq!(code, 1, "{err}");

    let bodies = fake.bodies.lock().unwrap().clone();
    assert!(bodies.contains(&(
        "token".into(),
        json!({"name": "ci", "expires_in_secs": 30 * 86400, "user": null})
    )));
    assert!(bodies.contains(&("collab myapp".into(), json!({"user": "bob"}))));
    assert!(bodies.contains(&(
        "user".into(),
        json!({"name": "bob", "role": "admin", "password": "bob-password"})
    )));
}

#[test]
fn ac4_apps_access_api_shows_and_sets_the_switch() {
    let (url, fake) = start_fake();
    let home = tempfile::tempdir().unwrap();
    let h = home.path();
    let (code, out, err) = paas(
        h,
        &["login", "--url", &url, "--user", "ann", "--password-stdin"],
        "ann-password\n",
    );
    assert_eq!(code, 0, "{out}{err}");
    let (code, out, err) = paas(h, &["apps:access-api", "-a", "web"], "");
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(out, "web: API access off\n");
    let (code, out, err) = paas(h, &["apps:access-api", "-a", "web", "on"], "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("may now reach"), "{out}");
    let (code, out, err) = paas(h, &["apps:access-api", "-a", "web", "off"], "");
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("can no longer reach"), "{out}");
    let (code, _, err) = paas(h, &["apps:access-api", "-a", "web", "maybe"], "");
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("possible values: on, off"), "{err}");
    let bodies = fake.bodies.lock().unwrap().clone();
    assert!(bodies.contains(&("api-access web".into(), json!({"enabled": true}))));
    assert!(bodies.contains(&("api-access web".into(), json!({"enabled": false}))));
}
