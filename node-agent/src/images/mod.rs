//! Image pulls from the controller's OCI registry and the node's layer cache.
//!
//! A pull reads the manifest (OCI or Docker v2 schema 2; an index picks linux and this
//! machine's architecture), the config blob, and every layer blob not yet in the cache.
//! Every blob's sha256 is checked. Each layer is unpacked once into
//! `state_dir/layers/<hex>/`: first into a temp dir, then renamed, so a crash never leaves
//! half a layer under the final name. Pulls of the same layer wait on a per-digest lock.
//! With a budget ([`ImageStore::with_budget`], `--layer-cache-bytes`) the cache is pruned,
//! least recently used first, never a layer a job uses ([`prune`]).

pub mod prune;
pub mod unpack;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use paas_api::ImageRef;
use reqwest::StatusCode;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

const MANIFEST_TYPES: &str = "application/vnd.oci.image.manifest.v1+json, \
     application/vnd.docker.distribution.manifest.v2+json, \
     application/vnd.oci.image.index.v1+json, \
     application/vnd.docker.distribution.manifest.list.v2+json";

/// Manifests and configs are small; refuse anything absurd.
const MAX_JSON_BYTES: usize = 8 << 20;

/// Errors of a pull. The caller adds which image (`pull apps/x@latest: …`).
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{what}: {source}")]
    Http {
        what: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{status} (GET {what})")]
    Status { what: String, status: StatusCode },
    #[error("{what}: registry sent a blob whose sha256 is {actual}, expected {expected}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },
    #[error("bad manifest: {0}")]
    Manifest(String),
    #[error("bad image config: {0}")]
    Config(String),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("unpacking layer {digest}: {source}")]
    Unpack {
        digest: String,
        #[source]
        source: unpack::UnpackError,
    },
}

type Result<T> = std::result::Result<T, ImageError>;

/// The parts of an image config the agent uses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageConfig {
    pub env: Vec<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
}

/// A pulled image: its unpacked layer dirs, BOTTOM-MOST FIRST (manifest order), and config.
/// While it (or a clone) lives, its layers are pinned: the cache's pruning keeps them.
#[derive(Debug, Clone)]
pub struct Image {
    pub layers: Vec<PathBuf>,
    pub config: ImageConfig,
    _pins: prune::Pins,
}

#[derive(Debug, Deserialize)]
struct Descriptor {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    digest: String,
    #[serde(default)]
    platform: Option<Platform>,
}

#[derive(Debug, Deserialize)]
struct Platform {
    #[serde(default)]
    architecture: String,
    #[serde(default)]
    os: String,
}

#[derive(Debug, Deserialize)]
struct Manifest {
    #[serde(rename = "mediaType", default)]
    media_type: String,
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Debug, Deserialize, Default)]
struct ConfigFile {
    #[serde(default)]
    config: Option<ConfigSection>,
}

#[derive(Debug, Deserialize, Default)]
struct ConfigSection {
    #[serde(rename = "Env", default)]
    env: Option<Vec<String>>,
    #[serde(rename = "Entrypoint", default)]
    entrypoint: Option<Vec<String>>,
    #[serde(rename = "Cmd", default)]
    cmd: Option<Vec<String>>,
    #[serde(rename = "WorkingDir", default)]
    working_dir: Option<String>,
    #[serde(rename = "User", default)]
    user: Option<String>,
}

/// The layer cache under `state_dir/layers/` and a registry client.
#[derive(Debug)]
pub struct ImageStore {
    root: PathBuf,
    client: reqwest::Client,
    token: String,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    tracker: Arc<prune::Tracker>,
    /// Most bytes the cache keeps (None: no limit).
    budget: Option<u64>,
}

impl ImageStore {
    /// Opens the cache at `root` (created if missing) and removes leftovers of
    /// interrupted pulls.
    pub fn open(root: PathBuf, client: reqwest::Client, token: String) -> Result<ImageStore> {
        std::fs::create_dir_all(&root).map_err(|source| ImageError::Io {
            what: format!("creating {}", root.display()),
            source,
        })?;
        if let Ok(entries) = std::fs::read_dir(&root) {
            for entry in entries.flatten() {
                if entry.file_name().as_encoded_bytes().starts_with(b".tmp") {
                    let path = entry.path();
                    let _ = std::fs::remove_dir_all(&path).or_else(|_| std::fs::remove_file(&path));
                }
            }
        }
        Ok(ImageStore {
            root,
            client,
            token,
            locks: Mutex::new(HashMap::new()),
            tracker: Arc::default(),
            budget: None,
        })
    }

    /// Gives the cache a size budget in bytes (None or 0: none): [`prune::run`] keeps it.
    pub fn with_budget(mut self, budget: Option<u64>) -> ImageStore {
        self.budget = budget.filter(|b| *b > 0);
        self
    }

