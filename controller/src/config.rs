//! The command line (`paas-controller --standalone …` and `paas-controller hook`) and the
//! [`Settings`] every other module reads: where the data lives and the URLs the controller
//! is reached at.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

/// `paas-controller`: REST API, git receive, builds, registry, scheduler and router.
#[derive(Debug, Parser)]
#[command(
    name = "paas-controller",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The git pre-receive hook of every app repository (git runs it; not for people).
    Hook,
    /// Write the store and the data directory's files to one .tar.gz.
    Backup(crate::backup::BackupArgs),
    /// Restore a backup into a new data directory (and an empty database).
    Restore(crate::backup::RestoreArgs),
    /// Run only the router, reading routes and certificates from the controller's store.
    Router(crate::routing::RouterArgs),
    /// Remove registry manifests and blobs no kept release references (see docs/registry.md)
    Gc {
        /// The controller's data directory [default: /var/lib/paas]
        #[arg(long, value_name = "DIR")]
        data_dir: Option<PathBuf>,
        /// Releases kept per app (the current one is always kept)
        #[arg(long, default_value_t = crate::gc::DEFAULT_KEEP)]
        keep: usize,
        /// Files younger than this many seconds are kept (uploads in progress)
        #[arg(long, default_value_t = crate::gc::DEFAULT_GRACE.as_secs())]
        grace_secs: u64,
        /// Only report what would be removed
        #[arg(long)]
        dry_run: bool,
    },
}

