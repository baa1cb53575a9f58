//! What a commit writes: [`Batch`] collects records, ledger entries and
//! outbox changes for one atomic write; [`NewEntry`] is a ledger entry to
//! append.
//!
//! A batch only collects: encoding and writing are [`super::commit`]'s.

use std::sync::Arc;

use tongban_core::CaseState;

use super::StoredEntry;
use super::deadlines::Deadlines;
use super::keys::{outbox_key, partner_checkpoint_key, received_key, request_key, state_key};
use crate::records::{CaseRecord, OutboxEntry, ReceivedHandoff};
use crate::{StagedBlobs, StoreError};

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
    /// A signer certificate (DER) the payload carries in hex, if any: the
    /// store keeps one copy of it for every payload that carries it, and
    /// gives the payload back whole (empty: none).
    pub signer_certificate: Vec<u8>,
}

/// Builds the encoded reply of the request a batch carries out from the
/// batch's entries as they will be stored (seq, time and chain hash are
/// known only once the write starts).
type ReplyFn = Box<dyn FnOnce(&[StoredEntry]) -> Result<Vec<u8>, StoreError> + Send>;

/// The reply a batch builds (see [`Batch::reply`]).
#[derive(Default)]
pub(super) struct Reply(pub(super) Option<ReplyFn>);

impl std::fmt::Debug for Reply {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Reply(..)"
        } else {
            "None"
        })
    }
}

/// What the indexes hold of one case record: its case number, its (side,
/// state) key and its deadline keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Indexed {
    pub(super) case_no: String,
    pub(super) state: Vec<u8>,
    pub(super) deadlines: Vec<Vec<u8>>,
}

impl Indexed {
    pub(super) fn of(c: &CaseRecord) -> Self {
        Self {
            case_no: c.case_no.to_string(),
            state: state_key(c.side, c.state, &c.application_id),
            deadlines: Deadlines::of(c).keys(c.side, &c.application_id),
        }
    }
}

/// The record a [`Batch::put_case_replacing`] replaces, as its caller read
/// it (None: there was none), kept as what the indexes hold of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced(pub(super) Option<Indexed>);

impl Replaced {
    /// The stored record `old` (None: the case is new).
    pub fn of(old: Option<&CaseRecord>) -> Self {
        Self(old.map(Indexed::of))
    }
}

/// One atomic write: records, ledger entries and outbox changes.
#[derive(Debug, Default)]
pub struct Batch {
    /// Each record with the one it replaces if its caller read it (None:
    /// the commit reads it).
    pub(super) cases: Vec<(CaseRecord, Option<Replaced>)>,
    pub(super) entries: Vec<NewEntry>,
    pub(super) enqueue: Vec<OutboxEntry>,
    pub(super) outbox_put: Vec<(u64, OutboxEntry)>,
    /// Outbox key and the bytes the entry must still hold.
    pub(super) outbox_settle: Vec<(Vec<u8>, Arc<[u8]>)>,
    pub(super) received: Vec<(Vec<u8>, ReceivedHandoff)>,
    pub(super) waybills: Vec<(String, String)>,
    pub(super) partner_checkpoints: Vec<(Vec<u8>, Vec<u8>)>,
    pub(super) blobs: StagedBlobs,
    pub(super) reply: Reply,
    /// Request key and content digest of the request remembered.
    pub(super) request: Option<(Vec<u8>, String)>,
}

impl Batch {
    /// Writes (creates or replaces) a case record; the commit reads the
    /// record it replaces to keep the indexes in step.
    pub fn put_case(&mut self, case: CaseRecord) -> &mut Self {
        self.cases.push((case, None));
        self
    }

    /// Writes a case record over `replaced`, the stored record as the caller
    /// read it: the commit keeps the indexes in step from it instead of
    /// reading and decoding the record again. Only for a caller that read it
    /// while holding the case's lock (every writer of a case holds it from
    /// its read to its commit, `locks.rs` in the node) or inside
    /// [`crate::Store::commit_with`]'s build: then nothing can have replaced
    /// it since. Debug builds read it anyway and refuse the commit if it
    /// differs, so a caller breaking that rule fails its tests.
    pub fn put_case_replacing(&mut self, case: CaseRecord, replaced: Replaced) -> &mut Self {
        self.cases.push((case, Some(replaced)));
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

    /// Replaces the outbox entry at `key` (e.g. to park it, or to take a
    /// parked one up again): its destination stays the same.
    pub fn update_outbox(&mut self, key: u64, entry: OutboxEntry) -> &mut Self {
        self.outbox_put.push((key, entry));
        self
    }

    /// Removes the outbox entry for `to` at `key` if it still holds
    /// `expected` bytes (those it was read with: shared, not copied).
    pub fn settle_outbox(&mut self, to: &str, key: u64, expected: Arc<[u8]>) -> &mut Self {
        self.outbox_settle.push((outbox_key(to, key), expected));
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

    /// Keeps a checkpoint a partner sent (see [`crate::Store::put_partner_checkpoint`]).
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

    /// Keeps the blob files an upload staged once this batch is written
    /// (its records name them); if the commit fails they are removed with
    /// the batch.
    pub fn keep_blobs(&mut self, staged: StagedBlobs) -> &mut Self {
        self.blobs.absorb(staged);
        self
    }

    /// The ledger entries appended so far, in order.
    pub fn entries(&self) -> &[NewEntry] {
        &self.entries
    }

    /// Builds the reply to the request this batch carries out during the
    /// commit, from the batch's entries as they will be stored (in the order
    /// appended); [`crate::Committed::reply`] returns it. If it fails,
    /// nothing is written and its error comes back. A second call replaces
    /// the first.
    pub fn reply(
        &mut self,
        build: impl FnOnce(&[StoredEntry]) -> Result<Vec<u8>, StoreError> + Send + 'static,
    ) -> &mut Self {
        self.reply = Reply(Some(Box::new(build)));
        self
    }

    /// Remembers the client request this batch carries out under (caller's
    /// SPIFFE ID, request id), with the digest of its content and the reply
    /// [`Batch::reply`] builds: written in the same transaction as the
    /// change, so it is durable exactly when the change is (see
    /// [`crate::Store::request`]).
    pub fn remember(
        &mut self,
        caller: &str,
        request_id: &str,
        content_sha256: String,
    ) -> &mut Self {
        self.request = Some((request_key(caller, request_id), content_sha256));
        self
    }

    /// Whether the batch writes nothing (blobs it keeps are not writes).
    pub fn is_empty(&self) -> bool {
        self.cases.is_empty()
            && self.entries.is_empty()
            && self.enqueue.is_empty()
            && self.outbox_put.is_empty()
            && self.outbox_settle.is_empty()
            && self.received.is_empty()
            && self.waybills.is_empty()
            && self.partner_checkpoints.is_empty()
            && self.request.is_none()
    }
}
