//! The container lifecycle behind [`crate::Runtime`]: create, start, state, list, kill,
//! wait, delete. Nothing is kept in memory between calls: each call reads
//! `state_dir/<id>/state.json` and checks the process in `/proc`, so a fresh `Runtime`
//! value, another thread or another process (the debug CLI, a restarted agent) can pick
//! a container up at any point.

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill as send_signal, Signal};
use nix::sys::stat::Mode;
use nix::sys::wait::{waitid, waitpid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::{mkfifo, pipe2, Pid};

use crate::cgroup::{self, CgroupManager};
use crate::init::{self, above_stdio, ChildFds, Ready};
use crate::spec::{validate_id, validate_spec};
use crate::state::{self, Layout, StateFile};
use crate::{
    plan, ContainerOptions, ContainerSpec, ContainerState, Error, ExitStatus, Result,
    RuntimeConfig, Status,
};

/// How long `delete` keeps killing stragglers and retrying a busy cgroup rmdir.
const CLEANUP_PATIENCE: Duration = Duration::from_secs(10);

pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

pub(crate) fn sys_err(what: impl Into<String>) -> impl FnOnce(Errno) -> Error {
    let what = what.into();
    move |source| Error::Sys { what, source }
}

pub(crate) fn init_state_dir(cfg: &RuntimeConfig) -> Result<()> {
    fs::create_dir_all(&cfg.state_dir).map_err(io_err(format!(
        "creating the runtime state dir {}",
        cfg.state_dir.display()
    )))
}

/// The cgroup manager of container `id`, wherever its options put its cgroup.
pub(crate) fn manager(cfg: &RuntimeConfig, id: &str) -> Box<dyn CgroupManager> {
    let sf = load(cfg, id).ok().and_then(|(_, sf)| sf);
    manager_for(cfg, id, sf.as_ref().map(|sf| (&sf.spec, &sf.options)))
}

/// The cgroup manager for `id` made from `made` (spec and options): the hierarchies its
/// limits need (see [`cgroup::manager_with`]); without them, every hierarchy there is.
pub(crate) fn manager_for(
    cfg: &RuntimeConfig,
    id: &str,
    made: Option<(&ContainerSpec, &ContainerOptions)>,
) -> Box<dyn CgroupManager> {
    let (parent, leaf) = cgroup_location(cfg, id, made.map(|(_, o)| o));
    match made {
        Some((spec, opts)) => {
            let limits = cgroup::Limits::of(spec, opts);
            cgroup::manager_with(&cfg.cgroup_root, &parent, &leaf, &limits)
        }
        None => cgroup::manager(&cfg.cgroup_root, &parent, &leaf),
    }
}

/// (parent, leaf) of the container's cgroup under each hierarchy's root:
/// `options.cgroup_path` split at its last `/`, else (`cgroup_parent`, id).
fn cgroup_location(
    cfg: &RuntimeConfig,
    id: &str,
    opts: Option<&ContainerOptions>,
) -> (String, String) {
    match opts.and_then(|o| o.cgroup_path.as_deref()) {
        Some(p) => {
            // Absolute: from the hierarchy's root; relative: under the cgroup parent.
            let p = match p.strip_prefix('/') {
                Some(abs) => abs.trim_matches('/').to_owned(),
                None => format!("{}/{}", cfg.cgroup_parent, p.trim_matches('/')),
            };
            match p.rsplit_once('/') {
                Some((parent, leaf)) => (parent.to_owned(), leaf.to_owned()),
                None => (String::new(), p.to_owned()),
            }
        }
        None => (cfg.cgroup_parent.clone(), id.to_owned()),
    }
}

/// Refuses a `cgroup_path` that is empty or climbs with `..`.
fn check_cgroup_path(path: &str) -> Result<()> {
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    if parts.is_empty() || parts.iter().any(|c| *c == ".." || *c == ".") {
        return Err(Error::InvalidSpec(format!(
            "cgroup path {path:?}: expected a path like \"group/container\" without \".\" \
             or \"..\""
        )));
    }
    Ok(())
}

/// The OCI state JSON hooks get on stdin.
fn hook_state(sf: &StateFile, status: Status) -> Vec<u8> {
    let state = ContainerState {
        status,
        ..sf.state.clone()
    };
    serde_json::to_vec(&crate::oci::state_json_for(&state, &sf.options)).unwrap_or_default()
}

/// The container's mount namespace, for the hooks that run inside it.
fn open_mnt_ns(pid: i32) -> Result<OwnedFd> {
    let path = format!("/proc/{pid}/ns/mnt");
    let file = fs::File::open(&path).map_err(io_err(format!("opening {path}")))?;
    Ok(file.into())
}

/// Writes the init's uid_map and gid_map (before it is released).
fn write_id_maps(pid: i32, maps: &crate::IdMappings) -> Result<()> {
    for (file, list) in [("uid_map", &maps.uids), ("gid_map", &maps.gids)] {
        let text: String = list
            .iter()
            .map(|m| format!("{} {} {}\n", m.container_id, m.host_id, m.size))
            .collect();
        let path = format!("/proc/{pid}/{file}");
        fs::write(&path, &text).map_err(io_err(format!("writing {text:?} to {path}")))?;
    }
    Ok(())
}

/// A container's state file, or `None` for a half-made container (dir without state).
pub(crate) fn load(cfg: &RuntimeConfig, id: &str) -> Result<(Layout, Option<StateFile>)> {
    validate_id(id).map_err(|_| Error::NotFound(id.to_owned()))?;
    let layout = Layout::new(&cfg.state_dir, id);
    if !layout.dir.is_dir() {
        return Err(Error::NotFound(id.to_owned()));
    }
    let sf = state::read(&layout)?;
    Ok((layout, sf))
}

/// The status, checked against the live process.
pub(crate) fn live_status(layout: &Layout, sf: &StateFile) -> Status {
    let pid = sf.state.pid;
    if sf.exit.is_some() || sf.state.status == Status::Stopped {
        return Status::Stopped;
    }
    if pid == 0 {
        return sf.state.status;
    }
    if !state::is_alive(pid, sf.pid_start_time) {
        return Status::Stopped;
    }
    match sf.state.status {
        Status::Created if !layout.exec_fifo.exists() => Status::Running,
        s => s,
    }
}

fn partial_state(layout: &Layout, id: &str) -> ContainerState {
    let created = fs::metadata(&layout.dir)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| state::format_rfc3339(d.as_secs()))
        .unwrap_or_default();
    ContainerState {
        id: id.to_owned(),
        pid: 0,
        status: Status::Creating,
        rootfs: layout.rootfs.clone(),
        upper_dir: layout.upper.clone(),
        created,
    }
}

