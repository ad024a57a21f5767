//! Unit tests of the OCI resources ([`Limits`] with [`ExtraResources`]) on tempdir
//! fixtures: every control file each manager writes, the cpuset copy-down, which v1
//! hierarchies are joined, and the errors for missing files and bad values.
use super::*;
use crate::CpuQuota;

fn touch(path: &Path, content: &str) {
    fs::write(path, content).unwrap();
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap()
}

/// A v1 fixture: each hierarchy a dir with `cgroup.procs` and `files`.
fn v1_root(hierarchies: &[&str]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for h in hierarchies {
        fs::create_dir(root.path().join(h)).unwrap();
        touch(&root.path().join(h).join("cgroup.procs"), "");
    }
    root
}

/// Makes `dir` (and parents) with empty `files`, as the kernel would.
fn populate(dir: &Path, files: &[&str]) {
    fs::create_dir_all(dir).unwrap();
    for f in files {
        touch(&dir.join(f), "");
    }
}

/// Limits with every OCI resource set, one device per list (a fixture file keeps only
/// the last write).
fn everything() -> Limits {
    let mut l = Limits {
        memory_bytes: Some(50 << 20),
        pids_max: Some(99),
        cpu_shares: Some(2048),
        cpu_quota: Some(CpuQuota {
            quota_us: 200_000,
            period_us: 500_000,
        }),
        extra: ExtraResources::default(),
    };
    let e = &mut l.extra;
    e.memory = MemoryExtra {
        reservation: Some(40 << 20),
        swap: Some(60 << 20),
        swappiness: Some(10),
        kernel: Some(30 << 20),
        kernel_tcp: Some(20 << 20),
        disable_oom_killer: true,
    };
    e.cpu.realtime_period = Some(1_000_000);
    e.cpu.realtime_runtime = Some(950_000);
    e.cpu.cpus = Some("0-1".into());
    e.cpu.mems = Some("0".into());
    e.block_io = BlockIo {
        weight: Some(500),
        leaf_weight: Some(300),
        weight_devices: vec![WeightDevice {
            major: 8,
            minor: 0,
            weight: Some(600),
            leaf_weight: Some(200),
        }],
        throttle_read_bps: vec![ThrottleDevice {
            major: 8,
            minor: 0,
            rate: 102_400,
        }],
        throttle_write_bps: vec![ThrottleDevice {
            major: 8,
            minor: 16,
            rate: 204_800,
        }],
        throttle_read_iops: vec![ThrottleDevice {
            major: 254,
            minor: 0,
            rate: 300,
        }],
        throttle_write_iops: vec![ThrottleDevice {
            major: 254,
            minor: 1,
            rate: 400,
        }],
    };
    e.hugepages = vec![HugepageLimit {
        page_size: "2MB".into(),
        limit: 2 << 30,
    }];
    e.network = NetworkLimits {
        class_id: Some(0x10_0001),
        priorities: vec![InterfacePriority {
            name: "eth0".into(),
            priority: 30,
        }],
    };
    l
}

const V1_ALL: [&str; 13] = [
    "memory", "pids", "cpu", "cpuacct", "freezer", "devices", "systemd", "unified", "cpuset",
    "blkio", "hugetlb", "net_cls", "net_prio",
];

