//! The sled database of a node and the one write path into it.
//!
//! Trees: `ledger` (seq → encoded `LedgerEntry`), `payloads` (seq → payload),
//! `case_index` (application id, 0, seq → ()), `cases` (application id →
//! record), `case_nos` (case number → application id), `outbox` (key →
//! entry), `received` (sender county, '/', handoff id → record), `meta`
//! (head, counters); `inline_blobs` is read only, for small materials an
//! earlier version stored whole (new ones are in the material log, see
//! [`crate::material_log`]). Numeric keys are big-endian so they sort.
//!
//! Writes are serialised by a mutex around the transaction (no retry storms
//! on the ledger head, and sequence numbers are known before the
//! transaction starts, so a receipt can name its own entry); the flush runs
//! after the mutex is released so concurrent commits share it.

use std::path::Path;

use prost::Message;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionError};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tongban_core::CaseState;
use tongban_proto::common::v1::LedgerEntry;

use crate::chain::{ChainBreak, EntryHash, entry_hash, verify_run};
use crate::material_log::MaterialLog;
use crate::records::{
    CaseRecord, LogSpan, MaterialRef, OutboxEntry, ReceivedHandoff, Side, decode, encode,
};
use crate::{BlobStore, StoreError};

const HEAD: &[u8] = b"head";
const OUTBOX_SEQ: &[u8] = b"outbox_seq";

/// A ledger entry to append.
#[derive(Debug, Clone, Default)]
pub struct NewEntry {
    /// Application id, empty for node-level entries.
    pub application_id: String,
    /// Case number, empty for node-level entries.
    pub case_no: String,
    /// SPIFFE ID of who caused it.
    pub actor: String,
    /// Entry kind (`case.applied`, `handoff.received`, ...).
    pub kind: String,
    /// Case state after the entry, if it changes one.
    pub state: Option<CaseState>,
    /// Details; the entry holds their SHA-256.
    pub payload: Vec<u8>,
}

/// One atomic write: records, ledger entries and outbox changes.
#[derive(Debug, Default)]
pub struct Batch {
    cases: Vec<CaseRecord>,
    entries: Vec<NewEntry>,
    enqueue: Vec<OutboxEntry>,
    outbox_put: Vec<(u64, OutboxEntry)>,
    outbox_settle: Vec<(u64, Vec<u8>)>,
    received: Vec<(Vec<u8>, ReceivedHandoff)>,
    waybills: Vec<(String, String)>,
    partner_checkpoints: Vec<(Vec<u8>, Vec<u8>)>,
}

impl Batch {
    /// Writes (creates or replaces) a case record.
    pub fn put_case(&mut self, case: CaseRecord) -> &mut Self {
        self.cases.push(case);
        self
    }

    /// Appends a ledger entry.
    pub fn append(&mut self, entry: NewEntry) -> &mut Self {
        self.entries.push(entry);
        self
    }

    /// Queues a new outbox entry.
    pub fn enqueue(&mut self, entry: OutboxEntry) -> &mut Self {
        self.enqueue.push(entry);
        self
    }

    /// Replaces the outbox entry at `key` (e.g. to park it).
    pub fn update_outbox(&mut self, key: u64, entry: OutboxEntry) -> &mut Self {
        self.outbox_put.push((key, entry));
        self
    }

    /// Removes the outbox entry at `key` if it still holds `expected` bytes.
    pub fn settle_outbox(&mut self, key: u64, expected: Vec<u8>) -> &mut Self {
        self.outbox_settle.push((key, expected));
        self
    }

    /// Records a received handoff under (sender county, handoff id).
    pub fn put_received(
        &mut self,
        sender: &str,
        handoff_id: &str,
        record: ReceivedHandoff,
    ) -> &mut Self {
        self.received
            .push((received_key(sender, handoff_id), record));
        self
    }

    /// Keeps a checkpoint a partner sent (see [`Store::put_partner_checkpoint`]).
    pub fn put_partner_checkpoint(&mut self, county: &str, seq: u64, signed: Vec<u8>) -> &mut Self {
        self.partner_checkpoints
            .push((partner_checkpoint_key(county, seq), signed));
        self
    }