pub(crate) fn state(cfg: &RuntimeConfig, id: &str) -> Result<ContainerState> {
    let (layout, sf) = load(cfg, id)?;
    Ok(match sf {
        Some(sf) => ContainerState {
            status: live_status(&layout, &sf),
            ..sf.state
        },
        None => partial_state(&layout, id),
    })
}

pub(crate) fn spec_and_options(
    cfg: &RuntimeConfig,
    id: &str,
) -> Result<(ContainerSpec, ContainerOptions)> {
    let (_, sf) = load(cfg, id)?;
    let sf = sf.ok_or_else(|| Error::NotFound(id.to_owned()))?;
    Ok((sf.spec, sf.options))
}

pub(crate) fn options(cfg: &RuntimeConfig, id: &str) -> Result<ContainerOptions> {
    let (_, sf) = load(cfg, id)?;
    Ok(sf.map(|s| s.options).unwrap_or_default())
}

pub(crate) fn list(cfg: &RuntimeConfig) -> Result<Vec<ContainerState>> {
    let entries = fs::read_dir(&cfg.state_dir).map_err(io_err(format!(
        "listing the state dir {}",
        cfg.state_dir.display()
    )))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry = entry.map_err(io_err(format!("listing {}", cfg.state_dir.display())))?;
        let Some(name) = entry.file_name().to_str().map(str::to_owned) else {
            continue;
        };
        if validate_id(&name).is_err() || !entry.path().is_dir() {
            continue;
        }
        match state(cfg, &name) {
            Ok(s) => out.push(s),
            Err(Error::NotFound(_)) => {} // deleted meanwhile
            Err(e) => return Err(e),
        }
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

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

pub(crate) fn create(
    cfg: &RuntimeConfig,
    spec: &ContainerSpec,
    options: &ContainerOptions,
) -> Result<ContainerState> {
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
    let made = state::write(&layout, &sf).and_then(|()| set_up(cfg, spec, &layout, &*cg, &mut sf));
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
        crate::fs::mount_overlay(&spec.layers, &layout.upper, &layout.work, &layout.rootfs)?;
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
    let (mut child_fds, sync_write, ready_read) = open_fds(spec, &sf.options, layout)?;
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
    drop(into_dir);
    let mut guard = ChildGuard { pid, armed: true };
    let parent_moves =
        hooks_first || (cg.and_then(|c| c.clone_into_dir()).is_some() && !born_in_cgroup);
    // Nothing left for the child to wait for: let it mount and pivot while we write the
    // state (an error below then prefers the child's own report, see `child_error`).
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
        Ok(()) => init::wait_ready(&ready_read),
        // Released early, the child may have failed first: its reason is the real one.
        Err(e) => match sync_write {
            Some(_) => return Err(e),
            None => match init::wait_ready(&ready_read) {
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
    sf.state.status = Status::Created;
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

/// Opens the child's descriptors; returns them with the parent's ends of the pipes
/// (sync write end, ready read end).
fn open_fds(
    spec: &ContainerSpec,
    opts: &ContainerOptions,
    layout: &Layout,
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
        exec_fifo: fifo(&layout.exec_fifo)?,
        exec_result: fifo(&layout.exec_result)?,
        stdin,
        stdout,
        stderr,
        joins,
        cgroup_tasks: Vec::new(),
    };
    Ok((fds, sync_write, ready_read))
}

pub(crate) fn start(cfg: &RuntimeConfig, id: &str) -> Result<()> {
    let (layout, sf) = load(cfg, id)?;
    let Some(sf) = sf else {
        return Err(Error::Start(format!(
            "container {id:?} is still being created"
        )));
    };
    let status = live_status(&layout, &sf);
    if status != Status::Created {
        return Err(Error::Start(format!(
            "container {id:?} is {status}; only a created container can be started"
        )));
    }
    let (pid, start_time) = (sf.state.pid, sf.pid_start_time);
    let hooks = &sf.options.hooks;
    if !hooks.start_container.is_empty() {
        let ran = open_mnt_ns(pid).and_then(|ns| {
            let json = hook_state(&sf, Status::Created);
            crate::hooks::run("startContainer", &hooks.start_container, &json, Some(&ns))
                .map_err(Error::from)
        });
        if let Err(e) = ran {
            let _ = kill(cfg, id, libc::SIGKILL);
            let _ = wait(cfg, id);
            return Err(e);
        }
    }
    let released = init::release(&layout.exec_fifo, &layout.exec_result, || {
        state::is_alive(pid, start_time)
    });
    let _ = fs::remove_file(&layout.exec_fifo);
    let _ = fs::remove_file(&layout.exec_result);
    match released {
        // state.json keeps `created`: `live_status` reads a live init without its
        // exec.fifo as running, which saves a write (and ext4's flush on replacing it).
        Ok(()) => {
            if !hooks.poststart.is_empty() {
                let json = hook_state(&sf, Status::Running);
                crate::hooks::run_warn("poststart", &hooks.poststart, &json);
            }
            Ok(())
        }
        Err(e) => {
            // The init exits right after reporting; record how (and reap it if ours).
            let _ = wait(cfg, id);
            Err(e)
        }
    }
}

fn pidfd_open(pid: i32) -> nix::Result<OwnedFd> {
    // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
    let ret = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0u32) };
    Errno::result(ret)?;
    // SAFETY: the kernel just returned this descriptor to us.
    Ok(unsafe { OwnedFd::from_raw_fd(ret as i32) })
}

pub(crate) fn pidfd_send_signal(fd: &OwnedFd, signal: i32) -> nix::Result<()> {
    // SAFETY: a pidfd, a signal number, no siginfo, no flags.
    let ret = unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            fd.as_raw_fd(),
            signal,
            std::ptr::null::<libc::siginfo_t>(),
            0u32,
        )
    };
    Errno::result(ret).map(drop)
}

