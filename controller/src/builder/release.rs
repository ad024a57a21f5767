//! From a built image to a serving release: the release's process types, app.json and
//! release phase ([`build_and_release`], [`release_image`]), the first deploy's config and
//! formation, tagging `vN`, and the roll-out that waits until the release serves or rolls
//! back ([`deploy_release`], [`roll_out`]).

use std::sync::Arc;

use crate::registry::ConfigPatch;
use crate::state::Controller;
use crate::store::{NewRelease, ReleaseRow};
use crate::util::{now_rfc3339, random_hex, short_rev};

use super::{
    app_json, build_job_spec, buildpacks, cache, dockerfile, healthcheck, job, jsonc, layer,
    leftovers, procfile, release_phase, stack, BuildError, BuildInput, Output,
    ABANDONED_GRACE_SECS, DEPLOY_TIMEOUT,
};

pub(super) async fn build_and_release(
    c: &Arc<Controller>,
    input: &BuildInput,
    out: &mut Output,
) -> Result<u32, BuildError> {
    let app = input.app.as_str();
    let short = short_rev(&input.rev).to_string();
    let config = c.store.config_vars(app).await?;
    if let Some((path, text)) = dockerfile::wanted(c, input, &config).await? {
        return dockerfile::build_and_release(c, input, &path, &text, &config, out).await;
    }
    let stack = stack::choose(&c.registry, &config, &c.settings.stack).await?;
    out.line(format!(
        "-----> Building {app} from {short} on stack {stack}"
    ))
    .await;
    let input = &BuildInput {
        stack: stack.clone(),
        ..input.clone()
    };
    let (node, node_url) = job::pick_node(c, out).await?;
    let job_id = format!("build-{}", input.id);
    let app_id = c
        .store
        .app_id(app)
        .await?
        .ok_or_else(|| crate::store::StoreError::NoApp(app.to_string()))?;
    let mut spec = build_job_spec(&c.settings, input, &job_id, app_id);
    buildpacks::apply(c, input, &config, &mut spec, out).await?;
    tracing::debug!(%app, %node, job = %job_id, "running the build job");
    let limit = c.settings.build_limits.timeout;
    let outcome = tokio::time::timeout(limit, job::run_build_job(c, &node_url, &spec, out))
        .await
        .unwrap_or(Err(BuildError::TimedOut(limit)));
    if let Err(e @ (BuildError::TimedOut(_) | BuildError::ClientGone)) = &outcome {
        // Nothing of an abandoned build is kept: no need for the usual 10 s of SIGTERM.
        tracing::info!(%app, job = %job_id, "stopping the build job: {e}");
        if let Err(e) = c
            .agents
            .stop_job(&node_url, &job_id, ABANDONED_GRACE_SECS)
            .await
        {
            tracing::warn!(job = %job_id, "stopping the build job: {e}");
        }
    }
    if let Err(e) = c.agents.delete_job(&node_url, &job_id).await {
        tracing::warn!(job = %job_id, "deleting the build job: {e}");
    }
    if let Some(max) = c.settings.build_limits.max_cache_bytes {
        cache::enforce_limit(c, &node_url, &spec, max, out).await;
    }
    let layer = outcome?;
    if out.gone() {
        return Err(BuildError::ClientGone);
    }
    leftovers::kill_point("pushing-layer");

    let blob = c
        .registry
        .blob_path(&layer.digest)
        .ok_or(BuildError::NoLayer)?;
    let files = tokio::task::spawn_blocking(move || layer::release_files(&blob))
        .await
        .map_err(|e| BuildError::Lost(format!("reading the layer: {e}")))??;
    let mut env = vec!["HOME=/app".to_string()];
    env.extend(layer::env_entries(files.env.as_deref().unwrap_or("")));
    let patch = ConfigPatch {
        env,
        working_dir: Some("/app".into()),
        cmd: None,
    };
    let repo = format!("apps/{app}");
    let digest = c
        .registry
        .append_layer(
            &format!("stacks/{stack}"),
            "latest",
            &layer,
            &patch,
            &repo,
            // `vN` once the release is made (its number is taken in the release's own
            // transaction, see `deploy_release`).
            "latest",
        )
        .await?;
    release_image(c, input, &node_url, &repo, &digest, files, None, out).await
}

/// What a Dockerfile image adds to its release (see `dockerfile::finish`).
pub(super) struct ImageRelease {
    pub(super) defaults: std::collections::BTreeMap<String, String>,
    pub(super) health: Option<healthcheck::HealthCheck>,
}

