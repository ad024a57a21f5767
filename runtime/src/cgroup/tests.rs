//! Unit tests of the cgroup managers on tempdir fixtures (no root needed).
use super::*;
use crate::Resources;

fn touch(path: &Path, content: &str) {
    fs::write(path, content).unwrap();
}

/// A v1 fixture with the given controller hierarchies (plain directories).
fn v1_root(controllers: &[&str]) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    for c in controllers {
        fs::create_dir(root.path().join(c)).unwrap();
        touch(&root.path().join(c).join("cgroup.procs"), "");
    }
    root
}

/// What the kernel would put in a fresh v1 cgroup dir.
fn v1_populate(m: &V1, with_memsw: bool) {
    for (c, dir) in &m.dirs {
        touch(&dir.join("cgroup.procs"), "");
        let files: &[&str] = match *c {
            "memory" if with_memsw => &[
                "memory.limit_in_bytes",
                "memory.memsw.limit_in_bytes",
                "memory.oom_control",
            ],
            "memory" => &["memory.limit_in_bytes", "memory.oom_control"],
            "pids" => &["pids.max"],
            "cpu" => &["cpu.shares"],
            _ => &[],
        };
        for f in files {
            touch(&dir.join(f), "");
        }
    }
}

#[test]
fn detects_v1_and_v2() {
    let root = tempfile::tempdir().unwrap();
    assert_eq!(detect(root.path()), CgroupVersion::V1);
    fs::create_dir(root.path().join("unified")).unwrap();
    touch(&root.path().join("unified/cgroup.controllers"), "");
    assert_eq!(detect(root.path()), CgroupVersion::V1, "hybrid is v1");
    touch(&root.path().join("cgroup.controllers"), "cpu memory pids");
    assert_eq!(detect(root.path()), CgroupVersion::V2);
}

#[test]
fn v1_writes_limits_and_joins_every_hierarchy() {
    let all = [
        "memory", "pids", "cpu", "cpuacct", "freezer", "devices", "systemd", "unified",
    ];
    let root = v1_root(&[&all[..], &["cpuset", "blkio"]].concat());
    let m = V1::new(root.path(), "prt", "c1");
    m.create().unwrap();
    let expected: Vec<PathBuf> = all
        .iter()
        .map(|c| root.path().join(c).join("prt/c1"))
        .collect();
    assert_eq!(m.paths(), expected);
    assert!(!root.path().join("cpuset/prt").exists());
    assert!(!root.path().join("blkio/prt").exists());
    v1_populate(&m, true);
    let dev = root.path().join("devices/prt/c1");
    touch(&dev.join("devices.allow"), "");
    touch(&dev.join("devices.deny"), "");
    let (allow, rules) = crate::devices::effective(&crate::devices::default_rules(), &[]).unwrap();
    m.set_devices(allow, &rules).unwrap();
    // The fixture keeps only the last write of each file (O_TRUNC).
    assert_eq!(fs::read_to_string(dev.join("devices.deny")).unwrap(), "a");
    assert_eq!(
        fs::read_to_string(dev.join("devices.allow")).unwrap(),
        "c 136:* rwm"
    );

    let res = Resources {
        memory_bytes: Some(64 << 20),
        pids_max: Some(100),
        cpu_shares: Some(512),
    };
    m.apply(&Limits::from(&res)).unwrap();
    let mem = root.path().join("memory/prt/c1");
    assert_eq!(
        fs::read_to_string(mem.join("memory.limit_in_bytes")).unwrap(),
        "67108864"
    );
    assert_eq!(
        fs::read_to_string(mem.join("memory.memsw.limit_in_bytes")).unwrap(),
        "67108864"
    );
    let pids = root.path().join("pids/prt/c1/pids.max");
    assert_eq!(fs::read_to_string(pids).unwrap(), "100");
    let shares = root.path().join("cpu/prt/c1/cpu.shares");
    assert_eq!(fs::read_to_string(shares).unwrap(), "512");

    m.add_process(4242).unwrap();
    for dir in m.paths() {
        assert_eq!(
            fs::read_to_string(dir.join("cgroup.procs")).unwrap(),
            "4242"
        );
    }
    assert_eq!(
        m.procs().unwrap(),
        vec![4242],
        "deduplicated across hierarchies"
    );
}