    /// Indexes a waybill number to the case it belongs to.
    pub fn put_waybill(&mut self, waybill: &str, application_id: &str) -> &mut Self {
        self.waybills
            .push((waybill.to_owned(), application_id.to_owned()));
        self
    }

    /// Whether the batch writes nothing.
    pub fn is_empty(&self) -> bool {
        self.cases.is_empty()
            && self.entries.is_empty()
            && self.enqueue.is_empty()
            && self.outbox_put.is_empty()
            && self.outbox_settle.is_empty()
            && self.received.is_empty()
            && self.waybills.is_empty()
            && self.partner_checkpoints.is_empty()
    }
}

/// Key of the case state index: side, state, 0, application id.
fn state_key(side: Side, state: CaseState, id: &str) -> Vec<u8> {
    let mut k = vec![match side {
        Side::Window => b'w',
        Side::Home => b'h',
    }];
    k.extend_from_slice(state.as_str().as_bytes());
    k.push(0);
    k.extend_from_slice(id.as_bytes());
    k
}

/// Key of the outbox index: destination county, '/', outbox key.
fn index_key(to: &str, key: u64) -> Vec<u8> {
    let mut k = to.as_bytes().to_vec();
    k.push(b'/');
    k.extend_from_slice(&key.to_be_bytes());
    k
}

fn partner_checkpoint_key(county: &str, seq: u64) -> Vec<u8> {
    let mut key = county.as_bytes().to_vec();
    key.push(b'/');
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

fn received_key(sender: &str, handoff_id: &str) -> Vec<u8> {
    format!("{sender}/{handoff_id}").into_bytes()
}

/// What a commit wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Committed {
    /// Seq of the first entry appended (the next seq if none).
    pub first_seq: u64,
    /// Seq of the ledger head after the commit.
    pub head_seq: u64,
    /// Hash of the ledger head after the commit.
    pub head_hash: EntryHash,
}

/// A ledger entry as stored.
#[derive(Debug, Clone)]
pub struct StoredEntry {
    /// Its sequence number.
    pub seq: u64,
    /// The encoded `LedgerEntry`, exactly as hashed.
    pub entry: Vec<u8>,
    /// The payload.
    pub payload: Vec<u8>,
}

impl StoredEntry {
    /// Decodes the entry.
    pub fn decode(&self) -> Result<LedgerEntry, StoreError> {
        LedgerEntry::decode(self.entry.as_slice()).map_err(|e| StoreError::Corrupt {
            tree: "ledger",
            reason: format!("entry {}: {e}", self.seq),
        })
    }
}

/// A node's storage. Open one per process.
pub struct Store {
    ledger: sled::Tree,
    payloads: sled::Tree,
    case_index: sled::Tree,
    cases: sled::Tree,
    case_nos: sled::Tree,
    outbox: sled::Tree,
    received: sled::Tree,
    meta: sled::Tree,
    waybills: sled::Tree,
    outbox_index: sled::Tree,
    /// Small materials as an earlier version stored them (read only).
    inline_blobs: sled::Tree,
    materials: MaterialLog,
    case_states: sled::Tree,
    checkpoints: sled::Tree,
    partner_checkpoints: sled::Tree,
    blobs: BlobStore,
    write_lock: tokio::sync::Mutex<()>,
    /// The newest head known to be on disk (see [`Store::durable_head`]).
    durable: std::sync::Mutex<(u64, EntryHash)>,
    flusher: Flusher,
}

