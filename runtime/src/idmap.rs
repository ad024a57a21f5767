//! Idmapped image layers: how a container with a user namespace owns its image files
//! without any file being chowned.
//!
//! Image layers are unpacked once per node, owned by host root. A container whose root
//! is host uid `B` (a user namespace mapping container `0..n` to host `B..B+n`) would see
//! those files as `nobody` and could not write `/app`. So, before the overlay is mounted,
//! each lower layer gets an idmapped mount with the container's own mapping
//! (`open_tree(OPEN_TREE_CLONE)`, `mount_setattr(MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY)`
//! with a user namespace descriptor, `move_mount` to `state_dir/<id>/lower/<n>`): through
//! it, an on-disk owner `k` reads as host uid `B + k`, which is container uid `k`. The
//! overlay takes those mounts as its lower dirs (overlayfs accepts idmapped lower layers
//! since Linux 5.19); a copy-up keeps the owner it saw, so the upper dir holds files of
//! the container's host range (`B + k`), never of host root. The overlay keeps private
//! clones of its layers, so the idmapped mounts are detached right after it is mounted
//! and nothing stays in the host's mount table but the overlay itself. The layer dirs on
//! disk never change.
//!
//! The user namespace descriptor comes from a short-lived child cloned with
//! `CLONE_NEWUSER`: the parent writes its maps, opens `/proc/<pid>/ns/user` and lets it
//! exit; the namespace lives on as long as the descriptor (and the mounts made with it).
//!
//! The same detached trees (`open_tree` without the idmap) carry a user-namespaced
//! container's bind sources into its mount namespace ([`attach`], see `fs::BindSource`),
//! and [`nosuid_noexec`] hardens a host device node bound into one.

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};
use nix::sys::wait::waitpid;
use nix::unistd::Pid;

use crate::lifecycle::{io_err, sys_err, write_id_maps};
use crate::{Error, IdMappings, Result};

/// `struct mount_attr` of `mount_setattr(2)` (`MOUNT_ATTR_SIZE_VER0`).
#[repr(C)]
#[derive(Debug, Default)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const OPEN_TREE_CLONE: libc::c_uint = 1;
const MOUNT_ATTR_RDONLY: u64 = 0x0000_0001;
const MOUNT_ATTR_NOSUID: u64 = 0x0000_0002;
const MOUNT_ATTR_NOEXEC: u64 = 0x0000_0008;
const MOUNT_ATTR_IDMAP: u64 = 0x0010_0000;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x0000_0004;

/// A user namespace with `maps`, held by a descriptor; no process stays in it.
pub(crate) fn user_namespace(maps: &IdMappings) -> Result<OwnedFd> {
    let (read, write) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(sys_err("making a pipe"))?;
    let keep = [read.as_raw_fd()];
    // Every signal stays blocked in the child (it inherits the mask), so no handler of
    // ours can run there.
    let mut old = SigSet::empty();
    pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut old),
    )
    .map_err(sys_err("blocking signals around clone"))?;
    let (ret, errno, _) = crate::init::clone_child(libc::CLONE_NEWUSER, None);
    if ret == 0 {
        // SAFETY: the freshly cloned child only makes raw syscalls on memory prepared
        // before the clone (no allocation, lock or unwinding): close what it inherited,
        // wait for the parent to close the pipe, exit.
        unsafe {
            crate::child::close_others(&keep);
            crate::child::read_byte(keep[0]);
            libc::_exit(0)
        }
    }
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    if ret < 0 {
        return Err(Error::Sys {
            what: "cloning a process into a new user namespace (for the idmapped layers)".into(),
            source: errno,
        });
    }
    let pid = ret as i32;
    let made = write_id_maps(pid, maps).and_then(|()| {
        let path = format!("/proc/{pid}/ns/user");
        fs::File::open(&path)
            .map(OwnedFd::from)
            .map_err(io_err(format!("opening {path}")))
    });
    drop(write);
    if made.is_err() {
        let _ = nix::sys::signal::kill(Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
    }
    while let Err(Errno::EINTR) = waitpid(Pid::from_raw(pid), None) {}
    made
}

/// The idmapped lower layers of one container, attached under `dir`. Dropping it
/// detaches them (the overlay keeps its own clones).
#[derive(Debug)]
pub(crate) struct IdmappedLayers {
    pub paths: Vec<PathBuf>,
}

impl Drop for IdmappedLayers {
    fn drop(&mut self) {
        for path in &self.paths {
            let _ = nix::mount::umount2(path, nix::mount::MntFlags::MNT_DETACH);
        }
    }
}

