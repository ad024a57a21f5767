//! Commands inside jobs over the exec stream (`paas_api::exec`), proxied byte for byte to
//! the job's node agent (`POST /v1/jobs/{id}/exec` there). Collaborators and admins; the caller sends
//! `Connection: Upgrade` + `Upgrade: paas-exec` and gets `101` once the agent switched too,
//! so every refusal (no app, no such job, job not up, agent down) is an ordinary error.
//!
//! * `POST /v1/apps/{app}/jobs/{id}/exec` — in that job (`paas ps:exec --job ID`);
//! * `POST /v1/apps/{app}/exec` — in the app's first up `web` job, else its first up job;
//! * `POST /v1/apps/{app}/run/attach` — `paas run` with stdin/TTY: a one-off job of the
//!   current release whose main process only waits, the command runs in it through exec,
//!   and the job is stopped and removed when the stream ends. The 101 carries
//!   `Paas-Job` and `Paas-Node` headers.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::response::Response;
use axum::routing::post;
use axum::Router;
use http::{header, HeaderValue, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;

use super::ApiError;
use crate::auth::AppAccess;
use crate::state::Controller;
use crate::store::job_state;

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new()
        .route("/v1/apps/{app}/jobs/{id}/exec", post(exec_job))
        .route("/v1/apps/{app}/exec", post(exec_app))
        .route("/v1/apps/{app}/run/attach", post(run_attach))
}

/// The main process of an attached one-off job: waits until stopped (SIGTERM ends it at
/// once), while the command runs beside it through exec.
const HOLDER: &str = "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done";

pub(super) fn check_upgrade(req: &Request) -> Result<hyper::upgrade::OnUpgrade, ApiError> {
    let asks = req
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(paas_api::exec::UPGRADE));
    if !asks {
        return Err(ApiError::BadRequest(format!(
            "exec is a stream: send `Connection: Upgrade` and `Upgrade: {}` (paas ps:exec \
             does this)",
            paas_api::exec::UPGRADE
        )));
    }
    req.extensions()
        .get::<hyper::upgrade::OnUpgrade>()
        .cloned()
        .ok_or_else(|| ApiError::BadRequest("this connection cannot be upgraded".into()))
}

pub(super) fn switching(extra: &[(&'static str, String)]) -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let h = resp.headers_mut();
    h.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    h.insert(
        header::UPGRADE,
        HeaderValue::from_static(paas_api::exec::UPGRADE),
    );
    for (name, value) in extra {
        if let Ok(v) = HeaderValue::from_str(value) {
            h.insert(*name, v);
        }
    }
    resp
}

/// Pipes the caller's upgraded connection and the agent's. When the agent's side ends
/// (after its EXIT frame), `then` runs before the caller's side is closed, so a caller that
/// reads to the end knows the cleanup is done.
async fn pipe<F, Fut>(
    client: hyper::upgrade::OnUpgrade,
    agent: reqwest::Upgraded,
    job: &str,
    then: F,
) where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let up = match client.await {
        Ok(up) => TokioIo::new(up),
        Err(e) => {
            tracing::warn!(%job, "exec: the caller's upgrade failed: {e}");
            then().await;
            return;
        }
    };
    let (mut client_r, mut client_w) = tokio::io::split(up);
    let (mut agent_r, mut agent_w) = tokio::io::split(agent);
    let input = tokio::spawn(async move {
        let _ = tokio::io::copy(&mut client_r, &mut agent_w).await;
        let _ = agent_w.shutdown().await;
    });
    if let Err(e) = tokio::io::copy(&mut agent_r, &mut client_w).await {
        tracing::debug!(%job, "exec stream ended: {e}");
    }
    then().await;
    let _ = client_w.shutdown().await;
    input.abort();
}

/// The node URL of an up job of `app`: the one named, else the first `web` one, else the
/// first one.
async fn find_job(
    c: &Controller,
    app: &str,
    id: Option<&str>,
) -> Result<(String, String), ApiError> {
    if c.store.get_app(app).await?.is_none() {
        return Err(ApiError::NotFound(format!("no app named {app}")));
    }
    let mut jobs: Vec<_> = c
        .store
        .active_jobs()
        .await?
        .into_iter()
        .filter(|j| j.app == app)
        .collect();
    jobs.sort_by(|a, b| {
        (a.process_type != "web", &a.process_type, &a.id).cmp(&(
            b.process_type != "web",
            &b.process_type,
            &b.id,
        ))
    });
    let job = match id {
        Some(id) => {
            let j = jobs.into_iter().find(|j| j.id == id).ok_or_else(|| {
                ApiError::NotFound(format!(
                    "no job {id} of {app}: see `paas ps -a {app}` for its jobs"
                ))
            })?;
            if j.state != job_state::UP {
                return Err(ApiError::Conflict(format!(
                    "job {id} is {}, not up: exec needs a running job",
                    j.state
                )));
            }
            j
        }
        None => jobs
            .into_iter()
            .find(|j| j.state == job_state::UP)
            .ok_or_else(|| {
                ApiError::Conflict(format!(
                    "{app} has no running job: scale it up (paas ps:scale -a {app} web=1) or \
                     use paas run"
                ))
            })?,
    };
    let url = c
        .store
        .list_nodes()
        .await?
        .into_iter()
        .find(|n| n.name == job.node)
        .map(|n| n.url)
        .ok_or_else(|| {
            ApiError::Unavailable(format!(
                "the node {} of job {} is unknown",
                job.node, job.id
            ))
        })?;
    Ok((job.id, url))
}

async fn proxy(
    c: &Controller,
    app: &str,
    id: Option<&str>,
    req: Request,
) -> Result<Response, ApiError> {
    let client = check_upgrade(&req)?;
    let (job, url) = find_job(c, app, id).await?;
    let agent = c
        .agents
        .exec(&url, &job)
        .await
        .map_err(|e| ApiError::Unavailable(format!("exec in {job}: {}", e.user_message())))?;
    tracing::info!(%app, %job, "exec");
    let job2 = job.clone();
    tokio::spawn(async move { pipe(client, agent, &job2, || async {}).await });
    Ok(switching(&[("paas-job", job)]))
}

async fn exec_job(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, id)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    proxy(&c, &app, Some(&id), req).await
}

