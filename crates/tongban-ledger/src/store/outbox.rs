//! The two ends of a handoff as stored: the outbox of handoffs to send
//! (read whole, or per destination through its index), and the handoffs
//! received, kept for deduplication with the receipt given; and the client
//! requests carried out, kept for the same reason with the reply given.
//!
//! Enqueueing, parking and settling are [`super::Batch`] operations.

use super::Store;
use super::certs;
use super::keys::{RECEIVED_CUT, received_key, request_key};
use crate::StoreError;
use crate::records::{OutboxEntry, ReceivedHandoff, RequestRecord, decode};

impl Store {
    /// Every outbox entry with its key and stored bytes, oldest first.
    pub fn outbox(&self) -> Result<Vec<(u64, OutboxEntry, Vec<u8>)>, StoreError> {
        self.trees()?
            .outbox
            .iter()
            .map(|kv| {
                let (k, v) = kv.map_err(StoreError::db("failed to scan outbox"))?;
                let key = k.as_ref().try_into().map(u64::from_be_bytes).map_err(|_| {
                    StoreError::Corrupt {
                        tree: "outbox",
                        reason: "bad key".into(),
                    }
                })?;
                Ok((key, decode("outbox", &v)?, v.to_vec()))
            })
            .collect()
    }

    /// How many unparked outbox entries wait for `to`, counted on the
    /// per-destination index without decoding them (metrics, at scrape
    /// time); 0 while the database is closed after a failed write.
    pub fn outbox_depth(&self, to: &str) -> usize {
        let mut prefix = to.as_bytes().to_vec();
        prefix.push(b'/');
        self.trees()
            .map_or(0, |t| t.outbox_index.scan_prefix(&prefix).keys().count())
    }

    /// The destinations with unparked outbox entries, each found with one
    /// seek on the per-destination index (start-up: what the courier has
    /// to send before anything new is queued).
    pub fn outbox_destinations(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut from: Vec<u8> = Vec::new();
        let trees = self.trees()?;
        while let Some(kv) = trees.outbox_index.range(from.as_slice()..).next() {
            let (k, _) = kv.map_err(StoreError::db("failed to scan outbox index"))?;
            let slash = k
                .iter()
                .position(|b| *b == b'/')
                .ok_or(StoreError::Corrupt {
                    tree: "outbox_index",
                    reason: "key without a destination".into(),
                })?;
            out.push(String::from_utf8_lossy(&k[..slash]).into_owned());
            // Past every "<dest>/…" key: '0' is the byte after '/'.
            from = k[..slash].to_vec();
            from.push(b'/' + 1);
        }
        Ok(out)
    }

    /// The oldest `limit` unparked outbox entries for `to` whose keys `skip`
    /// does not name, read through the per-destination index so the courier
    /// never decodes the whole outbox (nor the entries it has in flight).
    pub fn outbox_for(
        &self,
        to: &str,
        limit: usize,
        skip: impl Fn(u64) -> bool,
    ) -> Result<Vec<(u64, OutboxEntry, Vec<u8>)>, StoreError> {
        let mut prefix = to.as_bytes().to_vec();
        prefix.push(b'/');
        let mut out = Vec::new();
        for kv in self.trees()?.outbox_index.scan_prefix(&prefix) {
            if out.len() >= limit {
                break;
            }
            let (k, _) = kv.map_err(StoreError::db("failed to scan outbox index"))?;
            let key = <[u8; 8]>::try_from(&k[prefix.len()..])
                .map(u64::from_be_bytes)
                .map_err(|_| StoreError::Corrupt {
                    tree: "outbox_index",
                    reason: "bad key".into(),
                })?;
            if skip(key) {
                continue;
            }
            if let Some(v) = self
                .trees()?
                .outbox
                .get(key.to_be_bytes())
                .map_err(StoreError::db("failed to read outbox"))?
            {
                out.push((key, decode("outbox", &v)?, v.to_vec()));
            }
        }
        Ok(out)
    }

    /// A received handoff, by (sender county, handoff id).
    pub fn received(
        &self,
        sender: &str,
        handoff_id: &str,
    ) -> Result<Option<ReceivedHandoff>, StoreError> {
        self.trees()?
            .received
            .get(received_key(sender, handoff_id))
            .map_err(StoreError::db("failed to read received handoff"))?
            .map(|v| self.received_record(&v))
            .transpose()
    }

    /// Every received handoff as (sender county, handoff id, record), in
    /// key order: the receipts this node gave, for an audit.
    pub fn received_all(&self) -> Result<Vec<(String, String, ReceivedHandoff)>, StoreError> {
        self.trees()?
            .received
            .iter()
            .map(|kv| {
                let (k, v) = kv.map_err(StoreError::db("failed to scan received handoffs"))?;
                let key = String::from_utf8_lossy(&k);
                let (sender, id) = key.split_once('/').ok_or_else(|| StoreError::Corrupt {
                    tree: "received",
                    reason: format!("key {key:?} is not sender/handoff id"),
                })?;
                Ok((sender.to_owned(), id.to_owned(), self.received_record(&v)?))
            })
            .collect()
    }

    /// A stored received-handoff record, its receipt's certificate put
    /// back if it was cut out (see `certs`).
    fn received_record(&self, value: &[u8]) -> Result<ReceivedHandoff, StoreError> {
        match value.split_first() {
            Some((&RECEIVED_CUT, cut)) => {
                let trees = self.trees()?;
                let whole = certs::paste("received", cut, |fp| trees.known.find(&trees.certs, fp))?;
                decode("received", &whole)
            }
            _ => decode("received", value),
        }
    }

    /// A client request carried out, by (caller's SPIFFE ID, request id).
    pub fn request(
        &self,
        caller: &str,
        request_id: &str,
    ) -> Result<Option<RequestRecord>, StoreError> {
        self.trees()?
            .requests
            .get(request_key(caller, request_id))
            .map_err(StoreError::db("failed to read request record"))?
            .map(|v| decode("requests", &v))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Batch, Store};
    use crate::records::OutboxEntry;

    fn entry(to: &str, id: &str) -> OutboxEntry {
        OutboxEntry {
            handoff_id: id.into(),
            application_id: id.into(),
            to: to.parse().unwrap(),
            envelope: Vec::new(),
            kind: "application".into(),
            materials: Vec::new(),
            parked: None,
        }
    }

    #[tokio::test]
    async fn the_destinations_are_those_with_unparked_entries() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.outbox_destinations().unwrap().is_empty());
        let mut batch = Batch::default();
        for (to, id) in [
            ("611002", "a"),
            ("610113", "b"),
            ("611002", "c"),
            ("610702", "d"),
        ] {
            batch.enqueue(entry(to, id));
        }
        store.commit(batch).await.unwrap();
        assert_eq!(
            store.outbox_destinations().unwrap(),
            ["610113", "610702", "611002"]
        );
        // Parked entries are not work: 610702 drops out.
        let (key, mut parked, _) = store
            .outbox()
            .unwrap()
            .into_iter()
            .find(|(_, e, _)| e.handoff_id == "d")
            .unwrap();
        parked.parked = Some("refused".into());
        let mut batch = Batch::default();
        batch.update_outbox(key, parked);
        store.commit(batch).await.unwrap();
        assert_eq!(store.outbox_destinations().unwrap(), ["610113", "611002"]);
    }
}
