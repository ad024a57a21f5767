//! The agent's HTTP API (see docs/node-agent.md). Every route needs
//! `Authorization: Bearer <credential>`: the agent's own credential, or the bootstrap node
//! token (`--token`) until a controller stored the credential (see [`crate::register`]).
//! Every error is an [`ErrorBody`] with a stable code.
//! Handlers only parse and format: the work is in [`crate::jobs`] (and, for
//! `DELETE /v1/volumes/{name}`, [`delete_volume`] itself: an app's named volume, such as its
//! build cache, removed when the app is destroyed).

use std::sync::Arc;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use paas_api::{codes, ErrorBody, JobSpec, StopJob, VolumeSizeLimit};
use serde::Deserialize;

use crate::agent::Agent;
use crate::jobs::{self, JobError};

/// An API error: status, stable code, human message.
#[derive(Debug, thiserror::Error)]
#[error("{status} {code}: {message}")]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            message: message.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if self.status.is_server_error() {
            tracing::error!(status = %self.status, "{}", self.message);
        }
        let mut resp = (self.status, Json(ErrorBody::new(self.code, self.message))).into_response();
        if self.status == StatusCode::UNAUTHORIZED {
            resp.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        resp
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        let (status, code) = match &e {
            JobError::Invalid(_) => (StatusCode::BAD_REQUEST, codes::VALIDATION),
            JobError::Conflict { .. } | JobError::NotRunning { .. } => {
                (StatusCode::CONFLICT, codes::CONFLICT)
            }
            JobError::NotFound { .. } => (StatusCode::NOT_FOUND, codes::NOT_FOUND),
            // The registry or the input server (the controller) failed us.
            JobError::Pull { .. } | JobError::Input { .. } => {
                (StatusCode::BAD_GATEWAY, codes::UNAVAILABLE)
            }
            JobError::Spec(_) => (StatusCode::UNPROCESSABLE_ENTITY, codes::VALIDATION),
            // No uid range left here: another node may have one.
            JobError::Userns(crate::jobs::userns::UsernsError::Exhausted { .. }) => {
                (StatusCode::SERVICE_UNAVAILABLE, codes::UNAVAILABLE)
            }
            JobError::Userns(_)
            | JobError::Network(_)
            | JobError::Runtime { .. }
            | JobError::Io { .. }
            | JobError::StopTimeout { .. } => (StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL),
        };
        ApiError::new(status, code, e.to_string())
    }
}

type ApiResult<T> = Result<T, ApiError>;

/// Runs a job operation as its own task: a caller that hangs up (a controller killed
/// mid-request) must not cancel a start half-way and leave the job `starting` forever.
async fn detached<T: Send + 'static>(
    work: impl std::future::Future<Output = Result<T, JobError>> + Send + 'static,
) -> ApiResult<T> {
    match tokio::spawn(work).await {
        Ok(result) => Ok(result?),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            format!("the job operation failed: {e}"),
        )),
    }
}

/// The agent's router, every route behind the bearer-token check.
pub fn app(agent: Arc<Agent>) -> Router {
    Router::new()
        .route("/v1/health", get(health))
        .route("/v1/jobs", get(list_jobs).post(create_job))
        .route("/v1/jobs/{id}", get(get_job).delete(delete_job))
        .route("/v1/jobs/{id}/logs", get(job_logs))
        .route("/v1/jobs/{id}/stop", post(stop_job))
        .route("/v1/jobs/{id}/stats", get(job_stats))
        .route("/v1/jobs/{id}/exec", post(crate::exec::handler))
        .route("/v1/volumes/{name}/size-limit", post(volume_size_limit))
        .route(
            "/v1/volumes/{name}",
            delete(delete_volume).put(put_volume).get(get_volume),
        )
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(agent.clone(), auth))
        .with_state(agent)
}

async fn auth(State(agent): State<Arc<Agent>>, req: Request, next: Next) -> Response {
    let presented = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if agent.credential.accepts(token, &agent.config.token) => next.run(req).await,
        Some(_) => {
            let message = if agent.credential.is_registered() {
                "wrong token in the Authorization header: this agent is registered and \
                 accepts only its own credential (<state-dir>/api-token), which its controller \
                 holds; node tokens are refused"
            } else {
                "wrong node token in the Authorization header"
            };
            tracing::warn!(path = %req.uri().path(), "refused an API call: {message}");
            ApiError::new(StatusCode::UNAUTHORIZED, codes::UNAUTHORIZED, message).into_response()
        }
        None => ApiError::new(
            StatusCode::UNAUTHORIZED,
            codes::UNAUTHORIZED,
            "missing `Authorization: Bearer <node token>` header",
        )
        .into_response(),
    }
}

