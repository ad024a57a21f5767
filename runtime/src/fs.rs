//! The container's filesystem seen from the host, before the container runs: the overlay
//! mount, and path resolution that never leaves the rootfs.
//!
//! An image may hold symlinks such as `/app -> /etc`; followed on the host, that would
//! make a bind mount or `mkdir` land on the host's `/etc`. [`ContainerFs::resolve`] walks
//! a container path one component at a time, follows symlinks as the container would
//! (absolute targets restart at the container's `/`, `..` stops at `/`) and knows the bind
//! mounts made so far, so paths below a mount destination are looked up in the mount's
//! host source. The result is a symlink-free container path; `rootfs + that path` is what
//! the init mounts onto, and the host path behind it is where the parent creates
//! missing mountpoints, the cwd, and looks for the executable.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use nix::mount::{mount, umount2, MntFlags, MsFlags};

use crate::spec::{is_under, normalize, MAX_MOUNT_DATA};
use crate::{Error, Result};

/// Most symlinks followed while resolving one path (the kernel's limit).
const MAX_SYMLINKS: usize = 40;

/// Where a bind mount comes from, for the init (see [`ContainerFs::bind_source`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum BindSource {
    /// A host path the init binds with `mount(2)`.
    Path(String),
    /// A detached mount tree (its descriptor) the init attaches with `move_mount`.
    Tree(std::os::fd::RawFd),
}

/// The rootfs plus the bind mounts known so far, for resolving container paths.
#[derive(Debug)]
pub(crate) struct ContainerFs {
    rootfs: PathBuf,
    /// (normalized container destination, host source), in mount order.
    mounts: Vec<(String, PathBuf)>,
    /// Host uid and gid given to what is created (the container's root in a user
    /// namespace, so a missing working directory is its own); None = the caller's.
    owner: Option<(u32, u32)>,
    /// Bind sources opened for the init (see [`ContainerFs::bind_source`]).
    source_fds: Vec<std::os::fd::OwnedFd>,
}

impl ContainerFs {
    pub fn new(rootfs: &Path) -> ContainerFs {
        ContainerFs {
            rootfs: rootfs.to_owned(),
            mounts: Vec::new(),
            owner: None,
            source_fds: Vec::new(),
        }
    }

    /// The same, giving what it creates to host `owner` (uid, gid).
    pub fn owned_by(mut self, owner: Option<(u32, u32)>) -> ContainerFs {
        self.owner = owner;
        self
    }

