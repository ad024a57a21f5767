//! Migration 0011: the credential the controller presents on each node's agent API
//! (`nodes.agent_token`, learnt from the node's heartbeats) and the per-app switch that
//! lets an app's containers reach the API ports (`apps.api_access`). A node name is bound
//! to the first credential it registered with: [`Store::record_bound_heartbeat`] changes a
//! node only for a heartbeat that carries that credential.

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

    /// The agent credential node `name` registered with (None: no such node, or it never
    /// sent one).
    pub async fn node_agent_token(&self, name: &str) -> Result<Option<String>> {
        let row = sqlx::query("SELECT agent_token FROM nodes WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await
            .map_err(query("looking up a node's agent credential"))?;
        Ok(row
            .map(|r| r.try_get::<Option<String>, _>("agent_token"))
            .transpose()
            .map_err(query("reading a node's agent credential"))?
            .flatten())
    }

    /// Records a heartbeat (URL, memory, seen at `now_ms`) and the credential it carries,
    /// unless node `name` registered with another credential (or with one while
    /// `agent_token` is None): then nothing changes and the answer is false. A node without
    /// a credential takes the heartbeat's (trust on first use). One statement, so two first
    /// heartbeats with different credentials, on two controllers of one database, cannot
    /// both win. The caller compares the credential beforehand in constant time; the
    /// comparison here only settles such a race.
    pub async fn record_bound_heartbeat(
        &self,
        name: &str,
        url: &str,
        memory_bytes: u64,
        now_ms: i64,
        agent_token: Option<&str>,
    ) -> Result<bool> {
        let res = sqlx::query(
            "INSERT INTO nodes (name, url, memory_bytes, last_seen_ms, agent_token) \
             VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (name) DO UPDATE SET url = excluded.url, \
             memory_bytes = excluded.memory_bytes, last_seen_ms = excluded.last_seen_ms, \
             agent_token = COALESCE(excluded.agent_token, nodes.agent_token) \
             WHERE nodes.agent_token IS NULL OR nodes.agent_token = excluded.agent_token",
        )
        .bind(name)
        .bind(url)
        .bind(memory_bytes.min(i64::MAX as u64) as i64)
        .bind(now_ms)
        .bind(agent_token)
        .execute(self.pool())
        .await
        .map_err(query("recording a heartbeat"))?;
        Ok(res.rows_affected() > 0)
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
