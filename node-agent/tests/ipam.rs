//! The address book: IPs and host ports are unique while held and survive a restart.

use std::net::Ipv4Addr;

use paas_node_agent::config::{PortRange, Subnet};
use paas_node_agent::network::ipam::{Ipam, IpamError};

fn subnet() -> Subnet {
    "10.200.7.0/29".parse().unwrap()
}

#[test]
fn ips_are_lowest_free_and_persist() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("network.json");
    let ports = PortRange {
        first: 30000,
        last: 30009,
    };
    let mut ipam = Ipam::open(&path, subnet(), ports).unwrap();
    let a = ipam.lease("a", None, None, &[]).unwrap();
    let b = ipam.lease("b", Some(5000), None, &[]).unwrap();
    assert_eq!(a.ip, Ipv4Addr::new(10, 200, 7, 2));
    assert_eq!(a.host_port, None);
    assert_eq!(b.ip, Ipv4Addr::new(10, 200, 7, 3));
    assert_eq!(b.host_port, Some(30000));
    assert_eq!(b.container_port, Some(5000));
    // Idempotent per job.
    assert_eq!(ipam.lease("b", Some(5000), None, &[]).unwrap(), b);
    drop(ipam);

    let mut ipam = Ipam::open(&path, subnet(), ports).unwrap();
    assert_eq!(ipam.get("b"), Some(&b));
    assert_eq!(ipam.release("a").unwrap().map(|l| l.ip), Some(a.ip));
    assert_eq!(
        ipam.lease("c", None, None, &[]).unwrap().ip,
        a.ip,
        "freed IP is reused"
    );
    // /29: .2 to .6 for jobs.
    ipam.lease("d", None, None, &[]).unwrap();
    ipam.lease("e", None, None, &[]).unwrap();
    ipam.lease("f", None, None, &[]).unwrap();
    let err = ipam.lease("g", None, None, &[]).unwrap_err();
    assert!(matches!(err, IpamError::SubnetFull { .. }));
    assert!(err.to_string().contains("10.200.7.0/29"), "{err}");
}

#[test]
fn host_ports_round_robin_and_are_never_shared() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("network.json");
    let big: Subnet = "10.200.8.0/24".parse().unwrap();
    let ports = PortRange {
        first: 31000,
        last: 31002,
    };
    let mut ipam = Ipam::open(&path, big, ports).unwrap();
    let p1 = ipam
        .lease("j1", Some(80), None, &[])
        .unwrap()
        .host_port
        .unwrap();
    let p2 = ipam
        .lease("j2", Some(80), None, &[])
        .unwrap()
        .host_port
        .unwrap();
    assert_eq!((p1, p2), (31000, 31001));
    ipam.release("j1").unwrap();
    // The cursor moves on: the port just released is not reused at once.
    let p3 = ipam
        .lease("j3", Some(80), None, &[])
        .unwrap()
        .host_port
        .unwrap();
    assert_eq!(p3, 31002);
    drop(ipam);
    let mut ipam = Ipam::open(&path, big, ports).unwrap();
    let p4 = ipam
        .lease("j4", Some(80), None, &[])
        .unwrap()
        .host_port
        .unwrap();
    assert_eq!(p4, 31000, "wraps around to the free one");
    let err = ipam.lease("j5", Some(80), None, &[]).unwrap_err();
    assert!(matches!(err, IpamError::PortsExhausted { .. }), "{err}");
    // Every held port is distinct.
    let mut held: Vec<u16> = ipam.leases().values().filter_map(|l| l.host_port).collect();
    held.sort();
    held.dedup();
    assert_eq!(held.len(), 3);
    // A job without a port takes no host port.
    ipam.release("j2").unwrap();
    assert_eq!(ipam.lease("j6", None, None, &[]).unwrap().host_port, None);
    assert_eq!(
        ipam.lease("j7", Some(1), None, &[]).unwrap().host_port,
        Some(31001)
    );
}

#[test]
fn leases_carry_tenant_and_mac_and_old_ones_still_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("network.json");
    let ports = PortRange {
        first: 30000,
        last: 30009,
    };
    let mut ipam = Ipam::open(&path, subnet(), ports).unwrap();
    let a = ipam.lease("a", None, Some(7), &[]).unwrap();
    assert_eq!(a.tenant, Some(7));
    assert_eq!(a.mac.as_deref(), Some("02:50:0a:c8:07:02"));
    drop(ipam);
    // An agent older than the walls wrote neither.
    std::fs::write(
        &path,
        r#"{"leases":{"old":{"ip":"10.200.7.3","api_access":true}}}"#,
    )
    .unwrap();
    let mut ipam = Ipam::open(&path, subnet(), ports).unwrap();
    let old = ipam.get("old").unwrap().clone();
    assert_eq!((old.tenant, old.mac.as_deref()), (None, None));
    assert!(old.api_access);
    ipam.set_mac("old", "02:99:00:11:22:33").unwrap();
    let ipam = Ipam::open(&path, subnet(), ports).unwrap();
    assert_eq!(
        ipam.get("old").unwrap().mac.as_deref(),
        Some("02:99:00:11:22:33")
    );
}

#[test]
fn ports_the_host_refuses_are_skipped_and_an_all_refused_range_says_why() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("network.json");
    let big: Subnet = "10.200.9.0/24".parse().unwrap();
    let ports = PortRange {
        first: 31000,
        last: 31003,
    };
    let mut ipam = Ipam::open(&path, big, ports).unwrap();
    // 31000 and 31002 are another program's (the agent's bind of them fails).
    let busy = |p: u16| p != 31000 && p != 31002;
    let port = |l: Result<_, IpamError>| -> u16 {
        let l: paas_node_agent::network::ipam::Lease = l.unwrap();
        l.host_port.unwrap()
    };
    assert_eq!(
        port(ipam.lease_where("a", Some(80), None, &[], busy)),
        31001
    );
    assert_eq!(
        port(ipam.lease_where("b", Some(80), None, &[], busy)),
        31003
    );
    let mut asked = Vec::new();
    let err = ipam
        .lease_where("c", Some(80), None, &[], |p| {
            asked.push(p);
            busy(p)
        })
        .unwrap_err();
    // Ports held by jobs are never offered to the check; the others are, once each.
    asked.sort();
    assert_eq!(asked, vec![31000, 31002]);
    let text = err.to_string();
    assert!(
        text.contains("31000-31003")
            && text.contains("2 held by jobs")
            && text.contains("other programs"),
        "{text}"
    );
    assert_eq!(ipam.get("c"), None, "a failed lease leaves nothing");
    // A job already holding its lease keeps it whatever the check says.
    assert_eq!(
        port(ipam.lease_where("a", Some(80), None, &[], |_| false)),
        31001
    );
}
