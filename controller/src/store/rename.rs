//! Renaming an app: in one transaction a new app row is made with the old one's fields,
//! every row that names the app (releases, config vars, builds, formations, domains, job
//! rows) moves to it, the releases' images in the app's registry repository
//! (`apps/<old>@…`) are renamed with it (`apps/<new>@…`: the caller moves the repository),
//! and the old row goes. The app keeps its permanent number (`id`) and
//! its API access switch. Tables that reference `apps(name)` must be
//! listed in [`APP_TABLES`], or their rows would be deleted with the old row.

use super::{is_unique_violation, query, Result, Store, StoreError};

/// The tables with an `app` column naming the app.
pub const APP_TABLES: &[&str] = &[
    "releases",
    "config_vars",
    "builds",
    "formations",
    "domains",
    "jobs",
    "app_collaborators",
    "certs",
    "https_redirects",
    "release_status",
    "app_buildpacks",
    "acme_apps",
    "acme_domains",
    "volumes",
];

impl Store {
    /// Renames app `from` to `to`: [`StoreError::NoApp`] when `from` does not exist,
    /// [`StoreError::AppExists`] when `to` does.
    pub async fn rename_app(&self, from: &str, to: &str) -> Result<()> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(query("starting a rename"))?;
        // The number moves to the new row: the old one lets go of it first (the unique
        // index on apps.id allows NULLs).
        let id: Option<Option<i64>> = sqlx::query_scalar("SELECT id FROM apps WHERE name = $1")
            .bind(from)
            .fetch_optional(&mut *tx)
            .await
            .map_err(query("renaming an app"))?;
        let Some(id) = id else {
            return Err(StoreError::NoApp(from.to_string()));
        };
        sqlx::query("UPDATE apps SET id = NULL WHERE name = $1")
            .bind(from)
            .execute(&mut *tx)
            .await
            .map_err(query("renaming an app"))?;
        let made = sqlx::query(
            "INSERT INTO apps (name, id, created_at, current_release, api_access) \
             SELECT $2, $3, created_at, current_release, api_access FROM apps WHERE name = $1",
        )
        .bind(from)
        .bind(to)
        .bind(id)
        .execute(&mut *tx)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                StoreError::AppExists(to.to_string())
            } else {
                query("renaming an app")(e)
            }
        })?;
        if made.rows_affected() == 0 {
            return Err(StoreError::NoApp(from.to_string()));
        }
        for table in APP_TABLES {
            sqlx::query(&format!("UPDATE {table} SET app = $2 WHERE app = $1"))
                .bind(from)
                .bind(to)
                .execute(&mut *tx)
                .await
                .map_err(query("moving an app's rows to its new name"))?;
        }
        // The registry repository moves with the app (`apps/<from>` → `apps/<to>`): the
        // releases name their images there.
        let images: Vec<(i64, String)> =
            sqlx::query_as("SELECT version, image FROM releases WHERE app = $1")
                .bind(to)
                .fetch_all(&mut *tx)
                .await
                .map_err(query("reading the releases' images"))?;
        for (version, image) in images {
            if let Some(moved) = moved_image(&image, from, to) {
                sqlx::query("UPDATE releases SET image = $3 WHERE app = $1 AND version = $2")
                    .bind(to)
                    .bind(version)
                    .bind(moved)
                    .execute(&mut *tx)
                    .await
                    .map_err(query("pointing a release at the moved repository"))?;
            }
        }
        sqlx::query("DELETE FROM apps WHERE name = $1")
            .bind(from)
            .execute(&mut *tx)
            .await
            .map_err(query("removing an app's old name"))?;
        tx.commit().await.map_err(query("committing a rename"))?;
        Ok(())
    }
}

/// `image` with its repository renamed when it is the app's own (`apps/<from>@…` or
/// `apps/<from>:…`), else `None`.
pub fn moved_image(image: &str, from: &str, to: &str) -> Option<String> {
    let own = format!("apps/{from}");
    let rest = image.strip_prefix(&own)?;
    (rest.starts_with('@') || rest.starts_with(':')).then(|| format!("apps/{to}{rest}"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_apps_own_repository_moves() {
        let d = format!("sha256:{}", "a".repeat(64));
        let m = |i: &str| super::moved_image(i, "vic", "vic2");
        assert_eq!(m(&format!("apps/vic@{d}")), Some(format!("apps/vic2@{d}")));
        assert_eq!(m("apps/vic:v1"), Some("apps/vic2:v1".into()));
        assert_eq!(m(&format!("apps/victor@{d}")), None);
        assert_eq!(m(&format!("apps/vic/sub@{d}")), None);
        assert_eq!(m(&format!("stacks/tiny@{d}")), None);
    }
}
