//! Content-addressed material files under `<data_dir>/blobs/`.
//!
//! Materials up to [`INLINE_MAX`] bytes are not files at all: the writer
//! keeps them in memory and the caller appends them to the material log
//! (`Store::append_material`), which the commit that names them syncs, so
//! one sync makes a whole batch of small materials durable instead of two
//! fsyncs per file.
//!
//! A larger blob is written to a temporary file by a thread of its own
//! (hashing and writing while the caller receives the next chunk, syncing
//! behind itself every 8 MiB) while its digest and size are checked, then
//! fsynced, renamed to `blobs/<first two hex>/<sha256 hex>` and the
//! directory fsynced, all before any ledger entry names it. A writer dropped
//! before [`BlobWriter::finish`] removes its temporary file, so a truncated or
//! refused upload leaves nothing behind; a finished blob no commit names yet
//! is held by [`StagedBlobs`], which removes it when dropped unless the
//! commit that names it kept it ([`crate::Batch::keep_blobs`]).
//!
//! Content addressing lets uploads share a file: two of the same content
//! (in one stream, or concurrently) stage one file, counted twice, and it
//! goes only when neither is kept. A file already in place that no upload
//! has staged is a committed one (or a leftover of a crash) and is never
//! removed here.

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use bytes::Bytes;

use sha2::{Digest, Sha256};

use crate::StoreError;
use crate::records::hex;

/// Materials up to this size go to the material log, not to files.
pub const INLINE_MAX: u64 = 256 * 1024;

/// While a large blob arrives, its written part is synced in the
/// background every this many bytes, so the disk writes alongside the
/// network instead of after it: the final fsync then finds little left.
/// (Receiving 256 MiB, a final fsync of the whole took as long again as
/// the transfer.)
const WRITE_BEHIND: u64 = 8 << 20;

/// Files uploads have put in place that no commit has kept yet, with how
/// many uploads hold each. Moving a file into place, counting it and
/// removing it all happen under this lock, so a file with a count exists,
/// and one in place without a count is never an upload's to remove.
type Staging = Arc<Mutex<HashMap<PathBuf, usize>>>;

/// Counts one more holder of `dest` if an upload staged it, under the
/// staging lock; false when it is not staged (committed: not ours to count).
fn hold_if_staged(staged: &mut HashMap<PathBuf, usize>, dest: &Path) -> bool {
    match staged.get_mut(dest) {
        Some(n) => {
            *n += 1;
            true
        }
        None => false,
    }
}

/// The blob directory of one node.
#[derive(Debug)]
pub struct BlobStore {
    dir: PathBuf,
    tmp: PathBuf,
    counter: AtomicU64,
    staging: Staging,
}

impl BlobStore {
    /// Opens (creating) `dir`, discarding temporary files a crash left.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let tmp = dir.join("tmp");
        fs::create_dir_all(&tmp).map_err(StoreError::io("failed to create", &tmp))?;
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
            staging: Staging::default(),
        })
    }

    /// Where the blob with this digest lives (read it through
    /// [`crate::Store::open_material`]).
    pub(crate) fn path(&self, sha256_hex: &str) -> PathBuf {
        self.dir
            .join(&sha256_hex[..2.min(sha256_hex.len())])
            .join(sha256_hex)
    }

    /// Whether the blob is present.
    #[cfg(test)]
    fn contains(&self, sha256_hex: &str) -> bool {
        self.path(sha256_hex).is_file()
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
            let file = File::create(&tmp).map_err(StoreError::io("failed to create", &tmp))?;
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
            staging: self.staging.clone(),
        })
    }
}

/// Blob files uploads put in place that no committed record names yet.
///
/// Dropped, it removes them (a file another upload also holds stays until
/// that one lets go): an upload refused, broken off, or whose commit
/// failed leaves nothing half-stored. Handed to the batch that names them
/// ([`crate::Batch::keep_blobs`]), they stay for good once that batch is
/// written, and go with it if the commit fails. Files get here only from
/// [`BlobWriter::finish`] and [`PendingBlob::wait`].
#[derive(Debug, Default)]
#[must_use = "dropping staged blobs removes their files"]
pub struct StagedBlobs {
    files: Vec<(PathBuf, Staging)>,
}

impl StagedBlobs {
    /// Whether no file is staged.
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Takes over the files of `other`.
    pub(crate) fn absorb(&mut self, mut other: StagedBlobs) {
        self.files.append(&mut other.files);
    }

