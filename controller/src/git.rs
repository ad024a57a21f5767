//! Git smart HTTP: the controller runs `git receive-pack --stateless-rpc` (push) or `git
//! upload-pack --stateless-rpc` (clone, fetch: [`upload`]) on the app's bare repository
//! (`DATA/git/<app>.git`) and pipes the HTTP bodies through it. It does not implement the
//! pack protocol itself.
//!
//! * `GET /git/<app>.git/info/refs?service=git-receive-pack` — admin token (Basic auth,
//!   password = token; a 401 makes git ask for credentials), name check (a `text/plain`
//!   400, which git prints as `remote:` lines), creates the app and the bare repository
//!   on the first push, installs the `pre-receive` hook, advertises the refs.
//! * `POST /git/<app>.git/git-receive-pack` — streams the request body (gunzipped when
//!   `Content-Encoding: gzip`) into receive-pack and its output back AS IT COMES, so the
//!   build output reaches the user live. The hook finds the controller through
//!   `PAAS_HOOK_URL`, `PAAS_HOOK_TOKEN` and `PAAS_APP` in its environment.
//! * `GET …/info/refs?service=git-upload-pack` and `POST …/git-upload-pack` — clone and
//!   fetch (`paas git:clone`, like `heroku git:clone`), for admins and the app's
//!   collaborators; anyone else gets the API's 404 (see [`upload`]).
//!
//! A push body larger than `--max-push-bytes` (counted after gunzip) is refused: a
//! `Content-Length` over it gets a 413 before git runs; a chunked body is counted as it
//! streams, and at the limit receive-pack's input is cut (so it fails and removes its
//! quarantined objects: no ref moves, no object stays, the hook never runs) and the client
//! gets a receive-pack report naming the limit (` ! [remote rejected] main -> main (...)`).
//! The answer waits for the whole body; receive-pack's output is drained meanwhile.
//! Force pushes are accepted, as Heroku does: `main` is whatever was pushed last.

use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Stdio;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path as UrlPath, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use futures_util::TryStreamExt;
use http::{header, HeaderMap, HeaderValue, StatusCode};
use tokio::io::AsyncBufReadExt;
use tokio::process::Command;
use tokio_util::io::{ReaderStream, StreamReader, SyncIoBridge};

/// How much of the (gunzipped) push body is kept to read the ref updates from.
const COMMANDS_PREFIX: usize = 64 * 1024;

use crate::auth::{log_refusal, AuthFailure, Caller, Source};

mod upload;
use crate::state::Controller;

/// Why a git request failed (each becomes a `text/plain` answer git shows the user).
#[derive(Debug, thiserror::Error)]
pub enum GitError {
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{what} failed: {stderr}")]
    Git { what: String, stderr: String },
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

pub fn routes() -> Router<Arc<Controller>> {
    Router::new()
        .route("/git/{repo}/info/refs", get(info_refs))
        .route(
            "/git/{repo}/git-receive-pack",
            post(receive_pack).layer(DefaultBodyLimit::disable()),
        )
        .route(
            "/git/{repo}/git-upload-pack",
            post(upload::upload_pack).layer(DefaultBodyLimit::disable()),
        )
}

/// A plain-text answer (git prints the body of a text/plain error as `remote:` lines).
fn text(status: StatusCode, message: &str) -> Response {
    let mut body = message.trim_end().to_string();
    body.push('\n');
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response()
}

fn unauthorized(message: &str) -> Response {
    let mut resp = text(StatusCode::UNAUTHORIZED, message);
    resp.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"paas\""),
    );
    resp
}

fn refuse_dumb_http() -> Response {
    text(
        StatusCode::FORBIDDEN,
        "paas serves git's smart HTTP protocol only: use git 1.6.6 or newer",
    )
}

fn internal(e: GitError) -> Response {
    tracing::error!("git: {e}");
    text(
        StatusCode::INTERNAL_SERVER_ERROR,
        "the paas controller failed to handle this push; its log has the details",
    )
}

/// `<app>.git` (or `<app>`) → the app name, checked.
fn app_name(repo: &str) -> Result<&str, String> {
    let name = repo.strip_suffix(".git").unwrap_or(repo);
    paas_api::names::validate_app_name(name).map(|()| name)
}

