//! PostgreSQL add-on routes (see [`crate::addons::backups`] and docs/addons.md):
//!
//! * `POST /v1/apps/{app}/addons/{addon}/psql` (`Upgrade: paas-exec`): psql in the add-on's
//!   job over the exec stream; the caller's START frame gives `tty`, the terminal size and
//!   psql's arguments (`command`, e.g. `["-c", "SELECT 1"]`); the controller runs `psql`
//!   with them and the credentials in its environment;
//! * `GET /v1/apps/{app}/pg-backups`: the backups of the app's PostgreSQL add-ons;
//! * `POST /v1/apps/{app}/pg-backups` `{"addon"?}`: capture one (202, `running`);
//! * `GET /v1/apps/{app}/pg-backups/{id}`, `DELETE …`: show, delete; `GET …/{id}/download`
//!   the file ([`super::backup_files`]);
//! * `POST /v1/apps/{app}/pg-backups/{id}/restore?confirm=APP` `{"addon"?}`: restore into
//!   an add-on attached to `{app}`; the backup may come from any add-on of an app the caller
//!   may use.
//!
//! * `GET /v1/apps/{app}/redis-backups`, `POST` `{"addon"?}`, `GET …/{id}`, `DELETE …/{id}`:
//!   the same for Redis add-ons (an RDB snapshot);
//! * `POST /v1/apps/{app}/redis-backups/{id}/restore?confirm=APP` `{"addon"?}`: the snapshot
//!   replaces the data of a Redis add-on attached to `{app}` (Redis restarts in its job);
//! * `GET /v1/apps/{app}/pg-backup-schedules`, `PUT …/{addon}` `{"at": "HH:MM", "keep": N}`,
//!   `DELETE …/{addon}`: the daily backups of the app's PostgreSQL add-ons.
//!
//! Every route takes `AppAccess` on `{app}`; a backup or add-on the caller may not use is a
//! 404 exactly like a missing one.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use hyper_util::rt::TokioIo;
use paas_api::exec::{self as proto, kind, ExecRequest};
use paas_api::{PgBackup, PgBackupSchedule, PgBackupTarget, SetPgBackupSchedule};
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::ApiError;
use crate::addons::backups::{self, BackupError};
use crate::auth::{AppAccess, Caller};
use crate::state::Controller;
use crate::store::{AddonRow, BackupRow, ScheduleRow};

pub(super) const PG: &str = "postgresql";
pub(super) const REDIS: &str = "redis";

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new()
        .route("/v1/apps/{app}/addons/{addon}/psql", post(psql))
        .route("/v1/apps/{app}/pg-backups", get(list).post(capture))
        .route(
            "/v1/apps/{app}/pg-backups/{id}",
            get(show).delete(delete_one),
        )
        .route("/v1/apps/{app}/pg-backups/{id}/restore", post(restore))
        .route(
            "/v1/apps/{app}/pg-backups/{id}/download",
            get(super::backup_files::pg_download),
        )
        .route(
            "/v1/apps/{app}/redis-backups/{id}/download",
            get(super::backup_files::redis_download),
        )
        .route(
            "/v1/apps/{app}/redis-backups",
            get(redis_list).post(redis_capture),
        )
        .route(
            "/v1/apps/{app}/redis-backups/{id}",
            get(redis_show).delete(redis_delete),
        )
        .route(
            "/v1/apps/{app}/redis-backups/{id}/restore",
            post(redis_restore),
        )
        .route("/v1/apps/{app}/pg-backup-schedules", get(schedules))
        .route(
            "/v1/apps/{app}/pg-backup-schedules/{addon}",
            put(set_schedule).delete(unschedule),
        )
}

