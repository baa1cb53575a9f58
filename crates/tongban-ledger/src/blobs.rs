//! Content-addressed material files under `<data_dir>/blobs/`.
//!
//! Materials up to [`INLINE_MAX`] bytes are not files at all: the writer
//! keeps them in memory and the caller hands them to the commit that names
//! them (`Batch::put_blob`), which appends them to the material log, so one
//! sync makes a whole batch of small materials durable instead of two
//! fsyncs per file.
//!
//! A larger blob is written to a temporary file by a thread of its own
//! (hashing and writing while the caller receives the next chunk, syncing
//! behind itself every 8 MiB) while its digest and size are checked, then
//! fsynced, renamed to `blobs/<first two hex>/<sha256 hex>` and the
//! directory fsynced, all before any ledger entry names it. A writer dropped
//! before [`BlobWriter::finish`] removes its temporary file, so a truncated or
//! refused upload leaves nothing behind.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::thread::JoinHandle;

use bytes::Bytes;

use sha2::{Digest, Sha256};

use crate::StoreError;
use crate::records::hex;

/// Materials up to this size are stored inline in the database.
pub const INLINE_MAX: u64 = 256 * 1024;

/// While a large blob arrives, its written part is synced in the
/// background every this many bytes, so the disk writes alongside the
/// network instead of after it: the final fsync then finds little left.
/// (Receiving 256 MiB, a final fsync of the whole took as long again as
/// the transfer.)
const WRITE_BEHIND: u64 = 8 << 20;

/// The blob directory of one node.
#[derive(Debug)]
pub struct BlobStore {
    dir: PathBuf,
    tmp: PathBuf,
    counter: AtomicU64,
}

impl BlobStore {
    /// Opens (creating) `dir`, discarding temporary files a crash left.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let tmp = dir.join("tmp");
        crate::modes::create_dir(&tmp)?;
        for leftover in fs::read_dir(&tmp)
            .map_err(StoreError::io("failed to read", &tmp))?
            .flatten()
        {
            let _ = fs::remove_file(leftover.path());
        }
        Ok(Self {
            dir: dir.to_path_buf(),
            tmp,
            counter: AtomicU64::new(0),
        })
    }

    /// Where the blob with this digest lives.
    pub fn path(&self, sha256_hex: &str) -> PathBuf {
        self.dir
            .join(&sha256_hex[..2.min(sha256_hex.len())])
            .join(sha256_hex)
    }

    /// Whether the blob is present.
    pub fn contains(&self, sha256_hex: &str) -> bool {
        self.path(sha256_hex).is_file()
    }

    /// Opens a blob for reading.
    pub fn open_blob(&self, sha256_hex: &str) -> Result<File, StoreError> {
        let path = self.path(sha256_hex);
        File::open(&path).map_err(StoreError::io("failed to open blob", path))
    }

    /// Removes a blob (used to undo blobs whose ledger write failed).
    pub fn remove(&self, sha256_hex: &str) {
        let _ = fs::remove_file(self.path(sha256_hex));
    }

    /// Starts writing a blob that must come to exactly `size` bytes with this
    /// SHA-256. `what` names it in errors (e.g. `material "id-card"`).
    pub fn writer(
        &self,
        what: String,
        size: u64,
        sha256: [u8; 32],
    ) -> Result<BlobWriter, StoreError> {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let tmp = self.tmp.join(format!("{}-{n}", std::process::id()));
        let (sink, memory) = if size <= INLINE_MAX {
            (
                None,
                Some((Sha256::new(), Vec::with_capacity(size as usize))),
            )
        } else {
            let file = crate::modes::create_new_file(&tmp)?;
            let sink =
                FileSink::start(file).map_err(StoreError::io("failed to start writing", &tmp));
            match sink {
                Ok(sink) => (Some(sink), None),
                Err(e) => {
                    let _ = fs::remove_file(&tmp);
                    return Err(e);
                }
            }
        };
        Ok(BlobWriter {
            what,
            sink,
            memory,
            tmp,
            written: 0,
            size,
            sha256,
            dir: self.dir.clone(),
        })
    }
}

/// What a blob writer thread ends with: the file and the content's SHA-256.
type Written = (File, [u8; 32]);

/// A thread that hashes and writes a large blob while the caller goes on
/// receiving: hashing on the receiving task kept a 256 MiB handoff to one
/// core. It also syncs the written part in the background every
/// [`WRITE_BEHIND`] bytes.
#[derive(Debug)]
struct FileSink {
    chunks: Option<SyncSender<Bytes>>,
    thread: Option<JoinHandle<std::io::Result<Written>>>,
}

