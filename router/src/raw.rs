//! The fast path to a backend for requests without a body (most GETs): the request head is
//! written to a pooled keep-alive socket and the response is read and framed right here, in
//! the client connection's own task. hyper's client (used for requests with bodies and for
//! protocol upgrades, `pool::Pool::send`) runs each backend connection as a task of its own
//! and hands the request, the response and every body chunk across channels between the
//! tasks; for a small GET that hand-off costs about as much as the proxying itself (see
//! docs/router.md). Responses are framed as RFC 9112 §6.3 says: no body for HEAD, 1xx, 204
//! and 304; chunked when the last transfer coding is chunked (decoded here, re-framed by
//! the client side's server); else Content-Length; else until the backend closes.
//!
//! A connection goes back to its pool when its response body has been read to the end and
//! the backend did not ask to close it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Response, StatusCode, Version};
use hyper::body::{Body, Frame, SizeHint};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::idle::IdleLists;

/// Largest response head accepted from a backend.
const MAX_HEAD: usize = 64 * 1024;
/// Most response header lines accepted from a backend.
const MAX_HEADERS: usize = 128;
/// Longest chunk-size or trailer line accepted in a chunked body.
const MAX_LINE: usize = 4096;
/// Buffer space reserved before each read from a backend.
const READ_CHUNK: usize = 16 * 1024;

