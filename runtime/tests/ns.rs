//! Namespaces given by path, inherited from the host, and the config's mount options
//! (needs root): a container joins another one's pid/ipc/uts/network namespaces, a
//! user namespace (with new namespaces made inside it), a mount namespace made by
//! `unshare`; a path of the wrong type is a clear error; a container without namespaces
//! of its own shares the host's and leaves no mount behind; per-mount propagation.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use common::{need_root, wait_for, Fixture};
use paas_runtime::{
    ContainerOptions, ContainerSpec, Error, FsMount, IdMappings, Namespace, Namespaces, Network,
};

/// A host range no other test uses.
const BASE: u32 = 430_000;

/// (device, inode) of `/proc/<pid>/ns/<name>` (`self` for ours).
fn ns_id(pid: &str, name: &str) -> (u64, u64) {
    let m = std::fs::metadata(format!("/proc/{pid}/ns/{name}")).unwrap();
    (m.dev(), m.ino())
}

fn ns_path(pid: i32, name: &str) -> PathBuf {
    PathBuf::from(format!("/proc/{pid}/ns/{name}"))
}

/// `spec` writing to its own log file in the fixture's dir.
fn own_log(f: &Fixture, mut spec: ContainerSpec, name: &str) -> (ContainerSpec, PathBuf) {
    let log = f.dir.path().join(name);
    spec.stdout = log.clone();
    spec.stderr = log.clone();
    (spec, log)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// Kills and reaps a helper process when the test ends, even on a panic.
struct Reap(Child);

impl Drop for Reap {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn a_container_joins_another_containers_pid_ipc_uts_and_network_namespaces() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let a = f.spec(&["sh", "-c", "echo ready; exec sleep 1000"]);
    let a_state = f.rt.run(&a).unwrap();
    wait_for(|| f.output().contains("ready"));
    let pid = a_state.pid;

    let (mut b, b_log) = own_log(
        &f,
        f.spec(&["sh", "-c", "hostname; ps -o pid,args; echo done"]),
        "b.log",
    );
    b.hostname = String::new();
    b.network = Network::Join(ns_path(pid, "net"));
    let opts = ContainerOptions {
        namespaces: Namespaces {
            pid: Namespace::Join(ns_path(pid, "pid")),
            ipc: Namespace::Join(ns_path(pid, "ipc")),
            uts: Namespace::Join(ns_path(pid, "uts")),
            ..Namespaces::default()
        },
        ..ContainerOptions::default()
    };
    let b_state = f.rt.create_with(&b, &opts).unwrap();
    for name in ["pid", "ipc", "uts", "net"] {
        assert_eq!(
            ns_id(&b_state.pid.to_string(), name),
            ns_id(&pid.to_string(), name),
            "{name} namespace joined"
        );
    }
    assert_ne!(
        ns_id(&b_state.pid.to_string(), "mnt"),
        ns_id(&pid.to_string(), "mnt"),
        "a new mount namespace"
    );
    f.rt.start(&b.id).unwrap();
    let exit = f.rt.wait(&b.id).unwrap();
    let out = read(&b_log);
    assert_eq!(exit.code, Some(0), "{out}");
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some(a.hostname.as_str()),
        "A's hostname: {out}"
    );
    // A's init is pid 1 of the shared pid namespace, B's processes are further up.
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("1 ") && l.contains("sleep 1000")),
        "A's init seen as pid 1: {out}"
    );
    assert!(out.ends_with("done\n"), "{out}");
    f.rt.delete(&b.id, true).unwrap();
    assert!(f.rt.state(&a.id).is_ok(), "A still runs");
}

