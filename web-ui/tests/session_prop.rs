//! Property tests of the dashboard's session cookie (part of the bounded fuzz run,
//! tests/fuzz.sh `session`): `Session::decode` of any value, and of a real cookie changed
//! byte by byte, cut, extended, re-signed with another key or expired, gives back no
//! session but the one that was issued; any user name round-trips; `cookie()` finds
//! exactly the first cookie of that name in any `Cookie` header; and over the dashboard's
//! real routes (the fake controller of the other web-ui tests) a forged or garbled cookie
//! never reaches a page or a change, a good session without its CSRF token changes
//! nothing, and nothing answers 5xx. `PROPTEST_CASES` sets the number of cases.

mod fake;

use std::sync::Arc;

use axum::body::Body;
use axum::http::{header, HeaderMap, Request, StatusCode};
use paas_web_ui::session::{cookie, Session, COOKIE};
use paas_web_ui::{not_found, router};
use proptest::prelude::*;
use tower::ServiceExt;

use fake::{sample, KEY};

fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn session_for(user: String, csrf: String) -> Session {
    Session {
        user,
        csrf,
        expires: now() + 3600,
    }
}

/// A real cookie changed the way an attacker would.
fn tampered(original: &str) -> impl Strategy<Value = String> {
    let o = original.to_string();
    let len = o.len();
    prop_oneof![
        (0..len, any::<u8>()).prop_map({
            let o = o.clone();
            move |(i, b)| {
                let mut v = o.clone().into_bytes();
                v[i] = b;
                String::from_utf8_lossy(&v).into_owned()
            }
        }),
        (0..len).prop_map({
            let o = o.clone();
            move |i| o[..i].to_string()
        }),
        "\\PC{0,10}".prop_map({
            let o = o.clone();
            move |tail| format!("{o}{tail}")
        }),
        Just(o.to_uppercase()),
        Just(o.replacen("v1.", "v2.", 1)),
        Just(o.replacen('.', "..", 1)),
    ]
}

/// The first `name=value` pair of a Cookie header, as RFC 6265 lays them out.
fn first_cookie(header_values: &[String], name: &str) -> Option<String> {
    header_values
        .iter()
        .flat_map(|h| h.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

fn dashboard() -> Arc<fake::FakeDashboard> {
    Arc::new(sample())
}

/// One request to the dashboard's routes with a raw Cookie header and a form body.
fn request(
    d: &Arc<fake::FakeDashboard>,
    method: &str,
    uri: &str,
    cookie: &str,
    form: &str,
) -> (StatusCode, HeaderMap) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let mut b = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "ctl.example:8080");
    if let Ok(v) = axum::http::HeaderValue::from_str(cookie) {
        b = b.header(header::COOKIE, v);
    }
    if !form.is_empty() {
        b = b.header(header::CONTENT_TYPE, "application/x-www-form-urlencoded");
    }
    let req = b.body(Body::from(form.to_string())).unwrap();
    let app = router(Arc::clone(d)).fallback_service(not_found(Arc::clone(d)));
    rt.block_on(async move {
        let resp = app.oneshot(req).await.unwrap();
        (resp.status(), resp.headers().clone())
    })
}

