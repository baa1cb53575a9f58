//! Checking a bundle: each node's signed checkpoint, the hash chain of the
//! range it showed up to that checkpoint, payload digests, the case's entries
//! against that range, every receipt's signature against the federation CA,
//! both sides of every handoff, the partner checkpoints nodes hold of each
//! other, and the evidence behind the case's entries (its stored materials,
//! the receipts each node gave; see [`super::evidence`]). Every problem
//! names the node, the entry or handoff, and the field.

use std::collections::BTreeMap;
use std::time::SystemTime;

use prost::Message;
use serde::Serialize;
use sha2::{Digest, Sha256};
use tongban_ledger::Payload;
use tongban_ledger::chain::entry_hash;
use tongban_pki::{Principal, TrustAnchor};
use tongban_proto::common::v1::{Checkpoint, LedgerEntry};

use super::evidence::Index;
use super::handoffs::check_handoffs;
use super::known::{Checked, Known, Prefix};
use super::{Bundle, EntryHex, NodeEvidence, Signed, unhex};

use tongban_node::protocol::CHECKPOINT_DOMAIN;

/// One event of the merged timeline.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Event {
    pub(crate) at: String,
    pub(crate) county: String,
    pub(crate) actor: String,
    /// Who the partner said acted, for an entry recording a partner's
    /// report (its `received.claimed_actor`); empty otherwise.
    pub(crate) claimed_actor: String,
    /// For an entry recording an application's handoff arriving: the
    /// application time (申请时间) the sending window stated, as sent (its
    /// `received.claimed_applied_at`); empty otherwise, and when it stated
    /// none (the home then recorded the arrival).
    pub(crate) claimed_applied_at: String,
    pub(crate) event: String,
    pub(crate) detail: String,
    pub(crate) seq: u64,
}

impl Event {
    /// Who acted, for people: `clerk/wang`, or for a partner's report
    /// `610113/node reports reviewer li` — the partner node is the actor
    /// here, the person is its claim.
    pub(crate) fn who(&self) -> String {
        let actor = short_actor(&self.actor);
        if self.claimed_actor.is_empty() {
            return actor;
        }
        format!(
            "{actor} reports {}",
            short_actor(&self.claimed_actor).replace('/', " ")
        )
    }
}

/// The last two segments of a SPIFFE ID (`clerk/wang`, `610702/node`).
fn short_actor(actor: &str) -> String {
    let parts: Vec<&str> = actor.rsplit('/').take(2).collect();
    parts.into_iter().rev().collect::<Vec<_>>().join("/")
}

/// A handoff seen from both sides.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Arrow {
    pub(crate) handoff_id: String,
    pub(crate) from: String,
    pub(crate) to: String,
    pub(crate) sent_seq: u64,
    pub(crate) received_seq: u64,
    /// Both sides agree (as far as they were asked).
    pub(crate) matched: bool,
    /// Whether the receiver's ledger was asked too; if not, only the
    /// sender's side and the receiver's signature were checked.
    pub(crate) both_sides: bool,
}

/// What a node's chain check covered.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Coverage {
    pub(crate) county: String,
    pub(crate) from_seq: u64,
    pub(crate) to_seq: u64,
}

/// The outcome of verifying a bundle.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    pub(crate) case_no: String,
    pub(crate) verified: bool,
    pub(crate) problems: Vec<String>,
    pub(crate) notes: Vec<String>,
    pub(crate) coverage: Vec<Coverage>,
    pub(crate) handoffs: Vec<Arrow>,
    pub(crate) timeline: Vec<Event>,
    pub(crate) applicant: serde_json::Value,
}

/// The entry and its bytes; bad hex and undecodable entries are reported
/// once, by [`check_chain`] for the range and by [`verify`] for the case's
/// entries, so other checks may skip them.
fn decode_entry(e: &EntryHex) -> Result<(LedgerEntry, Vec<u8>), String> {
    let bytes = unhex("entry", &e.entry).map_err(|err| err.to_string())?;
    let entry =
        LedgerEntry::decode(bytes.as_slice()).map_err(|err| format!("does not decode: {err}"))?;
    Ok((entry, bytes))
}

