//! A real router in front of a hostile backend (part of the bounded fuzz run, tests/fuzz.sh
//! `router`): the backend is an app, so whatever it writes back — random bytes, response
//! heads with odd framing, bodies cut short or too long — the router answers its client
//! with a well-formed HTTP/1.1 response (the backend's, or a 502), never hangs once the
//! backend closed, never hands the client more body than the backend sent, and keeps
//! serving the next request (another app's backend, on the same router). The framing
//! parser itself is fuzzed in `router/raw_prop_tests.rs`. `PROPTEST_CASES` sets the number
//! of cases.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use paas_router::{serve, Backend, Route, RouteTable};
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The router, a hostile backend that writes the current case's bytes to each connection
/// and closes, and a good backend: (runtime, router address, the case's bytes).
struct World {
    rt: tokio::runtime::Runtime,
    router: SocketAddr,
    reply: Arc<Mutex<Vec<u8>>>,
}

fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let reply = Arc::new(Mutex::new(Vec::new()));
        let router = rt.block_on(async {
            let hostile = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let hostile_addr = hostile.local_addr().unwrap().to_string();
            let bytes = Arc::clone(&reply);
            tokio::spawn(async move {
                loop {
                    let (mut s, _) = hostile.accept().await.unwrap();
                    let out = bytes.lock().unwrap().clone();
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 4096];
                        let mut head = Vec::new();
                        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                            match s.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => head.extend_from_slice(&buf[..n]),
                            }
                        }
                        let _ = s.write_all(&out).await;
                        let _ = s.shutdown().await;
                    });
                }
            });
            let good = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let good_addr = good.local_addr().unwrap().to_string();
            tokio::spawn(async move {
                loop {
                    let (mut s, _) = good.accept().await.unwrap();
                    tokio::spawn(async move {
                        let mut buf = vec![0u8; 4096];
                        let mut head = Vec::new();
                        loop {
                            match s.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => head.extend_from_slice(&buf[..n]),
                            }
                            while let Some(end) = head.windows(4).position(|w| w == b"\r\n\r\n") {
                                head.drain(..end + 4);
                                let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ngood";
                                if s.write_all(ok).await.is_err() {
                                    return;
                                }
                            }
                        }
                    });
                }
            });
            let table = RouteTable::new();
            table.replace(vec![
                Route {
                    app: "evil".into(),
                    hosts: vec!["evil.localhost".into()],
                    backends: vec![Backend {
                        addr: hostile_addr,
                        job_id: "evil-web-1".into(),
                    }],
                },
                Route {
                    app: "good".into(),
                    hosts: vec!["good.localhost".into()],
                    backends: vec![Backend {
                        addr: good_addr,
                        job_id: "good-web-1".into(),
                    }],
                },
            ]);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let router = listener.local_addr().unwrap();
            tokio::spawn(async move { serve(listener, table).await.unwrap() });
            router
        });
        World { rt, router, reply }
    })
}

/// One request through the router on a fresh connection, read to its end or the close
/// (bounded): the raw response bytes, or `None` when the router did not finish in time.
fn through_router(host: &str, method: &str) -> Option<Vec<u8>> {
    let w = world();
    let router = w.router;
    let req = format!("{method} / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    w.rt.block_on(async move {
        let run = async {
            let mut s = tokio::net::TcpStream::connect(router).await.unwrap();
            s.write_all(req.as_bytes()).await.unwrap();
            let mut out = Vec::new();
            let _ = s.read_to_end(&mut out).await;
            out
        };
        tokio::time::timeout(Duration::from_secs(10), run)
            .await
            .ok()
    })
}

/// (status, body) of a raw HTTP/1.1 response with a Content-Length or chunked body (as the
/// router's server writes them; none to a HEAD), `None` when it is not one.
fn parse_response(raw: &[u8], head_request: bool) -> Option<(u16, Vec<u8>)> {
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&raw[..end]).ok()?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next()?;
    let status: u16 = status_line
        .strip_prefix("HTTP/1.1 ")?
        .get(..3)?
        .parse()
        .ok()?;
    let mut length = None;
    let mut chunked = false;
    for l in lines {
        let (k, v) = l.split_once(':')?;
        if k.eq_ignore_ascii_case("content-length") {
            length = Some(v.trim().parse::<usize>().ok()?);
        }
        if k.eq_ignore_ascii_case("transfer-encoding") && v.trim().eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
    }
    let rest = &raw[end + 4..];
    let body = if head_request {
        if !rest.is_empty() {
            return None;
        }
        Vec::new()
    } else if chunked {
        let mut body = Vec::new();
        let mut r = rest;
        loop {
            let e = r.windows(2).position(|w| w == b"\r\n")?;
            let n = usize::from_str_radix(std::str::from_utf8(&r[..e]).ok()?, 16).ok()?;
            r = &r[e + 2..];
            if n == 0 {
                break;
            }
            body.extend_from_slice(r.get(..n)?);
            r = r.get(n + 2..)?;
        }
        body
    } else if let Some(n) = length {
        rest.get(..n)?.to_vec()
    } else if status == 204 || status == 304 {
        Vec::new()
    } else {
        rest.to_vec()
    };
    Some((status, body))
}

