//! Storage for a tongban node: the append-only, hash-chained ledger, case
//! records, the durable outbox, received handoffs with the receipts given for
//! them, the material log of small materials and content-addressed files of
//! larger ones.
//!
//! This is the only crate that names sled. Every state change goes through
//! [`Store::commit`], which syncs the material log, writes the records, the
//! ledger entries and the outbox changes in one sled transaction and flushes
//! before it returns, so a caller that acknowledges after `commit` never
//! acknowledges anything that is not on disk.

#![warn(missing_docs)]

mod blobs;
pub mod chain;
pub mod entries;
mod error;
mod material_log;
mod modes;
pub mod records;
mod store;

pub use blobs::{BlobStore, BlobWriter, FinishedBlob, INLINE_MAX, PendingBlob};
pub use chain::{ENTRY_DOMAIN, EntryHash, entry_hash};
pub use entries::{EntryBody, MaterialFact, Payload, PayloadError, Received, Sent};
pub use error::StoreError;
pub use records::{
    ApplicantRecord, CaseRecord, CorrectionRecord, HandoffRecord, IdentityCheckRecord, LogSpan,
    MailEventRecord, MailLegRecord, MaterialRef, OutboxEntry, ReceivedHandoff, ReviewRecord, Side,
};
pub use store::{Batch, Committed, NewEntry, Store, StoredEntry};
