//! The registry's library helpers: OCI layout import, derived images, manifest checks.

mod support;

use paas_registry::{ConfigPatch, Error, Registry};
use serde_json::Value;
use support::{layer, sha, write_layout};

fn open() -> (tempfile::TempDir, Registry) {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(dir.path().join("registry")).unwrap();
    (dir, reg)
}

async fn json_blob(reg: &Registry, digest: &str) -> Value {
    let path = reg.blob_path(digest).expect("blob present");
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[tokio::test]
async fn put_blob_and_blob_path() {
    let (_d, reg) = open();
    let d = reg.put_blob(b"hello").await.unwrap();
    assert_eq!(d, sha(b"hello"));
    let path = reg.blob_path(&d).unwrap();
    assert_eq!(path, reg.root().join("blobs/sha256").join(&d[7..]));
    assert_eq!(std::fs::read(path).unwrap(), b"hello");
    assert_eq!(reg.put_blob(b"hello").await.unwrap(), d, "idempotent");
    assert!(reg.blob_path(&sha(b"other")).is_none());
    assert!(reg.blob_path("sha256:../../etc/passwd").is_none());
}

#[tokio::test]
async fn import_layout_then_pull_it() {
    let (tmp, reg) = open();
    let layout = tmp.path().join("layout");
    std::fs::create_dir_all(&layout).unwrap();
    let l1 = layer(&[("bin/sh", b"#!fake shell")]);
    let l2 = layer(&[("etc/os-release", b"NAME=tiny")]);
    let digest = write_layout(&layout, &[l1.clone(), l2.clone()]);

    let got = reg
        .import_oci_layout(&layout, "stacks/tiny", "latest")
        .await
        .unwrap();
    assert_eq!(got, digest);
    let (bytes, media_type, d) = reg.get_manifest("stacks/tiny", "latest").await.unwrap();
    assert_eq!(d, digest);
    assert_eq!(sha(&bytes), digest);
    assert_eq!(media_type, "application/vnd.oci.image.manifest.v1+json");
    for l in [&l1, &l2] {
        assert_eq!(
            std::fs::read(reg.blob_path(&sha(&l.0)).unwrap()).unwrap(),
            l.0
        );
    }
    assert_eq!(reg.list_tags("stacks/tiny").await.unwrap(), vec!["latest"]);
    let tag_file = reg.root().join("repositories/stacks/tiny/tags/latest");
    assert_eq!(std::fs::read_to_string(tag_file).unwrap(), digest);
}

#[tokio::test]
async fn import_refuses_a_corrupt_layout() {
    let (tmp, reg) = open();
    let layout = tmp.path().join("layout");
    std::fs::create_dir_all(&layout).unwrap();
    let l1 = layer(&[("a", b"a")]);
    write_layout(&layout, std::slice::from_ref(&l1));
    // Corrupt the layer blob: its digest no longer matches.
    let p = layout.join("blobs/sha256").join(&sha(&l1.0)[7..]);
    std::fs::write(&p, b"garbage").unwrap();
    let err = reg
        .import_oci_layout(&layout, "stacks/bad", "latest")
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Invalid { .. }), "{err}");
    assert!(reg.get_manifest("stacks/bad", "latest").await.is_err());

    let err = reg
        .import_oci_layout(&tmp.path().join("nope"), "stacks/bad", "latest")
        .await
        .unwrap_err();
    assert!(err.to_string().contains("oci-layout"), "{err}");
}

