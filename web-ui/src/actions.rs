//! The app forms (`POST`, CSRF-checked): create an app, roll back, scale, set and unset
//! config vars, add and remove domains, turn automatic certificates on or off, rename and
//! destroy the app, restart and stop jobs.
//! App forms take [`AppAuth`], so the controller has checked the viewer may use the app
//! before anything runs. Success redirects (303) back to the page; a refused change
//! renders the page again with the message next to its form (400).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use crate::auth::{AppAuth, LoggedIn};
use crate::pages::{self, FormErrors};
use crate::render::{Page, PageError};
use crate::{ActionError, Dashboard};

#[derive(Deserialize)]
pub(crate) struct CreateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

#[derive(Deserialize)]
pub(crate) struct RollbackForm {
    #[serde(default)]
    csrf: String,
    version: u32,
}

#[derive(Deserialize)]
pub(crate) struct ScaleForm {
    #[serde(default)]
    csrf: String,
    #[serde(rename = "type")]
    process_type: String,
    #[serde(default)]
    quantity: String,
}

#[derive(Deserialize)]
pub(crate) struct ConfigForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    value: String,
}

#[derive(Deserialize)]
pub(crate) struct RenameForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    new_name: String,
}

#[derive(Deserialize)]
pub(crate) struct DestroyForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    confirm: String,
}

#[derive(Deserialize)]
pub(crate) struct AcmeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    enabled: String,
}

#[derive(Deserialize)]
pub(crate) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

#[derive(Deserialize)]
pub(crate) struct TypeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default, rename = "type")]
    process_type: String,
}

#[derive(Deserialize)]
pub(crate) struct DomainForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    hostname: String,
}

#[derive(Deserialize)]
pub(crate) struct VolumeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    size: String,
    #[serde(default, rename = "type")]
    process_type: String,
    #[serde(default)]
    path: String,
    #[serde(default)]
    confirm: String,
}

/// Where a successful change sends the browser: the app page, at the section changed.
pub(crate) fn back(app: &str, section: &str) -> Response {
    Redirect::to(&format!("/apps/{app}#{section}")).into_response()
}

/// The app page again, with `errors` shown next to their forms.
pub(crate) async fn again<D: Dashboard>(
    d: &D,
    auth: &AppAuth,
    errors: FormErrors,
) -> Result<Response, PageError> {
    again_with(d, auth, errors, StatusCode::BAD_REQUEST).await
}

async fn again_with<D: Dashboard>(
    d: &D,
    auth: &AppAuth,
    errors: FormErrors,
    status: StatusCode,
) -> Result<Response, PageError> {
    let page = pages::app_page(d, auth, errors).await?;
    Ok((status, Page(page)).into_response())
}

/// The CSRF check every app form runs (the app itself was checked by [`AppAuth`]).
pub(crate) fn check(auth: &AppAuth, csrf: &str) -> Result<(), PageError> {
    if auth.session.csrf_ok(csrf) {
        Ok(())
    } else {
        Err(PageError::Csrf)
    }
}

/// Splits an action's error: a user error goes to `show`, an internal one is a 500.
pub(crate) fn user_error(e: ActionError, action: &'static str) -> Result<String, PageError> {
    match e {
        ActionError::User(m) => Ok(m),
        ActionError::Internal(message) => Err(PageError::Backend { action, message }),
    }
}

/// `POST /apps` — creates an app and opens its page.
pub(crate) async fn create_app<D: Dashboard>(
    auth: LoggedIn,
    State(d): State<Arc<D>>,
    headers: HeaderMap,
    Form(f): Form<CreateForm>,
) -> Result<Response, PageError> {
    if !auth.session.csrf_ok(&f.csrf) {
        return Err(PageError::Csrf);
    }
    let name = f.name.trim().to_string();
    match d.create_app(&auth.viewer, &name).await {
        Ok(app) => Ok(Redirect::to(&format!("/apps/{}", app.name)).into_response()),
        Err(e) => {
            let message = user_error(e, "create the app")?;
            let page = pages::apps_page(
                &*d,
                &auth.session,
                &auth.viewer,
                &headers,
                None,
                Some(message),
                name,
            )
            .await?;
            Ok((StatusCode::BAD_REQUEST, Page(page)).into_response())
        }
    }
}

