//! The controller's dashboard: logins (users store, failure limit), member access through
//! the REST API's checks, user errors from the shared handler functions.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use http::{header, Request, StatusCode};
use paas_web_ui::{ActionError, Dashboard, LoginOutcome, Need, Refusal, SessionUser, Viewer};
use tower::ServiceExt;

use super::ControllerDashboard;
use crate::config::Settings;
use crate::state::Controller;

async fn controller(dir: &tempfile::TempDir) -> Arc<Controller> {
    let settings = Settings::new(
        dir.path().to_path_buf(),
        "127.0.0.1:8080".parse().unwrap(),
        8000,
        "localhost",
    )
    .unwrap();
    Controller::open(settings).await.unwrap()
}

#[tokio::test]
async fn admin_logs_in_with_the_admin_token_and_the_key_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let c = controller(&dir).await;
    let d = ControllerDashboard::new(Arc::clone(&c));
    let token = c.tokens.admin().to_string();
    assert_eq!(
        d.login("admin", &token, None).await.unwrap(),
        LoginOutcome::User(SessionUser {
            name: "admin".into(),
            admin: true
        })
    );
    assert_eq!(
        d.login("admin", "wrong", None).await.unwrap(),
        LoginOutcome::Wrong
    );
    assert_eq!(
        d.login("root", &token, None).await.unwrap(),
        LoginOutcome::Wrong
    );
    assert!(d.session_key().len() >= 32);
    let again = ControllerDashboard::new(c);
    assert_eq!(again.session_key(), d.session_key(), "kept in the data dir");
}

#[tokio::test]
async fn bad_input_is_a_user_error() {
    let dir = tempfile::tempdir().unwrap();
    let d = ControllerDashboard::new(controller(&dir).await);
    let admin = viewer("admin", true);
    assert!(matches!(
        d.create_app(&admin, "Bad_Name").await,
        Err(ActionError::User(_))
    ));
    d.create_app(&admin, "hello").await.unwrap();
    assert!(matches!(
        d.create_app(&admin, "hello").await,
        Err(ActionError::User(_))
    ));
    let bad = BTreeMap::from([("BAD KEY".to_string(), Some("x".to_string()))]);
    assert!(matches!(
        d.set_config("hello", bad).await,
        Err(ActionError::User(_))
    ));
    let good = BTreeMap::from([("GOOD".to_string(), Some("x".to_string()))]);
    assert_eq!(
        d.set_config("hello", good).await.unwrap(),
        None,
        "no release yet"
    );
    assert_eq!(d.config("hello").await.unwrap()["GOOD"], "x");
    // Values that would break every release: refused with the API's words, not stored.
    for (value, words) in [("a\0b", "NUL byte"), (&*"x".repeat(40_000), "32 KB")] {
        let change = BTreeMap::from([("V".to_string(), Some(value.to_string()))]);
        assert!(matches!(
            d.set_config("hello", change).await,
            Err(ActionError::User(m)) if m.contains("value of V") && m.contains(words)
        ));
    }
    assert!(!d.config("hello").await.unwrap().contains_key("V"));
    // The PATCH handler's rules and message.
    assert_eq!(
        d.scale("hello", "web", 2).await,
        Err(ActionError::User(
            "hello has no release yet: deploy it with `git push` before scaling".into()
        ))
    );
    assert!(matches!(
        d.destroy_app("hello", "hell").await,
        Err(ActionError::User(m)) if m.contains("type its name, hello")
    ));
    assert!(matches!(
        d.rename_app("hello", "Bad_Name").await,
        Err(ActionError::User(_))
    ));
    assert!(matches!(
        d.restart_job("hello", "nope").await,
        Err(ActionError::User(m)) if m.contains("no running job nope")
    ));
    assert!(matches!(
        d.restart_type("hello", "web").await,
        Err(ActionError::User(m)) if m.contains("no running jobs of type web")
    ));
    assert_eq!(d.rename_app("hello", "hi").await.unwrap().name, "hi");
    d.destroy_app("hi", "hi").await.unwrap();
    assert!(d.app("hi").await.unwrap().is_none());
    assert!(matches!(
        d.add_domain("hello", "not a host").await,
        Err(ActionError::User(_))
    ));
    assert!(matches!(
        d.set_draining("nope", true).await,
        Err(ActionError::User(_))
    ));
}

