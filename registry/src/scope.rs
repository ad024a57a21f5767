//! Blobs scoped per repository. Blob files are shared by digest, but
//! `GET`/`HEAD /v2/<repo>/blobs/<digest>` answers only when `<repo>` references the blob:
//! a manifest of the repository names it (or it is one), or it was uploaded or mounted into
//! the repository. So a collaborator of app A, who may read `apps/a`, cannot read app B's
//! layers by digest through `apps/a`; stack layers stay readable through `stacks/…`.
//!
//! ```text
//! root/repositories/<repo>/_layers/sha256/<hex>   empty: <hex> was uploaded/mounted here
//! ```
//!
//! A link is written when an upload into the repository completes and when a mount into it
//! succeeds (a mount needs the blob in its `from` repository). A blob a manifest of the
//! repository names is found by reading the repository's manifests (then linked, so the
//! next read is one `stat`). A manifest pushed over HTTP may only name blobs and child
//! manifests of its own repository.

use std::path::PathBuf;

use super::manifest::{self, ManifestError, Reference};
use super::names::digest_hex;
use super::store::{io_err, write_atomic};
use super::{Registry, Result, KIND_MANIFEST};

impl Registry {
    fn layer_link(&self, repo: &str, hex: &str) -> PathBuf {
        self.repo_dir(repo).join("_layers").join("sha256").join(hex)
    }

    /// Records that `digest` was uploaded or mounted into `repo`.
    pub(crate) async fn link_blob(&self, repo: &str, digest: &str) -> Result<()> {
        let path = self.layer_link(repo, digest_hex(digest)?);
        if tokio::fs::try_exists(&path).await.unwrap_or(false) {
            return Ok(());
        }
        write_atomic(&path, b"").await
    }

    /// True when `repo` references `digest`: linked, one of its manifests, or named by one
    /// of its manifests (config, layer or child manifest).
    pub async fn repo_has_blob(&self, repo: &str, digest: &str) -> Result<bool> {
        let hex = digest_hex(digest)?;
        if tokio::fs::try_exists(self.layer_link(repo, hex))
            .await
            .unwrap_or(false)
            || self.manifest_link(repo, digest).await?.is_some()
        {
            return Ok(true);
        }
        let dir = self.repo_dir(repo).join("_manifests").join("sha256");
        let mut entries = match tokio::fs::read_dir(&dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
            Err(e) => return Err(io_err(format!("listing {}", dir.display()))(e)),
        };
        while let Some(entry) = entries
            .next_entry()
            .await
            .map_err(io_err(format!("listing {}", dir.display())))?
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Ok(bytes) = self
                .read_blob(&format!("sha256:{name}"), KIND_MANIFEST)
                .await
            else {
                continue;
            };
            let Ok(checked) = manifest::check(&bytes, None) else {
                continue;
            };
            let named = checked.references.iter().any(|r| match r {
                Reference::Blob(d) | Reference::Manifest(d, _) => d == digest,
            });
            if named {
                self.link_blob(repo, digest).await?;
                return Ok(true);
            }
        }
        Ok(false)
    }

    /// Refuses a manifest pushed to `repo` that names a blob or child manifest stored in
    /// the registry but not referenced by `repo` (pushing such a manifest would open
    /// another repository's blob to whoever may read `repo`). Blobs missing altogether are
    /// left to the manifest checks, which name them.
    pub(crate) async fn check_manifest_scope(
        &self,
        repo: &str,
        bytes: &[u8],
        content_type: Option<&str>,
    ) -> std::result::Result<(), ManifestError> {
        let Ok(checked) = manifest::check(bytes, content_type) else {
            return Ok(());
        };
        for r in &checked.references {
            let (Reference::Blob(d) | Reference::Manifest(d, _)) = r;
            if self.blob_size(d).await?.is_some() && !self.repo_has_blob(repo, d).await? {
                return Err(ManifestError::BlobUnknown {
                    digest: format!(
                        "{d} in repository {repo} (it is stored for another repository: \
                         push it to {repo}, or mount it from a repository you may read)"
                    ),
                });
            }
        }
        Ok(())
    }
}
