//! The promised-time clock of a case (start, pause, days left), the wire
//! forms of its corrections and mail legs, and [`mirror`]: how a step the
//! other node reports is applied to this node's copy of the case.

use time::Date;
use tongban_core::{Calendar, CaseEvent, CaseState, Side};
use tongban_ledger::{
    CaseRecord, ClockRecord, ClockRun, CorrectionRecord, Count, MailEventRecord, MailLegRecord,
};
use tongban_proto::common::v1 as pb;
use tongban_proto::federation::v1::CaseUpdate;

use crate::NodeError;

/// Moves a case to `next`, refusing moves the state machine does not allow.
pub(crate) fn move_to(case: &mut CaseRecord, next: CaseState) -> Result<(), NodeError> {
    case.state = case
        .state
        .move_to(next)
        .map_err(|e| NodeError::refused((&e).into(), format!("case {}: {e}", case.case_no)))?;
    Ok(())
}

/// Parses a stored `YYYY-MM-DD`.
pub(crate) fn parse_date(text: &str) -> Option<Date> {
    Date::parse(
        text,
        time::macros::format_description!("[year]-[month]-[day]"),
    )
    .ok()
}

/// Formats `YYYY-MM-DD`.
pub(crate) fn format_date(date: Date) -> String {
    date.format(time::macros::format_description!("[year]-[month]-[day]"))
        .unwrap_or_default()
}

/// Working days from `today` to the due date (negative when overdue).
pub(crate) fn days_left(calendar: &Calendar, case: &CaseRecord, today: Date) -> Option<i64> {
    let due = parse_date(case.review.due_date.as_deref()?)?;
    Some(calendar.working_days_between(today, due))
}

/// Starts (or resumes) the promised-time clock with `days` working days.
/// Returns what to append to the change's detail: empty, or a note that the
/// due date was counted Monday to Friday for lack of a holiday calendar.
#[must_use]
pub(crate) fn start_clock(
    calendar: &Calendar,
    case: &mut CaseRecord,
    today: Date,
    days: i64,
) -> String {
    let days = u32::try_from(days.max(0)).unwrap_or(u32::MAX);
    let due = calendar.add_working_days(today, days);
    case.review.due_date = Some(format_date(due));
    case.review.clock_running = true;
    case.review.paused_days_left = None;
    // A resumption adds a run to the clock it resumes; a clock paused
    // before clocks were recorded starts its record here, with the days
    // it had left, which is all a recount needs.
    let clock = case.review.clock.get_or_insert_with(|| ClockRecord {
        days,
        ..ClockRecord::default()
    });
    clock.runs.push(ClockRun {
        started: format_date(today),
        paused: None,
    });
    let first = clock
        .runs
        .first()
        .and_then(|r| parse_date(&r.started))
        .unwrap_or(today);
    clock.calendar = calendar.identity(first, due);
    calendar_note(calendar, "due date", today, due)
}

/// How a date counted now as `days` working days after `today` was
/// counted, to keep beside it.
pub(crate) fn count(calendar: &Calendar, today: Date, days: u32, due: Date) -> Count {
    Count {
        from: format_date(today),
        days,
        calendar: calendar.identity(today, due),
    }
}

/// `"; due date computed without a holiday calendar for 2027 (monday to
/// friday)"` when some day in `(from, to]` is in a year the directory has no
/// calendar for; empty otherwise. `what` names the date computed.
pub(crate) fn calendar_note(calendar: &Calendar, what: &str, from: Date, to: Date) -> String {
    let years: Vec<String> = calendar
        .uncovered_years(from, to)
        .iter()
        .map(i32::to_string)
        .collect();
    if years.is_empty() {
        String::new()
    } else {
        format!(
            "; {what} computed without a holiday calendar for {} (monday to friday)",
            years.join(", ")
        )
    }
}

/// Pauses the clock, remembering the working days that were left.
pub(crate) fn pause_clock(calendar: &Calendar, case: &mut CaseRecord, today: Date) {
    if case.review.clock_running {
        case.review.paused_days_left = days_left(calendar, case, today);
        if let Some(clock) = case.review.clock.as_mut()
            && let Some(run) = clock.runs.last_mut()
        {
            run.paused = Some(format_date(today));
            let first = clock
                .runs
                .first()
                .and_then(|r| parse_date(&r.started))
                .unwrap_or(today);
            clock.calendar = calendar.identity(first, today);
        }
    }
    case.review.clock_running = false;
    case.review.due_date = None;
}

