//! `paas-controller backup` and `restore`: one `.tar.gz` with the store and the data
//! directory's files.
//!
//! Layout of the archive:
//!
//! * `paas-backup.json` — format, time, the backend it came from, its schema version and
//!   the row count of each table;
//! * `store/<table>.json` — every row of every table ([`crate::store::TableDump`]), read
//!   in one transaction, so the store part is a consistent snapshot on SQLite and on
//!   PostgreSQL alike, and restores into either;
//! * `data/…` — the data directory: the registry's blobs and tags, the git repositories,
//!   the admin and node tokens, the add-ons' backup files (`backups/<addon id>/<backup
//!   id>.dump`, modes kept) and any other files — but not `paas.db*` (in `store/`),
//!   `builds/` (running builds' inputs), `agent/` (the local agent's containers) or
//!   `stacks/` (imported into the registry at start; re-import from your stack images).
//!
//! The store is read first and the files after: every release in the store has its image
//! blobs on disk already (blobs are written before the release), so a backup taken while
//! the controller runs restores to a consistent state (at worst with a few newer blobs or
//! git commits that no release points at yet).
//!
//! The backup file is written 0600 (it holds the tokens, config vars and keys).
//!
//! `restore` unpacks into a new (or empty) data directory (made 0700), opens a fresh store (SQLite in
//! that directory, or `--database-url`, which must be empty), applies the migrations and
//! loads the rows. A backup from a newer schema is refused. An add-on backup that was
//! still running when the archive was made is restored as `failed` without its partial
//! file. The add-ons' live data is not in the archive: it is in their volumes on the nodes
//! (a `pg:backups:capture` / `redis:backups:capture` first puts a copy in `backups/`).

use std::fs::File;
use std::io::{BufWriter, Read};
use std::path::{Path, PathBuf};

use clap::Args;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

use crate::store::{Store, StoreError, TableDump};

/// Files and folders of the data directory a backup leaves out.
pub const EXCLUDED: &[&str] = &[
    "paas.db",
    "paas.db-wal",
    "paas.db-shm",
    "builds",
    "agent",
    "stacks",
];

/// `paas-controller backup`.
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// The data directory of the controller to back up.
    #[arg(long, default_value = "/var/lib/paas")]
    pub data_dir: PathBuf,
    /// The store when it is not SQLite in the data directory.
    #[arg(long, env = "PAAS_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Where to write the backup (`.tar.gz`).
    #[arg(long)]
    pub out: PathBuf,
}

/// `paas-controller restore`.
#[derive(Debug, Clone, Args)]
pub struct RestoreArgs {
    /// A new or empty directory to restore the data directory into.
    #[arg(long)]
    pub data_dir: PathBuf,
    /// Restore the store into this (empty) database instead of SQLite in the data dir.
    #[arg(long, env = "PAAS_DATABASE_URL")]
    pub database_url: Option<String>,
    /// The backup made by `paas-controller backup`.
    pub file: PathBuf,
}

/// Why a backup or restore failed.
#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Files(#[from] crate::files::FilesError),
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("the data directory {0} does not exist: pass the controller's --data-dir")]
    NoDataDir(String),
    #[error(
        "{0} is not empty: restore into a new or empty directory (a restore never mixes \
         with existing data)"
    )]
    NotEmpty(String),
    #[error("the database to restore into already has data: restore into an empty database")]
    StoreNotEmpty,
    #[error("{path} is not a paas backup: {why}")]
    NotBackup { path: String, why: String },
    #[error(
        "the backup's store schema is newer (migration {backup}) than this controller's \
         ({ours}): restore with the paas-controller that made it, or a newer one"
    )]
    NewerSchema { backup: i64, ours: i64 },
    #[error("a background task failed: {0}")]
    Join(String),
}

/// `paas-backup.json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub created_at: String,
    pub backend: String,
    pub schema_version: i64,
    /// Table → rows.
    pub tables: std::collections::BTreeMap<String, usize>,
}

fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> BackupError {
    let path = path.display().to_string();
    move |source| BackupError::Io { what, path, source }
}

/// Opens the store of a data dir (SQLite in it, or `url`).
async fn open_store(data_dir: &Path, url: Option<&str>) -> Result<Store, BackupError> {
    Ok(match url {
        Some(url) => Store::connect(url).await?,
        None => {
            let path = data_dir.join("paas.db");
            crate::files::precreate_store(&path)?;
            Store::open(&path).await?
        }
    })
}

/// Writes a backup of `data_dir` (and its store) to `out`; returns what it holds.
pub async fn backup(
    data_dir: &Path,
    database_url: Option<&str>,
    out: &Path,
) -> Result<Manifest, BackupError> {
    if !data_dir.is_dir() {
        return Err(BackupError::NoDataDir(data_dir.display().to_string()));
    }
    let store = open_store(data_dir, database_url).await?;
    let tables = store.dump().await?;
    let manifest = Manifest {
        format: 1,
        created_at: crate::util::now_rfc3339(),
        backend: format!("{:?}", store.backend()).to_lowercase(),
        schema_version: store.schema_version().await?,
        tables: tables
            .iter()
            .map(|t| (t.name.clone(), t.rows.len()))
            .collect(),
    };
    store.close().await;
    let (data_dir, out) = (data_dir.to_path_buf(), out.to_path_buf());
    let m = manifest.clone();
    tokio::task::spawn_blocking(move || write_archive(&data_dir, &out, &m, &tables))
        .await
        .map_err(|e| BackupError::Join(e.to_string()))??;
    Ok(manifest)
}

fn write_archive(
    data_dir: &Path,
    out: &Path,
    manifest: &Manifest,
    tables: &[TableDump],
) -> Result<(), BackupError> {
    let tmp = out.with_extension("partial");
    // 0600: the backup holds the tokens, config vars and certificate keys.
    let file = crate::files::create_private_file(&tmp)?;
    let mut tar = tar::Builder::new(GzEncoder::new(
        BufWriter::new(file),
        flate2::Compression::fast(),
    ));
    tar.follow_symlinks(false);
    let add_json = |tar: &mut tar::Builder<_>, name: &str, bytes: Vec<u8>| {
        let mut h = tar::Header::new_gnu();
        h.set_size(bytes.len() as u64);
        h.set_mode(0o600);
        h.set_mtime(crate::util::unix_ms().max(0) as u64 / 1000);
        h.set_cksum();
        tar.append_data(&mut h, name, bytes.as_slice())
            .map_err(io("writing", &tmp))
    };
    let manifest_json = serde_json::to_vec(manifest).unwrap_or_default();
    add_json(&mut tar, "paas-backup.json", manifest_json)?;
    for t in tables {
        let bytes = serde_json::to_vec(t).unwrap_or_default();
        add_json(&mut tar, &format!("store/{}.json", t.name), bytes)?;
    }
    let mut entries: Vec<_> = std::fs::read_dir(data_dir)
        .map_err(io("reading", data_dir))?
        .collect::<Result<_, _>>()
        .map_err(io("reading", data_dir))?;
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        let name = e.file_name().to_string_lossy().into_owned();
        let path = e.path();
        if EXCLUDED.contains(&name.as_str()) || path == tmp || path == out {
            continue;
        }
        let inside = format!("data/{name}");
        let kind = e.file_type().map_err(io("reading", &path))?;
        if kind.is_dir() {
            tar.append_dir_all(&inside, &path)
        } else {
            tar.append_path_with_name(&path, &inside)
        }
        .map_err(io("adding to the backup", &path))?;
    }
    let gz = tar.into_inner().map_err(io("writing", &tmp))?;
    let mut w = gz.finish().map_err(io("writing", &tmp))?;
    std::io::Write::flush(&mut w).map_err(io("writing", &tmp))?;
    w.into_inner()
        .map_err(|e| BackupError::Io {
            what: "writing",
            path: tmp.display().to_string(),
            source: e.into_error(),
        })?
        .sync_all()
        .map_err(io("writing", &tmp))?;
    std::fs::rename(&tmp, out).map_err(io("renaming into place", out))?;
    Ok(())
}

