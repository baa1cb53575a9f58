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
use tongban_proto::common::v1::{LedgerEntry, SignedReceipt};

use super::certs::{self, Cutting, Form};
use super::keys::{
    ENTRY_VALUE_CUT, HEAD, OUTBOX_SEQ, RECEIVED_CUT, case_index_key, decode_head, encode_head,
    entry_head, entry_value, outbox_key, split_entry_value, state_key,
};
use std::sync::Arc;

use super::batch::{Indexed, Replaced};
use super::deadlines::{CommitmentPart, Deadlines, MailPart, ReviewPart};
use super::{Batch, NewEntry, REOPEN_WAIT, Store, StoredEntry, Trees};
use crate::StoreError;
use crate::chain::{EntryHash, entry_hash};
use crate::records::{CaseRecord, RequestRecord, Side, decode, encode};
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

/// The fields of a version 1 (JSON) case record that the indexes hold,
/// read without decoding the rest of it.
#[derive(serde::Deserialize)]
struct JsonIndexed {
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

/// What the indexes hold of a stored case record (see [`Indexed`]). None if
/// it does not decode.
fn indexed(id: &str, bytes: &[u8]) -> Option<Indexed> {
    if bytes.first() == Some(&crate::records::RECORD_JSON) {
        let old = decode::<JsonIndexed>("cases", bytes).ok()?;
        let deadlines =
            Deadlines::of_parts(old.state, &old.review, old.commitment.as_ref(), &old.mail);
        return Some(Indexed {
            case_no: old.case_no,
            state: state_key(old.side, old.state, id),
            deadlines: deadlines.keys(old.side, id),
        });
    }
    // A binary record decodes whole (postcard cannot skip fields), in
    // about the time JSON took for these few.
    decode::<CaseRecord>("cases", bytes)
        .ok()
        .map(|old| Indexed::of(&old))
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

/// The batch's `entries` as they will be stored: chained onto `head`, from
/// its next seq on, all at time `at`. The payloads move from the batch into the stored entries (the batch
/// keeps each entry's other fields): a payload is copied once, into its
/// sled value, not twice. Also the head after them, each entry's hash
/// computed here once.
fn chain(
    entries: &mut [NewEntry],
    head: (u64, EntryHash),
    at: &str,
) -> (Vec<StoredEntry>, (u64, EntryHash)) {
    use sha2::Digest;
    let (mut seq, mut hash) = head;
    let stored = entries
        .iter_mut()
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
                payload: std::mem::take(&mut e.payload),
            }
        })
        .collect();
    (stored, (seq, hash))
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
        // Materials the batch names were appended before this call: they
        // must be durable before any record naming them is written (sled
        // writes a transaction's records out as it applies it, not only at
        // the flush). Their sync runs while this commit waits for the write
        // lock and builds its batch, and is awaited before the transaction:
        // the sync and the build overlap instead of following each other.
        let materials = self.materials.unsynced().then(|| {
            let log = self.materials.clone();
            tokio::spawn(async move { log.sync().await })
        });
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
            let (chained, new_head) = chain(&mut batch.entries, head, &now_rfc3339());
            let reply = match batch.reply.0.take() {
                Some(build) => Some(build(&chained).map_err(E::from)?),
                None => None,
            };
            if let Some(synced) = materials {
                let synced = synced.await.unwrap_or_else(|e| {
                    Err(StoreError::Io {
                        action: "failed to sync",
                        path: self.materials.path().to_path_buf(),
                        cause: std::io::Error::other(e),
                    })
                });
                if let Err(e) = synced {
                    // Nothing is in the database yet; the probe finds out
                    // when the log takes writes again.
                    self.set_writable(false, Some(&e));
                    return Err(e.into());
                }
            }
            // Every material the batch names is before this point now; the
            // head records it, so the next open appends after it.
            let log_end = self.materials.durable_end();
            // Not while a flush syncs: see `gate`.
            let gate = super::gate::GATE.write().await;
            let applied = self.apply(&trees, &batch, (head, new_head), &chained, reply, log_end);
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
                // Durable already; bounds what the next open replays.
                self.roll_over_if_due(committed.head_seq).await;
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
        // Opening wrote sled's snapshot: the next open replays from here.
        self.opened_at
            .store(head.0, std::sync::atomic::Ordering::Relaxed);
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
            Ok(value) => value.is_some_and(|value| {
                split_entry_value(&value)
                    .is_some_and(|(entry, _)| entry_hash(entry) == committed.head_hash)
            }),
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
        (head, new_head): ((u64, EntryHash), (u64, EntryHash)),
        chained: &[StoredEntry],
        reply: Option<Vec<u8>>,
        log_end: u64,
    ) -> Result<Committed, StoreError> {
        let first_seq = head.0 + 1;
        // Each record: its id, its bytes, what the indexes will hold of it
        // and, if its caller read it, of the record it replaces.
        type Row<'a> = (&'a str, Vec<u8>, Indexed, Option<&'a Replaced>);
        let cases: Vec<Row<'_>> = batch
            .cases
            .iter()
            .map(|(c, replaced)| {
                (
                    c.application_id.as_str(),
                    encode(c),
                    Indexed::of(c),
                    replaced.as_ref(),
                )
            })
            .collect();
        let enqueue: Vec<(&str, Vec<u8>)> = batch
            .enqueue
            .iter()
            .map(|e| (e.to.as_str(), encode(e)))
            .collect();
        let outbox_put: Vec<(Vec<u8>, Vec<u8>, bool)> = batch
            .outbox_put
            .iter()
            .map(|(k, e)| (outbox_key(e.to.as_str(), *k), encode(e), e.parked.is_none()))
            .collect();
        // Signer certificates cut out of what this commit stores, and the
        // values as stored (see `certs`).
        let mut certs = Cutting::new(&trees.known);
        let values: Vec<Vec<u8>> = chained
            .iter()
            .zip(&batch.entries)
            .map(|(stored, e)| {
                if let Some(cert) = certs.of(&e.signer_certificate) {
                    let mut v = entry_head(ENTRY_VALUE_CUT, &stored.entry, stored.payload.len());
                    if certs::cut_into(&mut v, &stored.payload, &cert, Form::Hex) {
                        certs.used(cert);
                        return v;
                    }
                }
                entry_value(&stored.entry, &stored.payload)
            })
            .collect();
        let received: Vec<(Vec<u8>, Vec<u8>)> = batch
            .received
            .iter()
            .map(|(k, r)| {
                let record = encode(r);
                // The receipts of one commit are this node's, signed with
                // one key: the certificate the last one carried is looked
                // for first, without decoding the receipt. Any place it is
                // cut from is put back byte for byte.
                let cert = certs
                    .last()
                    .filter(|c| c.find(&record, Form::Der).is_some())
                    .or_else(|| {
                        let signer = SignedReceipt::decode(r.signed_receipt.as_slice())
                            .map(|s| s.signer_certificate)
                            .unwrap_or_default();
                        certs.of(&signer)
                    });
                if let Some(cert) = cert {
                    let mut v = vec![RECEIVED_CUT];
                    if certs::cut_into(&mut v, &record, &cert, Form::Der) {
                        certs.used(cert);
                        return (k.clone(), v);
                    }
                }
                (k.clone(), record)
            })
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
            &trees.case_index,
            &trees.cases,
            &trees.case_nos,
            &trees.outbox,
            &trees.received,
            &trees.meta,
            &trees.waybills,
            &trees.outbox_parked,
            &trees.case_states,
            &trees.partner_checkpoints,
            &trees.requests,
            &trees.deadlines,
            &trees.certs,
        );
        let t = super::counts::Tally::default();
        let result = all.transaction(
            |(
                ledger,
                case_index,
                cases_t,
                case_nos,
                outbox,
                received_t,
                meta,
                waybills,
                outbox_parked,
                case_states,
                partner_checkpoints,
                requests,
                deadlines,
                certs_t,
            )| {
                t.restart();
                let corrupt = |reason: &str| {
                    ConflictableTransactionError::Abort(StoreError::Corrupt {
                        tree: "meta",
                        reason: reason.into(),
                    })
                };
                let stored_head = match t.get(meta, HEAD)? {
                    Some(v) => {
                        decode_head(&v).ok_or_else(|| corrupt("ledger head record is damaged"))?
                    }
                    None => (0, [0; 32]),
                };
                // Only this write path moves the head, under the write lock.
                if stored_head != head {
                    return Err(corrupt("ledger head moved during a commit"));
                }
                for cert in &certs.new {
                    // Kept once: only a certificate this opening has not
                    // seen is looked for, and written if absent.
                    if t.get(certs_t, cert.fingerprint)?.is_none() {
                        t.insert(certs_t, cert.fingerprint, cert.der())?;
                    }
                }
                for ((stored, e), value) in chained.iter().zip(&batch.entries).zip(&values) {
                    let key = stored.seq.to_be_bytes();
                    t.insert(ledger, key, value)?;
                    if !e.application_id.is_empty() {
                        t.insert(
                            case_index,
                            case_index_key(&e.application_id, stored.seq),
                            &[][..],
                        )?;
                    }
                }
                t.insert(meta, HEAD, encode_head(new_head.0, &new_head.1, log_end))?;
                for (i, (id, bytes, new, replaced)) in cases.iter().enumerate() {
                    // Keep the (side, state), case number and deadline
                    // indexes in step with the record, touching them only
                    // when what they index changed (most changes keep all).
                    // The record replaced is the one its caller read, unless
                    // this batch wrote the case before (then it is that).
                    let written_before = cases[..i].iter().any(|(other, ..)| other == id);
                    let read = |t: &super::counts::Tally| {
                        Ok::<_, ConflictableTransactionError<StoreError>>(
                            t.get(cases_t, id.as_bytes())?
                                .and_then(|old| indexed(id, &old)),
                        )
                    };
                    let old: Option<Indexed> = match replaced {
                        Some(Replaced(claimed)) if !written_before => {
                            // See `Batch::put_case_replacing`.
                            if cfg!(debug_assertions) && read(&t)? != *claimed {
                                return Err(ConflictableTransactionError::Abort(
                                    StoreError::Content(format!(
                                        "case {id} was replaced since its caller read it"
                                    )),
                                ));
                            }
                            claimed.clone()
                        }
                        _ => read(&t)?,
                    };
                    let (old_no, old_key, old_deadlines) = match old {
                        Some(Indexed {
                            case_no,
                            state,
                            deadlines,
                        }) => (Some(case_no), Some(state), deadlines),
                        None => (None, None, Vec::new()),
                    };
                    if old_key.as_ref() != Some(&new.state) {
                        if let Some(old_key) = old_key {
                            t.remove(case_states, old_key)?;
                        }
                        t.insert(case_states, new.state.as_slice(), &[][..])?;
                    }
                    if old_deadlines != new.deadlines {
                        for k in &old_deadlines {
                            t.remove(deadlines, k.as_slice())?;
                        }
                        for k in &new.deadlines {
                            t.insert(deadlines, k.as_slice(), &[][..])?;
                        }
                    }
                    if old_no.as_ref() != Some(&new.case_no) {
                        t.insert(case_nos, new.case_no.as_bytes(), id.as_bytes())?;
                    }
                    t.insert(cases_t, id.as_bytes(), bytes.as_slice())?;
                }
                if !enqueue.is_empty() {
                    let mut next = t
                        .get(meta, OUTBOX_SEQ)?
                        .and_then(|b| b.as_ref().try_into().ok())
                        .map(u64::from_be_bytes)
                        .unwrap_or(0);
                    for (to, bytes) in &enqueue {
                        next += 1;
                        t.insert(outbox, outbox_key(to, next), bytes.as_slice())?;
                    }
                    t.insert(meta, OUTBOX_SEQ, next.to_be_bytes())?;
                }
                for (key, bytes, live) in &outbox_put {
                    // Parked entries move apart, so the courier never reads
                    // them again; one taken up again moves back.
                    let (to, from) = if *live {
                        (outbox, outbox_parked)
                    } else {
                        (outbox_parked, outbox)
                    };
                    t.remove(from, key.as_slice())?;
                    t.insert(to, key.as_slice(), bytes.as_slice())?;
                }
                for (key, expected) in &batch.outbox_settle {
                    // Only an entry nobody changed meanwhile is done.
                    if t.get(outbox, key.as_slice())?
                        .is_some_and(|v| v.as_ref() == expected.as_ref())
                    {
                        t.remove(outbox, key.as_slice())?;
                    }
                }
                for (key, bytes) in &received {
                    t.insert(received_t, key.as_slice(), bytes.as_slice())?;
                }
                for (waybill, id) in &batch.waybills {
                    t.insert(waybills, waybill.as_bytes(), id.as_bytes())?;
                }
                for (key, signed) in &batch.partner_checkpoints {
                    t.insert(partner_checkpoints, key.as_slice(), signed.as_slice())?;
                }
                if let Some((key, record)) = &request {
                    t.insert(requests, *key, record.as_slice())?;
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
            Ok(c) => {
                t.count(&self.counts);
                for cert in certs.new {
                    trees.known.add(cert);
                }
                Ok(c)
            }
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
mod tests;
