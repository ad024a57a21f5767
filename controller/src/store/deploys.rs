//! How a release's deploy went (migration 0009): its health check from app.json, its
//! status (`pending`, `succeeded`, `failed`) and the reason of a failure; moving an app's
//! current release back after a failed deploy (auto rollback); the buildpacks an app chose
//! with `paas buildpacks:add/set`.

use std::collections::HashMap;

use sqlx::Row;

use super::{query, Result, Store, StoreError};
use crate::util::now_rfc3339;

/// Deploy status values.
pub mod release_status {
    pub const PENDING: &str = "pending";
    pub const SUCCEEDED: &str = "succeeded";
    pub const FAILED: &str = "failed";
    /// Shown for a release without a record (made before deploys were recorded).
    pub const UNKNOWN: &str = "unknown";
}

/// The deploy record of one release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseStatus {
    pub version: u32,
    /// JSON of the web startup health check, `None` for the TCP check.
    pub healthcheck: Option<String>,
    pub status: String,
    pub reason: Option<String>,
}

impl Store {
    /// Keeps the app.json (plain JSON) release `version` was built with (migration 0020);
    /// its deploy record must exist.
    pub async fn set_release_app_json(
        &self,
        app: &str,
        version: u32,
        app_json: Option<&str>,
    ) -> Result<()> {
        sqlx::query("UPDATE release_status SET app_json = $1 WHERE app = $2 AND version = $3")
            .bind(app_json)
            .bind(app)
            .bind(version as i64)
            .execute(self.pool())
            .await
            .map_err(query("keeping a release's app.json"))?;
        Ok(())
    }

    /// The app.json release `version` was built with, if it had one.
    pub async fn release_app_json(&self, app: &str, version: u32) -> Result<Option<String>> {
        let row =
            sqlx::query("SELECT app_json FROM release_status WHERE app = $1 AND version = $2")
                .bind(app)
                .bind(version as i64)
                .fetch_optional(self.pool())
                .await
                .map_err(query("reading a release's app.json"))?;
        Ok(row.and_then(|r| r.try_get::<Option<String>, _>("app_json").ok().flatten()))
    }

    /// The app.json of every app's current release that has one: (app, app.json).
    pub async fn current_app_jsons(&self) -> Result<Vec<(String, String)>> {
        let rows = sqlx::query(
            "SELECT a.name, s.app_json FROM apps a JOIN release_status s ON s.app = a.name \
             AND s.version = a.current_release WHERE s.app_json IS NOT NULL ORDER BY a.name",
        )
        .fetch_all(self.pool())
        .await
        .map_err(query("listing the apps' app.json"))?;
        rows.iter()
            .map(|r| Ok((r.try_get("name")?, r.try_get("app_json")?)))
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(query("reading an app.json row"))
    }

    /// The kept end of a removed job's output (see `Store::set_job_log`).
    pub async fn job_last_log(&self, id: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT last_log FROM jobs WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(query("reading a job's kept output"))?;
        Ok(row.and_then(|r| r.try_get::<Option<String>, _>("last_log").ok().flatten()))
    }

    /// Records (or replaces) the deploy record of release `version`.
    pub async fn set_release_status(
        &self,
        app: &str,
        version: u32,
        healthcheck: Option<&str>,
        status: &str,
        reason: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO release_status (app, version, healthcheck, status, reason, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (app, version) DO UPDATE SET \
             healthcheck = COALESCE(excluded.healthcheck, release_status.healthcheck), \
             status = excluded.status, reason = excluded.reason, \
             updated_at = excluded.updated_at",
        )
        .bind(app)
        .bind(version as i64)
        .bind(healthcheck)
        .bind(status)
        .bind(reason)
        .bind(now_rfc3339())
        .execute(self.pool())
        .await
        .map_err(query("recording a release's deploy status"))?;
        Ok(())
    }

