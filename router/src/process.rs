//! `paas-router`: the router as a process of its own, so traffic outlives the control plane.
//!
//! It serves from the last state it was fed (saved in its state dir, see [`crate::feed`])
//! the moment it starts, with or without a controller, and follows a controller's
//! `GET /internal/router/feed` stream (the full state, then the state again after each
//! change; a blank keep-alive line every [`KEEPALIVE`]), reconnecting with backoff and
//! trying the next `--controller` in turn (any controller of a shared store can feed it).
//! One router per state dir: it holds an exclusive `flock` on `<state>/lock` for its
//! life, and [`running`] tells a controller whether one is up (to adopt it rather than
//! start a second one). `<state>/listening` says where it serves (for `:0` addresses).
//! Its internal endpoint ([`crate::internal`]: access lines and drain waits, node token
//! only) listens on `--internal-listen` and is announced on every feed request.

use std::net::SocketAddr;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::{BodyExt as _, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;

use crate::feed::{self, Feed};
use crate::{HistoryLimits, RouteTable, RouterConfig};

/// The controller sends a blank line this often while nothing changes.
pub const KEEPALIVE: Duration = Duration::from_secs(10);
/// A feed silent this long (no state, no keep-alive) is given up and reconnected.
pub const FEED_SILENCE: Duration = Duration::from_secs(30);
/// The longest wait between two connection attempts to the controllers.
pub const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// The lock file in the state dir.
pub const LOCK: &str = "lock";
/// The file with the addresses the router serves on.
pub const LISTENING: &str = "listening";

/// Why the router process could not start.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "another paas-router (pid {pid}) already serves from {dir}: stop it first, or pass \
         another --state-dir"
    )]
    Running { pid: String, dir: String },
    #[error("listening on {addr} ({what}): {source}; pass another address with {flag}")]
    Listen {
        what: &'static str,
        flag: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Feed(#[from] feed::FeedError),
    #[error(transparent)]
    Cert(#[from] crate::tls::CertError),
    #[error("--controller {0:?} is not an http:// URL (e.g. http://127.0.0.1:8080)")]
    BadController(String),
    #[error("waiting for SIGINT/SIGTERM: {0}")]
    Signals(#[source] std::io::Error),
}

/// `paas-router` flags.
#[derive(Debug, Clone, clap::Parser)]
#[command(
    name = "paas-router",
    about = "The paas router: serves <app>.<domain> from the last route table it was fed, \
             and follows a controller's feed for changes"
)]
pub struct RouterArgs {
    /// Where the router keeps its last state (owner-only) and its lock.
    #[arg(long, default_value = "/var/lib/paas/router")]
    pub state_dir: PathBuf,
    /// Address for HTTP.
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub listen: SocketAddr,
    /// Address for HTTPS.
    #[arg(long, default_value = "127.0.0.1:8443")]
    pub tls_listen: SocketAddr,
    /// Serve no HTTPS.
    #[arg(long)]
    pub no_tls: bool,
    /// The platform domain (for the self-signed default certificate `*.<domain>`).
    #[arg(long, default_value = "localhost")]
    pub domain: String,
    /// Where the default certificate is kept (default: <state-dir>/tls).
    #[arg(long)]
    pub default_cert_dir: Option<PathBuf>,
    /// A controller's URL to follow (repeat it, or separate with commas, for several: any
    /// of them can feed the router; tried in turn). None: serve the saved state only.
    #[arg(long, env = "PAAS_CONTROLLERS", value_delimiter = ',')]
    pub controller: Vec<String>,
    /// The token the feed is asked with (a node token); from the environment so it does
    /// not show in `ps`.
    #[arg(
        long,
        env = "PAAS_ROUTER_TOKEN",
        hide_env_values = true,
        default_value = ""
    )]
    pub token: String,
    /// Requests each app's history keeps per router thread (0: none).
    #[arg(long, default_value_t = HistoryLimits::default().lines as u32)]
    pub history_lines: u32,
    /// Apps whose history each router thread keeps.
    #[arg(long, default_value_t = HistoryLimits::default().apps as u32)]
    pub history_apps: u32,
    /// Address of the internal endpoint the controllers ask for access lines and drain
    /// waits (node token only; see `paas_router::internal`). Port 0 picks a free one.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub internal_listen: SocketAddr,
    /// The URL controllers reach the internal endpoint at, when it is not
    /// `http://<--internal-listen>` (e.g. it listens on 0.0.0.0).
    #[arg(long)]
    pub internal_url: Option<String>,
}

