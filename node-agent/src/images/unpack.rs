//! Safe unpacking of layer and input tarballs (gzip, zstd or plain, detected by magic
//! bytes, so an OCI `tar+zstd` layer unpacks like a `tar+gzip` one).
//!
//! Every entry's path is taken relative to the destination; entries that would escape it
//! (`..`, absolute paths, a parent that is a symlink) are skipped, as are device nodes,
//! FIFOs and hardlinks whose target is not already inside the destination. Symlinks are
//! written as they are: they resolve inside the container, never on the host, because
//! nothing here follows them. With [`Options::whiteouts`], OCI whiteouts become overlayfs
//! whiteouts: `.wh.name` → a 0/0 character device `name`, `.wh..wh..opq` → the xattr
//! `trusted.overlay.opaque=y` on the directory (both need root); a whiteout that names no
//! file (`.wh.`, `.wh..`, `.wh...`) is skipped. Set-user-ID and set-group-ID bits are
//! stripped from every file (the unpacked layers sit on the host, where a set-ID root
//! binary from a hostile image would be a way up for any local user; apps never need
//! them). An archive whose files add up to more than [`Options::max_bytes`], or that has
//! more than [`Options::max_entries`] entries, is refused with [`UnpackError::TooBig`]
//! before the offending entry is written; the caller removes the partial directory.

use std::ffi::CString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use flate2::read::GzDecoder;
use nix::sys::stat::{makedev, mknod, Mode, SFlag};
use tar::EntryType;

/// Errors that stop an unpack (skipped entries are not errors; see [`Report`]).
#[derive(Debug, thiserror::Error)]
pub enum UnpackError {
    #[error("reading the tarball: {0}")]
    Read(#[source] io::Error),
    #[error("writing {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the archive is too big: {what} exceeds the limit of {limit} (a bigger image layer or \
         input needs a bigger limit on the node agent)"
    )]
    TooBig { what: String, limit: String },
    #[error(
        "making the overlay whiteout {path}: {source} (whiteouts need root; run the agent as \
         root)"
    )]
    Whiteout {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// How to unpack.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Turn OCI whiteout files into overlayfs whiteouts (image layers). When false
    /// (job inputs) `.wh.*` files are ordinary files.
    pub whiteouts: bool,
    /// Most bytes of file content one archive may unpack to (the sum of its regular
    /// files' sizes; a gzip bomb stops here). Default [`DEFAULT_MAX_BYTES`].
    pub max_bytes: u64,
    /// Most entries one archive may have (each is an inode). Default
    /// [`DEFAULT_MAX_ENTRIES`].
    pub max_entries: u64,
}

/// Default [`Options::max_bytes`]: 8 GiB.
pub const DEFAULT_MAX_BYTES: u64 = 8 << 30;
/// Default [`Options::max_entries`]: one million.
pub const DEFAULT_MAX_ENTRIES: u64 = 1_000_000;

impl Default for Options {
    fn default() -> Self {
        Options {
            whiteouts: false,
            max_bytes: DEFAULT_MAX_BYTES,
            max_entries: DEFAULT_MAX_ENTRIES,
        }
    }
}

/// What an unpack did.
#[derive(Debug, Default, Clone)]
pub struct Report {
    /// Entries written (files, dirs, links, whiteouts).
    pub written: u64,
    /// Entries left out, each with the reason.
    pub skipped: Vec<String>,
}

/// The magic bytes of a zstd frame.
const ZSTD_MAGIC: [u8; 4] = [0x28, 0xb5, 0x2f, 0xfd];

/// Opens `path`, detects gzip or zstd by its magic bytes, and unpacks it into `dest`
/// (which must exist).
pub fn unpack_file(path: &Path, dest: &Path, opts: Options) -> Result<Report, UnpackError> {
    let mut file = BufReader::new(File::open(path).map_err(UnpackError::Read)?);
    let (gzip, zstd) = {
        use std::io::BufRead;
        let head = file.fill_buf().map_err(UnpackError::Read)?;
        (
            head.starts_with(&[0x1f, 0x8b]),
            head.starts_with(&ZSTD_MAGIC),
        )
    };
    if gzip {
        unpack(GzDecoder::new(file), dest, opts)
    } else if zstd {
        let decoder = zstd::stream::read::Decoder::with_buffer(file).map_err(UnpackError::Read)?;
        unpack(decoder, dest, opts)
    } else {
        unpack(file, dest, opts)
    }
}

