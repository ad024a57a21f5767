//! Error pages keep the dashboard's layout (`src/layout.rs`): with a session the nav bar,
//! the user and the logout button; without one a "Log in" link; every message says what is
//! wrong and what to do. Against the fake dashboard (`fake/mod.rs`), mounted with the
//! not-found fallback as the controller mounts it.

mod fake;

use std::sync::Arc;

use axum::http::{header, Request, StatusCode};
use paas_web_ui::session::Session;

use fake::*;

const HTML: &str = "text/html,application/xhtml+xml";

/// The layout of a logged-in page: the nav bar, the user, the logout form.
fn assert_logged_in_layout(what: &str, a: &Answer, user: &str) {
    assert!(
        a.content_type.starts_with("text/html"),
        "{what}: {}",
        a.content_type
    );
    assert!(
        a.body.contains("<a href=\"/\">Apps</a>"),
        "{what}: {}",
        a.body
    );
    assert!(a.body.contains("class=\"logout\""), "{what}: {}", a.body);
    assert!(
        a.body
            .contains(&format!("<span class=\"who\">{user}</span>")),
        "{what}: {}",
        a.body
    );
    assert!(!a.body.contains("id=\"nav-login\""), "{what}: {}", a.body);
}

#[tokio::test]
async fn error_pages_show_the_nav_the_user_and_logout() {
    let d = Arc::new(sample());
    let admin = session();
    let ann = Session::new("ann");
    let get = |uri: &'static str, s: &Session| {
        let (d, s) = (Arc::clone(&d), s.clone());
        async move { send(d, Request::get(uri), Some(&s), "").await }
    };
    for (uri, status, title) in [
        ("/apps/nope", StatusCode::NOT_FOUND, "App not found"),
        ("/apps/hello/builds/zz", StatusCode::NOT_FOUND, "Not found"),
    ] {
        let page = get(uri, &admin).await;
        assert_eq!(page.status, status, "{uri}");
        assert!(page.body.contains(title), "{uri}: {}", page.body);
        assert_logged_in_layout(uri, &page, "admin");
        assert!(
            page.body.contains("id=\"nav-nodes\""),
            "{uri}: admin sees Nodes"
        );
    }
    // A member: 404 for another app, 403 for the nodes page; no Nodes link on either.
    for (uri, status) in [
        ("/apps/fresh", StatusCode::NOT_FOUND),
        ("/nodes", StatusCode::FORBIDDEN),
    ] {
        let page = get(uri, &ann).await;
        assert_eq!(page.status, status, "{uri}");
        assert_logged_in_layout(uri, &page, "ann");
        assert!(
            !page.body.contains("id=\"nav-nodes\""),
            "{uri}: {}",
            page.body
        );
    }
    // A form with a stale token: 403 "Form expired", still with the nav.
    let expired = send(
        Arc::clone(&d),
        Request::post("/apps/hello/config"),
        Some(&admin),
        "key=A&value=1&csrf=stale",
    )
    .await;
    assert_eq!(expired.status, StatusCode::FORBIDDEN);
    assert!(expired.body.contains("Reload the page"), "{}", expired.body);
    assert_logged_in_layout("form expired", &expired, "admin");
    // The logout form on an error page carries the session's token, so it works.
    assert!(
        expired.body.contains(&format!("value=\"{}\"", admin.csrf)),
        "{}",
        expired.body
    );
    // The controller failing: a 500 page that does not leak, with the nav.
    let broken = FakeDashboard {
        fail_with: Some("disk /secret full".into()),
        ..sample()
    };
    let page = send(Arc::new(broken), Request::get("/"), Some(&admin), "").await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(!page.body.contains("/secret"), "{}", page.body);
    assert_logged_in_layout("500", &page, "admin");
}

#[tokio::test]
async fn bad_requests_are_pages_that_say_what_to_do() {
    let d = Arc::new(sample());
    let s = session();
    // A form body that does not parse (axum's rejection, not a dashboard page before).
    let bad = send(
        Arc::clone(&d),
        Request::post("/apps/hello/rollback"),
        Some(&s),
        &format!("version=latest&csrf={}", s.csrf),
    )
    .await;
    assert!(bad.status.is_client_error(), "{}", bad.status);
    assert!(bad.body.contains("<h1>Bad request</h1>"), "{}", bad.body);
    assert!(
        bad.body.contains("version"),
        "says which field: {}",
        bad.body
    );
    assert!(bad.body.contains("send the form again"), "{}", bad.body);
    assert_logged_in_layout("bad form", &bad, "admin");
    // A visit to a form's address.
    let visit = send(
        Arc::clone(&d),
        Request::get("/apps/hello/scale"),
        Some(&s),
        "",
    )
    .await;
    assert_eq!(visit.status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(visit.body.contains("<h1>Not a page</h1>"), "{}", visit.body);
    assert_logged_in_layout("405", &visit, "admin");
    assert!(d.calls.lock().unwrap().is_empty(), "nothing changed");
}

#[tokio::test]
async fn unknown_paths_are_a_not_found_page_for_browsers() {
    let d = Arc::new(sample());
    let browser = || Request::get("/apps/hello/nope/deeper").header(header::ACCEPT, HTML);
    let page = send(Arc::clone(&d), browser(), Some(&session()), "").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(
        page.body
            .contains("There is no page at /apps/hello/nope/deeper"),
        "{}",
        page.body
    );
    assert_logged_in_layout("unknown path", &page, "admin");
    assert!(page.headers.contains_key(header::CONTENT_SECURITY_POLICY));

    // Without a session: a way to log in, no logout.
    let page = send(Arc::clone(&d), browser(), None, "").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(page.body.contains("id=\"nav-login\""), "{}", page.body);
    assert!(page.body.contains("href=\"/login\""), "{}", page.body);
    assert!(!page.body.contains("class=\"logout\""), "{}", page.body);

    // Clients that do not ask for HTML (API, git, registry) get a bare 404.
    let bare = send(d, Request::get("/nope"), None, "").await;
    assert_eq!(
        (bare.status, bare.body.as_str()),
        (StatusCode::NOT_FOUND, "")
    );
}

#[tokio::test]
async fn a_logout_with_a_stale_token_is_a_page_with_a_working_logout() {
    let s = session();
    let page = send(
        Arc::new(sample()),
        Request::post("/logout"),
        Some(&s),
        "csrf=stale",
    )
    .await;
    assert_eq!(page.status, StatusCode::FORBIDDEN);
    assert!(page.body.contains("<h1>Form expired</h1>"), "{}", page.body);
    assert_logged_in_layout("stale logout", &page, "admin");
    assert!(
        page.body.contains(&format!("value=\"{}\"", s.csrf)),
        "{}",
        page.body
    );
}
