//! Registration with the controller.
//!
//! * `--subnet auto`: the agent asks the controller for its container subnet
//!   (`POST {controller}/v1/nodes/{name}/subnet`, node token) before it sets up the bridge,
//!   and keeps the answer in `<state-dir>/subnet` so it can start while the controller is
//!   away. The controller hands each node a /24 of its `--cluster-cidr` and always the same
//!   one to the same node.
//! * The agent's own API credential ([`AgentCredential`]): a random `paasagent_<64 hex>`
//!   made at the first start and kept in `<state-dir>/api-token` (mode 0600). Every
//!   heartbeat carries it; once a controller answers that it stored it (header
//!   [`paas_api::AGENT_TOKEN_STORED`]) the agent is *registered* (`<state-dir>/registered`)
//!   and its API accepts only that credential: the shared bootstrap token (`--token`) and
//!   every other node's credential get 401. Before that (or with no controller at all) the
//!   API also accepts `--token`.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::config::ServeArgs;

/// Why the subnet could not be found, or the credential not be kept.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error(
        "the agent credential {path}: {source} (the state dir must be writable by the agent; \
         delete a damaged file to make a new credential, the controller learns it from the \
         next heartbeat)"
    )]
    Credential {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("--subnet auto needs --controller (the controller allocates node subnets)")]
    NoController,
    #[error("--subnet auto needs --token (or PAAS_NODE_TOKEN)")]
    NoToken,
    #[error(
        "--subnet auto: the controller at {url} did not give a subnet ({why}), and none is \
         saved in {saved}: start the controller, or pass --subnet CIDR"
    )]
    Unavailable {
        url: String,
        why: String,
        saved: String,
    },
}

/// Replaces `--subnet auto` with the node's subnet; other values are left as they are.
pub async fn resolve_subnet(args: &mut ServeArgs) -> Result<(), RegisterError> {
    if args.subnet != "auto" {
        return Ok(());
    }
    let controller = args.controller.clone().ok_or(RegisterError::NoController)?;
    let token = args
        .token
        .clone()
        .filter(|t| !t.is_empty())
        .ok_or(RegisterError::NoToken)?;
    let name = args
        .node_name
        .clone()
        .unwrap_or_else(crate::config::host_name);
    let saved = args.state_dir.join("subnet");
    let url = format!(
        "{}/v1/nodes/{name}/subnet",
        controller.trim_end_matches('/')
    );
    let mut why = String::new();
    for attempt in 0..5 {
        if attempt > 0 {
            tokio::time::sleep(Duration::from_secs(2)).await;
        }
        match ask(&url, &token).await {
            Ok(subnet) => {
                save(&saved, &subnet);
                tracing::info!(%subnet, "subnet from the controller");
                args.subnet = subnet;
                return Ok(());
            }
            Err(e) => why = e,
        }
    }
    match std::fs::read_to_string(&saved) {
        Ok(s) if !s.trim().is_empty() => {
            tracing::warn!("the controller did not answer ({why}); using the saved subnet");
            args.subnet = s.trim().to_string();
            Ok(())
        }
        _ => Err(RegisterError::Unavailable {
            url,
            why,
            saved: saved.display().to_string(),
        }),
    }
}

async fn ask(url: &str, token: &str) -> Result<String, String> {
    let resp = reqwest::Client::builder()
        .no_proxy()
        .timeout(Duration::from_secs(5))
        .build()
        .map_err(|e| e.to_string())?
        .post(url)
        .bearer_auth(token)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let status = resp.status();
    let body: serde_json::Value = resp.json().await.map_err(|e| e.to_string())?;
    if !status.is_success() {
        return Err(format!("{status}: {}", body["error"]["message"]));
    }
    body["subnet"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| format!("no subnet in the answer {body}"))
}

fn save(path: &Path, subnet: &str) {
    if let Some(dir) = path.parent() {
        let _ = crate::util::create_private_dir(dir);
    }
    if let Err(e) = write_private(path, &format!("{subnet}\n")) {
        tracing::warn!("saving the subnet in {}: {e}", path.display());
    }
}

/// The prefix of agent API credentials.
pub const AGENT_TOKEN_PREFIX: &str = "paasagent_";

/// The agent's own API credential and whether a controller has stored it.
pub struct AgentCredential {
    token: String,
    registered: AtomicBool,
    marker: PathBuf,
}

