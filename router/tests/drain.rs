//! The router's balancing, draining, timeouts and limits against real sockets: tiny axum
//! backends on 127.0.0.1 with slow and streaming endpoints, the router in front of them.

use std::net::SocketAddr;
use std::time::Duration;

use axum::routing::{get, post};
use bytes::Bytes;
use futures_util::StreamExt;
use paas_router::{serve_with, Backend, Route, RouteTable, RouterConfig};

/// A backend answering `/` with its name, `/slow?ms=N` after N ms, `/sse` with three
/// events 100 ms apart, and `POST /len` with the body's length.
async fn start_backend(name: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = axum::Router::new()
        .route("/", get(move || async move { name }))
        .route(
            "/slow",
            get(
                move |q: axum::extract::Query<std::collections::HashMap<String, u64>>| async move {
                    let ms = q.get("ms").copied().unwrap_or(500);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    format!("{name} slow")
                },
            ),
        )
        .route(
            "/sse",
            get(|| async {
                let events = futures_util::stream::iter(0..3).then(|i| async move {
                    if i > 0 {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Ok::<_, std::convert::Infallible>(Bytes::from(format!("data: {i}\n\n")))
                });
                axum::response::Response::builder()
                    .header("content-type", "text/event-stream")
                    .body(axum::body::Body::from_stream(events))
                    .unwrap()
            }),
        )
        .route(
            "/len",
            post(|body: Bytes| async move { body.len().to_string() }),
        );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

fn config() -> RouterConfig {
    RouterConfig {
        connect_timeout: Duration::from_secs(2),
        response_timeout: Duration::from_millis(600),
        max_body_bytes: 1000,
        ..RouterConfig::default()
    }
}

async fn start_router(table: RouteTable) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { serve_with(listener, table, config()).await.unwrap() });
    addr
}

