//! cgroups of one container, v1 or v2, behind the [`CgroupManager`] trait.
//!
//! The cgroup filesystem root is a parameter (normally `/sys/fs/cgroup`), so the unit
//! tests below run on tempdir fixtures without root. [`detect`] picks v2 when
//! `<root>/cgroup.controllers` exists (the unified hierarchy is mounted at the root),
//! else v1 (one hierarchy per controller under `<root>/<controller>`; a hybrid host with
//! an empty `unified/` counts as v1).
//!
//! Control files are opened for writing without `O_CREAT`: on a real cgroupfs they exist
//! as soon as the directory is made, and "only if present" files (`memory.memsw.*`,
//! `memory.swap.max`, `memory.kmem.*`) are probed by existence. A file the kernel lacks
//! for a setting that was asked for (`blkio.weight` without CFQ/BFQ, `cpu.rt_*` without
//! `CONFIG_RT_GROUP_SCHED`, a huge page size it does not have) is
//! [`CgroupError::Unsupported`], naming the setting and the file.
//!
//! Layout: this file has the trait, the errors and the shared helpers; `resources.rs` the
//! limits ([`Limits`], [`ExtraResources`]); `v1.rs` and `v2.rs` the two managers.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::devices::DeviceRule;

mod resources;
mod v1;
mod v2;

pub use resources::{
    blkio_weight_to_io_weight, BlockIo, CpuExtra, ExtraResources, HugepageLimit, InterfacePriority,
    Limits, MemoryExtra, NetworkLimits, ThrottleDevice, WeightDevice,
};
pub use v1::{V1, V1_CONTROLLERS, V1_OPTIONAL};
pub use v2::{V2, V2_CONTROLLERS};

/// Errors of the cgroup code; every variant names the file or directory involved.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    #[error("creating cgroup {path}")]
    CreateDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("writing {value:?} to {path}")]
    Write {
        path: PathBuf,
        value: String,
        #[source]
        source: io::Error,
    },
    #[error("reading {path}")]
    Read {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("removing cgroup {path}")]
    RemoveDir {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "a {limit} limit was asked for but the {controller} controller is not available \
         under {root} (mount or enable it, or drop the limit)"
    )]
    MissingController {
        limit: &'static str,
        controller: &'static str,
        root: PathBuf,
    },
    #[error("{setting} was asked for, but {why}: remove it from the container's resources")]
    Unsupported { setting: &'static str, why: String },
    #[error("invalid {setting}: {why}")]
    Invalid { setting: &'static str, why: String },
    #[error(transparent)]
    Devices(#[from] crate::devices::DeviceError),
}

impl CgroupError {
    /// The underlying I/O error, if any.
    pub fn io_source(&self) -> Option<&io::Error> {
        match self {
            CgroupError::CreateDir { source, .. }
            | CgroupError::Write { source, .. }
            | CgroupError::Read { source, .. }
            | CgroupError::RemoveDir { source, .. } => Some(source),
            CgroupError::MissingController { .. }
            | CgroupError::Unsupported { .. }
            | CgroupError::Invalid { .. }
            | CgroupError::Devices(_) => None,
        }
    }
}

impl From<CgroupError> for crate::Error {
    fn from(e: CgroupError) -> crate::Error {
        let what = e.to_string();
        match e {
            CgroupError::CreateDir { source, .. }
            | CgroupError::Write { source, .. }
            | CgroupError::Read { source, .. }
            | CgroupError::RemoveDir { source, .. } => crate::Error::Io { what, source },
            CgroupError::MissingController { .. }
            | CgroupError::Unsupported { .. }
            | CgroupError::Invalid { .. } => crate::Error::InvalidSpec(what),
            CgroupError::Devices(e) => e.into(),
        }
    }
}

pub type Result<T> = std::result::Result<T, CgroupError>;

/// Which cgroup filesystem layout the host has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum CgroupVersion {
    V1,
    V2,
}

/// The cgroup(s) of one container. No default bodies: a missing piece in either version
/// is a compile error.
pub trait CgroupManager: std::fmt::Debug + Send + Sync {
    fn version(&self) -> CgroupVersion;
    /// The container's cgroup directories (one per v1 hierarchy, one on v2).
    fn paths(&self) -> Vec<PathBuf>;
    /// Makes the parent (if missing) and the container's cgroup directories.
    fn create(&self) -> Result<()>;
    /// Checks the limits ([`Limits::check`]) and writes them; `None` fields are left at
    /// the kernel default (no limit).
    fn apply(&self, limits: &Limits) -> Result<()>;
    /// Moves a process into the cgroup(s).
    fn add_process(&self, pid: i32) -> Result<()>;
    /// The `tasks` files of the v1 hierarchies: a single-threaded process writing `0` to
    /// them moves itself without the global lock `add_process` takes (empty on v2, whose
    /// `cgroup.procs` takes it either way).
    fn self_join_files(&self) -> Vec<PathBuf>;
    /// The cgroup2 directory (v2, or a hybrid host's `unified/`) a new process can be
    /// cloned straight into with `CLONE_INTO_CGROUP`.
    fn clone_into_dir(&self) -> Option<PathBuf>;
    /// Pids in the cgroup(s), deduplicated; a missing directory counts as empty.
    fn procs(&self) -> Result<Vec<i32>>;
    /// How many processes the OOM killer killed in this cgroup (0 if unknown).
    fn oom_kills(&self) -> Result<u64>;
    /// Removes the container's cgroup directories (not the shared parent). Missing ones
    /// are fine; a non-empty one fails with EBUSY (the caller kills and retries).
    fn remove(&self) -> Result<()>;
    /// Memory, CPU and pid figures; a missing controller's figures are 0 / None.
    fn stats(&self) -> Result<Stats>;
    /// Freezes (`true`) or thaws the cgroup's processes; returns once the kernel says so.
    fn freeze(&self, frozen: bool) -> Result<()>;
    /// Whether the cgroup is frozen.
    fn is_frozen(&self) -> bool;
    /// Sets the device allow-list: `default_allow` for what no rule matches, then the
    /// rules (the last matching one decides), see [`crate::devices`].
    fn set_devices(&self, default_allow: bool, rules: &[DeviceRule]) -> Result<()>;
}

/// Resource usage of one container, read from its cgroup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// Memory charged now (page cache included), bytes.
    pub memory_bytes: u64,
    /// Highest memory charge seen (v1 `max_usage_in_bytes`, v2 `memory.peak` where the
    /// kernel has it).
    pub memory_peak_bytes: Option<u64>,
    /// CPU time used, nanoseconds.
    pub cpu_usage_ns: u64,
    /// Processes and threads now.
    pub pids: u64,
}

