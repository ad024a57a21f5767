//! The OCI runtime CLI (needs root): `spec`, `run --bundle`, and create → start → state →
//! kill → delete across processes, with a busybox bundle, as tools written for runc
//! drive it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{busybox_rootfs, need_root, unique, wait_for};
use serde_json::Value;

struct Oci {
    dir: tempfile::TempDir,
    parent: String,
}

impl Oci {
    /// A bundle with a busybox rootfs and `paas-runtime spec`'s config.json.
    fn new() -> Oci {
        let dir = tempfile::tempdir().unwrap();
        busybox_rootfs(&dir.path().join("bundle/rootfs"));
        let oci = Oci {
            dir,
            parent: unique("oci"),
        };
        let out = oci.cmd(&["spec", "--bundle", oci.bundle().to_str().unwrap()]);
        assert!(out.status.success(), "{out:?}");
        oci
    }

    fn bundle(&self) -> PathBuf {
        self.dir.path().join("bundle")
    }

    fn edit(&self, f: impl FnOnce(&mut Value)) {
        let path = self.bundle().join("config.json");
        let mut config: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        f(&mut config);
        std::fs::write(&path, serde_json::to_vec(&config).unwrap()).unwrap();
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_paas-runtime"));
        c.arg("--root")
            .arg(self.dir.path().join("state"))
            .args(["--cgroup-parent", &self.parent])
            .args(args);
        c
    }

    fn cmd(&self, args: &[&str]) -> Output {
        self.command(args).output().unwrap()
    }

