//! The receiving end of node-to-node handoffs.
//!
//! A stream carries one or more envelopes, each followed by its material
//! chunks. Each envelope is checked (sender from the certificate, agreement,
//! applicant, sizes, digests) while its chunks arrive; the accepted ones are
//! written in one commit (one flush) at the end of the stream, and only then
//! are their signed receipts returned. A stream that breaks off stores
//! nothing. Deduplication is on (sender county, handoff id): a repeat gets
//! the receipt first given, byte for byte.

use std::collections::BTreeMap;
use std::sync::Arc;

use prost::Message;
use sha2::{Digest, Sha256};
use tongban_core::{AuthorityError, CaseEvent, MailLeg, MailStatus, Report};
use tongban_core::{CaseNo, CaseState, CountyCode, ItemCode};
use tongban_ledger::entries::facts;
use tongban_ledger::records::hex;
use tongban_ledger::{
    Batch, CaseRecord, EntryBody, HandoffRecord, IdentityCheckRecord, Received, ReceivedHandoff,
    Side,
};
use tongban_pki::{Identity, Principal};
use tongban_proto::common::v1::{Receipt, SignedCheckpoint, SignedReceipt};
use tongban_proto::federation::v1::federation_server::Federation;
use tongban_proto::federation::v1::refusal::Code;
use tongban_proto::federation::v1::{
    CaseUpdate, Envelope, HandoffFrame, HandoffReply, HandoffResult, Refusal, envelope::Body,
    handoff_frame::Frame, handoff_result::Outcome,
};
use tonic::{Request, Response, Status, Streaming};

use crate::auth::caller;
use crate::change::{self, Change, Outgoing};
use crate::ctx::Ctx;
use crate::ingest::{Ingest, Ingested};
use crate::protocol::{FORMAT_VERSION, RECEIPT_DOMAIN};
use crate::{NodeError, flow, validate, view};

pub(crate) struct FederationService {
    ctx: Arc<Ctx>,
}

impl FederationService {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }
}

/// What an accepted envelope does to this node's cases, applied under the
/// case's lock at commit time (so a reviewer's concurrent change is not lost).
enum Patch {
    /// A new application: the case to create (materials added at commit).
    Create(Box<CaseRecord>),
    /// The supplement of a correction request.
    Supplement,
    /// A step the other side reports.
    Update(Report, Box<CaseUpdate>),
}

/// An envelope that passed its checks.
struct Checked {
    handoff_id: String,
    envelope_sha: String,
    application_id: String,
    sent_at: String,
    patch: Patch,
    actor: String,
}

/// An envelope whose materials are being received.
struct Receiving<'a> {
    checked: Checked,
    ingest: Ingest<'a>,
}

/// An envelope fully received, waiting for the commit.
struct Staged {
    checked: Checked,
    ingested: Ingested,
}

// Staged slots outnumber the others and live only for one stream; boxing
// them would only add allocations.
#[allow(clippy::large_enum_variant)]
/// Why an envelope is not received now.
enum CheckFail {
    /// A final answer: a refusal.
    Final(HandoffResult),
    /// A duplicate: the receipt first given.
    Replay(HandoffResult),
    /// This node cannot decide now; the whole stream fails and is retried.
    Retry(Status),
}

enum Slot {
    Staged(Staged),
    Done(HandoffResult),
}

#[allow(clippy::large_enum_variant)]
enum Current<'a> {
    Receiving(Receiving<'a>),
    /// Refused or replayed: its chunks are read and dropped.
    Skipping(HandoffResult),
}

fn refusal(handoff_id: &str, code: Code, message: String) -> HandoffResult {
    HandoffResult {
        handoff_id: handoff_id.to_owned(),
        outcome: Some(Outcome::Refusal(Refusal {
            code: code as i32,
            message,
        })),
    }
}

fn receipt_result(handoff_id: &str, signed: &[u8]) -> HandoffResult {
    HandoffResult {
        handoff_id: handoff_id.to_owned(),
        outcome: SignedReceipt::decode(signed).ok().map(Outcome::Receipt),
    }
}

