//! The receiving end of node-to-node handoffs: the stream loop here, the
//! stages in their own modules — `check` (is this envelope acceptable,
//! before its chunks are read), `apply` (what it does to this node's copy of
//! the case, under the case's lock) and `commit` (one write for the
//! stream, then the signed receipts).
//!
//! A stream carries one or more envelopes, each followed by its material
//! chunks. Each envelope is checked (sender from the certificate, agreement,
//! applicant, sizes, digests) while its chunks arrive; the accepted ones are
//! written in one commit (one flush) at the end of the stream, and only then
//! are their signed receipts returned. A stream that breaks off stores
//! nothing. Deduplication is on (sender county, handoff id): a repeat gets
//! the receipt first given, byte for byte.

mod apply;
mod check;
mod commit;

use std::sync::Arc;

use prost::Message;
use tongban_core::Report;
use tongban_ledger::CaseRecord;
use tongban_pki::Principal;
use tongban_proto::common::v1::SignedReceipt;
use tongban_proto::federation::v1::federation_server::Federation;
use tongban_proto::federation::v1::refusal::Code;
use tongban_proto::federation::v1::{
    CaseUpdate, HandoffFrame, HandoffReply, HandoffResult, Refusal, handoff_frame::Frame,
    handoff_result::Outcome,
};
use tonic::{Request, Response, Status, Streaming};

use crate::NodeError;
use crate::auth::caller;
use crate::ctx::Ctx;
use crate::ingest::{Ingest, Ingested};

pub(crate) struct FederationService {
    ctx: Arc<Ctx>,
    /// Partners' checkpoints already checked and kept.
    checkpoints: check::KnownCheckpoints,
}

impl FederationService {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Self {
            ctx,
            checkpoints: check::KnownCheckpoints::default(),
        }
    }
}

/// What an accepted envelope does to this node's cases, applied under the
/// case's lock at commit time (so a reviewer's concurrent change is not lost).
enum Patch {
    /// A new application: the case to create (materials added at commit).
    Create(Box<CaseRecord>),
    /// The supplement of a correction request, or (`fulfils`) committed
    /// materials of a case accepted under a commitment.
    Supplement {
        /// Whether it delivers committed materials (the case does not move).
        fulfils: bool,
    },
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
    /// An application's `applied_at` as sent (the partner's claim), for
    /// the ledger; empty otherwise.
    claimed_applied_at: String,
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
            reason: None,
        })),
    }
}

/// The refusal of envelope `handoff_id` for `e`: its class, its message
/// and, for a coded refusal, its reason, field and facts, as a client of
/// the node's own services would get them in the status details.
fn refused(handoff_id: &str, e: &NodeError) -> HandoffResult {
    let mut result = refusal(handoff_id, code_of(e), e.to_string());
    if let (NodeError::Refused { refusal: r, .. }, Some(Outcome::Refusal(out))) =
        (e, result.outcome.as_mut())
    {
        out.reason = Some(crate::error::refusal_pb(r));
    }
    result
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
        // A coded refusal is refused as its class says, like its gRPC code.
        NodeError::Refused { refusal, .. } => match refusal.reason.class() {
            tongban_core::refusal::Class::TooLarge => Code::TooLarge,
            tongban_core::refusal::Class::NotPermitted => Code::NotPermitted,
            tongban_core::refusal::Class::Invalid
            | tongban_core::refusal::Class::Precondition
            | tongban_core::refusal::Class::NotFound => Code::Invalid,
        },
        _ => Code::Invalid,
    }
}

/// Ends the current envelope. A content problem refuses it; a local write
/// failure (disk full, I/O) fails the whole stream instead, so that the
/// sender retries rather than parking a good handoff.
async fn close(
    current: Option<Current<'_>>,
    slots: &mut Vec<Slot>,
    sender: &impl std::fmt::Display,
) -> Result<(), NodeError> {
    match current {
        None => {}
        Some(Current::Skipping(result)) => slots.push(Slot::Done(result)),
        Some(Current::Receiving(r)) => {
            let id = r.checked.handoff_id.clone();
            match r.ingest.finish().await {
                Ok(ingested) => slots.push(Slot::Staged(Staged {
                    checked: r.checked,
                    ingested,
                })),
                Err(e @ NodeError::Store(_)) => return Err(e),
                Err(e) => {
                    tracing::warn!(peer = %sender, handoff = %id, error = %e, "handoff refused");
                    slots.push(Slot::Done(refused(&id, &e)));
                }
            }
        }
    }
    Ok(())
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
        let mut checkpoints: Vec<tokio::task::JoinHandle<Option<(u64, Vec<u8>)>>> = Vec::new();
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
                    if let Err(e) = close(current.take(), &mut slots, &sender).await {
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
                    if self.checkpoints.known(&sender, &signed) {
                        // Checked and kept already (the sender reuses its
                        // latest until its head moves): nothing to do.
                        continue;
                    }
                    // Its signature (and, the first time, its certificate
                    // chain) is checked on a blocking thread while the
                    // envelopes and their chunks arrive, not in front of
                    // them: one ECDSA verification less in the handoff's
                    // latency. Awaited before the commit that keeps it.
                    let (ctx, sender) = (ctx.clone(), sender.clone());
                    checkpoints.push(tokio::task::spawn_blocking(move || {
                        Self::check_checkpoint(&ctx, &sender, &signed)
                    }));
                }
                Some(Frame::Chunk(chunk)) => match current.take() {
                    Some(Current::Receiving(mut r)) => {
                        current = Some(match r.ingest.chunk(chunk).await {
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
                                Current::Skipping(refused(&r.checked.handoff_id, &e))
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
        if let Err(e) = close(current.take(), &mut slots, &sender).await {
            tracing::error!(peer = %sender, error = %e, "cannot store a received material; the sender will retry");
            return Err(e.into());
        }
        // Every material of the stream is in: their sync runs while the
        // checkpoint's check ends and the cases are locked (the commit
        // waits for it before writing anything that names them).
        ctx.store.sync_materials_soon();
        // The last good one, as when they were checked in turn.
        let mut checkpoint: Option<(u64, Vec<u8>)> = None;
        for check in checkpoints {
            if let Ok(Some(kept)) = check.await {
                checkpoint = Some(kept);
            }
        }
        let results = if slots.iter().any(|s| matches!(s, Slot::Staged(_))) {
            let kept = checkpoint.as_ref().map(|(_, signed)| signed.clone());
            match self
                .commit(&peer, &sender, &mut slots, checkpoint.take())
                .await
            {
                Ok(results) => {
                    if let Some(signed) = kept {
                        self.checkpoints.kept(&sender, signed);
                    }
                    results
                }
                Err(e) => {
                    return Err(e.into());
                }
            }
        } else {
            if let Some((seq, signed)) = checkpoint.take() {
                match ctx
                    .store
                    .put_partner_checkpoint(sender.as_str(), seq, &signed)
                {
                    Ok(()) => self.checkpoints.kept(&sender, signed),
                    Err(e) => {
                        tracing::error!(peer = %sender, error = %e, "cannot keep partner checkpoint")
                    }
                }
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
