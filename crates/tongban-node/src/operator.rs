//! What a node's operator does to the node's own records with the node
//! stopped (`tongban node --config F --reissue-receipt ID --from CODE`).
//!
//! Re-issuing a receipt is the way out for a receiver that once signed bad
//! receipts (its clock was off, say): the sender parked those handoffs as
//! invalid. The operator fixes the cause, re-issues the receipt of each
//! (a ledger entry naming the receipt it replaces, in the same commit as the
//! record replayed to duplicates), and the sender's `retry` then gets the
//! new receipt, which it checks like any other.

use prost::Message;
use sha2::{Digest, Sha256};
use tongban_core::CountyCode;
use tongban_ledger::records::hex;
use tongban_ledger::{Batch, EntryBody, NewEntry, Payload, ReceivedHandoff, Store};
use tongban_proto::common::v1::{Receipt, SignedReceipt};

use crate::{NodeConfig, NodeError, receipt};

/// A receipt re-issued.
#[derive(Debug, Clone)]
pub struct Reissued {
    /// The case number it concerns.
    pub case_no: String,
    /// The new receipt's time.
    pub received_at: String,
    /// The ledger seq of the entry recording the re-issue.
    pub seq: u64,
}

/// Re-issues the receipt of handoff `handoff_id` from `from`: the same
/// receipt (same ledger seq, digests and state), dated now and signed
/// again with this node's key.
pub async fn reissue_receipt(
    config: &NodeConfig,
    from: &CountyCode,
    handoff_id: &str,
) -> Result<Reissued, NodeError> {
    let store = Store::open(&config.data_dir)?;
    let held = store.received(from.as_str(), handoff_id)?.ok_or_else(|| {
        NodeError::NotFound(format!(
            "no handoff {handoff_id} from {from} was received by this node"
        ))
    })?;
    let old = SignedReceipt::decode(held.signed_receipt.as_slice())
        .and_then(|s| Receipt::decode(s.receipt.as_slice()).map(|r| (s, r)))
        .map_err(|e| NodeError::Invalid(format!("the stored receipt does not decode: {e}")))?
        .1;
    let case = store.case(&held.application_id)?.ok_or_else(|| {
        NodeError::NotFound(format!(
            "the case of handoff {handoff_id} is not on this node"
        ))
    })?;
    let received_at = config.clock.now_rfc3339();
    let new = Receipt {
        received_at: received_at.clone(),
        ..old
    };
    let signed = receipt::sign(&config.signer, &new)?.encode_to_vec();
    let payload = Payload::new(
        format!("receipt of handoff {handoff_id} from {from} re-issued by the operator"),
        EntryBody::ReceiptReissued {
            handoff_id: handoff_id.to_owned(),
            from: from.clone(),
            replaced_sha256: hex(&Sha256::digest(&held.signed_receipt)),
            receipt: signed.clone(),
        },
    );
    let mut batch = Batch::default();
    batch
        .append(NewEntry::record(
            &case,
            config.signer.identity().spiffe_id(),
            None,
            &payload,
        ))
        .put_received(
            from.as_str(),
            handoff_id,
            ReceivedHandoff {
                signed_receipt: signed,
                ..held
            },
        );
    let committed = store.commit(batch).await?;
    Ok(Reissued {
        case_no: case.case_no.to_string(),
        received_at,
        seq: committed.first_seq,
    })
}
