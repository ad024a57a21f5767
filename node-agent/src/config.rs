//! The agent's command line (`paas-agent …` and `paas-agent cleanup …`) and the validated
//! configuration the rest of the agent reads.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::str::FromStr;

use clap::{Args, Parser, Subcommand};

/// Errors in the command line values.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "invalid subnet {value:?}: {why} (expected an IPv4 CIDR such as 10.88.0.0/24, \
         /16 to /29)"
    )]
    Subnet { value: String, why: String },
    #[error("invalid port range {value:?}: {why} (expected FIRST-LAST, e.g. 20000-29999)")]
    PortRange { value: String, why: String },
    #[error(
        "invalid prefix {value:?}: a prefix is 1 to 10 lowercase letters and digits, starting \
         with a letter (it names the bridge, nftables table, cgroups and netns)"
    )]
    Prefix { value: String },
    #[error("--token is required (or set PAAS_NODE_TOKEN): every API call is checked against it")]
    MissingToken,
    #[error(
        "invalid --userns-range {value:?}: {why} (expected FIRST:COUNT host ids, e.g. \
         1073741824:268435456; FIRST at least 65536, COUNT at least 65536, and FIRST+COUNT \
         at most 4294967295)"
    )]
    UsernsRange { value: String, why: String },
}

/// `paas-agent`: the node daemon. Without a subcommand it serves the agent API.
#[derive(Debug, Parser)]
#[command(
    name = "paas-agent",
    version,
    about,
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
    #[command(flatten)]
    pub serve: ServeArgs,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Kill and delete every container of the state dir, remove the jobs' netns and veths,
    /// the nftables table and the bridge. Leaves named volumes and the layer cache.
    Cleanup(CleanupArgs),
}

/// Flags of the serving agent.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Base URL of the controller, for heartbeats (`POST {URL}/v1/nodes/heartbeat`). Without
    /// it the agent serves its API but sends no heartbeat.
    #[arg(long, env = "PAAS_CONTROLLER")]
    pub controller: Option<String>,
    /// The node token: required on every API call, sent on heartbeats and registry pulls.
    #[arg(long, env = "PAAS_NODE_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Name of this node (default: the host name).
    #[arg(long)]
    pub node_name: Option<String>,
    /// Address to serve the API on; port 0 picks a free port.
    #[arg(long, default_value = "127.0.0.1:0")]
    pub listen: SocketAddr,
    /// Where containers, layers, jobs and volumes are kept.
    #[arg(long, default_value = "/var/lib/paas/agent")]
    pub state_dir: PathBuf,
    /// Prefix of every host-global name (bridge `<prefix>0`, table `ip <prefix>`, …).
    #[arg(long, default_value = "paas")]
    pub prefix: String,
    /// The containers' subnet; its first address goes on the bridge. `auto`: ask the
    /// controller for one (from its --cluster-cidr; kept in <state-dir>/subnet).
    #[arg(long, default_value = "10.88.0.0/24")]
    pub subnet: String,
    /// Host ports handed out for job ports, FIRST-LAST.
    #[arg(long, default_value = "20000-29999")]
    pub port_range: String,
    /// The address other machines reach this node at. Loopback means a single machine:
    /// jobs are then reported at their bridge address.
    #[arg(long, default_value = "127.0.0.1")]
    pub advertise_addr: Ipv4Addr,
    /// Root of the cgroup filesystem.
    #[arg(long, default_value = "/sys/fs/cgroup", hide = true)]
    pub cgroup_root: PathBuf,
    /// The most timestamped log kept per job, in bytes (the oldest half is dropped when
    /// it is full; see docs/node-agent.md, "Logs").
    #[arg(long, default_value_t = crate::jobs::capture::DEFAULT_CAP_BYTES)]
    pub job_log_bytes: u64,
    /// The most bytes of unpacked image layers kept (20 GiB); least recently used layers
    /// no job uses are removed past it. 0: no limit.
    #[arg(long, default_value_t = crate::images::prune::DEFAULT_BUDGET_BYTES)]
    pub layer_cache_bytes: u64,
    /// Leave IPv6 on inside jobs' network namespaces (off by default: no IPv6 address at
    /// all, `::1` included). Either way no IPv6 frame leaves a job's port of the bridge.
    #[arg(long)]
    pub job_ipv6: bool,
    /// Host uids and gids for the jobs' user namespaces, FIRST:COUNT: each app (and each
    /// job of no app) gets 65536 of them of its own, kept in <state-dir>/userns.json.
    /// Agents sharing a machine need disjoint ranges.
    #[arg(long, env = "PAAS_AGENT_USERNS_RANGE", default_value = DEFAULT_USERNS_RANGE)]
    pub userns_range: String,
    /// How long to wait for another agent of the state dir to give up its lock (a
    /// handover) before giving up.
    #[arg(long, default_value_t = 20)]
    pub lock_wait_secs: u64,
}

/// Default `--userns-range`: 4096 ranges of 65536 ids from 2^30, far above the ids of
/// system and login users (and of /etc/subuid's usual 100000).
pub const DEFAULT_USERNS_RANGE: &str = "1073741824:268435456";

