//! How a change to a case is made durable and told to the other county.
//!
//! Every change at one node is one commit: the case record, its ledger
//! entry and (when the other node must mirror it) an outbox entry carrying a
//! `CaseUpdate`, which travels through the same courier, signed receipts and
//! deduplication as the first handoff. [`mirror`] is the receiving side.

use prost::Message;
use time::Date;
use tongban_core::{CaseState, add_working_days, working_days_between};
use tongban_ledger::{
    Batch, CaseRecord, CorrectionRecord, MailEventRecord, MailLegRecord, NewEntry, OutboxEntry,
};
use tongban_proto::common::v1 as pb;
use tongban_proto::federation::v1::{CaseUpdate, Envelope, envelope::Body};

use crate::protocol::FORMAT_VERSION;
use crate::service::Ctx;
use crate::{NodeError, view};

/// What one change writes besides the case record.
pub(crate) struct Change {
    /// SPIFFE ID of who made it.
    pub(crate) actor: String,
    /// Ledger entry kind.
    pub(crate) kind: &'static str,
    /// Human detail (personal data masked).
    pub(crate) detail: String,
    /// Structured payload fields.
    pub(crate) fields: serde_json::Value,
    /// The update the other node mirrors, if any.
    pub(crate) report: Option<CaseUpdate>,
}

/// The county at the other end of a case.
pub(crate) fn peer_of(ctx: &Ctx, case: &CaseRecord) -> String {
    if case.receiving_county == ctx.county.as_str() {
        case.home_county.clone()
    } else {
        case.receiving_county.clone()
    }
}

/// An outbox entry carrying `body` (with `materials`) to the other county.
pub(crate) fn outbox_entry(
    ctx: &Ctx,
    case: &CaseRecord,
    actor: &str,
    kind: &str,
    body: Body,
    materials: Vec<tongban_ledger::MaterialRef>,
) -> OutboxEntry {
    let handoff_id = uuid::Uuid::now_v7().to_string();
    let envelope = Envelope {
        version: FORMAT_VERSION,
        handoff_id: handoff_id.clone(),
        application_id: case.application_id.clone(),
        case_no: case.case_no.clone(),
        receiving_county: case.receiving_county.clone(),
        home_county: case.home_county.clone(),
        sent_at: ctx.clock.now_rfc3339(),
        actor: actor.to_owned(),
        body: Some(body),
        materials: materials.iter().map(view::header).collect(),
    }
    .encode_to_vec();
    OutboxEntry {
        handoff_id,
        application_id: case.application_id.clone(),
        to: peer_of(ctx, case),
        envelope,
        kind: kind.to_owned(),
        materials,
        parked: None,
    }
}

/// Writes `case` with its ledger entry and, if the change has a report, the
/// outbox entry to the other county; flushes; wakes the courier.
pub(crate) async fn save(
    ctx: &Ctx,
    case: &mut CaseRecord,
    change: Change,
    mut batch: Batch,
) -> Result<(), NodeError> {
    let mut fields = change.fields;
    if !change.detail.is_empty() {
        case.note = change.detail.clone();
    }
    let reported = change.report.is_some();
    if let Some(mut update) = change.report {
        // Only a step that moved the case reports a state (see `mirror`).
        let before = ctx.store.case(&case.application_id)?.map(|c| c.state);
        update.state = if before == Some(case.state) {
            String::new()
        } else {
            case.state.as_str().to_owned()
        };
        update.detail = change.detail.clone();
        let entry = outbox_entry(
            ctx,
            case,
            &change.actor,
            "update",
            Body::Update(update),
            Vec::new(),
        );
        // The sender's side of the handoff, for auditors to match with the
        // receiver's receipt.
        if let serde_json::Value::Object(map) = &mut fields {
            map.insert("handoff_id".into(), entry.handoff_id.clone().into());
            map.insert(
                "envelope_sha256".into(),
                envelope_sha(&entry.envelope).into(),
            );
            map.insert("to".into(), entry.to.clone().into());
        }
        case.handoffs.push(tongban_ledger::HandoffRecord {
            handoff_id: entry.handoff_id.clone(),
            kind: "update".into(),
            peer: entry.to.clone(),
            sent: true,
            receipt_seq: None,
        });
        batch.enqueue(entry);
    }
    batch.put_case(case.clone()).append(NewEntry {
        application_id: case.application_id.clone(),
        case_no: case.case_no.clone(),
        actor: change.actor,
        kind: change.kind.into(),
        state: Some(case.state),
        payload: view::payload(change.detail, fields),
    });
    ctx.store.commit(batch).await?;
    if reported {
        ctx.wake.notify_one();
    }
    Ok(())
}

/// Lowercase hex SHA-256 of an envelope.
pub(crate) fn envelope_sha(envelope: &[u8]) -> String {
    use sha2::Digest;
    tongban_ledger::records::hex(&sha2::Sha256::digest(envelope))
}

