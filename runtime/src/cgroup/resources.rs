//! What a container's cgroup limits are. [`Limits`] gathers `ContainerSpec::resources`,
//! `ContainerOptions::cpu_quota` and [`ExtraResources`] (the rest of OCI
//! `linux.resources`: memory reservation/swap/swappiness/kernel/OOM killer, realtime CPU
//! and cpusets, block I/O, huge pages, network classes), checks what can be checked
//! without the kernel ([`Limits::check`]) and says which v1 hierarchies they need
//! ([`Limits::v1_hierarchies`]). The managers in `v1.rs`/`v2.rs` write them.

use serde::{Deserialize, Serialize};

use super::{CgroupError, Result};
use crate::{ContainerOptions, ContainerSpec, CpuQuota, Resources};

/// cgroup settings beyond [`Resources`] and [`CpuQuota`], as OCI `linux.resources` has
/// them. `Default` asks for nothing.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct ExtraResources {
    pub memory: MemoryExtra,
    pub cpu: CpuExtra,
    pub block_io: BlockIo,
    /// Huge page limits per page size (v1 `hugetlb.<size>.limit_in_bytes`, v2
    /// `hugetlb.<size>.max`).
    pub hugepages: Vec<HugepageLimit>,
    /// v1 only (`net_cls`, `net_prio`); refused on v2.
    pub network: NetworkLimits,
}

/// Memory settings besides the limit ([`Resources::memory_bytes`]).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct MemoryExtra {
    /// Soft limit in bytes (v1 `memory.soft_limit_in_bytes`, v2 `memory.low`); -1 = none.
    pub reservation: Option<i64>,
    /// Memory + swap in bytes, as OCI counts it (v1 `memory.memsw.limit_in_bytes`, v2
    /// `memory.swap.max` = swap - limit); -1 = unlimited swap. None with a memory limit
    /// means no swap at all (memory + swap = the limit).
    pub swap: Option<i64>,
    /// v1 `memory.swappiness`, 0..=100 (v2 has no such knob: ignored there).
    pub swappiness: Option<u64>,
    /// v1 `memory.kmem.limit_in_bytes`, only where the file exists (newer kernels accept
    /// and ignore it; v2 has none).
    pub kernel: Option<i64>,
    /// v1 `memory.kmem.tcp.limit_in_bytes`, only where the file exists.
    pub kernel_tcp: Option<i64>,
    /// v1 `memory.oom_control` = 1: tasks over the limit wait instead of being killed
    /// (v2 has no such knob: ignored there).
    pub disable_oom_killer: bool,
}

/// CPU settings besides shares and the quota.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct CpuExtra {
    /// CFS period without a quota (a [`CpuQuota`] carries its own).
    pub period: Option<u64>,
    /// v1 `cpu.rt_runtime_us` (needs `CONFIG_RT_GROUP_SCHED`; refused on v2).
    pub realtime_runtime: Option<i64>,
    /// v1 `cpu.rt_period_us` (same).
    pub realtime_period: Option<u64>,
    /// CPUs the tasks may run on, kernel list format (`0-3,6`): `cpuset.cpus`.
    pub cpus: Option<String>,
    /// Memory nodes, same format: `cpuset.mems`.
    pub mems: Option<String>,
}

/// A weight for one block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeightDevice {
    pub major: u32,
    pub minor: u32,
    pub weight: Option<u16>,
    pub leaf_weight: Option<u16>,
}

/// A bandwidth (bytes/s) or IOPS cap for one block device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThrottleDevice {
    pub major: u32,
    pub minor: u32,
    pub rate: u64,
}

/// Block I/O settings (v1 `blkio`, v2 `io`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct BlockIo {
    /// 10..=1000 (v1 `blkio.weight` or `blkio.bfq.weight`; v2 `io.bfq.weight`, or
    /// `io.weight` mapped onto 1..=10000).
    pub weight: Option<u16>,
    /// 10..=1000, v1 `blkio.leaf_weight` (CFQ only; refused on v2).
    pub leaf_weight: Option<u16>,
    pub weight_devices: Vec<WeightDevice>,
    pub throttle_read_bps: Vec<ThrottleDevice>,
    pub throttle_write_bps: Vec<ThrottleDevice>,
    pub throttle_read_iops: Vec<ThrottleDevice>,
    pub throttle_write_iops: Vec<ThrottleDevice>,
}

/// A limit on huge pages of one size.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HugepageLimit {
    /// As the kernel names them in the control files: `2MB`, `1GB`, `64KB`.
    pub page_size: String,
    /// Bytes.
    pub limit: u64,
}

/// A `net_prio` priority for one network interface.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfacePriority {
    pub name: String,
    pub priority: u32,
}

/// Network classes (cgroup v1 only).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct NetworkLimits {
    /// `net_cls.classid` (tc class of the tasks' packets).
    pub class_id: Option<u32>,
    /// `net_prio.ifpriomap` lines.
    pub priorities: Vec<InterfacePriority>,
}

/// Every limit of one container, as the managers' `apply` takes them.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Limits {
    pub memory_bytes: Option<u64>,
    pub pids_max: Option<u64>,
    /// v1 `cpu.shares` units.
    pub cpu_shares: Option<u64>,
    pub cpu_quota: Option<CpuQuota>,
    pub extra: ExtraResources,
}

impl From<&Resources> for Limits {
    fn from(r: &Resources) -> Limits {
        Limits {
            memory_bytes: r.memory_bytes,
            pids_max: r.pids_max,
            cpu_shares: r.cpu_shares,
            ..Limits::default()
        }
    }
}

fn invalid(setting: &'static str, why: impl Into<String>) -> CgroupError {
    CgroupError::Invalid {
        setting,
        why: why.into(),
    }
}

