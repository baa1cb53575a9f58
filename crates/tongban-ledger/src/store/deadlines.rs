//! The deadline index: for every open case, the earliest date on which it
//! can become overdue, so the overdue lists read a range of keys instead of
//! decoding every open case.
//!
//! Two kinds of keys, each (side, kind, date, application id) → ():
//! [`DeadlineKind::Dated`] holds the earliest of the promised date (while
//! the clock runs) and the commitment's due date (while unfulfilled);
//! [`DeadlineKind::Mail`] the UTC send date of the oldest mail leg still
//! on its way. Mail is kept apart because when a leg is late depends on the
//! node's `max_transit_days`, which is configuration, not data: the reader
//! adds it. The keys are derived from the record alone ([`Deadlines::of`]),
//! written by [`super::commit`] in the transaction that writes the record,
//! and only when they changed. A store opened without the index (a data
//! dir from before it) rebuilds it from the records before serving.
//!
//! Which of the candidates are overdue today, and in what order they are
//! listed, is the node's (`service/overdue.rs`): the index only narrows.

use serde::Deserialize;
use time::format_description::well_known::Rfc3339;
use time::{Date, OffsetDateTime, UtcOffset};
use tongban_core::{CaseState, MailStatus};

use super::{Store, Trees, keys};
use crate::StoreError;
use crate::records::{CaseRecord, Side, decode};

/// Which deadline a key of the index stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeadlineKind {
    /// The promised date or the commitment's due date, whichever is first.
    Dated,
    /// The send date of the oldest mail leg not yet delivered, returned or lost.
    Mail,
}

impl DeadlineKind {
    fn byte(self) -> u8 {
        match self {
            Self::Dated => b'd',
            Self::Mail => b'm',
        }
    }
}

/// The dates a case is indexed under (none once it is closed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Deadlines {
    /// Earliest of the running promised date and the open commitment's due date.
    pub dated: Option<Date>,
    /// UTC send date of the oldest open mail leg.
    pub mail: Option<Date>,
}

// The fields of a record the deadlines come from, read without decoding
// the rest of it (the old record, inside the commit's transaction).

#[derive(Deserialize, Default)]
pub(super) struct ReviewPart {
    #[serde(default)]
    due_date: Option<String>,
    #[serde(default)]
    clock_running: bool,
}

