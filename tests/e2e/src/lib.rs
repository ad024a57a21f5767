//! The end-to-end harness: a real `paas-controller --standalone` process (which starts a real
//! `paas-agent`), the real `git` client, real containers.
//!
//! Every [`Paas`] gets its own data dir, ports, host-global prefix, subnet and host port
//! range, so journeys run in parallel; dropping it stops the controller and runs
//! `paas-agent cleanup` so no container, bridge or nftables table is left behind.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

mod app_dir;
mod bins;
pub mod netns;
pub mod oci_layout;
pub mod tenants;

pub use app_dir::{AppDir, Push};
pub use bins::{
    addon_stacks_dir, bins, bookworm_stacks_dir, require_root, stacks_dir, workspace_root, Bins,
};

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A running standalone paas.
pub struct Paas {
    child: Child,
    pub data: tempfile::TempDir,
    pub api: String,
    pub router_addr: String,
    /// The router's HTTPS address (`--router-tls-listen`).
    pub router_tls_addr: String,
    pub token: String,
    pub prefix: String,
    log_path: PathBuf,
    /// The controller's command line, to start it again ([`Paas::restart`]).
    command: Vec<std::ffi::OsString>,
}

static INSTANCE: AtomicU32 = AtomicU32::new(0);

/// The first of the 200 subnet slots from `start` (wrapping) whose `10.201.<slot + 20>.`
/// addresses no interface holds: a bridge left by a killed run would take the new agent's
/// routes (the agent refuses such a subnet).
fn free_slot(start: u32) -> u32 {
    let out = Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    (0..200)
        .map(|i| (start + i) % 200)
        .find(|s| !out.contains(&format!(" 10.201.{}.", s + 20)))
        .unwrap_or(start)
}

impl Paas {
    pub fn start() -> Paas {
        Paas::start_with_stacks(stacks_dir())
    }

    /// [`Paas::start`] with another `--stacks-dir` (e.g. [`bookworm_stacks_dir`]).
    pub fn start_with_stacks(stacks: &Path) -> Paas {
        Paas::start_with_args(stacks, &[])
    }

    /// [`Paas::start_with_stacks`] with more controller flags (limits, …).
    pub fn start_with_args(stacks: &Path, extra: &[&str]) -> Paas {
        let bins = bins();
        let n = INSTANCE.fetch_add(1, Ordering::SeqCst);
        let slot = free_slot((std::process::id() * 7 + n * 13) % 200) + 20;
        let prefix = format!("e2{:04x}", (std::process::id() * 16 + n) % 0xffff);
        // The ports come from binding :0 and closing again, so another process may take
        // one before the controller binds it: then start again on new ports.
        for attempt in 1.. {
            let data = tempfile::Builder::new()
                .prefix("paas-e2e-")
                .tempdir()
                .unwrap();
            // As `mkdir /var/lib/paas` leaves it (tempfile makes 0700): the controller is
            // the one that must keep its data dir private.
            std::fs::set_permissions(
                data.path(),
                std::os::unix::fs::PermissionsExt::from_mode(0o755),
            )
            .unwrap();
            let api_port = free_port();
            let router_port = free_port();
            let router_tls_port = free_port();
            let log_path = data.path().join("controller.log");
            let log = std::fs::File::create(&log_path).unwrap();
            let mut cmd = Command::new(&bins.controller);
            cmd.arg("--standalone")
                .arg("--data-dir")
                .arg(data.path())
                .arg("--listen")
                .arg(format!("127.0.0.1:{api_port}"))
                .arg("--router-listen")
                .arg(format!("127.0.0.1:{router_port}"))
                .arg("--router-tls-listen")
                .arg(format!("127.0.0.1:{router_tls_port}"))
                .args(["--domain", "localhost", "--prefix", &prefix])
                .arg("--subnet")
                .arg(format!("10.201.{slot}.0/24"))
                // Below the kernel's ephemeral ports (32768-60999 here), where the API and
                // router ports above come from: the agent skips and holds busy ports
                // (node-agent network/holds.rs), this keeps them from meeting at all.
                .arg("--port-range")
                .arg(format!(
                    "{}-{}",
                    10000 + (slot - 20) * 100,
                    10000 + (slot - 20) * 100 + 99
                ))
                .arg("--stacks-dir")
                .arg(stacks)
                .args(extra)
                .env("RUST_LOG", "info");
            let command = cmd.get_args().map(|a| a.to_os_string()).collect();
            let child = cmd
                .stdout(Stdio::from(log.try_clone().unwrap()))
                .stderr(Stdio::from(log))
                .spawn()
                .expect("start paas-controller");
            let mut paas = Paas {
                child,
                api: format!("http://127.0.0.1:{api_port}"),
                router_addr: format!("127.0.0.1:{router_port}"),
                router_tls_addr: format!("127.0.0.1:{router_tls_port}"),
                token: String::new(),
                prefix: prefix.clone(),
                log_path,
                data,
                command,
            };
            match paas.wait_ready() {
                Ok(()) => return paas,
                Err(log) if log.contains("Address already in use") && attempt < 3 => {
                    eprintln!("paas-controller lost a port to another process, retrying:\n{log}");
                }
                Err(log) => panic!("paas-controller exited during start-up:\n{log}"),
            }
        }
        unreachable!("the start-up loop returns or panics")
    }

