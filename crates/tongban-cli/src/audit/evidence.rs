//! Checking the evidence behind a node's ledger: the materials it stores
//! (which it re-hashed itself and reported, see the `Evidence` RPC) against
//! the digests its ledger entries name, and the receipts it holds (the
//! sender's copy, in its `handoff.receipted` entries) and gave (the
//! receiver's copy, in its received-handoff records) against the CA and
//! against its entries. `audit verify` checks a whole ledger this way and
//! `audit trace` one case; each problem names the case, the material kind or
//! the handoff, and the entry.
//!
//! Each problem is a [`Finding`]: its words, and the entry and case it
//! concerns where there is one, so a page can mark it at that entry. The
//! materials are checked here, the receipts in [`receipts`].
//!
//! What this proves and what it does not is in `docs/audit.md` §4.1: a node
//! that lies about its own re-hash is caught only by its partner's copy and
//! the receipts, which name the same digests.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use tongban_ledger::{EntryBody, MaterialFact, Payload};
use tongban_proto::audit::v1::{GivenReceipt, MaterialCheck};
use tongban_proto::common::v1::{LedgerEntry, SignedReceipt};

use super::hex;
use super::receipt::{Sent, sent_materials};

mod receipts;

/// A problem found, with what it concerns. Its text names the entry and
/// case too (it is what the CLI prints); `seq` and `case_no` are for
/// marking it at them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Finding {
    /// The ledger entry it concerns, if one.
    pub(crate) seq: Option<u64>,
    /// The case it concerns, empty if none.
    pub(crate) case_no: String,
    /// What is wrong, in the words every report uses.
    pub(crate) text: String,
    /// What kind of problem it is, so a page in another language words it
    /// from [`Finding::facts`]; [`Problem::Other`] keeps [`Finding::text`].
    /// Not in any output of the CLI, whose words are `text`.
    #[serde(skip)]
    pub(crate) kind: Problem,
    /// The named facts the kind's words need.
    #[serde(skip)]
    pub(crate) facts: Vec<(&'static str, String)>,
}

/// The kinds of problem a reader can word in its own language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Problem {
    /// The chain breaks at an entry that does not decode (`seq`).
    ChainUndecodable,
    /// An entry is missing (`seq`, `came`: the seq that came instead).
    ChainMissing,
    /// An entry was altered: its hash no longer matches the next entry's
    /// `prev_hash` (`seq`, `next`).
    ChainAltered,
    /// An entry's payload does not match its digest (`seq`).
    ChainPayload,
    /// The chain does not end at the node's signed checkpoint (`seq`).
    ChainCheckpoint,
    /// The ledger ends before what this console verified (`county`,
    /// `kept`: where it ends now, `head`: how far it was verified).
    EntriesDropped,
    /// An entry is not the one this console verified at its seq before
    /// (`county`, `seq`, `head`): history was rewritten and re-chained.
    HistoryRewritten,
    /// A stored material's digest is named by no entry (`county`, `case`,
    /// `kind`).
    MaterialUnnamed,
    /// A stored material cannot be read (`county`, `case`, `kind`, `seq`,
    /// `detail`, English).
    MaterialUnreadable,
    /// A stored material does not hash to what its entry names (`county`,
    /// `case`, `kind`, `seq`, `size`, `recorded_size`).
    MaterialAltered,
    /// A receipt the node gave does not decode (`handoff`, `case`).
    ReceiptUndecodable,
    /// A handoff recorded as received without the receipt given for it
    /// (`handoff`, `county`, `seq`).
    Unreceipted,
    // The receipt checks below each come with the receipt they concern:
    // `handoff`, `county` (the node checked), `case`, `role` (`given`: a
    // receipt it gave as receiver, `held`: one it holds as sender) and
    // `entry` (the entry holding or recording it; empty if none).
    /// The receipt's signature does not verify (`detail`, English).
    ReceiptSignature,
    /// The receipt is signed by another node than the receiver's
    /// (`signer`, `to`).
    ReceiptSigner,
    /// The receipt names another handoff or other counties (`named`,
    /// `named_from`, `named_to`, `from`, `to`).
    ReceiptOtherHandoff,
    /// The receipt names another case (`named`).
    ReceiptOtherCase,
    /// The receipt names another envelope than the receiver's record of
    /// it (`named`, `recorded`).
    ReceiptEnvelope,
    /// The receipt names a ledger entry, but no entry records receiving
    /// the handoff (`named`).
    ReceiptNoEntry,
    /// The receipt names another entry than the one recording receiving
    /// the handoff (`named`, `seq`).
    ReceiptOtherEntry,
    /// The receiver's entry records another envelope than its receipt
    /// (`seq`, `recorded`, `named`).
    ReceivedEnvelope,
    /// The receiver's entry records other materials than its receipt
    /// (`seq`).
    ReceivedMaterials,
    /// The sender's entry says the receipt names another receiver entry
    /// than it does (`to`, `recorded`, `named`).
    HeldReceiverSeq,
    /// The sender holds a receipt but no entry records what it sent.
    HeldNothingSent,
    /// The sender recorded sending another envelope than the receiver
    /// signed for (`sent`, `recorded`, `to`, `named`).
    SentEnvelope,
    /// The sender recorded sending other materials than the receiver
    /// signed for (`sent`, `to`).
    SentMaterials,
    /// The result document the home recorded approving is not the one the
    /// window signed for (`sent`, `to`, `size`, `sha256`, `named_size`,
    /// `named_sha256`; the named ones empty when the receipt lists none).
    SentResult,
    /// Not yet worded by kind: a reader shows `text`.
    #[default]
    Other,
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Collects the findings about one entry of one case.
struct At<'a> {
    out: &'a mut Vec<Finding>,
    seq: Option<u64>,
    case_no: &'a str,
    /// Facts every problem found here shares (the receipt it concerns).
    context: Vec<(&'static str, String)>,
}