#[derive(Deserialize)]
pub(super) struct CommitmentPart {
    due_date: String,
    #[serde(default)]
    fulfilled_at: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct MailPart {
    sent_at: String,
    status: MailStatus,
}

/// `YYYY-MM-DD`, as the records store dates.
fn parse_date(text: &str) -> Option<Date> {
    Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

impl Deadlines {
    /// The deadlines of `case`.
    pub fn of(case: &CaseRecord) -> Self {
        Self::from_parts(
            case.state,
            case.review.clock_running,
            case.review.due_date.as_deref(),
            case.commitment
                .as_ref()
                .map(|c| (c.due_date.as_str(), c.fulfilled_at.is_some())),
            case.mail.iter().map(|l| (l.status, l.sent_at.as_str())),
        )
    }

    /// The deadlines of a record read as its parts.
    pub(super) fn of_parts(
        state: CaseState,
        review: &ReviewPart,
        commitment: Option<&CommitmentPart>,
        mail: &[MailPart],
    ) -> Self {
        Self::from_parts(
            state,
            review.clock_running,
            review.due_date.as_deref(),
            commitment.map(|c| (c.due_date.as_str(), c.fulfilled_at.is_some())),
            mail.iter().map(|l| (l.status, l.sent_at.as_str())),
        )
    }

    // The same reading of the fields the node's overdue rule makes: a date
    // that does not parse is never overdue there, so it is not indexed.
    fn from_parts<'a>(
        state: CaseState,
        clock_running: bool,
        due: Option<&str>,
        commitment: Option<(&str, bool)>,
        legs: impl Iterator<Item = (MailStatus, &'a str)>,
    ) -> Self {
        if state.is_terminal() {
            return Self::default();
        }
        let promise = due.filter(|_| clock_running).and_then(parse_date);
        let committed = commitment
            .filter(|(_, fulfilled)| !fulfilled)
            .and_then(|(due, _)| parse_date(due));
        let mail = legs
            .filter(|(status, _)| !status.is_final())
            .filter_map(|(_, sent)| OffsetDateTime::parse(sent, &Rfc3339).ok())
            .map(|sent| sent.to_offset(UtcOffset::UTC).date())
            .min();
        Self {
            dated: promise.into_iter().chain(committed).min(),
            mail,
        }
    }

    /// The index keys of a case with these deadlines.
    pub(super) fn keys(&self, side: Side, id: &str) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        if let Some(d) = self.dated {
            out.push(deadline_key(side, DeadlineKind::Dated, d, id));
        }
        if let Some(d) = self.mail {
            out.push(deadline_key(side, DeadlineKind::Mail, d, id));
        }
        out
    }
}

/// A date as 4 bytes that sort as the dates do (Julian day, sign flipped).
fn date_bytes(date: Date) -> [u8; 4] {
    ((date.to_julian_day() as u32) ^ 0x8000_0000).to_be_bytes()
}

fn date_from_bytes(bytes: &[u8]) -> Option<Date> {
    let jd = u32::from_be_bytes(bytes.try_into().ok()?) ^ 0x8000_0000;
    Date::from_julian_day(jd as i32).ok()
}

fn prefix(side: Side, kind: DeadlineKind) -> [u8; 2] {
    let s = match side {
        Side::Window => b'w',
        Side::Home => b'h',
    };
    [s, kind.byte()]
}

/// Key of the deadline index: side, kind, date (4 bytes), application id.
pub(super) fn deadline_key(side: Side, kind: DeadlineKind, date: Date, id: &str) -> Vec<u8> {
    let mut k = prefix(side, kind).to_vec();
    k.extend_from_slice(&date_bytes(date));
    k.extend_from_slice(id.as_bytes());
    k
}

/// `meta` key saying the deadline index is complete for the records.
const BUILT: &[u8] = b"deadline_index_v1";

impl Trees {
    /// Builds the deadline index from every record if this database has
    /// never had it (a data dir from before it). Until the marker is
    /// written a crash leaves the marker absent and the build runs again
    /// from an emptied index, so a half-built index is never read.
    pub(super) fn ensure_deadline_index(&self) -> Result<(), StoreError> {
        let db_err = || StoreError::db("failed to build the deadline index");
        if self.meta.get(BUILT).map_err(db_err())?.is_some() {
            return Ok(());
        }
        self.deadlines.clear().map_err(db_err())?;
        let mut batch = sled::Batch::default();
        for kv in self.cases.iter() {
            let (id, bytes) = kv.map_err(db_err())?;
            let case: CaseRecord = decode("cases", &bytes)?;
            for key in Deadlines::of(&case).keys(case.side, &String::from_utf8_lossy(&id)) {
                batch.insert(key, &[][..]);
            }
        }
        self.deadlines.apply_batch(batch).map_err(db_err())?;
        self.meta.insert(BUILT, &[][..]).map_err(db_err())?;
        self.meta.flush().map_err(db_err())?;
        Ok(())
    }
}

impl Store {
    /// The cases on `side` indexed under `kind` with a date up to and
    /// including `through`, earliest first (then by application id), after
    /// the key (`after`) a previous page ended at: (date, application id)
    /// pairs, nothing decoded.
    pub fn deadlines_through(
        &self,
        side: Side,
        kind: DeadlineKind,
        after: Option<(Date, &str)>,
        through: Date,
    ) -> Result<impl Iterator<Item = Result<(Date, String), StoreError>> + use<>, StoreError> {
        use std::ops::Bound;
        let p = prefix(side, kind);
        let lo = match after {
            Some((date, id)) => Bound::Excluded(deadline_key(side, kind, date, id)),
            None => Bound::Included(p.to_vec()),
        };
        // Every key dated `through` starts with its bytes; the next day's
        // bytes bound them all.
        let hi = match through.next_day() {
            Some(next) => {
                let mut k = p.to_vec();
                k.extend_from_slice(&date_bytes(next));
                Bound::Excluded(k)
            }
            None => {
                let mut k = p.to_vec();
                k[1] += 1;
                Bound::Excluded(k)
            }
        };
        if let (Bound::Excluded(l), Bound::Excluded(h)) = (&lo, &hi)
            && l >= h
        {
            return Ok(Box::new(std::iter::empty()) as Box<dyn Iterator<Item = _>>);
        }
        let scan = self.trees()?.deadlines.range((lo, hi));
        Ok(Box::new(scan.keys().map(|k| {
            let k = k.map_err(StoreError::db("failed to scan the deadline index"))?;
            let date =
                k.get(2..6)
                    .and_then(date_from_bytes)
                    .ok_or_else(|| StoreError::Corrupt {
                        tree: keys::DEADLINES,
                        reason: "a deadline key is too short".into(),
                    })?;
            Ok((date, String::from_utf8_lossy(&k[6..]).into_owned()))
        })))
    }
}

#[cfg(test)]
mod tests {
    use super::super::Batch;
    use super::*;
    use crate::records::{CommitmentRecord, MailLegRecord};
    use crate::testing::sample_case as case;
    use time::macros::date;
    use tongban_core::{MailLeg, MailTo};

