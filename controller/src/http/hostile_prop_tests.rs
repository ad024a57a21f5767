//! Property tests of hostile input (part of the bounded fuzz run, tests/fuzz.sh): domain
//! names, uploaded certificates (PEM) and JSON bodies of the API. Each property says what
//! any input may lead to: a validated domain meets the grammar, a certificate check never
//! panics, and the API answers every body with a JSON error below 500 or a success.
//! `PROPTEST_CASES` sets the number of cases (defaults below).

use std::sync::{Arc, OnceLock};

use axum::body::Body;
use http::Request;
use proptest::prelude::*;
use tower::ServiceExt;

use super::domains::validate_hostname;
use crate::config::Settings;
use crate::state::Controller;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The grammar of a custom domain, stated independently of `validate_hostname`.
fn hostname_spec(h: &str, platform: &str) -> bool {
    let labels: Vec<&str> = h.split('.').collect();
    !h.is_empty()
        && h.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            (1..=63).contains(&l.len())
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
                && !l.starts_with('-')
                && !l.ends_with('-')
        })
        && h != platform
        && !h.ends_with(&format!(".{platform}"))
}

fn hostnameish() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            "[a-z0-9-]{0,70}",
            "[A-Za-z0-9-]{1,10}",
            Just("localhost".to_string()),
            Just("xn--d1acpjx3f".to_string()),
            "\\PC{0,5}",
        ],
        0..6,
    )
    .prop_map(|labels| labels.join("."))
}

fn pem(label: &str, der: &[u8]) -> String {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let lines: Vec<&str> = b64
        .as_bytes()
        .chunks(64)
        .map(|c| std::str::from_utf8(c).unwrap_or(""))
        .collect();
    format!(
        "-----BEGIN {label}-----\n{}\n-----END {label}-----\n",
        lines.join("\n")
    )
}

/// A valid self-signed certificate and key for `www.example.test`, made once.
fn valid_pair() -> &'static (String, String) {
    static PAIR: OnceLock<(String, String)> = OnceLock::new();
    PAIR.get_or_init(|| {
        let ck = rcgen::generate_simple_self_signed(vec!["www.example.test".to_string()])
            .expect("rcgen");
        (ck.cert.pem(), ck.signing_key.serialize_pem())
    })
}

/// One controller (and runtime) for every JSON case, with an app `web`.
fn api() -> &'static (tokio::runtime::Runtime, tempfile::TempDir, Arc<Controller>) {
    static API: OnceLock<(tokio::runtime::Runtime, tempfile::TempDir, Arc<Controller>)> =
        OnceLock::new();
    API.get_or_init(|| {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let settings = Settings::new(
            dir.path().to_path_buf(),
            "127.0.0.1:8080".parse().unwrap(),
            8000,
            "localhost",
        )
        .unwrap();
        let c = rt.block_on(async {
            let c = Controller::open(settings).await.unwrap();
            c.store.create_app("web").await.unwrap();
            c
        });
        (rt, dir, c)
    })
}

fn json_value() -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::from),
        prop::sample::select(vec!["web", "enabled", "count", "FOO", "1", "true", ""])
            .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(serde_json::Value::from),
            prop::collection::btree_map(
                prop::sample::select(vec![
                    "name",
                    "count",
                    "enabled",
                    "hostname",
                    "user",
                    "role",
                    "web",
                    "FOO",
                    "quantity",
                    "type",
                    "extra",
                    "https_redirect",
                ])
                .prop_map(str::to_string),
                inner,
                0..4,
            )
            .prop_map(|m| serde_json::Value::Object(m.into_iter().collect())),
        ]
    })
}

fn body() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        json_value().prop_map(|v| serde_json::to_vec(&v).unwrap()),
        prop::collection::vec(any::<u8>(), 0..64),
        json_value().prop_map(|v| {
            let mut b = serde_json::to_vec(&v).unwrap();
            b.truncate(b.len() / 2);
            b
        }),
    ]
}

