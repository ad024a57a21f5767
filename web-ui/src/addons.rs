//! The add-ons section of the app page: its view models and its forms (`POST`,
//! CSRF-checked, behind [`AppAuth`] like every app form): create an add-on (service and
//! plan from what the controller offers), attach an add-on of another app (`--as NAME`)
//! and detach it, capture a backup, restore one (the app's name typed to confirm) and
//! destroy an add-on (the same); and the download of a completed backup's file (`GET`,
//! behind [`AppAuth`]: the session's cookie, which a browser sends with a plain link). The
//! controller answers every add-on or backup the app may not use exactly like a missing
//! one.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::Form;
use serde::Deserialize;

use crate::actions::{again, back, check, user_error};
use crate::auth::AppAuth;
use crate::pages::{human_bytes, FormErrors, Timestamp};
use crate::render::PageError;
use crate::{ActionError, AddonBackup, AddonInfo, AddonService, Dashboard};

/// One add-on row.
pub(crate) struct AddonView {
    pub(crate) name: String,
    pub(crate) service: String,
    pub(crate) plan: String,
    pub(crate) state: String,
    /// One of a fixed set, safe in a CSS class name.
    pub(crate) state_class: &'static str,
    pub(crate) state_reason: String,
    pub(crate) node: String,
    /// What its data takes (`8.5M`, as the volumes table writes sizes), or "–" while unknown.
    pub(crate) size: String,
    /// `DATABASE_URL`, or "–".
    pub(crate) attached_as: String,
    /// The owner app when it is another one (then this app only uses it).
    pub(crate) owner: Option<String>,
    pub(crate) created: Timestamp,
}

/// One backup row.
pub(crate) struct BackupView {
    pub(crate) id: String,
    pub(crate) addon: String,
    pub(crate) size: String,
    pub(crate) state: String,
    pub(crate) state_class: &'static str,
    pub(crate) error: String,
    pub(crate) created: Timestamp,
}

/// The create form's choices: a service and its plans.
pub(crate) struct ServiceView {
    pub(crate) name: String,
    /// (plan, label, is the default).
    pub(crate) plans: Vec<(String, String, bool)>,
}

impl AddonView {
    pub(crate) fn new(a: &AddonInfo, app: &str) -> AddonView {
        AddonView {
            name: a.name.clone(),
            service: a.service.clone(),
            plan: a.plan.clone(),
            state_class: match a.state.as_str() {
                "available" => "up",
                "creating" | "starting" => "busy",
                "crashed" | "unavailable" => "crashed",
                _ => "unknown",
            },
            state: a.state.clone(),
            state_reason: a.state_reason.clone().unwrap_or_default(),
            node: a.node.clone().unwrap_or_else(|| "–".into()),
            size: a.data_bytes.map_or_else(|| "–".into(), human_bytes),
            attached_as: a.attached_as.clone().unwrap_or_else(|| "–".into()),
            owner: (a.owner != app).then(|| a.owner.clone()),
            created: Timestamp::new(&a.created_at),
        }
    }
}

impl BackupView {
    pub(crate) fn new(b: &AddonBackup) -> BackupView {
        BackupView {
            id: b.id.clone(),
            addon: b.addon.clone(),
            size: if b.state == "completed" {
                human_bytes(b.size_bytes)
            } else {
                "–".into()
            },
            state_class: match b.state.as_str() {
                "completed" => "up",
                "running" => "busy",
                "failed" => "crashed",
                _ => "unknown",
            },
            state: b.state.clone(),
            error: b.error.clone().unwrap_or_default(),
            created: Timestamp::new(&b.created_at),
        }
    }
}

impl ServiceView {
    pub(crate) fn new(s: &AddonService) -> ServiceView {
        ServiceView {
            name: s.name.clone(),
            plans: s
                .plans
                .iter()
                .map(|(p, label)| (p.clone(), label.clone(), *p == s.default_plan))
                .collect(),
        }
    }
}

/// Every add-on form's fields (each form sends the ones it needs).
#[derive(Deserialize)]
pub(crate) struct AddonForm {
    #[serde(default)]
    csrf: String,
    /// `postgresql:mini`: one select offers each service's plans.
    #[serde(default)]
    plan: String,
    #[serde(default)]
    addon: String,
    #[serde(default)]
    backup: String,
    #[serde(default)]
    confirm: String,
    /// The attachment's name (`ANALYTICS` → `ANALYTICS_URL`); empty: the default var.
    #[serde(default, rename = "as")]
    as_name: String,
}

