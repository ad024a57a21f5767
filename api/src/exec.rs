//! The exec stream: how a command inside a running job talks to its caller
//! (`paas ps:exec`, `paas run`) through the controller and the node agent.
//!
//! The caller sends `POST …/exec` with `Connection: Upgrade` and `Upgrade: paas-exec`
//! (plus the usual bearer token). The server checks what it can (auth, app, job) and
//! answers `101 Switching Protocols`, or an ordinary error ([`crate::ErrorBody`]). After the
//! 101 both sides exchange **frames** on the raw connection:
//!
//! ```text
//! +--------+----------------------+----------------+
//! | kind:1 | length: 4, big-endian| payload        |
//! +--------+----------------------+----------------+
//! ```
//!
//! | kind | direction | payload |
//! |---|---|---|
//! | `0` START  | caller → server, first frame, exactly once | [`ExecRequest`] as JSON |
//! | `1` STDIN  | caller → server | bytes for the process's stdin; **empty = end of input** |
//! | `3` RESIZE | caller → server | rows: u16 BE, cols: u16 BE (TTY only) |
//! | `1` STDOUT | server → caller | bytes the process wrote to stdout (the pty's output with a TTY) |
//! | `2` STDERR | server → caller | bytes written to stderr (never with a TTY) |
//! | `5` ERROR  | server → caller | a UTF-8 message: the command could not run (not found, …) |
//! | `4` EXIT   | server → caller, last frame | the exit code: i32 BE (128 + N if killed by signal N) |
//!
//! The server closes the connection after EXIT. If the caller closes its side, the server
//! closes the process's stdin (and the pty, which hangs the session up). A frame longer than
//! [`MAX_FRAME`] is a protocol error. Everything here is plain byte handling, no I/O.

use serde::{Deserialize, Serialize};

/// The `Upgrade:` protocol token of the exec stream.
pub const UPGRADE: &str = "paas-exec";
/// Largest payload accepted in one frame.
pub const MAX_FRAME: u32 = 1 << 20;
/// Bytes before the payload.
pub const HEADER_LEN: usize = 5;

/// Frame kinds (see the module docs).
pub mod kind {
    pub const START: u8 = 0;
    pub const STDIN: u8 = 1;
    pub const STDOUT: u8 = 1;
    pub const STDERR: u8 = 2;
    pub const RESIZE: u8 = 3;
    pub const EXIT: u8 = 4;
    pub const ERROR: u8 = 5;
}

/// Exit code sent when the command could not be started (as a shell does for a command
/// it cannot run).
pub const EXIT_CANNOT_RUN: i32 = 126;
/// Exit code sent when the command was not found.
pub const EXIT_NOT_FOUND: i32 = 127;

/// What to run: the START frame's payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
pub struct ExecRequest {
    /// argv; a name without `/` is looked up on the job's `PATH`.
    pub command: Vec<String>,
    /// Give the process a pseudo-terminal (stdout and stderr both come as STDOUT).
    #[serde(default)]
    pub tty: bool,
    /// Extra `KEY=VALUE` variables on top of the job's environment.
    #[serde(default)]
    pub env: Vec<String>,
    /// Initial terminal size (TTY only); 0 = leave the default.
    #[serde(default)]
    pub rows: u16,
    #[serde(default)]
    pub cols: u16,
}

/// One frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub payload: Vec<u8>,
}

/// A frame that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrameError {
    /// The length field is above [`MAX_FRAME`].
    TooLong(u32),
}

impl std::fmt::Display for FrameError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            FrameError::TooLong(n) => write!(
                f,
                "exec stream: a frame of {n} bytes is above the {MAX_FRAME}-byte limit"
            ),
        }
    }
}

impl std::error::Error for FrameError {}

