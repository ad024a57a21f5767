//! Config values that would break every later release are refused where they enter
//! (issue 14, "Values that break later": a value with a NUL byte or of 1 MiB was stored
//! with 200, and every later release failed to start). Real HTTP against an in-process
//! controller with a deployed app (fake agent):
//!
//! * NUL byte → 422 `invalid_config_value` naming the key; 1 MiB → 422
//!   `config_too_large` naming the key and the 32 KB limit; nothing stored, no release;
//! * the app's total is capped at 64 KB (422 naming the limit), unsetting always works;
//! * twenty concurrent PATCHes of 30 KB each cannot pass the total together.

mod support;

use std::sync::Arc;

use serde_json::{json, Value};
use support::{AppDir, FakeAgent, Running};

async fn patch(running: &Running, app: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .patch(format!("{}/v1/apps/{app}/config", running.api))
        .bearer_auth(running.c.tokens.admin())
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn release_count(running: &Running, app: &str) -> usize {
    running.c.store.list_releases(app).await.unwrap().len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_that_would_break_releases_are_refused_with_422() {
    let running = Running::start(true).await;
    let (_agent, _tasks) = FakeAgent::join(&running).await;
    let dir = Arc::new(AppDir::new());
    dir.write("Procfile", "web: serve\n");
    dir.commit("first");
    let (ok, out) = dir
        .push(
            &running.git_url("vals", Some(running.c.tokens.admin())),
            "main",
        )
        .await;
    assert!(ok, "{out}");
    let releases = release_count(&running, "vals").await;

    let (status, body) = patch(&running, "vals", json!({"GOOD": "1", "BAD": "a\u{0}b"})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "invalid_config_value");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("BAD contains a NUL byte"), "{message}");

    let mib = "x".repeat(1 << 20);
    let (status, body) = patch(&running, "vals", json!({"BIG": mib})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "config_too_large");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("BIG is 1048576 bytes, over the limit of 32 KB (32768 bytes)"),
        "{message}"
    );
    // Nothing of either change was stored, and no release was made.
    assert!(running
        .c
        .store
        .config_vars("vals")
        .await
        .unwrap()
        .is_empty());
    assert_eq!(release_count(&running, "vals").await, releases);

    // The total: two 30 KB values fit, a third does not; unsetting one makes room.
    let kb30 = "y".repeat(30 * 1024);
    for key in ["A", "B"] {
        let (status, body) = patch(&running, "vals", json!({ key: kb30 })).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = patch(&running, "vals", json!({"C": kb30})).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["code"], "config_too_large");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("setting C") && message.contains("64 KB"),
        "{message}"
    );
    let (status, _) = patch(&running, "vals", json!({"A": null, "C": kb30})).await;
    assert_eq!(status, 200, "an unset and a set in one change");
    let config = running.c.store.config_vars("vals").await.unwrap();
    assert_eq!(config.keys().collect::<Vec<_>>(), ["B", "C"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_cannot_pass_the_total_together() {
    let running = Arc::new(Running::start(false).await);
    running.c.store.create_app("race").await.unwrap();
    let kb30 = "z".repeat(30 * 1024);
    let tasks: Vec<_> = (0..20)
        .map(|i| {
            let (running, value) = (Arc::clone(&running), kb30.clone());
            tokio::spawn(async move {
                patch(&running, "race", json!({ format!("K{i}"): value }))
                    .await
                    .0
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let ok = statuses.iter().filter(|s| **s == 200).count();
    assert_eq!(ok, 2, "{statuses:?}");
    assert!(
        statuses.iter().all(|s| *s == 200 || *s == 422),
        "{statuses:?}"
    );
    let config = running.c.store.config_vars("race").await.unwrap();
    let total = paas_api::config_vars::total_bytes(&config);
    assert!(
        total <= paas_api::config_vars::MAX_TOTAL_BYTES,
        "{total} bytes stored"
    );
}