#[tokio::test]
async fn pages_are_mounted_behind_the_login_and_heartbeat_stats_are_kept() {
    let dir = tempfile::tempdir().unwrap();
    let c = controller(&dir).await;
    let resp = crate::http::app(Arc::clone(&c))
        .oneshot(Request::get("/").body(Body::empty()).unwrap())
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::SEE_OTHER);
    assert_eq!(resp.headers()[header::LOCATION], "/login");
    for cpu in [1000, 2000] {
        let hb = format!(
            r#"{{"name":"n1","url":"http://127.0.0.1:1","memory_bytes":1024,
                "stats":[{{"job_id":"j1","cpu_usage_usec":{cpu},"memory_bytes":5,
                "at":"2026-01-01T00:00:00Z"}}]}}"#
        );
        let req = Request::post("/v1/nodes/heartbeat")
            .header(header::AUTHORIZATION, format!("Bearer {}", c.tokens.node()))
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from(hb))
            .unwrap();
        let resp = crate::http::app(Arc::clone(&c)).oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    }
    let samples = c.job_stats.samples("j1");
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[1].cpu_usage_usec, 2000);
    assert_eq!(c.job_stats.latest_memory("j1"), Some(5));
}

fn viewer(name: &str, admin: bool) -> Viewer {
    Viewer {
        name: name.into(),
        admin,
        source: Some("10.200.60.9".parse().unwrap()),
        path: "/test".into(),
    }
}

#[tokio::test]
async fn members_log_in_and_get_only_their_apps_through_the_api_checks() {
    let dir = tempfile::tempdir().unwrap();
    let c = controller(&dir).await;
    let d = ControllerDashboard::new(Arc::clone(&c));
    c.store
        .create_user("ann", crate::store::role::MEMBER, Some("ann-pass-1"))
        .await
        .unwrap();
    assert_eq!(
        d.login("ann", "ann-pass-1", None).await.unwrap(),
        LoginOutcome::User(SessionUser {
            name: "ann".into(),
            admin: false
        })
    );
    let admin = viewer("admin", true);
    let ann = viewer("ann", false);
    d.create_app(&admin, "ds4-other").await.unwrap();
    // A member who creates an app collaborates on it.
    d.create_app(&ann, "ds4-mine").await.unwrap();
    let names = |apps: Vec<paas_api::App>| apps.into_iter().map(|a| a.name).collect::<Vec<_>>();
    assert_eq!(names(d.apps(&ann, None, 50).await.unwrap()), ["ds4-mine"]);
    assert_eq!(
        names(d.apps(&admin, None, 50).await.unwrap()),
        ["ds4-mine", "ds4-other"]
    );
    assert_eq!(d.authorize(&ann, Need::App("ds4-mine")).await, Ok(()));
    assert!(matches!(
        d.authorize(&ann, Need::App("ds4-other")).await,
        Err(Refusal::NotFound(_))
    ));
    assert!(matches!(
        d.authorize(&ann, Need::Admin).await,
        Err(Refusal::Forbidden(_))
    ));
    assert_eq!(d.authorize(&admin, Need::Admin).await, Ok(()));
    assert_eq!(d.authorize(&admin, Need::App("ds4-other")).await, Ok(()));
    // Collaborating later opens the app; a removed user's session ends.
    c.store.add_collaborator("ds4-other", "ann").await.unwrap();
    assert_eq!(d.authorize(&ann, Need::App("ds4-other")).await, Ok(()));
    assert_eq!(d.user("ann").await.unwrap().map(|u| u.admin), Some(false));
    c.store.delete_user("ann").await.unwrap();
    assert_eq!(d.user("ann").await.unwrap(), None);
    assert!(matches!(
        d.authorize(&ann, Need::App("ds4-mine")).await,
        Err(Refusal::Internal(_))
    ));
}

#[tokio::test]
async fn the_apps_list_is_a_page_the_store_cuts_after_the_members_filter() {
    let dir = tempfile::tempdir().unwrap();
    let c = controller(&dir).await;
    let d = ControllerDashboard::new(Arc::clone(&c));
    c.store
        .create_user("ann", crate::store::role::MEMBER, Some("ann-pass-1"))
        .await
        .unwrap();
    let (admin, ann) = (viewer("admin", true), viewer("ann", false));
    for name in ["pg4-a", "pg4-c"] {
        d.create_app(&admin, name).await.unwrap();
    }
    for name in ["pg4-b", "pg4-d", "pg4-e"] {
        d.create_app(&ann, name).await.unwrap();
    }
    let names = |apps: Vec<paas_api::App>| apps.into_iter().map(|a| a.name).collect::<Vec<_>>();
    let page = |v, after, limit| d.apps(v, after, limit);
    assert_eq!(
        names(page(&admin, None, 2).await.unwrap()),
        ["pg4-a", "pg4-b"]
    );
    assert_eq!(
        names(page(&admin, Some("pg4-b"), 2).await.unwrap()),
        ["pg4-c", "pg4-d"]
    );
    // A member's pages are full pages of their own apps.
    assert_eq!(
        names(page(&ann, None, 2).await.unwrap()),
        ["pg4-b", "pg4-d"]
    );
    assert_eq!(
        names(page(&ann, Some("pg4-d"), 2).await.unwrap()),
        ["pg4-e"]
    );
    assert!(page(&ann, Some("pg4-c"), 2).await.unwrap().is_empty());
}

