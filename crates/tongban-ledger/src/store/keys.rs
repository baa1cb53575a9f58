//! How the store spells its keys: the tree names, the `meta` keys and the
//! composite keys of the indexes (numeric parts big-endian so keys sort by
//! them); and the ledger's own values: the head record and a ledger entry
//! kept with its payload ([`entry_value`]).
//!
//! Owns encodings only; which tree holds what is documented on
//! [`super::Store`] and in `docs/architecture.md`.

use tongban_core::CaseState;

use crate::chain::EntryHash;
use crate::records::Side;

/// seq → the encoded `LedgerEntry`, exactly as hashed, with its payload
/// ([`entry_value`]); entries written before version 2 of this value are
/// the encoded entry alone, their payload in [`PAYLOADS`].
pub(crate) const LEDGER: &str = "ledger";
/// seq → the payload of an entry written before [`ENTRY_VALUE_V2`] (read
/// only: new entries keep their payload in [`LEDGER`]).
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
/// [`outbox_key`] → outbox entry waiting to be sent.
pub(crate) const OUTBOX: &str = "outbox";
/// [`outbox_key`] → outbox entry parked (refused, or attempts ran out):
/// apart from those waiting, so the courier never reads them.
pub(crate) const OUTBOX_PARKED: &str = "outbox_parked";
/// The per-destination index of a data dir from before [`OUTBOX`] was
/// keyed by destination: dropped when it opens (see `outbox`).
pub(crate) const OUTBOX_INDEX_BEFORE: &str = "outbox_index";
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
/// SHA-256 of a signer certificate → its DER, kept once for every value
/// it was cut out of (see `certs`).
pub(crate) const CERTS: &str = "certs";

/// First byte of a [`RECEIVED`] value whose signed receipt's certificate is
/// cut out (see `certs`): then the cut record. A record's own first byte is
/// its format version (1 or 2).
pub(crate) const RECEIVED_CUT: u8 = 0xc5;

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

/// Key of an outbox entry: destination county, '/', the entry's number
/// (from `meta/outbox_seq`), so one destination's entries are one range,
/// oldest first.
pub(crate) fn outbox_key(to: &str, seq: u64) -> Vec<u8> {
    let mut k = outbox_prefix(to);
    k.extend_from_slice(&seq.to_be_bytes());
    k
}

/// The prefix of one destination's outbox keys.
pub(crate) fn outbox_prefix(to: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(to.len() + 9);
    k.extend_from_slice(to.as_bytes());
    k.push(b'/');
    k
}

/// The entry number at the end of an [`outbox_key`].
pub(crate) fn outbox_seq(key: &[u8]) -> Option<u64> {
    let at = key.len().checked_sub(8)?;
    (at > 0 && key[at - 1] == b'/')
        .then(|| u64::from_be_bytes(key[at..].try_into().expect("8 bytes")))
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

/// The ledger head record: seq, then hash (40 bytes), then the material
/// log's durable end as of the commit that wrote it (8 bytes, big-endian;
/// see `material_log`). A head written before the log was padded ahead
/// has the first 40 alone.
pub(crate) fn decode_head(bytes: &[u8]) -> Option<(u64, EntryHash)> {
    let seq = u64::from_be_bytes(bytes.get(..8)?.try_into().ok()?);
    let hash = bytes.get(8..40)?.try_into().ok()?;
    Some((seq, hash))
}

/// The material log's end a head record holds, if it holds one (see
/// [`decode_head`]).
pub(crate) fn decode_head_log_end(bytes: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(bytes.get(40..48)?.try_into().ok()?))
}

/// Encodes the ledger head record (see [`decode_head`]).
pub(crate) fn encode_head(seq: u64, hash: &EntryHash, log_end: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(48);
    v.extend_from_slice(&seq.to_be_bytes());
    v.extend_from_slice(hash);
    v.extend_from_slice(&log_end.to_be_bytes());
    v
}

