//! Add-ons and their attachments (migration 0022). An add-on belongs to the app that made
//! it by that app's permanent number (`apps.id`), so a rename needs nothing here and a
//! destroyed app's add-ons are found by the add-on loop (their owner number has no app).
//! Attachments name the apps an add-on's URL is set on, and under which config var. The size
//! of an add-on's data is the nodes' measurement of its volume (migration 0028).

use sqlx::Row;

use super::{is_unique_violation, query, Result, Store};
use crate::util::now_rfc3339;

/// One add-on as stored.
#[derive(Clone, PartialEq, Eq)]
pub struct AddonRow {
    pub name: String,
    /// Its permanent number: its tenant on the nodes and its volume's name.
    pub id: u32,
    pub service: String,
    pub plan: String,
    /// The number of the app that owns it.
    pub app_id: u32,
    pub password: String,
    /// The node its data lives on, once placed.
    pub node: Option<String>,
    /// The job that runs it now (or ran it last).
    pub job_id: Option<String>,
    pub state: String,
    /// Where its port is reached (`IP:PORT`), while it runs.
    pub addr: Option<String>,
    pub restarts: u32,
    pub last_exit: Option<String>,
    /// Unix ms before which the loop does not start it again (restart backoff).
    pub next_start_ms: i64,
    pub created_at: String,
    /// What its volume held when its node's agent last measured it (bytes), and when
    /// (RFC 3339); None before the first measurement.
    pub data_bytes: Option<u64>,
    pub data_measured_at: Option<String>,
}

impl std::fmt::Debug for AddonRow {
    // Never the password, whatever prints the row.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AddonRow")
            .field("name", &self.name)
            .field("id", &self.id)
            .field("service", &self.service)
            .field("plan", &self.plan)
            .field("app_id", &self.app_id)
            .field("node", &self.node)
            .field("job_id", &self.job_id)
            .field("state", &self.state)
            .field("addr", &self.addr)
            .field("data_bytes", &self.data_bytes)
            .finish_non_exhaustive()
    }
}

/// One app an add-on is attached to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttachmentRow {
    pub addon: String,
    pub app_id: u32,
    /// The app's name now (None: the app is gone).
    pub app: Option<String>,
    /// The config var that holds the URL (`DATABASE_URL`, `ANALYTICS_URL`, …).
    pub var: String,
    pub created_at: String,
}

const COLUMNS: &str = "name, id, service, plan, app_id, password, node, job_id, state, addr, \
                       restarts, last_exit, next_start_ms, created_at, data_bytes, \
                       data_measured_at";

fn addon_row(r: &super::Row) -> std::result::Result<AddonRow, sqlx::Error> {
    Ok(AddonRow {
        name: r.try_get("name")?,
        id: r.try_get::<i64, _>("id")? as u32,
        service: r.try_get("service")?,
        plan: r.try_get("plan")?,
        app_id: r.try_get::<i64, _>("app_id")? as u32,
        password: r.try_get("password")?,
        node: r.try_get("node")?,
        job_id: r.try_get("job_id")?,
        state: r.try_get("state")?,
        addr: r.try_get("addr")?,
        restarts: r.try_get::<i64, _>("restarts")? as u32,
        last_exit: r.try_get("last_exit")?,
        next_start_ms: r.try_get("next_start_ms")?,
        created_at: r.try_get("created_at")?,
        data_bytes: r
            .try_get::<Option<i64>, _>("data_bytes")?
            .map(|b| b.max(0) as u64),
        data_measured_at: r.try_get("data_measured_at")?,
    })
}

fn attachment_row(r: &super::Row) -> std::result::Result<AttachmentRow, sqlx::Error> {
    Ok(AttachmentRow {
        addon: r.try_get("addon")?,
        app_id: r.try_get::<i64, _>("app_id")? as u32,
        app: r.try_get("app")?,
        var: r.try_get("var")?,
        created_at: r.try_get("created_at")?,
    })
}

/// What [`Store::insert_addon`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AddonInserted {
    Inserted,
    /// The name or the number is taken (pick another and try again).
    Taken,
}

