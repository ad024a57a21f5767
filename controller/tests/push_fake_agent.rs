//! The whole push path without containers: the real `git` client pushes to the controller,
//! the real `paas-controller hook` streams the source and the build output, a fake node
//! agent (tests/support) runs the build job and the web jobs, and the router serves the
//! result. Checks the output, releases, zero-downtime replacement, refused branches and a
//! failed build that leaves the running release alone.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant};

use support::{AppDir, FakeAgent, Running};

async fn wait_for_body(running: &Running, app: &str, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = running.request_app(app).await;
        if status == 200 && body.contains(needle) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{app} never answered with {needle:?}; last: {status} {body}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn push_builds_releases_routes_and_replaces() {
    let running = Running::start(true).await;
    let (agent, _tasks) = FakeAgent::join(&running).await;
    let token = running.c.tokens.admin().to_string();
    let url = running.git_url("hello", Some(&token));
    let app = Arc::new(AppDir::new());
    app.write("index.html", "<h1>v1</h1>\n");
    app.commit("v1");

    let (ok, output) = app.push(&url, "main").await;
    assert!(ok, "first push failed:\n{output}");
    eprintln!("first push:\n{output}");
    for expected in [
        "remote: -----> Building hello from ",
        "on stack tiny",
        "remote: -----> Fake app detected",
        "remote: -----> Releasing v1",
        "remote: -----> Deploying... done",
        &format!(
            "http://hello.localhost:{}",
            running.router_addr.rsplit(':').next().unwrap()
        ),
    ] {
        assert!(
            output.contains(expected),
            "push output lacks {expected:?}:\n{output}"
        );
    }
    assert!(!output.contains("paas-result"), "{output}");

    let body = wait_for_body(&running, "hello", "hello from hello-v1-").await;
    assert!(body.contains("port=5000 dyno=web.1"), "{body}");
    let v1_jobs = agent.up_jobs();
    assert_eq!(v1_jobs.len(), 1, "{v1_jobs:?}");
    // The build job was deleted from the node.
    assert!(agent.statuses().iter().all(|s| !s.id.starts_with("build-")));

    let release = running
        .c
        .store
        .get_release("hello", 1)
        .await
        .unwrap()
        .unwrap();
    assert!(
        release.image.starts_with("apps/hello@sha256:"),
        "{}",
        release.image
    );
    assert_eq!(release.process_types["web"], "fake-static-server");
    assert!(
        release.description.starts_with("Deploy "),
        "{}",
        release.description
    );
    let app_row = running.c.store.get_app("hello").await.unwrap().unwrap();
    assert_eq!(app_row.current_release, Some(1));
    let builds = running.c.store.list_builds("hello").await.unwrap();
    assert_eq!(builds[0].status, "succeeded");
    assert_eq!(builds[0].release, Some(1));
    assert!(builds[0].log.contains("Releasing v1"), "{}", builds[0].log);

    // A Procfile overrides the buildpack's default; v2 replaces v1 with no gap.
    app.write("Procfile", "web: ./serve --port $PORT\n");
    app.commit("v2");
    let (ok, output) = app.push(&url, "main").await;
    assert!(ok, "second push failed:\n{output}");
    assert!(output.contains("Releasing v2"), "{output}");
    wait_for_body(&running, "hello", "hello from hello-v2-").await;
    let release = running
        .c
        .store
        .get_release("hello", 2)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(release.process_types["web"], "./serve --port $PORT");
    let deadline = Instant::now() + Duration::from_secs(20);
    while agent.up_jobs().iter().any(|id| v1_jobs.contains(id)) {
        assert!(
            Instant::now() < deadline,
            "v1 still up: {:?}",
            agent.statuses()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    for _ in 0..5 {
        let (status, body) = running.request_app("hello").await;
        assert_eq!(status, 200);
        assert!(body.contains("hello-v2-"), "{body}");
    }

    // Another branch is refused with the rule.
    app.git(&["checkout", "-q", "-b", "feature"]);
    app.write("index.html", "<h1>feature</h1>\n");
    app.commit("feature");
    let (ok, output) = app.push(&url, "feature").await;
    assert!(!ok, "{output}");
    assert!(output.contains("paas deploys the main branch"), "{output}");
    assert!(output.contains("git push paas feature:main"), "{output}");

    // A build that fails rejects the push; v2 keeps serving.
    app.git(&["checkout", "-q", "main"]);
    app.git(&["rm", "-q", "index.html", "Procfile"]);
    app.write("notes.txt", "nothing to run\n");
    app.commit("broken");
    let (ok, output) = app.push(&url, "main").await;
    assert!(!ok, "a failing build was accepted:\n{output}");
    eprintln!("failed push:\n{output}");
    assert!(
        output.contains("No buildpack could build this app"),
        "{output}"
    );
    assert!(output.contains("Build failed (exited 1)"), "{output}");
    let app_row = running.c.store.get_app("hello").await.unwrap().unwrap();
    assert_eq!(app_row.current_release, Some(2));
    let (status, body) = running.request_app("hello").await;
    assert_eq!((status, body.contains("hello-v2-")), (200, true), "{body}");
    let builds = running.c.store.list_builds("hello").await.unwrap();
    assert_eq!(builds[0].status, "failed");
    // The ref was not updated: the server's main still points at v2's commit.
    let server_main = std::process::Command::new("git")
        .args(["--git-dir"])
        .arg(running.c.settings.repo_path("hello"))
        .args(["rev-parse", "refs/heads/main"])
        .output()
        .unwrap();
    let local_v2 = app.git(&["rev-parse", "HEAD~1"]);
    assert_eq!(server_main.stdout, local_v2.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_release_that_crashes_fails_the_push_and_the_old_one_keeps_serving() {
    let running = Running::start(true).await;
    let (_agent, _tasks) = FakeAgent::join(&running).await;
    let token = running.c.tokens.admin().to_string();
    let url = running.git_url("keeper", Some(&token));
    let app = Arc::new(AppDir::new());
    app.write("index.html", "<p>good</p>\n");
    app.commit("good");
    let (ok, output) = app.push(&url, "main").await;
    assert!(ok, "{output}");
    wait_for_body(&running, "keeper", "hello from keeper-v1-").await;

    app.write("Procfile", "web: echo boom; exit 3\n");
    app.commit("crashes");
    let (ok, output) = app.push(&url, "main").await;
    assert!(!ok, "a crashing release was accepted:\n{output}");
    assert!(output.contains("Releasing v2"), "{output}");
    assert!(
        output.contains(
            "v2 did not start serving: its web process crashed 3 times in a row (last: exited 3)"
        ),
        "{output}"
    );
    assert!(
        output.contains("The previous release keeps serving"),
        "{output}"
    );
    let (status, body) = running.request_app("keeper").await;
    assert_eq!(status, 200);
    assert!(body.contains("keeper-v1-"), "{body}");
    let apps = paas_controller::apps::get(&running.c, "keeper")
        .await
        .unwrap()
        .unwrap();
    // Auto rollback: the app's current release is v1 again, and it is up.
    assert_eq!(
        (apps.status.as_str(), apps.current_release),
        ("up", Some(1))
    );
    let builds = running.c.store.list_builds("keeper").await.unwrap();
    assert_eq!(
        (builds[0].status.as_str(), builds[0].release),
        ("failed", Some(2))
    );
}
