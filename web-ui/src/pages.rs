//! The HTML pages: handlers, their templates and the small view models the templates read.
//!
//! Handlers turn [`crate::Dashboard`] answers into view models here, so the templates only
//! print prepared strings and never decide anything beyond "is this list empty".

use std::sync::Arc;

use std::collections::BTreeMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use paas_api::{App, Build, Release};

use crate::addons::{AddonView, BackupView, ServiceView};
use crate::auth::{AppAuth, LoggedIn, Viewer};
use crate::render::{Page, PageError};
use crate::session::Session;
use crate::{AcmeInfo, Dashboard, JobInfo, ProcessType};

/// Apps per page of the apps list.
pub(crate) const APPS_PER_PAGE: u32 = 50;

/// `GET /`
#[derive(Template)]
#[template(path = "apps.html")]
pub(crate) struct AppsPage {
    pub(crate) apps: Vec<AppView>,
    /// `http://<host>/git/`, for the deploy instructions of the empty state.
    pub(crate) git_base: String,
    pub(crate) csrf: String,
    pub(crate) user: String,
    /// Shows the Nodes link.
    pub(crate) admin: bool,
    /// The create-app form's error and the name that was typed.
    pub(crate) create_error: Option<String>,
    pub(crate) create_name: String,
    /// The app this page starts after (`/?after=NAME`), on every page but the first.
    pub(crate) after: Option<String>,
    /// The last app of this page when another page follows (its "Next page" link).
    pub(crate) next: Option<String>,
}

/// `/?after=NAME`: the apps list's page after that app.
#[derive(serde::Deserialize)]
pub(crate) struct AppsQuery {
    after: Option<String>,
}

/// `GET /apps/{name}`
#[derive(Template)]
#[template(path = "app.html")]
pub(crate) struct AppPage {
    pub(crate) app: AppView,
    pub(crate) git_url: String,
    pub(crate) releases: Vec<ReleaseView>,
    pub(crate) formation: Vec<ProcessType>,
    pub(crate) jobs: Vec<JobView>,
    pub(crate) config: Vec<(String, String)>,
    pub(crate) domains: Vec<DomainView>,
    pub(crate) volumes: Vec<VolumeView>,
    /// The process types a volume may be mounted into.
    pub(crate) process_types: Vec<String>,
    pub(crate) addons: Vec<AddonView>,
    pub(crate) addon_backups: Vec<BackupView>,
    pub(crate) addon_services: Vec<ServiceView>,
    pub(crate) acme: AcmeView,
    pub(crate) builds: Vec<BuildView>,
    pub(crate) errors: FormErrors,
    pub(crate) csrf: String,
    pub(crate) user: String,
    pub(crate) admin: bool,
}

/// `GET /apps/{name}/builds/{id}`
#[derive(Template)]
#[template(path = "build.html")]
pub(crate) struct BuildPage {
    app: String,
    build: BuildView,
    log: String,
    csrf: String,
    user: String,
    admin: bool,
}

/// What went wrong with a form on the app page, shown next to that form (with what the
/// user typed, so nothing is lost).
#[derive(Default)]
pub(crate) struct FormErrors {
    pub(crate) config: Option<String>,
    pub(crate) config_key: String,
    pub(crate) config_value: String,
    pub(crate) scale: Option<String>,
    pub(crate) domain: Option<String>,
    pub(crate) domain_value: String,
    pub(crate) rollback: Option<String>,
    /// The rename form's error and the name that was typed.
    pub(crate) rename: Option<String>,
    pub(crate) rename_value: String,
    /// The destroy form's error (a wrong confirmation).
    pub(crate) destroy: Option<String>,
    /// A refused job restart or stop, shown above the jobs.
    pub(crate) jobs: Option<String>,
    /// A refused change of the automatic certificates (no ACME CA, say).
    pub(crate) acme: Option<String>,
    /// A refused volume change, and the volume name typed into the create form.
    pub(crate) volume: Option<String>,
    pub(crate) volume_value: String,
    /// A refused add-on or backup change (create, capture, restore, destroy).
    pub(crate) addon: Option<String>,
}

