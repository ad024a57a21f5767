//! The files under the registry root: content-addressed blobs, per-repository manifest links
//! and tags, and uploads in progress.
//!
//! ```text
//! root/blobs/sha256/<hex>                          blob (layers, configs, manifests)
//! root/repositories/<repo>/tags/<tag>              "sha256:<hex>" of a manifest
//! root/repositories/<repo>/_manifests/sha256/<hex> media type of a manifest in <repo>
//! root/uploads/<uuid>                              an upload in progress
//! root/uploads/.tmp-<uuid>                         a blob being written (renamed when done)
//! ```
//!
//! Every blob is written to a temporary file, hashed while it is written, synced and then
//! renamed into place, so a blob file always holds exactly the bytes its name says.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::names::{self, digest_hex};
use super::{Error, Registry, Result, KIND_MANIFEST, KIND_REPOSITORY, KIND_TAG, KIND_UPLOAD};

/// Shorthand for an I/O error with a description of what was being done.
pub(crate) fn io_err(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> Error {
    let what = what.into();
    move |source| Error::Io { what, source }
}

/// `sha256:<hex>` of a finished hasher.
pub(crate) fn digest_of(hasher: Sha256) -> String {
    format!("sha256:{}", hex::encode(hasher.finalize()))
}

/// `sha256:<hex>` of some bytes.
pub(crate) fn sha256_digest(bytes: &[u8]) -> String {
    digest_of(Sha256::new_with_prefix(bytes))
}

/// Writes a file atomically: temp file in the same directory, sync, rename.
pub(crate) async fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    tokio::fs::create_dir_all(dir)
        .await
        .map_err(io_err(format!("creating {}", dir.display())))?;
    let tmp = dir.join(format!(".tmp-{}", names::new_upload_id()));
    let result = async {
        let mut f = tokio::fs::File::create(&tmp)
            .await
            .map_err(io_err(format!("creating {}", tmp.display())))?;
        f.write_all(bytes)
            .await
            .map_err(io_err(format!("writing {}", tmp.display())))?;
        f.sync_all()
            .await
            .map_err(io_err(format!("syncing {}", tmp.display())))?;
        tokio::fs::rename(&tmp, path)
            .await
            .map_err(io_err(format!("renaming into {}", path.display())))
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&tmp).await;
    }
    result
}

/// A blob being written: a temporary file plus the running hash of its bytes. Dropped
/// without [`BlobWriter::commit`], its temporary file is removed.
pub struct BlobWriter {
    file: Option<tokio::fs::File>,
    tmp: PathBuf,
    blobs_dir: PathBuf,
    hasher: Sha256,
    size: u64,
}

impl BlobWriter {
    pub async fn new(registry: &Registry) -> Result<BlobWriter> {
        let tmp = registry
            .uploads_dir()
            .join(format!(".tmp-{}", names::new_upload_id()));
        let file = tokio::fs::File::create(&tmp)
            .await
            .map_err(io_err(format!("creating {}", tmp.display())))?;
        Ok(BlobWriter {
            file: Some(file),
            tmp,
            blobs_dir: registry.blobs_dir(),
            hasher: Sha256::new(),
            size: 0,
        })
    }

