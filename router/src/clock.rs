//! Wall-clock stamps for access lines and certificate dates: the one copy lives in
//! `paas_api::clock` (shared with the controller and the registry); re-exported so
//! `crate::clock::…` keeps its meaning here.

pub use paas_api::clock::{rfc3339_from_micros, rfc3339_from_ms, unix_micros};
