//! How a request goes to a backend: the [`Exchange`] step that `proxy`'s attempt loop
//! runs once per attempt, in two kinds: [`RawExchange`] (bodyless requests on the fast
//! path, `raw`) and [`HyperExchange`] (bodies and upgrades through hyper's client, `pool`,
//! with the client's body in a shared slot so a second attempt can still send it).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use http::uri::PathAndQuery;
use http::{HeaderMap, Method, Request, Response, Uri, Version};
use hyper::body::{Body, Frame, Incoming, SizeHint};

use super::pool::{Lease, Pool, SendError};
use super::raw::{RawBody, RawError, RawPool};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One way of sending the request to a backend and reading its response head, for
/// `Proxy::attempts`: the fast path ([`RawExchange`]) or hyper's client
/// ([`HyperExchange`]). Generic, so the loop is compiled for each without boxing.
pub(super) trait Exchange {
    type Reply;
    type Failure: std::error::Error + Send + Sync + 'static;

    /// Sends the request to `addr`; `last` when no attempt follows (it may use the request
    /// up instead of copying it).
    fn send<'a>(
        &'a mut self,
        addr: &'a str,
        last: bool,
    ) -> impl Future<Output = Result<Self::Reply, Self::Failure>> + 'a;

    /// True when `failure` left the backend untouched, so the next one may be tried.
    fn may_retry(&self, failure: &Self::Failure) -> bool;

    /// True when the request body went over the cap (the failure is then a `413`).
    fn too_large(&self) -> bool {
        false
    }
}

/// A bodyless request on the fast path (`raw`): its head, encoded once.
pub(super) struct RawExchange<'a> {
    pub(super) pool: &'a RawPool,
    pub(super) method: &'a Method,
    pub(super) head: Vec<u8>,
}

impl Exchange for RawExchange<'_> {
    type Reply = Response<RawBody>;
    type Failure = RawError;

    fn send<'a>(
        &'a mut self,
        addr: &'a str,
        _last: bool,
    ) -> impl Future<Output = Result<Response<RawBody>, RawError>> + 'a {
        self.pool.send(addr, self.method, &self.head)
    }

    fn may_retry(&self, failure: &RawError) -> bool {
        failure.is_connect()
    }
}

/// The client's request body, taken by the attempt whose backend reads it.
pub(super) type BodySlot = Arc<Mutex<Option<Incoming>>>;

/// A request with a body or an upgrade, through hyper's client (`pool`). The body waits in
/// a shared slot, so a second attempt can still send it if the first never read any.
pub(super) struct HyperExchange<'a> {
    pub(super) pool: &'a Pool,
    pub(super) method: Method,
    pub(super) path: PathAndQuery,
    pub(super) headers: HeaderMap,
    /// The client's body and the bytes passed on so far (None: no body).
    pub(super) body: Option<(BodySlot, Arc<AtomicU64>)>,
    /// Whether the last attempt's backend started reading the body.
    pub(super) polled: Option<Arc<AtomicBool>>,
    pub(super) limit: u64,
}

impl Exchange for HyperExchange<'_> {
    type Reply = (Response<Incoming>, Lease);
    type Failure = SendError;

    fn send<'a>(
        &'a mut self,
        addr: &'a str,
        last: bool,
    ) -> impl Future<Output = Result<(Response<Incoming>, Lease), SendError>> + 'a {
        self.polled = self.body.as_ref().map(|_| Arc::new(AtomicBool::new(false)));
        let out_body = match (&self.body, &self.polled) {
            (Some((slot, sent)), Some(polled)) => OutBody::Shared(SharedBody {
                slot: Arc::clone(slot),
                polled: Arc::clone(polled),
                sent: Arc::clone(sent),
                limit: self.limit,
            }),
            _ => OutBody::Empty,
        };
        // Origin form (`/path?q`) on a plain HTTP/1.1 backend connection.
        let mut out = Request::new(out_body);
        *out.method_mut() = self.method.clone();
        *out.uri_mut() = Uri::from(self.path.clone());
        *out.version_mut() = Version::HTTP_11;
        *out.headers_mut() = if last {
            std::mem::take(&mut self.headers)
        } else {
            self.headers.clone()
        };
        self.pool.send(addr, out)
    }

    fn may_retry(&self, failure: &SendError) -> bool {
        failure.is_connect()
            && self
                .polled
                .as_ref()
                .is_none_or(|p| !p.load(Ordering::Relaxed))
    }

    fn too_large(&self) -> bool {
        self.body
            .as_ref()
            .is_some_and(|(_, sent)| sent.load(Ordering::Relaxed) > self.limit)
    }
}

/// The incoming request body, shared so that a request whose connection attempt failed
/// (before the client read any of its body) can be sent again to another backend. It
/// counts the bytes passed on and fails once they exceed the cap.
pub(super) struct SharedBody {
    slot: BodySlot,
    polled: Arc<AtomicBool>,
    sent: Arc<AtomicU64>,
    limit: u64,
}

/// The error a body over the cap ends with.
#[derive(Debug, thiserror::Error)]
#[error("the request body is larger than {0} bytes")]
struct TooLarge(u64);

impl Body for SharedBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        self.polled.store(true, Ordering::Relaxed);
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        let Some(body) = slot.as_mut() else {
            return Poll::Ready(None);
        };
        match Pin::new(body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                let sent = self.sent.fetch_add(len, Ordering::Relaxed) + len;
                if sent > self.limit {
                    *slot = None;
                    return Poll::Ready(Some(Err(Box::new(TooLarge(self.limit)))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        let slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        slot.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        let slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        slot.as_ref()
            .map(Body::size_hint)
            .unwrap_or_else(|| SizeHint::with_exact(0))
    }
}

/// The body sent to a backend: nothing (most GETs, no lock or allocation) or the client's.
pub(super) enum OutBody {
    Empty,
    Shared(SharedBody),
}

impl Body for OutBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.get_mut() {
            OutBody::Empty => Poll::Ready(None),
            OutBody::Shared(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            OutBody::Empty => true,
            OutBody::Shared(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            OutBody::Empty => SizeHint::with_exact(0),
            OutBody::Shared(b) => b.size_hint(),
        }
    }
}
