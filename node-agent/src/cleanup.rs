//! `paas-agent cleanup`: kills and deletes every container of the state dir, removes the
//! jobs' netns and veths, the nftables table, the bridge and the empty cgroup parents,
//! and forgets the jobs and the address book. Named volumes and the layer cache stay (sized
//! volumes are unmounted; the next job that needs one mounts it again).

use std::path::Path;

use paas_runtime::{Runtime, RuntimeConfig};

use crate::config::CleanupArgs;
use crate::network::{self, NetError};

/// Errors of cleanup.
#[derive(Debug, thiserror::Error)]
pub enum CleanupError {
    #[error("invalid prefix: {0}")]
    Prefix(#[from] crate::config::ConfigError),
    #[error("opening the runtime state in {path}: {source}")]
    Runtime {
        path: String,
        #[source]
        source: paas_runtime::Error,
    },
    #[error("{count} container(s) could not be deleted: {errors}")]
    Containers { count: usize, errors: String },
    #[error("removing network objects: {0}")]
    Network(#[from] NetError),
    #[error("removing {path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Runs the cleanup. Every step is tried even if an earlier one failed; the first
/// failure is returned.
pub async fn run(args: &CleanupArgs) -> Result<(), CleanupError> {
    crate::config::validate_prefix(&args.prefix)?;
    let containers = args.state_dir.join("containers");
    let mut first_error = None;
    if containers.is_dir() {
        let config = RuntimeConfig {
            state_dir: containers.clone(),
            cgroup_parent: args.prefix.clone(),
            cgroup_root: args.cgroup_root.clone(),
        };
        let result = tokio::task::spawn_blocking(move || delete_all(config))
            .await
            .unwrap_or_else(|e| {
                Err(CleanupError::Containers {
                    count: 1,
                    errors: format!("cleanup task panicked: {e}"),
                })
            });
        if let Err(e) = result {
            first_error.get_or_insert(e);
        }
    }
    remove_cgroup_parents(&args.cgroup_root, &args.prefix);
    crate::volumes::unmount_all(&args.state_dir);
    if let Err(e) = network::remove_all(&args.prefix).await {
        first_error.get_or_insert(e.into());
    }
    for sub in ["jobs", "network.json"] {
        let path = args.state_dir.join(sub);
        if let Err(e) = remove(&path) {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn delete_all(config: RuntimeConfig) -> Result<(), CleanupError> {
    let path = config.state_dir.display().to_string();
    let runtime = Runtime::new(config).map_err(|source| CleanupError::Runtime {
        path: path.clone(),
        source,
    })?;
    let list = runtime
        .list()
        .map_err(|source| CleanupError::Runtime { path, source })?;
    let mut errors = Vec::new();
    for container in list {
        let _ = runtime.kill(&container.id, libc::SIGKILL);
        if let Err(e) = runtime.delete(&container.id, true) {
            errors.push(format!("{}: {e}", container.id));
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(CleanupError::Containers {
            count: errors.len(),
            errors: errors.join("; "),
        })
    }
}

/// Removes the (now empty) cgroup parent `<prefix>` from the v2 root and from every v1
/// hierarchy. `rmdir` only removes empty cgroups, so a parent still in use stays.
fn remove_cgroup_parents(root: &Path, prefix: &str) {
    let mut candidates = vec![root.join(prefix)];
    if let Ok(entries) = std::fs::read_dir(root) {
        for entry in entries.flatten() {
            candidates.push(entry.path().join(prefix));
        }
    }
    for path in candidates {
        if path.is_dir() {
            if let Err(e) = std::fs::remove_dir(&path) {
                tracing::warn!(path = %path.display(), "removing cgroup parent: {e}");
            }
        }
    }
}

fn remove(path: &Path) -> Result<(), CleanupError> {
    let result = if path.is_dir() {
        std::fs::remove_dir_all(path)
    } else {
        std::fs::remove_file(path)
    };
    match result {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(CleanupError::Io {
            path: path.display().to_string(),
            source: e,
        }),
        _ => Ok(()),
    }
}
