//! The window's steps of the two intake workflows beyond the plain one:
//! the applicant's commitment (告知承诺, 容缺受理) to supply waivable
//! materials later, signed before acceptance and fulfilled by a supply
//! after it, and the video consultation with the home authority
//! (异地视频会商) that some items need before acceptance. The `Window`
//! trait's handlers in the parent module delegate here.

use tongban_core::{Reason, Refusal, window_state};
use tongban_ledger::entries::facts;
use tongban_ledger::{Batch, CommitmentRecord, ConsultationRecord, EntryBody};
use tongban_proto::common::v1::CaseView;
use tongban_proto::federation::v1::Supplement;
use tongban_proto::window::v1::{AttachFrame, CommitRequest, ConsultRequest};
use tonic::{Request, Response, Status, Streaming};

use super::{Upload, WindowService, receive_into, window_note};
use crate::change::{self, Change, Outgoing};
use crate::requests::{self, go_or_replay};
use crate::service::{AT_INTAKE, by_video, in_state, item_of};
use crate::{NodeError, flow, validate, view};

impl WindowService {
    pub(super) async fn sign_commitment(
        &self,
        req: Request<CommitRequest>,
    ) -> Result<Response<CaseView>, Status> {
        let ctx = &self.ctx;
        let (clerk, req, ticket) =
            go_or_replay!(requests::unary(ctx, req, "/tongban.window.v1.Window/Commit").await?);
        let (_lock, mut case) = self.locked(&req.case_no).await?;
        in_state(
            &case,
            &AT_INTAKE,
            "a commitment (告知承诺) is signed before acceptance",
        )?;
        let item = item_of(ctx, &case)?;
        let missing = view::missing(&ctx.directory, &case);
        let today = ctx.clock.today();
        let calendar = &ctx.directory.calendar;
        let signed = tongban_core::commitment::check(
            item,
            &missing,
            &req.signer,
            &req.kinds,
            req.days,
            today,
            calendar,
        )
        .map_err(|e| NodeError::refused(tongban_core::Refusal::from(&e), e.to_string()))?;
        let due_date = flow::format_date(signed.due);
        let calendar_note = flow::calendar_note(calendar, "deadline", today, signed.due);
        case.commitment = Some(CommitmentRecord {
            signer: signed.signer.clone(),
            kinds: signed.kinds.clone(),
            due_date: due_date.clone(),
            signed_at: ctx.clock.now_rfc3339(),
            by: clerk.spiffe_id(),
            fulfilled_at: None,
            count: Some(flow::count(
                calendar,
                today,
                u32::try_from(req.days).unwrap_or(u32::MAX),
                signed.due,
            )),
        });
        let open = view::uncommitted(&ctx.directory, &case);
        case.state = window_state(open.is_empty(), case.identity_check.is_some());
        case.note = window_note(&open, case.identity_check.is_some());
        let detail = format!(
            "commitment (告知承诺) signed: {} to be supplied by {due_date}{calendar_note}",
            signed.kinds.join(", ")
        );
        let body = EntryBody::CommitmentSigned {
            signer: signed.signer,
            kinds: signed.kinds,
            due_date,
        };
        let note = case.note.clone();
        let change = Change::new(clerk.spiffe_id(), detail, body).note(note);
        let view = change::save(ctx, &mut case, change, Batch::default(), &ticket, |v| v).await?;
        Ok(Response::new(view))
    }

    pub(super) async fn record_consultation(
        &self,
        req: Request<ConsultRequest>,
    ) -> Result<Response<CaseView>, Status> {
        let ctx = &self.ctx;
        let (clerk, req, ticket) =
            go_or_replay!(requests::unary(ctx, req, "/tongban.window.v1.Window/Consult").await?);
        let at = time::OffsetDateTime::parse(
            req.at.trim(),
            &time::format_description::well_known::Rfc3339,
        )
        .map_err(|e| {
            NodeError::refused(
                Refusal::new(Reason::TimeFormat, vec![("value", req.at.clone())]).at("at"),
                format!("at: {:?} is not an RFC 3339 time: {e}", req.at),
            )
        })?;
        if at > ctx.clock.now() {
            return Err(NodeError::refused(
                Refusal::new(
                    Reason::ConsultationInFuture,
                    vec![("at", req.at.trim().to_owned())],
                )
                .at("at"),
                format!(
                    "at: {} is in the future; record a consultation once it has taken place",
                    req.at.trim()
                ),
            )
            .into());
        }
        let reviewer =
            validate::text("reviewer", "reviewer", &req.reviewer, validate::SHORT_CHARS)?;
        let outcome = validate::text("outcome", "outcome", &req.outcome, validate::REASON_CHARS)?;
        let (_lock, mut case) = self.locked(&req.case_no).await?;
        in_state(
            &case,
            &AT_INTAKE,
            "the video consultation is held at intake, before acceptance",
        )?;
        let needs = by_video(ctx, &case);
        if !needs {
            return Err(NodeError::refused(
                Refusal::new(
                    Reason::ConsultationNotNeeded,
                    vec![("item", case.item_code.to_string())],
                ),
                format!(
                    "item {} is taken in at the counter; it has no video consultation at intake",
                    case.item_code
                ),
            )
            .into());
        }
        let at = crate::clock::rfc3339(at);
        case.consultation = Some(ConsultationRecord {
            at: at.clone(),
            reviewer: reviewer.clone(),
            outcome: outcome.clone(),
            recorded_by: clerk.spiffe_id(),
        });
        let detail =
            format!("video consultation (异地视频会商) at {at} with {reviewer}: {outcome}");
        let body = EntryBody::ConsultationRecorded {
            at,
            reviewer,
            outcome,
        };
        let note = case.note.clone();
        let change = Change::new(clerk.spiffe_id(), detail, body).note(note);
        let view = change::save(ctx, &mut case, change, Batch::default(), &ticket, |v| v).await?;
        Ok(Response::new(view))
    }