/// Stops the clock for good (a decision was made): nothing of it is
/// counted again, and the working days left are frozen at what they were
/// on `today` (承诺时限 ends with the decision). A clock already paused for
/// a correction keeps the days it had left when it paused.
pub(crate) fn stop_clock(calendar: &Calendar, case: &mut CaseRecord, today: Date) {
    if case.review.clock_running {
        case.review.paused_days_left = days_left(calendar, case, today);
    }
    case.review.clock_running = false;
    case.review.clock = None;
}

/// The working days left as a stopped or paused clock holds them, for the
/// case's view and for the other node (`CaseUpdate.working_days_left`);
/// None while the clock runs (they are counted from the due date then).
pub(crate) fn frozen_days_left(case: &CaseRecord) -> Option<i32> {
    if case.review.clock_running {
        return None;
    }
    case.review.paused_days_left.map(wire_days)
}

/// A count of working days as the wire's `int32` carries it (saturating:
/// no real promise comes near the limits).
fn wire_days(d: i64) -> i32 {
    i32::try_from(d).unwrap_or(if d < 0 { i32::MIN } else { i32::MAX })
}

/// Working days left as the case's view shows them: counted from the due
/// date while the clock runs, the frozen count otherwise.
pub(crate) fn shown_days_left(calendar: &Calendar, case: &CaseRecord, today: Date) -> i32 {
    if case.review.clock_running {
        days_left(calendar, case, today)
            .map(wire_days)
            .unwrap_or_default()
    } else {
        frozen_days_left(case).unwrap_or_default()
    }
}

pub(crate) fn correction_pb(c: &CorrectionRecord) -> pb::Correction {
    pb::Correction {
        needs: c
            .needs
            .iter()
            .map(|(kind, reason)| pb::CorrectionNeed {
                kind: kind.clone(),
                reason: reason.clone(),
            })
            .collect(),
        deadline: c.deadline.clone(),
        requested_at: c.requested_at.clone(),
        answered_at: c.answered_at.clone().unwrap_or_default(),
    }
}

pub(crate) fn mail_leg_pb(m: &MailLegRecord) -> pb::MailLeg {
    pb::MailLeg {
        leg: m.leg.to_string(),
        carrier: m.carrier.clone(),
        waybill: m.waybill.clone(),
        sent_at: m.sent_at.clone(),
        status: m.status.to_string(),
        events: m
            .events
            .iter()
            .map(|e| pb::MailEvent {
                status: e.status.to_string(),
                at: e.at.clone(),
                note: e.note.clone(),
            })
            .collect(),
        to: m.to.to_string(),
    }
}

/// A mail leg the other node reports, parsed: every name must be one this
/// node knows.
fn mail_leg_record(m: &pb::MailLeg) -> Result<MailLegRecord, NodeError> {
    let invalid = |e: tongban_core::UnknownValue| NodeError::Invalid(format!("mail leg: {e}"));
    let waybill = tongban_core::Waybill::parse(&m.waybill)
        .map_err(|e| NodeError::Invalid(format!("mail leg: {e}")))?;
    Ok(MailLegRecord {
        leg: m.leg.parse().map_err(invalid)?,
        carrier: m.carrier.clone(),
        waybill: waybill.to_string(),
        to: m.to.parse().map_err(invalid)?,
        sent_at: m.sent_at.clone(),
        status: m.status.parse().map_err(invalid)?,
        events: m
            .events
            .iter()
            .map(|e| {
                Ok(MailEventRecord {
                    status: e.status.parse().map_err(invalid)?,
                    at: e.at.clone(),
                    note: e.note.clone(),
                })
            })
            .collect::<Result<_, NodeError>>()?,
    })
}

