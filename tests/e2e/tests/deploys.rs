//! The deploy pipeline with real pushes and real containers on the tiny stack (root):
//! app.json HTTP health checks with automatic rollback, the release phase, and deploying
//! an image pushed into the registry with skopeo.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use paas_e2e::{require_root, stacks_dir, AppDir, Paas};

/// A Procfile web process (busybox httpd) serving `page` at `/` and `health` at `/health`.
fn procfile(page: &str, health: &str, release: Option<&str>) -> String {
    let mut text = format!(
        "web: sh -c 'mkdir -p /tmp/www && echo {page} > /tmp/www/index.html && echo {health} > /tmp/www/health && exec httpd -f -p $PORT -h /tmp/www'\n"
    );
    if let Some(cmd) = release {
        text.push_str(&format!("release: {cmd}\n"));
    }
    text
}

const APP_JSON: &str = r#"{"healthchecks": {"web": [{"type": "startup", "name": "health",
  "path": "/health", "content": "ok", "attempts": 3, "timeout": 2, "wait": 1}]}}"#;

fn release_status(paas: &Paas, app: &str, version: u64) -> (String, String) {
    let releases = paas.get_json(&format!("/v1/apps/{app}/releases")).unwrap();
    let r = releases
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["version"] == version)
        .unwrap_or_else(|| panic!("no v{version} in {releases}"))
        .clone();
    (
        r["status"].as_str().unwrap_or_default().to_string(),
        r["status_reason"].as_str().unwrap_or_default().to_string(),
    )
}

fn current_release(paas: &Paas, app: &str) -> serde_json::Value {
    paas.get_json(&format!("/v1/apps/{app}")).unwrap()["current_release"].clone()
}

#[test]
fn failing_health_check_rolls_back_and_release_phase_gates_the_release() {
    if !require_root() {
        return;
    }
    let paas = Paas::start();
    let app = AppDir::new();
    let url = paas.git_url("hc");

    // v1: healthy.
    app.write("Procfile", &procfile("hello-v1", "ok", None));
    app.write("app.json", APP_JSON);
    app.write(
        "public/index.html",
        "static page that the Procfile overrides\n",
    );
    app.commit("v1");
    let push = app.push(&url, "main");
    assert!(push.ok, "v1 push failed:\n{}", push.output);
    assert!(
        push.output
            .contains("Health check: GET /health expecting \"ok\""),
        "{}",
        push.output
    );
    // The Procfile's web process wins over public/index.html, and detection says so.
    assert!(
        push.output.contains("Procfile app detected"),
        "{}",
        push.output
    );
    assert!(!push.output.contains("Static HTML"), "{}", push.output);
    paas.wait_for_body("hc", "hello-v1", Duration::from_secs(30))
        .unwrap();
    assert_eq!(release_status(&paas, "hc", 1).0, "succeeded");

    // v2: /health answers the wrong content → the push fails, v1 keeps serving.
    app.write("Procfile", &procfile("hello-v2", "bad", None));
    app.commit("v2");
    let push = app.push(&url, "main");
    assert!(!push.ok, "v2 push should fail:\n{}", push.output);
    assert!(
        push.output.contains("failed the health check"),
        "{}",
        push.output
    );
    assert!(
        push.output.contains("did not contain \"ok\""),
        "{}",
        push.output
    );
    assert!(push.output.contains("Rolled back to v1"), "{}", push.output);
    let (status, reason) = release_status(&paas, "hc", 2);
    assert_eq!(status, "failed");
    assert!(reason.contains("did not contain"), "{reason}");
    assert_eq!(current_release(&paas, "hc"), 1);
    for _ in 0..5 {
        let (code, body) = paas.request_app("hc", "/").unwrap();
        assert_eq!(code, 200);
        assert!(body.contains("hello-v1"), "{body}");
    }

    // v3: a release command that fails → not live, its output in the push.
    app.write(
        "Procfile",
        &procfile("hello-v3", "ok", Some("echo migrating-now; exit 4")),
    );
    app.commit("v3");
    let push = app.push(&url, "main");
    assert!(!push.ok, "v3 push should fail:\n{}", push.output);
    assert!(
        push.output.contains("Running release command"),
        "{}",
        push.output
    );
    assert!(push.output.contains("migrating-now"), "{}", push.output);
    assert!(
        push.output.contains("the release command failed (exited 4"),
        "{}",
        push.output
    );
    assert_eq!(current_release(&paas, "hc"), 1);
    let (_, body) = paas.request_app("hc", "/").unwrap();
    assert!(body.contains("hello-v1"), "{body}");

    // v4: a passing release command (it sees the config and PORT) and a healthy web.
    app.write(
        "Procfile",
        &procfile("hello-v4", "ok", Some("echo release-ran-on-port-$PORT")),
    );
    app.commit("v4");
    let push = app.push(&url, "main");
    assert!(push.ok, "v4 push failed:\n{}", push.output);
    assert!(
        push.output.contains("release-ran-on-port-5000"),
        "{}",
        push.output
    );
    paas.wait_for_body("hc", "hello-v4", Duration::from_secs(30))
        .unwrap();
    let current = current_release(&paas, "hc");
    assert!(current.as_u64().unwrap() >= 3, "{current}");
    let (status, _) = release_status(&paas, "hc", current.as_u64().unwrap());
    assert_eq!(status, "succeeded");
}

