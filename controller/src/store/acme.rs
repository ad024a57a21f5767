//! Automatic certificates (migration 0013): which apps asked for them (`acme_apps`), the
//! state of each host name's certificate (`acme_domains`) and the controller's ACME account
//! per directory (`acme_accounts`). The certificates themselves are ordinary rows of
//! `certs`, so the router presents them like uploaded ones. Portable SQL (`$n`
//! placeholders, text times made in Rust).

use sqlx::Row;

use super::{query, Result, Store};

/// The states of an automatic certificate (`acme_domains.state`).
pub mod acme_state {
    /// An order is under way (or waits for its first try).
    pub const PENDING: &str = "pending";
    /// The certificate is stored and presented.
    pub const ISSUED: &str = "issued";
    /// The last order failed; `reason` says why. Tried again by the renewal timer.
    pub const FAILED: &str = "failed";
}

/// The automatic certificate of one host name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AcmeDomainRow {
    pub hostname: String,
    pub app: String,
    /// One of [`acme_state`].
    pub state: String,
    /// Why the last order failed (empty otherwise).
    pub reason: String,
    /// The `certs` row of the issued certificate (empty when none).
    pub cert_id: String,
    /// When the issued certificate expires, Unix seconds (0 when none).
    pub not_after: i64,
    pub updated_at: String,
}

const COLUMNS: &str = "hostname, app, state, reason, cert_id, not_after, updated_at";

fn row(r: &super::Row) -> std::result::Result<AcmeDomainRow, sqlx::Error> {
    Ok(AcmeDomainRow {
        hostname: r.try_get("hostname")?,
        app: r.try_get("app")?,
        state: r.try_get("state")?,
        reason: r.try_get("reason")?,
        cert_id: r.try_get("cert_id")?,
        not_after: r.try_get("not_after")?,
        updated_at: r.try_get("updated_at")?,
    })
}

impl Store {
    /// Turns automatic certificates of `app` on or off. Off also forgets the states of its
    /// host names (the certificates stay in `certs` until removed).
    pub async fn set_acme(&self, app: &str, on: bool, now: &str) -> Result<()> {
        if on {
            sqlx::query(
                "INSERT INTO acme_apps (app, created_at) VALUES ($1, $2) \
                 ON CONFLICT (app) DO NOTHING",
            )
            .bind(app)
            .bind(now)
            .execute(self.pool())
            .await
            .map_err(query("turning automatic certificates on"))?;
        } else {
            for sql in [
                "DELETE FROM acme_apps WHERE app = $1",
                "DELETE FROM acme_domains WHERE app = $1",
            ] {
                sqlx::query(sql)
                    .bind(app)
                    .execute(self.pool())
                    .await
                    .map_err(query("turning automatic certificates off"))?;
            }
        }
        Ok(())
    }

    /// The apps with automatic certificates on, by name.
    pub async fn acme_apps(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT app FROM acme_apps ORDER BY app")
            .fetch_all(self.pool())
            .await
            .map_err(query("listing apps with automatic certificates"))?;
        rows.iter()
            .map(|r| r.try_get("app"))
            .collect::<std::result::Result<_, _>>()
            .map_err(query("reading an acme_apps row"))
    }

    /// The automatic certificate states of one app (`Some`) or all, by host name.
    pub async fn acme_domains(&self, app: Option<&str>) -> Result<Vec<AcmeDomainRow>> {
        let sql = match app {
            Some(_) => {
                format!("SELECT {COLUMNS} FROM acme_domains WHERE app = $1 ORDER BY hostname")
            }
            None => format!("SELECT {COLUMNS} FROM acme_domains ORDER BY hostname"),
        };
        let rows = match app {
            Some(app) => sqlx::query(&sql).bind(app),
            None => sqlx::query(&sql),
        }
        .fetch_all(self.pool())
        .await
        .map_err(query("listing automatic certificate states"))?;
        rows.iter()
            .map(row)
            .collect::<std::result::Result<_, _>>()
            .map_err(query("reading an acme_domains row"))
    }

