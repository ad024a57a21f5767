//! Existing namespaces the container joins (OCI `linux.namespaces[].path`), and the
//! checks on which combinations work.
//!
//! The parent opens every namespace file before the clone and checks its type with
//! `ioctl(NS_GET_NSTYPE)`, so a wrong path is a clear error and not an `EINVAL` from
//! `setns` in the init. Who then joins what, as the kernel allows it:
//!
//! * **pid**: `setns` only changes the namespace of the caller's *children*, so the
//!   cloning thread joins it right before the clone and goes back right after (per
//!   thread: `pid_for_children`).
//! * **network, ipc, uts, cgroup**: the init, with `setns`, after its cgroups and before
//!   it mounts. With a *new* user namespace the init has no capability over namespaces
//!   the host's user namespace owns, so the cloning thread joins those too (they are per
//!   thread and may be joined by a multi-threaded process).
//! * **mount**: the init (a multi-threaded process cannot: `EINVAL`), last of its joins,
//!   so that everything after it happens in that namespace. It then makes `/` private
//!   there, binds and pivots as in a new one (runc does the same).
//! * **user**: only a single-threaded process may join one, and namespaces made by the
//!   clone belong to the caller's user namespace, where the init would have no
//!   capability once it joined. So a helper is cloned first (no namespace flags); it
//!   joins every given namespace (all with the host's capabilities, the user namespace
//!   last), becomes uid/gid 0 there, and clones the init with `CLONE_PARENT` (the
//!   init is then the runtime's child, as it is without a helper), so the new
//!   namespaces belong to the joined user namespace. It reports the init's pid on a pipe
//!   and exits.
//!
//! An inherited (`Host`) mount namespace gets no `make-private` of `/` and a `chroot`
//! instead of `pivot_root` (which would move the root of every process of the host);
//! its mounts land on the host under the rootfs and `delete` detaches them.

use std::ffi::{CStr, CString};
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::path::Path;

use crate::init::{above_stdio, die};
use crate::{ContainerOptions, ContainerSpec, Error, Namespace, Network, Result};

/// `NS_GET_NSTYPE` = `_IO(0xb7, 0x3)` (linux/nsfs.h, Linux 4.11).
const NS_GET_NSTYPE: libc::c_ulong = 0xb703;

/// An opened namespace file to join.
#[derive(Debug)]
pub(crate) struct Join {
    pub fd: OwnedFd,
    /// `CLONE_NEW*` of its type.
    pub flag: libc::c_int,
    /// The configured path, for errors.
    pub path: CString,
}

/// The OCI name of a namespace type (`CLONE_NEW*`).
pub(crate) fn type_name(flag: libc::c_int) -> &'static str {
    match flag {
        libc::CLONE_NEWPID => "pid",
        libc::CLONE_NEWNET => "network",
        libc::CLONE_NEWIPC => "ipc",
        libc::CLONE_NEWUTS => "uts",
        libc::CLONE_NEWNS => "mount",
        libc::CLONE_NEWCGROUP => "cgroup",
        libc::CLONE_NEWUSER => "user",
        0x80 => "time",
        _ => "unknown",
    }
}

/// The `/proc/<pid>/ns/` file name of a namespace type.
pub(crate) fn proc_name(flag: libc::c_int) -> &'static str {
    match flag {
        libc::CLONE_NEWNET => "net",
        libc::CLONE_NEWNS => "mnt",
        other => type_name(other),
    }
}

