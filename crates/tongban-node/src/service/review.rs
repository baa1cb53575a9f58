//! The review service of the home authority (属地审批): inbox, acceptance
//! (受理, which starts the promised-time clock), one-time correction
//! requests (the clock pauses), paper originals, approval with the result
//! document, denial, hand-out at home and the overdue list. Reviewers of this
//! county only (see `auth`). Every change is reported to the receiving
//! window's node through the outbox.

use std::sync::Arc;

use tongban_core::{CaseEvent, CaseState, Reason, Refusal};
use tongban_ledger::{Batch, CaseRecord, CorrectionRecord, EntryBody, Side};
use tongban_proto::common::v1::{CaseView, Correction, CorrectionNeed};
use tongban_proto::federation::v1::CaseUpdate;
use tongban_proto::review::v1::review_server::Review;
use tongban_proto::review::v1::*;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::caller;
use crate::change::{self, Change, Outgoing};
use crate::ctx::Ctx;
use crate::flow;
use crate::ingest::Ingest;
use crate::locks::CaseGuard;
use crate::requests::{self, go_or_replay};
use crate::service::{in_state, item_of};
use crate::{NodeError, validate, view};

pub(crate) struct ReviewService {
    ctx: Arc<Ctx>,
}

impl ReviewService {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }

    async fn locked(&self, case_no: &str) -> Result<(CaseGuard, CaseRecord), NodeError> {
        self.ctx.locked_case(case_no, Side::Home).await
    }

    fn view(&self, case: &CaseRecord) -> Result<Response<CaseView>, Status> {
        Ok(Response::new(view::case_view(&self.ctx, case, true)?))
    }
}

/// Refuses `action` unless the case is in one of `allowed`, naming them.
fn require(case: &CaseRecord, allowed: &[CaseState], action: &str) -> Result<(), NodeError> {
    let names: Vec<&str> = allowed.iter().map(|s| s.as_str()).collect();
    in_state(
        case,
        allowed,
        &format!("{action} needs {}", names.join(" or ")),
    )
}

#[tonic::async_trait]
impl Review for ReviewService {
    async fn inbox(&self, req: Request<InboxRequest>) -> Result<Response<InboxReply>, Status> {
        let req = req.into_inner();
        // Oldest first, through the state index: only open cases of the
        // page are read.
        let page = super::paging::case_page(
            &self.ctx,
            Side::Home,
            &super::OPEN_STATES,
            false,
            super::paging::limit_or(req.limit, usize::MAX),
            &req.page_token,
        )?;
        Ok(Response::new(InboxReply {
            cases: page.cases,
            next_page_token: page.next,
        }))
    }

    async fn accept(&self, req: Request<CaseRef>) -> Result<Response<CaseView>, Status> {
        let ctx = &self.ctx;
        let (reviewer, req, ticket) =
            go_or_replay!(requests::unary(ctx, req, "/tongban.review.v1.Review/Accept").await?);
        let (_lock, mut case) = self.locked(&req.case_no).await?;
        require(&case, &[CaseState::HandedOff], "acceptance (受理)")?;
        let promised = ctx
            .directory
            .item(&case.item_code)
            .map(|i| i.promised_days)
            .unwrap_or_default();
        flow::move_to(&mut case, CaseState::UnderReview)?;
        case.review.accepted_at = Some(ctx.clock.now_rfc3339());
        let note = flow::start_clock(
            &ctx.directory.calendar,
            &mut case,
            ctx.clock.today(),
            i64::from(promised),
        );
        let due = case.review.due_date.clone().unwrap_or_default();
        let detail = format!(
            "accepted for review (受理); promised within {promised} working days, by {due}{note}"
        );
        let update = CaseUpdate {
            due_date: due.clone(),
            clock_running: true,
            ..Default::default()
        };
        let body = EntryBody::ReviewAccepted {
            due_date: due,
            promised_days: promised,
        };
        let change = Change::new(reviewer.spiffe_id(), detail, body).send(Outgoing::Update(
            CaseEvent::ReviewAccepted,
            Box::new(update),
        ));
        let view = change::save(ctx, &mut case, change, Batch::default(), &ticket, |v| v).await?;
        Ok(Response::new(view))
    }

