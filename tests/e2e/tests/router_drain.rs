//! The drain wait sees the router process's requests (issue 16): a slow request (the app
//! answers after 6 s) that started before a deploy completes with 200, although the
//! deploy switches the routes to the new release while it runs. The old job exits at
//! once on SIGTERM (its shell traps it), so the request only completes because the
//! controller waited for the `paas-router` process to report no request in flight to the
//! old job before sending the SIGTERM.

use std::time::{Duration, Instant};

use paas_e2e::{require_root, AppDir, Paas};
use serde_json::json;

const APP: &str = "drain";

/// busybox httpd serving `page-$MARK` at `/` and, at `/cgi-bin/slow`, an answer after 6 s;
/// its shell (the container's init) exits at once on SIGTERM, taking httpd with it.
fn slow_app(dir: &AppDir) {
    dir.write(
        "www/cgi-bin/slow",
        "#!/bin/sh\nsleep 6\nprintf 'Content-Type: text/plain\\r\\n\\r\\nslow-done\\n'\n",
    );
    dir.write(
        "Procfile",
        "web: sh -c 'trap \"exit 0\" TERM; rm -rf /tmp/www && cp -r www /tmp/www && \
         chmod +x /tmp/www/cgi-bin/slow && echo page-$MARK > /tmp/www/index.html && \
         httpd -f -p $PORT -h /tmp/www & wait'\n",
    );
    dir.commit("slow app");
}

#[test]
fn a_slow_request_outlives_the_deploy_that_replaces_its_job() {
    if !require_root() {
        return;
    }
    let paas = Paas::start();
    let dir = AppDir::new();
    slow_app(&dir);
    let push = dir.push(&paas.git_url(APP), "main");
    assert!(push.ok, "push failed:\n{}", push.output);
    paas.wait_for_body(APP, "page-", Duration::from_secs(60))
        .unwrap();

    let router = paas.router_addr.clone();
    let slow = std::thread::spawn(move || {
        let client = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(60))
            .build()
            .unwrap();
        let answer = client
            .get(format!("http://{router}/cgi-bin/slow"))
            .header("host", format!("{APP}.localhost"))
            .send()
            .and_then(|r| {
                let status = r.status().as_u16();
                r.text().map(|body| (status, body))
            });
        (answer.map_err(|e| e.to_string()), Instant::now())
    });
    // Let the request reach the old job, then deploy a new release (a config change).
    std::thread::sleep(Duration::from_secs(1));
    let set = paas.call(
        Some(&paas.token),
        "PATCH",
        &format!("/v1/apps/{APP}/config"),
        Some(&json!({"MARK": "two"})),
    );
    assert_eq!(set.status, 200, "{}", set.body);
    paas.wait_for_body(APP, "page-two", Duration::from_secs(60))
        .unwrap();
    let switched = Instant::now();
    let (answer, done) = slow.join().unwrap();
    let (status, body) =
        answer.unwrap_or_else(|e| panic!("the slow request failed: {e}\n{}", paas.log()));
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("slow-done"), "{body}");
    assert!(
        switched < done,
        "the routes switched to the new release only after the slow request ended: the \
         test did not replace the job while it served"
    );
    // The old job went once it had drained.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let jobs = paas.agent_jobs().unwrap_or_default();
        let old: Vec<_> = jobs
            .iter()
            .filter(|j| j["labels"]["paas.app"] == APP && j["labels"]["paas.release"] == "1")
            .collect();
        if old.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "release 1's job stays: {old:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
