//! Volumes on a 2-host cluster made by `deploy/netns-cluster` (issue 17): a volume made on
//! host 2 pins the web type there (never host 1, the emptier one); when host 2's link is
//! cut the volume shows `down`, web is not started on host 1 without its data but listed
//! as pending with the reason, and it serves again from host 2 when the link is back.

use std::thread;
use std::time::Duration;

use paas_e2e::netns::{wait, Layout, NetnsCluster};
use paas_e2e::{require_root, AppDir};
use serde_json::{json, Value};

const START: &str = r#"mkdir -p /tmp/w /data
echo boot >> /data/boots
mp=$(awk '$2=="/data"' /proc/mounts | wc -l)
echo "boots=$(grep -c boot /data/boots) mp=$mp" > /tmp/w/index.html
exec httpd -f -p $PORT -h /tmp/w
"#;

/// `METHOD path` on the controller's API as admin: the status and JSON body (0 and null
/// when no answer came, as while a link is cut).
fn call(c: &NetnsCluster, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let m = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = c
        .client()
        .request(m, format!("{}{path}", c.api))
        .bearer_auth(&c.token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    // While a link is cut, an answer may take long: that is a failed try, not a panic.
    let Ok(resp) = req.send() else {
        return (0, Value::Null);
    };
    let status = resp.status().as_u16();
    (status, resp.json().unwrap_or(Value::Null))
}

/// What `notes.localhost` answers through the router ("" for no answer).
fn body(c: &NetnsCluster) -> String {
    c.client()
        .get(format!("http://{}/", c.router))
        .header("host", "notes.localhost")
        .send()
        .and_then(|r| r.text())
        .unwrap_or_default()
}

#[test]
fn a_volume_pins_its_type_and_a_lost_node_leaves_it_pending() {
    if !require_root() {
        return;
    }
    let c = NetnsCluster::up(Layout {
        // Not the tags and nets of cluster.rs and cluster_node_loss.rs.
        tag: 'v',
        name: "volumes",
        octet: 242,
        cluster_cidr: Some("10.217.0.0/16"),
        hosts: 2,
    });
    let app = AppDir::new();
    app.write("Procfile", "web: sh /app/start.sh\n");
    app.write("start.sh", START);
    app.commit("v1");
    let url = format!(
        "http://x:{}@{}/git/notes.git",
        c.token,
        c.api.trim_start_matches("http://")
    );
    let push = app.push(&url, "main");
    assert!(push.ok, "push failed:\n{}", push.output);
    let host2 = format!("{}h2", c.prefix);
    let (s, v) = call(
        &c,
        "POST",
        "/v1/apps/notes/volumes",
        Some(json!({"name": "data", "size": "32M", "node": host2})),
    );
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["node"], host2.as_str(), "{v}");
    let (s, v) = call(
        &c,
        "PUT",
        "/v1/apps/notes/volumes/data/mount",
        Some(json!({"type": "web", "path": "/data"})),
    );
    assert_eq!(s, 200, "{v}");
    wait("web on host 2 only", Duration::from_secs(90), || {
        (c.up_jobs_per_host("notes") == [0, 1]).then_some(())
    });
    wait("served from the volume", Duration::from_secs(60), || {
        body(&c).contains("mp=1").then_some(())
    });
    let (s, v) = call(
        &c,
        "PATCH",
        "/v1/apps/notes/formation",
        Some(json!({"web": {"quantity": 2}})),
    );
    assert_eq!(s, 409, "{v}");

    c.script(&["link", "down", "2"]);
    wait("the volume's node down", Duration::from_secs(60), || {
        let (_, v) = call(&c, "GET", "/v1/apps/notes/volumes/data", None);
        (v["node_state"] == "down" && v["used_bytes"].is_null()).then_some(())
    });
    let pending = wait("web pending with a reason", Duration::from_secs(30), || {
        let (_, jobs) = call(&c, "GET", "/v1/apps/notes/jobs", None);
        jobs.as_array()?
            .iter()
            .find(|j| j["state"] == "pending" && j["type"] == "web")
            .cloned()
    });
    assert!(
        pending["reason"]
            .as_str()
            .is_some_and(|r| r.contains("waiting for node") && r.contains("data")),
        "{pending}"
    );
    // Not started on host 1 without its data, for a good while.
    for _ in 0..20 {
        assert_eq!(
            c.up_jobs_per_host("notes")[0],
            0,
            "web ran on host 1 without its volume"
        );
        thread::sleep(Duration::from_millis(500));
    }

    c.script(&["link", "up", "2"]);
    wait("the volume's node up", Duration::from_secs(60), || {
        let (_, v) = call(&c, "GET", "/v1/apps/notes/volumes/data", None);
        (v["node_state"] == "up").then_some(())
    });
    wait(
        "web serving from host 2 again",
        Duration::from_secs(90),
        || (c.up_jobs_per_host("notes") == [0, 1] && body(&c).contains("mp=1")).then_some(()),
    );
}