    pub async fn write(&mut self, chunk: &[u8]) -> Result<()> {
        let file = self.file.as_mut().expect("BlobWriter used after commit");
        file.write_all(chunk)
            .await
            .map_err(io_err(format!("writing {}", self.tmp.display())))?;
        self.hasher.update(chunk);
        self.size += chunk.len() as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Digest of the bytes written so far.
    pub fn digest(&self) -> String {
        digest_of(self.hasher.clone())
    }

    /// Syncs and renames the temporary file into `blobs/sha256/<hex>`; returns the digest.
    pub async fn commit(mut self) -> Result<String> {
        let digest = self.digest();
        let mut file = self.file.take().expect("BlobWriter committed twice");
        file.flush()
            .await
            .map_err(io_err(format!("writing {}", self.tmp.display())))?;
        file.sync_all()
            .await
            .map_err(io_err(format!("syncing {}", self.tmp.display())))?;
        drop(file);
        let dest = self.blobs_dir.join(&digest["sha256:".len()..]);
        tokio::fs::rename(&self.tmp, &dest)
            .await
            .map_err(io_err(format!("renaming blob into {}", dest.display())))?;
        self.tmp = PathBuf::new();
        Ok(digest)
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if !self.tmp.as_os_str().is_empty() {
            // Best effort: a leftover temp file is only wasted space, and `open` sweeps them.
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

/// Hashes a file from disk (used when an upload's running hash was lost, e.g. after a
/// restart between chunks).
pub(crate) async fn hash_file(path: &Path) -> Result<(String, u64)> {
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(io_err(format!("opening {}", path.display())))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut size = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .await
            .map_err(io_err(format!("reading {}", path.display())))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        size += n as u64;
    }
    Ok((digest_of(hasher), size))
}

impl Registry {
    pub(crate) fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs").join("sha256")
    }

    /// Where uploads in progress live (the host sweeps abandoned ones: [`crate::sweep_uploads`]).
    pub fn uploads_dir(&self) -> PathBuf {
        self.root.join("uploads")
    }

    pub(crate) fn repo_dir(&self, repo: &str) -> PathBuf {
        self.root.join("repositories").join(repo)
    }

    fn tag_path(&self, repo: &str, tag: &str) -> PathBuf {
        self.repo_dir(repo).join("tags").join(tag)
    }

    fn link_path(&self, repo: &str, hex: &str) -> PathBuf {
        self.repo_dir(repo)
            .join("_manifests")
            .join("sha256")
            .join(hex)
    }

    /// Path where a blob with this digest lives (whether or not it exists).
    pub(crate) fn blob_file(&self, digest: &str) -> Result<PathBuf> {
        Ok(self.blobs_dir().join(digest_hex(digest)?))
    }

    /// Size of a stored blob, if present.
    pub(crate) async fn blob_size(&self, digest: &str) -> Result<Option<u64>> {
        let path = self.blob_file(digest)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) => Ok(Some(m.len())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(format!("reading {}", path.display()))(e)),
        }
    }