/// One persistent volume as the app page shows it.
pub(crate) struct VolumeView {
    name: String,
    size: String,
    /// `12M (1%)`, `16M (FULL)`, or `unknown` while the node is down.
    used: String,
    full: bool,
    node: String,
    node_state: String,
    /// `web:/app/uploads`, when mounted.
    mount: Option<String>,
}

/// `n` bytes as people read them: `1G`, `1.5G`, `512M`.
pub(crate) fn human_bytes(n: u64) -> String {
    for (unit, size) in [
        ("T", 1u64 << 40),
        ("G", 1 << 30),
        ("M", 1 << 20),
        ("K", 1 << 10),
    ] {
        if n >= size {
            let v = format!("{:.1}", n as f64 / size as f64);
            return format!("{}{unit}", v.trim_end_matches(".0"));
        }
    }
    format!("{n}B")
}

impl VolumeView {
    fn from_volume(v: &crate::Volume) -> VolumeView {
        let used = match v.used_bytes {
            Some(u) if v.full => format!("{} (FULL)", human_bytes(u)),
            Some(u) => format!("{} ({}%)", human_bytes(u), u * 100 / v.size_bytes.max(1)),
            None => "unknown".into(),
        };
        VolumeView {
            name: v.name.clone(),
            size: human_bytes(v.size_bytes),
            used,
            full: v.full,
            node: v.node.clone(),
            node_state: v.node_state.clone(),
            mount: v.mount.as_ref().map(|(t, p)| format!("{t}:{p}")),
        }
    }
}

/// One custom domain with its automatic certificate, while those are on.
pub(crate) struct DomainView {
    hostname: String,
    cert: Option<CertView>,
}

/// The automatic certificate of one domain.
pub(crate) struct CertView {
    /// pending, issued, failed (as the controller says).
    state: String,
    state_class: &'static str,
    /// "expires …", the reason of a failure, or what happens next.
    detail: String,
}

/// The app's automatic certificate setting.
pub(crate) struct AcmeView {
    enabled: bool,
    /// The controller has an ACME CA, so they can be turned on.
    available: bool,
}

/// One app as the pages show it.
pub(crate) struct AppView {
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
    /// "2 up / 2" (filled in by the list).
    jobs: String,
}

/// One release row.
pub(crate) struct ReleaseView {
    version: String,
    number: u32,
    is_current: bool,
    description: String,
    /// The first 7 characters of the git commit, when the release came from a push.
    commit: Option<String>,
    created: Timestamp,
    /// How its deploy went (`pending`, `succeeded`, `failed`; `unknown` when the
    /// controller does not say) and why it failed.
    status: String,
    status_class: &'static str,
    status_reason: Option<String>,
}

/// One job row.
pub(crate) struct JobView {
    id: String,
    name: String,
    process_type: String,
    release: String,
    node: String,
    state: String,
    state_class: &'static str,
    uptime: String,
    restarts: u32,
    exit_reason: String,
}

/// One build row.
pub(crate) struct BuildView {
    id: String,
    status: String,
    status_class: &'static str,
    commit: String,
    release: String,
    created: Timestamp,
}

/// An RFC 3339 time, with a short form for people and the full one for `<time datetime>`.
pub(crate) struct Timestamp {
    pub(crate) full: String,
    pub(crate) short: String,
}

fn backend(action: &'static str) -> impl FnOnce(String) -> PageError {
    move |message| PageError::Backend { action, message }
}

/// `GET /` (`?after=NAME` for the next pages) — the apps list, or the deploy instructions
/// when there is none.
pub(crate) async fn apps_list<D: Dashboard>(
    auth: LoggedIn,
    State(dashboard): State<Arc<D>>,
    Query(q): Query<AppsQuery>,
    headers: HeaderMap,
) -> Result<Page<AppsPage>, PageError> {
    Ok(Page(
        apps_page(
            &*dashboard,
            &auth.session,
            &auth.viewer,
            &headers,
            q.after.filter(|a| !a.is_empty()),
            None,
            String::new(),
        )
        .await?,
    ))
}