/// Flags of `paas-agent cleanup`.
#[derive(Debug, Args)]
pub struct CleanupArgs {
    #[arg(long, default_value = "/var/lib/paas/agent")]
    pub state_dir: PathBuf,
    #[arg(long, default_value = "paas")]
    pub prefix: String,
    #[arg(long, default_value = "/sys/fs/cgroup", hide = true)]
    pub cgroup_root: PathBuf,
}

/// The validated configuration of a serving agent.
#[derive(Debug, Clone)]
pub struct AgentConfig {
    pub controller: Option<String>,
    pub token: String,
    pub node_name: String,
    pub listen: SocketAddr,
    pub state_dir: PathBuf,
    pub prefix: String,
    pub subnet: Subnet,
    pub port_range: PortRange,
    pub advertise_addr: Ipv4Addr,
    pub cgroup_root: PathBuf,
    /// The per-job cap of the timestamped log (`--job-log-bytes`).
    pub job_log_bytes: u64,
    /// The layer cache's budget (`--layer-cache-bytes`; None: no limit).
    pub layer_cache_bytes: Option<u64>,
    /// IPv6 stays on in job netns (`--job-ipv6`).
    pub job_ipv6: bool,
    /// Host ids for the jobs' user namespaces (`--userns-range`).
    pub userns_range: UsernsRange,
    /// How long to wait for the state dir's lock (`--lock-wait-secs`).
    pub lock_wait: std::time::Duration,
}

impl AgentConfig {
    /// Validates the serve flags.
    pub fn from_args(args: ServeArgs) -> Result<AgentConfig, ConfigError> {
        let token = args
            .token
            .filter(|t| !t.is_empty())
            .ok_or(ConfigError::MissingToken)?;
        validate_prefix(&args.prefix)?;
        Ok(AgentConfig {
            controller: args.controller.map(|c| c.trim_end_matches('/').to_string()),
            token,
            node_name: args.node_name.unwrap_or_else(host_name),
            listen: args.listen,
            state_dir: args.state_dir,
            prefix: args.prefix,
            subnet: args.subnet.parse()?,
            port_range: args.port_range.parse()?,
            advertise_addr: args.advertise_addr,
            cgroup_root: args.cgroup_root,
            job_log_bytes: args.job_log_bytes.max(crate::jobs::capture::MIN_CAP_BYTES),
            layer_cache_bytes: (args.layer_cache_bytes > 0).then_some(args.layer_cache_bytes),
            job_ipv6: args.job_ipv6,
            userns_range: args.userns_range.parse()?,
            lock_wait: std::time::Duration::from_secs(args.lock_wait_secs),
        })
    }
}

/// Checks a host-global name prefix: `[a-z][a-z0-9]{0,9}`. No dash, so `<prefix>-<hash>`
/// netns names of different prefixes never look alike; at most 10 characters so veth
/// names (`<prefix>v<hash>`) fit the kernel's 15.
pub fn validate_prefix(prefix: &str) -> Result<(), ConfigError> {
    let mut chars = prefix.chars();
    let ok = (1..=10).contains(&prefix.len())
        && chars.next().is_some_and(|c| c.is_ascii_lowercase())
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(ConfigError::Prefix {
            value: prefix.to_string(),
        })
    }
}

/// This machine's host name (the default node name).
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "node".to_string())
}

/// An IPv4 subnet. The first host address is the bridge (gateway); jobs get the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subnet {
    pub network: Ipv4Addr,
    pub prefix_len: u8,
}

impl Subnet {
    fn mask(&self) -> u32 {
        u32::MAX << (32 - u32::from(self.prefix_len))
    }

    /// The bridge's address: network + 1.
    pub fn gateway(&self) -> Ipv4Addr {
        Ipv4Addr::from(u32::from(self.network) + 1)
    }

    /// Addresses for jobs: network + 2 up to broadcast − 1.
    pub fn job_addresses(&self) -> impl Iterator<Item = Ipv4Addr> {
        let net = u32::from(self.network);
        let broadcast = net | !self.mask();
        (net + 2..broadcast).map(Ipv4Addr::from)
    }

    pub fn contains(&self, ip: Ipv4Addr) -> bool {
        u32::from(ip) & self.mask() == u32::from(self.network)
    }
}

impl fmt::Display for Subnet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix_len)
    }
}

impl FromStr for Subnet {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<Subnet, ConfigError> {
        let err = |why: &str| ConfigError::Subnet {
            value: s.to_string(),
            why: why.to_string(),
        };
        let (addr, len) = s.split_once('/').ok_or_else(|| err("no /length"))?;
        let addr: Ipv4Addr = addr.parse().map_err(|_| err("not an IPv4 address"))?;
        let prefix_len: u8 = len.parse().map_err(|_| err("bad prefix length"))?;
        if !(16..=29).contains(&prefix_len) {
            return Err(err("prefix length out of range"));
        }
        let subnet = Subnet {
            network: addr,
            prefix_len,
        };
        if u32::from(addr) & !subnet.mask() != 0 {
            return Err(err("host bits are set"));
        }
        Ok(subnet)
    }
}