const PAGES: &[(&str, &str, &str)] = &[
    ("GET", "/", ""),
    ("GET", "/apps/hello", ""),
    ("GET", "/nodes", ""),
    ("POST", "/apps/hello/config", "key=PWNED&value=1"),
    ("POST", "/apps/hello/destroy", "confirm=hello"),
    ("POST", "/apps", "name=evil"),
    ("POST", "/nodes/node-a/drain", ""),
];

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn ac4_any_value_decodes_to_no_session(v in prop_oneof![any::<String>(), "v1\\.[0-9a-f.]{0,120}"]) {
        prop_assert_eq!(Session::decode(&v, KEY), None);
    }

    #[test]
    fn ac4_sessions_round_trip_for_any_user(user in "\\PC{0,64}", csrf in "[0-9a-f]{32}") {
        let s = session_for(user, csrf);
        prop_assert_eq!(Session::decode(&s.encode(KEY), KEY), Some(s.clone()));
        prop_assert_eq!(Session::decode(&s.encode(b"another key of 32 bytes........."), KEY), None);
        let expired = Session { expires: now() - 1, ..s };
        prop_assert_eq!(Session::decode(&expired.encode(KEY), KEY), None);
    }

    #[test]
    fn ac4_a_changed_cookie_is_never_another_session(
        (original, changed) in ("[a-z]{1,12}", "[0-9a-f]{32}").prop_flat_map(|(u, c)| {
            let s = session_for(u, c);
            let v = s.encode(KEY);
            (Just(s), tampered(&v))
        }),
    ) {
        // The only session any value may decode to is the one that was issued.
        if let Some(s) = Session::decode(&changed, KEY) {
            prop_assert_eq!(s, original);
        }
    }

    #[test]
    fn ac4_the_cookie_header_gives_the_first_of_a_name(
        pairs in prop::collection::vec(
            (prop_oneof![Just("paas_session".to_string()), Just("paas_sessionx".to_string()),
                         Just(" paas_session".to_string()), "[a-z_]{0,12}"],
             "[ -:<-~]{0,20}"),
            0..6,
        ),
        split in any::<bool>(),
    ) {
        let joined: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let values: Vec<String> = if split { joined.clone() } else { vec![joined.join("; ")] };
        let mut h = HeaderMap::new();
        let mut kept = Vec::new();
        for v in &values {
            if let Ok(hv) = axum::http::HeaderValue::from_str(v) {
                h.append(header::COOKIE, hv);
                kept.push(v.clone());
            }
        }
        prop_assert_eq!(cookie(&h, COOKIE).map(str::to_string), first_cookie(&kept, COOKIE));
    }

    #[test]
    fn ac4_forged_cookies_reach_no_page_and_change_nothing(
        value in prop_oneof![
            any::<String>(),
            // Users the dashboard does not know, so an unchanged cookie is no session either.
            ("x[a-z]{1,8}", "[0-9a-f]{32}").prop_flat_map(|(u, c)| tampered(&session_for(u, c).encode(KEY))),
            // Signed with the wrong key, as admin.
            Just(session_for("admin".into(), "0".repeat(32)).encode(b"not the dashboard's key.........")),
        ],
        page in prop::sample::select(PAGES),
    ) {
        let d = dashboard();
        let (method, uri, form) = page;
        let csrf = value.split('.').nth(3).unwrap_or_default().to_string();
        let form = if form.is_empty() { format!("csrf={csrf}") } else { format!("{form}&csrf={csrf}") };
        let (status, headers) = request(&d, method, uri, &format!("{COOKIE}={value}"), &form);
        prop_assert!(!status.is_server_error(), "{method} {uri}: {status}");
        prop_assert!(!status.is_success(), "{method} {uri} with {value:?}: {status}");
        if status.is_redirection() {
            prop_assert_eq!(headers[header::LOCATION].to_str().unwrap(), "/login");
        }
        prop_assert!(d.calls.lock().unwrap().is_empty(), "{:?}", d.calls.lock().unwrap());
    }

    #[test]
    fn ac4_a_session_without_its_csrf_token_changes_nothing(
        submitted in prop_oneof!["[0-9a-f]{0,32}", any::<String>()],
        page in prop::sample::select(&PAGES[3..]),
    ) {
        let d = dashboard();
        let s = session_for("admin".into(), "5".repeat(32));
        prop_assume!(submitted != s.csrf);
        let (method, uri, form) = page;
        let escaped: String = submitted.bytes().map(|b| format!("%{b:02X}")).collect();
        let form = format!("{form}&csrf={escaped}");
        let (status, _) = request(&d, method, uri, &format!("{COOKIE}={}", s.encode(KEY)), &form);
        prop_assert!(!status.is_server_error(), "{method} {uri}: {status}");
        prop_assert!(status.is_client_error(), "{method} {uri}: {status}");
        prop_assert!(d.calls.lock().unwrap().is_empty(), "{:?}", d.calls.lock().unwrap());
    }
}
