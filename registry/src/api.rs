//! The OCI distribution API (`/v2/`) over the store: pull (manifests, blobs with `Range`,
//! tags list), push (monolithic and chunked uploads, cross-repository mounts, manifests)
//! and deletes of manifests and tags. Request bodies stream to disk; nothing buffers a
//! layer in memory. Errors use the spec's `{"errors":[{"code","message"}]}` shape.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, Query, Request, State};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use axum::Router;
use futures_util::StreamExt;
use http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use sha2::{Digest as _, Sha256};
use tokio::io::AsyncWriteExt;

use super::manifest::{ManifestError, MAX_MANIFEST_BYTES};
use super::names::{self, digest_hex};
use super::store::{self, BlobWriter};
use super::token::{self, Decision, TokenIssuer};

#[path = "api_token.rs"]
mod api_token;
#[path = "api_upload.rs"]
mod api_upload;
use super::{AuthCheck, Error, Registry, RepoAccess, RepoCheck};
use super::{KIND_BLOB, KIND_MANIFEST, KIND_REPOSITORY, KIND_TAG, KIND_UPLOAD};
use api_token::{challenge, token_endpoint};
use api_upload::{
    delete_upload, digest_mismatch, patch_upload, put_upload, start_upload, upload_status,
};
pub use api_upload::{sweep_uploads, SWEEP_EVERY, UPLOAD_IDLE};

const DIGEST_HEADER: &str = "docker-content-digest";
const UPLOAD_UUID_HEADER: &str = "docker-upload-uuid";

/// An HTTP-level failure, rendered in the distribution spec's error shape.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("authentication required")]
    Unauthorized,
    #[error("{code}: {message}")]
    Oci {
        status: StatusCode,
        code: &'static str,
        message: String,
    },
    #[error("internal registry error: {0}")]
    Internal(#[source] Error),
    #[error("denied: {0}")]
    Denied(String),
    #[error("too many failed logins: retry after {0} s")]
    TooMany(u64),
    #[error("{0}")]
    BadToken(token::TokenError),
    #[error("the registry token does not cover repository {0}")]
    InsufficientScope(String),
}

fn oci(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::Oci {
        status,
        code,
        message: message.into(),
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> ApiError {
        let message = e.to_string();
        match &e {
            Error::NotFound { kind, .. } => {
                let code = match *kind {
                    KIND_BLOB => "BLOB_UNKNOWN",
                    KIND_MANIFEST | KIND_TAG => "MANIFEST_UNKNOWN",
                    KIND_REPOSITORY => "NAME_UNKNOWN",
                    KIND_UPLOAD => "BLOB_UPLOAD_UNKNOWN",
                    _ => "NAME_UNKNOWN",
                };
                oci(StatusCode::NOT_FOUND, code, message)
            }
            Error::Invalid { what, .. } => {
                let code = if what.starts_with("repository name") {
                    "NAME_INVALID"
                } else if what.starts_with("digest") {
                    "DIGEST_INVALID"
                } else if what.starts_with("tag") {
                    "TAG_INVALID"
                } else {
                    "MANIFEST_INVALID"
                };
                oci(StatusCode::BAD_REQUEST, code, message)
            }
            Error::Io { .. } => ApiError::Internal(e),
        }
    }
}

impl From<ManifestError> for ApiError {
    fn from(e: ManifestError) -> ApiError {
        match e {
            ManifestError::Invalid { .. } => {
                oci(StatusCode::BAD_REQUEST, "MANIFEST_INVALID", e.to_string())
            }
            ManifestError::BlobUnknown { .. } => oci(
                StatusCode::BAD_REQUEST,
                "MANIFEST_BLOB_UNKNOWN",
                e.to_string(),
            ),
            ManifestError::Store(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code, message) = match self {
            ApiError::Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "authentication required: use basic auth with an API token as the password, \
                 or a bearer token"
                    .to_string(),
            ),
            ApiError::Oci {
                status,
                code,
                message,
            } => (status, code, message),
            ApiError::Denied(m) => (StatusCode::FORBIDDEN, "DENIED", m),
            ApiError::BadToken(e) => (StatusCode::UNAUTHORIZED, "UNAUTHORIZED", e.to_string()),
            ApiError::InsufficientScope(repo) => (
                StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                format!(
                    "the registry token does not cover repository {repo}: get one with its \
                     scope from /v2/token"
                ),
            ),
            ApiError::TooMany(secs) => {
                let body = serde_json::json!({"errors": [{"code": "TOOMANYREQUESTS",
                    "message": format!("too many failed logins or bad tokens from your \
                    address: retry after {secs} s")}]});
                let mut resp = (StatusCode::TOO_MANY_REQUESTS, axum::Json(body)).into_response();
                resp.headers_mut()
                    .insert(header::RETRY_AFTER, hv(&secs.to_string()));
                return resp;
            }
            ApiError::Internal(e) => {
                tracing::error!(error = %e, "registry request failed");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "UNKNOWN",
                    "internal registry error; see the controller log".to_string(),
                )
            }
        };
        let body = serde_json::json!({"errors": [{"code": code, "message": message}]});
        let mut resp = (status, axum::Json(body)).into_response();
        if status == StatusCode::UNAUTHORIZED {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Basic realm=\"paas\""),
            );
        }
        resp
    }
}

