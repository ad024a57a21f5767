//! The host ports the node's jobs hold, kept bound by the agent.
//!
//! A job's host port is DNATed to the job in the nat hooks, for every local address and
//! before any socket is looked up (see [`super::tables`]): a program on the host listening
//! on the same port would lose every connection to the job without a word. So the agent
//! hands out only a port it can bind on `0.0.0.0`, and keeps that socket listening as long
//! as the lease lasts (docker-proxy holds its ports the same way): a port another program
//! listens on is skipped, nothing on the host can bind a job's port meanwhile, and
//! `ss -ltnp` names the agent as the port's owner. The socket is never accepted on; DNAT
//! sends the connections to the job first. A restarted agent binds its leases' ports again
//! ([`super::NetworkManager::ensure_node`]); one taken meanwhile is logged, and its job's
//! mapping still wins.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::sync::Mutex;

#[derive(Debug, Default)]
pub struct Holds {
    held: Mutex<BTreeMap<u16, TcpListener>>,
}

impl Holds {
    fn held(&self) -> std::sync::MutexGuard<'_, BTreeMap<u16, TcpListener>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Binds `port` on every IPv4 address of the host and keeps it: false when another
    /// program has it (or it cannot be bound at all).
    pub fn take(&self, port: u16) -> bool {
        if self.held().contains_key(&port) {
            return true;
        }
        match TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)) {
            Ok(socket) => {
                self.held().insert(port, socket);
                true
            }
            Err(e) => {
                tracing::info!(port, error = %e, "host port skipped: another program has it");
                false
            }
        }
    }

    /// [`Holds::take`] for a port `job` already holds (an agent restart, a job set up
    /// again): a port another program took meanwhile is only logged.
    pub fn keep(&self, port: u16, job: &str) {
        if !self.take(port) {
            tracing::warn!(
                port,
                job,
                "another program on this host binds the job's host port: its connections \
                 to that port reach the job (stop that program, or redeploy the job for \
                 another port)"
            );
        }
    }

    /// Lets `port` go (the job's lease ended).
    pub fn release(&self, port: u16) {
        self.held().remove(&port);
    }

    /// The ports held now, lowest first.
    pub fn ports(&self) -> Vec<u16> {
        self.held().keys().copied().collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_port_another_socket_listens_on_is_not_taken_and_a_taken_one_is_kept() {
        let other = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let busy = other.local_addr().unwrap().port();
        let holds = Holds::default();
        assert!(!holds.take(busy), "port {busy} is another socket's");
        assert!(holds.ports().is_empty());

        // A port of our own: nobody else can listen on it until it is released.
        let free = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let port = free.local_addr().unwrap().port();
        drop(free);
        assert!(holds.take(port));
        assert!(holds.take(port), "taking a held port again is fine");
        assert_eq!(holds.ports(), vec![port]);
        assert!(TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_err());
        holds.release(port);
        assert!(holds.ports().is_empty());
        assert!(TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok());
    }
}
