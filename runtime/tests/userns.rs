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
