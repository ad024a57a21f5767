//! The router's backend connection pool against a backend that closes every connection
//! after one answer without saying so (no `Connection: close`): the next request finds the
//! pooled connection closed and goes out on a new one, so the client never sees an error.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use paas_router::{serve, Backend, Route, RouteTable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

#[tokio::test]
async fn closed_idle_connections_are_replaced() {
    let backend = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let backend_addr = backend.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    tokio::spawn(async move {
        loop {
            let (mut s, _) = backend.accept().await.unwrap();
            count.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 1024];
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                }
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
                // Closed without `Connection: close`, as a backend's idle timeout would.
            });
        }
    });
    let table = RouteTable::new();
    table.replace(vec![Route {
        app: "flaky".into(),
        hosts: vec!["flaky.localhost".into()],
        backends: vec![Backend {
            addr: backend_addr,
            job_id: "flaky-web-1".into(),
        }],
    }]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let router = listener.local_addr().unwrap();
    tokio::spawn(async move { serve(listener, table).await.unwrap() });

    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    for i in 0..5 {
        let resp = client
            .get(format!("http://{router}/{i}"))
            .header("host", "flaky.localhost")
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "request {i}");
        assert_eq!(resp.text().await.unwrap(), "ok");
        // Let the backend's close reach the router before the next request.
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        accepted.load(Ordering::Relaxed),
        5,
        "one connection per request"
    );
}