/// Mounts each of `layers` (top-most first) read-only and idmapped with the user
/// namespace `userns` at `dir/<n>`; returns those paths, in the same order.
pub(crate) fn mount_layers(
    layers: &[PathBuf],
    userns: &OwnedFd,
    dir: &Path,
) -> Result<IdmappedLayers> {
    fs::create_dir(dir).map_err(io_err(format!("creating {}", dir.display())))?;
    let mut made = IdmappedLayers { paths: Vec::new() };
    for (n, layer) in layers.iter().enumerate() {
        let target = dir.join(n.to_string());
        fs::create_dir(&target).map_err(io_err(format!("creating {}", target.display())))?;
        let tree = open_tree(layer, false)?;
        let attr = MountAttr {
            attr_set: MOUNT_ATTR_IDMAP | MOUNT_ATTR_RDONLY,
            userns_fd: userns.as_raw_fd() as u64,
            ..MountAttr::default()
        };
        // SAFETY: `tree` is our descriptor, "" a valid C string, `attr` a live
        // `struct mount_attr` of the size passed.
        let r = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                tree.as_raw_fd(),
                c"".as_ptr(),
                libc::AT_EMPTY_PATH,
                &raw const attr,
                std::mem::size_of::<MountAttr>(),
            )
        };
        if r != 0 {
            return Err(Error::Sys {
                what: format!(
                    "idmapping the image layer {} for the container's user namespace (needs \
                     idmapped mounts: Linux 5.19 or later for overlayfs layers, and a \
                     filesystem that has them, such as ext4, xfs, btrfs, or tmpfs since 6.3)",
                    layer.display()
                ),
                source: Errno::last(),
            });
        }
        let to = cpath(&target)?;
        // SAFETY: `tree` is our descriptor and `to` a valid C string.
        if !unsafe { attach(tree.as_raw_fd(), to.as_ptr()) } {
            return Err(sys_err(format!(
                "attaching the idmapped layer {} at {}",
                layer.display(),
                target.display()
            ))(Errno::last()));
        }
        made.paths.push(target);
    }
    Ok(made)
}

/// A detached copy of the mount at `path` (with the mounts below it: `recursive`), as
/// a descriptor that `move_mount` attaches elsewhere, in another mount namespace too.
pub(crate) fn open_tree(path: &Path, recursive: bool) -> Result<OwnedFd> {
    let c = cpath(path)?;
    let mut flags = OPEN_TREE_CLONE | libc::O_CLOEXEC as libc::c_uint;
    if recursive {
        flags |= libc::AT_RECURSIVE as libc::c_uint;
    }
    // SAFETY: `c` is a valid C string; the returned descriptor is new and ours.
    let fd = unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, c.as_ptr(), flags) };
    if fd < 0 {
        return Err(sys_err(format!("open_tree {}", path.display()))(
            Errno::last(),
        ));
    }
    // SAFETY: open_tree returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn cpath(path: &Path) -> Result<CString> {
    CString::new(path.as_os_str().as_bytes())
        .map_err(|_| Error::InvalidSpec(format!("path {} contains a NUL byte", path.display())))
}

/// Detaches whatever is still mounted under `dir/<n>` (after a crash between the mount
/// of an idmapped layer and its detach), so removing the state dir never reaches into
/// an image layer. A missing `dir` is fine.
pub(crate) fn detach_leftovers(dir: &Path) -> Result<()> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        crate::fs::unmount_all(&entry.path())?;
    }
    Ok(())
}

/// Adds `nosuid,noexec` to the mount at `path` and changes nothing else (a host device
/// node bound into the container: its other flags may be locked in a user namespace).
/// `mount_setattr`, or a bind remount on kernels before 5.12. Returns false on failure
/// (errno set).
///
/// # Safety
/// Raw syscalls only: fit for a cloned child (no allocation). `path` must be a valid C
/// string.
pub(crate) unsafe fn nosuid_noexec(path: *const libc::c_char) -> bool {
    let attr = MountAttr {
        attr_set: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
        ..MountAttr::default()
    };
    // SAFETY: `path` is a valid C string (the caller's contract), `attr` a live
    // `struct mount_attr` of the size passed.
    unsafe {
        let r = libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            path,
            0,
            &raw const attr,
            std::mem::size_of::<MountAttr>(),
        );
        if r == 0 {
            return true;
        }
        if crate::child::errno() != libc::ENOSYS {
            return false;
        }
        let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_NOSUID | libc::MS_NOEXEC;
        libc::mount(
            std::ptr::null(),
            path,
            std::ptr::null(),
            flags,
            std::ptr::null(),
        ) == 0
    }
}

/// Attaches the detached mount tree `tree` (from [`open_tree`]) at `target` (relative to
/// the working directory, or absolute). Returns false on failure (errno set).
///
/// # Safety
/// Raw syscalls only: fit for a cloned child. `target` must be a valid C string.
pub(crate) unsafe fn attach(tree: libc::c_int, target: *const libc::c_char) -> bool {
    // SAFETY: "" is a valid C string; the caller vouches for `target`.
    unsafe {
        libc::syscall(
            libc::SYS_move_mount,
            tree,
            c"".as_ptr(),
            libc::AT_FDCWD,
            target,
            MOVE_MOUNT_F_EMPTY_PATH,
        ) == 0
    }
}
