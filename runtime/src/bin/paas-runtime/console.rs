//! Terminals of the CLI: the relay between a container's pty and this terminal (for
//! `run` and `exec --tty` in the foreground), and sending an exec's pty master to a
//! `--console-socket` as runc does (`SCM_RIGHTS`, the data is the word `console`).

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;

use crate::Failure;

/// Accepts the container's console on `listener`, takes the pty master out of the
/// message and relays it to our terminal (raw mode while it runs when stdin is a
/// terminal, as runc).
pub fn relay_console(listener: &UnixListener) -> Result<(), Failure> {
    let (conn, _) = listener
        .accept()
        .map_err(|e| Failure::new(format!("accepting the console: {e}"), 1))?;
    let master = paas_runtime::oci::receive_console(&conn)?;
    relay_raw(&master)
}

/// [`relay_pty`] with our terminal in raw mode meanwhile (when stdin is one).
pub fn relay_raw(master: &OwnedFd) -> Result<(), Failure> {
    let stdin = std::io::stdin();
    let saved = nix::sys::termios::tcgetattr(&stdin).ok();
    if let Some(t) = &saved {
        let mut raw = t.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, &raw);
    }
    let relayed = relay_pty(master);
    if let Some(t) = &saved {
        let _ = nix::sys::termios::tcsetattr(&stdin, nix::sys::termios::SetArg::TCSANOW, t);
    }
    relayed
}

/// Copies our stdin to the pty master and the master to our stdout (until the process
/// closes its side).
pub fn relay_pty(master: &OwnedFd) -> Result<(), Failure> {
    let fail = |e: std::io::Error| Failure::new(format!("relaying the pty: {e}"), 1);
    let mut reader = std::fs::File::from(master.try_clone().map_err(fail)?);
    let mut writer = std::fs::File::from(master.try_clone().map_err(fail)?);
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        let mut stdin = std::io::stdin();
        while let Ok(n) = stdin.read(&mut buf) {
            if n == 0 || writer.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    });
    let mut buf = [0u8; 4096];
    let mut stdout = std::io::stdout();
    // EIO once the last slave descriptor is closed.
    while let Ok(n) = reader.read(&mut buf) {
        if n == 0 {
            break;
        }
        let _ = stdout.write_all(&buf[..n]);
        let _ = stdout.flush();
    }
    Ok(())
}

/// Sends `master` over the unix socket at `path` (runc's `--console-socket`).
pub fn send_console(path: &Path, master: &OwnedFd) -> Result<(), Failure> {
    use nix::sys::socket::{sendmsg, ControlMessage, MsgFlags};
    let fail = |e: String| {
        Failure::new(
            format!(
                "sending the pty to --console-socket {}: {e}",
                path.display()
            ),
            1,
        )
    };
    let conn = UnixStream::connect(path).map_err(|e| fail(e.to_string()))?;
    let fds = [master.as_raw_fd()];
    let data = [std::io::IoSlice::new(b"console")];
    sendmsg::<()>(
        conn.as_raw_fd(),
        &data,
        &[ControlMessage::ScmRights(&fds)],
        MsgFlags::empty(),
        None,
    )
    .map_err(|e| fail(e.to_string()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sent_console_is_received_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("console.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let pty = nix::pty::openpty(None, None).unwrap();
        let receiver = std::thread::spawn(move || {
            let (conn, _) = listener.accept().unwrap();
            paas_runtime::oci::receive_console(&conn).unwrap()
        });
        send_console(&path, &pty.master).unwrap();
        let got = receiver.join().unwrap();
        // The received descriptor is the same pty: what its slave writes, it reads.
        let mut slave = std::fs::File::from(pty.slave);
        slave.write_all(b"hi\n").unwrap();
        let mut buf = [0u8; 16];
        let n = std::fs::File::from(got).read(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"hi"), "{:?}", &buf[..n]);
    }
}
