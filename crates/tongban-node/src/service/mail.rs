//! The mail service (两地专窗互相寄件, 邮寄送达): legs sent with checked
//! waybill numbers, and carrier events with their effect on the case. Clerks
//! and reviewers of this county (see `auth`). Carrier pushes over HTTPS end
//! up in [`record_event`] too.

use std::sync::Arc;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tongban_core::{
    CaseEvent, CaseState, DeliveryMode, MailLeg, MailStatus, MailTo, Reason, Refusal, Report,
    Waybill,
};
use tongban_ledger::{Batch, CaseRecord, EntryBody, MailEventRecord, MailLegRecord, Side};
use tongban_proto::common::v1::CaseView;
use tongban_proto::federation::v1::CaseUpdate;
use tongban_proto::mail::v1::mail_server::Mail;
use tongban_proto::mail::v1::{EventRequest, SendRequest};
use tonic::{Request, Response, Status};

use crate::change::{self, Change, Outgoing};
use crate::ctx::Ctx;
use crate::flow;
use crate::requests::{self, Ticket, go_or_replay};
use crate::service::{AWAITING_DECISION, in_state};
use crate::{NodeError, validate, view};

pub(crate) struct MailService {
    ctx: Arc<Ctx>,
}

impl MailService {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }
}

fn waybill(text: &str) -> Result<Waybill, NodeError> {
    Waybill::parse(text.trim()).map_err(|e| NodeError::at("waybill", "waybill", &e))
}

#[tonic::async_trait]
impl Mail for MailService {
    async fn send(&self, req: Request<SendRequest>) -> Result<Response<CaseView>, Status> {
        let ctx = &self.ctx;
        let (who, req, ticket) =
            go_or_replay!(requests::unary(ctx, req, "/tongban.mail.v1.Mail/Send").await?);
        let number = waybill(&req.waybill)?;
        if req.carrier.trim().is_empty() {
            return Err(NodeError::refused(
                Refusal::new(Reason::TextRequired, Vec::new()).at("carrier"),
                "carrier: name the carrier (e.g. EMS)",
            )
            .into());
        }
        let carrier = validate::text("carrier", "carrier", &req.carrier, validate::SHORT_CHARS)?;
        let carrier = carrier.as_str();
        let case_side = ctx.case(&req.case_no)?.side;
        let (_lock, mut case) = ctx.locked_case(&req.case_no, case_side).await?;
        if let Some(other) = ctx
            .store
            .waybill(number.as_str())
            .map_err(NodeError::from)?
        {
            let owner = ctx
                .store
                .case(&other)
                .map_err(NodeError::from)?
                .map(|c| c.case_no.to_string())
                .unwrap_or(other);
            return Err(NodeError::Conflict(format!(
                "waybill {number} is already used by case {owner}"
            ))
            .into());
        }
        let leg: MailLeg = req
            .leg
            .trim()
            .parse()
            .map_err(|e: tongban_core::UnknownValue| {
                NodeError::refused((&e).into(), e.to_string())
            })?;
        let to = match (leg, case.side) {
            (MailLeg::Materials, Side::Window) => {
                let paper = view::paper_kinds(&ctx.directory, &case);
                if paper.is_empty() {
                    return Err(NodeError::refused(
                        Refusal::new(
                            Reason::MailNoPaper,
                            vec![("item", case.item_code.to_string())],
                        )
                        .at("leg"),
                        format!("item {} has no paper originals to mail", case.item_code),
                    )
                    .into());
                }
                in_state(
                    &case,
                    &AWAITING_DECISION,
                    "paper originals are mailed after acceptance at the window and before the decision",
                )?;
                MailTo::Home
            }
            (MailLeg::Result, Side::Home) => {
                // The written denial is delivered like a result.
                in_state(
                    &case,
                    &[
                        CaseState::Approved,
                        CaseState::Denied,
                        CaseState::MailReturned,
                    ],
                    "a result is mailed once APPROVED or DENIED (or again after MAIL_RETURNED)",
                )?;
                match case.delivery {
                    DeliveryMode::MailApplicant => MailTo::Applicant,
                    DeliveryMode::MailWindow => MailTo::Window,
                    DeliveryMode::CollectHome => {
                        return Err(NodeError::refused(
                            Refusal::new(Reason::MailNoResultLeg, Vec::new()).at("leg"),
                            format!(
                                "case {} is collected at the home authority (collect-home): there is no result leg",
                                case.case_no
                            ),
                        )
                        .into());
                    }
                }
            }
            (MailLeg::Materials, Side::Home) => {
                return Err(NodeError::refused(
                    Refusal::new(Reason::MailWrongSide, vec![("leg", "materials".to_owned())])
                        .at("leg"),
                    "the materials leg is sent by the receiving window",
                )
                .into());
            }
            (MailLeg::Result, Side::Window) => {
                return Err(NodeError::refused(
                    Refusal::new(Reason::MailWrongSide, vec![("leg", "result".to_owned())])
                        .at("leg"),
                    "the result leg is sent by the home authority",
                )
                .into());
            }
        };
        let now = ctx.clock.now_rfc3339();
        let record = MailLegRecord {
            leg,
            carrier: carrier.to_owned(),
            waybill: number.to_string(),
            to,
            sent_at: now.clone(),
            status: MailStatus::Posted,
            events: vec![MailEventRecord {
                status: MailStatus::Posted,
                at: now,
                note: String::new(),
            }],
        };
        if leg == MailLeg::Result {
            flow::move_to(&mut case, CaseState::ResultInTransit)?;
        }
        case.mail.push(record.clone());
        let mut batch = Batch::default();
        batch.put_waybill(number.as_str(), &case.application_id);
        let update = CaseUpdate {
            mail: Some(flow::mail_leg_pb(&record)),
            due_date: case.review.due_date.clone().unwrap_or_default(),
            clock_running: case.review.clock_running,
            working_days_left: flow::frozen_days_left(&case),
            ..Default::default()
        };
        let detail = format!("{leg} leg mailed to {to} by {carrier}, waybill {number}");
        let body = EntryBody::MailSent {
            leg,
            carrier: carrier.to_owned(),
            waybill: number.to_string(),
            to,
        };
        let change = Change::new(who.spiffe_id(), detail, body)
            .send(Outgoing::Update(CaseEvent::MailSent, Box::new(update)));
        let view = change::save(ctx, &mut case, change, batch, &ticket, |v| v).await?;
        Ok(Response::new(view))
    }

