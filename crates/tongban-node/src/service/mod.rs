//! The gRPC service implementations, one module per service, and the
//! steps and checks several of them share (hand-out, parked-handoff retry,
//! overdue lists, the state a step needs, the case's item, reading a
//! material back).

mod audit;
mod federation;
mod mail;
mod material;
mod overdue;
mod paging;
mod review;
mod window;

use tongban_core::{CaseState, DeliveryMode};
use tongban_ledger::{CaseRecord, Side};
use tongban_pki::Identity;
use tongban_proto::common::v1::CaseView;

pub(crate) use audit::AuditService;
pub(crate) use federation::FederationService;
pub(crate) use mail::MailService;
pub(crate) use mail::record_event as record_carrier_event;
pub(crate) use overdue::{overdue, overdue_count};
pub(crate) use review::ReviewService;
pub(crate) use window::WindowService;

use crate::NodeError;
use crate::change::{self, Change, Outgoing};
use crate::ctx::Ctx;
use crate::flow;
use crate::requests::Ticket;

/// Puts the case's parked outbox entries back in the queue, recording who
/// did so, and wakes the courier. Refused if none are parked.
pub(crate) async fn retry_parked(
    ctx: &Ctx,
    case: &mut CaseRecord,
    who: &Identity,
    request: &Ticket,
) -> Result<CaseView, NodeError> {
    let parked: Vec<_> = ctx
        .store
        .outbox()?
        .into_iter()
        .filter(|(_, e, _)| e.application_id == case.application_id && e.parked.is_some())
        .collect();
    if parked.is_empty() {
        return Err(NodeError::refused(
            tongban_core::Refusal::new(tongban_core::Reason::RetryNoneParked, Vec::new()),
            format!("case {} has no parked handoff", case.case_no),
        ));
    }
    let mut batch = tongban_ledger::Batch::default();
    let mut reasons = Vec::new();
    let mut handoff_ids = Vec::new();
    let mut partners = std::collections::BTreeSet::new();
    for (key, entry, _) in parked {
        partners.insert(entry.to.clone());
        handoff_ids.push(entry.handoff_id.clone());
        reasons.push(format!(
            "{} ({})",
            entry.handoff_id,
            entry.parked.clone().unwrap_or_default()
        ));
        let mut retried = entry;
        retried.parked = None;
        batch.update_outbox(key, retried);
    }
    let detail = format!("parked handoff(s) queued again: {}", reasons.join("; "));
    let body = tongban_ledger::EntryBody::HandoffRetried { handoff_ids };
    let change = Change::new(who.spiffe_id(), detail, body);
    let view = change::save(ctx, case, change, batch, request, |v| v).await?;
    for to in &partners {
        ctx.wake.send_to(to.as_str());
    }
    Ok(view)
}

/// A case taken in at the window and not yet accepted.
pub(crate) const AT_INTAKE: [CaseState; 2] =
    [CaseState::CorrectionAtWindow, CaseState::ReadyAtWindow];

/// A case accepted at the window whose decision is not yet made.
pub(crate) const AWAITING_DECISION: [CaseState; 4] = [
    CaseState::Queued,
    CaseState::HandedOff,
    CaseState::UnderReview,
    CaseState::CorrectionRequested,
];

/// Refuses a step unless the case is in one of `allowed`:
/// `case N is STATE; {rule}`, the rule saying when the step is taken.
pub(crate) fn in_state(
    case: &CaseRecord,
    allowed: &[CaseState],
    rule: &str,
) -> Result<(), NodeError> {
    if allowed.contains(&case.state) {
        return Ok(());
    }
    Err(NodeError::refused(
        tongban_core::Refusal::new(
            tongban_core::Reason::StateNotAllowed,
            vec![("state", case.state.as_str().to_owned())],
        ),
        format!("case {} is {}; {rule}", case.case_no, case.state),
    ))
}

/// The catalogue's entry for the case's item, which a step needs; refused
/// if the directory no longer lists it.
pub(crate) fn item_of<'a>(
    ctx: &'a Ctx,
    case: &CaseRecord,
) -> Result<&'a tongban_core::Item, NodeError> {
    ctx.directory.item(&case.item_code).ok_or_else(|| {
        NodeError::refused(
            tongban_core::Refusal::new(
                tongban_core::Reason::ItemWithdrawn,
                vec![("item", case.item_code.to_string())],
            ),
            format!("item {} is no longer in the catalogue", case.item_code),
        )
    })
}