impl std::fmt::Debug for AgentCredential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentCredential")
            .field("registered", &self.is_registered())
            .finish_non_exhaustive()
    }
}

impl AgentCredential {
    /// Loads `<state_dir>/api-token`, or makes and saves a new one (0600).
    pub fn load_or_create(state_dir: &Path) -> Result<AgentCredential, RegisterError> {
        let path = state_dir.join("api-token");
        let err = |source| RegisterError::Credential {
            path: path.clone(),
            source,
        };
        let token = match std::fs::read_to_string(&path) {
            Ok(s) if valid_token(s.trim()) => s.trim().to_string(),
            Ok(_) => {
                return Err(err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    format!("not a {AGENT_TOKEN_PREFIX}<64 hex> credential"),
                )))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let token = new_token().map_err(err)?;
                write_private(&path, &token).map_err(err)?;
                // A new credential is unknown to every controller: not registered.
                let _ = std::fs::remove_file(state_dir.join("registered"));
                token
            }
            Err(e) => return Err(err(e)),
        };
        let marker = state_dir.join("registered");
        Ok(AgentCredential {
            token,
            registered: AtomicBool::new(marker.exists()),
            marker,
        })
    }

    /// The credential itself (sent in heartbeats).
    pub fn token(&self) -> &str {
        &self.token
    }

    /// True once a controller stored the credential (kept across restarts).
    pub fn is_registered(&self) -> bool {
        self.registered.load(Ordering::SeqCst)
    }

    /// Records that a controller stored the credential: from now on the API refuses the
    /// bootstrap token.
    pub fn mark_registered(&self) {
        if self.registered.swap(true, Ordering::SeqCst) {
            return;
        }
        if let Err(e) = write_private(&self.marker, "1") {
            tracing::warn!("keeping {}: {e}", self.marker.display());
        }
        tracing::info!("registered: the API now accepts only this node's own credential");
    }

    /// Whether `presented` may call the API: the own credential always, the bootstrap
    /// token only before registration. Both compared in constant time.
    pub fn accepts(&self, presented: &str, bootstrap: &str) -> bool {
        let own = crate::util::constant_time_eq(presented.as_bytes(), self.token.as_bytes());
        let boot = !bootstrap.is_empty()
            && crate::util::constant_time_eq(presented.as_bytes(), bootstrap.as_bytes());
        own || (boot && !self.is_registered())
    }
}

fn valid_token(s: &str) -> bool {
    s.strip_prefix(AGENT_TOKEN_PREFIX)
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn new_token() -> std::io::Result<String> {
    let mut buf = [0u8; 32];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut buf)?;
    Ok(format!("{AGENT_TOKEN_PREFIX}{}", hex::encode(buf)))
}

/// Writes a file readable only by its owner (atomically).
fn write_private(path: &Path, data: &str) -> std::io::Result<()> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let tmp = path.with_extension(format!("tmp-{}", crate::util::unique()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(data.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credential_persists_and_registration_refuses_the_bootstrap_token() {
        let dir = tempfile::tempdir().unwrap();
        let c = AgentCredential::load_or_create(dir.path()).unwrap();
        assert!(valid_token(c.token()));
        let mode = std::fs::metadata(dir.path().join("api-token")).unwrap();
        assert_eq!(
            std::os::unix::fs::PermissionsExt::mode(&mode.permissions()) & 0o777,
            0o600
        );
        assert!(c.accepts(c.token(), "boot"));
        assert!(c.accepts("boot", "boot"));
        assert!(!c.accepts("", ""));
        assert!(!c.accepts("other", "boot"));
        c.mark_registered();
        assert!(!c.accepts("boot", "boot"));
        assert!(c.accepts(c.token(), "boot"));
        let again = AgentCredential::load_or_create(dir.path()).unwrap();
        assert_eq!(again.token(), c.token());
        assert!(again.is_registered());
        assert!(!again.accepts("boot", "boot"));
        std::fs::write(dir.path().join("api-token"), "garbage").unwrap();
        assert!(AgentCredential::load_or_create(dir.path()).is_err());
        std::fs::remove_file(dir.path().join("api-token")).unwrap();
        let fresh = AgentCredential::load_or_create(dir.path()).unwrap();
        assert_ne!(fresh.token(), c.token());
        assert!(!fresh.is_registered());
    }
}
