//! The node's address book: which job holds which container IP and which host port.
//!
//! Persisted in `state_dir/network.json` after every change (written before the network
//! is touched, so a crash leaves at worst a lease that DELETE or cleanup releases). IPs are
//! handed out lowest-free-first; host ports round-robin from a persisted cursor, so a port
//! just released is not handed out again at once. Nothing held is ever handed out twice,
//! and the agent skips a port another program on the host already listens on.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{PortRange, Subnet};

#[derive(Debug, thiserror::Error)]
pub enum IpamError {
    #[error(
        "no free address left in {subnet} ({held} jobs hold one): delete stopped jobs or \
         start the agent with a larger --subnet"
    )]
    SubnetFull { subnet: Subnet, held: usize },
    #[error(
        "no free host port left in {range} ({held} held by jobs, the rest by other programs \
         on this host): delete stopped jobs or move or widen --port-range"
    )]
    PortsExhausted { range: PortRange, held: usize },
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// One job's network lease.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lease {
    pub ip: Ipv4Addr,
    #[serde(default)]
    pub host_port: Option<u16>,
    /// The port inside the container the host port maps to.
    #[serde(default)]
    pub container_port: Option<u16>,
    /// The job may reach the API ports (its address is in the nft set `api_allowed`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub api_access: bool,
    /// The job's tenant ([`paas_api::JobSpec::tenant`]): jobs of one tenant may reach each
    /// other. None: a tenant of its own (also every lease of an agent older than the walls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<u32>,
    /// The MAC address of the job's `eth0` (`aa:bb:…`), the only one its port of the
    /// bridge lets through. None in leases of an agent older than the walls (the agent then
    /// reads it from the job's netns).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mac: Option<String>,
    /// Other tenants whose jobs may reach this one ([`paas_api::JobSpec::guests`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guests: Vec<u32>,
}

/// The MAC address the agent gives a job's `eth0`: `02:50:` and the four bytes of its IPv4
/// address (locally administered, unicast; unique on the bridge because addresses are).
pub fn mac_for(ip: Ipv4Addr) -> String {
    let [a, b, c, d] = ip.octets();
    format!("02:50:{a:02x}:{b:02x}:{c:02x}:{d:02x}")
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct File {
    #[serde(default)]
    leases: BTreeMap<String, Lease>,
    /// The next host port to try.
    #[serde(default)]
    next_port: Option<u16>,
}

/// IPAM and host-port allocation, persisted in one JSON file.
#[derive(Debug)]
pub struct Ipam {
    path: PathBuf,
    subnet: Subnet,
    ports: PortRange,
    file: File,
}

impl Ipam {
    /// Loads `path` (a missing file is an empty book).
    pub fn open(path: &Path, subnet: Subnet, ports: PortRange) -> Result<Ipam, IpamError> {
        let file = match crate::util::read_json::<File>(path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => File::default(),
            Err(source) => {
                return Err(IpamError::Io {
                    what: "reading",
                    path: path.to_path_buf(),
                    source,
                })
            }
        };
        Ok(Ipam {
            path: path.to_path_buf(),
            subnet,
            ports,
            file,
        })
    }

    /// The lease of `job`, made (and persisted) if it has none. A host port is taken when
    /// `container_port` is set.
    pub fn lease(
        &mut self,
        job: &str,
        container_port: Option<u16>,
        tenant: Option<u32>,
        guests: &[u32],
    ) -> Result<Lease, IpamError> {
        self.lease_where(job, container_port, tenant, guests, |_| true)
    }

    /// [`Ipam::lease`] handing out only a host port that `may_take` accepts (the agent
    /// passes one that binds the port on the host, so a port another program listens on
    /// is skipped and the one handed out stays the job's: see `network::holds`).
    pub fn lease_where(
        &mut self,
        job: &str,
        container_port: Option<u16>,
        tenant: Option<u32>,
        guests: &[u32],
        may_take: impl FnMut(u16) -> bool,
    ) -> Result<Lease, IpamError> {
        if let Some(lease) = self.file.leases.get(job) {
            return Ok(lease.clone());
        }
        let held_ips: Vec<Ipv4Addr> = self.file.leases.values().map(|l| l.ip).collect();
        let ip = self
            .subnet
            .job_addresses()
            .find(|ip| !held_ips.contains(ip))
            .ok_or(IpamError::SubnetFull {
                subnet: self.subnet,
                held: held_ips.len(),
            })?;
        let host_port = match container_port {
            Some(_) => Some(self.free_port(may_take)?),
            None => None,
        };
        let lease = Lease {
            ip,
            host_port,
            container_port,
            api_access: false,
            tenant,
            mac: Some(mac_for(ip)),
            guests: guests.to_vec(),
        };
        self.file.leases.insert(job.to_string(), lease.clone());
        self.save()?;
        Ok(lease)
    }

    fn free_port(&mut self, mut may_take: impl FnMut(u16) -> bool) -> Result<u16, IpamError> {
        let held: Vec<u16> = self
            .file
            .leases
            .values()
            .filter_map(|l| l.host_port)
            .collect();
        let (first, last) = (self.ports.first, self.ports.last);
        let start = self
            .file
            .next_port
            .filter(|p| self.ports.contains(*p))
            .unwrap_or(first);
        let span = u32::from(last - first) + 1;
        for i in 0..span {
            let port = (u32::from(start - first) + i) % span + u32::from(first);
            let port = port as u16;
            if !held.contains(&port) && may_take(port) {
                self.file.next_port = Some(if port == last { first } else { port + 1 });
                return Ok(port);
            }
        }
        Err(IpamError::PortsExhausted {
            range: self.ports,
            held: held.len(),
        })
    }

    /// Releases `job`'s lease (persisted). Returns what it held.
    pub fn release(&mut self, job: &str) -> Result<Option<Lease>, IpamError> {
        let lease = self.file.leases.remove(job);
        if lease.is_some() {
            self.save()?;
        }
        Ok(lease)
    }

    pub fn get(&self, job: &str) -> Option<&Lease> {
        self.file.leases.get(job)
    }

    /// Marks the job's lease as allowed to reach the API ports; None without a lease.
    pub fn allow_api(&mut self, job: &str) -> Result<Option<Lease>, IpamError> {
        let Some(lease) = self.file.leases.get_mut(job) else {
            return Ok(None);
        };
        lease.api_access = true;
        let lease = lease.clone();
        self.save()?;
        Ok(Some(lease))
    }

    /// Records the MAC address of a job whose lease has none (persisted).
    pub fn set_mac(&mut self, job: &str, mac: &str) -> Result<(), IpamError> {
        if let Some(lease) = self.file.leases.get_mut(job) {
            lease.mac = Some(mac.to_string());
            self.save()?;
        }
        Ok(())
    }

    /// Every lease, by job id.
    pub fn leases(&self) -> &BTreeMap<String, Lease> {
        &self.file.leases
    }

    fn save(&self) -> Result<(), IpamError> {
        crate::util::write_json_atomic(&self.path, &self.file).map_err(|source| IpamError::Io {
            what: "writing",
            path: self.path.clone(),
            source,
        })
    }
}
