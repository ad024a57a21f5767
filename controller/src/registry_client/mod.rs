//! Copies images from other OCI/distribution registries into paas's registry (`paas deploy
//! --image HOST/REPO:TAG`, `FROM HOST/REPO:TAG`), with the credentials a user stored by
//! `paas registry:login` (see [`logins`]).
//!
//! The client speaks the distribution spec's pull side: `WWW-Authenticate` challenges
//! (Bearer token flow with realm, service and scope, anonymous or with Basic credentials;
//! or plain Basic auth), manifests of Docker v2 schema 2 and OCI media types, manifest
//! lists / OCI indexes (the linux/amd64 image is picked), and blobs streamed into the
//! store with their digest and size checked while they arrive (nothing is kept unless
//! both match; a layer is never held in memory whole). Layers are kept as they are (gzip,
//! zstd or plain; the agent detects each). A blob already in the store is not fetched again.
//!
//! Registries are reached over https. Plain http is used only for the hosts of the
//! controller's `--insecure-registry` flag, which is also the only way to pull from a
//! loopback, private or link-local address (so a member cannot make the controller probe
//! services beside it); the same check covers token realms and redirects.

mod auth;
pub mod logins;
mod reference;

pub use logins::{Credentials, Logins};
pub use reference::{normalize_host, registry_host, Reference};

use std::net::IpAddr;
use std::time::Duration;

use futures_util::StreamExt;
use http::header;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

use crate::registry::{manifest, BlobWriter, Registry};
use auth::Challenge;

/// Largest manifest read from another registry (the store's own limit).
const MAX_MANIFEST_BYTES: usize = 4 << 20;

const ACCEPT: &str = "application/vnd.oci.image.index.v1+json, \
    application/vnd.docker.distribution.manifest.list.v2+json, \
    application/vnd.oci.image.manifest.v1+json, \
    application/vnd.docker.distribution.manifest.v2+json";

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{0}")]
    BadReference(String),
    #[error(
        "{host} asks for credentials for {image}, or refused the ones stored: run `paas \
         registry:login {host} -u USER` (and check that user may pull {image})"
    )]
    Unauthorized { host: String, image: String },
    #[error("{host} refused the password of {user}: check the user name and password")]
    LoginRefused { host: String, user: String },
    #[error("{image}: no such image in {host} (the repository or tag does not exist there)")]
    NotFound { host: String, image: String },
    #[error(
        "{image} has no linux/amd64 image (it has: {found}): paas runs linux/amd64; push an \
         amd64 image"
    )]
    NoPlatform { image: String, found: String },
    #[error(
        "{what} from {host} does not match its digest (expected {expected}, got {got}): \
         nothing was kept; the registry or something between it and paas changed the bytes"
    )]
    DigestMismatch {
        host: String,
        what: String,
        expected: String,
        got: String,
    },
    #[error("{host} sent a manifest paas cannot use for {image}: {why}")]
    BadManifest {
        host: String,
        image: String,
        why: String,
    },
    #[error(
        "{host} is on a loopback, private or link-local address: an admin must allow it with \
         the controller's --insecure-registry {host}"
    )]
    HostRefused { host: String },
    #[error("could not reach {host}: {detail}")]
    Unreachable { host: String, detail: String },
    #[error("{host} answered {status} to {what}")]
    Status {
        host: String,
        what: String,
        status: u16,
    },
    #[error("storing {what}: {source}")]
    Store {
        what: String,
        #[source]
        source: crate::registry::Error,
    },
}