#[test]
fn v1_writes_every_oci_resource() {
    let root = v1_root(&V1_ALL);
    let r = root.path();
    touch(&r.join("cpuset/cpuset.cpus"), "0-3\n");
    touch(&r.join("cpuset/cpuset.mems"), "0\n");
    let limits = everything();
    let m = manager_with(r, "prt", "c1", &limits);
    let dir = |h: &str| r.join(h).join("prt/c1");
    let mut expected: Vec<PathBuf> = V1_CONTROLLERS.iter().map(|h| dir(h)).collect();
    expected.extend(V1_OPTIONAL.iter().map(|h| dir(h)));
    assert_eq!(
        m.paths(),
        expected,
        "the base hierarchies, then what the limits need"
    );
    // What the kernel puts in new dirs (the fixture can't): cpuset starts empty.
    populate(&r.join("cpuset/prt"), &["cpuset.cpus", "cpuset.mems"]);
    populate(&dir("cpuset"), &["cpuset.cpus", "cpuset.mems"]);
    m.create().unwrap();
    assert_eq!(
        read(&r.join("cpuset/prt/cpuset.cpus")),
        "0-3",
        "copied down"
    );
    assert_eq!(read(&dir("cpuset").join("cpuset.mems")), "0", "copied down");
    let files: [(&str, &[&str]); 7] = [
        (
            "memory",
            &[
                "memory.limit_in_bytes",
                "memory.memsw.limit_in_bytes",
                "memory.soft_limit_in_bytes",
                "memory.kmem.limit_in_bytes",
                "memory.kmem.tcp.limit_in_bytes",
                "memory.oom_control",
                "memory.swappiness",
            ],
        ),
        ("pids", &["pids.max"]),
        (
            "cpu",
            &[
                "cpu.shares",
                "cpu.cfs_period_us",
                "cpu.cfs_quota_us",
                "cpu.rt_period_us",
                "cpu.rt_runtime_us",
            ],
        ),
        (
            "blkio",
            &[
                "blkio.weight",
                "blkio.leaf_weight",
                "blkio.weight_device",
                "blkio.leaf_weight_device",
                "blkio.throttle.read_bps_device",
                "blkio.throttle.write_bps_device",
                "blkio.throttle.read_iops_device",
                "blkio.throttle.write_iops_device",
            ],
        ),
        (
            "hugetlb",
            &["hugetlb.2MB.limit_in_bytes", "hugetlb.1GB.limit_in_bytes"],
        ),
        ("net_cls", &["net_cls.classid"]),
        ("net_prio", &["net_prio.ifpriomap"]),
    ];
    for (h, list) in files {
        populate(&dir(h), list);
    }
    m.apply(&limits).unwrap();
    let want = [
        ("memory", "memory.limit_in_bytes", "52428800"),
        ("memory", "memory.memsw.limit_in_bytes", "62914560"),
        ("memory", "memory.soft_limit_in_bytes", "41943040"),
        ("memory", "memory.kmem.limit_in_bytes", "31457280"),
        ("memory", "memory.kmem.tcp.limit_in_bytes", "20971520"),
        ("memory", "memory.oom_control", "1"),
        ("memory", "memory.swappiness", "10"),
        ("pids", "pids.max", "99"),
        ("cpu", "cpu.shares", "2048"),
        ("cpu", "cpu.cfs_period_us", "500000"),
        ("cpu", "cpu.cfs_quota_us", "200000"),
        ("cpu", "cpu.rt_period_us", "1000000"),
        ("cpu", "cpu.rt_runtime_us", "950000"),
        ("cpuset", "cpuset.cpus", "0-1"),
        ("cpuset", "cpuset.mems", "0"),
        ("blkio", "blkio.weight", "500"),
        ("blkio", "blkio.leaf_weight", "300"),
        ("blkio", "blkio.weight_device", "8:0 600"),
        ("blkio", "blkio.leaf_weight_device", "8:0 200"),
        ("blkio", "blkio.throttle.read_bps_device", "8:0 102400"),
        ("blkio", "blkio.throttle.write_bps_device", "8:16 204800"),
        ("blkio", "blkio.throttle.read_iops_device", "254:0 300"),
        ("blkio", "blkio.throttle.write_iops_device", "254:1 400"),
        ("hugetlb", "hugetlb.2MB.limit_in_bytes", "2147483648"),
        ("hugetlb", "hugetlb.1GB.limit_in_bytes", ""),
        ("net_cls", "net_cls.classid", "1048577"),
        ("net_prio", "net_prio.ifpriomap", "eth0 30"),
    ];
    for (h, file, value) in want {
        assert_eq!(read(&dir(h).join(file)), value, "{h}/{file}");
    }
}

