//! paas-controller: the brain of paas.
//!
//! Internal walls, from the top down (a module names only what stands below it; circles
//! stay inside one folder; `tests/walls.rs` checks both from the source):
//! * `http`      – the REST API under `/v1/`, the dashboard's side (`http::dashboard`, the
//!   web UI's `Dashboard` answered by the API's own functions), `/internal/` (build inputs,
//!   the router feed) and the app router that mounts everything.
//! * services, each taking the shared [`state::Controller`]: `git` (smart-HTTP receive),
//!   `builder` (a pushed commit → image and release), `scheduler` (its loop; the pure
//!   `scheduler::plan` takes plain values), `addons`, `cron`, `acme`, `apps`, `names`
//!   (what destroy, rename and create do with everything keyed by an app's name),
//!   `volumes`, `routing` (route table and certificates from the store), `gc`, `backup`.
//! * `state`     – the shared [`state::Controller`]: settings, store, registry, tokens,
//!   route table, the scheduler's handle, the agent client.
//! * the ground it stands on, none of which names `state`: `store` (sqlx, SQLite or
//!   PostgreSQL, numbered migrations), `config`, `auth::tokens` and `auth::limit`,
//!   `api_error`, `agent_client`, `router_peers`, `registry_client::logins`,
//!   `scheduler::{plan, handle}`, `acme::account`, `job_stats`, `files`, `util`; and the
//!   crates `paas-registry` and `paas-router` (re-exported as `registry` and `router`),
//!   which depend on nothing of the controller.
//!
//! `auth` (who is calling) stands above `state`; `hook` (the git pre-receive hook
//! subcommand) and `standalone` (start-up, stacks, the local agent and router) on top.
//! See docs/controller.md.

pub mod acme;
pub mod addons;
pub mod agent_client;
pub mod api_error;
pub mod apps;
pub mod auth;
pub mod backup;
pub mod builder;
pub mod config;
pub mod cron;
pub mod files;
pub mod gc;
pub mod git;
pub mod hook;
pub mod http;
pub mod job_stats;
pub mod local_agent;
pub mod names;
/// The registry is its own crate (`paas-registry`); this keeps `crate::registry::…` paths
/// working. New code names `paas_registry` directly.
pub use paas_registry as registry;
pub mod registry_client;
pub use paas_router as router;
pub mod router_peers;
pub mod router_supervisor;
pub mod routing;
pub mod scheduler;
pub mod standalone;
pub mod state;
pub mod store;
pub mod util;
pub mod volumes;
