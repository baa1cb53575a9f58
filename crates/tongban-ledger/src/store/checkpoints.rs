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
    /// One look-up per county (its keys' last), not a scan of every
    /// checkpoint ever received: a node keeps one per handoff stream, and
    /// every audit trace asks for these.
    pub fn partner_checkpoints(&self) -> Result<Vec<(String, u64, Vec<u8>)>, StoreError> {
        let tree = &self.trees()?.partner_checkpoints;
        let mut latest = Vec::new();
        let mut from: Vec<u8> = Vec::new();
        while let Some((k, _)) = tree
            .range(from.as_slice()..)
            .next()
            .transpose()
            .map_err(StoreError::db("failed to scan partner checkpoints"))?
        {
            let Some(split) = k.iter().position(|b| *b == b'/') else {
                // Not a county/seq key: step past it.
                from = k.to_vec();
                from.push(0);
                continue;
            };
            // Keys sort by county then big-endian seq: the county's last
            // well-formed key is its latest checkpoint.
            let county_keys = tree.scan_prefix(&k[..=split]).rev();
            for kv in county_keys {
                let (key, v) = kv.map_err(StoreError::db("failed to scan partner checkpoints"))?;
                if let Ok(seq) = <[u8; 8]>::try_from(&key[split + 1..]) {
                    let county = String::from_utf8_lossy(&key[..split]).into_owned();
                    latest.push((county, u64::from_be_bytes(seq), v.to_vec()));
                    break;
                }
            }
            // The next county's keys start after every "county/..." key.
            from = k[..split].to_vec();
            from.push(b'/' + 1);
        }
        Ok(latest)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Store;

    #[test]
    fn the_latest_partner_checkpoint_of_each_county_is_found_among_many() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.partner_checkpoints().unwrap().is_empty());
        // Out of order, with seqs whose bytes sort differently from their
        // digits, and a county whose code sorts right after another's.
        for (county, seq) in [
            ("610113", 300),
            ("610702", 5),
            ("610113", 2),
            ("610702", 256),
            ("6101131", 9),
            ("610113", 255),
        ] {
            store
                .put_partner_checkpoint(county, seq, format!("{county}@{seq}").as_bytes())
                .unwrap();
        }
        let got: Vec<(String, u64, String)> = store
            .partner_checkpoints()
            .unwrap()
            .into_iter()
            .map(|(c, s, v)| (c, s, String::from_utf8(v).unwrap()))
            .collect();
        assert_eq!(
            got,
            vec![
                ("610113".into(), 300, "610113@300".into()),
                ("6101131".into(), 9, "6101131@9".into()),
                ("610702".into(), 256, "610702@256".into()),
            ]
        );
    }
}