#[test]
fn a_container_joins_a_user_namespace_and_its_new_namespaces_belong_to_it() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let a = f.spec(&["sh", "-c", "echo ready; exec sleep 1000"]);
    let a_opts = ContainerOptions {
        id_mappings: Some(IdMappings::range(BASE, 65536)),
        ..ContainerOptions::default()
    };
    let a_state = f.rt.run_with(&a, &a_opts).unwrap();
    wait_for(|| f.output().contains("ready"));

    // B: A's user namespace, everything else new (so it must own them: B mounts /proc,
    // sets its hostname, brings up lo).
    let (b, b_log) = own_log(
        &f,
        f.spec(&[
            "sh",
            "-c",
            "echo uid=$(id -u); cat /proc/self/uid_map; hostname; ps -o pid,args; echo done",
        ]),
        "b.log",
    );
    let opts = ContainerOptions {
        namespaces: Namespaces {
            join_user: Some(ns_path(a_state.pid, "user")),
            ..Namespaces::default()
        },
        ..ContainerOptions::default()
    };
    let b_state = f.rt.create_with(&b, &opts).unwrap();
    let b_pid = b_state.pid.to_string();
    assert_eq!(
        ns_id(&b_pid, "user"),
        ns_id(&a_state.pid.to_string(), "user")
    );
    for name in ["pid", "mnt", "uts", "ipc", "net"] {
        assert_ne!(
            ns_id(&b_pid, name),
            ns_id(&a_state.pid.to_string(), name),
            "{name}: a new one"
        );
    }
    let status = std::fs::read_to_string(format!("/proc/{b_pid}/status")).unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert!(
        uid_line
            .split_whitespace()
            .skip(1)
            .all(|u| u == BASE.to_string()),
        "B's init runs as the mapped root on the host: {uid_line}"
    );
    f.rt.start(&b.id).unwrap();
    let exit = f.rt.wait(&b.id).unwrap();
    let out = read(&b_log);
    assert_eq!(exit.code, Some(0), "{out}");
    assert!(out.starts_with("uid=0\n"), "{out}");
    let map: Vec<&str> = out.lines().nth(1).unwrap().split_whitespace().collect();
    assert_eq!(map, ["0", &BASE.to_string(), "65536"], "{out}");
    assert_eq!(out.lines().nth(2), Some(b.hostname.as_str()), "{out}");
    assert!(
        out.lines()
            .any(|l| l.trim_start().starts_with("1 ") && l.contains("ps")),
        "B's own pid namespace, B's shell is pid 1: {out}"
    );
}

#[test]
fn a_container_joins_a_mount_namespace_made_by_unshare() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    // A private mount namespace with a tmpfs on the layer's /srv that only it has.
    let srv = f.layer.join("srv");
    std::fs::create_dir(&srv).unwrap();
    let script = format!(
        "mount -t tmpfs none {0} && echo only-here > {0}/file && echo ready && exec sleep 1000",
        srv.display()
    );
    let holder = Command::new("unshare")
        .args(["--mount", "--propagation", "private", "sh", "-c", &script])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut holder = Reap(holder);
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(holder.0.stdout.as_mut().unwrap()),
        &mut line,
    )
    .unwrap();
    assert_eq!(line, "ready\n");
    assert!(
        !srv.join("file").exists(),
        "the tmpfs is not in our namespace"
    );
    let holder_pid = holder.0.id() as i32;

    let mut spec = f.spec(&["sh", "-c", "cat /srv/file; echo ready; exec sleep 1000"]);
    spec.network = Network::Host;
    let opts = ContainerOptions {
        bind_rootfs: true,
        namespaces: Namespaces {
            mount: Namespace::Join(ns_path(holder_pid, "mnt")),
            ..Namespaces::default()
        },
        ..ContainerOptions::default()
    };
    let state = f.rt.run_with(&spec, &opts).unwrap();
    wait_for(|| f.output().contains("ready"));
    assert_eq!(f.output(), "only-here\nready\n");
    assert_eq!(
        ns_id(&state.pid.to_string(), "mnt"),
        ns_id(&holder_pid.to_string(), "mnt")
    );
    f.rt.delete(&spec.id, true).unwrap();
    assert!(
        !common::is_mounted(&f.layer),
        "nothing mounted in our namespace"
    );
}