/// A controller whose automatic certificates point at an ACME directory nobody serves
/// (loopback port 9), so every order fails fast with a reason.
async fn controller_with_acme(dir: &tempfile::TempDir) -> Arc<Controller> {
    let mut settings = Settings::new(
        dir.path().to_path_buf(),
        "127.0.0.1:8080".parse().unwrap(),
        8000,
        "localhost",
    )
    .unwrap();
    settings.acme = Some(crate::acme::AcmeSettings {
        directory: "http://127.0.0.1:9/directory".into(),
        email: None,
        ca_file: None,
    });
    Controller::open(settings).await.unwrap()
}

#[tokio::test]
async fn automatic_certificates_are_read_and_set_with_the_api_functions() {
    // Without an ACME CA: off, and turning them on is the API's 409 message.
    let dir = tempfile::tempdir().unwrap();
    let c = controller(&dir).await;
    let d = ControllerDashboard::new(Arc::clone(&c));
    c.store.create_app("ac4").await.unwrap();
    let off = d.acme("ac4").await.unwrap();
    assert!(!off.enabled && !off.available, "{off:?}");
    assert!(matches!(
        d.set_acme("ac4", true).await,
        Err(ActionError::User(m)) if m.contains("--acme-directory")
    ));
    assert!(matches!(
        d.set_acme("nope", false).await,
        Err(ActionError::User(m)) if m.contains("no app named nope")
    ));

    // With one: on, each custom domain's state (pending, then failed with the reason).
    let dir = tempfile::tempdir().unwrap();
    let c = controller_with_acme(&dir).await;
    let d = ControllerDashboard::new(Arc::clone(&c));
    c.store.create_app("ac4").await.unwrap();
    c.store.add_domain("ac4", "www.ac4.test").await.unwrap();
    d.set_acme("ac4", true).await.unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let failed = loop {
        let on = d.acme("ac4").await.unwrap();
        assert!(on.enabled && on.available, "{on:?}");
        assert_eq!(on.domains.len(), 1, "{on:?}");
        assert_eq!(on.domains[0].hostname, "www.ac4.test");
        if on.domains[0].state == "failed" {
            break on.domains[0].clone();
        }
        assert_eq!(on.domains[0].state, "pending", "{on:?}");
        assert!(
            std::time::Instant::now() < deadline,
            "no order ended: {on:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(failed.reason.contains("127.0.0.1:9"), "{failed:?}");
    assert_eq!(c.store.acme_apps().await.unwrap(), ["ac4"]);
    d.set_acme("ac4", false).await.unwrap();
    let off = d.acme("ac4").await.unwrap();
    assert!(
        !off.enabled && off.available && off.domains.is_empty(),
        "{off:?}"
    );
    assert!(c.store.acme_apps().await.unwrap().is_empty());
}

#[tokio::test]
async fn error_pages_keep_the_layout_and_unknown_paths_get_one() {
    let dir = tempfile::tempdir().unwrap();
    let c = controller(&dir).await;
    let key = ControllerDashboard::new(Arc::clone(&c)).session_key();
    let cookie = format!(
        "paas_session={}",
        paas_web_ui::session::Session::new("admin").encode(&key)
    );
    let get = |uri: &str, cookie: Option<&str>, accept: Option<&str>| {
        let mut req = Request::get(uri);
        if let Some(cookie) = cookie {
            req = req.header(header::COOKIE, cookie);
        }
        if let Some(accept) = accept {
            req = req.header(header::ACCEPT, accept);
        }
        let app = crate::http::app(Arc::clone(&c));
        let req = req.body(Body::empty()).unwrap();
        async move {
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            let body = axum::body::to_bytes(resp.into_body(), 1 << 20)
                .await
                .unwrap();
            (status, String::from_utf8_lossy(&body).into_owned())
        }
    };
    let html = Some("text/html,application/xhtml+xml");
    // An app that does not exist, with a session: the 404 page has the nav and logout.
    let (status, body) = get("/apps/nope", Some(&cookie), html).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("App not found"), "{body}");
    assert!(body.contains("class=\"logout\""), "{body}");
    assert!(
        body.contains("id=\"nav-nodes\""),
        "admins get the Nodes link: {body}"
    );
    // A path nothing answers: the same layout for a browser with a session, a login link
    // without one, a bare 404 for other clients; the API keeps its JSON 404.
    let (status, body) = get("/no/such/page", Some(&cookie), html).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("There is no page at /no/such/page"), "{body}");
    assert!(body.contains("class=\"logout\""), "{body}");
    let (status, body) = get("/no/such/page", None, html).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(body.contains("id=\"nav-login\""), "{body}");
    assert!(!body.contains("class=\"logout\""), "{body}");
    let (status, body) = get("/no/such/page", None, None).await;
    assert_eq!((status, body.as_str()), (StatusCode::NOT_FOUND, ""));
    let (status, body) = get("/v1/nope", None, html).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

#[tokio::test]
async fn failed_dashboard_logins_use_the_api_limiter() {
    let dir = tempfile::tempdir().unwrap();
    let c = controller(&dir).await;
    let d = ControllerDashboard::new(Arc::clone(&c));
    let token = c.tokens.admin().to_string();
    let ip = Some("10.200.61.7".parse().unwrap());
    let other = Some("10.200.61.8".parse().unwrap());
    // Nine failures elsewhere (bad API tokens, say) and one wrong dashboard password use
    // up the source's budget of ten.
    for _ in 0..9 {
        c.access.fail(crate::auth::limit::Budget::People, ip);
    }
    assert_eq!(
        d.login("admin", "wrong", ip).await.unwrap(),
        LoginOutcome::Wrong
    );
    assert!(
        c.access
            .check(crate::auth::limit::Budget::People, ip)
            .is_err(),
        "the dashboard failure counted"
    );
    // Now even the right password is refused before it is looked at.
    assert!(matches!(
        d.login("admin", &token, ip).await.unwrap(),
        LoginOutcome::Limited(s) if s >= 1
    ));
    assert!(matches!(
        d.login("admin", &token, other).await.unwrap(),
        LoginOutcome::User(_)
    ));
}

#[test]
fn nodes_reserve_each_jobs_formation_memory_like_the_scheduler() {
    use crate::scheduler::{ObservedJob, Phase, DEFAULT_MEMORY_BYTES};
    let job = |id: &str, t: &str, node: &str, phase: Phase| ObservedJob {
        id: id.into(),
        app: "ds4-app".into(),
        release: 1,
        process_type: t.into(),
        node: node.into(),
        phase,
        healthy: true,
    };
    let jobs = [
        job("a", "web", "n1", Phase::Up),
        job("b", "web", "n1", Phase::Starting),
        job("c", "worker", "n1", Phase::Stopping),
        job("d", "web", "n1", Phase::Finished),
        job("e", "web", "n2", Phase::Up),
    ];
    let sizes =
        std::collections::HashMap::from([(("ds4-app".to_string(), "web".to_string()), 1u64 << 30)]);
    // Two web jobs of 1 GiB (resized) and a stopping worker with the default; the
    // finished job and the other node's do not count.
    assert_eq!(
        super::reserved_on("n1", &jobs, &sizes),
        (2 << 30) + DEFAULT_MEMORY_BYTES
    );
    assert_eq!(super::reserved_on("n2", &jobs, &sizes), 1 << 30);
    assert_eq!(super::reserved_on("n3", &jobs, &sizes), 0);
}

#[tokio::test]
async fn volume_forms_answer_user_errors_with_the_apis_words() {
    let dir = tempfile::tempdir().unwrap();
    let d = ControllerDashboard::new(controller(&dir).await);
    d.create_app(&viewer("admin", true), "vol").await.unwrap();
    assert!(d.volumes("vol").await.unwrap().is_empty());
    assert!(d.volumes("nope").await.unwrap().is_empty());
    let user = |r: Result<(), ActionError>| match r {
        Err(ActionError::User(m)) => m,
        other => panic!("not a user error: {other:?}"),
    };
    assert!(user(d.create_volume("vol", "Up", "1G").await).contains("not a volume name"));
    assert!(user(d.create_volume("vol", "up", "2X").await).contains("not a volume size"));
    // No node has ever registered with this controller.
    assert!(user(d.create_volume("vol", "up", "1G").await).contains("no node is up"));
    assert!(user(d.mount_volume("vol", "up", "web", "/data").await).contains("no volume named up"));
    assert!(user(d.unmount_volume("vol", "up").await).contains("no volume named up"));
    assert!(user(d.destroy_volume("vol", "up", "vol").await).contains("no volume named up"));
}

/// A form POST to the whole controller app with `user`'s session cookie: (status, body).
async fn post_form(
    c: &Arc<Controller>,
    user: &str,
    csrf: Option<&str>,
    uri: &str,
    form: &str,
) -> (StatusCode, String) {
    let d = ControllerDashboard::new(Arc::clone(c));
    let s = paas_web_ui::session::Session::new(user);
    let token = csrf.unwrap_or(&s.csrf);
    let req = Request::post(uri)
        .header(
            header::COOKIE,
            format!("paas_session={}", s.encode(&d.session_key())),
        )
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from(format!("{form}&csrf={token}")))
        .unwrap();
    let resp = crate::http::app(Arc::clone(c)).oneshot(req).await.unwrap();
    let status = resp.status();
    let body = axum::body::to_bytes(resp.into_body(), 4 << 20)
        .await
        .unwrap();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// The text of the page's add-on error (`#addon-error`), if any.
fn addon_error(page: &str) -> Option<String> {
    let start = page.find("id=\"addon-error\">")? + "id=\"addon-error\">".len();
    Some(page[start..start + page[start..].find('<')?].to_string())
}

/// The add-on forms through the real controller: the page lists the add-on, its backup and
/// the services' plans; a bad CSRF token changes nothing (403); a wrong confirmation or
/// plan is shown next to the forms (400); another member's add-on and backup are answered
/// exactly like missing ones, from her own app; the right confirmation destroys it.
#[tokio::test]
async fn addon_forms_refuse_bad_tokens_wrong_confirmations_and_other_members() {
    let dir = tempfile::tempdir().unwrap();
    let c = controller(&dir).await;
    let d = ControllerDashboard::new(Arc::clone(&c));
    c.store
        .create_user("ann", crate::store::role::MEMBER, Some("ann-pass-1"))
        .await
        .unwrap();
    let (admin, ann) = (viewer("admin", true), viewer("ann", false));
    d.create_app(&admin, "shop").await.unwrap();
    d.create_app(&ann, "mine").await.unwrap();
    d.create_addon(&admin, "shop", "postgresql", "")
        .await
        .unwrap();
    let addons = d.addons(&admin, "shop").await.unwrap();
    assert_eq!(addons.len(), 1, "{addons:?}");
    let a = &addons[0];
    assert_eq!(
        (a.service.as_str(), a.plan.as_str(), a.owner.as_str()),
        ("postgresql", "mini", "shop")
    );
    assert_eq!(a.attached_as.as_deref(), Some("DATABASE_URL"));
    let name = a.name.clone();
    let row = c.store.addon(&name).await.unwrap().unwrap();
    c.store
        .insert_backup(&crate::store::BackupRow {
            id: "b0123456789ab".into(),
            addon: name.clone(),
            addon_id: row.id,
            app_id: row.app_id,
            size_bytes: 2048,
            state: "completed".into(),
            scheduled: false,
            error: None,
            created_at: crate::util::now_rfc3339(),
            finished_at: None,
        })
        .await
        .unwrap();

    // The page: the add-on, its backup, and every service's plans to choose from.
    let resp = crate::http::app(Arc::clone(&c))
        .oneshot({
            let s = paas_web_ui::session::Session::new("admin");
            Request::get("/apps/shop")
                .header(
                    header::COOKIE,
                    format!("paas_session={}", s.encode(&d.session_key())),
                )
                .body(Body::empty())
                .unwrap()
        })
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let page = String::from_utf8(
        axum::body::to_bytes(resp.into_body(), 4 << 20)
            .await
            .unwrap()
            .to_vec(),
    )
    .unwrap();
    assert!(page.contains(&format!("data-addon=\"{name}\"")), "{page}");
    assert!(page.contains("data-backup=\"b0123456789ab\""), "{page}");
    assert!(page.contains("2K"), "the backup's size");
    for plan in ["postgresql:mini", "postgresql:standard", "redis:basic"] {
        assert!(page.contains(&format!("value=\"{plan}\"")), "{plan}");
    }

    // A wrong CSRF token: 403 and nothing happens.
    let destroy = format!("addon={name}&confirm=shop");
    let (status, _) = post_form(
        &c,
        "admin",
        Some("forged"),
        "/apps/shop/addons/destroy",
        &destroy,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = post_form(
        &c,
        "admin",
        Some("forged"),
        "/apps/shop/addons",
        "plan=redis:mini",
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert!(c.store.addon(&name).await.unwrap().is_some());
    assert_eq!(c.store.addons().await.unwrap().len(), 1);

    // A wrong confirmation, for the add-on and for a restore: said next to the forms.
    let (status, page) = post_form(
        &c,
        "admin",
        None,
        "/apps/shop/addons/destroy",
        &format!("addon={name}&confirm=shopp"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        addon_error(&page).unwrap().contains("--confirm shop"),
        "{page}"
    );
    assert!(c.store.addon(&name).await.unwrap().is_some());
    let (status, page) = post_form(
        &c,
        "admin",
        None,
        "/apps/shop/addons/restore",
        "backup=b0123456789ab&confirm=",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        addon_error(&page).unwrap().contains("shop, to confirm"),
        "{page}"
    );
    // An unknown plan lists the ones there are.
    let (status, page) = post_form(
        &c,
        "admin",
        None,
        "/apps/shop/addons",
        "plan=postgresql:huge",
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(addon_error(&page).unwrap().contains("standard"), "{page}");
    // Capturing needs a running add-on (no node runs here).
    let (status, page) = post_form(
        &c,
        "admin",
        None,
        "/apps/shop/addons/capture",
        &format!("addon={name}"),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(addon_error(&page).unwrap().contains("available"), "{page}");

    // Another member: shop's pages are a 404, and from her own app shop's add-on and backup
    // get the very answer a missing one gets.
    let (status, _) = post_form(&c, "ann", None, "/apps/shop/addons/destroy", &destroy).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    for (uri, theirs, missing) in [
        (
            "/apps/mine/addons/destroy",
            format!("addon={name}&confirm=mine"),
            "addon=postgresql-nope-0000&confirm=mine".to_string(),
        ),
        (
            "/apps/mine/addons/capture",
            format!("addon={name}"),
            "addon=postgresql-nope-0000".to_string(),
        ),
        (
            "/apps/mine/addons/restore",
            "backup=b0123456789ab&confirm=mine".to_string(),
            "backup=b0000000000zz&confirm=mine".to_string(),
        ),
    ] {
        let (s1, p1) = post_form(&c, "ann", None, uri, &theirs).await;
        let (s2, p2) = post_form(&c, "ann", None, uri, &missing).await;
        assert_eq!(s1, s2, "{uri}");
        let (e1, e2) = (addon_error(&p1).unwrap(), addon_error(&p2).unwrap());
        let e2 = e2
            .replace("postgresql-nope-0000", &name)
            .replace("b0000000000zz", "b0123456789ab");
        assert_eq!(e1, e2, "{uri}");
    }
    assert!(d.addons(&ann, "mine").await.unwrap().is_empty());
    assert!(d.addon_backups("mine").await.unwrap().is_empty());
    assert!(c.store.addon(&name).await.unwrap().is_some());

    // The right confirmation destroys it, with its backups.
    let (status, _) = post_form(&c, "admin", None, "/apps/shop/addons/destroy", &destroy).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(c.store.addon(&name).await.unwrap().is_none());
    assert!(c.store.backup("b0123456789ab").await.unwrap().is_none());
}

/// A GET to the whole controller app with `user`'s session cookie: (status, headers, body).
async fn get_as(
    c: &Arc<Controller>,
    user: &str,
    uri: &str,
) -> (StatusCode, http::HeaderMap, Vec<u8>) {
    let d = ControllerDashboard::new(Arc::clone(c));
    let s = paas_web_ui::session::Session::new(user);
    let req = Request::get(uri)
        .header(
            header::COOKIE,
            format!("paas_session={}", s.encode(&d.session_key())),
        )
        .body(Body::empty())
        .unwrap();
    let resp = crate::http::app(Arc::clone(c)).oneshot(req).await.unwrap();
    let (status, headers) = (resp.status(), resp.headers().clone());
    let body = axum::body::to_bytes(resp.into_body(), 4 << 20)
        .await
        .unwrap();
    (status, headers, body.to_vec())
}

/// Attach (with `--as`) and detach from the dashboard, a backup's download link and the
/// add-on's size, with the API's rules: a member attaches only add-ons of apps she may use
/// (another member's is answered like a missing one), the owner app cannot detach, a bad
/// CSRF token changes nothing; a backup downloads whole through an app its add-on is
/// attached to and through no other member's app; the size shows once measured.
#[tokio::test]
async fn addons_attach_detach_and_download_from_the_dashboard_with_the_apis_rules() {
    let dir = tempfile::tempdir().unwrap();
    let c = controller(&dir).await;
    let d = ControllerDashboard::new(Arc::clone(&c));
    for user in ["ann", "bob"] {
        c.store
            .create_user(user, crate::store::role::MEMBER, None)
            .await
            .unwrap();
    }
    let (ann, bob) = (viewer("ann", false), viewer("bob", false));
    d.create_app(&ann, "shop").await.unwrap();
    d.create_app(&ann, "reports").await.unwrap();
    d.create_app(&bob, "bobs").await.unwrap();
    d.create_addon(&ann, "shop", "postgresql", "")
        .await
        .unwrap();
    d.create_addon(&bob, "bobs", "redis", "").await.unwrap();
    let theirs = |app: &str| {
        let c = Arc::clone(&c);
        let app = app.to_string();
        async move {
            let id = c.store.app_id(&app).await.unwrap().unwrap();
            c.store
                .addons()
                .await
                .unwrap()
                .into_iter()
                .find(|a| a.app_id == id)
                .unwrap()
        }
    };
    let (pg, redis) = (theirs("shop").await, theirs("bobs").await);

    // A forged token: nothing is attached.
    let attach = format!("addon={}&as=analytics", pg.name);
    let (status, _) = post_form(
        &c,
        "ann",
        Some("forged"),
        "/apps/reports/addons/attach",
        &attach,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        c.store
            .addon_attachments(Some(&pg.name))
            .await
            .unwrap()
            .len(),
        1
    );

    // Bob's add-on, attached to ann's app: the very answer a missing one gets.
    let (s1, p1) = post_form(
        &c,
        "ann",
        None,
        "/apps/reports/addons/attach",
        &format!("addon={}&as=stolen", redis.name),
    )
    .await;
    let (s2, p2) = post_form(
        &c,
        "ann",
        None,
        "/apps/reports/addons/attach",
        "addon=redis-nope-0000&as=stolen",
    )
    .await;
    assert_eq!((s1, s2), (StatusCode::BAD_REQUEST, StatusCode::BAD_REQUEST));
    assert_eq!(
        addon_error(&p1).unwrap(),
        addon_error(&p2)
            .unwrap()
            .replace("redis-nope-0000", &redis.name)
    );
    assert_eq!(
        c.store
            .addon_attachments(Some(&redis.name))
            .await
            .unwrap()
            .len(),
        1
    );
    // Nor from bob's side: ann's add-on onto his app.
    let (status, page) = post_form(
        &c,
        "bob",
        None,
        "/apps/bobs/addons/attach",
        &format!("addon={}&as=stolen", pg.name),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(
        addon_error(&page).unwrap().contains("no add-on named"),
        "{page}"
    );
    // Nor onto ann's app, which bob may not use.
    let (status, _) = post_form(
        &c,
        "bob",
        None,
        "/apps/reports/addons/attach",
        &format!("addon={}&as=stolen", redis.name),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Ann attaches her own add-on to her other app, as ANALYTICS_URL.
    let (status, page) = post_form(&c, "ann", None, "/apps/reports/addons/attach", &attach).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{page}");
    let reports = c.store.app_id("reports").await.unwrap().unwrap();
    let t = c.store.addon_attachments(Some(&pg.name)).await.unwrap();
    assert!(
        t.iter()
            .any(|t| t.app_id == reports && t.var == "ANALYTICS_URL"),
        "{t:?}"
    );
    let (status, _, page) = get_as(&c, "ann", "/apps/reports").await;
    assert_eq!(status, StatusCode::OK);
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains(&format!("data-addon=\"{}\"", pg.name)),
        "{page}"
    );
    assert!(
        page.contains("of shop") && page.contains("ANALYTICS_URL"),
        "{page}"
    );
    assert!(page.contains("/apps/reports/addons/detach"), "{page}");
    assert!(page.contains("id=\"addon-attach-form\""), "{page}");

    // The owner app cannot detach it; bob cannot detach it from ann's app.
    let detach = format!("addon={}", pg.name);
    let (status, page) = post_form(&c, "ann", None, "/apps/shop/addons/detach", &detach).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(addon_error(&page).unwrap().contains("destroy it"), "{page}");
    let (status, _) = post_form(&c, "bob", None, "/apps/reports/addons/detach", &detach).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = post_form(
        &c,
        "ann",
        Some("forged"),
        "/apps/reports/addons/detach",
        &detach,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        c.store
            .addon_attachments(Some(&pg.name))
            .await
            .unwrap()
            .len(),
        2
    );
    let (status, _) = post_form(&c, "ann", None, "/apps/reports/addons/detach", &detach).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        c.store
            .addon_attachments(Some(&pg.name))
            .await
            .unwrap()
            .len(),
        1
    );

    // The size: unknown until its node reports it.
    let mut placed = pg.clone();
    placed.node = Some("n1".into());
    c.store.update_addon_run(&placed).await.unwrap();
    c.store
        .upsert_node("n1", "http://127.0.0.1:9", 1 << 30, crate::util::unix_ms())
        .await
        .unwrap();
    assert_eq!(d.addons(&ann, "shop").await.unwrap()[0].data_bytes, None);
    crate::addons::record_volume_use(
        &c,
        "n1",
        &[paas_api::VolumeUse {
            name: crate::addons::volume(pg.id),
            used_bytes: 8_912_896,
            measured_at: crate::util::now_rfc3339(),
        }],
    )
    .await;
    assert_eq!(
        d.addons(&ann, "shop").await.unwrap()[0].data_bytes,
        Some(8_912_896)
    );
    let (_, _, page) = get_as(&c, "ann", "/apps/shop").await;
    let page = String::from_utf8(page).unwrap();
    assert!(
        page.contains("<td class=\"addon-size\">8.5M</td>"),
        "{page}"
    );

    // A completed backup: a download link, the file's bytes, for ann only.
    let backup = |id: &str, of: &crate::store::AddonRow, state: &str| crate::store::BackupRow {
        id: id.into(),
        addon: of.name.clone(),
        addon_id: of.id,
        app_id: of.app_id,
        size_bytes: 9,
        state: state.into(),
        scheduled: false,
        error: None,
        created_at: crate::util::now_rfc3339(),
        finished_at: None,
    };
    for (b, bytes) in [
        (backup("b0123456789ab", &pg, "completed"), &b"PGDMP-ann"[..]),
        (backup("b0123456789ac", &redis, "completed"), b"REDIS-bob"),
        (backup("b0123456789ad", &pg, "running"), b""),
    ] {
        c.store.insert_backup(&b).await.unwrap();
        let file = crate::addons::backups::file(&c, &b);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, bytes).unwrap();
    }
    let (_, _, page) = get_as(&c, "ann", "/apps/shop").await;
    let page = String::from_utf8(page).unwrap();
    let link = "/apps/shop/addons/backups/b0123456789ab/download";
    assert!(page.contains(&format!("href=\"{link}\"")), "{page}");
    assert!(
        !page.contains("b0123456789ad/download"),
        "no link for a running one"
    );
    let (status, headers, body) = get_as(&c, "ann", link).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body, b"PGDMP-ann");
    assert_eq!(
        headers[header::CONTENT_DISPOSITION],
        "attachment; filename=\"b0123456789ab.dump\""
    );
    let (status, _, _) = get_as(
        &c,
        "ann",
        "/apps/shop/addons/backups/b0123456789ad/download",
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "running: no file");

    // Bob: not through ann's app, and from his own app the same 404 as a missing backup.
    let (status, _, body) = get_as(&c, "bob", link).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(!body.windows(9).any(|w| w == b"PGDMP-ann"));
    let (s1, _, b1) = get_as(
        &c,
        "bob",
        "/apps/bobs/addons/backups/b0123456789ab/download",
    )
    .await;
    let (s2, _, b2) = get_as(
        &c,
        "bob",
        "/apps/bobs/addons/backups/b0000000000zz/download",
    )
    .await;
    assert_eq!((s1, s2), (StatusCode::NOT_FOUND, StatusCode::NOT_FOUND));
    let message = |page: Vec<u8>| {
        let page = String::from_utf8(page).unwrap();
        let start = page.find("id=\"error-message\">").unwrap();
        page[start..start + page[start..].find('<').unwrap()].to_string()
    };
    assert_eq!(
        message(b1),
        message(b2).replace("b0000000000zz", "b0123456789ab")
    );
    let (status, _, body) = get_as(
        &c,
        "bob",
        "/apps/bobs/addons/backups/b0123456789ac/download",
    )
    .await;
    assert_eq!(
        (status, body.as_slice()),
        (StatusCode::OK, &b"REDIS-bob"[..])
    );
}