/// A case entry with its typed payload, read with the definitions the node
/// wrote it with. None where the entry or payload does not decode (the chain
/// check names those) or the payload was withheld.
pub(super) fn typed(e: &EntryHex) -> Option<(LedgerEntry, Payload)> {
    let (entry, _) = decode_entry(e).ok()?;
    let payload = Payload::decode(&entry.kind, &unhex("payload", &e.payload).ok()?).ok()?;
    Some((entry, payload))
}

pub(super) fn rfc3339(text: &str) -> Option<SystemTime> {
    let t =
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    Some(SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(t.unix_timestamp().max(0) as u64))
}

/// Checks a signed checkpoint: signature, signer is the node of `county`.
fn check_checkpoint(
    anchor: &TrustAnchor,
    signed: &Signed,
    county: Option<&str>,
) -> Result<Checkpoint, String> {
    let bad = |e: super::BadHex| format!("does not decode: {e}");
    let body = unhex("body", &signed.body).map_err(bad)?;
    let certificate = unhex("signer_certificate", &signed.signer_certificate).map_err(bad)?;
    let signature = unhex("signature", &signed.signature).map_err(bad)?;
    let cp = Checkpoint::decode(body.as_slice()).map_err(|e| format!("does not decode: {e}"))?;
    let at = rfc3339(&cp.at).unwrap_or_else(SystemTime::now);
    let signer = anchor
        .verify_signed(&certificate, CHECKPOINT_DOMAIN, &body, &signature, at)
        .map_err(|e| e.to_string())?;
    let expected = county.unwrap_or(&cp.county);
    match &signer.principal {
        Principal::Node { county } if county.as_str() == expected && cp.county == expected => {
            Ok(cp)
        }
        _ => Err(format!("signed by {signer}, not by the node of {expected}")),
    }
}

pub(super) struct NodeView<'a> {
    pub(super) evidence: &'a NodeEvidence,
    checkpoint: Option<Checkpoint>,
    by_seq: BTreeMap<u64, &'a EntryHex>,
    /// What was verified before of this node, when the range shown links
    /// on to it.
    prefix: Option<&'a Prefix>,
}

/// Verifies a bundle against the federation CA.
pub(crate) fn verify(bundle: &Bundle, anchor: &TrustAnchor) -> Report {
    verify_inner(bundle, anchor, None).0
}

/// [`verify`] of a bundle fetched with [`super::fetch::complete`] and a `known`: the
/// entries before each node's range are checked against what `known` kept
/// of that node, and every chain that verifies is added to `known`.
pub(crate) fn verify_with(bundle: &Bundle, anchor: &TrustAnchor, known: &mut Known) -> Report {
    let (report, learned) = verify_inner(bundle, anchor, Some(known));
    for l in learned {
        let prefix = known.entry(&l.url, &l.county);
        if l.checked.first().is_none_or(|c| c.seq == prefix.head() + 1) {
            prefix.extend(l.checked, &l.signed_at);
        }
    }
    report
}

/// Checks the ledger a node showed from entry 1 (`entries`) up to its
/// checkpoint `signed`, signed by the node of `county`, and keeps it in
/// `known` if it verifies (the console's warm-up); the problem otherwise.
pub(crate) fn learn(
    anchor: &TrustAnchor,
    url: &str,
    county: &str,
    signed: Signed,
    entries: Vec<EntryHex>,
    known: &mut Known,
) -> Result<u64, String> {
    let cp = check_checkpoint(anchor, &signed, Some(county))
        .map_err(|e| format!("node {county} ({url}): its checkpoint {e}"))?;
    if entries.first().is_some_and(|e| e.seq != 1) {
        return Err(format!(
            "node {county}: the range shown does not start at entry 1"
        ));
    }
    let node = NodeEvidence {
        url: url.to_owned(),
        county: county.to_owned(),
        receiving_county: String::new(),
        home_county: String::new(),
        receiving_county_name: String::new(),
        home_county_name: String::new(),
        applicant: serde_json::Value::Null,
        checkpoint: signed,
        entries,
        case_entries: Vec::new(),
        partner_checkpoints: Vec::new(),
        missing_seqs: Vec::new(),
        materials: Vec::new(),
        given_receipts: Vec::new(),
    };
    let mut problems = Vec::new();
    match check_chain(county, &node, &cp, None, &mut problems) {
        Some(checked) => {
            known.start_over(url, county).extend(checked, &cp.at);
            Ok(cp.seq)
        }
        None => Err(problems.join("; ")),
    }
}