    /// Writes the state of one host name's automatic certificate.
    pub async fn put_acme_domain(&self, d: &AcmeDomainRow) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO acme_domains ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (hostname) DO UPDATE SET app = excluded.app, state = excluded.state, \
             reason = excluded.reason, cert_id = excluded.cert_id, \
             not_after = excluded.not_after, updated_at = excluded.updated_at"
        ))
        .bind(&d.hostname)
        .bind(&d.app)
        .bind(&d.state)
        .bind(&d.reason)
        .bind(&d.cert_id)
        .bind(d.not_after)
        .bind(&d.updated_at)
        .execute(self.pool())
        .await
        .map_err(query("saving an automatic certificate state"))?;
        Ok(())
    }

    /// Forgets the state of a host name (its domain was removed).
    pub async fn remove_acme_domain(&self, hostname: &str) -> Result<()> {
        sqlx::query("DELETE FROM acme_domains WHERE hostname = $1")
            .bind(hostname)
            .execute(self.pool())
            .await
            .map_err(query("removing an automatic certificate state"))?;
        Ok(())
    }

    /// The stored ACME account credentials (JSON) for a directory URL.
    pub async fn acme_account(&self, directory: &str) -> Result<Option<String>> {
        let r = sqlx::query("SELECT credentials FROM acme_accounts WHERE directory = $1")
            .bind(directory)
            .fetch_optional(self.pool())
            .await
            .map_err(query("reading the ACME account"))?;
        r.map(|r| r.try_get("credentials"))
            .transpose()
            .map_err(query("reading the ACME account"))
    }

    /// Stores the ACME account credentials for a directory URL (replacing older ones).
    pub async fn put_acme_account(
        &self,
        directory: &str,
        credentials: &str,
        now: &str,
    ) -> Result<()> {
        sqlx::query(
            "INSERT INTO acme_accounts (directory, credentials, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (directory) DO UPDATE SET credentials = excluded.credentials",
        )
        .bind(directory)
        .bind(credentials)
        .bind(now)
        .execute(self.pool())
        .await
        .map_err(query("saving the ACME account"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::fresh_on;
    use super::super::Backend;
    use super::*;

    async fn states_accounts_and_rename(backend: Backend) {
        let Some((_place, store)) = fresh_on(backend).await else {
            return;
        };
        store.create_app("acm4a").await.unwrap();
        assert!(store.acme_apps().await.unwrap().is_empty());
        store.set_acme("acm4a", true, "t0").await.unwrap();
        store.set_acme("acm4a", true, "t1").await.unwrap();
        assert_eq!(store.acme_apps().await.unwrap(), ["acm4a"]);
        let mut d = AcmeDomainRow {
            hostname: "www.acm4.test".into(),
            app: "acm4a".into(),
            state: acme_state::PENDING.into(),
            reason: String::new(),
            cert_id: String::new(),
            not_after: 0,
            updated_at: "t1".into(),
        };
        store.put_acme_domain(&d).await.unwrap();
        d.state = acme_state::ISSUED.into();
        d.cert_id = "c1".into();
        d.not_after = 4_000_000_000;
        store.put_acme_domain(&d).await.unwrap();
        assert_eq!(
            store.acme_domains(Some("acm4a")).await.unwrap(),
            [d.clone()]
        );

        store.rename_app("acm4a", "acm4b").await.unwrap();
        assert_eq!(store.acme_apps().await.unwrap(), ["acm4b"]);
        let moved = store.acme_domains(None).await.unwrap();
        assert_eq!(moved.len(), 1);
        assert_eq!(moved[0].app, "acm4b");

        store.set_acme("acm4b", false, "t2").await.unwrap();
        assert!(store.acme_apps().await.unwrap().is_empty());
        assert!(store.acme_domains(None).await.unwrap().is_empty());

        assert_eq!(store.acme_account("https://ca/dir").await.unwrap(), None);
        store
            .put_acme_account("https://ca/dir", "{\"id\":1}", "t0")
            .await
            .unwrap();
        store
            .put_acme_account("https://ca/dir", "{\"id\":2}", "t1")
            .await
            .unwrap();
        assert_eq!(
            store
                .acme_account("https://ca/dir")
                .await
                .unwrap()
                .as_deref(),
            Some("{\"id\":2}")
        );
    }

    #[tokio::test]
    async fn states_accounts_and_rename_sqlite() {
        states_accounts_and_rename(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn states_accounts_and_rename_postgres() {
        states_accounts_and_rename(Backend::Postgres).await;
    }
}
