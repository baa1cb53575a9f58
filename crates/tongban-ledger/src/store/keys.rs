//! How the store spells its keys: the tree names, the `meta` keys and the
//! composite keys of the indexes. Numeric parts are big-endian so keys
//! sort by them.
//!
//! Owns encodings only; which tree holds what is documented on
//! [`super::Store`] and in `docs/architecture.md`.

use tongban_core::CaseState;

use crate::chain::EntryHash;
use crate::records::Side;

/// seq → encoded `LedgerEntry`, exactly as hashed.
pub(crate) const LEDGER: &str = "ledger";
/// seq → the entry's payload.
pub(crate) const PAYLOADS: &str = "payloads";
/// [`case_index_key`] → ().
pub(crate) const CASE_INDEX: &str = "case_index";
/// Application id → case record.
pub(crate) const CASES: &str = "cases";
/// Case number → application id.
pub(crate) const CASE_NOS: &str = "case_nos";
/// [`state_key`] → ().
pub(crate) const CASE_STATES: &str = "case_states";
/// Deadline key (see `deadlines`) → ().
pub(crate) const DEADLINES: &str = "case_deadlines";
/// Outbox key → outbox entry.
pub(crate) const OUTBOX: &str = "outbox";
/// [`outbox_index_key`] → ().
pub(crate) const OUTBOX_INDEX: &str = "outbox_index";
/// [`received_key`] → received handoff.
pub(crate) const RECEIVED: &str = "received";
/// [`request_key`] → request record.
pub(crate) const REQUESTS: &str = "requests";
/// Waybill number → application id.
pub(crate) const WAYBILLS: &str = "waybills";
/// seq → this node's signed checkpoint.
pub(crate) const CHECKPOINTS: &str = "checkpoints";
/// [`partner_checkpoint_key`] → a partner's signed checkpoint.
pub(crate) const PARTNER_CHECKPOINTS: &str = "partner_checkpoints";
/// The head, counters.
pub(crate) const META: &str = "meta";

/// `meta` key of the ledger head ([`encode_head`]).
pub(crate) const HEAD: &[u8] = b"head";
/// `meta` key of the last outbox key given out.
pub(crate) const OUTBOX_SEQ: &[u8] = b"outbox_seq";

/// Key of the case index: application id, 0, seq.
pub(crate) fn case_index_key(application_id: &str, seq: u64) -> Vec<u8> {
    let mut k = case_index_prefix(application_id);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The prefix of one case's keys in the case index.
pub(crate) fn case_index_prefix(application_id: &str) -> Vec<u8> {
    let mut k = application_id.as_bytes().to_vec();
    k.push(0);
    k
}

/// Key of the case state index: side, state, 0, application id.
pub(crate) fn state_key(side: Side, state: CaseState, id: &str) -> Vec<u8> {
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
pub(crate) fn outbox_index_key(to: &str, key: u64) -> Vec<u8> {
    let mut k = to.as_bytes().to_vec();
    k.push(b'/');
    k.extend_from_slice(&key.to_be_bytes());
    k
}

/// Key of a partner's checkpoint: county, '/', seq.
pub(crate) fn partner_checkpoint_key(county: &str, seq: u64) -> Vec<u8> {
    let mut key = county.as_bytes().to_vec();
    key.push(b'/');
    key.extend_from_slice(&seq.to_be_bytes());
    key
}

/// Key of a received handoff: sender county, '/', handoff id.
pub(crate) fn received_key(sender: &str, handoff_id: &str) -> Vec<u8> {
    format!("{sender}/{handoff_id}").into_bytes()
}

/// Key of a remembered client request: caller's SPIFFE ID, 0, request id.
pub(crate) fn request_key(caller: &str, request_id: &str) -> Vec<u8> {
    let mut key = caller.as_bytes().to_vec();
    key.push(0);
    key.extend_from_slice(request_id.as_bytes());
    key
}

/// The ledger head record: seq, then hash (40 bytes).
pub(crate) fn decode_head(bytes: &[u8]) -> Option<(u64, EntryHash)> {
    let seq = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
    let hash = bytes.get(8..40)?.try_into().ok()?;
    Some((seq, hash))
}

/// Encodes the ledger head record (see [`decode_head`]).
pub(crate) fn encode_head(seq: u64, hash: &EntryHash) -> Vec<u8> {
    let mut v = seq.to_be_bytes().to_vec();
    v.extend_from_slice(hash);
    v
}