/// What went wrong talking to a backend on the fast path.
#[derive(Debug, thiserror::Error)]
pub(crate) enum RawError {
    #[error("connecting failed: {0}")]
    Connect(#[source] io::Error),
    #[error("connecting timed out after {0:?}")]
    ConnectTimeout(Duration),
    /// The connection ended before a byte of the response arrived (a kept-alive connection
    /// the backend closed meanwhile): an idempotent request may be sent again.
    #[error("the backend closed the connection before answering")]
    ClosedEarly(#[source] Option<io::Error>),
    /// The backend stopped acknowledging what was sent (its node is gone: no reset comes)
    /// before a byte of the response arrived; an idempotent request may go elsewhere.
    #[error("the backend stopped answering (nothing acknowledged within {UNACKED:?})")]
    Lost(#[source] io::Error),
    #[error("reading the backend's response failed: {0}")]
    Io(#[source] io::Error),
    #[error("the backend's response is not valid HTTP/1.1: {0}")]
    Invalid(String),
}

impl RawError {
    /// True when nothing reached the backend (safe to try another backend).
    pub(crate) fn is_connect(&self) -> bool {
        matches!(
            self,
            RawError::Connect(_) | RawError::ConnectTimeout(_) | RawError::Lost(_)
        )
    }
}

/// One kept-alive backend connection and the bytes read from it but not yet used.
struct Conn {
    stream: TcpStream,
    buf: BytesMut,
}

/// One router thread's idle fast-path connections, per backend address. Cheap to clone.
#[derive(Clone)]
pub(crate) struct RawPool {
    idle: IdleLists<Conn>,
    connect_timeout: Duration,
}

impl RawPool {
    pub(crate) fn new(connect_timeout: Duration, idle_timeout: Duration) -> RawPool {
        RawPool {
            idle: IdleLists::new(idle_timeout),
            connect_timeout,
        }
    }

    /// The newest idle connection to `addr` that still looks open. The check costs no
    /// system call: a backend's close has already marked the socket readable in the
    /// reactor, and an open idle socket has nothing to read.
    fn take_idle(&self, addr: &str) -> Option<Conn> {
        self.idle.take(addr, |conn| {
            let mut probe = [0u8; 1];
            // Closed (0), reset, or bytes nobody asked for: not reusable.
            matches!(conn.stream.try_read(&mut probe),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock)
        })
    }

    fn put(&self, addr: String, conn: Conn) {
        // Swept by age only: probing every idle socket at each sweep is not worth it.
        self.idle.put(addr, conn, |_| true);
    }

    async fn connect(&self, addr: &str) -> Result<Conn, RawError> {
        let stream = tokio::time::timeout(self.connect_timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| RawError::ConnectTimeout(self.connect_timeout))?
            .map_err(RawError::Connect)?;
        let _ = stream.set_nodelay(true);
        unacked_timeout(&stream);
        Ok(Conn {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
        })
    }

    /// Sends a bodyless request (its head encoded by [`encode_head`]) to `addr` and reads
    /// the response head; the body streams from the returned [`RawBody`]. An idempotent
    /// request whose kept-alive connection turns out closed is sent again on a new one.
    pub(crate) async fn send(
        &self,
        addr: &str,
        method: &Method,
        head: &[u8],
    ) -> Result<Response<RawBody>, RawError> {
        let head_only = *method == Method::HEAD;
        let idempotent = matches!(
            *method,
            Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
        );
        while let Some(mut conn) = self.take_idle(addr) {
            match exchange(&mut conn, head, head_only).await {
                Ok(parts) => return Ok(self.response(conn, addr, parts)),
                // A vanished node: the other kept-alive connections to it would hang as
                // long; the request goes to another backend (only idempotent ones get here
                // with this error; see `unacked_timeout`).
                Err(RawError::ClosedEarly(Some(e)))
                    if idempotent && e.kind() == io::ErrorKind::TimedOut =>
                {
                    return Err(RawError::Lost(e))
                }
                Err(RawError::ClosedEarly(_)) if idempotent => continue,
                Err(e) => return Err(e),
            }
        }
        let mut conn = self.connect(addr).await?;
        let parts = exchange(&mut conn, head, head_only).await?;
        Ok(self.response(conn, addr, parts))
    }

    fn response(&self, conn: Conn, addr: &str, head: Head) -> Response<RawBody> {
        let body = RawBody {
            conn: Some(conn),
            framing: head.framing,
            reusable: head.reusable,
            home: Some((self.clone(), addr.to_string())),
        };
        let mut resp = Response::new(body);
        *resp.status_mut() = head.status;
        *resp.version_mut() = Version::HTTP_11;
        *resp.headers_mut() = head.headers;
        resp
    }
}

/// How long sent bytes may stay unacknowledged before the kernel gives the connection up
/// (`TCP_USER_TIMEOUT`): a request on a kept-alive connection to a node whose link was cut
/// fails after this instead of waiting for the response timeout.
pub(crate) const UNACKED: Duration = Duration::from_secs(2);

/// Sets [`UNACKED`] on a backend connection (best effort).
pub(crate) fn unacked_timeout(stream: &TcpStream) {
    use std::os::fd::AsRawFd as _;
    let ms = UNACKED.as_millis() as libc::c_uint;
    // SAFETY: setsockopt(2) on the socket `stream` owns, with a pointer to a c_uint that
    // lives across the call and its exact size.
    let rc = unsafe {
        libc::setsockopt(
            stream.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_USER_TIMEOUT,
            (&ms as *const libc::c_uint).cast(),
            std::mem::size_of::<libc::c_uint>() as libc::socklen_t,
        )
    };
    if rc != 0 {
        tracing::debug!(error = %io::Error::last_os_error(), "TCP_USER_TIMEOUT not set");
    }
}

/// Writes `METHOD path HTTP/1.1`, the headers and the blank line into `out`.
pub(crate) fn encode_head(out: &mut Vec<u8>, method: &Method, path: &str, headers: &HeaderMap) {
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
}

/// A parsed response head and how its body is framed.
#[derive(Debug)]
struct Head {
    status: StatusCode,
    headers: HeaderMap,
    framing: Framing,
    /// The connection may carry another request after this response.
    reusable: bool,
}

/// How the rest of a response body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    /// This many bytes are left (0: the body has ended).
    Length(u64),
    Chunked(Chunk),
    /// Until the backend closes the connection.
    UntilClose,
    /// The body has ended (chunked terminator or close seen).
    Done,
}

/// Where a chunked body's decoder is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Expecting a chunk-size line.
    Size,
    /// This many bytes of chunk data are left.
    Data(u64),
    /// Expecting the CRLF after chunk data.
    DataEnd,
    /// After the last chunk: trailer lines until an empty one.
    Trailers,
}

/// Writes the request head and reads the response head (skipping 1xx interim responses).
async fn exchange(conn: &mut Conn, head: &[u8], head_only: bool) -> Result<Head, RawError> {
    conn.buf.clear();
    if let Err(e) = conn.stream.write_all(head).await {
        return Err(RawError::ClosedEarly(Some(e)));
    }
    let mut got_any = false;
    loop {
        if !conn.buf.is_empty() {
            if let Some(head) = parse_head(&mut conn.buf, head_only)? {
                match head {
                    Some(head) => return Ok(head),
                    // An interim response (e.g. 103 Early Hints): the real one follows.
                    None => continue,
                }
            }
            if conn.buf.len() > MAX_HEAD {
                return Err(RawError::Invalid(format!(
                    "the response head is larger than {MAX_HEAD} bytes"
                )));
            }
        }
        conn.buf.reserve(READ_CHUNK);
        match conn.stream.read_buf(&mut conn.buf).await {
            Ok(0) if !got_any => return Err(RawError::ClosedEarly(None)),
            Ok(0) => {
                return Err(RawError::Io(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the connection closed in the middle of the response head",
                )))
            }
            Ok(_) => got_any = true,
            Err(e) if !got_any => return Err(RawError::ClosedEarly(Some(e))),
            Err(e) => return Err(RawError::Io(e)),
        }
    }
}

/// Parses a response head at the start of `buf` and removes it from `buf`. `Ok(None)`: more
/// bytes are needed; `Ok(Some(None))`: an interim 1xx response was skipped.
fn parse_head(buf: &mut BytesMut, head_only: bool) -> Result<Option<Option<Head>>, RawError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut slots);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(RawError::Invalid(e.to_string())),
    };
    let code = resp.code.unwrap_or(0);
    let status =
        StatusCode::from_u16(code).map_err(|_| RawError::Invalid(format!("status code {code}")))?;
    let http11 = resp.version == Some(1);
    // Where each header's name and value lie in the head, so the values can share the
    // head's bytes instead of one allocation each.
    let base = buf.as_ptr() as usize;
    let spans: Vec<(HeaderName, usize, usize)> = resp
        .headers
        .iter()
        .map(|h| {
            let name = HeaderName::from_bytes(h.name.as_bytes())
                .map_err(|_| RawError::Invalid(format!("header name {:?}", h.name)))?;
            let start = h.value.as_ptr() as usize - base;
            Ok((name, start, start + h.value.len()))
        })
        .collect::<Result<_, RawError>>()?;
    let bytes: Bytes = buf.split_to(len).freeze();
    if status.is_informational() {
        if status == StatusCode::SWITCHING_PROTOCOLS {
            return Err(RawError::Invalid(
                "101 Switching Protocols to a request that asked for no upgrade".into(),
            ));
        }
        return Ok(Some(None));
    }
    let mut headers = HeaderMap::with_capacity(spans.len());
    for (name, start, end) in spans {
        let value = HeaderValue::from_maybe_shared(bytes.slice(start..end))
            .map_err(|_| RawError::Invalid(format!("the value of header {name}")))?;
        headers.append(name, value);
    }
    let close = connection_close(&headers, http11);
    let framing =
        if head_only || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
            Framing::Length(0)
        } else if let Some(te) = last_transfer_coding(&headers) {
            if te.eq_ignore_ascii_case(b"chunked") {
                Framing::Chunked(Chunk::Size)
            } else {
                Framing::UntilClose
            }
        } else if headers.contains_key(header::CONTENT_LENGTH) {
            Framing::Length(content_length(&headers)?)
        } else {
            Framing::UntilClose
        };
    let reusable = !close && framing != Framing::UntilClose;
    Ok(Some(Some(Head {
        status,
        headers,
        framing,
        reusable,
    })))
}

