//! A job's log as an HTTP body, read from the records the capture wrote
//! (`records.log.1` then `records.log`, see [`super::capture`]):
//!
//! * [`Format::Raw`] (the default): the output as the process wrote it, stdout and stderr
//!   interleaved in capture order (what builds, `paas run` and old callers read);
//! * [`Format::Timestamped`]: one line per record, `2026-11-23T12:00:00.123456Z stdout
//!   text`, the capture time in microseconds (strictly increasing within a job) and the
//!   stream.
//!
//! `lines=N` starts with the last N records, `since=TS` after the record stamped TS.
//! With `follow` on, it then tails the records (woken by the capture, or polling) until
//! the job is final, which the job manager only reports once the capture's last read and
//! the output layer step are done, so nothing written before the end is lost.

use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use paas_api::JobStatus;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::watch;

use super::capture::{self, RECORDS, RECORDS_OLD};
use super::is_final;

const POLL: Duration = Duration::from_millis(200);
const CHUNK: usize = 64 * 1024;

/// How records are written out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Format {
    #[default]
    Raw,
    Timestamped,
}

/// What to send.
#[derive(Debug, Clone, Default)]
pub struct LogRequest {
    pub follow: bool,
    pub format: Format,
    /// Only the last N records of what is kept (then, with follow, the new ones).
    pub lines: Option<usize>,
    /// Only records stamped after this timestamp.
    pub since: Option<String>,
}

/// Converts one record line (no newline) to the requested format.
fn render(line: &[u8], format: Format, out: &mut Vec<u8>) {
    let Some(r) = capture::parse(line) else {
        return;
    };
    match format {
        Format::Raw => {
            out.extend_from_slice(r.text);
            if !r.fragment {
                out.push(b'\n');
            }
        }
        Format::Timestamped => {
            out.extend_from_slice(r.ts.as_bytes());
            out.push(b' ');
            out.extend_from_slice(r.stream.name().as_bytes());
            out.push(b' ');
            out.extend_from_slice(r.text);
            out.push(b'\n');
        }
    }
}

struct Tail {
    dir: PathBuf,
    req: LogRequest,
    /// The records file being read, its inode, and how far it was read.
    file: Option<(tokio::fs::File, u64)>,
    /// Bytes read after the last complete record.
    partial: Vec<u8>,
    started: bool,
    status: watch::Receiver<JobStatus>,
    appended: Option<watch::Receiver<u64>>,
    /// The job is gone from the table: read what is left and end.
    orphaned: bool,
}

/// The byte stream of the job dir `dir`'s log. With `follow`, it ends once the job is
/// final and everything captured before that has been sent.
pub fn stream(
    dir: PathBuf,
    status: watch::Receiver<JobStatus>,
    appended: Option<watch::Receiver<u64>>,
    req: LogRequest,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let tail = Tail {
        dir,
        req,
        file: None,
        partial: Vec::new(),
        started: false,
        status,
        appended,
        orphaned: false,
    };
    futures_util::stream::unfold(Some(tail), |state| async move {
        let mut tail = state?;
        match next_chunk(&mut tail).await {
            Ok(Some(bytes)) => Some((Ok(bytes), Some(tail))),
            Ok(None) => None,
            Err(e) => Some((Err(e), None)),
        }
    })
}

