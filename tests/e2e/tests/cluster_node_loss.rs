//! Journey on a 3-host cluster made by `deploy/netns-cluster`: web=3, one job per node,
//! and a bounded loop of GET requests through the router (the `paas-router` process)
//! while host 3's link is cut (no reset reaches anyone: its packets just vanish). With 2
//! backends left, not one request fails: the router's kept-alive connections to host 3
//! give up after 2 s unacknowledged, new ones after the 1 s connect timeout, the node is
//! taken out at once (passive health) and each such request goes to another backend.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use paas_e2e::{bins, require_root, stacks_dir, workspace_root, AppDir};
use serde_json::{json, Value};

/// At most this many requests in the loop (one every 20 ms).
const MAX_REQUESTS: usize = 2000;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Cluster {
    env: Vec<(String, String)>,
    work: PathBuf,
    api: String,
    router: String,
    net: String,
    token: String,
}

impl Cluster {
    fn up() -> Cluster {
        let bins = bins();
        let pid = std::process::id();
        // Not the prefix and net cluster.rs takes for the same pid range.
        let prefix = format!("n{:04x}", pid % 0xffff);
        let net = format!("10.241.{}", pid % 200 + 20);
        let work = std::env::temp_dir().join(format!("paas-e2e-nodeloss-{prefix}"));
        let (api_port, router_port) = (free_port(), free_port());
        let env = vec![
            ("PREFIX".to_string(), prefix),
            ("NET".to_string(), net.clone()),
            ("API_PORT".to_string(), api_port.to_string()),
            ("ROUTER_PORT".to_string(), router_port.to_string()),
            (
                "BIN".to_string(),
                bins.controller.parent().unwrap().display().to_string(),
            ),
            ("WORK".to_string(), work.display().to_string()),
            ("STACKS".to_string(), stacks_dir().display().to_string()),
            ("CLUSTER_CIDR".to_string(), "10.215.0.0/16".to_string()),
        ];
        let mut c = Cluster {
            api: format!("http://{net}.1:{api_port}"),
            router: format!("127.0.0.1:{router_port}"),
            env,
            work,
            net,
            token: String::new(),
        };
        let out = c.script(&["up", "3"]);
        c.token = out
            .lines()
            .find_map(|l| l.strip_prefix("export PAAS_TOKEN="))
            .expect("the admin token")
            .to_string();
        c
    }

    fn script(&self, args: &[&str]) -> String {
        let out = Command::new(workspace_root().join("deploy/netns-cluster"))
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .expect("run deploy/netns-cluster");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "netns-cluster {args:?} failed: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    fn client(&self) -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    /// The app's up web jobs per host (1..=3), as the agents report them.
    fn jobs_per_host(&self) -> Vec<usize> {
        let http = self.client();
        (1..=3)
            .map(|i| {
                let token = std::fs::read_to_string(self.work.join(format!("h{i}/api-token")))
                    .unwrap_or_default();
                http.get(format!("http://{}.{}:7070/v1/jobs", self.net, 10 + i))
                    .bearer_auth(token.trim())
                    .timeout(Duration::from_secs(2))
                    .send()
                    .ok()
                    .and_then(|r| r.json::<Vec<Value>>().ok())
                    .map(|jobs| {
                        jobs.iter()
                            .filter(|j| j["labels"]["paas.app"] == "hello" && j["state"] == "up")
                            .count()
                    })
                    .unwrap_or(0)
            })
            .collect()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            for name in ["controller.log", "data/router/router.log"] {
                let text = std::fs::read_to_string(self.work.join(name)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(40).collect();
                eprintln!("---- {name} ----");
                for l in tail.into_iter().rev() {
                    eprintln!("{l}");
                }
            }
        }
        let _ = Command::new(workspace_root().join("deploy/netns-cluster"))
            .arg("down")
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .status();
    }
}

fn wait<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_lost_node_with_two_backends_left_fails_no_request() {
    if !require_root() {
        return;
    }
    let c = Cluster::up();
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
        (c.jobs_per_host() == [1, 1, 1]).then_some(())
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
