//! Access lines: one per proxied request (method, path, status, bytes, duration, job), for
//! the app's log history and for whoever follows its log stream (`paas logs`, `-t`).
//!
//! Every request leaves a fixed-size record in its router thread's history (`history`:
//! no heap, no lock); [`AccessLog::history`] collects and formats an app's records from
//! all router threads when someone reads them. Live lines go out on a bounded broadcast
//! channel per app ([`CHANNEL_LINES`]); a line is only formatted for it while someone is
//! subscribed (an atomic count of [`AccessFollower`]s, one relaxed load per request),
//! sending never waits, and a slow reader loses the oldest lines (the channel tells it how
//! many).

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderValue, Method};
use tokio::sync::{broadcast, mpsc, oneshot};

use super::history::{self, Capped, HistoryLimits, Query, Request};
use super::RouteEntry;

/// Lines kept per app for live readers that fall behind.
pub const CHANNEL_LINES: usize = 256;
/// How long a history read waits for a router thread's answer.
const QUERY_WAIT: Duration = Duration::from_secs(2);

/// One app's channel, its followers, and the id its history is kept under. It lives while
/// the app is in the table (or followed); an app that comes back gets a new one, and so an
/// empty history.
#[derive(Debug)]
pub(crate) struct AppAccess {
    pub(crate) id: u64,
    tx: broadcast::Sender<String>,
    followers: AtomicUsize,
}

impl AppAccess {
    pub(crate) fn new(id: u64) -> AppAccess {
        AppAccess {
            id,
            tx: broadcast::channel(CHANNEL_LINES).0,
            followers: AtomicUsize::new(0),
        }
    }
}

#[derive(Debug, Default)]
struct Shared {
    apps: Mutex<HashMap<String, Arc<AppAccess>>>,
    next_id: AtomicU64,
    limits: Mutex<HistoryLimits>,
    /// One sender per router thread, for history reads.
    threads: Mutex<Vec<mpsc::UnboundedSender<Query>>>,
    /// The apps' permanent numbers as last fed ([`AccessLog::set_app_ids`]).
    ids: Mutex<Option<BTreeMap<String, u64>>>,
}

/// The apps' access lines: live channels and the router threads' history. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct AccessLog {
    shared: Arc<Shared>,
}

impl AccessLog {
    /// The access state of `app`, made on first use.
    pub(crate) fn channel(&self, app: &str) -> Arc<AppAccess> {
        let mut apps = self.shared.apps.lock().unwrap_or_else(|e| e.into_inner());
        let next_id = &self.shared.next_id;
        Arc::clone(
            apps.entry(app.to_string()).or_insert_with(|| {
                Arc::new(AppAccess::new(next_id.fetch_add(1, Ordering::Relaxed)))
            }),
        )
    }

    /// Follows `app`'s access lines from now on (Heroku format:
    /// `<time> heroku[router]: at=info method=GET path="/" host=… status=200 bytes=5
    /// service=3ms job=… request_id=…`).
    pub fn subscribe(&self, app: &str) -> AccessFollower {
        let app = self.channel(app);
        app.followers.fetch_add(1, Ordering::Relaxed);
        AccessFollower {
            rx: app.tx.subscribe(),
            app,
        }
    }

    /// Drops the state of apps no longer in `apps` that nobody follows (their history
    /// rings go when a router thread needs the room).
    pub(crate) fn retain_apps(&self, apps: &[&str]) {
        let mut all = self.shared.apps.lock().unwrap_or_else(|e| e.into_inner());
        all.retain(|app, c| {
            c.followers.load(Ordering::Relaxed) > 0 || apps.contains(&app.as_str())
        });
    }

    /// Forgets `app`'s access state now, followed or not (the app was destroyed): an app
    /// made later under its name gets a new one, so an empty history, and the old one's
    /// followers get none of its lines.
    pub fn forget(&self, app: &str) {
        let mut all = self.shared.apps.lock().unwrap_or_else(|e| e.into_inner());
        all.remove(app);
    }

    /// Files `from`'s access state (history and followers) under `to` (the app was
    /// renamed); `from` has none afterwards.
    pub fn rename(&self, from: &str, to: &str) {
        let mut all = self.shared.apps.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(state) = all.remove(from) {
            all.insert(to.to_string(), state);
        }
    }

