//! Property tests of what clients send the registry (part of the bounded fuzz run,
//! tests/fuzz.sh `registry`): the `Content-Range` of chunked uploads and the `Range` of
//! blob reads (against a statement of the grammar written here), chunked uploads over the
//! real routes with chunks in and out of order (the upload holds exactly the accepted
//! chunks, every refusal is a 416 that changes nothing, never a 5xx), the `scope`s of a
//! token request (a token grants only what the access check allows, whatever the query),
//! and the `WWW-Authenticate` challenges built from the request's path (exactly the
//! documented parameters, nothing injected). `PROPTEST_CASES` sets the number of cases.

mod support;

use std::sync::Arc;

use axum::body::Body;
use http::{Request, StatusCode};
use http_body_util::BodyExt;
use paas_registry::ranges::{byte_range, chunk_continues, content_range};
use paas_registry::token::{self, TokenIssuer};
use paas_registry::{routes, routes_with_tokens, Registry, RepoAccess, RepoCheck};
use proptest::prelude::*;
use support::{auth, sha, TOKEN};
use tower::ServiceExt;

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// `^[0-9]+$` as a number (`None` past u64).
fn number(s: &str) -> Option<u64> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
        .then(|| s.parse().ok())
        .flatten()
}

/// The Content-Range grammar: `[bytes ]DIGITS-DIGITS`, first ≤ last, around blanks.
fn content_range_spec(v: &str) -> Option<(u64, u64)> {
    let v = v.trim();
    let v = v.strip_prefix("bytes ").unwrap_or(v);
    let mut parts = v.splitn(2, '-');
    let (a, b) = (number(parts.next()?)?, number(parts.next()?)?);
    (a <= b).then_some((a, b))
}

fn rangeish() -> impl Strategy<Value = String> {
    let num = prop_oneof![
        (0u64..2000).prop_map(|n| n.to_string()),
        Just(u64::MAX.to_string()),
        Just("18446744073709551616".to_string()),
        Just(String::new()),
        Just("+5".to_string()),
        Just("-5".to_string()),
        Just(" 7".to_string()),
        "[0-9a-f]{1,3}",
    ];
    (
        prop_oneof![
            Just(""),
            Just("bytes "),
            Just("bytes="),
            Just("bytes bytes "),
            Just(" "),
        ],
        num.clone(),
        prop_oneof![Just("-"), Just(""), Just("--"), Just(","), Just("/")],
        num,
        prop_oneof![Just(""), Just("/*"), Just("/100"), Just(",0-1"), Just(" ")],
    )
        .prop_map(|(p, a, d, b, s)| format!("{p}{a}{d}{b}{s}"))
}

fn check_for(name: &str, write: bool) -> bool {
    // The model access check: pull stacks/*, pull and push apps/mine, nothing else.
    (name.starts_with("stacks/") && !write) || name == "apps/mine"
}

fn model_check() -> RepoCheck {
    Arc::new(
        |headers: http::HeaderMap, _src, repo: Option<String>, write: bool| {
            Box::pin(async move {
                let ok = headers
                    .get("authorization")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("Basic "));
                if !ok {
                    return RepoAccess::Unauthorized;
                }
                match repo {
                    None => RepoAccess::Allowed,
                    Some(r) if check_for(&r, write) => RepoAccess::Allowed,
                    Some(r) => RepoAccess::Forbidden(format!("not {r}")),
                }
            })
        },
    )
}