const ENDPOINTS: &[(&str, &str)] = &[
    ("POST", "/v1/apps"),
    ("PATCH", "/v1/apps/web/config"),
    ("PATCH", "/v1/apps/web/formation"),
    ("POST", "/v1/apps/web/domains"),
    ("POST", "/v1/apps/web/volumes"),
    ("PUT", "/v1/apps/web/volumes/data/mount"),
    ("POST", "/v1/apps/web/addons"),
    ("POST", "/v1/apps/web/addon-attachments"),
    ("POST", "/v1/apps/web/pg-backups"),
    ("POST", "/v1/apps/web/redis-backups"),
    (
        "POST",
        "/v1/apps/web/pg-backups/b000000000000/restore?confirm=web",
    ),
    (
        "POST",
        "/v1/apps/web/redis-backups/b000000000000/restore?confirm=web",
    ),
    (
        "PUT",
        "/v1/apps/web/pg-backup-schedules/postgresql-web-0000",
    ),
    ("PATCH", "/v1/apps/web/api-access"),
    ("PUT", "/v1/apps/web/tls"),
    ("POST", "/v1/apps/web/collaborators"),
    ("POST", "/v1/users"),
    ("POST", "/v1/tokens"),
    ("POST", "/v1/nodes/heartbeat"),
    // A loopback host the controller was not told to allow: refused before any request.
    ("PUT", "/v1/registry-logins/127.0.0.1:9"),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(512)))]

    #[test]
    fn ac4_validated_domains_meet_the_grammar(raw in prop_oneof![hostnameish(), any::<String>()]) {
        if let Ok(h) = validate_hostname(&raw, "paas.test") {
            prop_assert!(hostname_spec(&h, "paas.test"), "{raw:?} -> {h:?}");
        }
    }

    #[test]
    fn ac4_domains_of_the_grammar_are_accepted(h in "[a-z0-9]([a-z0-9-]{0,8}[a-z0-9])?\\.[a-z]{2,6}") {
        prop_assume!(hostname_spec(&h, "paas.test"));
        prop_assert_eq!(validate_hostname(&h, "paas.test"), Ok(h.clone()));
    }

    #[test]
    fn ac4_certificate_checks_never_panic(
        cert in prop_oneof![
            prop::collection::vec(any::<u8>(), 0..300).prop_map(|d| pem("CERTIFICATE", &d)),
            "\\PC{0,200}",
            (any::<prop::sample::Index>(), any::<u8>()).prop_map(|(i, b)| {
                let mut c = valid_pair().0.clone().into_bytes();
                let at = i.index(c.len());
                c[at] = b;
                String::from_utf8_lossy(&c).into_owned()
            }),
            (any::<prop::sample::Index>()).prop_map(|i| {
                let c = &valid_pair().0;
                c[..i.index(c.len())].to_string()
            }),
        ],
        key in prop_oneof![
            Just(valid_pair().1.clone()),
            prop::collection::vec(any::<u8>(), 0..200).prop_map(|d| pem("PRIVATE KEY", &d)),
            "\\PC{0,100}",
        ],
    ) {
        let hosts = vec!["www.example.test".to_string()];
        let _ = crate::router::tls::check_cert(
            &cert,
            &key,
            &hosts,
            crate::router::tls::Wildcards::Refused,
            1_800_000_000,
        );
    }

    #[test]
    fn ac4_api_json_bodies_get_an_answer_below_500(
        endpoint in prop::sample::select(ENDPOINTS),
        body in body(),
    ) {
        let (rt, _dir, c) = api();
        let (method, path) = endpoint;
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("authorization", format!("Bearer {}", c.tokens.admin()))
            .header("content-type", "application/json")
            .body(Body::from(body.clone()))
            .unwrap();
        let app = crate::http::app(Arc::clone(c));
        let (status, text) = rt.block_on(async move {
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            let bytes = http_body_util::BodyExt::collect(resp.into_body())
                .await
                .unwrap()
                .to_bytes();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        });
        prop_assert!(
            !status.is_server_error(),
            "{method} {path} {:?}: {status} {text}",
            String::from_utf8_lossy(&body)
        );
        if status.is_client_error() {
            let v: serde_json::Value = serde_json::from_str(&text)
                .map_err(|e| TestCaseError::fail(format!("{status} not JSON ({e}): {text}")))?;
            prop_assert!(v["error"]["message"].is_string(), "{text}");
        }
    }
}
