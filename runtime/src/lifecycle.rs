//! The container lifecycle behind [`crate::Runtime`]: start, state, list, kill, wait,
//! delete (create is in [`crate::create`]). Nothing is kept in memory between calls: each call reads
//! `state_dir/<id>/state.json` and checks the process in `/proc`, so a fresh `Runtime`
//! value, another thread or another process (the debug CLI, a restarted agent) can pick
//! a container up at any point.

use std::fs;
use std::io;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::signal::{kill as send_signal, Signal};
use nix::sys::wait::{waitid, Id, WaitPidFlag, WaitStatus};
use nix::unistd::Pid;

use crate::cgroup::{self, CgroupManager};
use crate::init;
use crate::spec::validate_id;
use crate::state::{self, Layout, StateFile};
use crate::{
    ContainerOptions, ContainerSpec, ContainerState, Error, ExitStatus, Result, RuntimeConfig,
    Status,
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
pub(crate) fn cgroup_location(
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
pub(crate) fn check_cgroup_path(path: &str) -> Result<()> {
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
pub(crate) fn hook_state(sf: &StateFile, status: Status) -> Vec<u8> {
    let state = ContainerState {
        status,
        ..sf.state.clone()
    };
    serde_json::to_vec(&crate::oci::state_json_for(&state, &sf.options)).unwrap_or_default()
}

/// The container's mount namespace, for the hooks that run inside it.
pub(crate) fn open_mnt_ns(pid: i32) -> Result<OwnedFd> {
    let path = format!("/proc/{pid}/ns/mnt");
    let file = fs::File::open(&path).map_err(io_err(format!("opening {path}")))?;
    Ok(file.into())
}

/// Writes the init's uid_map and gid_map (before it is released).
pub(crate) fn write_id_maps(pid: i32, maps: &crate::IdMappings) -> Result<()> {
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

pub(crate) fn layers(cfg: &RuntimeConfig, id: &str) -> Result<Vec<std::path::PathBuf>> {
    let (_, sf) = load(cfg, id)?;
    Ok(sf.map(|s| s.spec.layers).unwrap_or_default())
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
pub(crate) fn host_bind<'a>(opts: &ContainerOptions, rootfs: &'a Path) -> Option<&'a Path> {
    (opts.bind_rootfs && opts.namespaces.mount == crate::Namespace::Host).then_some(rootfs)
}

/// Removes what `create` made, as far as it exists: processes left in the cgroup, the
/// rootfs mount (and `host_bind` with everything below it), the cgroup directories, the
/// state dir.
pub(crate) fn clean_up(
    layout: &Layout,
    cg: &dyn CgroupManager,
    host_bind: Option<&Path>,
) -> Result<()> {
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
    crate::idmap::detach_leftovers(&layout.lower)?;
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
