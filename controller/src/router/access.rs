//! Access lines: one line per proxied request (method, path, status, bytes, duration, job)
//! for whoever follows the app's log stream (`paas logs -t`). Each app has a bounded
//! broadcast channel ([`CHANNEL_LINES`] lines); a line is only formatted while someone is
//! subscribed (an atomic count of [`AccessFollower`]s, one relaxed load per request, no
//! lock), sending never waits, and a slow reader loses the oldest lines (it is told how
//! many by the channel), so the proxy's hot path neither blocks nor grows memory.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use http::Method;
use tokio::sync::broadcast;

/// Lines kept per app for readers that fall behind.
pub const CHANNEL_LINES: usize = 256;

/// One app's channel and how many follow it.
#[derive(Debug, Clone)]
pub(crate) struct AccessChannel {
    tx: broadcast::Sender<String>,
    followers: Arc<AtomicUsize>,
}

/// The per-app channels. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct AccessLog {
    channels: Arc<Mutex<HashMap<String, AccessChannel>>>,
}

impl AccessLog {
    /// The channel of `app`, made on first use.
    pub(crate) fn channel(&self, app: &str) -> AccessChannel {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels
            .entry(app.to_string())
            .or_insert_with(|| AccessChannel {
                tx: broadcast::channel(CHANNEL_LINES).0,
                followers: Arc::default(),
            })
            .clone()
    }

    /// Follows `app`'s access lines from now on (Heroku format:
    /// `<time> heroku[router]: at=info method=GET path="/" host=… status=200 bytes=5
    /// service=3ms job=… request_id=…`).
    pub fn subscribe(&self, app: &str) -> AccessFollower {
        let channel = self.channel(app);
        channel.followers.fetch_add(1, Ordering::Relaxed);
        AccessFollower {
            rx: channel.tx.subscribe(),
            followers: channel.followers,
        }
    }

    /// Drops the channels of apps no longer in `apps` that nobody follows.
    pub(crate) fn retain_apps(&self, apps: &[&str]) {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels.retain(|app, c| {
            c.followers.load(Ordering::Relaxed) > 0 || apps.contains(&app.as_str())
        });
    }
}

/// A subscription to one app's access lines; dropping it stops the lines (when it was the
/// last one).
#[derive(Debug)]
pub struct AccessFollower {
    rx: broadcast::Receiver<String>,
    followers: Arc<AtomicUsize>,
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
        self.followers.fetch_sub(1, Ordering::Relaxed);
    }
}

/// What is known of a request while it is served; [`AccessRecord::emit`] sends its line.
#[derive(Debug)]
pub(crate) struct AccessRecord {
    pub(crate) tx: broadcast::Sender<String>,
    pub(crate) method: Method,
    pub(crate) path: String,
    pub(crate) host: String,
    pub(crate) status: u16,
    pub(crate) bytes: u64,
    pub(crate) job: String,
    pub(crate) request_id: String,
    pub(crate) https: bool,
    pub(crate) start: Instant,
}

impl AccessRecord {
    /// A record for a request, or None when nobody follows the app (the usual case, which
    /// then costs one atomic load).
    pub(crate) fn start(
        channel: &AccessChannel,
        method: &Method,
        path: &str,
        host: &str,
        https: bool,
    ) -> Option<Box<AccessRecord>> {
        (channel.followers.load(Ordering::Relaxed) > 0).then(|| {
            Box::new(AccessRecord {
                tx: channel.tx.clone(),
                method: method.clone(),
                path: path.to_string(),
                host: host.to_string(),
                status: 0,
                bytes: 0,
                job: String::new(),
                request_id: String::new(),
                https,
                start: Instant::now(),
            })
        })
    }

    /// Formats and sends the line (never waits; lost when nobody listens any more).
    pub(crate) fn emit(&self) {
        let ms = self.start.elapsed().as_millis();
        let at = if self.status >= 500 { "error" } else { "info" };
        let job = if self.job.is_empty() { "-" } else { &self.job };
        let line = format!(
            "{} heroku[router]: at={at} method={} path={:?} host={} protocol={} status={} \
             bytes={} service={ms}ms job={job} request_id={}",
            crate::util::now_rfc3339(),
            self.method,
            self.path,
            self.host,
            if self.https { "https" } else { "http" },
            self.status,
            self.bytes,
            self.request_id,
        );
        let _ = self.tx.send(line);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_only_while_followed() {
        let log = AccessLog::default();
        let tx = log.channel("hello");
        assert!(AccessRecord::start(&tx, &Method::GET, "/", "h", false).is_none());
        let mut rx = log.subscribe("hello");
        let mut rec = AccessRecord::start(&tx, &Method::GET, "/a b", "h", true).unwrap();
        rec.status = 200;
        rec.bytes = 5;
        rec.job = "j1".into();
        rec.emit();
        let line = rx.try_recv().unwrap();
        assert!(
            line.contains("heroku[router]: at=info method=GET path=\"/a b\""),
            "{line}"
        );
        assert!(line.contains("protocol=https status=200 bytes=5"), "{line}");
        assert!(line.contains("job=j1"), "{line}");
        // A reader that never reads costs at most CHANNEL_LINES lines.
        for _ in 0..CHANNEL_LINES * 2 {
            rec.emit();
        }
        assert!(matches!(
            rx.try_recv(),
            Err(broadcast::error::TryRecvError::Lagged(_))
        ));
        drop(rx);
        assert!(AccessRecord::start(&tx, &Method::GET, "/", "h", false).is_none());
    }
}