/// The last coding of the Transfer-Encoding header(s), if any.
fn last_transfer_coding(headers: &HeaderMap) -> Option<&[u8]> {
    let last = headers
        .get_all(header::TRANSFER_ENCODING)
        .iter()
        .next_back()?;
    let coding = last
        .as_bytes()
        .rsplit(|&b| b == b',')
        .next()
        .unwrap_or_default();
    Some(coding.trim_ascii())
}

/// The Content-Length (several headers or a list must all agree, RFC 9110 §8.6).
fn content_length(headers: &HeaderMap) -> Result<u64, RawError> {
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        for part in value.as_bytes().split(|&b| b == b',') {
            let part = std::str::from_utf8(part.trim_ascii()).unwrap_or_default();
            // 1*DIGIT (RFC 9110 §8.6): `u64::from_str` would also take `+5`.
            let n: u64 = Some(part)
                .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|p| p.parse().ok())
                .ok_or_else(|| RawError::Invalid(format!("Content-Length {part:?}")))?;
            if length.is_some_and(|l| l != n) {
                return Err(RawError::Invalid("Content-Length values differ".into()));
            }
            length = Some(n);
        }
    }
    length.ok_or_else(|| RawError::Invalid("an empty Content-Length".into()))
}

/// True when the backend will close the connection after this response.
fn connection_close(headers: &HeaderMap, http11: bool) -> bool {
    let mut keep_alive = false;
    for value in headers.get_all(header::CONNECTION) {
        for token in value.as_bytes().split(|&b| b == b',') {
            let token = token.trim_ascii();
            if token.eq_ignore_ascii_case(b"close") {
                return true;
            }
            keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
        }
    }
    !http11 && !keep_alive
}

