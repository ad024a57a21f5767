//! `paas-controller --standalone`: everything on one machine. Opens the data directory,
//! imports the stack images, serves the API (with git, registry and dashboard), starts or
//! adopts the `paas-router` process (which outlives the controller; see
//! [`crate::router_supervisor`]; `--router-in-process` serves apps from this process instead),
//! runs the scheduler loop, and supervises one local `paas-agent` child (restarted when it
//! exits; sent SIGTERM when the controller stops — containers outlive both). An agent left
//! running by a killed controller is adopted, or replaced when it differs
//! ([`crate::local_agent`]): never two agents for one state dir.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::{default_agent_bin, ConfigError, ServeArgs, Settings};
use crate::registry::Registry;
use crate::state::{Controller, OpenError};

/// Why the controller could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error("--insecure-registry: {0}")]
    InsecureRegistry(String),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("listening on {addr} ({what}): {source}; pass another address with {flag}")]
    Listen {
        what: &'static str,
        flag: &'static str,
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "the node agent binary {path} does not exist: build it (cargo build -p \
         paas-node-agent) or pass --agent-bin"
    )]
    NoAgent { path: String },
    #[error("importing the stack {name} from {path}: {source}")]
    Import {
        name: String,
        path: String,
        #[source]
        source: crate::registry::Error,
    },
    #[error("reading the stacks directory {path}: {source}")]
    Stacks {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "there is no `tiny` stack in {stacks}: run deploy/build-stack tiny {stacks}/tiny \
         first (or pass --stacks-dir)"
    )]
    NoTinyStack { stacks: String },
    #[error("setting up the router's HTTPS: {0}")]
    Tls(#[source] crate::routing::RoutingError),
    #[error("waiting for SIGINT/SIGTERM: {0}")]
    Signals(#[source] std::io::Error),
    #[error(transparent)]
    Router(#[from] crate::router_supervisor::SupervisorError),
}

/// The default HTTPS address if it is free (else a warning and no HTTPS).
async fn default_tls_listener() -> Option<TcpListener> {
    let addr: SocketAddr = crate::config::DEFAULT_ROUTER_TLS_LISTEN
        .parse()
        .expect("a valid default address");
    match TcpListener::bind(addr).await {
        Ok(l) => Some(l),
        Err(e) => {
            tracing::warn!(
                "not serving HTTPS: {addr} is not free ({e}); pass --router-tls-listen \
                 ADDR to choose another address or --no-router-tls to silence this"
            );
            None
        }
    }
}

/// Runs the standalone controller until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs) -> Result<(), StartError> {
    if !args.standalone {
        return Err(ConfigError::NotStandalone.into());
    }
    let listener = bind(args.listen, "API", "--listen").await?;
    // The in-process router binds here; the router process binds its own (and may be up
    // already, holding the ports: then it is adopted below).
    let in_process = if args.router_in_process {
        let router_listener = bind(args.router_listen, "router", "--router-listen").await?;
        let tls = match (args.no_router_tls, args.router_tls_listen) {
            (true, _) => None,
            (false, Some(addr)) => Some(bind(addr, "router HTTPS", "--router-tls-listen").await?),
            (false, None) => default_tls_listener().await,
        };
        Some((router_listener, tls))
    } else {
        None
    };
    let listen = listener.local_addr().unwrap_or(args.listen);
    let router_addr = match &in_process {
        Some((l, _)) => l.local_addr().unwrap_or(args.router_listen),
        None => args.router_listen,
    };
    let router_process_state = args
        .router_state_dir
        .clone()
        .unwrap_or_else(|| args.data_dir.join("router"));
    let router_tls_addr = match &in_process {
        Some((_, tls)) => tls.as_ref().and_then(|l| l.local_addr().ok()),
        None => match (args.no_router_tls, args.router_tls_listen) {
            (true, _) => None,
            (false, Some(addr)) => Some(addr),
            // Best effort, as in-process: only when the port is free (or a running router
            // of this state dir holds it).
            (false, None) => {
                let adopted = paas_router::process::running(&router_process_state).is_some();
                match (adopted, default_tls_listener().await) {
                    (true, _) | (false, Some(_)) => {
                        crate::config::DEFAULT_ROUTER_TLS_LISTEN.parse().ok()
                    }
                    (false, None) => None,
                }
            }
        },
    };
    let mut settings = Settings::new(
        args.data_dir.clone(),
        listen,
        router_addr.port(),
        &args.domain,
    )?;
    settings.buildpacks_dir = args.buildpacks_dir.clone();
    settings.cluster_cidr = args.cluster_cidr.clone();
    settings.max_blob_bytes = args.max_blob_bytes;
    settings.max_push_bytes = args.max_push_bytes;
    settings.insecure_registries = args
        .insecure_registries
        .iter()
        .filter(|h| !h.trim().is_empty())
        .map(|h| crate::registry_client::normalize_host(h))
        .collect::<Result<_, _>>()
        .map_err(|e| StartError::InsecureRegistry(e.to_string()))?;
    settings.build_limits = (&args.build_limits).into();
    settings.database_url = args.database_url.clone();
    settings.acme = args
        .acme_directory
        .clone()
        .map(|directory| crate::acme::AcmeSettings {
            directory,
            email: args.acme_email.clone(),
            ca_file: args.acme_ca_file.clone(),
        });
    settings.gc = crate::gc::Periodic {
        every: (args.gc_interval_secs > 0)
            .then(|| std::time::Duration::from_secs(args.gc_interval_secs)),
        keep: args.gc_keep,
        grace: std::time::Duration::from_secs(args.gc_grace_secs),
    };
    let agent_bin = match &args.agent_bin {
        Some(p) => p.clone(),
        None => default_agent_bin()?,
    };
    if !args.no_local_agent && !agent_bin.is_file() {
        return Err(StartError::NoAgent {
            path: agent_bin.display().to_string(),
        });
    }

    let c = Controller::open(settings).await?;
    // Chunked uploads a kill cut: with SQLite this controller alone writes the registry,
    // so every upload left from before this start is dead; a shared store only sweeps
    // idle ones (below), another controller may be receiving one.
    if c.settings.database_url.is_none() {
        let removed = crate::registry::sweep_uploads(&c.registry.uploads_dir(), Duration::ZERO);
        if removed > 0 {
            tracing::info!(
                removed,
                "removed registry uploads an earlier run left unfinished"
            );
        }
    }
    let uploads = c.registry.uploads_dir();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(crate::registry::SWEEP_EVERY).await;
            let removed = crate::registry::sweep_uploads(&uploads, crate::registry::UPLOAD_IDLE);
            if removed > 0 {
                tracing::info!(removed, "removed registry uploads idle for an hour");
            }
        }
    });
    crate::builder::leftovers::set_agent_pid_file(
        c.settings
            .data_dir
            .join("agent")
            .join(crate::local_agent::PID_FILE),
    );
    let stacks = args
        .stacks_dir
        .clone()
        .unwrap_or_else(|| c.settings.data_dir.join("stacks"));
    import_stacks(&c.registry, &stacks).await?;
    if c.registry
        .get_manifest("stacks/tiny", "latest")
        .await
        .is_err()
    {
        return Err(StartError::NoTinyStack {
            stacks: stacks.display().to_string(),
        });
    }

    // The last saved table and the certificates first, so a restart serves (and feeds a
    // router) at once.
    match crate::routing::load_routes(&c.store, &c.routes).await {
        Ok(v) => tracing::debug!(version = ?v, "saved route table loaded"),
        Err(e) => tracing::warn!(error = %e, "loading the saved route table failed"),
    }
    if let Err(e) = crate::routing::load_certs(&c.store, &c.routes).await {
        tracing::warn!(error = %e, "loading the app certificates failed");
    }
    let api = tokio::spawn(serve_api(listener, crate::http::app(Arc::clone(&c))));
    c.routes
        .access_log()
        .set_history_limits(crate::router::HistoryLimits {
            lines: args.router_history_lines as usize,
            apps: args.router_history_apps as usize,
        });
    let mut router_tasks = Vec::new();
    match in_process {
        Some((router_listener, tls)) => {
            let router_config = crate::router::RouterConfig {
                https_port: router_tls_addr.map(|a| a.port()),
                ..Default::default()
            };
            router_tasks.push(tokio::spawn(crate::router::serve_with(
                router_listener,
                c.routes.clone(),
                router_config,
            )));
            if let Some(l) = tls {
                crate::routing::set_default_cert(
                    &c.settings.data_dir,
                    &c.settings.domain,
                    &c.routes,
                )
                .map_err(StartError::Tls)?;
                router_tasks.push(tokio::spawn(crate::router::serve_tls(l, c.routes.clone())));
            }
        }
        None => {
            let process = crate::router_supervisor::RouterProcess {
                bin: args
                    .router_bin
                    .clone()
                    .unwrap_or_else(crate::router_supervisor::default_router_bin),
                state_dir: router_process_state,
                listen: args.router_listen,
                tls_listen: router_tls_addr,
                domain: c.settings.domain.clone(),
                default_cert_dir: c.settings.data_dir.join("router-tls"),
                controller: c.settings.internal_url.clone(),
                token: c.tokens.node().to_string(),
                history_lines: args.router_history_lines,
                history_apps: args.router_history_apps,
            };
            process.ensure().await?;
            // Not aborted at stop: the handle is dropped and the router lives on.
            tokio::spawn(process.supervise());
        }
    }
    let scheduler = tokio::spawn(crate::scheduler::run_elected(Arc::clone(&c)));
    // Build and release-command jobs a killed controller left behind.
    let reaper = tokio::spawn(crate::builder::leftovers::reap_orphan_jobs(Arc::clone(&c)));
    let (stop_tx, stop_rx) = watch::channel(false);
    let agent = if args.no_local_agent {
        tracing::info!(
            "no local agent (--no-local-agent): start agents with --controller {} and the \
             token in {}",
            c.settings.internal_url,
            c.settings.data_dir.join("node-token").display()
        );
        None
    } else {
        Some(tokio::spawn(supervise_agent(
            agent_command(&c, &args, &agent_bin),
            c.settings.data_dir.join("agent"),
            c.tokens.node().to_string(),
            stop_rx,
        )))
    };

    print_banner(&c, router_addr);
    if let Some(l) = &router_tls_addr {
        println!(
            "  apps over HTTPS          https://<app>.{}:{}/ (self-signed default certificate \
             until you add one: paas certs:add)\n",
            c.settings.domain,
            l.port()
        );
    }
    wait_for_signal().await?;
    tracing::info!("stopping: SIGTERM to the agent (containers keep running)");
    let _ = stop_tx.send(true);
    if let Some(agent) = agent {
        let _ = agent.await;
    }
    api.abort();
    for t in router_tasks {
        t.abort();
    }
    scheduler.abort();
    reaper.abort();
    Ok(())
}

