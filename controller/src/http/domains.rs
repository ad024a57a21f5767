//! `GET /v1/apps/{app}/domains`, `POST /v1/apps/{app}/domains` `{"hostname": "www.x.test"}`
//! and `DELETE /v1/apps/{app}/domains/{hostname}`: an app's custom domains. A host name
//! belongs to at most one app (a taken one is a `409` that names the owner only to those
//! who may see that app); the router serves it next to `<app>.<domain>` from the
//! scheduler's next route push (it is notified at once).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::ApiError;
use crate::auth::AppAccess;
use crate::state::Controller;
use crate::store::{DomainAdded, DomainRow};

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new()
        .route("/v1/apps/{app}/domains", get(list).post(add))
        .route("/v1/apps/{app}/domains/{hostname}", delete(remove))
}

/// A custom domain on the wire.
#[derive(Debug, Serialize)]
struct Domain {
    hostname: String,
    app: String,
    created_at: String,
}

impl From<DomainRow> for Domain {
    fn from(d: DomainRow) -> Domain {
        Domain {
            hostname: d.hostname,
            app: d.app,
            created_at: d.created_at,
        }
    }
}

#[derive(Debug, Deserialize)]
struct AddDomain {
    hostname: String,
}

/// Checks a host name for `domains:add`: lower-cased, at least two dot-separated labels of
/// letters, digits and inner hyphens (1–63 characters each, 253 in all), not the platform's
/// own domain or a name under it (those are `<app>.<domain>`).
pub fn validate_hostname(raw: &str, platform_domain: &str) -> Result<String, String> {
    let host = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let what = || format!("{raw:?} is not a valid host name");
    if host.is_empty() || host.len() > 253 {
        return Err(format!("{}: it must be 1 to 253 characters", what()));
    }
    let labels: Vec<&str> = host.split('.').collect();
    if labels.len() < 2 {
        return Err(format!(
            "{}: use a full name with a dot, like www.example.com",
            what()
        ));
    }
    for label in &labels {
        let ok = !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            && !label.starts_with('-')
            && !label.ends_with('-');
        if !ok {
            return Err(format!(
                "{}: each part between dots must be 1 to 63 letters, digits or inner hyphens",
                what()
            ));
        }
    }
    let platform = platform_domain.to_ascii_lowercase();
    if host == platform || host.ends_with(&format!(".{platform}")) {
        return Err(format!(
            "{host} is under the platform domain {platform}, whose names are the apps' own; \
             pick a name outside it"
        ));
    }
    Ok(host)
}

async fn app_exists(c: &Controller, app: &str) -> Result<(), ApiError> {
    match c.store.get_app(app).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::NotFound(format!("no app named {app}"))),
    }
}

async fn list(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
) -> Result<Json<Vec<Domain>>, ApiError> {
    app_exists(&c, &app).await?;
    let domains = c.store.domains(Some(&app)).await?;
    Ok(Json(domains.into_iter().map(Domain::from).collect()))
}

async fn add(
    AppAccess(caller): AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    body: Bytes,
) -> Result<(StatusCode, Json<Domain>), ApiError> {
    let req: AddDomain = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!("the body must be {{\"hostname\": \"…\"}}: {e}"))
    })?;
    let hostname =
        validate_hostname(&req.hostname, &c.settings.domain).map_err(ApiError::Validation)?;
    app_exists(&c, &app).await?;
    match c.store.add_domain(&app, &hostname).await? {
        DomainAdded::Added(d) => {
            tracing::info!(%app, hostname, "domain added");
            c.scheduler.notify();
            Ok((StatusCode::CREATED, Json(d.into())))
        }
        DomainAdded::Already(d) => Ok((StatusCode::OK, Json(d.into()))),
        // The owner is named only to whoever may see it (the name of an app is not
        // told to a member who does not collaborate on it).
        DomainAdded::TakenBy(other) if caller.can_use_app(&c, &other).await? => {
            Err(ApiError::Conflict(format!(
                "{hostname} is already a domain of {other}; remove it there first \
                 (paas domains:remove -a {other} {hostname})"
            )))
        }
        DomainAdded::TakenBy(_) => Err(ApiError::Conflict(format!(
            "{hostname} is already a domain of another app: a host name belongs to one app; \
             ask whoever runs that app (or an admin) to remove it there first"
        ))),
    }
}

async fn remove(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, hostname)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    app_exists(&c, &app).await?;
    let hostname = hostname.trim().trim_end_matches('.').to_ascii_lowercase();
    if !c.store.remove_domain(&app, &hostname).await? {
        return Err(ApiError::NotFound(format!(
            "{app} has no domain {hostname}; see paas domains -a {app}"
        )));
    }
    tracing::info!(%app, hostname, "domain removed");
    c.scheduler.notify();
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use super::validate_hostname;
    use crate::http::test_support::{controller, send};

    #[tokio::test]
    async fn add_list_remove_and_uniqueness() {
        let dir = tempfile::tempdir().unwrap();
        let c = controller(&dir).await;
        c.store.create_app("hello").await.unwrap();
        c.store.create_app("other").await.unwrap();
        let path = "/v1/apps/hello/domains";

        let (status, body) = send(&c, "POST", path, r#"{"hostname":"WWW.Example.test"}"#).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert!(body.contains(r#""hostname":"www.example.test""#), "{body}");
        let (status, _) = send(&c, "POST", path, r#"{"hostname":"www.example.test"}"#).await;
        assert_eq!(status, StatusCode::OK, "adding it again changes nothing");
        let (status, body) = send(
            &c,
            "POST",
            "/v1/apps/other/domains",
            r#"{"hostname":"www.example.test"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert!(body.contains("already a domain of hello"), "{body}");
        let (status, body) = send(&c, "POST", path, r#"{"hostname":"bad_name.test"}"#).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("not a valid host name"), "{body}");
        let (status, _) = send(
            &c,
            "POST",
            "/v1/apps/nope/domains",
            r#"{"hostname":"a.test"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let (status, body) = send(&c, "GET", path, "").await;
        assert_eq!(status, StatusCode::OK);
        let list: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(list.as_array().unwrap().len(), 1, "{body}");
        assert_eq!(list[0]["app"], "hello");

        let (status, _) = send(&c, "DELETE", "/v1/apps/hello/domains/www.example.test", "").await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, body) =
            send(&c, "DELETE", "/v1/apps/hello/domains/www.example.test", "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert_eq!(send(&c, "GET", path, "").await.1, "[]");
    }

    #[test]
    fn host_names() {
        assert_eq!(
            validate_hostname(" WWW.Example.TEST. ", "localhost").unwrap(),
            "www.example.test"
        );
        assert_eq!(validate_hostname("a-b.c1", "localhost").unwrap(), "a-b.c1");
        for bad in [
            "", "nodot", "a..b", "-a.b", "a-.b", "a_b.c", "a b.c", "é.test",
        ] {
            assert!(validate_hostname(bad, "localhost").is_err(), "{bad}");
        }
        let long = format!("{}.test", "a".repeat(64));
        assert!(validate_hostname(&long, "localhost").is_err());
        let err = validate_hostname("hello.localhost", "localhost").unwrap_err();
        assert!(err.contains("platform domain"), "{err}");
        assert!(validate_hostname("localhost.test", "localhost").is_ok());
    }
}