impl From<BackupError> for ApiError {
    fn from(e: BackupError) -> ApiError {
        match e {
            BackupError::NotRunning(..) => ApiError::Conflict(e.to_string()),
            BackupError::NoNode(_) | BackupError::Agent(_) => ApiError::Unavailable(e.to_string()),
            BackupError::Failed { .. } => ApiError::Conflict(e.to_string()),
            BackupError::Store(s) => s.into(),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

fn wire(b: &BackupRow) -> PgBackup {
    PgBackup {
        id: b.id.clone(),
        addon: b.addon.clone(),
        size_bytes: b.size_bytes,
        state: b.state.clone(),
        error: b.error.clone(),
        created_at: b.created_at.clone(),
        finished_at: b.finished_at.clone(),
    }
}

/// The add-ons of `service` attached to `app`.
async fn addons_of(c: &Controller, app: &str, service: &str) -> Result<Vec<AddonRow>, ApiError> {
    let id = c
        .store
        .app_id(app)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no app named {app}")))?;
    let attached: Vec<String> = c
        .store
        .addon_attachments(None)
        .await?
        .into_iter()
        .filter(|t| t.app_id == id)
        .map(|t| t.addon)
        .collect();
    Ok(c.store
        .addons()
        .await?
        .into_iter()
        .filter(|a| a.service == service && attached.contains(&a.name))
        .collect())
}

/// The PostgreSQL add-on `name` attached to `app`, or its only one.
async fn pick(c: &Controller, app: &str, name: Option<&str>) -> Result<AddonRow, ApiError> {
    pick_of(c, app, PG, name).await
}

/// The add-on of `service` named `name` attached to `app`, or its only one.
async fn pick_of(
    c: &Controller,
    app: &str,
    service: &str,
    name: Option<&str>,
) -> Result<AddonRow, ApiError> {
    let mut all = addons_of(c, app, service).await?;
    match name {
        Some(name) => all.into_iter().find(|a| a.name == name).ok_or_else(|| {
            ApiError::NotFound(format!(
                "no {service} add-on named {name} is attached to {app}; see paas addons -a {app}"
            ))
        }),
        None if all.len() == 1 => Ok(all.remove(0)),
        None if all.is_empty() => Err(ApiError::NotFound(format!(
            "{app} has no {service} add-on: create one with paas addons:create {service} -a \
             {app}"
        ))),
        None => Err(ApiError::BadRequest(format!(
            "{app} has {} {service} add-ons: name one ({})",
            all.len(),
            all.iter()
                .map(|a| a.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

/// PostgreSQL backup `id` if its add-on is attached to `app`.
async fn backup_of(c: &Controller, app: &str, id: &str) -> Result<BackupRow, ApiError> {
    backup_of_service(c, app, PG, id).await
}

/// Backup `id` of a `service` add-on attached to `app`.
pub(super) async fn backup_of_service(
    c: &Controller,
    app: &str,
    service: &str,
    id: &str,
) -> Result<BackupRow, ApiError> {
    let kind = if service == PG { "pg" } else { "redis" };
    let missing = || {
        ApiError::NotFound(format!(
            "no backup {id} of {app}; see paas {kind}:backups -a {app}"
        ))
    };
    let b = c.store.backup(id).await?.ok_or_else(missing)?;
    if !addons_of(c, app, service)
        .await?
        .iter()
        .any(|a| a.name == b.addon)
    {
        return Err(missing());
    }
    Ok(b)
}

/// Backup `id` of a `service` add-on if the caller may use the app of its add-on (for
/// restoring elsewhere); a backup of another service is as missing as one that is not.
async fn usable_backup(
    c: &Controller,
    caller: &Caller,
    app: &str,
    service: &str,
    id: &str,
) -> Result<BackupRow, ApiError> {
    if let Ok(b) = backup_of_service(c, app, service, id).await {
        return Ok(b);
    }
    let missing = || ApiError::NotFound(format!("no {service} backup {id} you may use"));
    let b = c.store.backup(id).await?.ok_or_else(missing)?;
    let owner = c
        .store
        .app_name_by_id(b.app_id)
        .await?
        .ok_or_else(missing)?;
    if !caller.can_use_app(c, &owner).await? {
        return Err(missing());
    }
    match c.store.addon(&b.addon).await? {
        Some(a) if a.service == service => Ok(b),
        _ => Err(missing()),
    }
}

async fn list(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
) -> Result<Json<Vec<PgBackup>>, ApiError> {
    list_of(&c, &app, PG).await
}

async fn redis_list(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
) -> Result<Json<Vec<PgBackup>>, ApiError> {
    list_of(&c, &app, REDIS).await
}

async fn list_of(
    c: &Controller,
    app: &str,
    service: &str,
) -> Result<Json<Vec<PgBackup>>, ApiError> {
    Ok(Json(backups_list(c, app, service).await?))
}

/// The backups of the `service` add-ons attached to `app`, oldest first.
pub(crate) async fn backups_list(
    c: &Controller,
    app: &str,
    service: &str,
) -> Result<Vec<PgBackup>, ApiError> {
    let mut out = Vec::new();
    for a in addons_of(c, app, service).await? {
        out.extend(c.store.backups_of(&a.name).await?.iter().map(wire));
    }
    out.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    Ok(out)
}

/// The add-on `name` (of any service) attached to `app`; else the 404 a missing one gets.
pub(crate) async fn attached_addon(
    c: &Controller,
    app: &str,
    name: &str,
) -> Result<AddonRow, ApiError> {
    for service in [PG, REDIS] {
        if let Some(a) = addons_of(c, app, service)
            .await?
            .into_iter()
            .find(|a| a.name == name)
        {
            return Ok(a);
        }
    }
    Err(ApiError::NotFound(format!(
        "no add-on named {name} is attached to {app}; see paas addons -a {app}"
    )))
}

/// Backup `id` of an add-on (of any service) attached to `app`, with that add-on's service;
/// else the 404 a missing one gets.
pub(crate) async fn attached_backup(
    c: &Controller,
    app: &str,
    id: &str,
) -> Result<(BackupRow, String), ApiError> {
    for service in [PG, REDIS] {
        if let Ok(b) = backup_of_service(c, app, service, id).await {
            return Ok((b, service.to_string()));
        }
    }
    Err(ApiError::NotFound(format!("no backup {id} of {app}")))
}

fn target(bytes: &[u8]) -> Result<PgBackupTarget, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(PgBackupTarget::default());
    }
    serde_json::from_slice(bytes).map_err(|e| {
        ApiError::BadRequest(format!(
            r#"the body must be {{"addon": "NAME"}} or empty: {e}"#
        ))
    })
}

async fn capture(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<PgBackup>), ApiError> {
    capture_of(&c, &app, PG, &bytes).await
}

async fn redis_capture(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    bytes: Bytes,
) -> Result<(StatusCode, Json<PgBackup>), ApiError> {
    capture_of(&c, &app, REDIS, &bytes).await
}

async fn capture_of(
    c: &Arc<Controller>,
    app: &str,
    service: &str,
    bytes: &[u8],
) -> Result<(StatusCode, Json<PgBackup>), ApiError> {
    let req = target(bytes)?;
    let b = start_capture(c, app, service, req.addon.as_deref()).await?;
    Ok((StatusCode::ACCEPTED, Json(b)))
}

/// Records a `running` backup of the `service` add-on `addon` attached to `app` (or its
/// only one) and captures it in a task of its own.
pub(crate) async fn start_capture(
    c: &Arc<Controller>,
    app: &str,
    service: &str,
    addon: Option<&str>,
) -> Result<PgBackup, ApiError> {
    let a = pick_of(c, app, service, addon).await?;
    let b = backups::start(c, &a, false).await?;
    let (c2, b2) = (Arc::clone(c), b.clone());
    tokio::spawn(async move {
        let _ = backups::capture(&c2, &a, &b2).await;
    });
    Ok(wire(&b))
}

async fn show(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, id)): Path<(String, String)>,
) -> Result<Json<PgBackup>, ApiError> {
    Ok(Json(wire(&backup_of(&c, &app, &id).await?)))
}

async fn redis_show(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, id)): Path<(String, String)>,
) -> Result<Json<PgBackup>, ApiError> {
    Ok(Json(wire(&backup_of_service(&c, &app, REDIS, &id).await?)))
}

async fn delete_one(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    delete_of(&c, backup_of(&c, &app, &id).await?).await
}

async fn redis_delete(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    delete_of(&c, backup_of_service(&c, &app, REDIS, &id).await?).await
}

async fn delete_of(c: &Controller, b: BackupRow) -> Result<StatusCode, ApiError> {
    if b.state == backups::state::RUNNING {
        return Err(ApiError::Conflict(format!(
            "backup {} is still running: delete it once it ends",
            b.id
        )));
    }
    backups::delete(c, &b).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize)]
struct Confirm {
    confirm: Option<String>,
}

async fn restore(
    AppAccess(caller): AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, id)): Path<(String, String)>,
    Query(q): Query<Confirm>,
    bytes: Bytes,
) -> Result<Json<PgBackup>, ApiError> {
    let req = target(&bytes)?;
    let b = restore_backup(&c, &caller, &app, PG, &id, req.addon.as_deref(), q.confirm).await?;
    Ok(Json(b))
}

