//! Shared helpers for the controller's integration tests: a controller on random ports with
//! a temporary data directory, a fake node agent (no containers, no root: builds copy the
//! source into a layer, web jobs are tiny TCP servers), a `tiny` stack image, and git.
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path as UrlPath, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use http::StatusCode;
use paas_api::{ExitInfo, JobSpec, JobState, JobStatus, LayerInfo, NodeHeartbeat};
use paas_controller::config::Settings;
use paas_controller::state::Controller;
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

pub fn sha(bytes: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(bytes)))
}

/// gzip of a tar holding `files` (path, bytes); returns (gzip, diff_id).
pub fn gzip_layer(files: &[(String, Vec<u8>)]) -> (Vec<u8>, String) {
    let mut tar = tar::Builder::new(Vec::new());
    for (path, data) in files {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_mtime(0);
        tar.append_data(&mut h, path, data.as_slice()).unwrap();
    }
    let tar = tar.into_inner().unwrap();
    let diff_id = sha(&tar);
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&tar).unwrap();
    (gz.finish().unwrap(), diff_id)
}

/// Writes a one-layer OCI image layout (the fake `tiny` stack) into `dir`.
pub fn write_stack_layout(dir: &Path) {
    let (layer, diff_id) = gzip_layer(&[("bin/sh".into(), b"not really a shell".to_vec())]);
    let config = serde_json::json!({
        "architecture": "amd64", "os": "linux",
        "config": {"Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]}
    })
    .to_string()
    .into_bytes();
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": sha(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": sha(&layer), "size": layer.len()}]
    })
    .to_string()
    .into_bytes();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
                       "digest": sha(&manifest), "size": manifest.len()}]
    });
    let blobs = dir.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    for blob in [&layer, &config, &manifest] {
        let hex = sha(blob).trim_start_matches("sha256:").to_string();
        std::fs::write(blobs.join(hex), blob).unwrap();
    }
    std::fs::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    std::fs::write(dir.join("index.json"), index.to_string()).unwrap();
}

/// A controller serving on random loopback ports (API and router) with a temporary data
/// directory and its scheduler loop running; no agent unless [`FakeAgent`] joins.
pub struct Running {
    pub dir: tempfile::TempDir,
    pub c: Arc<Controller>,
    pub api: String,
    pub router_addr: String,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Drop for Running {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
    }
}

impl Running {
    pub async fn start(with_stack: bool) -> Running {
        Running::start_with(with_stack, |_| {}).await
    }

    /// [`Running::start`] with settings changed by `configure` (limits, …).
    pub async fn start_with(with_stack: bool, configure: impl FnOnce(&mut Settings)) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let router = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let router_addr = router.local_addr().unwrap();
        let mut settings = Settings::new(
            dir.path().to_path_buf(),
            addr,
            router_addr.port(),
            "localhost",
        )
        .unwrap();
        settings.hook_exe = env!("CARGO_BIN_EXE_paas-controller").into();
        configure(&mut settings);
        let c = Controller::open(settings).await.unwrap();
        if with_stack {
            let stacks = dir.path().join("stacks");
            write_stack_layout(&stacks.join("tiny"));
            let imported = paas_controller::standalone::import_stacks(&c.registry, &stacks)
                .await
                .unwrap();
            assert_eq!(imported, ["tiny"]);
            // A second import of the same layout is a no-op.
            let again = paas_controller::standalone::import_stacks(&c.registry, &stacks)
                .await
                .unwrap();
            assert!(again.is_empty());
        }
        // With connect info, as the real server: the source address reaches the limits
        // and the refusal log.
        let app = paas_controller::http::app(Arc::clone(&c))
            .into_make_service_with_connect_info::<std::net::SocketAddr>();
        let tasks = vec![
            tokio::spawn(async move {
                axum::serve(listener, app).await.unwrap();
            }),
            tokio::spawn(paas_controller::scheduler::run(Arc::clone(&c))),
            tokio::spawn({
                let table = c.routes.clone();
                async move {
                    let _ = paas_controller::router::serve(router, table).await;
                }
            }),
        ];
        Running {
            dir,
            c,
            api: format!("http://{addr}"),
            router_addr: router_addr.to_string(),
            tasks,
        }
    }

    pub fn host(&self) -> String {
        self.api.trim_start_matches("http://").to_string()
    }

    pub fn git_url(&self, app: &str, token: Option<&str>) -> String {
        match token {
            Some(t) => format!("http://user:{t}@{}/git/{app}.git", self.host()),
            None => format!("http://{}/git/{app}.git", self.host()),
        }
    }

    /// One HTTP/1.1 GET through the router with `Host: <app>.localhost`.
    pub async fn request_app(&self, app: &str) -> (u16, String) {
        let mut s = tokio::net::TcpStream::connect(&self.router_addr)
            .await
            .unwrap();
        let req = format!("GET / HTTP/1.1\r\nHost: {app}.localhost\r\nConnection: close\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        let mut raw = Vec::new();
        s.read_to_end(&mut raw).await.unwrap();
        let text = String::from_utf8_lossy(&raw).to_string();
        let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
        let body = text
            .split_once("\r\n\r\n")
            .map(|x| x.1.to_string())
            .unwrap_or_default();
        (status, body)
    }
}

