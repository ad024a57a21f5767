//! What the API does with add-ons: create, list, show, attach, detach, destroy. The caller
//! has been checked against `{app}` (the route's `AppAccess`); every add-on it names is
//! checked here against the add-on's owner app too: an add-on the caller may not see is
//! answered exactly like one that does not exist (404).

use std::collections::BTreeMap;
use std::sync::Arc;

use paas_api::{Addon, AddonAttachment, AttachAddon, CreateAddon};

use super::supervisor::{self, state};
use super::{attachment_var, plan, service, AddonsError};
use crate::api_error::ApiError;
use crate::auth::Caller;
use crate::state::Controller;
use crate::store::{AddonInserted, AddonRow, AttachmentRow};
use crate::util::{now_rfc3339, random_hex};

/// Errors of an add-on operation: bad input (422 with its own code) or any other API error.
#[derive(Debug, thiserror::Error)]
pub enum OpsError {
    #[error(transparent)]
    Invalid(#[from] AddonsError),
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl From<crate::store::StoreError> for OpsError {
    fn from(e: crate::store::StoreError) -> OpsError {
        OpsError::Api(e.into())
    }
}

type Result<T> = std::result::Result<T, OpsError>;

fn not_found(name: &str, app: &str) -> OpsError {
    ApiError::NotFound(format!(
        "no add-on named {name} is attached to {app}; see paas addons -a {app}"
    ))
    .into()
}

async fn app_id(c: &Controller, app: &str) -> Result<u32> {
    c.store
        .app_id(app)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no app named {app}")).into())
}

/// The size of `a`'s data as the API shows it: the last measurement, while its node is up
/// (a down node's volume cannot be measured and may have changed: unknown, not a stale or
/// zero number).
async fn data_size(c: &Controller, a: &AddonRow) -> Result<(Option<u64>, Option<String>)> {
    let (Some(node), Some(_)) = (a.node.as_deref(), a.data_bytes) else {
        return Ok((None, None));
    };
    let now = crate::util::unix_ms();
    let up = c
        .store
        .list_nodes()
        .await?
        .iter()
        .any(|n| n.name == node && now - n.last_seen_ms <= crate::state::NODE_TIMEOUT_MS);
    Ok(if up {
        (a.data_bytes, a.data_measured_at.clone())
    } else {
        (None, None)
    })
}

/// The wire form of `a` as `app` (one of its attachments, or none) sees it.
async fn view(
    c: &Controller,
    caller: &Caller,
    a: &AddonRow,
    attachments: &[AttachmentRow],
    app: Option<&str>,
) -> Result<Addon> {
    let owner = c
        .store
        .app_name_by_id(a.app_id)
        .await?
        .unwrap_or_else(|| "(destroyed)".into());
    let mut shown = Vec::new();
    for t in attachments.iter().filter(|t| t.addon == a.name) {
        let Some(name) = t.app.as_deref() else {
            continue;
        };
        if caller.can_use_app(c, name).await? {
            shown.push(AddonAttachment {
                app: name.to_string(),
                config_var: t.var.clone(),
            });
        }
    }
    let config_var = app.and_then(|app| {
        shown
            .iter()
            .find(|t| t.app == app)
            .map(|t| t.config_var.clone())
    });
    let (data_bytes, data_measured_at) = data_size(c, a).await?;
    Ok(Addon {
        name: a.name.clone(),
        service: a.service.clone(),
        plan: a.plan.clone(),
        app: owner,
        state: a.state.clone(),
        state_reason: (a.state != state::AVAILABLE)
            .then(|| a.last_exit.clone())
            .flatten(),
        node: a.node.clone(),
        config_var,
        attachments: shown,
        restarts: a.restarts,
        data_bytes,
        data_measured_at,
        created_at: a.created_at.clone(),
    })
}

/// The add-ons attached to `app`.
pub async fn list(c: &Controller, caller: &Caller, app: &str) -> Result<Vec<Addon>> {
    let id = app_id(c, app).await?;
    let attachments = c.store.addon_attachments(None).await?;
    let mut out = Vec::new();
    for a in c.store.addons().await? {
        if attachments
            .iter()
            .any(|t| t.addon == a.name && t.app_id == id)
        {
            out.push(view(c, caller, &a, &attachments, Some(app)).await?);
        }
    }
    Ok(out)
}

/// The add-on `name` if it is attached to `app` (else 404, the same as a missing one).
async fn attached(
    c: &Controller,
    app: &str,
    name: &str,
) -> Result<(AddonRow, Vec<AttachmentRow>, u32)> {
    let id = app_id(c, app).await?;
    let Some(a) = c.store.addon(name).await? else {
        return Err(not_found(name, app));
    };
    let attachments = c.store.addon_attachments(Some(name)).await?;
    if !attachments.iter().any(|t| t.app_id == id) {
        return Err(not_found(name, app));
    }
    Ok((a, attachments, id))
}

/// `addons:info`.
pub async fn info(c: &Controller, caller: &Caller, app: &str, name: &str) -> Result<Addon> {
    let (a, attachments, _) = attached(c, app, name).await?;
    view(c, caller, &a, &attachments, Some(app)).await
}

/// Refuses a config var the app already has (from the user or another add-on).
async fn var_is_free(c: &Controller, app: &str, app_id: u32, var: &str) -> Result<()> {
    let holder = c
        .store
        .addon_attachments(None)
        .await?
        .into_iter()
        .find(|t| t.app_id == app_id && t.var == var);
    if let Some(t) = holder {
        return Err(ApiError::Conflict(format!(
            "{app} already has {var} from the add-on {}: pick another name with --as NAME",
            t.addon
        ))
        .into());
    }
    if c.store.config_vars(app).await?.contains_key(var) {
        return Err(ApiError::Conflict(format!(
            "{app} already has the config var {var}: unset it first (paas config:unset {var} \
             -a {app}) or pick another name with --as NAME"
        ))
        .into());
    }
    Ok(())
}

/// `addons:create`: stores the add-on (state `creating`); the loop starts it and sets its
/// URL on the app once it answers.
pub async fn create(
    c: &Controller,
    caller: &Caller,
    app: &str,
    req: &CreateAddon,
) -> Result<Addon> {
    let svc = service(req.service.trim())?;
    let plan = plan(svc, req.plan.as_deref().map(str::trim))?;
    let var = attachment_var(svc, req.as_name.as_deref())?;
    let owner = app_id(c, app).await?;
    var_is_free(c, app, owner, &var).await?;
    for _ in 0..8 {
        let raw = u32::from_str_radix(&random_hex(4), 16).unwrap_or(1);
        let id = (raw % (super::TENANT_BASE - 1)) + 1;
        let row = AddonRow {
            name: format!("{}-{app}-{}", svc.name, random_hex(2)),
            id,
            service: svc.name.to_string(),
            plan: plan.name.to_string(),
            app_id: owner,
            password: random_hex(24),
            node: None,
            job_id: None,
            state: state::CREATING.into(),
            addr: None,
            restarts: 0,
            last_exit: None,
            next_start_ms: 0,
            created_at: now_rfc3339(),
            data_bytes: None,
            data_measured_at: None,
        };
        if c.store.insert_addon(&row, &var).await? == AddonInserted::Inserted {
            tracing::info!(addon = %row.name, %app, service = svc.name, plan = plan.name,
                "add-on created");
            supervisor::wake();
            let attachments = c.store.addon_attachments(Some(&row.name)).await?;
            return view(c, caller, &row, &attachments, Some(app)).await;
        }
    }
    Err(ApiError::internal("could not find a free add-on name and number").into())
}

/// `addons:attach ADDON -a APP [--as NAME]`: the caller must be able to use the add-on's
/// owner app as well.
pub async fn attach(
    c: &Arc<Controller>,
    caller: &Caller,
    app: &str,
    req: &AttachAddon,
) -> Result<Addon> {
    let id = app_id(c, app).await?;
    let name = req.addon.trim();
    let Some(a) = c.store.addon(name).await? else {
        return Err(ApiError::NotFound(format!("no add-on named {name}")).into());
    };
    let owner = c.store.app_name_by_id(a.app_id).await?;
    let visible = match owner.as_deref() {
        Some(o) => caller.can_use_app(c, o).await?,
        None => false,
    };
    if !visible {
        return Err(ApiError::NotFound(format!("no add-on named {name}")).into());
    }
    let svc = service(&a.service)?;
    let var = attachment_var(svc, req.as_name.as_deref())?;
    let before = c.store.addon_attachments(Some(name)).await?;
    if let Some(t) = before.iter().find(|t| t.app_id == id) {
        return Err(ApiError::Conflict(format!(
            "{name} is already attached to {app} as {}",
            t.var
        ))
        .into());
    }
    var_is_free(c, app, id, &var).await?;
    c.store.attach_addon(name, id, &var).await?;
    tracing::info!(addon = %name, %app, %var, "add-on attached");
    let attachments = c.store.addon_attachments(Some(name)).await?;
    let new: Vec<AttachmentRow> = attachments
        .iter()
        .filter(|t| t.app_id == id)
        .cloned()
        .collect();
    supervisor::publish(c, &a, &new).await;
    supervisor::wake();
    view(c, caller, &a, &attachments, Some(app)).await
}

/// Removes the URL var from `app` (a release) when it still holds the add-on's.
pub(super) async fn unset_var(c: &Arc<Controller>, app: &str, var: &str) {
    if !c
        .store
        .config_vars(app)
        .await
        .unwrap_or_default()
        .contains_key(var)
    {
        return;
    }
    let changes = BTreeMap::from([(var.to_string(), None)]);
    if let Err(e) = crate::apps::set_config(c, app, &changes).await {
        tracing::warn!(%app, %var, "unsetting an add-on's URL: {e}");
    }
}

/// `addons:detach ADDON -a APP`: not from the app that owns it (destroy it there).
pub async fn detach(c: &Arc<Controller>, app: &str, name: &str) -> Result<()> {
    let (a, attachments, id) = attached(c, app, name).await?;
    if a.app_id == id {
        return Err(ApiError::Conflict(format!(
            "{name} belongs to {app}: an add-on stays attached to its own app; destroy it \
             instead (paas addons:destroy {name} -a {app} --confirm {app})"
        ))
        .into());
    }
    c.store.detach_addon(name, id).await?;
    if let Some(t) = attachments.iter().find(|t| t.app_id == id) {
        unset_var(c, app, &t.var).await;
    }
    tracing::info!(addon = %name, %app, "add-on detached");
    supervisor::wake();
    Ok(())
}

/// `addons:destroy ADDON -a APP --confirm APP`: unsets the URL on every attached app,
/// stops the job, deletes the volume (the data) and the credentials.
pub async fn destroy(
    c: &Arc<Controller>,
    app: &str,
    name: &str,
    confirm: Option<&str>,
) -> Result<()> {
    let (a, attachments, id) = attached(c, app, name).await?;
    if a.app_id != id {
        let owner = c.store.app_name_by_id(a.app_id).await?.unwrap_or_default();
        return Err(ApiError::Conflict(format!(
            "{name} belongs to {owner}: detach it from {app} instead (paas addons:detach \
             {name} -a {app})"
        ))
        .into());
    }
    if confirm != Some(app) {
        let others: Vec<&str> = attachments
            .iter()
            .filter(|t| t.app_id != id)
            .filter_map(|t| t.app.as_deref())
            .collect();
        let also = if others.is_empty() {
            String::new()
        } else {
            format!(" It is attached to {} other app(s) too.", others.len())
        };
        return Err(ApiError::BadRequest(format!(
            "destroying {name} deletes its data and its backups for good.{also} Pass --confirm {app} (confirm={app}) \
             to go on"
        ))
        .into());
    }
    for t in &attachments {
        if let Some(app) = t.app.as_deref() {
            unset_var(c, app, &t.var).await;
        }
    }
    supervisor::teardown(c, &a).await;
    c.store.delete_addon(name).await?;
    tracing::info!(addon = %name, %app, "add-on destroyed");
    Ok(())
}
