//! Dockerfile builds with paas's own builder (no Docker, BuildKit, buildah or kaniko).
//!
//! A pushed commit with a `Dockerfile` (or the file the `DOCKERFILE_PATH` config var
//! names) and no buildpack chosen (`BUILDPACK_URL`, the app's list, `.buildpacks`) is
//! built from it, as Dokku decides. The controller reads the file with the
//! `paas-dockerfile` crate (parse, ARG/ENV expansion, `.dockerignore`, the plan), then runs
//! the plan step by step:
//! * FROM: a stack (`stacks/NAME:latest`), an image in paas's registry (`apps/…`,
//!   `stacks/…`; a member may use the images of their own apps), `scratch`, or an earlier
//!   stage;
//! * COPY/ADD: made by the controller from the build context (the pushed source unpacked
//!   in the build's directory, minus `.dockerignore`) or from an earlier stage's or image's
//!   layers, as one zstd layer ([`files`]);
//! * RUN: a build job on a node over the image so far; the agent packs the job's root
//!   filesystem changes as one zstd layer ([`run`]);
//! * WORKDIR makes its directory in a small layer when the step has a new one; the other
//!   instructions change only the image config.
//!
//! Each step's cache key chains its parent's key, its expanded instruction (and for RUN
//! the build args it sees) and the hashes of the files COPY/ADD read; a key found in the
//! app's [`cache`] reuses that layer (`CACHED`). The image is `apps/<app>` with the last
//! stage's layers and config; [`finish`] derives the release's process types, port and
//! health check from it.

mod cache;
mod files;
mod image;
mod release;
mod run;
mod steps;
mod tree;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use paas_dockerfile::plan::{self, BaseImage, Bases, ImageConfig, StageBase};

use self::image::Layer;
use self::steps::Runner;
use super::{BuildError, BuildInput, Output};
use crate::state::Controller;

pub use cache::path as cache_path;
pub use release::{finish, Finished};

/// The config var that names the Dockerfile (default `Dockerfile`).
pub const DOCKERFILE_PATH: &str = "DOCKERFILE_PATH";
/// The config var that turns the layer cache off for every build (`1`, `true`).
pub const NO_CACHE: &str = "PAAS_NO_CACHE";
/// Largest Dockerfile read.
const MAX_DOCKERFILE: u64 = 1 << 20;

/// Whether this build uses a Dockerfile: its text and path when it does. `None`: build
/// with buildpacks.
pub async fn wanted(
    c: &Controller,
    input: &BuildInput,
    config: &BTreeMap<String, String>,
) -> Result<Option<(String, String)>, BuildError> {
    let tar = c.settings.build_dir(&input.id).join("source.tar");
    let named = config
        .get(DOCKERFILE_PATH)
        .map(|p| paas_dockerfile::ignore::clean(p));
    let want = named.clone().unwrap_or_else(|| "Dockerfile".to_string());
    let tar2 = tar.clone();
    let want2 = want.clone();
    let (dockerfile, dotfile) = tokio::task::spawn_blocking(move || {
        let text = read_source_file(&tar2, &want2)?;
        let dot = super::buildpacks::dotfile_in_source(&tar2)?;
        Ok::<_, std::io::Error>((text, dot))
    })
    .await
    .map_err(|e| BuildError::Lost(e.to_string()))?
    .map_err(|e| BuildError::Dockerfile(format!("reading the pushed source: {e}")))?;
    let app_list = c.store.app_buildpacks(&input.app).await?;
    if super::buildpacks::choose(config, &app_list, dotfile.as_deref()).is_some() {
        return Ok(None);
    }
    match (dockerfile, named) {
        (Some(text), _) => Ok(Some((want, text))),
        (None, Some(path)) => Err(BuildError::Dockerfile(format!(
            "the {DOCKERFILE_PATH} config var names {path}, which the pushed commit does not have: \
             commit it, or `paas config:unset {DOCKERFILE_PATH}`"
        ))),
        (None, None) => Ok(None),
    }
}