/// Whether the case's item is taken in by video consultation with the
/// home authority (异地视频会商).
pub(crate) fn by_video(ctx: &Ctx, case: &CaseRecord) -> bool {
    ctx.directory
        .item(&case.item_code)
        .is_some_and(|i| i.intake == tongban_core::IntakeMode::VideoConsultation)
}

/// Every state of a case that is not finished.
/// A denied case is open until its written denial is delivered.
pub(crate) const OPEN_STATES: [CaseState; 11] = [
    CaseState::CorrectionAtWindow,
    CaseState::ReadyAtWindow,
    CaseState::Queued,
    CaseState::HandedOff,
    CaseState::UnderReview,
    CaseState::CorrectionRequested,
    CaseState::Approved,
    CaseState::Denied,
    CaseState::ResultInTransit,
    CaseState::ReadyForPickup,
    CaseState::MailReturned,
];

/// Hands the result (or the written denial) to the applicant (or the
/// company's legal representative) and closes the case: at the window for
/// results mailed to it, at home for collection there.
pub(crate) async fn hand_out(
    ctx: &Ctx,
    case: &mut CaseRecord,
    recipient_id: &str,
    who: &Identity,
    request: &Ticket,
) -> Result<CaseView, NodeError> {
    let recipient = crate::validate::text(
        "recipient_id",
        "recipient id",
        recipient_id,
        crate::validate::SHORT_CHARS,
    )?
    .to_uppercase();
    let here = match case.side {
        Side::Window => {
            case.state == CaseState::ReadyForPickup && case.delivery == DeliveryMode::MailWindow
        }
        Side::Home => {
            (matches!(case.state, CaseState::ReadyForPickup | CaseState::Denied)
                && case.delivery == DeliveryMode::CollectHome)
                || case.state == CaseState::MailReturned
        }
    };
    if !here {
        let place = match case.side {
            Side::Window => "at the receiving window (delivery mail-window, result arrived)",
            Side::Home => "at the home authority (delivery collect-home, or a returned result)",
        };
        let side = match case.side {
            Side::Window => "window",
            Side::Home => "home",
        };
        return Err(NodeError::refused(
            tongban_core::Refusal::new(
                tongban_core::Reason::HandoutNotHere,
                vec![
                    ("state", case.state.as_str().to_owned()),
                    ("delivery", case.delivery.as_str().to_owned()),
                    ("side", side.to_owned()),
                ],
            ),
            format!(
                "case {} is {} with delivery {}; results are handed out {place} when READY_FOR_PICKUP (a denial collected at home: when DENIED)",
                case.case_no, case.state, case.delivery
            ),
        ));
    }
    let collectors: Vec<&str> = match &case.applicant {
        tongban_ledger::ApplicantRecord::Person { resident_id, .. } => vec![resident_id.as_str()],
        tongban_ledger::ApplicantRecord::Company { legal_rep_id, .. } => {
            vec![legal_rep_id.as_str()]
        }
    };
    if !collectors.contains(&recipient.as_str()) {
        tracing::warn!(case = %case.case_no, recipient = %tongban_core::mask_id(&recipient), "hand-out refused: id does not match");
        let masked = tongban_core::mask_id(&recipient);
        return Err(NodeError::refused(
            tongban_core::Refusal::new(
                tongban_core::Reason::RecipientMismatch,
                vec![("id", masked.clone())],
            )
            .at("recipient_id"),
            format!(
                "ID {masked} is not the applicant's (or the company's legal representative's); the result is not handed out"
            ),
        ));
    }
    let what = if case.state == CaseState::Denied {
        "written denial"
    } else {
        "result"
    };
    if case.state == CaseState::MailReturned {
        flow::move_to(case, CaseState::ReadyForPickup)?;
    }
    flow::move_to(case, CaseState::Closed)?;
    let now = ctx.clock.now_rfc3339();
    case.closed_at = Some(now);
    let detail = format!(
        "{what} handed out to {} and case closed",
        tongban_core::mask_id(&recipient)
    );
    let body = tongban_ledger::EntryBody::CaseClosed {
        recipient: tongban_core::mask_id(&recipient),
    };
    let update = tongban_proto::federation::v1::CaseUpdate::default();
    let change = Change::new(who.spiffe_id(), detail, body).send(Outgoing::Update(
        tongban_core::CaseEvent::Closed,
        Box::new(update),
    ));
    let batch = tongban_ledger::Batch::default();
    change::save(ctx, case, change, batch, request, |v| v).await
}
