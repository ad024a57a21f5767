//! The scheduler's columns (migration 0005): draining nodes and the restart count and last
//! crash of each job. (`nodes.subnet` is reserved for controller-allocated node subnets.)
//! Also removing a node (`DELETE /v1/nodes/{name}`).

use std::collections::{BTreeSet, HashMap};

use sqlx::Row;

use super::{query, Result, Store};

/// How often a job's process type had crashed in a row when the job was started, and why
/// the last of those crashes happened.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restarts {
    pub restarts: u32,
    pub last_exit: Option<String>,
}

impl Store {
    /// Marks a node draining (or not). False when no such node is known.
    pub async fn set_node_draining(&self, name: &str, draining: bool) -> Result<bool> {
        let res = sqlx::query("UPDATE nodes SET draining = $1 WHERE name = $2")
            .bind(i64::from(draining))
            .bind(name)
            .execute(self.pool())
            .await
            .map_err(query("draining a node"))?;
        Ok(res.rows_affected() > 0)
    }

    /// Forgets node `name`: its row (URL, agent credential, subnet, drain mark) goes, and
    /// the jobs the store still places there are marked removed. None when there is no
    /// such node, else how many jobs were marked.
    pub async fn remove_node(&self, name: &str) -> Result<Option<u64>> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(query("removing a node"))?;
        let gone = sqlx::query("DELETE FROM nodes WHERE name = $1")
            .bind(name)
            .execute(&mut *tx)
            .await
            .map_err(query("removing a node"))?;
        if gone.rows_affected() == 0 {
            return Ok(None);
        }
        let jobs = sqlx::query(
            "UPDATE jobs SET state = $1, exit_reason = $2, updated_at = $3 \
             WHERE node = $4 AND state != $5",
        )
        .bind(super::job_state::REMOVED)
        .bind("its node was removed")
        .bind(crate::util::now_rfc3339())
        .bind(name)
        .bind(super::job_state::REMOVED)
        .execute(&mut *tx)
        .await
        .map_err(query("removing a node's jobs"))?;
        tx.commit().await.map_err(query("removing a node"))?;
        Ok(Some(jobs.rows_affected()))
    }

    /// The names of the draining nodes.
    pub async fn draining_nodes(&self) -> Result<BTreeSet<String>> {
        let rows = sqlx::query("SELECT name FROM nodes WHERE draining != 0")
            .fetch_all(self.pool())
            .await
            .map_err(query("listing draining nodes"))?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("name"))
            .collect::<std::result::Result<_, _>>()
            .map_err(query("reading a node name"))
    }

    /// The node's subnet: the one it already has, else the first /24 of `blocks` that no
    /// node holds (recorded at once, creating the node's row if it has not heartbeated
    /// yet). None when every block is taken.
    pub async fn allocate_subnet(&self, name: &str, blocks: &[String]) -> Result<Option<String>> {
        let mut tx = self
            .pool()
            .begin()
            .await
            .map_err(query("allocating a subnet"))?;
        let rows = sqlx::query("SELECT name, subnet FROM nodes WHERE subnet IS NOT NULL")
            .fetch_all(&mut *tx)
            .await
            .map_err(query("listing node subnets"))?;
        let mut taken = BTreeSet::new();
        for r in &rows {
            let node: String = r.try_get("name").map_err(query("reading a node"))?;
            let subnet: String = r.try_get("subnet").map_err(query("reading a subnet"))?;
            if node == name {
                return Ok(Some(subnet));
            }
            taken.insert(subnet);
        }
        let Some(free) = blocks.iter().find(|b| !taken.contains(*b)) else {
            return Ok(None);
        };
        sqlx::query(
            "INSERT INTO nodes (name, url, memory_bytes, last_seen_ms, subnet) \
             VALUES ($1, '', 0, 0, $2) ON CONFLICT (name) DO UPDATE SET subnet = excluded.subnet",
        )
        .bind(name)
        .bind(free)
        .execute(&mut *tx)
        .await
        .map_err(query("recording a node subnet"))?;
        tx.commit().await.map_err(query("allocating a subnet"))?;
        Ok(Some(free.clone()))
    }

    /// Records a job's restart count and the reason of the crash before it.
    pub async fn set_job_restarts(&self, id: &str, r: &Restarts) -> Result<()> {
        sqlx::query("UPDATE jobs SET restarts = $1, last_exit = $2 WHERE id = $3")
            .bind(i64::from(r.restarts))
            .bind(&r.last_exit)
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(query("recording a job's restarts"))?;
        Ok(())
    }

    /// Keeps the end of a job's output (see [`last_lines`]).
    pub async fn set_job_log(&self, id: &str, log: &str) -> Result<()> {
        sqlx::query("UPDATE jobs SET last_log = $1 WHERE id = $2")
            .bind(log)
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(query("keeping a job's output"))?;
        Ok(())
    }

    /// The kept output of the app's most recently removed jobs, oldest first:
    /// (id, process type, removed at, output).
    pub async fn removed_job_logs(
        &self,
        app: &str,
        limit: u32,
    ) -> Result<Vec<(String, String, String, String)>> {
        let rows = sqlx::query(
            "SELECT id, process_type, updated_at, last_log FROM jobs \
             WHERE app = $1 AND state = 'removed' AND last_log IS NOT NULL AND last_log != '' \
             ORDER BY updated_at DESC, id LIMIT $2",
        )
        .bind(app)
        .bind(i64::from(limit))
        .fetch_all(self.pool())
        .await
        .map_err(query("listing removed jobs' output"))?;
        let mut out = rows
            .iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    r.try_get("process_type")?,
                    r.try_get("updated_at")?,
                    r.try_get("last_log")?,
                ))
            })
            .collect::<std::result::Result<Vec<_>, sqlx::Error>>()
            .map_err(query("reading removed jobs' output"))?;
        out.reverse();
        Ok(out)
    }

    /// Job id → restarts, for the jobs of an app (removed ones included).
    pub async fn job_restarts(&self, app: &str) -> Result<HashMap<String, Restarts>> {
        let rows = sqlx::query("SELECT id, restarts, last_exit FROM jobs WHERE app = $1")
            .bind(app)
            .fetch_all(self.pool())
            .await
            .map_err(query("listing job restarts"))?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("id")?,
                    Restarts {
                        restarts: r.try_get::<i64, _>("restarts")?.max(0) as u32,
                        last_exit: r.try_get("last_exit")?,
                    },
                ))
            })
            .collect::<std::result::Result<_, sqlx::Error>>()
            .map_err(query("reading job restarts"))
    }
}

/// The last `n` lines of `text` (what is kept of a removed job's output).
pub fn last_lines(text: &str, n: usize) -> String {
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}