/// Auth and name checks shared by both endpoints: admins push to any app; members to the
/// apps they collaborate on, or to a new app (which makes them its first collaborator).
async fn check(
    c: &Controller,
    headers: &HeaderMap,
    source: Option<std::net::IpAddr>,
    repo: &str,
) -> Result<(String, Caller), Response> {
    let (app, caller) = authenticate(c, headers, source, repo).await?;
    if caller.is_admin() {
        return Ok((app, caller));
    }
    let path = format!("/git/{repo}");
    let exists = c
        .store
        .get_app(&app)
        .await
        .map_err(|e| internal(e.into()))?
        .is_some();
    let allowed = !exists
        || c.store
            .is_collaborator(&app, caller.name())
            .await
            .map_err(|e| internal(e.into()))?;
    if !allowed {
        log_refusal(403, source, &path, "not a collaborator of the app");
        return Err(text(
            StatusCode::FORBIDDEN,
            &format!(
                "{} may not push to {app}: a collaborator can run `paas access:add -a {app} {}`",
                caller.name(),
                caller.name()
            ),
        ));
    }
    Ok((app, caller))
}

/// Who is calling (a person: a node token is refused) and which app the repository path
/// names. The answers git shows when either fails.
async fn authenticate(
    c: &Controller,
    headers: &HeaderMap,
    source: Option<std::net::IpAddr>,
    repo: &str,
) -> Result<(String, Caller), Response> {
    let path = format!("/git/{repo}");
    let caller = match Caller::resolve(c, headers, source, &path).await {
        Ok(caller) => caller,
        Err(AuthFailure::Limited(secs)) => {
            log_refusal(429, source, &path, "too many failed logins or bad tokens");
            let mut resp = text(
                StatusCode::TOO_MANY_REQUESTS,
                &format!("too many failed logins or bad tokens: retry after {secs} s"),
            );
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            return Err(resp);
        }
        Err(AuthFailure::Unavailable) => {
            return Err(text(
                StatusCode::SERVICE_UNAVAILABLE,
                "the credentials could not be checked (the store did not answer): push again \
                 shortly",
            ));
        }
        Err(f) => {
            let reason = if f == AuthFailure::Missing {
                "no credentials"
            } else {
                "unknown, revoked or expired token"
            };
            log_refusal(401, source, &path, reason);
            return Err(unauthorized(
                "Authentication required: use any user name and an API token (`paas tokens:create`) \
                 or the admin token as the password",
            ));
        }
    };
    let app = app_name(repo)
        .map(str::to_string)
        .map_err(|message| text(StatusCode::BAD_REQUEST, &message))?;
    if caller.is_node() {
        log_refusal(403, source, &path, "node token used for git");
        return Err(text(
            StatusCode::FORBIDDEN,
            "a node token cannot push or clone: use an API token",
        ));
    }
    Ok((app, caller))
}

fn no_cache(resp: &mut Response) {
    let h = resp.headers_mut();
    h.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("no-cache, max-age=0, must-revalidate"),
    );
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    h.insert(
        header::EXPIRES,
        HeaderValue::from_static("Fri, 01 Jan 1980 00:00:00 GMT"),
    );
}

async fn info_refs(
    State(c): State<Arc<Controller>>,
    UrlPath(repo): UrlPath<String>,
    Query(query): Query<std::collections::HashMap<String, String>>,
    Source(source): Source,
    headers: HeaderMap,
) -> Response {
    match query.get("service").map(String::as_str) {
        Some("git-receive-pack") => {}
        Some("git-upload-pack") => return upload::info_refs(&c, &headers, source, &repo).await,
        _ => {
            return match authenticate(&c, &headers, source, &repo).await {
                Ok(_) => refuse_dumb_http(),
                Err(resp) => resp,
            }
        }
    }
    let (app, caller) = match check(&c, &headers, source, &repo).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    match advertise(&c, &app, &caller).await {
        Ok(refs) => {
            let mut body = b"001f# service=git-receive-pack\n0000".to_vec();
            body.extend_from_slice(&refs);
            let mut resp = (
                [(
                    header::CONTENT_TYPE,
                    "application/x-git-receive-pack-advertisement",
                )],
                body,
            )
                .into_response();
            no_cache(&mut resp);
            resp
        }
        Err(e) => internal(e),
    }
}