#[tokio::test]
async fn append_layer_makes_a_derived_image() {
    let (tmp, reg) = open();
    let layout = tmp.path().join("layout");
    std::fs::create_dir_all(&layout).unwrap();
    let base_layer = layer(&[("bin/sh", b"#!fake")]);
    let base_digest = write_layout(&layout, std::slice::from_ref(&base_layer));
    reg.import_oci_layout(&layout, "stacks/tiny", "latest")
        .await
        .unwrap();

    let (app_gz, app_diff) = layer(&[("app/Procfile", b"web: ./server")]);
    let app_digest = reg.put_blob(&app_gz).await.unwrap();
    let info = paas_api::LayerInfo {
        digest: app_digest.clone(),
        diff_id: app_diff.clone(),
        size: app_gz.len() as u64,
    };
    let patch = ConfigPatch {
        env: vec!["LANG=C.UTF-8".into(), "PORT=5000".into()],
        working_dir: Some("/app".into()),
        cmd: Some(vec!["/bin/sh".into(), "-c".into(), "./server".into()]),
    };
    let new = reg
        .append_layer("stacks/tiny", "latest", &info, &patch, "apps/hello", "v1")
        .await
        .unwrap();
    assert_ne!(new, base_digest);

    let (bytes, media_type, d) = reg.get_manifest("apps/hello", "v1").await.unwrap();
    assert_eq!(d, new);
    assert_eq!(media_type, "application/vnd.oci.image.manifest.v1+json");
    let m: Value = serde_json::from_slice(&bytes).unwrap();
    let layers = m["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 2);
    assert_eq!(layers[0]["digest"], sha(&base_layer.0));
    assert_eq!(layers[1]["digest"], app_digest);
    assert_eq!(
        layers[1]["mediaType"],
        "application/vnd.oci.image.layer.v1.tar+gzip"
    );
    assert_eq!(layers[1]["size"], app_gz.len());
    assert_eq!(
        m["config"]["mediaType"],
        "application/vnd.oci.image.config.v1+json"
    );

    let cfg = json_blob(&reg, m["config"]["digest"].as_str().unwrap()).await;
    assert_eq!(
        cfg["rootfs"]["diff_ids"],
        serde_json::json!([base_layer.1, app_diff])
    );
    assert_eq!(
        cfg["config"]["Env"],
        serde_json::json!(["PATH=/usr/bin:/bin", "LANG=C.UTF-8", "PORT=5000"])
    );
    assert_eq!(cfg["config"]["WorkingDir"], "/app");
    assert_eq!(
        cfg["config"]["Cmd"],
        serde_json::json!(["/bin/sh", "-c", "./server"])
    );
    assert_eq!(cfg["history"].as_array().unwrap().len(), 2);
    assert_eq!(cfg["os"], "linux", "unknown fields survive");
    // The base image is untouched.
    let (_, _, base_again) = reg.get_manifest("stacks/tiny", "latest").await.unwrap();
    assert_eq!(base_again, base_digest);
}

#[tokio::test]
async fn append_layer_needs_the_layer_blob() {
    let (tmp, reg) = open();
    let layout = tmp.path().join("layout");
    std::fs::create_dir_all(&layout).unwrap();
    write_layout(&layout, &[layer(&[("x", b"x")])]);
    reg.import_oci_layout(&layout, "stacks/tiny", "latest")
        .await
        .unwrap();
    let info = paas_api::LayerInfo {
        digest: sha(b"never stored"),
        diff_id: sha(b"tar"),
        size: 12,
    };
    let err = reg
        .append_layer(
            "stacks/tiny",
            "latest",
            &info,
            &ConfigPatch::default(),
            "apps/a",
            "v1",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { kind: "blob", .. }), "{err}");
    let err = reg
        .append_layer(
            "stacks/none",
            "latest",
            &info,
            &ConfigPatch::default(),
            "apps/a",
            "v1",
        )
        .await
        .unwrap_err();
    assert!(matches!(err, Error::NotFound { .. }), "{err}");
}

#[tokio::test]
async fn put_manifest_checks_blobs_and_names() {
    let (_d, reg) = open();
    let cfg = support::config(&[]);
    let m = support::manifest(&cfg, &[]);
    let err = reg
        .put_manifest("apps/a", Some("v1"), &m)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("push it first"), "{err}");
    reg.put_blob(&cfg).await.unwrap();
    let d = reg.put_manifest("apps/a", Some("v1"), &m).await.unwrap();
    assert_eq!(d, sha(&m));
    assert!(reg.put_manifest("../evil", None, &m).await.is_err());
    assert!(reg
        .put_manifest("apps/a", Some("bad tag"), &m)
        .await
        .is_err());
    let (_, _, by_digest) = reg.get_manifest("apps/a", &d).await.unwrap();
    assert_eq!(by_digest, d);
}
