//! Everything the container's init will do, computed by the parent before it clones.
//!
//! The init runs in a copy of a possibly multi-threaded process (the node agent), where
//! another thread may have held the allocator's lock at the moment of the clone: it must
//! not allocate. So the parent resolves every path, creates every mountpoint it can in
//! the overlay, finds the executable, and turns it all into C strings here; the init only
//! walks [`Plan::ops`] and makes raw syscalls.
//!
//! Mount sequence (in the container's new mount namespace, before pivot_root):
//! 1. ([`Plan::root_ops`]) `/` recursively private (nothing propagates back to the host),
//!    and with `bind_rootfs` or a user namespace the rootfs bound onto itself; then the
//!    init changes into the rootfs (still as host root: the dirs above it may be host
//!    root's alone) and, in a new user namespace, becomes its root; every later target
//!    is relative to the rootfs, and bind sources are descriptors the parent opened
//!    (`/proc/self/fd/N`), so the namespace's root never walks a host dir;
//! 2. `proc` at `/proc`;
//! 3. a tmpfs at `/dev` with the nodes `null zero full random urandom tty` made by mknod
//!    (or, where that is refused, in a user namespace, the host's nodes bound `nosuid,
//!    noexec` onto empty files; see [`DEVICES`]), `devpts` (newinstance,
//!    ptmxmode=0666) at `/dev/pts` and a `/dev/ptmx` symlink, a tmpfs at `/dev/shm`,
//!    `/dev/mqueue` (optional), and the `/dev/fd`, `/dev/std{in,out,err}` symlinks;
//! 4. `sysfs` read-only at `/sys` (allowed to fail with the host network: a sysfs mount
//!    needs a network namespace of its own on some kernels);
//! 5. the spec's bind mounts in order (recursive; read-only ones remounted `ro`), then
//!    `options.fs_mounts` (tmpfs, …), as an OCI config lists them after the defaults.

use std::ffi::CString;
use std::path::Path;

use crate::fs::{BindSource, ContainerFs};
use crate::security::{self, BpfProgram};
use crate::spec::{is_under, DEFAULT_PATH};
use crate::{ContainerOptions, ContainerSpec, Error, Namespace, Network, Result};

/// One filesystem step of the init, run in order before pivot_root.
#[derive(Debug)]
pub(crate) enum Op {
    Mount {
        /// Short description for error messages, e.g. `proc` or `bind`.
        what: &'static str,
        source: Option<CString>,
        target: CString,
        fstype: Option<CString>,
        flags: libc::c_ulong,
        data: Option<CString>,
        /// A failure is ignored (only sysfs with the host network).
        optional: bool,
    },
    Mkdir {
        path: CString,
        mode: libc::mode_t,
    },
    Symlink {
        target: CString,
        link: CString,
    },
    /// A device node (the runtime's own, then OCI `linux.devices`): mknod, chmod, chown;
    /// where mknod is not permitted (a user namespace) an empty file with the host's
    /// node at `host` bound onto it, `nosuid,noexec`. An existing node (one of the
    /// runtime's own) is left as it is.
    Mknod {
        path: CString,
        mode: libc::mode_t,
        dev: libc::dev_t,
        uid: libc::uid_t,
        gid: libc::gid_t,
        host: CString,
    },
    /// A detached mount tree the parent made of a bind source (`open_tree`), attached
    /// at `target` with `move_mount` (a new user namespace: see [`Plan::source_fds`]);
    /// `source` names it in errors.
    Attach {
        tree: std::os::fd::RawFd,
        source: CString,
        target: CString,
    },
    /// After pivot_root: hides a container path (`/dev/null` over a file, an empty
    /// read-only tmpfs over a directory); a missing path is skipped.
    Mask {
        path: CString,
    },
    /// After pivot_root: bind-mounts a container path read-only over itself; a missing
    /// path is skipped.
    ReadOnly {
        path: CString,
    },
}

