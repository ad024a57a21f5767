//! Scheduled jobs from app.json's `cron` (`[{"command": "…", "schedule": "*/10 * * * *"}]`):
//! [`schedule`] parses the standard five-field syntax (UTC) and finds the next run;
//! [`runner`] is the leader's loop that starts each entry as a one-off job of the app's
//! current release when its time comes, and answers `GET /v1/apps/{app}/cron`.

pub mod runner;
pub mod schedule;

pub use schedule::{Schedule, ScheduleError};
