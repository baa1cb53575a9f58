//! The sled database of a node: [`Store`], opened once per process, and
//! where each concern of it lives.
//!
//! Trees: `ledger` (seq → encoded `LedgerEntry` with its payload, see
//! [`keys::entry_value`]), `payloads` (seq → payload of an older entry),
//! `case_index` (application id, 0, seq → ()), `cases` (application id →
//! record), `certs` (signer certificates kept once, see [`certs`]),
//! `case_nos` (case number → application id), `case_states` (side,
//! state, 0, application id → ()), `case_deadlines` (side, kind, date,
//! application id → (); see [`deadlines`]), `outbox` (destination, '/',
//! key → entry waiting), `outbox_parked` (the same for parked entries), `received` (sender county, '/', handoff id
//! → record), `requests` (caller SPIFFE ID, 0, request id → request
//! record), `waybills`, `checkpoints`, `partner_checkpoints`, `meta`
//! (head, counters); small materials are in the material log (see
//! [`crate::material_log`]), larger ones in files ([`crate::blobs`]).
//!
//! This module opens the store and holds its head and counters. Writing is
//! [`commit`]'s alone; the key encodings are [`keys`]'; reads are by
//! concern: [`cases`], [`outbox`], [`checkpoints`], [`ledger`],
//! [`materials`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::chain::EntryHash;
use crate::material_log::MaterialLog;
use crate::{BlobStore, StoreError};

mod batch;
mod cases;
mod certs;
mod checkpoints;
mod commit;
mod counts;
mod deadlines;
mod flusher;
mod gate;
pub(crate) mod keys;
mod ledger;
mod materials;
mod outbox;
mod reserve;
mod rollover;

pub use batch::{Batch, NewEntry, Replaced};
#[cfg(any(test, feature = "testing"))]
pub(crate) use certs::paste_from as paste_cert;
pub use commit::Committed;
pub use counts::{WriteCounts, write_counts};
pub use deadlines::{DeadlineKind, Deadlines};
use flusher::Flusher;
pub use ledger::StoredEntry;
pub use materials::{MaterialReader, Rehashed};
use reserve::Reserve;
pub use rollover::REPLAY_BOUND;

/// A node's storage. Open one per process.
pub struct Store {
    /// `data_dir/ledger.sled`, opened again by [`Store::recover`].
    sled_dir: PathBuf,
    /// The open database; `None` while a reopen has failed (the disk still
    /// refuses it), when every read and write says so until one succeeds,
    /// and while a rollover opens it again ([`rollover`]), when reads wait.
    trees: Arc<std::sync::RwLock<Option<Arc<Trees>>>>,
    /// Whether a rollover is under way (reads finding no opening wait).
    rolling: Arc<rollover::Rolling>,
    /// The ledger head when the database was last opened: the next open
    /// replays what was appended since.
    opened_at: std::sync::atomic::AtomicU64,
    /// Entries after which the database is opened again ([`REPLAY_BOUND`]).
    replay_bound: std::sync::atomic::AtomicU64,
    /// How many times the database was opened again (the generations).
    openings: std::sync::atomic::AtomicU64,
    materials: Arc<MaterialLog>,
    blobs: BlobStore,
    write_lock: tokio::sync::Mutex<()>,
    /// The newest head known to be on disk (see [`Store::durable_head`]).
    durable: std::sync::Mutex<(u64, EntryHash)>,
    /// Whether writes are taken (see [`Store::writable`]).
    writable: tokio::sync::watch::Sender<bool>,
    /// What the failure that stopped writes was (for the refusals meanwhile).
    refused: std::sync::Mutex<std::io::ErrorKind>,
    /// Room given up to reopen the database after the disk filled up.
    reserve: Reserve,
    /// What this store's commits handed to sled.
    counts: counts::Counts,
}