/// A node's chain that verified, to keep.
struct Learned {
    url: String,
    county: String,
    checked: Vec<Checked>,
    signed_at: String,
}

/// Checks a case entry that lies before the range shown against the hash
/// kept of it, and its payload against the entry's digest.
fn check_known_entry(county: &str, ce: &EntryHex, prefix: &Prefix, problems: &mut Vec<String>) {
    let Ok((entry, bytes)) = decode_entry(ce) else {
        return; // named with the case entries' decoding
    };
    if entry.seq != ce.seq || prefix.hash(ce.seq) != Some(&entry_hash(&bytes)) {
        problems.push(format!(
            "node {county}: case entry {} differs from the ledger entry at that sequence number",
            ce.seq
        ));
        return;
    }
    let Ok(payload) = unhex("payload", &ce.payload) else {
        return;
    };
    if payload.is_empty() {
        return;
    }
    if Sha256::digest(&payload).as_slice() != entry.payload_sha256.as_slice() {
        problems.push(format!(
            "node {county}: ledger entry {}'s payload does not match its payload_sha256",
            ce.seq
        ));
    } else if let Err(err) = Payload::decode(&entry.kind, &payload) {
        problems.push(format!(
            "node {county}: ledger entry {} ({}): {err}",
            ce.seq, entry.kind
        ));
    }
}

