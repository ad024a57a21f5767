//! The HTML pages: handlers, their templates and the small view models the templates read.
//!
//! Handlers turn [`crate::Dashboard`] answers into view models here, so the templates only
//! print prepared strings and never decide anything beyond "is this list empty".

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap};
use paas_api::{App, Release};

use crate::render::{Page, PageError};
use crate::Dashboard;

/// `GET /`
#[derive(Template)]
#[template(path = "apps.html")]
pub(crate) struct AppsPage {
    apps: Vec<AppView>,
    /// `http://<host>/git/`, for the deploy instructions of the empty state.
    git_base: String,
}

/// `GET /apps/{name}`
#[derive(Template)]
#[template(path = "app.html")]
pub(crate) struct AppPage {
    app: AppView,
    git_url: String,
    releases: Vec<ReleaseView>,
}

/// One app as the pages show it.
struct AppView {
    name: String,
    status: String,
    /// One of a fixed set, safe to use in a CSS class name.
    status_class: &'static str,
    /// `v2`, or "no release yet".
    release: String,
    web_url: String,
    /// Only `http(s)://` URLs become links (never `javascript:` or the like).
    web_url_is_link: bool,
    created: Timestamp,
}

/// One release row.
struct ReleaseView {
    version: String,
    is_current: bool,
    description: String,
    /// The first 7 characters of the git commit, when the release came from a push.
    commit: Option<String>,
    created: Timestamp,
}

/// An RFC 3339 time, with a short form for people and the full one for `<time datetime>`.
struct Timestamp {
    full: String,
    short: String,
}

/// `GET /` — the apps list, or the deploy instructions when there is none.
pub(crate) async fn apps_list<D: Dashboard>(
    State(dashboard): State<Arc<D>>,
    headers: HeaderMap,
) -> Result<Page<AppsPage>, PageError> {
    let mut apps = dashboard
        .apps()
        .await
        .map_err(|message| PageError::Backend {
            action: "list the apps",
            message,
        })?;
    apps.sort_by(|a, b| a.name.cmp(&b.name));
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("<controller>");
    Ok(Page(AppsPage {
        apps: apps.iter().map(AppView::from_app).collect(),
        git_base: format!("http://{host}/git/"),
    }))
}

/// `GET /apps/{name}` — one app and its releases, newest first.
pub(crate) async fn app_detail<D: Dashboard>(
    State(dashboard): State<Arc<D>>,
    Path(name): Path<String>,
) -> Result<Page<AppPage>, PageError> {
    // A name that cannot be valid cannot exist: answer without asking the controller.
    if paas_api::names::validate_app_name(&name).is_err() {
        return Err(PageError::AppNotFound { name });
    }
    let app = dashboard
        .app(&name)
        .await
        .map_err(|message| PageError::Backend {
            action: "load the app",
            message,
        })?
        .ok_or_else(|| PageError::AppNotFound { name: name.clone() })?;
    let mut releases = dashboard
        .releases(&name)
        .await
        .map_err(|message| PageError::Backend {
            action: "list the releases",
            message,
        })?;
    releases.sort_by_key(|r| std::cmp::Reverse(r.version));
    Ok(Page(AppPage {
        git_url: app.git_url.clone(),
        releases: releases
            .iter()
            .map(|r| ReleaseView::from_release(r, app.current_release))
            .collect(),
        app: AppView::from_app(&app),
    }))
}

impl AppView {
    fn from_app(app: &App) -> Self {
        let status = if app.status.is_empty() {
            "unknown".to_string()
        } else {
            app.status.clone()
        };
        AppView {
            name: app.name.clone(),
            status_class: status_class(&status),
            status,
            release: match app.current_release {
                Some(v) => format!("v{v}"),
                None => "no release yet".to_string(),
            },
            web_url_is_link: app.web_url.starts_with("http://")
                || app.web_url.starts_with("https://"),
            web_url: app.web_url.clone(),
            created: Timestamp::new(&app.created_at),
        }
    }
}

impl ReleaseView {
    fn from_release(release: &Release, current: Option<u32>) -> Self {
        ReleaseView {
            version: format!("v{}", release.version),
            is_current: current == Some(release.version),
            description: release.description.clone(),
            commit: release
                .source_version
                .as_deref()
                .map(|c| c.chars().take(7).collect()),
            created: Timestamp::new(&release.created_at),
        }
    }
}

/// Maps a status to a CSS class; anything unexpected gets the neutral look.
fn status_class(status: &str) -> &'static str {
    match status {
        "up" => "up",
        "crashed" => "crashed",
        "building" | "deploying" => "busy",
        "idle" => "idle",
        _ => "unknown",
    }
}

impl Timestamp {
    /// `2024-05-01T12:34:56Z` becomes `2024-05-01 12:34 UTC`; anything else stays as is.
    fn new(rfc3339: &str) -> Self {
        let utc = rfc3339.ends_with('Z') || rfc3339.ends_with("+00:00");
        let short = match (rfc3339.get(..10), rfc3339.get(10..11), rfc3339.get(11..16)) {
            (Some(date), Some("T"), Some(time)) if utc => format!("{date} {time} UTC"),
            _ => rfc3339.to_string(),
        };
        Timestamp {
            full: rfc3339.to_string(),
            short,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_shorten_utc_only() {
        assert_eq!(
            Timestamp::new("2024-05-01T12:34:56Z").short,
            "2024-05-01 12:34 UTC"
        );
        assert_eq!(
            Timestamp::new("2024-05-01T12:34:56.123+00:00").short,
            "2024-05-01 12:34 UTC"
        );
        assert_eq!(
            Timestamp::new("2024-05-01T12:34:56+02:00").short,
            "2024-05-01T12:34:56+02:00"
        );
        assert_eq!(Timestamp::new("soon").short, "soon");
        assert_eq!(Timestamp::new("é").short, "é");
    }

    #[test]
    fn unknown_statuses_get_a_neutral_class() {
        assert_eq!(status_class("up"), "up");
        assert_eq!(status_class("deploying"), "busy");
        assert_eq!(status_class("\" onmouseover=x"), "unknown");
    }
}
