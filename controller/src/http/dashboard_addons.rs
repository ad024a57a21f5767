//! The dashboard's add-on section ([`super::dashboard::ControllerDashboard`]): an app's
//! add-ons (with the size of their data), their backups, the create, attach, detach,
//! capture, restore and destroy forms and a backup's download, answered by the same
//! functions as the REST routes (`addons::ops`, `http::pg`, `http::backup_files`), so the
//! member walls are theirs: an add-on or backup of an app the viewer may not use is
//! answered like a missing one.

use std::sync::Arc;

use paas_api::{AttachAddon, CreateAddon};
use paas_web_ui::{ActionError, AddonBackup, AddonInfo, AddonService};

use super::ApiError;
use crate::addons::ops::{self, OpsError};
use crate::auth::Caller;
use crate::state::Controller;

/// An add-on operation's error as the dashboard shows it: bad input and refusals next to
/// the form, the rest logged.
fn ops_err(e: OpsError) -> ActionError {
    match e {
        OpsError::Invalid(e) => ActionError::User(e.to_string()),
        OpsError::Api(e) => api_err(e),
    }
}

fn api_err(e: ApiError) -> ActionError {
    match e {
        ApiError::Internal(_) => ActionError::Internal(e.to_string()),
        e => ActionError::User(e.to_string()),
    }
}

/// `n` MiB and millicores as people read them: `256 MiB, 0.5 CPU`.
fn plan_label(p: &crate::addons::Plan) -> String {
    let cpu = format!("{:.2}", f64::from(p.cpu_millicores) / 1000.0);
    let cpu = cpu.trim_end_matches('0').trim_end_matches('.');
    let mib = p.memory_bytes / (1024 * 1024);
    if mib >= 1024 && mib.is_multiple_of(1024) {
        format!("{} GiB, {cpu} CPU", mib / 1024)
    } else {
        format!("{mib} MiB, {cpu} CPU")
    }
}

/// Every service with its plans, as `addons:create` offers them.
pub(crate) fn services() -> Vec<AddonService> {
    crate::addons::SERVICES
        .iter()
        .map(|s| AddonService {
            name: s.name.to_string(),
            plans: s
                .plans
                .iter()
                .map(|p| (p.name.to_string(), plan_label(p)))
                .collect(),
            default_plan: s.default_plan.to_string(),
        })
        .collect()
}

/// The add-ons attached to `app` as `caller` sees them (`GET …/addons`).
pub(crate) async fn list(
    c: &Controller,
    caller: &Caller,
    app: &str,
) -> Result<Vec<AddonInfo>, String> {
    let list = match ops::list(c, caller, app).await {
        Ok(l) => l,
        // The app went away between the check and the page.
        Err(OpsError::Api(ApiError::NotFound(_))) => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    Ok(list
        .into_iter()
        .map(|a| AddonInfo {
            name: a.name,
            service: a.service,
            plan: a.plan,
            owner: a.app,
            state: a.state,
            state_reason: a.state_reason,
            node: a.node,
            attached_as: a.config_var,
            data_bytes: a.data_bytes,
            created_at: a.created_at,
        })
        .collect())
}

/// The backups of every add-on attached to `app` (PostgreSQL dumps and Redis snapshots).
pub(crate) async fn backups(c: &Controller, app: &str) -> Result<Vec<AddonBackup>, String> {
    let mut out = Vec::new();
    for service in ["postgresql", "redis"] {
        let list = match super::backups_list(c, app, service).await {
            Ok(l) => l,
            Err(ApiError::NotFound(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.to_string()),
        };
        out.extend(list.into_iter().map(|b| AddonBackup {
            id: b.id,
            addon: b.addon,
            size_bytes: b.size_bytes,
            state: b.state,
            error: b.error,
            created_at: b.created_at,
        }));
    }
    Ok(out)
}

/// `addons:create SERVICE --plan PLAN -a APP` (an empty plan: the service's default).
pub(crate) async fn create(
    c: &Arc<Controller>,
    caller: &Caller,
    app: &str,
    service: &str,
    plan: &str,
) -> Result<(), ActionError> {
    let req = CreateAddon {
        service: service.to_string(),
        plan: (!plan.is_empty()).then(|| plan.to_string()),
        as_name: None,
    };
    let a = ops::create(c, caller, app, &req).await.map_err(ops_err)?;
    tracing::info!(addon = %a.name, %app, "add-on created from the dashboard");
    Ok(())
}

/// `addons:attach ADDON -a APP --as NAME` (an empty name: the service's default var). The
/// add-on's own app must be one `caller` may use, else it is a missing one.
pub(crate) async fn attach(
    c: &Arc<Controller>,
    caller: &Caller,
    app: &str,
    addon: &str,
    as_name: &str,
) -> Result<(), ActionError> {
    let req = AttachAddon {
        addon: addon.to_string(),
        as_name: (!as_name.is_empty()).then(|| as_name.to_string()),
    };
    let a = ops::attach(c, caller, app, &req).await.map_err(ops_err)?;
    tracing::info!(addon = %a.name, %app, "add-on attached from the dashboard");
    Ok(())
}

/// `addons:detach ADDON -a APP`.
pub(crate) async fn detach(c: &Arc<Controller>, app: &str, addon: &str) -> Result<(), ActionError> {
    ops::detach(c, app, addon).await.map_err(ops_err)?;
    tracing::info!(%addon, %app, "add-on detached from the dashboard");
    Ok(())
}

/// The file of backup `id` of an add-on attached to `app`, as the REST download answers it.
pub(crate) async fn download(
    c: &Controller,
    app: &str,
    id: &str,
) -> Result<axum::response::Response, ActionError> {
    let (_, service) = super::attached_backup(c, app, id).await.map_err(api_err)?;
    super::download_backup(c, app, &service, id)
        .await
        .map_err(api_err)
}

/// A backup of the add-on `addon` attached to `app` (it runs on in its own task).
pub(crate) async fn capture(
    c: &Arc<Controller>,
    app: &str,
    addon: &str,
) -> Result<(), ActionError> {
    let a = super::attached_addon(c, app, addon)
        .await
        .map_err(api_err)?;
    super::start_capture(c, app, &a.service, Some(&a.name))
        .await
        .map_err(api_err)?;
    Ok(())
}

/// Restores backup `id` of an add-on attached to `app` into that add-on.
pub(crate) async fn restore(
    c: &Arc<Controller>,
    caller: &Caller,
    app: &str,
    id: &str,
    confirm: &str,
) -> Result<(), ActionError> {
    let (b, service) = super::attached_backup(c, app, id).await.map_err(api_err)?;
    if confirm != app {
        return Err(ActionError::User(format!(
            "restoring {id} replaces the data of {}: type the app's name, {app}, to confirm",
            b.addon
        )));
    }
    super::restore_backup(
        c,
        caller,
        app,
        &service,
        id,
        Some(&b.addon),
        Some(confirm.to_string()),
    )
    .await
    .map_err(api_err)?;
    tracing::info!(backup = %id, addon = %b.addon, %app, "backup restored from the dashboard");
    Ok(())
}

/// `addons:destroy ADDON -a APP --confirm APP`.
pub(crate) async fn destroy(
    c: &Arc<Controller>,
    app: &str,
    addon: &str,
    confirm: &str,
) -> Result<(), ActionError> {
    // An empty confirmation is a wrong one (the REST route's `None` asks for it).
    ops::destroy(c, app, addon, Some(confirm))
        .await
        .map_err(ops_err)?;
    tracing::info!(%addon, %app, "add-on destroyed from the dashboard");
    Ok(())
}
