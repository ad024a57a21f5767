//! A real client against the registry: `skopeo copy` pushes an OCI layout to the `/v2/` API
//! served on a loopback port and pulls it back. Skips when skopeo is missing, except under
//! `CI=true`, where that is a failure.

mod support;

use std::path::Path;
use std::process::Stdio;

use paas_registry::{routes, Registry};
use support::{auth, layer, sha, write_layout, TOKEN};

fn skopeo_available() -> bool {
    let found = std::process::Command::new("skopeo")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !found {
        if std::env::var("CI").as_deref() == Ok("true") {
            panic!("skopeo is not installed; CI must install it (apt-get install -y skopeo)");
        }
        eprintln!("skipping: skopeo is not installed (apt-get install -y skopeo)");
    }
    found
}

async fn skopeo(args: &[&str], home: &Path) {
    let out = tokio::process::Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .env("HOME", home)
        .env("REGISTRY_AUTH_FILE", home.join("auth.json"))
        .output()
        .await
        .expect("run skopeo");
    assert!(
        out.status.success(),
        "skopeo {args:?} failed:\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn blobs(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir.join("blobs/sha256"))
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    out.sort();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_push_and_pull_round_trip() {
    if !skopeo_available() {
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::open(tmp.path().join("registry")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let app = routes(reg.clone(), auth());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    // An image with a small layer and a 3 MiB incompressible one (several upload chunks).
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    let big: Vec<u8> = (0..3 * 1024 * 1024).map(|_| rand::random::<u8>()).collect();
    let layers = [
        layer(&[("etc/hostname", b"tiny")]),
        layer(&[("usr/lib/big.bin", &big)]),
    ];
    let digest = write_layout(&src, &layers);
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    let creds = format!("u:{TOKEN}");
    let remote = format!("docker://127.0.0.1:{port}/test/img:v1");

    skopeo(
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
            &format!("oci:{}:latest", src.display()),
            &remote,
        ],
        &home,
    )
    .await;
    let (_, _, pushed) = reg.get_manifest("test/img", "v1").await.unwrap();
    assert_eq!(pushed, digest, "skopeo kept the manifest as it was");
    for (gz, _) in &layers {
        assert!(reg.blob_path(&sha(gz)).is_some());
    }

    // Pushing again finds every blob present (HEAD) and must still succeed.
    skopeo(
        &[
            "copy",
            "--dest-tls-verify=false",
            "--dest-creds",
            &creds,
            &format!("oci:{}:latest", src.display()),
            &format!("docker://127.0.0.1:{port}/test/img:v2"),
        ],
        &home,
    )
    .await;

    let dst = tmp.path().join("dst");
    skopeo(
        &[
            "copy",
            "--src-tls-verify=false",
            "--src-creds",
            &creds,
            &remote,
            &format!("oci:{}:latest", dst.display()),
        ],
        &home,
    )
    .await;
    let (a, b) = (blobs(&src), blobs(&dst));
    assert_eq!(
        a.iter().map(|x| &x.0).collect::<Vec<_>>(),
        b.iter().map(|x| &x.0).collect::<Vec<_>>()
    );
    assert!(a == b, "pulled blobs differ from the pushed ones");

    // Wrong credentials are refused.
    let out = tokio::process::Command::new("skopeo")
        .args([
            "--insecure-policy",
            "inspect",
            "--tls-verify=false",
            "--creds",
            "u:wrong",
            &remote,
        ])
        .env("HOME", &home)
        .env("REGISTRY_AUTH_FILE", home.join("auth.json"))
        .output()
        .await
        .unwrap();
    assert!(
        !out.status.success(),
        "skopeo inspect with a wrong token succeeded"
    );
    server.abort();
}
