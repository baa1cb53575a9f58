//! Bounds what sled replays when the database next opens, by opening it
//! again while the node runs.
//!
//! sled 0.34 writes its snapshot (the page table, from which the next open
//! starts) only when it opens: `Config::snapshot_after_ops` is a no-op in
//! this version and nothing public writes one later. An open replays, and
//! checks the checksum of, every log record written since the last one,
//! so the first start after a long run (or a crash after months) replayed
//! the whole run: about a second per million ledger entries. Once
//! [`REPLAY_BOUND`] entries have been appended since the database was last
//! opened, the commit that crossed it closes the database and opens it
//! again, which writes a fresh snapshot; the next open, at a restart or
//! after a crash, then replays at most that many entries' worth of log.
//!
//! Nothing on disk changes but sled's own snapshot: every commit was
//! flushed before it returned, and the rollover runs under the write lock,
//! so no commit is half-way. Reads that arrive meanwhile wait for the new
//! opening ([`Rolling::wait`]) instead of failing. sled releases its files
//! only when the last handle to the old opening goes, so the rollover first
//! waits, briefly, to hold the only one; a read that keeps one longer (a
//! long scan, an audit's full verify) makes it give up and put the old
//! opening back, and the next commit tries again.
//!
//! Owns that rule only; opening the database is `super`'s, writing
//! `super::commit`'s.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use super::{REOPEN_WAIT, Store, Trees};

/// Ledger entries appended since the last open after which the database
/// is opened again. An open replays about a second per million entries on
/// the machine the benchmark runs on, so the replay part of a start stays
/// near a tenth of a second; the rollover itself costs about a restart of
/// the node's store (a few tenths of a second at a million entries, reads
/// waiting meanwhile), every hundred thousand entries.
pub const REPLAY_BOUND: u64 = 100_000;

/// How long the rollover waits to hold the only handle to the opening.
const EXCLUSIVE_WAIT: Duration = Duration::from_millis(100);

/// Whether a rollover is under way, and the wake-up of the reads waiting
/// for it.
#[derive(Debug, Default)]
pub(super) struct Rolling {
    on: Mutex<bool>,
    done: Condvar,
}

impl Rolling {
    fn set(&self, on: bool) {
        *self.on.lock().unwrap_or_else(|p| p.into_inner()) = on;
        if !on {
            self.done.notify_all();
        }
    }

    /// Waits while a rollover is under way (up to `max`); whether one was.
    /// Called by a read that found no opening.
    pub(super) fn wait(&self, max: Duration) -> bool {
        let on = self.on.lock().unwrap_or_else(|p| p.into_inner());
        if !*on {
            return false;
        }
        let _ = self
            .done
            .wait_timeout_while(on, max, |on| *on)
            .unwrap_or_else(|p| p.into_inner());
        true
    }
}

/// What a rollover came to.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Rolled {
    /// The database was opened again: its snapshot is new.
    Reopened,
    /// Another handle to the opening stayed: it was put back as it was.
    Busy,
    /// Closed, but opening it again failed: reads and writes fail until a
    /// commit or the probe reopens it, as after a failed write.
    Failed,
}

impl Store {
    /// Opens the database again if [`REPLAY_BOUND`] entries were appended
    /// since it was last opened. Called by a commit after its flush; takes
    /// the write lock, so no commit runs meanwhile.
    pub(super) async fn roll_over_if_due(&self, head_seq: u64) {
        let bound = self.replay_bound.load(Ordering::Relaxed);
        if head_seq.saturating_sub(self.opened_at.load(Ordering::Relaxed)) < bound {
            return;
        }
        let _guard = self.write_lock.lock().await;
        // Another commit may have rolled it over while this one waited.
        let Ok(trees) = self.trees() else { return };
        let head = match trees.head() {
            Ok((seq, _)) => seq,
            Err(_) => return,
        };
        drop(trees);
        if head.saturating_sub(self.opened_at.load(Ordering::Relaxed)) < bound {
            return;
        }
        let started = Instant::now();
        match self.roll_over().await {
            Rolled::Reopened => {
                self.opened_at.store(head, Ordering::Relaxed);
                tracing::info!(
                    head,
                    took_ms = started.elapsed().as_millis() as u64,
                    "ledger database opened again: the next open replays from here"
                );
            }
            Rolled::Busy => {
                // Try again a tenth of the bound later, not at every commit.
                self.opened_at.fetch_add(bound / 10 + 1, Ordering::Relaxed);
                tracing::debug!(head, "ledger rollover put off: a read holds the database");
            }
            Rolled::Failed => {
                tracing::error!(
                    head,
                    "ledger database could not be opened again after a rollover"
                );
            }
        }
    }

