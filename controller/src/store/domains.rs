//! Custom domains of apps (migration 0004): `hostname → app`, unique across apps.

use sqlx::Row;

use super::{is_unique_violation, query, Result, Store};
use crate::util::now_rfc3339;

/// One custom domain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DomainRow {
    pub hostname: String,
    pub app: String,
    pub created_at: String,
}

/// What `add_domain` did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DomainAdded {
    Added(DomainRow),
    /// The host name already belongs to this app (adding it again changes nothing).
    Already(DomainRow),
    /// The host name belongs to another app.
    TakenBy(String),
}

fn row(r: &super::Row) -> std::result::Result<DomainRow, sqlx::Error> {
    Ok(DomainRow {
        hostname: r.try_get("hostname")?,
        app: r.try_get("app")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    /// Gives `hostname` (already validated and lower case) to `app`.
    pub async fn add_domain(&self, app: &str, hostname: &str) -> Result<DomainAdded> {
        let created_at = now_rfc3339();
        let res =
            sqlx::query("INSERT INTO domains (hostname, app, created_at) VALUES ($1, $2, $3)")
                .bind(hostname)
                .bind(app)
                .bind(&created_at)
                .execute(self.pool())
                .await;
        match res {
            Ok(_) => Ok(DomainAdded::Added(DomainRow {
                hostname: hostname.into(),
                app: app.into(),
                created_at,
            })),
            Err(e) if is_unique_violation(&e) => {
                let owner = self.domain(hostname).await?;
                Ok(match owner {
                    Some(d) if d.app == app => DomainAdded::Already(d),
                    Some(d) => DomainAdded::TakenBy(d.app),
                    None => DomainAdded::TakenBy("another app".into()),
                })
            }
            Err(e) => Err(query("adding a domain")(e)),
        }
    }

    /// The domain row of a host name.
    pub async fn domain(&self, hostname: &str) -> Result<Option<DomainRow>> {
        let r = sqlx::query("SELECT hostname, app, created_at FROM domains WHERE hostname = $1")
            .bind(hostname)
            .fetch_optional(self.pool())
            .await
            .map_err(query("reading a domain"))?;
        r.as_ref()
            .map(row)
            .transpose()
            .map_err(query("reading a domain row"))
    }

    /// Removes `hostname` from `app`; false when the app does not have it.
    pub async fn remove_domain(&self, app: &str, hostname: &str) -> Result<bool> {
        let res = sqlx::query("DELETE FROM domains WHERE app = $1 AND hostname = $2")
            .bind(app)
            .bind(hostname)
            .execute(self.pool())
            .await
            .map_err(query("removing a domain"))?;
        Ok(res.rows_affected() > 0)
    }

    /// The custom domains of one app (`Some(app)`) or of all apps, by host name.
    pub async fn domains(&self, app: Option<&str>) -> Result<Vec<DomainRow>> {
        let rows = match app {
            Some(app) => sqlx::query(
                "SELECT hostname, app, created_at FROM domains WHERE app = $1 ORDER BY hostname",
            )
            .bind(app),
            None => sqlx::query("SELECT hostname, app, created_at FROM domains ORDER BY hostname"),
        }
        .fetch_all(self.pool())
        .await
        .map_err(query("listing domains"))?;
        rows.iter()
            .map(row)
            .collect::<std::result::Result<_, _>>()
            .map_err(query("reading a domain row"))
    }
}
