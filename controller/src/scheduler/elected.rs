//! Runs the scheduler loop only while this controller leads ([`crate::store::leader`]):
//! on SQLite always; on PostgreSQL while it holds the scheduler lock. A controller that does
//! not lead runs [`super::follow::follow`] instead (routes and snapshot from the store), and
//! switches when the lead is won or lost. On PostgreSQL every controller also follows the
//! store's certificates and HTTPS redirects ([`crate::routing::watch_certs`]). The leader
//! also orders automatic certificates ([`crate::acme::renew_loop`]) and runs the periodic
//! registry gc ([`crate::gc::run_periodic`]) and app.json's cron ([`crate::cron::runner`]).

use std::sync::Arc;

use crate::state::Controller;
use crate::store::leader::Election;

/// Takes part in the election and runs the loop that fits, forever.
pub async fn run_elected(c: Arc<Controller>) {
    let election = Election::start(&c.store);
    // Other controllers may change certificates and HTTPS redirects: follow the store.
    let _certs = (c.store.backend() == crate::store::Backend::Postgres).then(|| {
        AbortOnDrop(tokio::spawn(crate::routing::watch_certs(
            c.store.clone(),
            c.routes.clone(),
        )))
    });
    let mut rx = election.watch();
    loop {
        let leading = *rx.borrow_and_update();
        let task = if leading {
            tokio::spawn(super::runner::run(Arc::clone(&c)))
        } else {
            tokio::spawn(super::follow::follow(Arc::clone(&c)))
        };
        // Automatic certificates and the periodic registry gc run on the leader only.
        let acme = leading.then(|| tokio::spawn(crate::acme::renew_loop(Arc::clone(&c))));
        let gc = leading.then(|| {
            tokio::spawn(crate::gc::run_periodic(
                c.store.clone(),
                c.registry.clone(),
                c.settings.gc.clone(),
            ))
        });
        // app.json's cron entries run from the leader only (crate::cron::runner).
        let cron = leading.then(|| tokio::spawn(crate::cron::runner::run(Arc::clone(&c))));
        // Add-on jobs are started, checked and restarted by the leader (crate::addons).
        let addons = leading.then(|| tokio::spawn(crate::addons::supervisor::run(Arc::clone(&c))));
        let changed = rx.wait_for(|now| *now != leading).await.is_ok();
        task.abort();
        if let Some(cron) = cron {
            cron.abort();
        }
        if let Some(addons) = addons {
            addons.abort();
        }
        if let Some(gc) = gc {
            gc.abort();
        }
        if let Some(acme) = acme {
            acme.abort();
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

/// Aborts a task when dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
