//! Helpers for the runtime's root tests: the root check, a busybox rootfs, and a fixture
//! with its own state dir and cgroup parent so tests run in parallel.
#![allow(dead_code)]

use std::fs;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use paas_runtime::{ContainerSpec, Network, Resources, Runtime, RuntimeConfig};

/// True when the test may run. Not root: skips (false) on a developer machine, but
/// panics when `CI=true`, so CI never passes by skipping.
pub fn need_root() -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("this test needs root (namespaces, mounts, cgroups) and CI=true: run as root");
    }
    eprintln!("skipping: this test needs root");
    false
}

/// `prt-<pid>-<n>`: unique in this machine for the life of this test process.
pub fn unique(what: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "prt-{}-{what}{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

/// Busybox applets linked in the test rootfs.
pub const APPLETS: [&str; 25] = [
    "sh", "cat", "ls", "hostname", "ps", "mount", "echo", "sleep", "pwd", "env", "id", "true",
    "false", "touch", "mkdir", "readlink", "grep", "wc", "head", "tr", "rm", "stat", "chown",
    "chmod", "mknod",
];

/// A minimal rootfs: /bin/busybox with applet symlinks, etc/ tmp/ proc/ dev/ sys/.
pub fn busybox_rootfs(dir: &Path) {
    fs::create_dir_all(dir.join("bin")).unwrap();
    for d in ["etc", "tmp", "proc", "dev", "sys"] {
        fs::create_dir_all(dir.join(d)).unwrap();
    }
    fs::set_permissions(
        dir.join("tmp"),
        std::os::unix::fs::PermissionsExt::from_mode(0o1777),
    )
    .unwrap();
    fs::copy("/bin/busybox", dir.join("bin/busybox")).expect("busybox-static at /bin/busybox");
    for applet in APPLETS {
        symlink("busybox", dir.join("bin").join(applet)).unwrap();
    }
    fs::write(dir.join("etc/marker"), "from the layer\n").unwrap();
}

/// One test's world: tempdir with a layer, a state dir and a log; a runtime with a
/// unique cgroup parent. Dropping it deletes every container and the cgroup parent.
pub struct Fixture {
    pub dir: tempfile::TempDir,
    pub layer: PathBuf,
    pub log: PathBuf,
    pub config: RuntimeConfig,
    pub rt: Runtime,
}

impl Fixture {
    pub fn new() -> Fixture {
        let dir = tempfile::tempdir().unwrap();
        let layer = dir.path().join("layer");
        busybox_rootfs(&layer);
        let config = RuntimeConfig {
            state_dir: dir.path().join("state"),
            cgroup_parent: unique("cg"),
            cgroup_root: PathBuf::from("/sys/fs/cgroup"),
        };
        let rt = Runtime::new(config.clone()).unwrap();
        Fixture {
            log: dir.path().join("out.log"),
            layer,
            config,
            rt,
            dir,
        }
    }

    /// A spec running `args` with PATH=/bin, no network, output to `self.log`.
    pub fn spec(&self, args: &[&str]) -> ContainerSpec {
        let id = unique("c");
        ContainerSpec {
            hostname: format!("h-{id}"),
            id,
            layers: vec![self.layer.clone()],
            args: args.iter().map(|s| s.to_string()).collect(),
            env: vec!["PATH=/bin".into()],
            cwd: "/".into(),
            user: None,
            mounts: vec![],
            network: Network::None,
            resources: Resources::default(),
            stdout: self.log.clone(),
            stderr: self.log.clone(),
        }
    }

    pub fn output(&self) -> String {
        fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Runs `spec` to the end and returns (exit status, output).
    pub fn run_to_end(&self, spec: &ContainerSpec) -> (paas_runtime::ExitStatus, String) {
        self.rt.run(spec).unwrap();
        let exit = self.rt.wait(&spec.id).unwrap();
        (exit, self.output())
    }

    /// The cgroup parent dirs under each hierarchy (v1) or the root (v2).
    pub fn cgroup_parents(&self) -> Vec<PathBuf> {
        let root = &self.config.cgroup_root;
        if root.join("cgroup.controllers").exists() {
            return vec![root.join(&self.config.cgroup_parent)];
        }
        fs::read_dir(root)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path().join(&self.config.cgroup_parent))
            .filter(|p| p.exists())
            .collect()
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        if let Ok(all) = self.rt.list() {
            for c in all {
                let _ = self.rt.delete(&c.id, true);
            }
        }
        let _ = self.rt.remove_cgroup_parent();
    }
}

/// Whether `/proc/self/mountinfo` mentions `path`.
pub fn is_mounted(path: &Path) -> bool {
    let needle = format!(" {} ", path.display());
    fs::read_to_string("/proc/self/mountinfo")
        .unwrap()
        .lines()
        .any(|l| l.contains(&needle))
}

/// Polls `cond` every 10 ms for up to 10 s; panics if it never holds.
pub fn wait_for(cond: impl Fn() -> bool) {
    for _ in 0..1000 {
        if cond() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("condition not met within 10 s");
}

/// True when the engine test may run: root, and each of `tools` on PATH. Missing ones
/// skip on a developer machine but panic when `CI=true` (deploy/install-deps installs
/// them), so CI never passes by skipping.
pub fn need_root_and(tools: &[&str]) -> bool {
    if !need_root() {
        return false;
    }
    let missing: Vec<&str> = tools
        .iter()
        .copied()
        .filter(|t| {
            !std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
                .any(|d| d.join(t).is_file())
        })
        .collect();
    if missing.is_empty() {
        return true;
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("this test needs {missing:?} and CI=true: run deploy/install-deps");
    }
    eprintln!("skipping: {missing:?} not installed (deploy/install-deps)");
    false
}

/// The `tiny` stack (deploy/build-stack tiny: busybox in one layer) as an OCI archive
/// (`oci-archive:`), the image both engine tests load; its one tag is `latest`.
pub fn tiny_oci_archive(dir: &Path) -> PathBuf {
    let layout = dir.join("tiny-layout");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/build-stack");
    let out = std::process::Command::new(&script)
        .arg("tiny")
        .arg(&layout)
        .output()
        .unwrap();
    assert!(out.status.success(), "deploy/build-stack tiny: {out:?}");
    let archive = dir.join("tiny.tar");
    let out = std::process::Command::new("tar")
        .arg("-C")
        .arg(&layout)
        .arg("-cf")
        .arg(&archive)
        .arg(".")
        .output()
        .unwrap();
    assert!(out.status.success(), "tar of the layout: {out:?}");
    fs::remove_dir_all(&layout).unwrap();
    archive
}

/// Unmounts (lazily) every mount at or below `dir`, deepest first: what an engine left
/// there when a test failed half-way.
pub fn unmount_below(dir: &Path) {
    let Ok(text) = fs::read_to_string("/proc/self/mountinfo") else {
        return;
    };
    let mut points: Vec<PathBuf> = text
        .lines()
        .filter_map(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .filter(|p| p.starts_with(dir))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    for p in points {
        let _ = nix::mount::umount2(&p, nix::mount::MntFlags::MNT_DETACH);
    }
}

/// Removes a cgroup directory tree (depth first) under every hierarchy: `rel` is the
/// path below each hierarchy's root.
pub fn remove_cgroup_tree(rel: &str) {
    assert!(
        !rel.trim_matches('/').is_empty() && !rel.contains(".."),
        "refusing to remove cgroup tree {rel:?}"
    );
    fn rm(dir: &Path) {
        for e in fs::read_dir(dir).into_iter().flatten().flatten() {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                rm(&e.path());
            }
        }
        let _ = fs::remove_dir(dir);
    }
    let root = Path::new("/sys/fs/cgroup");
    rm(&root.join(rel));
    for h in fs::read_dir(root).into_iter().flatten().flatten() {
        rm(&h.path().join(rel));
    }
}
