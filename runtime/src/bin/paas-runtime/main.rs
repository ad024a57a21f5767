//! paas-runtime: the runtime crate's command line, runc's to the letter (so containerd's
//! runc shim, Podman's conmon and the OCI runtime-tools drive it as runc), plus paas's
//! own debug forms (`run ID -- CMD` from image layers, `--net`, `--userns`, `stats`).
//!
//! ```text
//! paas-runtime [--root DIR] [--log FILE] [--log-format text|json] [--debug]
//!              [--cgroup-parent NAME] [--cgroup-root DIR] <command>
//!   create [--bundle DIR] [--pid-file F] [--console-socket S] [--preserve-fds N] ID
//!   run    [--bundle DIR] [--detach] [--keep] … ID      (or: run [options] ID -- CMD…)
//!   start | state | pause | resume | events [--stats] | ps [--format json] ID
//!   kill [--all] ID [SIG] | delete [--force] ID | list [--format json] [--quiet]
//!   exec [--process F] [--detach] [--pid-file F] [--tty] [--console-socket S]
//!        [--cwd D] [--env K=V] [--user U[:G]] [--cap CAP] ID [CMD…]
//!   update [-r FILE|-] [--memory N] [--pids-limit N] [--cpu-share N] … ID
//!   features | spec [--bundle DIR] | --version
//! ```
//!
//! The command-line model is `args`, the runc-only commands `runc`, `--log` `log`, the
//! terminals `console`.

mod args;
mod console;
mod log;
mod runc;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::str::FromStr;

use args::{Cli, Command, ContainerArgs};
use clap::Parser;
use nix::sys::signal::{SigSet, Signal};
use paas_runtime::{
    BindMount, ContainerOptions, ContainerSpec, Error, Network, Resources, Runtime, RuntimeConfig,
    DEFAULT_PATH,
};

/// A user-facing failure: message and exit code.
#[derive(Debug)]
pub struct Failure(String, u8);

impl Failure {
    pub fn new(msg: String, code: u8) -> Failure {
        Failure(msg, code)
    }

    /// An error of the library with this exit code, worded as runc words what engines
    /// match on: "does not exist" for a missing container.
    pub fn from_error(e: Error, code: u8) -> Failure {
        match e {
            Error::NotFound(id) => Failure::new(format!("container {id:?} does not exist"), code),
            e => Failure(e.to_string(), code),
        }
    }

    #[cfg(test)]
    pub fn message(&self) -> &str {
        &self.0
    }
}

impl From<Error> for Failure {
    fn from(e: Error) -> Failure {
        Failure::from_error(e, 1)
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
        other => Err(Failure::new(
            format!("--net {other:?}: expected none, host, container:ID or an absolute netns path"),
            2,
        )),
    }
}

