//! Making releases. Every write that makes one (a build, `deploy --image`, a config set or
//! unset, a rollback) is ONE transaction that first locks the app's row, then takes the
//! version (`MAX + 1`) inside it, writes the config vars the release carries, the release,
//! the app's current release, the default `web=1` formation and the `pending` deploy
//! record. So two writers of one app run one after the other (a row lock on PostgreSQL,
//! the write lock on SQLite) and can neither get the same version nor leave half a change
//! behind (config stored without its release, or the reverse). A writer that cannot get
//! the lock in time gets [`StoreError::Busy`] (the API's 409), with nothing changed.

use std::collections::BTreeMap;

use sqlx::any::Any;
use sqlx::{Row, Transaction};

use super::{map_json, query, ReleaseRow, Result, Store, StoreError};
use crate::util::now_rfc3339;

/// A release to make; the store picks its version.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewRelease {
    /// `<repository>@sha256:…`
    pub image: String,
    pub source_version: Option<String>,
    pub process_types: BTreeMap<String, String>,
    pub description: String,
    /// The release's config; `None`: the app's stored config vars as they are when the
    /// release is made (a build's release gets every change that landed before it).
    pub config: Option<BTreeMap<String, String>>,
    /// `Some(healthcheck)`: record the deploy `pending` with this health check (JSON).
    pub pending: Option<Option<String>>,
    /// The app.json the release keeps (plain JSON; with `pending` only: it lives in the
    /// deploy record).
    pub app_json: Option<String>,
}

/// What [`Store::change_config_and_release`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigChanged {
    /// The app's config vars after the change.
    pub config: BTreeMap<String, String>,
    /// The release that carries them, when the app had one to copy.
    pub release: Option<ReleaseRow>,
}

/// True when the database refused a statement because another transaction holds what it
/// needs (SQLite busy or locked, PostgreSQL serialization failure, deadlock or lock timeout).
pub(crate) fn is_contention(e: &sqlx::Error) -> bool {
    match e {
        sqlx::Error::Database(db) => {
            let code = db.code().unwrap_or_default();
            // SQLite: 5 BUSY, 6 LOCKED and their extended codes (low byte 5 or 6).
            let sqlite = code.parse::<u32>().is_ok_and(|c| matches!(c & 0xff, 5 | 6));
            sqlite || matches!(code.as_ref(), "40001" | "40P01" | "55P03")
        }
        sqlx::Error::PoolTimedOut => true,
        _ => false,
    }
}

/// Maps a failed statement of a release write: contention becomes [`StoreError::Busy`].
fn write_error<'a>(
    app: &'a str,
    what: &'static str,
) -> impl FnOnce(sqlx::Error) -> StoreError + 'a {
    move |e| {
        if is_contention(&e) {
            StoreError::Busy {
                app: app.to_string(),
            }
        } else {
            query(what)(e)
        }
    }
}

impl Store {
    /// Makes a release of `app` from `new` and makes it current, in one transaction with
    /// its version taken inside; returns the stored row and the release that was current
    /// before (what a failed deploy goes back to).
    pub async fn add_release(
        &self,
        app: &str,
        new: &NewRelease,
    ) -> Result<(ReleaseRow, Option<u32>)> {
        let mut tx = self.begin_release_write(app).await?;
        let previous = lock_app(&mut tx, app).await?;
        let config = match &new.config {
            Some(c) => c.clone(),
            None => config_in(&mut tx, app).await?,
        };
        let row = insert_release(&mut tx, app, new, config).await?;
        tx.commit()
            .await
            .map_err(write_error(app, "committing a release"))?;
        Ok((row, previous))
    }

    /// Applies `changes` (`Some`: set, `None`: unset) to the app's config vars once `check`
    /// approved them against the current config, and when the app has a current release,
    /// makes a new one that copies it with the new config and the description `describe`
    /// gives (pending, with the copied release's health check), all in one transaction.
    /// `check`'s refusal changes nothing.
    pub async fn change_config_and_release<E>(
        &self,
        app: &str,
        changes: &BTreeMap<String, Option<String>>,
        check: impl FnOnce(
            &BTreeMap<String, String>,
            &BTreeMap<String, Option<String>>,
        ) -> std::result::Result<(), E>,
        description: String,
    ) -> Result<std::result::Result<ConfigChanged, E>> {
        let mut tx = self.begin_release_write(app).await?;
        let current = lock_app(&mut tx, app).await?;
        let before = config_in(&mut tx, app).await?;
        if let Err(refused) = check(&before, changes) {
            return Ok(Err(refused));
        }
        for (key, value) in changes {
            set_var(&mut tx, app, key, value.as_deref()).await?;
        }
        let config = config_in(&mut tx, app).await?;
        let release = match current {
            Some(from) => {
                Some(copy_release(&mut tx, app, from, config.clone(), description).await?)
            }
            None => None,
        };
        tx.commit()
            .await
            .map_err(write_error(app, "committing a config change"))?;
        Ok(Ok(ConfigChanged { config, release }))
    }