/// A pidfd for the container's init if it still exists (zombie included), checked
/// against the saved start time so a recycled pid is never taken for ours.
pub(crate) fn open_init(sf: &StateFile) -> Option<OwnedFd> {
    let pid = sf.state.pid;
    if pid == 0 {
        return None;
    }
    let fd = pidfd_open(pid).ok()?;
    state::exists(pid, sf.pid_start_time).then_some(fd)
}

pub(crate) fn kill(cfg: &RuntimeConfig, id: &str, signal: i32) -> Result<()> {
    Signal::try_from(signal)
        .map_err(|_| Error::InvalidSpec(format!("{signal} is not a signal")))?;
    let (_, sf) = load(cfg, id)?;
    let not_running = || Error::Sys {
        what: format!("container {id:?} is not running, nothing to signal"),
        source: Errno::ESRCH,
    };
    let sf = sf.ok_or_else(not_running)?;
    let fd = open_init(&sf).ok_or_else(not_running)?;
    if !state::is_alive(sf.state.pid, sf.pid_start_time) {
        return Err(not_running());
    }
    pidfd_send_signal(&fd, signal).map_err(|e| match e {
        Errno::ESRCH => not_running(),
        e => Error::Sys {
            what: format!("sending signal {signal} to container {id:?}"),
            source: e,
        },
    })
}