#[test]
fn v1_memsw_only_when_present() {
    let root = v1_root(&["memory"]);
    let m = V1::new(root.path(), "prt", "c2");
    m.create().unwrap();
    v1_populate(&m, false);
    let res = Resources {
        memory_bytes: Some(1 << 30),
        ..Resources::default()
    };
    m.apply(&Limits::from(&res)).unwrap();
    let dir = root.path().join("memory/prt/c2");
    assert!(!dir.join("memory.memsw.limit_in_bytes").exists());
    assert_eq!(
        fs::read_to_string(dir.join("memory.limit_in_bytes")).unwrap(),
        "1073741824"
    );
}

#[test]
fn v1_missing_controller_is_a_clear_error() {
    let root = v1_root(&["memory"]);
    let m = V1::new(root.path(), "prt", "c3");
    m.create().unwrap();
    let res = Resources {
        pids_max: Some(10),
        ..Resources::default()
    };
    let err = m.apply(&Limits::from(&res)).unwrap_err();
    assert!(matches!(
        err,
        CgroupError::MissingController {
            controller: "pids",
            ..
        }
    ));
    assert!(err.to_string().contains("pids controller is not available"));
    // No limit asked: nothing is needed.
    m.apply(&Limits::default()).unwrap();
}

#[test]
fn v1_comounted_controllers_appear_once() {
    let root = v1_root(&["cpu,cpuacct", "memory"]);
    std::os::unix::fs::symlink("cpu,cpuacct", root.path().join("cpu")).unwrap();
    std::os::unix::fs::symlink("cpu,cpuacct", root.path().join("cpuacct")).unwrap();
    let m = V1::new(root.path(), "prt", "c4");
    assert_eq!(
        m.paths(),
        vec![
            root.path().join("memory/prt/c4"),
            root.path().join("cpu/prt/c4")
        ]
    );
}

