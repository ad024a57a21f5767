//! Root tests of the agent's log capture with the real `paas-agent` binary and real
//! containers: timestamps from the agent, stderr marked, the size cap, and a SIGKILLed
//! agent whose successor re-adopts the job and goes on capturing without repeating or
//! losing a line. Prefix `lg4…`, subnets 10.200.50.0/24 – 10.200.59.0/24.

mod common;

use std::net::SocketAddr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{busybox_rootfs_tar, cleanup, need_root, FakeRegistry};
use serde_json::{json, Value};

const TOKEN: &str = "node-token-for-log-tests";
/// `--job-log-bytes` of the test agent: small, so the cap is reached quickly.
const CAP: u64 = 64 * 1024;

struct Guard {
    dir: std::path::PathBuf,
    prefix: String,
}

impl Drop for Guard {
    fn drop(&mut self) {
        cleanup(&self.dir, &self.prefix);
    }
}

struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn spawn_agent(dir: &Path, prefix: &str, slot: u32, addr: SocketAddr) -> KillOnDrop {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("agent.log"))
        .unwrap();
    let first = 50_500 + slot * 100;
    KillOnDrop(
        std::process::Command::new(common::agent_bin())
            .args(["--token", TOKEN, "--node-name", "lg"])
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--state-dir")
            .arg(dir.join("state"))
            .args(["--prefix", prefix])
            .arg("--subnet")
            .arg(format!("10.200.{}.0/24", 50 + slot))
            .arg("--port-range")
            .arg(format!("{first}-{}", first + 99))
            .arg("--job-log-bytes")
            .arg(CAP.to_string())
            .stderr(log)
            .spawn()
            .unwrap(),
    )
}

struct Client {
    url: String,
}

impl Client {
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

