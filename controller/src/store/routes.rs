//! The router's last route table (migration 0008, one row): the controller saves it when it
//! changes, a restarted router loads it at start and a separate router process
//! (`paas-controller router`) polls it. The table is stored as JSON text; `version` grows by
//! one with each change, so a poller reads the JSON only when it moved.

use sqlx::Row;

use super::{query, Result, Store};

impl Store {
    /// Saves the route table's JSON; the row (and its version) only changes when the JSON
    /// did.
    pub async fn save_routes(&self, json: &str, now_ms: i64) -> Result<()> {
        sqlx::query(
            "INSERT INTO router_routes (id, version, routes, updated_ms) VALUES (1, 1, $1, $2) \
             ON CONFLICT (id) DO UPDATE SET version = router_routes.version + 1, \
             routes = excluded.routes, updated_ms = excluded.updated_ms \
             WHERE router_routes.routes <> excluded.routes",
        )
        .bind(json)
        .bind(now_ms)
        .execute(self.pool())
        .await
        .map_err(query("saving the route table"))?;
        Ok(())
    }

    /// The version of the saved table (None: never saved).
    pub async fn routes_version(&self) -> Result<Option<i64>> {
        let r = sqlx::query("SELECT version FROM router_routes WHERE id = 1")
            .fetch_optional(self.pool())
            .await
            .map_err(query("reading the route table version"))?;
        r.map(|r| r.try_get("version"))
            .transpose()
            .map_err(query("reading the route table version"))
    }

    /// The saved table: (version, JSON).
    pub async fn load_routes(&self) -> Result<Option<(i64, String)>> {
        let r = sqlx::query("SELECT version, routes FROM router_routes WHERE id = 1")
            .fetch_optional(self.pool())
            .await
            .map_err(query("reading the route table"))?;
        r.map(|r| Ok((r.try_get("version")?, r.try_get("routes")?)))
            .transpose()
            .map_err(query("reading the route table"))
    }
}
