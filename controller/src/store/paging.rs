//! Pages of the long lists, cut by the database (keyset paging: `after` is the key of the
//! last item of the page before, as in the API's `?limit=N&after=KEY`). Callers ask for one
//! more row than they show to learn whether another page follows. An `after` that names
//! no item of the app gives an empty page, as the API's paging contract says.

use super::apps::{app_row, release_row};
use super::work::{build_row, job_row};
use super::{job_state, query, AppRow, BuildRow, JobRow, ReleaseRow, Result, Store};

/// A `LIMIT` bind value.
fn limit_of(limit: u32) -> i64 {
    i64::from(limit)
}

impl Store {
    /// At most `limit` apps by name, after the app `after` when given. `member`: only the
    /// apps that user collaborates on (the filter comes before the cut, so pages are full),
    /// and `after` must be one of them; `None` lists every app (admins).
    pub async fn apps_page(
        &self,
        member: Option<&str>,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<AppRow>> {
        const COLUMNS: &str = "a.name, a.id, a.created_at, a.current_release";
        let rows = match (member, after) {
            (None, None) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM apps a ORDER BY a.name LIMIT $1"
                ))
                .bind(limit_of(limit))
                .fetch_all(self.pool())
                .await
            }
            (None, Some(key)) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM apps a WHERE a.name > $1 AND EXISTS \
                     (SELECT 1 FROM apps k WHERE k.name = $2) ORDER BY a.name LIMIT $3"
                ))
                .bind(key)
                .bind(key)
                .bind(limit_of(limit))
                .fetch_all(self.pool())
                .await
            }
            (Some(user), None) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM apps a JOIN app_collaborators c ON c.app = a.name \
                     WHERE c.user_name = $1 ORDER BY a.name LIMIT $2"
                ))
                .bind(user)
                .bind(limit_of(limit))
                .fetch_all(self.pool())
                .await
            }
            (Some(user), Some(key)) => {
                sqlx::query(&format!(
                    "SELECT {COLUMNS} FROM apps a JOIN app_collaborators c ON c.app = a.name \
                     WHERE c.user_name = $1 AND a.name > $2 AND EXISTS (SELECT 1 FROM \
                     app_collaborators k WHERE k.user_name = $3 AND k.app = $4) \
                     ORDER BY a.name LIMIT $5"
                ))
                .bind(user)
                .bind(key)
                .bind(user)
                .bind(key)
                .bind(limit_of(limit))
                .fetch_all(self.pool())
                .await
            }
        }
        .map_err(query("listing a page of apps"))?;
        rows.iter()
            .map(app_row)
            .collect::<std::result::Result<_, _>>()
            .map_err(query("reading an app row"))
    }

    /// At most `limit` releases of `app`, newest first, older than release `after` (which
    /// must exist) when given.
    pub async fn releases_page(
        &self,
        app: &str,
        after: Option<u32>,
        limit: u32,
    ) -> Result<Vec<ReleaseRow>> {
        let rows = match after {
            None => {
                sqlx::query("SELECT * FROM releases WHERE app = $1 ORDER BY version DESC LIMIT $2")
                    .bind(app)
                    .bind(limit_of(limit))
                    .fetch_all(self.pool())
                    .await
            }
            Some(v) => {
                sqlx::query(
                    "SELECT * FROM releases WHERE app = $1 AND version < $2 AND EXISTS \
                     (SELECT 1 FROM releases k WHERE k.app = $3 AND k.version = $4) \
                     ORDER BY version DESC LIMIT $5",
                )
                .bind(app)
                .bind(i64::from(v))
                .bind(app)
                .bind(i64::from(v))
                .bind(limit_of(limit))
                .fetch_all(self.pool())
                .await
            }
        }
        .map_err(query("listing a page of releases"))?;
        rows.iter().map(release_row).collect()
    }

    /// At most `limit` builds of `app`, newest first (by start time, then id), after the
    /// build `after` of the same app when given.
    pub async fn builds_page(
        &self,
        app: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<BuildRow>> {
        let rows = match after {
            None => {
                sqlx::query(
                    "SELECT * FROM builds WHERE app = $1 \
                     ORDER BY created_at DESC, id DESC LIMIT $2",
                )
                .bind(app)
                .bind(limit_of(limit))
                .fetch_all(self.pool())
                .await
            }
            Some(id) => {
                sqlx::query(
                    "SELECT b.* FROM builds b JOIN builds k ON k.app = b.app AND k.id = $1 \
                     WHERE b.app = $2 AND (b.created_at < k.created_at \
                     OR (b.created_at = k.created_at AND b.id < k.id)) \
                     ORDER BY b.created_at DESC, b.id DESC LIMIT $3",
                )
                .bind(id)
                .bind(app)
                .bind(limit_of(limit))
                .fetch_all(self.pool())
                .await
            }
        }
        .map_err(query("listing a page of builds"))?;
        rows.iter()
            .map(build_row)
            .collect::<std::result::Result<_, _>>()
            .map_err(query("reading a build row"))
    }

    /// At most `limit` of `app`'s jobs not yet removed from their nodes, by process type
    /// then id, after the job `after` of the same app when given (a job removed since
    /// still marks the place).
    pub async fn jobs_page(
        &self,
        app: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<JobRow>> {
        let rows = match after {
            None => {
                sqlx::query(
                    "SELECT * FROM jobs WHERE app = $1 AND state != $2 \
                     ORDER BY process_type, id LIMIT $3",
                )
                .bind(app)
                .bind(job_state::REMOVED)
                .bind(limit_of(limit))
                .fetch_all(self.pool())
                .await
            }
            Some(id) => {
                sqlx::query(
                    "SELECT j.* FROM jobs j JOIN jobs k ON k.app = j.app AND k.id = $1 \
                     WHERE j.app = $2 AND j.state != $3 AND (j.process_type > k.process_type \
                     OR (j.process_type = k.process_type AND j.id > k.id)) \
                     ORDER BY j.process_type, j.id LIMIT $4",
                )
                .bind(id)
                .bind(app)
                .bind(job_state::REMOVED)
                .bind(limit_of(limit))
                .fetch_all(self.pool())
                .await
            }
        }
        .map_err(query("listing a page of jobs"))?;
        rows.iter()
            .map(job_row)
            .collect::<std::result::Result<_, _>>()
            .map_err(query("reading a job row"))
    }
}
