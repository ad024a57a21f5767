//! paas-router: `Host: <app>.<domain>` → a healthy backend of the app's `web` process.
//!
//! CONTRACT used by the rest of the controller (the router helper implements the bodies and
//! may add to this API, not change it). The route table is pushed in; this module never
//! reads the store.
//!
//! The table is an immutable [`Snapshot`] behind `RwLock<Arc<…>>`: a request clones the
//! `Arc` (the lock is held for that instant only) and a `replace` builds the next snapshot
//! before taking the write lock just to swap the pointer. Each route keeps an atomic
//! round-robin counter, carried over across `replace` for apps that stay, and each backend
//! an in-flight counter (a [`BackendSlot`]) carried over by address: requests go to the
//! backend with the fewest outstanding requests (ties round-robin), and a backend that
//! leaves the table keeps serving its in-flight requests, which [`RouteTable::in_flight`]
//! and [`RouteTable::wait_drained`] let the scheduler wait for. Submodules:
//! `headers` (host parsing, hop-by-hop and forwarding headers), `pages` (the HTML error
//! pages), `proxy` (the hyper server and the attempt loop), `exchange` (one attempt's send step and the
//! request bodies), `pool` and `raw` (the backend
//! connections with and without hyper's client), `idle` (their idle lists), `tls` (HTTPS
//! certificates and SNI), `access` and `history` (access lines for the app's log: live and
//! the last requests kept per router thread) and `acme` (HTTP-01 challenge answers). See
//! docs/router.md.

mod access;
pub mod acme;
pub mod clock;
mod exchange;
pub mod feed;
mod headers;
mod history;
mod idle;
pub mod internal;
mod pages;
mod pool;
pub mod process;
mod proxy;
mod raw;
pub mod tls;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

pub use access::{AccessFollower, AccessLog};
pub use headers::normalize_host;
pub use history::HistoryLimits;
pub use tls::TlsCerts;

/// One backend (a running, healthy web job).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Backend {
    /// `ip:port` to connect to.
    pub addr: String,
    pub job_id: String,
}

/// All the hosts of one app and where they go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub app: String,
    /// Lower-case host names without port, e.g. `hello.localhost`.
    pub hosts: Vec<String>,
    /// Empty means the app exists but has no healthy web job (→ 503).
    pub backends: Vec<Backend>,
}

/// Why a request could not be proxied; each becomes an HTML error page.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the request has no Host header")]
    NoHost,
    #[error("no app is served at {host}")]
    UnknownHost { host: String },
    #[error("{app} has no running web process")]
    NoBackends { app: String },
    #[error("{app}'s web process at {addr} did not answer: {source}")]
    Upstream {
        app: String,
        addr: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("{app}'s web process at {addr} did not answer within {after:?}")]
    Timeout {
        app: String,
        addr: String,
        after: Duration,
    },
    #[error("the request body for {app} is larger than {limit} bytes")]
    TooLarge { app: String, limit: u64 },
    #[error("building the request for {app} to {addr} failed: {source}")]
    BadRequest {
        app: String,
        addr: String,
        #[source]
        source: http::Error,
    },
}

/// Timeouts and limits of the proxy.
#[derive(Debug, Clone)]
pub struct RouterConfig {
    /// How long to wait for a backend to accept a connection (then: next backend or 502).
    pub connect_timeout: Duration,
    /// How long to wait for a backend's response headers once the request is sent (→ 504).
    pub response_timeout: Duration,
    /// How long an idle keep-alive connection to a backend stays in the pool.
    pub pool_idle: Duration,
    /// Largest request body passed on (→ 413).
    pub max_body_bytes: u64,
    /// The port HTTPS is served on, for redirects of apps that ask for them (None: 443).
    pub https_port: Option<u16>,
}

impl Default for RouterConfig {
    fn default() -> RouterConfig {
        RouterConfig {
            // Short: a backend that does not accept within it is taken out (passive
            // health) and the request goes to another one.
            connect_timeout: Duration::from_secs(1),
            response_timeout: Duration::from_secs(30),
            pool_idle: Duration::from_secs(60),
            max_body_bytes: 100 * 1024 * 1024,
            https_port: None,
        }
    }
}

/// A backend in the table with its count of requests being served (counted from picking
/// the backend until the response body ends or an upgraded connection closes).
#[derive(Debug)]
pub(crate) struct BackendSlot {
    pub(crate) backend: Backend,
    pub(crate) in_flight: AtomicUsize,
    /// The job id, shared with the access history (which refers to it without a copy).
    pub(crate) job: Arc<str>,
    /// Passive health: connection failures in a row, and until when (ms of
    /// [`clock_ms`]) the backend gets no new requests because of them.
    pub(crate) failures: AtomicU32,
    pub(crate) down_until: AtomicU64,
}