/// Takes the home's clock from its update: the due date (kept after the
/// decision, which stops the clock but does not change what was promised),
/// whether the clock runs, and the count of a paused or stopped clock.
fn mirror_clock(case: &mut CaseRecord, update: &CaseUpdate) -> Result<(), NodeError> {
    if !update.due_date.is_empty() && parse_date(&update.due_date).is_none() {
        return Err(NodeError::Invalid(format!(
            "update due date {:?} is not a YYYY-MM-DD date",
            update.due_date
        )));
    }
    if update.due_date.is_empty() {
        // A clock paused for a correction has no due date until it runs
        // again; a running one always has one.
        if !update.clock_running {
            case.review.due_date = None;
        }
    } else {
        case.review.due_date = Some(update.due_date.clone());
    }
    case.review.clock_running = update.clock_running;
    // The home's count of a paused or stopped clock is shown as it is; an
    // update without one (an older sender, a step that did not touch the
    // clock) leaves this node's.
    if update.clock_running {
        case.review.paused_days_left = None;
    } else if let Some(left) = update.working_days_left {
        case.review.paused_days_left = Some(left.into());
    }
    Ok(())
}

/// Applies an update from the other node to this node's copy of the case.
/// Returns the waybill to index, if the update carries a mail leg.
pub(crate) fn mirror(
    case: &mut CaseRecord,
    event: CaseEvent,
    update: &CaseUpdate,
    at: &str,
) -> Result<Option<String>, NodeError> {
    // An empty state means the step did not move the case at the sender
    // (a paper-originals leg, paper received): this node keeps its own,
    // which may be newer. A state that is set reports a move the sender made
    // and is authoritative for.
    if !update.state.is_empty() {
        let state = CaseState::parse_wire(&update.state)
            .map_err(|e| NodeError::Invalid(format!("update state: {e}")))?;
        if state != case.state && !case.state.can_move_to(state) {
            // Several steps at once (e.g. approved and ready for pickup):
            // allowed, but worth a line in the log.
            tracing::info!(case = %case.case_no, from = %case.state, to = %state, %event, "mirrored state jump");
        }
        case.state = state;
    }
    // Dates counted again say nothing about the next step: the note stays
    // (the ledger entry of the update keeps what moved).
    if !update.detail.is_empty() && event != CaseEvent::DueRecomputed {
        case.note = update.detail.clone();
    }
    // The promise is the home authority's (承诺时限): only its updates say
    // how the clock stands. The window's reports (a materials leg, a
    // hand-out) carry the window's copy, which may be behind the home's,
    // and are not let move it.
    if case.side == Side::Window {
        mirror_clock(case, update)?;
    }
    let mut waybill = None;
    match event {
        CaseEvent::ReviewAccepted => case.review.accepted_at = Some(at.to_owned()),
        CaseEvent::CorrectionRequested => {
            let c = update
                .correction
                .as_ref()
                .ok_or_else(|| NodeError::Invalid("correction request without its needs".into()))?;
            case.review.corrections.push(CorrectionRecord {
                needs: c
                    .needs
                    .iter()
                    .map(|n| (n.kind.clone(), n.reason.clone()))
                    .collect(),
                deadline: c.deadline.clone(),
                requested_at: c.requested_at.clone(),
                answered_at: None,
                supplied: Vec::new(),
                count: None,
            });
        }
        // The state, clock and note above are all it changes here.
        CaseEvent::SupplementReceived => {}
        CaseEvent::PaperReceived => {
            case.review.paper_received_at = Some(update.paper_received_at.clone())
        }
        CaseEvent::Approved => {
            case.review.licence_no = update.licence_no.clone();
            // The document itself comes with the update's material and is
            // set where that is stored (`service::federation::apply`).
        }
        CaseEvent::Denied => case.review.denial_reason = update.reason.clone(),
        CaseEvent::MailSent | CaseEvent::MailEvent => {
            let leg = update
                .mail
                .as_ref()
                .ok_or_else(|| NodeError::Invalid("mail update without its leg".into()))?;
            let record = mail_leg_record(leg)?;
            waybill = Some(record.waybill.clone());
            match case.mail.iter_mut().find(|m| m.waybill == record.waybill) {
                Some(existing) => *existing = record,
                None => case.mail.push(record),
            }
        }
        CaseEvent::Closed => case.closed_at = Some(at.to_owned()),
        // The promise moved with the state and clock above; the open
        // correction and the commitment are matched to this node's own.
        CaseEvent::DueRecomputed => {
            if let Some(c) = &update.correction
                && let Some(open) = case
                    .review
                    .corrections
                    .iter_mut()
                    .find(|o| o.requested_at == c.requested_at)
            {
                if parse_date(&c.deadline).is_none() {
                    return Err(NodeError::Invalid(format!(
                        "recounted correction deadline {:?} is not a YYYY-MM-DD date",
                        c.deadline
                    )));
                }
                open.deadline = c.deadline.clone();
            }
            if !update.commitment_due_date.is_empty()
                && let Some(k) = case.commitment.as_mut()
            {
                if parse_date(&update.commitment_due_date).is_none() {
                    return Err(NodeError::Invalid(format!(
                        "recounted commitment deadline {:?} is not a YYYY-MM-DD date",
                        update.commitment_due_date
                    )));
                }
                k.due_date = update.commitment_due_date.clone();
            }
        }
    }
    Ok(waybill)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tongban_proto::common::v1::MailLeg;

    fn case(state: CaseState) -> CaseRecord {
        let mut case = tongban_ledger::testing::sample_case("a1", Side::Home, state);
        case.application_id = "a".into();
        case
    }

    #[test]
    fn a_late_materials_leg_does_not_set_the_home_state_back() {
        let mut c = case(CaseState::UnderReview);
        let update = CaseUpdate {
            event: "mail.sent".into(),
            // The window's leg did not move the case: it reports no state.
            state: String::new(),
            mail: Some(MailLeg {
                leg: "materials".into(),
                waybill: "EA473124829CN".into(),
                to: "home".into(),
                status: "posted".into(),
                ..Default::default()
            }),
            ..Default::default()
        };
        let waybill = mirror(&mut c, CaseEvent::MailSent, &update, "2026-11-25T00:00:00Z").unwrap();
        assert_eq!(c.state, CaseState::UnderReview);
        assert_eq!(waybill.as_deref(), Some("EA473124829CN"));
        assert_eq!(c.mail.len(), 1, "the leg itself is recorded");
    }

    #[test]
    fn the_window_s_reports_do_not_move_the_home_s_clock() {
        let mut c = case(CaseState::UnderReview);
        c.review.due_date = Some("2026-11-09".into());
        c.review.clock_running = true;
        // A materials leg mailed before the window heard of the
        // acceptance: its copy had no clock running and no due date.
        let update = CaseUpdate {
            event: "mail.sent".into(),
            mail: Some(MailLeg {
                leg: "materials".into(),
                waybill: "EA473124829CN".into(),
                to: "home".into(),
                status: "posted".into(),
                ..Default::default()
            }),
            clock_running: false,
            working_days_left: Some(-40),
            ..Default::default()
        };
        mirror(&mut c, CaseEvent::MailSent, &update, "2026-11-25T00:00:00Z").unwrap();
        assert!(c.review.clock_running);
        assert_eq!(c.review.due_date.as_deref(), Some("2026-11-09"));
        assert_eq!(c.review.paused_days_left, None);
    }

    #[test]
    fn the_window_keeps_the_due_date_the_decision_carries() {
        let mut c =
            tongban_ledger::testing::sample_case("a1", Side::Window, CaseState::UnderReview);
        c.review.due_date = Some("2026-11-09".into());
        c.review.clock_running = true;
        let update = CaseUpdate {
            event: "review.denied".into(),
            state: "DENIED".into(),
            reason: "r".into(),
            due_date: "2026-11-09".into(),
            clock_running: false,
            working_days_left: Some(-2),
            ..Default::default()
        };
        mirror(&mut c, CaseEvent::Denied, &update, "2026-11-25T00:00:00Z").unwrap();
        assert!(!c.review.clock_running);
        assert_eq!(c.review.due_date.as_deref(), Some("2026-11-09"));
        assert_eq!(c.review.paused_days_left, Some(-2));
        // Not a date: refused, whatever else the update says.
        let bad = CaseUpdate {
            due_date: "next week".into(),
            ..update
        };
        let err = mirror(&mut c, CaseEvent::Denied, &bad, "2026-11-25T00:00:00Z").unwrap_err();
        assert!(
            err.to_string()
                .contains("\"next week\" is not a YYYY-MM-DD date"),
            "{err}"
        );
    }

    #[test]
    fn a_decision_is_mirrored_even_across_several_steps() {
        let mut c = case(CaseState::UnderReview);
        let update = CaseUpdate {
            event: "review.approved".into(),
            state: "READY_FOR_PICKUP".into(),
            licence_no: "L-1".into(),
            ..Default::default()
        };
        mirror(&mut c, CaseEvent::Approved, &update, "2026-11-25T00:00:00Z").unwrap();
        assert_eq!(c.state, CaseState::ReadyForPickup);
        assert_eq!(c.review.licence_no, "L-1");
    }
}
