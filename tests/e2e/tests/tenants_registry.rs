//! Hostile tenants, part 2: images, the registry and git (issue 14, "Another app's image"
//! and "Authorization by resource"). Member mallory tries to deploy vic's image into her
//! own app (by tag, by digest, with the registry's host in front) and then roll back to it
//! and read vic's code with `paas run`; to pull, push and delete in vic's repository, and
//! to push over the stack every build starts from, with skopeo (a client no one here
//! wrote) and by hand (blobs by digest through her own
//! repository, cross-repository mounts, a manifest naming vic's layer, a registry token
//! asking for vic's repository); and to clone, fetch and push vic's git repository. Every
//! attempt fails with a clear error and vic's app, image and repository stay as they were.

use std::process::Command;

use paas_e2e::tenants::{World, MAL_PAGE, VIC_PAGE};
use serde_json::json;

fn skopeo_present() -> bool {
    if Command::new("skopeo").arg("--version").output().is_ok() {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "skopeo is missing: run deploy/install-deps"
    );
    eprintln!("skipping: skopeo is not installed");
    false
}

/// The registry's `host:port`.
fn host(w: &World) -> String {
    w.paas.api.trim_start_matches("http://").to_string()
}

/// vic's release image reference (`apps/vic@sha256:…`) and the digest of its app layer.
fn vic_image(w: &World) -> (String, String) {
    let release = w.as_admin("GET", "/v1/apps/vic/releases/1", None).json();
    let image = release["image"]
        .as_str()
        .unwrap_or_else(|| panic!("vic's v1 has an image: {release}"))
        .to_string();
    let manifest = w
        .paas
        .client()
        .get(format!("{}/v2/apps/vic/manifests/v1", w.paas.api))
        .basic_auth("admin", Some(&w.paas.token))
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .unwrap()
        .json::<serde_json::Value>()
        .unwrap();
    let layer = manifest["layers"]
        .as_array()
        .and_then(|l| l.last())
        .and_then(|l| l["digest"].as_str())
        .unwrap_or_else(|| panic!("vic's manifest has layers: {manifest}"))
        .to_string();
    (image, layer)
}

