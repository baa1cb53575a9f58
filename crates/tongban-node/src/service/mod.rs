//! The gRPC service implementations, one module per service, and the
//! context they share.

mod audit;
mod federation;
mod mail;
mod review;
mod window;

use std::sync::Arc;

use prost::Message;
use tokio::sync::Notify;
use tongban_core::CaseState;
use tongban_core::{CountyCode, Directory};
use tongban_ledger::{CaseRecord, Side, Store};
use tongban_pki::Identity;
use tongban_pki::tls::TlsMaterial;
use tongban_pki::{NodeSigner, TrustAnchor};
use tongban_proto::common::v1::{CaseView, Checkpoint, SignedCheckpoint};

pub(crate) use audit::AuditService;
pub(crate) use federation::FederationService;
pub(crate) use mail::MailService;
pub(crate) use mail::record_event as record_carrier_event;
pub(crate) use review::ReviewService;
pub(crate) use window::WindowService;

use crate::clock::Clock;
use crate::config::{Delivery, Limits, MailPolicy, NodeConfig, Review};
use crate::flow::{self, Change};
use crate::locks::{CaseGuard, CaseLocks};
use crate::{NodeError, view};

/// What every service and the courier share.
pub(crate) struct Ctx {
    pub(crate) county: CountyCode,
    pub(crate) directory: Arc<Directory>,
    pub(crate) limits: Limits,
    pub(crate) delivery: Delivery,
    pub(crate) store: Arc<Store>,
    pub(crate) signer: Arc<NodeSigner>,
    pub(crate) anchor: TrustAnchor,
    pub(crate) tls: TlsMaterial,
    pub(crate) clock: Clock,
    /// Wakes the courier when the outbox gains an entry.
    pub(crate) wake: Notify,
    /// Per-case locks for read-change-commit.
    pub(crate) locks: CaseLocks,
    pub(crate) review: Review,
    pub(crate) mail: MailPolicy,
    /// The checkpoint signed last, with its seq.
    last_checkpoint: std::sync::Mutex<Option<(u64, SignedCheckpoint)>>,
}

impl Ctx {
    pub(crate) fn new(config: &NodeConfig, store: Arc<Store>) -> Self {
        Self {
            county: config.county.clone(),
            directory: config.directory.clone(),
            limits: config.limits,
            delivery: config.delivery,
            store,
            signer: config.signer.clone(),
            anchor: config.anchor.clone(),
            tls: config.tls.clone(),
            clock: config.clock.clone(),
            wake: Notify::new(),
            locks: CaseLocks::default(),
            review: config.review,
            mail: config.mail,
            last_checkpoint: std::sync::Mutex::new(None),
        }
    }

    /// This node's SPIFFE ID, the actor of entries the node writes itself.
    pub(crate) fn node_id(&self) -> String {
        self.signer.identity().spiffe_id()
    }

    /// A case by number, which must exist on this node.
    pub(crate) fn case(&self, case_no: &str) -> Result<CaseRecord, NodeError> {
        let case_no = case_no.trim();
        tongban_core::CaseNo::parse(case_no).map_err(|e| NodeError::Invalid(e.to_string()))?;
        self.store.case_by_no(case_no)?.ok_or_else(|| {
            NodeError::NotFound(format!("no case {case_no} on the node of {}", self.county))
        })
    }

