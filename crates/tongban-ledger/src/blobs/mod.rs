//! Content-addressed material files under `<data_dir>/blobs/`.
//!
//! Materials up to [`INLINE_MAX`] bytes are not files at all: the writer
//! keeps them in memory and the caller appends them to the material log
//! (`Store::append_material`), which the commit that names them syncs, so
//! one sync makes a whole batch of small materials durable instead of two
//! fsyncs per file.
//!
//! A larger blob is written to a temporary file by a thread of its own
//! (`sink`: hashing and writing while the caller receives the next chunk,
//! syncing behind itself every 8 MiB; the caller awaits it, never blocking
//! a runtime thread) while its digest and size are checked, then
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
//!
//! This module holds the directory ([`BlobStore`]); writing a blob is
//! `writer`'s (its threads are `sink`'s), staging the files not yet
//! committed is `staging`'s. Reading materials back is the store's
//! ([`crate::Store::open_material`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;

use crate::StoreError;

mod sink;
mod staging;
mod writer;

pub use staging::StagedBlobs;
use staging::Staging;
pub use writer::{BlobWriter, FinishedBlob, PendingBlob};

/// Materials up to this size go to the material log, not to files.
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
    staging: Staging,
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
            staging: Staging::default(),
        })
    }

    /// Where the blob with this digest lives (read it through
    /// [`crate::Store::open_material`]).
    pub(crate) fn path(&self, sha256_hex: &str) -> PathBuf {
        Self::path_in(&self.dir, sha256_hex)
    }

    /// Where the blob with this digest lives under the blob dir `dir`.
    pub(crate) fn path_in(dir: &Path, sha256_hex: &str) -> PathBuf {
        dir.join(&sha256_hex[..2.min(sha256_hex.len())])
            .join(sha256_hex)
    }

    /// Whether the blob is present.
    #[cfg(test)]
    fn contains(&self, sha256_hex: &str) -> bool {
        self.path(sha256_hex).is_file()
    }
}
