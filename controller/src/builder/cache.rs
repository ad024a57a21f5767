//! The per-app build cache cap (`--max-cache-bytes`): after every build job (whatever its
//! outcome, once the job is deleted) the node that ran it measures the app's cache volume
//! and empties it when it holds more than the limit; the push says so, and the next build
//! starts cold. The volume is the one the build's JobSpec mounts at `/cache`.

use paas_api::JobSpec;

use super::limits::human_bytes;
use super::Output;
use crate::state::Controller;

/// Where a build job mounts the app's cache volume.
const CACHE_PATH: &str = "/cache";

/// Asks the build's node to empty the cache volume of `spec` if it is over `max` bytes,
/// and tells the pusher when it was. A node that cannot say (an older agent, an error) is
/// logged, never fails the build.
pub(super) async fn enforce_limit(
    c: &Controller,
    node_url: &str,
    spec: &JobSpec,
    max: u64,
    out: &mut Output,
) {
    let Some(volume) = spec.volumes.iter().find(|v| v.path == CACHE_PATH) else {
        return;
    };
    match c
        .agents
        .volume_size_limit(node_url, &volume.name, max)
        .await
    {
        Ok(usage) if usage.emptied => {
            tracing::info!(
                volume = %volume.name,
                bytes = usage.bytes,
                max,
                "build cache over --max-cache-bytes: emptied"
            );
            out.line(format!(
                "-----> The build cache holds {}, more than the limit of {} (the controller's \
                 --max-cache-bytes): it was emptied, so the next build starts cold.",
                human_bytes(usage.bytes),
                human_bytes(max)
            ))
            .await;
        }
        Ok(usage) => {
            tracing::debug!(volume = %volume.name, bytes = usage.bytes, max, "build cache size")
        }
        Err(e) => tracing::warn!(
            volume = %volume.name,
            "could not check the build cache's size on {node_url}: {e}"
        ),
    }
}