    /// Waits until the API answers and one node is up; `Err` with the controller's log
    /// when it exited meanwhile (a timeout panics).
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let token_path = self.data.path().join("admin-token");
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Err(format!("({status}):\n{}", self.log()));
            }
            if let Ok(token) = std::fs::read_to_string(&token_path) {
                self.token = token.trim().to_string();
                if let Ok(resp) = self
                    .client()
                    .get(format!("{}/v1/apps", self.api))
                    .bearer_auth(&self.token)
                    .send()
                {
                    if resp.status().is_success() && self.node_up() {
                        return Ok(());
                    }
                }
            }
            if Instant::now() > deadline {
                panic!(
                    "paas-controller was not ready (API + one node up) within 30 s:\n{}",
                    self.log()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// SIGKILLs the controller (not its agent, which a killed controller leaves running)
    /// and reaps it.
    pub fn kill_controller(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Starts the controller again with the same flags and data dir (after
    /// [`Paas::kill_controller`]); its log is appended to the same file.
    pub fn restart(&mut self) {
        self.restart_with_env(&[]);
    }

    /// [`Paas::restart`] with more environment variables (e.g. `PAAS_TEST_KILL_AT`).
    pub fn restart_with_env(&mut self, env: &[(&str, &str)]) {
        self.start_again(None, env);
    }

    /// Starts the controller (`bin`, or the built one) with the first start's flags and
    /// `env`, appending to the same log, and waits until it is ready.
    fn start_again(&mut self, bin: Option<&Path>, env: &[(&str, &str)]) {
        let log = std::fs::OpenOptions::new()
            .append(true)
            .open(&self.log_path)
            .unwrap();
        self.child = Command::new(bin.unwrap_or(&bins().controller))
            .args(&self.command)
            .envs(env.iter().copied())
            .env("RUST_LOG", "info")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .expect("start paas-controller again");
        if let Err(log) = self.wait_ready() {
            panic!("paas-controller exited during its restart:\n{log}");
        }
    }

    /// Waits up to `limit` for the controller to exit by itself; true when it did.
    pub fn wait_controller_exit(&mut self, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// The pid in the agent's `agent.pid` (the agent holding its state dir's lock).
    pub fn agent_pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.data.path().join("agent/agent.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// The pids of the `paas-agent` processes serving this instance's state dir.
    pub fn agent_processes(&self) -> Vec<i32> {
        let state = self.data.path().join("agent");
        let want = state.as_os_str().as_encoded_bytes();
        let mut pids = Vec::new();
        for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
                continue;
            };
            let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
                continue;
            };
            let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
            let is_agent = args.first().is_some_and(|a| a.ends_with(b"paas-agent"));
            if is_agent
                && args
                    .windows(2)
                    .any(|w| w[0] == b"--state-dir" && w[1] == want)
            {
                pids.push(pid);
            }
        }
        pids
    }

    fn node_up(&self) -> bool {
        self.get_json("/v1/nodes")
            .ok()
            .and_then(|v| v.as_array().cloned())
            .is_some_and(|nodes| nodes.iter().any(|n| n["state"] == "up"))
    }

    /// Starts the controller again with the same flags (`bin`: another binary, as in an
    /// upgrade) and waits until it is ready.
    pub fn restart_controller(&mut self, bin: Option<&Path>) {
        self.start_again(bin, &[]);
    }

    /// The pid of the router process serving from the data dir, if one runs.
    pub fn router_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.data.path().join("router/listening")).ok()?;
        let v: serde_json::Value = serde_json::from_str(&text).ok()?;
        let pid = v["pid"].as_i64()? as i32;
        // SAFETY: kill(2) with signal 0 only checks that the pid exists.
        (unsafe { libc::kill(pid, 0) } == 0).then_some(pid)
    }

    /// The controller's (and its agent's) log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn client(&self) -> reqwest::blocking::Client {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap()
    }

    /// GET an API path with the admin token; the JSON body on 2xx.
    pub fn get_json(&self, path: &str) -> Result<serde_json::Value> {
        let resp = self
            .client()
            .get(format!("{}{}", self.api, path))
            .bearer_auth(&self.token)
            .send()?;
        let status = resp.status();
        let body = resp.text()?;
        if !status.is_success() {
            bail!("GET {path}: {status}: {body}");
        }
        Ok(serde_json::from_str(&body)?)
    }

    /// The git URL of an app, with the admin token as the basic-auth password.
    pub fn git_url(&self, app: &str) -> String {
        self.git_url_with(app, Some(&self.token.clone()))
    }

    pub fn git_url_with(&self, app: &str, token: Option<&str>) -> String {
        let host = self.api.trim_start_matches("http://");
        match token {
            Some(t) => format!("http://user:{t}@{host}/git/{app}.git"),
            None => format!("http://{host}/git/{app}.git"),
        }
    }

    /// One plain HTTP/1.1 request to the router with `Host: <app>.localhost`.
    pub fn request_app(&self, app: &str, path: &str) -> Result<(u16, String)> {
        let mut stream = TcpStream::connect(&self.router_addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        write!(
            stream,
            "GET {path} HTTP/1.1\r\nHost: {app}.localhost\r\nConnection: close\r\n\r\n"
        )?;
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw)?;
        let text = String::from_utf8_lossy(&raw).to_string();
        let status: u16 = text
            .split_whitespace()
            .nth(1)
            .context("no status line")?
            .parse()?;
        let body = text
            .split_once("\r\n\r\n")
            .map(|(_, b)| b.to_string())
            .unwrap_or_default();
        Ok((status, body))
    }

    /// Waits until the app answers 200 with a body containing `needle`.
    pub fn wait_for_body(&self, app: &str, needle: &str, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        while Instant::now() < deadline {
            match self.request_app(app, "/") {
                Ok((200, body)) if body.contains(needle) => return Ok(()),
                Ok((status, body)) => last = format!("{status}: {body}"),
                Err(e) => last = e.to_string(),
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!("{app} did not answer with {needle:?} in {timeout:?}; last answer: {last}")
    }

    /// The jobs the local agent reports, asked of the agent directly with its own credential
    /// (`<agent state dir>/api-token`; a registered agent refuses the shared node token).
    pub fn agent_jobs(&self) -> Result<Vec<serde_json::Value>> {
        let nodes = self.get_json("/v1/nodes")?;
        let url = nodes[0]["url"].as_str().context("node url")?.to_string();
        let node_token = std::fs::read_to_string(self.data.path().join("agent/api-token"))?;
        let resp = self
            .client()
            .get(format!("{url}/v1/jobs"))
            .bearer_auth(node_token.trim())
            .send()?;
        Ok(serde_json::from_str::<Vec<serde_json::Value>>(
            &resp.text()?,
        )?)
    }
}

/// Runs `cmd` to its end, or kills it after `limit` (its output so far is kept).
pub fn output_within(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {cmd:?}: {e}"));
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut buf);
            }
            buf
        })
    };
    let out = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let err = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    Output {
        status,
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    }
}

