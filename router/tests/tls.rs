//! The router's HTTPS and streaming against real sockets on 127.0.0.1: SNI picks each
//! domain's certificate (exact, wildcard, else the default) and follows changes live,
//! HTTP/2 by ALPN with `X-Forwarded-Proto: https`, 404 and 503 pages over TLS, a websocket
//! echo (hand-written frames) over plain HTTP and over TLS, a server-sent event stream that
//! stays open for more than 30 s, and access lines for followers of the app's log.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures_util::StreamExt;
use http::StatusCode;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use paas_router::tls::{certified_key, PemCert};
use paas_router::{serve, serve_tls, serve_with, Backend, Route, RouteTable, RouterConfig};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Answers JSON with the request's headers; `/ws` switches to `websocket` and echoes each
/// frame's payload back unmasked; `/sse` sends an event every 3 s for 33 s.
async fn backend_handler(mut req: Request) -> Response {
    if req.uri().path() == "/ws" {
        let on_upgrade = hyper::upgrade::on(&mut req);
        tokio::spawn(async move {
            let mut io = TokioIo::new(on_upgrade.await.expect("backend upgrade"));
            while let Some((opcode, payload)) = read_frame(&mut io).await {
                if opcode == 8 {
                    let _ = io.write_all(&frame(8, b"", false)).await;
                    break;
                }
                if io.write_all(&frame(opcode, &payload, false)).await.is_err() {
                    break;
                }
            }
        });
        return Response::builder()
            .status(StatusCode::SWITCHING_PROTOCOLS)
            .header("connection", "upgrade")
            .header("upgrade", "websocket")
            .body(axum::body::Body::empty())
            .unwrap();
    }
    if req.uri().path() == "/sse" {
        let events = tokio_stream::wrappers::IntervalStream::new(tokio::time::interval(
            Duration::from_secs(3),
        ))
        .enumerate()
        .take(12)
        .map(|(i, _)| {
            Ok::<_, std::convert::Infallible>(Event::default().data(format!("tick {i}")))
        });
        return Sse::new(events).into_response();
    }
    let headers: serde_json::Map<String, serde_json::Value> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").into()))
        .collect();
    axum::Json(serde_json::json!({ "headers": headers, "version": format!("{:?}", req.version()) }))
        .into_response()
}

/// A websocket frame (FIN set), masked when it goes from client to server.
fn frame(opcode: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut out = vec![0x80 | opcode];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(mask_bit | n as u8),
        n if n <= 0xffff => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let key: [u8; 4] = rand::random();
        out.extend_from_slice(&key);
        out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        out.extend_from_slice(payload);
    }
    out
}

/// Reads one frame: (opcode, unmasked payload); None at the end of the stream.
async fn read_frame<R: AsyncRead + Unpin>(r: &mut R) -> Option<(u8, Vec<u8>)> {
    let mut head = [0u8; 2];
    r.read_exact(&mut head).await.ok()?;
    let opcode = head[0] & 0x0f;
    let masked = head[1] & 0x80 != 0;
    let len = match head[1] & 0x7f {
        126 => {
            let mut b = [0u8; 2];
            r.read_exact(&mut b).await.ok()?;
            u16::from_be_bytes(b) as usize
        }
        127 => {
            let mut b = [0u8; 8];
            r.read_exact(&mut b).await.ok()?;
            u64::from_be_bytes(b) as usize
        }
        n => n as usize,
    };
    let mut key = [0u8; 4];
    if masked {
        r.read_exact(&mut key).await.ok()?;
    }
    let mut payload = vec![0u8; len];
    r.read_exact(&mut payload).await.ok()?;
    if masked {
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= key[i % 4];
        }
    }
    Some((opcode, payload))
}

async fn start_backend() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let app = axum::Router::new().fallback(backend_handler);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    addr
}

/// The router on plain HTTP and on HTTPS.
async fn start_router(table: &RouteTable) -> (SocketAddr, SocketAddr) {
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addrs = (plain.local_addr().unwrap(), tls.local_addr().unwrap());
    let t = table.clone();
    tokio::spawn(async move { serve(plain, t).await.unwrap() });
    let t = table.clone();
    tokio::spawn(async move { serve_tls(tls, t).await.unwrap() });
    addrs
}

