//! `create`: the state dir, the overlay, the cgroups, the clone of the init and the first
//! handshake with it (see [`crate::init`] and docs/runtime.md "The init, step by step").
//! On any error after the state dir exists, everything made so far is removed again.

use std::fs;
use std::io;
use std::os::fd::{AsFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use nix::fcntl::{open, OFlag};
use nix::sys::signal::{kill as send_signal, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitpid, WaitStatus};
use nix::unistd::{mkfifo, pipe2, Pid};

use crate::cgroup::{self, CgroupManager};
use crate::init::{self, above_stdio, ChildFds, Ready};
use crate::lifecycle::{
    cgroup_location, check_cgroup_path, clean_up, hook_state, host_bind, io_err, manager_for,
    open_mnt_ns, sys_err, write_id_maps,
};
use crate::spec::validate_spec;
use crate::state::{self, Layout, StateFile};
use crate::{
    plan, ContainerOptions, ContainerSpec, ContainerState, Error, Result, RuntimeConfig, Status,
};

/// Kills and reaps the cloned child if `create` fails after the clone.
struct ChildGuard {
    pid: i32,
    armed: bool,
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = send_signal(Pid::from_raw(self.pid), Signal::SIGKILL);
            let _ = waitpid(Pid::from_raw(self.pid), None);
        }
    }
}

/// Creates the container. With `start_now` (`run` without hooks) the init does not wait
/// for `start`: it execs as soon as it is set up, and this returns once the exec
/// succeeded (`Error::Start` with the reason if it failed), with the state `running`.
/// That saves `run` the two FIFOs (four file operations in the state dir) and two
/// hand-overs between the processes, each a wait for a CPU on a busy machine.
pub(crate) fn create(
    cfg: &RuntimeConfig,
    spec: &ContainerSpec,
    options: &ContainerOptions,
    start_now: bool,
) -> Result<ContainerState> {
    let start_now = start_now && options.hooks.is_empty();
    validate_spec(spec)?;
    if options.bind_rootfs && spec.layers.len() != 1 {
        return Err(Error::InvalidSpec(format!(
            "bind_rootfs needs exactly one layer (the rootfs dir), got {}",
            spec.layers.len()
        )));
    }
    if let Some(p) = &options.cgroup_path {
        check_cgroup_path(p)?;
    }
    if let Some(m) = &options.id_mappings {
        if m.host_id(0, false).is_none() || m.host_id(0, true).is_none() {
            return Err(Error::InvalidSpec(
                "user namespace: the uid and gid mappings must map container id 0".into(),
            ));
        }
    }
    let layout = Layout::new(&cfg.state_dir, &spec.id);
    match fs::create_dir(&layout.dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            return Err(Error::AlreadyExists(spec.id.clone()))
        }
        Err(e) => return Err(io_err(format!("creating {}", layout.dir.display()))(e)),
    }
    let cg = manager_for(cfg, &spec.id, Some((spec, options)));
    let mut sf = StateFile {
        state: ContainerState {
            id: spec.id.clone(),
            pid: 0,
            status: Status::Creating,
            rootfs: match options.bind_rootfs {
                true => spec.layers[0].clone(),
                false => layout.rootfs.clone(),
            },
            upper_dir: match options.bind_rootfs {
                true => spec.layers[0].clone(),
                false => layout.upper.clone(),
            },
            created: state::now_rfc3339(),
        },
        pid_start_time: 0,
        cgroup_version: cg.version(),
        cgroups: cg.paths(),
        exit: None,
        spec: spec.clone(),
        options: options.clone(),
    };
    let made = state::write(&layout, &sf)
        .and_then(|()| set_up(cfg, spec, &layout, &*cg, &mut sf, start_now));
    match made {
        Ok(()) => Ok(sf.state),
        Err(e) => {
            let _ = clean_up(&layout, &*cg, host_bind(options, &sf.state.rootfs));
            Err(e)
        }
    }
}

