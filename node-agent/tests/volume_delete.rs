//! `DELETE /v1/volumes/{name}`: a destroyed app's build cache goes from the node with
//! everything in it, only that volume, only with the agent's credential, and nothing
//! outside `<state-dir>/volumes/` can be named (no root); a volume a running job mounts is
//! refused until the job ends (root: a real container).

mod common;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use common::{busybox_rootfs_tar, cleanup, config, need_root, unique_names, FakeRegistry};
use paas_node_agent::{app, Agent};
use tower::ServiceExt;

const TOKEN: &str = "volume-test-token";

async fn delete(
    agent: &std::sync::Arc<Agent>,
    name: &str,
    token: &str,
) -> (StatusCode, serde_json::Value) {
    let req = Request::builder()
        .method("DELETE")
        .uri(format!("/v1/volumes/{name}"))
        .header("authorization", format!("Bearer {token}"))
        .body(Body::empty())
        .unwrap();
    let resp = app(agent.clone()).oneshot(req).await.unwrap();
    let status = resp.status();
    let bytes = axum::body::to_bytes(resp.into_body(), usize::MAX)
        .await
        .unwrap();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn a_volume_is_deleted_whole_and_nothing_else() {
    let dir = tempfile::tempdir().unwrap();
    let agent = Agent::open(config(dir.path(), TOKEN, &unique_names())).unwrap();
    let volumes = dir.path().join("volumes");
    let cache = volumes.join("cache-7");
    std::fs::create_dir_all(cache.join("node_modules/.bin")).unwrap();
    std::fs::write(cache.join(".npmrc"), "//registry/:_authToken=secret").unwrap();
    std::fs::create_dir_all(volumes.join("cache-8")).unwrap();
    std::fs::write(dir.path().join("keep"), "outside the volumes").unwrap();

    // Without the agent's token: 401, nothing removed.
    let (status, _) = delete(&agent, "cache-7", "wrong").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(cache.join(".npmrc").exists());

    // Names that are not volume names never reach the disk.
    for bad in [
        "..",
        ".",
        "Cache-7",
        "-x",
        ".deleting-x",
        "a%2F..%2F..%2Fkeep",
    ] {
        let (status, body) = delete(&agent, bad, TOKEN).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("not a volume name"),
            "{body}"
        );
    }
    assert!(dir.path().join("keep").exists());

    let (status, body) = delete(&agent, "cache-7", TOKEN).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(!cache.exists(), "the volume and its files are gone");
    assert!(volumes.join("cache-8").is_dir(), "other volumes stay");
    let left: Vec<_> = std::fs::read_dir(&volumes)
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(left, vec![std::ffi::OsString::from("cache-8")]);

    let (status, body) = delete(&agent, "cache-7", TOKEN).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("no volume cache-7"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_volume_a_running_job_mounts_is_kept_until_it_ends() {
    if !need_root("a_volume_a_running_job_mounts_is_kept_until_it_ends") {
        return;
    }
    let names = unique_names();
    let dir = tempfile::tempdir().unwrap();
    struct Cleanup(std::path::PathBuf, String);
    impl Drop for Cleanup {
        fn drop(&mut self) {
            cleanup(&self.0, &self.1);
        }
    }
    let _cleanup = Cleanup(dir.path().to_path_buf(), names.prefix.clone());
    let registry = FakeRegistry::start(TOKEN).await;
    registry.add_image(
        "stacks/tiny",
        "latest",
        &busybox_rootfs_tar(),
        serde_json::json!({"architecture": "amd64", "os": "linux",
                           "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]}}),
    );
    let agent = Agent::open(config(dir.path(), TOKEN, &names)).unwrap();
    agent.start().await.unwrap();
    let spec = serde_json::json!({
        "id": "build-vol",
        "image": {"registry": registry.url, "repository": "stacks/tiny", "reference": "latest"},
        "command": ["/bin/sh", "-c", "echo cached > /cache/c; sleep 30"],
        "volumes": [{"name": "cache-9", "path": "/cache"}],
    });
    let req = Request::builder()
        .method("POST")
        .uri("/v1/jobs")
        .header("authorization", format!("Bearer {TOKEN}"))
        .header("content-type", "application/json")
        .body(Body::from(spec.to_string()))
        .unwrap();
    let resp = app(agent.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);

    let (status, body) = delete(&agent, "cache-9", TOKEN).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("build-vol"));
    assert!(dir.path().join("volumes/cache-9").is_dir());

    let req = Request::builder()
        .method("DELETE")
        .uri("/v1/jobs/build-vol")
        .header("authorization", format!("Bearer {TOKEN}"))
        .body(Body::empty())
        .unwrap();
    let resp = app(agent.clone()).oneshot(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let (status, body) = delete(&agent, "cache-9", TOKEN).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    assert!(!dir.path().join("volumes/cache-9").exists());
}
