//! `/v1/apps/{app}/certs` through the real HTTP app (no socket): a good upload is listed
//! without its key and reaches the router's certificate set at once; hostile or wrong input
//! (garbage, a huge body, a key of another certificate, an expired certificate, one for
//! names the app does not have) gets a 422 that says what is wrong, and nothing is stored.

use std::sync::Arc;

use axum::body::Body;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use paas_controller::config::Settings;
use paas_controller::state::Controller;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;
use tower::ServiceExt;

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

impl Fixture {
    async fn send(
        &self,
        method: &str,
        path: &str,
        body: String,
    ) -> (StatusCode, serde_json::Value) {
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", self.c.tokens.admin()),
            )
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(body))
            .unwrap();
        let resp = paas_controller::http::app(Arc::clone(&self.c))
            .oneshot(req)
            .await
            .unwrap();
        let status = resp.status();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        let json = serde_json::from_slice(&bytes).unwrap_or(serde_json::Value::Null);
        (status, json)
    }

    async fn upload(&self, cert: &str, key: &str) -> (StatusCode, serde_json::Value) {
        let body = serde_json::json!({ "certificate": cert, "key": key }).to_string();
        self.send("POST", "/v1/apps/hello/certs", body).await
    }
}

fn make(names: &[&str]) -> (String, String) {
    let c =
        rcgen::generate_simple_self_signed(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    (c.cert.pem(), c.signing_key.serialize_pem())
}

fn expired(name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params = rcgen::CertificateParams::new(vec![name.to_string()]).unwrap();
    params.not_before = rcgen::date_time_ymd(2020, 1, 1);
    params.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), key.serialize_pem())
}

fn message(v: &serde_json::Value) -> String {
    assert_eq!(v["error"]["code"], "validation_error", "{v}");
    v["error"]["message"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn upload_list_remove_and_the_router_sees_it() {
    let f = fixture().await;
    let (s, _) = f
        .send("POST", "/v1/apps", r#"{"name":"hello"}"#.into())
        .await;
    assert_eq!(s, StatusCode::CREATED);
    let (s, _) = f
        .send(
            "POST",
            "/v1/apps/hello/domains",
            r#"{"hostname":"www.example.test"}"#.into(),
        )
        .await;
    assert_eq!(s, StatusCode::CREATED);

    let (cert, key) = make(&["www.example.test"]);
    let (s, v) = f.upload(&cert, &key).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
    assert_eq!(v["names"], serde_json::json!(["www.example.test"]));
    assert!(v.get("key").is_none() && !v.to_string().contains("PRIVATE KEY"));
    let id = v["id"].as_str().unwrap().to_string();

    // The router's resolver has it for the next handshake (for the host of the app
    // that owns it, as the route table says).
    f.c.routes.replace(vec![paas_controller::router::Route {
        app: "hello".into(),
        hosts: vec!["hello.localhost".into(), "www.example.test".into()],
        backends: Vec::new(),
    }]);
    let der = CertificateDer::from_pem_slice(cert.as_bytes()).unwrap();
    let picked = f.c.routes.certs().pick(Some("www.example.test")).unwrap();
    assert_eq!(picked.cert[0], der);

    let (s, v) = f.send("GET", "/v1/apps/hello/certs", String::new()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v.as_array().unwrap().len(), 1);
    assert_eq!(v[0]["id"], id.as_str());

    let (s, _) = f
        .send(
            "DELETE",
            &format!("/v1/apps/hello/certs/{id}"),
            String::new(),
        )
        .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(f.c.routes.certs().pick(Some("www.example.test")).is_none());
    let (s, v) = f
        .send(
            "DELETE",
            &format!("/v1/apps/hello/certs/{id}"),
            String::new(),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND, "{v}");
    let (s, _) = f.send("GET", "/v1/apps/nope/certs", String::new()).await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn bad_uploads_get_422_with_a_reason() {
    let f = fixture().await;
    f.send("POST", "/v1/apps", r#"{"name":"hello"}"#.into())
        .await;
    let (cert, key) = make(&["hello.localhost"]);
    let (_, other_key) = make(&["hello.localhost"]);

    let (s, v) = f.upload("garbage", &key).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&v).contains("not PEM"), "{v}");

    let (s, v) = f
        .upload(
            &cert,
            "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n",
        )
        .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!message(&v).is_empty());

    let (s, v) = f.upload(&cert, &other_key).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&v).contains("does not belong"), "{v}");

    let (old_cert, old_key) = expired("hello.localhost");
    let (s, v) = f.upload(&old_cert, &old_key).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&v).contains("expired"), "{v}");

    let (elsewhere, elsewhere_key) = make(&["other.test"]);
    let (s, v) = f.upload(&elsewhere, &elsewhere_key).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&v).contains("none of the app's host names"), "{v}");

    let huge = format!("{cert}{}", "A".repeat(300_000));
    let (s, v) = f.upload(&huge, &key).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(message(&v).contains("bytes"), "{v}");

    let (s, v) = f
        .send("POST", "/v1/apps/hello/certs", "{not json".into())
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");

    let (_, v) = f.send("GET", "/v1/apps/hello/certs", String::new()).await;
    assert_eq!(v, serde_json::json!([]), "nothing was stored");

    // The app's own name works.
    let (s, v) = f.upload(&cert, &key).await;
    assert_eq!(s, StatusCode::CREATED, "{v}");
}

#[tokio::test]
async fn https_redirect_setting_reaches_the_router() {
    let f = fixture().await;
    f.send("POST", "/v1/apps", r#"{"name":"hello"}"#.into())
        .await;
    let (s, v) = f.send("GET", "/v1/apps/hello/tls", String::new()).await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(v, serde_json::json!({"https_redirect": false}));
    let (s, v) = f
        .send(
            "PUT",
            "/v1/apps/hello/tls",
            r#"{"https_redirect":true}"#.into(),
        )
        .await;
    assert_eq!(s, StatusCode::OK, "{v}");
    assert_eq!(f.c.routes.https_redirects(), vec!["hello".to_string()]);
    let (_, v) = f.send("GET", "/v1/apps/hello/tls", String::new()).await;
    assert_eq!(v, serde_json::json!({"https_redirect": true}));
    let (s, _) = f
        .send(
            "PATCH",
            "/v1/apps/hello/tls",
            r#"{"https_redirect":false}"#.into(),
        )
        .await;
    assert_eq!(s, StatusCode::OK);
    assert!(f.c.routes.https_redirects().is_empty());
    let (s, _) = f
        .send(
            "PUT",
            "/v1/apps/hello/tls",
            r#"{"https_redirect":"yes"}"#.into(),
        )
        .await;
    assert_eq!(s, StatusCode::BAD_REQUEST);
    let (s, _) = f
        .send(
            "PUT",
            "/v1/apps/nope/tls",
            r#"{"https_redirect":true}"#.into(),
        )
        .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
}
