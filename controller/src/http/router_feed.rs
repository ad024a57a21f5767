//! `GET /internal/router/feed` (a node token): the stream the `paas-router` process
//! follows: the whole router state as one JSON line, then again after each change.

use std::sync::Arc;

use axum::extract::State;
use axum::routing::get;
use axum::Router;

use super::NodeAuth;
use crate::state::Controller;

/// `GET /internal/router/feed` (a node token): what `paas-router` follows.
pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new().route("/internal/router/feed", get(feed))
}

/// Streams the router state as JSON lines: the whole state now, then again whenever the
/// route table, redirects, certificates or ACME challenges change (push, no polling), and
/// a blank line every [`paas_router::process::KEEPALIVE`] while nothing does.
///
/// A router that announces its internal endpoint (header
/// [`paas_router::internal::ANNOUNCE_HEADER`]) is one of the controller's
/// [`crate::router_peers`] while the stream lives.
async fn feed(
    _: NodeAuth,
    State(c): State<Arc<Controller>>,
    headers: http::HeaderMap,
) -> axum::response::Response {
    use paas_router::feed::Feed;
    let peer = headers
        .get(paas_router::internal::ANNOUNCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|url| match c.router_peers.register(url) {
            Ok(guard) => Some(guard),
            Err(e) => {
                tracing::warn!("{e}; its access lines and drain waits are left out");
                None
            }
        });
    let routes = c.routes.changes();
    let challenges = c.routes.challenges().changes();
    let start = (c, routes, challenges, None::<String>, peer);
    let lines = futures_util::stream::unfold(start, |(c, mut r, mut ch, last, peer)| async move {
        loop {
            if last.is_some() {
                tokio::select! {
                    changed = r.changed() => changed.ok()?,
                    changed = ch.changed() => changed.ok()?,
                    _ = tokio::time::sleep(paas_router::process::KEEPALIVE) => {
                        let keepalive = Ok::<_, std::convert::Infallible>(bytes::Bytes::from_static(b"\n"));
                        return Some((keepalive, (c, r, ch, last, peer)));
                    }
                }
            }
            r.mark_unchanged();
            ch.mark_unchanged();
            let mut feed = Feed::of(&c.routes);
            // The apps' permanent numbers: the router forgets a destroyed app's access
            // history by them, and moves a renamed one's.
            feed.app_ids = match c.store.list_apps().await {
                Ok(apps) => Some(
                    apps.into_iter()
                        .map(|a| (a.name, u64::from(a.id)))
                        .collect(),
                ),
                Err(e) => {
                    tracing::warn!("listing apps for the router feed: {e}");
                    None
                }
            };
            let json = serde_json::to_string(&feed).unwrap_or_default();
            if last.as_ref() != Some(&json) {
                let line = bytes::Bytes::from(format!("{json}\n"));
                return Some((Ok(line), (c, r, ch, Some(json), peer)));
            }
        }
    });
    axum::response::Response::builder()
        .header(http::header::CONTENT_TYPE, "application/x-ndjson")
        .header(http::header::CACHE_CONTROL, "no-store")
        .body(axum::body::Body::from_stream(lines))
        .unwrap_or_default()
}
