//! Names are not inheritance. An app's name is how people call it, not who it is (that is
//! its permanent number, `AppRow.id`): a renamed app takes everything keyed by its name
//! along, a destroyed app leaves nothing under it, and a new app under a name that was
//! someone else's starts empty.
//!
//! | keyed by the name | destroy | rename |
//! |---|---|---|
//! | store rows (releases, config, builds and their logs, formations, domains, collaborators, certificates, ACME state, …) | deleted (cascade) | moved (`store::rename`) |
//! | job rows (running jobs, kept output of removed ones) | filed under `<app>~destroyed-<id>`; the scheduler stops the jobs | moved |
//! | registry repository `apps/<app>` (tags, manifests, blob links) | deleted | moved; releases' images rewritten |
//! | git repository `DATA/git/<app>.git` | deleted | moved |
//! | the router's access history and live followers | forgotten | moved |
//! | the router's certificates and HTTPS redirects | reloaded from the store | reloaded |
//! | one-off jobs (`paas run`) in progress | stopped and removed | moved |
//! | build cache volume | keyed by number (`cache-<id>`): deleted on every up node | nothing to do |
//! | Dockerfile layer cache `DATA/dockerfile-cache/<id>.json` | keyed by number: deleted | nothing to do |
//! | app volumes (`paas volumes`) | rows deleted (cascade); on its node as `app-<id>-<name>`, deleted once the jobs stop | rows moved; keyed by number on the node |
//!
//! Destroy sets the git and registry repositories aside first (one `rename` each, so they
//! are gone at once and the name can never reach them again), then deletes the store rows
//! in one transaction, and only then discards them; when the store fails they are put
//! back. Rename moves them first and back when the store refuses. When an app is created,
//! anything a failed or older destroy left under its name (git, registry) is removed
//! ([`fresh_start`]). Build directories are keyed by build id, and destroy and rename are
//! refused while the app builds.

use std::path::PathBuf;
use std::sync::Arc;

use crate::registry::SetAside;
use crate::state::{Controller, NODE_TIMEOUT_MS};
use crate::store::StoreError;

/// Why a destroy or rename could not be carried out (nothing changed unless it says so).
#[derive(Debug, thiserror::Error)]
pub enum NamesError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the registry: {0}")]
    Registry(#[from] crate::registry::Error),
}

fn io(what: String) -> impl FnOnce(std::io::Error) -> NamesError {
    move |source| NamesError::Io { what, source }
}

/// The app's registry repository.
pub fn repository(app: &str) -> String {
    format!("apps/{app}")
}

/// A git repository moved out of the way.
struct GitAside {
    from: PathBuf,
    path: PathBuf,
}

impl GitAside {
    async fn discard(self) {
        if let Err(e) = tokio::fs::remove_dir_all(&self.path).await {
            tracing::warn!("removing {}: {e}", self.path.display());
        }
    }

    async fn restore(self) {
        if let Err(e) = tokio::fs::rename(&self.path, &self.from).await {
            tracing::error!(
                "putting {} back at {}: {e}",
                self.path.display(),
                self.from.display()
            );
        }
    }
}

/// Moves `app`'s git repository into the trash; `None` when it has none.
async fn set_git_aside(c: &Controller, app: &str) -> Result<Option<GitAside>, NamesError> {
    let from = c.settings.repo_path(app);
    let trash = c.settings.git_trash_dir();
    tokio::fs::create_dir_all(&trash)
        .await
        .map_err(io(format!("creating {}", trash.display())))?;
    let path = trash.join(crate::registry::trash_entry_name());
    match tokio::fs::rename(&from, &path).await {
        Ok(()) => Ok(Some(GitAside { from, path })),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(io(format!("moving {} aside", from.display()))(e)),
    }
}

/// Puts back whatever was set aside (a later step failed).
async fn restore(c: &Controller, git: Option<GitAside>, repo: Option<SetAside>) {
    if let Some(g) = git {
        g.restore().await;
    }
    if let Some(r) = repo {
        if let Err(e) = r.restore(&c.registry).await {
            tracing::error!("putting a registry repository back: {e}");
        }
    }
}

