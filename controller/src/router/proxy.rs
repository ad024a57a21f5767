//! The reverse proxy: a hyper server (HTTP/1.1 and h2c) whose service looks the request's
//! host up in the route table, picks the backend with the fewest outstanding requests and
//! forwards the request with a pooled HTTP/1.1 client, streaming bodies both ways. Each
//! request holds an [`InFlight`] guard on its backend until its response body ends.
//! Protocol upgrades (websockets) are spliced through with `copy_bidirectional` once both
//! sides switched. [`serve`] runs one single-threaded runtime per CPU on the shared
//! listening socket, each with its own proxy and backend pool; with a TLS acceptor each
//! connection does its handshake first (SNI picks the certificate, ALPN h2 or http/1.1).
//! While someone follows an app's log, each request leaves an access line (`access`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{header, HeaderMap, HeaderValue, Method, Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::task::JoinSet;

use super::access::AccessRecord;
use super::headers::{
    add_forwarded_value, client_ip_value, normalize_host_cow, request_host_value, strip_hop_by_hop,
    wants_upgrade, X_REQUEST_ID,
};
use super::pool::{Lease, Pool};
use super::raw::{encode_head, RawBody, RawPool};
use super::{pages, BackendSlot, Error, RouteEntry, RouteTable, RouterConfig};

/// How long a client may take to send its request headers.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take for its TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

type BoxError = Box<dyn std::error::Error + Send + Sync>;
type RespBody = BoxBody<Bytes, BoxError>;

/// Counts one request on a backend while it lives.
struct InFlight(Arc<BackendSlot>);

impl InFlight {
    fn new(slot: &Arc<BackendSlot>) -> InFlight {
        slot.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(Arc::clone(slot))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A backend's response body: from hyper's client, or read on the fast path (`raw`).
enum Upstream {
    Hyper(Incoming),
    Raw(RawBody),
}

/// A response body that keeps its request counted on the backend until it ends, and
/// counts its bytes for the access line (sent when the body is dropped).
struct Guarded {
    inner: Upstream,
    guard: Option<InFlight>,
    access: Option<Box<AccessRecord>>,
    /// hyper's backend connection, back to the pool once the body has ended (a fast-path
    /// body gives its connection back itself).
    lease: Option<Lease>,
}

impl Drop for Guarded {
    fn drop(&mut self) {
        if let Some(rec) = &self.access {
            rec.emit();
        }
        // hyper stops polling a body that says it ended; the connection is reusable then.
        if self.inner_ended() {
            if let Some(lease) = self.lease.take() {
                lease.release();
            }
        }
    }
}

impl Guarded {
    fn inner_ended(&self) -> bool {
        match &self.inner {
            Upstream::Hyper(b) => b.is_end_stream(),
            Upstream::Raw(b) => b.is_end_stream(),
        }
    }
}

impl Body for Guarded {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let polled: Poll<Option<Result<Frame<Bytes>, BoxError>>> = match &mut self.inner {
            Upstream::Hyper(b) => Pin::new(b)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(BoxError::from))),
            Upstream::Raw(b) => Pin::new(b)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(BoxError::from))),
        };
        match &polled {
            Poll::Ready(None) => {
                self.guard = None;
                if let Some(lease) = self.lease.take() {
                    lease.release();
                }
            }
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(rec), Some(d)) = (self.access.as_mut(), frame.data_ref()) {
                    rec.bytes += d.len() as u64;
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner_ended()
    }

    fn size_hint(&self) -> SizeHint {
        match &self.inner {
            Upstream::Hyper(b) => b.size_hint(),
            Upstream::Raw(b) => b.size_hint(),
        }
    }
}

/// The incoming request body, shared so that a request whose connection attempt failed
/// (before the client read any of its body) can be sent again to another backend. It
/// counts the bytes passed on and fails once they exceed the cap.
pub(super) struct SharedBody {
    slot: Arc<Mutex<Option<Incoming>>>,
    polled: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    limit: u64,
}