#[test]
fn v1_joins_optional_hierarchies_only_when_asked() {
    let root = v1_root(&V1_ALL);
    let r = root.path();
    let base: Vec<PathBuf> = V1_CONTROLLERS
        .iter()
        .map(|h| r.join(h).join("p/c"))
        .collect();
    assert_eq!(manager_with(r, "p", "c", &Limits::default()).paths(), base);
    let mut cpus = Limits::default();
    cpus.extra.cpu.cpus = Some("0".into());
    let with_cpuset = manager_with(r, "p", "c", &cpus).paths();
    assert_eq!(with_cpuset.len(), base.len() + 1);
    assert_eq!(with_cpuset.last(), Some(&r.join("cpuset/p/c")));
    // A CPU quota alone needs cpu, not cpuset.
    let quota = Limits {
        cpu_quota: Some(CpuQuota {
            quota_us: 1,
            period_us: 2,
        }),
        ..Limits::default()
    };
    assert_eq!(manager_with(r, "p", "c", &quota).paths(), base);
    // Minimal: only what the limits need.
    let mut huge = Limits::default();
    huge.extra.hugepages.push(HugepageLimit {
        page_size: "2MB".into(),
        limit: 1,
    });
    let m = manager_for_limits(r, "p", "c", &huge, false).unwrap();
    assert_eq!(m.paths(), vec![r.join("hugetlb/p/c")]);
    assert!(manager_for_limits(r, "p", "c", &Limits::default(), false).is_none());
    // Cleanup without the limits knows every hierarchy.
    assert_eq!(manager(r, "p", "c").paths().len(), V1_ALL.len());
}

#[test]
fn v1_comounted_net_cls_and_net_prio_share_one_dir() {
    let root = v1_root(&["net_cls,net_prio"]);
    let r = root.path();
    std::os::unix::fs::symlink("net_cls,net_prio", r.join("net_cls")).unwrap();
    std::os::unix::fs::symlink("net_cls,net_prio", r.join("net_prio")).unwrap();
    let mut l = Limits::default();
    l.extra.network = everything().extra.network;
    let m = manager_for_limits(r, "p", "c", &l, false).unwrap();
    assert_eq!(m.paths(), vec![r.join("net_cls/p/c")]);
    m.create().unwrap();
    populate(
        &r.join("net_cls/p/c"),
        &["net_cls.classid", "net_prio.ifpriomap"],
    );
    m.apply(&l).unwrap();
    let dir = r.join("net_cls,net_prio/p/c");
    assert_eq!(read(&dir.join("net_cls.classid")), "1048577");
    assert_eq!(read(&dir.join("net_prio.ifpriomap")), "eth0 30");
}

#[test]
fn v1_cpuset_dirs_get_their_parents_cpus_and_mems() {
    let root = v1_root(&["cpuset"]);
    let r = root.path();
    touch(&r.join("cpuset/cpuset.cpus"), "0-7\n");
    touch(&r.join("cpuset/cpuset.mems"), "0-1\n");
    // `a` was set up by someone else with fewer CPUs: kept, and passed down.
    populate(&r.join("cpuset/a"), &["cpuset.cpus", "cpuset.mems"]);
    touch(&r.join("cpuset/a/cpuset.cpus"), "2-3\n");
    for d in ["a/b", "a/b/c"] {
        populate(&r.join("cpuset").join(d), &["cpuset.cpus", "cpuset.mems"]);
    }
    let mut l = Limits::default();
    l.extra.cpu.mems = Some("1".into());
    let m = manager_with(r, "a/b", "c", &l);
    m.create().unwrap();
    assert_eq!(
        read(&r.join("cpuset/a/cpuset.cpus")),
        "2-3\n",
        "not rewritten"
    );
    assert_eq!(read(&r.join("cpuset/a/cpuset.mems")), "0-1");
    assert_eq!(read(&r.join("cpuset/a/b/cpuset.cpus")), "2-3");
    assert_eq!(read(&r.join("cpuset/a/b/c/cpuset.cpus")), "2-3");
    m.apply(&l).unwrap();
    assert_eq!(read(&r.join("cpuset/a/b/c/cpuset.mems")), "1");
    assert_eq!(
        read(&r.join("cpuset/a/b/c/cpuset.cpus")),
        "2-3",
        "cpus not asked"
    );
}