/// Opens `path` as a namespace file of type `want` (`CLONE_NEW*`).
pub(crate) fn open(path: &Path, want: libc::c_int) -> Result<Join> {
    let name = type_name(want);
    let file = std::fs::File::open(path).map_err(|e| Error::Io {
        what: format!("opening the {name} namespace {}", path.display()),
        source: e,
    })?;
    // SAFETY: NS_GET_NSTYPE takes no argument and only reads the descriptor's inode.
    let found = unsafe { libc::ioctl(file.as_raw_fd(), NS_GET_NSTYPE) };
    if found < 0 {
        let e = std::io::Error::last_os_error();
        return Err(Error::InvalidSpec(format!(
            "{name} namespace path {} is not a namespace file ({e}); give one such as \
             /proc/<pid>/ns/{} or a bind mount of it",
            path.display(),
            proc_name(want)
        )));
    }
    if found != want {
        return Err(Error::InvalidSpec(format!(
            "namespace path {} is given for the {name} namespace, but it is of type {}",
            path.display(),
            type_name(found)
        )));
    }
    let c = CString::new(path.as_os_str().as_encoded_bytes())
        .map_err(|_| Error::InvalidSpec(format!("{} contains a NUL byte", path.display())))?;
    Ok(Join {
        fd: above_stdio(file.into())?,
        flag: want,
        path: c,
    })
}

/// Checks the combinations of namespace settings that cannot work, with what to do.
pub(crate) fn check(spec: &ContainerSpec, opts: &ContainerOptions) -> Result<()> {
    let ns = &opts.namespaces;
    let bad = |m: &str| Err(Error::InvalidSpec(m.to_owned()));
    if ns.join_user.is_some() && opts.id_mappings.is_some() {
        return bad(
            "uid/gid mappings make a new user namespace, but a user namespace to join is \
             given too: drop one (a joined namespace has its own mappings)",
        );
    }
    if opts.id_mappings.is_some() {
        match ns.mount {
            Namespace::Host => {
                return bad(
                    "a new user namespace needs a mount namespace of its own: the host's \
                     belongs to the host's user namespace, where the container may not mount",
                )
            }
            Namespace::Join(_) => {
                return bad(
                    "joining a mount namespace together with a new user namespace is not \
                     supported (the init could not mount in it): join the user namespace \
                     that owns it instead",
                )
            }
            Namespace::New => {}
        }
    }
    if ns.uts == Namespace::Host && !spec.hostname.is_empty() {
        return bad(&format!(
            "hostname {:?} needs a uts namespace of the container's own (new or joined); \
             with the host's, leave the hostname empty",
            spec.hostname
        ));
    }
    Ok(())
}

/// Opens every namespace to join, in the order they are joined: pid, network, ipc,
/// uts, cgroup, mount, user.
pub(crate) fn open_all(spec: &ContainerSpec, opts: &ContainerOptions) -> Result<Vec<Join>> {
    let ns = &opts.namespaces;
    let net = match &spec.network {
        Network::Join(p) => Some(p.as_path()),
        _ => None,
    };
    let given = [
        (libc::CLONE_NEWPID, join_path(&ns.pid)),
        (libc::CLONE_NEWNET, net),
        (libc::CLONE_NEWIPC, join_path(&ns.ipc)),
        (libc::CLONE_NEWUTS, join_path(&ns.uts)),
        (libc::CLONE_NEWCGROUP, join_path(&ns.cgroup)),
        (libc::CLONE_NEWNS, join_path(&ns.mount)),
        (libc::CLONE_NEWUSER, ns.join_user.as_deref()),
    ];
    given
        .into_iter()
        .filter_map(|(flag, path)| path.map(|p| open(p, flag)))
        .collect()
}

fn join_path(ns: &Namespace) -> Option<&Path> {
    match ns {
        Namespace::Join(p) => Some(p),
        _ => None,
    }
}

/// The joins the calling thread makes around the clone (see the module doc), given the
/// clone flags and whether a helper process does the joining.
pub(crate) fn for_thread(joins: &[Join], clone_flags: libc::c_int, helper: bool) -> Vec<&Join> {
    let new_user = clone_flags & libc::CLONE_NEWUSER != 0;
    joins
        .iter()
        .filter(|j| {
            !helper
                && (j.flag == libc::CLONE_NEWPID
                    || (new_user && j.flag != libc::CLONE_NEWNS && j.flag != libc::CLONE_NEWUSER))
        })
        .collect()
}

