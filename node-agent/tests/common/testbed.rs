//! A test host made of network namespaces, for the tests of the walls between tenants:
//!
//! ```text
//!  root netns (this test, the fake controller)      node netns (the real paas-agent)
//!  <tag>r  UPLINK/30  <--- veth --->  eth0 NODE/30   bridge <prefix>0 10.88.0.1/24 + jobs
//!                                     eth1 192.168.77.1/30
//!                                          ^ veth; route 169.254.169.254 via the peer
//!                                     peer netns: eth0 192.168.77.2/30 (another node),
//!                                     lo 169.254.169.254 (a cloud's metadata server)
//! ```
//!
//! The agent runs in the node netns (`nsenter --net`, as deploy/netns-cluster does), so its
//! bridge, nftables tables and job subnet touch nothing of the machine; only the uplink's
//! root side (a /30 of 10.199.0.0/16 per test), the job netns names and the cgroup parent
//! (from the agent's unique prefix) are global. Every address a job probes lives in one of
//! these namespaces. Dropping the testbed kills the agent and the peer's servers, runs
//! `paas-agent cleanup` in the node netns and deletes the namespaces and the uplink.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::{agent_bin, busybox_rootfs_tar, gzip, FakeRegistry};

pub const TOKEN: &str = "walls-node-token";
/// The agent's host port range (inside the node netns).
pub const PORTS: (u16, u16) = (20000, 20099);
pub const SUBNET: &str = "10.88.0.0/24";
pub const GATEWAY: Ipv4Addr = Ipv4Addr::new(10, 88, 0, 1);
pub const PEER: Ipv4Addr = Ipv4Addr::new(192, 168, 77, 2);
pub const METADATA: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
/// Ports the peer serves on: one in the host port range, one outside it, its "agent".
pub const PEER_HOST_PORT: u16 = 20050;
pub const PEER_OTHER_PORT: u16 = 8099;
pub const PEER_AGENT_PORT: u16 = 7070;
pub const AGENT_PORT: u16 = 7070;

static INSTANCE: AtomicU32 = AtomicU32::new(0);

/// The namespaces and the uplink of a testbed, deleted on drop (also when setting up the
/// testbed fails half-way).
struct Spaces {
    node_ns: String,
    peer_ns: String,
    uplink_if: String,
}

impl Spaces {
    fn remove(&self) {
        for ns in [&self.node_ns, &self.peer_ns] {
            let _ = Command::new("ip").args(["netns", "del", ns]).output();
        }
        let _ = Command::new("ip")
            .args(["link", "del", &self.uplink_if])
            .output();
    }
}

impl Drop for Spaces {
    fn drop(&mut self) {
        self.remove();
    }
}

pub struct Testbed {
    pub prefix: String,
    pub node_ns: String,
    pub peer_ns: String,
    pub uplink: Ipv4Addr,
    pub node_ip: Ipv4Addr,
    pub dir: tempfile::TempDir,
    pub registry: FakeRegistry,
    agent: Option<Child>,
    servers: Vec<Child>,
    http: reqwest::Client,
    /// Last: dropped after [`Testbed`]'s own drop ran the agent's cleanup in the node netns.
    _spaces: Spaces,
}

