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
//! `memory.swap.max`) are probed by existence.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use crate::devices::DeviceRule;
use crate::{CpuQuota, Resources};

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
            CgroupError::MissingController { .. } | CgroupError::Devices(_) => None,
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
            CgroupError::MissingController { .. } => crate::Error::InvalidSpec(what),
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
    /// Writes the limits; `None` fields are left at the kernel default (no limit).
    fn apply(&self, resources: &Resources) -> Result<()>;
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
    /// Writes a CPU bandwidth limit.
    fn set_cpu_quota(&self, quota: CpuQuota) -> Result<()>;
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

/// The manager for container `id` under `parent`, for the layout found at `root`.
pub fn manager(root: &Path, parent: &str, id: &str) -> Box<dyn CgroupManager> {
    match detect(root) {
        CgroupVersion::V2 => Box::new(V2::new(root, parent, id)),
        CgroupVersion::V1 => Box::new(V1::new(root, parent, id)),
    }
}

/// A manager for only the hierarchies that `resources` (and a CPU quota) need, or None
/// when nothing is limited. Joining a cgroup costs an RCU grace period per hierarchy
/// (the kernel's `cgroup_threadgroup_rwsem`), milliseconds on a busy host, so
/// containers that ask for no limits and no stats (OCI bundles without resources) join
/// none. Later calls (wait, delete, stats) use [`manager`]: missing dirs count as empty.
pub fn manager_for_limits(
    root: &Path,
    parent: &str,
    id: &str,
    r: &Resources,
    cpu_quota: bool,
    devices: bool,
) -> Option<Box<dyn CgroupManager>> {
    let mut need = Vec::new();
    if devices {
        need.push("devices");
    }
    if r.memory_bytes.is_some() {
        need.push("memory");
    }
    if r.pids_max.is_some() {
        need.push("pids");
    }
    if r.cpu_shares.is_some() || cpu_quota {
        need.push("cpu");
    }
    if need.is_empty() {
        return None;
    }
    Some(match detect(root) {
        CgroupVersion::V2 => Box::new(V2::new(root, parent, id)),
        CgroupVersion::V1 => {
            let mut m = V1::new(root, parent, id);
            m.dirs.retain(|(c, _)| need.contains(c));
            Box::new(m)
        }
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

/// v1 hierarchies a container joins, in this order. cpuset is left out on purpose: a new
/// cpuset cgroup starts with empty `cpuset.cpus`/`mems` and would refuse tasks. `systemd`
/// (the `name=systemd` hierarchy) and `unified` (the controller-less cgroup2 of a hybrid
/// host) carry no limits but are where systemd tracks a service's processes: joining
/// them takes the container out of the agent's unit, so stopping the agent's service does
/// not kill its containers.
pub const V1_CONTROLLERS: [&str; 8] = [
    "memory", "pids", "cpu", "cpuacct", "freezer", "devices", "systemd", "unified",
];

/// v2 controllers enabled for the container's subtree when the root offers them.
pub const V2_CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

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

/// cgroup v1: one directory per controller hierarchy, `<root>/<controller>/<parent>/<id>`.
#[derive(Debug, Clone)]
pub struct V1 {
    root: PathBuf,
    /// (controller, container dir) for every mounted controller of [`V1_CONTROLLERS`];
    /// co-mounted controllers (`cpu,cpuacct`) appear once.
    dirs: Vec<(&'static str, PathBuf)>,
}

impl V1 {
    pub fn new(root: &Path, parent: &str, id: &str) -> V1 {
        let mut dirs: Vec<(&'static str, PathBuf)> = Vec::new();
        let mut seen: Vec<(u64, u64)> = Vec::new();
        for controller in V1_CONTROLLERS {
            let mount = root.join(controller);
            // A hierarchy is mounted where its root has `cgroup.procs` (a bare directory,
            // or a tmpfs hiding the hierarchy, is not one). Co-mounted ones (`cpu` and
            // `cpuacct` linking to `cpu,cpuacct`) share that very file: its device and
            // inode tell them apart in one stat, where resolving the links took five
            // system calls per controller, on every runtime call.
            let Ok(meta) = fs::metadata(mount.join("cgroup.procs")) else {
                continue;
            };
            let file = (
                std::os::unix::fs::MetadataExt::dev(&meta),
                std::os::unix::fs::MetadataExt::ino(&meta),
            );
            if seen.contains(&file) {
                continue;
            }
            seen.push(file);
            dirs.push((controller, mount.join(parent).join(id)));
        }
        V1 {
            root: root.to_owned(),
            dirs,
        }
    }

    fn dir(&self, controller: &str) -> Option<&Path> {
        self.dirs
            .iter()
            .find(|(c, _)| *c == controller)
            .map(|(_, d)| d.as_path())
    }

    fn need(&self, controller: &'static str, limit: &'static str) -> Result<&Path> {
        self.dir(controller)
            .ok_or_else(|| CgroupError::MissingController {
                limit,
                controller,
                root: self.root.clone(),
            })
    }
}

impl CgroupManager for V1 {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V1
    }

    fn paths(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|(_, d)| d.clone()).collect()
    }

    fn create(&self) -> Result<()> {
        for (_, dir) in &self.dirs {
            make_dir_all(dir)?;
        }
        Ok(())
    }

    fn apply(&self, r: &Resources) -> Result<()> {
        if let Some(bytes) = r.memory_bytes {
            let dir = self.need("memory", "memory")?;
            let value = bytes.to_string();
            write_file(&dir.join("memory.limit_in_bytes"), &value)?;
            // memory+swap = memory: no swap. Only where swap accounting is compiled in.
            let memsw = dir.join("memory.memsw.limit_in_bytes");
            if memsw.exists() {
                write_file(&memsw, &value)?;
            }
        }
        if let Some(max) = r.pids_max {
            let dir = self.need("pids", "pids")?;
            write_file(&dir.join("pids.max"), &max.to_string())?;
        }
        if let Some(shares) = r.cpu_shares {
            let dir = self.need("cpu", "cpu")?;
            write_file(&dir.join("cpu.shares"), &shares.max(2).to_string())?;
        }
        Ok(())
    }

    fn add_process(&self, pid: i32) -> Result<()> {
        for (_, dir) in &self.dirs {
            write_file(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    fn self_join_files(&self) -> Vec<PathBuf> {
        self.dirs
            .iter()
            .filter(|(c, _)| *c != "unified")
            .map(|(_, d)| d.join("tasks"))
            .collect()
    }

    fn clone_into_dir(&self) -> Option<PathBuf> {
        self.dir("unified").map(Path::to_owned)
    }

    fn procs(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        for (_, dir) in &self.dirs {
            read_procs(dir, &mut out)?;
        }
        Ok(out)
    }

    fn oom_kills(&self) -> Result<u64> {
        match self.dir("memory") {
            Some(dir) => read_keyed(&dir.join("memory.oom_control"), "oom_kill"),
            None => Ok(0),
        }
    }

    fn remove(&self) -> Result<()> {
        for (_, dir) in &self.dirs {
            remove_dir(dir)?;
        }
        Ok(())
    }

    fn set_cpu_quota(&self, q: CpuQuota) -> Result<()> {
        let dir = self.need("cpu", "cpu quota")?;
        write_file(&dir.join("cpu.cfs_period_us"), &q.period_us.to_string())?;
        write_file(&dir.join("cpu.cfs_quota_us"), &q.quota_us.to_string())
    }

    fn stats(&self) -> Result<Stats> {
        let mut s = Stats::default();
        if let Some(dir) = self.dir("memory") {
            s.memory_bytes = read_u64(&dir.join("memory.usage_in_bytes")).unwrap_or(0);
            s.memory_peak_bytes = read_u64(&dir.join("memory.max_usage_in_bytes"));
        }
        if let Some(dir) = self.dir("cpuacct").or_else(|| self.dir("cpu")) {
            s.cpu_usage_ns = read_u64(&dir.join("cpuacct.usage")).unwrap_or(0);
        }
        if let Some(dir) = self.dir("pids") {
            s.pids = read_u64(&dir.join("pids.current")).unwrap_or(0);
        }
        Ok(s)
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        let dir = self.need("freezer", "freezer")?;
        let path = dir.join("freezer.state");
        let want = if frozen { "FROZEN" } else { "THAWED" };
        write_file(&path, want)?;
        wait_until(&path, || {
            fs::read_to_string(&path).is_ok_and(|t| t.trim() == want)
        })
    }

    fn is_frozen(&self) -> bool {
        self.dir("freezer").is_some_and(|d| {
            fs::read_to_string(d.join("freezer.state")).is_ok_and(|t| t.trim() == "FROZEN")
        })
    }

    fn set_devices(&self, default_allow: bool, rules: &[DeviceRule]) -> Result<()> {
        let dir = self.need("devices", "device")?;
        for (allow, line) in crate::devices::v1_writes(default_allow, rules) {
            let file = if allow {
                "devices.allow"
            } else {
                "devices.deny"
            };
            write_file(&dir.join(file), &line)?;
        }
        Ok(())
    }
}

/// cgroup v2: one directory, `<root>/<parent>/<id>`.
#[derive(Debug, Clone)]
pub struct V2 {
    root: PathBuf,
    parent: PathBuf,
    dir: PathBuf,
}

impl V2 {
    pub fn new(root: &Path, parent: &str, id: &str) -> V2 {
        let parent = root.join(parent);
        V2 {
            root: root.to_owned(),
            dir: parent.join(id),
            parent,
        }
    }

    /// Controllers the root offers, among [`V2_CONTROLLERS`].
    fn available(&self) -> Result<Vec<&'static str>> {
        let text = read_file(&self.root.join("cgroup.controllers"))?;
        let offered: Vec<&str> = text.split_whitespace().collect();
        Ok(V2_CONTROLLERS
            .into_iter()
            .filter(|c| offered.contains(c))
            .collect())
    }

    /// Enables `controllers` in `dir/cgroup.subtree_control` unless already on, one at a
    /// time: one the kernel refuses (e.g. `cpu` while realtime tasks sit in other groups)
    /// only matters if its limit is asked for, and `apply` reports that.
    fn enable(dir: &Path, controllers: &[&str]) -> Result<()> {
        let path = dir.join("cgroup.subtree_control");
        for c in Self::to_enable(&read_file(&path)?, controllers) {
            let _ = write_file(&path, &format!("+{c}"));
        }
        Ok(())
    }

    /// The controllers of `wanted` that `subtree_control` (its text) does not list.
    fn to_enable<'a>(subtree_control: &str, wanted: &[&'a str]) -> Vec<&'a str> {
        let on: Vec<&str> = subtree_control.split_whitespace().collect();
        wanted.iter().copied().filter(|c| !on.contains(c)).collect()
    }

    fn need(&self, file: &str, limit: &'static str, controller: &'static str) -> Result<PathBuf> {
        let path = self.dir.join(file);
        if path.exists() {
            Ok(path)
        } else {
            Err(CgroupError::MissingController {
                limit,
                controller,
                root: self.root.clone(),
            })
        }
    }
}

impl CgroupManager for V2 {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V2
    }

    fn paths(&self) -> Vec<PathBuf> {
        vec![self.dir.clone()]
    }

    fn create(&self) -> Result<()> {
        let controllers = self.available()?;
        // Every ancestor from the root down to the parent must delegate the controllers
        // to its children ("no internal processes": none of these hold processes).
        let rel = self
            .parent
            .strip_prefix(&self.root)
            .unwrap_or(Path::new(""));
        let mut dir = self.root.clone();
        Self::enable(&dir, &controllers)?;
        for part in rel.components() {
            dir.push(part);
            make_dir_all(&dir)?;
            Self::enable(&dir, &controllers)?;
        }
        make_dir_all(&self.dir)
    }

    fn apply(&self, r: &Resources) -> Result<()> {
        if let Some(bytes) = r.memory_bytes {
            write_file(
                &self.need("memory.max", "memory", "memory")?,
                &bytes.to_string(),
            )?;
            let swap = self.dir.join("memory.swap.max");
            if swap.exists() {
                write_file(&swap, "0")?;
            }
        }
        if let Some(max) = r.pids_max {
            write_file(&self.need("pids.max", "pids", "pids")?, &max.to_string())?;
        }
        if let Some(shares) = r.cpu_shares {
            let path = self.need("cpu.weight", "cpu", "cpu")?;
            write_file(&path, &shares_to_weight(shares).to_string())?;
        }
        Ok(())
    }

    fn add_process(&self, pid: i32) -> Result<()> {
        write_file(&self.dir.join("cgroup.procs"), &pid.to_string())
    }

    fn self_join_files(&self) -> Vec<PathBuf> {
        Vec::new()
    }

    fn clone_into_dir(&self) -> Option<PathBuf> {
        Some(self.dir.clone())
    }

    fn procs(&self) -> Result<Vec<i32>> {
        let mut out = Vec::new();
        read_procs(&self.dir, &mut out)?;
        Ok(out)
    }

    fn oom_kills(&self) -> Result<u64> {
        read_keyed(&self.dir.join("memory.events"), "oom_kill")
    }

    fn remove(&self) -> Result<()> {
        remove_dir(&self.dir)
    }

    fn set_cpu_quota(&self, q: CpuQuota) -> Result<()> {
        let path = self.need("cpu.max", "cpu quota", "cpu")?;
        write_file(&path, &format!("{} {}", q.quota_us, q.period_us))
    }

    fn stats(&self) -> Result<Stats> {
        let usage_usec = read_keyed(&self.dir.join("cpu.stat"), "usage_usec")?;
        Ok(Stats {
            memory_bytes: read_u64(&self.dir.join("memory.current")).unwrap_or(0),
            memory_peak_bytes: read_u64(&self.dir.join("memory.peak")),
            cpu_usage_ns: usage_usec * 1000,
            pids: read_u64(&self.dir.join("pids.current")).unwrap_or(0),
        })
    }

    fn freeze(&self, frozen: bool) -> Result<()> {
        let path = self.dir.join("cgroup.freeze");
        write_file(&path, if frozen { "1" } else { "0" })?;
        let events = self.dir.join("cgroup.events");
        let want = u64::from(frozen);
        wait_until(&events, || {
            read_keyed(&events, "frozen").is_ok_and(|v| v == want)
        })
    }

    fn is_frozen(&self) -> bool {
        read_keyed(&self.dir.join("cgroup.events"), "frozen").is_ok_and(|v| v == 1)
    }

    fn set_devices(&self, default_allow: bool, rules: &[DeviceRule]) -> Result<()> {
        crate::devices::attach(&self.dir, default_allow, rules)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests;