    async fn event(&self, req: Request<EventRequest>) -> Result<Response<CaseView>, Status> {
        let ctx = &self.ctx;
        let (who, req, ticket) =
            go_or_replay!(requests::unary(ctx, req, "/tongban.mail.v1.Mail/Event").await?);
        let view = record_event(ctx, &req, &who.spiffe_id(), &ticket).await?;
        Ok(Response::new(view))
    }
}

/// Records a carrier event (from a person or a carrier push) and applies its
/// effect: a delivered result closes the case or makes it ready at the
/// window; a returned or lost result puts it in MAIL_RETURNED. The same event
/// (waybill, status, time) twice is recorded once. Returns the case's view.
pub(crate) async fn record_event(
    ctx: &Ctx,
    req: &EventRequest,
    actor: &str,
    request: &Ticket,
) -> Result<CaseView, NodeError> {
    let number = waybill(&req.waybill)?;
    let note = validate::optional_text("note", "note", &req.note, validate::NOTE_CHARS)?;
    let status: MailStatus = req
        .status
        .trim()
        .parse()
        .map_err(|e: tongban_core::UnknownValue| NodeError::refused((&e).into(), e.to_string()))?;
    let at = match req.at.trim() {
        "" => ctx.clock.now_rfc3339(),
        text => {
            let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
                NodeError::refused(
                    Refusal::new(Reason::TimeFormat, vec![("value", text.to_owned())]).at("at"),
                    format!("at: {text:?} is not an RFC 3339 time: {e}"),
                )
            })?;
            crate::clock::rfc3339(t)
        }
    };
    let id = ctx.store.waybill(number.as_str())?.ok_or_else(|| {
        NodeError::refused(
            Refusal::new(
                Reason::WaybillNotFound,
                vec![
                    ("waybill", number.to_string()),
                    ("county", ctx.county.to_string()),
                ],
            )
            .at("waybill"),
            format!(
                "waybill {number} is not known on the node of {}",
                ctx.county
            ),
        )
    })?;
    let _lock = ctx.locks.lock(&id).await;
    let mut case = ctx
        .store
        .case(&id)?
        .ok_or_else(|| NodeError::NotFound(format!("the case of waybill {number} is gone")))?;
    let leg_index = case
        .mail
        .iter()
        .position(|m| m.waybill == number.as_str())
        .ok_or_else(|| {
            NodeError::NotFound(format!(
                "waybill {number} has no leg on case {}",
                case.case_no
            ))
        })?;
    // Each leg's carrier events are its sending side's to record (the
    // addressee window may confirm a result's arrival): recorded here, they
    // would only be refused by the partner.
    let report = Report {
        event: CaseEvent::MailEvent,
        leg: Some(case.mail[leg_index].leg),
        state: None,
        status: Some(status),
    };
    report
        .may_report(case.side, case.state, case.delivery)
        .map_err(|e| match &e {
            tongban_core::AuthorityError::WrongSide { owner, .. } => NodeError::refused(
                Refusal::new(
                    Reason::MailEventWrongSide,
                    vec![
                        ("leg", case.mail[leg_index].leg.to_string()),
                        ("status", status.to_string()),
                        (
                            "owner",
                            match owner {
                                Side::Window => "window",
                                Side::Home => "home",
                            }
                            .to_owned(),
                        ),
                    ],
                )
                .at("status"),
                format!("waybill {number}: {e}"),
            ),
            _ => NodeError::NotPermitted(format!("waybill {number}: {e}")),
        })?;
    let leg = &mut case.mail[leg_index];
    if leg.events.iter().any(|e| e.status == status && e.at == at) {
        return view::case_view(ctx, &case, true);
    }
    refuse_past_its_end(&case, leg_index, status)?;
    let leg = &mut case.mail[leg_index];
    leg.events.push(MailEventRecord {
        status,
        at: at.clone(),
        note: note.clone(),
    });
    leg.status = status;
    let leg = leg.clone();
    let mut detail = format!("{} leg {number}: {status}", leg.leg);
    if leg.leg == MailLeg::Result && case.state == CaseState::ResultInTransit {
        match (status, leg.to) {
            (MailStatus::Delivered, MailTo::Applicant) => {
                flow::move_to(&mut case, CaseState::Closed)?;
                case.closed_at = Some(at.clone());
                detail.push_str("; delivered to the applicant, case closed");
            }
            (MailStatus::Delivered, _) => {
                flow::move_to(&mut case, CaseState::ReadyForPickup)?;
                detail.push_str("; at the receiving window, ready for hand-out");
            }
            (MailStatus::Returned | MailStatus::Lost, _) => {
                flow::move_to(&mut case, CaseState::MailReturned)?;
                detail.push_str(
                    "; next: send again with a new waybill (mail send --leg result) or hand out at the home authority (review handout)",
                );
            }
            // Not yet at its end: the case stays RESULT_IN_TRANSIT.
            (MailStatus::Posted | MailStatus::InTransit, _) => {}
        }
    } else if leg.leg == MailLeg::Materials && status == MailStatus::Delivered {
        detail.push_str("; the home authority confirms with paper-received");
    }
    let update = CaseUpdate {
        mail: Some(flow::mail_leg_pb(&leg)),
        due_date: case.review.due_date.clone().unwrap_or_default(),
        clock_running: case.review.clock_running,
        working_days_left: flow::frozen_days_left(&case),
        ..Default::default()
    };
    let body = EntryBody::MailEvent {
        waybill: number.to_string(),
        status,
        at,
        note,
    };
    let change = Change::new(actor, detail, body)
        .send(Outgoing::Update(CaseEvent::MailEvent, Box::new(update)));
    change::save(ctx, &mut case, change, Batch::default(), request, |v| v).await
}

