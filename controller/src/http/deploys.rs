//! Deploys without a push and what the deploy pipeline adds to releases:
//!
//! * `POST /v1/apps/{app}/releases` `{"image": "<repo>@sha256:…" | "<repo>[:tag]"}` (the
//!   route is shared with rollbacks, see `config::create_release`): deploys an image already
//!   in the controller's registry, from a repository the caller may pull (404 otherwise),
//!   linked into the app's own repository `apps/<app>` first; or `HOST[:PORT]/REPO…` of
//!   another registry, copied into `apps/<app>` with the caller's own registry login
//!   (`crate::registry_client`). Its config's `Entrypoint` + `Cmd` become the `web`
//!   process (its argv, run without a shell as Docker does); its `Env`, `WorkingDir` and
//!   `User` apply as they are. Answers once the release serves (`201`, the release with
//!   `status`) or failed (`422`, rolled back).
//! * the release list gains `status` (`pending`, `succeeded`, `failed`) and
//!   `status_reason` (why a deploy failed).
//! * `GET/PUT /v1/apps/{app}/buildpacks` `{"buildpacks": ["nodejs", "https://…#v2"]}`: the
//!   buildpacks builds of the app run, in order, instead of detection (`paas
//!   buildpacks:add/set/remove/clear`; the CLI edits the list and puts it whole): built-in
//!   names (or Heroku's `heroku/NAME`), classic buildpacks from a git URL (`#ref` pins it)
//!   or a path on the controller (a path or a `file://` URL is read from the controller's
//!   disk: admins only, 403 for members; one an admin added stays when a member edits the
//!   rest). New third-party entries are fetched before the answer, so a bad URL fails here.
//!   The answer carries `buildpack_url`: the `BUILDPACK_URL` config var, which wins.
//! * `GET/PUT/DELETE /v1/apps/{app}/buildpack` `{"buildpack": "static"}`: the same list as
//!   one buildpack (GET: the last one; PUT: the list becomes it; DELETE clears the list).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use http::StatusCode;
use paas_api::Release;
use serde::Deserialize;
use serde_json::{json, Value};

use super::ApiError;
use crate::auth::{log_refusal, may_use_repository, AppAccess, Caller};
use crate::builder::{buildpacks, custom, roll_out, BuildError, Output};
use crate::registry_client::{pull_for, registry_host, Error as PullError, Reference};
use crate::state::Controller;
use crate::store::NewRelease;
use paas_api::ErrorBody;

pub(super) fn routes() -> Router<Arc<Controller>> {
    Router::new()
        .route(
            "/v1/apps/{app}/buildpack",
            get(get_buildpack)
                .put(set_buildpack)
                .delete(clear_buildpack),
        )
        .route(
            "/v1/apps/{app}/buildpacks",
            get(list_buildpacks).put(replace_buildpacks),
        )
}

/// The releases as JSON; each already carries its deploy `status` and `status_reason`
/// (`apps::releases`).
pub(super) async fn with_status(
    _c: &Controller,
    _app: &str,
    releases: Vec<Release>,
) -> Result<Vec<Value>, ApiError> {
    Ok(releases
        .into_iter()
        .map(|r| serde_json::to_value(&r).unwrap_or_default())
        .collect())
}

/// Splits `[host[:port]/]repo[:tag|@digest]` into (repo, reference).
pub fn parse_image_ref(reference: &str) -> Result<(String, String), String> {
    let mut rest = reference.trim();
    if let Some((first, after)) = rest.split_once('/') {
        if first.contains(':') || first.contains('.') || first == "localhost" {
            rest = after;
        }
    }
    let (repo, reference) = if let Some((repo, digest)) = rest.split_once('@') {
        (repo, digest.to_string())
    } else {
        match rest.rsplit_once(':') {
            Some((repo, tag)) if !tag.contains('/') => (repo, tag.to_string()),
            _ => (rest, "latest".to_string()),
        }
    };
    if repo.is_empty() || reference.is_empty() {
        return Err(format!(
            "{reference:?} is not an image reference: use NAME:TAG or NAME@sha256:…"
        ));
    }
    Ok((repo.to_string(), reference))
}

