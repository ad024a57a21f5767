//! Manifest media types and the checks made before a manifest is stored: it is JSON of a
//! kind we serve (OCI image manifest or index, docker schema2 manifest or manifest list) and
//! every blob or child manifest it points at is already in the store.

use serde_json::Value;

use super::names::digest_hex;
use super::{Error, Registry};

pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
/// zstd layers are stored and served like gzip ones; agents detect the compression.
pub const OCI_LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";

/// Largest manifest accepted (the spec asks registries to take at least 4 MiB).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

/// What a manifest points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    /// A config or layer blob.
    Blob(String),
    /// A child manifest of an index, with its media type.
    Manifest(String, String),
}

/// A manifest that passed the shape checks.
#[derive(Debug, Clone)]
pub struct Checked {
    pub media_type: String,
    pub references: Vec<Reference>,
    /// The `subject` descriptor's digest (OCI 1.1), if any.
    pub subject: Option<String>,
}

/// Manifest problems; the HTTP layer maps them to `MANIFEST_INVALID` and
/// `MANIFEST_BLOB_UNKNOWN`.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest is invalid: {why}")]
    Invalid { why: String },
    #[error("manifest refers to {digest}, which is not in the registry; push it first")]
    BlobUnknown { digest: String },
    #[error(transparent)]
    Store(#[from] Error),
}

fn invalid(why: impl Into<String>) -> ManifestError {
    ManifestError::Invalid { why: why.into() }
}

/// True for the manifest media types the registry stores and serves.
pub fn is_manifest_type(media_type: &str) -> bool {
    matches!(
        media_type,
        OCI_MANIFEST | OCI_INDEX | DOCKER_MANIFEST | DOCKER_LIST
    )
}

/// Reads one descriptor's digest (checked) from a JSON object.
fn descriptor_digest(d: &Value, what: &str) -> std::result::Result<String, ManifestError> {
    let digest = d
        .get("digest")
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("{what} has no \"digest\"")))?;
    digest_hex(digest).map_err(|e| invalid(format!("{what}: {e}")))?;
    if d.get("size").and_then(Value::as_u64).is_none() {
        return Err(invalid(format!("{what} has no numeric \"size\"")));
    }
    Ok(digest.to_string())
}

/// Parses and shape-checks a manifest. `content_type` is the Content-Type it was pushed
/// with, if any; the body's own `mediaType` wins, then the Content-Type, then the shape.
pub fn check(
    bytes: &[u8],
    content_type: Option<&str>,
) -> std::result::Result<Checked, ManifestError> {
    let v: Value = serde_json::from_slice(bytes).map_err(|e| invalid(format!("not JSON: {e}")))?;
    if !v.is_object() {
        return Err(invalid("not a JSON object"));
    }
    match v.get("schemaVersion").and_then(Value::as_u64) {
        Some(2) => {}
        Some(1) => {
            return Err(invalid(
                "docker schema 1 manifests are not supported; push schema 2 or OCI",
            ))
        }
        _ => return Err(invalid("\"schemaVersion\" must be 2")),
    }
    let body_type = v.get("mediaType").and_then(Value::as_str);
    let header_type = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim())
        .filter(|c| !c.is_empty());
    // A generic JSON or binary Content-Type says nothing; any other non-manifest type
    // (text/html, an image config, a layer) is a client pushing the wrong thing.
    let header_type = match header_type {
        None | Some("application/json" | "application/octet-stream") => None,
        Some(h) if is_manifest_type(h) => Some(h),
        Some(h) => {
            return Err(invalid(format!(
                "the Content-Type {h:?} is not an image manifest or index type"
            )))
        }
    };
    let shape_type = if v.get("manifests").is_some() {
        OCI_INDEX
    } else {
        OCI_MANIFEST
    };
    let media_type = body_type.or(header_type).unwrap_or(shape_type).to_string();
    if !is_manifest_type(&media_type) {
        return Err(invalid(format!("unsupported media type {media_type:?}")));
    }
    if let (Some(b), Some(h)) = (body_type, header_type) {
        if b != h {
            return Err(invalid(format!(
                "its mediaType {b:?} differs from the Content-Type {h:?}"
            )));
        }
    }
    let mut references = Vec::new();
    match media_type.as_str() {
        OCI_MANIFEST | DOCKER_MANIFEST => {
            let config = v
                .get("config")
                .filter(|c| c.is_object())
                .ok_or_else(|| invalid("an image manifest needs a \"config\" descriptor"))?;
            references.push(Reference::Blob(descriptor_digest(config, "config")?));
            let layers = v
                .get("layers")
                .and_then(Value::as_array)
                .ok_or_else(|| invalid("an image manifest needs a \"layers\" array"))?;
            for (i, l) in layers.iter().enumerate() {
                references.push(Reference::Blob(descriptor_digest(
                    l,
                    &format!("layers[{i}]"),
                )?));
            }
        }
        _ => {
            let manifests = v
                .get("manifests")
                .and_then(Value::as_array)
                .ok_or_else(|| invalid("an index needs a \"manifests\" array"))?;
            for (i, m) in manifests.iter().enumerate() {
                let what = format!("manifests[{i}]");
                let digest = descriptor_digest(m, &what)?;
                let mt = m
                    .get("mediaType")
                    .and_then(Value::as_str)
                    .ok_or_else(|| invalid(format!("{what} has no \"mediaType\"")))?;
                if is_manifest_type(mt) {
                    references.push(Reference::Manifest(digest, mt.to_string()));
                } else {
                    // Artifacts in an index may be plain blobs.
                    references.push(Reference::Blob(digest));
                }
            }
        }
    }
    let subject = match v.get("subject") {
        Some(s) => Some(descriptor_digest(s, "subject")?),
        None => None,
    };
    Ok(Checked {
        media_type,
        references,
        subject,
    })
}