impl FileSink {
    fn start(file: File) -> std::io::Result<Self> {
        // 32 chunks of 64 KiB in flight at most: the receiver slows down to
        // the disk rather than buffering without bound.
        let (tx, rx) = sync_channel::<Bytes>(32);
        let thread = std::thread::Builder::new()
            .name("blob-writer".into())
            .spawn(move || {
                let mut file = file;
                let mut hasher = Sha256::new();
                let mut unsynced = 0u64;
                let mut behind: Option<JoinHandle<()>> = None;
                for chunk in rx {
                    hasher.update(&chunk);
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
                Ok((file, hasher.finalize().into()))
            })?;
        Ok(Self {
            chunks: Some(tx),
            thread: Some(thread),
        })
    }

    /// Hands a chunk to the thread; `Err` once the thread has stopped.
    fn send(&mut self, chunk: Bytes) -> Result<(), ()> {
        match &self.chunks {
            Some(tx) => tx.send(chunk).map_err(|_| ()),
            None => Err(()),
        }
    }

    /// Waits for everything sent to be written; the file and its digest.
    fn finish(&mut self) -> std::io::Result<Written> {
        self.chunks.take();
        match self.thread.take() {
            Some(t) => t
                .join()
                .unwrap_or_else(|_| Err(std::io::Error::other("the blob writer thread panicked"))),
            None => Err(std::io::Error::other("the blob writer already finished")),
        }
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        // Closes the channel and waits, so the file is closed before the
        // writer removes it.
        let _ = self.finish();
    }
}

/// A blob being written; see the module docs.
#[derive(Debug)]
pub struct BlobWriter {
    what: String,
    /// The writer thread of a large material.
    sink: Option<FileSink>,
    /// Digest so far and content of a material small enough to be stored inline.
    memory: Option<(Sha256, Vec<u8>)>,
    tmp: PathBuf,
    written: u64,
    size: u64,
    sha256: [u8; 32],
    dir: PathBuf,
}

/// A blob made durable.
#[derive(Debug, Clone)]
pub struct FinishedBlob {
    /// Its lowercase hex SHA-256.
    pub sha256_hex: String,
    /// Whether this write created a file (false: inline, or the same
    /// content was already stored).
    pub created: bool,
    /// The content of an inline material, for the caller to store with its
    /// commit (`Batch::put_blob`).
    pub inline: Option<Vec<u8>>,
}

impl BlobWriter {
    /// Bytes received so far.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The declared size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends content; refuses more than the declared size. Takes the
    /// chunk as received (no copy: a large blob's chunks go to its writer
    /// thread as they are).
    pub fn write(&mut self, data: Bytes) -> Result<(), StoreError> {
        let total = self.written + data.len() as u64;
        if total > self.size {
            return Err(StoreError::Content(format!(
                "{} is longer than its declared size of {} bytes",
                self.what, self.size
            )));
        }
        self.written = total;
        if let Some((hasher, memory)) = self.memory.as_mut() {
            hasher.update(&data);
            memory.extend_from_slice(&data);
            return Ok(());
        }
        let sink = self.sink.as_mut().expect("writer used after finish");
        if sink.send(data).is_err() {
            // The thread stopped on a write error: report it.
            let err = match sink.finish() {
                Err(e) => e,
                Ok(_) => std::io::Error::other("the blob writer stopped"),
            };
            return Err(StoreError::io("failed to write", &self.tmp)(err));
        }
        Ok(())
    }

    fn check(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        if *digest != self.sha256 {
            return Err(StoreError::Content(format!(
                "{} does not match its declared SHA-256 (declared {}, received {})",
                self.what,
                hex(&self.sha256),
                hex(digest)
            )));
        }
        Ok(())
    }

    /// Checks size and digest, then makes the blob durable under its digest.
    pub fn finish(self) -> Result<FinishedBlob, StoreError> {
        self.finish_later()?.wait()
    }

    /// Checks size and digest now; the last sync and the move into place
    /// run on a thread of their own, so that the next material of a stream
    /// is received meanwhile. [`PendingBlob::wait`] before naming it.
    pub fn finish_later(mut self) -> Result<PendingBlob, StoreError> {
        if self.written != self.size {
            return Err(StoreError::Content(format!(
                "{} is truncated: {} of {} bytes received",
                self.what, self.written, self.size
            )));
        }
        if let Some((hasher, memory)) = self.memory.take() {
            let digest: [u8; 32] = hasher.finalize().into();
            self.check(&digest)?;
            return Ok(PendingBlob::done(FinishedBlob {
                sha256_hex: hex(&digest),
                created: false,
                inline: Some(memory),
            }));
        }
        let (file, digest) = self
            .sink
            .as_mut()
            .expect("writer used after finish")
            .finish()
            .map_err(StoreError::io("failed to write", &self.tmp))?;
        self.check(&digest)?;
        let sha256_hex = hex(&digest);
        let sub = self.dir.join(&sha256_hex[..2]);
        let dest = sub.join(&sha256_hex);
        if dest.is_file() {
            // Same content already stored: content addressing makes this the
            // same blob (the temporary file goes when the writer drops).
            drop(file);
            return Ok(PendingBlob::done(FinishedBlob {
                sha256_hex,
                created: false,
                inline: None,
            }));
        }
        // From here the thread owns the temporary file (and removes it if
        // it cannot move it into place).
        self.sink = None;
        let tmp = self.tmp.clone();
        let durable = std::thread::Builder::new()
            .name("blob-sync".into())
            .spawn(move || {
                let result = (|| {
                    file.sync_all()
                        .map_err(StoreError::io("failed to sync", &tmp))?;
                    drop(file);
                    crate::modes::create_dir(&sub)?;
                    fs::rename(&tmp, &dest)
                        .map_err(StoreError::io("failed to move blob to", &dest))?;
                    // The rename is durable only once the directory entry is.
                    File::open(&sub)
                        .and_then(|d| d.sync_all())
                        .map_err(StoreError::io("failed to sync", &sub))
                })();
                if result.is_err() {
                    let _ = fs::remove_file(&tmp);
                }
                result
            })
            .map_err(StoreError::io("failed to start syncing", &self.tmp))?;
        Ok(PendingBlob {
            blob: FinishedBlob {
                sha256_hex,
                created: true,
                inline: None,
            },
            durable: Some(durable),
        })
    }
}

/// A blob whose content checked out and whose last sync and move into
/// place may still be running.
#[derive(Debug)]
pub struct PendingBlob {
    blob: FinishedBlob,
    durable: Option<JoinHandle<Result<(), StoreError>>>,
}

impl PendingBlob {
    fn done(blob: FinishedBlob) -> Self {
        Self {
            blob,
            durable: None,
        }
    }

