//! Root tests of the network walls between tenants, played as attacks by real busybox
//! containers of a real `paas-agent` in a test host made of network namespaces
//! (`common::testbed`): a job of tenant 1 tries tenant 2's web job by its container
//! address, by its host port on the bridge gateway and on the node's address, another
//! node's host ports and agent port, and the metadata address 169.254.169.254; a job of
//! tenant 2 (and the node itself, the router's path) must still get through where the
//! walls allow it. Also: no CAP_NET_RAW and no IPv6 in jobs, and the walls are rebuilt by a
//! restarted agent without dropping a running job's traffic.

mod common;

use std::time::Duration;

use common::need_root;
use common::testbed::{
    input_path, Testbed, GATEWAY, METADATA, PEER, PEER_AGENT_PORT, PEER_HOST_PORT, PEER_OTHER_PORT,
};
use common::TarBuilder;
use serde_json::{json, Value};

/// A job of `tenant` that tries each `(label, host, port)` with a TCP connect (2 s) and
/// prints `<label>-open` or `<label>-closed`, then `done`.
fn probe(id: &str, tenant: Option<u32>, targets: &[(&str, String, u16)]) -> Value {
    let tries: Vec<String> = targets
        .iter()
        .map(|(label, host, port)| {
            format!(
                "(if nc -w 2 {host} {port} -e true; then echo {label}-open; \
                 else echo {label}-closed; fi) &"
            )
        })
        .collect();
    json!({
        "id": id, "tenant": tenant,
        "command": ["sh", "-c", format!("{} wait; echo done", tries.join(" "))],
    })
}

/// The labels a probe's output says are open.
fn open_labels(logs: &str) -> Vec<String> {
    let mut open: Vec<String> = logs
        .lines()
        .filter_map(|l| l.strip_suffix("-open"))
        .map(str::to_string)
        .collect();
    open.sort();
    open
}

