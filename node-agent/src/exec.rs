//! `POST /v1/jobs/{id}/exec`: a command inside a running job, over an upgraded connection
//! that carries the exec stream of [`paas_api::exec`] (START, STDIN, RESIZE in; STDOUT,
//! STDERR, ERROR, EXIT out).
//!
//! The handler checks the token (middleware), the `Upgrade: paas-exec` header and that the
//! job is up, answers 101, and a task runs the session: it reads the START frame, calls
//! `Runtime::exec` (setns into every namespace of the job, its cgroup and privileges) on the
//! blocking pool with pipes or a pty, pumps the process's output into frames and the
//! caller's STDIN frames into the process, and ends with an EXIT frame once the process
//! exited and its output is drained. If the caller goes away first, the process gets
//! SIGKILL (and, with a TTY, the pty is closed: a hang-up).

use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use hyper_util::rt::TokioIo;
use nix::fcntl::{fcntl, FcntlArg, OFlag};
use paas_api::exec::{self as proto, kind, ExecRequest};
use paas_api::{codes, JobState};
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;

use crate::agent::Agent;
use crate::http::ApiError;

/// How long the caller has to send START after the 101.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// After the process exited, how long its output may take to drain (a background child
/// that keeps stdout open must not hold the session forever).
const DRAIN_TIMEOUT: Duration = Duration::from_secs(2);

/// Errors of one exec session (logged; the caller sees ERROR frames).
#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("exec stream: {0}")]
    Stream(#[from] std::io::Error),
    #[error("exec stream: the caller sent no START frame within {0:?}")]
    NoStart(Duration),
    #[error("exec stream: the first frame must be START (kind 0) with an ExecRequest: {0}")]
    BadStart(String),
}

/// Whether a request asks for the exec stream.
pub fn wants_upgrade(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case(proto::UPGRADE))
}

/// The 101 answer that switches to the exec stream.
pub fn switching() -> Response {
    let mut resp = Response::new(Body::empty());
    *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
    resp.headers_mut()
        .insert(header::UPGRADE, HeaderValue::from_static(proto::UPGRADE));
    resp
}

/// `POST /v1/jobs/{id}/exec` (upgrade).
pub async fn handler(
    State(agent): State<Arc<Agent>>,
    Path(id): Path<String>,
    mut req: Request,
) -> Result<Response, ApiError> {
    if !wants_upgrade(req.headers()) {
        return Err(ApiError::new(
            StatusCode::UPGRADE_REQUIRED,
            codes::VALIDATION,
            format!(
                "exec is a stream: send `Connection: Upgrade` and `Upgrade: {}` (see \
                 docs/node-agent.md)",
                proto::UPGRADE
            ),
        ));
    }
    let job = agent.jobs.get(&id)?;
    let state = job.status().state;
    if state != JobState::Up {
        return Err(crate::jobs::JobError::NotRunning { id, state }.into());
    }
    let Some(on_upgrade) = req.extensions_mut().remove::<hyper::upgrade::OnUpgrade>() else {
        return Err(ApiError::new(
            StatusCode::BAD_REQUEST,
            codes::VALIDATION,
            "this connection cannot be upgraded (HTTP/1.1 is needed)",
        ));
    };
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                if let Err(e) = session(agent, id.clone(), TokioIo::new(upgraded)).await {
                    tracing::info!(job = %id, "exec: {e}");
                }
            }
            Err(e) => tracing::warn!(job = %id, "exec: the upgrade failed: {e}"),
        }
    });
    Ok(switching().into_response())
}

/// A non-blocking descriptor (pipe end or pty master) usable from tokio.
struct Fd(AsyncFd<OwnedFd>);

impl Fd {
    fn new(fd: OwnedFd) -> std::io::Result<Fd> {
        let flags = fcntl(&fd, FcntlArg::F_GETFL).map_err(std::io::Error::from)?;
        let flags = OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK;
        fcntl(&fd, FcntlArg::F_SETFL(flags)).map_err(std::io::Error::from)?;
        // SAFETY: an OwnedFd is a valid open descriptor that stays open (and the same) until
        // the AsyncFd, which owns it, is dropped.
        let fd = unsafe { AsyncFd::register(fd) }.map_err(|e| e.into_parts().1)?;
        Ok(Fd(fd))
    }

