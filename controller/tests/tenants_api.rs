//! Authorization by resource, played as a hostile member over real HTTP against a real
//! controller (with the fake agent of `support`): every reference mallory passes (an image
//! or repository, a build id, a job id, a one-off job id, a certificate id, a domain, a
//! buildpack path, a node) is checked against what she may use, not only the app in the
//! URL. Each attack gets a clear error and changes nothing.

mod support;
mod tenants_support;

use serde_json::json;
use tenants_support::{message, World};

/// victor's app `vic` (pushed: a build, a release, a running web job) and mallory's `mal`.
async fn two_tenants() -> (World, String, String) {
    let w = World::start().await;
    let victor = w.member("victor").await;
    let mallory = w.member("mallory").await;
    w.create_app(&victor, "vic").await;
    w.push_site(&victor, "vic", "<h1>vic's secret code</h1>")
        .await;
    w.create_app(&mallory, "mal").await;
    (w, victor, mallory)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ac14_a_member_cannot_deploy_another_apps_image() {
    let (w, victor, mallory) = two_tenants().await;
    let vic_image = w
        .running
        .c
        .store
        .get_release("vic", 1)
        .await
        .unwrap()
        .unwrap()
        .image;
    let digest = vic_image.split_once('@').unwrap().1.to_string();
    // The image with a Cmd victor pushed himself, which a deploy would run.
    let (pushed, _) = w.push_image(&victor, "apps/vic", "web").await;
    let host = w.running.host();

    for image in [
        "apps/vic:v1".to_string(),
        format!("apps/vic@{digest}"),
        "apps/vic:web".to_string(),
        format!("apps/vic@{pushed}"),
        format!("{host}/apps/vic:web"),
        "apps/nosuch:v1".to_string(),
    ] {
        let (s, v) = w
            .call(
                "POST",
                "/v1/apps/mal/releases",
                &mallory,
                Some(json!({ "image": image })),
            )
            .await;
        assert_eq!(s, 404, "{image}: {v}");
        let m = message(&v);
        assert!(m.contains("no image") && m.contains("may not pull"), "{m}");
        assert!(m.contains("apps/mal:TAG"), "says what to do: {m}");
    }
    // Nothing was made: no release, nothing in mal's repository.
    let (s, v) = w.call("GET", "/v1/apps/mal/releases", &mallory, None).await;
    assert_eq!((s, v), (200, json!([])));
    let (s, _) = w.registry("GET", "/v2/apps/mal/tags/list", &mallory).await;
    assert_eq!(s, 404);
    // The registry says the same with its own words.
    let (s, _) = w
        .registry("GET", &format!("/v2/apps/vic/manifests/{pushed}"), &mallory)
        .await;
    assert_eq!(s, 403);

    // Stacks are everyone's to read: that image is found (and refused for having no Cmd).
    let (s, v) = w
        .call(
            "POST",
            "/v1/apps/mal/releases",
            &mallory,
            Some(json!({"image": "stacks/tiny:latest"})),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    assert!(message(&v).contains("no Entrypoint or Cmd"), "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ac14_an_image_from_another_of_my_apps_is_copied_into_the_target() {
    let (w, victor, _) = two_tenants().await;
    w.create_app(&victor, "vic-b").await;
    let (pushed, layer) = w.push_image(&victor, "apps/vic", "web").await;
    let (s, v) = w
        .call(
            "POST",
            "/v1/apps/vic-b/releases",
            &victor,
            Some(json!({"image": "apps/vic:web"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["status"], "succeeded", "{v}");
    assert_eq!(v["image"], format!("apps/vic-b@{pushed}"), "{v}");
    let (s, tags) = w.registry("GET", "/v2/apps/vic-b/tags/list", &victor).await;
    assert_eq!(s, 200);
    assert!(tags.contains("\"v1\""), "{tags}");

    // The source app goes: vic-b's release does not depend on it.
    let (s, v) = w
        .call("DELETE", "/v1/apps/vic?confirm=vic", &victor, None)
        .await;
    assert_eq!(s, 204, "{v}");
    let node = w.running.c.tokens.node().to_string();
    let (s, _) = w
        .registry("GET", &format!("/v2/apps/vic-b/manifests/{pushed}"), &node)
        .await;
    assert_eq!(s, 200, "the agent can still pull vic-b's image");
    let (s, _) = w
        .registry("GET", &format!("/v2/apps/vic-b/blobs/{layer}"), &node)
        .await;
    assert_eq!(s, 200);
    let (s, _) = w
        .registry("GET", &format!("/v2/apps/vic/manifests/{pushed}"), &node)
        .await;
    assert_eq!(s, 404, "vic's repository went with vic");
    let (s, v) = w
        .call("POST", "/v1/apps/vic-b/restart", &victor, None)
        .await;
    assert_eq!(s, 202, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ac14_ids_of_another_app_are_not_found_under_mine() {
    let (w, victor, mallory) = two_tenants().await;
    let build = w.running.c.store.list_builds("vic").await.unwrap()[0]
        .id
        .clone();
    let job = w
        .running
        .c
        .store
        .active_jobs()
        .await
        .unwrap()
        .into_iter()
        .find(|j| j.app == "vic")
        .unwrap()
        .id;
    let (s, v) = w
        .call(
            "POST",
            "/v1/apps/vic/domains",
            &victor,
            Some(json!({"hostname": "www.vic.test"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let (cert, key) = make(&["vic.localhost"]);
    let (s, v) = w
        .call(
            "POST",
            "/v1/apps/vic/certs",
            &victor,
            Some(json!({"certificate": cert, "key": key})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let cert_id = v["id"].as_str().unwrap().to_string();
    let (s, v) = w
        .call(
            "POST",
            "/v1/apps/vic/run",
            &victor,
            Some(json!({"command": "sleep 60"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let run = v["id"].as_str().unwrap().to_string();

    // vic's ids under mal's URL: 404, as for ids that do not exist.
    for (method, path) in [
        ("GET", format!("/v1/apps/mal/builds/{build}")),
        ("GET", format!("/v1/apps/mal/builds/{build}/log")),
        ("POST", format!("/v1/apps/mal/jobs/{job}/restart")),
        ("POST", format!("/v1/apps/mal/jobs/{job}/stop")),
        ("GET", format!("/v1/apps/mal/run/{run}/output")),
        ("DELETE", format!("/v1/apps/mal/run/{run}")),
        ("DELETE", format!("/v1/apps/mal/certs/{cert_id}")),
        ("DELETE", "/v1/apps/mal/domains/www.vic.test".to_string()),
        ("GET", "/v1/apps/mal/releases/1".to_string()),
    ] {
        let (s, v) = w.call(method, &path, &mallory, None).await;
        assert_eq!(s, 404, "{method} {path}: {v}");
    }
    // exec into vic's job through mal: refused before any upgrade.
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .unwrap()
        .post(format!("{}/v1/apps/mal/jobs/{job}/exec", w.running.api))
        .bearer_auth(&mallory)
        .header("connection", "Upgrade")
        .header("upgrade", paas_api::exec::UPGRADE)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 404);
    // A rollback names releases of the app in the URL only.
    let (s, v) = w
        .call(
            "POST",
            "/v1/apps/mal/releases",
            &mallory,
            Some(json!({"rollback": 1})),
        )
        .await;
    assert_eq!(s, 409, "{v}");
    // vic's own URL: 404 to mallory too.
    for (method, path) in [
        ("GET", "/v1/apps/vic/releases".to_string()),
        ("GET", format!("/v1/apps/vic/builds/{build}/log")),
        ("POST", format!("/v1/apps/vic/jobs/{job}/stop")),
    ] {
        let (s, v) = w.call(method, &path, &mallory, None).await;
        assert_eq!(s, 404, "{method} {path}: {v}");
    }

    // A host name that is taken: 409, without saying whose.
    let (s, v) = w
        .call(
            "POST",
            "/v1/apps/mal/domains",
            &mallory,
            Some(json!({"hostname": "www.vic.test"})),
        )
        .await;
    assert_eq!(s, 409, "{v}");
    assert!(message(&v).contains("another app"), "{v}");
    assert!(
        !message(&v).contains("of vic"),
        "the owner is not named: {v}"
    );

    // Nodes are admins' business.
    let (s, _) = w.call("GET", "/v1/nodes/fake/jobs", &mallory, None).await;
    assert_eq!(s, 403);

    // Everything of vic is still there and running.
    let (s, v) = w.call("GET", "/v1/apps/vic/certs", &victor, None).await;
    assert_eq!(s, 200);
    assert_eq!(v[0]["id"], cert_id.as_str());
    let (s, v) = w.call("GET", "/v1/apps/vic/domains", &victor, None).await;
    assert_eq!((s, v[0]["hostname"].clone()), (200, json!("www.vic.test")));
    assert!(
        w.agent.up_jobs().contains(&job),
        "vic's job was not touched"
    );
    let (s, _) = w
        .call("DELETE", &format!("/v1/apps/vic/run/{run}"), &victor, None)
        .await;
    assert_eq!(s, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ac14_a_member_may_not_build_from_the_controllers_disk() {
    let (w, _, mallory) = two_tenants().await;
    for bp in ["/etc", "file:///etc"] {
        let (s, v) = w
            .call(
                "PUT",
                "/v1/apps/mal/buildpack",
                &mallory,
                Some(json!({ "buildpack": bp })),
            )
            .await;
        assert_eq!(s, 403, "{bp}: {v}");
        let m = message(&v);
        assert!(m.contains("only admins"), "{m}");
        assert!(
            m.contains("git URL") && m.contains("static"),
            "says what to use: {m}"
        );
    }
    // The list route too, also hidden behind a built-in entry.
    for list in [json!(["/etc"]), json!(["nodejs", "file:///etc#main"])] {
        let (s, v) = w
            .call(
                "PUT",
                "/v1/apps/mal/buildpacks",
                &mallory,
                Some(json!({ "buildpacks": list })),
            )
            .await;
        assert_eq!(s, 403, "{list}: {v}");
        assert!(message(&v).contains("only admins"), "{v}");
    }
    let (s, v) = w
        .call("GET", "/v1/apps/mal/buildpack", &mallory, None)
        .await;
    assert_eq!((s, v["buildpack"].clone()), (200, json!(null)));
    let (s, v) = w
        .call("GET", "/v1/apps/mal/buildpacks", &mallory, None)
        .await;
    assert_eq!((s, v["buildpacks"].clone()), (200, json!([])));
}

fn make(names: &[&str]) -> (String, String) {
    let c =
        rcgen::generate_simple_self_signed(names.iter().map(|s| s.to_string()).collect::<Vec<_>>())
            .unwrap();
    (c.cert.pem(), c.signing_key.serialize_pem())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ac14_certificates_name_only_the_apps_own_hosts() {
    let (w, victor, mallory) = two_tenants().await;
    let (s, _) = w
        .call(
            "POST",
            "/v1/apps/mal/domains",
            &mallory,
            Some(json!({"hostname": "www.mal.test"})),
        )
        .await;
    assert_eq!(s, 201);
    let upload = |token: String, names: &'static [&'static str]| {
        let w = &w;
        async move {
            let (cert, key) = make(names);
            w.call(
                "POST",
                "/v1/apps/mal/certs",
                &token,
                Some(json!({"certificate": cert, "key": key})),
            )
            .await
        }
    };

    // Another app's host and a wildcard over every app: 422 naming them.
    let (s, v) = upload(
        mallory.clone(),
        &["mal.localhost", "vic.localhost", "*.localhost"],
    )
    .await;
    assert_eq!(s, 422, "{v}");
    let m = message(&v);
    assert!(m.contains("vic.localhost, *.localhost"), "{m}");
    assert!(
        m.contains("mal.localhost, www.mal.test"),
        "lists mal's hosts: {m}"
    );
    // A wildcard over mal's own domain: still admins only.
    let (s, v) = upload(mallory.clone(), &["www.mal.test", "*.mal.test"]).await;
    assert_eq!(s, 422, "{v}");
    assert!(message(&v).contains("only admins"), "{v}");
    let (s, v) = w.call("GET", "/v1/apps/mal/certs", &mallory, None).await;
    assert_eq!((s, v), (200, json!([])), "nothing was stored");

    // Only mal's own names: fine. An admin may add a wildcard.
    let (s, v) = upload(mallory.clone(), &["mal.localhost", "www.mal.test"]).await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = upload(w.admin.clone(), &["www.mal.test", "*.mal.test"]).await;
    assert_eq!(s, 201, "{v}");
    let (s, v) = upload(w.admin.clone(), &["www.mal.test", "vic.localhost"]).await;
    assert_eq!(s, 422, "not even an admin names another app's host: {v}");

    // The router never presents mal's certificate for another app's host, even one stored
    // before this rule (or kept across a rename) that names it.
    let (legacy, legacy_key) = make(&["mal.localhost", "vic.localhost", "*.localhost"]);
    w.running
        .c
        .store
        .add_cert(&paas_controller::store::CertRow {
            id: "legacy".into(),
            app: "mal".into(),
            names: vec![
                "mal.localhost".into(),
                "vic.localhost".into(),
                "*.localhost".into(),
            ],
            cert_pem: legacy.clone(),
            key_pem: legacy_key,
            not_after: "2999-01-01T00:00:00Z".into(),
            subject: String::new(),
            issuer: String::new(),
            created_at: "2000-01-01T00:00:00Z".into(),
        })
        .await
        .unwrap();
    paas_controller::routing::load_certs(&w.running.c.store, &w.running.c.routes)
        .await
        .unwrap();
    let (vic_cert, vic_key) = make(&["vic.localhost"]);
    let (s, v) = w
        .call(
            "POST",
            "/v1/apps/vic/certs",
            &victor,
            Some(json!({"certificate": vic_cert, "key": vic_key})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let der = |pem: &str| {
        use rustls_pki_types::pem::PemObject;
        rustls_pki_types::CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    };
    let certs = w.running.c.routes.certs();
    w.wait_until("the route table names vic's and mal's hosts", || {
        w.running.c.routes.lookup("vic.localhost").is_some()
            && w.running.c.routes.lookup("mal.localhost").is_some()
    })
    .await;
    assert_eq!(
        certs.pick(Some("vic.localhost")).unwrap().cert[0],
        der(&vic_cert)
    );
    // An app without a certificate of its own and a host no app serves: no app's
    // certificate at all (the harness sets no default).
    w.create_app(&victor, "plain").await;
    w.wait_until("plain is routed", || {
        w.running.c.routes.lookup("plain.localhost").is_some()
    })
    .await;
    for host in ["plain.localhost", "nobody.localhost"] {
        assert!(certs.pick(Some(host)).is_none(), "{host}");
    }
    assert!(certs.pick(Some("mal.localhost")).is_some());
}
