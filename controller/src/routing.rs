//! The glue between the store and the router (which never reads the store itself): the
//! route table saved as JSON when the scheduler pushes it (so a restarted controller
//! starts from it), the app certificates loaded into the router's [`TlsCerts`], the
//! certificate watch of a controller on a shared store, and the older `paas-controller
//! router` (a router process that polls the store). The feed the `paas-router` process
//! follows is served by `http::router_feed`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;

use crate::router::tls::{default_cert, PemCert};
use crate::router::{Backend, Route, RouteTable};
use crate::store::{Store, StoreError};

/// How often `paas-controller router` looks for a new route table or certificates.
pub const POLL: Duration = Duration::from_millis(500);

/// Why the router process could not start or keep going.
#[derive(Debug, thiserror::Error)]
pub enum RoutingError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(
        "the saved route table is not valid JSON ({0}); the controller rewrites it within a second"
    )]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Cert(#[from] crate::router::tls::CertError),
    #[error("listening on {addr} ({what}): {source}; pass another address with {flag}")]
    Listen {
        what: &'static str,
        flag: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the database {path} does not exist: start the controller with this --data-dir first \
         (it creates the database)"
    )]
    NoDatabase { path: String },
}

#[derive(Serialize, Deserialize)]
struct WireBackend {
    addr: String,
    job_id: String,
}

#[derive(Serialize, Deserialize)]
struct WireRoute {
    app: String,
    hosts: Vec<String>,
    backends: Vec<WireBackend>,
}

/// The route table as saved in the store.
pub fn routes_json(routes: &[Route]) -> String {
    let wire: Vec<WireRoute> = routes
        .iter()
        .map(|r| WireRoute {
            app: r.app.clone(),
            hosts: r.hosts.clone(),
            backends: r
                .backends
                .iter()
                .map(|b| WireBackend {
                    addr: b.addr.clone(),
                    job_id: b.job_id.clone(),
                })
                .collect(),
        })
        .collect();
    serde_json::to_string(&wire).unwrap_or_else(|_| "[]".into())
}

/// Parses a saved route table.
pub fn routes_from_json(json: &str) -> Result<Vec<Route>, serde_json::Error> {
    let wire: Vec<WireRoute> = serde_json::from_str(json)?;
    Ok(wire
        .into_iter()
        .map(|r| Route {
            app: r.app,
            hosts: r.hosts,
            backends: r
                .backends
                .into_iter()
                .map(|b| Backend {
                    addr: b.addr,
                    job_id: b.job_id,
                })
                .collect(),
        })
        .collect())
}

/// Saves the table the scheduler just pushed (a no-op write when it did not change); a
/// failure is logged, routing goes on.
pub async fn save_routes(store: &Store, routes: &[Route]) {
    let json = routes_json(routes);
    if let Err(e) = store.save_routes(&json, crate::util::unix_ms()).await {
        tracing::warn!(error = %e, "saving the route table failed; a restarted router would start empty");
    }
}

/// Loads the saved table into `table`; returns its version (None: nothing saved yet).
pub async fn load_routes(store: &Store, table: &RouteTable) -> Result<Option<i64>, RoutingError> {
    let Some((version, json)) = store.load_routes().await? else {
        return Ok(None);
    };
    table.replace(routes_from_json(&json)?);
    Ok(Some(version))
}

/// Loads every app's certificates and the apps' HTTPS redirects into the router; returns
/// the certificate ids and the redirected apps (to tell when they change).
pub async fn load_certs(store: &Store, table: &RouteTable) -> Result<Vec<String>, RoutingError> {
    table.set_https_redirects(&store.https_redirects().await?);
    let rows = store.certs(None).await?;
    let pems: Vec<PemCert> = rows
        .into_iter()
        .map(|r| PemCert {
            id: r.id,
            app: r.app,
            cert_pem: r.cert_pem,
            key_pem: r.key_pem,
        })
        .collect();
    table.certs().replace(&pems);
    table.touch();
    let mut ids: Vec<String> = pems.into_iter().map(|p| p.id).collect();
    ids.extend(
        table
            .https_redirects()
            .into_iter()
            .map(|a| format!("redirect:{a}")),
    );
    Ok(ids)
}

/// How often a controller on a shared store looks for certificate changes.
pub const CERT_POLL: Duration = Duration::from_secs(1);

/// Keeps the router's certificates and HTTPS redirects in step with the store when other
/// controllers share it (PostgreSQL): reloads them whenever the store's summary of them
/// ([`Store::certs_version`]) moves, e.g. after `paas certs:add` reached another
/// controller. Runs forever; failures are logged and retried.
pub async fn watch_certs(store: Store, table: RouteTable) {
    let mut loaded: Option<String> = None;
    loop {
        match store.certs_version().await {
            Ok(now) if loaded.as_ref() != Some(&now) => match load_certs(&store, &table).await {
                Ok(_) => loaded = Some(now),
                Err(e) => tracing::warn!("reloading certificates from the store: {e}"),
            },
            Ok(_) => {}
            Err(e) => tracing::warn!("looking for certificate changes in the store: {e}"),
        }
        tokio::time::sleep(CERT_POLL).await;
    }
}

