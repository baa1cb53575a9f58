//! Writing one blob: [`BlobWriter`] receives the chunks (a large blob's go
//! to the threads in `sink`), checks size and digest, and moves the file
//! into place; [`PendingBlob`] is one whose last sync may still run.
//!
//! Which files stay is `staging`'s: a file put in place is staged there.
//! The waits are async: a runtime thread is never held while the disk
//! catches up.

use std::fs::{self, File};
use std::path::PathBuf;
use std::sync::atomic::Ordering;

use bytes::Bytes;
use sha2::{Digest, Sha256};

use super::sink::{FileSink, Worker};
use super::staging::{Staging, hold_if_staged};
use super::{BlobStore, INLINE_MAX, StagedBlobs};
use crate::records::hex;
use crate::{StoreError, UploadError};

impl BlobStore {
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
            staging: self.staging.clone(),
        })
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
    pub async fn write(&mut self, data: Bytes) -> Result<(), StoreError> {
        let total = self.written + data.len() as u64;
        if total > self.size {
            return Err(StoreError::Upload(UploadError::TooLong {
                what: self.what.clone(),
                declared: self.size,
            }));
        }
        self.written = total;
        if let Some((hasher, memory)) = self.memory.as_mut() {
            hasher.update(&data);
            memory.extend_from_slice(&data);
            return Ok(());
        }
        let sink = self.sink.as_mut().expect("writer used after finish");
        if sink.send(data).await.is_err() {
            // The thread stopped on a write error: report it.
            let err = match sink.finish().await {
                Err(e) => e,
                Ok(_) => std::io::Error::other("the blob writer stopped"),
            };
            return Err(StoreError::io("failed to write", &self.tmp)(err));
        }
        Ok(())
    }

    fn check(&self, digest: &[u8; 32]) -> Result<(), StoreError> {
        if *digest != self.sha256 {
            return Err(StoreError::Upload(UploadError::Digest {
                what: self.what.clone(),
                declared: hex(&self.sha256),
                received: hex(digest),
            }));
        }
        Ok(())
    }

    /// Checks size and digest, then makes the blob durable under its
    /// digest; a file it put in place (or shares with another upload not
    /// yet committed) is staged in `staged`.
    pub async fn finish(self, staged: &mut StagedBlobs) -> Result<FinishedBlob, StoreError> {
        self.finish_later().await?.wait(staged).await
    }

    /// Checks size and digest now; the last sync and the move into place
    /// run on a thread of their own, so that the next material of a stream
    /// is received meanwhile. [`PendingBlob::wait`] before naming it.
    pub async fn finish_later(mut self) -> Result<PendingBlob, StoreError> {
        if self.written != self.size {
            return Err(StoreError::Upload(UploadError::Truncated {
                what: self.what.clone(),
                received: self.written,
                declared: self.size,
            }));
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
            .await
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
        let durable = Worker::spawn("blob-sync", move || {
            let mut held = false;
            let result = (|| {
                file.sync_all()
                    .map_err(StoreError::io("failed to sync", &tmp))?;
                drop(file);
                crate::modes::create_dir(&sub)?;
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
    durable: Option<Worker<(bool, Result<(), StoreError>)>>,
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

    /// What the sync thread ended with (`None`: it panicked): what it
    /// put in place goes to `stake`.
    fn settled(&mut self, ended: Option<(bool, Result<(), StoreError>)>) -> Result<(), StoreError> {
        let (held, result) = ended.unwrap_or_else(|| {
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
        result
    }

    /// Waits until the blob is durable under its digest; its file is then
    /// staged in `staged`. On an error the file it put in place is removed.
    pub async fn wait(mut self, staged: &mut StagedBlobs) -> Result<FinishedBlob, StoreError> {
        if let Some(t) = self.durable.take() {
            let ended = t.wait().await;
            self.settled(ended)?;
        }
        staged.absorb(std::mem::take(&mut self.stake));
        Ok(self.blob.clone())
    }
}

impl Drop for PendingBlob {
    fn drop(&mut self) {
        // Never leave the thread behind: once this returns, the blob is in
        // place and staged (then removed with `stake`, after this), or gone.
        if let Some(t) = self.durable.take() {
            let ended = t.join();
            let _ = self.settled(ended);
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
    use super::super::WRITE_BEHIND;
    use super::*;

    fn sha(data: &[u8]) -> [u8; 32] {
        Sha256::digest(data).into()
    }

    #[tokio::test]
    async fn stores_by_digest_and_refuses_bad_content_without_leftovers() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = BlobStore::open(dir.path()).unwrap();
        let mut staged = StagedBlobs::default();
        let mut w = blobs.writer("m".into(), 5, sha(b"hello")).unwrap();
        w.write(Bytes::from_static(b"hel")).await.unwrap();
        w.write(Bytes::from_static(b"lo")).await.unwrap();
        let done = w.finish(&mut staged).await.unwrap();
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
            w.write(Bytes::copy_from_slice(piece)).await.unwrap();
        }
        let done = w.finish(&mut staged).await.unwrap();
        assert!(!staged.is_empty() && done.inline.is_none());
        assert_eq!(fs::read(blobs.path(&done.sha256_hex)).unwrap(), big);

        // The same content again: no second file, no leftover.
        let mut w = blobs
            .writer("m".into(), big.len() as u64, sha(&big))
            .unwrap();
        w.write(Bytes::from(big.clone())).await.unwrap();
        let mut again = StagedBlobs::default();
        w.finish(&mut again).await.unwrap();
        assert!(!again.is_empty(), "held by both uploads");
        staged.keep();
        drop(again);
        assert!(blobs.contains(&done.sha256_hex), "kept by the first");
        // A large one abandoned half way, or with the wrong digest, leaves nothing.
        let mut w = blobs
            .writer("m".into(), big.len() as u64, sha(&big))
            .unwrap();
        w.write(Bytes::copy_from_slice(&big[..1 << 20]))
            .await
            .unwrap();
        drop(w);
        let mut w = blobs
            .writer("m".into(), big.len() as u64, sha(b"other"))
            .unwrap();
        w.write(Bytes::from(big.clone())).await.unwrap();
        assert!(
            w.finish(&mut StagedBlobs::default())
                .await
                .unwrap_err()
                .to_string()
                .contains("SHA-256")
        );
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);

        let mut w = blobs.writer("m".into(), 5, sha(b"hello")).unwrap();
        assert!(
            w.write(Bytes::from_static(b"hello!"))
                .await
                .unwrap_err()
                .to_string()
                .contains("longer")
        );
        drop(w);
        let mut w = blobs.writer("m".into(), 5, sha(b"hello")).unwrap();
        w.write(Bytes::from_static(b"hell")).await.unwrap();
        assert!(
            w.finish(&mut StagedBlobs::default())
                .await
                .unwrap_err()
                .to_string()
                .contains("truncated")
        );
        let mut w = blobs.writer("m".into(), 5, sha(b"hello")).unwrap();
        w.write(Bytes::from_static(b"jello")).await.unwrap();
        assert!(
            w.finish(&mut StagedBlobs::default())
                .await
                .unwrap_err()
                .to_string()
                .contains("SHA-256")
        );
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
    }
}