/// Reads one number from a cgroup file; None if missing or not a number.
fn read_u64(path: &Path) -> Option<u64> {
    fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// How long `freeze` waits for the kernel to finish freezing or thawing.
const FREEZE_PATIENCE: std::time::Duration = std::time::Duration::from_secs(5);

/// Polls `done` until it holds or [`FREEZE_PATIENCE`] runs out (EBUSY).
fn wait_until(path: &Path, done: impl Fn() -> bool) -> Result<()> {
    let deadline = std::time::Instant::now() + FREEZE_PATIENCE;
    let mut pause = std::time::Duration::from_micros(200);
    while !done() {
        if std::time::Instant::now() > deadline {
            return Err(CgroupError::Write {
                path: path.to_owned(),
                value: "freeze state".into(),
                source: io::Error::from_raw_os_error(libc::EBUSY),
            });
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(std::time::Duration::from_millis(20));
    }
    Ok(())
}

/// v2 when `<root>/cgroup.controllers` exists, else v1.
pub fn detect(root: &Path) -> CgroupVersion {
    if root.join("cgroup.controllers").exists() {
        CgroupVersion::V2
    } else {
        CgroupVersion::V1
    }
}

/// The manager for container `id` under `parent` that knows every hierarchy a container
/// can have (v1: [`V1_CONTROLLERS`] and [`V1_OPTIONAL`]), for when the limits are not
/// known: cleaning up after a container whose state is gone, the shared parents. Missing
/// dirs count as empty, so it must not be used to join (`self_join_files`).
pub fn manager(root: &Path, parent: &str, id: &str) -> Box<dyn CgroupManager> {
    let all: Vec<&str> = V1_CONTROLLERS.iter().chain(&V1_OPTIONAL).copied().collect();
    match detect(root) {
        CgroupVersion::V2 => Box::new(V2::new(root, parent, id)),
        CgroupVersion::V1 => Box::new(V1::with_hierarchies(root, parent, id, &all)),
    }
}

/// The manager of a container with `limits`: v1 joins [`V1_CONTROLLERS`] plus the
/// optional hierarchies the limits need (cpuset only for `cpus`/`mems`, blkio, hugetlb,
/// net_cls, net_prio), so every call for that container sees the same set.
pub fn manager_with(
    root: &Path,
    parent: &str,
    id: &str,
    limits: &Limits,
) -> Box<dyn CgroupManager> {
    match detect(root) {
        CgroupVersion::V2 => Box::new(V2::with_limits(root, parent, id, limits)),
        CgroupVersion::V1 => {
            let mut want: Vec<&str> = V1_CONTROLLERS.to_vec();
            want.extend(limits.v1_hierarchies());
            Box::new(V1::with_hierarchies(root, parent, id, &want))
        }
    }
}

/// A manager for only the hierarchies that `limits` (and the device allow-list) need, or
/// None when nothing is limited. Joining a cgroup costs an RCU grace period per hierarchy
/// (the kernel's `cgroup_threadgroup_rwsem`), milliseconds on a busy host, so
/// containers that ask for no limits and no stats (OCI bundles without resources) join
/// none. Later calls (wait, delete, stats) use [`manager_with`]: missing dirs count as
/// empty.
pub fn manager_for_limits(
    root: &Path,
    parent: &str,
    id: &str,
    limits: &Limits,
    devices: bool,
) -> Option<Box<dyn CgroupManager>> {
    let mut need = limits.v1_hierarchies();
    if devices {
        need.push("devices");
    }
    if need.is_empty() {
        return None;
    }
    Some(match detect(root) {
        CgroupVersion::V2 => Box::new(V2::with_limits(root, parent, id, limits)),
        CgroupVersion::V1 => Box::new(V1::with_hierarchies(root, parent, id, &need)),
    })
}

/// The shared parent directories (`<root>/<controller>/<parent>` on v1, one per joined
/// hierarchy that is mounted; `<root>/<parent>` on v2).
pub fn parent_paths(root: &Path, parent: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = Vec::new();
    for dir in manager(root, parent, "x").paths() {
        if let Some(p) = dir.parent() {
            out.push(p.to_owned());
        }
    }
    out
}

/// Removes the shared parent directories; missing ones are fine, and one that still has
/// containers fails with EBUSY.
pub fn remove_parent(root: &Path, parent: &str) -> Result<()> {
    for dir in parent_paths(root, parent) {
        remove_dir(&dir)?;
    }
    Ok(())
}

/// cgroup v1 `cpu.shares` to v2 `cpu.weight` (the mapping runc and crun use: 2..262144
/// onto 1..10000; 1024 becomes 39).
pub fn shares_to_weight(shares: u64) -> u64 {
    let shares = shares.clamp(2, 262_144);
    1 + ((shares - 2) * 9999) / 262_142
}

fn write_file(path: &Path, value: &str) -> Result<()> {
    // O_TRUNC as runc does: harmless on cgroupfs, right on the test fixtures.
    let res = fs::OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .and_then(|mut f| f.write_all(value.as_bytes()));
    res.map_err(|source| CgroupError::Write {
        path: path.to_owned(),
        value: value.to_owned(),
        source,
    })
}

fn read_file(path: &Path) -> Result<String> {
    fs::read_to_string(path).map_err(|source| CgroupError::Read {
        path: path.to_owned(),
        source,
    })
}

/// Reads `key N` from a flat-keyed file such as `memory.events`; 0 if the file or key is
/// missing.
fn read_keyed(path: &Path, key: &str) -> Result<u64> {
    let text = match fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(0),
        Err(source) => {
            return Err(CgroupError::Read {
                path: path.to_owned(),
                source,
            })
        }
    };
    Ok(text
        .lines()
        .filter_map(|l| l.split_once(' '))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.trim().parse().ok())
        .unwrap_or(0))
}