    /// A checkpoint of the durable ledger head, signed by this node; reuses
    /// the last one when that head has not moved. `keep` also stores it in
    /// the node's own history (the periodic and the auditors' checkpoints);
    /// the one that opens each handoff stream is not stored, since that
    /// write cost a sync of its own in the next flush, in the latency path.
    pub(crate) fn checkpoint(&self, keep: bool) -> Result<SignedCheckpoint, NodeError> {
        // The durable head, not the head: no flush per handoff stream (it was
        // one fsync in the latency path), and never a checkpoint over entries
        // a crash could still take back.
        let (seq, hash) = self.store.durable_head();
        let last = self
            .last_checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        let reuse = match last {
            Some((last, signed)) if last == seq => Some(signed),
            _ => match self.store.latest_checkpoint()? {
                Some((last, bytes)) if last == seq => {
                    SignedCheckpoint::decode(bytes.as_slice()).ok()
                }
                _ => None,
            },
        };
        if let Some(signed) = reuse {
            if keep {
                self.store.put_checkpoint(seq, &signed.encode_to_vec())?;
            }
            return Ok(signed);
        }
        let checkpoint = Checkpoint {
            version: crate::protocol::FORMAT_VERSION,
            county: self.county.to_string(),
            seq,
            head_hash: hash.to_vec(),
            at: self.clock.now_rfc3339(),
        }
        .encode_to_vec();
        let signature = self
            .signer
            .sign(crate::protocol::CHECKPOINT_DOMAIN, &checkpoint)?;
        let signed = SignedCheckpoint {
            checkpoint,
            signature,
            signer_certificate: self.signer.certificate_der().to_vec(),
        };
        if keep {
            self.store.put_checkpoint(seq, &signed.encode_to_vec())?;
        }
        *self
            .last_checkpoint
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = Some((seq, signed.clone()));
        Ok(signed)
    }

    /// A case by number, which must be on this node's `side`.
    pub(crate) fn case_on(&self, case_no: &str, side: Side) -> Result<CaseRecord, NodeError> {
        let case = self.case(case_no)?;
        if case.side != side {
            return Err(NodeError::NotFound(match side {
                Side::Window => format!(
                    "case {case_no} was not taken in at the window of {}",
                    self.county
                ),
                Side::Home => format!(
                    "case {case_no} was not handed to {} for review",
                    self.county
                ),
            }));
        }
        Ok(case)
    }

    /// A case on `side`, locked, read again under the lock.
    pub(crate) async fn locked_case(
        &self,
        case_no: &str,
        side: Side,
    ) -> Result<(CaseGuard, CaseRecord), NodeError> {
        let id = self.case_on(case_no, side)?.application_id;
        let guard = self.locks.lock(&id).await;
        let case = self
            .store
            .case(&id)?
            .ok_or_else(|| NodeError::NotFound(format!("case {case_no} disappeared")))?;
        Ok((guard, case))
    }
}