/// The bytes of one frame.
pub fn encode(kind: u8, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.push(kind);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// An EXIT frame.
pub fn exit_frame(code: i32) -> Vec<u8> {
    encode(kind::EXIT, &code.to_be_bytes())
}

/// A RESIZE frame.
pub fn resize_frame(rows: u16, cols: u16) -> Vec<u8> {
    let mut p = rows.to_be_bytes().to_vec();
    p.extend_from_slice(&cols.to_be_bytes());
    encode(kind::RESIZE, &p)
}

/// Parses a RESIZE payload into (rows, cols).
pub fn parse_resize(payload: &[u8]) -> Option<(u16, u16)> {
    let b: [u8; 4] = payload.try_into().ok()?;
    Some((
        u16::from_be_bytes([b[0], b[1]]),
        u16::from_be_bytes([b[2], b[3]]),
    ))
}

/// Parses an EXIT payload.
pub fn parse_exit(payload: &[u8]) -> Option<i32> {
    Some(i32::from_be_bytes(payload.try_into().ok()?))
}

/// Takes one whole frame off the front of `buf`, if it holds one.
pub fn decode(buf: &mut Vec<u8>) -> Result<Option<Frame>, FrameError> {
    if buf.len() < HEADER_LEN {
        return Ok(None);
    }
    let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]);
    if len > MAX_FRAME {
        return Err(FrameError::TooLong(len));
    }
    let end = HEADER_LEN + len as usize;
    if buf.len() < end {
        return Ok(None);
    }
    let kind = buf[0];
    let payload = buf[HEADER_LEN..end].to_vec();
    buf.drain(..end);
    Ok(Some(Frame { kind, payload }))
}

/// Reads one frame from a blocking reader; `Ok(None)` at a clean end of stream.
pub fn read_frame(r: &mut impl std::io::Read) -> std::io::Result<Option<Frame>> {
    let mut header = [0u8; HEADER_LEN];
    let mut got = 0;
    while got < HEADER_LEN {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Ok(None),
            Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    if len > MAX_FRAME {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            FrameError::TooLong(len),
        ));
    }
    let mut payload = vec![0u8; len as usize];
    r.read_exact(&mut payload)?;
    Ok(Some(Frame {
        kind: header[0],
        payload,
    }))
}

/// Programs that exist only inside a shell: a command that starts with one must run
/// through `/bin/sh -c` (the CLI's `paas run` and the controller's Procfile lines both
/// decide with this list).
pub const SHELL_BUILTINS: &[&str] = &[
    ".", ":", "alias", "break", "cd", "continue", "eval", "exit", "export", "read", "readonly",
    "return", "set", "shift", "source", "trap", "ulimit", "umask", "unalias", "unset", "wait",
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_through_decode_and_read_frame() {
        let mut buf = encode(kind::STDIN, b"hello");
        buf.extend(resize_frame(24, 80));
        buf.extend(exit_frame(-3));
        let mut reader = std::io::Cursor::new(buf.clone());
        let a = decode(&mut buf).unwrap().unwrap();
        assert_eq!((a.kind, a.payload.as_slice()), (kind::STDIN, &b"hello"[..]));
        let b = decode(&mut buf).unwrap().unwrap();
        assert_eq!(parse_resize(&b.payload), Some((24, 80)));
        let c = decode(&mut buf).unwrap().unwrap();
        assert_eq!(parse_exit(&c.payload), Some(-3));
        assert!(buf.is_empty());
        assert_eq!(decode(&mut buf).unwrap(), None);
        assert_eq!(read_frame(&mut reader).unwrap().unwrap(), a);
        assert_eq!(read_frame(&mut reader).unwrap().unwrap(), b);
        assert_eq!(read_frame(&mut reader).unwrap().unwrap(), c);
        assert!(read_frame(&mut reader).unwrap().is_none());
    }

    #[test]
    fn a_partial_frame_waits_and_an_oversized_one_is_refused() {
        let full = encode(kind::STDOUT, b"abc");
        let mut buf = full[..6].to_vec();
        assert_eq!(decode(&mut buf).unwrap(), None);
        assert_eq!(buf.len(), 6);
        let mut big = vec![kind::STDOUT];
        big.extend_from_slice(&(MAX_FRAME + 1).to_be_bytes());
        assert_eq!(decode(&mut big), Err(FrameError::TooLong(MAX_FRAME + 1)));
    }
}
