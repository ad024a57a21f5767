//! The agent's two nftables tables, as scripts for `nft -f -` (pure text, no I/O): `ip
//! <prefix>` (port mappings, masquerade, the API fence, and the walls of routed traffic)
//! and `bridge <prefix>` (the walls of traffic between the ports of the bridge). Each
//! script is one nft transaction, so the kernel applies it whole or not at all.
//!
//! The walls between tenants:
//!
//! * **Bridged** (one job's veth to another's): chain `to_job` of the bridge table, at the
//!   `forward` hook for every frame going out of a job's port: it sets the packet mark to
//!   the tenant of the port the frame goes to (map `port_tenants`) and lets it through
//!   only when the port it came in on belongs to the same tenant (set `port_members`, port
//!   `.` tenant). By ports, not addresses: flooded frames (ARP broadcasts, unknown
//!   unicast) reach only the sender's tenant.
//! * **Routed** (to the gateway's MAC, the host sends it back onto the bridge), and host
//!   ports (DNAT to a job of this node, then routed back onto the bridge): chain `walls`
//!   of the ip table, from `forward` for `iifname <bridge> oifname <bridge>`: the mark is
//!   the tenant of the source address (map `tenants`) and the packet passes only when
//!   destination `.` mark is in `members`. The hook runs after DNAT, so a host port is
//!   judged by the job it leads to.
//! * **Guests** (an add-on's job and the apps attached to it, `JobSpec.guests`): the job
//!   holds `address . guest` in `members` and `port . guest` in `port_members`, and each
//!   wall also passes a packet the OTHER end's elements allow (destination `.` tenant of
//!   the source), so a guest's jobs and the add-on talk both ways. Without guests that
//!   second rule adds nothing: a job's own elements name only its own tenant.
//! * **Only their own address**: chain `from_job` (bridge `prerouting`, every frame a job
//!   sends): ARP and IPv4 must carry the port's own address and MAC (set `job_ports`,
//!   port `.` IPv4 `.` MAC; for ARP the sender fields as well), so a job can neither speak
//!   as another job (which the routed walls would judge by that address) nor poison the
//!   node's ARP cache or the bridge's forwarding table. Nothing else than ARP and IPv4
//!   leaves a job (no IPv6, no VLAN tags), and nothing to 169.254.0.0/16 (link-local, cloud
//!   metadata).
//! * **Host ports without a mapping** on this node's addresses (`input`: new connections
//!   from the bridge to the port range) and **other nodes' host ports and agent ports**
//!   (`forward`: new connections from the bridge to `peer_nodes` on the port range, or to
//!   `peer_agents`; filled from the controller's heartbeat answer, assuming every agent of
//!   a cluster uses the same `--port-range`).
//! * **Other nodes' add-ons** (set `addon_ports`, address `.` port `.` app, from the
//!   heartbeat answer): a job passes the wall above to an add-on on another node when its
//!   own app is attached to it; the node's users (processes not root, not in a job) may
//!   not open connections to those add-ons at all (chain `local_out`, set `addon_addrs`).
//!
//! A tenant is a 32-bit mark: an app's permanent number (1 to 2^31 − 1), or for a job of
//! no app `2^31 | its address` (unique on the node). Per job: one element in each of
//! `tenants`, `members`, `job_veths`, `job_ports`, `port_tenants` and `port_members`
//! (plus `jobports` and `api_allowed`), added and deleted with the job, so lookups stay
//! hash lookups however many jobs and tenants a node has.

use std::net::{Ipv4Addr, SocketAddrV4};

use crate::config::{PortRange, Subnet};

/// Errors of the wall rules.
#[derive(Debug, thiserror::Error)]
pub enum TablesError {
    #[error(
        "tenant {0} is out of range: a tenant is an app's number, 1 to 2147483647 \
         (JobSpec.tenant)"
    )]
    Tenant(u32),
    #[error("{0:?} is not a MAC address (aa:bb:cc:dd:ee:ff)")]
    Mac(String),
}

/// The first mark of tenants of their own (jobs of no app).
const OWN_TENANT: u32 = 1 << 31;

/// The mark of a job's tenant: the app's number, or `2^31 | ip` for a job of no app.
pub fn tenant_mark(tenant: Option<u32>, ip: Ipv4Addr) -> Result<u32, TablesError> {
    match tenant {
        Some(t) if t == 0 || t >= OWN_TENANT => Err(TablesError::Tenant(t)),
        Some(t) => Ok(t),
        None => Ok(OWN_TENANT | (u32::from(ip) & !OWN_TENANT)),
    }
}