fn verify_inner(
    bundle: &Bundle,
    anchor: &TrustAnchor,
    known: Option<&Known>,
) -> (Report, Vec<Learned>) {
    let mut learned = Vec::new();
    let mut problems = Vec::new();
    let mut notes = Vec::new();
    let mut coverage = Vec::new();
    let mut views: BTreeMap<String, NodeView<'_>> = BTreeMap::new();

    for node in &bundle.nodes {
        let county = node.county.clone();
        let checkpoint = match check_checkpoint(anchor, &node.checkpoint, Some(&county)) {
            Ok(cp) => Some(cp),
            Err(e) => {
                problems.push(format!("node {county} ({}): its checkpoint {e}", node.url));
                None
            }
        };
        let by_seq: BTreeMap<u64, &EntryHex> = node.entries.iter().map(|e| (e.seq, e)).collect();
        let kept = known
            .and_then(|k| k.get(&node.url))
            .filter(|p| p.county == county);
        let mut prefix = None;
        if let Some(cp) = &checkpoint {
            if let Some(p) = kept
                && cp.seq < p.head()
            {
                problems.push(format!(
                    "node {county}: its ledger ends at seq {} but this console verified it up to seq {} (signed {}): entries were dropped",
                    cp.seq,
                    p.head(),
                    p.signed_at
                ));
            }
            // The kept prefix counts only if the range goes on from it.
            prefix = kept.filter(|p| {
                node.entries
                    .first()
                    .map_or(cp.seq == p.head(), |e| e.seq == p.head() + 1)
            });
            let checked = check_chain(&county, node, cp, kept, &mut problems);
            if let Some(checked) = checked
                && (prefix.is_some() || checked.first().is_some_and(|c| c.seq == 1))
            {
                learned.push(Learned {
                    url: node.url.clone(),
                    county: county.clone(),
                    checked,
                    signed_at: cp.at.clone(),
                });
            }
            let from_seq = match prefix {
                Some(p) => {
                    notes.push(format!(
                        "node {county}: entries 1..={} were verified by this console before, against its checkpoint signed {}; entries {}..={} checked now",
                        p.head(),
                        p.signed_at,
                        p.head() + 1,
                        cp.seq
                    ));
                    1
                }
                None => node.entries.first().map(|e| e.seq).unwrap_or(cp.seq),
            };
            coverage.push(Coverage {
                county: county.clone(),
                from_seq,
                to_seq: cp.seq,
            });
        }
        // Every entry of the case in the range must have been listed: a node
        // may not leave steps out of what it shows for a case. The listing
        // ends with the entry recording this very query, so only entries
        // before it count (later ones came after the listing).
        let case_ids: std::collections::BTreeSet<String> = node
            .case_entries
            .iter()
            .filter_map(|e| decode_entry(e).ok().map(|(l, _)| l.application_id))
            .filter(|id| !id.is_empty())
            .collect();
        let listed_to = node.case_entries.iter().map(|e| e.seq).max().unwrap_or(0);
        for e in node.entries.iter().filter(|e| e.seq < listed_to) {
            if let Ok((l, _)) = decode_entry(e)
                && case_ids.contains(&l.application_id)
                && !node.case_entries.iter().any(|c| c.seq == e.seq)
            {
                problems.push(format!(
                    "node {county}: ledger entry {} ({}) belongs to the case but was left out of what the node listed for it",
                    e.seq, l.kind
                ));
            }
        }
        if let Some(p) = prefix {
            for id in &case_ids {
                for (seq, kind) in p.entries_of(id) {
                    if *seq < listed_to && !node.case_entries.iter().any(|c| c.seq == *seq) {
                        problems.push(format!(
                            "node {county}: ledger entry {seq} ({kind}) belongs to the case but was left out of what the node listed for it"
                        ));
                    }
                }
            }
        }
        for ce in &node.case_entries {
            if let Err(e) = decode_entry(ce)
                .and_then(|_| unhex("payload", &ce.payload).map_err(|e| e.to_string()))
            {
                problems.push(format!("node {county}: case entry {}: {e}", ce.seq));
            }
            match by_seq.get(&ce.seq) {
                Some(e) if e.entry == ce.entry && e.payload == ce.payload => {}
                Some(_) => problems.push(format!(
                    "node {county}: case entry {} differs from the ledger entry at that sequence number",
                    ce.seq
                )),
                None if prefix.is_some_and(|p| ce.seq <= p.head()) => {
                    if let Some(p) = prefix {
                        check_known_entry(&county, ce, p, &mut problems);
                    }
                }
                None => problems.push(format!(
                    "node {county}: case entry {} lies outside the range the node showed",
                    ce.seq
                )),
            }
        }
        for seq in &node.missing_seqs {
            problems.push(format!(
                "node {county}: ledger entry {seq} of the case is missing: the node's case index names it, its ledger does not hold it"
            ));
        }
        // The evidence behind the case's entries: its stored materials and
        // the receipts this node gave (the receipts it holds as sender are
        // checked with both sides of each handoff below).
        let mut index = Index::default();
        for ce in &node.case_entries {
            if let Some((entry, payload)) = typed(ce) {
                index.add(&entry, &payload);
            }
        }
        let mut found = Vec::new();
        index.check_materials(&county, &node.materials, &mut found);
        index.check_given(anchor, &county, &node.given_receipts, &mut found);
        problems.extend(found.into_iter().map(|f| f.text));
        views.insert(
            county,
            NodeView {
                evidence: node,
                checkpoint,
                by_seq,
                prefix,
            },
        );
    }

    let handoffs = check_handoffs(anchor, &views, &mut problems, &mut notes);
    check_partner_checkpoints(anchor, &views, &mut problems, &mut notes);

    let mut timeline = Vec::new();
    for (county, view) in &views {
        for ce in &view.evidence.case_entries {
            if let Ok((entry, _)) = decode_entry(ce) {
                let payload = typed(ce).map(|(_, p)| p);
                let received = payload.as_ref().and_then(|p| p.received.as_ref());
                let claimed_actor = received
                    .map(|r| r.claimed_actor.clone())
                    .unwrap_or_default();
                let claimed_applied_at = received
                    .map(|r| r.claimed_applied_at.clone())
                    .unwrap_or_default();
                timeline.push(Event {
                    at: entry.at,
                    county: county.clone(),
                    actor: entry.actor,
                    claimed_actor,
                    claimed_applied_at,
                    event: entry.kind,
                    detail: payload.map(|p| p.detail).unwrap_or_default(),
                    seq: entry.seq,
                });
            }
        }
    }
    timeline.sort_by(|a, b| (&a.at, &a.county, a.seq).cmp(&(&b.at, &b.county, b.seq)));
    let applicant = bundle
        .nodes
        .iter()
        .map(|n| n.applicant.clone())
        .find(|a| !a.is_null())
        .unwrap_or_default();
    let report = Report {
        case_no: bundle.case_no.clone(),
        verified: problems.is_empty(),
        problems,
        notes,
        coverage,
        handoffs,
        timeline,
        applicant,
    };
    (report, learned)
}

