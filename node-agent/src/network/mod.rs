//! Node and job networking: the bridge, per-job network namespaces and veths, and the
//! nftables tables that map host ports to containers and wall tenants apart.
//!
//! * Bridge `<prefix>0` holds the subnet's first address; `net.ipv4.ip_forward` is on.
//! * Each job gets netns `<prefix>-<hash>` (`/run/netns/…`, IPv6 turned off in it unless
//!   the agent runs with `--job-ipv6`) and a veth pair: the host end `<prefix>v<hash>` on
//!   the bridge, the other end moved into the netns as `eth0` with the job's address from
//!   [`ipam::Ipam`] and the MAC [`ipam::mac_for`] that address, a default route via the
//!   bridge, and `lo` up.
//! * Tables `ip <prefix>` and `bridge <prefix>` ([`tables`]): host port DNAT, masquerade,
//!   the API fence ([`Fence`]), and the walls between tenants. A job's rules are elements
//!   of sets and maps, added at setup and deleted at teardown, so a deleted job leaves no
//!   rule behind; a restarted agent redefines both tables from the leases in one nft
//!   transaction, so running jobs' traffic is never dropped meanwhile.
//! * Host ports are bound by the agent while a job holds them ([`holds`]), so the DNAT
//!   never takes another program's port and nothing else takes a job's.
//! * Other nodes ([`NetworkManager::set_peers`], from the controller's heartbeat answer):
//!   their host ports and agent ports are closed to jobs.
//!
//! Everything is done by running `ip` and `nft -f -`, except IPv6, turned off by a thread
//! that enters the job's netns.

mod fence;
mod holds;
pub mod ipam;
pub mod tables;

use std::net::{Ipv4Addr, SocketAddrV4};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::config::{PortRange, Subnet};
pub use fence::Fence;
use ipam::{Ipam, IpamError, Lease};
use tables::{JobWall, Tables, TablesError};

/// Errors of network setup and teardown.
#[derive(Debug, thiserror::Error)]
pub enum NetError {
    #[error("`{command}` failed: {stderr}")]
    Command { command: String, stderr: String },
    #[error("running `{command}`: {source} (are iproute2 and nftables installed?)")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Ipam(#[from] IpamError),
    #[error(transparent)]
    Tables(#[from] TablesError),
    #[error(
        "--subnet {subnet} overlaps {other} on interface {iface}: the jobs' addresses would \
         be routed there, not to this agent's bridge {bridge}. Give this agent another \
         --subnet, or remove {iface} if it is left over (`ip link del {iface}`)"
    )]
    SubnetInUse {
        subnet: String,
        other: String,
        iface: String,
        bridge: String,
    },
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
}

type Result<T> = std::result::Result<T, NetError>;

/// Host-global names of one job's network.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobNames {
    /// `<prefix>-<hash8>`
    pub netns: String,
    /// Host end of the veth, on the bridge: `<prefix>v<hash>` (≤ 15 chars).
    pub veth_host: String,
    /// The other end before it is moved into the netns and renamed `eth0`.
    pub veth_peer: String,
}

impl JobNames {
    pub fn new(prefix: &str, job: &str) -> JobNames {
        let hash = hex::encode(Sha256::digest(job.as_bytes()));
        let n = 15usize.saturating_sub(prefix.len() + 1).min(8);
        JobNames {
            netns: format!("{prefix}-{}", &hash[..8]),
            veth_host: format!("{prefix}v{}", &hash[..n]),
            veth_peer: format!("{prefix}p{}", &hash[..n]),
        }
    }

    pub fn netns_path(&self) -> PathBuf {
        Path::new("/run/netns").join(&self.netns)
    }
}

/// A job's network as the job manager needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobNet {
    pub netns_path: PathBuf,
    pub ip: Ipv4Addr,
    pub host_port: Option<u16>,
    /// Where the controller reaches the job's port.
    pub addr: Option<String>,
}

