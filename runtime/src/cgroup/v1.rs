//! cgroup v1: one directory per controller hierarchy, `<root>/<hierarchy>/<parent>/<id>`.
//!
//! Every container joins [`V1_CONTROLLERS`]; [`V1_OPTIONAL`] ones only when its limits
//! need them ([`super::Limits::v1_hierarchies`]). A new cpuset cgroup starts with empty
//! `cpuset.cpus`/`cpuset.mems` and refuses tasks, so `create` fills each new cpuset dir
//! from its parent, from the hierarchy's root down, as runc does.

use std::fs;
use std::path::{Path, PathBuf};

use super::{
    first_present, make_dir_all, present, read_file, read_keyed, read_procs, read_u64, remove_dir,
    resources, wait_until, write_device_line, write_file, write_if_present, BlockIo, CgroupError,
    CgroupManager, CgroupVersion, CpuExtra, HugepageLimit, Limits, NetworkLimits, Result, Stats,
    ThrottleDevice,
};
use crate::devices::DeviceRule;

/// v1 hierarchies every container joins, in this order. `systemd` (the `name=systemd`
/// hierarchy) and `unified` (the controller-less cgroup2 of a hybrid host) carry no
/// limits but are where systemd tracks a service's processes: joining them takes the
/// container out of the agent's unit, so stopping the agent's service does not kill its
/// containers.
pub const V1_CONTROLLERS: [&str; 8] = [
    "memory", "pids", "cpu", "cpuacct", "freezer", "devices", "systemd", "unified",
];

/// v1 hierarchies joined only when a limit needs them: `cpuset` (OCI `cpus`/`mems`),
/// `blkio`, `hugetlb`, `net_cls` and `net_prio`.
pub const V1_OPTIONAL: [&str; 5] = ["cpuset", "blkio", "hugetlb", "net_cls", "net_prio"];

