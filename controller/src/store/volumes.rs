//! An app's persistent volumes (migration 0024): which node holds each, its size, and
//! where it is mounted (one process type, one path). The checks (names, single writer,
//! one node per type) are made by [`crate::volumes`] before these writes.

use sqlx::Row;

use super::{is_unique_violation, query, Result, Store};
use crate::util::now_rfc3339;

/// One volume of an app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumeRow {
    pub app: String,
    pub name: String,
    /// The app's permanent number when the volume was made (it keys the agent's volume).
    pub app_id: u32,
    pub size_bytes: u64,
    pub node: String,
    /// The process type it is mounted into and where, if mounted.
    pub mount: Option<(String, String)>,
    pub created_at: String,
}

impl VolumeRow {
    /// The agent's name of the volume: `app-<app id>-<name>` (never another app's).
    pub fn agent_name(&self) -> String {
        format!("app-{}-{}", self.app_id, self.name)
    }
}

const COLUMNS: &str = "app, name, app_id, size_bytes, node, process_type, path, created_at";

fn row(r: &super::Row) -> std::result::Result<VolumeRow, sqlx::Error> {
    let process_type: Option<String> = r.try_get("process_type")?;
    let path: Option<String> = r.try_get("path")?;
    Ok(VolumeRow {
        app: r.try_get("app")?,
        name: r.try_get("name")?,
        app_id: r.try_get::<i64, _>("app_id")? as u32,
        size_bytes: r.try_get::<i64, _>("size_bytes")? as u64,
        node: r.try_get("node")?,
        mount: process_type.zip(path),
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    /// Records a new volume; false when the app already has one of that name.
    pub async fn add_volume(
        &self,
        app: &str,
        name: &str,
        app_id: u32,
        size_bytes: u64,
        node: &str,
    ) -> Result<bool> {
        let res = sqlx::query(
            "INSERT INTO volumes (app, name, app_id, size_bytes, node, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(app)
        .bind(name)
        .bind(i64::from(app_id))
        .bind(size_bytes as i64)
        .bind(node)
        .bind(now_rfc3339())
        .execute(self.pool())
        .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(query("adding a volume")(e)),
        }
    }

    /// The volumes of one app (`Some(app)`) or of every app, by app and name.
    pub async fn volumes(&self, app: Option<&str>) -> Result<Vec<VolumeRow>> {
        let one = format!("SELECT {COLUMNS} FROM volumes WHERE app = $1 ORDER BY name");
        let all = format!("SELECT {COLUMNS} FROM volumes ORDER BY app, name");
        let rows = match app {
            Some(app) => sqlx::query(&one).bind(app),
            None => sqlx::query(&all),
        }
        .fetch_all(self.pool())
        .await
        .map_err(query("listing volumes"))?;
        rows.iter()
            .map(row)
            .collect::<std::result::Result<_, _>>()
            .map_err(query("reading a volume row"))
    }

    /// One volume of an app.
    pub async fn volume(&self, app: &str, name: &str) -> Result<Option<VolumeRow>> {
        let sql = format!("SELECT {COLUMNS} FROM volumes WHERE app = $1 AND name = $2");
        let r = sqlx::query(&sql)
            .bind(app)
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(query("reading a volume"))?;
        r.as_ref()
            .map(row)
            .transpose()
            .map_err(query("reading a volume row"))
    }

    /// Mounts the volume into `process_type` at `path` (`Some`) or unmounts it (`None`);
    /// false when there is no such volume.
    pub async fn set_volume_mount(
        &self,
        app: &str,
        name: &str,
        mount: Option<(&str, &str)>,
    ) -> Result<bool> {
        let (process_type, path) = mount.unzip();
        let res = sqlx::query(
            "UPDATE volumes SET process_type = $3, path = $4 WHERE app = $1 AND name = $2",
        )
        .bind(app)
        .bind(name)
        .bind(process_type)
        .bind(path)
        .execute(self.pool())
        .await
        .map_err(query("mounting a volume"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Forgets a volume; false when there was none.
    pub async fn remove_volume(&self, app: &str, name: &str) -> Result<bool> {
        let res = sqlx::query("DELETE FROM volumes WHERE app = $1 AND name = $2")
            .bind(app)
            .bind(name)
            .execute(self.pool())
            .await
            .map_err(query("removing a volume"))?;
        Ok(res.rows_affected() > 0)
    }
}
