//! Named volumes (`state_dir/volumes/<name>/`, made by the first job that mounts one) and
//! their size limit: `POST /v1/volumes/{name}/size-limit {"max_bytes": N}` measures the
//! volume ([`crate::du`]) and empties it when it holds more than N bytes. The controller
//! asks this after every build for the app's build cache (`--max-cache-bytes`).
//!
//! Emptying renames the directory away first (`volumes/.trash-…`, removed at once and
//! again by the next call if the agent stopped meanwhile), so the next job that mounts the
//! volume finds a fresh empty one even while the old files are being deleted. A volume
//! that a job not yet final mounts is refused (409): its files are in use.
//!
//! Sized volumes (an app's persistent storage, `PUT /v1/volumes/{name} {"size_bytes": N}`)
//! are an ext4 filesystem in a sparse image file, `state_dir/volume-images/<name>.ext4`,
//! loop-mounted at `state_dir/volumes/<name>`: the kernel enforces the size (a job that
//! writes past it gets ENOSPC, nothing is ever emptied), `GET /v1/volumes/{name}` reports
//! size, use and whether it is full, and the mount is made again by the first job that
//! needs it after a reboot or a `paas-agent cleanup` (which unmounts them).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use paas_api::{SizedVolume, VolumeUsage};

use crate::agent::Agent;
use crate::jobs::is_final;

/// Errors of a volume operation; the HTTP layer maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum VolumeError {
    #[error(
        "invalid volume name {0:?}: lowercase letters, digits, `_`, `.` and `-`, starting \
         with a letter or digit"
    )]
    InvalidName(String),
    #[error("volume {name} is mounted by job {job}, which is not finished: try again after it")]
    InUse { name: String, job: String },
    #[error("a volume size of {0} bytes is out of range: from 16 MiB to 16 TiB")]
    BadSize(u64),
    #[error("volume {name} already exists here with another size ({size_bytes} bytes)")]
    Exists { name: String, size_bytes: u64 },
    #[error("this node has no sized volume {0}")]
    NotFound(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

/// The name rule of `JobSpec.volumes[].name`.
pub fn valid_name(name: &str) -> bool {
    let mut bytes = name.bytes();
    bytes
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"_.-".contains(&b))
        && name.len() <= 128
}

/// Measures volume `name` and empties it when it holds more than `max_bytes`.
pub async fn size_limit(
    agent: &Arc<Agent>,
    name: &str,
    max_bytes: u64,
) -> Result<VolumeUsage, VolumeError> {
    if !valid_name(name) {
        return Err(VolumeError::InvalidName(name.to_string()));
    }
    let busy = agent.jobs.all().into_iter().find(|job| {
        !is_final(job.status().state) && job.spec.volumes.iter().any(|v| v.name == name)
    });
    if let Some(job) = busy {
        return Err(VolumeError::InUse {
            name: name.to_string(),
            job: job.spec.id.clone(),
        });
    }
    let root = agent.config.state_dir.join("volumes");
    let name2 = name.to_string();
    tokio::task::spawn_blocking(move || limit_blocking(&root, &name2, max_bytes))
        .await
        .map_err(|e| VolumeError::Io {
            what: format!("measuring volume {name}"),
            source: std::io::Error::other(e),
        })?
}

fn limit_blocking(
    root: &std::path::Path,
    name: &str,
    max: u64,
) -> Result<VolumeUsage, VolumeError> {
    remove_trash(root);
    let dir = root.join(name);
    let bytes = crate::du::disk_usage(&dir).map_err(|source| VolumeError::Io {
        what: format!("measuring {}", dir.display()),
        source,
    })?;
    let emptied = bytes > max;
    if emptied {
        let trash: PathBuf = root.join(format!(".trash-{}", crate::util::unique()));
        std::fs::rename(&dir, &trash).map_err(|source| VolumeError::Io {
            what: format!("moving {} away", dir.display()),
            source,
        })?;
        tracing::info!(
            volume = name,
            bytes,
            max,
            "volume over its size limit: emptied (the next job that mounts it gets an empty one)"
        );
        if let Err(e) = std::fs::remove_dir_all(&trash) {
            tracing::warn!(volume = name, "removing {}: {e}", trash.display());
        }
    }
    Ok(VolumeUsage {
        name: name.to_string(),
        bytes,
        emptied,
    })
}

