//! The container's init: the clone, the child's setup, and the two handshakes.
//!
//! **The child does not allocate, lock or panic.** It is a fork-like copy of a process
//! that may be multi-threaded (the node agent runs tokio): any lock another thread held at
//! clone time (malloc's included) stays locked forever in the child. So everything it
//! needs is prepared in a [`Plan`] and [`ChildFds`] before the clone, and the child only
//! makes raw syscalls through `libc`. It uses raw `syscall()` for setuid/setgid/setgroups
//! (glibc's wrappers broadcast to the *parent's* other threads, which don't exist here)
//! and never `PR_SET_PDEATHSIG` (it fires when the *thread* that cloned exits, and the
//! agent's blocking-pool threads come and go).
//!
//! Joining the cgroups: moving *another* process (its pid into `cgroup.procs`) takes the
//! kernel's global `cgroup_threadgroup_rwsem` for writing, which waits out an RCU grace
//! period (~9 ms measured here, per join). So where it can, the child is born in its
//! cgroup2 directory (`clone3(CLONE_INTO_CGROUP)`) and moves itself into each v1 hierarchy
//! by writing `0` to descriptors of the `tasks` files the parent opened (a thread moving
//! itself skips that lock); the parent writes pids only when hooks must see the process
//! in its cgroups first, or when clone3 is missing.
//!
//! Handshake 1, create (anonymous pipes, same process): the child joins its cgroups as
//! above, then waits for one byte on `sync` (the parent writes it at once, or after it
//! moved the pid, wrote the id maps and ran the prestart/createRuntime hooks); the child
//! joins/creates its namespaces, mounts, pivots, and writes `R` into `ready` (or `E` +
//! errno + text, then exits) and blocks.
//!
//! Handshake 2, start (named FIFOs in the state dir, any process): the child holds
//! `exec.fifo` open read-write (so its blocking read waits for data, never sees EOF) and
//! `exec.result` open read-write with `O_CLOEXEC`. `start` opens `exec.result` for reading,
//! then `exec.fifo` for writing *non-blocking* (ENXIO = no reader = the init is gone) and
//! writes one byte. The child execs; on success the kernel closes its `exec.result` at
//! exec and `start` reads EOF; on failure the child writes `E` + errno + text first.
//!
//! The parent's side of both handshakes (reading `ready`, `start`'s release) is in
//! [`crate::handshake`].

use std::ffi::{c_char, c_void};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::ptr;

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow};

use crate::child::opt_ptr;
pub(crate) use crate::child::{close_others, die, errno, read_byte, reset_signals};
use crate::handshake::READY;
pub(crate) use crate::handshake::{decode, release, wait_ready, Ready};
use crate::harden;
use crate::ns;
use crate::plan::{Op, Plan};
use crate::{Error, Result};

/// The user namespace helper's report of the init's pid.
const HELPER_PID: u8 = b'P';
/// Exit code of an init whose exec failed (as shells do for "command not found").
pub(crate) const EXEC_FAILED: i32 = 127;

/// The descriptors the child keeps (all `O_CLOEXEC`, all ≥ 3).
#[derive(Debug)]
pub(crate) struct ChildFds {
    pub sync_read: OwnedFd,
    pub ready_write: OwnedFd,
    /// The start handshake's FIFOs; `None` when the init is to exec as soon as it is set
    /// up (`run`: see [`wait_ready`]).
    pub exec_fifo: Option<OwnedFd>,
    pub exec_result: Option<OwnedFd>,
    /// The caller's stdin (inherited stdio); None = the container's `/dev/null`.
    pub stdin: Option<OwnedFd>,
    pub stdout: OwnedFd,
    pub stderr: OwnedFd,
    /// Existing namespaces to join, in order (see [`crate::ns`]).
    pub joins: Vec<ns::Join>,
    /// v1 `tasks` files (write-only) the child writes `0` to, with their paths for errors.
    pub cgroup_tasks: Vec<(OwnedFd, std::ffi::CString)>,
    /// A connected console socket: the init sends its pty master there (`terminal`).
    pub console: Option<OwnedFd>,
}

