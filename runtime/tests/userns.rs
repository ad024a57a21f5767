//! User namespaces (needs root): root in the container is an unprivileged uid on the host.

mod common;

use std::os::unix::fs::MetadataExt;

use common::{need_root, wait_for, Fixture};
use paas_runtime::{BindMount, ContainerOptions, ExecSpec, IdMappings};

/// A host range no other test uses: 0 in the container is `BASE` on the host.
const BASE: u32 = 400_000;

/// The `Uid:` line of a host process: real, effective, saved, fs.
fn host_uids(pid: i32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .unwrap()
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect()
}

#[test]
fn root_in_the_container_is_a_mapped_uid_on_the_host() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    // A volume the container's root may write: owned by the mapped root, as the agent
    // makes it for a job with a user namespace.
    let volume = f.dir.path().join("volume");
    std::fs::create_dir(&volume).unwrap();
    std::os::unix::fs::chown(&volume, Some(BASE), Some(BASE)).unwrap();
    let mut spec = f.spec(&[
        "sh",
        "-c",
        "echo uid=$(id -u) gid=$(id -g); cat /proc/self/uid_map /proc/self/gid_map; \
         touch /data/made-inside && echo touched; touch /rootfile && echo root-writable; \
         echo ready; exec sleep 1000",
    ]);
    spec.mounts.push(BindMount {
        source: volume.clone(),
        destination: "/data".into(),
        readonly: false,
    });
    let opts = ContainerOptions {
        id_mappings: Some(IdMappings::range(BASE, 65536)),
        ..ContainerOptions::default()
    };
    let state = f.rt.run_with(&spec, &opts).unwrap();
    wait_for(|| f.output().contains("ready"));
    let out = f.output();
    assert!(out.starts_with("uid=0 gid=0\n"), "{out}");
    let maps: Vec<Vec<&str>> = out
        .lines()
        .skip(1)
        .take(2)
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(maps[0], ["0", "400000", "65536"], "uid_map: {out}");
    assert_eq!(maps[1], ["0", "400000", "65536"], "gid_map: {out}");
    assert!(
        out.contains("touched") && out.contains("root-writable"),
        "{out}"
    );
    assert_eq!(host_uids(state.pid), [BASE; 4], "the init on the host");
    let made = std::fs::metadata(volume.join("made-inside")).unwrap();
    assert_eq!((made.uid(), made.gid()), (BASE, BASE));

    // exec joins the user namespace too.
    let log = f.dir.path().join("exec.log");
    let file = std::fs::File::create(&log).unwrap();
    let p =
        f.rt.exec(
            &spec.id,
            ExecSpec {
                args: vec![
                    "sh".into(),
                    "-c".into(),
                    "id -u; cat /proc/self/uid_map".into(),
                ],
                stdout: Some(file.try_clone().unwrap().into()),
                stderr: Some(file.into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(p.wait().unwrap(), 0);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.starts_with("0\n"), "{text}");
    assert!(text.contains("400000"), "{text}");
    f.rt.delete(&spec.id, true).unwrap();
}

#[test]
fn without_a_user_namespace_root_is_host_root() {
    if !need_root() {
        return;
    }
    // The control for the test above: the same container without mappings is uid 0 on
    // the host.
    let f = Fixture::new();
    let spec = f.spec(&["sh", "-c", "echo ready; exec sleep 1000"]);
    let state = f.rt.run(&spec).unwrap();
    wait_for(|| f.output().contains("ready"));
    assert_eq!(host_uids(state.pid), [0; 4]);
}

#[test]
fn a_user_namespaced_container_joins_a_host_owned_network_namespace() {
    if !need_root() {
        return;
    }
    // As the agent's jobs do (it makes the netns, the container joins it): the netns is
    // owned by the host's user namespace, which the container's root has no rights in.
    let f = Fixture::new();
    let ours = std::fs::read_link("/proc/thread-self/ns/net").unwrap();
    let owner = f.spec(&["sleep", "1000"]);
    f.rt.run(&owner).unwrap();
    let netns = f.rt.netns_path(&owner.id).unwrap();
    let want = std::fs::read_link(&netns).unwrap();
    let mut spec = f.spec(&[
        "sh",
        "-c",
        "echo net=$(readlink /proc/self/ns/net) uid=$(id -u)",
    ]);
    spec.network = paas_runtime::Network::Join(netns);
    let opts = ContainerOptions {
        id_mappings: Some(IdMappings::range(BASE, 65536)),
        ..ContainerOptions::default()
    };
    f.rt.run_with(&spec, &opts).unwrap();
    let exit = f.rt.wait(&spec.id).unwrap();
    let out = f.output();
    assert_eq!(exit.code, Some(0), "{out}");
    assert!(
        out.contains(&format!("net={} uid=0", want.display())),
        "{out} (want {want:?})"
    );
    // The calling thread is back in its own network namespace.
    assert_eq!(
        std::fs::read_link("/proc/thread-self/ns/net").unwrap(),
        ours
    );
}

/// Options with a user namespace mapping container `0..65536` to host `BASE..`.
fn userns() -> ContainerOptions {
    ContainerOptions {
        id_mappings: Some(IdMappings::range(BASE, 65536)),
        ..ContainerOptions::default()
    }
}

/// (uid, gid, mode, size) of a host path, not following symlinks.
fn owner_mode(path: &std::path::Path) -> (u32, u32, u32, u64) {
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.uid(), m.gid(), m.mode(), m.size())
}

