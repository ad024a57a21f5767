//! Root test: a job cannot speak as another address on the bridge. Jobs have no
//! CAP_NET_RAW (see walls.rs), so this test plays the job that got one: it writes crafted
//! Ethernet frames on the job's own eth0 from a packet socket made inside the job's
//! network namespace, and watches what arrives:
//!
//! * IPv4 with another job's source address (of the victim's own tenant, so the tenant
//!   walls would let it pass), sent through the gateway (routed) and straight to the
//!   victim (bridged): the victim's UDP socket never gets it, while the real other job's
//!   datagram arrives;
//! * gratuitous ARP claiming the victim's address: the node's neighbour entry for the
//!   victim keeps the victim's MAC;
//! * a frame with the victim's MAC as source: the bridge keeps the victim's MAC on the
//!   victim's port (no forwarding-table poisoning);
//!
//! and the router's path to the victim keeps working after all of it.

mod common;

use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::need_root;
use common::testbed::{mac_text, sh, Testbed, GATEWAY};
use common::TarBuilder;
use serde_json::json;

/// Runs `f` on a new thread that entered the network namespace `netns` (so sockets it
/// makes live there), and returns its result.
fn in_netns<T: Send + 'static>(netns: &Path, f: impl FnOnce() -> T + Send + 'static) -> T {
    let netns: PathBuf = netns.to_path_buf();
    std::thread::spawn(move || {
        let file = std::fs::File::open(&netns).unwrap();
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        f()
    })
    .join()
    .unwrap()
}

/// A packet socket bound to nothing, on the namespace's `eth0` (by index).
struct FrameWriter {
    fd: OwnedFd,
    ifindex: i32,
}

impl FrameWriter {
    fn on_eth0(netns: &Path) -> FrameWriter {
        in_netns(netns, || {
            // SAFETY: socket(2) with constant arguments; the result is checked below.
            let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
            assert!(fd >= 0, "{}", std::io::Error::last_os_error());
            // SAFETY: `fd` is a new descriptor nothing else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(fd) };
            let name = std::ffi::CString::new("eth0").unwrap();
            // SAFETY: `name` is a valid NUL-terminated string.
            let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) };
            assert!(ifindex > 0, "no eth0 in the job's netns");
            FrameWriter {
                fd,
                ifindex: ifindex as i32,
            }
        })
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: sockaddr_ll is plain old data; all-zero is a valid value.
        let mut addr: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        addr.sll_family = libc::AF_PACKET as u16;
        addr.sll_ifindex = self.ifindex;
        addr.sll_halen = 6;
        addr.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: the buffer and the address are valid for the lengths given.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&addr as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        assert_eq!(
            n,
            frame.len() as isize,
            "{}",
            std::io::Error::last_os_error()
        );
    }
}