pub fn parse_user(s: &str) -> Result<(u32, u32), Failure> {
    let bad = || {
        Failure::new(
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
            return Err(Failure::new(
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

pub fn parse_signal(s: &str) -> Result<i32, Failure> {
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
        .map_err(|_| Failure::new(format!("unknown signal {s:?}"), 2))
}

/// The spec and options of `create`/`run`: from the OCI bundle, or from the flags.
fn container_of(
    a: &ContainerArgs,
    root: &std::path::Path,
    foreground: bool,
) -> Result<(ContainerSpec, ContainerOptions), Failure> {
    if a.command.is_empty() || a.bundle.is_some() {
        if !a.command.is_empty() {
            return Err(Failure::new(
                "give either --bundle or `-- CMD`, not both".into(),
                2,
            ));
        }
        let bundle = a.bundle.clone().unwrap_or_else(|| PathBuf::from("."));
        let mut warnings = Vec::new();
        let (spec, mut opts) = paas_runtime::oci::load_bundle(&bundle, &a.id, &mut warnings)?;
        opts.console_socket = a.console_socket.clone();
        opts.preserve_fds = a.preserve_fds;
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
    let (stdout, stderr) = match (&a.output, foreground) {
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

/// SIGINT, SIGTERM and SIGHUP: what a foreground `run` forwards to the container.
fn forwarded_signals() -> SigSet {
    let mut set = SigSet::empty();
    for sig in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        set.add(sig);
    }
    set
}

/// Waits for the container's init (our child, so `pid` stays its own until we reap it)
/// to exit, forwarding the [`forwarded_signals`] (blocked by the caller before any thread
/// was made) to it; a second one sends SIGKILL. One `poll` on a pidfd and a signalfd, no
/// thread: a thread more per `run` is one more task waiting for a CPU on a busy host.
fn wait_forwarding(rt: &Runtime, id: &str, pid: i32) -> Result<paas_runtime::ExitStatus, Failure> {
    use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
    use nix::sys::signalfd::{SfdFlags, SignalFd};
    use std::os::fd::{AsFd, FromRawFd, OwnedFd};
    let sfd = SignalFd::with_flags(&forwarded_signals(), SfdFlags::SFD_CLOEXEC)
        .map_err(|e| Failure::new(format!("watching for signals: {e}"), 1))?;
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let raw = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) };
    if raw >= 0 {
        // SAFETY: the kernel just returned this descriptor to us; nothing else owns it.
        let pidfd = unsafe { OwnedFd::from_raw_fd(raw as i32) };
        let mut count = 0;
        loop {
            let mut fds = [
                PollFd::new(pidfd.as_fd(), PollFlags::POLLIN),
                PollFd::new(sfd.as_fd(), PollFlags::POLLIN),
            ];
            match poll(&mut fds, PollTimeout::NONE) {
                Ok(_) | Err(nix::errno::Errno::EINTR) => {}
                Err(e) => return Err(Failure::new(format!("waiting for the container: {e}"), 1)),
            }
            let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
            if ready(&fds[0]) {
                break;
            }
            if ready(&fds[1]) {
                if let Ok(Some(info)) = sfd.read_signal() {
                    count += 1;
                    let send = if count > 1 {
                        libc::SIGKILL
                    } else {
                        info.ssi_signo as i32
                    };
                    let _ = rt.kill(id, send);
                }
            }
        }
    }
    Ok(rt.wait(id)?)
}

/// Writes `--pid-file` (whole, then renamed into place, as runc: engines read it as soon
/// as the command returns).
pub fn write_pid_file(path: Option<&Path>, pid: i32) -> Result<(), Failure> {
    if let Some(path) = path {
        runc::atomic_write(path, &pid.to_string())
            .map_err(|e| Failure::new(format!("writing --pid-file {}: {e}", path.display()), 1))?;
    }
    Ok(())
}

/// The init's signal, worded as runc's when it already exited ("container not running":
/// containerd's shim takes that as "already gone").
pub fn kill_init(rt: &Runtime, id: &str, sig: i32) -> Result<(), Failure> {
    match rt.kill(id, sig) {
        Err(Error::Sys {
            source: nix::errno::Errno::ESRCH,
            ..
        }) => Err(Failure::new(
            format!("container {id:?}: container not running"),
            1,
        )),
        other => Ok(other?),
    }
}

fn run(rt: &Runtime, a: &ContainerArgs, root: &Path) -> Result<u8, Failure> {
    let (spec, mut opts) = container_of(a, root, true)?;
    let cant_start = |e: Error| Failure::from_error(e, 125);
    if !a.detach {
        // Before any thread exists, so every thread keeps them blocked for the signalfd
        // of `wait_forwarding`; the container's init unblocks all signals itself.
        forwarded_signals()
            .thread_block()
            .map_err(|e| Failure::new(format!("blocking signals: {e}"), 1))?;
    }
    if a.detach {
        let state = rt.run_with(&spec, &opts).map_err(cant_start)?;
        write_pid_file(a.pid_file.as_deref(), state.pid)?;
        return Ok(0);
    }
    // A terminal container in the foreground without a console socket: be the socket's
    // listener ourselves and relay the console to this terminal.
    let console = match (opts.terminal, &opts.console_socket) {
        (true, None) => {
            let path = root.join(format!("{}.console", spec.id));
            let _ = std::fs::remove_file(&path);
            let listener = std::os::unix::net::UnixListener::bind(&path)
                .map_err(|e| Failure::new(format!("listening on {}: {e}", path.display()), 125))?;
            opts.console_socket = Some(path.clone());
            Some((
                path,
                std::thread::spawn(move || console::relay_console(&listener)),
            ))
        }
        _ => None,
    };
    let started = rt.run_with(&spec, &opts);
    if let Some((path, _)) = &console {
        let _ = std::fs::remove_file(path);
    }
    let state = started.map_err(cant_start)?;
    write_pid_file(a.pid_file.as_deref(), state.pid)?;
    let exit = wait_forwarding(rt, &spec.id, state.pid)?;
    if let Some((_, relay)) = console {
        // The relay ends when the last holder of the pty's other end is gone.
        let _ = relay.join();
    }
    if !a.keep {
        rt.delete(&spec.id, true)?;
    }
    Ok(match (exit.code, exit.signal) {
        (Some(code), _) => code as u8,
        (None, Some(sig)) => 128u8.wrapping_add(sig as u8),
        (None, None) => 255,
    })
}

/// runc's global options that this runtime refuses, with what to do instead.
fn refuse_unsupported(cli: &Cli) -> Result<(), Failure> {
    let makes_cgroups = matches!(
        cli.command,
        Some(Command::Create(_) | Command::Run(_) | Command::Update(_))
    );
    if cli.systemd_cgroup && makes_cgroups {
        return Err(Failure::new(
            "--systemd-cgroup is not supported: paas-runtime writes the cgroup filesystem \
             itself, without systemd. Set the engine's cgroup manager to cgroupfs \
             (containerd: SystemdCgroup = false in the runc options; Podman: \
             --cgroup-manager cgroupfs)"
                .into(),
            1,
        ));
    }
    if cli.rootless.as_deref() == Some("true") && makes_cgroups {
        return Err(Failure::new(
            "--rootless true is not supported: paas-runtime runs containers as root \
             (use --rootless false or auto, as root)"
                .into(),
            1,
        ));
    }
    if let Some(v) = cli.rootless.as_deref() {
        if !matches!(v, "true" | "false" | "auto") {
            return Err(Failure::new(
                format!("--rootless {v:?}: expected true, false or auto"),
                2,
            ));
        }
    }
    Ok(())
}

fn main_result(cli: Cli, log: &log::Logger) -> Result<u8, Failure> {
    if cli.version {
        print!("{}", runc::version());
        return Ok(0);
    }
    refuse_unsupported(&cli)?;
    let Some(command) = &cli.command else {
        return Err(Failure::new(
            "no command given: see paas-runtime --help".into(),
            2,
        ));
    };
    log.debug(&format!("{command:?}"));
    let rt = Runtime::new(RuntimeConfig {
        state_dir: cli.root.clone(),
        cgroup_parent: cli.cgroup_parent.clone(),
        cgroup_root: cli.cgroup_root.clone(),
    })?;
    match command {
        Command::Run(a) => return run(&rt, a, &cli.root),
        Command::Create(a) => {
            let (spec, opts) = container_of(a, &cli.root, false)?;
            let state = rt.create_with(&spec, &opts)?;
            write_pid_file(a.pid_file.as_deref(), state.pid)?;
            if opts.oci_bundle.is_none() {
                println!("{}", state.pid);
            }
        }
        Command::Spec { bundle, rootless } => {
            if *rootless {
                return Err(Failure::new(
                    "spec --rootless is not supported: paas-runtime runs containers as root".into(),
                    1,
                ));
            }
            let dir = bundle.clone().unwrap_or_else(|| PathBuf::from("."));
            let path = dir.join("config.json");
            if path.exists() {
                return Err(Failure::new(
                    format!("{} already exists", path.display()),
                    1,
                ));
            }
            paas_runtime::oci::default_spec()?
                .save(&path)
                .map_err(|e| Failure::new(format!("writing {}: {e}", path.display()), 1))?;
        }
        Command::Start { id } => rt.start(id)?,
        Command::State { id } => {
            let state = rt.state(id)?;
            let json = paas_runtime::oci::state_json_for(&state, &rt.options(id)?);
            let json = serde_json::to_string_pretty(&json)
                .map_err(|e| Failure::new(format!("encoding the state: {e}"), 1))?;
            println!("{json}");
        }
        Command::List { format, quiet } => runc::list(&rt, *format, *quiet)?,
        Command::Kill { all, id, signal } => {
            let sig = runc::signal_of(signal.as_deref())?;
            match all {
                true => runc::kill_all(&rt, id, sig)?,
                false => kill_init(&rt, id, sig)?,
            }
        }
        Command::Delete { force, id } => match rt.delete(id, *force) {
            // runc: forcing the delete of a container that is gone is no error.
            Err(Error::NotFound(_)) if *force => {}
            other => other?,
        },
        Command::Exec(a) => return runc::exec(&rt, a),
        Command::Pause { id } => rt.pause(id)?,
        Command::Resume { id } => rt.resume(id)?,
        Command::Ps {
            format,
            id,
            ps_args,
        } => runc::ps(&rt, *format, id, ps_args)?,
        Command::Events {
            interval,
            stats,
            id,
        } => runc::events(&rt, interval, *stats, id)?,
        Command::Update(u) => {
            let resources = runc::update_resources(u)?;
            rt.update(&u.id, &resources)?;
        }
        Command::Features => {
            let json = serde_json::to_string_pretty(&runc::features())
                .map_err(|e| Failure::new(format!("encoding the features: {e}"), 1))?;
            println!("{json}");
        }
        Command::Stats { id } => {
            let stats = rt.stats(id)?;
            let json = serde_json::to_string_pretty(&stats)
                .map_err(|e| Failure::new(format!("encoding the stats: {e}"), 1))?;
            println!("{json}");
        }
    }
    Ok(0)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let log = log::Logger::new(cli.log_file.clone(), cli.log_format, cli.debug);
    match main_result(cli, &log) {
        Ok(code) => ExitCode::from(code),
        Err(Failure(msg, code)) => {
            log.error(&msg);
            ExitCode::from(code)
        }
    }
}