/// A response body read straight from the backend connection. Its connection goes back to
/// the pool when the body has ended (also when the body is dropped right after its last
/// frame, as the server does once it knows the length is reached).
pub(crate) struct RawBody {
    conn: Option<Conn>,
    framing: Framing,
    reusable: bool,
    home: Option<(RawPool, String)>,
}

impl RawBody {
    fn ended(&self) -> bool {
        matches!(self.framing, Framing::Length(0) | Framing::Done)
    }

    /// Gives the connection back when the body ended cleanly with nothing extra read.
    fn finish(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if self.reusable && self.ended() && conn.buf.is_empty() {
            if let Some((pool, addr)) = self.home.take() {
                pool.put(addr, conn);
            }
        }
    }

    /// Takes the next data frame out of the buffer (only with `take_data`), moving the
    /// chunked decoder over sizes, CRLFs and trailers on the way, without reading.
    /// `Ok(None)`: more bytes are needed, the body ended, or data is next and not wanted.
    fn step(&mut self, take_data: bool) -> Result<Option<Bytes>, RawError> {
        let Some(conn) = self.conn.as_mut() else {
            return Ok(None);
        };
        let buf = &mut conn.buf;
        loop {
            match self.framing {
                Framing::Length(0) | Framing::Done => return Ok(None),
                Framing::Length(left) => {
                    if buf.is_empty() || !take_data {
                        return Ok(None);
                    }
                    let n = (buf.len() as u64).min(left) as usize;
                    self.framing = Framing::Length(left - n as u64);
                    return Ok(Some(buf.split_to(n).freeze()));
                }
                Framing::UntilClose => {
                    if buf.is_empty() || !take_data {
                        return Ok(None);
                    }
                    return Ok(Some(buf.split().freeze()));
                }
                Framing::Chunked(Chunk::Data(left)) => {
                    if buf.is_empty() || !take_data {
                        return Ok(None);
                    }
                    let n = (buf.len() as u64).min(left) as usize;
                    let left = left - n as u64;
                    self.framing = Framing::Chunked(if left == 0 {
                        Chunk::DataEnd
                    } else {
                        Chunk::Data(left)
                    });
                    return Ok(Some(buf.split_to(n).freeze()));
                }
                Framing::Chunked(Chunk::DataEnd) => {
                    if buf.len() < 2 {
                        return Ok(None);
                    }
                    if &buf[..2] != b"\r\n" {
                        return Err(RawError::Invalid("chunk data not followed by CRLF".into()));
                    }
                    buf.advance(2);
                    self.framing = Framing::Chunked(Chunk::Size);
                }
                Framing::Chunked(state @ (Chunk::Size | Chunk::Trailers)) => {
                    let Some(end) = buf.windows(2).position(|w| w == b"\r\n") else {
                        if buf.len() > MAX_LINE {
                            return Err(RawError::Invalid("a chunk line is too long".into()));
                        }
                        return Ok(None);
                    };
                    let line = buf.split_to(end + 2);
                    let line = &line[..end];
                    self.framing = if state == Chunk::Trailers {
                        // Trailer fields are dropped; an empty line ends the body.
                        if line.is_empty() {
                            Framing::Done
                        } else {
                            Framing::Chunked(Chunk::Trailers)
                        }
                    } else {
                        match chunk_size(line)? {
                            0 => Framing::Chunked(Chunk::Trailers),
                            n => Framing::Chunked(Chunk::Data(n)),
                        }
                    };
                }
            }
        }
    }
}

