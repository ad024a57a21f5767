//! Controller → agent credentials over HTTP (no root): a heartbeat carrying the agent's own
//! credential is stored (answer header `paas-agent-token-stored`), the controller then calls
//! that agent with it, another controller of the same store finds it there, a changed
//! credential is picked up after a 401, and a per-node token cannot set another node's
//! credential. A node name is bound to the credential it registered with: the shared node
//! token cannot take it over (nor move its URL) without that credential until an admin
//! removes the node (`DELETE /v1/nodes/{name}`). The agent side (refusing the bootstrap
//! token) is in node-agent/tests/http.rs. Every heartbeat answer names the other nodes
//! (header `paas-peer-nodes`), whose ports the agent closes to its jobs.

mod support;

use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::get;
use axum::Router;
use paas_api::NodeHeartbeat;
use paas_controller::agent_client::AgentClient;
use support::Running;

/// A fake agent that answers `GET /v1/jobs` only with its current credential and records
/// every Authorization header it was sent.
#[derive(Clone, Default)]
struct Strict {
    credential: Arc<Mutex<String>>,
    seen: Arc<Mutex<Vec<String>>>,
    /// The job specs the controller asked it to start.
    specs: Arc<Mutex<Vec<paas_api::JobSpec>>>,
}

async fn start(
    State(s): State<Strict>,
    headers: HeaderMap,
    axum::Json(spec): axum::Json<paas_api::JobSpec>,
) -> (StatusCode, axum::Json<serde_json::Value>) {
    let got = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    s.seen.lock().unwrap().push(got);
    s.specs.lock().unwrap().push(spec.clone());
    (
        StatusCode::CREATED,
        axum::Json(serde_json::json!({"id": spec.id, "labels": spec.labels, "state": "starting"})),
    )
}

async fn jobs(State(s): State<Strict>, headers: HeaderMap) -> (StatusCode, String) {
    let got = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    s.seen.lock().unwrap().push(got.clone());
    if got == format!("Bearer {}", s.credential.lock().unwrap()) {
        (StatusCode::OK, "[]".into())
    } else {
        (StatusCode::UNAUTHORIZED, "{}".into())
    }
}

async fn strict_agent() -> (Strict, String) {
    let s = Strict::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/v1/jobs", get(jobs).post(start))
        .with_state(s.clone());
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (s, url)
}

fn credential(fill: char) -> String {
    format!("paasagent_{}", fill.to_string().repeat(64))
}

