//! paas-controller: the brain of paas.
//!
//! Internal walls (each a module; arrows point down):
//! * `http`      – the REST API under `/v1/` and the app router that mounts everything.
//! * `git`       – smart-HTTP git receive and the pre-receive hook that runs a build.
//! * `build`     – turns a pushed commit into an image (build job on a node) and a release.
//! * `scheduler` – desired formations vs observed jobs → actions; a small loop applies them.
//! * `cron`      – app.json's `cron` entries: the schedule parser and the leader's loop that runs them.
//! * `store`     – sqlx (SQLite) persistence with numbered migrations.
//! * `registry`  – content-addressed blob store and the OCI distribution API (`/v2/`): the
//!   `paas-registry` crate (re-exported here), which depends on nothing of the controller;
//!   the controller passes in who may pull and push what.
//! * `router`    – the Host-header reverse proxy: the `paas-router` crate (re-exported
//!   here), which depends on nothing of the controller; its route table is pushed to it.
//!
//! Around them: `config` (command line, settings), `state` (the shared [`state::Controller`]),
//! `auth` (tokens), `apps` (app services shared by the API and the dashboard), `dashboard`
//! (the web UI's `Dashboard`), `files` (owner-only data dir and secrets), `names` (what
//! destroy, rename and create do with everything keyed by an app's name), `gc` (registry
//! garbage collection), `agent_client` (the node agent API), `hook` (the git
//! pre-receive hook subcommand), `standalone` (start-up, stacks, the local agent) and `util`.
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
pub mod dashboard;
mod dashboard_addons;
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
