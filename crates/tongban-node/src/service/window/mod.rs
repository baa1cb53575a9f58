//! The window service of the receiving county: apply, attach, identity
//! check, acceptance (which queues the handoff in the same durable write),
//! resubmission, hand-out, status and lists, and the upload steps they
//! share. Clerks of this county only (see `auth`). The commitment and
//! consultation workflows are in [`workflow`].

use std::sync::Arc;

use tongban_core::{CaseNo, CaseState, ItemCode, Reason, Refusal, window_state};
use tongban_ledger::entries::facts;
use tongban_ledger::{Batch, CaseRecord, EntryBody, IdentityCheckRecord, Side};
use tongban_pki::Identity;
use tongban_proto::common::v1::{CaseView, IdentityCheck, MaterialChunk, MaterialHeader};
use tongban_proto::federation::v1::{Application, Supplement};
use tongban_proto::window::v1::window_server::Window;
use tongban_proto::window::v1::*;
use tonic::{Request, Response, Status, Streaming};

use crate::auth::caller;
use crate::change::{self, Change, Outgoing};
use crate::ctx::Ctx;
use crate::ingest::{Ingest, Ingested};
use crate::locks::CaseGuard;
use crate::requests::{self, Begun, go_or_replay};
use crate::service::{AT_INTAKE, by_video, in_state, item_of};
use crate::{NodeError, validate, view};

mod workflow;

pub(crate) struct WindowService {
    ctx: Arc<Ctx>,
}

impl WindowService {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }

    /// A case taken in at this window.
    fn window_case(&self, case_no: &str) -> Result<CaseRecord, NodeError> {
        self.ctx.case_on(case_no, Side::Window)
    }

    /// A case taken in at this window, locked for a change.
    async fn locked(&self, case_no: &str) -> Result<(CaseGuard, CaseRecord), NodeError> {
        self.ctx.locked_case(case_no, Side::Window).await
    }

    fn view(&self, case: &CaseRecord) -> Result<CaseView, NodeError> {
        view::case_view(&self.ctx, case, true)
    }
}

/// An upload (attach, supply) under way: who sends it, its header and
/// request ticket, and the case, locked.
struct Upload {
    clerk: Identity,
    stream: Streaming<AttachFrame>,
    header: AttachHeader,
    ticket: requests::Ticket,
    lock: CaseGuard,
    case: CaseRecord,
}

impl WindowService {
    /// Reads the attach header that opens an upload and looks its request
    /// id up: the original reply for a repeat, else the upload with its
    /// case locked.
    async fn open_upload(
        &self,
        req: Request<Streaming<AttachFrame>>,
        method: &str,
    ) -> Result<Begun<CaseView, Upload>, Status> {
        let clerk = caller(&req)?;
        let mut stream = req.into_inner();
        let header = match stream.message().await? {
            Some(AttachFrame {
                frame: Some(attach_frame::Frame::Header(h)),
            }) => h,
            _ => {
                return Err(Status::invalid_argument(
                    "the first frame must be the attach header",
                ));
            }
        };
        let ticket = match requests::begin(&self.ctx, &clerk, method, &header).await? {
            Begun::Replay(reply) => return Ok(Begun::Replay(reply)),
            Begun::Go(ticket) => ticket,
        };
        let (lock, case) = self.locked(&header.case_no).await?;
        Ok(Begun::Go(Upload {
            clerk,
            stream,
            header,
            ticket,
            lock,
            case,
        }))
    }
}

/// Checks an upload's declared materials against the case's item and the
/// limits (counting `kept` bytes the case holds besides), receives them
/// and merges them into the case's materials: what was received, and its
/// kinds.
async fn receive_into(
    ctx: &Ctx,
    case: &mut CaseRecord,
    headers: Vec<MaterialHeader>,
    kept: u64,
    stream: &mut Streaming<AttachFrame>,
) -> Result<(Ingested, Vec<String>), Status> {
    let item = item_of(ctx, case)?;
    validate::materials(item, &headers, &ctx.limits, kept)?;
    let ingested = receive(ctx, headers, stream, |f| match f.frame {
        Some(attach_frame::Frame::Chunk(c)) => Some(c),
        _ => None,
    })
    .await?;
    let kinds = ingested.materials.iter().map(|m| m.kind.clone()).collect();
    merge(&mut case.materials, ingested.materials.clone());
    Ok((ingested, kinds))
}

