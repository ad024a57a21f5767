//! The router against real sockets: two tiny backends on 127.0.0.1 that answer their name
//! and echo what they received, and the router in front of them.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use axum::extract::Request;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use http::StatusCode;
use paas_router::{serve, Backend, Route, RouteTable};
use serde_json::Value;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Answers `{"name", "path", "headers", "len", "sha"}`; on `Upgrade: echo` switches
/// protocols and echoes bytes back.
async fn backend_handler(name: &'static str, mut req: Request) -> Response {
    if req.headers().get("upgrade").is_some_and(|v| v == "echo") {
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let upgraded = on_upgrade.await.expect("backend upgrade");
            let mut io = hyper_util::rt::TokioIo::new(upgraded);
            let mut buf = [0u8; 1024];
            loop {
                let n = io.read(&mut buf).await.unwrap_or(0);
                if n == 0 {
                    break;
                }
                let mut reply = format!("{name}:").into_bytes();
                reply.extend_from_slice(&buf[..n]);
                if io.write_all(&reply).await.is_err() {
                    break;
                }
            }
        });
        return Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "echo")
            .body(axum::body::Body::empty())
            .unwrap();
    }
    let path = req.uri().to_string();
    let headers: BTreeMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_string()))
        .collect();
    let body = axum::body::to_bytes(req.into_body(), usize::MAX)
        .await
        .unwrap();
    axum::Json(serde_json::json!({
        "name": name,
        "path": path,
        "headers": headers,
        "len": body.len(),
        "sha": hex::encode(Sha256::digest(&body)),
    }))
    .into_response()
}

async fn start_backend(name: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = axum::Router::new().fallback(move |req: Request| backend_handler(name, req));
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// An address nothing listens on (bound, then closed).
async fn dead_addr() -> String {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().to_string()
}

async fn start_router(table: RouteTable) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { serve(listener, table).await.unwrap() });
    addr
}

