//! Journey on a 3-host cluster made by `deploy/netns-cluster` (network namespaces on a test
//! bridge, one real agent per host, real containers), one app through it all so CI pays for
//! one cluster and one build:
//! scale web=4 spreads over the 3 nodes; a job on one node reaches neither another node's
//! host ports nor its agent port (walls across nodes, from the heartbeat answers); SIGKILL + restart of an agent keeps the same
//! container pids serving with no restart; a killed app process is restarted and its
//! restart count shows; a node whose agent is SIGKILLed and whose link is cut has its jobs
//! started elsewhere while the app keeps answering through the router; a drained node's
//! jobs move off it; a controller
//! restarted in the middle of a scale converges to exactly the formation.

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use paas_e2e::netns::{wait, Layout, NetnsCluster};
use paas_e2e::{require_root, AppDir};
use serde_json::{json, Value};

const HOSTS: usize = 3;

/// The shared harness plus what this journey needs: the shared node token and one client.
struct Cluster {
    c: NetnsCluster,
    node_token: String,
    http: reqwest::blocking::Client,
}

impl std::ops::Deref for Cluster {
    type Target = NetnsCluster;
    fn deref(&self) -> &NetnsCluster {
        &self.c
    }
}

impl Cluster {
    fn up() -> Cluster {
        let c = NetnsCluster::up(Layout {
            tag: 'c',
            name: "cluster",
            octet: 240,
            cluster_cidr: None,
            hosts: HOSTS,
        });
        let node_token = std::fs::read_to_string(c.work.join("data/node-token"))
            .unwrap()
            .trim()
            .to_string();
        let http = c.client();
        Cluster {
            c,
            node_token,
            http,
        }
    }

    fn node(&self, i: usize) -> String {
        format!("{}h{i}", self.prefix)
    }

    fn agent_url(&self, i: usize) -> String {
        format!("http://{}.{}:7070", self.net, 10 + i)
    }

    fn api_get(&self, path: &str) -> Value {
        self.http
            .get(format!("{}{path}", self.api))
            .bearer_auth(&self.token)
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.json())
            .unwrap_or(Value::Null)
    }

    fn scale(&self, app: &str, count: u32) {
        let resp = self
            .http
            .put(format!("{}/v1/apps/{app}/formation/web", self.api))
            .bearer_auth(&self.token)
            .json(&json!({ "count": count }))
            .send()
            .unwrap();
        assert!(resp.status().is_success(), "scale: {:?}", resp.text());
    }

    /// Host i's agent credential (what its controller presents; the agent refuses the
    /// shared node token once registered).
    fn agent_token(&self, i: usize) -> String {
        std::fs::read_to_string(self.work.join(format!("h{i}/api-token")))
            .unwrap_or_default()
            .trim()
            .to_string()
    }

    /// The status of `GET /v1/jobs` on host i's agent with `token`.
    fn agent_status(&self, i: usize, token: &str) -> u16 {
        self.http
            .get(format!("{}/v1/jobs", self.agent_url(i)))
            .bearer_auth(token)
            .send()
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    }

    /// The app's up jobs as host i's agent reports them: id → pid. None if it does not answer.
    fn agent_up(&self, i: usize, app: &str) -> Option<BTreeMap<String, i64>> {
        let jobs: Vec<Value> = self
            .http
            .get(format!("{}/v1/jobs", self.agent_url(i)))
            .bearer_auth(self.agent_token(i))
            .timeout(Duration::from_secs(2))
            .send()
            .ok()?
            .json()
            .ok()?;
        Some(
            jobs.iter()
                .filter(|j| j["labels"]["paas.app"] == app && j["state"] == "up")
                .map(|j| {
                    (
                        j["id"].as_str().unwrap().to_string(),
                        j["pid"].as_i64().unwrap(),
                    )
                })
                .collect(),
        )
    }

    /// Host number → the app's up jobs, over the given hosts.
    fn up_jobs(&self, hosts: &[usize], app: &str) -> BTreeMap<usize, BTreeMap<String, i64>> {
        hosts
            .iter()
            .map(|&i| (i, self.agent_up(i, app).unwrap_or_default()))
            .collect()
    }

    fn request_app(&self, app: &str) -> Option<(u16, String)> {
        let resp = self
            .http
            .get(format!("http://{}/", self.router))
            .header("Host", format!("{app}.localhost"))
            .send()
            .ok()?;
        Some((resp.status().as_u16(), resp.text().unwrap_or_default()))
    }
}

fn total(jobs: &BTreeMap<usize, BTreeMap<String, i64>>) -> usize {
    jobs.values().map(BTreeMap::len).sum()
}

