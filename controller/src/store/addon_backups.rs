//! Backups of PostgreSQL add-ons (migration 0023): one row per `pg_dump`, naming the add-on
//! (by name and permanent number) and its owner app (by number, so a rename keeps them),
//! with the dump's size and state. The dump is a file of the data dir
//! (written by the add-ons' backup code); these rows only describe it. A daily schedule per add-on
//! (`pg:backups:schedule`) is a row of `addon_backup_schedules`.

use sqlx::Row;

use super::{query, Result, Store};

/// The states of a backup row.
pub mod backup_state {
    pub const RUNNING: &str = "running";
    pub const COMPLETED: &str = "completed";
    pub const FAILED: &str = "failed";
}

/// One backup as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupRow {
    /// `b` and 12 hex digits.
    pub id: String,
    pub addon: String,
    pub addon_id: u32,
    pub app_id: u32,
    pub size_bytes: u64,
    /// `running`, `completed` or `failed`.
    pub state: String,
    /// Taken by the daily schedule (only these are pruned by its retention count).
    pub scheduled: bool,
    /// Why it failed (pg_dump's own words), for `failed`.
    pub error: Option<String>,
    pub created_at: String,
    pub finished_at: Option<String>,
}

const COLUMNS: &str =
    "id, addon, addon_id, app_id, size_bytes, state, scheduled, error, created_at, finished_at";

fn backup_row(r: &super::Row) -> std::result::Result<BackupRow, sqlx::Error> {
    Ok(BackupRow {
        id: r.try_get("id")?,
        addon: r.try_get("addon")?,
        addon_id: r.try_get::<i64, _>("addon_id")? as u32,
        app_id: r.try_get::<i64, _>("app_id")? as u32,
        size_bytes: r.try_get::<i64, _>("size_bytes")?.max(0) as u64,
        state: r.try_get("state")?,
        scheduled: r.try_get::<i64, _>("scheduled")? != 0,
        error: r.try_get("error")?,
        created_at: r.try_get("created_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

impl Store {
    /// Records a new backup (state `running`).
    pub async fn insert_backup(&self, b: &BackupRow) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO addon_backups ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
        ))
        .bind(&b.id)
        .bind(&b.addon)
        .bind(i64::from(b.addon_id))
        .bind(i64::from(b.app_id))
        .bind(b.size_bytes as i64)
        .bind(&b.state)
        .bind(i64::from(b.scheduled))
        .bind(&b.error)
        .bind(&b.created_at)
        .bind(&b.finished_at)
        .execute(self.pool())
        .await
        .map_err(query("recording a backup"))?;
        Ok(())
    }

    /// Records how a backup ended.
    pub async fn finish_backup(
        &self,
        id: &str,
        state: &str,
        size_bytes: u64,
        error: Option<&str>,
        finished_at: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE addon_backups SET state = $2, size_bytes = $3, error = $4, finished_at = $5 \
             WHERE id = $1",
        )
        .bind(id)
        .bind(state)
        .bind(size_bytes as i64)
        .bind(error)
        .bind(finished_at)
        .execute(self.pool())
        .await
        .map_err(query("finishing a backup"))?;
        Ok(())
    }

    /// One backup.
    pub async fn backup(&self, id: &str) -> Result<Option<BackupRow>> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM addon_backups WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(self.pool())
        .await
        .map_err(query("reading a backup"))?;
        row.as_ref()
            .map(backup_row)
            .transpose()
            .map_err(query("reading a backup"))
    }

    /// The backups of add-on `addon`, oldest first.
    pub async fn backups_of(&self, addon: &str) -> Result<Vec<BackupRow>> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM addon_backups WHERE addon = $1 ORDER BY created_at, id"
        ))
        .bind(addon)
        .fetch_all(self.pool())
        .await
        .map_err(query("listing backups"))?;
        rows.iter()
            .map(backup_row)
            .collect::<std::result::Result<_, _>>()
            .map_err(query("listing backups"))
    }

    /// Forgets one backup (its file is the caller's to remove).
    pub async fn delete_backup(&self, id: &str) -> Result<()> {
        sqlx::query("DELETE FROM addon_backups WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(query("deleting a backup"))?;
        Ok(())
    }

    /// The daily schedules, every add-on's.
    pub async fn backup_schedules(&self) -> Result<Vec<ScheduleRow>> {
        let rows = sqlx::query(
            "SELECT addon, at_minute, keep, last_run_ms FROM addon_backup_schedules ORDER BY addon",
        )
        .fetch_all(self.pool())
        .await
        .map_err(query("listing backup schedules"))?;
        rows.iter()
            .map(|r| {
                Ok(ScheduleRow {
                    addon: r.try_get("addon")?,
                    at_minute: r.try_get::<i64, _>("at_minute")? as u32,
                    keep: r.try_get::<i64, _>("keep")? as u32,
                    last_run_ms: r.try_get("last_run_ms")?,
                })
            })
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(query("listing backup schedules"))
    }

    /// Sets (or replaces) the daily schedule of an add-on; a new time keeps `last_run_ms`.
    pub async fn set_backup_schedule(&self, s: &ScheduleRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO addon_backup_schedules (addon, at_minute, keep, last_run_ms) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (addon) DO UPDATE SET at_minute = excluded.at_minute, keep = excluded.keep",
        )
        .bind(&s.addon)
        .bind(i64::from(s.at_minute))
        .bind(i64::from(s.keep))
        .bind(s.last_run_ms)
        .execute(self.pool())
        .await
        .map_err(query("setting a backup schedule"))?;
        Ok(())
    }

    /// Records that the schedule of `addon` started a backup at `ms`.
    pub async fn schedule_ran(&self, addon: &str, ms: i64) -> Result<()> {
        sqlx::query("UPDATE addon_backup_schedules SET last_run_ms = $2 WHERE addon = $1")
            .bind(addon)
            .bind(ms)
            .execute(self.pool())
            .await
            .map_err(query("recording a scheduled backup"))?;
        Ok(())
    }

    /// Removes the schedule of `addon` (true if there was one).
    pub async fn delete_backup_schedule(&self, addon: &str) -> Result<bool> {
        let done = sqlx::query("DELETE FROM addon_backup_schedules WHERE addon = $1")
            .bind(addon)
            .execute(self.pool())
            .await
            .map_err(query("removing a backup schedule"))?;
        Ok(done.rows_affected() > 0)
    }
}

/// A daily backup schedule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduleRow {
    pub addon: String,
    /// Minutes after 00:00 UTC.
    pub at_minute: u32,
    /// How many scheduled backups to keep.
    pub keep: u32,
    /// When it last started a backup (Unix ms; 0 = never).
    pub last_run_ms: i64,
}
