//! paas-runtime: debug CLI of the runtime crate. A thin layer over [`paas_runtime::Runtime`]:
//!
//! ```text
//! paas-runtime [--root DIR] [--cgroup-parent NAME] [--cgroup-root DIR] <command>
//!   run    [container options] ID -- CMD...   create + start in the foreground; exits
//!                                             with the container's code (128+N if killed
//!                                             by signal N, 125 if it could not start)
//!   create [container options] ID -- CMD...   leaves it waiting for `start`
//!   start ID | state ID | list | kill ID [SIG] | delete [--force] ID
//! ```
//!
//! Subcommands take one container each, as the OCI runtime CLI does, so `--bundle` can
//! be added to `create`/`run` later without changing the rest.

use std::path::PathBuf;
use std::process::ExitCode;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand};
use nix::sys::signal::{SigSet, Signal};
use paas_runtime::{
    BindMount, ContainerOptions, ContainerSpec, Error, Network, Resources, Runtime, RuntimeConfig,
    DEFAULT_PATH,
};

#[derive(Parser)]
#[command(
    name = "paas-runtime",
    version,
    about = "Debug CLI of the paas container runtime"
)]
struct Cli {
    /// State dir (one subdirectory per container).
    #[arg(long, global = true, default_value = "/run/paas-runtime")]
    root: PathBuf,
    /// cgroup parent name under each hierarchy.
    #[arg(long, global = true, default_value = "paas-runtime")]
    cgroup_parent: String,
    /// Root of the cgroup filesystem.
    #[arg(long, global = true, default_value = "/sys/fs/cgroup")]
    cgroup_root: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Create and start a container in the foreground, then delete it.
    Run(ContainerArgs),
    /// Create a container that waits for `start`.
    Create(ContainerArgs),
    /// Let a created container exec its process.
    Start { id: String },
    /// Print a container's state as JSON.
    State { id: String },
    /// List the containers.
    List,
    /// Send a signal (name or number, default TERM) to a container's init.
    Kill { id: String, signal: Option<String> },
    /// Run a process in a running container; exits with its code.
    Exec {
        /// Allocate a pty for the process.
        #[arg(long, short)]
        tty: bool,
        /// KEY=VALUE (repeat); default: the container's environment.
        #[arg(long, short)]
        env: Vec<String>,
        /// Working directory; default: the container's.
        #[arg(long)]
        cwd: Option<String>,
        /// UID[:GID]; default: the container's user.
        #[arg(long)]
        user: Option<String>,
        id: String,
        #[arg(last = true, required = true)]
        command: Vec<String>,
    },
    /// Freeze a container's processes.
    Pause { id: String },
    /// Thaw a paused container.
    Resume { id: String },
    /// Print a container's memory, CPU and pid figures as JSON.
    Stats { id: String },
    /// Write a default OCI config.json into the bundle directory (default: here).
    Spec {
        #[arg(long, short)]
        bundle: Option<PathBuf>,
    },
    /// Remove a container (kill it first with --force).
    Delete {
        #[arg(long, short)]
        force: bool,
        id: String,
    },
}

#[derive(Args)]
struct ContainerArgs {
    /// OCI bundle directory (with config.json); the default when no `-- CMD` is given,
    /// as runc: the current directory.
    #[arg(long, short)]
    bundle: Option<PathBuf>,
    /// Write the container's host pid to this file.
    #[arg(long)]
    pid_file: Option<PathBuf>,
    /// `run` only: return once the container is started instead of waiting for it.
    #[arg(long, short)]
    detach: bool,
    /// With `process.terminal`: a unix socket (that you listen on) to receive the
    /// console's pty master over (`SCM_RIGHTS`), as runc. `run` in the foreground without
    /// it relays the console to this terminal itself.
    #[arg(long)]
    console_socket: Option<PathBuf>,
    /// Accepted for runc compatibility; pivot_root is always used.
    #[arg(long, hide = true)]
    no_pivot: bool,
    /// Accepted for runc compatibility (no session keyring is made anyway).
    #[arg(long, hide = true)]
    no_new_keyring: bool,
    /// A directory to use as the (only, read-only) image layer.
    #[arg(long, conflicts_with = "layer")]
    rootfs: Option<PathBuf>,
    /// Image layer directories, top-most first (repeat).
    #[arg(long)]
    layer: Vec<PathBuf>,
    /// Hostname (default: the id).
    #[arg(long)]
    hostname: Option<String>,
    /// Memory limit in bytes.
    #[arg(long)]
    memory: Option<u64>,
    /// Maximum number of processes.
    #[arg(long)]
    pids: Option<u64>,
    /// CPU weight in cpu.shares units (1024 = default).
    #[arg(long)]
    cpu_shares: Option<u64>,
    /// `none` (own namespace with lo), `host`, `container:ID` (share that container's),
    /// or a netns path to join.
    #[arg(long, default_value = "none")]
    net: String,
    /// KEY=VALUE (repeat). PATH defaults to the usual one.
    #[arg(long, short)]
    env: Vec<String>,
    /// Working directory inside the container.
    #[arg(long, default_value = "/")]
    cwd: String,
    /// UID[:GID] to run as.
    #[arg(long)]
    user: Option<String>,
    /// SOURCE:DEST[:ro] bind mount (repeat).
    #[arg(long = "mount")]
    mounts: Vec<String>,
    /// Run in a new user namespace: container uids/gids 0..65536 are host ids
    /// HOST_ID..HOST_ID+65536.
    #[arg(long, value_name = "HOST_ID")]
    userns: Option<u32>,
    /// File for stdout and stderr (default: the terminal for `run`,
    /// `<root>/<id>.log` for `create`).
    #[arg(long)]
    log: Option<PathBuf>,
    id: String,
    /// The command and its arguments, after `--` (without one: an OCI bundle).
    #[arg(last = true)]
    command: Vec<String>,
}

