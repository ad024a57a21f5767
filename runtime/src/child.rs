//! Raw helpers for a freshly cloned child (the init, the user namespace helper, the
//! exec helper), which must not allocate, lock or unwind (see `init`'s module doc):
//! errno, a fixed-size error message and `die`, one-byte reads, signal reset, closing
//! inherited descriptors, the container's console.

use std::ffi::c_char;
use std::os::fd::RawFd;
use std::ptr;

/// The tag of a failure message (`E` + errno + text) on a report pipe.
pub(crate) const FAILED: u8 = b'E';

/// A fixed-size message built without allocating.
pub(crate) struct Msg {
    pub(crate) buf: [u8; 1024],
    pub(crate) len: usize,
}

impl Msg {
    pub(crate) fn new(tag: u8, errno: i32) -> Msg {
        let mut m = Msg {
            buf: [0; 1024],
            len: 0,
        };
        m.push(&[tag]);
        m.push(&errno.to_le_bytes());
        m
    }

    pub(crate) fn push(&mut self, bytes: &[u8]) {
        for &b in bytes {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
            }
        }
    }
}

/// Reads the calling thread's errno.
pub(crate) fn errno() -> i32 {
    // SAFETY: __errno_location returns a valid pointer to this thread's errno.
    unsafe { *libc::__errno_location() }
}

/// Writes `E` + errno + `parts` to `fd` and exits with `code`. Child only.
///
/// # Safety
/// Only in the cloned child.
pub(crate) unsafe fn die(fd: RawFd, code: i32, parts: &[&[u8]]) -> ! {
    let mut msg = Msg::new(FAILED, errno());
    for p in parts {
        msg.push(p);
    }
    // SAFETY: msg.buf is valid for msg.len bytes; _exit never returns.
    unsafe {
        libc::write(fd, msg.buf.as_ptr().cast(), msg.len);
        libc::_exit(code)
    }
}

/// Reads one byte, retrying on EINTR. Returns what read(2) returned.
///
/// # Safety
/// `fd` must be a descriptor of this process.
pub(crate) unsafe fn read_byte(fd: RawFd) -> isize {
    let mut byte = 0u8;
    loop {
        // SAFETY: reading one byte into a local.
        let n = unsafe { libc::read(fd, (&raw mut byte).cast(), 1) };
        if n < 0 && errno() == libc::EINTR {
            continue;
        }
        return n;
    }
}

pub(crate) fn opt_ptr(s: &Option<std::ffi::CString>) -> *const c_char {
    s.as_ref().map_or(ptr::null(), |c| c.as_ptr())
}

/// Resets every signal to its default action and unblocks all of them.
///
/// # Safety
/// Only in the cloned child.
pub(crate) unsafe fn reset_signals() {
    for sig in 1..=64 {
        if sig == libc::SIGKILL || sig == libc::SIGSTOP {
            continue;
        }
        // SAFETY: a zeroed sigaction with SIG_DFL is a valid argument; errors (glibc's
        // reserved signals) are ignored.
        unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = libc::SIG_DFL;
            libc::sigaction(sig, &sa, ptr::null_mut());
        }
    }
    let empty: u64 = 0;
    // SAFETY: the raw syscall takes an 8-byte kernel sigset.
    unsafe {
        libc::syscall(
            libc::SYS_rt_sigprocmask,
            libc::SIG_SETMASK,
            &raw const empty,
            ptr::null_mut::<u64>(),
            8usize,
        );
    }
}

/// Closes every descriptor ≥ 3 that is not in `keep` (sorted; -1 entries ignored).
///
/// # Safety
/// Only in the cloned child.
pub(crate) unsafe fn close_others(keep: &[RawFd]) {
    let mut next: u32 = 3;
    let close = |first: u32, last: u32| {
        // SAFETY: close_range only closes descriptors of this process.
        let r = unsafe { libc::syscall(libc::SYS_close_range, first, last, 0u32) };
        if r != 0 {
            let end = last.min(4095);
            for fd in first..=end {
                // SAFETY: closing a descriptor number, unknown ones fail with EBADF.
                unsafe { libc::close(fd as i32) };
            }
        }
    };
    for &fd in keep {
        if fd < 3 {
            continue;
        }
        let fd = fd as u32;
        if fd > next {
            close(next, fd - 1);
        }
        next = next.max(fd + 1);
    }
    close(next, u32::MAX);
}