/// One answer of the API (or of any HTTP route of the controller): status, headers, body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Answer {
    /// The body as JSON (`Null` when it is not JSON).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The stable code of an `ErrorBody` answer (`not_found`, `forbidden`, …), else "".
    pub fn code(&self) -> String {
        self.json()["error"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// The message of an `ErrorBody` answer, else the body as text.
    pub fn message(&self) -> String {
        match self.json()["error"]["message"].as_str() {
            Some(m) => m.to_string(),
            None => self.body.clone(),
        }
    }
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut body: String = self.body.chars().take(300).collect();
        if body.len() < self.body.len() {
            body.push('…');
        }
        write!(f, "{} {}", self.status, body)
    }
}

/// A user of a running paas with a password and an API token, made by the admin.
#[derive(Debug, Clone)]
pub struct Member {
    pub name: String,
    pub password: String,
    pub token: String,
}

impl Paas {
    /// One request to the controller's port with `token` as the bearer (none: no
    /// credentials) and `body` as JSON.
    pub fn call(
        &self,
        token: Option<&str>,
        method: &str,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Answer {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("an HTTP method");
        // Long enough for an image deploy, which answers once the release serves or not.
        let client = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap();
        let mut req = client.request(method, format!("{}{}", self.api, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req
            .send()
            .unwrap_or_else(|e| panic!("{path}: no answer from the controller: {e}"));
        Answer {
            status: resp.status().as_u16(),
            headers: resp.headers().clone(),
            body: resp.text().unwrap_or_default(),
        }
    }

    /// Runs the `paas` CLI with `token` (and this controller's URL) in the environment, a
    /// HOME of its own and stdin closed; killed after 180 s (then the exit code is none).
    pub fn cli_as(&self, token: &str, args: &[&str]) -> Output {
        self.cli_within(token, args, Duration::from_secs(180))
    }

    /// Waits until add-on `name` of `app` is `available` (as the admin) and returns it;
    /// panics with its last state and the controller's log after 600 s, a bound for a
    /// loaded machine: the first start pulls and unpacks the service image (2.5 min seen
    /// with the load average at 15).
    pub fn wait_addon_available(&self, app: &str, name: &str) -> serde_json::Value {
        let end = Instant::now() + Duration::from_secs(600);
        loop {
            let a = self.call(
                Some(&self.token),
                "GET",
                &format!("/v1/apps/{app}/addons/{name}"),
                None,
            );
            let addon = a.json();
            if addon["state"] == "available" {
                return addon;
            }
            assert!(
                Instant::now() < end,
                "the add-on {name} of {app} never became available: {a}\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// [`Paas::cli_as`] killed after `limit` instead (a command that waits for an image
    /// pull, such as `addons:create --wait`, on a loaded machine).
    pub fn cli_within(&self, token: &str, args: &[&str], limit: Duration) -> Output {
        let home = self.data.path().join("cli-home");
        std::fs::create_dir_all(&home).unwrap();
        let mut cmd = Command::new(&bins().cli);
        cmd.args(args)
            .env("PAAS_URL", &self.api)
            .env("PAAS_TOKEN", token)
            .env("HOME", &home)
            .env_remove("XDG_CONFIG_HOME")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .stdin(Stdio::null());
        output_within(cmd, limit)
    }

    /// The admin makes a member `name` with the CLI (`users:add --password-stdin`, then
    /// `tokens:create --user`).
    pub fn add_member(&self, name: &str) -> Member {
        let password = format!("{name}-password-{}", std::process::id());
        let home = self.data.path().join("cli-home");
        std::fs::create_dir_all(&home).unwrap();
        let mut child = Command::new(&bins().cli)
            .args(["users:add", name, "--role", "member", "--password-stdin"])
            .env("PAAS_URL", &self.api)
            .env("PAAS_TOKEN", &self.token)
            .env("HOME", &home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run paas users:add");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(format!("{password}\n").as_bytes())
            .unwrap();
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "paas users:add {name}: {out:?}");
        let out = self.cli_as(
            &self.token,
            &["tokens:create", "--user", name, "--name", "e2e"],
        );
        assert!(
            out.status.success(),
            "paas tokens:create --user {name}: {out:?}"
        );
        let token = String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        assert!(token.starts_with("paas_"), "tokens:create printed {out:?}");
        Member {
            name: name.to_string(),
            password,
            token,
        }
    }
}

impl Drop for Paas {
    fn drop(&mut self) {
        // SAFETY: kill(2) on our own child's pid; the worst case is ESRCH.
        unsafe {
            libc::kill(self.child.id() as i32, libc::SIGTERM);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        // An agent a killed controller left running (and no restart adopted).
        for pid in self.agent_processes() {
            // SAFETY: kill(2) on a pid we just read from /proc as this instance's agent;
            // the worst case is ESRCH.
            unsafe {
                libc::kill(pid, libc::SIGTERM);
            }
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.agent_processes().is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        // The router process outlives the controller by design; tests must not leave it.
        if let Some(pid) = self.router_pid() {
            // SAFETY: kill(2) on the pid the router wrote for itself in this test's data
            // dir, checked alive just now.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
            }
        }
        // The agent leaves containers running on exit by design; tests must not.
        let out = Command::new(&bins().agent)
            .arg("cleanup")
            .arg("--state-dir")
            .arg(self.data.path().join("agent"))
            .args(["--prefix", &self.prefix])
            .output();
        if let Ok(out) = out {
            if !out.status.success() {
                eprintln!(
                    "paas-agent cleanup failed: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
            }
        }
        if std::thread::panicking() {
            eprintln!("---- controller log ----\n{}", self.log());
        }
    }
}