/// One page of the apps list (the first when `after` is `None`) with an optional
/// create-form error. The controller cuts the page; one app more than the page tells
/// whether another follows.
pub(crate) async fn apps_page<D: Dashboard>(
    dashboard: &D,
    session: &Session,
    viewer: &Viewer,
    headers: &HeaderMap,
    after: Option<String>,
    create_error: Option<String>,
    create_name: String,
) -> Result<AppsPage, PageError> {
    let mut apps = dashboard
        .apps(viewer, after.as_deref(), APPS_PER_PAGE + 1)
        .await
        .map_err(backend("list the apps"))?;
    let more = apps.len() > APPS_PER_PAGE as usize;
    apps.truncate(APPS_PER_PAGE as usize);
    let next = if more {
        apps.last().map(|a| a.name.clone())
    } else {
        None
    };
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("<controller>");
    let mut views = Vec::new();
    for app in &apps {
        let mut view = AppView::from_app(app);
        let jobs = dashboard
            .jobs(&app.name)
            .await
            .map_err(backend("list the jobs"))?;
        let up = jobs.iter().filter(|j| j.state == "up").count();
        view.jobs = format!("{up} up / {}", jobs.len());
        views.push(view);
    }
    Ok(AppsPage {
        apps: views,
        git_base: format!("http://{host}/git/"),
        csrf: session.csrf.clone(),
        user: session.user.clone(),
        admin: viewer.admin,
        create_error,
        create_name,
        after,
        next,
    })
}

/// `GET /apps/{name}` — one app with everything about it.
pub(crate) async fn app_detail<D: Dashboard>(
    auth: AppAuth,
    State(dashboard): State<Arc<D>>,
) -> Result<Page<AppPage>, PageError> {
    Ok(Page(
        app_page(&*dashboard, &auth, FormErrors::default()).await?,
    ))
}

/// Checks that an app name could exist (an impossible one is a 404 without a question).
pub(crate) fn check_name(name: &str) -> Result<(), PageError> {
    paas_api::names::validate_app_name(name).map_err(|_| PageError::AppNotFound {
        name: name.to_string(),
    })
}

/// The app page, with form errors to show.
pub(crate) async fn app_page<D: Dashboard>(
    dashboard: &D,
    auth: &AppAuth,
    errors: FormErrors,
) -> Result<AppPage, PageError> {
    let (session, name) = (&auth.session, auth.app.as_str());
    let app = dashboard
        .app(name)
        .await
        .map_err(backend("load the app"))?
        .ok_or_else(|| PageError::AppNotFound {
            name: name.to_string(),
        })?;
    let mut releases = dashboard
        .releases(name)
        .await
        .map_err(backend("list the releases"))?;
    releases.sort_by_key(|r| std::cmp::Reverse(r.version));
    let formation = dashboard
        .formation(name)
        .await
        .map_err(backend("read the formation"))?;
    let mut jobs = dashboard
        .jobs(name)
        .await
        .map_err(backend("list the jobs"))?;
    jobs.sort_by(|a, b| (&a.process_type, &a.id).cmp(&(&b.process_type, &b.id)));
    let config = dashboard
        .config(name)
        .await
        .map_err(backend("read the config"))?;
    let mut domains = dashboard
        .domains(name)
        .await
        .map_err(backend("list the domains"))?;
    domains.sort();
    let acme = dashboard
        .acme(name)
        .await
        .map_err(backend("read the automatic certificates"))?;
    let volumes = dashboard
        .volumes(name)
        .await
        .map_err(backend("list the volumes"))?;
    let process_types: Vec<String> = formation.iter().map(|p| p.name.clone()).collect();
    let addons = dashboard
        .addons(&auth.viewer, name)
        .await
        .map_err(backend("list the add-ons"))?;
    let mut addon_backups = dashboard
        .addon_backups(name)
        .await
        .map_err(backend("list the backups"))?;
    addon_backups.sort_by(|a, b| (&b.created_at, &b.id).cmp(&(&a.created_at, &a.id)));
    let mut builds = dashboard
        .builds(name)
        .await
        .map_err(backend("list the builds"))?;
    builds.sort_by(|a, b| b.created_at.cmp(&a.created_at));
    builds.truncate(10);
    let now = now_secs();
    let mut counters: BTreeMap<String, u32> = BTreeMap::new();
    Ok(AppPage {
        git_url: app.git_url.clone(),
        releases: releases
            .iter()
            .map(|r| ReleaseView::from_release(r, app.current_release))
            .collect(),
        app: AppView::from_app(&app),
        formation,
        jobs: jobs
            .iter()
            .map(|j| {
                let n = counters.entry(j.process_type.clone()).or_default();
                *n += 1;
                JobView::from_job(j, *n, now)
            })
            .collect(),
        config: config.into_iter().collect(),
        domains: domains
            .into_iter()
            .map(|d| DomainView::new(d, &acme))
            .collect(),
        volumes: volumes.iter().map(VolumeView::from_volume).collect(),
        process_types,
        addons: addons.iter().map(|a| AddonView::new(a, name)).collect(),
        addon_backups: addon_backups.iter().map(BackupView::new).collect(),
        addon_services: dashboard
            .addon_services()
            .iter()
            .map(ServiceView::new)
            .collect(),
        acme: AcmeView {
            enabled: acme.enabled,
            available: acme.available,
        },
        builds: builds.iter().map(BuildView::from_build).collect(),
        errors,
        csrf: session.csrf.clone(),
        user: session.user.clone(),
        admin: auth.viewer.admin,
    })
}

