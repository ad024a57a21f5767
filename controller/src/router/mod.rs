//! The router: `Host: <app>.<domain>` → a healthy backend of the app's `web` process.
//!
//! CONTRACT used by the rest of the controller (the router helper implements the bodies and
//! may add to this API, not change it). The route table is pushed in; this module never
//! reads the store.

use std::sync::{Arc, RwLock};

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

/// The shared route table. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct RouteTable {
    inner: Arc<RwLock<Vec<Route>>>,
}

impl RouteTable {
    pub fn new() -> RouteTable {
        RouteTable::default()
    }

    /// Replaces the whole table atomically.
    pub fn replace(&self, routes: Vec<Route>) {
        let _ = (&self.inner, routes);
        todo!("router helper")
    }
}

/// Serves HTTP on `listener` until the task is dropped.
pub async fn serve(listener: tokio::net::TcpListener, table: RouteTable) -> std::io::Result<()> {
    let _ = (listener, table);
    todo!("router helper")
}
