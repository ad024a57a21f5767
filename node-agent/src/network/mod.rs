//! Node and job networking: the bridge, per-job network namespaces and veths, and the
//! nftables table that maps host ports to containers.
//!
//! * Bridge `<prefix>0` holds the subnet's first address; `net.ipv4.ip_forward` is on.
//! * Each job gets netns `<prefix>-<hash>` (`/run/netns/…`) and a veth pair: the host end
//!   `<prefix>v<hash>` on the bridge, the other end moved into the netns as `eth0` with the
//!   job's address from [`ipam::Ipam`], a default route via the bridge, and `lo` up.
//! * Table `ip <prefix>`: map `jobports` (host port → container ip . port), DNAT in
//!   `prerouting` and `output` for traffic to the node's own addresses
//!   (`fib daddr type local`), masquerade in `postrouting` for the subnet's egress (and
//!   for hairpin traffic), accept in `forward` for the bridge. A job's mapping is one map
//!   element, so deleting the job deletes it and leaves no rule behind.
//! * The API fence ([`Fence`]): containers may not reach the agent's API port nor the
//!   controller's (API, git and registry share it) on any of this node's addresses (chain
//!   `input`: `iifname <bridge> ip saddr != @api_allowed tcp dport @api_ports drop`; the
//!   hook runs after DNAT, so a mapped port is judged by where it really goes), nor the
//!   controller's address and port on another machine (the same in `forward`, before the
//!   bridge's accept, with `ip daddr . tcp dport @api_remote`). Jobs whose spec says
//!   `api_access` have their address in `api_allowed`. The router's port, other apps'
//!   host ports and the internet stay reachable.
//!
//! Everything is done by running `ip` and `nft -f -`.

pub mod ipam;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::config::{PortRange, Subnet};
use ipam::{Ipam, IpamError, Lease};

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

/// The node's network: bridge, nft table and the job address book.
#[derive(Debug)]
pub struct NetworkManager {
    prefix: String,
    subnet: Subnet,
    advertise: Ipv4Addr,
    ipam: Mutex<Ipam>,
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
            advertise,
            ipam: Mutex::new(ipam),
        })
    }

    pub fn bridge(&self) -> String {
        bridge_name(&self.prefix)
    }

    fn ipam(&self) -> std::sync::MutexGuard<'_, Ipam> {
        self.ipam.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Creates (or repairs) the bridge and the nft table, and re-installs the port
    /// mappings of every lease. Idempotent; run at agent start.
    pub async fn ensure_node(&self) -> Result<()> {
        let bridge = self.bridge();
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
        let leases: Vec<Lease> = self.ipam().leases().values().cloned().collect();
        nft(&self.table_script(&leases)).await
    }

    /// The nft script that (re)defines the table and its base chains.
    fn table_script(&self, leases: &[Lease]) -> String {
        let (p, br, net) = (&self.prefix, self.bridge(), self.subnet);
        let mut s = format!(
            "add table ip {p}\n\
             add map ip {p} jobports {{ type inet_service : ipv4_addr . inet_service; }}\n\
             add chain ip {p} prerouting {{ type nat hook prerouting priority dstnat; policy accept; }}\n\
             add chain ip {p} output {{ type nat hook output priority -100; policy accept; }}\n\
             add chain ip {p} postrouting {{ type nat hook postrouting priority srcnat; policy accept; }}\n\
             add chain ip {p} forward {{ type filter hook forward priority filter; policy accept; }}\n\
             add chain ip {p} input {{ type filter hook input priority filter; policy accept; }}\n\
             add set ip {p} api_ports {{ type inet_service; }}\n\
             add set ip {p} api_remote {{ type ipv4_addr . inet_service; }}\n\
             add set ip {p} api_allowed {{ type ipv4_addr; }}\n\
             flush chain ip {p} prerouting\n\
             flush chain ip {p} output\n\
             flush chain ip {p} postrouting\n\
             flush chain ip {p} forward\n\
             flush chain ip {p} input\n\
             flush map ip {p} jobports\n\
             flush set ip {p} api_allowed\n\
             add rule ip {p} prerouting fib daddr type local dnat ip to tcp dport map @jobports\n\
             add rule ip {p} output fib daddr type local dnat ip to tcp dport map @jobports\n\
             add rule ip {p} postrouting ip saddr {net} oifname != \"{br}\" masquerade\n\
             add rule ip {p} postrouting ct status dnat ip saddr {net} oifname \"{br}\" masquerade\n\
             add rule ip {p} input iifname \"{br}\" ip saddr != @api_allowed tcp dport @api_ports drop\n\
             add rule ip {p} forward iifname \"{br}\" ip saddr != @api_allowed ip daddr . tcp dport @api_remote drop\n\
             add rule ip {p} forward iifname \"{br}\" accept\n\
             add rule ip {p} forward oifname \"{br}\" accept\n"
        );
        for lease in leases {
            if let (Some(hp), Some(cp)) = (lease.host_port, lease.container_port) {
                s.push_str(&format!(
                    "add element ip {p} jobports {{ {hp} : {} . {cp} }}\n",
                    lease.ip
                ));
            }
            if lease.api_access {
                s.push_str(&format!(
                    "add element ip {p} api_allowed {{ {} }}\n",
                    lease.ip
                ));
            }
        }
        s
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

    /// Gives `job` an address (and a host port if `port` is set), a netns with a veth on
    /// the bridge, and its port mapping. On error, what was made is undone by
    /// [`NetworkManager::teardown_job`] (the caller calls it).
    pub async fn setup_job(&self, job: &str, port: Option<u16>) -> Result<JobNet> {
        let lease = self.ipam().lease(job, port)?;
        let names = JobNames::new(&self.prefix, job);
        let ns = names.netns.as_str();
        // Leftovers of an earlier try under the same names.
        ignore_missing(ip(&["netns", "del", ns]).await)?;
        ignore_missing(ip(&["link", "del", &names.veth_host]).await)?;
        let addr = format!("{}/{}", lease.ip, self.subnet.prefix_len);
        let gw = self.subnet.gateway().to_string();
        let bridge = self.bridge();
        ip(&["netns", "add", ns]).await?;
        ip(&[
            "link",
            "add",
            &names.veth_host,
            "type",
            "veth",
            "peer",
            "name",
            &names.veth_peer,
        ])
        .await?;
        ip(&["link", "set", &names.veth_host, "master", &bridge, "up"]).await?;
        ip(&["link", "set", &names.veth_peer, "netns", ns]).await?;
        ip(&["-n", ns, "link", "set", &names.veth_peer, "name", "eth0"]).await?;
        ip(&["-n", ns, "addr", "add", &addr, "dev", "eth0"]).await?;
        ip(&["-n", ns, "link", "set", "eth0", "up"]).await?;
        ip(&["-n", ns, "link", "set", "lo", "up"]).await?;
        ip(&["-n", ns, "route", "add", "default", "via", &gw]).await?;
        if let (Some(hp), Some(cp)) = (lease.host_port, lease.container_port) {
            nft(&format!(
                "add element ip {} jobports {{ {hp} : {} . {cp} }}\n",
                self.prefix, lease.ip
            ))
            .await?;
        }
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
        if lease.api_access {
            ignore_missing(
                nft(&format!(
                    "delete element ip {} api_allowed {{ {} }}\n",
                    self.prefix, lease.ip
                ))
                .await,
            )?;
        }
        if let Some(hp) = lease.host_port {
            ignore_missing(
                nft(&format!(
                    "delete element ip {} jobports {{ {hp} }}\n",
                    self.prefix
                ))
                .await,
            )?;
        }
        ignore_missing(ip(&["netns", "del", &names.netns]).await)?;
        ignore_missing(ip(&["link", "del", &names.veth_host]).await)?;
        self.ipam().release(job)?;
        Ok(())
    }
}