impl Limits {
    /// The limits of a container made from `spec` with `opts`.
    pub fn of(spec: &ContainerSpec, opts: &ContainerOptions) -> Limits {
        Limits {
            cpu_quota: opts.cpu_quota,
            extra: opts.extra_resources.clone(),
            ..Limits::from(&spec.resources)
        }
    }

    pub(crate) fn wants_memory(&self) -> bool {
        self.memory_bytes.is_some() || self.extra.memory != MemoryExtra::default()
    }

    pub(crate) fn wants_cpu(&self) -> bool {
        let c = &self.extra.cpu;
        self.cpu_shares.is_some()
            || self.cpu_quota.is_some()
            || c.period.is_some()
            || c.realtime_runtime.is_some()
            || c.realtime_period.is_some()
    }

    pub(crate) fn wants_cpuset(&self) -> bool {
        self.extra.cpu.cpus.is_some() || self.extra.cpu.mems.is_some()
    }

    /// The v1 hierarchies these limits write to (`devices` not included: the allow-list
    /// is not part of the limits).
    pub fn v1_hierarchies(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        let e = &self.extra;
        let wanted = [
            ("memory", self.wants_memory()),
            ("pids", self.pids_max.is_some()),
            ("cpu", self.wants_cpu()),
            ("cpuset", self.wants_cpuset()),
            ("blkio", e.block_io != BlockIo::default()),
            ("hugetlb", !e.hugepages.is_empty()),
            ("net_cls", e.network.class_id.is_some()),
            ("net_prio", !e.network.priorities.is_empty()),
        ];
        for (h, yes) in wanted {
            if yes {
                out.push(h);
            }
        }
        out
    }

    /// Refuses what no kernel would take, before anything is written: swappiness over
    /// 100, swap below the limit or without one, block I/O weights outside 10..=1000,
    /// CPU lists and page sizes and interface names that are not what the control files
    /// expect (they become file names or lines of those files).
    pub fn check(&self) -> Result<()> {
        let m = &self.extra.memory;
        if m.swappiness.is_some_and(|s| s > 100) {
            return Err(invalid(
                "memory.swappiness",
                format!("{} is over 100 (0..=100)", m.swappiness.unwrap_or(0)),
            ));
        }
        if let Some(swap) = m.swap.filter(|s| *s != -1) {
            match self.memory_bytes {
                None => {
                    return Err(invalid(
                        "memory.swap",
                        "a swap limit needs a memory limit (swap counts memory + swap): set \
                         memory.limit or use -1",
                    ))
                }
                Some(limit) if swap < 0 || (swap as u64) < limit => {
                    return Err(invalid(
                        "memory.swap",
                        format!(
                            "{swap} is below memory.limit {limit}; it is memory + swap, so \
                             at least the limit (or -1 for no swap limit)"
                        ),
                    ))
                }
                _ => {}
            }
        }
        for (what, list) in [
            ("cpu.cpus", &self.extra.cpu.cpus),
            ("cpu.mems", &self.extra.cpu.mems),
        ] {
            if let Some(l) = list {
                check_cpu_list(what, l)?;
            }
        }
        let b = &self.extra.block_io;
        let weights = [b.weight, b.leaf_weight].into_iter().chain(
            b.weight_devices
                .iter()
                .flat_map(|d| [d.weight, d.leaf_weight]),
        );
        for w in weights.flatten() {
            if !(10..=1000).contains(&w) {
                return Err(invalid(
                    "blockIO weight",
                    format!("{w} is outside 10..=1000"),
                ));
            }
        }
        for h in &self.extra.hugepages {
            check_page_size(&h.page_size)?;
        }
        for p in &self.extra.network.priorities {
            let ok = !p.name.is_empty()
                && p.name.len() < 16
                && !p
                    .name
                    .contains(|c: char| c.is_whitespace() || c == '/' || c == ':');
            if !ok {
                return Err(invalid(
                    "network.priorities",
                    format!(
                        "{:?} is not an interface name (1 to 15 characters, no spaces, '/' \
                         or ':')",
                        p.name
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// `0-3,6`: digits, `-` and `,` only.
fn check_cpu_list(what: &'static str, list: &str) -> Result<()> {
    let ok = !list.is_empty()
        && list.split(',').all(|part| {
            let mut ends = part.splitn(2, '-');
            ends.all(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        });
    if ok {
        Ok(())
    } else {
        Err(invalid(
            what,
            format!("{list:?} is not a list like \"0-3,6\""),
        ))
    }
}

/// `2MB`, `1GB`, `64KB`: a number and a unit, as in the control files' names.
pub(crate) fn check_page_size(size: &str) -> Result<()> {
    let digits = size.bytes().take_while(u8::is_ascii_digit).count();
    let unit = &size[digits..];
    if digits > 0 && ["B", "KB", "MB", "GB", "TB", "PB"].contains(&unit) {
        Ok(())
    } else {
        Err(invalid(
            "hugepageLimits.pageSize",
            format!("{size:?} is not a page size like \"2MB\" or \"1GB\""),
        ))
    }
}

/// The page sizes whose `hugetlb.<size>.<suffix>` files are in `dir`, for errors.
pub(crate) fn page_sizes(dir: &std::path::Path, suffix: &str) -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let size = name.strip_prefix("hugetlb.")?.strip_suffix(suffix)?;
            Some(size.trim_end_matches('.').to_owned())
        })
        .filter(|s| !s.contains('.'))
        .collect();
    out.sort();
    out
}

/// v1 block I/O weight (10..=1000) to v2 `io.weight` (1..=10000), as runc maps it.
pub fn blkio_weight_to_io_weight(weight: u16) -> u64 {
    let w = u64::from(weight.clamp(10, 1000));
    1 + (w - 10) * 9999 / 990
}
