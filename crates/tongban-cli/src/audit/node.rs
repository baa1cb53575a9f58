//! Verifying one node's whole ledger over the audit API: its signed
//! checkpoint, the hash chain of every entry from 1 up to it, the payload
//! digests, then (unless `quick`) the evidence behind it, every stored
//! material re-hashed by the node and every receipt it holds or gave
//! ([`super::evidence`]). It tells its caller how far it got as it goes
//! ([`Step`]) and returns a [`Verdict`]; it prints nothing. `audit verify`
//! prints the verdict, the console's verify page shows the steps and the
//! verdict, and both show each problem in the same words ([`Finding`]).
//!
//! [`Verdict::keep`] compares a chain that verified with what the console
//! verified of the node before ([`super::known`]) and keeps it there, so
//! the page's result and the traces' cache agree.

use anyhow::{Context, Result, bail};
use prost::Message;
use sha2::{Digest, Sha256};
use tongban_ledger::Payload;
use tongban_pki::TrustAnchor;
use tongban_pki::tls::TlsMaterial;
use tongban_proto::audit::v1::audit_client::AuditClient;
use tongban_proto::audit::v1::{CheckpointRequest, RangeRequest};
use tongban_proto::common::v1::{Checkpoint, LedgerEntry};

use super::evidence::Index;
pub(crate) use super::evidence::{Finding, Problem};
use super::fetch;
use super::known::{Checked, Known};
use crate::client::channel;
use crate::cmd::status_error;

/// How far a verification got, as it goes.
#[derive(Debug)]
pub(crate) enum Step<'a> {
    /// The node's checkpoint verified: entries 1..=`total` follow.
    Checkpoint {
        /// Its sequence number.
        total: u64,
    },
    /// One more entry came in (and was checked, until the chain broke).
    Entry,
    /// The last entry came in.
    ChainDone,
    /// The node began re-hashing its materials, `material_bytes` in all.
    Evidence {
        /// What the node will re-read.
        material_bytes: u64,
    },
    /// One more material re-hashed, of `bytes` bytes.
    Rehashed {
        /// Its recorded size.
        bytes: u64,
    },
    /// A problem found (the chain's break, or one of the evidence).
    Problem(&'a Finding),
}

/// Where the hash chain broke: the first entry that does not verify.
#[derive(Debug, Clone)]
pub(crate) struct Break {
    /// The entry.
    pub(crate) seq: u64,
    /// What is wrong with it, to follow "it": `was altered: ...`.
    pub(crate) why: String,
    /// Its kind and facts, for a reader that words it (see [`Finding`]).
    pub(crate) kind: Problem,
    /// The facts.
    pub(crate) facts: Vec<(&'static str, String)>,
    /// The case the entry names, empty if none or it does not decode.
    pub(crate) case_no: String,
}

/// What a node's evidence stream held, as checked.
#[derive(Debug, Clone)]
pub(crate) struct EvidenceSummary {
    /// Materials the node re-hashed.
    pub(crate) materials: u64,
    /// Their bytes.
    pub(crate) material_bytes: u64,
    /// How long the stream took.
    pub(crate) seconds: f64,
    /// Receipts its entries hold as sender.
    pub(crate) held: usize,
    /// Receipts it gave as receiver.
    pub(crate) given: usize,
}

/// The outcome of verifying a node.
#[derive(Debug)]
pub(crate) struct Verdict {
    /// The URL asked.
    pub(crate) url: String,
    /// Who signed the checkpoint (the node's identity).
    pub(crate) signer: String,
    /// The node's county, as its checkpoint signature proved.
    pub(crate) county: String,
    /// The checkpoint's sequence number and signing time (RFC 3339).
    pub(crate) checkpoint_seq: u64,
    pub(crate) checkpoint_at: String,
    /// The last entry that chained on from entry 1.
    pub(crate) chained_to: u64,
    /// Where the chain broke, if it did.
    pub(crate) bad: Option<Break>,
    /// Whether the evidence was left out.
    pub(crate) quick: bool,
    /// The evidence, unless `quick`.
    pub(crate) evidence: Option<EvidenceSummary>,
    /// The evidence's problems (and any [`Verdict::keep`] found).
    pub(crate) problems: Vec<Finding>,
    /// The chain as checked, when asked for and it verified.
    chain: Option<Vec<Checked>>,
}

impl Verdict {
    /// The entries that verify: up to the one before the break.
    pub(crate) fn checked_to(&self) -> u64 {
        match &self.bad {
            Some(b) => b.seq.saturating_sub(1),
            None => self.chained_to,
        }
    }