    async fn logs(&self, id: &str, query: &str) -> String {
        let resp = reqwest::Client::new()
            .get(format!("{}/v1/jobs/{id}/logs?{query}", self.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        resp.text().await.unwrap()
    }

    /// The timestamped records once `done` accepts them (at most 60 s).
    async fn records_until(&self, id: &str, done: impl Fn(&[Rec]) -> bool) -> Vec<Rec> {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let recs = parse(&self.logs(id, "timestamps=true").await);
            if done(&recs) {
                return recs;
            }
            assert!(Instant::now() < deadline, "records of {id}: {recs:?}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

/// One record of the timestamped format: (timestamp, stream, text).
type Rec = (String, String, String);

fn parse(text: &str) -> Vec<Rec> {
    text.lines()
        .map(|l| {
            let mut parts = l.splitn(3, ' ');
            let ts = parts.next().unwrap().to_string();
            let stream = parts.next().unwrap_or_default().to_string();
            let text = parts.next().unwrap_or_default().to_string();
            (ts, stream, text)
        })
        .collect()
}

/// The numbers of the records of `stream` whose text is `<word> N`.
fn numbers(recs: &[Rec], stream: &str, word: &str) -> Vec<u64> {
    recs.iter()
        .filter(|r| r.1 == stream)
        .filter_map(|r| r.2.strip_prefix(word)?.trim().parse().ok())
        .collect()
}

/// `YYYY-MM-DDTHH:MM:SS.ffffffZ` of a time, to compare with the agent's stamps as text.
fn stamp(t: SystemTime) -> String {
    let us = t.duration_since(UNIX_EPOCH).unwrap().as_micros() as i64;
    paas_node_agent::jobs::capture::format_micros(us)
}

fn alive(pid: i64) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_stamps_lines_caps_them_and_resumes_after_sigkill() {
    if !need_root("agent_stamps_lines_caps_them_and_resumes_after_sigkill") {
        return;
    }
    let slot = std::process::id() % 10;
    let prefix = format!("lg4{:04x}", std::process::id() % 0xffff);
    let dir = tempfile::tempdir().unwrap();
    let _guard = Guard {
        dir: dir.path().join("state"),
        prefix: prefix.clone(),
    };
    let registry = FakeRegistry::start(TOKEN).await;
    registry.add_image(
        "stacks/tiny",
        "latest",
        &busybox_rootfs_tar(),
        json!({"architecture": "amd64", "os": "linux",
               "config": {"Env": ["PATH=/bin"], "Cmd": ["sh"], "WorkingDir": "/"}}),
    );
    let image =
        json!({"registry": registry.url, "repository": "stacks/tiny", "reference": "latest"});
    let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let t = Client {
        url: format!("http://{addr}"),
    };
    let mut agent = spawn_agent(dir.path(), &prefix, slot, addr);
    t.wait_healthy(dir.path()).await;

    // A line on stdout and one on stderr every 0.2 s.
    let before = stamp(SystemTime::now());
    let ticker = t
        .post(json!({"id": "ticker", "image": image, "command": ["sh", "-c",
            "i=0; while true; do i=$((i+1)); echo \"out $i\"; echo \"err $i\" >&2; sleep 0.2; done"]}))
        .await;
    let pid = ticker["pid"].as_i64().unwrap();
    let recs = t
        .records_until("ticker", |r| numbers(r, "stderr", "err").len() >= 5)
        .await;
    let after = stamp(SystemTime::now());
    let stamps: Vec<&str> = recs.iter().map(|r| r.0.as_str()).collect();
    assert!(
        stamps.windows(2).all(|w| w[0] < w[1]),
        "strictly increasing: {recs:?}"
    );
    assert!(
        stamps[0] > before.as_str() && *stamps.last().unwrap() < after.as_str(),
        "stamped by the agent while the test watched ({before} … {after}): {recs:?}"
    );
    assert!(recs.iter().all(|r| r.1 == "stdout" || r.1 == "stderr"));
    assert_eq!(numbers(&recs, "stdout", "out")[..5], [1, 2, 3, 4, 5]);
    assert_eq!(numbers(&recs, "stderr", "err")[..5], [1, 2, 3, 4, 5]);
    assert!(
        numbers(&recs, "stdout", "err").is_empty() && numbers(&recs, "stderr", "out").is_empty(),
        "each line in its own stream: {recs:?}"
    );
    // The raw format (what builds and old callers read) is the output itself.
    let raw = t.logs("ticker", "").await;
    assert!(
        raw.starts_with("out 1\n") && raw.contains("err 1\n"),
        "{raw}"
    );
    // The last 2 records, and the records after a given one.
    let last2 = parse(&t.logs("ticker", "timestamps=true&lines=2").await);
    assert_eq!(last2.len(), 2);
    let since = parse(
        &t.logs("ticker", &format!("timestamps=true&since={}", recs[2].0))
            .await,
    );
    assert_eq!(since[0], recs[3], "since= starts after the given record");

    // SIGKILL the agent; the job keeps printing while no agent runs.
    agent.0.kill().unwrap();
    agent.0.wait().unwrap();
    let killed_at = stamp(SystemTime::now());
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert!(alive(pid), "the container outlives the agent");
    agent = spawn_agent(dir.path(), &prefix, slot, addr);
    t.wait_healthy(dir.path()).await;
    let job = t.get("ticker").await;
    assert_eq!(
        (job["state"].as_str(), job["pid"].as_i64()),
        (Some("up"), Some(pid))
    );
    let recs = t
        .records_until("ticker", |r| {
            r.last().is_some_and(|l| l.0 > killed_at) && numbers(r, "stdout", "out").len() > 25
        })
        .await;
    let stamps: Vec<&str> = recs.iter().map(|r| r.0.as_str()).collect();
    assert!(
        stamps.windows(2).all(|w| w[0] < w[1]),
        "still increasing across the restart: {recs:?}"
    );
    for (stream, word) in [("stdout", "out"), ("stderr", "err")] {
        let n = numbers(&recs, stream, word);
        let expected: Vec<u64> = (1..=n.len() as u64).collect();
        assert_eq!(n, expected, "{stream}: every line once, in order");
    }

    // The cap: 3000 lines of ~60 bytes (≈ 260 KiB of records) into a 64 KiB cap.
    t.post(json!({"id": "chatty", "image": image, "command": ["sh", "-c",
        "i=0; while [ $i -lt 3000 ]; do i=$((i+1)); echo \"line $i padding padding padding\"; done; sleep 300"]}))
        .await;
    let recs = t
        .records_until("chatty", |r| {
            r.last()
                .is_some_and(|l| l.2 == "line 3000 padding padding padding")
        })
        .await;
    let n = numbers(
        &recs
            .iter()
            .map(|r| (r.0.clone(), r.1.clone(), r.2.replace(" padding", "")))
            .collect::<Vec<_>>(),
        "stdout",
        "line",
    );
    assert!(n[0] > 1, "the oldest lines were dropped");
    assert!(
        n.windows(2).all(|w| w[1] == w[0] + 1),
        "what is kept has no gap"
    );
    let jobdir = dir.path().join("state/jobs/chatty");
    let kept: u64 = ["records.log", "records.log.1"]
        .iter()
        .map(|f| std::fs::metadata(jobdir.join(f)).map_or(0, |m| m.len()))
        .sum();
    // Each half may pass CAP/2 by one poll's batch.
    assert!(kept <= CAP + 64 * 1024, "records kept: {kept} bytes");
    // The consumed start of the container's own file was freed (sparse), not left to grow.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let out = std::fs::metadata(jobdir.join("stdout.log")).unwrap();
    assert!(
        out.blocks() * 512 < out.len(),
        "stdout.log: {} bytes, {} allocated",
        out.len(),
        out.blocks() * 512
    );
    drop(agent);
}