/// Flags of the serving controller.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Run everything on this machine: controller, router and one local node agent.
    #[arg(long)]
    pub standalone: bool,
    /// Where the database, registry, git repositories, builds and agent state live.
    #[arg(long, default_value = "/var/lib/paas")]
    pub data_dir: PathBuf,
    /// Address of the REST API, git, registry and dashboard.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// Address of the router (apps are served at `http://<app>.<domain>:<port>`).
    #[arg(long, default_value = "127.0.0.1:8000")]
    pub router_listen: SocketAddr,
    /// Address of the router's HTTPS (SNI picks an uploaded certificate, else the
    /// self-signed default for `*.<domain>` in DATA/router-tls/). [default: 127.0.0.1:8443,
    /// left out with a warning when that port is taken; a given address must bind]
    #[arg(long)]
    pub router_tls_listen: Option<SocketAddr>,
    /// Serve no HTTPS.
    #[arg(long)]
    pub no_router_tls: bool,
    /// The router process binary (default: `paas-router` next to this executable). The
    /// controller starts it in its own process group, adopts one already running from
    /// the same state dir, and leaves it running when it stops (see docs/router.md).
    #[arg(long)]
    pub router_bin: Option<PathBuf>,
    /// The router process's state dir (its last route table, lock and log; default
    /// DATA/router).
    #[arg(long)]
    pub router_state_dir: Option<PathBuf>,
    /// Serve apps from a router inside this process instead of the `paas-router`
    /// process (the default, started or adopted, which outlives the controller: a
    /// controller restart, crash or upgrade drops no request). In-process, traffic stops
    /// while the controller is down; meant for tests and debugging.
    #[arg(long, conflicts_with = "router_process")]
    pub router_in_process: bool,
    /// The default now (kept so older scripts still start): serve apps from the
    /// `paas-router` process.
    #[arg(long, hide = true)]
    pub router_process: bool,
    /// Requests each app's router history keeps (per router thread; `paas logs` shows the
    /// newest of all threads). 0 keeps none.
    #[arg(long, default_value_t = crate::router::HistoryLimits::default().lines as u32,
        value_parser = clap::value_parser!(u32).range(0..=100_000))]
    pub router_history_lines: u32,
    /// Apps each router thread keeps a history for (beyond that the one served longest ago
    /// is forgotten). 0 keeps none.
    #[arg(long, default_value_t = crate::router::HistoryLimits::default().apps as u32,
        value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub router_history_apps: u32,
    /// Apps are served at `<app>.<domain>`.
    #[arg(long, default_value = "localhost")]
    pub domain: String,
    /// Prefix of the local agent's host-global names (bridge, nftables table, cgroups).
    #[arg(long, default_value = "paas")]
    pub prefix: String,
    /// The local agent's container subnet.
    #[arg(long, default_value = "10.88.0.0/24")]
    pub subnet: String,
    /// The local agent's host port range, FIRST-LAST.
    #[arg(long, default_value = "20000-29999")]
    pub port_range: String,
    /// OCI image layouts imported as `stacks/<name>:latest` at start (default DATA/stacks).
    #[arg(long)]
    pub stacks_dir: Option<PathBuf>,
    /// The node agent binary (default: `paas-agent` next to this executable).
    #[arg(long)]
    pub agent_bin: Option<PathBuf>,
    /// Serve the buildpacks from this directory instead of the copy built into the binary.
    #[arg(long)]
    pub buildpacks_dir: Option<PathBuf>,
    /// Start no local agent: nodes are `paas-agent --controller URL` processes started
    /// elsewhere (with the token of DATA/node-token), as `deploy/netns-cluster` does.
    #[arg(long)]
    pub no_local_agent: bool,
    /// Agents started with `--subnet auto` get a /24 of this range (one per node, kept).
    #[arg(long, default_value = DEFAULT_CLUSTER_CIDR)]
    pub cluster_cidr: String,
    /// Largest blob (image layer) a push to the registry may upload, in bytes (10 GiB).
    #[arg(long, default_value_t = crate::registry::DEFAULT_MAX_BLOB_BYTES)]
    pub max_blob_bytes: u64,
    /// Largest `git push` request body (the pack), in bytes (512 MiB).
    #[arg(long, default_value_t = DEFAULT_MAX_PUSH_BYTES)]
    pub max_push_bytes: u64,
    /// The store: `postgres://USER[:PASSWORD]@HOST[:PORT]/DB` to share it between several
    /// controllers (one leads the scheduler); default SQLite at DATA/paas.db.
    #[arg(long, env = "PAAS_DATABASE_URL")]
    pub database_url: Option<String>,
    /// A registry `HOST[:PORT]` reached over plain http (repeat, or comma-separate in the
    /// env var); the only way to pull (`deploy --image`, `FROM`) from a loopback, private
    /// or link-local address. Others are reached over https.
    #[arg(
        long = "insecure-registry",
        value_name = "HOST[:PORT]",
        env = "PAAS_INSECURE_REGISTRIES",
        value_delimiter = ','
    )]
    pub insecure_registries: Vec<String>,
    /// The ACME directory URL of a CA for automatic certificates (`paas certs:auto on`,
    /// HTTP-01 on the router's port). Off when not given.
    #[arg(long, value_name = "URL")]
    pub acme_directory: Option<String>,
    /// The contact address of the ACME account.
    #[arg(long, value_name = "EMAIL")]
    pub acme_email: Option<String>,
    /// A PEM root certificate to check the ACME CA's own HTTPS against (a test CA such as
    /// Pebble); default: the system's roots.
    #[arg(long, value_name = "FILE", env = "PAAS_ACME_CA_FILE")]
    pub acme_ca_file: Option<PathBuf>,
    /// Run the registry garbage collection every this many seconds (the leader only; 0:
    /// never, run `paas-controller gc` instead).
    #[arg(long, env = "PAAS_GC_INTERVAL_SECS", default_value_t = crate::gc::DEFAULT_INTERVAL.as_secs())]
    pub gc_interval_secs: u64,
    /// Releases the periodic collection keeps per app (the current one is always kept).
    #[arg(long, env = "PAAS_GC_KEEP", default_value_t = crate::gc::DEFAULT_KEEP)]
    pub gc_keep: usize,
    /// Files younger than this many seconds survive the periodic collection.
    #[arg(long, env = "PAAS_GC_GRACE_SECS", default_value_t = crate::gc::DEFAULT_GRACE.as_secs())]
    pub gc_grace_secs: u64,
    /// What one build may use (source size, time, CPU, cache).
    #[command(flatten)]
    pub build_limits: crate::builder::limits::LimitArgs,
}

/// Where the router serves HTTPS when `--router-tls-listen` is not given.
pub const DEFAULT_ROUTER_TLS_LISTEN: &str = "127.0.0.1:8443";

/// The default `--max-push-bytes`: 512 MiB.
pub const DEFAULT_MAX_PUSH_BYTES: u64 = 512 << 20;

/// The default `--cluster-cidr`.
pub const DEFAULT_CLUSTER_CIDR: &str = "10.89.0.0/16";