/// Unpacks a plain tar stream into `dest` (which must exist).
pub fn unpack<R: Read>(reader: R, dest: &Path, opts: Options) -> Result<Report, UnpackError> {
    let mut archive = tar::Archive::new(reader);
    let root = nix::unistd::geteuid().is_root();
    let mut report = Report::default();
    // Directory modes are applied at the end so a read-only directory can still be filled.
    let mut dir_modes: Vec<(PathBuf, u32)> = Vec::new();
    let (mut total_bytes, mut entries) = (0u64, 0u64);
    for entry in archive.entries().map_err(UnpackError::Read)? {
        let mut entry = entry.map_err(UnpackError::Read)?;
        entries += 1;
        if entries > opts.max_entries {
            return Err(UnpackError::TooBig {
                what: format!("entry number {entries}"),
                limit: format!("{} entries", opts.max_entries),
            });
        }
        let raw_path = entry.path().map_err(UnpackError::Read)?.into_owned();
        let Some(rel) = clean_relative(&raw_path) else {
            report.skipped.push(format!(
                "{}: path leaves the destination",
                raw_path.display()
            ));
            continue;
        };
        let header = entry.header();
        let kind = header.entry_type();
        let mode = header.mode().unwrap_or(0o644) & 0o7777;
        let owner = (
            header.uid().unwrap_or(0) as u32,
            header.gid().unwrap_or(0) as u32,
        );
        if rel.as_os_str().is_empty() {
            // `./` itself: only its mode matters.
            if kind == EntryType::Directory {
                dir_modes.push((dest.to_path_buf(), mode));
            }
            continue;
        }
        let name = rel.file_name().map(|n| n.as_bytes()).unwrap_or_default();
        if opts.whiteouts && name.starts_with(b".wh.") {
            let Some(full) = make_parents(dest, &rel)? else {
                report.skipped.push(format!(
                    "{}: a parent is a symlink or not a directory",
                    rel.display()
                ));
                continue;
            };
            let parent = full.parent().unwrap_or(dest).to_path_buf();
            let hidden = &name[4..];
            if name == b".wh..wh..opq" {
                set_opaque(&parent)?;
            } else if hidden.is_empty() || hidden == b"." || hidden == b".." {
                // `.wh..` would hide the directory itself, `.wh...` its parent: the
                // removal below would then delete outside the entry's own directory.
                report.skipped.push(format!(
                    "{}: a whiteout must name a file in its directory",
                    rel.display()
                ));
                continue;
            } else {
                let target = parent.join(std::ffi::OsStr::from_bytes(&name[4..]));
                remove_existing(&target)?;
                mknod(&target, SFlag::S_IFCHR, Mode::empty(), makedev(0, 0)).map_err(|e| {
                    UnpackError::Whiteout {
                        path: target.clone(),
                        source: e.into(),
                    }
                })?;
            }
            report.written += 1;
            continue;
        }
        let Some(path) = make_parents(dest, &rel)? else {
            report.skipped.push(format!(
                "{}: a parent is a symlink or not a directory",
                rel.display()
            ));
            continue;
        };
        let write_err = |source: io::Error| UnpackError::Write {
            path: path.clone(),
            source,
        };
        match kind {
            EntryType::Directory => {
                match fs::symlink_metadata(&path) {
                    Ok(m) if m.is_dir() => {}
                    Ok(_) => {
                        remove_existing(&path)?;
                        fs::create_dir(&path).map_err(write_err)?;
                    }
                    Err(_) => fs::create_dir(&path).map_err(write_err)?,
                }
                if root {
                    chown(&path, owner).map_err(write_err)?;
                }
                dir_modes.push((path.clone(), mode));
            }
            EntryType::Regular | EntryType::Continuous => {
                total_bytes = total_bytes.saturating_add(entry.size());
                if total_bytes > opts.max_bytes {
                    return Err(UnpackError::TooBig {
                        what: format!(
                            "{} (the files up to it: {total_bytes} bytes)",
                            rel.display()
                        ),
                        limit: format!("{} bytes", opts.max_bytes),
                    });
                }
                remove_existing(&path)?;
                let mut file = OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .mode(0o600)
                    .custom_flags(libc::O_NOFOLLOW)
                    .open(&path)
                    .map_err(write_err)?;
                io::copy(&mut entry, &mut file).map_err(write_err)?;
                if root {
                    std::os::unix::fs::fchown(&file, Some(owner.0), Some(owner.1))
                        .map_err(write_err)?;
                }
                // After chown; set-ID bits are never kept (see the module doc).
                file.set_permissions(fs::Permissions::from_mode(mode & !0o6000))
                    .map_err(write_err)?;
            }
            EntryType::Symlink => {
                let Some(target) = entry.link_name().map_err(UnpackError::Read)? else {
                    report
                        .skipped
                        .push(format!("{}: symlink without a target", rel.display()));
                    continue;
                };
                remove_existing(&path)?;
                std::os::unix::fs::symlink(&target, &path).map_err(write_err)?;
                if root {
                    chown(&path, owner).map_err(write_err)?;
                }
            }
            EntryType::Link => {
                let target = entry.link_name().map_err(UnpackError::Read)?;
                let Some(target_path) = target
                    .as_deref()
                    .and_then(clean_relative)
                    .filter(|t| !t.as_os_str().is_empty())
                    .and_then(|t| existing_inside(dest, &t))
                else {
                    report.skipped.push(format!(
                        "{}: hardlink target {:?} is not a file already inside the layer",
                        rel.display(),
                        target.as_deref().unwrap_or(Path::new(""))
                    ));
                    continue;
                };
                remove_existing(&path)?;
                fs::hard_link(&target_path, &path).map_err(write_err)?;
            }
            EntryType::Char | EntryType::Block => {
                report
                    .skipped
                    .push(format!("{}: device nodes are not allowed", rel.display()));
                continue;
            }
            other => {
                report.skipped.push(format!(
                    "{}: unsupported entry type {other:?}",
                    rel.display()
                ));
                continue;
            }
        }
        report.written += 1;
    }
    // Deepest first, so a parent's mode is set after its children were written.
    dir_modes.sort_by(|a, b| b.0.cmp(&a.0));
    for (path, mode) in dir_modes {
        // A later entry may have replaced the directory with a symlink: chmod follows
        // links, so only real directories get their mode.
        if !fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir()) {
            continue;
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(|source| {
            UnpackError::Write {
                path: path.clone(),
                source,
            }
        })?;
    }
    Ok(report)
}