/// Who the process runs as and what it may do: applied by the init (and by `exec`) just
/// before it waits for `start`, in this order: rlimits, seccomp (while the init still
/// has every capability, so no `no_new_privs` is needed to load it), groups, bounding
/// set, uid/gid, capability sets, ambient set cleared, `no_new_privs`.
#[derive(Debug)]
pub(crate) struct Privileges {
    /// (resource, soft, hard)
    pub rlimits: Vec<(libc::c_int, u64, u64)>,
    /// RLIMIT_NOFILE when the options have none: best effort (without
    /// `CAP_SYS_RESOURCE` the init keeps its hard limit and raises the soft one to it).
    pub default_nofile: Option<u64>,
    pub gids: Vec<libc::gid_t>,
    pub user: Option<(u32, u32)>,
    /// Capabilities kept, as a bit mask.
    pub caps: u64,
    /// Explicit sets (bounding, effective, permitted, inheritable, ambient) instead of
    /// `caps`; kept across the uid change.
    pub cap_sets: Option<[u64; 5]>,
    pub last_cap: u32,
    pub no_new_privs: bool,
    pub seccomp: Option<BpfProgram>,
}

impl Privileges {
    pub fn new(user: Option<(u32, u32)>, opts: &ContainerOptions) -> Result<Privileges> {
        let mut rlimits = Vec::new();
        for r in &opts.rlimits {
            if r.soft > r.hard {
                return Err(Error::InvalidSpec(format!(
                    "rlimit {}: soft limit {} is above the hard limit {}",
                    r.kind, r.soft, r.hard
                )));
            }
            rlimits.push((security::rlimit_resource(&r.kind)?, r.soft, r.hard));
        }
        let nofile = libc::RLIMIT_NOFILE as libc::c_int;
        let default_nofile = (!rlimits.iter().any(|(k, _, _)| *k == nofile))
            .then(|| security::DEFAULT_NOFILE.min(security::nr_open()));
        Ok(Privileges {
            rlimits,
            default_nofile,
            gids: opts.additional_gids.clone(),
            user,
            caps: security::capability_mask(&opts.capabilities)?,
            cap_sets: match &opts.capability_sets {
                Some(c) => Some([
                    security::capability_mask(&c.bounding)?,
                    security::capability_mask(&c.effective)?,
                    security::capability_mask(&c.permitted)?,
                    security::capability_mask(&c.inheritable)?,
                    security::capability_mask(&c.ambient)?,
                ]),
                None => None,
            },
            last_cap: security::last_capability(),
            no_new_privs: opts.no_new_privileges,
            seccomp: opts.seccomp.then(security::default_filter),
        })
    }
}

/// What the init needs, all prepared up front.
#[derive(Debug)]
pub(crate) struct Plan {
    pub clone_flags: libc::c_int,
    /// The caller's descriptors 3..3+N stay open for the process.
    pub preserve_fds: u32,
    pub new_cgroupns: bool,
    pub loopback_up: bool,
    /// Steps on absolute paths before the init changes into the rootfs: `/` private,
    /// the rootfs bound onto itself.
    pub root_ops: Vec<Op>,
    /// The rest, relative to the rootfs (the init's working directory by then).
    pub ops: Vec<Op>,
    /// Bind sources the parent made into detached mount trees for the init (a new user
    /// namespace, whose root may not walk host dirs): it attaches them ([`Op::Attach`]);
    /// close-on-exec.
    pub source_fds: Vec<std::os::fd::OwnedFd>,
    pub rootfs: CString,
    /// The container's mount namespace is its own (new or joined): pivot_root; else
    /// (the host's) chroot.
    pub own_mount_ns: bool,
    /// None with the host's uts namespace, or a joined one and no hostname given.
    pub hostname: Option<CString>,
    /// Resolved, symlink-free working directory inside the container.
    pub cwd: CString,
    /// Masked and read-only paths, run after pivot_root.
    pub post_ops: Vec<Op>,
    /// Mount flags for the propagation of `/` after pivot_root (0 = leave private).
    pub root_propagation: libc::c_ulong,
    pub readonly_rootfs: bool,
    pub privileges: Privileges,
    /// `args[0]` as found on PATH (or as given when it holds a `/`).
    pub exec_path: CString,
    pub argv: Vec<CString>,
    pub envp: Vec<CString>,
}

