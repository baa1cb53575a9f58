//! The node's error type and the one place it becomes a gRPC status.
//!
//! Callers get a small fixed set of codes with a message that names what was
//! wrong; internal failures are logged in full and reported without detail.
//! A refusal whose reason is coded ([`NodeError::Refused`]) carries it, with
//! the request field it concerns, as the status details (a
//! `tongban.common.v1.Refusal`), so a reader such as the console can word
//! it in its own language; the message stays the English one.
//! A request that does not decode is the caller's mistake too: tonic
//! answers it `INTERNAL`, and [`DecodeErrors`] makes it `INVALID_ARGUMENT`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use prost::Message as _;
use tongban_core::Refusal;
use tonic::codegen::{Service, http};
use tonic::{Code, Status};

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The request is malformed or names invalid data (a bad ID, an unknown item).
    #[error("{0}")]
    Invalid(String),
    /// The request names invalid data, or asks for a step the case's state
    /// does not allow, for a reason with a stable code (see
    /// [`tongban_core::refusal`]).
    #[error("{message}")]
    Refused {
        /// The reason, its field and facts.
        refusal: Refusal,
        /// The English words, as [`NodeError::Invalid`] would say them.
        message: String,
    },
    /// The case, waybill or record asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request is well-formed but the case is not in a state that allows it.
    #[error("{0}")]
    Precondition(String),
    /// No agreement or rule permits it.
    #[error("{0}")]
    NotPermitted(String),
    /// The id was already used with other content.
    #[error("{0}")]
    Conflict(String),
    /// A size limit was exceeded.
    #[error("{0}")]
    TooLarge(String),
    /// A transfer or a peer failed in a way worth retrying.
    #[error("{0}")]
    Unavailable(String),
    /// Storage failed.
    #[error("storage: {0}")]
    Store(tongban_ledger::StoreError),
    /// A certificate, key or signature problem.
    #[error("pki: {0}")]
    Pki(tongban_pki::PkiError),
    /// The server could not start or stopped with an error.
    #[error("server: {0}")]
    Server(String),
    /// Another node holds the data dir's lock (a configuration problem:
    /// two nodes configured with one data dir).
    #[error("data dir {} is in use by another tongban node ({})", dir.display(), match pid { Some(pid) => format!("pid {pid}"), None => "pid unknown".into() })]
    DataDirInUse {
        /// The data dir.
        dir: std::path::PathBuf,
        /// The holder's pid, from the lock file.
        pid: Option<u32>,
    },
}

impl NodeError {
    /// A coded refusal: `refusal` for readers, `message` for people.
    pub(crate) fn refused(refusal: Refusal, message: impl Into<String>) -> Self {
        Self::Refused {
            refusal,
            message: message.into(),
        }
    }

    /// A refusal of `field` (a proto path) labelled `label` in the message
    /// (`"{label}: {err}"`, the words the node has always used), for a
    /// reason one of the core's errors gives.
    pub(crate) fn at<'e, E>(field: &str, label: &str, err: &'e E) -> Self
    where
        E: std::fmt::Display,
        Refusal: From<&'e E>,
    {
        Self::refused(Refusal::from(err).at(field), format!("{label}: {err}"))
    }
}

// Not `#[from]`, which would also make the wrapped error the `source()`:
// the message already says it, and a `{:#}` chain would say it twice.
impl From<tongban_ledger::StoreError> for NodeError {
    fn from(err: tongban_ledger::StoreError) -> Self {
        Self::Store(err)
    }
}

impl From<tongban_pki::PkiError> for NodeError {
    fn from(err: tongban_pki::PkiError) -> Self {
        Self::Pki(err)
    }
}

