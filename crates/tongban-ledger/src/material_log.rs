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

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest, Sha256};

use crate::StoreError;
use crate::records::{LogSpan, hex};

/// The open log.
#[derive(Debug)]
pub(crate) struct MaterialLog {
    file: Arc<File>,
    path: PathBuf,
    /// Where the next append goes (appends take this lock).
    end: std::sync::Mutex<u64>,
    /// Everything before this offset is on disk.
    pub(crate) synced: AtomicU64,
    /// One sync at a time; those who waited find their bytes covered.
    syncing: tokio::sync::Mutex<()>,
}

impl MaterialLog {
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        let file = crate::modes::create_file()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(StoreError::io("failed to open", path))?;
        let end = file
            .metadata()
            .map_err(StoreError::io("failed to read", path))?
            .len();
        Ok(Self {
            file: Arc::new(file),
            path: path.to_path_buf(),
            end: std::sync::Mutex::new(end),
            synced: AtomicU64::new(end),
            syncing: tokio::sync::Mutex::new(()),
        })
    }

    /// Appends one material (not durable until [`MaterialLog::sync`]).
    pub(crate) fn append(&self, content: &[u8]) -> Result<LogSpan, StoreError> {
        let mut end = self.end.lock().unwrap_or_else(|p| p.into_inner());
        self.file
            .write_all_at(content, *end)
            .map_err(StoreError::io("failed to write", &self.path))?;
        let span = LogSpan {
            offset: *end,
            len: content.len() as u64,
        };
        *end += span.len;
        Ok(span)
    }

    /// Where the log is.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether anything appended is not yet known to be durable.
    pub(crate) fn unsynced(&self) -> bool {
        self.synced.load(Ordering::Acquire) < *self.end.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes everything appended before this call durable (on a blocking
    /// thread); returns at once when nothing is waiting.
    pub(crate) async fn sync(&self) -> Result<(), StoreError> {
        let target = *self.end.lock().unwrap_or_else(|p| p.into_inner());
        if self.synced.load(Ordering::Acquire) >= target {
            return Ok(());
        }
        let _one = self.syncing.lock().await;
        if self.synced.load(Ordering::Acquire) >= target {
            return Ok(()); // the sync we waited for covered it
        }
        // Everything appended up to now, which includes `target`.
        let upto = *self.end.lock().unwrap_or_else(|p| p.into_inner());
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