async fn bind(
    addr: SocketAddr,
    what: &'static str,
    flag: &'static str,
) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen {
            what,
            flag,
            addr,
            source,
        })
}

async fn serve_api(listener: TcpListener, app: axum::Router) {
    // Connect info gives handlers the source address (rate limits and the refusal log).
    let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    if let Err(e) = axum::serve(listener, service).await {
        tracing::error!("the API server stopped: {e}");
    }
}

/// Imports every OCI image layout `<stacks>/<name>/` (with an `index.json`) as
/// `stacks/<name>:latest` (the add-on service images `postgresql` and `redis` as
/// `services/<name>:latest`, which only add-on jobs use), skipping those whose tag already
/// points at the layout's image.
pub async fn import_stacks(registry: &Registry, stacks: &Path) -> Result<Vec<String>, StartError> {
    let entries = match std::fs::read_dir(stacks) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StartError::Stacks {
                path: stacks.display().to_string(),
                source,
            })
        }
    };
    let mut dirs: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("index.json").is_file())
        .collect();
    dirs.sort();
    let mut imported = Vec::new();
    for dir in dirs {
        let name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let repo =
            crate::addons::image_repository(&name).unwrap_or_else(|| format!("stacks/{name}"));
        if crate::registry::names::check_repo(&repo).is_err() {
            tracing::warn!(
                "skipping the stack directory {}: {name:?} is not a valid image name",
                dir.display()
            );
            continue;
        }
        let layout_digest = layout_digest(&dir);
        if let (Some(want), Ok((_, _, have))) =
            (&layout_digest, registry.get_manifest(&repo, "latest").await)
        {
            if *want == have {
                tracing::debug!(%repo, "stack already imported");
                continue;
            }
        }
        let digest = registry
            .import_oci_layout(&dir, &repo, "latest")
            .await
            .map_err(|source| StartError::Import {
                name: name.clone(),
                path: dir.display().to_string(),
                source,
            })?;
        tracing::info!(%repo, %digest, "stack imported");
        imported.push(name);
    }
    Ok(imported)
}

