//! The controller's client of the node agent API (`/v1/jobs…` on each agent, bearer node
//! token). Used by the build (one build job per push) and the scheduler (app jobs).

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
}

/// Talks to agents with the node token. Cheap to clone.
#[derive(Debug, Clone)]
pub struct AgentClient {
    http: reqwest::Client,
    token: String,
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
        AgentClient { http, token }
    }

    async fn send(
        &self,
        method: &'static str,
        url: String,
        req: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, AgentError> {
        let resp = req
            .bearer_auth(&self.token)
            .send()
            .await
            .map_err(|source| AgentError::Http {
                method,
                url: url.clone(),
                source,
            })?;
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

    /// `POST /v1/jobs/{id}/exec` with `Upgrade: paas-exec`: the raw exec stream of
    /// `paas_api::exec` once the agent answered 101.
    pub async fn exec(&self, node: &str, id: &str) -> Result<reqwest::Upgraded, AgentError> {
        let url = format!("{node}/v1/jobs/{id}/exec");
        let resp = self
            .http
            .post(&url)
            .bearer_auth(&self.token)
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
