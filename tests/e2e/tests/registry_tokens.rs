//! The registry's token auth and zstd layers against a real controller: skopeo (a client
//! no one here wrote) follows the `WWW-Authenticate: Bearer` challenge to `/v2/token` with
//! the admin's Basic credentials and pushes an image compressed as `tar+zstd`
//! (`--dest-compress-format zstd` of a decompressed `dir:` copy); the
//! token flow is checked by hand (challenge, scoped token, insufficient scope, tampering);
//! then the zstd image deploys (`POST /v1/apps/APP/releases {"image"}`) and serves, so the
//! agent unpacked its zstd layer.

use std::process::Command;
use std::time::Duration;

use paas_e2e::oci_layout::serving_layout;
use paas_e2e::{require_root, Paas};

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

#[test]
fn skopeo_follows_the_token_challenge_and_a_zstd_image_deploys() {
    if !require_root() || !skopeo_present() {
        return;
    }
    let paas = Paas::start();
    let host = paas.api.trim_start_matches("http://").to_string();
    let client = paas.client();

    // The challenge names the token endpoint.
    let resp = client.get(format!("{}/v2/", paas.api)).send().unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let challenges: Vec<String> = resp
        .headers()
        .get_all("www-authenticate")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .collect();
    assert_eq!(
        challenges[0],
        format!("Bearer realm=\"http://{host}/v2/token\",service=\"paas\""),
        "{challenges:?}"
    );
    assert!(
        challenges.iter().any(|c| c.starts_with("Basic ")),
        "{challenges:?}"
    );

    // skopeo pushes with the admin's credentials, recompressing the layers as zstd.
    let work = tempfile::tempdir().unwrap();
    let layout = work.path().join("img");
    serving_layout(&layout, "im4-zstd-ok", Some("latest"));
    let home = work.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    // skopeo keeps compressed layers as they are, so decompress them first (into a `dir:`
    // copy), then push with zstd as the compression.
    let plain = work.path().join("plain");
    let skopeo = |args: &[String]| {
        let out = Command::new("skopeo")
            .arg("--insecure-policy")
            .args(args)
            .env("HOME", &home)
            .env("REGISTRY_AUTH_FILE", home.join("auth.json"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "skopeo {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            paas.log()
        );
    };
    skopeo(&[
        "copy".into(),
        "--dest-decompress".into(),
        format!("oci:{}:latest", layout.display()),
        format!("dir:{}", plain.display()),
    ]);
    skopeo(&[
        "copy".into(),
        "--dest-tls-verify=false".into(),
        "--dest-compress-format".into(),
        "zstd".into(),
        "--dest-creds".into(),
        format!("admin:{}", paas.token),
        format!("dir:{}", plain.display()),
        format!("docker://{host}/im4/zweb:1"),
    ]);

    // A token by hand: scoped to what was asked and allowed.
    let resp = client
        .get(format!(
            "{}/v2/token?service=paas&scope=repository:im4/zweb:pull,push",
            paas.api
        ))
        .basic_auth("admin", Some(&paas.token))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let body: serde_json::Value = resp.json().unwrap();
    let token = body["token"].as_str().unwrap().to_string();
    assert_eq!(body["access_token"], body["token"]);
    assert!(body["expires_in"].as_u64().unwrap() > 0, "{body}");
    let manifest_url = format!("{}/v2/im4/zweb/manifests/1", paas.api);
    let resp = client
        .get(&manifest_url)
        .bearer_auth(&token)
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let manifest: serde_json::Value = resp.json().unwrap();
    let layers = manifest["layers"].as_array().unwrap();
    assert!(!layers.is_empty());
    for l in layers {
        assert_eq!(
            l["mediaType"], "application/vnd.oci.image.layer.v1.tar+zstd",
            "{manifest}"
        );
    }
    // The layer blob is served as pushed: a zstd frame.
    let digest = layers[0]["digest"].as_str().unwrap();
    let blob = client
        .get(format!("{}/v2/im4/zweb/blobs/{digest}", paas.api))
        .bearer_auth(&token)
        .send()
        .unwrap()
        .bytes()
        .unwrap();
    assert_eq!(&blob[..4], &[0x28, 0xb5, 0x2f, 0xfd]);
    // Another repository is outside the token: 401 asking for that scope.
    let resp = client
        .get(format!("{}/v2/stacks/tiny/manifests/latest", paas.api))
        .bearer_auth(&token)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let challenge = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        challenge.contains("scope=\"repository:stacks/tiny:pull\"")
            && challenge.contains("error=\"insufficient_scope\""),
        "{challenge}"
    );
    // A tampered token and bad Basic credentials are refused.
    let mut tampered = token.clone();
    tampered.pop();
    tampered.push(if token.ends_with('A') { 'B' } else { 'A' });
    let resp = client
        .get(&manifest_url)
        .bearer_auth(&tampered)
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);
    let resp = client
        .get(format!(
            "{}/v2/token?scope=repository:im4/zweb:pull",
            paas.api
        ))
        .basic_auth("admin", Some("wrong"))
        .send()
        .unwrap();
    assert_eq!(resp.status().as_u16(), 401);

    // The zstd image deploys: the agent unpacks zstd layers.
    let resp = client
        .post(format!("{}/v1/apps", paas.api))
        .bearer_auth(&paas.token)
        .json(&serde_json::json!({"name": "im4zstd"}))
        .send()
        .unwrap();
    assert!(resp.status().is_success(), "{}", resp.text().unwrap());
    let resp = client
        .post(format!("{}/v1/apps/im4zstd/releases", paas.api))
        .bearer_auth(&paas.token)
        .timeout(Duration::from_secs(90))
        .json(&serde_json::json!({"image": "im4/zweb:1"}))
        .send()
        .unwrap();
    let code = resp.status().as_u16();
    let body: serde_json::Value = resp.json().unwrap();
    assert_eq!(code, 201, "{body}\n{}", paas.log());
    paas.wait_for_body("im4zstd", "im4-zstd-ok", Duration::from_secs(30))
        .unwrap_or_else(|e| panic!("{e}\n{}", paas.log()));
}