    /// Reads some bytes; 0 at end of file (EIO from a pty master whose slave is closed
    /// counts as the end too).
    async fn read(&self, buf: &mut [u8]) -> std::io::Result<usize> {
        loop {
            let mut guard = self.0.readable().await?;
            match guard.try_io(|fd| nix::unistd::read(fd, buf).map_err(std::io::Error::from)) {
                Ok(Err(e)) if e.raw_os_error() == Some(libc::EIO) => return Ok(0),
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }

    async fn write_all(&self, mut buf: &[u8]) -> std::io::Result<()> {
        while !buf.is_empty() {
            let mut guard = self.0.writable().await?;
            match guard.try_io(|fd| nix::unistd::write(fd.get_ref(), buf).map_err(Into::into)) {
                Ok(Ok(n)) => buf = &buf[n..],
                Ok(Err(e)) => return Err(e),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }
}

/// A descriptor the process writes to, and the frame kind its bytes go out as.
type Output = (Arc<Fd>, u8);

/// Sets a pty's window size.
fn set_winsize(fd: &impl AsRawFd, rows: u16, cols: u16) {
    if rows == 0 || cols == 0 {
        return;
    }
    let ws = libc::winsize {
        ws_row: rows,
        ws_col: cols,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCSWINSZ reads a winsize from a valid pointer; a bad fd only fails.
    unsafe { libc::ioctl(fd.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
}

/// Reads the START frame.
async fn read_start(r: &mut (impl AsyncRead + Unpin)) -> Result<ExecRequest, ExecError> {
    let frame = tokio::time::timeout(START_TIMEOUT, read_frame(r))
        .await
        .map_err(|_| ExecError::NoStart(START_TIMEOUT))??
        .ok_or_else(|| ExecError::BadStart("the stream ended".into()))?;
    if frame.kind != kind::START {
        return Err(ExecError::BadStart(format!("got kind {}", frame.kind)));
    }
    serde_json::from_slice(&frame.payload).map_err(|e| ExecError::BadStart(e.to_string()))
}

/// Reads one frame from an async reader; `None` at a clean end.
pub async fn read_frame(r: &mut (impl AsyncRead + Unpin)) -> std::io::Result<Option<proto::Frame>> {
    let mut header = [0u8; proto::HEADER_LEN];
    match r.read_exact(&mut header).await {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
        Err(e) => return Err(e),
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    if len > proto::MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            proto::FrameError::TooLong(len),
        ));
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload).await?;
    Ok(Some(proto::Frame {
        kind: header[0],
        payload,
    }))
}

fn pipe() -> std::io::Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).map_err(std::io::Error::from)
}

/// Copies a descriptor's output into frames of `kind` until it ends.
async fn pump(fd: Arc<Fd>, kind: u8, tx: mpsc::Sender<Vec<u8>>) {
    let mut buf = vec![0u8; 32 * 1024];
    loop {
        match fd.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => {
                if tx.send(proto::encode(kind, &buf[..n])).await.is_err() {
                    return;
                }
            }
        }
    }
}

/// The exit code for a command that could not be started.
fn cannot_run_code(message: &str) -> i32 {
    if message.contains("No such file") || message.contains("not found") {
        proto::EXIT_NOT_FOUND
    } else {
        proto::EXIT_CANNOT_RUN
    }
}

/// One exec session on an upgraded connection.
pub async fn session<S>(agent: Arc<Agent>, id: String, io: S) -> Result<(), ExecError>
where
    S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut rd, mut wr) = tokio::io::split(io);
    let req = match read_start(&mut rd).await {
        Ok(r) => r,
        Err(e) => {
            let _ = wr
                .write_all(&proto::encode(kind::ERROR, e.to_string().as_bytes()))
                .await;
            let _ = wr
                .write_all(&proto::exit_frame(proto::EXIT_CANNOT_RUN))
                .await;
            let _ = wr.shutdown().await;
            return Err(e);
        }
    };
    // Our ends (stdin writer, stdout and stderr readers) and the process's.
    let mut spec = paas_runtime::ExecSpec {
        args: req.command.clone(),
        extra_env: req.env.clone(),
        tty: req.tty,
        winsize: Some((req.rows, req.cols)),
        ..Default::default()
    };
    let mut ours: Vec<OwnedFd> = Vec::new();
    if !req.tty {
        let (in_r, in_w) = pipe()?;
        let (out_r, out_w) = pipe()?;
        let (err_r, err_w) = pipe()?;
        spec.stdin = Some(in_r);
        spec.stdout = Some(out_w);
        spec.stderr = Some(err_w);
        ours.extend([in_w, out_r, err_r]);
    }
    let runtime = agent.runtime.clone();
    let cid = id.clone();
    let started = tokio::task::spawn_blocking(move || runtime.exec(&cid, spec))
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    let process = match started {
        Ok(p) => p,
        Err(e) => {
            let msg = e.to_string();
            let code = cannot_run_code(&msg);
            let _ = wr
                .write_all(&proto::encode(kind::ERROR, msg.as_bytes()))
                .await;
            let _ = wr.write_all(&proto::exit_frame(code)).await;
            let _ = wr.shutdown().await;
            return Ok(());
        }
    };
    tracing::info!(job = %id, cmd = ?req.command, tty = req.tty, "exec started");
    let helper = process.pid;
    let (stdin, outputs): (Option<Arc<Fd>>, Vec<Output>) = match process.pty {
        Some(ref master) => {
            set_winsize(master, req.rows, req.cols);
            let fd = Arc::new(Fd::new(master.try_clone()?)?);
            (Some(fd.clone()), vec![(fd, kind::STDOUT)])
        }
        None => {
            let mut it = ours.into_iter();
            let (w, o, e) = (it.next(), it.next(), it.next());
            let w = w.map(Fd::new).transpose()?.map(Arc::new);
            let o = Arc::new(Fd::new(o.expect("three pipe ends"))?);
            let e = Arc::new(Fd::new(e.expect("three pipe ends"))?);
            (w, vec![(o, kind::STDOUT), (e, kind::STDERR)])
        }
    };
    let pty_master = process.pty.as_ref().map(|m| m.as_raw_fd());

