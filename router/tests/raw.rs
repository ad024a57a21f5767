//! The router's fast path for bodyless requests (router/raw.rs) against a backend that
//! answers from a script of raw bytes, so each framing case of RFC 9112 is sent exactly as
//! written: chunked bodies split at awkward places with extensions and trailers, HEAD with
//! a length, 204/304, an interim 103, a body delimited by the close, `Connection: close`,
//! a malformed head, and connection reuse.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use paas_router::{serve, Backend, Route, RouteTable};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// What the scripted backend writes for a path: pieces written with a short pause between
/// them, and whether it closes the connection after the answer.
#[derive(Clone)]
struct Answer {
    pieces: Vec<&'static [u8]>,
    close: bool,
}

fn answer(pieces: &[&'static [u8]]) -> Answer {
    Answer {
        pieces: pieces.to_vec(),
        close: false,
    }
}

/// Reads one request head; `None` when the connection closed first.
async fn read_head(s: &mut TcpStream, buf: &mut Vec<u8>) -> Option<String> {
    let mut chunk = [0u8; 4096];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            buf.drain(..end + 4);
            return Some(head);
        }
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A backend answering each request by its path from `script`; counts connections.
async fn scripted_backend(script: HashMap<&'static str, Answer>) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let count = Arc::clone(&accepted);
    let script = Arc::new(script);
    tokio::spawn(async move {
        loop {
            let (mut s, _) = listener.accept().await.unwrap();
            count.fetch_add(1, Ordering::Relaxed);
            let script = Arc::clone(&script);
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while let Some(head) = read_head(&mut s, &mut buf).await {
                    let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                    let Some(a) = script.get(path.as_str()) else {
                        let _ = s
                            .write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                            .await;
                        continue;
                    };
                    for (i, piece) in a.pieces.iter().enumerate() {
                        if i > 0 {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                        }
                        if s.write_all(piece).await.is_err() {
                            return;
                        }
                    }
                    if a.close {
                        return;
                    }
                }
            });
        }
    });
    (addr, accepted)
}