async fn heartbeat(
    running: &Running,
    token: &str,
    name: &str,
    url: &str,
    agent_token: Option<String>,
) -> reqwest::Response {
    let hb = NodeHeartbeat {
        name: name.into(),
        url: url.into(),
        memory_bytes: 1 << 30,
        jobs: Vec::new(),
        layers: Vec::new(),
        stats: Vec::new(),
        agent_token,
        volumes: Vec::new(),
    };
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/v1/nodes/heartbeat", running.api))
        .bearer_auth(token)
        .json(&hb)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn ac4_controller_calls_each_agent_with_its_own_credential() {
    let running = Running::start(false).await;
    let shared = running.c.tokens.node().to_string();
    let (agent, url) = strict_agent().await;
    let own = credential('a');
    *agent.credential.lock().unwrap() = own.clone();

    // Before the agent registered, the controller presents the shared token (refused here).
    assert!(running.c.agents.list_jobs(&url).await.is_err());
    assert_eq!(
        agent.seen.lock().unwrap().last().unwrap(),
        &format!("Bearer {shared}")
    );

    let resp = heartbeat(&running, &shared, "ac4n1", &url, Some(own.clone())).await;
    assert_eq!(resp.status(), 204);
    assert!(resp.headers().contains_key(paas_api::AGENT_TOKEN_STORED));
    running.c.agents.list_jobs(&url).await.unwrap();
    assert_eq!(
        agent.seen.lock().unwrap().last().unwrap(),
        &format!("Bearer {own}")
    );

    // A heartbeat without a credential gets no such header (an older agent).
    let resp = heartbeat(&running, &shared, "ac4n9", "http://127.0.0.1:9", None).await;
    assert_eq!(resp.status(), 204);
    assert!(!resp.headers().contains_key(paas_api::AGENT_TOKEN_STORED));

    // Another controller of the same store (a follower) finds it in the store.
    let follower = AgentClient::new(shared.clone()).with_store(running.c.store.clone());
    follower.list_jobs(&url).await.unwrap();
    assert_eq!(
        agent.seen.lock().unwrap().last().unwrap(),
        &format!("Bearer {own}")
    );

    // The agent's state dir was wiped: it made a new credential, and its heartbeat (with
    // its per-node token, or after an admin removed the node) reached the other controller
    // only. The first controller's call is refused, it reads the store again and retries
    // with the new one.
    let renewed = credential('b');
    let before = agent.seen.lock().unwrap().len();
    *agent.credential.lock().unwrap() = renewed.clone();
    running
        .c
        .store
        .set_node_agent_token("ac4n1", &renewed)
        .await
        .unwrap();
    running.c.agents.list_jobs(&url).await.unwrap();
    // (The scheduler's passes call the agent too, so look at everything since.)
    let seen = agent.seen.lock().unwrap()[before..].to_vec();
    assert!(seen.contains(&format!("Bearer {own}")), "{seen:?}");
    assert_eq!(seen.last(), Some(&format!("Bearer {renewed}")), "{seen:?}");

    // A credential that is not one is refused and not stored.
    let resp = heartbeat(&running, &shared, "ac4n1", &url, Some("x\ty".into())).await;
    assert_eq!(resp.status(), 400, "{:?}", resp.text().await);
    assert_eq!(
        running
            .c
            .store
            .agent_token_for_url(&url)
            .await
            .unwrap()
            .as_deref(),
        Some(renewed.as_str())
    );
}

#[tokio::test]
async fn ac4_a_node_token_cannot_set_another_nodes_credential() {
    let running = Running::start(false).await;
    let n2_token = running.c.store.issue_node_token("ac4n2").await.unwrap();
    let (_agent, url) = strict_agent().await;
    let resp = heartbeat(&running, &n2_token, "ac4n1", &url, Some(credential('c'))).await;
    assert_eq!(resp.status(), 403);
    assert_eq!(
        running.c.store.agent_token_for_url(&url).await.unwrap(),
        None
    );
    let resp = heartbeat(&running, &n2_token, "ac4n2", &url, Some(credential('d'))).await;
    assert_eq!(resp.status(), 204);
    assert!(resp.headers().contains_key(paas_api::AGENT_TOKEN_STORED));
}

#[tokio::test]
async fn ac4_only_admins_turn_an_apps_api_access() {
    let running = Running::start(false).await;
    let s = &running.c.store;
    s.create_app("ac4web").await.unwrap();
    s.create_user("ac4m", paas_controller::store::role::MEMBER, None)
        .await
        .unwrap();
    s.add_collaborator("ac4web", "ac4m").await.unwrap();
    let (_, member) = s.create_token("ac4m", "t", None).await.unwrap();
    let admin = running.c.tokens.admin().to_string();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = |app: &str| format!("{}/v1/apps/{app}/api-access", running.api);
    let get = |token: String, app: &'static str| {
        let req = http.get(url(app)).bearer_auth(token);
        async move {
            let r = req.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let patch = |token: String, app: &'static str, body: serde_json::Value| {
        let req = http.patch(url(app)).bearer_auth(token).json(&body);
        async move {
            let r = req.send().await.unwrap();
            (
                r.status().as_u16(),
                r.json::<serde_json::Value>().await.unwrap(),
            )
        }
    };
    let (status, body) = get(member.clone(), "ac4web").await;
    assert_eq!(
        (status, body["enabled"].clone()),
        (200, false.into()),
        "{body}"
    );
    let (status, _) = patch(
        member.clone(),
        "ac4web",
        serde_json::json!({"enabled": true}),
    )
    .await;
    assert_eq!(status, 403);
    assert!(!s.app_api_access("ac4web").await.unwrap());
    for bad in [
        serde_json::json!({"enabled": "yes"}),
        serde_json::json!({"enabled": true, "also": 1}),
        serde_json::json!({}),
    ] {
        assert_eq!(patch(admin.clone(), "ac4web", bad).await.0, 400);
    }
    assert_eq!(
        patch(
            admin.clone(),
            "ac4none",
            serde_json::json!({"enabled": true})
        )
        .await
        .0,
        404
    );
    let (status, body) = patch(
        admin.clone(),
        "ac4web",
        serde_json::json!({"enabled": true}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, serde_json::json!({"app": "ac4web", "enabled": true}));
    assert_eq!(get(member, "ac4web").await.1["enabled"], true);
    assert!(s.app_api_access("ac4web").await.unwrap());
}

#[tokio::test]
async fn ac4_jobs_of_an_app_with_api_access_carry_it() {
    let running = Running::start(false).await;
    let shared = running.c.tokens.node().to_string();
    let (agent, url) = strict_agent().await;
    let own = credential('e');
    *agent.credential.lock().unwrap() = own.clone();
    let s = &running.c.store;
    for (app, on) in [("ac4on", true), ("ac4off", false)] {
        s.create_app(app).await.unwrap();
        s.set_app_api_access(app, on).await.unwrap();
        s.create_release(&paas_controller::store::ReleaseRow {
            app: app.into(),
            version: 1,
            image: format!("apps/{app}@sha256:{}", "c".repeat(64)),
            source_version: None,
            process_types: std::collections::BTreeMap::from([("web".into(), "serve".into())]),
            config: std::collections::BTreeMap::new(),
            description: "Deploy".into(),
            created_at: paas_controller::util::now_rfc3339(),
        })
        .await
        .unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let resp = heartbeat(&running, &shared, "ac4n5", &url, Some(own.clone())).await;
        assert_eq!(resp.status(), 204);
        let specs = agent.specs.lock().unwrap().clone();
        let of = |app: &str| {
            specs
                .iter()
                .find(|j| j.labels.get("paas.app").map(String::as_str) == Some(app))
                .map(|j| j.api_access)
        };
        if let (Some(on), Some(off)) = (of("ac4on"), of("ac4off")) {
            assert!(on && !off, "{specs:?}");
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no job starts: {specs:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    // Every call (job lists and starts) came with the agent's own credential.
    assert!(!agent.seen.lock().unwrap().is_empty());
    assert!(agent
        .seen
        .lock()
        .unwrap()
        .iter()
        .all(|h| h == &format!("Bearer {own}")));
}

/// `method path` with `token`: the status and the JSON body (Null when there is none).
async fn call(
    running: &Running,
    method: reqwest::Method,
    path: &str,
    token: &str,
) -> (u16, serde_json::Value) {
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .request(method, format!("{}{path}", running.api))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

/// The URL and agent credential the store holds for node `name`.
async fn stored(running: &Running, name: &str) -> (Option<String>, Option<String>) {
    let url = running
        .c
        .store
        .list_nodes()
        .await
        .unwrap()
        .into_iter()
        .find(|n| n.name == name)
        .map(|n| n.url);
    let token = running.c.store.node_agent_token(name).await.unwrap();
    (url, token)
}

#[tokio::test]
async fn ac4_the_shared_token_cannot_take_over_a_registered_node() {
    let running = Running::start(false).await;
    let shared = running.c.tokens.node().to_string();
    let admin = running.c.tokens.admin().to_string();
    let (agent, url) = strict_agent().await;
    let own = credential('1');
    *agent.credential.lock().unwrap() = own.clone();
    let resp = heartbeat(&running, &shared, "ac4h1", &url, Some(own.clone())).await;
    assert_eq!(resp.status(), 204);

    // An impostor with the shared token: its own credential, its own URL, or no credential
    // at all (an admin's token is held to the same rule).
    let (_impostor, evil_url) = strict_agent().await;
    for (token, agent_token) in [
        (&shared, Some(credential('2'))),
        (&shared, None),
        (&admin, Some(credential('3'))),
    ] {
        for to in [&evil_url, &url] {
            let resp = heartbeat(&running, token, "ac4h1", to, agent_token.clone()).await;
            assert_eq!(resp.status(), 403, "{agent_token:?} {to}");
            assert!(!resp.headers().contains_key(paas_api::AGENT_TOKEN_STORED));
            let body: serde_json::Value = resp.json().await.unwrap();
            let message = body["error"]["message"].as_str().unwrap();
            assert!(
                message.contains("ac4h1 is registered with")
                    && message.contains("paas nodes:remove ac4h1"),
                "{message}"
            );
        }
    }
    assert_eq!(
        stored(&running, "ac4h1").await,
        (Some(url.clone()), Some(own.clone()))
    );
    // The controller still calls the real agent, with its credential.
    running.c.agents.list_jobs(&url).await.unwrap();
    assert_eq!(
        agent.seen.lock().unwrap().last().unwrap(),
        &format!("Bearer {own}")
    );
    assert_eq!(
        running
            .c
            .store
            .agent_token_for_url(&evil_url)
            .await
            .unwrap(),
        None
    );

    // The check reads the store, not this controller's memory: another controller of the
    // same database stored a newer credential (the agent made one), so the old one is
    // refused here although this controller remembers it.
    let newer = credential('4');
    running
        .c
        .store
        .set_node_agent_token("ac4h1", &newer)
        .await
        .unwrap();
    let resp = heartbeat(&running, &shared, "ac4h1", &url, Some(own.clone())).await;
    assert_eq!(resp.status(), 403);
    let resp = heartbeat(&running, &shared, "ac4h1", &url, Some(newer.clone())).await;
    assert_eq!(resp.status(), 204);
    assert!(resp.headers().contains_key(paas_api::AGENT_TOKEN_STORED));
}

#[tokio::test]
async fn ac4_the_registered_credential_may_move_its_node() {
    let running = Running::start(false).await;
    let shared = running.c.tokens.node().to_string();
    let (agent, old_url) = strict_agent().await;
    let own = credential('5');
    *agent.credential.lock().unwrap() = own.clone();
    let resp = heartbeat(&running, &shared, "ac4h2", &old_url, Some(own.clone())).await;
    assert_eq!(resp.status(), 204);
    // The agent restarted on another port (or address): same credential, new URL.
    let (moved, new_url) = strict_agent().await;
    *moved.credential.lock().unwrap() = own.clone();
    let resp = heartbeat(&running, &shared, "ac4h2", &new_url, Some(own.clone())).await;
    assert_eq!(resp.status(), 204);
    assert!(resp.headers().contains_key(paas_api::AGENT_TOKEN_STORED));
    assert_eq!(
        stored(&running, "ac4h2").await,
        (Some(new_url.clone()), Some(own.clone()))
    );
    running.c.agents.list_jobs(&new_url).await.unwrap();
    assert_eq!(
        moved.seen.lock().unwrap().last().unwrap(),
        &format!("Bearer {own}")
    );
}

#[tokio::test]
async fn ac4_a_removed_node_registers_again() {
    let running = Running::start(false).await;
    let shared = running.c.tokens.node().to_string();
    let admin = running.c.tokens.admin().to_string();
    // Nothing answers here: the scheduler leaves the node's job row as recorded.
    let url = "http://127.0.0.1:9";
    let resp = heartbeat(&running, &shared, "ac4h3", url, Some(credential('6'))).await;
    assert_eq!(resp.status(), 204);
    let now = paas_controller::util::now_rfc3339();
    running
        .c
        .store
        .upsert_job(&paas_controller::store::JobRow {
            id: "ac4app-v1-web-1".into(),
            app: "ac4app".into(),
            release: 1,
            process_type: "web".into(),
            node: "ac4h3".into(),
            state: "up".into(),
            addr: None,
            exit_reason: None,
            created_at: now.clone(),
            updated_at: now,
        })
        .await
        .unwrap();

    // The machine was rebuilt: a new agent credential under the old name is refused.
    let rebuilt = credential('7');
    let resp = heartbeat(&running, &shared, "ac4h3", url, Some(rebuilt.clone())).await;
    assert_eq!(resp.status(), 403);

    // Only admins remove nodes; not while the node has jobs and is not draining.
    let delete = reqwest::Method::DELETE;
    let (status, _) = call(&running, delete.clone(), "/v1/nodes/ac4h3", &shared).await;
    assert_eq!(status, 403);
    let (status, body) = call(&running, delete.clone(), "/v1/nodes/ac4h3", &admin).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("paas nodes:drain ac4h3"),
        "{body}"
    );
    let (status, _) = call(
        &running,
        reqwest::Method::POST,
        "/v1/nodes/ac4h3/drain",
        &admin,
    )
    .await;
    assert_eq!(status, 200);
    let (status, body) = call(&running, delete.clone(), "/v1/nodes/ac4h3", &admin).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"name": "ac4h3", "jobs_removed": 1})
    );
    assert_eq!(stored(&running, "ac4h3").await, (None, None));
    assert!(running.c.store.active_jobs().await.unwrap().is_empty());
    let (status, _) = call(&running, delete.clone(), "/v1/nodes/ac4h3", &admin).await;
    assert_eq!(status, 404);

    // Its next heartbeat registers it afresh, with the new credential and URL.
    let new_url = "http://127.0.0.1:10";
    let resp = heartbeat(&running, &shared, "ac4h3", new_url, Some(rebuilt.clone())).await;
    assert_eq!(resp.status(), 204);
    assert!(resp.headers().contains_key(paas_api::AGENT_TOKEN_STORED));
    assert_eq!(
        stored(&running, "ac4h3").await,
        (Some(new_url.to_string()), Some(rebuilt))
    );
}

#[tokio::test]
async fn ac4_a_per_node_token_may_renew_its_nodes_credential() {
    let running = Running::start(false).await;
    let shared = running.c.tokens.node().to_string();
    let own_token = running.c.store.issue_node_token("ac4h4").await.unwrap();
    let (_agent, url) = strict_agent().await;
    let resp = heartbeat(&running, &shared, "ac4h4", &url, Some(credential('8'))).await;
    assert_eq!(resp.status(), 204);
    // The node's own token speaks for it: a wiped state dir's new credential and a new URL
    // are taken without removing the node.
    let (_moved, new_url) = strict_agent().await;
    let resp = heartbeat(
        &running,
        &own_token,
        "ac4h4",
        &new_url,
        Some(credential('9')),
    )
    .await;
    assert_eq!(resp.status(), 204);
    assert!(resp.headers().contains_key(paas_api::AGENT_TOKEN_STORED));
    assert_eq!(
        stored(&running, "ac4h4").await,
        (Some(new_url), Some(credential('9')))
    );
}

#[tokio::test]
async fn heartbeat_answers_name_the_other_nodes() {
    let running = Running::start(false).await;
    let shared = running.c.tokens.node().to_string();
    let peers = |resp: &reqwest::Response| {
        resp.headers()
            .get(paas_api::PEER_NODES)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let resp = heartbeat(&running, &shared, "n1", "http://10.240.0.11:7070", None).await;
    assert_eq!(resp.status(), 204);
    assert_eq!(peers(&resp).as_deref(), Some(""), "no other node yet");
    let resp = heartbeat(&running, &shared, "n2", "http://10.240.0.12:7070", None).await;
    assert_eq!(peers(&resp).as_deref(), Some("10.240.0.11:7070"));
    // A node known by a host name is not named (the agent wants addresses).
    heartbeat(&running, &shared, "n3", "http://node3.example:7070", None).await;
    let resp = heartbeat(&running, &shared, "n1", "http://10.240.0.11:7070", None).await;
    assert_eq!(peers(&resp).as_deref(), Some("10.240.0.12:7070"));
}
