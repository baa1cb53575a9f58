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
use super::{Batch, NewEntry, Store, StoredEntry};
use crate::StoreError;
use crate::chain::{EntryHash, entry_hash};
use crate::records::{CaseRecord, OutboxEntry, RequestRecord, decode, encode};

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
    pub async fn commit_with<E: From<StoreError>>(
        &self,
        build: impl FnOnce(u64) -> Result<Batch, E>,
    ) -> Result<Committed, E> {
        // Materials the batch names were appended before this call: make
        // them durable before any record naming them is written. Outside
        // the write lock, so other commits do not wait on this sync.
        self.materials.sync().await?;
        let committed = {
            // An async lock: a commit waiting for another must not block
            // one of the runtime's two threads (with two nodes in one
            // process, that stalled the other node's work in the benchmark).
            let _guard = self.write_lock.lock().await;
            let head = self.head()?;
            let mut batch = build(head.0 + 1)?;
            // The entries chained onto the head before the transaction (the
            // write lock keeps the head where it is), so that the reply can
            // show them as stored and be written with them.
            let chained = chain(&batch.entries, head, &now_rfc3339());
            let reply = match batch.reply.0.take() {
                Some(build) => Some(build(&chained).map_err(E::from)?),
                None => None,
            };
            let committed = self.apply(&batch, head, &chained, reply)?;
            // Written records name these files: they stay even if the flush
            // below fails, since the write may still reach the disk.
            std::mem::take(&mut batch.blobs).keep();
            committed
        };
        self.flusher.flush().await?;
        self.became_durable((committed.head_seq, committed.head_hash));
        Ok(committed)
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
        let cases: Vec<(String, String, Vec<u8>, Vec<u8>)> = batch
            .cases
            .iter()
            .map(|c| {
                let key = state_key(c.side, c.state, &c.application_id);
                (
                    c.application_id.clone(),
                    c.case_no.to_string(),
                    encode(c),
                    key,
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

        let trees = (
            &self.ledger,
            &self.payloads,
            &self.case_index,
            &self.cases,
            &self.case_nos,
            &self.outbox,
            &self.received,
            &self.meta,
            &self.waybills,
            &self.outbox_index,
            &self.case_states,
            &self.partner_checkpoints,
            &self.requests,
        );
        let result = trees.transaction(
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
                for (id, case_no, bytes, key) in &cases {
                    // Keep the (side, state) index in step with the record.
                    if let Some(old) = cases_t.get(id.as_bytes())?
                        && let Ok(old) = decode::<CaseRecord>("cases", &old)
                    {
                        case_states.remove(state_key(old.side, old.state, id))?;
                    }
                    cases_t.insert(id.as_bytes(), bytes.as_slice())?;
                    case_nos.insert(case_no.as_bytes(), id.as_bytes())?;
                    case_states.insert(key.as_slice(), &[][..])?;
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
        let head = self.head()?;
        self.flusher.flush().await?;
        self.became_durable(head);
        Ok(())
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
        let stage = |seed: u8| {
            let content = vec![seed; crate::INLINE_MAX as usize + 1];
            let sha: [u8; 32] = sha2::Sha256::digest(&content).into();
            let mut w = store
                .blobs()
                .writer("m".into(), content.len() as u64, sha)
                .unwrap();
            w.write(content.into()).unwrap();
            let mut staged = crate::StagedBlobs::default();
            let blob = w.finish(&mut staged).unwrap();
            assert!(!staged.is_empty());
            (staged, store.blobs().path(&blob.sha256_hex))
        };
        let (dropped, dropped_path) = stage(1);
        assert!(dropped_path.is_file());
        drop(dropped);
        assert!(!dropped_path.is_file(), "an upload dropped leaves nothing");

        let (refused, refused_path) = stage(2);
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

        let (kept, kept_path) = stage(3);
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