fn code_of(e: &NodeError) -> Code {
    match e {
        NodeError::NotPermitted(_) => Code::NotPermitted,
        NodeError::Conflict(_) => Code::AlreadyExists,
        NodeError::TooLarge(_) => Code::TooLarge,
        _ => Code::Invalid,
    }
}

impl FederationService {
    /// Checks an envelope from `sender`; `Err` carries the final result
    /// (refusal or replayed receipt).
    fn check(
        &self,
        sender: &CountyCode,
        bytes: &[u8],
    ) -> Result<(Checked, Vec<tongban_proto::common::v1::MaterialHeader>), CheckFail> {
        let ctx = &self.ctx;
        let envelope = Envelope::decode(bytes).map_err(|e| {
            CheckFail::Final(refusal(
                "",
                Code::Invalid,
                format!("envelope does not decode: {e}"),
            ))
        })?;
        let id = envelope.handoff_id.clone();
        // Storage trouble is this node's problem, not the envelope's: the
        // stream fails as UNAVAILABLE and the sender retries it.
        let refuse = |e: NodeError| match e {
            NodeError::Store(_) | NodeError::Unavailable(_) => CheckFail::Retry(e.into()),
            e => CheckFail::Final(refusal(&id, code_of(&e), e.to_string())),
        };
        if uuid::Uuid::parse_str(&id).is_err() {
            return Err(refuse(NodeError::Invalid(format!(
                "handoff id {id:?} is not a UUID"
            ))));
        }
        let envelope_sha = hex(&Sha256::digest(bytes));
        match ctx.store.received(sender.as_str(), &id) {
            Ok(Some(prior)) if prior.envelope_sha256 == envelope_sha => {
                tracing::info!(peer = %sender, handoff = %id, "duplicate handoff, replaying its receipt");
                return Err(CheckFail::Replay(receipt_result(
                    &id,
                    &prior.signed_receipt,
                )));
            }
            Ok(Some(_)) => {
                tracing::warn!(peer = %sender, handoff = %id, "handoff id reused with other content, refused");
                return Err(refuse(NodeError::Conflict(format!(
                    "handoff {id} from {sender} was already received with other content"
                ))));
            }
            Ok(None) => {}
            Err(e) => return Err(refuse(NodeError::Store(e))),
        }
        self.check_new(sender, envelope, envelope_sha)
            .map_err(refuse)
    }

