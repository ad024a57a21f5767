//! Two `paas-controller` processes against one PostgreSQL (a throwaway server, see
//! `store::test_pg`) and one shared data dir, with a fake node agent that starts jobs slowly
//! (one at a time, 300 ms each). Both serve the API and the router; only the leader runs the
//! scheduler. The leader is SIGKILLed in the middle of a scale to 10; the other takes over
//! (the time is printed), and the formation converges to exactly 10 jobs on the agent and
//! in the store, with no duplicates, served by the surviving controller's router. Before
//! that, an HTTPS redirect written to the store by someone else reaches both routers.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path as UrlPath, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use paas_api::{JobSpec, JobState, JobStatus, NodeHeartbeat};
use paas_controller::store::{test_pg, ReleaseRow, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const BIN: &str = env!("CARGO_BIN_EXE_paas-controller");
const COUNT: u32 = 10;

/// A controller process; killed on drop. Its stderr lines are kept with their time.
struct Proc {
    child: Child,
    api: String,
    router: String,
    log: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Proc {
    fn start(data: &std::path::Path, db: &str) -> Proc {
        let (api, router) = (free_port(), free_port());
        let mut child = Command::new(BIN)
            // Each controller serves its own router here (the test kills controllers to
            // fail over; a router process would outlive them).
            .args(["--standalone", "--no-local-agent", "--router-in-process"])
            .arg("--data-dir")
            .arg(data)
            .args(["--listen", &format!("127.0.0.1:{api}")])
            .args(["--router-listen", &format!("127.0.0.1:{router}")])
            .env("PAAS_DATABASE_URL", db)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let log = Arc::new(Mutex::new(Vec::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = Arc::clone(&log);
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                sink.lock().unwrap().push((Instant::now(), line));
            }
        });
        Proc {
            child,
            api: format!("http://127.0.0.1:{api}"),
            router: format!("127.0.0.1:{router}"),
            log,
        }
    }

    /// When the controller said it leads (the first time), if it did.
    fn led_at(&self) -> Option<Instant> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .find(|(_, l)| l.contains("now leads"))
            .map(|(t, _)| *t)
    }

    fn dump(&self) -> String {
        let log = self.log.lock().unwrap();
        let lines: Vec<&str> = log.iter().map(|(_, l)| l.as_str()).collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

/// A job of the fake agent: its status and the TCP server that answers for it.
type FakeJob = (JobStatus, Option<tokio::task::JoinHandle<()>>);

/// The fake agent: jobs are TCP servers; starts are serialized and slow.
#[derive(Clone, Default)]
struct Agent {
    jobs: Arc<Mutex<BTreeMap<String, FakeJob>>>,
    start_lock: Arc<tokio::sync::Mutex<()>>,
    created: Arc<Mutex<Vec<String>>>,
}

impl Agent {
    fn live(&self) -> BTreeSet<String> {
        let jobs = self.jobs.lock().unwrap();
        jobs.values()
            .filter(|(s, _)| s.state == JobState::Up)
            .map(|(s, _)| s.id.clone())
            .collect()
    }
    fn statuses(&self) -> Vec<JobStatus> {
        let jobs = self.jobs.lock().unwrap();
        jobs.values().map(|(s, _)| s.clone()).collect()
    }
}

async fn create(
    State(a): State<Agent>,
    Json(spec): Json<JobSpec>,
) -> Result<(StatusCode, Json<JobStatus>), StatusCode> {
    let _one_at_a_time = a.start_lock.lock().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    if a.jobs.lock().unwrap().contains_key(&spec.id) {
        return Err(StatusCode::CONFLICT);
    }
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let body = format!("hello from {}", spec.id);
    let server = tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let body = body.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 1024];
                let _ = s.read(&mut buf).await;
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    let status = JobStatus {
        id: spec.id.clone(),
        labels: spec.labels.clone(),
        state: JobState::Up,
        pid: None,
        ip: None,
        host_port: None,
        addr: Some(addr),
        exit: None,
        output_layer: None,
        started_at: None,
        finished_at: None,
    };
    a.created.lock().unwrap().push(spec.id.clone());
    a.jobs
        .lock()
        .unwrap()
        .insert(spec.id.clone(), (status.clone(), Some(server)));
    Ok((StatusCode::CREATED, Json(status)))
}

async fn list(State(a): State<Agent>) -> Json<Vec<JobStatus>> {
    Json(a.statuses())
}

async fn one(
    State(a): State<Agent>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<JobStatus>, StatusCode> {
    let jobs = a.jobs.lock().unwrap();
    jobs.get(&id)
        .map(|(s, _)| Json(s.clone()))
        .ok_or(StatusCode::NOT_FOUND)
}

async fn stop(
    State(a): State<Agent>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<JobStatus>, StatusCode> {
    let mut jobs = a.jobs.lock().unwrap();
    let (status, server) = jobs.get_mut(&id).ok_or(StatusCode::NOT_FOUND)?;
    if let Some(s) = server.take() {
        s.abort();
    }
    status.state = JobState::Down;
    Ok(Json(status.clone()))
}

async fn delete(State(a): State<Agent>, UrlPath(id): UrlPath<String>) -> StatusCode {
    if let Some((_, Some(s))) = a.jobs.lock().unwrap().remove(&id) {
        s.abort();
    }
    StatusCode::NO_CONTENT
}

/// Serves the fake agent and heartbeats (as node `fake`) to every controller each second.
async fn start_agent(controllers: Vec<String>, token: String) -> Agent {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let agent = Agent::default();
    let app = Router::new()
        .route("/v1/jobs", get(list).post(create))
        .route("/v1/jobs/{id}", get(one).delete(delete))
        .route("/v1/jobs/{id}/logs", get(|| async { "" }))
        .route("/v1/jobs/{id}/stop", post(stop))
        .with_state(agent.clone());
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    let a = agent.clone();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    tokio::spawn(async move {
        loop {
            let hb = NodeHeartbeat {
                name: "fake".into(),
                url: url.clone(),
                memory_bytes: 64 << 30,
                jobs: a.statuses(),
                layers: Vec::new(),
                stats: Vec::new(),
                agent_token: None,
                volumes: Vec::new(),
            };
            for c in &controllers {
                let _ = http
                    .post(format!("{c}/v1/nodes/heartbeat"))
                    .bearer_auth(&token)
                    .json(&hb)
                    .timeout(Duration::from_secs(1))
                    .send()
                    .await;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
    agent
}

async fn wait_until<F: FnMut() -> bool>(what: &str, secs: u64, mut f: F) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One GET through a controller's router with `Host: scale.localhost`.
async fn via_router(router: &str) -> (u16, String) {
    let Ok(mut s) = tokio::net::TcpStream::connect(router).await else {
        return (0, String::new());
    };
    let req = "GET / HTTP/1.1\r\nHost: scale.localhost\r\nConnection: close\r\n\r\n";
    if s.write_all(req.as_bytes()).await.is_err() {
        return (0, String::new());
    }
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw).await;
    let text = String::from_utf8_lossy(&raw).to_string();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, text)
}

async fn router_serves(router: &str) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, text) = via_router(router).await;
        if status == 200 && text.contains("hello from scale-v1-") {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "the router {router} never served scale: {status} {text}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_mid_scale_another_takes_over_and_formation_converges() {
    let Some(db) = test_pg::database() else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    support::write_stack_layout(&data.path().join("stacks/tiny"));

    let a = Proc::start(data.path(), &db.url);
    wait_until("the first controller leads", 60, || a.led_at().is_some()).await;
    let b = Proc::start(data.path(), &db.url);
    let token = std::fs::read_to_string(data.path().join("node-token")).unwrap();
    let agent = start_agent(vec![a.api.clone(), b.api.clone()], token.trim().into()).await;

    // An app with one release; the first deploy's web=1 comes up.
    let store = Store::connect(&db.url).await.unwrap();
    store.create_app("scale").await.unwrap();
    store
        .create_release(&ReleaseRow {
            app: "scale".into(),
            version: 1,
            image: format!("apps/scale@sha256:{}", "c".repeat(64)),
            source_version: None,
            process_types: BTreeMap::from([("web".into(), "serve".into())]),
            config: BTreeMap::new(),
            description: "Deploy".into(),
            created_at: paas_controller::util::now_rfc3339(),
        })
        .await
        .unwrap();
    wait_until("web=1 runs", 60, || agent.live().len() == 1).await;
    // Both routers serve it: the follower reads its routes from the store.
    router_serves(&a.router).await;
    router_serves(&b.router).await;
    assert!(b.led_at().is_none(), "two leaders:\n{}", b.dump());

    // An HTTPS redirect turned on by another controller (written to the shared store):
    // both routers pick it up, the follower's too; turned off again, both serve again.
    store
        .set_https_redirect("scale", true, &paas_controller::util::now_rfc3339())
        .await
        .unwrap();
    for router in [&a.router, &b.router] {
        let deadline = Instant::now() + Duration::from_secs(20);
        while via_router(router).await.0 != 308 {
            assert!(
                Instant::now() < deadline,
                "the router {router} did not pick up the HTTPS redirect"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    store
        .set_https_redirect("scale", false, &paas_controller::util::now_rfc3339())
        .await
        .unwrap();
    router_serves(&a.router).await;
    router_serves(&b.router).await;

    // Scale to 10 and kill the leader after a few of the 9 new starts.
    store.set_formation("scale", "web", COUNT).await.unwrap();
    wait_until("the scale is under way", 60, || {
        agent.created.lock().unwrap().len() >= 4
    })
    .await;
    let mut a = a;
    a.child.kill().unwrap();
    let killed = Instant::now();
    a.child.wait().unwrap();
    let started_before_kill = agent.created.lock().unwrap().len();

    wait_until("the second controller leads", 60, || b.led_at().is_some()).await;
    let took = b.led_at().unwrap().saturating_duration_since(killed);
    eprintln!(
        "failover: the second controller led {} ms after the leader was killed \
         ({started_before_kill} of {COUNT} jobs had been started)",
        took.as_millis()
    );

    // Converged: exactly COUNT jobs on the agent, the same ones active in the store, for
    // several passes in a row.
    let mut stable_since: Option<(Instant, BTreeSet<String>)> = None;
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let live = agent.live();
        let rows: BTreeSet<String> = store
            .active_jobs()
            .await
            .unwrap()
            .into_iter()
            .filter(|j| j.app == "scale")
            .map(|j| j.id)
            .collect();
        let ok = live.len() == COUNT as usize && rows == live;
        match (&stable_since, ok) {
            (Some((t, ids)), true) if *ids == live => {
                if t.elapsed() > Duration::from_secs(4) {
                    break;
                }
            }
            (_, true) => stable_since = Some((Instant::now(), live.clone())),
            (_, false) => stable_since = None,
        }
        assert!(
            Instant::now() < deadline,
            "did not converge: agent has {} live jobs {live:?}, store {rows:?}\n{}",
            live.len(),
            b.dump()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let created = agent.created.lock().unwrap().clone();
    let unique: BTreeSet<&String> = created.iter().collect();
    assert_eq!(unique.len(), created.len(), "a job id was started twice");
    eprintln!("converged to {COUNT} jobs; {} starts in all", created.len());
    // The survivor's router serves the app.
    router_serves(&b.router).await;
    store.close().await;
    drop(b);
}