type ApiResult = std::result::Result<Response, ApiError>;

/// The running hash of an upload, so finishing it need not re-read the file.
struct UploadHash {
    hasher: Sha256,
    size: u64,
}

struct AppState {
    reg: Registry,
    auth: AuthCheck,
    /// When set, replaces `auth` with a per-repository decision.
    repo_check: Option<RepoCheck>,
    /// When set, `/v2/token` issues registry tokens and Bearer registry tokens are accepted.
    tokens: Option<TokenIssuer>,
    hashes: Mutex<HashMap<String, UploadHash>>,
}

impl AppState {
    /// May this request use `repo` (`None`: the registry at all)?
    async fn allowed(
        &self,
        req_headers: &HeaderMap,
        source: Option<std::net::IpAddr>,
        repo: Option<&str>,
        write: bool,
    ) -> std::result::Result<(), ApiError> {
        if let (Some(issuer), Some(presented)) = (&self.tokens, token::bearer_token(req_headers)) {
            let claims = issuer.verify_now(presented).map_err(ApiError::BadToken)?;
            let Some(repo) = repo else {
                return Ok(());
            };
            return match claims.decide(repo, write) {
                Decision::Allowed => Ok(()),
                Decision::NotInToken => Err(ApiError::InsufficientScope(repo.to_string())),
                Decision::Denied => Err(ApiError::Denied(format!(
                    "{} may not {} repository {repo}",
                    claims.sub,
                    if write { "push to" } else { "pull from" }
                ))),
            };
        }
        let Some(check) = &self.repo_check else {
            return if (self.auth)(req_headers) {
                Ok(())
            } else {
                Err(ApiError::Unauthorized)
            };
        };
        match check(req_headers.clone(), source, repo.map(str::to_string), write).await {
            RepoAccess::Allowed => Ok(()),
            RepoAccess::Unauthorized => Err(ApiError::Unauthorized),
            RepoAccess::Forbidden(m) => Err(ApiError::Denied(m)),
            RepoAccess::Limited(s) => Err(ApiError::TooMany(s)),
        }
    }
}

fn source_of(req: &Request) -> Option<std::net::IpAddr> {
    req.extensions()
        .get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
        .map(|ci| ci.0.ip())
}

