//! The controller's persistent state, in SQLite (the embedded default: WAL mode, one file in
//! the data dir) or PostgreSQL (`--database-url postgres://…`, when several controllers
//! share one store). Plain functions over one sqlx `Any` pool; no compile-time-checked query
//! macros, so building needs no database.
//!
//! Every query is written once, in SQL both engines accept: `$1, $2…` placeholders,
//! `ON CONFLICT … DO NOTHING/UPDATE` (never `INSERT OR …`), times made in Rust (RFC 3339
//! TEXT or Unix ms), integers read and bound as `i64` (booleans too, as 0/1), no
//! `rowid`/AUTOINCREMENT. Migrations exist twice, `controller/migrations/sqlite/NNNN_*.sql`
//! and `controller/migrations/postgres/NNNN_*.sql` (integers are BIGINT there), and the set
//! of the backend in use is applied at start.
//!
//! The store is the source of truth the scheduler and the build read before acting, and
//! every change is written here BEFORE the controller acts on it (a job row exists before
//! the agent is asked to start it), so a restarted controller picks up where it stopped.
//!
//! Submodules: `apps` (apps, releases, config vars, formations), `releases` (every write
//! that makes a release, one transaction each) and `work` (builds, jobs,
//! nodes), `leader` (which controller runs the scheduler). Tests get a fresh temporary
//! database each, on both backends (`test_pg` starts a throwaway PostgreSQL).

mod acme;
mod addon_backups;
mod addons;
mod agent_access;
mod apps;
mod certs;
mod deploys;
mod destroy;
mod domains;
mod dump;
pub mod leader;
mod nodes;
mod paging;
mod releases;
mod rename;
mod routes;
mod sizes;
mod users;
mod volumes;
mod work;

#[cfg(test)]
mod addons_tests;
#[cfg(test)]
mod limits_tests;
#[cfg(test)]
mod names_tests;
#[cfg(test)]
mod pages_tests;
#[cfg(test)]
mod releases_tests;
#[doc(hidden)]
pub mod test_pg;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod users_tests;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{AnyPool, ConnectOptions, Executor};

pub use acme::{acme_state, AcmeDomainRow};
pub use addon_backups::{backup_state, BackupRow, ScheduleRow};
pub use addons::{AddonInserted, AddonRow, AttachmentRow};
pub use certs::CertRow;
pub use deploys::{release_status, ReleaseStatus};
pub use destroy::destroyed_name;
pub use domains::{DomainAdded, DomainRow};
pub use dump::TableDump;
pub use nodes::{last_lines, Restarts};
pub use releases::{ConfigChanged, NewRelease};
pub use rename::moved_image;
pub use users::{role, TokenRow, UserRow};
pub use volumes::VolumeRow;

/// Everything that can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "the database URL {url} is neither sqlite:… nor postgres://…: pass \
         --database-url postgres://USER@HOST/DB (or leave it out for SQLite in the data dir)"
    )]
    BadUrl { url: String },
    #[error("opening the database {path}: {source}")]
    Open {
        path: String,
        #[source]
        source: sqlx::Error,
    },
    #[error("migrating the database to the current schema: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("database query failed ({what}): {source}")]
    Query {
        what: &'static str,
        #[source]
        source: sqlx::Error,
    },
    #[error("an app named {0} already exists: pick another name")]
    AppExists(String),
    #[error("no app named {0}")]
    NoApp(String),
    #[error(
        "another change to {app} is being written at the same moment: nothing was changed; \
         try again"
    )]
    Busy { app: String },
    #[error("release v{version} of {app} already exists")]
    ReleaseExists { app: String, version: u32 },
    #[error("stored {what} is corrupt: {why}")]
    Corrupt { what: &'static str, why: String },
    #[error("a user named {0} already exists: pick another name")]
    UserExists(String),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// Wraps a sqlx error with what the query was for.
pub(crate) fn query(what: &'static str) -> impl FnOnce(sqlx::Error) -> StoreError {
    move |source| StoreError::Query { what, source }
}

/// True when the error is a UNIQUE / PRIMARY KEY violation.
pub(crate) fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(db) if db.is_unique_violation())
}

/// An app row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppRow {
    pub name: String,
    /// The app's permanent number (migration 0014): never given to another app, kept by a
    /// rename. Keys what must not pass to a later app of the same name.
    pub id: u32,
    pub created_at: String,
    pub current_release: Option<u32>,
}

/// A release row: immutable once written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseRow {
    pub app: String,
    pub version: u32,
    /// `<repository>@sha256:…`
    pub image: String,
    pub source_version: Option<String>,
    pub process_types: BTreeMap<String, String>,
    pub config: BTreeMap<String, String>,
    pub description: String,
    pub created_at: String,
}

impl ReleaseRow {
    /// The wire form (config values left out).
    pub fn to_api(&self) -> paas_api::Release {
        paas_api::Release {
            app: self.app.clone(),
            version: self.version,
            image: self.image.clone(),
            source_version: self.source_version.clone(),
            process_types: self.process_types.clone(),
            config_keys: self.config.keys().cloned().collect(),
            description: self.description.clone(),
            created_at: self.created_at.clone(),
            status: None,
            status_reason: None,
        }
    }
}

/// A build row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildRow {
    pub id: String,
    pub app: String,
    /// pending, building, succeeded, failed
    pub status: String,
    pub source_version: Option<String>,
    pub release: Option<u32>,
    pub log: String,
    pub created_at: String,
    pub finished_at: Option<String>,
}

