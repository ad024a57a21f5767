//! OCI hooks: programs the runtime runs at fixed points of a container's life, each with
//! the container's OCI state JSON on its stdin (config.md "POSIX-platform Hooks").
//!
//! | hook | where it runs | when | a failure |
//! |---|---|---|---|
//! | `prestart` (deprecated), `createRuntime` | the runtime's namespaces | `create`, after the init was cloned (its namespaces exist) and put into its cgroup, before it mounts anything or pivots | fails `create` (the container is removed) |
//! | `createContainer` | the container's mount namespace | `create`, once the init has set the container up, before `create` returns | fails `create` (removed) |
//! | `startContainer` | the container's mount namespace | `start`, before the process is exec'd | fails `start`; the init is killed |
//! | `poststart` | the runtime's namespaces | `start`, after the process was exec'd | a warning on stderr, the next hooks still run |
//! | `poststop` | the runtime's namespaces | `delete`, after everything was removed | a warning on stderr, the next hooks still run |
//!
//! A hook runs with its `args` (`args[0]` is its argv[0], as execve's; empty = the path)
//! and exactly its `env`; `timeout` seconds (if given) after which it is killed and
//! counts as failed. Its stderr goes into the error message.

use std::io::{Read, Write};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

/// Errors of a hook.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{kind} hook {path}: could not run it: {source}")]
    Spawn {
        kind: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{kind} hook {path} failed ({status}){stderr}")]
    Failed {
        kind: &'static str,
        path: PathBuf,
        status: String,
        stderr: String,
    },
    #[error("{kind} hook {path} did not finish within its timeout of {secs} s and was killed")]
    Timeout {
        kind: &'static str,
        path: PathBuf,
        secs: u64,
    },
}

impl From<HookError> for crate::Error {
    fn from(e: HookError) -> crate::Error {
        crate::Error::Start(e.to_string())
    }
}

/// One hook (OCI `hooks.<kind>[]` entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hook {
    /// Absolute path (in the namespace the hook runs in).
    pub path: PathBuf,
    /// argv, `args[0]` included; empty = `[path]`.
    #[serde(default)]
    pub args: Vec<String>,
    /// `KEY=VALUE`, the whole environment.
    #[serde(default)]
    pub env: Vec<String>,
    /// Seconds; None = no limit.
    #[serde(default)]
    pub timeout: Option<u64>,
}

/// The hooks of a container, by kind.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Hooks {
    pub prestart: Vec<Hook>,
    pub create_runtime: Vec<Hook>,
    pub create_container: Vec<Hook>,
    pub start_container: Vec<Hook>,
    pub poststart: Vec<Hook>,
    pub poststop: Vec<Hook>,
}

impl Hooks {
    /// No hook of any kind.
    pub fn is_empty(&self) -> bool {
        self.prestart.is_empty()
            && self.create_runtime.is_empty()
            && self.create_container.is_empty()
            && self.start_container.is_empty()
            && self.poststart.is_empty()
            && self.poststop.is_empty()
    }
}

/// Runs `hooks` one after the other, each with `state` (JSON) on stdin; stops at the
/// first failure. With `mnt_ns` the hooks run in that mount namespace (the container's).
pub(crate) fn run(
    kind: &'static str,
    hooks: &[Hook],
    state: &[u8],
    mnt_ns: Option<&OwnedFd>,
) -> Result<(), HookError> {
    for hook in hooks {
        run_one(kind, hook, state, mnt_ns)?;
    }
    Ok(())
}

/// Runs every hook of `hooks` in the runtime's namespaces; a failing one is a warning
/// on stderr and the rest still run (poststart, poststop: the spec's "log a warning,
/// the remaining hooks and lifecycle continue").
pub(crate) fn run_warn(kind: &'static str, hooks: &[Hook], state: &[u8]) {
    for hook in hooks {
        if let Err(e) = run_one(kind, hook, state, None) {
            eprintln!("paas-runtime: warning: {e}");
        }
    }
}

fn run_one(
    kind: &'static str,
    hook: &Hook,
    state: &[u8],
    mnt_ns: Option<&OwnedFd>,
) -> Result<(), HookError> {
    let mut cmd = Command::new(&hook.path);
    if let Some((argv0, rest)) = hook.args.split_first() {
        cmd.arg0(argv0).args(rest);
    }
    cmd.env_clear()
        .envs(hook.env.iter().filter_map(|e| e.split_once('=')))
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    if let Some(ns) = mnt_ns {
        let fd = ns.as_raw_fd();
        // SAFETY: the closure runs in the forked child before exec and only calls setns
        // (async-signal-safe) on a descriptor that stays open until the spawn returns.
        unsafe {
            cmd.pre_exec(move || {
                if libc::setns(fd, libc::CLONE_NEWNS) != 0 {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().map_err(|source| HookError::Spawn {
        kind,
        path: hook.path.clone(),
        source,
    })?;
    if let Some(mut stdin) = child.stdin.take() {
        // A hook that does not read its stdin may exit first: EPIPE is fine.
        let _ = stdin.write_all(state);
    }
    let mut stderr = child.stderr.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(s) = stderr.as_mut() {
            let _ = s.take(4096).read_to_string(&mut text);
        }
        text
    });
    let deadline = hook
        .timeout
        .map(|s| Instant::now() + Duration::from_secs(s));
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) => {}
            Err(source) => {
                return Err(HookError::Spawn {
                    kind,
                    path: hook.path.clone(),
                    source,
                })
            }
        }
        if deadline.is_some_and(|d| Instant::now() > d) {
            let _ = child.kill();
            let _ = child.wait();
            return Err(HookError::Timeout {
                kind,
                path: hook.path.clone(),
                secs: hook.timeout.unwrap_or(0),
            });
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let text = reader.join().unwrap_or_default();
    if status.success() {
        return Ok(());
    }
    let status = match (status.code(), status.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(s)) => format!("killed by signal {s}"),
        _ => "unknown status".into(),
    };
    let text = text.trim();
    Err(HookError::Failed {
        kind,
        path: hook.path.clone(),
        status,
        stderr: if text.is_empty() {
            String::new()
        } else {
            format!(": {text}")
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hook(script: &str, timeout: Option<u64>) -> Hook {
        Hook {
            path: "/bin/sh".into(),
            args: vec!["sh".into(), "-c".into(), script.into()],
            env: vec!["GREETING=hi".into()],
            timeout,
        }
    }

    #[test]
    fn a_hook_gets_the_state_and_its_env() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let h = hook(
            &format!("cat > {0}; echo \" $GREETING\" >> {0}", out.display()),
            None,
        );
        run("poststart", &[h], br#"{"id":"x"}"#, None).unwrap();
        assert_eq!(
            std::fs::read_to_string(&out).unwrap(),
            "{\"id\":\"x\"} hi\n"
        );
    }

    #[test]
    fn failures_and_timeouts_are_errors() {
        let e = run(
            "prestart",
            &[hook("echo nope >&2; exit 3", None)],
            b"{}",
            None,
        );
        let msg = e.unwrap_err().to_string();
        assert!(msg.contains("exit code 3") && msg.contains("nope"), "{msg}");
        let e = run("prestart", &[hook("exec sleep 5", Some(1))], b"{}", None);
        assert!(
            matches!(e, Err(HookError::Timeout { secs: 1, .. })),
            "{e:?}"
        );
        let missing = Hook {
            path: "/nonexistent/hook".into(),
            args: vec![],
            env: vec![],
            timeout: None,
        };
        assert!(matches!(
            run("poststop", &[missing], b"{}", None),
            Err(HookError::Spawn { .. })
        ));
    }
}
