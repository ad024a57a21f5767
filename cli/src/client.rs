//! The HTTP client for the controller's REST API (`/v1/…`, bearer token), and the mapping
//! of every failure to a [`ClientError`] that says what to do.

use std::time::Duration;

use reqwest::blocking::{RequestBuilder, Response};
use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use serde::Serialize;

/// Why a call to the controller failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{url:?} is not a usable controller URL ({reason}); use one like {example}",
            example = crate::config::DEFAULT_URL)]
    BadUrl { url: String, reason: String },
    #[error(
        "could not reach the controller at {url} ({reason}). Is it running? Set its URL with \
         --url URL, the PAAS_URL environment variable, or `paas login --url URL --token TOKEN`"
    )]
    Unreachable { url: String, reason: String },
    #[error(
        "not logged in to the controller at {url}: run `paas login --url {url} --token TOKEN` \
         or set PAAS_TOKEN"
    )]
    NotLoggedIn { url: String },
    #[error(
        "the controller at {url} refused the token ({message}): run `paas login` again or set \
         PAAS_TOKEN"
    )]
    TokenRefused { url: String, message: String },
    /// The controller answered with an error of its own; its message is shown as is.
    #[error("{message}")]
    Api {
        status: u16,
        code: String,
        message: String,
    },
    #[error("unexpected answer from the controller at {url} (HTTP {status}): {detail}")]
    Unexpected {
        url: String,
        status: u16,
        detail: String,
    },
}

impl ClientError {
    /// 1 API or usage error, 2 controller unreachable, 3 not logged in, 4 not found.
    pub fn exit_code(&self) -> u8 {
        match self {
            ClientError::Unreachable { .. } => 2,
            ClientError::Api { status: 404, .. } => 4,
            ClientError::NotLoggedIn { .. } | ClientError::TokenRefused { .. } => 3,
            ClientError::BadUrl { .. }
            | ClientError::Api { .. }
            | ClientError::Unexpected { .. } => 1,
        }
    }
}

/// A controller at one URL, with an optional token.
pub struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::blocking::Client,
}

impl Client {
    /// Checks the URL and builds the client; no request is sent yet.
    pub fn new(base: &str, token: Option<String>) -> Result<Self, ClientError> {
        let bad = |reason: &str| ClientError::BadUrl {
            url: base.to_string(),
            reason: reason.to_string(),
        };
        let parsed = reqwest::Url::parse(base).map_err(|e| bad(&e.to_string()))?;
        match parsed.scheme() {
            "http" => {}
            // The workspace builds reqwest without a TLS backend; say so instead of failing
            // later with a confusing connection error.
            "https" => return Err(bad("this paas build speaks plain http:// only, no TLS yet")),
            _ => return Err(bad("it must start with http://")),
        }
        let http = reqwest::blocking::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("paas-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| bad(&e.to_string()))?;
        Ok(Client {
            base: base.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    /// `GET <base><path>` and decode the JSON answer.
    pub fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(self.http.get(self.url(path)))
    }

    /// `POST <base><path>` with a JSON body and decode the JSON answer.
    pub fn post<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(self.http.post(self.url(path)).json(body))
    }

    /// `POST` like [`Client::post`] for work that may take long (a restore): waits up to
    /// `limit` for the answer.
    pub fn post_slow<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        limit: Duration,
    ) -> Result<T, ClientError> {
        self.call(self.http.post(self.url(path)).json(body).timeout(limit))
    }

    /// `PUT <base><path>` with a JSON body and decode the JSON answer.
    pub fn put<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(self.http.put(self.url(path)).json(body))
    }