/// Moves `fd` to a number ≥ 3 (so dup2 onto 0..2 in the child never clobbers it).
pub(crate) fn above_stdio(fd: OwnedFd) -> Result<OwnedFd> {
    if fd.as_raw_fd() > 2 {
        return Ok(fd);
    }
    let raw = fcntl(fd.as_fd(), FcntlArg::F_DUPFD_CLOEXEC(3)).map_err(|source| Error::Sys {
        what: "duplicating a descriptor above stdio".into(),
        source,
    })?;
    // SAFETY: fcntl(F_DUPFD_CLOEXEC) returned a new descriptor that nothing else owns.
    Ok(unsafe { <OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(raw) })
}

/// Everything the child reads, as plain values and pointers into the parent's (copied)
/// memory.
struct ChildArgs<'a> {
    plan: &'a Plan,
    sync_read: RawFd,
    ready_write: RawFd,
    exec_fifo: RawFd,
    exec_result: RawFd,
    stdin: RawFd,
    stdout: RawFd,
    stderr: RawFd,
    /// Namespaces the init joins itself (the user namespace helper's, with a helper).
    joins: &'a [ns::ChildJoin<'a>],
    /// The helper's report pipe (write end), -1 without a helper.
    report: RawFd,
    /// Sorted descriptors to keep; the rest (≥ 3) are closed first thing.
    keep: &'a [RawFd],
    /// `tasks` descriptors to write `0` to, and their paths.
    cgroup_tasks: &'a [(RawFd, &'a std::ffi::CStr)],
    /// The console socket, -1 without `terminal`.
    console: RawFd,
    argv: &'a [*const c_char],
    envp: &'a [*const c_char],
}

/// `clone3(2)`'s argument (`CLONE_ARGS_SIZE_VER2`, Linux 5.7).
#[repr(C)]
#[derive(Default)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

/// Start the child in the cgroup2 directory `clone_args.cgroup` names.
const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// A fork-like clone with `flags` (namespaces), straight into the cgroup2 directory
/// `into` when given. Returns as fork does (0 in the child, which must then only make
/// raw syscalls on memory prepared before), with the errno of a failure and whether the
/// child was born in `into` (false when the kernel has no `clone3`).
pub(crate) fn clone_child(
    flags: libc::c_int,
    into: Option<std::os::fd::BorrowedFd>,
) -> (libc::c_long, Errno, bool) {
    if let Some(dir) = into {
        let cl = CloneArgs {
            flags: flags as u32 as u64 | CLONE_INTO_CGROUP,
            exit_signal: libc::SIGCHLD as u64,
            cgroup: dir.as_raw_fd() as u64,
            ..CloneArgs::default()
        };
        // SAFETY: clone3 without CLONE_VM and with no stack behaves like fork(): the
        // child gets a copy-on-write copy of the address space and returns from here on
        // its own copy of this stack.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_clone3,
                &raw const cl,
                std::mem::size_of::<CloneArgs>(),
            )
        };
        let errno = Errno::last();
        if ret >= 0 || errno != Errno::ENOSYS {
            return (ret, errno, ret > 0);
        }
    }
    let flags = (flags | libc::SIGCHLD) as libc::c_ulong;
    // SAFETY: as above, with clone(2) and a null stack.
    let ret = unsafe { libc::syscall(libc::SYS_clone, flags, 0usize, 0usize, 0usize, 0usize) };
    (ret, Errno::last(), false)
}