/// Creates the app and its repository when needed, refreshes the hook and returns the
/// ref advertisement.
async fn advertise(c: &Controller, app: &str, caller: &Caller) -> Result<Vec<u8>, GitError> {
    let (_, created) = c.store.ensure_app(app).await?;
    if created {
        // A new app starts empty, whatever an earlier app of this name left.
        crate::names::fresh_start(c, app)
            .await
            .map_err(|e| GitError::Git {
                what: format!("clearing what an earlier app named {app} left"),
                stderr: e.to_string(),
            })?;
        if let Some(user) = caller.user() {
            c.store.add_collaborator(app, &user.name).await?;
        }
        tracing::info!(%app, "app created by its first push");
        c.scheduler.notify();
    }
    let repo = c.settings.repo_path(app);
    ensure_repo(&repo).await?;
    install_hook(&repo, &c.settings.hook_exe)?;
    let out = Command::new("git")
        .args(["receive-pack", "--stateless-rpc", "--advertise-refs"])
        .arg(&repo)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|source| GitError::Io {
            what: "running git receive-pack".into(),
            source,
        })?;
    if !out.status.success() {
        return Err(GitError::Git {
            what: format!("git receive-pack --advertise-refs {}", repo.display()),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(out.stdout)
}

/// `git init --bare` unless the repository exists.
pub async fn ensure_repo(repo: &Path) -> Result<(), GitError> {
    if repo.join("HEAD").is_file() {
        return Ok(());
    }
    let out = Command::new("git")
        .args(["init", "--bare", "--quiet", "--initial-branch=main"])
        .arg(repo)
        .output()
        .await
        .map_err(|source| GitError::Io {
            what: "running git init".into(),
            source,
        })?;
    if !out.status.success() {
        return Err(GitError::Git {
            what: format!("git init --bare {}", repo.display()),
            stderr: String::from_utf8_lossy(&out.stderr).trim().to_string(),
        });
    }
    Ok(())
}

/// The hook script: runs this controller's binary as `hook`.
pub fn hook_script(exe: &Path) -> String {
    let quoted = exe.display().to_string().replace('\'', r"'\''");
    format!("#!/bin/sh\nexec '{quoted}' hook\n")
}

/// Writes `hooks/pre-receive` (mode 0755) atomically, so a push running it never sees a
/// half-written file.
pub fn install_hook(repo: &Path, exe: &Path) -> Result<(), GitError> {
    let hooks = repo.join("hooks");
    let io = |what: String| move |source| GitError::Io { what, source };
    std::fs::create_dir_all(&hooks).map_err(io(format!("creating {}", hooks.display())))?;
    let script = hook_script(exe);
    let path = hooks.join("pre-receive");
    if std::fs::read_to_string(&path).is_ok_and(|s| s == script) {
        return Ok(());
    }
    let tmp = hooks.join(format!(".pre-receive.{}", crate::util::random_hex(4)));
    let mut file =
        std::fs::File::create(&tmp).map_err(io(format!("creating {}", tmp.display())))?;
    file.write_all(script.as_bytes())
        .and_then(|()| file.set_permissions(std::fs::Permissions::from_mode(0o755)))
        .map_err(io(format!("writing {}", tmp.display())))?;
    drop(file);
    std::fs::rename(&tmp, &path).map_err(io(format!("installing {}", path.display())))
}

async fn receive_pack(
    State(c): State<Arc<Controller>>,
    UrlPath(repo): UrlPath<String>,
    Source(source): Source,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let (app, caller) = match check(&c, &headers, source, &repo).await {
        Ok(found) => found,
        Err(resp) => return resp,
    };
    // Who pushed: what a Dockerfile's FROM may pull (see builder::dockerfile).
    let pusher = if caller.is_admin() && caller.user().is_none() {
        crate::builder::PUSHER_ADMIN.to_string()
    } else {
        caller.name().to_string()
    };
    let path = c.settings.repo_path(&app);
    if !path.join("HEAD").is_file() {
        return text(
            StatusCode::NOT_FOUND,
            &format!("no repository for {app} yet: push again (git asks for info/refs first)"),
        );
    }
    let max = c.settings.max_push_bytes;
    let content_length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if content_length.is_some_and(|n| n > max) {
        tracing::warn!(%app, max, "git push refused: Content-Length over --max-push-bytes");
        return text(StatusCode::PAYLOAD_TOO_LARGE, &too_big_message(max));
    }
    let gzip = headers
        .get(header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("gzip") || v.eq_ignore_ascii_case("x-gzip"));
    let spawned = Command::new("git")
        .args(["receive-pack", "--stateless-rpc"])
        .arg(&path)
        .env(
            "PAAS_HOOK_URL",
            format!("{}/internal/hooks/pre-receive", c.settings.internal_url),
        )
        .env("PAAS_HOOK_TOKEN", &c.hook_secret)
        .env("PAAS_APP", &app)
        .env("PAAS_PUSHER", &pusher)
        .env(
            crate::builder::ENV_MAX_SOURCE_BYTES,
            c.settings.build_limits.max_source_bytes.to_string(),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match spawned {
        Ok(child) => child,
        Err(source) => {
            return internal(GitError::Io {
                what: "starting git receive-pack".into(),
                source,
            })
        }
    };
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return internal(GitError::Git {
            what: "git receive-pack".into(),
            stderr: "its pipes were not set up".into(),
        });
    };
    tracing::info!(%app, gzip, "git push received");

    let reader = StreamReader::new(body.into_data_stream().map_err(std::io::Error::other));
    let reader = SyncIoBridge::new(reader);
    let writer = SyncIoBridge::new(stdin);
    let feeder = tokio::task::spawn_blocking(move || {
        if gzip {
            feed(flate2::read::GzDecoder::new(reader), writer, max)
        } else {
            feed(reader, writer, max)
        }
    });
    // Drain receive-pack's output while its input is fed, so neither side blocks. When
    // the client goes away (the response body is dropped), receive-pack is stopped below,
    // and its hook, which dies with it, stops the build.
    let (out_tx, out_rx) = tokio::sync::mpsc::unbounded_channel();
    let (gone_tx, gone_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut out = ReaderStream::new(stdout);
        loop {
            let item = tokio::select! {
                item = futures_util::StreamExt::next(&mut out) => item,
                () = out_tx.closed() => {
                    let _ = gone_tx.send(());
                    break;
                }
            };
            let Some(item) = item else { break };
            if out_tx.send(item).is_err() {
                let _ = gone_tx.send(());
                break;
            }
        }
    });
    let log_app = app.clone();
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            tracing::warn!(app = %log_app, "git receive-pack: {line}");
        }
    });
    let wait_app = app.clone();
    let (exited_tx, exited_rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let app = wait_app;
        let status = tokio::select! {
            status = child.wait() => status,
            Ok(()) = gone_rx => {
                stop_receive_pack(&mut child, &app);
                child.wait().await
            }
        };
        let _ = exited_tx.send(());
        match status {
            Ok(status) if !status.success() => {
                tracing::info!(%app, "git receive-pack ended: {status}")
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(%app, "waiting for git receive-pack: {e}"),
        }
    });

    let fed = match feeder.await {
        Ok(fed) => fed,
        Err(e) => {
            return internal(GitError::Io {
                what: "feeding git receive-pack".into(),
                source: std::io::Error::other(e),
            })
        }
    };
    let body = if fed.exceeded {
        tracing::warn!(%app, max, "git push refused: body over --max-push-bytes");
        // Answer once receive-pack has failed on its cut input and removed its quarantined
        // objects (its output is still drained meanwhile: a closed pipe would kill it
        // before it cleans up).
        let _ = exited_rx.await;
        drop(out_rx);
        match refusal_report(&fed.prefix, &too_big_reason(max)) {
            Some(report) => Body::from(report),
            None => return text(StatusCode::PAYLOAD_TOO_LARGE, &too_big_message(max)),
        }
    } else {
        Body::from_stream(tokio_stream::wrappers::UnboundedReceiverStream::new(out_rx))
    };
    let mut resp = (
        [(
            header::CONTENT_TYPE,
            "application/x-git-receive-pack-result",
        )],
        body,
    )
        .into_response();
    no_cache(&mut resp);
    resp
}

