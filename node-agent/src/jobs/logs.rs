//! The job's combined stdout+stderr as an HTTP body: from the start of `output.log`, and
//! with `follow` on, tailing the file (polling, woken early by status changes) until the
//! job is final, which the job manager only reports once the output layer step is done.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use paas_api::JobStatus;
use tokio::io::AsyncReadExt;
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
}