/// Removes what an earlier emptying left when the agent stopped half-way.
fn remove_trash(root: &std::path::Path) {
    for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
        if entry.file_name().as_encoded_bytes().starts_with(b".trash-") {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// The smallest sized volume (ext4 needs room for its own metadata).
pub const MIN_SIZE_BYTES: u64 = 16 << 20;
/// The largest sized volume (16 TiB; the image file is sparse, only what is written uses
/// the node's disk).
pub const MAX_SIZE_BYTES: u64 = 16 << 40;

/// Where the filesystem images of sized volumes live: `state_dir/volume-images/<name>.ext4`.
fn image_path(state_dir: &Path, name: &str) -> PathBuf {
    state_dir.join("volume-images").join(format!("{name}.ext4"))
}

/// True when `dir` is a mount point (its device differs from its parent's).
fn is_mountpoint(dir: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    let (Ok(me), Some(Ok(parent))) = (std::fs::metadata(dir), dir.parent().map(std::fs::metadata))
    else {
        return false;
    };
    me.dev() != parent.dev()
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> VolumeError {
    move |source| VolumeError::Io { what, source }
}

/// Runs a tool (`mkfs.ext4`, `mount`, `umount`) and turns a failure into an error with its
/// output.
fn run_tool(what: &str, cmd: &mut std::process::Command) -> Result<(), VolumeError> {
    let out = cmd.output().map_err(io(format!(
        "{what} (is e2fsprogs installed? see deploy/install-deps)"
    )))?;
    if out.status.success() {
        return Ok(());
    }
    Err(VolumeError::Io {
        what: what.to_string(),
        source: std::io::Error::other(format!(
            "{}: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        )),
    })
}

/// Mounts sized volume `name` at `state_dir/volumes/<name>` when it has an image and is
/// not mounted yet (after a reboot, or an agent cleanup). A volume without an image (a
/// plain directory, such as the build cache) is left alone.
pub fn ensure_mounted(state_dir: &Path, name: &str) -> Result<(), VolumeError> {
    let image = image_path(state_dir, name);
    if !image.is_file() {
        return Ok(());
    }
    let dir = state_dir.join("volumes").join(name);
    std::fs::create_dir_all(&dir).map_err(io(format!("creating {}", dir.display())))?;
    if is_mountpoint(&dir) {
        return Ok(());
    }
    run_tool(
        &format!("mounting volume {name}"),
        std::process::Command::new("mount")
            .args(["-t", "ext4", "-o", "loop,nodev,nosuid"])
            .arg(&image)
            .arg(&dir),
    )
}

/// Creates sized volume `name` (an ext4 filesystem of `size_bytes` in a sparse image file,
/// loop-mounted at `state_dir/volumes/<name>`): a job writing past its size gets ENOSPC.
/// Creating one that exists with the same size only mounts it; another size is refused.
pub async fn create_sized(
    agent: &Arc<Agent>,
    name: &str,
    size_bytes: u64,
) -> Result<SizedVolume, VolumeError> {
    if !valid_name(name) {
        return Err(VolumeError::InvalidName(name.to_string()));
    }
    if !(MIN_SIZE_BYTES..=MAX_SIZE_BYTES).contains(&size_bytes) {
        return Err(VolumeError::BadSize(size_bytes));
    }
    let state_dir = agent.config.state_dir.clone();
    let name = name.to_string();
    blocking(move || create_blocking(&state_dir, name, size_bytes)).await
}

fn create_blocking(
    state_dir: &Path,
    name: String,
    size_bytes: u64,
) -> Result<SizedVolume, VolumeError> {
    {
        let image = image_path(state_dir, &name);
        if let Ok(meta) = std::fs::metadata(&image) {
            if meta.len() != size_bytes {
                return Err(VolumeError::Exists {
                    name,
                    size_bytes: meta.len(),
                });
            }
            ensure_mounted(state_dir, &name)?;
            return sized_info(state_dir, &name);
        }
        let dir = state_dir.join("volumes").join(&name);
        if std::fs::read_dir(&dir).is_ok_and(|mut d| d.next().is_some()) {
            return Err(VolumeError::Exists {
                name,
                size_bytes: 0,
            });
        }
        let parent = image.parent().unwrap_or(state_dir).to_path_buf();
        std::fs::create_dir_all(&parent).map_err(io(format!("creating {}", parent.display())))?;
        // Made under a temporary name and renamed once formatted: an image that exists is
        // always a whole filesystem.
        let partial = parent.join(format!(".new-{name}-{}", crate::util::unique()));
        let made = (|| {
            let file = std::fs::File::create(&partial)
                .map_err(io(format!("creating {}", partial.display())))?;
            file.set_len(size_bytes)
                .map_err(io(format!("sizing {}", partial.display())))?;
            drop(file);
            run_tool(
                &format!("formatting volume {name}"),
                std::process::Command::new("mkfs.ext4")
                    .args(["-q", "-F", "-m", "0", "-L", "paas-volume"])
                    .arg(&partial),
            )?;
            std::fs::rename(&partial, &image).map_err(io(format!("naming {}", image.display())))
        })();
        if let Err(e) = made {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
        if let Err(e) = ensure_mounted(state_dir, &name) {
            let _ = std::fs::remove_file(&image);
            return Err(e);
        }
        // The app sees only its own files (fsck makes lost+found again when it needs one).
        let _ = std::fs::remove_dir(dir.join("lost+found"));
        tracing::info!(volume = %name, size_bytes, "sized volume created");
        sized_info(state_dir, &name)
    }
}

/// Size and use of sized volume `name` ([`VolumeError::NotFound`] when it has no image).
pub async fn sized(agent: &Arc<Agent>, name: &str) -> Result<SizedVolume, VolumeError> {
    if !valid_name(name) {
        return Err(VolumeError::InvalidName(name.to_string()));
    }
    let state_dir = agent.config.state_dir.clone();
    let name = name.to_string();
    blocking(move || {
        ensure_mounted(&state_dir, &name)?;
        sized_info(&state_dir, &name)
    })
    .await
}

fn sized_info(state_dir: &Path, name: &str) -> Result<SizedVolume, VolumeError> {
    let image = image_path(state_dir, name);
    let size_bytes = match std::fs::metadata(&image) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(VolumeError::NotFound(name.to_string()))
        }
        Err(e) => return Err(io(format!("reading {}", image.display()))(e)),
    };
    let dir = state_dir.join("volumes").join(name);
    let st = nix::sys::statvfs::statvfs(&dir).map_err(|e| VolumeError::Io {
        what: format!("measuring {}", dir.display()),
        source: e.into(),
    })?;
    let unit = st.fragment_size() as u64;
    let total = st.blocks() as u64 * unit;
    let available = st.blocks_available() as u64 * unit;
    let used = total.saturating_sub(st.blocks_free() as u64 * unit);
    Ok(SizedVolume {
        name: name.to_string(),
        size_bytes,
        used_bytes: used,
        available_bytes: available,
        // Less than 1% (at least 1 MiB) left: ext4 already answers ENOSPC there (it keeps
        // room for the metadata of delayed writes).
        full: available < (total / 100).max(1 << 20),
    })
}

/// What sized volume `name` uses now, by `statvfs` of its own filesystem (blocking; cheap);
/// `None` when it is not a sized volume or not mounted (then `statvfs` would measure the
/// filesystem under it instead).
pub fn mounted_use(state_dir: &Path, name: &str) -> Option<u64> {
    if !image_path(state_dir, name).is_file() {
        return None;
    }
    let dir = state_dir.join("volumes").join(name);
    if !is_mountpoint(&dir) {
        return None;
    }
    sized_info(state_dir, name).ok().map(|v| v.used_bytes)
}

/// Unmounts and removes the image of sized volume `name`, if it has one (the caller then
/// removes its directory). A volume still in use by a process is refused.
pub fn remove_image(state_dir: &Path, name: &str) -> Result<bool, VolumeError> {
    let image = image_path(state_dir, name);
    if !image.exists() {
        return Ok(false);
    }
    let dir = state_dir.join("volumes").join(name);
    if is_mountpoint(&dir) {
        nix::mount::umount(&dir).map_err(|e| VolumeError::Io {
            what: format!("unmounting volume {name}"),
            source: e.into(),
        })?;
    }
    std::fs::remove_file(&image).map_err(io(format!("removing {}", image.display())))?;
    Ok(true)
}

/// Unmounts every sized volume of the state dir (`paas-agent cleanup`; the images stay
/// and the next job that mounts one mounts it again).
pub fn unmount_all(state_dir: &Path) {
    let images = state_dir.join("volume-images");
    for entry in std::fs::read_dir(images).into_iter().flatten().flatten() {
        let file = entry.file_name();
        let Some(name) = file.to_str().and_then(|f| f.strip_suffix(".ext4")) else {
            continue;
        };
        let dir = state_dir.join("volumes").join(name);
        if is_mountpoint(&dir) {
            if let Err(e) = nix::mount::umount2(&dir, nix::mount::MntFlags::MNT_DETACH) {
                tracing::warn!(volume = name, "unmounting {}: {e}", dir.display());
            }
        }
    }
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, VolumeError> + Send + 'static,
) -> Result<T, VolumeError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| VolumeError::Io {
            what: "a volume task".into(),
            source: std::io::Error::other(e),
        })?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_job_spec_rule() {
        assert!(valid_name("cache-12"));
        assert!(valid_name("a.b_c-d"));
        for bad in ["", ".trash-x", "../x", "A", "a/b", &"a".repeat(129)] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_volume_over_its_limit_is_emptied_and_one_under_it_kept() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("cache-1/deep")).unwrap();
        std::fs::write(root.join("cache-1/deep/blob"), vec![7u8; 300_000]).unwrap();
        let kept = limit_blocking(root, "cache-1", 10 << 20).unwrap();
        assert!(!kept.emptied && kept.bytes >= 300_000, "{kept:?}");
        assert!(root.join("cache-1/deep/blob").is_file());
        let emptied = limit_blocking(root, "cache-1", 100_000).unwrap();
        assert!(emptied.emptied, "{emptied:?}");
        assert!(!root.join("cache-1").exists());
        let names: Vec<_> = std::fs::read_dir(root).unwrap().flatten().collect();
        assert!(names.is_empty(), "no trash left: {names:?}");
        // A volume no job made yet holds nothing.
        let none = limit_blocking(root, "cache-2", 0).unwrap();
        assert_eq!((none.bytes, none.emptied), (0, false));
    }

    /// Needs root (mount, loop devices): fails when CI=true and it cannot run.
    #[test]
    fn a_sized_volume_gives_enospc_when_full_and_is_mounted_again() {
        if !nix::unistd::geteuid().is_root() {
            assert!(std::env::var("CI").is_err(), "needs root in CI");
            eprintln!("skipped: needs root");
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let state = dir.path();
        let made = create_blocking(state, "app-1-data".into(), MIN_SIZE_BYTES).unwrap();
        assert_eq!(made.size_bytes, MIN_SIZE_BYTES);
        assert!(!made.full, "{made:?}");
        let vol = state.join("volumes/app-1-data");
        assert!(is_mountpoint(&vol));
        assert!(!vol.join("lost+found").exists());
        std::fs::write(vol.join("kept"), b"hello").unwrap();
        // Writing past the size fails with ENOSPC, and the volume says it is full.
        let mut file = std::fs::File::create(vol.join("big")).unwrap();
        let chunk = vec![1u8; 1 << 20];
        let err = (0..64)
            .find_map(|_| std::io::Write::write_all(&mut file, &chunk).err())
            .expect("a 16 MiB volume cannot take 64 MiB");
        assert_eq!(err.raw_os_error(), Some(libc::ENOSPC), "{err}");
        drop(file);
        let full = sized_info(state, "app-1-data").unwrap();
        assert!(full.full && full.used_bytes > 10 << 20, "{full:?}");
        // Another size is refused; the same size is the same volume.
        assert!(matches!(
            create_blocking(state, "app-1-data".into(), MIN_SIZE_BYTES * 2),
            Err(VolumeError::Exists { .. })
        ));
        // Unmounted (cleanup, reboot): mounted again on demand, files kept.
        unmount_all(state);
        assert!(!is_mountpoint(&vol));
        ensure_mounted(state, "app-1-data").unwrap();
        assert_eq!(std::fs::read(vol.join("kept")).unwrap(), b"hello");
        assert!(remove_image(state, "app-1-data").unwrap());
        assert!(!is_mountpoint(&vol));
        assert!(matches!(
            sized_info(state, "app-1-data"),
            Err(VolumeError::NotFound(_))
        ));
    }
}