/// The node's network: bridge, nft tables and the job address book.
#[derive(Debug)]
pub struct NetworkManager {
    prefix: String,
    subnet: Subnet,
    ports: PortRange,
    advertise: Ipv4Addr,
    /// Leave IPv6 on in job netns (`--job-ipv6`).
    job_ipv6: bool,
    ipam: Mutex<Ipam>,
    /// The host ports of the leases, bound while they are held.
    holds: holds::Holds,
    /// The peer nodes last written to the tables (None: not since the agent started).
    peers: Mutex<Option<Vec<SocketAddrV4>>>,
    /// The add-ons on other nodes last written to the tables, with their apps.
    addon_ports: Mutex<Option<Vec<tables::AddonPort>>>,
}

impl NetworkManager {
    /// Loads the address book from `state_dir/network.json`. Touches nothing on the host.
    pub fn open(
        state_dir: &Path,
        prefix: &str,
        subnet: Subnet,
        ports: PortRange,
        advertise: Ipv4Addr,
    ) -> Result<NetworkManager> {
        let ipam = Ipam::open(&state_dir.join("network.json"), subnet, ports)?;
        Ok(NetworkManager {
            prefix: prefix.to_string(),
            subnet,
            ports,
            advertise,
            job_ipv6: false,
            ipam: Mutex::new(ipam),
            holds: holds::Holds::default(),
            peers: Mutex::new(None),
            addon_ports: Mutex::new(None),
        })
    }

    /// Leaves IPv6 on in the netns of jobs set up from now on (`--job-ipv6`); off by
    /// default.
    pub fn with_job_ipv6(mut self, on: bool) -> NetworkManager {
        self.job_ipv6 = on;
        self
    }

