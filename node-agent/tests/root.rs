//! Root tests: real bridge, netns, veths and nftables, real containers from a busybox
//! image served by a fake registry, and the real `paas-agent` binary for re-adoption.
//! Each test uses its own prefix, subnet and port range and runs `paas-agent cleanup` on
//! drop.

mod common;

use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{
    busybox_rootfs_tar, cleanup, config, gzip, need_root, sha256, unique_names, FakeRegistry,
    Names, TarBuilder,
};
use paas_node_agent::network::{JobNames, NetworkManager};
use paas_node_agent::{app, Agent};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const TOKEN: &str = "node-token-for-tests";

/// Runs `paas-agent cleanup` for the state dir and prefix when dropped.
struct CleanupGuard {
    dir: PathBuf,
    prefix: String,
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        cleanup(&self.dir, &self.prefix);
    }
}

/// An in-process agent on a loopback port, with a fake registry holding `stacks/tiny`.
struct TestAgent {
    url: String,
    names: Names,
    registry: FakeRegistry,
    agent: Arc<Agent>,
    _guard: CleanupGuard,
    dir: tempfile::TempDir,
}

fn busybox_config() -> Value {
    json!({"architecture": "amd64", "os": "linux",
           "config": {"Env": ["PATH=/bin", "FROM_IMAGE=yes"], "Cmd": ["sh"], "WorkingDir": "/"}})
}

impl TestAgent {
    async fn start() -> TestAgent {
        let names = unique_names();
        let dir = tempfile::tempdir().unwrap();
        let guard = CleanupGuard {
            dir: dir.path().to_path_buf(),
            prefix: names.prefix.clone(),
        };
        let registry = FakeRegistry::start(TOKEN).await;
        registry.add_image(
            "stacks/tiny",
            "latest",
            &busybox_rootfs_tar(),
            busybox_config(),
        );
        let agent = Agent::open(config(dir.path(), TOKEN, &names)).expect("open agent");
        agent.start().await.expect("start agent");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        agent.set_bound(addr);
        let router = app(agent.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        TestAgent {
            url: format!("http://{addr}"),
            names,
            registry,
            agent,
            _guard: guard,
            dir,
        }
    }

    fn image(&self) -> Value {
        json!({"registry": self.registry.url, "repository": "stacks/tiny", "reference": "latest"})
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    async fn post_job(&self, spec: Value) -> Value {
        let (status, body) = self
            .request(reqwest::Method::POST, "/v1/jobs", Some(spec))
            .await;
        assert_eq!(status, 201, "POST /v1/jobs: {body}");
        body
    }

    async fn job(&self, id: &str) -> (u16, Value) {
        self.request(reqwest::Method::GET, &format!("/v1/jobs/{id}"), None)
            .await
    }

    async fn wait_final(&self, id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, job) = self.job(id).await;
            if job["state"] == "down" || job["state"] == "crashed" {
                return job;
            }
            assert!(Instant::now() < deadline, "job {id} not final: {job}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn logs(&self, id: &str, follow: bool) -> String {
        let resp = reqwest::Client::new()
            .get(format!("{}/v1/jobs/{id}/logs?follow={follow}", self.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        tokio::time::timeout(Duration::from_secs(60), resp.text())
            .await
            .expect("log stream ended")
            .unwrap()
    }
}

/// GET `http://addr/path` over a raw socket; retries while the server is coming up.
async fn http_get(addr: &str, path: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut last = String::new();
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(3), try_get(addr, path)).await {
            Ok(Ok(body)) if body.contains(" 200 ") => return body,
            Ok(Ok(body)) => last = body,
            Ok(Err(e)) => last = e.to_string(),
            Err(_) => last = "timed out".into(),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("GET http://{addr}{path} failed: {last}");
}

async fn try_get(addr: &str, path: &str) -> std::io::Result<String> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await?;
    let mut out = Vec::new();
    s.read_to_end(&mut out).await?;
    Ok(String::from_utf8_lossy(&out).to_string())
}

/// A global IPv4 address of the host on an interface that is not a bridge, if any.
fn host_global_ip() -> Option<Ipv4Addr> {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show", "scope", "global"])
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            let iface = f.get(1)?;
            if Path::new("/sys/class/net")
                .join(iface)
                .join("bridge")
                .exists()
            {
                return None;
            }
            let pos = f.iter().position(|w| *w == "inet")?;
            f.get(pos + 1)?.split('/').next()?.parse().ok()
        })
}

fn nft_table(prefix: &str) -> String {
    let out = std::process::Command::new("nft")
        .args(["list", "table", "ip", prefix])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).to_string()
}