impl From<NodeError> for Status {
    fn from(err: NodeError) -> Self {
        let code = match &err {
            NodeError::Invalid(_) => Code::InvalidArgument,
            NodeError::Refused { refusal, message } => {
                let code = match refusal.reason.class() {
                    tongban_core::refusal::Class::Invalid => Code::InvalidArgument,
                    tongban_core::refusal::Class::Precondition => Code::FailedPrecondition,
                    tongban_core::refusal::Class::NotPermitted => Code::PermissionDenied,
                    tongban_core::refusal::Class::TooLarge => Code::ResourceExhausted,
                    tongban_core::refusal::Class::NotFound => Code::NotFound,
                };
                let details = refusal_pb(refusal);
                return Status::with_details(code, message.clone(), details.encode_to_vec().into());
            }
            NodeError::NotFound(_) => Code::NotFound,
            NodeError::Precondition(_) => Code::FailedPrecondition,
            NodeError::NotPermitted(_) => Code::PermissionDenied,
            NodeError::Conflict(_) => Code::AlreadyExists,
            NodeError::TooLarge(_) => Code::ResourceExhausted,
            NodeError::Unavailable(_) => Code::Unavailable,
            NodeError::Store(e) if e.is_disk_full() => {
                tracing::error!(error = %err, "storage full");
                return Status::unavailable("the node's storage is full; nothing was stored");
            }
            NodeError::Store(_)
            | NodeError::Pki(_)
            | NodeError::Server(_)
            | NodeError::DataDirInUse { .. } => {
                tracing::error!(error = %err, "internal error");
                return Status::internal("internal error; nothing was stored (see the node's log)");
            }
        };
        Status::new(code, err.to_string())
    }
}

/// A coded refusal as sent: in a status's details, and in a partner's
/// `HandoffResult.Refusal.reason`.
pub(crate) fn refusal_pb(refusal: &Refusal) -> tongban_proto::common::v1::Refusal {
    tongban_proto::common::v1::Refusal {
        reason: refusal.reason.as_str().to_owned(),
        field: refusal.field.clone(),
        args: refusal
            .args
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect(),
    }
}

/// How tonic words a request that does not decode, all as `INTERNAL`: the
/// message does not parse as protobuf (tonic-prost's codec passes on
/// prost's `DecodeError`), a frame's compression flag is neither 0 nor 1,
/// the body ends inside a frame. The handlers of streaming calls put the
/// text after a prefix of their own, so it is looked for anywhere in the
/// message. (A compressed flag without `grpc-encoding` stays `INTERNAL`,
/// as the gRPC spec requires.)
const DECODE_ERRORS: [&str; 3] = [
    "failed to decode Protobuf message",
    "protocol error: received message with invalid compression flag",
    "Unexpected EOF decoding stream",
];

/// `status` as the caller should see it: a request that does not decode is
/// `INVALID_ARGUMENT` with tonic's text, which names the decode error.
pub(crate) fn request_status(status: Status) -> Status {
    if status.code() == Code::Internal && DECODE_ERRORS.iter().any(|e| status.message().contains(e))
    {
        return Status::invalid_argument(format!(
            "the request does not decode: {}",
            status.message()
        ));
    }
    status
}

/// A layer over every service of the server that answers a request that
/// does not decode with `INVALID_ARGUMENT` (see [`request_status`]).
///
/// tonic decodes in the generated service, after every interceptor, and
/// the codec cannot be swapped without codegen options; but every such
/// answer is a trailers-only response (no RPC here streams both ways, so a
/// request stream fails before any reply is sent), whose status is in its
/// headers: it is rewritten there.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DecodeErrors;

impl<S> tower_layer::Layer<S> for DecodeErrors {
    type Service = DecodeErrorsService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DecodeErrorsService { inner }
    }
}

/// The service [`DecodeErrors`] wraps around the server's routes.
#[derive(Debug, Clone)]
pub(crate) struct DecodeErrorsService<S> {
    inner: S,
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for DecodeErrorsService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = http::Response<ResBody>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            let headers = response.headers_mut();
            if let Some(status) = Status::from_header_map(headers)
                && status.code() == Code::Internal
            {
                let rewritten = request_status(status);
                if rewritten.code() != Code::Internal {
                    tracing::debug!(error = %rewritten.message(), "request does not decode");
                    if let Err(e) = rewritten.add_header(headers) {
                        tracing::warn!(error = %e, "cannot rewrite the status of an undecodable request");
                    }
                }
            }
            Ok(response)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_decode_failures_become_invalid_argument() {
        let s = request_status(Status::internal(
            "upload interrupted, nothing was stored: failed to decode Protobuf message: invalid varint",
        ));
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(
            s.message(),
            "the request does not decode: upload interrupted, nothing was stored: \
             failed to decode Protobuf message: invalid varint"
        );
        let other = request_status(Status::internal("internal error; nothing was stored"));
        assert_eq!(other.code(), Code::Internal);
        let not_internal = request_status(Status::unavailable("failed to decode Protobuf message"));
        assert_eq!(not_internal.code(), Code::Unavailable);
    }
}
