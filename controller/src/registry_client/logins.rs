//! Credentials for other registries, stored per paas user (`paas registry:login`): one
//! file per user, `DATA/registry-logins/<hex of the user name>.json`, mode 0600 in a 0700
//! directory, written atomically. Only the controller reads them, for pulls made on that
//! user's behalf; the API lists hosts and user names, never passwords.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

/// A user name and password (or token) for one registry.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<hidden>")
            .finish()
    }
}

impl Credentials {
    /// The `Authorization: Basic …` value.
    pub fn basic(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoginsError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a registry logins file: {source}")]
    Corrupt {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
}

/// The credentials files under `DATA/registry-logins/`.
#[derive(Debug)]
pub struct Logins {
    dir: PathBuf,
    /// Serializes read-modify-write of the files (they are tiny).
    lock: Mutex<()>,
}

type Hosts = BTreeMap<String, Credentials>;

impl Logins {
    pub fn new(data_dir: &Path) -> Logins {
        Logins {
            dir: data_dir.join("registry-logins"),
            lock: Mutex::new(()),
        }
    }

    fn file(&self, user: &str) -> PathBuf {
        self.dir
            .join(format!("{}.json", hex::encode(user.as_bytes())))
    }

    fn read(&self, user: &str) -> Result<Hosts, LoginsError> {
        let path = self.file(user);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|source| LoginsError::Corrupt { path, source }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Hosts::new()),
            Err(source) => Err(LoginsError::Io {
                what: "reading",
                path,
                source,
            }),
        }
    }

    fn write(&self, user: &str, hosts: &Hosts) -> Result<(), LoginsError> {
        let io = |what, path: &Path| {
            let path = path.to_path_buf();
            move |source| LoginsError::Io { what, path, source }
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(io("creating", &self.dir))?;
        let path = self.file(user);
        if hosts.is_empty() {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(io("removing", &path)(e)),
                _ => Ok(()),
            };
        }
        let tmp = path.with_extension("tmp");
        let bytes = serde_json::to_vec(hosts).unwrap_or_default();
        let result = (|| {
            let mut f = std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600)
                .open(&tmp)?;
            f.write_all(&bytes)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(io("writing", &path))
    }

    /// The credentials `user` stored for `host` (normalized: `normalize_host`).
    pub fn get(&self, user: &str, host: &str) -> Result<Option<Credentials>, LoginsError> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        Ok(self.read(user)?.remove(host))
    }

    /// (host, user name) of every login of `user`, by host.
    pub fn list(&self, user: &str) -> Result<Vec<(String, String)>, LoginsError> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        Ok(self
            .read(user)?
            .into_iter()
            .map(|(h, c)| (h, c.username))
            .collect())
    }

    /// Stores (replacing) `user`'s credentials for `host`.
    pub fn set(&self, user: &str, host: &str, creds: Credentials) -> Result<(), LoginsError> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut hosts = self.read(user)?;
        hosts.insert(host.to_string(), creds);
        self.write(user, &hosts)
    }

    /// Forgets `user`'s credentials for `host`; whether there were any.
    pub fn remove(&self, user: &str, host: &str) -> Result<bool, LoginsError> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut hosts = self.read(user)?;
        let had = hosts.remove(host).is_some();
        if had {
            self.write(user, &hosts)?;
        }
        Ok(had)
    }

    /// Forgets every login of `user` (when the user is deleted).
    pub fn remove_user(&self, user: &str) -> Result<(), LoginsError> {
        let _g = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.write(user, &Hosts::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt as _;

    fn creds(u: &str, p: &str) -> Credentials {
        Credentials {
            username: u.into(),
            password: p.into(),
        }
    }

    #[test]
    fn per_user_files_owner_only_and_no_password_in_debug() {
        let dir = tempfile::tempdir().unwrap();
        let l = Logins::new(dir.path());
        l.set("ann", "r.example.com", creds("ann-r", "s3cret"))
            .unwrap();
        l.set("ann", "127.0.0.1:5000", creds("team", "pw")).unwrap();
        assert_eq!(
            l.list("ann").unwrap(),
            vec![
                ("127.0.0.1:5000".to_string(), "team".to_string()),
                ("r.example.com".to_string(), "ann-r".to_string())
            ]
        );
        assert_eq!(l.get("bob", "r.example.com").unwrap(), None);
        assert!(l.list("bob").unwrap().is_empty());
        let file = l.file("ann");
        assert_eq!(
            std::fs::metadata(&file).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(
            std::fs::metadata(&l.dir).unwrap().permissions().mode() & 0o777,
            0o700
        );
        let got = l.get("ann", "r.example.com").unwrap().unwrap();
        assert!(!format!("{got:?}").contains("s3cret"));
        assert_eq!(got.basic(), "Basic YW5uLXI6czNjcmV0");
        assert!(l.remove("ann", "r.example.com").unwrap());
        assert!(!l.remove("ann", "r.example.com").unwrap());
        l.remove_user("ann").unwrap();
        assert!(!file.exists());
        // A name that is not a safe file name stays inside the directory.
        l.set("../x", "h", creds("u", "p")).unwrap();
        assert!(l.file("../x").starts_with(&l.dir));
    }
}