    /// `PATCH <base><path>` with a JSON body and decode the JSON answer.
    pub fn patch<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        self.call(self.http.patch(self.url(path)).json(body))
    }

    /// `DELETE <base><path>` and decode the JSON answer.
    pub fn delete_json<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        self.call(self.http.delete(self.url(path)))
    }

    /// `DELETE <base><path>`; the answer's body is not read.
    pub fn delete(&self, path: &str) -> Result<(), ClientError> {
        let request = self.http.delete(self.url(path));
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().map_err(|err| self.send_error(err))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(self.error_answer(status, response))
        }
    }

    /// `PATCH` with `If-Match: <etag>` when one is given (412 when it is stale).
    pub fn patch_if_match<B: Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
        if_match: Option<&str>,
    ) -> Result<T, ClientError> {
        let mut request = self.http.patch(self.url(path)).json(body);
        if let Some(tag) = if_match {
            request = request.header(reqwest::header::IF_MATCH, quote_etag(tag));
        }
        self.call(request)
    }

    /// `GET <base><path>` that may stream for up to a day (a log, a file): the successful
    /// answer, its body not read yet; an error answer as [`ClientError`].
    fn get_long(&self, path: &str) -> Result<Response, ClientError> {
        let request = self
            .http
            .get(self.url(path))
            .timeout(Duration::from_secs(24 * 3600));
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().map_err(|err| self.send_error(err))?;
        let status = response.status();
        if !status.is_success() {
            return Err(self.error_answer(status, response));
        }
        Ok(response)
    }

    /// `GET <base><path>` as a byte stream (a build log), copied to `out` as it arrives.
    pub fn get_stream(&self, path: &str, out: &mut dyn std::io::Write) -> Result<(), ClientError> {
        let mut response = self.get_long(path)?;
        let status = response.status();
        let mut buf = [0u8; 8192];
        loop {
            let n = std::io::Read::read(&mut response, &mut buf)
                .map_err(|err| self.unexpected(status, err))?;
            if n == 0 {
                return Ok(());
            }
            // A closed stdout (`| head`) ends the copy quietly.
            if out.write_all(&buf[..n]).and_then(|_| out.flush()).is_err() {
                return Ok(());
            }
        }
    }

    /// `GET <base><path>` (a file) written to `out`: the bytes written. Unlike
    /// [`Client::get_stream`] a failed write is an error, and so is an answer shorter than
    /// its `Content-Length` (a cut download).
    pub fn download(&self, path: &str, out: &mut dyn std::io::Write) -> Result<u64, ClientError> {
        let mut response = self.get_long(path)?;
        let status = response.status();
        let expected = response.content_length();
        let n = std::io::copy(&mut response, out).map_err(|err| self.unexpected(status, err))?;
        if let Some(len) = expected.filter(|len| *len != n) {
            return Err(self.unexpected(
                status,
                format!("the download ended after {n} of {len} bytes"),
            ));
        }
        Ok(n)
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn call<T: DeserializeOwned>(&self, request: RequestBuilder) -> Result<T, ClientError> {
        let request = match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        };
        let response = request.send().map_err(|err| self.send_error(err))?;
        let status = response.status();
        if status.is_success() {
            let body = response
                .bytes()
                .map_err(|err| self.unexpected(status, err))?;
            serde_json::from_slice(&body).map_err(|err| self.unexpected(status, err))
        } else {
            Err(self.error_answer(status, response))
        }
    }

    fn send_error(&self, err: reqwest::Error) -> ClientError {
        if err.is_builder() {
            return ClientError::BadUrl {
                url: self.base.clone(),
                reason: root_cause(&err),
            };
        }
        ClientError::Unreachable {
            url: self.base.clone(),
            reason: root_cause(&err),
        }
    }

    fn unexpected(&self, status: StatusCode, err: impl std::fmt::Display) -> ClientError {
        ClientError::Unexpected {
            url: self.base.clone(),
            status: status.as_u16(),
            detail: err.to_string(),
        }
    }

    /// Turns a non-2xx answer into an error, using the `api::ErrorBody` when there is one.
    fn error_answer(&self, status: StatusCode, response: Response) -> ClientError {
        let text = response.text().unwrap_or_default();
        let body: Option<paas_api::ErrorBody> = serde_json::from_str(&text).ok();
        if status == StatusCode::UNAUTHORIZED {
            return match (&self.token, body) {
                (None, _) => ClientError::NotLoggedIn {
                    url: self.base.clone(),
                },
                (Some(_), body) => ClientError::TokenRefused {
                    url: self.base.clone(),
                    message: body.map_or_else(|| "HTTP 401".to_string(), |b| b.error.message),
                },
            };
        }
        match body {
            Some(body) => ClientError::Api {
                status: status.as_u16(),
                code: body.error.code,
                message: body.error.message,
            },
            None => {
                let mut detail: String = text.trim().chars().take(200).collect();
                if detail.is_empty() {
                    detail = status
                        .canonical_reason()
                        .unwrap_or("no message")
                        .to_string();
                }
                self.unexpected(status, detail)
            }
        }
    }
}

/// An ETag as sent in `If-Match`: quoted unless it already is (or is `*`).
fn quote_etag(tag: &str) -> String {
    let tag = tag.trim();
    if tag == "*" || tag.starts_with('"') || tag.starts_with("W/") {
        tag.to_string()
    } else {
        format!("\"{tag}\"")
    }
}

/// The innermost cause of an error: "Connection refused (os error 111)" rather than
/// "error sending request for url (…)".
fn root_cause(err: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = err;
    while let Some(next) = cause.source() {
        cause = next;
    }
    cause.to_string()
}