    /// Creates `host` and its missing parents as directories, each given to the owner.
    fn create_dirs(&self, host: &Path) -> io::Result<()> {
        let Some((uid, gid)) = self.owner else {
            return fs::create_dir_all(host);
        };
        let mut missing = Vec::new();
        let mut at = host;
        while fs::symlink_metadata(at).is_err() {
            missing.push(at);
            match at.parent() {
                Some(parent) => at = parent,
                None => break,
            }
        }
        for dir in missing.into_iter().rev() {
            match fs::create_dir(dir) {
                Ok(()) => std::os::unix::fs::lchown(dir, Some(uid), Some(gid))?,
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Records a bind mount of host `source` at the (resolved) container `destination`.
    pub fn add_mount(&mut self, destination: &str, source: &Path) {
        self.mounts
            .push((normalize(destination), source.to_owned()));
    }

    /// The host path behind a symlink-free container path: below the deepest (latest)
    /// mount that covers it, else below the rootfs.
    pub fn host_path(&self, cpath: &str) -> PathBuf {
        let best = self
            .mounts
            .iter()
            .rev()
            .filter(|(dest, _)| is_under(cpath, dest))
            .max_by_key(|(dest, _)| dest.len());
        let (base, rest) = match best {
            Some((dest, source)) => (source.clone(), &cpath[dest.len()..]),
            None => (self.rootfs.clone(), cpath),
        };
        let rest = rest.trim_start_matches('/');
        if rest.is_empty() {
            base
        } else {
            base.join(rest)
        }
    }

    /// What the init passes to mount(2) for the symlink-free container path `cpath`: the
    /// path relative to the rootfs, which is the init's working directory while it
    /// mounts (so it never walks the host dirs above the rootfs, which a user
    /// namespace's root may not enter).
    pub fn mount_target(&self, cpath: &str) -> PathBuf {
        match cpath.trim_start_matches('/') {
            "" => PathBuf::from("."),
            rel => PathBuf::from(rel),
        }
    }

    /// How the init binds host path `source` (recursively: `recursive`): by its path,
    /// or, with an owner (a new user namespace, whose root may not walk the host dirs
    /// above `source`), as a detached copy of the mount made here (`open_tree`) that
    /// the init attaches (`move_mount`); its descriptor is kept in
    /// [`ContainerFs::take_source_fds`] for the init.
    pub fn bind_source(&mut self, source: &Path, recursive: bool) -> Result<BindSource> {
        if self.owner.is_none() {
            return source
                .to_str()
                .map(|s| BindSource::Path(s.to_owned()))
                .ok_or_else(|| {
                    Error::InvalidSpec(format!("mount source {} is not UTF-8", source.display()))
                });
        }
        let tree = crate::init::above_stdio(crate::idmap::open_tree(source, recursive)?)?;
        let fd = std::os::fd::AsRawFd::as_raw_fd(&tree);
        self.source_fds.push(tree);
        Ok(BindSource::Tree(fd))
    }

    /// The descriptors [`ContainerFs::bind_source`] opened, for the init to keep.
    pub fn take_source_fds(&mut self) -> Vec<std::os::fd::OwnedFd> {
        std::mem::take(&mut self.source_fds)
    }

    /// Resolves symlinks in container path `cpath` the way the container would see them;
    /// components that do not exist yet are kept as they are.
    pub fn resolve(&self, cpath: &str) -> Result<String> {
        let mut todo: Vec<String> = components(cpath).rev().collect();
        let mut done: Vec<String> = Vec::new();
        let mut followed = 0;
        while let Some(part) = todo.pop() {
            if part == ".." {
                done.pop();
                continue;
            }
            let candidate = format!("/{}", join(&done, &part));
            let host = self.host_path(&candidate);
            let is_link = fs::symlink_metadata(&host).is_ok_and(|m| m.file_type().is_symlink());
            if !is_link {
                done.push(part);
                continue;
            }
            followed += 1;
            if followed > MAX_SYMLINKS {
                return Err(Error::InvalidSpec(format!(
                    "too many levels of symbolic links in {cpath:?} inside the rootfs"
                )));
            }
            let target = fs::read_link(&host).map_err(|source| Error::Io {
                what: format!("reading symlink {}", host.display()),
                source,
            })?;
            let target = target.to_str().ok_or_else(|| {
                Error::InvalidSpec(format!("symlink {} is not UTF-8", host.display()))
            })?;
            if target.starts_with('/') {
                done.clear();
            }
            todo.extend(components(target).rev());
        }
        Ok(format!("/{}", done.join("/")))
    }

    /// Resolves `cpath` and creates it as a directory (with parents) if missing.
    pub fn ensure_dir(&self, cpath: &str) -> Result<String> {
        let resolved = self.resolve(cpath)?;
        let host = self.host_path(&resolved);
        match fs::metadata(&host) {
            Ok(m) if m.is_dir() => {}
            Ok(_) => {
                return Err(Error::InvalidSpec(format!(
                    "{cpath:?} exists in the container but is not a directory"
                )))
            }
            Err(_) => self.create_dirs(&host).map_err(|source| Error::Io {
                what: format!("creating {cpath:?} in the container ({})", host.display()),
                source,
            })?,
        }
        Ok(resolved)
    }

    /// Resolves `cpath` and creates it as an empty file (parents as directories) if
    /// nothing is there.
    pub fn ensure_file(&self, cpath: &str) -> Result<String> {
        let resolved = self.resolve(cpath)?;
        let host = self.host_path(&resolved);
        if fs::symlink_metadata(&host).is_err() {
            let made = match host.parent() {
                Some(parent) => self.create_dirs(parent),
                None => Ok(()),
            }
            .and_then(|()| {
                fs::OpenOptions::new()
                    .write(true)
                    .create_new(true)
                    .open(&host)
                    .map(drop)
            })
            .and_then(|()| match self.owner {
                Some((uid, gid)) => std::os::unix::fs::lchown(&host, Some(uid), Some(gid)),
                None => Ok(()),
            });
            match made {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
                Err(source) => {
                    return Err(Error::Io {
                        what: format!("creating {cpath:?} in the container ({})", host.display()),
                        source,
                    })
                }
            }
        }
        Ok(resolved)
    }

    /// Whether `cpath` names a regular file with an execute bit (symlinks followed
    /// inside the container).
    pub fn is_executable(&self, cpath: &str) -> Result<bool> {
        let host = self.host_path(&self.resolve(cpath)?);
        Ok(fs::symlink_metadata(host)
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
    }

    /// Whether anything exists at `cpath` (symlinks followed inside the container).
    pub fn exists(&self, cpath: &str) -> Result<bool> {
        let host = self.host_path(&self.resolve(cpath)?);
        Ok(fs::symlink_metadata(host).is_ok())
    }
}

fn components(path: &str) -> impl DoubleEndedIterator<Item = String> + '_ {
    path.split('/')
        .filter(|c| !c.is_empty() && *c != ".")
        .map(str::to_owned)
}

fn join(done: &[String], part: &str) -> String {
    if done.is_empty() {
        part.to_owned()
    } else {
        format!("{}/{part}", done.join("/"))
    }
}

/// The overlayfs option string: `lowerdir=` (top-most first), `upperdir=`, `workdir=`.
pub(crate) fn overlay_options(layers: &[PathBuf], upper: &Path, work: &Path) -> Result<String> {
    let lower: Vec<String> = layers.iter().map(|l| l.display().to_string()).collect();
    let data = format!(
        "lowerdir={},upperdir={},workdir={}",
        lower.join(":"),
        upper.display(),
        work.display()
    );
    if data.len() > MAX_MOUNT_DATA {
        return Err(Error::InvalidSpec(format!(
            "the overlay options for {} layers are {} bytes, over the kernel's {} \
             (use fewer layers or a shorter state dir path)",
            layers.len(),
            data.len(),
            MAX_MOUNT_DATA
        )));
    }
    Ok(data)
}

/// Mounts the overlay at `rootfs` (in the caller's mount namespace).
pub(crate) fn mount_overlay(
    layers: &[PathBuf],
    upper: &Path,
    work: &Path,
    rootfs: &Path,
) -> Result<()> {
    let data = overlay_options(layers, upper, work)?;
    mount(
        Some("overlay"),
        rootfs,
        Some("overlay"),
        MsFlags::empty(),
        Some(data.as_str()),
    )
    .map_err(|source| Error::Sys {
        what: format!("mounting overlayfs at {} ({data})", rootfs.display()),
        source,
    })
}

/// Unmounts everything mounted at `path` (lazily if busy); nothing mounted is fine.
pub(crate) fn unmount_all(path: &Path) -> Result<()> {
    for _ in 0..16 {
        match umount2(path, MntFlags::empty()) {
            Ok(()) => continue,
            Err(nix::Error::EINVAL) | Err(nix::Error::ENOENT) => return Ok(()),
            Err(nix::Error::EBUSY) => match umount2(path, MntFlags::MNT_DETACH) {
                Ok(()) => continue,
                Err(source) => {
                    return Err(Error::Sys {
                        what: format!("unmounting {} (lazily)", path.display()),
                        source,
                    })
                }
            },
            Err(source) => {
                return Err(Error::Sys {
                    what: format!("unmounting {}", path.display()),
                    source,
                })
            }
        }
    }
    Err(Error::Sys {
        what: format!(
            "unmounting {}: still mounted after 16 unmounts",
            path.display()
        ),
        source: nix::Error::EBUSY,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn rootfs() -> (tempfile::TempDir, ContainerFs) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        fs::create_dir_all(root.join("usr/bin")).unwrap();
        fs::create_dir_all(root.join("etc")).unwrap();
        symlink("usr/bin", root.join("bin")).unwrap();
        symlink("/etc", root.join("app")).unwrap();
        symlink("../../../../../etc", root.join("usr/escape")).unwrap();
        symlink("loop", root.join("loop")).unwrap();
        let cfs = ContainerFs::new(&root);
        (dir, cfs)
    }

    #[test]
    fn symlinks_resolve_inside_the_rootfs() {
        let (_dir, cfs) = rootfs();
        assert_eq!(cfs.resolve("/bin/sh").unwrap(), "/usr/bin/sh");
        assert_eq!(cfs.resolve("/app/x").unwrap(), "/etc/x");
        assert_eq!(cfs.resolve("/usr/escape/passwd").unwrap(), "/etc/passwd");
        assert_eq!(cfs.resolve("/../../etc").unwrap(), "/etc");
        assert_eq!(cfs.resolve("/").unwrap(), "/");
        assert_eq!(cfs.resolve("/new/dir").unwrap(), "/new/dir");
        assert!(matches!(cfs.resolve("/loop/x"), Err(Error::InvalidSpec(_))));
    }

    #[test]
    fn ensure_creates_inside_the_rootfs_only() {
        let (dir, cfs) = rootfs();
        let root = dir.path().join("rootfs");
        assert_eq!(cfs.ensure_dir("/app/sub").unwrap(), "/etc/sub");
        assert!(root.join("etc/sub").is_dir());
        assert_eq!(cfs.ensure_file("/usr/escape/hosts").unwrap(), "/etc/hosts");
        assert!(root.join("etc/hosts").is_file());
        assert_eq!(cfs.ensure_file("/etc/hosts").unwrap(), "/etc/hosts", "kept");
        assert!(matches!(
            cfs.ensure_dir("/etc/hosts"),
            Err(Error::InvalidSpec(_))
        ));
    }

    #[test]
    fn what_is_created_goes_to_the_owner() {
        use std::os::unix::fs::MetadataExt;
        if !nix::unistd::geteuid().is_root() {
            return; // chown needs root; the root tests cover the rest
        }
        let (dir, cfs) = rootfs();
        let cfs = cfs.owned_by(Some((4242, 4343)));
        let root = dir.path().join("rootfs");
        cfs.ensure_dir("/work/a/b").unwrap();
        cfs.ensure_file("/etc/new/file").unwrap();
        for made in ["work", "work/a", "work/a/b", "etc/new", "etc/new/file"] {
            let m = fs::metadata(root.join(made)).unwrap();
            assert_eq!((m.uid(), m.gid()), (4242, 4343), "{made}");
        }
        assert_eq!(
            fs::metadata(root.join("etc")).unwrap().uid(),
            0,
            "existing: kept"
        );
    }

    #[test]
    fn paths_below_a_mount_use_its_source() {
        let (dir, mut cfs) = rootfs();
        let src = dir.path().join("src");
        fs::create_dir_all(src.join("bin")).unwrap();
        symlink("/usr/bin", src.join("link")).unwrap();
        let exe = src.join("bin/run");
        fs::write(&exe, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        cfs.add_mount("/data/", &src);
        assert_eq!(cfs.host_path("/data"), src);
        assert_eq!(cfs.host_path("/data/bin/run"), exe);
        assert_eq!(
            cfs.host_path("/database"),
            dir.path().join("rootfs/database")
        );
        assert!(cfs.is_executable("/data/bin/run").unwrap());
        assert!(!cfs.is_executable("/data/bin").unwrap());
        assert_eq!(cfs.resolve("/data/link/x").unwrap(), "/usr/bin/x");
        assert_eq!(cfs.ensure_dir("/data/new").unwrap(), "/data/new");
        assert!(src.join("new").is_dir());
        assert_eq!(cfs.mount_target("/data/new"), PathBuf::from("data/new"));
        assert_eq!(cfs.mount_target("/"), PathBuf::from("."));
    }

    #[test]
    fn overlay_options_order_and_limit() {
        let layers = vec![PathBuf::from("/l/top"), PathBuf::from("/l/base")];
        let data = overlay_options(&layers, Path::new("/s/u"), Path::new("/s/w")).unwrap();
        assert_eq!(data, "lowerdir=/l/top:/l/base,upperdir=/s/u,workdir=/s/w");
        let many = vec![PathBuf::from(format!("/{}", "x".repeat(200))); 30];
        assert!(matches!(
            overlay_options(&many, Path::new("/u"), Path::new("/w")),
            Err(Error::InvalidSpec(_))
        ));
    }
}
