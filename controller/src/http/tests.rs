//! The HTTP surface through `tower::ServiceExt::oneshot`: no socket, a fresh data
//! directory per test.

use std::sync::Arc;

use axum::body::Body;
use base64::Engine as _;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::config::Settings;
use crate::state::Controller;

struct Fixture {
    _dir: tempfile::TempDir,
    c: Arc<Controller>,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::new(
        dir.path().to_path_buf(),
        "127.0.0.1:8080".parse().unwrap(),
        8000,
        "localhost",
    )
    .unwrap();
    let c = Controller::open(settings).await.unwrap();
    Fixture { _dir: dir, c }
}

struct Answer {
    status: StatusCode,
    headers: http::HeaderMap,
    body: String,
}

impl Answer {
    fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("{e}: {}", self.body))
    }
}

impl Fixture {
    async fn send(&self, req: Request<Body>) -> Answer {
        let resp = crate::http::app(Arc::clone(&self.c))
            .oneshot(req)
            .await
            .unwrap();
        let status = resp.status();
        let headers = resp.headers().clone();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        Answer {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
        }
    }

    fn admin(&self) -> String {
        format!("Bearer {}", self.c.tokens.admin())
    }

    fn node(&self) -> String {
        format!("Bearer {}", self.c.tokens.node())
    }

    async fn get(&self, path: &str, auth: Option<&str>) -> Answer {
        let mut req = Request::get(path);
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        self.send(req.body(Body::empty()).unwrap()).await
    }

    async fn post_json(&self, path: &str, auth: Option<&str>, body: &str) -> Answer {
        let mut req = Request::post(path).header(header::CONTENT_TYPE, "application/json");
        if let Some(a) = auth {
            req = req.header(header::AUTHORIZATION, a);
        }
        self.send(req.body(Body::from(body.to_string())).unwrap())
            .await
    }
}

fn basic(password: &str) -> String {
    let raw = format!("git:{password}");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(raw)
    )
}