    /// Records what the scheduler saw of release `version` (`succeeded`, or `failed` with
    /// why), unless the record already says `succeeded`: a release that served stays
    /// `succeeded` (a later crash is the app's, not its deploy's). Keeps the health check.
    /// True when it changed the record.
    pub async fn settle_release_status(
        &self,
        app: &str,
        version: u32,
        status: &str,
        reason: Option<&str>,
    ) -> Result<bool> {
        let res = sqlx::query(
            "INSERT INTO release_status (app, version, healthcheck, status, reason, updated_at) \
             VALUES ($1, $2, NULL, $3, $4, $5) ON CONFLICT (app, version) DO UPDATE SET \
             status = excluded.status, reason = excluded.reason, \
             updated_at = excluded.updated_at \
             WHERE release_status.status <> 'succeeded' \
             AND (release_status.status <> excluded.status \
                  OR COALESCE(release_status.reason, '') <> COALESCE(excluded.reason, ''))",
        )
        .bind(app)
        .bind(version as i64)
        .bind(status)
        .bind(reason)
        .bind(now_rfc3339())
        .execute(self.pool())
        .await
        .map_err(query("recording a release's deploy status"))?;
        Ok(res.rows_affected() > 0)
    }

    /// The deploy record of one release.
    pub async fn release_status(&self, app: &str, version: u32) -> Result<Option<ReleaseStatus>> {
        Ok(self
            .release_statuses_where(app, Some(version))
            .await?
            .remove(&version))
    }

    /// The deploy records of an app's releases, by version.
    pub async fn release_statuses(&self, app: &str) -> Result<HashMap<u32, ReleaseStatus>> {
        self.release_statuses_where(app, None).await
    }

    async fn release_statuses_where(
        &self,
        app: &str,
        version: Option<u32>,
    ) -> Result<HashMap<u32, ReleaseStatus>> {
        const ONE: &str = "SELECT version, healthcheck, status, reason FROM release_status \
                           WHERE app = $1 AND version = $2";
        const ALL: &str =
            "SELECT version, healthcheck, status, reason FROM release_status WHERE app = $1";
        let rows = match version {
            Some(v) => sqlx::query(ONE).bind(app).bind(i64::from(v)),
            None => sqlx::query(ALL).bind(app),
        }
        .fetch_all(self.pool())
        .await
        .map_err(query("reading release deploy statuses"))?;
        let mut out = HashMap::new();
        for r in rows {
            let get = |e| StoreError::Query {
                what: "reading a release status row",
                source: e,
            };
            let version = r.try_get::<i64, _>("version").map_err(get)? as u32;
            out.insert(
                version,
                ReleaseStatus {
                    version,
                    healthcheck: r.try_get("healthcheck").map_err(get)?,
                    status: r.try_get("status").map_err(get)?,
                    reason: r.try_get("reason").map_err(get)?,
                },
            );
        }
        Ok(out)
    }

    /// The health check JSON of one release, `None` when it has none.
    pub async fn release_healthcheck(&self, app: &str, version: u32) -> Result<Option<String>> {
        let row =
            sqlx::query("SELECT healthcheck FROM release_status WHERE app = $1 AND version = $2")
                .bind(app)
                .bind(version as i64)
                .fetch_optional(self.pool())
                .await
                .map_err(query("reading a release's health check"))?;
        Ok(row.and_then(|r| r.try_get::<Option<String>, _>("healthcheck").ok().flatten()))
    }

    /// Sets the app's current release back to `to` (None: no release serves), but only
    /// while the current one is still `from`: a newer deploy or a rollback in between wins.
    /// Returns whether it changed.
    pub async fn revert_current_release(
        &self,
        app: &str,
        from: u32,
        to: Option<u32>,
    ) -> Result<bool> {
        let res = sqlx::query(
            "UPDATE apps SET current_release = $1 WHERE name = $2 AND current_release = $3",
        )
        .bind(to.map(|v| v as i64))
        .bind(app)
        .bind(from as i64)
        .execute(self.pool())
        .await
        .map_err(query("rolling the current release back"))?;
        Ok(res.rows_affected() == 1)
    }