/// Errors in the command line values.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "this version only runs with --standalone (controller, router and one local agent \
         on this machine): paas-controller --standalone --data-dir DIR"
    )]
    NotStandalone,
    #[error(
        "invalid domain {0:?}: use a host name such as localhost or paas.example.com \
         (letters, digits, dashes and dots)"
    )]
    Domain(String),
    #[error("finding this executable's path (for the git hook and the agent): {0}")]
    CurrentExe(#[source] std::io::Error),
}

/// What the running controller knows about itself.
#[derive(Debug, Clone)]
pub struct Settings {
    pub data_dir: PathBuf,
    /// `http://ip:port` at which agents and the git hook reach this controller (loopback when
    /// listening on every address).
    pub internal_url: String,
    /// Base of the URLs shown to people (git remotes).
    pub public_url: String,
    /// The router's port, for `http://<app>.<domain>:<port>`.
    pub router_port: u16,
    pub domain: String,
    /// The stack every build runs on.
    pub stack: String,
    /// Run-time override of the built-in buildpacks.
    pub buildpacks_dir: Option<PathBuf>,
    /// The program the git hook runs (`<exe> hook`).
    pub hook_exe: PathBuf,
    /// The range node subnets are allocated from (`--cluster-cidr`).
    pub cluster_cidr: String,
    /// `--max-blob-bytes`: the registry's largest upload.
    pub max_blob_bytes: u64,
    /// `--max-push-bytes`: the largest git push body.
    pub max_push_bytes: u64,
    /// `--insecure-registry`: registries pulled from over plain http (normalized hosts).
    pub insecure_registries: Vec<String>,
    /// `--database-url`: PostgreSQL (or `sqlite:PATH`) instead of SQLite at [`Self::db_path`].
    pub database_url: Option<String>,
    /// `--acme-directory` and friends: automatic certificates (None: off).
    pub acme: Option<crate::acme::account::AcmeSettings>,
    /// `--gc-interval-secs`, `--gc-keep`, `--gc-grace-secs`: the periodic registry gc.
    pub gc: crate::gc::Periodic,
    /// `--max-source-bytes`, `--build-timeout`, `--build-cpu`, `--max-cache-bytes`.
    pub build_limits: crate::builder::limits::BuildLimits,
}

impl Settings {
    /// Settings for a controller listening on `listen` (the bound address).
    pub fn new(
        data_dir: PathBuf,
        listen: SocketAddr,
        router_port: u16,
        domain: &str,
    ) -> Result<Settings, ConfigError> {
        let domain = domain.trim().trim_end_matches('.').to_ascii_lowercase();
        let ok = !domain.is_empty()
            && domain.len() <= 200
            && domain
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.')
            && !domain.starts_with(['.', '-']);
        if !ok {
            return Err(ConfigError::Domain(domain));
        }
        let url = format!("http://{}", reachable(listen));
        Ok(Settings {
            data_dir,
            internal_url: url.clone(),
            public_url: url,
            router_port,
            domain,
            stack: "tiny".into(),
            buildpacks_dir: None,
            hook_exe: std::env::current_exe().map_err(ConfigError::CurrentExe)?,
            cluster_cidr: DEFAULT_CLUSTER_CIDR.into(),
            max_blob_bytes: crate::registry::DEFAULT_MAX_BLOB_BYTES,
            max_push_bytes: DEFAULT_MAX_PUSH_BYTES,
            insecure_registries: Vec::new(),
            database_url: None,
            acme: None,
            gc: crate::gc::Periodic::default(),
            build_limits: crate::builder::limits::BuildLimits::default(),
        })
    }

    pub fn db_path(&self) -> PathBuf {
        self.data_dir.join("paas.db")
    }

    pub fn registry_dir(&self) -> PathBuf {
        self.data_dir.join("registry")
    }

    pub fn git_dir(&self) -> PathBuf {
        self.data_dir.join("git")
    }

    /// Where git repositories set aside by a destroy or rename wait to be removed:
    /// `DATA/git/.trash/` (no app name starts with a dot, so no request reaches it).
    pub fn git_trash_dir(&self) -> PathBuf {
        self.git_dir().join(".trash")
    }

    /// The bare repository of an app.
    pub fn repo_path(&self, app: &str) -> PathBuf {
        self.git_dir().join(format!("{app}.git"))
    }

    pub fn builds_dir(&self) -> PathBuf {
        self.data_dir.join("builds")
    }

    pub fn build_dir(&self, id: &str) -> PathBuf {
        self.builds_dir().join(id)
    }

