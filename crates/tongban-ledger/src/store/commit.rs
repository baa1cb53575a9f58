//! The one write path: [`Store::commit_with`] syncs the material log,
//! applies a [`Batch`] in one sled transaction over every tree it touches,
//! and flushes before it returns; and what counts as durable.
//!
//! Writes are serialised by a mutex around the transaction (no retry storms
//! on the ledger head, and sequence numbers are known before the
//! transaction starts, so a receipt can name its own entry); the flush runs
//! after the mutex is released so concurrent commits share it. Reads are
//! not here.

use prost::Message;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tongban_proto::common::v1::LedgerEntry;

use super::keys::{
    HEAD, OUTBOX_SEQ, case_index_key, decode_head, encode_head, outbox_index_key, state_key,
};
use std::sync::Arc;

use super::deadlines::{CommitmentPart, Deadlines, MailPart, ReviewPart};
use super::{Batch, NewEntry, REOPEN_WAIT, Store, StoredEntry, Trees};
use crate::StoreError;
use crate::chain::{EntryHash, entry_hash};
use crate::records::{OutboxEntry, RequestRecord, Side, decode, encode};
use tongban_core::CaseState;

/// What a commit wrote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// Seq of the first entry appended (the next seq if none).
    pub first_seq: u64,
    /// Seq of the ledger head after the commit.
    pub head_seq: u64,
    /// Hash of the ledger head after the commit.
    pub head_hash: EntryHash,
    /// The reply the batch built ([`Batch::reply`]), as remembered.
    pub reply: Option<Vec<u8>>,
}

/// The fields of a stored case record that the indexes hold, read without
/// decoding the rest of it (inside the transaction, where every process
/// reader of sled waits).
#[derive(serde::Deserialize)]
struct Indexed {
    case_no: String,
    side: Side,
    state: CaseState,
    #[serde(default)]
    review: ReviewPart,
    #[serde(default)]
    commitment: Option<CommitmentPart>,
    #[serde(default)]
    mail: Vec<MailPart>,
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// The batch's `entries` as they will be stored: chained onto `head`, from
/// its next seq on, all at time `at`.
fn chain(entries: &[NewEntry], head: (u64, EntryHash), at: &str) -> Vec<StoredEntry> {
    use sha2::Digest;
    let (mut seq, mut hash) = head;
    entries
        .iter()
        .map(|e| {
            seq += 1;
            let entry = LedgerEntry {
                version: 1,
                seq,
                prev_hash: hash.to_vec(),
                at: at.to_owned(),
                application_id: e.application_id.clone(),
                case_no: e.case_no.clone(),
                actor: e.actor.clone(),
                kind: e.kind.clone(),
                payload_sha256: sha2::Sha256::digest(&e.payload).to_vec(),
                state: e.state.map(|s| s.as_str().to_owned()).unwrap_or_default(),
            }
            .encode_to_vec();
            hash = entry_hash(&entry);
            StoredEntry {
                seq,
                entry,
                payload: e.payload.clone(),
            }
        })
        .collect()
}

impl Store {
    /// Commits a batch and flushes. See [`Store::commit_with`].
    pub async fn commit(&self, batch: Batch) -> Result<Committed, StoreError> {
        self.commit_with(|_| Ok::<_, StoreError>(batch)).await
    }

    /// Builds a batch knowing the seq its first entry will get, commits it
    /// atomically and flushes to disk before returning.
    ///
    /// `build` runs under the write lock, so what it reads from the store
    /// stays true until its batch is written (it must not commit itself).
    /// When it fails, its error comes back unchanged and nothing is
    /// written; a storage failure comes back through `E::from`. Blob files
    /// the batch keeps ([`Batch::keep_blobs`]) stay once its records are
    /// written, and are removed if the commit fails before that.
    ///
    /// While the store is not [`Store::writable`], commits are refused
    /// (the error says why the last write failed) without touching the
    /// database.
    pub async fn commit_with<E: From<StoreError>>(
        &self,
        build: impl FnOnce(u64) -> Result<Batch, E>,
    ) -> Result<Committed, E> {
        self.commit_inner(build, false).await
    }

