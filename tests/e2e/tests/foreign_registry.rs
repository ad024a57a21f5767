//! Images from another registry, against one no one here wrote: Debian's `docker-registry`
//! (the reference distribution registry) started on 127.0.0.1 with its own config, storage
//! and htpasswd (bcrypt) auth; images pushed into it with skopeo. The controller reaches it
//! through `--insecure-registry 127.0.0.1:PORT` (plain http, allowed loopback).
//!
//! `paas deploy --image` without a login fails with the login hint; a wrong password is
//! refused by `registry:login` and not stored; after `registry:login` the image deploys and
//! serves, a two-platform index deploys its linux/amd64 image, and a Dockerfile `FROM` of
//! it builds (a member's push of the same Dockerfile gets the login hint); a missing tag
//! is `not_found`, a blob whose bytes were changed in the registry's storage is
//! `digest_mismatch` (nothing kept), and each failure leaves the old release serving; a member cannot use the admin's stored login and never sees it; the login is
//! stored 0600 and no password reaches the API answers or the controller's log. The Bearer
//! token flow is run against paas's own registry reached as `localhost:PORT`.

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use paas_e2e::oci_layout::{put_blob, read_json, serving_layout};
use paas_e2e::{bins, require_root, stacks_dir, AppDir, Paas};

const USER: &str = "team";
const PASSWORD: &str = "reg-s3cret-pw";

fn tool_present(name: &str) -> bool {
    if Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
    {
        return true;
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "{name} is missing: run deploy/install-deps"
    );
    eprintln!("skipping: {name} is not installed");
    false
}

/// A `docker-registry serve` of its own, killed on drop.
struct ForeignRegistry {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl ForeignRegistry {
    fn start() -> ForeignRegistry {
        let dir = tempfile::tempdir().unwrap();
        let out = Command::new("htpasswd")
            .args(["-Bbn", USER, PASSWORD])
            .output()
            .unwrap();
        assert!(out.status.success(), "htpasswd: {out:?}");
        std::fs::write(dir.path().join("htpasswd"), &out.stdout).unwrap();
        // A free port: bind, note it, let it go.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let config = format!(
            "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\n\
             http:\n  addr: 127.0.0.1:{port}\nauth:\n  htpasswd:\n    realm: foreign-test\n    \
             path: {}\n",
            dir.path().join("data").display(),
            dir.path().join("htpasswd").display()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let log = std::fs::File::create(dir.path().join("registry.log")).unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(dir.path().join("config.yml"))
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start docker-registry");
        let reg = ForeignRegistry { child, dir, port };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "docker-registry did not listen: {}",
                reg.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        reg
    }

    fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
    }

    /// The file holding a blob in the registry's filesystem storage.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.trim_start_matches("sha256:");
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for ForeignRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Turns a layout made by [`serving_layout`] into a two-platform one: an OCI index with a
/// linux/arm64 image (serving `arm_page`) listed first and the original as linux/amd64.
fn two_platform_layout(dir: &Path, arm_page: &str) {
    let blobs = dir.join("blobs/sha256");
    let mut index = read_json(&dir.join("index.json"));
    let amd = index["manifests"][0].clone();
    let manifest = read_json(
        &blobs.join(
            amd["digest"]
                .as_str()
                .unwrap()
                .trim_start_matches("sha256:"),
        ),
    );
    let cdigest = manifest["config"]["digest"].as_str().unwrap();
    let mut config = read_json(&blobs.join(cdigest.trim_start_matches("sha256:")));
    config["architecture"] = "arm64".into();
    config["config"]["Cmd"] = serde_json::json!(["/bin/sh", "-c", format!("echo {arm_page}")]);
    let cbytes = serde_json::to_vec(&config).unwrap();
    let mut arm = manifest.clone();
    arm["config"]["digest"] = format!("sha256:{}", put_blob(dir, &cbytes)).into();
    arm["config"]["size"] = cbytes.len().into();
    let abytes = serde_json::to_vec(&arm).unwrap();
    let ahex = put_blob(dir, &abytes);
    let mut amd_entry = amd.clone();
    amd_entry["platform"] = serde_json::json!({"os": "linux", "architecture": "amd64"});
    let list = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json",
             "digest": format!("sha256:{ahex}"), "size": abytes.len(),
             "platform": {"os": "linux", "architecture": "arm64", "variant": "v8"}},
            amd_entry,
        ],
    });
    let lbytes = serde_json::to_vec(&list).unwrap();
    let lhex = put_blob(dir, &lbytes);
    index["manifests"] = serde_json::json!([{
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "digest": format!("sha256:{lhex}"),
        "size": lbytes.len(),
    }]);
    std::fs::write(dir.join("index.json"), serde_json::to_vec(&index).unwrap()).unwrap();
}

