//! cgroup v2: one directory, `<root>/<parent>/<id>`.
//!
//! `create` enables the controllers in `cgroup.subtree_control` from the root down to the
//! parent: [`V2_CONTROLLERS`] always, `cpuset`, `io` and `hugetlb` when the limits ask
//! for them. v1-only settings are ignored as runc ignores them (swappiness, kernel
//! memory, `disableOOMKiller`) or refused with [`CgroupError::Unsupported`] when v2 has
//! nothing like them (realtime CPU, leaf weights, network classes).

use std::path::{Path, PathBuf};

use super::{
    blkio_weight_to_io_weight, first_present, make_dir_all, read_file, read_keyed, read_procs,
    read_u64, remove_dir, shares_to_weight, wait_until, write_file, BlockIo, CgroupError,
    CgroupManager, CgroupVersion, Limits, Result, Stats,
};
use crate::devices::DeviceRule;

/// v2 controllers enabled for every container's subtree when the root offers them.
pub const V2_CONTROLLERS: [&str; 3] = ["cpu", "memory", "pids"];

/// cgroup v2: one directory, `<root>/<parent>/<id>`.
#[derive(Debug, Clone)]
pub struct V2 {
    root: PathBuf,
    parent: PathBuf,
    dir: PathBuf,
    /// Controllers to enable down to the parent: [`V2_CONTROLLERS`] and those the limits
    /// need.
    wanted: Vec<&'static str>,
}

impl V2 {
    /// The manager enabling [`V2_CONTROLLERS`].
    pub fn new(root: &Path, parent: &str, id: &str) -> V2 {
        let parent = root.join(parent);
        V2 {
            root: root.to_owned(),
            dir: parent.join(id),
            parent,
            wanted: V2_CONTROLLERS.to_vec(),
        }
    }

    /// The manager enabling [`V2_CONTROLLERS`] and what `limits` need besides.
    pub fn with_limits(root: &Path, parent: &str, id: &str, limits: &Limits) -> V2 {
        let mut m = V2::new(root, parent, id);
        for h in limits.v1_hierarchies() {
            let c = match h {
                "cpuset" => "cpuset",
                "blkio" => "io",
                "hugetlb" => "hugetlb",
                _ => continue,
            };
            m.wanted.push(c);
        }
        m
    }

