//! Images as the Dockerfile builder reads and writes them in paas's registry: a base
//! image's layers and config (an index is followed to linux/amd64), the image config a
//! plan's [`ImageConfig`] becomes, and new images (OCI manifest + config) made of layers.

use serde_json::{json, Map, Value};

use paas_dockerfile::plan::{Health, ImageConfig};

use crate::registry::{Registry, KIND_BLOB};

/// OCI media types.
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const LAYER_ZSTD: &str = "application/vnd.oci.image.layer.v1.tar+zstd";

/// Why an image could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ImageError {
    #[error("{0}")]
    Registry(#[from] crate::registry::Error),
    #[error("image {name}: {why}")]
    Bad { name: String, why: String },
}

/// One layer of an image.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Layer {
    pub digest: String,
    pub diff_id: String,
    pub size: u64,
    pub media_type: String,
}

/// An image read from the registry.
#[derive(Debug, Clone)]
pub struct Image {
    /// The manifest's digest.
    pub digest: String,
    pub layers: Vec<Layer>,
    /// The whole config blob (architecture, os, config, rootfs, history).
    pub config: Value,
}

fn bad(name: &str, why: impl Into<String>) -> ImageError {
    ImageError::Bad {
        name: name.to_string(),
        why: why.into(),
    }
}

/// Reads `repo:reference` (a tag or digest).
pub async fn read(reg: &Registry, repo: &str, reference: &str) -> Result<Image, ImageError> {
    let name = format!("{repo}:{reference}");
    let (bytes, media_type, mut digest) = reg.get_manifest(repo, reference).await?;
    let mut manifest: Value =
        serde_json::from_slice(&bytes).map_err(|e| bad(&name, format!("manifest: {e}")))?;
    if media_type.contains("index") || media_type.contains("list") {
        let pick = manifest
            .get("manifests")
            .and_then(Value::as_array)
            .and_then(|list| {
                list.iter().find(|m| {
                    m.pointer("/platform/os") == Some(&json!("linux"))
                        && m.pointer("/platform/architecture") == Some(&json!("amd64"))
                })
            })
            .and_then(|m| m.get("digest").and_then(Value::as_str))
            .ok_or_else(|| bad(&name, "it is an index with no linux/amd64 image"))?
            .to_string();
        let bytes = reg.read_blob(&pick, KIND_BLOB).await?;
        manifest =
            serde_json::from_slice(&bytes).map_err(|e| bad(&name, format!("manifest: {e}")))?;
        digest = pick;
    }
    let config_digest = manifest
        .pointer("/config/digest")
        .and_then(Value::as_str)
        .ok_or_else(|| bad(&name, "the manifest has no config"))?;
    let config: Value = serde_json::from_slice(&reg.read_blob(config_digest, KIND_BLOB).await?)
        .map_err(|e| bad(&name, format!("config: {e}")))?;
    let diff_ids: Vec<String> = config
        .pointer("/rootfs/diff_ids")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    let descs = manifest
        .get("layers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if descs.len() != diff_ids.len() {
        return Err(bad(&name, "its manifest and config count different layers"));
    }
    let layers = descs
        .iter()
        .zip(diff_ids)
        .map(|(d, diff_id)| Layer {
            digest: d.get("digest").and_then(Value::as_str).unwrap_or("").into(),
            diff_id,
            size: d.get("size").and_then(Value::as_u64).unwrap_or(0),
            media_type: d
                .get("mediaType")
                .and_then(Value::as_str)
                .unwrap_or(LAYER_GZIP)
                .replace(
                    "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    LAYER_GZIP,
                ),
        })
        .collect();
    Ok(Image {
        digest,
        layers,
        config,
    })
}

fn strings(v: Option<&Value>) -> Option<Vec<String>> {
    v.and_then(Value::as_array).map(|a| {
        a.iter()
            .filter_map(|s| s.as_str().map(String::from))
            .collect()
    })
}

