//! `paas ps:exec -a APP [JOB] -- CMD…` (a command inside a running job; `--job ID` is
//! accepted for JOB) and the
//! stream under `paas run`: both speak the exec stream of [`paas_api::exec`] over an
//! upgraded HTTP/1.1 connection to the controller (`POST /v1/apps/{app}/jobs/{id}/exec`,
//! `POST /v1/apps/{app}/exec`, `POST /v1/apps/{app}/run/attach`).
//!
//! When stdin and stdout are terminals the command gets a TTY: the local terminal goes
//! into raw mode (restored on exit), keys go through as typed and the window size follows
//! the local one. Otherwise stdin is piped (end of input is sent as an empty STDIN frame),
//! stdout and stderr stay apart. The CLI exits with the command's exit code.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use paas_api::exec::{self as proto, kind, ExecRequest};

use super::{CommandError, Context};
use crate::client::ClientError;

/// What the 101 said, and the command's exit code.
pub struct Outcome {
    pub code: i32,
}

/// `paas ps:exec`: runs `command` in `job` (or the app's first web job).
pub fn ps_exec(
    ctx: &Context,
    app: &str,
    job: Option<&str>,
    command: &[String],
) -> Result<i32, CommandError> {
    if command.is_empty() {
        return Err(CommandError::Usage(
            "no command: paas ps:exec -a APP [JOB] -- CMD [ARGS…] (the command goes after --)"
                .into(),
        ));
    }
    let path = match job {
        Some(id) => format!("/v1/apps/{app}/jobs/{id}/exec"),
        None => format!("/v1/apps/{app}/exec"),
    };
    let (stream, _) = open(ctx, &path)?;
    Ok(session(stream, command.to_vec())?.code)
}

/// `paas pg:psql` (see pg.rs): psql in the add-on's job; `args` are psql's arguments.
pub fn pg_psql(
    ctx: &Context,
    app: &str,
    addon: &str,
    args: Vec<String>,
) -> Result<i32, CommandError> {
    let (stream, _) = open(ctx, &format!("/v1/apps/{app}/addons/{addon}/psql"))?;
    Ok(session(stream, args)?.code)
}

/// `paas run` (see ps_run.rs): the one-off job with stdin and, on a terminal, a TTY.
pub fn run_attached(
    ctx: &Context,
    app: &str,
    line: &str,
    argv: Vec<String>,
) -> Result<i32, CommandError> {
    let (stream, headers) = open(ctx, &format!("/v1/apps/{app}/run/attach"))?;
    let header = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map_or("?", |(_, v)| v.as_str())
            .to_string()
    };
    eprintln!(
        "Running {line} on {app}... up, {} on {}",
        header("paas-job"),
        header("paas-node")
    );
    Ok(session(stream, argv)?.code)
}

/// `host:port` of an `http://` controller URL.
fn authority(url: &str) -> Result<String, CommandError> {
    let rest = url.strip_prefix("http://").ok_or_else(|| {
        CommandError::Usage(format!(
            "ps:exec and run need an http:// controller URL (got {url}): the exec stream \
             speaks HTTP/1.1 upgrade without TLS"
        ))
    })?;
    let host = rest.split('/').next().unwrap_or_default();
    Ok(if host.contains(':') {
        host.to_string()
    } else {
        format!("{host}:80")
    })
}

/// Sends the upgrade request; returns the stream after a 101 and the 101's headers.
#[allow(clippy::type_complexity)]
fn open(ctx: &Context, path: &str) -> Result<(TcpStream, Vec<(String, String)>), CommandError> {
    let base = ctx.settings.url.trim_end_matches('/').to_string();
    let Some(token) = ctx.settings.token.clone() else {
        return Err(ClientError::NotLoggedIn { url: base }.into());
    };
    let unreachable = |e: std::io::Error| ClientError::Unreachable {
        url: base.clone(),
        reason: e.to_string(),
    };
    let addr = authority(&base)?;
    let mut s = TcpStream::connect(&addr).map_err(unreachable)?;
    let _ = s.set_nodelay(true);
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {token}\r\n\
         Connection: Upgrade\r\nUpgrade: {}\r\nContent-Length: 0\r\n\r\n",
        proto::UPGRADE
    );
    s.write_all(head.as_bytes()).map_err(unreachable)?;
    // The response head, byte by byte (nothing of the stream may be read past it).
    let mut got = Vec::new();
    let mut b = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        match s.read(&mut b).map_err(unreachable)? {
            0 => break,
            _ => got.push(b[0]),
        }
        if got.len() > 64 * 1024 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&got).to_string();
    let mut lines = text.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    if status == 101 {
        return Ok((s, headers));
    }
    // An error answer: read its body (Content-Length) and decode the ErrorBody.
    let len: usize = headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; len.min(1 << 20)];
    let _ = s.read_exact(&mut body);
    let body = String::from_utf8_lossy(&body).to_string();
    Err(match serde_json::from_str::<paas_api::ErrorBody>(&body) {
        Ok(b) if status == 401 => ClientError::TokenRefused {
            url: base,
            message: b.error.message,
        },
        Ok(b) => ClientError::Api {
            status,
            code: b.error.code,
            message: b.error.message,
        },
        Err(_) => ClientError::Unexpected {
            url: base,
            status,
            detail: body.chars().take(200).collect(),
        },
    }
    .into())
}