/// Blocks until a pidfd is readable (its process exited).
fn wait_exit(fd: &OwnedFd) -> Result<()> {
    loop {
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::NONE) {
            Ok(_) => return Ok(()),
            Err(Errno::EINTR) => continue,
            Err(e) => return Err(sys_err("waiting for the container process")(e)),
        }
    }
}

pub(crate) fn wait(cfg: &RuntimeConfig, id: &str) -> Result<ExitStatus> {
    let (layout, sf) = load(cfg, id)?;
    let unknown = ExitStatus {
        code: None,
        signal: None,
        oom_killed: false,
    };
    let Some(sf) = sf else {
        return Ok(unknown);
    };
    let mut known = None;
    let mut reap = None;
    match open_init(&sf) {
        Some(fd) => {
            let me = nix::unistd::getpid().as_raw();
            let parent = state::proc_stat(sf.state.pid).is_some_and(|s| s.ppid == me);
            if !parent {
                if let Some(exit) = sf.exit {
                    return Ok(exit);
                }
            }
            wait_exit(&fd)?;
            if parent {
                let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOWAIT;
                known = match waitid(Id::PIDFd(fd.as_fd()), flags) {
                    Ok(WaitStatus::Exited(_, code)) => Some((Some(code), None)),
                    Ok(WaitStatus::Signaled(_, sig, _)) => Some((None, Some(sig as i32))),
                    _ => None,
                };
                reap = Some(fd);
            }
        }
        None => {
            if let Some(exit) = sf.exit {
                return Ok(exit);
            }
        }
    }
    let oom_killed = manager(cfg, id).oom_kills().unwrap_or(0) > 0;
    let exit = match known {
        Some((code, signal)) => ExitStatus {
            code,
            signal,
            oom_killed,
        },
        None => ExitStatus {
            oom_killed,
            ..unknown
        },
    };
    let recorded = state::update(&layout, id, |s| {
        let better = s
            .exit
            .is_none_or(|e| e.code.is_none() && e.signal.is_none() && known.is_some());
        if better {
            s.exit = Some(exit);
        }
        s.state.status = Status::Stopped;
    });
    if let Some(fd) = reap {
        let _ = waitid(Id::PIDFd(fd.as_fd()), WaitPidFlag::WEXITED);
    }
    match recorded {
        Ok(s) => Ok(s.exit.unwrap_or(exit)),
        // Deleted meanwhile (delete waits too): what we saw is the answer.
        Err(Error::NotFound(_)) => Ok(exit),
        Err(e) => Err(e),
    }
}

