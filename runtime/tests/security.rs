//! Escape and limit attempts (needs root): each must fail the way Docker's defaults make
//! it fail, and the limits must hold.

mod common;

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use common::{need_root, Fixture};
use paas_runtime::security::{capability_mask, DEFAULT_CAPABILITIES};
use paas_runtime::{BindMount, ContainerOptions, ExitReason, Status};

/// Runs `script` with sh and returns (exit code, output).
fn sh(f: &Fixture, script: &str) -> (Option<i32>, String) {
    let spec = f.spec(&["sh", "-c", script]);
    let (exit, out) = f.run_to_end(&spec);
    (exit.code, out)
}

/// The host's /usr, read-only, so perl can make raw syscalls inside the container.
fn with_host_usr(f: &Fixture, spec: &mut paas_runtime::ContainerSpec) {
    for (link, target) in [("lib", "usr/lib"), ("lib64", "usr/lib64")] {
        let _ = std::os::unix::fs::symlink(target, f.layer.join(link));
    }
    spec.mounts.push(BindMount {
        source: PathBuf::from("/usr"),
        destination: "/usr".into(),
        readonly: true,
    });
}

#[test]
fn cannot_mount_or_make_devices() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let (code, out) = sh(
        &f,
        "mount -t tmpfs x /tmp && echo MOUNTED; mknod /tmp/mem c 1 1 && echo MKNOD; \
         mount -o remount,rw /proc/sys && echo REMOUNT; echo end",
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(out.ends_with("end\n"), "{out}");
    for bad in ["MOUNTED", "MKNOD", "REMOUNT"] {
        assert!(!out.contains(bad), "{bad}: {out}");
    }
    assert!(out.contains("Operation not permitted"), "{out}");
}

#[test]
fn proc_sys_and_sysrq_are_read_only_and_kcore_is_masked() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let (code, out) = sh(
        &f,
        "echo x > /proc/sys/kernel/domainname && echo WROTE-SYS; \
         echo h > /proc/sysrq-trigger && echo WROTE-SYSRQ; \
         echo kcore=$(head -c 16 /proc/kcore | wc -c) keys=$(cat /proc/keys | wc -c); \
         ls /sys/firmware | wc -l; grep -c ' /proc/sys ' /proc/self/mountinfo",
    );
    assert_eq!(code, Some(0), "{out}");
    assert!(!out.contains("WROTE"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("kcore=0 keys=0"), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[lines.len() - 2], "0", "/sys/firmware is empty: {out}");
}

#[test]
fn capabilities_no_new_privs_and_seccomp_are_set() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let (code, out) = sh(&f, "grep -E '^(Cap|NoNewPrivs|Seccomp:)' /proc/self/status");
    assert_eq!(code, Some(0), "{out}");
    let want = format!("{:016x}", capability_mask(&DEFAULT_CAPABILITIES).unwrap());
    let field = |name: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}:")))
            .map(|v| v.trim().to_owned())
            .unwrap_or_else(|| panic!("{name} missing: {out}"))
    };
    assert_eq!(field("CapEff"), want, "{out}");
    assert_eq!(field("CapPrm"), want, "{out}");
    assert_eq!(field("CapBnd"), want, "{out}");
    assert_eq!(field("CapInh"), "0000000000000000", "{out}");
    assert_eq!(field("CapAmb"), "0000000000000000", "{out}");
    assert_eq!(field("NoNewPrivs"), "1", "{out}");
    assert_eq!(field("Seccomp"), "2", "filter mode: {out}");

    // A non-root user keeps only the bounding set.
    let mut spec = f.spec(&["sh", "-c", "grep -E '^Cap(Eff|Bnd)' /proc/self/status"]);
    spec.user = Some((1000, 1000));
    let (_, out) = f.run_to_end(&spec);
    assert!(out.contains("CapEff:\t0000000000000000"), "{out}");
    assert!(out.contains(&format!("CapBnd:\t{want}")), "{out}");
}

#[test]
fn blocked_syscalls_return_eperm() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let mut spec = f.spec(&[
        "sh",
        "-c",
        // keyctl(KEYCTL_GET_KEYRING_ID, KEY_SPEC_SESSION_KEYRING, 0) is 250 on x86_64,
        // 219 on aarch64.
        "unshare -U true; unshare -n true; \
         /usr/bin/perl -MConfig -e '$n = $Config{archname} =~ /x86_64/ ? 250 : 219; \
                  $r = syscall($n, 0, -3, 0); print \"keyctl=$r $!\\n\"'",
    ]);
    with_host_usr(&f, &mut spec);
    let (exit, out) = f.run_to_end(&spec);
    assert_eq!(exit.code, Some(0), "{out}");
    assert_eq!(
        out.matches("unshare: unshare(").count(),
        2,
        "both unshares fail: {out}"
    );
    assert_eq!(out.matches("Operation not permitted").count(), 3, "{out}");
    assert!(out.contains("keyctl=-1 Operation not permitted"), "{out}");
}

#[test]
fn a_fork_bomb_stops_at_the_pids_limit() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let mut spec = f.spec(&[
        "sh",
        "-c",
        "(i=0; while [ $i -lt 100 ]; do sleep 1000 & i=$((i+1)); done) 2>/dev/null; \
         echo spawned; exec sleep 1000",
    ]);
    spec.resources.pids_max = Some(20);
    f.rt.run(&spec).unwrap();
    common::wait_for(|| f.output().contains("spawned"));
    let stats = f.rt.stats(&spec.id).unwrap();
    assert!(
        (2..=20).contains(&stats.pids),
        "pids stop at the limit: {stats:?}"
    );
    // The host can still fork.
    assert!(std::process::Command::new("true")
        .status()
        .unwrap()
        .success());
    let exit = f.rt.stop(&spec.id, Duration::from_millis(100)).unwrap();
    assert_eq!(
        exit.reason(),
        ExitReason::Signaled { signal: 9 },
        "{exit:?}"
    );
}

