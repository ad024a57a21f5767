//! `/internal/`: what agents fetch for a build job (node token) and the git hook's
//! endpoint (the per-controller hook secret; see `build`).
//!
//! * `GET /internal/builds/{id}/source.tar` — the pushed commit (`git archive`)
//! * `GET /internal/builds/{id}/env.tar` — one file per config var of the build's app
//! * `GET /internal/builds/{id}/buildpack.tar` — the app's third-party buildpack, if set
//! * `GET /internal/buildpacks.tar` — the buildpacks
//! * `POST /internal/hooks/pre-receive` — runs a build, streams its output

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use http::header;
use tokio_util::io::ReaderStream;

use super::{ApiError, NodeAuth};
use crate::builder::{self, buildpacks};
use crate::state::Controller;

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new()
        .route("/internal/builds/{id}/source.tar", get(source_tar))
        .route("/internal/builds/{id}/env.tar", get(env_tar))
        .route("/internal/builds/{id}/buildpack.tar", get(buildpack_tar))
        .route("/internal/buildpacks.tar", get(buildpacks_tar))
        .route(
            "/internal/hooks/pre-receive",
            post(builder::hook_endpoint).layer(DefaultBodyLimit::disable()),
        )
}

fn tar_response(body: Body) -> Response {
    ([(header::CONTENT_TYPE, "application/x-tar")], body).into_response()
}

/// Build ids are lower-case hex; anything else never reaches a path.
fn check_build_id(id: &str) -> Result<(), ApiError> {
    if !id.is_empty() && id.len() <= 64 && id.bytes().all(|b| b.is_ascii_hexdigit()) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("no build {id:?}")))
    }
}

async fn source_tar(
    _: NodeAuth,
    State(c): State<Arc<Controller>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    build_file(&c, &id, "source.tar").await
}

async fn buildpack_tar(
    _: NodeAuth,
    State(c): State<Arc<Controller>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    build_file(&c, &id, "buildpack.tar").await
}

/// A file the build's directory holds, streamed.
async fn build_file(c: &Controller, id: &str, name: &str) -> Result<Response, ApiError> {
    check_build_id(id)?;
    let path = c.settings.build_dir(id).join(name);
    let file = match tokio::fs::File::open(&path).await {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ApiError::NotFound(format!(
                "build {id} has no {name} (it is finished or unknown)"
            )))
        }
        Err(e) => {
            return Err(ApiError::internal(format!(
                "opening {}: {e}",
                path.display()
            )))
        }
    };
    Ok(tar_response(Body::from_stream(ReaderStream::new(file))))
}

async fn env_tar(
    _: NodeAuth,
    State(c): State<Arc<Controller>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    check_build_id(&id)?;
    let Some(build) = c.store.get_build(&id).await? else {
        return Err(ApiError::NotFound(format!("no build {id}")));
    };
    let vars = c.store.config_vars(&build.app).await?;
    let tar = buildpacks::env_tar(&vars).map_err(ApiError::internal)?;
    Ok(tar_response(Body::from(tar)))
}

async fn buildpacks_tar(
    _: NodeAuth,
    State(c): State<Arc<Controller>>,
) -> Result<Response, ApiError> {
    let tar = match &c.settings.buildpacks_dir {
        Some(dir) => {
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || buildpacks::tar_dir(&dir))
                .await
                .map_err(ApiError::internal)?
                .map_err(ApiError::internal)?
        }
        None => buildpacks::EMBEDDED.to_vec(),
    };
    Ok(tar_response(Body::from(tar)))
}
