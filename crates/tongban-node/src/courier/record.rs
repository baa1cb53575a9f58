//! What the courier does with a partner's answer: receipts checked and
//! stored, refusals and undeliverable handoffs parked, with the cases'
//! notes, in one commit per batch.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::SystemTime;

use prost::Message;
use sha2::{Digest, Sha256};
use tongban_core::CaseState;
use tongban_ledger::records::unhex;
use tongban_ledger::{Batch, CaseRecord, EntryBody, NewEntry, OutboxEntry, Payload, Replaced};
use tongban_proto::common::v1::{Receipt, SignedReceipt};
use tongban_proto::federation::v1::{HandoffResult, handoff_result::Outcome};

use crate::NodeError;
use crate::change::{self, Change};
use crate::ctx::Ctx;
use crate::receipt;

use super::{Courier, Pending, Shared};

impl Courier {
    /// Stores receipts and refusals of one batch in one commit.
    pub(super) async fn record(
        &self,
        dest: &str,
        batch: &Shared,
        results: Vec<HandoffResult>,
    ) -> Result<(), NodeError> {
        let ctx = &self.ctx;
        // Shared with the checks instead of copied; the checks are over
        // (their tasks awaited, their copies of it dropped) when it is
        // taken back.
        let results = Arc::new(results);
        let checked = self.check_receipts(dest, batch, &results).await;
        let results = Arc::unwrap_or_clone(results);
        let _guards = ctx
            .locks
            .lock_all(batch.iter().map(|(_, e, _)| e.application_id.clone()))
            .await;
        // Each case as changed so far, and the record it replaces as read
        // (under its lock, held to the commit).
        let mut cases: BTreeMap<String, (CaseRecord, Replaced)> = BTreeMap::new();
        let mut commit = Batch::default();
        let mut problems = Vec::new();
        let mut tally = crate::metrics::Tally::default();
        for (((key, entry, raw), result), checked) in batch.iter().zip(results).zip(checked) {
            let case = match cases.get_mut(&entry.application_id) {
                Some((c, _)) => c,
                None => {
                    let Some(c) = ctx.store.case(&entry.application_id)? else {
                        problems.push(format!(
                            "case {} of handoff {} is gone",
                            entry.application_id, entry.handoff_id
                        ));
                        continue;
                    };
                    let replaced = Replaced::of(Some(&c));
                    &mut cases
                        .entry(entry.application_id.clone())
                        .or_insert((c, replaced))
                        .0
                }
            };
            match result.outcome {
                Some(Outcome::Receipt(signed)) => {
                    match checked.expect("checked with its receipt") {
                        Ok(receipt) => {
                            tally.receipt(&entry.handoff_id);
                            // The receiver's state moves this case only for
                            // a handoff of the case itself (QUEUED → HANDED_OFF,
                            // a supplement taken in). An update's receipt
                            // carries the receiver's mirror, which may be
                            // older than this node's own state by now (a
                            // late receipt once set a case sent again back
                            // to MAIL_RETURNED).
                            if entry.kind != "update" {
                                let state: CaseState =
                                    receipt.state.parse().unwrap_or(CaseState::HandedOff);
                                if case.state.can_move_to(state) {
                                    case.state = state;
                                }
                            }
                            case.note = format!(
                                "handed off to {dest}; receipt held (their ledger seq {})",
                                receipt.ledger_seq
                            );
                            if let Some(h) = case
                                .handoffs
                                .iter_mut()
                                .find(|h| h.handoff_id == entry.handoff_id)
                            {
                                h.receipt_seq = Some(receipt.ledger_seq);
                            }
                            let note = case.note.clone();
                            let body = EntryBody::HandoffReceipted {
                                handoff_id: entry.handoff_id.clone(),
                                to: entry.to.clone(),
                                receipt: signed.receipt,
                                signature: signed.signature,
                                signer_certificate: signed.signer_certificate,
                                batch: signed.batch.map(|b| b.encode_to_vec()).unwrap_or_default(),
                                receiver_seq: receipt.ledger_seq,
                            };
                            let detail =
                                format!("receipt from {dest} for handoff {}", entry.handoff_id);
                            let mut change = Change::new(ctx.node_id(), detail, body).note(note);
                            // An update's receipt does not move the case here.
                            if entry.kind == "update" {
                                change = change.without_state();
                            }
                            change::stage(ctx, case, None, change, &mut commit);
                            commit.settle_outbox(entry.to.as_str(), *key, Arc::clone(raw));
                        }
                        Err(reason) => {
                            // The receiver replays the same receipt on every
                            // retry, so retrying cannot help: park it.
                            let reason = format!("receipt from {dest} rejected: {reason}");
                            tally.rejected += 1;
                            tracing::error!(partner = %dest, handoff = %entry.handoff_id, %reason, "handoff parked");
                            let body = EntryBody::HandoffParked {
                                handoff_id: entry.handoff_id.clone(),
                                to: entry.to.clone(),
                            };
                            park_in(&mut commit, ctx, case, *key, entry, body, reason);
                        }
                    }
                }
                Some(Outcome::Refusal(r)) => {
                    let code = tongban_proto::federation::v1::refusal::Code::try_from(r.code)
                        .map(|c| c.as_str_name())
                        .unwrap_or("UNKNOWN");
                    let reason = format!("refused by {dest} ({code}): {}", r.message);
                    tally.refused += 1;
                    tracing::warn!(partner = %dest, handoff = %entry.handoff_id, %reason, "handoff refused, parked");
                    // The receiver's coded reason, kept as its report.
                    let reported = r.reason.clone().and_then(|c| {
                        tongban_ledger::ReportedRefusal::check(c.reason, c.field, c.args)
                    });
                    let body = EntryBody::HandoffRefused {
                        handoff_id: entry.handoff_id.clone(),
                        to: entry.to.clone(),
                        reported,
                    };
                    park_in(&mut commit, ctx, case, *key, entry, body, reason);
                }
                None => problems.push(format!(
                    "{dest} answered nothing for handoff {}",
                    entry.handoff_id
                )),
            }
        }
        for (case, replaced) in cases.into_values() {
            commit.put_case_replacing(case, replaced);
        }
        if !commit.is_empty() {
            ctx.store.commit(commit).await?;
        }
        ctx.metrics.recorded(dest, &tally);
        match problems.first() {
            None => Ok(()),
            Some(p) => Err(NodeError::Unavailable(p.clone())),
        }
    }

