//! paas-controller: the brain of paas.
//!
//! Internal walls (each a module; arrows point down):
//! * `http`      – the REST API under `/v1/` and the app router that mounts everything.
//! * `git`       – smart-HTTP git receive and the pre-receive hook that runs a build.
//! * `build`     – turns a pushed commit into an image (build job on a node) and a release.
//! * `scheduler` – desired formations vs observed jobs → actions; a small loop applies them.
//! * `store`     – sqlx (SQLite) persistence with numbered migrations.
//! * `registry`  – content-addressed blob store and the OCI distribution API (`/v2/`).
//! * `router`    – the Host-header reverse proxy; its route table is pushed to it and it
//!   never touches the store.

pub mod registry;
pub mod router;
