//! Garbage collection of the registry: mark and sweep over the files.
//!
//! Roots are the manifests the caller keeps (the images of the releases it keeps), every
//! manifest of a `stacks/…` repository, and every manifest linked less than `grace` ago
//! (a push in progress, or an image pushed to be deployed soon). Everything a root
//! references is marked (an index's child manifests, then each manifest's config and
//! layers). The sweep then removes manifest links (and the tags pointing at them) that are
//! not roots, and every blob that is not marked and was written more than `grace` ago, so
//! a blob uploaded for a manifest that is not pushed yet survives. Uploads in progress
//! (`uploads/`) are never touched.
//!
//! Synchronous (walks the disk): run it on a blocking thread.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// What a collection did (or, with `dry_run`, would do).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct GcReport {
    pub manifests_removed: u64,
    pub tags_removed: u64,
    pub blobs_removed: u64,
    pub bytes_freed: u64,
    pub blobs_kept: u64,
}

/// Options of one collection.
#[derive(Debug, Clone)]
pub struct GcOptions {
    /// Manifest digests (`sha256:…`) to keep wherever they are linked.
    pub keep: HashSet<String>,
    /// Files younger than this are kept.
    pub grace: Duration,
    pub dry_run: bool,
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> super::Error {
    super::store::io_err(what)
}

fn younger_than(path: &Path, grace: Duration) -> bool {
    std::fs::metadata(path)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|t| SystemTime::now().duration_since(t).ok())
        .is_none_or(|age| age < grace)
}

/// Every repository directory (one with `_manifests` or `tags`) under `repositories/`,
/// with its name.
fn repositories(root: &Path) -> super::Result<Vec<(String, PathBuf)>> {
    let mut out = Vec::new();
    let mut stack = vec![(String::new(), root.join("repositories"))];
    while let Some((name, dir)) = stack.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(io(format!("listing {}", dir.display()))(e)),
        };
        let mut is_repo = false;
        for entry in entries.flatten() {
            let file = entry.file_name().to_string_lossy().into_owned();
            if file == "_manifests" || file == "tags" {
                is_repo = true;
            } else if entry.file_type().is_ok_and(|t| t.is_dir()) {
                let child = if name.is_empty() {
                    file
                } else {
                    format!("{name}/{file}")
                };
                stack.push((child, entry.path()));
            }
        }
        if is_repo {
            out.push((name, dir));
        }
    }
    Ok(out)
}

/// The `sha256:…` digests a manifest or index references: (child manifests, blobs).
fn references(bytes: &[u8]) -> (Vec<String>, Vec<String>) {
    let Ok(doc) = serde_json::from_slice::<serde_json::Value>(bytes) else {
        return (Vec::new(), Vec::new());
    };
    let digest = |v: &serde_json::Value| v.get("digest").and_then(|d| d.as_str()).map(String::from);
    let children = doc
        .get("manifests")
        .and_then(|m| m.as_array())
        .map(|a| a.iter().filter_map(digest).collect())
        .unwrap_or_default();
    let mut blobs: Vec<String> = doc.get("config").and_then(digest).into_iter().collect();
    if let Some(layers) = doc.get("layers").and_then(|l| l.as_array()) {
        blobs.extend(layers.iter().filter_map(digest));
    }
    (children, blobs)
}