/// Runs a command; panics with its output when it fails.
#[track_caller]
pub fn sh(program: &str, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("running {program}: {e}"));
    assert!(
        out.status.success(),
        "{program} {args:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

impl Testbed {
    /// Makes the namespaces, the links, the peer's servers and the fake controller.
    pub async fn new() -> Testbed {
        let n = INSTANCE.fetch_add(1, Ordering::SeqCst);
        let pid = std::process::id();
        let tag = format!("wl{:04x}{n}", (pid * 8 + n) % 0xffff);
        // A /30 of 10.199.0.0/16 per process and testbed.
        let third = (pid % 250) as u8;
        let fourth = (((pid / 250) % 16) * 16 + (n % 4) * 4) as u8;
        let uplink = Ipv4Addr::new(10, 199, third, fourth + 1);
        let node_ip = Ipv4Addr::new(10, 199, third, fourth + 2);
        let (node_ns, peer_ns, uplink_if) = (
            format!("{tag}-node"),
            format!("{tag}-peer"),
            format!("{tag}r"),
        );
        let spaces = Spaces {
            node_ns: node_ns.clone(),
            peer_ns: peer_ns.clone(),
            uplink_if: uplink_if.clone(),
        };
        // Leftovers of a killed earlier run with the same names.
        spaces.remove();
        sh("ip", &["netns", "add", &node_ns]);
        sh("ip", &["netns", "add", &peer_ns]);
        let (n_ns, p_ns) = (node_ns.as_str(), peer_ns.as_str());
        let up = format!("{uplink}/30");
        let node = format!("{node_ip}/30");
        let nodeside = format!("{tag}n");
        for args in [
            &[
                "link", "add", &uplink_if, "type", "veth", "peer", "name", &nodeside,
            ][..],
            &["link", "set", &nodeside, "netns", n_ns],
            &["-n", n_ns, "link", "set", &nodeside, "name", "eth0"],
            &["addr", "add", &up, "dev", &uplink_if],
            &["link", "set", &uplink_if, "up"],
            &["-n", n_ns, "addr", "add", &node, "dev", "eth0"],
            &["-n", n_ns, "link", "set", "eth0", "up"],
            &["-n", n_ns, "link", "set", "lo", "up"],
            &[
                "-n", n_ns, "link", "add", "eth1", "type", "veth", "peer", "name", "eth0", "netns",
                p_ns,
            ],
            &["-n", n_ns, "addr", "add", "192.168.77.1/30", "dev", "eth1"],
            &["-n", n_ns, "link", "set", "eth1", "up"],
            &["-n", p_ns, "addr", "add", "192.168.77.2/30", "dev", "eth0"],
            &["-n", p_ns, "link", "set", "eth0", "up"],
            &["-n", p_ns, "link", "set", "lo", "up"],
            &["-n", p_ns, "addr", "add", "169.254.169.254/32", "dev", "lo"],
            &[
                "-n",
                n_ns,
                "route",
                "add",
                "169.254.169.254/32",
                "via",
                "192.168.77.2",
            ],
        ] {
            sh("ip", args);
        }
        let dir = tempfile::tempdir().unwrap();
        let registry = FakeRegistry::start_on(TOKEN, SocketAddr::from((uplink, 0))).await;
        let mut bed = Testbed {
            prefix: tag.clone(),
            node_ns: node_ns.clone(),
            peer_ns: peer_ns.clone(),
            uplink,
            node_ip,
            dir,
            registry,
            agent: None,
            servers: Vec::new(),
            http: reqwest::Client::builder()
                .no_proxy()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap(),
            _spaces: spaces,
        };
        let www = bed.dir.path().join("peer-www");
        std::fs::create_dir(&www).unwrap();
        std::fs::write(www.join("index.html"), "peer page\n").unwrap();
        for addr in [
            format!("{PEER}:{PEER_HOST_PORT}"),
            format!("{PEER}:{PEER_OTHER_PORT}"),
            format!("{PEER}:{PEER_AGENT_PORT}"),
            format!("{METADATA}:80"),
        ] {
            let child = Command::new("ip")
                .args(["netns", "exec", p_ns, "/bin/busybox", "httpd", "-f", "-p"])
                .arg(&addr)
                .arg("-h")
                .arg(&www)
                .stdin(Stdio::null())
                .spawn()
                .unwrap();
            bed.servers.push(child);
        }
        bed.registry.add_image(
            "stacks/tiny",
            "latest",
            &busybox_rootfs_tar(),
            json!({"architecture": "amd64", "os": "linux",
                   "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "WorkingDir": "/"}}),
        );
        // The peer answers from the node (the agent's own traffic is not walled).
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let out = bed.in_node(&[
                "curl",
                "-sS",
                "-m",
                "2",
                &format!("http://{PEER}:{PEER_HOST_PORT}/"),
            ]);
            if String::from_utf8_lossy(&out.stdout).contains("peer page") {
                break;
            }
            assert!(Instant::now() < deadline, "the peer's httpd did not answer");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bed
    }

    pub fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    pub fn agent_url(&self) -> String {
        format!("http://{}:{AGENT_PORT}", self.node_ip)
    }

    /// Starts the real agent in the node netns and waits for its API.
    pub async fn start_agent(&mut self, extra: &[&str]) {
        assert!(self.agent.is_none(), "the agent runs already");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("agent.log"))
            .unwrap();
        let child = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.node_ns))
            .arg(agent_bin())
            .arg("--controller")
            .arg(&self.registry.url)
            .args(["--token", TOKEN, "--node-name", &self.prefix])
            .arg("--listen")
            .arg(format!("{}:{AGENT_PORT}", self.node_ip))
            .arg("--advertise-addr")
            .arg(self.node_ip.to_string())
            .arg("--state-dir")
            .arg(self.state_dir())
            .args(["--prefix", &self.prefix, "--subnet", SUBNET])
            .arg("--port-range")
            .arg(format!("{}-{}", PORTS.0, PORTS.1))
            .args(extra)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.agent = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self.call("GET", "/v1/health", None).await.0 != 200 {
            assert!(
                Instant::now() < deadline,
                "the agent did not come up:\n{}",
                self.agent_log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM to the agent and wait for it to exit (its containers keep running).
    pub fn stop_agent(&mut self) {
        let mut child = self.agent.take().expect("the agent runs");
        // SAFETY: kill(2) on our own child's pid; the worst case is ESRCH.
        unsafe {
            libc::kill(child.id() as i32, libc::SIGTERM);
        }
        let status = child.wait().unwrap();
        assert!(status.success(), "the agent exited with {status}");
    }

    pub fn agent_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    /// One call to the agent's API with the node token: (status, body).
    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, String) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.agent_url()))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        match req.send().await {
            Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
            Err(e) => (0, e.to_string()),
        }
    }

    pub fn image(&self) -> Value {
        json!({"registry": self.registry.url, "repository": "stacks/tiny", "reference": "latest"})
    }

    /// Serves `tar` as an input; returns its URL.
    pub fn input(&self, name: &str, tar: Vec<u8>) -> String {
        self.registry.add_input(name, gzip(&tar))
    }

    /// POSTs a job (the image is added when the spec has none); panics unless it is up.
    pub async fn run(&self, mut spec: Value) -> Value {
        if spec.get("image").is_none() {
            spec["image"] = self.image();
        }
        let (status, body) = self.call("POST", "/v1/jobs", Some(spec)).await;
        assert_eq!(status, 201, "{body}\n{}", self.agent_log());
        serde_json::from_str(&body).unwrap()
    }

    /// The job's output so far (`follow`: until it ends).
    pub async fn logs(&self, id: &str, follow: bool) -> String {
        let (status, body) = self
            .call("GET", &format!("/v1/jobs/{id}/logs?follow={follow}"), None)
            .await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Waits until the job's output has `count` lines equal to `line`; returns the output.
    pub async fn wait_lines(&self, id: &str, line: &str, count: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let logs = self.logs(id, false).await;
            if logs.lines().filter(|l| *l == line).count() >= count {
                return logs;
            }
            assert!(
                Instant::now() < deadline,
                "{id} did not print {count} × {line:?}:\n{logs}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub async fn delete(&self, id: &str) {
        let (status, body) = self.call("DELETE", &format!("/v1/jobs/{id}"), None).await;
        assert_eq!(status, 204, "{body}");
    }

    /// Runs a command in the node netns (as the host of the jobs).
    pub fn in_node(&self, args: &[&str]) -> Output {
        Command::new("ip")
            .args(["netns", "exec", &self.node_ns])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap()
    }

    /// `nft list …` in the node netns.
    pub fn nft(&self, args: &[&str]) -> String {
        let mut all = vec!["list"];
        all.extend_from_slice(args);
        let out = Command::new("ip")
            .args(["netns", "exec", &self.node_ns, "nft"])
            .args(&all)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// GET `url` from this (the root) netns — the path of a router on another machine.
    pub async fn get(&self, url: &str) -> Result<String, String> {
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(5))
            .build()
            .unwrap();
        match client.get(url).send().await {
            Ok(r) if r.status().is_success() => r.text().await.map_err(|e| e.to_string()),
            Ok(r) => Err(format!("{url}: {}", r.status())),
            Err(e) => Err(format!("{url}: {e}")),
        }
    }

    /// Waits until `url` answers with `needle` from the root netns.
    pub async fn wait_get(&self, url: &str, needle: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            match self.get(url).await {
                Ok(body) if body.contains(needle) => return body,
                other => assert!(
                    Instant::now() < deadline,
                    "{url} did not answer {needle:?}: {other:?}"
                ),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The netns file of a job.
    pub fn job_netns(&self, id: &str) -> PathBuf {
        paas_node_agent::network::JobNames::new(&self.prefix, id).netns_path()
    }

    /// The host end of a job's veth (a port of the bridge).
    pub fn job_veth(&self, id: &str) -> String {
        paas_node_agent::network::JobNames::new(&self.prefix, id).veth_host
    }

    /// The MAC address of a job's eth0.
    pub fn job_mac(&self, id: &str) -> [u8; 6] {
        let ns = paas_node_agent::network::JobNames::new(&self.prefix, id).netns;
        mac_of(&sh("ip", &["-n", &ns, "-o", "link", "show", "eth0"]))
    }

    /// The MAC address of the bridge (the jobs' gateway).
    pub fn gateway_mac(&self) -> [u8; 6] {
        let bridge = format!("{}0", self.prefix);
        mac_of(&sh(
            "ip",
            &["-n", &self.node_ns, "-o", "link", "show", &bridge],
        ))
    }

    /// Runs `paas-agent cleanup` in the node netns; its output.
    pub fn cleanup(&self) -> Output {
        Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.node_ns))
            .arg(agent_bin())
            .arg("cleanup")
            .arg("--state-dir")
            .arg(self.state_dir())
            .args(["--prefix", &self.prefix])
            .output()
            .unwrap()
    }
}

/// The `link/ether` address of an `ip -o link show` line.
fn mac_of(line: &str) -> [u8; 6] {
    let text = line
        .split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC in {line:?}"));
    let mut mac = [0u8; 6];
    for (i, part) in text.split(':').enumerate() {
        mac[i] = u8::from_str_radix(part, 16).unwrap();
    }
    mac
}

/// `aa:bb:…` of a MAC address.
pub fn mac_text(mac: &[u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

impl Drop for Testbed {
    fn drop(&mut self) {
        if let Some(mut child) = self.agent.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for child in &mut self.servers {
            let _ = child.kill();
            let _ = child.wait();
        }
        let out = self.cleanup();
        if !out.status.success() {
            eprintln!(
                "paas-agent cleanup failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        if std::thread::panicking() {
            eprintln!("---- agent log ----\n{}", self.agent_log());
        }
    }
}

/// The path of a file inside a job's input dir on the host (`jobs/<id>/inputs/<n>/…`).
pub fn input_path(state: &Path, job: &str, n: usize, file: &str) -> PathBuf {
    state
        .join("jobs")
        .join(job)
        .join("inputs")
        .join(n.to_string())
        .join(file)
}
