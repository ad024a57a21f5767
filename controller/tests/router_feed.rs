//! `GET /internal/router/feed` against a real controller (fake agent): only node tokens
//! and admins may follow it (it carries certificate keys); a `paas-router` feed follower
//! gets the whole table at once and a new app's route pushed when it is deployed, and
//! saves it owner-only; the internal endpoint it announces makes it one of the
//! controller's routers.

mod support;
mod tenants_support;

use std::os::unix::fs::PermissionsExt as _;
use std::time::Duration;

use paas_router::RouteTable;
use tenants_support::World;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_feed_is_for_nodes_and_pushes_each_change() {
    let w = World::start().await;
    let mallory = w.member("mallory").await;
    let (status, body) = w.call("GET", "/internal/router/feed", &mallory, None).await;
    assert_eq!(status, 403, "a member may not follow the feed: {body}");
    let (status, _) = w.call("GET", "/internal/router/feed", "", None).await;
    assert_eq!(status, 401);

    let node = w.running.c.tokens.node().to_string();
    let dir = tempfile::tempdir().unwrap();
    let table = RouteTable::new();
    let follower = tokio::spawn(paas_router::process::follow(
        vec![w.running.api.clone()],
        node,
        "http://127.0.0.1:9".into(),
        table.clone(),
        dir.path().to_path_buf(),
    ));
    w.create_app(&w.admin, "fed").await;
    w.push_site(&w.admin, "fed", "<h1>fed</h1>").await;
    w.wait_until("the deployed app's route reaches the follower", || {
        table
            .lookup("fed.localhost")
            .is_some_and(|r| !r.backends.is_empty())
    })
    .await;
    // The follower announced its internal endpoint: the controller asks it for access
    // lines and drain waits.
    let peers = w.running.c.router_peers.list();
    assert!(
        peers.iter().any(|(_, url)| url == "http://127.0.0.1:9"),
        "{peers:?}"
    );
    let saved = dir.path().join(paas_router::feed::SAVED);
    let mode = std::fs::metadata(&saved).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let fed = paas_router::feed::load(dir.path()).unwrap().unwrap();
    assert!(fed.routes.iter().any(|r| r.app == "fed"), "{fed:?}");
    follower.abort();
    tokio::time::sleep(Duration::from_millis(10)).await;
}