fn route(app: &str, addrs: &[&str]) -> Route {
    Route {
        app: app.into(),
        hosts: vec![format!("{app}.localhost")],
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

async fn get_text(router: SocketAddr, path: &str) -> (u16, String) {
    let resp = client()
        .get(format!("http://{router}{path}"))
        .header("host", "hello.localhost")
        .send()
        .await
        .unwrap();
    (resp.status().as_u16(), resp.text().await.unwrap())
}

#[tokio::test]
async fn removed_backend_finishes_its_in_flight_requests() {
    let (a, b) = (start_backend("a").await, start_backend("b").await);
    let table = RouteTable::new();
    table.replace(vec![route("hello", &[&a])]);
    let router = start_router(table.clone()).await;

    let slow = tokio::spawn(async move { get_text(router, "/slow?ms=400").await });
    for _ in 0..100 {
        if table.in_flight(&a) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(table.in_flight(&a), 1, "the slow request is counted on a");

    // The deploy switches to b while a still serves the slow request.
    table.replace(vec![route("hello", &[&b])]);
    assert_eq!(get_text(router, "/").await, (200, "b".into()));
    assert_eq!(table.in_flight(&a), 1, "a still serves the slow request");
    assert!(table.wait_drained(&a, Duration::from_secs(5)).await);
    assert_eq!(slow.await.unwrap(), (200, "a slow".into()));
    assert_eq!(table.in_flight(&a), 0);
    assert_eq!(table.in_flight(&b), 0, "finished requests are not counted");

    // remove_backend takes one backend out and keeps the others.
    table.replace(vec![route("hello", &[&a, &b])]);
    table.remove_backend(&a);
    let backends = table.lookup("hello.localhost").unwrap().backends;
    assert_eq!(backends.len(), 1);
    assert_eq!(backends[0].addr, b);
}

#[tokio::test]
async fn least_outstanding_requests_wins() {
    let (a, b) = (start_backend("a").await, start_backend("b").await);
    let table = RouteTable::new();
    table.replace(vec![route("hello", &[&a, &b])]);
    let router = start_router(table.clone()).await;

    // Occupy one backend with a slow request; every quick request then goes to the other.
    let slow = tokio::spawn(async move { get_text(router, "/slow?ms=500").await });
    for _ in 0..100 {
        if table.in_flight(&a) + table.in_flight(&b) == 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let busy = if table.in_flight(&a) == 1 { "a" } else { "b" };
    let idle = if busy == "a" { "b" } else { "a" };
    for _ in 0..6 {
        assert_eq!(get_text(router, "/").await, (200, idle.to_string()));
    }
    assert_eq!(slow.await.unwrap(), (200, format!("{busy} slow")));

    // With both idle, ties go round-robin: both answer.
    let mut names = std::collections::BTreeSet::new();
    for _ in 0..4 {
        names.insert(get_text(router, "/").await.1);
    }
    assert_eq!(names.len(), 2, "{names:?}");
}

#[tokio::test]
async fn slow_backend_gets_504_naming_the_app() {
    let a = start_backend("a").await;
    let table = RouteTable::new();
    table.replace(vec![route("hello", &[&a])]);
    let router = start_router(table.clone()).await;

    let (status, page) = get_text(router, "/slow?ms=3000").await;
    assert_eq!(status, 504);
    assert!(page.contains("hello did not answer"), "{page}");
    assert!(table.wait_drained(&a, Duration::from_secs(5)).await);
    assert_eq!(
        get_text(router, "/slow?ms=10").await,
        (200, "a slow".into())
    );
}

#[tokio::test]
async fn bodies_over_the_cap_get_413() {
    let a = start_backend("a").await;
    let table = RouteTable::new();
    table.replace(vec![route("hello", &[&a])]);
    let router = start_router(table).await;
    let post = |body: reqwest::Body| {
        client()
            .post(format!("http://{router}/len"))
            .header("host", "hello.localhost")
            .body(body)
            .send()
    };

    let ok = post(vec![b'x'; 1000].into()).await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.text().await.unwrap(), "1000");

    let big = post(vec![b'x'; 1001].into()).await.unwrap();
    assert_eq!(big.status(), 413);
    assert!(big.text().await.unwrap().contains("hello"));

    // Chunked (no Content-Length): cut once the cap is passed.
    let chunks = futures_util::stream::iter(
        (0..4).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'y'; 400]))),
    );
    let streamed = post(reqwest::Body::wrap_stream(chunks)).await.unwrap();
    assert_eq!(streamed.status(), 413);
}

#[tokio::test]
async fn server_sent_events_stream_through() {
    let a = start_backend("a").await;
    let table = RouteTable::new();
    table.replace(vec![route("hello", &[&a])]);
    let router = start_router(table.clone()).await;

    let resp = client()
        .get(format!("http://{router}/sse"))
        .header("host", "hello.localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut stream = resp.bytes_stream();
    // The first event arrives while the backend is still producing the rest.
    let first = stream.next().await.unwrap().unwrap();
    assert_eq!(&first[..], b"data: 0\n\n");
    assert_eq!(table.in_flight(&a), 1, "the open stream is in flight");
    let mut rest = Vec::new();
    while let Some(chunk) = stream.next().await {
        rest.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(rest, b"data: 1\n\ndata: 2\n\n");
    assert!(table.wait_drained(&a, Duration::from_secs(5)).await);
}

#[tokio::test]
async fn backend_connections_are_kept_alive_and_reused() {
    // A hyper backend that counts the connections it accepts.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = std::sync::Arc::clone(&accepted);
    tokio::spawn(async move {
        loop {
            let (stream, _) = listener.accept().await.unwrap();
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(|_req| async {
                    Ok::<_, std::convert::Infallible>(hyper::Response::new(
                        http_body_util::Full::new(Bytes::from_static(b"pooled")),
                    ))
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    let table = RouteTable::new();
    table.replace(vec![route("hello", &[&addr])]);
    let router = start_router(table).await;
    for _ in 0..20 {
        assert_eq!(get_text(router, "/").await, (200, "pooled".into()));
    }
    // Each router thread (one per CPU) keeps its own pool, so at most one connection each.
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let n = accepted.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        n <= threads.min(19),
        "20 sequential requests used {n} backend connections ({threads} router threads)"
    );
}