/// The pid of the router that serves from `dir` now, if one does (it holds the lock).
pub fn running(dir: &Path) -> Option<String> {
    let file = std::fs::File::open(dir.join(LOCK)).ok()?;
    // SAFETY: flock(2) on a file descriptor we own for the duration of the call.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        // Nobody held it; closing the file releases our probe.
        return None;
    }
    let pid = std::fs::read_to_string(dir.join(LOCK)).unwrap_or_default();
    Some(pid.trim().to_string())
}

/// Takes the state dir's lock for the life of the process (the returned file).
fn lock(dir: &Path) -> Result<std::fs::File, ProcessError> {
    let path = dir.join(LOCK);
    let io = |what| {
        let path = path.display().to_string();
        move |source| ProcessError::Io { what, path, source }
    };
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o600)
        .open(&path)
        .map_err(io("opening the router lock"))?;
    // SAFETY: flock(2) on a file descriptor we own; the lock lives as long as the file.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc != 0 {
        let pid = std::fs::read_to_string(&path).unwrap_or_default();
        return Err(ProcessError::Running {
            pid: pid.trim().to_string(),
            dir: dir.display().to_string(),
        });
    }
    file.set_len(0).map_err(io("writing the router lock"))?;
    std::io::Write::write_all(&mut &file, std::process::id().to_string().as_bytes())
        .map_err(io("writing the router lock"))?;
    Ok(file)
}

/// Runs the router process until SIGTERM or SIGINT.
pub async fn run(args: RouterArgs) -> Result<(), ProcessError> {
    let dir = &args.state_dir;
    std::fs::create_dir_all(dir).map_err(|source| ProcessError::Io {
        what: "making the router state dir",
        path: dir.display().to_string(),
        source,
    })?;
    let _ = std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o700));
    let _lock = lock(dir)?;
    for c in &args.controller {
        if !c.starts_with("http://") {
            return Err(ProcessError::BadController(c.clone()));
        }
    }
    let table = RouteTable::new();
    table.access_log().set_history_limits(HistoryLimits {
        lines: args.history_lines as usize,
        apps: args.history_apps as usize,
    });
    match feed::load(dir)? {
        Some(saved) => {
            saved.apply(&table);
            tracing::info!(routes = saved.routes.len(), "serving the saved route table");
        }
        None => tracing::info!("no saved route table yet: waiting for a controller's feed"),
    }
    let bind = |addr, what, flag| async move {
        TcpListener::bind(addr)
            .await
            .map_err(|source| ProcessError::Listen {
                what,
                flag,
                addr,
                source,
            })
    };
    let http = bind(args.listen, "router", "--listen").await?;
    let http_addr = http.local_addr().unwrap_or(args.listen);
    let https = if args.no_tls {
        None
    } else {
        let cert_dir = args
            .default_cert_dir
            .clone()
            .unwrap_or_else(|| dir.join("tls"));
        table
            .certs()
            .set_default(crate::tls::default_cert(&cert_dir, &args.domain)?);
        Some(bind(args.tls_listen, "router HTTPS", "--tls-listen").await?)
    };
    let https_addr = https.as_ref().and_then(|l| l.local_addr().ok());
    let internal = bind(
        args.internal_listen,
        "internal endpoint",
        "--internal-listen",
    )
    .await?;
    let internal_addr = internal.local_addr().unwrap_or(args.internal_listen);
    let internal_url = args
        .internal_url
        .clone()
        .unwrap_or_else(|| format!("http://{internal_addr}"));
    let config = RouterConfig {
        https_port: https_addr.map(|a| a.port()),
        ..Default::default()
    };
    let mut servers = tokio::task::JoinSet::new();
    servers.spawn(crate::serve_with(http, table.clone(), config.clone()));
    servers.spawn(crate::internal::serve(
        internal,
        table.clone(),
        args.token.clone(),
    ));
    if let Some(l) = https {
        servers.spawn(crate::serve_tls_with(l, table.clone(), config));
    }
    let listening = serde_json::json!({
        "http": http_addr.to_string(),
        "https": https_addr.map(|a| a.to_string()),
        "internal": internal_url,
        "pid": std::process::id(),
    });
    std::fs::write(dir.join(LISTENING), listening.to_string()).map_err(|source| {
        ProcessError::Io {
            what: "writing",
            path: dir.join(LISTENING).display().to_string(),
            source,
        }
    })?;
    tracing::info!(http = %http_addr, https = ?https_addr, "router serving");
    let follower = (!args.controller.is_empty()).then(|| {
        tokio::spawn(follow(
            args.controller.clone(),
            args.token.clone(),
            internal_url.clone(),
            table.clone(),
            dir.clone(),
        ))
    });
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(ProcessError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(ProcessError::Signals)?;
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: router stopping"),
        _ = int.recv() => tracing::info!("SIGINT: router stopping"),
        done = servers.join_next() => tracing::error!(?done, "a router listener stopped"),
    }
    if let Some(f) = follower {
        f.abort();
    }
    Ok(())
}

