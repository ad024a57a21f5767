//! The reverse proxy: a hyper server (HTTP/1.1 and h2c) whose service looks the request's
//! host up in the route table, picks the backend with the fewest outstanding requests and
//! forwards the request with a pooled HTTP/1.1 client, streaming bodies both ways. Each
//! request holds an [`InFlight`] guard on its backend until its response body ends.
//! Protocol upgrades (websockets) are spliced through with `copy_bidirectional` once both
//! sides switched. Bodyless requests go the fast path (`raw`), the others hyper's client
//! (`pool`); both run the same attempt loop ([`Proxy::attempts`] over an [`Exchange`]:
//! in-flight guard, response timeout, the next backend after a connect error). [`serve`]
//! runs one single-threaded runtime per CPU, each with its own proxy, backend pools and
//! access history; with a TLS acceptor each connection does its handshake first (SNI picks
//! the certificate, ALPN h2 or http/1.1). Each request leaves an access record (`access`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{header, HeaderValue, Request, Response, StatusCode, Uri, Version};
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use tokio::task::JoinSet;

use super::access::AccessRecord;
use super::exchange::{Exchange, HyperExchange, RawExchange};
use super::headers::{
    add_forwarded_value, client_ip_value, normalize_host_cow, request_host_value, strip_hop_by_hop,
    wants_upgrade, X_REQUEST_ID,
};
use super::pool::{Lease, Pool};
use super::raw::{encode_head, RawBody, RawPool};
use super::{pages, BackendSlot, Error, RouteEntry, RouteTable, RouterConfig};

/// Backends one request is sent to at most when connections fail.
const MAX_TRIES: usize = 3;
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
/// counts its bytes for the access record (kept when the body is dropped).
struct Guarded {
    inner: Upstream,
    guard: Option<InFlight>,
    entry: Arc<RouteEntry>,
    access: AccessRecord,
    /// hyper's backend connection, back to the pool once the body has ended (a fast-path
    /// body gives its connection back itself).
    lease: Option<Lease>,
}

