//! The agent API without root: auth, error shapes, validation, and a failed pull turning
//! the job `crashed` with a reason. Uses `tower::ServiceExt::oneshot` (no socket) except
//! for the fake registry.

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{config, unique_names, FakeRegistry};
use paas_node_agent::{app, Agent};
use tower::ServiceExt;

const TOKEN: &str = "s3cret-node-token";

fn agent(dir: &std::path::Path) -> std::sync::Arc<Agent> {
    Agent::open(config(dir, TOKEN, &unique_names())).expect("open agent")
}

async fn call(
    agent: &std::sync::Arc<Agent>,
    method: &str,
    uri: &str,
    token: Option<&str>,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    let resp = app(agent.clone())
        .oneshot(req.body(Body::from(body.to_string())).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
    (status, json)
}

#[tokio::test]
async fn every_route_needs_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path());
    for (method, uri) in [
        ("GET", "/v1/health"),
        ("GET", "/v1/jobs"),
        ("POST", "/v1/jobs"),
        ("GET", "/v1/jobs/x"),
        ("GET", "/v1/jobs/x/logs"),
        ("POST", "/v1/jobs/x/stop"),
        ("DELETE", "/v1/jobs/x"),
        ("GET", "/nope"),
    ] {
        for token in [None, Some("wrong"), Some("s3cret-node-tokeN"), Some("")] {
            let (status, body) = call(&agent, method, uri, token, "").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri} {token:?}");
            assert_eq!(body["error"]["code"], "unauthorized", "{body}");
            assert!(body["error"]["message"].as_str().unwrap().contains("token"));
        }
    }
    let (status, body) = call(&agent, "GET", "/v1/health", Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!({"name": "test-node"}));
}

#[tokio::test]
async fn unknown_jobs_and_routes_are_404_error_bodies() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path());
    for (method, uri) in [
        ("GET", "/v1/jobs/nope"),
        ("GET", "/v1/jobs/nope/logs?follow=true"),
        ("POST", "/v1/jobs/nope/stop"),
        ("DELETE", "/v1/jobs/nope"),
        ("GET", "/v2/whatever"),
    ] {
        let (status, body) = call(&agent, method, uri, Some(TOKEN), "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method} {uri}");
        let obj = body["error"].as_object().expect("error object");
        assert_eq!(obj.len(), 2, "{body}");
        assert_eq!(obj["code"], "not_found");
        assert!(!obj["message"].as_str().unwrap().is_empty());
    }
    let (status, body) = call(&agent, "GET", "/v1/jobs", Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, serde_json::json!([]));
}