    fn check_new(
        &self,
        sender: &CountyCode,
        envelope: Envelope,
        envelope_sha: String,
    ) -> Result<(Checked, Vec<tongban_proto::common::v1::MaterialHeader>), NodeError> {
        let ctx = &self.ctx;
        if envelope.version != FORMAT_VERSION {
            return Err(NodeError::Invalid(format!(
                "envelope version {} is not supported (this node speaks {FORMAT_VERSION})",
                envelope.version
            )));
        }
        uuid::Uuid::parse_str(&envelope.application_id).map_err(|_| {
            NodeError::Invalid(format!(
                "application id {:?} is not a UUID",
                envelope.application_id
            ))
        })?;
        let case_no =
            CaseNo::parse(&envelope.case_no).map_err(|e| NodeError::Invalid(e.to_string()))?;
        let receiving = validate::county("receiving county", &envelope.receiving_county)?;
        let home = validate::county("home county", &envelope.home_county)?;
        let patch = match envelope.body {
            Some(Body::Application(app)) => {
                if &receiving != sender {
                    return Err(NodeError::NotPermitted(format!(
                        "the envelope names receiving county {receiving} but was sent by the node of {sender}"
                    )));
                }
                if home != ctx.county {
                    return Err(NodeError::NotPermitted(format!(
                        "the case's home county is {home}, not this node's county {}",
                        ctx.county
                    )));
                }
                if &case_no.county() != sender {
                    return Err(NodeError::NotPermitted(format!(
                        "case number {case_no} was not issued by {sender}"
                    )));
                }
                let item_code = ItemCode::parse(&app.item_code)
                    .map_err(|e| NodeError::Invalid(format!("item: {e}")))?;
                let item = ctx.directory.item(&item_code).ok_or_else(|| {
                    NodeError::Invalid(format!("item {item_code} is not in the catalogue"))
                })?;
                if !ctx.directory.covers(sender, &home, &item_code) {
                    return Err(NodeError::NotPermitted(format!(
                        "no agreement lets {sender} take in {item_code} for {home}"
                    )));
                }
                let delivery = validate::delivery(item, &app.delivery)?;
                let applicant = validate::applicant(app.applicant.as_ref(), ctx.clock.today())?;
                let check = app.identity_check.ok_or_else(|| {
                    NodeError::Invalid("the application carries no identity check".into())
                })?;
                validate::materials(item, &envelope.materials, &ctx.limits, 0)?;
                let missing: Vec<&str> = item
                    .materials
                    .iter()
                    .filter(|m| !envelope.materials.iter().any(|h| h.kind == m.kind))
                    .map(|m| m.kind.as_str())
                    .collect();
                if !missing.is_empty() {
                    return Err(NodeError::Invalid(format!(
                        "the application lacks required materials: {}",
                        missing.join(", ")
                    )));
                }
                if ctx.store.case(&envelope.application_id)?.is_some() {
                    return Err(NodeError::Conflict(format!(
                        "case {case_no} ({}) was already received in another handoff",
                        envelope.application_id
                    )));
                }
                Patch::Create(Box::new(CaseRecord {
                    application_id: envelope.application_id.clone(),
                    case_no: case_no.clone(),
                    side: Side::Home,
                    item_code,
                    receiving_county: receiving,
                    home_county: home,
                    delivery,
                    applicant,
                    materials: Vec::new(),
                    identity_check: Some(IdentityCheckRecord {
                        method: check.method,
                        by: check.by,
                        at: check.at,
                    }),
                    state: CaseState::HandedOff,
                    created_at: ctx.clock.now_rfc3339(),
                    accepted_at: Some(app.accepted_at),
                    note: "handed over: waiting for acceptance by a reviewer".into(),
                    handoffs: Vec::new(),
                    review: Default::default(),
                    mail: Vec::new(),
                    closed_at: None,
                }))
            }
            Some(Body::Supplement(_)) => {
                let case = self.existing(&envelope.application_id, &case_no)?;
                if case.side != Side::Home || case.receiving_county != *sender {
                    return Err(NodeError::NotPermitted(format!(
                        "a supplement for {case_no} comes from its receiving window, not from {sender}"
                    )));
                }
                let item = ctx.directory.item(&case.item_code).ok_or_else(|| {
                    NodeError::Invalid(format!("item {} is not in the catalogue", case.item_code))
                })?;
                let kept: u64 = case
                    .materials
                    .iter()
                    .filter(|m| !envelope.materials.iter().any(|h| h.kind == m.kind))
                    .map(|m| m.size)
                    .sum();
                validate::materials(item, &envelope.materials, &ctx.limits, kept)?;
                Patch::Supplement
            }
            Some(Body::Update(update)) => {
                let case = self.existing(&envelope.application_id, &case_no)?;
                if change::peer_of(ctx, &case) != *sender {
                    return Err(NodeError::NotPermitted(format!(
                        "updates for {case_no} come from the county at its other end, not from {sender}"
                    )));
                }
                if !envelope.materials.is_empty() {
                    return Err(NodeError::Invalid(
                        "a case update carries no materials".into(),
                    ));
                }
                validate::update(&update)?;
                // Who may say it is checked when it is applied, under the
                // case's lock and after the stream's earlier envelopes for
                // the same case (an approval and its result leg often
                // travel together).
                let report = report_of(&update)?;
                Patch::Update(report, Box::new(update))
            }
            None => return Err(NodeError::Invalid("the envelope carries nothing".into())),
        };
        Ok((
            Checked {
                handoff_id: envelope.handoff_id,
                envelope_sha,
                application_id: envelope.application_id,
                sent_at: envelope.sent_at,
                patch,
                actor: envelope.actor,
            },
            envelope.materials,
        ))
    }

