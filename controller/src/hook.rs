//! `paas-controller hook`: the `pre-receive` hook of every app repository.
//!
//! git runs it with one `old new ref` line per pushed ref on stdin, in the bare repository,
//! with receive-pack's quarantine environment (so the pushed objects are visible). It
//! refuses anything but `refs/heads/main` or `refs/heads/master` and deletions, then POSTs
//! `git archive --format=tar <new>` (streamed) to `PAAS_HOOK_URL` and prints the response
//! line by line as it arrives (git relays it to the pusher as `remote:` lines). The last
//! line, `paas-result: ok|failed`, is not printed; it decides the exit code (0 accepts the
//! push, 1 rejects it).
//!
//! Two bounds: the archive is cut after `PAAS_MAX_SOURCE_BYTES` + 1 bytes (the controller
//! refuses anything over its `--max-source-bytes` and reads no more than that, so a small
//! push of a huge zero blob never streams gigabytes), and the hook dies with its parent
//! (`PR_SET_PDEATHSIG`): when the pusher goes away the controller stops receive-pack, this
//! hook ends, its connection closes and the controller stops the build.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::builder::{
    ENV_MAX_SOURCE_BYTES, HEADER_APP, HEADER_REF, HEADER_REV, HEADER_TOKEN, RESULT_PREFIX,
};

/// Why the hook could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum HookError {
    #[error("{0} is not set: this hook only works when the paas controller runs git receive-pack")]
    MissingEnv(&'static str),
    #[error("reading the pushed refs from stdin: {0}")]
    Stdin(#[source] std::io::Error),
    #[error("running git archive: {0}")]
    Archive(#[source] std::io::Error),
    #[error("git archive of {rev} failed ({status})")]
    ArchiveFailed { rev: String, status: String },
    #[error("sending the source to the paas controller: {0}")]
    Send(#[source] reqwest::Error),
    #[error("reading the build output from the paas controller: {0}")]
    Read(#[source] std::io::Error),
}

/// One pushed ref.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PushedRef {
    pub old: String,
    pub new: String,
    pub name: String,
}

/// What to do with a push.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Build this commit.
    Deploy { rev: String, name: String },
    /// Refuse with this message.
    Refuse(String),
    /// Nothing pushed.
    Nothing,
}

fn is_zero(id: &str) -> bool {
    !id.is_empty() && id.bytes().all(|b| b == b'0')
}

/// An object id as git writes it on the hook's stdin: 40 (SHA-1) or 64 (SHA-256) lower-case
/// hex digits. Anything else never reaches `git archive` (where `--output=…` would be an
/// option, not a commit).
fn is_object_id(id: &str) -> bool {
    (id.len() == 40 || id.len() == 64)
        && id
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses the hook's stdin.
pub fn parse_refs(input: &str) -> Vec<PushedRef> {
    input
        .lines()
        .filter_map(|line| {
            let mut parts = line.split_whitespace();
            Some(PushedRef {
                old: parts.next()?.to_string(),
                new: parts.next()?.to_string(),
                name: parts.next()?.to_string(),
            })
        })
        .collect()
}

/// Decides on the pushed refs: exactly one of main/master, not a deletion.
pub fn decide(refs: &[PushedRef]) -> Decision {
    let mut deploy = None;
    for r in refs {
        if r.name != "refs/heads/main" && r.name != "refs/heads/master" {
            let branch = r.name.strip_prefix("refs/heads/").unwrap_or(&r.name);
            return Decision::Refuse(format!(
                "paas deploys the main branch: push with `git push paas {branch}:main` \
                 (refused: {})",
                r.name
            ));
        }
        if is_zero(&r.new) {
            return Decision::Refuse(format!(
                "paas does not delete branches: {} stays (the app keeps running)",
                r.name
            ));
        }
        if !is_object_id(&r.new) {
            return Decision::Refuse(format!(
                "{:?} is not a commit id: push again with git",
                r.new
            ));
        }
        if deploy.is_some() {
            return Decision::Refuse("push either main or master, not both at once".to_string());
        }
        deploy = Some(Decision::Deploy {
            rev: r.new.clone(),
            name: r.name.clone(),
        });
    }
    deploy.unwrap_or(Decision::Nothing)
}

/// Runs the hook; the exit code accepts (0) or rejects (1) the push.
pub fn run() -> ExitCode {
    match run_inner() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            say(&format!(" !     paas: {e}"));
            ExitCode::FAILURE
        }
    }
}

/// Prints one line and flushes, so git relays it at once.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

fn env(name: &'static str) -> Result<String, HookError> {
    std::env::var(name)
        .ok()
        .filter(|v| !v.is_empty())
        .ok_or(HookError::MissingEnv(name))
}

/// Asks the kernel to send SIGTERM to this process when receive-pack (its parent) ends,
/// so a push whose client went away does not leave the hook, and with it the build,
/// running. Returns false when the parent is already gone.
fn die_with_parent() -> bool {
    // SAFETY: getppid has no preconditions and cannot fail.
    let parent = unsafe { libc::getppid() };
    // SAFETY: PR_SET_PDEATHSIG takes a signal number and touches no memory of ours.
    let set = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM, 0, 0, 0) };
    if set != 0 {
        return true;
    }
    // SAFETY: as above. A changed parent means it died before the prctl took effect.
    unsafe { libc::getppid() == parent }
}