    /// Reads a whole blob (manifests and configs only; never use this for layers).
    pub async fn read_blob(&self, digest: &str, kind: &'static str) -> Result<Vec<u8>> {
        let path = self.blob_file(digest)?;
        match tokio::fs::read(&path).await {
            Ok(b) => Ok(b),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound {
                kind,
                name: digest.into(),
            }),
            Err(e) => Err(io_err(format!("reading {}", path.display()))(e)),
        }
    }

    /// Copies a file into the store, verifying its digest if one is expected.
    pub async fn put_blob_file(&self, path: &Path, expected: Option<&str>) -> Result<String> {
        if let Some(d) = expected {
            if self.blob_size(d).await?.is_some() {
                return Ok(d.to_string());
            }
        }
        let mut src = tokio::fs::File::open(path)
            .await
            .map_err(io_err(format!("opening {}", path.display())))?;
        let mut w = BlobWriter::new(self).await?;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = src
                .read(&mut buf)
                .await
                .map_err(io_err(format!("reading {}", path.display())))?;
            if n == 0 {
                break;
            }
            w.write(&buf[..n]).await?;
        }
        if let Some(d) = expected {
            let actual = w.digest();
            if actual != d {
                return Err(Error::Invalid {
                    what: format!("blob {}", path.display()),
                    why: format!("its content has digest {actual}, not {d}"),
                });
            }
        }
        w.commit().await
    }

    /// Records that manifest `digest` (media type `media_type`) belongs to `repo`.
    pub(crate) async fn link_manifest(
        &self,
        repo: &str,
        digest: &str,
        media_type: &str,
    ) -> Result<()> {
        let path = self.link_path(repo, digest_hex(digest)?);
        write_atomic(&path, media_type.as_bytes()).await
    }

    /// The media type of manifest `digest` in `repo`, if it was pushed there.
    pub(crate) async fn manifest_link(&self, repo: &str, digest: &str) -> Result<Option<String>> {
        let path = self.link_path(repo, digest_hex(digest)?);
        match tokio::fs::read_to_string(&path).await {
            Ok(s) => Ok(Some(s)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(format!("reading {}", path.display()))(e)),
        }
    }

    pub(crate) async fn set_tag(&self, repo: &str, tag: &str, digest: &str) -> Result<()> {
        names::check_tag(tag)?;
        write_atomic(&self.tag_path(repo, tag), digest.as_bytes()).await
    }

    /// The manifest digest a tag points at.
    pub(crate) async fn resolve_tag(&self, repo: &str, tag: &str) -> Result<String> {
        names::check_tag(tag)?;
        let path = self.tag_path(repo, tag);
        match tokio::fs::read_to_string(&path).await {
            Ok(s) => {
                let d = s.trim().to_string();
                digest_hex(&d)?;
                Ok(d)
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound {
                kind: KIND_TAG,
                name: format!("{repo}:{tag}"),
            }),
            Err(e) => Err(io_err(format!("reading {}", path.display()))(e)),
        }
    }

    /// Sorted tags of a repository (empty if it only has untagged manifests); `NotFound`
    /// if nothing was ever pushed to it.
    pub async fn list_tags(&self, repo: &str) -> Result<Vec<String>> {
        names::check_repo(repo)?;
        let dir = self.repo_dir(repo).join("tags");
        let mut rd = match tokio::fs::read_dir(&dir).await {
            Ok(rd) => rd,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                // A repository with manifests pushed by digest only has no tags yet.
                if self.repo_dir(repo).join("_manifests").is_dir() {
                    return Ok(Vec::new());
                }
                return Err(Error::NotFound {
                    kind: KIND_REPOSITORY,
                    name: repo.into(),
                });
            }
            Err(e) => return Err(io_err(format!("listing {}", dir.display()))(e)),
        };
        let mut tags = Vec::new();
        while let Some(entry) = rd
            .next_entry()
            .await
            .map_err(io_err(format!("listing {}", dir.display())))?
        {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_file = entry
                .file_type()
                .await
                .map(|t| t.is_file())
                .unwrap_or(false);
            if is_file && names::check_tag(&name).is_ok() {
                tags.push(name);
            }
        }
        tags.sort();
        Ok(tags)
    }

    /// Removes a tag (not the manifest it points at).
    pub async fn delete_tag(&self, repo: &str, tag: &str) -> Result<()> {
        names::check_repo(repo)?;
        self.resolve_tag(repo, tag).await?;
        let path = self.tag_path(repo, tag);
        tokio::fs::remove_file(&path)
            .await
            .map_err(io_err(format!("removing {}", path.display())))
    }

    /// Removes a manifest from a repository, with every tag of that repository pointing at
    /// it. The blob itself stays (other repositories may share it).
    pub async fn delete_manifest(&self, repo: &str, digest: &str) -> Result<()> {
        names::check_repo(repo)?;
        let hex = digest_hex(digest)?;
        if self.manifest_link(repo, digest).await?.is_none() {
            return Err(Error::NotFound {
                kind: KIND_MANIFEST,
                name: format!("{repo}@{digest}"),
            });
        }
        if let Ok(tags) = self.list_tags(repo).await {
            for tag in tags {
                if self.resolve_tag(repo, &tag).await.ok().as_deref() == Some(digest) {
                    let path = self.tag_path(repo, &tag);
                    tokio::fs::remove_file(&path)
                        .await
                        .map_err(io_err(format!("removing {}", path.display())))?;
                }
            }
        }
        let path = self.link_path(repo, hex);
        tokio::fs::remove_file(&path)
            .await
            .map_err(io_err(format!("removing {}", path.display())))
    }

    // ---- uploads in progress -----------------------------------------------------------

    pub(crate) fn upload_path(&self, id: &str) -> Result<PathBuf> {
        names::check_upload_id(id)?;
        Ok(self.uploads_dir().join(id))
    }

    /// Starts an upload: an empty file `uploads/<uuid>`.
    pub(crate) async fn upload_create(&self) -> Result<String> {
        let id = names::new_upload_id();
        let path = self.upload_path(&id)?;
        tokio::fs::File::create(&path)
            .await
            .map_err(io_err(format!("creating {}", path.display())))?;
        Ok(id)
    }

    /// Bytes received so far for an upload.
    pub(crate) async fn upload_size(&self, id: &str) -> Result<u64> {
        let path = self.upload_path(id)?;
        match tokio::fs::metadata(&path).await {
            Ok(m) => Ok(m.len()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound {
                kind: KIND_UPLOAD,
                name: id.into(),
            }),
            Err(e) => Err(io_err(format!("reading {}", path.display()))(e)),
        }
    }

    pub(crate) async fn upload_delete(&self, id: &str) -> Result<()> {
        let path = self.upload_path(id)?;
        match tokio::fs::remove_file(&path).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::NotFound {
                kind: KIND_UPLOAD,
                name: id.into(),
            }),
            Err(e) => Err(io_err(format!("removing {}", path.display()))(e)),
        }
    }

    /// Moves a finished upload (already verified against `digest`) into the blob store.
    pub(crate) async fn upload_commit(&self, id: &str, digest: &str) -> Result<()> {
        let path = self.upload_path(id)?;
        let dest = self.blob_file(digest)?;
        let f = tokio::fs::OpenOptions::new()
            .write(true)
            .open(&path)
            .await
            .map_err(io_err(format!("opening {}", path.display())))?;
        f.sync_all()
            .await
            .map_err(io_err(format!("syncing {}", path.display())))?;
        drop(f);
        tokio::fs::rename(&path, &dest)
            .await
            .map_err(io_err(format!("renaming upload into {}", dest.display())))
    }
}