/// Everything of `create` after the state dir exists; `clean_up` undoes it on error.
fn set_up(
    cfg: &RuntimeConfig,
    spec: &ContainerSpec,
    layout: &Layout,
    cg: &dyn CgroupManager,
    sf: &mut StateFile,
    start_now: bool,
) -> Result<()> {
    let opts = &sf.options;
    if !opts.bind_rootfs {
        for dir in [&layout.upper, &layout.work, &layout.rootfs] {
            fs::create_dir(dir).map_err(io_err(format!("creating {}", dir.display())))?;
        }
        if let Some(maps) = &opts.id_mappings {
            // The merged root takes its owner from the upper dir: make it the
            // container's root, so root in the container owns its `/`.
            let (uid, gid) = (maps.host_id(0, false), maps.host_id(0, true));
            nix::unistd::chown(
                &layout.upper,
                uid.map(nix::unistd::Uid::from_raw),
                gid.map(nix::unistd::Gid::from_raw),
            )
            .map_err(sys_err(format!("chown {}", layout.upper.display())))?;
        }
        match &opts.id_mappings {
            Some(maps) if opts.idmap_layers => {
                let userns = crate::idmap::user_namespace(maps)?;
                let lower = crate::idmap::mount_layers(&spec.layers, &userns, &layout.lower)?;
                crate::fs::mount_overlay(
                    &lower.paths,
                    &layout.upper,
                    &layout.work,
                    &layout.rootfs,
                )?;
                // `lower` detaches the idmapped layers here: the overlay holds its own.
            }
            _ => {
                crate::fs::mount_overlay(&spec.layers, &layout.upper, &layout.work, &layout.rootfs)?
            }
        }
    }
    let with_devices = !opts.device_rules.is_empty() || !opts.devices.is_empty();
    let limits = cgroup::Limits::of(spec, opts);
    let minimal;
    let cg: Option<&dyn CgroupManager> = if opts.minimal_cgroups {
        let (parent, leaf) = cgroup_location(cfg, &spec.id, Some(opts));
        minimal =
            cgroup::manager_for_limits(&cfg.cgroup_root, &parent, &leaf, &limits, with_devices);
        minimal.as_deref()
    } else {
        Some(cg)
    };
    if let Some(cg) = cg {
        cg.create()?;
        cg.apply(&limits)?;
        if with_devices {
            let (default_allow, rules) =
                crate::devices::effective(&opts.device_rules, &opts.devices)?;
            cg.set_devices(default_allow, &rules)?;
        }
    }
    let plan = plan::build(spec, opts, &sf.state.rootfs)?;
    let (mut child_fds, sync_write, ready_read) = open_fds(spec, &sf.options, layout, start_now)?;
    // The child joins its cgroups itself (see `init`'s module doc), unless hooks must
    // see it there before it goes on: then the parent moves it, as runc does.
    let hooks = &opts.hooks;
    let hooks_first = !hooks.prestart.is_empty() || !hooks.create_runtime.is_empty();
    let (tasks, into_dir) = match (cg, hooks_first) {
        (Some(cg), false) => join_fds(cg)?,
        _ => (Vec::new(), None),
    };
    child_fds.cgroup_tasks = tasks;

    let (pid, born_in_cgroup) =
        init::spawn(&plan, &child_fds, into_dir.as_ref().map(|f| f.as_fd()))?;
    drop(child_fds);
    let parent_moves = hooks_first || (into_dir.is_some() && !born_in_cgroup);
    drop(into_dir);
    let mut guard = ChildGuard { pid, armed: true };
    // Nothing left for the child to wait for: let it mount and pivot while we write the
    // state (an error below then prefers the child's own report: see `ready` below).
    let mut sync_write = Some(sync_write);
    if !parent_moves && opts.id_mappings.is_none() {
        release(&mut sync_write)?;
    }
    let steps = (|| -> Result<()> {
        if let (Some(cg), true) = (cg, parent_moves) {
            cg.add_process(pid)?;
        }
        if let Some(adj) = sf.options.oom_score_adj {
            let path = format!("/proc/{pid}/oom_score_adj");
            fs::write(&path, adj.to_string()).map_err(io_err(format!("writing {path}")))?;
        }
        let start_time = state::proc_stat(pid).map(|s| s.start_time).ok_or_else(|| {
            Error::Start(format!(
                "the container init (pid {pid}) vanished right after clone"
            ))
        })?;
        if let Some(maps) = &sf.options.id_mappings {
            write_id_maps(pid, maps)?;
        }
        sf.state.pid = pid;
        sf.pid_start_time = start_time;
        // Saved with `created` below, unless a hook (which may run `state`) comes first,
        // or the process has no cgroup through which a crash here could be cleaned up
        // (`delete` kills whatever is in the container's cgroups).
        if hooks_first || !sf.options.hooks.create_container.is_empty() || cg.is_none() {
            state::write(layout, sf)?;
        }
        if hooks_first {
            // The deprecated prestart hooks get `created` (what runtime-tools checks and
            // runc 1.0 passed), createRuntime the spec's `creating`.
            let hooks = &sf.options.hooks;
            let json = hook_state(sf, Status::Created);
            crate::hooks::run("prestart", &hooks.prestart, &json, None)?;
            let json = hook_state(sf, Status::Creating);
            crate::hooks::run("createRuntime", &hooks.create_runtime, &json, None)?;
        }
        release(&mut sync_write)
    })();
    let ready = match steps {
        Ok(()) => init::wait_ready(&ready_read, start_now),
        // Released early, the child may have failed first: its reason is the real one.
        Err(e) => match sync_write {
            Some(_) => return Err(e),
            None => match init::wait_ready(&ready_read, start_now) {
                Ready::Ok => return Err(e),
                other => other,
            },
        },
    };
    match ready {
        Ready::Ok => {}
        Ready::Failed(msg) => {
            return Err(Error::Start(format!("setting up the container: {msg}")));
        }
        // As `start` words it; the guard reaps the init (exit 127) and `create` removes
        // the container, as `run` does after a failed `start`.
        Ready::ExecFailed(msg) => return Err(Error::Start(msg)),
        Ready::Died => {
            guard.armed = false;
            let how = match waitpid(Pid::from_raw(pid), None) {
                Ok(WaitStatus::Exited(_, code)) => format!("exited with status {code}"),
                Ok(WaitStatus::Signaled(_, sig, _)) => format!("was killed by {sig}"),
                _ => "vanished".to_owned(),
            };
            return Err(Error::Start(format!(
                "the container init {how} while setting up the container"
            )));
        }
    }
    if !sf.options.hooks.create_container.is_empty() {
        let ns = open_mnt_ns(pid)?;
        let json = hook_state(sf, Status::Creating);
        crate::hooks::run(
            "createContainer",
            &sf.options.hooks.create_container,
            &json,
            Some(&ns),
        )?;
    }
    sf.state.status = match start_now {
        true => Status::Running,
        false => Status::Created,
    };
    state::write(layout, sf)?;
    guard.armed = false;
    Ok(())
}