impl Error {
    /// A stable code for API answers.
    pub fn code(&self) -> &'static str {
        match self {
            Error::BadReference(_) => "validation",
            Error::Unauthorized { .. } => "registry_login_required",
            Error::LoginRefused { .. } => "registry_login_refused",
            Error::NotFound { .. } => "not_found",
            Error::NoPlatform { .. } => "no_linux_amd64",
            Error::DigestMismatch { .. } => "digest_mismatch",
            Error::BadManifest { .. } => "manifest_invalid",
            Error::HostRefused { .. } => "registry_host_refused",
            Error::Unreachable { .. } | Error::Status { .. } => "registry_unreachable",
            Error::Store { .. } => "internal",
        }
    }

    /// The HTTP status of an API answer carrying this error.
    pub fn status(&self) -> http::StatusCode {
        use http::StatusCode as S;
        match self {
            Error::BadReference(_) | Error::HostRefused { .. } => S::BAD_REQUEST,
            Error::NotFound { .. } => S::NOT_FOUND,
            Error::Unauthorized { .. }
            | Error::LoginRefused { .. }
            | Error::NoPlatform { .. }
            | Error::BadManifest { .. } => S::UNPROCESSABLE_ENTITY,
            Error::DigestMismatch { .. } | Error::Unreachable { .. } | Error::Status { .. } => {
                S::BAD_GATEWAY
            }
            Error::Store { .. } => S::INTERNAL_SERVER_ERROR,
        }
    }
}

pub type Result<T> = std::result::Result<T, Error>;

/// What a copy brought in.
#[derive(Debug, Clone)]
pub struct Pulled {
    /// The digest of the single-platform manifest now in the destination repository.
    pub digest: String,
    /// Blobs fetched, and blobs that were already in the store.
    pub fetched: usize,
    pub reused: usize,
}

/// A client for one registry host.
pub struct Client {
    http: reqwest::Client,
    host: String,
    api_host: String,
    base: String,
    insecure: Vec<String>,
    credentials: Option<Credentials>,
    /// The `Authorization` value the last challenge led to.
    authorization: Option<String>,
}

/// Whether `host[:port]` is a loopback, private, link-local or unspecified address (or
/// `localhost`).
fn is_local_host(host: &str) -> bool {
    let name = match host.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) && !h.ends_with(':') => h,
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    if name.eq_ignore_ascii_case("localhost") || name.ends_with(".localhost") {
        return true;
    }
    match name.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => {
            a.is_loopback() || a.is_private() || a.is_link_local() || a.is_unspecified()
        }
        Ok(IpAddr::V6(a)) => {
            a.is_loopback()
                || a.is_unspecified()
                || (a.segments()[0] & 0xfe00) == 0xfc00
                || (a.segments()[0] & 0xffc0) == 0xfe80
                || a.to_ipv4_mapped()
                    .is_some_and(|v4| v4.is_loopback() || v4.is_private() || v4.is_link_local())
        }
        Err(_) => false,
    }
}

/// Checks a URL the client is about to follow (a token realm, a redirect): https, or http
/// to an insecure host; never a local address unless that host is allowed.
fn check_url(url: &reqwest::Url, insecure: &[String]) -> std::result::Result<(), String> {
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_string(),
        (None, _) => return Err(format!("{url} has no host")),
    };
    let host = host.to_ascii_lowercase();
    let allowed = insecure.contains(&host);
    match url.scheme() {
        "https" => {}
        "http" if allowed => {}
        _ => return Err(format!("{url} is not https")),
    }
    if is_local_host(&host) && !allowed {
        return Err(format!(
            "{host} is a local address (allow it with --insecure-registry {host})"
        ));
    }
    Ok(())
}