    /// Keeps the files for good: a committed record names them (and every
    /// other holder's claim on them lapses).
    pub(crate) fn keep(mut self) {
        for (path, staging) in self.files.drain(..) {
            staging
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&path);
        }
    }
}

impl Drop for StagedBlobs {
    fn drop(&mut self) {
        for (path, staging) in self.files.drain(..) {
            let mut staged = staging.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(n) = staged.get_mut(&path) {
                *n -= 1;
                if *n == 0 {
                    staged.remove(&path);
                    // Gone already is fine: nothing of it remains either way.
                    let _ = fs::remove_file(&path);
                }
            }
        }
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
    staging: Staging,
}

/// A blob made durable.
#[derive(Debug, Clone)]
pub struct FinishedBlob {
    /// Its lowercase hex SHA-256.
    pub sha256_hex: String,
    /// The content of a small material, for the caller to append to the
    /// material log (`Store::append_material`).
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

    /// Checks size and digest, then makes the blob durable under its
    /// digest; a file it put in place (or shares with another upload not
    /// yet committed) is staged in `staged`.
    pub fn finish(self, staged: &mut StagedBlobs) -> Result<FinishedBlob, StoreError> {
        self.finish_later()?.wait(staged)
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
            return Ok(PendingBlob::done(
                FinishedBlob {
                    sha256_hex: hex(&digest),
                    inline: Some(memory),
                },
                StagedBlobs::default(),
            ));
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
        {
            let mut staged = self.staging.lock().unwrap_or_else(|p| p.into_inner());
            if dest.is_file() {
                // Same content already stored: content addressing makes this
                // the same blob (the temporary file goes when the writer
                // drops). If an upload not yet committed put it there, this
                // one holds it too.
                drop(file);
                let mut stake = StagedBlobs::default();
                if hold_if_staged(&mut staged, &dest) {
                    stake.files.push((dest, self.staging.clone()));
                }
                return Ok(PendingBlob::done(
                    FinishedBlob {
                        sha256_hex,
                        inline: None,
                    },
                    stake,
                ));
            }
        }
        // From here the thread owns the temporary file (and removes it if
        // it cannot move it into place).
        self.sink = None;
        let tmp = self.tmp.clone();
        let staging = self.staging.clone();
        let into_place = dest.clone();
        let durable = std::thread::Builder::new()
            .name("blob-sync".into())
            .spawn(move || {
                let mut held = false;
                let result = (|| {
                    file.sync_all()
                        .map_err(StoreError::io("failed to sync", &tmp))?;
                    drop(file);
                    fs::create_dir_all(&sub).map_err(StoreError::io("failed to create", &sub))?;
                    {
                        let mut staged = staging.lock().unwrap_or_else(|p| p.into_inner());
                        if into_place.is_file() {
                            // The same content arrived meanwhile: share it.
                            held = hold_if_staged(&mut staged, &into_place);
                            let _ = fs::remove_file(&tmp);
                        } else {
                            fs::rename(&tmp, &into_place)
                                .map_err(StoreError::io("failed to move blob to", &into_place))?;
                            *staged.entry(into_place.clone()).or_insert(0) += 1;
                            held = true;
                        }
                    }
                    // The rename is durable only once the directory entry is.
                    File::open(&sub)
                        .and_then(|d| d.sync_all())
                        .map_err(StoreError::io("failed to sync", &sub))
                })();
                if result.is_err() {
                    let _ = fs::remove_file(&tmp);
                }
                (held, result)
            })
            .map_err(StoreError::io("failed to start syncing", &self.tmp))?;
        Ok(PendingBlob {
            blob: FinishedBlob {
                sha256_hex,
                inline: None,
            },
            durable: Some(durable),
            stake: StagedBlobs::default(),
            dest,
            staging: self.staging.clone(),
        })
    }
}

/// A blob whose content checked out and whose last sync and move into
/// place may still be running.
#[derive(Debug)]
pub struct PendingBlob {
    blob: FinishedBlob,
    /// The sync thread: whether it holds the file in place, and how it went.
    durable: Option<JoinHandle<(bool, Result<(), StoreError>)>>,
    /// The file this blob holds, once known.
    stake: StagedBlobs,
    dest: PathBuf,
    staging: Staging,
}

impl PendingBlob {
    fn done(blob: FinishedBlob, stake: StagedBlobs) -> Self {
        Self {
            blob,
            durable: None,
            stake,
            dest: PathBuf::new(),
            staging: Staging::default(),
        }
    }