    fn tables(&self) -> Tables<'_> {
        Tables {
            prefix: &self.prefix,
            subnet: self.subnet,
            ports: self.ports,
        }
    }

    /// What the tables hold for `job` (a lease without a MAC gets the one the agent would
    /// have given it: deleting a missing element is harmless).
    fn wall(&self, job: &str, lease: &Lease) -> Result<JobWall> {
        let mac = lease.mac.clone().unwrap_or_else(|| ipam::mac_for(lease.ip));
        let port = lease.host_port.zip(lease.container_port);
        Ok(JobWall::new(
            JobNames::new(&self.prefix, job).veth_host,
            lease.ip,
            &mac,
            tables::tenant_mark(lease.tenant, lease.ip)?,
            port,
            lease.api_access,
        )?
        .with_guests(&lease.guests)?)
    }

    pub fn bridge(&self) -> String {
        bridge_name(&self.prefix)
    }

    fn ipam(&self) -> std::sync::MutexGuard<'_, Ipam> {
        self.ipam.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates (or repairs) the bridge and both nft tables, and re-installs every lease's
    /// port mapping and place in the walls (reading the MAC of leases an older agent made
    /// from their job's netns). Idempotent; run at agent start.
    pub async fn ensure_node(&self) -> Result<()> {
        let bridge = self.bridge();
        if let Some((iface, other)) = overlapping(self.subnet, &bridge, &ipv4_addrs().await) {
            return Err(NetError::SubnetInUse {
                subnet: self.subnet.to_string(),
                other,
                iface,
                bridge,
            });
        }
        if !link_names().await.contains(&bridge) {
            ip(&["link", "add", &bridge, "type", "bridge"]).await?;
        }
        let gw = format!("{}/{}", self.subnet.gateway(), self.subnet.prefix_len);
        ip(&["addr", "replace", &gw, "dev", &bridge]).await?;
        ip(&["link", "set", &bridge, "up"]).await?;
        std::fs::write("/proc/sys/net/ipv4/ip_forward", "1").map_err(|source| NetError::Io {
            what: "turning on /proc/sys/net/ipv4/ip_forward".into(),
            source,
        })?;
        let leases: Vec<(String, Lease)> = self
            .ipam()
            .leases()
            .iter()
            .map(|(job, lease)| (job.clone(), lease.clone()))
            .collect();
        let mut walls = Vec::new();
        for (job, lease) in leases {
            if lease.mac.is_none() {
                // A lease of an agent older than the walls: its job's MAC is the kernel's.
                let netns = JobNames::new(&self.prefix, &job).netns;
                match read_mac(&netns).await {
                    Some(mac) => self.ipam().set_mac(&job, &mac)?,
                    None => {
                        tracing::warn!(job, "no eth0 in {netns}: the job gets no walls entry");
                        continue;
                    }
                }
            }
            let Some(lease) = self.lease(&job) else {
                continue;
            };
            if let Some(port) = lease.host_port {
                self.holds.keep(port, &job);
            }
            walls.push(self.wall(&job, &lease)?);
        }
        nft(&self.tables().define(&walls)).await
    }

    /// Sets what containers may not reach (replacing the previous fence in one nft
    /// transaction). Run once the agent's API port is known.
    pub async fn fence(&self, fence: &Fence) -> Result<()> {
        nft(&fence.script(&self.prefix)).await
    }

    /// Lets `job` (which has a lease) reach the API ports.
    pub async fn allow_api(&self, job: &str) -> Result<()> {
        let Some(lease) = self.ipam().allow_api(job)? else {
            return Ok(());
        };
        nft(&format!(
            "add element ip {} api_allowed {{ {} }}\n",
            self.prefix, lease.ip
        ))
        .await
    }

    /// Closes the host ports and agent ports of the other nodes (`IPV4:PORT` of their
    /// agents, from the controller) to jobs, replacing the previous list; nothing is done
    /// when the list did not change.
    pub async fn set_peers(&self, peers: &[SocketAddrV4]) -> Result<()> {
        if self.peers_now().as_deref() == Some(peers) {
            return Ok(());
        }
        nft(&self.tables().peers(peers)).await?;
        tracing::info!(
            ?peers,
            "jobs are kept from these nodes' host ports and agent ports"
        );
        *self.peers.lock().unwrap_or_else(|e| e.into_inner()) = Some(peers.to_vec());
        Ok(())
    }

    /// Replaces the add-ons on other nodes that jobs of their attached apps may reach
    /// through the wall against other nodes' host ports (from the heartbeat answer).
    pub async fn set_addon_ports(&self, ports: &[tables::AddonPort]) -> Result<()> {
        let same = self
            .addon_ports
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_deref()
            == Some(ports);
        if same {
            return Ok(());
        }
        nft(&self.tables().addon_ports(ports)?).await?;
        tracing::info!(
            count = ports.len(),
            "add-ons on other nodes opened to their apps' jobs"
        );
        *self.addon_ports.lock().unwrap_or_else(|e| e.into_inner()) = Some(ports.to_vec());
        Ok(())
    }

    fn peers_now(&self) -> Option<Vec<SocketAddrV4>> {
        self.peers.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Gives `job` an address (and a host port if `port` is set), a netns with a veth on
    /// the bridge, its port mapping and its place in the walls of `tenant` (None: a tenant
    /// of its own). On error, what was made is undone by [`NetworkManager::teardown_job`]
    /// (the caller calls it).
    pub async fn setup_job(
        &self,
        job: &str,
        port: Option<u16>,
        tenant: Option<u32>,
        guests: &[u32],
    ) -> Result<JobNet> {
        // Checked before anything is made.
        tables::tenant_mark(tenant, Ipv4Addr::UNSPECIFIED)?;
        for guest in guests {
            tables::tenant_mark(Some(*guest), Ipv4Addr::UNSPECIFIED)?;
        }
        let mut taken = None;
        let leased = self.ipam().lease_where(job, port, tenant, guests, |p| {
            let ok = self.holds.take(p);
            taken = taken.or(ok.then_some(p));
            ok
        });
        let lease = leased.inspect_err(|_| {
            if let Some(p) = taken {
                self.holds.release(p);
            }
        })?;
        if let Some(port) = lease.host_port {
            // A lease made before (the same job set up again) keeps its port.
            self.holds.keep(port, job);
        }
        let wall = self.wall(job, &lease)?;
        let names = JobNames::new(&self.prefix, job);
        let ns = names.netns.as_str();
        // Leftovers of an earlier try under the same names.
        ignore_missing(ip(&["netns", "del", ns]).await)?;
        ignore_missing(ip(&["link", "del", &names.veth_host]).await)?;
        let addr = format!("{}/{}", lease.ip, self.subnet.prefix_len);
        let gw = self.subnet.gateway().to_string();
        let bridge = self.bridge();
        ip(&["netns", "add", ns]).await?;
        if !self.job_ipv6 {
            disable_ipv6(names.netns_path()).await?;
        }
        ip(&[
            "link",
            "add",
            &names.veth_host,
            "type",
            "veth",
            "peer",
            "name",
            &names.veth_peer,
            "address",
            &wall.mac,
        ])
        .await?;
        ip(&["link", "set", &names.veth_host, "master", &bridge, "up"]).await?;
        ip(&["link", "set", &names.veth_peer, "netns", ns]).await?;
        ip(&["-n", ns, "link", "set", &names.veth_peer, "name", "eth0"]).await?;
        ip(&["-n", ns, "addr", "add", &addr, "dev", "eth0"]).await?;
        ip(&["-n", ns, "link", "set", "eth0", "up"]).await?;
        ip(&["-n", ns, "link", "set", "lo", "up"]).await?;
        ip(&["-n", ns, "route", "add", "default", "via", &gw]).await?;
        nft(&self.tables().add_job(&wall)).await?;
        Ok(JobNet {
            netns_path: names.netns_path(),
            ip: lease.ip,
            host_port: lease.host_port,
            addr: self.addr(&lease),
        })
    }

    /// `<container ip>:<port>` when the advertised address is loopback (one machine: the
    /// host reaches the bridge directly), else `<advertise ip>:<host port>`.
    pub fn addr(&self, lease: &Lease) -> Option<String> {
        let cp = lease.container_port?;
        if self.advertise.is_loopback() {
            Some(format!("{}:{cp}", lease.ip))
        } else {
            Some(format!("{}:{}", self.advertise, lease.host_port?))
        }
    }

    /// The host ports bound for the leases now, lowest first.
    pub fn held_ports(&self) -> Vec<u16> {
        self.holds.ports()
    }

    /// The lease `job` holds, if any.
    pub fn lease(&self, job: &str) -> Option<Lease> {
        self.ipam().get(job).cloned()
    }

    /// Removes the job's port mapping, netns and veth, and releases its address and port.
    /// Missing pieces are fine (idempotent).
    pub async fn teardown_job(&self, job: &str) -> Result<()> {
        // The lease is taken before anything is made: without one there is nothing.
        let Some(lease) = self.lease(job) else {
            return Ok(());
        };
        let names = JobNames::new(&self.prefix, job);
        let elements = self.tables().delete_job(&self.wall(job, &lease)?);
        if nft(&elements.concat()).await.is_err() {
            // Some are gone already (a start that failed half-way): the rest one by one.
            for element in &elements {
                ignore_missing(nft(element).await)?;
            }
        }
        ignore_missing(ip(&["netns", "del", &names.netns]).await)?;
        ignore_missing(ip(&["link", "del", &names.veth_host]).await)?;
        self.ipam().release(job)?;
        if let Some(port) = lease.host_port {
            self.holds.release(port);
        }
        Ok(())
    }
}

