//! The controller's client of the node agent API (`/v1/jobs…` on each agent). Used by the
//! build (one build job per push) and the scheduler (app jobs).
//!
//! Each agent accepts only its own credential once registered (see the agent's
//! `register` module): the client presents the credential the node's heartbeats carried,
//! found by the node's URL (remembered from this controller's heartbeats, else read from the
//! store, where every controller of a shared database finds it). A node that never sent one
//! (an older or fake agent) gets the shared node token. On a 401 the client forgets what it
//! remembered, reads the store again and retries once with a changed credential (an agent
//! whose state dir was wiped made a new one, and another controller stored it).

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use paas_api::{ErrorBody, JobSpec, JobStatus, StopJob};
use reqwest::StatusCode;

/// A failed call to an agent.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error("{method} {url}: the node agent did not answer: {source}")]
    Http {
        method: &'static str,
        url: String,
        #[source]
        source: reqwest::Error,
    },
    #[error("{method} {url}: the node agent answered {status}: {message}")]
    Status {
        method: &'static str,
        url: String,
        status: StatusCode,
        message: String,
    },
}

impl AgentError {
    /// The agent's own message (for a user), or the whole error when there is none.
    pub fn user_message(&self) -> String {
        match self {
            AgentError::Status { message, .. } if !message.is_empty() => message.clone(),
            e => e.to_string(),
        }
    }

    pub fn is_not_found(&self) -> bool {
        matches!(self, AgentError::Status { status, .. } if *status == StatusCode::NOT_FOUND)
    }

    pub fn is_conflict(&self) -> bool {
        matches!(self, AgentError::Status { status, .. } if *status == StatusCode::CONFLICT)
    }
}

/// Talks to agents with their own credentials. Cheap to clone.
#[derive(Clone)]
pub struct AgentClient {
    http: reqwest::Client,
    /// The shared node token, for agents that never sent a credential.
    token: String,
    /// Node base URL → the agent's credential.
    known: Arc<RwLock<HashMap<String, String>>>,
    store: Option<crate::store::Store>,
}

impl std::fmt::Debug for AgentClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentClient").finish_non_exhaustive()
    }
}

/// How long a job start may take (it includes pulling the image and unpacking inputs).
const START_TIMEOUT: Duration = Duration::from_secs(600);
/// Calls that answer from memory.
const QUICK_TIMEOUT: Duration = Duration::from_secs(10);
/// A stop waits for the grace period and the exit.
const STOP_TIMEOUT: Duration = Duration::from_secs(60);

impl AgentClient {
    pub fn new(token: String) -> AgentClient {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .no_proxy()
            .build()
            .unwrap_or_default();
        AgentClient {
            http,
            token,
            known: Arc::default(),
            store: None,
        }
    }

    /// Looks agents' credentials up in `store` (those heartbeats sent to other controllers).
    pub fn with_store(mut self, store: crate::store::Store) -> AgentClient {
        self.store = Some(store);
        self
    }

    /// Records the credential of the agent at `node` (from its heartbeat).
    pub fn remember(&self, node: &str, credential: &str) {
        self.known
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(node.to_string(), credential.to_string());
    }

    /// Forgets the credential remembered for `node` (a removed node).
    pub fn forget(&self, node: &str) {
        self.known
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(node);
    }

    /// True when `credential` is what this client presents to `node` already.
    pub fn knows(&self, node: &str, credential: &str) -> bool {
        self.known
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(node)
            .is_some_and(|t| t == credential)
    }

