//! paas-registry: the image store and the OCI distribution API (`/v2/`) of paas.
//!
//! A crate of its own (issue 20) so that nothing but its public API joins it to the rest:
//! it depends on `paas-api` (wire types, clock) and on neither the controller nor the
//! router. What it needs from its host comes in as values the host passes in:
//!
//! * who may use the registry at all: an [`AuthCheck`] (request headers → yes/no);
//! * who may pull or push which repository: a [`RepoCheck`] (headers, source address,
//!   repository, write? → [`RepoAccess`]), the controller's users and collaborators;
//! * the key registry tokens are signed with: a [`token::TokenIssuer`] made from a secret
//!   (the controller's node token), so no token store lives here.
//!
//! The host gets back a [`Registry`] (the blob/manifest store: [`Registry::open`],
//! [`Registry::put_blob`], [`Registry::get_manifest`], [`Registry::import_oci_layout`],
//! [`Registry::append_layer`], garbage collection in [`gc`]) and an axum router of the
//! `/v2/` routes ([`routes`], [`routes_with_access`], [`routes_with_tokens`]), plus
//! [`sweep_uploads`] for abandoned uploads.
//!
//! Submodules: `names` (validation of everything that becomes a path), `store` (the files),
//! `scope` (which blobs each repository may serve), `repos` (whole repositories: delete,
//! move, copy an image between them), `ranges` (byte ranges of blob reads and chunked
//! uploads), `manifest` (media types and manifest checks), `image` (OCI layout import and
//! derived images), `api` (the HTTP routes) and `token` (the Bearer token flow). See
//! docs/registry.md.

mod api;
mod blob_body;
pub mod gc;
mod image;
pub mod manifest;
pub mod names;
pub mod ranges;
mod repos;
mod scope;
mod store;
pub mod token;

pub use api::{sweep_uploads, SWEEP_EVERY, UPLOAD_IDLE};
pub use repos::{empty_trash_dir, trash_entry_name, SetAside, TRASH_AGE_MS};
pub use store::BlobWriter;

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `bytes` random bytes as lower-case hex (trash entry names).
fn random_hex(bytes: usize) -> String {
    use rand::RngCore as _;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    hex::encode(buf)
}

/// Decides whether a request may use the registry (the controller passes its token check).
pub type AuthCheck = Arc<dyn Fn(&http::HeaderMap) -> bool + Send + Sync>;

/// What a [`RepoCheck`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RepoAccess {
    Allowed,
    /// No or bad credentials (401).
    Unauthorized,
    /// Valid credentials without access to this repository (403, with the reason).
    Forbidden(String),
    /// Too many failures from this source: retry after this many seconds (429).
    Limited(u64),
}

/// The per-repository check (used instead of the [`AuthCheck`] when given): request
/// headers, source address, repository (`None` for `/v2/` itself) and whether the request
/// writes.
pub type RepoCheck = Arc<
    dyn Fn(
            http::HeaderMap,
            Option<std::net::IpAddr>,
            Option<String>,
            bool,
        ) -> futures_util::future::BoxFuture<'static, RepoAccess>
        + Send
        + Sync,
>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("no such {kind}: {name}")]
    NotFound { kind: &'static str, name: String },
    #[error("invalid {what}: {why}")]
    Invalid { what: String, why: String },
}

pub type Result<T> = std::result::Result<T, Error>;

/// `Error::NotFound::kind` values, so callers (and the HTTP layer) can tell them apart.
pub const KIND_BLOB: &str = "blob";
pub const KIND_MANIFEST: &str = "manifest";
pub const KIND_TAG: &str = "tag";
pub const KIND_REPOSITORY: &str = "repository";
pub const KIND_UPLOAD: &str = "upload";

/// Config fields a derived image sets on top of its base image's config.
#[derive(Debug, Clone, Default)]
pub struct ConfigPatch {
    /// `KEY=VALUE` entries added to (replacing same-key entries of) the base Env.
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub cmd: Option<Vec<String>>,
}

/// Blobs in `root/blobs/sha256/<hex>`, manifests as blobs too, tags in
/// `root/repositories/<repo>/tags/<tag>` (content: the manifest digest). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Registry {
    root: PathBuf,
    /// Largest blob an upload may grow to (`--max-blob-bytes`).
    max_blob_bytes: u64,
}

/// Default largest blob pushed to the registry: 10 GiB.
pub const DEFAULT_MAX_BLOB_BYTES: u64 = 10 << 30;

