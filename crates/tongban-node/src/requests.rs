//! Idempotent client requests: a state-changing call that carries a
//! `request_id` is carried out once per (caller, request id), and a repeat is
//! answered with the original reply, byte for byte.
//!
//! Every state-changing handler calls [`begin`] before anything else with
//! its request (or upload header), a unary one through [`unary`], and
//! hands the answer to [`go_or_replay!`]: it either answers
//! at once ([`Begun::Replay`]) or hands back a [`Ticket`] that the handler
//! passes to [`crate::change::save`], which writes the request record (the
//! content digest and the encoded reply) through the same `Batch` as the
//! change, so it is durable exactly when the change is. A request that is
//! refused, or changes nothing, is not remembered: its repeat is answered
//! afresh.
//!
//! An empty request id (clients of other vendors that predate it) gets no
//! record and no replay, as before. This module owns the id check, the
//! digest and the per-request lock; the record's storage is the ledger's.

use prost::Message;
use sha2::{Digest, Sha256};
use tongban_pki::Identity;

use crate::NodeError;
use crate::ctx::Ctx;
use crate::locks::CaseGuard;

/// The digest of what a request asks for: the full gRPC method name, then
/// the request message encoded with its `request_id` cleared (for a
/// streaming upload, its header frame, which declares each material's
/// SHA-256; the node checks every material against it while receiving).
/// The method is part of it so that one id sent to two methods whose
/// messages happen to encode alike (Accept and Retry of one case) is not
/// taken for a repeat.
pub(crate) fn content<R: Idempotent>(method: &str, request: &R) -> [u8; 32] {
    let mut message = request.clone();
    message.clear_request_id();
    let mut hasher = Sha256::new();
    hasher.update(method.as_bytes());
    hasher.update([0]);
    hasher.update(message.encode_to_vec());
    hasher.finalize().into()
}

/// A request message (or upload header) with a `request_id` field.
pub(crate) trait Idempotent: Message + Clone {
    /// The request id as sent.
    fn request_id(&self) -> &str;
    /// Clears it, leaving the content.
    fn clear_request_id(&mut self);
}

macro_rules! idempotent {
    ($($message:ty),* $(,)?) => {$(
        impl Idempotent for $message {
            fn request_id(&self) -> &str {
                &self.request_id
            }
            fn clear_request_id(&mut self) {
                self.request_id.clear();
            }
        }
    )*};
}

idempotent!(
    tongban_proto::window::v1::ApplyHeader,
    tongban_proto::window::v1::AttachHeader,
    tongban_proto::window::v1::VerifyIdentityRequest,
    tongban_proto::window::v1::CaseRef,
    tongban_proto::window::v1::HandoutRequest,
    tongban_proto::window::v1::CommitRequest,
    tongban_proto::window::v1::ConsultRequest,
    tongban_proto::review::v1::CaseRef,
    tongban_proto::review::v1::CorrectRequest,
    tongban_proto::review::v1::ApproveHeader,
    tongban_proto::review::v1::DenyRequest,
    tongban_proto::review::v1::HandoutRequest,
    tongban_proto::mail::v1::SendRequest,
    tongban_proto::mail::v1::EventRequest,
);

/// What [`begin`] found.
pub(crate) enum Begun<M, G = Ticket> {
    /// The request was carried out before: its original reply.
    Replay(M),
    /// Not carried out yet: go ahead, and save with this ticket (or with
    /// what a caller built around it).
    Go(G),
}

/// A request about to be carried out, holding its request id's lock until
/// dropped (after the commit, when the handler returns).
pub(crate) struct Ticket {
    remember: Option<Remember>,
    _lock: Option<CaseGuard>,
}

/// What the commit writes for a request with an id.
pub(crate) struct Remember {
    pub(crate) caller: String,
    pub(crate) request_id: String,
    pub(crate) content_sha256: String,
}

impl Ticket {
    /// A change made without a client request id (a carrier push, or a
    /// client that sends none): nothing is remembered.
    pub(crate) fn none() -> Self {
        Self {
            remember: None,
            _lock: None,
        }
    }

    /// What the commit must write, if the request has an id.
    pub(crate) fn remember(&self) -> Option<&Remember> {
        self.remember.as_ref()
    }
}

