//! Runs the scheduler loop only while this controller leads ([`crate::store::leader`]):
//! on SQLite always; on PostgreSQL while it holds the scheduler lock. A controller that does
//! not lead runs [`super::runner::follow`] instead (routes and snapshot from the store), and
//! switches when the lead is won or lost. The leader also runs the periodic registry gc
//! ([`crate::gc::run_periodic`]).

use std::sync::Arc;

use crate::state::Controller;
use crate::store::leader::Election;

/// Takes part in the election and runs the loop that fits, forever.
pub async fn run_elected(c: Arc<Controller>) {
    let election = Election::start(&c.store);
    let mut rx = election.watch();
    loop {
        let leading = *rx.borrow_and_update();
        let task = if leading {
            tokio::spawn(super::runner::run(Arc::clone(&c)))
        } else {
            tokio::spawn(super::runner::follow(Arc::clone(&c)))
        };
        // The periodic registry gc runs on the leader only.
        let gc = leading.then(|| {
            tokio::spawn(crate::gc::run_periodic(
                c.store.clone(),
                c.registry.clone(),
                c.settings.gc.clone(),
            ))
        });
        let changed = rx.wait_for(|now| *now != leading).await.is_ok();
        task.abort();
        if let Some(gc) = gc {
            gc.abort();
        }
        if leading {
            tracing::warn!("stopped the scheduler loop: this controller no longer leads");
        }
        if !changed {
            tracing::error!("the leader election ended: no scheduler loop runs here any more");
            return;
        }
    }
}
