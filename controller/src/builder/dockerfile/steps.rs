//! Running a Dockerfile plan's steps ([`Runner`]): COPY/ADD layers made from the build
//! context or earlier stages, RUN as a build job on a node, WORKDIR layers, and the layer
//! cache lookups and blob stores each step needs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use paas_dockerfile::plan::{self, Action, CopyFrom};

use super::image::{self, Layer};
use super::{b_word, cache, files, run, tree, Built, Found};
use crate::builder::{BuildError, BuildInput, Output};
use crate::state::Controller;

/// Runs steps, keeping the node and counting jobs.
pub(super) struct Runner<'a> {
    pub(super) c: &'a Arc<Controller>,
    pub(super) input: &'a BuildInput,
    pub(super) app_id: u32,
    pub(super) dir: PathBuf,
    pub(super) ctx: PathBuf,
    pub(super) node: Option<String>,
    pub(super) total: usize,
    pub(super) n: usize,
    pub(super) job: usize,
    pub(super) no_cache: bool,
    /// The RUN job in progress (node URL, job id), to stop when the build is abandoned.
    pub(super) running: &'a Mutex<Option<(String, String)>>,
}

impl Runner<'_> {
    /// Each of `layers` as (digest, blob path in the registry).
    fn named(&self, layers: &[Layer]) -> Result<Vec<(String, PathBuf)>, BuildError> {
        layers
            .iter()
            .map(|l| {
                let blob = self.c.registry.blob_path(&l.digest).ok_or_else(|| {
                    BuildError::Dockerfile(format!(
                        "layer {} is missing from the registry",
                        l.digest
                    ))
                })?;
                Ok((l.digest.clone(), blob))
            })
            .collect()
    }

    /// The names of the image of `layers` (see [`tree`]).
    async fn tree(&self, layers: &[Layer]) -> Result<tree::Tree, BuildError> {
        let named = self.named(layers)?;
        tokio::task::spawn_blocking(move || tree::image_tree(&named))
            .await
            .map_err(|e| BuildError::Lost(e.to_string()))?
            .map_err(|e| BuildError::Dockerfile(format!("reading the image's layers: {e}")))
    }

    fn cached(&self, cache: &cache::LayerCache, key: &str) -> Option<Layer> {
        if self.no_cache {
            return None;
        }
        cache
            .get(key)
            .filter(|l| self.c.registry.blob_path(&l.digest).is_some())
            .cloned()
    }

    pub(super) async fn step(
        &mut self,
        step: &plan::Step,
        cur: &mut Built,
        built: &[Built],
        found: &Found,
        cache: &mut cache::LayerCache,
        out: &mut Output,
    ) -> Result<(), BuildError> {
        match &step.action {
            Action::Config => {
                cur.key = plan::cache_key(&cur.key, &step.cache_input, &[]);
                Ok(())
            }
            Action::Workdir(dir) => {
                let key = plan::cache_key(&cur.key, &step.cache_input, &[]);
                cur.key = key.clone();
                if matches!(
                    dir.as_str(),
                    "/" | "/tmp" | "/root" | "/home" | "/usr" | "/etc" | "/var" | "/opt" | "/srv"
                ) {
                    return Ok(());
                }
                let layer = match self.cached(cache, &key) {
                    Some(l) => l,
                    None => {
                        // Made where the image's symlinks lead (a WORKDIR under /bin is
                        // under /usr/bin in bookworm), never outside its root.
                        let tree = self.tree(&cur.layers).await?;
                        let d = tree
                            .resolve(dir, true)
                            .map_err(|e| BuildError::Dockerfile(e.to_string()))?;
                        if tree.is_dir(&d) {
                            return Ok(());
                        }
                        let p = self.dir.join(format!("layer-{}", self.n));
                        let p2 = p.clone();
                        let l = tokio::task::spawn_blocking(move || files::dir_layer(&d, &p2))
                            .await
                            .map_err(|e| BuildError::Lost(e.to_string()))?
                            .map_err(|e| BuildError::Dockerfile(e.to_string()))?;
                        self.store_blob(&p, &l).await?;
                        l
                    }
                };
                cache.insert(key, layer.clone());
                cur.layers.push(layer);
                Ok(())
            }
            Action::Copy {
                from,
                sources,
                dest,
                chown,
                chmod,
                unpack,
            } => {
                let owner = match chown {
                    None => (0, 0),
                    Some(spec) => self.owner(spec, &cur.layers).await?,
                };
                let (sources, dest, chmod, unpack) =
                    (sources.clone(), dest.clone(), *chmod, *unpack);
                let out_path = self.dir.join(format!("layer-{}", self.n));
                let mut input = step.cache_input.clone();
                input.push_str(&format!("owner {owner:?}"));
                let from_context = matches!(from, CopyFrom::Context);
                // From the context: the files' hashes are part of the key. From a stage or
                // an image: its key or digest says what it holds, so nothing is read
                // unless the step runs.
                let hashes = if from_context {
                    let (r2, s2, d2) = (self.ctx.clone(), sources.clone(), dest.clone());
                    tokio::task::spawn_blocking(move || {
                        files::CopyJob {
                            root: &r2,
                            sources: &s2,
                            dest: &d2,
                            owner,
                            chmod,
                            unpack,
                            from_context: true,
                        }
                        .hashes()
                    })
                    .await
                    .map_err(|e| BuildError::Lost(e.to_string()))?
                    .map_err(|e| BuildError::Dockerfile(e.to_string()))?
                } else {
                    if let CopyFrom::Stage(s) = from {
                        input.push_str(&built[*s].key);
                    }
                    Vec::new()
                };
                let key = plan::cache_key(&cur.key, &input, &hashes);
                cur.key = key.clone();
                if let Some(l) = self.cached(cache, &key) {
                    out.line("       ---> CACHED").await;
                    cur.layers.push(l);
                    return Ok(());
                }
                let root = match from {
                    CopyFrom::Context => self.ctx.clone(),
                    CopyFrom::Stage(s) => self.stage_files(&built[*s].layers, &sources).await?,
                    CopyFrom::Image(b) => {
                        let word = b_word(found, b);
                        let layers = found
                            .0
                            .get(&word)
                            .and_then(|r| r.as_ref().ok())
                            .map(|(_, l, _)| l.clone())
                            .unwrap_or_default();
                        self.stage_files(&layers, &sources).await?
                    }
                };
                // The destination's parents resolved inside the image (`/bin/tool` is
                // `/usr/bin/tool` when /bin is a symlink to usr/bin); an existing
                // directory is copied into. The key needs none of this: its parent's key
                // says what the image is.
                let dest = {
                    let tree = self.tree(&cur.layers).await?;
                    let bad = |e: tree::TreeError| BuildError::Dockerfile(e.to_string());
                    let full = tree.resolve(&dest, true).map_err(bad)?;
                    if dest.ends_with('/') || tree.is_dir(&full) {
                        format!("{}/", full.trim_end_matches('/'))
                    } else {
                        tree.resolve(&dest, false).map_err(bad)?
                    }
                };
                let p2 = out_path.clone();
                let layer = tokio::task::spawn_blocking(move || {
                    files::CopyJob {
                        root: &root,
                        sources: &sources,
                        dest: &dest,
                        owner,
                        chmod,
                        unpack,
                        from_context,
                    }
                    .pack(&p2)
                })
                .await
                .map_err(|e| BuildError::Lost(e.to_string()))?
                .map_err(|e| BuildError::Dockerfile(e.to_string()))?;
                self.store_blob(&out_path, &layer).await?;
                cache.insert(key, layer.clone());
                cur.layers.push(layer);
                Ok(())
            }
            Action::Run {
                argv, env, workdir, ..
            } => {
                let key = plan::cache_key(&cur.key, &step.cache_input, &[]);
                cur.key = key.clone();
                if let Some(l) = self.cached(cache, &key) {
                    out.line("       ---> CACHED").await;
                    cur.layers.push(l);
                    return Ok(());
                }
                // The image so far, with the config this step runs under.
                let mut config = cur.config.clone();
                config.working_dir = workdir.clone();
                let digest = image::write(
                    &self.c.registry,
                    &format!("apps/{}", self.input.app),
                    None,
                    &cur.base_config,
                    &cur.layers,
                    &config,
                    &[],
                )
                .await
                .map_err(|e| BuildError::Dockerfile(format!("storing the image so far: {e}")))?;
                let args: Vec<String> = env
                    .iter()
                    .filter(|kv| !config.env.contains(kv))
                    .cloned()
                    .collect();
                // A shell-form RUN (`[SHELL…, "-c", "…"]`) has its shell; an exec-form one
                // may run in an image without /bin/sh.
                let has_shell = argv.get(1).map(String::as_str) == Some("-c")
                    || self.tree(&cur.layers).await?.is_file("/bin/sh");
                let node_url = match &self.node {
                    Some(u) => u.clone(),
                    None => {
                        let (_, url) = crate::builder::job::pick_node(self.c, out).await?;
                        self.node = Some(url.clone());
                        url
                    }
                };
                self.job += 1;
                let job_id = format!("build-{}-{}", self.input.id, self.job);
                *self.running.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some((node_url.clone(), job_id.clone()));
                let layer = run::run(
                    self.c,
                    self.input,
                    self.app_id,
                    &node_url,
                    &run::RunStep {
                        image_digest: &digest,
                        argv,
                        args: &args,
                        workdir,
                        job_id: &job_id,
                        has_shell,
                    },
                    out,
                )
                .await?;
                *self.running.lock().unwrap_or_else(|e| e.into_inner()) = None;
                cache.insert(key, layer.clone());
                cur.layers.push(layer);
                Ok(())
            }
        }
    }

    async fn store_blob(&self, path: &Path, layer: &Layer) -> Result<(), BuildError> {
        self.c
            .registry
            .put_blob_file(path, Some(&layer.digest))
            .await
            .map_err(|e| BuildError::Dockerfile(format!("storing a layer: {e}")))?;
        let _ = tokio::fs::remove_file(path).await;
        Ok(())
    }

    /// The files of `layers` under the sources' leading directories, in a fresh directory.
    async fn stage_files(
        &mut self,
        layers: &[Layer],
        sources: &[String],
    ) -> Result<PathBuf, BuildError> {
        let named = self.named(layers)?;
        let prefixes: Vec<String> = sources
            .iter()
            .map(|s| {
                let clean = paas_dockerfile::ignore::clean(s);
                clean
                    .split('/')
                    .take_while(|seg| !paas_dockerfile::ignore::is_glob(seg))
                    .collect::<Vec<_>>()
                    .join("/")
            })
            .collect();
        let dir = self.dir.join(format!("from-{}", self.n));
        let d2 = dir.clone();
        tokio::task::spawn_blocking(move || {
            let blobs = tree::layers_touching(&named, &prefixes)
                .map_err(|e| BuildError::Dockerfile(format!("reading the stage's layers: {e}")))?;
            files::extract_from_layers(&blobs, &prefixes, &d2)
                .map_err(|e| BuildError::Dockerfile(e.to_string()))
        })
        .await
        .map_err(|e| BuildError::Lost(e.to_string()))??;
        Ok(dir)
    }

    /// `--chown` as numeric ids (names from the image's /etc/passwd and /etc/group).
    async fn owner(&self, spec: &str, layers: &[Layer]) -> Result<(u64, u64), BuildError> {
        let numeric = spec.split(':').all(|p| p.parse::<u64>().is_ok());
        let (passwd, group) = if numeric {
            (String::new(), String::new())
        } else {
            let named = self.named(layers)?;
            tokio::task::spawn_blocking(move || {
                let read = |p: &str| {
                    tree::read_file(&named, p, 1 << 20)
                        .ok()
                        .flatten()
                        .map(|b| String::from_utf8_lossy(&b).into_owned())
                        .unwrap_or_default()
                };
                (read("/etc/passwd"), read("/etc/group"))
            })
            .await
            .map_err(|e| BuildError::Lost(e.to_string()))?
        };
        files::resolve_owner(spec, &passwd, &group).map_err(BuildError::Dockerfile)
    }
}