pub(crate) fn delete(cfg: &RuntimeConfig, id: &str, force: bool) -> Result<()> {
    let (layout, sf) = load(cfg, id)?;
    if let Some(sf) = &sf {
        if let Some(fd) = open_init(sf) {
            if state::is_alive(sf.state.pid, sf.pid_start_time) {
                if !force {
                    return Err(Error::Sys {
                        what: format!(
                            "container {id:?} is {}: stop it first or delete it with force",
                            live_status(&layout, sf)
                        ),
                        source: Errno::EBUSY,
                    });
                }
                match pidfd_send_signal(&fd, libc::SIGKILL) {
                    Ok(()) | Err(Errno::ESRCH) => {}
                    Err(e) => return Err(sys_err(format!("killing container {id:?}"))(e)),
                }
                // A frozen (v1) process only dies once thawed.
                if sf.state.status == Status::Paused {
                    let _ = manager(cfg, id).freeze(false);
                }
            }
            // Waits until it is gone, and reaps it if it is our child.
            wait(cfg, id)?;
        }
    }
    clean_up(
        &layout,
        &*manager_for(cfg, id, sf.as_ref().map(|s| (&s.spec, &s.options))),
        sf.as_ref()
            .and_then(|s| host_bind(&s.options, &s.state.rootfs)),
    )?;
    if let Some(sf) = sf.filter(|s| !s.options.hooks.poststop.is_empty()) {
        let json = hook_state(&sf, Status::Stopped);
        crate::hooks::run_warn("poststop", &sf.options.hooks.poststop, &json);
    }
    Ok(())
}

/// The rootfs bound onto itself in the host's mount namespace, when the container has
/// none of its own (its mounts are below it there).
fn host_bind<'a>(opts: &ContainerOptions, rootfs: &'a Path) -> Option<&'a Path> {
    (opts.bind_rootfs && opts.namespaces.mount == crate::Namespace::Host).then_some(rootfs)
}

/// Removes what `create` made, as far as it exists: processes left in the cgroup, the
/// rootfs mount (and `host_bind` with everything below it), the cgroup directories, the
/// state dir.
fn clean_up(layout: &Layout, cg: &dyn CgroupManager, host_bind: Option<&Path>) -> Result<()> {
    let deadline = Instant::now() + CLEANUP_PATIENCE;
    loop {
        let procs = cg.procs()?;
        if procs.is_empty() {
            break;
        }
        if Instant::now() > deadline {
            return Err(Error::Sys {
                what: format!("processes {procs:?} are still in the container's cgroup"),
                source: Errno::EBUSY,
            });
        }
        for pid in procs {
            let _ = send_signal(Pid::from_raw(pid), Signal::SIGKILL);
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    crate::fs::unmount_all(&layout.rootfs)?;
    if let Some(root) = host_bind {
        match nix::mount::umount2(root, nix::mount::MntFlags::MNT_DETACH) {
            Ok(()) | Err(Errno::EINVAL) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(sys_err(format!("detaching {}", root.display()))(e)),
        }
    }
    loop {
        match cg.remove() {
            Ok(()) => break,
            Err(e) => {
                let busy = e.io_source().and_then(io::Error::raw_os_error) == Some(libc::EBUSY);
                if !busy || Instant::now() > deadline {
                    return Err(e.into());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
    match fs::remove_dir_all(&layout.dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(format!("removing {}", layout.dir.display()))(e)),
    }
}
