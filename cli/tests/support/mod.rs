//! A real controller for the CLI's tests: the same HTTP app the server mounts
//! (`paas_controller::http::app`), over a real socket on 127.0.0.1, with a real store in a
//! temporary data directory, on its own tokio runtime. Tests run the built `paas` binary
//! against it, so every command goes through the real routes. State a command needs that
//! no command makes (releases, nodes, jobs) is written through the controller's store.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use paas_controller::config::Settings;
use paas_controller::state::Controller;
use paas_controller::store::{release_status, JobRow, ReleaseRow};

/// A controller serving on a random loopback port until dropped.
pub struct Real {
    pub url: String,
    /// The admin token.
    pub admin: String,
    pub c: Arc<Controller>,
    pub dir: tempfile::TempDir,
    rt: tokio::runtime::Runtime,
}

impl Real {
    pub fn start() -> Real {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().to_path_buf();
        let (c, url) = rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let addr = listener.local_addr().unwrap();
            // The router is not started: these tests never reach an app.
            let router_port = std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let settings = Settings::new(data, addr, router_port, "localhost").unwrap();
            let c = Controller::open(settings).await.unwrap();
            let app = paas_controller::http::app(Arc::clone(&c))
                .into_make_service_with_connect_info::<std::net::SocketAddr>();
            tokio::spawn(async move {
                axum::serve(listener, app).await.unwrap();
            });
            (c, format!("http://{addr}"))
        });
        let admin = c.tokens.admin().to_string();
        Real {
            url,
            admin,
            c,
            dir,
            rt,
        }
    }

    pub fn block_on<F: std::future::Future>(&self, f: F) -> F::Output {
        self.rt.block_on(f)
    }

    /// Adds a member with a password and returns an API token of theirs.
    pub fn member(&self, name: &str) -> String {
        let password = format!("{name}-password");
        self.block_on(self.c.store.create_user(name, "member", Some(&password)))
            .unwrap();
        let resp = reqwest::blocking::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .post(format!("{}/v1/login", self.url))
            .json(&serde_json::json!({"user": name, "password": password}))
            .send()
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
        let v: serde_json::Value = resp.json().unwrap();
        v["token"].as_str().unwrap().to_string()
    }

    /// Makes `app` (if needed) with releases v1..=vN, each succeeded unless `failed` names
    /// it (with that reason); the newest that succeeded is current.
    pub fn releases(&self, app: &str, count: u32, failed: Option<(u32, &str)>) {
        self.block_on(async {
            if self.c.store.get_app(app).await.unwrap().is_none() {
                self.c.store.create_app(app).await.unwrap();
            }
            let mut good = None;
            for version in 1..=count {
                let release = ReleaseRow {
                    app: app.to_string(),
                    version,
                    image: format!("apps/{app}@sha256:{version:064}"),
                    source_version: None,
                    process_types: BTreeMap::from([("web".into(), "./serve".into())]),
                    config: BTreeMap::new(),
                    description: format!("Deploy number {version}"),
                    created_at: format!("2024-05-0{version}T10:00:00Z"),
                };
                self.c.store.create_release(&release).await.unwrap();
                let (status, reason) = match failed {
                    Some((v, reason)) if v == version => (release_status::FAILED, Some(reason)),
                    _ => {
                        good = Some(version);
                        (release_status::SUCCEEDED, None)
                    }
                };
                self.c
                    .store
                    .set_release_status(app, version, None, status, reason)
                    .await
                    .unwrap();
            }
            if let Some((v, _)) = failed {
                self.c
                    .store
                    .revert_current_release(app, v, good)
                    .await
                    .unwrap();
            }
        });
    }

    /// A node as its heartbeat records it, with `jobs` running jobs of `app`'s v1.
    pub fn node(&self, name: &str, app: &str, jobs: u32) {
        self.block_on(async {
            self.c
                .store
                .upsert_node(name, "http://127.0.0.1:9", 1 << 30, 0)
                .await
                .unwrap();
            for n in 0..jobs {
                let job = JobRow {
                    id: format!("{app}-web-{name}-{n}"),
                    app: app.to_string(),
                    release: 1,
                    process_type: "web".into(),
                    node: name.to_string(),
                    state: "running".into(),
                    addr: None,
                    exit_reason: None,
                    created_at: "2024-05-01T10:00:00Z".into(),
                    updated_at: "2024-05-01T10:00:00Z".into(),
                };
                self.c.store.insert_job(&job).await.unwrap();
            }
        });
    }
}

/// A sandbox for one test: its own HOME (config file) and working folder, so no real
/// config file or git repository is ever read.
pub struct Sandbox {
    pub home: tempfile::TempDir,
    pub work: tempfile::TempDir,
}

impl Sandbox {
    pub fn new() -> Self {
        Sandbox {
            home: tempfile::tempdir().unwrap(),
            work: tempfile::tempdir().unwrap(),
        }
    }

    pub fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_paas"));
        cmd.args(args)
            .current_dir(self.work.path())
            .env("HOME", self.home.path())
            .env(
                "GIT_CEILING_DIRECTORIES",
                self.work.path().parent().unwrap(),
            )
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_TERMINAL_PROMPT", "0")
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("PAAS_URL")
            .env_remove("PAAS_TOKEN");
        cmd
    }

    pub fn paas(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().unwrap())
    }

    /// `paas ARGS --url URL --token TOKEN`.
    pub fn as_user(&self, real: &Real, token: &str, args: &[&str]) -> Run {
        let mut all = args.to_vec();
        all.extend(["--url", &real.url, "--token", token]);
        self.paas(&all)
    }
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(out: Output) -> Self {
        Run {
            code: out.status.code().expect("exited, not killed"),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        }
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub fn git(dir: &Path, args: &[&str]) {
    let out = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@t.invalid"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "git {args:?}: {out:?}");
}