impl Client {
    /// A client for `host` (as in a [`Reference`] or `registry:login`), using `credentials`
    /// when the registry asks. `insecure`: the controller's `--insecure-registry` hosts.
    pub fn new(
        host: &str,
        insecure: &[String],
        credentials: Option<Credentials>,
    ) -> Result<Client> {
        let host = normalize_host(host)?;
        let api_host = if host == "docker.io" {
            "registry-1.docker.io".to_string()
        } else {
            host.clone()
        };
        let allowed = insecure.iter().any(|i| *i == api_host || *i == host);
        if is_local_host(&api_host) && !allowed {
            return Err(Error::HostRefused { host });
        }
        let scheme = if allowed { "http" } else { "https" };
        let policy_insecure = insecure.to_vec();
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(15))
            .read_timeout(Duration::from_secs(60))
            .user_agent(concat!("paas/", env!("CARGO_PKG_VERSION")))
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() >= 5 {
                    attempt.error("more than 5 redirects")
                } else if let Err(e) = check_url(attempt.url(), &policy_insecure) {
                    attempt.error(format!("redirect refused: {e}"))
                } else {
                    attempt.follow()
                }
            }))
            .build()
            .map_err(|e| Error::Unreachable {
                host: host.clone(),
                detail: e.to_string(),
            })?;
        Ok(Client {
            http,
            base: format!("{scheme}://{api_host}"),
            host,
            api_host,
            insecure: insecure.to_vec(),
            credentials,
            authorization: None,
        })
    }

    fn unreachable(&self, e: impl std::fmt::Display) -> Error {
        Error::Unreachable {
            host: self.host.clone(),
            detail: e.to_string(),
        }
    }

    /// One GET, with the current authorization.
    async fn send(&self, url: &str, accept: Option<&str>) -> Result<reqwest::Response> {
        let mut req = self.http.get(url);
        if let Some(a) = accept {
            req = req.header(header::ACCEPT, a);
        }
        if let Some(auth) = &self.authorization {
            req = req.header(header::AUTHORIZATION, auth);
        }
        req.send().await.map_err(|e| {
            // reqwest's Display leaves out the cause (TLS, refused connection); add it.
            let mut detail = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                detail.push_str(&format!(": {s}"));
                source = s.source();
            }
            self.unreachable(detail)
        })
    }

    /// A GET that answers a 401 challenge once (then the authorization is kept for the
    /// next requests). `scope` is what a token is asked for when the challenge names none.
    async fn get(
        &mut self,
        url: &str,
        accept: Option<&str>,
        scope: Option<&str>,
        image: &str,
    ) -> Result<reqwest::Response> {
        let resp = self.send(url, accept).await?;
        if resp.status() != http::StatusCode::UNAUTHORIZED {
            return Ok(resp);
        }
        let challenges: Vec<Challenge> = resp
            .headers()
            .get_all(header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(auth::parse_challenges)
            .collect();
        let unauthorized = || Error::Unauthorized {
            host: self.host.clone(),
            image: image.to_string(),
        };
        let Some(challenge) = challenges.into_iter().next() else {
            return Err(unauthorized());
        };
        self.authorization = Some(match challenge {
            Challenge::Basic => match &self.credentials {
                Some(c) => c.basic(),
                None => return Err(unauthorized()),
            },
            Challenge::Bearer {
                realm,
                service,
                scope: asked,
            } => {
                let token = self
                    .token(&realm, service.as_deref(), asked.as_deref().or(scope))
                    .await?
                    .ok_or_else(unauthorized)?;
                format!("Bearer {token}")
            }
        });
        let resp = self.send(url, accept).await?;
        if resp.status() == http::StatusCode::UNAUTHORIZED {
            return Err(unauthorized());
        }
        Ok(resp)
    }

    /// Asks `realm` for a token (with Basic credentials when stored). `None` when the
    /// token endpoint refuses.
    async fn token(
        &self,
        realm: &str,
        service: Option<&str>,
        scope: Option<&str>,
    ) -> Result<Option<String>> {
        let mut url = reqwest::Url::parse(realm).map_err(|e| {
            self.unreachable(format!("its token realm {realm:?} is not a URL: {e}"))
        })?;
        check_url(&url, &self.insecure)
            .map_err(|e| self.unreachable(format!("its token realm was refused: {e}")))?;
        {
            let mut q = url.query_pairs_mut();
            if let Some(s) = service {
                q.append_pair("service", s);
            }
            if let Some(s) = scope {
                q.append_pair("scope", s);
            }
            if let Some(c) = &self.credentials {
                q.append_pair("account", &c.username);
            }
        }
        let mut req = self.http.get(url);
        if let Some(c) = &self.credentials {
            req = req.header(header::AUTHORIZATION, c.basic());
        }
        let resp = req.send().await.map_err(|e| self.unreachable(e))?;
        if matches!(resp.status().as_u16(), 401 | 403) {
            return Ok(None);
        }
        if !resp.status().is_success() {
            return Err(Error::Status {
                host: self.host.clone(),
                what: "a token request".into(),
                status: resp.status().as_u16(),
            });
        }
        let body: Value = resp
            .json()
            .await
            .map_err(|e| self.unreachable(format!("its token answer is not JSON: {e}")))?;
        Ok(auth::token_of(&body))
    }

    /// Checks the stored credentials the way `docker login` does: `GET /v2/`, answering
    /// the challenge with them.
    pub async fn check_login(&mut self) -> Result<()> {
        let url = format!("{}/v2/", self.base);
        let user = self
            .credentials
            .as_ref()
            .map(|c| c.username.clone())
            .unwrap_or_default();
        let resp = match self.get(&url, None, None, "/v2/").await {
            Err(Error::Unauthorized { host, .. }) => {
                return Err(Error::LoginRefused { host, user });
            }
            r => r?,
        };
        if resp.status().is_success() {
            Ok(())
        } else {
            Err(Error::Status {
                host: self.host.clone(),
                what: "GET /v2/".into(),
                status: resp.status().as_u16(),
            })
        }
    }

    /// Reads a manifest (bounded), checking it against `reference` when that is a digest
    /// and against `Docker-Content-Digest` when the registry sends one. Returns (bytes,
    /// media type, digest).
    async fn manifest(
        &mut self,
        r: &Reference,
        reference: &str,
    ) -> Result<(Vec<u8>, String, String)> {
        let url = format!("{}/v2/{}/manifests/{}", self.base, r.repo, reference);
        let scope = format!("repository:{}:pull", r.repo);
        let image = r.to_string();
        let resp = self.get(&url, Some(ACCEPT), Some(&scope), &image).await?;
        match resp.status().as_u16() {
            200 => {}
            404 => {
                return Err(Error::NotFound {
                    host: self.host.clone(),
                    image,
                })
            }
            403 => {
                return Err(Error::Unauthorized {
                    host: self.host.clone(),
                    image,
                })
            }
            s => {
                return Err(Error::Status {
                    host: self.host.clone(),
                    what: format!("the manifest of {image}"),
                    status: s,
                })
            }
        }
        let header_digest = resp
            .headers()
            .get("docker-content-digest")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let content_type = resp
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_string())
            .unwrap_or_default();
        let mut bytes = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.unreachable(e))?;
            if bytes.len() + chunk.len() > MAX_MANIFEST_BYTES {
                return Err(self.bad_manifest(&image, "it is larger than 4 MiB"));
            }
            bytes.extend_from_slice(&chunk);
        }
        let digest = format!("sha256:{}", hex::encode(Sha256::digest(&bytes)));
        let expected = if crate::registry::names::is_digest(reference) {
            Some(reference.to_string())
        } else {
            header_digest.filter(|d| d.starts_with("sha256:"))
        };
        if let Some(expected) = expected {
            if expected != digest {
                return Err(Error::DigestMismatch {
                    host: self.host.clone(),
                    what: format!("the manifest of {image}"),
                    expected,
                    got: digest,
                });
            }
        }
        let body: Value = serde_json::from_slice(&bytes)
            .map_err(|e| self.bad_manifest(&image, &format!("it is not JSON: {e}")))?;
        let media_type = body
            .get("mediaType")
            .and_then(Value::as_str)
            .map(str::to_string)
            .filter(|m| !m.is_empty())
            .unwrap_or(content_type);
        Ok((bytes, media_type, digest))
    }

    fn bad_manifest(&self, image: &str, why: &str) -> Error {
        Error::BadManifest {
            host: self.host.clone(),
            image: image.to_string(),
            why: why.to_string(),
        }
    }

    /// Streams one blob into the store, verifying its digest and size; skipped when the
    /// store has it. Returns whether it was fetched.
    async fn blob(
        &mut self,
        registry: &Registry,
        r: &Reference,
        digest: &str,
        size: u64,
    ) -> Result<bool> {
        crate::registry::names::digest_hex(digest).map_err(|e| {
            self.bad_manifest(&r.to_string(), &format!("a blob digest is invalid: {e}"))
        })?;
        if let Some(path) = registry.blob_path(digest) {
            if std::fs::metadata(&path).ok().map(|m| m.len()) == Some(size) {
                return Ok(false);
            }
        }
        if size > registry.max_blob_bytes() {
            return Err(self.bad_manifest(
                &r.to_string(),
                &format!(
                    "blob {digest} is {size} bytes, more than this controller's \
                     --max-blob-bytes ({})",
                    registry.max_blob_bytes()
                ),
            ));
        }
        let url = format!("{}/v2/{}/blobs/{}", self.base, r.repo, digest);
        let scope = format!("repository:{}:pull", r.repo);
        let image = r.to_string();
        let resp = self.get(&url, None, Some(&scope), &image).await?;
        if !resp.status().is_success() {
            return Err(Error::Status {
                host: self.host.clone(),
                what: format!("blob {digest} of {image}"),
                status: resp.status().as_u16(),
            });
        }
        let store_err = |what: &str| {
            let what = what.to_string();
            move |source| Error::Store { what, source }
        };
        let mut writer = BlobWriter::new(registry)
            .await
            .map_err(store_err("a blob"))?;
        let mut stream = resp.bytes_stream();
        let mismatch = |got: String| Error::DigestMismatch {
            host: self.host.clone(),
            what: format!("blob {digest} of {image}"),
            expected: format!("{digest} ({size} bytes)"),
            got,
        };
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.unreachable(e))?;
            if writer.size() + chunk.len() as u64 > size {
                return Err(mismatch(format!("more than {size} bytes")));
            }
            writer.write(&chunk).await.map_err(store_err("a blob"))?;
        }
        let got = writer.digest();
        if got != digest || writer.size() != size {
            return Err(mismatch(format!("{got} ({} bytes)", writer.size())));
        }
        writer.commit().await.map_err(store_err("a blob"))?;
        Ok(true)
    }

    /// Copies the image `r` names (its linux/amd64 image when it is a list) into `repo` of
    /// `registry` (untagged; the caller tags or links it).
    pub async fn copy(&mut self, registry: &Registry, r: &Reference, repo: &str) -> Result<Pulled> {
        let image = r.to_string();
        let (mut bytes, mut media_type, mut digest) = self.manifest(r, &r.reference).await?;
        if is_index(&media_type, &bytes) {
            let index: Value = serde_json::from_slice(&bytes).unwrap_or_default();
            let child = pick_linux_amd64(&index).map_err(|found| Error::NoPlatform {
                image: image.clone(),
                found,
            })?;
            (bytes, media_type, digest) = self.manifest(r, &child).await?;
            if is_index(&media_type, &bytes) {
                return Err(self.bad_manifest(&image, "its linux/amd64 entry is another index"));
            }
        }
        if is_schema1(&media_type) {
            return Err(self.bad_manifest(
                &image,
                "it is a Docker schema 1 manifest, which paas does not read: push it again with \
                 a current client",
            ));
        }
        let body: Value = serde_json::from_slice(&bytes).unwrap_or_default();
        if body.get("schemaVersion").and_then(Value::as_u64) != Some(2) {
            return Err(self.bad_manifest(&image, "schemaVersion is not 2"));
        }
        let mut blobs = Vec::new();
        let descriptors = std::iter::once(&body["config"]).chain(
            body.get("layers")
                .and_then(Value::as_array)
                .map(|a| a.iter())
                .into_iter()
                .flatten(),
        );
        for d in descriptors {
            let (Some(dg), Some(size)) = (
                d.get("digest").and_then(Value::as_str),
                d.get("size").and_then(Value::as_u64),
            ) else {
                return Err(self.bad_manifest(&image, "a descriptor lacks its digest or size"));
            };
            if d.get("urls").is_some() {
                return Err(self.bad_manifest(
                    &image,
                    "it has foreign layers (urls), which paas does not fetch",
                ));
            }
            blobs.push((dg.to_string(), size));
        }
        let (mut fetched, mut reused) = (0, 0);
        for (dg, size) in &blobs {
            if self.blob(registry, r, dg, *size).await? {
                fetched += 1;
            } else {
                reused += 1;
            }
        }
        let stored = registry
            .put_manifest(repo, None, &bytes)
            .await
            .map_err(|source| Error::Store {
                what: format!("the manifest of {image} in {repo}"),
                source,
            })?;
        debug_assert_eq!(stored, digest);
        tracing::info!(%image, %repo, %digest, fetched, reused, host = %self.api_host, "copied an image from another registry");
        Ok(Pulled {
            digest: stored,
            fetched,
            reused,
        })
    }
}

