//! A backup's file, downloaded (Heroku's `pg:backups:download`): the way to take an app's
//! data out of paas, or to a database elsewhere.
//!
//! * `GET /v1/apps/{app}/pg-backups/{id}/download`: the `pg_dump -Fc` file (for
//!   `pg_restore`), `application/octet-stream`, named `<id>.dump`;
//! * `GET /v1/apps/{app}/redis-backups/{id}/download`: the RDB snapshot, named `<id>.rdb`.
//!
//! Judged as `GET …/{id}`: `AppAccess` on `{app}` and the backup's add-on attached to it, a
//! backup the caller may not use is a 404 like a missing one. Only a `completed` backup has
//! a whole file (409 otherwise). The file is streamed from the data dir, never whole in
//! memory, with its length so a client can tell a cut download.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, StatusCode};
use axum::response::Response;
use tokio_util::io::ReaderStream;

use super::pg::{backup_of_service, PG, REDIS};
use super::ApiError;
use crate::addons::backups;
use crate::auth::AppAccess;
use crate::state::Controller;

pub(super) async fn pg_download(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    download(&c, &app, PG, &id).await
}

pub(super) async fn redis_download(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, id)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    download(&c, &app, REDIS, &id).await
}

/// The download answer of backup `id` of a `service` add-on attached to `app` (the REST
/// routes above and the dashboard's download link).
pub(crate) async fn download(
    c: &Controller,
    app: &str,
    service: &str,
    id: &str,
) -> Result<Response, ApiError> {
    let b = backup_of_service(c, app, service, id).await?;
    let (kind, ext) = if service == PG {
        ("pg", "dump")
    } else {
        ("redis", "rdb")
    };
    if b.state != backups::state::COMPLETED {
        return Err(ApiError::Conflict(format!(
            "backup {id} is {}: only a completed backup has a file to download; see paas {kind}:backups -a {app}",
            b.state
        )));
    }
    let path = backups::file(c, &b);
    let unreadable = |e: std::io::Error| {
        ApiError::Internal(format!("the file of backup {id} cannot be read: {e}"))
    };
    let file = tokio::fs::File::open(&path).await.map_err(unreadable)?;
    let len = file.metadata().await.map_err(unreadable)?.len();
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "application/octet-stream")
        .header(header::CONTENT_LENGTH, len)
        .header(
            header::CONTENT_DISPOSITION,
            format!("attachment; filename=\"{id}.{ext}\""),
        )
        .body(Body::from_stream(ReaderStream::new(file)))
        .map_err(|e| ApiError::Internal(e.to_string()))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use axum::body::Body;
    use http::{header, Request, StatusCode};
    use http_body_util::BodyExt;
    use tower::ServiceExt;

    use crate::http::test_support::{controller, send};
    use crate::store::BackupRow;

    /// A completed backup comes back byte for byte, named for pg_restore; a running one,
    /// one asked through an app without its add-on and one asked as the other service's
    /// are refused.
    #[tokio::test]
    async fn a_completed_backup_downloads_whole_and_nothing_else_does() {
        let dir = tempfile::tempdir().unwrap();
        let c = controller(&dir).await;
        c.store.create_app("shop").await.unwrap();
        c.store.create_app("reports").await.unwrap();
        let (status, body) = send(
            &c,
            "POST",
            "/v1/apps/shop/addons",
            r#"{"service":"postgresql"}"#,
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        let name = serde_json::from_str::<paas_api::Addon>(&body).unwrap().name;
        let a = c.store.addon(&name).await.unwrap().unwrap();
        let row = |id: &str, state: &str| BackupRow {
            id: id.into(),
            addon: name.clone(),
            addon_id: a.id,
            app_id: a.app_id,
            size_bytes: 0,
            state: state.into(),
            scheduled: false,
            error: None,
            created_at: crate::util::now_rfc3339(),
            finished_at: None,
        };
        let done = row("b00000000000a", "completed");
        let dump: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
        c.store.insert_backup(&done).await.unwrap();
        let file = crate::addons::backups::file(&c, &done);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, &dump).unwrap();
        c.store
            .insert_backup(&row("b00000000000b", "running"))
            .await
            .unwrap();

        let req = Request::builder()
            .uri("/v1/apps/shop/pg-backups/b00000000000a/download")
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", c.tokens.admin()),
            )
            .body(Body::empty())
            .unwrap();
        let resp = crate::http::app(Arc::clone(&c)).oneshot(req).await.unwrap();
        assert_eq!(resp.status(), StatusCode::OK);
        let h = resp.headers();
        assert_eq!(h[header::CONTENT_TYPE], "application/octet-stream");
        assert_eq!(h[header::CONTENT_LENGTH], dump.len().to_string().as_str());
        assert_eq!(
            h[header::CONTENT_DISPOSITION],
            "attachment; filename=\"b00000000000a.dump\""
        );
        let got = resp.into_body().collect().await.unwrap().to_bytes();
        assert!(got[..] == dump[..], "the same bytes");

        let (status, body) = send(
            &c,
            "GET",
            "/v1/apps/shop/pg-backups/b00000000000b/download",
            "",
        )
        .await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(body.contains("is running"), "{body}");
        for path in [
            "/v1/apps/reports/pg-backups/b00000000000a/download",
            "/v1/apps/shop/redis-backups/b00000000000a/download",
            "/v1/apps/shop/pg-backups/b0000000000ff/download",
        ] {
            let (status, body) = send(&c, "GET", path, "").await;
            assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {body}");
        }
    }
}