/// First two bytes of a [`LEDGER`] value holding entry and payload. No
/// encoded `LedgerEntry` starts with 0 (protobuf has no field 0), so an
/// older value, the bare entry, is told apart by its first byte.
pub(crate) const ENTRY_VALUE_V2: [u8; 2] = [0, 2];
/// The same, with the payload's signer certificate cut out (see `certs`).
pub(crate) const ENTRY_VALUE_CUT: [u8; 2] = [0, 3];

/// A [`LEDGER`] value: [`ENTRY_VALUE_V2`], the entry's length (u32,
/// big-endian), the encoded entry exactly as hashed, then the payload. One
/// value instead of one in each of two trees: one sled write per entry
/// and one read per entry read back.
pub(crate) fn entry_value(entry: &[u8], payload: &[u8]) -> Vec<u8> {
    let mut v = entry_head(ENTRY_VALUE_V2, entry, payload.len());
    v.extend_from_slice(payload);
    v
}

/// The marker, the entry's length and the entry, with room for a payload
/// of `payload` bytes after it.
pub(crate) fn entry_head(marker: [u8; 2], entry: &[u8], payload: usize) -> Vec<u8> {
    let len = u32::try_from(entry.len()).expect("a ledger entry is far below 4 GiB");
    let mut v = Vec::with_capacity(6 + entry.len() + payload + 40);
    v.extend_from_slice(&marker);
    v.extend_from_slice(&len.to_be_bytes());
    v.extend_from_slice(entry);
    v
}

/// Where a stored entry's payload is.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum StoredPayload<'a> {
    /// In the value, as it is.
    Here(&'a [u8]),
    /// In the value, its certificate cut out (see `certs::paste`).
    Cut(&'a [u8]),
    /// In [`PAYLOADS`] (an entry from before they shared a value).
    Elsewhere,
}

/// A [`LEDGER`] value read back: the encoded entry, and where its payload
/// is. `None` for a value of version 2 or later that is cut short.
pub(crate) fn split_entry_value(value: &[u8]) -> Option<(&[u8], StoredPayload<'_>)> {
    let (cut, rest) = match value.get(..2) {
        Some(m) if m == ENTRY_VALUE_V2 => (false, &value[2..]),
        Some(m) if m == ENTRY_VALUE_CUT => (true, &value[2..]),
        _ if value.first() == Some(&0) => return None,
        _ => return Some((value, StoredPayload::Elsewhere)),
    };
    let len = u32::from_be_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let body = &rest[4..];
    if body.len() < len {
        return None;
    }
    let (entry, payload) = body.split_at(len);
    Some((
        entry,
        if cut {
            StoredPayload::Cut(payload)
        } else {
            StoredPayload::Here(payload)
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_value_splits_into_entry_and_payload_and_an_old_value_is_the_entry() {
        let v = entry_value(b"\x08\x01entry", b"payload");
        assert_eq!(
            split_entry_value(&v),
            Some((&b"\x08\x01entry"[..], StoredPayload::Here(&b"payload"[..])))
        );
        assert_eq!(
            split_entry_value(&entry_value(b"e", b"")),
            Some((&b"e"[..], StoredPayload::Here(&b""[..])))
        );
        let mut cut = entry_head(ENTRY_VALUE_CUT, b"e", 1);
        cut.push(9);
        assert_eq!(
            split_entry_value(&cut),
            Some((&b"e"[..], StoredPayload::Cut(&[9][..])))
        );
        // A value from before version 2: the encoded entry (field 1 first).
        assert_eq!(
            split_entry_value(b"\x08\x01"),
            Some((&b"\x08\x01"[..], StoredPayload::Elsewhere))
        );
        assert_eq!(split_entry_value(&v[..8]), None, "cut short");
        assert_eq!(split_entry_value(&[0, 2, 0]), None);
        assert_eq!(split_entry_value(&[0, 9, 0, 0, 0, 0]), None, "unknown form");
    }
}
