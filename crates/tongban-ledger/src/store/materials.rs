//! Materials as the store serves them: appending a small one to the
//! material log, and opening any one for reading, wherever it is stored
//! ([`Store::open_material`]), so no caller opens a file of the data dir.
//!
//! Receiving uploads into files is [`crate::blobs`]'s; the log's format is
//! [`crate::material_log`]'s.

use std::fs::File;
use std::io::Read;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;

use super::Store;
use crate::StoreError;
use crate::records::{LogSpan, MaterialRef};

/// A stored material opened for reading: its content in chunks, checked
/// as far as the store can without a second pass. A logged material was
/// read and checked against its SHA-256 when it was opened; a file was
/// checked against its recorded size (its SHA-256 is checked by whoever
/// receives it). A file shorter than its record is
/// [`StoreError::Damaged`] at the point the bytes run out.
#[derive(Debug)]
pub struct MaterialReader {
    sha256: String,
    size: u64,
    source: Source,
}

#[derive(Debug)]
enum Source {
    /// A logged material, whole; what has not been handed out yet.
    Memory(Bytes),
    /// A blob file and how many of its recorded bytes are still to read.
    File {
        file: File,
        path: PathBuf,
        left: u64,
    },
}

impl MaterialReader {
    /// The material's size in bytes.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// Whether the content is already in memory (a logged material), so
    /// that reading it never waits on the disk.
    pub fn in_memory(&self) -> bool {
        matches!(self.source, Source::Memory(_))
    }

    /// The next at most `max` bytes (`max` > 0), `None` after the last.
    /// Reading a file blocks: outside [`MaterialReader::in_memory`], call
    /// this on a blocking thread.
    pub fn read_chunk(&mut self, max: usize) -> Result<Option<Bytes>, StoreError> {
        let max = max.max(1);
        match &mut self.source {
            Source::Memory(rest) => {
                if rest.is_empty() {
                    return Ok(None);
                }
                Ok(Some(rest.split_to(max.min(rest.len()))))
            }
            Source::File { file, path, left } => {
                if *left == 0 {
                    return Ok(None);
                }
                let n = (*left).min(max as u64) as usize;
                // Read into the spare capacity: a zeroed buffer cost a
                // memset of every byte before the read overwrote it.
                let mut buf = Vec::with_capacity(n);
                let got = file
                    .by_ref()
                    .take(n as u64)
                    .read_to_end(&mut buf)
                    .map_err(|e| StoreError::io("failed to read", path.as_path())(e))?;
                if got < n {
                    return Err(StoreError::Damaged {
                        sha256: self.sha256.clone(),
                        reason: format!(
                            "{} ended before its recorded {} bytes",
                            path.display(),
                            self.size
                        ),
                    });
                }
                *left -= n as u64;
                Ok(Some(Bytes::from(buf)))
            }
        }
    }
}

/// A stored material as re-read for an audit: the digest and size of the
/// bytes that are there now, whatever its record says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rehashed {
    /// Lowercase hex SHA-256 of the bytes read.
    pub sha256: String,
    /// How many bytes were read.
    pub size: u64,
}

/// Blob files are hashed in pieces of this size: large enough that a read
/// costs little beside hashing it, small enough to stay in cache.
const REHASH_CHUNK: usize = 256 * 1024;

/// Materials re-hashed at once, at most (one per core up to this).
const REHASH_THREADS: usize = 4;

/// Results finished and not yet taken by the caller: enough that a thread
/// rarely waits for the caller to take a small material's result.
const REHASH_QUEUED: usize = 64;

/// Tells the kernel a blob file is read from start to end, so that it
/// reads further ahead of a handoff or an audit reading it from the disk
/// (the page cache is not where an old material is). Only advice: an error
/// changes nothing that is read.
fn read_ahead(file: &File) {
    #[cfg(target_os = "linux")]
    let _ = rustix::fs::fadvise(file, 0, None, rustix::fs::Advice::Sequential);
    #[cfg(not(target_os = "linux"))]
    let _ = file;
}

