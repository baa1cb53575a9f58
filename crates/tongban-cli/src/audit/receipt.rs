//! A receipt's own checks (it decodes, its signature verifies, it names
//! the handoff, sender and receiver) and what a sending entry handed over,
//! to hold against the materials the receipt lists: shared by `audit
//! verify`'s evidence checks ([`super::evidence`]) and the trace's
//! matching of both sides ([`super::handoffs`]).

use std::time::SystemTime;

use prost::Message;
use tongban_ledger::{EntryBody, MaterialFact};
use tongban_pki::TrustAnchor;
use tongban_proto::common::v1::{Receipt, SignedReceipt};

use super::evidence::Problem;
use super::verify::rfc3339;

/// What a sending entry records handing over, to hold against what the
/// receiver signed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sent {
    /// A change that sends no materials, such as an update.
    Nothing,
    /// The applicant's materials (acceptance, resubmission, committed
    /// materials supplied).
    Materials(Vec<MaterialFact>),
    /// The result document an approval sends with its update.
    Result(MaterialFact),
}

impl Sent {
    /// (kind, size, sha256 hex) of what was sent, as a receipt lists
    /// them; None when nothing was.
    pub(crate) fn facts(&self) -> Option<Vec<(String, u64, String)>> {
        match self {
            Sent::Nothing => None,
            Sent::Materials(m) => Some(facts_of(m)),
            Sent::Result(r) => Some(facts_of(std::slice::from_ref(r))),
        }
    }
}

/// What a sending entry records handing over.
pub(crate) fn sent_materials(body: &EntryBody) -> Sent {
    match body {
        EntryBody::CaseAccepted { materials }
        | EntryBody::CaseResubmitted { materials }
        | EntryBody::CommitmentSupplied { materials, .. } => Sent::Materials(materials.clone()),
        EntryBody::Approved {
            result_sha256,
            result_size,
            ..
        } => Sent::Result(MaterialFact {
            kind: tongban_core::RESULT_KIND.into(),
            size: *result_size,
            sha256: result_sha256.clone(),
        }),
        _ => Sent::Nothing,
    }
}

/// (kind, size, sha256 hex) of recorded materials, as a receipt lists them.
pub(super) fn facts_of(materials: &[MaterialFact]) -> Vec<(String, u64, String)> {
    materials
        .iter()
        .map(|m| (m.kind.clone(), m.size, m.sha256.clone()))
        .collect()
}

/// Checks one signed receipt of handoff `id` from `from` to `to`: it
/// decodes, its signature verifies against the CA at its `received_at` (the
/// courier's check, [`tongban_node::receipt::verify`]), the node of `to`
/// signed it, and it names `id`, `from` and `to`. `whose` names
/// the copy in problems (`the receipt A holds`). The receipt, unless it does
/// not decode.
pub(crate) fn check_receipt(
    anchor: &TrustAnchor,
    whose: &str,
    id: &str,
    from: &str,
    to: &str,
    signed: &SignedReceipt,
    problems: &mut Vec<String>,
) -> Option<Receipt> {
    let mut found = Vec::new();
    let receipt = check_receipt_found(anchor, whose, id, from, to, signed, &mut found);
    problems.extend(found.into_iter().map(|(_, _, text)| text));
    receipt
}

/// A problem with its kind, its facts and the CLI's words.
pub(crate) type Found = (Problem, Vec<(&'static str, String)>, String);

/// [`check_receipt`], each problem with its kind and facts (beside the
/// receipt's own, which the caller knows) for a reader that words it.
pub(crate) fn check_receipt_found(
    anchor: &TrustAnchor,
    whose: &str,
    id: &str,
    from: &str,
    to: &str,
    signed: &SignedReceipt,
    problems: &mut Vec<Found>,
) -> Option<Receipt> {
    let Ok(receipt) = Receipt::decode(signed.receipt.as_slice()) else {
        problems.push((
            Problem::ReceiptUndecodable,
            Vec::new(),
            format!("handoff {id}: {whose} does not decode"),
        ));
        return None;
    };
    // The one receipt check the courier makes too, against the
    // certificate's validity when the receipt was signed.
    let at = rfc3339(&receipt.received_at).unwrap_or_else(SystemTime::now);
    match tongban_node::receipt::verify(anchor, signed, at) {
        Ok(_) if receipt.receiver_county == to => {}
        Ok(_) => problems.push((
            Problem::ReceiptSigner,
            vec![
                ("signer", receipt.receiver_county.clone()),
                ("to", to.to_owned()),
            ],
            format!(
                "handoff {id}: {whose} is signed by the node of {}, not by the node of {to}",
                receipt.receiver_county
            ),
        )),
        Err(e) => problems.push((
            Problem::ReceiptSignature,
            vec![("detail", e.to_string())],
            format!("handoff {id}: {whose}: {e}"),
        )),
    }
    if receipt.handoff_id != id || receipt.sender_county != from || receipt.receiver_county != to {
        problems.push((
            Problem::ReceiptOtherHandoff,
            vec![
                ("named", receipt.handoff_id.clone()),
                ("named_from", receipt.sender_county.clone()),
                ("named_to", receipt.receiver_county.clone()),
                ("from", from.to_owned()),
                ("to", to.to_owned()),
            ],
            format!(
                "handoff {id}: the receipt names handoff {} from {} to {}, not {id} from {from} to {to}",
                receipt.handoff_id, receipt.sender_county, receipt.receiver_county
            ),
        ));
    }
    Some(receipt)
}