/// Puts the case's parked outbox entries back in the queue, recording who
/// did so, and wakes the courier. Refused if none are parked.
pub(crate) async fn retry_parked(
    ctx: &Ctx,
    case: &mut CaseRecord,
    who: &Identity,
) -> Result<(), NodeError> {
    let parked: Vec<_> = ctx
        .store
        .outbox()?
        .into_iter()
        .filter(|(_, e, _)| e.application_id == case.application_id && e.parked.is_some())
        .collect();
    if parked.is_empty() {
        return Err(NodeError::Precondition(format!(
            "case {} has no parked handoff",
            case.case_no
        )));
    }
    let mut batch = tongban_ledger::Batch::default();
    let mut reasons = Vec::new();
    for (key, entry, _) in parked {
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
    flow::save(
        ctx,
        case,
        Change {
            actor: who.spiffe_id(),
            kind: "handoff.retried",
            detail,
            fields: serde_json::json!({}),
            report: None,
        },
        batch,
    )
    .await?;
    ctx.wake.notify_one();
    Ok(())
}

/// Every state of a case that is not finished.
pub(crate) const OPEN_STATES: [CaseState; 10] = [
    CaseState::CorrectionAtWindow,
    CaseState::ReadyAtWindow,
    CaseState::Queued,
    CaseState::HandedOff,
    CaseState::UnderReview,
    CaseState::CorrectionRequested,
    CaseState::Approved,
    CaseState::ResultInTransit,
    CaseState::ReadyForPickup,
    CaseState::MailReturned,
];

/// Hands the result to the applicant (or the company's legal
/// representative) and closes the case: at the window for results mailed
/// to it, at home for collection there.
pub(crate) async fn hand_out(
    ctx: &Ctx,
    case: &mut CaseRecord,
    recipient_id: &str,
    who: &Identity,
) -> Result<(), NodeError> {
    let here = match case.side {
        Side::Window => case.state == CaseState::ReadyForPickup && case.delivery == "mail-window",
        Side::Home => {
            (case.state == CaseState::ReadyForPickup && case.delivery == "collect-home")
                || case.state == CaseState::MailReturned
        }
    };
    if !here {
        let place = match case.side {
            Side::Window => "at the receiving window (delivery mail-window, result arrived)",
            Side::Home => "at the home authority (delivery collect-home, or a returned result)",
        };
        return Err(NodeError::Precondition(format!(
            "case {} is {} with delivery {}; results are handed out {place} when READY_FOR_PICKUP",
            case.case_no, case.state, case.delivery
        )));
    }
    let recipient = recipient_id.trim().to_uppercase();
    let collectors: Vec<&str> = match &case.applicant {
        tongban_ledger::ApplicantRecord::Person { resident_id, .. } => vec![resident_id],
        tongban_ledger::ApplicantRecord::Company { legal_rep_id, .. } => vec![legal_rep_id],
    };
    if !collectors.contains(&recipient.as_str()) {
        tracing::warn!(case = %case.case_no, recipient = %tongban_core::mask_id(&recipient), "hand-out refused: id does not match");
        return Err(NodeError::NotPermitted(format!(
            "ID {} is not the applicant's (or the company's legal representative's); the result is not handed out",
            tongban_core::mask_id(&recipient)
        )));
    }
    if case.state == CaseState::MailReturned {
        flow::move_to(case, CaseState::ReadyForPickup)?;
    }
    flow::move_to(case, CaseState::Closed)?;
    let now = ctx.clock.now_rfc3339();
    case.closed_at = Some(now);
    let detail = format!(
        "result handed out to {} and case closed",
        tongban_core::mask_id(&recipient)
    );
    let report = tongban_proto::federation::v1::CaseUpdate {
        event: "case.closed".into(),
        ..Default::default()
    };
    flow::save(
        ctx,
        case,
        Change {
            actor: who.spiffe_id(),
            kind: "case.closed",
            detail,
            fields: serde_json::json!({"recipient": tongban_core::mask_id(&recipient)}),
            report: Some(report),
        },
        tongban_ledger::Batch::default(),
    )
    .await
}

/// Cases on `side` past their promised date, and cases with a mail leg in
/// transit longer than the configured days, most overdue first.
pub(crate) fn overdue(ctx: &Ctx, side: Side) -> Result<Vec<CaseView>, NodeError> {
    let today = ctx.clock.today();
    let now = ctx.clock.now();
    let mut out: Vec<(i64, CaseView)> = Vec::new();
    for case in ctx.store.cases_in(side, &OPEN_STATES, false, usize::MAX)? {
        let mut reasons = Vec::new();
        let mut weight = 0;
        if case.review.clock_running
            && let Some(left) = flow::days_left(&case, today)
            && left < 0
        {
            reasons.push(format!(
                "{} working days past the promised date {}",
                -left,
                case.review.due_date.as_deref().unwrap_or_default()
            ));
            weight = -left;
        }
        for leg in &case.mail {
            if matches!(leg.status.as_str(), "delivered" | "returned" | "lost") {
                continue;
            }
            let sent = time::OffsetDateTime::parse(
                &leg.sent_at,
                &time::format_description::well_known::Rfc3339,
            )
            .ok();
            if let Some(sent) = sent {
                let days = (now - sent).whole_days();
                if days > i64::from(ctx.mail.max_transit_days) {
                    reasons.push(format!(
                        "{} leg {} in transit for {days} days",
                        leg.leg, leg.waybill
                    ));
                    weight = weight.max(days);
                }
            }
        }
        if !reasons.is_empty() {
            let mut v = view::case_view(ctx, &case, false)?;
            v.note = reasons.join("; ");
            out.push((weight, v));
        }
    }
    out.sort_by_key(|(weight, _)| std::cmp::Reverse(*weight));
    Ok(out.into_iter().map(|(_, v)| v).collect())
}
