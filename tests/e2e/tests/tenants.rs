//! Hostile tenants, part 1: the REST API and the dashboard (issue 14, "Authorization by
//! resource, everywhere"). Member mallory, with her own token and her own dashboard
//! session, tries every `/v1` route on member vic's app (the routes come from the
//! controller's own `/v1/openapi.json`, so a new route is probed without editing this
//! file), every reference to vic's things through her own app (job, build, one-off job,
//! certificate and domain ids), the admin routes, and every dashboard form. Each attempt
//! must be refused with the documented answer (404 `not_found` for what she may not see,
//! 403 `forbidden` for what she sees but may not do), and vic's app must be exactly as it
//! was, still serving its page. The other parts: tenants_registry.rs (images, registry,
//! git), tenants_names.rs (names and certificates), tenants_limits.rs (rate limits,
//! config values, files, release status), tenants_builds.rs, tenants_jobs.rs.

use std::time::Duration;

use paas_e2e::tenants::{certificate, World, VIC_PAGE};
use serde_json::{json, Value};

/// A body a caller would plausibly send to `METHOD path` (the probe wants the request to
/// be acted on if the route let it through).
fn body_for(method: &str, template: &str) -> Option<Value> {
    let b = match (method, template.trim_start_matches("/v1/apps/{app}")) {
        ("PATCH", "") => json!({"name": "stolen"}),
        ("POST", "/releases") => json!({"rollback": 1}),
        ("POST", "/rollback") => json!({}),
        ("PATCH", "/config") => json!({"PWNED": "mallory"}),
        ("PATCH", "/formation") => json!({"web": {"quantity": 0}}),
        ("PUT", "/formation/{process_type}") => json!({"count": 0}),
        ("POST", "/domains") => json!({"hostname": "stolen.example.test"}),
        ("POST", "/addons") => json!({"service": "postgresql"}),
        ("POST", "/addon-attachments") => json!({"addon": "postgresql-vic-0000"}),
        ("POST", "/run") => json!({"command": "cat /app/index.html"}),
        ("POST", "/builds") => json!({"no_cache": true}),
        ("PUT" | "PATCH", "/tls") => json!({"https_redirect": true}),
        ("PUT" | "PATCH", "/acme") => json!({"enabled": true}),
        ("POST", "/collaborators") => json!({"user": "mallory"}),
        ("PATCH", "/api-access") => json!({"enabled": true}),
        ("PUT" | "POST", "/buildpack") => json!({"buildpack": "static"}),
        ("PUT", "/buildpacks") => json!({"buildpacks": ["static"]}),
        ("POST", "/certs") => json!({"certificate": "x", "key": "y"}),
        ("POST", "/volumes") => json!({"name": "stolen", "size": "16M"}),
        ("PUT", "/volumes/{name}/mount") => json!({"type": "web", "path": "/stolen"}),
        _ => return None,
    };
    Some(b)
}

/// Sends one probe as mallory; exec-style routes get the upgrade headers they need.
fn probe(w: &World, method: &str, path: &str, body: Option<&Value>) -> paas_e2e::Answer {
    if !path.ends_with("/exec") && !path.ends_with("/run/attach") {
        return w.as_mallory(method, path, body);
    }
    let resp = w
        .paas
        .client()
        .post(format!("{}{}", w.paas.api, path))
        .bearer_auth(&w.mallory.token)
        .header("connection", "Upgrade")
        .header("upgrade", "paas-exec")
        .send()
        .unwrap();
    paas_e2e::Answer {
        status: resp.status().as_u16(),
        headers: resp.headers().clone(),
        body: resp.text().unwrap_or_default(),
    }
}

/// vic gets a custom domain and a certificate for it, so the probes have ids to aim at.
fn give_vic_a_domain_and_a_certificate(w: &mut World) -> String {
    let a = w.as_vic(
        "POST",
        "/v1/apps/vic/domains",
        Some(&json!({"hostname": "www.vic.test"})),
    );
    assert_eq!(a.status, 201, "vic adds www.vic.test: {a}");
    let (cert, key) = certificate(
        &w.scratch.path().join("certs"),
        "vic-cert",
        &["www.vic.test"],
    );
    let a = w.as_vic(
        "POST",
        "/v1/apps/vic/certs",
        Some(&json!({"certificate": cert, "key": key})),
    );
    assert_eq!(a.status, 201, "vic adds a certificate: {a}");
    let id = a.json()["id"].as_str().unwrap().to_string();
    w.remember_vic();
    id
}