/// Group commit on a thread of its own. sled 0.34's `flush_async` can hang
/// when several futures await it at once (sled issues 1241 and 1308), so
/// flushes are made with the blocking `flush` here instead: every request
/// waiting when a flush starts is answered by that one flush.
struct Flusher {
    requests: Option<std::sync::mpsc::Sender<tokio::sync::oneshot::Sender<Result<(), String>>>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Flusher {
    fn start(db: sled::Db) -> Result<Self, StoreError> {
        let (tx, rx) =
            std::sync::mpsc::channel::<tokio::sync::oneshot::Sender<Result<(), String>>>();
        let thread = std::thread::Builder::new()
            .name("ledger-flush".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut waiting = vec![first];
                    waiting.extend(rx.try_iter());
                    let result = db.flush().map(|_| ()).map_err(|e| e.to_string());
                    for w in waiting {
                        let _ = w.send(result.clone());
                    }
                }
            })
            .map_err(StoreError::io(
                "failed to start the flush thread",
                "ledger-flush",
            ))?;
        Ok(Self {
            requests: Some(tx),
            thread: Some(thread),
        })
    }

    async fn flush(&self) -> Result<(), StoreError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let gone = || StoreError::Corrupt {
            tree: "-",
            reason: "the flush thread stopped".into(),
        };
        self.requests
            .as_ref()
            .ok_or_else(gone)?
            .send(tx)
            .map_err(|_| gone())?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(StoreError::Db {
                action: "failed to flush ledger",
                source: sled::Error::Io(std::io::Error::other(e)),
            }),
            Err(_) => Err(gone()),
        }
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        // Closing the channel ends the thread; joining it releases its
        // handle on the database before the store is reported closed.
        self.requests.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

fn decode_head(bytes: &[u8]) -> Option<(u64, EntryHash)> {
    let seq = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
    let hash = bytes.get(8..40)?.try_into().ok()?;
    Some((seq, hash))
}

fn encode_head(seq: u64, hash: &EntryHash) -> Vec<u8> {
    let mut v = seq.to_be_bytes().to_vec();
    v.extend_from_slice(hash);
    v
}

/// Opens the sled database. sled releases its lock file only when the
/// last of its I/O threads lets go of a closed database, a moment after the
/// store is dropped: a reopen in the same process (a node restarted in
/// place) waits up to a second for that instead of failing. Another process
/// holding the database still gets the error, after that second.
fn open_db(path: &Path) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    loop {
        match sled::Config::new().path(path).open() {
            Err(sled::Error::Io(e))
                if e.to_string().contains("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            other => return other.map_err(StoreError::db("failed to open ledger")),
        }
    }
}

fn now_rfc3339() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".into())
}

