//! The scheduler: desired formations vs observed jobs → actions.
//!
//! `plan` is the pure decision ([`plan()`], see that module for every rule).
//! The loop around it: `runner` (each pass: read the store, ask the agents, run the plan,
//! start and stop jobs, record release outcomes), `observe` (what a pass sees: store rows
//! merged with the agents' reports, health checks, the route table) and `follow` (the loop
//! of a controller that does not lead: routes and snapshot from the store).

pub mod command;
mod elected;
mod follow;
pub mod handle;
mod health;
mod inputs;
mod jobs;
pub mod labels;
mod observe;
pub mod one_off;
pub mod outcome;
pub mod plan;
pub mod restart;
mod runner;

pub use elected::run_elected;
pub use handle::{Handle, Snapshot};
pub use jobs::{process_job_spec, APP_PORT, PROFILE_PRELUDE};
pub use plan::*;
pub use runner::run;