    async fn correct(&self, req: Request<CorrectRequest>) -> Result<Response<CaseView>, Status> {
        let ctx = &self.ctx;
        let (reviewer, req, ticket) =
            go_or_replay!(requests::unary(ctx, req, "/tongban.review.v1.Review/Correct").await?);
        if req.needs.is_empty() {
            return Err(NodeError::refused(
                Refusal::new(Reason::CorrectionNoNeeds, Vec::new()).at("needs"),
                "a correction request names at least one --need KIND:REASON",
            )
            .into());
        }
        let (_lock, mut case) = self.locked(&req.case_no).await?;
        require(
            &case,
            &[CaseState::HandedOff, CaseState::UnderReview],
            "a correction request",
        )?;
        let item = item_of(ctx, &case)?;
        let mut reasons = Vec::with_capacity(req.needs.len());
        for (i, need) in req.needs.iter().enumerate() {
            let Some(spec) = item.material(&need.kind) else {
                let kinds: Vec<&str> = item.materials.iter().map(|m| m.kind.as_str()).collect();
                return Err(NodeError::refused(
                    Refusal::new(
                        Reason::MaterialUnknownKind,
                        vec![
                            ("item", item.code.to_string()),
                            ("kind", need.kind.clone()),
                            ("kinds", kinds.join(",")),
                        ],
                    )
                    .at(format!("needs[{i}].kind")),
                    format!(
                        "need {:?}: item {} has no such material kind; its kinds are: {}",
                        need.kind,
                        item.code,
                        kinds.join(", ")
                    ),
                )
                .into());
            };
            if need.reason.trim().is_empty() {
                return Err(NodeError::refused(
                    Refusal::new(
                        Reason::CorrectionReasonMissing,
                        vec![("kind", need.kind.clone()), ("name", spec.name.clone())],
                    )
                    .at(format!("needs[{i}].reason")),
                    format!("need {:?}: give the reason (KIND:REASON)", need.kind),
                )
                .into());
            }
            reasons.push(validate::text(
                &format!("needs[{i}].reason"),
                &format!("need {:?} reason", need.kind),
                &need.reason,
                validate::REASON_CHARS,
            )?);
        }
        let days = if req.deadline_days == 0 {
            ctx.review.correction_deadline_days
        } else {
            req.deadline_days
        };
        let today = ctx.clock.today();
        let calendar = &ctx.directory.calendar;
        let deadline_date = calendar.add_working_days(today, days);
        let note = flow::calendar_note(calendar, "deadline", today, deadline_date);
        let deadline = flow::format_date(deadline_date);
        let now = ctx.clock.now_rfc3339();
        flow::move_to(&mut case, CaseState::CorrectionRequested)?;
        flow::pause_clock(calendar, &mut case, today);
        let record = CorrectionRecord {
            needs: req
                .needs
                .iter()
                .zip(&reasons)
                .map(|(n, reason)| (n.kind.clone(), reason.clone()))
                .collect(),
            deadline: deadline.clone(),
            requested_at: now.clone(),
            answered_at: None,
            supplied: Vec::new(),
            count: Some(flow::count(calendar, today, days, deadline_date)),
        };
        case.review.corrections.push(record.clone());
        let kinds: Vec<&str> = req.needs.iter().map(|n| n.kind.as_str()).collect();
        let detail = format!(
            "correction requested (一次性补正): {}; by {deadline}{note}; the promised-time clock is paused",
            kinds.join(", ")
        );
        let body = EntryBody::CorrectionRequested {
            needs: record.needs,
            deadline: deadline.clone(),
            paused_days_left: case.review.paused_days_left,
        };
        let update = CaseUpdate {
            correction: Some(Correction {
                needs: req
                    .needs
                    .iter()
                    .zip(&reasons)
                    .map(|(n, reason)| CorrectionNeed {
                        kind: n.kind.clone(),
                        reason: reason.clone(),
                    })
                    .collect(),
                deadline,
                requested_at: now,
                answered_at: String::new(),
            }),
            clock_running: false,
            working_days_left: flow::frozen_days_left(&case),
            ..Default::default()
        };
        let change = Change::new(reviewer.spiffe_id(), detail, body).send(Outgoing::Update(
            CaseEvent::CorrectionRequested,
            Box::new(update),
        ));
        let view = change::save(ctx, &mut case, change, Batch::default(), &ticket, |v| v).await?;
        Ok(Response::new(view))
    }

