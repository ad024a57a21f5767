//! `GET /v1/apps/{app}/logs?tail=true&ps=web&lines=N`: an app's recent log lines and, with
//! `tail=true`, the live ones as they come, in Heroku's format
//! (`2026-11-23T05:00:00Z app[web.1]: line`). `Accept: text/event-stream` gets
//! Server-Sent Events (one `data:` line each), anything else `text/plain`.
//!
//! Sources: the app's latest build (`app[build]`), the kept end of recently removed jobs'
//! output (`app[<type>]`, e.g. a crash loop's errors), and each job's output as its agent
//! captured it, with the agent's timestamps (`GET /v1/jobs/{id}/logs?timestamps=true`,
//! microseconds, strictly increasing per job). The history is sorted by time (a stable
//! sort, so each job's lines keep their order) and cut to the last `lines`; a tail then
//! follows each job from the last record the history saw (`since=`), so no line is shown
//! twice or skipped. The router's access lines (`heroku[router]`, only them with
//! `ps=router`) come from every router: the one in this process (`--router-in-process`)
//! and each `paas-router` process following this controller's feed
//! ([`crate::router_peers`], asked on its internal endpoint). The last requests each keeps
//! per app join the history by their µs stamps, and a tail follows the live ones
//! (subscribed before the history is read; lines the history already had are not sent
//! twice; a router that begins following during a tail is followed from then on).

use std::collections::{HashMap, HashSet};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use futures_util::StreamExt;
use http::HeaderMap;
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use super::ApiError;
use crate::auth::AppAccess;
use crate::scheduler::labels;
use crate::state::Controller;
use crate::store::{job_state, JobRow};
use crate::util::now_rfc3339;

/// The most lines one request may ask for.
const MAX_LINES: usize = 10_000;
const DEFAULT_LINES: usize = 100;
/// How many removed jobs' kept output the history includes.
const REMOVED_JOBS: u32 = 10;
/// How often a tail looks for new jobs of the app.
const RESCAN: Duration = Duration::from_secs(2);

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new().route("/v1/apps/{app}/logs", get(logs))
}

#[derive(Debug, Deserialize)]
struct LogsQuery {
    #[serde(default)]
    tail: bool,
    /// A process type (`web`) or one dyno (`web.1`).
    ps: Option<String>,
    lines: Option<usize>,
}

/// The router's access lines for `app` from now on (`heroku[router]: at=info method=GET
/// path="/" … status=200 bytes=5 service=3ms job=…`), from this controller's router.
pub fn access_lines(c: &Controller, app: &str) -> Option<crate::router::AccessFollower> {
    Some(c.routes.access_log().subscribe(app))
}

/// One Heroku-format line.
fn line(ts: &str, source: &str, text: &str) -> String {
    format!("{ts} app[{source}]: {text}")
}

/// Splits an agent record line (`<timestamp> <stdout|stderr> <text>`); `None` for other
/// text (an agent too old to send timestamps answers the raw output).
fn record(l: &str) -> Option<(&str, &str)> {
    let (ts, rest) = l.split_once(' ')?;
    let (stream, text) = rest.split_once(' ').unwrap_or((rest, ""));
    let plausible = ts.len() >= 20 && ts.as_bytes()[10] == b'T' && ts.ends_with('Z');
    (plausible && matches!(stream, "stdout" | "stderr")).then_some((ts, text))
}

/// A sort key for RFC 3339 UTC timestamps with any precision (`…:05Z`, `…:05.1234Z`):
/// the fraction padded to 9 digits, so the keys compare as the times do.
fn sort_key(ts: &str) -> String {
    let (whole, frac) = match ts.get(..19) {
        Some(w) => (w, ts[19..].trim_start_matches('.').trim_end_matches('Z')),
        None => (ts, ""),
    };
    let digits: String = frac.chars().take_while(char::is_ascii_digit).collect();
    format!("{whole}.{digits:0<9}")
}

