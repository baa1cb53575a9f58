//! Both sides of a case's handoffs, for the verifier: each receipted
//! handoff as the sender recorded it (what it sent, the receipt it holds)
//! against what the receiver recorded, and the receipt's signature against
//! the federation CA. Its findings become the trace's arrows and problems.

use std::collections::BTreeMap;

use prost::Message;
use tongban_ledger::{EntryBody, Payload};
use tongban_pki::TrustAnchor;
use tongban_proto::common::v1::{LedgerEntry, ReceiptBatch, SignedReceipt};

use super::hex;
use super::receipt::{check_receipt, facts_of, sent_materials};
use super::verify::{Arrow, NodeView, typed};

/// Matches both sides of every receipted handoff of the case.
pub(super) fn check_handoffs(
    anchor: &TrustAnchor,
    views: &BTreeMap<String, NodeView<'_>>,
    problems: &mut Vec<String>,
    notes: &mut Vec<String>,
) -> Vec<Arrow> {
    let mut arrows = Vec::new();
    let mut receipted: Vec<String> = Vec::new();
    for (sender, view) in views {
        let entries: Vec<(u64, LedgerEntry, Payload)> = view
            .evidence
            .case_entries
            .iter()
            .filter_map(|ce| typed(ce).map(|(l, p)| (ce.seq, l, p)))
            .collect();
        for (_, entry, p) in &entries {
            let EntryBody::HandoffReceipted {
                handoff_id,
                to,
                receipt: body,
                signature,
                signer_certificate,
                batch,
                ..
            } = &p.body
            else {
                continue;
            };
            let (id, to) = (handoff_id.clone(), to.to_string());
            receipted.push(id.clone());
            let batch = if batch.is_empty() {
                None
            } else {
                match ReceiptBatch::decode(batch.as_slice()) {
                    Ok(b) => Some(b),
                    Err(e) => {
                        problems.push(format!(
                            "handoff {id}: the receipt batch {sender} holds does not decode: {e}"
                        ));
                        continue;
                    }
                }
            };
            let signed = SignedReceipt {
                receipt: body.clone(),
                signature: signature.clone(),
                signer_certificate: signer_certificate.clone(),
                batch,
            };
            let whose = format!("the receipt {sender} holds");
            let Some(receipt) = check_receipt(anchor, &whose, &id, sender, &to, &signed, problems)
            else {
                continue;
            };
            let receipt_materials: Vec<(String, u64, String)> = receipt
                .materials
                .iter()
                .map(|m| (m.kind.clone(), m.size, hex(&m.sha256)))
                .collect();
            // What the sender recorded it sent.
            let sent = entries.iter().find_map(|(seq, _, p)| {
                p.sent
                    .as_ref()
                    .filter(|s| s.handoff_id == id)
                    .map(|s| (*seq, s, sent_materials(&p.body)))
            });
            let mut matched = true;
            let mut sent_seq = entry.seq;
            match sent {
                None => {
                    matched = false;
                    problems.push(format!(
                        "handoff {id}: {sender} holds a receipt but no entry recording what it sent"
                    ));
                }
                Some((seq, s, materials)) => {
                    sent_seq = seq;
                    if s.envelope_sha256 != hex(&receipt.envelope_sha256) {
                        matched = false;
                        problems.push(format!(
                            "handoff {id}: {sender} recorded sending envelope {} but {to} signed for envelope {} (field envelope_sha256)",
                            s.envelope_sha256,
                            hex(&receipt.envelope_sha256)
                        ));
                    }
                    if materials.facts().is_some_and(|m| m != receipt_materials) {
                        matched = false;
                        problems.push(format!(
                            "handoff {id}: the materials {sender} recorded sending differ from those {to} signed for (field materials)"
                        ));
                    }
                }
            }
            let mut received_seq = receipt.ledger_seq;
            let both_sides = views.contains_key(&to);
            match views.get(&to) {
                None => notes.push(format!("handoff {id}: {to} was not queried; only {sender}'s side and {to}'s signature checked")),
                Some(receiver) => match receiver.evidence.case_entries.iter().find(|e| e.seq == receipt.ledger_seq) {
                    None => {
                        matched = false;
                        problems.push(format!(
                            "handoff {id}: {to}'s receipt names its ledger entry {}, which {to} does not show for this case",
                            receipt.ledger_seq
                        ));
                    }
                    Some(r) => {
                        received_seq = r.seq;
                        let typed_r = typed(r);
                        let got = typed_r.as_ref().and_then(|(_, p)| p.received.as_ref());
                        match got {
                            Some(got) if got.handoff_id == id => {
                                if got.envelope_sha256 != hex(&receipt.envelope_sha256) {
                                    matched = false;
                                    problems.push(format!(
                                        "handoff {id}: {to}'s entry {} records envelope {} but its receipt says {} (field envelope_sha256)",
                                        r.seq,
                                        got.envelope_sha256,
                                        hex(&receipt.envelope_sha256)
                                    ));
                                }
                                if facts_of(&got.materials) != receipt_materials {
                                    matched = false;
                                    problems.push(format!(
                                        "handoff {id}: {to}'s entry {} records other materials than its receipt (field materials)",
                                        r.seq
                                    ));
                                }
                            }
                            _ => {
                                matched = false;
                                let kind = typed_r.as_ref().map(|(l, _)| l.kind.as_str()).unwrap_or("an entry that does not decode");
                                let other = got.map(|g| g.handoff_id.as_str()).unwrap_or("none");
                                problems.push(format!(
                                    "handoff {id}: {to}'s entry {} is {kind} for handoff {other}, not the receipt of {id}",
                                    r.seq
                                ));
                            }
                        }
                    }
                },
            }
            arrows.push(Arrow {
                handoff_id: id,
                from: sender.clone(),
                to,
                sent_seq,
                received_seq,
                matched,
                both_sides,
            });
        }
    }
    // Received but not (yet) receipted at the sender: in flight, or lost.
    for (receiver, view) in views {
        for ce in &view.evidence.case_entries {
            let Some((entry, p)) = typed(ce) else {
                continue;
            };
            let Some(got) = &p.received else {
                continue;
            };
            let (id, from) = (&got.handoff_id, got.from.as_str());
            if views.contains_key(from) && !receipted.iter().any(|r| r == id) {
                notes.push(format!(
                    "handoff {id}: {receiver} received it (entry {}) but {from} holds no receipt yet (in flight)",
                    entry.seq
                ));
            }
        }
    }
    arrows
}
