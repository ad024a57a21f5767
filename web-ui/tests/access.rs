//! Members, logins and the app-management forms against the fake dashboard: a member sees
//! only their apps (404 elsewhere, 403 for nodes), a removed user's session ends, a limited
//! source gets 429, rename, destroy and job controls call the controller.

mod fake;

use std::sync::Arc;

use axum::http::{header, Request, StatusCode};
use paas_web_ui::session::Session;

use fake::*;

#[tokio::test]
async fn members_see_only_their_apps_and_never_the_nodes() {
    let d = Arc::new(sample());
    let ann = Session::new("ann");
    let get = |uri: &'static str| {
        let (d, s) = (Arc::clone(&d), ann.clone());
        async move { send(d, Request::get(uri), Some(&s), "").await }
    };
    let list = get("/").await;
    assert_eq!(list.status, StatusCode::OK);
    assert!(list.body.contains("data-app=\"hello\""), "{}", list.body);
    assert!(!list.body.contains("data-app=\"fresh\""), "{}", list.body);
    assert!(!list.body.contains("href=\"/nodes\""), "no Nodes link");
    assert_eq!(get("/apps/hello").await.status, StatusCode::OK);
    for uri in [
        "/apps/fresh",
        "/apps/fresh/stats.json",
        "/apps/fresh/logs/stream",
        "/apps/fresh/builds/b1",
    ] {
        let page = get(uri).await;
        assert_eq!(page.status, StatusCode::NOT_FOUND, "{uri}");
        assert!(page.body.contains("App not found"), "{uri}: {}", page.body);
    }
    let nodes = get("/nodes").await;
    assert_eq!(nodes.status, StatusCode::FORBIDDEN);
    assert!(nodes.body.contains("only admins"), "{}", nodes.body);
    let csrf = &ann.csrf;
    for (uri, form) in [
        ("/apps/fresh/scale", "type=web&quantity=2"),
        ("/apps/fresh/config", "key=A&value=1"),
        ("/apps/fresh/rename", "new_name=mine"),
        ("/apps/fresh/destroy", "confirm=fresh"),
        ("/apps/fresh/jobs/job-1/restart", ""),
        ("/apps/fresh/restart", "type=web"),
        ("/apps/fresh/acme", "enabled=false"),
        ("/apps/fresh/addons", "plan=redis:mini"),
        ("/apps/fresh/addons/capture", "addon=a"),
        ("/apps/fresh/addons/restore", "backup=b&confirm=fresh"),
        ("/apps/fresh/addons/destroy", "addon=a&confirm=fresh"),
        ("/nodes/node-a/drain", ""),
    ] {
        let body = format!("{form}&csrf={csrf}");
        let page = send(Arc::clone(&d), Request::post(uri), Some(&ann), &body).await;
        assert!(
            page.status == StatusCode::NOT_FOUND || page.status == StatusCode::FORBIDDEN,
            "{uri}: {}",
            page.status
        );
    }
    assert!(d.calls.lock().unwrap().is_empty(), "nothing changed");
    // Admins see every app and the Nodes link.
    let admin = send(Arc::clone(&d), Request::get("/"), Some(&session()), "").await;
    assert!(admin.body.contains("data-app=\"fresh\""), "{}", admin.body);
    assert!(admin.body.contains("href=\"/nodes\""), "{}", admin.body);
}

#[tokio::test]
async fn a_session_of_a_removed_user_ends() {
    let gone = Session::new("bob");
    let page = send(Arc::new(sample()), Request::get("/"), Some(&gone), "").await;
    assert_eq!(page.status, StatusCode::SEE_OTHER);
    assert_eq!(page.headers[header::LOCATION], "/login");
    // The cookie goes too, so `/login` shows the form instead of sending the browser home.
    let cookie = page.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(
        cookie.starts_with("paas_session=;") && cookie.contains("Max-Age=0"),
        "{cookie}"
    );
}

#[tokio::test]
async fn a_limited_source_gets_429_with_retry_after() {
    let d = Arc::new(sample());
    let req = Request::post("/login").header(header::COOKIE, "paas_login_csrf=t0k");
    let page = send(d, req, None, "user=limited&password=x&csrf=t0k").await;
    assert_eq!(page.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(page.headers[header::RETRY_AFTER], "42");
    assert!(
        page.body.contains("Too many failed logins"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn rename_destroy_and_job_controls_call_the_controller() {
    let d = Arc::new(sample());
    let s = session();
    let csrf = s.csrf.clone();
    let post = |uri: &'static str, form: String| {
        let (d, s) = (Arc::clone(&d), s.clone());
        async move { send(d, Request::post(uri), Some(&s), &form).await }
    };
    let page = get(sample(), "/apps/hello").await;
    for needle in [
        "id=\"rename-form\"",
        "id=\"destroy-confirm\"",
        "/apps/hello/jobs/job-1/restart",
        "/apps/hello/jobs/job-1/stop",
        "formaction=\"/apps/hello/restart\"",
    ] {
        assert!(page.body.contains(needle), "{needle}: {}", page.body);
    }
    let bad = post(
        "/apps/hello/rename",
        format!("new_name=Bad_Name&csrf={csrf}"),
    )
    .await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    let field = bad.body.find("id=\"rename-name\"").expect("field");
    let error = bad.body.find("id=\"rename-error\"").expect("error");
    assert!(error > field && error - field < 400, "{}", bad.body);
    assert!(bad.body.contains("value=\"Bad_Name\""), "{}", bad.body);
    let ok = post("/apps/hello/rename", format!("new_name=hi&csrf={csrf}")).await;
    assert_eq!(ok.headers[header::LOCATION], "/apps/hi");
    let wrong = post("/apps/hello/destroy", format!("confirm=hell&csrf={csrf}")).await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    let field = wrong.body.find("id=\"destroy-confirm\"").expect("field");
    let error = wrong.body.find("id=\"destroy-error\"").expect("error");
    assert!(error > field && error - field < 400, "{}", wrong.body);
    let gone = post("/apps/hello/destroy", format!("confirm=hello&csrf={csrf}")).await;
    assert_eq!(gone.headers[header::LOCATION], "/");
    let restarted = post("/apps/hello/jobs/job-1/restart", format!("csrf={csrf}")).await;
    assert_eq!(restarted.headers[header::LOCATION], "/apps/hello#jobs");
    let missing = post("/apps/hello/jobs/job-9/restart", format!("csrf={csrf}")).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(
        missing.body.contains("id=\"jobs-error\""),
        "{}",
        missing.body
    );
    post("/apps/hello/jobs/job-1/stop", format!("csrf={csrf}")).await;
    post("/apps/hello/restart", format!("type=web&csrf={csrf}")).await;
    assert_eq!(
        d.calls.lock().unwrap().clone(),
        vec![
            "rename hello hi",
            "destroy hello",
            "restart hello job-1",
            "stop hello job-1",
            "restart hello type web",
        ]
    );
}
