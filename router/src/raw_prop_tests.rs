//! Property tests of the router's response framing on backend input (part of the bounded
//! fuzz run, tests/fuzz.sh `router`). The backend is the app, so its bytes are hostile: a
//! real loopback socket plays a backend that writes a generated response in random pieces
//! and the fast path reads it. Any bytes: never a panic, never more body than the backend
//! sent, never a hang once it closed. Well-formed responses (Content-Length, chunked with
//! extensions and trailers, until close; 204/304/HEAD; 1xx first): the body comes out
//! exactly, and the connection is pooled only when its end was seen and nothing extra
//! came. Content-Length and chunk sizes follow the grammar (digits, hex digits).
//! `PROPTEST_CASES` sets the number of cases.

use std::time::Duration;

use http::Method;
use http_body_util::BodyExt;
use proptest::prelude::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{chunk_size, content_length, RawPool};

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// How a generated body is framed.
#[derive(Debug, Clone)]
enum Framing {
    Length,
    /// Chunk sizes (cycled), with extensions and trailers.
    Chunked(Vec<usize>, bool, bool),
    UntilClose,
}

/// A generated well-formed response.
#[derive(Debug, Clone)]
struct Generated {
    interim: bool,
    status: u16,
    framing: Framing,
    body: Vec<u8>,
    close: bool,
    head: bool,
}

