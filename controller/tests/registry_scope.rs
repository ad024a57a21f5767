//! Blobs scoped per repository over the real routes and access checks: a collaborator of
//! app A cannot read app B's layers by digest (not through `apps/a`, not by mounting them,
//! not by pushing a manifest that names them), stack layers stay readable by every user and
//! node, and nodes read app layers through the app's repository.

mod support;

use serde_json::{json, Value};
use sha2::Digest as _;
use support::Running;

struct Reg {
    base: String,
    http: reqwest::Client,
}

impl Reg {
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: &str,
        body: Vec<u8>,
        content_type: Option<&str>,
    ) -> (u16, Vec<u8>) {
        let mut req = self
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.base))
            .bearer_auth(token)
            .body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.bytes().await.unwrap().to_vec())
    }

    async fn push_blob(&self, repo: &str, token: &str, bytes: &[u8]) -> String {
        let d = format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)));
        let (status, body) = self
            .call(
                "POST",
                &format!("/v2/{repo}/blobs/uploads/?digest={d}"),
                token,
                bytes.to_vec(),
                None,
            )
            .await;
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&body));
        d
    }
}

fn manifest(config: &str, config_len: usize, layer: &str, layer_len: usize) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                   "digest": config, "size": config_len},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer, "size": layer_len}],
    }))
    .unwrap()
}

#[tokio::test]
async fn ac4_a_collaborator_cannot_read_another_apps_layers_by_digest() {
    let running = Running::start(true).await;
    let s = &running.c.store;
    for app in ["ac4a", "ac4b"] {
        s.create_app(app).await.unwrap();
    }
    s.create_user("ac4ann", paas_controller::store::role::MEMBER, None)
        .await
        .unwrap();
    s.add_collaborator("ac4a", "ac4ann").await.unwrap();
    let (_, ann) = s.create_token("ac4ann", "t", None).await.unwrap();
    let admin = running.c.tokens.admin().to_string();
    let node = running.c.tokens.node().to_string();
    let reg = Reg {
        base: running.api.clone(),
        http: reqwest::Client::builder().no_proxy().build().unwrap(),
    };

    // App B's image, pushed by an admin.
    let secret_layer = b"app b's secret layer".to_vec();
    let config =
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#;
    let layer = reg.push_blob("apps/ac4b", &admin, &secret_layer).await;
    let cfg = reg.push_blob("apps/ac4b", &admin, config).await;
    let m = manifest(&cfg, config.len(), &layer, secret_layer.len());
    let ct = Some("application/vnd.oci.image.manifest.v1+json");
    let (status, _) = reg
        .call(
            "PUT",
            "/v2/apps/ac4b/manifests/latest",
            &admin,
            m.clone(),
            ct,
        )
        .await;
    assert_eq!(status, 201);

    // Ann may use apps/ac4a but the layer is not referenced there.
    for method in ["GET", "HEAD"] {
        let (status, body) = reg
            .call(
                method,
                &format!("/v2/apps/ac4a/blobs/{layer}"),
                &ann,
                vec![],
                None,
            )
            .await;
        assert_eq!(status, 404, "{method}: {}", String::from_utf8_lossy(&body));
    }
    // Not through apps/ac4b (no access), nor by mounting it from there.
    let (status, _) = reg
        .call(
            "GET",
            &format!("/v2/apps/ac4b/blobs/{layer}"),
            &ann,
            vec![],
            None,
        )
        .await;
    assert_eq!(status, 403);
    let (status, _) = reg
        .call(
            "POST",
            &format!("/v2/apps/ac4a/blobs/uploads/?mount={layer}&from=apps/ac4b"),
            &ann,
            vec![],
            None,
        )
        .await;
    assert_eq!(status, 403);
    // A mount without `from` is an ordinary upload, and links nothing.
    let (status, _) = reg
        .call(
            "POST",
            &format!("/v2/apps/ac4a/blobs/uploads/?mount={layer}"),
            &ann,
            vec![],
            None,
        )
        .await;
    assert_eq!(status, 202);
    // Nor by pushing a manifest into apps/ac4a that names B's blobs.
    let (status, body) = reg
        .call("PUT", "/v2/apps/ac4a/manifests/stolen", &ann, m.clone(), ct)
        .await;
    assert_eq!(status, 400);
    assert!(
        String::from_utf8_lossy(&body).contains("MANIFEST_BLOB_UNKNOWN"),
        "{}",
        String::from_utf8_lossy(&body)
    );
    let (status, _) = reg
        .call(
            "GET",
            &format!("/v2/apps/ac4a/blobs/{layer}"),
            &ann,
            vec![],
            None,
        )
        .await;
    assert_eq!(status, 404);

    // Ann's own upload of the same bytes links it to her repository: then she may read it
    // (she had the bytes anyway).
    let again = reg.push_blob("apps/ac4a", &ann, &secret_layer).await;
    assert_eq!(again, layer);
    let (status, body) = reg
        .call(
            "GET",
            &format!("/v2/apps/ac4a/blobs/{layer}"),
            &ann,
            vec![],
            None,
        )
        .await;
    assert_eq!((status, body), (200, secret_layer.clone()));

    // Nodes and admins read B's layer through B's repository (the manifest names it).
    for token in [&node, &admin] {
        let (status, body) = reg
            .call(
                "GET",
                &format!("/v2/apps/ac4b/blobs/{layer}"),
                token,
                vec![],
                None,
            )
            .await;
        assert_eq!((status, body), (200, secret_layer.clone()));
    }

    // Stack layers stay readable by every user and node through stacks/….
    let (status, body) = reg
        .call(
            "GET",
            "/v2/stacks/tiny/manifests/latest",
            &ann,
            vec![],
            None,
        )
        .await;
    assert_eq!(status, 200);
    let stack: Value = serde_json::from_slice(&body).unwrap();
    let stack_layer = stack["layers"][0]["digest"].as_str().unwrap().to_string();
    for token in [&ann, &node] {
        let (status, _) = reg
            .call(
                "GET",
                &format!("/v2/stacks/tiny/blobs/{stack_layer}"),
                token,
                vec![],
                None,
            )
            .await;
        assert_eq!(status, 200);
    }
}