/// Receives the chunks that follow an upload's header.
async fn receive<F>(
    ctx: &Ctx,
    headers: Vec<MaterialHeader>,
    stream: &mut Streaming<F>,
    chunk_of: impl Fn(F) -> Option<MaterialChunk>,
) -> Result<Ingested, Status> {
    let mut ingest = Ingest::new(&ctx.store, headers);
    loop {
        match stream.message().await {
            Ok(Some(frame)) => {
                let chunk = chunk_of(frame).ok_or_else(|| {
                    Status::invalid_argument("only material chunks may follow the header")
                })?;
                ingest.chunk(chunk).await?;
            }
            Ok(None) => break,
            Err(status) => {
                return Err(Status::new(
                    status.code(),
                    format!(
                        "upload interrupted, nothing was stored: {}",
                        status.message()
                    ),
                ));
            }
        }
    }
    Ok(ingest.finish().await?)
}

/// One line naming what a window case still needs.
fn window_note(missing: &[String], identity_checked: bool) -> String {
    let mut needs = Vec::new();
    if !missing.is_empty() {
        needs.push(format!(
            "一次性补正 — missing materials: {}",
            missing.join(", ")
        ));
    }
    if !identity_checked {
        needs.push("identity not yet verified".to_owned());
    }
    if needs.is_empty() {
        "ready: accept to queue the handoff".to_owned()
    } else {
        needs.join("; ")
    }
}

/// Replaces materials of the same kind and adds new ones.
fn merge(materials: &mut Vec<tongban_ledger::MaterialRef>, new: Vec<tongban_ledger::MaterialRef>) {
    for m in new {
        match materials.iter_mut().find(|have| have.kind == m.kind) {
            Some(slot) => *slot = m,
            None => materials.push(m),
        }
    }
}