impl Registry {
    /// Opens (creating if needed) a store under `root`, and removes temporary files a crash
    /// may have left behind.
    pub fn open(root: PathBuf) -> Result<Registry> {
        let registry = Registry {
            root,
            max_blob_bytes: DEFAULT_MAX_BLOB_BYTES,
        };
        for dir in [
            registry.blobs_dir(),
            registry.uploads_dir(),
            registry.root.join("repositories"),
        ] {
            std::fs::create_dir_all(&dir).map_err(store::io_err(format!(
                "creating registry directory {}",
                dir.display()
            )))?;
        }
        let uploads = registry.uploads_dir();
        let entries = std::fs::read_dir(&uploads)
            .map_err(store::io_err(format!("listing {}", uploads.display())))?;
        for entry in entries.flatten() {
            if entry.file_name().to_string_lossy().starts_with(".tmp-") {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        registry.empty_trash()?;
        Ok(registry)
    }

    /// The same store with a different largest blob an upload may grow to; a push past it
    /// gets 413 and its upload is removed.
    pub fn with_max_blob_bytes(mut self, max: u64) -> Registry {
        self.max_blob_bytes = max;
        self
    }

    /// The largest blob an upload may grow to.
    pub fn max_blob_bytes(&self) -> u64 {
        self.max_blob_bytes
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stores bytes as a blob; returns `sha256:<hex>`.
    pub async fn put_blob(&self, bytes: &[u8]) -> Result<String> {
        let digest = store::sha256_digest(bytes);
        if self.blob_size(&digest).await? == Some(bytes.len() as u64) {
            return Ok(digest);
        }
        let mut w = store::BlobWriter::new(self).await?;
        w.write(bytes).await?;
        w.commit().await
    }

    /// Path of a stored blob, if present.
    pub fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        let path = self.blob_file(digest).ok()?;
        path.is_file().then_some(path)
    }

    /// Stores a manifest under `repo` and, if `tag` is given, points the tag at it. Returns
    /// the manifest digest.
    pub async fn put_manifest(
        &self,
        repo: &str,
        tag: Option<&str>,
        bytes: &[u8],
    ) -> Result<String> {
        let (digest, _) = self.store_manifest(repo, tag, bytes, None).await?;
        Ok(digest)
    }

    /// (manifest bytes, media type, digest) for a tag or digest reference.
    pub async fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<(Vec<u8>, String, String)> {
        names::check_repo(repo)?;
        let digest = if names::is_digest(reference) {
            names::digest_hex(reference)?;
            reference.to_string()
        } else {
            self.resolve_tag(repo, reference).await?
        };
        let not_found = || Error::NotFound {
            kind: KIND_MANIFEST,
            name: format!("{repo}@{digest}"),
        };
        let Some(media_type) = self.manifest_link(repo, &digest).await? else {
            return Err(not_found());
        };
        let bytes = self.read_blob(&digest, KIND_MANIFEST).await?;
        Ok((bytes, media_type, digest))
    }

    /// Imports the single image of an OCI image layout directory (oci-layout, index.json,
    /// blobs/) as `repo:tag`; returns the manifest digest.
    pub async fn import_oci_layout(&self, dir: &Path, repo: &str, tag: &str) -> Result<String> {
        image::import_oci_layout(self, dir, repo, tag).await
    }

    /// A new image = the base image's layers + `layer` (already stored as a blob), with the
    /// base config patched; stored as `repo:tag`. Returns the new manifest digest.
    pub async fn append_layer(
        &self,
        base_repo: &str,
        base_reference: &str,
        layer: &paas_api::LayerInfo,
        patch: &ConfigPatch,
        repo: &str,
        tag: &str,
    ) -> Result<String> {
        image::append_layer(self, base_repo, base_reference, layer, patch, repo, tag).await
    }
}

/// The `/v2/` routes (OCI distribution spec: pull and push, monolithic and chunked uploads).
pub fn routes(registry: Registry, auth: AuthCheck) -> axum::Router {
    api::routes(registry, auth, None, None)
}

/// The `/v2/` routes with a per-repository access check (the controller's users and
/// collaborators) in place of `auth`.
pub fn routes_with_access(registry: Registry, auth: AuthCheck, repo: RepoCheck) -> axum::Router {
    api::routes(registry, auth, Some(repo), None)
}

/// [`routes_with_access`] plus token auth: `/v2/token` issues registry tokens signed by
/// `issuer`, 401s challenge clients to get one, and Bearer registry tokens are accepted
/// (Basic auth keeps working). See [`token`].
pub fn routes_with_tokens(
    registry: Registry,
    auth: AuthCheck,
    repo: RepoCheck,
    issuer: token::TokenIssuer,
) -> axum::Router {
    api::routes(registry, auth, Some(repo), Some(issuer))
}
