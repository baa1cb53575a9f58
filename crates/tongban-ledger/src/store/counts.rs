//! What commits hand to sled, counted for the whole process: commits,
//! operations (reads, inserts and removes inside a commit's transaction) and
//! the bytes of the keys and values inserted. The benchmark divides them by
//! the handoffs it drained (issue 14: sled operations and bytes per
//! handoff), and a test of this crate pins what one commit costs.
//!
//! Process-wide, like sled's own lock (a node's `/metrics` exports them, so
//! the benchmark reads each node process's own; when it runs both nodes in
//! one process, their sum). Counted once a transaction succeeds, so a
//! retried transaction counts once.
//!
//! Owns the counting only; what is written is [`super::commit`]'s.

use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use sled::transaction::{TransactionalTree, UnabortableTransactionError};

/// Totals since the process started (see [`write_counts`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteCounts {
    /// Commits that wrote (transactions applied).
    pub commits: u64,
    /// Reads inside those transactions.
    pub reads: u64,
    /// Inserts and removes inside them.
    pub writes: u64,
    /// Bytes of the keys and values inserted (and keys removed).
    pub bytes: u64,
}

impl WriteCounts {
    /// The counts from `earlier` to `self`.
    pub fn since(&self, earlier: &WriteCounts) -> WriteCounts {
        WriteCounts {
            commits: self.commits - earlier.commits,
            reads: self.reads - earlier.reads,
            writes: self.writes - earlier.writes,
            bytes: self.bytes - earlier.bytes,
        }
    }
}

/// Running totals: the process's, and each store's own.
#[derive(Debug, Default)]
pub(super) struct Counts {
    commits: AtomicU64,
    reads: AtomicU64,
    writes: AtomicU64,
    bytes: AtomicU64,
}

impl Counts {
    const fn new() -> Self {
        Self {
            commits: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            writes: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
        }
    }

    pub(super) fn read(&self) -> WriteCounts {
        WriteCounts {
            commits: self.commits.load(Relaxed),
            reads: self.reads.load(Relaxed),
            writes: self.writes.load(Relaxed),
            bytes: self.bytes.load(Relaxed),
        }
    }

    fn add(&self, reads: u64, writes: u64, bytes: u64) {
        self.commits.fetch_add(1, Relaxed);
        self.reads.fetch_add(reads, Relaxed);
        self.writes.fetch_add(writes, Relaxed);
        self.bytes.fetch_add(bytes, Relaxed);
    }
}

static PROCESS: Counts = Counts::new();

/// What every commit of this process has handed to sled so far (one
/// store's alone: [`crate::Store::write_counts`]).
pub fn write_counts() -> WriteCounts {
    PROCESS.read()
}

/// One transaction's operations, counted as they run (a retry starts
/// again) and added to the totals when it succeeds.
#[derive(Default)]
pub(super) struct Tally {
    reads: Cell<u64>,
    writes: Cell<u64>,
    bytes: Cell<u64>,
}

type Op<T> = Result<T, UnabortableTransactionError>;

impl Tally {
    /// Starts counting a (possibly retried) transaction from zero.
    pub(super) fn restart(&self) {
        self.reads.set(0);
        self.writes.set(0);
        self.bytes.set(0);
    }

    pub(super) fn get(
        &self,
        tree: &TransactionalTree,
        key: impl AsRef<[u8]>,
    ) -> Op<Option<sled::IVec>> {
        self.reads.set(self.reads.get() + 1);
        tree.get(key)
    }

    pub(super) fn insert(
        &self,
        tree: &TransactionalTree,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
    ) -> Op<()> {
        let (key, value) = (key.as_ref(), value.as_ref());
        self.writes.set(self.writes.get() + 1);
        self.bytes
            .set(self.bytes.get() + (key.len() + value.len()) as u64);
        tree.insert(key, value).map(drop)
    }

    pub(super) fn remove(&self, tree: &TransactionalTree, key: impl AsRef<[u8]>) -> Op<()> {
        let key = key.as_ref();
        self.writes.set(self.writes.get() + 1);
        self.bytes.set(self.bytes.get() + key.len() as u64);
        tree.remove(key).map(drop)
    }

    /// Adds a transaction that succeeded to the process's totals and
    /// `store`'s.
    pub(super) fn count(&self, store: &Counts) {
        let (r, w, b) = (self.reads.get(), self.writes.get(), self.bytes.get());
        PROCESS.add(r, w, b);
        store.add(r, w, b);
    }
}
