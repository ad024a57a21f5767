//! `GET /v1/apps/{app}/cron`: the `cron` entries of the app's current release's app.json
//! with their next run (UTC), for `paas cron`. Members and admins of the app only
//! ([`AppAccess`]); the loop that runs them is [`crate::cron::runner`].

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};

use super::ApiError;
use crate::auth::AppAccess;
use crate::cron::runner::{listing, now_secs, CronListing};
use crate::state::Controller;

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new().route("/v1/apps/{app}/cron", get(list))
}

async fn list(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
) -> Result<Json<Vec<CronListing>>, ApiError> {
    let Some(row) = c.store.get_app(&app).await? else {
        return Err(ApiError::NotFound(format!("no app named {app}")));
    };
    let text = match row.current_release {
        Some(v) => c.store.release_app_json(&app, v).await?,
        None => None,
    };
    Ok(Json(listing(text.as_deref(), now_secs())))
}