/// vic's first build's id.
fn vic_build(w: &World) -> String {
    let builds = w.as_vic("GET", "/v1/apps/vic/builds", None).json();
    builds[0]["id"]
        .as_str()
        .unwrap_or_else(|| panic!("vic has a build: {builds}"))
        .to_string()
}

#[test]
fn mallory_cannot_tell_vics_app_from_no_app_on_any_route() {
    let Some(mut w) = World::start() else { return };
    let cert_id = give_vic_a_domain_and_a_certificate(&mut w);
    let job = w.vic_web_job();
    let build = vic_build(&w);

    let doc = w.paas.call(None, "GET", "/v1/openapi.json", None).json();
    let paths = doc["paths"].as_object().expect("openapi paths").clone();
    let mut probed = 0;
    let mut wrong = Vec::new();
    for (template, item) in &paths {
        if !template.starts_with("/v1/apps/{app}") {
            continue;
        }
        for method in item.as_object().unwrap().keys() {
            let method = method.to_ascii_uppercase();
            let mut path = template
                .replace("{app}", "vic")
                .replace("{version}", "1")
                .replace("{process_type}", "web")
                .replace("{hostname}", "www.vic.test")
                .replace("{user}", "vic");
            let id = if template.contains("/builds/") {
                &build
            } else if template.contains("/certs/") {
                &cert_id
            } else {
                &job
            };
            path = path.replace("{id}", id);
            if method == "DELETE" && template == "/v1/apps/{app}" {
                path.push_str("?confirm=vic");
            }
            let body = body_for(&method, template);
            let a = probe(&w, &method, &path, body.as_ref());
            // The same request for an app that does not exist: mallory must not be able
            // to tell vic's app from no app at all.
            let ghost_path = path.replacen("/v1/apps/vic", "/v1/apps/ghost", 1);
            let ghost = probe(&w, &method, &ghost_path, body.as_ref());
            probed += 1;
            let refused = (a.status == 404 && a.code() == "not_found")
                || (a.status == 403 && a.code() == "forbidden" && method != "GET");
            let same =
                a.status == ghost.status && a.message().replace("vic", "ghost") == ghost.message();
            if !refused || !same || a.body.contains(VIC_PAGE) {
                wrong.push(format!(
                    "{method} {path}: {a}\n    (for a missing app: {ghost})"
                ));
            }
        }
    }
    assert!(probed >= 40, "only {probed} routes of an app were probed");
    assert!(
        wrong.is_empty(),
        "mallory was not refused on these routes of vic's app as for a missing app \
         (404 not_found, or 403 forbidden for an admin-only change):\n{}",
        wrong.join("\n")
    );
    // The CLI says the same: exit 4 (not found) with the API's message.
    for args in [
        &["config", "-a", "vic"][..],
        &["releases", "-a", "vic"],
        &["logs", "-n", "5", "-a", "vic"],
        &["ps:exec", "-a", "vic", "--", "cat", "/app/index.html"],
        &["run", "-a", "vic", "--", "cat", "/app/index.html"],
    ] {
        let r = w.mallory_cli(args);
        assert_eq!(r.code, Some(4), "paas {args:?} as mallory: {r:?}");
        assert!(!r.text().contains(VIC_PAGE), "{r:?}");
    }
    w.assert_vic_untouched();
    assert_eq!(w.app_names(), ["vic"], "no app was created");
}