/// Makes and deploys the release of the image `repo@digest` (process types from the
/// Procfile and the build's defaults, app.json, release phase, scripts).
#[allow(clippy::too_many_arguments)]
pub(super) async fn release_image(
    c: &Arc<Controller>,
    input: &BuildInput,
    node_url: &str,
    repo: &str,
    digest: &str,
    files: layer::ReleaseFiles,
    image: Option<ImageRelease>,
    out: &mut Output,
) -> Result<u32, BuildError> {
    let app = input.app.as_str();
    let short = short_rev(&input.rev).to_string();
    let mut types =
        procfile::process_types(files.procfile.as_deref(), files.release_yml.as_deref())?;
    if let Some(img) = &image {
        // (Procfile lines already carry the image's ENTRYPOINT: `dockerfile::finish`.)
        for (name, command) in &img.defaults {
            types.entry(name.clone()).or_insert_with(|| command.clone());
        }
    }
    let app_json = match files.app_json.as_deref() {
        Some(text) => {
            let parsed = app_json::parse(text)?;
            for note in &parsed.notes {
                out.line(format!("       app.json: {note}")).await;
            }
            // Kept with the release as plain JSON (config:set and rollback copy it).
            Some((parsed, jsonc::strip(text).unwrap_or_default()))
        }
        None => None,
    };
    let check = app_json
        .as_ref()
        .and_then(|(a, _)| a.healthcheck.clone())
        .or_else(|| image.as_ref().and_then(|i| i.health.clone()));
    if let Some(check) = &check {
        out.line(format!(
            "-----> Health check: GET {}{} ({} attempts, {} s apart)",
            check.path,
            check
                .content
                .as_ref()
                .map(|c| format!(" expecting {c:?}"))
                .unwrap_or_default(),
            check.attempts,
            check.wait
        ))
        .await;
    }
    // The first deploy: nothing of the app serves yet (a failed first deploy counts too).
    let first = c
        .store
        .get_app(app)
        .await?
        .and_then(|a| a.current_release)
        .is_none();
    if first {
        if let Some((a, _)) = &app_json {
            first_deploy_setup(c, app, a, out).await?;
        }
    }
    let has_web = types.contains_key("web");
    if types.is_empty() {
        out.line("       No process types (no Procfile and no buildpack defaults): nothing runs; `paas run` works on the release")
            .await;
    } else if !has_web {
        out.line(format!(
            "       No web process type: the app is not routed (types: {})",
            types.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
        .await;
    }
    if out.gone() {
        return Err(BuildError::ClientGone);
    }
    let new = NewRelease {
        image: format!("{repo}@{digest}"),
        source_version: Some(input.rev.clone()),
        process_types: types,
        // The stored config as it is when the release is made (a change made while this
        // build ran is not lost).
        config: None,
        description: format!("Deploy {short}"),
        pending: Some(check.as_ref().and_then(|c| serde_json::to_string(c).ok())),
        // Kept with the release (config:set and rollback copy it).
        app_json: app_json.as_ref().map(|(_, plain)| plain.clone()),
    };
    // The release command runs with the config of now; it has no release number yet.
    let preview = ReleaseRow {
        app: app.to_string(),
        version: 0,
        image: new.image.clone(),
        source_version: new.source_version.clone(),
        process_types: new.process_types.clone(),
        config: c.store.config_vars(app).await?,
        description: new.description.clone(),
        created_at: now_rfc3339(),
    };
    release_phase::run(c, node_url, &preview, &input.id, out).await?;
    if let Some(script) = app_json.as_ref().and_then(|(a, _)| a.predeploy.clone()) {
        release_phase::run_script(c, node_url, &preview, &input.id, "predeploy", &script, out)
            .await
            .map_err(|reason| BuildError::Predeploy {
                script: "scripts.dokku.predeploy",
                reason,
            })?;
    }
    if out.gone() {
        return Err(BuildError::ClientGone);
    }
    let release = deploy_release(c, app, &new, out).await?;
    let version = release.version;
    if has_web {
        out.line(format!(
            "       {} deployed to paas",
            c.settings.web_url(app)
        ))
        .await;
    }
    if let Some((a, _)) = &app_json {
        let scripts = [
            ("scripts.dokku.postdeploy", a.postdeploy_every.as_ref()),
            (
                "scripts.postdeploy",
                a.postdeploy_first.as_ref().filter(|_| first),
            ),
        ];
        for (name, script) in scripts {
            let Some(script) = script else { continue };
            release_phase::run_script(c, node_url, &release, &input.id, "postdeploy", script, out)
                .await
                .map_err(|reason| BuildError::Postdeploy {
                    version,
                    script: name,
                    reason,
                })?;
        }
    }
    Ok(version)
}

/// Tags the release's image `vN` in its repository (what `docker pull …:vN` finds); the
/// release row names the image by digest, so a failure here only logs.
async fn tag_release(c: &Controller, release: &ReleaseRow) {
    let Some((repo, digest)) = release.image.split_once('@') else {
        return;
    };
    let tag = format!("v{}", release.version);
    if let Err(e) = c.registry.copy_image(repo, digest, repo, Some(&tag)).await {
        tracing::warn!(app = %release.app, %tag, "tagging the release image: {e}");
    }
}

/// What app.json sets on an app's first deploy: config vars from `env` (a required one
/// missing fails the push, naming it) and the formation (quantities and sizes).
async fn first_deploy_setup(
    c: &Controller,
    app: &str,
    a: &app_json::AppJson,
    out: &mut Output,
) -> Result<(), BuildError> {
    let config = c.store.config_vars(app).await?;
    let set = app_json::first_deploy_env(&a.env, &config, || random_hex(32))
        .map_err(BuildError::MissingEnv)?;
    if !set.is_empty() {
        let changes: std::collections::BTreeMap<String, Option<String>> = set
            .iter()
            .map(|(k, v)| (k.clone(), Some(v.clone())))
            .collect();
        if let Err(refused) = c
            .store
            .change_config(app, &changes, paas_api::config_vars::check_change)
            .await?
        {
            return Err(BuildError::AppJson(app_json::AppJsonError::Field {
                field: format!("env.{}", refused.key()),
                why: refused.to_string(),
            }));
        }
        out.line(format!(
            "-----> Setting config vars from app.json: {}",
            set.keys().cloned().collect::<Vec<_>>().join(", ")
        ))
        .await;
    }
    let volumes = c.store.volumes(Some(app)).await?;
    for (process_type, entry) in &a.formation {
        if let Some(q) = entry.quantity {
            if let Err(refused) = crate::volumes::check_scale(&volumes, app, process_type, q) {
                return Err(BuildError::AppJson(app_json::AppJsonError::Field {
                    field: format!("formation.{process_type}.quantity"),
                    why: refused.to_string(),
                }));
            }
        }
    }
    for (process_type, entry) in &a.formation {
        if let Some(q) = entry.quantity {
            c.store.set_formation(app, process_type, q).await?;
        }
        if let Some(bytes) = entry.size {
            c.store
                .set_formation_memory(app, process_type, bytes)
                .await?;
        }
        out.line(format!(
            "-----> Formation from app.json: {process_type}={}{}",
            entry
                .quantity
                .map_or("default".to_string(), |q| q.to_string()),
            entry
                .size
                .map(|b| format!(":{}", paas_api::sizes::name(b)))
                .unwrap_or_default()
        ))
        .await;
    }
    Ok(())
}

/// Makes the release `new` describes (its version taken in the same transaction), makes
/// it current and waits until it serves. When it does not, the release is marked failed
/// with the reason and the app's current release goes back to the one before (auto
/// rollback), which kept serving throughout.
pub(crate) async fn deploy_release(
    c: &Controller,
    app: &str,
    new: &NewRelease,
    out: &mut Output,
) -> Result<ReleaseRow, BuildError> {
    // Version, release, current release and `pending` record in one transaction.
    let (release, previous) = c.store.add_release(app, new).await?;
    roll_out(c, &release, previous, out).await?;
    Ok(release)
}

/// Tags the new current `release`, tells the scheduler and waits until what its formation
/// starts runs (web routed and healthy, other types up); when it does not, shows the
/// failing process's last lines, marks the release failed and makes `previous` current
/// again (auto rollback).
pub(crate) async fn roll_out(
    c: &Controller,
    release: &ReleaseRow,
    previous: Option<u32>,
    out: &mut Output,
) -> Result<(), BuildError> {
    use crate::store::release_status::{FAILED, SUCCEEDED};
    let (app, version) = (release.app.as_str(), release.version);
    leftovers::kill_point("releasing");
    tag_release(c, release).await;
    out.line(format!("-----> Releasing v{version}")).await;
    // What the formation starts of this release (web=1 by default once it has a web).
    let started: std::collections::BTreeSet<String> = c
        .store
        .formations()
        .await?
        .into_iter()
        .filter(|f| {
            f.app == app && f.count > 0 && release.process_types.contains_key(&f.process_type)
        })
        .map(|f| f.process_type)
        .collect();
    if started.is_empty() {
        out.line("       The formation starts no process of this release (scale one with `paas ps:scale TYPE=1`)").await;
    } else {
        out.line(format!(
            "       Starting {}",
            started.iter().cloned().collect::<Vec<_>>().join(", ")
        ))
        .await;
    }
    c.scheduler.notify();
    let waited = job::wait_deployed(c, app, version, &started, DEPLOY_TIMEOUT).await;
    if waited.is_err() {
        job::show_failing_output(c, app, version, out).await;
    }
    match waited {
        Ok(()) => {
            leftovers::kill_point("switching");
            c.store
                .set_release_status(app, version, None, SUCCEEDED, None)
                .await?;
            out.line("-----> Deploying... done").await;
            Ok(())
        }
        Err(e) => {
            let reason = match &e {
                BuildError::NotServing { detail, .. } => detail.clone(),
                other => other.to_string(),
            };
            c.store
                .set_release_status(app, version, None, FAILED, Some(&reason))
                .await?;
            if c.store
                .revert_current_release(app, version, previous)
                .await?
            {
                c.scheduler.notify();
                match previous {
                    Some(p) => {
                        out.line(format!(
                            " !     v{version} failed: {reason}\n !     Rolled back to v{p}, which kept serving."
                        ))
                        .await
                    }
                    None => out.line(format!(" !     v{version} failed: {reason}")).await,
                }
                tracing::info!(%app, version, ?previous, "deploy failed, rolled back: {reason}");
            }
            Err(e)
        }
    }
}
