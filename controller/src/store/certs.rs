//! TLS certificates of apps (migration 0008): uploaded by `paas certs:add` after the checks in
//! `router::tls::check_cert`, read by the router's certificate set. Portable SQL (`$n`
//! placeholders, text times made in Rust).

use sqlx::Row;

use super::{query, Result, Store};

/// One stored certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertRow {
    pub id: String,
    pub app: String,
    /// The DNS names it covers (`*.x` for wildcards).
    pub names: Vec<String>,
    pub cert_pem: String,
    pub key_pem: String,
    /// RFC 3339 UTC.
    pub not_after: String,
    pub subject: String,
    pub issuer: String,
    pub created_at: String,
}

const COLUMNS: &str = "id, app, names, cert_pem, key_pem, not_after, subject, issuer, created_at";

fn row(r: &super::Row) -> std::result::Result<CertRow, sqlx::Error> {
    let names: String = r.try_get("names")?;
    Ok(CertRow {
        id: r.try_get("id")?,
        app: r.try_get("app")?,
        names: names
            .split(',')
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .collect(),
        cert_pem: r.try_get("cert_pem")?,
        key_pem: r.try_get("key_pem")?,
        not_after: r.try_get("not_after")?,
        subject: r.try_get("subject")?,
        issuer: r.try_get("issuer")?,
        created_at: r.try_get("created_at")?,
    })
}

impl Store {
    /// Stores a checked certificate.
    pub async fn add_cert(&self, c: &CertRow) -> Result<()> {
        sqlx::query(&format!(
            "INSERT INTO certs ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
        ))
        .bind(&c.id)
        .bind(&c.app)
        .bind(c.names.join(","))
        .bind(&c.cert_pem)
        .bind(&c.key_pem)
        .bind(&c.not_after)
        .bind(&c.subject)
        .bind(&c.issuer)
        .bind(&c.created_at)
        .execute(self.pool())
        .await
        .map_err(query("adding a certificate"))?;
        Ok(())
    }

    /// The certificates of one app (`Some(app)`) or of all apps, oldest first.
    pub async fn certs(&self, app: Option<&str>) -> Result<Vec<CertRow>> {
        let sql = match app {
            Some(_) => {
                format!("SELECT {COLUMNS} FROM certs WHERE app = $1 ORDER BY created_at, id")
            }
            None => format!("SELECT {COLUMNS} FROM certs ORDER BY created_at, id"),
        };
        let rows = match app {
            Some(app) => sqlx::query(&sql).bind(app),
            None => sqlx::query(&sql),
        }
        .fetch_all(self.pool())
        .await
        .map_err(query("listing certificates"))?;
        rows.iter()
            .map(row)
            .collect::<std::result::Result<_, _>>()
            .map_err(query("reading a certificate row"))
    }

    /// A cheap summary of every certificate (id, app, time) and HTTPS redirect: it changes
    /// whenever one is added or removed, so a follower controller reloads its router's
    /// certificates only then.
    pub async fn certs_version(&self) -> Result<String> {
        let rows = sqlx::query("SELECT id, app, created_at FROM certs ORDER BY id")
            .fetch_all(self.pool())
            .await
            .map_err(query("listing certificate ids"))?;
        let mut out = String::new();
        for r in &rows {
            let (id, app, at): (String, String, String) = (
                r.try_get("id").map_err(query("reading a certificate id"))?,
                r.try_get("app")
                    .map_err(query("reading a certificate id"))?,
                r.try_get("created_at")
                    .map_err(query("reading a certificate id"))?,
            );
            out.push_str(&format!("cert {id} {app} {at}\n"));
        }
        for app in self.https_redirects().await? {
            out.push_str(&format!("redirect {app}\n"));
        }
        Ok(out)
    }

    /// Turns the HTTP → HTTPS redirect of `app` on or off.
    pub async fn set_https_redirect(&self, app: &str, on: bool, now: &str) -> Result<()> {
        let q = if on {
            sqlx::query(
                "INSERT INTO https_redirects (app, created_at) VALUES ($1, $2) \
                 ON CONFLICT (app) DO NOTHING",
            )
            .bind(app)
            .bind(now)
        } else {
            sqlx::query("DELETE FROM https_redirects WHERE app = $1").bind(app)
        };
        q.execute(self.pool())
            .await
            .map_err(query("setting the HTTPS redirect"))?;
        Ok(())
    }

    /// The apps with the HTTP → HTTPS redirect on, by name.
    pub async fn https_redirects(&self) -> Result<Vec<String>> {
        let rows = sqlx::query("SELECT app FROM https_redirects ORDER BY app")
            .fetch_all(self.pool())
            .await
            .map_err(query("listing HTTPS redirects"))?;
        rows.iter()
            .map(|r| r.try_get("app"))
            .collect::<std::result::Result<_, _>>()
            .map_err(query("reading an HTTPS redirect row"))
    }

    /// Removes certificate `id` of `app`; false when the app has no such certificate.
    pub async fn remove_cert(&self, app: &str, id: &str) -> Result<bool> {
        let res = sqlx::query("DELETE FROM certs WHERE app = $1 AND id = $2")
            .bind(app)
            .bind(id)
            .execute(self.pool())
            .await
            .map_err(query("removing a certificate"))?;
        Ok(res.rows_affected() > 0)
    }
}
