//! Files that hold secrets are the controller's alone (issue 14, "Readable secrets"): the
//! data directory is 0700, and the files in it that hold config, keys or credentials are
//! 0600 — the store (`paas.db` and its `-wal`/`-shm`: config vars, certificate keys, agent
//! credentials), `admin-token`, `node-token`, `dashboard-key` and `router-tls/default.key`;
//! backups are written 0600 too.
//!
//! New files and directories are created with their mode (never chmod after), so the
//! umask cannot widen them. At start [`secure_data_dir`] checks what is already there:
//! a mode that lets others in is fixed with a `warn` line saying what it was; a file owned
//! by another user (who could read it whatever its mode) or a mode that cannot be changed
//! stops the start with a message saying what to do.

use std::fs::{DirBuilder, File, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// The data directory's mode.
pub const DIR_MODE: u32 = 0o700;
/// The mode of every file holding a secret.
pub const FILE_MODE: u32 = 0o600;

/// Files directly in the data directory that hold secrets.
pub const SECRET_FILES: &[&str] = &[
    "paas.db",
    "paas.db-wal",
    "paas.db-shm",
    "admin-token",
    "node-token",
    "dashboard-key",
];

/// Directories in the data directory that hold keys, and the keys in them.
pub const SECRET_DIRS: &[(&str, &[&str])] = &[("router-tls", &["default.key"])];

/// Why the data directory could not be made private.
#[derive(Debug, thiserror::Error)]
pub enum FilesError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(
        "{path} is owned by uid {owner}, not by the controller's user (uid {us}): whoever \
         owns it can read the secrets in it; chown -R {us} {path} (or remove it) and start again"
    )]
    NotOurs { path: PathBuf, owner: u32, us: u32 },
    #[error(
        "{path} is mode {mode:o}, which lets other local users read it, and it cannot be \
         changed ({source}): make it {want:o} (chmod {want:o} {path}) and start again"
    )]
    CannotFix {
        path: PathBuf,
        mode: u32,
        want: u32,
        #[source]
        source: std::io::Error,
    },
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> FilesError {
    let path = path.to_path_buf();
    move |source| FilesError::Io { what, path, source }
}

/// Creates `dir` (and missing parents) with mode 0700.
pub fn create_private_dir(dir: &Path) -> Result<(), FilesError> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
        .map_err(io("creating", dir))
}

/// Creates a new file with mode 0600 (an old file of that name is removed first, so the
/// mode is the new file's own).
pub fn create_private_file(path: &Path) -> Result<File, FilesError> {
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(io("replacing", path)(e)),
    }
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
        .map_err(io("creating", path))
}

/// Makes sure `path` (if it exists) is ours and has no bits beyond `want`; fixes the mode
/// with a log line. Returns the old mode when it changed it.
pub fn make_private(path: &Path, want: u32) -> Result<Option<u32>, FilesError> {
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io("checking", path)(e)),
    };
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let us = unsafe { libc::geteuid() };
    if meta.uid() != us {
        return Err(FilesError::NotOurs {
            path: path.to_path_buf(),
            owner: meta.uid(),
            us,
        });
    }
    let mode = meta.mode() & 0o7777;
    if mode & !want == 0 {
        return Ok(None);
    }
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(want)).map_err(|source| {
        FilesError::CannotFix {
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
    Ok(Some(mode))
}

/// Creates the data directory (0700) if needed and checks it and the secrets in it (see
/// the module doc). Returns the paths whose mode it fixed.
pub fn secure_data_dir(data_dir: &Path) -> Result<Vec<PathBuf>, FilesError> {
    create_private_dir(data_dir)?;
    let mut fixed = Vec::new();
    let mut check = |path: PathBuf, want: u32| -> Result<(), FilesError> {
        if make_private(&path, want)?.is_some() {
            fixed.push(path);
        }
        Ok(())
    };
    check(data_dir.to_path_buf(), DIR_MODE)?;
    for name in SECRET_FILES {
        check(data_dir.join(name), FILE_MODE)?;
    }
    for (dir, files) in SECRET_DIRS {
        check(data_dir.join(dir), DIR_MODE)?;
        for name in *files {
            check(data_dir.join(dir).join(name), FILE_MODE)?;
        }
    }
    Ok(fixed)
}

/// Makes an empty SQLite store file with mode 0600 when there is none, before SQLite
/// opens it: SQLite creates the database 0644, and its `-wal` and `-shm` files take the
/// database's mode.
pub fn precreate_store(path: &Path) -> Result<(), FilesError> {
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(FILE_MODE)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(io("creating", path)(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().mode() & 0o7777
    }

    #[test]
    fn open_modes_are_fixed_and_new_files_are_private() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        std::fs::create_dir(&data).unwrap();
        std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755)).unwrap();
        for name in ["admin-token", "paas.db-wal"] {
            std::fs::write(data.join(name), "x").unwrap();
            std::fs::set_permissions(data.join(name), std::fs::Permissions::from_mode(0o644))
                .unwrap();
        }
        std::fs::write(data.join("node-token"), "x").unwrap();
        std::fs::set_permissions(
            data.join("node-token"),
            std::fs::Permissions::from_mode(0o400),
        )
        .unwrap();
        let fixed = secure_data_dir(&data).unwrap();
        assert_eq!(
            fixed,
            [
                data.clone(),
                data.join("paas.db-wal"),
                data.join("admin-token")
            ]
        );
        assert_eq!(mode(&data), 0o700);
        assert_eq!(mode(&data.join("admin-token")), 0o600);
        assert_eq!(mode(&data.join("node-token")), 0o400, "narrower modes stay");
        assert!(secure_data_dir(&data).unwrap().is_empty());

        let file = data.join("backup.tar.gz");
        std::fs::write(&file, "old").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
        drop(create_private_file(&file).unwrap());
        assert_eq!(mode(&file), 0o600);
        precreate_store(&data.join("paas.db")).unwrap();
        assert_eq!(mode(&data.join("paas.db")), 0o600);
        let nested = dir.path().join("a/b");
        create_private_dir(&nested).unwrap();
        assert_eq!(mode(&nested), 0o700);
    }
}