    /// The size budget, if any.
    pub fn budget(&self) -> Option<u64> {
        self.budget
    }

    pub(in crate::images) fn tracker(&self) -> Arc<prune::Tracker> {
        Arc::clone(&self.tracker)
    }

    /// Prunes the cache to its budget now, keeping pinned layers and those `in_use` names
    /// (hex digests; called while no pin can be taken or released). `Ok(None)` without a
    /// budget or when the cache fits. Blocking: call it off the async threads.
    pub fn prune_blocking(
        &self,
        in_use: impl FnOnce() -> std::result::Result<std::collections::HashSet<String>, String>,
    ) -> Result<Option<prune::PruneReport>> {
        match self.budget {
            Some(budget) => prune::prune(&self.root, &self.tracker, budget, in_use),
            None => Ok(None),
        }
    }

    /// The directory a layer with this digest unpacks to.
    pub fn layer_dir(&self, digest: &str) -> Option<PathBuf> {
        let hex = digest.strip_prefix("sha256:")?;
        (hex.len() == 64 && hex.bytes().all(|b| b.is_ascii_hexdigit())).then(|| self.root.join(hex))
    }

    /// Pulls `image`: manifest, config, and the layers missing from the cache.
    pub async fn pull(&self, image: &ImageRef) -> Result<Image> {
        let base = format!(
            "{}/v2/{}",
            image.registry.trim_end_matches('/'),
            image.repository
        );
        let mut manifest = self.manifest(&base, &image.reference).await?;
        if !manifest.manifests.is_empty() || manifest.media_type.contains("index") {
            let wanted = host_arch();
            let chosen = manifest
                .manifests
                .iter()
                .find(|m| {
                    m.platform
                        .as_ref()
                        .is_some_and(|p| p.os == "linux" && p.architecture == wanted)
                })
                .ok_or_else(|| {
                    ImageError::Manifest(format!("the index has no image for linux/{wanted}"))
                })?;
            let digest = chosen.digest.clone();
            manifest = self.manifest(&base, &digest).await?;
        }
        let config_desc = manifest
            .config
            .as_ref()
            .ok_or_else(|| ImageError::Manifest("no config descriptor".into()))?;
        let config_bytes = self.small_blob(&base, &config_desc.digest).await?;
        let config = parse_config(&config_bytes)?;
        let mut layers = Vec::with_capacity(manifest.layers.len());
        let pins = prune::Pins::new(&self.tracker);
        for layer in &manifest.layers {
            // gzip, zstd and plain tar layers all unpack (detected by their magic bytes).
            if !layer_type_supported(&layer.media_type) {
                return Err(ImageError::Manifest(format!(
                    "layer {} has the media type {}, which the agent cannot unpack (it takes \
                     plain, gzip and zstd tar layers)",
                    layer.digest, layer.media_type
                )));
            }
            layers.push(self.layer(&base, &layer.digest, &pins).await?);
        }
        Ok(Image {
            layers,
            config,
            _pins: pins,
        })
    }

    async fn get(&self, url: &str, what: &str, accept: Option<&str>) -> Result<reqwest::Response> {
        let mut req = self.client.get(url).bearer_auth(&self.token);
        if let Some(accept) = accept {
            req = req.header(reqwest::header::ACCEPT, accept);
        }
        let resp = req.send().await.map_err(|source| ImageError::Http {
            what: what.to_string(),
            source,
        })?;
        if !resp.status().is_success() {
            return Err(ImageError::Status {
                what: what.to_string(),
                status: resp.status(),
            });
        }
        Ok(resp)
    }

