//! What the runtime keeps on disk per container, and liveness checks against `/proc`.
//!
//! `state_dir/<id>/` holds:
//! - `state.json`: [`StateFile`], rewritten atomically (write `state.json.tmp`, no fsync,
//!   swap it in with `renameat2(RENAME_EXCHANGE)`, unlink the old one) under an exclusive
//!   `flock` on the container's directory itself, so threads and processes that update it
//!   (create, start, wait) never lose each other's changes;
//! - `upper/`, `work/`: the overlay upper and work dirs; `rootfs/`: the merged mount;
//! - `exec.fifo`, `exec.result`: the create→start handshake (see `init`), removed once
//!   the container is started.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use crate::cgroup::CgroupVersion;
use crate::{ContainerOptions, ContainerSpec, ContainerState, Error, ExitStatus, Result};

/// The files of one container under the state dir.
#[derive(Debug, Clone)]
pub(crate) struct Layout {
    pub dir: PathBuf,
    pub state_file: PathBuf,
    pub upper: PathBuf,
    pub work: PathBuf,
    pub rootfs: PathBuf,
    /// Mount points of the idmapped lower layers, only while `create` mounts the overlay.
    pub lower: PathBuf,
    pub exec_fifo: PathBuf,
    pub exec_result: PathBuf,
}

impl Layout {
    pub fn new(state_dir: &Path, id: &str) -> Layout {
        let dir = state_dir.join(id);
        Layout {
            state_file: dir.join("state.json"),
            upper: dir.join("upper"),
            work: dir.join("work"),
            rootfs: dir.join("rootfs"),
            lower: dir.join("lower"),
            exec_fifo: dir.join("exec.fifo"),
            exec_result: dir.join("exec.result"),
            dir,
        }
    }
}

/// `state.json`: the public state plus what the runtime needs to find the container again
/// from another process.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StateFile {
    #[serde(flatten)]
    pub state: ContainerState,
    /// Start time of `pid` (field 22 of `/proc/<pid>/stat`, clock ticks since boot), to
    /// tell our process from a later one that got the same pid.
    pub pid_start_time: u64,
    pub cgroup_version: CgroupVersion,
    /// The container's cgroup directories, removed by `delete`.
    pub cgroups: Vec<PathBuf>,
    /// How the process ended, once someone waited for it.
    pub exit: Option<ExitStatus>,
    pub spec: ContainerSpec,
    #[serde(default)]
    pub options: ContainerOptions,
}

fn io_err(what: String) -> impl FnOnce(io::Error) -> Error {
    move |source| Error::Io { what, source }
}

/// Reads `state.json`; `Ok(None)` when it does not exist (or is unreadable JSON, which
/// an atomic writer never leaves, so it is treated like a half-made container).
pub(crate) fn read(layout: &Layout) -> Result<Option<StateFile>> {
    let text = match fs::read_to_string(&layout.state_file) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(io_err(format!("reading {}", layout.state_file.display()))(
                e,
            ));
        }
    };
    Ok(serde_json::from_str(&text).ok())
}

/// The exclusive lock on the container's directory (no lock file: a file more to make
/// and unlink per container is two more ext4 journal operations, which queue behind
/// other writers' commits on a busy disk).
fn lock(layout: &Layout) -> Result<Flock<fs::File>> {
    let dir =
        fs::File::open(&layout.dir).map_err(io_err(format!("opening {}", layout.dir.display())))?;
    Flock::lock(dir, FlockArg::LockExclusive).map_err(|(_, errno)| Error::Sys {
        what: format!("locking {}", layout.dir.display()),
        source: errno,
    })
}

/// Puts `tmp` in place of `target` atomically for every reader. When `target` exists the
/// two are swapped (`RENAME_EXCHANGE`) and the old file (now at `tmp`) is unlinked: a
/// plain rename over an existing file makes ext4 (`auto_da_alloc`) start writing the new
/// file's data to disk at once, and the later unlink of that file (the next write, or
/// `delete`) waits for that write: 0.5-28 ms per container measured on a busy disk, for a
/// file that lives a few milliseconds. Swapped, the data stays in the page cache and is
/// dropped with the file. Plain rename where there is nothing to swap with (the first
/// write) or the filesystem cannot swap.
fn replace(tmp: &Path, target: &Path) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
    };
    let (from, to) = (c(tmp)?, c(target)?);
    // SAFETY: two NUL-terminated paths that live across the call; no other pointers.
    let r = unsafe {
        libc::renameat2(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::RENAME_EXCHANGE,
        )
    };
    if r == 0 {
        // The old state is at `tmp` now; if it stays (the unlink failed), the next
        // write truncates it, which costs that write a flush but loses nothing.
        let _ = fs::remove_file(tmp);
        return Ok(());
    }
    let err = io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::ENOENT) | Some(libc::EINVAL) | Some(libc::ENOSYS) => fs::rename(tmp, target),
        _ => Err(err),
    }
}

fn write_unlocked(layout: &Layout, state: &StateFile) -> Result<()> {
    let tmp = layout.dir.join("state.json.tmp");
    let what = format!("writing {}", layout.state_file.display());
    let json = serde_json::to_vec_pretty(state).map_err(|e| Error::Io {
        what: what.clone(),
        source: io::Error::other(e),
    })?;
    // No fsync: rename is atomic for every reader, and what the file describes (live
    // processes, mounts) does not survive the crash that fsync would guard against. Each
    // fsync cost 5-8 ms on the CI disk, several per container (as runc and crun, which
    // do not sync either; put the state dir on tmpfs, e.g. /run, for the rest).
    // 0600 (made so, whatever the umask): the spec holds the process environment.
    let mut f = std::os::unix::fs::OpenOptionsExt::mode(
        fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true),
        0o600,
    )
    .open(&tmp)
    .map_err(io_err(what.clone()))?;
    f.write_all(&json).map_err(io_err(what.clone()))?;
    drop(f);
    replace(&tmp, &layout.state_file).map_err(io_err(what))
}

