//! Hostile pushes to the registry over its real HTTP routes: blobs past the size cap,
//! digests that do not match, chunks out of order, manifests of the wrong type or naming
//! missing blobs, and repository names that try to leave the store. Each gets the
//! distribution spec's error code and leaves no blob, upload or tag behind.

mod support;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use paas_registry::{routes, Registry};
use support::{auth, sha, TOKEN};
use tower::ServiceExt;

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
const CAP: u64 = 1000;

struct Env {
    dir: tempfile::TempDir,
    app: axum::Router,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(dir.path().join("registry"))
        .unwrap()
        .with_max_blob_bytes(CAP);
    let app = routes(reg, auth());
    Env { dir, app }
}

impl Env {
    /// Files in a store directory (`uploads`, `blobs/sha256`).
    fn files(&self, sub: &str) -> Vec<String> {
        match std::fs::read_dir(self.dir.path().join("registry").join(sub)) {
            Ok(rd) => rd
                .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect(),
            Err(_) => vec![],
        }
    }
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn code(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {:?}", self.body));
        v["errors"][0]["code"].as_str().unwrap().to_string()
    }

    fn message(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body).unwrap();
        v["errors"][0]["message"].as_str().unwrap().to_string()
    }

    fn location(&self) -> String {
        self.headers["location"].to_str().unwrap().to_string()
    }
}