impl At<'_> {
    /// A problem of `kind` with its `facts` (after the shared ones) and the
    /// CLI's `text`.
    fn problem(&mut self, kind: Problem, facts: Vec<(&'static str, String)>, text: String) {
        let mut all = self.context.clone();
        all.extend(facts);
        self.out.push(Finding {
            seq: self.seq,
            case_no: self.case_no.to_owned(),
            text,
            kind,
            facts: all,
        });
    }
}

/// A stored material as the node re-read it (the `MaterialCheck` it sent).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct MaterialHash {
    pub(crate) case_no: String,
    pub(crate) kind: String,
    /// The digest the node's case record names.
    pub(crate) recorded_sha256: String,
    /// The digest of the bytes read now; empty if they could not be read.
    pub(crate) sha256: String,
    pub(crate) recorded_size: u64,
    pub(crate) size: u64,
    /// `log` (materials.log) or `file` (a blob file).
    pub(crate) stored_in: String,
    /// Why the bytes could not be read; empty if they were.
    pub(crate) problem: String,
}

/// A receipt the node gave for a handoff it received, hex.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct GivenHex {
    pub(crate) from: String,
    pub(crate) handoff_id: String,
    pub(crate) case_no: String,
    pub(crate) envelope_sha256: String,
    /// The encoded `SignedReceipt`, exactly as the node stores it.
    pub(crate) signed_receipt: String,
}

impl From<MaterialCheck> for MaterialHash {
    fn from(m: MaterialCheck) -> Self {
        Self {
            case_no: m.case_no,
            kind: m.kind,
            recorded_sha256: m.recorded_sha256,
            sha256: m.sha256,
            recorded_size: m.recorded_size,
            size: m.size,
            stored_in: m.stored_in,
            problem: m.problem,
        }
    }
}

impl From<GivenReceipt> for GivenHex {
    fn from(r: GivenReceipt) -> Self {
        Self {
            from: r.from,
            handoff_id: r.handoff_id,
            case_no: r.case_no,
            envelope_sha256: r.envelope_sha256,
            signed_receipt: hex(&r.signed_receipt),
        }
    }
}

/// What the entry recording a received handoff says.
struct ReceivedAt {
    seq: u64,
    case_no: String,
    kind: String,
    envelope_sha256: String,
    materials: Vec<MaterialFact>,
}