/// `POST /apps/{name}/addons` — `plan=postgresql:mini` (or just `plan=postgresql`: its
/// default plan).
pub(crate) async fn create<D: Dashboard>(
    auth: AppAuth,
    State(d): State<Arc<D>>,
    Form(f): Form<AddonForm>,
) -> Result<Response, PageError> {
    check(&auth, &f.csrf)?;
    let (service, plan) = f.plan.trim().split_once(':').unwrap_or((f.plan.trim(), ""));
    let result = if service.is_empty() {
        Err(ActionError::User("choose a service and plan".into()))
    } else {
        d.create_addon(&auth.viewer, &auth.app, service, plan).await
    };
    addon_result(&*d, &auth, result, "create the add-on").await
}

/// `POST /apps/{name}/addons/capture` — `addon=NAME`.
pub(crate) async fn capture<D: Dashboard>(
    auth: AppAuth,
    State(d): State<Arc<D>>,
    Form(f): Form<AddonForm>,
) -> Result<Response, PageError> {
    check(&auth, &f.csrf)?;
    let result = d.capture_backup(&auth.app, f.addon.trim()).await;
    addon_result(&*d, &auth, result, "capture a backup").await
}

/// `POST /apps/{name}/addons/restore` — `backup=ID&confirm=APP`.
pub(crate) async fn restore<D: Dashboard>(
    auth: AppAuth,
    State(d): State<Arc<D>>,
    Form(f): Form<AddonForm>,
) -> Result<Response, PageError> {
    check(&auth, &f.csrf)?;
    let result = d
        .restore_backup(&auth.viewer, &auth.app, f.backup.trim(), f.confirm.trim())
        .await;
    addon_result(&*d, &auth, result, "restore the backup").await
}

/// `POST /apps/{name}/addons/destroy` — `addon=NAME&confirm=APP`.
pub(crate) async fn destroy<D: Dashboard>(
    auth: AppAuth,
    State(d): State<Arc<D>>,
    Form(f): Form<AddonForm>,
) -> Result<Response, PageError> {
    check(&auth, &f.csrf)?;
    let result = d
        .destroy_addon(&auth.app, f.addon.trim(), f.confirm.trim())
        .await;
    addon_result(&*d, &auth, result, "destroy the add-on").await
}

/// `POST /apps/{name}/addons/attach` — `addon=NAME&as=ANALYTICS` (`addons:attach`).
pub(crate) async fn attach<D: Dashboard>(
    auth: AppAuth,
    State(d): State<Arc<D>>,
    Form(f): Form<AddonForm>,
) -> Result<Response, PageError> {
    check(&auth, &f.csrf)?;
    let addon = f.addon.trim();
    let result = if addon.is_empty() {
        Err(ActionError::User(
            "enter the name of the add-on to attach (paas addons -a OTHER-APP lists them)".into(),
        ))
    } else {
        d.attach_addon(&auth.viewer, &auth.app, addon, f.as_name.trim())
            .await
    };
    addon_result(&*d, &auth, result, "attach the add-on").await
}

/// `POST /apps/{name}/addons/detach` — `addon=NAME` (`addons:detach`).
pub(crate) async fn detach<D: Dashboard>(
    auth: AppAuth,
    State(d): State<Arc<D>>,
    Form(f): Form<AddonForm>,
) -> Result<Response, PageError> {
    check(&auth, &f.csrf)?;
    let result = d.detach_addon(&auth.app, f.addon.trim()).await;
    addon_result(&*d, &auth, result, "detach the add-on").await
}

/// `GET /apps/{name}/addons/backups/{id}/download` — the backup's file, as an attachment.
pub(crate) async fn download<D: Dashboard>(
    auth: AppAuth,
    State(d): State<Arc<D>>,
    Path((_, id)): Path<(String, String)>,
) -> Result<Response, PageError> {
    match d.download_backup(&auth.app, &id).await {
        Ok(file) => Ok(file),
        Err(ActionError::User(why)) => Err(PageError::NotFound {
            what: format!("file to download here: {why}"),
        }),
        Err(ActionError::Internal(message)) => Err(PageError::Backend {
            action: "download the backup",
            message,
        }),
    }
}

async fn addon_result<D: Dashboard>(
    d: &D,
    auth: &AppAuth,
    result: Result<(), ActionError>,
    action: &'static str,
) -> Result<Response, PageError> {
    match result {
        Ok(()) => Ok(back(&auth.app, "addons")),
        Err(e) => {
            let errors = FormErrors {
                addon: Some(user_error(e, action)?),
                ..FormErrors::default()
            };
            again(d, auth, errors).await
        }
    }
}