/// `GET /apps/{name}/builds/{id}` — one build and its log.
pub(crate) async fn build_detail<D: Dashboard>(
    auth: AppAuth,
    State(dashboard): State<Arc<D>>,
    Path((name, id)): Path<(String, String)>,
) -> Result<Page<BuildPage>, PageError> {
    let (build, log) = dashboard
        .build_log(&name, &id)
        .await
        .map_err(backend("read the build"))?
        .ok_or_else(|| PageError::NotFound {
            what: format!("build {id} of {name}"),
        })?;
    Ok(Page(BuildPage {
        app: name,
        build: BuildView::from_build(&build),
        log,
        csrf: auth.session.csrf,
        user: auth.session.user,
        admin: auth.viewer.admin,
    }))
}

/// `GET /apps/{name}/logs/stream` — the app's live log as Server-Sent Events.
pub(crate) async fn log_stream<D: Dashboard>(
    auth: AppAuth,
    State(dashboard): State<Arc<D>>,
) -> Result<Response, PageError> {
    dashboard
        .log_stream(&auth.app)
        .await
        .map_err(backend("stream the logs"))
}

/// `GET /apps/{name}/stats.json` — the chart data: samples per job.
pub(crate) async fn stats<D: Dashboard>(
    auth: AppAuth,
    State(dashboard): State<Arc<D>>,
) -> Result<Response, PageError> {
    let series = dashboard
        .stats(&auth.app)
        .await
        .map_err(backend("read the stats"))?;
    Ok(([(header::CACHE_CONTROL, "no-store")], axum::Json(series)).into_response())
}

