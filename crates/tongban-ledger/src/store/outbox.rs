//! The two ends of a handoff as stored: the outbox of handoffs to send
//! (keyed by destination, so one destination's next batch is one range
//! read; parked entries apart), and the handoffs received, kept for
//! deduplication with the receipt given; and the client requests carried
//! out, kept for the same reason with the reply given.
//!
//! Enqueueing, parking and settling are [`super::Batch`] operations. A data
//! dir from before the outbox was keyed by destination is moved over when
//! it opens ([`Trees::ensure_outbox_by_destination`]).

use super::keys::{
    OUTBOX_INDEX_BEFORE, RECEIVED_CUT, outbox_key, outbox_prefix, outbox_seq, received_key,
    request_key,
};
use std::sync::Arc;

use super::{Store, Trees, certs};
use crate::StoreError;
use crate::records::{OutboxEntry, ReceivedHandoff, RequestRecord, decode};

/// An outbox entry read: its number, the entry, and its bytes as stored
/// (shared: the courier hands them to the commit that settles the entry,
/// which compares them with what is stored then, without a copy).
type Read = (u64, OutboxEntry, Arc<[u8]>);

/// `meta` key saying the outbox is keyed by destination.
const BY_DESTINATION: &[u8] = b"outbox_by_destination_v1";

fn entry_of(tree: &'static str, k: &[u8], v: &[u8]) -> Result<Read, StoreError> {
    let key = outbox_seq(k).ok_or_else(|| StoreError::Corrupt {
        tree,
        reason: "bad key".into(),
    })?;
    Ok((key, decode("outbox", v)?, Arc::from(v)))
}

impl Store {
    /// Every outbox entry, waiting or parked, with its number and stored
    /// bytes, oldest first.
    pub fn outbox(&self) -> Result<Vec<Read>, StoreError> {
        let trees = self.trees()?;
        let mut all = Vec::new();
        for (name, tree) in [
            ("outbox", &trees.outbox),
            ("outbox_parked", &trees.outbox_parked),
        ] {
            for kv in tree.iter() {
                let (k, v) = kv.map_err(StoreError::db("failed to scan outbox"))?;
                all.push(entry_of(name, &k, &v)?);
            }
        }
        all.sort_by_key(|(key, _, _)| *key);
        Ok(all)
    }

    /// How many unparked outbox entries wait for `to`, counted on their
    /// keys without decoding them (metrics, at scrape time); 0 while the
    /// database is closed after a failed write.
    pub fn outbox_depth(&self, to: &str) -> usize {
        self.trees().map_or(0, |t| {
            t.outbox.scan_prefix(outbox_prefix(to)).keys().count()
        })
    }

