//! A blob's bytes as an HTTP body, read by one blocking task in 1 MiB pieces and handed to
//! the response through a small channel. `tokio::fs::File` sends every read to the blocking
//! pool on its own; for a layer of hundreds of MB those hand-offs, not the disk or the
//! socket, capped a pull at ~0.7 GB/s (`bench/run registry`).

use std::io::{Read, Seek, SeekFrom};

use axum::body::Body;
use bytes::Bytes;

/// Bytes read per piece.
const PIECE: usize = 1024 * 1024;
/// Pieces read ahead of the socket.
const AHEAD: usize = 4;

/// `count` bytes of `file` from `start`, streamed. A read error (or the file ending early)
/// ends the body with that error, so the client sees a cut transfer, never short data.
pub(super) fn file_body(mut file: std::fs::File, start: u64, count: u64) -> Body {
    let (tx, rx) = tokio::sync::mpsc::channel::<std::io::Result<Bytes>>(AHEAD);
    tokio::task::spawn_blocking(move || {
        if start > 0 {
            if let Err(e) = file.seek(SeekFrom::Start(start)) {
                let _ = tx.blocking_send(Err(e));
                return;
            }
        }
        let mut left = count;
        while left > 0 {
            let mut piece = vec![0u8; left.min(PIECE as u64) as usize];
            match file.read(&mut piece) {
                Ok(0) => {
                    let _ = tx.blocking_send(Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "the blob file is shorter than its length",
                    )));
                    return;
                }
                Ok(n) => {
                    piece.truncate(n);
                    left -= n as u64;
                    // The client went away: stop reading.
                    if tx.blocking_send(Ok(Bytes::from(piece))).is_err() {
                        return;
                    }
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => {
                    let _ = tx.blocking_send(Err(e));
                    return;
                }
            }
        }
    });
    Body::from_stream(futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|piece| (piece, rx))
    }))
}
