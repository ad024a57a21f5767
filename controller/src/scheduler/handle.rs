//! [`Handle`]: the scheduler's side of the controller's shared state (wake-ups, jobs in
//! flight, the last pass's [`Snapshot`]). It holds data only; the loop that fills it is
//! `runner`.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use tokio::sync::{watch, Notify};

use super::plan::ObservedJob;

pub(super) type ProcessKey = (String, String, u32);

#[derive(Default)]
pub(super) struct Inflight {
    pub(super) starting: HashSet<String>,
    pub(super) stopping: HashSet<String>,
    pub(super) failed_starts: Vec<(ProcessKey, String)>,
    /// Jobs to replace with zero downtime (restart, resize): see [`Handle::replace`].
    pub(super) replace: HashSet<String>,
    /// Jobs to stop now (the formation starts a replacement): see [`Handle::stop`].
    pub(super) stop: HashSet<String>,
}

/// What the last pass saw, for the build (waiting for a deploy) and the app status.
#[derive(Debug, Default, Clone)]
pub struct Snapshot {
    pub pass: u64,
    pub jobs: Vec<ObservedJob>,
    /// App → the ids of the jobs the router sends it to.
    pub routed: HashMap<String, Vec<String>>,
    /// (app, release) → how many times its jobs crashed in a row (reset once one of them
    /// is healthy); those are restarted with a growing delay.
    pub crashing: HashMap<(String, u32), u32>,
    /// (app, release) → why, when a web job of the release failed all the startup tries
    /// of the release's app.json health check.
    pub failed_checks: HashMap<(String, u32), String>,
    /// (app, process type) → why its job cannot start now (the node holding its volume
    /// is down): `paas ps` shows it as pending with this reason.
    pub waiting: HashMap<(String, String), String>,
}

/// The scheduler's side of [`Controller`]: wake-ups, jobs in flight, the last snapshot.
pub struct Handle {
    pub(super) notify: Notify,
    inflight: Mutex<Inflight>,
    pub(super) snapshot: watch::Sender<Arc<Snapshot>>,
}

impl Default for Handle {
    fn default() -> Self {
        Handle::new()
    }
}

impl Handle {
    pub fn new() -> Handle {
        Handle {
            notify: Notify::new(),
            inflight: Mutex::new(Inflight::default()),
            snapshot: watch::channel(Arc::new(Snapshot::default())).0,
        }
    }

    /// Runs a pass soon (a release changed, a node appeared, a job finished).
    pub fn notify(&self) {
        self.notify.notify_one();
    }

    /// The snapshot of every pass from now on.
    pub fn subscribe(&self) -> watch::Receiver<Arc<Snapshot>> {
        self.snapshot.subscribe()
    }

    pub fn snapshot(&self) -> Arc<Snapshot> {
        Arc::clone(&self.snapshot.borrow())
    }

    /// Replaces these jobs with zero downtime: new ones start, the named ones stop once the
    /// new ones are up and healthy. Kept in memory: a controller restart forgets it.
    pub fn replace(&self, ids: impl IntoIterator<Item = String>) {
        self.with(|i| i.replace.extend(ids));
        self.notify();
    }

    /// Stops this job now; its formation starts a replacement.
    pub fn stop(&self, id: String) {
        self.with(|i| i.stop.insert(id));
        self.notify();
    }

    pub(super) fn with<T>(&self, f: impl FnOnce(&mut Inflight) -> T) -> T {
        f(&mut self.inflight.lock().unwrap_or_else(|e| e.into_inner()))
    }
}