#[test]
fn mallory_cannot_reach_vics_things_through_her_own_app() {
    let Some(mut w) = World::start() else { return };
    let cert_id = give_vic_a_domain_and_a_certificate(&mut w);
    w.mallory_app(&[]);
    let job = w.vic_web_job();
    let build = vic_build(&w);
    // A one-off job of vic's that stays up while mallory aims at it.
    let run = w.as_vic(
        "POST",
        "/v1/apps/vic/run",
        Some(&json!({"command": "sleep 120"})),
    );
    assert_eq!(run.status, 201, "vic starts a one-off job: {run}");
    let run_id = run.json()["id"].as_str().unwrap().to_string();
    w.remember_vic();

    let mut wrong = Vec::new();
    let mut expect = |method: &str, path: &str, body: Option<Value>, status: u16| {
        let a = probe(&w, method, path, body.as_ref());
        if a.status != status || a.body.contains(VIC_PAGE) {
            wrong.push(format!("{method} {path}: wanted {status}, got {a}"));
        }
    };
    for (method, path) in [
        ("POST", format!("/v1/apps/mal/jobs/{job}/restart")),
        ("POST", format!("/v1/apps/mal/jobs/{job}/stop")),
        ("POST", format!("/v1/apps/mal/jobs/{job}/exec")),
        ("POST", format!("/v1/apps/mal/jobs/{run_id}/exec")),
        ("GET", format!("/v1/apps/mal/builds/{build}")),
        ("GET", format!("/v1/apps/mal/builds/{build}/log")),
        ("GET", format!("/v1/apps/mal/run/{run_id}/output")),
        ("DELETE", format!("/v1/apps/mal/run/{run_id}")),
        ("GET", format!("/v1/apps/mal/run/{job}/output")),
        ("DELETE", format!("/v1/apps/mal/certs/{cert_id}")),
        ("DELETE", "/v1/apps/mal/domains/www.vic.test".to_string()),
    ] {
        expect(method, &path, None, 404);
    }
    // Names that are vic's: a custom domain he has (409) and his platform host (400).
    expect(
        "POST",
        "/v1/apps/mal/domains",
        Some(json!({"hostname": "www.vic.test"})),
        409,
    );
    expect(
        "POST",
        "/v1/apps/mal/domains",
        Some(json!({"hostname": "vic.localhost"})),
        400,
    );
    // Rolling back to a version mal does not have.
    expect(
        "POST",
        "/v1/apps/mal/releases",
        Some(json!({"rollback": 7})),
        404,
    );
    assert!(
        wrong.is_empty(),
        "mallory reached vic's things through her own app:\n{}",
        wrong.join("\n")
    );
    // vic's one-off job is still his to read and stop.
    let out = w.as_vic("DELETE", &format!("/v1/apps/vic/run/{run_id}"), None);
    assert!(out.status < 300, "vic stops his one-off job: {out}");
    w.assert_vic_untouched();
}

