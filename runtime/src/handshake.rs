//! The parent's side of the init's handshakes (see [`crate::init`]): reading the ready
//! pipe after create ([`wait_ready`]), letting the init exec at `start` through its FIFOs
//! ([`release`]), and turning the child's `R` / `E` + errno + text messages into text.

use std::os::fd::{AsFd, OwnedFd};
use std::path::Path;

use nix::errno::Errno;
use nix::fcntl::{open, OFlag};
use nix::poll::{poll, PollFd, PollFlags, PollTimeout};
use nix::sys::stat::Mode;

use crate::child::FAILED;
use crate::{Error, Result};

/// Message tag on the ready and result channels: the child is set up (failures are
/// `crate::child::FAILED`).
pub(crate) const READY: u8 = b'R';

/// Turns a message from the child into text: `None` for `R`, else `<text>: <errno text>`.
pub(crate) fn decode(msg: &[u8]) -> Option<String> {
    match msg.split_first() {
        Some((&READY, _)) => None,
        Some((&FAILED, rest)) if rest.len() >= 4 => {
            let (num, text) = rest.split_at(4);
            let errno = i32::from_le_bytes([num[0], num[1], num[2], num[3]]);
            Some(format!(
                "{}: {}",
                String::from_utf8_lossy(text),
                Errno::from_raw(errno).desc()
            ))
        }
        _ => Some(format!(
            "garbled message from the container init: {:?}",
            String::from_utf8_lossy(msg)
        )),
    }
}

/// What the parent learned from the ready pipe.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Ready {
    Ok,
    Failed(String),
    /// Set up, but the exec failed (only when the init did not wait for `start`).
    ExecFailed(String),
    /// EOF without a message: the child died (killed, or exited before reporting).
    Died,
}

/// Blocks until the child reports on the ready pipe. With `until_exec` (an init that
/// does not wait for `start`) it reads on to EOF: nothing after the `R` means the exec
/// succeeded (the pipe closed with it), a message means it failed.
pub(crate) fn wait_ready(fd: &OwnedFd, until_exec: bool) -> Ready {
    let mut buf = [0u8; 1100];
    let mut len = 0;
    loop {
        match nix::unistd::read(fd, &mut buf[len..]) {
            Ok(0) => break,
            Ok(n) => {
                len += n;
                if !until_exec || buf[0] != READY || len == buf.len() {
                    break;
                }
            }
            Err(Errno::EINTR) => continue,
            Err(_) => break,
        }
    }
    match &buf[..len] {
        [] => Ready::Died,
        [READY] => Ready::Ok,
        [READY, rest @ ..] if until_exec => {
            Ready::ExecFailed(decode(rest).unwrap_or_else(|| "the exec failed".into()))
        }
        msg => match decode(msg) {
            None => Ready::Ok,
            Some(msg) => Ready::Failed(msg),
        },
    }
}

/// Handshake 2 from the `start` side: lets the init exec and returns `Error::Start` with
/// the init's message if the exec failed. `alive` tells whether the init still runs (to
/// stop waiting if it vanished without closing its end, which should not happen).
pub(crate) fn release(
    exec_fifo: &Path,
    exec_result: &Path,
    alive: impl Fn() -> bool,
) -> Result<()> {
    let not_waiting = |what: &str| {
        Error::Start(format!(
            "the container init is not waiting to be started ({what}); it exited or was \
             killed, or the container was already started"
        ))
    };
    let flags = OFlag::O_RDONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let result = match open(exec_result, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENOENT) => return Err(not_waiting("no exec.result")),
        Err(source) => {
            return Err(Error::Sys {
                what: format!("opening {}", exec_result.display()),
                source,
            })
        }
    };
    let flags = OFlag::O_WRONLY | OFlag::O_NONBLOCK | OFlag::O_CLOEXEC;
    let go = match open(exec_fifo, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::ENXIO) => return Err(not_waiting("nobody reads exec.fifo")),
        Err(Errno::ENOENT) => return Err(not_waiting("no exec.fifo")),
        Err(source) => {
            return Err(Error::Sys {
                what: format!("opening {}", exec_fifo.display()),
                source,
            })
        }
    };
    nix::unistd::write(&go, &[0u8]).map_err(|source| Error::Sys {
        what: format!("writing to {}", exec_fifo.display()),
        source,
    })?;
    drop(go);

    let mut msg = Vec::new();
    let mut buf = [0u8; 1100];
    loop {
        let mut fds = [PollFd::new(result.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(200u16)) {
            Ok(0) => {
                if !alive() {
                    break;
                }
                continue;
            }
            Ok(_) | Err(Errno::EINTR) => {}
            Err(source) => {
                return Err(Error::Sys {
                    what: format!("waiting on {}", exec_result.display()),
                    source,
                })
            }
        }
        match nix::unistd::read(&result, &mut buf) {
            Ok(0) => break,
            Ok(n) => msg.extend_from_slice(&buf[..n]),
            Err(Errno::EAGAIN) | Err(Errno::EINTR) => {}
            Err(source) => {
                return Err(Error::Sys {
                    what: format!("reading {}", exec_result.display()),
                    source,
                })
            }
        }
    }
    match msg.is_empty() {
        true => Ok(()),
        false => Err(Error::Start(decode(&msg).unwrap_or_default())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::child::Msg;

    #[test]
    fn messages_decode() {
        assert_eq!(decode(b"R"), None);
        let mut m = Msg::new(FAILED, libc::ENOENT);
        m.push(b"exec \"/bin/nosuch\"");
        assert_eq!(
            decode(&m.buf[..m.len]).unwrap(),
            "exec \"/bin/nosuch\": No such file or directory"
        );
        assert!(decode(b"").unwrap().contains("garbled"));
        assert!(decode(b"E12").unwrap().contains("garbled"));
    }

    #[test]
    fn long_messages_are_cut_not_overflowed() {
        let mut m = Msg::new(FAILED, 1);
        m.push(&[b'x'; 5000]);
        assert_eq!(m.len, 1024);
    }
}