/// A reader that ends (EOF) after `left` bytes, and says so in `cut`.
struct Capped<R> {
    inner: R,
    left: u64,
    cut: Arc<AtomicBool>,
}

impl<R: std::io::Read> std::io::Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        if self.left == 0 {
            self.cut.store(true, Ordering::SeqCst);
            return Ok(0);
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.left -= n as u64;
        Ok(n)
    }
}

fn run_inner() -> Result<bool, HookError> {
    if !die_with_parent() {
        return Ok(false);
    }
    let url = env("PAAS_HOOK_URL")?;
    let token = env("PAAS_HOOK_TOKEN")?;
    let app = env("PAAS_APP")?;
    let mut input = String::new();
    std::io::Read::read_to_string(&mut std::io::stdin(), &mut input).map_err(HookError::Stdin)?;
    let (rev, name) = match decide(&parse_refs(&input)) {
        Decision::Deploy { rev, name } => (rev, name),
        Decision::Refuse(message) => {
            say(&format!(" !     {message}"));
            return Ok(false);
        }
        Decision::Nothing => return Ok(true),
    };

    let mut archive = Command::new("git")
        .args(["archive", "--format=tar", &rev])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(HookError::Archive)?;
    let Some(tar) = archive.stdout.take() else {
        return Err(HookError::Archive(std::io::Error::other("no stdout pipe")));
    };
    // One byte over the limit is enough for the controller to refuse the source.
    let cap = std::env::var(ENV_MAX_SOURCE_BYTES)
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .map_or(u64::MAX, |max| max.saturating_add(1));
    let cut = Arc::new(AtomicBool::new(false));
    let tar = Capped {
        inner: tar,
        left: cap,
        cut: Arc::clone(&cut),
    };
    let client = reqwest::blocking::Client::builder()
        .timeout(None)
        .no_proxy()
        .build()
        .map_err(HookError::Send)?;
    let sent = client
        .post(&url)
        .header(HEADER_APP, &app)
        .header(HEADER_REV, &rev)
        .header(HEADER_REF, &name)
        .header(HEADER_TOKEN, &token)
        .header(
            crate::builder::HEADER_PUSHER,
            std::env::var("PAAS_PUSHER").unwrap_or_default(),
        )
        .header("content-type", "application/x-tar")
        .body(reqwest::blocking::Body::new(tar))
        .send();
    // The controller reads the whole source before it answers 2xx; after any other answer
    // (or when the cap cut the archive) git archive may be blocked on a full pipe, so stop
    // it.
    if cut.load(Ordering::SeqCst) || !sent.as_ref().is_ok_and(|r| r.status().is_success()) {
        let _ = archive.kill();
    }
    let status = archive.wait().map_err(HookError::Archive)?;
    let response = sent.map_err(HookError::Send)?;
    let ok_status = response.status().is_success();
    if ok_status && !status.success() {
        return Err(HookError::ArchiveFailed {
            rev,
            status: status.to_string(),
        });
    }
    let mut result = None;
    for line in BufReader::new(response).lines() {
        let line = line.map_err(HookError::Read)?;
        match line.strip_prefix(RESULT_PREFIX) {
            Some(verdict) => result = Some(verdict.trim() == "ok"),
            None => say(&line),
        }
    }
    match result {
        Some(ok) => Ok(ok && ok_status),
        None => {
            say(" !     the paas controller ended the build output early; the push is refused");
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "1111111111111111111111111111111111111111";
    const B: &str = "2222222222222222222222222222222222222222";
    const Z: &str = "0000000000000000000000000000000000000000";

    fn refs(lines: &str) -> Vec<PushedRef> {
        parse_refs(lines)
    }

    #[test]
    fn the_archive_is_cut_after_the_cap() {
        let cut = Arc::new(AtomicBool::new(false));
        let mut capped = Capped {
            inner: &[7u8; 100][..],
            left: 31,
            cut: Arc::clone(&cut),
        };
        let mut out = Vec::new();
        std::io::Read::read_to_end(&mut capped, &mut out).unwrap();
        assert_eq!(out.len(), 31);
        assert!(cut.load(Ordering::SeqCst));
    }

    #[test]
    fn main_and_master_deploy() {
        assert_eq!(
            decide(&refs(&format!("{Z} {A} refs/heads/main\n"))),
            Decision::Deploy {
                rev: A.into(),
                name: "refs/heads/main".into()
            }
        );
        assert_eq!(
            decide(&refs(&format!("{A} {B} refs/heads/master\n"))),
            Decision::Deploy {
                rev: B.into(),
                name: "refs/heads/master".into()
            }
        );
        assert_eq!(decide(&refs("")), Decision::Nothing);
    }

    #[test]
    fn other_refs_deletes_and_both_are_refused() {
        let Decision::Refuse(m) = decide(&refs(&format!("{Z} {A} refs/heads/feature\n"))) else {
            panic!()
        };
        assert!(m.contains("paas deploys the main branch"), "{m}");
        assert!(m.contains("git push paas feature:main"), "{m}");
        let Decision::Refuse(m) = decide(&refs(&format!("{Z} {A} refs/tags/v1\n"))) else {
            panic!()
        };
        assert!(m.contains("main branch"), "{m}");
        let Decision::Refuse(m) = decide(&refs(&format!("{A} {Z} refs/heads/main\n"))) else {
            panic!()
        };
        assert!(m.contains("does not delete"), "{m}");
        let both = format!("{Z} {A} refs/heads/main\n{Z} {A} refs/heads/master\n");
        assert!(matches!(decide(&refs(&both)), Decision::Refuse(_)));
    }

    #[test]
    fn only_object_ids_reach_git_archive() {
        for rev in [
            "--output=/tmp/x",
            "HEAD~1",
            "main",
            "1111",
            &"AB".repeat(20),
        ] {
            let Decision::Refuse(m) = decide(&refs(&format!("{Z} {rev} refs/heads/main\n"))) else {
                panic!("{rev} deployed")
            };
            assert!(m.contains("not a commit id"), "{m}");
        }
        let sha256 = "ab".repeat(32);
        assert!(matches!(
            decide(&refs(&format!("{Z} {sha256} refs/heads/main\n"))),
            Decision::Deploy { .. }
        ));
    }
}