/// An inclusive range of host ports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortRange {
    pub first: u16,
    pub last: u16,
}

impl PortRange {
    pub fn contains(&self, port: u16) -> bool {
        (self.first..=self.last).contains(&port)
    }
}

impl fmt::Display for PortRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.first, self.last)
    }
}

impl FromStr for PortRange {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<PortRange, ConfigError> {
        let err = |why: &str| ConfigError::PortRange {
            value: s.to_string(),
            why: why.to_string(),
        };
        let (a, b) = s.split_once('-').ok_or_else(|| err("no dash"))?;
        let first: u16 = a.trim().parse().map_err(|_| err("FIRST is not a port"))?;
        let last: u16 = b.trim().parse().map_err(|_| err("LAST is not a port"))?;
        if first == 0 || first > last {
            return Err(err("FIRST must be 1 or more and not above LAST"));
        }
        Ok(PortRange { first, last })
    }
}

/// Host ids `first..first+count` for the jobs' user namespaces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UsernsRange {
    pub first: u32,
    pub count: u32,
}

impl fmt::Display for UsernsRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.first, self.count)
    }
}

impl FromStr for UsernsRange {
    type Err = ConfigError;

    fn from_str(s: &str) -> Result<UsernsRange, ConfigError> {
        let err = |why: &str| ConfigError::UsernsRange {
            value: s.to_string(),
            why: why.to_string(),
        };
        let (a, b) = s.split_once(':').ok_or_else(|| err("no colon"))?;
        let first: u32 = a.trim().parse().map_err(|_| err("FIRST is not a number"))?;
        let count: u32 = b.trim().parse().map_err(|_| err("COUNT is not a number"))?;
        if first < 65_536 {
            return Err(err("FIRST is below 65536, among the host's own users"));
        }
        if count < 65_536 {
            return Err(err("COUNT is below 65536, the ids of one job"));
        }
        if u64::from(first) + u64::from(count) > u64::from(u32::MAX) {
            return Err(err("the range ends past the last id, 4294967294"));
        }
        Ok(UsernsRange { first, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subnet_parses_and_enumerates() {
        let s: Subnet = "10.200.3.0/24".parse().unwrap();
        assert_eq!(s.gateway(), Ipv4Addr::new(10, 200, 3, 1));
        let all: Vec<_> = s.job_addresses().collect();
        assert_eq!(all.first(), Some(&Ipv4Addr::new(10, 200, 3, 2)));
        assert_eq!(all.last(), Some(&Ipv4Addr::new(10, 200, 3, 254)));
        assert!(s.contains(Ipv4Addr::new(10, 200, 3, 77)));
        assert!(!s.contains(Ipv4Addr::new(10, 200, 4, 1)));
        assert!("10.200.3.1/24".parse::<Subnet>().is_err());
        assert!("10.200.3.0".parse::<Subnet>().is_err());
        assert!("10.200.3.0/30".parse::<Subnet>().is_err());
    }

    #[test]
    fn port_range_parses() {
        let r: PortRange = "20000-20010".parse().unwrap();
        assert_eq!((r.first, r.last), (20000, 20010));
        assert!("5-1".parse::<PortRange>().is_err());
        assert!("x-1".parse::<PortRange>().is_err());
    }

    #[test]
    fn userns_range_parses() {
        let r: UsernsRange = DEFAULT_USERNS_RANGE.parse().unwrap();
        assert_eq!((r.first, r.count), (1 << 30, 1 << 28));
        assert_eq!(r.to_string(), DEFAULT_USERNS_RANGE);
        for (bad, why) in [
            ("100000", "no colon"),
            ("1000:65536", "below 65536"),
            ("100000:1000", "COUNT is below"),
            ("4294901760:65536", "past the last id"),
            ("x:65536", "FIRST is not"),
        ] {
            let e = bad.parse::<UsernsRange>().unwrap_err().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    #[test]
    fn prefixes() {
        assert!(validate_prefix("paas").is_ok());
        assert!(validate_prefix("na1f2e").is_ok());
        for bad in ["", "Paas", "1a", "a-b", "abcdefghijk"] {
            assert!(validate_prefix(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cli_parses_cleanup_and_serve() {
        let cli = Cli::parse_from([
            "paas-agent",
            "cleanup",
            "--state-dir",
            "/x",
            "--prefix",
            "t1",
        ]);
        match cli.command {
            Some(Command::Cleanup(a)) => assert_eq!(a.prefix, "t1"),
            None => panic!("expected cleanup"),
        }
        let cli = Cli::parse_from(["paas-agent", "--token", "t", "--subnet", "10.200.9.0/24"]);
        let config = AgentConfig::from_args(cli.serve).unwrap();
        assert_eq!(config.prefix, "paas");
        assert_eq!(config.layer_cache_bytes, Some(20 << 30));
        assert_eq!(
            config.port_range,
            PortRange {
                first: 20000,
                last: 29999
            }
        );
    }
}