    /// Closes the opening and opens the database again, on a blocking
    /// thread (so that reads waiting on the runtime's threads cannot hold
    /// it up). The caller holds the write lock.
    async fn roll_over(&self) -> Rolled {
        let slot = self.trees.clone();
        let rolling = self.rolling.clone();
        // Under the write lock, as `reopen`'s: counted once it opened.
        let generation = self.openings.load(Ordering::Relaxed) + 1;
        let dir = self.sled_dir.clone();
        let rolled = tokio::task::spawn_blocking(move || {
            rolling.set(true);
            let taken = slot.write().unwrap_or_else(|p| p.into_inner()).take();
            let Some(mut old) = taken else {
                rolling.set(false);
                return Rolled::Busy;
            };
            let deadline = Instant::now() + EXCLUSIVE_WAIT;
            let old: Trees = loop {
                match Arc::try_unwrap(old) {
                    Ok(trees) => break trees,
                    Err(shared) if Instant::now() < deadline => {
                        old = shared;
                        std::thread::sleep(Duration::from_millis(1));
                    }
                    Err(shared) => {
                        *slot.write().unwrap_or_else(|p| p.into_inner()) = Some(shared);
                        rolling.set(false);
                        return Rolled::Busy;
                    }
                }
            };
            // Joins its flush thread; sled closes once its last handle goes.
            drop(old);
            let rolled = match Trees::open(&dir, generation, REOPEN_WAIT) {
                Ok(trees) => {
                    *slot.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(trees));
                    Rolled::Reopened
                }
                Err(e) => {
                    tracing::error!(error = %e, "cannot open the ledger again");
                    Rolled::Failed
                }
            };
            rolling.set(false);
            rolled
        })
        .await;
        match rolled {
            Ok(Rolled::Failed) | Err(_) => {
                self.set_writable(false, None);
                Rolled::Failed
            }
            Ok(rolled) => {
                if rolled == Rolled::Reopened {
                    self.openings.store(generation, Ordering::Relaxed);
                }
                rolled
            }
        }
    }

    /// Sets how many ledger entries may be appended before the database is
    /// opened again (default [`REPLAY_BOUND`]); for tests that reach it
    /// with a handful of commits.
    pub fn set_replay_bound(&self, entries: u64) {
        self.replay_bound.store(entries.max(1), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Batch, NewEntry};
    use super::*;

    async fn append(store: &Store, n: usize) {
        for i in 0..n {
            let mut batch = Batch::default();
            batch.append(NewEntry {
                application_id: format!("a{i}"),
                kind: "test.filler".into(),
                payload: format!("entry {i}").into_bytes(),
                ..Default::default()
            });
            store.commit(batch).await.unwrap();
        }
    }

    fn openings(store: &Store) -> u64 {
        store.openings.load(Ordering::Relaxed)
    }

    #[tokio::test]
    async fn the_database_is_opened_again_every_bound_entries_and_keeps_everything() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.set_replay_bound(10);
        append(&store, 25).await;
        assert_eq!(openings(&store), 2, "opened again at 10 and at 20 entries");
        assert_eq!(store.head().unwrap().0, 25);
        assert_eq!(store.durable_head(), store.head().unwrap());
        assert_eq!(store.entries(1, 25).unwrap().len(), 25);
        assert_eq!(store.verify().unwrap(), Ok(25));
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.head().unwrap().0, 25);
        assert_eq!(store.verify().unwrap(), Ok(25));
    }

    #[tokio::test]
    async fn a_read_holding_the_database_puts_the_rollover_off_without_failing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store.set_replay_bound(5);
        let held = store.trees().unwrap();
        append(&store, 5).await;
        assert_eq!(openings(&store), 0, "not opened again");
        // The old opening is back and serves reads and writes.
        assert!(Arc::ptr_eq(&held, &store.trees().unwrap()));
        assert_eq!(store.head().unwrap().0, 5);
        drop(held);
        // Put off by a tenth of the bound (one entry here), then done.
        append(&store, 2).await;
        assert_eq!(openings(&store), 1);
        assert_eq!(store.verify().unwrap(), Ok(7));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_during_a_rollover_wait_for_it_instead_of_failing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        store.set_replay_bound(3);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let reader = {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut reads = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    store.head().expect("a read during a rollover");
                    reads += 1;
                }
                reads
            })
        };
        append(&store, 30).await;
        stop.store(true, Ordering::Relaxed);
        assert!(reader.join().unwrap() > 0);
        assert!(
            openings(&store) >= 5,
            "rolled over {} times",
            openings(&store)
        );
        assert_eq!(store.verify().unwrap(), Ok(30));
    }
}