/// A git working copy with `main` checked out, and a HOME without credentials.
pub struct AppDir {
    pub dir: tempfile::TempDir,
    home: tempfile::TempDir,
}

impl AppDir {
    pub fn new() -> AppDir {
        let a = AppDir {
            dir: tempfile::tempdir().unwrap(),
            home: tempfile::tempdir().unwrap(),
        };
        assert!(a.git(&["init", "-q", "-b", "main"]).status.success());
        a
    }

    pub fn write(&self, path: &str, text: &str) {
        let p = self.dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn commit(&self, message: &str) {
        assert!(self.git(&["add", "-A"]).status.success());
        assert!(self.git(&["commit", "-q", "-m", message]).status.success());
    }

    pub fn git(&self, args: &[&str]) -> Output {
        Command::new("git")
            .current_dir(self.dir.path())
            .env("HOME", self.home.path())
            .env("GIT_TERMINAL_PROMPT", "0")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env_remove("GIT_ASKPASS")
            .env_remove("SSH_ASKPASS")
            .args([
                "-c",
                "credential.helper=",
                "-c",
                "user.name=t",
                "-c",
                "user.email=t@t.invalid",
            ])
            .args(args)
            .output()
            .unwrap()
    }

    /// `git push <url> <refspec>` off the async runtime: (success, stdout + stderr).
    pub async fn push(self: &Arc<Self>, url: &str, refspec: &str) -> (bool, String) {
        let (me, url, refspec) = (Arc::clone(self), url.to_string(), refspec.to_string());
        tokio::task::spawn_blocking(move || {
            let out = me.git(&["push", &url, &refspec]);
            let mut text = String::from_utf8_lossy(&out.stdout).to_string();
            text.push_str(&String::from_utf8_lossy(&out.stderr));
            (out.status.success(), text)
        })
        .await
        .unwrap()
    }
}

struct FakeJob {
    status: JobStatus,
    logs: String,
    server: Option<tokio::task::JoinHandle<()>>,
}

/// A node agent without containers, speaking the agent API: a build job downloads its
/// source input, fails when there is neither a Procfile nor an index.html, else pushes the
/// source as the app layer (plus `.paas/release.yml`); a web job is a TCP server answering
/// `hello from <job id>` on a random port.
#[derive(Clone)]
pub struct FakeAgent {
    jobs: Arc<Mutex<BTreeMap<String, FakeJob>>>,
    /// Every JobSpec the agent was given, in order.
    pub specs: Arc<Mutex<Vec<JobSpec>>>,
    /// The volumes `DELETE /v1/volumes/{name}` was called for, in order.
    pub deleted_volumes: Arc<Mutex<Vec<String>>>,
    token: String,
    http: reqwest::Client,
    pub url: String,
}

impl FakeAgent {
    /// Starts the fake and its heartbeat (every second) to the controller.
    pub async fn join(running: &Running) -> (FakeAgent, Vec<tokio::task::JoinHandle<()>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let agent = FakeAgent {
            jobs: Arc::default(),
            specs: Arc::default(),
            deleted_volumes: Arc::default(),
            token: running.c.tokens.node().to_string(),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
            url: format!("http://{}", listener.local_addr().unwrap()),
        };
        let app = Router::new()
            .route("/v1/jobs", get(list).post(create))
            .route("/v1/jobs/{id}", get(one).delete(delete))
            .route("/v1/jobs/{id}/logs", get(logs))
            .route("/v1/jobs/{id}/stop", post(stop))
            .route("/v1/volumes/{name}", axum::routing::delete(delete_volume))
            .with_state(agent.clone());
        let serve = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        let hb_agent = agent.clone();
        let controller = running.api.clone();
        let beat = tokio::spawn(async move {
            loop {
                let hb = NodeHeartbeat {
                    name: "fake".into(),
                    url: hb_agent.url.clone(),
                    memory_bytes: 1 << 30,
                    jobs: hb_agent.statuses(),
                    layers: Vec::new(),
                    stats: Vec::new(),
                    agent_token: None,
                    volumes: Vec::new(),
                };
                let _ = hb_agent
                    .http
                    .post(format!("{controller}/v1/nodes/heartbeat"))
                    .bearer_auth(&hb_agent.token)
                    .json(&hb)
                    .send()
                    .await;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        (agent, vec![serve, beat])
    }

    pub fn statuses(&self) -> Vec<JobStatus> {
        let jobs = self.jobs.lock().unwrap();
        jobs.values().map(|j| j.status.clone()).collect()
    }

    /// Ids of the jobs that are up.
    pub fn up_jobs(&self) -> Vec<String> {
        self.statuses()
            .into_iter()
            .filter(|s| s.state == JobState::Up)
            .map(|s| s.id)
            .collect()
    }

    async fn build(&self, spec: &JobSpec) -> (JobStatus, String) {
        let mut status = status_of(spec, JobState::Down);
        let source = self
            .http
            .get(&spec.inputs[0].url)
            .bearer_auth(&self.token)
            .send()
            .await
            .unwrap();
        assert!(
            source.status().is_success(),
            "source input: {}",
            source.status()
        );
        let bytes = source.bytes().await.unwrap();
        let mut files = Vec::new();
        let mut archive = tar::Archive::new(bytes.as_ref());
        for entry in archive.entries().unwrap() {
            let mut entry = entry.unwrap();
            if !entry.header().entry_type().is_file() {
                continue;
            }
            let path = entry.path().unwrap().display().to_string();
            let mut data = Vec::new();
            entry.read_to_end(&mut data).unwrap();
            files.push((format!("app/{path}"), data));
        }
        let has = |name: &str| files.iter().any(|(p, _)| p == &format!("app/{name}"));
        if !has("Procfile") && !has("index.html") {
            status.state = JobState::Crashed;
            status.exit = Some(exit("exited 1"));
            let logs =
                " !     No buildpack could build this app: add a Procfile or an index.html\n";
            return (status, logs.into());
        }
        files.push((
            "app/.paas/release.yml".into(),
            b"---\ndefault_process_types:\n  web: fake-static-server\n".to_vec(),
        ));
        let (layer, diff_id) = gzip_layer(&files);
        let output = spec.output.as_ref().unwrap();
        let digest = sha(&layer);
        let pushed = self
            .http
            .post(format!(
                "{}/v2/{}/blobs/uploads/?digest={digest}",
                output.registry, output.repository
            ))
            .bearer_auth(&self.token)
            .body(layer.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(pushed.status().as_u16(), 201, "layer push");
        status.exit = Some(exit("exited 0"));
        status.output_layer = Some(LayerInfo {
            digest,
            diff_id,
            size: layer.len() as u64,
        });
        (
            status,
            "-----> Fake app detected\n       compiling...\n".into(),
        )
    }
}

fn exit(reason: &str) -> ExitInfo {
    ExitInfo {
        code: Some(if reason.ends_with(" 0") { 0 } else { 1 }),
        signal: None,
        oom_killed: false,
        reason: reason.into(),
    }
}

fn status_of(spec: &JobSpec, state: JobState) -> JobStatus {
    JobStatus {
        id: spec.id.clone(),
        labels: spec.labels.clone(),
        state,
        pid: None,
        ip: None,
        host_port: None,
        addr: None,
        exit: None,
        output_layer: None,
        started_at: None,
        finished_at: None,
    }
}

async fn create(
    State(agent): State<FakeAgent>,
    Json(spec): Json<JobSpec>,
) -> Result<(StatusCode, Json<JobStatus>), StatusCode> {
    if agent.jobs.lock().unwrap().contains_key(&spec.id) {
        return Err(StatusCode::CONFLICT);
    }
    agent.specs.lock().unwrap().push(spec.clone());
    let job = if spec.labels.get("paas.kind").map(String::as_str) == Some("build") {
        let (status, logs) = agent.build(&spec).await;
        FakeJob {
            status,
            logs,
            server: None,
        }
    } else if spec.command.iter().any(|a| a.contains("exit 3"))
        || spec.env.contains_key("FAKE_CRASH")
    {
        // A process that dies at once (its command, or a config var it cannot live with).
        let mut status = status_of(&spec, JobState::Crashed);
        status.exit = Some(exit("exited 3"));
        FakeJob {
            status,
            logs: "boom\n".into(),
            server: None,
        }
    } else {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut status = status_of(&spec, JobState::Up);
        status.addr = Some(listener.local_addr().unwrap().to_string());
        let env: HashMap<String, String> = spec.env.clone().into_iter().collect();
        let body = format!(
            "hello from {} port={} dyno={}",
            spec.id,
            env.get("PORT").cloned().unwrap_or_default(),
            env.get("DYNO").cloned().unwrap_or_default()
        );
        let server = tokio::spawn(async move {
            loop {
                let Ok((mut s, _)) = listener.accept().await else {
                    return;
                };
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
        FakeJob {
            status,
            logs: String::new(),
            server: Some(server),
        }
    };
    let status = job.status.clone();
    agent.jobs.lock().unwrap().insert(spec.id.clone(), job);
    Ok((StatusCode::CREATED, Json(status)))
}

async fn list(State(agent): State<FakeAgent>) -> Json<Vec<JobStatus>> {
    Json(agent.statuses())
}

async fn one(
    State(agent): State<FakeAgent>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<JobStatus>, StatusCode> {
    let jobs = agent.jobs.lock().unwrap();
    jobs.get(&id)
        .map(|j| Json(j.status.clone()))
        .ok_or(StatusCode::NOT_FOUND)
}

async fn logs(
    State(agent): State<FakeAgent>,
    UrlPath(id): UrlPath<String>,
) -> Result<String, StatusCode> {
    let jobs = agent.jobs.lock().unwrap();
    jobs.get(&id)
        .map(|j| j.logs.clone())
        .ok_or(StatusCode::NOT_FOUND)
}

async fn stop(
    State(agent): State<FakeAgent>,
    UrlPath(id): UrlPath<String>,
) -> Result<Json<JobStatus>, StatusCode> {
    let mut jobs = agent.jobs.lock().unwrap();
    let job = jobs.get_mut(&id).ok_or(StatusCode::NOT_FOUND)?;
    if let Some(server) = job.server.take() {
        server.abort();
    }
    if job.status.state == JobState::Up {
        job.status.state = JobState::Down;
        job.status.exit = Some(exit("stopped: exited 0"));
    }
    Ok(Json(job.status.clone()))
}

async fn delete(State(agent): State<FakeAgent>, UrlPath(id): UrlPath<String>) -> StatusCode {
    let mut jobs = agent.jobs.lock().unwrap();
    match jobs.remove(&id) {
        Some(mut job) => {
            if let Some(server) = job.server.take() {
                server.abort();
            }
            StatusCode::NO_CONTENT
        }
        None => StatusCode::NOT_FOUND,
    }
}

async fn delete_volume(
    State(agent): State<FakeAgent>,
    UrlPath(name): UrlPath<String>,
) -> StatusCode {
    agent.deleted_volumes.lock().unwrap().push(name);
    StatusCode::NO_CONTENT
}
