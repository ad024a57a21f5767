//! `paas-controller gc`: removes registry manifests no kept release references and blobs
//! no kept manifest references (see [`crate::registry::gc`]). Kept: per app the newest
//! `keep` releases and the current one, every `stacks/…` image, and anything written
//! less than `grace` ago. Run it while the controller is stopped, or at a quiet time: a
//! push that completes during the sweep and reuses an old, unreferenced blob can lose it.

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use crate::registry::gc::{GcOptions, GcReport};
use crate::registry::Registry;
use crate::store::Store;

/// Releases kept per app unless told otherwise.
pub const DEFAULT_KEEP: usize = 10;
/// Files younger than this are never collected unless told otherwise.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(3600);

/// Why a collection failed.
#[derive(Debug, thiserror::Error)]
pub enum GcError {
    #[error("{0}")]
    Store(#[from] crate::store::StoreError),
    #[error("{0}")]
    Registry(#[from] crate::registry::Error),
    #[error("the collection task failed: {0}")]
    Task(String),
}

/// The manifest digests of the releases to keep: per app the newest `keep` and the current.
pub async fn kept_manifests(store: &Store, keep: usize) -> Result<HashSet<String>, GcError> {
    let mut out = HashSet::new();
    for app in store.list_apps().await? {
        for (i, r) in store.list_releases(&app.name).await?.iter().enumerate() {
            if i < keep || Some(r.version) == app.current_release {
                if let Some((_, digest)) = r.image.split_once('@') {
                    out.insert(digest.to_string());
                }
            }
        }
    }
    Ok(out)
}

/// One collection over a store and a registry.
pub async fn collect(
    store: &Store,
    registry: &Registry,
    keep: usize,
    grace: Duration,
    dry_run: bool,
) -> Result<GcReport, GcError> {
    let opts = GcOptions {
        keep: kept_manifests(store, keep).await?,
        grace,
        dry_run,
    };
    let registry = registry.clone();
    tokio::task::spawn_blocking(move || registry.gc(&opts))
        .await
        .map_err(|e| GcError::Task(e.to_string()))?
        .map_err(GcError::from)
}

/// The `gc` subcommand: opens `DATA/paas.db` and `DATA/registry`, collects, prints a line.
pub async fn run(
    data_dir: &Path,
    keep: usize,
    grace: Duration,
    dry_run: bool,
) -> Result<String, GcError> {
    let store = Store::open(&data_dir.join("paas.db")).await?;
    let registry = Registry::open(data_dir.join("registry"))?;
    let r = collect(&store, &registry, keep, grace, dry_run).await?;
    Ok(format!(
        "gc{}: removed {} manifests, {} tags, {} blobs ({} bytes); kept {} blobs",
        if dry_run { " (dry run)" } else { "" },
        r.manifests_removed,
        r.tags_removed,
        r.blobs_removed,
        r.bytes_freed,
        r.blobs_kept
    ))
}