/// Builds the image from the Dockerfile `path` (text `text`) and makes and deploys its
/// release; sets `PORT` to the first EXPOSEd TCP port when the app has none.
pub async fn build_and_release(
    c: &Arc<Controller>,
    input: &BuildInput,
    path: &str,
    text: &str,
    config: &BTreeMap<String, String>,
    out: &mut Output,
) -> Result<u32, BuildError> {
    let app = input.app.as_str();
    let limit = c.settings.build_limits.timeout;
    let running = Mutex::new(None);
    let built = tokio::time::timeout(limit, build(c, input, path, text, config, &running, out))
        .await
        .unwrap_or(Err(BuildError::TimedOut(limit)));
    if let Err(e @ (BuildError::TimedOut(_) | BuildError::ClientGone)) = &built {
        // A RUN job still going: nothing of an abandoned build is kept.
        let job = running.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some((node_url, job_id)) = job {
            tracing::info!(%app, job = %job_id, "stopping the RUN job: {e}");
            let _ = c.agents.stop_job(&node_url, &job_id, 1).await;
            let _ = c.agents.delete_job(&node_url, &job_id).await;
        }
    }
    let (digest, image_config, layers) = built?;
    let finished = finish(c, &image_config, &layers).await?;
    for note in &finished.notes {
        out.line(format!("       {note}")).await;
    }
    if let Some(port) = finished.port {
        if !config.contains_key("PORT") && port != crate::scheduler::APP_PORT {
            let change =
                std::collections::BTreeMap::from([("PORT".to_string(), Some(port.to_string()))]);
            let _ = c
                .store
                .change_config(app, &change, paas_api::config_vars::check_change)
                .await?;
            out.line(format!("-----> Setting PORT={port}: the Dockerfile's first EXPOSEd TCP port (`paas config:set PORT=…` changes it)")).await;
        }
    }
    let files = super::layer::ReleaseFiles {
        procfile: finished.procfile.clone(),
        release_yml: None,
        env: None,
        app_json: finished.app_json.clone(),
    };
    let mut files = files;
    if let Some(text) = files.procfile.take() {
        // ENTRYPOINT before each line, and no shell needed unless a line uses one.
        let mut types = super::procfile::parse_procfile(&text)?;
        for (name, command) in types.iter_mut() {
            *command = release::procfile_command(&finished, name, command)
                .map_err(BuildError::Dockerfile)?;
        }
        files.procfile = Some(types.iter().map(|(k, v)| format!("{k}: {v}\n")).collect());
    }
    let image = super::ImageRelease {
        defaults: finished.defaults.clone(),
        health: finished.health.clone(),
    };
    let (_, node_url) = super::job::pick_node(c, out).await?;
    let repo = format!("apps/{app}");
    super::release_image(c, input, &node_url, &repo, &digest, files, Some(image), out).await
}

/// Whether the image of a release (`apps/<app>@sha256:…`) has `/bin/sh`. Releases
/// whose process types are all shell text are built on a stack and have one; the others
/// (exec-form commands: Dockerfile and image deploys) are looked at.
pub async fn release_has_shell(c: &Controller, release: &crate::store::ReleaseRow) -> bool {
    use crate::scheduler::command::exec_form;
    let types = &release.process_types;
    if !types.is_empty() && types.values().all(|t| exec_form(t).is_none()) {
        return true;
    }
    let Some((repo, digest)) = release.image.split_once('@') else {
        return true;
    };
    let Ok(img) = image::read(&c.registry, repo, digest).await else {
        return true;
    };
    let named: Vec<(String, PathBuf)> = img
        .layers
        .iter()
        .filter_map(|l| {
            c.registry
                .blob_path(&l.digest)
                .map(|p| (l.digest.clone(), p))
        })
        .collect();
    tokio::task::spawn_blocking(move || {
        tree::image_tree(&named)
            .map(|t| t.is_file("/bin/sh"))
            .unwrap_or(true)
    })
    .await
    .unwrap_or(true)
}