/// Asserts the job left no netns, veth or nft element behind.
fn assert_no_network_leftovers(prefix: &str, job: &str, ip: &str, host_port: Option<u64>) {
    let names = JobNames::new(prefix, job);
    assert!(!names.netns_path().exists(), "netns {} left", names.netns);
    let links = std::process::Command::new("ip")
        .args(["-o", "link"])
        .output()
        .unwrap();
    let links = String::from_utf8_lossy(&links.stdout);
    assert!(
        !links.contains(&names.veth_host),
        "veth {} left:\n{links}",
        names.veth_host
    );
    let table = nft_table(prefix);
    assert!(
        table.contains("jobports"),
        "the table itself stays: {table}"
    );
    assert!(
        !table.contains(&format!("{ip} ")),
        "nft still mentions {ip}:\n{table}"
    );
    if let Some(p) = host_port {
        assert!(
            !table.contains(&format!("{p} : ")),
            "nft still maps {p}:\n{table}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn network_maps_ports_and_tears_down() {
    if !need_root("network_maps_ports_and_tears_down") {
        return;
    }
    let names = unique_names();
    let dir = tempfile::tempdir().unwrap();
    let _guard = CleanupGuard {
        dir: dir.path().to_path_buf(),
        prefix: names.prefix.clone(),
    };
    let net = NetworkManager::open(
        dir.path(),
        &names.prefix,
        names.subnet,
        names.ports,
        Ipv4Addr::LOCALHOST,
    )
    .unwrap();
    net.ensure_node().await.unwrap();
    net.ensure_node().await.expect("ensure_node is idempotent");
    // Another program listens on the range's first port: the job gets another one (the
    // DNAT would take every connection to it from that program).
    let other = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, names.ports.first))
        .expect("the test's own port in the range");
    let job = net.setup_job("net-1", Some(5000), None, &[]).await.unwrap();
    let expected_ip = Ipv4Addr::from(u32::from(names.subnet.network) + 2);
    assert_eq!(job.ip, expected_ip);
    assert_eq!(job.addr, Some(format!("{expected_ip}:5000")));
    let host_port = job.host_port.unwrap();
    assert!(names.ports.contains(host_port));
    assert_ne!(
        host_port, names.ports.first,
        "another program's port was handed out"
    );
    let mut reached = std::net::TcpStream::connect((Ipv4Addr::LOCALHOST, names.ports.first))
        .expect("the other program's port still reaches it");
    let (mut conn, _) = other.accept().unwrap();
    std::io::Write::write_all(&mut conn, b"mine").unwrap();
    let mut said = [0u8; 4];
    std::io::Read::read_exact(&mut reached, &mut said).unwrap();
    assert_eq!(&said, b"mine");
    // The job's port is the agent's while the job holds it.
    assert_eq!(net.held_ports(), vec![host_port]);
    assert!(
        std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, host_port)).is_err(),
        "another program could bind the job's host port {host_port}"
    );
    let table = nft_table(&names.prefix);
    assert!(
        table.contains(&format!("{host_port} : {expected_ip} . 5000")),
        "{table}"
    );

    // A web server inside the netns (no container needed for the network path).
    let www = dir.path().join("www");
    std::fs::create_dir(&www).unwrap();
    std::fs::write(www.join("index.html"), "hello from the netns\n").unwrap();
    let jn = JobNames::new(&names.prefix, "net-1");
    let mut httpd = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &jn.netns,
            "/bin/busybox",
            "httpd",
            "-f",
            "-p",
            "5000",
            "-h",
        ])
        .arg(&www)
        .spawn()
        .unwrap();
    let body = http_get(&format!("{expected_ip}:5000"), "/index.html").await;
    assert!(body.contains("hello from the netns"), "{body}");
    match host_global_ip() {
        Some(ip) => {
            let body = http_get(&format!("{ip}:{host_port}"), "/index.html").await;
            assert!(
                body.contains("hello from the netns"),
                "DNAT via {ip}: {body}"
            );
        }
        // Only loopback: the DNAT path through a node address cannot be exercised here.
        None => eprintln!("no global IPv4 address on this host: DNAT check skipped"),
    }
    // The netns reaches the outside through the bridge (its gateway answers).
    let ping = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &jn.netns,
            "/bin/busybox",
            "ping",
            "-c",
            "1",
            "-W",
            "5",
        ])
        .arg(names.subnet.gateway().to_string())
        .output()
        .unwrap();
    assert!(
        ping.status.success(),
        "{}",
        String::from_utf8_lossy(&ping.stdout)
    );
    let _ = httpd.kill();
    let _ = httpd.wait();

    // A second job gets the next address and another port.
    let job2 = net.setup_job("net-2", Some(5000), None, &[]).await.unwrap();
    assert_ne!(job2.ip, job.ip);
    assert_ne!(job2.host_port, job.host_port);

    net.teardown_job("net-1").await.unwrap();
    net.teardown_job("net-1")
        .await
        .expect("teardown is idempotent");
    assert_no_network_leftovers(
        &names.prefix,
        "net-1",
        &expected_ip.to_string(),
        Some(host_port.into()),
    );
    assert!(net.lease("net-1").is_none());
    assert!(net.lease("net-2").is_some());
    assert_eq!(net.held_ports(), vec![job2.host_port.unwrap()]);
    std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, host_port))
        .expect("a released job's host port is free again");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn web_job_serves_http_and_delete_leaves_nothing() {
    if !need_root("web_job_serves_http_and_delete_leaves_nothing") {
        return;
    }
    let t = TestAgent::start().await;
    let www = TarBuilder::new()
        .file("index.html", b"hello from paas\n", 0o644)
        .finish();
    let input = t.registry.add_input("www", gzip(&www));
    let job = t
        .post_job(json!({
            "id": "web-1",
            "labels": {"app": "hello", "type": "web"},
            "image": t.image(),
            "command": ["httpd", "-f", "-p", "5000", "-h", "/www"],
            "env": {"PORT": "5000"},
            "port": 5000,
            "inputs": [{"url": input, "path": "/www", "readonly": true}],
        }))
        .await;
    assert_eq!(job["state"], "up", "{job}");
    assert!(job["pid"].as_i64().unwrap() > 0);
    assert_eq!(job["labels"]["type"], "web");
    let ip = job["ip"].as_str().unwrap().to_string();
    let host_port = job["host_port"].as_u64().unwrap();
    assert!(t.names.ports.contains(host_port as u16));
    assert_eq!(
        job["addr"],
        format!("{ip}:5000"),
        "loopback advertise: bridge address"
    );

    let body = http_get(job["addr"].as_str().unwrap(), "/index.html").await;
    assert!(body.contains("hello from paas"), "{body}");
    match host_global_ip() {
        Some(hip) => {
            let body = http_get(&format!("{hip}:{host_port}"), "/index.html").await;
            assert!(body.contains("hello from paas"), "DNAT via {hip}: {body}");
        }
        None => eprintln!("no global IPv4 address on this host: DNAT check skipped"),
    }

    let (status, list) = t.request(reqwest::Method::GET, "/v1/jobs", None).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, again) = t
        .request(
            reqwest::Method::POST,
            "/v1/jobs",
            Some(json!({"id": "web-1", "image": t.image()})),
        )
        .await;
    assert_eq!(status, 409, "{again}");

    let (status, _) = t
        .request(reqwest::Method::DELETE, "/v1/jobs/web-1", None)
        .await;
    assert_eq!(status, 204);
    let (status, body) = t.job("web-1").await;
    assert_eq!(status, 404, "{body}");
    assert_no_network_leftovers(&t.names.prefix, "web-1", &ip, Some(host_port));
    assert!(!t.dir.path().join("jobs/web-1").exists());
    assert!(!t.dir.path().join("containers/web-1").exists());
    assert!(try_get(&format!("{ip}:5000"), "/").await.is_err());

    // cleanup removes the node-wide objects too (and runs again, idempotently, on drop).
    let prefix = t.names.prefix.clone();
    cleanup(t.dir.path(), &prefix);
    assert!(!Path::new("/sys/class/net")
        .join(format!("{prefix}0"))
        .exists());
    let table = std::process::Command::new("nft")
        .args(["list", "table", "ip", &prefix])
        .output()
        .unwrap();
    assert!(!table.status.success(), "table ip {prefix} left");
    let cgroups = std::fs::read_dir("/sys/fs/cgroup")
        .unwrap()
        .flatten()
        .map(|e| e.path().join(&prefix))
        .chain([Path::new("/sys/fs/cgroup").join(&prefix)])
        .filter(|p| p.exists())
        .collect::<Vec<_>>();
    assert!(cgroups.is_empty(), "cgroup parents left: {cgroups:?}");
    assert!(
        t.dir.path().join("layers").is_dir(),
        "the layer cache stays"
    );
    let _ = &t.agent;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_layer_logs_and_exit_codes() {
    if !need_root("output_layer_logs_and_exit_codes") {
        return;
    }
    let t = TestAgent::start().await;
    let src = TarBuilder::new()
        .file("README", b"source\n", 0o644)
        .finish();
    let input = t.registry.add_input("src", src);
    let script = "echo building; echo \"image env: $FROM_IMAGE, job env: $GREETING\"; \
                  mkdir -p /app/out; echo hi > /app/out/x; ln -s x /app/out/link; \
                  echo cached > /cache/c; sleep 1; echo done";
    t.post_job(json!({
        "id": "build-1",
        "image": t.image(),
        "command": ["/bin/sh", "-c", script],
        "env": {"GREETING": "hej"},
        "inputs": [{"url": input, "path": "/app"}],
        "volumes": [{"name": "cache-demo", "path": "/cache"}],
        "output": {"path": "/app", "registry": t.registry.url, "repository": "apps/demo"},
    }))
    .await;
    // Follow the logs: they end once the job is final with its layer pushed.
    let logs = t.logs("build-1", true).await;
    assert!(logs.starts_with("building\n"), "{logs:?}");
    assert!(logs.contains("image env: yes, job env: hej"), "{logs:?}");
    assert!(logs.ends_with("done\n"), "{logs:?}");
    let (_, job) = t.job("build-1").await;
    assert_eq!(job["state"], "down", "{job}");
    assert_eq!(job["exit"]["code"], 0);
    assert_eq!(job["exit"]["reason"], "exited 0");
    let layer = job["output_layer"].clone();
    assert!(layer.is_object(), "final job must carry its layer: {job}");
    assert_eq!(
        std::fs::read_to_string(t.dir.path().join("volumes/cache-demo/c")).unwrap(),
        "cached\n"
    );

    let uploads = t.registry.state.lock().unwrap().uploads.clone();
    assert_eq!(uploads.len(), 1);
    let (repo, digest, blob) = &uploads[0];
    assert_eq!(repo, "apps/demo");
    assert_eq!(digest, layer["digest"].as_str().unwrap());
    assert_eq!(&sha256(blob), digest);
    assert_eq!(blob.len() as u64, layer["size"].as_u64().unwrap());
    let mut tar_bytes = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&blob[..]), &mut tar_bytes)
        .unwrap();
    assert_eq!(sha256(&tar_bytes), layer["diff_id"].as_str().unwrap());
    let mut archive = tar::Archive::new(&tar_bytes[..]);
    let mut entries = Vec::new();
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        assert_eq!(e.header().uid().unwrap(), 0);
        assert_eq!(e.header().gid().unwrap(), 0);
        let path = e.path().unwrap().to_string_lossy().to_string();
        if path == "app/out/link" {
            assert_eq!(e.link_name().unwrap().unwrap().to_str(), Some("x"));
        }
        entries.push(path);
    }
    for want in [
        "app/",
        "app/README",
        "app/out/",
        "app/out/x",
        "app/out/link",
    ] {
        assert!(
            entries.iter().any(|e| e == want),
            "{want} missing from {entries:?}"
        );
    }
    assert!(entries.iter().all(|e| e.starts_with("app/")), "{entries:?}");

    // A failing job: crashed with its code; no output pushed.
    t.post_job(json!({
        "id": "fail-1",
        "image": t.image(),
        "command": ["sh", "-c", "echo oops >&2; exit 3"],
    }))
    .await;
    let job = t.wait_final("fail-1").await;
    assert_eq!(job["state"], "crashed");
    assert_eq!(job["exit"]["code"], 3);
    assert_eq!(job["exit"]["reason"], "exited 3");
    assert!(job["output_layer"].is_null());
    assert_eq!(t.logs("fail-1", false).await, "oops\n");

    // Image defaults: no command means Entrypoint + Cmd (sh with no stdin exits 0).
    t.post_job(json!({"id": "default-cmd", "image": t.image()}))
        .await;
    let job = t.wait_final("default-cmd").await;
    assert_eq!(job["exit"]["code"], 0, "{job}");

    // A stopped job is down, with the signal that ended it.
    let job = t
        .post_job(json!({"id": "sleep-1", "image": t.image(), "command": ["sleep", "300"]}))
        .await;
    assert_eq!(job["state"], "up");
    let (status, job) = t
        .request(
            reqwest::Method::POST,
            "/v1/jobs/sleep-1/stop",
            Some(json!({"grace_seconds": 1})),
        )
        .await;
    assert_eq!(status, 200, "{job}");
    assert_eq!(job["state"], "down", "{job}");
    let reason = job["exit"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("stopped: killed by SIG"), "{reason}");
    assert!(job["exit"]["signal"].is_number(), "{job}");

    // Out of memory: a 16 MiB limit and a shell that holds 64 MiB.
    t.post_job(json!({
        "id": "oom-1",
        "image": t.image(),
        "command": ["sh", "-c", "x=$(head -c 67108864 /dev/zero | tr '\\0' a); echo survived"],
        "memory_bytes": 16u64 << 20,
    }))
    .await;
    let job = t.wait_final("oom-1").await;
    assert_eq!(job["state"], "crashed", "{job}");
    assert_eq!(job["exit"]["oom_killed"], true, "{job}");
    assert_eq!(job["exit"]["reason"], "out of memory", "{job}");

    // The layer was downloaded once for all these jobs.
    let state = t.registry.state.lock().unwrap();
    let layer_gets = state
        .blob_gets
        .iter()
        .filter(|(d, _)| {
            state
                .blobs
                .get(*d)
                .is_some_and(|b| b.starts_with(&[0x1f, 0x8b]))
        })
        .map(|(_, n)| *n)
        .max();
    assert_eq!(layer_gets, Some(1), "{:?}", state.blob_gets);
}

