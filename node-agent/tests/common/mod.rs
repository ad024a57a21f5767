//! Test helpers: the root check, unique host-global names, tarball builders, a fake OCI
//! registry (axum) that also serves input tarballs and accepts blob uploads, and an
//! in-process agent that is cleaned up (via `paas-agent cleanup`) on drop.
#![allow(dead_code)]

pub mod testbed;

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{header, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use paas_node_agent::config::{AgentConfig, PortRange, Subnet, UsernsRange};
use sha2::{Digest, Sha256};

/// True when the test may run as root; false (skip, with a note) when not root and not
/// in CI; panics in CI (CI=true) when not root, so CI never passes by skipping.
pub fn need_root(test: &str) -> bool {
    if nix::unistd::geteuid().is_root() {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{test} needs root and CI=true: run the tests as root");
    }
    eprintln!("skipping {test}: needs root");
    false
}

static INSTANCE: AtomicU32 = AtomicU32::new(0);

/// Host-global names unique to one test: prefix `na` + 4 hex, a /24 in 10.200.100-199 and
/// 100 host ports.
pub struct Names {
    pub prefix: String,
    pub subnet: Subnet,
    pub ports: PortRange,
    /// 16 uid ranges of 65536 from 2^31, disjoint from other tests' (and from the
    /// agent's default range).
    pub userns: UsernsRange,
}

pub fn unique_names() -> Names {
    let n = INSTANCE.fetch_add(1, Ordering::SeqCst);
    let pid = std::process::id();
    let slot = free_slot((pid * 7 + n * 13) % 100, 100, |s| {
        format!("10.200.{}.", 100 + s)
    });
    Names {
        prefix: format!("na{:04x}", (pid * 16 + n) % 0xffff),
        subnet: format!("10.200.{}.0/24", 100 + slot).parse().unwrap(),
        ports: PortRange {
            first: (40000 + slot * 100) as u16,
            last: (40000 + slot * 100 + 99) as u16,
        },
        userns: UsernsRange {
            first: (1 << 31) + ((pid * 16 + n) % 2047) * (1 << 20),
            count: 1 << 20,
        },
    }
}

/// The first slot from `start` (of `count`, wrapping) whose addresses no interface holds:
/// a bridge left by a killed test run would otherwise take its jobs' routes (the agent
/// refuses such a subnet).
pub fn free_slot(start: u32, count: u32, net: impl Fn(u32) -> String) -> u32 {
    let out = std::process::Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default();
    (0..count)
        .map(|i| (start + i) % count)
        .find(|s| !out.contains(&format!(" {}", net(*s))))
        .unwrap_or(start)
}

pub fn config(state_dir: &Path, token: &str, names: &Names) -> AgentConfig {
    AgentConfig {
        controller: None,
        token: token.to_string(),
        node_name: "test-node".to_string(),
        listen: "127.0.0.1:0".parse().unwrap(),
        state_dir: state_dir.to_path_buf(),
        prefix: names.prefix.clone(),
        subnet: names.subnet,
        port_range: names.ports,
        advertise_addr: "127.0.0.1".parse().unwrap(),
        cgroup_root: "/sys/fs/cgroup".into(),
        job_log_bytes: paas_node_agent::jobs::capture::DEFAULT_CAP_BYTES,
        layer_cache_bytes: None,
        job_ipv6: false,
        userns_range: names.userns,
        lock_wait: std::time::Duration::ZERO,
    }
}

pub fn sha256(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(data)))
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

/// A tar builder for crafted archives: raw header paths, so escapes can be written.
pub struct TarBuilder {
    out: Vec<u8>,
}

impl Default for TarBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl TarBuilder {
    pub fn new() -> Self {
        TarBuilder { out: Vec::new() }
    }

    fn header(kind: tar::EntryType, path: &str, mode: u32, size: u64) -> tar::Header {
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(kind);
        // Write the name bytes directly: `set_path` refuses `..` and absolute paths.
        let name = &mut h.as_old_mut().name;
        name.fill(0);
        name[..path.len()].copy_from_slice(path.as_bytes());
        h.set_mode(mode);
        h.set_size(size);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(1_700_000_000);
        h
    }

    fn push(&mut self, mut h: tar::Header, data: &[u8]) -> &mut Self {
        h.set_cksum();
        self.out.extend_from_slice(h.as_bytes());
        self.out.extend_from_slice(data);
        let pad = (512 - data.len() % 512) % 512;
        self.out.extend(std::iter::repeat_n(0u8, pad));
        self
    }