async fn open(path: &std::path::Path) -> std::io::Result<Option<(tokio::fs::File, u64)>> {
    match tokio::fs::File::open(path).await {
        Ok(f) => {
            let ino = f.metadata().await?.ino();
            Ok(Some((f, ino)))
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The first chunk: what is kept (older half first), filtered by `since` and `lines`.
async fn first_chunk(tail: &mut Tail) -> std::io::Result<Vec<u8>> {
    // The current file first: if it rotates meanwhile, the older half is what we hold.
    let mut current = Vec::new();
    tail.file = open(&tail.dir.join(RECORDS)).await?;
    let mut ino = None;
    if let Some((f, i)) = tail.file.as_mut() {
        f.read_to_end(&mut current).await?;
        ino = Some(*i);
    }
    let mut older = Vec::new();
    if let Some((mut f, i)) = open(&tail.dir.join(RECORDS_OLD)).await? {
        if Some(i) != ino {
            f.read_to_end(&mut older).await?;
        }
    }
    // An incomplete last record (being written) waits for the next read.
    let complete = current
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    tail.partial = current.split_off(complete);
    let mut records: Vec<&[u8]> = older
        .split(|b| *b == b'\n')
        .chain(current.split(|b| *b == b'\n'))
        .filter(|l| !l.is_empty())
        .collect();
    if let Some(since) = tail.req.since.as_deref() {
        records.retain(|l| capture::parse(l).is_some_and(|r| r.ts > since));
    }
    if let Some(n) = tail.req.lines {
        let skip = records.len().saturating_sub(n);
        records.drain(..skip);
    }
    let mut out = Vec::new();
    for r in records {
        render(r, tail.req.format, &mut out);
    }
    Ok(out)
}

/// Renders the complete records in `buf` (after what is left of the previous read).
fn take_complete(tail: &mut Tail, buf: &[u8]) -> Vec<u8> {
    tail.partial.extend_from_slice(buf);
    let complete = tail
        .partial
        .iter()
        .rposition(|b| *b == b'\n')
        .map_or(0, |p| p + 1);
    let rest = tail.partial.split_off(complete);
    let done = std::mem::replace(&mut tail.partial, rest);
    let mut out = Vec::new();
    for line in done.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        if let Some(since) = tail.req.since.as_deref() {
            if capture::parse(line).is_none_or(|r| r.ts <= since) {
                continue;
            }
        }
        render(line, tail.req.format, &mut out);
    }
    out
}

async fn next_chunk(tail: &mut Tail) -> std::io::Result<Option<Bytes>> {
    if !tail.started {
        tail.started = true;
        let out = first_chunk(tail).await?;
        if !out.is_empty() {
            return Ok(Some(Bytes::from(out)));
        }
    }
    let mut buf = vec![0u8; CHUNK];
    loop {
        // Whether the job was final BEFORE this read: if so, this read sees all output.
        let was_final = tail.orphaned || is_final(tail.status.borrow().state);
        if tail.file.is_none() {
            tail.file = open(&tail.dir.join(RECORDS)).await?;
            tail.partial.clear();
        }
        if let Some((file, ino)) = tail.file.as_mut() {
            let n = file.read(&mut buf).await?;
            if n > 0 {
                let out = take_complete(tail, &buf[..n]);
                if !out.is_empty() {
                    return Ok(Some(Bytes::from(out)));
                }
                continue;
            }
            // Rotated under us: finish this file (already at its end), then the new one.
            let now = tokio::fs::metadata(tail.dir.join(RECORDS)).await.ok();
            if now.is_some_and(|m| m.ino() != *ino) {
                let pos = file.stream_position().await?;
                if file.metadata().await?.len() == pos {
                    tail.file = None;
                    continue;
                }
                continue;
            }
        }
        if !tail.req.follow || was_final {
            return Ok(None);
        }
        // Woken by new records, a status change or the poll interval; a closed status
        // channel means the job is gone.
        let appended = async {
            match tail.appended.as_mut() {
                Some(rx) => {
                    if rx.changed().await.is_err() {
                        std::future::pending::<()>().await;
                    }
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = tail.status.changed() => {
                if changed.is_err() {
                    tail.orphaned = true;
                }
            }
            () = appended => {}
            () = tokio::time::sleep(POLL) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use paas_api::JobState;
    use std::io::Write;

    fn status(state: JobState) -> JobStatus {
        serde_json::from_value(serde_json::json!({"id": "j", "state": state})).unwrap()
    }

    fn append(dir: &std::path::Path, file: &str, data: &[u8]) {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join(file))
            .unwrap()
            .write_all(data)
            .unwrap();
    }

    async fn collect(s: impl Stream<Item = std::io::Result<Bytes>>) -> String {
        let chunks: Vec<_> = tokio::time::timeout(Duration::from_secs(10), s.collect())
            .await
            .expect("the stream ends");
        let bytes: Vec<u8> = chunks
            .into_iter()
            .flat_map(|c| c.unwrap().to_vec())
            .collect();
        String::from_utf8(bytes).unwrap()
    }

    #[tokio::test]
    async fn follow_streams_until_final_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let mut cap = capture::Capture::open(&path, capture::DEFAULT_CAP_BYTES).unwrap();
        append(&path, capture::STDOUT, b"first\n");
        cap.poll(false).unwrap();
        let (tx, rx) = watch::channel(status(JobState::Up));
        let req = LogRequest {
            follow: true,
            ..LogRequest::default()
        };
        let collected = tokio::spawn(collect(stream(path.clone(), rx, None, req)));
        tokio::time::sleep(Duration::from_millis(300)).await;
        append(&path, capture::STDERR, b"second\n");
        cap.poll(false).unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Captured just before the job turns final: must still be sent.
        append(&path, capture::STDOUT, b"last");
        cap.poll(true).unwrap();
        tx.send_modify(|s| s.state = JobState::Down);
        assert_eq!(collected.await.unwrap(), "first\nsecond\nlast");
    }

    #[tokio::test]
    async fn timestamped_lines_since_and_last_n() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let mut cap = capture::Capture::open(&path, capture::DEFAULT_CAP_BYTES).unwrap();
        append(&path, capture::STDOUT, b"a\nb\n");
        append(&path, capture::STDERR, b"c\n");
        cap.poll(false).unwrap();
        let (_tx, rx) = watch::channel(status(JobState::Up));
        let req = LogRequest {
            format: Format::Timestamped,
            ..LogRequest::default()
        };
        let all = collect(stream(path.clone(), rx.clone(), None, req.clone())).await;
        let lines: Vec<&str> = all.lines().collect();
        assert_eq!(lines.len(), 3, "{all}");
        assert!(lines[0].ends_with(" stdout a") && lines[2].ends_with(" stderr c"));
        let ts_a = lines[0].split(' ').next().unwrap().to_string();
        let since = LogRequest {
            since: Some(ts_a),
            ..req.clone()
        };
        let after = collect(stream(path.clone(), rx.clone(), None, since)).await;
        assert_eq!(after.lines().count(), 2, "{after}");
        let last = LogRequest {
            lines: Some(1),
            ..req
        };
        let one = collect(stream(path, rx, None, last)).await;
        assert!(
            one.ends_with(" stderr c\n") && one.lines().count() == 1,
            "{one}"
        );
    }

    #[tokio::test]
    async fn a_deleted_job_ends_the_stream() {
        let dir = tempfile::tempdir().unwrap();
        let (tx, rx) = watch::channel(status(JobState::Up));
        drop(tx);
        let req = LogRequest {
            follow: true,
            ..LogRequest::default()
        };
        assert_eq!(collect(stream(dir.path().into(), rx, None, req)).await, "");
    }

    #[tokio::test]
    async fn followers_go_on_across_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().to_path_buf();
        let mut cap = capture::Capture::open(&path, capture::MIN_CAP_BYTES).unwrap();
        append(&path, capture::STDOUT, b"start\n");
        cap.poll(false).unwrap();
        let (tx, rx) = watch::channel(status(JobState::Up));
        let req = LogRequest {
            follow: true,
            ..LogRequest::default()
        };
        let mut s = Box::pin(stream(path.clone(), rx, None, req));
        assert_eq!(&s.next().await.unwrap().unwrap()[..], b"start\n");
        for n in 0..1000 {
            append(&path, capture::STDOUT, format!("line {n}\n").as_bytes());
            if n % 100 == 0 {
                cap.poll(false).unwrap();
            }
        }
        cap.poll(true).unwrap();
        assert!(path.join(RECORDS_OLD).exists(), "rotated at least once");
        tx.send(status(JobState::Down)).unwrap();
        let mut got = String::new();
        while let Some(c) = s.next().await {
            got.push_str(std::str::from_utf8(&c.unwrap()).unwrap());
        }
        // Rotations may drop halves a slow follower had not read yet, but what it gets is
        // in order, never repeated, and ends with the last line.
        let n: Vec<u32> = got
            .lines()
            .map(|l| l.trim_start_matches("line ").parse().unwrap())
            .collect();
        assert!(n.windows(2).all(|w| w[0] < w[1]), "{got}");
        assert!(got.ends_with("line 999\n"));
    }
}
