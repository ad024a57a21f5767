//! The `/v2/` routes driven with `tower::ServiceExt::oneshot`: auth, uploads, manifests, tags.

mod support;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use paas_registry::{routes, Registry};
use support::{auth, basic, sha, TOKEN};
use tower::ServiceExt;

struct Env {
    _dir: tempfile::TempDir,
    reg: Registry,
    app: axum::Router,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let reg = Registry::open(dir.path().join("registry")).unwrap();
    let app = routes(reg.clone(), auth());
    Env {
        _dir: dir,
        reg,
        app,
    }
}

struct Reply {
    status: StatusCode,
    headers: http::HeaderMap,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header in {:?}", self.headers))
            .to_str()
            .unwrap()
    }

    fn error_code(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("error body is not JSON ({e}): {:?}", self.body));
        v["errors"][0]["code"].as_str().unwrap().to_string()
    }
}

async fn call(
    env: &Env,
    method: &str,
    uri: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Reply {
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
        .oneshot(req.body(Body::from(body)).unwrap())
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

async fn push_blob(env: &Env, repo: &str, bytes: &[u8]) -> String {
    let d = sha(bytes);
    let r = call(
        env,
        "POST",
        &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
        &[],
        bytes.to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    d
}

#[tokio::test]
async fn auth_required_with_basic_challenge() {
    let env = env();
    for uri in [
        "/v2/",
        "/v2/apps/hello/tags/list",
        "/v2/apps/hello/manifests/latest",
    ] {
        let resp = env
            .app
            .clone()
            .oneshot(Request::get(uri).body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "{uri}");
        assert_eq!(resp.headers()["www-authenticate"], "Basic realm=\"paas\"");
    }
    let wrong = env
        .app
        .clone()
        .oneshot(
            Request::get("/v2/")
                .header("authorization", "Bearer nope")
                .body(Body::empty())
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    for value in [basic(), format!("Bearer {TOKEN}")] {
        let resp = env
            .app
            .clone()
            .oneshot(
                Request::get("/v2/")
                    .header("authorization", value)
                    .body(Body::empty())
                    .unwrap(),
            )
            .await
            .unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"{}");
    }
}

#[tokio::test]
async fn monolithic_upload_and_blob_reads() {
    let env = env();
    let data: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let d = sha(&data);
    let r = call(
        &env,
        "POST",
        &format!("/v2/apps/hello/blobs/uploads/?digest={d}"),
        &[],
        data.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    assert_eq!(r.header("location"), format!("/v2/apps/hello/blobs/{d}"));
    assert_eq!(r.header("docker-content-digest"), d);
    assert!(env.reg.blob_path(&d).is_some());

    let head = call(
        &env,
        "HEAD",
        &format!("/v2/apps/hello/blobs/{d}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(head.status, StatusCode::OK);
    assert_eq!(head.header("content-length"), "100000");
    assert_eq!(head.header("docker-content-digest"), d);
    assert!(head.body.is_empty());

    // Blobs are scoped per repository: another repository does not serve it.
    let get = call(
        &env,
        "GET",
        &format!("/v2/other/repo/blobs/{d}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(get.status, StatusCode::NOT_FOUND);
    let get = call(
        &env,
        "GET",
        &format!("/v2/apps/hello/blobs/{d}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(get.status, StatusCode::OK);
    assert_eq!(get.body, data);

    let part = call(
        &env,
        "GET",
        &format!("/v2/apps/hello/blobs/{d}"),
        &[("range", "bytes=10-19")],
        vec![],
    )
    .await;
    assert_eq!(part.status, StatusCode::PARTIAL_CONTENT);
    assert_eq!(part.header("content-range"), "bytes 10-19/100000");
    assert_eq!(part.body, data[10..20]);

    let missing = call(
        &env,
        "GET",
        &format!("/v2/apps/hello/blobs/{}", sha(b"nope")),
        &[],
        vec![],
    )
    .await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert_eq!(missing.error_code(), "BLOB_UNKNOWN");
}

#[tokio::test]
async fn monolithic_digest_mismatch_stores_nothing() {
    let env = env();
    let claimed = sha(b"something else");
    let r = call(
        &env,
        "POST",
        &format!("/v2/apps/hello/blobs/uploads/?digest={claimed}"),
        &[],
        b"actual".to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "DIGEST_INVALID");
    assert!(env.reg.blob_path(&claimed).is_none());
    assert!(env.reg.blob_path(&sha(b"actual")).is_none());
    let leftovers = std::fs::read_dir(env.reg.root().join("uploads"))
        .unwrap()
        .count();
    assert_eq!(leftovers, 0, "temporary files left behind");

    let bad = call(
        &env,
        "POST",
        "/v2/apps/hello/blobs/uploads/?digest=md5:abc",
        &[],
        vec![],
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad.error_code(), "DIGEST_INVALID");
}

#[tokio::test]
async fn chunked_upload() {
    let env = env();
    let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 256) as u8).collect();
    let d = sha(&data);
    let start = call(&env, "POST", "/v2/apps/hello/blobs/uploads/", &[], vec![]).await;
    assert_eq!(start.status, StatusCode::ACCEPTED);
    assert_eq!(start.header("range"), "0-0");
    let uuid = start.header("docker-upload-uuid").to_string();
    let location = start.header("location").to_string();
    assert_eq!(location, format!("/v2/apps/hello/blobs/uploads/{uuid}"));

    let first = call(
        &env,
        "PATCH",
        &location,
        &[("content-range", "0-99999")],
        data[..100_000].to_vec(),
    )
    .await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    assert_eq!(first.header("range"), "0-99999");
    // Without Content-Range: appended as well.
    let second = call(
        &env,
        "PATCH",
        &location,
        &[],
        data[100_000..250_000].to_vec(),
    )
    .await;
    assert_eq!(second.status, StatusCode::ACCEPTED);
    assert_eq!(second.header("range"), "0-249999");

    let out_of_order = call(
        &env,
        "PATCH",
        &location,
        &[("content-range", "0-9")],
        vec![0; 10],
    )
    .await;
    assert_eq!(out_of_order.status, StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(out_of_order.error_code(), "BLOB_UPLOAD_INVALID");
    let status = call(&env, "GET", &location, &[], vec![]).await;
    assert_eq!(status.status, StatusCode::NO_CONTENT);
    assert_eq!(status.header("range"), "0-249999");

    let done = call(
        &env,
        "PUT",
        &format!("{location}?digest={d}"),
        &[],
        data[250_000..].to_vec(),
    )
    .await;
    assert_eq!(done.status, StatusCode::CREATED);
    assert_eq!(done.header("docker-content-digest"), d);
    let get = call(
        &env,
        "GET",
        &format!("/v2/apps/hello/blobs/{d}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(get.body, data);
    let gone = call(&env, "GET", &location, &[], vec![]).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    assert_eq!(gone.error_code(), "BLOB_UPLOAD_UNKNOWN");
}

#[tokio::test]
async fn chunked_digest_mismatch_and_cancel() {
    let env = env();
    let start = call(&env, "POST", "/v2/a/blobs/uploads/", &[], vec![]).await;
    let location = start.header("location").to_string();
    call(&env, "PATCH", &location, &[], b"hello".to_vec()).await;
    let wrong = sha(b"world");
    let put = call(
        &env,
        "PUT",
        &format!("{location}?digest={wrong}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(put.status, StatusCode::BAD_REQUEST);
    assert_eq!(put.error_code(), "DIGEST_INVALID");
    assert!(env.reg.blob_path(&sha(b"hello")).is_none());
    let gone = call(&env, "GET", &location, &[], vec![]).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);

    let start = call(&env, "POST", "/v2/a/blobs/uploads/", &[], vec![]).await;
    let location = start.header("location").to_string();
    let del = call(&env, "DELETE", &location, &[], vec![]).await;
    assert_eq!(del.status, StatusCode::NO_CONTENT);
    let gone = call(&env, "PATCH", &location, &[], b"x".to_vec()).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
    let bogus = call(
        &env,
        "GET",
        "/v2/a/blobs/uploads/..%2F..%2Fetc",
        &[],
        vec![],
    )
    .await;
    assert_eq!(bogus.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn cross_repo_mount() {
    let env = env();
    let d = push_blob(&env, "stacks/tiny", b"shared layer").await;
    let m = call(
        &env,
        "POST",
        &format!("/v2/apps/x/blobs/uploads/?mount={d}&from=stacks/tiny"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(m.status, StatusCode::CREATED);
    assert_eq!(m.header("location"), format!("/v2/apps/x/blobs/{d}"));
    let got = call(&env, "GET", &format!("/v2/apps/x/blobs/{d}"), &[], vec![]).await;
    assert_eq!(got.status, StatusCode::OK);
    // A mount from a repository that does not have the blob (or with no `from`) becomes an
    // ordinary upload: the blob is not linked.
    for query in [format!("mount={d}&from=apps/x2"), format!("mount={d}")] {
        let m = call(
            &env,
            "POST",
            &format!("/v2/apps/y/blobs/uploads/?{query}"),
            &[],
            vec![],
        )
        .await;
        assert_eq!(m.status, StatusCode::ACCEPTED, "{query}");
    }
    let got = call(&env, "GET", &format!("/v2/apps/y/blobs/{d}"), &[], vec![]).await;
    assert_eq!(got.status, StatusCode::NOT_FOUND);
    let unknown = sha(b"not here");
    let m = call(
        &env,
        "POST",
        &format!("/v2/apps/x/blobs/uploads/?mount={unknown}&from=stacks/tiny"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(m.status, StatusCode::ACCEPTED);
    assert!(m.headers.contains_key("docker-upload-uuid"));
}

const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";

#[tokio::test]
async fn manifest_with_missing_blob_is_refused() {
    let env = env();
    let cfg = support::config(&[]);
    push_blob(&env, "apps/hello", &cfg).await;
    let missing_layer = b"never pushed".to_vec();
    let m = support::manifest(&cfg, &[missing_layer]);
    let r = call(
        &env,
        "PUT",
        "/v2/apps/hello/manifests/v1",
        &[("content-type", OCI_MANIFEST)],
        m,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "MANIFEST_BLOB_UNKNOWN");
    let r = call(
        &env,
        "PUT",
        "/v2/apps/hello/manifests/v1",
        &[("content-type", OCI_MANIFEST)],
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.error_code(), "MANIFEST_INVALID");
    let tags = call(&env, "GET", "/v2/apps/hello/tags/list", &[], vec![]).await;
    assert_eq!(tags.status, StatusCode::NOT_FOUND);
    assert_eq!(tags.error_code(), "NAME_UNKNOWN");
}

#[tokio::test]
async fn manifest_put_get_tags_delete() {
    let env = env();
    let (layer, diff_id) = support::layer(&[("app/hello.txt", b"hi")]);
    let cfg = support::config(&[diff_id]);
    push_blob(&env, "apps/hello", &layer).await;
    push_blob(&env, "apps/hello", &cfg).await;
    let layer_digest = sha(&layer);
    let m = support::manifest(&cfg, &[layer]);
    let d = sha(&m);
    for tag in ["v2", "v1", "latest"] {
        let r = call(
            &env,
            "PUT",
            &format!("/v2/apps/hello/manifests/{tag}"),
            &[("content-type", OCI_MANIFEST)],
            m.clone(),
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED);
        assert_eq!(r.header("docker-content-digest"), d);
        assert_eq!(
            r.header("location"),
            format!("/v2/apps/hello/manifests/{d}")
        );
    }
    for reference in ["v1", d.as_str()] {
        let r = call(
            &env,
            "GET",
            &format!("/v2/apps/hello/manifests/{reference}"),
            &[("accept", OCI_MANIFEST)],
            vec![],
        )
        .await;
        assert_eq!(r.status, StatusCode::OK);
        assert_eq!(r.header("content-type"), OCI_MANIFEST);
        assert_eq!(r.header("docker-content-digest"), d);
        assert_eq!(r.body, m);
        let h = call(
            &env,
            "HEAD",
            &format!("/v2/apps/hello/manifests/{reference}"),
            &[],
            vec![],
        )
        .await;
        assert_eq!(h.status, StatusCode::OK);
        assert_eq!(h.header("content-length"), m.len().to_string());
        assert!(h.body.is_empty());
    }
    // A manifest is only reachable from the repository it was pushed to.
    let other = call(
        &env,
        "GET",
        &format!("/v2/apps/other/manifests/{d}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(other.status, StatusCode::NOT_FOUND);
    assert_eq!(other.error_code(), "MANIFEST_UNKNOWN");
    let unknown = call(&env, "GET", "/v2/apps/hello/manifests/nope", &[], vec![]).await;
    assert_eq!(unknown.error_code(), "MANIFEST_UNKNOWN");
    // By digest: the digest must match the body.
    let r = call(
        &env,
        "PUT",
        &format!("/v2/apps/hello/manifests/{}", sha(b"x")),
        &[("content-type", OCI_MANIFEST)],
        m.clone(),
    )
    .await;
    assert_eq!(r.error_code(), "DIGEST_INVALID");

    let tags = call(&env, "GET", "/v2/apps/hello/tags/list", &[], vec![]).await;
    assert_eq!(tags.status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&tags.body).unwrap();
    assert_eq!(
        v,
        serde_json::json!({"name": "apps/hello", "tags": ["latest", "v1", "v2"]})
    );
    let page = call(
        &env,
        "GET",
        "/v2/apps/hello/tags/list?n=1&last=latest",
        &[],
        vec![],
    )
    .await;
    let v: serde_json::Value = serde_json::from_slice(&page.body).unwrap();
    assert_eq!(v["tags"], serde_json::json!(["v1"]));
    assert!(page.header("link").contains("last=v1"));

    // Pushed by digest only: the repository exists with no tags. Its blobs must be in that
    // repository first (mounted from apps/hello here).
    let r = call(
        &env,
        "PUT",
        &format!("/v2/apps/untagged/manifests/{d}"),
        &[("content-type", OCI_MANIFEST)],
        m.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert!(
        String::from_utf8_lossy(&r.body).contains("MANIFEST_BLOB_UNKNOWN"),
        "{}",
        String::from_utf8_lossy(&r.body)
    );
    for blob in [layer_digest.clone(), sha(&cfg)] {
        let r = call(
            &env,
            "POST",
            &format!("/v2/apps/untagged/blobs/uploads/?mount={blob}&from=apps/hello"),
            &[],
            vec![],
        )
        .await;
        assert_eq!(r.status, StatusCode::CREATED);
    }
    let r = call(
        &env,
        "PUT",
        &format!("/v2/apps/untagged/manifests/{d}"),
        &[("content-type", OCI_MANIFEST)],
        m.clone(),
    )
    .await;
    assert_eq!(r.status, StatusCode::CREATED);
    let tags = call(&env, "GET", "/v2/apps/untagged/tags/list", &[], vec![]).await;
    assert_eq!(tags.status, StatusCode::OK);
    let v: serde_json::Value = serde_json::from_slice(&tags.body).unwrap();
    assert_eq!(v["tags"], serde_json::json!([]));

    let del = call(&env, "DELETE", "/v2/apps/hello/manifests/v2", &[], vec![]).await;
    assert_eq!(del.status, StatusCode::ACCEPTED);
    let del = call(
        &env,
        "DELETE",
        &format!("/v2/apps/hello/manifests/{d}"),
        &[],
        vec![],
    )
    .await;
    assert_eq!(del.status, StatusCode::ACCEPTED);
    let gone = call(&env, "GET", "/v2/apps/hello/manifests/v1", &[], vec![]).await;
    assert_eq!(gone.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_names_are_refused() {
    let env = env();
    for uri in [
        "/v2/Apps/tags/list",
        "/v2/a/../b/tags/list",
        "/v2/a/tags/manifests/x",
    ] {
        let r = call(&env, "GET", uri, &[], vec![]).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{uri}");
        assert_eq!(r.error_code(), "NAME_INVALID", "{uri}");
    }
    let r = call(&env, "GET", "/v2/a/unknown-endpoint", &[], vec![]).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = call(&env, "POST", "/v2/a/tags/list", &[], vec![]).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(r.error_code(), "UNSUPPORTED");
}