    pub fn dir(&mut self, path: &str) -> &mut Self {
        self.dir_mode(path, 0o755)
    }

    pub fn dir_mode(&mut self, path: &str, mode: u32) -> &mut Self {
        self.push(Self::header(tar::EntryType::Directory, path, mode, 0), b"")
    }

    pub fn file(&mut self, path: &str, data: &[u8], mode: u32) -> &mut Self {
        self.push(
            Self::header(tar::EntryType::Regular, path, mode, data.len() as u64),
            data,
        )
    }

    fn link(&mut self, kind: tar::EntryType, path: &str, target: &str) -> &mut Self {
        let mut h = Self::header(kind, path, 0o777, 0);
        let name = &mut h.as_old_mut().linkname;
        name.fill(0);
        name[..target.len()].copy_from_slice(target.as_bytes());
        self.push(h, b"")
    }

    pub fn symlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.link(tar::EntryType::Symlink, path, target)
    }

    pub fn hardlink(&mut self, path: &str, target: &str) -> &mut Self {
        self.link(tar::EntryType::Link, path, target)
    }

    pub fn char_device(&mut self, path: &str) -> &mut Self {
        let mut h = Self::header(tar::EntryType::Char, path, 0o666, 0);
        h.set_device_major(1).unwrap();
        h.set_device_minor(3).unwrap();
        self.push(h, b"")
    }

    /// Any entry type, for the kinds the other helpers do not cover (FIFOs, ...).
    pub fn entry(&mut self, kind: tar::EntryType, path: &str, data: &[u8], mode: u32) -> &mut Self {
        self.push(Self::header(kind, path, mode, data.len() as u64), data)
    }

    pub fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.out);
        out.extend(std::iter::repeat_n(0u8, 1024));
        out
    }
}

/// A busybox root filesystem as a tar: bin/busybox plus applet symlinks, /tmp, /etc.
pub fn busybox_rootfs_tar() -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox").expect("read /bin/busybox (busybox-static)");
    let mut t = TarBuilder::new();
    t.dir("bin/")
        .dir("tmp/")
        .dir("etc/")
        .dir("proc/")
        .dir("dev/")
        .dir("sys/");
    t.file("bin/busybox", &busybox, 0o755);
    for applet in [
        "sh", "httpd", "echo", "cat", "sleep", "ls", "mkdir", "kill", "wget", "nc", "true",
        "false", "env", "id", "hostname", "head", "tr", "dd",
    ] {
        t.symlink(&format!("bin/{applet}"), "busybox");
    }
    t.file("etc/passwd", b"root:x:0:0:root:/:/bin/sh\n", 0o644);
    t.finish()
}

/// What the fake registry has stored and received.
#[derive(Default)]
pub struct RegistryState {
    pub token: String,
    /// `(repo, reference)` → manifest bytes.
    pub manifests: HashMap<(String, String), Vec<u8>>,
    pub blobs: HashMap<String, Vec<u8>>,
    /// Input tarballs at `/inputs/<name>`.
    pub inputs: HashMap<String, Vec<u8>>,
    /// Blob uploads: `(repo, digest, body)`.
    pub uploads: Vec<(String, String, Vec<u8>)>,
    /// Requests for blobs, by digest (to see the cache at work).
    pub blob_gets: HashMap<String, u32>,
    /// Heartbeats received at `/v1/nodes/heartbeat`.
    pub heartbeats: Vec<serde_json::Value>,
    /// The `paas-peer-nodes` header of the heartbeat answer (none: no header).
    pub peer_nodes: Option<String>,
}

/// A fake OCI registry on a loopback port.
pub struct FakeRegistry {
    pub url: String,
    pub state: Arc<Mutex<RegistryState>>,
}

