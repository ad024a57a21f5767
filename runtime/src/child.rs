//! Raw helpers for a freshly cloned child (the init, the user namespace helper, the
//! exec helper), which must not allocate, lock or unwind (see `init`'s module doc):
//! errno, a fixed-size error message and `die`, one-byte reads, signal reset, closing
//! inherited descriptors.

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