/// What the entry queuing a sent handoff says.
struct SentAt {
    seq: u64,
    envelope_sha256: String,
    materials: Sent,
}

/// A `handoff.receipted` entry: the sender's copy of a receipt.
struct Held {
    seq: u64,
    case_no: String,
    handoff_id: String,
    to: String,
    receiver_seq: u64,
    signed: SignedReceipt,
}

/// What a node's ledger entries (a whole ledger, or one case's) say about
/// materials and handoffs, built one entry at a time as they stream in.
#[derive(Default)]
pub(crate) struct Index {
    /// (case, kind, sha256) → (seq, size) of the last entry naming it.
    materials: HashMap<(String, String, String), (u64, u64)>,
    received: HashMap<String, ReceivedAt>,
    sent: HashMap<String, SentAt>,
    held: Vec<Held>,
}

impl Index {
    /// Takes in one entry with its payload (entries whose payload was
    /// withheld are not added: their cases' evidence is withheld too).
    pub(crate) fn add(&mut self, entry: &LedgerEntry, payload: &Payload) {
        let seq = entry.seq;
        let mut name = |m: &MaterialFact| {
            self.materials.insert(
                (entry.case_no.clone(), m.kind.clone(), m.sha256.clone()),
                (seq, m.size),
            );
        };
        match &payload.body {
            EntryBody::CaseApplied { materials, .. }
            | EntryBody::CaseAttached { materials, .. }
            | EntryBody::CaseAccepted { materials }
            | EntryBody::CaseResubmitted { materials } => materials.iter().for_each(&mut name),
            EntryBody::Approved {
                result_sha256,
                result_size,
                ..
            } => name(&MaterialFact {
                kind: "result".into(),
                size: *result_size,
                sha256: result_sha256.clone(),
            }),
            _ => {}
        }
        if let Some(r) = &payload.received {
            r.materials.iter().for_each(&mut name);
            self.received.insert(
                r.handoff_id.clone(),
                ReceivedAt {
                    seq,
                    case_no: entry.case_no.clone(),
                    kind: entry.kind.clone(),
                    envelope_sha256: r.envelope_sha256.clone(),
                    materials: r.materials.clone(),
                },
            );
        }
        if let Some(s) = &payload.sent {
            let materials = sent_materials(&payload.body);
            self.sent.insert(
                s.handoff_id.clone(),
                SentAt {
                    seq,
                    envelope_sha256: s.envelope_sha256.clone(),
                    materials,
                },
            );
        }
        if let EntryBody::HandoffReceipted {
            handoff_id,
            to,
            receipt,
            signature,
            signer_certificate,
            receiver_seq,
            batch,
        } = &payload.body
        {
            // A batch that does not decode leaves the receipt without one,
            // so its signature check fails and says so.
            let batch = (!batch.is_empty())
                .then(|| {
                    <tongban_proto::common::v1::ReceiptBatch as prost::Message>::decode(
                        batch.as_slice(),
                    )
                    .ok()
                })
                .flatten();
            self.held.push(Held {
                seq,
                case_no: entry.case_no.clone(),
                handoff_id: handoff_id.clone(),
                to: to.to_string(),
                receiver_seq: *receiver_seq,
                signed: SignedReceipt {
                    receipt: receipt.clone(),
                    signature: signature.clone(),
                    signer_certificate: signer_certificate.clone(),
                    batch,
                },
            });
        }
    }

    /// How many receipts the entries hold as sender.
    pub(crate) fn held(&self) -> usize {
        self.held.len()
    }

