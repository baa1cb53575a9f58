//! Keeps sled's process-wide lock between transactions and flushes
//! uncontended: a commit waits here, yielding its thread, instead of in
//! sled, where its wait stalled every reader of the process.
//!
//! sled 0.34 guards transactions against flushes with one lock for the
//! whole process (`concurrency_control`): a flush holds it shared through
//! its write and disk sync, a transaction needs it exclusively, and the lock
//! is fair, so while a transaction waits for it every read of every tree
//! (a `get`, an iterator) waits behind that transaction. A commit that
//! started while a flush was syncing thus blocked one of the runtime's
//! threads, and each reader on the other, until the sync ended. [`GATE`]
//! is the same rule taken one step earlier: a flush holds it shared while it
//! runs, a transaction exclusively while it is applied, so a transaction
//! reaches sled's lock only when no flush of ours holds it, and readers
//! never queue behind a waiting writer. Process-wide because sled's lock
//! is (two stores in one process, as in the benchmark and the tests,
//! share it).
//!
//! Owns that rule only; the flush thread is [`super::flusher`]'s, the
//! transaction [`super::commit`]'s.

/// Shared by a flush while it runs, exclusive for a transaction.
pub(super) static GATE: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());