    /// The chain and the evidence verify.
    pub(crate) fn verified(&self) -> bool {
        self.bad.is_none() && self.problems.is_empty()
    }

    /// The chain's break as a problem, in the words of a trace.
    pub(crate) fn break_finding(&self) -> Option<Finding> {
        self.bad.as_ref().map(|b| Finding {
            seq: Some(b.seq),
            case_no: b.case_no.clone(),
            text: format!("node {}: ledger entry {} {}", self.county, b.seq, b.why),
            kind: b.kind,
            facts: b.facts.clone(),
        })
    }

    /// Every problem: the chain's break first, then the evidence's.
    pub(crate) fn findings(&self) -> Vec<Finding> {
        self.break_finding()
            .into_iter()
            .chain(self.problems.iter().cloned())
            .collect()
    }

    /// The verdict as `audit verify --json` prints it.
    pub(crate) fn to_json(&self) -> serde_json::Value {
        let s = self.evidence.as_ref();
        let problems: Vec<&str> = self.problems.iter().map(|p| p.text.as_str()).collect();
        serde_json::json!({"node": self.url, "signer": self.signer,
            "checkpoint_seq": self.checkpoint_seq,
            "checked_through": self.checked_to(), "first_bad_seq": self.bad.as_ref().map(|b| b.seq),
            "reason": self.bad.as_ref().map(|b| b.why.clone()), "quick": self.quick,
            "materials": s.map(|s| s.materials),
            "material_bytes": s.map(|s| s.material_bytes),
            "receipts_held": s.map(|s| s.held),
            "receipts_given": s.map(|s| s.given),
            "problems": problems, "verified": self.verified()})
    }

    /// Compares a chain that verified with what `known` kept of this node
    /// and keeps the whole chain there instead. A kept entry that hashes
    /// differently now, or a ledger that ends before the kept head, means
    /// the node rewrote or dropped history it had signed (consistently, or
    /// the chain would not verify): that is a problem at that entry, and
    /// the kept prefix stays, as the record of what was signed. A chain
    /// that broke leaves `known` as it was. What it did, for people.
    pub(crate) fn keep(&mut self, known: &mut Known, url: &str) -> Kept {
        let Some(chain) = self.chain.take() else {
            return Kept::Nothing;
        };
        if let Some(p) = known.get(url).filter(|p| p.county == self.county) {
            let (head, at) = (p.head(), p.signed_at.clone());
            let differs = chain
                .iter()
                .find(|c| p.hash(c.seq).is_some_and(|h| *h != c.hash))
                .map(|c| c.seq);
            let problem = match differs {
                Some(seq) => Some((
                    seq,
                    Problem::HistoryRewritten,
                    format!(
                        "node {}: ledger entry {seq} is not the entry this console verified at that sequence number (entries 1..={head}, signed {at}): history was rewritten",
                        self.county
                    ),
                )),
                // A trace may have kept more since this verification's
                // checkpoint was signed; only a longer prefix signed
                // before it means entries went missing.
                None if self.checkpoint_seq < head && !signed_after(&self.checkpoint_at, &at) => {
                    return Kept::Agrees { head };
                }
                None if self.checkpoint_seq < head => Some((
                    self.checkpoint_seq + 1,
                    Problem::EntriesDropped,
                    format!(
                        "node {}: its ledger ends at seq {} but this console verified it up to seq {head} (signed {at}): entries were dropped",
                        self.county, self.checkpoint_seq
                    ),
                )),
                None => None,
            };
            if let Some((seq, kind, text)) = problem {
                self.problems.push(Finding {
                    seq: Some(seq),
                    case_no: String::new(),
                    text,
                    kind,
                    facts: vec![
                        ("county", self.county.to_string()),
                        ("seq", seq.to_string()),
                        ("kept", self.checkpoint_seq.to_string()),
                        ("head", head.to_string()),
                    ],
                });
                return Kept::Disagrees { head };
            }
        }
        known
            .start_over(url, &self.county)
            .extend(chain, &self.checkpoint_at);
        Kept::Replaced {
            head: self.checkpoint_seq,
        }
    }
}

/// What [`Verdict::keep`] did with the console's kept prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kept {
    /// The chain broke (or was not kept): nothing changed.
    Nothing,
    /// The kept prefix disagrees with the chain now and stays, up to `head`.
    Disagrees {
        /// Its last entry.
        head: u64,
    },
    /// The kept prefix agrees and is longer already (a trace kept entries
    /// signed after this verification's checkpoint): it stays.
    Agrees {
        /// Its last entry.
        head: u64,
    },
    /// The whole chain, up to `head`, is kept now.
    Replaced {
        /// Its last entry.
        head: u64,
    },
}