async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        codes::NOT_FOUND,
        format!("no route {} {}", req.method(), req.uri().path()),
    )
}

async fn health(State(agent): State<Arc<Agent>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "name": agent.config.node_name }))
}

async fn list_jobs(State(agent): State<Arc<Agent>>) -> Json<Vec<paas_api::JobStatus>> {
    Json(agent.jobs.statuses())
}

/// Parses a JSON body into `T`, with an [`ErrorBody`] (not axum's plain text) on failure.
fn parse_body<T: serde::de::DeserializeOwned>(body: &[u8], what: &str) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::VALIDATION,
            format!("the body is not a valid {what}: {e}"),
        )
    })
}

async fn create_job(State(agent): State<Arc<Agent>>, body: Bytes) -> ApiResult<Response> {
    let spec: JobSpec = parse_body(&body, "job spec (api::JobSpec JSON)")?;
    let status = detached(async move { jobs::create(&agent, spec).await }).await?;
    Ok((StatusCode::CREATED, Json(status)).into_response())
}

async fn get_job(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
) -> ApiResult<Json<paas_api::JobStatus>> {
    Ok(Json(agent.jobs.get(&id)?.status()))
}

async fn stop_job(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<paas_api::JobStatus>> {
    let req: StopJob = if body.iter().all(u8::is_ascii_whitespace) {
        StopJob::default()
    } else {
        parse_body(&body, "stop request (api::StopJob JSON)")?
    };
    let grace = Duration::from_secs(req.grace_seconds.unwrap_or(10));
    Ok(Json(
        detached(async move { jobs::stop(&agent, &id, grace).await }).await?,
    ))
}

async fn delete_job(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    detached(async move { jobs::delete(&agent, &id).await }).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct LogsQuery {
    #[serde(default)]
    follow: Option<String>,
    /// `true`: `<timestamp> <stdout|stderr> <text>` lines instead of the raw output.
    #[serde(default)]
    timestamps: Option<String>,
    /// Only the last N records.
    #[serde(default)]
    lines: Option<String>,
    /// Only records stamped after this timestamp (one of the timestamps this API sent).
    #[serde(default)]
    since: Option<String>,
}

fn flag(name: &str, value: Option<&str>) -> ApiResult<bool> {
    match value {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") | Some("") => Ok(true),
        Some(other) => Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::VALIDATION,
            format!("{name}={other:?}: expected true or false"),
        )),
    }
}

