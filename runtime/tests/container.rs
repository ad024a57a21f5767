//! Containers for real (needs root): namespaces, overlay, cgroups, lifecycle, cleanup.

mod common;

use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::PathBuf;

use common::{is_mounted, need_root, unique, Fixture};
use paas_runtime::{BindMount, Error, Network, Resources, Runtime, Status};

#[test]
fn init_is_pid_1_and_sees_no_host_pids() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let spec = f.spec(&["sh", "-c", "echo pid=$$; hostname; ls /proc; echo ---; ps"]);
    let (exit, out) = f.run_to_end(&spec);
    assert_eq!(exit.code, Some(0), "{out}");
    let mut lines = out.lines();
    assert_eq!(lines.next(), Some("pid=1"), "{out}");
    assert_eq!(lines.next(), Some(spec.hostname.as_str()), "{out}");
    let (procs, ps) = out.split_once("---").unwrap();
    let pids: Vec<u32> = procs
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    assert!(pids.contains(&1), "{out}");
    assert!(
        pids.iter().all(|&p| p < 10),
        "only the container's pids: {pids:?}"
    );
    let me = std::process::id();
    assert!(!pids.contains(&me), "the test process is invisible");
    // ps: a header plus sh and ps itself, nothing from the host.
    assert!(ps.trim().lines().count() <= 4, "{ps}");
    assert!(!ps.contains("container-"), "{ps}");
}

#[test]
fn memory_pids_and_cpu_limits_are_in_the_containers_cgroup() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let mut spec = f.spec(&["sleep", "1000"]);
    spec.resources = Resources {
        memory_bytes: Some(64 << 20),
        pids_max: Some(50),
        cpu_shares: Some(512),
    };
    let state = f.rt.create(&spec).unwrap();
    let root = &f.config.cgroup_root;
    let parent = &f.config.cgroup_parent;
    let v2 = root.join("cgroup.controllers").exists();
    let (mem, pids, cpu, cpu_value) = if v2 {
        let dir = root.join(parent).join(&spec.id);
        (
            dir.join("memory.max"),
            dir.join("pids.max"),
            dir.join("cpu.weight"),
            "20",
        )
    } else {
        let dir = |c: &str| root.join(c).join(parent).join(&spec.id);
        (
            dir("memory").join("memory.limit_in_bytes"),
            dir("pids").join("pids.max"),
            dir("cpu").join("cpu.shares"),
            "512",
        )
    };
    let read = |p: &PathBuf| fs::read_to_string(p).unwrap().trim().to_owned();
    assert_eq!(read(&mem), "67108864");
    assert_eq!(read(&pids), "50");
    assert_eq!(read(&cpu), cpu_value);
    // The init is in that cgroup.
    let procs = mem.with_file_name("cgroup.procs");
    assert_eq!(read(&procs), state.pid.to_string());
    let own = fs::read_to_string(format!("/proc/{}/cgroup", state.pid)).unwrap();
    assert!(own.contains(&format!("/{parent}/{}", spec.id)), "{own}");
    let dirs = f.rt.cgroup_paths(&spec.id);
    assert!(!dirs.is_empty());
    for dir in dirs {
        let procs = fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        assert_eq!(procs.trim(), state.pid.to_string(), "{}", dir.display());
    }
    f.rt.delete(&spec.id, true).unwrap();
}

#[test]
fn the_container_sees_its_own_cgroup_as_root() {
    if !need_root() {
        return;
    }
    if !std::path::Path::new("/proc/self/ns/cgroup").exists() {
        eprintln!("skipping: no cgroup namespaces on this kernel");
        return;
    }
    let f = Fixture::new();
    let (exit, out) = f.run_to_end(&f.spec(&["cat", "/proc/self/cgroup"]));
    assert_eq!(exit.code, Some(0), "{out}");
    for line in out.lines() {
        assert!(
            line.ends_with(":/"),
            "cgroup namespace rooted at the container: {out}"
        );
    }
}

#[test]
fn writes_land_in_the_upper_dir_not_the_layer() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let spec = f.spec(&[
        "sh",
        "-c",
        "echo hi > /written && rm /etc/marker && echo ok",
    ]);
    let (exit, out) = f.run_to_end(&spec);
    assert_eq!(exit.code, Some(0), "{out}");
    let state = f.rt.state(&spec.id).unwrap();
    assert_eq!(
        fs::read_to_string(state.upper_dir.join("written")).unwrap(),
        "hi\n"
    );
    assert_eq!(
        fs::read_to_string(state.rootfs.join("written")).unwrap(),
        "hi\n"
    );
    assert!(!f.layer.join("written").exists(), "the layer is untouched");
    assert!(
        f.layer.join("etc/marker").exists(),
        "the layer is untouched"
    );
    assert!(
        !state.rootfs.join("etc/marker").exists(),
        "deleted in the merged view"
    );
    let whiteout = fs::symlink_metadata(state.upper_dir.join("etc/marker")).unwrap();
    assert!(whiteout.file_type().is_char_device() && whiteout.rdev() == 0);
    assert!(is_mounted(&state.rootfs));
}

