//! For tests that play a dishonest operator: [`Tamper`] changes a stopped
//! node's ledger, case records and received-handoff records on disk the way
//! an audit must catch, and says where a material's bytes are
//! ([`Tamper::material`], [`material_log_path`], [`blob_path`]), so no crate
//! but this one names sled or spells its trees, keys and files.
//!
//! Only built with the `testing` feature, and never for a running node: it
//! writes around [`crate::Store`]'s one write path on purpose. The tree
//! names and key encodings are the store's own (its `keys` module).

use std::path::Path;

use prost::Message;
use tongban_proto::common::v1::LedgerEntry;

use crate::StoreError;
use crate::chain::entry_hash;
use crate::records::{CaseRecord, MaterialRef, ReceivedHandoff, decode, encode};
use crate::store::keys;

/// Direct access to the ledger of a stopped node.
pub struct Tamper {
    db: sled::Db,
    ledger: sled::Tree,
    payloads: sled::Tree,
    case_index: sled::Tree,
    meta: sled::Tree,
    cases: sled::Tree,
    received: sled::Tree,
    certs: sled::Tree,
}

impl std::fmt::Debug for Tamper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tamper").finish_non_exhaustive()
    }
}

impl Tamper {
    /// Opens the ledger in `data_dir` (the node must be stopped: one
    /// process at a time may hold it).
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        let db = crate::store::open_db(&data_dir.join("ledger.sled"), crate::store::OPEN_WAIT)?;
        let tree = |name: &'static str| {
            db.open_tree(name)
                .map_err(StoreError::db("failed to open tree"))
        };
        Ok(Self {
            ledger: tree(keys::LEDGER)?,
            payloads: tree(keys::PAYLOADS)?,
            case_index: tree(keys::CASE_INDEX)?,
            meta: tree(keys::META)?,
            cases: tree(keys::CASES)?,
            received: tree(keys::RECEIVED)?,
            certs: tree(keys::CERTS)?,
            db,
        })
    }

    /// The seq of the first entry that `matches`, if any.
    pub fn find(&self, matches: impl Fn(&LedgerEntry) -> bool) -> Result<Option<u64>, StoreError> {
        for kv in self.ledger.iter() {
            let (_, v) = kv.map_err(StoreError::db("failed to scan ledger"))?;
            let entry = decode_entry(split(&v)?.0)?;
            if matches(&entry) {
                return Ok(Some(entry.seq));
            }
        }
        Ok(None)
    }

    /// The entry at `seq`, decoded, and its payload.
    pub fn entry(&self, seq: u64) -> Result<(LedgerEntry, Vec<u8>), StoreError> {
        let (entry, payload) = self.read(seq)?;
        Ok((decode_entry(&entry)?, payload))
    }

    /// The encoded entry at `seq` and its payload, whichever way the value
    /// is kept (see `keys::entry_value`).
    fn read(&self, seq: u64) -> Result<(Vec<u8>, Vec<u8>), StoreError> {
        let key = seq.to_be_bytes();
        let value = self
            .ledger
            .get(key)
            .map_err(StoreError::db("failed to read ledger"))?
            .ok_or_else(|| missing(seq))?;
        let (entry, payload) = split(&value)?;
        let payload = match payload {
            keys::StoredPayload::Here(p) => p.to_vec(),
            keys::StoredPayload::Cut(cut) => self.paste(keys::LEDGER, cut)?,
            keys::StoredPayload::Elsewhere => self
                .payloads
                .get(key)
                .map_err(StoreError::db("failed to read payload"))?
                .map(|v| v.to_vec())
                .unwrap_or_default(),
        };
        Ok((entry.to_vec(), payload))
    }

    /// Writes entry and payload at `seq` as the store does (one value).
    fn write(&self, seq: u64, entry: &[u8], payload: &[u8]) -> Result<(), StoreError> {
        let key = seq.to_be_bytes();
        self.ledger
            .insert(key, keys::entry_value(entry, payload))
            .map_err(StoreError::db("failed to overwrite entry"))?;
        self.payloads
            .remove(key)
            .map_err(StoreError::db("failed to overwrite payload"))?;
        Ok(())
    }

    /// Overwrites the entry at `seq` and its payload with these, as given:
    /// no digest or hash is recomputed (see [`Tamper::rechain_after`]).
    pub fn overwrite(
        &self,
        seq: u64,
        entry: &LedgerEntry,
        payload: &[u8],
    ) -> Result<(), StoreError> {
        self.write(seq, &entry.encode_to_vec(), payload)?;
        self.flush()
    }

    /// Makes the chain consistent again after the entry at `seq`: every
    /// later entry's `prev_hash` and the stored head are recomputed from
    /// the entry at `seq` as it is now.
    pub fn rechain_after(&self, seq: u64) -> Result<(), StoreError> {
        let mut hash = entry_hash(&self.read(seq)?.0);
        let mut last = seq;
        let later: Vec<u64> = self
            .ledger
            .range((seq + 1).to_be_bytes()..)
            .keys()
            .map(|k| {
                let k = k.map_err(StoreError::db("failed to scan ledger"))?;
                Ok(k.as_ref().try_into().map_or(0, u64::from_be_bytes))
            })
            .collect::<Result<_, StoreError>>()?;
        for at in later {
            let (entry, payload) = self.read(at)?;
            let mut entry = decode_entry(&entry)?;
            entry.prev_hash = hash.to_vec();
            let bytes = entry.encode_to_vec();
            hash = entry_hash(&bytes);
            last = entry.seq;
            self.write(at, &bytes, &payload)?;
        }
        self.set_head(last, &hash)
    }

    /// Drops every entry after `keep`, with its payload and its case index
    /// key, and makes the entry at `keep` the head.
    pub fn truncate_after(&self, keep: u64) -> Result<(), StoreError> {
        let later: Vec<_> = self
            .ledger
            .range((keep + 1).to_be_bytes()..)
            .keys()
            .collect::<Result<_, _>>()
            .map_err(StoreError::db("failed to scan ledger"))?;
        for k in later {
            self.ledger
                .remove(&k)
                .map_err(StoreError::db("failed to remove entry"))?;
            self.payloads
                .remove(&k)
                .map_err(StoreError::db("failed to remove payload"))?;
        }
        for kv in self.case_index.iter() {
            let (k, _) = kv.map_err(StoreError::db("failed to scan case index"))?;
            let seq = k
                .len()
                .checked_sub(8)
                .and_then(|at| <[u8; 8]>::try_from(&k[at..]).ok())
                .map(u64::from_be_bytes);
            if seq.is_some_and(|seq| seq > keep) {
                self.case_index
                    .remove(&k)
                    .map_err(StoreError::db("failed to remove case index key"))?;
            }
        }
        let last = self.read(keep)?.0;
        self.set_head(keep, &entry_hash(&last))
    }

    /// Removes the entry at `seq` and its payload, leaving the case index,
    /// the later entries and the head as they are: an entry dropped from
    /// the middle of the ledger.
    pub fn remove_entry(&self, seq: u64) -> Result<(), StoreError> {
        let key = seq.to_be_bytes();
        self.ledger
            .remove(key)
            .map_err(StoreError::db("failed to remove entry"))?
            .ok_or_else(|| missing(seq))?;
        self.payloads
            .remove(key)
            .map_err(StoreError::db("failed to remove payload"))?;
        self.flush()
    }

    /// The material of `kind` that the case numbered `case_no` holds, as
    /// its record names it (with its span in the material log, if logged).
    pub fn material(&self, case_no: &str, kind: &str) -> Result<Option<MaterialRef>, StoreError> {
        for kv in self.cases.iter() {
            let (_, v) = kv.map_err(StoreError::db("failed to scan cases"))?;
            let case: CaseRecord = decode(keys::CASES, &v)?;
            if case.case_no.as_str() == case_no {
                return Ok(case.materials.into_iter().find(|m| m.kind == kind));
            }
        }
        Ok(None)
    }

    /// The record of the handoff `handoff_id` this node received, with the
    /// receipt it gave.
    pub fn received(&self, handoff_id: &str) -> Result<Option<ReceivedHandoff>, StoreError> {
        Ok(self.received_key(handoff_id)?.map(|(_, record)| record))
    }

    /// Overwrites the record of a received handoff (found by handoff id).
    pub fn overwrite_received(
        &self,
        handoff_id: &str,
        record: &ReceivedHandoff,
    ) -> Result<(), StoreError> {
        let (key, _) = self
            .received_key(handoff_id)?
            .ok_or_else(|| StoreError::Corrupt {
                tree: keys::RECEIVED,
                reason: format!("no received handoff {handoff_id}"),
            })?;
        self.received
            .insert(key, encode(record))
            .map_err(StoreError::db("failed to overwrite received handoff"))?;
        self.flush()
    }

    fn received_key(
        &self,
        handoff_id: &str,
    ) -> Result<Option<(sled::IVec, ReceivedHandoff)>, StoreError> {
        let suffix = format!("/{handoff_id}");
        for kv in self.received.iter() {
            let (k, v) = kv.map_err(StoreError::db("failed to scan received handoffs"))?;
            if k.ends_with(suffix.as_bytes()) {
                let record = match v.split_first() {
                    Some((&keys::RECEIVED_CUT, cut)) => self.paste(keys::RECEIVED, cut)?,
                    _ => v.to_vec(),
                };
                return Ok(Some((k, decode(keys::RECEIVED, &record)?)));
            }
        }
        Ok(None)
    }

    /// A value whose signer certificate the store cut out, whole again.
    fn paste(&self, tree: &'static str, cut: &[u8]) -> Result<Vec<u8>, StoreError> {
        crate::store::paste_cert(tree, cut, &self.certs)
    }

    fn set_head(&self, seq: u64, hash: &crate::EntryHash) -> Result<(), StoreError> {
        // The material log's end stays what the head said: only the
        // ledger's head is being tampered with.
        let log_end = self
            .meta
            .get(keys::HEAD)
            .map_err(StoreError::db("failed to read head"))?
            .and_then(|v| keys::decode_head_log_end(&v));
        let mut head = keys::encode_head(seq, hash, log_end.unwrap_or(0));
        if log_end.is_none() {
            head.truncate(40);
        }
        self.meta
            .insert(keys::HEAD, head)
            .map_err(StoreError::db("failed to write head"))?;
        self.flush()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db
            .flush()
            .map_err(StoreError::db("failed to flush ledger"))?;
        Ok(())
    }
}

