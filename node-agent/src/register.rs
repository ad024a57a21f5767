//! `--subnet auto`: the agent asks the controller for its container subnet
//! (`POST {controller}/v1/nodes/{name}/subnet`, node token) before it sets up the bridge,
//! and keeps the answer in `<state-dir>/subnet` so it can start while the controller is
//! away. The controller hands each node a /24 of its `--cluster-cidr` and always the same
//! one to the same node.

use std::path::Path;
use std::time::Duration;

use crate::config::ServeArgs;

/// Why the subnet could not be found.
#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
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
        let _ = std::fs::create_dir_all(dir);
    }
    if let Err(e) = std::fs::write(path, format!("{subnet}\n")) {
        tracing::warn!("saving the subnet in {}: {e}", path.display());
    }
}