#[test]
fn layers_stack_top_most_first() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let top = f.dir.path().join("top");
    fs::create_dir_all(top.join("etc")).unwrap();
    fs::write(top.join("etc/marker"), "from the top layer\n").unwrap();
    let mut spec = f.spec(&["cat", "/etc/marker"]);
    spec.layers = vec![top, f.layer.clone()];
    let (exit, out) = f.run_to_end(&spec);
    assert_eq!(exit.code, Some(0), "{out}");
    assert_eq!(out, "from the top layer\n");
}

#[test]
fn env_cwd_and_user_are_applied() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let mut spec = f.spec(&["sh", "-c", "echo $FOO; pwd; id -u; id -g"]);
    spec.env.push("FOO=bar baz".into());
    spec.cwd = "/work/dir".into();
    spec.user = Some((1234, 4321));
    let (exit, out) = f.run_to_end(&spec);
    assert_eq!(exit.code, Some(0), "{out}");
    assert_eq!(out, "bar baz\n/work/dir\n1234\n4321\n");
}

#[test]
fn exec_failures_are_start_errors_and_leave_nothing() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let spec = f.spec(&["/bin/nosuch"]);
    match f.rt.run(&spec) {
        Err(Error::Start(msg)) => {
            assert!(
                msg.contains("exec \"/bin/nosuch\": No such file or directory"),
                "{msg}"
            )
        }
        other => panic!("expected Error::Start, got {other:?}"),
    }
    assert!(matches!(f.rt.state(&spec.id), Err(Error::NotFound(_))));

    // A file the kernel refuses to exec: found by create, reported by start via the FIFO.
    let bad = f.layer.join("bin/bad");
    fs::write(&bad, "not a program\n").unwrap();
    fs::set_permissions(&bad, fs::Permissions::from_mode(0o755)).unwrap();
    let spec = f.spec(&["/bin/bad"]);
    let state = f.rt.create(&spec).unwrap();
    match f.rt.start(&spec.id) {
        Err(Error::Start(msg)) => {
            assert!(
                msg.contains("exec \"/bin/bad\": Exec format error"),
                "{msg}"
            )
        }
        other => panic!("expected Error::Start, got {other:?}"),
    }
    assert_eq!(f.rt.state(&spec.id).unwrap().status, Status::Stopped);
    assert_eq!(f.rt.wait(&spec.id).unwrap().code, Some(127));
    f.rt.delete(&spec.id, false).unwrap();
    assert!(!is_mounted(&state.rootfs));
}

#[test]
fn run_execs_at_once_and_reports_a_refused_exec() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    // `run` without hooks: no start handshake, so no FIFOs in the state dir, and the
    // container is running (not created) when `run` returns.
    let spec = f.spec(&["sleep", "30"]);
    let state = f.rt.run(&spec).unwrap();
    assert_eq!(state.status, Status::Running);
    assert_eq!(f.rt.state(&spec.id).unwrap().status, Status::Running);
    let dir = f.config.state_dir.join(&spec.id);
    assert!(!dir.join("exec.fifo").exists() && !dir.join("exec.result").exists());
    match f.rt.start(&spec.id) {
        Err(Error::Start(msg)) => assert!(msg.contains("is running"), "{msg}"),
        other => panic!("expected Error::Start, got {other:?}"),
    }
    f.rt.delete(&spec.id, true).unwrap();
    assert!(!dir.exists());

    // What only the kernel can refuse comes back from `run` itself, after the setup
    // succeeded, with the kernel's reason; nothing is left behind.
    let bad = f.layer.join("bin/bad");
    fs::write(&bad, "not a program\n").unwrap();
    fs::set_permissions(&bad, fs::Permissions::from_mode(0o755)).unwrap();
    let spec = f.spec(&["/bin/bad"]);
    match f.rt.run(&spec) {
        Err(Error::Start(msg)) => {
            assert_eq!(msg, "exec \"/bin/bad\": Exec format error");
        }
        other => panic!("expected Error::Start, got {other:?}"),
    }
    assert!(matches!(f.rt.state(&spec.id), Err(Error::NotFound(_))));
    assert!(!f.config.state_dir.join(&spec.id).exists());
}

