//! The log of small materials: `<data_dir>/materials.log`.
//!
//! Materials up to [`crate::INLINE_MAX`] bytes are appended to this one file
//! as they are received, instead of each getting a file (two fsyncs apiece)
//! or a value in sled (whose copy-on-write nodes copied and re-split those
//! values on every insert: a quarter of the drain benchmark's CPU). The
//! record naming a material keeps where it is ([`LogSpan`] in its
//! `MaterialRef`), so storing one costs no database write at all.
//!
//! Order makes it crash-safe: every commit first syncs whatever was
//! appended before it started, so no record can reach the disk ahead of the
//! bytes it names. What a crash leaves past the last synced point, or an
//! upload that was refused after appending, is bytes no record names:
//! never read, harmless. Reads check the content against its digest.
//!
//! The file is kept ahead of its end with written, synced zeros
//! ([`STEP`] at a time, in the background), so that a material's sync
//! overwrites allocated blocks: an `fdatasync` that extends a file also
//! commits the file system's journal (its size changed), one that only
//! overwrites does not. (`fallocate` would not do: its unwritten extents
//! are converted on the first write, a journal change too.) The log's end
//! is therefore not the file's length: every commit records, in the ledger
//! head it writes, how far the log was synced when its records were written
//! ([`MaterialLog::durable_end`]), and an open goes on from there. Every
//! material a stored record names lies before that point; what lies past
//! it is zeros or bytes no stored record names, and is written over. A
//! head without it (a data dir from before) has an unpadded log, whose
//! length is its end.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};

use sha2::{Digest, Sha256};

use crate::StoreError;
use crate::records::{LogSpan, hex};

/// How far the file is extended at a time: a few hundred 16 KiB
/// materials' worth at least, and once every thousand of them at most.
const STEP: u64 = 16 * 1024 * 1024;
/// The extension's unit: the zeros written under the append lock at a
/// time, then synced, so that a material's sync meanwhile waits for at
/// most this much of them.
const CHUNK: u64 = 1024 * 1024;
/// The file is only extended while the file system keeps this many
/// [`STEP`]s free: padding must never be what fills a disk (the space
/// reserve and the database need that room far more).
const FREE_STEPS: u64 = 8;

/// Where appends go, and how far the file is padded.
#[derive(Debug)]
struct Ends {
    /// Where the next append goes.
    end: u64,
    /// The file's length: written bytes (materials or zeros) up to here.
    allocated: u64,
}

/// The open log.
#[derive(Debug)]
pub(crate) struct MaterialLog {
    file: Arc<File>,
    path: PathBuf,
    /// Appends and extensions take this lock.
    ends: std::sync::Mutex<Ends>,
    /// Everything before this offset is on disk.
    pub(crate) synced: AtomicU64,
    /// One sync at a time; those who waited find their bytes covered.
    syncing: tokio::sync::Mutex<()>,
    /// Whether an extension is under way (one at a time).
    extending: AtomicBool,
}