/// Sends SIGTERM to a receive-pack whose client went away (SIGTERM, not SIGKILL: git then
/// removes its quarantined objects, so no ref moves and no object stays).
fn stop_receive_pack(child: &mut tokio::process::Child, app: &str) {
    // Not yet reaped, so the pid is still this child's.
    if let (Ok(None), Some(pid)) = (child.try_wait(), child.id()) {
        tracing::info!(%app, "the git client went away: stopping git receive-pack");
        let Ok(pid) = i32::try_from(pid) else { return };
        // SAFETY: kill(2) on our own unreaped child's pid; it touches no memory.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
}

fn too_big_reason(max: u64) -> String {
    format!("push bigger than the limit of {} MiB", max >> 20)
}

fn too_big_message(max: u64) -> String {
    too_big_message_for(&format!("{} ({max} bytes)", too_big_reason(max)))
}

/// What feeding receive-pack did.
struct Fed {
    /// The body passed the limit; receive-pack's input was cut there.
    exceeded: bool,
    /// The first bytes fed (the ref update commands).
    prefix: Vec<u8>,
}

/// Copies `reader` into receive-pack's stdin, at most `max` bytes. Past the limit the
/// input is closed early (receive-pack then fails on the truncated pack and cleans up)
/// and at most `max` more bytes of the body are read and dropped, so the client gets to
/// read the answer.
fn feed(mut reader: impl std::io::Read, mut writer: impl Write, max: u64) -> Fed {
    let mut fed = Fed {
        exceeded: false,
        prefix: Vec::new(),
    };
    let mut total = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!("reading a git push: {e}");
                break;
            }
        };
        total += n as u64;
        if total > max {
            fed.exceeded = true;
            drop(writer);
            let _ = std::io::copy(&mut reader.take(max), &mut std::io::sink());
            return fed;
        }
        if fed.prefix.len() < COMMANDS_PREFIX {
            let keep = n.min(COMMANDS_PREFIX - fed.prefix.len());
            fed.prefix.extend_from_slice(&buf[..keep]);
        }
        if let Err(e) = writer.write_all(&buf[..n]) {
            tracing::warn!("feeding git receive-pack: {e}");
            break;
        }
    }
    let _ = writer.flush();
    fed
}

