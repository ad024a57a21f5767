//! `GET /v1/apps/{app}/acme` and `PUT` (or `PATCH`) `/v1/apps/{app}/acme` `{"enabled": bool}`:
//! automatic certificates (ACME HTTP-01) for the app's custom domains (`paas certs:auto`).
//! Turning them on starts the orders in the background (`crate::acme`); the answer lists
//! each custom domain's state: `pending`, `issued` (with its expiry) or `failed` with the
//! reason. Turning them off removes the certificates they issued. `409` when the controller
//! has no `--acme-directory`.
//!
//! The dashboard's certificate form calls the same [`acme_status`] and [`set_acme`].

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::auth::AppAccess;
use crate::state::Controller;

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new().route("/v1/apps/{app}/acme", get(status).put(set).patch(set))
}

/// One custom domain's automatic certificate on the wire.
#[derive(Debug, Serialize)]
pub(crate) struct AcmeDomain {
    pub(crate) hostname: String,
    /// `pending`, `issued` or `failed`.
    pub(crate) state: String,
    /// Why the last order failed (empty otherwise).
    pub(crate) reason: String,
    /// RFC 3339 expiry of the issued certificate (empty when none).
    pub(crate) not_after: String,
    /// The certificate's id in `paas certs` (empty when none).
    pub(crate) cert_id: String,
}

/// An app's automatic certificate settings and states.
#[derive(Debug, Serialize)]
pub(crate) struct AcmeStatus {
    pub(crate) enabled: bool,
    /// Whether this controller has an ACME CA configured.
    pub(crate) available: bool,
    pub(crate) domains: Vec<AcmeDomain>,
}

#[derive(Debug, Deserialize)]
struct SetAcme {
    enabled: bool,
}

/// The app's setting and each custom domain's state (domains only while it is on).
pub(crate) async fn acme_status(c: &Controller, app: &str) -> Result<AcmeStatus, ApiError> {
    if c.store.get_app(app).await?.is_none() {
        return Err(ApiError::NotFound(format!("no app named {app}")));
    }
    let enabled = c.store.acme_apps().await?.iter().any(|a| a == app);
    let states = c.store.acme_domains(Some(app)).await?;
    let mut domains = Vec::new();
    if enabled {
        for d in c.store.domains(Some(app)).await? {
            let s = states.iter().find(|s| s.hostname == d.hostname);
            domains.push(AcmeDomain {
                hostname: d.hostname.clone(),
                state: s.map_or_else(
                    || crate::store::acme_state::PENDING.to_string(),
                    |s| s.state.clone(),
                ),
                reason: s.map(|s| s.reason.clone()).unwrap_or_default(),
                not_after: s
                    .filter(|s| s.not_after > 0)
                    .map(|s| crate::util::rfc3339_from_ms(s.not_after.saturating_mul(1000)))
                    .unwrap_or_default(),
                cert_id: s.map(|s| s.cert_id.clone()).unwrap_or_default(),
            });
        }
    }
    Ok(AcmeStatus {
        enabled,
        available: c.settings.acme.is_some(),
        domains,
    })
}

async fn status(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
) -> Result<Json<AcmeStatus>, ApiError> {
    Ok(Json(acme_status(&c, &app).await?))
}

async fn set(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    body: Bytes,
) -> Result<Json<AcmeStatus>, ApiError> {
    let req: SetAcme = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!("the body must be {{\"enabled\": true|false}}: {e}"))
    })?;
    Ok(Json(set_acme(&c, &app, req.enabled).await?))
}

/// Turns automatic certificates of `app` on (the orders start in the background) or off
/// (the certificates they issued are removed); the state after. `409` when turning them
/// on without an ACME CA configured.
pub(crate) async fn set_acme(
    c: &Arc<Controller>,
    app: &str,
    enabled: bool,
) -> Result<AcmeStatus, ApiError> {
    if c.store.get_app(app).await?.is_none() {
        return Err(ApiError::NotFound(format!("no app named {app}")));
    }
    if enabled && c.settings.acme.is_none() {
        return Err(ApiError::Conflict(crate::acme::AcmeError::Off.to_string()));
    }
    // Off removes the certificates it issued (uploaded ones stay).
    let issued = if enabled {
        Vec::new()
    } else {
        c.store.acme_domains(Some(app)).await?
    };
    c.store
        .set_acme(app, enabled, &crate::util::now_rfc3339())
        .await?;
    if !issued.is_empty() {
        for d in issued.iter().filter(|d| !d.cert_id.is_empty()) {
            c.store.remove_cert(app, &d.cert_id).await?;
        }
        if let Err(e) = crate::routing::load_certs(&c.store, &c.routes).await {
            tracing::warn!(error = %e, "reloading the router's certificates failed");
        }
    }
    tracing::info!(%app, on = enabled, "automatic certificates set");
    if enabled {
        crate::acme::kick(c, app);
    }
    acme_status(c, app).await
}