fn route(app: &str, hosts: &[&str], addrs: &[&str]) -> Route {
    Route {
        app: app.into(),
        hosts: hosts.iter().map(|h| h.to_string()).collect(),
        backends: addrs
            .iter()
            .map(|a| Backend {
                addr: a.to_string(),
                job_id: format!("{app}-web-1"),
            })
            .collect(),
    }
}

fn make(names: &[&str]) -> (String, String) {
    let c =
        rcgen::generate_simple_self_signed(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    (c.cert.pem(), c.signing_key.serialize_pem())
}

fn der(pem: &str) -> CertificateDer<'static> {
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

/// Accepts any certificate: the tests compare the presented one themselves.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

type Tls = tokio_rustls::client::TlsStream<tokio::net::TcpStream>;

/// A TLS connection to the router with SNI `name`, offering `alpn`.
async fn connect(router: SocketAddr, name: &str, alpn: &[&[u8]]) -> Tls {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::clone(&provider))
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    let tcp = tokio::net::TcpStream::connect(router).await.unwrap();
    tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from(name.to_string()).unwrap(), tcp)
        .await
        .unwrap()
}

/// The end-entity certificate the router presents for SNI `name`.
async fn presented(router: SocketAddr, name: &str) -> CertificateDer<'static> {
    let tls = connect(router, name, &[b"http/1.1"]).await;
    tls.get_ref().1.peer_certificates().unwrap()[0].clone()
}

/// One HTTP/1.1 GET over a fresh TLS connection: (status, body).
async fn get_tls(router: SocketAddr, host: &str, path: &str) -> (u16, String) {
    let tls = connect(router, host, &[b"http/1.1"]).await;
    let (mut send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tls))
        .await
        .unwrap();
    tokio::spawn(conn);
    let req = http::Request::get(path)
        .header("host", host)
        .body(Empty::<Bytes>::new())
        .unwrap();
    let resp = send.send_request(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

#[tokio::test]
async fn sni_picks_each_domains_certificate_and_follows_changes() {
    let table = RouteTable::new();
    let backend = start_backend().await;
    table.replace(vec![
        route("a", &["a.localhost", "www.a.test"], &[&backend]),
        route("b", &["b.localhost", "shop.b.test"], &[&backend]),
    ]);
    let (dc, dk) = make(&["*.localhost", "localhost"]);
    table.certs().set_default(certified_key(&dc, &dk).unwrap());
    let (ac, ak) = make(&["www.a.test"]);
    let (bc, bk) = make(&["*.b.test"]);
    let pem = |id: &str, c: &str, k: &str| PemCert {
        id: id.into(),
        app: id.into(),
        cert_pem: c.into(),
        key_pem: k.into(),
    };
    table
        .certs()
        .replace(&[pem("a", &ac, &ak), pem("b", &bc, &bk)]);
    let (_, router) = start_router(&table).await;

    assert_eq!(presented(router, "www.a.test").await, der(&ac));
    assert_eq!(presented(router, "shop.b.test").await, der(&bc), "wildcard");
    assert_eq!(presented(router, "a.localhost").await, der(&dc), "default");
    // The right certificate also serves the request.
    let (status, body) = get_tls(router, "www.a.test", "/").await;
    assert_eq!(status, 200, "{body}");
    let v: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["headers"]["x-forwarded-proto"], "https");
    assert_eq!(v["headers"]["host"], "www.a.test");

    // Removing a certificate takes effect for the next handshake, no restart.
    table.certs().replace(&[pem("b", &bc, &bk)]);
    assert_eq!(presented(router, "www.a.test").await, der(&dc));
    assert_eq!(presented(router, "shop.b.test").await, der(&bc));
}