/// The `web` command of an image config: its Entrypoint followed by its Cmd.
pub fn web_command(config: &Value) -> Option<String> {
    let c = config.get("config")?;
    let list = |k: &str| -> Vec<String> {
        c.get(k)
            .and_then(Value::as_array)
            .map(|a| {
                a.iter()
                    .filter_map(|v| v.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    };
    let words: Vec<String> = list("Entrypoint").into_iter().chain(list("Cmd")).collect();
    // Run as Docker runs it: the argv, without a shell (distroless images have none).
    (!words.is_empty()).then(|| crate::scheduler::command::to_exec_form(&words))
}

/// The other registry `image` names, if it names one that is not this controller
/// (`HOST[:PORT]/…` where HOST is not the controller's own address).
fn foreign_reference(c: &Controller, image: &str) -> Option<Result<Reference, PullError>> {
    let host = registry_host(image)?.to_ascii_lowercase();
    let own = [&c.settings.public_url, &c.settings.internal_url];
    if own.iter().any(|u| {
        u.split_once("://")
            .map(|(_, rest)| rest.trim_end_matches('/').eq_ignore_ascii_case(&host))
            .unwrap_or(false)
    }) {
        return None;
    }
    Reference::parse(image).transpose()
}

/// A pull failure as an API answer with its stable code.
pub(super) fn pull_error(e: PullError) -> Response {
    let status = e.status();
    if status.is_server_error() {
        tracing::warn!("image pull: {e}");
    }
    let message = match &e {
        PullError::Store { .. } => {
            "internal error: the controller's log has the details".to_string()
        }
        e => e.to_string(),
    };
    (status, Json(ErrorBody::new(e.code(), message))).into_response()
}

/// An image already in paas's registry that the caller may pull: (repo, manifest bytes,
/// media type, digest).
async fn local_image(
    c: &Controller,
    caller: &Caller,
    app: &str,
    image: &str,
) -> Result<(String, Vec<u8>, String, String), ApiError> {
    let (repo, reference) = parse_image_ref(image).map_err(ApiError::Validation)?;
    let not_yours = || {
        ApiError::NotFound(format!(
            "no image {image} that you may deploy: it is not in this controller's registry, or \
             it is in a repository you may not pull (members deploy images of apps/<app> of \
             their apps and of stacks/<name>). Push it first, e.g. skopeo copy oci:DIR \
             docker://CONTROLLER/apps/{app}:TAG --dest-creds USER:TOKEN, or name another \
             registry's image as HOST[:PORT]/REPO:TAG"
        ))
    };
    if !may_use_repository(c, caller, &repo, false).await? {
        log_refusal(
            404,
            caller.source,
            &caller.path,
            &format!("may not pull repository {repo} for an image deploy"),
        );
        return Err(not_yours());
    }
    let (bytes, media_type, digest) =
        c.registry
            .get_manifest(&repo, &reference)
            .await
            .map_err(|e| {
                tracing::debug!(%image, "image deploy: {e}");
                not_yours()
            })?;
    Ok((repo, bytes, media_type, digest))
}

/// `POST /v1/apps/{app}/releases` with `{"image": …}`. The caller must be allowed to pull
/// the image's repository (the registry's own rule, [`may_use_repository`]); to anyone
/// else the image does not exist (404, the same answer as for a missing one). The image is
/// linked into the app's own repository `apps/<app>` (manifest and blob links, tag
/// `v<N>`) and the release names it there, so the release never depends on the source
/// repository (another app's, which its destroy or rename deletes or moves).
pub(super) async fn deploy_image(
    c: Arc<Controller>,
    caller: Caller,
    app: String,
    image: String,
) -> Result<Response, ApiError> {
    if c.store.get_app(&app).await?.is_none() {
        return Err(ApiError::NotFound(format!("no app named {app}")));
    }
    let own = format!("apps/{app}");
    let (repo, bytes, media_type, digest) = match foreign_reference(&c, &image) {
        Some(r) => {
            let r = match r {
                Ok(r) => r,
                Err(e) => return Ok(pull_error(e)),
            };
            // Copied into the app's own repository (untagged until the release tags it),
            // with the caller's own stored credentials for that registry.
            let digest = match pull_for(&c, caller.name(), &r, &own).await {
                Ok(d) => d,
                Err(e) => return Ok(pull_error(e)),
            };
            let (bytes, media_type, digest) = c
                .registry
                .get_manifest(&own, &digest)
                .await
                .map_err(ApiError::internal)?;
            (own.clone(), bytes, media_type, digest)
        }
        None => {
            let (repo, bytes, media_type, digest) = local_image(&c, &caller, &app, &image).await?;
            (repo, bytes, media_type, digest)
        }
    };
    if media_type.contains("index") || media_type.contains("list") {
        return Err(ApiError::Validation(format!(
            "{image} is a multi-platform index: push a single-platform image \
             (skopeo copy --override-arch …)"
        )));
    }
    let manifest: Value = serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::Validation(format!("the manifest of {image} is not JSON: {e}")))?;
    let config_digest = manifest["config"]["digest"].as_str().unwrap_or_default();
    let config_path = c
        .registry
        .blob_path(config_digest)
        .ok_or_else(|| ApiError::Validation(format!("the config blob of {image} is missing")))?;
    let config: Value = serde_json::from_slice(
        &tokio::fs::read(&config_path)
            .await
            .map_err(ApiError::internal)?,
    )
    .map_err(|e| ApiError::Validation(format!("the config of {image} is not JSON: {e}")))?;
    let Some(web) = web_command(&config) else {
        return Err(ApiError::Validation(format!(
            "{image} has no Entrypoint or Cmd: paas would not know what to run as web"
        )));
    };

    let lock = c.build_lock(&app);
    let _guard = lock.lock().await;
    // Tagged `vN` once the release (and its number) is made, in one transaction.
    if repo != own {
        c.registry
            .copy_image(&repo, &digest, &own, None)
            .await
            .map_err(ApiError::internal)?;
    }
    let new = NewRelease {
        image: format!("{own}@{digest}"),
        source_version: None,
        process_types: BTreeMap::from([("web".to_string(), web)]),
        description: format!("Deploy image {image}"),
        config: None,
        pending: Some(None),
        app_json: None,
    };
    let (release, previous) = c.store.add_release(&app, &new).await?;
    let version = release.version;
    tracing::info!(%app, version, %image, "deploying an image");
    // Nobody reads the output (the receiver is dropped at once, so sends never wait); the
    // answer carries the outcome.
    let (tx, _) = tokio::sync::mpsc::channel(1);
    let mut out = Output::new(tx);
    let result = roll_out(&c, &release, previous, &mut out).await;
    let mut body = serde_json::to_value(release.to_api()).unwrap_or_default();
    let (status, code) = match &result {
        Ok(()) => ("succeeded", StatusCode::CREATED),
        Err(_) => ("failed", StatusCode::UNPROCESSABLE_ENTITY),
    };
    body["status"] = json!(status);
    body["status_reason"] = match result {
        Ok(()) => Value::Null,
        Err(BuildError::NotServing { detail, .. }) => json!(detail),
        Err(e) => json!(e.to_string()),
    };
    if code != StatusCode::CREATED {
        // Also an `api::ErrorBody`, so clients print the reason.
        body["error"] = json!({
            "code": "deploy_failed",
            "message": format!(
                "v{version} of {app} did not start serving: {}. The previous release keeps \
                 serving.",
                body["status_reason"].as_str().unwrap_or("unknown")
            ),
        });
    }
    Ok((code, Json(body)).into_response())
}

#[derive(Debug, Deserialize)]
struct BuildpackBody {
    buildpack: String,
}

#[derive(Debug, Deserialize)]
struct BuildpacksBody {
    buildpacks: Vec<String>,
}

/// The answer of the list routes: the app's buildpacks and the `BUILDPACK_URL` config var,
/// which wins over them when set.
async fn buildpacks_answer(c: &Controller, app: &str) -> Result<Value, ApiError> {
    let list = c.store.app_buildpacks(app).await?;
    let config = c.store.config_vars(app).await?;
    let url = config
        .get(buildpacks::BUILDPACK_URL)
        .filter(|v| !v.trim().is_empty());
    Ok(json!({ "app": app, "buildpacks": list, "buildpack_url": url }))
}

async fn existing_app(c: &Controller, app: &str) -> Result<(), ApiError> {
    if c.store.get_app(app).await?.is_none() {
        return Err(ApiError::NotFound(format!("no app named {app}")));
    }
    Ok(())
}

/// Checks (and fetches, so a bad URL or ref fails now) every buildpack of `list` that is
/// not already in `current`; a path or `file://` only for admins.
async fn check_list(
    c: &Controller,
    caller: &Caller,
    current: &[String],
    list: &[String],
) -> Result<Vec<String>, ApiError> {
    if list.len() > buildpacks::MAX_BUILDPACKS {
        return Err(ApiError::Validation(format!(
            "{} buildpacks given; at most {} run in one build",
            list.len(),
            buildpacks::MAX_BUILDPACKS
        )));
    }
    let mut checked: Vec<String> = Vec::new();
    for bp in list {
        let name = bp.trim().to_string();
        if checked.contains(&name) {
            return Err(ApiError::Validation(format!(
                "{name} is in the list twice: each buildpack runs once"
            )));
        }
        if !custom::is_builtin(&name) && !current.contains(&name) {
            let source = custom::parse(&name).map_err(|e| ApiError::Validation(e.to_string()))?;
            if source.is_local() && !caller.is_admin() {
                let what = if matches!(source, custom::Source::Path(_)) {
                    "a local path"
                } else {
                    "a file:// URL"
                };
                let message = format!(
                    "{}. Use a built-in buildpack ({}) or a git URL (https://…, #ref pins it) \
                     instead, or ask an admin to add it",
                    custom::CustomError::AdminOnly { what },
                    buildpacks::builtin_names().join(", ")
                );
                return Err(caller.forbid(&message));
            }
            custom::fetch(&c.settings.data_dir, &name, &source)
                .await
                .map_err(|e| ApiError::Validation(e.to_string()))?;
        }
        checked.push(name);
    }
    Ok(checked)
}

/// `GET /v1/apps/{app}/buildpacks`.
async fn list_buildpacks(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
) -> Result<Json<Value>, ApiError> {
    existing_app(&c, &app).await?;
    Ok(Json(buildpacks_answer(&c, &app).await?))
}

/// `PUT /v1/apps/{app}/buildpacks` `{"buildpacks": [...]}`: the whole list, in order (as
/// Heroku's buildpack-installations; `[]` clears it).
async fn replace_buildpacks(
    access: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let req: BuildpacksBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be {{\"buildpacks\": [\"NAME|URL|PATH\", …]}}: {e}"
        ))
    })?;
    existing_app(&c, &app).await?;
    let current = c.store.app_buildpacks(&app).await?;
    let list = check_list(&c, &access.0, &current, &req.buildpacks).await?;
    c.store.set_app_buildpacks(&app, &list).await?;
    Ok(Json(buildpacks_answer(&c, &app).await?))
}

