//! The mail service (两地专窗互相寄件, 邮寄送达): legs sent with checked
//! waybill numbers, and carrier events with their effect on the case. Clerks
//! and reviewers of this county (see `auth`). Carrier pushes over HTTPS end
//! up in [`record_event`] too.

use std::sync::Arc;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tongban_core::{CaseState, Waybill};
use tongban_ledger::{Batch, CaseRecord, MailEventRecord, MailLegRecord, Side};
use tongban_proto::common::v1::CaseView;
use tongban_proto::federation::v1::CaseUpdate;
use tongban_proto::mail::v1::mail_server::Mail;
use tongban_proto::mail::v1::{EventRequest, SendRequest};
use tonic::{Request, Response, Status};

use crate::auth::caller;
use crate::ctx::Ctx;
use crate::flow::{self, Change};
use crate::{NodeError, view};

/// Statuses a carrier event may have.
pub(crate) const STATUSES: [&str; 5] = ["posted", "in-transit", "delivered", "returned", "lost"];

pub(crate) struct MailService {
    ctx: Arc<Ctx>,
}

impl MailService {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }
}

fn waybill(text: &str) -> Result<Waybill, NodeError> {
    Waybill::parse(text.trim()).map_err(|e| NodeError::Invalid(format!("waybill: {e}")))
}

#[tonic::async_trait]
impl Mail for MailService {
    async fn send(&self, req: Request<SendRequest>) -> Result<Response<CaseView>, Status> {
        let who = caller(&req)?;
        let ctx = &self.ctx;
        let req = req.into_inner();
        let number = waybill(&req.waybill)?;
        let carrier = req.carrier.trim();
        if carrier.is_empty() {
            return Err(NodeError::Invalid("carrier: name the carrier (e.g. EMS)".into()).into());
        }
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
                .map(|c| c.case_no)
                .unwrap_or(other);
            return Err(NodeError::Conflict(format!(
                "waybill {number} is already used by case {owner}"
            ))
            .into());
        }
        let to = match (req.leg.as_str(), case.side) {
            ("materials", Side::Window) => {
                let paper = view::paper_kinds(&ctx.directory, &case);
                if paper.is_empty() {
                    return Err(NodeError::Precondition(format!(
                        "item {} has no paper originals to mail",
                        case.item_code
                    ))
                    .into());
                }
                if !matches!(
                    case.state,
                    CaseState::Queued
                        | CaseState::HandedOff
                        | CaseState::UnderReview
                        | CaseState::CorrectionRequested
                ) {
                    return Err(NodeError::Precondition(format!(
                        "case {} is {}; paper originals are mailed after acceptance at the window and before the decision",
                        case.case_no, case.state
                    ))
                    .into());
                }
                "home"
            }
            ("result", Side::Home) => {
                if !matches!(case.state, CaseState::Approved | CaseState::MailReturned) {
                    return Err(NodeError::Precondition(format!(
                        "case {} is {}; a result is mailed once APPROVED (or again after MAIL_RETURNED)",
                        case.case_no, case.state
                    ))
                    .into());
                }
                match case.delivery.as_str() {
                    "mail-applicant" => "applicant",
                    "mail-window" => "window",
                    _ => {
                        return Err(NodeError::Precondition(format!(
                            "case {} is collected at the home authority (collect-home): there is no result leg",
                            case.case_no
                        ))
                        .into());
                    }
                }
            }
            ("materials", Side::Home) => {
                return Err(NodeError::Precondition(
                    "the materials leg is sent by the receiving window".into(),
                )
                .into());
            }
            ("result", Side::Window) => {
                return Err(NodeError::Precondition(
                    "the result leg is sent by the home authority".into(),
                )
                .into());
            }
            (other, _) => {
                return Err(NodeError::Invalid(format!(
                    "leg: {other:?} is not materials or result"
                ))
                .into());
            }
        };
        let now = ctx.clock.now_rfc3339();
        let leg = MailLegRecord {
            leg: req.leg.clone(),
            carrier: carrier.to_owned(),
            waybill: number.to_string(),
            to: to.to_owned(),
            sent_at: now.clone(),
            status: "posted".into(),
            events: vec![MailEventRecord {
                status: "posted".into(),
                at: now,
                note: String::new(),
            }],
        };
        if req.leg == "result" {
            flow::move_to(&mut case, CaseState::ResultInTransit)?;
        }
        case.mail.push(leg.clone());
        let mut batch = Batch::default();
        batch.put_waybill(number.as_str(), &case.application_id);
        let change = Change {
            actor: who.spiffe_id(),
            kind: "mail.sent",
            detail: format!(
                "{} leg mailed to {to} by {carrier}, waybill {number}",
                req.leg
            ),
            fields: serde_json::json!({"leg": req.leg, "carrier": carrier, "waybill": number.as_str(), "to": to}),
            report: Some(CaseUpdate {
                event: "mail.sent".into(),
                mail: Some(flow::mail_leg_pb(&leg)),
                due_date: case.review.due_date.clone().unwrap_or_default(),
                clock_running: case.review.clock_running,
                ..Default::default()
            }),
        };
        flow::save(ctx, &mut case, change, batch).await?;
        Ok(Response::new(view::case_view(ctx, &case, true)?))
    }

    async fn event(&self, req: Request<EventRequest>) -> Result<Response<CaseView>, Status> {
        let who = caller(&req)?;
        let req = req.into_inner();
        let case = record_event(&self.ctx, &req, &who.spiffe_id()).await?;
        Ok(Response::new(view::case_view(&self.ctx, &case, true)?))
    }
}

