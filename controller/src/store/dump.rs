//! A portable dump of every table (for `paas-controller backup` / `restore`): rows as JSON
//! values (integers, floats, text, booleans, NULL), read in one transaction (a consistent
//! snapshot on both engines) and loaded into a freshly migrated, empty store of either
//! engine — so a backup of a SQLite controller restores into PostgreSQL too.
//!
//! Loading inserts table by table; a table whose rows reference one not loaded yet (a
//! foreign key violation) is retried after the others, so no table order is hard-coded and
//! tables added by later migrations need nothing here. NULL values are left out of each
//! INSERT (the column's default NULL applies): a typed NULL cannot be bound portably.

use serde::{Deserialize, Serialize};
use sqlx::{Column, Row};

use super::{query, Backend, Result, Store, StoreError};

/// One table's rows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TableDump {
    pub name: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<serde_json::Value>>,
}

/// The migrations bookkeeping table of sqlx: made by the migrations, never dumped.
const MIGRATIONS_TABLE: &str = "_sqlx_migrations";

impl Store {
    /// The names of the store's own tables.
    async fn table_names(&self) -> Result<Vec<String>> {
        let sql = match self.backend {
            Backend::Sqlite => {
                "SELECT name FROM sqlite_master WHERE type = 'table' \
                 AND name NOT LIKE 'sqlite_%' ORDER BY name"
            }
            Backend::Postgres => {
                "SELECT tablename::text AS name FROM pg_tables \
                 WHERE schemaname = current_schema() ORDER BY tablename"
            }
        };
        let names: Vec<String> = sqlx::query_scalar(sql)
            .fetch_all(self.pool())
            .await
            .map_err(query("listing tables"))?;
        Ok(names
            .into_iter()
            .filter(|n| n != MIGRATIONS_TABLE)
            .collect())
    }

    /// The newest migration applied to this store (0 when none).
    pub async fn schema_version(&self) -> Result<i64> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT MAX(version) FROM _sqlx_migrations WHERE success = $1")
                .bind(true)
                .fetch_one(self.pool())
                .await
                .map_err(query("reading the schema version"))?;
        Ok(v.unwrap_or(0))
    }

    /// Every row of every table, from one consistent snapshot.
    pub async fn dump(&self) -> Result<Vec<TableDump>> {
        let names = self.table_names().await?;
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(query("starting the dump"))?;
        if self.backend == Backend::Postgres {
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await
                .map_err(query("starting the dump snapshot"))?;
        }
        let mut out = Vec::new();
        for name in names {
            let rows = sqlx::query(&format!("SELECT * FROM {}", quote(&name)))
                .fetch_all(&mut *tx)
                .await
                .map_err(query("dumping a table"))?;
            let columns: Vec<String> = match rows.first() {
                Some(r) => r.columns().iter().map(|c| c.name().to_string()).collect(),
                None => Vec::new(),
            };
            let mut values = Vec::with_capacity(rows.len());
            for r in &rows {
                let mut row = Vec::with_capacity(columns.len());
                for (i, column) in columns.iter().enumerate() {
                    row.push(value(r, i).map_err(|why| StoreError::Corrupt {
                        what: "a dumped value",
                        why: format!("{name}.{column}: {why}"),
                    })?);
                }
                values.push(row);
            }
            out.push(TableDump {
                name,
                columns,
                rows: values,
            });
        }
        tx.commit().await.map_err(query("ending the dump"))?;
        Ok(out)
    }

    /// True when no table of the store has a row.
    pub async fn is_empty(&self) -> Result<bool> {
        for name in self.table_names().await? {
            let n: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {}", quote(&name)))
                .fetch_one(self.pool())
                .await
                .map_err(query("counting rows"))?;
            if n > 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Inserts dumped rows (into an empty store of the same or an older schema).
    pub async fn load(&self, tables: &[TableDump]) -> Result<()> {
        let mut pending: Vec<&TableDump> = tables.iter().filter(|t| !t.rows.is_empty()).collect();
        while !pending.is_empty() {
            let mut later = Vec::new();
            let mut last_error = None;
            for t in &pending {
                match self.load_table(t).await {
                    Ok(()) => {}
                    Err(e) if is_fk_error(&e) => {
                        later.push(*t);
                        last_error = Some(e);
                    }
                    Err(e) => return Err(e),
                }
            }
            if later.len() == pending.len() {
                // No table could go in: the references cannot be met.
                return Err(last_error.unwrap_or(StoreError::Corrupt {
                    what: "a backup",
                    why: "its tables reference each other in a cycle".into(),
                }));
            }
            pending = later;
        }
        Ok(())
    }

    async fn load_table(&self, t: &TableDump) -> Result<()> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(query("starting a restore"))?;
        for row in &t.rows {
            let present: Vec<(usize, &serde_json::Value)> = row
                .iter()
                .enumerate()
                .filter(|(_, v)| !v.is_null())
                .collect();
            let cols: Vec<String> = present.iter().map(|(i, _)| quote(&t.columns[*i])).collect();
            let params: Vec<String> = (1..=present.len()).map(|n| format!("${n}")).collect();
            let sql = format!(
                "INSERT INTO {} ({}) VALUES ({})",
                quote(&t.name),
                cols.join(", "),
                params.join(", ")
            );
            let mut q = sqlx::query(&sql);
            for (_, v) in &present {
                q = match v {
                    serde_json::Value::Bool(b) => q.bind(*b),
                    serde_json::Value::Number(n) => match n.as_i64() {
                        Some(i) => q.bind(i),
                        None => q.bind(n.as_f64().unwrap_or(0.0)),
                    },
                    serde_json::Value::String(s) => q.bind(s.clone()),
                    other => q.bind(other.to_string()),
                };
            }
            q.execute(&mut *tx)
                .await
                .map_err(query("restoring a row"))?;
        }
        tx.commit().await.map_err(query("restoring a table"))?;
        Ok(())
    }
}

fn is_fk_error(e: &StoreError) -> bool {
    matches!(e, StoreError::Query { source: sqlx::Error::Database(db), .. }
        if db.is_foreign_key_violation())
}

/// A table or column name as a quoted SQL identifier.
fn quote(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// One value of a row as JSON.
fn value(row: &super::Row, i: usize) -> std::result::Result<serde_json::Value, String> {
    use serde_json::Value;
    if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
        return Ok(v.map_or(Value::Null, Value::from));
    }
    if let Ok(v) = row.try_get::<Option<String>, _>(i) {
        return Ok(v.map_or(Value::Null, Value::from));
    }
    if let Ok(v) = row.try_get::<Option<bool>, _>(i) {
        return Ok(v.map_or(Value::Null, Value::from));
    }
    if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
        return Ok(v.map_or(Value::Null, Value::from));
    }
    Err("a type the dump does not handle (use BIGINT, TEXT, BOOLEAN or DOUBLE)".into())
}