    /// The blob (its digest is final; it is durable only after `wait`).
    pub fn blob(&self) -> &FinishedBlob {
        &self.blob
    }

    /// Waits for the sync thread; what it put in place is then in `stake`.
    fn settle(&mut self) -> Result<(), StoreError> {
        if let Some(t) = self.durable.take() {
            let (held, result) = t.join().unwrap_or_else(|_| {
                (
                    false,
                    Err(StoreError::Content("the blob sync thread panicked".into())),
                )
            });
            if held {
                self.stake
                    .files
                    .push((self.dest.clone(), self.staging.clone()));
            }
            result?;
        }
        Ok(())
    }

    /// Waits until the blob is durable under its digest; its file is then
    /// staged in `staged`. On an error the file it put in place is removed.
    pub fn wait(mut self, staged: &mut StagedBlobs) -> Result<FinishedBlob, StoreError> {
        self.settle()?;
        staged.absorb(std::mem::take(&mut self.stake));
        Ok(self.blob.clone())
    }
}

impl Drop for PendingBlob {
    fn drop(&mut self) {
        // Never leave the thread behind: once this returns, the blob is in
        // place and staged (then removed with `stake`, after this), or gone.
        let _ = self.settle();
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
        let mut staged = StagedBlobs::default();
        let mut w = blobs.writer("m".into(), 5, sha(b"hello")).unwrap();
        w.write(Bytes::from_static(b"hel")).unwrap();
        w.write(Bytes::from_static(b"lo")).unwrap();
        let done = w.finish(&mut staged).unwrap();
        assert_eq!(
            done.inline.as_deref(),
            Some(&b"hello"[..]),
            "small: kept for the database"
        );
        assert!(!blobs.contains(&done.sha256_hex));
        assert!(staged.is_empty(), "no file to stage");

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
        let done = w.finish(&mut staged).unwrap();
        assert!(!staged.is_empty() && done.inline.is_none());
        assert_eq!(fs::read(blobs.path(&done.sha256_hex)).unwrap(), big);

        // The same content again: no second file, no leftover.
        let mut w = blobs
            .writer("m".into(), big.len() as u64, sha(&big))
            .unwrap();
        w.write(Bytes::from(big.clone())).unwrap();
        let mut again = StagedBlobs::default();
        w.finish(&mut again).unwrap();
        assert!(!again.is_empty(), "held by both uploads");
        staged.keep();
        drop(again);
        assert!(blobs.contains(&done.sha256_hex), "kept by the first");
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
        assert!(
            w.finish(&mut StagedBlobs::default())
                .unwrap_err()
                .to_string()
                .contains("SHA-256")
        );
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
        assert!(
            w.finish(&mut StagedBlobs::default())
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
        let mut w = blobs.writer("m".into(), 5, sha(b"hello")).unwrap();
        w.write(Bytes::from_static(b"jello")).unwrap();
        assert!(
            w.finish(&mut StagedBlobs::default())
                .unwrap_err()
                .to_string()
                .contains("SHA-256")
        );
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }

    #[test]
    fn a_file_two_uploads_share_goes_only_when_neither_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path()).unwrap();
        let big = vec![7u8; INLINE_MAX as usize + 1];
        let upload = || {
            let mut w = blobs
                .writer("m".into(), big.len() as u64, sha(&big))
                .unwrap();
            w.write(Bytes::from(big.clone())).unwrap();
            w.finish_later().unwrap()
        };
        // Both under way at once, then each waited for.
        let (first, second) = (upload(), upload());
        let path = blobs.path(&first.blob().sha256_hex);
        let (mut a, mut b) = (StagedBlobs::default(), StagedBlobs::default());
        first.wait(&mut a).unwrap();
        second.wait(&mut b).unwrap();
        drop(a);
        assert!(path.is_file(), "the second upload still holds it");
        drop(b);
        assert!(!path.is_file(), "neither kept it");

        // A pending upload dropped removes what it put in place.
        let pending = upload();
        drop(pending);
        assert!(!path.is_file());

        // Kept once, it is committed: a later upload of it never removes it.
        let mut kept = StagedBlobs::default();
        upload().wait(&mut kept).unwrap();
        kept.keep();
        let mut later = StagedBlobs::default();
        upload().wait(&mut later).unwrap();
        assert!(later.is_empty(), "a committed file is nobody's to stage");
        drop(later);
        assert!(path.is_file());
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }
}