/// Records a carrier event (from a person or a carrier push) and applies its
/// effect: a delivered result closes the case or makes it ready at the
/// window; a returned or lost result puts it in MAIL_RETURNED. The same event
/// (waybill, status, time) twice is recorded once.
pub(crate) async fn record_event(
    ctx: &Ctx,
    req: &EventRequest,
    actor: &str,
) -> Result<CaseRecord, NodeError> {
    let number = waybill(&req.waybill)?;
    let status = req.status.trim();
    if !STATUSES.contains(&status) {
        return Err(NodeError::Invalid(format!(
            "status: {status:?} is not one of {}",
            STATUSES.join(", ")
        )));
    }
    let at = match req.at.trim() {
        "" => ctx.clock.now_rfc3339(),
        text => {
            let t = OffsetDateTime::parse(text, &Rfc3339).map_err(|e| {
                NodeError::Invalid(format!("at: {text:?} is not an RFC 3339 time: {e}"))
            })?;
            crate::clock::rfc3339(t)
        }
    };
    let id = ctx.store.waybill(number.as_str())?.ok_or_else(|| {
        NodeError::NotFound(format!(
            "waybill {number} is not known on the node of {}",
            ctx.county
        ))
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
    let leg = &mut case.mail[leg_index];
    if leg.events.iter().any(|e| e.status == status && e.at == at) {
        return Ok(case);
    }
    leg.events.push(MailEventRecord {
        status: status.to_owned(),
        at: at.clone(),
        note: req.note.trim().to_owned(),
    });
    leg.status = status.to_owned();
    let leg = leg.clone();
    let mut detail = format!("{} leg {number}: {status}", leg.leg);
    if leg.leg == "result" && case.state == CaseState::ResultInTransit {
        match (status, leg.to.as_str()) {
            ("delivered", "applicant") => {
                flow::move_to(&mut case, CaseState::Closed)?;
                case.closed_at = Some(at.clone());
                detail.push_str("; delivered to the applicant, case closed");
            }
            ("delivered", _) => {
                flow::move_to(&mut case, CaseState::ReadyForPickup)?;
                detail.push_str("; at the receiving window, ready for hand-out");
            }
            ("returned" | "lost", _) => {
                flow::move_to(&mut case, CaseState::MailReturned)?;
                detail.push_str(
                    "; next: send again with a new waybill (mail send --leg result) or hand out at the home authority (review handout)",
                );
            }
            _ => {}
        }
    } else if leg.leg == "materials" && status == "delivered" {
        detail.push_str("; the home authority confirms with paper-received");
    }
    let change = Change {
        actor: actor.to_owned(),
        kind: "mail.event",
        detail,
        fields: serde_json::json!({"waybill": number.as_str(), "status": status, "at": at, "note": req.note}),
        report: Some(CaseUpdate {
            event: "mail.event".into(),
            mail: Some(flow::mail_leg_pb(&leg)),
            due_date: case.review.due_date.clone().unwrap_or_default(),
            clock_running: case.review.clock_running,
            ..Default::default()
        }),
    };
    flow::save(ctx, &mut case, change, Batch::default()).await?;
    Ok(case)
}
