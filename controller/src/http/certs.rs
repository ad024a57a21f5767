//! `GET /v1/apps/{app}/certs`, `POST /v1/apps/{app}/certs` `{"certificate": PEM chain,
//! "key": PEM key}` and `DELETE /v1/apps/{app}/certs/{id}`: an app's TLS certificates. An
//! upload must parse, its key must match, it must be valid now, and every DNS name it
//! carries must be one of the app's host names (`<app>.<domain>` or a custom domain of
//! the app; wildcards only from admins); anything else is a `422` saying which check
//! failed (naming the foreign names). The router presents an app's certificate only for
//! that app's hosts. The router's certificate set is reloaded from the store after each change,
//! so the next TLS handshake already sees it. Keys are never sent back.
//!
//! `GET /v1/apps/{app}/tls` and `PUT` (or `PATCH`) `/v1/apps/{app}/tls` `{"https_redirect": true}`: whether
//! the router answers the app's plain HTTP requests with a `308` to HTTPS.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use paas_api::{codes, ErrorBody};
use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::auth::{log_refusal, AppAccess};
use crate::router::tls::{check_cert, CertError, Wildcards, MAX_PEM_BYTES};
use crate::state::Controller;
use crate::store::CertRow;

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new()
        .route("/v1/apps/{app}/certs", get(list).post(add))
        .route("/v1/apps/{app}/certs/{id}", delete(remove))
        .route(
            "/v1/apps/{app}/tls",
            get(tls_settings).put(set_tls).patch(set_tls),
        )
}

/// A certificate on the wire (no key).
#[derive(Debug, Serialize)]
struct Cert {
    id: String,
    app: String,
    /// The DNS names it covers.
    names: Vec<String>,
    not_after: String,
    subject: String,
    issuer: String,
    created_at: String,
}

impl From<CertRow> for Cert {
    fn from(c: CertRow) -> Cert {
        Cert {
            id: c.id,
            app: c.app,
            names: c.names,
            not_after: c.not_after,
            subject: c.subject,
            issuer: c.issuer,
            created_at: c.created_at,
        }
    }
}

#[derive(Debug, Deserialize)]
struct AddCert {
    certificate: String,
    key: String,
}

/// A `422 Unprocessable Entity` with a validation message.
fn unprocessable(message: String) -> Response {
    (
        StatusCode::UNPROCESSABLE_ENTITY,
        Json(ErrorBody::new(codes::VALIDATION, message)),
    )
        .into_response()
}

async fn app_exists(c: &Controller, app: &str) -> Result<(), ApiError> {
    match c.store.get_app(app).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound(format!("no app named {app}"))),
    }
}

/// Loads the store's certificates into the router.
async fn reload(c: &Controller) {
    if let Err(e) = crate::routing::load_certs(&c.store, &c.routes).await {
        tracing::warn!(error = %e, "reloading the router's certificates failed");
    }
}

async fn list(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
) -> Result<Json<Vec<Cert>>, ApiError> {
    app_exists(&c, &app).await?;
    let certs = c.store.certs(Some(&app)).await?;
    Ok(Json(certs.into_iter().map(Cert::from).collect()))
}

async fn add(
    AppAccess(caller): AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    app_exists(&c, &app).await?;
    if body.len() > 4 * MAX_PEM_BYTES {
        return Ok(unprocessable(format!(
            "the request is {} bytes; a certificate chain and key fit in {} bytes each",
            body.len(),
            MAX_PEM_BYTES
        )));
    }
    let req: AddCert = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return Err(ApiError::BadRequest(format!(
                "the body must be {{\"certificate\": \"-----BEGIN CERTIFICATE-----…\", \"key\": \
                 \"-----BEGIN PRIVATE KEY-----…\"}}: {e}"
            )))
        }
    };
    let mut hosts = vec![c.settings.app_host(&app)];
    hosts.extend(
        c.store
            .domains(Some(&app))
            .await?
            .into_iter()
            .map(|d| d.hostname),
    );
    let now = crate::util::unix_ms() / 1000;
    let wildcards = if caller.is_admin() {
        Wildcards::Allowed
    } else {
        Wildcards::Refused
    };
    let checked = match check_cert(&req.certificate, &req.key, &hosts, wildcards, now) {
        Ok(c) => c,
        Err(e) => {
            if matches!(e, CertError::ForeignNames { .. }) {
                log_refusal(422, caller.source, &caller.path, &e.to_string());
            }
            return Ok(unprocessable(e.to_string()));
        }
    };
    let row = CertRow {
        id: crate::util::random_hex(8),
        app: app.clone(),
        names: checked.names,
        cert_pem: req.certificate,
        key_pem: req.key,
        not_after: checked.not_after,
        subject: checked.subject,
        issuer: checked.issuer,
        created_at: crate::util::now_rfc3339(),
    };
    c.store.add_cert(&row).await?;
    reload(&c).await;
    tracing::info!(%app, id = %row.id, names = ?row.names, "certificate added");
    Ok((StatusCode::CREATED, Json(Cert::from(row))).into_response())
}

/// An app's HTTPS settings on the wire.
#[derive(Debug, Serialize, Deserialize)]
struct TlsSettings {
    https_redirect: bool,
}

async fn tls_settings(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
) -> Result<Json<TlsSettings>, ApiError> {
    app_exists(&c, &app).await?;
    let on = c.store.https_redirects().await?.contains(&app);
    Ok(Json(TlsSettings { https_redirect: on }))
}

async fn set_tls(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    body: Bytes,
) -> Result<Json<TlsSettings>, ApiError> {
    let req: TlsSettings = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be {{\"https_redirect\": true|false}}: {e}"
        ))
    })?;
    app_exists(&c, &app).await?;
    c.store
        .set_https_redirect(&app, req.https_redirect, &crate::util::now_rfc3339())
        .await?;
    reload(&c).await;
    tracing::info!(%app, on = req.https_redirect, "HTTPS redirect set");
    Ok(Json(req))
}

async fn remove(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    app_exists(&c, &app).await?;
    if !c.store.remove_cert(&app, &id).await? {
        return Err(ApiError::NotFound(format!(
            "{app} has no certificate {id}; see `paas certs -a {app}`"
        )));
    }
    reload(&c).await;
    tracing::info!(%app, %id, "certificate removed");
    Ok(StatusCode::NO_CONTENT)
}
