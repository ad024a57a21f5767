//! `POST /v1/volumes/{name}/size-limit` (root: real containers write the volume): refused
//! while a running job mounts the volume, a volume under the limit is kept, one over it is
//! emptied and the next job that mounts it finds it empty.

mod common;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use common::{busybox_rootfs_tar, cleanup, config, need_root, unique_names, FakeRegistry};
use paas_api::JobSpec;
use paas_node_agent::{app, jobs, Agent};
use serde_json::{json, Value};
use tower::ServiceExt;

const TOKEN: &str = "volume-token";

async fn size_limit(agent: &Arc<Agent>, name: &str, max: u64) -> (u16, Value) {
    let req = Request::post(format!("/v1/volumes/{name}/size-limit"))
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(Body::from(json!({ "max_bytes": max }).to_string()))
        .unwrap();
    let resp = app(agent.clone()).oneshot(req).await.unwrap();
    let status = resp.status().as_u16();
    let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
        .await
        .unwrap();
    (status, serde_json::from_slice(&body).unwrap())
}

fn spec(registry: &FakeRegistry, id: &str, command: &str) -> JobSpec {
    serde_json::from_value(json!({
        "id": id,
        "image": {"registry": registry.url, "repository": "stacks/tiny", "reference": "latest"},
        "command": ["sh", "-c", command],
        "volumes": [{"name": "cache-7", "path": "/cache"}],
    }))
    .unwrap()
}

async fn wait_final(agent: &Arc<Agent>, id: &str) -> paas_api::JobStatus {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let status = agent.jobs.get(id).unwrap().status();
        if jobs::is_final(status.state) {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "job {id} did not end: {status:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn entries(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.flatten()
                .map(|e| e.file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test]
async fn a_volume_over_its_limit_is_emptied_once_no_job_uses_it() {
    if !need_root("a_volume_over_its_limit_is_emptied_once_no_job_uses_it") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let names = unique_names();
    let registry = FakeRegistry::start(TOKEN).await;
    registry.add_image(
        "stacks/tiny",
        "latest",
        &busybox_rootfs_tar(),
        json!({"config": {"Env": ["PATH=/bin"]}}),
    );
    let agent = Agent::open(config(dir.path(), TOKEN, &names)).unwrap();
    agent.start().await.unwrap();
    struct Guard<'a>(&'a Path, String);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            cleanup(self.0, &self.1);
        }
    }
    let _guard = Guard(dir.path(), names.prefix.clone());

    // 2 MiB written by a job that keeps running.
    let writer = "dd if=/dev/zero of=/cache/blob bs=1024 count=2048 2>/dev/null && \
                  touch /cache/written && sleep 600";
    jobs::create(&agent, spec(&registry, "writer", writer))
        .await
        .unwrap();
    let volume = dir.path().join("volumes/cache-7");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !volume.join("written").exists() {
        assert!(
            Instant::now() < deadline,
            "the job did not write its volume"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = size_limit(&agent, "cache-7", 1 << 20).await;
    assert_eq!(status, 409, "{body}");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("writer"), "{message}");
    assert!(
        volume.join("blob").is_file(),
        "nothing is removed while in use"
    );
    jobs::delete(&agent, "writer").await.unwrap();

    // Under the limit: kept.
    let (status, body) = size_limit(&agent, "cache-7", 10 << 20).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["emptied"], false);
    assert!(body["bytes"].as_u64().unwrap() >= 2 << 20, "{body}");
    // Over it: emptied, and the next job that mounts it finds it empty.
    let (status, body) = size_limit(&agent, "cache-7", 1 << 20).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["emptied"], true, "{body}");
    assert!(!volume.exists());
    assert!(
        entries(&dir.path().join("volumes")).is_empty(),
        "no trash left: {:?}",
        entries(&dir.path().join("volumes"))
    );
    jobs::create(&agent, spec(&registry, "reader", "test ! -e /cache/blob"))
        .await
        .unwrap();
    let status = wait_final(&agent, "reader").await;
    assert_eq!(status.exit.unwrap().code, Some(0), "the cache is empty");
    jobs::delete(&agent, "reader").await.unwrap();

    let (status, body) = size_limit(&agent, "Bad.Name", 1).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("validation_error"))
    );
}

/// The heartbeat's volume meter: a running service's volume is measured by its files (a
/// plain directory: the bounded du walk), a volume no job mounts is not, and a measurement
/// is handed out until the controller took it, then not again before the next one is due.
#[tokio::test]
async fn the_meter_measures_the_volumes_of_the_nodes_services() {
    if !need_root("the_meter_measures_the_volumes_of_the_nodes_services") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let names = unique_names();
    let registry = FakeRegistry::start(TOKEN).await;
    registry.add_image(
        "stacks/tiny",
        "latest",
        &busybox_rootfs_tar(),
        json!({"config": {"Env": ["PATH=/bin"]}}),
    );
    let agent = Agent::open(config(dir.path(), TOKEN, &names)).unwrap();
    agent.start().await.unwrap();
    struct Guard<'a>(&'a Path, String);
    impl Drop for Guard<'_> {
        fn drop(&mut self) {
            cleanup(self.0, &self.1);
        }
    }
    let _guard = Guard(dir.path(), names.prefix.clone());
    // A volume no job mounts (an old build cache): never walked.
    std::fs::create_dir_all(dir.path().join("volumes/cache-3")).unwrap();
    std::fs::write(dir.path().join("volumes/cache-3/big"), vec![1u8; 1 << 20]).unwrap();

    let mut service = spec(
        &registry,
        "db",
        "dd if=/dev/zero of=/cache/table bs=1024 count=3072 2>/dev/null && \
         touch /cache/written && sleep 600",
    );
    service.volumes[0].name = "addon-9".into();
    jobs::create(&agent, service).await.unwrap();
    let volume = dir.path().join("volumes/addon-9");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !volume.join("written").exists() {
        assert!(
            Instant::now() < deadline,
            "the job did not write its volume"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let mut meter = paas_node_agent::volume_use::Meter::default();
    assert!(meter.fresh(&agent).await.is_empty(), "nothing measured yet");
    meter.settle(Duration::from_secs(10)).await;
    let uses = meter.fresh(&agent).await;
    assert_eq!(uses.len(), 1, "{uses:?}");
    assert_eq!(uses[0].name, "addon-9");
    assert!((3 << 20..4 << 20).contains(&uses[0].used_bytes), "{uses:?}");
    assert_eq!(meter.fresh(&agent).await, uses, "sent until delivered");
    meter.delivered();
    assert!(
        meter.fresh(&agent).await.is_empty(),
        "not measured again before it is due"
    );
    jobs::delete(&agent, "db").await.unwrap();
}