    async fn paper_received(&self, req: Request<CaseRef>) -> Result<Response<CaseView>, Status> {
        let ctx = &self.ctx;
        let (reviewer, req, ticket) = go_or_replay!(
            requests::unary(ctx, req, "/tongban.review.v1.Review/PaperReceived").await?
        );
        let (_lock, mut case) = self.locked(&req.case_no).await?;
        let paper = view::paper_kinds(&ctx.directory, &case);
        if paper.is_empty() {
            return Err(NodeError::refused(
                Refusal::new(
                    Reason::PaperNone,
                    vec![("item", case.item_code.to_string())],
                ),
                format!(
                    "item {} has no materials whose paper originals are mailed",
                    case.item_code
                ),
            )
            .into());
        }
        if matches!(case.state, CaseState::Denied | CaseState::Closed) {
            return Err(NodeError::refused(
                Refusal::new(
                    Reason::StateNotAllowed,
                    vec![("state", case.state.as_str().to_owned())],
                ),
                format!("case {} is {}", case.case_no, case.state),
            )
            .into());
        }
        if let Some(at) = &case.review.paper_received_at {
            return Err(NodeError::refused(
                Refusal::new(Reason::PaperAlreadyReceived, vec![("at", at.clone())]),
                format!(
                    "paper originals of {} were already recorded at {at}",
                    case.case_no
                ),
            )
            .into());
        }
        let now = ctx.clock.now_rfc3339();
        case.review.paper_received_at = Some(now.clone());
        let update = CaseUpdate {
            paper_received_at: now,
            due_date: case.review.due_date.clone().unwrap_or_default(),
            clock_running: case.review.clock_running,
            working_days_left: flow::frozen_days_left(&case),
            ..Default::default()
        };
        let detail = format!("paper originals received ({})", paper.join(", "));
        let body = EntryBody::PaperReceived { kinds: paper };
        let change = Change::new(reviewer.spiffe_id(), detail, body)
            .send(Outgoing::Update(CaseEvent::PaperReceived, Box::new(update)));
        let view = change::save(ctx, &mut case, change, Batch::default(), &ticket, |v| v).await?;
        Ok(Response::new(view))
    }