#[tonic::async_trait]
impl Window for WindowService {
    async fn apply(
        &self,
        req: Request<Streaming<ApplyFrame>>,
    ) -> Result<Response<CaseView>, Status> {
        let clerk = caller(&req)?;
        let ctx = &self.ctx;
        let mut stream = req.into_inner();
        let header = match stream.message().await? {
            Some(ApplyFrame {
                frame: Some(apply_frame::Frame::Header(h)),
            }) => h,
            _ => {
                return Err(Status::invalid_argument(
                    "the first frame must be the application header",
                ));
            }
        };
        let ticket = go_or_replay!(
            requests::begin(ctx, &clerk, "/tongban.window.v1.Window/Apply", &header).await?
        );
        let item_code = ItemCode::parse(&header.item_code)
            .map_err(|e| NodeError::at("item_code", "item", &e))?;
        let item = ctx.directory.item(&item_code).ok_or_else(|| {
            NodeError::refused(
                Refusal::new(Reason::ItemUnknown, vec![("item", item_code.to_string())])
                    .at("item_code"),
                format!("item: {item_code} is not in the federation's item catalogue"),
            )
        })?;
        let home = validate::county("home_county", "home county", &header.home_county)?;
        if home == ctx.county {
            return Err(NodeError::refused(
                Refusal::new(Reason::HomeIsOwnCounty, vec![("home", home.to_string())])
                    .at("home_county"),
                format!(
                    "home county: {home} is this window's own county; cross-region intake is for another county's items"
                ),
            )
            .into());
        }
        if ctx.directory.county(&home).is_none() {
            return Err(NodeError::refused(
                Refusal::new(Reason::HomeUnknown, vec![("home", home.to_string())])
                    .at("home_county"),
                format!("home county: {home} is not a county of the federation"),
            )
            .into());
        }
        if !ctx.directory.covers(&ctx.county, &home, &item_code) {
            return Err(NodeError::refused(
                Refusal::new(
                    Reason::AgreementMissing,
                    vec![
                        ("county", ctx.county.to_string()),
                        ("item", item_code.to_string()),
                        ("home", home.to_string()),
                    ],
                ),
                format!(
                    "no agreement lets {} take in {item_code} ({}) for {home}",
                    ctx.county, item.name
                ),
            )
            .into());
        }
        let delivery = validate::delivery(item, &header.delivery)?;
        let applicant = validate::applicant(header.applicant.as_ref(), ctx.clock.today())?;
        validate::materials(item, &header.materials, &ctx.limits, 0)?;

        let ingested = receive(ctx, header.materials, &mut stream, |f| match f.frame {
            Some(apply_frame::Frame::Chunk(c)) => Some(c),
            _ => None,
        })
        .await?;

        let today = ctx.clock.today();
        let n = ctx
            .store
            .next_counter(&format!("case/{today}"))
            .map_err(NodeError::from)?;
        let case_no =
            CaseNo::new(&ctx.county, today, n).map_err(|e| NodeError::Invalid(e.to_string()))?;
        let mut case = CaseRecord {
            application_id: uuid::Uuid::now_v7().to_string(),
            case_no,
            side: Side::Window,
            item_code: item_code.clone(),
            receiving_county: ctx.county.clone(),
            home_county: home.clone(),
            delivery,
            applicant,
            materials: ingested.materials.clone(),
            identity_check: None,
            state: CaseState::CorrectionAtWindow,
            created_at: ctx.clock.now_rfc3339(),
            created_at_is_arrival: false,
            accepted_at: None,
            note: String::new(),
            handoffs: Vec::new(),
            review: Default::default(),
            mail: Vec::new(),
            closed_at: None,
            commitment: None,
            consultation: None,
        };
        let missing = view::missing(&ctx.directory, &case);
        case.state = window_state(missing.is_empty(), false);
        case.note = window_note(&missing, false);
        let detail = format!(
            "applied for {} ({item_code}), home {home}, delivery {delivery}; {}",
            item.name,
            if missing.is_empty() {
                "materials complete".to_owned()
            } else {
                format!("missing {}", missing.join(", "))
            }
        );
        let body = EntryBody::CaseApplied {
            item: item_code.clone(),
            home: home.clone(),
            delivery,
            materials: facts(&case.materials),
            missing,
        };
        let note = case.note.clone();
        let change = Change::new(clerk.spiffe_id(), detail, body).note(note);
        let mut batch = Batch::default();
        batch.keep_blobs(ingested.blobs);
        let view = change::save(ctx, &mut case, change, batch, &ticket, |v| v).await?;
        tracing::info!(case = %case.case_no, item = %item_code, home = %home, state = %case.state, "case applied");
        Ok(Response::new(view))
    }