impl BuildRow {
    pub fn to_api(&self) -> paas_api::Build {
        paas_api::Build {
            id: self.id.clone(),
            app: self.app.clone(),
            status: self.status.clone(),
            source_version: self.source_version.clone(),
            release: self.release,
            created_at: self.created_at.clone(),
            finished_at: self.finished_at.clone(),
        }
    }
}

/// How many jobs of one process type an app should run, with the app's current release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FormationRow {
    pub app: String,
    pub process_type: String,
    pub count: u32,
    /// The app's current release, if it has one.
    pub release: Option<u32>,
}

/// Job states as stored (`jobs.state`).
pub mod job_state {
    /// The row is written, the agent has not confirmed the job yet.
    pub const PENDING: &str = "pending";
    pub const STARTING: &str = "starting";
    pub const UP: &str = "up";
    pub const STOPPING: &str = "stopping";
    pub const DOWN: &str = "down";
    pub const CRASHED: &str = "crashed";
    /// Deleted from its node; the row stays for its exit reason.
    pub const REMOVED: &str = "removed";
}

/// A job row: one process of one release on one node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobRow {
    pub id: String,
    pub app: String,
    pub release: u32,
    pub process_type: String,
    pub node: String,
    pub state: String,
    pub addr: Option<String>,
    pub exit_reason: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// A node row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeRow {
    pub name: String,
    pub url: String,
    pub memory_bytes: u64,
    pub last_seen_ms: i64,
}

/// Which database engine a [`Store`] runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// One file, one controller (the embedded default).
    Sqlite,
    /// A server several controllers share.
    Postgres,
}

/// The row type every query returns (whichever backend is behind the pool).
pub(crate) type Row = sqlx::any::AnyRow;

/// The controller's database. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The URL it was opened with (password removed), for messages and backups.
    url: String,
}

impl Store {
    /// Opens (creating if needed) the SQLite database at `path` in WAL mode and applies the
    /// migrations.
    pub async fn open(path: &Path) -> Result<Store> {
        let url = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .to_url_lossy();
        Store::connect_url(url.as_str(), &path.display().to_string()).await
    }

    /// Opens the database at `url`: `postgres://…` (or `postgresql://…`) for PostgreSQL,
    /// `sqlite:PATH` for SQLite; applies that backend's migrations.
    pub async fn connect(url: &str) -> Result<Store> {
        Store::connect_url(url, &redact(url)).await
    }

    async fn connect_url(url: &str, shown: &str) -> Result<Store> {
        sqlx::any::install_default_drivers();
        let backend = backend_of(url).ok_or_else(|| StoreError::BadUrl { url: redact(url) })?;
        let open = |source| StoreError::Open {
            path: shown.to_string(),
            source,
        };
        let options: AnyConnectOptions = url.parse().map_err(open)?;
        let options = options.disable_statement_logging();
        let pool = match backend {
            Backend::Sqlite => {
                AnyPoolOptions::new()
                    .max_connections(4)
                    .after_connect(|conn, _| {
                        Box::pin(async move {
                            conn.execute(
                                "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; \
                                 PRAGMA foreign_keys = ON; PRAGMA busy_timeout = 10000;",
                            )
                            .await?;
                            Ok(())
                        })
                    })
                    .connect_with(options)
                    .await
            }
            Backend::Postgres => {
                AnyPoolOptions::new()
                    .max_connections(8)
                    .acquire_timeout(Duration::from_secs(10))
                    .connect_with(options)
                    .await
            }
        }
        .map_err(open)?;
        match backend {
            Backend::Sqlite => sqlx::migrate!("./migrations/sqlite").run(&pool).await?,
            Backend::Postgres => sqlx::migrate!("./migrations/postgres").run(&pool).await?,
        }
        Ok(Store {
            pool,
            backend,
            url: shown.to_string(),
        })
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// The engine behind this store.
    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Where the store lives (a file path or a URL without its password).
    pub fn location(&self) -> &str {
        &self.url
    }

    /// Closes every connection (waits for checked-out ones to come back).
    pub async fn close(&self) {
        self.pool.close().await;
    }

    /// Marks builds that were running when the controller stopped as failed (their build
    /// output stream is gone) and returns how many there were.
    pub async fn fail_interrupted_builds(&self) -> Result<u64> {
        let done = sqlx::query(
            "UPDATE builds SET status = 'failed', finished_at = $1, \
             log = log || '\n !     The controller restarted during this build.\n' \
             WHERE status IN ('pending', 'building')",
        )
        .bind(crate::util::now_rfc3339())
        .execute(&self.pool)
        .await
        .map_err(query("failing interrupted builds"))?;
        Ok(done.rows_affected())
    }
}

/// The backend a database URL names, if any.
pub fn backend_of(url: &str) -> Option<Backend> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        Some(Backend::Postgres)
    } else if url.starts_with("sqlite:") {
        Some(Backend::Sqlite)
    } else {
        None
    }
}

/// The URL with any password replaced by `***` (for messages and logs).
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (auth, host) = match rest.split_once('@') {
        Some((auth, host)) if !auth.contains('/') => (auth, host),
        _ => return url.to_string(),
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_string(),
    }
}

/// Parses a JSON object of strings stored in a TEXT column.
pub(crate) fn json_map(what: &'static str, text: &str) -> Result<BTreeMap<String, String>> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what,
        why: e.to_string(),
    })
}

/// Serializes a map of strings for a TEXT column.
pub(crate) fn map_json(map: &BTreeMap<String, String>) -> String {
    serde_json::to_string(map).unwrap_or_else(|_| "{}".into())
}
