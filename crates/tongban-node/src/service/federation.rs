//! The receiving end of node-to-node handoffs.
//!
//! A stream carries one or more envelopes, each followed by its material
//! chunks. Each envelope is checked (sender from the certificate, agreement,
//! applicant, sizes, digests) while its chunks arrive; the accepted ones are
//! written in one commit (one flush) at the end of the stream, and only then
//! are their signed receipts returned. A stream that breaks off stores
//! nothing. Deduplication is on (sender county, handoff id): a repeat gets
//! the receipt first given, byte for byte.

use std::sync::Arc;

use prost::Message;
use sha2::{Digest, Sha256};
use tongban_core::{CaseNo, CaseState, CountyCode, ItemCode};
use tongban_ledger::records::hex;
use tongban_ledger::{
    Batch, CaseRecord, HandoffRecord, IdentityCheckRecord, NewEntry, ReceivedHandoff, Side,
};
use tongban_pki::Principal;
use tongban_proto::common::v1::{Receipt, SignedReceipt};
use tongban_proto::federation::v1::federation_server::Federation;
use tongban_proto::federation::v1::refusal::Code;
use tongban_proto::federation::v1::{
    Envelope, HandoffFrame, HandoffReply, HandoffResult, Refusal, envelope::Body,
    handoff_frame::Frame, handoff_result::Outcome,
};
use tonic::{Request, Response, Status, Streaming};

use super::Ctx;
use crate::auth::caller;
use crate::ingest::{Ingest, Ingested};
use crate::protocol::{FORMAT_VERSION, RECEIPT_DOMAIN};
use crate::{NodeError, validate, view};

pub(crate) struct FederationService {
    ctx: Arc<Ctx>,
}

impl FederationService {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }
}