/// Whether RFC 3339 time `a` is after `b` (one that does not parse is not).
fn signed_after(a: &str, b: &str) -> bool {
    let parse = |t: &str| {
        time::OffsetDateTime::parse(t, &time::format_description::well_known::Rfc3339).ok()
    };
    matches!((parse(a), parse(b)), (Some(a), Some(b)) if a > b)
}

/// Streams the whole ledger of the node at `url` and checks it against a
/// fresh checkpoint, then (unless `quick`) the evidence behind it, telling
/// `on` each [`Step`]. With `keep_chain`, a chain that verifies is kept in
/// the verdict for [`Verdict::keep`]. An error is a failure to ask (the
/// node unreachable, a checkpoint that does not verify), not a problem
/// found.
pub(crate) async fn verify(
    url: &str,
    tls: &TlsMaterial,
    quick: bool,
    keep_chain: bool,
    on: &mut (dyn FnMut(Step<'_>) + Send),
) -> Result<Verdict> {
    let anchor: TrustAnchor = tls.trust_anchor()?;
    let mut client = AuditClient::new(channel(url, tls).await?);
    let signed = client
        .latest_checkpoint(CheckpointRequest {})
        .await
        .map_err(status_error)?
        .into_inner();
    let cp =
        Checkpoint::decode(signed.checkpoint.as_slice()).context("checkpoint does not decode")?;
    let signer = anchor
        .verify_signed(
            &signed.signer_certificate,
            "tongban-checkpoint-v1",
            &signed.checkpoint,
            &signed.signature,
            std::time::SystemTime::now(),
        )
        .context("the node's checkpoint signature does not verify")?;
    let county = match &signer.principal {
        tongban_pki::Principal::Node { county } => county.to_string(),
        _ => bail!("the checkpoint of {url} is signed by {signer}, which is not a node"),
    };
    on(Step::Checkpoint { total: cp.seq });
    let mut stream = client
        .range(RangeRequest {
            from_seq: 1,
            to_seq: cp.seq,
        })
        .await
        .map_err(status_error)?
        .into_inner();
    let mut prev: (u64, [u8; 32]) = (0, [0; 32]);
    // The case of the last entry that chained: an altered entry is found
    // at the next one, and it is the altered one's case that matters.
    let mut prev_case = String::new();
    let mut bad: Option<Break> = None;
    let mut index = Index::default();
    let mut chain = keep_chain.then(|| Vec::with_capacity(cp.seq as usize));
    while let Some(e) = stream.message().await.map_err(status_error)? {
        on(Step::Entry);
        let entry = LedgerEntry::decode(e.entry.as_slice());
        // The evidence is checked against every entry that reads, also
        // after the chain broke; a withheld payload adds nothing.
        if let Ok(entry) = &entry
            && !e.payload.is_empty()
            && Sha256::digest(&e.payload).as_slice() == entry.payload_sha256.as_slice()
            && let Ok(payload) = Payload::decode(&entry.kind, &e.payload)
        {
            index.add(entry, &payload);
        }
        if bad.is_some() {
            continue;
        }
        let expected = prev.0 + 1;
        let entry = match entry {
            Ok(entry) => entry,
            Err(err) => {
                bad = Some(Break {
                    seq: expected,
                    why: format!("does not decode: {err}"),
                    case_no: String::new(),
                    kind: Problem::ChainUndecodable,
                    facts: vec![("seq", expected.to_string())],
                });
                continue;
            }
        };
        let at = |seq: u64, why: String, case_no: &str, kind, more: Option<(&'static str, u64)>| {
            let mut facts = vec![("seq", seq.to_string())];
            facts.extend(more.map(|(k, v)| (k, v.to_string())));
            Some(Break {
                seq,
                why,
                case_no: case_no.to_owned(),
                kind,
                facts,
            })
        };
        if entry.seq != expected {
            bad = at(
                expected,
                format!("is missing (seq {} came instead)", entry.seq),
                "",
                Problem::ChainMissing,
                Some(("came", entry.seq)),
            );
        } else if entry.prev_hash.as_slice() != prev.1 {
            bad = at(
                prev.0,
                format!("was altered: its hash no longer matches prev_hash in entry {expected}"),
                &prev_case,
                Problem::ChainAltered,
                Some(("next", expected)),
            );
        } else if !e.payload.is_empty()
            && Sha256::digest(&e.payload).as_slice() != entry.payload_sha256.as_slice()
        {
            bad = at(
                expected,
                "has a payload that does not match its payload_sha256".into(),
                &entry.case_no,
                Problem::ChainPayload,
                None,
            );
        } else {
            prev = (expected, tongban_ledger::chain::entry_hash(&e.entry));
            if let Some(chain) = &mut chain {
                chain.push(Checked {
                    seq: expected,
                    hash: prev.1,
                    application_id: entry.application_id.clone(),
                    kind: entry.kind.clone(),
                });
            }
            prev_case = entry.case_no;
        }
    }
    if bad.is_none() && (prev.0 != cp.seq || prev.1.as_slice() != cp.head_hash.as_slice()) {
        bad = Some(Break {
            seq: prev.0.max(1),
            why: "does not match the node's signed checkpoint".into(),
            case_no: prev_case,
            kind: Problem::ChainCheckpoint,
            facts: vec![("seq", prev.0.max(1).to_string())],
        });
    }
    on(Step::ChainDone);
    let mut verdict = Verdict {
        url: url.to_owned(),
        signer: signer.to_string(),
        county: county.clone(),
        checkpoint_seq: cp.seq,
        checkpoint_at: cp.at.clone(),
        chained_to: prev.0,
        quick,
        evidence: None,
        problems: Vec::new(),
        chain: None,
        bad,
    };
    if let Some(b) = verdict.break_finding() {
        on(Step::Problem(&b));
    } else {
        verdict.chain = chain;
    }
    if quick {
        return Ok(verdict);
    }
    let (materials, given, seconds) = fetch::evidence(&mut client, "", on)
        .await
        .with_context(|| format!("reading the evidence of {url}"))?;
    let mut problems = Vec::new();
    index.check_materials(&county, &materials, &mut problems);
    index.check_given(&anchor, &county, &given, &mut problems);
    index.check_held(&anchor, &county, &mut problems);
    for p in &problems {
        on(Step::Problem(p));
    }
    verdict.problems = problems;
    verdict.evidence = Some(EvidenceSummary {
        materials: materials.len() as u64,
        material_bytes: materials.iter().map(|m| m.size).sum(),
        seconds,
        held: index.held(),
        given: given.len(),
    });
    Ok(verdict)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verdict(chain: Vec<Checked>, seq: u64) -> Verdict {
        Verdict {
            url: "u".into(),
            signer: String::new(),
            county: "610113".into(),
            checkpoint_seq: seq,
            checkpoint_at: "2026-12-01T10:00:00Z".into(),
            chained_to: seq,
            bad: None,
            quick: true,
            evidence: None,
            problems: Vec::new(),
            chain: Some(chain),
        }
    }

    fn checked(seq: u64, byte: u8) -> Checked {
        Checked {
            seq,
            hash: [byte; 32],
            application_id: String::new(),
            kind: "case.applied".into(),
        }
    }

    #[test]
    fn a_chain_that_agrees_with_the_kept_prefix_replaces_it() {
        let mut known = Known::default();
        known
            .start_over("u", "610113")
            .extend(vec![checked(1, 1)], "2026-12-01T09:00:00Z");
        let mut v = verdict(vec![checked(1, 1), checked(2, 2)], 2);
        assert_eq!(v.keep(&mut known, "u"), Kept::Replaced { head: 2 });
        assert!(v.verified());
        let p = known.get("u").unwrap();
        assert_eq!(
            (p.head(), p.signed_at.as_str()),
            (2, "2026-12-01T10:00:00Z")
        );
    }

    #[test]
    fn a_rewritten_or_shortened_ledger_is_a_problem_at_its_entry_and_the_prefix_stays() {
        let mut known = Known::default();
        known.start_over("u", "610113").extend(
            vec![checked(1, 1), checked(2, 2), checked(3, 3)],
            "2026-12-01T09:00:00Z",
        );
        let mut v = verdict(vec![checked(1, 1), checked(2, 9), checked(3, 3)], 3);
        assert_eq!(v.keep(&mut known, "u"), Kept::Disagrees { head: 3 });
        assert!(!v.verified());
        assert_eq!(v.problems[0].seq, Some(2));
        assert_eq!(v.problems[0].kind, Problem::HistoryRewritten);
        assert!(
            v.problems[0].text.contains("history was rewritten"),
            "{:?}",
            v.problems
        );
        assert_eq!(known.get("u").unwrap().hash(2), Some(&[2; 32]));

        let mut v = verdict(vec![checked(1, 1), checked(2, 2)], 2);
        assert_eq!(v.keep(&mut known, "u"), Kept::Disagrees { head: 3 });
        assert_eq!(v.problems[0].seq, Some(3));
        assert!(v.problems[0].text.contains("entries were dropped"));
        assert_eq!(v.problems[0].kind, Problem::EntriesDropped);
        assert_eq!(known.get("u").unwrap().head(), 3);

        // Kept from a checkpoint signed after this one's: it stays, agreeing.
        known.start_over("u", "610113").extend(
            vec![checked(1, 1), checked(2, 2), checked(3, 3)],
            "2026-12-01T11:00:00Z",
        );
        let mut v = verdict(vec![checked(1, 1), checked(2, 2)], 2);
        assert_eq!(v.keep(&mut known, "u"), Kept::Agrees { head: 3 });
        assert!(v.verified());
    }

    #[test]
    fn a_broken_chain_leaves_the_kept_prefix_alone() {
        let mut known = Known::default();
        let mut v = verdict(Vec::new(), 2);
        v.chain = None;
        v.bad = Some(Break {
            seq: 2,
            why: "was altered: x".into(),
            case_no: "610702-20261201-1".into(),
            kind: Problem::ChainAltered,
            facts: vec![("seq", "2".into()), ("next", "3".into())],
        });
        assert_eq!(v.keep(&mut known, "u"), Kept::Nothing);
        assert!(known.get("u").is_none());
        let f = v.findings();
        assert_eq!(f[0].seq, Some(2));
        assert_eq!(f[0].text, "node 610113: ledger entry 2 was altered: x");
        assert_eq!(v.checked_to(), 1);
    }
}
