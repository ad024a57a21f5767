//! OCI `linux.resources` on the host's real cgroups (needs root): a container with
//! memory, CPU, cpuset, block I/O and pids settings, read back from the control files
//! the kernel keeps, and the clear errors for what the host lacks.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use common::{need_root, Fixture};
use paas_runtime::cgroup::{HugepageLimit, ThrottleDevice};
use paas_runtime::{ContainerOptions, CpuQuota, Error, ExtraResources, Resources};

fn read(p: &Path) -> String {
    fs::read_to_string(p)
        .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        .trim()
        .to_owned()
}

/// A whole disk of this host (not loop/ram/zram): its major:minor, for a throttle rule,
/// and the I/O schedulers it offers (`none [mq-deadline] kyber bfq`).
fn a_disk() -> Option<((u32, u32), String)> {
    let mut names: Vec<String> = fs::read_dir("/sys/block")
        .ok()?
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| {
            !["loop", "ram", "zram", "nbd"]
                .iter()
                .any(|p| n.starts_with(p))
        })
        .collect();
    names.sort();
    let name = names.first()?;
    let dev = fs::read_to_string(format!("/sys/block/{name}/dev")).ok()?;
    let schedulers =
        fs::read_to_string(format!("/sys/block/{name}/queue/scheduler")).unwrap_or_default();
    let (a, b) = dev.trim().split_once(':')?;
    Some(((a.parse().ok()?, b.parse().ok()?), schedulers))
}

/// A block major number no driver of this host registered (`/proc/devices`).
fn unused_block_major() -> u32 {
    let devices = fs::read_to_string("/proc/devices").unwrap();
    let (_, block) = devices.split_once("Block devices:").unwrap();
    let used: Vec<u32> = block
        .lines()
        .filter_map(|l| l.split_whitespace().next()?.parse().ok())
        .collect();
    (200..).find(|m| !used.contains(m)).unwrap()
}

#[test]
fn oci_resources_reach_the_real_cgroup_files() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let root = f.config.cgroup_root.clone();
    let v2 = root.join("cgroup.controllers").exists();
    let mut spec = f.spec(&["sleep", "1000"]);
    spec.resources = Resources {
        memory_bytes: Some(64 << 20),
        pids_max: Some(50),
        cpu_shares: Some(512),
    };
    let mut x = ExtraResources::default();
    x.memory.reservation = Some(32 << 20);
    x.memory.swappiness = Some(10);
    x.memory.disable_oom_killer = true;
    x.memory.kernel_tcp = Some(16 << 20);
    let memsw = root.join("memory/memory.memsw.limit_in_bytes").exists();
    if memsw {
        x.memory.swap = Some(96 << 20);
    }
    x.cpu.cpus = Some("0".into());
    x.cpu.mems = Some("0".into());
    let disk = a_disk();
    if let Some(((major, minor), _)) = disk {
        x.block_io.throttle_read_bps.push(ThrottleDevice {
            major,
            minor,
            rate: 1 << 20,
        });
    }
    // BFQ (or the old CFQ) loaded: the cgroup has a weight file.
    let weights = disk
        .as_ref()
        .is_some_and(|(_, s)| s.contains("bfq") || s.contains("cfq"));
    if weights {
        x.block_io.weight = Some(500);
    }
    let opts = ContainerOptions {
        cpu_quota: Some(CpuQuota {
            quota_us: 50_000,
            period_us: 100_000,
        }),
        extra_resources: x,
        ..ContainerOptions::default()
    };
    let state = f.rt.create_with(&spec, &opts).unwrap();
    let parent = &f.config.cgroup_parent;
    let dir = |h: &str| -> PathBuf {
        match v2 {
            true => root.join(parent).join(&spec.id),
            false => root.join(h).join(parent).join(&spec.id),
        }
    };
    // The kernel's own view of the init: only CPU 0.
    let status = read(Path::new(&format!("/proc/{}/status", state.pid)));
    assert!(
        status
            .lines()
            .any(|l| l.split_whitespace().collect::<Vec<_>>() == ["Cpus_allowed_list:", "0"]),
        "{status}"
    );
    let disk_line = disk.map(|((a, b), _)| format!("{a}:{b}"));
    if v2 {
        let d = dir("");
        assert_eq!(read(&d.join("memory.low")), "33554432");
        assert_eq!(read(&d.join("cpu.max")), "50000 100000");
        assert_eq!(read(&d.join("cpuset.cpus")), "0");
        if let Some(dev) = disk_line {
            assert!(read(&d.join("io.max")).contains(&format!("{dev} rbps=1048576")));
        }
    } else {
        let mem = dir("memory");
        assert_eq!(read(&mem.join("memory.limit_in_bytes")), "67108864");
        assert_eq!(read(&mem.join("memory.soft_limit_in_bytes")), "33554432");
        assert_eq!(read(&mem.join("memory.swappiness")), "10");
        assert!(read(&mem.join("memory.oom_control")).starts_with("oom_kill_disable 1"));
        if mem.join("memory.kmem.tcp.limit_in_bytes").exists() {
            assert_eq!(
                read(&mem.join("memory.kmem.tcp.limit_in_bytes")),
                "16777216"
            );
        }
        if memsw {
            assert_eq!(read(&mem.join("memory.memsw.limit_in_bytes")), "100663296");
        }
        assert_eq!(read(&dir("cpu").join("cpu.cfs_quota_us")), "50000");
        assert_eq!(read(&dir("cpuset").join("cpuset.cpus")), "0");
        assert_eq!(read(&dir("cpuset").join("cpuset.mems")), "0");
        // The parent got the root's CPUs, so it could hand "0" down.
        let root_cpus = read(&root.join("cpuset/cpuset.cpus"));
        assert_eq!(
            read(&root.join("cpuset").join(parent).join("cpuset.cpus")),
            root_cpus
        );
        if let Some(dev) = &disk_line {
            let file = dir("blkio").join("blkio.throttle.read_bps_device");
            assert_eq!(read(&file), format!("{dev} 1048576"));
        }
        if weights {
            let cfq = dir("blkio").join("blkio.weight");
            let file = if cfq.exists() {
                cfq
            } else {
                dir("blkio").join("blkio.bfq.weight")
            };
            assert_eq!(read(&file), "500");
        }
        // The init is in the cpuset and blkio cgroups, as /proc says.
        let cgroups = read(Path::new(&format!("/proc/{}/cgroup", state.pid)));
        let want = format!("/{parent}/{}", spec.id);
        for h in ["cpuset", "blkio", "memory", "cpu"] {
            let line = cgroups.lines().find(|l| {
                l.split(':')
                    .nth(1)
                    .is_some_and(|c| c.split(',').any(|c| c == h))
            });
            assert_eq!(
                line.and_then(|l| l.split(':').nth(2)),
                Some(want.as_str()),
                "{h}: {cgroups}"
            );
        }
    }
    let dirs = f.rt.cgroup_paths(&spec.id);
    assert!(dirs.iter().all(|d| d.exists()), "{dirs:?}");
    f.rt.delete(&spec.id, true).unwrap();
    assert!(
        dirs.iter().all(|d| !d.exists()),
        "delete removes every cgroup, cpuset too"
    );
}

