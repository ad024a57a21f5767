//! The git smart-HTTP auth flow with the real `git` client against the controller's HTTP
//! app on a random port (no agent, no root): no token → 401 and no app; a wrong token → 401;
//! a bad app name → the validation message in the push output; clone → refused.

mod support;

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clone_is_refused_with_a_clear_message() {
    let running = Running::start(false).await;
    let token = running.c.tokens.admin().to_string();
    let app = Arc::new(AppDir::new());
    let url = running.git_url("hello", Some(&token));
    let me = Arc::clone(&app);
    let out = tokio::task::spawn_blocking(move || me.git(&["clone", &url, "copy"]))
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!out.status.success(), "{text}");
    assert!(
        text.contains("403") || text.contains("only `git push`"),
        "{text}"
    );
    assert!(running.c.store.list_apps().await.unwrap().is_empty());
}