/// Copies `r` into `repo` of the controller's registry with the credentials `user` stored
/// for its registry (anonymous without); returns the manifest digest. Used by `paas deploy
/// --image` and Dockerfile `FROM`.
pub async fn pull_for(
    c: &crate::state::Controller,
    user: &str,
    r: &Reference,
    repo: &str,
) -> Result<String> {
    let creds = c
        .registry_logins
        .get(user, &r.host)
        .map_err(|e| Error::Unreachable {
            host: r.host.clone(),
            detail: format!("reading the stored login: {e}"),
        })?;
    let mut client = Client::new(&r.host, &c.settings.insecure_registries, creds)?;
    Ok(client.copy(&c.registry, r, repo).await?.digest)
}

/// Whether a media type is Docker's schema 1 (`…manifest.v1+json`, `…v1+prettyjws`).
fn is_schema1(media_type: &str) -> bool {
    media_type.starts_with("application/vnd.docker.distribution.manifest.v1")
}

/// Whether a manifest is an index / manifest list.
fn is_index(media_type: &str, bytes: &[u8]) -> bool {
    if media_type.is_empty() {
        return serde_json::from_slice::<Value>(bytes)
            .map(|v| v.get("manifests").is_some())
            .unwrap_or(false);
    }
    media_type == manifest::OCI_INDEX || media_type.contains("manifest.list")
}

