//! Receiving declared materials chunk by chunk into the blob store, checking
//! each one's size and SHA-256 as it completes. Shared by every RPC that
//! uploads content (apply, attach, handoff, approve).
//!
//! Nothing is kept of a material that fails: its temporary file goes when
//! its writer is dropped. Blob files this upload created are staged
//! ([`StagedBlobs`]): they are removed when the upload or its result is
//! dropped, unless the batch that names them keeps them
//! (`Batch::keep_blobs`) and is committed.

use tongban_ledger::{BlobWriter, MaterialRef, PendingBlob, StagedBlobs, Store};
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
            return Err(NodeError::Invalid(format!(
                "chunk for material {index}, but only {} were declared",
                self.headers.len()
            )));
        }
        if index < self.current {
            return Err(NodeError::Invalid(format!(
                "chunk for material {index} after material {} began: chunks must follow declaration order",
                self.current
            )));
        }
        while self.current < index {
            self.finish_current().await?;
        }
        if self.writer.is_none() {
            let h = &self.headers[index];
            let sha: [u8; 32] = h
                .sha256
                .as_slice()
                .try_into()
                .map_err(|_| NodeError::Invalid("sha256 must be 32 bytes".into()))?;
            self.writer = Some(self.store.blobs().writer(what(h, index), h.size, sha)?);
        }
        let writer = self.writer.as_mut().expect("writer just set");
        writer.write(chunk.data).await.map_err(content_error)
    }

    async fn finish_current(&mut self) -> Result<(), NodeError> {
        let i = self.current;
        let h = &self.headers[i];
        let writer = match self.writer.take() {
            Some(w) => w,
            None => {
                return Err(NodeError::Invalid(format!(
                    "{} is truncated: 0 of {} bytes received",
                    what(h, i),
                    h.size
                )));
            }
        };
        let pending = writer.finish_later().await.map_err(content_error)?;
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
        for pending in std::mem::take(&mut self.pending) {
            pending
                .wait(&mut self.staged)
                .await
                .map_err(content_error)?;
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

fn content_error(e: tongban_ledger::StoreError) -> NodeError {
    match e {
        tongban_ledger::StoreError::Content(msg) => NodeError::Invalid(msg),
        other => NodeError::Store(other),
    }
}
