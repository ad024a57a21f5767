//! The `paas-runtime` debug CLI (needs root): `run` in the foreground, and the
//! create → start → state → kill → delete cycle across separate processes.

mod common;

use std::path::Path;
use std::process::{Command, Output};

use common::{busybox_rootfs, need_root, unique};
use paas_runtime::{ContainerState, Status};

struct Cli {
    dir: tempfile::TempDir,
    parent: String,
}

impl Cli {
    fn new() -> Cli {
        let dir = tempfile::tempdir().unwrap();
        busybox_rootfs(&dir.path().join("rootfs"));
        Cli {
            dir,
            parent: unique("cli"),
        }
    }

    fn rootfs(&self) -> String {
        self.dir.path().join("rootfs").display().to_string()
    }

    fn run(&self, args: &[&str]) -> Output {
        let state = self.dir.path().join("state");
        Command::new(env!("CARGO_BIN_EXE_paas-runtime"))
            .arg("--root")
            .arg(&state)
            .args(["--cgroup-parent", &self.parent])
            .args(args)
            .output()
            .unwrap()
    }

    fn state(&self, id: &str) -> ContainerState {
        let out = self.run(&["state", id]);
        assert!(out.status.success(), "{out:?}");
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Cli {
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
fn run_exits_with_the_containers_code_and_shows_its_output() {
    if !need_root() {
        return;
    }
    let cli = Cli::new();
    let id = unique("run");
    let rootfs = cli.rootfs();
    let out = cli.run(&[
        "run",
        "--rootfs",
        &rootfs,
        "--hostname",
        "boxy",
        "--memory",
        "67108864",
        "--pids",
        "20",
        &id,
        "--",
        "sh",
        "-c",
        "hostname; echo oops >&2; exit 3",
    ]);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "boxy\n");
    assert_eq!(String::from_utf8_lossy(&out.stderr), "oops\n");
    let listed = cli.run(&["list"]);
    assert!(
        !String::from_utf8_lossy(&listed.stdout).contains(&id),
        "run deletes"
    );

    let out = cli.run(&[
        "run",
        "--rootfs",
        &rootfs,
        &unique("run"),
        "--",
        "/bin/nosuch",
    ]);
    assert_eq!(out.status.code(), Some(125));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("exec \"/bin/nosuch\": No such file or directory"),
        "{err}"
    );
}

#[test]
fn create_start_state_kill_delete_across_processes() {
    if !need_root() {
        return;
    }
    let cli = Cli::new();
    let id = unique("cyc");
    let rootfs = cli.rootfs();
    let log = cli.dir.path().join("log");
    let log_arg = log.display().to_string();
    let out = cli.run(&[
        "create",
        "--rootfs",
        &rootfs,
        "--log",
        &log_arg,
        "-e",
        "GREETING=hello",
        &id,
        "--",
        "sh",
        "-c",
        "echo $GREETING; exec sleep 1000",
    ]);
    assert!(out.status.success(), "{out:?}");
    let created = cli.state(&id);
    assert_eq!(created.status, Status::Created);
    let pid: i32 = String::from_utf8_lossy(&out.stdout).trim().parse().unwrap();
    assert_eq!(created.pid, pid);

    let out = cli.run(&["start", &id]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(cli.state(&id).status, Status::Running);
    let listed = String::from_utf8_lossy(&cli.run(&["list"]).stdout).into_owned();
    assert!(
        listed.contains(&id) && listed.contains("running"),
        "{listed}"
    );

    let out = cli.run(&["delete", &id]);
    assert!(!out.status.success(), "running: needs --force");
    let out = cli.run(&["kill", &id, "KILL"]);
    assert!(out.status.success(), "{out:?}");
    // The init was re-parented when `create` exited; wait until it is gone.
    while cli.state(&id).status != Status::Stopped {
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let out = cli.run(&["delete", &id]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "hello\n");
    let out = cli.run(&["state", &id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not found"));
}
