//! Rename, paging, ETags, sizes, builds and restarts through `tower::ServiceExt::oneshot`
//! (no agents: the scheduler's part of restarts is covered by the e2e tests).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::config::Settings;
use crate::state::Controller;
use crate::store::ReleaseRow;

async fn controller() -> (tempfile::TempDir, Arc<Controller>) {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::new(
        dir.path().to_path_buf(),
        "127.0.0.1:8080".parse().unwrap(),
        8000,
        "localhost",
    )
    .unwrap();
    let c = Controller::open(settings).await.unwrap();
    (dir, c)
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
    fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or("")
            .to_string()
    }
}

async fn send(c: &Arc<Controller>, req: http::request::Builder, body: &str) -> Answer {
    let req = req
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", c.tokens.admin()),
        )
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_string()))
        .unwrap();
    let resp = crate::http::app(Arc::clone(c)).oneshot(req).await.unwrap();
    let status = resp.status();
    let headers = resp.headers().clone();
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&bytes).into_owned(),
    }
}

async fn released_app(c: &Arc<Controller>, name: &str) {
    c.store.create_app(name).await.unwrap();
    c.store
        .create_release(&ReleaseRow {
            app: name.into(),
            version: 1,
            image: format!("{name}@sha256:{}", "0".repeat(64)),
            source_version: None,
            process_types: BTreeMap::from([
                ("web".into(), "serve".into()),
                ("worker".into(), "work".into()),
            ]),
            config: BTreeMap::new(),
            description: "Deploy".into(),
            created_at: crate::util::now_rfc3339(),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn apps_page_with_limit_after_and_a_next_link() {
    let (_d, c) = controller().await;
    for n in ["a1", "a2", "a3"] {
        c.store.create_app(n).await.unwrap();
    }
    let first = send(&c, Request::get("/v1/apps?limit=2"), "").await;
    assert_eq!(first.status, StatusCode::OK, "{}", first.body);
    let names: Vec<_> = first
        .json()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].clone())
        .collect();
    assert_eq!(names, ["a1", "a2"]);
    let link = first.headers[header::LINK].to_str().unwrap();
    assert_eq!(link, "</v1/apps?limit=2&after=a2>; rel=\"next\"");
    assert_eq!(first.headers["next-range"], "a2");
    let next = send(&c, Request::get("/v1/apps?limit=2&after=a2"), "").await;
    assert_eq!(next.json().as_array().unwrap().len(), 1);
    assert!(next.headers.get(header::LINK).is_none());
    let bad = send(&c, Request::get("/v1/apps?limit=0"), "").await;
    assert_eq!(
        (bad.status, bad.code().as_str()),
        (StatusCode::BAD_REQUEST, "validation_error")
    );
}

#[tokio::test]
async fn a_stale_if_match_is_refused_with_412() {
    let (_d, c) = controller().await;
    released_app(&c, "etag").await;
    let got = send(&c, Request::get("/v1/apps/etag/config"), "").await;
    let tag = got.headers[header::ETAG].to_str().unwrap().to_string();
    let set = send(
        &c,
        Request::patch("/v1/apps/etag/config").header(header::IF_MATCH, &tag),
        r#"{"A": "1"}"#,
    )
    .await;
    assert_eq!(set.status, StatusCode::OK, "{}", set.body);
    assert_ne!(set.headers[header::ETAG].to_str().unwrap(), tag);
    let stale = send(
        &c,
        Request::patch("/v1/apps/etag/config").header(header::IF_MATCH, &tag),
        r#"{"A": "2"}"#,
    )
    .await;
    assert_eq!(
        stale.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        stale.body
    );
    assert_eq!(stale.code(), "precondition_failed");
    assert!(stale.body.contains("read it again"), "{}", stale.body);
    assert_eq!(c.store.config_vars("etag").await.unwrap()["A"], "1");

    let f = send(&c, Request::get("/v1/apps/etag/formation"), "").await;
    let ftag = f.headers[header::ETAG].to_str().unwrap().to_string();
    let scaled = send(
        &c,
        Request::patch("/v1/apps/etag/formation").header(header::IF_MATCH, &ftag),
        r#"{"web": {"quantity": 1}}"#,
    )
    .await;
    assert_eq!(scaled.status, StatusCode::OK, "{}", scaled.body);
    // Quantity 1 → 1 (the first release's default) changes nothing, so the same tag still matches; a resize does not.
    let resized = send(
        &c,
        Request::patch("/v1/apps/etag/formation").header(header::IF_MATCH, &ftag),
        r#"{"web": {"size": "standard-2x"}}"#,
    )
    .await;
    assert_eq!(resized.status, StatusCode::OK, "{}", resized.body);
    let stale = send(
        &c,
        Request::patch("/v1/apps/etag/formation").header(header::IF_MATCH, &ftag),
        r#"{"web": {"quantity": 1}}"#,
    )
    .await;
    assert_eq!(
        stale.status,
        StatusCode::PRECONDITION_FAILED,
        "{}",
        stale.body
    );
}

#[tokio::test]
async fn sizes_are_named_or_amounts_and_reach_the_formation() {
    let (_d, c) = controller().await;
    released_app(&c, "sizes").await;
    let f = send(&c, Request::get("/v1/apps/sizes/formation"), "")
        .await
        .json();
    assert_eq!(f[0]["size"], "standard-1x");
    assert_eq!(f[0]["memory_bytes"], 512 * 1024 * 1024);
    let r = send(
        &c,
        Request::patch("/v1/apps/sizes/formation"),
        r#"{"worker": {"size": "768M"}}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let worker = r
        .json()
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["type"] == "worker")
        .cloned()
        .unwrap();
    assert_eq!(
        (worker["size"].as_str(), worker["memory_bytes"].as_u64()),
        (Some("768M"), Some(768 << 20))
    );
    let mem = c.store.formation_memory().await.unwrap();
    assert_eq!(mem[&("sizes".to_string(), "worker".to_string())], 768 << 20);
    let bad = send(
        &c,
        Request::patch("/v1/apps/sizes/formation"),
        r#"{"web": {"size": "huge"}}"#,
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("standard-2x"), "{}", bad.body);
}

#[tokio::test]
async fn rename_moves_records_and_the_repository() {
    let (_d, c) = controller().await;
    released_app(&c, "old-name").await;
    c.store
        .set_config_var("old-name", "K", Some("v"))
        .await
        .unwrap();
    c.store.set_formation("old-name", "web", 2).await.unwrap();
    std::fs::create_dir_all(c.settings.repo_path("old-name")).unwrap();
    c.store.create_app("taken").await.unwrap();

    let r = send(
        &c,
        Request::patch("/v1/apps/old-name"),
        r#"{"name": "taken"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let r = send(
        &c,
        Request::patch("/v1/apps/old-name"),
        r#"{"name": "Bad_Name"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = send(&c, Request::patch("/v1/apps/nope"), r#"{"name": "other"}"#).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);

    let r = send(
        &c,
        Request::patch("/v1/apps/old-name"),
        r#"{"name": "new-name"}"#,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.json()["name"], "new-name");
    assert_eq!(r.json()["current_release"], 1, "{}", r.body);
    assert!(c.store.get_app("old-name").await.unwrap().is_none());
    assert_eq!(c.store.config_vars("new-name").await.unwrap()["K"], "v");
    assert_eq!(c.store.list_releases("new-name").await.unwrap().len(), 1);
    let f = c.store.formations().await.unwrap();
    assert!(f
        .iter()
        .any(|f| f.app == "new-name" && f.count == 2 && f.release == Some(1)));
    assert!(c.settings.repo_path("new-name").is_dir());
    assert!(!c.settings.repo_path("old-name").exists());
}

#[tokio::test]
async fn builds_and_their_logs_and_restarts_answer_clearly() {
    let (_d, c) = controller().await;
    released_app(&c, "b").await;
    c.store
        .create_build("bld-1", "b", Some("abc"))
        .await
        .unwrap();
    c.store
        .finish_build("bld-1", "succeeded", Some(1), "-----> done\n")
        .await
        .unwrap();
    let list = send(&c, Request::get("/v1/apps/b/builds?limit=1"), "").await;
    assert_eq!(list.json()[0]["id"], "bld-1");
    let one = send(&c, Request::get("/v1/apps/b/builds/bld-1"), "").await;
    assert_eq!(one.json()["status"], "succeeded");
    let log = send(&c, Request::get("/v1/apps/b/builds/bld-1/log"), "").await;
    assert_eq!(log.body, "-----> done\n");
    let log = send(
        &c,
        Request::get("/v1/apps/b/builds/bld-1/log?follow=true"),
        "",
    )
    .await;
    assert_eq!(log.body, "-----> done\n");
    let missing = send(&c, Request::get("/v1/apps/b/builds/nope"), "").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(
        missing.body.contains("paas builds -a b"),
        "{}",
        missing.body
    );

    // A running build's output is readable before it ends.
    crate::builder::live::begin("bld-2");
    c.store.create_build("bld-2", "b", None).await.unwrap();
    crate::builder::live::append("bld-2", "-----> so far\n");
    let log = send(&c, Request::get("/v1/apps/b/builds/bld-2/log"), "").await;
    assert_eq!(log.body, "-----> so far\n");
    crate::builder::live::end("bld-2");

    let r = send(&c, Request::post("/v1/apps/b/restart"), "").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert!(r.body.contains("ps:scale"), "{}", r.body);
    let r = send(&c, Request::post("/v1/apps/b/jobs/b-v1-0000/stop"), "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert!(r.body.contains("paas ps -a b"), "{}", r.body);
    let r = send(&c, Request::post("/v1/apps/zzz/restart"), "").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
}