impl Store {
    /// Stores a new add-on and its first attachment (to its own app) in one transaction.
    pub async fn insert_addon(&self, a: &AddonRow, var: &str) -> Result<AddonInserted> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(query("starting an add-on insert"))?;
        let res = sqlx::query(&format!(
            "INSERT INTO addons ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, \
             $11, $12, $13, $14, $15, $16)"
        ))
        .bind(&a.name)
        .bind(i64::from(a.id))
        .bind(&a.service)
        .bind(&a.plan)
        .bind(i64::from(a.app_id))
        .bind(&a.password)
        .bind(&a.node)
        .bind(&a.job_id)
        .bind(&a.state)
        .bind(&a.addr)
        .bind(i64::from(a.restarts))
        .bind(&a.last_exit)
        .bind(a.next_start_ms)
        .bind(&a.created_at)
        .bind(a.data_bytes.map(|b| b.min(i64::MAX as u64) as i64))
        .bind(&a.data_measured_at)
        .execute(&mut *tx)
        .await;
        match res {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => return Ok(AddonInserted::Taken),
            Err(e) => return Err(query("inserting an add-on")(e)),
        }
        sqlx::query(
            "INSERT INTO addon_attachments (addon, app_id, var, created_at) VALUES ($1, $2, \
             $3, $4)",
        )
        .bind(&a.name)
        .bind(i64::from(a.app_id))
        .bind(var)
        .bind(&a.created_at)
        .execute(&mut *tx)
        .await
        .map_err(query("inserting an add-on's attachment"))?;
        tx.commit()
            .await
            .map_err(query("committing an add-on insert"))?;
        Ok(AddonInserted::Inserted)
    }

    /// One add-on by name.
    pub async fn addon(&self, name: &str) -> Result<Option<AddonRow>> {
        let r = sqlx::query(&format!("SELECT {COLUMNS} FROM addons WHERE name = $1"))
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(query("reading an add-on"))?;
        r.as_ref()
            .map(addon_row)
            .transpose()
            .map_err(query("reading an add-on row"))
    }

    /// Every add-on, by name.
    pub async fn addons(&self) -> Result<Vec<AddonRow>> {
        let rows = sqlx::query(&format!("SELECT {COLUMNS} FROM addons ORDER BY name"))
            .fetch_all(self.pool())
            .await
            .map_err(query("listing add-ons"))?;
        rows.iter()
            .map(addon_row)
            .collect::<std::result::Result<_, _>>()
            .map_err(query("reading an add-on row"))
    }

    /// The attachments of one add-on (`Some`) or of all (`None`), with their apps' names.
    pub async fn addon_attachments(&self, addon: Option<&str>) -> Result<Vec<AttachmentRow>> {
        let sql = format!(
            "SELECT t.addon, t.app_id, a.name AS app, t.var, t.created_at \
             FROM addon_attachments t LEFT JOIN apps a ON a.id = t.app_id {} \
             ORDER BY t.addon, t.created_at, t.app_id",
            if addon.is_some() {
                "WHERE t.addon = $1"
            } else {
                ""
            }
        );
        let mut q = sqlx::query(&sql);
        if let Some(addon) = addon {
            q = q.bind(addon);
        }
        let rows = q
            .fetch_all(self.pool())
            .await
            .map_err(query("listing add-on attachments"))?;
        rows.iter()
            .map(attachment_row)
            .collect::<std::result::Result<_, _>>()
            .map_err(query("reading an add-on attachment row"))
    }

    /// Attaches `addon` to app number `app_id` under `var`; false when it already was.
    pub async fn attach_addon(&self, addon: &str, app_id: u32, var: &str) -> Result<bool> {
        let res = sqlx::query(
            "INSERT INTO addon_attachments (addon, app_id, var, created_at) VALUES ($1, $2, \
             $3, $4)",
        )
        .bind(addon)
        .bind(i64::from(app_id))
        .bind(var)
        .bind(now_rfc3339())
        .execute(self.pool())
        .await;
        match res {
            Ok(_) => Ok(true),
            Err(e) if is_unique_violation(&e) => Ok(false),
            Err(e) => Err(query("attaching an add-on")(e)),
        }
    }

    /// Detaches `addon` from app number `app_id`; false when it was not attached.
    pub async fn detach_addon(&self, addon: &str, app_id: u32) -> Result<bool> {
        let res = sqlx::query("DELETE FROM addon_attachments WHERE addon = $1 AND app_id = $2")
            .bind(addon)
            .bind(i64::from(app_id))
            .execute(self.pool())
            .await
            .map_err(query("detaching an add-on"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Removes an add-on and its attachments.
    pub async fn delete_addon(&self, name: &str) -> Result<()> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(query("starting an add-on delete"))?;
        for sql in [
            "DELETE FROM addon_attachments WHERE addon = $1",
            "DELETE FROM addons WHERE name = $1",
        ] {
            sqlx::query(sql)
                .bind(name)
                .execute(&mut *tx)
                .await
                .map_err(query("deleting an add-on"))?;
        }
        tx.commit()
            .await
            .map_err(query("committing an add-on delete"))?;
        Ok(())
    }

    /// Records where an add-on runs now (the loop's view; every field is written).
    pub async fn update_addon_run(&self, a: &AddonRow) -> Result<()> {
        sqlx::query(
            "UPDATE addons SET node = $2, job_id = $3, state = $4, addr = $5, restarts = $6, \
             last_exit = $7, next_start_ms = $8 WHERE name = $1",
        )
        .bind(&a.name)
        .bind(&a.node)
        .bind(&a.job_id)
        .bind(&a.state)
        .bind(&a.addr)
        .bind(i64::from(a.restarts))
        .bind(&a.last_exit)
        .bind(a.next_start_ms)
        .execute(self.pool())
        .await
        .map_err(query("updating an add-on"))?;
        Ok(())
    }

    /// Records a measurement of the volume of add-on number `id` sent by `node`'s agent:
    /// only the add-on's own node speaks for its data, and an older measurement never
    /// replaces a newer one. False when nothing changed.
    pub async fn record_addon_data(
        &self,
        id: u32,
        node: &str,
        bytes: u64,
        measured_at: &str,
    ) -> Result<bool> {
        let res = sqlx::query(
            "UPDATE addons SET data_bytes = $1, data_measured_at = $2 WHERE id = $3 AND \
             node = $4 AND (data_measured_at IS NULL OR data_measured_at < $2)",
        )
        .bind(bytes.min(i64::MAX as u64) as i64)
        .bind(measured_at)
        .bind(i64::from(id))
        .bind(node)
        .execute(self.pool())
        .await
        .map_err(query("recording an add-on's data size"))?;
        Ok(res.rows_affected() > 0)
    }

    /// The name of the app with permanent number `id`.
    pub async fn app_name_by_id(&self, id: u32) -> Result<Option<String>> {
        let r = sqlx::query("SELECT name FROM apps WHERE id = $1")
            .bind(i64::from(id))
            .fetch_optional(self.pool())
            .await
            .map_err(query("reading an app by number"))?;
        r.map(|r| r.try_get::<String, _>("name"))
            .transpose()
            .map_err(query("reading an app's name"))
    }
}
