//! Whole repositories: what an app's destroy, rename and image deploy do to
//! `repositories/<repo>/` (its tags, manifest links and blob links; blob files are shared
//! by digest and left to the garbage collection).
//!
//! * [`Registry::set_aside`] moves a repository into `root/trash/` in one `rename`, so it
//!   is gone for every reader at once; the caller then [`SetAside::discard`]s it (destroy
//!   committed) or [`SetAside::restore`]s it (the destroy failed later). `Registry::open`
//!   empties the trash a crash left.
//! * [`Registry::move_repository`] renames one (an app's rename), also one `rename`.
//! * [`Registry::copy_image`] links a manifest, its child manifests and every blob they
//!   name into another repository (an image deploy from another repository), so the
//!   target never depends on the source repository again.

use std::path::PathBuf;

use super::manifest::{self, Reference};
use super::names;
use super::store::io_err;
use super::{Error, Registry, Result, KIND_MANIFEST};

/// How old a trash entry must be before a start-up removes it (1 hour).
pub const TRASH_AGE_MS: i64 = 3_600_000;

/// A trash entry's name: `<unix ms>-<random>`, so its age is known without its times.
pub fn trash_entry_name() -> String {
    format!("{}-{}", paas_api::clock::unix_ms(), crate::random_hex(8))
}

/// Removes the entries of `dir` made more than `age_ms` ago (by their names; entries with
/// other names are removed too).
pub fn empty_trash_dir(dir: &std::path::Path, age_ms: i64) -> std::io::Result<()> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let now = paas_api::clock::unix_ms();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let made = name
            .split_once('-')
            .and_then(|(ms, _)| ms.parse::<i64>().ok())
            .unwrap_or(0);
        if now - made >= age_ms {
            let path = entry.path();
            if path.is_dir() {
                std::fs::remove_dir_all(&path)?;
            } else {
                std::fs::remove_file(&path)?;
            }
        }
    }
    Ok(())
}

/// A repository moved out of the way by [`Registry::set_aside`].
#[derive(Debug)]
#[must_use = "discard or restore a repository set aside"]
pub struct SetAside {
    repo: String,
    path: PathBuf,
}

impl SetAside {
    /// Deletes it for good.
    pub async fn discard(self) -> Result<()> {
        tokio::fs::remove_dir_all(&self.path)
            .await
            .map_err(io_err(format!("removing {}", self.path.display())))
    }

    /// Puts it back where it was (nothing may have been made there meanwhile).
    pub async fn restore(self, registry: &Registry) -> Result<()> {
        let dest = registry.repo_dir(&self.repo);
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(io_err(format!("creating {}", parent.display())))?;
        }
        tokio::fs::rename(&self.path, &dest)
            .await
            .map_err(io_err(format!("restoring {}", dest.display())))
    }
}

impl Registry {
    pub(crate) fn trash_dir(&self) -> PathBuf {
        self.root().join("trash")
    }

    /// Removes what an interrupted destroy left in the trash more than an hour ago (called
    /// by `open`; younger entries may belong to another controller's destroy under way).
    pub(crate) fn empty_trash(&self) -> Result<()> {
        empty_trash_dir(&self.trash_dir(), TRASH_AGE_MS)
            .map_err(io_err(format!("emptying {}", self.trash_dir().display())))
    }

    /// True when anything was ever stored under `repo` (tags, manifests or blob links).
    pub async fn repository_exists(&self, repo: &str) -> Result<bool> {
        names::check_repo(repo)?;
        Ok(tokio::fs::try_exists(self.repo_dir(repo))
            .await
            .unwrap_or(false))
    }