fn decode_entry(bytes: &[u8]) -> Result<LedgerEntry, StoreError> {
    LedgerEntry::decode(bytes).map_err(|e| StoreError::Corrupt {
        tree: keys::LEDGER,
        reason: e.to_string(),
    })
}

fn split(value: &[u8]) -> Result<(&[u8], keys::StoredPayload<'_>), StoreError> {
    keys::split_entry_value(value).ok_or_else(|| StoreError::Corrupt {
        tree: keys::LEDGER,
        reason: "a stored entry is cut short".into(),
    })
}

fn missing(seq: u64) -> StoreError {
    StoreError::Corrupt {
        tree: keys::LEDGER,
        reason: format!("no entry at seq {seq}"),
    }
}

/// The material log of a node's data dir, where materials up to
/// [`crate::INLINE_MAX`] bytes are (at their [`MaterialRef::log`] span).
pub fn material_log_path(data_dir: &Path) -> std::path::PathBuf {
    data_dir.join("materials.log")
}

/// Where the material file with this digest lives in a node's data dir, for
/// tests that damage one.
pub fn blob_path(data_dir: &Path, sha256_hex: &str) -> std::path::PathBuf {
    crate::BlobStore::path_in(&data_dir.join("blobs"), sha256_hex)
}

/// A case record to store in tests: GT-0001 from 汉台区 (610702) to 雁塔区
/// (610113), a person applicant, case number `610702-20261125-<id without
/// its first character>`.
pub fn sample_case(
    id: &str,
    side: crate::records::Side,
    state: tongban_core::CaseState,
) -> crate::records::CaseRecord {
    use crate::records::{ApplicantRecord, CaseRecord};
    CaseRecord {
        application_id: id.into(),
        case_no: format!("610702-20261125-{}", &id[1..]).parse().unwrap(),
        side,
        item_code: "GT-0001".parse().unwrap(),
        receiving_county: "610702".parse().unwrap(),
        home_county: "610113".parse().unwrap(),
        delivery: "mail-applicant".parse().unwrap(),
        applicant: ApplicantRecord::Person {
            name: "n".into(),
            resident_id: "11010519491231002X".parse().unwrap(),
            phone: "13812345678".parse().unwrap(),
            address: "a".into(),
        },
        materials: Vec::new(),
        identity_check: None,
        state,
        created_at: String::new(),
        created_at_is_arrival: false,
        accepted_at: None,
        note: String::new(),
        handoffs: Vec::new(),
        review: Default::default(),
        mail: Vec::new(),
        closed_at: None,
        commitment: None,
        consultation: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Batch, NewEntry, Store};

    #[tokio::test]
    async fn an_edit_breaks_the_chain_a_rechain_mends_it_and_a_truncation_keeps_it_whole() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            for kind in ["a", "b", "c", "d"] {
                let mut batch = Batch::default();
                batch.append(NewEntry {
                    application_id: "x1".into(),
                    kind: kind.into(),
                    payload: kind.as_bytes().to_vec(),
                    ..Default::default()
                });
                store.commit(batch).await.unwrap();
            }
        }
        let tamper = Tamper::open(dir.path()).unwrap();
        let seq = tamper.find(|e| e.kind == "b").unwrap().unwrap();
        assert_eq!(seq, 2);
        let (mut entry, payload) = tamper.entry(seq).unwrap();
        assert_eq!(payload, b"b");
        entry.actor = "forger".into();
        tamper.overwrite(seq, &entry, b"B").unwrap();
        drop(tamper);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.verify().unwrap().unwrap_err().seq, 3);
        drop(store);

        let tamper = Tamper::open(dir.path()).unwrap();
        tamper.rechain_after(seq).unwrap();
        drop(tamper);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.verify().unwrap(), Ok(4));
        assert_eq!(store.entries(2, 2).unwrap()[0].payload, b"B");
        drop(store);

        let tamper = Tamper::open(dir.path()).unwrap();
        tamper.truncate_after(2).unwrap();
        drop(tamper);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.verify().unwrap(), Ok(2));
        assert_eq!(store.case_entries("x1").unwrap().len(), 2);
    }
}