impl super::Registry {
    /// Runs one collection; see the module documentation.
    pub fn gc(&self, opts: &GcOptions) -> super::Result<GcReport> {
        let mut report = GcReport::default();
        let repos = repositories(self.root())?;
        // 1. Roots, and the manifest links that are not roots.
        let mut roots: HashSet<String> = HashSet::new();
        let mut doomed: Vec<(PathBuf, String)> = Vec::new();
        for (name, dir) in &repos {
            let links = dir.join("_manifests/sha256");
            let Ok(entries) = std::fs::read_dir(&links) else {
                continue;
            };
            for entry in entries.flatten() {
                let digest = format!("sha256:{}", entry.file_name().to_string_lossy());
                if name.starts_with("stacks/")
                    || name.starts_with("services/")
                    || opts.keep.contains(&digest)
                    || younger_than(&entry.path(), opts.grace)
                {
                    roots.insert(digest);
                } else {
                    doomed.push((dir.clone(), digest));
                }
            }
        }
        // 2. Mark.
        let mut marked: HashSet<String> = HashSet::new();
        let mut todo: Vec<String> = roots.iter().cloned().collect();
        while let Some(digest) = todo.pop() {
            if !marked.insert(digest.clone()) {
                continue;
            }
            let Ok(path) = self.blob_file(&digest) else {
                continue;
            };
            let Ok(bytes) = std::fs::read(&path) else {
                continue;
            };
            let (children, blobs) = references(&bytes);
            todo.extend(children);
            marked.extend(blobs);
        }
        // 3. Sweep manifest links (and their tags) that are neither roots nor children of one.
        for (dir, digest) in doomed {
            if marked.contains(&digest) {
                continue;
            }
            let hex = digest.trim_start_matches("sha256:");
            if let Ok(tags) = std::fs::read_dir(dir.join("tags")) {
                for tag in tags.flatten() {
                    let target = std::fs::read_to_string(tag.path()).unwrap_or_default();
                    if target.trim() == digest {
                        report.tags_removed += 1;
                        if !opts.dry_run {
                            std::fs::remove_file(tag.path())
                                .map_err(io(format!("removing {}", tag.path().display())))?;
                        }
                    }
                }
            }
            report.manifests_removed += 1;
            if !opts.dry_run {
                let link = dir.join("_manifests/sha256").join(hex);
                std::fs::remove_file(&link).map_err(io(format!("removing {}", link.display())))?;
            }
        }
        // 4. Sweep blobs.
        let blobs = self.blobs_dir();
        let entries =
            std::fs::read_dir(&blobs).map_err(io(format!("listing {}", blobs.display())))?;
        for entry in entries.flatten() {
            let digest = format!("sha256:{}", entry.file_name().to_string_lossy());
            if marked.contains(&digest) || younger_than(&entry.path(), opts.grace) {
                report.blobs_kept += 1;
                continue;
            }
            let size = entry.metadata().map(|m| m.len()).unwrap_or(0);
            if !opts.dry_run {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(e) => return Err(io(format!("removing {}", entry.path().display()))(e)),
                }
            }
            report.blobs_removed += 1;
            report.bytes_freed += size;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Registry;

    fn manifest(config: &str, layers: &[(&str, usize)]) -> Vec<u8> {
        let layers: Vec<serde_json::Value> = layers
            .iter()
            .map(|(d, size)| {
                serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": d, "size": size})
            })
            .collect();
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config, "size": 2},
            "layers": layers,
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn keeps_referenced_and_recent_removes_the_rest() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path().join("r")).unwrap();
        let config = reg.put_blob(b"{}").await.unwrap();
        let base = reg.put_blob(b"stack layer").await.unwrap();
        let app1 = reg.put_blob(b"app layer one").await.unwrap();
        let app2 = reg.put_blob(b"app layer two").await.unwrap();
        let orphan = reg.put_blob(b"an upload nobody used").await.unwrap();
        reg.put_manifest(
            "stacks/tiny",
            Some("latest"),
            &manifest(&config, &[(&base, 11)]),
        )
        .await
        .unwrap();
        let m1 = reg
            .put_manifest(
                "apps/a",
                Some("v1"),
                &manifest(&config, &[(&base, 11), (&app1, 13)]),
            )
            .await
            .unwrap();
        let m2 = reg
            .put_manifest(
                "apps/a",
                Some("v2"),
                &manifest(&config, &[(&base, 11), (&app2, 13)]),
            )
            .await
            .unwrap();
        let keep: HashSet<String> = [m2.clone()].into();

        // Everything is younger than an hour: nothing goes.
        let opts = GcOptions {
            keep: keep.clone(),
            grace: Duration::from_secs(3600),
            dry_run: false,
        };
        let r = reg.gc(&opts).unwrap();
        assert_eq!((r.manifests_removed, r.blobs_removed), (0, 0), "{r:?}");

        // A dry run with no grace reports without removing.
        let opts = GcOptions {
            keep,
            grace: Duration::ZERO,
            dry_run: true,
        };
        let r = reg.gc(&opts).unwrap();
        assert_eq!((r.manifests_removed, r.tags_removed), (1, 1), "{r:?}");
        // m1's manifest blob, app1 and the orphan.
        assert_eq!(r.blobs_removed, 3, "{r:?}");
        assert!(reg.blob_path(&orphan).is_some());

        let r = reg
            .gc(&GcOptions {
                dry_run: false,
                ..opts
            })
            .unwrap();
        assert_eq!((r.manifests_removed, r.blobs_removed), (1, 3), "{r:?}");
        for gone in [&m1, &app1, &orphan] {
            assert!(reg.blob_path(gone).is_none(), "{gone} should be gone");
        }
        for kept in [&m2, &app2, &base, &config] {
            assert!(reg.blob_path(kept).is_some(), "{kept} should be kept");
        }
        assert!(reg.get_manifest("apps/a", "v1").await.is_err());
        assert!(reg.get_manifest("apps/a", "v2").await.is_ok());
        assert!(reg.get_manifest("stacks/tiny", "latest").await.is_ok());
        assert_eq!(reg.list_tags("apps/a").await.unwrap(), ["v2"]);
    }
}