    fn state(&self, id: &str) -> Value {
        let out = self.cmd(&["state", id]);
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Oci {
    fn drop(&mut self) {
        for dir in std::fs::read_dir("/sys/fs/cgroup")
            .into_iter()
            .flatten()
            .flatten()
        {
            let _ = std::fs::remove_dir(dir.path().join(&self.parent));
        }
        let _ = std::fs::remove_dir(Path::new("/sys/fs/cgroup").join(&self.parent));
    }
}

#[test]
fn run_a_bundle_with_its_process_mounts_and_limits() {
    if !need_root() {
        return;
    }
    let oci = Oci::new();
    let shared = oci.dir.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::write(shared.join("note"), "from the host\n").unwrap();
    oci.edit(|c| {
        c["process"]["args"] = serde_json::json!([
            "sh",
            "-c",
            "hostname; echo env=$GREETING; id -u; cat /data/note; \
             echo x > /data/x 2>/dev/null || echo data-ro; \
             grep -E '^CapEff' /proc/self/status; cat /proc/kcore | wc -c; exit 3"
        ]);
        c["process"]["env"] = serde_json::json!(["PATH=/bin", "GREETING=hello"]);
        c["process"]["user"] = serde_json::json!({"uid": 1000, "gid": 1000});
        c["hostname"] = "oci-box".into();
        c["root"]["readonly"] = true.into();
        c["mounts"].as_array_mut().unwrap().push(serde_json::json!({
            "destination": "/data", "type": "bind",
            "source": shared.to_str().unwrap(), "options": ["rbind", "ro"]
        }));
        c["linux"]["resources"]["memory"] = serde_json::json!({"limit": 67108864});
    });
    let id = unique("r");
    let out = oci.cmd(&["run", "--bundle", oci.bundle().to_str().unwrap(), &id]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    // The config's capability sets (KILL, NET_BIND_SERVICE, AUDIT_WRITE) survive the
    // switch to uid 1000, as with runc.
    assert_eq!(
        text, "oci-box\nenv=hello\n1000\nfrom the host\ndata-ro\nCapEff:\t0000000020000420\n0\n",
        "{out:?}"
    );
    assert!(
        !oci.dir.path().join("state").join(&id).exists(),
        "run deletes"
    );
}

#[test]
fn create_start_state_kill_delete_like_runc() {
    if !need_root() {
        return;
    }
    let oci = Oci::new();
    oci.edit(|c| c["process"]["args"] = serde_json::json!(["sleep", "1000"]));
    let id = unique("c");
    let pid_file = oci.dir.path().join("pid");
    let bundle = oci.bundle();
    // The container inherits stdio, as runc's pass-through mode: don't capture it.
    let status = oci
        .command(&[
            "create",
            "--bundle",
            bundle.to_str().unwrap(),
            "--pid-file",
            pid_file.to_str().unwrap(),
            &id,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let state = oci.state(&id);
    assert_eq!(state["status"], "created", "{state}");
    assert_eq!(state["ociVersion"], "1.0.2");
    assert_eq!(
        state["bundle"],
        bundle.canonicalize().unwrap().to_str().unwrap()
    );
    let pid: i64 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    assert_eq!(state["pid"], pid);
    assert!(oci.cmd(&["start", &id]).status.success());
    assert_eq!(oci.state(&id)["status"], "running");
    let busy = oci.cmd(&["delete", &id]);
    assert!(!busy.status.success(), "a running container needs --force");
    assert!(oci.cmd(&["kill", &id, "KILL"]).status.success());
    wait_for(|| oci.state(&id)["status"] == "stopped");
    assert!(oci.cmd(&["delete", &id]).status.success());
    let gone = oci.cmd(&["state", &id]);
    assert!(!gone.status.success());
    assert!(String::from_utf8_lossy(&gone.stderr).contains("does not exist"));
}

#[test]
fn bad_bundles_get_clear_errors() {
    if !need_root() {
        return;
    }
    let oci = Oci::new();
    // A terminal without a console socket to send it to (`run` in the foreground would
    // relay it itself, see the console test).
    oci.edit(|c| c["process"]["terminal"] = true.into());
    let out = oci.cmd(&["create", "--bundle", oci.bundle().to_str().unwrap(), "t1"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--console-socket"),
        "{out:?}"
    );
    let empty = oci.dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let out = oci.cmd(&["run", "--bundle", empty.to_str().unwrap(), "t2"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("config.json"),
        "{out:?}"
    );
}

/// The pids cgroup dir of a container whose cgroupsPath is `path` (v1 or v2 host).
fn pids_cgroup(rel: &str) -> PathBuf {
    let root = Path::new("/sys/fs/cgroup");
    if root.join("cgroup.controllers").exists() {
        root.join(rel)
    } else {
        root.join("pids").join(rel)
    }
}

#[test]
fn cgroups_path_absolute_and_relative_and_listed_devices() {
    if !need_root() {
        return;
    }
    let oci = Oci::new();
    let top = unique("rt4-cgp");
    for (path, on_host) in [
        (format!("/{top}/box"), format!("{top}/box")),
        ("sub/box2".to_string(), format!("{}/sub/box2", oci.parent)),
    ] {
        oci.edit(|c| {
            c["process"]["args"] = serde_json::json!([
                "sh",
                "-c",
                "stat -c 'fuse=%t:%T %a %u:%g' /dev/fuse; sleep 1000"
            ]);
            c["linux"]["cgroupsPath"] = path.clone().into();
            c["linux"]["resources"]["pids"] = serde_json::json!({"limit": 42});
            c["linux"]["devices"] = serde_json::json!([{
                "path": "/dev/fuse", "type": "c", "major": 10, "minor": 229,
                "fileMode": 416, "uid": 3, "gid": 4
            }]);
        });
        let id = unique("g");
        let log = oci.dir.path().join(format!("{id}.out"));
        let status = oci
            .command(&["create", "--bundle", oci.bundle().to_str().unwrap(), &id])
            .stdout(std::fs::File::create(&log).unwrap())
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        let dir = pids_cgroup(&on_host);
        let pid = oci.state(&id)["pid"].as_i64().unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("pids.max"))
                .unwrap()
                .trim(),
            "42",
            "{path} → {}",
            dir.display()
        );
        let procs = std::fs::read_to_string(dir.join("cgroup.procs")).unwrap();
        assert!(procs.lines().any(|l| l == pid.to_string()), "{procs}");
        assert!(oci.cmd(&["start", &id]).status.success());
        wait_for(|| std::fs::read_to_string(&log).unwrap().contains("fuse="));
        let out = std::fs::read_to_string(&log).unwrap();
        assert_eq!(out, "fuse=a:e5 640 3:4\n");
        assert!(oci.cmd(&["delete", "--force", &id]).status.success());
        assert!(!dir.exists(), "delete removes {}", dir.display());
    }
    for dir in std::fs::read_dir("/sys/fs/cgroup").unwrap().flatten() {
        let _ = std::fs::remove_dir(dir.path().join(&top));
        let _ = std::fs::remove_dir(dir.path().join(&oci.parent).join("sub"));
    }
}

#[test]
fn hooks_run_in_order_with_the_state_and_failures_stop_create() {
    if !need_root() {
        return;
    }
    let oci = Oci::new();
    let out = oci.dir.path().join("hooks");
    std::fs::create_dir(&out).unwrap();
    let host_hook = |name: &str| {
        serde_json::json!({
            "path": "/bin/sh",
            // Each also keeps the container init's cgroups as it sees them.
            "args": ["sh", "-c", format!(
                "s=$(cat); echo \"$s\" > {d}/{name}; echo $HOOK >> {d}/order; \
                 pid=$(echo \"$s\" | sed -n 's/.*\"pid\": *\\([0-9]*\\).*/\\1/p'); \
                 cat /proc/$pid/cgroup > {d}/{name}.cgroup",
                d = out.display()
            )],
            "env": [format!("HOOK={name}")],
            "timeout": 10
        })
    };
    // createContainer and startContainer run in the container's mount namespace: their
    // /bin/sh is the bundle's busybox and they write into the container's /.
    let container_hook = |name: &str| {
        serde_json::json!({
            "path": "/bin/sh",
            "args": ["sh", "-c", format!("cat > /{name}")],
        })
    };
    oci.edit(|c| {
        c["process"]["args"] = serde_json::json!(["sleep", "1000"]);
        c["root"]["readonly"] = false.into();
        c["annotations"] = serde_json::json!({"org.example/k": "v"});
        c["hooks"] = serde_json::json!({
            "prestart": [host_hook("prestart")],
            "createRuntime": [host_hook("createRuntime")],
            "createContainer": [container_hook("createContainer")],
            "startContainer": [container_hook("startContainer")],
            // A failing poststart hook is a warning: the next one still runs.
            "poststart": [{"path": "/bin/false"}, host_hook("poststart")],
            "poststop": [host_hook("poststop")],
        });
    });
    let id = unique("h");
    let bundle = oci.bundle();
    let errors = oci.dir.path().join("create.err");
    let create = |id: &str| {
        let status = oci
            .command(&["create", "--bundle", bundle.to_str().unwrap(), id])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&errors).unwrap())
            .status()
            .unwrap();
        (status, std::fs::read_to_string(&errors).unwrap())
    };
    let (status, err) = create(&id);
    assert!(status.success(), "{err}");
    let order = || std::fs::read_to_string(out.join("order")).unwrap_or_default();
    assert_eq!(order(), "prestart\ncreateRuntime\n");
    let pre: Value = serde_json::from_slice(&std::fs::read(out.join("prestart")).unwrap()).unwrap();
    assert_eq!(
        pre["status"], "created",
        "runtime-tools wants created for prestart"
    );
    // The init joins its cgroups itself unless hooks come first: then the runtime has
    // moved it before they run.
    let seen = std::fs::read_to_string(out.join("prestart.cgroup")).unwrap();
    assert!(
        seen.contains(&id),
        "prestart saw the init outside its cgroup:\n{seen}"
    );
    let pid = oci.state(&id)["pid"].as_i64().unwrap();
    let state: Value =
        serde_json::from_slice(&std::fs::read(out.join("createRuntime")).unwrap()).unwrap();
    assert_eq!(state["id"], id.as_str());
    assert_eq!(state["status"], "creating");
    assert_eq!(state["annotations"]["org.example/k"], "v");
    assert_eq!(state["pid"], pid);
    assert_eq!(
        state["bundle"],
        bundle.canonicalize().unwrap().to_str().unwrap()
    );
    let cc: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("rootfs/createContainer")).unwrap())
            .unwrap();
    assert_eq!(cc["pid"], pid);
    assert!(!bundle.join("rootfs/startContainer").exists());

    assert!(oci.cmd(&["start", &id]).status.success());
    assert_eq!(order(), "prestart\ncreateRuntime\npoststart\n");
    let sc: Value =
        serde_json::from_slice(&std::fs::read(bundle.join("rootfs/startContainer")).unwrap())
            .unwrap();
    assert_eq!(sc["status"], "created");
    let ps: Value = serde_json::from_slice(&std::fs::read(out.join("poststart")).unwrap()).unwrap();
    assert_eq!(ps["status"], "running");

    assert!(oci.cmd(&["delete", "--force", &id]).status.success());
    assert_eq!(order(), "prestart\ncreateRuntime\npoststart\npoststop\n");
    let stopped: Value =
        serde_json::from_slice(&std::fs::read(out.join("poststop")).unwrap()).unwrap();
    assert_eq!(stopped["status"], "stopped");

    // A failing createRuntime hook fails create, and nothing is left behind.
    oci.edit(|c| {
        c["hooks"] = serde_json::json!({"createRuntime": [{
            "path": "/bin/sh", "args": ["sh", "-c", "echo no way >&2; exit 7"]
        }]});
    });
    let id = unique("hf");
    let (status, err) = create(&id);
    assert!(!status.success());
    assert!(
        err.contains("createRuntime hook") && err.contains("exit code 7") && err.contains("no way"),
        "{err}"
    );
    assert!(!oci.dir.path().join("state").join(&id).exists());
}

/// Accepts the console connection and takes the pty master out of it.
fn receive_console(listener: &std::os::unix::net::UnixListener) -> std::fs::File {
    let (conn, _) = listener.accept().unwrap();
    paas_runtime::oci::receive_console(&conn).unwrap().into()
}

#[test]
fn a_terminal_container_sends_its_console_to_the_console_socket() {
    use std::io::{Read, Write};
    if !need_root() {
        return;
    }
    let oci = Oci::new();
    oci.edit(|c| {
        c["process"]["terminal"] = true.into();
        c["process"]["args"] = serde_json::json!([
            "sh",
            "-c",
            "tty; [ -t 0 ] && [ -t 1 ] && echo on-a-tty; read line; echo got:$line; exit 5"
        ]);
    });
    let bundle = oci.bundle();
    let bundle = bundle.to_str().unwrap();

    // Without a socket: a clear error, and nothing is left behind.
    let id = unique("tty");
    let out = oci.cmd(&["create", "--bundle", bundle, &id]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--console-socket"), "{err}");
    assert!(!oci.dir.path().join("state").join(&id).exists());

    let sock = oci.dir.path().join("console.sock");
    let listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let receiver = std::thread::spawn(move || receive_console(&listener));
    // Through pipes, as a runc caller reads it: `create` must return while the container
    // waits for `start` (the init must not keep the caller's stdout open).
    let mut create = oci.command(&[
        "create",
        "--bundle",
        bundle,
        "--console-socket",
        sock.to_str().unwrap(),
        &id,
    ]);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || tx.send(create.output().unwrap()));
    let out = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("create did not return within 30 s");
    assert!(out.status.success(), "{out:?}");
    let master = receiver.join().unwrap();
    assert_eq!(oci.state(&id)["status"], "created");
    let out = oci.cmd(&["start", &id]);
    assert!(out.status.success(), "{out:?}");
    (&master).write_all(b"hello\n").unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        let mut buf = [0u8; 256];
        // EIO once the container's side of the pty is closed (it exited).
        while let Ok(n) = (&master).read(&mut buf) {
            if n == 0 {
                break;
            }
            seen.push_str(&String::from_utf8_lossy(&buf[..n]));
        }
        tx.send(seen)
    });
    let seen = rx
        .recv_timeout(std::time::Duration::from_secs(30))
        .expect("the console did not close within 30 s");
    assert!(seen.contains("/dev/pts/0"), "{seen}");
    assert!(seen.contains("on-a-tty"), "{seen}");
    assert!(seen.contains("got:hello"), "{seen}");
    wait_for(|| oci.state(&id)["status"] == "stopped");
    assert!(oci.cmd(&["delete", &id]).status.success());
}