fn ether(dst: [u8; 6], src: [u8; 6], ethertype: u16, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::with_capacity(14 + payload.len());
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

/// An IPv4 packet with one UDP datagram (UDP checksum 0: none, allowed over IPv4).
fn udp(src: Ipv4Addr, dst: Ipv4Addr, sport: u16, dport: u16, data: &[u8]) -> Vec<u8> {
    let total = 20 + 8 + data.len();
    let mut p = vec![0x45, 0, 0, 0, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0];
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p.extend_from_slice(&src.octets());
    p.extend_from_slice(&dst.octets());
    let mut sum: u32 = p
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], c[1]])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    p[10..12].copy_from_slice(&(!(sum as u16)).to_be_bytes());
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&dport.to_be_bytes());
    p.extend_from_slice(&((8 + data.len()) as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(data);
    p
}

/// An Ethernet/IPv4 ARP packet.
fn arp(op: u16, sha: [u8; 6], spa: Ipv4Addr, tha: [u8; 6], tpa: Ipv4Addr) -> Vec<u8> {
    let mut p = vec![0, 1, 0x08, 0, 6, 4];
    p.extend_from_slice(&op.to_be_bytes());
    p.extend_from_slice(&sha);
    p.extend_from_slice(&spa.octets());
    p.extend_from_slice(&tha);
    p.extend_from_slice(&tpa.octets());
    p
}

const IPV4: u16 = 0x0800;
const ARP: u16 = 0x0806;
const BROADCAST: [u8; 6] = [0xff; 6];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_cannot_speak_as_another_address() {
    if !need_root("a_job_cannot_speak_as_another_address") {
        return;
    }
    let mut bed = Testbed::new().await;
    bed.start_agent(&[]).await;
    let www = bed.input(
        "www",
        TarBuilder::new()
            .file("index.html", b"vic page\n", 0o644)
            .finish(),
    );
    let vic = bed
        .run(json!({
            "id": "vic", "tenant": 2, "port": 5000,
            "inputs": [{"url": www, "path": "/www", "readonly": true}],
            "command": ["httpd", "-f", "-p", "5000", "-h", "/www"],
        }))
        .await;
    let ip = |v: &serde_json::Value| v["ip"].as_str().unwrap().parse::<Ipv4Addr>().unwrap();
    let vic_ip = ip(&vic);
    let hp = vic["host_port"].as_u64().unwrap();
    let sleeper =
        |id: &str, tenant: u32| json!({"id": id, "tenant": tenant, "command": ["sleep", "1000"]});
    let friend_ip = ip(&bed.run(sleeper("friend", 2)).await);
    let mal_ip = ip(&bed.run(sleeper("mal", 1)).await);
    let router_path = format!("http://{}:{hp}/", bed.node_ip);
    bed.wait_get(&router_path, "vic page").await;
    let (vic_mac, friend_mac, mal_mac) = (
        bed.job_mac("vic"),
        bed.job_mac("friend"),
        bed.job_mac("mal"),
    );
    let gw_mac = bed.gateway_mac();
    let mal = FrameWriter::on_eth0(&bed.job_netns("mal"));
    let friend = FrameWriter::on_eth0(&bed.job_netns("friend"));

    // 1. IPv4 as another job of the victim's tenant.
    let inbox = in_netns(&bed.job_netns("vic"), move || {
        UdpSocket::bind(SocketAddr::from((vic_ip, 9999))).unwrap()
    });
    inbox
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let routed = udp(friend_ip, vic_ip, 4000, 9999, b"spoofed-routed");
    mal.send(&ether(gw_mac, mal_mac, IPV4, &routed));
    let bridged = udp(friend_ip, vic_ip, 4000, 9999, b"spoofed-bridged");
    mal.send(&ether(vic_mac, mal_mac, IPV4, &bridged));
    let both = udp(friend_ip, vic_ip, 4000, 9999, b"spoofed-both");
    mal.send(&ether(vic_mac, friend_mac, IPV4, &both));
    let plain = udp(mal_ip, vic_ip, 4000, 9999, b"mal-itself");
    mal.send(&ether(vic_mac, mal_mac, IPV4, &plain));
    let genuine = udp(friend_ip, vic_ip, 4000, 9999, b"genuine");
    let mut got = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut quiet_until = None;
    loop {
        if quiet_until.is_none() {
            friend.send(&ether(vic_mac, friend_mac, IPV4, &genuine));
        }
        let mut buf = [0u8; 1500];
        if let Ok((n, from)) = inbox.recv_from(&mut buf) {
            got.push(format!(
                "{} from {from}",
                String::from_utf8_lossy(&buf[..n])
            ));
        }
        if quiet_until.is_none() && got.iter().any(|g| g.starts_with("genuine")) {
            quiet_until = Some(Instant::now() + Duration::from_secs(1));
        }
        if quiet_until.is_some_and(|t| Instant::now() > t) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the real job's datagram never arrived (the injection does not work?): {got:?}"
        );
    }
    assert!(
        got.iter().all(|g| g.starts_with("genuine")),
        "a job spoke as another address: {got:?}"
    );

    // 2. Gratuitous ARP claiming the victim's address, to the node (the router's path).
    let neigh = |bed: &Testbed| {
        sh(
            "ip",
            &[
                "-n",
                &bed.node_ns,
                "neigh",
                "show",
                &vic_ip.to_string(),
                "dev",
                &format!("{}0", bed.prefix),
            ],
        )
    };
    let before = neigh(&bed);
    assert!(before.contains(&mac_text(&vic_mac)), "{before}");
    let claim = arp(2, mal_mac, vic_ip, BROADCAST, vic_ip);
    mal.send(&ether(BROADCAST, mal_mac, ARP, &claim));
    let reply = arp(2, mal_mac, vic_ip, gw_mac, GATEWAY);
    mal.send(&ether(gw_mac, mal_mac, ARP, &reply));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let after = neigh(&bed);
    assert!(
        after.contains(&mac_text(&vic_mac)) && !after.contains(&mac_text(&mal_mac)),
        "the node's neighbour entry of the victim was poisoned: {after}"
    );

    // 3. The victim's MAC as the source of a frame from the attacker's port.
    let stolen = udp(mal_ip, GATEWAY, 4000, 9, b"mine now");
    for _ in 0..3 {
        mal.send(&ether(gw_mac, vic_mac, IPV4, &stolen));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let fdb = sh(
        "bridge",
        &[
            "-n",
            &bed.node_ns,
            "fdb",
            "show",
            "br",
            &format!("{}0", bed.prefix),
        ],
    );
    let line = fdb
        .lines()
        .find(|l| l.starts_with(&mac_text(&vic_mac)))
        .unwrap_or("");
    assert!(
        line.contains(&bed.job_veth("vic")),
        "the victim's MAC moved to another port: {line:?}\n{fdb}"
    );

    // The router's path still reaches the victim.
    let body = bed.get(&router_path).await;
    assert!(
        body.as_deref().is_ok_and(|b| b.contains("vic page")),
        "{body:?}"
    );
}