/// The container's console (`terminal`): a new pty of the container's devpts (so after
/// pivot_root), its master sent over `sock` with `SCM_RIGHTS` as runc does (the data is
/// the word `console`), the slave made the controlling terminal of a new session and
/// stdin, stdout, stderr.
///
/// # Safety
/// Only in the cloned child. Does not allocate.
pub(crate) unsafe fn console(sock: RawFd, err: RawFd) {
    // SAFETY: raw syscalls on descriptors of this process and stack buffers.
    unsafe {
        let flags = libc::O_RDWR | libc::O_NOCTTY | libc::O_CLOEXEC;
        let master = libc::open(c"/dev/ptmx".as_ptr(), flags);
        if master < 0 {
            die(
                err,
                1,
                &[b"opening /dev/ptmx in the container for its console"],
            );
        }
        let unlock: libc::c_int = 0;
        if libc::ioctl(master, libc::TIOCSPTLCK, &raw const unlock) != 0 {
            die(err, 1, &[b"unlocking the console pty"]);
        }
        let slave = libc::ioctl(master, libc::TIOCGPTPEER, libc::O_RDWR | libc::O_NOCTTY);
        if slave < 0 {
            die(err, 1, &[b"opening the console pty's other end"]);
        }
        let mut data = *b"console";
        let mut iov = libc::iovec {
            iov_base: data.as_mut_ptr().cast(),
            iov_len: data.len(),
        };
        // Room for one descriptor, aligned for cmsghdr.
        let mut control = [0u64; 4];
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &raw mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = control.as_mut_ptr().cast();
        msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) as usize;
        let cmsg = libc::CMSG_FIRSTHDR(&raw const msg);
        (*cmsg).cmsg_level = libc::SOL_SOCKET;
        (*cmsg).cmsg_type = libc::SCM_RIGHTS;
        (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as usize;
        libc::CMSG_DATA(cmsg)
            .cast::<libc::c_int>()
            .write_unaligned(master);
        if libc::sendmsg(sock, &raw const msg, libc::MSG_NOSIGNAL) < 0 {
            die(err, 1, &[b"sending the console to the console socket"]);
        }
        libc::close(master);
        libc::close(sock);
        if libc::setsid() < 0 || libc::ioctl(slave, libc::TIOCSCTTY, 0) != 0 {
            die(err, 1, &[b"making the console the controlling terminal"]);
        }
        if libc::dup2(slave, 0) < 0 || libc::dup2(slave, 1) < 0 || libc::dup2(slave, 2) < 0 {
            die(err, 1, &[b"setting up the console as stdin/stdout/stderr"]);
        }
        if slave > 2 {
            libc::close(slave);
        }
    }
}

/// Moves the calling (single-threaded) process into each v1 hierarchy by writing `0` to
/// the `tasks` descriptors the parent opened (see `init`'s module doc for why not the
/// parent), closing them; a failure is reported on `err` with the file's path.
///
/// # Safety
/// Only in a cloned child. Does not allocate.
pub(crate) unsafe fn join_cgroups(tasks: &[(RawFd, &std::ffi::CStr)], err: RawFd) {
    for &(fd, path) in tasks {
        // SAFETY: writing one byte from a static buffer to, then closing, our descriptor.
        unsafe {
            if libc::write(fd, b"0".as_ptr().cast(), 1) != 1 {
                die(
                    err,
                    1,
                    &[b"joining the container's cgroup through ", path.to_bytes()],
                );
            }
            libc::close(fd);
        }
    }
}
