//! What the loop feeds [`super::plan`] beyond the store's rows: the layer digests of a
//! release's image (read from the controller's own registry) and the nodes as the planner
//! sees them (up, draining, memory, cached layers).

use std::collections::{BTreeSet, HashMap};

use super::NodeInfo;
use crate::registry::Registry;
use crate::state::NodeLive;
use crate::store::NodeRow;

/// The layer digests of `image` (`<repository>@sha256:…` or `<repository>:<tag>`), in
/// manifest order; empty when the manifest cannot be read (then no node is preferred).
pub async fn image_layers(registry: &Registry, image: &str) -> Vec<String> {
    let (repo, reference) = match image.split_once('@') {
        Some((r, d)) => (r, d),
        None => image.rsplit_once(':').unwrap_or((image, "latest")),
    };
    let Ok((bytes, _, _)) = registry.get_manifest(repo, reference).await else {
        return Vec::new();
    };
    #[derive(serde::Deserialize)]
    struct Manifest {
        #[serde(default)]
        layers: Vec<Descriptor>,
    }
    #[derive(serde::Deserialize)]
    struct Descriptor {
        digest: String,
    }
    serde_json::from_slice::<Manifest>(&bytes)
        .map(|m| m.layers.into_iter().map(|d| d.digest).collect())
        .unwrap_or_default()
}

/// The planner's view of the nodes: `up` says whether a node heartbeats, `silent` whether
/// its agent did not answer this pass (it then gets nothing new).
pub fn node_infos(
    rows: &[NodeRow],
    up: &dyn Fn(&str) -> bool,
    silent: &dyn Fn(&str) -> bool,
    draining: &BTreeSet<String>,
    live: &HashMap<String, NodeLive>,
) -> Vec<NodeInfo> {
    rows.iter()
        .map(|n| NodeInfo {
            name: n.name.clone(),
            up: up(&n.name),
            silent: silent(&n.name),
            draining: draining.contains(&n.name),
            memory_bytes: n.memory_bytes,
            layers: live
                .get(&n.name)
                .map(|l| l.layers.clone())
                .unwrap_or_default(),
        })
        .collect()
}