#[test]
fn a_namespace_path_of_the_wrong_type_is_a_clear_error() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let spec = f.spec(&["true"]);
    let opts = ContainerOptions {
        namespaces: Namespaces {
            ipc: Namespace::Join(PathBuf::from("/proc/self/ns/uts")),
            ..Namespaces::default()
        },
        ..ContainerOptions::default()
    };
    match f.rt.create_with(&spec, &opts) {
        Err(Error::InvalidSpec(m)) => assert_eq!(
            m,
            "namespace path /proc/self/ns/uts is given for the ipc namespace, but it is of \
             type uts"
        ),
        other => panic!("{other:?}"),
    }
    let opts = ContainerOptions {
        namespaces: Namespaces {
            join_user: Some(f.log.clone()),
            ..Namespaces::default()
        },
        ..ContainerOptions::default()
    };
    std::fs::write(&f.log, "").unwrap();
    match f.rt.create_with(&spec, &opts) {
        Err(Error::InvalidSpec(m)) => {
            assert!(m.contains(&f.log.display().to_string()), "{m}");
            assert!(m.contains("is not a namespace file"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    assert!(f.rt.list().unwrap().is_empty(), "nothing left behind");
}

#[test]
fn without_namespaces_of_its_own_a_container_shares_the_hosts_and_leaves_no_mount() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let mut spec = f.spec(&["sh", "-c", "cat /etc/marker; echo ready; exec sleep 1000"]);
    spec.hostname = String::new();
    spec.network = Network::Host;
    let opts = ContainerOptions {
        bind_rootfs: true,
        namespaces: Namespaces {
            pid: Namespace::Host,
            mount: Namespace::Host,
            uts: Namespace::Host,
            ipc: Namespace::Host,
            cgroup: Namespace::Host,
            join_user: None,
        },
        ..ContainerOptions::default()
    };
    let state = f.rt.run_with(&spec, &opts).unwrap();
    wait_for(|| f.output().contains("ready"));
    assert_eq!(f.output(), "from the layer\nready\n");
    for name in ["pid", "mnt", "uts", "ipc", "cgroup", "net", "user"] {
        assert_eq!(
            ns_id(&state.pid.to_string(), name),
            ns_id("self", name),
            "{name}: the host's"
        );
    }
    // Its /proc and /dev are mounted in the host's namespace, below the bound rootfs.
    assert!(common::is_mounted(&f.layer.join("proc")));
    // An exec lands in the container's root, not the host's.
    let mut out = Vec::new();
    let (r, w) = nix::unistd::pipe().unwrap();
    let p =
        f.rt.exec(
            &spec.id,
            paas_runtime::ExecSpec {
                args: vec!["cat".into(), "/etc/marker".into()],
                stdout: Some(w),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(p.wait().unwrap(), 0);
    std::io::Read::read_to_end(&mut std::fs::File::from(r), &mut out).unwrap();
    assert_eq!(String::from_utf8_lossy(&out), "from the layer\n");
    f.rt.delete(&spec.id, true).unwrap();
    assert!(!common::is_mounted(&f.layer), "delete detached everything");

    spec.hostname = "named".into();
    match f.rt.create_with(&spec, &opts) {
        Err(Error::InvalidSpec(m)) => assert!(m.contains("uts namespace"), "{m}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn config_mounts_keep_their_order_flags_and_propagation() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let src = f.dir.path().join("shared-src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("f"), "bound\n").unwrap();
    let spec = f.spec(&[
        "sh",
        "-c",
        "cat /b/f; grep -E ' /(a|b|c) ' /proc/self/mountinfo",
    ]);
    let mount = |dest: &str, fstype: &str, source: &str, options: &[&str]| FsMount {
        destination: dest.into(),
        fstype: fstype.into(),
        source: source.into(),
        options: options.iter().map(|s| s.to_string()).collect(),
    };
    let opts = ContainerOptions {
        fs_mounts: vec![
            mount("/a", "tmpfs", "tmpfs", &["size=1k", "shared"]),
            mount(
                "/b",
                "",
                &src.display().to_string(),
                &["rbind", "ro", "nosuid", "unbindable"],
            ),
            mount("/c", "tmpfs", "tmpfs", &["size=1k", "noexec"]),
        ],
        ..ContainerOptions::default()
    };
    f.rt.run_with(&spec, &opts).unwrap();
    let exit = f.rt.wait(&spec.id).unwrap();
    let out = f.output();
    assert_eq!(exit.code, Some(0), "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "bound");
    let line = |dest: &str| -> &str {
        lines
            .iter()
            .find(|l| l.split_whitespace().nth(4) == Some(dest))
            .unwrap_or_else(|| panic!("{dest} not mounted: {out}"))
    };
    assert!(line("/a").contains(" shared:"), "{out}");
    assert!(line("/b").contains(" unbindable "), "{out}");
    let b_opts = line("/b").split_whitespace().nth(5).unwrap();
    assert!(b_opts.starts_with("ro,nosuid"), "{out}");
    assert!(
        !line("/c").contains(" shared:"),
        "private by default: {out}"
    );
    assert!(
        line("/c")
            .split_whitespace()
            .nth(5)
            .unwrap()
            .contains("noexec"),
        "{out}"
    );
    // In the config's order.
    let pos = |dest: &str| lines.iter().position(|l| *l == line(dest)).unwrap();
    assert!(pos("/a") < pos("/b") && pos("/b") < pos("/c"), "{out}");
}