impl Store {
    /// Re-reads a stored material and hashes what is there, without
    /// comparing it with its record (the auditor does that): the span of a
    /// logged material, a blob file to its end (so a truncated or extended
    /// file shows in the size). A missing file or a span past the end of
    /// the log is [`StoreError::Damaged`]; a failing read is
    /// [`StoreError::Io`]. Blocks: call it on a blocking thread.
    pub fn rehash_material(&self, m: &MaterialRef) -> Result<Rehashed, StoreError> {
        use sha2::{Digest, Sha256};
        if let Some(span) = m.log {
            let bytes = self.materials.read_unchecked(span, &m.sha256)?;
            return Ok(Rehashed {
                sha256: crate::records::hex(&Sha256::digest(&bytes)),
                size: bytes.len() as u64,
            });
        }
        let path = self.blobs.path(&m.sha256);
        let mut file = File::open(&path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => StoreError::Damaged {
                sha256: m.sha256.clone(),
                reason: format!("its file {} is missing", path.display()),
            },
            _ => StoreError::io("failed to open material", &path)(e),
        })?;
        read_ahead(&file);
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; REHASH_CHUNK];
        let mut size = 0u64;
        loop {
            let n = match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(StoreError::io("failed to read material", &path)(e)),
            };
            hasher.update(&buf[..n]);
            size += n as u64;
        }
        Ok(Rehashed {
            sha256: crate::records::hex(&hasher.finalize()),
            size,
        })
    }

    /// Re-hashes every material of `materials` as [`Store::rehash_material`]
    /// does, several at once (one thread per core): `each` gets every
    /// result in the order of `materials`, on the calling thread, and
    /// stops the rest by returning false. Blocks: call it on a blocking
    /// thread.
    ///
    /// One thread hashing one material after the other left the second
    /// core idle, and an audit of many small materials paid each one's
    /// read and reply in turn.
    pub fn rehash_materials(
        &self,
        materials: &[MaterialRef],
        mut each: impl FnMut(usize, Result<Rehashed, StoreError>) -> bool,
    ) {
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, REHASH_THREADS)
            .min(materials.len());
        if threads <= 1 {
            for (i, m) in materials.iter().enumerate() {
                if !each(i, self.rehash_material(m)) {
                    return;
                }
            }
            return;
        }
        let next = AtomicUsize::new(0);
        let stop = AtomicBool::new(false);
        std::thread::scope(|scope| {
            let (tx, rx) = std::sync::mpsc::sync_channel(REHASH_QUEUED);
            for _ in 0..threads {
                let tx = tx.clone();
                let (next, stop) = (&next, &stop);
                scope.spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(m) = materials.get(i) else { break };
                        if tx.send((i, self.rehash_material(m))).is_err() {
                            break;
                        }
                    }
                });
            }
            drop(tx);
            // Results come as they finish; hand them on in order (a large
            // file on one thread holds back the small ones the other
            // hashed meanwhile, which wait here).
            let mut early = std::collections::BTreeMap::new();
            let mut due = 0;
            for (i, result) in rx {
                early.insert(i, result);
                while let Some(result) = early.remove(&due) {
                    if !each(due, result) {
                        stop.store(true, Ordering::Relaxed);
                        return;
                    }
                    due += 1;
                }
            }
        });
    }

    /// Appends a small material to the material log and says where it is
    /// (for its `MaterialRef`). Durable with the next commit, which syncs
    /// the log before it writes anything.
    pub fn append_material(&self, content: &[u8]) -> Result<LogSpan, StoreError> {
        self.materials.append(content)
    }

    /// Starts making the materials appended so far durable, in the
    /// background: a receiver calls it once a stream's last material is in,
    /// so that the sync runs while it checks the sender's checkpoint and
    /// waits for the case locks; the commit that names them then finds the
    /// sync done, or waits for it, instead of starting its own. Failing
    /// here is harmless: that commit syncs again and reports it.
    pub fn sync_materials_soon(&self) {
        if !self.materials.unsynced() {
            return;
        }
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let log = self.materials.clone();
        runtime.spawn(async move {
            let _ = log.sync().await;
        });
    }

    /// Opens a material for reading, from the material log or its blob
    /// file. A logged material is read whole and checked against its
    /// SHA-256 here (it is at most [`crate::INLINE_MAX`] bytes); a file is
    /// opened and checked against the recorded size. A material that is
    /// missing or does not match its record is [`StoreError::Damaged`]; a
    /// failing read is [`StoreError::Io`].
    pub fn open_material(&self, m: &MaterialRef) -> Result<MaterialReader, StoreError> {
        let damaged = |reason: String| StoreError::Damaged {
            sha256: m.sha256.clone(),
            reason,
        };
        let source = match m.log {
            Some(span) => {
                if span.len != m.size {
                    return Err(damaged(format!(
                        "its record says {} bytes, its span in the material log {}",
                        m.size, span.len
                    )));
                }
                Source::Memory(self.materials.read(span, &m.sha256)?.into())
            }
            None => {
                let path = self.blobs.path(&m.sha256);
                let file = File::open(&path).map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => {
                        damaged(format!("its file {} is missing", path.display()))
                    }
                    _ => StoreError::io("failed to open material", &path)(e),
                })?;
                let len = file
                    .metadata()
                    .map_err(StoreError::io("failed to read the size of", &path))?
                    .len();
                if len != m.size {
                    return Err(damaged(format!(
                        "its file {} holds {len} bytes, its record says {}",
                        path.display(),
                        m.size
                    )));
                }
                read_ahead(&file);
                Source::File {
                    file,
                    path,
                    left: len,
                }
            }
        };
        Ok(MaterialReader {
            sha256: m.sha256.clone(),
            size: m.size,
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Batch;
    use super::*;
    use crate::records::Side;
    use crate::testing::sample_case as case;
    use tongban_core::CaseState;

    fn read_all(store: &Store, m: &MaterialRef) -> Result<Vec<u8>, StoreError> {
        let mut reader = store.open_material(m)?;
        let mut out = Vec::new();
        while let Some(chunk) = reader.read_chunk(1000)? {
            assert!(chunk.len() <= 1000);
            out.extend_from_slice(&chunk);
        }
        assert_eq!(out.len() as u64, reader.size());
        Ok(out)
    }

    #[tokio::test]
    async fn a_file_is_read_in_chunks_and_one_missing_or_of_another_size_is_damaged() {
        use sha2::Digest;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let content: Vec<u8> = (0..crate::INLINE_MAX as usize + 4321)
            .map(|i| (i % 251) as u8)
            .collect();
        let sha: [u8; 32] = sha2::Sha256::digest(&content).into();
        let mut w = store
            .blobs()
            .writer("m".into(), content.len() as u64, sha)
            .unwrap();
        w.write(content.clone().into()).await.unwrap();
        let mut staged = crate::StagedBlobs::default();
        let blob = w.finish(&mut staged).await.unwrap();
        let m = MaterialRef {
            kind: "k".into(),
            filename: "f".into(),
            size: content.len() as u64,
            sha256: blob.sha256_hex.clone(),
            log: None,
        };
        assert!(!store.open_material(&m).unwrap().in_memory());
        assert_eq!(read_all(&store, &m).unwrap(), content);

        let path = store.blobs().path(&blob.sha256_hex);
        std::fs::write(&path, &content[..100]).unwrap();
        let err = read_all(&store, &m).unwrap_err();
        assert!(err.is_damaged(), "{err}");
        assert!(err.to_string().contains("holds 100 bytes"), "{err}");
        std::fs::remove_file(&path).unwrap();
        let err = read_all(&store, &m).unwrap_err();
        assert!(err.is_damaged(), "{err}");
        assert!(err.to_string().contains("missing"), "{err}");
    }

    #[tokio::test]
    async fn a_rehash_reports_what_is_stored_now_and_names_a_missing_file() {
        use sha2::Digest;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let small = b"application form".to_vec();
        let logged = MaterialRef {
            kind: "k".into(),
            filename: "f".into(),
            size: small.len() as u64,
            sha256: crate::records::hex(&sha2::Sha256::digest(&small)),
            log: Some(store.append_material(&small).unwrap()),
        };
        let r = store.rehash_material(&logged).unwrap();
        assert_eq!((r.sha256.as_str(), r.size), (logged.sha256.as_str(), 16));

        let content = vec![7u8; crate::INLINE_MAX as usize + 10];
        let sha: [u8; 32] = sha2::Sha256::digest(&content).into();
        let mut w = store
            .blobs()
            .writer("m".into(), content.len() as u64, sha)
            .unwrap();
        w.write(content.clone().into()).await.unwrap();
        let mut staged = crate::StagedBlobs::default();
        let blob = w.finish(&mut staged).await.unwrap();
        let file = MaterialRef {
            log: None,
            size: content.len() as u64,
            sha256: blob.sha256_hex.clone(),
            ..logged.clone()
        };
        assert_eq!(
            store.rehash_material(&file).unwrap().sha256,
            blob.sha256_hex
        );
        let path = store.blobs().path(&blob.sha256_hex);
        std::fs::write(&path, &content[..100]).unwrap();
        let r = store.rehash_material(&file).unwrap();
        assert_eq!(r.size, 100, "a truncated file is hashed as it is");
        assert_ne!(r.sha256, blob.sha256_hex);
        std::fs::remove_file(&path).unwrap();
        let err = store.rehash_material(&file).unwrap_err();
        assert!(
            err.is_damaged() && err.to_string().contains("missing"),
            "{err}"
        );
    }

    #[test]
    fn materials_rehashed_together_come_back_in_order_and_stop_when_told() {
        use sha2::Digest;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut materials = Vec::new();
        let mut want = Vec::new();
        for i in 0..40usize {
            // Files of several sizes among logged ones, so that the threads
            // finish out of order.
            let content: Vec<u8> = if i % 5 == 0 {
                vec![i as u8; crate::INLINE_MAX as usize + i * 50_000]
            } else {
                format!("material {i}").into_bytes()
            };
            let sha: [u8; 32] = sha2::Sha256::digest(&content).into();
            let log = if content.len() as u64 <= crate::INLINE_MAX {
                Some(store.append_material(&content).unwrap())
            } else {
                // Where a committed blob lies.
                let path = store.blobs().path(&crate::records::hex(&sha));
                std::fs::create_dir_all(path.parent().unwrap()).unwrap();
                std::fs::write(&path, &content).unwrap();
                None
            };
            materials.push(MaterialRef {
                kind: format!("k{i}"),
                filename: "f".into(),
                size: content.len() as u64,
                sha256: crate::records::hex(&sha),
                log,
            });
            want.push(Rehashed {
                sha256: crate::records::hex(&sha),
                size: content.len() as u64,
            });
        }
        // One file gone: its place in the order holds the error.
        std::fs::remove_file(store.blobs().path(&materials[10].sha256)).unwrap();
        let mut got = Vec::new();
        store.rehash_materials(&materials, |i, r| {
            got.push((i, r));
            true
        });
        assert_eq!(got.len(), materials.len());
        for (n, (i, r)) in got.into_iter().enumerate() {
            assert_eq!(i, n, "in the order given");
            match r {
                Ok(r) => assert_eq!(r, want[i], "material {i}"),
                Err(e) => assert!(i == 10 && e.is_damaged(), "material {i}: {e}"),
            }
        }
        let mut taken = 0;
        store.rehash_materials(&materials, |_, _| {
            taken += 1;
            taken < 3
        });
        assert_eq!(taken, 3, "nothing handed on after the caller said stop");
    }

    #[tokio::test]
    async fn small_materials_are_durable_before_the_commit_that_names_them_and_read_back_checked() {
        use sha2::Digest;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("materials.log");
        let a = b"id card scan".to_vec();
        let b = vec![9u8; 16 * 1024];
        let material = |store: &Store, content: &[u8]| MaterialRef {
            kind: "k".into(),
            filename: "f".into(),
            size: content.len() as u64,
            sha256: crate::records::hex(&sha2::Sha256::digest(content)),
            log: Some(store.append_material(content).unwrap()),
        };
        let (ma, mb) = {
            let store = Store::open(dir.path()).unwrap();
            let ma = material(&store, &a);
            let mb = material(&store, &b);
            assert_eq!(
                store
                    .materials
                    .synced
                    .load(std::sync::atomic::Ordering::Acquire),
                0
            );
            let mut c = case("a1", Side::Window, CaseState::Queued);
            c.materials = vec![ma.clone(), mb.clone()];
            let mut batch = Batch::default();
            batch.put_case(c);
            store.commit(batch).await.unwrap();
            assert_eq!(
                store
                    .materials
                    .synced
                    .load(std::sync::atomic::Ordering::Acquire),
                (a.len() + b.len()) as u64,
                "the commit synced the log first"
            );
            assert_eq!(read_all(&store, &ma).unwrap(), a);
            let mut absent = ma.clone();
            absent.log = None;
            let err = read_all(&store, &absent).unwrap_err();
            assert!(
                err.is_damaged() && err.to_string().contains("missing"),
                "without a span it is a file, and there is none: {err}"
            );
            (ma, mb)
        };
        let store = Store::open(dir.path()).unwrap();
        let held = store.case("a1").unwrap().unwrap();
        assert_eq!(
            held.materials,
            vec![ma.clone(), mb.clone()],
            "spans kept in the record"
        );
        assert_eq!(read_all(&store, &mb).unwrap(), b, "after a reopen");
        // Bytes changed on disk are caught on read, not handed out.
        drop(store);
        let mut bytes = std::fs::read(&log).unwrap();
        bytes[a.len() + 5] ^= 1;
        std::fs::write(&log, bytes).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let err = read_all(&store, &mb).unwrap_err();
        assert!(err.is_damaged(), "{err}");
        assert!(err.to_string().contains("read back as"), "{err}");
        assert_eq!(read_all(&store, &ma).unwrap(), a);
        // A damaged span: past the end of the log, or absurdly long.
        let mut past = ma.clone();
        past.log = Some(LogSpan {
            offset: 1 << 40,
            len: 10,
        });
        past.size = 10;
        let err = read_all(&store, &past).unwrap_err();
        assert!(err.is_damaged(), "{err}");
        assert!(err.to_string().contains("materials.log"), "{err}");
        let mut huge = ma.clone();
        huge.log = Some(LogSpan {
            offset: 0,
            len: u64::MAX,
        });
        let err = read_all(&store, &huge).unwrap_err();
        assert!(
            err.is_damaged() && err.to_string().contains("its record says"),
            "a span of another size than the record: {err}"
        );
        huge.size = u64::MAX;
        let err = read_all(&store, &huge).unwrap_err();
        assert!(err.is_damaged(), "{err}");
        assert!(
            err.to_string().contains("more than a logged material"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_padded_log_goes_on_from_the_end_its_head_records_and_an_old_one_from_its_length() {
        use sha2::Digest;
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("materials.log");
        let pad = |bytes: u64| {
            let f = std::fs::OpenOptions::new().append(true).open(&log).unwrap();
            f.set_len(f.metadata().unwrap().len() + bytes).unwrap();
        };
        let a = vec![7u8; 5000];
        let named = {
            let store = Store::open(dir.path()).unwrap();
            let m = MaterialRef {
                kind: "k".into(),
                filename: "f".into(),
                size: a.len() as u64,
                sha256: crate::records::hex(&sha2::Sha256::digest(&a)),
                log: Some(store.append_material(&a).unwrap()),
            };
            let mut c = case("a1", Side::Window, CaseState::Queued);
            c.materials = vec![m.clone()];
            let mut batch = Batch::default();
            batch.put_case(c);
            store.commit(batch).await.unwrap();
            // Appended after the last commit, named by nothing (a crash
            // before its commit): written over after the reopen.
            store.append_material(b"never named").unwrap();
            m
        };
        pad(1 << 20);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.append_material(b"next").unwrap().offset,
            a.len() as u64,
            "the end the head recorded, not the padded file's length"
        );
        assert_eq!(read_all(&store, &named).unwrap(), a);
        drop(store);
        // A head from before the log was padded: seq and hash alone.
        {
            let db =
                super::super::open_db(&dir.path().join("ledger.sled"), super::super::OPEN_WAIT)
                    .unwrap();
            let meta = db.open_tree(super::super::keys::META).unwrap();
            let head = meta.get(super::super::keys::HEAD).unwrap().unwrap();
            assert_eq!(head.len(), 48);
            meta.insert(super::super::keys::HEAD, &head[..40]).unwrap();
            db.flush().unwrap();
        }
        let len = std::fs::metadata(&log).unwrap().len();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.case("a1").unwrap().unwrap().materials,
            vec![named.clone()]
        );
        assert_eq!(
            store.append_material(b"after").unwrap().offset,
            len,
            "an old log's end is its length"
        );
        assert_eq!(read_all(&store, &named).unwrap(), a);
    }
}