fn is_tty(fd: i32) -> bool {
    // SAFETY: isatty only inspects the descriptor.
    unsafe { libc::isatty(fd) == 1 }
}

fn window_size() -> (u16, u16) {
    // SAFETY: TIOCGWINSZ fills a zeroed winsize; on failure it stays zero.
    unsafe {
        let mut ws: libc::winsize = std::mem::zeroed();
        libc::ioctl(1, libc::TIOCGWINSZ, &mut ws);
        (ws.ws_row, ws.ws_col)
    }
}

/// Raw mode on the local terminal while alive.
struct RawMode(libc::termios);

impl RawMode {
    fn enable() -> Option<RawMode> {
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a zeroed termios buffer.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return None;
            }
            let saved = t;
            libc::cfmakeraw(&mut t);
            if libc::tcsetattr(0, libc::TCSANOW, &t) != 0 {
                return None;
            }
            Some(RawMode(saved))
        }
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        // SAFETY: restores the saved settings of fd 0.
        unsafe { libc::tcsetattr(0, libc::TCSANOW, &self.0) };
    }
}

fn send(w: &Mutex<TcpStream>, frame: &[u8]) -> bool {
    let mut w = w.lock().unwrap_or_else(|e| e.into_inner());
    w.write_all(frame).is_ok()
}

/// Runs the exec stream on an upgraded connection until EXIT and the server's close.
fn session(stream: TcpStream, command: Vec<String>) -> Result<Outcome, CommandError> {
    let tty = is_tty(0) && is_tty(1);
    let (rows, cols) = if tty { window_size() } else { (0, 0) };
    let mut env = Vec::new();
    if tty {
        env.push(format!(
            "TERM={}",
            std::env::var("TERM").unwrap_or_else(|_| "xterm".into())
        ));
    }
    let req = ExecRequest {
        command,
        tty,
        env,
        rows,
        cols,
    };
    let lost = |e: std::io::Error| {
        CommandError::Client(ClientError::Unreachable {
            url: "the exec stream".into(),
            reason: e.to_string(),
        })
    };
    let writer = Arc::new(Mutex::new(stream.try_clone().map_err(lost)?));
    let start = serde_json::to_vec(&req).unwrap_or_default();
    if !send(&writer, &proto::encode(kind::START, &start)) {
        return Err(lost(std::io::ErrorKind::BrokenPipe.into()));
    }
    let raw = if tty { RawMode::enable() } else { None };

    // stdin → STDIN frames; end of input → an empty STDIN frame.
    let w = writer.clone();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut buf = [0u8; 8192];
        loop {
            match stdin.read(&mut buf) {
                Ok(0) | Err(_) => {
                    send(&w, &proto::encode(kind::STDIN, b""));
                    return;
                }
                Ok(n) => {
                    if !send(&w, &proto::encode(kind::STDIN, &buf[..n])) {
                        return;
                    }
                }
            }
        }
    });
    if tty {
        // The window size follows the local terminal's (polled: no signal handler needed).
        let w = writer.clone();
        std::thread::spawn(move || {
            let mut last = (rows, cols);
            loop {
                std::thread::sleep(Duration::from_millis(250));
                let now = window_size();
                if now != last {
                    last = now;
                    if !send(&w, &proto::resize_frame(now.0, now.1)) {
                        return;
                    }
                }
            }
        });
    }

    let mut reader = stream;
    let mut code = None;
    let mut stdout = std::io::stdout();
    let mut stderr = std::io::stderr();
    loop {
        let frame = match proto::read_frame(&mut reader) {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(e) if code.is_some() => {
                let _ = e;
                break;
            }
            Err(e) => {
                drop(raw);
                return Err(lost(e));
            }
        };
        match frame.kind {
            kind::STDOUT => {
                let _ = stdout.write_all(&frame.payload);
                let _ = stdout.flush();
            }
            kind::STDERR => {
                let _ = stderr.write_all(&frame.payload);
                let _ = stderr.flush();
            }
            kind::ERROR => {
                let msg = String::from_utf8_lossy(&frame.payload);
                let _ = write!(stderr, "paas: {msg}{}", if tty { "\r\n" } else { "\n" });
            }
            kind::EXIT => {
                code = proto::parse_exit(&frame.payload);
                // Read on to the server's close: it cleans up before closing.
                let _ = reader.set_read_timeout(Some(Duration::from_secs(30)));
            }
            _ => {}
        }
    }
    drop(raw);
    match code {
        Some(code) => Ok(Outcome { code }),
        None => Err(lost(std::io::Error::other(
            "the connection closed before the command's exit code came",
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::authority;

    #[test]
    fn the_authority_of_a_controller_url() {
        assert_eq!(
            authority("http://127.0.0.1:8080").unwrap(),
            "127.0.0.1:8080"
        );
        assert_eq!(authority("http://paas.local/").unwrap(), "paas.local:80");
        assert!(authority("https://x").is_err());
    }
}