    async fn attach(
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
            self.open_upload(req, "/tongban.window.v1.Window/Attach")
                .await?
        );
        in_state(
            &case,
            &[
                CaseState::CorrectionAtWindow,
                CaseState::ReadyAtWindow,
                CaseState::CorrectionRequested,
            ],
            "materials can be attached only before acceptance or after a correction request",
        )?;
        if header.materials.is_empty() {
            return Err(NodeError::refused(
                Refusal::new(Reason::MaterialNone, Vec::new()).at("materials"),
                "attach needs at least one material",
            )
            .into());
        }
        // Bytes of the materials this upload does not replace still count.
        let kept: u64 = case
            .materials
            .iter()
            .filter(|m| !header.materials.iter().any(|h| h.kind == m.kind))
            .map(|m| m.size)
            .sum();
        let (ingested, kinds) =
            receive_into(ctx, &mut case, header.materials, kept, &mut stream).await?;
        let missing = view::missing(&ctx.directory, &case);
        if case.state != CaseState::CorrectionRequested {
            // A committed material brought in before acceptance is no longer
            // committed.
            if let Some(c) = &mut case.commitment {
                c.kinds.retain(|k| !kinds.contains(k));
                if c.kinds.is_empty() {
                    case.commitment = None;
                }
            }
            let open = view::uncommitted(&ctx.directory, &case);
            case.state = window_state(open.is_empty(), case.identity_check.is_some());
            case.note = window_note(&open, case.identity_check.is_some());
        } else {
            if let Some(open) = case.review.corrections.last_mut() {
                for kind in &kinds {
                    if !open.supplied.contains(kind) {
                        open.supplied.push(kind.clone());
                    }
                }
            }
            case.note = "supplement attached: resubmit to send it to the home authority".into();
        }
        let body = EntryBody::CaseAttached {
            materials: facts(&ingested.materials),
            missing,
        };
        let note = case.note.clone();
        let change = Change::new(
            clerk.spiffe_id(),
            format!("attached {}", kinds.join(", ")),
            body,
        )
        .note(note);
        let mut batch = Batch::default();
        batch.keep_blobs(ingested.blobs);
        let view = change::save(ctx, &mut case, change, batch, &ticket, |v| v).await?;
        Ok(Response::new(view))
    }

    async fn verify_identity(
        &self,
        req: Request<VerifyIdentityRequest>,
    ) -> Result<Response<CaseView>, Status> {
        let ctx = &self.ctx;
        let (clerk, req, ticket) = go_or_replay!(
            requests::unary(ctx, req, "/tongban.window.v1.Window/VerifyIdentity").await?
        );
        let method = req.method.trim();
        if !matches!(method, "id-card-reader" | "face" | "manual") {
            return Err(NodeError::refused(
                Refusal::new(
                    Reason::ValueUnknown,
                    vec![
                        ("what", "identity method".to_owned()),
                        ("value", method.to_owned()),
                        ("allowed", "id-card-reader, face, manual".to_owned()),
                    ],
                )
                .at("method"),
                format!("method: {method:?} is not one of id-card-reader, face, manual"),
            )
            .into());
        }
        let (_lock, mut case) = self.locked(&req.case_no).await?;
        in_state(&case, &AT_INTAKE, "identity is verified before acceptance")?;
        case.identity_check = Some(IdentityCheckRecord {
            method: method.to_owned(),
            by: clerk.spiffe_id(),
            at: self.ctx.clock.now_rfc3339(),
        });
        let open = view::uncommitted(&self.ctx.directory, &case);
        case.state = window_state(open.is_empty(), true);
        case.note = window_note(&open, true);
        let body = EntryBody::IdentityVerified {
            method: method.to_owned(),
        };
        let note = case.note.clone();
        let change = Change::new(
            clerk.spiffe_id(),
            format!("identity verified by {method}"),
            body,
        )
        .note(note);
        let view = change::save(ctx, &mut case, change, Batch::default(), &ticket, |v| v).await?;
        Ok(Response::new(view))
    }

    async fn accept(&self, req: Request<CaseRef>) -> Result<Response<IntakeReceipt>, Status> {
        let ctx = &self.ctx;
        let (clerk, req, ticket) =
            go_or_replay!(requests::unary(ctx, req, "/tongban.window.v1.Window/Accept").await?);
        let (_lock, mut case) = self.locked(&req.case_no).await?;
        match case.state {
            CaseState::ReadyAtWindow => {}
            CaseState::CorrectionAtWindow => {
                let facts = vec![
                    ("missing", view::missing(&ctx.directory, &case).join(",")),
                    (
                        "identity",
                        if case.identity_check.is_some() {
                            "verified"
                        } else {
                            "not-verified"
                        }
                        .to_owned(),
                    ),
                ];
                return Err(NodeError::refused(
                    Refusal::new(Reason::IntakeIncomplete, facts),
                    format!(
                        "case {} cannot be accepted yet: {}",
                        case.case_no, case.note
                    ),
                )
                .into());
            }
            other => {
                return Err(NodeError::refused(
                    Refusal::new(
                        Reason::StateNotAllowed,
                        vec![("state", other.as_str().to_owned())],
                    ),
                    format!(
                        "case {} is {other}; only a READY_AT_WINDOW case can be accepted",
                        case.case_no
                    ),
                )
                .into());
            }
        }
        let needs_consultation = by_video(ctx, &case);
        if needs_consultation && case.consultation.is_none() {
            return Err(NodeError::refused(
                Refusal::new(Reason::ConsultationNeeded, Vec::new()),
                format!(
                    "case {}: item {} is taken in by video consultation with the home authority (异地视频会商); record it first (window consult)",
                    case.case_no, case.item_code
                ),
            )
            .into());
        }
        let now = ctx.clock.now_rfc3339();
        let application = Application {
            item_code: case.item_code.to_string(),
            delivery: case.delivery.to_string(),
            applicant: Some(view::applicant(&case.applicant, false)),
            identity_check: case.identity_check.as_ref().map(|c| IdentityCheck {
                method: c.method.clone(),
                by: c.by.clone(),
                at: c.at.clone(),
            }),
            accepted_at: now.clone(),
            applied_at: case.created_at.clone(),
            commitment: case.commitment.as_ref().map(view::commitment_pb),
            consultation: case.consultation.as_ref().map(view::consultation_pb),
        };
        case.state = CaseState::Queued;
        case.accepted_at = Some(now.clone());
        let body = EntryBody::CaseAccepted {
            materials: facts(&case.materials),
        };
        let detail = format!(
            "accepted at the window; handoff queued to {}",
            case.home_county
        );
        let materials = case.materials.clone();
        let change = Change::new(clerk.spiffe_id(), detail, body)
            .note(format!("queued for handoff to {}", case.home_county))
            .send(Outgoing::Application(Box::new(application), materials));
        let home_county_name = ctx
            .directory
            .county(&case.home_county)
            .map(|c| c.name.clone())
            .unwrap_or_default();
        let accepted_at = now.clone();
        let receipt = change::save(ctx, &mut case, change, Batch::default(), &ticket, |v| {
            IntakeReceipt {
                case: Some(v),
                accepted_at,
                home_county_name,
            }
        })
        .await?;
        let handoff_id = case
            .handoffs
            .last()
            .map(|h| h.handoff_id.clone())
            .unwrap_or_default();
        tracing::info!(case = %case.case_no, handoff = %handoff_id, to = %case.home_county, "case accepted, handoff queued");
        Ok(Response::new(receipt))
    }

    async fn resubmit(&self, req: Request<CaseRef>) -> Result<Response<CaseView>, Status> {
        let ctx = &self.ctx;
        let (clerk, req, ticket) =
            go_or_replay!(requests::unary(ctx, req, "/tongban.window.v1.Window/Resubmit").await?);
        let (_lock, mut case) = self.locked(&req.case_no).await?;
        if case.state != CaseState::CorrectionRequested {
            return Err(NodeError::refused(
                Refusal::new(
                    Reason::StateNotAllowed,
                    vec![("state", case.state.as_str().to_owned())],
                ),
                format!(
                    "case {} is {}; only a case with a correction request can be resubmitted",
                    case.case_no, case.state
                ),
            )
            .into());
        }
        let open = case
            .review
            .corrections
            .last()
            .filter(|c| c.answered_at.is_none())
            .ok_or_else(|| {
                NodeError::refused(
                    Refusal::new(Reason::CorrectionNoneOpen, Vec::new()),
                    format!("case {} has no open correction request", case.case_no),
                )
            })?;
        let needed: Vec<String> = open
            .needs
            .iter()
            .map(|(kind, _)| kind.clone())
            .filter(|kind| !open.supplied.contains(kind))
            .collect();
        if !needed.is_empty() {
            return Err(NodeError::refused(
                Refusal::new(
                    Reason::CorrectionIncomplete,
                    vec![("kinds", needed.join(","))],
                ),
                format!(
                    "case {}: the correction request still needs {}; attach them first",
                    case.case_no,
                    needed.join(", ")
                ),
            )
            .into());
        }
        let supplied: Vec<_> = case
            .materials
            .iter()
            .filter(|m| open.supplied.contains(&m.kind))
            .cloned()
            .collect();
        let now = ctx.clock.now_rfc3339();
        if let Some(open) = case.review.corrections.last_mut() {
            open.answered_at = Some(now.clone());
        }
        let kinds: Vec<&str> = supplied.iter().map(|m| m.kind.as_str()).collect();
        let detail = format!(
            "supplement ({}) queued to {}",
            kinds.join(", "),
            case.home_county
        );
        let body = EntryBody::CaseResubmitted {
            materials: facts(&supplied),
        };
        let supplement = Supplement {
            resubmitted_at: now,
            fulfils_commitment: false,
        };
        let change = Change::new(clerk.spiffe_id(), detail, body)
            .send(Outgoing::Supplement(supplement, supplied));
        let view = change::save(ctx, &mut case, change, Batch::default(), &ticket, |v| v).await?;
        Ok(Response::new(view))
    }

    async fn commit(&self, req: Request<CommitRequest>) -> Result<Response<CaseView>, Status> {
        self.sign_commitment(req).await
    }

    async fn consult(&self, req: Request<ConsultRequest>) -> Result<Response<CaseView>, Status> {
        self.record_consultation(req).await
    }

    async fn supply(
        &self,
        req: Request<Streaming<AttachFrame>>,
    ) -> Result<Response<CaseView>, Status> {
        self.supply_committed(req).await
    }

    async fn handout(&self, req: Request<HandoutRequest>) -> Result<Response<CaseView>, Status> {
        let ctx = &self.ctx;
        let (clerk, req, ticket) =
            go_or_replay!(requests::unary(ctx, req, "/tongban.window.v1.Window/Handout").await?);
        let (_lock, mut case) = self.locked(&req.case_no).await?;
        let view = super::hand_out(ctx, &mut case, &req.recipient_id, &clerk, &ticket).await?;
        Ok(Response::new(view))
    }

    type MaterialStream = super::material::MaterialStream;

    async fn material(
        &self,
        req: Request<tongban_proto::common::v1::MaterialRequest>,
    ) -> Result<Response<Self::MaterialStream>, Status> {
        let who = caller(&req)?;
        let stream = super::material::stream(&self.ctx, &who, req.into_inner(), Side::Window)?;
        Ok(Response::new(stream))
    }

    async fn get_case(&self, req: Request<CaseRef>) -> Result<Response<CaseView>, Status> {
        let case = self.window_case(&req.get_ref().case_no)?;
        Ok(Response::new(self.view(&case)?))
    }

    async fn list_cases(
        &self,
        req: Request<ListCasesRequest>,
    ) -> Result<Response<ListCasesReply>, Status> {
        let req = req.into_inner();
        let state = match req.state.trim() {
            "" => None,
            s => Some(
                s.parse::<CaseState>()
                    .map_err(|e| NodeError::at("state", "state", &e))?,
            ),
        };
        // Newest first, through the state index: only the page is read.
        let states = match state {
            Some(state) => vec![state],
            None => CaseState::ALL.to_vec(),
        };
        let page = super::paging::case_page(
            &self.ctx,
            Side::Window,
            &states,
            true,
            super::paging::limit_or(req.limit, 100),
            &req.page_token,
        )?;
        Ok(Response::new(ListCasesReply {
            cases: page.cases,
            next_page_token: page.next,
        }))
    }

    async fn retry(&self, req: Request<CaseRef>) -> Result<Response<CaseView>, Status> {
        let ctx = &self.ctx;
        let (clerk, req, ticket) =
            go_or_replay!(requests::unary(ctx, req, "/tongban.window.v1.Window/Retry").await?);
        let (_lock, mut case) = self.locked(&req.case_no).await?;
        let view = super::retry_parked(ctx, &mut case, &clerk, &ticket).await?;
        Ok(Response::new(view))
    }

    async fn overdue(
        &self,
        req: Request<OverdueRequest>,
    ) -> Result<Response<ListCasesReply>, Status> {
        let req = req.into_inner();
        let limit = super::paging::limit_or(req.limit, usize::MAX);
        let page = super::overdue(&self.ctx, Side::Window, limit, &req.page_token)?;
        Ok(Response::new(ListCasesReply {
            cases: page.cases,
            next_page_token: page.next,
        }))
    }
}