impl Store {
    /// Opens (creating) the store in `data_dir`: `data_dir/ledger.sled` and `data_dir/blobs`.
    /// The data dir and everything in it is then private to this user
    /// (see `modes`).
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let sled_dir = data_dir.join("ledger.sled");
        crate::modes::create_dir(&sled_dir)?;
        let db = open_db(&sled_dir)?;
        let tree = |name: &'static str| {
            db.open_tree(name)
                .map_err(StoreError::db("failed to open tree"))
        };
        let store = Self {
            ledger: tree("ledger")?,
            payloads: tree("payloads")?,
            case_index: tree("case_index")?,
            cases: tree("cases")?,
            case_nos: tree("case_nos")?,
            outbox: tree("outbox")?,
            received: tree("received")?,
            meta: tree("meta")?,
            waybills: tree("waybills")?,
            outbox_index: tree("outbox_index")?,
            inline_blobs: tree("inline_blobs")?,
            materials: MaterialLog::open(&data_dir.join("materials.log"))?,
            case_states: tree("case_states")?,
            checkpoints: tree("checkpoints")?,
            partner_checkpoints: tree("partner_checkpoints")?,
            blobs: BlobStore::open(&data_dir.join("blobs"))?,
            flusher: Flusher::start(db)?,
            write_lock: tokio::sync::Mutex::new(()),
            durable: std::sync::Mutex::new((0, [0; 32])),
        };
        // After sled has created its files, with the umask's modes.
        crate::modes::secure(data_dir, &sled_dir)?;
        // Whatever the database holds when it opens is on disk.
        *store.durable.lock().unwrap_or_else(|p| p.into_inner()) = store.head()?;
        store.index_outbox()?;
        store.index_case_states()?;
        Ok(store)
    }

    /// Builds the case state index for data written before it existed.
    fn index_case_states(&self) -> Result<(), StoreError> {
        if !self.case_states.is_empty() || self.cases.is_empty() {
            return Ok(());
        }
        for case in self.cases()? {
            self.case_states
                .insert(
                    state_key(case.side, case.state, &case.application_id),
                    &[][..],
                )
                .map_err(StoreError::db("failed to index cases"))?;
        }
        Ok(())
    }

    /// Builds the outbox index for data written before it existed.
    fn index_outbox(&self) -> Result<(), StoreError> {
        if !self.outbox_index.is_empty() || self.outbox.is_empty() {
            return Ok(());
        }
        for (key, entry, _) in self.outbox()? {
            if entry.parked.is_none() {
                self.outbox_index
                    .insert(index_key(entry.to.as_str(), key), &[][..])
                    .map_err(StoreError::db("failed to index outbox"))?;
            }
        }
        Ok(())
    }

    /// The material blobs.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// Seq and hash of the ledger head (`(0, zeros)` when empty).
    pub fn head(&self) -> Result<(u64, EntryHash), StoreError> {
        Ok(self
            .meta
            .get(HEAD)
            .map_err(StoreError::db("failed to read head"))?
            .and_then(|v| decode_head(&v))
            .unwrap_or((0, [0; 32])))
    }

    /// Allocates the next number in a named counter (e.g. case numbers of a
    /// day). Durable with the next commit's flush; a number taken by a
    /// request that then fails is skipped, never reused while the node runs.
    pub fn next_counter(&self, name: &str) -> Result<u64, StoreError> {
        let key = format!("counter/{name}");
        let next = self
            .meta
            .update_and_fetch(key.as_bytes(), |old| {
                let n = old
                    .and_then(|b| b.try_into().ok())
                    .map(u64::from_be_bytes)
                    .unwrap_or(0);
                Some((n + 1).to_be_bytes().to_vec())
            })
            .map_err(StoreError::db("failed to allocate counter"))?;
        Ok(next
            .and_then(|b| b.as_ref().try_into().ok())
            .map(u64::from_be_bytes)
            .unwrap_or(1))
    }

    /// Commits a batch and flushes. See [`Store::commit_with`].
    pub async fn commit(&self, batch: Batch) -> Result<Committed, StoreError> {
        self.commit_with(|_| batch).await
    }

    /// Builds a batch knowing the seq its first entry will get, commits it
    /// atomically and flushes to disk before returning.
    pub async fn commit_with(
        &self,
        build: impl FnOnce(u64) -> Batch,
    ) -> Result<Committed, StoreError> {
        // Materials the batch names were appended before this call: make
        // them durable before any record naming them is written. Outside
        // the write lock, so other commits do not wait on this sync.
        self.materials.sync().await?;
        let committed = {
            // An async lock: a commit waiting for another must not block
            // one of the runtime's two threads (with two nodes in one
            // process, that stalled the other node's work in the benchmark).
            let _guard = self.write_lock.lock().await;
            let (head_seq, _) = self.head()?;
            let batch = build(head_seq + 1);
            self.apply(&batch)?
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

    fn apply(&self, batch: &Batch) -> Result<Committed, StoreError> {
        let at = now_rfc3339();
        let entries: Vec<(LedgerEntry, Vec<u8>)> = batch
            .entries
            .iter()
            .map(|e| {
                use sha2::Digest;
                let entry = LedgerEntry {
                    version: 1,
                    seq: 0,
                    prev_hash: Vec::new(),
                    at: at.clone(),
                    application_id: e.application_id.clone(),
                    case_no: e.case_no.clone(),
                    actor: e.actor.clone(),
                    kind: e.kind.clone(),
                    payload_sha256: sha2::Sha256::digest(&e.payload).to_vec(),
                    state: e.state.map(|s| s.as_str().to_owned()).unwrap_or_default(),
                };
                (entry, e.payload.clone())
            })
            .collect();
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
                    index_key(e.to.as_str(), *k),
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
                    .map(|e| index_key(e.to.as_str(), *k));
                (*k, expected.clone(), to)
            })
            .collect();
        let received: Vec<(Vec<u8>, Vec<u8>)> = batch
            .received
            .iter()
            .map(|(k, r)| (k.clone(), encode(r)))
            .collect();

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
            )| {
                let corrupt = || {
                    ConflictableTransactionError::Abort(StoreError::Corrupt {
                        tree: "meta",
                        reason: "ledger head record is damaged".into(),
                    })
                };
                let (mut seq, mut hash) = match meta.get(HEAD)? {
                    Some(v) => decode_head(&v).ok_or_else(corrupt)?,
                    None => (0, [0; 32]),
                };
                let first_seq = seq + 1;
                for (entry, payload) in &entries {
                    seq += 1;
                    let mut entry = entry.clone();
                    entry.seq = seq;
                    entry.prev_hash = hash.to_vec();
                    let bytes = entry.encode_to_vec();
                    hash = entry_hash(&bytes);
                    let key = seq.to_be_bytes();
                    ledger.insert(&key, bytes)?;
                    payloads.insert(&key, payload.as_slice())?;
                    if !entry.application_id.is_empty() {
                        let mut idx = entry.application_id.as_bytes().to_vec();
                        idx.push(0);
                        idx.extend_from_slice(&key);
                        case_index.insert(idx, &[][..])?;
                    }
                }
                meta.insert(HEAD, encode_head(seq, &hash))?;
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
                        outbox_index.insert(index_key(to, next), &[][..])?;
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
                Ok(Committed {
                    first_seq,
                    head_seq: seq,
                    head_hash: hash,
                })
            },
        );
        match result {
            Ok(c) => Ok(c),
            Err(TransactionError::Abort(e)) => Err(e),
            Err(TransactionError::Storage(e)) => Err(StoreError::Db {
                action: "failed to write ledger",
                source: e,
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

    /// A case by application id.
    pub fn case(&self, application_id: &str) -> Result<Option<CaseRecord>, StoreError> {
        self.cases
            .get(application_id.as_bytes())
            .map_err(StoreError::db("failed to read case"))?
            .map(|v| decode("cases", &v))
            .transpose()
    }

    /// A case by case number.
    pub fn case_by_no(&self, case_no: &str) -> Result<Option<CaseRecord>, StoreError> {
        match self
            .case_nos
            .get(case_no.as_bytes())
            .map_err(StoreError::db("failed to read case number"))?
        {
            Some(id) => self.case(&String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    /// Every case, in application-id order (UUID v7: creation order).
    pub fn cases(&self) -> Result<Vec<CaseRecord>, StoreError> {
        self.cases
            .iter()
            .map(|kv| {
                let (_, v) = kv.map_err(StoreError::db("failed to scan cases"))?;
                decode("cases", &v)
            })
            .collect()
    }

    /// Cases on `side` in any of `states`, through the state index: oldest
    /// first (application ids are UUID v7), or newest first; at most `limit`.
    pub fn cases_in(
        &self,
        side: Side,
        states: &[CaseState],
        newest_first: bool,
        limit: usize,
    ) -> Result<Vec<CaseRecord>, StoreError> {
        // Each state's keys are already in id order, so at most `limit` are
        // read from each end: asking "is any case still QUEUED" reads one key,
        // not every queued case.
        let mut ids: Vec<Vec<u8>> = Vec::new();
        for state in states {
            let prefix = state_key(side, *state, "");
            let scan = self.case_states.scan_prefix(&prefix);
            let keys: Box<dyn Iterator<Item = _>> = if newest_first {
                Box::new(scan.rev())
            } else {
                Box::new(scan)
            };
            for kv in keys.take(limit) {
                let (k, _) = kv.map_err(StoreError::db("failed to scan case states"))?;
                ids.push(k[prefix.len()..].to_vec());
            }
        }
        ids.sort();
        if newest_first {
            ids.reverse();
        }
        ids.truncate(limit);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(v) = self
                .cases
                .get(&id)
                .map_err(StoreError::db("failed to read case"))?
            {
                out.push(decode("cases", &v)?);
            }
        }
        Ok(out)
    }

    /// Every outbox entry with its key and stored bytes, oldest first.
    pub fn outbox(&self) -> Result<Vec<(u64, OutboxEntry, Vec<u8>)>, StoreError> {
        self.outbox
            .iter()
            .map(|kv| {
                let (k, v) = kv.map_err(StoreError::db("failed to scan outbox"))?;
                let key = k.as_ref().try_into().map(u64::from_be_bytes).map_err(|_| {
                    StoreError::Corrupt {
                        tree: "outbox",
                        reason: "bad key".into(),
                    }
                })?;
                Ok((key, decode("outbox", &v)?, v.to_vec()))
            })
            .collect()
    }

    /// Keeps a checkpoint this node signed (seq → encoded `SignedCheckpoint`).
    /// Not a ledger entry: checkpoints are about the ledger, not in it.
    pub fn put_checkpoint(&self, seq: u64, signed: &[u8]) -> Result<(), StoreError> {
        self.checkpoints
            .insert(seq.to_be_bytes(), signed)
            .map_err(StoreError::db("failed to store checkpoint"))?;
        Ok(())
    }

    /// The latest checkpoint this node signed, with its seq.
    pub fn latest_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        Ok(self
            .checkpoints
            .last()
            .map_err(StoreError::db("failed to read checkpoint"))?
            .and_then(|(k, v)| Some((u64::from_be_bytes(k.as_ref().try_into().ok()?), v.to_vec()))))
    }

    /// Keeps a checkpoint a partner sent (durable with the next flush).
    pub fn put_partner_checkpoint(
        &self,
        county: &str,
        seq: u64,
        signed: &[u8],
    ) -> Result<(), StoreError> {
        self.partner_checkpoints
            .insert(partner_checkpoint_key(county, seq), signed)
            .map_err(StoreError::db("failed to store partner checkpoint"))?;
        Ok(())
    }

    /// The latest checkpoint held of each partner: (county, seq, signed bytes).
    pub fn partner_checkpoints(&self) -> Result<Vec<(String, u64, Vec<u8>)>, StoreError> {
        let mut latest: std::collections::BTreeMap<String, (u64, Vec<u8>)> =
            std::collections::BTreeMap::new();
        for kv in self.partner_checkpoints.iter() {
            let (k, v) = kv.map_err(StoreError::db("failed to scan partner checkpoints"))?;
            let Some(split) = k.iter().position(|b| *b == b'/') else {
                continue;
            };
            let county = String::from_utf8_lossy(&k[..split]).into_owned();
            let Ok(seq_bytes) = <[u8; 8]>::try_from(&k[split + 1..]) else {
                continue;
            };
            // Keys sort by county then seq, so the last one seen is the latest.
            latest.insert(county, (u64::from_be_bytes(seq_bytes), v.to_vec()));
        }
        Ok(latest.into_iter().map(|(c, (s, v))| (c, s, v)).collect())
    }

    /// The application id a waybill belongs to.
    pub fn waybill(&self, waybill: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .waybills
            .get(waybill.as_bytes())
            .map_err(StoreError::db("failed to read waybill"))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Appends a small material to the material log and says where it is
    /// (for its `MaterialRef`). Durable with the next commit, which syncs
    /// the log before it writes anything.
    pub fn append_material(&self, content: &[u8]) -> Result<LogSpan, StoreError> {
        self.materials.append(content)
    }

    /// A small material's content, read back checked against its digest
    /// (None: it is a file, or absent).
    pub fn small_material(&self, m: &MaterialRef) -> Result<Option<Vec<u8>>, StoreError> {
        match m.log {
            Some(span) => self.materials.read(span, &m.sha256).map(Some),
            None => self.legacy_small_material(&m.sha256),
        }
    }

    /// A small material an earlier version stored whole, by hex SHA-256.
    fn legacy_small_material(&self, sha256_hex: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self
            .inline_blobs
            .get(sha256_hex.as_bytes())
            .map_err(StoreError::db("failed to read material"))?
            .map(|v| v.to_vec()))
    }

    /// The oldest `limit` unparked outbox entries for `to` whose keys `skip`
    /// does not name, read through the per-destination index so the courier
    /// never decodes the whole outbox (nor the entries it has in flight).
    pub fn outbox_for(
        &self,
        to: &str,
        limit: usize,
        skip: impl Fn(u64) -> bool,
    ) -> Result<Vec<(u64, OutboxEntry, Vec<u8>)>, StoreError> {
        let mut prefix = to.as_bytes().to_vec();
        prefix.push(b'/');
        let mut out = Vec::new();
        for kv in self.outbox_index.scan_prefix(&prefix) {
            if out.len() >= limit {
                break;
            }
            let (k, _) = kv.map_err(StoreError::db("failed to scan outbox index"))?;
            let key = <[u8; 8]>::try_from(&k[prefix.len()..])
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    tree: "outbox_index",
                    reason: "bad key".into(),
                })?;
            if skip(key) {
                continue;
            }
            if let Some(v) = self
                .outbox
                .get(key.to_be_bytes())
                .map_err(StoreError::db("failed to read outbox"))?
            {
                out.push((key, decode("outbox", &v)?, v.to_vec()));
            }
        }
        Ok(out)
    }

    /// A received handoff, by (sender county, handoff id).
    pub fn received(
        &self,
        sender: &str,
        handoff_id: &str,
    ) -> Result<Option<ReceivedHandoff>, StoreError> {
        self.received
            .get(received_key(sender, handoff_id))
            .map_err(StoreError::db("failed to read received handoff"))?
            .map(|v| decode("received", &v))
            .transpose()
    }

    /// Ledger entries `from..=to` (clamped to the head).
    pub fn entries(&self, from: u64, to: u64) -> Result<Vec<StoredEntry>, StoreError> {
        let from = from.max(1);
        self.ledger
            .range(from.to_be_bytes()..=to.to_be_bytes())
            .map(|kv| {
                let (k, v) = kv.map_err(StoreError::db("failed to scan ledger"))?;
                self.stored(&k, v.to_vec())
            })
            .collect()
    }

    /// The ledger entries of one case, in order.
    pub fn case_entries(&self, application_id: &str) -> Result<Vec<StoredEntry>, StoreError> {
        let mut prefix = application_id.as_bytes().to_vec();
        prefix.push(0);
        self.case_index
            .scan_prefix(&prefix)
            .map(|kv| {
                let (k, _) = kv.map_err(StoreError::db("failed to scan case index"))?;
                let key = &k[prefix.len()..];
                let entry = self
                    .ledger
                    .get(key)
                    .map_err(StoreError::db("failed to read ledger"))?
                    .ok_or_else(|| StoreError::Corrupt {
                        tree: "case_index",
                        reason: "index names a missing entry".into(),
                    })?;
                self.stored(key, entry.to_vec())
            })
            .collect()
    }

    fn stored(&self, key: &[u8], entry: Vec<u8>) -> Result<StoredEntry, StoreError> {
        let seq = key
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Corrupt {
                tree: "ledger",
                reason: "bad key".into(),
            })?;
        let payload = self
            .payloads
            .get(key)
            .map_err(StoreError::db("failed to read payload"))?
            .map(|v| v.to_vec())
            .unwrap_or_default();
        Ok(StoredEntry {
            seq,
            entry,
            payload,
        })
    }

    /// Checks the whole chain against the stored head. Returns the head seq.
    pub fn verify(&self) -> Result<Result<u64, ChainBreak>, StoreError> {
        let mut prev = (0u64, [0u8; 32]);
        let mut batch = Vec::new();
        for kv in self.ledger.iter() {
            let (_, v) = kv.map_err(StoreError::db("failed to scan ledger"))?;
            batch.push(v);
            if batch.len() == 4096 {
                match verify_run(prev, batch.iter().map(|v| v.as_ref())) {
                    Ok(p) => prev = p,
                    Err(b) => return Ok(Err(b)),
                }
                batch.clear();
            }
        }
        match verify_run(prev, batch.iter().map(|v| v.as_ref())) {
            Ok(p) => prev = p,
            Err(b) => return Ok(Err(b)),
        }
        let head = self.head()?;
        if head != prev {
            return Ok(Err(ChainBreak {
                seq: head.0.min(prev.0 + 1),
                reason: format!(
                    "stored head is seq {}, the chain ends at seq {}",
                    head.0, prev.0
                ),
            }));
        }
        Ok(Ok(prev.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::records::ApplicantRecord;

    fn case(id: &str, side: Side, state: CaseState) -> CaseRecord {
        CaseRecord {
            application_id: id.into(),
            case_no: format!("610702-20261125-{}", &id[1..]).parse().unwrap(),
            side,
            item_code: "GT-0001".parse().unwrap(),
            receiving_county: "610702".parse().unwrap(),
            home_county: "610113".parse().unwrap(),
            delivery: "mail-applicant".parse().unwrap(),
            applicant: ApplicantRecord::Person {
                name: "n".into(),
                resident_id: "11010519491231002X".parse().unwrap(),
                phone: "13812345678".parse().unwrap(),
                address: "a".into(),
            },
            materials: Vec::new(),
            identity_check: None,
            state,
            created_at: String::new(),
            accepted_at: None,
            note: String::new(),
            handoffs: Vec::new(),
            review: Default::default(),
            mail: Vec::new(),
            closed_at: None,
        }
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
            assert_eq!(store.small_material(&ma).unwrap().unwrap(), a);
            let mut absent = ma.clone();
            absent.log = None;
            assert_eq!(
                store.small_material(&absent).unwrap(),
                None,
                "not in a legacy tree either"
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
        assert_eq!(
            store.small_material(&mb).unwrap().unwrap(),
            b,
            "after a reopen"
        );
        // Bytes changed on disk are caught on read, not handed out.
        drop(store);
        let mut bytes = std::fs::read(&log).unwrap();
        bytes[a.len() + 5] ^= 1;
        std::fs::write(&log, bytes).unwrap();
        let store = Store::open(dir.path()).unwrap();
        let err = store.small_material(&mb).unwrap_err();
        assert!(err.to_string().contains("reads back as"), "{err}");
        assert_eq!(store.small_material(&ma).unwrap().unwrap(), a);
        // A damaged span: past the end of the log, or absurdly long.
        let mut past = ma.clone();
        past.log = Some(LogSpan {
            offset: 1 << 40,
            len: 10,
        });
        let err = store.small_material(&past).unwrap_err();
        assert!(err.to_string().contains("materials.log"), "{err}");
        let mut huge = ma.clone();
        huge.log = Some(LogSpan {
            offset: 0,
            len: u64::MAX,
        });
        let err = store.small_material(&huge).unwrap_err();
        assert!(
            err.to_string().contains("more than a logged material"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn the_state_index_follows_every_change_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let mut batch = Batch::default();
            batch
                .put_case(case("a1", Side::Window, CaseState::Queued))
                .put_case(case("a2", Side::Window, CaseState::Queued))
                .put_case(case("a3", Side::Home, CaseState::HandedOff));
            store.commit(batch).await.unwrap();
            let mut batch = Batch::default();
            batch.put_case(case("a1", Side::Window, CaseState::HandedOff));
            store.commit(batch).await.unwrap();

            let queued = store
                .cases_in(Side::Window, &[CaseState::Queued], true, 10)
                .unwrap();
            assert_eq!(
                queued
                    .iter()
                    .map(|c| c.application_id.as_str())
                    .collect::<Vec<_>>(),
                ["a2"]
            );
            let handed = store
                .cases_in(Side::Window, &[CaseState::HandedOff], true, 10)
                .unwrap();
            assert_eq!(
                handed.len(),
                1,
                "the old state's key is gone, the new one is there"
            );
            let home = store
                .cases_in(Side::Home, &[CaseState::HandedOff], false, 10)
                .unwrap();
            assert_eq!(home[0].application_id, "a3");
            let recent = store
                .cases_in(Side::Window, &CaseState::ALL, true, 1)
                .unwrap();
            assert_eq!(recent[0].application_id, "a2", "newest first");
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store
                .cases_in(Side::Window, &[CaseState::Queued], false, 10)
                .unwrap()
                .len(),
            1
        );
    }
}
