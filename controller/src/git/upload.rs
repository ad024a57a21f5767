//! Clone and fetch over smart HTTP (`git-upload-pack`), like `heroku git:clone`: read
//! access for admins and the app's collaborators, the API's rule. Anyone else (and any app
//! that does not exist) gets a 404 naming no app, so a clone never tells a stranger which
//! apps exist. An app that was never pushed clones as an empty repository.
//!
//! The request body (the client's wants and haves, gunzipped when `Content-Encoding:
//! gzip`) is read whole, bounded by [`MAX_REQUEST_BYTES`]; upload-pack's answer (the pack)
//! streams back as it comes.

use std::io::Read as _;
use std::net::IpAddr;
use std::process::Stdio;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path as UrlPath, State};
use axum::response::{IntoResponse, Response};
use http::{header, HeaderMap, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;
use tokio_util::io::ReaderStream;

use super::{authenticate, ensure_repo, internal, no_cache, text, GitError};
use crate::auth::{log_refusal, Caller, Source};
use crate::state::Controller;

/// The most a clone or fetch request may send (after gunzip): its wants and haves.
const MAX_REQUEST_BYTES: usize = 16 << 20;

/// The app named by `repo` when the caller may read it, else the answer git shows.
async fn readable(
    c: &Controller,
    headers: &HeaderMap,
    source: Option<IpAddr>,
    repo: &str,
) -> Result<String, Response> {
    let (app, caller) = authenticate(c, headers, source, repo).await?;
    let exists = c
        .store
        .get_app(&app)
        .await
        .map_err(|e| internal(e.into()))?
        .is_some();
    let allowed = exists && may_read(c, &caller, &app).await?;
    if !allowed {
        log_refusal(
            404,
            source,
            &format!("/git/{repo}"),
            "clone of an app the caller may not use",
        );
        return Err(text(
            StatusCode::NOT_FOUND,
            &format!(
                "no app named {app}: check the name (`paas apps`), or ask a collaborator to run \
                 `paas access:add -a {app} {}`",
                caller.name()
            ),
        ));
    }
    // A never-pushed app clones as an empty repository.
    ensure_repo(&c.settings.repo_path(&app))
        .await
        .map_err(internal)?;
    Ok(app)
}

async fn may_read(c: &Controller, caller: &Caller, app: &str) -> Result<bool, Response> {
    if caller.is_admin() {
        return Ok(true);
    }
    c.store
        .is_collaborator(app, caller.name())
        .await
        .map_err(|e| internal(e.into()))
}

/// `GET /git/<app>.git/info/refs?service=git-upload-pack`: the ref advertisement.
pub(super) async fn info_refs(
    c: &Controller,
    headers: &HeaderMap,
    source: Option<IpAddr>,
    repo: &str,
) -> Response {
    let app = match readable(c, headers, source, repo).await {
        Ok(app) => app,
        Err(resp) => return resp,
    };
    let out = Command::new("git")
        .args(["upload-pack", "--stateless-rpc", "--advertise-refs"])
        .arg(c.settings.repo_path(&app))
        .stdin(Stdio::null())
        .output()
        .await;
    let out = match out {
        Ok(out) if out.status.success() => out.stdout,
        Ok(out) => {
            return internal(GitError::Git {
                what: format!("git upload-pack --advertise-refs for {app}"),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
            })
        }
        Err(source) => {
            return internal(GitError::Io {
                what: "running git upload-pack".into(),
                source,
            })
        }
    };
    let mut body = b"001e# service=git-upload-pack\n0000".to_vec();
    body.extend_from_slice(&out);
    let mut resp = (
        [(
            header::CONTENT_TYPE,
            "application/x-git-upload-pack-advertisement",
        )],
        body,
    )
        .into_response();
    no_cache(&mut resp);
    resp
}

/// Reads the request body whole, gunzipped, refusing more than [`MAX_REQUEST_BYTES`].
async fn request_body(headers: &HeaderMap, body: Body) -> Result<Vec<u8>, Response> {
    let too_big = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!(
                "the fetch request is bigger than {} MiB: clone again into an empty folder",
                MAX_REQUEST_BYTES >> 20
            ),
        )
    };
    let raw = axum::body::to_bytes(body, MAX_REQUEST_BYTES)
        .await
        .map_err(|_| too_big())?;
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip"));
    if !gzip {
        return Ok(raw.to_vec());
    }
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&raw[..])
        .take(MAX_REQUEST_BYTES as u64 + 1)
        .read_to_end(&mut plain)
        .map_err(|e| text(StatusCode::BAD_REQUEST, &format!("a bad gzip body: {e}")))?;
    if plain.len() > MAX_REQUEST_BYTES {
        return Err(too_big());
    }
    Ok(plain)
}

/// `POST /git/<app>.git/git-upload-pack`: the pack the client asked for.
pub(super) async fn upload_pack(
    State(c): State<Arc<Controller>>,
    UrlPath(repo): UrlPath<String>,
    Source(source): Source,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let app = match readable(&c, &headers, source, &repo).await {
        Ok(app) => app,
        Err(resp) => return resp,
    };
    let input = match request_body(&headers, body).await {
        Ok(input) => input,
        Err(resp) => return resp,
    };
    let spawned = Command::new("git")
        .args(["upload-pack", "--stateless-rpc", "--strict"])
        .arg(c.settings.repo_path(&app))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(source) => {
            return internal(GitError::Io {
                what: "starting git upload-pack".into(),
                source,
            })
        }
    };
    let (Some(mut stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
        return internal(GitError::Git {
            what: "git upload-pack".into(),
            stderr: "its pipes were not set up".into(),
        });
    };
    tracing::info!(%app, "git clone or fetch");
    tokio::spawn(async move {
        // A client that stops reading closes stdout: upload-pack then fails and exits.
        let _ = stdin.write_all(&input).await;
        drop(stdin);
        let _ = child.wait().await;
    });
    let mut resp = (
        [(header::CONTENT_TYPE, "application/x-git-upload-pack-result")],
        Body::from_stream(ReaderStream::new(stdout)),
    )
        .into_response();
    no_cache(&mut resp);
    resp
}
