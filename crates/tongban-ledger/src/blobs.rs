//! Content-addressed material files under `<data_dir>/blobs/`.
//!
//! Materials up to [`INLINE_MAX`] bytes are not files at all: the writer
//! keeps them in memory and the caller hands them to the commit that names
//! them (`Batch::put_blob`), which appends them to the material log, so one
//! sync makes a whole batch of small materials durable instead of two
//! fsyncs per file.
//!
//! A blob is written to a temporary file while its digest and size are
//! checked, fsynced, renamed to `blobs/<first two hex>/<sha256 hex>` and the
//! directory fsynced, all before any ledger entry names it. A writer dropped
//! before [`BlobWriter::finish`] removes its temporary file, so a truncated or
//! refused upload leaves nothing behind.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

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
        let (file, memory) = if size <= INLINE_MAX {
            (None, Some(Vec::with_capacity(size as usize)))
        } else {
            let file = File::create(&tmp).map_err(StoreError::io("failed to create", &tmp))?;
            (Some(file), None)
        };
        Ok(BlobWriter {
            what,
            file,
            memory,
            behind: None,
            unsynced: 0,
            tmp,
            hasher: Sha256::new(),
            written: 0,
            size,
            sha256,
            dir: self.dir.clone(),
        })
    }
}

/// A blob being written; see the module docs.
#[derive(Debug)]
pub struct BlobWriter {
    what: String,
    file: Option<File>,
    /// Content of a material small enough to be stored inline.
    memory: Option<Vec<u8>>,
    /// The background sync of the part written so far, if one runs.
    behind: Option<std::thread::JoinHandle<()>>,
    /// Bytes written since the last background sync started.
    unsynced: u64,
    tmp: PathBuf,
    hasher: Sha256,
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

    /// Appends content; refuses more than the declared size.
    pub fn write(&mut self, data: &[u8]) -> Result<(), StoreError> {
        let total = self.written + data.len() as u64;
        if total > self.size {
            return Err(StoreError::Content(format!(
                "{} is longer than its declared size of {} bytes",
                self.what, self.size
            )));
        }
        self.hasher.update(data);
        self.written = total;
        if let Some(memory) = self.memory.as_mut() {
            memory.extend_from_slice(data);
            return Ok(());
        }
        let file = self.file.as_mut().expect("writer used after finish");
        file.write_all(data)
            .map_err(StoreError::io("failed to write", &self.tmp))?;
        self.unsynced += data.len() as u64;
        if self.unsynced >= WRITE_BEHIND && self.behind.as_ref().is_none_or(|t| t.is_finished()) {
            // Best effort: an error here shows again in the final sync.
            if let Ok(clone) = file.try_clone() {
                self.unsynced = 0;
                self.behind = Some(std::thread::spawn(move || {
                    let _ = clone.sync_data();
                }));
            }
        }
        Ok(())
    }

    /// Checks size and digest, then makes the blob durable under its digest.
    pub fn finish(mut self) -> Result<FinishedBlob, StoreError> {
        if self.written != self.size {
            return Err(StoreError::Content(format!(
                "{} is truncated: {} of {} bytes received",
                self.what, self.written, self.size
            )));
        }
        let digest: [u8; 32] = std::mem::take(&mut self.hasher).finalize().into();
        if digest != self.sha256 {
            return Err(StoreError::Content(format!(
                "{} does not match its declared SHA-256 (declared {}, received {})",
                self.what,
                hex(&self.sha256),
                hex(&digest)
            )));
        }
        let sha256_hex = hex(&digest);
        if let Some(memory) = self.memory.take() {
            return Ok(FinishedBlob {
                sha256_hex,
                created: false,
                inline: Some(memory),
            });
        }
        let sub = self.dir.join(&sha256_hex[..2]);
        let dest = sub.join(&sha256_hex);
        let file = self.file.take().expect("writer used after finish");
        if dest.is_file() {
            // Same content already stored: content addressing makes this the same blob.
            drop(file);
            let _ = fs::remove_file(&self.tmp);
            return Ok(FinishedBlob {
                sha256_hex,
                created: false,
                inline: None,
            });
        }
        if let Some(behind) = self.behind.take() {
            let _ = behind.join();
        }
        file.sync_all()
            .map_err(StoreError::io("failed to sync", &self.tmp))?;
        drop(file);
        fs::create_dir_all(&sub).map_err(StoreError::io("failed to create", &sub))?;
        fs::rename(&self.tmp, &dest).map_err(StoreError::io("failed to move blob to", &dest))?;
        // The rename is durable only once the directory entry is.
        File::open(&sub)
            .and_then(|d| d.sync_all())
            .map_err(StoreError::io("failed to sync", &sub))?;
        Ok(FinishedBlob {
            sha256_hex,
            created: true,
            inline: None,
        })
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.take().is_some() {
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
        w.write(b"hel").unwrap();
        w.write(b"lo").unwrap();
        let done = w.finish().unwrap();
        assert_eq!(
            done.inline.as_deref(),
            Some(&b"hello"[..]),
            "small: kept for the database"
        );
        assert!(!blobs.contains(&done.sha256_hex));

        let big = vec![7u8; INLINE_MAX as usize + 1];
        let mut w = blobs
            .writer("m".into(), big.len() as u64, sha(&big))
            .unwrap();
        w.write(&big).unwrap();
        let done = w.finish().unwrap();
        assert!(done.created && done.inline.is_none());
        assert_eq!(fs::read(blobs.path(&done.sha256_hex)).unwrap(), big);

        let mut w = blobs.writer("m".into(), 5, sha(b"hello")).unwrap();
        assert!(
            w.write(b"hello!")
                .unwrap_err()
                .to_string()
                .contains("longer")
        );
        drop(w);
        let mut w = blobs.writer("m".into(), 5, sha(b"hello")).unwrap();
        w.write(b"hell").unwrap();
        assert!(w.finish().unwrap_err().to_string().contains("truncated"));
        let mut w = blobs.writer("m".into(), 5, sha(b"hello")).unwrap();
        w.write(b"jello").unwrap();
        assert!(w.finish().unwrap_err().to_string().contains("SHA-256"));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }
}
