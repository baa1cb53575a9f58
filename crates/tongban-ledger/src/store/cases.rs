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
        self.trees()?
            .cases
            .get(application_id.as_bytes())
            .map_err(StoreError::db("failed to read case"))?
            .map(|v| decode("cases", &v))
            .transpose()
    }

    /// A case by case number.
    pub fn case_by_no(&self, case_no: &str) -> Result<Option<CaseRecord>, StoreError> {
        match self.case_id_by_no(case_no)? {
            Some(id) => self.case(&id),
            None => Ok(None),
        }
    }

    /// The application id of the case numbered `case_no`, from the number
    /// index alone (a number, once given, always names the same case).
    pub fn case_id_by_no(&self, case_no: &str) -> Result<Option<String>, StoreError> {
        Ok(self
            .trees()?
            .case_nos
            .get(case_no.as_bytes())
            .map_err(StoreError::db("failed to read case number"))?
            .map(|id| String::from_utf8_lossy(&id).into_owned()))
    }

    /// Every case, in application-id order (UUID v7: creation order).
    pub fn cases(&self) -> Result<Vec<CaseRecord>, StoreError> {
        self.trees()?
            .cases
            .iter()
            .map(|kv| {
                let (_, v) = kv.map_err(StoreError::db("failed to scan cases"))?;
                decode("cases", &v)
            })
            .collect()
    }

    /// How many cases on `side` are in `state`, counted on the state index
    /// without decoding them (metrics, at scrape time); 0 while the
    /// database is closed after a failed write.
    pub fn case_count(&self, side: Side, state: CaseState) -> usize {
        self.trees().map_or(0, |t| {
            t.case_states
                .scan_prefix(state_key(side, state, ""))
                .keys()
                .count()
        })
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
        self.cases_page(side, states, newest_first, None, limit)
    }

    /// As [`Store::cases_in`], continuing after the case whose application
    /// id is `after` (the last one of the previous page) in the same order:
    /// a page costs reading `limit` keys per state, however deep it is.
    pub fn cases_page(
        &self,
        side: Side,
        states: &[CaseState],
        newest_first: bool,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<CaseRecord>, StoreError> {
        use std::ops::Bound;
        // Each state's keys are already in id order, so at most `limit` are
        // read from each: asking "is any case still QUEUED" reads one key,
        // not every queued case.
        let mut ids: Vec<Vec<u8>> = Vec::new();
        for state in states {
            let prefix = state_key(side, *state, "");
            // Every key of the state lies in [prefix, prefix with its final
            // 0 separator raised to 1): ids are printable.
            let mut end = prefix.clone();
            if let Some(last) = end.last_mut() {
                *last = 1;
            }
            let (lo, hi) = match (after, newest_first) {
                (None, _) => (Bound::Included(prefix.clone()), Bound::Excluded(end)),
                (Some(a), false) => (
                    Bound::Excluded(state_key(side, *state, a)),
                    Bound::Excluded(end),
                ),
                (Some(a), true) => (
                    Bound::Included(prefix.clone()),
                    Bound::Excluded(state_key(side, *state, a)),
                ),
            };
            let scan = self.trees()?.case_states.range((lo, hi));
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
                .trees()?
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
            .trees()?
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

    #[tokio::test]
    async fn pages_continue_after_the_last_case_in_either_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let mut batch = Batch::default();
        for (id, state) in [
            ("a1", CaseState::Queued),
            ("a2", CaseState::HandedOff),
            ("a3", CaseState::Queued),
            ("a4", CaseState::Closed),
            ("a5", CaseState::HandedOff),
        ] {
            batch.put_case(case(id, Side::Window, state));
        }
        store.commit(batch).await.unwrap();
        let ids = |cases: Vec<CaseRecord>| {
            cases
                .into_iter()
                .map(|c| c.application_id)
                .collect::<Vec<_>>()
        };
        let all = CaseState::ALL;
        let page = |newest, after, limit| {
            ids(store
                .cases_page(Side::Window, &all, newest, after, limit)
                .unwrap())
        };
        assert_eq!(page(true, None, 2), ["a5", "a4"]);
        assert_eq!(page(true, Some("a4"), 2), ["a3", "a2"]);
        assert_eq!(page(true, Some("a2"), 2), ["a1"]);
        assert!(page(true, Some("a1"), 2).is_empty());
        assert_eq!(page(false, None, 2), ["a1", "a2"]);
        assert_eq!(page(false, Some("a2"), 2), ["a3", "a4"]);
        assert_eq!(page(false, Some("a4"), 9), ["a5"]);
        let queued = store
            .cases_page(Side::Window, &[CaseState::Queued], false, Some("a1"), 9)
            .unwrap();
        assert_eq!(ids(queued), ["a3"]);
    }
}
