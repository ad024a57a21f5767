//! The dashboard pages against a fake [`Dashboard`] made of plain data (`fake/mod.rs`),
//! driven with `tower::ServiceExt::oneshot` (no socket).

mod fake;

use std::sync::Arc;

use axum::http::{header, Request, StatusCode};
use paas_web_ui::session::Session;

use fake::*;

#[tokio::test]
async fn apps_list_shows_names_releases_and_urls() {
    let page = get(sample(), "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    let body = &page.body;
    assert!(
        body.contains(r#"<a class="name" href="/apps/hello">hello</a>"#),
        "{body}"
    );
    assert!(body.contains(">v2<"), "{body}");
    assert!(
        body.contains(r#"<a href="http://hello.localhost:8000">http://hello.localhost:8000</a>"#),
        "{body}"
    );
    assert!(body.contains("no release yet"), "{body}");
    assert!(body.contains("status-up"), "{body}");
    assert!(body.contains("2024-05-01 12:34 UTC"), "{body}");
    assert!(body.contains(r#"href="/static/app.css""#), "{body}");
    assert!(!body.contains("No apps yet"), "{body}");
}

#[tokio::test]
async fn hostile_names_are_escaped() {
    let hostile = "<script>alert(\"x\")</script>";
    let mut dashboard = sample();
    let mut evil = app("x", Some(1), "<b>up</b>");
    evil.name = hostile.to_string();
    evil.web_url = "javascript:alert(1)".to_string();
    dashboard.apps.push(evil);

    let page = get(dashboard, "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!page.body.contains("<script>"), "{}", page.body);
    assert!(!page.body.contains("<b>up"), "{}", page.body);
    assert!(page.body.contains("&#60;script&#62;"), "{}", page.body);
    // The link target is percent-encoded and the script URL is not a link.
    assert!(page.body.contains("/apps/%3Cscript%3E"), "{}", page.body);
    assert!(!page.body.contains(r#"href="javascript:"#), "{}", page.body);
    assert!(page.body.contains("status-unknown"), "{}", page.body);

    // And in the path of the app page: an impossible name is a 404 that escapes it.
    let page = get(sample(), "/apps/%3Cscript%3Ealert(1)%3C%2Fscript%3E").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(!page.body.contains("<script>"), "{}", page.body);
    assert!(
        page.body.contains("&#60;script&#62;alert(1)"),
        "{}",
        page.body
    );
}

#[tokio::test]
async fn empty_state_says_how_to_deploy() {
    let page = get(FakeDashboard::default(), "/").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("No apps yet"), "{}", page.body);
    assert!(
        page.body
            .contains("git remote add paas http://ctl.example:8080/git/my-app.git"),
        "{}",
        page.body
    );
    assert!(page.body.contains("git push paas main"), "{}", page.body);
    assert!(!page.body.contains("<table"), "{}", page.body);
}

#[tokio::test]
async fn app_page_shows_url_current_release_and_releases_newest_first() {
    let page = get(sample(), "/apps/hello").await;
    assert_eq!(page.status, StatusCode::OK);
    let body = &page.body;
    assert!(body.contains("http://hello.localhost:8000"), "{body}");
    assert!(
        body.contains("git remote add paas http://127.0.0.1:8080/git/hello.git"),
        "{body}"
    );
    let v2 = body.find("Deploy 9f8e7d6").expect("v2 listed");
    let v1 = body.find("Deploy 1a2b3c4").expect("v1 listed");
    assert!(v2 < v1, "newest release first: {body}");
    assert!(
        body.contains(r#"<tr class="current" data-version="2">"#),
        "{body}"
    );
    assert!(body.contains("<code>1a2b3c4</code>"), "{body}");
}

#[tokio::test]
async fn releases_show_their_deploy_status_and_why_one_failed() {
    let mut d = sample();
    let mut v3 = release("hello", 3, "Set BROKEN");
    v3.status = Some("failed".into());
    v3.status_reason =
        Some("its web process crashed 3 times in a row (last: exited 127) <b>".into());
    d.releases.get_mut("hello").unwrap().push(v3);
    let page = get(d, "/apps/hello").await;
    assert_eq!(page.status, StatusCode::OK);
    let row = page
        .body
        .split("data-version=\"3\"")
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .expect("v3 row")
        .to_string();
    assert!(
        row.contains(r#"<span class="status status-crashed">failed</span>"#),
        "{row}"
    );
    assert!(
        row.contains("crashed 3 times in a row (last: exited 127) &#60;b&#62;"),
        "the reason, escaped: {row}"
    );
    assert!(!row.contains("<b>"), "{row}");
    let v2 = page
        .body
        .split("data-version=\"2\"")
        .nth(1)
        .and_then(|r| r.split("</tr>").next())
        .expect("v2 row");
    assert!(v2.contains("status-up\">succeeded</span>"), "{v2}");
}

#[tokio::test]
async fn app_page_without_releases_says_how_to_deploy() {
    let page = get(sample(), "/apps/fresh").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("no release yet"), "{}", page.body);
    assert!(page.body.contains("No releases yet"), "{}", page.body);
    assert!(page.body.contains("git push paas main"), "{}", page.body);
}

#[tokio::test]
async fn unknown_app_is_a_friendly_404() {
    let page = get(sample(), "/apps/nope").await;
    assert_eq!(page.status, StatusCode::NOT_FOUND);
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    assert!(page.body.contains("App not found"), "{}", page.body);
    assert!(page.body.contains("nope"), "{}", page.body);
    assert!(page.body.contains(r#"<a href="/">"#), "{}", page.body);
}

#[tokio::test]
async fn backend_errors_are_a_500_page_that_does_not_leak() {
    let dashboard = FakeDashboard {
        fail_with: Some("database is locked at /var/lib/paas/secret.db".to_string()),
        ..sample()
    };
    let page = get(dashboard, "/").await;
    assert_eq!(page.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(
        page.content_type.starts_with("text/html"),
        "{}",
        page.content_type
    );
    assert!(page.body.contains("Something went wrong"), "{}", page.body);
    assert!(!page.body.contains("secret.db"), "{}", page.body);
}

#[tokio::test]
async fn pages_carry_a_strict_content_security_policy() {
    let page = get(sample(), "/").await;
    let csp = page.headers[header::CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap();
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(csp.contains("style-src 'self'"), "{csp}");
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
}

#[tokio::test]
async fn stylesheet_is_served_as_css() {
    let css = get(FakeDashboard::default(), "/static/app.css").await;
    assert_eq!(css.status, StatusCode::OK);
    assert!(
        css.content_type.starts_with("text/css"),
        "{}",
        css.content_type
    );
    assert!(css.body.contains("@media"), "narrow-screen rules present");
    assert!(!css.body.contains("@import"), "no external stylesheets");
    assert!(!css.body.contains("url("), "no external fonts or images");
}

#[tokio::test]
async fn pages_without_a_session_go_to_the_login_form_but_assets_stay_public() {
    let d = Arc::new(sample());
    for uri in ["/", "/apps/hello", "/nodes", "/apps/hello/stats.json"] {
        let page = send(Arc::clone(&d), Request::get(uri), None, "").await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{uri}");
        assert_eq!(page.headers[header::LOCATION], "/login", "{uri}");
    }
    let forged = Session {
        user: "admin".into(),
        csrf: "x".into(),
        expires: u64::MAX,
    };
    let mut req = Request::get("/");
    req = req.header(
        header::COOKIE,
        format!("paas_session={}", forged.encode(b"other key")),
    );
    let page = send(Arc::clone(&d), req, None, "").await;
    assert_eq!(
        page.status,
        StatusCode::SEE_OTHER,
        "a cookie signed with another key"
    );
    let js = send(d, Request::get("/static/app.js"), None, "").await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.content_type.starts_with("text/javascript"));
    assert!(js.body.contains("EventSource"));
}

#[tokio::test]
async fn login_checks_the_form_token_and_the_password() {
    let d = Arc::new(sample());
    let form = send(Arc::clone(&d), Request::get("/login"), None, "").await;
    assert_eq!(form.status, StatusCode::OK);
    let cookie = form.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"),
        "{cookie}"
    );
    assert!(
        !cookie.contains("Secure"),
        "plain http: no Secure flag: {cookie}"
    );
    let token = cookie
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("paas_login_csrf=")
        .to_string();
    assert!(
        form.body.contains(&format!("value=\"{token}\"")),
        "{}",
        form.body
    );
    let with_cookie =
        || Request::post("/login").header(header::COOKIE, format!("paas_login_csrf={token}"));

    let wrong = send(
        Arc::clone(&d),
        with_cookie(),
        None,
        &format!("user=admin&password=nope&csrf={token}"),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::UNAUTHORIZED);
    assert!(
        wrong.body.contains("Wrong user name or password"),
        "{}",
        wrong.body
    );

    let no_token = send(
        Arc::clone(&d),
        with_cookie(),
        None,
        "user=admin&password=s3cret&csrf=other",
    )
    .await;
    assert_eq!(no_token.status, StatusCode::FORBIDDEN);

    let ok = send(
        Arc::clone(&d),
        with_cookie(),
        None,
        &format!("user=admin&password=s3cret&csrf={token}"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.headers[header::LOCATION], "/");
    let value = ok
        .headers
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("paas_session="))
        .expect("session cookie");
    let value = value
        .split(';')
        .next()
        .unwrap()
        .trim_start_matches("paas_session=");
    let s = Session::decode(value, KEY).expect("a valid session");
    assert_eq!(s.user, "admin");

    // Over https (as a proxy says) the cookie is Secure.
    let https = send(
        d,
        Request::get("/login").header("x-forwarded-proto", "https"),
        None,
        "",
    )
    .await;
    assert!(https.headers[header::SET_COOKIE]
        .to_str()
        .unwrap()
        .contains("; Secure"));
}

#[tokio::test]
async fn forms_need_the_sessions_csrf_token() {
    let d = Arc::new(sample());
    let s = session();
    for (uri, form) in [
        ("/apps/hello/config", "key=A&value=1".to_string()),
        ("/apps/hello/scale", "type=web&quantity=2".to_string()),
        ("/apps/hello/rollback", "version=1".to_string()),
        ("/nodes/node-a/drain", String::new()),
        ("/apps", "name=x".to_string()),
        ("/apps/hello/addons", "plan=postgresql:mini".to_string()),
        ("/apps/hello/addons/capture", "addon=a".to_string()),
        (
            "/apps/hello/addons/restore",
            "backup=b&confirm=hello".to_string(),
        ),
        (
            "/apps/hello/addons/destroy",
            "addon=a&confirm=hello".to_string(),
        ),
    ] {
        let body = format!("{form}&csrf=wrong");
        let page = send(Arc::clone(&d), Request::post(uri), Some(&s), &body).await;
        assert_eq!(page.status, StatusCode::FORBIDDEN, "{uri}");
    }
    assert!(d.calls.lock().unwrap().is_empty(), "nothing changed");
}

#[tokio::test]
async fn app_forms_change_things_and_show_errors_next_to_the_field() {
    let d = Arc::new(sample());
    let s = session();
    let csrf = &s.csrf;
    let post = |uri: &'static str, form: String| {
        let d = Arc::clone(&d);
        let s = s.clone();
        async move { send(d, Request::post(uri), Some(&s), &form).await }
    };
    let ok = post(
        "/apps/hello/config",
        format!("key=GREETING&value=hi&csrf={csrf}"),
    )
    .await;
    assert_eq!(ok.status, StatusCode::SEE_OTHER);
    assert_eq!(ok.headers[header::LOCATION], "/apps/hello#config");
    let bad = post(
        "/apps/hello/config",
        format!("key=BAD+KEY&value=hi&csrf={csrf}"),
    )
    .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    let field = bad.body.find("id=\"config-key\"").expect("key field");
    let error = bad.body.find("id=\"config-error\"").expect("error shown");
    assert!(
        error > field && error - field < 400,
        "error right after the field"
    );
    assert!(
        bad.body.contains("value=\"BAD KEY\""),
        "what was typed is kept"
    );
    // Values that would break every later release: NUL bytes, over 32 KB.
    let nul = post(
        "/apps/hello/config",
        format!("key=N&value=a%00b&csrf={csrf}"),
    )
    .await;
    assert_eq!(nul.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(nul.body.contains("N contains a NUL byte"), "{}", nul.body);
    let big = "x".repeat(40_000);
    let huge = post(
        "/apps/hello/config",
        format!("key=BIG&value={big}&csrf={csrf}"),
    )
    .await;
    assert_eq!(huge.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        huge.body
            .contains("BIG is 40000 bytes, over the limit of 32 KB"),
        "{}",
        huge.body
    );
    assert!(!huge.body.contains(&big), "a huge value is not sent back");
    assert_eq!(
        post(
            "/apps/hello/scale",
            format!("type=web&quantity=2&csrf={csrf}")
        )
        .await
        .status,
        StatusCode::SEE_OTHER
    );
    let nan = post(
        "/apps/hello/scale",
        format!("type=web&quantity=lots&csrf={csrf}"),
    )
    .await;
    assert!(nan.body.contains("id=\"scale-error\""), "{}", nan.body);
    post("/apps/hello/rollback", format!("version=1&csrf={csrf}")).await;
    post(
        "/apps/hello/domains",
        format!("hostname=www.example.org&csrf={csrf}"),
    )
    .await;
    post(
        "/apps/hello/config/unset",
        format!("key=SECRET&csrf={csrf}"),
    )
    .await;
    post("/nodes/node-a/drain", format!("csrf={csrf}")).await;
    let created = post("/apps", format!("name=new-app&csrf={csrf}")).await;
    assert_eq!(created.headers[header::LOCATION], "/apps/new-app");
    let bad_name = post("/apps", format!("name=Bad_Name&csrf={csrf}")).await;
    assert!(
        bad_name.body.contains("id=\"create-error\""),
        "{}",
        bad_name.body
    );
    let calls = d.calls.lock().unwrap().clone();
    assert_eq!(
        calls,
        vec![
            "config hello {\"GREETING\": Some(\"hi\")}",
            "scale hello web=2",
            "rollback hello v1",
            "domain+ hello www.example.org",
            "config hello {\"SECRET\": None}",
            "drain node-a true",
            "create new-app",
        ]
    );
}

#[tokio::test]
async fn app_page_shows_formation_jobs_masked_config_domains_builds_and_live_parts() {
    let page = get(sample(), "/apps/hello").await;
    let body = &page.body;
    for needle in [
        "id=\"scale-web\"",
        "<strong>web.1</strong>",
        "node-a",
        "exited with 1",
        "data-key=\"SECRET\"",
        "class=\"secret\" hidden>hunter2&#60;b&#62;<",
        "www.example.com",
        "/apps/hello/builds/b1",
        "data-src=\"/apps/hello/logs/stream\"",
        "data-src=\"/apps/hello/stats.json\"",
        "Roll back to v1",
        "src=\"/static/app.js\"",
    ] {
        assert!(body.contains(needle), "{needle} missing: {body}");
    }
    assert!(
        !body.contains("Roll back to v2"),
        "the current release has no button"
    );
    let build = get(sample(), "/apps/hello/builds/b1").await;
    assert!(
        build.body.contains("-----&#62; Building &#60;tiny&#62;"),
        "{}",
        build.body
    );
    assert_eq!(
        get(sample(), "/apps/hello/builds/zz").await.status,
        StatusCode::NOT_FOUND
    );
    let stats = get(sample(), "/apps/hello/stats.json").await;
    assert!(
        stats.body.contains("\"cpu_percent\":[1.5,2.5]"),
        "{}",
        stats.body
    );
    let nodes = get(sample(), "/nodes").await;
    assert!(
        nodes.body.contains("4 GiB") && nodes.body.contains("hello/web"),
        "{}",
        nodes.body
    );
    assert!(nodes.body.contains("/nodes/node-a/drain"), "{}", nodes.body);
}

#[tokio::test]
async fn the_apps_list_is_paged_by_the_controller() {
    let apps: Vec<_> = (0..60)
        .map(|n| app(&format!("app-{n:02}"), Some(1), "up"))
        .collect();
    let d = Arc::new(FakeDashboard { apps, ..sample() });
    let s = session();
    let first = send(Arc::clone(&d), Request::get("/"), Some(&s), "").await;
    assert_eq!(first.status, StatusCode::OK);
    assert_eq!(
        first.body.matches("data-app=").count(),
        50,
        "{}",
        first.body
    );
    assert!(first.body.contains("data-app=\"app-49\""));
    assert!(!first.body.contains("data-app=\"app-50\""));
    assert!(
        first
            .body
            .contains("href=\"/?after=app-49\" id=\"apps-next\""),
        "{}",
        first.body
    );
    assert!(!first.body.contains("id=\"apps-first\""), "{}", first.body);
    // The controller was asked for one page (and one app more, to know another follows).
    assert_eq!(d.apps_asked.lock().unwrap().clone(), [(None, 51)]);

    let second = send(Arc::clone(&d), Request::get("/?after=app-49"), Some(&s), "").await;
    assert_eq!(
        second.body.matches("data-app=").count(),
        10,
        "{}",
        second.body
    );
    assert!(second.body.contains("data-app=\"app-50\""));
    assert!(!second.body.contains("id=\"apps-next\""), "{}", second.body);
    assert!(second.body.contains("id=\"apps-first\""), "{}", second.body);
    assert_eq!(
        d.apps_asked.lock().unwrap().last().cloned(),
        Some((Some("app-49".to_string()), 51))
    );
    // Past the end (or after an app that is gone): not the first-run instructions.
    let past = send(Arc::clone(&d), Request::get("/?after=zzz"), Some(&s), "").await;
    assert_eq!(past.status, StatusCode::OK);
    assert!(past.body.contains("id=\"apps-end\""), "{}", past.body);
    assert!(!past.body.contains("No apps yet"), "{}", past.body);
}

#[tokio::test]
async fn automatic_certificates_show_each_domains_state_and_a_switch() {
    let page = get(sample(), "/apps/hello").await;
    let body = &page.body;
    for needle in [
        "id=\"acme-state\">on<",
        "data-domain=\"www.example.com\"",
        "data-acme=\"issued\"",
        "expires 2031-02-03 04:05 UTC",
        "action=\"/apps/hello/acme\"",
        "name=\"enabled\" value=\"false\"",
        "Turn off",
    ] {
        assert!(body.contains(needle), "{needle} missing: {body}");
    }
    // A failed order shows its reason; a pending one says it is under way.
    let mut d = sample();
    d.acme.domains[0].state = "failed".into();
    d.acme.domains[0].reason = "the CA could not reach http://www.example.com/".into();
    let failed = get(d, "/apps/hello").await;
    assert!(
        failed.body.contains("data-acme=\"failed\""),
        "{}",
        failed.body
    );
    assert!(
        failed
            .body
            .contains("the CA could not reach http://www.example.com/"),
        "{}",
        failed.body
    );
    let mut d = sample();
    d.acme.domains[0].state = "pending".into();
    let pending = get(d, "/apps/hello").await;
    assert!(
        pending.body.contains("data-acme=\"pending\""),
        "{}",
        pending.body
    );
    // Off: no per-domain state, a Turn on button.
    let off = get(sample(), "/apps/fresh").await;
    assert!(off.body.contains("id=\"acme-state\">off<"), "{}", off.body);
    assert!(
        off.body.contains("name=\"enabled\" value=\"true\""),
        "{}",
        off.body
    );
    assert!(!off.body.contains("data-acme="), "{}", off.body);

    // The switch calls the controller and goes back to the section.
    let d = Arc::new(sample());
    let s = session();
    let post = |form: String| {
        let (d, s) = (Arc::clone(&d), s.clone());
        async move { send(d, Request::post("/apps/hello/acme"), Some(&s), &form).await }
    };
    let done = post(format!("enabled=false&csrf={}", s.csrf)).await;
    assert_eq!(done.status, StatusCode::SEE_OTHER);
    assert_eq!(done.headers[header::LOCATION], "/apps/hello#acme");
    let odd = post(format!("enabled=maybe&csrf={}", s.csrf)).await;
    assert_eq!(odd.status, StatusCode::BAD_REQUEST);
    assert!(odd.body.contains("id=\"acme-error\""), "{}", odd.body);
    assert_eq!(d.calls.lock().unwrap().clone(), ["acme hello false"]);

    // Without an ACME CA the page says so, and turning them on shows the controller's
    // message next to the switch.
    let d = Arc::new(FakeDashboard {
        acme_available: false,
        ..sample()
    });
    let page = send(Arc::clone(&d), Request::get("/apps/fresh"), Some(&s), "").await;
    assert!(
        page.body.contains("id=\"acme-unavailable\""),
        "{}",
        page.body
    );
    let refused = send(
        Arc::clone(&d),
        Request::post("/apps/fresh/acme"),
        Some(&s),
        &format!("enabled=true&csrf={}", s.csrf),
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    let error = refused.body.find("id=\"acme-error\"").expect("error shown");
    let form = refused.body.find("id=\"acme\"").expect("the switch");
    assert!(error > form, "the error sits in the switch's form");
    assert!(
        refused.body.contains("--acme-directory URL"),
        "{}",
        refused.body
    );
    assert!(d.calls.lock().unwrap().is_empty());
}