/// The devices every container's `/dev` has (name, major, minor): made with `mknod`
/// (the container's own nodes: changing them changes nothing on the host), or, where
/// that is refused (a user namespace), the host's node bound `nosuid,noexec` onto an
/// empty file; the host's node is then owned by a uid the container has not mapped, so
/// it can use the node but not chown or chmod it.
pub(crate) const DEVICES: [(&str, u32, u32); 6] = [
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
];

pub(crate) fn cstr(what: &str, s: impl Into<Vec<u8>>) -> Result<CString> {
    CString::new(s).map_err(|_| Error::InvalidSpec(format!("{what} contains a NUL byte")))
}

pub(crate) fn cpath(p: &Path) -> Result<CString> {
    cstr(&p.display().to_string(), p.as_os_str().as_encoded_bytes())
}

pub(crate) fn mount_op(
    what: &'static str,
    source: Option<&str>,
    target: &Path,
    fstype: Option<&str>,
    flags: libc::c_ulong,
    data: Option<&str>,
) -> Result<Op> {
    Ok(Op::Mount {
        what,
        source: source.map(|s| cstr("mount source", s)).transpose()?,
        target: cpath(target)?,
        fstype: fstype.map(|s| cstr("fstype", s)).transpose()?,
        flags,
        data: data.map(|s| cstr("mount data", s)).transpose()?,
        optional: false,
    })
}

