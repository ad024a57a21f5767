//! Builds: a pushed commit → a build job on a node → an image in the registry → release vN
//! → deployed.
//!
//! The git hook (`paas-controller hook`) POSTs `git archive` of the pushed commit to
//! `/internal/hooks/pre-receive` ([`hook_endpoint`]). The source is stored at
//! `DATA/builds/<id>/source.tar`, the build is recorded, and the response streams the
//! build's output line by line (the hook prints it, git shows it as `remote:` lines). The
//! last line is `paas-result: ok` or `paas-result: failed`.
//!
//! What a build may use is bounded ([`limits`]): the source is counted while it streams in
//! and refused past `--max-source-bytes` (the build is recorded `failed`, nothing stays in
//! `builds/`); the build job gets a CPU quota and is stopped past `--build-timeout`; a git
//! client that goes away stops it too (the hook dies with receive-pack, and the closed
//! output stream is noticed at once, not at the next line); the app's cache volume is
//! emptied when a build leaves it over `--max-cache-bytes` ([`cache`]). Every build's
//! directory is removed when it ends, whatever the outcome.
//!
//! Submodules: `job` (the build job's spec, running it, waiting for the deploy),
//! `release` (from the built image to a serving release: release phase, roll-out, auto
//! rollback), `procfile` (process types), `layer` (reading the release files from the app
//! layer), `buildpacks` (the tarballs a build job unpacks), `custom` (third-party
//! buildpacks from a git URL or a path), `stack` (which stack an app builds on), `limits`,
//! `cache` and `tar_dir`.

pub mod app_json;
pub mod buildpacks;
mod cache;
pub mod custom;
pub mod dockerfile;
pub mod healthcheck;
mod job;
pub mod jsonc;
mod layer;
pub mod leftovers;
pub mod limits;
pub mod live;
pub mod procfile;
pub mod rebuild;
mod release;
mod release_phase;
pub mod stack;
mod tar_dir;

pub use job::{build_job_spec, cache_volume, BuildInput};
pub(crate) use release::roll_out;
use release::{build_and_release, release_image, ImageRelease};

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use http::{header, HeaderMap, StatusCode};
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::auth::constant_time_eq;

use crate::state::Controller;
use crate::store::StoreError;
use crate::util::random_hex;

/// The hook's environment variable that carries `--max-source-bytes` (so git archive is
/// cut there and never streams more than the controller reads).
pub const ENV_MAX_SOURCE_BYTES: &str = "PAAS_MAX_SOURCE_BYTES";
/// Headers the hook sends.
pub const HEADER_APP: &str = "x-paas-app";
pub const HEADER_REV: &str = "x-paas-rev";
pub const HEADER_REF: &str = "x-paas-ref";
pub const HEADER_TOKEN: &str = "x-paas-hook-token";
/// Who pushed (the user's name, or [`PUSHER_ADMIN`]): what a Dockerfile's FROM may pull.
pub const HEADER_PUSHER: &str = "x-paas-pusher";
/// The pusher name of the admin token.
pub const PUSHER_ADMIN: &str = "~admin";
/// The prefix of the last line of the build output.
pub const RESULT_PREFIX: &str = "paas-result: ";

/// How long a new release may take to serve.
const DEPLOY_TIMEOUT: Duration = Duration::from_secs(60);
/// SIGTERM to SIGKILL for a build job that timed out or whose pusher left.
const ABANDONED_GRACE_SECS: u64 = 1;

/// Why a build (or its deploy) failed. Each message is shown to the person pushing.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error(
        "no node is up to run the build: check `GET /v1/nodes` and the agent's log, then \
         push again"
    )]
    NoNode,
    #[error("the build could not start: {0}")]
    Start(String),
    #[error("lost track of the build job: {0}")]
    Lost(String),
    #[error(
        "Build failed ({reason}); the output above says why. The running release is unchanged."
    )]
    Failed { reason: String },
    #[error("the build finished but pushed no app layer: the node agent's log says why")]
    NoLayer,
    #[error("making the app image: {0}")]
    Image(#[from] crate::registry::Error),
    #[error("reading the built app: {0}")]
    Layer(#[from] layer::LayerError),
    #[error("{0}")]
    ProcessTypes(#[from] procfile::ProcfileError),
    #[error("{0}")]
    Stack(#[from] stack::StackError),
    #[error("{0}")]
    Buildpack(#[from] custom::CustomError),
    #[error("saving the release: {0}")]
    Store(#[from] StoreError),
    #[error(
        "v{version} did not start serving: {detail}. The previous release keeps serving; \
         fix the app and push again."
    )]
    NotServing { version: u32, detail: String },
    #[error("{0}")]
    AppJson(#[from] app_json::AppJsonError),
    #[error("{0}\n !     The running release is unchanged: fix the Dockerfile (docs/builds.md lists what paas's builder supports) and push again.")]
    Dockerfile(String),
    #[error(
        "app.json requires config vars that are not set: {}. Set them with `paas config:set \
         {}` and push again.",
        .0.join(", "),
        .0.iter().map(|k| format!("{}=…", k.split(' ').next().unwrap_or(k))).collect::<Vec<_>>().join(" ")
    )]
    MissingEnv(Vec<String>),
    #[error(
        "app.json's {script} failed ({reason}); its output is above. The release did not go \
         live and the previous release keeps serving."
    )]
    Predeploy {
        script: &'static str,
        reason: String,
    },
    #[error("v{version} is live, but app.json's {script} failed ({reason}); its output is above.")]
    Postdeploy {
        version: u32,
        script: &'static str,
        reason: String,
    },
    #[error(
        "the release command failed ({0}); its output is above. The release did not go \
         live and the previous release keeps serving."
    )]
    ReleasePhase(String),
    #[error("the client disconnected: the build was stopped and nothing was released")]
    ClientGone,
    #[error(
        "build exceeded the {} limit (the controller's --build-timeout): it was stopped. \
         The running release is unchanged; make the build faster (cache what it downloads \
         in $CACHE_DIR) or ask the operator to raise --build-timeout.",
        limits::human_duration(*.0)
    )]
    TimedOut(Duration),
}

