//! Reading the ledger back: entries by seq, a case's entries through the
//! case index, and the check of the whole chain against the stored head.
//!
//! Appending is [`super::commit`]'s; the chain rule is [`crate::chain`]'s.

use prost::Message;
use tongban_proto::common::v1::LedgerEntry;

use super::Store;
use super::keys::{StoredPayload, case_index_prefix, split_entry_value};
use crate::StoreError;
use crate::chain::{ChainBreak, verify_run};

/// A ledger entry as stored.
#[derive(Debug, Clone)]
pub struct StoredEntry {
    /// Its sequence number.
    pub seq: u64,
    /// The encoded `LedgerEntry`, exactly as hashed.
    pub entry: Vec<u8>,
    /// The payload.
    pub payload: Vec<u8>,
}

impl StoredEntry {
    /// Decodes the entry.
    pub fn decode(&self) -> Result<LedgerEntry, StoreError> {
        LedgerEntry::decode(self.entry.as_slice()).map_err(|e| StoreError::Corrupt {
            tree: "ledger",
            reason: format!("entry {}: {e}", self.seq),
        })
    }
}

impl Store {
    /// Ledger entries `from..=to` (clamped to the head).
    pub fn entries(&self, from: u64, to: u64) -> Result<Vec<StoredEntry>, StoreError> {
        let from = from.max(1);
        self.trees()?
            .ledger
            .range(from.to_be_bytes()..=to.to_be_bytes())
            .map(|kv| {
                let (k, v) = kv.map_err(StoreError::db("failed to scan ledger"))?;
                self.stored(&k, &v)
            })
            .collect()
    }

    /// The ledger entries of one case, in order. An entry the case index
    /// names but the ledger no longer holds is [`StoreError::MissingEntry`]
    /// with its seq.
    pub fn case_entries(&self, application_id: &str) -> Result<Vec<StoredEntry>, StoreError> {
        let (entries, missing) = self.case_entries_held(application_id)?;
        match missing.first() {
            Some(&seq) => Err(StoreError::MissingEntry {
                seq,
                index: "case index",
            }),
            None => Ok(entries),
        }
    }

    /// The ledger entries of one case that the ledger holds, in order, and
    /// the seqs the case index names that it does not hold (entries removed
    /// from the data dir): for an audit, which shows what is there and names
    /// what is gone.
    pub fn case_entries_held(
        &self,
        application_id: &str,
    ) -> Result<(Vec<StoredEntry>, Vec<u64>), StoreError> {
        let prefix = case_index_prefix(application_id);
        let mut entries = Vec::new();
        let mut missing = Vec::new();
        let trees = self.trees()?;
        for kv in trees.case_index.scan_prefix(&prefix) {
            let (k, _) = kv.map_err(StoreError::db("failed to scan case index"))?;
            let key = &k[prefix.len()..];
            let seq = <[u8; 8]>::try_from(key)
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    tree: "case_index",
                    reason: "a key does not end in a sequence number".into(),
                })?;
            match trees
                .ledger
                .get(key)
                .map_err(StoreError::db("failed to read ledger"))?
            {
                Some(value) => entries.push(self.stored(key, &value)?),
                None => missing.push(seq),
            }
        }
        Ok((entries, missing))
    }

    /// The entry stored under `key` as `value`: entry and payload from the
    /// one value, or (written before they shared one) the payload from its
    /// own tree.
    fn stored(&self, key: &[u8], value: &[u8]) -> Result<StoredEntry, StoreError> {
        let seq = key
            .try_into()
            .map(u64::from_be_bytes)
            .map_err(|_| StoreError::Corrupt {
                tree: "ledger",
                reason: "bad key".into(),
            })?;
        let (entry, payload) = split(seq, value)?;
        let payload = match payload {
            StoredPayload::Here(p) => p.to_vec(),
            StoredPayload::Cut(cut) => {
                let trees = self.trees()?;
                super::certs::paste("ledger", cut, |fp| trees.known.find(&trees.certs, fp))?
            }
            StoredPayload::Elsewhere => self
                .trees()?
                .payloads
                .get(key)
                .map_err(StoreError::db("failed to read payload"))?
                .map(|v| v.to_vec())
                .unwrap_or_default(),
        };
        Ok(StoredEntry {
            seq,
            entry: entry.to_vec(),
            payload,
        })
    }

    /// Checks the whole chain against the stored head. Returns the head seq.
    pub fn verify(&self) -> Result<Result<u64, ChainBreak>, StoreError> {
        let mut prev = (0u64, [0u8; 32]);
        let mut batch = Vec::new();
        for kv in self.trees()?.ledger.iter() {
            let (k, v) = kv.map_err(StoreError::db("failed to scan ledger"))?;
            let seq = k.as_ref().try_into().map_or(0, u64::from_be_bytes);
            // Checked here so that the run below can borrow the entries.
            split(seq, &v)?;
            batch.push(v);
            if batch.len() == 4096 {
                match verify_run(prev, batch.iter().map(|v| entry_of(v))) {
                    Ok(p) => prev = p,
                    Err(b) => return Ok(Err(b)),
                }
                batch.clear();
            }
        }
        match verify_run(prev, batch.iter().map(|v| entry_of(v))) {
            Ok(p) => prev = p,
            Err(b) => return Ok(Err(b)),
        }
        let head = self.head()?;
        if head != prev {
            return Ok(Err(ChainBreak {
                seq: head.0.min(prev.0 + 1),
                reason: format!(
                    "stored head is seq {}, the chain ends at seq {}",
                    head.0, prev.0
                ),
            }));
        }
        Ok(Ok(prev.0))
    }
}

/// A ledger value split into entry and payload (see [`split_entry_value`]).
fn split(seq: u64, value: &[u8]) -> Result<(&[u8], StoredPayload<'_>), StoreError> {
    split_entry_value(value).ok_or_else(|| StoreError::Corrupt {
        tree: "ledger",
        reason: format!("entry {seq}: the stored value is cut short"),
    })
}

/// The encoded entry of a ledger value already checked by [`split`].
fn entry_of(value: &[u8]) -> &[u8] {
    split_entry_value(value).map_or(value, |(entry, _)| entry)
}
