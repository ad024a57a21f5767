//! Journey: `git push` → build → container → HTTP through the router, and a second push
//! that replaces the first release with no v1 container left behind.

use std::time::{Duration, Instant};

use paas_e2e::{require_root, AppDir, Paas};

#[test]
fn static_app_push_serves_and_second_push_replaces_v1() {
    if !require_root() {
        return;
    }
    let paas = Paas::start();
    let app = AppDir::new();
    app.write("index.html", "<h1>hello v1</h1>\n");
    app.commit("v1");

    let started = Instant::now();
    let push = app.push(&paas.git_url("hello"), "main");
    assert!(push.ok, "first push failed:\n{}", push.output);
    paas.wait_for_body("hello", "hello v1", Duration::from_secs(30))
        .unwrap();
    let first_200 = started.elapsed();
    eprintln!(
        "push-to-first-200 (static app, cold): {} ms",
        first_200.as_millis()
    );

    for expected in [
        "Static HTML app detected",
        "Releasing v1",
        "http://hello.localhost:",
    ] {
        assert!(
            push.output.contains(expected),
            "push output lacks {expected:?}:\n{}",
            push.output
        );
    }
    // The build output reaches the user as git's `remote:` lines.
    assert!(push.output.contains("remote: -----> "), "{}", push.output);

    let apps = paas.get_json("/v1/apps").unwrap();
    let hello = apps
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["name"] == "hello")
        .expect("hello in /v1/apps");
    assert_eq!(hello["current_release"], 1);

    let v1_jobs: Vec<String> = paas
        .agent_jobs()
        .unwrap()
        .into_iter()
        .filter(|j| j["state"] == "up")
        .map(|j| j["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(v1_jobs.len(), 1, "one web job for v1: {v1_jobs:?}");

    app.write("index.html", "<h1>hello v2</h1>\n");
    app.commit("v2");
    let push = app.push(&paas.git_url("hello"), "main");
    assert!(push.ok, "second push failed:\n{}", push.output);
    assert!(push.output.contains("Releasing v2"), "{}", push.output);
    paas.wait_for_body("hello", "hello v2", Duration::from_secs(30))
        .unwrap();

    let releases = paas.get_json("/v1/apps/hello/releases").unwrap();
    let versions: Vec<u64> = releases
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["version"].as_u64().unwrap())
        .collect();
    assert!(
        versions.contains(&1) && versions.contains(&2),
        "{versions:?}"
    );

    // v1's container is stopped once v2 serves.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let jobs = paas.agent_jobs().unwrap();
        let v1_still_up = jobs.iter().any(|j| {
            v1_jobs.contains(&j["id"].as_str().unwrap().to_string()) && j["state"] == "up"
        });
        if !v1_still_up {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "v1's job is still up 30 s after v2 went live: {jobs:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    // And the router keeps serving v2 only.
    for _ in 0..5 {
        let (status, body) = paas.request_app("hello", "/").unwrap();
        assert_eq!(status, 200);
        assert!(body.contains("hello v2"), "{body}");
    }
}

#[test]
fn procfile_app_gets_port_and_config_env() {
    if !require_root() {
        return;
    }
    let paas = Paas::start();
    let app = AppDir::new();
    // A Procfile-only app: a shell script that writes a page naming its PORT, then serves it.
    app.write(
        "Procfile",
        "web: sh -c 'mkdir -p /tmp/www && echo \"port=$PORT dyno=$DYNO\" > /tmp/www/index.html && exec httpd -f -p $PORT -h /tmp/www'\n",
    );
    app.write("README.md", "a procfile app\n");
    app.commit("procfile app");
    let push = app.push(&paas.git_url("procapp"), "main");
    assert!(push.ok, "push failed:\n{}", push.output);
    assert!(push.output.contains("Procfile"), "{}", push.output);
    paas.wait_for_body("procapp", "port=5000", Duration::from_secs(30))
        .unwrap();
    let (_, body) = paas.request_app("procapp", "/").unwrap();
    assert!(body.contains("dyno=web.1"), "{body}");
}
