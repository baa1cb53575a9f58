//! Group commit: one flush answers every commit waiting when it starts.
//!
//! Owns the flush thread and nothing else; when a head counts as durable
//! is [`super::commit`]'s to say.

use crate::StoreError;

/// Group commit on a thread of its own. sled 0.34's `flush_async` can hang
/// when several futures await it at once (sled issues 1241 and 1308), so
/// flushes are made with the blocking `flush` here instead: every request
/// waiting when a flush starts is answered by that one flush.
pub(super) struct Flusher {
    requests:
        Option<std::sync::mpsc::Sender<tokio::sync::oneshot::Sender<Result<(), sled::Error>>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    pub(super) fn start(db: sled::Db) -> Result<Self, StoreError> {
        let (tx, rx) =
            std::sync::mpsc::channel::<tokio::sync::oneshot::Sender<Result<(), sled::Error>>>();
        let thread = std::thread::Builder::new()
            .name("ledger-flush".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut waiting = vec![first];
                    waiting.extend(rx.try_iter());
                    // While it syncs, commits wait at the gate, not in sled.
                    let gate = super::gate::GATE.blocking_read();
                    let result = db.flush().map(|_| ());
                    drop(gate);
                    for w in waiting {
                        let _ = w.send(result.clone());
                    }
                }
            })
            .map_err(StoreError::io(
                "failed to start the flush thread",
                "ledger-flush",
            ))?;
        Ok(Self {
            requests: Some(tx),
            thread: Some(thread),
        })
    }

    pub(super) async fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let gone = || StoreError::Db {
            action: "failed to flush ledger",
            cause: sled::Error::Io(std::io::Error::other("the flush thread stopped")),
        };
        self.requests
            .as_ref()
            .ok_or_else(gone)?
            .send(tx)
            .map_err(|_| gone())?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            // The error itself, not its text: whether the disk is full is
            // read from its kind.
            Ok(Err(cause)) => Err(StoreError::Db {
                action: "failed to flush ledger",
                cause,
            }),
            Err(_) => Err(gone()),
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        // Closing the channel ends the thread; joining it releases its
        // handle on the database before the store is reported closed.
        self.requests.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
