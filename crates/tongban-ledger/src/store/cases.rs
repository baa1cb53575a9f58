//! Reading cases: by application id, by case number, by waybill, and by
//! (side, state) through the state index that every commit keeps in step
//! with the records.
//!
//! Writing them is [`super::commit`]'s.

use tongban_core::CaseState;

use super::Store;
use super::keys::state_key;
use crate::StoreError;
use crate::records::{CaseRecord, Side, decode};

impl Store {
    /// A case by application id.
    pub fn case(&self, application_id: &str) -> Result<Option<CaseRecord>, StoreError> {
        self.cases
            .get(application_id.as_bytes())
            .map_err(StoreError::db("failed to read case"))?
            .map(|v| decode("cases", &v))
            .transpose()
    }

    /// A case by case number.
    pub fn case_by_no(&self, case_no: &str) -> Result<Option<CaseRecord>, StoreError> {
        match self
            .case_nos
            .get(case_no.as_bytes())
            .map_err(StoreError::db("failed to read case number"))?
        {
            Some(id) => self.case(&String::from_utf8_lossy(&id)),
            None => Ok(None),
        }
    }

    /// Every case, in application-id order (UUID v7: creation order).
    pub fn cases(&self) -> Result<Vec<CaseRecord>, StoreError> {
        self.cases
            .iter()
            .map(|kv| {
                let (_, v) = kv.map_err(StoreError::db("failed to scan cases"))?;
                decode("cases", &v)
            })
            .collect()
    }

    /// How many cases on `side` are in `state`, counted on the state index
    /// without decoding them (metrics, at scrape time).
    pub fn case_count(&self, side: Side, state: CaseState) -> usize {
        self.case_states
            .scan_prefix(state_key(side, state, ""))
            .keys()
            .count()
    }

    /// Cases on `side` in any of `states`, through the state index: oldest
    /// first (application ids are UUID v7), or newest first; at most `limit`.
    pub fn cases_in(
        &self,
        side: Side,
        states: &[CaseState],
        newest_first: bool,
        limit: usize,
    ) -> Result<Vec<CaseRecord>, StoreError> {
        // Each state's keys are already in id order, so at most `limit` are
        // read from each end: asking "is any case still QUEUED" reads one key,
        // not every queued case.
        let mut ids: Vec<Vec<u8>> = Vec::new();
        for state in states {
            let prefix = state_key(side, *state, "");
            let scan = self.case_states.scan_prefix(&prefix);
            let keys: Box<dyn Iterator<Item = _>> = if newest_first {
                Box::new(scan.rev())
            } else {
                Box::new(scan)
            };
            for kv in keys.take(limit) {
                let (k, _) = kv.map_err(StoreError::db("failed to scan case states"))?;
                ids.push(k[prefix.len()..].to_vec());
            }
        }
        ids.sort();
        if newest_first {
            ids.reverse();
        }
        ids.truncate(limit);
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(v) = self
                .cases
                .get(&id)
                .map_err(StoreError::db("failed to read case"))?
            {
                out.push(decode("cases", &v)?);
            }
        }
        Ok(out)
    }

    /// The application id a waybill belongs to.
    pub fn waybill(&self, waybill: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .waybills
            .get(waybill.as_bytes())
            .map_err(StoreError::db("failed to read waybill"))?
            .map(|v| String::from_utf8_lossy(&v).into_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Batch;
    use super::*;
    use crate::testing::sample_case as case;

    #[tokio::test]
    async fn the_state_index_follows_every_change_and_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let mut batch = Batch::default();
            batch
                .put_case(case("a1", Side::Window, CaseState::Queued))
                .put_case(case("a2", Side::Window, CaseState::Queued))
                .put_case(case("a3", Side::Home, CaseState::HandedOff));
            store.commit(batch).await.unwrap();
            let mut batch = Batch::default();
            batch.put_case(case("a1", Side::Window, CaseState::HandedOff));
            store.commit(batch).await.unwrap();

            let queued = store
                .cases_in(Side::Window, &[CaseState::Queued], true, 10)
                .unwrap();
            assert_eq!(
                queued
                    .iter()
                    .map(|c| c.application_id.as_str())
                    .collect::<Vec<_>>(),
                ["a2"]
            );
            let handed = store
                .cases_in(Side::Window, &[CaseState::HandedOff], true, 10)
                .unwrap();
            assert_eq!(
                handed.len(),
                1,
                "the old state's key is gone, the new one is there"
            );
            let home = store
                .cases_in(Side::Home, &[CaseState::HandedOff], false, 10)
                .unwrap();
            assert_eq!(home[0].application_id, "a3");
            let recent = store
                .cases_in(Side::Window, &CaseState::ALL, true, 1)
                .unwrap();
            assert_eq!(recent[0].application_id, "a2", "newest first");
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            store
                .cases_in(Side::Window, &[CaseState::Queued], false, 10)
                .unwrap()
                .len(),
            1
        );
    }
}