#[tokio::test]
async fn bad_specs_are_400_validation_errors() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path());
    let image = r#""image":{"registry":"http://127.0.0.1:9","repository":"stacks/tiny","reference":"latest"}"#;
    for (body, needle) in [
        ("not json".to_string(), "job spec"),
        (format!(r#"{{"id":"Bad_Id",{image}}}"#), "job id"),
        (format!(r#"{{"id":"j1",{image},"port":0}}"#), "port"),
        (
            format!(r#"{{"id":"j1",{image},"inputs":[{{"url":"http://x/y","path":"../app"}}]}}"#),
            "absolute",
        ),
        (
            format!(
                r#"{{"id":"j1",{image},"output":{{"path":"/app","registry":"http://r","repository":"apps/a"}}}}"#
            ),
            "output.path",
        ),
    ] {
        let (status, resp) = call(&agent, "POST", "/v1/jobs", Some(TOKEN), &body).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {resp}");
        assert_eq!(resp["error"]["code"], "validation_error");
        let msg = resp["error"]["message"].as_str().unwrap();
        assert!(msg.contains(needle), "{msg:?} should mention {needle:?}");
    }
    // Nothing was recorded for rejected specs.
    let (_, list) = call(&agent, "GET", "/v1/jobs", Some(TOKEN), "").await;
    assert_eq!(list, serde_json::json!([]));
}

#[tokio::test]
async fn a_failed_pull_crashes_the_job_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let agent = agent(dir.path());
    // The registry wants another token: every pull gets 401.
    let registry = FakeRegistry::start("other-token").await;
    let body = serde_json::json!({
        "id": "build-1",
        "labels": {"app": "hello"},
        "image": {"registry": registry.url, "repository": "stacks/tiny", "reference": "latest"},
    })
    .to_string();
    let (status, resp) = call(&agent, "POST", "/v1/jobs", Some(TOKEN), &body).await;
    assert_eq!(status, StatusCode::BAD_GATEWAY, "{resp}");
    let msg = resp["error"]["message"].as_str().unwrap();
    assert!(
        msg.contains("pull stacks/tiny@latest: 401 Unauthorized"),
        "{msg}"
    );

    let (status, job) = call(&agent, "GET", "/v1/jobs/build-1", Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(job["state"], "crashed");
    assert_eq!(job["labels"]["app"], "hello");
    assert!(job["finished_at"].is_string());
    let reason = job["exit"]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("failed to start: pull stacks/tiny@latest: 401"),
        "{reason}"
    );
    // Persisted, and the same id again is a conflict.
    let on_disk = std::fs::read_to_string(dir.path().join("jobs/build-1/status.json")).unwrap();
    assert!(on_disk.contains("crashed"));
    let (status, resp) = call(&agent, "POST", "/v1/jobs", Some(TOKEN), &body).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(resp["error"]["code"], "conflict");
    // Logs of a final job end at once (empty here).
    let resp = app(agent.clone())
        .oneshot(
            Request::get("/v1/jobs/build-1/logs?follow=true")
                .header("authorization", format!("Bearer {TOKEN}"))
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    assert!(bytes.is_empty());
}

#[tokio::test]
async fn jobs_are_reloaded_from_the_state_dir() {
    let dir = tempfile::tempdir().unwrap();
    let registry = FakeRegistry::start("other-token").await;
    {
        let agent = agent(dir.path());
        let body = serde_json::json!({
            "id": "j2",
            "image": {"registry": registry.url, "repository": "a", "reference": "latest"},
        })
        .to_string();
        let (status, _) = call(&agent, "POST", "/v1/jobs", Some(TOKEN), &body).await;
        assert_eq!(status, StatusCode::BAD_GATEWAY);
    }
    let agent = agent(dir.path());
    let (status, job) = call(&agent, "GET", "/v1/jobs/j2", Some(TOKEN), "").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(job["state"], "crashed");
}

#[tokio::test]
async fn one_agent_per_state_dir() {
    let dir = tempfile::tempdir().unwrap();
    let _first = agent(dir.path());
    let err = Agent::open(config(dir.path(), TOKEN, &unique_names())).unwrap_err();
    assert!(err.to_string().contains("another paas-agent"), "{err}");
}

/// A handover: the second agent waits for the first to let go of the state dir (instead
/// of failing at once and being restarted in a loop), then names itself in agent.pid.
#[tokio::test]
async fn a_second_agent_waits_for_the_lock_then_takes_over() {
    let dir = tempfile::tempdir().unwrap();
    let first = agent(dir.path());
    let pid_file = dir.path().join(paas_node_agent::agent::PID_FILE);
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap().trim(),
        std::process::id().to_string()
    );
    std::fs::remove_file(&pid_file).unwrap();
    let letting_go = std::thread::spawn(move || {
        std::thread::sleep(std::time::Duration::from_millis(300));
        drop(first);
    });
    let mut cfg = config(dir.path(), TOKEN, &unique_names());
    cfg.lock_wait = std::time::Duration::from_secs(20);
    let second = Agent::open(cfg).expect("the second agent takes over once the first is gone");
    letting_go.join().unwrap();
    assert!(pid_file.exists(), "the new holder wrote agent.pid");
    drop(second);
}

/// A fake controller whose heartbeat answer says (or not) that it stored the credential.
async fn fake_controller(ack: bool) -> String {
    use axum::routing::post;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/v1/nodes/heartbeat",
        post(move || async move {
            let mut resp = axum::response::IntoResponse::into_response(StatusCode::NO_CONTENT);
            if ack {
                resp.headers_mut().insert(
                    paas_api::AGENT_TOKEN_STORED,
                    axum::http::HeaderValue::from_static("1"),
                );
            }
            resp
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    url
}

#[tokio::test]
async fn a_refused_heartbeat_says_why() {
    use axum::routing::post;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let controller = format!("http://{}", listener.local_addr().unwrap());
    let app = axum::Router::new().route(
        "/v1/nodes/heartbeat",
        post(|| async {
            (
                StatusCode::FORBIDDEN,
                axum::Json(paas_api::ErrorBody::new(
                    "forbidden",
                    "node n1 is registered with another agent credential: an admin removes it",
                )),
            )
        }),
    );
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let dir = tempfile::tempdir().unwrap();
    let a = agent(dir.path());
    let err = paas_node_agent::heartbeat::send(&a, &controller, Vec::new())
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("403") && err.contains("registered with another agent credential"),
        "{err}"
    );
    assert!(!a.credential.is_registered());
}

#[tokio::test]
async fn ac4_registered_agent_accepts_only_its_own_credential() {
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let a = agent(dir_a.path());
    let b = agent(dir_b.path());
    let (own_a, own_b) = (
        a.credential.token().to_string(),
        b.credential.token().to_string(),
    );
    assert_ne!(own_a, own_b);
    assert!(own_a.starts_with("paasagent_"));
    // Not registered yet: the bootstrap token and the own credential work.
    for token in [TOKEN, own_a.as_str()] {
        assert_eq!(
            call(&a, "GET", "/v1/jobs", Some(token), "").await.0,
            StatusCode::OK
        );
    }
    // A controller that does not say it stored the credential registers nothing.
    let silent = fake_controller(false).await;
    paas_node_agent::heartbeat::send(&a, &silent, Vec::new())
        .await
        .unwrap();
    assert!(!a.credential.is_registered());
    assert_eq!(
        call(&a, "GET", "/v1/jobs", Some(TOKEN), "").await.0,
        StatusCode::OK
    );

    let controller = fake_controller(true).await;
    for agent in [&a, &b] {
        paas_node_agent::heartbeat::send(agent, &controller, Vec::new())
            .await
            .unwrap();
        assert!(agent.credential.is_registered());
    }
    for (method, uri) in [
        ("GET", "/v1/health"),
        ("GET", "/v1/jobs"),
        ("POST", "/v1/jobs"),
        ("DELETE", "/v1/jobs/x"),
        ("POST", "/v1/jobs/x/exec"),
    ] {
        // The bootstrap token and the other node's credential are refused on both agents.
        for (agent, other) in [(&a, &own_b), (&b, &own_a)] {
            for token in [TOKEN, other.as_str()] {
                let (status, body) = call(agent, method, uri, Some(token), "").await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{method} {uri}");
                assert!(
                    body["error"]["message"]
                        .as_str()
                        .unwrap()
                        .contains("own credential"),
                    "{body}"
                );
            }
        }
    }
    assert_eq!(
        call(&a, "GET", "/v1/health", Some(&own_a), "").await.0,
        StatusCode::OK
    );
    assert_eq!(
        call(&b, "GET", "/v1/health", Some(&own_b), "").await.0,
        StatusCode::OK
    );

    // A restarted agent keeps its credential and stays registered.
    drop(a);
    let a = agent(dir_a.path());
    assert_eq!(a.credential.token(), own_a);
    assert_eq!(
        call(&a, "GET", "/v1/jobs", Some(TOKEN), "").await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        call(&a, "GET", "/v1/jobs", Some(&own_a), "").await.0,
        StatusCode::OK
    );
}
