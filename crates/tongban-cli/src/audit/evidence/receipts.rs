//! The receipt checks of `audit verify`: each receipt a node gave as
//! receiver against its record and ledger entry, each receipt it holds as
//! sender against the entry recording what it sent (an approval's result
//! document too), and every handoff received having its receipt. Each
//! problem carries its kind and the receipt's facts, for a page that words
//! it in its own language (`console/findings.rs`).

use prost::Message;
use tongban_ledger::MaterialFact;
use tongban_pki::TrustAnchor;
use tongban_proto::common::v1::{Receipt, SignedReceipt};

use super::super::receipt::{Sent, check_receipt_found};
use super::super::{hex, unhex};
use super::{At, Finding, GivenHex, Index, Problem, ReceivedAt};

impl At<'_> {
    /// [`check_receipt`], its problems about this entry.
    fn receipt(
        &mut self,
        anchor: &TrustAnchor,
        whose: &str,
        ids: (&str, &str, &str),
        signed: &SignedReceipt,
    ) -> Option<Receipt> {
        let mut found = Vec::new();
        let (id, from, to) = ids;
        let receipt = check_receipt_found(anchor, whose, id, from, to, signed, &mut found);
        found
            .into_iter()
            .for_each(|(kind, facts, text)| self.problem(kind, facts, text));
        receipt
    }
}

/// The facts naming a receipt: its handoff, the node checked, the case,
/// whether it gave or holds it, and the entry holding or recording it.
fn receipt_context(
    id: &str,
    county: &str,
    case_no: &str,
    role: &str,
    entry: Option<u64>,
) -> Vec<(&'static str, String)> {
    vec![
        ("handoff", id.to_owned()),
        ("county", county.to_owned()),
        ("case", case_no.to_owned()),
        ("role", role.to_owned()),
        ("entry", entry.map(|s| s.to_string()).unwrap_or_default()),
    ]
}

impl Index {
    /// The receipts the node of `county` gave: each verifies, names what
    /// its record and its ledger entry say; and every handoff its entries
    /// record receiving has one.
    pub(crate) fn check_given(
        &self,
        anchor: &TrustAnchor,
        county: &str,
        given: &[GivenHex],
        problems: &mut Vec<Finding>,
    ) {
        for g in given {
            let id = &g.handoff_id;
            let entry = self.received.get(id);
            let mut at = At {
                out: problems,
                seq: entry.map(|r| r.seq),
                case_no: &g.case_no,
                context: receipt_context(id, county, &g.case_no, "given", entry.map(|r| r.seq)),
            };
            let whose = match entry {
                Some(r) => format!(
                    "the receipt {county} gave for case {} (its entry {})",
                    g.case_no, r.seq
                ),
                None => format!("the receipt {county} gave for case {}", g.case_no),
            };
            let signed = unhex("signed_receipt", &g.signed_receipt)
                .ok()
                .and_then(|b| SignedReceipt::decode(b.as_slice()).ok());
            let Some(signed) = signed else {
                at.problem(
                    Problem::ReceiptUndecodable,
                    Vec::new(),
                    format!("handoff {id}: {whose} does not decode"),
                );
                continue;
            };
            let Some(receipt) = at.receipt(anchor, &whose, (id, &g.from, county), &signed) else {
                continue;
            };
            if receipt.case_no != g.case_no {
                at.problem(
                    Problem::ReceiptOtherCase,
                    vec![("named", receipt.case_no.clone())],
                    format!(
                        "handoff {id}: {whose} names case {}, not {}",
                        receipt.case_no, g.case_no
                    ),
                );
            }
            if hex(&receipt.envelope_sha256) != g.envelope_sha256 {
                at.problem(
                    Problem::ReceiptEnvelope,
                    vec![
                        ("named", hex(&receipt.envelope_sha256)),
                        ("recorded", g.envelope_sha256.clone()),
                    ],
                    format!(
                        "handoff {id}: {whose} names envelope {} but its record holds {} (field envelope_sha256)",
                        hex(&receipt.envelope_sha256),
                        g.envelope_sha256
                    ),
                );
            }
            match entry {
                None => at.problem(
                    Problem::ReceiptNoEntry,
                    vec![("named", receipt.ledger_seq.to_string())],
                    format!(
                        "handoff {id}: {whose} names its ledger entry {}, but no entry of {county} records receiving {id}",
                        receipt.ledger_seq
                    ),
                ),
                Some(r) => check_against_entry(county, id, &whose, &receipt, r, &mut at),
            }
        }
        let mut unreceipted: Vec<(&String, &ReceivedAt)> = self
            .received
            .iter()
            .filter(|(id, _)| !given.iter().any(|g| &g.handoff_id == *id))
            .collect();
        unreceipted.sort_by_key(|(_, r)| r.seq);
        for (id, r) in unreceipted {
            At {
                out: problems,
                seq: Some(r.seq),
                case_no: &r.case_no,
                context: Vec::new(),
            }
            .problem(
                Problem::Unreceipted,
                vec![
                    ("handoff", id.clone()),
                    ("county", county.to_owned()),
                    ("seq", r.seq.to_string()),
                ],
                format!(
                    "handoff {id}: {county} recorded receiving it (entry {} {}) but holds no receipt it gave",
                    r.seq, r.kind
                ),
            );
        }
    }

