//! Counting a case's running dates again when the directory's holiday
//! calendar changes (a province publishes next year's holidays, §10 of
//! `docs/operations.md`).
//!
//! The home authority owns every working-day date of its cases: the
//! promised date of its clock (承诺时限), the deadline of a correction it
//! asked for, and the commitment's (告知承诺) deadline it enforces before
//! approving. Each is kept with how it was counted ([`tongban_ledger::Count`],
//! [`tongban_ledger::ClockRecord`]) and the identity of the calendar it was
//! counted with. At start, before it serves anyone, the node counts again
//! every date whose calendar identity is not the one in force; each case
//! with a date that moved gets one `case.due-recomputed` entry naming the
//! old and new dates, written with the case record, and a
//! `case.due-recomputed` update to the window, whose copy mirrors the home
//! authority's dates as it does after every step. The window counts
//! nothing itself: one owner per date, so the two nodes cannot disagree
//! about a promise while their directories are being replaced.
//!
//! The node remembers the whole calendar it last counted with (a store
//! setting, [`Calendar::fingerprint`]): started again with the same one it
//! does not read the cases at all. A date whose calendar changed but which
//! did not move is not written, so nothing enters the ledger that changes
//! nothing.

use time::Date;
use tongban_core::{Calendar, CaseEvent, CaseState, Side};
use tongban_ledger::{Batch, CaseRecord, Count, DueChange, DueClock, EntryBody};
use tongban_proto::federation::v1::CaseUpdate;

use crate::NodeError;
use crate::change::{self, Change, Outgoing};
use crate::ctx::Ctx;
use crate::flow::{format_date, parse_date};
use crate::service::OPEN_STATES;

/// Cases written per commit: a node with many running cases recounts them
/// in a few large commits, not one flush per case.
const PER_COMMIT: usize = 500;

/// The store setting naming the calendar the dates were last counted with.
const CALENDAR_SETTING: &str = "recount-calendar";

/// What counting one case again changed.
pub(crate) struct Recounted {
    /// The dates that moved.
    pub(crate) changes: Vec<DueChange>,
    /// The calendar identity of the years they were counted over.
    pub(crate) calendar: String,
}

/// Counts the running dates of a home-side `case` again with `calendar`,
/// changing the case record; None when no date moved (the record may then
/// hold new calendar identities the caller need not keep).
pub(crate) fn recount(calendar: &Calendar, case: &mut CaseRecord) -> Option<Recounted> {
    if case.side != Side::Home || matches!(case.state, CaseState::Denied | CaseState::Closed) {
        return None;
    }
    let mut changes = Vec::new();
    let mut identities = Vec::new();
    recount_promise(calendar, case, &mut changes, &mut identities);
    if case.state == CaseState::CorrectionRequested
        && let Some(open) = case.review.corrections.last_mut()
        && open.answered_at.is_none()
        && let Some(count) = open.count.as_mut()
        && let Some(new) = recount_date(calendar, count, &open.deadline, &mut identities)
    {
        changes.push(DueChange {
            clock: DueClock::Correction,
            old: std::mem::replace(&mut open.deadline, new.clone()),
            new,
        });
    }
    if let Some(k) = case.commitment.as_mut()
        && k.fulfilled_at.is_none()
        && let Some(count) = k.count.as_mut()
        && let Some(new) = recount_date(calendar, count, &k.due_date, &mut identities)
    {
        changes.push(DueChange {
            clock: DueClock::Commitment,
            old: std::mem::replace(&mut k.due_date, new.clone()),
            new,
        });
    }
    if changes.is_empty() {
        return None;
    }
    identities.sort();
    identities.dedup();
    Some(Recounted {
        changes,
        calendar: identities.join(" "),
    })
}