    /// Checks a partner's signed checkpoint is the sender's own and returns
    /// what to keep: (seq, encoded). A bad one is logged and dropped: it
    /// proves nothing.
    fn check_checkpoint(
        &self,
        sender: &CountyCode,
        signed: &SignedCheckpoint,
    ) -> Option<(u64, Vec<u8>)> {
        let ctx = &self.ctx;
        let checked = ctx
            .anchor
            .verify_signed(
                &signed.signer_certificate,
                crate::protocol::CHECKPOINT_DOMAIN,
                &signed.checkpoint,
                &signed.signature,
                std::time::SystemTime::now(),
            )
            .map_err(|e| e.to_string())
            .and_then(|signer| match signer.principal {
                Principal::Node { county } if &county == sender => Ok(()),
                _ => Err(format!("signed by {signer}, not by the node of {sender}")),
            })
            .and_then(|()| {
                tongban_proto::common::v1::Checkpoint::decode(signed.checkpoint.as_slice())
                    .map_err(|e| e.to_string())
            })
            .and_then(|cp| {
                if cp.county == sender.as_str() {
                    Ok(cp)
                } else {
                    Err(format!("checkpoint of {} sent by {sender}", cp.county))
                }
            });
        match checked {
            Ok(cp) => Some((cp.seq, signed.encode_to_vec())),
            Err(reason) => {
                tracing::warn!(peer = %sender, %reason, "partner checkpoint rejected");
                None
            }
        }
    }

    /// A case this node already holds.
    fn existing(&self, application_id: &str, case_no: &CaseNo) -> Result<CaseRecord, NodeError> {
        self.ctx.store.case(application_id)?.ok_or_else(|| {
            NodeError::NotFound(format!(
                "case {case_no} ({application_id}) is not on this node"
            ))
        })
    }