    /// The blob (its digest is final; it is durable only after `wait`).
    pub fn blob(&self) -> &FinishedBlob {
        &self.blob
    }

    /// Waits until the blob is durable under its digest.
    pub fn wait(mut self) -> Result<FinishedBlob, StoreError> {
        if let Some(t) = self.durable.take() {
            t.join().unwrap_or_else(|_| {
                Err(StoreError::Content("the blob sync thread panicked".into()))
            })?;
        }
        Ok(self.blob.clone())
    }
}

impl Drop for PendingBlob {
    fn drop(&mut self) {
        // Never leave the thread behind: once this returns, the blob is in
        // place or gone, so a caller removing what it created misses nothing.
        if let Some(t) = self.durable.take() {
            let _ = t.join();
        }
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        // A large blob not moved into place (refused, truncated, abandoned,
        // or a duplicate): stop its thread, then remove its temporary file.
        if let Some(sink) = self.sink.take() {
            drop(sink);
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    #[test]
    fn stores_by_digest_and_refuses_bad_content_without_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path()).unwrap();
        let mut w = blobs.writer("m".into(), 5, sha(b"hello")).unwrap();
        w.write(Bytes::from_static(b"hel")).unwrap();
        w.write(Bytes::from_static(b"lo")).unwrap();
        let done = w.finish().unwrap();
        assert_eq!(
            done.inline.as_deref(),
            Some(&b"hello"[..]),
            "small: kept for the database"
        );
        assert!(!blobs.contains(&done.sha256_hex));

        // Large enough for the writer thread to sync behind it once.
        let big: Vec<u8> = (0..WRITE_BEHIND as usize + (1 << 20))
            .map(|i| (i % 251) as u8)
            .collect();
        let mut w = blobs
            .writer("m".into(), big.len() as u64, sha(&big))
            .unwrap();
        for piece in big.chunks(64 * 1024) {
            w.write(Bytes::copy_from_slice(piece)).unwrap();
        }
        let done = w.finish().unwrap();
        assert!(done.created && done.inline.is_none());
        assert_eq!(fs::read(blobs.path(&done.sha256_hex)).unwrap(), big);

        // The same content again: no second file, no leftover.
        let mut w = blobs
            .writer("m".into(), big.len() as u64, sha(&big))
            .unwrap();
        w.write(Bytes::from(big.clone())).unwrap();
        assert!(!w.finish().unwrap().created);
        // A large one abandoned half way, or with the wrong digest, leaves nothing.
        let mut w = blobs
            .writer("m".into(), big.len() as u64, sha(&big))
            .unwrap();
        w.write(Bytes::copy_from_slice(&big[..1 << 20])).unwrap();
        drop(w);
        let mut w = blobs
            .writer("m".into(), big.len() as u64, sha(b"other"))
            .unwrap();
        w.write(Bytes::from(big.clone())).unwrap();
        assert!(w.finish().unwrap_err().to_string().contains("SHA-256"));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);

        let mut w = blobs.writer("m".into(), 5, sha(b"hello")).unwrap();
        assert!(
            w.write(Bytes::from_static(b"hello!"))
                .unwrap_err()
                .to_string()
                .contains("longer")
        );
        drop(w);
        let mut w = blobs.writer("m".into(), 5, sha(b"hello")).unwrap();
        w.write(Bytes::from_static(b"hell")).unwrap();
        assert!(w.finish().unwrap_err().to_string().contains("truncated"));
        let mut w = blobs.writer("m".into(), 5, sha(b"hello")).unwrap();
        w.write(Bytes::from_static(b"jello")).unwrap();
        assert!(w.finish().unwrap_err().to_string().contains("SHA-256"));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }
}