    /// [`Store::commit_with`]; a `probe` commits while writes are refused,
    /// and its success ends the refusal.
    async fn commit_inner<E: From<StoreError>>(
        &self,
        build: impl FnOnce(u64) -> Result<Batch, E>,
        probe: bool,
    ) -> Result<Committed, E> {
        if !probe {
            self.refuse_while_unwritable()?;
        }
        // Materials the batch names were appended before this call: make
        // them durable before any record naming them is written. Outside
        // the write lock, so other commits do not wait on this sync.
        if let Err(e) = self.materials.sync().await {
            // Nothing is in the database yet; the probe finds out when the
            // log takes writes again.
            self.set_writable(false, Some(&e));
            return Err(e.into());
        }
        let (committed, trees) = {
            // An async lock: a commit waiting for another must not block
            // one of the runtime's two threads (with two nodes in one
            // process, that stalled the other node's work in the benchmark).
            let guard = self.write_lock.lock().await;
            if !probe {
                // A commit that failed while this one waited stopped writes.
                self.refuse_while_unwritable()?;
            }
            let trees = match self.trees() {
                Ok(trees) => trees,
                // An earlier reopen failed: the probe tries again.
                Err(_) => self.reopen(&guard).await?,
            };
            let head = trees.head()?;
            let mut batch = build(head.0 + 1)?;
            // The entries chained onto the head before the transaction (the
            // write lock keeps the head where it is), so that the reply can
            // show them as stored and be written with them.
            let chained = chain(&batch.entries, head, &now_rfc3339());
            let reply = match batch.reply.0.take() {
                Some(build) => Some(build(&chained).map_err(E::from)?),
                None => None,
            };
            // Not while a flush syncs: see `gate`.
            let gate = super::gate::GATE.write().await;
            let applied = self.apply(&trees, &batch, head, &chained, reply);
            drop(gate);
            let committed = match applied {
                Ok(committed) => committed,
                Err(e) => {
                    if e.is_storage_failure() {
                        let generation = trees.generation;
                        drop(trees);
                        self.failed(&guard, generation, &e).await;
                    }
                    return Err(e.into());
                }
            };
            // Written records name these files: they stay even if the flush
            // below fails, since the write may still reach the disk.
            std::mem::take(&mut batch.blobs).keep();
            (committed, trees)
        };
        let flushed = trees.flusher.flush().await;
        let generation = trees.generation;
        // Before waiting for the lock: a reopen waits for every user of the
        // failed database to let go of it.
        drop(trees);
        match flushed {
            Ok(()) => {
                self.became_durable((committed.head_seq, committed.head_hash));
                if probe {
                    self.set_writable(true, None);
                }
                Ok(committed)
            }
            Err(e) => {
                let guard = self.write_lock.lock().await;
                self.failed(&guard, generation, &e).await;
                // The database now shows what the disk holds, and the
                // commit may have reached it before the failure.
                if self.holds(&committed) {
                    self.became_durable((committed.head_seq, committed.head_hash));
                    return Ok(committed);
                }
                Err(e.into())
            }
        }
    }

    /// Whether writes are taken: `false` from a failed write (or a space
    /// reserve that cannot be put in place) until [`Store::probe`] succeeds. The node reports its
    /// health from it.
    pub fn writable(&self) -> tokio::sync::watch::Receiver<bool> {
        self.writable.subscribe()
    }

    /// Tries to end a refusal of writes: opens the database again if an
    /// earlier reopen failed, puts the space reserve back, and commits a
    /// small write (an empty batch: the ledger head is written again) with
    /// its flush. While the store is not [`Store::writable`], the node
    /// calls this every few hundred milliseconds, so that writes are taken
    /// again by themselves once the disk has room.
    pub async fn probe(&self) -> Result<(), StoreError> {
        {
            let guard = self.write_lock.lock().await;
            if self.trees().is_err() {
                self.reopen(&guard).await?;
            }
            self.reserve.ensure()?;
        }
        self.commit_inner(|_| Ok::<_, StoreError>(Batch::default()), true)
            .await
            .map(|_| ())
    }

    fn refuse_while_unwritable(&self) -> Result<(), StoreError> {
        if *self.writable.borrow() {
            return Ok(());
        }
        let kind = *self.refused.lock().unwrap_or_else(|p| p.into_inner());
        Err(StoreError::Db {
            action: "refused a write",
            cause: sled::Error::Io(std::io::Error::new(
                kind,
                "an earlier write did not reach the disk; writes resume once it takes them again",
            )),
        })
    }

