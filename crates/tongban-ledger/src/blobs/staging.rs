//! The files uploads have put in place that no commit has kept yet:
//! [`StagedBlobs`] and the count, shared by the whole blob store, of how
//! many uploads hold each.
//!
//! Writing and moving files into place is `writer`'s; it counts them here.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// Files uploads have put in place that no commit has kept yet, with how
/// many uploads hold each. Moving a file into place, counting it and
/// removing it all happen under this lock, so a file with a count exists,
/// and one in place without a count is never an upload's to remove.
pub(super) type Staging = Arc<Mutex<HashMap<PathBuf, usize>>>;

/// Counts one more holder of `dest` if an upload staged it, under the
/// staging lock; false when it is not staged (committed: not ours to count).
pub(super) fn hold_if_staged(staged: &mut HashMap<PathBuf, usize>, dest: &Path) -> bool {
    match staged.get_mut(dest) {
        Some(n) => {
            *n += 1;
            true
        }
        None => false,
    }
}

/// Blob files uploads put in place that no committed record names yet.
///
/// Dropped, it removes them (a file another upload also holds stays until
/// that one lets go): an upload refused, broken off, or whose commit
/// failed leaves nothing half-stored. Handed to the batch that names them
/// ([`crate::Batch::keep_blobs`]), they stay for good once that batch is
/// written, and go with it if the commit fails. Files get here only from
/// [`crate::BlobWriter::finish`] and [`crate::PendingBlob::wait`].
#[derive(Debug, Default)]
#[must_use = "dropping staged blobs removes their files"]
pub struct StagedBlobs {
    pub(super) files: Vec<(PathBuf, Staging)>,
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

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use sha2::{Digest, Sha256};

    use super::super::{BlobStore, INLINE_MAX};
    use super::*;

    fn sha(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    #[tokio::test]
    async fn a_file_two_uploads_share_goes_only_when_neither_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path()).unwrap();
        let big = vec![7u8; INLINE_MAX as usize + 1];
        let upload = async || {
            let mut w = blobs
                .writer("m".into(), big.len() as u64, sha(&big))
                .unwrap();
            w.write(Bytes::from(big.clone())).await.unwrap();
            w.finish_later().await.unwrap()
        };
        // Both under way at once, then each waited for.
        let (first, second) = (upload().await, upload().await);
        let path = blobs.path(&first.blob().sha256_hex);
        let (mut a, mut b) = (StagedBlobs::default(), StagedBlobs::default());
        first.wait(&mut a).await.unwrap();
        second.wait(&mut b).await.unwrap();
        drop(a);
        assert!(path.is_file(), "the second upload still holds it");
        drop(b);
        assert!(!path.is_file(), "neither kept it");

        // A pending upload dropped removes what it put in place.
        let pending = upload().await;
        drop(pending);
        assert!(!path.is_file());

        // Kept once, it is committed: a later upload of it never removes it.
        let mut kept = StagedBlobs::default();
        upload().await.wait(&mut kept).await.unwrap();
        kept.keep();
        let mut later = StagedBlobs::default();
        upload().await.wait(&mut later).await.unwrap();
        assert!(later.is_empty(), "a committed file is nobody's to stage");
        drop(later);
        assert!(path.is_file());
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }
}
