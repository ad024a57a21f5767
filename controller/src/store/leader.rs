//! Leader election: which of the controllers sharing one store runs the scheduler loop.
//!
//! On SQLite there is one controller per store, and it always leads. On PostgreSQL the
//! leader is whoever holds a session-level advisory lock (`pg_try_advisory_lock`) on a
//! dedicated connection taken out of the pool. Advisory locks are per database, so
//! installations in separate databases of one server do not interfere.
//!
//! * A candidate tries the lock every [`RETRY`]; the first to get it leads.
//! * The leader checks its connection every [`RETRY`] (`SELECT 1`, [`CHECK_TIMEOUT`]); when
//!   the check fails it steps down at once (and tries again later). Its scheduler loop is
//!   stopped by whoever watches [`Election::watch`].
//! * When the leader's process dies, its connection closes and the server releases the lock
//!   at once, so a candidate takes over within one [`RETRY`] (plus the server noticing a
//!   dead TCP peer when the leader's host vanished without closing its sockets: keep
//!   `tcp_keepalives_*` short on such setups).

use std::time::Duration;

use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, Connection};
use tokio::sync::watch;

use super::{Backend, Store};

/// The advisory lock key of the scheduler (`"paas"` as an integer).
pub const SCHEDULER_LOCK: i64 = 0x7061_6173;
/// Time between two tries for the lock, and between two checks of a held lock.
pub const RETRY: Duration = Duration::from_secs(2);
/// How long a leader's connection check may take before it steps down.
pub const CHECK_TIMEOUT: Duration = Duration::from_secs(3);

/// A running election: says whether this controller leads right now. Dropping it stops
/// the election task (which closes the lock connection and so gives up the lead).
#[derive(Debug)]
pub struct Election {
    rx: watch::Receiver<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for Election {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

impl Election {
    /// Starts taking part in the election of `store`'s controllers (needs a tokio runtime).
    pub fn start(store: &Store) -> Election {
        match store.backend() {
            Backend::Sqlite => {
                let (tx, rx) = watch::channel(true);
                // Keep the sender alive so watchers never see a closed channel.
                let task = tokio::spawn(async move {
                    tx.closed().await;
                });
                Election {
                    rx,
                    task: Some(task),
                }
            }
            Backend::Postgres => {
                let (tx, rx) = watch::channel(false);
                let task = tokio::spawn(campaign(store.clone(), tx));
                Election {
                    rx,
                    task: Some(task),
                }
            }
        }
    }

    /// True while this controller leads.
    pub fn is_leader(&self) -> bool {
        *self.rx.borrow()
    }

    /// A receiver that changes when the lead is won or lost.
    pub fn watch(&self) -> watch::Receiver<bool> {
        self.rx.clone()
    }
}

/// Tries for the lock forever; holds it while the connection lives.
async fn campaign(store: Store, tx: watch::Sender<bool>) {
    let mut warned = false;
    loop {
        match try_lead(&store).await {
            Ok(Some(mut conn)) => {
                warned = false;
                tracing::info!("this controller now leads: it runs the scheduler loop");
                tx.send_replace(true);
                loop {
                    tokio::time::sleep(RETRY).await;
                    let check = tokio::time::timeout(CHECK_TIMEOUT, conn.ping()).await;
                    if !matches!(check, Ok(Ok(()))) {
                        tracing::warn!(
                            "lost the connection that holds the scheduler lock: this \
                             controller stops leading"
                        );
                        break;
                    }
                }
                tx.send_replace(false);
                // The lock goes with the connection.
                drop(conn);
            }
            Ok(None) => {}
            Err(e) => {
                if !warned {
                    tracing::warn!("cannot take part in the leader election (will retry): {e}");
                    warned = true;
                }
            }
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// One try: a connection of its own holding the lock, or None when another controller
/// leads.
async fn try_lead(store: &Store) -> Result<Option<AnyConnection>, sqlx::Error> {
    let mut conn: PoolConnection<Any> = store.pool().acquire().await?;
    let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)")
        .bind(SCHEDULER_LOCK)
        .fetch_one(&mut *conn)
        .await?;
    if got {
        // Out of the pool: the lock must live exactly as long as this connection.
        Ok(Some(conn.detach()))
    } else {
        Ok(None)
    }
}