    /// Rolls `app` back to release `to` (`None`: the newest one before the current): a new
    /// release with its image, process types and config ("Rollback to vN"), and the app's
    /// config vars become that config, in one transaction. `Ok(None)` when there is no
    /// such release (or nothing earlier to roll back to).
    pub async fn rollback_release(&self, app: &str, to: Option<u32>) -> Result<Option<ReleaseRow>> {
        let mut tx = self.begin_release_write(app).await?;
        let Some(current) = lock_app(&mut tx, app).await? else {
            return Ok(None);
        };
        let to = match to {
            Some(v) => v,
            None => {
                let before: Option<i64> = sqlx::query_scalar(
                    "SELECT MAX(version) FROM releases WHERE app = $1 AND version < $2",
                )
                .bind(app)
                .bind(i64::from(current))
                .fetch_one(&mut *tx)
                .await
                .map_err(write_error(app, "finding the release to roll back to"))?;
                match before {
                    Some(v) => v as u32,
                    None => return Ok(None),
                }
            }
        };
        let Some(target) = release_in(&mut tx, app, to).await? else {
            return Ok(None);
        };
        sqlx::query("DELETE FROM config_vars WHERE app = $1")
            .bind(app)
            .execute(&mut *tx)
            .await
            .map_err(write_error(app, "replacing config vars"))?;
        for (key, value) in &target.config {
            set_var(&mut tx, app, key, Some(value)).await?;
        }
        let row = copy_release(
            &mut tx,
            app,
            to,
            target.config.clone(),
            format!("Rollback to v{to}"),
        )
        .await?;
        tx.commit()
            .await
            .map_err(write_error(app, "committing a rollback"))?;
        Ok(Some(row))
    }

    async fn begin_release_write(&self, app: &str) -> Result<Transaction<'static, Any>> {
        self.pool()
            .begin()
            .await
            .map_err(write_error(app, "starting a transaction"))
    }
}

/// Locks the app's row for the rest of the transaction (a write, so SQLite takes its write
/// lock now rather than upgrading a read later) and returns its current release.
async fn lock_app(tx: &mut Transaction<'static, Any>, app: &str) -> Result<Option<u32>> {
    let locked = sqlx::query("UPDATE apps SET current_release = current_release WHERE name = $1")
        .bind(app)
        .execute(&mut **tx)
        .await
        .map_err(write_error(app, "locking the app for a release"))?;
    if locked.rows_affected() == 0 {
        return Err(StoreError::NoApp(app.to_string()));
    }
    let current: Option<i64> =
        sqlx::query_scalar("SELECT current_release FROM apps WHERE name = $1")
            .bind(app)
            .fetch_one(&mut **tx)
            .await
            .map_err(write_error(app, "reading the current release"))?;
    Ok(current.map(|v| v as u32))
}

async fn config_in(
    tx: &mut Transaction<'static, Any>,
    app: &str,
) -> Result<BTreeMap<String, String>> {
    let rows = sqlx::query("SELECT key, value FROM config_vars WHERE app = $1 ORDER BY key")
        .bind(app)
        .fetch_all(&mut **tx)
        .await
        .map_err(write_error(app, "reading config vars"))?;
    rows.iter()
        .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
        .collect::<std::result::Result<_, sqlx::Error>>()
        .map_err(query("reading a config var row"))
}

async fn set_var(
    tx: &mut Transaction<'static, Any>,
    app: &str,
    key: &str,
    value: Option<&str>,
) -> Result<()> {
    match value {
        Some(v) => sqlx::query(
            "INSERT INTO config_vars (app, key, value) VALUES ($1, $2, $3) \
             ON CONFLICT (app, key) DO UPDATE SET value = excluded.value",
        )
        .bind(app)
        .bind(key)
        .bind(v),
        None => sqlx::query("DELETE FROM config_vars WHERE app = $1 AND key = $2")
            .bind(app)
            .bind(key),
    }
    .execute(&mut **tx)
    .await
    .map_err(write_error(app, "setting a config var"))?;
    Ok(())
}

