//! The reverse proxy: a hyper server (HTTP/1.1 and h2c) whose service looks the request's
//! host up in the route table, picks a backend round-robin and forwards the request with a
//! pooled HTTP/1.1 client, streaming bodies both ways. Protocol upgrades (websockets) are
//! spliced through with `copy_bidirectional` once both sides switched.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::task::JoinSet;

use super::headers::{
    add_forwarded, normalize_host, request_host, strip_hop_by_hop, wants_upgrade, X_REQUEST_ID,
};
use super::{pages, Error, RouteTable};

/// How long to wait for a backend to accept a connection.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long an idle keep-alive connection to a backend stays in the pool.
const POOL_IDLE: Duration = Duration::from_secs(60);
/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);

type RespBody = BoxBody<Bytes, hyper::Error>;

/// The incoming request body, shared so that a request whose connection attempt failed
/// (before the client read any of its body) can be sent again to another backend.
struct SharedBody {
    slot: Arc<Mutex<Option<Incoming>>>,
    polled: Arc<AtomicBool>,
}

impl Body for SharedBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        self.polled.store(true, Ordering::Relaxed);
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        match slot.as_mut() {
            Some(body) => Pin::new(body).poll_frame(cx),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        let slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        slot.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        slot.as_ref()
            .map(Body::size_hint)
            .unwrap_or_else(|| SizeHint::with_exact(0))
    }
}

struct Proxy {
    table: RouteTable,
    client: Client<HttpConnector, SharedBody>,
}

impl Proxy {
    fn new(table: RouteTable) -> Proxy {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_timer(TokioTimer::new())
            .build(connector);
        Proxy { table, client }
    }

    async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<RespBody> {
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        match self.forward(req, peer).await {
            Ok(resp) => {
                tracing::debug!(%method, path, status = resp.status().as_u16(), "proxied");
                resp
            }
            Err(e) => {
                match &e {
                    Error::Upstream { .. } | Error::BadRequest { .. } => {
                        tracing::warn!(error = %e, "proxy error")
                    }
                    _ => tracing::debug!(error = %e, "not proxied"),
                }
                pages::error_page(&e).map(|b| b.map_err(|never| match never {}).boxed())
            }
        }
    }

    async fn forward(
        &self,
        mut req: Request<Incoming>,
        peer: SocketAddr,
    ) -> Result<Response<RespBody>, Error> {
        let raw_host = request_host(&req).ok_or(Error::NoHost)?;
        let host = normalize_host(&raw_host);
        let entry = self
            .table
            .snapshot()
            .lookup(&host)
            .cloned()
            .ok_or(Error::UnknownHost { host })?;
        let route = &entry.route;
        let n = route.backends.len();
        if n == 0 {
            return Err(Error::NoBackends {
                app: route.app.clone(),
            });
        }
        let first = entry.next.fetch_add(1, Ordering::Relaxed) % n;

        let upgrade = req.version() == Version::HTTP_11 && wants_upgrade(req.headers());
        let mut client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let (parts, body) = req.into_parts();
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers, upgrade);
        if !headers.contains_key(header::HOST) {
            if let Ok(v) = HeaderValue::from_str(&raw_host) {
                headers.insert(header::HOST, v);
            }
        }
        let request_id = add_forwarded(&mut headers, peer.ip(), &raw_host);
        let path = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");

        let slot = Arc::new(Mutex::new(Some(body)));
        let tries = n.min(2);
        let mut last_error = None;
        for attempt in 0..tries {
            let backend = &route.backends[(first + attempt) % n];
            let polled = Arc::new(AtomicBool::new(false));
            let mut out = Request::builder()
                .method(parts.method.clone())
                .uri(format!("http://{}{path}", backend.addr))
                .version(Version::HTTP_11)
                .body(SharedBody {
                    slot: Arc::clone(&slot),
                    polled: Arc::clone(&polled),
                })
                .map_err(|source| Error::BadRequest {
                    app: route.app.clone(),
                    addr: backend.addr.clone(),
                    source,
                })?;
            *out.headers_mut() = headers.clone();
            match self.client.request(out).await {
                Ok(resp) => return Ok(respond(resp, client_upgrade.take(), request_id)),
                Err(source) => {
                    let retry = source.is_connect() && !polled.load(Ordering::Relaxed);
                    tracing::warn!(app = %route.app, addr = %backend.addr, job = %backend.job_id,
                        error = %source, retry, "backend request failed");
                    last_error = Some(Error::Upstream {
                        app: route.app.clone(),
                        addr: backend.addr.clone(),
                        source,
                    });
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(last_error.expect("at least one attempt was made"))
    }
}

/// Turns a backend response into the client's: hop-by-hop headers out, request id in, and
/// for `101 Switching Protocols` a task that splices the two upgraded connections.
fn respond(
    mut resp: Response<Incoming>,
    client_upgrade: Option<hyper::upgrade::OnUpgrade>,
    request_id: HeaderValue,
) -> Response<RespBody> {
    let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    match client_upgrade {
        Some(client_side) if switching => {
            let backend_side = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                match tokio::try_join!(client_side, backend_side) {
                    Ok((c, b)) => {
                        let (mut c, mut b) = (TokioIo::new(c), TokioIo::new(b));
                        if let Err(e) = tokio::io::copy_bidirectional(&mut c, &mut b).await {
                            tracing::debug!(error = %e, "upgraded connection ended");
                        }
                    }
                    Err(e) => tracing::debug!(error = %e, "protocol upgrade failed"),
                }
            });
            strip_hop_by_hop(resp.headers_mut(), true);
        }
        _ => strip_hop_by_hop(resp.headers_mut(), false),
    }
    resp.headers_mut().insert(X_REQUEST_ID, request_id);
    resp.map(BodyExt::boxed)
}

pub(super) async fn serve(
    listener: tokio::net::TcpListener,
    table: RouteTable,
) -> std::io::Result<()> {
    let proxy = Arc::new(Proxy::new(table));
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    builder.http2().timer(TokioTimer::new());
    // Connection tasks live in the set, so dropping `serve` ends them too.
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Usually out of file descriptors; back off instead of spinning.
                        tracing::warn!(error = %e, "router accept failed");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let proxy = Arc::clone(&proxy);
                let builder = builder.clone();
                connections.spawn(async move {
                    let service = service_fn(move |req| {
                        let proxy = Arc::clone(&proxy);
                        async move { Ok::<_, Infallible>(proxy.handle(req, peer).await) }
                    });
                    let conn = builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                    if let Err(e) = conn.await {
                        tracing::debug!(%peer, error = %e, "router connection ended with an error");
                    }
                });
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}