/// The text of `path` (relative) in the `git archive` tar.
fn read_source_file(tar: &Path, path: &str) -> std::io::Result<Option<String>> {
    use std::io::Read as _;
    let mut archive = tar::Archive::new(std::fs::File::open(tar)?);
    for e in archive.entries()? {
        let e = e?;
        let name = paas_dockerfile::ignore::clean(&e.path()?.to_string_lossy());
        if name == path && e.header().entry_type().is_file() {
            let mut text = String::new();
            e.take(MAX_DOCKERFILE).read_to_string(&mut text)?;
            return Ok(Some(text));
        }
    }
    Ok(None)
}

/// A built stage: its layers (bottom first), config blob and the last cache key.
#[derive(Clone)]
struct Built {
    layers: Vec<Layer>,
    base_config: serde_json::Value,
    config: ImageConfig,
    key: String,
}

/// Bases found before planning (the planner's lookups are synchronous).
struct Found(BTreeMap<String, Result<Base, String>>);

/// A base image as found: what the plan sees, its layers and its config blob.
type Base = (BaseImage, Vec<Layer>, serde_json::Value);

impl Bases for Found {
    fn resolve(&self, image: &str) -> Result<BaseImage, String> {
        match self.0.get(image) {
            Some(Ok((b, _, _))) => Ok(b.clone()),
            Some(Err(why)) => Err(why.clone()),
            None => Err(format!("{image} was not looked up")),
        }
    }
}

/// Records the names the plan asks for.
struct Asked(Mutex<Vec<String>>);

impl Bases for Asked {
    fn resolve(&self, image: &str) -> Result<BaseImage, String> {
        self.0
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(image.to_string());
        Ok(BaseImage {
            reference: image.to_string(),
            digest: String::new(),
            config: ImageConfig::default(),
        })
    }
}

/// `repo` and `reference` of a FROM word that names an image in paas's registry.
fn split_ref(word: &str) -> (String, String) {
    if let Some((r, d)) = word.split_once('@') {
        return (r.to_string(), d.to_string());
    }
    match word.rsplit_once(':') {
        Some((r, t)) if !t.contains('/') => (r.to_string(), t.to_string()),
        _ => (word.to_string(), "latest".to_string()),
    }
}

/// Looks a FROM word up: `scratch`, a stack, or an image in paas's registry the pusher
/// may pull. The error says where it looked.
async fn lookup(c: &Controller, input: &BuildInput, word: &str) -> Result<Base, String> {
    if word == "scratch" {
        return Ok((
            BaseImage {
                reference: String::new(),
                digest: "scratch".into(),
                config: ImageConfig {
                    working_dir: "/".into(),
                    ..ImageConfig::default()
                },
            },
            Vec::new(),
            serde_json::json!({}),
        ));
    }
    if let Some(pulled) = pull_foreign(c, input, word).await {
        let (repo, digest) = pulled?;
        let img = image::read(&c.registry, &repo, &digest)
            .await
            .map_err(|e| format!("FROM {word}: reading the copied image: {e}"))?;
        let config = image::to_plan_config(&img.config);
        return Ok((
            BaseImage {
                reference: format!("{repo}@{}", img.digest),
                digest: img.digest.clone(),
                config,
            },
            img.layers,
            img.config,
        ));
    }
    let (repo, reference) = if word.contains('/') {
        split_ref(word)
    } else {
        let (name, tag) = split_ref(word);
        (format!("stacks/{name}"), tag)
    };
    let where_ = format!(
        "looked for a stack named {word} (stacks/{word}) and for {repo}:{reference} in paas's registry"
    );
    let nothing = || {
        format!(
            "FROM {word}: no such image ({where_}; members may use stacks/… and the images of \
             their own apps, apps/APP:TAG)"
        )
    };
    let app_of = repo
        .strip_prefix("apps/")
        .map(|r| r.split('/').next().unwrap_or(""));
    match app_of {
        Some(other) if other != input.app => {
            if !may_pull_app(c, input, other).await {
                tracing::info!(app = %input.app, image = %word, "FROM refused: the pusher may not pull it");
                return Err(nothing());
            }
        }
        Some(_) => {}
        None if repo.starts_with("stacks/") => {}
        None => return Err(nothing()),
    }
    let img = image::read(&c.registry, &repo, &reference)
        .await
        .map_err(|e| {
            tracing::debug!(image = %word, "FROM: {e}");
            nothing()
        })?;
    let config = image::to_plan_config(&img.config);
    Ok((
        BaseImage {
            reference: format!("{repo}@{}", img.digest),
            digest: img.digest.clone(),
            config,
        },
        img.layers,
        img.config,
    ))
}