/// The bridge of a prefix: `<prefix>0`.
pub fn bridge_name(prefix: &str) -> String {
    format!("{prefix}0")
}

/// Removes every network object of `prefix` from the host: job netns (`<prefix>-<8 hex>`),
/// stray veths (`<prefix>v<hex>`), the nft tables and the bridge. For `paas-agent cleanup`.
pub async fn remove_all(prefix: &str) -> Result<()> {
    let is_hex = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_hexdigit());
    let veth_len = JobNames::new(prefix, "x").veth_host.len();
    if let Ok(entries) = std::fs::read_dir("/run/netns") {
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().to_string();
            let ours = name
                .strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('-'))
                .is_some_and(|h| h.len() == 8 && is_hex(h));
            if ours {
                ignore_missing(ip(&["netns", "del", &name]).await)?;
            }
        }
    }
    let links = link_names().await;
    for name in &links {
        let ours = name.len() == veth_len
            && name
                .strip_prefix(prefix)
                .and_then(|r| r.strip_prefix('v').or_else(|| r.strip_prefix('p')))
                .is_some_and(is_hex);
        if ours {
            ignore_missing(ip(&["link", "del", name]).await)?;
        }
    }
    ignore_missing(nft(&format!("delete table ip {prefix}\n")).await)?;
    ignore_missing(nft(&format!("delete table bridge {prefix}\n")).await)?;
    if links.contains(&bridge_name(prefix)) {
        ignore_missing(ip(&["link", "del", &bridge_name(prefix)]).await)?;
    }
    Ok(())
}