/// The longest a backend is left out after connection failures before it is tried again.
pub const MAX_DOWN: Duration = Duration::from_secs(10);

/// Milliseconds since this process first asked (a monotonic clock for passive health).
pub(crate) fn clock_ms() -> u64 {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START
        .get_or_init(std::time::Instant::now)
        .elapsed()
        .as_millis() as u64
}

impl BackendSlot {
    pub(crate) fn new(backend: Backend) -> BackendSlot {
        BackendSlot {
            job: backend.job_id.as_str().into(),
            backend,
            in_flight: AtomicUsize::new(0),
            failures: AtomicU32::new(0),
            down_until: AtomicU64::new(0),
        }
    }

    /// False while the backend is left out after connection failures.
    pub(crate) fn up(&self, now_ms: u64) -> bool {
        self.down_until.load(Ordering::Relaxed) <= now_ms
    }

    /// A connection to it failed: it gets no new requests for 1 s after the first failure
    /// in a row, 2 s after the second, … up to [`MAX_DOWN`]; then one request probes it.
    pub(crate) fn connect_failed(&self) {
        let n = self.failures.fetch_add(1, Ordering::Relaxed) as u64 + 1;
        let pause = (n * 1000).min(MAX_DOWN.as_millis() as u64);
        self.down_until.store(clock_ms() + pause, Ordering::Relaxed);
        tracing::warn!(addr = %self.backend.addr, job = %self.backend.job_id, failures = n,
            "backend taken out after a connection failure; probed again in {pause} ms");
    }

    /// A request reached it: it is healthy again.
    pub(crate) fn reached(&self) {
        if self.failures.load(Ordering::Relaxed) != 0 {
            self.failures.store(0, Ordering::Relaxed);
            self.down_until.store(0, Ordering::Relaxed);
        }
    }
}

/// A route with its round-robin counter and backend slots.
#[derive(Debug)]
pub(crate) struct RouteEntry {
    pub(crate) route: Route,
    pub(crate) next: Arc<AtomicUsize>,
    pub(crate) slots: Vec<Arc<BackendSlot>>,
    /// Where this app's access lines go (see `access`).
    pub(crate) access: Arc<access::AppAccess>,
    /// `route.hosts` as shared strings, for the access history.
    pub(crate) hosts: Vec<Arc<str>>,
    /// Plain HTTP requests get a redirect to HTTPS.
    pub(crate) https_redirect: bool,
}

impl RouteEntry {
    /// The backend with the fewest outstanding requests; ties go round-robin. Backends
    /// left out after connection failures are skipped (unless all are).
    pub(crate) fn pick(&self) -> Option<usize> {
        let n = self.slots.len();
        if n == 0 {
            return None;
        }
        let start = self.next.fetch_add(1, Ordering::Relaxed) % n;
        let now = clock_ms();
        let mut best = start;
        let mut best_load = usize::MAX;
        for i in 0..n {
            let j = (start + i) % n;
            if !self.slots[j].up(now) {
                continue;
            }
            let load = self.slots[j].in_flight.load(Ordering::Relaxed);
            if load < best_load {
                best = j;
                best_load = load;
                if load == 0 {
                    break;
                }
            }
        }
        Some(best)
    }
}

/// One immutable version of the table.
#[derive(Debug, Default)]
pub struct Snapshot {
    routes: Vec<Arc<RouteEntry>>,
    /// Each host's route and its index in the route's hosts.
    by_host: HashMap<String, (Arc<RouteEntry>, usize)>,
}

impl Snapshot {
    /// The route serving a normalized host, and the host's index in its hosts.
    pub(crate) fn lookup(&self, host: &str) -> Option<(&Arc<RouteEntry>, usize)> {
        self.by_host.get(host).map(|(e, i)| (e, *i))
    }
}

/// The shared route table. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    inner: Arc<RwLock<Arc<Snapshot>>>,
    /// Every backend slot by address, also after it left the table, while a request still
    /// holds it (updated by `replace` only, never on the request path).
    slots: Arc<Mutex<HashMap<String, Weak<BackendSlot>>>>,
    /// The certificates the HTTPS listener presents.
    certs: TlsCerts,
    /// The apps' access line channels.
    access: AccessLog,
    /// Apps whose plain HTTP requests are redirected to HTTPS.
    redirects: Arc<Mutex<HashSet<String>>>,
    /// Pending ACME HTTP-01 challenges, answered before routing.
    challenges: acme::Challenges,
    /// Bumped on every `replace` and [`RouteTable::touch`]: what the router process's feed
    /// waits on.
    changed: Arc<tokio::sync::watch::Sender<u64>>,
}