/// Builds the plan for `spec` whose overlay is mounted at `rootfs`, creating missing
/// mountpoints and the working directory in the overlay (or in a bind mount's source)
/// on the way. Fails with `Error::Start` when `args[0]` cannot be found.
pub(crate) fn build(spec: &ContainerSpec, opts: &ContainerOptions, rootfs: &Path) -> Result<Plan> {
    crate::ns::check(spec, opts)?;
    let ns = &opts.namespaces;
    let owner = opts
        .id_mappings
        .as_ref()
        .and_then(|m| Some((m.host_id(0, false)?, m.host_id(0, true)?)));
    let mut cfs = ContainerFs::new(rootfs).owned_by(owner);
    let mut root_ops = Vec::new();
    if ns.mount != Namespace::Host {
        root_ops.push(mount_op(
            "make-private",
            None,
            Path::new("/"),
            None,
            libc::MS_REC | libc::MS_PRIVATE,
            None,
        )?);
    }
    let userns = opts.id_mappings.is_some() || ns.join_user.is_some();
    if opts.bind_rootfs || userns {
        // The rootfs must be a mount point for pivot_root: bind it onto itself, in the
        // container's mount namespace only. In a user namespace the overlay mounted by
        // the parent is locked (it came from a more privileged mount namespace), and
        // pivot_root refuses a locked new root with EINVAL: the bind made here is not.
        let root = rootfs.to_str().ok_or_else(|| {
            Error::InvalidSpec(format!("rootfs {} is not UTF-8", rootfs.display()))
        })?;
        root_ops.push(mount_op(
            "rootfs bind",
            Some(root),
            rootfs,
            None,
            libc::MS_BIND | libc::MS_REC,
            None,
        )?);
    }
    let mut ops = Vec::new();
    let proc_dir = cfs.mount_target(&cfs.ensure_dir("/proc")?);
    let flags = libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    ops.push(mount_op(
        "proc",
        Some("proc"),
        &proc_dir,
        Some("proc"),
        flags,
        None,
    )?);

    let dev = cfs.mount_target(&cfs.ensure_dir("/dev")?);
    dev_ops(&dev, &mut ops)?;
    device_ops(&dev, &opts.devices, &mut ops)?;

    let sys = cfs.mount_target(&cfs.ensure_dir("/sys")?);
    let flags = libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
    let mut sysfs = mount_op("sysfs", Some("sysfs"), &sys, Some("sysfs"), flags, None)?;
    if let Op::Mount { optional, .. } = &mut sysfs {
        // In a user namespace, sysfs needs a network namespace owned by it (a new one).
        *optional = spec.network == Network::Host || (userns && spec.network != Network::None);
    }
    ops.push(sysfs);

    // The spec's mounts after the runtime's own, in spec order (as runc: the OCI
    // config lists /proc, /dev, /sys first).
    for m in &spec.mounts {
        let source = std::fs::canonicalize(&m.source).map_err(|e| Error::Io {
            what: format!("resolving mount source {}", m.source.display()),
            source: e,
        })?;
        let dest = if source.is_dir() {
            cfs.ensure_dir(&m.destination)?
        } else {
            cfs.ensure_file(&m.destination)?
        };
        let target = cfs.mount_target(&dest);
        ops.push(bind_op(&mut cfs, &source, &target, true)?);
        if m.readonly {
            let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
            ops.push(mount_op(
                "read-only remount",
                None,
                &target,
                None,
                flags,
                None,
            )?);
        }
        cfs.add_mount(&dest, &source);
    }

    crate::mounts::fs_mount_ops(&mut cfs, &opts.fs_mounts, &mut ops)?;

    let cwd = cfs.ensure_dir(&spec.cwd)?;
    let exec_path = resolve_exec(&cfs, spec, &cwd)?;
    let hostname = match (&ns.uts, spec.hostname.is_empty()) {
        (Namespace::New, true) => Some(&spec.id),
        (Namespace::Host, _) | (Namespace::Join(_), true) => None,
        (_, false) => Some(&spec.hostname),
    };

    let mut clone_flags = 0;
    for (mode, flag) in [
        (&ns.pid, libc::CLONE_NEWPID),
        (&ns.mount, libc::CLONE_NEWNS),
        (&ns.uts, libc::CLONE_NEWUTS),
        (&ns.ipc, libc::CLONE_NEWIPC),
    ] {
        if *mode == Namespace::New {
            clone_flags |= flag;
        }
    }
    if spec.network == Network::None {
        clone_flags |= libc::CLONE_NEWNET;
    }
    if opts.id_mappings.is_some() {
        clone_flags |= libc::CLONE_NEWUSER;
    }
    Ok(Plan {
        clone_flags,
        new_cgroupns: ns.cgroup == Namespace::New && Path::new("/proc/self/ns/cgroup").exists(),
        loopback_up: spec.network == Network::None,
        root_ops,
        ops,
        source_fds: cfs.take_source_fds(),
        rootfs: cpath(rootfs)?,
        own_mount_ns: ns.mount != Namespace::Host,
        hostname: hostname.map(|h| cstr("hostname", h.as_str())).transpose()?,
        cwd: cstr("cwd", cwd)?,
        post_ops: post_ops(opts)?,
        root_propagation: crate::mounts::propagation(opts.rootfs_propagation.as_deref())?,
        readonly_rootfs: opts.readonly_rootfs,
        preserve_fds: opts.preserve_fds,
        privileges: Privileges::new(spec.user, opts)?,
        exec_path: cstr("args[0]", exec_path)?,
        argv: spec
            .args
            .iter()
            .map(|a| cstr("argument", a.as_str()))
            .collect::<Result<_>>()?,
        envp: spec
            .env
            .iter()
            .map(|e| cstr("env entry", e.as_str()))
            .collect::<Result<_>>()?,
    })
}

/// The step that binds host path `source` at `target` (relative to the rootfs),
/// `recursive`ly or not: a `mount(2)` of the path, or in a new user namespace the
/// attach of a detached copy the parent made (see [`ContainerFs::bind_source`]).
pub(crate) fn bind_op(
    cfs: &mut ContainerFs,
    source: &Path,
    target: &Path,
    recursive: bool,
) -> Result<Op> {
    match cfs.bind_source(source, recursive)? {
        BindSource::Path(src) => {
            let flags = match recursive {
                true => libc::MS_BIND | libc::MS_REC,
                false => libc::MS_BIND,
            };
            mount_op("bind", Some(&src), target, None, flags, None)
        }
        BindSource::Tree(tree) => Ok(Op::Attach {
            tree,
            source: cpath(source)?,
            target: cpath(target)?,
        }),
    }
}

