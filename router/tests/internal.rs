//! The router process's internal endpoint (`paas_router::internal`) against real sockets:
//! the router and a tiny axum backend on 127.0.0.1, the endpoint asked with and without
//! the token for an app's access history, a follow of its live lines, and a drain wait
//! that ends only when the backend has left the table and its held request finished.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use futures_util::StreamExt;
use paas_router::{serve, Backend, Route, RouteTable};

const TOKEN: &str = "node-token-for-tests";

/// A backend answering `/` with `ok` and `/slow` once `release` is notified.
async fn start_backend(release: Arc<Notify>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = axum::Router::new()
        .route("/", axum::routing::get(|| async { "ok" }))
        .route(
            "/slow",
            axum::routing::get(move || async move {
                release.notified().await;
                "slow ok"
            }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

async fn start(table: &RouteTable) -> (SocketAddr, String) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let router = listener.local_addr().unwrap();
    let t = table.clone();
    tokio::spawn(async move { serve(listener, t).await.unwrap() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let internal = format!("http://{}", listener.local_addr().unwrap());
    let t = table.clone();
    tokio::spawn(async move {
        paas_router::internal::serve(listener, t, TOKEN.into())
            .await
            .unwrap()
    });
    (router, internal)
}

fn route(addr: &str) -> Route {
    Route {
        app: "hello".into(),
        hosts: vec!["hello.localhost".into()],
        backends: vec![Backend {
            addr: addr.into(),
            job_id: "hello-web-1".into(),
        }],
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn get_app(router: SocketAddr, path: &str) -> String {
    client()
        .get(format!("http://{router}{path}"))
        .header("host", "hello.localhost")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn access_lines_are_served_to_the_token_only_then_followed() {
    let table = RouteTable::new();
    let backend = start_backend(Arc::default()).await;
    table.replace(vec![route(&backend)]);
    let (router, internal) = start(&table).await;
    assert_eq!(get_app(router, "/first").await, "");
    let url = format!("{internal}/internal/access/hello?follow=false");

    // Without the token, or with another, nothing.
    for token in [None, Some("wrong")] {
        let mut req = client().get(&url);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        assert_eq!(req.send().await.unwrap().status(), 401);
    }

    // The history: one `H <µs> <line>` per request, then `E`.
    let text = client()
        .get(&url)
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 2, "{text}");
    assert!(lines[0].starts_with("H "), "{text}");
    assert!(lines[0].contains("path=\"/first\""), "{text}");
    assert!(lines[0].contains("job=hello-web-1"), "{text}");
    assert_eq!(lines[1], "E");

    // A follow: the history, `E`, then each new request once, as `L <line>`.
    let resp = client()
        .get(format!("{internal}/internal/access/hello?follow=true"))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !seen.contains("E\n") {
        let chunk = tokio::time::timeout_at(deadline.into(), body.next())
            .await
            .expect("the history within 10 s")
            .unwrap()
            .unwrap();
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    get_app(router, "/second").await;
    while !seen.contains("/second") {
        let chunk = tokio::time::timeout_at(deadline.into(), body.next())
            .await
            .expect("the live line within 10 s")
            .unwrap()
            .unwrap();
        seen.push_str(std::str::from_utf8(&chunk).unwrap());
    }
    let live: Vec<&str> = seen.lines().filter(|l| l.starts_with("L ")).collect();
    assert_eq!(live.len(), 1, "{seen}");
    assert!(live[0].contains("path=\"/second\""), "{seen}");
    assert_eq!(seen.matches("/first").count(), 1, "history once: {seen}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_drain_wait_ends_once_the_backend_left_and_its_request_finished() {
    let table = RouteTable::new();
    let release = Arc::new(Notify::new());
    let backend = start_backend(Arc::clone(&release)).await;
    table.replace(vec![route(&backend)]);
    let (router, internal) = start(&table).await;
    let drained = |wait_ms: u64| {
        let url = format!("{internal}/internal/drained");
        let addr = backend.clone();
        async move {
            let v: serde_json::Value = client()
                .get(url)
                .query(&[("addr", addr), ("wait_ms", wait_ms.to_string())])
                .bearer_auth(TOKEN)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v
        }
    };
    // Still in the table: not drained, however idle.
    assert_eq!(drained(100).await["drained"], false);

    let slow = tokio::spawn(get_app(router, "/slow"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while table.in_flight(&backend) == 0 {
        assert!(
            Instant::now() < deadline,
            "the held request never reached the backend"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    table.remove_backend(&backend);
    // Out of the table, but the held request runs: not drained ...
    let v = drained(100).await;
    assert_eq!(v["drained"], false, "{v}");
    assert_eq!(v["in_flight"], 1, "{v}");
    // ... and drained once it finished (the wait sees it end).
    let waiting = tokio::spawn(drained(30_000));
    release.notify_one();
    let v = waiting.await.unwrap();
    assert_eq!(v["drained"], true, "{v}");
    assert_eq!(v["in_flight"], 0, "{v}");
    assert_eq!(slow.await.unwrap(), "slow ok");
}
