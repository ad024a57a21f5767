//! Root test of the API fence: a container cannot connect to the agent's listen address
//! nor to the controller's port on the host, but can when its job has `api_access`; a port
//! outside the fence stays reachable (so the test can tell a drop from a broken network).
//! Runs the real `paas-agent` binary (the fence is set once its port is bound).

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use common::{busybox_rootfs_tar, cleanup, need_root, FakeRegistry};
use serde_json::{json, Value};

const TOKEN: &str = "ac4-node-token";

struct Guard {
    child: std::process::Child,
    dir: std::path::PathBuf,
    prefix: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        cleanup(&self.dir, &self.prefix);
    }
}

/// A free port outside the agent's host port range `first..=last` (connections from the
/// bridge to this node's addresses on that range are refused by the walls).
fn free_port(first: u32, last: u32) -> u16 {
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        if !(first..=last).contains(&u32::from(port)) {
            return port;
        }
    }
}

async fn call(method: reqwest::Method, url: &str, body: Option<Value>) -> (u16, String) {
    let mut req = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .request(method, url)
        .bearer_auth(TOKEN);
    if let Some(b) = body {
        req = req.json(&b);
    }
    match req.send().await {
        Ok(r) => (r.status().as_u16(), r.text().await.unwrap_or_default()),
        Err(e) => (0, e.to_string()),
    }
}

/// Runs a job that tries each port on the gateway and prints `<port>-open` for those it
/// reached; returns the output.
async fn probe(
    agent: &str,
    image: &Value,
    id: &str,
    gw: Ipv4Addr,
    ports: &[u16],
    api: bool,
) -> String {
    let script: Vec<String> = ports
        .iter()
        .map(|p| format!("nc -w 3 {gw} {p} -e true && echo {p}-open;"))
        .collect();
    let spec = json!({
        "id": id, "image": image, "api_access": api,
        "command": ["sh", "-c", format!("{} echo done", script.join(" "))],
    });
    let (status, body) = call(
        reqwest::Method::POST,
        &format!("{agent}/v1/jobs"),
        Some(spec),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let (status, logs) = call(
        reqwest::Method::GET,
        &format!("{agent}/v1/jobs/{id}/logs?follow=true"),
        None,
    )
    .await;
    assert_eq!(status, 200, "{logs}");
    assert!(logs.contains("done"), "the probe did not finish: {logs}");
    logs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ac4_containers_cannot_reach_the_api_ports_unless_allowed() {
    if !need_root("ac4_containers_cannot_reach_the_api_ports_unless_allowed") {
        return;
    }
    let pid = std::process::id();
    let slot = pid % 10;
    let prefix = format!("ac4{:x}", pid % 0xfff);
    let gw = Ipv4Addr::new(10, 200, 70 + slot as u8, 1);
    let subnet = format!("10.200.{}.0/24", 70 + slot);
    let (first, last) = (47000 + slot * 100, 47099 + slot * 100);
    let ports = format!("{first}-{last}");
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let (agent_port, controller_port, open_port) = (
        free_port(first, last),
        free_port(first, last),
        free_port(first, last),
    );
    let registry = FakeRegistry::start(TOKEN).await;
    registry.add_image(
        "stacks/tiny",
        "latest",
        &busybox_rootfs_tar(),
        json!({"architecture": "amd64", "os": "linux",
               "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "WorkingDir": "/"}}),
    );
    let log = std::fs::File::create(dir.path().join("agent.log")).unwrap();
    let child = std::process::Command::new(common::agent_bin())
        .arg("--controller")
        .arg(format!("http://{gw}:{controller_port}"))
        .args(["--token", TOKEN, "--node-name", "ac4n"])
        .arg("--listen")
        .arg(format!("{gw}:{agent_port}"))
        .arg("--state-dir")
        .arg(&state)
        .args([
            "--prefix",
            &prefix,
            "--subnet",
            &subnet,
            "--port-range",
            &ports,
        ])
        .args(["--advertise-addr", "127.0.0.1"])
        .stderr(log)
        .spawn()
        .unwrap();
    let _guard = Guard {
        child,
        dir: state.clone(),
        prefix: prefix.clone(),
    };
    let agent = format!("http://{gw}:{agent_port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while call(reqwest::Method::GET, &format!("{agent}/v1/health"), None)
        .await
        .0
        != 200
    {
        let log = std::fs::read_to_string(dir.path().join("agent.log")).unwrap_or_default();
        assert!(Instant::now() < deadline, "agent did not come up:\n{log}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The "controller" and an ordinary service, both on the bridge address (the bridge
    // exists now). Neither answers HTTP: a TCP connect is what is probed.
    let _controller = tokio::net::TcpListener::bind(SocketAddr::from((gw, controller_port)))
        .await
        .unwrap();
    let _open = tokio::net::TcpListener::bind(SocketAddr::from((gw, open_port)))
        .await
        .unwrap();
    let table = String::from_utf8_lossy(
        &std::process::Command::new("nft")
            .args(["list", "table", "ip", &prefix])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(
        table.contains(&agent_port.to_string()) && table.contains(&controller_port.to_string()),
        "{table}"
    );

    let image =
        json!({"registry": registry.url, "repository": "stacks/tiny", "reference": "latest"});
    let all = [open_port, agent_port, controller_port];
    let fenced = probe(&agent, &image, "ac4-fenced", gw, &all, false).await;
    assert!(fenced.contains(&format!("{open_port}-open")), "{fenced}");
    assert!(!fenced.contains(&format!("{agent_port}-open")), "{fenced}");
    assert!(
        !fenced.contains(&format!("{controller_port}-open")),
        "{fenced}"
    );

    let allowed = probe(&agent, &image, "ac4-allowed", gw, &all, true).await;
    for port in all {
        assert!(
            allowed.contains(&format!("{port}-open")),
            "{port}: {allowed}"
        );
    }
    // Deleting the allowed job takes its address out of the allowed set.
    let (status, body) = call(
        reqwest::Method::DELETE,
        &format!("{agent}/v1/jobs/ac4-allowed"),
        None,
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let after = String::from_utf8_lossy(
        &std::process::Command::new("nft")
            .args(["list", "set", "ip", &prefix, "api_allowed"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    assert!(!after.contains("10.200."), "{after}");
}
