//! The review service of the home authority. The inbox and case status
//! work now; decisions (accept, correct, approve, deny, hand-out) arrive with
//! the review-and-mail work and until then answer UNIMPLEMENTED, so that
//! nothing pretends to succeed.

use std::sync::Arc;

use tongban_proto::common::v1::CaseView;
use tongban_proto::review::v1::review_server::Review;
use tongban_proto::review::v1::*;
use tonic::{Request, Response, Status, Streaming};

use tongban_ledger::{CaseRecord, Side};

use super::Ctx;
use crate::{NodeError, view};

pub(crate) struct ReviewService {
    ctx: Arc<Ctx>,
}

impl ReviewService {
    pub(crate) fn new(ctx: Arc<Ctx>) -> Self {
        Self { ctx }
    }

    /// A case handed to this county.
    fn home_case(&self, case_no: &str) -> Result<CaseRecord, NodeError> {
        let case = self.ctx.case(case_no)?;
        if case.side != Side::Home {
            return Err(NodeError::NotFound(format!(
                "case {case_no} was not handed to {} for review",
                self.ctx.county
            )));
        }
        Ok(case)
    }
}

fn not_yet(what: &str) -> Status {
    Status::unimplemented(format!("review {what} is not implemented on this node yet"))
}

#[tonic::async_trait]
impl Review for ReviewService {
    async fn inbox(&self, _: Request<InboxRequest>) -> Result<Response<InboxReply>, Status> {
        let ctx = &self.ctx;
        // Application ids are UUID v7, so id order is oldest first.
        let cases = ctx
            .store
            .cases()
            .map_err(NodeError::from)?
            .iter()
            .filter(|c| c.side == Side::Home && !c.state.is_terminal())
            .map(|c| view::case_view(&ctx.store, &ctx.directory, ctx.county.as_str(), c, false))
            .collect::<Result<_, _>>()?;
        Ok(Response::new(InboxReply { cases }))
    }
    async fn accept(&self, _: Request<CaseRef>) -> Result<Response<CaseView>, Status> {
        Err(not_yet("accept"))
    }
    async fn correct(&self, _: Request<CorrectRequest>) -> Result<Response<CaseView>, Status> {
        Err(not_yet("correct"))
    }
    async fn paper_received(&self, _: Request<CaseRef>) -> Result<Response<CaseView>, Status> {
        Err(not_yet("paper-received"))
    }
    async fn approve(
        &self,
        _: Request<Streaming<ApproveFrame>>,
    ) -> Result<Response<CaseView>, Status> {
        Err(not_yet("approve"))
    }
    async fn deny(&self, _: Request<DenyRequest>) -> Result<Response<CaseView>, Status> {
        Err(not_yet("deny"))
    }
    async fn handout(&self, _: Request<HandoutRequest>) -> Result<Response<CaseView>, Status> {
        Err(not_yet("handout"))
    }
    async fn get_case(&self, req: Request<CaseRef>) -> Result<Response<CaseView>, Status> {
        let case = self.home_case(&req.get_ref().case_no)?;
        let ctx = &self.ctx;
        Ok(Response::new(view::case_view(
            &ctx.store,
            &ctx.directory,
            ctx.county.as_str(),
            &case,
            true,
        )?))
    }
    async fn overdue(&self, _: Request<OverdueRequest>) -> Result<Response<InboxReply>, Status> {
        Err(not_yet("overdue"))
    }
}
