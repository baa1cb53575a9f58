//! Storage for a tongban node: the append-only, hash-chained ledger, case
//! records, the durable outbox, received handoffs with the receipts given for
//! them, the material log of small materials and content-addressed files of
//! larger ones.
//!
//! This is the only crate that names sled. Every state change goes through
//! [`Store::commit`] (or [`Store::commit_with`], whose batch may fail to
//! build), which syncs the material log, writes the records, the ledger
//! entries and the outbox changes in one sled transaction and flushes
//! before it returns, so a caller that acknowledges after `commit` never
//! acknowledges anything that is not on disk.
//!
//! Materials come in through a [`BlobWriter`]; the files an upload put in
//! place are [`StagedBlobs`] until the batch naming them is committed
//! ([`Batch::keep_blobs`]), and go if it is not. They go out through
//! [`Store::open_material`], wherever they are stored; a copy that is
//! missing or does not match its record is [`StoreError::Damaged`].
//!
//! With the `testing` feature, `testing::Tamper` lets tests change a
//! stopped node's ledger on disk as a dishonest operator would.

#![warn(missing_docs)]

mod blobs;
pub mod chain;
pub mod entries;
mod error;
mod material_log;
mod modes;
pub mod records;
mod store;
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use blobs::{BlobStore, BlobWriter, FinishedBlob, INLINE_MAX, PendingBlob, StagedBlobs};
pub use chain::{ENTRY_DOMAIN, EntryHash, entry_hash};
pub use entries::{
    DueChange, DueClock, EntryBody, MaterialFact, Payload, PayloadError, Received, ReportedRefusal,
    Sent,
};
pub use error::{StoreError, UploadError};
pub use records::{
    ApplicantRecord, CaseRecord, ClockRecord, ClockRun, CommitmentRecord, ConsultationRecord,
    CorrectionRecord, Count, HandoffRecord, IdentityCheckRecord, LogSpan, MailEventRecord,
    MailLegRecord, MaterialRef, OutboxEntry, ReceivedHandoff, RequestRecord, ReviewRecord, Side,
};
pub use store::{
    Batch, Committed, DeadlineKind, Deadlines, MaterialReader, NewEntry, REPLAY_BOUND, Rehashed,
    Replaced, Store, StoredEntry, WriteCounts, write_counts,
};
