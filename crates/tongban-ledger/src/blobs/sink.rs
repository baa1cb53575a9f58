//! The thread behind a large blob's writer: it hashes and writes (and
//! syncs the written part behind itself every [`WRITE_BEHIND`] bytes),
//! fed the chunks, without a copy, through a bounded async channel. The
//! receiving task waits for it without holding a runtime thread (a
//! blocking `send` did).
//!
//! Not here: the size and digest checks and the move into place
//! (`writer`).

use std::fs::File;
use std::io::Write;
use std::thread::JoinHandle;

use bytes::Bytes;
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, oneshot};

use super::WRITE_BEHIND;

/// Chunks queued for each thread at most: the receiver slows down to the
/// disk (or to the hashing) rather than buffering without bound.
const QUEUED: usize = 32;

/// A thread whose result can be awaited without blocking a runtime thread,
/// or joined (on the paths that drop an upload).
#[derive(Debug)]
pub(super) struct Worker<T> {
    done: oneshot::Receiver<T>,
    thread: JoinHandle<()>,
}

impl<T: Send + 'static> Worker<T> {
    /// Starts `work` on a thread named `name`.
    pub(super) fn spawn(
        name: &str,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> std::io::Result<Self> {
        let (tx, done) = oneshot::channel();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                let _ = tx.send(work());
            })?;
        Ok(Self { done, thread })
    }

    /// Its result; `None` if it panicked.
    pub(super) async fn wait(mut self) -> Option<T> {
        let result = (&mut self.done).await.ok();
        // It has sent its result: the join only collects the thread.
        let _ = self.thread.join();
        result
    }

    /// Its result, blocking until it ends; `None` if it panicked.
    pub(super) fn join(mut self) -> Option<T> {
        let _ = self.thread.join();
        self.done.try_recv().ok()
    }
}

/// What the thread ends with: the file, and the content's SHA-256.
pub(super) type Written = (File, [u8; 32]);

/// The writing thread of one large blob.
#[derive(Debug)]
pub(super) struct FileSink {
    chunks: Option<mpsc::Sender<Bytes>>,
    writer: Option<Worker<std::io::Result<Written>>>,
}

impl FileSink {
    pub(super) fn start(file: File) -> std::io::Result<Self> {
        let (chunks, rx) = mpsc::channel::<Bytes>(QUEUED);
        let writer = Worker::spawn("blob-writer", move || write_behind(file, rx))?;
        Ok(Self {
            chunks: Some(chunks),
            writer: Some(writer),
        })
    }

    /// Hands a chunk to the thread, waiting while it has [`QUEUED`]
    /// chunks; `Err` once it has stopped (on an error `finish` returns).
    pub(super) async fn send(&mut self, chunk: Bytes) -> Result<(), ()> {
        match &self.chunks {
            Some(tx) => tx.send(chunk).await.map_err(|_| ()),
            None => Err(()),
        }
    }

    /// Waits for everything sent to be hashed and written; the file and
    /// its digest.
    pub(super) async fn finish(&mut self) -> std::io::Result<Written> {
        self.chunks.take();
        match self.writer.take() {
            Some(w) => w
                .wait()
                .await
                .unwrap_or_else(|| Err(std::io::Error::other("the blob writer thread panicked"))),
            None => Err(std::io::Error::other("the blob writer already finished")),
        }
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        // An upload given up: close the channel and wait, so that the file
        // is closed (and no sync runs) before the writer removes it.
        self.chunks.take();
        if let Some(w) = self.writer.take() {
            let _ = w.join();
        }
    }
}

/// Hashes and writes the chunks as they come, syncing what was written so far in the
/// background every [`WRITE_BEHIND`] bytes, so that the last sync finds
/// little left.
fn write_behind(mut file: File, mut chunks: mpsc::Receiver<Bytes>) -> std::io::Result<Written> {
    let mut sha = Sha256::new();
    let mut unsynced = 0u64;
    let mut behind: Option<JoinHandle<()>> = None;
    while let Some(chunk) = chunks.blocking_recv() {
        sha.update(&chunk);
        file.write_all(&chunk)?;
        unsynced += chunk.len() as u64;
        if unsynced >= WRITE_BEHIND && behind.as_ref().is_none_or(|t| t.is_finished()) {
            // Best effort: an error here shows again in the final sync.
            let clone = file.try_clone()?;
            unsynced = 0;
            behind = Some(std::thread::spawn(move || {
                let _ = clone.sync_data();
            }));
        }
    }
    if let Some(behind) = behind {
        let _ = behind.join();
    }
    Ok((file, sha.finalize().into()))
}