    pub(super) fn set_writable(&self, writable: bool, cause: Option<&StoreError>) {
        if let Some(e) = cause {
            let kind = if e.is_disk_full() {
                std::io::ErrorKind::StorageFull
            } else {
                std::io::ErrorKind::Other
            };
            *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = kind;
        }
        let changed = self
            .writable
            .send_if_modified(|w| std::mem::replace(w, writable) != writable);
        match (changed, cause) {
            (true, Some(e)) => tracing::error!(error = %e, "storage refuses writes"),
            (true, None) => tracing::info!("storage takes writes again"),
            (false, _) => {}
        }
    }

    /// After a failed write or flush of opening `generation`: sled keeps
    /// the batch applied in memory and refuses every later write, so the
    /// database is closed and opened again from disk (unless a commit that
    /// failed with it already did). Under the write lock: no commit starts
    /// on either opening meanwhile.
    async fn failed(
        &self,
        guard: &tokio::sync::MutexGuard<'_, ()>,
        generation: u64,
        err: &StoreError,
    ) {
        self.set_writable(false, Some(err));
        if err.is_disk_full() {
            // sled needs room to open; the probe takes it back.
            self.reserve.release();
        }
        let current = self
            .trees
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
            .map(|t| t.generation);
        if current.is_some_and(|g| g != generation) {
            return; // already reopened after this failure
        }
        if let Err(e) = self.reopen(guard).await {
            // Reads and writes fail until a later commit or probe reopens it.
            tracing::error!(error = %e, "cannot open the ledger again after a failed write");
        }
    }

    /// Drops the current opening of the database and opens it again from
    /// disk; the durable head is then the head it holds.
    async fn reopen(
        &self,
        _guard: &tokio::sync::MutexGuard<'_, ()>,
    ) -> Result<Arc<Trees>, StoreError> {
        let old = self.trees.write().unwrap_or_else(|p| p.into_inner()).take();
        let generation = self
            .openings
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            + 1;
        // The last user of the failed opening closes it; sled then releases
        // its lock file, which the open below waits for.
        drop(old);
        let dir = self.sled_dir.clone();
        let trees = tokio::task::spawn_blocking(move || Trees::open(&dir, generation, REOPEN_WAIT))
            .await
            .map_err(|e| StoreError::Db {
                action: "failed to open ledger again",
                cause: sled::Error::Io(std::io::Error::other(e)),
            })??;
        let head = trees.head()?;
        *self.durable.lock().unwrap_or_else(|p| p.into_inner()) = head;
        let trees = Arc::new(trees);
        *self.trees.write().unwrap_or_else(|p| p.into_inner()) = Some(trees.clone());
        tracing::warn!(head = head.0, generation, "ledger opened again from disk");
        Ok(trees)
    }

    /// Whether the database holds the head a commit wrote. Only a commit
    /// that appended entries can tell: its head is new.
    fn holds(&self, committed: &Committed) -> bool {
        if committed.head_seq < committed.first_seq {
            return false;
        }
        let found = self.trees().and_then(|trees| {
            trees
                .ledger
                .get(committed.head_seq.to_be_bytes())
                .map_err(StoreError::db("failed to read ledger"))
        });
        match found {
            Ok(entry) => entry.is_some_and(|bytes| entry_hash(&bytes) == committed.head_hash),
            Err(e) => {
                tracing::warn!(error = %e, "cannot tell whether a failed commit reached the disk");
                false
            }
        }
    }

