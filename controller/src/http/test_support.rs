//! What the in-process API tests of several handler modules share: a controller on a
//! fresh data dir and one request through the whole router (auth included).

use std::sync::Arc;

use axum::body::Body;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::config::Settings;
use crate::state::Controller;

/// A controller whose data dir is `dir` (API on 127.0.0.1:8080, router port 8000, domain
/// `localhost`); no node runs.
pub(crate) async fn controller(dir: &tempfile::TempDir) -> Arc<Controller> {
    let settings = Settings::new(
        dir.path().to_path_buf(),
        "127.0.0.1:8080".parse().unwrap(),
        8000,
        "localhost",
    )
    .unwrap();
    Controller::open(settings).await.unwrap()
}

/// `method path` with a JSON `body` and `token` as the bearer: the status and the body.
pub(crate) async fn send_as(
    c: &Arc<Controller>,
    token: &str,
    method: &str,
    path: &str,
    body: &str,
) -> (StatusCode, String) {
    let req = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, format!("Bearer {token}"))
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = crate::http::app(Arc::clone(c)).oneshot(req).await.unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// [`send_as`] with the admin token.
pub(crate) async fn send(
    c: &Arc<Controller>,
    method: &str,
    path: &str,
    body: &str,
) -> (StatusCode, String) {
    send_as(c, c.tokens.admin(), method, path, body).await
}
