//! Registry token auth with the controller's real access check (no agent, no root): a
//! member's token grants only what the member may do (their app's repository, pull of
//! stacks), and real `skopeo`, following the Bearer challenge with a member's credentials,
//! pushes to the member's own repository and is refused on another member's.

// The registry crate's own test helpers (gzip layers, OCI layouts), shared rather than copied.
#[path = "../../registry/tests/support/mod.rs"]
mod registry_support;
mod support;

use serde_json::{json, Value};
use support::Running;

async fn login(http: &reqwest::Client, base: &str, user: &str, password: &str) -> String {
    let resp = http
        .post(format!("{base}/v1/login"))
        .json(&json!({"user": user, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    let body: Value = resp.json().await.unwrap();
    body["token"].as_str().unwrap().to_string()
}

/// A registry token for `scope` with Basic credentials; returns (status, granted access).
async fn token(
    http: &reqwest::Client,
    base: &str,
    secret: &str,
    scope: &str,
) -> (u16, String, Value) {
    let resp = http
        .get(format!("{base}/v2/token?service=paas&scope={scope}"))
        .basic_auth("u", Some(secret))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body: Value = resp.json().await.unwrap_or(Value::Null);
    let token = body["token"].as_str().unwrap_or("").to_string();
    // The claims are the token's middle part (base64url JSON).
    let claims = token
        .split('.')
        .nth(1)
        .and_then(|p| {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .ok()
        })
        .and_then(|b| serde_json::from_slice::<Value>(&b).ok())
        .unwrap_or(Value::Null);
    (status, token, claims["access"].clone())
}

async fn get(http: &reqwest::Client, url: &str, bearer: &str) -> (u16, String) {
    let resp = http.get(url).bearer_auth(bearer).send().await.unwrap();
    let status = resp.status().as_u16();
    let challenge = resp
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, challenge)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn member_tokens_grant_only_what_the_member_may_do() {
    let running = Running::start(false).await;
    let base = running.api.clone();
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let admin = running.c.tokens.admin().to_string();
    for name in ["ann", "bob"] {
        let resp = http
            .post(format!("{base}/v1/users"))
            .bearer_auth(&admin)
            .json(&json!({"name": name, "password": format!("{name}-password")}))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201);
    }
    let ann = login(&http, &base, "ann", "ann-password").await;
    let bob = login(&http, &base, "bob", "bob-password").await;
    let resp = http
        .post(format!("{base}/v1/apps"))
        .bearer_auth(&ann)
        .json(&json!({"name": "ann-app"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);

    let scope = "repository:apps/ann-app:pull,push";
    let (status, ann_token, access) = token(&http, &base, &ann, scope).await;
    assert_eq!(status, 200);
    assert_eq!(
        access,
        json!([{"name": "apps/ann-app", "actions": ["pull", "push"]}])
    );
    let (_, bob_token, access) = token(&http, &base, &bob, scope).await;
    assert_eq!(access, json!([{"name": "apps/ann-app", "actions": []}]));
    let (_, _, access) = token(&http, &base, &bob, "repository:stacks/tiny:pull,push").await;
    assert_eq!(
        access,
        json!([{"name": "stacks/tiny", "actions": ["pull"]}])
    );
    // A bad token (or a password: Basic takes API tokens) gets no registry token.
    let (status, _, _) = token(&http, &base, "ann-password", scope).await;
    assert_eq!(status, 401);
    let (status, _, _) = token(&http, &base, "paas_bogus", scope).await;
    assert_eq!(status, 401);

    let tags = format!("{base}/v2/apps/ann-app/tags/list");
    assert_eq!(get(&http, &tags, &ann_token).await.0, 404, "allowed, empty");
    assert_eq!(get(&http, &tags, &bob_token).await.0, 403);
    let (status, challenge) = get(
        &http,
        &format!("{base}/v2/stacks/tiny/tags/list"),
        &ann_token,
    )
    .await;
    assert_eq!(status, 401);
    assert!(
        challenge.contains("scope=\"repository:stacks/tiny:pull\""),
        "{challenge}"
    );

    // Real skopeo with member credentials goes through the token flow.
    let found = std::process::Command::new("skopeo")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "skopeo is not installed; CI must install it"
        );
        eprintln!("skipping the skopeo part: skopeo is not installed");
        return;
    }
    let tmp = tempfile::tempdir().unwrap();
    let src = tmp.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    registry_support::write_layout(
        &src,
        &[registry_support::layer(&[("etc/hostname", b"member")])],
    );
    let host = base.trim_start_matches("http://");
    let push = |creds: String| {
        let home = tmp.path().join("home");
        std::fs::create_dir_all(&home).unwrap();
        std::process::Command::new("skopeo")
            .args(["--insecure-policy", "copy", "--dest-tls-verify=false"])
            .arg("--dest-creds")
            .arg(creds)
            .arg(format!("oci:{}:latest", src.display()))
            .arg(format!("docker://{host}/apps/ann-app:v1"))
            .env("HOME", &home)
            .env("REGISTRY_AUTH_FILE", home.join("auth.json"))
            .output()
            .unwrap()
    };
    // Blocking here is fine: the server runs on the runtime's other worker.
    let bob_out = push(format!("bob:{bob}"));
    let ann_out = push(format!("ann:{ann}"));
    assert!(!bob_out.status.success(), "bob pushed to ann's repository");
    let err = String::from_utf8_lossy(&bob_out.stderr);
    assert!(
        err.contains("denied") || err.contains("403") || err.contains("unauthorized"),
        "{err}"
    );
    assert!(
        ann_out.status.success(),
        "ann's push failed: {}",
        String::from_utf8_lossy(&ann_out.stderr)
    );
    assert!(running
        .c
        .registry
        .get_manifest("apps/ann-app", "v1")
        .await
        .is_ok());
}