/// Writes `state` as the whole state file.
pub(crate) fn write(layout: &Layout, state: &StateFile) -> Result<()> {
    let _guard = lock(layout)?;
    write_unlocked(layout, state)
}

/// Read-modify-write of the state file under the lock. Fails with NotFound if there is
/// no state file.
pub(crate) fn update(
    layout: &Layout,
    id: &str,
    f: impl FnOnce(&mut StateFile),
) -> Result<StateFile> {
    let _guard = lock(layout)?;
    let mut state = read(layout)?.ok_or_else(|| Error::NotFound(id.to_owned()))?;
    f(&mut state);
    write_unlocked(layout, &state)?;
    Ok(state)
}

/// The fields of `/proc/<pid>/stat` the runtime uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProcStat {
    /// R, S, D, Z, T, X, …
    pub state: char,
    pub ppid: i32,
    pub start_time: u64,
}

/// Parses the text of `/proc/<pid>/stat`. `comm` may hold spaces and parentheses, so the
/// fields are counted from the last `)`.
pub(crate) fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); ppid is field 4, starttime field 22.
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        ppid: fields.get(1)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// `/proc/<pid>/stat`, or None if there is no such process.
pub(crate) fn proc_stat(pid: i32) -> Option<ProcStat> {
    if pid <= 0 {
        return None;
    }
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Whether `pid` is still the process that had `start_time` and has not exited (a
/// zombie has exited).
pub(crate) fn is_alive(pid: i32, start_time: u64) -> bool {
    proc_stat(pid).is_some_and(|s| s.start_time == start_time && !matches!(s.state, 'Z' | 'X'))
}

/// Whether `pid` is still the process that had `start_time`, zombie or not.
pub(crate) fn exists(pid: i32, start_time: u64) -> bool {
    proc_stat(pid).is_some_and(|s| s.start_time == start_time)
}

/// Now as RFC 3339 UTC with seconds, e.g. `2024-05-01T12:00:00Z`.
pub fn now_rfc3339() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    format_rfc3339(secs)
}

/// Seconds since the epoch as RFC 3339 UTC (civil-from-days, proleptic Gregorian).
pub(crate) fn format_rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Network, Resources, Status};

    #[test]
    fn stat_parsing_survives_odd_names() {
        let line = "1234 (we ird) name)) S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 \
                    1 0 987654 1000 100 18446744073709551615";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.state, 'S');
        assert_eq!(s.ppid, 1);
        assert_eq!(s.start_time, 987_654);
        assert!(parse_stat("garbage").is_none());
        assert!(parse_stat("1 (x) S 1").is_none());
    }

    #[test]
    fn our_own_process_is_alive() {
        let me = std::process::id() as i32;
        let st = proc_stat(me).unwrap();
        assert!(is_alive(me, st.start_time));
        assert!(
            !is_alive(me, st.start_time + 1),
            "another start time is another process"
        );
        assert!(!is_alive(0, 0));
    }

    #[test]
    fn rfc3339() {
        assert_eq!(format_rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(format_rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
        assert_eq!(now_rfc3339().len(), 20);
    }

    #[test]
    fn state_file_roundtrip_and_update() {
        let dir = tempfile::tempdir().unwrap();
        let layout = Layout::new(dir.path(), "c1");
        fs::create_dir(&layout.dir).unwrap();
        assert!(read(&layout).unwrap().is_none());
        let state = StateFile {
            state: ContainerState {
                id: "c1".into(),
                pid: 0,
                status: Status::Creating,
                rootfs: layout.rootfs.clone(),
                upper_dir: layout.upper.clone(),
                created: now_rfc3339(),
            },
            pid_start_time: 0,
            cgroup_version: CgroupVersion::V1,
            cgroups: vec![],
            exit: None,
            spec: ContainerSpec {
                id: "c1".into(),
                layers: vec![],
                args: vec!["x".into()],
                env: vec![],
                cwd: "/".into(),
                hostname: String::new(),
                user: None,
                mounts: vec![],
                network: Network::Host,
                resources: Resources::default(),
                stdout: "/dev/null".into(),
                stderr: "/dev/null".into(),
            },
            options: ContainerOptions::default(),
        };
        write(&layout, &state).unwrap();
        assert_eq!(read(&layout).unwrap().unwrap(), state);
        let text = fs::read_to_string(&layout.state_file).unwrap();
        assert!(text.contains("\"status\": \"creating\""), "{text}");
        let updated = update(&layout, "c1", |s| s.state.pid = 42).unwrap();
        assert_eq!(updated.state.pid, 42);
        assert_eq!(read(&layout).unwrap().unwrap().state.pid, 42);
        assert!(!layout.dir.join("state.json.tmp").exists());
        fs::write(&layout.state_file, "{").unwrap();
        assert!(
            read(&layout).unwrap().is_none(),
            "corrupt counts as missing"
        );
        assert!(matches!(
            update(&layout, "c1", |_| ()),
            Err(Error::NotFound(_))
        ));
    }
}
