//! Hostile tenants, part 3: names that were someone else's, and certificates for other
//! apps' names (issue 14, "A name that was someone else's", "A certificate for other apps'
//! names"). vic's app leaves a secret in its build cache, a line in its build log, an
//! access line in the router's history, a custom domain, a certificate, and an image in
//! `apps/vic`; then vic destroys or renames it and mallory makes a new app called `vic`.
//! Her app must start empty: no image, tag or blob of the old one (she cannot pull or
//! delete vic's renamed image), an empty build cache, no domains, certificates or logs, no
//! old git objects; and vic's renamed app keeps serving, restarting and rolling back.
//! Certificates: every name of an uploaded certificate must be one of the app's hosts,
//! wildcards only for admins, else 422 naming the foreign names; the router never presents
//! mallory's certificate for another app's host.

use std::process::Command;
use std::time::Duration;

use paas_e2e::tenants::{certificate, eventually, World, MAL_PAGE, VIC_PAGE};
use paas_e2e::AppDir;
use serde_json::json;

/// What vic's builds put in the build cache (like an npm token a build caches).
const CACHE_SECRET: &str = "vic-cache-secret-npm-71d0";
/// A line vic's builds print.
const BUILD_MARKER: &str = "vic-build-marker-2b8e";
/// The path of a request vic's app served (the router keeps an access line of it).
const OLD_REQUEST: &str = "/vic-old-request-9f1c";

/// vic deploys v2, whose build caches a secret and prints a marker, adds a domain and a
/// certificate, and serves one request; returns (the v2 image, the old git head).
fn vic_leaves_traces(w: &mut World) -> (String, String) {
    w.vic_src.write(
        ".profile.d/cache.sh",
        &format!("echo {CACHE_SECRET} > /cache/npm-token 2>/dev/null\necho {BUILD_MARKER} >&2\n"),
    );
    w.vic_src.commit("vic v2: cache a token");
    let push = w.push_as(&w.vic, &w.vic_src, "vic");
    assert!(push.ok, "vic's v2 push: {}", push.output);
    assert!(push.output.contains(BUILD_MARKER), "{}", push.output);
    w.paas
        .wait_for_body("vic", VIC_PAGE, Duration::from_secs(30))
        .unwrap();
    let a = w.as_vic(
        "POST",
        "/v1/apps/vic/domains",
        Some(&json!({"hostname": "www.vic.test"})),
    );
    assert_eq!(a.status, 201, "{a}");
    let (cert, key) = certificate(
        &w.scratch.path().join("certs"),
        "vic-cert",
        &["www.vic.test", "vic.localhost"],
    );
    let a = w.as_vic(
        "POST",
        "/v1/apps/vic/certs",
        Some(&json!({"certificate": cert, "key": key})),
    );
    assert_eq!(a.status, 201, "{a}");
    let (status, _) = w.paas.request_app("vic", OLD_REQUEST).unwrap();
    assert_eq!(status, 404, "busybox httpd has no such file");
    let logs = w.vic_cli(&["logs", "-n", "1000", "-a", "vic"]);
    assert!(
        eventually(20, || {
            let l = w.vic_cli(&["logs", "-n", "1000", "-a", "vic"]);
            l.stdout.contains(OLD_REQUEST) && l.stdout.contains(BUILD_MARKER)
        }),
        "vic's logs show his build and his request: {logs:?}"
    );
    let release = w.as_vic("GET", "/v1/apps/vic/releases/2", None).json();
    let image = release["image"].as_str().unwrap().to_string();
    let out = Command::new("git")
        .arg("--git-dir")
        .arg(w.paas.data.path().join("git/vic.git"))
        .args(["rev-parse", "main"])
        .output()
        .unwrap();
    let head = String::from_utf8_lossy(&out.stdout).trim().to_string();
    w.remember_vic();
    (image, head)
}

