//! Health checks from the app's `app.json`, in Dokku's format:
//!
//! ```json
//! {"healthchecks": {"web": [{"type": "startup", "name": "web check", "path": "/health",
//!   "content": "ok", "attempts": 3, "timeout": 5, "wait": 2, "initialDelay": 0}]}}
//! ```
//!
//! paas honours the `web` process type's checks of type `startup` (the default type) that
//! have a `path`: an HTTP `GET` of `path` on the job's port must answer 2xx (with `content`
//! in the body when given) within `timeout` seconds. A new web job gets traffic only once
//! it passes; `attempts` failed tries, `wait` seconds apart (the first after
//! `initialDelay`), fail the deploy. Other types (`liveness`, `readiness`), `command`
//! checks and `port` are not supported yet and are reported as ignored.

use std::time::Duration;

use serde::{Deserialize, Serialize};

const DEFAULT_ATTEMPTS: u32 = 5;
const DEFAULT_TIMEOUT: u64 = 5;
const DEFAULT_WAIT: u64 = 5;
/// The most of the response body read to look for `content`.
const MAX_BODY: usize = 1 << 20;

/// One HTTP startup check of the web process, as stored with the release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthCheck {
    #[serde(default)]
    pub name: String,
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    pub attempts: u32,
    /// Seconds per try.
    pub timeout: u64,
    /// Seconds between tries.
    pub wait: u64,
    /// Seconds before the first try.
    #[serde(default)]
    pub initial_delay: u64,
}

/// What is wrong with app.json.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AppJsonError {
    #[error("app.json is not valid JSON: {0}; fix it or remove it, and push again")]
    Json(String),
    #[error("app.json healthchecks.web[{index}]: {why}")]
    Check { index: usize, why: String },
}

#[derive(Deserialize)]
struct RawCheck {
    #[serde(rename = "type")]
    kind: Option<String>,
    name: Option<String>,
    path: Option<String>,
    content: Option<String>,
    attempts: Option<u32>,
    timeout: Option<u64>,
    wait: Option<u64>,
    #[serde(rename = "initialDelay")]
    initial_delay: Option<u64>,
}

/// The web startup check of `app.json` (the first one with a path), plus notes about the
/// checks that are ignored, to show in the push output.
pub fn parse(text: &str) -> Result<(Option<HealthCheck>, Vec<String>), AppJsonError> {
    let doc: serde_json::Value =
        serde_json::from_str(text).map_err(|e| AppJsonError::Json(e.to_string()))?;
    let mut notes = Vec::new();
    let Some(web) = doc.get("healthchecks").and_then(|h| h.get("web")) else {
        return Ok((None, notes));
    };
    let list = web.as_array().ok_or(AppJsonError::Check {
        index: 0,
        why: "healthchecks.web must be a list of checks".into(),
    })?;
    let mut found = None;
    for (index, raw) in list.iter().enumerate() {
        let raw: RawCheck =
            serde_json::from_value(raw.clone()).map_err(|e| AppJsonError::Check {
                index,
                why: e.to_string(),
            })?;
        let kind = raw.kind.as_deref().unwrap_or("startup");
        let name = raw.name.clone().unwrap_or_else(|| format!("check {index}"));
        if kind != "startup" {
            notes.push(format!(
                "{name}: type {kind:?} is not supported yet, ignored"
            ));
            continue;
        }
        let Some(path) = raw.path else {
            notes.push(format!(
                "{name}: no path (only HTTP checks are supported), ignored"
            ));
            continue;
        };
        if !path.starts_with('/') || path.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(AppJsonError::Check {
                index,
                why: format!("path {path:?} must start with / and contain no spaces"),
            });
        }
        if found.is_some() {
            notes.push(format!(
                "{name}: only the first startup check is used, ignored"
            ));
            continue;
        }
        let attempts = raw.attempts.unwrap_or(DEFAULT_ATTEMPTS);
        let timeout = raw.timeout.unwrap_or(DEFAULT_TIMEOUT);
        if attempts == 0 || timeout == 0 || attempts > 1000 || timeout > 600 {
            return Err(AppJsonError::Check {
                index,
                why: "attempts must be 1-1000 and timeout 1-600 seconds".into(),
            });
        }
        found = Some(HealthCheck {
            name,
            path,
            content: raw.content.filter(|c| !c.is_empty()),
            attempts,
            timeout,
            wait: raw.wait.unwrap_or(DEFAULT_WAIT).min(600),
            initial_delay: raw.initial_delay.unwrap_or(0).min(600),
        });
    }
    Ok((found, notes))
}