/// The manifest digest an OCI layout's `index.json` names first.
fn layout_digest(dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("index.json")).ok()?;
    let index: serde_json::Value = serde_json::from_str(&text).ok()?;
    index["manifests"][0]["digest"].as_str().map(str::to_string)
}

/// The local agent's command line. The node token goes in the environment
/// (`PAAS_NODE_TOKEN`, which the agent reads like `--token`) so it does not show in `ps`.
fn agent_command(c: &Controller, args: &ServeArgs, bin: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(bin);
    cmd.arg("--controller")
        .arg(&c.settings.internal_url)
        .args(["--node-name", "local", "--listen", "127.0.0.1:0"])
        .arg("--state-dir")
        .arg(c.settings.data_dir.join("agent"))
        .args(["--prefix", &args.prefix])
        .args(["--subnet", &args.subnet])
        .args(["--port-range", &args.port_range])
        .args(["--advertise-addr", "127.0.0.1"])
        .env("PAAS_NODE_TOKEN", c.tokens.node())
        .stdin(Stdio::null())
        .kill_on_drop(false);
    cmd
}

/// Keeps the agent running: first adopts (or replaces) an agent of the state dir that a
/// killed controller left running (see [`crate::local_agent`]), then restarts it (with a
/// growing delay if it keeps dying) until `stop` turns true, then sends it SIGTERM and
/// waits up to 10 s.
async fn supervise_agent(
    mut cmd: tokio::process::Command,
    state_dir: PathBuf,
    token: String,
    mut stop: watch::Receiver<bool>,
) {
    if handle_running_agent(&cmd, &state_dir, &token, &mut stop).await {
        return;
    }
    let mut delay = Duration::from_secs(1);
    loop {
        let started = Instant::now();
        let mut child = match cmd.spawn() {
            Ok(child) => child,
            Err(e) => {
                tracing::error!("starting paas-agent failed: {e}");
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => return,
                }
                delay = (delay * 2).min(Duration::from_secs(30));
                continue;
            }
        };
        tracing::info!(pid = child.id(), "paas-agent started");
        tokio::select! {
            status = child.wait() => {
                if started.elapsed() > Duration::from_secs(30) {
                    delay = Duration::from_secs(1);
                }
                match status {
                    Ok(s) => tracing::warn!("paas-agent exited ({s}); restarting in {delay:?}"),
                    Err(e) => tracing::warn!("waiting for paas-agent: {e}; restarting in {delay:?}"),
                }
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => return,
                }
                delay = (delay * 2).min(Duration::from_secs(30));
            }
            _ = stop.changed() => {
                if let Some(pid) = child.id() {
                    // SAFETY: kill(2) on the pid of our own child, which has not been reaped
                    // yet (we still hold it), so the pid cannot belong to another process.
                    unsafe {
                        libc::kill(pid as libc::pid_t, libc::SIGTERM);
                    }
                }
                if tokio::time::timeout(Duration::from_secs(10), child.wait()).await.is_err() {
                    tracing::warn!("paas-agent did not exit 10 s after SIGTERM; killing it");
                    let _ = child.kill().await;
                }
                return;
            }
        }
    }
}