/// Clones the container's init with the plan's namespaces, straight into the cgroup2
/// directory `into_cgroup` when given. Returns its host pid and whether it was born in
/// `into_cgroup` (false when the kernel has no `clone3`: the caller moves it). The child
/// joins `fds.cgroup_tasks` and then waits on `sync` before doing anything else.
pub(crate) fn spawn(
    plan: &Plan,
    fds: &ChildFds,
    into_cgroup: Option<std::os::fd::BorrowedFd>,
) -> Result<(i32, bool)> {
    let argv: Vec<*const c_char> = plan
        .argv
        .iter()
        .map(|a| a.as_ptr())
        .chain(std::iter::once(ptr::null()))
        .collect();
    let envp: Vec<*const c_char> = plan
        .envp
        .iter()
        .map(|e| e.as_ptr())
        .chain(std::iter::once(ptr::null()))
        .collect();
    // Who joins which given namespace: this thread (around the clone), a helper
    // process (with a user namespace to join), or the init (see `ns`).
    let helper = fds.joins.iter().any(|j| j.flag == libc::CLONE_NEWUSER);
    let by_thread = ns::for_thread(&fds.joins, plan.clone_flags, helper);
    let joins: Vec<ns::ChildJoin> = fds
        .joins
        .iter()
        .filter(|j| !by_thread.iter().any(|t| ptr::eq(*t, *j)))
        .map(|j| (j.fd.as_raw_fd(), j.flag, j.path.as_c_str()))
        .collect();
    let report = match helper {
        true => {
            let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(|source| Error::Sys {
                what: "making a pipe".into(),
                source,
            })?;
            Some((r, above_stdio(w)?))
        }
        false => None,
    };
    let raw = |f: &Option<OwnedFd>| f.as_ref().map_or(-1, |f| f.as_raw_fd());
    let mut keep = vec![
        fds.sync_read.as_raw_fd(),
        fds.ready_write.as_raw_fd(),
        raw(&fds.exec_fifo),
        raw(&fds.exec_result),
        fds.stdout.as_raw_fd(),
        fds.stdin.as_ref().map_or(-1, |f| f.as_raw_fd()),
        fds.stderr.as_raw_fd(),
    ];
    keep.extend(joins.iter().map(|(fd, _, _)| *fd));
    let cgroup_tasks = crate::create::raw_tasks(&fds.cgroup_tasks);
    keep.extend(cgroup_tasks.iter().map(|(fd, _)| *fd));
    keep.extend(fds.console.as_ref().map(|f| f.as_raw_fd()));
    keep.extend(plan.source_fds.iter().map(|f| f.as_raw_fd()));
    keep.extend((0..plan.preserve_fds).map(|i| 3 + i as RawFd));
    keep.sort_unstable();
    keep.dedup();
    let args = ChildArgs {
        plan,
        sync_read: fds.sync_read.as_raw_fd(),
        ready_write: fds.ready_write.as_raw_fd(),
        exec_fifo: raw(&fds.exec_fifo),
        // Without the start handshake an exec failure goes where `R` went.
        exec_result: fds
            .exec_result
            .as_ref()
            .map_or(fds.ready_write.as_raw_fd(), |f| f.as_raw_fd()),
        stdin: fds.stdin.as_ref().map_or(-1, |f| f.as_raw_fd()),
        stdout: fds.stdout.as_raw_fd(),
        stderr: fds.stderr.as_raw_fd(),
        joins: &joins,
        report: report.as_ref().map_or(-1, |(_, w)| w.as_raw_fd()),
        keep: &keep,
        cgroup_tasks: &cgroup_tasks,
        console: fds.console.as_ref().map_or(-1, |f| f.as_raw_fd()),
        argv: &argv,
        envp: &envp,
    };

    let thread = ns::ThreadJoin::enter(&by_thread)?;
    // Block every signal across the clone so no inherited handler runs in the child
    // before it resets them to the defaults.
    let mut old = SigSet::empty();
    pthread_sigmask(
        SigmaskHow::SIG_SETMASK,
        Some(&SigSet::all()),
        Some(&mut old),
    )
    .map_err(|source| Error::Sys {
        what: "blocking signals around clone".into(),
        source,
    })?;
    let flags = if helper { 0 } else { plan.clone_flags };
    let (ret, errno, in_cgroup) = clone_child(flags, into_cgroup);
    if ret == 0 {
        // SAFETY: we are the freshly cloned child; see child_main's contract.
        unsafe {
            match helper {
                true => helper_main(&args),
                false => child_main(&args),
            }
        }
    }
    let _ = pthread_sigmask(SigmaskHow::SIG_SETMASK, Some(&old), None);
    drop(thread);
    if ret < 0 {
        let what = match into_cgroup {
            Some(_) if errno != Errno::ENOSYS => {
                "cloning the container init into its cgroup (new pid/mount/uts/ipc namespaces)"
            }
            _ => "cloning the container init (new pid/mount/uts/ipc namespaces)",
        };
        return Err(Error::Sys {
            what: what.into(),
            source: errno,
        });
    }
    match report {
        Some((read, write)) => {
            drop(write);
            let pid = helper_report(&read);
            let _ = nix::sys::wait::waitpid(nix::unistd::Pid::from_raw(ret as i32), None);
            Ok((pid?, in_cgroup))
        }
        None => Ok((ret as i32, in_cgroup)),
    }
}

