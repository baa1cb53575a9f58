//! The node's error type and the one place it becomes a gRPC status.
//!
//! Callers get a small fixed set of codes with a message that names what was
//! wrong; internal failures are logged in full and reported without detail.

use tonic::{Code, Status};

/// Why a node operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NodeError {
    /// The request is malformed or names invalid data (a bad ID, an unknown item).
    #[error("{0}")]
    Invalid(String),
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
