//! The standalone controller's `paas-router` process: started in its own process group
//! (a SIGKILL of the controller or a Ctrl-C in its terminal does not reach it, and no
//! parent-death signal is set), adopted when one already serves from the state dir (its
//! `flock`; see `paas_router::process`), restarted with a growing delay when it is gone,
//! and left running when the controller stops. It logs to `<state>/router.log`, since it
//! outlives the controller's stderr.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use paas_router::process::{running, LISTENING};

/// How long a started router has to take its lock and bind.
const READY_WAIT: Duration = Duration::from_secs(10);
/// How often the supervisor checks that a router serves.
const CHECK: Duration = Duration::from_secs(1);

/// Why the router process could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SupervisorError {
    #[error(
        "the router binary {path} does not exist: build it (cargo build -p paas-router), pass \
         --router-bin, or serve from the controller (--router-in-process)"
    )]
    NoBinary { path: String },
    #[error("starting {path}: {source}")]
    Spawn {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("paas-router exited during start-up; the end of {log}:\n{tail}")]
    Exited { log: String, tail: String },
    #[error("paas-router did not start serving within {READY_WAIT:?}; see {log}")]
    Slow { log: String },
    #[error(
        "--router-listen {0} has port 0: the router process needs a fixed port (or serve \
         from the controller, --router-in-process)"
    )]
    PortZero(SocketAddr),
}

/// How to run the router process.
#[derive(Debug, Clone)]
pub struct RouterProcess {
    pub bin: PathBuf,
    pub state_dir: PathBuf,
    pub listen: SocketAddr,
    /// None: no HTTPS.
    pub tls_listen: Option<SocketAddr>,
    pub domain: String,
    /// Where the default certificate lives (DATA/router-tls, as with the in-process one).
    pub default_cert_dir: PathBuf,
    /// The controller's internal URL, for the feed.
    pub controller: String,
    /// The node token the feed is asked with.
    pub token: String,
    pub history_lines: u32,
    pub history_apps: u32,
}

/// Where a running router serves.
#[derive(Debug, Clone, serde::Deserialize)]
pub struct Listening {
    pub http: String,
    pub https: Option<String>,
    pub pid: u32,
}

impl RouterProcess {
    /// The addresses the router of the state dir serves on (None: none written yet).
    pub fn listening(&self) -> Option<Listening> {
        let text = std::fs::read_to_string(self.state_dir.join(LISTENING)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Adopts the router serving from the state dir, or starts one and waits until it
    /// serves. Returns where it serves.
    pub async fn ensure(&self) -> Result<Listening, SupervisorError> {
        if let (Some(pid), Some(l)) = (running(&self.state_dir), self.listening()) {
            tracing::info!(%pid, http = %l.http, "adopting the running paas-router");
            if l.http != self.listen.to_string() {
                tracing::warn!(
                    "the running router serves on {}, not --router-listen {}: stop it (kill \
                     {pid}) to move it",
                    l.http,
                    self.listen
                );
            }
            return Ok(l);
        }
        self.start().await
    }

    async fn start(&self) -> Result<Listening, SupervisorError> {
        if self.listen.port() == 0 {
            return Err(SupervisorError::PortZero(self.listen));
        }
        if !self.bin.is_file() {
            return Err(SupervisorError::NoBinary {
                path: self.bin.display().to_string(),
            });
        }
        let io = |what, path: &Path| {
            let path = path.display().to_string();
            move |source| SupervisorError::Io { what, path, source }
        };
        std::fs::create_dir_all(&self.state_dir)
            .map_err(io("making the router state dir", &self.state_dir))?;
        std::fs::set_permissions(
            &self.state_dir,
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .map_err(io(
            "making the router state dir owner-only",
            &self.state_dir,
        ))?;
        let _ = std::fs::remove_file(self.state_dir.join(LISTENING));
        let log_path = self.state_dir.join("router.log");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io("opening the router log", &log_path))?;
        let err = log
            .try_clone()
            .map_err(io("opening the router log", &log_path))?;
        let mut cmd = tokio::process::Command::new(&self.bin);
        cmd.arg("--state-dir")
            .arg(&self.state_dir)
            .arg("--listen")
            .arg(self.listen.to_string())
            .args(["--domain", &self.domain])
            .arg("--default-cert-dir")
            .arg(&self.default_cert_dir)
            .args(["--controller", &self.controller])
            .args(["--history-lines", &self.history_lines.to_string()])
            .args(["--history-apps", &self.history_apps.to_string()])
            .env("PAAS_ROUTER_TOKEN", &self.token)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(err))
            // Its own process group: signals to the controller's group (Ctrl-C, a service
            // manager's group kill of the controller alone) do not reach it.
            .process_group(0)
            .kill_on_drop(false);
        match self.tls_listen {
            Some(a) => cmd.arg("--tls-listen").arg(a.to_string()),
            None => cmd.arg("--no-tls"),
        };
        if let Ok(filter) = std::env::var("RUST_LOG") {
            cmd.env("RUST_LOG", filter);
        }
        let mut child = cmd.spawn().map_err(|source| SupervisorError::Spawn {
            path: self.bin.display().to_string(),
            source,
        })?;
        let pid = child.id().unwrap_or(0);
        let deadline = Instant::now() + READY_WAIT;
        loop {
            if let Some(l) = self.listening().filter(|l| l.pid == pid) {
                tracing::info!(pid, http = %l.http, https = ?l.https, "paas-router started");
                // Reap it if it exits while this controller lives (init does otherwise).
                tokio::spawn(async move {
                    let status = child.wait().await;
                    tracing::warn!(pid, ?status, "paas-router exited");
                });
                return Ok(l);
            }
            if let Ok(Some(_)) = child.try_wait() {
                let text = std::fs::read_to_string(&log_path).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(10).collect();
                let tail: Vec<&str> = tail.into_iter().rev().collect();
                return Err(SupervisorError::Exited {
                    log: log_path.display().to_string(),
                    tail: tail.join("\n"),
                });
            }
            if Instant::now() >= deadline {
                let _ = child.start_kill();
                return Err(SupervisorError::Slow {
                    log: log_path.display().to_string(),
                });
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Keeps a router serving from the state dir: checks every [`CHECK`], starts a new one
    /// when none runs (waiting longer after each failed start, up to 30 s). Runs forever.
    pub async fn supervise(self) {
        let mut delay = CHECK;
        loop {
            tokio::time::sleep(delay).await;
            if running(&self.state_dir).is_some() {
                delay = CHECK;
                continue;
            }
            tracing::warn!(
                "no paas-router serves from {}; starting one",
                self.state_dir.display()
            );
            match self.start().await {
                Ok(_) => delay = CHECK,
                Err(e) => {
                    delay = (delay * 2).min(Duration::from_secs(30));
                    tracing::error!("starting paas-router: {e}; trying again in {delay:?}");
                }
            }
        }
    }
}

/// `paas-router` next to this executable.
pub fn default_router_bin() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.parent().map(|d| d.join("paas-router")))
        .unwrap_or_else(|| PathBuf::from("paas-router"))
}
