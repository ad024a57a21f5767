//! Migration 0011: the credential the controller presents on each node's agent API
//! (`nodes.agent_token`, learnt from the node's heartbeats) and the per-app switch that
//! lets an app's containers reach the API ports (`apps.api_access`).

use sqlx::Row;

use super::{query, Result, Store};

impl Store {
    /// Records the agent credential of node `name` (a node without a row is ignored: the
    /// heartbeat that carries the credential records the node first).
    pub async fn set_node_agent_token(&self, name: &str, token: &str) -> Result<()> {
        sqlx::query("UPDATE nodes SET agent_token = $1 WHERE name = $2")
            .bind(token)
            .bind(name)
            .execute(self.pool())
            .await
            .map_err(query("recording an agent credential"))?;
        Ok(())
    }

    /// The agent credential of the node whose API is at `url` (the most recently seen node
    /// at that URL), if it sent one.
    pub async fn agent_token_for_url(&self, url: &str) -> Result<Option<String>> {
        let row = sqlx::query(
            "SELECT agent_token FROM nodes WHERE url = $1 AND agent_token IS NOT NULL \
             ORDER BY last_seen_ms DESC LIMIT 1",
        )
        .bind(url)
        .fetch_optional(self.pool())
        .await
        .map_err(query("looking up an agent credential"))?;
        row.map(|r| r.try_get("agent_token"))
            .transpose()
            .map_err(query("reading an agent credential"))
    }

    /// Whether the app's containers may reach the API ports (false for a missing app).
    pub async fn app_api_access(&self, app: &str) -> Result<bool> {
        let row = sqlx::query("SELECT api_access FROM apps WHERE name = $1")
            .bind(app)
            .fetch_optional(self.pool())
            .await
            .map_err(query("reading an app's API access"))?;
        Ok(match row {
            Some(r) => {
                r.try_get::<i64, _>("api_access")
                    .map_err(query("reading an app's API access"))?
                    != 0
            }
            None => false,
        })
    }

    /// Sets the app's API access; false when there is no such app.
    pub async fn set_app_api_access(&self, app: &str, on: bool) -> Result<bool> {
        let done = sqlx::query("UPDATE apps SET api_access = $1 WHERE name = $2")
            .bind(i64::from(on))
            .bind(app)
            .execute(self.pool())
            .await
            .map_err(query("changing an app's API access"))?;
        Ok(done.rows_affected() > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::fresh_on;
    use super::super::Backend;

    async fn agent_tokens_and_api_access(backend: Backend) {
        let Some((_place, s)) = fresh_on(backend).await else {
            return;
        };
        assert_eq!(s.agent_token_for_url("http://n1:7070").await.unwrap(), None);
        s.upsert_node("n1", "http://n1:7070", 1, 10).await.unwrap();
        s.upsert_node("n2", "http://n2:7070", 1, 10).await.unwrap();
        assert_eq!(s.agent_token_for_url("http://n1:7070").await.unwrap(), None);
        s.set_node_agent_token("n1", "paasagent_a").await.unwrap();
        s.set_node_agent_token("n2", "paasagent_b").await.unwrap();
        s.set_node_agent_token("ghost", "paasagent_c")
            .await
            .unwrap();
        let get = |u: &'static str| {
            let s = s.clone();
            async move { s.agent_token_for_url(u).await.unwrap() }
        };
        assert_eq!(get("http://n1:7070").await.as_deref(), Some("paasagent_a"));
        assert_eq!(get("http://n2:7070").await.as_deref(), Some("paasagent_b"));
        // A node that moved to another node's old URL: the newest heartbeat wins.
        s.upsert_node("n3", "http://n1:7070", 1, 20).await.unwrap();
        s.set_node_agent_token("n3", "paasagent_d").await.unwrap();
        assert_eq!(get("http://n1:7070").await.as_deref(), Some("paasagent_d"));

        assert!(!s.app_api_access("web").await.unwrap());
        assert!(!s.set_app_api_access("web", true).await.unwrap());
        s.create_app("web").await.unwrap();
        assert!(!s.app_api_access("web").await.unwrap());
        assert!(s.set_app_api_access("web", true).await.unwrap());
        assert!(s.app_api_access("web").await.unwrap());
        assert!(s.set_app_api_access("web", false).await.unwrap());
        assert!(!s.app_api_access("web").await.unwrap());
    }

    #[tokio::test]
    async fn ac4_agent_tokens_and_api_access_sqlite() {
        agent_tokens_and_api_access(Backend::Sqlite).await;
    }

    #[tokio::test]
    async fn ac4_agent_tokens_and_api_access_postgres() {
        agent_tokens_and_api_access(Backend::Postgres).await;
    }
}
