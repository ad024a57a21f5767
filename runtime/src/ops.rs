//! Operations on a running container beyond the basic lifecycle: stop with a grace
//! period, pause/resume (the cgroup freezer), stats, named volumes, and the path of a
//! container's network namespace (for `container:<id>` network mode).

use std::fs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};

use crate::lifecycle::{self, io_err, live_status, load, manager, open_init, pidfd_send_signal};
use crate::state;
use crate::{Error, ExitStatus, Result, RuntimeConfig, Stats, Status};

/// Waits up to `timeout` for a pidfd to become readable (its process exited).
fn exited_within(fd: &OwnedFd, timeout: Duration) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let ms = u16::try_from(left.as_millis()).unwrap_or(u16::MAX);
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(n) if n > 0 => return Ok(true),
            Ok(_) if left.is_zero() => return Ok(false),
            Ok(_) | Err(Errno::EINTR) => {}
            Err(e) => return Err(lifecycle::sys_err("waiting for the container process")(e)),
        }
    }
}

/// SIGTERM, up to `grace` for the process to exit, then SIGKILL; returns how it ended.
/// A paused container is thawed so it can handle the signal. A stopped one just returns
/// its recorded exit.
pub(crate) fn stop(cfg: &RuntimeConfig, id: &str, grace: Duration) -> Result<ExitStatus> {
    let (_, sf) = load(cfg, id)?;
    if let Some(fd) = sf.as_ref().and_then(open_init) {
        let sf = sf.as_ref().expect("open_init needs a state file");
        if state::is_alive(sf.state.pid, sf.pid_start_time) {
            let cg = manager(cfg, id);
            let _ = pidfd_send_signal(&fd, libc::SIGTERM);
            if cg.is_frozen() {
                cg.freeze(false)?;
                set_status(cfg, id, Status::Running)?;
            }
            if !exited_within(&fd, grace)? {
                match pidfd_send_signal(&fd, libc::SIGKILL) {
                    Ok(()) | Err(Errno::ESRCH) => {}
                    Err(e) => {
                        return Err(lifecycle::sys_err(format!("killing container {id:?}"))(e))
                    }
                }
            }
        }
    }
    lifecycle::wait(cfg, id)
}

fn set_status(cfg: &RuntimeConfig, id: &str, status: Status) -> Result<()> {
    let layout = state::Layout::new(&cfg.state_dir, id);
    state::update(&layout, id, |s| s.state.status = status).map(drop)
}

/// Freezes (`true`) or thaws every process of a running container.
pub(crate) fn set_paused(cfg: &RuntimeConfig, id: &str, paused: bool) -> Result<()> {
    let (layout, sf) = load(cfg, id)?;
    let sf = sf.ok_or_else(|| Error::NotFound(id.to_owned()))?;
    let status = live_status(&layout, &sf);
    let ok = match paused {
        true => status == Status::Running,
        false => status == Status::Paused,
    };
    if !ok {
        let (verb, need) = if paused {
            ("pause", "running")
        } else {
            ("resume", "paused")
        };
        return Err(Error::Sys {
            what: format!("cannot {verb} container {id:?}: it is {status}, not {need}"),
            source: Errno::EINVAL,
        });
    }
    manager(cfg, id).freeze(paused)?;
    set_status(
        cfg,
        id,
        if paused {
            Status::Paused
        } else {
            Status::Running
        },
    )
}

pub(crate) fn stats(cfg: &RuntimeConfig, id: &str) -> Result<Stats> {
    load(cfg, id)?;
    manager(cfg, id).stats().map_err(Error::from)
}