/// A user-facing failure: message and exit code.
struct Failure(String, u8);

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure(e.to_string(), 1)
    }
}

fn parse_network(s: &str, root: &std::path::Path) -> Result<Network, Failure> {
    match s {
        "none" => Ok(Network::None),
        "host" => Ok(Network::Host),
        p if p.starts_with('/') => Ok(Network::Join(PathBuf::from(p))),
        p if p.starts_with("container:") => {
            // The other container's state only needs the state dir.
            let rt = Runtime::new(RuntimeConfig {
                state_dir: root.to_owned(),
                cgroup_parent: String::new(),
                cgroup_root: PathBuf::from("/sys/fs/cgroup"),
            })?;
            Ok(Network::Join(rt.netns_path(&p["container:".len()..])?))
        }
        other => Err(Failure(
            format!("--net {other:?}: expected none, host, container:ID or an absolute netns path"),
            2,
        )),
    }
}

fn parse_user(s: &str) -> Result<(u32, u32), Failure> {
    let bad = || {
        Failure(
            format!("--user {s:?}: expected UID or UID:GID (numbers)"),
            2,
        )
    };
    let (u, g) = s.split_once(':').unwrap_or((s, s));
    Ok((u.parse().map_err(|_| bad())?, g.parse().map_err(|_| bad())?))
}

fn parse_mount(s: &str) -> Result<BindMount, Failure> {
    let parts: Vec<&str> = s.split(':').collect();
    let (source, destination, readonly) = match parts.as_slice() {
        [src, dst] => (src, dst, false),
        [src, dst, "ro"] => (src, dst, true),
        [src, dst, "rw"] => (src, dst, false),
        _ => {
            return Err(Failure(
                format!("--mount {s:?}: expected SOURCE:DEST or SOURCE:DEST:ro"),
                2,
            ))
        }
    };
    Ok(BindMount {
        source: PathBuf::from(source),
        destination: destination.to_string(),
        readonly,
    })
}

fn parse_signal(s: &str) -> Result<i32, Failure> {
    if let Ok(n) = s.parse::<i32>() {
        return Ok(n);
    }
    let upper = s.to_ascii_uppercase();
    let name = if upper.starts_with("SIG") {
        upper
    } else {
        format!("SIG{upper}")
    };
    Signal::from_str(&name)
        .map(|sig| sig as i32)
        .map_err(|_| Failure(format!("unknown signal {s:?}"), 2))
}

/// The spec and options of `create`/`run`: from the OCI bundle, or from the flags.
fn container_of(
    a: &ContainerArgs,
    root: &std::path::Path,
    foreground: bool,
) -> Result<(ContainerSpec, ContainerOptions), Failure> {
    if a.command.is_empty() || a.bundle.is_some() {
        if !a.command.is_empty() {
            return Err(Failure(
                "give either --bundle or `-- CMD`, not both".into(),
                2,
            ));
        }
        let bundle = a.bundle.clone().unwrap_or_else(|| PathBuf::from("."));
        let mut warnings = Vec::new();
        let (spec, mut opts) = paas_runtime::oci::load_bundle(&bundle, &a.id, &mut warnings)?;
        opts.console_socket = a.console_socket.clone();
        for w in warnings {
            eprintln!("paas-runtime: warning: {w}");
        }
        return Ok((spec, opts));
    }
    let opts = ContainerOptions {
        id_mappings: a
            .userns
            .map(|base| paas_runtime::IdMappings::range(base, 65536)),
        console_socket: a.console_socket.clone(),
        ..ContainerOptions::default()
    };
    Ok((spec_of(a, root, foreground)?, opts))
}