async fn router_for(addr: &str) -> SocketAddr {
    let table = RouteTable::new();
    table.replace(vec![Route {
        app: "raw".into(),
        hosts: vec!["raw.localhost".into()],
        backends: vec![Backend {
            addr: addr.to_string(),
            job_id: "raw-web-1".into(),
        }],
    }]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let router = listener.local_addr().unwrap();
    tokio::spawn(async move { serve(listener, table).await.unwrap() });
    router
}

/// One kept-alive client connection per test, so every request lands on the same router
/// thread and with it the same backend pool (each router thread has its own).
static CLIENT: std::sync::LazyLock<reqwest::Client> =
    std::sync::LazyLock::new(|| reqwest::Client::builder().no_proxy().build().unwrap());

async fn fetch(router: SocketAddr, method: reqwest::Method, path: &str) -> reqwest::Response {
    CLIENT
        .request(method, format!("http://{router}{path}"))
        .header("host", "raw.localhost")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_framing_is_passed_on_intact() {
    let mut script = HashMap::new();
    script.insert(
        "/length",
        answer(&[
            b"HTTP/1.1 200 OK\r\nContent-Length: 11\r\nX-A: 1\r\n\r\nhello",
            b" world",
        ]),
    );
    script.insert(
        "/chunked",
        answer(&[
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhel",
            b"lo\r",
            b"\n6\r\n world\r\n0\r\nX-Trailer: t\r\n",
            b"\r\n",
        ]),
    );
    script.insert(
        "/head",
        answer(&[b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n"]),
    );
    script.insert(
        "/nocontent",
        answer(&[b"HTTP/1.1 204 No Content\r\nX-B: 2\r\n\r\n"]),
    );
    script.insert(
        "/notmodified",
        answer(&[b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"]),
    );
    script.insert(
        "/early",
        answer(&[
            b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfinal",
        ]),
    );
    script.insert(
        "/close",
        Answer {
            pieces: vec![b"HTTP/1.1 200 OK\r\n\r\nuntil ", b"the close"],
            close: true,
        },
    );
    let (addr, accepted) = scripted_backend(script).await;
    let router = router_for(&addr).await;

    let resp = fetch(router, reqwest::Method::GET, "/length").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-a"], "1");
    assert!(resp.headers().contains_key("x-request-id"));
    assert_eq!(resp.text().await.unwrap(), "hello world");

    let resp = fetch(router, reqwest::Method::GET, "/chunked").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "hello world");

    let resp = fetch(router, reqwest::Method::HEAD, "/head").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-length"], "1234");
    assert_eq!(resp.bytes().await.unwrap().len(), 0);

    let resp = fetch(router, reqwest::Method::GET, "/nocontent").await;
    assert_eq!(resp.status(), 204);
    assert_eq!(resp.headers()["x-b"], "2");

    let resp = fetch(router, reqwest::Method::GET, "/notmodified").await;
    assert_eq!(resp.status(), 304);
    assert_eq!(resp.headers()["etag"], "\"x\"");

    let resp = fetch(router, reqwest::Method::GET, "/early").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "final");

    // All of the above ran on one kept-alive backend connection.
    assert_eq!(accepted.load(Ordering::Relaxed), 1, "backend connections");

    let resp = fetch(router, reqwest::Method::GET, "/close").await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.text().await.unwrap(), "until the close");
    // The close-delimited answer used the connection up; the next request opens another.
    let resp = fetch(router, reqwest::Method::GET, "/length").await;
    assert_eq!(resp.text().await.unwrap(), "hello world");
    assert_eq!(accepted.load(Ordering::Relaxed), 2, "backend connections");
}

#[tokio::test]
async fn a_large_chunked_body_streams_through() {
    // 64 chunks of 16 KiB written in pieces that cut chunk lines in half.
    static BODY: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    let body = BODY.get_or_init(|| {
        let mut b = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for i in 0..64u8 {
            b.extend_from_slice(b"4000\r\n");
            b.extend(std::iter::repeat_n(b'a' + (i % 26), 0x4000));
            b.extend_from_slice(b"\r\n");
        }
        b.extend_from_slice(b"0\r\n\r\n");
        b
    });
    let pieces: Vec<&'static [u8]> = body.chunks(10_007).collect();
    let mut script = HashMap::new();
    script.insert(
        "/big",
        Answer {
            pieces,
            close: false,
        },
    );
    let (addr, _) = scripted_backend(script).await;
    let router = router_for(&addr).await;
    let got = fetch(router, reqwest::Method::GET, "/big")
        .await
        .bytes()
        .await
        .unwrap();
    assert_eq!(got.len(), 64 * 0x4000);
    for (i, chunk) in got.chunks(0x4000).enumerate() {
        assert!(
            chunk.iter().all(|&c| c == b'a' + (i as u8 % 26)),
            "chunk {i}"
        );
    }
}

#[tokio::test]
async fn bad_answers_are_502_and_close_is_honoured() {
    let mut script = HashMap::new();
    script.insert("/garbage", answer(&[b"NOT HTTP AT ALL\r\n\r\n"]));
    script.insert(
        "/twolengths",
        answer(&[b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"]),
    );
    script.insert(
        "/closing",
        answer(&[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"]),
    );
    let (addr, accepted) = scripted_backend(script).await;
    let router = router_for(&addr).await;

    for path in ["/garbage", "/twolengths"] {
        let resp = fetch(router, reqwest::Method::GET, path).await;
        assert_eq!(resp.status(), 502, "{path}");
        let page = resp.text().await.unwrap();
        assert!(page.contains("raw"), "the 502 page names the app: {page}");
    }
    let before = accepted.load(Ordering::Relaxed);
    for _ in 0..3 {
        let resp = fetch(router, reqwest::Method::GET, "/closing").await;
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.text().await.unwrap(), "ok");
    }
    // `Connection: close` answers are never reused.
    assert_eq!(accepted.load(Ordering::Relaxed) - before, 3);
}

#[tokio::test]
async fn a_slow_stream_arrives_piece_by_piece() {
    // Like server-sent events: the first event must reach the client before the last one
    // is written.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<()>(1);
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = Vec::new();
        read_head(&mut s, &mut buf).await.unwrap();
        s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n9\r\ndata: 1\n\n\r\n")
            .await
            .unwrap();
        // The second event only after the client saw the first.
        rx.recv().await;
        s.write_all(b"9\r\ndata: 2\n\n\r\n0\r\n\r\n").await.unwrap();
    });
    let router = router_for(&addr).await;
    let mut resp = fetch(router, reqwest::Method::GET, "/events").await;
    assert_eq!(resp.status(), 200);
    let first = tokio::time::timeout(Duration::from_secs(10), resp.chunk())
        .await
        .expect("the first event arrives while the stream is open")
        .unwrap()
        .unwrap();
    assert_eq!(&first[..], b"data: 1\n\n");
    tx.send(()).await.unwrap();
    let rest = resp.bytes().await.unwrap();
    assert_eq!(&rest[..], b"data: 2\n\n");
}
