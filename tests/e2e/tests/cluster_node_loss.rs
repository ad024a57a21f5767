//! Journey on a 3-host cluster made by `deploy/netns-cluster`: web=3, one job per node,
//! and a bounded loop of GET requests through the router (the `paas-router` process)
//! while host 3's link is cut (no reset reaches anyone: its packets just vanish). With 2
//! backends left, not one request fails: the router's kept-alive connections to host 3
//! give up after 2 s unacknowledged, new ones after the 1 s connect timeout, the node is
//! taken out at once (passive health) and each such request goes to another backend.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::Duration;

use paas_e2e::netns::{wait, Layout, NetnsCluster};
use paas_e2e::{require_root, AppDir};
use serde_json::{json, Value};

/// At most this many requests in the loop (one every 20 ms).
const MAX_REQUESTS: usize = 2000;

#[test]
fn a_lost_node_with_two_backends_left_fails_no_request() {
    if !require_root() {
        return;
    }
    let c = NetnsCluster::up(Layout {
        // Not the tags and nets of cluster.rs and cluster_volumes.rs.
        tag: 'n',
        name: "nodeloss",
        octet: 241,
        cluster_cidr: Some("10.215.0.0/16"),
        hosts: 3,
    });
    let app = AppDir::new();
    app.write("index.html", "<h1>hello cluster</h1>\n");
    app.commit("v1");
    let url = format!(
        "http://x:{}@{}/git/hello.git",
        c.token,
        c.api.trim_start_matches("http://")
    );
    let push = app.push(&url, "main");
    assert!(push.ok, "push failed:\n{}", push.output);
    let resp = c
        .client()
        .put(format!("{}/v1/apps/hello/formation/web", c.api))
        .bearer_auth(&c.token)
        .json(&json!({ "count": 3 }))
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "scale: {:?}", resp.text());
    wait("one web job per node", Duration::from_secs(60), || {
        (c.up_jobs_per_host("hello") == [1, 1, 1]).then_some(())
    });
    // Every backend in the router's table and answering (keep-alive connections to each).
    let http = c.client();
    wait("3 backends routed", Duration::from_secs(30), || {
        let routes: Value = std::fs::read_to_string(c.work.join("data/router/table.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())?;
        let n = routes["routes"]
            .as_array()?
            .iter()
            .find(|r| r["app"] == "hello")?["backends"]
            .as_array()?
            .len();
        (n == 3).then_some(())
    });

    let stop = Arc::new(AtomicBool::new(false));
    let router = c.router.clone();
    let stopped = Arc::clone(&stop);
    let load = thread::spawn(move || {
        let (mut ok, mut failures) = (0, Vec::new());
        for _ in 0..MAX_REQUESTS {
            if stopped.load(Ordering::Relaxed) {
                break;
            }
            let result = http
                .get(format!("http://{router}/"))
                .header("host", "hello.localhost")
                .send()
                .and_then(|r| {
                    let s = r.status();
                    r.text().map(|b| (s, b))
                });
            match result {
                Ok((s, b)) if s.is_success() && b.contains("hello cluster") => ok += 1,
                Ok((s, b)) => failures.push(format!("{s}: {}", &b[..b.len().min(200)])),
                Err(e) => failures.push(format!("error: {e}")),
            }
            thread::sleep(Duration::from_millis(20));
        }
        (ok, failures)
    });
    thread::sleep(Duration::from_secs(2));
    c.script(&["link", "down", "3"]);
    // Through the seconds before the controller's health checks notice, and after.
    thread::sleep(Duration::from_secs(15));
    stop.store(true, Ordering::Relaxed);
    let (ok, failures) = load.join().unwrap();
    c.script(&["link", "up", "3"]);
    eprintln!(
        "node lost under load: {ok} requests answered, {} failed",
        failures.len()
    );
    assert!(ok > 100, "only {ok} requests ran");
    assert!(
        failures.is_empty(),
        "{} of {} requests failed while host 3 was lost: {:?}",
        failures.len(),
        ok + failures.len(),
        &failures[..failures.len().min(5)]
    );
}