/// Adopts or replaces the agent a previous controller left running, if any. Returns true
/// when `stop` turned true meanwhile (the adopted agent was stopped).
async fn handle_running_agent(
    cmd: &tokio::process::Command,
    state_dir: &Path,
    token: &str,
    stop: &mut watch::Receiver<bool>,
) -> bool {
    use crate::local_agent::{Running, Verdict};
    let running = match Running::find(state_dir) {
        Ok(Some(r)) => r,
        Ok(None) => return false,
        Err(e) => {
            tracing::warn!("looking for a running paas-agent: {e}; starting a new one");
            return false;
        }
    };
    let std = cmd.as_std();
    let args: Vec<std::ffi::OsString> = std.get_args().map(|a| a.to_os_string()).collect();
    match running.verdict(Path::new(std.get_program()), &args, token) {
        Verdict::Adopt => {
            tracing::info!(
                pid = running.pid,
                "adopted the running paas-agent (a previous controller started it)"
            );
            tokio::select! {
                () = running.exited() => {
                    tracing::warn!(pid = running.pid, "the adopted paas-agent exited; starting a new one");
                    false
                }
                _ = stop.changed() => {
                    running.stop(Duration::from_secs(10)).await;
                    true
                }
            }
        }
        Verdict::Replace(why) => {
            tracing::info!(
                pid = running.pid,
                "replacing the running paas-agent: {why}; stopping it first"
            );
            running.stop(Duration::from_secs(10)).await;
            false
        }
    }
}

async fn wait_for_signal() -> Result<(), StartError> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).map_err(StartError::Signals)?;
    let mut int = signal(SignalKind::interrupt()).map_err(StartError::Signals)?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}

fn print_banner(c: &Controller, router: SocketAddr) {
    let s = &c.settings;
    let token = c.tokens.admin();
    let router_port = router.port();
    println!(
        "\npaas is running.\n\
         \n  API, git and dashboard  {api}/\
         \n  apps                    http://<app>.{domain}:{router_port}/\
         \n  admin token             {token}\
         \n                          (also in {token_file})\
         \n\nDeploy an app from its git repository:\
         \n\n  git remote add paas {git}\
         \n  git push paas main        # user: anything, password: the admin token\
         \n  curl http://hello.{domain}:{router_port}/\
         \n\nThe API:\
         \n\n  curl -H 'Authorization: Bearer {token}' {api}/v1/apps\n",
        api = s.public_url,
        domain = s.domain,
        git = s.git_url("hello"),
        token_file = s.data_dir.join("admin-token").display(),
    );
}