/// Treats "it is already gone" answers of `ip`/`nft` as success.
fn ignore_missing(result: Result<()>) -> Result<()> {
    match result {
        Err(NetError::Command { stderr, .. })
            if stderr.contains("No such file")
                || stderr.contains("Cannot find device")
                || stderr.contains("does not exist")
                || stderr.contains("No such device") =>
        {
            Ok(())
        }
        other => other,
    }
}

/// The network interfaces of this process's network namespace. Asked from `ip`, not read
/// from `/sys/class/net`: an agent entered into a namespace with `nsenter --net` still sees
/// the sysfs of the namespace `/sys` was mounted in.
async fn link_names() -> Vec<String> {
    let Ok(out) = Command::new("ip")
        .args(["-o", "link", "show"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .await
    else {
        return Vec::new();
    };
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// `ip -4 -o addr show`: one line per IPv4 address, `N: IFACE inet A.B.C.D/LEN …`.
async fn ipv4_addrs() -> String {
    Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .await
        .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
        .unwrap_or_default()
}

/// The first address (interface, `A.B.C.D/LEN`) in `ip -4 -o addr show` output on another
/// interface than `bridge` whose network overlaps `subnet`. Two agents (or an agent and a
/// bridge left by a killed one) on one subnet would share the routes to their jobs: the
/// kernel sends every job address to one of the bridges, and the other agent's jobs never
/// answer.
fn overlapping(subnet: Subnet, bridge: &str, addrs: &str) -> Option<(String, String)> {
    addrs.lines().find_map(|line| {
        let mut words = line.split_whitespace();
        let iface = words.nth(1)?;
        words.find(|w| *w == "inet")?;
        let cidr = words.next()?;
        let (ip, len) = cidr.split_once('/')?;
        let (ip, len) = (ip.parse::<Ipv4Addr>().ok()?, len.parse::<u8>().ok()?);
        let len = len.min(subnet.prefix_len).min(32);
        let mask = if len == 0 {
            0
        } else {
            u32::MAX << (32 - u32::from(len))
        };
        let overlaps = u32::from(ip) & mask == u32::from(subnet.network) & mask;
        (overlaps && iface != bridge && !ip.is_loopback())
            .then(|| (iface.to_string(), cidr.to_string()))
    })
}

/// The MAC address of `eth0` in the netns `netns` (`aa:bb:…`), if there is one.
async fn read_mac(netns: &str) -> Option<String> {
    let out = Command::new("ip")
        .args(["-n", netns, "-o", "link", "show", "eth0"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .await
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let mut words = text.split_whitespace();
    words.find(|w| *w == "link/ether")?;
    words.next().map(str::to_string)
}

/// Turns IPv6 off in the network namespace at `netns` (every interface there now and
/// later), so a job has no IPv6 address at all, link-local included. A kernel without
/// IPv6 has nothing to turn off. A thread of its own enters the netns (a thread's
/// `/proc/sys/net` is its netns's) and ends there, so no other thread changes namespace.
async fn disable_ipv6(netns: PathBuf) -> Result<()> {
    let what = format!("turning IPv6 off in {}", netns.display());
    let turn_off = move || -> std::io::Result<()> {
        let file = std::fs::File::open(&netns)?;
        nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)?;
        for conf in ["default", "all"] {
            let path = format!("/proc/sys/net/ipv6/conf/{conf}/disable_ipv6");
            match std::fs::write(&path, "1") {
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
                other => other?,
            }
        }
        Ok(())
    };
    let joined = tokio::task::spawn_blocking(move || {
        std::thread::spawn(turn_off)
            .join()
            .unwrap_or_else(|_| Err(std::io::Error::other("the thread panicked")))
    })
    .await;
    joined
        .unwrap_or_else(|e| Err(std::io::Error::other(e)))
        .map_err(|source| NetError::Io { what, source })
}

async fn ip(args: &[&str]) -> Result<()> {
    run("ip", args, None).await
}

async fn nft(script: &str) -> Result<()> {
    run("nft", &["-f", "-"], Some(script)).await
}

async fn run(program: &str, args: &[&str], stdin: Option<&str>) -> Result<()> {
    let command = format!("{program} {}", args.join(" "));
    let spawn_err = |source| NetError::Spawn {
        command: command.clone(),
        source,
    };
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(if stdin.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true);
    let mut child = cmd.spawn().map_err(spawn_err)?;
    if let (Some(input), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(input.as_bytes()).await.map_err(spawn_err)?;
        drop(pipe);
    }
    let out = child.wait_with_output().await.map_err(spawn_err)?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr).trim().to_string();
        let command = match stdin {
            Some(script) => format!("{command} <<< {:?}", script.lines().next().unwrap_or("")),
            None => command,
        };
        Err(NetError::Command { command, stderr })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_subnet_on_another_interface_is_refused() {
        let addrs = "1: lo    inet 127.0.0.1/8 scope host lo\\       valid_lft forever\n\
                     2: eth0    inet 192.0.2.2/24 brd 192.0.2.255 scope global eth0\n\
                     7: old0    inet 10.201.77.1/24 brd 10.201.77.255 scope global old0\n\
                     8: me0    inet 10.201.78.1/24 brd 10.201.78.255 scope global me0\n\
                     9: wide    inet 10.202.0.1/16 scope global wide\n";
        let net = |s: &str| s.parse::<Subnet>().unwrap();
        assert_eq!(
            overlapping(net("10.201.77.0/24"), "me0", addrs),
            Some(("old0".into(), "10.201.77.1/24".into()))
        );
        // Its own bridge is no clash (an agent restarting), nor a neighbouring subnet.
        assert_eq!(overlapping(net("10.201.78.0/24"), "me0", addrs), None);
        assert_eq!(overlapping(net("10.201.79.0/24"), "me0", addrs), None);
        // Wider on either side overlaps.
        assert_eq!(
            overlapping(net("10.202.5.0/24"), "me0", addrs),
            Some(("wide".into(), "10.202.0.1/16".into()))
        );
        assert_eq!(
            overlapping(net("10.201.0.0/16"), "me0", addrs),
            Some(("old0".into(), "10.201.77.1/24".into()))
        );
    }

    use super::*;

    #[test]
    fn names_fit_the_kernel_limits() {
        let n = JobNames::new("paas", "web-1");
        assert_eq!(n.netns.len(), "paas-".len() + 8);
        assert!(n.veth_host.len() <= 15 && n.veth_host.starts_with("paasv"));
        let long = JobNames::new("abcdefghij", "web-1");
        assert_eq!(long.veth_host.len(), 15);
        assert_ne!(JobNames::new("paas", "a"), JobNames::new("paas", "b"));
    }
}