pub(super) fn routes(
    reg: Registry,
    auth: AuthCheck,
    repo_check: Option<RepoCheck>,
    tokens: Option<TokenIssuer>,
) -> Router {
    let state = Arc::new(AppState {
        reg,
        auth,
        repo_check,
        tokens,
        hashes: Mutex::new(HashMap::new()),
    });
    Router::new()
        .route("/v2", any(base))
        .route("/v2/", any(base))
        .route("/v2/token", axum::routing::get(token_endpoint))
        .route("/v2/{*rest}", any(dispatch))
        .layer(DefaultBodyLimit::disable())
        .with_state(state)
}

/// Adds the header docker clients look for to every response.
fn finish(result: ApiResult) -> Response {
    let mut resp = result.unwrap_or_else(IntoResponse::into_response);
    resp.headers_mut().insert(
        "docker-distribution-api-version",
        HeaderValue::from_static("registry/2.0"),
    );
    resp
}

async fn base(State(st): State<Arc<AppState>>, req: Request) -> Response {
    let source = source_of(&req);
    let result = st
        .allowed(req.headers(), source, None, false)
        .await
        .map(|()| axum::Json(serde_json::json!({})).into_response());
    challenge(&st, &req, false, finish(result))
}

/// What a path under `/v2/` addresses. Repository names contain slashes, so the path is
/// read from its end.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    Tags(&'a str),
    Manifest(&'a str, &'a str),
    Blob(&'a str, &'a str),
    UploadStart(&'a str),
    Upload(&'a str, &'a str),
}

fn parse_target(rest: &str) -> Option<Target<'_>> {
    if let Some(name) = rest.strip_suffix("/tags/list") {
        return Some(Target::Tags(name));
    }
    if let Some(name) = rest
        .strip_suffix("/blobs/uploads/")
        .or_else(|| rest.strip_suffix("/blobs/uploads"))
    {
        return Some(Target::UploadStart(name));
    }
    let (prefix, last) = rest.rsplit_once('/')?;
    let (name, kind) = prefix.rsplit_once('/')?;
    match kind {
        "manifests" => Some(Target::Manifest(name, last)),
        "blobs" => Some(Target::Blob(name, last)),
        "uploads" => Some(Target::Upload(name.strip_suffix("/blobs")?, last)),
        _ => None,
    }
}

async fn dispatch(
    State(st): State<Arc<AppState>>,
    Path(rest): Path<String>,
    req: Request,
) -> Response {
    let source = source_of(&req);
    let write = !matches!(*req.method(), Method::GET | Method::HEAD);
    let repo = parse_target(&rest).map(|t| match t {
        Target::Tags(n)
        | Target::Manifest(n, _)
        | Target::Blob(n, _)
        | Target::UploadStart(n)
        | Target::Upload(n, _) => n,
    });
    if let Err(e) = st.allowed(req.headers(), source, repo, write).await {
        return challenge(&st, &req, write, finish(Err(e)));
    }
    // A cross-repository mount reads the `from` repository: it needs read access too.
    if let Some(from) = query(&req).get("from").filter(|_| st.repo_check.is_some()) {
        if let Err(e) = st.allowed(req.headers(), source, Some(from), false).await {
            return challenge(&st, &req, false, finish(Err(e)));
        }
    }
    let Some(target) = parse_target(&rest) else {
        return finish(Err(oci(
            StatusCode::NOT_FOUND,
            "NAME_UNKNOWN",
            format!("no registry endpoint at /v2/{rest}"),
        )));
    };
    let name = match target {
        Target::Tags(n)
        | Target::Manifest(n, _)
        | Target::Blob(n, _)
        | Target::UploadStart(n)
        | Target::Upload(n, _) => n,
    };
    if let Err(e) = names::check_repo(name) {
        return finish(Err(e.into()));
    }
    let method = req.method().clone();
    let st = &st;
    finish(match (target, method) {
        (Target::Tags(n), Method::GET) => tags_list(st, n, req).await,
        (Target::Manifest(n, r), Method::GET | Method::HEAD) => get_manifest(st, n, r, req).await,
        (Target::Manifest(n, r), Method::PUT) => put_manifest(st, n, r, req).await,
        (Target::Manifest(n, r), Method::DELETE) => delete_manifest(st, n, r).await,
        (Target::Blob(n, d), Method::GET | Method::HEAD) => get_repo_blob(st, n, d, req).await,
        (Target::UploadStart(n), Method::POST) => start_upload(st, n, req).await,
        (Target::Upload(n, id), Method::GET) => upload_status(st, n, id).await,
        (Target::Upload(n, id), Method::PATCH) => patch_upload(st, n, id, req).await,
        (Target::Upload(n, id), Method::PUT) => put_upload(st, n, id, req).await,
        (Target::Upload(_, id), Method::DELETE) => delete_upload(st, id).await,
        (_, m) => Err(oci(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            format!("{m} is not supported on /v2/{rest}"),
        )),
    })
}