/// Checks the request's id, locks it and looks it up: a repeat of a
/// request carried out (same caller, id and [`content`] for `method`, the
/// full gRPC method name) is a [`Begun::Replay`] of the
/// reply given; the same id with other content is `Conflict`
/// (ALREADY_EXISTS) naming the id; an id that is not a UUID is `Invalid`.
///
/// Concurrency: the lock is per (caller, request id), not the case lock,
/// because an apply has no case yet and a carrier event finds its case only
/// through the waybill; it is taken before any case lock and held until the
/// handler returns, after its commit, so two calls with one id never both
/// apply: the second waits and then finds the first's record. Different ids
/// never wait on each other here.
pub(crate) async fn begin<M: Message + Default>(
    ctx: &Ctx,
    caller: &Identity,
    method: &str,
    request: &impl Idempotent,
) -> Result<Begun<M>, NodeError> {
    if request.request_id().is_empty() {
        return Ok(Begun::Go(Ticket::none()));
    }
    let request_id = parse(request.request_id())?;
    let content = content(method, request);
    let caller = caller.spiffe_id();
    let lock = ctx
        .request_locks
        .lock(&format!("{caller}\0{request_id}"))
        .await;
    let content_sha256 = tongban_ledger::records::hex(&content);
    if let Some(record) = ctx.store.request(&caller, &request_id)? {
        if record.content_sha256 != content_sha256 {
            return Err(NodeError::Conflict(format!(
                "request id {request_id} was already used for a different request; use a new request id for a new request"
            )));
        }
        tracing::info!(request = %request_id, "repeated request answered with its original reply");
        // Our own encoding of a message of this type: decoding and encoding
        // it again gives the same bytes.
        let reply = M::decode(record.reply.as_slice()).map_err(|e| {
            NodeError::Store(tongban_ledger::StoreError::Corrupt {
                tree: "requests",
                reason: format!("reply of request {request_id}: {e}"),
            })
        })?;
        return Ok(Begun::Replay(reply));
    }
    Ok(Begun::Go(Ticket {
        remember: Some(Remember {
            caller,
            request_id,
            content_sha256,
        }),
        _lock: Some(lock),
    }))
}

/// [`begin`] for a unary request: checks who calls, then looks the request
/// up; the original reply for a repeat, else the caller, the message and
/// the ticket.
pub(crate) async fn unary<R: Idempotent, M: Message + Default>(
    ctx: &Ctx,
    req: tonic::Request<R>,
    method: &str,
) -> Result<Begun<M, (Identity, R, Ticket)>, tonic::Status> {
    let who = crate::auth::caller(&req)?;
    let req = req.into_inner();
    Ok(match begin(ctx, &who, method, &req).await? {
        Begun::Replay(reply) => Begun::Replay(reply),
        Begun::Go(ticket) => Begun::Go((who, req, ticket)),
    })
}

/// What a handler does with [`begin`]'s answer: a repeat returns its
/// original reply from the handler at once; else the handler goes on with
/// the ticket (or what was built around it).
macro_rules! go_or_replay {
    ($begun:expr) => {
        match $begun {
            $crate::requests::Begun::Replay(reply) => return Ok(tonic::Response::new(reply)),
            $crate::requests::Begun::Go(go) => go,
        }
    };
}
pub(crate) use go_or_replay;

/// A request id in canonical form (lowercase, hyphenated): a UUID in
/// 8-4-4-4-12 hex, any version.
fn parse(request_id: &str) -> Result<String, NodeError> {
    match uuid::Uuid::try_parse(request_id) {
        Ok(id) if request_id.len() == 36 => Ok(id.hyphenated().to_string()),
        _ => {
            let shown: String = request_id.chars().take(40).collect();
            Err(NodeError::refused(
                tongban_core::Refusal::new(
                    tongban_core::Reason::RequestIdFormat,
                    vec![("value", shown.clone())],
                )
                .at("request_id"),
                format!("request id {shown:?} is not a UUID (8-4-4-4-12 hex digits)"),
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_uuids_in_canonical_form() {
        let id = "0192F0C4-8A9B-7C3D-9E1F-0A1B2C3D4E5F";
        assert_eq!(parse(id).unwrap(), id.to_lowercase());
        for bad in [
            "x",
            "0192f0c48a9b7c3d9e1f0a1b2c3d4e5f",
            "{0192f0c4-8a9b-7c3d-9e1f-0a1b2c3d4e5f}",
            "0192f0c4-8a9b-7c3d-9e1f-0a1b2c3d4e5g",
        ] {
            match parse(bad) {
                Err(NodeError::Refused { refusal, .. }) => {
                    assert_eq!(refusal.reason, tongban_core::Reason::RequestIdFormat);
                    assert_eq!(refusal.arg("value"), Some(bad));
                }
                other => panic!("{bad}: {other:?}"),
            }
        }
    }

    #[test]
    fn the_method_is_part_of_the_content() {
        use tongban_proto::window::v1::CaseRef;
        let case = CaseRef {
            case_no: "610702-20261125-1".into(),
            request_id: String::new(),
        };
        assert_ne!(
            content("/tongban.window.v1.Window/Accept", &case),
            content("/tongban.window.v1.Window/Retry", &case)
        );
    }
}
