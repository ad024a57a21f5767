//! paas-node-agent: the node daemon that runs jobs as containers for the controller.
//!
//! The agent owns everything about one node: its HTTP API ([`http`]), the image layer
//! cache ([`images`]), the bridge, IPAM, veths and nftables rules ([`network`]), the job
//! lifecycle with logs and output layers ([`jobs`]), named volumes and their size limit
//! ([`volumes`]), the heartbeat to the controller ([`heartbeat`]) and the `cleanup`
//! subcommand ([`cleanup`]). Containers themselves are
//! made by the synchronous `paas-runtime` library, always called from
//! `tokio::task::spawn_blocking`.
//!
//! See docs/node-agent.md for the API, the state dir layout and the network layout.

pub mod agent;
pub mod cleanup;
pub mod config;
pub mod du;
pub mod exec;
pub mod heartbeat;
pub mod http;
pub mod images;
pub mod jobs;
pub mod network;
pub mod register;
pub mod stats;
pub mod util;
pub mod volume_use;
pub mod volumes;

pub use agent::{serve, Agent};
pub use config::AgentConfig;
pub use http::app;