/// Why the pushed source was not stored.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error(
        "the pushed source is bigger than {}, the most this paas unpacks for one build (the \
         controller's --max-source-bytes, {max} bytes): the push was refused and nothing was \
         stored. Keep build artifacts, dependencies and data files out of the repository \
         (.gitignore), or ask the operator to raise --max-source-bytes.",
        limits::human_bytes(*max)
    )]
    TooBig { max: u64 },
    #[error("storing the pushed source: {0}")]
    Io(#[from] std::io::Error),
}

/// The build output: sent to the hook line by line and kept for the build's log.
pub struct Output {
    tx: mpsc::Sender<Bytes>,
    /// The build id whose live output (see [`live`]) gets every line.
    live: Option<String>,
    log: String,
    gone: bool,
    /// When the output began: step lines are logged with the time since.
    started: std::time::Instant,
}

impl Output {
    pub(crate) fn new(tx: mpsc::Sender<Bytes>) -> Output {
        Output {
            tx,
            live: None,
            log: String::new(),
            gone: false,
            started: std::time::Instant::now(),
        }
    }

    /// Sends one or more lines (a newline is added to each).
    pub async fn line(&mut self, text: impl AsRef<str>) {
        for line in text.as_ref().split('\n') {
            self.log.push_str(line);
            self.log.push('\n');
            if let Some(id) = &self.live {
                live::append(id, &format!("{line}\n"));
                // The push's steps in the controller log, timed: where a slow push waits.
                if line.starts_with("-----> ") || line.starts_with(" !     ") {
                    let ms = self.started.elapsed().as_millis() as u64;
                    tracing::info!(build = %id, ms, "step: {}", line.trim_start_matches("-----> "));
                }
            }
            self.send(format!("{line}\n")).await;
        }
    }

    async fn send(&mut self, text: String) {
        if !self.gone && self.tx.send(Bytes::from(text)).await.is_err() {
            self.gone = true;
        }
    }

    /// True once the client stopped reading.
    pub fn gone(&self) -> bool {
        self.gone || self.tx.is_closed()
    }

    /// Resolves when the client stops reading (its connection closed), even while no
    /// line is sent; owns what it needs, so it can be raced against work on `self`.
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let tx = self.tx.clone();
        async move { tx.closed().await }
    }
}

