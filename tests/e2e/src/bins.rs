//! Finding what the journeys run: root (a failure, not a skip, under `CI=true`), the
//! workspace and target folders, the paas binaries (built once per test process) and the
//! stack images.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// True when the test may run; false (the caller returns early) when not root outside CI.
/// Under `CI=true` a missing root is a failure, never a skip.
pub fn require_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid == 0 {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("this test needs root (containers, cgroups, nftables) and CI=true: run as root");
    }
    eprintln!("skipping: needs root");
    false
}

pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
        .unwrap()
}

fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => workspace_root().join("target"),
    }
}

/// Paths of the binaries under test, built once per test process.
pub struct Bins {
    pub controller: PathBuf,
    pub agent: PathBuf,
    pub cli: PathBuf,
}

pub fn bins() -> &'static Bins {
    static BINS: OnceLock<Bins> = OnceLock::new();
    BINS.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .current_dir(workspace_root())
            .args([
                "build",
                "-p",
                "paas-controller",
                "-p",
                "paas-node-agent",
                "-p",
                "paas",
                "-p",
                "paas-router",
                "--bins",
            ])
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build of the paas binaries failed");
        let dir = target_dir().join("debug");
        Bins {
            controller: dir.join("paas-controller"),
            agent: dir.join("paas-agent"),
            cli: dir.join("paas"),
        }
    })
}

/// The `tiny` stack as an OCI layout, built once per test process by deploy/build-stack.
pub fn stacks_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = target_dir()
            .join("e2e-stacks")
            .join(std::process::id().to_string());
        let out = Command::new(workspace_root().join("deploy/build-stack"))
            .arg("tiny")
            .arg(dir.join("tiny"))
            .output()
            .expect("run deploy/build-stack");
        assert!(
            out.status.success(),
            "deploy/build-stack tiny failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        dir
    })
}

/// [`bookworm_stacks_dir`] plus the add-on service images `postgresql` and `redis`, built
/// once next to the shared bookworm (on its layer) by deploy/build-stack and reused while
/// their versions are unchanged (several test processes serialise on the same lock file).
pub fn addon_stacks_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = bookworm_stacks_dir().to_path_buf();
        let shared = target_dir().join("e2e-stacks").join("bookworm");
        for service in ["postgresql", "redis"] {
            let out = Command::new("flock")
                .arg(shared.join("lock"))
                .arg(workspace_root().join("deploy/build-stack"))
                .arg(service)
                .arg(shared.join(service))
                .output()
                .expect("run flock deploy/build-stack SERVICE");
            assert!(
                out.status.success(),
                "deploy/build-stack {service} failed: {}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            let link = dir.join(service);
            if !link.exists() {
                std::os::unix::fs::symlink(shared.join(service), &link).unwrap();
            }
        }
        dir
    })
}

/// A stacks dir with `tiny` (built per test process) and `bookworm` (a symlink to one copy
/// under target/e2e-stacks/bookworm/, built once by deploy/build-stack and reused while its
/// version is unchanged; several test processes serialise on a lock file).
pub fn bookworm_stacks_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let shared = target_dir().join("e2e-stacks").join("bookworm");
        std::fs::create_dir_all(&shared).unwrap();
        let out = Command::new("flock")
            .arg(shared.join("lock"))
            .arg(workspace_root().join("deploy/build-stack"))
            .arg("bookworm")
            .arg(shared.join("bookworm"))
            .output()
            .expect("run flock deploy/build-stack bookworm");
        assert!(
            out.status.success(),
            "deploy/build-stack bookworm failed: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let dir = target_dir()
            .join("e2e-stacks")
            .join(format!("{}-bookworm", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let link = dir.join("bookworm");
        if !link.exists() {
            std::os::unix::fs::symlink(shared.join("bookworm"), &link).unwrap();
        }
        let tiny = stacks_dir().join("tiny");
        if !dir.join("tiny").exists() {
            std::os::unix::fs::symlink(tiny, dir.join("tiny")).unwrap();
        }
        dir
    })
}