/// What the tables hold for one job.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobWall {
    /// The host end of its veth (its port of the bridge).
    pub veth: String,
    pub ip: Ipv4Addr,
    /// `aa:bb:cc:dd:ee:ff`
    pub mac: String,
    pub mark: u32,
    /// Host port → container port.
    pub port: Option<(u16, u16)>,
    pub api_access: bool,
    /// Marks of other tenants let in as well (an add-on's attached apps).
    pub guests: Vec<u32>,
}

impl JobWall {
    /// Checks the MAC so that a bad one cannot break a script.
    pub fn new(
        veth: String,
        ip: Ipv4Addr,
        mac: &str,
        mark: u32,
        port: Option<(u16, u16)>,
        api_access: bool,
    ) -> Result<JobWall, TablesError> {
        let ok = mac.len() == 17
            && mac.split(':').count() == 6
            && mac
                .split(':')
                .all(|b| b.len() == 2 && b.bytes().all(|c| c.is_ascii_hexdigit()));
        if !ok {
            return Err(TablesError::Mac(mac.to_string()));
        }
        Ok(JobWall {
            veth,
            ip,
            mac: mac.to_ascii_lowercase(),
            mark,
            port,
            api_access,
            guests: Vec::new(),
        })
    }

    /// Lets the jobs of these tenants in too (each checked like [`tenant_mark`]).
    pub fn with_guests(mut self, guests: &[u32]) -> Result<JobWall, TablesError> {
        for guest in guests {
            let mark = tenant_mark(Some(*guest), self.ip)?;
            if mark != self.mark && !self.guests.contains(&mark) {
                self.guests.push(mark);
            }
        }
        Ok(self)
    }
}

/// The tables of one agent.
#[derive(Debug, Clone, Copy)]
pub struct Tables<'a> {
    pub prefix: &'a str,
    pub subnet: Subnet,
    pub ports: PortRange,
}