/// True when the router's access lines are wanted (all lines, or `ps=router`).
fn wants_router(ps: Option<&str>) -> bool {
    matches!(ps, None | Some(ROUTER))
}

/// The `ps` that selects the router's lines.
const ROUTER: &str = "router";

fn wants(ps: Option<&str>, process_type: &str, dyno: &str) -> bool {
    match ps {
        None => true,
        Some(p) => p == process_type || p == dyno,
    }
}

/// The app's running (or finished, not yet removed) jobs with their dyno names.
async fn app_jobs(c: &Controller, app: &str) -> Result<Vec<(JobRow, String, String)>, ApiError> {
    let mut rows: Vec<JobRow> = c
        .store
        .active_jobs()
        .await?
        .into_iter()
        .filter(|j| j.app == app && j.state != job_state::PENDING)
        .collect();
    // The jobs of the app's own add-ons (`--ps addon`, or `addon.<name>`).
    rows.extend(crate::addons::log_jobs(c, app).await?);
    let urls: HashMap<String, String> = c
        .store
        .list_nodes()
        .await?
        .into_iter()
        .map(|n| (n.name, n.url))
        .collect();
    let mut dynos: HashMap<String, String> = HashMap::new();
    let nodes: HashSet<&str> = rows.iter().map(|j| j.node.as_str()).collect();
    for node in nodes {
        let Some(url) = urls.get(node) else { continue };
        if let Ok(jobs) = c.agents.list_jobs(url).await {
            for j in jobs {
                if let Some(d) = j.labels.get(labels::DYNO) {
                    dynos.insert(j.id, d.clone());
                }
            }
        }
    }
    Ok(rows
        .into_iter()
        .filter_map(|j| {
            let url = urls.get(&j.node)?.clone();
            let dyno = dynos
                .get(&j.id)
                .cloned()
                .unwrap_or_else(|| j.process_type.clone());
            Some((j, url, dyno))
        })
        .collect())
}

async fn logs(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    Query(q): Query<LogsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    app_logs(c, app, q, headers).await
}

