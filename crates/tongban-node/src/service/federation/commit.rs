//! The one write of a handoff stream: every staged envelope applied, its
//! ledger entry, the received record kept for deduplication and the signed
//! receipt, in one commit; the receipts are returned only after it.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use tongban_core::CountyCode;
use tongban_ledger::entries::facts;
use tongban_ledger::{
    Batch, CaseRecord, EntryBody, HandoffRecord, Received, ReceivedHandoff, Replaced,
};
use tongban_pki::Identity;
use tongban_proto::common::v1::Receipt;
use tongban_proto::federation::v1::HandoffResult;
use tongban_proto::federation::v1::refusal::Code;

use crate::change::{self, Change, Outgoing};
use crate::protocol::FORMAT_VERSION;
use crate::receipt;
use crate::{NodeError, view};

use super::apply::Applied;
use super::{FederationService, Slot, receipt_result, refusal, refused};

impl FederationService {
    /// Writes every staged handoff in one commit and signs their receipts.
    pub(super) async fn commit(
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
        let mut sends = BTreeSet::new();
        // Receipts are signed together once the batch is staged: one
        // signature over their Merkle root (protocol.md §8.5).
        let mut to_sign: Vec<(usize, String, ReceivedHandoff, Receipt)> = Vec::new();
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
                // The stored record each case's first read found, read here
                // under the write lock: what its record replaces.
                let mut replaced: BTreeMap<String, Replaced> = BTreeMap::new();
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
                        None => {
                            let stored = store.case(&c.application_id)?;
                            replaced.insert(c.application_id.clone(), Replaced::of(stored.as_ref()));
                            stored
                        }
                    };
                    let before = current.as_ref().map(|case| case.state);
                    let applied = super::apply::apply_patch(c, current, &staged.ingested, sender, &now, today, &ctx.directory.calendar);
                    let Applied { mut case, body, detail, reply: report, waybill } = match applied {
                        Ok(done) => done,
                        Err(e) => {
                            tracing::warn!(peer = %sender, handoff = %c.handoff_id, error = %e, "handoff refused");
                            // Its staged blobs go when the stream's slots do.
                            results[i] = Some(refused(&c.handoff_id, &e));
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
                    };
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
                        claimed_applied_at: c.claimed_applied_at.clone(),
                    };
                    let note = case.note.clone();
                    let change = Change::new(partner.clone(), detail, body).received(received).note(note);
                    change::stage(ctx, &mut case, before, change, &mut batch);
                    let received = ReceivedHandoff {
                        envelope_sha256: c.envelope_sha.clone(),
                        signed_receipt: Vec::new(),
                        application_id: case.application_id.clone(),
                    };
                    to_sign.push((i, c.handoff_id.clone(), received, receipt));
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
                        sends.extend(change::stage(ctx, &mut case, before, change, &mut batch));
                        seq += 1;
                    }
                    batch.keep_blobs(std::mem::take(&mut staged.ingested.blobs));
                    cases.insert(case.application_id.clone(), case);
                    seq += 1;
                }
                let (staged, receipts): (Vec<_>, Vec<_>) =
                    to_sign.drain(..).map(|(i, id, received, r)| ((i, id, received), r)).unzip();
                let signed = receipt::sign_batch(&ctx.signer, &receipts)?;
                for ((i, handoff_id, mut received), signed) in staged.into_iter().zip(signed) {
                    received.signed_receipt = signed.encode_to_vec();
                    results[i] = Some(receipt_result(&handoff_id, &received.signed_receipt));
                    batch.put_received(sender.as_str(), &handoff_id, received);
                }
                for case in cases.into_values() {
                    match replaced.remove(&case.application_id) {
                        Some(old) => batch.put_case_replacing(case, old),
                        None => batch.put_case(case),
                    };
                }
                Ok(batch)
            })
            .await?;
        for to in &sends {
            ctx.wake.send_to(to.as_str());
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