/// Writes the one byte that lets the container init go on (once; later calls do nothing).
fn release(sync_write: &mut Option<OwnedFd>) -> Result<()> {
    if let Some(fd) = sync_write.take() {
        nix::unistd::write(&fd, &[1u8]).map_err(sys_err("releasing the container init"))?;
    }
    Ok(())
}

/// What a new process needs to join `cg` without the parent's help (see `init`'s module
/// doc): the v1 `tasks` files it writes `0` to (with their paths, for errors) and the
/// cgroup2 directory to clone it into.
pub(crate) type JoinFds = (Vec<(OwnedFd, std::ffi::CString)>, Option<OwnedFd>);

/// Opens [`JoinFds`] for `cg` (close-on-exec, above stdio).
pub(crate) fn join_fds(cg: &dyn CgroupManager) -> Result<JoinFds> {
    let open_cg = |path: &Path, flags: OFlag| -> Result<OwnedFd> {
        let fd = nix::fcntl::open(path, flags | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(sys_err(format!("opening the cgroup {}", path.display())))?;
        above_stdio(fd)
    };
    let mut tasks = Vec::new();
    for path in cg.self_join_files() {
        let fd = open_cg(&path, OFlag::O_WRONLY)?;
        let c = std::ffi::CString::new(std::os::unix::ffi::OsStrExt::as_bytes(path.as_os_str()))
            .map_err(|_| Error::InvalidSpec(format!("cgroup path {} has a NUL", path.display())))?;
        tasks.push((fd, c));
    }
    let into = match cg.clone_into_dir() {
        Some(dir) => Some(open_cg(&dir, OFlag::O_PATH | OFlag::O_DIRECTORY)?),
        None => None,
    };
    Ok((tasks, into))
}

/// The `tasks` descriptors of [`JoinFds`] as the child reads them: raw numbers and paths
/// (for its error messages), borrowed from `tasks`.
pub(crate) fn raw_tasks(
    tasks: &[(OwnedFd, std::ffi::CString)],
) -> Vec<(std::os::fd::RawFd, &std::ffi::CStr)> {
    tasks
        .iter()
        .map(|(fd, path)| (std::os::fd::AsRawFd::as_raw_fd(fd), path.as_c_str()))
        .collect()
}

/// Opens the child's descriptors; returns them with the parent's ends of the pipes
/// (sync write end, ready read end).
fn open_fds(
    spec: &ContainerSpec,
    opts: &ContainerOptions,
    layout: &Layout,
    start_now: bool,
) -> Result<(ChildFds, OwnedFd, OwnedFd)> {
    let inherit = |fd: i32| -> Result<OwnedFd> {
        let raw = nix::fcntl::fcntl(
            // SAFETY: 0..2 are open for the life of this call (checked by fcntl).
            unsafe { std::os::fd::BorrowedFd::borrow_raw(fd) },
            nix::fcntl::FcntlArg::F_DUPFD_CLOEXEC(3),
        )
        .map_err(sys_err(format!(
            "duplicating our descriptor {fd} for the container"
        )))?;
        // SAFETY: a new descriptor from F_DUPFD_CLOEXEC, owned by nobody else.
        Ok(unsafe { OwnedFd::from_raw_fd(raw) })
    };
    let log = |path: &Path| -> Result<OwnedFd> {
        let file = fs::OpenOptions::new()
            .append(true)
            .create(true)
            .mode(0o644)
            .open(path)
            .map_err(io_err(format!("opening the log file {}", path.display())))?;
        above_stdio(file.into())
    };
    let (stdin, stdout) = match opts.inherit_stdio {
        true => (Some(inherit(0)?), inherit(1)?),
        false => (None, log(&spec.stdout)?),
    };
    let stderr = if opts.inherit_stdio {
        inherit(2)?
    } else if spec.stderr == spec.stdout {
        above_stdio(
            stdout
                .try_clone()
                .map_err(io_err("duplicating the log file"))?,
        )?
    } else {
        log(&spec.stderr)?
    };
    let joins = crate::ns::open_all(spec, opts)?;
    let console = match (opts.terminal, &opts.console_socket) {
        (true, Some(path)) => {
            let sock = std::os::unix::net::UnixStream::connect(path).map_err(io_err(format!(
                "connecting to the console socket {}",
                path.display()
            )))?;
            Some(above_stdio(sock.into())?)
        }
        (true, None) => {
            return Err(Error::InvalidSpec(
                "process.terminal is true, so the container's console needs a socket to go \
                 to: pass --console-socket PATH (a unix socket you listen on), or set \
                 \"terminal\": false"
                    .into(),
            ))
        }
        (false, Some(path)) => {
            return Err(Error::InvalidSpec(format!(
                "--console-socket {} was given, but process.terminal is false: set \
                 \"terminal\": true or leave the socket out",
                path.display()
            )))
        }
        (false, None) => None,
    };
    let (sync_read, sync_write) = pipe2(OFlag::O_CLOEXEC).map_err(sys_err("making a pipe"))?;
    let (ready_read, ready_write) = pipe2(OFlag::O_CLOEXEC).map_err(sys_err("making a pipe"))?;
    let fifo = |path: &Path| -> Result<OwnedFd> {
        mkfifo(path, Mode::from_bits_truncate(0o600))
            .map_err(sys_err(format!("making the FIFO {}", path.display())))?;
        let fd = open(path, OFlag::O_RDWR | OFlag::O_CLOEXEC, Mode::empty())
            .map_err(sys_err(format!("opening the FIFO {}", path.display())))?;
        above_stdio(fd)
    };
    let fds = ChildFds {
        sync_read: above_stdio(sync_read)?,
        ready_write: above_stdio(ready_write)?,
        exec_fifo: (!start_now).then(|| fifo(&layout.exec_fifo)).transpose()?,
        exec_result: (!start_now)
            .then(|| fifo(&layout.exec_result))
            .transpose()?,
        stdin,
        stdout,
        stderr,
        joins,
        cgroup_tasks: Vec::new(),
        console,
    };
    Ok((fds, sync_write, ready_read))
}
