//! The registry over a real socket with reqwest, the way the node agent uses it: bearer
//! token, streamed monolithic push of a layer, HEAD/GET of manifests and blobs.

mod support;

use futures_util::StreamExt;
use paas_registry::{routes, Registry};
use support::{auth, sha, TOKEN};

#[tokio::test]
async fn agent_style_push_and_pull_over_tcp() {
    let tmp = tempfile::tempdir().unwrap();
    let reg = Registry::open(tmp.path().join("registry")).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = routes(reg.clone(), auth());
    let server = tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let client = reqwest::Client::builder().no_proxy().build().unwrap();
    let bearer = format!("Bearer {TOKEN}");

    // A 5 MiB layer pushed as a chunked stream (no Content-Length), like the agent's packer.
    let layer: Vec<u8> = (0..5 * 1024 * 1024).map(|_| rand::random::<u8>()).collect();
    let digest = sha(&layer);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        layer.chunks(100_000).map(|c| Ok(c.to_vec())).collect();
    let resp = client
        .post(format!(
            "{base}/v2/apps/hello/blobs/uploads/?digest={digest}"
        ))
        .header("authorization", &bearer)
        .body(reqwest::Body::wrap_stream(futures_util::stream::iter(
            chunks,
        )))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    assert_eq!(
        resp.headers()["docker-distribution-api-version"],
        "registry/2.0"
    );

    let cfg = support::config(&[sha(b"tar")]);
    // Into this repository: a manifest pushed over HTTP may only name its own repository's
    // blobs (a blob stored for no repository, or another, is refused).
    let resp = client
        .post(format!(
            "{base}/v2/apps/hello/blobs/uploads/?digest={}",
            sha(&cfg)
        ))
        .header("authorization", &bearer)
        .body(cfg.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let manifest = support::manifest(&cfg, std::slice::from_ref(&layer));
    let resp = client
        .put(format!("{base}/v2/apps/hello/manifests/v1"))
        .header("authorization", &bearer)
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(manifest.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);

    let head = client
        .head(format!("{base}/v2/apps/hello/manifests/v1"))
        .header("authorization", &bearer)
        .header(
            "accept",
            "application/vnd.oci.image.manifest.v1+json, \
             application/vnd.docker.distribution.manifest.v2+json",
        )
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        manifest.len().to_string().as_str()
    );
    assert_eq!(
        head.headers()["docker-content-digest"],
        sha(&manifest).as_str()
    );

    let head = client
        .head(format!("{base}/v2/apps/hello/blobs/{digest}"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(
        head.headers()["content-length"],
        layer.len().to_string().as_str()
    );

    let resp = client
        .get(format!("{base}/v2/apps/hello/blobs/{digest}"))
        .header("authorization", &bearer)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut got = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(chunk) = stream.next().await {
        got.extend_from_slice(&chunk.unwrap());
    }
    assert!(got == layer, "pulled layer differs");

    let resp = client
        .get(format!("{base}/v2/apps/hello/blobs/{digest}"))
        .header("authorization", &bearer)
        .header("range", "bytes=5000000-")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 206);
    assert_eq!(&resp.bytes().await.unwrap()[..], &layer[5_000_000..]);

    let resp = client.get(format!("{base}/v2/")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(resp.headers()["www-authenticate"], "Basic realm=\"paas\"");
    server.abort();
}
