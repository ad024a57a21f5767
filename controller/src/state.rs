//! [`Controller`]: the shared state every handler, the build and the scheduler loop hold
//! (`Arc<Controller>`): settings, store, registry, tokens, route table, the scheduler's
//! handle and the agent client. Opening it makes the data directory's layout.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::agent_client::AgentClient;
use crate::auth::limit::FailureLimiter;
use crate::auth::tokens::{Tokens, BOOTSTRAP_ADMIN};
use crate::config::Settings;
use crate::registry::Registry;
use crate::router::RouteTable;
use crate::router_peers::RouterPeers;
use crate::scheduler::handle::Handle as SchedulerHandle;
use crate::store::Store;
use crate::util::{load_or_create_token, random_hex, UtilError};

/// A node is up while its heartbeats are at most this old.
pub const NODE_TIMEOUT_MS: i64 = 10_000;

/// Why the controller could not open its data.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("creating the data directory {path}: {source}")]
    DataDir {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Token(#[from] UtilError),
    #[error(transparent)]
    Files(#[from] crate::files::FilesError),
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
    #[error("opening the registry: {0}")]
    Registry(#[from] crate::registry::Error),
}

/// What the last heartbeat of a node said beyond its row in the store.
#[derive(Debug, Clone, Default)]
pub struct NodeLive {
    pub jobs: u32,
    /// Digests of the layers the node has cached.
    pub layers: std::collections::BTreeSet<String>,
}

impl NodeLive {
    pub fn from_heartbeat(hb: &paas_api::NodeHeartbeat) -> NodeLive {
        NodeLive {
            jobs: hb.jobs.len() as u32,
            layers: hb.layers.iter().cloned().collect(),
        }
    }
}

/// The controller's shared state.
pub struct Controller {
    pub settings: Settings,
    pub store: Store,
    pub registry: Registry,
    pub tokens: Tokens,
    /// Per-source budget of failed logins and bad tokens.
    pub access: FailureLimiter,
    /// The per-controller secret the git hook sends back (`PAAS_HOOK_TOKEN`).
    pub hook_secret: String,
    pub routes: RouteTable,
    /// The `paas-router` processes following this controller's feed.
    pub router_peers: RouterPeers,
    pub scheduler: SchedulerHandle,
    pub agents: AgentClient,
    /// Latest heartbeat details by node name.
    pub heartbeats: Mutex<HashMap<String, NodeLive>>,
    /// One-off jobs (`paas run`) in progress: id → (app, node URL).
    pub runs: Mutex<HashMap<String, (String, String)>>,
    /// One build at a time per app.
    build_locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Apps with a build running (for the app status).
    building: Mutex<HashSet<String>>,
    /// The last CPU and memory samples of each job, from the heartbeats (dashboard charts).
    pub job_stats: crate::job_stats::JobStatsStore,
    /// The ACME client's account and order lock (automatic certificates).
    pub acme: crate::acme::account::Acme,
    /// Credentials for other registries, per user (`paas registry:login`).
    pub registry_logins: crate::registry_client::logins::Logins,
}

impl std::fmt::Debug for Controller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Controller")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Controller {
    /// Makes the data directory's layout (`paas.db`, `registry/`, `git/`, `builds/`, the
    /// token files; the directory 0700 and its secrets 0600, see [`crate::files`]), opens
    /// the store and the registry, and fails builds a previous run left unfinished
    /// (removing the directories of builds not running).
    pub async fn open(settings: Settings) -> Result<Arc<Controller>, OpenError> {
        // 0700 and the secrets 0600 before anything is read or written (crate::files).
        crate::files::secure_data_dir(&settings.data_dir)?;
        for dir in [settings.git_dir(), settings.builds_dir()] {
            std::fs::create_dir_all(&dir).map_err(|source| OpenError::DataDir {
                path: dir.display().to_string(),
                source,
            })?;
        }
        // What an interrupted destroy or rename left in the git trash over an hour ago
        // (younger entries may be another controller's destroy under way).
        let trash = settings.git_trash_dir();
        if let Err(e) = crate::registry::empty_trash_dir(&trash, crate::registry::TRASH_AGE_MS) {
            tracing::warn!("emptying {}: {e}", trash.display());
        }
        let admin = load_or_create_token(&settings.data_dir.join("admin-token"))?;
        let node = load_or_create_token(&settings.data_dir.join("node-token"))?;
        let store = match &settings.database_url {
            Some(url) => Store::connect(url).await?,
            None => {
                crate::files::precreate_store(&settings.db_path())?;
                Store::open(&settings.db_path()).await?
            }
        };
        // The first admin user; its first password is the admin token.
        if store
            .ensure_user(BOOTSTRAP_ADMIN, crate::store::role::ADMIN, &admin)
            .await?
        {
            tracing::info!("created the user admin (its first password is the admin token)");
        }
        // With a shared store, another controller's builds may be running right now.
        let interrupted = match store.backend() {
            crate::store::Backend::Sqlite => store.fail_interrupted_builds().await?,
            crate::store::Backend::Postgres => 0,
        };
        if interrupted > 0 {
            tracing::warn!(
                interrupted,
                "builds interrupted by a restart were marked failed"
            );
        }
        let registry =
            Registry::open(settings.registry_dir())?.with_max_blob_bytes(settings.max_blob_bytes);
        let agents = AgentClient::new(node.clone()).with_store(store.clone());
        let registry_logins = crate::registry_client::logins::Logins::new(&settings.data_dir);
        let router_peers = RouterPeers::new(&node);
        let c = Arc::new(Controller {
            settings,
            store,
            registry,
            agents,
            tokens: Tokens::new(admin.clone(), node),
            access: FailureLimiter::default(),
            hook_secret: random_hex(32),
            routes: RouteTable::new(),
            router_peers,
            scheduler: SchedulerHandle::new(),
            heartbeats: Mutex::new(HashMap::new()),
            runs: Mutex::new(HashMap::new()),
            build_locks: Mutex::new(HashMap::new()),
            building: Mutex::new(HashSet::new()),
            job_stats: crate::job_stats::JobStatsStore::default(),
            acme: crate::acme::account::Acme::default(),
            registry_logins,
        });
        remove_finished_build_dirs(&c.settings.builds_dir(), &c.store).await;
        Ok(c)
    }

    /// The lock that serializes builds of one app.
    pub fn build_lock(&self, app: &str) -> Arc<tokio::sync::Mutex<()>> {
        let mut locks = self.build_locks.lock().unwrap_or_else(|e| e.into_inner());
        Arc::clone(locks.entry(app.to_string()).or_default())
    }

    /// Marks an app as building (or not).
    pub fn set_building(&self, app: &str, on: bool) {
        let mut set = self.building.lock().unwrap_or_else(|e| e.into_inner());
        if on {
            set.insert(app.to_string());
        } else {
            set.remove(app);
        }
    }

    pub fn is_building(&self, app: &str) -> bool {
        self.building
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(app)
    }
}

/// At controller start: removes the directory of every build that is not running (a
/// controller stopped mid-build leaves one). With a shared store, other controllers'
/// running builds keep theirs.
async fn remove_finished_build_dirs(dir: &std::path::Path, store: &Store) {
    let Ok(mut entries) = tokio::fs::read_dir(dir).await else {
        return;
    };
    while let Ok(Some(entry)) = entries.next_entry().await {
        let id = entry.file_name().to_string_lossy().to_string();
        let running = match store.get_build(&id).await {
            Ok(Some(b)) => b.status == "building" || b.status == "pending",
            Ok(None) => false,
            Err(e) => {
                tracing::warn!(build = %id, "checking a leftover build dir: {e}");
                continue;
            }
        };
        if !running {
            tracing::info!(build = %id, "removing the directory of a build that is not running");
            if let Err(e) = tokio::fs::remove_dir_all(entry.path()).await {
                tracing::warn!(build = %id, "removing {}: {e}", entry.path().display());
            }
        }
    }
}