/// Refuses a carrier event on a result leg whose end the case has already
/// taken: the case left RESULT_IN_TRANSIT (delivered, handed out, returned)
/// or a later result leg replaced this one. The same status again (the
/// addressee window and the carrier both saying delivered) changes nothing
/// and is recorded; another one would contradict what the case did.
fn refuse_past_its_end(
    case: &CaseRecord,
    leg_index: usize,
    status: MailStatus,
) -> Result<(), NodeError> {
    let leg = &case.mail[leg_index];
    if leg.leg != MailLeg::Result || status == leg.status {
        return Ok(());
    }
    let last = case.mail.iter().rposition(|m| m.leg == MailLeg::Result) == Some(leg_index);
    if last && case.state == CaseState::ResultInTransit {
        return Ok(());
    }
    Err(NodeError::refused(
        Refusal::new(
            Reason::MailEventState,
            vec![
                ("leg", leg.leg.to_string()),
                ("status", status.to_string()),
                ("current", leg.status.to_string()),
                ("state", case.state.as_str().to_owned()),
                ("waybill", leg.waybill.clone()),
                ("replaced", if last { "no" } else { "yes" }.to_owned()),
            ],
        )
        .at("status"),
        format!(
            "waybill {}: the result leg is {} and the case {}; a {status} event cannot be recorded on it",
            leg.waybill,
            leg.status,
            if last {
                format!("is {}", case.state.as_str())
            } else {
                "has a later result leg".to_owned()
            }
        ),
    ))
}
