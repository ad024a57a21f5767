//! The `paas-router` processes that follow this controller's feed, and what the controller
//! asks of them: their access lines (for `paas logs`) and drain waits (before a replaced
//! job gets its SIGTERM).
//!
//! A router announces its internal endpoint on each feed request (header
//! `paas_router::internal::ANNOUNCE_HEADER`); the feed handler [`RouterPeers::register`]s
//! it for as long as that feed stream lives, so the list is every router following this
//! controller now. Requests carry the node token (the router checks it). A router that does
//! not answer is left out of that read (logged), never an error for the user.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::StreamExt as _;
use tokio::sync::mpsc;

/// How long a history read waits for one router.
const READ_WAIT: Duration = Duration::from_secs(3);

/// Why an announced router endpoint was refused.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    #[error(
        "the router announced {0:?} as its internal endpoint; it must be an http://HOST:PORT URL"
    )]
    BadUrl(String),
}

#[derive(Debug, Default)]
struct Inner {
    next: AtomicU64,
    peers: Mutex<BTreeMap<u64, String>>,
}

/// The routers following this controller, by registration, and the node token every
/// request to them carries. Cheap to clone.
#[derive(Clone, Default)]
pub struct RouterPeers {
    inner: Arc<Inner>,
    token: Arc<str>,
}

impl std::fmt::Debug for RouterPeers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RouterPeers")
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// One router's registration; dropping it (the feed stream ended) forgets the router.
#[derive(Debug)]
pub struct PeerGuard {
    id: u64,
    inner: Arc<Inner>,
}

impl Drop for PeerGuard {
    fn drop(&mut self) {
        let mut peers = self.inner.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.remove(&self.id);
    }
}

impl RouterPeers {
    /// No router yet; requests to those that register carry `node_token`.
    pub fn new(node_token: &str) -> RouterPeers {
        RouterPeers {
            inner: Arc::default(),
            token: Arc::from(node_token),
        }
    }

    /// Registers the router whose internal endpoint is `url` until the guard is dropped.
    pub fn register(&self, url: &str) -> Result<PeerGuard, PeerError> {
        let rest = url
            .strip_prefix("http://")
            .ok_or_else(|| PeerError::BadUrl(url.into()))?;
        let hostport = rest.trim_end_matches('/');
        let valid = !hostport.is_empty()
            && !hostport.contains(['/', '?', '#', '@', ' '])
            && hostport
                .rsplit_once(':')
                .is_some_and(|(_, port)| port.parse::<u16>().is_ok_and(|p| p > 0));
        if !valid {
            return Err(PeerError::BadUrl(url.into()));
        }
        let id = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let mut peers = self.inner.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.insert(id, format!("http://{hostport}"));
        Ok(PeerGuard {
            id,
            inner: Arc::clone(&self.inner),
        })
    }

    /// The routers following now: (registration, internal URL).
    pub fn list(&self) -> Vec<(u64, String)> {
        let peers = self.inner.peers.lock().unwrap_or_else(|e| e.into_inner());
        peers.iter().map(|(id, u)| (*id, u.clone())).collect()
    }
}

fn client() -> &'static reqwest::Client {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(2))
            .no_proxy()
            .build()
            .unwrap_or_default()
    })
}

fn access_url(base: &str, app: &str, follow: bool) -> String {
    format!("{base}/internal/access/{app}?follow={follow}")
}

/// One line of a router's access stream.
#[derive(Debug, PartialEq, Eq)]
enum AccessLine {
    History(i64, String),
    EndOfHistory,
    Live(String),
}

fn parse(line: &str) -> Option<AccessLine> {
    if line == "E" {
        return Some(AccessLine::EndOfHistory);
    }
    if let Some(rest) = line.strip_prefix("H ") {
        let (at, text) = rest.split_once(' ')?;
        return Some(AccessLine::History(at.parse().ok()?, text.to_string()));
    }
    line.strip_prefix("L ")
        .map(|text| AccessLine::Live(text.to_string()))
}

