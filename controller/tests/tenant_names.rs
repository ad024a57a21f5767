//! Names are not inheritance, played over real HTTP and real git against a real controller
//! (with the fake agent of `support`): after `vic` is destroyed or renamed, mallory makes
//! an app named `vic` and gets nothing that was the old one's (registry tags, manifests and
//! blobs, git history, build cache, jobs, routes, logs, domains, certificates), while a
//! renamed app keeps everything and still deploys, rolls back and restarts.

mod support;
mod tenants_support;

use std::sync::Arc;

use serde_json::{json, Value};
use support::AppDir;
use tenants_support::World;

/// The build specs the agent got for `app`, oldest first.
fn build_volumes(w: &World, app: &str) -> Vec<String> {
    w.agent
        .specs
        .lock()
        .unwrap()
        .iter()
        .filter(|s| s.labels.get("paas.kind").map(String::as_str) == Some("build"))
        .filter(|s| s.labels.get("paas.app").map(String::as_str) == Some(app))
        .map(|s| s.volumes[0].name.clone())
        .collect()
}

/// The image repository of the newest web job spec of `app`.
fn newest_web_image(w: &World, app: &str) -> (String, String, String) {
    let specs = w.agent.specs.lock().unwrap();
    let s = specs
        .iter()
        .rev()
        .find(|s| {
            s.labels.get("paas.app").map(String::as_str) == Some(app)
                && s.labels.get("paas.type").map(String::as_str) == Some("web")
        })
        .unwrap_or_else(|| panic!("no web job of {app}"));
    (
        s.id.clone(),
        s.image.repository.clone(),
        s.image.reference.clone(),
    )
}