    /// The credential to present to the agent at `node`.
    async fn credential(&self, node: &str) -> String {
        if let Some(t) = self
            .known
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .get(node)
        {
            return t.clone();
        }
        if let Some(store) = &self.store {
            match store.agent_token_for_url(node).await {
                Ok(Some(t)) => {
                    self.remember(node, &t);
                    return t;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(%node, "looking up the agent's credential: {e}"),
            }
        }
        self.token.clone()
    }

    /// After a 401: forgets the remembered credential and returns the store's one if it
    /// differs from `used`.
    async fn refreshed_credential(&self, node: &str, used: &str) -> Option<String> {
        self.known
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .remove(node);
        let fresh = self.credential(node).await;
        (fresh != used).then_some(fresh)
    }

    /// The node base URL of a request URL (`http://host:port` of `http://host:port/v1/…`).
    fn node_of(url: &str) -> &str {
        match url.find("/v1/") {
            Some(i) => &url[..i],
            None => url,
        }
    }

    async fn send(
        &self,
        method: &'static str,
        url: String,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, AgentError> {
        let node = Self::node_of(&url);
        let credential = self.credential(node).await;
        let retry = req.try_clone();
        let send = |req: reqwest::RequestBuilder, credential: &str| {
            let url = url.clone();
            let fut = req.bearer_auth(credential).send();
            async move {
                fut.await.map_err(|source| AgentError::Http {
                    method,
                    url,
                    source,
                })
            }
        };
        let mut resp = send(req, &credential).await?;
        if resp.status() == StatusCode::UNAUTHORIZED {
            if let (Some(retry), Some(fresh)) =
                (retry, self.refreshed_credential(node, &credential).await)
            {
                resp = send(retry, &fresh).await?;
            }
        }
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let text = resp.text().await.unwrap_or_default();
        let message = serde_json::from_str::<ErrorBody>(&text)
            .map(|b| b.error.message)
            .unwrap_or(text);
        Err(AgentError::Status {
            method,
            url,
            status,
            message,
        })
    }

    async fn json<T: serde::de::DeserializeOwned>(
        method: &'static str,
        url: String,
        resp: reqwest::Response,
    ) -> Result<T, AgentError> {
        resp.json().await.map_err(|source| AgentError::Http {
            method,
            url,
            source,
        })
    }

    /// `POST /v1/jobs`: returns once the process started.
    pub async fn start_job(&self, node: &str, spec: &JobSpec) -> Result<JobStatus, AgentError> {
        let url = format!("{node}/v1/jobs");
        let req = self.http.post(&url).json(spec).timeout(START_TIMEOUT);
        let resp = self.send("POST", url.clone(), req).await?;
        Self::json("POST", url, resp).await
    }

    /// `GET /v1/jobs`
    pub async fn list_jobs(&self, node: &str) -> Result<Vec<JobStatus>, AgentError> {
        let url = format!("{node}/v1/jobs");
        let req = self.http.get(&url).timeout(QUICK_TIMEOUT);
        let resp = self.send("GET", url.clone(), req).await?;
        Self::json("GET", url, resp).await
    }

    /// `GET /v1/jobs/{id}`
    pub async fn job(&self, node: &str, id: &str) -> Result<JobStatus, AgentError> {
        let url = format!("{node}/v1/jobs/{id}");
        let req = self.http.get(&url).timeout(QUICK_TIMEOUT);
        let resp = self.send("GET", url.clone(), req).await?;
        Self::json("GET", url, resp).await
    }

    /// `GET /v1/jobs/{id}/logs?follow=true`: the response streams the job's output until
    /// the job is final.
    pub async fn follow_logs(&self, node: &str, id: &str) -> Result<reqwest::Response, AgentError> {
        let url = format!("{node}/v1/jobs/{id}/logs?follow=true");
        let req = self.http.get(&url);
        self.send("GET", url, req).await
    }

    /// `GET /v1/jobs/{id}/logs?follow=false`: the job's output so far.
    pub async fn logs(&self, node: &str, id: &str) -> Result<String, AgentError> {
        let url = format!("{node}/v1/jobs/{id}/logs?follow=false");
        let req = self.http.get(&url).timeout(QUICK_TIMEOUT);
        let resp = self.send("GET", url.clone(), req).await?;
        resp.text().await.map_err(|source| AgentError::Http {
            method: "GET",
            url,
            source,
        })
    }

    /// `GET /v1/jobs/{id}/logs?timestamps=true&lines=N`: the job's last `lines` records,
    /// `<timestamp> <stdout|stderr> <text>` each, as its agent captured them.
    pub async fn log_records(
        &self,
        node: &str,
        id: &str,
        lines: usize,
    ) -> Result<String, AgentError> {
        let url = format!("{node}/v1/jobs/{id}/logs?follow=false&timestamps=true&lines={lines}");
        let req = self.http.get(&url).timeout(QUICK_TIMEOUT);
        let resp = self.send("GET", url.clone(), req).await?;
        resp.text().await.map_err(|source| AgentError::Http {
            method: "GET",
            url,
            source,
        })
    }

    /// `GET /v1/jobs/{id}/logs?follow=true&timestamps=true[&since=TS]`: the job's records
    /// after `since` (all without it), then the new ones until the job is final.
    pub async fn follow_log_records(
        &self,
        node: &str,
        id: &str,
        since: Option<&str>,
    ) -> Result<reqwest::Response, AgentError> {
        let mut url = format!("{node}/v1/jobs/{id}/logs?follow=true&timestamps=true");
        if let Some(ts) = since {
            url.push_str("&since=");
            url.push_str(ts);
        }
        let req = self.http.get(&url);
        self.send("GET", url, req).await
    }

    /// `POST /v1/jobs/{id}/stop`: returns after the process exited.
    pub async fn stop_job(
        &self,
        node: &str,
        id: &str,
        grace_seconds: u64,
    ) -> Result<JobStatus, AgentError> {
        let url = format!("{node}/v1/jobs/{id}/stop");
        let body = StopJob {
            grace_seconds: Some(grace_seconds),
        };
        let req = self.http.post(&url).json(&body).timeout(STOP_TIMEOUT);
        let resp = self.send("POST", url.clone(), req).await?;
        Self::json("POST", url, resp).await
    }

    /// `DELETE /v1/jobs/{id}`; a job the agent does not know counts as deleted.
    pub async fn delete_job(&self, node: &str, id: &str) -> Result<(), AgentError> {
        let url = format!("{node}/v1/jobs/{id}");
        let req = self.http.delete(&url).timeout(STOP_TIMEOUT);
        match self.send("DELETE", url, req).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `POST /v1/volumes/{name}/size-limit`: the agent empties the volume when it holds
    /// more than `max_bytes`.
    pub async fn volume_size_limit(
        &self,
        node: &str,
        name: &str,
        max_bytes: u64,
    ) -> Result<paas_api::VolumeUsage, AgentError> {
        let url = format!("{node}/v1/volumes/{name}/size-limit");
        let body = paas_api::VolumeSizeLimit { max_bytes };
        let req = self.http.post(&url).json(&body).timeout(STOP_TIMEOUT);
        let resp = self.send("POST", url.clone(), req).await?;
        Self::json("POST", url, resp).await
    }

    /// `PUT /v1/volumes/{name}`: makes a sized volume (an app's persistent storage).
    pub async fn create_volume(
        &self,
        node: &str,
        name: &str,
        size_bytes: u64,
    ) -> Result<paas_api::SizedVolume, AgentError> {
        let url = format!("{node}/v1/volumes/{name}");
        let body = paas_api::CreateSizedVolume { size_bytes };
        let req = self.http.put(&url).json(&body).timeout(STOP_TIMEOUT);
        let resp = self.send("PUT", url.clone(), req).await?;
        Self::json("PUT", url, resp).await
    }

    /// `GET /v1/volumes/{name}`: a sized volume's size and use. A short timeout: a listing
    /// must not hang on a node that stopped answering but is not down yet.
    pub async fn volume(
        &self,
        node: &str,
        name: &str,
    ) -> Result<paas_api::SizedVolume, AgentError> {
        let url = format!("{node}/v1/volumes/{name}");
        let req = self.http.get(&url).timeout(Duration::from_secs(3));
        let resp = self.send("GET", url.clone(), req).await?;
        Self::json("GET", url, resp).await
    }

    /// `DELETE /v1/volumes/{name}`: true when the node had the volume, false when not.
    pub async fn delete_volume(&self, node: &str, name: &str) -> Result<bool, AgentError> {
        let url = format!("{node}/v1/volumes/{name}");
        let req = self.http.delete(&url).timeout(STOP_TIMEOUT);
        match self.send("DELETE", url, req).await {
            Ok(_) => Ok(true),
            Err(e) if e.is_not_found() => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// `POST /v1/jobs/{id}/exec` with `Upgrade: paas-exec`: the raw exec stream of
    /// `paas_api::exec` once the agent answered 101.
    pub async fn exec(&self, node: &str, id: &str) -> Result<reqwest::Upgraded, AgentError> {
        let url = format!("{node}/v1/jobs/{id}/exec");
        let resp = self
            .http
            .post(&url)
            .bearer_auth(self.credential(node).await)
            .header(reqwest::header::CONNECTION, "Upgrade")
            .header(reqwest::header::UPGRADE, paas_api::exec::UPGRADE)
            .send()
            .await
            .map_err(|source| AgentError::Http {
                method: "POST",
                url: url.clone(),
                source,
            })?;
        let status = resp.status();
        if status != StatusCode::SWITCHING_PROTOCOLS {
            let text = resp.text().await.unwrap_or_default();
            let message = serde_json::from_str::<ErrorBody>(&text)
                .map(|b| b.error.message)
                .unwrap_or(text);
            return Err(AgentError::Status {
                method: "POST",
                url,
                status,
                message,
            });
        }
        resp.upgrade().await.map_err(|source| AgentError::Http {
            method: "POST",
            url,
            source,
        })
    }
}

/// True for an agent credential as agents make them: `paasagent_<64 hex>`.
pub fn valid_agent_token(token: &str) -> bool {
    token
        .strip_prefix("paasagent_")
        .is_some_and(|h| h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_urls_and_credentials() {
        assert_eq!(
            AgentClient::node_of("http://10.0.0.1:7070/v1/jobs/x/logs?follow=true"),
            "http://10.0.0.1:7070"
        );
        assert_eq!(AgentClient::node_of("http://n"), "http://n");
        assert!(valid_agent_token(&format!("paasagent_{}", "ab".repeat(32))));
        assert!(!valid_agent_token(&format!(
            "paasagent_{}",
            "ab".repeat(31)
        )));
        assert!(!valid_agent_token(&format!(
            "paasagent_{}\r\nX: y",
            "ab".repeat(29)
        )));
        assert!(!valid_agent_token("paasnode_x"));
    }

    #[tokio::test]
    async fn remembered_credentials_win_over_the_shared_token() {
        let c = AgentClient::new("shared".into());
        assert_eq!(c.credential("http://a").await, "shared");
        c.remember("http://a", "own-a");
        assert!(c.knows("http://a", "own-a") && !c.knows("http://b", "own-a"));
        assert_eq!(c.credential("http://a").await, "own-a");
        assert_eq!(c.credential("http://b").await, "shared");
        // Without a store, a 401 falls back to the shared token once.
        assert_eq!(
            c.refreshed_credential("http://a", "own-a").await.as_deref(),
            Some("shared")
        );
        assert_eq!(c.refreshed_credential("http://b", "shared").await, None);
    }
}