/// The promised-time clock: its due date while it runs, its days left
/// while it is paused for a correction.
fn recount_promise(
    calendar: &Calendar,
    case: &mut CaseRecord,
    changes: &mut Vec<DueChange>,
    identities: &mut Vec<String>,
) {
    let review = &mut case.review;
    let Some(clock) = review.clock.as_mut() else {
        return;
    };
    let Some(runs) = clock
        .runs
        .iter()
        .map(|r| {
            let started = parse_date(&r.started)?;
            match &r.paused {
                Some(p) => Some((started, Some(parse_date(p)?))),
                None => Some((started, None)),
            }
        })
        .collect::<Option<Vec<(Date, Option<Date>)>>>()
    else {
        return;
    };
    let Some(first) = runs.first().map(|r| r.0) else {
        return;
    };
    let paused = !review.clock_running && review.due_date.is_none();
    let end = if review.clock_running {
        review.due_date.as_deref().and_then(parse_date)
    } else if paused && review.paused_days_left.is_some() {
        runs.last().and_then(|r| r.1)
    } else {
        None
    };
    let Some(end) = end else {
        return;
    };
    if calendar.identity(first, end) == clock.calendar {
        return;
    }
    let (left, due) = calendar.promise(clock.days, &runs);
    match due {
        Some(due) if review.clock_running => {
            clock.calendar = calendar.identity(first, due);
            let new = format_date(due);
            if review.due_date.as_deref() != Some(new.as_str()) {
                changes.push(DueChange {
                    clock: DueClock::Promise,
                    old: review.due_date.replace(new.clone()).unwrap_or_default(),
                    new,
                });
            }
        }
        None if paused => {
            clock.calendar = calendar.identity(first, end);
            if review.paused_days_left != Some(left) {
                changes.push(DueChange {
                    clock: DueClock::PausedPromise,
                    old: review
                        .paused_days_left
                        .replace(left)
                        .map(|d| d.to_string())
                        .unwrap_or_default(),
                    new: left.to_string(),
                });
            }
        }
        // The runs and the flags disagree (a record this build did not
        // write): leave the date as it is.
        _ => return,
    }
    identities.push(clock.calendar.clone());
}

/// A date counted as `count` says, now `current`: the new date if it moved,
/// None if the calendar it was counted with is the one in force or it did
/// not move. Updates the count's calendar identity either way.
fn recount_date(
    calendar: &Calendar,
    count: &mut Count,
    current: &str,
    identities: &mut Vec<String>,
) -> Option<String> {
    let from = parse_date(&count.from)?;
    let current_date = parse_date(current)?;
    if calendar.identity(from, current_date) == count.calendar {
        return None;
    }
    let new = calendar.add_working_days(from, count.days);
    count.calendar = calendar.identity(from, new);
    let new = format_date(new);
    if new == current {
        return None;
    }
    identities.push(count.calendar.clone());
    Some(new)
}

/// Makes the next start read every open case again, whatever the calendar:
/// a date arrived here counted with another calendar (a window node whose
/// directory differs) and is to be counted again then.
pub(crate) fn count_again_at_next_start(ctx: &Ctx) -> Result<(), NodeError> {
    ctx.store.put_setting(CALENDAR_SETTING, "")?;
    Ok(())
}