    /// Writes every staged handoff in one commit and signs their receipts.
    async fn commit(
        &self,
        peer: &Identity,
        sender: &CountyCode,
        slots: &mut [Slot],
        checkpoint: Option<(u64, Vec<u8>)>,
    ) -> Result<Vec<HandoffResult>, NodeError> {
        let ctx = &self.ctx;
        let now = ctx.clock.now_rfc3339();
        let today = ctx.clock.today();
        let ids = slots.iter().filter_map(|s| match s {
            Slot::Staged(s) => Some(s.checked.application_id.clone()),
            Slot::Done(_) => None,
        });
        let _guards = ctx.locks.lock_all(ids).await;
        let mut results: Vec<Option<HandoffResult>> = vec![None; slots.len()];
        let mut wake = false;
        let store = &ctx.store;
        let node_id = ctx.node_id();
        // What arrives is the partner's report: its node is the actor, and
        // the person its envelope names is kept as its claim.
        let partner = peer.spiffe_id();
        store
            .commit_with(|next_seq| -> Result<Batch, NodeError> {
                let mut batch = Batch::default();
                if let Some((seq, signed)) = checkpoint {
                    batch.put_partner_checkpoint(sender.as_str(), seq, signed);
                }
                let mut cases: BTreeMap<String, CaseRecord> = BTreeMap::new();
                let mut seq = next_seq;
                for (i, slot) in slots.iter_mut().enumerate() {
                    let Slot::Staged(staged) = slot else { continue };
                    let c = &staged.checked;
                    // Re-checked under the write lock: a retry may have raced this stream.
                    if let Some(prior) = store.received(sender.as_str(), &c.handoff_id)? {
                        results[i] = Some(if prior.envelope_sha256 == c.envelope_sha {
                            receipt_result(&c.handoff_id, &prior.signed_receipt)
                        } else {
                            refusal(&c.handoff_id, Code::AlreadyExists, format!("handoff {} was already received with other content", c.handoff_id))
                        });
                        continue;
                    }
                    let current = match cases.get(&c.application_id).cloned() {
                        Some(case) => Some(case),
                        None => store.case(&c.application_id)?,
                    };
                    let before = current.as_ref().map(|case| case.state);
                    let applied = apply_patch(c, current, &staged.ingested, sender, &now, today, &ctx.directory.calendar);
                    let (mut case, body, detail, report, waybill) = match applied {
                        Ok(done) => done,
                        Err(e) => {
                            tracing::warn!(peer = %sender, handoff = %c.handoff_id, error = %e, "handoff refused");
                            // Its staged blobs go when the stream's slots do.
                            results[i] = Some(refusal(&c.handoff_id, code_of(&e), e.to_string()));
                            continue;
                        }
                    };
                    let receipt = Receipt {
                        version: FORMAT_VERSION,
                        handoff_id: c.handoff_id.clone(),
                        application_id: case.application_id.clone(),
                        case_no: case.case_no.to_string(),
                        sender_county: sender.to_string(),
                        receiver_county: ctx.county.to_string(),
                        received_at: now.clone(),
                        envelope_sha256: tongban_ledger::records::unhex(&c.envelope_sha).unwrap_or_default(),
                        materials: staged.ingested.materials.iter().map(view::digest).collect(),
                        ledger_seq: seq,
                        state: case.state.as_str().to_owned(),
                    }
                    .encode_to_vec();
                    let signature = ctx.signer.sign(RECEIPT_DOMAIN, &receipt)?;
                    let signed = SignedReceipt {
                        receipt,
                        signature,
                        signer_certificate: ctx.signer.certificate_der().to_vec(),
                    }
                    .encode_to_vec();
                    case.handoffs.push(HandoffRecord {
                        handoff_id: c.handoff_id.clone(),
                        kind: match &body {
                            EntryBody::HandoffReceived => "application",
                            EntryBody::SupplementReceived => "supplement",
                            _ => "update",
                        }
                        .into(),
                        peer: sender.clone(),
                        sent: false,
                        receipt_seq: Some(seq),
                    });
                    let received = Received {
                        handoff_id: c.handoff_id.clone(),
                        from: sender.clone(),
                        envelope_sha256: c.envelope_sha.clone(),
                        materials: facts(&staged.ingested.materials),
                        claimed_actor: c.actor.clone(),
                    };
                    let note = case.note.clone();
                    let change = Change::new(partner.clone(), detail, body).received(received).note(note);
                    change::stage(ctx, &mut case, before, change, &mut batch);
                    batch.put_received(
                        sender.as_str(),
                        &c.handoff_id,
                        ReceivedHandoff {
                            envelope_sha256: c.envelope_sha.clone(),
                            signed_receipt: signed.clone(),
                            application_id: case.application_id.clone(),
                        },
                    );
                    if let Some(waybill) = waybill {
                        batch.put_waybill(&waybill, &case.application_id);
                    }
                    if let Some((event, update, detail)) = report {
                        // A step this node took on receiving (the clock runs
                        // again): its own act, told back to the sender.
                        let note = case.note.clone();
                        let change = Change::new(node_id.clone(), detail, EntryBody::SupplementTaken)
                            .note(note)
                            .send(Outgoing::Update(event, Box::new(update)));
                        // The state moved with the received entry; this one
                        // reports it.
                        change::stage(ctx, &mut case, before, change, &mut batch);
                        seq += 1;
                        wake = true;
                    }
                    results[i] = Some(receipt_result(&c.handoff_id, &signed));
                    batch.keep_blobs(std::mem::take(&mut staged.ingested.blobs));
                    cases.insert(case.application_id.clone(), case);
                    seq += 1;
                }
                for case in cases.into_values() {
                    batch.put_case(case);
                }
                Ok(batch)
            })
            .await?;
        if wake {
            ctx.wake.notify_one();
        }
        Ok(slots
            .iter_mut()
            .zip(results)
            .map(|(slot, r)| match (slot, r) {
                (_, Some(r)) => r,
                (Slot::Done(r), None) => r.clone(),
                (Slot::Staged(s), None) => {
                    refusal(&s.checked.handoff_id, Code::Invalid, "not processed".into())
                }
            })
            .collect())
    }
}