    /// The receipts the node of `county` holds as sender: each verifies,
    /// names what the entry holding it says, and matches the entry that
    /// recorded what was sent.
    pub(crate) fn check_held(
        &self,
        anchor: &TrustAnchor,
        county: &str,
        problems: &mut Vec<Finding>,
    ) {
        for h in &self.held {
            let id = &h.handoff_id;
            let mut at = At {
                out: problems,
                seq: Some(h.seq),
                case_no: &h.case_no,
                context: receipt_context(id, county, &h.case_no, "held", Some(h.seq)),
            };
            let whose = format!("the receipt {county} holds (entry {})", h.seq);
            let Some(receipt) = at.receipt(anchor, &whose, (id, county, &h.to), &h.signed) else {
                continue;
            };
            if receipt.ledger_seq != h.receiver_seq {
                at.problem(
                    Problem::HeldReceiverSeq,
                    vec![
                        ("to", h.to.clone()),
                        ("recorded", h.receiver_seq.to_string()),
                        ("named", receipt.ledger_seq.to_string()),
                    ],
                    format!(
                        "handoff {id}: entry {} says {}'s receipt names its entry {}, the receipt names {} (field receiver_seq)",
                        h.seq, h.to, h.receiver_seq, receipt.ledger_seq
                    ),
                );
            }
            let Some(sent) = self.sent.get(id) else {
                at.problem(
                    Problem::HeldNothingSent,
                    Vec::new(),
                    format!(
                        "handoff {id}: {county} holds a receipt (entry {}) but no entry recording what it sent",
                        h.seq
                    ),
                );
                continue;
            };
            if sent.envelope_sha256 != hex(&receipt.envelope_sha256) {
                at.problem(
                    Problem::SentEnvelope,
                    vec![
                        ("sent", sent.seq.to_string()),
                        ("recorded", sent.envelope_sha256.clone()),
                        ("to", h.to.clone()),
                        ("named", hex(&receipt.envelope_sha256)),
                    ],
                    format!(
                        "handoff {id}: {county} recorded sending envelope {} (entry {}) but {} signed for envelope {} (field envelope_sha256)",
                        sent.envelope_sha256,
                        sent.seq,
                        h.to,
                        hex(&receipt.envelope_sha256)
                    ),
                );
            }
            match &sent.materials {
                Sent::Materials(m) if facts(m) != receipt_facts(&receipt) => at.problem(
                    Problem::SentMaterials,
                    vec![("sent", sent.seq.to_string()), ("to", h.to.clone())],
                    format!(
                        "handoff {id}: the materials {county} recorded sending (entry {}) differ from those {} signed for (field materials)",
                        sent.seq, h.to
                    ),
                ),
                Sent::Result(r) => check_result(county, id, &h.to, sent.seq, r, &receipt, &mut at),
                _ => {}
            }
        }
    }
}

/// The receiver's entry for a handoff against the receipt it gave.
fn check_against_entry(
    county: &str,
    id: &str,
    whose: &str,
    receipt: &Receipt,
    r: &ReceivedAt,
    at: &mut At<'_>,
) {
    if receipt.ledger_seq != r.seq {
        at.problem(
            Problem::ReceiptOtherEntry,
            vec![
                ("named", receipt.ledger_seq.to_string()),
                ("seq", r.seq.to_string()),
            ],
            format!(
                "handoff {id}: {whose} names its ledger entry {}, but {county} recorded receiving {id} in entry {}",
                receipt.ledger_seq, r.seq
            ),
        );
    }
    if r.envelope_sha256 != hex(&receipt.envelope_sha256) {
        at.problem(
            Problem::ReceivedEnvelope,
            vec![
                ("seq", r.seq.to_string()),
                ("recorded", r.envelope_sha256.clone()),
                ("named", hex(&receipt.envelope_sha256)),
            ],
            format!(
                "handoff {id}: {county}'s entry {} records envelope {} but {whose} says {} (field envelope_sha256)",
                r.seq,
                r.envelope_sha256,
                hex(&receipt.envelope_sha256)
            ),
        );
    }
    if facts(&r.materials) != receipt_facts(receipt) {
        at.problem(
            Problem::ReceivedMaterials,
            vec![("seq", r.seq.to_string())],
            format!(
                "handoff {id}: {county}'s entry {} records other materials than {whose} (field materials)",
                r.seq
            ),
        );
    }
}

/// The result document the home recorded approving (entry `sent`)
/// against the one the window signed for: the courier checks the same
/// before it takes the receipt, and an auditor checks it again offline.
fn check_result(
    county: &str,
    id: &str,
    to: &str,
    sent: u64,
    result: &MaterialFact,
    receipt: &Receipt,
    at: &mut At<'_>,
) {
    let named = receipt.materials.iter().find(|m| m.kind == result.kind);
    let same = named.is_some_and(|m| m.size == result.size && hex(&m.sha256) == result.sha256);
    if same && receipt.materials.len() == 1 {
        return;
    }
    let (named_size, named_sha256) = named.map_or((String::new(), String::new()), |m| {
        (m.size.to_string(), hex(&m.sha256))
    });
    let says = match named {
        Some(m) => format!("{} bytes, sha256 {}", m.size, hex(&m.sha256)),
        None => "no result document".to_owned(),
    };
    at.problem(
        Problem::SentResult,
        vec![
            ("sent", sent.to_string()),
            ("to", to.to_owned()),
            ("size", result.size.to_string()),
            ("sha256", result.sha256.clone()),
            ("named_size", named_size),
            ("named_sha256", named_sha256),
        ],
        format!(
            "handoff {id}: the result document {county} recorded approving (entry {sent}: {} bytes, sha256 {}) is not the one {to} signed for ({says}) (field result)",
            result.size, result.sha256
        ),
    );
}

fn facts(m: &[MaterialFact]) -> Vec<(String, u64, String)> {
    m.iter()
        .map(|m| (m.kind.clone(), m.size, m.sha256.clone()))
        .collect()
}

fn receipt_facts(r: &Receipt) -> Vec<(String, u64, String)> {
    r.materials
        .iter()
        .map(|m| (m.kind.clone(), m.size, hex(&m.sha256)))
        .collect()
}