#[test]
fn idmapped_layers_give_the_image_files_to_the_containers_root() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    // An image as the agent unpacks it: owned by host root, one file of uid 1000, an
    // /app directory the app writes to.
    let app = f.layer.join("app");
    std::fs::create_dir(&app).unwrap();
    std::fs::write(app.join("index.html"), "v1\n").unwrap();
    std::fs::write(f.layer.join("etc/user-file"), "x\n").unwrap();
    std::os::unix::fs::chown(f.layer.join("etc/user-file"), Some(1000), Some(1000)).unwrap();
    let before: Vec<_> = [
        "app",
        "app/index.html",
        "etc",
        "etc/marker",
        "etc/user-file",
    ]
    .iter()
    .map(|p| (p.to_string(), owner_mode(&f.layer.join(p))))
    .collect();
    let spec = f.spec(&[
        "sh",
        "-c",
        "stat -c '%n %u:%g' /etc/marker /app /app/index.html /etc/user-file; \
         echo v2 >> /app/index.html && touch /app/new && mkdir /app/sub && \
         echo changed >> /etc/marker && echo app-writable; \
         stat -c '%n %u:%g' /app/new; echo ready; exec sleep 1000",
    ]);
    let state = f.rt.run_with(&spec, &userns()).unwrap();
    wait_for(|| f.output().contains("ready"));
    let out = f.output();
    for line in [
        "/etc/marker 0:0",
        "/app 0:0",
        "/app/index.html 0:0",
        "/etc/user-file 1000:1000",
        "app-writable",
        "/app/new 0:0",
    ] {
        assert!(out.contains(line), "missing {line:?} in:\n{out}");
    }
    // On the host, what the container wrote is in the upper dir, owned by its range.
    let upper = &state.upper_dir;
    for p in ["app", "app/index.html", "app/new", "app/sub", "etc/marker"] {
        let (uid, gid, _, _) = owner_mode(&upper.join(p));
        assert_eq!((uid, gid), (BASE, BASE), "{p} in the upper dir");
    }
    assert_eq!(
        std::fs::read_to_string(upper.join("app/index.html")).unwrap(),
        "v1\nv2\n"
    );
    // The idmapped mounts are gone from the host's mount table (the overlay keeps its
    // own clones); the layer on disk is as it was.
    let lower = f.config.state_dir.join(&spec.id).join("lower");
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !mountinfo.contains(&format!(" {}/", lower.display())),
        "{mountinfo}"
    );
    let after: Vec<_> = before
        .iter()
        .map(|(p, _)| (p.clone(), owner_mode(&f.layer.join(p))))
        .collect();
    assert_eq!(before, after, "the layer dir changed");
    assert!(!f.layer.join("app/new").exists());
    assert_eq!(
        std::fs::read_to_string(f.layer.join("app/index.html")).unwrap(),
        "v1\n"
    );

    // exec sees the same ownership.
    let log = f.dir.path().join("exec.log");
    let file = std::fs::File::create(&log).unwrap();
    let p =
        f.rt.exec(
            &spec.id,
            ExecSpec {
                args: vec![
                    "stat".into(),
                    "-c".into(),
                    "%u".into(),
                    "/etc/marker".into(),
                ],
                stdout: Some(file.try_clone().unwrap().into()),
                stderr: Some(file.into()),
                ..Default::default()
            },
        )
        .unwrap();
    assert_eq!(p.wait().unwrap(), 0);
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "0\n");
    f.rt.delete(&spec.id, true).unwrap();
    assert!(!f.config.state_dir.join(&spec.id).exists());
}