/// A created v1 container dir with `files` under each of `hierarchies`.
fn v1_made(
    hierarchies: &[&str],
    files: &[&str],
    l: &Limits,
) -> (tempfile::TempDir, Box<dyn CgroupManager>) {
    let root = v1_root(hierarchies);
    let m = manager_for_limits(root.path(), "p", "c", l, false).unwrap();
    m.create().unwrap();
    for h in hierarchies {
        populate(&root.path().join(h).join("p/c"), files);
    }
    (root, m)
}

#[test]
fn v1_files_the_kernel_lacks_fail_only_when_asked_for() {
    // blkio without CFQ/BFQ (this dev VM): throttling works, weights are refused.
    let throttle_files = ["blkio.throttle.read_bps_device"];
    let mut l = Limits::default();
    l.extra.block_io.throttle_read_bps = everything().extra.block_io.throttle_read_bps;
    let (_root, m) = v1_made(&["blkio"], &throttle_files, &l);
    m.apply(&l).unwrap();
    l.extra.block_io.weight = Some(500);
    let err = m.apply(&l).unwrap_err().to_string();
    assert!(err.contains("blockIO.weight was asked for"), "{err}");
    assert!(err.contains("blkio.weight nor"), "{err}");
    assert!(err.contains("CFQ or BFQ"), "{err}");
    // Realtime without CONFIG_RT_GROUP_SCHED.
    let mut l = Limits::default();
    l.extra.cpu.realtime_runtime = Some(1000);
    let (_root, m) = v1_made(&["cpu"], &["cpu.shares"], &l);
    let err = m.apply(&l).unwrap_err();
    assert!(matches!(
        err,
        CgroupError::Unsupported {
            setting: "cpu.realtimeRuntime",
            ..
        }
    ));
    assert!(err.to_string().contains("CONFIG_RT_GROUP_SCHED"), "{err}");
    // A huge page size the kernel does not have: the error lists those it has.
    let mut l = Limits::default();
    l.extra.hugepages.push(HugepageLimit {
        page_size: "3MB".into(),
        limit: 1,
    });
    let files = [
        "hugetlb.2MB.limit_in_bytes",
        "hugetlb.2MB.rsvd.limit_in_bytes",
        "hugetlb.1GB.limit_in_bytes",
    ];
    let (_root, m) = v1_made(&["hugetlb"], &files, &l);
    let err = m.apply(&l).unwrap_err().to_string();
    assert!(
        err.contains("hugetlb.3MB.limit_in_bytes does not exist"),
        "{err}"
    );
    assert!(err.contains("huge page sizes are: 1GB, 2MB"), "{err}");
    // No swap accounting: an explicit swap limit fails, the defaults and -1 do not;
    // no kmem files: the kernel limits are skipped.
    let mut l = Limits {
        memory_bytes: Some(1 << 20),
        ..Limits::default()
    };
    l.extra.memory.kernel = Some(1 << 20);
    let (root, m) = v1_made(&["memory"], &["memory.limit_in_bytes"], &l);
    m.apply(&l).unwrap();
    l.extra.memory.swap = Some(-1);
    m.apply(&l).unwrap();
    let dir = root.path().join("memory/p/c");
    assert!(!dir.join("memory.memsw.limit_in_bytes").exists());
    assert!(!dir.join("memory.kmem.limit_in_bytes").exists());
    l.extra.memory.swap = Some(2 << 20);
    let err = m.apply(&l).unwrap_err().to_string();
    assert!(err.contains("swapaccount=1"), "{err}");
    let converted: crate::Error = m.apply(&l).unwrap_err().into();
    assert!(
        matches!(converted, crate::Error::InvalidSpec(_)),
        "{converted}"
    );
}