fn spec_of(
    a: &ContainerArgs,
    root: &std::path::Path,
    foreground: bool,
) -> Result<ContainerSpec, Failure> {
    let layers = match &a.rootfs {
        Some(r) => vec![r.clone()],
        None => a.layer.clone(),
    };
    let mut env = a.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.insert(0, format!("PATH={DEFAULT_PATH}"));
    }
    let (stdout, stderr) = match (&a.log, foreground) {
        (Some(log), _) => (log.clone(), log.clone()),
        (None, true) => (PathBuf::from("/dev/stdout"), PathBuf::from("/dev/stderr")),
        (None, false) => {
            let log = root.join(format!("{}.log", a.id));
            (log.clone(), log)
        }
    };
    Ok(ContainerSpec {
        id: a.id.clone(),
        layers,
        args: a.command.clone(),
        env,
        cwd: a.cwd.clone(),
        hostname: a.hostname.clone().unwrap_or_else(|| a.id.clone()),
        user: a.user.as_deref().map(parse_user).transpose()?,
        mounts: a
            .mounts
            .iter()
            .map(|m| parse_mount(m))
            .collect::<Result<_, _>>()?,
        network: parse_network(&a.net, root)?,
        resources: Resources {
            memory_bytes: a.memory,
            pids_max: a.pids,
            cpu_shares: a.cpu_shares,
        },
        stdout,
        stderr,
    })
}

/// Forwards SIGINT/SIGTERM/SIGHUP to the container; a second one sends SIGKILL.
fn forward_signals(rt: Runtime, id: String) -> Result<(), Failure> {
    let mut set = SigSet::empty();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(sig);
    }
    set.thread_block()
        .map_err(|e| Failure(format!("blocking signals: {e}"), 1))?;
    std::thread::spawn(move || {
        let mut count = 0;
        while let Ok(sig) = set.wait() {
            count += 1;
            let send = if count > 1 { libc::SIGKILL } else { sig as i32 };
            let _ = rt.kill(&id, send);
        }
    });
    Ok(())
}

fn write_pid_file(a: &ContainerArgs, pid: i32) -> Result<(), Failure> {
    if let Some(path) = &a.pid_file {
        std::fs::write(path, pid.to_string())
            .map_err(|e| Failure(format!("writing --pid-file {}: {e}", path.display()), 1))?;
    }
    Ok(())
}

fn run(rt: &Runtime, a: &ContainerArgs, root: &std::path::Path) -> Result<u8, Failure> {
    let (spec, mut opts) = container_of(a, root, true)?;
    let cant_start = |e: Error| Failure(e.to_string(), 125);
    if a.detach {
        let state = rt.run_with(&spec, &opts).map_err(cant_start)?;
        write_pid_file(a, state.pid)?;
        return Ok(0);
    }
    // A terminal container in the foreground without a console socket: be the socket's
    // listener ourselves and relay the console to this terminal.
    let console = match (opts.terminal, &opts.console_socket) {
        (true, None) => {
            let path = root.join(format!("{}.console", spec.id));
            let _ = std::fs::remove_file(&path);
            let listener = std::os::unix::net::UnixListener::bind(&path)
                .map_err(|e| Failure(format!("listening on {}: {e}", path.display()), 125))?;
            opts.console_socket = Some(path.clone());
            Some((path, std::thread::spawn(move || relay_console(&listener))))
        }
        _ => None,
    };
    forward_signals(rt.clone(), spec.id.clone())?;
    let started = rt.run_with(&spec, &opts);
    if let Some((path, _)) = &console {
        let _ = std::fs::remove_file(path);
    }
    let state = started.map_err(cant_start)?;
    write_pid_file(a, state.pid)?;
    let exit = rt.wait(&spec.id)?;
    if let Some((_, relay)) = console {
        // The relay ends when the last holder of the pty's other end is gone.
        let _ = relay.join();
    }
    rt.delete(&spec.id, true)?;
    Ok(match (exit.code, exit.signal) {
        (Some(code), _) => code as u8,
        (None, Some(sig)) => 128u8.wrapping_add(sig as u8),
        (None, None) => 255,
    })
}

