//! Log capture inside the agent (no shim process): the container appends its stdout and
//! stderr to `stdout.log` and `stderr.log` in the job dir (so output survives an agent
//! restart), and the agent tails both files and appends one timestamped record per line
//! to `records.log`:
//!
//! ```text
//! 2026-11-23T12:00:00.123456Z out listening on 5000
//! 2026-11-23T12:00:00.123457Z err warning: no cache
//! 2026-11-23T12:00:01.200000Z out~ Downloading...
//! ```
//!
//! The stream is `out` or `err`; a trailing `~` marks a fragment that was not followed by
//! a newline (a partial line flushed after [`PARTIAL_FLUSH`], one longer than
//! [`MAX_LINE`], or the end of the output at exit). Timestamps are the capture time in
//! microseconds and strictly increase within a job (also across agent restarts), so
//! records sort by their timestamp text and a timestamp names one record.
//!
//! `capture.json` holds, after every append, how far each source was consumed and the
//! length of `records.log` that matches it; a restarted agent truncates `records.log`
//! back to that length (a batch written just before a SIGKILL is captured again, never
//! twice) and goes on from the saved offsets. The records are capped: past half the cap,
//! `records.log` becomes `records.log.1` (replacing the older half). Consumed parts of
//! the source files are freed with `FALLOC_FL_PUNCH_HOLE` (offsets stay valid, nothing the
//! container writes meanwhile is lost).

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// The container's stdout, appended by the container itself.
pub const STDOUT: &str = "stdout.log";
/// The container's stderr.
pub const STDERR: &str = "stderr.log";
/// Jobs started by an agent before the capture existed write both streams here.
pub const LEGACY: &str = "output.log";
/// The timestamped records.
pub const RECORDS: &str = "records.log";
/// The older half of the records after a rotation.
pub const RECORDS_OLD: &str = "records.log.1";
const STATE: &str = "capture.json";

/// Default `--job-log-bytes`: records kept per job (both halves).
pub const DEFAULT_CAP_BYTES: u64 = 8 * 1024 * 1024;
/// The smallest cap accepted (smaller values are raised to it).
pub const MIN_CAP_BYTES: u64 = 16 * 1024;
/// How often the agent looks for new output.
pub const POLL: Duration = Duration::from_millis(100);
/// A partial line (no newline yet) is written as a fragment once it is this old.
pub const PARTIAL_FLUSH: Duration = Duration::from_secs(1);
/// Longer lines are split into fragments of this size.
pub const MAX_LINE: usize = 16 * 1024;
/// The most bytes read from one source in one poll.
const READ_MAX: u64 = 1024 * 1024;

/// Errors of the capture.
#[derive(Debug, thiserror::Error)]
pub enum CaptureError {
    #[error("log capture of {dir}: {what}: {source} (check the disk and the job dir)")]
    Io {
        dir: String,
        what: String,
        #[source]
        source: io::Error,
    },
}

/// Which output a record came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    fn token(self) -> &'static str {
        match self {
            Stream::Stdout => "out",
            Stream::Stderr => "err",
        }
    }

    /// The name the API shows (`stdout`, `stderr`).
    pub fn name(self) -> &'static str {
        match self {
            Stream::Stdout => "stdout",
            Stream::Stderr => "stderr",
        }
    }
}

/// One parsed record of `records.log`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    pub ts: &'a str,
    pub stream: Stream,
    /// True when no newline followed the text in the output.
    pub fragment: bool,
    pub text: &'a [u8],
}

/// Parses one record line (without its newline); `None` for anything malformed.
pub fn parse(line: &[u8]) -> Option<Record<'_>> {
    let sp = line.iter().position(|b| *b == b' ')?;
    let ts = std::str::from_utf8(&line[..sp]).ok()?;
    let rest = &line[sp + 1..];
    let sp2 = rest.iter().position(|b| *b == b' ')?;
    let (stream, fragment) = match &rest[..sp2] {
        b"out" => (Stream::Stdout, false),
        b"err" => (Stream::Stderr, false),
        b"out~" => (Stream::Stdout, true),
        b"err~" => (Stream::Stderr, true),
        _ => return None,
    };
    Some(Record {
        ts,
        stream,
        fragment,
        text: &rest[sp2 + 1..],
    })
}

