//! The audit service. Trace and verification arrive with the audit work;
//! until then every call answers UNIMPLEMENTED so that nothing pretends to
//! succeed.

use std::pin::Pin;
use std::sync::Arc;

use tokio_stream::Stream;
use tongban_proto::audit::v1::audit_server::Audit;
use tongban_proto::audit::v1::*;
use tonic::{Request, Response, Status};

use super::Ctx;

pub(crate) struct AuditService {
    _ctx: Arc<Ctx>,
}

impl AuditService {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Self { _ctx: ctx }
    }
}

type EntryStream = Pin<Box<dyn Stream<Item = Result<AuditEntry, Status>> + Send>>;

#[tonic::async_trait]
impl Audit for AuditService {
    type CaseEntriesStream = EntryStream;
    type RangeStream = EntryStream;

    async fn case_entries(
        &self,
        _: Request<CaseEntriesRequest>,
    ) -> Result<Response<EntryStream>, Status> {
        Err(Status::unimplemented(
            "audit case entries are not implemented on this node yet",
        ))
    }
    async fn range(&self, _: Request<RangeRequest>) -> Result<Response<EntryStream>, Status> {
        Err(Status::unimplemented(
            "audit range is not implemented on this node yet",
        ))
    }
    async fn latest_checkpoint(
        &self,
        _: Request<CheckpointRequest>,
    ) -> Result<Response<SignedCheckpoint>, Status> {
        Err(Status::unimplemented(
            "checkpoints are not implemented on this node yet",
        ))
    }
}