/// Every process in the container's cgroup directories (and below), its init first.
pub(crate) fn pids(cfg: &RuntimeConfig, id: &str) -> Result<Vec<i32>> {
    let (layout, sf) = load(cfg, id)?;
    let sf = sf.ok_or_else(|| Error::NotFound(id.to_owned()))?;
    let mut out = Vec::new();
    let status = live_status(&layout, &sf);
    if status != Status::Stopped && sf.state.pid > 0 {
        out.push(sf.state.pid);
    }
    fn walk(dir: &std::path::Path, out: &mut Vec<i32>) {
        if let Ok(text) = fs::read_to_string(dir.join("cgroup.procs")) {
            out.extend(text.lines().filter_map(|l| l.trim().parse::<i32>().ok()));
        }
        for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
            if entry.file_type().is_ok_and(|t| t.is_dir()) {
                walk(&entry.path(), out);
            }
        }
    }
    for dir in manager(cfg, id).paths() {
        walk(&dir, &mut out);
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert(*p));
    Ok(out)
}

/// Merges `resources` into the container's limits, writes them to its cgroup and keeps
/// them in its state (so `stats` and later updates see them).
pub(crate) fn update(
    cfg: &RuntimeConfig,
    id: &str,
    resources: &oci_spec::runtime::LinuxResources,
) -> Result<()> {
    let (layout, sf) = load(cfg, id)?;
    let mut sf = sf.ok_or_else(|| Error::NotFound(id.to_owned()))?;
    if live_status(&layout, &sf) == Status::Stopped {
        return Err(Error::Start(format!(
            "container {id:?} is stopped; update needs a created, running or paused one"
        )));
    }
    crate::oci::merge_resources(resources, &mut sf.spec.resources, &mut sf.options)?;
    let limits = crate::cgroup::Limits::of(&sf.spec, &sf.options);
    lifecycle::manager_for(cfg, id, Some((&sf.spec, &sf.options))).apply(&limits)?;
    let (spec, options) = (sf.spec, sf.options);
    state::update(&layout, id, move |s| {
        s.spec = spec;
        s.options = options;
    })?;
    Ok(())
}

/// `/proc/<pid>/ns/net` of a running container, for `Network::Join` (the
/// `container:<id>` network mode: both share one network namespace).
pub(crate) fn netns_path(cfg: &RuntimeConfig, id: &str) -> Result<PathBuf> {
    let (layout, sf) = load(cfg, id)?;
    match sf {
        Some(sf)
            if matches!(
                live_status(&layout, &sf),
                Status::Running | Status::Created | Status::Paused
            ) =>
        {
            Ok(PathBuf::from(format!("/proc/{}/ns/net", sf.state.pid)))
        }
        _ => Err(Error::InvalidSpec(format!(
            "container {id:?} is not running: its network namespace cannot be joined"
        ))),
    }
}

/// Where named volumes live: `state_dir/.volumes/<name>` (the dot keeps them out of
/// `list`, which only takes valid container ids).
fn volume_dir(cfg: &RuntimeConfig, name: &str) -> Result<PathBuf> {
    crate::spec::validate_id(name).map_err(|_| {
        Error::InvalidSpec(format!(
            "volume name {name:?} must match [A-Za-z0-9][A-Za-z0-9_.-]{{0,63}}"
        ))
    })?;
    Ok(cfg.state_dir.join(".volumes").join(name))
}

/// Creates (if missing) the directory of a named volume and returns it; use it as a
/// [`crate::BindMount`] source. It outlives every container that mounts it.
pub(crate) fn create_volume(cfg: &RuntimeConfig, name: &str) -> Result<PathBuf> {
    let dir = volume_dir(cfg, name)?;
    fs::create_dir_all(&dir).map_err(io_err(format!("creating volume {}", dir.display())))?;
    Ok(dir)
}

/// Removes a named volume and its data; a missing one is fine.
pub(crate) fn remove_volume(cfg: &RuntimeConfig, name: &str) -> Result<()> {
    let dir = volume_dir(cfg, name)?;
    match fs::remove_dir_all(&dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(io_err(format!("removing volume {}", dir.display()))(e)),
    }
}

/// Names of the named volumes, sorted.
pub(crate) fn list_volumes(cfg: &RuntimeConfig) -> Result<Vec<String>> {
    let dir = cfg.state_dir.join(".volumes");
    let entries = match fs::read_dir(&dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err(format!("listing {}", dir.display()))(e)),
    };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .collect();
    names.sort();
    Ok(names)
}