/// One try of `check` against the job at `addr` (`ip:port`): `Err(why)` when it fails.
pub async fn probe(
    client: &reqwest::Client,
    addr: &str,
    check: &HealthCheck,
) -> Result<(), String> {
    let url = format!("http://{addr}{}", check.path);
    let attempt = async {
        let resp = client
            .get(&url)
            .send()
            .await
            .map_err(|e| format!("GET {} failed: {e}", check.path))?;
        let status = resp.status();
        if !status.is_success() {
            return Err(format!("GET {} answered {status}", check.path));
        }
        let Some(content) = &check.content else {
            return Ok(());
        };
        let mut body = Vec::new();
        let mut resp = resp;
        while let Some(chunk) = resp
            .chunk()
            .await
            .map_err(|e| format!("reading GET {}: {e}", check.path))?
        {
            body.extend_from_slice(&chunk);
            if body.len() >= MAX_BODY {
                break;
            }
        }
        if String::from_utf8_lossy(&body).contains(content.as_str()) {
            Ok(())
        } else {
            let start: String = String::from_utf8_lossy(&body).chars().take(60).collect();
            Err(format!(
                "GET {} did not contain {content:?} (got {start:?})",
                check.path
            ))
        }
    };
    match tokio::time::timeout(Duration::from_secs(check.timeout), attempt).await {
        Ok(result) => result,
        Err(_) => Err(format!(
            "GET {} took longer than {} s",
            check.path, check.timeout
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dokku_format_with_defaults_and_notes() {
        let (check, notes) = parse(
            r#"{"name": "x", "healthchecks": {"web": [
                {"type": "liveness", "path": "/l"},
                {"name": "up", "path": "/health", "content": "ok", "attempts": 3,
                 "timeout": 2, "wait": 1, "initialDelay": 4},
                {"path": "/second"},
                {"type": "startup", "uptime": 10}
            ], "worker": []}}"#,
        )
        .unwrap();
        let check = check.unwrap();
        assert_eq!(check.path, "/health");
        assert_eq!(check.content.as_deref(), Some("ok"));
        assert_eq!((check.attempts, check.timeout, check.wait), (3, 2, 1));
        assert_eq!(check.initial_delay, 4);
        assert_eq!(notes.len(), 3, "{notes:?}");

        let (check, _) = parse(r#"{"healthchecks": {"web": [{"path": "/"}]}}"#).unwrap();
        let check = check.unwrap();
        assert_eq!((check.attempts, check.timeout, check.wait), (5, 5, 5));
        assert_eq!(parse("{}").unwrap(), (None, vec![]));
    }

    #[test]
    fn rejects_bad_input() {
        assert!(matches!(parse("{"), Err(AppJsonError::Json(_))));
        assert!(parse(r#"{"healthchecks": {"web": {"path": "/"}}}"#).is_err());
        assert!(parse(r#"{"healthchecks": {"web": [{"path": "health"}]}}"#).is_err());
        assert!(parse(r#"{"healthchecks": {"web": [{"path": "/", "attempts": 0}]}}"#).is_err());
        assert!(parse(r#"{"healthchecks": {"web": [{"path": "/", "attempts": "x"}]}}"#).is_err());
    }

    #[tokio::test]
    async fn probe_checks_status_and_content() {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let mut buf = [0u8; 1024];
                let n = s.read(&mut buf).await.unwrap();
                let req = String::from_utf8_lossy(&buf[..n]).to_string();
                let (status, body) = if req.starts_with("GET /health ") {
                    ("200 OK", "all ok")
                } else {
                    ("404 Not Found", "no")
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            }
        });
        let client = reqwest::Client::new();
        let mut check = HealthCheck {
            name: "t".into(),
            path: "/health".into(),
            content: Some("ok".into()),
            attempts: 1,
            timeout: 5,
            wait: 1,
            initial_delay: 0,
        };
        probe(&client, &addr, &check).await.unwrap();
        check.content = Some("healthy".into());
        let e = probe(&client, &addr, &check).await.unwrap_err();
        assert!(e.contains("did not contain \"healthy\""), "{e}");
        check.path = "/nope".into();
        let e = probe(&client, &addr, &check).await.unwrap_err();
        assert!(e.contains("404"), "{e}");
    }
}