#[test]
fn create_then_start_from_a_fresh_runtime() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let spec = f.spec(&["sh", "-c", "echo started; exec sleep 1000"]);
    let created = {
        let rt = Runtime::new(f.config.clone()).unwrap();
        rt.create(&spec).unwrap()
    };
    assert_eq!(created.status, Status::Created);
    assert!(created.pid > 0);
    let rt = Runtime::new(f.config.clone()).unwrap();
    let state = rt.state(&spec.id).unwrap();
    assert_eq!((state.status, state.pid), (Status::Created, created.pid));
    assert_eq!(f.output(), "", "nothing runs before start");
    rt.start(&spec.id).unwrap();
    assert_eq!(rt.state(&spec.id).unwrap().status, Status::Running);
    assert!(
        matches!(rt.start(&spec.id), Err(Error::Start(_))),
        "only once"
    );
    common::wait_for(|| f.output() == "started\n");
    rt.kill(&spec.id, libc::SIGKILL).unwrap();
    rt.wait(&spec.id).unwrap();
    assert_eq!(f.output(), "started\n");
}

#[test]
fn kill_and_wait_report_the_signal() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let spec = f.spec(&["sleep", "1000"]);
    f.rt.run(&spec).unwrap();
    f.rt.kill(&spec.id, libc::SIGKILL).unwrap();
    let exit = f.rt.wait(&spec.id).unwrap();
    assert_eq!(
        (exit.code, exit.signal, exit.oom_killed),
        (None, Some(9), false)
    );
    assert_eq!(f.rt.state(&spec.id).unwrap().status, Status::Stopped);
    assert_eq!(f.rt.wait(&spec.id).unwrap(), exit, "kept in the state file");
    assert!(matches!(
        f.rt.kill(&spec.id, libc::SIGTERM),
        Err(Error::Sys {
            source: nix::Error::ESRCH,
            ..
        })
    ));
}

#[test]
fn exit_code_is_reported() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let (exit, _) = f.run_to_end(&f.spec(&["sh", "-c", "exit 7"]));
    assert_eq!((exit.code, exit.signal), (Some(7), None));
}

#[test]
fn delete_leaves_no_mount_cgroup_or_state() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let mut spec = f.spec(&["sleep", "1000"]);
    spec.resources.memory_bytes = Some(32 << 20);
    let state = f.rt.run(&spec).unwrap();
    let cgroups = f.rt.cgroup_paths(&spec.id);
    assert!(!cgroups.is_empty() && cgroups.iter().all(|d| d.exists()));
    assert!(is_mounted(&state.rootfs));
    match f.rt.delete(&spec.id, false) {
        Err(Error::Sys { what, .. }) => assert!(what.contains("is running"), "{what}"),
        other => panic!("a running container needs force: {other:?}"),
    }
    f.rt.delete(&spec.id, true).unwrap();
    assert!(!is_mounted(&state.rootfs), "no mount left");
    for dir in &cgroups {
        assert!(!dir.exists(), "cgroup {} left", dir.display());
    }
    assert!(
        !f.config.state_dir.join(&spec.id).exists(),
        "state dir left"
    );
    assert!(!std::path::Path::new(&format!("/proc/{}", state.pid)).exists());
    assert!(matches!(
        f.rt.delete(&spec.id, true),
        Err(Error::NotFound(_))
    ));
    assert!(f.rt.list().unwrap().is_empty());
    let parents = f.cgroup_parents();
    assert!(!parents.is_empty());
    f.rt.remove_cgroup_parent().unwrap();
    assert!(parents.iter().all(|p| !p.exists()), "{parents:?}");
}

#[test]
fn delete_cleans_a_half_created_container() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    // As if a creator crashed right after making the dir: no state file, no mount.
    let id = unique("half");
    fs::create_dir_all(f.config.state_dir.join(&id).join("upper")).unwrap();
    let listed = f.rt.list().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].status, listed[0].pid), (Status::Creating, 0));
    f.rt.delete(&id, false).unwrap();
    assert!(!f.config.state_dir.join(&id).exists());
}

#[test]
fn network_none_has_only_lo_and_join_uses_the_namespace() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let (exit, out) = f.run_to_end(&f.spec(&["ls", "/sys/class/net"]));
    assert_eq!(exit.code, Some(0), "{out}");
    assert_eq!(out, "lo\n");

    let name = unique("ns");
    let ok = std::process::Command::new("ip")
        .args(["netns", "add", &name])
        .status()
        .unwrap();
    assert!(ok.success());
    let path = PathBuf::from("/run/netns").join(&name);
    let inode = fs::metadata(&path).unwrap().ino();
    fs::write(&f.log, "").unwrap();
    let mut spec = f.spec(&["readlink", "/proc/self/ns/net"]);
    spec.network = Network::Join(path);
    let result = f.rt.run(&spec).map(|_| f.rt.wait(&spec.id));
    let _ = std::process::Command::new("ip")
        .args(["netns", "del", &name])
        .status();
    assert_eq!(result.unwrap().unwrap().code, Some(0));
    assert_eq!(f.output(), format!("net:[{inode}]\n"));
}

