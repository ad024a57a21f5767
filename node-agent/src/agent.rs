//! The agent as a whole: its parts (runtime, layer cache, network, job table), start-up
//! (bridge and nft table, re-adoption of running containers) and the server loop.
//!
//! The agent never stops containers when it exits: they outlive it and a restarted agent
//! re-adopts them from the state dir.

use std::future::IntoFuture;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use paas_runtime::{Runtime, RuntimeConfig};

use crate::config::AgentConfig;
use crate::images::{ImageError, ImageStore};
use crate::jobs::{JobError, JobTable};
use crate::network::{NetError, NetworkManager};

/// Errors of agent start-up.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("creating the state dir {path}: {source}")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "another paas-agent is using the state dir {path} (lock {path}/agent.lock): stop it \
         or pick another --state-dir"
    )]
    Locked { path: PathBuf },
    #[error("opening the container runtime: {0}")]
    Runtime(#[source] paas_runtime::Error),
    #[error("opening the layer cache: {0}")]
    Images(#[source] ImageError),
    #[error("setting up the node network (the agent must run as root): {0}")]
    Network(#[source] NetError),
    #[error("loading jobs: {0}")]
    Jobs(#[source] JobError),
    #[error("loading the user namespace ranges: {0}")]
    Userns(#[source] crate::jobs::userns::UsernsError),
    #[error(transparent)]
    Credential(#[from] crate::register::RegisterError),
    #[error(transparent)]
    Modes(#[from] crate::util::ModeError),
    #[error("building the HTTP client: {0}")]
    Client(#[source] reqwest::Error),
    #[error("listening on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error("serving the API: {0}")]
    Serve(#[source] std::io::Error),
}

/// The file in the state dir that names the pid of the agent holding the lock (written
/// once the lock is held; the controller reads it to adopt or replace that agent).
pub const PID_FILE: &str = "agent.pid";

/// Takes the state dir's lock (`agent.lock`), waiting up to `wait` for another agent to
/// give it up, then writes [`PID_FILE`].
fn take_lock(
    dir: &std::path::Path,
    wait: Duration,
) -> Result<nix::fcntl::Flock<std::fs::File>, AgentError> {
    let lock_path = dir.join("agent.lock");
    let deadline = std::time::Instant::now() + wait;
    let mut logged = false;
    let lock = loop {
        let file = std::fs::File::create(&lock_path).map_err(|source| AgentError::StateDir {
            path: lock_path.clone(),
            source,
        })?;
        match nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock) {
            Ok(lock) => break lock,
            Err(_) if std::time::Instant::now() < deadline => {
                if !logged {
                    let holder = std::fs::read_to_string(dir.join(PID_FILE)).unwrap_or_default();
                    tracing::warn!(
                        holder = holder.trim(),
                        "another paas-agent holds the state dir; waiting up to {} s for it to \
                         exit",
                        wait.as_secs()
                    );
                    logged = true;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(_) => return Err(AgentError::Locked { path: dir.into() }),
        }
    };
    let pid_path = dir.join(PID_FILE);
    std::fs::write(&pid_path, format!("{}\n", std::process::id())).map_err(|source| {
        AgentError::StateDir {
            path: pid_path,
            source,
        }
    })?;
    Ok(lock)
}

/// Everything the agent's handlers and tasks share.
#[derive(Debug)]
pub struct Agent {
    pub config: AgentConfig,
    pub runtime: Runtime,
    pub client: reqwest::Client,
    pub images: ImageStore,
    pub network: NetworkManager,
    pub jobs: JobTable,
    /// Each tenant's uid/gid range for its jobs' user namespaces.
    pub uid_ranges: crate::jobs::userns::UidRanges,
    /// The agent's own API credential (see [`crate::register`]).
    pub credential: crate::register::AgentCredential,
    url: OnceLock<String>,
    /// Held for the agent's lifetime: one agent per state dir.
    _lock: nix::fcntl::Flock<std::fs::File>,
}

impl Agent {
    /// Opens the state dir: runtime, layer cache, address book and job records. Touches
    /// nothing outside the state dir (no root needed); [`Agent::start`] does that.
    pub fn open(config: AgentConfig) -> Result<Arc<Agent>, AgentError> {
        let dir = &config.state_dir;
        // 0700, and the credential, job specs and state files 0600 (util::secure_state_dir).
        crate::util::secure_state_dir(dir)?;
        for sub in ["containers", "layers", "jobs", "volumes"] {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path)
                .map_err(|source| AgentError::StateDir { path, source })?;
        }
        // An agent told to stop (a handover, see docs/node-agent.md) gives the lock up within
        // seconds: waiting for it beats a restart loop of agents that fail at once.
        let lock = take_lock(dir, config.lock_wait)?;
        let runtime = Runtime::new(RuntimeConfig {
            state_dir: dir.join("containers"),
            cgroup_parent: config.prefix.clone(),
            cgroup_root: config.cgroup_root.clone(),
        })
        .map_err(AgentError::Runtime)?;
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(AgentError::Client)?;
        let images = ImageStore::open(dir.join("layers"), client.clone(), config.token.clone())
            .map_err(AgentError::Images)?
            .with_budget(config.layer_cache_bytes);
        let network = NetworkManager::open(
            dir,
            &config.prefix,
            config.subnet,
            config.port_range,
            config.advertise_addr,
        )
        .map_err(AgentError::Network)?
        .with_job_ipv6(config.job_ipv6);
        let jobs = JobTable::open(dir.join("jobs")).map_err(AgentError::Jobs)?;
        let uid_ranges = crate::jobs::userns::UidRanges::open(dir, config.userns_range)
            .map_err(AgentError::Userns)?;
        let credential = crate::register::AgentCredential::load_or_create(dir)?;
        Ok(Arc::new(Agent {
            credential,
            config,
            runtime,
            client,
            images,
            network,
            jobs,
            uid_ranges,
            url: OnceLock::new(),
            _lock: lock,
        }))
    }

    /// Sets up the bridge and nft table, re-adopts the jobs of the state dir and starts
    /// the layer cache's pruning (with a budget). Needs root.
    pub async fn start(self: &Arc<Self>) -> Result<(), AgentError> {
        self.network
            .ensure_node()
            .await
            .map_err(AgentError::Network)?;
        crate::jobs::adopt(self).await;
        tokio::spawn(crate::images::prune::run(Arc::downgrade(self)));
        Ok(())
    }

    /// The agent's API base URL as reported in heartbeats, once the listener is bound.
    pub fn url(&self) -> Option<&str> {
        self.url.get().map(String::as_str)
    }

    /// Records the bound address: `http://<addr>`, with the advertise address in place of
    /// an unspecified listen address (0.0.0.0).
    pub fn set_bound(&self, addr: SocketAddr) {
        let host = if addr.ip().is_unspecified() {
            self.config.advertise_addr.to_string()
        } else {
            addr.ip().to_string()
        };
        let _ = self.url.set(format!("http://{host}:{}", addr.port()));
    }
}

/// Runs the agent until SIGTERM or SIGINT: opens and starts it, binds the listener,
/// sends heartbeats and serves the API. Containers keep running after it returns.
pub async fn serve(config: AgentConfig) -> Result<(), AgentError> {
    let agent = Agent::open(config)?;
    agent.start().await?;
    let listener = tokio::net::TcpListener::bind(agent.config.listen)
        .await
        .map_err(|source| AgentError::Listen {
            addr: agent.config.listen,
            source,
        })?;
    let bound = listener.local_addr().map_err(AgentError::Serve)?;
    agent.set_bound(bound);
    let fence = crate::network::Fence::of(agent.config.controller.as_deref(), bound.port()).await;
    agent
        .network
        .fence(&fence)
        .await
        .map_err(AgentError::Network)?;
    tracing::info!(?fence, "containers are kept from the API ports");
    tracing::info!(
        url = agent.url().unwrap_or_default(),
        node = %agent.config.node_name,
        "agent listening"
    );
    if agent.config.controller.is_some() {
        tokio::spawn(crate::heartbeat::run(agent.clone()));
    } else {
        tracing::warn!("no --controller: not sending heartbeats");
    }
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server =
        axum::serve(listener, crate::http::app(agent.clone())).with_graceful_shutdown(async move {
            let _ = rx.await;
        });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        result = &mut server => return result.map_err(AgentError::Serve),
        () = shutdown_signal() => {}
    }
    tracing::info!("shutting down; containers keep running");
    let _ = tx.send(());
    // Followers of live logs would hold a graceful shutdown forever: give them a moment.
    let _ = tokio::time::timeout(Duration::from_secs(2), server).await;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot watch SIGTERM: {e}");
            return std::future::pending().await;
        }
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}