/// Restores `file` into the new data dir `data_dir` (and `database_url`, if given).
pub async fn restore(
    file: &Path,
    data_dir: &Path,
    database_url: Option<&str>,
) -> Result<Manifest, BackupError> {
    if data_dir.exists() {
        let mut entries = std::fs::read_dir(data_dir).map_err(io("reading", data_dir))?;
        if entries.next().is_some() {
            return Err(BackupError::NotEmpty(data_dir.display().to_string()));
        }
    }
    crate::files::create_private_dir(data_dir)?;
    let staging = data_dir.join(".restore");
    let (f, s) = (file.to_path_buf(), staging.clone());
    tokio::task::spawn_blocking(move || unpack(&f, &s))
        .await
        .map_err(|e| BackupError::Join(e.to_string()))??;
    let not_backup = |why: String| BackupError::NotBackup {
        path: file.display().to_string(),
        why,
    };
    let manifest: Manifest = read_json(&staging.join("paas-backup.json"))
        .map_err(|e| not_backup(format!("paas-backup.json: {e}")))?;
    let mut tables = Vec::new();
    for name in manifest.tables.keys() {
        let path = staging.join("store").join(format!("{name}.json"));
        let t: TableDump =
            read_json(&path).map_err(|e| not_backup(format!("store/{name}.json: {e}")))?;
        tables.push(t);
    }
    let data = staging.join("data");
    if data.is_dir() {
        for e in std::fs::read_dir(&data).map_err(io("reading", &data))? {
            let e = e.map_err(io("reading", &data))?;
            let to = data_dir.join(e.file_name());
            std::fs::rename(e.path(), &to).map_err(io("moving into place", &to))?;
        }
    }
    let store = open_store(data_dir, database_url).await?;
    let ours = store.schema_version().await?;
    if manifest.schema_version > ours {
        return Err(BackupError::NewerSchema {
            backup: manifest.schema_version,
            ours,
        });
    }
    if !store.is_empty().await? {
        return Err(BackupError::StoreNotEmpty);
    }
    store.load(&tables).await?;
    interrupted_backups(&store, data_dir).await?;
    store.close().await;
    std::fs::remove_dir_all(&staging).map_err(io("removing", &staging))?;
    // A backup of an older controller may hold token files of mode 0644.
    crate::files::secure_data_dir(data_dir)?;
    Ok(manifest)
}

/// Add-on backups that were running when the controller backup was taken never end in the
/// restored controller: each becomes `failed` (saying why) and its partial file goes.
async fn interrupted_backups(store: &Store, data_dir: &Path) -> Result<(), BackupError> {
    use crate::store::backup_state as state;
    let now = crate::util::now_rfc3339();
    for a in store.addons().await? {
        for b in store.backups_of(&a.name).await? {
            if b.state != state::RUNNING {
                continue;
            }
            let partial = data_dir
                .join("backups")
                .join(b.addon_id.to_string())
                .join(format!("{}.dump", b.id));
            match std::fs::remove_file(&partial) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io("removing", &partial)(e)),
            }
            let why = "it was still running when the controller backup was taken: capture \
                       another one";
            store
                .finish_backup(&b.id, state::FAILED, 0, Some(why), &now)
                .await?;
        }
    }
    Ok(())
}

fn unpack(file: &Path, to: &Path) -> Result<(), BackupError> {
    let f = File::open(file).map_err(io("opening", file))?;
    let mut archive = tar::Archive::new(GzDecoder::new(std::io::BufReader::new(f)));
    archive.set_preserve_permissions(true);
    archive.set_overwrite(false);
    archive.unpack(to).map_err(|e| BackupError::NotBackup {
        path: file.display().to_string(),
        why: format!("unpacking: {e}"),
    })
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, String> {
    let mut text = String::new();
    File::open(path)
        .and_then(|mut f| f.read_to_string(&mut text))
        .map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}