fn query(req: &Request) -> HashMap<String, String> {
    Query::<HashMap<String, String>>::try_from_uri(req.uri())
        .map(|q| q.0)
        .unwrap_or_default()
}

fn hv(s: &str) -> HeaderValue {
    HeaderValue::from_str(s).unwrap_or_else(|_| HeaderValue::from_static("invalid"))
}

fn empty(status: StatusCode, headers: &[(&str, String)]) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = status;
    for (k, v) in headers {
        resp.headers_mut().insert(
            http::HeaderName::from_bytes(k.as_bytes()).expect("static header names"),
            hv(v),
        );
    }
    resp.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    resp
}

// ---- pull ---------------------------------------------------------------------------------

async fn tags_list(st: &AppState, name: &str, req: Request) -> ApiResult {
    let q = query(&req);
    let mut tags = st.reg.list_tags(name).await?;
    if let Some(last) = q.get("last") {
        tags.retain(|t| t.as_str() > last.as_str());
    }
    let mut link = None;
    if let Some(n) = q.get("n").and_then(|n| n.parse::<usize>().ok()) {
        if tags.len() > n {
            tags.truncate(n);
            if let Some(last) = tags.last() {
                link = Some(format!(
                    "</v2/{name}/tags/list?n={n}&last={last}>; rel=\"next\""
                ));
            }
        }
    }
    let mut resp = axum::Json(serde_json::json!({"name": name, "tags": tags})).into_response();
    if let Some(l) = link {
        resp.headers_mut().insert(header::LINK, hv(&l));
    }
    Ok(resp)
}

async fn get_manifest(st: &AppState, name: &str, reference: &str, req: Request) -> ApiResult {
    let (bytes, media_type, digest) = st.reg.get_manifest(name, reference).await?;
    let len = bytes.len();
    let body = if req.method() == Method::HEAD {
        Body::empty()
    } else {
        Body::from(bytes)
    };
    let mut resp = Response::new(body);
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, hv(&media_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(DIGEST_HEADER, hv(&digest));
    h.insert(header::ETAG, hv(&format!("\"{digest}\"")));
    Ok(resp)
}

/// A blob through a repository: only one the repository references (see `scope`).
async fn get_repo_blob(st: &AppState, name: &str, digest: &str, req: Request) -> ApiResult {
    digest_hex(digest)?;
    if !st.reg.repo_has_blob(name, digest).await? {
        return Err(Error::NotFound {
            kind: KIND_BLOB,
            name: format!("{digest} in repository {name}"),
        }
        .into());
    }
    get_blob(st, digest, req).await
}

async fn get_blob(st: &AppState, digest: &str, req: Request) -> ApiResult {
    digest_hex(digest)?;
    let not_found = || Error::NotFound {
        kind: KIND_BLOB,
        name: digest.to_string(),
    };
    let path = st.reg.blob_file(digest)?;
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(not_found().into()),
        Err(e) => return Err(store::io_err(format!("opening {}", path.display()))(e).into()),
    };
    let len = file
        .metadata()
        .await
        .map_err(store::io_err(format!("reading {}", path.display())))?
        .len();
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok());
    let (status, start, count) = match range {
        None => (StatusCode::OK, 0, len),
        Some(r) => match super::ranges::byte_range(r, len) {
            Some((s, e)) => (StatusCode::PARTIAL_CONTENT, s, e - s + 1),
            None => {
                let mut resp = empty(
                    StatusCode::RANGE_NOT_SATISFIABLE,
                    &[("content-range", format!("bytes */{len}"))],
                );
                resp.headers_mut().insert(DIGEST_HEADER, hv(digest));
                return Ok(resp);
            }
        },
    };
    let body = if req.method() == Method::HEAD {
        Body::empty()
    } else {
        super::blob_body::file_body(file.into_std().await, start, count)
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    h.insert(DIGEST_HEADER, hv(digest));
    h.insert(header::ETAG, hv(&format!("\"{digest}\"")));
    if status == StatusCode::PARTIAL_CONTENT {
        h.insert(
            header::CONTENT_RANGE,
            hv(&format!("bytes {start}-{}/{len}", start + count - 1)),
        );
    }
    Ok(resp)
}

