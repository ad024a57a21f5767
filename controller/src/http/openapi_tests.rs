//! Holds `/v1/openapi.json` to the code: the `.route(…)` calls under `/v1` in `src/http/`
//! (read from the source, so a route added anywhere shows up) and [`OPERATIONS`] must name
//! the same (method, path) pairs; every documented operation must reach a handler of the
//! real router (not the "no API endpoint" fallback, not 405); and the served JSON must be
//! an OpenAPI 3 document whose `$ref`s all resolve; every (method, path) the CLI sends
//! (`cli/src/routes.rs`) must be documented and mounted.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::body::Body;
use http::{header, Request, StatusCode};
use http_body_util::BodyExt;
use tower::ServiceExt;

use super::openapi::{path_params, OPERATIONS};
use crate::config::Settings;
use crate::state::Controller;

const METHODS: &[&str] = &["get", "post", "put", "patch", "delete", "any"];

/// The text of the balanced `( … )` starting at `open` (an index of `(`).
fn balanced(src: &str, open: usize) -> &str {
    let mut depth = 0;
    for (i, ch) in src[open..].char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => {
                depth -= 1;
                if depth == 0 {
                    return &src[open + 1..open + i];
                }
            }
            _ => {}
        }
    }
    &src[open + 1..]
}

/// (METHOD, path) of every `.route("/v1…", …)` in one source file.
fn routes_in(src: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (at, _) in src.match_indices(".route(") {
        let args = balanced(src, at + ".route".len());
        let Some(start) = args.find('"') else {
            continue;
        };
        let Some(len) = args[start + 1..].find('"') else {
            continue;
        };
        let path = &args[start + 1..start + 1 + len];
        if !path.starts_with("/v1") {
            continue;
        }
        let rest = &args[start + len + 2..];
        for m in METHODS {
            for (i, _) in rest.match_indices(&format!("{m}(")) {
                let before = rest[..i].chars().next_back();
                if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                    continue;
                }
                out.push((m.to_ascii_uppercase(), path.to_string()));
            }
        }
    }
    out
}

/// Every /v1 route registered in `src/http/` (tests excluded); the catch-all fallbacks
/// (`any`) are not API operations.
fn registered() -> BTreeSet<(String, String)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http");
    let mut all = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        if !name.ends_with(".rs") || name.contains("tests") {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        // A file's own test module (e.g. a fake agent in logs.rs) registers no API routes.
        let src = src
            .split("#[cfg(test)]\nmod tests {")
            .next()
            .unwrap_or_default();
        all.extend(routes_in(src).into_iter().filter(|(m, _)| m != "ANY"));
    }
    all
}

#[test]
fn the_route_scanner_reads_method_routers() {
    let src = r#"Router::new()
        .route("/v1/a/{x}", get(list).post(super::m::create))
        .route(
            "/v1/b",
            axum::routing::delete(gone),
        )
        .route("/internal/c", get(c))
        .route("/v1/{*rest}", any(unknown))"#;
    let got = routes_in(src);
    assert_eq!(
        got,
        [
            ("GET".to_string(), "/v1/a/{x}".to_string()),
            ("POST".into(), "/v1/a/{x}".into()),
            ("DELETE".into(), "/v1/b".into()),
            ("ANY".into(), "/v1/{*rest}".into()),
        ]
    );
}

#[test]
fn every_v1_route_is_documented_and_nothing_else() {
    let code = registered();
    assert!(
        code.len() > 30,
        "the scanner found too few routes: {code:?}"
    );
    let documented: BTreeSet<(String, String)> = OPERATIONS
        .iter()
        .map(|o| (o.method.to_string(), o.path.to_string()))
        .collect();
    let missing: Vec<_> = code.difference(&documented).collect();
    let extra: Vec<_> = documented.difference(&code).collect();
    assert!(
        missing.is_empty(),
        "routes without a line in http/openapi.rs OPERATIONS: {missing:?}"
    );
    assert!(
        extra.is_empty(),
        "OPERATIONS lists routes the code does not register: {extra:?}"
    );
}