async fn call(env: &Env, method: &str, uri: &str, headers: &[(&str, &str)], body: Body) -> Reply {
    let mut req = Request::builder()
        .method(method)
        .uri(uri)
        .header("authorization", format!("Bearer {TOKEN}"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = env
        .app
        .clone()
        .oneshot(req.body(body).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let body = resp
        .into_body()
        .collect()
        .await
        .unwrap()
        .to_bytes()
        .to_vec();
    Reply {
        status,
        headers,
        body,
    }
}

/// A body without a Content-Length (as a chunked request), in 100-byte pieces.
fn streamed(bytes: Vec<u8>) -> Body {
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        bytes.chunks(100).map(|c| Ok(c.to_vec())).collect();
    Body::from_stream(futures_util::stream::iter(chunks))
}

async fn start(env: &Env) -> String {
    let r = call(env, "POST", "/v2/apps/x/blobs/uploads/", &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    r.location()
}

#[tokio::test]
async fn blobs_past_the_cap_get_413_and_leave_nothing() {
    let env = env();
    let big = vec![7u8; CAP as usize + 1];
    let d = sha(&big);
    // Monolithic with a Content-Length: refused before reading.
    let uri = format!("/v2/apps/x/blobs/uploads/?digest={d}");
    let len = big.len().to_string();
    let r = call(
        &env,
        "POST",
        &uri,
        &[("content-length", &len)],
        Body::from(big.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(r.code(), "SIZE_INVALID");
    assert!(r.message().contains("1000 bytes") && r.message().contains("--max-blob-bytes"));
    // Monolithic streamed: refused while counting.
    let r = call(&env, "POST", &uri, &[], streamed(big.clone())).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE, "{:?}", r.body);
    // Chunked: the PATCH that passes the cap removes the upload.
    let loc = start(&env).await;
    let r = call(&env, "PATCH", &loc, &[], streamed(vec![1; 600])).await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let r = call(&env, "PATCH", &loc, &[], streamed(vec![1; 600])).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    let r = call(&env, "GET", &loc, &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "BLOB_UPLOAD_UNKNOWN");
    // The same with a Content-Length on the PATCH.
    let loc = start(&env).await;
    let r = call(
        &env,
        "PATCH",
        &loc,
        &[("content-length", "1001")],
        Body::from(vec![1; 1001]),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // And on the closing PUT.
    let loc = start(&env).await;
    let sep = if loc.contains('?') { '&' } else { '?' };
    let put = format!("{loc}{sep}digest={d}");
    let r = call(&env, "PUT", &put, &[], streamed(big.clone())).await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(env.files("uploads"), Vec::<String>::new());
    assert_eq!(env.files("blobs/sha256"), Vec::<String>::new());
    // Exactly the cap is fine.
    let ok = vec![3u8; CAP as usize];
    let uri = format!("/v2/apps/x/blobs/uploads/?digest={}", sha(&ok));
    let r = call(&env, "POST", &uri, &[], streamed(ok)).await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn digest_mismatch_after_chunks_leaves_no_blob_and_no_upload() {
    let env = env();
    let loc = start(&env).await;
    let r = call(
        &env,
        "PATCH",
        &loc,
        &[],
        Body::from(b"real content".to_vec()),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let sep = if loc.contains('?') { '&' } else { '?' };
    let claimed = sha(b"something else");
    let r = call(
        &env,
        "PUT",
        &format!("{loc}{sep}digest={claimed}"),
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "DIGEST_INVALID");
    assert_eq!(env.files("uploads"), Vec::<String>::new());
    assert_eq!(env.files("blobs/sha256"), Vec::<String>::new());
    // A digest that is not even a digest.
    for bad in ["sha256:zz", "md5:abc", "sha256:../../etc/passwd"] {
        let uri = format!("/v2/apps/x/blobs/uploads/?digest={bad}");
        let r = call(&env, "POST", &uri, &[], Body::from(b"x".to_vec())).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.code(), "DIGEST_INVALID", "{bad}");
    }
}

#[tokio::test]
async fn chunks_out_of_order_get_416_and_change_nothing() {
    let env = env();
    let loc = start(&env).await;
    let r = call(
        &env,
        "PATCH",
        &loc,
        &[("content-range", "0-4")],
        Body::from(b"hello".to_vec()),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    for range in ["10-14", "2-6", "0-4", "bytes=x-y"] {
        let r = call(
            &env,
            "PATCH",
            &loc,
            &[("content-range", range)],
            Body::from(b"WORLD".to_vec()),
        )
        .await;
        assert_eq!(r.status, StatusCode::RANGE_NOT_SATISFIABLE, "{range}");
        assert_eq!(r.headers["range"], "0-4", "{range}");
    }
    let r = call(
        &env,
        "PATCH",
        &loc,
        &[("content-range", "5-9")],
        Body::from(b"there".to_vec()),
    )
    .await;
    assert_eq!(r.status, StatusCode::ACCEPTED);
    let sep = if loc.contains('?') { '&' } else { '?' };
    let d = sha(b"hellothere");
    let r = call(
        &env,
        "PUT",
        &format!("{loc}{sep}digest={d}"),
        &[],
        Body::empty(),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "only the in-order chunks were kept"
    );
}

async fn push(env: &Env, bytes: &[u8]) {
    let uri = format!("/v2/apps/x/blobs/uploads/?digest={}", sha(bytes));
    let r = call(env, "POST", &uri, &[], Body::from(bytes.to_vec())).await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn wrong_manifests_are_refused_and_tag_nothing() {
    let env = env();
    let cfg = support::config(&[]);
    let layer = b"a layer".to_vec();
    push(&env, &cfg).await;
    push(&env, &layer).await;
    let good = support::manifest(&cfg, std::slice::from_ref(&layer));
    // A media type that is no image manifest, in the body or (without one) in the header.
    let mut v: serde_json::Value = serde_json::from_slice(&good).unwrap();
    v["mediaType"] = "application/vnd.evil+json".into();
    let r = call(
        &env,
        "PUT",
        "/v2/apps/x/manifests/v1",
        &[("content-type", OCI_MANIFEST)],
        Body::from(v.to_string()),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "MANIFEST_INVALID");
    assert!(
        r.message().contains("application/vnd.evil+json"),
        "{}",
        r.message()
    );
    v.as_object_mut().unwrap().remove("mediaType");
    let r = call(
        &env,
        "PUT",
        "/v2/apps/x/manifests/v1",
        &[("content-type", "text/html")],
        Body::from(v.to_string()),
    )
    .await;
    assert_eq!(
        r.status,
        StatusCode::BAD_REQUEST,
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    assert_eq!(r.code(), "MANIFEST_INVALID");
    // A manifest whose config blob is missing.
    let other_cfg = support::config(&[sha(b"other")]);
    let m = support::manifest(&other_cfg, std::slice::from_ref(&layer));
    let r = call(
        &env,
        "PUT",
        "/v2/apps/x/manifests/v1",
        &[("content-type", OCI_MANIFEST)],
        Body::from(m),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "MANIFEST_BLOB_UNKNOWN");
    // Pushed by a digest it does not have.
    let wrong = sha(b"not this manifest");
    let r = call(
        &env,
        "PUT",
        &format!("/v2/apps/x/manifests/{wrong}"),
        &[("content-type", OCI_MANIFEST)],
        Body::from(good.clone()),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "DIGEST_INVALID");
    // Too big.
    let huge = vec![b' '; 8 << 20];
    let r = call(
        &env,
        "PUT",
        "/v2/apps/x/manifests/v1",
        &[("content-type", OCI_MANIFEST)],
        Body::from(huge),
    )
    .await;
    assert_eq!(r.status, StatusCode::PAYLOAD_TOO_LARGE);
    // None of that made a tag.
    let r = call(&env, "GET", "/v2/apps/x/manifests/v1", &[], Body::empty()).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // The good one still goes in.
    let r = call(
        &env,
        "PUT",
        "/v2/apps/x/manifests/v1",
        &[("content-type", OCI_MANIFEST)],
        Body::from(good),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
}

#[tokio::test]
async fn hostile_repository_names_are_refused() {
    let env = env();
    let long = "a".repeat(300);
    for name in [
        "..",
        "a/..",
        "./a",
        "a//b",
        "%2e%2e/x",
        "a%2f..%2fb",
        "a%00b",
        "A",
        "a/B",
        "-a",
        "a-",
        "a__b/ü",
        long.as_str(),
    ] {
        let r = call(
            &env,
            "GET",
            &format!("/v2/{name}/tags/list"),
            &[],
            Body::empty(),
        )
        .await;
        assert_eq!(
            r.status,
            StatusCode::BAD_REQUEST,
            "{name}: {:?}",
            String::from_utf8_lossy(&r.body)
        );
        assert_eq!(r.code(), "NAME_INVALID", "{name}");
        let r = call(
            &env,
            "POST",
            &format!("/v2/{name}/blobs/uploads/"),
            &[],
            Body::empty(),
        )
        .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{name}");
    }
    assert_eq!(env.files("uploads"), Vec::<String>::new());
    assert_eq!(env.files("repositories"), Vec::<String>::new());
}
