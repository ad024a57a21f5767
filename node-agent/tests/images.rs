//! Image pulls against a fake registry (no root): layers cached by digest, fetched once
//! even by concurrent pulls, digests checked, config read, errors clear.

mod common;

use common::{gzip, sha256, FakeRegistry, TarBuilder};
use paas_api::ImageRef;
use paas_node_agent::images::{ImageError, ImageStore};

const TOKEN: &str = "registry-token";

fn layer_tar() -> Vec<u8> {
    TarBuilder::new()
        .dir("bin/")
        .file("bin/hello", b"#!/bin/sh\necho hi\n", 0o755)
        .symlink("bin/hi", "hello")
        .finish()
}

async fn setup() -> (tempfile::TempDir, FakeRegistry, ImageStore) {
    let dir = tempfile::tempdir().unwrap();
    let registry = FakeRegistry::start(TOKEN).await;
    registry.add_image(
        "stacks/tiny",
        "latest",
        &layer_tar(),
        serde_json::json!({"config": {"Env": ["A=1"], "Entrypoint": ["/bin/hello"], "Cmd": ["x"],
                                      "WorkingDir": "/w", "User": "0:0"}}),
    );
    let store = ImageStore::open(
        dir.path().join("layers"),
        reqwest::Client::new(),
        TOKEN.to_string(),
    )
    .unwrap();
    (dir, registry, store)
}

fn image(registry: &FakeRegistry, reference: &str) -> ImageRef {
    ImageRef {
        registry: registry.url.clone(),
        repository: "stacks/tiny".into(),
        reference: reference.into(),
    }
}

#[tokio::test]
async fn pulls_unpack_once_and_read_the_config() {
    let (_dir, registry, store) = setup().await;
    let img = store.pull(&image(&registry, "latest")).await.unwrap();
    assert_eq!(img.layers.len(), 1);
    let layer = &img.layers[0];
    assert_eq!(
        std::fs::read(layer.join("bin/hello")).unwrap(),
        b"#!/bin/sh\necho hi\n"
    );
    assert_eq!(
        std::fs::read_link(layer.join("bin/hi")).unwrap().to_str(),
        Some("hello")
    );
    assert_eq!(img.config.env, vec!["A=1"]);
    assert_eq!(img.config.entrypoint, vec!["/bin/hello"]);
    assert_eq!(img.config.cmd, vec!["x"]);
    assert_eq!(img.config.working_dir.as_deref(), Some("/w"));
    assert_eq!(img.config.user.as_deref(), Some("0:0"));
    let layer_digest = sha256(&gzip(&layer_tar()));
    assert_eq!(
        layer.file_name().unwrap().to_str().unwrap(),
        layer_digest.trim_start_matches("sha256:")
    );

    // Again, and concurrently, also by manifest digest: the layer is not fetched again.
    let manifest_digest = {
        let s = registry.state.lock().unwrap();
        s.manifests
            .keys()
            .find(|(_, r)| r.starts_with("sha256:"))
            .unwrap()
            .1
            .clone()
    };
    let (by_tag, by_digest) = (
        image(&registry, "latest"),
        image(&registry, &manifest_digest),
    );
    let (a, b) = tokio::join!(store.pull(&by_tag), store.pull(&by_digest));
    assert_eq!(a.unwrap().layers, img.layers);
    assert_eq!(b.unwrap().layers, img.layers);
    assert_eq!(registry.state.lock().unwrap().blob_gets[&layer_digest], 1);
}

#[tokio::test]
async fn concurrent_first_pulls_download_a_layer_once() {
    let (_dir, registry, store) = setup().await;
    let refs: Vec<ImageRef> = (0..4).map(|_| image(&registry, "latest")).collect();
    let pulls = futures_util::future::join_all(refs.iter().map(|r| store.pull(r))).await;
    for p in pulls {
        p.unwrap();
    }
    let layer_digest = sha256(&gzip(&layer_tar()));
    assert_eq!(registry.state.lock().unwrap().blob_gets[&layer_digest], 1);
}

#[tokio::test]
async fn a_corrupt_blob_is_refused_and_leaves_nothing() {
    let (dir, registry, store) = setup().await;
    let layer_digest = sha256(&gzip(&layer_tar()));
    registry
        .state
        .lock()
        .unwrap()
        .blobs
        .insert(layer_digest.clone(), gzip(b"not the layer"));
    let err = store.pull(&image(&registry, "latest")).await.unwrap_err();
    assert!(matches!(err, ImageError::DigestMismatch { .. }), "{err}");
    assert!(err.to_string().contains(&layer_digest), "{err}");
    let left: Vec<_> = std::fs::read_dir(dir.path().join("layers"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn missing_images_and_bad_tokens_say_so() {
    let (dir, registry, _store) = setup().await;
    let err = ImageStore::open(dir.path().join("l2"), reqwest::Client::new(), "bad".into())
        .unwrap()
        .pull(&image(&registry, "latest"))
        .await
        .unwrap_err();
    assert!(err.to_string().starts_with("401 Unauthorized"), "{err}");
    let store =
        ImageStore::open(dir.path().join("l3"), reqwest::Client::new(), TOKEN.into()).unwrap();
    let err = store.pull(&image(&registry, "v9")).await.unwrap_err();
    assert!(err.to_string().contains("404 Not Found"), "{err}");
    assert!(err.to_string().contains("manifest v9"), "{err}");
}