#[tokio::test]
async fn http2_over_tls_by_alpn() {
    let table = RouteTable::new();
    let backend = start_backend().await;
    table.replace(vec![route("a", &["a.localhost"], &[&backend])]);
    let (dc, dk) = make(&["*.localhost"]);
    table.certs().set_default(certified_key(&dc, &dk).unwrap());
    let (_, router) = start_router(&table).await;

    let tls = connect(router, "a.localhost", &[b"h2", b"http/1.1"]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(tls))
            .await
            .unwrap();
    tokio::spawn(conn);
    // Two requests multiplexed on the one connection.
    for path in ["/one", "/two"] {
        let req = http::Request::get(format!("https://a.localhost{path}"))
            .body(Empty::<Bytes>::new())
            .unwrap();
        let resp = send.send_request(req).await.unwrap();
        assert_eq!(resp.version(), http::Version::HTTP_2);
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["headers"]["x-forwarded-proto"], "https");
        assert_eq!(v["headers"]["host"], "a.localhost");
        assert_eq!(v["version"], "HTTP/1.1", "backends get HTTP/1.1");
    }
}

#[tokio::test]
async fn unknown_host_404_and_no_backend_503_over_tls() {
    let table = RouteTable::new();
    table.replace(vec![route("idle", &["idle.localhost"], &[])]);
    let (dc, dk) = make(&["*.localhost"]);
    table.certs().set_default(certified_key(&dc, &dk).unwrap());
    let (plain, router) = start_router(&table).await;

    let (status, body) = get_tls(router, "nobody.localhost", "/").await;
    assert_eq!(status, 404);
    assert!(
        body.contains("No app is served at nobody.localhost"),
        "{body}"
    );
    // No healthy job: the 503 page comes at once, well within the connect timeout (5 s).
    let answer = tokio::time::timeout(
        Duration::from_secs(5),
        get_tls(router, "idle.localhost", "/"),
    )
    .await
    .expect("the 503 came within the connect timeout");
    assert_eq!(answer.0, 503);
    assert!(
        answer.1.contains("idle has no running web process"),
        "{}",
        answer.1
    );
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{plain}/"))
        .header("host", "idle.localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 503);
}

/// Opens a websocket at `/ws` over `io`, echoes three messages (one of 70 000 bytes) and
/// closes it.
async fn websocket_echo<S: AsyncRead + AsyncWrite + Unpin>(mut io: S, host: &str) {
    let handshake = format!(
        "GET /ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\
         Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"
    );
    io.write_all(handshake.as_bytes()).await.unwrap();
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut b = [0u8; 1];
        io.read_exact(&mut b).await.unwrap();
        head.push(b[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    let big = vec![b'x'; 70_000];
    for msg in [&b"hello"[..], b"second message", &big] {
        io.write_all(&frame(1, msg, true)).await.unwrap();
        let (opcode, payload) = read_frame(&mut io).await.expect("an echoed frame");
        assert_eq!(opcode, 1);
        assert_eq!(payload, msg);
    }
    io.write_all(&frame(8, b"", true)).await.unwrap();
    let (opcode, _) = read_frame(&mut io).await.expect("a close frame");
    assert_eq!(opcode, 8);
}

#[tokio::test]
async fn websocket_echo_through_the_router() {
    let table = RouteTable::new();
    let backend = start_backend().await;
    table.replace(vec![route("ws", &["ws.localhost"], &[&backend])]);
    let (dc, dk) = make(&["*.localhost"]);
    table.certs().set_default(certified_key(&dc, &dk).unwrap());
    let (plain, tls) = start_router(&table).await;

    let tcp = tokio::net::TcpStream::connect(plain).await.unwrap();
    websocket_echo(tcp, "ws.localhost").await;
    let stream = connect(tls, "ws.localhost", &[b"http/1.1"]).await;
    websocket_echo(stream, "ws.localhost").await;
}

#[tokio::test]
async fn server_sent_events_stay_open_across_30_seconds() {
    let table = RouteTable::new();
    let backend = start_backend().await;
    table.replace(vec![route("sse", &["sse.localhost"], &[&backend])]);
    let (plain, _) = start_router(&table).await;

    let started = tokio::time::Instant::now();
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{plain}/sse"))
        .header("host", "sse.localhost")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let mut stream = resp.bytes_stream();
    let mut text = String::new();
    let mut seen = Vec::new();
    while let Some(chunk) = stream.next().await {
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        while let Some(end) = text.find("\n\n") {
            let event: String = text.drain(..end + 2).collect();
            seen.push((event.trim().to_string(), started.elapsed()));
        }
    }
    let names: Vec<&str> = seen.iter().map(|(e, _)| e.as_str()).collect();
    let want: Vec<String> = (0..12).map(|i| format!("data: tick {i}")).collect();
    assert_eq!(names, want, "every event arrived, in order");
    // The backend spaces its events 3 s apart: the last came after the stream had been
    // open for over 30 s, one at a time (not all buffered at the end).
    assert!(seen[11].1 >= Duration::from_secs(30), "{seen:?}");
    assert!(
        seen[11].1 - seen[0].1 >= Duration::from_secs(30),
        "{seen:?}"
    );
}

#[tokio::test]
async fn access_lines_reach_the_apps_followers() {
    let table = RouteTable::new();
    let backend = start_backend().await;
    table.replace(vec![route("logged", &["logged.localhost"], &[&backend])]);
    let (dc, dk) = make(&["*.localhost"]);
    table.certs().set_default(certified_key(&dc, &dk).unwrap());
    let (plain, tls) = start_router(&table).await;
    let mut lines = table.access_log().subscribe("logged");

    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .get(format!("http://{plain}/hello?x=1"))
        .header("host", "logged.localhost")
        .send()
        .await
        .unwrap();
    let len = resp.bytes().await.unwrap().len();
    let line = tokio::time::timeout(Duration::from_secs(10), lines.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        line.contains("heroku[router]: at=info method=GET path=\"/hello\""),
        "{line}"
    );
    assert!(
        line.contains(" host=logged.localhost protocol=http status=200 "),
        "{line}"
    );
    assert!(line.contains(&format!(" bytes={len} ")), "{line}");
    assert!(line.contains("ms job=logged-web-1 request_id="), "{line}");

    let (status, _) = get_tls(tls, "logged.localhost", "/secure").await;
    assert_eq!(status, 200);
    let line = tokio::time::timeout(Duration::from_secs(10), lines.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(line.contains("path=\"/secure\""), "{line}");
    assert!(line.contains("protocol=https status=200"), "{line}");

    // A route without backends leaves an error line.
    table.replace(vec![route("logged", &["logged.localhost"], &[])]);
    let (status, _) = get_tls(tls, "logged.localhost", "/down").await;
    assert_eq!(status, 503);
    let line = tokio::time::timeout(Duration::from_secs(10), lines.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        line.contains("at=error") && line.contains("status=503 "),
        "{line}"
    );
    assert!(line.contains("job=- "), "{line}");
}

#[tokio::test]
async fn apps_can_redirect_http_to_https() {
    let table = RouteTable::new();
    let backend = start_backend().await;
    table.replace(vec![
        route("secure", &["secure.localhost"], &[&backend]),
        route("open", &["open.localhost"], &[&backend]),
    ]);
    let (dc, dk) = make(&["*.localhost"]);
    table.certs().set_default(certified_key(&dc, &dk).unwrap());
    let tls = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let tls_addr = tls.local_addr().unwrap();
    let t = table.clone();
    tokio::spawn(async move { serve_tls(tls, t).await.unwrap() });
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_addr = plain.local_addr().unwrap();
    let config = RouterConfig {
        https_port: Some(tls_addr.port()),
        ..RouterConfig::default()
    };
    let t = table.clone();
    tokio::spawn(async move { serve_with(plain, t, config).await.unwrap() });
    table.set_https_redirects(&["secure".to_string()]);

    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |host: &'static str| {
        client
            .get(format!("http://{plain_addr}/a/b?c=1"))
            .header("host", host)
            .send()
    };
    let resp = get("secure.localhost").await.unwrap();
    assert_eq!(resp.status(), 308);
    assert_eq!(
        resp.headers()["location"],
        format!("https://secure.localhost:{}/a/b?c=1", tls_addr.port()).as_str()
    );
    assert_eq!(get("open.localhost").await.unwrap().status(), 200);
    // Over HTTPS the app is served.
    let (status, _) = get_tls(tls_addr, "secure.localhost", "/a").await;
    assert_eq!(status, 200);
    // Turned off: served over plain HTTP again.
    table.set_https_redirects(&[]);
    assert_eq!(get("secure.localhost").await.unwrap().status(), 200);
}