    async fn body_limited(&self, mut resp: reqwest::Response, what: &str) -> Result<Vec<u8>> {
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await.map_err(|source| ImageError::Http {
            what: what.to_string(),
            source,
        })? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_JSON_BYTES {
                return Err(ImageError::Manifest(format!(
                    "{what} is larger than {MAX_JSON_BYTES} bytes"
                )));
            }
        }
        Ok(body)
    }

    async fn manifest(&self, base: &str, reference: &str) -> Result<Manifest> {
        let what = format!("manifest {reference}");
        let resp = self
            .get(
                &format!("{base}/manifests/{reference}"),
                &what,
                Some(MANIFEST_TYPES),
            )
            .await?;
        let body = self.body_limited(resp, &what).await?;
        if reference.starts_with("sha256:") {
            check_digest(&what, reference, &body)?;
        }
        serde_json::from_slice(&body).map_err(|e| ImageError::Manifest(e.to_string()))
    }

    async fn small_blob(&self, base: &str, digest: &str) -> Result<Vec<u8>> {
        let what = format!("blob {digest}");
        let resp = self
            .get(&format!("{base}/blobs/{digest}"), &what, None)
            .await?;
        let body = self.body_limited(resp, &what).await?;
        check_digest(&what, digest, &body)?;
        Ok(body)
    }

    /// Returns the unpacked dir of one layer, downloading and unpacking it if needed. The
    /// layer is pinned (in `pins`) before the cache is looked at, so a prune cannot take it
    /// between the look and the job's start.
    async fn layer(&self, base: &str, digest: &str, pins: &prune::Pins) -> Result<PathBuf> {
        let dir = self
            .layer_dir(digest)
            .ok_or_else(|| ImageError::Manifest(format!("bad layer digest {digest:?}")))?;
        let hex = digest.trim_start_matches("sha256:");
        pins.add(hex);
        if dir.is_dir() {
            prune::touch(&self.root, hex);
            return Ok(dir);
        }
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(digest.to_string()).or_default().clone()
        };
        let _guard = lock.lock().await;
        if dir.is_dir() {
            prune::touch(&self.root, hex);
            return Ok(dir);
        }
        let io = |what: String| move |source| ImageError::Io { what, source };
        let tag = crate::util::unique();
        let blob = self.root.join(format!(".tmp-blob-{tag}"));
        let result = async {
            self.download(base, digest, &blob).await?;
            let tmp_dir = self.root.join(format!(".tmp-layer-{tag}"));
            std::fs::create_dir(&tmp_dir).map_err(io(format!("creating {}", tmp_dir.display())))?;
            let (blob2, tmp2, digest2) = (blob.clone(), tmp_dir.clone(), digest.to_string());
            let report = tokio::task::spawn_blocking(move || {
                unpack::unpack_file(
                    &blob2,
                    &tmp2,
                    unpack::Options {
                        whiteouts: true,
                        ..Default::default()
                    },
                )
            })
            .await
            .map_err(|e| ImageError::Io {
                what: format!("unpacking layer {digest}"),
                source: std::io::Error::other(e),
            })?
            .map_err(|source| ImageError::Unpack {
                digest: digest2,
                source,
            });
            let report = match report {
                Ok(r) => r,
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&tmp_dir);
                    return Err(e);
                }
            };
            for skipped in &report.skipped {
                tracing::warn!(layer = digest, "skipped layer entry {skipped}");
            }
            if self.budget.is_some() {
                let tmp2 = tmp_dir.clone();
                let bytes = tokio::task::spawn_blocking(move || crate::du::disk_usage(&tmp2))
                    .await
                    .map_err(std::io::Error::other)
                    .and_then(|r| r)
                    .map_err(io(format!("measuring {}", tmp_dir.display())))?;
                prune::record_size(&self.root, hex, bytes)
                    .map_err(io(format!("recording the size of layer {digest}")))?;
            }
            std::fs::rename(&tmp_dir, &dir)
                .map_err(io(format!("renaming {}", tmp_dir.display())))?;
            self.tracker.grown.notify_one();
            Ok(dir.clone())
        }
        .await;
        let _ = std::fs::remove_file(&blob);
        if result.is_ok() {
            tracing::info!(layer = digest, "layer unpacked");
        }
        result
    }

    /// Streams a blob to `dest`, checking its sha256.
    async fn download(&self, base: &str, digest: &str, dest: &Path) -> Result<()> {
        let what = format!("blob {digest}");
        let mut resp = self
            .get(&format!("{base}/blobs/{digest}"), &what, None)
            .await?;
        let io = |source| ImageError::Io {
            what: format!("writing {}", dest.display()),
            source,
        };
        let mut file = tokio::fs::File::create(dest).await.map_err(io)?;
        let mut hasher = Sha256::new();
        while let Some(chunk) = resp.chunk().await.map_err(|source| ImageError::Http {
            what: what.clone(),
            source,
        })? {
            hasher.update(&chunk);
            file.write_all(&chunk).await.map_err(io)?;
        }
        file.flush().await.map_err(io)?;
        let actual = format!("sha256:{}", hex::encode(hasher.finalize()));
        if actual != digest {
            return Err(ImageError::DigestMismatch {
                what,
                expected: digest.to_string(),
                actual,
            });
        }
        Ok(())
    }
}

fn check_digest(what: &str, expected: &str, body: &[u8]) -> Result<()> {
    let actual = crate::util::sha256_digest(body);
    if actual != expected {
        return Err(ImageError::DigestMismatch {
            what: what.to_string(),
            expected: expected.to_string(),
            actual,
        });
    }
    Ok(())
}

/// Parses the fields the agent uses from an OCI/Docker image config.
pub fn parse_config(bytes: &[u8]) -> Result<ImageConfig> {
    let file: ConfigFile =
        serde_json::from_slice(bytes).map_err(|e| ImageError::Config(e.to_string()))?;
    let c = file.config.unwrap_or_default();
    Ok(ImageConfig {
        env: c.env.unwrap_or_default(),
        entrypoint: c.entrypoint.unwrap_or_default(),
        cmd: c.cmd.unwrap_or_default(),
        working_dir: c.working_dir.filter(|w| !w.is_empty()),
        user: c.user.filter(|u| !u.is_empty()),
    })
}