/// The logs answer once the caller's access to `app` has been checked.
async fn app_logs(
    c: Arc<Controller>,
    app: String,
    q: LogsQuery,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if c.store.get_app(&app).await?.is_none() {
        return Err(ApiError::NotFound(format!("no app named {app}")));
    }
    let lines = q.lines.unwrap_or(DEFAULT_LINES).min(MAX_LINES);
    let ps = q.ps.clone();
    let now = now_rfc3339();
    // Live router lines from before the history is read, so none falls between the two.
    let access = (q.tail && wants_router(ps.as_deref()))
        .then(|| access_lines(&c, &app))
        .flatten();
    // The router processes' kept lines and, for a tail, their live ones after them.
    let (peers, peer_history) = match (wants_router(ps.as_deref()), q.tail) {
        (false, _) => (None, Vec::new()),
        (true, true) => {
            let (f, h) = crate::router_peers::RouterFollow::start(&c.router_peers, &app).await;
            (Some(f), h)
        }
        (true, false) => (
            None,
            crate::router_peers::history(&c.router_peers, &app).await,
        ),
    };

    // History: the latest build, the router's access lines, the kept output of removed
    // jobs and each job's records, sorted by time.
    let mut history: Vec<(String, String)> = Vec::new();
    if ps.is_none() {
        if let Some(build) = c.store.list_builds(&app).await?.into_iter().next() {
            let ts = build.finished_at.as_deref().unwrap_or(&build.created_at);
            history.extend(
                build
                    .log
                    .lines()
                    .map(|l| (sort_key(ts), line(ts, "build", l))),
            );
        }
    }
    // The router's last requests of the app (µs stamps, like the agents' records).
    let mut router_seen: HashSet<String> = HashSet::new();
    if wants_router(ps.as_deref()) {
        for (at_us, text) in c.routes.access_log().history(&app).await {
            let ts = crate::util::rfc3339_from_micros(at_us);
            if access.is_some() {
                router_seen.insert(text.clone());
            }
            history.push((sort_key(&ts), text));
        }
        for (at_us, text) in peer_history {
            let ts = crate::util::rfc3339_from_micros(at_us);
            history.push((sort_key(&ts), text));
        }
    }
    // The kept output of removed jobs (crashed or replaced ones), stamped with their removal.
    for (_, process_type, at, log) in c.store.removed_job_logs(&app, REMOVED_JOBS).await? {
        if wants(ps.as_deref(), &process_type, &process_type) {
            let key = sort_key(&at);
            history.extend(
                log.lines()
                    .map(|l| (key.clone(), line(&at, &process_type, l))),
            );
        }
    }
    // Each job's last records, asked of the agents at once.
    let jobs: Vec<_> = app_jobs(&c, &app)
        .await?
        .into_iter()
        .filter(|(job, _, dyno)| wants(ps.as_deref(), &job.process_type, dyno))
        .collect();
    let fetched = futures_util::future::join_all(jobs.iter().map(|(job, url, _)| {
        // At least one record, so that `lines=0` still learns where the tail starts.
        c.agents.log_records(url, &job.id, lines.max(1))
    }))
    .await;
    // Where each job's tail starts: after the last record fetched here.
    let mut cursors: HashMap<String, Option<String>> = HashMap::new();
    for ((job, _, dyno), text) in jobs.iter().zip(fetched) {
        let text = match text {
            Ok(t) => t,
            Err(e) => {
                tracing::debug!(job = %job.id, "reading the job's log: {e}");
                continue;
            }
        };
        let mut last = None;
        for l in text.lines() {
            match record(l) {
                Some((ts, body)) => {
                    history.push((sort_key(ts), line(ts, dyno, body)));
                    last = Some(ts.to_string());
                }
                None => history.push((sort_key(&now), line(&now, dyno, l))),
            }
        }
        cursors.insert(job.id.clone(), last);
    }
    history.sort_by(|a, b| a.0.cmp(&b.0));
    let skip = history.len().saturating_sub(lines);
    let history: Vec<String> = history.into_iter().skip(skip).map(|(_, l)| l).collect();

    let sse = headers
        .get(http::header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("text/event-stream"));
    let (tx, rx) = mpsc::channel::<String>(1024);
    tokio::spawn(async move {
        for l in history {
            if tx.send(l).await.is_err() {
                return;
            }
        }
        if q.tail {
            let router = RouterLines {
                access,
                seen: router_seen,
                peers,
            };
            follow(c, app, ps, cursors, router, tx).await;
        }
    });
    let stream = ReceiverStream::new(rx);
    if sse {
        let events = stream.map(|l| Ok::<_, Infallible>(Event::default().data(l)));
        return Ok(Sse::new(events)
            .keep_alive(axum::response::sse::KeepAlive::default())
            .into_response());
    }
    let body = Body::from_stream(stream.map(|l| Ok::<_, Infallible>(format!("{l}\n"))));
    Ok((
        [(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        body,
    )
        .into_response())
}

/// The dashboard's live log (its session already checked): the last 100 lines, then new
/// ones, as Server-Sent Events.
pub(crate) async fn dashboard_stream(
    c: Arc<Controller>,
    app: String,
) -> Result<Response, ApiError> {
    let q = LogsQuery {
        tail: true,
        ps: None,
        lines: Some(DEFAULT_LINES),
    };
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::ACCEPT,
        http::HeaderValue::from_static("text/event-stream"),
    );
    app_logs(c, app, q, headers).await
}

/// The router lines a tail follows.
struct RouterLines {
    /// The in-process router's live lines (those in `seen` were in the history already).
    access: Option<crate::router::AccessFollower>,
    seen: HashSet<String>,
    /// The router processes' live lines.
    peers: Option<crate::router_peers::RouterFollow>,
}

/// Follows every job of the app (new ones as they appear) and the router's lines, when
/// wanted, until the client goes away.
async fn follow(
    c: Arc<Controller>,
    app: String,
    ps: Option<String>,
    mut cursors: HashMap<String, Option<String>>,
    router: RouterLines,
    tx: mpsc::Sender<String>,
) {
    let RouterLines {
        mut access,
        seen: mut router_seen,
        mut peers,
    } = router;
    let mut followed: HashSet<String> = HashSet::new();
    loop {
        if let Some(p) = peers.as_mut() {
            p.rescan(&c.router_peers);
        }
        if let Ok(jobs) = app_jobs(&c, &app).await {
            for (job, url, dyno) in jobs {
                if !wants(ps.as_deref(), &job.process_type, &dyno)
                    || !followed.insert(job.id.clone())
                {
                    continue;
                }
                let since = cursors.remove(&job.id).flatten();
                let (c, tx) = (Arc::clone(&c), tx.clone());
                tokio::spawn(async move {
                    follow_job(&c, &url, &job.id, &dyno, since, tx).await;
                });
            }
        }
        let deadline = tokio::time::sleep(RESCAN);
        tokio::pin!(deadline);
        loop {
            tokio::select! {
                _ = &mut deadline => break,
                _ = tx.closed() => return,
                l = async {
                    match access.as_mut() {
                        Some(rx) => rx.recv().await.ok(),
                        None => std::future::pending().await,
                    }
                } => {
                    let Some(l) = l else { continue };
                    if router_seen.remove(&l) {
                        continue;
                    }
                    if tx.send(l).await.is_err() {
                        return;
                    }
                }
                l = async {
                    match peers.as_mut() {
                        Some(p) => p.rx.recv().await,
                        None => std::future::pending().await,
                    }
                } => {
                    let Some(l) = l else { continue };
                    if tx.send(l).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// Streams one job's records after `since` (all of them without it) as they come, with
/// the agent's timestamps.
async fn follow_job(
    c: &Controller,
    url: &str,
    id: &str,
    dyno: &str,
    since: Option<String>,
    tx: mpsc::Sender<String>,
) {
    let Ok(resp) = c.agents.follow_log_records(url, id, since.as_deref()).await else {
        return;
    };
    let mut body = resp.bytes_stream();
    let mut pending: Vec<u8> = Vec::new();
    while let Some(Ok(chunk)) = body.next().await {
        pending.extend_from_slice(&chunk);
        while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
            let raw: Vec<u8> = pending.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&raw[..raw.len() - 1]).into_owned();
            let out = match record(&text) {
                Some((ts, body)) => line(ts, dyno, body),
                None => line(&now_rfc3339(), dyno, &text),
            };
            if tx.send(out).await.is_err() {
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;
    use std::sync::Mutex;
    use tower::ServiceExt;

    const R: [&str; 4] = [
        "2026-11-23T12:00:00.000001Z stdout one",
        "2026-11-23T12:00:00.000002Z stderr two",
        "2026-11-23T12:00:01.500000Z stdout three",
        "2026-11-23T12:00:02.000000Z stdout four",
    ];

    /// A node agent that holds three records and, when followed, has a fourth.
    async fn fake_agent(queries: Arc<Mutex<Vec<String>>>) -> String {
        let logs = move |uri: http::Uri| {
            let queries = queries.clone();
            async move {
                let q = uri.query().unwrap_or_default().to_string();
                queries.lock().unwrap().push(q.clone());
                let have: &[&str] = if q.contains("follow=true") {
                    &R
                } else {
                    &R[..3]
                };
                let since = q.split('&').find_map(|p| p.strip_prefix("since="));
                let n = q
                    .split('&')
                    .find_map(|p| p.strip_prefix("lines="))
                    .map_or(have.len(), |n| n.parse().unwrap());
                let picked: Vec<&str> = have
                    .iter()
                    .filter(|r| since.is_none_or(|s| r.split(' ').next().unwrap() > s))
                    .copied()
                    .collect();
                let skip = picked.len().saturating_sub(n);
                picked[skip..]
                    .iter()
                    .map(|r| format!("{r}\n"))
                    .collect::<String>()
            }
        };
        let router = Router::new()
            .route("/v1/jobs", get(|| async { "[]" }))
            .route("/v1/jobs/{id}/logs", get(logs));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await.unwrap() });
        url
    }

    #[tokio::test]
    async fn job_lines_carry_the_agent_stamps_and_the_tail_goes_on_after_them() {
        let dir = tempfile::tempdir().unwrap();
        let settings = crate::config::Settings::new(
            dir.path().to_path_buf(),
            "127.0.0.1:8080".parse().unwrap(),
            8000,
            "localhost",
        )
        .unwrap();
        let c = Controller::open(settings).await.unwrap();
        let queries = Arc::new(Mutex::new(Vec::new()));
        let url = fake_agent(queries.clone()).await;
        c.store.create_app("hello").await.unwrap();
        c.store
            .upsert_node("n1", &url, 1 << 30, crate::util::unix_ms())
            .await
            .unwrap();
        let now = now_rfc3339();
        c.store
            .insert_job(&JobRow {
                id: "hello-web-1".into(),
                app: "hello".into(),
                release: 1,
                process_type: "web".into(),
                node: "n1".into(),
                state: crate::store::job_state::UP.into(),
                addr: None,
                exit_reason: None,
                created_at: now.clone(),
                updated_at: now,
            })
            .await
            .unwrap();
        let req = http::Request::get("/v1/apps/hello/logs?ps=web&lines=2&tail=true")
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", c.tokens.admin()),
            )
            .body(Body::empty())
            .unwrap();
        let resp = crate::http::app(Arc::clone(&c)).oneshot(req).await.unwrap();
        let mut body = resp.into_body();
        let mut text = String::new();
        while text.lines().count() < 3 {
            let frame = tokio::time::timeout(Duration::from_secs(10), body.frame())
                .await
                .expect("three lines")
                .unwrap()
                .unwrap();
            if let Ok(data) = frame.into_data() {
                text.push_str(std::str::from_utf8(&data).unwrap());
            }
        }
        assert_eq!(
            text.lines().collect::<Vec<_>>(),
            [
                "2026-11-23T12:00:00.000002Z app[web]: two",
                "2026-11-23T12:00:01.500000Z app[web]: three",
                "2026-11-23T12:00:02.000000Z app[web]: four",
            ],
            "the last 2 lines, then only the new one"
        );
        let q = queries.lock().unwrap().clone();
        assert!(
            q.contains(&"follow=false&timestamps=true&lines=2".to_string()),
            "{q:?}"
        );
        assert!(
            q.contains(
                &"follow=true&timestamps=true&since=2026-11-23T12:00:01.500000Z".to_string()
            ),
            "{q:?}"
        );
    }

    #[test]
    fn records_are_split_and_other_text_is_not() {
        assert_eq!(
            record("2026-11-23T12:00:00.000001Z stderr oh no"),
            Some(("2026-11-23T12:00:00.000001Z", "oh no"))
        );
        assert_eq!(
            record("2026-11-23T12:00:00.000001Z stdout "),
            Some(("2026-11-23T12:00:00.000001Z", ""))
        );
        assert_eq!(record("plain output from an old agent"), None);
        assert_eq!(record("2026-11-23T12:00:00Z app[web.1]: x"), None);
    }

    #[test]
    fn sort_keys_order_mixed_precisions() {
        let mut ts = vec![
            "2026-11-23T12:00:01Z",
            "2026-11-23T12:00:00.5Z",
            "2026-11-23T12:00:00Z",
            "2026-11-23T12:00:00.000001Z",
        ];
        ts.sort_by_key(|t| sort_key(t));
        assert_eq!(
            ts,
            [
                "2026-11-23T12:00:00Z",
                "2026-11-23T12:00:00.000001Z",
                "2026-11-23T12:00:00.5Z",
                "2026-11-23T12:00:01Z"
            ]
        );
    }
}