#[test]
fn mallory_cannot_use_admin_routes_or_act_for_others() {
    let Some(w) = World::start() else { return };
    let a = w.as_mallory("POST", "/v1/apps", Some(&json!({"name": "mal"})));
    assert_eq!(a.status, 201, "mallory creates her app: {a}");
    let node = w.as_admin("GET", "/v1/nodes", None).json()[0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let vic_tokens = w.as_vic("GET", "/v1/tokens", None).json();
    let vic_token_id = vic_tokens[0]["id"].as_str().unwrap().to_string();

    let mut wrong = Vec::new();
    let cases: Vec<(&str, String, Option<Value>, &[u16])> = vec![
        ("GET", "/v1/users".into(), None, &[403]),
        ("GET", "/v1/nodes".into(), None, &[403]),
        (
            "POST",
            "/v1/users".into(),
            Some(json!({"name": "mallory2", "role": "admin", "password": "mallory-admin"})),
            &[403],
        ),
        ("DELETE", "/v1/users/vic".into(), None, &[403]),
        (
            "POST",
            "/v1/users/vic/password".into(),
            Some(json!({"password": "taken-over-by-mallory"})),
            &[403, 404],
        ),
        (
            "POST",
            "/v1/tokens".into(),
            Some(json!({"user": "vic", "name": "mine-now"})),
            &[403],
        ),
        ("GET", "/v1/tokens?all=true".into(), None, &[403]),
        (
            "DELETE",
            format!("/v1/tokens/{vic_token_id}"),
            None,
            &[403, 404],
        ),
        (
            "POST",
            "/v1/node-tokens".into(),
            Some(json!({"node": node})),
            &[403],
        ),
        ("DELETE", format!("/v1/node-tokens/{node}"), None, &[403]),
        ("POST", format!("/v1/nodes/{node}/drain"), None, &[403]),
        ("DELETE", format!("/v1/nodes/{node}/drain"), None, &[403]),
        ("DELETE", format!("/v1/nodes/{node}"), None, &[403]),
        ("GET", format!("/v1/nodes/{node}/jobs"), None, &[403]),
        ("POST", format!("/v1/nodes/{node}/subnet"), None, &[403]),
        (
            "POST",
            "/v1/nodes/heartbeat".into(),
            Some(
                json!({"name": node, "url": "http://127.0.0.1:9", "memory_bytes": 1,
                        "agent_token": format!("paasagent_{}", "a".repeat(64))}),
            ),
            &[403, 400],
        ),
        (
            "PATCH",
            "/v1/apps/mal/api-access".into(),
            Some(json!({"enabled": true})),
            &[403],
        ),
        (
            "PUT",
            "/v1/apps/mal/buildpack".into(),
            Some(json!({"buildpack": "/etc"})),
            &[403],
        ),
        (
            "PUT",
            "/v1/apps/mal/buildpack".into(),
            Some(json!({"buildpack": "file:///etc"})),
            &[403],
        ),
    ];
    for (method, path, body, allowed) in &cases {
        let a = w.as_mallory(method, path, body.as_ref());
        let code_ok = match a.status {
            403 => a.code() == "forbidden",
            404 => a.code() == "not_found",
            400 => a.code() == "bad_request" || a.code() == "validation_error",
            _ => false,
        };
        if !allowed.contains(&a.status) || !code_ok || a.message().is_empty() {
            wrong.push(format!("{method} {path}: wanted {allowed:?}, got {a}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "mallory got further than she may on admin routes:\n{}",
        wrong.join("\n")
    );
    // Nothing changed: she is a member, vic's token works, the node takes jobs.
    let me = w.as_mallory("GET", "/v1/whoami", None).json();
    assert_eq!(me["role"], "member", "{me}");
    let vic = w.as_vic("GET", "/v1/whoami", None);
    assert_eq!(vic.status, 200, "vic's token still works: {vic}");
    let users = w.as_admin("GET", "/v1/users", None).json();
    let mut names: Vec<&str> = users
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|u| u["name"].as_str())
        .collect();
    names.sort();
    assert_eq!(names, ["admin", "mallory", "vic"], "{users}");
    let nodes = w.as_admin("GET", "/v1/nodes", None).json();
    assert_eq!(nodes[0]["state"], "up", "{nodes}");
    let access = w.as_admin("GET", "/v1/apps/mal/api-access", None).json();
    assert_eq!(access["enabled"], false, "{access}");
    let bp = w.as_admin("GET", "/v1/apps/mal/buildpack", None).json();
    assert!(bp["buildpack"].is_null(), "{bp}");
    w.assert_vic_untouched();
}

/// A dashboard session for `user`: (session cookie value, its CSRF token).
fn dashboard_login(w: &World, user: &str, password: &str) -> (String, String) {
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let form = client.get(format!("{}/login", w.paas.api)).send().unwrap();
    let login_csrf = set_cookie(&form, "paas_login_csrf").expect("the login form's cookie");
    let resp = client
        .post(format!("{}/login", w.paas.api))
        .header("cookie", format!("paas_login_csrf={login_csrf}"))
        .form(&[
            ("user", user),
            ("password", password),
            ("csrf", login_csrf.as_str()),
        ])
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 303, "{user} logs in");
    let session = set_cookie(&resp, "paas_session").expect("a session cookie");
    // v1.<hex user>.<expiry>.<csrf>.<mac>
    let csrf = session.split('.').nth(3).unwrap().to_string();
    (session, csrf)
}

fn set_cookie(resp: &reqwest::blocking::Response, name: &str) -> Option<String> {
    resp.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .filter_map(|v| v.split(';').next()?.split_once('='))
        .find(|(k, v)| *k == name && !v.is_empty())
        .map(|(_, v)| v.to_string())
}

#[test]
fn mallory_cannot_touch_vics_app_from_the_dashboard() {
    let Some(mut w) = World::start() else { return };
    give_vic_a_domain_and_a_certificate(&mut w);
    w.mallory_app(&[]);
    let job = w.vic_web_job();
    let build = vic_build(&w);
    let node = w.as_admin("GET", "/v1/nodes", None).json()[0]["name"]
        .as_str()
        .unwrap()
        .to_string();
    let (session, csrf) = dashboard_login(&w, "mallory", &w.mallory.password.clone());
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap();
    let cookie = format!("paas_session={session}");
    // Her own app's page works: the session is good.
    let own = client
        .get(format!("{}/apps/mal", w.paas.api))
        .header("cookie", &cookie)
        .send()
        .unwrap();
    assert_eq!(own.status().as_u16(), 200, "mallory sees her own app");

    let mut wrong = Vec::new();
    for (path, status) in [
        ("/apps/vic".to_string(), 404),
        (format!("/apps/vic/builds/{build}"), 404),
        (format!("/apps/mal/builds/{build}"), 404),
        ("/apps/vic/logs/stream".to_string(), 404),
        ("/apps/vic/stats.json".to_string(), 404),
        ("/nodes".to_string(), 403),
    ] {
        let resp = client
            .get(format!("{}{}", w.paas.api, path))
            .header("cookie", &cookie)
            .send()
            .unwrap();
        let got = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        if got != status || text.contains(VIC_PAGE) || text.contains("www.vic.test") {
            wrong.push(format!("GET {path}: wanted {status}, got {got}"));
        }
    }
    let forms: Vec<(String, Vec<(&str, &str)>)> = vec![
        ("/apps/vic/rollback".into(), vec![("version", "1")]),
        (
            "/apps/vic/scale".into(),
            vec![("type", "web"), ("quantity", "0")],
        ),
        (
            "/apps/vic/config".into(),
            vec![("key", "PWNED"), ("value", "1")],
        ),
        ("/apps/vic/config/unset".into(), vec![("key", "PWNED")]),
        (
            "/apps/vic/domains".into(),
            vec![("hostname", "stolen.example.test")],
        ),
        (
            "/apps/vic/domains/remove".into(),
            vec![("hostname", "www.vic.test")],
        ),
        ("/apps/vic/acme".into(), vec![("enabled", "on")]),
        ("/apps/vic/rename".into(), vec![("new_name", "stolen")]),
        ("/apps/vic/destroy".into(), vec![("confirm", "vic")]),
        ("/apps/vic/restart".into(), vec![("type", "web")]),
        (format!("/apps/vic/jobs/{job}/restart"), vec![]),
        (format!("/apps/vic/jobs/{job}/stop"), vec![]),
        (format!("/apps/mal/jobs/{job}/restart"), vec![]),
        (format!("/apps/mal/jobs/{job}/stop"), vec![]),
        (
            "/apps/mal/domains/remove".into(),
            vec![("hostname", "www.vic.test")],
        ),
        ("/apps/vic/addons".into(), vec![("plan", "redis:mini")]),
        (
            "/apps/vic/addons/capture".into(),
            vec![("addon", "postgresql-vic-0000")],
        ),
        (
            "/apps/vic/addons/restore".into(),
            vec![("backup", "b000000000000"), ("confirm", "vic")],
        ),
        (
            "/apps/vic/addons/destroy".into(),
            vec![("addon", "postgresql-vic-0000"), ("confirm", "vic")],
        ),
        (
            "/apps/mal/addons/destroy".into(),
            vec![("addon", "postgresql-vic-0000"), ("confirm", "mal")],
        ),
        (format!("/nodes/{node}/drain"), vec![]),
    ];
    for (path, fields) in &forms {
        let mut form = fields.clone();
        form.push(("csrf", csrf.as_str()));
        let resp = client
            .post(format!("{}{}", w.paas.api, path))
            .header("cookie", &cookie)
            .form(&form)
            .send()
            .unwrap();
        let got = resp.status().as_u16();
        // Refused: the 404 page for vic's app, 403 for nodes, a form error (4xx) for ids
        // mal does not have; never a redirect (303 = done).
        if !(400..500).contains(&got) {
            wrong.push(format!("POST {path}: got {got}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "mallory's dashboard session reached vic's app:\n{}",
        wrong.join("\n")
    );
    let nodes = w.as_admin("GET", "/v1/nodes", None).json();
    assert_eq!(nodes[0]["state"], "up", "the node is not drained: {nodes}");
    w.assert_vic_untouched();
    let mut names = w.app_names();
    names.sort();
    assert_eq!(names, ["mal", "vic"]);
}