/// Parses what a partner's update says happened: the event, its mail leg
/// and the state it reports (names exactly as the protocol spells them).
fn report_of(update: &CaseUpdate) -> Result<Report, NodeError> {
    let event: CaseEvent = update
        .event
        .parse()
        .map_err(|e| NodeError::Invalid(format!("update event: {e}")))?;
    let (leg, status) = match &update.mail {
        Some(m) => (
            Some(
                m.leg
                    .parse::<MailLeg>()
                    .map_err(|e| NodeError::Invalid(format!("update mail leg: {e}")))?,
            ),
            Some(
                m.status
                    .parse::<MailStatus>()
                    .map_err(|e| NodeError::Invalid(format!("update mail status: {e}")))?,
            ),
        ),
        None => (None, None),
    };
    let state = match update.state.as_str() {
        "" => None,
        s => Some(
            CaseState::parse_wire(s)
                .map_err(|e| NodeError::Invalid(format!("update state: {e}")))?,
        ),
    };
    Ok(Report {
        event,
        leg,
        state,
        status,
    })
}

/// Who may say what: the step must be the sender's side's to report, in a
/// state of this node's copy where it can happen, moving it only where
/// that step can (see `tongban_core::authority`). A refusal names the
/// event, the side and the state.
fn authorize(case: &CaseRecord, report: &Report) -> Result<(), NodeError> {
    report
        .check(case.side, case.state, case.delivery)
        .map_err(|e| match e {
            AuthorityError::NoLeg { .. } => {
                NodeError::Invalid(format!("case {}: {e}", case.case_no))
            }
            e => NodeError::NotPermitted(format!("case {}: {e}", case.case_no)),
        })
}

/// A report this node sends back when a received envelope changes its side
/// of the case: (event, update, detail).
type Reply = (CaseEvent, CaseUpdate, String);

/// Applies a checked envelope to the case it concerns. Returns the case, the
/// ledger entry kind and detail, a report for the sender if any, and a
/// waybill to index.
#[allow(clippy::type_complexity)]
fn apply_patch(
    checked: &Checked,
    current: Option<CaseRecord>,
    ingested: &Ingested,
    sender: &CountyCode,
    now: &str,
    today: time::Date,
    calendar: &tongban_core::Calendar,
) -> Result<(CaseRecord, EntryBody, String, Option<Reply>, Option<String>), NodeError> {
    match &checked.patch {
        Patch::Create(case) => {
            if current.is_some() {
                return Err(NodeError::Conflict(format!(
                    "case {} was already received in another handoff",
                    case.case_no
                )));
            }
            let mut case = (**case).clone();
            case.materials = ingested.materials.clone();
            let detail = format!("received from {sender} in handoff {}", checked.handoff_id);
            Ok((case, EntryBody::HandoffReceived, detail, None, None))
        }
        Patch::Supplement => {
            let mut case = current.ok_or_else(|| {
                NodeError::NotFound(format!("case {} is gone", checked.application_id))
            })?;
            if case.state != CaseState::CorrectionRequested {
                return Err(NodeError::Precondition(format!(
                    "case {} is {}; no correction request is open",
                    case.case_no, case.state
                )));
            }
            for m in &ingested.materials {
                match case.materials.iter_mut().find(|have| have.kind == m.kind) {
                    Some(slot) => *slot = m.clone(),
                    None => case.materials.push(m.clone()),
                }
            }
            if let Some(open) = case.review.corrections.last_mut() {
                open.answered_at = Some(now.to_owned());
            }
            let next = if case.review.accepted_at.is_some() {
                CaseState::UnderReview
            } else {
                CaseState::HandedOff
            };
            flow::move_to(&mut case, next)?;
            let mut note = String::new();
            if let Some(left) = case.review.paused_days_left {
                note = flow::start_clock(calendar, &mut case, today, left);
            }
            let kinds: Vec<&str> = ingested.materials.iter().map(|m| m.kind.as_str()).collect();
            let detail = format!("supplement received from {sender} ({})", kinds.join(", "));
            let resumed = match &case.review.due_date {
                Some(due) if case.review.clock_running => {
                    format!("; the clock runs again, due {due}{note}")
                }
                _ => String::new(),
            };
            case.note = format!("{detail}{resumed}");
            let report = (
                CaseEvent::SupplementReceived,
                CaseUpdate {
                    due_date: case.review.due_date.clone().unwrap_or_default(),
                    clock_running: case.review.clock_running,
                    ..Default::default()
                },
                case.note.clone(),
            );
            Ok((
                case,
                EntryBody::SupplementReceived,
                detail,
                Some(report),
                None,
            ))
        }
        Patch::Update(report, update) => {
            let mut case = current.ok_or_else(|| {
                NodeError::NotFound(format!("case {} is gone", checked.application_id))
            })?;
            authorize(&case, report)?;
            let at = if checked.sent_at.is_empty() {
                now
            } else {
                checked.sent_at.as_str()
            };
            let waybill = flow::mirror(&mut case, report.event, update, at)?;
            let detail = format!("{} at {sender}: {}", update.event, update.detail);
            let body = EntryBody::UpdateReceived {
                event: update.event.clone(),
            };
            Ok((case, body, detail, None, waybill))
        }
    }
}