/// `POST /apps/{name}/rollback` — `version=N`.
pub(crate) async fn rollback<D: Dashboard>(
    auth: AppAuth,
    State(d): State<Arc<D>>,
    Form(f): Form<RollbackForm>,
) -> Result<Response, PageError> {
    check(&auth, &f.csrf)?;
    let app = auth.app.clone();
    match d.rollback(&app, f.version).await {
        Ok(_) => Ok(back(&app, "releases")),
        Err(e) => {
            let rollback = Some(user_error(e, "roll back")?);
            let errors = FormErrors {
                rollback,
                ..FormErrors::default()
            };
            again(&*d, &auth, errors).await
        }
    }
}

/// `POST /apps/{name}/scale` — `type=web&quantity=2`.
pub(crate) async fn scale<D: Dashboard>(
    auth: AppAuth,
    State(d): State<Arc<D>>,
    Form(f): Form<ScaleForm>,
) -> Result<Response, PageError> {
    check(&auth, &f.csrf)?;
    let app = auth.app.clone();
    let result = match f.quantity.trim().parse::<u32>() {
        Ok(q) => d.scale(&app, &f.process_type, q).await,
        Err(_) => Err(ActionError::User(format!(
            "{:?} is not a number of processes: use 0, 1, 2, …",
            f.quantity
        ))),
    };
    match result {
        Ok(()) => Ok(back(&app, "formation")),
        Err(e) => {
            let scale = Some(user_error(e, "scale")?);
            let errors = FormErrors {
                scale,
                ..FormErrors::default()
            };
            again(&*d, &auth, errors).await
        }
    }
}

/// `POST /apps/{name}/config` — `key=K&value=V` sets one var (a new release).
pub(crate) async fn set_config<D: Dashboard>(
    auth: AppAuth,
    State(d): State<Arc<D>>,
    Form(f): Form<ConfigForm>,
) -> Result<Response, PageError> {
    check(&auth, &f.csrf)?;
    let app = auth.app.clone();
    let key = f.key.trim().to_string();
    let result = if key.is_empty() {
        Err(ActionError::User("enter a key, e.g. DATABASE_URL".into()))
    } else if let Err(e) = paas_api::config_vars::check_value(&key, &f.value) {
        // Refused before the controller is asked (it checks again, and the total).
        Err(ActionError::User(e.to_string()))
    } else {
        d.set_config(&app, BTreeMap::from([(key.clone(), Some(f.value.clone()))]))
            .await
    };
    // A refused value is not sent back into the form when it is over the limit.
    let value = if f.value.len() > paas_api::config_vars::MAX_VALUE_BYTES {
        String::new()
    } else {
        f.value
    };
    config_result(&*d, &auth, result, key, value).await
}

/// `POST /apps/{name}/config/unset` — `key=K` removes one var (a new release).
pub(crate) async fn unset_config<D: Dashboard>(
    auth: AppAuth,
    State(d): State<Arc<D>>,
    Form(f): Form<ConfigForm>,
) -> Result<Response, PageError> {
    check(&auth, &f.csrf)?;
    let app = auth.app.clone();
    let key = f.key.trim().to_string();
    let result = d
        .set_config(&app, BTreeMap::from([(key.clone(), None)]))
        .await;
    config_result(&*d, &auth, result, key, String::new()).await
}

async fn config_result<D: Dashboard>(
    d: &D,
    auth: &AppAuth,
    result: Result<Option<u32>, ActionError>,
    key: String,
    value: String,
) -> Result<Response, PageError> {
    match result {
        Ok(_) => Ok(back(&auth.app, "config")),
        Err(e) => {
            let errors = FormErrors {
                config: Some(user_error(e, "change the config")?),
                config_key: key,
                config_value: value,
                ..FormErrors::default()
            };
            // 422 like the API: the key or value cannot be stored as given.
            again_with(d, auth, errors, StatusCode::UNPROCESSABLE_ENTITY).await
        }
    }
}

