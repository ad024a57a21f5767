//! OCI image layouts on disk for tests that push with skopeo: a copy of the tiny stack
//! whose Cmd serves a page, and the blob and JSON helpers to edit a layout by hand.

use std::path::Path;
use std::process::Command;

use crate::stacks_dir;

/// The JSON file at `path`.
pub fn read_json(path: &Path) -> serde_json::Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// Stores `bytes` as a blob of the layout at `dir`; returns its sha256 hex.
pub fn put_blob(dir: &Path, bytes: &[u8]) -> String {
    let tmp = dir.join("blob.tmp");
    std::fs::write(&tmp, bytes).unwrap();
    let out = Command::new("sha256sum").arg(&tmp).output().unwrap();
    assert!(out.status.success());
    let hex = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string();
    std::fs::rename(&tmp, dir.join("blobs/sha256").join(&hex)).unwrap();
    hex
}

/// Makes `dir` an OCI layout of the tiny stack with a Cmd serving `page` on $PORT; its
/// one manifest is annotated with `ref_name` when given. Returns the config digest.
pub fn serving_layout(dir: &Path, page: &str, ref_name: Option<&str>) -> String {
    let status = Command::new("cp")
        .arg("-rL")
        .arg(stacks_dir().join("tiny"))
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
    let blobs = dir.join("blobs/sha256");
    let mut index = read_json(&dir.join("index.json"));
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut manifest = read_json(&blobs.join(mdigest.trim_start_matches("sha256:")));
    let cdigest = manifest["config"]["digest"].as_str().unwrap().to_string();
    let mut config = read_json(&blobs.join(cdigest.trim_start_matches("sha256:")));
    config["config"]["Cmd"] = serde_json::json!([
        "/bin/sh",
        "-c",
        format!("mkdir -p /tmp/w && echo {page} > /tmp/w/index.html && exec httpd -f -p $PORT -h /tmp/w")
    ]);
    let cbytes = serde_json::to_vec(&config).unwrap();
    let chex = put_blob(dir, &cbytes);
    manifest["config"]["digest"] = format!("sha256:{chex}").into();
    manifest["config"]["size"] = cbytes.len().into();
    let mbytes = serde_json::to_vec(&manifest).unwrap();
    let mhex = put_blob(dir, &mbytes);
    let mut entry = serde_json::json!({
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{mhex}"),
        "size": mbytes.len(),
    });
    if let Some(name) = ref_name {
        entry["annotations"] = serde_json::json!({ "org.opencontainers.image.ref.name": name });
    }
    index["manifests"] = serde_json::json!([entry]);
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
    format!("sha256:{chex}")
}