    /// Checks the batch's receipts (`None` where the result is not a
    /// receipt), half of them on each of two blocking threads: one ECDSA
    /// verification per receipt is the sender's largest CPU cost, and one
    /// task verifying a whole batch in turn left the other core idle.
    pub(super) async fn check_receipts(
        &self,
        dest: &str,
        batch: &Shared,
        results: &Arc<Vec<HandoffResult>>,
    ) -> Vec<Option<Result<Receipt, String>>> {
        // The indices of the results that are receipts.
        let items: Vec<usize> = results
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r.outcome, Some(Outcome::Receipt(_))))
            .map(|(i, _)| i)
            .collect();
        let half = items.len().div_ceil(2).max(1);
        let mut halves = Vec::new();
        let mut items = items.into_iter();
        loop {
            let part: Vec<_> = items.by_ref().take(half).collect();
            if part.is_empty() {
                break;
            }
            let n = part.len();
            let (ctx, dest) = (self.ctx.clone(), dest.to_owned());
            let (batch, results) = (batch.clone(), results.clone());
            let task = tokio::task::spawn_blocking(move || {
                // A batch-signed root is verified once per part.
                let mut seen = receipt::Verified::default();
                part.iter()
                    .filter_map(|&i| match &results[i].outcome {
                        Some(Outcome::Receipt(signed)) => {
                            Some(check_receipt(&ctx, &dest, &batch[i].1, signed, &mut seen))
                        }
                        _ => None,
                    })
                    .collect::<Vec<_>>()
            });
            halves.push((n, task));
        }
        let mut checked = Vec::new();
        for (n, task) in halves {
            match task.await {
                Ok(part) => checked.extend(part),
                // A check that panicked counts as failed: those handoffs
                // are parked with the reason, not taken as receipted.
                Err(e) => checked.extend(
                    std::iter::repeat_with(|| Err(format!("receipt check failed: {e}"))).take(n),
                ),
            }
        }
        let mut checked = checked.into_iter();
        results
            .iter()
            .map(|r| match r.outcome {
                Some(Outcome::Receipt(_)) => checked.next(),
                _ => None,
            })
            .collect()
    }

    /// Notes the last delivery problem on the cases of a batch (a note
    /// only: the case's state and ledger do not change).
    pub(super) async fn note(&self, batch: &[Pending], note: &str) {
        let ctx = &self.ctx;
        let _guards = ctx
            .locks
            .lock_all(batch.iter().map(|(_, e, _)| e.application_id.clone()))
            .await;
        let mut commit = Batch::default();
        let mut seen = HashSet::new();
        for (_, entry, _) in batch {
            if !seen.insert(entry.application_id.as_str()) {
                continue;
            }
            match ctx.store.case(&entry.application_id) {
                Ok(Some(mut case)) if case.note != note => {
                    case.note = note.to_owned();
                    commit.put_case(case);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::error!(error = %e, "cannot read a case to note a delivery problem")
                }
            }
        }
        if !commit.is_empty()
            && let Err(e) = ctx.store.commit(commit).await
        {
            tracing::error!(error = %e, "cannot note a delivery problem");
        }
    }

    /// Parks entries the courier gave up on, noting why on their cases.
    pub(super) async fn park(&self, dest: &str, batch: &[Pending], reason: &str) {
        let ctx = &self.ctx;
        let _guards = ctx
            .locks
            .lock_all(batch.iter().map(|(_, e, _)| e.application_id.clone()))
            .await;
        let mut commit = Batch::default();
        let mut cases: BTreeMap<String, CaseRecord> = BTreeMap::new();
        for (key, entry, _) in batch {
            let mut parked = entry.clone();
            parked.parked = Some(reason.to_owned());
            let case_no = match ctx.store.case(&entry.application_id) {
                Ok(Some(mut case)) => {
                    case.note = format!(
                        "{reason}; the handoff is parked: fix the cause, then `tongban window retry` (or `review retry`) the case"
                    );
                    let no = case.case_no.to_string();
                    cases.insert(case.application_id.clone(), case);
                    no
                }
                _ => String::new(),
            };
            let payload = Payload::new(
                reason,
                EntryBody::HandoffParked {
                    handoff_id: entry.handoff_id.clone(),
                    to: entry.to.clone(),
                },
            );
            let mut parked_entry = NewEntry::node(ctx.node_id(), &payload);
            parked_entry.application_id = entry.application_id.clone();
            parked_entry.case_no = case_no;
            commit.update_outbox(*key, parked).append(parked_entry);
        }
        for case in cases.into_values() {
            commit.put_case(case);
        }
        match ctx.store.commit(commit).await {
            Ok(_) => ctx.metrics.gave_up(dest, batch.len()),
            Err(e) => tracing::error!(error = %e, "cannot park outbox entries"),
        }
    }
}

