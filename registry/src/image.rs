//! Images made by the controller itself: importing a stack image from an OCI image layout
//! directory, and deriving an app image from a base image plus one layer.
//!
//! Configs and manifests are handled as `serde_json::Value` so fields we do not know about
//! (labels, annotations, healthchecks…) survive untouched.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use super::manifest::{self, DOCKER_LAYER_GZIP, DOCKER_MANIFEST, OCI_CONFIG, OCI_LAYER_GZIP};
use super::manifest::{OCI_INDEX, OCI_LAYER_TAR, OCI_MANIFEST};
use super::names::{self, digest_hex};
use super::store::{io_err, sha256_digest};
use super::{ConfigPatch, Error, Registry, Result, KIND_BLOB};

const REF_NAME: &str = "org.opencontainers.image.ref.name";

fn invalid(what: impl Into<String>, why: impl Into<String>) -> Error {
    Error::Invalid {
        what: what.into(),
        why: why.into(),
    }
}

/// `dir/blobs/<alg>/<hex>` for a digest (checked, so it cannot leave `dir`).
fn layout_blob(dir: &Path, digest: &str) -> Result<PathBuf> {
    Ok(dir.join("blobs").join("sha256").join(digest_hex(digest)?))
}

fn descriptor(v: &Value, what: &str) -> Result<(String, u64)> {
    let digest = v.get("digest").and_then(Value::as_str);
    let size = v.get("size").and_then(Value::as_u64);
    match (digest, size) {
        (Some(d), Some(s)) => {
            digest_hex(d)?;
            Ok((d.to_string(), s))
        }
        _ => Err(invalid(what, "a descriptor needs \"digest\" and \"size\"")),
    }
}

pub(super) async fn import_oci_layout(
    reg: &Registry,
    dir: &Path,
    repo: &str,
    tag: &str,
) -> Result<String> {
    names::check_repo(repo)?;
    names::check_tag(tag)?;
    let what = format!("OCI image layout {}", dir.display());
    if !dir.join("oci-layout").is_file() {
        return Err(invalid(
            &what,
            "it has no `oci-layout` file; point at a directory made by e.g. `skopeo copy … oci:DIR`",
        ));
    }
    let index_path = dir.join("index.json");
    let index_bytes = tokio::fs::read(&index_path)
        .await
        .map_err(io_err(format!("reading {}", index_path.display())))?;
    let index: Value = serde_json::from_slice(&index_bytes)
        .map_err(|e| invalid(&what, format!("index.json is not JSON: {e}")))?;
    let entries = index
        .get("manifests")
        .and_then(Value::as_array)
        .ok_or_else(|| invalid(&what, "index.json has no \"manifests\" array"))?;
    let chosen: Vec<&Value> = if entries.len() == 1 {
        entries.iter().collect()
    } else {
        entries
            .iter()
            .filter(|m| {
                m.pointer(&format!("/annotations/{}", REF_NAME.replace('/', "~1")))
                    == Some(&json!(tag))
            })
            .collect()
    };
    let [entry] = chosen.as_slice() else {
        return Err(invalid(
            &what,
            format!(
                "index.json lists {} images and {} of them are named {tag:?}; expected exactly one",
                entries.len(),
                chosen.len()
            ),
        ));
    };
    let media_type = entry
        .get("mediaType")
        .and_then(Value::as_str)
        .unwrap_or(OCI_MANIFEST);
    if media_type != OCI_MANIFEST && media_type != DOCKER_MANIFEST {
        return Err(invalid(
            &what,
            format!("its image is a {media_type}; only a single-platform image manifest can be imported"),
        ));
    }
    let (digest, size) = descriptor(entry, &format!("{what}: index.json entry"))?;
    let manifest_path = layout_blob(dir, &digest)?;
    let bytes = tokio::fs::read(&manifest_path)
        .await
        .map_err(io_err(format!("reading {}", manifest_path.display())))?;
    if sha256_digest(&bytes) != digest || bytes.len() as u64 != size {
        return Err(invalid(
            &what,
            format!(
                "manifest blob {} does not match its digest or size",
                manifest_path.display()
            ),
        ));
    }
    let m: Value = serde_json::from_slice(&bytes)
        .map_err(|e| invalid(&what, format!("manifest is not JSON: {e}")))?;
    let mut blobs = vec![m.get("config").cloned().unwrap_or(Value::Null)];
    if let Some(layers) = m.get("layers").and_then(Value::as_array) {
        blobs.extend(layers.iter().cloned());
    }
    for b in &blobs {
        let (d, _) = descriptor(b, &format!("{what}: manifest"))?;
        let path = layout_blob(dir, &d)?;
        reg.put_blob_file(&path, Some(&d)).await?;
    }
    let (stored, _) = reg
        .store_manifest(repo, Some(tag), &bytes, Some(media_type))
        .await?;
    Ok(stored)
}