impl RouteTable {
    pub fn new() -> RouteTable {
        RouteTable::default()
    }

    /// Replaces the whole table atomically. Host names are normalized (lower case, no port,
    /// no trailing dot); if two routes claim one host, the later one wins.
    pub fn replace(&self, routes: Vec<Route>) {
        let mut slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        let old = self.snapshot();
        let counters: HashMap<&str, &Arc<AtomicUsize>> = old
            .routes
            .iter()
            .map(|e| (e.route.app.as_str(), &e.next))
            .collect();
        let redirects = self
            .redirects
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let mut snap = Snapshot::default();
        for mut route in routes {
            route.hosts = route.hosts.iter().map(|h| normalize_host(h)).collect();
            let next = counters
                .get(route.app.as_str())
                .map(|c| Arc::clone(c))
                .unwrap_or_default();
            let slots_of_route = route
                .backends
                .iter()
                .map(|b| match slots.get(&b.addr).and_then(Weak::upgrade) {
                    Some(slot) if slot.backend == *b => slot,
                    _ => {
                        let slot = Arc::new(BackendSlot::new(b.clone()));
                        slots.insert(b.addr.clone(), Arc::downgrade(&slot));
                        slot
                    }
                })
                .collect();
            let access = self.access.channel(&route.app);
            let https_redirect = redirects.contains(&route.app);
            let hosts = route.hosts.iter().map(|h| Arc::from(h.as_str())).collect();
            let entry = Arc::new(RouteEntry {
                route,
                next,
                slots: slots_of_route,
                access,
                hosts,
                https_redirect,
            });
            for (i, host) in entry.route.hosts.iter().enumerate() {
                if let Some((prev, _)) = snap.by_host.insert(host.clone(), (Arc::clone(&entry), i))
                {
                    tracing::warn!(host, app = %entry.route.app, other = %prev.route.app,
                        "two apps claim one host; the later one wins");
                }
            }
            snap.routes.push(entry);
        }
        let apps: Vec<&str> = snap.routes.iter().map(|e| e.route.app.as_str()).collect();
        self.access.retain_apps(&apps);
        // HTTPS presents an app's certificates only for the hosts it serves.
        self.certs.set_hosts(
            snap.by_host
                .iter()
                .map(|(host, (e, _))| (host.clone(), e.route.app.clone()))
                .collect(),
        );
        let snap = Arc::new(snap);
        drop(old);
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = snap;
        slots.retain(|_, w| w.strong_count() > 0);
        drop(slots);
        self.touch();
    }

