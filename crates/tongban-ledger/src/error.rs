//! The error type of the store.
//!
//! A variant that wraps a lower-level error says it in its own message and
//! does not also return it from `source()`: the node logs errors with their
//! `Display` and the CLI prints the `{:#}` chain, and both then show each
//! cause exactly once.

use std::path::PathBuf;

/// A storage failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// sled failed while doing `action`.
    #[error("{action}: {cause}")]
    Db {
        /// What was being done.
        action: &'static str,
        /// The cause (in the message, not the `source()` chain).
        cause: sled::Error,
    },
    /// A blob file operation failed.
    #[error("{action} {path}: {cause}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause (in the message, not the `source()` chain).
        cause: std::io::Error,
    },
    /// A stored record does not decode: the data dir is damaged or was
    /// written by an incompatible version.
    #[error("corrupt record in {tree}: {reason}")]
    Corrupt {
        /// Which tree.
        tree: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An index names a ledger entry that the ledger does not hold: the
    /// entry was removed from the data dir after it was written.
    #[error("ledger entry {seq} is missing: the {index} names it, the ledger does not hold it")]
    MissingEntry {
        /// The entry's sequence number.
        seq: u64,
        /// The index that names it (`case index`).
        index: &'static str,
    },
    /// A material's content does not match what was declared.
    #[error("{0}")]
    Content(String),
    /// An uploaded material's bytes do not match its declared size or
    /// digest: the sender's mistake, nothing of it kept.
    #[error("{0}")]
    Upload(UploadError),
    /// A stored material is missing, its size differs from its record's,
    /// or its bytes do not match its SHA-256: this node's copy is damaged.
    ///
    /// Permanent and local: reading it again gives the same answer (unlike
    /// [`StoreError::Io`], which may pass), and no partner is to blame. The
    /// material has to be restored (from a backup, or a partner's copy)
    /// before anything that sends it can succeed. See
    /// [`StoreError::is_damaged`].
    #[error("stored material {sha256} is damaged: {reason}")]
    Damaged {
        /// The material's recorded SHA-256 (lowercase hex).
        sha256: String,
        /// What is wrong, naming the file.
        reason: String,
    },
}

impl StoreError {
    pub(crate) fn db(action: &'static str) -> impl FnOnce(sled::Error) -> Self {
        move |cause| Self::Db { action, cause }
    }

    pub(crate) fn io(
        action: &'static str,
        path: impl Into<PathBuf>,
    ) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |cause| Self::Io {
            action,
            path,
            cause,
        }
    }

    /// Whether the failure is permanent damage to this node's stored data:
    /// a damaged material ([`StoreError::Damaged`]), a record that does
    /// not decode ([`StoreError::Corrupt`]) or an entry gone from the ledger
    /// ([`StoreError::MissingEntry`]). Retrying will not help; an I/O or
    /// database error may pass and is not damage.
    pub fn is_damaged(&self) -> bool {
        matches!(
            self,
            Self::Damaged { .. } | Self::Corrupt { .. } | Self::MissingEntry { .. }
        )
    }

    /// Whether the database or a file failed (as opposed to a record or a
    /// material being wrong): after such a failure in a commit the store
    /// reopens its database from disk.
    pub fn is_storage_failure(&self) -> bool {
        matches!(self, Self::Db { .. } | Self::Io { .. })
    }

    /// Whether the failure is the disk being full (ENOSPC).
    pub fn is_disk_full(&self) -> bool {
        let io = match self {
            Self::Io { cause, .. } => Some(cause),
            Self::Db {
                cause: sled::Error::Io(e),
                ..
            } => Some(e),
            _ => None,
        };
        io.is_some_and(|e| {
            e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(28)
        })
    }
}

/// How an uploaded material's bytes differ from what was declared for it.
/// `what` names the material (`material[1] (id-card)`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UploadError {
    /// More bytes arrived than the declared size.
    #[error("{what} is longer than its declared size of {declared} bytes")]
    TooLong {
        /// The material.
        what: String,
        /// Its declared size in bytes.
        declared: u64,
    },
    /// The upload ended before the declared size was reached.
    #[error("{what} is truncated: {received} of {declared} bytes received")]
    Truncated {
        /// The material.
        what: String,
        /// Bytes received.
        received: u64,
        /// Its declared size in bytes.
        declared: u64,
    },
    /// The bytes' SHA-256 is not the declared one.
    #[error(
        "{what} does not match its declared SHA-256 (declared {declared}, received {received})"
    )]
    Digest {
        /// The material.
        what: String,
        /// The declared SHA-256, lowercase hex.
        declared: String,
        /// The SHA-256 of the bytes received, lowercase hex.
        received: String,
    },
}