impl Tables<'_> {
    fn bridge(&self) -> String {
        super::bridge_name(self.prefix)
    }

    /// Defines (or repairs) both tables: base chains and rules rewritten, the per-job sets
    /// and maps refilled from `jobs`. The fence sets (`api_ports`, `api_remote`) and the
    /// peer sets keep their elements (they are set later, from the bound port and the
    /// heartbeat). One transaction: running jobs' traffic never meets a half-made table.
    pub fn define(&self, jobs: &[JobWall]) -> String {
        let (p, br, net) = (self.prefix, self.bridge(), self.subnet);
        let range = format!("{}-{}", self.ports.first, self.ports.last);
        let mut s = format!(
            "add table ip {p}\n\
             add map ip {p} jobports {{ type inet_service : ipv4_addr . inet_service; }}\n\
             add map ip {p} tenants {{ type ipv4_addr : mark; }}\n\
             add set ip {p} members {{ type ipv4_addr . mark; }}\n\
             add set ip {p} peer_nodes {{ type ipv4_addr; }}\n\
             add set ip {p} peer_agents {{ type ipv4_addr . inet_service; }}\n\
             add set ip {p} addon_ports {{ type ipv4_addr . inet_service . mark; }}\n\
             add set ip {p} addon_addrs {{ type ipv4_addr . inet_service; }}\n\
             add set ip {p} api_ports {{ type inet_service; }}\n\
             add set ip {p} api_remote {{ type ipv4_addr . inet_service; }}\n\
             add set ip {p} api_allowed {{ type ipv4_addr; }}\n\
             add chain ip {p} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}\n\
             add chain ip {p} output {{ type nat hook output priority -100; policy accept; }}\n\
             add chain ip {p} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}\n\
             add chain ip {p} forward {{ type filter hook forward priority filter; policy accept; }}\n\
             add chain ip {p} input {{ type filter hook input priority filter; policy accept; }}\n\
             add chain ip {p} walls\n\
             add chain ip {p} local_out {{ type filter hook output priority filter; policy accept; }}\n\
             flush chain ip {p} prerouting\n\
             flush chain ip {p} output\n\
             flush chain ip {p} postrouting\n\
             flush chain ip {p} forward\n\
             flush chain ip {p} input\n\
             flush chain ip {p} walls\n\
             flush chain ip {p} local_out\n\
             flush map ip {p} jobports\n\
             flush map ip {p} tenants\n\
             flush set ip {p} members\n\
             flush set ip {p} api_allowed\n\
             add rule ip {p} prerouting fib daddr type local dnat ip to tcp dport map @jobports\n\
             add rule ip {p} output fib daddr type local dnat ip to tcp dport map @jobports\n\
             add rule ip {p} postrouting ip saddr {net} oifname != \"{br}\" masquerade\n\
             add rule ip {p} postrouting ct status dnat ip saddr {net} oifname \"{br}\" masquerade\n\
             add rule ip {p} input iifname \"{br}\" ip saddr != @api_allowed tcp dport @api_ports drop\n\
             add rule ip {p} input iifname \"{br}\" tcp dport {range} ct state new drop\n\
             add rule ip {p} forward iifname \"{br}\" ip saddr != @api_allowed ip daddr . tcp dport @api_remote drop\n\
             add rule ip {p} forward iifname \"{br}\" ip saddr != @api_allowed ip daddr . tcp dport @peer_agents ct state new drop\n\
             add rule ip {p} forward iifname \"{br}\" ip daddr @peer_nodes meta mark set ip saddr map @tenants ip daddr . tcp dport . meta mark @addon_ports accept\n\
             add rule ip {p} forward iifname \"{br}\" ip daddr @peer_nodes tcp dport {range} ct state new drop\n\
             add rule ip {p} forward iifname \"{br}\" oifname \"{br}\" jump walls\n\
             add rule ip {p} forward iifname \"{br}\" accept\n\
             add rule ip {p} forward oifname \"{br}\" accept\n\
             add rule ip {p} walls meta mark set ip saddr map @tenants ip daddr . meta mark @members accept\n\
             add rule ip {p} walls meta mark set ip daddr map @tenants ip saddr . meta mark @members accept\n\
             add rule ip {p} walls drop\n\
             add rule ip {p} local_out meta skuid != 0 ip daddr . tcp dport @addon_addrs ct state new reject with tcp reset\n\
             add table bridge {p}\n\
             add set bridge {p} job_veths {{ type ifname; }}\n\
             add set bridge {p} job_ports {{ type ifname . ipv4_addr . ether_addr; }}\n\
             add map bridge {p} port_tenants {{ type ifname : mark; }}\n\
             add set bridge {p} port_members {{ type ifname . mark; }}\n\
             add chain bridge {p} prerouting {{ type filter hook prerouting priority filter; policy accept; }}\n\
             add chain bridge {p} forward {{ type filter hook forward priority filter; policy accept; }}\n\
             add chain bridge {p} from_job\n\
             add chain bridge {p} to_job\n\
             flush chain bridge {p} prerouting\n\
             flush chain bridge {p} forward\n\
             flush chain bridge {p} from_job\n\
             flush chain bridge {p} to_job\n\
             flush set bridge {p} job_veths\n\
             flush set bridge {p} job_ports\n\
             flush map bridge {p} port_tenants\n\
             flush set bridge {p} port_members\n\
             add rule bridge {p} prerouting iifname @job_veths jump from_job\n\
             add rule bridge {p} from_job ether type arp iifname . arp saddr ip . ether saddr != @job_ports drop\n\
             add rule bridge {p} from_job ether type arp iifname . arp saddr ip . arp saddr ether != @job_ports drop\n\
             add rule bridge {p} from_job ether type ip iifname . ip saddr . ether saddr != @job_ports drop\n\
             add rule bridge {p} from_job ether type != {{ ip, arp }} drop\n\
             add rule bridge {p} from_job ip daddr 169.254.0.0/16 drop\n\
             add rule bridge {p} forward oifname @job_veths jump to_job\n\
             add rule bridge {p} to_job meta mark set oifname map @port_tenants iifname . meta mark @port_members accept\n\
             add rule bridge {p} to_job meta mark set iifname map @port_tenants oifname . meta mark @port_members accept\n\
             add rule bridge {p} to_job drop\n"
        );
        for job in jobs {
            s.push_str(&self.add_job(job));
        }
        s
    }

    /// The elements of one job: `(set, element as added, element as deleted)`.
    fn elements(&self, job: &JobWall) -> Vec<(String, String, String)> {
        let p = self.prefix;
        let (ip, mark, veth, mac) = (job.ip, job.mark, &job.veth, &job.mac);
        let mut e = vec![
            (
                format!("ip {p} tenants"),
                format!("{ip} : {mark}"),
                ip.to_string(),
            ),
            (
                format!("ip {p} members"),
                format!("{ip} . {mark}"),
                format!("{ip} . {mark}"),
            ),
            (
                format!("bridge {p} job_veths"),
                format!("\"{veth}\""),
                format!("\"{veth}\""),
            ),
            (
                format!("bridge {p} job_ports"),
                format!("\"{veth}\" . {ip} . {mac}"),
                format!("\"{veth}\" . {ip} . {mac}"),
            ),
            (
                format!("bridge {p} port_tenants"),
                format!("\"{veth}\" : {mark}"),
                format!("\"{veth}\""),
            ),
            (
                format!("bridge {p} port_members"),
                format!("\"{veth}\" . {mark}"),
                format!("\"{veth}\" . {mark}"),
            ),
        ];
        // A guest tenant's jobs pass the walls to this job as its own tenant's do: routed
        // (address . mark in `members`) and bridged (port . mark in `port_members`).
        for guest in &job.guests {
            e.push((
                format!("ip {p} members"),
                format!("{ip} . {guest}"),
                format!("{ip} . {guest}"),
            ));
            e.push((
                format!("bridge {p} port_members"),
                format!("\"{veth}\" . {guest}"),
                format!("\"{veth}\" . {guest}"),
            ));
        }
        if let Some((host, container)) = job.port {
            e.push((
                format!("ip {p} jobports"),
                format!("{host} : {ip} . {container}"),
                host.to_string(),
            ));
        }
        if job.api_access {
            e.push((
                format!("ip {p} api_allowed"),
                ip.to_string(),
                ip.to_string(),
            ));
        }
        e
    }

    /// Adds one job's elements.
    pub fn add_job(&self, job: &JobWall) -> String {
        self.elements(job)
            .into_iter()
            .map(|(set, add, _)| format!("add element {set} {{ {add} }}\n"))
            .collect()
    }

    /// Deletes one job's elements, one script line each (the caller may run them one by
    /// one when some are gone already).
    pub fn delete_job(&self, job: &JobWall) -> Vec<String> {
        self.elements(job)
            .into_iter()
            .map(|(set, _, del)| format!("delete element {set} {{ {del} }}\n"))
            .collect()
    }

    /// Replaces the peer sets: other nodes' addresses (their host ports are closed to jobs)
    /// and their agents' API addresses.
    pub fn peers(&self, peers: &[SocketAddrV4]) -> String {
        let p = self.prefix;
        let mut s = format!("flush set ip {p} peer_nodes\nflush set ip {p} peer_agents\n");
        let mut ips: Vec<Ipv4Addr> = peers.iter().map(|a| *a.ip()).collect();
        ips.sort_unstable();
        ips.dedup();
        if !ips.is_empty() {
            let list: Vec<String> = ips.iter().map(Ipv4Addr::to_string).collect();
            s.push_str(&format!(
                "add element ip {p} peer_nodes {{ {} }}\n",
                list.join(", ")
            ));
        }
        if !peers.is_empty() {
            let list: Vec<String> = peers
                .iter()
                .map(|a| format!("{} . {}", a.ip(), a.port()))
                .collect();
            s.push_str(&format!(
                "add element ip {p} peer_agents {{ {} }}\n",
                list.join(", ")
            ));
        }
        s
    }
}