/// Follows the controllers' feed forever: one at a time, the next after a failure, with a
/// growing pause (up to [`MAX_BACKOFF`]) while none answers.
/// Each request says where the router's internal endpoint answers (`internal`).
pub async fn follow(
    controllers: Vec<String>,
    token: String,
    internal: String,
    table: RouteTable,
    dir: PathBuf,
) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let mut backoff = Duration::from_millis(100);
    for i in 0.. {
        let url = &controllers[i % controllers.len()];
        match follow_one(&client, url, &token, &internal, &table, &dir).await {
            Ok(true) => {
                tracing::info!(controller = %url, "the feed ended; reconnecting");
                backoff = Duration::from_millis(100);
            }
            Ok(false) => {}
            Err(e) => tracing::debug!(controller = %url, "feed: {e}"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// Follows one controller's feed until it ends; true when it delivered a state.
async fn follow_one(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    base: &str,
    token: &str,
    internal: &str,
    table: &RouteTable,
    dir: &Path,
) -> Result<bool, String> {
    let uri = format!("{}/internal/router/feed", base.trim_end_matches('/'));
    let req = http::Request::get(&uri)
        .header(http::header::AUTHORIZATION, format!("Bearer {token}"))
        .header(crate::internal::ANNOUNCE_HEADER, internal)
        .body(Empty::new())
        .map_err(|e| e.to_string())?;
    let resp = tokio::time::timeout(FEED_SILENCE, client.request(req))
        .await
        .map_err(|_| format!("{uri}: no answer within {FEED_SILENCE:?}"))?
        .map_err(|e| format!("{uri}: {e}"))?;
    if !resp.status().is_success() {
        let status = resp.status();
        let body = resp.into_body().collect().await.map(|b| b.to_bytes());
        let text = body.map(|b| String::from_utf8_lossy(&b).into_owned());
        tracing::warn!(%uri, %status, body = ?text, "the controller refused the router feed");
        return Err(format!("{uri}: {status}"));
    }
    tracing::info!(%uri, "following the controller's route feed");
    let mut body = resp.into_body();
    let mut buf = BytesMut::new();
    let mut delivered = false;
    let mut last: Option<Feed> = None;
    loop {
        let frame = match tokio::time::timeout(FEED_SILENCE, body.frame()).await {
            Err(_) => return Err(format!("{uri}: silent for {FEED_SILENCE:?}")),
            Ok(None) => return Ok(delivered),
            Ok(Some(Err(e))) => return Err(format!("{uri}: {e}")),
            Ok(Some(Ok(f))) => f,
        };
        let Ok(data) = frame.into_data() else {
            continue;
        };
        buf.extend_from_slice(&data);
        while let Some(end) = buf.iter().position(|b| *b == b'\n') {
            let line = buf.split_to(end + 1);
            let line = &line[..end];
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let next: Feed = serde_json::from_slice(line).map_err(|e| format!("{uri}: {e}"))?;
            if last.as_ref() == Some(&next) {
                continue;
            }
            next.apply(table);
            if let Err(e) = feed::save(dir, &next) {
                tracing::warn!("{e}; a restarted router would serve an older table");
            }
            tracing::debug!(routes = next.routes.len(), "route table fed");
            last = Some(next);
            delivered = true;
        }
    }
}
