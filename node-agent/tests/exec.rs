//! Root tests of `GET /v1/jobs/{id}/stats`, the heartbeat's stats sampler and
//! `POST /v1/jobs/{id}/exec` (the upgraded exec stream), against a real busybox job of an
//! in-process agent (subnet 10.200.67.0/24).

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{busybox_rootfs_tar, cleanup, config, need_root, unique_names, FakeRegistry};
use paas_api::exec::{self as proto, kind, ExecRequest};
use paas_node_agent::{app, Agent};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const TOKEN: &str = "node-token-for-exec-tests";

struct TestAgent {
    url: String,
    addr: String,
    registry: FakeRegistry,
    agent: Arc<Agent>,
    dir: tempfile::TempDir,
    prefix: String,
}

impl Drop for TestAgent {
    fn drop(&mut self) {
        cleanup(self.dir.path(), &self.prefix);
    }
}

impl TestAgent {
    async fn start(octet_slot: u16) -> TestAgent {
        let mut names = unique_names();
        names.subnet = format!("10.200.67.{}/28", octet_slot * 16).parse().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let registry = FakeRegistry::start(TOKEN).await;
        registry.add_image(
            "stacks/tiny",
            "latest",
            &busybox_rootfs_tar(),
            json!({"architecture": "amd64", "os": "linux",
                   "config": {"Env": ["PATH=/bin", "FROM_IMAGE=yes"], "Cmd": ["sh"]}}),
        );
        let prefix = names.prefix.clone();
        let agent = Agent::open(config(dir.path(), TOKEN, &names)).expect("open agent");
        agent.start().await.expect("start agent");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        agent.set_bound(addr);
        let router = app(agent.clone());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        TestAgent {
            url: format!("http://{addr}"),
            addr: addr.to_string(),
            registry,
            agent,
            dir,
            prefix,
        }
    }

    async fn get(&self, path: &str) -> (u16, Value) {
        let resp = reqwest::Client::new()
            .get(format!("{}{path}", self.url))
            .bearer_auth(TOKEN)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or(Value::Null))
    }

    async fn run_job(&self, id: &str, command: &[&str], memory: Option<u64>) {
        let spec = json!({
            "id": id,
            "image": {"registry": self.registry.url, "repository": "stacks/tiny",
                      "reference": "latest"},
            "command": command,
            "env": {"FROM_SPEC": "spec"},
            "memory_bytes": memory,
        });
        let resp = reqwest::Client::new()
            .post(format!("{}/v1/jobs", self.url))
            .bearer_auth(TOKEN)
            .json(&spec)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 201, "{}", resp.text().await.unwrap());
    }

    /// Opens the exec stream: sends the upgrade request, checks the 101, sends START.
    async fn exec(&self, id: &str, req: &ExecRequest) -> Result<TcpStream, String> {
        let mut s = TcpStream::connect(&self.addr).await.unwrap();
        let head = format!(
            "POST /v1/jobs/{id}/exec HTTP/1.1\r\nHost: agent\r\nAuthorization: Bearer \
             {TOKEN}\r\nConnection: Upgrade\r\nUpgrade: paas-exec\r\nContent-Length: 0\r\n\r\n"
        );
        s.write_all(head.as_bytes()).await.unwrap();
        let mut got = Vec::new();
        let mut byte = [0u8; 1];
        while !got.ends_with(b"\r\n\r\n") {
            if s.read(&mut byte).await.unwrap() == 0 {
                break;
            }
            got.push(byte[0]);
        }
        let text = String::from_utf8_lossy(&got).to_string();
        if !text.starts_with("HTTP/1.1 101") {
            return Err(text);
        }
        let start = proto::encode(kind::START, &serde_json::to_vec(req).unwrap());
        s.write_all(&start).await.unwrap();
        Ok(s)
    }
}

