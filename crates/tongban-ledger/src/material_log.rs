//! The log of small materials: `<data_dir>/materials.log`.
//!
//! Materials up to [`crate::INLINE_MAX`] bytes are appended to this one file
//! instead of each getting a file (two fsyncs apiece) or a value in sled
//! (whose copy-on-write nodes copied and re-split those values on every
//! insert: a quarter of the drain benchmark's CPU). The database keeps only
//! where each one is (`material_index`: SHA-256 → offset, length).
//!
//! Order makes it crash-safe: a commit appends its materials and syncs the
//! log before it writes the index entries that name them, so no index entry
//! can reach the disk ahead of its bytes. What a crash leaves past the last
//! synced point (or a commit that failed after appending) is bytes no index
//! names: never read, harmless. Reads check the content against its digest.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use sha2::{Digest, Sha256};

use crate::StoreError;
use crate::records::hex;

/// Where a material is in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Location {
    pub(crate) offset: u64,
    pub(crate) len: u64,
}

impl Location {
    pub(crate) fn encode(self) -> [u8; 16] {
        let mut v = [0u8; 16];
        v[..8].copy_from_slice(&self.offset.to_be_bytes());
        v[8..].copy_from_slice(&self.len.to_be_bytes());
        v
    }

    pub(crate) fn decode(bytes: &[u8]) -> Option<Self> {
        Some(Self {
            offset: u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?),
            len: u64::from_be_bytes(bytes.get(8..16)?.try_into().ok()?),
        })
    }
}

/// The open log. Appends are serialised by the store's write lock.
#[derive(Debug)]
pub(crate) struct MaterialLog {
    file: Arc<File>,
    path: PathBuf,
    end: std::sync::Mutex<u64>,
}

impl MaterialLog {
    pub(crate) fn open(path: &Path) -> Result<Self, StoreError> {
        let file = OpenOptions::new()
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
        })
    }

    /// Appends `items` (not yet durable: see [`MaterialLog::sync`]).
    pub(crate) fn append<'a>(
        &self,
        items: impl IntoIterator<Item = &'a [u8]>,
    ) -> Result<Vec<Location>, StoreError> {
        let mut end = self.end.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for content in items {
            self.file
                .write_all_at(content, *end)
                .map_err(StoreError::io("failed to write", &self.path))?;
            out.push(Location {
                offset: *end,
                len: content.len() as u64,
            });
            *end += content.len() as u64;
        }
        Ok(out)
    }

    /// Makes everything appended so far durable, on a blocking thread.
    pub(crate) async fn sync(&self) -> Result<(), StoreError> {
        let file = self.file.clone();
        let path = self.path.clone();
        tokio::task::spawn_blocking(move || file.sync_data())
            .await
            .map_err(|e| StoreError::Io {
                action: "failed to sync",
                path: path.clone(),
                source: std::io::Error::other(e),
            })?
            .map_err(StoreError::io("failed to sync", path))
    }

    /// Reads a material and checks it against its digest.
    pub(crate) fn read(&self, at: Location, sha256_hex: &str) -> Result<Vec<u8>, StoreError> {
        let mut buf = vec![0u8; at.len as usize];
        self.file
            .read_exact_at(&mut buf, at.offset)
            .map_err(StoreError::io("failed to read", &self.path))?;
        let got = hex(&Sha256::digest(&buf));
        if got != sha256_hex {
            return Err(StoreError::Corrupt {
                tree: "material_index",
                reason: format!(
                    "material {sha256_hex} at offset {} of {} reads back as {got}",
                    at.offset,
                    self.path.display()
                ),
            });
        }
        Ok(buf)
    }
}