/// Every following router's kept access lines of `app`, each with its µs stamp (merged,
/// oldest first).
pub async fn history(peers: &RouterPeers, app: &str) -> Vec<(i64, String)> {
    let token = peers.token.to_string();
    let reads = peers.list().into_iter().map(|(_, base)| {
        let token = token.clone();
        async move {
            let resp = client()
                .get(access_url(&base, app, false))
                .bearer_auth(&token)
                .timeout(READ_WAIT)
                .send()
                .await
                .and_then(|r| r.error_for_status());
            let text = match resp {
                Ok(r) => r.text().await,
                Err(e) => Err(e),
            };
            match text {
                Ok(t) => t
                    .lines()
                    .filter_map(|l| match parse(l) {
                        Some(AccessLine::History(at, text)) => Some((at, text)),
                        _ => None,
                    })
                    .collect(),
                Err(e) => {
                    tracing::warn!(router = %base, "reading the router's access lines: {e}");
                    Vec::new()
                }
            }
        }
    });
    let mut lines: Vec<(i64, String)> = futures_util::future::join_all(reads)
        .await
        .into_iter()
        .flatten()
        .collect();
    lines.sort_by_key(|(at, _)| *at);
    lines
}

/// Follows `app`'s access lines on the router at `base`: its history goes to `history`
/// (then the sender is dropped), its live lines to `live` until `live` closes or the
/// stream ends.
async fn follow_one(
    base: String,
    token: String,
    app: String,
    history: Option<tokio::sync::oneshot::Sender<Vec<(i64, String)>>>,
    live: mpsc::Sender<String>,
) {
    let resp = client()
        .get(access_url(&base, &app, true))
        .bearer_auth(&token)
        .send()
        .await
        .and_then(|r| r.error_for_status());
    let resp = match resp {
        Ok(r) => r,
        Err(e) => {
            tracing::warn!(router = %base, "following the router's access lines: {e}");
            return;
        }
    };
    let mut body = resp.bytes_stream();
    let mut pending: Vec<u8> = Vec::new();
    let mut kept = Vec::new();
    let mut history = history;
    loop {
        let chunk = tokio::select! {
            _ = live.closed() => return,
            chunk = body.next() => chunk,
        };
        let Some(Ok(chunk)) = chunk else { return };
        pending.extend_from_slice(&chunk);
        while let Some(pos) = pending.iter().position(|b| *b == b'\n') {
            let raw: Vec<u8> = pending.drain(..=pos).collect();
            let text = String::from_utf8_lossy(&raw[..raw.len() - 1]).into_owned();
            let sent = match parse(&text) {
                Some(AccessLine::History(at, line)) => {
                    kept.push((at, line));
                    Ok(())
                }
                Some(AccessLine::EndOfHistory) => {
                    if let Some(tx) = history.take() {
                        let _ = tx.send(std::mem::take(&mut kept));
                    }
                    Ok(())
                }
                Some(AccessLine::Live(line)) => live.send(line).await.map_err(drop),
                None => Ok(()),
            };
            if sent.is_err() {
                return;
            }
        }
    }
}

/// Follows `app`'s access lines on every router following this controller (and, on
/// [`RouterFollow::rescan`], on routers that began following since).
pub struct RouterFollow {
    app: String,
    token: String,
    followed: HashSet<u64>,
    tx: mpsc::Sender<String>,
    /// The live lines of every followed router.
    pub rx: mpsc::Receiver<String>,
}

impl RouterFollow {
    /// Starts following on every router; returns the follow and the routers' kept lines
    /// (each router's history as of its subscription, merged oldest first), which the live
    /// lines never repeat.
    pub async fn start(peers: &RouterPeers, app: &str) -> (RouterFollow, Vec<(i64, String)>) {
        let (tx, rx) = mpsc::channel(1024);
        let mut f = RouterFollow {
            app: app.to_string(),
            token: peers.token.to_string(),
            followed: HashSet::new(),
            tx,
            rx,
        };
        let waits = f.rescan_inner(peers);
        let mut lines = Vec::new();
        for wait in waits {
            if let Ok(Ok(h)) = tokio::time::timeout(READ_WAIT, wait).await {
                lines.extend(h);
            }
        }
        lines.sort_by_key(|(at, _)| *at);
        (f, lines)
    }

