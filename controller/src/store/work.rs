//! Builds, jobs and nodes: the moving parts.

use sqlx::Row;

use super::{job_state, query, BuildRow, JobRow, NodeRow, Result, Store, StoreError};
use crate::util::now_rfc3339;

pub(super) fn build_row(r: &super::Row) -> std::result::Result<BuildRow, sqlx::Error> {
    Ok(BuildRow {
        id: r.try_get("id")?,
        app: r.try_get("app")?,
        status: r.try_get("status")?,
        source_version: r.try_get("source_version")?,
        release: r.try_get::<Option<i64>, _>("release")?.map(|v| v as u32),
        log: r.try_get("log")?,
        created_at: r.try_get("created_at")?,
        finished_at: r.try_get("finished_at")?,
    })
}

pub(super) fn job_row(r: &super::Row) -> std::result::Result<JobRow, sqlx::Error> {
    Ok(JobRow {
        id: r.try_get("id")?,
        app: r.try_get("app")?,
        release: r.try_get::<i64, _>("release")? as u32,
        process_type: r.try_get("process_type")?,
        node: r.try_get("node")?,
        state: r.try_get("state")?,
        addr: r.try_get("addr")?,
        exit_reason: r.try_get("exit_reason")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

fn node_row(r: &super::Row) -> std::result::Result<NodeRow, sqlx::Error> {
    Ok(NodeRow {
        name: r.try_get("name")?,
        url: r.try_get("url")?,
        memory_bytes: r.try_get::<i64, _>("memory_bytes")?.max(0) as u64,
        last_seen_ms: r.try_get("last_seen_ms")?,
    })
}

/// Now as RFC 3339 UTC with milliseconds (`2024-05-01T12:00:00.123Z`): builds are listed
/// newest first by `created_at`, and several builds of one app can start within a second
/// (there is no portable insertion order to break the tie).
fn now_rfc3339_ms() -> String {
    let ms = crate::util::unix_ms();
    let secs = crate::util::rfc3339_from_ms(ms);
    format!("{}.{:03}Z", secs.trim_end_matches('Z'), ms.rem_euclid(1000))
}

impl Store {
    /// Records a new build in state `building`.
    pub async fn create_build(
        &self,
        id: &str,
        app: &str,
        source_version: Option<&str>,
    ) -> Result<BuildRow> {
        let created_at = now_rfc3339_ms();
        sqlx::query(
            "INSERT INTO builds (id, app, status, source_version, created_at) \
             VALUES ($1, $2, 'building', $3, $4)",
        )
        .bind(id)
        .bind(app)
        .bind(source_version)
        .bind(&created_at)
        .execute(self.pool())
        .await
        .map_err(|e| match e {
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                StoreError::NoApp(app.to_string())
            }
            e => query("creating a build")(e),
        })?;
        Ok(BuildRow {
            id: id.to_string(),
            app: app.to_string(),
            status: "building".into(),
            source_version: source_version.map(str::to_string),
            release: None,
            log: String::new(),
            created_at,
            finished_at: None,
        })
    }

    /// Ends a build: `succeeded` (with the release it made) or `failed`, with its output.
    pub async fn finish_build(
        &self,
        id: &str,
        status: &str,
        release: Option<u32>,
        log: &str,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE builds SET status = $1, release = $2, log = $3, finished_at = $4 WHERE id = $5",
        )
        .bind(status)
        .bind(release.map(i64::from))
        .bind(log)
        .bind(now_rfc3339())
        .bind(id)
        .execute(self.pool())
        .await
        .map_err(query("finishing a build"))?;
        Ok(())
    }

    /// The builds of an app, newest first.
    pub async fn list_builds(&self, app: &str) -> Result<Vec<BuildRow>> {
        let rows =
            sqlx::query("SELECT * FROM builds WHERE app = $1 ORDER BY created_at DESC, id DESC")
                .bind(app)
                .fetch_all(self.pool())
                .await
                .map_err(query("listing builds"))?;
        rows.iter()
            .map(build_row)
            .collect::<std::result::Result<_, _>>()
            .map_err(query("reading a build row"))
    }

    pub async fn get_build(&self, id: &str) -> Result<Option<BuildRow>> {
        let row = sqlx::query("SELECT * FROM builds WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await
            .map_err(query("reading a build"))?;
        row.as_ref()
            .map(build_row)
            .transpose()
            .map_err(query("reading a build row"))
    }

    /// Writes a new job row (state `pending` unless the row says otherwise).
    pub async fn insert_job(&self, job: &JobRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO jobs (id, app, release, process_type, node, state, addr, exit_reason, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&job.id)
        .bind(&job.app)
        .bind(job.release as i64)
        .bind(&job.process_type)
        .bind(&job.node)
        .bind(&job.state)
        .bind(&job.addr)
        .bind(&job.exit_reason)
        .bind(&job.created_at)
        .bind(&job.updated_at)
        .execute(self.pool())
        .await
        .map_err(query("storing a job"))?;
        Ok(())
    }

    /// Updates a job's state, address and exit reason. A removed job stays removed (a
    /// scheduler task that read it before a node removal must not bring it back); only
    /// [`Store::upsert_job`], adopting a job an agent reports, revives one.
    pub async fn update_job(
        &self,
        id: &str,
        state: &str,
        addr: Option<&str>,
        exit_reason: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET state = $1, addr = $2, exit_reason = COALESCE($3, exit_reason), \
             updated_at = $4 WHERE id = $5 AND state != $6",
        )
        .bind(state)
        .bind(addr)
        .bind(exit_reason)
        .bind(now_rfc3339())
        .bind(id)
        .bind(job_state::REMOVED)
        .execute(self.pool())
        .await
        .map_err(query("updating a job"))?;
        Ok(())
    }

    /// Sets a job's state (and exit reason, when given) without touching its address. As
    /// [`Store::update_job`], a removed job stays removed.
    pub async fn set_job_state(
        &self,
        id: &str,
        state: &str,
        exit_reason: Option<&str>,
    ) -> Result<()> {
        sqlx::query(
            "UPDATE jobs SET state = $1, exit_reason = COALESCE($2, exit_reason), updated_at = $3 \
             WHERE id = $4 AND state != $5",
        )
        .bind(state)
        .bind(exit_reason)
        .bind(now_rfc3339())
        .bind(id)
        .bind(job_state::REMOVED)
        .execute(self.pool())
        .await
        .map_err(query("updating a job's state"))?;
        Ok(())
    }

    /// Writes a job row, or updates the state and address of an existing one (a job an
    /// agent reports that the store had given up on).
    pub async fn upsert_job(&self, job: &JobRow) -> Result<()> {
        sqlx::query(
            "INSERT INTO jobs (id, app, release, process_type, node, state, addr, exit_reason, \
             created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT (id) DO UPDATE SET state = excluded.state, addr = excluded.addr, \
             node = excluded.node, updated_at = excluded.updated_at",
        )
        .bind(&job.id)
        .bind(&job.app)
        .bind(job.release as i64)
        .bind(&job.process_type)
        .bind(&job.node)
        .bind(&job.state)
        .bind(&job.addr)
        .bind(&job.exit_reason)
        .bind(&job.created_at)
        .bind(&job.updated_at)
        .execute(self.pool())
        .await
        .map_err(query("storing an adopted job"))?;
        Ok(())
    }

    /// Every job not yet removed from its node.
    pub async fn active_jobs(&self) -> Result<Vec<JobRow>> {
        let rows = sqlx::query("SELECT * FROM jobs WHERE state != $1 ORDER BY created_at, id")
            .bind(job_state::REMOVED)
            .fetch_all(self.pool())
            .await
            .map_err(query("listing jobs"))?;
        rows.iter()
            .map(job_row)
            .collect::<std::result::Result<_, _>>()
            .map_err(query("reading a job row"))
    }

    /// The jobs of one release of an app, removed ones included, newest first.
    pub async fn release_jobs(&self, app: &str, release: u32) -> Result<Vec<JobRow>> {
        let rows = sqlx::query(
            "SELECT * FROM jobs WHERE app = $1 AND release = $2 ORDER BY created_at DESC, id",
        )
        .bind(app)
        .bind(release as i64)
        .fetch_all(self.pool())
        .await
        .map_err(query("listing a release's jobs"))?;
        rows.iter()
            .map(job_row)
            .collect::<std::result::Result<_, _>>()
            .map_err(query("reading a job row"))
    }

    /// Records a heartbeat: the node's URL and memory, seen at `now_ms`.
    pub async fn upsert_node(
        &self,
        name: &str,
        url: &str,
        memory_bytes: u64,
        now_ms: i64,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO nodes (name, url, memory_bytes, last_seen_ms) VALUES ($1, $2, $3, $4) \
             ON CONFLICT (name) DO UPDATE SET url = excluded.url, \
             memory_bytes = excluded.memory_bytes, last_seen_ms = excluded.last_seen_ms",
        )
        .bind(name)
        .bind(url)
        .bind(memory_bytes.min(i64::MAX as u64) as i64)
        .bind(now_ms)
        .execute(self.pool())
        .await
        .map_err(query("recording a heartbeat"))?;
        Ok(())
    }

    /// Every node, by name.
    pub async fn list_nodes(&self) -> Result<Vec<NodeRow>> {
        let rows = sqlx::query("SELECT * FROM nodes ORDER BY name")
            .fetch_all(self.pool())
            .await
            .map_err(query("listing nodes"))?;
        rows.iter()
            .map(node_row)
            .collect::<std::result::Result<_, _>>()
            .map_err(query("reading a node row"))
    }
}