/// Reads the user namespace helper's report: `P` + the init's pid, or an error.
fn helper_report(fd: &OwnedFd) -> Result<i32> {
    let mut msg = Vec::new();
    let mut buf = [0u8; 1100];
    loop {
        match nix::unistd::read(fd, &mut buf) {
            Ok(0) => break,
            Ok(n) => msg.extend_from_slice(&buf[..n]),
            Err(Errno::EINTR) => continue,
            Err(source) => {
                return Err(Error::Sys {
                    what: "reading the user namespace helper's report".into(),
                    source,
                })
            }
        }
        if msg.first() == Some(&HELPER_PID) && msg.len() >= 5 {
            break;
        }
    }
    match msg.split_first() {
        Some((&HELPER_PID, pid)) if pid.len() >= 4 => {
            Ok(i32::from_le_bytes([pid[0], pid[1], pid[2], pid[3]]))
        }
        Some(_) => Err(Error::Start(format!(
            "setting up the container: {}",
            decode(&msg).unwrap_or_default()
        ))),
        None => Err(Error::Start(
            "the user namespace helper exited without cloning the container init".into(),
        )),
    }
}

/// The helper that joins a user namespace (see `ns`): joins everything, clones the
/// init as a sibling (`CLONE_PARENT`), reports its pid and exits.
///
/// # Safety
/// Only in the cloned child, once. Does not allocate, lock or unwind.
unsafe fn helper_main(a: &ChildArgs) -> ! {
    // SAFETY: raw syscalls on descriptors and memory prepared by the parent.
    unsafe {
        ns::child_join(a.joins, a.report);
        let init = ChildArgs { joins: &[], ..*a };
        let flags = a.plan.clone_flags | libc::CLONE_PARENT;
        let (ret, _, _) = clone_child(flags, None);
        if ret == 0 {
            child_main(&init);
        }
        if ret < 0 {
            die(
                a.report,
                1,
                &[b"cloning the container init in the joined user namespace"],
            );
        }
        let mut msg = [HELPER_PID, 0, 0, 0, 0];
        msg[1..].copy_from_slice(&(ret as i32).to_le_bytes());
        libc::write(a.report, msg.as_ptr().cast(), msg.len());
        libc::_exit(0)
    }
}