async fn redis_restore(
    AppAccess(caller): AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, id)): Path<(String, String)>,
    Query(q): Query<Confirm>,
    bytes: Bytes,
) -> Result<Json<PgBackup>, ApiError> {
    let req = target(&bytes)?;
    let b = restore_backup(
        &c,
        &caller,
        &app,
        REDIS,
        &id,
        req.addon.as_deref(),
        q.confirm,
    )
    .await?;
    Ok(Json(b))
}

/// Restores backup `id` (of a `service` add-on of any app the caller may use) into the
/// `service` add-on `addon` attached to `app` (or its only one); `confirm` must be `app`.
/// Waits for the end, in a task of its own (a caller that hangs up does not stop a
/// restore half way).
pub(crate) async fn restore_backup(
    c: &Arc<Controller>,
    caller: &Caller,
    app: &str,
    service: &str,
    id: &str,
    addon: Option<&str>,
    confirm: Option<String>,
) -> Result<PgBackup, ApiError> {
    let b = usable_backup(c, caller, app, service, id).await?;
    let a = pick_of(c, app, service, addon).await?;
    if confirm.as_deref() != Some(app) {
        return Err(ApiError::BadRequest(format!(
            "restoring {id} into {} replaces the data there. Pass --confirm {app} \
             (confirm={app}) to go on",
            a.name
        )));
    }
    if b.state != backups::state::COMPLETED {
        return Err(ApiError::Conflict(format!(
            "backup {id} is {}, not completed: only a completed backup restores",
            b.state
        )));
    }
    let (c2, b2) = (Arc::clone(c), b.clone());
    tokio::spawn(async move { backups::restore(&c2, &b2, &a).await })
        .await
        .map_err(|e| ApiError::Internal(format!("the restore task died: {e}")))??;
    Ok(wire(&b))
}

