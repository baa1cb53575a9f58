//! Receiving declared materials chunk by chunk into the blob store, checking
//! each one's size and SHA-256 as it completes. Shared by every RPC that
//! uploads content (apply, attach, handoff, approve).
//!
//! Nothing is kept of a material that fails: its temporary file goes when
//! its writer is dropped. Blob files this upload created are staged
//! ([`StagedBlobs`]): they are removed when the upload or its result is
//! dropped, unless the batch that names them keeps them
//! (`Batch::keep_blobs`) and is committed.

use tongban_core::{Reason, Refusal};
use tongban_ledger::{
    BlobWriter, MaterialRef, PendingBlob, StagedBlobs, Store, StoreError, UploadError,
};
use tongban_proto::common::v1::{MaterialChunk, MaterialHeader};

use crate::NodeError;

/// An upload in progress.
pub(crate) struct Ingest<'a> {
    store: &'a Store,
    headers: Vec<MaterialHeader>,
    current: usize,
    writer: Option<BlobWriter>,
    done: Vec<MaterialRef>,
    /// Large materials whose last sync runs while the next one arrives.
    pending: Vec<PendingBlob>,
    staged: StagedBlobs,
}

/// A finished upload.
#[derive(Debug, Default)]
pub(crate) struct Ingested {
    /// The materials, in declaration order.
    pub(crate) materials: Vec<MaterialRef>,
    /// Blob files this upload created: removed when dropped, unless handed
    /// to the batch that names them (`Batch::keep_blobs`).
    pub(crate) blobs: StagedBlobs,
}

fn what(h: &MaterialHeader, i: usize) -> String {
    format!("material[{i}] ({})", h.kind)
}

impl<'a> Ingest<'a> {
    /// Starts receiving `headers` (already validated).
    pub(crate) fn new(store: &'a Store, headers: Vec<MaterialHeader>) -> Self {
        Self {
            store,
            headers,
            current: 0,
            writer: None,
            done: Vec::new(),
            pending: Vec::new(),
            staged: StagedBlobs::default(),
        }
    }

    /// Takes one chunk. Chunks must come in declaration order.
    pub(crate) async fn chunk(&mut self, chunk: MaterialChunk) -> Result<(), NodeError> {
        let index = chunk.material as usize;
        if index >= self.headers.len() {
            return Err(NodeError::refused(
                Refusal::new(
                    Reason::UploadChunk,
                    vec![
                        ("material", index.to_string()),
                        ("declared", self.headers.len().to_string()),
                    ],
                )
                .at("materials"),
                format!(
                    "chunk for material {index}, but only {} were declared",
                    self.headers.len()
                ),
            ));
        }
        if index < self.current {
            return Err(NodeError::refused(
                Refusal::new(
                    Reason::UploadChunk,
                    vec![
                        ("material", index.to_string()),
                        ("current", self.current.to_string()),
                    ],
                )
                .at(format!("materials[{index}]")),
                format!(
                    "chunk for material {index} after material {} began: chunks must follow declaration order",
                    self.current
                ),
            ));
        }
        while self.current < index {
            self.finish_current().await?;
        }
        if self.writer.is_none() {
            let h = &self.headers[index];
            let sha: [u8; 32] = h.sha256.as_slice().try_into().map_err(|_| {
                NodeError::refused(
                    Refusal::new(
                        Reason::UploadDigestLength,
                        vec![
                            ("kind", h.kind.clone()),
                            ("got", h.sha256.len().to_string()),
                        ],
                    )
                    .at(format!("materials[{index}]")),
                    format!(
                        "{}: sha256 must be 32 bytes, got {}",
                        what(h, index),
                        h.sha256.len()
                    ),
                )
            })?;
            self.writer = Some(self.store.blobs().writer(what(h, index), h.size, sha)?);
        }
        let writer = self.writer.as_mut().expect("writer just set");
        writer
            .write(chunk.data)
            .await
            .map_err(|e| content_error(e, index, &self.headers[index]))
    }

    async fn finish_current(&mut self) -> Result<(), NodeError> {
        let i = self.current;
        let h = &self.headers[i];
        let writer = match self.writer.take() {
            Some(w) => w,
            None => {
                let e = UploadError::Truncated {
                    what: what(h, i),
                    received: 0,
                    declared: h.size,
                };
                return Err(content_error(StoreError::Upload(e), i, h));
            }
        };
        let pending = writer
            .finish_later()
            .await
            .map_err(|e| content_error(e, i, h))?;
        let blob = pending.blob().clone();
        self.pending.push(pending);
        // A small material goes to the material log now; the commit that
        // names it syncs the log before writing anything.
        let log = match &blob.inline {
            Some(content) => Some(self.store.append_material(content)?),
            None => None,
        };
        self.done.push(MaterialRef {
            kind: h.kind.clone(),
            filename: h.filename.clone(),
            size: h.size,
            sha256: blob.sha256_hex,
            log,
        });
        self.current += 1;
        Ok(())
    }

    /// Completes the upload: every declared material must be whole.
    /// On an error, the upload is dropped and leaves nothing.
    pub(crate) async fn finish(mut self) -> Result<Ingested, NodeError> {
        while self.current < self.headers.len() {
            self.finish_current().await?;
        }
        // Sizes and digests were checked as each material completed: what
        // is left to fail here is the disk.
        for pending in std::mem::take(&mut self.pending) {
            pending.wait(&mut self.staged).await?;
        }
        Ok(Ingested {
            materials: std::mem::take(&mut self.done),
            blobs: std::mem::take(&mut self.staged),
        })
    }
}

impl Drop for Ingest<'_> {
    fn drop(&mut self) {
        // An upload dropped before `finish` (client went away, refusal)
        // leaves nothing: a pending blob dropped waits for its thread and
        // removes what it put in place; the files already staged go with
        // `staged`, after this.
        self.writer = None;
        self.pending.clear();
    }
}

/// A material's bytes that do not match its header (material `index`,
/// declared as `h`) as a coded refusal at `materials[index]`; anything
/// else is this node's storage failing.
fn content_error(e: StoreError, index: usize, h: &MaterialHeader) -> NodeError {
    let StoreError::Upload(u) = e else {
        return NodeError::Store(e);
    };
    let kind = ("kind", h.kind.clone());
    let refusal = match &u {
        UploadError::TooLong { declared, .. } => Refusal::new(
            Reason::UploadTooLong,
            vec![kind, ("declared", declared.to_string())],
        ),
        UploadError::Truncated {
            received, declared, ..
        } => Refusal::new(
            Reason::UploadTruncated,
            vec![
                kind,
                ("received", received.to_string()),
                ("declared", declared.to_string()),
            ],
        ),
        UploadError::Digest {
            declared, received, ..
        } => Refusal::new(
            Reason::UploadDigestMismatch,
            vec![
                kind,
                ("declared", declared.clone()),
                ("received", received.clone()),
            ],
        ),
    };
    NodeError::refused(refusal.at(format!("materials[{index}]")), u.to_string())
}
