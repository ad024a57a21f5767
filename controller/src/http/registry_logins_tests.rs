//! `/v1/registry-logins` through `oneshot`: each person sees and deletes only their own
//! logins, never a password; nodes are refused; a loopback host the controller was not
//! told to allow is refused before any request; a removed user's logins go with them.

use std::sync::Arc;

use http::StatusCode;

use crate::http::test_support::{controller, send_as};
use crate::registry_client::Credentials;
use crate::state::Controller;
use crate::store::role;

async fn send(
    c: &Arc<Controller>,
    token: &str,
    method: &str,
    path: &str,
    body: &str,
) -> (StatusCode, serde_json::Value) {
    let (status, body) = send_as(c, token, method, path, body).await;
    (
        status,
        serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
    )
}

#[tokio::test]
async fn each_person_sees_only_their_own_logins_and_never_a_password() {
    let dir = tempfile::tempdir().unwrap();
    let c = controller(&dir).await;
    let mut tokens = Vec::new();
    for name in ["ann", "bob"] {
        c.store.create_user(name, role::MEMBER, None).await.unwrap();
        tokens.push(c.store.create_token(name, "t", None).await.unwrap().1);
    }
    let (ann, bob) = (tokens[0].clone(), tokens[1].clone());
    c.registry_logins
        .set(
            "ann",
            "registry.example.com",
            Credentials {
                username: "ann-r".into(),
                password: "ann-r-secret".into(),
            },
        )
        .unwrap();

    let (s, v) = send(&c, &ann, "GET", "/v1/registry-logins", "").await;
    assert_eq!(s, StatusCode::OK);
    assert_eq!(
        v,
        serde_json::json!([{"host": "registry.example.com", "username": "ann-r"}])
    );
    assert!(!v.to_string().contains("ann-r-secret"));
    let (s, v) = send(&c, &bob, "GET", "/v1/registry-logins", "").await;
    assert_eq!((s, v), (StatusCode::OK, serde_json::json!([])));
    let (s, _) = send(
        &c,
        &bob,
        "DELETE",
        "/v1/registry-logins/registry.example.com",
        "",
    )
    .await;
    assert_eq!(s, StatusCode::NOT_FOUND);
    let node = c.tokens.node().to_string();
    let (s, _) = send(&c, &node, "GET", "/v1/registry-logins", "").await;
    assert_eq!(s, StatusCode::FORBIDDEN);

    // Checked before anything is sent: a loopback registry needs --insecure-registry; a
    // bad body or host is a 400 naming what to send.
    let body = r#"{"username": "u", "password": "p"}"#;
    let (s, v) = send(&c, &bob, "PUT", "/v1/registry-logins/127.0.0.1:9", body).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(v["error"]["code"], "registry_host_refused", "{v}");
    let (s, v) = send(&c, &bob, "PUT", "/v1/registry-logins/h.example.com", "{}").await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "{v}");
    assert!(
        v["error"]["message"].as_str().unwrap().contains("username"),
        "{v}"
    );
    let (s, _) = send(&c, &bob, "PUT", "/v1/registry-logins/h%20x", body).await;
    assert_eq!(s, StatusCode::BAD_REQUEST);

    // ann deletes hers; a removed user's logins go with them.
    let (s, _) = send(
        &c,
        &ann,
        "DELETE",
        "/v1/registry-logins/Registry.Example.com",
        "",
    )
    .await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    c.registry_logins
        .set(
            "bob",
            "r2.example.com",
            Credentials {
                username: "b".into(),
                password: "b".into(),
            },
        )
        .unwrap();
    let admin = c.tokens.admin().to_string();
    let (s, _) = send(&c, &admin, "DELETE", "/v1/users/bob", "").await;
    assert_eq!(s, StatusCode::NO_CONTENT);
    assert!(c.registry_logins.list("bob").unwrap().is_empty());
}