/// psql in the add-on's job: the caller's START frame is read here and replaced by one
/// that runs `psql ARGS…` with the credentials in its environment; the rest of the stream
/// is copied byte for byte.
async fn psql(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, addon)): Path<(String, String)>,
    req: Request,
) -> Result<Response, ApiError> {
    let client = super::exec::check_upgrade(&req)?;
    let a = pick(&c, &app, Some(&addon)).await?;
    if a.state != crate::addons::supervisor::state::AVAILABLE {
        return Err(BackupError::NotRunning(a.name.clone(), a.state.clone()).into());
    }
    let job = a.job_id.clone().unwrap_or_default();
    let header = job.clone();
    tokio::spawn(async move {
        let up = match client.await {
            Ok(up) => TokioIo::new(up),
            Err(e) => {
                tracing::warn!(%job, "psql: the caller's upgrade failed: {e}");
                return;
            }
        };
        let (mut client_r, mut client_w) = tokio::io::split(up);
        let start = match first_frame(&mut client_r).await {
            Ok(s) => s,
            Err(e) => {
                let _ = client_w
                    .write_all(&proto::encode(kind::ERROR, e.as_bytes()))
                    .await;
                let _ = client_w
                    .write_all(&proto::exit_frame(proto::EXIT_CANNOT_RUN))
                    .await;
                return;
            }
        };
        let mut command = vec!["psql".to_string()];
        command.extend(start.command);
        let req = ExecRequest {
            command,
            tty: start.tty,
            // Only the terminal's type passes: no PG* of the caller's.
            env: start
                .env
                .into_iter()
                .filter(|e| e.starts_with("TERM="))
                .collect(),
            rows: start.rows,
            cols: start.cols,
        };
        let agent = match backups::exec_in(&c, &a, req).await {
            Ok(up) => up,
            Err(e) => {
                let _ = client_w
                    .write_all(&proto::encode(kind::ERROR, e.to_string().as_bytes()))
                    .await;
                let _ = client_w
                    .write_all(&proto::exit_frame(proto::EXIT_CANNOT_RUN))
                    .await;
                return;
            }
        };
        tracing::info!(addon = %a.name, %job, "psql");
        let (mut agent_r, mut agent_w) = tokio::io::split(agent);
        let input = tokio::spawn(async move {
            let _ = tokio::io::copy(&mut client_r, &mut agent_w).await;
            let _ = agent_w.shutdown().await;
        });
        let _ = tokio::io::copy(&mut agent_r, &mut client_w).await;
        let _ = client_w.shutdown().await;
        input.abort();
    });
    Ok(super::exec::switching(&[("paas-job", header)]))
}

