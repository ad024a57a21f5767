//! Deleting an app: its row and, by `ON DELETE CASCADE`, its releases, config vars,
//! builds and formations. Its job rows stay until the scheduler has stopped the jobs.

use super::{query, Result, Store, StoreError};

impl Store {
    /// Deletes the app; [`StoreError::NoApp`] when there is none of that name.
    pub async fn delete_app(&self, name: &str) -> Result<()> {
        let res = sqlx::query("DELETE FROM apps WHERE name = $1")
            .bind(name)
            .execute(self.pool())
            .await
            .map_err(query("deleting an app"))?;
        if res.rows_affected() == 0 {
            return Err(StoreError::NoApp(name.to_string()));
        }
        Ok(())
    }
}