/// Turns a tar path into a clean relative path: `./` and empty parts dropped; `None` for
/// absolute paths or any `..`. An empty result means the archive root.
pub fn clean_relative(path: &Path) -> Option<PathBuf> {
    let mut out = PathBuf::new();
    for c in path.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::RootDir | Component::Prefix(_) | Component::ParentDir => return None,
        }
    }
    Some(out)
}

/// Creates the missing parent directories of `dest/rel` and returns `dest/rel`, or `None`
/// if an existing parent is a symlink or not a directory (writing through it could land
/// outside `dest`).
fn make_parents(dest: &Path, rel: &Path) -> Result<Option<PathBuf>, UnpackError> {
    let mut cur = dest.to_path_buf();
    if let Some(parent) = rel.parent() {
        for part in parent.components() {
            cur.push(part);
            match fs::symlink_metadata(&cur) {
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Ok(None),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    fs::create_dir(&cur).map_err(|source| UnpackError::Write {
                        path: cur.clone(),
                        source,
                    })?;
                }
                Err(source) => {
                    return Err(UnpackError::Write {
                        path: cur.clone(),
                        source,
                    })
                }
            }
        }
    }
    Ok(Some(dest.join(rel)))
}

/// `dest/rel` if it exists, is not a directory, and no parent on the way is a symlink.
fn existing_inside(dest: &Path, rel: &Path) -> Option<PathBuf> {
    let mut cur = dest.to_path_buf();
    if let Some(parent) = rel.parent() {
        for part in parent.components() {
            cur.push(part);
            if !fs::symlink_metadata(&cur).ok()?.is_dir() {
                return None;
            }
        }
    }
    let path = dest.join(rel);
    let meta = fs::symlink_metadata(&path).ok()?;
    (!meta.is_dir()).then_some(path)
}

/// Removes whatever is at `path` (never following a symlink); nothing there is fine.
fn remove_existing(path: &Path) -> Result<(), UnpackError> {
    let result = match fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => fs::remove_dir_all(path),
        Ok(_) => fs::remove_file(path),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    };
    result.map_err(|source| UnpackError::Write {
        path: path.to_path_buf(),
        source,
    })
}

fn chown(path: &Path, (uid, gid): (u32, u32)) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
}

/// Marks `dir` opaque for overlayfs: lower layers' entries under it are hidden.
fn set_opaque(dir: &Path) -> Result<(), UnpackError> {
    let err = |source: io::Error| UnpackError::Whiteout {
        path: dir.to_path_buf(),
        source,
    };
    let c_path = CString::new(dir.as_os_str().as_bytes())
        .map_err(|e| err(io::Error::new(io::ErrorKind::InvalidInput, e)))?;
    let name = c"trusted.overlay.opaque";
    let value = b"y";
    // SAFETY: both strings are valid NUL-terminated C strings that outlive the call, and
    // `value` points at `value.len()` readable bytes.
    let rc = unsafe {
        libc::lsetxattr(
            c_path.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    if rc != 0 {
        return Err(err(io::Error::last_os_error()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_relative_rejects_escapes() {
        assert_eq!(
            clean_relative(Path::new("./a/b")),
            Some(PathBuf::from("a/b"))
        );
        assert_eq!(clean_relative(Path::new("./")), Some(PathBuf::new()));
        assert_eq!(clean_relative(Path::new("a/../b")), None);
        assert_eq!(clean_relative(Path::new("/etc/x")), None);
    }
}