    /// Follows the apps' permanent numbers (a router process learns of destroys and
    /// renames only through its feed): the access state of a name that is gone, or now
    /// belongs to another app, is forgotten as by [`AccessLog::forget`] (followed or not,
    /// so a later app of that name never sees it), and a number that moved to another name
    /// takes its state along as by [`AccessLog::rename`]. The first call only records.
    pub fn set_app_ids(&self, ids: &BTreeMap<String, u64>) {
        let mut known = self.shared.ids.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = known.as_ref() {
            let mut all = self.shared.apps.lock().unwrap_or_else(|e| e.into_inner());
            let mut moved = Vec::new();
            for (name, id) in old {
                if ids.get(name) != Some(id) {
                    // Gone, renamed away, or the name is another app's now.
                    moved.push((all.remove(name), *id));
                }
            }
            for (state, id) in moved {
                let to = ids.iter().find(|(_, i)| **i == id);
                if let (Some(state), Some((to, _))) = (state, to) {
                    all.insert(to.clone(), state);
                }
            }
        }
        *known = Some(ids.clone());
    }

    /// Sets how much history router threads started from now on keep (the controller
    /// sets it before it serves; see [`HistoryLimits`]).
    pub fn set_history_limits(&self, limits: HistoryLimits) {
        *self.shared.limits.lock().unwrap_or_else(|e| e.into_inner()) = limits;
    }

    pub fn history_limits(&self) -> HistoryLimits {
        *self.shared.limits.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a router thread that answers history reads on `queries`.
    pub(crate) fn add_thread(&self, queries: mpsc::UnboundedSender<Query>) {
        let mut threads = self
            .shared
            .threads
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        threads.retain(|t| !t.is_closed());
        threads.push(queries);
    }

    /// `app`'s last access lines (at most [`HistoryLimits::lines`]) from every router thread
    /// of this process, oldest first, each with its time in µs since the Unix epoch.
    pub async fn history(&self, app: &str) -> Vec<(i64, String)> {
        let mut lines = self.kept(app).await;
        let skip = lines.len().saturating_sub(self.history_limits().lines);
        lines.drain(..skip);
        lines
    }

    /// Everything the router threads keep of `app`, oldest first (each thread keeps up to
    /// `lines`; [`AccessLog::history`] returns the newest `lines` of it).
    pub async fn kept(&self, app: &str) -> Vec<(i64, String)> {
        let id = {
            let apps = self.shared.apps.lock().unwrap_or_else(|e| e.into_inner());
            match apps.get(app) {
                Some(a) => a.id,
                None => return Vec::new(),
            }
        };
        let answers: Vec<oneshot::Receiver<history::Copied>> = {
            let mut threads = self
                .shared
                .threads
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            threads.retain(|t| !t.is_closed());
            threads
                .iter()
                .filter_map(|t| {
                    let (reply, answer) = oneshot::channel();
                    t.send(Query { id, reply }).ok().map(|()| answer)
                })
                .collect()
        };
        let mut lines = Vec::new();
        for answer in answers {
            match tokio::time::timeout(QUERY_WAIT, answer).await {
                Ok(Ok(copy)) => lines.extend(copy.lines()),
                Ok(Err(_)) => {}
                Err(_) => tracing::warn!(app, "a router thread did not answer a history read"),
            }
        }
        // Each thread's part is in time order already; a stable sort keeps equal stamps so.
        lines.sort_by_key(|(at, _)| *at);
        lines
    }
}

/// A subscription to one app's access lines; dropping it stops the lines (when it was the
/// last one).
#[derive(Debug)]
pub struct AccessFollower {
    rx: broadcast::Receiver<String>,
    app: Arc<AppAccess>,
}

impl AccessFollower {
    /// The next line; `Err(Lagged(n))` when `n` lines were lost to a slow reader.
    pub async fn recv(&mut self) -> Result<String, broadcast::error::RecvError> {
        self.rx.recv().await
    }

