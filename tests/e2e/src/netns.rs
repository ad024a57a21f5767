//! A cluster of test hosts made by `deploy/netns-cluster` (one network namespace and one
//! agent per host, the controller and the `paas-router` process on the first network),
//! for the journeys that cut a node's link. Each test file gives its own tag, address
//! block and cluster CIDR, so the files run in parallel.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::{bins, stacks_dir, workspace_root};

/// What sets one test file's cluster apart from the others'.
pub struct Layout {
    /// The first letter of the host-global prefix (`<tag><pid hex>`).
    pub tag: char,
    /// Names the work dir (`paas-e2e-<name>-<prefix>`).
    pub name: &'static str,
    /// The hosts' network is `10.<octet>.<pid-derived>.0/24`.
    pub octet: u8,
    /// `--cluster-cidr` of the controller (the nodes' job subnets); None: its default.
    pub cluster_cidr: Option<&'static str>,
    /// How many hosts (`netns-cluster up N`).
    pub hosts: usize,
}

/// A running cluster; `netns-cluster down` when dropped (with the last lines of the
/// controller's, the router's and each agent's log first when the test panicked).
pub struct NetnsCluster {
    env: Vec<(String, String)>,
    pub work: PathBuf,
    /// `http://<net>.1:<port>`: the controller's API.
    pub api: String,
    /// `127.0.0.1:<port>`: the router's plain port.
    pub router: String,
    /// The hosts' network without its last octet (host i is `<net>.<10 + i>`).
    pub net: String,
    pub prefix: String,
    /// The admin token.
    pub token: String,
    pub hosts: usize,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl NetnsCluster {
    /// A cluster whose controller imports the `tiny` stack only.
    pub fn up(layout: Layout) -> NetnsCluster {
        NetnsCluster::up_with_stacks(layout, stacks_dir())
    }

    /// A cluster whose controller imports the stacks (and service images) in `stacks`
    /// (e.g. [`crate::addon_stacks_dir`]).
    pub fn up_with_stacks(layout: Layout, stacks: &std::path::Path) -> NetnsCluster {
        let bins = bins();
        let pid = std::process::id();
        let prefix = format!("{}{:04x}", layout.tag, pid % 0xffff);
        let net = format!("10.{}.{}", layout.octet, pid % 200 + 20);
        let work = std::env::temp_dir().join(format!("paas-e2e-{}-{prefix}", layout.name));
        let (api_port, router_port) = (free_port(), free_port());
        let mut env = vec![
            ("PREFIX".to_string(), prefix.clone()),
            ("NET".to_string(), net.clone()),
            ("API_PORT".to_string(), api_port.to_string()),
            ("ROUTER_PORT".to_string(), router_port.to_string()),
            (
                "BIN".to_string(),
                bins.controller.parent().unwrap().display().to_string(),
            ),
            ("WORK".to_string(), work.display().to_string()),
            ("STACKS".to_string(), stacks.display().to_string()),
        ];
        if let Some(cidr) = layout.cluster_cidr {
            env.push(("CLUSTER_CIDR".to_string(), cidr.to_string()));
        }
        let mut c = NetnsCluster {
            api: format!("http://{net}.1:{api_port}"),
            router: format!("127.0.0.1:{router_port}"),
            env,
            work,
            net,
            prefix,
            token: String::new(),
            hosts: layout.hosts,
        };
        let out = c.script(&["up", &layout.hosts.to_string()]);
        let exports: BTreeMap<&str, &str> = out
            .lines()
            .filter_map(|l| l.strip_prefix("export ")?.split_once('='))
            .collect();
        assert_eq!(
            exports.get("PAAS_URL").copied(),
            Some(c.api.as_str()),
            "{out}"
        );
        c.token = exports
            .get("PAAS_TOKEN")
            .expect("the admin token")
            .to_string();
        c
    }

    /// Runs `deploy/netns-cluster ARGS` for this cluster; its stdout (panics on failure).
    pub fn script(&self, args: &[&str]) -> String {
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

    /// An HTTP client that never uses a proxy, 10 s per request.
    pub fn client(&self) -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap()
    }

    /// `app`'s up jobs per host (1..=hosts), as the agents report them (0 for a host
    /// that does not answer within 2 s).
    pub fn up_jobs_per_host(&self, app: &str) -> Vec<usize> {
        let http = self.client();
        (1..=self.hosts)
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
                            .filter(|j| j["labels"]["paas.app"] == app && j["state"] == "up")
                            .count()
                    })
                    .unwrap_or(0)
            })
            .collect()
    }
}

impl Drop for NetnsCluster {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let agents = (1..=self.hosts).map(|i| format!("h{i}.log"));
            let names = [
                "controller.log".to_string(),
                "data/router/router.log".to_string(),
            ];
            for name in names.into_iter().chain(agents) {
                let text = std::fs::read_to_string(self.work.join(&name)).unwrap_or_default();
                let tail: Vec<&str> = text.lines().rev().take(60).collect();
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

/// Polls `check` every 200 ms until it returns Some (its value) or `timeout` passes
/// (then panics naming `what`).
pub fn wait<T>(what: &str, timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