/// One opening of the sled database: its trees and its flush thread,
/// replaced whole when the store recovers from a failed write. After a
/// failed flush sled keeps the batch applied in memory and refuses every
/// later write, so the only way back to what the disk holds is a new `Db`.
pub(super) struct Trees {
    /// Which opening this is (0 first, one more per [`Store::recover`]).
    generation: u64,
    ledger: sled::Tree,
    payloads: sled::Tree,
    case_index: sled::Tree,
    cases: sled::Tree,
    case_nos: sled::Tree,
    outbox: sled::Tree,
    received: sled::Tree,
    requests: sled::Tree,
    meta: sled::Tree,
    waybills: sled::Tree,
    outbox_parked: sled::Tree,
    case_states: sled::Tree,
    deadlines: sled::Tree,
    checkpoints: sled::Tree,
    partner_checkpoints: sled::Tree,
    certs: sled::Tree,
    /// Certificates known to be in `certs` in this opening.
    known: certs::Known,
    flusher: Flusher,
}

impl Trees {
    fn open(sled_dir: &Path, generation: u64, wait: Duration) -> Result<Self, StoreError> {
        let db = open_db(sled_dir, wait)?;
        let tree = |name: &'static str| {
            db.open_tree(name)
                .map_err(StoreError::db("failed to open tree"))
        };
        let trees = Self {
            generation,
            ledger: tree(keys::LEDGER)?,
            payloads: tree(keys::PAYLOADS)?,
            case_index: tree(keys::CASE_INDEX)?,
            cases: tree(keys::CASES)?,
            case_nos: tree(keys::CASE_NOS)?,
            outbox: tree(keys::OUTBOX)?,
            received: tree(keys::RECEIVED)?,
            requests: tree(keys::REQUESTS)?,
            meta: tree(keys::META)?,
            waybills: tree(keys::WAYBILLS)?,
            outbox_parked: tree(keys::OUTBOX_PARKED)?,
            case_states: tree(keys::CASE_STATES)?,
            deadlines: tree(keys::DEADLINES)?,
            checkpoints: tree(keys::CHECKPOINTS)?,
            partner_checkpoints: tree(keys::PARTNER_CHECKPOINTS)?,
            certs: tree(keys::CERTS)?,
            known: certs::Known::default(),
            flusher: Flusher::start(db.clone())?,
        };
        trees.ensure_outbox_by_destination(&db)?;
        Ok(trees)
    }

    /// Seq and hash of the ledger head of this opening.
    fn head(&self) -> Result<(u64, EntryHash), StoreError> {
        Ok(self
            .meta
            .get(keys::HEAD)
            .map_err(StoreError::db("failed to read head"))?
            .and_then(|v| keys::decode_head(&v))
            .unwrap_or((0, [0; 32])))
    }

    /// The material log's end the head records, if it records one (see
    /// `material_log`).
    fn material_log_end(&self) -> Result<Option<u64>, StoreError> {
        Ok(self
            .meta
            .get(keys::HEAD)
            .map_err(StoreError::db("failed to read head"))?
            .and_then(|v| keys::decode_head_log_end(&v)))
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").finish_non_exhaustive()
    }
}

/// How long a first open waits for a lock held by a closing database.
pub(crate) const OPEN_WAIT: Duration = Duration::from_secs(1);

/// How long a reopen after a failed write waits for the failed database's
/// last users (a commit finding out its flush failed) to let it go.
const REOPEN_WAIT: Duration = Duration::from_secs(5);