    /// The buildpacks `paas buildpacks:add/set` chose for the app, in order (empty: none).
    /// Kept in `app_buildpacks.buildpack` one a line (a buildpack never holds whitespace).
    pub async fn app_buildpacks(&self, app: &str) -> Result<Vec<String>> {
        let row = sqlx::query("SELECT buildpack FROM app_buildpacks WHERE app = $1")
            .bind(app)
            .fetch_optional(self.pool())
            .await
            .map_err(query("reading the app's buildpacks"))?;
        let text: String = row
            .and_then(|r| r.try_get("buildpack").ok())
            .unwrap_or_default();
        Ok(text.lines().map(str::to_string).collect())
    }

    /// Replaces the app's buildpacks (an empty list clears them).
    pub async fn set_app_buildpacks(&self, app: &str, buildpacks: &[String]) -> Result<()> {
        let q = if buildpacks.is_empty() {
            sqlx::query("DELETE FROM app_buildpacks WHERE app = $1").bind(app)
        } else {
            sqlx::query(
                "INSERT INTO app_buildpacks (app, buildpack) VALUES ($1, $2) \
                 ON CONFLICT (app) DO UPDATE SET buildpack = excluded.buildpack",
            )
            .bind(app)
            .bind(buildpacks.join("\n"))
        };
        q.execute(self.pool())
            .await
            .map_err(query("setting the app's buildpacks"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::release_status::*;
    use crate::store::{ReleaseRow, Store};

    async fn store() -> (Store, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("db.sqlite")).await.unwrap();
        (store, dir)
    }

    fn release(version: u32) -> ReleaseRow {
        ReleaseRow {
            app: "a".into(),
            version,
            image: "apps/a@sha256:00".into(),
            source_version: None,
            process_types: [("web".to_string(), "x".to_string())].into(),
            config: Default::default(),
            description: "d".into(),
            created_at: "t".into(),
        }
    }

    #[tokio::test]
    async fn status_rollback_and_buildpack() {
        let (s, _dir) = store().await;
        s.create_app("a").await.unwrap();
        s.create_release(&release(1)).await.unwrap();
        s.create_release(&release(2)).await.unwrap();
        s.set_release_status("a", 2, Some("{\"path\":\"/h\"}"), PENDING, None)
            .await
            .unwrap();
        s.set_release_status("a", 2, None, FAILED, Some("bad"))
            .await
            .unwrap();
        let st = s.release_statuses("a").await.unwrap();
        assert_eq!(st[&2].status, FAILED);
        assert_eq!(st[&2].reason.as_deref(), Some("bad"));
        assert_eq!(st[&2].healthcheck.as_deref(), Some("{\"path\":\"/h\"}"));
        assert_eq!(
            s.release_healthcheck("a", 2).await.unwrap().as_deref(),
            Some("{\"path\":\"/h\"}")
        );
        assert!(s.release_healthcheck("a", 1).await.unwrap().is_none());
        // Only while v2 is current.
        assert!(!s.revert_current_release("a", 1, None).await.unwrap());
        assert!(s.revert_current_release("a", 2, Some(1)).await.unwrap());
        assert_eq!(
            s.get_app("a").await.unwrap().unwrap().current_release,
            Some(1)
        );

        let none: Vec<String> = vec![];
        assert_eq!(s.app_buildpacks("a").await.unwrap(), none);
        s.set_app_buildpacks("a", &["static".into()]).await.unwrap();
        let two = vec!["nodejs".to_string(), "https://h/bp.git#v1".to_string()];
        s.set_app_buildpacks("a", &two).await.unwrap();
        assert_eq!(s.app_buildpacks("a").await.unwrap(), two);
        s.set_app_buildpacks("a", &[]).await.unwrap();
        assert_eq!(s.app_buildpacks("a").await.unwrap(), none);
    }
}