/// Throws away what was set aside (the change is committed).
async fn discard(git: Option<GitAside>, repo: Option<SetAside>) {
    if let Some(g) = git {
        g.discard().await;
    }
    if let Some(r) = repo {
        if let Err(e) = r.discard().await {
            tracing::warn!("removing a registry repository set aside: {e}");
        }
    }
}

/// Reloads the router's certificates and HTTPS redirects from the store (they name apps).
async fn reload_certs(c: &Controller) {
    if let Err(e) = crate::routing::load_certs(&c.store, &c.routes).await {
        tracing::warn!(error = %e, "reloading the router's certificates failed");
    }
}

/// Destroys `app` (it exists and does not build: the caller checked) with everything keyed
/// by its name; see the module's table.
pub async fn destroy(c: &Arc<Controller>, app: &str) -> Result<(), NamesError> {
    let id = c.store.app_id(app).await?;
    // Forgotten before and again right after the delete: lines of the old app recorded in
    // between go too, and an app made under the name afterwards starts with none.
    c.routes.access_log().forget(app);
    let git = set_git_aside(c, app).await?;
    let repo = match c.registry.set_aside(&repository(app)).await {
        Ok(r) => r,
        Err(e) => {
            restore(c, git, None).await;
            return Err(e.into());
        }
    };
    // The one-off jobs are named now: once the name is free, a new app's are not these.
    let one_offs = one_off_jobs(c, app);
    let volumes = match c.store.volumes(Some(app)).await {
        Ok(v) => v,
        Err(e) => {
            restore(c, git, repo).await;
            return Err(e.into());
        }
    };
    if let Err(e) = c.store.delete_app(app).await {
        restore(c, git, repo).await;
        return Err(e.into());
    }
    c.routes.access_log().forget(app);
    discard(git, repo).await;
    reload_certs(c).await;
    c.scheduler.notify();
    stop_one_off_jobs(c, one_offs).await;
    if let Some(id) = id {
        delete_cache(c, app, id).await;
    }
    crate::volumes::delete_destroyed(c, volumes);
    Ok(())
}

/// The ids of `app`'s one-off jobs in progress (`paas run`; the scheduler does not know
/// them).
fn one_off_jobs(c: &Controller, app: &str) -> Vec<String> {
    let runs = c.runs.lock().unwrap_or_else(|e| e.into_inner());
    runs.iter()
        .filter(|(_, (a, _))| a == app)
        .map(|(id, _)| id.clone())
        .collect()
}

/// Stops and removes these one-off jobs and forgets them.
async fn stop_one_off_jobs(c: &Controller, ids: Vec<String>) {
    let runs: Vec<(String, String)> = {
        let mut runs = c.runs.lock().unwrap_or_else(|e| e.into_inner());
        ids.into_iter()
            .filter_map(|id| runs.remove(&id).map(|(_, url)| (id, url)))
            .collect()
    };
    for (id, url) in runs {
        if let Err(e) = c.agents.stop_job(&url, &id, 2).await {
            tracing::warn!(job = %id, "stopping a destroyed app's one-off job: {e}");
        }
        if let Err(e) = c.agents.delete_job(&url, &id).await {
            tracing::warn!(job = %id, "removing a destroyed app's one-off job: {e}");
        }
    }
}

