//! The command-line model: runc's commands and flags, as containerd's runc shim (v2),
//! Podman's conmon and the OCI runtime-tools pass them, plus paas's own debug options
//! (`run ID -- CMD` from image layers, `--net`, `--userns`, `stats`).
//!
//! runc's global options (`--root`, `--log`, `--log-format`, `--debug`,
//! `--systemd-cgroup`, `--rootless`, `--criu`) come before the command; `--root`, the
//! cgroup parent and root are also taken after it. `exec ID CMD ARGS…` needs no `--`
//! (everything after the command is the command's), as in runc.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// What `--version` prints first: runc's shape (`NAME version X`, `commit:`, `spec:`).
pub const SPEC_VERSION: &str = "1.0.2";

#[derive(Parser, Debug)]
#[command(
    name = "paas-runtime",
    about = "The paas container runtime, with runc's command line",
    disable_version_flag = true
)]
pub struct Cli {
    /// Print the version (runc's shape) and exit.
    #[arg(short = 'v', long)]
    pub version: bool,
    /// State dir (one subdirectory per container).
    #[arg(long, global = true, default_value = "/run/paas-runtime")]
    pub root: PathBuf,
    /// cgroup parent name under each hierarchy.
    #[arg(long, global = true, default_value = "paas-runtime")]
    pub cgroup_parent: String,
    /// Root of the cgroup filesystem.
    #[arg(long, global = true, default_value = "/sys/fs/cgroup")]
    pub cgroup_root: PathBuf,
    /// Where errors (and with --debug, debug lines) go; default stderr only.
    #[arg(long = "log", value_name = "FILE")]
    pub log_file: Option<PathBuf>,
    /// Format of --log: text (logfmt) or json (one object a line), as runc.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Log each command and its steps at debug level.
    #[arg(long)]
    pub debug: bool,
    /// runc's systemd cgroup driver: not supported (refused with a reason).
    #[arg(long)]
    pub systemd_cgroup: bool,
    /// runc's rootless mode: true, false or auto. Only false and auto (as root) run.
    #[arg(long, value_name = "true|false|auto", num_args = 0..=1, default_missing_value = "true")]
    pub rootless: Option<String>,
    /// runc's checkpoint tool path: accepted, unused (no checkpoint/restore).
    #[arg(long, hide = true)]
    pub criu: Option<String>,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ListFormat {
    #[default]
    Table,
    Json,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Create and start a container (in the foreground unless --detach), then delete it.
    Run(ContainerArgs),
    /// Create a container that waits for `start`.
    Create(ContainerArgs),
    /// Let a created container exec its process.
    Start { id: String },
    /// Print a container's state as OCI JSON.
    State { id: String },
    /// List the containers.
    List {
        #[arg(long, short, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        /// Only the ids.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Send a signal (name or number, default TERM) to a container's init, or with
    /// --all to every process of it.
    Kill {
        #[arg(long, short)]
        all: bool,
        id: String,
        signal: Option<String>,
    },
    /// Run a process in a running container; exits with its code (or, --detach, once
    /// it runs).
    Exec(ExecArgs),
    /// Freeze a container's processes (cgroup freezer).
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// The processes of a container: `ps` output (its options after the id, default
    /// -ef) or, --format json, a JSON array of host pids.
    Ps {
        #[arg(long, short, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
        id: String,
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        ps_args: Vec<String>,
    },
    /// runc's events: a `stats` JSON object every --interval (or once, --stats) until
    /// the container stops.
    Events {
        /// Seconds between two stats events (runc's `5s` form is taken too).
        #[arg(long, default_value = "5s")]
        interval: String,
        /// Print the stats once and exit.
        #[arg(long)]
        stats: bool,
        id: String,
    },
    /// Change a container's cgroup limits: from OCI `linux.resources` JSON (-r FILE, or
    /// - for stdin) and/or flags.
    Update(UpdateArgs),
    /// What this runtime supports, as runc's `features` JSON.
    Features,
    /// Print a container's memory, CPU and pid figures as JSON (paas's own).
    Stats { id: String },
    /// Write a default OCI config.json into the bundle directory (default: here).
    Spec {
        #[arg(long, short)]
        bundle: Option<PathBuf>,
        /// runc's rootless spec: not supported.
        #[arg(long)]
        rootless: bool,
    },
    /// Remove a container (kill it first with --force).
    Delete {
        #[arg(long, short)]
        force: bool,
        id: String,
    },
}

#[derive(Args, Debug)]
pub struct ContainerArgs {
    /// OCI bundle directory (with config.json); the default when no `-- CMD` is given,
    /// as runc: the current directory.
    #[arg(long, short)]
    pub bundle: Option<PathBuf>,
    /// Write the container's host pid to this file.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// `run` only: return once the container is started instead of waiting for it.
    #[arg(long, short)]
    pub detach: bool,
    /// With `process.terminal`: a unix socket (that you listen on) to receive the
    /// console's pty master over (`SCM_RIGHTS`), as runc.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility; pivot_root is always used.
    #[arg(long)]
    pub no_pivot: bool,
    /// Accepted for runc compatibility (no session keyring is made anyway).
    #[arg(long)]
    pub no_new_keyring: bool,
    /// Pass the caller's descriptors 3..3+N to the container's process.
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// `run` only, runc's: keep the container's state after it exits.
    #[arg(long)]
    pub keep: bool,
    /// runc's: accepted (the runtime is no subreaper).
    #[arg(long, hide = true)]
    pub no_subreaper: bool,
    /// A directory to use as the (only, read-only) image layer.
    #[arg(long, conflicts_with = "layer")]
    pub rootfs: Option<PathBuf>,
    /// Image layer directories, top-most first (repeat).
    #[arg(long)]
    pub layer: Vec<PathBuf>,
    /// Hostname (default: the id).
    #[arg(long)]
    pub hostname: Option<String>,
    /// Memory limit in bytes.
    #[arg(long)]
    pub memory: Option<u64>,
    /// Maximum number of processes.
    #[arg(long)]
    pub pids: Option<u64>,
    /// CPU weight in cpu.shares units (1024 = default).
    #[arg(long)]
    pub cpu_shares: Option<u64>,
    /// `none` (own namespace with lo), `host`, `container:ID` (share that container's),
    /// or a netns path to join.
    #[arg(long, default_value = "none")]
    pub net: String,
    /// KEY=VALUE (repeat). PATH defaults to the usual one.
    #[arg(long, short)]
    pub env: Vec<String>,
    /// Working directory inside the container.
    #[arg(long, default_value = "/")]
    pub cwd: String,
    /// UID[:GID] to run as.
    #[arg(long)]
    pub user: Option<String>,
    /// SOURCE:DEST[:ro] bind mount (repeat).
    #[arg(long = "mount")]
    pub mounts: Vec<String>,
    /// Run in a new user namespace: container uids/gids 0..65536 are host ids
    /// HOST_ID..HOST_ID+65536.
    #[arg(long, value_name = "HOST_ID")]
    pub userns: Option<u32>,
    /// File for stdout and stderr of a `-- CMD` container (default: the terminal for
    /// `run`, `<root>/<id>.log` for `create`).
    #[arg(long = "output")]
    pub output: Option<PathBuf>,
    pub id: String,
    /// The command and its arguments, after `--` (without one: an OCI bundle).
    #[arg(last = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    /// A JSON file with an OCI `process` (runc's form; the other flags then only add).
    #[arg(long, short)]
    pub process: Option<PathBuf>,
    /// Return once the process runs; it is reparented to the caller's subreaper.
    #[arg(long, short)]
    pub detach: bool,
    /// Write the process's host pid to this file.
    #[arg(long)]
    pub pid_file: Option<PathBuf>,
    /// Allocate a pty for the process.
    #[arg(long, short)]
    pub tty: bool,
    /// With --tty: send the pty master over this unix socket (`SCM_RIGHTS`), as runc.
    #[arg(long)]
    pub console_socket: Option<PathBuf>,
    /// Working directory; default: the container's.
    #[arg(long)]
    pub cwd: Option<String>,
    /// KEY=VALUE (repeat), added to the container's environment.
    #[arg(long, short)]
    pub env: Vec<String>,
    /// UID[:GID]; default: the container's user.
    #[arg(long, short)]
    pub user: Option<String>,
    /// Supplementary group ids (repeat).
    #[arg(long = "additional-gids", short = 'g')]
    pub additional_gids: Vec<u32>,
    /// Add a capability (CAP_NAME, repeat) to the process's bounding, effective and
    /// permitted sets.
    #[arg(long, short)]
    pub cap: Vec<String>,
    /// Set `no_new_privs` for the process.
    #[arg(long)]
    pub no_new_privs: bool,
    /// Pass the caller's descriptors 3..3+N: not supported for exec (refused above 0).
    #[arg(long, default_value_t = 0)]
    pub preserve_fds: u32,
    /// runc's SELinux label: accepted when empty (this runtime applies no LSM).
    #[arg(long)]
    pub process_label: Option<String>,
    /// runc's AppArmor profile: accepted when empty (this runtime applies no LSM).
    #[arg(long)]
    pub apparmor: Option<String>,
    /// runc's sub-cgroup choice: not supported (refused).
    #[arg(long)]
    pub cgroup: Option<String>,
    /// runc's: exec even into a paused container (accepted, not needed).
    #[arg(long)]
    pub ignore_paused: bool,
    pub id: String,
    /// The command and its arguments (a `--` before them is optional).
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Args, Debug)]
pub struct UpdateArgs {
    /// OCI `linux.resources` JSON file, `-` for stdin.
    #[arg(long, short)]
    pub resources: Option<PathBuf>,
    #[arg(long)]
    pub blkio_weight: Option<u16>,
    #[arg(long)]
    pub cpu_period: Option<u64>,
    #[arg(long)]
    pub cpu_quota: Option<i64>,
    #[arg(long = "cpu-share")]
    pub cpu_share: Option<u64>,
    #[arg(long)]
    pub cpu_rt_period: Option<u64>,
    #[arg(long)]
    pub cpu_rt_runtime: Option<i64>,
    #[arg(long)]
    pub cpuset_cpus: Option<String>,
    #[arg(long)]
    pub cpuset_mems: Option<String>,
    /// Bytes, or with a k/m/g suffix.
    #[arg(long)]
    pub memory: Option<String>,
    #[arg(long)]
    pub memory_reservation: Option<String>,
    /// Memory plus swap; -1 = unlimited swap.
    #[arg(long)]
    pub memory_swap: Option<String>,
    #[arg(long)]
    pub pids_limit: Option<i64>,
    pub id: String,
}

/// A size as runc's `update` takes it: bytes, or a number with `k`, `m`, `g` (binary,
/// an optional `b`/`ib`), or `-1`.
pub fn parse_size(s: &str) -> Result<i64, String> {
    let t = s.trim().to_ascii_lowercase();
    if t == "-1" {
        return Ok(-1);
    }
    let t = t
        .strip_suffix("ib")
        .or_else(|| t.strip_suffix('b'))
        .unwrap_or(&t);
    let (num, mult) = match t.chars().last() {
        Some('k') => (&t[..t.len() - 1], 1i64 << 10),
        Some('m') => (&t[..t.len() - 1], 1 << 20),
        Some('g') => (&t[..t.len() - 1], 1 << 30),
        Some('t') => (&t[..t.len() - 1], 1 << 40),
        _ => (t, 1),
    };
    num.trim()
        .parse::<i64>()
        .ok()
        .and_then(|n| n.checked_mul(mult))
        .filter(|n| *n >= 0)
        .ok_or_else(|| format!("{s:?} is not a size (bytes, or a number with k, m or g)"))
}

/// runc's `--interval` (`5s`, `500ms`, `1m`, or plain seconds) in milliseconds.
pub fn parse_interval(s: &str) -> Result<u64, String> {
    let bad = || format!("--interval {s:?}: expected a duration such as 5s, 500ms or 1m");
    let (num, mult) = if let Some(n) = s.strip_suffix("ms") {
        (n, 1)
    } else if let Some(n) = s.strip_suffix('s') {
        (n, 1000)
    } else if let Some(n) = s.strip_suffix('m') {
        (n, 60_000)
    } else {
        (s, 1000)
    };
    let n: f64 = num.parse().map_err(|_| bad())?;
    if n.is_nan() || n <= 0.0 {
        return Err(bad());
    }
    Ok((n * mult as f64) as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(std::iter::once("paas-runtime").chain(args.iter().copied()))
            .unwrap_or_else(|e| panic!("{args:?}: {e}"))
    }

    #[test]
    fn containerds_shim_create_line_parses() {
        // What containerd's runc shim (v2) runs, in its order.
        let cli = parse(&[
            "--root",
            "/run/containerd/runc/default",
            "--log",
            "/run/x/log.json",
            "--log-format",
            "json",
            "create",
            "--bundle",
            "/run/x",
            "--pid-file",
            "/run/x/init.pid",
            "--console-socket",
            "/tmp/pty.sock",
            "c1",
        ]);
        assert_eq!(cli.root, PathBuf::from("/run/containerd/runc/default"));
        assert_eq!(cli.log_file, Some(PathBuf::from("/run/x/log.json")));
        assert_eq!(cli.log_format, LogFormat::Json);
        match cli.command {
            Some(Command::Create(a)) => {
                assert_eq!(a.bundle, Some(PathBuf::from("/run/x")));
                assert_eq!(a.pid_file, Some(PathBuf::from("/run/x/init.pid")));
                assert_eq!(a.console_socket, Some(PathBuf::from("/tmp/pty.sock")));
                assert_eq!(a.id, "c1");
                assert!(a.command.is_empty());
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn conmons_create_line_with_runc_flags_parses() {
        let cli = parse(&[
            "--log-format=json",
            "--log",
            "/x/oci-log",
            "--systemd-cgroup",
            "create",
            "--bundle",
            "/b",
            "--pid-file",
            "/b/pidfile",
            "--no-pivot",
            "--no-new-keyring",
            "--preserve-fds",
            "2",
            "abc",
        ]);
        assert!(cli.systemd_cgroup);
        let Some(Command::Create(a)) = cli.command else {
            panic!()
        };
        assert!(a.no_pivot && a.no_new_keyring);
        assert_eq!(a.preserve_fds, 2);
    }

    #[test]
    fn exec_takes_a_process_file_or_a_command_without_dashes() {
        let cli = parse(&[
            "--root",
            "/r",
            "exec",
            "--process",
            "/tmp/p.json",
            "--detach",
            "--pid-file",
            "/tmp/e.pid",
            "c1",
        ]);
        let Some(Command::Exec(e)) = cli.command else {
            panic!()
        };
        assert_eq!(e.process, Some(PathBuf::from("/tmp/p.json")));
        assert!(e.detach);
        assert!(e.command.is_empty());

        let cli = parse(&[
            "exec",
            "-t",
            "-e",
            "A=1",
            "-u",
            "1000:1000",
            "--cap",
            "CAP_NET_ADMIN",
            "--cwd",
            "/tmp",
            "c1",
            "sh",
            "-c",
            "echo -n hi",
        ]);
        let Some(Command::Exec(e)) = cli.command else {
            panic!()
        };
        assert!(e.tty);
        assert_eq!(e.env, vec!["A=1"]);
        assert_eq!(e.user.as_deref(), Some("1000:1000"));
        assert_eq!(e.cap, vec!["CAP_NET_ADMIN"]);
        assert_eq!(e.command, vec!["sh", "-c", "echo -n hi"]);

        let cli = parse(&["exec", "c1", "--", "ls", "-l"]);
        let Some(Command::Exec(e)) = cli.command else {
            panic!()
        };
        assert_eq!(e.command, vec!["ls", "-l"]);
    }

    #[test]
    fn kill_delete_ps_events_update_list_parse_as_the_shim_passes_them() {
        let Some(Command::Kill { all, id, signal }) = parse(&["kill", "--all", "c1", "9"]).command
        else {
            panic!()
        };
        assert!(all);
        assert_eq!((id.as_str(), signal.as_deref()), ("c1", Some("9")));
        let Some(Command::Delete { force, .. }) = parse(&["delete", "--force", "c1"]).command
        else {
            panic!()
        };
        assert!(force);
        let Some(Command::Ps {
            format, ps_args, ..
        }) = parse(&["ps", "--format", "json", "c1"]).command
        else {
            panic!()
        };
        assert_eq!(format, ListFormat::Json);
        assert!(ps_args.is_empty());
        let Some(Command::Ps { ps_args, .. }) = parse(&["ps", "c1", "-o", "pid,comm"]).command
        else {
            panic!()
        };
        assert_eq!(ps_args, vec!["-o", "pid,comm"]);
        let Some(Command::Events {
            stats, interval, ..
        }) = parse(&["events", "--stats", "c1"]).command
        else {
            panic!()
        };
        assert!(stats);
        assert_eq!(parse_interval(&interval).unwrap(), 5000);
        let Some(Command::Update(u)) = parse(&["update", "--resources", "-", "c1"]).command else {
            panic!()
        };
        assert_eq!(u.resources, Some(PathBuf::from("-")));
        let Some(Command::Update(u)) =
            parse(&["update", "--memory", "64m", "--pids-limit", "20", "c1"]).command
        else {
            panic!()
        };
        assert_eq!(parse_size(u.memory.as_deref().unwrap()).unwrap(), 64 << 20);
        assert_eq!(u.pids_limit, Some(20));
        let Some(Command::List { format, quiet }) = parse(&["list", "-f", "json", "-q"]).command
        else {
            panic!()
        };
        assert!(quiet && format == ListFormat::Json);
    }

    #[test]
    fn globals_version_and_rootless_parse() {
        assert!(parse(&["--version"]).version);
        assert!(parse(&["-v"]).version);
        assert_eq!(
            parse(&["--rootless", "auto", "list"]).rootless.as_deref(),
            Some("auto")
        );
        assert!(parse(&["--debug", "features"]).debug);
        // The old debug form still works: options after the command, `-- CMD`.
        let Some(Command::Run(a)) =
            parse(&["run", "--rootfs", "/r", "x", "--root", "/s", "--", "true"]).command
        else {
            panic!()
        };
        assert_eq!(a.command, vec!["true"]);
        assert!(
            Cli::try_parse_from(["paas-runtime", "--log-format", "yaml", "list"]).is_err(),
            "an unknown log format is refused"
        );
    }

    #[test]
    fn sizes_and_intervals() {
        assert_eq!(parse_size("1024").unwrap(), 1024);
        assert_eq!(parse_size("2k").unwrap(), 2048);
        assert_eq!(parse_size("1G").unwrap(), 1 << 30);
        assert_eq!(parse_size("3mb").unwrap(), 3 << 20);
        assert_eq!(parse_size("-1").unwrap(), -1);
        assert!(parse_size("lots").is_err());
        assert_eq!(parse_interval("500ms").unwrap(), 500);
        assert_eq!(parse_interval("2").unwrap(), 2000);
        assert_eq!(parse_interval("1m").unwrap(), 60_000);
        assert!(parse_interval("0s").is_err());
    }
}
