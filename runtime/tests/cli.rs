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

    /// `run` with stdin/stdout/stderr on /dev/null, for commands that leave a process
    /// holding them (`exec --detach`); only the status is kept.
    fn run_quiet(&self, args: &[&str]) -> std::process::ExitStatus {
        let state = self.dir.path().join("state");
        Command::new(env!("CARGO_BIN_EXE_paas-runtime"))
            .arg("--root")
            .arg(&state)
            .args(["--cgroup-parent", &self.parent])
            .args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .unwrap()
    }

    /// Waits (at most 10 s) until `id` is stopped.
    fn wait_stopped(&self, id: &str) {
        for _ in 0..1000 {
            if self.state(id).status == Status::Stopped {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        panic!("{id} did not stop within 10 s");
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
        "--output",
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
    cli.wait_stopped(&id);
    let out = cli.run(&["delete", &id]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "hello\n");
    let out = cli.run(&["state", &id]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
}

#[test]
fn runc_global_options_log_errors_as_json_and_words_engines_match() {
    if !need_root() {
        return;
    }
    let cli = Cli::new();
    let log = cli.dir.path().join("log.json");
    let log_arg = log.display().to_string();
    // The shim's form: global options before the command.
    let out = cli.run(&["--log", &log_arg, "--log-format", "json", "state", "nosuch"]);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("does not exist"));
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    assert_eq!(last["level"], "error");
    assert!(
        last["msg"]
            .as_str()
            .unwrap()
            .contains("\"nosuch\" does not exist"),
        "{last}"
    );
    // delete --force of a missing container is no error (runc's; engines rely on it).
    assert!(cli.run(&["delete", "--force", "nosuch"]).status.success());
    assert!(!cli.run(&["delete", "nosuch"]).status.success());
    // --systemd-cgroup is refused with what to do instead.
    let out = cli.run(&[
        "--systemd-cgroup",
        "create",
        "--bundle",
        "/nonexistent",
        "x",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("cgroupfs"),
        "{out:?}"
    );
    // An exited container: kill says "container not running", ps and state agree.
    let rootfs = cli.rootfs();
    let id = unique("gone");
    let out = cli.run(&["create", "--rootfs", &rootfs, &id, "--", "true"]);
    assert!(out.status.success(), "{out:?}");
    assert!(cli.run(&["start", &id]).status.success());
    cli.wait_stopped(&id);
    let out = cli.run(&["kill", &id, "9"]);
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("container not running"),
        "{out:?}"
    );
    let out = cli.run(&["ps", "--format", "json", &id]);
    assert!(out.status.success(), "{out:?}");
    let pids: Vec<i32> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(pids.is_empty(), "{pids:?}");
    assert!(cli.run(&["delete", &id]).status.success());
}

#[test]
fn exec_ps_update_events_and_kill_all_on_a_running_container() {
    if !need_root() {
        return;
    }
    let cli = Cli::new();
    let rootfs = cli.rootfs();
    let id = unique("busy");
    let out = cli.run(&[
        "create", "--rootfs", &rootfs, "--memory", "67108864", &id, "--", "sleep", "1000",
    ]);
    assert!(out.status.success(), "{out:?}");
    assert!(cli.run(&["start", &id]).status.success());
    let init = cli.state(&id).pid;

    // exec --process with runc's JSON, --detach and --pid-file: the process's own pid.
    let process = cli.dir.path().join("process.json");
    std::fs::write(
        &process,
        serde_json::json!({
            "args": ["sleep", "999"], "cwd": "/", "env": ["PATH=/bin"],
            "user": {"uid": 0, "gid": 0}, "terminal": false
        })
        .to_string(),
    )
    .unwrap();
    let pid_file = cli.dir.path().join("exec.pid");
    // The detached process keeps the stdio it is given (runc's too): not our pipes.
    let out = cli.run_quiet(&[
        "exec",
        "--process",
        process.to_str().unwrap(),
        "--detach",
        "--pid-file",
        pid_file.to_str().unwrap(),
        &id,
    ]);
    assert!(out.success(), "{out:?}");
    let exec_pid: i32 = std::fs::read_to_string(&pid_file).unwrap().parse().unwrap();
    let cmdline = std::fs::read_to_string(format!("/proc/{exec_pid}/cmdline")).unwrap();
    assert_eq!(
        cmdline, "sleep\u{0}999\u{0}",
        "the pid file names the process itself"
    );

    // exec ID CMD without `--`, its code back.
    let out = cli.run(&["exec", &id, "sh", "-c", "exit 4"]);
    assert_eq!(out.status.code(), Some(4), "{out:?}");

    let out = cli.run(&["ps", "--format", "json", &id]);
    let pids: Vec<i32> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(pids.first(), Some(&init), "{pids:?}");
    assert!(pids.contains(&exec_pid), "{pids:?}");

    // update: a new memory limit reaches the cgroup file.
    let out = cli.run(&["update", "--memory", "32m", "--pids-limit", "50", &id]);
    assert!(out.status.success(), "{out:?}");
    let limits: Vec<String> = std::fs::read_dir("/sys/fs/cgroup/memory")
        .ok()
        .map(|_| {
            let cg = std::fs::read_to_string(format!("/proc/{init}/cgroup")).unwrap();
            cg.lines()
                .filter(|l| l.split(':').nth(1) == Some("memory"))
                .map(|l| {
                    let rel = l.splitn(3, ':').nth(2).unwrap();
                    std::fs::read_to_string(format!(
                        "/sys/fs/cgroup/memory{rel}/memory.limit_in_bytes"
                    ))
                    .unwrap()
                    .trim()
                    .to_string()
                })
                .collect()
        })
        .unwrap_or_default();
    if !limits.is_empty() {
        assert_eq!(limits, vec![(32u64 << 20).to_string()]);
    }

    let out = cli.run(&["events", "--stats", &id]);
    assert!(out.status.success(), "{out:?}");
    let ev: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ev["type"], "stats");
    assert_eq!(ev["id"], id.as_str());
    assert!(ev["data"]["pids"]["current"].as_u64().unwrap() >= 2, "{ev}");

    let out = cli.run(&["list", "--format", "json"]);
    let list: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(list[0]["id"], id.as_str());
    assert_eq!(list[0]["status"], "running");

    // kill --all: every process gets it, the exec'd one too.
    let out = cli.run(&["kill", "--all", &id, "KILL"]);
    assert!(out.status.success(), "{out:?}");
    cli.wait_stopped(&id);
    for _ in 0..500 {
        let gone = std::fs::read_to_string(format!("/proc/{exec_pid}/stat"))
            .map(|s| s.split_whitespace().nth(2) == Some("Z"))
            .unwrap_or(true);
        if gone {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let alive = std::fs::read_to_string(format!("/proc/{exec_pid}/stat"))
        .map(|s| s.split_whitespace().nth(2) != Some("Z"))
        .unwrap_or(false);
    assert!(!alive, "kill --all reached the exec'd process");
    assert!(cli.run(&["delete", &id]).status.success());
}