impl MaterialLog {
    /// Opens (creating) the log. `recorded_end` is the end the ledger head
    /// holds ([`MaterialLog::durable_end`] as of the last stored commit);
    /// without one, the file's length.
    pub(crate) fn open(path: &Path, recorded_end: Option<u64>) -> Result<Self, StoreError> {
        let file = crate::modes::create_file()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(StoreError::io("failed to open", path))?;
        // An extension still running for an earlier opening of this log in
        // this process (a node restarted in place) would write its zeros
        // past that opening's end, which may be before this one's: wait for
        // it to let go of the file. Another process holding the data dir
        // never gets here (sled's own lock refuses it first).
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| StoreError::io("failed to lock", path)(e.into()))?;
        let allocated = file
            .metadata()
            .map_err(StoreError::io("failed to read", path))?
            .len();
        // A recorded end past the file's length (a log cut short) stays the
        // end all the same: no append may go where a record says a
        // material is.
        let end = recorded_end.unwrap_or(allocated);
        Ok(Self {
            file: Arc::new(file),
            path: path.to_path_buf(),
            ends: std::sync::Mutex::new(Ends { end, allocated }),
            synced: AtomicU64::new(end),
            syncing: tokio::sync::Mutex::new(()),
            extending: AtomicBool::new(false),
        })
    }

    fn ends(&self) -> std::sync::MutexGuard<'_, Ends> {
        self.ends.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Appends one material (not durable until [`MaterialLog::sync`]).
    pub(crate) fn append(self: &Arc<Self>, content: &[u8]) -> Result<LogSpan, StoreError> {
        let (span, room) = {
            let mut ends = self.ends();
            self.file
                .write_all_at(content, ends.end)
                .map_err(StoreError::io("failed to write", &self.path))?;
            let span = LogSpan {
                offset: ends.end,
                len: content.len() as u64,
            };
            ends.end += span.len;
            ends.allocated = ends.allocated.max(ends.end);
            (span, ends.allocated - ends.end)
        };
        if room < STEP / 2 {
            self.extend_soon();
        }
        Ok(span)
    }

    /// Starts extending the file by a [`STEP`] on a blocking thread, unless
    /// one is under way or there is no runtime to run it. Failing is
    /// harmless: appends then extend the file themselves, as before.
    fn extend_soon(self: &Arc<Self>) {
        if self.extending.swap(true, Ordering::AcqRel) {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            self.extending.store(false, Ordering::Release);
            return;
        };
        // Not a handle that keeps the log open after its store is gone.
        let log = Arc::downgrade(self);
        runtime.spawn_blocking(move || {
            if let Err(e) = Self::extend(&log) {
                tracing::warn!(error = %e, "cannot pad the material log ahead");
            }
            if let Some(log) = log.upgrade() {
                log.extending.store(false, Ordering::Release);
            }
        });
    }

    /// Writes and syncs a [`STEP`] of zeros past the file's end, a
    /// [`CHUNK`] at a time, while the file system keeps room to spare.
    fn extend(log: &Weak<Self>) -> Result<(), StoreError> {
        let Some(this) = log.upgrade() else {
            return Ok(());
        };
        let stat = rustix::fs::fstatvfs(&*this.file).map_err(|e| StoreError::Io {
            action: "failed to read the free space of",
            path: this.path.clone(),
            cause: e.into(),
        })?;
        if stat.f_bavail.saturating_mul(stat.f_frsize) < FREE_STEPS * STEP {
            return Ok(());
        }
        drop(this);
        let zeros = vec![0u8; CHUNK as usize];
        for _ in 0..STEP / CHUNK {
            // Stops once the store has closed the log.
            let Some(this) = log.upgrade() else {
                return Ok(());
            };
            let this = &*this;
            {
                let mut ends = this.ends();
                // Past whatever was appended meanwhile: never over a material.
                let from = ends.allocated.max(ends.end);
                this.file
                    .write_all_at(&zeros, from)
                    .map_err(StoreError::io("failed to write", &this.path))?;
                ends.allocated = from + CHUNK;
            }
            this.file
                .sync_data()
                .map_err(StoreError::io("failed to sync", &this.path))?;
        }
        Ok(())
    }

    /// Where the log is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// How far the log is known to be on disk: what a commit records in
    /// the ledger head, after the sync that precedes its transaction (so
    /// every material its records name lies before it).
    pub(crate) fn durable_end(&self) -> u64 {
        self.synced.load(Ordering::Acquire)
    }

    /// Whether anything appended is not yet known to be durable.
    pub(crate) fn unsynced(&self) -> bool {
        self.synced.load(Ordering::Acquire) < self.ends().end
    }

    /// Makes everything appended before this call durable (on a blocking
    /// thread); returns at once when nothing is waiting.
    pub(crate) async fn sync(&self) -> Result<(), StoreError> {
        let target = self.ends().end;
        if self.synced.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        let _one = self.syncing.lock().await;
        if self.synced.load(Ordering::Acquire) >= target {
            return Ok(()); // the sync we waited for covered it
        }
        // Everything appended up to now, which includes `target`.
        let upto = self.ends().end;
        let file = self.file.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(|e| StoreError::Io {
                action: "failed to sync",
                path: path.clone(),
                cause: std::io::Error::other(e),
            })?
            .map_err(StoreError::io("failed to sync", path))?;
        self.synced.fetch_max(upto, Ordering::AcqRel);
        Ok(())
    }

    /// Reads a material and checks it against its digest. A span past the
    /// end of the log, one longer than a logged material can be, or bytes
    /// that do not match are [`StoreError::Damaged`].
    pub(crate) fn read(&self, at: LogSpan, sha256_hex: &str) -> Result<Vec<u8>, StoreError> {
        let buf = self.read_unchecked(at, sha256_hex)?;
        let got = hex(&Sha256::digest(&buf));
        if got != sha256_hex {
            return Err(StoreError::Damaged {
                sha256: sha256_hex.to_owned(),
                reason: format!(
                    "its {} bytes at offset {} of {} read back as {got}",
                    at.len,
                    at.offset,
                    self.path.display()
                ),
            });
        }
        Ok(buf)
    }

    /// Reads the bytes of a span as they are, for a caller that hashes them
    /// itself (an audit's re-hash). A span past the end of the log or
    /// longer than a logged material can be is [`StoreError::Damaged`]
    /// (named by `sha256_hex`, the digest its record holds).
    pub(crate) fn read_unchecked(
        &self,
        at: LogSpan,
        sha256_hex: &str,
    ) -> Result<Vec<u8>, StoreError> {
        let damaged = |reason: String| StoreError::Damaged {
            sha256: sha256_hex.to_owned(),
            reason,
        };
        // Only small materials are here: a damaged record asking for more
        // must get an error, not an allocation of its size.
        if at.len > crate::INLINE_MAX {
            return Err(damaged(format!(
                "its record claims {} bytes at offset {} of {}, more than a logged material can hold",
                at.len,
                at.offset,
                self.path.display()
            )));
        }
        let mut buf = vec![0u8; at.len as usize];
        self.file
            .read_exact_at(&mut buf, at.offset)
            .map_err(|e| match e.kind() {
                std::io::ErrorKind::UnexpectedEof => damaged(format!(
                    "{} ends before its {} bytes at offset {}",
                    self.path.display(),
                    at.len,
                    at.offset
                )),
                _ => StoreError::io("failed to read", &self.path)(e),
            })?;
        Ok(buf)
    }
}
