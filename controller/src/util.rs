//! Small helpers shared by the controller's modules: time stamps (RFC 3339 UTC without a
//! date crate), random hex secrets and ids, and token files on disk.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use rand::RngCore;

/// Errors of the token file helpers.
#[derive(Debug, thiserror::Error)]
pub enum UtilError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the token file {path} is empty or not hex: delete it and restart to make a new one")]
    BadToken { path: String },
}

/// Now as RFC 3339 UTC with second precision, e.g. `2024-05-01T12:00:00Z`.
pub fn now_rfc3339() -> String {
    rfc3339_from_ms(unix_ms())
}

/// Unix-time stamps and their RFC 3339 form (microseconds, milliseconds): one copy, in
/// `paas_api::clock`, shared with the router and registry crates; the agents' log records
/// look the same.
pub use paas_api::clock::{rfc3339_from_micros, rfc3339_from_ms, unix_micros, unix_ms};

/// `bytes` random bytes as lower-case hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// The first 7 characters of a git commit id.
pub fn short_rev(rev: &str) -> &str {
    rev.get(..7).unwrap_or(rev)
}

/// Reads the token in `path`, or makes one (32 random bytes as hex, mode 0600) when the file
/// does not exist yet. The same token is reused across restarts.
pub fn load_or_create_token(path: &Path) -> Result<String, UtilError> {
    let io = |what: &'static str| {
        let path = path.display().to_string();
        move |source| UtilError::Io { what, path, source }
    };
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let token = text.trim().to_string();
            if token.is_empty() || !token.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(UtilError::BadToken {
                    path: path.display().to_string(),
                });
            }
            Ok(token)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let token = random_hex(32);
            let tmp = path.with_extension("tmp");
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)
                .map_err(io("creating"))?;
            file.write_all(format!("{token}\n").as_bytes())
                .and_then(|()| file.sync_all())
                .map_err(io("writing"))?;
            std::fs::rename(&tmp, path).map_err(io("renaming into place"))?;
            Ok(token)
        }
        Err(e) => Err(io("reading")(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn formats_known_dates() {
        assert_eq!(rfc3339_from_ms(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339_from_ms(951_782_400_000), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339_from_ms(1_714_564_800_123), "2024-05-01T12:00:00Z");
        assert_eq!(rfc3339_from_ms(4_102_444_799_000), "2099-12-31T23:59:59Z");
        assert_eq!(
            rfc3339_from_micros(1_714_564_800_000_123),
            "2024-05-01T12:00:00.000123Z"
        );
        assert_eq!(rfc3339_from_micros(0), "1970-01-01T00:00:00.000000Z");
    }

    #[test]
    fn token_is_created_once_with_mode_0600() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("admin-token");
        let a = load_or_create_token(&path).unwrap();
        assert_eq!(a.len(), 64);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create_token(&path).unwrap(), a);
        std::fs::write(&path, "not hex!").unwrap();
        assert!(load_or_create_token(&path).is_err());
    }

    #[test]
    fn short_rev_cuts_to_seven() {
        assert_eq!(short_rev("0123456789abcdef"), "0123456");
        assert_eq!(short_rev("abc"), "abc");
    }
}
