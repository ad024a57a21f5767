//! Idle keep-alive backend connections of one router thread, per backend address, newest
//! first: the list both backend pools keep (hyper's client connections in `pool`, the fast
//! path's sockets in `raw`). A connection idle longer than the timeout is never handed out;
//! every [`SWEEP`] a `put` also drops the expired ones and those the pool says are dead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often the idle lists are swept for closed or expired connections.
const SWEEP: Duration = Duration::from_secs(10);

struct Lists<C> {
    by_addr: HashMap<String, Vec<(C, Instant)>>,
    swept: Option<Instant>,
}

/// Idle connections per address. Cheap to clone (clones share the lists).
pub(crate) struct IdleLists<C> {
    lists: Arc<Mutex<Lists<C>>>,
    timeout: Duration,
}

impl<C> Clone for IdleLists<C> {
    fn clone(&self) -> Self {
        IdleLists {
            lists: Arc::clone(&self.lists),
            timeout: self.timeout,
        }
    }
}

impl<C> IdleLists<C> {
    pub(crate) fn new(timeout: Duration) -> IdleLists<C> {
        IdleLists {
            lists: Arc::new(Mutex::new(Lists {
                by_addr: HashMap::new(),
                swept: None,
            })),
            timeout,
        }
    }

    /// The newest connection to `addr` idle for less than the timeout that `usable`
    /// accepts; older or refused ones on the way are dropped.
    pub(crate) fn take(&self, addr: &str, usable: impl Fn(&C) -> bool) -> Option<C> {
        let mut lists = self.lists.lock().unwrap_or_else(|e| e.into_inner());
        let list = lists.by_addr.get_mut(addr)?;
        while let Some((conn, since)) = list.pop() {
            if since.elapsed() < self.timeout && usable(&conn) {
                return Some(conn);
            }
        }
        None
    }

    /// Keeps `conn` for the next request to `addr`; when a sweep is due, drops every
    /// expired connection and every one `alive` refuses.
    pub(crate) fn put(&self, addr: String, conn: C, alive: impl Fn(&C) -> bool) {
        let mut lists = self.lists.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        lists.by_addr.entry(addr).or_default().push((conn, now));
        if lists.swept.is_none_or(|t| now.duration_since(t) > SWEEP) {
            lists.swept = Some(now);
            let timeout = self.timeout;
            for list in lists.by_addr.values_mut() {
                list.retain(|(c, since)| alive(c) && now.duration_since(*since) < timeout);
            }
            lists.by_addr.retain(|_, l| !l.is_empty());
        }
    }
}