fn skopeo_push(work: &Path, layout: &Path, dest: &str) {
    skopeo_push_as(work, layout, dest, USER, PASSWORD)
}

fn skopeo_push_as(work: &Path, layout: &Path, dest: &str, user: &str, password: &str) {
    let home = work.join("skopeo-home");
    std::fs::create_dir_all(&home).unwrap();
    let out = Command::new("skopeo")
        .args(["--insecure-policy", "copy", "--all"])
        .arg(format!("oci:{}", layout.display()))
        .arg(format!("docker://{dest}"))
        .args(["--dest-tls-verify=false", "--dest-creds"])
        .arg(format!("{user}:{password}"))
        .env("HOME", &home)
        .env("REGISTRY_AUTH_FILE", home.join("auth.json"))
        .output()
        .unwrap();
    assert!(out.status.success(), "skopeo copy to {dest}: {out:?}");
}

/// `paas registry:login HOST -u USER --password-stdin` with `password` on stdin.
fn registry_login(paas: &Paas, token: &str, host: &str, user: &str, password: &str) -> Output {
    let home = paas.data.path().join("cli-home");
    std::fs::create_dir_all(&home).unwrap();
    let mut child = Command::new(&bins().cli)
        .args(["registry:login", host, "-u", user, "--password-stdin"])
        .env("PAAS_URL", &paas.api)
        .env("PAAS_TOKEN", token)
        .env("HOME", &home)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(format!("{password}\n").as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn deploy(paas: &Paas, token: &str, app: &str, image: &str) -> paas_e2e::Answer {
    paas.call(
        Some(token),
        "POST",
        &format!("/v1/apps/{app}/releases"),
        Some(&serde_json::json!({ "image": image })),
    )
}

#[test]
fn an_image_from_a_password_protected_docker_registry_deploys_after_registry_login() {
    if !require_root() || !tool_present("docker-registry") || !tool_present("skopeo") {
        return;
    }
    if !tool_present("htpasswd") {
        return;
    }
    let reg = ForeignRegistry::start();
    let host = reg.host();
    let work = tempfile::tempdir().unwrap();
    let one = work.path().join("one");
    serving_layout(&one, "foreign-one-ok", None);
    skopeo_push(work.path(), &one, &format!("{host}/team/base:1.2"));
    let two = work.path().join("two");
    let config_two = serving_layout(&two, "foreign-two-ok", None);
    skopeo_push(work.path(), &two, &format!("{host}/team/base:1.3"));

    // Plain http to the docker-registry, and to the controller itself under another name
    // (`localhost:PORT`, for the Bearer token flow below); the port is known once it runs.
    let mut paas = Paas::start_with_args(stacks_dir(), &[]);
    let api_port = paas.api.rsplit(':').next().unwrap().to_string();
    let self_host = format!("localhost:{api_port}");
    paas.kill_controller();
    paas.restart_with_env(&[("PAAS_INSECURE_REGISTRIES", &format!("{host},{self_host}"))]);
    let admin = paas.token.clone();
    let app = "frapp";
    let a = paas.call(
        Some(&admin),
        "POST",
        "/v1/apps",
        Some(&serde_json::json!({"name": app})),
    );
    assert_eq!(a.status, 201, "{a}");
    let image = format!("{host}/team/base:1.2");

    // Without a login: the registry's Basic challenge is answered with nothing to send.
    let a = deploy(&paas, &admin, app, &image);
    assert_eq!(a.code(), "registry_login_required", "{a}");
    assert!(
        a.message().contains(&format!("paas registry:login {host}")),
        "{a}"
    );
    let out = paas.cli_as(&admin, &["deploy", "--image", &image, "-a", app]);
    assert!(!out.status.success());
    assert!(text(&out).contains("registry:login"), "{}", text(&out));

    // A wrong password is refused by the registry and not stored.
    let out = registry_login(&paas, &admin, &host, USER, "not-the-password");
    assert!(!out.status.success(), "{}", text(&out));
    assert!(text(&out).contains("refused"), "{}", text(&out));
    let list = paas.call(Some(&admin), "GET", "/v1/registry-logins", None);
    assert_eq!(list.json(), serde_json::json!([]), "{list}");

    // After the login the image deploys and serves.
    let out = registry_login(&paas, &admin, &host, USER, PASSWORD);
    assert!(out.status.success(), "{}", text(&out));
    let out = paas.cli_as(&admin, &["deploy", "--image", &image, "-a", app]);
    assert!(out.status.success(), "{}\n{}", text(&out), paas.log());
    paas.wait_for_body(app, "foreign-one-ok", Duration::from_secs(60))
        .unwrap();
    let releases = paas.get_json(&format!("/v1/apps/{app}/releases")).unwrap();
    let current = &releases.as_array().unwrap()[0];
    assert!(
        current["image"]
            .as_str()
            .unwrap()
            .starts_with(&format!("apps/{app}@sha256:")),
        "{current}"
    );

    // A two-platform index: its linux/amd64 image is the one deployed.
    let multi = work.path().join("multi");
    serving_layout(&multi, "multi-amd64-ok", None);
    two_platform_layout(&multi, "multi-arm64-wrong");
    skopeo_push(work.path(), &multi, &format!("{host}/team/multi:1"));
    let a = deploy(&paas, &admin, app, &format!("{host}/team/multi:1"));
    assert_eq!(a.status, 201, "{a}\n{}", paas.log());
    paas.wait_for_body(app, "multi-amd64-ok", Duration::from_secs(60))
        .unwrap();
    // Back to the first image (a later check expects its page).
    let a = deploy(&paas, &admin, app, &image);
    assert_eq!(a.status, 201, "{a}");
    paas.wait_for_body(app, "foreign-one-ok", Duration::from_secs(60))
        .unwrap();

    // A tag the registry does not have: not_found; the old release serves.
    let a = deploy(&paas, &admin, app, &format!("{host}/team/base:9.9"));
    assert_eq!((a.status, a.code().as_str()), (404, "not_found"), "{a}");
    assert!(a.message().contains("team/base:9.9"), "{a}");
    // A digest the registry does not have: not_found too.
    let a = deploy(
        &paas,
        &admin,
        app,
        &format!("{host}/team/base@sha256:{}", "0".repeat(64)),
    );
    assert_eq!(a.status, 404, "{a}");

    // The registry serves changed bytes for 1.3's config (same size): digest_mismatch,
    // nothing kept, and the old release still serves.
    let file = reg.blob_file(&config_two);
    let mut bytes = std::fs::read(&file).unwrap();
    let at = bytes.iter().position(|b| *b == b'f').unwrap();
    bytes[at] = b'g';
    std::fs::write(&file, &bytes).unwrap();
    let a = deploy(&paas, &admin, app, &format!("{host}/team/base:1.3"));
    assert_eq!(
        (a.status, a.code().as_str()),
        (502, "digest_mismatch"),
        "{a}"
    );
    assert!(a.message().contains(&config_two), "{a}");
    let (status, body) = paas.request_app(app, "/").unwrap();
    assert_eq!((status, body.trim()), (200, "foreign-one-ok"));

    // A member: sees no login of the admin's, and cannot deploy with it.
    let bob = paas.add_member("bob");
    let a = paas.call(
        Some(&bob.token),
        "POST",
        "/v1/apps",
        Some(&serde_json::json!({"name": "bobapp"})),
    );
    assert_eq!(a.status, 201, "{a}");
    let list = paas.call(Some(&bob.token), "GET", "/v1/registry-logins", None);
    assert_eq!(list.json(), serde_json::json!([]), "{list}");
    let a = deploy(&paas, &bob.token, "bobapp", &image);
    assert_eq!(a.code(), "registry_login_required", "{a}");
    let a = paas.call(
        Some(&bob.token),
        "DELETE",
        &format!("/v1/registry-logins/{host}"),
        None,
    );
    assert_eq!(a.status, 404, "{a}");
    // … and a member cannot deploy into the admin's app at all.
    let a = deploy(&paas, &bob.token, app, &image);
    assert_eq!(a.status, 404, "{a}");

    // A Dockerfile's FROM names the same image: the admin's push builds on it with the
    // admin's login; bob's push of the same Dockerfile ends with the login hint.
    let dockerfile = format!(
        "FROM {image}\nENV MSG=from-dockerfile-ok\nCMD [\"/bin/sh\", \"-c\", \"mkdir -p \
         /tmp/d && echo $MSG > /tmp/d/index.html && exec httpd -f -p $PORT -h /tmp/d\"]\n"
    );
    let src = AppDir::new();
    src.write("Dockerfile", &dockerfile);
    src.commit("from another registry");
    let push = src.push(&paas.git_url("frdock"), "main");
    assert!(push.ok, "push failed:\n{}\n{}", push.output, paas.log());
    paas.wait_for_body("frdock", "from-dockerfile-ok", Duration::from_secs(60))
        .unwrap();
    let push = src.push(&paas.git_url_with("bobapp", Some(&bob.token)), "main");
    assert!(
        !push.ok,
        "bob's push used the admin's login:\n{}",
        push.output
    );
    assert!(
        push.output.contains(&format!("paas registry:login {host}")),
        "{}",
        push.output
    );

    // Stored owner-only; the API shows host and user name only; nothing logs the password.
    let list = paas.call(Some(&admin), "GET", "/v1/registry-logins", None);
    assert_eq!(
        list.json(),
        serde_json::json!([{"host": host, "username": USER}]),
        "{list}"
    );
    let dir = find_dir(paas.data.path(), "registry-logins").expect("registry-logins dir");
    for entry in std::fs::read_dir(&dir).unwrap() {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = entry.unwrap().metadata().unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    assert!(
        !paas.log().contains(PASSWORD),
        "the controller logged the password"
    );
    let out = paas.cli_as(&admin, &["registry:list"]);
    assert!(
        text(&out).contains(USER) && !text(&out).contains(PASSWORD),
        "{}",
        text(&out)
    );

    // The Bearer token flow (realm, service, scope; Basic credentials at the realm), with
    // paas's own registry reached as `localhost:PORT`: the admin token is the password.
    let three = work.path().join("three");
    serving_layout(&three, "bearer-three-ok", None);
    skopeo_push_as(
        work.path(),
        &three,
        &format!("127.0.0.1:{api_port}/imgs/src:1"),
        "admin",
        &admin,
    );
    let bearer_image = format!("{self_host}/imgs/src:1");
    let a = deploy(&paas, &admin, app, &bearer_image);
    assert_eq!(a.code(), "registry_login_required", "{a}");
    let out = registry_login(&paas, &admin, &self_host, "admin", &admin);
    assert!(out.status.success(), "{}\n{}", text(&out), paas.log());
    let a = deploy(&paas, &admin, app, &bearer_image);
    assert_eq!(a.status, 201, "{a}\n{}", paas.log());
    paas.wait_for_body(app, "bearer-three-ok", Duration::from_secs(60))
        .unwrap();

    // Logout forgets it: the deploy asks for a login again.
    let out = paas.cli_as(&admin, &["registry:logout", &host]);
    assert!(out.status.success(), "{}", text(&out));
    let a = deploy(&paas, &admin, app, &image);
    assert_eq!(a.code(), "registry_login_required", "{a}");
    let (status, body) = paas.request_app(app, "/").unwrap();
    assert_eq!((status, body.trim()), (200, "bearer-three-ok"));
    drop(reg);
}

/// The directory named `name` under `root` (the data dir's layout is the controller's).
fn find_dir(root: &Path, name: &str) -> Option<PathBuf> {
    for entry in std::fs::read_dir(root).ok()?.flatten() {
        let p = entry.path();
        if p.is_dir() {
            if p.file_name().is_some_and(|n| n == name) {
                return Some(p);
            }
            if let Some(found) = find_dir(&p, name) {
                return Some(found);
            }
        }
    }
    None
}