    /// The destinations with unparked outbox entries, each found with one
    /// seek (start-up: what the courier has to send before anything new is
    /// queued).
    pub fn outbox_destinations(&self) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        let mut from: Vec<u8> = Vec::new();
        let trees = self.trees()?;
        while let Some(kv) = trees.outbox.range(from.as_slice()..).next() {
            let (k, _) = kv.map_err(StoreError::db("failed to scan outbox"))?;
            let slash = k
                .iter()
                .position(|b| *b == b'/')
                .ok_or(StoreError::Corrupt {
                    tree: "outbox",
                    reason: "key without a destination".into(),
                })?;
            out.push(String::from_utf8_lossy(&k[..slash]).into_owned());
            // Past every "<dest>/…" key: '0' is the byte after '/'.
            from = k[..slash].to_vec();
            from.push(b'/' + 1);
        }
        Ok(out)
    }

    /// The oldest `limit` unparked outbox entries for `to` whose numbers
    /// `skip` does not name, read as one range of the destination's keys so
    /// the courier never decodes the whole outbox (nor the entries it has in
    /// flight).
    pub fn outbox_for(
        &self,
        to: &str,
        limit: usize,
        skip: impl Fn(u64) -> bool,
    ) -> Result<Vec<Read>, StoreError> {
        let mut out = Vec::new();
        for kv in self.trees()?.outbox.scan_prefix(outbox_prefix(to)) {
            if out.len() >= limit {
                break;
            }
            let (k, v) = kv.map_err(StoreError::db("failed to scan outbox"))?;
            let key = outbox_seq(&k).ok_or_else(|| StoreError::Corrupt {
                tree: "outbox",
                reason: "bad key".into(),
            })?;
            if skip(key) {
                continue;
            }
            out.push((key, decode("outbox", &v)?, Arc::from(v.as_ref())));
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

impl Trees {
    /// Moves the outbox of a data dir from before it was keyed by
    /// destination (an entry's number alone as its key, with an index of
    /// destination and number beside it) to the keys it has now, parked
    /// entries to their own tree, in one transaction with the marker; then
    /// drops the old index. A crash before the transaction leaves the old
    /// layout whole, and the next open moves it again; the old index is
    /// only dropped once the marker is written. Moved instead of read in
    /// both forms: the outbox holds only what is not delivered yet, so the
    /// move is small and happens once, and every read keeps one form.
    pub(super) fn ensure_outbox_by_destination(&self, db: &sled::Db) -> Result<(), StoreError> {
        use sled::Transactional;
        let db_err = || StoreError::db("failed to move the outbox to keys by destination");
        if self.meta.get(BY_DESTINATION).map_err(db_err())?.is_none() {
            let mut moves = Vec::new();
            for kv in self.outbox.iter() {
                let (k, v) = kv.map_err(db_err())?;
                // Keys of the old layout are the 8-byte number alone.
                let Ok(old) = <[u8; 8]>::try_from(k.as_ref()) else {
                    continue;
                };
                let entry: OutboxEntry = decode("outbox", &v)?;
                let seq = u64::from_be_bytes(old);
                moves.push((
                    k,
                    outbox_key(entry.to.as_str(), seq),
                    entry.parked.is_none(),
                    v,
                ));
            }
            (&self.outbox, &self.outbox_parked, &self.meta)
                .transaction(|(outbox, parked, meta)| {
                    for (old, new, live, v) in &moves {
                        outbox.remove(old)?;
                        if *live {
                            outbox.insert(new.as_slice(), v)?;
                        } else {
                            parked.insert(new.as_slice(), v)?;
                        }
                    }
                    meta.insert(BY_DESTINATION, &[][..])?;
                    Ok::<_, sled::transaction::ConflictableTransactionError<StoreError>>(())
                })
                .map_err(|e| match e {
                    sled::transaction::TransactionError::Abort(e) => e,
                    sled::transaction::TransactionError::Storage(e) => StoreError::Db {
                        action: "failed to move the outbox to keys by destination",
                        cause: e,
                    },
                })?;
            db.flush().map_err(db_err())?;
        }
        if db
            .tree_names()
            .iter()
            .any(|n| n.as_ref() == OUTBOX_INDEX_BEFORE.as_bytes())
        {
            db.drop_tree(OUTBOX_INDEX_BEFORE).map_err(db_err())?;
        }
        Ok(())
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

    #[tokio::test]
    async fn an_outbox_of_the_old_layout_is_moved_to_keys_by_destination_at_open() {
        use super::super::keys::{OUTBOX_INDEX_BEFORE, outbox_key};
        use super::BY_DESTINATION;
        use crate::records::encode;
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            // What a build before the move wrote: the number alone as the
            // key, the index beside it (parked entries left out of it).
            let trees = store.trees().unwrap();
            let waiting = entry("611002", "a");
            let mut parked = entry("610113", "b");
            parked.parked = Some("refused".into());
            trees
                .outbox
                .insert(7u64.to_be_bytes(), encode(&waiting))
                .unwrap();
            trees
                .outbox
                .insert(9u64.to_be_bytes(), encode(&parked))
                .unwrap();
            trees.meta.remove(BY_DESTINATION).unwrap();
            trees.meta.flush().unwrap();
            trees.outbox.flush().unwrap();
        }
        {
            // The old index tree, as it was.
            let db =
                crate::store::open_db(&dir.path().join("ledger.sled"), crate::store::OPEN_WAIT)
                    .unwrap();
            let index = db.open_tree(OUTBOX_INDEX_BEFORE).unwrap();
            index.insert(outbox_key("611002", 7), &[][..]).unwrap();
            db.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        let waiting = store.outbox_for("611002", 10, |_| false).unwrap();
        assert_eq!(waiting.len(), 1);
        assert_eq!((waiting[0].0, waiting[0].1.handoff_id.as_str()), (7, "a"));
        assert!(
            store
                .outbox_for("610113", 10, |_| false)
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.outbox_destinations().unwrap(), ["611002"]);
        let all: Vec<_> = store
            .outbox()
            .unwrap()
            .into_iter()
            .map(|(k, e, _)| (k, e.handoff_id, e.parked.is_some()))
            .collect();
        assert_eq!(all, [(7, "a".into(), false), (9, "b".into(), true)]);
        let trees = store.trees().unwrap();
        assert!(trees.outbox.get(7u64.to_be_bytes()).unwrap().is_none());
        // Settling by destination removes the moved entry.
        let raw = waiting[0].2.clone();
        let mut batch = Batch::default();
        batch.settle_outbox("611002", 7, raw);
        store.commit(batch).await.unwrap();
        assert!(
            store
                .outbox_for("611002", 10, |_| false)
                .unwrap()
                .is_empty()
        );
        assert_eq!(store.outbox_depth("611002"), 0);
        drop((trees, store));
        let db = crate::store::open_db(&dir.path().join("ledger.sled"), crate::store::OPEN_WAIT)
            .unwrap();
        assert!(
            !db.tree_names()
                .iter()
                .any(|n| n.as_ref() == OUTBOX_INDEX_BEFORE.as_bytes()),
            "the old index is dropped"
        );
    }
}
