//! containerd drives paas-runtime as its runc (needs root, containerd and ctr: see
//! deploy/install-deps). The test starts its own containerd (its own config, root, state
//! dir and socket under a temp dir, no CRI plugin), imports the `tiny` stack as an OCI
//! archive, and with `ctr run --runc-binary <paas-runtime>` (the runc v2 shim) runs,
//! execs into, pauses, resumes, kills and deletes containers. The shim passes runc's
//! global options (`--root … --log … --log-format json`) and reads failures back from
//! log.json, so a failed create shows paas-runtime's own message.
//!
//! Everything host-global is named by a unique containerd namespace (the shim's runc
//! root `/run/containerd/runc/<ns>`, the cgroups `/<ns>/<id>`); all of it, containerd
//! itself and any mount left under the temp dir are removed at the end.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{need_root_and, remove_cgroup_tree, tiny_oci_archive, unique, unmount_below};

const IMAGE: &str = "paas/tiny:latest";

struct Containerd {
    dir: tempfile::TempDir,
    child: Child,
    ns: String,
}

impl Containerd {
    fn start() -> Containerd {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let config = d.join("config.toml");
        std::fs::write(
            &config,
            format!(
                "version = 2\nroot = \"{root}\"\nstate = \"{state}\"\n\
                 disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\
                 [grpc]\n  address = \"{sock}\"\n\
                 [ttrpc]\n  address = \"{sock}.ttrpc\"\n\
                 [debug]\n  address = \"{debug}\"\n\
                 [metrics]\n  address = \"\"\n",
                root = d.join("root").display(),
                state = d.join("state").display(),
                sock = d.join("containerd.sock").display(),
                debug = d.join("debug.sock").display(),
            ),
        )
        .unwrap();
        let log = std::fs::File::create(d.join("containerd.log")).unwrap();
        let child = Command::new("containerd")
            .arg("--config")
            .arg(&config)
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("starting containerd");
        let c = Containerd {
            dir,
            child,
            ns: unique("ctd"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if c.ctr(&["version"]).status.success() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "containerd did not answer within 20 s: {}",
                c.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        c
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("containerd.log")).unwrap_or_default()
    }

    fn ctr(&self, args: &[&str]) -> Output {
        Command::new("timeout")
            .arg("60")
            .arg("ctr")
            .arg("--address")
            .arg(self.dir.path().join("containerd.sock"))
            .args(["--namespace", &self.ns])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `ctr` that must succeed; its stdout.
    fn ok(&self, args: &[&str]) -> String {
        let out = self.ctr(args);
        assert!(
            out.status.success(),
            "ctr {args:?}: {}\n{}\ncontainerd log tail:\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            tail(&self.log(), 30)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The STATUS column of `ctr task ls` for `id`.
    fn task_status(&self, id: &str) -> String {
        self.ok(&["task", "ls"])
            .lines()
            .find(|l| l.split_whitespace().next() == Some(id))
            .and_then(|l| l.split_whitespace().nth(2).map(str::to_owned))
            .unwrap_or_default()
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // Whatever a failed test left: tasks, containers, the image.
        for line in self
            .ctr(&["task", "ls", "-q"])
            .stdout
            .split(|b| *b == b'\n')
        {
            let id = String::from_utf8_lossy(line).trim().to_string();
            if !id.is_empty() {
                self.ctr(&["task", "kill", "-s", "KILL", &id]);
                self.ctr(&["task", "rm", "-f", &id]);
            }
        }
        for line in self
            .ctr(&["containers", "ls", "-q"])
            .stdout
            .split(|b| *b == b'\n')
        {
            let id = String::from_utf8_lossy(line).trim().to_string();
            if !id.is_empty() {
                self.ctr(&["containers", "rm", &id]);
            }
        }
        self.ctr(&["images", "rm", IMAGE]);
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.child.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        unmount_below(self.dir.path());
        let _ = std::fs::remove_dir_all(Path::new("/run/containerd/runc").join(&self.ns));
        remove_cgroup_tree(&self.ns);
    }
}

fn tail(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

fn runtime_binary() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_paas-runtime"))
}

#[test]
fn containerd_runs_execs_pauses_kills_and_deletes_with_paas_runtime() {
    if !need_root_and(&["containerd", "ctr", "containerd-shim-runc-v2"]) {
        return;
    }
    let ctd = Containerd::start();
    let archive = tiny_oci_archive(ctd.dir.path());
    ctd.ok(&[
        "images",
        "import",
        "--base-name",
        "paas/tiny",
        archive.to_str().unwrap(),
    ]);
    let runc = runtime_binary();
    let runc = runc.to_str().unwrap();

    // A foreground run: output through the shim's pipes, the exit code back, removed.
    let out = ctd.ctr(&[
        "run",
        "--rm",
        "--runc-binary",
        runc,
        IMAGE,
        "fg",
        "sh",
        "-c",
        "echo hello from $(hostname); exit 7",
    ]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "hello from fg",
        "{out:?}"
    );
    assert_eq!(
        out.status.code(),
        Some(7),
        "ctr run returns the container's code: {out:?}"
    );
    assert!(
        !ctd.ok(&["containers", "ls", "-q"]).contains("fg"),
        "--rm removed it"
    );

    // A detached container: exec (output and code), pause/resume, ps, kill, delete.
    ctd.ok(&[
        "run",
        "-d",
        "--runc-binary",
        runc,
        IMAGE,
        "bg",
        "sleep",
        "1000",
    ]);
    assert_eq!(ctd.task_status("bg"), "RUNNING");
    let out = ctd.ctr(&[
        "task",
        "exec",
        "--exec-id",
        "e1",
        "bg",
        "sh",
        "-c",
        "echo in-exec; ps -o pid,comm; exit 3",
    ]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("in-exec"), "{out:?}");
    assert!(
        text.lines()
            .any(|l| l.split_whitespace().eq(["1", "sleep"])),
        "the exec shares the container's pid namespace: {text}"
    );
    assert_eq!(out.status.code(), Some(3), "the exec's code: {out:?}");
    // With a terminal: ctr wants one of its own (script gives it a pty); the shim gets
    // the exec's pty master over --console-socket.
    let out = Command::new("timeout")
        .args(["60", "script", "-qec"])
        .arg(format!(
            "ctr --address {} --namespace {} task exec -t --exec-id e2 bg tty",
            ctd.dir.path().join("containerd.sock").display(),
            ctd.ns
        ))
        .arg("/dev/null")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/dev/pts/"),
        "exec -t gets a pty: {out:?}"
    );

    ctd.ok(&["task", "pause", "bg"]);
    assert_eq!(ctd.task_status("bg"), "PAUSED");
    ctd.ok(&["task", "resume", "bg"]);
    assert_eq!(ctd.task_status("bg"), "RUNNING");
    let pid = ctd
        .ok(&["task", "ls"])
        .lines()
        .find(|l| l.starts_with("bg "))
        .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        .unwrap();
    assert!(
        ctd.ok(&["task", "ps", "bg"]).contains(&pid),
        "task ps lists the init"
    );
    let metrics = ctd.ok(&["task", "metrics", "bg"]);
    assert!(metrics.contains("pids.current"), "{metrics}");

    ctd.ok(&["task", "kill", "-s", "KILL", "bg"]);
    let deadline = Instant::now() + Duration::from_secs(20);
    while ctd.task_status("bg") != "STOPPED" {
        assert!(Instant::now() < deadline, "bg did not stop after SIGKILL");
        std::thread::sleep(Duration::from_millis(100));
    }
    ctd.ok(&["task", "rm", "bg"]);
    ctd.ok(&["containers", "rm", "bg"]);
    let state_dir = Path::new("/run/containerd/runc").join(&ctd.ns);
    let left: Vec<_> = std::fs::read_dir(&state_dir)
        .map(|d| d.flatten().map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        left.is_empty(),
        "paas-runtime's state is gone after delete: {left:?}"
    );

    // A create that fails: the shim reads paas-runtime's error from log.json.
    let out = ctd.ctr(&[
        "run",
        "--rm",
        "--runc-binary",
        runc,
        IMAGE,
        "bad",
        "/no/such/program",
    ]);
    assert!(!out.status.success(), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("/no/such/program"),
        "the error names the program: {err}"
    );
    ctd.ctr(&["containers", "rm", "bad"]);
}
