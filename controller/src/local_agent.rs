//! The standalone controller's local agent across controller restarts (issue 16).
//!
//! The agent is a child of the controller, but it outlives a controller that is killed
//! (SIGKILL, OOM, a crash): it is reparented to init and keeps running, holding its state
//! dir's lock (`agent.lock`) and serving its jobs. A controller that starts again finds it
//! through `<state-dir>/agent.pid` and:
//!
//! - **adopts** it when it runs the same binary (not replaced on disk) with the same command
//!   line and node token the controller would start: no second agent, no restart, the jobs
//!   never notice. The controller watches it through a pidfd and starts a new one when it
//!   exits, like a child of its own;
//! - **replaces** it otherwise (an upgraded binary, other flags, a rotated token): SIGTERM,
//!   up to 10 s for it to exit (then SIGKILL), and only then a new agent, so two agents
//!   never fight for one lock. Containers outlive the handover either way; the new agent
//!   re-adopts them from the state dir.

use std::ffi::OsString;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::unix::AsyncFd;

/// The file (in the agent's state dir) naming the pid of the agent that holds the lock;
/// the agent writes it (`paas_node_agent::agent::PID_FILE`).
pub const PID_FILE: &str = "agent.pid";

/// Why a running agent could not be watched.
#[derive(Debug, thiserror::Error)]
pub enum HandoverError {
    #[error("opening a pidfd for the agent (pid {pid}): {source}")]
    Pidfd {
        pid: i32,
        #[source]
        source: std::io::Error,
    },
    #[error("watching the agent (pid {pid}): {source}")]
    Watch {
        pid: i32,
        #[source]
        source: std::io::Error,
    },
}

/// An agent process of the state dir that this controller did not start.
#[derive(Debug)]
pub struct Running {
    pub pid: i32,
    pidfd: AsyncFd<OwnedFd>,
}

/// What to do with the agent found running.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Same binary, flags and token: keep it.
    Adopt,
    /// Something differs (said why): stop it and start a new one.
    Replace(String),
}

impl Running {
    /// The agent holding the lock of `state_dir`, if one runs: the lock is held and the
    /// pid file names a live process.
    pub fn find(state_dir: &Path) -> Result<Option<Running>, HandoverError> {
        if !lock_is_held(&state_dir.join("agent.lock")) {
            return Ok(None);
        }
        let Some(pid) = std::fs::read_to_string(state_dir.join(PID_FILE))
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
            .filter(|p| *p > 1)
        else {
            return Ok(None);
        };
        // SAFETY: pidfd_open(2) takes a pid and flags and returns a new descriptor (or -1);
        // no memory is shared with the kernel.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        if fd < 0 {
            let e = std::io::Error::last_os_error();
            if e.raw_os_error() == Some(libc::ESRCH) {
                return Ok(None);
            }
            return Err(HandoverError::Pidfd { pid, source: e });
        }
        // SAFETY: `fd` was just returned by pidfd_open and is owned by nobody else.
        let owned = unsafe { OwnedFd::from_raw_fd(fd as i32) };
        // SAFETY: an OwnedFd's descriptor stays open and the same until the AsyncFd (its
        // owner from here on) drops it.
        let pidfd =
            unsafe { AsyncFd::register_with_interest(owned, tokio::io::Interest::READABLE) }
                .map_err(|e| HandoverError::Watch {
                    pid,
                    source: e.into(),
                })?;
        Ok(Some(Running { pid, pidfd }))
    }

    /// Whether the agent runs `program` with `args` and `token` (see the module doc).
    pub fn verdict(&self, program: &Path, args: &[OsString], token: &str) -> Verdict {
        let proc = PathBuf::from(format!("/proc/{}", self.pid));
        let exe = std::fs::read_link(proc.join("exe")).unwrap_or_default();
        let want = program.canonicalize().unwrap_or_else(|_| program.into());
        if exe != want {
            return Verdict::Replace(format!(
                "it runs {} (the binary to run is {})",
                exe.display(),
                want.display()
            ));
        }
        let cmdline = std::fs::read(proc.join("cmdline")).unwrap_or_default();
        let have: Vec<OsString> = cmdline
            .split(|b| *b == 0)
            .skip(1)
            .filter(|a| !a.is_empty())
            .map(|a| OsString::from_vec(a.to_vec()))
            .collect();
        if have != args {
            return Verdict::Replace("it was started with other flags".into());
        }
        let environ = std::fs::read(proc.join("environ")).unwrap_or_default();
        let wanted = format!("PAAS_NODE_TOKEN={token}");
        if !environ.split(|b| *b == 0).any(|e| e == wanted.as_bytes()) {
            return Verdict::Replace("it has another node token".into());
        }
        Verdict::Adopt
    }

    /// Waits until the agent exits.
    pub async fn exited(&self) {
        // A pidfd turns readable when its process exits.
        loop {
            match self.pidfd.readable().await {
                Ok(mut guard) => {
                    if self.is_gone() {
                        return;
                    }
                    guard.clear_ready();
                }
                Err(_) => return,
            }
        }
    }

    fn is_gone(&self) -> bool {
        let mut fds = libc::pollfd {
            fd: self.pidfd.get_ref().as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll(2) on one pollfd we own, with a zero timeout.
        let n = unsafe { libc::poll(&mut fds, 1, 0) };
        n > 0 && fds.revents & libc::POLLIN != 0
    }

    /// Sends `signal` through the pidfd (never to a reused pid).
    pub fn signal(&self, signal: i32) {
        // SAFETY: pidfd_send_signal(2) with our pidfd, a signal number, no siginfo and no
        // flags; the pidfd pins the process, so no other process can get the signal.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.pidfd.get_ref().as_raw_fd(),
                signal,
                std::ptr::null::<libc::siginfo_t>(),
                0,
            );
        }
    }

    /// SIGTERM, then SIGKILL when it has not exited after `grace`; returns when it is gone.
    pub async fn stop(&self, grace: Duration) {
        self.signal(libc::SIGTERM);
        if tokio::time::timeout(grace, self.exited()).await.is_err() {
            tracing::warn!(
                pid = self.pid,
                "the agent did not exit {} s after SIGTERM; killing it",
                grace.as_secs()
            );
            self.signal(libc::SIGKILL);
            let _ = tokio::time::timeout(Duration::from_secs(5), self.exited()).await;
        }
    }
}