fn hostile() -> impl Strategy<Value = Vec<u8>> {
    let header = prop_oneof![
        Just("Content-Length: 5".to_string()),
        Just("Content-Length: +5".to_string()),
        Just("Content-Length: 5, 6".to_string()),
        Just("Content-Length: 99999999999".to_string()),
        Just("Transfer-Encoding: chunked".to_string()),
        Just("Transfer-Encoding: gzip".to_string()),
        Just("Connection: close".to_string()),
        Just("Upgrade: websocket".to_string()),
        "[A-Za-z-]{1,12}: [ -~]{0,20}",
        "[ -~]{0,20}",
    ];
    let tail = prop_oneof![
        "[0-9a-fA-F+ ;-]{0,18}\r\n".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..60),
        Just(b"0\r\n\r\n".to_vec()),
        Just(b"fffffffffffffff\r\n".to_vec()),
        Just(b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nbad".to_vec()),
    ];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        (
            prop::sample::select(vec![
                "HTTP/1.1 200 OK",
                "HTTP/1.0 200 OK",
                "HTTP/1.1 101 Switching Protocols",
                "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK",
                "HTTP/1.1 204 No Content",
                "HTTP/1.1 999 X",
                "HTTP/1.1 200 OK\r\nX: a\r\n b",
            ]),
            prop::collection::vec(header, 0..4),
            prop::collection::vec(tail, 0..5),
        )
            .prop_map(|(status, headers, tail)| {
                let mut out = format!(
                    "{status}\r\n{}\r\n",
                    headers
                        .iter()
                        .map(|h| format!("{h}\r\n"))
                        .collect::<String>()
                )
                .into_bytes();
                out.extend(tail.concat());
                out
            }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(128)))]

    #[test]
    fn ac4_a_hostile_backend_gets_its_client_a_well_formed_answer(
        bytes in hostile(),
        head in any::<bool>(),
    ) {
        let sent = bytes.len();
        *world().reply.lock().unwrap() = bytes.clone();
        let method = if head { "HEAD" } else { "GET" };
        let raw = through_router("evil.localhost", method)
            .ok_or_else(|| TestCaseError::fail("the router did not answer within 10 s"))?;
        // Every status line the backend wrote (interim ones come first).
        let statuses: Vec<u16> = bytes
            .windows(12)
            .filter(|w| w.starts_with(b"HTTP/1."))
            .filter_map(|w| std::str::from_utf8(&w[9..12]).ok()?.parse().ok())
            .collect();
        let Some((status, body)) = parse_response(&raw, head) else {
            // A body the backend cut short (or that broke its framing) after a good head:
            // the router closes the connection before the promised end, as it must once
            // it has taken the backend's status. Nothing else may come out.
            let cut = raw.is_empty()
                || statuses.iter().any(|s| raw.starts_with(format!("HTTP/1.1 {s} ").as_bytes()));
            prop_assert!(cut, "not an HTTP/1.1 response: {:?}", String::from_utf8_lossy(&raw));
            prop_assert!(raw.len() <= sent + 4096, "{} bytes from {sent} sent", raw.len());
            return Ok(());
        };
        prop_assert!((100..=999).contains(&status));
        prop_assert!(status != 500, "a router fault: {:?}", String::from_utf8_lossy(&raw));
        // The backend's own answer (not the router's error page) carries at most what the
        // backend sent.
        if statuses.contains(&status) {
            prop_assert!(body.len() <= sent, "{} body bytes from {sent} sent", body.len());
        } else {
            prop_assert!(
                status == 502 || status == 504,
                "status {status} that the backend never sent: {:?}",
                String::from_utf8_lossy(&raw)
            );
        }
        // The router goes on serving others.
        let good = through_router("good.localhost", "GET")
            .ok_or_else(|| TestCaseError::fail("the router stopped answering"))?;
        prop_assert_eq!(parse_response(&good, false), Some((200, b"good".to_vec())));
    }
}