#[test]
fn a_memory_hog_is_oom_killed_and_reported_so() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let mut spec = f.spec(&["sh", "-c", "x=$(head -c 400000000 /dev/zero | tr '\\0' a)"]);
    spec.resources.memory_bytes = Some(16 << 20);
    let (exit, out) = f.run_to_end(&spec);
    assert_eq!(exit.reason(), ExitReason::OutOfMemory, "{exit:?} {out}");
    assert_eq!(exit.reason().to_string(), "crashed: out of memory");
}

#[test]
fn read_only_rootfs_and_rlimits() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let spec = f.spec(&[
        "sh",
        "-c",
        "touch /tmp/x && echo WROTE; echo ok > /dev/shm/y && echo shm-ok; ulimit -n",
    ]);
    let opts = ContainerOptions {
        readonly_rootfs: true,
        rlimits: vec![paas_runtime::Rlimit {
            kind: "RLIMIT_NOFILE".into(),
            soft: 4096,
            hard: 8192,
        }],
        ..ContainerOptions::default()
    };
    f.rt.run_with(&spec, &opts).unwrap();
    let exit = f.rt.wait(&spec.id).unwrap();
    let out = f.output();
    assert_eq!(exit.code, Some(0), "{out}");
    assert!(!out.contains("WROTE"), "{out}");
    assert!(out.contains("Read-only file system"), "{out}");
    assert!(out.contains("shm-ok\n4096\n"), "{out}");
}

#[test]
fn stats_pause_resume_and_stop_with_grace() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let mut spec = f.spec(&[
        "sh",
        "-c",
        "trap 'echo got-term; exit 3' TERM; while true; do sleep 0.05; done",
    ]);
    spec.resources.memory_bytes = Some(64 << 20);
    f.rt.run(&spec).unwrap();
    let stats = f.rt.stats(&spec.id).unwrap();
    assert!(stats.memory_bytes > 0 && stats.pids >= 1, "{stats:?}");
    f.rt.pause(&spec.id).unwrap();
    assert_eq!(f.rt.state(&spec.id).unwrap().status, Status::Paused);
    let cpu = f.rt.stats(&spec.id).unwrap().cpu_usage_ns;
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(f.rt.stats(&spec.id).unwrap().cpu_usage_ns, cpu, "frozen");
    assert!(f.rt.pause(&spec.id).is_err(), "already paused");
    f.rt.resume(&spec.id).unwrap();
    assert_eq!(f.rt.state(&spec.id).unwrap().status, Status::Running);
    let exit = f.rt.stop(&spec.id, Duration::from_secs(10)).unwrap();
    assert_eq!(
        exit.reason(),
        ExitReason::Exited { code: 3 },
        "{}",
        f.output()
    );
    assert!(f.output().contains("got-term"));
    // Nothing left to stop: the recorded exit comes back.
    assert_eq!(f.rt.stop(&spec.id, Duration::ZERO).unwrap(), exit);
}

#[test]
fn a_volume_outlives_its_container_and_network_can_be_shared() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let vol = f.rt.create_volume("data").unwrap();
    let mount = BindMount {
        source: vol.clone(),
        destination: "/data".into(),
        readonly: false,
    };
    let mut first = f.spec(&["sh", "-c", "echo kept > /data/file; echo lost > /lost"]);
    first.mounts.push(mount.clone());
    f.run_to_end(&first);
    f.rt.delete(&first.id, false).unwrap();

    let mut owner = f.spec(&["sh", "-c", "cat /data/file; cat /lost; exec sleep 1000"]);
    owner.mounts.push(mount);
    f.rt.run(&owner).unwrap();
    common::wait_for(|| f.output().contains("kept"));
    // container:<id> network mode: the same network namespace.
    let mut peer = f.spec(&["true"]);
    peer.network = paas_runtime::Network::Join(f.rt.netns_path(&owner.id).unwrap());
    let peer_state = f.rt.create(&peer).unwrap();
    let ns = |pid: i32| fs::read_link(format!("/proc/{pid}/ns/net")).unwrap();
    let owner_pid = f.rt.state(&owner.id).unwrap().pid;
    assert_eq!(ns(peer_state.pid), ns(owner_pid));
    assert_ne!(ns(owner_pid), ns(std::process::id() as i32));
    assert_eq!(f.rt.list_volumes().unwrap(), vec!["data".to_string()]);
    f.rt.delete(&peer.id, true).unwrap();
    f.rt.delete(&owner.id, true).unwrap();
    assert!(!f.output().contains("lost\n"), "{}", f.output());
    f.rt.remove_volume("data").unwrap();
    assert!(!vol.exists());
}

#[test]
fn restart_runs_the_same_spec_again_and_oom_score_adj_is_set() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let spec = f.spec(&[
        "sh",
        "-c",
        "echo adj=$(cat /proc/self/oom_score_adj); exec sleep 1000",
    ]);
    let opts = ContainerOptions {
        oom_score_adj: Some(500),
        ..ContainerOptions::default()
    };
    let first = f.rt.run_with(&spec, &opts).unwrap();
    common::wait_for(|| f.output() == "adj=500\n");
    let second = f.rt.restart(&spec.id, Duration::ZERO).unwrap();
    assert_ne!(first.pid, second.pid);
    assert_eq!(second.status, Status::Running);
    common::wait_for(|| f.output() == "adj=500\nadj=500\n");
    assert_eq!(f.rt.options(&spec.id).unwrap().oom_score_adj, Some(500));
}
