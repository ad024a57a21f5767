//! Job labels the controller sets and reads back.

pub const KIND: &str = "paas.kind";
pub const KIND_PROCESS: &str = "process";
pub const KIND_BUILD: &str = "build";
/// One-off jobs (`paas run`, cron, the release phase): the scheduler neither counts
/// nor adopts them.
pub const KIND_RUN: &str = "run";
pub const APP: &str = "paas.app";
pub const RELEASE: &str = "paas.release";
pub const TYPE: &str = "paas.type";
pub const DYNO: &str = "paas.dyno";
pub const BUILD: &str = "paas.build";
/// The app's permanent number: a job is adopted into the app of its name only when
/// the numbers match (a destroyed app's job never joins a new app of that name).
pub const APP_ID: &str = "paas.app-id";