async fn job_logs(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    Query(q): Query<LogsQuery>,
) -> ApiResult<Response> {
    let job = agent.jobs.get(&id)?;
    let lines = match q.lines.as_deref() {
        None => None,
        Some(n) => Some(n.parse::<usize>().map_err(|_| {
            ApiError::new(
                StatusCode::BAD_REQUEST,
                codes::VALIDATION,
                format!("lines={n:?}: expected a number of lines"),
            )
        })?),
    };
    let req = jobs::logs::LogRequest {
        follow: flag("follow", q.follow.as_deref())?,
        format: if flag("timestamps", q.timestamps.as_deref())? {
            jobs::logs::Format::Timestamped
        } else {
            jobs::logs::Format::Raw
        },
        lines,
        since: q.since.filter(|s| !s.is_empty()),
    };
    let stream = jobs::logs::stream(
        job.dir().to_path_buf(),
        job.subscribe(),
        Some(job.subscribe_appends()),
        req,
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

async fn job_stats(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
) -> ApiResult<Json<paas_api::JobStats>> {
    Ok(Json(crate::stats::job(&agent, &id).await?))
}

async fn volume_size_limit(
    State(agent): State<Arc<Agent>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<paas_api::VolumeUsage>> {
    let req: VolumeSizeLimit = parse_body(&body, "size limit (api::VolumeSizeLimit JSON)")?;
    crate::volumes::size_limit(&agent, &name, req.max_bytes)
        .await
        .map(Json)
        .map_err(volume_error)
}

fn volume_error(e: crate::volumes::VolumeError) -> ApiError {
    use crate::volumes::VolumeError;
    let (status, code) = match &e {
        VolumeError::InvalidName(_) | VolumeError::BadSize(_) => {
            (StatusCode::BAD_REQUEST, codes::VALIDATION)
        }
        VolumeError::InUse { .. } | VolumeError::Exists { .. } => {
            (StatusCode::CONFLICT, codes::CONFLICT)
        }
        VolumeError::NotFound(_) => (StatusCode::NOT_FOUND, codes::NOT_FOUND),
        VolumeError::Io { .. } => (StatusCode::INTERNAL_SERVER_ERROR, codes::INTERNAL),
    };
    ApiError::new(status, code, e.to_string())
}

/// `PUT /v1/volumes/{name}` `{"size_bytes": N}`: makes a sized volume (or mounts the one
/// that exists with that size); `409` when one exists with another size.
async fn put_volume(
    State(agent): State<Arc<Agent>>,
    Path(name): Path<String>,
    body: Bytes,
) -> ApiResult<Json<paas_api::SizedVolume>> {
    let req: paas_api::CreateSizedVolume =
        parse_body(&body, "volume (api::CreateSizedVolume JSON)")?;
    crate::volumes::create_sized(&agent, &name, req.size_bytes)
        .await
        .map(Json)
        .map_err(volume_error)
}

/// `GET /v1/volumes/{name}`: size and use of a sized volume; `404` when there is none.
async fn get_volume(
    State(agent): State<Arc<Agent>>,
    Path(name): Path<String>,
) -> ApiResult<Json<paas_api::SizedVolume>> {
    crate::volumes::sized(&agent, &name)
        .await
        .map(Json)
        .map_err(volume_error)
}

/// `DELETE /v1/volumes/{name}`: removes the named volume `<state-dir>/volumes/<name>` and
/// everything in it (the controller calls it on every node when an app is destroyed, for
/// its build cache). `204`; `404` when this node has no such volume; `409` while a job
/// that has not finished mounts it; `400` for a name that is not a volume name. The
/// directory is first renamed away (one step: no job can mount a half-deleted volume),
/// then removed.
async fn delete_volume(
    State(agent): State<Arc<Agent>>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    if !crate::volumes::valid_name(&name) {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::VALIDATION,
            format!(
                "{name:?} is not a volume name: lowercase letters, digits, `_`, `.` and `-`, \
                 starting with a letter or digit"
            ),
        ));
    }
    let users: Vec<String> = agent
        .jobs
        .all()
        .iter()
        .filter(|j| j.spec.volumes.iter().any(|v| v.name == name))
        .filter(|j| !jobs::is_final(j.status().state))
        .map(|j| j.spec.id.clone())
        .collect();
    if !users.is_empty() {
        return Err(ApiError::new(
            StatusCode::CONFLICT,
            codes::CONFLICT,
            format!(
                "volume {name} is mounted by running job(s) {}: stop them first",
                users.join(", ")
            ),
        ));
    }
    let state_dir = agent.config.state_dir.clone();
    let name2 = name.clone();
    let had_image =
        tokio::task::spawn_blocking(move || crate::volumes::remove_image(&state_dir, &name2))
            .await
            .map_err(|e| {
                ApiError::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    codes::INTERNAL,
                    format!("removing volume {name}: {e}"),
                )
            })?
            .map_err(volume_error)?;
    let volumes = agent.config.state_dir.join("volumes");
    let dir = volumes.join(&name);
    let doomed = volumes.join(format!(".deleting-{name}-{}", crate::util::unique()));
    match std::fs::rename(&dir, &doomed) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && had_image => {
            return Ok(StatusCode::NO_CONTENT)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::new(
                StatusCode::NOT_FOUND,
                codes::NOT_FOUND,
                format!("this node has no volume {name}"),
            ))
        }
        Err(e) => {
            return Err(ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                codes::INTERNAL,
                format!("moving volume {} away: {e}", dir.display()),
            ))
        }
    }
    let removed = tokio::task::spawn_blocking(move || std::fs::remove_dir_all(&doomed)).await;
    match removed {
        Ok(Ok(())) => {
            tracing::info!(volume = %name, "volume deleted");
            Ok(StatusCode::NO_CONTENT)
        }
        Ok(Err(e)) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            format!("removing volume {name}: {e}"),
        )),
        Err(e) => Err(ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            codes::INTERNAL,
            format!("removing volume {name}: {e}"),
        )),
    }
}