#[test]
fn cluster_spreads_survives_agent_app_node_and_controller_failures() {
    if !require_root() {
        return;
    }
    let c = Cluster::up();
    let all = [1, 2, 3];
    let nodes = c.api_get("/v1/nodes");
    assert_eq!(nodes.as_array().map(Vec::len), Some(HOSTS), "{nodes}");
    // Each agent asked the controller for its subnet (--subnet auto): all distinct.
    let subnets: BTreeSet<String> = (1..=HOSTS)
        .map(|i| std::fs::read_to_string(c.work.join(format!("h{i}/subnet"))).unwrap())
        .collect();
    assert_eq!(subnets.len(), HOSTS, "{subnets:?}");
    // Each agent registered its own credential: it refuses the shared node token and the
    // other nodes' credentials, and accepts its own.
    for i in 1..=HOSTS {
        wait("the agent registered", Duration::from_secs(10), || {
            c.work
                .join(format!("h{i}/registered"))
                .exists()
                .then_some(())
        });
        assert_eq!(c.agent_status(i, &c.node_token), 401, "host {i}");
        let other = c.agent_token(i % HOSTS + 1);
        assert_eq!(c.agent_status(i, &other), 401, "host {i}");
        assert_eq!(c.agent_status(i, &c.agent_token(i)), 200, "host {i}");
    }

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
    wait(
        "the app answers through the router",
        Duration::from_secs(30),
        || {
            c.request_app("hello")
                .filter(|(s, b)| *s == 200 && b.contains("hello cluster"))
        },
    );

    // Scale web=4 over 3 nodes: every node gets one, one gets two.
    c.scale("hello", 4);
    let spread = wait("4 web jobs up", Duration::from_secs(60), || {
        let jobs = c.up_jobs(&all, "hello");
        (total(&jobs) == 4).then_some(jobs)
    });
    let per_node: Vec<usize> = spread.values().map(BTreeMap::len).collect();
    assert!(
        per_node.iter().all(|n| (1..=2).contains(n)),
        "web=4 over 3 nodes must spread 2/1/1: {spread:?}"
    );

    walls_between_nodes(&c);

    // SIGKILL host 1's agent and start it again: the same containers keep serving.
    let before = spread[&1].clone();
    c.script(&["stop-agent", "1", "KILL"]);
    c.script(&["start-agent", "1"]);
    let after = wait(
        "host 1's agent answers again",
        Duration::from_secs(20),
        || c.agent_up(1, "hello").filter(|j| j.len() == before.len()),
    );
    assert_eq!(
        after, before,
        "same job ids and pids after the agent restart"
    );
    // No restart: the controller still lists those jobs on host 1, none restarted.
    let listed = wait(
        "the controller lists host 1's jobs",
        Duration::from_secs(10),
        || {
            let jobs = c.api_get(&format!("/v1/nodes/{}/jobs", c.node(1)));
            let ids: BTreeSet<String> = jobs
                .as_array()?
                .iter()
                .filter(|j| j["state"] == "up")
                .map(|j| j["id"].as_str().unwrap().to_string())
                .collect();
            (ids.len() == before.len()).then_some(jobs)
        },
    );
    for j in listed.as_array().unwrap() {
        assert!(before.contains_key(j["id"].as_str().unwrap()), "{listed}");
        assert_eq!(j["restarts"], 0, "{listed}");
    }
    assert_eq!(total(&c.up_jobs(&all, "hello")), 4, "no job was added");

    // Kill an app process (on host 2, whose agent is its parent, so the exit status is
    // known): it is replaced, and the replacement shows the restart and why.
    let (victim, pid) = spread[&2]
        .iter()
        .next()
        .map(|(k, v)| (k.clone(), *v))
        .unwrap();
    // SAFETY: kill(2) on a container process this test's cluster started.
    unsafe { libc::kill(pid as i32, libc::SIGKILL) };
    let restarted = wait(
        "the killed process is restarted",
        Duration::from_secs(30),
        || {
            all.iter().find_map(|&i| {
                let jobs = c.api_get(&format!("/v1/nodes/{}/jobs", c.node(i)));
                jobs.as_array()?
                    .iter()
                    .find(|j| {
                        j["state"] == "up"
                            && j["restarts"].as_u64().unwrap_or(0) >= 1
                            && j["id"] != victim.as_str()
                    })
                    .cloned()
            })
        },
    );
    assert_eq!(restarted["last_exit"], "killed by SIGKILL", "{restarted}");
    wait("4 web jobs up again", Duration::from_secs(30), || {
        (total(&c.up_jobs(&all, "hello")) == 4).then_some(())
    });

    // Drain host 2: its jobs move to hosts 1 and 3 (replacements first), then undrain.
    let drain = |method: reqwest::Method| {
        let resp = c
            .http
            .request(method, format!("{}/v1/nodes/{}/drain", c.api, c.node(2)))
            .bearer_auth(&c.token)
            .send()
            .unwrap();
        assert!(resp.status().is_success(), "drain: {:?}", resp.text());
    };
    drain(reqwest::Method::POST);
    wait("host 2 drained", Duration::from_secs(60), || {
        let jobs = c.up_jobs(&all, "hello");
        (jobs[&2].is_empty() && total(&jobs) == 4).then_some(())
    });
    assert_eq!(c.request_app("hello").map(|(s, _)| s), Some(200));
    drain(reqwest::Method::DELETE);

    // Node failure: SIGKILL host 3's agent and cut its link. The app answers through the
    // router within 15 s, and once the node is down (10 s without a heartbeat) its jobs run
    // on hosts 1 and 2.
    c.script(&["stop-agent", "3", "KILL"]);
    c.script(&["link", "down", "3"]);
    wait(
        "the app answers after the node failure",
        Duration::from_secs(15),
        || c.request_app("hello").filter(|(s, _)| *s == 200),
    );
    wait(
        "host 3's jobs run elsewhere",
        Duration::from_secs(30),
        || (total(&c.up_jobs(&[1, 2], "hello")) == 4).then_some(()),
    );
    // It shows as down once its heartbeats are 10 s old.
    let down = wait("host 3 listed as down", Duration::from_secs(15), || {
        let nodes = c.api_get("/v1/nodes");
        let down: Vec<String> = nodes
            .as_array()?
            .iter()
            .filter(|n| n["state"] == "down")
            .map(|n| n["name"].as_str().unwrap().to_string())
            .collect();
        (!down.is_empty()).then_some(down)
    });
    assert_eq!(down, [c.node(3)]);

    // Restart the controller in the middle of a scale to 6: exactly 6, no duplicates.
    c.scale("hello", 6);
    c.script(&["stop-controller", "KILL"]);
    c.script(&["start-controller"]);
    wait(
        "web=6 after the controller restart",
        Duration::from_secs(60),
        || (total(&c.up_jobs(&[1, 2], "hello")) == 6).then_some(()),
    );
    // Several scheduler passes later it is still exactly 6.
    std::thread::sleep(Duration::from_secs(4));
    let jobs = c.up_jobs(&[1, 2], "hello");
    assert_eq!(total(&jobs), 6, "exactly the formation: {jobs:?}");
    assert_eq!(c.request_app("hello").map(|(s, _)| s), Some(200));
}