    pub(super) async fn supply_committed(
        &self,
        req: Request<Streaming<AttachFrame>>,
    ) -> Result<Response<CaseView>, Status> {
        let ctx = &self.ctx;
        let Upload {
            clerk,
            mut stream,
            header,
            ticket,
            lock: _lock,
            mut case,
        } = go_or_replay!(
            self.open_upload(req, "/tongban.window.v1.Window/Supply")
                .await?
        );
        let outstanding: Vec<String> = match &case.commitment {
            Some(c) if c.fulfilled_at.is_none() => c
                .kinds
                .iter()
                .filter(|k| !case.materials.iter().any(|m| &m.kind == *k))
                .cloned()
                .collect(),
            _ => {
                return Err(NodeError::refused(
                    Refusal::new(Reason::CommitmentNoneOpen, Vec::new()),
                    format!(
                        "case {} has no open commitment (告知承诺) to supply materials for",
                        case.case_no
                    ),
                )
                .into());
            }
        };
        let item = item_of(ctx, &case)?;
        tongban_core::commitment::may_supply(case.state, item)
            .map_err(|e| NodeError::refused((&e).into(), format!("case {}: {e}", case.case_no)))?;
        if header.materials.is_empty() {
            return Err(NodeError::refused(
                Refusal::new(Reason::MaterialNone, Vec::new()).at("materials"),
                "supply needs at least one material",
            )
            .into());
        }
        if let Some((i, h)) = header
            .materials
            .iter()
            .enumerate()
            .find(|(_, h)| !outstanding.contains(&h.kind))
        {
            return Err(NodeError::refused(
                Refusal::new(
                    Reason::SupplyNotOutstanding,
                    vec![("kind", h.kind.clone()), ("outstanding", outstanding.join(","))],
                )
                .at(format!("materials[{i}].kind")),
                format!(
                    "material {:?} is not a committed material still outstanding for case {} (outstanding: {})",
                    h.kind,
                    case.case_no,
                    outstanding.join(", ")
                ),
            )
            .into());
        }
        let kept: u64 = case.materials.iter().map(|m| m.size).sum();
        let (ingested, kinds) =
            receive_into(ctx, &mut case, header.materials, kept, &mut stream).await?;
        let left: Vec<String> = outstanding
            .into_iter()
            .filter(|k| !kinds.contains(k))
            .collect();
        let now = ctx.clock.now_rfc3339();
        let mut detail = format!(
            "committed materials ({}) supplied and queued to {}",
            kinds.join(", "),
            case.home_county
        );
        if left.is_empty() {
            if let Some(c) = &mut case.commitment {
                c.fulfilled_at = Some(now.clone());
            }
            detail.push_str("; commitment fulfilled");
        } else {
            detail.push_str(&format!("; still outstanding: {}", left.join(", ")));
        }
        let body = EntryBody::CommitmentSupplied {
            materials: facts(&ingested.materials),
            outstanding: left,
        };
        let supplement = Supplement {
            resubmitted_at: now,
            fulfils_commitment: true,
        };
        let change = Change::new(clerk.spiffe_id(), detail, body)
            .send(Outgoing::Supplement(supplement, ingested.materials.clone()));
        let mut batch = Batch::default();
        batch.keep_blobs(ingested.blobs);
        change::save(ctx, &mut case, change, batch, &ticket, |v: CaseView| v).await?;
        Ok(Response::new(self.view(&case)?))
    }
}