/// The error a body over the cap ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body is larger than {0} bytes")]
struct TooLarge(u64);

impl Body for SharedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.polled.store(true, Ordering::Relaxed);
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let Some(body) = slot.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                let sent = self.sent.fetch_add(len, Ordering::Relaxed) + len;
                if sent > self.limit {
                    *slot = None;
                    return Poll::Ready(Some(Err(Box::new(TooLarge(self.limit)))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
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

/// The body sent to a backend: nothing (most GETs, no lock or allocation) or the client's.
pub(super) enum OutBody {
    Empty,
    Shared(SharedBody),
}

impl Body for OutBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            OutBody::Empty => Poll::Ready(None),
            OutBody::Shared(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            OutBody::Empty => true,
            OutBody::Shared(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            OutBody::Empty => SizeHint::with_exact(0),
            OutBody::Shared(b) => b.size_hint(),
        }
    }
}

struct Proxy {
    table: RouteTable,
    pool: Pool,
    raw: RawPool,
    config: RouterConfig,
}

impl Proxy {
    fn new(table: RouteTable, config: RouterConfig) -> Proxy {
        Proxy {
            table,
            pool: Pool::new(config.connect_timeout, config.pool_idle),
            raw: RawPool::new(config.connect_timeout, config.pool_idle),
            config,
        }
    }

    async fn handle(&self, req: Request<Incoming>, client: &ClientConn) -> Response<RespBody> {
        let https = client.https;
        let Some(raw_host) = request_host_value(&req) else {
            return page(&Error::NoHost);
        };
        let Ok(raw) = raw_host.to_str() else {
            return page(&Error::NoHost);
        };
        let host = normalize_host_cow(raw);
        if req.uri().path().starts_with(super::acme::PREFIX) {
            if let Some(answer) = self.table.challenges().answer(&host, req.uri().path()) {
                return acme_answer(answer);
            }
        }
        let Some(entry) = self.table.snapshot().lookup(&host).cloned() else {
            tracing::debug!(%host, "no app is served here");
            return page(&Error::UnknownHost {
                host: host.into_owned(),
            });
        };
        let mut access =
            AccessRecord::start(&entry.access, req.method(), req.uri().path(), &host, https);
        if entry.https_redirect && !https {
            let resp = redirect_to_https(&host, self.config.https_port, req.uri());
            if let Some(mut rec) = access {
                rec.status = resp.status().as_u16();
                rec.emit();
            }
            return resp;
        }
        match self
            .forward(&entry, raw_host, req, client, &mut access)
            .await
        {
            Ok(resp) => resp,
            Err(e) => {
                match &e {
                    Error::Upstream { .. } | Error::BadRequest { .. } | Error::Timeout { .. } => {
                        tracing::warn!(error = %e, "proxy error")
                    }
                    _ => tracing::debug!(error = %e, "not proxied"),
                }
                let resp = page(&e);
                if let Some(mut rec) = access {
                    rec.status = resp.status().as_u16();
                    rec.bytes = resp.body().size_hint().exact().unwrap_or(0);
                    rec.emit();
                }
                resp
            }
        }
    }

    async fn forward(
        &self,
        entry: &RouteEntry,
        raw_host: HeaderValue,
        mut req: Request<Incoming>,
        client: &ClientConn,
        access: &mut Option<Box<AccessRecord>>,
    ) -> Result<Response<RespBody>, Error> {
        let route = &entry.route;
        let Some(first) = entry.pick() else {
            return Err(Error::NoBackends {
                app: route.app.clone(),
            });
        };
        let n = entry.slots.len();
        let limit = self.config.max_body_bytes;
        let too_large = || Error::TooLarge {
            app: route.app.clone(),
            limit,
        };
        if req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|len| len > limit)
        {
            return Err(too_large());
        }

        let upgrade = req.version() == Version::HTTP_11 && wants_upgrade(req.headers());
        let mut client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let (parts, body) = req.into_parts();
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers, upgrade);
        if !headers.contains_key(header::HOST) {
            headers.insert(header::HOST, raw_host.clone());
        }
        let request_id = add_forwarded_value(&mut headers, &client.ip, raw_host, client.https);
        if let Some(rec) = access.as_mut() {
            rec.request_id = request_id.to_str().unwrap_or_default().to_string();
        }
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));

        // Bodyless requests (most GETs) skip the shared slot and its allocations.
        let shared = (!body.is_end_stream()).then(|| {
            (
                Arc::new(Mutex::new(Some(body))),
                Arc::new(AtomicU64::new(0)),
            )
        });
        if shared.is_none() && !upgrade {
            return self
                .forward_raw(
                    entry,
                    first,
                    &parts.method,
                    &path,
                    &headers,
                    request_id,
                    access,
                )
                .await;
        }
        let tries = n.min(2);
        let mut last_error = None;
        for attempt in 0..tries {
            let backend = &entry.slots[(first + attempt) % n];
            let guard = InFlight::new(backend);
            let addr = &backend.backend.addr;
            if let Some(rec) = access.as_mut() {
                rec.job.clone_from(&backend.backend.job_id);
            }
            let polled = shared.as_ref().map(|_| Arc::new(AtomicBool::new(false)));
            let out_body = match (&shared, &polled) {
                (Some((slot, sent)), Some(polled)) => OutBody::Shared(SharedBody {
                    slot: Arc::clone(slot),
                    polled: Arc::clone(polled),
                    sent: Arc::clone(sent),
                    limit,
                }),
                _ => OutBody::Empty,
            };
            // Origin form (`/path?q`) on a plain HTTP/1.1 backend connection.
            let mut out = Request::new(out_body);
            *out.method_mut() = parts.method.clone();
            *out.uri_mut() = Uri::from(path.clone());
            *out.version_mut() = Version::HTTP_11;
            *out.headers_mut() = if attempt + 1 < tries {
                headers.clone()
            } else {
                std::mem::take(&mut headers)
            };
            let after = self.config.response_timeout;
            let answer = match tokio::time::timeout(after, self.pool.send(addr, out)).await {
                Ok(answer) => answer,
                Err(_) => {
                    return Err(Error::Timeout {
                        app: route.app.clone(),
                        addr: addr.clone(),
                        after,
                    })
                }
            };
            match answer {
                Ok((resp, lease)) => {
                    if let Some(rec) = access.as_mut() {
                        rec.status = resp.status().as_u16();
                    }
                    return Ok(respond(
                        resp,
                        client_upgrade.take(),
                        request_id,
                        guard,
                        access.take(),
                        lease,
                    ));
                }
                Err(source) => {
                    if shared
                        .as_ref()
                        .is_some_and(|(_, sent)| sent.load(Ordering::Relaxed) > limit)
                    {
                        return Err(too_large());
                    }
                    let retry = source.is_connect()
                        && polled.as_ref().is_none_or(|p| !p.load(Ordering::Relaxed));
                    tracing::warn!(app = %route.app, %addr, job = %backend.backend.job_id,
                        error = %source, retry, "backend request failed");
                    last_error = Some(Error::Upstream {
                        app: route.app.clone(),
                        addr: addr.clone(),
                        source: source.boxed(),
                    });
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(last_error.expect("at least one attempt was made"))
    }

    /// A request without a body (and no upgrade) on the fast path (`raw`): the head is
    /// encoded once and sent to the picked backend, or to the next one when connecting
    /// fails.
    #[allow(clippy::too_many_arguments)]
    async fn forward_raw(
        &self,
        entry: &RouteEntry,
        first: usize,
        method: &Method,
        path: &PathAndQuery,
        headers: &HeaderMap,
        request_id: HeaderValue,
        access: &mut Option<Box<AccessRecord>>,
    ) -> Result<Response<RespBody>, Error> {
        let route = &entry.route;
        let n = entry.slots.len();
        let mut head = Vec::with_capacity(256 + 64 * headers.len());
        encode_head(&mut head, method, path.as_str(), headers);
        let tries = n.min(2);
        let mut last_error = None;
        for attempt in 0..tries {
            let backend = &entry.slots[(first + attempt) % n];
            let guard = InFlight::new(backend);
            let addr = &backend.backend.addr;
            if let Some(rec) = access.as_mut() {
                rec.job.clone_from(&backend.backend.job_id);
            }
            let after = self.config.response_timeout;
            let answer = match tokio::time::timeout(after, self.raw.send(addr, method, &head)).await
            {
                Ok(answer) => answer,
                Err(_) => {
                    return Err(Error::Timeout {
                        app: route.app.clone(),
                        addr: addr.clone(),
                        after,
                    })
                }
            };
            match answer {
                Ok(mut resp) => {
                    if let Some(rec) = access.as_mut() {
                        rec.status = resp.status().as_u16();
                    }
                    strip_hop_by_hop(resp.headers_mut(), false);
                    resp.headers_mut().insert(X_REQUEST_ID, request_id);
                    let access = access.take();
                    return Ok(resp.map(|body| {
                        Guarded {
                            inner: Upstream::Raw(body),
                            guard: Some(guard),
                            access,
                            lease: None,
                        }
                        .boxed()
                    }));
                }
                Err(source) => {
                    let retry = source.is_connect();
                    tracing::warn!(app = %route.app, %addr, job = %backend.backend.job_id,
                        error = %source, retry, "backend request failed");
                    last_error = Some(Error::Upstream {
                        app: route.app.clone(),
                        addr: addr.clone(),
                        source: Box::new(source),
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
    guard: InFlight,
    access: Option<Box<AccessRecord>>,
    lease: Lease,
) -> Response<RespBody> {
    let switching = resp.status() == StatusCode::SWITCHING_PROTOCOLS;
    let mut guard = Some(guard);
    // An upgraded connection is never reused.
    let lease = (!switching).then_some(lease);
    match client_upgrade {
        Some(client_side) if switching => {
            let backend_side = hyper::upgrade::on(&mut resp);
            let guard = guard.take();
            tokio::spawn(async move {
                // The spliced connection counts as a request until it closes.
                let _guard = guard;
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
    resp.map(|inner| {
        Guarded {
            inner: Upstream::Hyper(inner),
            guard,
            access,
            lease,
        }
        .boxed()
    })
}

/// `308 Permanent Redirect` to the same host and path over HTTPS (the method and body are
/// kept by clients, unlike 301).
fn redirect_to_https(host: &str, port: Option<u16>, uri: &Uri) -> Response<RespBody> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let location = match port {
        Some(p) if p != 443 => format!("https://{host}:{p}{path}"),
        _ => format!("https://{host}{path}"),
    };
    let mut resp = Response::new(
        http_body_util::Full::new(Bytes::new())
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = StatusCode::PERMANENT_REDIRECT;
    if let Ok(v) = HeaderValue::from_str(&location) {
        resp.headers_mut().insert(header::LOCATION, v);
    }
    resp
}

/// The answer to an ACME HTTP-01 challenge: the key authorization as plain text.
fn acme_answer(key_authorization: Bytes) -> Response<RespBody> {
    let mut resp = Response::new(
        http_body_util::Full::new(key_authorization)
            .map_err(|never| match never {})
            .boxed(),
    );
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    resp
}

/// The HTML error page for `e`.
fn page(e: &Error) -> Response<RespBody> {
    pages::error_page(e).map(|b| b.map_err(|never| match never {}).boxed())
}

/// Serves on one single-threaded runtime per CPU (like nginx's workers): each thread keeps
/// a connection's server side, its backend connection and the wake-ups between them on one
/// thread, which saves the cross-thread hand-offs of a work-stealing runtime. Connections
/// are accepted here and dealt to the threads in turn, so each thread gets an equal share
/// (threads accepting from one shared socket split 50 keep-alive connections unevenly,
/// e.g. 35/15, and then one core idles while the other is the bottleneck: `bench/run
/// router` showed that as rounds a fifth slower than the others). Dropping the returned
/// future stops the threads and with them their connections.
pub(super) async fn serve(
    listener: tokio::net::TcpListener,
    table: RouteTable,
    config: RouterConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<()> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (stop, stopped) = tokio::sync::watch::channel(());
    let (done_tx, mut done) = tokio::sync::mpsc::channel::<std::io::Result<()>>(threads);
    let mut workers = Vec::with_capacity(threads);
    for i in 0..threads {
        let (conn_tx, conn_rx) = tokio::sync::mpsc::unbounded_channel();
        workers.push(conn_tx);
        let (table, config, tls) = (table.clone(), config.clone(), tls.clone());
        let (mut stopped, done_tx) = (stopped.clone(), done_tx.clone());
        std::thread::Builder::new()
            .name(format!("router-{i}"))
            .spawn(move || {
                let result = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .and_then(|rt| {
                        rt.block_on(async move {
                            tokio::select! {
                                r = serve_on(conn_rx, table, config, tls) => r,
                                // Err: the `serve` future was dropped.
                                _ = stopped.changed() => Ok(()),
                            }
                        })
                    });
                let _ = done_tx.try_send(result);
            })?;
    }
    drop(done_tx);
    let mut next = 0usize;
    let result = loop {
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
                // Off this runtime's reactor, onto the worker's (`serve_on`).
                match stream.into_std() {
                    Ok(stream) => {
                        let _ = workers[next % threads].send((stream, peer));
                        next = next.wrapping_add(1);
                    }
                    Err(e) => tracing::warn!(%peer, error = %e, "router could not hand a connection on"),
                }
            }
            // A worker only ends with an error.
            r = done.recv() => break r.unwrap_or(Ok(())),
        }
    };
    drop(stop);
    result
}

/// The connections of one runtime, as the accept loop in [`serve`] deals them.
async fn serve_on(
    mut incoming: tokio::sync::mpsc::UnboundedReceiver<(std::net::TcpStream, SocketAddr)>,
    table: RouteTable,
    config: RouterConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<()> {
    let proxy = Arc::new(Proxy::new(table, config));
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
            next = incoming.recv() => {
                let Some((stream, peer)) = next else {
                    return Ok(());
                };
                let stream = match tokio::net::TcpStream::from_std(stream) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::warn!(%peer, error = %e, "router could not take a connection");
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let proxy = Arc::clone(&proxy);
                let builder = builder.clone();
                match &tls {
                    None => {
                        connections.spawn(connection(builder, stream, proxy, peer, false));
                    }
                    Some(acceptor) => {
                        let acceptor = acceptor.clone();
                        connections.spawn(async move {
                            let handshake = tokio::time::timeout(
                                TLS_HANDSHAKE_TIMEOUT,
                                acceptor.accept(stream),
                            );
                            match handshake.await {
                                Ok(Ok(stream)) => {
                                    connection(builder, stream, proxy, peer, true).await
                                }
                                Ok(Err(e)) => {
                                    tracing::debug!(%peer, error = %e, "TLS handshake failed")
                                }
                                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                            }
                        });
                    }
                }
            }
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

/// What the proxy knows of a client connection (made once per connection).
struct ClientConn {
    /// The peer's IP as an `X-Forwarded-For` value.
    ip: HeaderValue,
    https: bool,
}

/// Serves one client connection (plain or TLS) until it closes.
async fn connection<I>(
    builder: auto::Builder<TokioExecutor>,
    io: I,
    proxy: Arc<Proxy>,
    peer: SocketAddr,
    https: bool,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let client = Arc::new(ClientConn {
        ip: client_ip_value(peer.ip()),
        https,
    });
    let service = service_fn(move |req| {
        let proxy = Arc::clone(&proxy);
        let client = Arc::clone(&client);
        async move { Ok::<_, Infallible>(proxy.handle(req, &client).await) }
    });
    let conn = builder.serve_connection_with_upgrades(TokioIo::new(io), service);
    if let Err(e) = conn.await {
        tracing::debug!(%peer, error = %e, "router connection ended with an error");
    }
}