/// Walls across nodes: every agent got the other nodes from its heartbeat answers, and a
/// job on host 1 reaches neither a job's host port on host 2 nor host 2's agent port
/// (same app or not: other nodes' jobs are reached through the router), while host 1
/// itself (its agent, a router there) does.
fn walls_between_nodes(c: &Cluster) {
    for i in 1..=HOSTS {
        let others: Vec<String> = (1..=HOSTS)
            .filter(|&j| j != i)
            .map(|j| format!("{}.{}", c.net, 10 + j))
            .collect();
        wait("the agent knows its peers", Duration::from_secs(10), || {
            let set = Command::new("ip")
                .args(["netns", "exec", &format!("{}-h{i}", c.prefix), "nft"])
                .args(["list", "set", "ip", &c.node(i), "peer_nodes"])
                .output()
                .ok()?;
            let set = String::from_utf8_lossy(&set.stdout).into_owned();
            others
                .iter()
                .all(|o| set.contains(o.as_str()))
                .then_some(())
        });
    }
    let jobs_of = |i: usize| -> Vec<Value> {
        c.http
            .get(format!("{}/v1/jobs", c.agent_url(i)))
            .bearer_auth(c.agent_token(i))
            .send()
            .and_then(|r| r.json())
            .unwrap_or_default()
    };
    let up = |i: usize| {
        jobs_of(i)
            .into_iter()
            .find(|j| j["state"] == "up" && j["host_port"].is_u64())
            .unwrap_or_else(|| panic!("no web job up on host {i}"))
    };
    let attacker = up(1)["pid"].as_i64().unwrap().to_string();
    let target = format!("{}.12", c.net);
    let host_port = up(2)["host_port"].as_u64().unwrap().to_string();
    let connects = |netns: &[&str], port: &str| {
        Command::new("nsenter")
            .args(netns)
            .args(["/bin/busybox", "nc", "-w", "3", &target, port, "-e", "true"])
            .status()
            .unwrap()
            .success()
    };
    let in_job = ["-t", attacker.as_str(), "-n"];
    let node1 = format!("--net=/run/netns/{}-h1", c.prefix);
    for port in [host_port.as_str(), "7070"] {
        assert!(
            connects(&[node1.as_str()], port),
            "host 1 reaches {target}:{port}"
        );
        assert!(
            !connects(&in_job, port),
            "a job on host 1 reached {target}:{port}"
        );
    }
}
