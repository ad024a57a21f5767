//! Podman drives paas-runtime as its OCI runtime through conmon (needs root, podman and
//! conmon: see deploy/install-deps): `run`, `exec` (plain and with a terminal), `pause`/
//! `unpause`, `top`, `stats --no-stream`, `stop`, `rm`, with `--runtime <paas-runtime>`.
//! Podman gets its own `--root`, `--runroot`, `--tmpdir`, the vfs storage driver, the
//! cgroupfs manager, no network, and a unique `--cgroup-parent`; the image is the `tiny`
//! stack loaded from an OCI archive; paas-runtime runs through a wrapper that gives it
//! the test's own `--root`. Everything is removed at the end.
//!
//! Each container gets `--ulimit nofile=1024:1024 --ulimit nproc=4096:4096`: Podman's
//! defaults (nofile and nproc 1048576) are above this sandbox's hard limits and it has
//! no `CAP_SYS_RESOURCE`, so runc and crun fail here without it just as paas-runtime
//! does ("setrlimit RLIMIT_NOFILE: Operation not permitted").

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{need_root_and, remove_cgroup_tree, tiny_oci_archive, unique, unmount_below};

struct Podman {
    dir: tempfile::TempDir,
    /// cgroup parent of every container (and of conmon), below each hierarchy's root.
    parent: String,
}

