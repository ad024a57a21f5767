//! The app forms (`POST`, CSRF-checked): create an app, roll back, scale, set and unset
//! config vars, add and remove domains. Success redirects (303) back to the page; a
//! refused change renders the page again with the message next to its form (400).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use crate::pages::{self, FormErrors};
use crate::render::{Page, PageError};
use crate::session::Session;
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
pub(crate) struct DomainForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    hostname: String,
}

/// Where a successful change sends the browser: the app page, at the section changed.
fn back(app: &str, section: &str) -> Response {
    Redirect::to(&format!("/apps/{app}#{section}")).into_response()
}

/// The app page again, with `errors` shown next to their forms.
async fn again<D: Dashboard>(
    d: &D,
    session: &Session,
    app: &str,
    errors: FormErrors,
) -> Result<Response, PageError> {
    let page = pages::app_page(d, session, app, errors).await?;
    Ok((StatusCode::BAD_REQUEST, Page(page)).into_response())
}

/// Runs the checks every app form shares: the CSRF token and a possible app name.
fn check(session: &Session, csrf: &str, app: &str) -> Result<(), PageError> {
    if !session.csrf_ok(csrf) {
        return Err(PageError::Csrf);
    }
    pages::check_name(app)
}

/// Splits an action's error: a user error goes to `show`, an internal one is a 500.
fn user_error(e: ActionError, action: &'static str) -> Result<String, PageError> {
    match e {
        ActionError::User(m) => Ok(m),
        ActionError::Internal(message) => Err(PageError::Backend { action, message }),
    }
}

/// `POST /apps` — creates an app and opens its page.
pub(crate) async fn create_app<D: Dashboard>(
    session: Session,
    State(d): State<Arc<D>>,
    headers: HeaderMap,
    Form(f): Form<CreateForm>,
) -> Result<Response, PageError> {
    if !session.csrf_ok(&f.csrf) {
        return Err(PageError::Csrf);
    }
    let name = f.name.trim().to_string();
    match d.create_app(&name).await {
        Ok(app) => Ok(Redirect::to(&format!("/apps/{}", app.name)).into_response()),
        Err(e) => {
            let message = user_error(e, "create the app")?;
            let page = pages::apps_page(&*d, &session, &headers, Some(message), name).await?;
            Ok((StatusCode::BAD_REQUEST, Page(page)).into_response())
        }
    }
}

/// `POST /apps/{name}/rollback` — `version=N`.
pub(crate) async fn rollback<D: Dashboard>(
    session: Session,
    State(d): State<Arc<D>>,
    Path(app): Path<String>,
    Form(f): Form<RollbackForm>,
) -> Result<Response, PageError> {
    check(&session, &f.csrf, &app)?;
    match d.rollback(&app, f.version).await {
        Ok(_) => Ok(back(&app, "releases")),
        Err(e) => {
            let rollback = Some(user_error(e, "roll back")?);
            let errors = FormErrors {
                rollback,
                ..FormErrors::default()
            };
            again(&*d, &session, &app, errors).await
        }
    }
}

/// `POST /apps/{name}/scale` — `type=web&quantity=2`.
pub(crate) async fn scale<D: Dashboard>(
    session: Session,
    State(d): State<Arc<D>>,
    Path(app): Path<String>,
    Form(f): Form<ScaleForm>,
) -> Result<Response, PageError> {
    check(&session, &f.csrf, &app)?;
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
            again(&*d, &session, &app, errors).await
        }
    }
}

/// `POST /apps/{name}/config` — `key=K&value=V` sets one var (a new release).
pub(crate) async fn set_config<D: Dashboard>(
    session: Session,
    State(d): State<Arc<D>>,
    Path(app): Path<String>,
    Form(f): Form<ConfigForm>,
) -> Result<Response, PageError> {
    check(&session, &f.csrf, &app)?;
    let key = f.key.trim().to_string();
    let result = if key.is_empty() {
        Err(ActionError::User("enter a key, e.g. DATABASE_URL".into()))
    } else {
        d.set_config(&app, BTreeMap::from([(key.clone(), Some(f.value.clone()))]))
            .await
    };
    config_result(&*d, &session, &app, result, key, f.value).await
}

/// `POST /apps/{name}/config/unset` — `key=K` removes one var (a new release).
pub(crate) async fn unset_config<D: Dashboard>(
    session: Session,
    State(d): State<Arc<D>>,
    Path(app): Path<String>,
    Form(f): Form<ConfigForm>,
) -> Result<Response, PageError> {
    check(&session, &f.csrf, &app)?;
    let key = f.key.trim().to_string();
    let result = d
        .set_config(&app, BTreeMap::from([(key.clone(), None)]))
        .await;
    config_result(&*d, &session, &app, result, key, String::new()).await
}

async fn config_result<D: Dashboard>(
    d: &D,
    session: &Session,
    app: &str,
    result: Result<Option<u32>, ActionError>,
    key: String,
    value: String,
) -> Result<Response, PageError> {
    match result {
        Ok(_) => Ok(back(app, "config")),
        Err(e) => {
            let errors = FormErrors {
                config: Some(user_error(e, "change the config")?),
                config_key: key,
                config_value: value,
                ..FormErrors::default()
            };
            again(d, session, app, errors).await
        }
    }
}

/// `POST /apps/{name}/domains` — `hostname=www.example.com`.
pub(crate) async fn add_domain<D: Dashboard>(
    session: Session,
    State(d): State<Arc<D>>,
    Path(app): Path<String>,
    Form(f): Form<DomainForm>,
) -> Result<Response, PageError> {
    check(&session, &f.csrf, &app)?;
    let result = d.add_domain(&app, f.hostname.trim()).await;
    domain_result(&*d, &session, &app, result, f.hostname).await
}

/// `POST /apps/{name}/domains/remove` — `hostname=www.example.com`.
pub(crate) async fn remove_domain<D: Dashboard>(
    session: Session,
    State(d): State<Arc<D>>,
    Path(app): Path<String>,
    Form(f): Form<DomainForm>,
) -> Result<Response, PageError> {
    check(&session, &f.csrf, &app)?;
    let result = d.remove_domain(&app, f.hostname.trim()).await;
    domain_result(&*d, &session, &app, result, String::new()).await
}

async fn domain_result<D: Dashboard>(
    d: &D,
    session: &Session,
    app: &str,
    result: Result<(), ActionError>,
    hostname: String,
) -> Result<Response, PageError> {
    match result {
        Ok(()) => Ok(back(app, "domains")),
        Err(e) => {
            let errors = FormErrors {
                domain: Some(user_error(e, "change the domains")?),
                domain_value: hostname,
                ..FormErrors::default()
            };
            again(d, session, app, errors).await
        }
    }
}