fn read_procs(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let path = dir.join("cgroup.procs");
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(source) => return Err(CgroupError::Read { path, source }),
    };
    for pid in text.lines().filter_map(|l| l.trim().parse::<i32>().ok()) {
        if !out.contains(&pid) {
            out.push(pid);
        }
    }
    Ok(())
}

fn make_dir_all(path: &Path) -> Result<()> {
    fs::create_dir_all(path).map_err(|source| CgroupError::CreateDir {
        path: path.to_owned(),
        source,
    })
}

fn remove_dir(path: &Path) -> Result<()> {
    match fs::remove_dir(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(source) => Err(CgroupError::RemoveDir {
            path: path.to_owned(),
            source,
        }),
    }
}

/// `path` when it exists, else [`CgroupError::Unsupported`] for `setting`: "<path> does
/// not exist (<reason>)".
fn present(path: PathBuf, setting: &'static str, reason: &str) -> Result<PathBuf> {
    first_present(&[path], setting, reason)
}

/// The first of `paths` that exists, else [`CgroupError::Unsupported`] naming them.
fn first_present(paths: &[PathBuf], setting: &'static str, reason: &str) -> Result<PathBuf> {
    if let Some(p) = paths.iter().find(|p| p.exists()) {
        return Ok(p.clone());
    }
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    Err(CgroupError::Unsupported {
        setting,
        why: format!("{} does not exist ({reason})", names.join(" nor ")),
    })
}

/// Writes a per-device line (`M:m …`) for `setting`; the kernel's `ENODEV` becomes
/// [`CgroupError::Invalid`] naming the device, which is what the caller got wrong.
fn write_device_line(path: &Path, value: &str, setting: &'static str) -> Result<()> {
    write_file(path, value).map_err(|e| match e.io_source().and_then(io::Error::raw_os_error) {
        Some(libc::ENODEV) => {
            let dev = value.split_whitespace().next().unwrap_or(value);
            CgroupError::Invalid {
                setting,
                why: format!(
                    "{dev} is not a block device of this host (see /proc/partitions; \
                     weights and limits apply to whole disks)"
                ),
            }
        }
        _ => e,
    })
}

/// Writes `value` to `path` when the file exists (a knob only some kernels have).
fn write_if_present(path: &Path, value: &str) -> Result<()> {
    if path.exists() {
        write_file(path, value)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_resources;