/// The hash chain of a node's range up to its checkpoint; with `kept`
/// (what was verified before), the range must go on from its head, or agree
/// with it where they overlap. The entries checked, if the chain verifies.
fn check_chain(
    county: &str,
    node: &NodeEvidence,
    cp: &Checkpoint,
    kept: Option<&Prefix>,
    problems: &mut Vec<String>,
) -> Option<Vec<Checked>> {
    let before = problems.len();
    let Some(first) = node.entries.first() else {
        if cp.seq > 0 && kept.is_none_or(|p| p.head() != cp.seq) {
            problems.push(format!(
                "node {county}: showed no ledger entries up to its checkpoint at seq {}",
                cp.seq
            ));
            return None;
        }
        return Some(Vec::new());
    };
    let mut checked = Vec::with_capacity(node.entries.len());
    let mut prev: Option<(u64, [u8; 32])> = None;
    for (i, e) in node.entries.iter().enumerate() {
        let expected_seq = first.seq + i as u64;
        let (entry, bytes) = match decode_entry(e) {
            Ok(decoded) => decoded,
            Err(why) => {
                problems.push(format!("node {county}: ledger entry {} {why}", e.seq));
                return None;
            }
        };
        if entry.seq != expected_seq || e.seq != expected_seq {
            problems.push(format!(
                "node {county}: ledger entry {expected_seq} is missing (found seq {} in its place)",
                entry.seq
            ));
            return None;
        }
        if let Some((pseq, phash)) = prev
            && entry.prev_hash.as_slice() != phash
        {
            problems.push(format!(
                "node {county}: ledger entry {pseq} was altered: its hash no longer matches prev_hash in entry {}",
                entry.seq
            ));
            return None;
        }
        let payload = match unhex("payload", &e.payload) {
            Ok(payload) => payload,
            Err(why) => {
                problems.push(format!("node {county}: ledger entry {}: {why}", entry.seq));
                return None;
            }
        };
        // An empty payload was withheld (another county's case): the
        // entry itself, which the chain covers, is still checked.
        if !payload.is_empty() {
            if Sha256::digest(&payload).as_slice() != entry.payload_sha256.as_slice() {
                problems.push(format!(
                    "node {county}: ledger entry {}'s payload does not match its payload_sha256",
                    entry.seq
                ));
            } else if let Err(err) = Payload::decode(&entry.kind, &payload) {
                problems.push(format!(
                    "node {county}: ledger entry {} ({}): {err}",
                    entry.seq, entry.kind
                ));
            }
        }
        let hash = entry_hash(&bytes);
        if let Some(p) = kept {
            if entry.seq == p.head() + 1
                && p.hash(p.head()).map(|h| h.as_slice()) != Some(entry.prev_hash.as_slice())
            {
                problems.push(format!(
                    "node {county}: ledger entry {} is not the entry this console verified at that sequence number (entries 1..={}, signed {}): history was rewritten",
                    p.head(),
                    p.head(),
                    p.signed_at
                ));
                return None;
            }
            if p.hash(entry.seq).is_some_and(|h| *h != hash) {
                problems.push(format!(
                    "node {county}: ledger entry {} is not the entry this console verified at that sequence number (entries 1..={}, signed {}): history was rewritten",
                    entry.seq,
                    p.head(),
                    p.signed_at
                ));
                return None;
            }
        }
        checked.push(Checked {
            seq: entry.seq,
            hash,
            application_id: entry.application_id.clone(),
            kind: entry.kind.clone(),
        });
        prev = Some((entry.seq, hash));
    }
    if let Some((last, hash)) = prev {
        if last != cp.seq {
            problems.push(format!(
                "node {county}: the range shown ends at seq {last}, its checkpoint is at seq {}",
                cp.seq
            ));
        } else if hash.as_slice() != cp.head_hash.as_slice() {
            problems.push(format!(
                "node {county}: ledger entry {last} was altered: it does not match the node's signed checkpoint"
            ));
        }
    }
    (problems.len() == before).then_some(checked)
}

