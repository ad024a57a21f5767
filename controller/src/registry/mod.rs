//! The image store and the OCI distribution API (`/v2/`).
//!
//! CONTRACT used by the rest of the controller (the registry helper implements the bodies
//! and may add to this API, not change it).

use std::path::{Path, PathBuf};
use std::sync::Arc;

/// Decides whether a request may use the registry (the controller passes its token check).
pub type AuthCheck = Arc<dyn Fn(&http::HeaderMap) -> bool + Send + Sync>;

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
}

impl Registry {
    pub fn open(root: PathBuf) -> Result<Registry> {
        let _ = &root;
        todo!("registry helper")
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Stores bytes as a blob; returns `sha256:<hex>`.
    pub async fn put_blob(&self, bytes: &[u8]) -> Result<String> {
        let _ = bytes;
        todo!("registry helper")
    }

    /// Path of a stored blob, if present.
    pub fn blob_path(&self, digest: &str) -> Option<PathBuf> {
        let _ = digest;
        todo!("registry helper")
    }

    /// Stores a manifest under `repo` and, if `tag` is given, points the tag at it. Returns
    /// the manifest digest.
    pub async fn put_manifest(&self, repo: &str, tag: Option<&str>, bytes: &[u8]) -> Result<String> {
        let _ = (repo, tag, bytes);
        todo!("registry helper")
    }

    /// (manifest bytes, media type, digest) for a tag or digest reference.
    pub async fn get_manifest(&self, repo: &str, reference: &str) -> Result<(Vec<u8>, String, String)> {
        let _ = (repo, reference);
        todo!("registry helper")
    }

    /// Imports the single image of an OCI image layout directory (oci-layout, index.json,
    /// blobs/) as `repo:tag`; returns the manifest digest.
    pub async fn import_oci_layout(&self, dir: &Path, repo: &str, tag: &str) -> Result<String> {
        let _ = (dir, repo, tag);
        todo!("registry helper")
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
        let _ = (base_repo, base_reference, layer, patch, repo, tag);
        todo!("registry helper")
    }
}

/// The `/v2/` routes (OCI distribution spec: pull and push, monolithic and chunked uploads).
pub fn routes(registry: Registry, auth: AuthCheck) -> axum::Router {
    let _ = (registry, auth);
    todo!("registry helper")
}
