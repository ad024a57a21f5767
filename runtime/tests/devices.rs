//! Devices (needs root): `linux.devices`-style nodes made in the container's `/dev`, the
//! device cgroup allow-list (v1 files on this host, v2 eBPF program where a cgroup2
//! hierarchy is mounted), and what a container can open.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{need_root, unique, Fixture};
use paas_runtime::{BindMount, ContainerOptions, Device, DeviceRule};

/// A host device the default allow-list does not contain (10:237, 1:11 if missing).
fn unlisted_host_device() -> PathBuf {
    let lc = PathBuf::from("/dev/loop-control");
    if lc.exists() {
        lc
    } else {
        PathBuf::from("/dev/kmsg")
    }
}

fn opts_with_mknod() -> ContainerOptions {
    let mut opts = ContainerOptions::default();
    opts.capabilities.push("CAP_MKNOD".into());
    opts
}

const SCRIPT: &str = "mknod /tmp/null c 1 3 && echo MKNOD-NULL-OK; \
     mknod /tmp/mem c 1 1 && echo MKNOD-MEM-OK; \
     stat -c 'fuse=%t:%T %a %u:%g' /dev/fuse; \
     head -c 3 /dev/zero | wc -c; \
     (exec 3</mnt/unlisted) && echo OPENED-UNLISTED; echo end";

#[test]
fn only_allowed_devices_can_be_made_or_opened() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let unlisted = unlisted_host_device();
    let mut spec = f.spec(&["sh", "-c", SCRIPT]);
    spec.mounts.push(BindMount {
        source: unlisted.clone(),
        destination: "/mnt/unlisted".into(),
        readonly: false,
    });
    let mut opts = opts_with_mknod();
    opts.devices.push(Device {
        path: "/dev/fuse".into(),
        kind: 'c',
        major: 10,
        minor: 229,
        file_mode: Some(0o640),
        uid: Some(1),
        gid: Some(2),
    });
    f.rt.run_with(&spec, &opts).unwrap();
    let exit = f.rt.wait(&spec.id).unwrap();
    let out = f.output();
    assert_eq!(exit.code, Some(0), "{out}");
    assert!(out.contains("MKNOD-NULL-OK"), "null is allowed: {out}");
    assert!(!out.contains("MKNOD-MEM-OK"), "mem is not: {out}");
    assert!(out.contains("fuse=a:e5 640 1:2"), "listed node made: {out}");
    assert!(out.contains("\n3\n"), "/dev/zero readable: {out}");
    assert!(
        !out.contains("OPENED-UNLISTED"),
        "{unlisted:?} opened: {out}"
    );
    assert!(out.contains("Operation not permitted"), "{out}");
    assert!(out.ends_with("end\n"), "{out}");

    // The control: without a device cgroup the same container opens the device, so the
    // assertions above are the allow-list's doing.
    std::fs::write(&f.log, "").unwrap();
    let mut spec = f.spec(&["sh", "-c", SCRIPT]);
    spec.mounts.push(BindMount {
        source: unlisted.clone(),
        destination: "/mnt/unlisted".into(),
        readonly: false,
    });
    let mut opts = opts_with_mknod();
    opts.device_rules = Vec::new();
    f.rt.run_with(&spec, &opts).unwrap();
    f.rt.wait(&spec.id).unwrap();
    let out = f.output();
    assert!(out.contains("MKNOD-MEM-OK"), "{out}");
    assert!(out.contains("OPENED-UNLISTED"), "{out}");
}

/// A cgroup2 hierarchy: the root on a v2 host, `unified/` on a hybrid one.
fn cgroup2_root() -> Option<PathBuf> {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        return Some(root.to_owned());
    }
    let unified = root.join("unified");
    unified.join("cgroup.procs").exists().then_some(unified)
}

/// Runs a shell in `cgroup` (it moves itself there first) that opens /dev/null and the
/// unlisted device; returns its output.
fn open_devices_in(cgroup: &Path, unlisted: &Path) -> String {
    let script = format!(
        "echo $$ > {}/cgroup.procs || exit 9; \
         (exec 3</dev/null) && echo NULL-OK; (exec 4<{}) && echo UNLISTED-OK; echo end",
        cgroup.display(),
        unlisted.display()
    );
    let out = Command::new("/bin/sh")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

#[test]
fn the_v2_device_program_denies_what_is_not_listed() {
    if !need_root() {
        return;
    }
    let Some(root) = cgroup2_root() else {
        panic!("no cgroup2 hierarchy mounted (neither /sys/fs/cgroup nor its unified/)");
    };
    let unlisted = unlisted_host_device();
    /// Removes the test cgroup even when an assertion fails.
    struct Cgroup(PathBuf);
    impl Drop for Cgroup {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir(&self.0);
        }
    }
    let cgroup = Cgroup(root.join(unique("rt4-dev")));
    let dir = cgroup.0.clone();
    std::fs::create_dir(&dir).unwrap();
    let before = open_devices_in(&dir, &unlisted);
    let (allow, rules) =
        paas_runtime::devices::effective(&paas_runtime::devices::default_rules(), &[]).unwrap();
    paas_runtime::devices::attach(&dir, allow, &rules).unwrap();
    let after = open_devices_in(&dir, &unlisted);
    // A second program that allows the device too: the first still denies it
    // (BPF_F_ALLOW_MULTI: every attached program must allow).
    let mut more = rules.clone();
    more.push(DeviceRule::allow_char(10, None));
    more.push(DeviceRule::allow_char(1, None));
    paas_runtime::devices::attach(&dir, allow, &more).unwrap();
    let multi = open_devices_in(&dir, &unlisted);
    assert!(
        before.contains("NULL-OK") && before.contains("UNLISTED-OK"),
        "{before}"
    );
    assert!(after.contains("NULL-OK"), "{after}");
    assert!(!after.contains("UNLISTED-OK"), "{after}");
    assert!(after.contains("Operation not permitted"), "{after}");
    assert!(!multi.contains("UNLISTED-OK"), "{multi}");
}