/// The calling thread in other namespaces until dropped.
pub(crate) struct ThreadJoin {
    /// Our own namespaces to go back to, with their type.
    own: Vec<(std::fs::File, libc::c_int)>,
}

impl ThreadJoin {
    pub fn enter(joins: &[&Join]) -> Result<ThreadJoin> {
        let mut guard = ThreadJoin { own: Vec::new() };
        for j in joins {
            let path = format!("/proc/thread-self/ns/{}", proc_name(j.flag));
            let own = std::fs::File::open(&path).map_err(|e| Error::Io {
                what: format!("opening {path}"),
                source: e,
            })?;
            // SAFETY: setns on two descriptors we hold; no memory is involved.
            if unsafe { libc::setns(j.fd.as_raw_fd(), j.flag) } != 0 {
                let source = nix::errno::Errno::last();
                return Err(Error::Sys {
                    what: format!(
                        "joining the {} namespace {} to clone the container into it",
                        type_name(j.flag),
                        j.path.to_string_lossy()
                    ),
                    source,
                });
            }
            guard.own.push((own, j.flag));
        }
        Ok(guard)
    }
}

impl Drop for ThreadJoin {
    fn drop(&mut self) {
        for (own, flag) in self.own.iter().rev() {
            // SAFETY: as in `enter`.
            if unsafe { libc::setns(own.as_raw_fd(), *flag) } != 0 {
                // This thread would keep running (and cloning) in the container's
                // namespace; the agent's spawn_blocking turns the panic into an error.
                panic!(
                    "returning to our {} namespace after the clone failed: {}",
                    type_name(*flag),
                    std::io::Error::last_os_error()
                );
            }
        }
    }
}

/// A join as the child sees it: descriptor, type, path for errors.
pub(crate) type ChildJoin<'a> = (RawFd, libc::c_int, &'a CStr);

/// Joins `joins` in order; after a user namespace, becomes its root (uid/gid 0). Dies
/// on `err` with the path and type on failure.
///
/// # Safety
/// Only in a cloned child (no allocation).
pub(crate) unsafe fn child_join(joins: &[ChildJoin], err: RawFd) {
    for &(fd, flag, path) in joins {
        // SAFETY: raw syscalls on descriptors prepared by the parent.
        unsafe {
            if libc::setns(fd, flag) != 0 {
                die(
                    err,
                    1,
                    &[
                        b"joining the ",
                        type_name(flag).as_bytes(),
                        b" namespace ",
                        path.to_bytes(),
                    ],
                );
            }
            libc::close(fd);
            if flag == libc::CLONE_NEWUSER
                && (libc::syscall(libc::SYS_setresgid, 0, 0, 0) != 0
                    || libc::syscall(libc::SYS_setresuid, 0, 0, 0) != 0)
            {
                die(
                    err,
                    1,
                    &[
                        b"becoming uid/gid 0 of the joined user namespace ",
                        path.to_bytes(),
                        b" (are they mapped there?)",
                    ],
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_of_the_wrong_type_or_no_namespace_are_refused() {
        let ipc = open(Path::new("/proc/self/ns/ipc"), libc::CLONE_NEWIPC).unwrap();
        assert_eq!(ipc.flag, libc::CLONE_NEWIPC);
        match open(Path::new("/proc/self/ns/ipc"), libc::CLONE_NEWUTS) {
            Err(Error::InvalidSpec(m)) => assert_eq!(
                m,
                "namespace path /proc/self/ns/ipc is given for the uts namespace, but it is of \
                 type ipc"
            ),
            other => panic!("{other:?}"),
        }
        match open(Path::new("/proc/self/status"), libc::CLONE_NEWNS) {
            Err(Error::InvalidSpec(m)) => {
                assert!(m.contains("is not a namespace file"), "{m}");
                assert!(m.contains("/proc/<pid>/ns/mnt"), "{m}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            open(Path::new("/nonexistent/ns"), libc::CLONE_NEWPID),
            Err(Error::Io { .. })
        ));
    }
}