/// `promised date 2026-10-07 → 2026-10-13; correction deadline ...`.
fn describe(changes: &[DueChange]) -> String {
    changes
        .iter()
        .map(|c| format!("{} {} → {}", c.clock.as_str(), c.old, c.new))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Counts every open home-side case's running dates again with the
/// calendar in force, recording each case whose dates moved (see the module
/// header). Run at start, before the node serves: no request can change a
/// case meanwhile. Returns how many cases changed.
pub(crate) async fn at_start(ctx: &Ctx) -> Result<usize, NodeError> {
    let calendar = &ctx.directory.calendar;
    // The calendar every running date was last counted with: if it is this
    // one, no date can move and the cases are not read at all.
    let fingerprint = calendar.fingerprint();
    if ctx.store.setting(CALENDAR_SETTING)?.as_deref() == Some(fingerprint.as_str()) {
        return Ok(0);
    }
    let cases = ctx
        .store
        .cases_in(Side::Home, &OPEN_STATES, false, usize::MAX)?;
    let mut changed = 0;
    let mut batch = Batch::default();
    let mut in_batch = 0;
    let mut peers = Vec::new();
    for mut case in cases {
        let before = case.state;
        let Some(recounted) = recount(calendar, &mut case) else {
            continue;
        };
        let correction = recounted
            .changes
            .iter()
            .any(|c| c.clock == DueClock::Correction)
            .then(|| {
                case.review
                    .corrections
                    .last()
                    .map(crate::flow::correction_pb)
            })
            .flatten();
        let commitment_due_date = recounted
            .changes
            .iter()
            .find(|c| c.clock == DueClock::Commitment)
            .map(|c| c.new.clone())
            .unwrap_or_default();
        let update = CaseUpdate {
            due_date: case.review.due_date.clone().unwrap_or_default(),
            clock_running: case.review.clock_running,
            working_days_left: crate::flow::frozen_days_left(&case),
            correction,
            commitment_due_date,
            ..Default::default()
        };
        let detail = format!(
            "dates counted again with the holiday calendar in force ({}): {}",
            recounted.calendar,
            describe(&recounted.changes)
        );
        tracing::info!(case = %case.case_no, calendar = %recounted.calendar, changes = %describe(&recounted.changes), "due dates recomputed");
        let body = EntryBody::DueRecomputed {
            changes: recounted.changes,
            calendar: recounted.calendar,
        };
        // The note keeps saying what the case waits for; the entry says
        // what moved.
        let note = case.note.clone();
        let change = Change::new(ctx.node_id(), detail, body)
            .note(note)
            .without_state()
            .send(Outgoing::Update(CaseEvent::DueRecomputed, Box::new(update)));
        if let Some(peer) = change::stage(ctx, &mut case, Some(before), change, &mut batch) {
            peers.push(peer);
        }
        batch.put_case(case);
        changed += 1;
        in_batch += 1;
        if in_batch == PER_COMMIT {
            ctx.store.commit(std::mem::take(&mut batch)).await?;
            in_batch = 0;
        }
    }
    if in_batch > 0 {
        ctx.store.commit(batch).await?;
    }
    // Remembered after the changes are durable; lost, the next start reads
    // the cases again and finds nothing to move.
    ctx.store.put_setting(CALENDAR_SETTING, &fingerprint)?;
    peers.sort();
    peers.dedup();
    for peer in peers {
        ctx.wake.send_to(peer.as_str());
    }
    if changed > 0 {
        tracing::info!(
            cases = changed,
            "due dates recomputed with the holiday calendar in force"
        );
    }
    Ok(changed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tongban_ledger::testing::sample_case;
    use tongban_ledger::{ClockRecord, ClockRun, CorrectionRecord};

    const Y2026: &str = r#"
trust_domain = "t"
[[county]]
code = "610702"
name = "汉台区"
endpoint = "https://a"
[[calendar]]
year = 2026
holidays = ["2026-09-25..2026-09-27", "2026-10-01..2026-10-07"]
workdays = ["2026-09-20", "2026-10-10"]
"#;

    fn cal2026() -> Calendar {
        tongban_core::Directory::from_toml_str(Y2026)
            .unwrap()
            .calendar
    }

    /// A home case accepted on `on` with 5 days, counted Monday to Friday.
    fn running(on: &str, due: &str) -> CaseRecord {
        let mut case = sample_case("a1", Side::Home, CaseState::UnderReview);
        case.review.clock_running = true;
        case.review.due_date = Some(due.into());
        let start = parse_date(on).unwrap();
        case.review.clock = Some(ClockRecord {
            days: 5,
            runs: vec![ClockRun {
                started: on.into(),
                paused: None,
            }],
            calendar: Calendar::default().identity(start, parse_date(due).unwrap()),
        });
        case
    }

    #[test]
    fn a_promise_counted_monday_to_friday_moves_once() {
        let mut case = running("2026-09-30", "2026-10-07");
        assert!(
            recount(&Calendar::default(), &mut case.clone()).is_none(),
            "the calendar it was counted with: no work"
        );
        let cal = cal2026();
        let done = recount(&cal, &mut case).expect("moved");
        assert_eq!(
            done.changes,
            [DueChange {
                clock: DueClock::Promise,
                old: "2026-10-07".into(),
                new: "2026-10-13".into(),
            }]
        );
        assert!(done.calendar.starts_with("2026:"), "{}", done.calendar);
        assert_eq!(case.review.due_date.as_deref(), Some("2026-10-13"));
        assert!(recount(&cal, &mut case).is_none(), "counted: nothing again");
    }

    #[test]
    fn a_paused_clock_and_its_correction_deadline_are_counted_again() {
        let mon_fri = Calendar::default();
        let mut case = running("2026-09-24", "2026-10-01");
        case.state = CaseState::CorrectionRequested;
        let today = parse_date("2026-09-29").unwrap();
        crate::flow::pause_clock(&mon_fri, &mut case, today);
        assert_eq!(case.review.paused_days_left, Some(2));
        let deadline = mon_fri.add_working_days(today, 5);
        case.review.corrections.push(CorrectionRecord {
            deadline: format_date(deadline),
            count: Some(crate::flow::count(&mon_fri, today, 5, deadline)),
            ..CorrectionRecord::default()
        });
        let done = recount(&cal2026(), &mut case).expect("moved");
        assert_eq!(
            done.changes,
            [
                DueChange {
                    clock: DueClock::PausedPromise,
                    old: "2".into(),
                    new: "3".into(),
                },
                DueChange {
                    clock: DueClock::Correction,
                    old: "2026-10-06".into(),
                    new: "2026-10-12".into(),
                },
            ]
        );
        // Resumed on the 30th with the calendar: 8, 9 and the 10th.
        let note =
            crate::flow::start_clock(&cal2026(), &mut case, parse_date("2026-09-30").unwrap(), 3);
        assert!(note.is_empty(), "{note}");
        assert_eq!(case.review.due_date.as_deref(), Some("2026-10-10"));
        assert!(recount(&cal2026(), &mut case).is_none());
    }

    #[test]
    fn a_commitment_deadline_is_counted_again_until_it_is_fulfilled() {
        let mon_fri = Calendar::default();
        let mut case = sample_case("a1", Side::Home, CaseState::HandedOff);
        let from = parse_date("2026-09-30").unwrap();
        let due = mon_fri.add_working_days(from, 3);
        case.commitment = Some(tongban_ledger::CommitmentRecord {
            signer: "张三".into(),
            kinds: vec!["premises-proof".into()],
            due_date: format_date(due),
            signed_at: "2026-09-30T02:00:00Z".into(),
            by: "clerk".into(),
            fulfilled_at: None,
            count: Some(crate::flow::count(&mon_fri, from, 3, due)),
        });
        let mut fulfilled = case.clone();
        let done = recount(&cal2026(), &mut case).expect("moved");
        assert_eq!(
            done.changes,
            [DueChange {
                clock: DueClock::Commitment,
                old: "2026-10-05".into(),
                new: "2026-10-10".into(),
            }]
        );
        if let Some(k) = fulfilled.commitment.as_mut() {
            k.fulfilled_at = Some("2026-10-01T00:00:00Z".into());
        }
        assert!(recount(&cal2026(), &mut fulfilled).is_none(), "fulfilled");
    }

    #[test]
    fn decided_and_window_cases_are_left_alone() {
        let mut case = running("2026-09-30", "2026-10-07");
        crate::flow::stop_clock(&cal2026(), &mut case, time::macros::date!(2026 - 10 - 01));
        assert!(recount(&cal2026(), &mut case).is_none(), "stopped");
        let mut window = running("2026-09-30", "2026-10-07");
        window.side = Side::Window;
        assert!(
            recount(&cal2026(), &mut window).is_none(),
            "the home's to count"
        );
    }
}