/// Tenant 2's web job `vic`: busybox httpd on port 5000 serving "vic page".
fn web_job(bed: &Testbed, id: &str, tenant: u32) -> Value {
    let www = bed.input(
        &format!("www-{id}"),
        TarBuilder::new()
            .file("index.html", format!("{id} page\n").as_bytes(), 0o644)
            .finish(),
    );
    json!({
        "id": id, "tenant": tenant, "port": 5000,
        "inputs": [{"url": www, "path": "/www", "readonly": true}],
        "command": ["httpd", "-f", "-p", "5000", "-h", "/www"],
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_reaches_other_tenants_only_through_the_router() {
    if !need_root("a_job_reaches_other_tenants_only_through_the_router") {
        return;
    }
    let mut bed = Testbed::new().await;
    bed.start_agent(&[]).await;
    let vic = bed.run(web_job(&bed, "vic", 2)).await;
    let vic_ip = vic["ip"].as_str().unwrap().to_string();
    let hp = vic["host_port"].as_u64().unwrap() as u16;
    let node = bed.node_ip.to_string();
    // The router's path from another machine: the node's address and the host port.
    bed.wait_get(&format!("http://{node}:{hp}/"), "vic page")
        .await;
    // The path of a router on the node itself: straight to the container.
    let out = bed.in_node(&["curl", "-sS", "-m", "3", &format!("http://{vic_ip}:5000/")]);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("vic page"),
        "{out:?}"
    );

    let targets = [
        ("direct", vic_ip.clone(), 5000),
        ("gateway", GATEWAY.to_string(), hp),
        ("node", node.clone(), hp),
        ("metadata", METADATA.to_string(), 80),
        ("peer-other", PEER.to_string(), PEER_OTHER_PORT),
    ];
    // The same tenant, another tenant, and a job of no app (a tenant of its own).
    for (id, tenant) in [("friend", Some(2)), ("mal", Some(1)), ("loner", None)] {
        bed.run(probe(id, tenant, &targets)).await;
    }
    let friend = bed.logs("friend", true).await;
    let mal = bed.logs("mal", true).await;
    let loner = bed.logs("loner", true).await;
    for logs in [&friend, &mal, &loner] {
        assert!(logs.contains("done"), "the probe did not finish: {logs}");
    }
    assert_eq!(
        open_labels(&friend),
        ["direct", "gateway", "node", "peer-other"],
        "tenant 2 reaches its own job every way, not the metadata address:\n{friend}"
    );
    assert_eq!(
        open_labels(&mal),
        ["peer-other"],
        "tenant 1 reaches none of tenant 2's addresses:\n{mal}"
    );
    assert_eq!(open_labels(&loner), ["peer-other"], "{loner}");

    // Other nodes: once the controller names them, their host ports and agent port are
    // closed to jobs, not other ports, and not to the node itself.
    bed.registry.state.lock().unwrap().peer_nodes = Some(format!("{PEER}:{PEER_AGENT_PORT}"));
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while !bed
        .nft(&["set", "ip", &bed.prefix, "peer_nodes"])
        .contains(&PEER.to_string())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the agent did not take the peer nodes from the heartbeat answer:\n{}",
            bed.agent_log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let peers = [
        ("peer-host-port", PEER.to_string(), PEER_HOST_PORT),
        ("peer-agent", PEER.to_string(), PEER_AGENT_PORT),
        ("peer-other", PEER.to_string(), PEER_OTHER_PORT),
    ];
    bed.run(probe("friend2", Some(2), &peers)).await;
    bed.run(probe("mal2", Some(1), &peers)).await;
    for id in ["friend2", "mal2"] {
        let logs = bed.logs(id, true).await;
        assert!(logs.contains("done"), "{logs}");
        assert_eq!(open_labels(&logs), ["peer-other"], "{id}:\n{logs}");
    }
    for port in [PEER_HOST_PORT, PEER_AGENT_PORT] {
        let out = bed.in_node(&["curl", "-sS", "-m", "3", &format!("http://{PEER}:{port}/")]);
        assert!(
            String::from_utf8_lossy(&out.stdout).contains("peer page"),
            "the node itself still reaches the peer's port {port}: {out:?}"
        );
    }
    // Still served through the router's path.
    bed.wait_get(&format!("http://{node}:{hp}/"), "vic page")
        .await;

    // Deleting the jobs leaves no element of theirs in the tables.
    for id in ["vic", "friend", "mal", "loner", "friend2", "mal2"] {
        bed.delete(id).await;
    }
    let tables = format!(
        "{}{}",
        bed.nft(&["table", "ip", &bed.prefix]),
        bed.nft(&["table", "bridge", &bed.prefix])
    );
    assert!(tables.contains("table bridge"), "{tables}");
    let mut set = "";
    for line in tables.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("set ").or(line.strip_prefix("map ")) {
            set = name.trim_end_matches(" {");
        }
        if line.starts_with("elements") {
            assert!(
                ["api_ports", "api_remote", "peer_nodes", "peer_agents"].contains(&set),
                "{set} still has elements:\n{tables}"
            );
        }
    }
    assert!(!tables.contains(&bed.job_veth("vic")), "{tables}");
    // And cleanup removes both tables.
    let out = bed.cleanup();
    assert!(out.status.success(), "{out:?}");
    let left = bed.nft(&["tables"]);
    assert!(!left.contains(&bed.prefix), "{left}");
}

/// Parses the `CapEff:` line of /proc/self/status.
fn cap_eff(logs: &str) -> u64 {
    let hex = logs
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .unwrap_or_else(|| panic!("no CapEff line: {logs}"))
        .trim();
    u64::from_str_radix(hex, 16).unwrap()
}

const CAP_NET_BIND_SERVICE: u64 = 1 << 10;
const CAP_NET_RAW: u64 = 1 << 13;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_have_no_raw_sockets_nor_ipv6_and_walls_survive_a_restart() {
    if !need_root("jobs_have_no_raw_sockets_nor_ipv6_and_walls_survive_a_restart") {
        return;
    }
    let mut bed = Testbed::new().await;
    bed.start_agent(&[]).await;
    let inspect = |id: &str| {
        json!({"id": id, "tenant": 3, "command": ["sh", "-c", format!(
            "/bin/busybox grep CapEff /proc/self/status; \
             echo ipv6=$(cat /proc/sys/net/ipv6/conf/all/disable_ipv6); \
             echo inet6=$(cat /proc/net/if_inet6 | /bin/busybox wc -l); \
             if /bin/busybox ping -c 1 -W 2 {GATEWAY}; then echo ping-ok; \
             else echo ping-failed; fi; echo done")]})
    };
    bed.run(inspect("inspect")).await;
    let logs = bed.logs("inspect", true).await;
    let caps = cap_eff(&logs);
    assert_eq!(caps & CAP_NET_RAW, 0, "CAP_NET_RAW is not given:\n{logs}");
    assert_ne!(
        caps & CAP_NET_BIND_SERVICE,
        0,
        "other defaults stay:\n{logs}"
    );
    assert!(logs.contains("ping-failed"), "{logs}");
    assert!(logs.contains("ipv6=1"), "IPv6 is off in the job:\n{logs}");
    assert!(logs.contains("inet6=0"), "no IPv6 address at all:\n{logs}");

    // A same-tenant client keeps talking to a web job while the agent restarts.
    let vic = bed.run(web_job(&bed, "vic", 2)).await;
    let vic_ip = vic["ip"].as_str().unwrap().to_string();
    let ctl = bed.input("ctl", TarBuilder::new().finish());
    bed.run(json!({
        "id": "friend", "tenant": 2,
        "inputs": [{"url": ctl, "path": "/ctl"}],
        "command": ["sh", "-c", format!(
            "while [ ! -e /ctl/stop ]; do \
               if busybox timeout 3 wget -q -O /dev/null http://{vic_ip}:5000/; then echo ok; \
               else echo fail; fi; sleep 0.1; done; echo done")],
    }))
    .await;
    bed.wait_lines("friend", "ok", 3).await;
    bed.stop_agent();
    bed.start_agent(&["--job-ipv6"]).await;
    let before = bed
        .logs("friend", false)
        .await
        .lines()
        .filter(|l| *l == "ok")
        .count();
    bed.wait_lines("friend", "ok", before + 5).await;
    std::fs::write(input_path(&bed.state_dir(), "friend", 0, "stop"), "").unwrap();
    let friend = bed.logs("friend", true).await;
    assert!(friend.ends_with("done\n"), "{friend}");
    assert!(
        !friend.contains("fail"),
        "the restart dropped same-tenant traffic:\n{friend}"
    );

    // The rebuilt walls still hold, and new jobs get IPv6 with --job-ipv6.
    bed.run(probe(
        "mal",
        Some(1),
        &[
            ("direct", vic_ip.clone(), 5000),
            ("metadata", METADATA.to_string(), 80),
        ],
    ))
    .await;
    let mal = bed.logs("mal", true).await;
    assert!(mal.contains("done"), "{mal}");
    assert!(open_labels(&mal).is_empty(), "{mal}");
    bed.run(inspect("inspect6")).await;
    let logs = bed.logs("inspect6", true).await;
    assert!(
        logs.contains("ipv6=0"),
        "--job-ipv6 leaves IPv6 on:\n{logs}"
    );
    assert_eq!(cap_eff(&logs) & CAP_NET_RAW, 0, "{logs}");
}

/// Runs `paas-agent cleanup` on drop.
struct CleanupGuard {
    dir: std::path::PathBuf,
    prefix: String,
}

impl Drop for CleanupGuard {
    fn drop(&mut self) {
        common::cleanup(&self.dir, &self.prefix);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_of_older_agents_get_walls_with_their_real_mac() {
    if !need_root("leases_of_older_agents_get_walls_with_their_real_mac") {
        return;
    }
    use paas_node_agent::network::{JobNames, NetworkManager};
    let names = common::unique_names();
    let dir = tempfile::tempdir().unwrap();
    let _guard = CleanupGuard {
        dir: dir.path().to_path_buf(),
        prefix: names.prefix.clone(),
    };
    let open = || {
        NetworkManager::open(
            dir.path(),
            &names.prefix,
            names.subnet,
            names.ports,
            std::net::Ipv4Addr::LOCALHOST,
        )
        .unwrap()
    };
    let net = open();
    net.ensure_node().await.unwrap();
    let job = net
        .setup_job("old-1", Some(5000), Some(4), &[])
        .await
        .unwrap();
    let lease = net.lease("old-1").unwrap();
    assert_eq!(lease.tenant, Some(4));
    let mac = lease.mac.clone().unwrap();
    let set = |set: &str| {
        let kind = if set == "port_tenants" { "map" } else { "set" };
        common::testbed::sh("nft", &["list", kind, "bridge", &names.prefix, set])
    };
    assert!(set("job_ports").contains(&mac), "{}", set("job_ports"));
    drop(net);

    // What an agent older than the walls left: a lease without tenant or MAC, and a job
    // whose MAC the kernel chose.
    let path = dir.path().join("network.json");
    let mut book: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let entry = book["leases"]["old-1"].as_object_mut().unwrap();
    entry.remove("mac");
    entry.remove("tenant");
    std::fs::write(&path, serde_json::to_vec(&book).unwrap()).unwrap();
    let ns = JobNames::new(&names.prefix, "old-1").netns;
    let kernels = "02:99:00:11:22:33";
    common::testbed::sh(
        "ip",
        &["-n", &ns, "link", "set", "eth0", "address", kernels],
    );

    let net = open();
    net.ensure_node().await.unwrap();
    let lease = net.lease("old-1").unwrap();
    assert_eq!(
        lease.mac.as_deref(),
        Some(kernels),
        "read from the job's netns"
    );
    assert_eq!(lease.tenant, None, "a tenant of its own");
    let ports = set("job_ports");
    assert!(
        ports.contains(kernels) && ports.contains(&job.ip.to_string()),
        "{ports}"
    );
    let marks = set("port_members");
    assert!(
        marks.contains("0x8"),
        "an own tenant's mark has bit 31: {marks}"
    );
    net.teardown_job("old-1").await.unwrap();
    for s in ["job_veths", "job_ports", "port_tenants", "port_members"] {
        assert!(!set(s).contains("elements"), "{s}: {}", set(s));
    }
}

/// An add-on's job (a tenant of its own, `guests` its attached apps): the guest's jobs
/// connect to it every way (a TCP connect needs both directions through the walls), any
/// other tenant's job reaches none of it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_addon_is_reached_by_its_guests_and_no_one_else() {
    if !need_root("an_addon_is_reached_by_its_guests_and_no_one_else") {
        return;
    }
    let mut bed = Testbed::new().await;
    bed.start_agent(&[]).await;
    let mut spec = web_job(&bed, "addon", (1 << 30) + 1);
    spec["guests"] = json!([5]);
    let addon = bed.run(spec).await;
    let ip = addon["ip"].as_str().unwrap().to_string();
    let hp = addon["host_port"].as_u64().unwrap() as u16;
    let node = bed.node_ip.to_string();
    let targets = [
        ("direct", ip.clone(), 5000),
        ("gateway", GATEWAY.to_string(), hp),
        ("node", node.clone(), hp),
    ];
    for (id, tenant) in [("guest", Some(5)), ("stranger", Some(6)), ("loner", None)] {
        bed.run(probe(id, tenant, &targets)).await;
    }
    let guest = bed.logs("guest", true).await;
    let stranger = bed.logs("stranger", true).await;
    let loner = bed.logs("loner", true).await;
    for logs in [&guest, &stranger, &loner] {
        assert!(logs.contains("done"), "the probe did not finish: {logs}");
    }
    assert_eq!(
        open_labels(&guest),
        ["direct", "gateway", "node"],
        "the attached app reaches its add-on:\n{guest}"
    );
    assert!(open_labels(&stranger).is_empty(), "{stranger}");
    assert!(open_labels(&loner).is_empty(), "{loner}");
}
