//! The API fence: what containers without API access may not reach (the agent's API port
//! and the controller's, on this node's addresses and on the controller's machine). The
//! sets it fills (`api_ports`, `api_remote`) and the rules that use them are in the ip
//! table ([`super::tables`]).

use std::net::Ipv4Addr;

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
}