    fn due(store: &Store, side: Side, kind: DeadlineKind, through: Date) -> Vec<(Date, String)> {
        store
            .deadlines_through(side, kind, None, through)
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap()
    }

    fn leg(sent_at: &str, status: MailStatus) -> MailLegRecord {
        MailLegRecord {
            leg: MailLeg::Materials,
            carrier: "EMS".into(),
            waybill: "1".into(),
            to: MailTo::Home,
            sent_at: sent_at.into(),
            status,
            events: Vec::new(),
        }
    }

    #[tokio::test]
    async fn keys_follow_the_record_in_its_commit_and_a_missing_index_is_rebuilt() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(dir.path()).unwrap();
            let mut running = case("a1", Side::Home, CaseState::UnderReview);
            running.review.due_date = Some("2026-12-04".into());
            running.review.clock_running = true;
            let mut paused = case("a2", Side::Home, CaseState::CorrectionRequested);
            paused.review.due_date = Some("2026-11-01".into());
            let mut committed = case("a3", Side::Home, CaseState::UnderReview);
            committed.review.due_date = Some("2026-12-20".into());
            committed.review.clock_running = true;
            committed.commitment = Some(CommitmentRecord {
                signer: "张三".into(),
                kinds: vec!["licence".into()],
                due_date: "2026-12-02".into(),
                signed_at: "2026-11-01T00:00:00Z".into(),
                by: "clerk".into(),
                fulfilled_at: None,
                count: None,
            });
            let mut mailed = case("a4", Side::Window, CaseState::Queued);
            mailed.mail = vec![
                leg("2026-11-20T23:00:00+08:00", MailStatus::InTransit),
                leg("2026-11-10T09:00:00Z", MailStatus::Delivered),
            ];
            let mut batch = Batch::default();
            batch
                .put_case(running.clone())
                .put_case(paused)
                .put_case(committed.clone())
                .put_case(mailed.clone());
            store.commit(batch).await.unwrap();

            let dated = due(
                &store,
                Side::Home,
                DeadlineKind::Dated,
                date!(2026 - 12 - 31),
            );
            assert_eq!(
                dated,
                [
                    (date!(2026 - 12 - 02), "a3".to_string()),
                    (date!(2026 - 12 - 04), "a1".to_string())
                ],
                "earliest first, the commitment before the later promise, a paused clock not at all"
            );
            assert_eq!(
                due(
                    &store,
                    Side::Home,
                    DeadlineKind::Dated,
                    date!(2026 - 12 - 03)
                )
                .len(),
                1,
                "the range ends at `through`"
            );
            assert_eq!(
                due(
                    &store,
                    Side::Window,
                    DeadlineKind::Mail,
                    date!(2026 - 12 - 31)
                ),
                [(date!(2026 - 11 - 20), "a4".to_string())],
                "the open leg's UTC send date; the delivered one does not count"
            );
            let after = store
                .deadlines_through(
                    Side::Home,
                    DeadlineKind::Dated,
                    Some((date!(2026 - 12 - 02), "a3")),
                    date!(2026 - 12 - 31),
                )
                .unwrap()
                .count();
            assert_eq!(after, 1, "a page continues after its last key");

            // Leaving: the commitment fulfilled moves a3 to its promise;
            // the leg delivered and a1 decided take their keys away.
            committed.commitment.as_mut().unwrap().fulfilled_at = Some("now".into());
            mailed.mail[0].status = MailStatus::Delivered;
            running.review.clock_running = false;
            running.state = CaseState::Approved;
            let mut batch = Batch::default();
            batch.put_case(committed).put_case(mailed).put_case(running);
            store.commit(batch).await.unwrap();
            assert_eq!(
                due(
                    &store,
                    Side::Home,
                    DeadlineKind::Dated,
                    date!(2026 - 12 - 31)
                ),
                [(date!(2026 - 12 - 20), "a3".to_string())]
            );
            assert!(
                due(
                    &store,
                    Side::Window,
                    DeadlineKind::Mail,
                    date!(2026 - 12 - 31)
                )
                .is_empty()
            );

            // A data dir from before the index: no marker, no keys.
            let trees = store.trees().unwrap();
            trees.meta.remove(BUILT).unwrap();
            trees.deadlines.clear().unwrap();
            trees.meta.flush().unwrap();
            trees.deadlines.flush().unwrap();
        }
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(
            due(
                &store,
                Side::Home,
                DeadlineKind::Dated,
                date!(2026 - 12 - 31)
            ),
            [(date!(2026 - 12 - 20), "a3".to_string())],
            "rebuilt from the records on open"
        );
    }
}