/// The digest of the linux/amd64 entry of an index (the first one, preferring no variant
/// or `v1`); `Err` lists the platforms it has.
pub fn pick_linux_amd64(index: &Value) -> std::result::Result<String, String> {
    let entries = index
        .get("manifests")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let platform = |e: &Value, k: &str| {
        e.get("platform")
            .and_then(|p| p.get(k))
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string()
    };
    let amd64: Vec<&Value> = entries
        .iter()
        .filter(|e| platform(e, "os") == "linux" && platform(e, "architecture") == "amd64")
        .collect();
    let best = amd64
        .iter()
        .find(|e| matches!(platform(e, "variant").as_str(), "" | "v1"))
        .or_else(|| amd64.first());
    if let Some(d) = best.and_then(|e| e.get("digest")).and_then(Value::as_str) {
        return Ok(d.to_string());
    }
    let found: Vec<String> = entries
        .iter()
        .map(|e| {
            let v = platform(e, "variant");
            let os_arch = format!("{}/{}", platform(e, "os"), platform(e, "architecture"));
            if v.is_empty() {
                os_arch
            } else {
                format!("{os_arch}/{v}")
            }
        })
        .collect();
    Err(if found.is_empty() {
        "no entries".to_string()
    } else {
        found.join(", ")
    })
}

#[cfg(test)]
mod tests;