    async fn approve(
        &self,
        req: Request<Streaming<ApproveFrame>>,
    ) -> Result<Response<CaseView>, Status> {
        let reviewer = caller(&req)?;
        let ctx = &self.ctx;
        let mut stream = req.into_inner();
        let header = match stream.message().await? {
            Some(ApproveFrame {
                frame: Some(approve_frame::Frame::Header(h)),
            }) => h,
            _ => {
                return Err(Status::invalid_argument(
                    "the first frame must be the approval header",
                ));
            }
        };
        let ticket = go_or_replay!(
            requests::begin(ctx, &reviewer, "/tongban.review.v1.Review/Approve", &header).await?
        );
        let licence_no = validate::optional_text(
            "licence_no",
            "licence number",
            &header.licence_no,
            validate::SHORT_CHARS,
        )?;
        let (_lock, mut case) = self.locked(&header.case_no).await?;
        require(&case, &[CaseState::UnderReview], "approval")?;
        let paper = view::paper_kinds(&ctx.directory, &case);
        if !paper.is_empty() && case.review.paper_received_at.is_none() {
            return Err(NodeError::refused(
                Refusal::new(Reason::PaperNotReceived, vec![("kinds", paper.join(","))]),
                format!(
                    "case {}: the paper originals ({}) have not arrived; record them with paper-received first",
                    case.case_no,
                    paper.join(", ")
                ),
            )
            .into());
        }
        if let Some(c) = &case.commitment
            && c.fulfilled_at.is_none()
            && !ctx
                .directory
                .item(&case.item_code)
                .is_some_and(|i| i.approve_before_commitment)
        {
            return Err(NodeError::refused(
                Refusal::new(
                    Reason::CommitmentOutstanding,
                    vec![("kinds", c.kinds.join(",")), ("due", c.due_date.clone())],
                ),
                format!(
                    "case {}: the committed materials ({}) have not arrived (due {}); item {} is not approved before they do",
                    case.case_no,
                    c.kinds.join(", "),
                    c.due_date,
                    case.item_code
                ),
            )
            .into());
        }
        let mut result = header.result.ok_or_else(|| {
            NodeError::refused(
                Refusal::new(Reason::ResultMissing, Vec::new()).at("result"),
                "approval needs the result document (--result PATH)",
            )
        })?;
        result.kind = tongban_core::RESULT_KIND.into();
        if result.size == 0 || result.sha256.len() != 32 {
            return Err(NodeError::refused(
                Refusal::new(Reason::ResultEmpty, Vec::new()).at("result"),
                "the result document is empty or its sha256 is not 32 bytes",
            )
            .into());
        }
        if result.size > ctx.limits.max_material_bytes {
            let (size, max) = (
                tongban_core::limits::binary_size(result.size),
                tongban_core::limits::binary_size(ctx.limits.max_material_bytes),
            );
            return Err(NodeError::refused(
                Refusal::new(
                    Reason::ResultTooLarge,
                    vec![("size", size.clone()), ("max", max.clone())],
                )
                .at("result"),
                format!("the result document's {size} are over the limit of {max}"),
            )
            .into());
        }
        let mut ingest = Ingest::new(&ctx.store, vec![result]);
        while let Some(frame) = stream.message().await.map_err(|s| {
            Status::new(
                s.code(),
                format!("upload interrupted, nothing was stored: {}", s.message()),
            )
        })? {
            match frame.frame {
                Some(approve_frame::Frame::Chunk(c)) => ingest.chunk(c).await?,
                _ => {
                    return Err(Status::invalid_argument(
                        "only result chunks may follow the header",
                    ));
                }
            }
        }
        let ingested = ingest.finish().await?;
        let result = ingested.materials[0].clone();
        flow::move_to(&mut case, CaseState::Approved)?;
        flow::stop_clock(&ctx.directory.calendar, &mut case, ctx.clock.today());
        case.review.licence_no = licence_no;
        case.review.result = Some(result.clone());
        let mut detail = match case.review.licence_no.as_str() {
            "" => "approved".to_owned(),
            no => format!("approved; licence {no}"),
        };
        if case.delivery == tongban_core::DeliveryMode::CollectHome {
            flow::move_to(&mut case, CaseState::ReadyForPickup)?;
            detail.push_str("; ready for collection at the home authority");
        } else {
            detail.push_str("; mail the result (mail send --leg result)");
        }
        let update = CaseUpdate {
            licence_no: case.review.licence_no.clone(),
            result: Some(view::digest(&result)),
            // What was promised stays on the case after the decision: the
            // window shows it beside the frozen count.
            due_date: case.review.due_date.clone().unwrap_or_default(),
            clock_running: false,
            working_days_left: flow::frozen_days_left(&case),
            ..Default::default()
        };
        let body = EntryBody::Approved {
            licence_no: case.review.licence_no.clone(),
            result_sha256: result.sha256.clone(),
            result_size: result.size,
        };
        // The result document travels with the decision: the window hands
        // it out and prints it.
        let change = Change::new(reviewer.spiffe_id(), detail, body)
            .send(Outgoing::Approval(Box::new(update), result));
        let mut batch = Batch::default();
        batch.keep_blobs(ingested.blobs);
        let view = change::save(ctx, &mut case, change, batch, &ticket, |v| v).await?;
        Ok(Response::new(view))
    }