async fn exec_app(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    proxy(&c, &app, None, req).await
}

async fn run_attach(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    req: Request,
) -> Result<Response, ApiError> {
    let client = check_upgrade(&req)?;
    // The waiting main process is a shell loop: an image without one (`FROM scratch`)
    // is refused with `no_shell`, and the CLI runs the command as the job itself.
    if let Some(release) = current_release(&c, &app).await? {
        if !crate::builder::dockerfile::release_has_shell(&c, &release).await {
            return Err(ApiError::NoShell(format!(
                "{app}'s image has no /bin/sh, so a command cannot be attached to a terminal \
                 there: `paas run` runs it without stdin instead (POST /v1/apps/{app}/run)"
            )));
        }
    }
    let holder = vec!["/bin/sh".into(), "-c".into(), HOLDER.into()];
    let (id, node, url) = crate::scheduler::one_off::start_one_off(
        &c,
        &app,
        holder,
        crate::scheduler::labels::KIND_RUN,
    )
    .await?;
    let remove = {
        let c = c.clone();
        let (id, url) = (id.clone(), url.clone());
        move || async move {
            if let Err(e) = c.agents.stop_job(&url, &id, 2).await {
                tracing::warn!(job = %id, "stopping the one-off job: {}", e.user_message());
            }
            if let Err(e) = c.agents.delete_job(&url, &id).await {
                tracing::warn!(job = %id, "removing the one-off job: {}", e.user_message());
            }
            c.runs.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
        }
    };
    let agent = match c.agents.exec(&url, &id).await {
        Ok(a) => a,
        Err(e) => {
            remove.clone()().await;
            return Err(ApiError::Unavailable(format!(
                "attaching to the one-off job: {}",
                e.user_message()
            )));
        }
    };
    let job = id.clone();
    tokio::spawn(async move {
        pipe(client, agent, &job, remove).await;
        tracing::info!(%job, "one-off job (attached) removed");
    });
    Ok(switching(&[("paas-job", id), ("paas-node", node)]))
}

/// The app's current release, if it has one.
async fn current_release(
    c: &Controller,
    app: &str,
) -> Result<Option<crate::store::ReleaseRow>, ApiError> {
    let Some(version) = c.store.get_app(app).await?.and_then(|a| a.current_release) else {
        return Ok(None);
    };
    Ok(c.store.get_release(app, version).await?)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use http::{header, Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use crate::config::Settings;
    use crate::state::Controller;

    async fn send(
        c: &Arc<Controller>,
        path: &str,
        auth: bool,
        upgrade: bool,
    ) -> (StatusCode, String) {
        let mut req = Request::post(path);
        if auth {
            req = req.header(
                header::AUTHORIZATION,
                format!("Bearer {}", c.tokens.admin()),
            );
        }
        if upgrade {
            req = req
                .header(header::CONNECTION, "Upgrade")
                .header(header::UPGRADE, paas_api::exec::UPGRADE);
        }
        let resp = crate::http::app(Arc::clone(c))
            .oneshot(req.body(Body::empty()).unwrap())
            .await
            .unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn exec_routes_refuse_before_switching() {
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::new(
            dir.path().to_path_buf(),
            "127.0.0.1:8080".parse().unwrap(),
            8000,
            "localhost",
        )
        .unwrap();
        let c = Controller::open(settings).await.unwrap();
        // No token: 401; no upgrade headers: 400 naming them.
        let (s, _) = send(&c, "/v1/apps/nosuch/exec", false, true).await;
        assert_eq!(s, StatusCode::UNAUTHORIZED);
        let (s, body) = send(&c, "/v1/apps/nosuch/exec", true, false).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains("Upgrade: paas-exec"), "{body}");
        // oneshot gives no upgradable connection: still refused with a message, not a hang.
        let (s, body) = send(&c, "/v1/apps/nosuch/jobs/j1/exec", true, true).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains("cannot be upgraded"), "{body}");
    }
}