/// mallory checks, over the API and the registry, that her new app `vic` has nothing of
/// the old one; returns what she got that she should not have.
fn new_vic_has_nothing_of_the_old(w: &World, old_image: &str, old_head: &str) -> Vec<String> {
    let mut wrong = Vec::new();
    // The new app has no release: nothing of the old one may start under its name (the
    // scheduler once ran the old app's v1 for it). Watched for 8 s.
    for _ in 0..32 {
        if let Ok((_, body)) = w.paas.request_app("vic", "/") {
            if body.contains(VIC_PAGE) {
                wrong.push("the new vic, without a release, serves the old app's page".into());
                break;
            }
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let digest = old_image.split_once('@').unwrap().1;
    for (what, path) in [
        ("domains", "/v1/apps/vic/domains"),
        ("certificates", "/v1/apps/vic/certs"),
        ("releases", "/v1/apps/vic/releases"),
        ("builds", "/v1/apps/vic/builds"),
        ("config", "/v1/apps/vic/config"),
    ] {
        let a = w.as_mallory("GET", path, None);
        let empty = a.json().as_array().is_some_and(|l| l.is_empty())
            || a.json().as_object().is_some_and(|o| o.is_empty());
        if a.status != 200 || !empty {
            wrong.push(format!("the new vic's {what}: {a}"));
        }
    }
    let logs = w.mallory_cli(&["logs", "-n", "1000", "-a", "vic"]);
    if logs.stdout.contains(OLD_REQUEST) || logs.stdout.contains(BUILD_MARKER) {
        wrong.push(format!(
            "the new vic's logs hold the old app's lines: {logs:?}"
        ));
    }
    let client = w.paas.client();
    let get = |path: &str| {
        let resp = client
            .get(format!("{}{path}", w.paas.api))
            .basic_auth("mallory", Some(&w.mallory.token))
            .header("accept", "application/vnd.oci.image.manifest.v1+json")
            .send()
            .unwrap();
        (resp.status().as_u16(), resp.text().unwrap_or_default())
    };
    for path in [
        "/v2/apps/vic/manifests/v1".to_string(),
        "/v2/apps/vic/manifests/v2".to_string(),
        format!("/v2/apps/vic/manifests/{digest}"),
    ] {
        let (status, body) = get(&path);
        if status != 404 {
            wrong.push(format!("GET {path} as mallory: {status} {body}"));
        }
    }
    let (status, body) = get("/v2/apps/vic/tags/list");
    if status == 200 && body.contains("\"v") {
        wrong.push(format!("the new vic's tags: {body}"));
    }
    let resp = client
        .delete(format!("{}/v2/apps/vic/manifests/{digest}", w.paas.api))
        .basic_auth("mallory", Some(&w.mallory.token))
        .send()
        .unwrap();
    if resp.status().as_u16() != 404 {
        wrong.push(format!(
            "DELETE the old manifest as mallory: {}",
            resp.status()
        ));
    }
    let objects = Command::new("git")
        .arg("--git-dir")
        .arg(w.paas.data.path().join("git/vic.git"))
        .args(["cat-file", "-e", old_head])
        .output()
        .unwrap();
    if objects.status.success() {
        wrong.push("the new vic's git repository holds the old app's commits".into());
    }
    wrong
}

/// mallory pushes her own app as `vic`, whose build prints what the cache holds; returns
/// what she got that she should not have.
fn malloys_build_sees_no_cache(w: &World) -> Vec<String> {
    let src = AppDir::new();
    src.write("index.html", &format!("<h1>{MAL_PAGE}</h1>\n"));
    src.write(
        ".profile.d/leak.sh",
        "echo \"cache holds: $(ls -A /cache 2>&1 | tr '\\n' ' ')\" >&2\ncat /cache/* >&2 2>/dev/null\n",
    );
    src.commit("mallory's vic");
    let push = w.push_as(&w.mallory, &src, "vic");
    let mut wrong = Vec::new();
    if !push.ok {
        wrong.push(format!(
            "mallory's push to her new app vic failed: {}",
            push.output
        ));
    }
    if push.output.contains(CACHE_SECRET) || push.output.contains("npm-token") {
        wrong.push(format!(
            "mallory's build read the old app's cache:\n{}",
            push.output
        ));
    }
    if !push.output.contains("cache holds:") {
        wrong.push(format!(
            "mallory's build printed no listing:\n{}",
            push.output
        ));
    }
    if push.ok {
        if let Err(e) = w
            .paas
            .wait_for_body("vic", MAL_PAGE, Duration::from_secs(30))
        {
            wrong.push(format!("mallory's new vic does not serve her page: {e}"));
        }
    }
    wrong
}

#[test]
fn a_new_app_with_a_destroyed_apps_name_starts_empty() {
    let Some(mut w) = World::start() else { return };
    let (image, head) = vic_leaves_traces(&mut w);
    let r = w.vic_cli(&["apps:destroy", "vic", "--confirm", "vic"]);
    assert!(r.ok(), "vic destroys his app: {r:?}");
    let mut wrong = Vec::new();
    if !eventually(30, || {
        w.paas
            .request_app("vic", "/")
            .is_ok_and(|(status, body)| status == 404 && !body.contains(VIC_PAGE))
    }) {
        wrong.push(format!(
            "vic.localhost still serves the destroyed app 30 s later: {:?}",
            w.paas.request_app("vic", "/")
        ));
    }
    let a = w.as_mallory("POST", "/v1/apps", Some(&json!({"name": "vic"})));
    assert_eq!(a.status, 201, "mallory takes the name: {a}");
    wrong.extend(new_vic_has_nothing_of_the_old(&w, &image, &head));
    wrong.extend(malloys_build_sees_no_cache(&w));
    // www.vic.test went with the old app: mallory's app can take it now, and the router
    // no longer presents the old certificate for it.
    let a = w.as_mallory(
        "POST",
        "/v1/apps/vic/domains",
        Some(&json!({"hostname": "www.vic.test"})),
    );
    if a.status != 201 {
        wrong.push(format!("the freed domain: {a}"));
    }
    let (_, verbose) = curl_tls(&w, "www.vic.test");
    if verbose.contains("CN=vic-cert") {
        wrong.push("the router still presents the destroyed app's certificate".into());
    }
    assert!(
        wrong.is_empty(),
        "the new vic inherited from the destroyed one:\n{}",
        wrong.join("\n")
    );
}

#[test]
fn a_new_app_with_a_renamed_apps_name_starts_empty() {
    let Some(mut w) = World::start() else { return };
    let (image, head) = vic_leaves_traces(&mut w);
    let r = w.vic_cli(&["apps:rename", "vic2", "-a", "vic"]);
    assert!(r.ok(), "vic renames his app: {r:?}");
    w.paas
        .wait_for_body("vic2", VIC_PAGE, Duration::from_secs(60))
        .unwrap();
    let mut wrong = Vec::new();
    if !eventually(30, || {
        w.paas
            .request_app("vic", "/")
            .is_ok_and(|(status, body)| status == 404 && !body.contains(VIC_PAGE))
    }) {
        wrong.push(format!(
            "vic.localhost still serves the renamed app 30 s later: {:?}",
            w.paas.request_app("vic", "/")
        ));
    }
    let a = w.as_mallory("POST", "/v1/apps", Some(&json!({"name": "vic"})));
    assert_eq!(a.status, 201, "mallory takes the old name: {a}");
    wrong.extend(new_vic_has_nothing_of_the_old(&w, &image, &head));
    wrong.extend(malloys_build_sees_no_cache(&w));
    // vic2 kept what is its own: domain, certificate, build cache.
    let domains = w.as_vic("GET", "/v1/apps/vic2/domains", None).json();
    if domains[0]["hostname"] != "www.vic.test" {
        wrong.push(format!("vic2's domains: {domains}"));
    }
    let (_, verbose) = curl_tls(&w, "www.vic.test");
    if !verbose.contains("CN=vic-cert") {
        wrong.push(format!(
            "vic2's certificate for www.vic.test is gone: {verbose}"
        ));
    }
    // vic2's image is its own: vic pulls it from apps/vic2, and it restarts and rolls
    // back after mallory's attempts on the old repository.
    let current = w.as_vic("GET", "/v1/apps/vic2/releases", None).json()[0]["image"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    if !current.starts_with("apps/vic2") {
        wrong.push(format!("vic2's release still names {current}"));
    }
    let r = w.vic_cli(&["ps:restart", "-a", "vic2"]);
    if !r.ok() {
        wrong.push(format!("paas ps:restart -a vic2: {r:?}"));
    }
    let r = w.vic_cli(&["rollback", "v1", "-a", "vic2"]);
    if !r.ok() {
        wrong.push(format!("paas rollback v1 -a vic2: {r:?}"));
    }
    if let Err(e) = w
        .paas
        .wait_for_body("vic2", VIC_PAGE, Duration::from_secs(60))
    {
        wrong.push(format!("vic2 after restart and rollback: {e}"));
    }
    let r = w.vic_cli(&["run", "-a", "vic2", "--", "cat", "/app/index.html"]);
    if !r.stdout.contains(VIC_PAGE) {
        wrong.push(format!("a one-off job of vic2: {r:?}"));
    }
    assert!(
        wrong.is_empty(),
        "the new vic inherited from the renamed one, or vic2 lost its own:\n{}",
        wrong.join("\n")
    );
}

/// `curl -k -v https://HOST/` through the router's TLS port: (body, verbose output).
fn curl_tls(w: &World, host: &str) -> (String, String) {
    let port = w.paas.router_tls_addr.rsplit(':').next().unwrap();
    let out = Command::new("curl")
        .args(["-sS", "-k", "-v", "--max-time", "10", "--noproxy", "*"])
        .arg("--resolve")
        .arg(format!("{host}:{port}:127.0.0.1"))
        .arg(format!("https://{host}:{port}/"))
        .output()
        .expect("curl is installed (deploy/install-deps)");
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn certificates_for_other_apps_names_are_refused() {
    let Some(mut w) = World::start() else { return };
    w.mallory_app(&[]);
    let a = w.as_vic(
        "POST",
        "/v1/apps/vic/domains",
        Some(&json!({"hostname": "www.vic.test"})),
    );
    assert_eq!(a.status, 201, "{a}");
    // vic's own domain is part of what mallory must not change.
    w.remember_vic();
    let dir = w.scratch.path().join("certs");
    let mut wrong = Vec::new();
    for (cn, names, foreign) in [
        (
            "mallory-a",
            &["mal.localhost", "vic.localhost"][..],
            &["vic.localhost"][..],
        ),
        (
            "mallory-b",
            &["mal.localhost", "www.vic.test"],
            &["www.vic.test"],
        ),
        (
            "mallory-c",
            &["mal.localhost", "*.localhost"],
            &["*.localhost"],
        ),
        (
            "mallory-d",
            &["mal.localhost", "later.localhost"],
            &["later.localhost"],
        ),
    ] {
        let (cert, key) = certificate(&dir, cn, names);
        let a = w.as_mallory(
            "POST",
            "/v1/apps/mal/certs",
            Some(&json!({"certificate": cert, "key": key})),
        );
        let names_them = foreign.iter().all(|f| a.message().contains(f));
        if a.status != 422 || !names_them {
            wrong.push(format!("{names:?}: wanted 422 naming {foreign:?}, got {a}"));
        }
    }
    // The CLI shows the reason.
    let (cert, key) = certificate(&dir, "mallory-e", &["mal.localhost", "vic.localhost"]);
    let (cf, kf) = (dir.join("e.crt"), dir.join("e.key"));
    std::fs::write(&cf, cert).unwrap();
    std::fs::write(&kf, key).unwrap();
    let r = w.mallory_cli(&[
        "certs:add",
        cf.to_str().unwrap(),
        kf.to_str().unwrap(),
        "-a",
        "mal",
    ]);
    if r.ok() || !r.stderr.contains("vic.localhost") {
        wrong.push(format!("paas certs:add with vic.localhost: {r:?}"));
    }
    let certs = w.as_mallory("GET", "/v1/apps/mal/certs", None).json();
    if certs.as_array().is_none_or(|c| !c.is_empty()) {
        wrong.push(format!("certificates stored for mal: {certs}"));
    }
    // Her own name is fine; it is never presented for another app's host.
    let (cert, key) = certificate(&dir, "mallory-own", &["mal.localhost"]);
    let a = w.as_mallory(
        "POST",
        "/v1/apps/mal/certs",
        Some(&json!({"certificate": cert, "key": key})),
    );
    assert_eq!(a.status, 201, "mallory's certificate for her own host: {a}");
    let (body, verbose) = curl_tls(&w, "mal.localhost");
    assert!(
        body.contains(MAL_PAGE) && verbose.contains("CN=mallory-own"),
        "{verbose}"
    );
    for host in ["vic.localhost", "www.vic.test", "nobody.localhost"] {
        let (_, verbose) = curl_tls(&w, host);
        if verbose.contains("CN=mallory") {
            wrong.push(format!(
                "the router presented mallory's certificate for {host}"
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "mallory got a certificate for names that are not hers:\n{}",
        wrong.join("\n")
    );
    w.assert_vic_untouched();
}