#[test]
fn without_idmapped_layers_the_image_is_nobodys_and_read_only() {
    if !need_root() {
        return;
    }
    // The control for the test above: the same user namespace, layers as they are.
    let f = Fixture::new();
    let spec = f.spec(&[
        "sh",
        "-c",
        "stat -c '%n %u:%g' /etc/marker; echo changed >> /etc/marker || echo refused",
    ]);
    let opts = ContainerOptions {
        idmap_layers: false,
        ..userns()
    };
    f.rt.run_with(&spec, &opts).unwrap();
    f.rt.wait(&spec.id).unwrap();
    let out = f.output();
    assert!(out.contains("/etc/marker 65534:65534"), "{out}");
    assert!(out.contains("refused"), "{out}");
}

#[test]
fn a_crash_between_idmapped_mount_and_detach_never_empties_the_layer_on_delete() {
    if !need_root() {
        return;
    }
    // As if the caller died while a layer was attached under `lower/0`: delete must
    // detach it before it removes the state dir, not delete the layer's files.
    let f = Fixture::new();
    let spec = f.spec(&["sleep", "1000"]);
    f.rt.run_with(&spec, &userns()).unwrap();
    let left = f.config.state_dir.join(&spec.id).join("lower/0");
    std::fs::create_dir_all(&left).unwrap();
    nix::mount::mount(
        Some(&f.layer),
        &left,
        None::<&str>,
        nix::mount::MsFlags::MS_BIND,
        None::<&str>,
    )
    .unwrap();
    f.rt.delete(&spec.id, true).unwrap();
    assert!(!common::is_mounted(&left));
    assert_eq!(
        std::fs::read_to_string(f.layer.join("etc/marker")).unwrap(),
        "from the layer\n"
    );
    assert!(f.layer.join("bin/busybox").exists());
}

#[test]
fn no_container_can_change_a_host_device_node() {
    if !need_root() {
        return;
    }
    let nodes = ["null", "zero", "full", "random", "urandom", "tty"];
    let host = |n: &str| owner_mode(&std::path::Path::new("/dev").join(n));
    let before: Vec<_> = nodes.iter().map(|n| host(n)).collect();
    let attack = "for n in null zero full random urandom tty; do \
         chown 1234:1234 /dev/$n && echo chown-$n-worked; \
         chmod 0777 /dev/$n && echo chmod-$n-worked; \
         rm -f /dev/$n && echo rm-$n-worked; done; \
         mknod /dev/mem2 c 1 1 && echo mknod-worked; \
         echo data > /dev/null && echo null-writable; \
         grep ' /dev/null ' /proc/self/mountinfo; echo done";
    let f = Fixture::new();
    // With a user namespace: the host's nodes are bound, owned by an unmapped uid.
    let spec = f.spec(&["sh", "-c", attack]);
    f.rt.run_with(&spec, &userns()).unwrap();
    f.rt.wait(&spec.id).unwrap();
    let out = f.output();
    assert!(out.contains("done"), "{out}");
    assert!(!out.contains("-worked"), "an attack worked:\n{out}");
    assert!(out.contains("null-writable"), "{out}");
    let line = out.lines().find(|l| l.contains(" /dev/null ")).unwrap();
    assert!(
        line.contains("nosuid") && line.contains("noexec"),
        "the bound node must be nosuid,noexec: {line}"
    );
    // Without one: the container's own nodes (mknod'ed on its /dev tmpfs), which it
    // may chmod; the host's stay as they were either way.
    std::fs::write(&f.log, "").unwrap();
    let spec = f.spec(&[
        "sh",
        "-c",
        "chmod 0600 /dev/null && chown 1234 /dev/zero && stat -c '%a %u' /dev/null /dev/zero",
    ]);
    f.rt.run(&spec).unwrap();
    f.rt.wait(&spec.id).unwrap();
    let out = f.output();
    assert!(out.contains("600 0\n666 1234\n"), "{out}");
    let after: Vec<_> = nodes.iter().map(|n| host(n)).collect();
    assert_eq!(before, after, "a host device node changed");
}