/// Accepts the container's console on `listener`, takes the pty master out of the
/// message (`SCM_RIGHTS`) and relays it to our terminal (raw mode while it runs when
/// stdin is a terminal, as runc).
fn relay_console(listener: &std::os::unix::net::UnixListener) -> Result<(), Failure> {
    let (conn, _) = listener
        .accept()
        .map_err(|e| Failure(format!("accepting the console: {e}"), 1))?;
    let master = paas_runtime::oci::receive_console(&conn)?;
    let stdin = std::io::stdin();
    let saved = nix::sys::termios::tcgetattr(&stdin).ok();
    if let Some(t) = &saved {
        let mut raw = t.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &raw);
    }
    let relayed = relay_pty(&master);
    if let Some(t) = &saved {
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, t);
    }
    relayed
}

/// Copies our stdin to the pty master and the master to our stdout (until the process
/// closes its side).
fn relay_pty(master: &std::os::fd::OwnedFd) -> Result<(), Failure> {
    use std::io::{Read, Write};
    let fail = |e: std::io::Error| Failure(format!("relaying the pty: {e}"), 1);
    let mut reader = std::fs::File::from(master.try_clone().map_err(fail)?);
    let mut writer = std::fs::File::from(master.try_clone().map_err(fail)?);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut stdin = std::io::stdin();
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || writer.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let mut buf = [0u8; 4096];
    let mut stdout = std::io::stdout();
    // EIO once the last slave descriptor is closed.
    while let Ok(n) = reader.read(&mut buf) {
        if n == 0 {
            break;
        }
        let _ = stdout.write_all(&buf[..n]);
        let _ = stdout.flush();
    }
    Ok(())
}

fn main_result(cli: Cli) -> Result<u8, Failure> {
    let rt = Runtime::new(RuntimeConfig {
        state_dir: cli.root.clone(),
        cgroup_parent: cli.cgroup_parent.clone(),
        cgroup_root: cli.cgroup_root.clone(),
    })?;
    match &cli.command {
        Command::Run(a) => return run(&rt, a, &cli.root),
        Command::Create(a) => {
            let (spec, opts) = container_of(a, &cli.root, false)?;
            let state = rt.create_with(&spec, &opts)?;
            write_pid_file(a, state.pid)?;
            if opts.oci_bundle.is_none() {
                println!("{}", state.pid);
            }
        }
        Command::Spec { bundle } => {
            let dir = bundle.clone().unwrap_or_else(|| PathBuf::from("."));
            let path = dir.join("config.json");
            if path.exists() {
                return Err(Failure(format!("{} already exists", path.display()), 1));
            }
            paas_runtime::oci::default_spec()?
                .save(&path)
                .map_err(|e| Failure(format!("writing {}: {e}", path.display()), 1))?;
        }
        Command::Start { id } => rt.start(id)?,
        Command::State { id } => {
            let state = rt.state(id)?;
            let json = paas_runtime::oci::state_json_for(&state, &rt.options(id)?);
            let json = serde_json::to_string_pretty(&json)
                .map_err(|e| Failure(format!("encoding the state: {e}"), 1))?;
            println!("{json}");
        }
        Command::List => {
            println!("{:<24} {:>8} {:<9} CREATED", "ID", "PID", "STATUS");
            for s in rt.list()? {
                println!("{:<24} {:>8} {:<9} {}", s.id, s.pid, s.status, s.created);
            }
        }
        Command::Kill { id, signal } => {
            let sig = signal.as_deref().map(parse_signal).transpose()?;
            rt.kill(id, sig.unwrap_or(libc::SIGTERM))?;
        }
        Command::Delete { force, id } => rt.delete(id, *force)?,
        Command::Exec {
            tty,
            env,
            cwd,
            user,
            id,
            command,
        } => {
            let spec = paas_runtime::ExecSpec {
                args: command.clone(),
                env: env.clone(),
                cwd: cwd.clone(),
                user: user.as_deref().map(parse_user).transpose()?,
                tty: *tty,
                ..Default::default()
            };
            let process = rt.exec(id, spec).map_err(|e| Failure(e.to_string(), 126))?;
            if let Some(master) = &process.pty {
                relay_pty(master)?;
            }
            let code = process.wait()?;
            return Ok(code as u8);
        }
        Command::Pause { id } => rt.pause(id)?,
        Command::Resume { id } => rt.resume(id)?,
        Command::Stats { id } => {
            let stats = rt.stats(id)?;
            let json = serde_json::to_string_pretty(&stats)
                .map_err(|e| Failure(format!("encoding the stats: {e}"), 1))?;
            println!("{json}");
        }
    }
    Ok(0)
}

fn main() -> ExitCode {
    match main_result(Cli::parse()) {
        Ok(code) => ExitCode::from(code),
        Err(Failure(msg, code)) => {
            eprintln!("paas-runtime: {msg}");
            ExitCode::from(code)
        }
    }
}