#[test]
fn v1_missing_hierarchy_is_a_missing_controller() {
    let root = v1_root(&["memory"]);
    let mut l = Limits::default();
    l.extra.network.class_id = Some(1);
    // The full manager joins what is mounted; net_cls is not.
    let m = manager_with(root.path(), "p", "c", &l);
    m.create().unwrap();
    let err = m.apply(&l).unwrap_err();
    assert!(
        matches!(
            err,
            CgroupError::MissingController {
                controller: "net_cls",
                ..
            }
        ),
        "{err}"
    );
    assert!(err
        .to_string()
        .contains("net_cls controller is not available"));
}

/// One change to a [`Limits`].
type Change = Box<dyn Fn(&mut Limits)>;

#[test]
fn limits_are_checked_before_anything_is_written() {
    let base = Limits {
        memory_bytes: Some(4 << 20),
        ..Limits::default()
    };
    let bad: Vec<(&str, Change)> = vec![
        (
            "over 100",
            Box::new(|l| l.extra.memory.swappiness = Some(101)),
        ),
        (
            "below memory.limit",
            Box::new(|l| l.extra.memory.swap = Some(1 << 20)),
        ),
        (
            "needs a memory limit",
            Box::new(|l| {
                l.memory_bytes = None;
                l.extra.memory.swap = Some(8 << 20);
            }),
        ),
        (
            "outside 10..=1000",
            Box::new(|l| l.extra.block_io.weight = Some(5)),
        ),
        (
            "outside 10..=1000",
            Box::new(|l| {
                l.extra.block_io.weight_devices.push(WeightDevice {
                    major: 8,
                    minor: 0,
                    weight: None,
                    leaf_weight: Some(1001),
                })
            }),
        ),
        (
            "not a list",
            Box::new(|l| l.extra.cpu.cpus = Some("0-a".into())),
        ),
        (
            "not a list",
            Box::new(|l| l.extra.cpu.mems = Some("0\n1".into())),
        ),
        (
            "not a page size",
            Box::new(|l| {
                l.extra.hugepages.push(HugepageLimit {
                    page_size: "../../x".into(),
                    limit: 1,
                })
            }),
        ),
        (
            "not an interface name",
            Box::new(|l| {
                l.extra.network.priorities.push(InterfacePriority {
                    name: "eth0 1\nlo".into(),
                    priority: 1,
                })
            }),
        ),
    ];
    let root = v1_root(&["memory"]);
    let m = manager_for_limits(root.path(), "p", "c", &base, false).unwrap();
    m.create().unwrap();
    let limit = root.path().join("memory/p/c/memory.limit_in_bytes");
    for (why, change) in bad {
        let mut l = base.clone();
        change(&mut l);
        touch(&limit, "untouched");
        let err = m.apply(&l).unwrap_err();
        assert!(matches!(err, CgroupError::Invalid { .. }), "{why}: {err}");
        assert!(err.to_string().contains(why), "{why}: {err}");
        assert_eq!(read(&limit), "untouched", "{why}");
    }
    let mut ok = base.clone();
    ok.extra.memory.swap = Some(4 << 20);
    ok.extra.cpu.cpus = Some("0-3,6".into());
    ok.check().unwrap();
}

/// A v2 fixture offering `offered`, with the parent made ahead (the kernel would put
/// `cgroup.subtree_control` in it).
fn v2_root(offered: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    touch(&root.path().join("cgroup.controllers"), offered);
    populate(root.path(), &["cgroup.subtree_control"]);
    populate(&root.path().join("prt"), &["cgroup.subtree_control"]);
    root
}

