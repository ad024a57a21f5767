//! Users, tokens and collaborators end to end over HTTP (no agent, no root): a member sees
//! and changes only the apps they collaborate on across the API, git and the registry;
//! revoked and expired tokens are refused; failures are rate-limited per source; per-node
//! tokens speak only for their node.

mod support;

use std::sync::Arc;

use base64::Engine as _;
use serde_json::{json, Value};
use support::{AppDir, Running};

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    fn new(running: &Running) -> Api {
        Api {
            base: running.api.clone(),
            http: reqwest::Client::builder().no_proxy().build().unwrap(),
        }
    }

    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let text = resp.text().await.unwrap();
        let value = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, value, headers)
    }

    async fn status(&self, method: &str, path: &str, token: &str, body: Option<Value>) -> u16 {
        self.call(method, path, Some(token), body).await.0
    }

    /// A registry GET with the token as basic-auth password (what skopeo sends).
    async fn registry(&self, path: &str, token: Option<&str>) -> u16 {
        let mut req = self.http.get(format!("{}{path}", self.base));
        if let Some(t) = token {
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("u:{t}"));
            req = req.header("authorization", format!("Basic {basic}"));
        }
        req.send().await.unwrap().status().as_u16()
    }

    async fn login(&self, user: &str, password: &str) -> String {
        let (status, body, _) = self
            .call(
                "POST",
                "/v1/login",
                None,
                Some(json!({"user": user, "password": password})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        body["token"].as_str().unwrap().to_string()
    }
}

fn app_names(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn members_see_and_change_only_apps_they_collaborate_on() {
    let running = Running::start(false).await;
    let api = Api::new(&running);
    let admin = running.c.tokens.admin().to_string();

    // The bootstrap admin user logs in with the admin token as its first password.
    let admin_user = api.login("admin", &admin).await;
    let (_, me, _) = api.call("GET", "/v1/whoami", Some(&admin_user), None).await;
    assert_eq!(
        (me["name"].as_str(), me["role"].as_str()),
        (Some("admin"), Some("admin"))
    );

    for name in ["ann", "bob"] {
        let body = json!({"name": name, "password": format!("{name}-password")});
        assert_eq!(
            api.status("POST", "/v1/users", &admin, Some(body)).await,
            201
        );
    }
    let ann = api.login("ann", "ann-password").await;
    let bob = api.login("bob", "bob-password").await;
    assert!(ann.starts_with("paas_"));

    // Members cannot manage users.
    assert_eq!(api.status("GET", "/v1/users", &bob, None).await, 403);
    let evil = json!({"name": "evil", "role": "admin"});
    assert_eq!(api.status("POST", "/v1/users", &bob, Some(evil)).await, 403);

    // ann creates an app and becomes its collaborator.
    let create = json!({"name": "ann-app"});
    assert_eq!(
        api.status("POST", "/v1/apps", &ann, Some(create)).await,
        201
    );
    let (_, collabs, _) = api
        .call("GET", "/v1/apps/ann-app/collaborators", Some(&ann), None)
        .await;
    assert_eq!(collabs, json!(["ann"]));

    // bob sees nothing of it.
    let (_, list, _) = api.call("GET", "/v1/apps", Some(&bob), None).await;
    assert!(app_names(&list).is_empty(), "{list}");
    let (_, list, _) = api.call("GET", "/v1/apps", Some(&ann), None).await;
    assert_eq!(app_names(&list), ["ann-app"]);
    let (_, list, _) = api.call("GET", "/v1/apps", Some(&admin), None).await;
    assert_eq!(app_names(&list), ["ann-app"]);
    for (method, path, body) in [
        ("GET", "/v1/apps/ann-app", None),
        ("GET", "/v1/apps/ann-app/releases", None),
        ("GET", "/v1/apps/ann-app/config", None),
        ("PATCH", "/v1/apps/ann-app/config", Some(json!({"A": "1"}))),
        ("GET", "/v1/apps/ann-app/logs", None),
        ("GET", "/v1/apps/ann-app/cron", None),
        (
            "POST",
            "/v1/apps/ann-app/run",
            Some(json!({"command": "ls"})),
        ),
        ("GET", "/v1/apps/ann-app/collaborators", None),
        (
            "POST",
            "/v1/apps/ann-app/collaborators",
            Some(json!({"user": "bob"})),
        ),
        ("DELETE", "/v1/apps/ann-app", None),
    ] {
        let (status, body, _) = api.call(method, path, Some(&bob), body).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "not_found", "{body}");
    }
    // ... and the app is still there, unchanged.
    assert!(running.c.store.get_app("ann-app").await.unwrap().is_some());
    // Its member may list its cron entries (none before a release).
    let (status, cron, _) = api
        .call("GET", "/v1/apps/ann-app/cron", Some(&ann), None)
        .await;
    assert_eq!((status, cron), (200, json!([])));

    // The registry: bob may not read ann's repository; ann and nodes may.
    let tags = "/v2/apps/ann-app/tags/list";
    assert_eq!(api.registry(tags, None).await, 401);
    assert_eq!(api.registry(tags, Some("paas_bogus")).await, 401);
    assert_eq!(api.registry(tags, Some(&bob)).await, 403);
    assert_eq!(
        api.registry(tags, Some(&ann)).await,
        404,
        "allowed, nothing pushed yet"
    );
    let node = running.c.tokens.node().to_string();
    assert_eq!(api.registry(tags, Some(&node)).await, 404);
    assert_eq!(api.registry("/v2/", Some(&bob)).await, 200);
    assert_eq!(
        api.registry("/v2/stacks/tiny/tags/list", Some(&bob)).await,
        404
    );
    let start = api
        .http
        .post(format!("{}/v2/apps/ann-app/blobs/uploads/", api.base))
        .basic_auth("u", Some(&bob))
        .send()
        .await
        .unwrap();
    assert_eq!(
        start.status().as_u16(),
        403,
        "bob cannot push to ann's repository"
    );

    // git: bob's push to ann's app is refused; the app keeps no trace of it.
    let dir = Arc::new(AppDir::new());
    dir.write("index.html", "<h1>hi</h1>\n");
    dir.commit("first");
    let (ok, output) = dir
        .push(&running.git_url("ann-app", Some(&bob)), "main")
        .await;
    assert!(!ok, "{output}");
    assert!(
        output.contains("403") || output.contains("may not push"),
        "{output}"
    );
    assert!(!running.c.settings.repo_path("ann-app").exists());

    // After access:add, bob sees and changes it.
    let add = json!({"user": "bob"});
    let (status, body, _) = api
        .call(
            "POST",
            "/v1/apps/ann-app/collaborators",
            Some(&ann),
            Some(add),
        )
        .await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(api.status("GET", "/v1/apps/ann-app", &bob, None).await, 200);
    let patch = json!({"A": "1"});
    assert_eq!(
        api.status("PATCH", "/v1/apps/ann-app/config", &bob, Some(patch))
            .await,
        200
    );
    let (_, list, _) = api.call("GET", "/v1/apps", Some(&bob), None).await;
    assert_eq!(app_names(&list), ["ann-app"]);
    assert_eq!(api.registry(tags, Some(&bob)).await, 404);

    // ... until removed again.
    assert_eq!(
        api.status("DELETE", "/v1/apps/ann-app/collaborators/bob", &ann, None)
            .await,
        204
    );
    assert_eq!(api.status("GET", "/v1/apps/ann-app", &bob, None).await, 404);
    assert_eq!(api.registry(tags, Some(&bob)).await, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_and_expired_tokens_are_refused() {
    let running = Running::start(false).await;
    let api = Api::new(&running);
    let admin = running.c.tokens.admin().to_string();
    let body = json!({"name": "cat", "password": "cat-password"});
    assert_eq!(
        api.status("POST", "/v1/users", &admin, Some(body)).await,
        201
    );
    let cat = api.login("cat", "cat-password").await;

    let (status, made, _) = api
        .call(
            "POST",
            "/v1/tokens",
            Some(&cat),
            Some(json!({"name": "ci"})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let ci = made["token"].as_str().unwrap().to_string();
    let id = made["id"].as_str().unwrap().to_string();
    assert_eq!(api.status("GET", "/v1/whoami", &ci, None).await, 200);
    let (_, listed, _) = api.call("GET", "/v1/tokens", Some(&cat), None).await;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 2, "the login token and ci");
    assert!(
        listed.iter().all(|t| t.get("token").is_none()),
        "secrets are never listed"
    );

    // Another member cannot revoke it; its owner can.
    let body = json!({"name": "dog", "password": "dog-password"});
    assert_eq!(
        api.status("POST", "/v1/users", &admin, Some(body)).await,
        201
    );
    let dog = api.login("dog", "dog-password").await;
    assert_eq!(
        api.status("DELETE", &format!("/v1/tokens/{id}"), &dog, None)
            .await,
        404
    );
    assert_eq!(
        api.status("DELETE", &format!("/v1/tokens/{id}"), &cat, None)
            .await,
        204
    );
    let (status, body, headers) = api.call("GET", "/v1/whoami", Some(&ci), None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized");
    assert!(headers.contains_key("www-authenticate"));

    // An expired token.
    let (_, old) = running
        .c
        .store
        .create_token("cat", "old", Some(paas_controller::util::unix_ms() - 1))
        .await
        .unwrap();
    assert_eq!(api.status("GET", "/v1/whoami", &old, None).await, 401);
    // A token with an expiry in the future works.
    let (status, made, _) = api
        .call(
            "POST",
            "/v1/tokens",
            Some(&cat),
            Some(json!({"name": "day", "expires_in_secs": 86400})),
        )
        .await;
    assert_eq!(status, 201);
    assert!(made["expires_at"].is_string());
    let day = made["token"].as_str().unwrap();
    assert_eq!(api.status("GET", "/v1/whoami", day, None).await, 200);

    // Removing the user kills all their tokens.
    assert_eq!(
        api.status("DELETE", "/v1/users/cat", &admin, None).await,
        204
    );
    assert_eq!(api.status("GET", "/v1/whoami", day, None).await, 401);
    // The last admin cannot be removed, nor can an admin remove themselves.
    assert_eq!(
        api.status("DELETE", "/v1/users/admin", &admin, None).await,
        409
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_logins_and_bad_tokens_are_rate_limited() {
    let running = Running::start(false).await;
    let api = Api::new(&running);
    let admin = running.c.tokens.admin().to_string();
    // Wrong passwords and bad tokens both count; the budget is 10 a minute, so the 429
    // comes after 10 failures (a little later if the bucket refilled meanwhile: argon2 is
    // slow in debug builds).
    for i in 0..2 {
        let bad = json!({"user": "admin", "password": format!("wrong-{i}")});
        let (status, body, _) = api.call("POST", "/v1/login", None, Some(bad)).await;
        assert_eq!(status, 401, "{body}");
    }
    let mut refused = 2;
    let limited = loop {
        let (status, body, headers) = api
            .call(
                "GET",
                "/v1/apps",
                Some(&format!("paas_wrong{refused}")),
                None,
            )
            .await;
        if status == 429 {
            break (body, headers);
        }
        assert_eq!(status, 401, "{body}");
        refused += 1;
        assert!(refused <= 20, "no 429 after {refused} bad tokens");
    };
    assert!(refused >= 10, "limited after only {refused} failures");
    let (body, headers) = limited;
    assert_eq!(body["error"]["code"], "rate_limited");
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry >= 1);
    // Good tokens are never refused (tests/auth_limits.rs has the whole attack), but a
    // password from this address waits now, even the right one.
    assert_eq!(api.status("GET", "/v1/apps", &admin, None).await, 200);
    assert_eq!(api.registry("/v2/", Some(&admin)).await, 200);
    let login = json!({"user": "admin", "password": admin});
    let (status, _, headers) = api.call("POST", "/v1/login", None, Some(login)).await;
    assert_eq!(status, 429);
    assert!(headers.contains_key("retry-after"));
    assert_eq!(api.registry("/v2/", Some("paas_still_wrong")).await, 429);
    // Requests without credentials are not failures and get the plain 401.
    assert_eq!(api.call("GET", "/v1/apps", None, None).await.0, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_node_tokens_speak_only_for_their_node() {
    let running = Running::start(false).await;
    let api = Api::new(&running);
    let admin = running.c.tokens.admin().to_string();
    let (status, made, _) = api
        .call(
            "POST",
            "/v1/node-tokens",
            Some(&admin),
            Some(json!({"node": "n1"})),
        )
        .await;
    assert_eq!(status, 201, "{made}");
    let n1 = made["token"].as_str().unwrap().to_string();
    assert!(n1.starts_with("paasnode_"));
    let hb = |name: &str| json!({"name": name, "url": "http://127.0.0.1:1", "memory_bytes": 1, "jobs": []});
    let (status, body, _) = api
        .call("POST", "/v1/nodes/heartbeat", Some(&n1), Some(hb("n2")))
        .await;
    assert_eq!(status, 403, "{body}");
    let (status, body, _) = api
        .call("POST", "/v1/nodes/heartbeat", Some(&n1), Some(hb("n1")))
        .await;
    assert_eq!(status, 204, "{body}");
    // A node token reads the registry but not the apps API.
    assert_eq!(api.registry("/v2/", Some(&n1)).await, 200);
    assert_eq!(api.status("GET", "/v1/apps", &n1, None).await, 403);
    // Members cannot issue node tokens.
    let body = json!({"name": "eve", "password": "eve-password"});
    assert_eq!(
        api.status("POST", "/v1/users", &admin, Some(body)).await,
        201
    );
    let eve = api.login("eve", "eve-password").await;
    let req = json!({"node": "n3"});
    assert_eq!(
        api.status("POST", "/v1/node-tokens", &eve, Some(req)).await,
        403
    );
    // Revoked: refused.
    assert_eq!(
        api.status("DELETE", "/v1/node-tokens/n1", &admin, None)
            .await,
        204
    );
    let (status, _, _) = api
        .call("POST", "/v1/nodes/heartbeat", Some(&n1), Some(hb("n1")))
        .await;
    assert_eq!(status, 401);
}
