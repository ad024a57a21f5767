//! Formation sizes: the memory limit of each process of an (app, process type), set by
//! `paas ps:resize` and read by the scheduler for the job spec and the memory fit.

use std::collections::HashMap;

use sqlx::Row;

use super::{query, Result, Store, StoreError};

impl Store {
    /// The memory set for each (app, process type) that has one.
    pub async fn formation_memory(&self) -> Result<HashMap<(String, String), u64>> {
        let rows = sqlx::query(
            "SELECT app, process_type, memory_bytes FROM formations \
             WHERE memory_bytes IS NOT NULL",
        )
        .fetch_all(self.pool())
        .await
        .map_err(query("listing formation sizes"))?;
        rows.iter()
            .map(|r| {
                Ok((
                    (r.try_get("app")?, r.try_get("process_type")?),
                    r.try_get::<i64, _>("memory_bytes")?.max(0) as u64,
                ))
            })
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(query("reading a formation size"))
    }

    /// Sets the memory of each process of `app`'s `process_type` (a formation row with
    /// quantity 0 is made when there is none).
    pub async fn set_formation_memory(
        &self,
        app: &str,
        process_type: &str,
        memory_bytes: u64,
    ) -> Result<()> {
        let res = sqlx::query(
            "INSERT INTO formations (app, process_type, count, memory_bytes) \
             VALUES ($1, $2, 0, $3) ON CONFLICT (app, process_type) \
             DO UPDATE SET memory_bytes = excluded.memory_bytes",
        )
        .bind(app)
        .bind(process_type)
        .bind(memory_bytes.min(i64::MAX as u64) as i64)
        .execute(self.pool())
        .await;
        match res {
            Ok(_) => Ok(()),
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                Err(StoreError::NoApp(app.to_string()))
            }
            Err(e) => Err(query("setting a formation size")(e)),
        }
    }
}
