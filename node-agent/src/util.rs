//! Small helpers shared by the agent's modules: atomic JSON files (0600), the state dir's
//! modes ([`secure_state_dir`]), RFC 3339 timestamps, constant-time comparison and a
//! hashing writer.

use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::de::DeserializeOwned;
use serde::Serialize;
use sha2::{Digest, Sha256};

/// Writes `value` as pretty JSON to `path` atomically: a temp file in the same directory,
/// fsync, then rename, so a crash leaves either the old or the new content.
pub fn write_json_atomic<T: Serialize>(path: &Path, value: &T) -> io::Result<()> {
    let data = serde_json::to_vec_pretty(value).map_err(io::Error::other)?;
    write_atomic(path, &data)
}

/// Writes `data` to `path` atomically (temp file + fsync + rename), mode 0600 (made with
/// that mode, whatever the umask): these files (`spec.json` with the app's config vars,
/// `status.json`, the address book) are the agent's alone.
pub fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other(format!("{} has no file name", path.display())))?;
    let tmp = path.with_file_name(format!(".{}.tmp-{}", name.to_string_lossy(), unique()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(PRIVATE_FILE)
            .open(&tmp)?;
        f.write_all(data)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The mode of the state dir (and every directory made in it for the agent alone).
pub const PRIVATE_DIR: u32 = 0o700;
/// The mode of every file holding a credential, a job's config or the agent's state.
pub const PRIVATE_FILE: u32 = 0o600;

/// Why the state dir could not be made private.
#[derive(Debug, thiserror::Error)]
pub enum ModeError {
    #[error("checking {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "{path} is owned by uid {owner}, not by the agent's user (uid {us}): whoever owns it \
         can read the credentials and job config in it; chown -R {us} {path} (or remove it) \
         and start again"
    )]
    NotOurs { path: PathBuf, owner: u32, us: u32 },
    #[error(
        "{path} is mode {mode:o}, which lets other local users read it, and it cannot be \
         changed ({source}): chmod {want:o} {path} and start again"
    )]
    CannotFix {
        path: PathBuf,
        mode: u32,
        want: u32,
        #[source]
        source: io::Error,
    },
}

/// Creates `dir` (and missing parents) with mode 0700.
pub fn create_private_dir(dir: &Path) -> io::Result<()> {
    use std::os::unix::fs::DirBuilderExt as _;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(PRIVATE_DIR)
        .create(dir)
}