#[tonic::async_trait]
impl Federation for FederationService {
    async fn handoff(
        &self,
        req: Request<Streaming<HandoffFrame>>,
    ) -> Result<Response<HandoffReply>, Status> {
        let peer = caller(&req)?;
        let Principal::Node { county: sender } = peer.principal.clone() else {
            return Err(Status::permission_denied("only county nodes may hand off"));
        };
        let ctx = &self.ctx;
        let mut stream = req.into_inner();
        let mut slots: Vec<Slot> = Vec::new();
        let mut current: Option<Current<'_>> = None;
        let mut replayed = false;
        // The sender's checkpoint is kept with the stream's commit (a write
        // of its own cost a sync of its own in the flush), or alone if the
        // stream commits nothing.
        let mut checkpoint: Option<(u64, Vec<u8>)> = None;
        // Ends the current envelope. A content problem refuses it; a local
        // write failure (disk full, I/O) fails the whole stream instead, so
        // that the sender retries rather than parking a good handoff.
        let close = |current: Option<Current<'_>>,
                     slots: &mut Vec<Slot>|
         -> Result<(), NodeError> {
            match current {
                None => {}
                Some(Current::Skipping(result)) => slots.push(Slot::Done(result)),
                Some(Current::Receiving(r)) => {
                    let id = r.checked.handoff_id.clone();
                    match r.ingest.finish() {
                        Ok(ingested) => slots.push(Slot::Staged(Staged {
                            checked: r.checked,
                            ingested,
                        })),
                        Err(e @ NodeError::Store(_)) => return Err(e),
                        Err(e) => {
                            tracing::warn!(peer = %sender, handoff = %id, error = %e, "handoff refused");
                            slots.push(Slot::Done(refusal(&id, code_of(&e), e.to_string())));
                        }
                    }
                }
            }
            Ok(())
        };
        loop {
            let frame = match stream.message().await {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(status) => {
                    tracing::warn!(peer = %sender, error = %status, "handoff stream broke off; nothing stored");
                    return Err(Status::new(
                        status.code(),
                        format!(
                            "handoff stream broke off, nothing was stored: {}",
                            status.message()
                        ),
                    ));
                }
            };
            match frame.frame {
                Some(Frame::Envelope(bytes)) => {
                    if let Err(e) = close(current.take(), &mut slots) {
                        tracing::error!(peer = %sender, error = %e, "cannot store a received material; the sender will retry");
                        return Err(e.into());
                    }
                    current = Some(match self.check(&sender, &bytes) {
                        Ok((checked, headers)) => {
                            if slots.iter().any(|s| matches!(s, Slot::Staged(s) if s.checked.handoff_id == checked.handoff_id)) {
                                Current::Skipping(refusal(&checked.handoff_id, Code::Invalid, "handoff id repeated within one stream".into()))
                            } else {
                                Current::Receiving(Receiving {
                                    checked,
                                    ingest: Ingest::new(&ctx.store, headers),
                                })
                            }
                        }
                        Err(CheckFail::Final(result)) => {
                            if let Some(Outcome::Refusal(r)) = &result.outcome {
                                tracing::warn!(peer = %sender, handoff = %result.handoff_id, reason = %r.message, "handoff refused");
                            }
                            Current::Skipping(result)
                        }
                        Err(CheckFail::Replay(result)) => {
                            replayed = true;
                            Current::Skipping(result)
                        }
                        Err(CheckFail::Retry(status)) => {
                            tracing::warn!(peer = %sender, error = %status.message(), "handoff stream failed, sender will retry");
                            return Err(status);
                        }
                    });
                }
                Some(Frame::Checkpoint(signed)) => {
                    if let Some(kept) = self.check_checkpoint(&sender, &signed) {
                        checkpoint = Some(kept);
                    }
                }
                Some(Frame::Chunk(chunk)) => match current.take() {
                    Some(Current::Receiving(mut r)) => {
                        current = Some(match r.ingest.chunk(chunk) {
                            Ok(()) => Current::Receiving(r),
                            // A write that failed here (disk full, I/O) is
                            // this node's trouble: fail the stream so the
                            // sender retries, instead of a final refusal.
                            Err(e @ NodeError::Store(_)) => {
                                tracing::error!(peer = %sender, error = %e, "cannot store a received material; the sender will retry");
                                return Err(e.into());
                            }
                            Err(e) => {
                                tracing::warn!(peer = %sender, handoff = %r.checked.handoff_id, error = %e, "handoff refused");
                                Current::Skipping(refusal(
                                    &r.checked.handoff_id,
                                    code_of(&e),
                                    e.to_string(),
                                ))
                            }
                        });
                    }
                    Some(skipping @ Current::Skipping(_)) => current = Some(skipping),
                    None => {
                        return Err(Status::invalid_argument("a chunk came before any envelope"));
                    }
                },
                None => {
                    return Err(Status::invalid_argument("empty handoff frame"));
                }
            }
        }
        if let Err(e) = close(current.take(), &mut slots) {
            tracing::error!(peer = %sender, error = %e, "cannot store a received material; the sender will retry");
            return Err(e.into());
        }
        let results = if slots.iter().any(|s| matches!(s, Slot::Staged(_))) {
            match self
                .commit(&peer, &sender, &mut slots, checkpoint.take())
                .await
            {
                Ok(results) => results,
                Err(e) => {
                    return Err(e.into());
                }
            }
        } else {
            if let Some((seq, signed)) = checkpoint.take()
                && let Err(e) = ctx
                    .store
                    .put_partner_checkpoint(sender.as_str(), seq, &signed)
            {
                tracing::error!(peer = %sender, error = %e, "cannot keep partner checkpoint");
            }
            slots
                .into_iter()
                .map(|s| match s {
                    Slot::Done(r) => r,
                    Slot::Staged(_) => unreachable!("no staged slots"),
                })
                .collect()
        };
        if replayed {
            // A replayed receipt may belong to a commit whose flush is still
            // running on another stream: answer only once it is on disk.
            ctx.store.flush().await.map_err(NodeError::from)?;
        }
        let received = results
            .iter()
            .filter(|r| matches!(r.outcome, Some(Outcome::Receipt(_))))
            .count();
        tracing::info!(peer = %sender, envelopes = results.len(), receipted = received, "handoff stream done");
        Ok(Response::new(HandoffReply { results }))
    }
}