/// Moves a case to `next`, refusing moves the state machine does not allow.
pub(crate) fn move_to(case: &mut CaseRecord, next: CaseState) -> Result<(), NodeError> {
    case.state = case
        .state
        .move_to(next)
        .map_err(|e| NodeError::Precondition(format!("case {}: {e}", case.case_no)))?;
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
pub(crate) fn days_left(case: &CaseRecord, today: Date) -> Option<i64> {
    let due = parse_date(case.review.due_date.as_deref()?)?;
    Some(working_days_between(today, due))
}

/// Starts (or resumes) the promised-time clock with `days` working days.
pub(crate) fn start_clock(case: &mut CaseRecord, today: Date, days: i64) {
    let due = add_working_days(today, days.max(0) as u32);
    case.review.due_date = Some(format_date(due));
    case.review.clock_running = true;
    case.review.paused_days_left = None;
}

/// Pauses the clock, remembering the working days that were left.
pub(crate) fn pause_clock(case: &mut CaseRecord, today: Date) {
    if case.review.clock_running {
        case.review.paused_days_left = days_left(case, today);
    }
    case.review.clock_running = false;
    case.review.due_date = None;
}

/// Stops the clock for good (a decision was made).
pub(crate) fn stop_clock(case: &mut CaseRecord) {
    case.review.clock_running = false;
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
        leg: m.leg.clone(),
        carrier: m.carrier.clone(),
        waybill: m.waybill.clone(),
        sent_at: m.sent_at.clone(),
        status: m.status.clone(),
        events: m
            .events
            .iter()
            .map(|e| pb::MailEvent {
                status: e.status.clone(),
                at: e.at.clone(),
                note: e.note.clone(),
            })
            .collect(),
        to: m.to.clone(),
    }
}

fn mail_leg_record(m: &pb::MailLeg) -> MailLegRecord {
    MailLegRecord {
        leg: m.leg.clone(),
        carrier: m.carrier.clone(),
        waybill: m.waybill.clone(),
        to: m.to.clone(),
        sent_at: m.sent_at.clone(),
        status: m.status.clone(),
        events: m
            .events
            .iter()
            .map(|e| MailEventRecord {
                status: e.status.clone(),
                at: e.at.clone(),
                note: e.note.clone(),
            })
            .collect(),
    }
}

/// Applies an update from the other node to this node's copy of the case.
/// Returns the waybill to index, if the update carries a mail leg.
pub(crate) fn mirror(
    case: &mut CaseRecord,
    update: &CaseUpdate,
    at: &str,
) -> Result<Option<String>, NodeError> {
    // An empty state means the step did not move the case at the sender
    // (a paper-originals leg, paper received): this node keeps its own,
    // which may be newer. A state that is set reports a move the sender made
    // and is authoritative for.
    if !update.state.is_empty() {
        let state: CaseState = update
            .state
            .parse()
            .map_err(|e| NodeError::Invalid(format!("update state: {e}")))?;
        if state != case.state && !case.state.can_move_to(state) {
            // Several steps at once (e.g. approved and ready for pickup):
            // allowed, but worth a line in the log.
            tracing::info!(case = %case.case_no, from = %case.state, to = %state, event = %update.event, "mirrored state jump");
        }
        case.state = state;
    }
    if !update.detail.is_empty() {
        case.note = update.detail.clone();
    }
    if !update.due_date.is_empty() {
        case.review.due_date = Some(update.due_date.clone());
    }
    case.review.clock_running = update.clock_running;
    if !update.clock_running && update.due_date.is_empty() {
        case.review.due_date = None;
    }
    let mut waybill = None;
    match update.event.as_str() {
        "review.accepted" => case.review.accepted_at = Some(at.to_owned()),
        "review.correction-requested" => {
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
            });
        }
        "review.paper-received" => {
            case.review.paper_received_at = Some(update.paper_received_at.clone())
        }
        "review.approved" => {
            case.review.licence_no = update.licence_no.clone();
            case.review.result = update.result.as_ref().map(|r| tongban_ledger::MaterialRef {
                kind: r.kind.clone(),
                filename: r.filename.clone(),
                size: r.size,
                sha256: tongban_ledger::records::hex(&r.sha256),
                // The content stays at the home authority.
                log: None,
            });
        }
        "review.denied" => case.review.denial_reason = update.reason.clone(),
        "mail.sent" | "mail.event" => {
            let leg = update
                .mail
                .as_ref()
                .ok_or_else(|| NodeError::Invalid("mail update without its leg".into()))?;
            let record = mail_leg_record(leg);
            waybill = Some(record.waybill.clone());
            match case.mail.iter_mut().find(|m| m.waybill == record.waybill) {
                Some(existing) => *existing = record,
                None => case.mail.push(record),
            }
        }
        "case.closed" => case.closed_at = Some(at.to_owned()),
        _ => {}
    }
    Ok(waybill)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tongban_ledger::{ApplicantRecord, Side};
    use tongban_proto::common::v1::MailLeg;

    fn case(state: CaseState) -> CaseRecord {
        CaseRecord {
            application_id: "a".into(),
            case_no: "610702-20261125-1".into(),
            side: Side::Home,
            item_code: "GT-0001".into(),
            receiving_county: "610702".into(),
            home_county: "610113".into(),
            delivery: "mail-applicant".into(),
            applicant: ApplicantRecord::Person {
                name: "n".into(),
                resident_id: "11010519491231002X".into(),
                phone: "13812345678".into(),
                address: "a".into(),
            },
            materials: Vec::new(),
            identity_check: None,
            state,
            created_at: String::new(),
            accepted_at: None,
            note: String::new(),
            handoffs: Vec::new(),
            review: Default::default(),
            mail: Vec::new(),
            closed_at: None,
        }
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
                ..Default::default()
            }),
            ..Default::default()
        };
        let waybill = mirror(&mut c, &update, "2026-11-25T00:00:00Z").unwrap();
        assert_eq!(c.state, CaseState::UnderReview);
        assert_eq!(waybill.as_deref(), Some("EA473124829CN"));
        assert_eq!(c.mail.len(), 1, "the leg itself is recorded");
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
        mirror(&mut c, &update, "2026-11-25T00:00:00Z").unwrap();
        assert_eq!(c.state, CaseState::ReadyForPickup);
        assert_eq!(c.review.licence_no, "L-1");
    }
}