impl Podman {
    fn new() -> Podman {
        let pod = Podman {
            dir: tempfile::tempdir().unwrap(),
            parent: unique("pod"),
        };
        // Podman passes the runtime no --root, and its `--runtime-flag`s do not reach the
        // cleanup it runs when a container exits: a wrapper gives paas-runtime this
        // test's own state dir every time.
        let wrapper = pod.dir.path().join("paas-runtime");
        std::fs::write(
            &wrapper,
            format!(
                "#!/bin/sh\nexec '{}' --root '{}' \"$@\"\n",
                env!("CARGO_BIN_EXE_paas-runtime"),
                pod.state_dir().display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(
            &wrapper,
            std::os::unix::fs::PermissionsExt::from_mode(0o755),
        )
        .unwrap();
        pod
    }

    fn base_args(&self) -> Vec<String> {
        let d = self.dir.path();
        vec![
            "--root".into(),
            d.join("root").display().to_string(),
            "--runroot".into(),
            d.join("runroot").display().to_string(),
            "--tmpdir".into(),
            d.join("tmp").display().to_string(),
            "--storage-driver".into(),
            "vfs".into(),
            "--cgroup-manager".into(),
            "cgroupfs".into(),
            "--events-backend".into(),
            "file".into(),
            "--runtime".into(),
            d.join("paas-runtime").display().to_string(),
        ]
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("runtime-state")
    }

    /// The containers paas-runtime has state for.
    fn runtime_states(&self) -> Vec<String> {
        std::fs::read_dir(self.state_dir())
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().join("state.json").exists())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// The options every container gets (see the module doc).
    fn container_args(&self) -> Vec<String> {
        [
            "--network",
            "none",
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=4096:4096",
            "--cgroup-parent",
        ]
        .iter()
        .map(|s| s.to_string())
        .chain([format!("/{}", self.parent)])
        .collect()
    }

    fn podman(&self, args: &[&str]) -> Output {
        Command::new("timeout")
            .arg("120")
            .arg("podman")
            .args(self.base_args())
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let out = self.podman(args);
        assert!(
            out.status.success(),
            "podman {args:?}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `podman` under `script`, which gives it the terminal `-t` needs.
    fn with_terminal(&self, args: &[&str]) -> Output {
        let quote = |s: &str| format!("'{}'", s.replace('\'', r"'\''"));
        let line: Vec<String> = std::iter::once("podman".to_string())
            .chain(self.base_args())
            .chain(args.iter().map(|s| s.to_string()))
            .map(|s| quote(&s))
            .collect();
        Command::new("timeout")
            .args(["120", "script", "-qec"])
            .arg(line.join(" "))
            .arg("/dev/null")
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    fn status(&self, name: &str) -> String {
        self.ok(&["inspect", "--format", "{{.State.Status}}", name])
            .trim()
            .to_string()
    }
}

impl Drop for Podman {
    fn drop(&mut self) {
        self.podman(&["rm", "--all", "--force", "--time", "0"]);
        self.podman(&["rmi", "--all", "--force"]);
        unmount_below(self.dir.path());
        remove_cgroup_tree(&self.parent);
        // vfs layers are plain directories; some are read-only for their owner.
        let _ = Command::new("rm").arg("-rf").arg(self.dir.path()).status();
    }
}

fn run_args<'a>(p: &'a [String], rest: &[&'a str]) -> Vec<&'a str> {
    p.iter()
        .map(String::as_str)
        .chain(rest.iter().copied())
        .collect()
}

#[test]
fn podman_runs_execs_pauses_stops_and_removes_with_paas_runtime() {
    if !need_root_and(&["podman", "conmon"]) {
        return;
    }
    let pod = Podman::new();
    let archive: PathBuf = tiny_oci_archive(pod.dir.path());
    let loaded = pod.ok(&["load", "--input", archive.to_str().unwrap()]);
    let image = loaded
        .lines()
        .find_map(|l| l.strip_prefix("Loaded image: "))
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| panic!("podman load named no image: {loaded}"));
    let c = pod.container_args();

    // run in the foreground, removed after: output and exit code back through conmon.
    let mut args = vec!["run", "--rm"];
    args.extend(run_args(&c, &[&image, "sh", "-c", "echo hello; exit 5"]));
    let out = pod.podman(&args);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "hello",
        "{out:?}"
    );
    assert_eq!(out.status.code(), Some(5), "{out:?}");

    // A detached container: exec, pause/unpause, top, stats, stop, rm.
    let mut args = vec!["run", "--detach", "--name", "bg"];
    args.extend(run_args(&c, &[&image, "sleep", "1000"]));
    pod.ok(&args);
    assert_eq!(pod.status("bg"), "running");
    let id = pod
        .ok(&["inspect", "--format", "{{.Id}}", "bg"])
        .trim()
        .to_string();
    assert_eq!(
        pod.runtime_states(),
        vec![id.clone()],
        "the run --rm container's state is gone, bg's is in the test's state dir"
    );
    let out = pod.podman(&[
        "exec",
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
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let out = pod.with_terminal(&["exec", "--tty", "bg", "tty"]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("/dev/pts/"),
        "exec --tty gets a pty of the container: {out:?}"
    );

    pod.ok(&["pause", "bg"]);
    assert_eq!(pod.status("bg"), "paused");
    pod.ok(&["unpause", "bg"]);
    assert_eq!(pod.status("bg"), "running");

    let top = pod.ok(&["top", "bg"]);
    assert!(top.contains("sleep 1000"), "{top}");
    let stats = pod.ok(&[
        "stats",
        "--no-stream",
        "--format",
        "{{.Name}} {{.PIDs}} {{.MemUsage}}",
        "bg",
    ]);
    let fields: Vec<&str> = stats.split_whitespace().collect();
    assert_eq!(fields.first(), Some(&"bg"), "{stats}");
    assert_eq!(
        fields.get(1),
        Some(&"1"),
        "one process in the cgroup: {stats}"
    );
    assert_ne!(
        fields.get(2),
        Some(&"0B"),
        "memory is read from the container's cgroup: {stats}"
    );

    pod.ok(&["stop", "--time", "1", "bg"]);
    assert_eq!(pod.status("bg"), "exited");
    pod.ok(&["rm", "bg"]);
    assert!(
        !pod.ok(&["ps", "--all", "--format", "{{.Names}}"])
            .contains("bg"),
        "removed"
    );
    assert!(
        pod.runtime_states().is_empty(),
        "paas-runtime's state for it is gone too: {:?}",
        pod.runtime_states()
    );
    assert!(!Path::new("/run/paas-runtime").join(&id).exists());
}
