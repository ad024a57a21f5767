//! Deleting an app: its row and, by `ON DELETE CASCADE`, its releases, config vars,
//! builds, formations, domains, collaborators, certificates, ACME state and the rest. Its
//! job rows (no foreign key: the scheduler still has to stop the jobs) move to a name no app
//! can have ([`destroyed_name`]) in the same transaction, so an app made later under the
//! same name never sees them: not as its jobs, not in its logs, not in its routes.

use super::{query, Result, Store, StoreError};

/// What a destroyed app's job rows are filed under: `<app>~destroyed-<id>` (`~` is never
/// in an app name, and the number is never given twice).
pub fn destroyed_name(app: &str, id: u32) -> String {
    format!("{app}~destroyed-{id}")
}

impl Store {
    /// Deletes the app and files its job rows under [`destroyed_name`];
    /// [`StoreError::NoApp`] when there is none of that name.
    pub async fn delete_app(&self, name: &str) -> Result<()> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(query("starting a destroy"))?;
        // The write comes first, so SQLite takes its write lock at once.
        let id: Option<Option<i64>> =
            sqlx::query_scalar("DELETE FROM apps WHERE name = $1 RETURNING id")
                .bind(name)
                .fetch_optional(&mut *tx)
                .await
                .map_err(query("deleting an app"))?;
        let Some(id) = id else {
            return Err(StoreError::NoApp(name.to_string()));
        };
        sqlx::query("UPDATE jobs SET app = $2 WHERE app = $1")
            .bind(name)
            .bind(destroyed_name(name, id.unwrap_or(0) as u32))
            .execute(&mut *tx)
            .await
            .map_err(query("filing a destroyed app's jobs"))?;
        tx.commit().await.map_err(query("committing a destroy"))?;
        Ok(())
    }
}