fn sha256_file(path: &Path) -> String {
    let out = Command::new("sha256sum").arg(path).output().unwrap();
    assert!(out.status.success());
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

/// Writes `bytes` as a blob of the OCI layout `dir`; returns its hex digest.
fn put_blob(dir: &Path, bytes: &[u8]) -> String {
    let tmp = dir.join("blob.tmp");
    std::fs::write(&tmp, bytes).unwrap();
    let hex = sha256_file(&tmp);
    std::fs::rename(&tmp, dir.join("blobs/sha256").join(&hex)).unwrap();
    hex
}

/// An OCI layout: the tiny stack with a Cmd that serves `page` on $PORT.
fn image_layout(dir: &Path, page: &str) {
    let status = Command::new("cp")
        .arg("-rL")
        .arg(stacks_dir().join("tiny"))
        .arg(dir)
        .status()
        .unwrap();
    assert!(status.success());
    let blobs = dir.join("blobs/sha256");
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let mdigest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let mut manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(blobs.join(mdigest.trim_start_matches("sha256:"))).unwrap(),
    )
    .unwrap();
    let cdigest = manifest["config"]["digest"].as_str().unwrap().to_string();
    let mut config: serde_json::Value = serde_json::from_slice(
        &std::fs::read(blobs.join(cdigest.trim_start_matches("sha256:"))).unwrap(),
    )
    .unwrap();
    config["config"]["Entrypoint"] = serde_json::json!(["/bin/sh", "-c"]);
    config["config"]["Cmd"] = serde_json::json!([format!(
        "mkdir -p /tmp/w && echo {page} $GREETING > /tmp/w/index.html && exec httpd -f -p $PORT -h /tmp/w"
    )]);
    let mut env = config["config"]["Env"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    env.push("GREETING=from-image-env".into());
    config["config"]["Env"] = env.into();
    let cbytes = serde_json::to_vec(&config).unwrap();
    let chex = put_blob(dir, &cbytes);
    manifest["config"]["digest"] = format!("sha256:{chex}").into();
    manifest["config"]["size"] = cbytes.len().into();
    let mbytes = serde_json::to_vec(&manifest).unwrap();
    let mhex = put_blob(dir, &mbytes);
    let mut index = index;
    index["manifests"] = serde_json::json!([{
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": format!("sha256:{mhex}"),
        "size": mbytes.len(),
    }]);
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

#[test]
fn image_pushed_with_skopeo_deploys_without_a_build() {
    if !require_root() {
        return;
    }
    if Command::new("skopeo").arg("--version").output().is_err() {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "skopeo is missing: run deploy/install-deps"
        );
        eprintln!("skipping: skopeo is not installed");
        return;
    }
    let paas = Paas::start();
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("img");
    image_layout(&layout, "image-ok");
    let host = paas.api.trim_start_matches("http://").to_string();
    let out = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false", "--dest-creds"])
        .arg(format!("admin:{}", paas.token))
        .arg(format!("oci:{}", layout.display()))
        .arg(format!("docker://{host}/imgs/web:1"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "skopeo copy failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );

    let client = paas.client();
    let resp = client
        .post(format!("{}/v1/apps", paas.api))
        .bearer_auth(&paas.token)
        .json(&serde_json::json!({"name": "imgapp"}))
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().unwrap());
    // Unknown image → 404 with a hint.
    let resp = client
        .post(format!("{}/v1/apps/imgapp/releases", paas.api))
        .bearer_auth(&paas.token)
        .json(&serde_json::json!({"image": "imgs/nope:1"}))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    assert!(resp.text().unwrap().contains("skopeo copy"));

    let resp = client
        .post(format!("{}/v1/apps/imgapp/releases", paas.api))
        .bearer_auth(&paas.token)
        .timeout(Duration::from_secs(90))
        .json(&serde_json::json!({"image": format!("{host}/imgs/web:1")}))
        .send()
        .unwrap();
    let code = resp.status().as_u16();
    let body: serde_json::Value = resp.json().unwrap();
    assert_eq!(code, 201, "{body}");
    assert_eq!(body["status"], "succeeded", "{body}");
    // Linked into the app's own repository: the release never depends on imgs/web.
    assert!(
        body["image"]
            .as_str()
            .unwrap()
            .starts_with("apps/imgapp@sha256:"),
        "{body}"
    );
    assert!(
        body["process_types"]["web"]
            .as_str()
            .unwrap()
            .starts_with(r#"["/bin/sh","-c","mkdir"#),
        "{body}"
    );
    paas.wait_for_body("imgapp", "image-ok from-image-env", Duration::from_secs(30))
        .unwrap();
}
