//! The hash chain over ledger entries.
//!
//! An entry is stored as the bytes of an encoded
//! `tongban.common.v1.LedgerEntry`; its hash is
//! `SHA-256("tongban-ledger-v1" || 0x00 || bytes)`, and the next entry's
//! `prev_hash` repeats it. Hashing the stored bytes (not a re-encoding) lets
//! any implementation verify the chain. The verification here is pure so the
//! CLI can check entries fetched from a node or read from a bundle.

use prost::Message;
use sha2::{Digest, Sha256};
use tongban_proto::common::v1::LedgerEntry;

/// Domain separator of entry hashes.
pub const ENTRY_DOMAIN: &str = "tongban-ledger-v1";

/// A 32-byte SHA-256.
pub type EntryHash = [u8; 32];

/// The hash of an encoded entry.
pub fn entry_hash(entry_bytes: &[u8]) -> EntryHash {
    let mut h = Sha256::new();
    h.update(ENTRY_DOMAIN.as_bytes());
    h.update([0u8]);
    h.update(entry_bytes);
    h.finalize().into()
}

/// Where a chain check stopped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    /// The first sequence number that does not verify.
    pub seq: u64,
    /// Why.
    pub reason: String,
}

/// Checks a contiguous run of encoded entries: each decodes, has the next
/// sequence number, and names the previous entry's hash. `prev` is the seq
/// and hash of the entry before the first one (`(0, [0; 32])` from genesis).
/// Returns the seq and hash of the last entry.
pub fn verify_run<'a>(
    prev: (u64, EntryHash),
    entries: impl IntoIterator<Item = &'a [u8]>,
) -> Result<(u64, EntryHash), ChainBreak> {
    let (mut seq, mut hash) = prev;
    for bytes in entries {
        let expected = seq + 1;
        let entry = LedgerEntry::decode(bytes).map_err(|e| ChainBreak {
            seq: expected,
            reason: format!("entry does not decode: {e}"),
        })?;
        if entry.seq != expected {
            return Err(ChainBreak {
                seq: expected,
                reason: format!("sequence number is {}, expected {expected}", entry.seq),
            });
        }
        if entry.prev_hash.as_slice() != hash {
            return Err(ChainBreak {
                seq: expected,
                reason: "prev_hash does not match the hash of the entry before it".into(),
            });
        }
        seq = expected;
        hash = entry_hash(bytes);
    }
    Ok((seq, hash))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, prev: EntryHash) -> Vec<u8> {
        LedgerEntry {
            version: 1,
            seq,
            prev_hash: prev.to_vec(),
            kind: "test".into(),
            ..Default::default()
        }
        .encode_to_vec()
    }

    #[test]
    fn verifies_a_chain_and_names_the_first_bad_entry() {
        let e1 = entry(1, [0; 32]);
        let e2 = entry(2, entry_hash(&e1));
        let e3 = entry(3, entry_hash(&e2));
        let good = [e1.as_slice(), e2.as_slice(), e3.as_slice()];
        assert_eq!(
            verify_run((0, [0; 32]), good).unwrap(),
            (3, entry_hash(&e3))
        );

        let mut altered = e2.clone();
        *altered.last_mut().unwrap() ^= 1;
        let err = verify_run(
            (0, [0; 32]),
            [e1.as_slice(), altered.as_slice(), e3.as_slice()],
        )
        .unwrap_err();
        // The altered entry itself still decodes; the break shows at the next link.
        assert!(err.seq == 2 || err.seq == 3, "{err:?}");

        let err = verify_run((0, [0; 32]), [e1.as_slice(), e3.as_slice()]).unwrap_err();
        assert_eq!(err.seq, 2);
    }
}
