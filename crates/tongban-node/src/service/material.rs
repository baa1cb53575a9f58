//! Reading a material back (Review.Material and Window.Material): the one
//! place a stored material, or an approval's result document (kind
//! `result`), leaves the node for a person. The case and the
//! kind are checked, the caller against the case (`auth`), and the content
//! is streamed from the store on a blocking thread and re-hashed as it goes:
//! the last chunk is held back until the digest and size match the record,
//! so a damaged copy on disk ends the stream with DATA_LOSS before the
//! client has the whole of the wrong bytes. A read is not a change: no
//! ledger entry, one log line naming the case and kind (no personal data).

use std::sync::Arc;

use sha2::{Digest, Sha256};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tongban_core::RESULT_KIND;
use tongban_ledger::{CaseRecord, MaterialRef, Side};
use tongban_pki::Identity;
use tongban_proto::common::v1::{
    MaterialChunk, MaterialFacts, MaterialFrame, MaterialHeader, MaterialRequest, material_frame,
};
use tonic::Status;

use crate::NodeError;
use crate::ctx::Ctx;

/// The frames of one material read.
pub(crate) type MaterialStream = ReceiverStream<Result<MaterialFrame, Status>>;

/// Content chunk size: the size the protocol recommends (common.proto).
const CHUNK: usize = 64 * 1024;

/// Opens `req`'s material of a case on `side` for `who` and starts
/// streaming it. Errors before the first frame: NOT_FOUND for an unknown
/// case or kind (listing the kinds the case has), PERMISSION_DENIED for a
/// caller the case is not for, DATA_LOSS for a stored copy already seen to
/// be missing or of the wrong size.
pub(crate) fn stream(
    ctx: &Arc<Ctx>,
    who: &Identity,
    req: MaterialRequest,
    side: Side,
) -> Result<MaterialStream, Status> {
    let case = ctx.case_on(&req.case_no, side)?;
    crate::auth::may_read_material(who, &case).map_err(|reason| {
        tracing::warn!(case = %case.case_no, caller = %who, %reason, "material read refused");
        Status::from(NodeError::NotPermitted(reason))
    })?;
    let Some(m) = held(&case, &req.kind)? else {
        let mut kinds: Vec<&str> = case.materials.iter().map(|m| m.kind.as_str()).collect();
        if case.review.result.is_some() {
            kinds.push(RESULT_KIND);
        }
        return Err(NodeError::NotFound(format!(
            "case {} has no material of kind {:?}; it has: {}",
            case.case_no,
            req.kind,
            if kinds.is_empty() {
                "none".to_string()
            } else {
                kinds.join(", ")
            }
        ))
        .into());
    };
    let reader = ctx
        .store
        .open_material(&m)
        .map_err(|e| damaged(case.case_no.as_str(), &m, e))?;
    tracing::info!(case = %case.case_no, kind = %m.kind, caller = %who, size = m.size, "material read");
    let facts = MaterialFrame {
        frame: Some(material_frame::Frame::Facts(MaterialFacts {
            material: Some(MaterialHeader {
                kind: m.kind.clone(),
                filename: m.filename.clone(),
                size: m.size,
                sha256: hex::decode(&m.sha256).unwrap_or_default(),
            }),
            content_type: tongban_core::filetype::content_type(&m.filename)
                .unwrap_or_default()
                .to_string(),
        })),
    };
    let (tx, rx) = mpsc::channel(8);
    // The channel is new and has room: the facts go first without waiting.
    let _ = tx.try_send(Ok(facts));
    let case_no = case.case_no.to_string();
    tokio::task::spawn_blocking(move || {
        if let Err(status) = pump(reader, &m, &case_no, &tx) {
            let _ = tx.blocking_send(Err(status));
        }
    });
    Ok(ReceiverStream::new(rx))
}

/// The material of `kind` the case holds: an applicant's material, or for
/// [`RESULT_KIND`] the approval's result document (at home from the
/// reviewer's upload, at the window as it came with the decision), which
/// exists only once the case is approved: before that, FAILED_PRECONDITION
/// saying so.
fn held(case: &CaseRecord, kind: &str) -> Result<Option<MaterialRef>, NodeError> {
    if kind != RESULT_KIND {
        return Ok(case.materials.iter().find(|m| m.kind == kind).cloned());
    }
    match &case.review.result {
        Some(m) => Ok(Some(m.clone())),
        None => Err(NodeError::refused(
            tongban_core::Refusal::new(
                tongban_core::Reason::ResultNotYet,
                vec![("state", case.state.as_str().to_owned())],
            ),
            format!(
                "case {} has no result document: it is {}, and a result document exists once the case is approved",
                case.case_no, case.state
            ),
        )),
    }
}

/// Sends the content, one chunk behind, and the last chunk only once the
/// whole has been hashed and matched. A closed channel (the client went
/// away) just stops.
fn pump(
    mut reader: tongban_ledger::MaterialReader,
    m: &MaterialRef,
    case_no: &str,
    tx: &mpsc::Sender<Result<MaterialFrame, Status>>,
) -> Result<(), Status> {
    let chunk = |data| {
        Ok(MaterialFrame {
            frame: Some(material_frame::Frame::Chunk(MaterialChunk {
                material: 0,
                data,
            })),
        })
    };
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut held = None;
    while let Some(piece) = reader
        .read_chunk(CHUNK)
        .map_err(|e| damaged(case_no, m, e))?
    {
        hasher.update(&piece);
        size += piece.len() as u64;
        if let Some(previous) = held.replace(piece)
            && tx.blocking_send(chunk(previous)).is_err()
        {
            return Ok(());
        }
    }
    let digest = hex::encode(hasher.finalize());
    if digest != m.sha256 || size != m.size {
        tracing::error!(case = %case_no, kind = %m.kind, recorded = %m.sha256, read = %digest, size, "stored material damaged");
        return Err(Status::data_loss(format!(
            "material {} of case {case_no} is damaged on this node: its stored copy ({size} bytes) \
             does not match its recorded SHA-256 {}; nothing more is sent",
            m.kind, m.sha256
        )));
    }
    if let Some(last) = held {
        let _ = tx.blocking_send(chunk(last));
    }
    Ok(())
}

/// A store error reading `m` as the caller sees it: damage is DATA_LOSS
/// naming the material (the file path stays in the node's log); any other
/// failure is the node's internal error.
fn damaged(case_no: &str, m: &MaterialRef, e: tongban_ledger::StoreError) -> Status {
    if e.is_damaged() {
        tracing::error!(case = %case_no, kind = %m.kind, error = %e, "stored material damaged");
        Status::data_loss(format!(
            "material {} of case {case_no} (SHA-256 {}) is damaged on this node and cannot be served",
            m.kind, m.sha256
        ))
    } else {
        NodeError::Store(e).into()
    }
}
