//! Apps, releases, config vars and formations.

use std::collections::BTreeMap;

use sqlx::Row;

use super::{
    is_unique_violation, json_map, map_json, query, AppRow, FormationRow, ReleaseRow, Result,
    Store, StoreError,
};
use crate::util::now_rfc3339;

pub(super) fn app_row(row: &super::Row) -> std::result::Result<AppRow, sqlx::Error> {
    Ok(AppRow {
        name: row.try_get("name")?,
        id: row.try_get::<i64, _>("id")? as u32,
        created_at: row.try_get("created_at")?,
        current_release: row
            .try_get::<Option<i64>, _>("current_release")?
            .map(|v| v as u32),
    })
}

pub(super) fn release_row(row: &super::Row) -> Result<ReleaseRow> {
    let get = |e| StoreError::Query {
        what: "reading a release row",
        source: e,
    };
    let process_types: String = row.try_get("process_types").map_err(get)?;
    let config: String = row.try_get("config").map_err(get)?;
    Ok(ReleaseRow {
        app: row.try_get("app").map_err(get)?,
        version: row.try_get::<i64, _>("version").map_err(get)? as u32,
        image: row.try_get("image").map_err(get)?,
        source_version: row.try_get("source_version").map_err(get)?,
        process_types: json_map("release process types", &process_types)?,
        config: json_map("release config", &config)?,
        description: row.try_get("description").map_err(get)?,
        created_at: row.try_get("created_at").map_err(get)?,
    })
}

impl Store {
    /// Creates an app with a new permanent number; [`StoreError::AppExists`] when the name
    /// is taken.
    pub async fn create_app(&self, name: &str) -> Result<AppRow> {
        // Two makers on PostgreSQL may read the same MAX(id): the second hits the primary
        // key of `app_ids` and tries again with the next number.
        for _ in 0..8 {
            match self.try_create_app(name).await {
                Err(StoreError::Query { source, .. }) if is_unique_violation(&source) => continue,
                other => return other,
            }
        }
        self.try_create_app(name).await
    }