    // Frames out: one writer task owns the connection's write half.
    let (tx, mut rx) = mpsc::channel::<Vec<u8>>(64);
    let writer = tokio::spawn(async move {
        while let Some(frame) = rx.recv().await {
            if wr.write_all(&frame).await.is_err() {
                break;
            }
            let _ = wr.flush().await;
        }
        let _ = wr.shutdown().await;
    });
    let pumps: Vec<_> = outputs
        .into_iter()
        .map(|(fd, k)| tokio::spawn(pump(fd, k, tx.clone())))
        .collect();

    // Frames in: STDIN and RESIZE until the caller closes.
    let mut input = tokio::spawn(async move {
        let mut stdin = stdin;
        let tty = pty_master.is_some();
        loop {
            match read_frame(&mut rd).await {
                Ok(Some(f)) if f.kind == kind::STDIN => {
                    if f.payload.is_empty() {
                        if tty {
                            // End of input on a terminal is ^D.
                            if let Some(fd) = &stdin {
                                let _ = fd.write_all(&[4]).await;
                            }
                        } else {
                            stdin = None;
                        }
                    } else if let Some(fd) = &stdin {
                        if fd.write_all(&f.payload).await.is_err() && !tty {
                            stdin = None;
                        }
                    }
                }
                Ok(Some(f)) if f.kind == kind::RESIZE => {
                    if let (Some(fd), Some((rows, cols))) =
                        (&stdin, proto::parse_resize(&f.payload))
                    {
                        if tty {
                            set_winsize(&fd.0, rows, cols);
                        }
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => return,
            }
        }
    });

    let mut wait = tokio::task::spawn_blocking(move || process.wait());
    let code = tokio::select! {
        r = &mut wait => r,
        _ = &mut input => {
            // The caller went away: end the process (the helper's child).
            tracing::info!(job = %id, "exec: the caller closed the stream; killing the process");
            kill_children(helper);
            wait.await
        }
    };
    let code = match code {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            let _ = tx
                .send(proto::encode(kind::ERROR, e.to_string().as_bytes()))
                .await;
            proto::EXIT_CANNOT_RUN
        }
        Err(e) => {
            tracing::warn!(job = %id, "exec: waiting failed: {e}");
            proto::EXIT_CANNOT_RUN
        }
    };
    for p in pumps {
        let abort = p.abort_handle();
        if tokio::time::timeout(DRAIN_TIMEOUT, p).await.is_err() {
            abort.abort();
        }
    }
    input.abort();
    let _ = tx.send(proto::exit_frame(code)).await;
    drop(tx);
    let _ = writer.await;
    tracing::info!(job = %id, code, "exec ended");
    Ok(())
}

/// SIGKILLs the children of the exec helper (the exec'd process); the helper then exits.
fn kill_children(helper: i32) {
    let path = format!("/proc/{helper}/task/{helper}/children");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    for pid in text
        .split_whitespace()
        .filter_map(|p| p.parse::<i32>().ok())
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}