/// An envelope that passed its checks, with the case it will create.
struct Checked {
    handoff_id: String,
    envelope_sha: String,
    case: CaseRecord,
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
    ) -> Result<(Checked, Vec<tongban_proto::common::v1::MaterialHeader>), HandoffResult> {
        let ctx = &self.ctx;
        let envelope = Envelope::decode(bytes)
            .map_err(|e| refusal("", Code::Invalid, format!("envelope does not decode: {e}")))?;
        let id = envelope.handoff_id.clone();
        let refuse = |e: NodeError| refusal(&id, code_of(&e), e.to_string());
        if uuid::Uuid::parse_str(&id).is_err() {
            return Err(refuse(NodeError::Invalid(format!(
                "handoff id {id:?} is not a UUID"
            ))));
        }
        let envelope_sha = hex(&Sha256::digest(bytes));
        match ctx.store.received(sender.as_str(), &id) {
            Ok(Some(prior)) if prior.envelope_sha256 == envelope_sha => {
                tracing::info!(peer = %sender, handoff = %id, "duplicate handoff, replaying its receipt");
                return Err(receipt_result(&id, &prior.signed_receipt));
            }
            Ok(Some(_)) => {
                tracing::warn!(peer = %sender, handoff = %id, "handoff id reused with other content, refused");
                return Err(refuse(NodeError::Conflict(format!(
                    "handoff {id} from {sender} was already received with other content"
                ))));
            }
            Ok(None) => {}
            Err(e) => {
                return Err(refuse(NodeError::Unavailable(format!(
                    "cannot check for duplicates: {e}"
                ))));
            }
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
        let Some(Body::Application(app)) = envelope.body else {
            return Err(NodeError::Invalid("envelope carries no application".into()));
        };
        let receiving = validate::county("receiving county", &envelope.receiving_county)?;
        if &receiving != sender {
            return Err(NodeError::NotPermitted(format!(
                "the envelope names receiving county {receiving} but was sent by the node of {sender}"
            )));
        }
        let home = validate::county("home county", &envelope.home_county)?;
        if home != ctx.county {
            return Err(NodeError::NotPermitted(format!(
                "the case's home county is {home}, not this node's county {}",
                ctx.county
            )));
        }
        let case_no = CaseNo::parse(&envelope.case_no)
            .map_err(|e| NodeError::Invalid(format!("case number: {e}")))?;
        if &case_no.county() != sender {
            return Err(NodeError::Invalid(format!(
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
        let applicant = validate::applicant(app.applicant.as_ref())?;
        let check = app.identity_check.ok_or_else(|| {
            NodeError::Invalid("the application carries no identity check".into())
        })?;
        validate::materials(item, &envelope.materials, &ctx.limits, 0)?;
        if ctx.store.case(&envelope.application_id)?.is_some() {
            return Err(NodeError::Conflict(format!(
                "case {case_no} ({}) was already received in another handoff",
                envelope.application_id
            )));
        }
        let case = CaseRecord {
            application_id: envelope.application_id.clone(),
            case_no: case_no.to_string(),
            side: Side::Home,
            item_code: item_code.to_string(),
            receiving_county: receiving.to_string(),
            home_county: home.to_string(),
            delivery: delivery.as_str().to_owned(),
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
        };
        Ok((
            Checked {
                handoff_id: envelope.handoff_id,
                envelope_sha,
                case,
                actor: envelope.actor,
            },
            envelope.materials,
        ))
    }

    /// Writes every staged handoff in one commit and signs their receipts.
    async fn commit(
        &self,
        sender: &CountyCode,
        slots: &mut [Slot],
    ) -> Result<Vec<HandoffResult>, NodeError> {
        let ctx = &self.ctx;
        let now = ctx.clock.now_rfc3339();
        let mut results: Vec<Option<HandoffResult>> = vec![None; slots.len()];
        let mut sign_error = None;
        let store = &ctx.store;
        let node_id = ctx.node_id();
        store
            .commit_with(|next_seq| {
                let mut batch = Batch::default();
                let mut seq = next_seq;
                for (i, slot) in slots.iter().enumerate() {
                    let Slot::Staged(staged) = slot else { continue };
                    let c = &staged.checked;
                    // Re-checked under the write lock: a retry may have raced this stream.
                    if let Ok(Some(prior)) = store.received(sender.as_str(), &c.handoff_id) {
                        results[i] = Some(if prior.envelope_sha256 == c.envelope_sha {
                            receipt_result(&c.handoff_id, &prior.signed_receipt)
                        } else {
                            refusal(&c.handoff_id, Code::AlreadyExists, format!("handoff {} was already received with other content", c.handoff_id))
                        });
                        continue;
                    }
                    let materials: Vec<_> = staged.ingested.materials.iter().map(view::digest).collect();
                    let receipt = Receipt {
                        version: FORMAT_VERSION,
                        handoff_id: c.handoff_id.clone(),
                        application_id: c.case.application_id.clone(),
                        case_no: c.case.case_no.clone(),
                        sender_county: sender.to_string(),
                        receiver_county: ctx.county.to_string(),
                        received_at: now.clone(),
                        envelope_sha256: tongban_ledger::records::unhex(&c.envelope_sha).unwrap_or_default(),
                        materials,
                        ledger_seq: seq,
                        state: CaseState::HandedOff.as_str().to_owned(),
                    }
                    .encode_to_vec();
                    let signature = match ctx.signer.sign(RECEIPT_DOMAIN, &receipt) {
                        Ok(s) => s,
                        Err(e) => {
                            sign_error = Some(e);
                            return Batch::default();
                        }
                    };
                    let signed = SignedReceipt {
                        receipt,
                        signature,
                        signer_certificate: ctx.signer.certificate_der().to_vec(),
                    }
                    .encode_to_vec();
                    let mut case = c.case.clone();
                    case.materials = staged.ingested.materials.clone();
                    case.handoffs.push(HandoffRecord {
                        handoff_id: c.handoff_id.clone(),
                        kind: "application".into(),
                        peer: sender.to_string(),
                        sent: false,
                        signed_receipt: Some(signed.clone()),
                    });
                    batch
                        .append(NewEntry {
                            application_id: case.application_id.clone(),
                            case_no: case.case_no.clone(),
                            actor: if c.actor.is_empty() { node_id.clone() } else { c.actor.clone() },
                            kind: "handoff.received".into(),
                            state: Some(CaseState::HandedOff),
                            payload: view::payload(
                                format!("received from {sender} in handoff {}", c.handoff_id),
                                serde_json::json!({"handoff_id": c.handoff_id, "from": sender.as_str(),
                                    "envelope_sha256": c.envelope_sha,
                                    "materials": case.materials.iter().map(|m| serde_json::json!({"kind": m.kind, "size": m.size, "sha256": m.sha256})).collect::<Vec<_>>()}),
                            ),
                        })
                        .put_received(
                            sender.as_str(),
                            &c.handoff_id,
                            ReceivedHandoff {
                                envelope_sha256: c.envelope_sha.clone(),
                                signed_receipt: signed.clone(),
                                application_id: case.application_id.clone(),
                            },
                        )
                        .put_case(case);
                    results[i] = Some(receipt_result(&c.handoff_id, &signed));
                    seq += 1;
                }
                batch
            })
            .await?;
        if let Some(e) = sign_error {
            return Err(e.into());
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
        let discard = |slots: &[Slot]| {
            for slot in slots {
                if let Slot::Staged(s) = slot {
                    s.ingested.discard(&ctx.store);
                }
            }
        };
        let close = |current: Option<Current<'_>>, slots: &mut Vec<Slot>| match current {
            None => {}
            Some(Current::Skipping(result)) => slots.push(Slot::Done(result)),
            Some(Current::Receiving(r)) => {
                let id = r.checked.handoff_id.clone();
                match r.ingest.finish() {
                    Ok(ingested) => slots.push(Slot::Staged(Staged {
                        checked: r.checked,
                        ingested,
                    })),
                    Err(e) => {
                        tracing::warn!(peer = %sender, handoff = %id, error = %e, "handoff refused");
                        slots.push(Slot::Done(refusal(&id, code_of(&e), e.to_string())));
                    }
                }
            }
        };
        loop {
            let frame = match stream.message().await {
                Ok(Some(frame)) => frame,
                Ok(None) => break,
                Err(status) => {
                    drop(current);
                    discard(&slots);
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
                    close(current.take(), &mut slots);
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
                        Err(result) => {
                            if let Some(Outcome::Refusal(r)) = &result.outcome {
                                tracing::warn!(peer = %sender, handoff = %result.handoff_id, reason = %r.message, "handoff refused");
                            }
                            Current::Skipping(result)
                        }
                    });
                }
                Some(Frame::Chunk(chunk)) => match current.take() {
                    Some(Current::Receiving(mut r)) => {
                        current = Some(match r.ingest.chunk(chunk) {
                            Ok(()) => Current::Receiving(r),
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
                        discard(&slots);
                        return Err(Status::invalid_argument("a chunk came before any envelope"));
                    }
                },
                None => {
                    drop(current);
                    discard(&slots);
                    return Err(Status::invalid_argument("empty handoff frame"));
                }
            }
        }
        close(current.take(), &mut slots);
        let results = if slots.iter().any(|s| matches!(s, Slot::Staged(_))) {
            match self.commit(&sender, &mut slots).await {
                Ok(results) => results,
                Err(e) => {
                    discard(&slots);
                    return Err(e.into());
                }
            }
        } else {
            slots
                .into_iter()
                .map(|s| match s {
                    Slot::Done(r) => r,
                    Slot::Staged(_) => unreachable!("no staged slots"),
                })
                .collect()
        };
        let received = results
            .iter()
            .filter(|r| matches!(r.outcome, Some(Outcome::Receipt(_))))
            .count();
        tracing::info!(peer = %sender, envelopes = results.len(), receipted = received, "handoff stream done");
        Ok(Response::new(HandoffReply { results }))
    }
}