    fn rescan_inner(
        &mut self,
        peers: &RouterPeers,
    ) -> Vec<tokio::sync::oneshot::Receiver<Vec<(i64, String)>>> {
        let mut waits = Vec::new();
        for (id, base) in peers.list() {
            if !self.followed.insert(id) {
                continue;
            }
            let (htx, hrx) = tokio::sync::oneshot::channel();
            waits.push(hrx);
            tokio::spawn(follow_one(
                base,
                self.token.clone(),
                self.app.clone(),
                Some(htx),
                self.tx.clone(),
            ));
        }
        waits
    }

    /// Follows routers that began following this controller since the last look. Their
    /// kept lines (requests served before this look) are sent as live lines.
    pub fn rescan(&mut self, peers: &RouterPeers) {
        for wait in self.rescan_inner(peers) {
            let tx = self.tx.clone();
            tokio::spawn(async move {
                if let Ok(Ok(lines)) = tokio::time::timeout(READ_WAIT, wait).await {
                    for (_, l) in lines {
                        if tx.send(l).await.is_err() {
                            return;
                        }
                    }
                }
            });
        }
    }
}

/// Waits until every router following this controller reports that the backend at `addr`
/// left its table and serves no request (at most `grace`); true when all did (or none
/// follows). A router that cannot be asked counts as drained (it is gone or restarting,
/// and a restarted router starts with no request in flight).
pub async fn wait_drained(peers: &RouterPeers, addr: &str, grace: Duration) -> bool {
    let token = peers.token.to_string();
    let asks = peers.list().into_iter().map(|(_, base)| {
        let token = token.clone();
        async move {
            let resp = client()
                .get(format!("{base}/internal/drained"))
                .query(&[
                    ("addr", addr.to_string()),
                    ("wait_ms", grace.as_millis().to_string()),
                ])
                .bearer_auth(&token)
                .timeout(grace + Duration::from_secs(5))
                .send()
                .await
                .and_then(|r| r.error_for_status());
            let answer = match resp {
                Ok(r) => r.json::<serde_json::Value>().await,
                Err(e) => Err(e),
            };
            match answer {
                Ok(v) => v["drained"].as_bool().unwrap_or(true),
                Err(e) => {
                    tracing::warn!(router = %base, %addr, "asking the router to drain: {e}");
                    true
                }
            }
        }
    });
    futures_util::future::join_all(asks)
        .await
        .into_iter()
        .all(|d| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registrations_last_as_long_as_their_guard() {
        let peers = RouterPeers::default();
        let a = peers.register("http://127.0.0.1:4000").unwrap();
        let b = peers.register("http://127.0.0.1:4001/").unwrap();
        assert_eq!(peers.list().len(), 2);
        assert_eq!(peers.list()[1].1, "http://127.0.0.1:4001");
        drop(a);
        assert_eq!(peers.list().len(), 1);
        drop(b);
        assert!(peers.list().is_empty());
    }

    #[test]
    fn only_plain_host_port_urls_are_taken() {
        let peers = RouterPeers::default();
        for bad in [
            "https://127.0.0.1:4000",
            "http://127.0.0.1",
            "http://127.0.0.1:0",
            "http://a@127.0.0.1:4000",
            "http://127.0.0.1:4000/x",
            "",
        ] {
            assert!(peers.register(bad).is_err(), "{bad}");
        }
        assert!(peers.list().is_empty());
    }

    #[test]
    fn stream_lines_parse() {
        assert_eq!(
            parse("H 12 a b c"),
            Some(AccessLine::History(12, "a b c".into()))
        );
        assert_eq!(parse("E"), Some(AccessLine::EndOfHistory));
        assert_eq!(parse("L x y"), Some(AccessLine::Live("x y".into())));
        assert_eq!(parse("H x y"), None);
        assert_eq!(parse(""), None);
    }
}