    /// Controllers the root offers, among the wanted ones.
    fn available(&self) -> Result<Vec<&'static str>> {
        let text = read_file(&self.root.join("cgroup.controllers"))?;
        let offered: Vec<&str> = text.split_whitespace().collect();
        Ok(self
            .wanted
            .iter()
            .copied()
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
    pub(super) fn to_enable<'a>(subtree_control: &str, wanted: &[&'a str]) -> Vec<&'a str> {
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

    fn apply_memory(&self, l: &Limits) -> Result<()> {
        let m = &l.extra.memory;
        if let Some(bytes) = l.memory_bytes {
            write_file(
                &self.need("memory.max", "memory", "memory")?,
                &bytes.to_string(),
            )?;
            let swap = self.dir.join("memory.swap.max");
            match m.swap {
                // No swap, as on v1 (memory + swap = the limit).
                None => super::write_if_present(&swap, "0")?,
                Some(-1) => super::write_if_present(&swap, "max")?,
                // `check` made sure swap >= limit.
                Some(total) => {
                    let path = super::present(
                        swap,
                        "memory.swap",
                        "the kernel does no swap accounting: boot it with swapaccount=1",
                    )?;
                    write_file(&path, &(total as u64 - bytes).to_string())?;
                }
            }
        }
        if let Some(r) = m.reservation {
            let value = if r < 0 {
                "max".to_owned()
            } else {
                r.to_string()
            };
            write_file(
                &self.need("memory.low", "memory reservation", "memory")?,
                &value,
            )?;
        }
        Ok(())
    }

    fn apply_cpu(&self, l: &Limits) -> Result<()> {
        let c = &l.extra.cpu;
        if let Some(shares) = l.cpu_shares {
            let path = self.need("cpu.weight", "cpu", "cpu")?;
            write_file(&path, &shares_to_weight(shares).to_string())?;
        }
        let max = match (l.cpu_quota, c.period) {
            (Some(q), _) => Some(format!("{} {}", q.quota_us, q.period_us)),
            (None, Some(period)) => Some(format!("max {period}")),
            (None, None) => None,
        };
        if let Some(max) = max {
            write_file(&self.need("cpu.max", "cpu quota", "cpu")?, &max)?;
        }
        if c.realtime_period.is_some() || c.realtime_runtime.is_some() {
            return Err(CgroupError::Unsupported {
                setting: "cpu.realtimePeriod/realtimeRuntime",
                why: "cgroup v2 has no realtime CPU bandwidth".into(),
            });
        }
        if let Some(cpus) = &c.cpus {
            write_file(&self.need("cpuset.cpus", "cpuset", "cpuset")?, cpus)?;
        }
        if let Some(mems) = &c.mems {
            write_file(&self.need("cpuset.mems", "cpuset", "cpuset")?, mems)?;
        }
        Ok(())
    }

    /// `io.bfq.weight` takes the v1 weight as it is (BFQ's own scale), `io.weight` the
    /// mapped one; `io.max` takes the four throttles per device.
    fn apply_io(&self, b: &BlockIo) -> Result<()> {
        if *b == BlockIo::default() {
            return Ok(());
        }
        let dir = &self.dir;
        if !dir.join("io.max").exists() && !dir.join("io.weight").exists() {
            self.need("io.max", "block I/O", "io")?;
        }
        let leaf =
            b.leaf_weight.is_some() || b.weight_devices.iter().any(|d| d.leaf_weight.is_some());
        if leaf {
            return Err(CgroupError::Unsupported {
                setting: "blockIO.leafWeight",
                why: "cgroup v2 has no leaf weights".into(),
            });
        }
        let weight_files = [dir.join("io.bfq.weight"), dir.join("io.weight")];
        let no_weights = "the kernel's I/O schedulers have no weights (BFQ or io.cost)";
        let line = |path: &Path, prefix: &str, w: u16| -> String {
            if path.ends_with("io.bfq.weight") {
                format!("{prefix}{w}")
            } else {
                format!("{prefix}{}", blkio_weight_to_io_weight(w))
            }
        };
        if let Some(w) = b.weight {
            let path = first_present(&weight_files, "blockIO.weight", no_weights)?;
            write_file(&path, &line(&path, "", w))?;
        }
        for d in &b.weight_devices {
            if let Some(w) = d.weight {
                let path = first_present(&weight_files, "blockIO.weightDevice", no_weights)?;
                let value = line(&path, &format!("{}:{} ", d.major, d.minor), w);
                super::write_device_line(&path, &value, "blockIO.weightDevice")?;
            }
        }
        let throttles = [
            ("rbps", &b.throttle_read_bps),
            ("wbps", &b.throttle_write_bps),
            ("riops", &b.throttle_read_iops),
            ("wiops", &b.throttle_write_iops),
        ];
        for (key, devices) in throttles {
            for d in devices {
                let path = self.need("io.max", "block I/O throttle", "io")?;
                let value = format!("{}:{} {key}={}", d.major, d.minor, d.rate);
                super::write_device_line(&path, &value, "blockIO throttle")?;
            }
        }
        Ok(())
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

    fn apply(&self, l: &Limits) -> Result<()> {
        l.check()?;
        self.apply_memory(l)?;
        if let Some(max) = l.pids_max {
            write_file(&self.need("pids.max", "pids", "pids")?, &max.to_string())?;
        }
        self.apply_cpu(l)?;
        self.apply_io(&l.extra.block_io)?;
        for h in &l.extra.hugepages {
            let name = format!("hugetlb.{}.max", h.page_size);
            let file = self.need(&name, "huge page", "hugetlb")?;
            write_file(&file, &h.limit.to_string())?;
        }
        let n = &l.extra.network;
        if n.class_id.is_some() || !n.priorities.is_empty() {
            return Err(CgroupError::Unsupported {
                setting: "network (classID, priorities)",
                why: "cgroup v2 has no net_cls or net_prio controller (match the cgroup \
                      path in nftables or eBPF instead)"
                    .into(),
            });
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