/// `FROM HOST[:PORT]/REPO:TAG`: copies the image from the other registry into the app's
/// own repository (untagged) with the pusher's stored credentials for that registry (see
/// `paas registry:login`), as `paas deploy --image` does. `None` for a word that names no
/// other registry; else (repo, digest) or the error for the push output.
async fn pull_foreign(
    c: &Controller,
    input: &BuildInput,
    word: &str,
) -> Option<Result<(String, String), String>> {
    let r = match crate::registry_client::Reference::parse(word) {
        Ok(Some(r)) => r,
        Ok(None) => return None,
        Err(e) => return Some(Err(format!("FROM {word}: {e}"))),
    };
    let user = match input.pusher.as_deref() {
        Some(crate::builder::PUSHER_ADMIN) => crate::auth::BOOTSTRAP_ADMIN,
        Some(name) => name,
        None => "",
    };
    let repo = format!("apps/{}", input.app);
    Some(
        crate::registry_client::pull_for(c, user, &r, &repo)
            .await
            .map(|digest| (repo, digest))
            .map_err(|e| format!("FROM {word}: {e}")),
    )
}

/// Whether the person who pushed may pull `apps/<other>`: an admin, or a collaborator of
/// `other` (the registry's rule for members).
async fn may_pull_app(c: &Controller, input: &BuildInput, other: &str) -> bool {
    let Some(pusher) = input.pusher.as_deref() else {
        return false;
    };
    if pusher == super::PUSHER_ADMIN {
        return true;
    }
    if let Ok(Some(u)) = c.store.get_user(pusher).await {
        if u.is_admin() {
            return true;
        }
    }
    c.store
        .is_collaborator(other, pusher)
        .await
        .unwrap_or(false)
}