/// A free loopback port (bound and released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn_agent(
    dir: &Path,
    names: &Names,
    addr: SocketAddr,
    controller: &str,
) -> std::process::Child {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("agent.log"))
        .unwrap();
    std::process::Command::new(common::agent_bin())
        .args([
            "--controller",
            controller,
            "--token",
            TOKEN,
            "--node-name",
            "n1",
        ])
        .arg("--listen")
        .arg(addr.to_string())
        .arg("--state-dir")
        .arg(dir.join("state"))
        .args(["--prefix", &names.prefix])
        .args(["--subnet", &names.subnet.to_string()])
        .args(["--port-range", &names.ports.to_string()])
        .args(["--advertise-addr", "127.0.0.1"])
        .stderr(log)
        .spawn()
        .unwrap()
}

fn alive(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the ")" that closes the command name.
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containers_outlive_the_agent_and_are_readopted() {
    if !need_root("containers_outlive_the_agent_and_are_readopted") {
        return;
    }
    let names = unique_names();
    let dir = tempfile::tempdir().unwrap();
    let _guard = CleanupGuard {
        dir: dir.path().join("state"),
        prefix: names.prefix.clone(),
    };
    let registry = FakeRegistry::start(TOKEN).await;
    registry.add_image(
        "stacks/tiny",
        "latest",
        &busybox_rootfs_tar(),
        busybox_config(),
    );
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let t = AgentProc {
        url: format!("http://{addr}"),
    };
    let mut child = KillOnDrop(spawn_agent(dir.path(), &names, addr, &registry.url));
    t.wait_healthy(dir.path()).await;
    let image =
        json!({"registry": registry.url, "repository": "stacks/tiny", "reference": "latest"});
    let a = t
        .post(json!({"id": "keep", "image": image, "command": ["sleep", "300"], "port": 8080}))
        .await;
    let b = t
        .post(json!({"id": "lose", "image": image, "command": ["sleep", "300"]}))
        .await;
    let (pid_a, pid_b) = (a["pid"].as_i64().unwrap(), b["pid"].as_i64().unwrap());

    // Heartbeats reach the controller with the bound URL and the jobs.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let beat = registry.state.lock().unwrap().heartbeats.last().cloned();
        if let Some(beat) = beat.filter(|b| b["jobs"].as_array().is_some_and(|j| j.len() == 2)) {
            assert_eq!(beat["name"], "n1");
            assert_eq!(beat["url"], t.url);
            assert!(beat["memory_bytes"].as_u64().unwrap() > 0);
            break;
        }
        assert!(Instant::now() < deadline, "no heartbeat with both jobs");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // SIGTERM the agent: the containers keep running.
    // SAFETY: kill(2) on our own child's pid.
    unsafe { libc::kill(child.0.id() as i32, libc::SIGTERM) };
    let status = child.0.wait().unwrap();
    assert!(status.success(), "agent exit: {status:?}");
    assert!(
        alive(pid_a) && alive(pid_b),
        "containers must outlive the agent"
    );
    // One dies while the agent is down.
    // SAFETY: kill(2) on the container process this test started.
    unsafe { libc::kill(pid_b as i32, libc::SIGKILL) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(pid_b) {
        assert!(Instant::now() < deadline, "pid {pid_b} did not die");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    child = KillOnDrop(spawn_agent(dir.path(), &names, addr, &registry.url));
    t.wait_healthy(dir.path()).await;
    let a2 = t.get("keep").await;
    assert_eq!(a2["state"], "up", "{a2}");
    assert_eq!(a2["pid"].as_i64(), Some(pid_a));
    assert_eq!(a2["addr"], a["addr"]);
    let table = nft_table(&names.prefix);
    assert!(
        table.contains(&a["host_port"].to_string()),
        "mapping restored: {table}"
    );
    let b2 = t.get("lose").await;
    assert_eq!(b2["state"], "crashed", "{b2}");
    assert_eq!(b2["exit"]["reason"], "exited while the agent was down");

    // The re-adopted job is still managed: stop it.
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/jobs/keep/stop", t.url))
        .bearer_auth(TOKEN)
        .json(&json!({"grace_seconds": 1}))
        .send()
        .await
        .unwrap();
    let stopped: Value = resp.json().await.unwrap();
    assert_eq!(stopped["state"], "down", "{stopped}");
    assert!(!alive(pid_a));
    drop(child);
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct AgentProc {
    url: String,
}

impl AgentProc {
    async fn wait_healthy(&self, dir: &Path) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let resp = reqwest::Client::new()
                .get(format!("{}/v1/health", self.url))
                .bearer_auth(TOKEN)
                .send()
                .await;
            if resp.is_ok_and(|r| r.status() == 200) {
                return;
            }
            if Instant::now() > deadline {
                let log = std::fs::read_to_string(dir.join("agent.log")).unwrap_or_default();
                panic!("agent did not come up:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn post(&self, spec: Value) -> Value {
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/jobs", self.url))
            .bearer_auth(TOKEN)
            .json(&spec)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201);
        resp.json().await.unwrap()
    }

    async fn get(&self, id: &str) -> Value {
        reqwest::Client::new()
            .get(format!("{}/v1/jobs/{id}", self.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }
}