    /// `http://<app>.<domain>:<router port>`
    pub fn web_url(&self, app: &str) -> String {
        format!("http://{app}.{}:{}", self.domain, self.router_port)
    }

    /// `http://<controller>/git/<app>.git`
    pub fn git_url(&self, app: &str) -> String {
        format!("{}/git/{app}.git", self.public_url)
    }

    /// The host the router serves an app at.
    pub fn app_host(&self, app: &str) -> String {
        format!("{app}.{}", self.domain)
    }
}

/// The address a local client should connect to for a listening address: loopback in place
/// of 0.0.0.0 / [::].
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        match addr {
            SocketAddr::V4(_) => SocketAddr::from((Ipv4Addr::LOCALHOST, addr.port())),
            SocketAddr::V6(_) => SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, addr.port())),
        }
    } else {
        addr
    }
}

/// `paas-agent` next to this executable.
pub fn default_agent_bin() -> Result<PathBuf, ConfigError> {
    let exe = std::env::current_exe().map_err(ConfigError::CurrentExe)?;
    Ok(exe
        .parent()
        .unwrap_or_else(|| Path::new("/"))
        .join("paas-agent"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_as_documented() {
        let cli = Cli::try_parse_from(["paas-controller", "--standalone"]).unwrap();
        let s = cli.serve;
        assert!(s.standalone);
        assert_eq!(s.data_dir, PathBuf::from("/var/lib/paas"));
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.router_listen.to_string(), "127.0.0.1:8000");
        assert!(s.router_tls_listen.is_none(), "127.0.0.1:8443, best effort");
        assert!(!s.no_router_tls);
        assert_eq!(s.domain, "localhost");
        assert_eq!(s.prefix, "paas");
        assert_eq!(s.subnet, "10.88.0.0/24");
        assert_eq!(s.port_range, "20000-29999");
        assert_eq!((s.router_history_lines, s.router_history_apps), (1000, 100));
        assert_eq!(
            crate::builder::limits::BuildLimits::from(&s.build_limits),
            crate::builder::limits::BuildLimits::default()
        );
        let err = Cli::try_parse_from([
            "paas-controller",
            "--standalone",
            "--router-history-lines",
            "1000000",
        ])
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("--router-history-lines") && err.contains("0..=100000"),
            "{err}"
        );
        assert!(s.stacks_dir.is_none() && s.agent_bin.is_none());
        assert!(
            s.acme_directory.is_none(),
            "automatic certificates are off by default"
        );
        let acme = Cli::try_parse_from([
            "paas-controller",
            "--standalone",
            "--acme-directory",
            "https://127.0.0.1:14000/dir",
            "--acme-email",
            "ops@example.test",
            "--acme-ca-file",
            "/ca.pem",
        ])
        .unwrap()
        .serve;
        assert_eq!(
            acme.acme_directory.as_deref(),
            Some("https://127.0.0.1:14000/dir")
        );
        assert_eq!(acme.acme_email.as_deref(), Some("ops@example.test"));
        assert_eq!(acme.acme_ca_file, Some(PathBuf::from("/ca.pem")));
        let cli = Cli::try_parse_from(["paas-controller", "hook"]).unwrap();
        assert!(matches!(cli.command, Some(Command::Hook)));
        let cli =
            Cli::try_parse_from(["paas-controller", "router", "--data-dir", "/d", "--no-tls"])
                .unwrap();
        match cli.command {
            Some(Command::Router(r)) => {
                assert_eq!(r.data_dir, PathBuf::from("/d"));
                assert_eq!(r.listen.to_string(), "127.0.0.1:8000");
                assert_eq!(r.tls_listen.to_string(), "127.0.0.1:8443");
                assert!(r.no_tls);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn settings_derive_urls() {
        let s = Settings::new(
            "/d".into(),
            "0.0.0.0:8080".parse().unwrap(),
            8000,
            "Example.COM.",
        )
        .unwrap();
        assert_eq!(s.internal_url, "http://127.0.0.1:8080");
        assert_eq!(s.web_url("hello"), "http://hello.example.com:8000");
        assert_eq!(s.git_url("hello"), "http://127.0.0.1:8080/git/hello.git");
        assert_eq!(s.repo_path("hello"), PathBuf::from("/d/git/hello.git"));
        assert!(Settings::new("/d".into(), "127.0.0.1:1".parse().unwrap(), 1, "a b").is_err());
    }
}