    /// Each stored material against the entry naming its digest: it could
    /// be read, and its bytes hash to that digest and have that size.
    pub(crate) fn check_materials(
        &self,
        county: &str,
        materials: &[MaterialHash],
        problems: &mut Vec<Finding>,
    ) {
        for m in materials {
            let what = format!("node {county}: case {} material {}", m.case_no, m.kind);
            let key = (m.case_no.clone(), m.kind.clone(), m.recorded_sha256.clone());
            let named = self.materials.get(&key);
            let mut at = At {
                out: problems,
                seq: named.map(|&(seq, _)| seq),
                case_no: &m.case_no,
                context: Vec::new(),
            };
            let base = || {
                vec![
                    ("county", county.to_owned()),
                    ("case", m.case_no.clone()),
                    ("kind", m.kind.clone()),
                ]
            };
            let Some(&(seq, size)) = named else {
                at.problem(
                    Problem::MaterialUnnamed,
                    base(),
                    format!(
                        "{what}: its digest {} is named by no ledger entry of the case",
                        m.recorded_sha256
                    ),
                );
                continue;
            };
            let stored = match m.stored_in.as_str() {
                "log" => "in materials.log",
                _ => "in its file",
            };
            let with = |more: Vec<(&'static str, String)>| {
                let mut f = base();
                f.push(("seq", seq.to_string()));
                f.extend(more);
                f
            };
            if !m.problem.is_empty() {
                let facts = with(vec![
                    ("stored", m.stored_in.clone()),
                    ("detail", m.problem.clone()),
                ]);
                at.problem(
                    Problem::MaterialUnreadable,
                    facts,
                    format!(
                        "{what} (ledger entry {seq}) cannot be read {stored}: {}",
                        m.problem
                    ),
                );
            } else if m.sha256 != m.recorded_sha256 || m.size != size || m.recorded_size != size {
                let facts = with(vec![
                    ("stored", m.stored_in.clone()),
                    ("size", m.size.to_string()),
                    ("recorded_size", size.to_string()),
                ]);
                at.problem(Problem::MaterialAltered, facts, format!(
                    "{what} (ledger entry {seq}) was altered: its {} bytes {stored} hash to {}, the entry names {} of {size} bytes",
                    m.size, m.sha256, m.recorded_sha256
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn material(kind: &str, recorded: &str, got: &str, size: u64, problem: &str) -> MaterialHash {
        MaterialHash {
            case_no: "610702-20261201-1".into(),
            kind: kind.into(),
            recorded_sha256: recorded.into(),
            sha256: got.into(),
            recorded_size: 4,
            size,
            stored_in: "log".into(),
            problem: problem.into(),
        }
    }

    #[test]
    fn each_material_is_named_by_case_kind_and_the_entry_naming_its_digest() {
        let mut index = Index::default();
        let entry = LedgerEntry {
            seq: 3,
            case_no: "610702-20261201-1".into(),
            kind: "case.applied".into(),
            ..Default::default()
        };
        let fact = |kind: &str, sha: &str| MaterialFact {
            kind: kind.into(),
            size: 4,
            sha256: sha.into(),
        };
        let payload = Payload::new(
            "applied",
            EntryBody::CaseApplied {
                item: "GT-0001".parse().unwrap(),
                home: "610113".parse().unwrap(),
                delivery: "mail-applicant".parse().unwrap(),
                materials: vec![fact("id-card", "aa"), fact("form", "bb")],
                missing: vec![],
            },
        );
        index.add(&entry, &payload);
        let mut problems = Vec::new();
        index.check_materials(
            "610702",
            &[
                material("id-card", "aa", "aa", 4, ""),
                material("form", "bb", "cc", 4, ""),
                material("lease", "dd", "dd", 4, ""),
                material("id-card", "aa", "", 0, "its file x is missing"),
            ],
            &mut problems,
        );
        assert_eq!(problems.len(), 3, "{problems:#?}");
        // Each is marked at the entry naming the digest, where one does.
        let at: Vec<Option<u64>> = problems.iter().map(|p| p.seq).collect();
        assert_eq!(at, vec![Some(3), None, Some(3)]);
        assert!(problems.iter().all(|p| p.case_no == "610702-20261201-1"));
        let problems: Vec<String> = problems.into_iter().map(|p| p.text).collect();
        assert!(
            problems[0].starts_with(
                "node 610702: case 610702-20261201-1 material form (ledger entry 3) was altered: its 4 bytes in materials.log hash to cc"
            ),
            "{problems:#?}"
        );
        assert!(
            problems[1].contains("material lease: its digest dd is named by no ledger entry"),
            "{problems:#?}"
        );
        assert!(
            problems[2].contains("material id-card (ledger entry 3) cannot be read"),
            "{problems:#?}"
        );
    }
}