    async fn deny(&self, req: Request<DenyRequest>) -> Result<Response<CaseView>, Status> {
        let ctx = &self.ctx;
        let (reviewer, req, ticket) =
            go_or_replay!(requests::unary(ctx, req, "/tongban.review.v1.Review/Deny").await?);
        if req.reason.trim().is_empty() {
            return Err(NodeError::refused(
                Refusal::new(Reason::DenialReasonMissing, Vec::new()).at("reason"),
                "a denial needs its reason (--reason TEXT)",
            )
            .into());
        }
        let reason = validate::text("reason", "reason", &req.reason, validate::REASON_CHARS)?;
        let reason = reason.as_str();
        let (_lock, mut case) = self.locked(&req.case_no).await?;
        require(
            &case,
            &[
                CaseState::HandedOff,
                CaseState::UnderReview,
                CaseState::CorrectionRequested,
            ],
            "denial",
        )?;
        flow::move_to(&mut case, CaseState::Denied)?;
        flow::stop_clock(&ctx.directory.calendar, &mut case, ctx.clock.today());
        case.review.denial_reason = reason.to_owned();
        let update = CaseUpdate {
            reason: reason.to_owned(),
            due_date: case.review.due_date.clone().unwrap_or_default(),
            working_days_left: flow::frozen_days_left(&case),
            ..Default::default()
        };
        let body = EntryBody::Denied {
            reason: reason.to_owned(),
        };
        let next = match case.delivery {
            tongban_core::DeliveryMode::CollectHome => {
                "hand it out at the home authority (review handout)"
            }
            _ => "mail the written denial (mail send --leg result)",
        };
        let detail = format!("denied: {reason}; {next}");
        let change = Change::new(reviewer.spiffe_id(), detail, body)
            .send(Outgoing::Update(CaseEvent::Denied, Box::new(update)));
        let view = change::save(ctx, &mut case, change, Batch::default(), &ticket, |v| v).await?;
        Ok(Response::new(view))
    }

    async fn handout(&self, req: Request<HandoutRequest>) -> Result<Response<CaseView>, Status> {
        let ctx = &self.ctx;
        let (reviewer, req, ticket) =
            go_or_replay!(requests::unary(ctx, req, "/tongban.review.v1.Review/Handout").await?);
        let (_lock, mut case) = self.locked(&req.case_no).await?;
        let view = super::hand_out(ctx, &mut case, &req.recipient_id, &reviewer, &ticket).await?;
        Ok(Response::new(view))
    }

    type MaterialStream = super::material::MaterialStream;

    async fn material(
        &self,
        req: Request<tongban_proto::common::v1::MaterialRequest>,
    ) -> Result<Response<Self::MaterialStream>, Status> {
        let who = caller(&req)?;
        let stream = super::material::stream(&self.ctx, &who, req.into_inner(), Side::Home)?;
        Ok(Response::new(stream))
    }

    async fn get_case(&self, req: Request<CaseRef>) -> Result<Response<CaseView>, Status> {
        let case = self.ctx.case_on(&req.get_ref().case_no, Side::Home)?;
        self.view(&case)
    }

    async fn retry(&self, req: Request<CaseRef>) -> Result<Response<CaseView>, Status> {
        let ctx = &self.ctx;
        let (reviewer, req, ticket) =
            go_or_replay!(requests::unary(ctx, req, "/tongban.review.v1.Review/Retry").await?);
        let (_lock, mut case) = self.locked(&req.case_no).await?;
        let view = super::retry_parked(ctx, &mut case, &reviewer, &ticket).await?;
        Ok(Response::new(view))
    }

    async fn overdue(&self, req: Request<OverdueRequest>) -> Result<Response<InboxReply>, Status> {
        let req = req.into_inner();
        let limit = super::paging::limit_or(req.limit, usize::MAX);
        let page = super::overdue(&self.ctx, Side::Home, limit, &req.page_token)?;
        Ok(Response::new(InboxReply {
            cases: page.cases,
            next_page_token: page.next,
        }))
    }
}