/// `POST /apps/{name}/domains` — `hostname=www.example.com`.
pub(crate) async fn add_domain<D: Dashboard>(
    auth: AppAuth,
    State(d): State<Arc<D>>,
    Form(f): Form<DomainForm>,
) -> Result<Response, PageError> {
    check(&auth, &f.csrf)?;
    let app = auth.app.clone();
    let result = d.add_domain(&app, f.hostname.trim()).await;
    domain_result(&*d, &auth, result, f.hostname).await
}

/// `POST /apps/{name}/domains/remove` — `hostname=www.example.com`.
pub(crate) async fn remove_domain<D: Dashboard>(
    auth: AppAuth,
    State(d): State<Arc<D>>,
    Form(f): Form<DomainForm>,
) -> Result<Response, PageError> {
    check(&auth, &f.csrf)?;
    let app = auth.app.clone();
    let result = d.remove_domain(&app, f.hostname.trim()).await;
    domain_result(&*d, &auth, result, String::new()).await
}

async fn domain_result<D: Dashboard>(
    d: &D,
    auth: &AppAuth,
    result: Result<(), ActionError>,
    hostname: String,
) -> Result<Response, PageError> {
    match result {
        Ok(()) => Ok(back(&auth.app, "domains")),
        Err(e) => {
            let errors = FormErrors {
                domain: Some(user_error(e, "change the domains")?),
                domain_value: hostname,
                ..FormErrors::default()
            };
            again(d, auth, errors).await
        }
    }
}

/// `POST /apps/{name}/volumes` — `name=uploads&size=1G`.
pub(crate) async fn create_volume<D: Dashboard>(
    auth: AppAuth,
    State(d): State<Arc<D>>,
    Form(f): Form<VolumeForm>,
) -> Result<Response, PageError> {
    check(&auth, &f.csrf)?;
    let result = d
        .create_volume(&auth.app, f.name.trim(), f.size.trim())
        .await;
    volume_result(&*d, &auth, result, f.name).await
}

/// `POST /apps/{name}/volumes/mount` — `name=uploads&type=web&path=/app/uploads`.
pub(crate) async fn mount_volume<D: Dashboard>(
    auth: AppAuth,
    State(d): State<Arc<D>>,
    Form(f): Form<VolumeForm>,
) -> Result<Response, PageError> {
    check(&auth, &f.csrf)?;
    let result = d
        .mount_volume(&auth.app, &f.name, f.process_type.trim(), f.path.trim())
        .await;
    volume_result(&*d, &auth, result, String::new()).await
}

/// `POST /apps/{name}/volumes/unmount` — `name=uploads`.
pub(crate) async fn unmount_volume<D: Dashboard>(
    auth: AppAuth,
    State(d): State<Arc<D>>,
    Form(f): Form<VolumeForm>,
) -> Result<Response, PageError> {
    check(&auth, &f.csrf)?;
    let result = d.unmount_volume(&auth.app, &f.name).await;
    volume_result(&*d, &auth, result, String::new()).await
}

/// `POST /apps/{name}/volumes/destroy` — `name=uploads&confirm=APP`.
pub(crate) async fn destroy_volume<D: Dashboard>(
    auth: AppAuth,
    State(d): State<Arc<D>>,
    Form(f): Form<VolumeForm>,
) -> Result<Response, PageError> {
    check(&auth, &f.csrf)?;
    let result = d.destroy_volume(&auth.app, &f.name, f.confirm.trim()).await;
    volume_result(&*d, &auth, result, String::new()).await
}

async fn volume_result<D: Dashboard>(
    d: &D,
    auth: &AppAuth,
    result: Result<(), ActionError>,
    name: String,
) -> Result<Response, PageError> {
    match result {
        Ok(()) => Ok(back(&auth.app, "volumes")),
        Err(e) => {
            let errors = FormErrors {
                volume: Some(user_error(e, "change the volumes")?),
                volume_value: name,
                ..FormErrors::default()
            };
            again(d, auth, errors).await
        }
    }
}