    /// Tells whoever follows [`RouteTable::changes`] that something changed (call it after
    /// replacing the certificates; `replace` and the redirects call it themselves).
    pub fn touch(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// Turns on every change of routes, redirects or (after [`RouteTable::touch`])
    /// certificates.
    pub fn changes(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changed.subscribe()
    }

    /// Takes the backend at `addr` out of every route (the other backends and routes stay),
    /// so it gets no new requests; the ones it is serving finish.
    pub fn remove_backend(&self, addr: &str) {
        let routes = self
            .routes()
            .into_iter()
            .map(|mut r| {
                r.backends.retain(|b| b.addr != addr);
                r
            })
            .collect();
        self.replace(routes);
    }

    /// Requests the backend at `addr` is serving right now (0 for an unknown address).
    pub fn in_flight(&self, addr: &str) -> usize {
        let slots = self.slots.lock().unwrap_or_else(|e| e.into_inner());
        slots
            .get(addr)
            .and_then(Weak::upgrade)
            .map_or(0, |s| s.in_flight.load(Ordering::Relaxed))
    }

    /// Waits until the backend at `addr` serves no request or `grace` passed; true when it
    /// drained. Call it after the backend left the table (see `remove_backend`).
    pub async fn wait_drained(&self, addr: &str, grace: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + grace;
        loop {
            if self.in_flight(addr) == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The current table (as given to the last `replace`, hosts normalized).
    pub fn routes(&self) -> Vec<Route> {
        self.snapshot()
            .routes
            .iter()
            .map(|e| e.route.clone())
            .collect()
    }

    /// The route serving `host` (any case, with or without port).
    pub fn lookup(&self, host: &str) -> Option<Route> {
        self.snapshot()
            .lookup(&normalize_host(host))
            .map(|(e, _)| e.route.clone())
    }

    /// Sets which apps get plain HTTP requests redirected to HTTPS (`308` to the same host
    /// and path on [`RouterConfig::https_port`]); takes effect for the next request.
    pub fn set_https_redirects(&self, apps: &[String]) {
        let next: HashSet<String> = apps.iter().cloned().collect();
        {
            let mut redirects = self.redirects.lock().unwrap_or_else(|e| e.into_inner());
            if *redirects == next {
                return;
            }
            *redirects = next;
        }
        self.replace(self.routes());
    }

    /// The apps whose plain HTTP requests are redirected to HTTPS, sorted.
    pub fn https_redirects(&self) -> Vec<String> {
        let redirects = self.redirects.lock().unwrap_or_else(|e| e.into_inner());
        let mut apps: Vec<String> = redirects.iter().cloned().collect();
        apps.sort();
        apps
    }

    /// The certificates the HTTPS listener presents (replace them to change them live).
    pub fn certs(&self) -> &TlsCerts {
        &self.certs
    }

    /// The ACME HTTP-01 challenges the router answers (`GET
    /// /.well-known/acme-challenge/<token>` on the challenge's host, before routing).
    pub fn challenges(&self) -> &acme::Challenges {
        &self.challenges
    }

    /// The apps' access lines (`subscribe(app)` to follow one).
    pub fn access_log(&self) -> &AccessLog {
        &self.access
    }

    /// The current immutable snapshot; holding it never blocks `replace`.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.inner.read().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Serves HTTP (HTTP/1.1 and h2c) on `listener` until the task is dropped; dropping it
/// also ends the connections it accepted.
pub async fn serve(listener: tokio::net::TcpListener, table: RouteTable) -> std::io::Result<()> {
    proxy::serve(listener, table, RouterConfig::default(), None).await
}

/// [`serve`] with other timeouts and limits.
pub async fn serve_with(
    listener: tokio::net::TcpListener,
    table: RouteTable,
    config: RouterConfig,
) -> std::io::Result<()> {
    proxy::serve(listener, table, config, None).await
}

/// Serves HTTPS (TLS with SNI from [`RouteTable::certs`]; HTTP/2 or HTTP/1.1 by ALPN) on
/// `listener` until the task is dropped. Requests are forwarded with
/// `X-Forwarded-Proto: https`.
pub async fn serve_tls(
    listener: tokio::net::TcpListener,
    table: RouteTable,
) -> std::io::Result<()> {
    serve_tls_with(listener, table, RouterConfig::default()).await
}

/// [`serve_tls`] with other timeouts and limits.
pub async fn serve_tls_with(
    listener: tokio::net::TcpListener,
    table: RouteTable,
    config: RouterConfig,
) -> std::io::Result<()> {
    let acceptor = tokio_rustls::TlsAcceptor::from(table.certs().server_config());
    proxy::serve(listener, table, config, Some(acceptor)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(addrs: &[&str]) -> RouteEntry {
        let slots = addrs
            .iter()
            .map(|a| {
                Arc::new(BackendSlot::new(Backend {
                    addr: a.to_string(),
                    job_id: format!("job-{a}"),
                }))
            })
            .collect();
        RouteEntry {
            route: Route {
                app: "a".into(),
                hosts: vec![],
                backends: vec![],
            },
            next: Arc::default(),
            slots,
            access: Arc::new(access::AppAccess::new(0)),
            hosts: vec![],
            https_redirect: false,
        }
    }

    #[test]
    fn a_backend_whose_connection_failed_is_skipped_until_it_answers() {
        let e = entry(&["x:1", "y:1"]);
        e.slots[0].connect_failed();
        for _ in 0..10 {
            assert_eq!(e.pick(), Some(1), "x is left out at once");
        }
        // Left out by all: the pick still goes somewhere (better a try than a 503).
        e.slots[1].connect_failed();
        assert!(e.pick().is_some());
        // A request that reaches it brings it back.
        e.slots[0].reached();
        e.slots[1].reached();
        let picks: HashSet<usize> = (0..4).filter_map(|_| e.pick()).collect();
        assert_eq!(picks.len(), 2);
    }

    #[test]
    fn the_pause_grows_with_failures_in_a_row_up_to_max_down() {
        let e = entry(&["x:1"]);
        let s = &e.slots[0];
        let now = clock_ms();
        s.connect_failed();
        let first = s.down_until.load(Ordering::Relaxed) - now;
        s.connect_failed();
        let second = s.down_until.load(Ordering::Relaxed) - now;
        assert!(second > first, "{first} then {second}");
        for _ in 0..20 {
            s.connect_failed();
        }
        let last = s.down_until.load(Ordering::Relaxed) - clock_ms();
        assert!(last <= MAX_DOWN.as_millis() as u64);
    }
}