/// Builds the image; returns its digest in `apps/<app>` (tagged `latest`) and its config.
pub async fn build(
    c: &Arc<Controller>,
    input: &BuildInput,
    path: &str,
    text: &str,
    config_vars: &BTreeMap<String, String>,
    running: &Mutex<Option<(String, String)>>,
    out: &mut Output,
) -> Result<(String, ImageConfig, Vec<Layer>), BuildError> {
    let app = input.app.as_str();
    let short = crate::util::short_rev(&input.rev).to_string();
    out.line(format!(
        "-----> Building {app} from {short} with {path} (paas's Dockerfile builder)"
    ))
    .await;
    let df = paas_dockerfile::parse(text)
        .map_err(|e| BuildError::Dockerfile(name_file(path, &e.to_string())))?;
    for note in &df.notes {
        out.line(format!("       {path}: {note}")).await;
    }
    // Which bases the plan needs, then look them up, then plan for real.
    let asked = Asked(Mutex::new(Vec::new()));
    let _ = plan::plan(&df, config_vars, &asked);
    let mut found = BTreeMap::new();
    for word in asked.0.into_inner().unwrap_or_default() {
        if let std::collections::btree_map::Entry::Vacant(slot) = found.entry(word) {
            let r = lookup(c, input, slot.key()).await;
            slot.insert(r);
        }
    }
    let found = Found(found);
    let plan = plan::plan(&df, config_vars, &found)
        .map_err(|e| BuildError::Dockerfile(name_file(path, &e.to_string())))?;
    if !plan.used_args.is_empty() {
        let shown: Vec<String> = plan
            .used_args
            .iter()
            .map(|(k, v)| plan::shown_arg(k, v))
            .collect();
        out.line(format!(
            "       Build args from config vars: {}",
            shown.join(" ")
        ))
        .await;
    }
    let no_cache = config_vars
        .get(NO_CACHE)
        .is_some_and(|v| matches!(v.to_ascii_lowercase().as_str(), "1" | "true" | "yes"))
        || input.no_cache;
    let dir = c.settings.build_dir(&input.id);
    let ctx = dir.join("context");
    let (src, ctx2) = (dir.join("source.tar"), ctx.clone());
    tokio::task::spawn_blocking(move || files::unpack_context(&src, &ctx2))
        .await
        .map_err(|e| BuildError::Lost(e.to_string()))?
        .map_err(|e| BuildError::Dockerfile(format!("reading the build context: {e}")))?;
    let app_id = c
        .store
        .app_id(app)
        .await?
        .ok_or_else(|| crate::store::StoreError::NoApp(app.to_string()))?;
    let cache_path = cache::path(&c.settings.data_dir, app_id);
    let mut cache = cache::LayerCache::load(&cache_path);
    let mut runner = Runner {
        c,
        input,
        app_id,
        dir: dir.clone(),
        ctx,
        node: None,
        total: plan.step_count(),
        n: 0,
        job: 0,
        no_cache,
        running,
    };
    let mut built: Vec<Built> = Vec::new();
    for stage in &plan.stages {
        let mut cur = match &stage.from {
            StageBase::Stage(s) => built[*s].clone(),
            StageBase::Image(b) => {
                let (_, layers, base_config) = found
                    .0
                    .get(&b_word(&found, b))
                    .and_then(|r| r.as_ref().ok())
                    .cloned()
                    .ok_or_else(|| BuildError::Lost("a base went missing".into()))?;
                Built {
                    layers,
                    base_config,
                    config: b.config.clone(),
                    key: b.digest.clone(),
                }
            }
        };
        runner.n += 1;
        out.line(format!(
            "-----> Step {}/{} : {}",
            runner.n,
            runner.total,
            df.instructions
                .iter()
                .find(|l| l.line == stage.line)
                .map(|l| l.text.as_str())
                .unwrap_or("FROM")
        ))
        .await;
        for step in &stage.steps {
            runner.n += 1;
            out.line(format!(
                "-----> Step {}/{} : {}",
                runner.n, runner.total, step.text
            ))
            .await;
            runner
                .step(step, &mut cur, &built, &found, &mut cache, out)
                .await
                .map_err(|e| match e {
                    BuildError::Dockerfile(why) => {
                        BuildError::Dockerfile(format!("{path} line {}: {why}", step.line))
                    }
                    other => other,
                })?;
            cur.config = step.config.clone();
            if out.gone() {
                return Err(BuildError::ClientGone);
            }
        }
        cur.config = stage.config.clone();
        built.push(cur);
    }
    if let Err(e) = cache.save(&cache_path) {
        tracing::warn!(%app, "saving the Dockerfile layer cache: {e}");
    }
    let last = built
        .pop()
        .ok_or_else(|| BuildError::Lost("no stage".into()))?;
    let digest = image::write(
        &c.registry,
        &format!("apps/{app}"),
        Some("latest"),
        &last.base_config,
        &last.layers,
        &last.config,
        &[format!("paas: built from {path} at {short}")],
    )
    .await
    .map_err(|e| BuildError::Dockerfile(format!("storing the image: {e}")))?;
    let layers = last.layers.clone();
    Ok((digest, last.config, layers))
}

/// The FROM word the plan resolved `b` from.
fn b_word(found: &Found, b: &BaseImage) -> String {
    found
        .0
        .iter()
        .find(|(_, r)| matches!(r, Ok((x, _, _)) if x == b))
        .map(|(k, _)| k.clone())
        .unwrap_or_default()
}

fn name_file(path: &str, msg: &str) -> String {
    match msg.strip_prefix("Dockerfile ") {
        Some(rest) => format!("{path} {rest}"),
        None => msg.to_string(),
    }
}