    /// The next line if one is waiting.
    pub fn try_recv(&mut self) -> Result<String, broadcast::error::TryRecvError> {
        self.rx.try_recv()
    }
}

impl Drop for AccessFollower {
    fn drop(&mut self) {
        self.app.followers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What is known of a request while it is served (fixed size, kept inline in the request's
/// future and then in its response body); [`AccessRecord::emit`] keeps it and sends its
/// line.
#[derive(Debug)]
pub(crate) struct AccessRecord {
    pub(crate) req: Request,
    start_us: i64,
    /// Which of the route's hosts the request was for.
    host: usize,
    /// Which of the route's backends served it, if any.
    pub(crate) backend: Option<usize>,
}

impl AccessRecord {
    /// A record for a request to host number `host` of its route.
    pub(crate) fn start(method: &Method, path: &str, host: usize, https: bool) -> AccessRecord {
        AccessRecord {
            req: Request {
                at_us: 0,
                service_ms: 0,
                status: 0,
                https,
                method: method.clone(),
                bytes: 0,
                path: Capped::new(path),
                request_id: Capped::new(""),
            },
            start_us: crate::clock::unix_micros(),
            host,
            backend: None,
        }
    }

    pub(crate) fn set_request_id(&mut self, id: &HeaderValue) {
        self.req.request_id = Capped::new(id.to_str().unwrap_or_default());
    }

    /// Keeps the request in this thread's history and, while someone follows the app,
    /// formats and sends its line (never waits).
    pub(crate) fn emit(&mut self, entry: &RouteEntry) {
        let now = crate::clock::unix_micros();
        self.req.at_us = now;
        self.req.service_ms =
            u32::try_from((now - self.start_us).max(0) / 1000).unwrap_or(u32::MAX);
        let Some(host) = entry.hosts.get(self.host) else {
            return;
        };
        let job = self
            .backend
            .and_then(|i| entry.slots.get(i))
            .map(|s| &s.job);
        history::record(&entry.access, host, job, &self.req);
        if entry.access.followers.load(Ordering::Relaxed) > 0 {
            let line = history::format_line(&self.req, host, job.map(|j| &**j));
            let _ = entry.access.tx.send(line);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_only_while_followed() {
        let log = AccessLog::default();
        let app = log.channel("hello");
        let mut rx = log.subscribe("hello");
        assert_eq!(app.followers.load(Ordering::Relaxed), 1);
        let mut rec = AccessRecord::start(&Method::GET, "/a b", 0, true);
        rec.req.status = 200;
        rec.req.bytes = 5;
        rec.req.at_us = 1;
        let line = history::format_line(&rec.req, "h", Some("j1"));
        let _ = app.tx.send(line);
        let line = rx.try_recv().unwrap();
        assert!(
            line.contains("heroku[router]: at=info method=GET path=\"/a b\""),
            "{line}"
        );
        assert!(line.contains("protocol=https status=200 bytes=5"), "{line}");
        assert!(line.contains("job=j1"), "{line}");
        drop(rx);
        assert_eq!(app.followers.load(Ordering::Relaxed), 0);
    }

    #[test]
    fn fed_app_numbers_forget_destroyed_apps_and_follow_renames() {
        let log = AccessLog::default();
        let ids = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
            pairs.iter().map(|(n, i)| (n.to_string(), *i)).collect()
        };
        log.set_app_ids(&ids(&[("vic", 5), ("bob", 6)]));
        let vic = log.channel("vic");
        let _follower = log.subscribe("vic");
        let bob = log.channel("bob");
        // vic destroyed and a new app made under the name: a new state, followed or not.
        log.set_app_ids(&ids(&[("vic", 7), ("bob", 6)]));
        assert!(!Arc::ptr_eq(&log.channel("vic"), &vic));
        assert!(Arc::ptr_eq(&log.channel("bob"), &bob));
        // bob renamed: his state moves along.
        log.set_app_ids(&ids(&[("vic", 7), ("robert", 6)]));
        assert!(Arc::ptr_eq(&log.channel("robert"), &bob));
        assert!(!Arc::ptr_eq(&log.channel("bob"), &bob));
    }

    #[tokio::test]
    async fn history_of_an_unknown_app_is_empty() {
        let log = AccessLog::default();
        assert!(log.history("nobody").await.is_empty());
        log.channel("quiet");
        assert!(
            log.history("quiet").await.is_empty(),
            "no router thread yet"
        );
    }
}