/// The CPU architecture name OCI uses for this host.
fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    }
}

/// Resolves a reference to an image manifest, following an index to this host's platform.
async fn image_manifest(reg: &Registry, repo: &str, reference: &str) -> Result<Value> {
    let (bytes, media_type, digest) = reg.get_manifest(repo, reference).await?;
    let v: Value = serde_json::from_slice(&bytes).map_err(|e| {
        invalid(
            format!("manifest {repo}@{digest}"),
            format!("not JSON: {e}"),
        )
    })?;
    if media_type != OCI_INDEX && media_type != manifest::DOCKER_LIST {
        return Ok(v);
    }
    let entries = v
        .get("manifests")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let pick = entries
        .iter()
        .find(|e| {
            e.pointer("/platform/os") == Some(&json!("linux"))
                && e.pointer("/platform/architecture") == Some(&json!(oci_arch()))
        })
        .or(if entries.len() == 1 {
            entries.first()
        } else {
            None
        })
        .ok_or_else(|| {
            invalid(
                format!("image {repo}:{reference}"),
                format!("it is an index with no linux/{} image", oci_arch()),
            )
        })?;
    let (child, _) = descriptor(pick, "index entry")?;
    let bytes = reg.read_blob(&child, KIND_BLOB).await?;
    serde_json::from_slice(&bytes)
        .map_err(|e| invalid(format!("manifest {repo}@{child}"), format!("not JSON: {e}")))
}

/// Applies `patch` to an image config (the `config` object inside the image config).
fn apply_patch(config: &mut Value, patch: &ConfigPatch) -> Result<()> {
    if !config.is_object() {
        *config = json!({});
    }
    let obj = config.as_object_mut().expect("made an object above");
    let mut env: Vec<String> = obj
        .get("Env")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|e| e.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    for entry in &patch.env {
        let Some((key, _)) = entry.split_once('=') else {
            return Err(invalid(
                format!("environment entry {entry:?}"),
                "expected KEY=VALUE",
            ));
        };
        let prefix = format!("{key}=");
        match env.iter_mut().find(|e| e.starts_with(&prefix) || *e == key) {
            Some(slot) => *slot = entry.clone(),
            None => env.push(entry.clone()),
        }
    }
    if !env.is_empty() {
        obj.insert("Env".into(), json!(env));
    }
    if let Some(wd) = &patch.working_dir {
        obj.insert("WorkingDir".into(), json!(wd));
    }
    if let Some(cmd) = &patch.cmd {
        obj.insert("Cmd".into(), json!(cmd));
    }
    Ok(())
}

