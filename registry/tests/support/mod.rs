//! Shared helpers for the registry tests: a token check like the controller's, gzip layers
//! and OCI image layouts built in a temporary directory.
#![allow(dead_code)]

use std::io::Write;
use std::path::Path;
use std::sync::Arc;

use base64::Engine as _;
use paas_registry::AuthCheck;
use sha2::{Digest as _, Sha256};

pub const TOKEN: &str = "s3cret-token";

pub fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// Accepts `Bearer TOKEN` and `Basic base64(any:TOKEN)`, like the controller does.
pub fn auth() -> AuthCheck {
    Arc::new(|headers: &http::HeaderMap| {
        let Some(v) = headers.get("authorization").and_then(|v| v.to_str().ok()) else {
            return false;
        };
        if let Some(t) = v.strip_prefix("Bearer ") {
            return t == TOKEN;
        }
        if let Some(b) = v.strip_prefix("Basic ") {
            let Ok(raw) = base64::engine::general_purpose::STANDARD.decode(b.trim()) else {
                return false;
            };
            let s = String::from_utf8_lossy(&raw);
            return s.split_once(':').map(|(_, p)| p == TOKEN).unwrap_or(false);
        }
        false
    })
}

pub fn basic() -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("u:{TOKEN}"))
    )
}

/// A gzip tar layer holding `files`; returns (gzip bytes, diff_id).
pub fn layer(files: &[(&str, &[u8])]) -> (Vec<u8>, String) {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        h.set_cksum();
        tar.append_data(&mut h, path, *data).unwrap();
    }
    let tar = tar.into_inner().unwrap();
    let diff_id = sha(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), diff_id)
}

/// An image config for the given diff_ids.
pub fn config(diff_ids: &[String]) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/bin:/bin", "LANG=C"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created_by": "test"}],
    }))
    .unwrap()
}

/// An OCI image manifest for a config and gzip layers.
pub fn manifest(config: &[u8], layers: &[Vec<u8>]) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|l| {
            serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": sha(l), "size": l.len(),
            })
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha(config), "size": config.len()},
        "layers": layers,
    }))
    .unwrap()
}

fn write_blob(dir: &Path, bytes: &[u8]) {
    let d = sha(bytes);
    let p = dir.join("blobs/sha256").join(&d["sha256:".len()..]);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, bytes).unwrap();
}

/// Writes an OCI image layout with one image tagged `latest`; returns its manifest digest.
pub fn write_layout(dir: &Path, layers: &[(Vec<u8>, String)]) -> String {
    let diff_ids: Vec<String> = layers.iter().map(|l| l.1.clone()).collect();
    let blobs: Vec<Vec<u8>> = layers.iter().map(|l| l.0.clone()).collect();
    let cfg = config(&diff_ids);
    let m = manifest(&cfg, &blobs);
    for b in blobs.iter().chain([&cfg, &m]) {
        write_blob(dir, b);
    }
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha(&m), "size": m.len(),
            "annotations": {"org.opencontainers.image.ref.name": "latest"},
        }],
    });
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    sha(&m)
}
