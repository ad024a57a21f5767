//! The job's combined stdout+stderr as an HTTP body: from the start of `output.log`, and
//! with `follow` on, tailing the file (polling, woken early by status changes) until the
//! job is final, which the job manager only reports once the output layer step is done.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use paas_api::JobStatus;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::watch;

use super::is_final;

const POLL: Duration = Duration::from_millis(200);
const CHUNK: usize = 64 * 1024;

struct Tail {
    path: PathBuf,
    file: Option<tokio::fs::File>,
    status: watch::Receiver<JobStatus>,
    follow: bool,
    /// The job is gone from the table: read what is left and end.
    orphaned: bool,
}

/// A byte stream of the log at `path`. With `follow`, it ends once the job is final and
/// everything written before that has been sent.
pub fn stream(
    path: PathBuf,
    status: watch::Receiver<JobStatus>,
    follow: bool,
) -> impl Stream<Item = std::io::Result<Bytes>> + Send + 'static {
    let tail = Tail {
        path,
        file: None,
        status,
        follow,
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

async fn next_chunk(tail: &mut Tail) -> std::io::Result<Option<Bytes>> {
    let mut buf = vec![0u8; CHUNK];
    loop {
        // Whether the job was final BEFORE this read: if so, this read sees all output.
        let was_final = tail.orphaned || is_final(tail.status.borrow().state);
        if tail.file.is_none() {
            match tokio::fs::File::open(&tail.path).await {
                Ok(f) => tail.file = Some(f),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        if let Some(file) = tail.file.as_mut() {
            let n = file.read(&mut buf).await?;
            if n > 0 {
                buf.truncate(n);
                return Ok(Some(Bytes::from(buf)));
            }
            // Rotated (truncated) under us: carry on from its new start.
            let pos = file.stream_position().await?;
            if file.metadata().await?.len() < pos {
                file.seek(std::io::SeekFrom::Start(0)).await?;
                continue;
            }
        }
        if !tail.follow || was_final {
            return Ok(None);
        }
        // Woken by a status change or the poll interval; an error means the job is gone.
        if let Ok(Err(_)) = tokio::time::timeout(POLL, tail.status.changed()).await {
            tail.orphaned = true;
        }
    }
}

/// A job's `output.log` is rotated once it passes this size: its content moves to
/// `output.log.1` (replacing the previous one) and it starts again empty.
pub const LOG_CAP_BYTES: u64 = 8 * 1024 * 1024;
/// How often the sizes are checked.
pub const ROTATE_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// Rotates `path` if it is larger than `cap`: copies it to `<path>.1` and truncates it (the
/// container appends with `O_APPEND`, so its next write lands at the new start; a write
/// between the copy and the truncation is lost). Returns whether it rotated.
pub fn rotate_if_large(path: &std::path::Path, cap: u64) -> std::io::Result<bool> {
    let len = match std::fs::metadata(path) {
        Ok(m) => m.len(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if len <= cap {
        return Ok(false);
    }
    let mut old = path.as_os_str().to_owned();
    old.push(".1");
    std::fs::copy(path, &old)?;
    std::fs::OpenOptions::new()
        .write(true)
        .open(path)?
        .set_len(0)?;
    Ok(true)
}

/// Checks every job's log size every [`ROTATE_EVERY`], forever.
pub async fn rotate_forever(agent: std::sync::Arc<crate::agent::Agent>) {
    let mut ticker = tokio::time::interval(ROTATE_EVERY);
    loop {
        ticker.tick().await;
        let paths: Vec<PathBuf> = agent.jobs.all().iter().map(|j| j.log_path()).collect();
        let rotated = tokio::task::spawn_blocking(move || {
            paths
                .into_iter()
                .filter(|p| rotate_if_large(p, LOG_CAP_BYTES).unwrap_or(false))
                .count()
        })
        .await
        .unwrap_or(0);
        if rotated > 0 {
            tracing::info!(rotated, "rotated job logs over {LOG_CAP_BYTES} bytes");
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

    #[tokio::test]
    async fn follow_streams_until_final_and_loses_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output.log");
        let mut file = std::fs::File::create(&path).unwrap();
        file.write_all(b"first\n").unwrap();
        let (tx, rx) = watch::channel(status(JobState::Up));
        let collected = tokio::spawn(async move {
            let mut s = std::pin::pin!(stream(path, rx, true));
            let mut out = Vec::new();
            while let Some(chunk) = s.next().await {
                out.extend_from_slice(&chunk.unwrap());
            }
            out
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        file.write_all(b"second\n").unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        // Written just before the job turns final: must still be sent.
        file.write_all(b"last\n").unwrap();
        tx.send_modify(|s| s.state = JobState::Down);
        let out = tokio::time::timeout(Duration::from_secs(10), collected)
            .await
            .expect("the stream ends once the job is final")
            .unwrap();
        assert_eq!(out, b"first\nsecond\nlast\n");
    }

    #[tokio::test]
    async fn without_follow_it_returns_what_is_there() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output.log");
        std::fs::write(&path, b"so far\n").unwrap();
        let (_tx, rx) = watch::channel(status(JobState::Up));
        let chunks: Vec<_> = stream(path, rx, false).collect().await;
        let out: Vec<u8> = chunks
            .into_iter()
            .flat_map(|c| c.unwrap().to_vec())
            .collect();
        assert_eq!(out, b"so far\n");
    }

    #[tokio::test]
    async fn a_deleted_job_ends_the_stream() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output.log");
        std::fs::write(&path, b"x").unwrap();
        let (tx, rx) = watch::channel(status(JobState::Up));
        drop(tx);
        let chunks: Vec<_> =
            tokio::time::timeout(Duration::from_secs(5), stream(path, rx, true).collect())
                .await
                .unwrap();
        assert_eq!(chunks.len(), 1);
    }

    #[tokio::test]
    async fn rotation_keeps_the_old_part_and_followers_continue_from_the_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("output.log");
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"0123456789\n").unwrap();
        assert!(!rotate_if_large(&path, 100).unwrap(), "small logs stay");

        let (tx, rx) = watch::channel(status(JobState::Up));
        let mut s = Box::pin(stream(path.clone(), rx, true));
        assert_eq!(&s.next().await.unwrap().unwrap()[..], b"0123456789\n");

        assert!(rotate_if_large(&path, 5).unwrap());
        assert_eq!(
            std::fs::read(dir.path().join("output.log.1")).unwrap(),
            b"0123456789\n"
        );
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        f.write_all(b"after\n").unwrap();
        assert_eq!(&s.next().await.unwrap().unwrap()[..], b"after\n");
        tx.send(status(JobState::Down)).unwrap();
        assert!(s.next().await.is_none());
    }
}