/// Longest pkt-line, its 4 length digits included (git's LARGE_PACKET_MAX).
const MAX_PKT_LEN: usize = 65520;

/// One pkt-line (`data` is at most `MAX_PKT_LEN - 4` bytes; the callers make sure).
fn pkt(data: &[u8]) -> Vec<u8> {
    let mut out = format!("{:04x}", data.len() + 4).into_bytes();
    out.extend_from_slice(data);
    out
}

/// The length of the pkt-line at the start of `data`: four hex digits, as git writes them
/// (not `+fff`, which Rust's radix parser would take), at most [`MAX_PKT_LEN`].
fn pkt_len(data: &[u8]) -> Option<usize> {
    let digits = data.get(..4)?;
    if !digits.iter().all(u8::is_ascii_hexdigit) {
        return None;
    }
    let len = usize::from_str_radix(std::str::from_utf8(digits).ok()?, 16).ok()?;
    (len <= MAX_PKT_LEN).then_some(len)
}

/// The ref names and capabilities of a receive-pack request's command list.
fn parse_commands(prefix: &[u8]) -> Option<(Vec<String>, String)> {
    let (mut refs, mut caps) = (Vec::new(), String::new());
    let mut rest = prefix;
    loop {
        let len = pkt_len(rest)?;
        if len == 0 {
            break;
        }
        let line = rest.get(4..len)?;
        rest = &rest[len..];
        let (cmd, c) = match line.iter().position(|&b| b == 0) {
            Some(i) => (&line[..i], &line[i + 1..]),
            None => (line, &b""[..]),
        };
        if refs.is_empty() {
            caps = String::from_utf8_lossy(c).trim().to_string();
        }
        let cmd = std::str::from_utf8(cmd).ok()?.trim_end();
        if cmd.starts_with("shallow ") || cmd.starts_with("push-cert") {
            continue;
        }
        refs.push(cmd.split(' ').nth(2)?.to_string());
    }
    (!refs.is_empty()).then_some((refs, caps))
}

/// A receive-pack answer that rejects every pushed ref with `reason` (plus a `remote:`
/// line when the client reads side-band), or `None` when the request's commands cannot be
/// read or the client asked for no report.
fn refusal_report(prefix: &[u8], reason: &str) -> Option<Vec<u8>> {
    let (refs, caps) = parse_commands(prefix)?;
    let caps: Vec<&str> = caps.split(' ').collect();
    if !caps
        .iter()
        .any(|c| *c == "report-status" || *c == "report-status-v2")
    {
        return None;
    }
    let mut report = pkt(format!("unpack {reason}\n").as_bytes());
    for r in &refs {
        let line = format!("ng {r} {reason}\n");
        if line.len() > MAX_PKT_LEN - 4 {
            // A ref name as long as a pkt-line allows: no report (the caller answers 413).
            return None;
        }
        report.extend(pkt(line.as_bytes()));
    }
    report.extend_from_slice(b"0000");
    if !caps
        .iter()
        .any(|c| *c == "side-band-64k" || *c == "side-band")
    {
        return Some(report);
    }
    let mut out = Vec::new();
    let mut note = vec![2u8];
    note.extend_from_slice(format!("{}\n", too_big_message_for(reason)).as_bytes());
    out.extend(pkt(&note));
    for part in report.chunks(900) {
        let mut data = vec![1u8];
        data.extend_from_slice(part);
        out.extend(pkt(&data));
    }
    out.extend_from_slice(b"0000");
    Some(out)
}