#[tokio::test]
async fn api_needs_the_admin_token() {
    let f = fixture().await;
    let a = f.get("/v1/apps", None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.json()["error"]["code"], "unauthorized");
    assert!(a.headers.contains_key(header::WWW_AUTHENTICATE));
    let a = f.get("/v1/apps", Some("Bearer wrong")).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let node = f.node();
    let a = f.get("/v1/apps", Some(&node)).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    assert_eq!(a.json()["error"]["code"], "forbidden");
    let a = f.post_json("/v1/apps", None, r#"{"name":"sneaky"}"#).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(f.c.store.get_app("sneaky").await.unwrap().is_none());
    // Basic auth with the token as password works too.
    let a = f.get("/v1/apps", Some(&basic(f.c.tokens.admin()))).await;
    assert_eq!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn create_list_and_get_apps() {
    let f = fixture().await;
    let admin = f.admin();
    let a = f.get("/v1/apps", Some(&admin)).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.json(), serde_json::json!([]));

    let a = f
        .post_json("/v1/apps", Some(&admin), r#"{"name":"hello"}"#)
        .await;
    assert_eq!(a.status, StatusCode::CREATED, "{}", a.body);
    let app = a.json();
    assert_eq!(app["name"], "hello");
    assert_eq!(app["status"], "idle");
    assert_eq!(app["current_release"], serde_json::Value::Null);
    assert_eq!(app["web_url"], "http://hello.localhost:8000");
    assert_eq!(app["git_url"], "http://127.0.0.1:8080/git/hello.git");

    let list = f.get("/v1/apps", Some(&admin)).await.json();
    assert_eq!(list.as_array().unwrap().len(), 1);
    assert_eq!(list[0]["name"], "hello");
    let one = f.get("/v1/apps/hello", Some(&admin)).await;
    assert_eq!(one.status, StatusCode::OK);
    assert_eq!(one.json()["name"], "hello");
    let releases = f.get("/v1/apps/hello/releases", Some(&admin)).await;
    assert_eq!(releases.status, StatusCode::OK);
    assert_eq!(releases.json(), serde_json::json!([]));
    let builds = f.get("/v1/apps/hello/builds", Some(&admin)).await;
    assert_eq!(builds.json(), serde_json::json!([]));
}

#[tokio::test]
async fn bad_names_duplicates_and_unknowns() {
    let f = fixture().await;
    let admin = f.admin();
    let a = f
        .post_json("/v1/apps", Some(&admin), r#"{"name":"Bad_Name"}"#)
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"]["code"], "validation_error");
    assert!(a.json()["error"]["message"]
        .as_str()
        .unwrap()
        .contains("invalid app name"));

    let a = f.post_json("/v1/apps", Some(&admin), "{not json").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert_eq!(a.json()["error"]["code"], "bad_request");

    f.post_json("/v1/apps", Some(&admin), r#"{"name":"hello"}"#)
        .await;
    let a = f
        .post_json("/v1/apps", Some(&admin), r#"{"name":"hello"}"#)
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT);
    assert_eq!(a.json()["error"]["code"], "conflict");

    for path in [
        "/v1/apps/nope",
        "/v1/apps/nope/releases",
        "/v1/apps/nope/builds",
        "/v1/whatever",
    ] {
        let a = f.get(path, Some(&admin)).await;
        assert_eq!(a.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(a.json()["error"]["code"], "not_found", "{path}");
    }
}

#[tokio::test]
async fn heartbeats_register_nodes() {
    let f = fixture().await;
    let hb = r#"{"name":"local","url":"http://127.0.0.1:1234","memory_bytes":1024,"jobs":[]}"#;
    let a = f.post_json("/v1/nodes/heartbeat", None, hb).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let node = f.node();
    let a = f.post_json("/v1/nodes/heartbeat", Some(&node), hb).await;
    assert_eq!(a.status, StatusCode::NO_CONTENT, "{}", a.body);
    let a = f
        .post_json("/v1/nodes/heartbeat", Some(&node), r#"{"name":""}"#)
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    let nodes = f.get("/v1/nodes", Some(&f.admin())).await.json();
    assert_eq!(nodes[0]["name"], "local");
    assert_eq!(nodes[0]["state"], "up");
    assert_eq!(nodes[0]["url"], "http://127.0.0.1:1234");
    assert_eq!(nodes[0]["memory_bytes"], 1024);
}

#[tokio::test]
async fn internal_inputs_need_the_node_token() {
    let f = fixture().await;
    let a = f.get("/internal/buildpacks.tar", None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = f.get("/internal/buildpacks.tar", Some(&f.node())).await;
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(a.headers[header::CONTENT_TYPE], "application/x-tar");
    let a = f
        .get("/internal/builds/abc/source.tar", Some(&f.node()))
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = f
        .get("/internal/builds/../x/env.tar", Some(&f.node()))
        .await;
    assert_ne!(a.status, StatusCode::OK);
}

#[tokio::test]
async fn the_hook_endpoint_needs_the_hook_secret() {
    let f = fixture().await;
    let req = Request::post("/internal/hooks/pre-receive")
        .header("x-paas-app", "hello")
        .header("x-paas-hook-token", "wrong")
        .body(Body::from("tar"))
        .unwrap();
    let a = f.send(req).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(a.body.ends_with("paas-result: failed\n"), "{}", a.body);
    let req = Request::post("/internal/hooks/pre-receive")
        .header("x-paas-app", "ghost")
        .header("x-paas-rev", "1".repeat(40))
        .header("x-paas-hook-token", f.c.hook_secret.clone())
        .body(Body::from("tar"))
        .unwrap();
    let a = f.send(req).await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(a.body.contains("no app named ghost"), "{}", a.body);
}

#[tokio::test]
async fn git_info_refs_auth_names_and_first_push() {
    let f = fixture().await;
    let path = "/git/hello.git/info/refs?service=git-receive-pack";
    let a = f.get(path, None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert_eq!(a.headers[header::WWW_AUTHENTICATE], "Basic realm=\"paas\"");
    let a = f.get(path, Some(&basic("wrong"))).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    assert!(f.c.store.get_app("hello").await.unwrap().is_none());

    let auth = basic(f.c.tokens.admin());
    let a = f
        .get(
            "/git/Bad_Name.git/info/refs?service=git-receive-pack",
            Some(&auth),
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST);
    assert!(a.headers[header::CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert!(a.body.contains("invalid app name"), "{}", a.body);

    let a = f
        .get(
            "/git/hello.git/info/refs?service=git-upload-pack",
            Some(&auth),
        )
        .await;
    // A clone of an app that does not exist: 404, and no app is made.
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    assert!(a.body.contains("no app named hello"), "{}", a.body);
    assert!(f.c.store.get_app("hello").await.unwrap().is_none());

    let a = f.get(path, Some(&auth)).await;
    assert_eq!(a.status, StatusCode::OK, "{}", a.body);
    assert_eq!(
        a.headers[header::CONTENT_TYPE],
        "application/x-git-receive-pack-advertisement"
    );
    assert!(a.headers[header::CACHE_CONTROL]
        .to_str()
        .unwrap()
        .contains("no-cache"));
    assert!(
        a.body.starts_with("001f# service=git-receive-pack\n0000"),
        "{}",
        a.body
    );
    assert!(a.body.contains("report-status"), "{}", a.body);
    assert!(f.c.store.get_app("hello").await.unwrap().is_some());
    assert!(f
        .c
        .settings
        .repo_path("hello")
        .join("hooks/pre-receive")
        .is_file());
}

#[tokio::test]
async fn registry_and_dashboard_are_mounted() {
    let f = fixture().await;
    let a = f.get("/v2/", None).await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = f.get("/v2/", Some(&f.node())).await;
    assert_eq!(a.status, StatusCode::OK);
    let a = f.get("/", None).await;
    assert_eq!(
        a.status,
        StatusCode::SEE_OTHER,
        "the dashboard needs a login"
    );
    let a = f.get("/login", None).await;
    assert_eq!(a.status, StatusCode::OK);
    assert!(
        a.body.contains("<html") || a.body.contains("<!DOCTYPE"),
        "{}",
        a.body
    );
}

#[tokio::test]
async fn receive_pack_takes_plain_and_gzip_bodies() {
    use std::io::Write;
    let f = fixture().await;
    let auth = basic(f.c.tokens.admin());
    let a = f
        .get(
            "/git/hello.git/info/refs?service=git-receive-pack",
            Some(&auth),
        )
        .await;
    assert_eq!(a.status, StatusCode::OK);
    // A flush packet alone: receive-pack reads it and ends without updating anything.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(b"0000").unwrap();
    let gzipped = gz.finish().unwrap();
    for (encoding, body) in [(None, b"0000".to_vec()), (Some("gzip"), gzipped)] {
        let mut req = Request::post("/git/hello.git/git-receive-pack")
            .header(header::AUTHORIZATION, &auth)
            .header(
                header::CONTENT_TYPE,
                "application/x-git-receive-pack-request",
            );
        if let Some(e) = encoding {
            req = req.header(header::CONTENT_ENCODING, e);
        }
        let a = tokio::time::timeout(
            std::time::Duration::from_secs(20),
            f.send(req.body(Body::from(body)).unwrap()),
        )
        .await
        .expect("receive-pack answered");
        assert_eq!(a.status, StatusCode::OK, "{encoding:?}: {}", a.body);
        assert_eq!(
            a.headers[header::CONTENT_TYPE],
            "application/x-git-receive-pack-result"
        );
    }
    // Unknown repository, no token, upload-pack.
    let a = f
        .send(
            Request::post("/git/other.git/git-receive-pack")
                .header(header::AUTHORIZATION, &auth)
                .body(Body::from("0000"))
                .unwrap(),
        )
        .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND);
    let a = f
        .send(
            Request::post("/git/hello.git/git-receive-pack")
                .body(Body::from("0000"))
                .unwrap(),
        )
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
    let a = f
        .send(
            Request::post("/git/hello.git/git-upload-pack")
                .header(header::AUTHORIZATION, &auth)
                .body(Body::from("0000"))
                .unwrap(),
        )
        .await;
    // Clone and fetch are served to admins and collaborators (git/upload.rs).
    assert_eq!(a.status, StatusCode::OK);
    assert_eq!(
        a.headers[header::CONTENT_TYPE],
        "application/x-git-upload-pack-result"
    );
}