/// What containers without API access may not reach.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Fence {
    /// Ports closed on every address of this node: the agent's and the controller's.
    pub local_ports: Vec<u16>,
    /// Address and port pairs closed on other machines: the controller's.
    pub remote: Vec<(Ipv4Addr, u16)>,
}

impl Fence {
    /// The fence of an agent listening on `agent_port` whose controller is at `controller`
    /// (a URL; a host name is resolved now, and only its IPv4 addresses are fenced).
    pub async fn of(controller: Option<&str>, agent_port: u16) -> Fence {
        let mut fence = Fence {
            local_ports: vec![agent_port],
            remote: Vec::new(),
        };
        let Some(url) = controller.and_then(|c| reqwest::Url::parse(c).ok()) else {
            return fence;
        };
        let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
            return fence;
        };
        fence.local_ports.push(port);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        match tokio::net::lookup_host((host, port)).await {
            Ok(addrs) => {
                for addr in addrs {
                    if let std::net::IpAddr::V4(ip) = addr.ip() {
                        fence.remote.push((ip, port));
                    }
                }
            }
            Err(e) => tracing::warn!(
                "resolving the controller {host}: {e}; containers are kept from its port on \
                 this node's addresses only"
            ),
        }
        fence.local_ports.sort_unstable();
        fence.local_ports.dedup();
        fence.remote.sort_unstable();
        fence.remote.dedup();
        fence
    }

    /// The nft script that replaces the table's fence sets with this fence.
    pub fn script(&self, prefix: &str) -> String {
        let mut s = format!("flush set ip {prefix} api_ports\nflush set ip {prefix} api_remote\n");
        let ports: Vec<String> = self.local_ports.iter().map(u16::to_string).collect();
        if !ports.is_empty() {
            s.push_str(&format!(
                "add element ip {prefix} api_ports {{ {} }}\n",
                ports.join(", ")
            ));
        }
        let remote: Vec<String> = self
            .remote
            .iter()
            .map(|(ip, port)| format!("{ip} . {port}"))
            .collect();
        if !remote.is_empty() {
            s.push_str(&format!(
                "add element ip {prefix} api_remote {{ {} }}\n",
                remote.join(", ")
            ));
        }
        s
    }
}

/// The bridge of a prefix: `<prefix>0`.
pub fn bridge_name(prefix: &str) -> String {
    format!("{prefix}0")
}

/// Removes every network object of `prefix` from the host: job netns (`<prefix>-<8 hex>`),
/// stray veths (`<prefix>v<hex>`), the nft table and the bridge. For `paas-agent cleanup`.
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
    use super::*;

    #[tokio::test]
    async fn fences_cover_the_agent_and_the_controller() {
        let f = Fence::of(Some("http://10.1.2.3:9000/"), 7070).await;
        assert_eq!(f.local_ports, [7070, 9000]);
        assert_eq!(f.remote, [(Ipv4Addr::new(10, 1, 2, 3), 9000)]);
        assert_eq!(
            f.script("ac4"),
            "flush set ip ac4 api_ports\nflush set ip ac4 api_remote\n\
             add element ip ac4 api_ports { 7070, 9000 }\n\
             add element ip ac4 api_remote { 10.1.2.3 . 9000 }\n"
        );
        let f = Fence::of(Some("http://localhost"), 7070).await;
        assert_eq!(f.local_ports, [80, 7070]);
        assert!(f.remote.contains(&(Ipv4Addr::LOCALHOST, 80)), "{f:?}");
        let f = Fence::of(None, 7070).await;
        assert_eq!(f.script("p").lines().count(), 3);
        assert!(Fence::of(Some("not a url"), 1).await.remote.is_empty());
    }

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