impl Drop for Guarded {
    fn drop(&mut self) {
        self.access.emit(&self.entry);
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
                if let Some(d) = frame.data_ref() {
                    self.access.req.bytes += d.len() as u64;
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

/// A backend's answer on its way to the client: the response (hop-by-hop headers out,
/// request id in), the request's count on its backend, and hyper's connection lease.
struct Answer {
    resp: Response<Upstream>,
    guard: Option<InFlight>,
    lease: Option<Lease>,
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
        let Some((entry, host_index)) = self
            .table
            .snapshot()
            .lookup(&host)
            .map(|(e, i)| (Arc::clone(e), i))
        else {
            tracing::debug!(%host, "no app is served here");
            return page(&Error::UnknownHost {
                host: host.into_owned(),
            });
        };
        let mut access = AccessRecord::start(req.method(), req.uri().path(), host_index, https);
        if entry.https_redirect && !https {
            let resp = redirect_to_https(&host, self.config.https_port, req.uri());
            access.req.status = resp.status().as_u16();
            access.emit(&entry);
            return resp;
        }
        match self
            .forward(&entry, raw_host, req, client, &mut access)
            .await
        {
            Ok(Answer { resp, guard, lease }) => {
                access.req.status = resp.status().as_u16();
                resp.map(|inner| {
                    Guarded {
                        inner,
                        guard,
                        entry,
                        access,
                        lease,
                    }
                    .boxed()
                })
            }
            Err(e) => {
                match &e {
                    Error::Upstream { .. } | Error::BadRequest { .. } | Error::Timeout { .. } => {
                        tracing::warn!(error = %e, "proxy error")
                    }
                    _ => tracing::debug!(error = %e, "not proxied"),
                }
                let resp = page(&e);
                access.req.status = resp.status().as_u16();
                access.req.bytes = resp.body().size_hint().exact().unwrap_or(0);
                access.emit(&entry);
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
        access: &mut AccessRecord,
    ) -> Result<Answer, Error> {
        let route = &entry.route;
        let Some(first) = entry.pick() else {
            return Err(Error::NoBackends {
                app: route.app.clone(),
            });
        };
        let limit = self.config.max_body_bytes;
        if req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|len| len > limit)
        {
            return Err(Error::TooLarge {
                app: route.app.clone(),
                limit,
            });
        }

        let upgrade = req.version() == Version::HTTP_11 && wants_upgrade(req.headers());
        let client_upgrade = upgrade.then(|| hyper::upgrade::on(&mut req));
        let (parts, body) = req.into_parts();
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers, upgrade);
        if !headers.contains_key(header::HOST) {
            headers.insert(header::HOST, raw_host.clone());
        }
        let request_id = add_forwarded_value(&mut headers, &client.ip, raw_host, client.https);
        access.set_request_id(&request_id);
        let path = parts
            .uri
            .path_and_query()
            .cloned()
            .unwrap_or_else(|| PathAndQuery::from_static("/"));

        // Bodyless requests (most GETs) take the fast path, without hyper's client and the
        // shared body slot's allocations.
        if body.is_end_stream() && !upgrade {
            let mut head = Vec::with_capacity(256 + 64 * headers.len());
            encode_head(&mut head, &parts.method, path.as_str(), &headers);
            let mut exchange = RawExchange {
                pool: &self.raw,
                method: &parts.method,
                head,
            };
            let (mut resp, guard) = self.attempts(entry, first, access, &mut exchange).await?;
            strip_hop_by_hop(resp.headers_mut(), false);
            resp.headers_mut().insert(X_REQUEST_ID, request_id);
            return Ok(Answer {
                resp: resp.map(Upstream::Raw),
                guard: Some(guard),
                lease: None,
            });
        }
        let mut exchange = HyperExchange {
            pool: &self.pool,
            method: parts.method,
            path,
            headers,
            body: (!body.is_end_stream()).then(|| {
                (
                    Arc::new(Mutex::new(Some(body))),
                    Arc::new(AtomicU64::new(0)),
                )
            }),
            polled: None,
            limit,
        };
        let ((resp, lease), guard) = self.attempts(entry, first, access, &mut exchange).await?;
        Ok(respond(resp, client_upgrade, request_id, guard, lease))
    }

    /// Sends the request to the picked backend (`first`) and, when connecting to it failed
    /// (nothing reached it), to the next backends not left out (up to [`MAX_TRIES`] in
    /// all). A connection failure takes its backend out at once (passive health, see
    /// `BackendSlot::connect_failed`). Each attempt counts on its backend (the guard goes
    /// with the answer) and gets the response timeout for its head.
    async fn attempts<X: Exchange>(
        &self,
        entry: &RouteEntry,
        first: usize,
        access: &mut AccessRecord,
        exchange: &mut X,
    ) -> Result<(X::Reply, InFlight), Error> {
        let route = &entry.route;
        let n = entry.slots.len();
        let now = crate::clock_ms();
        // The picked one, then the others that are up, in table order after it.
        let order: Vec<usize> = std::iter::once(first)
            .chain(
                (1..n)
                    .map(|k| (first + k) % n)
                    .filter(|&i| entry.slots[i].up(now)),
            )
            .take(MAX_TRIES)
            .collect();
        let tries = order.len();
        let after = self.config.response_timeout;
        let mut last_error = None;
        for (attempt, &index) in order.iter().enumerate() {
            let backend = &entry.slots[index];
            let guard = InFlight::new(backend);
            let addr = &backend.backend.addr;
            access.backend = Some(index);
            let sent = exchange.send(addr, attempt + 1 == tries);
            let source = match tokio::time::timeout(after, sent).await {
                Ok(Ok(reply)) => {
                    backend.reached();
                    return Ok((reply, guard));
                }
                Ok(Err(source)) => source,
                Err(_) => {
                    return Err(Error::Timeout {
                        app: route.app.clone(),
                        addr: addr.clone(),
                        after,
                    })
                }
            };
            if exchange.too_large() {
                return Err(Error::TooLarge {
                    app: route.app.clone(),
                    limit: self.config.max_body_bytes,
                });
            }
            let retry = exchange.may_retry(&source);
            if retry {
                backend.connect_failed();
            }
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
    lease: Lease,
) -> Answer {
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
    Answer {
        resp: resp.map(Upstream::Hyper),
        guard,
        lease,
    }
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

/// The connections of one runtime, as the accept loop in [`serve`] deals them. The thread
/// keeps its requests' access history and answers history reads between connections.
async fn serve_on(
    mut incoming: tokio::sync::mpsc::UnboundedReceiver<(std::net::TcpStream, SocketAddr)>,
    table: RouteTable,
    config: RouterConfig,
    tls: Option<tokio_rustls::TlsAcceptor>,
) -> std::io::Result<()> {
    super::history::start_thread(table.access_log().history_limits());
    let (queries_tx, mut queries) = tokio::sync::mpsc::unbounded_channel();
    table.access_log().add_thread(queries_tx);
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
            Some(query) = queries.recv() => super::history::answer(query),
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