/// Formats microseconds since the epoch as `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
pub fn format_micros(us: i64) -> String {
    let secs = us.div_euclid(1_000_000) as u64;
    let frac = us.rem_euclid(1_000_000);
    let whole = crate::util::rfc3339(secs);
    format!("{}.{frac:06}Z", whole.trim_end_matches('Z'))
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Saved {
    /// Bytes of stdout / stderr already in records (never inside a pending partial line).
    stdout: u64,
    stderr: u64,
    /// The length of `records.log` that matches those offsets.
    records_len: u64,
    /// The newest timestamp written, in microseconds since the epoch.
    last_us: i64,
}

#[derive(Debug)]
struct Source {
    stream: Stream,
    path: PathBuf,
    file: Option<File>,
    /// Read up to here (pending bytes included).
    offset: u64,
    pending: Vec<u8>,
    pending_since: Option<Instant>,
    /// Everything before this is in the records (`offset - committed` bytes pending).
    committed: u64,
    /// Freed (hole-punched) up to here.
    punched: u64,
}

impl Source {
    /// The next record's text from the pending bytes and whether it is a fragment: a
    /// complete line, a [`MAX_LINE`] piece, or (with `flush` or after [`PARTIAL_FLUSH`])
    /// the partial line.
    fn next_line(&mut self, flush: bool) -> Option<(Vec<u8>, bool)> {
        let newline = self
            .pending
            .iter()
            .take(MAX_LINE + 1)
            .position(|b| *b == b'\n');
        if let Some(pos) = newline {
            let mut line: Vec<u8> = self.pending.drain(..=pos).collect();
            self.committed += line.len() as u64;
            line.pop();
            self.pending_since = None;
            return Some((line, false));
        }
        if self.pending.len() >= MAX_LINE {
            self.committed += MAX_LINE as u64;
            return Some((self.pending.drain(..MAX_LINE).collect(), true));
        }
        if self.pending.is_empty() {
            self.pending_since = None;
            return None;
        }
        let since = *self.pending_since.get_or_insert_with(Instant::now);
        if flush || since.elapsed() >= PARTIAL_FLUSH {
            self.pending_since = None;
            self.committed += self.pending.len() as u64;
            return Some((std::mem::take(&mut self.pending), true));
        }
        None
    }
}

/// The capture of one job: call [`Capture::poll`] every [`POLL`].
#[derive(Debug)]
pub struct Capture {
    dir: PathBuf,
    cap: u64,
    sources: Vec<Source>,
    records: File,
    records_len: u64,
    last_us: i64,
}

impl Capture {
    /// Opens the capture of the job dir `dir`, resuming from `capture.json`.
    pub fn open(dir: &Path, cap: u64) -> Result<Capture, CaptureError> {
        let err = |what: &'static str| {
            let dir = dir.display().to_string();
            move |source| CaptureError::Io {
                dir,
                what: what.to_string(),
                source,
            }
        };
        let saved: Saved = match std::fs::read(dir.join(STATE)) {
            Ok(data) => serde_json::from_slice(&data).unwrap_or_default(),
            Err(_) => Saved::default(),
        };
        let records = OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(RECORDS))
            .map_err(err("opening records.log"))?;
        let mut len = records
            .metadata()
            .map_err(err("reading records.log"))?
            .len();
        if len > saved.records_len {
            // Written after the last save (the agent died in between): captured again.
            records
                .set_len(saved.records_len)
                .map_err(err("truncating records.log to the saved length"))?;
            len = saved.records_len;
        }
        let stdout = if dir.join(STDOUT).exists() || !dir.join(LEGACY).exists() {
            dir.join(STDOUT)
        } else {
            dir.join(LEGACY)
        };
        let source = |stream, path, offset| Source {
            stream,
            path,
            file: None,
            offset,
            pending: Vec::new(),
            pending_since: None,
            committed: offset,
            punched: 0,
        };
        Ok(Capture {
            dir: dir.to_path_buf(),
            cap: cap.max(MIN_CAP_BYTES),
            sources: vec![
                source(Stream::Stdout, stdout, saved.stdout),
                source(Stream::Stderr, dir.join(STDERR), saved.stderr),
            ],
            records,
            records_len: len,
            last_us: saved.last_us,
        })
    }

    fn io(&self, what: &'static str) -> impl Fn(io::Error) -> CaptureError + 'static {
        let dir = self.dir.display().to_string();
        move |source| CaptureError::Io {
            dir: dir.clone(),
            what: what.to_string(),
            source,
        }
    }

    /// The next timestamp: now, but always after the previous one.
    fn next_ts(&mut self, now: SystemTime) -> String {
        let now_us = now
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_micros() as i64)
            .unwrap_or(0);
        self.last_us = now_us.max(self.last_us + 1);
        format_micros(self.last_us)
    }

    /// Reads what is new in both sources and appends it as records. With `flush`, partial
    /// lines are written too (the process has exited). Returns whether anything was added.
    pub fn poll(&mut self, flush: bool) -> Result<bool, CaptureError> {
        let mut any = false;
        let mut out = Vec::new();
        // Batches stay small next to the cap, so a rotation keeps each half near cap/2.
        let batch = (self.cap / 8).max(2048) as usize;
        for i in 0..self.sources.len() {
            self.read_source(i)?;
            let now = SystemTime::now();
            while let Some((text, fragment)) = self.sources[i].next_line(flush) {
                let ts = self.next_ts(now);
                out.extend_from_slice(ts.as_bytes());
                out.push(b' ');
                out.extend_from_slice(self.sources[i].stream.token().as_bytes());
                if fragment {
                    out.push(b'~');
                }
                out.push(b' ');
                out.extend_from_slice(&text);
                out.push(b'\n');
                if out.len() >= batch {
                    self.write_batch(&mut out)?;
                    any = true;
                }
            }
        }
        if !out.is_empty() {
            self.write_batch(&mut out)?;
            any = true;
        }
        if any {
            self.punch();
        }
        Ok(any)
    }

    /// Appends `out` to the records, saves the matching state, rotates past cap/2.
    fn write_batch(&mut self, out: &mut Vec<u8>) -> Result<(), CaptureError> {
        self.records
            .write_all(out)
            .map_err(self.io("appending to records.log"))?;
        self.records_len += out.len() as u64;
        out.clear();
        self.save()?;
        if self.records_len > self.cap / 2 {
            self.rotate()?;
        }
        Ok(())
    }

    /// Appends what is new in source `i` (at most [`READ_MAX`]) to its pending bytes.
    fn read_source(&mut self, i: usize) -> Result<(), CaptureError> {
        let err = self.io("reading the container's output");
        let src = &mut self.sources[i];
        if src.file.is_none() {
            // Writable only so that consumed parts can be punched out (fallocate needs it).
            match OpenOptions::new().read(true).write(true).open(&src.path) {
                Ok(f) => src.file = Some(f),
                Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                Err(e) => return Err(err(e)),
            }
        }
        let Some(file) = src.file.as_mut() else {
            return Ok(());
        };
        let len = file.metadata().map_err(&err)?.len();
        if len < src.offset {
            // Truncated by someone else (an older agent's rotation): start again.
            src.offset = 0;
            src.committed = 0;
            src.punched = 0;
            src.pending.clear();
        }
        if len == src.offset {
            return Ok(());
        }
        file.seek(SeekFrom::Start(src.offset)).map_err(&err)?;
        let want = (len - src.offset).min(READ_MAX);
        let before = src.pending.len();
        file.take(want)
            .read_to_end(&mut src.pending)
            .map_err(&err)?;
        src.offset += (src.pending.len() - before) as u64;
        Ok(())
    }

    fn save(&self) -> Result<(), CaptureError> {
        let saved = Saved {
            stdout: self.sources[0].committed,
            stderr: self.sources[1].committed,
            records_len: self.records_len,
            last_us: self.last_us,
        };
        let data = serde_json::to_vec(&saved).map_err(|e| io::Error::other(e.to_string()));
        let path = self.dir.join(STATE);
        let tmp = self.dir.join(".capture.json.tmp");
        data.and_then(|d| std::fs::write(&tmp, d))
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(self.io("saving capture.json"))
    }

    /// `records.log` → `records.log.1`, and a new empty `records.log`.
    fn rotate(&mut self) -> Result<(), CaptureError> {
        let (cur, old) = (self.dir.join(RECORDS), self.dir.join(RECORDS_OLD));
        std::fs::rename(&cur, &old).map_err(self.io("rotating records.log"))?;
        self.records = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&cur)
            .map_err(self.io("creating records.log"))?;
        self.records_len = 0;
        self.save()
    }

    /// Frees the consumed start of each source once enough has been consumed.
    fn punch(&mut self) {
        let every = (self.cap / 2).min(READ_MAX);
        for src in &mut self.sources {
            let upto = src.committed;
            let Some(file) = src.file.as_ref() else {
                continue;
            };
            if upto < src.punched + every {
                continue;
            }
            let flags = nix::fcntl::FallocateFlags::FALLOC_FL_PUNCH_HOLE
                | nix::fcntl::FallocateFlags::FALLOC_FL_KEEP_SIZE;
            match nix::fcntl::fallocate(file.as_fd(), flags, 0, upto as i64) {
                Ok(()) => src.punched = upto,
                Err(e) => {
                    // Not supported by this file system: the file keeps its blocks.
                    tracing::debug!(path = %src.path.display(), "punching the consumed output: {e}");
                    src.punched = upto;
                }
            }
        }
    }
}