/// Parks an outbox entry the courier must not retry, in `commit`: the
/// entry keeps its reason, the case notes it, the ledger records it.
pub(super) fn park_in(
    commit: &mut Batch,
    ctx: &Ctx,
    case: &mut CaseRecord,
    key: u64,
    entry: &OutboxEntry,
    body: EntryBody,
    reason: String,
) {
    let note = format!(
        "{reason}; the handoff is parked: fix the cause, then `tongban window retry` (or `review retry`) the case"
    );
    let mut parked = entry.clone();
    parked.parked = Some(reason.clone());
    let change = Change::new(ctx.node_id(), reason, body)
        .note(note)
        .without_state();
    change::stage(ctx, case, None, change, commit);
    commit.update_outbox(key, parked);
}

/// Checks a receipt against what was sent: signature, signer (the
/// destination's node), and every field and digest.
pub(super) fn check_receipt(
    ctx: &Ctx,
    dest: &str,
    entry: &OutboxEntry,
    signed: &SignedReceipt,
    seen: &mut receipt::Verified,
) -> Result<Receipt, String> {
    // The certificate is checked against the real time, the receipt's date
    // against this node's clock (the one its own entries are dated by).
    let r = receipt::verify_with(&ctx.anchor, signed, SystemTime::now(), seen)
        .map_err(|e| e.to_string())?;
    let materials: Vec<(String, u64, Vec<u8>)> = entry
        .materials
        .iter()
        .map(|m| (m.kind.clone(), m.size, unhex(&m.sha256).unwrap_or_default()))
        .collect();
    let envelope_sha256 = Sha256::digest(&entry.envelope);
    let sent = receipt::Sent {
        handoff_id: &entry.handoff_id,
        application_id: Some(&entry.application_id),
        sender: ctx.county.as_str(),
        receiver: dest,
        envelope_sha256: envelope_sha256.as_slice(),
        materials: Some(&materials),
    };
    receipt::matches(&r, &sent).map_err(|e| e.to_string())?;
    let now = SystemTime::from(ctx.clock.now());
    receipt::check_time(&r, now, ctx.delivery.receipt_skew).map_err(|e| e.to_string())?;
    Ok(r)
}
