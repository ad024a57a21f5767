//! `/v1/apps/{app}/builds`: an app's builds (paged, newest first), one build, and its
//! output as text (`?follow=true` streams it while the build runs, then ends);
//! `POST` rebuilds the last pushed commit (`{"no_cache": true}` skips the caches; see
//! `crate::builder::rebuild`) and answers the new build at once (201).

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use bytes::Bytes;
use http::{header, StatusCode};
use paas_api::Build;
use serde::Deserialize;

use super::paging::{page_of, PageQuery};
use super::ApiError;
use crate::apps::AppsError;
use crate::auth::AppAccess;
use crate::builder::live;
use crate::builder::rebuild::{self, RebuildError};
use crate::state::Controller;
use crate::store::BuildRow;

/// How often a followed log looks for new output.
const FOLLOW_POLL: Duration = Duration::from_millis(250);

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new()
        .route("/v1/apps/{app}/builds/{id}", get(get_build))
        .route("/v1/apps/{app}/builds/{id}/log", get(build_log))
}

/// `POST /v1/apps/{app}/builds` body (optional).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBuild {
    #[serde(default)]
    pub no_cache: bool,
}

/// `POST /v1/apps/{app}/builds`: rebuilds the app's last pushed commit.
pub(super) async fn create_build(
    AppAccess(caller): AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Build>), ApiError> {
    let req: CreateBuild = if body.iter().all(u8::is_ascii_whitespace) {
        CreateBuild::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| {
            ApiError::BadRequest(format!(
                "the body must be empty or {{\"no_cache\": true|false}}: {e}"
            ))
        })?
    };
    if c.store.get_app(&app).await?.is_none() {
        return Err(AppsError::NotFound(app).into());
    }
    // As a push by the caller: what a Dockerfile's FROM may pull is judged for them.
    let pusher = if caller.is_admin() && caller.user().is_none() {
        crate::builder::PUSHER_ADMIN.to_string()
    } else {
        caller.name().to_string()
    };
    let row = rebuild::start(&c, &app, pusher, req.no_cache)
        .await
        .map_err(|e| match e {
            RebuildError::Store(s) => s.into(),
            other => ApiError::Conflict(other.to_string()),
        })?;
    Ok((StatusCode::CREATED, Json(row.to_api())))
}

/// `GET /v1/apps/{app}/builds?limit=&after=`
pub(super) async fn list_builds(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    Query(q): Query<PageQuery>,
) -> Result<Response, ApiError> {
    let builds: Vec<Build> = crate::apps::builds(&c, &app, q.after.as_deref(), q.fetch()?).await?;
    page_of(builds, &q, &format!("/v1/apps/{app}/builds"), |b| {
        b.id.clone()
    })
}

async fn find(c: &Controller, app: &str, id: &str) -> Result<BuildRow, ApiError> {
    if c.store.get_app(app).await?.is_none() {
        return Err(AppsError::NotFound(app.to_string()).into());
    }
    match c.store.get_build(id).await? {
        Some(b) if b.app == app => Ok(b),
        _ => Err(ApiError::NotFound(format!(
            "{app} has no build {id}: `paas builds -a {app}` lists its builds"
        ))),
    }
}

async fn get_build(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, id)): Path<(String, String)>,
) -> Result<Json<Build>, ApiError> {
    Ok(Json(find(&c, &app, &id).await?.to_api()))
}

/// `?follow=true`
#[derive(Debug, Default, Deserialize)]
pub struct FollowQuery {
    #[serde(default)]
    pub follow: bool,
}

async fn build_log(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, id)): Path<(String, String)>,
    Query(q): Query<FollowQuery>,
) -> Result<Response, ApiError> {
    let build = find(&c, &app, &id).await?;
    let text = [(header::CONTENT_TYPE, "text/plain; charset=utf-8")];
    let running = live::read(&id, 0);
    if !q.follow || running.is_none() {
        // Finished (the store has the log) or a snapshot of the output so far.
        return Ok((text, running.unwrap_or(build.log)).into_response());
    }
    let stream =
        futures_util::stream::unfold((c, id, 0usize, false), |(c, id, sent, done)| async move {
            if done {
                return None;
            }
            loop {
                match live::read(&id, sent) {
                    Some(more) if !more.is_empty() => {
                        let n = sent + more.len();
                        return Some((Ok::<_, Infallible>(Bytes::from(more)), (c, id, n, false)));
                    }
                    Some(_) => tokio::time::sleep(FOLLOW_POLL).await,
                    None => {
                        // Ended: the rest is in the store.
                        let log = match c.store.get_build(&id).await {
                            Ok(Some(b)) => b.log,
                            _ => String::new(),
                        };
                        let rest = log.get(sent..).unwrap_or_default().to_string();
                        return Some((Ok(Bytes::from(rest)), (c, id, sent, true)));
                    }
                }
            }
        });
    Ok((
        [
            (header::CONTENT_TYPE, "text/plain; charset=utf-8"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}