impl Registry {
    /// Checks a manifest and stores it in `repo` (blob + link, and the tag if given).
    /// Children of an index that exist as blobs but were pushed to another repository are
    /// linked into this one. Returns the manifest digest and its media type.
    pub(crate) async fn store_manifest(
        &self,
        repo: &str,
        tag: Option<&str>,
        bytes: &[u8],
        content_type: Option<&str>,
    ) -> std::result::Result<(String, String), ManifestError> {
        super::names::check_repo(repo)?;
        if let Some(t) = tag {
            super::names::check_tag(t)?;
        }
        if bytes.len() > MAX_MANIFEST_BYTES {
            return Err(invalid(format!(
                "it is {} bytes; the limit is {MAX_MANIFEST_BYTES}",
                bytes.len()
            )));
        }
        let checked = check(bytes, content_type)?;
        for r in &checked.references {
            let digest = match r {
                Reference::Blob(d) | Reference::Manifest(d, _) => d,
            };
            if self.blob_size(digest).await?.is_none() {
                return Err(ManifestError::BlobUnknown {
                    digest: digest.clone(),
                });
            }
            if let Reference::Manifest(d, mt) = r {
                if self.manifest_link(repo, d).await?.is_none() {
                    self.link_manifest(repo, d, mt).await?;
                }
            }
        }
        let digest = self.put_blob(bytes).await?;
        self.link_manifest(repo, &digest, &checked.media_type)
            .await?;
        if let Some(t) = tag {
            self.set_tag(repo, t, &digest).await?;
        }
        Ok((digest, checked.media_type))
    }
}

impl From<ManifestError> for Error {
    fn from(e: ManifestError) -> Error {
        match e {
            ManifestError::Store(e) => e,
            ManifestError::Invalid { why } => Error::Invalid {
                what: "manifest".into(),
                why,
            },
            ManifestError::BlobUnknown { digest } => Error::Invalid {
                what: "manifest".into(),
                why: format!("it refers to {digest}, which is not in the registry; push it first"),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn image_manifest_references() {
        let m = serde_json::json!({
            "schemaVersion": 2,
            "config": {"mediaType": OCI_CONFIG, "digest": d('a'), "size": 2},
            "layers": [{"mediaType": OCI_LAYER_GZIP, "digest": d('b'), "size": 3}],
        });
        let c = check(m.to_string().as_bytes(), None).unwrap();
        assert_eq!(c.media_type, OCI_MANIFEST);
        assert_eq!(
            c.references,
            vec![Reference::Blob(d('a')), Reference::Blob(d('b'))]
        );
        let c = check(m.to_string().as_bytes(), Some(DOCKER_MANIFEST)).unwrap();
        assert_eq!(c.media_type, DOCKER_MANIFEST);
    }

    #[test]
    fn zstd_layers_are_accepted() {
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": d('a'), "size": 2},
            "layers": [
                {"mediaType": OCI_LAYER_ZSTD, "digest": d('b'), "size": 3},
                {"mediaType": OCI_LAYER_GZIP, "digest": d('c'), "size": 4},
            ],
        });
        let c = check(m.to_string().as_bytes(), None).unwrap();
        assert_eq!(c.references.len(), 3);
    }

    #[test]
    fn rejects_bad_manifests() {
        for bad in [
            "nope".to_string(),
            "[]".into(),
            r#"{"schemaVersion":1}"#.into(),
            r#"{"schemaVersion":2,"layers":[]}"#.into(),
            format!(
                r#"{{"schemaVersion":2,"mediaType":"text/plain","config":{{"digest":"{}","size":1}},"layers":[]}}"#,
                d('a')
            ),
            r#"{"schemaVersion":2,"config":{"digest":"sha256:zz","size":1},"layers":[]}"#.into(),
        ] {
            assert!(
                matches!(
                    check(bad.as_bytes(), None),
                    Err(ManifestError::Invalid { .. })
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn index_references() {
        let m = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": OCI_INDEX,
            "manifests": [{"mediaType": OCI_MANIFEST, "digest": d('c'), "size": 9}],
        });
        let c = check(m.to_string().as_bytes(), Some(OCI_INDEX)).unwrap();
        assert_eq!(
            c.references,
            vec![Reference::Manifest(d('c'), OCI_MANIFEST.into())]
        );
        assert!(check(m.to_string().as_bytes(), Some(OCI_MANIFEST)).is_err());
    }
}
