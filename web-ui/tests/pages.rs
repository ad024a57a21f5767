//! The dashboard pages against a fake [`Dashboard`] made of plain data, driven with
//! `tower::ServiceExt::oneshot` (no socket).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, Request, StatusCode};
use paas_api::{App, Release};
use paas_web_ui::{router, Dashboard};
use tower::ServiceExt;

/// Pure data: the apps, their releases, or an error for every question.
#[derive(Default)]
struct FakeDashboard {
    apps: Vec<App>,
    releases: BTreeMap<String, Vec<Release>>,
    fail_with: Option<String>,
}

impl Dashboard for FakeDashboard {
    async fn apps(&self) -> Result<Vec<App>, String> {
        match &self.fail_with {
            Some(err) => Err(err.clone()),
            None => Ok(self.apps.clone()),
        }
    }

    async fn app(&self, name: &str) -> Result<Option<App>, String> {
        Ok(self.apps().await?.into_iter().find(|a| a.name == name))
    }

    async fn releases(&self, name: &str) -> Result<Vec<Release>, String> {
        if let Some(err) = &self.fail_with {
            return Err(err.clone());
        }
        Ok(self.releases.get(name).cloned().unwrap_or_default())
    }
}

fn app(name: &str, current_release: Option<u32>, status: &str) -> App {
    App {
        name: name.to_string(),
        created_at: "2024-05-01T12:34:56Z".to_string(),
        current_release,
        web_url: format!("http://{name}.localhost:8000"),
        git_url: format!("http://127.0.0.1:8080/git/{name}.git"),
        status: status.to_string(),
    }
}

fn release(app: &str, version: u32, description: &str) -> Release {
    Release {
        app: app.to_string(),
        version,
        image: format!("apps/{app}@sha256:{version:064}"),
        source_version: Some("1a2b3c4d5e6f".to_string()),
        process_types: BTreeMap::from([("web".to_string(), "./server".to_string())]),
        config_keys: vec![],
        description: description.to_string(),
        created_at: format!("2024-05-0{version}T10:00:00Z"),
    }
}

fn sample() -> FakeDashboard {
    FakeDashboard {
        apps: vec![app("hello", Some(2), "up"), app("fresh", None, "idle")],
        releases: BTreeMap::from([(
            "hello".to_string(),
            vec![
                release("hello", 1, "Deploy 1a2b3c4"),
                release("hello", 2, "Deploy 9f8e7d6"),
            ],
        )]),
        fail_with: None,
    }
}

struct Answer {
    status: StatusCode,
    content_type: String,
    headers: axum::http::HeaderMap,
    body: String,
}

async fn get(dashboard: FakeDashboard, uri: &str) -> Answer {
    let request = Request::get(uri)
        .header(header::HOST, "ctl.example:8080")
        .body(Body::empty())
        .unwrap();
    let response = router(Arc::new(dashboard)).oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .unwrap();
    Answer {
        status,
        content_type,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

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
    assert!(body.contains(r#"<tr class="current">"#), "{body}");
    assert!(body.contains("<code>1a2b3c4</code>"), "{body}");
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
