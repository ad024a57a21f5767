//! A release whose jobs cannot start is shown `failed` with the reason, never `succeeded`
//! (issue 14: after a config change every later release failed to start while the
//! releases list said `succeeded`). Real HTTP against an in-process controller, its
//! scheduler and a fake agent whose jobs die at once when they get `FAKE_CRASH` (a config
//! var the app cannot live with):
//!
//! * a config change that lets the app serve: `pending`, then `succeeded`;
//! * one that makes it crash: `failed` with "crashed 3 times in a row (last: exited 3)"
//!   in the release list, the one release, and the dashboard's releases table;
//! * undoing it: the next release `succeeded`, the failed one stays `failed`.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{AppDir, FakeAgent, Running};

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

async fn api(running: &Running, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = http()
        .request(method.parse().unwrap(), format!("{}{path}", running.api))
        .bearer_auth(running.c.tokens.admin());
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

/// Release `version` from the list, once its status is no longer `pending` (at most 60 s).
async fn settled(running: &Running, app: &str, version: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, list) = api(running, "GET", &format!("/v1/apps/{app}/releases"), None).await;
        assert_eq!(status, 200, "{list}");
        let release = list
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["version"] == version)
            .cloned()
            .unwrap_or_else(|| panic!("no v{version} in {list}"));
        if release["status"] != "pending" {
            return release;
        }
        assert!(
            Instant::now() < deadline,
            "v{version} still pending after 60 s: {release}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The dashboard's app page for `app`, logged in as admin (the admin token is the first
/// password).
async fn dashboard_page(running: &Running, app: &str) -> String {
    let client = http();
    let base = &running.api;
    let form = client.get(format!("{base}/login")).send().await.unwrap();
    let cookie = form
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("paas_login_csrf="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let csrf = cookie.trim_start_matches("paas_login_csrf=").to_string();
    let admin = running.c.tokens.admin().to_string();
    let login = client
        .post(format!("{base}/login"))
        .header("cookie", &cookie)
        .form(&[("user", "admin"), ("password", &admin), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status().as_u16(), 303);
    let session = login
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("paas_session="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let page = client
        .get(format!("{base}/apps/{app}"))
        .header("cookie", session)
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    page.text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_release_that_cannot_start_is_failed_with_the_reason() {
    let running = Running::start(true).await;
    let (_agent, _tasks) = FakeAgent::join(&running).await;
    let dir = Arc::new(AppDir::new());
    dir.write("Procfile", "web: serve\n");
    dir.commit("first");
    let (ok, out) = dir
        .push(
            &running.git_url("honest", Some(running.c.tokens.admin())),
            "main",
        )
        .await;
    assert!(ok, "{out}");
    assert_eq!(settled(&running, "honest", 1).await["status"], "succeeded");

    // A config change the app lives with: a new release that serves.
    let (status, body) = api(
        &running,
        "PATCH",
        "/v1/apps/honest/config",
        Some(json!({"A": "1"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v2 = settled(&running, "honest", 2).await;
    assert_eq!(v2["status"], "succeeded", "{v2}");
    assert!(v2["status_reason"].is_null());

    // One it cannot live with: every job of v3 dies at once.
    let (status, body) = api(
        &running,
        "PATCH",
        "/v1/apps/honest/config",
        Some(json!({"FAKE_CRASH": "1"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let v3 = settled(&running, "honest", 3).await;
    assert_eq!(v3["status"], "failed", "{v3}");
    let reason = v3["status_reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("web process crashed 3 times in a row (last: exited 3)"),
        "{reason}"
    );
    let (_, one) = api(&running, "GET", "/v1/apps/honest/releases/3", None).await;
    assert_eq!(
        (one["status"].as_str(), one["status_reason"].as_str()),
        (Some("failed"), Some(reason.as_str())),
        "{one}"
    );
    // v2's job kept serving meanwhile.
    let (code, _) = running.request_app("honest").await;
    assert_eq!(code, 200);
    let page = dashboard_page(&running, "honest").await;
    let row = page
        .split("data-version=\"3\"")
        .nth(1)
        .and_then(|rest| rest.split("</tr>").next())
        .unwrap_or_else(|| panic!("no v3 row in the dashboard: {page}"));
    assert!(row.contains("failed"), "{row}");
    assert!(row.contains("crashed 3 times in a row"), "{row}");

    // Undone: the next release serves; v3 stays failed.
    let (status, _) = api(
        &running,
        "PATCH",
        "/v1/apps/honest/config",
        Some(json!({"FAKE_CRASH": null})),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(settled(&running, "honest", 4).await["status"], "succeeded");
    assert_eq!(settled(&running, "honest", 3).await["status"], "failed");
}