pub(crate) fn now_secs() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Seconds since the epoch of `YYYY-MM-DDTHH:MM:SS…Z` (UTC only); `None` otherwise.
fn parse_utc(s: &str) -> Option<i64> {
    let num = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    if !(s.ends_with('Z') || s.ends_with("+00:00")) {
        return None;
    }
    let (y, m, d) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hh, mm, ss) = (num(11..13)?, num(14..16)?, num(17..19)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

/// `3d 4h`, `2h 5m`, `4m 10s`, `12s`.
fn duration_text(secs: i64) -> String {
    let secs = secs.max(0);
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h}h")
    } else if h > 0 {
        format!("{h}h {m}m")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

impl JobView {
    fn from_job(j: &JobInfo, n: u32, now: i64) -> Self {
        let running = matches!(j.state.as_str(), "up" | "unhealthy" | "starting");
        JobView {
            id: j.id.clone(),
            name: format!("{}.{n}", j.process_type),
            process_type: j.process_type.clone(),
            release: format!("v{}", j.release),
            node: j.node.clone(),
            state_class: match j.state.as_str() {
                "up" => "up",
                "unhealthy" | "down" => "crashed",
                "starting" | "stopping" => "busy",
                _ => "unknown",
            },
            state: j.state.clone(),
            uptime: match j.started_at.as_deref().and_then(parse_utc) {
                Some(t) if running => duration_text(now - t),
                _ => "–".to_string(),
            },
            restarts: j.restarts,
            exit_reason: j.exit_reason.clone().unwrap_or_else(|| "–".to_string()),
        }
    }
}

impl DomainView {
    fn new(hostname: String, acme: &AcmeInfo) -> Self {
        let cert = acme
            .domains
            .iter()
            .find(|d| d.hostname == hostname)
            .map(|d| CertView {
                state_class: match d.state.as_str() {
                    "issued" => "up",
                    "failed" => "crashed",
                    "pending" => "busy",
                    _ => "unknown",
                },
                detail: match d.state.as_str() {
                    "issued" if !d.not_after.is_empty() => {
                        format!("expires {}", Timestamp::new(&d.not_after).short)
                    }
                    "failed" if !d.reason.is_empty() => {
                        format!("{} (tried again within the hour)", d.reason)
                    }
                    "pending" => "ordering a certificate…".to_string(),
                    _ => d.reason.clone(),
                },
                state: d.state.clone(),
            });
        DomainView { hostname, cert }
    }
}

impl BuildView {
    fn from_build(b: &Build) -> Self {
        BuildView {
            id: b.id.clone(),
            status_class: deploy_status_class(&b.status),
            status: b.status.clone(),
            commit: b
                .source_version
                .as_deref()
                .map(|c| c.chars().take(7).collect())
                .unwrap_or_else(|| "–".to_string()),
            release: b
                .release
                .map(|v| format!("v{v}"))
                .unwrap_or_else(|| "–".to_string()),
            created: Timestamp::new(&b.created_at),
        }
    }
}

impl AppView {
    fn from_app(app: &App) -> Self {
        let status = match app.status.as_str() {
            "" => "unknown".to_string(),
            "idle" => "no release".to_string(),
            s => s.to_string(),
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
            jobs: String::new(),
        }
    }
}

impl ReleaseView {
    fn from_release(release: &Release, current: Option<u32>) -> Self {
        ReleaseView {
            version: format!("v{}", release.version),
            number: release.version,
            is_current: current == Some(release.version),
            description: release.description.clone(),
            commit: release
                .source_version
                .as_deref()
                .map(|c| c.chars().take(7).collect()),
            created: Timestamp::new(&release.created_at),
            status_class: deploy_status_class(release.status.as_deref().unwrap_or("unknown")),
            status: release
                .status
                .clone()
                .unwrap_or_else(|| "unknown".to_string()),
            status_reason: release.status_reason.clone(),
        }
    }
}

/// The CSS class of a build's or a release's status.
fn deploy_status_class(status: &str) -> &'static str {
    match status {
        "succeeded" => "up",
        "failed" => "crashed",
        "pending" | "building" => "busy",
        _ => "unknown",
    }
}

/// Maps a status to a CSS class; anything unexpected gets the neutral look.
fn status_class(status: &str) -> &'static str {
    match status {
        "up" => "up",
        "crashed" => "crashed",
        "building" | "deploying" => "busy",
        "idle" | "no release" => "idle",
        _ => "unknown",
    }
}

impl Timestamp {
    /// `2024-05-01T12:34:56Z` becomes `2024-05-01 12:34 UTC`; anything else stays as is.
    pub(crate) fn new(rfc3339: &str) -> Self {
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
    fn utc_times_parse_and_durations_read_well() {
        assert_eq!(parse_utc("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_utc("2024-05-01T12:34:56Z"), Some(1_714_566_896));
        assert_eq!(
            parse_utc("2024-05-01T12:34:56.5+00:00"),
            Some(1_714_566_896)
        );
        assert_eq!(parse_utc("2024-05-01T12:34:56+02:00"), None);
        assert_eq!(parse_utc("soon"), None);
        assert_eq!(duration_text(12), "12s");
        assert_eq!(duration_text(250), "4m 10s");
        assert_eq!(duration_text(7500), "2h 5m");
        assert_eq!(duration_text(3 * 86_400 + 4 * 3600), "3d 4h");
        assert_eq!(duration_text(-5), "0s");
    }

    #[test]
    fn unknown_statuses_get_a_neutral_class() {
        assert_eq!(status_class("up"), "up");
        assert_eq!(status_class("deploying"), "busy");
        assert_eq!(status_class("\" onmouseover=x"), "unknown");
    }
}