/// The caller's START frame.
async fn first_frame<R: tokio::io::AsyncRead + Unpin>(r: &mut R) -> Result<ExecRequest, String> {
    let mut header = [0u8; proto::HEADER_LEN];
    r.read_exact(&mut header)
        .await
        .map_err(|e| format!("reading the START frame: {e}"))?;
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    if header[0] != kind::START || len > proto::MAX_FRAME {
        return Err("the exec stream must begin with one START frame".into());
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload)
        .await
        .map_err(|e| format!("reading the START frame: {e}"))?;
    serde_json::from_slice(&payload)
        .map_err(|e| format!("the START frame is not an ExecRequest: {e}"))
}

/// The most scheduled backups an add-on keeps.
const MAX_KEEP: u32 = 90;

fn wire_schedule(s: &ScheduleRow) -> PgBackupSchedule {
    PgBackupSchedule {
        addon: s.addon.clone(),
        at: backups::format_at(s.at_minute),
        keep: s.keep,
        last_run: (s.last_run_ms > 0).then(|| crate::util::rfc3339_from_ms(s.last_run_ms)),
    }
}

async fn schedules(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
) -> Result<Json<Vec<PgBackupSchedule>>, ApiError> {
    let mine: Vec<String> = addons_of(&c, &app, PG)
        .await?
        .into_iter()
        .map(|a| a.name)
        .collect();
    Ok(Json(
        c.store
            .backup_schedules()
            .await?
            .iter()
            .filter(|s| mine.contains(&s.addon))
            .map(wire_schedule)
            .collect(),
    ))
}

async fn set_schedule(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, addon)): Path<(String, String)>,
    bytes: Bytes,
) -> Result<Json<PgBackupSchedule>, ApiError> {
    let req: SetPgBackupSchedule = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::BadRequest(format!(
            r#"the body must be {{"at": "02:00", "keep": 7}}: {e}"#
        ))
    })?;
    let a = pick(&c, &app, Some(&addon)).await?;
    let at_minute = backups::parse_at(&req.at).ok_or_else(|| {
        ApiError::Validation(format!(
            "--at {:?} is not a time of day: give HH:MM in UTC, like 02:00",
            req.at
        ))
    })?;
    if req.keep == 0 || req.keep > MAX_KEEP {
        return Err(ApiError::Validation(format!(
            "--keep {} is out of range: keep 1 to {MAX_KEEP} daily backups",
            req.keep
        )));
    }
    let row = ScheduleRow {
        addon: a.name.clone(),
        at_minute,
        keep: req.keep,
        // The first run is at the next `at`, not at once.
        last_run_ms: crate::util::unix_ms(),
    };
    c.store.set_backup_schedule(&row).await?;
    let saved = c
        .store
        .backup_schedules()
        .await?
        .into_iter()
        .find(|s| s.addon == a.name)
        .unwrap_or(row);
    Ok(Json(wire_schedule(&saved)))
}