impl FakeRegistry {
    /// Starts the registry on a loopback port; requests must carry `Bearer <token>`.
    pub async fn start(token: &str) -> FakeRegistry {
        FakeRegistry::start_on(token, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// [`FakeRegistry::start`] on `addr` (port 0: any free port).
    pub async fn start_on(token: &str, addr: SocketAddr) -> FakeRegistry {
        let state = Arc::new(Mutex::new(RegistryState {
            token: token.to_string(),
            ..Default::default()
        }));
        let app = axum::Router::new()
            .fallback(registry_handler)
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr: SocketAddr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeRegistry {
            url: format!("http://{addr}"),
            state,
        }
    }

    /// Stores an image `repo:tag` with one gzip layer made of `layer_tar` and a config.
    pub fn add_image(&self, repo: &str, tag: &str, layer_tar: &[u8], config: serde_json::Value) {
        let layer = gzip(layer_tar);
        let layer_digest = sha256(&layer);
        let mut config = config;
        config["rootfs"] = serde_json::json!({"type": "layers", "diff_ids": [sha256(layer_tar)]});
        let config_bytes = serde_json::to_vec(&config).unwrap();
        let config_digest = sha256(&config_bytes);
        let manifest = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_digest, "size": config_bytes.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": layer_digest, "size": layer.len()}],
        });
        let manifest_bytes = serde_json::to_vec(&manifest).unwrap();
        let mut s = self.state.lock().unwrap();
        s.blobs.insert(layer_digest, layer);
        s.blobs.insert(config_digest, config_bytes);
        s.manifests
            .insert((repo.into(), tag.into()), manifest_bytes.clone());
        s.manifests
            .insert((repo.into(), sha256(&manifest_bytes)), manifest_bytes);
    }

    /// Serves `tarball` at `{url}/inputs/<name>`; returns that URL.
    pub fn add_input(&self, name: &str, tarball: Vec<u8>) -> String {
        self.state
            .lock()
            .unwrap()
            .inputs
            .insert(name.to_string(), tarball);
        format!("{}/inputs/{name}", self.url)
    }
}

async fn registry_handler(
    State(state): State<Arc<Mutex<RegistryState>>>,
    req: Request,
) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap();
    let mut s = state.lock().unwrap();
    let auth = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if auth != format!("Bearer {}", s.token) {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let path = parts.uri.path().to_string();
    if path == "/v1/nodes/heartbeat" && parts.method == Method::POST {
        s.heartbeats.push(serde_json::from_slice(&body).unwrap());
        let mut resp = StatusCode::NO_CONTENT.into_response();
        if let Some(peers) = &s.peer_nodes {
            resp.headers_mut()
                .insert(paas_api::PEER_NODES, peers.parse().unwrap());
        }
        return resp;
    }
    if let Some(name) = path.strip_prefix("/inputs/") {
        return match s.inputs.get(name) {
            Some(t) => t.clone().into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        };
    }
    let Some(rest) = path.strip_prefix("/v2/") else {
        return StatusCode::NOT_FOUND.into_response();
    };
    if parts.method == Method::POST {
        if let Some(repo) = rest.strip_suffix("/blobs/uploads/") {
            let digest = parts
                .uri
                .query()
                .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("digest=")))
                .unwrap_or("")
                .to_string();
            if sha256(&body) != digest {
                return (StatusCode::BAD_REQUEST, "digest mismatch").into_response();
            }
            s.uploads
                .push((repo.to_string(), digest.clone(), body.to_vec()));
            s.blobs.insert(digest, body.to_vec());
            return StatusCode::CREATED.into_response();
        }
        return StatusCode::NOT_FOUND.into_response();
    }
    if let Some((repo, reference)) = rest.split_once("/manifests/") {
        return match s.manifests.get(&(repo.to_string(), reference.to_string())) {
            Some(m) => (
                [(
                    header::CONTENT_TYPE,
                    "application/vnd.oci.image.manifest.v1+json",
                )],
                m.clone(),
            )
                .into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        };
    }
    if let Some((_repo, digest)) = rest.split_once("/blobs/") {
        *s.blob_gets.entry(digest.to_string()).or_default() += 1;
        return match s.blobs.get(digest) {
            Some(b) => b.clone().into_response(),
            None => StatusCode::NOT_FOUND.into_response(),
        };
    }
    StatusCode::NOT_FOUND.into_response()
}

/// The path of the built `paas-agent` binary.
pub fn agent_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_paas-agent"))
}

/// Runs `paas-agent cleanup` for a state dir and prefix; panics on failure unless the
/// thread is already panicking.
pub fn cleanup(state_dir: &Path, prefix: &str) {
    let out = std::process::Command::new(agent_bin())
        .arg("cleanup")
        .arg("--state-dir")
        .arg(state_dir)
        .args(["--prefix", prefix])
        .output()
        .expect("run paas-agent cleanup");
    if !out.status.success() {
        let msg = format!(
            "paas-agent cleanup failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        if std::thread::panicking() {
            eprintln!("{msg}");
        } else {
            panic!("{msg}");
        }
    }
}
