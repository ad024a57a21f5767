//! What the tenant tests (`tenants_api.rs`, `tenant_names.rs`) share: a real controller on
//! loopback ports with the fake agent (`support`), members with their own API tokens,
//! JSON calls over real HTTP, image pushes through the registry, git pushes, and waits.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{json, Value};

use crate::support::{gzip_layer, sha, AppDir, FakeAgent, Running};

/// A controller with the fake agent, and the admin token.
pub struct World {
    pub running: Running,
    pub agent: FakeAgent,
    _tasks: Vec<tokio::task::JoinHandle<()>>,
    pub admin: String,
    http: reqwest::Client,
}

impl World {
    pub async fn start() -> World {
        let running = Running::start(true).await;
        let (agent, tasks) = FakeAgent::join(&running).await;
        let admin = running.c.tokens.admin().to_string();
        World {
            running,
            agent,
            _tasks: tasks,
            admin,
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    /// `method path` with `token` and an optional JSON body: (status, JSON or text).
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(
                method.parse().unwrap(),
                format!("{}{path}", self.running.api),
            )
            .bearer_auth(token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    }

    /// A registry call with the token as Basic password (what skopeo sends).
    pub async fn registry(&self, method: &str, path: &str, token: &str) -> (u16, String) {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("u:{token}"));
        let resp = self
            .http
            .request(
                method.parse().unwrap(),
                format!("{}{path}", self.running.api),
            )
            .header("authorization", format!("Basic {basic}"))
            .header(
                "accept",
                "application/vnd.oci.image.manifest.v1+json, application/json",
            )
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        (status, resp.text().await.unwrap())
    }

    /// A member (role member) with an API token.
    pub async fn member(&self, name: &str) -> String {
        let (s, v) = self
            .call(
                "POST",
                "/v1/users",
                &self.admin,
                Some(json!({"name": name, "role": "member"})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        let (s, v) = self
            .call(
                "POST",
                "/v1/tokens",
                &self.admin,
                Some(json!({"user": name, "name": "test"})),
            )
            .await;
        assert_eq!(s, 201, "{v}");
        v["token"].as_str().unwrap().to_string()
    }

    /// Creates `app` as the token's user.
    pub async fn create_app(&self, token: &str, app: &str) {
        let (s, v) = self
            .call("POST", "/v1/apps", token, Some(json!({ "name": app })))
            .await;
        assert_eq!(s, 201, "{v}");
    }

    /// Pushes a one-layer image whose Cmd the fake agent runs as a web server into
    /// `repo:tag` through the registry, as the token's user; returns (manifest digest,
    /// layer digest).
    pub async fn push_image(&self, token: &str, repo: &str, tag: &str) -> (String, String) {
        let (layer, diff_id) = gzip_layer(&[(
            "www/index.html".to_string(),
            format!("secret page of {repo}").into_bytes(),
        )]);
        let config = json!({
            "architecture": "amd64", "os": "linux",
            "config": {"Cmd": ["httpd", "-f", "-p", "5000"], "Env": ["PATH=/bin"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]}
        })
        .to_string()
        .into_bytes();
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("u:{token}"));
        for blob in [&layer, &config] {
            let resp = self
                .http
                .post(format!(
                    "{}/v2/{repo}/blobs/uploads/?digest={}",
                    self.running.api,
                    sha(blob)
                ))
                .header("authorization", format!("Basic {basic}"))
                .body(blob.clone())
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 201, "blob push to {repo}");
        }
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": sha(&config), "size": config.len()},
            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                        "digest": sha(&layer), "size": layer.len()}]
        })
        .to_string();
        let resp = self
            .http
            .put(format!("{}/v2/{repo}/manifests/{tag}", self.running.api))
            .header("authorization", format!("Basic {basic}"))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201, "manifest push to {repo}");
        (sha(manifest.as_bytes()), sha(&layer))
    }

    /// `git push` of a static site saying `text` to `app` as the token's user from a new
    /// working copy; asserts it deployed and returns the push output.
    pub async fn push_site(&self, token: &str, app: &str, text: &str) -> String {
        self.push_from(&Arc::new(AppDir::new()), token, app, text)
            .await
    }

    /// The same from `dir` (a next commit on its `main`).
    pub async fn push_from(&self, dir: &Arc<AppDir>, token: &str, app: &str, text: &str) -> String {
        dir.write("index.html", text);
        dir.commit(text);
        let (ok, out) = dir
            .push(&self.running.git_url(app, Some(token)), "main")
            .await;
        assert!(ok, "push to {app} failed:\n{out}");
        assert!(out.contains("Deploying... done"), "{out}");
        out
    }

    /// Waits until `<app>.localhost` answers 200 with `needle` in the body.
    pub async fn wait_serving(&self, app: &str, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (status, body) = self.running.request_app(app).await;
            if status == 200 && body.contains(needle) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{app} never served {needle:?}; last {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Waits until `check` holds (at most 30 s).
    pub async fn wait_until(&self, what: &str, mut check: impl FnMut() -> bool) {
        let deadline = Instant::now() + Duration::from_secs(30);
        while !check() {
            assert!(Instant::now() < deadline, "timed out waiting: {what}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The error message of an API error body.
pub fn message(v: &Value) -> String {
    v["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {v}"))
        .to_string()
}