#[test]
fn exec_enters_a_user_namespaced_container_on_a_host_owned_network_namespace() {
    if !need_root() {
        return;
    }
    // The agent's jobs: a network namespace of the host's user namespace, joined. exec
    // must enter it before the container's user namespace, where it has no rights.
    let f = Fixture::new();
    let owner = f.spec(&["sleep", "1000"]);
    f.rt.run(&owner).unwrap();
    let netns = f.rt.netns_path(&owner.id).unwrap();
    let want = std::fs::read_link(&netns).unwrap();
    let mut spec = f.spec(&["sleep", "1000"]);
    spec.network = paas_runtime::Network::Join(netns);
    f.rt.run_with(&spec, &userns()).unwrap();
    let log = f.dir.path().join("exec.log");
    let file = std::fs::File::create(&log).unwrap();
    let p =
        f.rt.exec(
            &spec.id,
            ExecSpec {
                args: vec![
                    "sh".into(),
                    "-c".into(),
                    "readlink /proc/self/ns/net; id -u; head -1 /proc/self/uid_map".into(),
                ],
                stdout: Some(file.try_clone().unwrap().into()),
                stderr: Some(file.into()),
                ..Default::default()
            },
        )
        .unwrap();
    let code = p.wait().unwrap();
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(code, 0, "{text}");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], want.to_str().unwrap(), "{text}");
    assert_eq!(lines[1], "0", "{text}");
    assert!(lines[2].contains("400000"), "{text}");
}

#[test]
fn a_user_namespaced_container_starts_under_private_host_dirs() {
    if !need_root() {
        return;
    }
    // The agent's state dir (its containers, layers, volumes and inputs) is 0700 and
    // host root's: the container's root, an unmapped host uid there, may not walk it.
    // Every path the init needs outside the container is walked while it is still host
    // root (the rootfs) or opened by the parent (bind sources).
    use std::os::unix::fs::PermissionsExt;
    let f = Fixture::new();
    std::fs::set_permissions(f.dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let private = f.dir.path().join("private");
    std::fs::create_dir(&private).unwrap();
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o700)).unwrap();
    let volume = private.join("volume");
    std::fs::create_dir(&volume).unwrap();
    std::os::unix::fs::chown(&volume, Some(BASE), Some(BASE)).unwrap();
    let file = private.join("config.txt");
    std::fs::write(&file, "from a file\n").unwrap();
    let mut spec = f.spec(&[
        "sh",
        "-c",
        "pwd; cat /etc/config.txt; echo w > /data/w && echo volume-writable; ls /dev/null",
    ]);
    spec.cwd = "/work/dir".into();
    spec.mounts = vec![
        BindMount {
            source: volume.clone(),
            destination: "/data".into(),
            readonly: false,
        },
        BindMount {
            source: file,
            destination: "/etc/config.txt".into(),
            readonly: true,
        },
    ];
    f.rt.run_with(&spec, &userns()).unwrap();
    let exit = f.rt.wait(&spec.id).unwrap();
    let out = f.output();
    assert_eq!(exit.code, Some(0), "{out}");
    assert_eq!(
        out, "/work/dir\nfrom a file\nvolume-writable\n/dev/null\n",
        "{out}"
    );
    assert_eq!(owner_mode(&volume.join("w")).0, BASE);
}