#[tokio::test]
async fn every_documented_operation_reaches_a_handler() {
    let dir = tempfile::tempdir().unwrap();
    let settings = Settings::new(
        dir.path().to_path_buf(),
        "127.0.0.1:8080".parse().unwrap(),
        8000,
        "localhost",
    )
    .unwrap();
    let c = Controller::open(settings).await.unwrap();
    for o in OPERATIONS {
        let mut path = o.path.to_string();
        for p in path_params(o.path) {
            path = path.replace(&format!("{{{p}}}"), "no-such-thing");
        }
        let req = Request::builder()
            .method(o.method)
            .uri(&path)
            .header(
                header::AUTHORIZATION,
                format!("Bearer {}", c.tokens.admin()),
            )
            .header(header::CONTENT_TYPE, "application/json")
            .body(Body::from("{}"))
            .unwrap();
        let resp = crate::http::app(Arc::clone(&c)).oneshot(req).await.unwrap();
        let status = resp.status();
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let body = String::from_utf8_lossy(&body);
        assert_ne!(
            status,
            StatusCode::METHOD_NOT_ALLOWED,
            "{} {path}",
            o.method
        );
        assert!(
            !body.contains("no API endpoint"),
            "{} {path} fell through to the fallback: {body}",
            o.method
        );
        if !status.is_success() {
            let e: serde_json::Value = serde_json::from_str(&body)
                .unwrap_or_else(|_| panic!("{} {path}: not an ErrorBody: {body}", o.method));
            assert!(
                e["error"]["code"].is_string(),
                "{} {path}: {body}",
                o.method
            );
        }
    }
}

/// Every `"$ref"` value in a JSON tree.
fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
    match v {
        serde_json::Value::Object(m) => {
            for (k, v) in m {
                if k == "$ref" {
                    out.push(v.as_str().unwrap_or_default().to_string());
                } else {
                    refs(v, out);
                }
            }
        }
        serde_json::Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

#[test]
fn the_document_is_openapi_3_with_resolving_refs_and_the_error_codes() {
    let doc: serde_json::Value = serde_json::from_str(super::openapi::document()).unwrap();
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3."),
        "{}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["title"], "paas REST API");
    let paths = doc["paths"].as_object().unwrap();
    let ops: usize = paths
        .values()
        .map(|item| {
            let item = item.as_object().unwrap();
            for (method, op) in item {
                assert!(
                    op["responses"]
                        .as_object()
                        .is_some_and(|r| r.contains_key("default")),
                    "{method}: {op}"
                );
            }
            item.len()
        })
        .sum();
    assert_eq!(ops, OPERATIONS.len());
    let schemas = doc["components"]["schemas"].as_object().unwrap();
    let mut all = Vec::new();
    refs(&doc, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r.strip_prefix("#/components/schemas/").unwrap_or(&r);
        assert!(schemas.contains_key(name), "unresolved $ref {r}");
    }
    let description = doc["info"]["description"].as_str().unwrap();
    for code in [
        "not_found",
        "validation_error",
        "precondition_failed",
        "conflict",
    ] {
        assert!(
            description.contains(code),
            "{code} missing from {description}"
        );
    }
}

/// The CLI's list of the (method, path) pairs it sends (`cli/src/routes_list.rs`, held to the
/// CLI's source by the CLI's own test).
mod cli_routes {
    include!("../../../cli/src/routes_list.rs");
}

/// `/v1/apps/{app}` → `/v1/apps/{}`.
fn without_param_names(path: &str) -> String {
    let mut out = String::new();
    let mut skip = false;
    for ch in path.chars() {
        match ch {
            '{' => {
                skip = true;
                out.push_str("{}");
            }
            '}' => skip = false,
            _ if !skip => out.push(ch),
            _ => {}
        }
    }
    out
}

/// What the CLI sends is what the controller documents and mounts: a CLI that POSTs where
/// the server takes PUT (the `buildpacks:set` 405) fails here.
#[test]
fn every_route_the_cli_uses_is_documented_and_mounted() {
    let documented: BTreeSet<(String, String)> = OPERATIONS
        .iter()
        .map(|o| (o.method.to_string(), without_param_names(o.path)))
        .collect();
    let mounted: BTreeSet<(String, String)> = registered()
        .into_iter()
        .map(|(m, p)| (m, without_param_names(&p)))
        .collect();
    assert!(cli_routes::ROUTES.len() > 30);
    for (method, path) in cli_routes::ROUTES {
        let key = (method.to_string(), without_param_names(path));
        assert!(
            documented.contains(&key),
            "the CLI sends {method} {path}, which the OpenAPI document does not list"
        );
        assert!(
            mounted.contains(&key),
            "the CLI sends {method} {path}, which the controller does not mount"
        );
    }
}
