//! The init's (and `exec`'s) last steps before the process runs: masked and read-only
//! paths, the read-only rootfs, and [`Privileges`] (rlimits, seccomp, groups, capability
//! sets, uid/gid, `no_new_privs`).
//!
//! Child-only code, under the same rules as `init`: no allocation, no locks, no unwinding;
//! every failure is reported through [`die`] on the child's error channel.

use std::os::fd::RawFd;
use std::ptr;

use crate::init::{die, errno};
use crate::plan::{Op, Privileges};

/// `_LINUX_CAPABILITY_VERSION_3`: two 32-bit words per set.
const CAP_V3: u32 = 0x2008_0522;

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Runs a [`Op::Mask`] or [`Op::ReadOnly`] (other ops are the pre-pivot ones and are not
/// expected here).
///
/// # Safety
/// Only in the cloned child, after pivot_root.
pub(crate) unsafe fn run_post_op(op: &Op, err: RawFd) {
    // SAFETY: C strings from the plan; raw mount calls.
    unsafe {
        match op {
            Op::Mask { path } => {
                let p = path.as_ptr();
                // Look first: a bind of /dev/null onto a directory fails only after the
                // kernel cloned the source mount, and undoing that clone waits out an RCU
                // grace period (0.1-3.5 ms measured per failed mount on a busy host).
                let mut st: libc::stat = std::mem::zeroed();
                if libc::stat(p, &raw mut st) != 0 {
                    if errno() == libc::ENOENT {
                        return;
                    }
                } else if st.st_mode & libc::S_IFMT == libc::S_IFDIR {
                    let flags =
                        libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
                    let r =
                        libc::mount(c"tmpfs".as_ptr(), p, c"tmpfs".as_ptr(), flags, ptr::null());
                    if r == 0 {
                        return;
                    }
                    die(err, 1, &[b"masking ", path.to_bytes()]);
                }
                let r = libc::mount(
                    c"/dev/null".as_ptr(),
                    p,
                    ptr::null(),
                    libc::MS_BIND,
                    ptr::null(),
                );
                if r == 0 || errno() == libc::ENOENT {
                    return;
                }
                if errno() == libc::ENOTDIR {
                    let flags =
                        libc::MS_RDONLY | libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC;
                    let r =
                        libc::mount(c"tmpfs".as_ptr(), p, c"tmpfs".as_ptr(), flags, ptr::null());
                    if r == 0 {
                        return;
                    }
                }
                die(err, 1, &[b"masking ", path.to_bytes()]);
            }
            Op::ReadOnly { path } => {
                let p = path.as_ptr();
                let bind = libc::MS_BIND | libc::MS_REC;
                if libc::mount(p, p, ptr::null(), bind, ptr::null()) != 0 {
                    if errno() == libc::ENOENT {
                        return;
                    }
                    die(err, 1, &[b"binding ", path.to_bytes()]);
                }
                let flags = libc::MS_BIND
                    | libc::MS_REMOUNT
                    | libc::MS_RDONLY
                    | libc::MS_NOSUID
                    | libc::MS_NODEV
                    | libc::MS_NOEXEC;
                if libc::mount(p, p, ptr::null(), flags, ptr::null()) != 0 {
                    die(err, 1, &[b"making read-only ", path.to_bytes()]);
                }
            }
            _ => {}
        }
    }
}

/// Remounts the (pivoted) root read-only.
///
/// # Safety
/// Only in the cloned child, after pivot_root.
pub(crate) unsafe fn readonly_root(err: RawFd) {
    let flags = libc::MS_BIND | libc::MS_REMOUNT | libc::MS_RDONLY;
    // SAFETY: a remount of "/" with constant arguments.
    if unsafe { libc::mount(ptr::null(), c"/".as_ptr(), ptr::null(), flags, ptr::null()) } != 0 {
        // SAFETY: child only.
        unsafe { die(err, 1, &[b"remounting the rootfs read-only"]) };
    }
}

/// Applies [`Privileges`] (see its doc for the order).
///
/// # Safety
/// Only in a cloned child that still has every capability.
pub(crate) unsafe fn apply(p: &Privileges, err: RawFd) {
    // SAFETY: raw syscalls on values and buffers prepared by the parent.
    unsafe {
        for &(resource, soft, hard) in &p.rlimits {
            let lim = libc::rlimit {
                rlim_cur: soft,
                rlim_max: hard,
            };
            if libc::setrlimit(resource as _, &lim) != 0 {
                die(err, 1, &[b"setting an rlimit"]);
            }
        }
        if let Some(n) = p.default_nofile {
            let mut lim = libc::rlimit {
                rlim_cur: n,
                rlim_max: n,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0
                && libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) == 0
            {
                lim.rlim_cur = lim.rlim_max;
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
            }
        }
        if let Some(prog) = &p.seccomp {
            let fprog = libc::sock_fprog {
                len: prog.0.len() as libc::c_ushort,
                filter: prog.0.as_ptr().cast_mut(),
            };
            let r = libc::prctl(
                libc::PR_SET_SECCOMP,
                libc::SECCOMP_MODE_FILTER as libc::c_ulong,
                &raw const fprog,
            );
            if r != 0 {
                die(err, 1, &[b"loading the seccomp filter"]);
            }
        }
        let r = libc::syscall(libc::SYS_setgroups, p.gids.len(), p.gids.as_ptr());
        if r != 0 {
            die(err, 1, &[b"setgroups"]);
        }
        let bounding = p.cap_sets.map_or(p.caps, |s| s[0]);
        for cap in 0..=p.last_cap.min(63) {
            if bounding & (1u64 << cap) == 0
                && libc::prctl(libc::PR_CAPBSET_DROP, cap as libc::c_ulong, 0, 0, 0) != 0
                && errno() != libc::EINVAL
            {
                die(err, 1, &[b"dropping a capability from the bounding set"]);
            }
        }
        if p.cap_sets.is_some() {
            libc::prctl(libc::PR_SET_KEEPCAPS, 1, 0, 0, 0);
        }
        let mut uid = 0;
        if let Some((u, g)) = p.user {
            uid = u;
            if libc::syscall(libc::SYS_setresgid, g, g, g) != 0 {
                die(err, 1, &[b"setting the group id"]);
            }
            // Leaving uid 0 clears the permitted and effective sets (no SECBIT_KEEP_CAPS):
            // a non-root user keeps only the bounding set, as in Docker.
            if libc::syscall(libc::SYS_setresuid, u, u, u) != 0 {
                die(err, 1, &[b"setting the user id"]);
            }
        }
        let keep = if uid == 0 { p.caps } else { 0 };
        let [eff, perm, inh] = match p.cap_sets {
            Some(s) => [s[1], s[2], s[3]],
            None => [keep, keep, 0],
        };
        let mut header = CapHeader {
            version: CAP_V3,
            pid: 0,
        };
        let data = [
            CapData {
                effective: eff as u32,
                permitted: perm as u32,
                inheritable: inh as u32,
            },
            CapData {
                effective: (eff >> 32) as u32,
                permitted: (perm >> 32) as u32,
                inheritable: (inh >> 32) as u32,
            },
        ];
        if libc::syscall(libc::SYS_capset, &raw mut header, data.as_ptr()) != 0 {
            die(err, 1, &[b"setting the capability sets"]);
        }
        // Fails with EINVAL on kernels without ambient capabilities: nothing to clear.
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        );
        if let Some(sets) = p.cap_sets {
            libc::prctl(libc::PR_SET_KEEPCAPS, 0, 0, 0, 0);
            for cap in 0..=p.last_cap.min(63) {
                if sets[4] & (1u64 << cap) != 0 {
                    // Needs the cap in permitted and inheritable; otherwise left out.
                    libc::prctl(
                        libc::PR_CAP_AMBIENT,
                        libc::PR_CAP_AMBIENT_RAISE as libc::c_ulong,
                        cap as libc::c_ulong,
                        0,
                        0,
                    );
                }
            }
        }
        if p.no_new_privs && libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 {
            die(err, 1, &[b"setting no_new_privs"]);
        }
    }
}