/// Sets the router's default certificate (`*.<domain>`, self-signed, kept in
/// `DATA/router-tls/`).
pub fn set_default_cert(
    data_dir: &Path,
    domain: &str,
    table: &RouteTable,
) -> Result<(), RoutingError> {
    let key = default_cert(&data_dir.join("router-tls"), domain)?;
    table.certs().set_default(key);
    Ok(())
}

/// `paas-controller router`: flags.
#[derive(Debug, Clone, clap::Args)]
pub struct RouterArgs {
    /// The controller's data directory (its database is read; nothing is written).
    #[arg(long, default_value = "/var/lib/paas")]
    pub data_dir: PathBuf,
    /// Address for HTTP.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// Address for HTTPS.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub tls_listen: SocketAddr,
    /// Serve no HTTPS.
    #[arg(long)]
    pub no_tls: bool,
    /// The platform domain (for the default certificate `*.<domain>`).
    #[arg(long, default_value = "localhost")]
    pub domain: String,
    /// The controllers' PostgreSQL store (default: SQLite in the data dir).
    #[arg(long, env = "PAAS_DATABASE_URL")]
    pub database_url: Option<String>,
}

/// Runs the router as its own process: loads the saved table and certificates, serves, and
/// polls the store every [`POLL`] for changes, until the task is dropped.
pub async fn run_router(args: RouterArgs) -> Result<(), RoutingError> {
    let store = match &args.database_url {
        Some(url) => Store::connect(url).await?,
        None => {
            let db = args.data_dir.join("paas.db");
            if !db.is_file() {
                return Err(RoutingError::NoDatabase {
                    path: db.display().to_string(),
                });
            }
            Store::open(&db).await?
        }
    };
    let table = RouteTable::new();
    // Nothing reads this process's access history (`paas logs` asks the controller's own
    // router), so it keeps none.
    table
        .access_log()
        .set_history_limits(crate::router::HistoryLimits { lines: 0, apps: 0 });
    let mut version = load_routes(&store, &table).await?;
    let mut cert_ids = load_certs(&store, &table).await?;
    let bind = |addr, what, flag| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| RoutingError::Listen {
                what,
                flag,
                addr,
                source,
            })
    };
    let http = bind(args.listen, "router", "--listen").await?;
    tracing::info!(addr = %args.listen, routes = table.routes().len(), "router serving HTTP");
    let mut servers = tokio::task::JoinSet::new();
    let config = crate::router::RouterConfig {
        https_port: (!args.no_tls).then_some(args.tls_listen.port()),
        ..Default::default()
    };
    servers.spawn(crate::router::serve_with(http, table.clone(), config));
    if !args.no_tls {
        set_default_cert(&args.data_dir, &args.domain, &table)?;
        let https = bind(args.tls_listen, "router HTTPS", "--tls-listen").await?;
        tracing::info!(addr = %args.tls_listen, "router serving HTTPS");
        servers.spawn(crate::router::serve_tls(https, table.clone()));
    }
    loop {
        tokio::select! {
            Some(done) = servers.join_next() => {
                tracing::error!(?done, "a router listener stopped");
                return Ok(());
            }
            _ = tokio::time::sleep(POLL) => {}
        }
        match store.routes_version().await {
            Ok(v) if v != version => match load_routes(&store, &table).await {
                Ok(v) => {
                    tracing::debug!(?v, "route table reloaded");
                    version = v;
                }
                Err(e) => tracing::warn!(error = %e, "reloading the route table failed"),
            },
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reading the route table version failed"),
        }
        match (store.certs(None).await, store.https_redirects().await) {
            (Ok(rows), Ok(redirects)) => {
                let mut ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
                ids.extend(redirects.into_iter().map(|a| format!("redirect:{a}")));
                if ids != cert_ids {
                    match load_certs(&store, &table).await {
                        Ok(ids) => cert_ids = ids,
                        Err(e) => tracing::warn!(error = %e, "reloading certificates failed"),
                    }
                }
            }
            (Err(e), _) | (_, Err(e)) => {
                tracing::warn!(error = %e, "listing certificates failed")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_round_trip() {
        let routes = vec![Route {
            app: "a".into(),
            hosts: vec!["a.localhost".into(), "www.a.test".into()],
            backends: vec![Backend {
                addr: "127.0.0.1:1".into(),
                job_id: "j".into(),
            }],
        }];
        assert_eq!(routes_from_json(&routes_json(&routes)).unwrap(), routes);
    }

    #[tokio::test]
    async fn saved_routes_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("paas.db")).await.unwrap();
        let routes = vec![Route {
            app: "a".into(),
            hosts: vec!["a.localhost".into()],
            backends: vec![],
        }];
        save_routes(&store, &routes).await;
        let v1 = store.routes_version().await.unwrap();
        save_routes(&store, &routes).await;
        assert_eq!(
            store.routes_version().await.unwrap(),
            v1,
            "same table, same version"
        );
        let table = RouteTable::new();
        load_routes(&store, &table).await.unwrap();
        assert_eq!(table.routes(), routes);
        save_routes(&store, &[]).await;
        assert_ne!(store.routes_version().await.unwrap(), v1);
    }
}
