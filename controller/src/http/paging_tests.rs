//! The API's paging contract (docs/api.md) on the lists the store cuts: releases, builds and
//! jobs through `tower::ServiceExt::oneshot`: pages in order, `Link` and `Next-Range` while
//! more remain, none on the last page, an unknown `after` gives an empty page, `limit=0`
//! is refused.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use crate::config::Settings;
use crate::state::Controller;
use crate::store::{job_state, JobRow, ReleaseRow};

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

/// GET `uri` as admin: status, `Link`, `Next-Range`, the JSON body.
async fn get(
    c: &Arc<Controller>,
    uri: &str,
) -> (
    StatusCode,
    Option<String>,
    Option<String>,
    serde_json::Value,
) {
    let req = Request::get(uri)
        .header(
            header::AUTHORIZATION,
            format!("Bearer {}", c.tokens.admin()),
        )
        .body(Body::empty())
        .unwrap();
    let resp = crate::http::app(Arc::clone(c)).oneshot(req).await.unwrap();
    let status = resp.status();
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let (link, range) = (header("link"), header("next-range"));
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    (status, link, range, serde_json::from_slice(&bytes).unwrap())
}

fn keys(body: &serde_json::Value, field: &str) -> Vec<String> {
    body.as_array()
        .unwrap()
        .iter()
        .map(|v| match &v[field] {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        })
        .collect()
}

#[tokio::test]
async fn releases_builds_and_jobs_page_as_the_api_says() {
    let (_dir, c) = controller().await;
    c.store.create_app("ds4-p").await.unwrap();
    for version in 1..=5 {
        c.store
            .create_release(&ReleaseRow {
                app: "ds4-p".into(),
                version,
                image: format!("ds4-p@sha256:{}", "0".repeat(64)),
                source_version: None,
                process_types: BTreeMap::from([("web".into(), "serve".into())]),
                config: BTreeMap::new(),
                description: format!("Deploy {version}"),
                created_at: crate::util::now_rfc3339(),
            })
            .await
            .unwrap();
    }
    let base = "/v1/apps/ds4-p/releases";
    let (status, link, range, body) = get(&c, &format!("{base}?limit=2")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(keys(&body, "version"), ["5", "4"]);
    assert_eq!(
        link.as_deref(),
        Some("</v1/apps/ds4-p/releases?limit=2&after=4>; rel=\"next\"")
    );
    assert_eq!(range.as_deref(), Some("4"));
    let (_, _, _, body) = get(&c, &format!("{base}?limit=2&after=4")).await;
    assert_eq!(keys(&body, "version"), ["3", "2"]);
    let (_, link, range, body) = get(&c, &format!("{base}?limit=2&after=2")).await;
    assert_eq!(
        (keys(&body, "version"), link, range),
        (vec!["1".into()], None, None)
    );
    // Exactly a page's worth left: no next link either.
    let (_, link, _, body) = get(&c, &format!("{base}?limit=3&after=4")).await;
    assert_eq!((keys(&body, "version").len(), link), (3, None));
    let (_, link, _, body) = get(&c, base).await;
    assert_eq!((keys(&body, "version").len(), link), (5, None));
    for after in ["99", "abc"] {
        let (status, _, _, body) = get(&c, &format!("{base}?limit=2&after={after}")).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body, serde_json::json!([]), "after={after}");
    }
    let (status, _, _, _) = get(&c, &format!("{base}?limit=0")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Builds: the pages add up to the whole list.
    for id in ["b1", "b2", "b3"] {
        c.store.create_build(id, "ds4-p", None).await.unwrap();
    }
    let (_, _, _, all) = get(&c, "/v1/apps/ds4-p/builds").await;
    let all = keys(&all, "id");
    assert_eq!(all.len(), 3);
    let (_, link, range, first) = get(&c, "/v1/apps/ds4-p/builds?limit=2").await;
    let first = keys(&first, "id");
    assert_eq!(first, all[..2]);
    assert!(link.is_some());
    let after = range.unwrap();
    let (_, link, _, rest) = get(&c, &format!("/v1/apps/ds4-p/builds?limit=2&after={after}")).await;
    assert_eq!((keys(&rest, "id"), link), (all[2..].to_vec(), None));

    // Jobs: by type then id; jobs the scheduler has not seen show their stored state.
    let now = crate::util::now_rfc3339();
    for (id, t) in [("j2", "web"), ("j1", "web"), ("j0", "worker")] {
        c.store
            .insert_job(&JobRow {
                id: id.into(),
                app: "ds4-p".into(),
                release: 5,
                process_type: t.into(),
                node: "n1".into(),
                state: job_state::PENDING.into(),
                addr: None,
                exit_reason: None,
                created_at: now.clone(),
                updated_at: now.clone(),
            })
            .await
            .unwrap();
    }
    let (_, link, _, page) = get(&c, "/v1/apps/ds4-p/jobs?limit=2").await;
    assert_eq!(keys(&page, "id"), ["j1", "j2"]);
    assert_eq!(page[0]["state"], "starting");
    assert_eq!(
        link.as_deref(),
        Some("</v1/apps/ds4-p/jobs?limit=2&after=j2>; rel=\"next\"")
    );
    let (_, link, _, page) = get(&c, "/v1/apps/ds4-p/jobs?limit=2&after=j2").await;
    assert_eq!((keys(&page, "id"), link), (vec!["j0".into()], None));
    c.store
        .set_job_state("j0", job_state::REMOVED, None)
        .await
        .unwrap();
    let (_, _, _, page) = get(&c, "/v1/apps/ds4-p/jobs").await;
    assert_eq!(
        keys(&page, "id"),
        ["j1", "j2"],
        "removed jobs are not listed"
    );
}