    /// Seq and hash of the newest ledger head known to be on disk: what a
    /// signed checkpoint may cover without a flush of its own (a commit
    /// applied but not yet flushed may be lost in a crash, and a checkpoint
    /// must never vouch for entries that can vanish).
    pub fn durable_head(&self) -> (u64, EntryHash) {
        *self.durable.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn became_durable(&self, head: (u64, EntryHash)) {
        let mut durable = self.durable.lock().unwrap_or_else(|p| p.into_inner());
        if head.0 > durable.0 {
            *durable = head;
        }
    }

    fn apply(
        &self,
        trees: &Trees,
        batch: &Batch,
        head: (u64, EntryHash),
        chained: &[StoredEntry],
        reply: Option<Vec<u8>>,
    ) -> Result<Committed, StoreError> {
        let (mut seq, mut hash) = head;
        for stored in chained {
            seq = stored.seq;
            hash = entry_hash(&stored.entry);
        }
        let (first_seq, new_head) = (head.0 + 1, (seq, hash));
        type Row = (String, String, Vec<u8>, Vec<u8>, Vec<Vec<u8>>);
        let cases: Vec<Row> = batch
            .cases
            .iter()
            .map(|c| {
                let key = state_key(c.side, c.state, &c.application_id);
                let deadlines = Deadlines::of(c).keys(c.side, &c.application_id);
                (
                    c.application_id.clone(),
                    c.case_no.to_string(),
                    encode(c),
                    key,
                    deadlines,
                )
            })
            .collect();
        let enqueue: Vec<(String, Vec<u8>)> = batch
            .enqueue
            .iter()
            .map(|e| (e.to.to_string(), encode(e)))
            .collect();
        let outbox_put: Vec<(u64, Vec<u8>, Vec<u8>, bool)> = batch
            .outbox_put
            .iter()
            .map(|(k, e)| {
                (
                    *k,
                    outbox_index_key(e.to.as_str(), *k),
                    encode(e),
                    e.parked.is_none(),
                )
            })
            .collect();
        // Which destination each settled entry was for (to drop its index key).
        let settle: Vec<(u64, Vec<u8>, Option<Vec<u8>>)> = batch
            .outbox_settle
            .iter()
            .map(|(k, expected)| {
                let to = decode::<OutboxEntry>("outbox", expected)
                    .ok()
                    .map(|e| outbox_index_key(e.to.as_str(), *k));
                (*k, expected.clone(), to)
            })
            .collect();
        let received: Vec<(Vec<u8>, Vec<u8>)> = batch
            .received
            .iter()
            .map(|(k, r)| (k.clone(), encode(r)))
            .collect();
        let request: Option<(&[u8], Vec<u8>)> = match &batch.request {
            Some((key, content_sha256)) => {
                let reply = reply.clone().ok_or_else(|| {
                    StoreError::Content("a batch remembers a request without its reply".into())
                })?;
                let record = RequestRecord {
                    content_sha256: content_sha256.clone(),
                    reply,
                };
                Some((key.as_slice(), encode(&record)))
            }
            None => None,
        };

        let all = (
            &trees.ledger,
            &trees.payloads,
            &trees.case_index,
            &trees.cases,
            &trees.case_nos,
            &trees.outbox,
            &trees.received,
            &trees.meta,
            &trees.waybills,
            &trees.outbox_index,
            &trees.case_states,
            &trees.partner_checkpoints,
            &trees.requests,
            &trees.deadlines,
        );
        let result = all.transaction(
            |(
                ledger,
                payloads,
                case_index,
                cases_t,
                case_nos,
                outbox,
                received_t,
                meta,
                waybills,
                outbox_index,
                case_states,
                partner_checkpoints,
                requests,
                deadlines,
            )| {
                let corrupt = |reason: &str| {
                    ConflictableTransactionError::Abort(StoreError::Corrupt {
                        tree: "meta",
                        reason: reason.into(),
                    })
                };
                let stored_head = match meta.get(HEAD)? {
                    Some(v) => {
                        decode_head(&v).ok_or_else(|| corrupt("ledger head record is damaged"))?
                    }
                    None => (0, [0; 32]),
                };
                // Only this write path moves the head, under the write lock.
                if stored_head != head {
                    return Err(corrupt("ledger head moved during a commit"));
                }
                for (stored, e) in chained.iter().zip(&batch.entries) {
                    let key = stored.seq.to_be_bytes();
                    ledger.insert(&key, stored.entry.as_slice())?;
                    payloads.insert(&key, stored.payload.as_slice())?;
                    if !e.application_id.is_empty() {
                        case_index
                            .insert(case_index_key(&e.application_id, stored.seq), &[][..])?;
                    }
                }
                meta.insert(HEAD, encode_head(new_head.0, &new_head.1))?;
                for (id, case_no, bytes, key, deadline_keys) in &cases {
                    // Keep the (side, state), case number and deadline
                    // indexes in step with the record, touching them only
                    // when what they index changed (most changes keep all).
                    let old = cases_t
                        .get(id.as_bytes())?
                        .and_then(|old| decode::<Indexed>("cases", &old).ok());
                    let old_key = old.as_ref().map(|old| state_key(old.side, old.state, id));
                    if old_key.as_ref() != Some(key) {
                        if let Some(old_key) = old_key {
                            case_states.remove(old_key)?;
                        }
                        case_states.insert(key.as_slice(), &[][..])?;
                    }
                    let old_deadlines = old.as_ref().map_or_else(Vec::new, |old| {
                        Deadlines::of_parts(
                            old.state,
                            &old.review,
                            old.commitment.as_ref(),
                            &old.mail,
                        )
                        .keys(old.side, id)
                    });
                    if old_deadlines != *deadline_keys {
                        for k in &old_deadlines {
                            deadlines.remove(k.as_slice())?;
                        }
                        for k in deadline_keys {
                            deadlines.insert(k.as_slice(), &[][..])?;
                        }
                    }
                    if old.as_ref().is_none_or(|old| old.case_no != *case_no) {
                        case_nos.insert(case_no.as_bytes(), id.as_bytes())?;
                    }
                    cases_t.insert(id.as_bytes(), bytes.as_slice())?;
                }
                if !enqueue.is_empty() {
                    let mut next = meta
                        .get(OUTBOX_SEQ)?
                        .and_then(|b| b.as_ref().try_into().ok())
                        .map(u64::from_be_bytes)
                        .unwrap_or(0);
                    for (to, bytes) in &enqueue {
                        next += 1;
                        outbox.insert(&next.to_be_bytes(), bytes.as_slice())?;
                        outbox_index.insert(outbox_index_key(to, next), &[][..])?;
                    }
                    meta.insert(OUTBOX_SEQ, &next.to_be_bytes())?;
                }
                for (key, index, bytes, live) in &outbox_put {
                    outbox.insert(&key.to_be_bytes(), bytes.as_slice())?;
                    // Parked entries leave the index, so the courier never
                    // reads them again.
                    if *live {
                        outbox_index.insert(index.as_slice(), &[][..])?;
                    } else {
                        outbox_index.remove(index.as_slice())?;
                    }
                }
                for (key, expected, index) in &settle {
                    // Only an entry nobody changed meanwhile is done.
                    if outbox
                        .get(key.to_be_bytes())?
                        .is_some_and(|v| v.as_ref() == expected.as_slice())
                    {
                        outbox.remove(&key.to_be_bytes())?;
                        if let Some(index) = index {
                            outbox_index.remove(index.as_slice())?;
                        }
                    }
                }
                for (key, bytes) in &received {
                    received_t.insert(key.as_slice(), bytes.as_slice())?;
                }
                for (waybill, id) in &batch.waybills {
                    waybills.insert(waybill.as_bytes(), id.as_bytes())?;
                }
                for (key, signed) in &batch.partner_checkpoints {
                    partner_checkpoints.insert(key.as_slice(), signed.as_slice())?;
                }
                if let Some((key, record)) = &request {
                    requests.insert(*key, record.as_slice())?;
                }
                Ok(Committed {
                    first_seq,
                    head_seq: new_head.0,
                    head_hash: new_head.1,
                    reply: reply.clone(),
                })
            },
        );
        match result {
            Ok(c) => Ok(c),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(StoreError::Db {
                action: "failed to write ledger",
                cause: e,
            }),
        }
    }

    /// Flushes everything written so far to disk.
    pub async fn flush(&self) -> Result<(), StoreError> {
        // Every entry up to the head read here was applied before the flush
        // starts, so the flush covers it.
        let trees = self.trees()?;
        let head = trees.head()?;
        let flushed = trees.flusher.flush().await;
        let generation = trees.generation;
        drop(trees);
        match flushed {
            Ok(()) => {
                self.became_durable(head);
                Ok(())
            }
            Err(e) => {
                let guard = self.write_lock.lock().await;
                self.failed(&guard, generation, &e).await;
                Err(e)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::{NewEntry, Store};
    use super::*;
    use crate::records::Side;
    use crate::testing::sample_case as test_case;
    use tongban_core::CaseState;

    #[tokio::test]
    async fn a_batch_that_fails_to_build_writes_nothing_and_its_error_comes_back() {
        #[derive(Debug, PartialEq)]
        enum Refused {
            No(u64),
            Store(String),
        }
        impl From<StoreError> for Refused {
            fn from(e: StoreError) -> Self {
                Self::Store(e.to_string())
            }
        }
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let before = store.head().unwrap();
        let err = store
            .commit_with(|next_seq| {
                let mut batch = Batch::default();
                batch
                    .put_case(test_case("a1", Side::Window, CaseState::Queued))
                    .append(NewEntry {
                        application_id: "a1".into(),
                        kind: "case.applied".into(),
                        ..Default::default()
                    });
                if next_seq == 1 {
                    return Err(Refused::No(next_seq));
                }
                Ok(batch)
            })
            .await
            .unwrap_err();
        assert_eq!(err, Refused::No(1), "the closure's own error");
        assert_eq!(store.head().unwrap(), before);
        assert!(store.case("a1").unwrap().is_none());
        assert!(store.case_entries("a1").unwrap().is_empty());
    }

    #[tokio::test]
    async fn staged_blobs_stay_with_the_commit_that_keeps_them_and_go_otherwise() {
        use sha2::Digest;
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let stage = async |seed: u8| {
            let content = vec![seed; crate::INLINE_MAX as usize + 1];
            let sha: [u8; 32] = sha2::Sha256::digest(&content).into();
            let mut w = store
                .blobs()
                .writer("m".into(), content.len() as u64, sha)
                .unwrap();
            w.write(content.into()).await.unwrap();
            let mut staged = crate::StagedBlobs::default();
            let blob = w.finish(&mut staged).await.unwrap();
            assert!(!staged.is_empty());
            (staged, store.blobs().path(&blob.sha256_hex))
        };
        let (dropped, dropped_path) = stage(1).await;
        assert!(dropped_path.is_file());
        drop(dropped);
        assert!(!dropped_path.is_file(), "an upload dropped leaves nothing");

        let (refused, refused_path) = stage(2).await;
        let err = store
            .commit_with(|_| {
                let mut batch = Batch::default();
                batch.keep_blobs(refused);
                Err::<Batch, _>(StoreError::Content("refused".into()))
            })
            .await
            .unwrap_err();
        assert!(err.to_string().contains("refused"));
        assert!(!refused_path.is_file(), "gone with the failed commit");

        let (kept, kept_path) = stage(3).await;
        let mut batch = Batch::default();
        batch.keep_blobs(kept);
        store.commit(batch).await.unwrap();
        assert!(kept_path.is_file(), "kept by its commit");
    }

    #[tokio::test]
    async fn the_durable_head_follows_completed_flushes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.durable_head().0, 0);
        let mut batch = Batch::default();
        batch.append(NewEntry {
            kind: "node.test".into(),
            ..Default::default()
        });
        let c = store.commit(batch).await.unwrap();
        assert_eq!(store.durable_head(), (c.head_seq, c.head_hash));
        assert_eq!(store.durable_head(), store.head().unwrap());
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store.durable_head(),
            (c.head_seq, c.head_hash),
            "after a reopen"
        );
    }

    #[tokio::test]
    async fn a_remembered_request_is_written_with_its_change_and_its_reply_comes_back() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut batch = Batch::default();
        batch
            .append(NewEntry {
                kind: "node.test".into(),
                ..Default::default()
            })
            .reply(|stored| {
                let entry = stored[0].decode()?;
                Ok(format!("{} {}", entry.seq, entry.at).into_bytes())
            })
            .remember("spiffe://a/clerk/x", "r1", "abcd".into());
        let c = store.commit(batch).await.unwrap();
        let reply = c.reply.clone().unwrap();
        assert!(String::from_utf8(reply.clone()).unwrap().starts_with("1 "));
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let record = store.request("spiffe://a/clerk/x", "r1").unwrap().unwrap();
        assert_eq!(record.reply, reply, "durable, byte for byte");
        assert_eq!(record.content_sha256, "abcd");
        assert!(
            store.request("spiffe://a/clerk/y", "r1").unwrap().is_none(),
            "per caller"
        );
        let at = store.entries(1, 1).unwrap()[0].decode().unwrap().at;
        assert!(
            String::from_utf8(reply).unwrap().ends_with(&at),
            "the entry's own time"
        );
    }
}