/// `GET /v1/apps/{app}/buildpack`: the last buildpack of the list (the one whose process
/// types count), for clients of the single-buildpack route.
async fn get_buildpack(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
) -> Result<Json<Value>, ApiError> {
    existing_app(&c, &app).await?;
    let bp = c.store.app_buildpacks(&app).await?.pop();
    Ok(Json(json!({ "app": app, "buildpack": bp })))
}

/// `PUT /v1/apps/{app}/buildpack`: the list becomes this one buildpack.
async fn set_buildpack(
    access: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let req: BuildpackBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::BadRequest(format!(
            "the body must be {{\"buildpack\": \"NAME|URL|PATH\"}}: {e}"
        ))
    })?;
    existing_app(&c, &app).await?;
    let current = c.store.app_buildpacks(&app).await?;
    let list = check_list(&c, &access.0, &current, &[req.buildpack]).await?;
    c.store.set_app_buildpacks(&app, &list).await?;
    Ok(Json(json!({ "app": app, "buildpack": list[0] })))
}

async fn clear_buildpack(
    _: AppAccess,
    State(c): State<Arc<Controller>>,
    Path(app): Path<String>,
) -> Result<Json<Value>, ApiError> {
    existing_app(&c, &app).await?;
    c.store.set_app_buildpacks(&app, &[]).await?;
    Ok(Json(json!({ "app": app, "buildpack": null })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_refs() {
        let p = |s| parse_image_ref(s).unwrap();
        assert_eq!(p("img/web:1"), ("img/web".into(), "1".into()));
        assert_eq!(p("127.0.0.1:8080/img:v2"), ("img".into(), "v2".into()));
        assert_eq!(p("img"), ("img".into(), "latest".into()));
        let d = format!("sha256:{}", "a".repeat(64));
        assert_eq!(p(&format!("a/b@{d}")), ("a/b".into(), d.clone()));
        assert!(parse_image_ref("").is_err());
    }

    #[test]
    fn web_command_joins_entrypoint_and_cmd() {
        let cfg = json!({"config": {"Entrypoint": ["/bin/httpd", "-f"], "Cmd": ["-p", "5000", "-h", "/www root"]}});
        assert_eq!(
            web_command(&cfg).unwrap(),
            r#"["/bin/httpd","-f","-p","5000","-h","/www root"]"#
        );
        assert_eq!(web_command(&json!({"config": {}})), None);
    }
}