    async fn try_create_app(&self, name: &str) -> Result<AppRow> {
        let created_at = now_rfc3339();
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(query("starting a transaction"))?;
        // One statement that writes first, so SQLite takes its write lock at once (a read
        // then a write in one transaction can fail with "database is locked").
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO app_ids (id, first_name, created_at) \
             SELECT COALESCE(MAX(id), 0) + 1, $1, $2 FROM app_ids RETURNING id",
        )
        .bind(name)
        .bind(&created_at)
        .fetch_one(&mut *tx)
        .await
        .map_err(query("numbering a new app"))?;
        let res = sqlx::query("INSERT INTO apps (name, created_at, id) VALUES ($1, $2, $3)")
            .bind(name)
            .bind(&created_at)
            .bind(id)
            .execute(&mut *tx)
            .await;
        match res {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::AppExists(name.to_string()))
            }
            Err(e) => return Err(query("creating an app")(e)),
        }
        tx.commit().await.map_err(query("creating an app"))?;
        Ok(AppRow {
            name: name.to_string(),
            id: id as u32,
            created_at,
            current_release: None,
        })
    }

    /// The app, creating it when it does not exist yet (a first `git push`). The flag says
    /// whether it was created now.
    pub async fn ensure_app(&self, name: &str) -> Result<(AppRow, bool)> {
        match self.create_app(name).await {
            Ok(app) => Ok((app, true)),
            Err(StoreError::AppExists(_)) => {
                let app = self
                    .get_app(name)
                    .await?
                    .ok_or_else(|| StoreError::NoApp(name.to_string()))?;
                Ok((app, false))
            }
            Err(e) => Err(e),
        }
    }

    pub async fn get_app(&self, name: &str) -> Result<Option<AppRow>> {
        let row =
            sqlx::query("SELECT name, id, created_at, current_release FROM apps WHERE name = $1")
                .bind(name)
                .fetch_optional(self.pool())
                .await
                .map_err(query("reading an app"))?;
        row.map(|r| app_row(&r))
            .transpose()
            .map_err(query("reading an app row"))
    }

    /// The app's permanent number (`None` for a missing app): the tenant of its jobs.
    pub async fn app_id(&self, name: &str) -> Result<Option<u32>> {
        let id: Option<Option<i64>> = sqlx::query_scalar("SELECT id FROM apps WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(query("reading an app's number"))?;
        Ok(id.flatten().map(|v| v as u32))
    }

    /// Every app, by name.
    pub async fn list_apps(&self) -> Result<Vec<AppRow>> {
        let rows =
            sqlx::query("SELECT name, id, created_at, current_release FROM apps ORDER BY name")
                .fetch_all(self.pool())
                .await
                .map_err(query("listing apps"))?;
        rows.iter()
            .map(app_row)
            .collect::<std::result::Result<_, _>>()
            .map_err(query("reading an app row"))
    }

    /// The version the next release of `app` gets (1 for the first).
    pub async fn next_release_version(&self, app: &str) -> Result<u32> {
        let max: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM releases WHERE app = $1")
                .bind(app)
                .fetch_one(self.pool())
                .await
                .map_err(query("finding the next release version"))?;
        Ok(max.unwrap_or(0) as u32 + 1)
    }

    /// Stores a release and makes it the app's current one, in one transaction. When the
    /// release declares a `web` process type and the app has no `web` formation yet, the
    /// formation becomes `web=1` (the default of a first deploy).
    pub async fn create_release(&self, release: &ReleaseRow) -> Result<()> {
        self.create_release_with(release, None).await
    }

    /// [`Store::create_release`] with its deploy record `pending` (and `healthcheck`), in
    /// the same transaction, so the scheduler never sees the release current without it.
    pub async fn create_release_pending(
        &self,
        release: &ReleaseRow,
        healthcheck: Option<&str>,
    ) -> Result<()> {
        self.create_release_with(release, Some(healthcheck)).await
    }

    async fn create_release_with(
        &self,
        release: &ReleaseRow,
        pending: Option<Option<&str>>,
    ) -> Result<()> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(query("starting a transaction"))?;
        let res = sqlx::query(
            "INSERT INTO releases (app, version, image, source_version, process_types, config, \
             description, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&release.app)
        .bind(release.version as i64)
        .bind(&release.image)
        .bind(&release.source_version)
        .bind(map_json(&release.process_types))
        .bind(map_json(&release.config))
        .bind(&release.description)
        .bind(&release.created_at)
        .execute(&mut *tx)
        .await;
        match res {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {
                return Err(StoreError::ReleaseExists {
                    app: release.app.clone(),
                    version: release.version,
                })
            }
            Err(e) => return Err(query("storing a release")(e)),
        }
        let updated = sqlx::query("UPDATE apps SET current_release = $1 WHERE name = $2")
            .bind(release.version as i64)
            .bind(&release.app)
            .execute(&mut *tx)
            .await
            .map_err(query("setting the current release"))?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NoApp(release.app.clone()));
        }
        if release.process_types.contains_key("web") {
            sqlx::query(
                "INSERT INTO formations (app, process_type, count) VALUES ($1, 'web', 1) \
                 ON CONFLICT (app, process_type) DO NOTHING",
            )
            .bind(&release.app)
            .execute(&mut *tx)
            .await
            .map_err(query("setting the default formation"))?;
        }
        if let Some(healthcheck) = pending {
            sqlx::query(
                "INSERT INTO release_status (app, version, healthcheck, status, reason, \
                 updated_at) VALUES ($1, $2, $3, 'pending', NULL, $4) ON CONFLICT (app, \
                 version) DO UPDATE SET healthcheck = excluded.healthcheck, status = \
                 excluded.status, reason = NULL, updated_at = excluded.updated_at",
            )
            .bind(&release.app)
            .bind(release.version as i64)
            .bind(healthcheck)
            .bind(crate::util::now_rfc3339())
            .execute(&mut *tx)
            .await
            .map_err(query("recording a release's deploy status"))?;
        }
        tx.commit().await.map_err(query("committing a release"))?;
        Ok(())
    }

    /// The releases of an app, newest first.
    pub async fn list_releases(&self, app: &str) -> Result<Vec<ReleaseRow>> {
        let rows = sqlx::query("SELECT * FROM releases WHERE app = $1 ORDER BY version DESC")
            .bind(app)
            .fetch_all(self.pool())
            .await
            .map_err(query("listing releases"))?;
        rows.iter().map(release_row).collect()
    }

    pub async fn get_release(&self, app: &str, version: u32) -> Result<Option<ReleaseRow>> {
        let row = sqlx::query("SELECT * FROM releases WHERE app = $1 AND version = $2")
            .bind(app)
            .bind(version as i64)
            .fetch_optional(self.pool())
            .await
            .map_err(query("reading a release"))?;
        row.as_ref().map(release_row).transpose()
    }

    /// The app's config vars.
    pub async fn config_vars(&self, app: &str) -> Result<BTreeMap<String, String>> {
        let rows = sqlx::query("SELECT key, value FROM config_vars WHERE app = $1 ORDER BY key")
            .bind(app)
            .fetch_all(self.pool())
            .await
            .map_err(query("reading config vars"))?;
        rows.iter()
            .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(query("reading a config var row"))
    }

    /// Applies `changes` (`Some`: set, `None`: unset) to the app's config vars in one
    /// transaction, once `check` approved them against the current config; returns the new
    /// config, or `check`'s refusal (nothing changed). The app's row is written first, so
    /// concurrent changes of one app are checked one after the other (a row lock on
    /// PostgreSQL, the write lock on SQLite) and cannot pass a limit together.
    pub async fn change_config<E>(
        &self,
        app: &str,
        changes: &BTreeMap<String, Option<String>>,
        check: impl FnOnce(
            &BTreeMap<String, String>,
            &BTreeMap<String, Option<String>>,
        ) -> std::result::Result<(), E>,
    ) -> Result<std::result::Result<BTreeMap<String, String>, E>> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(query("starting a transaction"))?;
        let locked =
            sqlx::query("UPDATE apps SET current_release = current_release WHERE name = $1")
                .bind(app)
                .execute(&mut *tx)
                .await
                .map_err(query("locking the app for a config change"))?;
        if locked.rows_affected() == 0 {
            return Err(StoreError::NoApp(app.to_string()));
        }
        let read = |rows: Vec<sqlx::any::AnyRow>| {
            rows.iter()
                .map(|r| Ok((r.try_get("key")?, r.try_get("value")?)))
                .collect::<std::result::Result<BTreeMap<String, String>, sqlx::Error>>()
                .map_err(query("reading a config var row"))
        };
        let select = "SELECT key, value FROM config_vars WHERE app = $1 ORDER BY key";
        let current = read(
            sqlx::query(select)
                .bind(app)
                .fetch_all(&mut *tx)
                .await
                .map_err(query("reading config vars"))?,
        )?;
        if let Err(refused) = check(&current, changes) {
            return Ok(Err(refused));
        }
        for (key, value) in changes {
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
            .execute(&mut *tx)
            .await
            .map_err(query("setting a config var"))?;
        }
        let config = read(
            sqlx::query(select)
                .bind(app)
                .fetch_all(&mut *tx)
                .await
                .map_err(query("reading config vars"))?,
        )?;
        tx.commit()
            .await
            .map_err(query("committing a config change"))?;
        Ok(Ok(config))
    }

    /// Sets (or with `None` removes) one config var.
    pub async fn set_config_var(&self, app: &str, key: &str, value: Option<&str>) -> Result<()> {
        let res = match value {
            Some(v) => {
                sqlx::query(
                    "INSERT INTO config_vars (app, key, value) VALUES ($1, $2, $3) \
                     ON CONFLICT (app, key) DO UPDATE SET value = excluded.value",
                )
                .bind(app)
                .bind(key)
                .bind(v)
                .execute(self.pool())
                .await
            }
            None => {
                sqlx::query("DELETE FROM config_vars WHERE app = $1 AND key = $2")
                    .bind(app)
                    .bind(key)
                    .execute(self.pool())
                    .await
            }
        };
        match res {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                Err(StoreError::NoApp(app.to_string()))
            }
            Err(e) => Err(query("setting a config var")(e)),
        }
    }

    /// Sets how many jobs of `process_type` the app runs.
    pub async fn set_formation(&self, app: &str, process_type: &str, count: u32) -> Result<()> {
        let res = sqlx::query(
            "INSERT INTO formations (app, process_type, count) VALUES ($1, $2, $3) \
             ON CONFLICT (app, process_type) DO UPDATE SET count = excluded.count",
        )
        .bind(app)
        .bind(process_type)
        .bind(count as i64)
        .execute(self.pool())
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                Err(StoreError::NoApp(app.to_string()))
            }
            Err(e) => Err(query("setting a formation")(e)),
        }
    }

    /// Every formation with its app's current release.
    pub async fn formations(&self) -> Result<Vec<FormationRow>> {
        let rows = sqlx::query(
            "SELECT f.app, f.process_type, f.count, a.current_release FROM formations f \
             JOIN apps a ON a.name = f.app ORDER BY f.app, f.process_type",
        )
        .fetch_all(self.pool())
        .await
        .map_err(query("listing formations"))?;
        rows.iter()
            .map(|r| {
                Ok(FormationRow {
                    app: r.try_get("app")?,
                    process_type: r.try_get("process_type")?,
                    count: r.try_get::<i64, _>("count")?.max(0) as u32,
                    release: r
                        .try_get::<Option<i64>, _>("current_release")?
                        .map(|v| v as u32),
                })
            })
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(query("reading a formation row"))
    }
}