/// `POST /apps/{name}/acme` — `enabled=true|false`: automatic certificates on or off.
pub(crate) async fn set_acme<D: Dashboard>(
    auth: AppAuth,
    State(d): State<Arc<D>>,
    Form(f): Form<AcmeForm>,
) -> Result<Response, PageError> {
    check(&auth, &f.csrf)?;
    let result = match f.enabled.trim() {
        "true" | "on" => d.set_acme(&auth.app, true).await,
        "false" | "off" => d.set_acme(&auth.app, false).await,
        other => Err(ActionError::User(format!(
            "{other:?} is neither on nor off: use the Turn on or Turn off button"
        ))),
    };
    match result {
        Ok(()) => Ok(back(&auth.app, "acme")),
        Err(e) => {
            let errors = FormErrors {
                acme: Some(user_error(e, "change the automatic certificates")?),
                ..FormErrors::default()
            };
            again(&*d, &auth, errors).await
        }
    }
}

/// `POST /apps/{name}/rename` — `new_name=…`; then the app's page under its new name.
pub(crate) async fn rename<D: Dashboard>(
    auth: AppAuth,
    State(d): State<Arc<D>>,
    Form(f): Form<RenameForm>,
) -> Result<Response, PageError> {
    check(&auth, &f.csrf)?;
    let to = f.new_name.trim().to_string();
    match d.rename_app(&auth.app, &to).await {
        Ok(app) => Ok(Redirect::to(&format!("/apps/{}", app.name)).into_response()),
        Err(e) => {
            let errors = FormErrors {
                rename: Some(user_error(e, "rename the app")?),
                rename_value: to,
                ..FormErrors::default()
            };
            again(&*d, &auth, errors).await
        }
    }
}

/// `POST /apps/{name}/destroy` — `confirm=<the app's name>`; then the apps list.
pub(crate) async fn destroy<D: Dashboard>(
    auth: AppAuth,
    State(d): State<Arc<D>>,
    Form(f): Form<DestroyForm>,
) -> Result<Response, PageError> {
    check(&auth, &f.csrf)?;
    match d.destroy_app(&auth.app, f.confirm.trim()).await {
        Ok(()) => Ok(Redirect::to("/").into_response()),
        Err(e) => {
            let errors = FormErrors {
                destroy: Some(user_error(e, "destroy the app")?),
                ..FormErrors::default()
            };
            again(&*d, &auth, errors).await
        }
    }
}

/// The jobs section after a restart or stop.
async fn jobs_result<D: Dashboard>(
    d: &D,
    auth: &AppAuth,
    result: Result<(), ActionError>,
    action: &'static str,
) -> Result<Response, PageError> {
    match result {
        Ok(()) => Ok(back(&auth.app, "jobs")),
        Err(e) => {
            let errors = FormErrors {
                jobs: Some(user_error(e, action)?),
                ..FormErrors::default()
            };
            again(d, auth, errors).await
        }
    }
}

/// `POST /apps/{name}/jobs/{id}/restart`
pub(crate) async fn restart_job<D: Dashboard>(
    auth: AppAuth,
    State(d): State<Arc<D>>,
    Path((_, id)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    check(&auth, &f.csrf)?;
    let result = d.restart_job(&auth.app, &id).await;
    jobs_result(&*d, &auth, result, "restart the job").await
}

/// `POST /apps/{name}/jobs/{id}/stop`
pub(crate) async fn stop_job<D: Dashboard>(
    auth: AppAuth,
    State(d): State<Arc<D>>,
    Path((_, id)): Path<(String, String)>,
    Form(f): Form<CsrfForm>,
) -> Result<Response, PageError> {
    check(&auth, &f.csrf)?;
    let result = d.stop_job(&auth.app, &id).await;
    jobs_result(&*d, &auth, result, "stop the job").await
}

/// `POST /apps/{name}/restart` — `type=web`: every running job of the type.
pub(crate) async fn restart_type<D: Dashboard>(
    auth: AppAuth,
    State(d): State<Arc<D>>,
    Form(f): Form<TypeForm>,
) -> Result<Response, PageError> {
    check(&auth, &f.csrf)?;
    let result = d.restart_type(&auth.app, f.process_type.trim()).await;
    jobs_result(&*d, &auth, result, "restart the jobs").await
}
