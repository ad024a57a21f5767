//! Registry garbage collection: removes registry manifests no kept release references and
//! blobs no kept manifest references (see [`crate::registry::gc`]). Kept: per app the
//! newest `keep` releases and the current one, every `stacks/…` image, and anything
//! written less than `grace` ago. It runs on a timer in the leading controller
//! ([`run_periodic`], `--gc-interval-secs`, default hourly) and on demand as
//! `paas-controller gc`. A push that completes during the sweep and reuses an old,
//! unreferenced blob older than `grace` can lose it; the grace (default 1 h) makes that
//! rare.

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
/// How often the leading controller collects unless told otherwise.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(3600);

/// The periodic collection's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Periodic {
    /// Time between two collections; `None`: no periodic collection.
    pub every: Option<Duration>,
    pub keep: usize,
    pub grace: Duration,
}

impl Default for Periodic {
    fn default() -> Periodic {
        Periodic {
            every: Some(DEFAULT_INTERVAL),
            keep: DEFAULT_KEEP,
            grace: DEFAULT_GRACE,
        }
    }
}

/// Collects every `p.every` (first after one interval), forever; logs each result. Spawned
/// by the leading controller and aborted when it stops leading.
pub async fn run_periodic(store: Store, registry: Registry, p: Periodic) {
    let Some(every) = p.every else {
        return;
    };
    loop {
        tokio::time::sleep(every).await;
        match collect(&store, &registry, p.keep, p.grace, false).await {
            Ok(r) => tracing::info!(
                manifests = r.manifests_removed,
                tags = r.tags_removed,
                blobs = r.blobs_removed,
                bytes = r.bytes_freed,
                kept = r.blobs_kept,
                "periodic registry gc"
            ),
            Err(e) => tracing::warn!("periodic registry gc failed (will retry): {e}"),
        }
    }
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_periodic_collection_removes_an_unreferenced_blob_and_keeps_stacks() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("paas.db")).await.unwrap();
        let registry = Registry::open(dir.path().join("registry")).unwrap();
        let orphan = registry.put_blob(b"nobody references me").await.unwrap();
        let config = registry.put_blob(b"{}").await.unwrap();
        let manifest = format!(
            "{{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\
             \"config\":{{\"mediaType\":\"application/vnd.oci.image.config.v1+json\",\
             \"digest\":\"{config}\",\"size\":2}},\"layers\":[]}}"
        );
        registry
            .put_manifest("stacks/tiny", Some("latest"), manifest.as_bytes())
            .await
            .unwrap();
        assert!(registry.blob_path(&orphan).is_some());
        let task = tokio::spawn(run_periodic(
            store,
            registry.clone(),
            Periodic {
                every: Some(Duration::from_millis(200)),
                keep: 1,
                grace: Duration::ZERO,
            },
        ));
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while registry.blob_path(&orphan).is_some() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "the periodic gc never removed the unreferenced blob"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        task.abort();
        assert!(
            registry.blob_path(&config).is_some(),
            "a stack's config was collected"
        );
        assert!(registry.get_manifest("stacks/tiny", "latest").await.is_ok());
    }

    #[tokio::test]
    async fn no_interval_means_no_periodic_collection() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("paas.db")).await.unwrap();
        let registry = Registry::open(dir.path().join("registry")).unwrap();
        let p = Periodic {
            every: None,
            ..Periodic::default()
        };
        // Returns at once instead of looping.
        tokio::time::timeout(Duration::from_secs(5), run_periodic(store, registry, p))
            .await
            .unwrap();
    }
}
