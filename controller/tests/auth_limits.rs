//! The failure limits cannot be turned against valid callers (issue 14, "Locking everyone
//! out"), over real HTTP against an in-process controller served with connect info. Other
//! source addresses are simulated by binding the client to other loopback addresses
//! (127.0.0.0/8 is all loopback on Linux).
//!
//! * 80 bad bearer tokens from one address: the first ones get 401, then 429 with
//!   `Retry-After`; from that same address a valid admin token, a member's token, a node
//!   heartbeat, the registry and a real `git push` (build and deploy on the fake agent)
//!   all still succeed, and the node stays up.
//! * Node traffic has its own budget: bad heartbeats use up only the node budget.
//! * Guessing one user's password from many addresses is slowed (one verified guess per
//!   address once the user is being guessed), answered 429 with `Retry-After`, while the
//!   real user logs in from an address that was not failing, over the API and the
//!   dashboard, and a dashboard session keeps working from a limited address.

mod support;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use support::{AppDir, FakeAgent, Running};

/// An HTTP client whose connections come from `from`.
fn client_from(from: &str) -> reqwest::Client {
    let ip: IpAddr = from.parse().unwrap();
    reqwest::Client::builder()
        .no_proxy()
        .local_address(ip)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap()
}

async fn call(
    http: &reqwest::Client,
    base: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = http.request(method.parse().unwrap(), format!("{base}{path}"));
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

fn retry_after(headers: &reqwest::header::HeaderMap) -> u64 {
    headers
        .get("retry-after")
        .expect("a 429 carries Retry-After")
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Makes user `name` (role `role`) with `password`; returns an API token of theirs.
async fn user(running: &Running, name: &str, role: &str, password: &str) -> String {
    let http = client_from("127.0.0.1");
    let admin = running.c.tokens.admin().to_string();
    let body = json!({"name": name, "role": role, "password": password});
    let (status, made, _) = call(
        &http,
        &running.api,
        "POST",
        "/v1/users",
        Some(&admin),
        Some(body),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let (status, tok, _) = call(
        &http,
        &running.api,
        "POST",
        "/v1/tokens",
        Some(&admin),
        Some(json!({"user": name, "name": "t"})),
    )
    .await;
    assert_eq!(status, 201, "{tok}");
    tok["token"].as_str().unwrap().to_string()
}

fn heartbeat(name: &str) -> Value {
    json!({"name": name, "url": "http://127.0.0.1:9", "memory_bytes": 1 << 30, "jobs": []})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tokens_from_one_address_never_lock_out_valid_callers_there() {
    let running = Running::start(true).await;
    let (agent, _tasks) = FakeAgent::join(&running).await;
    let admin = running.c.tokens.admin().to_string();
    let node = running.c.tokens.node().to_string();
    let member = user(&running, "mia", "member", "mia-password-1").await;
    let http = client_from("127.0.0.1");
    let base = running.api.as_str();

    // The attack: 80 bad bearer tokens from the address the local agent and git use.
    let mut statuses = Vec::new();
    for i in 0..80 {
        let bad = if i % 2 == 0 {
            format!("paas_{:064x}", i)
        } else {
            format!("garbage-{i}")
        };
        let (status, body, headers) = call(&http, base, "GET", "/v1/apps", Some(&bad), None).await;
        if status == 429 {
            assert_eq!(body["error"]["code"], "rate_limited", "{body}");
            assert!(retry_after(&headers) >= 1);
        } else {
            assert_eq!(status, 401, "{body}");
        }
        statuses.push(status);
    }
    let refused = statuses.iter().filter(|s| **s == 401).count();
    assert!(
        (10..=12).contains(&refused),
        "the first ~10 bad tokens get 401, the rest 429: {statuses:?}"
    );
    assert_eq!(
        statuses.last(),
        Some(&429),
        "the limit holds for bad tokens"
    );

    // Every valid credential from that same address is served.
    let (status, body, _) = call(&http, base, "GET", "/v1/apps", Some(&admin), None).await;
    assert_eq!(status, 200, "admin token: {body}");
    let (status, body, _) = call(&http, base, "GET", "/v1/whoami", Some(&member), None).await;
    assert_eq!(
        (status, body["name"].as_str()),
        (200, Some("mia")),
        "{body}"
    );
    // A real git push from the same address (git asks without credentials first, then
    // with the admin token as password): built on the fake agent, deployed and routed.
    let dir = Arc::new(AppDir::new());
    dir.write("Procfile", "web: serve\n");
    dir.commit("first");
    let (ok, out) = dir
        .push(&running.git_url("locked", Some(&admin)), "main")
        .await;
    assert!(ok, "git push during the attack: {out}");
    let (status, body) = running.request_app("locked").await;
    assert_eq!(status, 200, "{body}");
    // The fake agent's own heartbeats (every second, from 127.0.0.1) kept it up.
    let (_, nodes, _) = call(&http, base, "GET", "/v1/nodes", Some(&admin), None).await;
    let fake = nodes
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "fake")
        .cloned()
        .unwrap_or_default();
    assert_eq!(fake["state"], "up", "{nodes}");
    assert!(!agent.up_jobs().is_empty());

    // Heartbeats of other nodes (after the deploy, so nothing is placed on them).
    let (status, body, _) = call(
        &http,
        base,
        "POST",
        "/v1/nodes/heartbeat",
        Some(&node),
        Some(heartbeat("other-node")),
    )
    .await;
    assert_eq!(status, 204, "node heartbeat: {body}");
    let reg = http
        .get(format!("{base}/v2/"))
        .basic_auth("u", Some(&node))
        .send()
        .await
        .unwrap();
    assert_eq!(reg.status().as_u16(), 200, "registry with the node token");
    // A per-node token too (it spends the node budget when wrong, never when right).
    let (status, made, _) = call(
        &http,
        base,
        "POST",
        "/v1/node-tokens",
        Some(&admin),
        Some(json!({"node": "n2"})),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let n2 = made["token"].as_str().unwrap().to_string();
    let (status, body, _) = call(
        &http,
        base,
        "POST",
        "/v1/nodes/heartbeat",
        Some(&n2),
        Some(heartbeat("n2")),
    )
    .await;
    assert_eq!(status, 204, "per-node token heartbeat: {body}");

    // Node traffic has its own budget: the people budget of 127.0.0.1 is spent, but a bad
    // heartbeat token from there is still only a 401...
    let (status, _, _) = call(
        &http,
        base,
        "POST",
        "/v1/nodes/heartbeat",
        Some("paasnode_wrong"),
        Some(heartbeat("n3")),
    )
    .await;
    assert_eq!(status, 401);
    // ...and bad heartbeats from another address spend only that address's node budget.
    let nodes_http = client_from("127.0.3.1");
    let mut last = 0;
    for _ in 0..15 {
        last = call(
            &nodes_http,
            base,
            "POST",
            "/v1/nodes/heartbeat",
            Some(&format!("paasnode_{:064x}", 7)),
            Some(heartbeat("n3")),
        )
        .await
        .0;
    }
    assert_eq!(last, 429, "the node budget is limited too");
    let (status, _, _) = call(&nodes_http, base, "GET", "/v1/apps", Some("paas_bad"), None).await;
    assert_eq!(
        status, 401,
        "the people budget of that address is untouched"
    );
    let wrong = json!({"user": "mia", "password": "not-her-password"});
    let (status, _, _) = call(&nodes_http, base, "POST", "/v1/login", None, Some(wrong)).await;
    assert_eq!(status, 401, "a password from there is still verified");
}

/// The login form's CSRF cookie and token.
async fn login_form(http: &reqwest::Client, base: &str) -> (String, String) {
    let resp = http.get(format!("{base}/login")).send().await.unwrap();
    let cookie = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("paas_login_csrf="))
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    let token = cookie.trim_start_matches("paas_login_csrf=").to_string();
    (cookie, token)
}

/// A dashboard login: (status, Retry-After, session cookie).
async fn dashboard_login(
    http: &reqwest::Client,
    base: &str,
    user: &str,
    password: &str,
) -> (u16, Option<u64>, Option<String>) {
    let (cookie, csrf) = login_form(http, base).await;
    let resp = http
        .post(format!("{base}/login"))
        .header("cookie", cookie)
        .form(&[("user", user), ("password", password), ("csrf", &csrf)])
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().parse().unwrap());
    let session = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("paas_session=") && !v.starts_with("paas_session=;"))
        .map(|v| v.split(';').next().unwrap().to_string());
    (status, retry, session)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_guessing_from_many_addresses_is_slowed_without_locking_out_the_user() {
    let running = Running::start(false).await;
    let password = "ann-real-password";
    let ann_token = user(&running, "ann", "member", password).await;
    let base = running.api.as_str();

    // 30 addresses, 3 wrong passwords each. Without a per-user limit every one of the 90
    // guesses would be checked (each address has a budget of 10).
    let (mut checked, mut limited) = (0, 0);
    for a in 1..=30 {
        let http = client_from(&format!("127.0.1.{a}"));
        for g in 0..3 {
            let guess = json!({"user": "ann", "password": format!("guess-{a}-{g}")});
            let (status, body, headers) =
                call(&http, base, "POST", "/v1/login", None, Some(guess)).await;
            match status {
                401 => checked += 1,
                429 => {
                    assert_eq!(body["error"]["code"], "rate_limited", "{body}");
                    assert!(retry_after(&headers) >= 1);
                    limited += 1;
                }
                other => panic!("unexpected {other}: {body}"),
            }
        }
    }
    // The first 20 wrong passwords use up ann's budget; from then on each address gets
    // one guess: 20 + about 24, not 90.
    assert!(checked <= 20 + 30, "{checked} guesses were checked");
    assert!(limited >= 40, "only {limited} guesses were refused");
    assert_eq!(checked + limited, 90);

    // The guessing goes on, the real user still logs in from her own address, over the
    // API and the dashboard...
    let home = client_from("127.0.2.1");
    let login = json!({"user": "ann", "password": password});
    let (status, body, _) = call(&home, base, "POST", "/v1/login", None, Some(login.clone())).await;
    assert_eq!(status, 201, "the real user from a quiet address: {body}");
    let (status, _, session) = dashboard_login(&home, base, "ann", password).await;
    assert_eq!(status, 303, "dashboard login from a quiet address");
    let session = session.expect("a session cookie");
    // ...while an address that was guessing is refused even with the right password
    // (it is told when to retry), and her token and session work from there.
    let guesser = client_from("127.0.1.5");
    let (status, body, headers) =
        call(&guesser, base, "POST", "/v1/login", None, Some(login)).await;
    assert_eq!(status, 429, "{body}");
    assert!(retry_after(&headers) >= 1);
    let (status, retry, _) = dashboard_login(&guesser, base, "ann", password).await;
    assert_eq!(status, 429);
    assert!(retry.is_some_and(|s| s >= 1));
    let (status, body, _) = call(&guesser, base, "GET", "/v1/whoami", Some(&ann_token), None).await;
    assert_eq!(
        (status, body["name"].as_str()),
        (200, Some("ann")),
        "{body}"
    );
    let page = guesser
        .get(format!("{base}/"))
        .header("cookie", &session)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200, "a session is never limited");
    // Another user is not affected by the guessing of ann.
    let bob = json!({"user": "bob", "password": "whatever-it-is"});
    let (status, _, _) = call(
        &client_from("127.0.1.6"),
        base,
        "POST",
        "/v1/login",
        None,
        Some(bob),
    )
    .await;
    assert_eq!(status, 401, "bob's password is checked (and wrong)");
}