/// One scope word a client (or an attacker) might send.
fn scope_word() -> impl Strategy<Value = String> {
    let name = prop_oneof![
        Just("apps/mine".to_string()),
        Just("apps/theirs".to_string()),
        Just("stacks/tiny".to_string()),
        Just("apps/mine/../theirs".to_string()),
        Just("APPS/MINE".to_string()),
        Just("apps/mine:pull".to_string()),
        "[a-z0-9/._:-]{0,20}",
    ];
    let actions = prop_oneof![
        Just("pull".to_string()),
        Just("push".to_string()),
        Just("pull,push".to_string()),
        Just("*".to_string()),
        Just("delete".to_string()),
        Just("".to_string()),
        "[a-z*,]{0,12}",
    ];
    prop_oneof![
        4 => (name, actions).prop_map(|(n, a)| format!("repository:{n}:{a}")),
        1 => Just("registry:catalog:*".to_string()),
        1 => "\\PC{0,30}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn ac4_content_ranges_meet_the_grammar(v in prop_oneof![rangeish(), any::<String>()]) {
        prop_assert_eq!(content_range(&v), content_range_spec(&v), "{:?}", v);
    }

    #[test]
    fn ac4_a_chunk_continues_only_where_the_upload_ends(
        v in prop_oneof![rangeish(), any::<String>()],
        size in prop_oneof![0u64..2000, Just(u64::MAX - 1), Just(u64::MAX)],
        length in prop::option::of(prop_oneof![0u64..2000, Just(u64::MAX)]),
    ) {
        let ok = chunk_continues(&v, size, length).is_ok();
        let spec = match content_range_spec(&v) {
            None => false,
            Some((a, b)) => a == size && length.is_none_or(|n| u128::from(n) == u128::from(b - a) + 1),
        };
        prop_assert_eq!(ok, spec, "{:?} at {} with {:?}", v, size, length);
    }

    #[test]
    fn ac4_blob_ranges_stay_inside_the_blob(v in prop_oneof![rangeish(), any::<String>()], len in 0u64..3000) {
        if let Some((start, end)) = byte_range(&v, len) {
            prop_assert!(start <= end && end < len, "{v:?} of {len}: {start}-{end}");
            let spec = v.trim().strip_prefix("bytes=").unwrap();
            prop_assert!(spec.bytes().all(|b| b.is_ascii_digit() || b == b'-'), "{v:?}");
        }
    }

    #[test]
    fn ac4_chunked_uploads_hold_exactly_the_accepted_chunks(
        chunks in prop::collection::vec(
            (prop::collection::vec(any::<u8>(), 0..40), 0usize..6, any::<bool>()),
            1..8,
        ),
    ) {
        let dir = tempfile::tempdir().unwrap();
        let app = routes(Registry::open(dir.path().join("r")).unwrap(), auth());
        let call = |method: &str, uri: &str, headers: Vec<(String, String)>, body: Vec<u8>| {
            let mut req = Request::builder()
                .method(method)
                .uri(uri)
                .header("authorization", format!("Bearer {TOKEN}"));
            for (k, v) in &headers {
                req = req.header(k.as_str(), v.as_str());
            }
            let req = req.body(Body::from(body)).unwrap();
            let app = app.clone();
            rt().block_on(async move {
                let resp = app.oneshot(req).await.unwrap();
                let status = resp.status();
                let headers = resp.headers().clone();
                let body = resp.into_body().collect().await.unwrap().to_bytes().to_vec();
                (status, headers, body)
            })
        };
        let (status, headers, _) = call("POST", "/v2/apps/x/blobs/uploads/", vec![], vec![]);
        prop_assert_eq!(status, StatusCode::ACCEPTED);
        let location = headers["location"].to_str().unwrap().to_string();
        let mut accepted: Vec<u8> = Vec::new();
        for (data, how, with_length) in chunks {
            let size = accepted.len() as u64;
            let n = data.len() as u64;
            let last = (size + n).saturating_sub(1);
            let range = match how {
                0 => Some(format!("{size}-{last}")),
                1 => Some(format!("bytes {size}-{last}")),
                2 => Some(format!("{}-{}", size + 1, last + 1)),
                3 => Some(format!("{size}-{}", last + 1)),
                4 => Some("garbage".to_string()),
                _ => None,
            };
            let mut h = Vec::new();
            if let Some(r) = &range {
                h.push(("content-range".to_string(), r.clone()));
            }
            if with_length {
                h.push(("content-length".to_string(), n.to_string()));
            }
            // The rule, stated here: no range, or one that starts where the upload ends
            // and, with a Content-Length, says as many bytes.
            let fits = match range.as_deref().map(|r| (r, content_range_spec(r))) {
                None => true,
                Some((_, None)) => false,
                Some((_, Some((a, b)))) => a == size && (!with_length || b - a + 1 == n),
            };
            let (status, headers, body) = call("PATCH", &location, h, data.clone());
            prop_assert!(!status.is_server_error(), "{status} {:?}", String::from_utf8_lossy(&body));
            if fits {
                prop_assert_eq!(status, StatusCode::ACCEPTED, "{:?} {:?}", range, String::from_utf8_lossy(&body));
                accepted.extend_from_slice(&data);
            } else {
                prop_assert_eq!(status, StatusCode::RANGE_NOT_SATISFIABLE, "{:?}", range);
                let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
                prop_assert_eq!(&v["errors"][0]["code"], "BLOB_UPLOAD_INVALID");
            }
            let want = format!("0-{}", (accepted.len() as u64).saturating_sub(1));
            prop_assert_eq!(headers["range"].to_str().unwrap(), want.as_str());
        }
        let digest = sha(&accepted);
        let sep = if location.contains('?') { '&' } else { '?' };
        let (status, _, body) = call("PUT", &format!("{location}{sep}digest={digest}"), vec![], vec![]);
        prop_assert_eq!(status, StatusCode::CREATED, "{:?}", String::from_utf8_lossy(&body));
        let (status, _, blob) = call("GET", &format!("/v2/apps/x/blobs/{digest}"), vec![], vec![]);
        prop_assert_eq!(status, StatusCode::OK);
        prop_assert_eq!(blob, accepted);
    }

    #[test]
    fn ac4_tokens_grant_only_what_the_access_check_allows(
        words in prop::collection::vec(scope_word(), 0..6),
        per_param in 1usize..4,
    ) {
        let dir = tempfile::tempdir().unwrap();
        let issuer = TokenIssuer::new(b"fuzz");
        let app = routes_with_tokens(
            Registry::open(dir.path().join("r")).unwrap(),
            auth(),
            model_check(),
            issuer.clone(),
        );
        let query: Vec<String> = words
            .chunks(per_param)
            .map(|c| {
                let joined = c.join(" ");
                format!("scope={}", url_escape(&joined))
            })
            .collect();
        let uri = format!("/v2/token?service=paas&{}", query.join("&"));
        let req = Request::builder()
            .uri(uri.as_str())
            .header("authorization", "Basic dTpw")
            .body(Body::empty())
            .unwrap();
        let (status, body) = rt().block_on(async move {
            let resp = app.oneshot(req).await.unwrap();
            let status = resp.status();
            (status, resp.into_body().collect().await.unwrap().to_bytes().to_vec())
        });
        prop_assert_eq!(status, StatusCode::OK, "{} {:?}", uri, String::from_utf8_lossy(&body));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        let claims = issuer.verify_now(v["token"].as_str().unwrap()).unwrap();
        let asked = token::parse_scopes(&words);
        for grant in &claims.access {
            prop_assert!(asked.iter().any(|(n, _)| n == &grant.name), "{} not asked", grant.name);
            for action in &grant.actions {
                prop_assert!(action == token::PULL || action == token::PUSH, "{action}");
                prop_assert!(
                    check_for(&grant.name, action == token::PUSH),
                    "{} granted on {}", action, grant.name
                );
            }
        }
        for repo in ["apps/theirs", "apps/mine/../theirs", "stacks/tiny"] {
            prop_assert!(
                claims.decide(repo, true) != token::Decision::Allowed,
                "push to {} allowed", repo
            );
        }
    }

    #[test]
    fn ac4_challenges_carry_only_their_parameters(
        path in prop_oneof![
            "/v2/[a-z0-9/._\"=,:-]{0,30}/(manifests|blobs|tags)/[a-z0-9\"=,:-]{0,10}",
            "/v2/\\PC{0,30}",
        ],
        write in any::<bool>(),
        insufficient in any::<bool>(),
    ) {
        let Ok(uri) = path.parse::<http::Uri>() else { return Ok(()) };
        for value in token::challenges("http", "registry.test", uri.path(), write, insufficient) {
            let Some(params) = value.strip_prefix("Bearer ") else { continue };
            let names = auth_param_names(params)
                .ok_or_else(|| TestCaseError::fail(format!("not auth-params: {value}")))?;
            let allowed = ["realm", "service", "scope", "error"];
            prop_assert!(names.iter().all(|n| allowed.contains(&n.as_str())), "{value}");
            let mut sorted = names.clone();
            sorted.dedup();
            prop_assert_eq!(sorted.len(), names.len(), "{}", value);
        }
    }
}

/// The parameter names of an RFC 9110 auth-param list (`a="…", b=tok`), or `None` when
/// the text is not one.
fn auth_param_names(mut s: &str) -> Option<Vec<String>> {
    let mut names = Vec::new();
    loop {
        let eq = s.find('=')?;
        let name = s[..eq].trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
            return None;
        }
        names.push(name.to_string());
        s = &s[eq + 1..];
        if let Some(rest) = s.strip_prefix('"') {
            let mut end = None;
            let mut escaped = false;
            for (i, c) in rest.char_indices() {
                match (escaped, c) {
                    (true, _) => escaped = false,
                    (false, '\\') => escaped = true,
                    (false, '"') => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            s = &rest[end? + 1..];
        } else {
            let end = s.find(',').unwrap_or(s.len());
            s = &s[end..];
        }
        s = s.trim_start();
        if s.is_empty() {
            return Some(names);
        }
        s = s.strip_prefix(',')?.trim_start();
    }
}

/// Percent-encodes what a query value may not hold raw.
fn url_escape(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~/:,*".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