/// An add-on on another node (its advertised address and port) and an app attached to it.
pub type AddonPort = (SocketAddrV4, u32);

impl Tables<'_> {
    /// Replaces the set of add-ons on other nodes that the jobs of their attached apps may
    /// reach (the only exception to the wall against other nodes' host ports).
    pub fn addon_ports(&self, ports: &[AddonPort]) -> Result<String, TablesError> {
        let p = self.prefix;
        let mut s = format!("flush set ip {p} addon_ports\nflush set ip {p} addon_addrs\n");
        let mut list = Vec::new();
        let mut addrs = Vec::new();
        for (addr, app) in ports {
            let mark = tenant_mark(Some(*app), *addr.ip())?;
            list.push(format!("{} . {} . {mark}", addr.ip(), addr.port()));
            addrs.push(format!("{} . {}", addr.ip(), addr.port()));
        }
        addrs.sort_unstable();
        addrs.dedup();
        if !list.is_empty() {
            s.push_str(&format!(
                "add element ip {p} addon_ports {{ {} }}\n\
                 add element ip {p} addon_addrs {{ {} }}\n",
                list.join(", "),
                addrs.join(", ")
            ));
        }
        Ok(s)
    }
}

/// Reads the controller's `paas-addon-ports` header: `IPV4:PORT/APP` entries separated by
/// commas; entries that are not (or name no valid app number) are skipped.
pub fn parse_addon_ports(header: &str) -> Vec<AddonPort> {
    let mut ports: Vec<AddonPort> = header
        .split(',')
        .filter_map(|e| {
            let (addr, app) = e.trim().split_once('/')?;
            let app: u32 = app.parse().ok()?;
            tenant_mark(Some(app), std::net::Ipv4Addr::UNSPECIFIED).ok()?;
            Some((addr.parse().ok()?, app))
        })
        .collect();
    ports.sort_unstable();
    ports.dedup();
    ports
}