// ---- push: uploads are in api_upload.rs; manifests here ---------------------------------

async fn put_manifest(st: &AppState, name: &str, reference: &str, req: Request) -> ApiResult {
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let bytes = axum::body::to_bytes(req.into_body(), MAX_MANIFEST_BYTES)
        .await
        .map_err(|e| {
            oci(
                StatusCode::PAYLOAD_TOO_LARGE,
                "SIZE_INVALID",
                format!("manifest larger than {MAX_MANIFEST_BYTES} bytes or unreadable: {e}"),
            )
        })?;
    let tag = if names::is_digest(reference) {
        digest_hex(reference)?;
        let actual = store::sha256_digest(&bytes);
        if actual != reference {
            return Err(digest_mismatch(reference, &actual));
        }
        None
    } else {
        names::check_tag(reference)?;
        Some(reference)
    };
    st.reg
        .check_manifest_scope(name, &bytes, content_type.as_deref())
        .await?;
    let (digest, _) = st
        .reg
        .store_manifest(name, tag, &bytes, content_type.as_deref())
        .await?;
    Ok(empty(
        StatusCode::CREATED,
        &[
            ("location", format!("/v2/{name}/manifests/{digest}")),
            (DIGEST_HEADER, digest),
        ],
    ))
}

async fn delete_manifest(st: &AppState, name: &str, reference: &str) -> ApiResult {
    if names::is_digest(reference) {
        st.reg.delete_manifest(name, reference).await?;
    } else {
        st.reg.delete_tag(name, reference).await?;
    }
    Ok(empty(StatusCode::ACCEPTED, &[]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets() {
        assert_eq!(parse_target("a/b/tags/list"), Some(Target::Tags("a/b")));
        assert_eq!(
            parse_target("a/b/manifests/latest"),
            Some(Target::Manifest("a/b", "latest"))
        );
        assert_eq!(
            parse_target("a/blobs/sha256:00"),
            Some(Target::Blob("a", "sha256:00"))
        );
        assert_eq!(
            parse_target("a/b/blobs/uploads/"),
            Some(Target::UploadStart("a/b"))
        );
        assert_eq!(
            parse_target("a/b/blobs/uploads"),
            Some(Target::UploadStart("a/b"))
        );
        assert_eq!(
            parse_target("a/b/blobs/uploads/xyz"),
            Some(Target::Upload("a/b", "xyz"))
        );
        assert_eq!(parse_target("a/uploads/xyz"), None);
        assert_eq!(parse_target("nothing"), None);
    }

    #[test]
    fn ranges() {
        assert_eq!(api_upload::range_header(0), "0-0");
        assert_eq!(api_upload::range_header(10), "0-9");
    }
}