/// skopeo with its own HOME and auth file; (success, output).
fn skopeo(w: &World, args: &[String]) -> (bool, String) {
    let home = w.scratch.path().join("skopeo-home");
    std::fs::create_dir_all(&home).unwrap();
    let out = Command::new("skopeo")
        .arg("--insecure-policy")
        .args(args)
        .env("HOME", &home)
        .env("REGISTRY_AUTH_FILE", home.join("auth.json"))
        .output()
        .unwrap();
    (
        out.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

#[test]
fn mallory_cannot_deploy_vics_image_into_her_app() {
    let Some(w) = World::start() else { return };
    w.mallory_app(&[]);
    let (image, _) = vic_image(&w);
    let digest = image.split_once('@').unwrap().1.to_string();
    let mal_before = w.as_mallory("GET", "/v1/apps/mal/releases", None).json();
    assert_eq!(mal_before.as_array().unwrap().len(), 1, "{mal_before}");

    let mut wrong = Vec::new();
    // (Each accepted deploy waits up to 60 s for its release to serve: few references.)
    for reference in [
        "apps/vic:v1".to_string(),
        "apps/vic".to_string(),
        format!("apps/vic@{digest}"),
        format!("{}/apps/vic:v1", host(&w)),
    ] {
        let a = w.as_mallory(
            "POST",
            "/v1/apps/mal/releases",
            Some(&json!({ "image": reference })),
        );
        let refused = matches!(
            (a.status, a.code().as_str()),
            (403, "forbidden") | (404, "not_found")
        );
        if !refused || !a.message().contains("apps/vic") {
            wrong.push(format!(
                "{reference}: {a} (wanted 403/404 naming the repository)"
            ));
        }
    }
    // The CLI says so too.
    let r = w.mallory_cli(&["deploy", "--image", "apps/vic:v1", "-a", "mal"]);
    if r.ok() || !r.stderr.contains("apps/vic") {
        wrong.push(format!("paas deploy --image apps/vic:v1 -a mal: {r:?}"));
    }
    // No release came of it to roll back to.
    for version in 2..=7 {
        let a = w.as_mallory(
            "POST",
            "/v1/apps/mal/releases",
            Some(&json!({ "rollback": version })),
        );
        if a.status < 300 {
            wrong.push(format!("rollback to v{version} of mal: {a}"));
        }
    }
    let run = w.mallory_runs("mal", "cat /app/index.html");
    if run.text().contains(VIC_PAGE) || !run.stdout.contains(MAL_PAGE) {
        wrong.push(format!(
            "paas run -a mal -- cat /app/index.html printed: {run:?}"
        ));
    }
    assert!(
        wrong.is_empty(),
        "mallory used vic's image in her app:\n{}",
        wrong.join("\n")
    );
    let mal_after = w.as_mallory("GET", "/v1/apps/mal/releases", None).json();
    assert_eq!(
        mal_after.as_array().unwrap().len(),
        1,
        "no release was added to mal: {mal_after}"
    );
    w.paas
        .wait_for_body("mal", MAL_PAGE, std::time::Duration::from_secs(20))
        .unwrap();
    w.assert_vic_untouched();
}

#[test]
fn mallory_cannot_pull_push_or_delete_in_vics_repository() {
    let Some(w) = World::start() else { return };
    if !skopeo_present() {
        return;
    }
    w.mallory_app(&[]);
    let (image, layer) = vic_image(&w);
    let digest = image.split_once('@').unwrap().1.to_string();
    let h = host(&w);
    let mine = format!("mallory:{}", w.mallory.token);
    let out = w.scratch.path().join("stolen");
    let mut wrong = Vec::new();

    // skopeo as mallory: inspect, copy out, push in, delete.
    for (what, args) in [
        (
            "inspect",
            vec![
                "inspect".to_string(),
                "--tls-verify=false".into(),
                "--creds".into(),
                mine.clone(),
                format!("docker://{h}/apps/vic:v1"),
            ],
        ),
        (
            "copy out",
            vec![
                "copy".to_string(),
                "--src-tls-verify=false".into(),
                "--src-creds".into(),
                mine.clone(),
                format!("docker://{h}/apps/vic@{digest}"),
                format!("oci:{}:x", out.display()),
            ],
        ),
        (
            "copy in",
            vec![
                "copy".to_string(),
                "--dest-tls-verify=false".into(),
                "--dest-creds".into(),
                mine.clone(),
                format!(
                    "oci:{}:latest",
                    paas_e2e::stacks_dir().join("tiny").display()
                ),
                format!("docker://{h}/apps/vic:v1"),
            ],
        ),
        (
            "copy over the stack every build starts from",
            vec![
                "copy".to_string(),
                "--dest-tls-verify=false".into(),
                "--dest-creds".into(),
                mine.clone(),
                format!(
                    "oci:{}:latest",
                    paas_e2e::stacks_dir().join("tiny").display()
                ),
                format!("docker://{h}/stacks/tiny:latest"),
            ],
        ),
        (
            "delete",
            vec![
                "delete".to_string(),
                "--tls-verify=false".into(),
                "--creds".into(),
                mine.clone(),
                format!("docker://{h}/apps/vic@{digest}"),
            ],
        ),
    ] {
        let (ok, text) = skopeo(&w, &args);
        let lower = text.to_ascii_lowercase();
        let says_why = ["denied", "unauthorized", "forbidden"]
            .iter()
            .any(|w| lower.contains(w));
        if ok || !says_why {
            wrong.push(format!("skopeo {what} as mallory: ok={ok}: {text}"));
        }
    }

    // By hand, with her Basic credentials.
    let client = w.paas.client();
    let req = |method: reqwest::Method, path: &str| {
        client
            .request(method, format!("{}{}", w.paas.api, path))
            .basic_auth("mallory", Some(&w.mallory.token))
    };
    let mut check = |what: &str, resp: reqwest::blocking::Response, ok: &[u16]| {
        let status = resp.status().as_u16();
        let body = resp.text().unwrap_or_default();
        if !ok.contains(&status) {
            wrong.push(format!("{what}: wanted {ok:?}, got {status} {body}"));
        }
    };
    check(
        "GET vic's manifest",
        req(reqwest::Method::GET, "/v2/apps/vic/manifests/v1")
            .send()
            .unwrap(),
        &[403],
    );
    check(
        "HEAD vic's layer through vic's repository",
        req(
            reqwest::Method::HEAD,
            &format!("/v2/apps/vic/blobs/{layer}"),
        )
        .send()
        .unwrap(),
        &[403],
    );
    check(
        "GET vic's layer through the stacks",
        req(
            reqwest::Method::GET,
            &format!("/v2/stacks/tiny/blobs/{layer}"),
        )
        .send()
        .unwrap(),
        &[404],
    );
    check(
        "mount vic's layer from apps/vic",
        req(
            reqwest::Method::POST,
            &format!("/v2/apps/mal/blobs/uploads/?mount={layer}&from=apps/vic"),
        )
        .send()
        .unwrap(),
        &[403],
    );
    check(
        "mount vic's layer without naming where from",
        req(
            reqwest::Method::POST,
            &format!("/v2/apps/mal/blobs/uploads/?mount={layer}"),
        )
        .send()
        .unwrap(),
        &[202],
    );
    check(
        "GET vic's layer through her own repository (after the mounts)",
        req(reqwest::Method::GET, &format!("/v2/apps/mal/blobs/{layer}"))
            .send()
            .unwrap(),
        &[404],
    );
    check(
        "DELETE vic's manifest",
        req(
            reqwest::Method::DELETE,
            &format!("/v2/apps/vic/manifests/{digest}"),
        )
        .send()
        .unwrap(),
        &[403],
    );
    // A manifest in her own repository that names vic's layer.
    let manifest = json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": layer, "size": 1},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer, "size": 1}],
    });
    check(
        "PUT a manifest naming vic's layer",
        req(reqwest::Method::PUT, "/v2/apps/mal/manifests/stolen")
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(manifest.to_string())
            .send()
            .unwrap(),
        &[400],
    );
    // A registry token asked for vic's repository grants nothing there.
    let token = req(
        reqwest::Method::GET,
        "/v2/token?service=paas&scope=repository:apps/vic:pull,push,delete",
    )
    .send()
    .unwrap()
    .json::<serde_json::Value>()
    .unwrap()["token"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let with_token = client
        .get(format!("{}/v2/apps/vic/manifests/v1", w.paas.api))
        .bearer_auth(&token)
        .send()
        .unwrap();
    check("GET vic's manifest with a token", with_token, &[401, 403]);
    assert!(
        wrong.is_empty(),
        "mallory got into vic's repository:\n{}",
        wrong.join("\n")
    );
    assert!(
        !out.join("index.json").exists(),
        "nothing was copied out of vic's repository"
    );

    // vic's image is whole: the admin copies every blob of it.
    let (ok, text) = skopeo(
        &w,
        &[
            "copy".into(),
            "--src-tls-verify=false".into(),
            "--src-creds".into(),
            format!("admin:{}", w.paas.token),
            format!("docker://{h}/apps/vic:v1"),
            format!("oci:{}:check", w.scratch.path().join("check").display()),
        ],
    );
    assert!(ok, "vic's image is still whole: {text}");
    w.assert_vic_untouched();
}

#[test]
fn mallory_cannot_clone_fetch_or_push_vics_git_repository() {
    let Some(w) = World::start() else { return };
    let head = |w: &World| {
        let out = Command::new("git")
            .arg("--git-dir")
            .arg(w.paas.data.path().join("git/vic.git"))
            .args(["rev-parse", "refs/heads/main"])
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let vic_head = head(&w);
    assert_eq!(vic_head.len(), 40, "vic's repository has main");
    let url = w.paas.git_url_with("vic", Some(&w.mallory.token));
    let mut wrong = Vec::new();

    // Read: clone, fetch, ls-remote.
    let mine = paas_e2e::AppDir::new();
    mine.write("index.html", "<h1>mallory was here</h1>\n");
    mine.commit("mallory");
    for args in [
        vec!["ls-remote", url.as_str()],
        vec!["fetch", url.as_str(), "main"],
    ] {
        let out = mine.git(&args).unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        if out.status.success() || text.contains(&vic_head) {
            wrong.push(format!("git {}: {text}", args[0]));
        }
    }
    let clone_dir = w.scratch.path().join("cloned");
    let out = mine
        .git(&["clone", url.as_str(), clone_dir.to_str().unwrap()])
        .unwrap();
    if out.status.success() || clone_dir.join("index.html").exists() {
        wrong.push(format!("git clone: {out:?}"));
    }
    // Write: a push and a force push of her own history, and a push to another branch.
    for refspec in ["main", "+main:main", "main:refs/heads/evil"] {
        let push = mine.push(&url, refspec);
        if push.ok || !push.output.contains("mallory may not push to vic") {
            wrong.push(format!("git push {refspec}: {}", push.output));
        }
    }
    // The upload-pack endpoints by hand.
    for path in [
        "/git/vic.git/info/refs?service=git-upload-pack",
        "/git/vic.git/git-upload-pack",
    ] {
        let method = if path.ends_with("/git-upload-pack") {
            reqwest::Method::POST
        } else {
            reqwest::Method::GET
        };
        let resp = w
            .paas
            .client()
            .request(method, format!("{}{path}", w.paas.api))
            .basic_auth("mallory", Some(&w.mallory.token))
            .send()
            .unwrap();
        let status = resp.status().as_u16();
        let body = resp.text().unwrap_or_default();
        // Clone and fetch answer as the API does for an app one may not use: 404.
        if status != 404 || body.contains(&vic_head) {
            wrong.push(format!("{path}: {status} {body}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "mallory read or wrote vic's git repository:\n{}",
        wrong.join("\n")
    );
    assert_eq!(head(&w), vic_head, "vic's main did not move");
    let branches = Command::new("git")
        .arg("--git-dir")
        .arg(w.paas.data.path().join("git/vic.git"))
        .args(["for-each-ref", "--format=%(refname)"])
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&branches.stdout).trim(),
        "refs/heads/main",
        "no ref was added to vic's repository"
    );
    w.assert_vic_untouched();
}