/// Reads the controller's `paas-peer-nodes` header: `IPV4:PORT` entries separated by
/// commas; entries that are not (a host name, IPv6) are skipped.
pub fn parse_peers(header: &str) -> Vec<SocketAddrV4> {
    let mut peers: Vec<SocketAddrV4> = header
        .split(',')
        .filter_map(|e| e.trim().parse().ok())
        .collect();
    peers.sort_unstable();
    peers.dedup();
    peers
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tables() -> Tables<'static> {
        Tables {
            prefix: "wt",
            subnet: "10.88.0.0/24".parse().unwrap(),
            ports: PortRange {
                first: 20000,
                last: 20099,
            },
        }
    }

    fn job() -> JobWall {
        JobWall::new(
            "wtv12345678".into(),
            Ipv4Addr::new(10, 88, 0, 2),
            "02:50:0a:58:00:02",
            7,
            Some((20001, 5000)),
            false,
        )
        .unwrap()
    }

    #[test]
    fn tenants_are_app_numbers_or_one_per_job() {
        let ip = Ipv4Addr::new(10, 88, 0, 9);
        assert_eq!(tenant_mark(Some(7), ip).unwrap(), 7);
        assert_eq!(
            tenant_mark(Some(OWN_TENANT - 1), ip).unwrap(),
            OWN_TENANT - 1
        );
        let own = tenant_mark(None, ip).unwrap();
        assert!(own >= OWN_TENANT, "never an app's number");
        assert_ne!(
            own,
            tenant_mark(None, Ipv4Addr::new(10, 88, 0, 10)).unwrap()
        );
        for bad in [0, OWN_TENANT, u32::MAX] {
            let err = tenant_mark(Some(bad), ip).unwrap_err().to_string();
            assert!(err.contains("1 to 2147483647"), "{err}");
        }
    }

    #[test]
    fn a_job_has_one_element_per_set_and_deletes_them_all() {
        let t = tables();
        let add = t.add_job(&job());
        for want in [
            "add element ip wt tenants { 10.88.0.2 : 7 }",
            "add element ip wt members { 10.88.0.2 . 7 }",
            "add element bridge wt job_veths { \"wtv12345678\" }",
            "add element bridge wt job_ports { \"wtv12345678\" . 10.88.0.2 . 02:50:0a:58:00:02 }",
            "add element bridge wt port_tenants { \"wtv12345678\" : 7 }",
            "add element bridge wt port_members { \"wtv12345678\" . 7 }",
            "add element ip wt jobports { 20001 : 10.88.0.2 . 5000 }",
        ] {
            assert!(add.contains(want), "{want}\n{add}");
        }
        assert!(!add.contains("api_allowed"), "{add}");
        let del = t.delete_job(&job());
        assert_eq!(del.len(), add.lines().count());
        assert!(del.contains(&"delete element ip wt tenants { 10.88.0.2 }\n".to_string()));
        assert!(del.contains(&"delete element ip wt jobports { 20001 }\n".to_string()));
        let mut api = job();
        api.api_access = true;
        assert!(t
            .add_job(&api)
            .contains("add element ip wt api_allowed { 10.88.0.2 }"));
    }

    #[test]
    fn the_definition_names_the_bridge_and_the_port_range_and_keeps_the_peers() {
        let s = tables().define(&[job()]);
        assert!(s.contains("tcp dport 20000-20099 ct state new drop"), "{s}");
        assert!(
            s.contains("iifname \"wt0\" oifname \"wt0\" jump walls"),
            "{s}"
        );
        assert!(
            s.contains("ip saddr 10.88.0.0/24 oifname != \"wt0\" masquerade"),
            "{s}"
        );
        assert!(s.contains("add element bridge wt job_veths"), "{s}");
        assert!(!s.contains("flush set ip wt peer_nodes"), "{s}");
        assert!(!s.contains("flush set ip wt api_ports"), "{s}");
    }

    #[test]
    fn guests_pass_both_walls_to_the_job_and_only_to_it() {
        let t = tables();
        let addon = job().with_guests(&[9, 7, 9]).unwrap();
        assert_eq!(addon.guests, [9], "its own tenant and repeats are left out");
        let add = t.add_job(&addon);
        for want in [
            "add element ip wt members { 10.88.0.2 . 9 }",
            "add element bridge wt port_members { \"wtv12345678\" . 9 }",
        ] {
            assert!(add.contains(want), "{want}\n{add}");
        }
        // The guest's own jobs keep their tenant (9); the walls let both directions pass
        // by the add-on's elements: a rule that reads them from the other end.
        assert!(!add.contains("tenants { 10.88.0.2 : 9 }"), "{add}");
        let define = t.define(&[]);
        for want in [
            "walls meta mark set ip daddr map @tenants ip saddr . meta mark @members accept",
            "to_job meta mark set iifname map @port_tenants oifname . meta mark @port_members accept",
        ] {
            assert!(define.contains(want), "{want}\n{define}");
        }
        assert_eq!(t.delete_job(&addon).len(), add.lines().count());
        let err = job().with_guests(&[0]).unwrap_err().to_string();
        assert!(err.contains("1 to 2147483647"), "{err}");
    }

    #[test]
    fn addons_on_other_nodes_open_only_to_their_apps() {
        let ports =
            parse_addon_ports("10.240.0.11:20005/3, 10.240.0.11:20005/3,bad,1.2.3.4:5/0,x/4");
        assert_eq!(ports, [("10.240.0.11:20005".parse().unwrap(), 3)]);
        let s = tables().addon_ports(&ports).unwrap();
        let define = tables().define(&[]);
        assert_eq!(
            s,
            "flush set ip wt addon_ports\nflush set ip wt addon_addrs\n\
             add element ip wt addon_ports { 10.240.0.11 . 20005 . 3 }\n\
             add element ip wt addon_addrs { 10.240.0.11 . 20005 }\n"
        );
        assert!(
            define.contains(
                "local_out meta skuid != 0 ip daddr . tcp dport @addon_addrs ct state new reject"
            ),
            "users of the node (not root) are kept out:\n{define}"
        );
        let open = define
            .find("@addon_ports accept")
            .expect("the exception is in the forward chain");
        let wall = define
            .find("ip daddr @peer_nodes tcp dport 20000-20099 ct state new drop")
            .unwrap();
        assert!(
            open < wall,
            "the exception comes before the wall:\n{define}"
        );
        assert!(
            !define.contains("flush set ip wt addon_ports")
                && !define.contains("flush set ip wt addon_addrs"),
            "kept across a repair"
        );
    }

    #[test]
    fn macs_are_checked() {
        let bad = JobWall::new("v".into(), Ipv4Addr::LOCALHOST, "02:50:zz", 1, None, false);
        assert!(bad.unwrap_err().to_string().contains("not a MAC"));
    }

    #[test]
    fn peers_replace_both_sets() {
        let peers =
            parse_peers("10.240.0.12:7070, 10.240.0.11:7070,host:1,[::1]:2,,10.240.0.11:7070");
        assert_eq!(
            peers,
            [
                "10.240.0.11:7070".parse::<SocketAddrV4>().unwrap(),
                "10.240.0.12:7070".parse().unwrap()
            ]
        );
        let s = tables().peers(&peers);
        assert_eq!(
            s,
            "flush set ip wt peer_nodes\nflush set ip wt peer_agents\n\
             add element ip wt peer_nodes { 10.240.0.11, 10.240.0.12 }\n\
             add element ip wt peer_agents { 10.240.0.11 . 7070, 10.240.0.12 . 7070 }\n"
        );
        assert_eq!(tables().peers(&[]).lines().count(), 2);
    }
}
