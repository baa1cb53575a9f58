//! Checkpoints: the ones this node signed over its own ledger, and the ones
//! partners sent of theirs. Not ledger entries: they are about the ledger,
//! not in it.
//!
//! Signing and checking them is the node's.

use super::Store;
use super::keys::partner_checkpoint_key;
use crate::StoreError;

impl Store {
    /// Keeps a checkpoint this node signed (seq → encoded `SignedCheckpoint`).
    /// Not a ledger entry: checkpoints are about the ledger, not in it.
    pub fn put_checkpoint(&self, seq: u64, signed: &[u8]) -> Result<(), StoreError> {
        self.trees()?
            .checkpoints
            .insert(seq.to_be_bytes(), signed)
            .map_err(StoreError::db("failed to store checkpoint"))?;
        Ok(())
    }

    /// The latest checkpoint this node signed, with its seq.
    pub fn latest_checkpoint(&self) -> Result<Option<(u64, Vec<u8>)>, StoreError> {
        Ok(self
            .trees()?
            .checkpoints
            .last()
            .map_err(StoreError::db("failed to read checkpoint"))?
            .and_then(|(k, v)| Some((u64::from_be_bytes(k.as_ref().try_into().ok()?), v.to_vec()))))
    }

    /// Keeps a checkpoint a partner sent (durable with the next flush).
    pub fn put_partner_checkpoint(
        &self,
        county: &str,
        seq: u64,
        signed: &[u8],
    ) -> Result<(), StoreError> {
        self.trees()?
            .partner_checkpoints
            .insert(partner_checkpoint_key(county, seq), signed)
            .map_err(StoreError::db("failed to store partner checkpoint"))?;
        Ok(())
    }

    /// The latest checkpoint held of each partner: (county, seq, signed bytes).
    pub fn partner_checkpoints(&self) -> Result<Vec<(String, u64, Vec<u8>)>, StoreError> {
        let mut latest: std::collections::BTreeMap<String, (u64, Vec<u8>)> =
            std::collections::BTreeMap::new();
        for kv in self.trees()?.partner_checkpoints.iter() {
            let (k, v) = kv.map_err(StoreError::db("failed to scan partner checkpoints"))?;
            let Some(split) = k.iter().position(|b| *b == b'/') else {
                continue;
            };
            let county = String::from_utf8_lossy(&k[..split]).into_owned();
            let Ok(seq_bytes) = <[u8; 8]>::try_from(&k[split + 1..]) else {
                continue;
            };
            // Keys sort by county then seq, so the last one seen is the latest.
            latest.insert(county, (u64::from_be_bytes(seq_bytes), v.to_vec()));
        }
        Ok(latest.into_iter().map(|(c, (s, v))| (c, s, v)).collect())
    }
}