#[test]
fn v1_oom_kills_and_remove() {
    let root = v1_root(&["memory", "pids"]);
    let m = V1::new(root.path(), "prt", "c5");
    assert_eq!(m.oom_kills().unwrap(), 0, "missing dir counts as none");
    assert!(m.procs().unwrap().is_empty());
    m.create().unwrap();
    touch(
        &root.path().join("memory/prt/c5/memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 3\n",
    );
    assert_eq!(m.oom_kills().unwrap(), 3);
    fs::remove_file(root.path().join("memory/prt/c5/memory.oom_control")).unwrap();
    m.remove().unwrap();
    assert!(!root.path().join("memory/prt/c5").exists());
    assert!(root.path().join("memory/prt").exists(), "the parent stays");
    m.remove().unwrap();
}

/// A v2 fixture: root with cgroup.controllers and an empty subtree_control.
fn v2_root(offered: &str) -> tempfile::TempDir {
    let root = tempfile::tempdir().unwrap();
    touch(&root.path().join("cgroup.controllers"), offered);
    touch(&root.path().join("cgroup.subtree_control"), "");
    root
}

#[test]
fn v2_enables_controllers_down_the_tree_and_writes_limits() {
    let root = v2_root("cpuset cpu io memory pids");
    let m = V2::new(root.path(), "prt", "c1");
    // The kernel makes cgroup.subtree_control in every new dir; the fixture can't, so
    // make the parent ahead of time.
    fs::create_dir(root.path().join("prt")).unwrap();
    touch(&root.path().join("prt/cgroup.subtree_control"), "");
    m.create().unwrap();
    // One write per controller (a plain file keeps the last one; the kernel adds up).
    assert_eq!(
        fs::read_to_string(root.path().join("cgroup.subtree_control")).unwrap(),
        "+pids"
    );
    assert_eq!(
        fs::read_to_string(root.path().join("prt/cgroup.subtree_control")).unwrap(),
        "+pids"
    );
    let dir = root.path().join("prt/c1");
    assert_eq!(m.paths(), vec![dir.clone()]);
    for f in [
        "memory.max",
        "memory.swap.max",
        "pids.max",
        "cpu.weight",
        "cgroup.procs",
    ] {
        touch(&dir.join(f), "");
    }
    let res = Resources {
        memory_bytes: Some(32 << 20),
        pids_max: Some(64),
        cpu_shares: Some(1024),
    };
    m.apply(&Limits::from(&res)).unwrap();
    let read = |f: &str| fs::read_to_string(dir.join(f)).unwrap();
    assert_eq!(read("memory.max"), "33554432");
    assert_eq!(read("memory.swap.max"), "0");
    assert_eq!(read("pids.max"), "64");
    assert_eq!(read("cpu.weight"), "39");
    m.add_process(77).unwrap();
    assert_eq!(m.procs().unwrap(), vec![77]);
    touch(
        &dir.join("memory.events"),
        "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n",
    );
    assert_eq!(m.oom_kills().unwrap(), 1);
}

#[test]
fn v2_enables_only_what_is_off() {
    let wanted = ["cpu", "memory", "pids"];
    assert_eq!(V2::to_enable("", &wanted), wanted);
    assert_eq!(V2::to_enable("memory io\n", &wanted), ["cpu", "pids"]);
    assert!(V2::to_enable("pids cpu memory", &wanted).is_empty());
}

#[test]
fn v2_leaves_subtree_control_alone_when_already_on() {
    let root = v2_root("memory pids");
    touch(&root.path().join("cgroup.subtree_control"), "memory pids\n");
    fs::create_dir(root.path().join("prt")).unwrap();
    touch(&root.path().join("prt/cgroup.subtree_control"), "memory\n");
    V2::new(root.path(), "prt", "c2").create().unwrap();
    assert_eq!(
        fs::read_to_string(root.path().join("cgroup.subtree_control")).unwrap(),
        "memory pids\n",
        "not rewritten"
    );
    assert_eq!(
        fs::read_to_string(root.path().join("prt/cgroup.subtree_control")).unwrap(),
        "+pids"
    );
}

#[test]
fn v2_swap_only_when_present_and_missing_controller() {
    let root = v2_root("memory");
    fs::create_dir(root.path().join("prt")).unwrap();
    touch(&root.path().join("prt/cgroup.subtree_control"), "");
    let m = V2::new(root.path(), "prt", "c3");
    m.create().unwrap();
    let dir = root.path().join("prt/c3");
    touch(&dir.join("memory.max"), "");
    let res = Resources {
        memory_bytes: Some(4096),
        ..Resources::default()
    };
    m.apply(&Limits::from(&res)).unwrap();
    assert!(!dir.join("memory.swap.max").exists());
    let err = m
        .apply(&Limits {
            pids_max: Some(1),
            ..Limits::default()
        })
        .unwrap_err();
    assert!(err.to_string().contains("pids controller"), "{err}");
    let converted: crate::Error = err.into();
    assert!(
        matches!(converted, crate::Error::InvalidSpec(_)),
        "{converted}"
    );
}

#[test]
fn manager_picks_the_layout() {
    let v1 = v1_root(&["memory"]);
    assert_eq!(manager(v1.path(), "p", "x").version(), CgroupVersion::V1);
    let v2 = v2_root("memory");
    let m = manager(v2.path(), "p", "x");
    assert_eq!(m.version(), CgroupVersion::V2);
    assert_eq!(m.paths(), vec![v2.path().join("p/x")]);
}

#[test]
fn parents_are_listed_and_removed() {
    let root = v1_root(&["memory", "pids"]);
    let m = V1::new(root.path(), "prt", "c6");
    m.create().unwrap();
    let parents = parent_paths(root.path(), "prt");
    assert_eq!(
        parents,
        vec![root.path().join("memory/prt"), root.path().join("pids/prt")]
    );
    assert!(
        remove_parent(root.path(), "prt").is_err(),
        "still has a container"
    );
    m.remove().unwrap();
    remove_parent(root.path(), "prt").unwrap();
    assert!(parents.iter().all(|p| !p.exists()));
    remove_parent(root.path(), "prt").unwrap();
}

#[test]
fn shares_map_onto_weights() {
    assert_eq!(shares_to_weight(2), 1);
    assert_eq!(shares_to_weight(0), 1);
    assert_eq!(shares_to_weight(1024), 39);
    assert_eq!(shares_to_weight(262_144), 10_000);
    assert_eq!(shares_to_weight(u64::MAX), 10_000);
}
