//! `GET /nodes` (every node: state, capacity and use, jobs) and the drain/undrain forms.
//! Admins only ([`AdminAuth`]): members get a 403 page and no Nodes link.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use crate::auth::AdminAuth;
use crate::render::{Page, PageError};
use crate::{ActionError, Dashboard};

/// `GET /nodes`
#[derive(Template)]
#[template(path = "nodes.html")]
pub(crate) struct NodesPage {
    nodes: Vec<NodeView>,
    csrf: String,
    user: String,
    admin: bool,
}

struct NodeView {
    name: String,
    url: String,
    state: String,
    state_class: &'static str,
    draining: bool,
    memory: String,
    reserved: String,
    used: String,
    /// Reserved memory as a percentage of the node's, for the bar (0–100).
    reserved_percent: u64,
    last_seen: String,
    jobs: Vec<String>,
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

/// `1.5 GiB`, `512 MiB`, `0 B`.
pub(crate) fn bytes_text(b: u64) -> String {
    const UNITS: [&str; 4] = ["KiB", "MiB", "GiB", "TiB"];
    if b < 1024 {
        return format!("{b} B");
    }
    let mut v = b as f64;
    let mut unit = "B";
    for u in UNITS {
        if v < 1024.0 {
            break;
        }
        v /= 1024.0;
        unit = u;
    }
    if v >= 100.0 || v.fract() < 0.05 {
        format!("{v:.0} {unit}")
    } else {
        format!("{v:.1} {unit}")
    }
}

/// `GET /nodes`
pub(crate) async fn list<D: Dashboard>(
    auth: AdminAuth,
    State(d): State<Arc<D>>,
) -> Result<Page<NodesPage>, PageError> {
    let mut nodes = d.nodes().await.map_err(|message| PageError::Backend {
        action: "list the nodes",
        message,
    })?;
    nodes.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(Page(NodesPage {
        nodes: nodes
            .into_iter()
            .map(|n| NodeView {
                state_class: match n.state.as_str() {
                    "up" => "up",
                    "down" => "crashed",
                    "draining" => "busy",
                    _ => "unknown",
                },
                draining: n.state == "draining",
                memory: bytes_text(n.memory_bytes),
                reserved: bytes_text(n.reserved_bytes),
                used: bytes_text(n.used_bytes),
                reserved_percent: (n.reserved_bytes.saturating_mul(100))
                    .checked_div(n.memory_bytes)
                    .unwrap_or(0)
                    .min(100),
                last_seen: n.last_seen,
                jobs: n.jobs,
                state: n.state,
                url: n.url,
                name: n.name,
            })
            .collect(),
        csrf: auth.session.csrf,
        user: auth.session.user,
        admin: auth.viewer.admin,
    }))
}

async fn set<D: Dashboard>(
    auth: AdminAuth,
    d: Arc<D>,
    node: String,
    csrf: String,
    draining: bool,
) -> Result<Response, PageError> {
    if !auth.session.csrf_ok(&csrf) {
        return Err(PageError::Csrf);
    }
    match d.set_draining(&node, draining).await {
        Ok(()) => Ok(Redirect::to("/nodes").into_response()),
        Err(ActionError::User(m)) => Err(PageError::NotFound { what: m }),
        Err(ActionError::Internal(message)) => Err(PageError::Backend {
            action: "drain the node",
            message,
        }),
    }
}

/// `POST /nodes/{name}/drain`
pub(crate) async fn drain<D: Dashboard>(
    auth: AdminAuth,
    State(d): State<Arc<D>>,
    Path(node): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    set(auth, d, node, f.csrf, true).await
}

/// `POST /nodes/{name}/undrain`
pub(crate) async fn undrain<D: Dashboard>(
    auth: AdminAuth,
    State(d): State<Arc<D>>,
    Path(node): Path<String>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    set(auth, d, node, f.csrf, false).await
}

#[cfg(test)]
mod tests {
    use super::bytes_text;

    #[test]
    fn bytes_read_well() {
        assert_eq!(bytes_text(0), "0 B");
        assert_eq!(bytes_text(512 * 1024 * 1024), "512 MiB");
        assert_eq!(bytes_text(3 * 1024 * 1024 * 1024 / 2), "1.5 GiB");
    }
}
