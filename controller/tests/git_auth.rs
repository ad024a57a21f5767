//! The git smart-HTTP auth flow with the real `git` client against the controller's HTTP
//! app on a random port (no agent, no root): no token → 401 and no app; a wrong token → 401;
//! a bad app name → the validation message in the push output; clone and fetch for admins
//! and collaborators only.

mod support;

use std::process::Command;
use std::sync::Arc;

use support::{AppDir, Running};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn push_without_or_with_a_wrong_token_is_refused_and_creates_nothing() {
    let running = Running::start(false).await;
    let app = Arc::new(AppDir::new());
    app.write("index.html", "<h1>hi</h1>\n");
    app.commit("first");

    // No credentials: the 401 makes git ask for them; it cannot prompt, so it gives up.
    let (ok, output) = app.push(&running.git_url("notoken", None), "main").await;
    assert!(!ok, "{output}");
    assert!(
        output.contains("could not read Username")
            || output.contains("Authentication failed")
            || output.contains("401"),
        "{output}"
    );

    let (ok, output) = app
        .push(&running.git_url("badtoken", Some("not-the-token")), "main")
        .await;
    assert!(!ok, "{output}");
    assert!(
        output.contains("Authentication failed") || output.contains("401"),
        "{output}"
    );

    // The node token is not enough to push either.
    let node = running.c.tokens.node().to_string();
    let (ok, output) = app
        .push(&running.git_url("nodetoken", Some(&node)), "main")
        .await;
    assert!(!ok, "{output}");

    let apps = running.c.store.list_apps().await.unwrap();
    assert!(apps.is_empty(), "an unauthenticated push created {apps:?}");
    assert!(!running.c.settings.repo_path("notoken").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_app_name_is_explained_in_the_push_output() {
    let running = Running::start(false).await;
    let app = Arc::new(AppDir::new());
    app.write("index.html", "<h1>hi</h1>\n");
    app.commit("first");
    let token = running.c.tokens.admin().to_string();
    let (ok, output) = app
        .push(&running.git_url("Bad_Name", Some(&token)), "main")
        .await;
    assert!(!ok, "{output}");
    assert!(
        output.contains("invalid app name"),
        "the push output lacks the name rule:\n{output}"
    );
    assert!(running.c.store.list_apps().await.unwrap().is_empty());
}

/// `git clone` with the real git client: an admin and the app's collaborator clone what
/// was pushed (and fetch again); a member who is not a collaborator, a node token and a
/// clone of an app that does not exist get 404/403 and no objects; no app is created.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_serves_collaborators_and_no_one_else() {
    let running = Running::start(false).await;
    let admin = running.c.tokens.admin().to_string();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let call = |method: &str, path: &str, token: &str, body: serde_json::Value| {
        http.request(method.parse().unwrap(), format!("{}{path}", running.api))
            .bearer_auth(token)
            .json(&body)
            .send()
    };
    for name in ["ann", "bob"] {
        let body = serde_json::json!({"name": name, "password": format!("{name}-password")});
        assert_eq!(
            call("POST", "/v1/users", &admin, body)
                .await
                .unwrap()
                .status(),
            201
        );
    }
    let login = |name: &str| {
        let body = serde_json::json!({"user": name, "password": format!("{name}-password")});
        let req = http
            .post(format!("{}/v1/login", running.api))
            .json(&body)
            .send();
        async move {
            let v: serde_json::Value = req.await.unwrap().json().await.unwrap();
            v["token"].as_str().unwrap().to_string()
        }
    };
    let (ann, bob) = (login("ann").await, login("bob").await);
    let create = serde_json::json!({"name": "cloned"});
    assert_eq!(
        call("POST", "/v1/apps", &ann, create)
            .await
            .unwrap()
            .status(),
        201
    );

    // Put a commit into the app's repository directly (no build needed to clone it).
    let src = Arc::new(AppDir::new());
    src.write("index.html", "clone me\n");
    src.commit("v1");
    let bare = running.c.settings.repo_path("cloned");
    paas_controller::git::ensure_repo(&bare).await.unwrap();
    let bare_s = bare.display().to_string();
    let pushed = src.git(&["push", "-q", &bare_s, "main"]);
    assert!(pushed.status.success(), "{pushed:?}");
    let head = String::from_utf8(src.git(&["rev-parse", "HEAD"]).stdout).unwrap();

    let clone = |token: &str, app: &str, into: &str| {
        let url = running.git_url(app, Some(token));
        let (me, into) = (Arc::clone(&src), into.to_string());
        async move {
            tokio::task::spawn_blocking(move || {
                let dir = me.dir.path().join(&into);
                let out = me.git(&["clone", &url, dir.to_str().unwrap()]);
                let text = format!(
                    "{}{}",
                    String::from_utf8_lossy(&out.stdout),
                    String::from_utf8_lossy(&out.stderr)
                );
                (out.status.success(), text, dir)
            })
            .await
            .unwrap()
        }
    };
    for (who, token) in [("admin", admin.as_str()), ("ann", ann.as_str())] {
        let (ok, text, dir) = clone(token, "cloned", &format!("by-{who}")).await;
        assert!(ok, "{who}: {text}");
        assert_eq!(
            std::fs::read_to_string(dir.join("index.html")).unwrap(),
            "clone me\n"
        );
        let got = Command::new("git")
            .current_dir(&dir)
            .args(["rev-parse", "HEAD"])
            .output()
            .unwrap();
        assert_eq!(String::from_utf8(got.stdout).unwrap(), head, "{who}");
    }
    // A later push reaches a fetch of the clone.
    src.write("index.html", "v2\n");
    src.commit("v2");
    assert!(src.git(&["push", "-q", &bare_s, "main"]).status.success());
    let ann_dir = src.dir.path().join("by-ann");
    let fetch = Command::new("git")
        .current_dir(&ann_dir)
        .env("GIT_TERMINAL_PROMPT", "0")
        .args(["-c", "credential.helper=", "pull", "-q", "origin", "main"])
        .output()
        .unwrap();
    assert!(fetch.status.success(), "{fetch:?}");
    assert_eq!(
        std::fs::read_to_string(ann_dir.join("index.html")).unwrap(),
        "v2\n"
    );

    // bob is no collaborator: as for the API, the app does not exist for him.
    let (ok, text, dir) = clone(&bob, "cloned", "by-bob").await;
    assert!(!ok, "{text}");
    assert!(text.contains("404") || text.contains("not found"), "{text}");
    assert!(!dir.join("index.html").exists());
    for path in [
        "/git/cloned.git/info/refs?service=git-upload-pack",
        "/git/cloned.git/git-upload-pack",
    ] {
        let method = if path.contains('?') { "GET" } else { "POST" };
        let resp = http
            .request(method.parse().unwrap(), format!("{}{path}", running.api))
            .bearer_auth(&bob)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 404, "{path}");
        let node = http
            .request(method.parse().unwrap(), format!("{}{path}", running.api))
            .bearer_auth(running.c.tokens.node())
            .send()
            .await
            .unwrap();
        assert_eq!(node.status(), 403, "{path}");
        let anonymous = http
            .request(method.parse().unwrap(), format!("{}{path}", running.api))
            .send()
            .await
            .unwrap();
        assert_eq!(anonymous.status(), 401, "{path}");
    }
    // An app that does not exist: 404, and cloning does not create it.
    let (ok, text, _) = clone(&admin, "nothing-here", "none").await;
    assert!(!ok, "{text}");
    assert!(running
        .c
        .store
        .get_app("nothing-here")
        .await
        .unwrap()
        .is_none());
}
