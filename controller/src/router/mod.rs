//! The router: `Host: <app>.<domain>` → a healthy backend of the app's `web` process.
//!
//! CONTRACT used by the rest of the controller (the router helper implements the bodies and
//! may add to this API, not change it). The route table is pushed in; this module never
//! reads the store.
//!
//! The table is an immutable [`Snapshot`] behind `RwLock<Arc<…>>`: a request clones the
//! `Arc` (the lock is held for that instant only) and a `replace` builds the next snapshot
//! before taking the write lock just to swap the pointer. Each route keeps an atomic
//! round-robin counter, carried over across `replace` for apps that stay. Submodules:
//! `headers` (host parsing, hop-by-hop and forwarding headers), `pages` (the HTML error
//! pages), `proxy` (the hyper server and the pooled client). See docs/router.md.

mod headers;
mod pages;
mod proxy;

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, RwLock};

pub use headers::normalize_host;

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
        source: hyper_util::client::legacy::Error,
    },
    #[error("building the request for {app} to {addr} failed: {source}")]
    BadRequest {
        app: String,
        addr: String,
        #[source]
        source: http::Error,
    },
}

/// A route with its round-robin counter.
#[derive(Debug)]
pub(crate) struct RouteEntry {
    pub(crate) route: Route,
    pub(crate) next: Arc<AtomicUsize>,
}

/// One immutable version of the table.
#[derive(Debug, Default)]
pub struct Snapshot {
    routes: Vec<Arc<RouteEntry>>,
    by_host: HashMap<String, Arc<RouteEntry>>,
}

impl Snapshot {
    pub(crate) fn lookup(&self, host: &str) -> Option<&Arc<RouteEntry>> {
        self.by_host.get(host)
    }
}

/// The shared route table. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    inner: Arc<RwLock<Arc<Snapshot>>>,
}

impl RouteTable {
    pub fn new() -> RouteTable {
        RouteTable::default()
    }

    /// Replaces the whole table atomically. Host names are normalized (lower case, no port,
    /// no trailing dot); if two routes claim one host, the later one wins.
    pub fn replace(&self, routes: Vec<Route>) {
        let old = self.snapshot();
        let counters: HashMap<&str, &Arc<AtomicUsize>> = old
            .routes
            .iter()
            .map(|e| (e.route.app.as_str(), &e.next))
            .collect();
        let mut snap = Snapshot::default();
        for mut route in routes {
            route.hosts = route.hosts.iter().map(|h| normalize_host(h)).collect();
            let next = counters
                .get(route.app.as_str())
                .map(|c| Arc::clone(c))
                .unwrap_or_default();
            let entry = Arc::new(RouteEntry { route, next });
            for host in &entry.route.hosts {
                if let Some(prev) = snap.by_host.insert(host.clone(), Arc::clone(&entry)) {
                    tracing::warn!(host, app = %entry.route.app, other = %prev.route.app,
                        "two apps claim one host; the later one wins");
                }
            }
            snap.routes.push(entry);
        }
        let snap = Arc::new(snap);
        drop(old);
        *self.inner.write().unwrap_or_else(|e| e.into_inner()) = snap;
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
            .map(|e| e.route.clone())
    }

    /// The current immutable snapshot; holding it never blocks `replace`.
    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.inner.read().unwrap_or_else(|e| e.into_inner()))
    }
}

/// Serves HTTP (HTTP/1.1 and h2c) on `listener` until the task is dropped; dropping it
/// also ends the connections it accepted.
pub async fn serve(listener: tokio::net::TcpListener, table: RouteTable) -> std::io::Result<()> {
    proxy::serve(listener, table).await
}