/// The OCI architecture name of this machine.
/// Layer media types the unpacker handles: OCI and docker tar layers, plain, gzip or zstd
/// (an empty type, as some old manifests have, is tried too).
fn layer_type_supported(media_type: &str) -> bool {
    matches!(
        media_type,
        "" | "application/vnd.oci.image.layer.v1.tar"
            | "application/vnd.oci.image.layer.v1.tar+gzip"
            | "application/vnd.oci.image.layer.v1.tar+zstd"
            | "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"
            | "application/vnd.docker.image.rootfs.diff.tar.gzip"
            | "application/vnd.docker.image.rootfs.diff.tar"
            | "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
    )
}

fn host_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "arm" => "arm",
        "riscv64" => "riscv64",
        "s390x" => "s390x",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Resolves an image `User` (`uid`, `uid:gid`, `name`, `name:group`) against the layers'
/// `/etc/passwd` and `/etc/group` (top-most layer first). `None` means root.
pub fn resolve_user(
    user: &str,
    layers_top_first: &[PathBuf],
) -> std::result::Result<(u32, u32), String> {
    let (u, g) = match user.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (user, None),
    };
    let lookup = |file: &str, name: &str| -> Option<(u32, Option<u32>)> {
        let text = layers_top_first
            .iter()
            .find_map(|l| std::fs::read_to_string(l.join(file)).ok())?;
        text.lines().find_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            (f.len() >= 3 && f[0] == name).then(|| {
                let id = f[2].parse().ok()?;
                let gid = f.get(3).and_then(|g| g.parse().ok());
                Some((id, gid))
            })?
        })
    };
    let (uid, primary_gid) = match u.parse::<u32>() {
        Ok(uid) => (uid, lookup_uid_gid(uid, layers_top_first)),
        Err(_) => lookup("etc/passwd", u)
            .ok_or_else(|| format!("user {u:?} is not in the image's /etc/passwd"))?,
    };
    let gid = match g {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => {
                lookup("etc/group", g)
                    .ok_or_else(|| format!("group {g:?} is not in the image's /etc/group"))?
                    .0
            }
        },
        None => primary_gid.unwrap_or(uid),
    };
    Ok((uid, gid))
}

fn lookup_uid_gid(uid: u32, layers_top_first: &[PathBuf]) -> Option<u32> {
    let text = layers_top_first
        .iter()
        .find_map(|l| std::fs::read_to_string(l.join("etc/passwd")).ok())?;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() >= 4 && f[2].parse::<u32>().ok() == Some(uid)).then(|| f[3].parse().ok())?
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_zstd_and_plain_layer_types_are_supported() {
        assert!(layer_type_supported(
            "application/vnd.oci.image.layer.v1.tar+zstd"
        ));
        assert!(layer_type_supported(
            "application/vnd.oci.image.layer.v1.tar+gzip"
        ));
        assert!(layer_type_supported(
            "application/vnd.docker.image.rootfs.diff.tar.gzip"
        ));
        assert!(layer_type_supported(""));
        assert!(!layer_type_supported(
            "application/vnd.oci.image.layer.v1.tar+bzip2"
        ));
        assert!(!layer_type_supported(
            "application/vnd.oci.image.layer.v1.tar+encrypted"
        ));
    }

    #[test]
    fn config_fields_are_read() {
        let c = parse_config(
            br#"{"architecture":"amd64","config":{"Env":["PATH=/bin"],"Cmd":["sh"],
                "WorkingDir":"/app","User":"1000"}}"#,
        )
        .unwrap();
        assert_eq!(c.env, vec!["PATH=/bin"]);
        assert_eq!(c.cmd, vec!["sh"]);
        assert!(c.entrypoint.is_empty());
        assert_eq!(c.working_dir.as_deref(), Some("/app"));
        assert_eq!(c.user.as_deref(), Some("1000"));
        assert_eq!(parse_config(b"{}").unwrap(), ImageConfig::default());
    }

    #[test]
    fn users_resolve_from_passwd() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("etc")).unwrap();
        std::fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0::/:/bin/sh\nu:x:1000:1001::/:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(dir.path().join("etc/group"), "g:x:2000:\n").unwrap();
        let layers = vec![dir.path().to_path_buf()];
        assert_eq!(resolve_user("u", &layers), Ok((1000, 1001)));
        assert_eq!(resolve_user("1000", &layers), Ok((1000, 1001)));
        assert_eq!(resolve_user("5:6", &layers), Ok((5, 6)));
        assert_eq!(resolve_user("u:g", &layers), Ok((1000, 2000)));
        assert!(resolve_user("nobody", &layers).is_err());
    }
}
