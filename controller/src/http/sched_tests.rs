//! Drain and logs endpoints through `tower::ServiceExt::oneshot` (no agents: the log
//! sources are the build log; jobs are covered by the e2e tests).

use std::sync::Arc;

use axum::body::Body;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::config::Settings;
use crate::state::Controller;

async fn controller() -> (tempfile::TempDir, Arc<Controller>) {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::new(
        dir.path().to_path_buf(),
        "127.0.0.1:8080".parse().unwrap(),
        8000,
        "localhost",
    )
    .unwrap();
    let c = Controller::open(settings).await.unwrap();
    (dir, c)
}

async fn send(c: &Arc<Controller>, req: http::request::Builder) -> (StatusCode, String, String) {
    let req = req
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", c.tokens.admin()),
        )
        .body(Body::empty())
        .unwrap();
    let resp = crate::http::app(Arc::clone(c)).oneshot(req).await.unwrap();
    let status = resp.status();
    let ctype = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, ctype, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn drain_marks_a_known_node_and_refuses_an_unknown_one() {
    let (_d, c) = controller().await;
    c.store
        .upsert_node("n1", "http://127.0.0.1:1", 1 << 30, crate::util::unix_ms())
        .await
        .unwrap();
    let (status, _, body) = send(&c, Request::post("/v1/nodes/n1/drain")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(r#""draining":true"#), "{body}");
    assert!(c.store.draining_nodes().await.unwrap().contains("n1"));
    let (_, _, body) = send(&c, Request::get("/v1/nodes")).await;
    assert!(body.contains(r#""state":"draining""#), "{body}");

    let (status, _, _) = send(&c, Request::delete("/v1/nodes/n1/drain")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(c.store.draining_nodes().await.unwrap().is_empty());

    let (status, _, body) = send(&c, Request::post("/v1/nodes/nope/drain")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("no node named nope"), "{body}");
}

#[tokio::test]
async fn logs_show_the_latest_build_in_heroku_format_as_text_or_events() {
    let (_d, c) = controller().await;
    c.store.create_app("hello").await.unwrap();
    c.store.create_build("b1", "hello", None).await.unwrap();
    c.store
        .finish_build(
            "b1",
            "succeeded",
            None,
            "-----> Building\n-----> Releasing v1\n",
        )
        .await
        .unwrap();

    let (status, ctype, body) = send(&c, Request::get("/v1/apps/hello/logs?lines=1")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("text/plain"), "{ctype}");
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 1, "{body}");
    assert!(
        lines[0].ends_with(" app[build]: -----> Releasing v1"),
        "{body}"
    );
    assert!(lines[0].starts_with("20"), "a timestamp first: {body}");

    let (status, ctype, body) = send(
        &c,
        Request::get("/v1/apps/hello/logs").header(header::ACCEPT, "text/event-stream"),
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(ctype.starts_with("text/event-stream"), "{ctype}");
    assert!(body.contains("data: "), "{body}");
    assert!(body.contains("app[build]: -----> Building"), "{body}");

    let (status, _, _) = send(&c, Request::get("/v1/apps/nope/logs")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn nodes_get_distinct_subnets_that_stay_theirs() {
    let (_d, c) = controller().await;
    let ask = |name: &'static str| {
        let c = Arc::clone(&c);
        async move {
            let req = Request::post(format!("/v1/nodes/{name}/subnet"))
                .header(header::AUTHORIZATION, format!("Bearer {}", c.tokens.node()))
                .body(Body::empty())
                .unwrap();
            let resp = crate::http::app(Arc::clone(&c)).oneshot(req).await.unwrap();
            let status = resp.status();
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
            (status, v["subnet"].as_str().unwrap_or_default().to_string())
        }
    };
    assert_eq!(ask("n1").await, (StatusCode::OK, "10.89.0.0/24".into()));
    assert_eq!(ask("n2").await, (StatusCode::OK, "10.89.1.0/24".into()));
    assert_eq!(ask("n1").await, (StatusCode::OK, "10.89.0.0/24".into()));
}

#[test]
fn cluster_cidrs_split_into_24s() {
    use crate::http::nodes::subnet_blocks;
    assert_eq!(
        subnet_blocks("10.214.0.0/23").unwrap(),
        ["10.214.0.0/24", "10.214.1.0/24"]
    );
    assert_eq!(subnet_blocks("10.89.7.9/24").unwrap(), ["10.89.7.0/24"]);
    assert_eq!(subnet_blocks("10.89.0.0/16").unwrap().len(), 256);
    assert!(subnet_blocks("10.89.0.0/25").is_err());
    assert!(subnet_blocks("nope").is_err());
}

#[tokio::test]
async fn logs_keep_the_output_of_removed_jobs() {
    let (_d, c) = controller().await;
    c.store.create_app("hello").await.unwrap();
    let now = crate::util::now_rfc3339();
    c.store
        .insert_job(&crate::store::JobRow {
            id: "hello-v1-0000abcd".into(),
            app: "hello".into(),
            release: 1,
            process_type: "worker".into(),
            node: "n1".into(),
            state: crate::store::job_state::REMOVED.into(),
            addr: None,
            exit_reason: Some("exited 3".into()),
            created_at: now.clone(),
            updated_at: now,
        })
        .await
        .unwrap();
    let kept = crate::store::last_lines("a\nb\nTraceback\nboom\n", 2);
    assert_eq!(kept, "Traceback\nboom");
    c.store
        .set_job_log("hello-v1-0000abcd", &kept)
        .await
        .unwrap();

    let (status, _, body) = send(&c, Request::get("/v1/apps/hello/logs")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains(" app[worker]: Traceback\n"), "{body}");
    assert!(body.contains(" app[worker]: boom\n"), "{body}");
    let (_, _, body) = send(&c, Request::get("/v1/apps/hello/logs?ps=web")).await;
    assert!(
        !body.contains("boom"),
        "--ps web leaves the worker out: {body}"
    );
}