    /// Moves `repo` (and every repository under it, `repo/…`) out of the registry at once;
    /// `None` when there is no such repository.
    pub async fn set_aside(&self, repo: &str) -> Result<Option<SetAside>> {
        names::check_repo(repo)?;
        let trash = self.trash_dir();
        tokio::fs::create_dir_all(&trash)
            .await
            .map_err(io_err(format!("creating {}", trash.display())))?;
        let path = trash.join(trash_entry_name());
        let dir = self.repo_dir(repo);
        match tokio::fs::rename(&dir, &path).await {
            Ok(()) => Ok(Some(SetAside {
                repo: repo.to_string(),
                path,
            })),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(format!("moving {} aside", dir.display()))(e)),
        }
    }

    /// Deletes `repo` (tags, manifest links, blob links, and repositories under it); false
    /// when there was none. The blobs stay until the garbage collection finds them unused.
    pub async fn delete_repository(&self, repo: &str) -> Result<bool> {
        match self.set_aside(repo).await? {
            Some(aside) => aside.discard().await.map(|()| true),
            None => Ok(false),
        }
    }

    /// Renames repository `from` to `to`, with its tags, manifests and blob links; false
    /// when `from` does not exist. `to` must not exist.
    pub async fn move_repository(&self, from: &str, to: &str) -> Result<bool> {
        names::check_repo(from)?;
        names::check_repo(to)?;
        let (src, dest) = (self.repo_dir(from), self.repo_dir(to));
        if tokio::fs::try_exists(&dest).await.unwrap_or(false) {
            return Err(Error::Invalid {
                what: format!("repository {to}"),
                why: "it exists already".into(),
            });
        }
        if !tokio::fs::try_exists(&src).await.unwrap_or(false) {
            return Ok(false);
        }
        if let Some(parent) = dest.parent() {
            tokio::fs::create_dir_all(parent)
                .await
                .map_err(io_err(format!("creating {}", parent.display())))?;
        }
        tokio::fs::rename(&src, &dest)
            .await
            .map_err(io_err(format!(
                "moving {} to {}",
                src.display(),
                dest.display()
            )))?;
        Ok(true)
    }

    /// Links manifest `digest` of repository `from` into `to` (with its child manifests
    /// and every blob they name), and points `tag` at it when given. Fails with
    /// `NotFound` when `from` has no such manifest.
    pub async fn copy_image(
        &self,
        from: &str,
        digest: &str,
        to: &str,
        tag: Option<&str>,
    ) -> Result<()> {
        names::check_repo(from)?;
        names::check_repo(to)?;
        if let Some(t) = tag {
            names::check_tag(t)?;
        }
        let Some(media_type) = self.manifest_link(from, digest).await? else {
            return Err(Error::NotFound {
                kind: KIND_MANIFEST,
                name: format!("{from}@{digest}"),
            });
        };
        // An index names child manifests, which name blobs: walk them all (bounded: an
        // index of indexes is refused by nothing, so keep a visited list).
        let mut todo = vec![(digest.to_string(), media_type)];
        let mut seen = Vec::new();
        while let Some((d, mt)) = todo.pop() {
            if seen.contains(&d) || seen.len() > 1024 {
                continue;
            }
            seen.push(d.clone());
            let bytes = self.read_blob(&d, KIND_MANIFEST).await?;
            let checked = manifest::check(&bytes, Some(&mt)).map_err(Error::from)?;
            for r in checked.references {
                match r {
                    Reference::Blob(b) => self.link_blob(to, &b).await?,
                    Reference::Manifest(child, child_mt) => todo.push((child, child_mt)),
                }
            }
            self.link_manifest(to, &d, &mt).await?;
        }
        if let Some(t) = tag {
            self.set_tag(to, t, digest).await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn image(reg: &Registry, repo: &str, tag: &str, layer: &[u8]) -> (String, String) {
        let layer_digest = reg.put_blob(layer).await.unwrap();
        let config = br#"{"architecture":"amd64","os":"linux","config":{}}"#;
        let config_digest = reg.put_blob(config).await.unwrap();
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer_digest, "size": layer.len()}]
        })
        .to_string();
        let digest = reg
            .put_manifest(repo, Some(tag), manifest.as_bytes())
            .await
            .unwrap();
        reg.link_blob(repo, &layer_digest).await.unwrap();
        (digest, layer_digest)
    }

    #[tokio::test]
    async fn delete_move_and_copy() {
        let dir = tempfile::tempdir().unwrap();
        let reg = Registry::open(dir.path().to_path_buf()).unwrap();
        let (digest, layer) = image(&reg, "apps/vic", "v1", b"vic's code").await;

        // Copy: the target serves the manifest and the layer, whatever happens to the source.
        reg.copy_image("apps/vic", &digest, "apps/mine", Some("v7"))
            .await
            .unwrap();
        assert!(reg.repo_has_blob("apps/mine", &layer).await.unwrap());
        assert_eq!(reg.list_tags("apps/mine").await.unwrap(), vec!["v7"]);
        let missing = format!("sha256:{}", "0".repeat(64));
        assert!(matches!(
            reg.copy_image("apps/vic", &missing, "apps/mine", None)
                .await,
            Err(Error::NotFound { .. })
        ));

        // Move: the old name has nothing, the new one everything.
        assert!(reg.move_repository("apps/vic", "apps/vic2").await.unwrap());
        assert!(reg.get_manifest("apps/vic", "v1").await.is_err());
        assert!(!reg.repo_has_blob("apps/vic", &layer).await.unwrap());
        assert_eq!(reg.get_manifest("apps/vic2", "v1").await.unwrap().2, digest);
        assert!(reg.repo_has_blob("apps/vic2", &layer).await.unwrap());
        assert!(!reg.move_repository("apps/vic", "apps/x").await.unwrap());
        assert!(reg.move_repository("apps/vic2", "apps/mine").await.is_err());

        // Set aside and restore, then delete: gone, and the copy still serves.
        let aside = reg.set_aside("apps/vic2").await.unwrap().unwrap();
        assert!(!reg.repository_exists("apps/vic2").await.unwrap());
        aside.restore(&reg).await.unwrap();
        assert!(reg.repository_exists("apps/vic2").await.unwrap());
        assert!(reg.delete_repository("apps/vic2").await.unwrap());
        assert!(!reg.delete_repository("apps/vic2").await.unwrap());
        assert!(matches!(
            reg.list_tags("apps/vic2").await,
            Err(Error::NotFound { .. })
        ));
        assert_eq!(reg.get_manifest("apps/mine", "v7").await.unwrap().2, digest);
        assert!(reg.repo_has_blob("apps/mine", &layer).await.unwrap());

        // A crash between set-aside and discard leaves the trash, which a start empties
        // once the entry is an hour old (younger ones may be another controller's).
        let _left = reg.set_aside("apps/mine").await.unwrap().unwrap();
        let reg = Registry::open(dir.path().to_path_buf()).unwrap();
        assert_eq!(std::fs::read_dir(reg.trash_dir()).unwrap().count(), 1);
        empty_trash_dir(&reg.trash_dir(), 0).unwrap();
        assert_eq!(std::fs::read_dir(reg.trash_dir()).unwrap().count(), 0);
    }
}