fn too_big_message_for(reason: &str) -> String {
    format!(
        "{reason}: nothing was stored. Push fewer or smaller files (build artifacts and \
         dependencies belong in the build, not the repository), or raise the controller's \
         --max-push-bytes"
    )
}

#[cfg(test)]
#[path = "git_prop_tests.rs"]
mod prop_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_come_from_the_repo_path() {
        assert_eq!(app_name("hello.git"), Ok("hello"));
        assert_eq!(app_name("hello"), Ok("hello"));
        assert!(app_name("Bad_Name.git")
            .unwrap_err()
            .contains("invalid app name"));
    }

    #[test]
    fn hook_script_quotes_the_path() {
        assert_eq!(
            hook_script(Path::new("/usr/bin/paas-controller")),
            "#!/bin/sh\nexec '/usr/bin/paas-controller' hook\n"
        );
        assert_eq!(
            hook_script(Path::new("/o'k/x")),
            "#!/bin/sh\nexec '/o'\\''k/x' hook\n"
        );
    }

    #[test]
    fn refusal_report_rejects_every_ref_or_gives_up() {
        let line = |s: &str| pkt(s.as_bytes());
        let z = "0".repeat(40);
        let mut req = line(&format!(
            "{z} {} refs/heads/main\0 report-status side-band-64k",
            "a".repeat(40)
        ));
        req.extend(line(&format!("{z} {} refs/heads/x", "b".repeat(40))));
        req.extend_from_slice(b"0000PACK");
        let (refs, caps) = parse_commands(&req).unwrap();
        assert_eq!(refs, ["refs/heads/main", "refs/heads/x"]);
        assert_eq!(caps, "report-status side-band-64k");
        let out = refusal_report(&req, "too big").unwrap();
        let text = String::from_utf8_lossy(&out);
        assert!(text.contains("ng refs/heads/main too big\n"), "{text}");
        assert!(text.contains("ng refs/heads/x too big\n"), "{text}");
        assert!(text.contains("--max-push-bytes"), "{text}");
        // Garbage, truncated lines or no report-status: no report (the caller sends a 413).
        for bad in [&b"zzzz"[..], b"00ff0000", b"", &req[..20]] {
            assert!(refusal_report(bad, "x").is_none(), "{bad:?}");
        }
        // Lengths are four hex digits as git writes them: `+0a8` is not one.
        let mut plus = req.clone();
        assert_eq!(plus[0], b'0');
        plus[0] = b'+';
        assert!(parse_commands(&plus).is_none());
        let no_report = line(&format!("{z} {z} refs/heads/main\0 quiet"));
        assert!(refusal_report(&no_report, "x").is_none());
    }

    #[test]
    fn feed_stops_at_the_limit() {
        let mut sink = Vec::new();
        let fed = feed(&[7u8; 100][..], &mut sink, 100);
        assert!(!fed.exceeded);
        assert_eq!(sink.len(), 100);
        let mut sink = Vec::new();
        let fed = feed(&[7u8; 101][..], &mut sink, 100);
        assert!(fed.exceeded);
        assert!(sink.len() <= 100);
    }

    #[tokio::test]
    async fn repo_and_hook_are_made_once() {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("hello.git");
        ensure_repo(&repo).await.unwrap();
        ensure_repo(&repo).await.unwrap();
        install_hook(&repo, Path::new("/bin/paas-controller")).unwrap();
        install_hook(&repo, Path::new("/bin/paas-controller")).unwrap();
        let hook = repo.join("hooks/pre-receive");
        let mode = std::fs::metadata(&hook).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755);
        assert!(std::fs::read_to_string(&hook)
            .unwrap()
            .contains("exec '/bin/paas-controller' hook"));
        let head = std::fs::read_to_string(repo.join("HEAD")).unwrap();
        assert!(head.contains("refs/heads/main"), "{head}");
    }
}