#[test]
fn a_resource_the_host_lacks_fails_create_clearly_and_leaves_nothing() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let root = f.config.cgroup_root.clone();
    let v2 = root.join("cgroup.controllers").exists();
    let spec = f.spec(&["true"]);
    let mut x = ExtraResources::default();
    // No kernel has 3 MB pages: either the hugetlb hierarchy is missing, or its file.
    x.hugepages.push(HugepageLimit {
        page_size: "3MB".into(),
        limit: 3 << 20,
    });
    let opts = ContainerOptions {
        extra_resources: x,
        ..ContainerOptions::default()
    };
    let err = f.rt.create_with(&spec, &opts).unwrap_err();
    let msg = err.to_string();
    assert!(matches!(err, Error::InvalidSpec(_)), "{msg}");
    let hugetlb = if v2 {
        root.clone()
    } else {
        root.join("hugetlb")
    };
    if hugetlb.join("cgroup.procs").exists()
        && (!v2 || read(&root.join("cgroup.controllers")).contains("hugetlb"))
    {
        assert!(msg.contains("hugetlb.3MB."), "{msg}");
        assert!(msg.contains("huge page sizes are"), "{msg}");
    } else {
        assert!(msg.contains("hugetlb controller is not available"), "{msg}");
    }
    assert!(
        f.rt.list().unwrap().is_empty(),
        "nothing left in the state dir"
    );
    let left: Vec<PathBuf> = f
        .cgroup_parents()
        .iter()
        .filter_map(|p| fs::read_dir(p).ok())
        .flatten()
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    assert!(left.is_empty(), "no container cgroup left: {left:?}");

    // A throttle for a device the host does not have.
    if root.join("blkio/cgroup.procs").exists() || v2 {
        let mut x = ExtraResources::default();
        x.block_io.throttle_write_bps.push(ThrottleDevice {
            major: unused_block_major(),
            minor: 0,
            rate: 1024,
        });
        let opts = ContainerOptions {
            extra_resources: x,
            ..ContainerOptions::default()
        };
        let msg = f.rt.create_with(&spec, &opts).unwrap_err().to_string();
        assert!(msg.contains("is not a block device of this host"), "{msg}");
        assert!(f.rt.list().unwrap().is_empty());
    }
    // Leaf weights were CFQ's (gone since Linux 5.0): refused where it is missing.
    let no_cfq = a_disk().is_some_and(|(_, s)| !s.contains("cfq"));
    if root.join("blkio/cgroup.procs").exists() && no_cfq {
        let mut x = ExtraResources::default();
        x.block_io.leaf_weight = Some(300);
        let opts = ContainerOptions {
            extra_resources: x,
            ..ContainerOptions::default()
        };
        let msg = f.rt.create_with(&spec, &opts).unwrap_err().to_string();
        assert!(msg.contains("blockIO.leafWeight was asked for"), "{msg}");
        assert!(msg.contains("blkio.leaf_weight does not exist"), "{msg}");
        assert!(f.rt.list().unwrap().is_empty());
    }
}