/// Reads frames until EXIT: (stdout, stderr, errors, exit code).
async fn collect(s: &mut TcpStream) -> (String, String, String, i32) {
    let (mut out, mut err, mut errors) = (Vec::new(), Vec::new(), String::new());
    let read = async {
        loop {
            let f = paas_node_agent::exec::read_frame(s)
                .await
                .unwrap()
                .expect("the stream ended before EXIT");
            match f.kind {
                kind::STDOUT => out.extend_from_slice(&f.payload),
                kind::STDERR => err.extend_from_slice(&f.payload),
                kind::ERROR => errors.push_str(&String::from_utf8_lossy(&f.payload)),
                kind::EXIT => return proto::parse_exit(&f.payload).unwrap(),
                k => panic!("unexpected frame kind {k}"),
            }
        }
    };
    let code = tokio::time::timeout(Duration::from_secs(30), read)
        .await
        .expect("no EXIT frame within 30 s");
    (
        String::from_utf8_lossy(&out).to_string(),
        String::from_utf8_lossy(&err).to_string(),
        errors,
        code,
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stats_of_a_running_job_in_the_api_and_the_heartbeat() {
    if !need_root("stats_of_a_running_job_in_the_api_and_the_heartbeat") {
        return;
    }
    let t = TestAgent::start(0).await;
    let limit = 64 * 1024 * 1024;
    t.run_job(
        "stats1",
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; exec sleep 1000",
        ],
        Some(limit),
    )
    .await;
    let (status, s) = t.get("/v1/jobs/stats1/stats").await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["job_id"], "stats1");
    assert_eq!(s["memory_limit_bytes"], limit);
    assert!(s["memory_bytes"].as_u64().unwrap() > 0, "{s}");
    assert!(s["pids"].as_u64().unwrap() >= 1, "{s}");
    assert!(s["at"].as_str().unwrap().ends_with('Z'), "{s}");
    // The busy loop used CPU; wait until the counter shows it.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, s) = t.get("/v1/jobs/stats1/stats").await;
        if s["cpu_usage_usec"].as_u64().unwrap() > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "cpu usage stays 0: {s}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The heartbeat's sampler never blocks: the first call starts a sample.
    let mut sampler = paas_node_agent::stats::Sampler::default();
    assert!(sampler.latest(&t.agent).await.is_empty());
    sampler.settle(Duration::from_secs(10)).await;
    let sample = sampler.latest(&t.agent).await;
    assert_eq!(sample.len(), 1, "{sample:?}");
    assert_eq!(sample[0].job_id, "stats1");
    assert_eq!(sample[0].memory_limit_bytes, Some(limit));
    let hb = paas_node_agent::heartbeat::heartbeat(&t.agent, sample);
    assert_eq!(hb.stats.len(), 1);

    // Unknown job: 404; a job that is not up: 409.
    assert_eq!(t.get("/v1/jobs/nosuch/stats").await.0, 404);
    t.run_job("stats2", &["true"], None).await;
    let deadline = Instant::now() + Duration::from_secs(20);
    while t.get("/v1/jobs/stats2").await.1["state"] != "down" {
        assert!(Instant::now() < deadline, "stats2 never ended");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (status, body) = t.get("/v1/jobs/stats2/stats").await;
    assert_eq!(status, 409, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exec_streams_stdin_stdout_stderr_and_the_exit_code() {
    if !need_root("exec_streams_stdin_stdout_stderr_and_the_exit_code") {
        return;
    }
    let t = TestAgent::start(1).await;
    t.run_job(
        "exec1",
        &["sh", "-c", "echo mark > /tmp/mark; exec sleep 1000"],
        None,
    )
    .await;

    // Piped: stdin reaches the process, stdout and stderr come apart, the code comes back,
    // and it runs in the job's pid namespace, filesystem and environment.
    let req = ExecRequest {
        command: vec![
            "sh".into(),
            "-c".into(),
            "cat; echo oops >&2; cat /tmp/mark; tr '\\0' ' ' < /proc/1/cmdline; echo; \
             echo $FROM_SPEC $EXTRA; exit 3"
                .into(),
        ],
        env: vec!["EXTRA=extra".into()],
        ..Default::default()
    };
    let mut s = t.exec("exec1", &req).await.unwrap();
    s.write_all(&proto::encode(kind::STDIN, b"from stdin\n"))
        .await
        .unwrap();
    s.write_all(&proto::encode(kind::STDIN, b"")).await.unwrap();
    let (out, err, errors, code) = collect(&mut s).await;
    assert_eq!(code, 3, "out={out} err={err} errors={errors}");
    assert_eq!(
        out, "from stdin\nmark\nsleep 1000 \nspec extra\n",
        "err={err}"
    );
    assert_eq!(err, "oops\n");

    // With a TTY: the process sees a terminal of the asked size; stderr comes as stdout.
    let req = ExecRequest {
        command: vec![
            "sh".into(),
            "-c".into(),
            "test -t 0 && echo is-a-tty; stty size; echo to-stderr >&2; exit 5".into(),
        ],
        tty: true,
        rows: 33,
        cols: 101,
        ..Default::default()
    };
    let mut s = t.exec("exec1", &req).await.unwrap();
    let (out, err, _, code) = collect(&mut s).await;
    assert_eq!(code, 5, "{out}");
    assert!(out.contains("is-a-tty"), "{out}");
    assert!(out.contains("33 101"), "{out}");
    assert!(out.contains("to-stderr"), "{out}");
    assert!(err.is_empty());

    // An interactive shell on the TTY: input typed, then exit.
    let req = ExecRequest {
        command: vec!["sh".into()],
        tty: true,
        ..Default::default()
    };
    let mut s = t.exec("exec1", &req).await.unwrap();
    s.write_all(&proto::encode(
        kind::STDIN,
        b"echo typed-$((6*7))\nexit 9\n",
    ))
    .await
    .unwrap();
    let (out, _, _, code) = collect(&mut s).await;
    assert_eq!(code, 9, "{out}");
    assert!(out.contains("typed-42"), "{out}");

    // A command that is not there: an ERROR frame and 127.
    let req = ExecRequest {
        command: vec!["nosuch-command".into()],
        ..Default::default()
    };
    let mut s = t.exec("exec1", &req).await.unwrap();
    let (_, _, errors, code) = collect(&mut s).await;
    assert_eq!(code, 127);
    assert!(errors.contains("nosuch-command"), "{errors}");

    // The caller hanging up kills the process.
    let req = ExecRequest {
        command: vec![
            "sh".into(),
            "-c".into(),
            "echo $$ > /tmp/hung; exec sleep 777".into(),
        ],
        ..Default::default()
    };
    let s = t.exec("exec1", &req).await.unwrap();
    let cmdlines = || {
        std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
            .filter(|c| c == b"sleep\x00777\x00")
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(20);
    while cmdlines() == 0 {
        assert!(Instant::now() < deadline, "the exec'd sleep never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(s);
    let deadline = Instant::now() + Duration::from_secs(20);
    while cmdlines() > 0 {
        assert!(
            Instant::now() < deadline,
            "the exec'd sleep outlived its caller"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // HTTP-level refusals: unknown job 404, no upgrade header 426.
    let err = t.exec("nosuch", &ExecRequest::default()).await.unwrap_err();
    assert!(err.starts_with("HTTP/1.1 404"), "{err}");
    let resp = reqwest::Client::new()
        .post(format!("{}/v1/jobs/exec1/exec", t.url))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 426);
}