pub(super) async fn append_layer(
    reg: &Registry,
    base_repo: &str,
    base_reference: &str,
    layer: &paas_api::LayerInfo,
    patch: &ConfigPatch,
    repo: &str,
    tag: &str,
) -> Result<String> {
    names::check_repo(repo)?;
    names::check_tag(tag)?;
    digest_hex(&layer.diff_id).map_err(|_| {
        invalid(
            format!("layer diff_id {:?}", layer.diff_id),
            "expected sha256:<64 hex> of the uncompressed tar",
        )
    })?;
    match reg.blob_size(&layer.digest).await? {
        None => {
            return Err(Error::NotFound {
                kind: KIND_BLOB,
                name: layer.digest.clone(),
            })
        }
        Some(s) if s != layer.size => {
            return Err(invalid(
                format!("layer {}", layer.digest),
                format!(
                    "it is {s} bytes in the registry, but the layer info says {}",
                    layer.size
                ),
            ))
        }
        Some(_) => {}
    }
    let base = image_manifest(reg, base_repo, base_reference).await?;
    let base_name = format!("{base_repo}:{base_reference}");
    let (config_digest, _) = descriptor(
        base.get("config").unwrap_or(&Value::Null),
        &format!("manifest of {base_name}"),
    )?;
    let config_bytes = reg.read_blob(&config_digest, KIND_BLOB).await?;
    let mut config: Value = serde_json::from_slice(&config_bytes).map_err(|e| {
        invalid(
            format!("image config of {base_name}"),
            format!("not JSON: {e}"),
        )
    })?;
    let cfg = config
        .as_object_mut()
        .ok_or_else(|| invalid(format!("image config of {base_name}"), "not a JSON object"))?;

    let mut inner = cfg.remove("config").unwrap_or(Value::Null);
    apply_patch(&mut inner, patch)?;
    cfg.insert("config".into(), inner);

    let rootfs = cfg
        .entry("rootfs")
        .or_insert_with(|| json!({"type": "layers", "diff_ids": []}));
    let diff_ids = rootfs
        .as_object_mut()
        .ok_or_else(|| {
            invalid(
                format!("image config of {base_name}"),
                "\"rootfs\" is not an object",
            )
        })?
        .entry("diff_ids")
        .or_insert_with(|| json!([]));
    diff_ids
        .as_array_mut()
        .ok_or_else(|| {
            invalid(
                format!("image config of {base_name}"),
                "\"rootfs.diff_ids\" is not an array",
            )
        })?
        .push(json!(layer.diff_id));

    let history = cfg.entry("history").or_insert_with(|| json!([]));
    if let Some(h) = history.as_array_mut() {
        h.push(json!({
            "created_by": "paas: app layer",
            "comment": format!("{} built on {base_name}", layer.digest),
        }));
    }
    let new_config = serde_json::to_vec(&config).expect("JSON values serialize");
    let new_config_digest = reg.put_blob(&new_config).await?;

    let mut layers: Vec<Value> = base
        .get("layers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    for l in &mut layers {
        let oci_type = match l.get("mediaType").and_then(Value::as_str) {
            Some(DOCKER_LAYER_GZIP) => Some(OCI_LAYER_GZIP),
            Some("application/vnd.docker.image.rootfs.diff.tar") => Some(OCI_LAYER_TAR),
            _ => None,
        };
        if let (Some(t), Some(o)) = (oci_type, l.as_object_mut()) {
            o.insert("mediaType".into(), json!(t));
        }
    }
    layers.push(json!({
        "mediaType": OCI_LAYER_GZIP,
        "digest": layer.digest,
        "size": layer.size,
    }));
    let mut m = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "digest": new_config_digest,
            "size": new_config.len(),
        },
        "layers": layers,
    });
    if let Some(a) = base.get("annotations") {
        m["annotations"] = a.clone();
    }
    let bytes = serde_json::to_vec(&m).expect("JSON values serialize");
    let (digest, _) = reg
        .store_manifest(repo, Some(tag), &bytes, Some(OCI_MANIFEST))
        .await?;
    Ok(digest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_merges_by_key() {
        let mut c = json!({"Env": ["PATH=/bin", "A=1"], "Cmd": ["sh"]});
        let patch = ConfigPatch {
            env: vec!["A=2".into(), "B=3".into()],
            working_dir: Some("/app".into()),
            cmd: Some(vec!["run".into()]),
        };
        apply_patch(&mut c, &patch).unwrap();
        assert_eq!(
            c,
            json!({"Env": ["PATH=/bin", "A=2", "B=3"], "Cmd": ["run"], "WorkingDir": "/app"})
        );
        let mut none = Value::Null;
        apply_patch(&mut none, &ConfigPatch::default()).unwrap();
        assert_eq!(none, json!({}));
        let bad = ConfigPatch {
            env: vec!["NOEQUALS".into()],
            ..Default::default()
        };
        assert!(apply_patch(&mut none, &bad).is_err());
    }
}