/// The Dockerfile view of an image config blob.
pub fn to_plan_config(config: &Value) -> ImageConfig {
    let c = config.get("config").cloned().unwrap_or(Value::Null);
    let keys = |k: &str| -> Vec<String> {
        c.get(k)
            .and_then(Value::as_object)
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    let ns = |k: &str, h: &Value| h.get(k).and_then(Value::as_u64).map(|n| n / 1_000_000_000);
    ImageConfig {
        env: strings(c.get("Env")).unwrap_or_default(),
        cmd: strings(c.get("Cmd")),
        entrypoint: strings(c.get("Entrypoint")),
        working_dir: c
            .get("WorkingDir")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .unwrap_or("/")
            .to_string(),
        user: c.get("User").and_then(Value::as_str).unwrap_or("").into(),
        exposed_ports: keys("ExposedPorts"),
        labels: c
            .get("Labels")
            .and_then(Value::as_object)
            .map(|o| {
                o.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                    .collect()
            })
            .unwrap_or_default(),
        stop_signal: c
            .get("StopSignal")
            .and_then(Value::as_str)
            .map(String::from),
        volumes: keys("Volumes"),
        healthcheck: c.get("Healthcheck").map(|h| Health {
            test: strings(h.get("Test")).unwrap_or_default(),
            interval_secs: ns("Interval", h),
            timeout_secs: ns("Timeout", h),
            start_period_secs: ns("StartPeriod", h),
            retries: h.get("Retries").and_then(Value::as_u64).map(|n| n as u32),
        }),
    }
}

/// The OCI `config` object of a plan's config.
fn from_plan_config(c: &ImageConfig) -> Value {
    let mut o = Map::new();
    o.insert("Env".into(), json!(c.env));
    if let Some(cmd) = &c.cmd {
        o.insert("Cmd".into(), json!(cmd));
    }
    if let Some(e) = &c.entrypoint {
        o.insert("Entrypoint".into(), json!(e));
    }
    o.insert("WorkingDir".into(), json!(c.working_dir));
    if !c.user.is_empty() {
        o.insert("User".into(), json!(c.user));
    }
    if !c.exposed_ports.is_empty() {
        let ports: Map<String, Value> = c
            .exposed_ports
            .iter()
            .map(|p| (p.clone(), json!({})))
            .collect();
        o.insert("ExposedPorts".into(), Value::Object(ports));
    }
    if !c.labels.is_empty() {
        o.insert("Labels".into(), json!(c.labels));
    }
    if let Some(s) = &c.stop_signal {
        o.insert("StopSignal".into(), json!(s));
    }
    if !c.volumes.is_empty() {
        let v: Map<String, Value> = c.volumes.iter().map(|p| (p.clone(), json!({}))).collect();
        o.insert("Volumes".into(), Value::Object(v));
    }
    if let Some(h) = &c.healthcheck {
        let mut hc = Map::new();
        hc.insert("Test".into(), json!(h.test));
        let ns = |s: u64| json!(s * 1_000_000_000);
        if let Some(s) = h.interval_secs {
            hc.insert("Interval".into(), ns(s));
        }
        if let Some(s) = h.timeout_secs {
            hc.insert("Timeout".into(), ns(s));
        }
        if let Some(s) = h.start_period_secs {
            hc.insert("StartPeriod".into(), ns(s));
        }
        if let Some(r) = h.retries {
            hc.insert("Retries".into(), json!(r));
        }
        o.insert("Healthcheck".into(), Value::Object(hc));
    }
    Value::Object(o)
}

/// Stores an image of `layers` with `config` (over `base`'s config blob: architecture, os,
/// history) in `repo`, tagged `tag` when given. Returns the manifest digest.
pub async fn write(
    reg: &Registry,
    repo: &str,
    tag: Option<&str>,
    base: &Value,
    layers: &[Layer],
    config: &ImageConfig,
    history: &[String],
) -> Result<String, ImageError> {
    let mut blob = match base {
        Value::Object(o) => o.clone(),
        _ => Map::new(),
    };
    blob.entry("architecture").or_insert(json!("amd64"));
    blob.entry("os").or_insert(json!("linux"));
    blob.insert("config".into(), from_plan_config(config));
    blob.insert(
        "rootfs".into(),
        json!({"type": "layers", "diff_ids": layers.iter().map(|l| &l.diff_id).collect::<Vec<_>>()}),
    );
    let mut hist = blob
        .get("history")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    hist.extend(history.iter().map(|h| json!({"created_by": h})));
    blob.insert("history".into(), Value::Array(hist));
    let config_bytes = serde_json::to_vec(&Value::Object(blob)).expect("JSON serializes");
    let config_digest = reg.put_blob(&config_bytes).await?;
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, "digest": config_digest, "size": config_bytes.len()},
        "layers": layers.iter().map(|l| json!({
            "mediaType": l.media_type, "digest": l.digest, "size": l.size,
        })).collect::<Vec<_>>(),
    });
    let bytes = serde_json::to_vec(&manifest).expect("JSON serializes");
    Ok(reg.put_manifest(repo, tag, &bytes).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plan_config_round_trips_through_the_oci_config() {
        let c = ImageConfig {
            env: vec!["PATH=/bin".into(), "A=b c".into()],
            cmd: Some(vec!["/bin/app".into()]),
            entrypoint: Some(vec!["/entry".into()]),
            working_dir: "/srv".into(),
            user: "app".into(),
            exposed_ports: vec!["8080/tcp".into()],
            labels: [("k".to_string(), "v".to_string())].into(),
            stop_signal: Some("SIGINT".into()),
            volumes: vec!["/data".into()],
            healthcheck: Some(Health {
                test: vec!["CMD-SHELL".into(), "true".into()],
                interval_secs: Some(5),
                timeout_secs: None,
                start_period_secs: None,
                retries: Some(2),
            }),
        };
        let blob = json!({"config": from_plan_config(&c)});
        assert_eq!(to_plan_config(&blob), c);
        assert_eq!(to_plan_config(&json!({})).working_dir, "/");
    }
}