#[test]
fn v2_writes_the_oci_resources_it_has_and_enables_their_controllers() {
    let root = v2_root("cpuset cpu io memory hugetlb pids");
    let mut l = everything();
    // v1-only knobs v2 has nothing for are refused (see below): leave them out here.
    l.extra.cpu.realtime_period = None;
    l.extra.cpu.realtime_runtime = None;
    l.extra.block_io.leaf_weight = None;
    l.extra.block_io.weight_devices[0].leaf_weight = None;
    l.extra.network = NetworkLimits::default();
    let m = manager_with(root.path(), "prt", "c1", &l);
    m.create().unwrap();
    // One write per controller, the optional ones last (a plain file keeps the last).
    assert_eq!(
        read(&root.path().join("prt/cgroup.subtree_control")),
        "+hugetlb"
    );
    let dir = root.path().join("prt/c1");
    populate(
        &dir,
        &[
            "memory.max",
            "memory.swap.max",
            "memory.low",
            "pids.max",
            "cpu.weight",
            "cpu.max",
            "cpuset.cpus",
            "cpuset.mems",
            "io.weight",
            "io.max",
            "hugetlb.2MB.max",
        ],
    );
    m.apply(&l).unwrap();
    let want = [
        ("memory.max", "52428800"),
        ("memory.swap.max", "10485760"),
        ("memory.low", "41943040"),
        ("pids.max", "99"),
        ("cpu.weight", "79"),
        ("cpu.max", "200000 500000"),
        ("cpuset.cpus", "0-1"),
        ("cpuset.mems", "0"),
        ("io.weight", "8:0 5960"),
        ("io.max", "254:1 wiops=400"),
        ("hugetlb.2MB.max", "2147483648"),
    ];
    for (file, value) in want {
        assert_eq!(read(&dir.join(file)), value, "{file}");
    }
    // With BFQ the weight goes there as it is.
    touch(&dir.join("io.bfq.weight"), "");
    let mut only_weight = Limits::default();
    only_weight.extra.block_io.weight = Some(500);
    m.apply(&only_weight).unwrap();
    assert_eq!(read(&dir.join("io.bfq.weight")), "500");
    // A period alone; swap -1 is unlimited; a negative reservation is none.
    let mut l = Limits {
        memory_bytes: Some(1 << 20),
        ..Limits::default()
    };
    l.extra.cpu.period = Some(250_000);
    l.extra.memory.swap = Some(-1);
    l.extra.memory.reservation = Some(-1);
    m.apply(&l).unwrap();
    assert_eq!(read(&dir.join("cpu.max")), "max 250000");
    assert_eq!(read(&dir.join("memory.swap.max")), "max");
    assert_eq!(read(&dir.join("memory.low")), "max");
}

#[test]
fn v2_refuses_what_only_v1_has_and_ignores_v1_tuning() {
    let root = v2_root("cpu memory pids");
    let l = Limits::default();
    let m = manager_with(root.path(), "prt", "c2", &l);
    m.create().unwrap();
    let dir = root.path().join("prt/c2");
    populate(&dir, &["memory.max", "cpu.max", "io.max"]);
    let refused: [(&str, Change); 3] = [
        ("network", Box::new(|l| l.extra.network.class_id = Some(7))),
        (
            "realtime",
            Box::new(|l| l.extra.cpu.realtime_runtime = Some(1)),
        ),
        (
            "leafWeight",
            Box::new(|l| l.extra.block_io.leaf_weight = Some(100)),
        ),
    ];
    for (what, change) in refused {
        let mut l = Limits::default();
        change(&mut l);
        let err = m.apply(&l).unwrap_err();
        assert!(
            matches!(err, CgroupError::Unsupported { .. }),
            "{what}: {err}"
        );
        assert!(
            err.to_string().contains("cgroup v2 has no"),
            "{what}: {err}"
        );
    }
    let mut tuning = Limits {
        memory_bytes: Some(1 << 20),
        ..Limits::default()
    };
    tuning.extra.memory.swappiness = Some(0);
    tuning.extra.memory.kernel = Some(1 << 20);
    tuning.extra.memory.disable_oom_killer = true;
    m.apply(&tuning).unwrap();
    assert_eq!(read(&dir.join("memory.max")), "1048576");
    // cpuset not offered: a clear missing controller.
    let mut l = Limits::default();
    l.extra.cpu.cpus = Some("0".into());
    let err = m.apply(&l).unwrap_err().to_string();
    assert!(err.contains("cpuset controller is not available"), "{err}");
}