fn text_error(status: StatusCode, message: &str) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!(" !     {message}\n{RESULT_PREFIX}failed\n"),
    )
        .into_response()
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// `POST /internal/hooks/pre-receive`: stores the source, records the build and streams
/// its output while it runs.
pub async fn hook_endpoint(
    State(c): State<Arc<Controller>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let token = header_str(&headers, HEADER_TOKEN);
    if !constant_time_eq(token.as_bytes(), c.hook_secret.as_bytes()) {
        return text_error(
            StatusCode::UNAUTHORIZED,
            "the hook's token is not this controller's: push again (the controller restarted?)",
        );
    }
    let app = header_str(&headers, HEADER_APP).to_string();
    if let Err(message) = paas_api::names::validate_app_name(&app) {
        return text_error(StatusCode::BAD_REQUEST, &message);
    }
    let rev = header_str(&headers, HEADER_REV).to_ascii_lowercase();
    if !(rev.len() == 40 || rev.len() == 64) || !rev.bytes().all(|b| b.is_ascii_hexdigit()) {
        return text_error(StatusCode::BAD_REQUEST, "the hook sent no valid commit id");
    }
    match c.store.get_app(&app).await {
        Ok(Some(_)) => {}
        Ok(None) => return text_error(StatusCode::NOT_FOUND, &format!("no app named {app}")),
        Err(e) => {
            tracing::error!(%app, "hook: {e}");
            return text_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the controller's store failed",
            );
        }
    }
    let id = random_hex(8);
    if let Err(e) = c.store.create_build(&id, &app, Some(&rev)).await {
        tracing::error!(%app, build = %id, "recording the build: {e}");
        return text_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the controller's store failed",
        );
    }
    // Until the build task owns it: a hook that goes away mid-upload cancels this
    // handler, and the guard then fails the build and removes its directory.
    let mut guard = UploadGuard {
        c: Arc::clone(&c),
        id: Some(id.clone()),
    };
    let max = c.settings.build_limits.max_source_bytes;
    if let Err(e) = save_source(&c, &id, body, max).await {
        guard.id = None;
        let _ = tokio::fs::remove_dir_all(c.settings.build_dir(&id)).await;
        let (status, message) = match &e {
            SourceError::TooBig { .. } => {
                tracing::warn!(%app, build = %id, max, "pushed source over --max-source-bytes: refused while it streamed");
                (StatusCode::PAYLOAD_TOO_LARGE, e.to_string())
            }
            SourceError::Io(_) => {
                tracing::error!(%app, build = %id, "{e}");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "the controller could not store the pushed source; its log has the details"
                        .to_string(),
                )
            }
        };
        let log = format!(" !     {message}\n");
        if let Err(e) = c.store.finish_build(&id, "failed", None, &log).await {
            tracing::error!(build = %id, "recording the build's end: {e}");
        }
        return text_error(status, &message);
    }
    guard.id = None;
    tracing::info!(%app, build = %id, %rev, git_ref = header_str(&headers, HEADER_REF), "build started");
    let (tx, rx) = mpsc::channel::<Bytes>(256);
    let pusher = header_str(&headers, HEADER_PUSHER);
    let input = BuildInput {
        id,
        app,
        rev,
        stack: String::new(),
        pusher: (!pusher.is_empty()).then(|| pusher.to_string()),
        no_cache: false,
    };
    tokio::spawn(run(c, input, Output::new(tx)));
    let stream = ReceiverStream::new(rx).map(Ok::<_, Infallible>);
    (
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

/// Fails a build whose source upload was abandoned (the handler dropped mid-stream) and
/// removes its directory, unless `id` was taken back.
struct UploadGuard {
    c: Arc<Controller>,
    id: Option<String>,
}

impl Drop for UploadGuard {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let c = Arc::clone(&self.c);
        tokio::spawn(async move {
            tracing::info!(build = %id, "the hook went away while sending the source");
            let _ = tokio::fs::remove_dir_all(c.settings.build_dir(&id)).await;
            let log = format!(" !     {}\n", BuildError::ClientGone);
            if let Err(e) = c.store.finish_build(&id, "failed", None, &log).await {
                tracing::error!(build = %id, "recording the build's end: {e}");
            }
        });
    }
}
/// Streams the pushed source into `builds/<id>/source.tar`, refusing it as soon as more
/// than `max` bytes arrived (never more than `max` is written). The caller removes the
/// directory on error.
async fn save_source(c: &Controller, id: &str, body: Body, max: u64) -> Result<(), SourceError> {
    let dir = c.settings.build_dir(id);
    tokio::fs::create_dir_all(&dir).await?;
    let mut file = tokio::fs::File::create(dir.join("source.tar")).await?;
    let mut stream = body.into_data_stream();
    let mut total: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(std::io::Error::other)?;
        total = total.saturating_add(chunk.len() as u64);
        if total > max {
            return Err(SourceError::TooBig { max });
        }
        file.write_all(&chunk).await?;
        leftovers::kill_point("receiving");
    }
    file.sync_all().await?;
    Ok(())
}

/// One build from start to `paas-result`.
async fn run(c: Arc<Controller>, input: BuildInput, mut out: Output) {
    live::begin(&input.id);
    out.live = Some(input.id.clone());
    let lock = c.build_lock(&input.app);
    let _guard = match Arc::clone(&lock).try_lock_owned() {
        Ok(guard) => guard,
        Err(_) => {
            out.line(format!(
                "-----> Waiting for the running build of {} to finish",
                input.app
            ))
            .await;
            lock.lock_owned().await
        }
    };
    c.set_building(&input.app, true);
    let result = if out.gone() {
        // The client left while the build waited for the app's previous one.
        Err(BuildError::ClientGone)
    } else {
        build_and_release(&c, &input, &mut out).await
    };
    c.set_building(&input.app, false);
    let (status, release) = match &result {
        Ok(version) => ("succeeded", Some(*version)),
        Err(BuildError::NotServing { version, .. }) => ("failed", Some(*version)),
        Err(BuildError::Postdeploy { version, .. }) => ("failed", Some(*version)),
        Err(_) => ("failed", None),
    };
    if let Err(e) = &result {
        tracing::info!(app = %input.app, build = %input.id, "build failed: {e}");
        out.line(format!(" !     {e}")).await;
    } else {
        tracing::info!(app = %input.app, build = %input.id, ?release, "build deployed");
    }
    if let Err(e) = c
        .store
        .finish_build(&input.id, status, release, &out.log)
        .await
    {
        tracing::error!(build = %input.id, "recording the build's end: {e}");
    }
    live::end(&input.id);
    if let Err(e) = tokio::fs::remove_dir_all(c.settings.build_dir(&input.id)).await {
        tracing::warn!(build = %input.id, "removing the build's directory: {e}");
    }
    let verdict = if result.is_ok() { "ok" } else { "failed" };
    out.send(format!("{RESULT_PREFIX}{verdict}\n")).await;
}