/// Checks each node's ledger against the checkpoints its partners hold of it.
fn check_partner_checkpoints(
    anchor: &TrustAnchor,
    views: &BTreeMap<String, NodeView<'_>>,
    problems: &mut Vec<String>,
    notes: &mut Vec<String>,
) {
    for (holder, view) in views {
        for signed in &view.evidence.partner_checkpoints {
            let cp = match check_checkpoint(anchor, signed, None) {
                Ok(cp) => cp,
                Err(e) => {
                    problems.push(format!("a partner checkpoint held by {holder} {e}"));
                    continue;
                }
            };
            let Some(subject) = views.get(&cp.county) else {
                continue;
            };
            let Some(current) = &subject.checkpoint else {
                continue;
            };
            let who = &cp.county;
            if cp.seq > current.seq {
                problems.push(format!(
                    "node {who}: its ledger ends at seq {} but {holder} holds {who}'s signed checkpoint at seq {} (signed {}): entries were dropped",
                    current.seq, cp.seq, cp.at
                ));
                continue;
            }
            let kept = subject.prefix.and_then(|p| p.hash(cp.seq));
            match subject.by_seq.get(&cp.seq) {
                None if kept.is_some() => {
                    if kept.map(|h| h.as_slice()) != Some(cp.head_hash.as_slice()) {
                        problems.push(format!(
                            "node {who}: ledger entry {} is not the entry {who} signed for in the checkpoint {holder} holds (signed {}): history was rewritten",
                            cp.seq, cp.at
                        ));
                    }
                }
                Some(e) => {
                    // Bad hex in the range was reported by check_chain.
                    if let Ok(bytes) = unhex("entry", &e.entry)
                        && entry_hash(&bytes).as_slice() != cp.head_hash.as_slice()
                    {
                        problems.push(format!(
                            "node {who}: ledger entry {} is not the entry {who} signed for in the checkpoint {holder} holds (signed {}): history was rewritten",
                            cp.seq, cp.at
                        ));
                    }
                }
                None if cp.seq == 0 => {}
                None => notes.push(format!(
                    "node {who}: {holder}'s checkpoint at seq {} lies before the range shown; not checked",
                    cp.seq
                )),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Event;

    #[test]
    fn a_partners_report_names_the_partner_node_and_its_claim() {
        let mut e = Event {
            at: String::new(),
            county: "610702".into(),
            actor: "spiffe://shaanxi.tongban/county/610113/node".into(),
            claimed_actor: "spiffe://shaanxi.tongban/county/610113/reviewer/li".into(),
            claimed_applied_at: String::new(),
            event: "update.received".into(),
            detail: String::new(),
            seq: 9,
        };
        assert_eq!(e.who(), "610113/node reports reviewer li");
        e.claimed_actor.clear();
        assert_eq!(e.who(), "610113/node");
    }
}