#[test]
fn bind_mounts_read_only_and_read_write() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let data = f.dir.path().join("data");
    let out_dir = f.dir.path().join("outdir");
    fs::create_dir_all(&data).unwrap();
    fs::create_dir_all(&out_dir).unwrap();
    fs::write(data.join("file"), "input\n").unwrap();
    let mut spec = f.spec(&[
        "sh",
        "-c",
        "cat /data/file; echo made > /out/x; touch /data/y 2>/dev/null || echo ro",
    ]);
    spec.mounts = vec![
        BindMount {
            source: data.clone(),
            destination: "/data".into(),
            readonly: true,
        },
        BindMount {
            source: out_dir.clone(),
            destination: "/deep/out".into(),
            readonly: false,
        },
    ];
    // /out is a symlink in the image: the mount must land inside the rootfs.
    std::os::unix::fs::symlink("/deep/out", f.layer.join("out")).unwrap();
    let (exit, out) = f.run_to_end(&spec);
    assert_eq!(exit.code, Some(0), "{out}");
    assert_eq!(out, "input\nro\n");
    assert_eq!(fs::read_to_string(out_dir.join("x")).unwrap(), "made\n");
    assert!(!data.join("y").exists());
}

#[test]
fn out_of_memory_is_reported() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let mut spec = f.spec(&[
        "sh",
        "-c",
        "x=$(head -c 400000000 /dev/zero | tr '\\0' a); echo survived",
    ]);
    spec.resources.memory_bytes = Some(16 << 20);
    let (exit, out) = f.run_to_end(&spec);
    assert!(exit.oom_killed, "{exit:?} {out}");
    assert_ne!(exit.code, Some(0), "{out}");
}

#[test]
fn many_containers_at_once_from_many_threads() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let specs: Vec<_> = (0..6)
        .map(|i| {
            let mut s = f.spec(&["sh", "-c", &format!("exit {i}")]);
            s.stdout = f.dir.path().join(format!("log{i}"));
            s.stderr = s.stdout.clone();
            s
        })
        .collect();
    std::thread::scope(|scope| {
        for (i, spec) in specs.iter().enumerate() {
            let rt = f.rt.clone();
            scope.spawn(move || {
                rt.run(spec).unwrap();
                assert_eq!(rt.wait(&spec.id).unwrap().code, Some(i as i32));
                rt.delete(&spec.id, false).unwrap();
            });
        }
    });
    assert!(f.rt.list().unwrap().is_empty());
}

#[test]
fn invalid_specs_and_duplicate_ids_are_refused() {
    if !need_root() {
        return;
    }
    let f = Fixture::new();
    let mut spec = f.spec(&["true"]);
    spec.id = "../escape".into();
    assert!(matches!(f.rt.create(&spec), Err(Error::InvalidSpec(_))));
    let spec = f.spec(&["sleep", "1000"]);
    f.rt.create(&spec).unwrap();
    assert!(matches!(f.rt.create(&spec), Err(Error::AlreadyExists(_))));
    assert!(matches!(f.rt.state("nope"), Err(Error::NotFound(_))));
    assert!(matches!(f.rt.start("../x"), Err(Error::NotFound(_))));
}

#[test]
fn creating_while_other_threads_allocate_never_hangs() {
    if !need_root() {
        return;
    }
    // If the child allocated or took a lock after clone, a copy of a lock held by one of
    // these threads would hang it (and this test) sooner or later.
    // One malloc arena for every thread, so the churners below hold the very lock the
    // cloning thread's copy would need (by default each thread gets an arena of its own).
    // SAFETY: mallopt only tunes glibc's allocator; any value is safe.
    unsafe { libc::mallopt(libc::M_ARENA_MAX, 1) };
    let f = Fixture::new();
    let stop = std::sync::atomic::AtomicBool::new(false);
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                let mut keep = Vec::new();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    keep.push(vec![0u8; 4096].into_boxed_slice());
                    if keep.len() > 256 {
                        keep.clear();
                    }
                }
            });
        }
        // Stops the allocating threads even when an assertion below panics.
        struct StopOnDrop<'a>(&'a std::sync::atomic::AtomicBool);
        impl Drop for StopOnDrop<'_> {
            fn drop(&mut self) {
                self.0.store(true, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let _stop = StopOnDrop(&stop);
        for _ in 0..20 {
            let spec = f.spec(&["true"]);
            let (exit, out) = f.run_to_end(&spec);
            assert_eq!(exit.code, Some(0), "{out}");
            f.rt.delete(&spec.id, false).unwrap();
        }
    });
}
