//! The backend connections of one router thread: HTTP/1.1 keep-alive connections
//! (`hyper::client::conn::http1`) kept idle per backend address and reused, newest first.
//! Replaces hyper-util's general-purpose pool on the request path: no pool key hashing with
//! SipHash, no boxed connect futures, and a connection goes back to the pool when its
//! response body ends (the body holds it), instead of through a spawned task per request.
//!
//! A request whose connection turns out closed before anything was written (a backend that
//! dropped an idle keep-alive connection) is sent again on a new connection.

use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper_util::rt::TokioIo;

use super::exchange::OutBody;
use super::idle::IdleLists;

/// Why a request got no response from its backend.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SendError {
    /// No connection could be made: nothing was sent, another backend may be tried.
    #[error("connecting failed: {0}")]
    Connect(#[source] std::io::Error),
    #[error("connecting timed out after {0:?}")]
    ConnectTimeout(Duration),
    #[error("the HTTP/1.1 handshake failed: {0}")]
    Handshake(#[source] hyper::Error),
    /// The request (or part of it) was sent.
    #[error("{0}")]
    Request(#[source] hyper::Error),
}

impl SendError {
    /// True when nothing reached the backend (safe to try another).
    pub(crate) fn is_connect(&self) -> bool {
        matches!(
            self,
            SendError::Connect(_) | SendError::ConnectTimeout(_) | SendError::Handshake(_)
        )
    }
}

/// One thread's idle backend connections. Cheap to clone.
#[derive(Clone)]
pub(crate) struct Pool {
    idle: IdleLists<SendRequest<OutBody>>,
    connect_timeout: Duration,
}

/// A connection lent to one request; [`Lease::release`] gives it back once the response
/// body has ended.
pub(crate) struct Lease {
    conn: SendRequest<OutBody>,
    addr: String,
    pool: Pool,
}

impl Lease {
    /// Puts the connection back for the next request (a closed one is dropped).
    pub(crate) fn release(self) {
        if self.conn.is_closed() {
            return;
        }
        self.pool.idle.put(self.addr, self.conn, |c| !c.is_closed());
    }
}

impl Pool {
    pub(crate) fn new(connect_timeout: Duration, idle_timeout: Duration) -> Pool {
        Pool {
            idle: IdleLists::new(idle_timeout),
            connect_timeout,
        }
    }

    /// The newest idle connection to `addr` that is still usable.
    fn take_idle(&self, addr: &str) -> Option<SendRequest<OutBody>> {
        self.idle.take(addr, |c| !c.is_closed())
    }

    async fn connect(&self, addr: &str) -> Result<SendRequest<OutBody>, SendError> {
        let stream =
            tokio::time::timeout(self.connect_timeout, tokio::net::TcpStream::connect(addr))
                .await
                .map_err(|_| SendError::ConnectTimeout(self.connect_timeout))?
                .map_err(SendError::Connect)?;
        let _ = stream.set_nodelay(true);
        super::raw::unacked_timeout(&stream);
        let (send, conn) = http1::handshake(TokioIo::new(stream))
            .await
            .map_err(SendError::Handshake)?;
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!(error = %e, "backend connection ended with an error");
            }
        });
        Ok(send)
    }

    /// Sends `req` to `addr` on an idle connection (or a new one); the lease goes with the
    /// response and must be released when its body ended.
    pub(crate) async fn send(
        &self,
        addr: &str,
        mut req: Request<OutBody>,
    ) -> Result<(Response<Incoming>, Lease), SendError> {
        // Idle connections first; one the backend closed meanwhile gives the request back.
        while let Some(mut conn) = self.take_idle(addr) {
            if conn.ready().await.is_err() {
                continue;
            }
            match conn.try_send_request(req).await {
                Ok(resp) => return Ok((resp, self.lease(conn, addr))),
                Err(mut e) => match e.take_message() {
                    Some(back) => req = back,
                    None => return Err(SendError::Request(e.into_error())),
                },
            }
        }
        let mut conn = self.connect(addr).await?;
        match conn.send_request(req).await {
            Ok(resp) => Ok((resp, self.lease(conn, addr))),
            Err(e) => Err(SendError::Request(e)),
        }
    }

    fn lease(&self, conn: SendRequest<OutBody>, addr: &str) -> Lease {
        Lease {
            conn,
            addr: addr.to_string(),
            pool: self.clone(),
        }
    }
}