/// Opens the sled database. sled releases its lock file only when the
/// last of its I/O threads lets go of a closed database, a moment after the
/// store is dropped: a reopen in the same process (a node restarted in
/// place, or [`Store::recover`]) waits up to `wait` for that instead of
/// failing. Another process holding the database still gets the error,
/// after that wait.
pub(crate) fn open_db(path: &Path, wait: Duration) -> Result<sled::Db, StoreError> {
    let deadline = std::time::Instant::now() + wait;
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

impl Store {
    /// Opens (creating) the store in `data_dir`: `data_dir/ledger.sled` and `data_dir/blobs`.
    /// The data dir and everything in it is then private to this user
    /// (see `modes`).
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let sled_dir = data_dir.join("ledger.sled");
        crate::modes::create_dir(&sled_dir)?;
        let trees = Trees::open(&sled_dir, 0, OPEN_WAIT)?;
        trees.ensure_deadline_index()?;
        // Whatever the database holds when it opens is on disk.
        let head = trees.head()?;
        let log_end = trees.material_log_end()?;
        let store = Self {
            trees: Arc::new(std::sync::RwLock::new(Some(Arc::new(trees)))),
            rolling: Arc::default(),
            opened_at: std::sync::atomic::AtomicU64::new(head.0),
            replay_bound: std::sync::atomic::AtomicU64::new(REPLAY_BOUND),
            sled_dir: sled_dir.clone(),
            openings: std::sync::atomic::AtomicU64::new(0),
            materials: Arc::new(MaterialLog::open(&data_dir.join("materials.log"), log_end)?),
            blobs: BlobStore::open(&data_dir.join("blobs"))?,
            write_lock: tokio::sync::Mutex::new(()),
            durable: std::sync::Mutex::new(head),
            writable: tokio::sync::watch::Sender::new(true),
            refused: std::sync::Mutex::new(std::io::ErrorKind::Other),
            reserve: Reserve::new(data_dir.join("space.reserve")),
            counts: counts::Counts::default(),
        };
        // Without its reserve the store starts refusing writes; the node's
        // probe puts it in place once there is room.
        if let Err(e) = store.reserve.ensure() {
            store.set_writable(false, Some(&e));
        }
        // After sled has created its files, with the umask's modes.
        crate::modes::secure(data_dir, &sled_dir)?;
        Ok(store)
    }

    /// The current opening of the database, or why there is none.
    pub(super) fn trees(&self) -> Result<Arc<Trees>, StoreError> {
        let current = || self.trees.read().unwrap_or_else(|p| p.into_inner()).clone();
        let mut opening = current();
        // A rollover opens it again in well under this.
        if opening.is_none() && self.rolling.wait(REOPEN_WAIT) {
            opening = current();
        }
        opening.ok_or_else(|| StoreError::Db {
            action: "failed to read ledger",
            cause: sled::Error::Io(std::io::Error::other(
                "the database is closed after a failed write and could not be opened again yet",
            )),
        })
    }

    /// What this store's commits have handed to sled since it opened.
    pub fn write_counts(&self) -> WriteCounts {
        self.counts.read()
    }

    /// The material blobs.
    pub fn blobs(&self) -> &BlobStore {
        &self.blobs
    }

    /// Seq and hash of the ledger head (`(0, zeros)` when empty).
    pub fn head(&self) -> Result<(u64, EntryHash), StoreError> {
        self.trees()?.head()
    }

    /// Allocates the next number in a named counter (e.g. case numbers of a
    /// day). Durable with the next commit's flush; a number taken by a
    /// request that then fails is skipped, never reused while the node runs.
    pub fn next_counter(&self, name: &str) -> Result<u64, StoreError> {
        let key = format!("counter/{name}");
        let next = self
            .trees()?
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

    /// A node setting remembered across starts (e.g. which holiday calendar
    /// the running dates were last counted with), or None.
    pub fn setting(&self, name: &str) -> Result<Option<String>, StoreError> {
        let key = format!("setting/{name}");
        let value = self
            .trees()?
            .meta
            .get(key.as_bytes())
            .map_err(StoreError::db("failed to read a setting"))?;
        Ok(value.map(|v| String::from_utf8_lossy(&v).into_owned()))
    }

    /// Remembers a node setting. Durable with the next flush (at the latest
    /// when the store closes): only for what can be worked out again if lost.
    pub fn put_setting(&self, name: &str, value: &str) -> Result<(), StoreError> {
        let key = format!("setting/{name}");
        self.trees()?
            .meta
            .insert(key.as_bytes(), value.as_bytes())
            .map_err(StoreError::db("failed to write a setting"))?;
        Ok(())
    }
}