/// True when another process holds `path`'s flock (false when the file does not exist).
fn lock_is_held(path: &Path) -> bool {
    let Ok(file) = std::fs::OpenOptions::new().read(true).open(path) else {
        return false;
    };
    // SAFETY: flock(2) on a descriptor we own; released below or when `file` closes.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        // SAFETY: as above; give it back at once so an agent starting now gets it.
        unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_UN) };
        return false;
    }
    std::io::Error::last_os_error().raw_os_error() == Some(libc::EWOULDBLOCK)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_agent_without_a_held_lock() {
        let dir = tempfile::tempdir().unwrap();
        assert!(Running::find(dir.path()).unwrap().is_none());
        std::fs::write(dir.path().join("agent.lock"), "").unwrap();
        std::fs::write(dir.path().join(PID_FILE), "1\n").unwrap();
        assert!(
            Running::find(dir.path()).unwrap().is_none(),
            "the lock is free"
        );
    }

    #[tokio::test]
    async fn finds_watches_and_stops_the_lock_holder() {
        let dir = tempfile::tempdir().unwrap();
        let lock = dir.path().join("agent.lock");
        std::fs::write(&lock, "").unwrap();
        // A stand-in agent: takes the lock on its fd 9 (flock(1)), then becomes `sleep 60`
        // (the same pid, still holding it).
        let mut child = std::process::Command::new("sh")
            .arg("-c")
            .arg("exec 9>\"$0\"; flock 9; exec sleep 60")
            .arg(&lock)
            .env("PAAS_NODE_TOKEN", "t")
            .spawn()
            .expect("sh and flock(1)");
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while !lock_is_held(&lock) {
            assert!(
                std::time::Instant::now() < deadline,
                "flock never took the lock"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        std::fs::write(dir.path().join(PID_FILE), format!("{}\n", child.id())).unwrap();
        let found = Running::find(dir.path())
            .unwrap()
            .expect("the holder is found");
        assert_eq!(found.pid, child.id() as i32);
        let sleep = PathBuf::from("/usr/bin/sleep");
        let args = vec![OsString::from("60")];
        assert_eq!(found.verdict(&sleep, &args, "t"), Verdict::Adopt);
        assert!(matches!(
            found.verdict(&sleep, &args, "other"),
            Verdict::Replace(why) if why.contains("token")
        ));
        assert!(matches!(
            found.verdict(&sleep, &[], "t"),
            Verdict::Replace(why) if why.contains("flags")
        ));
        assert!(matches!(
            found.verdict(&sleep, &[OsString::from("61")], "t"),
            Verdict::Replace(why) if why.contains("flags")
        ));
        assert!(matches!(
            found.verdict(Path::new("/usr/bin/true"), &args, "t"),
            Verdict::Replace(why) if why.contains("binary")
        ));
        found.stop(Duration::from_secs(5)).await;
        // Reaped by us (its parent); the pidfd saw it exit before that.
        let status = child.wait().unwrap();
        assert!(!status.success());
        assert!(!lock_is_held(&lock));
    }
}