/// What a node pulls for `repo@reference`: the manifest and every blob it names.
async fn pullable(w: &World, repo: &str, reference: &str) -> bool {
    let node = w.running.c.tokens.node().to_string();
    let (s, body) = w
        .registry("GET", &format!("/v2/{repo}/manifests/{reference}"), &node)
        .await;
    if s != 200 {
        return false;
    }
    let m: Value = serde_json::from_str(&body).unwrap();
    let mut blobs = vec![m["config"]["digest"].as_str().unwrap().to_string()];
    blobs.extend(
        m["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["digest"].as_str().unwrap().to_string()),
    );
    for b in blobs {
        if w.registry("GET", &format!("/v2/{repo}/blobs/{b}"), &node)
            .await
            .0
            != 200
        {
            return false;
        }
    }
    true
}

/// Everything the API shows of `app` to `token` is empty.
async fn assert_empty(w: &World, token: &str, app: &str) {
    for what in ["releases", "builds", "domains", "certs", "jobs"] {
        let (s, v) = w
            .call("GET", &format!("/v1/apps/{app}/{what}"), token, None)
            .await;
        assert_eq!((s, &v), (200, &json!([])), "{app}'s {what}");
    }
    let (s, v) = w
        .call(
            "GET",
            &format!("/v1/apps/{app}/logs?lines=1000"),
            token,
            None,
        )
        .await;
    assert_eq!(s, 200);
    let logs = v.as_str().unwrap_or_default();
    assert!(!logs.contains("heroku[router]"), "router history: {logs}");
    assert!(!logs.contains("app["), "old output: {logs}");
    let (s, v) = w
        .call("GET", &format!("/v1/apps/{app}/buildpack"), token, None)
        .await;
    assert_eq!((s, v["buildpack"].clone()), (200, json!(null)));
}

/// The refs `git push` is offered for `app` (the info/refs advertisement).
async fn advertised(w: &World, token: &str, app: &str) -> String {
    let (s, body) = w
        .registry(
            "GET",
            &format!("/git/{app}.git/info/refs?service=git-receive-pack"),
            token,
        )
        .await;
    assert_eq!(s, 200, "{body}");
    body
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ac14_a_destroyed_name_starts_empty() {
    let w = World::start().await;
    let victor = w.member("victor").await;
    let mallory = w.member("mallory").await;
    w.create_app(&victor, "vic").await;
    w.push_site(&victor, "vic", "<h1>vic's secret code</h1>")
        .await;
    w.wait_serving("vic", "hello from vic-v1-").await;
    let old_id = w.running.c.store.app_id("vic").await.unwrap().unwrap();
    assert_eq!(build_volumes(&w, "vic"), [format!("cache-{old_id}")]);
    let old_rev = w.running.c.store.list_builds("vic").await.unwrap()[0]
        .source_version
        .clone()
        .unwrap();
    let image = w
        .running
        .c
        .store
        .get_release("vic", 1)
        .await
        .unwrap()
        .unwrap()
        .image;
    let digest = image.split_once('@').unwrap().1.to_string();
    assert!(pullable(&w, "apps/vic", &digest).await);
    let (old_job, _, _) = newest_web_image(&w, "vic");
    for (path, body) in [
        ("domains", json!({"hostname": "www.vic.test"})),
        ("buildpack", json!({"buildpack": "static"})),
    ] {
        let method = if path == "buildpack" { "PUT" } else { "POST" };
        let (s, v) = w
            .call(method, &format!("/v1/apps/vic/{path}"), &victor, Some(body))
            .await;
        assert!(s == 200 || s == 201, "{path}: {v}");
    }
    // Router history exists before (so the check after can fail).
    let (s, v) = w
        .call("GET", "/v1/apps/vic/logs?lines=1000", &victor, None)
        .await;
    assert_eq!(s, 200);
    assert!(v.as_str().unwrap().contains("heroku[router]"), "{v}");

    let (s, v) = w
        .call(
            "POST",
            "/v1/apps/vic/run",
            &victor,
            Some(json!({"command": "sleep 600"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let run = v["id"].as_str().unwrap().to_string();

    let (s, v) = w
        .call("DELETE", "/v1/apps/vic?confirm=vic", &victor, None)
        .await;
    assert_eq!(s, 204, "{v}");
    assert!(
        w.agent.statuses().iter().all(|j| j.id != run),
        "the one-off job went with the app"
    );
    assert!(
        w.agent
            .deleted_volumes
            .lock()
            .unwrap()
            .contains(&format!("cache-{old_id}")),
        "the build cache is deleted on the node"
    );

    // Leftovers a failed destroy (or one from before destroys removed them) could leave:
    // an old repository under the name in git and in the registry.
    let git_dir = w.running.c.settings.repo_path("vic");
    let seed = AppDir::new();
    seed.write("index.html", "left behind");
    seed.commit("left behind");
    let out = std::process::Command::new("git")
        .args(["init", "--bare", "-q", "-b", "main"])
        .arg(&git_dir)
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(seed
        .git(&["push", "-q", git_dir.to_str().unwrap(), "main"])
        .status
        .success());
    let left_rev = String::from_utf8(seed.git(&["rev-parse", "HEAD"]).stdout).unwrap();
    let (left, _) = w.push_image(&w.admin, "apps/vic", "v1").await;

    // mallory takes the name.
    w.create_app(&mallory, "vic").await;
    let new_id = w.running.c.store.app_id("vic").await.unwrap().unwrap();
    assert_ne!(new_id, old_id);
    for (method, path) in [
        ("GET", "/v2/apps/vic/tags/list".to_string()),
        ("GET", format!("/v2/apps/vic/manifests/{digest}")),
        ("GET", format!("/v2/apps/vic/manifests/{left}")),
        ("GET", "/v2/apps/vic/manifests/v1".to_string()),
        ("DELETE", format!("/v2/apps/vic/manifests/{digest}")),
    ] {
        let (s, body) = w.registry(method, &path, &mallory).await;
        assert_eq!(s, 404, "{method} {path}: {body}");
    }
    let layer = {
        let m = w.running.c.registry.root().join("blobs/sha256");
        assert!(m.is_dir());
        let (bytes, _, _) = {
            // The old layer is still on disk (gc removes it later) but not through vic.
            let reg = &w.running.c.registry;
            let path = reg.blob_path(&digest).unwrap();
            (std::fs::read(path).unwrap(), (), ())
        };
        let v: Value = serde_json::from_slice(&bytes).unwrap();
        v["layers"][0]["digest"].as_str().unwrap().to_string()
    };
    let (s, _) = w
        .registry("GET", &format!("/v2/apps/vic/blobs/{layer}"), &mallory)
        .await;
    assert_eq!(s, 404, "the old layer is not served through the new vic");
    assert_empty(&w, &mallory, "vic").await;
    let refs = advertised(&w, &mallory, "vic").await;
    assert!(!refs.contains(&old_rev), "the old history is not offered");
    assert!(!refs.contains(left_rev.trim()), "nor what was left behind");

    // The old job is never routed or listed as the new vic's, and it is stopped.
    let start = w.running.c.scheduler.snapshot().pass;
    w.wait_until("three scheduler passes", || {
        let snap = w.running.c.scheduler.snapshot();
        let routed = snap.routed.get("vic").cloned().unwrap_or_default();
        assert!(!routed.contains(&old_job), "{routed:?}");
        assert!(snap.jobs.iter().all(|j| j.app != "vic"));
        snap.pass >= start + 3
    })
    .await;
    let (s, _) = w.running.request_app("vic").await;
    assert_eq!(s, 503, "the new vic has no web process yet");
    w.wait_until("the old job is stopped", || {
        !w.agent.up_jobs().contains(&old_job)
    })
    .await;

    // Her first push builds with an empty cache of her own.
    w.push_site(&mallory, "vic", "<h1>mallory's</h1>").await;
    assert_eq!(
        build_volumes(&w, "vic").last().unwrap(),
        &format!("cache-{new_id}")
    );
    let (s, v) = w.call("GET", "/v1/apps/vic/releases", &mallory, None).await;
    assert_eq!(s, 200);
    assert_eq!(v.as_array().unwrap().len(), 1, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ac14_a_renamed_app_keeps_everything_and_its_old_name_is_empty() {
    let w = World::start().await;
    let victor = w.member("victor").await;
    let mallory = w.member("mallory").await;
    w.create_app(&victor, "vic").await;
    let dir = Arc::new(AppDir::new());
    w.push_from(&dir, &victor, "vic", "<h1>one</h1>").await;
    w.push_from(&dir, &victor, "vic", "<h1>two</h1>").await;
    w.wait_serving("vic", "hello from vic-v2-").await;
    let id = w.running.c.store.app_id("vic").await.unwrap().unwrap();
    let (s, _) = w
        .call(
            "POST",
            "/v1/apps/vic/domains",
            &victor,
            Some(json!({"hostname": "www.vic.test"})),
        )
        .await;
    assert_eq!(s, 201);
    let cert = rcgen::generate_simple_self_signed(vec![
        "vic.localhost".to_string(),
        "www.vic.test".to_string(),
    ])
    .unwrap();
    let (s, v) = w
        .call(
            "POST",
            "/v1/apps/vic/certs",
            &victor,
            Some(json!({"certificate": cert.cert.pem(), "key": cert.signing_key.serialize_pem()})),
        )
        .await;
    assert_eq!(s, 201, "{v}");

    let (s, v) = w
        .call(
            "PATCH",
            "/v1/apps/vic",
            &victor,
            Some(json!({"name": "vic2"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["name"], "vic2");
    assert_eq!(w.running.c.store.app_id("vic2").await.unwrap(), Some(id));

    // The releases name the moved repository, which a node can pull.
    for r in w.running.c.store.list_releases("vic2").await.unwrap() {
        assert!(r.image.starts_with("apps/vic2@"), "{}", r.image);
        let digest = r.image.split_once('@').unwrap().1;
        assert!(pullable(&w, "apps/vic2", digest).await, "{}", r.image);
    }
    let (s, tags) = w.registry("GET", "/v2/apps/vic2/tags/list", &victor).await;
    assert_eq!(s, 200);
    assert!(tags.contains("v1") && tags.contains("v2"), "{tags}");

    // Its running jobs are replaced under the new name, from the moved repository.
    w.wait_serving("vic2", "hello from vic2-v2-").await;
    let (_, repo, reference) = newest_web_image(&w, "vic2");
    assert_eq!(repo, "apps/vic2");
    assert!(pullable(&w, &repo, &reference).await);

    // It rolls back and restarts.
    let (s, v) = w
        .call(
            "POST",
            "/v1/apps/vic2/releases",
            &victor,
            Some(json!({"rollback": 1})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    w.wait_serving("vic2", "hello from vic2-v3-").await;
    let (v3_job, repo, reference) = newest_web_image(&w, "vic2");
    assert_eq!(repo, "apps/vic2");
    assert!(pullable(&w, &repo, &reference).await);
    let (s, v) = w.call("POST", "/v1/apps/vic2/restart", &victor, None).await;
    assert_eq!(s, 202, "{v}");
    w.wait_until("a restarted job", || {
        let (job, _, _) = newest_web_image(&w, "vic2");
        job != v3_job && w.agent.up_jobs().contains(&job)
    })
    .await;

    // It keeps its domain, certificate and build cache, and still takes pushes.
    let (s, v) = w.call("GET", "/v1/apps/vic2/domains", &victor, None).await;
    assert_eq!((s, v[0]["hostname"].clone()), (200, json!("www.vic.test")));
    let (s, v) = w.call("GET", "/v1/apps/vic2/certs", &victor, None).await;
    assert_eq!((s, v.as_array().unwrap().len()), (200, 1));
    w.push_from(&dir, &victor, "vic2", "<h1>four</h1>").await;
    assert!(build_volumes(&w, "vic2")
        .iter()
        .all(|v| v == &format!("cache-{id}")));

    // The old name holds nothing: mallory's new vic starts empty.
    w.create_app(&mallory, "vic").await;
    for path in ["/v2/apps/vic/tags/list", "/v2/apps/vic/manifests/v1"] {
        let (s, body) = w.registry("GET", path, &mallory).await;
        assert_eq!(s, 404, "{path}: {body}");
    }
    assert_empty(&w, &mallory, "vic").await;
    assert_eq!(
        advertised(&w, &mallory, "vic")
            .await
            .matches("refs/")
            .count(),
        0
    );
    // vic2's certificate names vic.localhost, which is mallory's host now: never
    // presented for it.
    w.wait_until("the new vic is routed", || {
        w.running
            .c
            .routes
            .lookup("vic.localhost")
            .is_some_and(|r| r.app == "vic")
    })
    .await;
    assert!(w
        .running
        .c
        .routes
        .certs()
        .pick(Some("vic.localhost"))
        .is_none());
    assert!(w
        .running
        .c
        .routes
        .certs()
        .pick(Some("www.vic.test"))
        .is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ac14_a_job_of_a_destroyed_app_is_never_adopted_by_a_new_one() {
    let w = World::start().await;
    let victor = w.member("victor").await;
    let mallory = w.member("mallory").await;
    // mallory's vic, deployed (v1), and a job some node still runs for the vic that had
    // the name before (labels of an app job, no row in the store).
    w.create_app(&mallory, "vic").await;
    w.push_site(&mallory, "vic", "<h1>mallory's</h1>").await;
    let _ = victor;
    let orphan = json!({
        "id": "vic-v1-0ld0",
        "labels": {"paas.kind": "process", "paas.app": "vic", "paas.release": "1",
                   "paas.type": "web", "paas.dyno": "web.1", "paas.app-id": "999"},
        "image": {"registry": w.running.api, "repository": "apps/vic", "reference": "latest"},
        "command": ["old-vic-server"], "env": {}, "port": 5000
    });
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/v1/jobs", w.agent.url))
        .json(&orphan)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 201);
    // Every pass until it is stopped: never one of vic's jobs, never routed.
    let orphan_id = "vic-v1-0ld0".to_string();
    w.wait_until("the orphan is stopped", || {
        let snap = w.running.c.scheduler.snapshot();
        let routed = snap.routed.get("vic").cloned().unwrap_or_default();
        assert!(!routed.contains(&orphan_id), "routed: {routed:?}");
        assert!(
            !snap
                .jobs
                .iter()
                .any(|j| j.id == orphan_id && j.app == "vic"),
            "adopted into the new vic"
        );
        !w.agent.up_jobs().contains(&orphan_id)
    })
    .await;
    // The store never filed it under vic (its rows, removed ones too, are what the logs
    // and restart counts read).
    let vics = w.running.c.store.job_restarts("vic").await.unwrap();
    assert!(!vics.contains_key(&orphan_id), "{vics:?}");
    let (s, v) = w.call("GET", "/v1/apps/vic/jobs", &mallory, None).await;
    assert_eq!(s, 200);
    assert!(!v.to_string().contains("0ld0"), "{v}");
}