/// The masked and read-only paths (container paths, absolute, no `..`).
fn post_ops(opts: &ContainerOptions) -> Result<Vec<Op>> {
    let mut ops = Vec::new();
    let check = |p: &str| {
        if !p.starts_with('/') || p.split('/').any(|c| c == "..") {
            return Err(Error::InvalidSpec(format!(
                "masked/read-only path {p:?} must be absolute without \"..\""
            )));
        }
        cstr("masked/read-only path", p)
    };
    for p in &opts.masked_paths {
        ops.push(Op::Mask { path: check(p)? });
    }
    for p in &opts.readonly_paths {
        ops.push(Op::ReadOnly { path: check(p)? });
    }
    Ok(ops)
}

/// The `/dev` steps under `dev` (the host path of the container's `/dev`).
fn dev_ops(dev: &Path, ops: &mut Vec<Op>) -> Result<()> {
    let tmpfs_flags = libc::MS_NOSUID | libc::MS_STRICTATIME;
    ops.push(mount_op(
        "tmpfs",
        Some("tmpfs"),
        dev,
        Some("tmpfs"),
        tmpfs_flags,
        Some("mode=755,size=65536k"),
    )?);
    for (name, major, minor) in DEVICES {
        ops.push(Op::Mknod {
            path: cpath(&dev.join(name))?,
            mode: libc::S_IFCHR | 0o666,
            dev: libc::makedev(major, minor),
            uid: 0,
            gid: 0,
            host: cstr("device path", format!("/dev/{name}"))?,
        });
    }
    let pts = dev.join("pts");
    ops.push(Op::Mkdir {
        path: cpath(&pts)?,
        mode: 0o755,
    });
    ops.push(mount_op(
        "devpts",
        Some("devpts"),
        &pts,
        Some("devpts"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some("newinstance,ptmxmode=0666,mode=0620"),
    )?);
    let shm = dev.join("shm");
    ops.push(Op::Mkdir {
        path: cpath(&shm)?,
        mode: 0o1777,
    });
    ops.push(mount_op(
        "tmpfs",
        Some("shm"),
        &shm,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        Some("mode=1777,size=65536k"),
    )?);
    let mqueue = dev.join("mqueue");
    ops.push(Op::Mkdir {
        path: cpath(&mqueue)?,
        mode: 0o755,
    });
    let mut mq = mount_op(
        "mqueue",
        Some("mqueue"),
        &mqueue,
        Some("mqueue"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        None,
    )?;
    if let Op::Mount { optional, .. } = &mut mq {
        *optional = true;
    }
    ops.push(mq);
    let links = [
        ("pts/ptmx", "ptmx"),
        ("/proc/self/fd", "fd"),
        ("/proc/self/fd/0", "stdin"),
        ("/proc/self/fd/1", "stdout"),
        ("/proc/self/fd/2", "stderr"),
    ];
    for (target, link) in links {
        ops.push(Op::Symlink {
            target: cstr("symlink", target)?,
            link: cpath(&dev.join(link))?,
        });
    }
    Ok(())
}

/// The listed device nodes under `dev` (the host path of the container's `/dev`).
fn device_ops(dev: &Path, devices: &[crate::Device], ops: &mut Vec<Op>) -> Result<()> {
    for d in devices {
        let rel = crate::devices::dev_relative(d)?;
        let mut dir = dev.to_path_buf();
        let parts: Vec<&str> = rel.split('/').collect();
        for part in &parts[..parts.len() - 1] {
            dir.push(part);
            ops.push(Op::Mkdir {
                path: cpath(&dir)?,
                mode: 0o755,
            });
        }
        let kind = match d.kind {
            'b' => libc::S_IFBLK,
            'p' => libc::S_IFIFO,
            _ => libc::S_IFCHR,
        };
        ops.push(Op::Mknod {
            path: cpath(&dev.join(&rel))?,
            mode: kind | (d.file_mode.unwrap_or(0o666) & 0o7777),
            dev: libc::makedev(d.major as u32, d.minor as u32),
            uid: d.uid.unwrap_or(0),
            gid: d.gid.unwrap_or(0),
            host: cstr("device path", format!("/dev/{rel}"))?,
        });
    }
    Ok(())
}

/// Finds `args[0]` the way execvp would inside the container, but before the container
/// exists: with a `/` it must exist (relative to `cwd` if relative); without one, the
/// first executable regular file on the PATH of `spec.env` wins.
fn resolve_exec(cfs: &ContainerFs, spec: &ContainerSpec, cwd: &str) -> Result<String> {
    let name = &spec.args[0];
    if name.contains('/') {
        let full = if name.starts_with('/') {
            name.clone()
        } else {
            format!("{}/{name}", cwd.trim_end_matches('/'))
        };
        // The runtime's own mounts are not there yet: leave those to execve.
        let runtime_owned = ["/proc", "/dev", "/sys"]
            .iter()
            .any(|r| is_under(&crate::spec::normalize(&full), r));
        if !runtime_owned && !cfs.exists(&full)? {
            return Err(Error::Start(format!(
                "exec {name:?}: No such file or directory"
            )));
        }
        return Ok(name.clone());
    }
    let path = spec
        .env
        .iter()
        .rev()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH);
    for dir in path.split(':').filter(|d| d.starts_with('/')) {
        let candidate = format!("{}/{name}", dir.trim_end_matches('/'));
        if cfs.is_executable(&candidate)? {
            return Ok(candidate);
        }
    }
    Err(Error::Start(format!(
        "exec {name:?}: executable file not found in $PATH ({path})"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BindMount, Resources};
    use std::fs;
    use std::os::unix::fs::{symlink, PermissionsExt};
    use std::path::PathBuf;

    fn fixture() -> (tempfile::TempDir, PathBuf, ContainerSpec) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        fs::create_dir_all(root.join("bin")).unwrap();
        let sh = root.join("bin/busybox");
        fs::write(&sh, "").unwrap();
        fs::set_permissions(&sh, fs::Permissions::from_mode(0o755)).unwrap();
        symlink("busybox", root.join("bin/sh")).unwrap();
        fs::write(root.join("bin/notexec"), "").unwrap();
        let spec = ContainerSpec {
            id: "c1".into(),
            layers: vec![root.clone()],
            args: vec!["sh".into(), "-c".into(), "true".into()],
            env: vec!["PATH=/usr/bin:/bin".into()],
            cwd: "/work/dir".into(),
            hostname: String::new(),
            user: Some((1000, 1000)),
            mounts: vec![],
            network: Network::None,
            resources: Resources::default(),
            stdout: dir.path().join("log"),
            stderr: dir.path().join("log"),
        };
        (dir, root, spec)
    }

    fn targets(plan: &Plan) -> Vec<(String, String)> {
        ops_targets(&plan.ops)
    }

    fn ops_targets(ops: &[Op]) -> Vec<(String, String)> {
        ops.iter()
            .map(|op| match op {
                Op::Mount { what, target, .. } => {
                    (what.to_string(), target.to_string_lossy().into_owned())
                }
                Op::Mkdir { path, .. } => ("mkdir".into(), path.to_string_lossy().into_owned()),
                Op::Symlink { link, .. } => ("symlink".into(), link.to_string_lossy().into_owned()),
                Op::Mask { path } => ("mask".into(), path.to_string_lossy().into_owned()),
                Op::Mknod { path, .. } => ("mknod".into(), path.to_string_lossy().into_owned()),
                Op::ReadOnly { path } => ("ro".into(), path.to_string_lossy().into_owned()),
                Op::Attach { target, .. } => {
                    ("attach".into(), target.to_string_lossy().into_owned())
                }
            })
            .collect()
    }

    #[test]
    fn mount_sequence_and_resolution() {
        let (dir, root, mut spec) = fixture();
        let src = dir.path().join("app-src");
        fs::create_dir(&src).unwrap();
        spec.mounts.push(BindMount {
            source: src.clone(),
            destination: "/app".into(),
            readonly: true,
        });
        let plan = build(&spec, &ContainerOptions::default(), &root).unwrap();
        assert_eq!(
            ops_targets(&plan.root_ops),
            [("make-private".to_string(), "/".to_string())]
        );
        let t = targets(&plan);
        let expect_prefix = [
            ("proc".to_string(), "proc".to_string()),
            ("tmpfs".into(), "dev".into()),
            ("mknod".into(), "dev/null".into()),
            ("mknod".into(), "dev/zero".into()),
        ];
        assert_eq!(t[..expect_prefix.len()], expect_prefix[..]);
        let n = t.len();
        assert_eq!(t[n - 3], ("sysfs".to_string(), "sys".to_string()));
        assert_eq!(t[n - 2], ("bind".to_string(), "app".to_string()));
        assert_eq!(t[n - 1], ("read-only remount".to_string(), "app".into()));
        assert!(t.contains(&("devpts".into(), "dev/pts".into())));
        assert!(t.contains(&("symlink".into(), "dev/ptmx".into())));
        assert!(plan.source_fds.is_empty(), "sources by path without userns");
        for d in ["app", "proc", "dev", "sys", "work/dir"] {
            assert!(root.join(d).is_dir(), "{d} made in the rootfs");
        }
        assert_eq!(plan.exec_path.to_str().unwrap(), "/bin/sh");
        assert_eq!(plan.cwd.to_str().unwrap(), "/work/dir");
        assert_eq!(
            plan.hostname.as_deref().unwrap().to_str().unwrap(),
            "c1",
            "empty hostname = id"
        );
        assert_ne!(plan.clone_flags & libc::CLONE_NEWNET, 0);
        assert!(plan.loopback_up);
        assert_eq!(plan.argv.len(), 3);
        let sysfs_optional = plan.ops.iter().any(|op| {
            matches!(
                op,
                Op::Mount {
                    what: "sysfs",
                    optional: true,
                    ..
                }
            )
        });
        assert!(
            !sysfs_optional,
            "sysfs is required with a network namespace"
        );
    }

    #[test]
    fn host_network_makes_sysfs_optional() {
        let (_dir, root, mut spec) = fixture();
        spec.network = Network::Host;
        let plan = build(&spec, &ContainerOptions::default(), &root).unwrap();
        assert_eq!(plan.clone_flags & libc::CLONE_NEWNET, 0);
        assert!(!plan.loopback_up);
        assert!(plan.ops.iter().any(|op| {
            matches!(
                op,
                Op::Mount {
                    what: "sysfs",
                    optional: true,
                    ..
                }
            )
        }));
    }

    #[test]
    fn exec_resolution_errors_are_start_errors() {
        let (_dir, root, mut spec) = fixture();
        spec.args = vec!["/bin/nosuch".into()];
        match build(&spec, &ContainerOptions::default(), &root) {
            Err(Error::Start(m)) => {
                assert_eq!(m, "exec \"/bin/nosuch\": No such file or directory")
            }
            other => panic!("{other:?}"),
        }
        spec.args = vec!["notexec".into()];
        match build(&spec, &ContainerOptions::default(), &root) {
            Err(Error::Start(m)) => assert!(m.contains("not found in $PATH"), "{m}"),
            other => panic!("{other:?}"),
        }
        spec.args = vec!["/bin/notexec".into()];
        let plan = build(&spec, &ContainerOptions::default(), &root).unwrap();
        assert_eq!(
            plan.exec_path.to_str().unwrap(),
            "/bin/notexec",
            "execve reports it"
        );
        spec.args = vec!["/proc/self/exe".into()];
        build(&spec, &ContainerOptions::default(), &root).unwrap();
    }

    #[test]
    fn file_mounts_get_a_file_target() {
        let (dir, root, mut spec) = fixture();
        let file = dir.path().join("resolv.conf");
        fs::write(&file, "nameserver 10.0.0.1\n").unwrap();
        spec.mounts.push(BindMount {
            source: file,
            destination: "/etc/resolv.conf".into(),
            readonly: false,
        });
        build(&spec, &ContainerOptions::default(), &root).unwrap();
        assert!(root.join("etc/resolv.conf").is_file());
    }
}
