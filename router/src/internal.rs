//! The router process's internal endpoint: what a controller asks of the router it feeds.
//!
//! It listens on its own address (`--internal-listen`, loopback by default, never the
//! apps' port) and answers only requests carrying the router's token (the node token the
//! feed is asked with), compared in constant time; with no token it refuses everything.
//! The router announces where it answers on every feed request (header
//! [`ANNOUNCE_HEADER`]), so a controller knows each router that follows it.
//!
//! - `GET /internal/access/{app}?follow=BOOL`: the app's access history, then (with
//!   `follow=true`) its live access lines, as text lines: `H <µs> <line>` for each kept
//!   request (oldest first), one `E` line when the history ends, then `L <line>` for each
//!   new request. The follower is subscribed before the history is read and the live lines
//!   the history already had are not sent again, so nothing is skipped or doubled.
//! - `GET /internal/drained?addr=IP:PORT&wait_ms=N`: waits (at most `N` ms) until the
//!   backend at `addr` has left the router's table and serves no request, then answers
//!   `{"drained":BOOL,"in_flight":N}`: the controller's drain wait before a SIGTERM.

use std::collections::HashSet;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use hyper::body::{Body, Frame, Incoming};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;

use crate::RouteTable;

/// The feed request header that says where the router's internal endpoint answers.
pub const ANNOUNCE_HEADER: &str = "x-paas-router-internal";
/// The longest drain wait one request may ask for.
pub const MAX_DRAIN_WAIT: Duration = Duration::from_secs(120);
/// Lines of a follower's stream buffered before the oldest live ones are dropped.
const STREAM_LINES: usize = 1024;

/// A response body fed line by line from a channel (ends when the sender goes).
pub struct Lines(mpsc::Receiver<Bytes>);

impl Body for Lines {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// Serves the internal endpoint on `listener` until the task is dropped.
pub async fn serve(listener: TcpListener, table: RouteTable, token: String) -> std::io::Result<()> {
    let token: std::sync::Arc<str> = token.into();
    loop {
        let (stream, _) = listener.accept().await?;
        let (table, token) = (table.clone(), token.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req| {
                let (table, token) = (table.clone(), token.clone());
                async move { Ok::<_, Infallible>(answer(req, &table, &token).await) }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

/// True when `a` equals `b`, in time that depends only on their lengths.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn text(status: StatusCode, body: String) -> Response<Lines> {
    let (tx, rx) = mpsc::channel(1);
    let _ = tx.try_send(Bytes::from(body));
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Lines(rx))
        .unwrap_or_else(|_| Response::new(Lines(mpsc::channel(1).1)))
}

/// The value of query parameter `name`, percent-decoded.
fn param(query: &str, name: &str) -> Option<String> {
    query.split('&').find_map(|p| {
        let (k, v) = p.split_once('=').unwrap_or((p, ""));
        (k == name).then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        match (
            b[i],
            b.get(i + 1).copied().and_then(hex),
            b.get(i + 2).copied().and_then(hex),
        ) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

async fn answer(req: Request<Incoming>, table: &RouteTable, token: &str) -> Response<Lines> {
    let presented = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if token.is_empty() || !constant_time_eq(presented.as_bytes(), token.as_bytes()) {
        return text(
            StatusCode::UNAUTHORIZED,
            "the router's internal endpoint needs the node token (Authorization: Bearer)\n".into(),
        );
    }
    if req.method() != http::Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "only GET\n".into());
    }
    let path = req.uri().path();
    let query = req.uri().query().unwrap_or_default();
    if let Some(app) = path.strip_prefix("/internal/access/") {
        let follow = param(query, "follow").as_deref() == Some("true");
        return access(table, &percent_decode(app), follow).await;
    }
    if path == "/internal/drained" {
        let Some(addr) = param(query, "addr") else {
            return text(StatusCode::BAD_REQUEST, "addr=IP:PORT is missing\n".into());
        };
        let wait = param(query, "wait_ms")
            .and_then(|w| w.parse().ok())
            .map_or(Duration::ZERO, Duration::from_millis)
            .min(MAX_DRAIN_WAIT);
        let drained = wait_left_and_drained(table, &addr, wait).await;
        let body = serde_json::json!({"drained": drained, "in_flight": table.in_flight(&addr)});
        return text(StatusCode::OK, format!("{body}\n"));
    }
    text(StatusCode::NOT_FOUND, format!("no internal route {path}\n"))
}

/// Waits until no route of `table` sends to `addr` and it serves no request, or `wait`
/// passed; true when it drained.
pub async fn wait_left_and_drained(table: &RouteTable, addr: &str, wait: Duration) -> bool {
    let deadline = tokio::time::Instant::now() + wait;
    loop {
        let listed = table
            .snapshot()
            .routes
            .iter()
            .any(|e| e.route.backends.iter().any(|b| b.addr == addr));
        if !listed && table.in_flight(addr) == 0 {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The `/internal/access/{app}` stream (see the module doc).
async fn access(table: &RouteTable, app: &str, follow: bool) -> Response<Lines> {
    let log = table.access_log();
    let mut live = follow.then(|| log.subscribe(app));
    let history = log.history(app).await;
    let (tx, rx) = mpsc::channel::<Bytes>(STREAM_LINES);
    tokio::spawn(async move {
        let mut seen: HashSet<String> = HashSet::new();
        for (at_us, line) in history {
            let out = Bytes::from(format!("H {at_us} {line}\n"));
            if live.is_some() {
                seen.insert(line);
            }
            if tx.send(out).await.is_err() {
                return;
            }
        }
        if tx.send(Bytes::from_static(b"E\n")).await.is_err() {
            return;
        }
        let Some(live) = live.as_mut() else { return };
        loop {
            tokio::select! {
                _ = tx.closed() => return,
                line = live.recv() => match line {
                    Ok(line) => {
                        if seen.remove(&line) {
                            continue;
                        }
                        if tx.send(Bytes::from(format!("L {line}\n"))).await.is_err() {
                            return;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                        tracing::debug!(n, "an access follower fell behind");
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
            }
        }
    });
    Response::builder()
        .header(http::header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(Lines(rx))
        .unwrap_or_else(|_| Response::new(Lines(mpsc::channel(1).1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_are_decoded() {
        assert_eq!(
            param("addr=10.0.0.1%3A80&wait_ms=5", "addr").as_deref(),
            Some("10.0.0.1:80")
        );
        assert_eq!(param("follow=true", "follow").as_deref(), Some("true"));
        assert_eq!(param("follow", "addr"), None);
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }
}