/// The size of a chunk from its `size[;extensions]` line.
fn chunk_size(line: &[u8]) -> Result<u64, RawError> {
    let hex = line
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let text = std::str::from_utf8(hex).unwrap_or_default();
    // 1*HEXDIG (RFC 9112 §7.1): `from_str_radix` would also take `+a`.
    if text.is_empty() || text.len() > 15 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(RawError::Invalid(format!("chunk size {text:?}")));
    }
    u64::from_str_radix(text, 16).map_err(|_| RawError::Invalid(format!("chunk size {text:?}")))
}

impl Drop for RawBody {
    fn drop(&mut self) {
        self.finish();
    }
}

impl Body for RawBody {
    type Data = Bytes;
    type Error = RawError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RawError>>> {
        let this = &mut *self;
        loop {
            match this.step(true) {
                Ok(Some(data)) => {
                    // Move past a chunked body's end if it is already here, so the body
                    // reports its end with its last data and the server need not poll
                    // again before the connection is reusable.
                    if let Err(e) = this.step(false) {
                        this.conn = None;
                        return Poll::Ready(Some(Err(e)));
                    }
                    return Poll::Ready(Some(Ok(Frame::data(data))));
                }
                Ok(None) if this.ended() || this.conn.is_none() => {
                    this.finish();
                    return Poll::Ready(None);
                }
                Ok(None) => {}
                Err(e) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(e)));
                }
            }
            let conn = this.conn.as_mut().expect("checked above");
            conn.buf.reserve(READ_CHUNK);
            match tokio_util::io::poll_read_buf(Pin::new(&mut conn.stream), cx, &mut conn.buf) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Ok(0)) => {
                    if this.framing == Framing::UntilClose {
                        this.framing = Framing::Done;
                        this.reusable = false;
                        this.conn = None;
                        return Poll::Ready(None);
                    }
                    this.conn = None;
                    return Poll::Ready(Some(Err(RawError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the backend closed the connection in the middle of the body",
                    )))));
                }
                Poll::Ready(Ok(_)) => {}
                Poll::Ready(Err(e)) => {
                    this.conn = None;
                    return Poll::Ready(Some(Err(RawError::Io(e))));
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended()
    }

    fn size_hint(&self) -> SizeHint {
        match self.framing {
            Framing::Length(n) => SizeHint::with_exact(n),
            Framing::Done => SizeHint::with_exact(0),
            _ => SizeHint::default(),
        }
    }
}

#[cfg(test)]
#[path = "raw_prop_tests.rs"]
mod prop_tests;