async fn unschedule(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path((app, addon)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let a = pick(&c, &app, Some(&addon)).await?;
    if !c.store.delete_backup_schedule(&a.name).await? {
        return Err(ApiError::NotFound(format!(
            "{} has no backup schedule; set one with paas pg:backups:schedule -a {app}",
            a.name
        )));
    }
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use http::StatusCode;

    use crate::http::test_support::{controller, send};
    use crate::store::BackupRow;

    /// Refusals, schedules, and what a destroy removes, in process (no node runs: the
    /// add-on stays `creating`; a completed backup is recorded by hand).
    #[tokio::test]
    async fn backups_refuse_what_cannot_work_and_go_with_their_addon() {
        let dir = tempfile::tempdir().unwrap();
        let c = controller(&dir).await;
        c.store.create_app("shop").await.unwrap();
        c.store.create_app("reports").await.unwrap();

        let (status, body) = send(&c, "POST", "/v1/apps/shop/pg-backups", "").await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
        assert!(body.contains("addons:create postgresql"), "{body}");
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

        // Not running yet: capture and psql say to wait.
        let (status, body) = send(&c, "POST", "/v1/apps/shop/pg-backups", "{}").await;
        assert_eq!(status, StatusCode::CONFLICT, "{body}");
        assert!(body.contains("available"), "{body}");
        let (status, body) = send(&c, "POST", "/v1/apps/shop/pg-backups", "[1]").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");

        // Schedules.
        let path = format!("/v1/apps/shop/pg-backup-schedules/{name}");
        for bad in [r#"{"at":"25:00","keep":7}"#, r#"{"at":"02:00","keep":0}"#] {
            let (status, body) = send(&c, "PUT", &path, bad).await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
            assert!(body.contains("validation_error"), "{body}");
        }
        let (status, body) = send(&c, "PUT", &path, r#"{"at":"02:30","keep":3}"#).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (_, body) = send(&c, "GET", "/v1/apps/shop/pg-backup-schedules", "").await;
        assert!(
            body.contains(r#""at":"02:30""#) && body.contains(r#""keep":3"#),
            "{body}"
        );
        let other = format!("/v1/apps/reports/pg-backup-schedules/{name}");
        let (status, _) = send(&c, "PUT", &other, r#"{"at":"02:30","keep":3}"#).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "not attached to reports");

        // A completed backup, recorded by hand with its file.
        let b = BackupRow {
            id: "b0123456789ab".into(),
            addon: name.clone(),
            addon_id: a.id,
            app_id: a.app_id,
            size_bytes: 5,
            state: "completed".into(),
            scheduled: false,
            error: None,
            created_at: crate::util::now_rfc3339(),
            finished_at: None,
        };
        c.store.insert_backup(&b).await.unwrap();
        let file = crate::addons::backups::file(&c, &b);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, b"PGDMP").unwrap();
        let (status, body) = send(&c, "GET", "/v1/apps/shop/pg-backups", "").await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.contains("b0123456789ab"), "{body}");
        let (status, _) = send(&c, "GET", "/v1/apps/reports/pg-backups/b0123456789ab", "").await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "not through an app without the add-on"
        );
        let (_, body) = send(&c, "GET", "/v1/apps/reports/pg-backups", "").await;
        assert_eq!(body, "[]");
        let restore = "/v1/apps/shop/pg-backups/b0123456789ab/restore";
        let (status, body) = send(&c, "POST", restore, "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
        assert!(body.contains("--confirm shop"), "{body}");
        let (status, body) = send(&c, "POST", &format!("{restore}?confirm=shop"), "").await;
        assert_eq!(status, StatusCode::CONFLICT, "not running: {body}");
        let (status, body) = send(
            &c,
            "POST",
            "/v1/apps/reports/pg-backups/b0123456789ab/restore?confirm=reports",
            "",
        )
        .await;
        assert_eq!(
            status,
            StatusCode::NOT_FOUND,
            "reports has no database: {body}"
        );
        assert!(body.contains("reports has no postgresql add-on"), "{body}");

        // Destroying the add-on takes its backups, their files and its schedule.
        let (status, body) = send(&c, "DELETE", &format!("/v1/apps/shop/addons/{name}"), "").await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(
            body.contains("backups"),
            "the confirm message says so: {body}"
        );
        let (status, _) = send(
            &c,
            "DELETE",
            &format!("/v1/apps/shop/addons/{name}?confirm=shop"),
            "",
        )
        .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        assert!(c.store.backup("b0123456789ab").await.unwrap().is_none());
        assert!(
            !file.parent().unwrap().exists(),
            "the dump directory is gone"
        );
        assert!(c.store.backup_schedules().await.unwrap().is_empty());
    }
}