/// Makes sure `path` (if it exists) is ours and has no mode bits beyond `want`, fixing the
/// mode with a `warn` line. True when it changed it.
pub fn make_private(path: &Path, want: u32) -> Result<bool, ModeError> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(source) => {
            return Err(ModeError::Io {
                path: path.to_path_buf(),
                source,
            })
        }
    };
    if meta.file_type().is_symlink() {
        // Never follow a link out of the state dir; the agent makes none of these.
        return Ok(false);
    }
    let us = nix::unistd::geteuid().as_raw();
    if meta.uid() != us {
        return Err(ModeError::NotOurs {
            path: path.to_path_buf(),
            owner: meta.uid(),
            us,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & !want == 0 {
        return Ok(false);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(want)).map_err(|source| {
        ModeError::CannotFix {
            path: path.to_path_buf(),
            mode,
            want,
            source,
        }
    })?;
    tracing::warn!(
        path = %path.display(),
        "was mode {mode:o}, open to other local users; set to {want:o}"
    );
    Ok(true)
}

/// Files of the state dir that hold secrets or state: the credential, the registration
/// mark, the subnet, the address book.
const STATE_FILES: &[&str] = &["api-token", "registered", "subnet", "network.json"];
/// Files of each `jobs/<id>/` (the spec holds the app's config vars).
const JOB_FILES: &[&str] = &["spec.json", "status.json", "capture.json"];

/// Creates the state dir (0700) if needed and checks it, its credential and state files,
/// every job's `spec.json`/`status.json` and every container's `state.json` (which holds
/// the process environment). Open modes are fixed with a log line; a file owned by
/// another user stops the start. Returns the paths it fixed.
pub fn secure_state_dir(dir: &Path) -> Result<Vec<PathBuf>, ModeError> {
    create_private_dir(dir).map_err(|source| ModeError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut fixed = Vec::new();
    let mut check = |path: PathBuf, want: u32| -> Result<(), ModeError> {
        if make_private(&path, want)? {
            fixed.push(path);
        }
        Ok(())
    };
    check(dir.to_path_buf(), PRIVATE_DIR)?;
    for name in STATE_FILES {
        check(dir.join(name), PRIVATE_FILE)?;
    }
    for (sub, files) in [("jobs", JOB_FILES), ("containers", &["state.json"][..])] {
        let Ok(entries) = std::fs::read_dir(dir.join(sub)) else {
            continue;
        };
        for entry in entries.flatten() {
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            for name in files {
                check(entry.path().join(name), PRIVATE_FILE)?;
            }
        }
    }
    Ok(fixed)
}

/// Reads and parses a JSON file.
pub fn read_json<T: DeserializeOwned>(path: &Path) -> io::Result<T> {
    let data = std::fs::read(path)?;
    serde_json::from_slice(&data).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

/// A string unique within this process and unlikely to collide across processes:
/// pid, a counter and the current nanoseconds.
pub fn unique() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!("{}-{n}-{nanos:x}", std::process::id())
}

/// The current time as RFC 3339 UTC with second precision, e.g. `2024-05-01T12:00:00Z`.
pub fn now_rfc3339() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    rfc3339(secs)
}

/// Formats seconds since the Unix epoch as RFC 3339 UTC.
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (Howard Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Compares two byte strings in time that depends only on their lengths, so a token
/// check does not leak how many leading bytes were right.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// `sha256:<hex>` of `data`.
pub fn sha256_digest(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

/// A writer that hashes (sha256) and counts everything written through it.
pub struct HashWriter<W> {
    inner: W,
    hasher: Sha256,
    written: u64,
}

impl<W: Write> HashWriter<W> {
    pub fn new(inner: W) -> Self {
        HashWriter {
            inner,
            hasher: Sha256::new(),
            written: 0,
        }
    }

    /// Returns the inner writer, `sha256:<hex>` of what was written, and its length.
    pub fn finish(self) -> (W, String, u64) {
        let digest = format!("sha256:{}", hex::encode(self.hasher.finalize()));
        (self.inner, digest, self.written)
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.written += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// MemTotal from /proc/meminfo in bytes (0 if it cannot be read).
pub fn mem_total_bytes() -> u64 {
    let Ok(text) = std::fs::read_to_string("/proc/meminfo") else {
        return 0;
    };
    text.lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map(|kb| kb * 1024)
        .unwrap_or(0)
}

/// Whether the process runs as root (euid 0).
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_700_000_000), "2023-11-14T22:13:20Z");
    }

    #[test]
    fn constant_time_eq_compares() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
    }

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn state_files_are_made_private_and_open_ones_fixed() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("state");
        create_private_dir(&dir.join("jobs/j1")).unwrap();
        assert_eq!(mode(&dir), 0o700);
        write_json_atomic(&dir.join("jobs/j1/spec.json"), &"env").unwrap();
        assert_eq!(mode(&dir.join("jobs/j1/spec.json")), 0o600);
        // What an older agent left.
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
        for f in ["api-token", "network.json", "jobs/j1/spec.json"] {
            std::fs::write(dir.join(f), "x").unwrap();
            std::fs::set_permissions(dir.join(f), std::fs::Permissions::from_mode(0o644)).unwrap();
        }
        std::fs::create_dir_all(dir.join("containers/c1")).unwrap();
        std::fs::write(dir.join("containers/c1/state.json"), "{}").unwrap();
        std::fs::set_permissions(
            dir.join("containers/c1/state.json"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let fixed = secure_state_dir(&dir).unwrap();
        assert_eq!(fixed.len(), 5, "{fixed:?}");
        for f in [
            "api-token",
            "network.json",
            "jobs/j1/spec.json",
            "containers/c1/state.json",
        ] {
            assert_eq!(mode(&dir.join(f)), 0o600, "{f}");
        }
        assert_eq!(mode(&dir), 0o700);
        assert!(secure_state_dir(&dir).unwrap().is_empty());
    }

    #[test]
    fn atomic_json_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.json");
        write_json_atomic(&path, &vec![1, 2, 3]).unwrap();
        let back: Vec<i32> = read_json(&path).unwrap();
        assert_eq!(back, vec![1, 2, 3]);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }
}
