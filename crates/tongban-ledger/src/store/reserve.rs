//! Room kept for getting out of a full disk: a file the store gives up
//! after a write failed for lack of space, so that its database can be
//! opened again (sled writes a snapshot when it opens, and refuses to open
//! without room for it) and show what the disk holds.
//!
//! While the reserve cannot be put back, the disk has no room for it and
//! the store refuses writes (see [`super::Store::writable`]); putting it
//! back is the first thing [`super::Store::probe`] tries.

use std::io::Write;
use std::path::PathBuf;

use crate::StoreError;

/// Size of the reserve: a few sled snapshots of a node's database, and
/// well below what an operator notices.
pub(super) const RESERVE_BYTES: u64 = 512 * 1024;

/// The reserve file, `data_dir/space.reserve`.
pub(super) struct Reserve {
    path: PathBuf,
}

impl Reserve {
    pub(super) fn new(path: PathBuf) -> Self {
        Self { path }
    }

    /// Puts the reserve in place if it is not: written and synced, not a
    /// sparse file, so its room is really taken. A partial one is removed.
    pub(super) fn ensure(&self) -> Result<(), StoreError> {
        if std::fs::metadata(&self.path).is_ok_and(|m| m.len() == RESERVE_BYTES) {
            return Ok(());
        }
        let written = (|| {
            let mut f = crate::modes::create_new_file(&self.path)?;
            let block = [0u8; 64 * 1024];
            for _ in 0..RESERVE_BYTES / block.len() as u64 {
                f.write_all(&block).map_err(|e| io_err(&self.path, e))?;
            }
            f.sync_all().map_err(|e| io_err(&self.path, e))
        })();
        if written.is_err() {
            self.release();
        }
        written
    }

    /// Gives the reserve's room back to the file system.
    pub(super) fn release(&self) {
        match std::fs::remove_file(&self.path) {
            Ok(()) => tracing::warn!(path = %self.path.display(), "space reserve released"),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::error!(path = %self.path.display(), error = %e, "cannot release the space reserve")
            }
        }
    }
}

fn io_err(path: &std::path::Path, cause: std::io::Error) -> StoreError {
    StoreError::Io {
        action: "failed to write",
        path: path.to_owned(),
        cause,
    }
}