/// A one-shot capture of everything left (partial lines included), for a job whose
/// process ended while no capture ran (it died while the agent was down, or its start
/// failed).
pub fn drain(dir: &Path, cap: u64) -> Result<(), CaptureError> {
    let mut capture = Capture::open(dir, cap)?;
    while capture.poll(true)? {}
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(dir: &Path) -> Vec<String> {
        let mut all = std::fs::read_to_string(dir.join(RECORDS_OLD)).unwrap_or_default();
        all.push_str(&std::fs::read_to_string(dir.join(RECORDS)).unwrap());
        all.lines().map(str::to_string).collect()
    }

    fn append(path: &Path, data: &[u8]) {
        OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .unwrap()
            .write_all(data)
            .unwrap();
    }

    #[test]
    fn lines_get_increasing_timestamps_and_their_stream() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Capture::open(dir.path(), DEFAULT_CAP_BYTES).unwrap();
        assert!(!c.poll(false).unwrap(), "no output yet");
        append(&dir.path().join(STDOUT), b"one\ntwo\npart");
        append(&dir.path().join(STDERR), b"bad\n");
        assert!(c.poll(false).unwrap());
        let r = records(dir.path());
        assert_eq!(r.len(), 3, "{r:?}");
        let parsed: Vec<_> = r.iter().map(|l| parse(l.as_bytes()).unwrap()).collect();
        assert_eq!(parsed[0].text, b"one");
        assert_eq!(parsed[1].text, b"two");
        assert_eq!(
            (parsed[2].stream, parsed[2].text),
            (Stream::Stderr, &b"bad"[..])
        );
        assert!(parsed.windows(2).all(|w| w[0].ts < w[1].ts), "{r:?}");
        assert_eq!(parsed[0].ts.len(), "2026-11-23T12:00:00.123456Z".len());
        // The partial line waits for its newline …
        append(&dir.path().join(STDOUT), b"ial\n");
        c.poll(false).unwrap();
        let last = records(dir.path()).pop().unwrap();
        assert!(last.ends_with(" out partial"), "{last}");
        // … or the end of the process.
        append(&dir.path().join(STDOUT), b"no newline");
        c.poll(true).unwrap();
        let last = records(dir.path()).pop().unwrap();
        assert!(last.ends_with(" out~ no newline"), "{last}");
    }

    #[test]
    fn a_reopened_capture_neither_repeats_nor_loses_lines() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join(STDOUT);
        let mut c = Capture::open(dir.path(), DEFAULT_CAP_BYTES).unwrap();
        append(&out, b"a\nb\n");
        c.poll(false).unwrap();
        let last_ts = parse(records(dir.path())[1].as_bytes())
            .unwrap()
            .ts
            .to_string();
        drop(c);
        // A batch appended but not saved (the agent was killed in between).
        append(
            &dir.path().join(RECORDS),
            b"2099-01-01T00:00:00.000000Z out junk\n",
        );
        append(&out, b"c\n");
        let mut c = Capture::open(dir.path(), DEFAULT_CAP_BYTES).unwrap();
        c.poll(false).unwrap();
        let r = records(dir.path());
        let texts: Vec<_> = r
            .iter()
            .map(|l| String::from_utf8_lossy(parse(l.as_bytes()).unwrap().text).into_owned())
            .collect();
        assert_eq!(texts, ["a", "b", "c"]);
        assert!(parse(r[2].as_bytes()).unwrap().ts > last_ts.as_str());
    }

    #[test]
    fn the_cap_drops_the_oldest_half() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Capture::open(dir.path(), MIN_CAP_BYTES).unwrap();
        for n in 0..2000 {
            append(
                &dir.path().join(STDOUT),
                format!("line {n:05}\n").as_bytes(),
            );
            if n % 50 == 0 {
                c.poll(false).unwrap();
            }
        }
        c.poll(false).unwrap();
        let kept = std::fs::metadata(dir.path().join(RECORDS)).unwrap().len()
            + std::fs::metadata(dir.path().join(RECORDS_OLD))
                .unwrap()
                .len();
        // Each half passes cap/2 by at most one batch (cap/8 and a record).
        assert!(
            kept <= MIN_CAP_BYTES + 2 * (MIN_CAP_BYTES / 8 + 100),
            "kept {kept}"
        );
        let r = records(dir.path());
        assert!(r.last().unwrap().ends_with("line 01999"));
        assert!(!r[0].ends_with("line 00000"), "the oldest lines are gone");
        let n: Vec<u32> = r
            .iter()
            .map(|l| l.rsplit(' ').next().unwrap().parse().unwrap())
            .collect();
        assert!(
            n.windows(2).all(|w| w[1] == w[0] + 1),
            "no gap in what is kept"
        );
    }

    #[test]
    fn long_lines_are_split() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Capture::open(dir.path(), DEFAULT_CAP_BYTES).unwrap();
        append(&dir.path().join(STDERR), &vec![b'x'; MAX_LINE + 10]);
        append(&dir.path().join(STDERR), b"\n");
        c.poll(false).unwrap();
        let r = records(dir.path());
        assert_eq!(r.len(), 2);
        let first = parse(r[0].as_bytes()).unwrap();
        assert!(first.fragment && first.text.len() == MAX_LINE);
        assert_eq!(parse(r[1].as_bytes()).unwrap().text, b"xxxxxxxxxx");
    }

    #[test]
    fn legacy_jobs_are_read_from_output_log() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join(LEGACY), b"old style\n").unwrap();
        drain(dir.path(), DEFAULT_CAP_BYTES).unwrap();
        assert!(records(dir.path())[0].ends_with(" out old style"));
    }

    #[test]
    fn timestamps_format() {
        assert_eq!(format_micros(1_000_000), "1970-01-01T00:00:01.000000Z");
        assert_eq!(format_micros(86_400_000_123), "1970-01-02T00:00:00.000123Z");
    }
}
