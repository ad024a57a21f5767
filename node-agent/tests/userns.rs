//! Root tests of the jobs' user namespaces, through the real `paas-agent` binary and real
//! containers: each tenant's own uid range (kept in `userns.json`, the same after a
//! restart, never another tenant's), a build job's writable source and cache and its
//! output layer in container ids, the device attack, and running out of ranges.

mod common;

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::{busybox_rootfs_tar, cleanup, need_root, unique_names, FakeRegistry, Names};
use paas_node_agent::config::UsernsRange;
use serde_json::{json, Value};

const TOKEN: &str = "node-token-for-userns-tests";
const RANGE: u32 = 65_536;

/// A `paas-agent` process on a loopback port with its own state dir, prefix and uid
/// range, and a fake registry holding `stacks/tiny`; cleaned up on drop.
struct BinAgent {
    names: Names,
    range: UsernsRange,
    registry: FakeRegistry,
    dir: tempfile::TempDir,
    url: String,
    port: u16,
    child: Option<std::process::Child>,
}

impl BinAgent {
    async fn start(ranges: u32) -> BinAgent {
        let names = unique_names();
        let range = UsernsRange {
            first: names.userns.first,
            count: ranges * RANGE,
        };
        let registry = FakeRegistry::start(TOKEN).await;
        registry.add_image(
            "stacks/tiny",
            "latest",
            &busybox_rootfs_tar(),
            json!({"architecture": "amd64", "os": "linux",
                   "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"]}}),
        );
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut agent = BinAgent {
            url: format!("http://127.0.0.1:{port}"),
            names,
            range,
            registry,
            dir: tempfile::tempdir().unwrap(),
            port,
            child: None,
        };
        // As in production, the state dir is host root's alone: a job's root (an
        // unprivileged host uid) may not walk it, and must not need to.
        std::fs::set_permissions(
            agent.dir.path(),
            std::os::unix::fs::PermissionsExt::from_mode(0o700),
        )
        .unwrap();
        agent.spawn().await;
        agent
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Starts the agent binary and waits until it answers.
    async fn spawn(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.path().join("agent.log"))
            .unwrap();
        let child = std::process::Command::new(common::agent_bin())
            .args(["--token", TOKEN, "--node-name", "n1"])
            .args(["--listen", &format!("127.0.0.1:{}", self.port)])
            .arg("--state-dir")
            .arg(self.state_dir())
            .args(["--prefix", &self.names.prefix])
            .args(["--subnet", &self.names.subnet.to_string()])
            .args(["--port-range", &self.names.ports.to_string()])
            .args(["--userns-range", &self.range.to_string()])
            .stderr(log)
            .spawn()
            .unwrap();
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while self
            .request(reqwest::Method::GET, "/v1/health", None)
            .await
            .is_none()
        {
            assert!(
                Instant::now() < deadline,
                "the agent did not come up: {}",
                std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// SIGTERM, then waits for the agent to exit (its containers keep running).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let _ = child.wait();
        }
    }

    async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Option<(u16, Value)> {
        let mut req = reqwest::Client::new()
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(TOKEN);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.ok()?;
        let status = resp.status().as_u16();
        let text = resp.text().await.ok()?;
        Some((
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        ))
    }

    fn image(&self) -> Value {
        json!({"registry": self.registry.url, "repository": "stacks/tiny", "reference": "latest"})
    }

    /// A job spec in a user namespace, of `tenant`, running `script`.
    fn job(&self, id: &str, tenant: Option<u32>, script: &str) -> Value {
        json!({"id": id, "image": self.image(), "command": ["sh", "-c", script],
               "user_namespace": true, "tenant": tenant})
    }

    /// Posts a job, waits for it to end, returns (final status, its output).
    async fn run(&self, spec: Value) -> (Value, String) {
        let id = spec["id"].as_str().unwrap().to_string();
        let (status, body) = self
            .request(reqwest::Method::POST, "/v1/jobs", Some(spec))
            .await
            .unwrap();
        assert_eq!(status, 201, "POST /v1/jobs: {body}");
        let deadline = Instant::now() + Duration::from_secs(60);
        let job = loop {
            let (_, job) = self
                .request(reqwest::Method::GET, &format!("/v1/jobs/{id}"), None)
                .await
                .unwrap();
            if job["state"] == "down" || job["state"] == "crashed" {
                break job;
            }
            assert!(Instant::now() < deadline, "job {id} not final: {job}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        let (_, logs) = self
            .request(reqwest::Method::GET, &format!("/v1/jobs/{id}/logs"), None)
            .await
            .unwrap();
        (job, logs.as_str().unwrap_or_default().to_string())
    }

    fn saved(&self) -> Value {
        serde_json::from_slice(&std::fs::read(self.state_dir().join("userns.json")).unwrap())
            .unwrap()
    }
}

impl Drop for BinAgent {
    fn drop(&mut self) {
        self.stop();
        cleanup(&self.state_dir(), &self.names.prefix);
    }
}

/// The host id container id 0 maps to, from `/proc/self/uid_map` output.
fn mapped_root(out: &str) -> u32 {
    let line = out
        .lines()
        .find(|l| l.split_whitespace().count() == 3)
        .unwrap_or_else(|| panic!("no uid_map line in {out:?}"));
    let f: Vec<u32> = line
        .split_whitespace()
        .map(|n| n.parse().unwrap())
        .collect();
    assert_eq!((f[0], f[2]), (0, RANGE), "{line}");
    f[1]
}

fn owner(path: &Path) -> (u32, u32) {
    let m = std::fs::symlink_metadata(path).unwrap();
    (m.uid(), m.gid())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_tenant_has_its_own_range_kept_across_an_agent_restart() {
    if !need_root("each_tenant_has_its_own_range_kept_across_an_agent_restart") {
        return;
    }
    let mut a = BinAgent::start(16).await;
    let uid_map = "cat /proc/self/uid_map";
    let mut t1 = a.job(
        "t1-a",
        Some(1),
        "cat /proc/self/uid_map; echo one > /data/one; id -u",
    );
    t1["volumes"] = json!([{"name": "vol-t1", "path": "/data"}]);
    let (job, out) = a.run(t1).await;
    assert_eq!(job["exit"]["code"], 0, "{job} {out}");
    let r1 = mapped_root(&out);
    assert!(out.ends_with("\n0\n"), "root inside: {out}");
    let (_, out) = a.run(a.job("t2-a", Some(2), uid_map)).await;
    let r2 = mapped_root(&out);
    let (_, out) = a.run(a.job("lone", None, uid_map)).await;
    let lone = mapped_root(&out);
    let (_, out) = a.run(a.job("t1-b", Some(1), uid_map)).await;
    assert_eq!(mapped_root(&out), r1, "the same tenant, the same range");
    for r in [r1, r2, lone] {
        assert!(
            r >= a.range.first && r + RANGE <= a.range.first + a.range.count,
            "{r} outside {}",
            a.range
        );
    }
    assert!(r1.abs_diff(r2) >= RANGE && r1.abs_diff(lone) >= RANGE && r2.abs_diff(lone) >= RANGE);
    let vol = a.state_dir().join("volumes/vol-t1");
    assert_eq!(owner(&vol), (r1, r1));
    assert_eq!(owner(&vol.join("one")), (r1, r1));
    let saved = a.saved();
    assert_eq!(saved["tenants"]["1"], r1, "{saved}");
    assert_eq!(saved["tenants"]["2"], r2, "{saved}");
    assert_eq!(saved["jobs"]["lone"], lone, "{saved}");

    // A job of no tenant gives its range back when deleted; tenants keep theirs.
    let (status, _) = a
        .request(reqwest::Method::DELETE, "/v1/jobs/lone", None)
        .await
        .unwrap();
    assert_eq!(status, 204);
    assert!(a.saved()["jobs"].get("lone").is_none(), "{}", a.saved());

    // After a restart, tenant 1 has the same range and its volume as it left it.
    a.stop();
    a.spawn().await;
    let mut again = a.job(
        "t1-c",
        Some(1),
        "cat /proc/self/uid_map; cat /data/one; echo two > /data/two",
    );
    again["volumes"] = json!([{"name": "vol-t1", "path": "/data"}]);
    let (job, out) = a.run(again).await;
    assert_eq!(job["exit"]["code"], 0, "{job} {out}");
    assert_eq!(mapped_root(&out), r1, "{out}");
    assert!(out.contains("one\n"), "{out}");
    assert_eq!(owner(&vol.join("two")), (r1, r1));
    let (_, out) = a.run(a.job("t3", Some(3), uid_map)).await;
    let r3 = mapped_root(&out);
    assert!(
        ![r1, r2].contains(&r3),
        "a new tenant gets a free range: {r3}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_job_owns_its_source_and_cache_and_its_layer_has_container_ids() {
    if !need_root("a_build_job_owns_its_source_and_cache_and_its_layer_has_container_ids") {
        return;
    }
    let a = BinAgent::start(4).await;
    let src = common::TarBuilder::new()
        .dir("lib/")
        .file("lib/app.sh", b"echo app\n", 0o755)
        .finish();
    let input = a.registry.add_input("src", src);
    // A volume made before user namespaces: root's, with a file of uid 1000.
    let cache = a.state_dir().join("volumes/cache-demo");
    std::fs::create_dir_all(cache.join("old")).unwrap();
    std::fs::write(cache.join("old/f"), "old\n").unwrap();
    std::os::unix::fs::chown(cache.join("old/f"), Some(1000), Some(1000)).unwrap();
    let script = "echo built >> /app/lib/app.sh && mkdir /app/.profile.d && \
                  echo 'export X=1' > /app/.profile.d/x.sh && touch /app/user-file && \
                  chown 1000:1000 /app/user-file && cat /cache/old/f && \
                  echo new > /cache/old/f && echo cached > /cache/c && echo ok";
    let mut spec = a.job("build-1", Some(7), script);
    spec["inputs"] = json!([{"url": input, "path": "/app"}]);
    spec["volumes"] = json!([{"name": "cache-demo", "path": "/cache"}]);
    spec["working_dir"] = json!("/app");
    spec["output"] = json!({"path": "/app", "registry": a.registry.url, "repository": "apps/demo"});
    let (job, out) = a.run(spec).await;
    assert_eq!(job["state"], "down", "{job}\n{out}");
    assert!(out.contains("old\n") && out.ends_with("ok\n"), "{out}");
    let base = a.saved()["tenants"]["7"].as_u64().unwrap() as u32;
    // The cache on the host: the tenant's range, uid 1000 as base + 1000.
    assert_eq!(owner(&cache), (base, base));
    assert_eq!(owner(&cache.join("c")), (base, base));
    assert_eq!(owner(&cache.join("old/f")), (base + 1000, base + 1000));

    let uploads = a.registry.state.lock().unwrap().uploads.clone();
    assert_eq!(uploads.len(), 1);
    let blob = &uploads[0].2;
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(&blob[..]));
    let mut owners = std::collections::BTreeMap::new();
    for e in archive.entries().unwrap() {
        let e = e.unwrap();
        let path = e.path().unwrap().to_string_lossy().to_string();
        owners.insert(path, (e.header().uid().unwrap(), e.header().gid().unwrap()));
    }
    for (path, want) in [
        ("app/", (0, 0)),
        ("app/lib/app.sh", (0, 0)),
        ("app/.profile.d/x.sh", (0, 0)),
        ("app/user-file", (1000, 1000)),
    ] {
        assert_eq!(owners.get(path), Some(&want), "{path} in {owners:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_cannot_change_a_host_device_node() {
    if !need_root("a_job_cannot_change_a_host_device_node") {
        return;
    }
    let a = BinAgent::start(2).await;
    let nodes = ["null", "zero", "full", "random", "urandom", "tty"];
    let host = |n: &str| {
        let m = std::fs::metadata(Path::new("/dev").join(n)).unwrap();
        (m.uid(), m.gid(), m.mode(), m.rdev())
    };
    let before: Vec<_> = nodes.iter().map(|n| host(n)).collect();
    let attack = "for n in null zero full random urandom tty; do \
         chown 1234:1234 /dev/$n && echo chown-$n-worked; \
         chmod 0777 /dev/$n && echo chmod-$n-worked; \
         chmod 0600 /dev/$n && echo chmod600-$n-worked; done; \
         mknod /dev/sda b 8 0 && echo mknod-worked; \
         mkdir -p /tmp/d && mknod /tmp/d/null c 1 3 && echo mknod-tmp-worked; \
         echo x > /dev/null && echo null-works; cat /proc/self/uid_map";
    let (job, out) = a.run(a.job("attack", Some(1), attack)).await;
    assert!(out.contains("null-works"), "{job} {out}");
    assert!(!out.contains("-worked"), "an attack worked:\n{out}");
    assert_ne!(mapped_root(&out), 0);
    let after: Vec<_> = nodes.iter().map(|n| host(n)).collect();
    assert_eq!(before, after, "a host device node changed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn running_out_of_ranges_is_a_clear_job_error() {
    if !need_root("running_out_of_ranges_is_a_clear_job_error") {
        return;
    }
    let a = BinAgent::start(1).await;
    let (job, out) = a.run(a.job("first", Some(1), "true")).await;
    assert_eq!(job["state"], "down", "{job} {out}");
    let (status, body) = a
        .request(
            reqwest::Method::POST,
            "/v1/jobs",
            Some(a.job("second", Some(2), "true")),
        )
        .await
        .unwrap();
    assert_eq!(status, 503, "{body}");
    let msg = body["message"].as_str().unwrap_or_default().to_string() + &body.to_string();
    assert!(
        msg.contains("no uid/gid range left") && msg.contains("--userns-range"),
        "{body}"
    );
    let (_, job) = a
        .request(reqwest::Method::GET, "/v1/jobs/second", None)
        .await
        .unwrap();
    assert_eq!(job["state"], "crashed", "{job}");
    assert!(
        job["exit"]["reason"]
            .as_str()
            .unwrap()
            .contains("no uid/gid range left"),
        "{job}"
    );
    // The tenant that has one keeps it; nothing else was saved.
    assert_eq!(a.saved()["tenants"].as_object().unwrap().len(), 1);
    let (job, _) = a.run(a.job("again", Some(1), "true")).await;
    assert_eq!(job["state"], "down", "{job}");
}
