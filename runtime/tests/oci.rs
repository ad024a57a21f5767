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
    assert!(String::from_utf8_lossy(&gone.stderr).contains("not found"));
}

#[test]
fn bad_bundles_get_clear_errors() {
    if !need_root() {
        return;
    }
    let oci = Oci::new();
    oci.edit(|c| c["process"]["terminal"] = true.into());
    let out = oci.cmd(&["run", "--bundle", oci.bundle().to_str().unwrap(), "t1"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("terminal"),
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