async fn release_in(
    tx: &mut Transaction<'static, Any>,
    app: &str,
    version: u32,
) -> Result<Option<ReleaseRow>> {
    let row = sqlx::query("SELECT * FROM releases WHERE app = $1 AND version = $2")
        .bind(app)
        .bind(i64::from(version))
        .fetch_optional(&mut **tx)
        .await
        .map_err(write_error(app, "reading a release"))?;
    row.as_ref().map(super::apps::release_row).transpose()
}

/// A new release copying `from`'s image and process types with `config`, pending with
/// `from`'s health check.
async fn copy_release(
    tx: &mut Transaction<'static, Any>,
    app: &str,
    from: u32,
    config: BTreeMap<String, String>,
    description: String,
) -> Result<ReleaseRow> {
    let base = release_in(tx, app, from)
        .await?
        .ok_or_else(|| StoreError::Corrupt {
            what: "the app's current release",
            why: format!("v{from} of {app} is current but has no release row"),
        })?;
    let status = sqlx::query(
        "SELECT healthcheck, app_json FROM release_status WHERE app = $1 AND version = $2",
    )
    .bind(app)
    .bind(i64::from(from))
    .fetch_optional(&mut **tx)
    .await
    .map_err(write_error(app, "reading a release's health check"))?;
    let column = |name: &str| -> Option<String> {
        status
            .as_ref()
            .and_then(|r| r.try_get::<Option<String>, _>(name).ok().flatten())
    };
    let (check, app_json) = (column("healthcheck"), column("app_json"));
    let new = NewRelease {
        image: base.image,
        source_version: base.source_version,
        process_types: base.process_types,
        description,
        config: None,
        pending: Some(check),
        // Its app.json (formation, scripts, cron, env): every release keeps its checks.
        app_json,
    };
    insert_release(tx, app, &new, config).await
}

/// Inserts the release with the next version and makes it current (the app's row must be
/// locked by [`lock_app`] first).
async fn insert_release(
    tx: &mut Transaction<'static, Any>,
    app: &str,
    new: &NewRelease,
    config: BTreeMap<String, String>,
) -> Result<ReleaseRow> {
    let max: Option<i64> = sqlx::query_scalar("SELECT MAX(version) FROM releases WHERE app = $1")
        .bind(app)
        .fetch_one(&mut **tx)
        .await
        .map_err(write_error(app, "finding the next release version"))?;
    let row = ReleaseRow {
        app: app.to_string(),
        version: max.unwrap_or(0) as u32 + 1,
        image: new.image.clone(),
        source_version: new.source_version.clone(),
        process_types: new.process_types.clone(),
        config,
        description: new.description.clone(),
        created_at: now_rfc3339(),
    };
    sqlx::query(
        "INSERT INTO releases (app, version, image, source_version, process_types, config, \
         description, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(app)
    .bind(i64::from(row.version))
    .bind(&row.image)
    .bind(&row.source_version)
    .bind(map_json(&row.process_types))
    .bind(map_json(&row.config))
    .bind(&row.description)
    .bind(&row.created_at)
    .execute(&mut **tx)
    .await
    .map_err(|e| {
        if super::is_unique_violation(&e) {
            // Cannot happen with the row lock held; kept a clear 409 all the same.
            StoreError::Busy {
                app: app.to_string(),
            }
        } else {
            write_error(app, "storing a release")(e)
        }
    })?;
    sqlx::query("UPDATE apps SET current_release = $1 WHERE name = $2")
        .bind(i64::from(row.version))
        .bind(app)
        .execute(&mut **tx)
        .await
        .map_err(write_error(app, "setting the current release"))?;
    if row.process_types.contains_key("web") {
        sqlx::query(
            "INSERT INTO formations (app, process_type, count) VALUES ($1, 'web', 1) \
             ON CONFLICT (app, process_type) DO NOTHING",
        )
        .bind(app)
        .execute(&mut **tx)
        .await
        .map_err(write_error(app, "setting the default formation"))?;
    }
    if let Some(healthcheck) = &new.pending {
        sqlx::query(
            "INSERT INTO release_status (app, version, healthcheck, status, reason, \
             updated_at, app_json) VALUES ($1, $2, $3, 'pending', NULL, $4, $5) ON CONFLICT \
             (app, version) DO UPDATE SET healthcheck = excluded.healthcheck, status = \
             excluded.status, reason = NULL, updated_at = excluded.updated_at, app_json = \
             excluded.app_json",
        )
        .bind(app)
        .bind(i64::from(row.version))
        .bind(healthcheck.as_deref())
        .bind(now_rfc3339())
        .bind(new.app_json.as_deref())
        .execute(&mut **tx)
        .await
        .map_err(write_error(app, "recording a release's deploy status"))?;
    }
    Ok(row)
}