/// Deletes the app's build cache volume on every node that is up; a down node keeps its
/// copy, which no other app can mount (volumes are keyed by the number, never reused).
async fn delete_cache(c: &Controller, app: &str, id: u32) {
    let layers = crate::builder::dockerfile::cache_path(&c.settings.data_dir, id);
    match tokio::fs::remove_file(&layers).await {
        Ok(()) => tracing::info!(%app, "Dockerfile layer cache deleted"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!(%app, "deleting {}: {e}", layers.display()),
    }
    let volume = crate::builder::cache_volume(id);
    let nodes = match c.store.list_nodes().await {
        Ok(n) => n,
        Err(e) => {
            tracing::warn!(%app, "listing nodes to delete the build cache: {e}");
            return;
        }
    };
    let now = crate::util::unix_ms();
    let calls = nodes.iter().map(|n| {
        let volume = volume.clone();
        async move {
            if now - n.last_seen_ms > NODE_TIMEOUT_MS {
                tracing::warn!(%app, node = %n.name, %volume,
                    "node is down: its copy of the build cache stays (no other app can mount it)");
                return;
            }
            match c.agents.delete_volume(&n.url, &volume).await {
                Ok(true) => tracing::info!(%app, node = %n.name, %volume, "build cache deleted"),
                Ok(false) => {}
                Err(e) => tracing::warn!(%app, node = %n.name, %volume,
                    "deleting the build cache: {}", e.user_message()),
            }
        }
    });
    futures_util::future::join_all(calls).await;
}

/// Renames `from` to `to` (it exists, `to` is a valid name, no build runs: the caller
/// checked): the git and registry repositories move, then the store rows (releases point
/// at the moved repository), then the router's history and the one-off jobs in progress.
/// When the store refuses (`to` taken), the repositories move back.
pub async fn rename(c: &Arc<Controller>, from: &str, to: &str) -> Result<(), NamesError> {
    if c.store.get_app(to).await?.is_some() {
        return Err(StoreError::AppExists(to.to_string()).into());
    }
    // Leftovers under the new name belong to nobody (no app has it): out of the way, and
    // thrown away whatever happens next (never put back under a name someone may take).
    let stale_git = set_git_aside(c, to).await?;
    let stale_repo = c.registry.set_aside(&repository(to)).await?;
    let (old_git, new_git) = (c.settings.repo_path(from), c.settings.repo_path(to));
    let git_moved = match tokio::fs::rename(&old_git, &new_git).await {
        Ok(()) => true,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            discard(stale_git, stale_repo).await;
            return Err(io(format!(
                "moving {} to {}",
                old_git.display(),
                new_git.display()
            ))(e));
        }
    };
    let move_git_back = || async {
        if git_moved {
            if let Err(e) = tokio::fs::rename(&new_git, &old_git).await {
                tracing::error!("moving {} back: {e}", new_git.display());
            }
        }
    };
    let repo_moved = match c
        .registry
        .move_repository(&repository(from), &repository(to))
        .await
    {
        Ok(moved) => moved,
        Err(e) => {
            move_git_back().await;
            discard(stale_git, stale_repo).await;
            return Err(e.into());
        }
    };
    let renamed = c.store.rename_app(from, to).await;
    if renamed.is_ok() {
        // At once, before a route update files the history under nobody.
        c.routes.access_log().rename(from, to);
    }
    if let Err(e) = renamed {
        if repo_moved {
            if let Err(e) = c
                .registry
                .move_repository(&repository(to), &repository(from))
                .await
            {
                tracing::error!("moving the registry repository of {to} back: {e}");
            }
        }
        move_git_back().await;
        discard(stale_git, stale_repo).await;
        return Err(e.into());
    }
    discard(stale_git, stale_repo).await;
    {
        let mut runs = c.runs.lock().unwrap_or_else(|e| e.into_inner());
        for (app, _) in runs.values_mut() {
            if app == from {
                *app = to.to_string();
            }
        }
    }
    reload_certs(c).await;
    c.scheduler.notify();
    Ok(())
}

/// A new app starts empty: removes what a failed destroy (or one from before destroys
/// removed them) left under its name in git and in the registry. Called right after the
/// app is made, before anything is stored for it.
pub async fn fresh_start(c: &Controller, app: &str) -> Result<(), NamesError> {
    let git = set_git_aside(c, app).await?;
    let repo = c.registry.set_aside(&repository(app)).await?;
    if git.is_some() || repo.is_some() {
        tracing::warn!(%app, "removed what an earlier app of this name left (git or registry)");
    }
    discard(git, repo).await;
    Ok(())
}