/// cgroup v1: one directory per controller hierarchy.
#[derive(Debug, Clone)]
pub struct V1 {
    root: PathBuf,
    /// (hierarchy, container dir) for every mounted hierarchy joined; co-mounted
    /// controllers (`cpu,cpuacct`) appear once, under the first name asked for.
    pub(super) dirs: Vec<(&'static str, PathBuf)>,
    /// Every controller asked for that is mounted, with the index of its entry in
    /// `dirs` (co-mounted ones share one).
    by_controller: Vec<(&'static str, usize)>,
}

impl V1 {
    /// The manager of the [`V1_CONTROLLERS`] hierarchies.
    pub fn new(root: &Path, parent: &str, id: &str) -> V1 {
        V1::with_hierarchies(root, parent, id, &V1_CONTROLLERS)
    }

    /// The manager of those of `controllers` that are mounted under `root`.
    pub fn with_hierarchies(
        root: &Path,
        parent: &str,
        id: &str,
        controllers: &[&'static str],
    ) -> V1 {
        let mut dirs: Vec<(&'static str, PathBuf)> = Vec::new();
        let mut by_controller = Vec::new();
        let mut seen: Vec<(u64, u64)> = Vec::new();
        for &controller in controllers {
            if by_controller.iter().any(|(c, _)| *c == controller) {
                continue;
            }
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
            let index = match seen.iter().position(|f| *f == file) {
                Some(i) => i,
                None => {
                    seen.push(file);
                    dirs.push((controller, mount.join(parent).join(id)));
                    dirs.len() - 1
                }
            };
            by_controller.push((controller, index));
        }
        V1 {
            root: root.to_owned(),
            dirs,
            by_controller,
        }
    }

    fn dir(&self, controller: &str) -> Option<&Path> {
        self.by_controller
            .iter()
            .find(|(c, _)| *c == controller)
            .map(|(_, i)| self.dirs[*i].1.as_path())
    }

    fn need(&self, controller: &'static str, limit: &'static str) -> Result<&Path> {
        self.dir(controller)
            .ok_or_else(|| CgroupError::MissingController {
                limit,
                controller,
                root: self.root.clone(),
            })
    }

    fn apply_memory(&self, l: &Limits) -> Result<()> {
        if !l.wants_memory() {
            return Ok(());
        }
        let m = &l.extra.memory;
        let dir = self.need("memory", "memory")?;
        let memsw = dir.join("memory.memsw.limit_in_bytes");
        if let Some(bytes) = l.memory_bytes {
            let value = bytes.to_string();
            write_file(&dir.join("memory.limit_in_bytes"), &value)?;
            match m.swap {
                // memory+swap = memory: no swap. Only where swap accounting is compiled in.
                None => write_if_present(&memsw, &value)?,
                Some(-1) => write_if_present(&memsw, "-1")?,
                Some(swap) => {
                    let path = present(
                        memsw,
                        "memory.swap",
                        "the kernel does no swap accounting: boot it with swapaccount=1",
                    )?;
                    write_file(&path, &swap.to_string())?;
                }
            }
        }
        // (A swap limit without a memory limit was refused by `check`; -1 is the default.)
        if let Some(r) = m.reservation {
            write_file(&dir.join("memory.soft_limit_in_bytes"), &r.to_string())?;
        }
        if let Some(k) = m.kernel {
            write_if_present(&dir.join("memory.kmem.limit_in_bytes"), &k.to_string())?;
        }
        if let Some(k) = m.kernel_tcp {
            write_if_present(&dir.join("memory.kmem.tcp.limit_in_bytes"), &k.to_string())?;
        }
        if m.disable_oom_killer {
            write_file(&dir.join("memory.oom_control"), "1")?;
        }
        if let Some(s) = m.swappiness {
            write_file(&dir.join("memory.swappiness"), &s.to_string())?;
        }
        Ok(())
    }

    fn apply_cpu(&self, l: &Limits) -> Result<()> {
        if !l.wants_cpu() {
            return Ok(());
        }
        let c = &l.extra.cpu;
        let dir = self.need("cpu", "cpu")?;
        if let Some(shares) = l.cpu_shares {
            write_file(&dir.join("cpu.shares"), &shares.max(2).to_string())?;
        }
        // Period first: the kernel checks the quota against the period in place.
        if let Some(period) = l.cpu_quota.map(|q| q.period_us).or(c.period) {
            write_file(&dir.join("cpu.cfs_period_us"), &period.to_string())?;
        }
        if let Some(q) = l.cpu_quota {
            write_file(&dir.join("cpu.cfs_quota_us"), &q.quota_us.to_string())?;
        }
        let why = "the kernel has no realtime group scheduling (CONFIG_RT_GROUP_SCHED)";
        if let Some(p) = c.realtime_period {
            let path = present(dir.join("cpu.rt_period_us"), "cpu.realtimePeriod", why)?;
            write_file(&path, &p.to_string())?;
        }
        if let Some(r) = c.realtime_runtime {
            let path = present(dir.join("cpu.rt_runtime_us"), "cpu.realtimeRuntime", why)?;
            write_file(&path, &r.to_string())?;
        }
        Ok(())
    }

    fn apply_cpuset(&self, c: &CpuExtra) -> Result<()> {
        if c.cpus.is_none() && c.mems.is_none() {
            return Ok(());
        }
        let dir = self.need("cpuset", "cpuset")?;
        if let Some(cpus) = &c.cpus {
            write_file(&dir.join("cpuset.cpus"), cpus)?;
        }
        if let Some(mems) = &c.mems {
            write_file(&dir.join("cpuset.mems"), mems)?;
        }
        Ok(())
    }

    fn apply_blkio(&self, b: &BlockIo) -> Result<()> {
        if *b == BlockIo::default() {
            return Ok(());
        }
        let dir = self.need("blkio", "block I/O")?;
        let weights = || [dir.join("blkio.weight"), dir.join("blkio.bfq.weight")];
        let no_weights = "the kernel's I/O schedulers have no weights (CFQ or BFQ)";
        if let Some(w) = b.weight {
            let path = first_present(&weights(), "blockIO.weight", no_weights)?;
            write_file(&path, &w.to_string())?;
        }
        let no_leaf = "only the CFQ I/O scheduler has leaf weights";
        if let Some(w) = b.leaf_weight {
            let path = present(dir.join("blkio.leaf_weight"), "blockIO.leafWeight", no_leaf)?;
            write_file(&path, &w.to_string())?;
        }
        for d in &b.weight_devices {
            if let Some(w) = d.weight {
                let files = [
                    dir.join("blkio.weight_device"),
                    dir.join("blkio.bfq.weight_device"),
                ];
                let path = first_present(&files, "blockIO.weightDevice", no_weights)?;
                let line = format!("{}:{} {w}", d.major, d.minor);
                write_device_line(&path, &line, "blockIO.weightDevice")?;
            }
            if let Some(w) = d.leaf_weight {
                let path = present(
                    dir.join("blkio.leaf_weight_device"),
                    "blockIO.weightDevice leafWeight",
                    no_leaf,
                )?;
                let line = format!("{}:{} {w}", d.major, d.minor);
                write_device_line(&path, &line, "blockIO.weightDevice leafWeight")?;
            }
        }
        let throttles: [(&'static str, &str, &[ThrottleDevice]); 4] = [
            (
                "blockIO.throttleReadBpsDevice",
                "read_bps_device",
                &b.throttle_read_bps,
            ),
            (
                "blockIO.throttleWriteBpsDevice",
                "write_bps_device",
                &b.throttle_write_bps,
            ),
            (
                "blockIO.throttleReadIOPSDevice",
                "read_iops_device",
                &b.throttle_read_iops,
            ),
            (
                "blockIO.throttleWriteIOPSDevice",
                "write_iops_device",
                &b.throttle_write_iops,
            ),
        ];
        for (setting, file, devices) in throttles {
            for d in devices {
                let path = present(
                    dir.join(format!("blkio.throttle.{file}")),
                    setting,
                    "the kernel has no block I/O throttling (CONFIG_BLK_DEV_THROTTLING)",
                )?;
                let line = format!("{}:{} {}", d.major, d.minor, d.rate);
                write_device_line(&path, &line, setting)?;
            }
        }
        Ok(())
    }

    fn apply_hugetlb(&self, limits: &[HugepageLimit]) -> Result<()> {
        if limits.is_empty() {
            return Ok(());
        }
        let dir = self.need("hugetlb", "huge page")?;
        for h in limits {
            let file = dir.join(format!("hugetlb.{}.limit_in_bytes", h.page_size));
            if !file.exists() {
                let sizes = resources::page_sizes(dir, ".limit_in_bytes");
                let why = format!("the kernel's huge page sizes are: {}", sizes.join(", "));
                present(file.clone(), "hugepageLimits", &why)?;
            }
            write_file(&file, &h.limit.to_string())?;
        }
        Ok(())
    }

    fn apply_network(&self, n: &NetworkLimits) -> Result<()> {
        if let Some(id) = n.class_id {
            let dir = self.need("net_cls", "network classID")?;
            write_file(&dir.join("net_cls.classid"), &id.to_string())?;
        }
        if !n.priorities.is_empty() {
            let dir = self.need("net_prio", "network priority")?;
            for p in &n.priorities {
                write_file(
                    &dir.join("net_prio.ifpriomap"),
                    &format!("{} {}", p.name, p.priority),
                )?;
            }
        }
        Ok(())
    }
}

/// Makes `dir` and its missing ancestors below `mount`, giving each one whose
/// `cpuset.cpus`/`cpuset.mems` is empty its parent's: a new cpuset cgroup starts with
/// none and refuses tasks until it has some. (`cgroup.clone_children` would do this too,
/// but it is a setting of the parent, which may not be ours.)
fn make_cpuset_dirs(mount: &Path, dir: &Path) -> Result<()> {
    let rel = dir.strip_prefix(mount).unwrap_or(Path::new(""));
    let mut cur = mount.to_path_buf();
    for part in rel.components() {
        let parent = cur.clone();
        cur.push(part);
        make_dir_all(&cur)?;
        for f in ["cpuset.cpus", "cpuset.mems"] {
            if read_file(&cur.join(f))?.trim().is_empty() {
                let from = read_file(&parent.join(f))?;
                write_file(&cur.join(f), from.trim())?;
            }
        }
    }
    Ok(())
}

impl CgroupManager for V1 {
    fn version(&self) -> CgroupVersion {
        CgroupVersion::V1
    }

    fn paths(&self) -> Vec<PathBuf> {
        self.dirs.iter().map(|(_, d)| d.clone()).collect()
    }

    fn create(&self) -> Result<()> {
        let cpuset = self.dir("cpuset");
        for (name, dir) in &self.dirs {
            if Some(dir.as_path()) == cpuset {
                make_cpuset_dirs(&self.root.join(name), dir)?;
            } else {
                make_dir_all(dir)?;
            }
        }
        Ok(())
    }

    fn apply(&self, l: &Limits) -> Result<()> {
        l.check()?;
        self.apply_memory(l)?;
        if let Some(max) = l.pids_max {
            let dir = self.need("pids", "pids")?;
            write_file(&dir.join("pids.max"), &max.to_string())?;
        }
        self.apply_cpu(l)?;
        self.apply_cpuset(&l.extra.cpu)?;
        self.apply_blkio(&l.extra.block_io)?;
        self.apply_hugetlb(&l.extra.hugepages)?;
        self.apply_network(&l.extra.network)
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