fn route(app: &str, hosts: &[&str], addrs: &[&str]) -> Route {
    Route {
        app: app.into(),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        backends: addrs
            .iter()
            .enumerate()
            .map(|(i, a)| Backend {
                addr: a.to_string(),
                job_id: format!("{app}-web-{i}"),
            })
            .collect(),
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

async fn get(router: SocketAddr, host: &str) -> reqwest::Response {
    client()
        .get(format!("http://{router}/some/path?q=1"))
        .header("host", host)
        .send()
        .await
        .unwrap()
}

async fn get_json(router: SocketAddr, host: &str) -> Value {
    let resp = get(router, host).await;
    assert_eq!(resp.status(), 200, "{host}");
    resp.json().await.unwrap()
}

#[tokio::test]
async fn routes_by_host_with_forwarding_headers() {
    let (a, b) = (start_backend("a").await, start_backend("b").await);
    let table = RouteTable::new();
    table.replace(vec![
        route("hello", &["hello.localhost"], &[&a]),
        route("world", &["World.localhost", "www.world.test"], &[&b]),
    ]);
    let router = start_router(table.clone()).await;

    assert_eq!(get_json(router, "hello.localhost").await["name"], "a");
    assert_eq!(get_json(router, "HELLO.localhost:8000").await["name"], "a");
    assert_eq!(get_json(router, "world.localhost:1234").await["name"], "b");
    assert_eq!(get_json(router, "www.world.test").await["name"], "b");
    assert_eq!(table.lookup("WORLD.LOCALHOST:80").unwrap().app, "world");

    let resp = client()
        .get(format!("http://{router}/some/path?q=1"))
        .header("host", "hello.localhost:8000")
        .header("x-forwarded-for", "203.0.113.9")
        .header("connection", "x-private")
        .header("x-private", "secret")
        .header("x-custom", "kept")
        .send()
        .await
        .unwrap();
    let generated_id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    let v: Value = resp.json().await.unwrap();
    let h = &v["headers"];
    assert_eq!(v["path"], "/some/path?q=1");
    assert_eq!(h["host"], "hello.localhost:8000");
    assert_eq!(h["x-forwarded-for"], "203.0.113.9, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(h["x-forwarded-host"], "hello.localhost:8000");
    assert_eq!(h["x-custom"], "kept");
    assert!(
        h.get("x-private").is_none(),
        "hop-by-hop header forwarded: {h}"
    );
    assert_eq!(h["x-request-id"], generated_id.as_str());
    assert_eq!(generated_id.len(), 32);

    let resp = client()
        .get(format!("http://{router}/"))
        .header("host", "hello.localhost")
        .header("x-request-id", "req-123")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["x-request-id"], "req-123");
    let v: Value = resp.json().await.unwrap();
    assert_eq!(v["headers"]["x-request-id"], "req-123");
    assert_eq!(v["headers"]["x-forwarded-for"], "127.0.0.1");
}

#[tokio::test]
async fn round_robin_across_backends() {
    let (a, b) = (start_backend("a").await, start_backend("b").await);
    let table = RouteTable::new();
    table.replace(vec![route("hello", &["hello.localhost"], &[&a, &b])]);
    let router = start_router(table).await;
    let mut seen = Vec::new();
    for _ in 0..6 {
        seen.push(
            get_json(router, "hello.localhost").await["name"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert_eq!(seen, ["a", "b", "a", "b", "a", "b"]);
}

#[tokio::test]
async fn unknown_host_and_no_backends() {
    let table = RouteTable::new();
    table.replace(vec![route("hello", &["hello.localhost"], &[])]);
    let router = start_router(table).await;

    let resp = get(router, "nope.localhost:8000").await;
    assert_eq!(resp.status(), 404);
    assert!(resp.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let body = resp.text().await.unwrap();
    assert!(
        body.contains("No app is served at nope.localhost"),
        "{body}"
    );

    let resp = get(router, "hello.localhost").await;
    assert_eq!(resp.status(), 503);
    let body = resp.text().await.unwrap();
    assert!(
        body.contains("hello has no running web process; check <code>paas ps</code>"),
        "{body}"
    );

    let evil = get(router, "<script>.localhost").await;
    let body = evil.text().await.unwrap();
    assert!(!body.contains("<script>"), "host not escaped: {body}");
}

#[tokio::test]
async fn dead_backend_gives_502_or_falls_back() {
    let a = start_backend("a").await;
    let dead = dead_addr().await;
    let table = RouteTable::new();
    table.replace(vec![
        route("gone", &["gone.localhost"], &[&dead]),
        route("half", &["half.localhost"], &[&dead, &a]),
    ]);
    let router = start_router(table).await;

    let resp = get(router, "gone.localhost").await;
    assert_eq!(resp.status(), 502);
    let body = resp.text().await.unwrap();
    assert!(body.contains("gone did not answer"), "{body}");

    // Round-robin lands on the dead backend every other request; each falls back to `a`.
    for _ in 0..4 {
        assert_eq!(get_json(router, "half.localhost").await["name"], "a");
    }
    // A body is not lost when the first backend refuses the connection.
    let payload = vec![7u8; 100_000];
    for _ in 0..2 {
        let v: Value = client()
            .post(format!("http://{router}/upload"))
            .header("host", "half.localhost")
            .body(payload.clone())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(v["len"], payload.len());
    }
}

#[tokio::test]
async fn streams_a_large_post_body_intact() {
    let a = start_backend("a").await;
    let table = RouteTable::new();
    table.replace(vec![route("hello", &["hello.localhost"], &[&a])]);
    let router = start_router(table).await;
    let body: Vec<u8> = (0..1024 * 1024).map(|_| rand::random::<u8>()).collect();
    let want = hex::encode(Sha256::digest(&body));

    // With a Content-Length.
    let v: Value = client()
        .post(format!("http://{router}/upload"))
        .header("host", "hello.localhost")
        .body(body.clone())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["len"], body.len());
    assert_eq!(v["sha"], want.as_str());

    // Chunked, from a stream of 64 KiB pieces.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        body.chunks(64 * 1024).map(|c| Ok(c.to_vec())).collect();
    let stream = futures_util::stream::iter(chunks).then(|c| async move {
        tokio::task::yield_now().await;
        c
    });
    let v: Value = client()
        .post(format!("http://{router}/upload"))
        .header("host", "hello.localhost")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(v["len"], body.len());
    assert_eq!(v["sha"], want.as_str());
    assert_eq!(v["headers"]["transfer-encoding"], "chunked");
}

#[tokio::test]
async fn replace_takes_effect_for_the_next_request() {
    let (a, b) = (start_backend("a").await, start_backend("b").await);
    let table = RouteTable::new();
    let router = start_router(table.clone()).await;
    assert_eq!(get(router, "hello.localhost").await.status(), 404);
    table.replace(vec![route("hello", &["hello.localhost"], &[&a])]);
    assert_eq!(get_json(router, "hello.localhost").await["name"], "a");
    table.replace(vec![route("hello", &["hello.localhost"], &[&b])]);
    assert_eq!(get_json(router, "hello.localhost").await["name"], "b");
    assert_eq!(table.routes().len(), 1);
    table.replace(vec![]);
    assert_eq!(get(router, "hello.localhost").await.status(), 404);
}

#[tokio::test]
async fn http2_cleartext_uses_the_authority() {
    let a = start_backend("a").await;
    let table = RouteTable::new();
    table.replace(vec![route("hello", &["hello.localhost"], &[&a])]);
    let router = start_router(table).await;

    let tcp = tokio::net::TcpStream::connect(router).await.unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get("http://hello.localhost:8000/h2")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    assert_eq!(resp.status(), 200);
    use http_body_util::BodyExt;
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["name"], "a");
    assert_eq!(v["path"], "/h2");
    assert_eq!(v["headers"]["host"], "hello.localhost:8000");
    assert_eq!(v["headers"]["x-forwarded-host"], "hello.localhost:8000");
}

#[tokio::test]
async fn upgrades_are_passed_through() {
    let a = start_backend("a").await;
    let table = RouteTable::new();
    table.replace(vec![route("hello", &["hello.localhost"], &[&a])]);
    let router = start_router(table).await;

    let mut tcp = tokio::net::TcpStream::connect(router).await.unwrap();
    tcp.write_all(
        b"GET /ws HTTP/1.1\r\nHost: hello.localhost\r\nConnection: Upgrade\r\nUpgrade: echo\r\n\r\n",
    )
    .await
    .unwrap();
    // Read the response head.
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            tcp.read(&mut byte).await.unwrap(),
            1,
            "router closed: {head:?}"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: echo"), "{head}");
    for msg in ["ping", "pong"] {
        tcp.write_all(msg.as_bytes()).await.unwrap();
        let want = format!("a:{msg}");
        let mut got = vec![0u8; want.len()];
        tcp.read_exact(&mut got).await.unwrap();
        assert_eq!(String::from_utf8(got).unwrap(), want);
    }
}

/// curl sends `Expect: 100-continue` before a large body and waits for the go-ahead.
#[tokio::test]
async fn expect_continue_is_answered() {
    let a = start_backend("a").await;
    let table = RouteTable::new();
    table.replace(vec![route("hello", &["hello.localhost"], &[&a])]);
    let router = start_router(table).await;

    let mut tcp = tokio::net::TcpStream::connect(router).await.unwrap();
    tcp.write_all(
        b"POST /up HTTP/1.1\r\nHost: hello.localhost\r\nContent-Length: 5\r\n\
          Expect: 100-continue\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        assert_eq!(
            tcp.read(&mut byte).await.unwrap(),
            1,
            "router closed: {head:?}"
        );
        head.push(byte[0]);
    }
    let head = String::from_utf8(head).unwrap();
    assert!(head.starts_with("HTTP/1.1 100"), "{head}");
    tcp.write_all(b"hello").await.unwrap();
    let mut rest = Vec::new();
    tcp.read_to_end(&mut rest).await.unwrap();
    let rest = String::from_utf8(rest).unwrap();
    assert!(rest.starts_with("HTTP/1.1 200"), "{rest}");
    let body = &rest[rest.find("\r\n\r\n").unwrap() + 4..];
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(v["len"], 5);
    assert!(v["headers"].get("expect").is_none(), "{v}");
}

#[tokio::test]
async fn two_dead_backends_of_three_fail_no_request() {
    let a = start_backend("a").await;
    let (dead1, dead2) = (dead_addr().await, dead_addr().await);
    let table = RouteTable::new();
    table.replace(vec![route(
        "lost",
        &["lost.localhost"],
        &[&dead1, &dead2, &a],
    )]);
    let router = start_router(table).await;
    // Whatever the pick, the request goes on to the next backend that is up: both dead
    // ones are left out after their first refusal, and every request is answered by `a`.
    for _ in 0..20 {
        assert_eq!(get_json(router, "lost.localhost").await["name"], "a");
    }
}