impl Generated {
    fn bodyless(&self) -> bool {
        self.head || self.status == 204 || self.status == 304
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        if self.interim {
            out.extend_from_slice(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n");
        }
        out.extend_from_slice(
            format!("HTTP/1.1 {} X\r\nServer: hostile\r\n", self.status).as_bytes(),
        );
        if self.close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        let body = if self.status == 204 || self.status == 304 {
            &[][..]
        } else {
            &self.body[..]
        };
        match &self.framing {
            Framing::Length => {
                out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
                if !self.head {
                    out.extend_from_slice(body);
                }
            }
            Framing::Chunked(sizes, ext, trailers) => {
                out.extend_from_slice(b"Transfer-Encoding: gzip, chunked\r\n\r\n");
                if !self.bodyless() {
                    let mut rest = body;
                    let mut i = 0;
                    while !rest.is_empty() {
                        let n = sizes[i % sizes.len()].clamp(1, rest.len());
                        i += 1;
                        let ext = if *ext { ";name=\"v;x\"" } else { "" };
                        out.extend_from_slice(format!("{n:X}{ext}\r\n").as_bytes());
                        out.extend_from_slice(&rest[..n]);
                        out.extend_from_slice(b"\r\n");
                        rest = &rest[n..];
                    }
                    out.extend_from_slice(b"0\r\n");
                    if *trailers {
                        out.extend_from_slice(b"Expires: never\r\nX-T: 1\r\n");
                    }
                    out.extend_from_slice(b"\r\n");
                }
            }
            Framing::UntilClose => {
                out.extend_from_slice(b"\r\n");
                if !self.bodyless() {
                    out.extend_from_slice(body);
                }
            }
        }
        out
    }
}

fn generated() -> impl Strategy<Value = Generated> {
    (
        any::<bool>(),
        prop::sample::select(vec![200u16, 201, 204, 304, 404, 500, 599]),
        prop_oneof![
            Just(Framing::Length),
            (
                prop::collection::vec(1usize..50, 1..4),
                any::<bool>(),
                any::<bool>()
            )
                .prop_map(|(s, e, t)| Framing::Chunked(s, e, t)),
            Just(Framing::UntilClose),
        ],
        prop::collection::vec(any::<u8>(), 0..300),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(|(interim, status, framing, body, close, head)| Generated {
            interim,
            status,
            framing,
            body,
            close,
            head,
        })
}

/// What the fast path made of one backend exchange.
#[derive(Debug)]
struct Outcome {
    status: Result<u16, String>,
    body: Result<Vec<u8>, String>,
    /// The connection went back to the pool.
    pooled: bool,
}

/// Serves `response` (written in pieces of `splits` sizes, cycled) on a loopback socket,
/// then closes or (with `keep_open`) waits for the client to close; the fast path sends a
/// GET (or HEAD) and reads it. Bounded: 5 s for the whole exchange.
fn exchange(response: Vec<u8>, splits: Vec<usize>, keep_open: bool, head: bool) -> Outcome {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let backend = tokio::spawn(async move {
            let (mut sock, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match sock.read(&mut buf).await {
                    Ok(0) | Err(_) => return,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let mut rest = &response[..];
            let mut i = 0;
            while !rest.is_empty() {
                let n = splits[i % splits.len()].clamp(1, rest.len());
                i += 1;
                if sock.write_all(&rest[..n]).await.is_err() {
                    return;
                }
                let _ = sock.flush().await;
                rest = &rest[n..];
                tokio::task::yield_now().await;
            }
            if keep_open {
                // Until the client closes (or the exchange's time is up).
                let _ = sock.read(&mut buf).await;
            }
        });
        let pool = RawPool::new(Duration::from_secs(2), Duration::from_secs(30));
        let method = if head { Method::HEAD } else { Method::GET };
        let mut request = Vec::new();
        super::encode_head(&mut request, &method, "/", &http::HeaderMap::new());
        let run = async {
            match pool.send(&addr, &method, &request).await {
                Err(e) => (Err(e.to_string()), Err(String::new())),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let mut body = resp.into_body();
                    let mut got = Vec::new();
                    let mut error = None;
                    while let Some(frame) = body.frame().await {
                        match frame {
                            Ok(f) => {
                                if let Ok(d) = f.into_data() {
                                    got.extend_from_slice(&d);
                                }
                            }
                            Err(e) => {
                                error = Some(e.to_string());
                                break;
                            }
                        }
                    }
                    drop(body);
                    (Ok(status), error.map_or(Ok(got), Err))
                }
            }
        };
        let (status, body) = match tokio::time::timeout(Duration::from_secs(5), run).await {
            Ok(r) => r,
            Err(_) => (Err("hung".into()), Err("hung".into())),
        };
        let pooled = pool.take_idle(&addr).is_some();
        backend.abort();
        Outcome {
            status,
            body,
            pooled,
        }
    })
}

fn splits() -> impl Strategy<Value = Vec<usize>> {
    prop::collection::vec(1usize..64, 1..5)
}

/// Bytes a hostile backend might send: random, or a response head with odd framing
/// headers followed by random bytes.
fn hostile() -> impl Strategy<Value = Vec<u8>> {
    let header = prop_oneof![
        Just("Content-Length: 5".to_string()),
        Just("Content-Length: +5".to_string()),
        Just("Content-Length: 5, 6".to_string()),
        Just("Content-Length: 18446744073709551616".to_string()),
        Just("Content-Length: 99999999999".to_string()),
        Just("Transfer-Encoding: chunked".to_string()),
        Just("Transfer-Encoding: chunked, identity".to_string()),
        Just("Connection: close".to_string()),
        Just("Connection: keep-alive".to_string()),
        "[A-Za-z-]{1,12}: [ -~]{0,20}",
    ];
    let chunky = prop_oneof![
        "[0-9a-fA-F+ ;-]{0,18}\r\n".prop_map(String::into_bytes),
        prop::collection::vec(any::<u8>(), 0..40),
        Just(b"\r\n".to_vec()),
        Just(b"0\r\n\r\n".to_vec()),
        Just(b"fffffffffffffff\r\n".to_vec()),
        Just(b"ffffffffffffffff\r\n".to_vec()),
    ];
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..200),
        (
            prop::sample::select(vec![
                "HTTP/1.1 200 OK",
                "HTTP/1.0 200 OK",
                "HTTP/1.1 101 Switching",
                "HTTP/1.1 100 Continue",
                "HTTP/1.1 999 X",
                "HTTP/2 200"
            ]),
            prop::collection::vec(header, 0..4),
            prop::collection::vec(chunky, 0..6),
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
    fn ac4_well_formed_responses_come_out_exactly(g in generated(), splits in splits()) {
        let bytes = g.bytes();
        // A backend that means to keep the connection keeps it open.
        let reusable = !g.close && (g.bodyless() || !matches!(g.framing, Framing::UntilClose));
        let out = exchange(bytes, splits, reusable, g.head);
        prop_assert_eq!(out.status.clone(), Ok(g.status), "{:?}", out);
        let want: &[u8] = if g.bodyless() { &[] } else { &g.body };
        prop_assert_eq!(out.body.as_deref(), Ok(want), "{:?}", g);
        prop_assert_eq!(out.pooled, reusable, "{:?}", g);
    }

    #[test]
    fn ac4_hostile_backends_never_panic_or_amplify(
        bytes in hostile(),
        splits in splits(),
        head in any::<bool>(),
    ) {
        let sent = bytes.len();
        // The backend writes and closes: whatever it wrote, the exchange ends.
        let out = exchange(bytes, splits, false, head);
        prop_assert!(out.status.as_ref().err().is_none_or(|e| e != "hung"), "{:?}", out);
        prop_assert!(out.body.as_ref().err().is_none_or(|e| e != "hung"), "{:?}", out);
        if let Ok(body) = &out.body {
            prop_assert!(body.len() <= sent, "{} body bytes from {} sent", body.len(), sent);
        }
    }

    #[test]
    fn ac4_content_lengths_are_digits(values in prop::collection::vec(
        prop_oneof!["[0-9]{1,5}", "[ +0-9,-]{0,8}", Just("18446744073709551616".to_string())],
        1..3,
    )) {
        let mut headers = http::HeaderMap::new();
        for v in &values {
            if let Ok(v) = http::HeaderValue::from_str(v) {
                headers.append(http::header::CONTENT_LENGTH, v);
            }
        }
        prop_assume!(!headers.is_empty());
        let parts: Vec<String> = headers
            .get_all(http::header::CONTENT_LENGTH)
            .iter()
            .flat_map(|v| v.to_str().unwrap().split(',').map(|p| p.trim().to_string()).collect::<Vec<_>>())
            .collect();
        let numbers: Option<Vec<u64>> = parts
            .iter()
            .map(|p| (!p.is_empty() && p.bytes().all(|b| b.is_ascii_digit())).then(|| p.parse().ok()).flatten())
            .collect();
        let spec = numbers.filter(|n| n.windows(2).all(|w| w[0] == w[1])).map(|n| n[0]);
        let got = content_length(&headers).ok();
        prop_assert_eq!(got, spec, "{:?}", values);
    }

    #[test]
    fn ac4_chunk_sizes_are_hex_digits(line in prop_oneof!["[0-9a-fA-F]{1,16}(;[ -~]{0,10})?", "[ +0-9a-fx;-]{0,12}"]) {
        let hex = line.split(';').next().unwrap().trim_matches([' ', '\t']);
        let spec = (!hex.is_empty() && hex.len() <= 15 && hex.bytes().all(|b| b.is_ascii_hexdigit()))
            .then(|| u64::from_str_radix(hex, 16).ok())
            .flatten();
        prop_assert_eq!(chunk_size(line.as_bytes()).ok(), spec, "{:?}", line);
    }
}

#[test]
fn a_response_with_bytes_after_its_end_is_not_pooled() {
    let mut bytes = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1 200 OK\r\n".to_vec();
    bytes.extend_from_slice(b"Content-Length: 5\r\n\r\nstale");
    let out = exchange(bytes, vec![1000], true, false);
    assert_eq!(out.body.as_deref(), Ok(&b"ok"[..]));
    assert!(
        !out.pooled,
        "a connection with unread bytes is never reused"
    );
}

#[test]
fn signs_are_not_lengths() {
    // Found by ac4_chunk_sizes_are_hex_digits: Rust's number parsers take a leading `+`.
    assert!(chunk_size(b"+a").is_err());
    assert_eq!(chunk_size(b"a;x=1").ok(), Some(10));
    let mut h = http::HeaderMap::new();
    h.insert(http::header::CONTENT_LENGTH, "+5".parse().unwrap());
    assert!(content_length(&h).is_err());
    h.insert(http::header::CONTENT_LENGTH, "5, 5".parse().unwrap());
    assert_eq!(content_length(&h).ok(), Some(5));
}