/// Brings `lo` up in the current network namespace.
///
/// # Safety
/// Only in the cloned child.
unsafe fn loopback_up() -> bool {
    // SAFETY: plain socket/ioctl calls on a zeroed ifreq naming "lo".
    unsafe {
        let sock = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if sock < 0 {
            return false;
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        ifr.ifr_name[0] = b'l' as c_char;
        ifr.ifr_name[1] = b'o' as c_char;
        let mut ok = libc::ioctl(sock, libc::SIOCGIFFLAGS, &raw mut ifr) == 0;
        if ok {
            ifr.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
            ok = libc::ioctl(sock, libc::SIOCSIFFLAGS, &raw const ifr) == 0;
        }
        libc::close(sock);
        ok
    }
}

/// Runs one filesystem step, dying with a message on failure that names its paths
/// below `rootfs` (the working directory the relative paths of [`Plan::ops`] start
/// from; `None` for absolute paths).
///
/// # Safety
/// Only in the cloned child.
unsafe fn run_op(op: &Op, err: RawFd, rootfs: Option<&std::ffi::CStr>) {
    let (root, slash): (&[u8], &[u8]) = match rootfs {
        Some(r) => (r.to_bytes(), b"/"),
        None => (b"", b""),
    };
    // SAFETY: every pointer comes from a CString of the plan, alive in our copy of the
    // parent's memory.
    unsafe {
        match op {
            Op::Mount {
                what,
                source,
                target,
                fstype,
                flags,
                data,
                optional,
            } => {
                let data_ptr: *const c_void = opt_ptr(data).cast();
                let r = libc::mount(
                    opt_ptr(source),
                    target.as_ptr(),
                    opt_ptr(fstype),
                    *flags,
                    data_ptr,
                );
                if r != 0 && !*optional {
                    let src = source.as_ref().map_or(&b""[..], |s| s.to_bytes());
                    die(
                        err,
                        1,
                        &[
                            b"mount ",
                            what.as_bytes(),
                            b" ",
                            src,
                            b" on ",
                            root,
                            slash,
                            target.to_bytes(),
                        ],
                    );
                }
            }
            Op::Mkdir { path, mode } => {
                if libc::mkdir(path.as_ptr(), *mode) != 0 && errno() != libc::EEXIST {
                    die(err, 1, &[b"mkdir ", root, slash, path.to_bytes()]);
                }
            }
            Op::Symlink { target, link } => {
                if libc::symlink(target.as_ptr(), link.as_ptr()) != 0 && errno() != libc::EEXIST {
                    die(err, 1, &[b"symlink ", root, slash, link.to_bytes()]);
                }
            }
            Op::Mknod {
                path,
                mode,
                dev,
                uid,
                gid,
                host,
            } => {
                let p = path.as_ptr();
                if libc::mknod(p, *mode, *dev) == 0 {
                    // mknod applies the umask: set the mode the config asked for.
                    if libc::chmod(p, *mode & 0o7777) != 0 || libc::chown(p, *uid, *gid) != 0 {
                        let what = b"setting mode and owner of ";
                        die(err, 1, &[what, root, slash, path.to_bytes()]);
                    }
                } else if errno() == libc::EPERM {
                    let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_CLOEXEC | libc::O_NOFOLLOW;
                    let fd = libc::open(p, flags, 0o666 as libc::c_uint);
                    if fd < 0 {
                        die(err, 1, &[b"create ", root, slash, path.to_bytes()]);
                    }
                    libc::close(fd);
                    let r = libc::mount(host.as_ptr(), p, ptr::null(), libc::MS_BIND, ptr::null());
                    if r != 0 {
                        die(err, 1, &[b"binding the host's ", host.to_bytes()]);
                    }
                    if !crate::idmap::nosuid_noexec(p) {
                        let what = b"making nosuid,noexec the bound ";
                        die(err, 1, &[what, root, slash, path.to_bytes()]);
                    }
                } else if errno() != libc::EEXIST {
                    die(err, 1, &[b"mknod ", root, slash, path.to_bytes()]);
                }
            }
            Op::Attach {
                tree,
                source,
                target,
            } => {
                if !crate::idmap::attach(*tree, target.as_ptr()) {
                    let (src, on) = (source.to_bytes(), target.to_bytes());
                    die(err, 1, &[b"bind ", src, b" on ", root, slash, on]);
                }
            }
            Op::Mask { .. } | Op::ReadOnly { .. } => harden::run_post_op(op, err),
        }
    }
}

/// The container's init, from clone to execve.
///
/// # Safety
/// Only in the cloned child, once. Does not allocate, lock or unwind.
unsafe fn child_main(a: &ChildArgs) -> ! {
    let p = a.plan;
    let err = a.ready_write;
    // SAFETY: raw syscalls on descriptors and C strings prepared by the parent.
    unsafe {
        reset_signals();
        libc::umask(0o022);
        close_others(a.keep);

        // Move ourselves into each v1 hierarchy (see the module doc for why not the
        // parent); the parent's `create` returns only after our `ready`, so after this.
        crate::child::join_cgroups(a.cgroup_tasks, err);
        // Wait for the parent: id maps, hooks, or its own move of our pid.
        if read_byte(a.sync_read) != 1 {
            libc::_exit(1);
        }
        libc::close(a.sync_read);

        ns::child_join(a.joins, err);
        // After joining the cgroup, so the namespace's root is the container's cgroup.
        if p.new_cgroupns && libc::unshare(libc::CLONE_NEWCGROUP) != 0 {
            die(err, 1, &[b"unsharing the cgroup namespace"]);
        }
        if p.loopback_up && !loopback_up() {
            die(err, 1, &[b"bringing up lo"]);
        }
        for op in &p.root_ops {
            run_op(op, err, None);
        }
        // Into the rootfs (the bind on top of it, if any) while we are still host root:
        // the dirs above it may be host root's alone (a 0700 state dir).
        if libc::chdir(p.rootfs.as_ptr()) != 0 {
            die(err, 1, &[b"chdir ", p.rootfs.to_bytes()]);
        }
        // In a new user namespace we still carry the host's ids (unmapped there, so
        // files we create would fail with EOVERFLOW): become the namespace's root, now
        // that the parent has written the maps. From here on no path leaves the rootfs
        // but those in /dev and /proc/self/fd (bind sources the parent opened).
        if p.clone_flags & libc::CLONE_NEWUSER != 0
            && (libc::syscall(libc::SYS_setresgid, 0, 0, 0) != 0
                || libc::syscall(libc::SYS_setresuid, 0, 0, 0) != 0)
        {
            die(err, 1, &[b"becoming root of the user namespace"]);
        }
        for op in &p.ops {
            run_op(op, err, Some(&p.rootfs));
        }

        // pivot_root(".", "."), from the rootfs we are in: the old root ends up stacked
        // on the new one and is detached at once; no put_old directory is needed (see
        // pivot_root(2)). In the host's mount namespace, chroot: pivot_root would move
        // the root of every process there.
        let dot = c".".as_ptr();
        if !p.own_mount_ns {
            if libc::chroot(dot) != 0 {
                die(err, 1, &[b"chroot into ", p.rootfs.to_bytes()]);
            }
        } else if libc::syscall(libc::SYS_pivot_root, dot, dot) != 0 {
            die(err, 1, &[b"pivot_root into ", p.rootfs.to_bytes()]);
        } else if libc::umount2(dot, libc::MNT_DETACH) != 0 {
            die(err, 1, &[b"detaching the old root"]);
        }
        if libc::chdir(c"/".as_ptr()) != 0 {
            die(err, 1, &[b"chdir /"]);
        }
        if p.root_propagation != 0
            && libc::mount(
                ptr::null(),
                c"/".as_ptr(),
                ptr::null(),
                p.root_propagation,
                ptr::null(),
            ) != 0
        {
            die(err, 1, &[b"setting the propagation of /"]);
        }
        for op in &p.post_ops {
            harden::run_post_op(op, err);
        }
        if p.readonly_rootfs {
            harden::readonly_root(err);
        }
        if let Some(host) = &p.hostname {
            let host = host.to_bytes();
            if libc::sethostname(host.as_ptr().cast(), host.len()) != 0 {
                die(err, 1, &[b"sethostname ", host]);
            }
        }
        if libc::chdir(p.cwd.as_ptr()) != 0 {
            die(
                err,
                1,
                &[b"chdir to the working directory ", p.cwd.to_bytes()],
            );
        }

        if a.console >= 0 {
            crate::child::console(a.console, err);
            // The console replaces them: a caller waiting for the end of our inherited
            // stdout (a `create` run through a pipe) must not wait for `start`.
            for fd in [a.stdin, a.stdout, a.stderr] {
                if fd > 2 {
                    libc::close(fd);
                }
            }
        } else {
            let null = if a.stdin >= 0 {
                a.stdin
            } else {
                libc::open(c"/dev/null".as_ptr(), libc::O_RDWR)
            };
            if null < 0 {
                die(err, 1, &[b"opening /dev/null in the container"]);
            }
            if libc::dup2(null, 0) < 0 || libc::dup2(a.stdout, 1) < 0 || libc::dup2(a.stderr, 2) < 0
            {
                die(err, 1, &[b"setting up stdin/stdout/stderr"]);
            }
            if null > 2 {
                libc::close(null);
            }
        }

        harden::apply(&p.privileges, err);

        // Set up: tell the parent, then wait for `start`. Without the start handshake
        // (`run`) exec at once: the ready pipe stays open (close-on-exec), so the parent
        // reads EOF after the `R` once the exec succeeded, or the reason it failed.
        libc::write(err, [READY].as_ptr().cast(), 1);
        if a.exec_fifo >= 0 {
            libc::close(err);
            if read_byte(a.exec_fifo) != 1 {
                libc::_exit(1);
            }
            libc::close(a.exec_fifo);
        }

        libc::execve(p.exec_path.as_ptr(), a.argv.as_ptr(), a.envp.as_ptr());
        die(
            a.exec_result,
            EXEC_FAILED,
            &[b"exec \"", p.exec_path.to_bytes(), b"\""],
        )
    }
}