#[test]
fn blkio_weights_map_onto_io_weights() {
    assert_eq!(blkio_weight_to_io_weight(10), 1);
    assert_eq!(blkio_weight_to_io_weight(500), 4950);
    assert_eq!(blkio_weight_to_io_weight(1000), 10_000);
    assert_eq!(blkio_weight_to_io_weight(1), 1);
}

#[test]
fn an_oci_config_maps_onto_the_limits() {
    let json = serde_json::json!({
        "ociVersion": "1.0.2",
        "root": {"path": "rootfs"},
        "process": {"args": ["sh"], "cwd": "/", "user": {"uid": 0, "gid": 0}},
        "linux": {"resources": {
            "memory": {"limit": 52428800, "reservation": 41943040, "swap": -1,
                       "kernel": 0, "kernelTCP": 1048576, "swappiness": 10,
                       "disableOOMKiller": true},
            "cpu": {"shares": 1024, "period": 100000, "realtimePeriod": 1000000,
                    "realtimeRuntime": 950000, "cpus": "0-1", "mems": ""},
            "blockIO": {"weight": 500, "leafWeight": 0,
                        "weightDevice": [{"major": 8, "minor": 0, "weight": 600}],
                        "throttleReadBpsDevice": [{"major": 8, "minor": 0, "rate": 1024}],
                        "throttleWriteIOPSDevice": [{"major": 254, "minor": 0, "rate": 7}]},
            "hugepageLimits": [{"pageSize": "2MB", "limit": 4194304}],
            "network": {"classID": 1048577, "priorities": [{"name": "lo", "priority": 3}]},
            "unified": {"memory.high": "1000000"}
        }}
    });
    let spec: oci_spec::runtime::Spec = serde_json::from_value(json).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut warnings = Vec::new();
    let (c, o) = crate::oci::convert(&spec, dir.path(), "box", &mut warnings).unwrap();
    assert_eq!(c.resources.memory_bytes, Some(52_428_800));
    assert_eq!(o.cpu_quota, None, "no quota");
    let x = o.extra_resources;
    assert_eq!(
        x.memory,
        MemoryExtra {
            reservation: Some(41_943_040),
            swap: Some(-1),
            swappiness: Some(10),
            kernel: None,
            kernel_tcp: Some(1_048_576),
            disable_oom_killer: true,
        }
    );
    assert_eq!(
        x.cpu,
        CpuExtra {
            period: Some(100_000),
            realtime_runtime: Some(950_000),
            realtime_period: Some(1_000_000),
            cpus: Some("0-1".into()),
            mems: None,
        }
    );
    assert_eq!(x.block_io.weight, Some(500));
    assert_eq!(x.block_io.leaf_weight, None, "0 is unset, as in runc");
    assert_eq!(
        x.block_io.weight_devices,
        vec![WeightDevice {
            major: 8,
            minor: 0,
            weight: Some(600),
            leaf_weight: None
        }]
    );
    assert_eq!(x.block_io.throttle_read_bps[0].rate, 1024);
    assert_eq!(x.block_io.throttle_write_iops[0].major, 254);
    assert_eq!(x.hugepages[0].page_size, "2MB");
    assert_eq!(x.network.class_id, Some(1_048_577));
    assert_eq!(x.network.priorities[0].name, "lo");
    assert!(
        warnings.iter().any(|w| w.contains("unified")),
        "{warnings:?}"
    );
}
